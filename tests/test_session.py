"""The session in-process: a run wired from an Environment and plain values, no command line."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from conftest import SkippingClock

from nanoedit import session
from nanoedit.errors import UsageError
from nanoedit.jobs import RunOptions


def environment(clock: SkippingClock, stdin: str | None = None) -> session.Environment:
    """Streams of the test's own, the test's variables, and a clock that skips waits."""
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    given = None if stdin is None else io.StringIO(stdin)
    return session.Environment(given, stdout, io.StringIO(), dict(os.environ), clock, ("test",))


def printed(env: session.Environment) -> str:
    assert env.stdout is not None
    env.stdout.seek(0)
    return env.stdout.read()


def test_an_edit_runs_in_process_and_returns_its_outcomes(
    sample: Path, clock: SkippingClock
) -> None:
    env = environment(clock)
    given = session.EditInputs(inputs=("cat.png",))
    done = session.edit(env, given, session.Asked(prompt="add a hat"), RunOptions(sandbox=True))
    assert (done.exit_code, done.stopped, printed(env)) == (0, False, "cat-edit.jpg\n")
    assert [image.path for image in done.outcomes[0].outputs] == [Path("cat-edit.jpg")]
    assert Path("cat-edit.jpg").exists()


def test_the_prompt_is_read_from_the_environments_stdin(clock: SkippingClock) -> None:
    env = environment(clock, stdin="a red fox\n")
    done = session.generate(env, None, session.Asked(prompt="-"), RunOptions(sandbox=True))
    assert (done.exit_code, printed(env)) == (0, "a-red-fox.jpg\n")


def test_a_session_raises_what_the_command_line_turns_into_an_exit(clock: SkippingClock) -> None:
    env = environment(clock, stdin="")
    with pytest.raises(UsageError, match="both read stdin"):
        session.edit(
            env,
            session.EditInputs(inputs=("-",), refs=("-",)),
            session.Asked(prompt="x"),
            RunOptions(sandbox=True),
        )
    with pytest.raises(UsageError, match="the prompt is empty"):
        session.generate(env, None, session.Asked(prompt=" "), RunOptions(sandbox=True))
    assert printed(env) == ""
