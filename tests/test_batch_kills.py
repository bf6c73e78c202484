"""The Done-when run of ``--tier batch``: jobs sent with --detach, the process SIGKILLed once
while it uploads the inputs and once while resume polls, and resume then saves every image;
exactly one batch billed on the sandbox, and a ledger at half the interactive price. Also: a
run killed after its create went out but before the batch's name was journaled is found by
its display name, never submitted twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import Served, interrupted_run, one_backend_env, paid, run_cli, wait_for
from test_batch_tier import HALF, PROMPT, batch_posts, batches_journaled, inputs, jobs_table

from nanoedit.journal.store import data_dir

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
# The suite's size: the whole 1,000-job run is the benchmark's (-m benchmark).
SUITE_JOBS = 60


def _killed_when(args: list[str], env: dict[str, str], cwd: Path, ready: object) -> str:
    """Run the installed command, SIGKILL it once ``ready()`` holds; its stderr."""
    run = subprocess.Popen(
        [NANOEDIT, *args], cwd=cwd, env=dict(os.environ) | env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert callable(ready)
        wait_for(lambda: ready() or run.poll() is not None, "the moment to kill the run", 120)
        assert run.poll() is None, "the run ended before it could be killed"
        run.send_signal(signal.SIGKILL)
        run.wait(30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.stderr is not None
    said = run.stderr.read()
    run.stderr.close()
    assert run.returncode == -signal.SIGKILL
    return said


def _uploads(served: Served) -> int:
    return sum(1 for r in served.sandbox.received if r.path.startswith("/upload/"))


def _polls(served: Served) -> int:
    return sum(1 for r in served.sandbox.received if r.method == "GET" and "/batches/" in r.path)


def killed_twice_then_resumed(served: Served, isolated: Path, jobs: int) -> None:
    """The Done-when run with ``jobs`` jobs (see the module's docstring)."""
    files = inputs(isolated / "in", jobs)
    env = one_backend_env(served, "gemini")
    args = ["edit", *files, "-p", PROMPT, "--tier", "batch", "--detach", "-d", "out"]
    # An upload is two requests: its start and its bytes.
    _killed_when(args, env, isolated, lambda: _uploads(served) >= 2 * (jobs // 3))
    [record] = batches_journaled()
    assert record.state == "building" and record.name is None
    # The uploads made (the last maybe killed before it was journaled), kept for resume.
    assert jobs // 3 - 1 <= len(record.uploads) < jobs
    assert not batch_posts(served)
    polled = _polls(served)
    _killed_when(["resume"], env, isolated, lambda: _polls(served) > polled)
    [record] = batches_journaled()
    assert record.name is not None and record.state == "pending"
    served.sandbox.batch_clock.advance(400)
    resumed = run_cli(["resume"], env=env)
    assert resumed.exit_code == 0, resumed.stderr[-2000:]
    saved = sorted((isolated / "out").glob("*.jpg"))
    assert len(saved) == jobs == len(resumed.stdout.splitlines())
    # Each input uploaded once, the one cut by the kill again, and the JSONL: none of the
    # first run's uploads made a second time (an upload is two requests).
    assert _uploads(served) <= 2 * (jobs + 2)
    assert len(batch_posts(served)) == 1 and len(served.sandbox.batch_bills()) == 1
    assert served.sandbox.batch_bills()[0].requests == jobs
    assert not [r for r in paid(served) if r.path.endswith(":generateContent")]
    costs = [cost or 0.0 for _, state, cost in jobs_table() if state == "saved"]
    assert len(costs) == jobs and sum(costs) == pytest.approx(jobs * HALF)
    estimate = run_cli(["edit", *files, "-p", PROMPT, "--dry-run", "-d", "elsewhere"], env=env)
    assert f"estimated ${jobs * 2 * HALF:.2f}" in estimate.stderr  # the interactive price


def test_a_detached_batch_killed_during_upload_and_polling_ends_with_every_image_billed_once(
    served: Served, isolated: Path
) -> None:
    killed_twice_then_resumed(served, isolated, SUITE_JOBS)


@pytest.mark.benchmark
@pytest.mark.timeout(900)
def test_the_1000_job_batch_killed_twice_ends_with_1000_images_billed_once(
    served: Served, isolated: Path
) -> None:
    killed_twice_then_resumed(served, isolated, 1000)


def test_a_create_whose_answer_was_lost_is_found_by_its_display_name_not_sent_again(
    served: Served, isolated: Path
) -> None:
    files = inputs(isolated / "in", 2)
    env = one_backend_env(served, "gemini")
    args = ["edit", *files, "-p", PROMPT, "--tier", "batch", "--detach", "-d", "out"]
    assert run_cli(args, env=env).exit_code == 0
    [record] = batches_journaled()
    # As a run killed between sending the create and journaling its answer leaves it.
    with sqlite3.connect(data_dir(os.environ) / "journal.sqlite3") as db:
        db.execute(
            "UPDATE batches SET name = NULL, state = 'submitting', run = NULL, updated = ?",
            (record.created + 1,),
        )
    served.sandbox.batch_clock.advance(400)
    resumed = run_cli(["resume"], env=env)
    assert resumed.exit_code == 0, resumed.stderr
    assert f"found {record.name} ({record.display_name}), submitted before" in resumed.stderr
    assert len(batch_posts(served)) == 1 and len(served.sandbox.batch_bills()) == 1
    assert len(resumed.stdout.splitlines()) == 2


def test_ctrl_c_while_waiting_leaves_the_batch_at_google_for_resume(
    served: Served, isolated: Path
) -> None:
    files = inputs(isolated / "in", 2)
    env = one_backend_env(served, "gemini")
    polled = threading.Event()

    def watch() -> None:
        wait_for(lambda: _polls(served) > 0, "a poll of the batch", 60)
        polled.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    args = ["edit", *files, "-p", PROMPT, "--tier", "batch", "-d", "out"]
    code, _, err = interrupted_run(args, isolated, env, polled, "a poll", presses=1)
    watcher.join()
    [record] = batches_journaled()
    assert code == 130
    assert f"stopped waiting: {record.name} goes on at Google; nanoedit resume saves it" in err
    served.sandbox.batch_clock.advance(400)
    resumed = run_cli(["resume"], env=env)
    assert resumed.exit_code == 0 and len(resumed.stdout.splitlines()) == 2
    assert len(batch_posts(served)) == 1
