"""``--transparent-method matte`` killed between or during its two paid requests: resume
finishes the job, and no request is paid for twice unless the user says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GEMINI_KEY, Served, journal_jobs, one_backend_env, paid, run_cli, wait_for
from PIL import Image

from nanoedit.output.alpha import alpha_error
from nanoedit.run.transparency import WHITE_INSTRUCTION, with_instruction
from nanoedit.sandbox import Sandbox, SandboxServer, transparency

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
PROMPT = "a cute robot mascot"
ARGS = ["generate", "-p", PROMPT, "--transparent-method", "matte", "-o", "robot.png"]
# A process that dies, as a kill leaves it, the moment its matte's white render is journaled
# and before its black one is asked for: the one point no signal can be timed to hit.
DIES_BETWEEN = """
import os, sys
from nanoedit.run import matte
matte.Matte._black = lambda self, entry, white: os._exit(137)
from nanoedit.__main__ import main
sys.argv[0] = "nanoedit"
main()
"""


@pytest.fixture
def second_held() -> Iterator[tuple[Served, threading.Event]]:
    """A served sandbox taking the gemini key that answers its first request at once and
    holds every later answer until the event is set."""
    release = threading.Event()
    answers: list[float] = []

    def hold(seconds: float) -> None:
        answers.append(seconds)
        if len(answers) > 1:
            release.wait(seconds)

    sandbox = Sandbox(keys=frozenset({GEMINI_KEY}), latency=60, sleep=hold)
    try:
        with SandboxServer(sandbox) as server:
            yield Served(sandbox, server.base_url), release
    finally:
        release.set()


def _env(served: Served) -> dict[str, str]:
    return dict(os.environ) | one_backend_env(served, "gemini")


def _check_alpha(path: str) -> None:
    with Image.open(path) as image:
        assert (image.format, image.mode) == ("PNG", "RGBA")
        sent = with_instruction(PROMPT, WHITE_INSTRUCTION)
        known = transparency.subject(transparency.subject_text(sent), image.size)
        mean, largest = alpha_error(image, known)
    assert mean <= 0.2 and largest <= 34, (mean, largest)


def test_a_matte_killed_between_its_requests_is_finished_by_resume_paying_each_once(
    served: Served, isolated: Path
) -> None:
    died = subprocess.run(
        [sys.executable, "-c", DIES_BETWEEN, *ARGS], env=_env(served), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert died.returncode == 137, died.stderr
    assert len(paid(served)) == 1
    [record] = journal_jobs()
    assert record.state == "answered"
    [entry] = record.results
    assert set(entry) == {"spool"}  # the white render, kept; the black never asked for
    white = Path(entry["spool"])
    assert white.is_file()
    resumed = run_cli(["resume", str(record.id)], env=one_backend_env(served, "gemini"))
    assert resumed.exit_code == 0, resumed.stderr
    assert len(paid(served)) == 2  # the black render alone
    _check_alpha("robot.png")
    [record] = journal_jobs()
    assert record.state == "saved"
    assert not white.exists()
    assert not list(white.parent.glob("matte-*"))


def test_a_matte_killed_during_its_black_render_is_resent_only_when_asked(
    second_held: tuple[Served, threading.Event], isolated: Path
) -> None:
    served, release = second_held
    run = subprocess.Popen(
        [NANOEDIT, *ARGS], env=_env(served), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: len(paid(served)) == 2, "the black render's request")
        run.send_signal(signal.SIGKILL)
        run.wait(30)
    finally:
        if run.poll() is None:
            run.kill()
    release.set()
    [record] = journal_jobs()
    assert record.state == "answered"
    [entry] = record.results
    assert entry.get("black_sent") is True and "spool" in entry
    env = one_backend_env(served, "gemini")
    refused = run_cli(["resume", str(record.id)], env=env)
    assert refused.exit_code == 6
    assert (
        "(its matte's second paid request) was sent by a run that ended before its answer "
        f"came, so it may have been charged; nanoedit resume {record.id} --retry-unsafe sends "
        "it again"
    ) in refused.stderr
    assert "saves it" not in refused.stderr
    assert len(paid(served)) == 2
    assert not Path("robot.png").exists()
    resent = run_cli(["resume", str(record.id), "--retry-unsafe"], env=env)
    assert resent.exit_code == 0, resent.stderr
    assert len(paid(served)) == 3  # the black render again, as asked; the white one kept
    _check_alpha("robot.png")
