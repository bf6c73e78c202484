"""A job is its request, its inputs (where they are, not only their bytes) and the names it
saves to: ``--skip-existing`` never takes one job's image for another's, and two runs at once
never both send a job, each claiming its jobs in the journal in one transaction."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import (
    DUOMI_KEY,
    NANOEDIT,
    OPENAI_KEY,
    Served,
    all_jobs,
    backend_env,
    distinct_pngs,
    made_from,
    one_backend_env,
    paid,
    posts,
    run_installed,
    runs_begun,
    two_runs_at_once,
    wait_for,
)
from PIL import Image

from nanoedit.journal.store import Journal, data_dir
from nanoedit.sandbox import Sandbox, SandboxServer, sample_image

CAT = sample_image("cat.png")[0]
EDIT_SIZE = (1200, 896)  # 4:3 at 1K on the 3.x models


def twins(isolated: Path) -> None:
    """x/a.png and y/a.png: two inputs with the same bytes and the same stem."""
    for folder in ("x", "y"):
        (isolated / folder).mkdir()
        (isolated / folder / "a.png").write_bytes(CAT)


@pytest.mark.parametrize("history", [[], ["--no-history"]], ids=["journal", "provenance"])
def test_a_rerun_keeps_two_inputs_with_the_same_bytes_apart(
    served: Served, isolated: Path, history: list[str]
) -> None:
    twins(isolated)
    argv = ["edit", "x/a.png", "y/a.png", "-p", "a hat", "-d", "out", "-j", "1", *history]
    code, out, _ = run_installed(argv, isolated, backend_env(served))
    assert (code, out) == (0, "out/a-edit.jpg\nout/a-edit-2.jpg\n")
    assert (made_from(isolated / "out/a-edit.jpg"), made_from(isolated / "out/a-edit-2.jpg")) == (
        "x/a.png", "y/a.png"
    )  # fmt: skip
    code, out, err = run_installed([*argv, "--skip-existing"], isolated, backend_env(served))
    assert (code, out) == (0, "out/a-edit.jpg\nout/a-edit-2.jpg\n"), err
    assert err.splitlines()[-1] == "2 jobs: 0 done, 0 failed, 2 skipped, 0 images saved"
    assert len(posts(served)) == 2


@pytest.mark.parametrize("history", [[], ["--no-history"]], ids=["journal", "provenance"])
def test_skip_existing_sends_the_job_never_done_and_skips_only_the_one_done(
    served: Served, isolated: Path, history: list[str]
) -> None:
    # y/a.png was edited alone first: its image took the name a-edit.jpg.
    twins(isolated)
    first = ["edit", "y/a.png", "-p", "a hat", "-d", "out", *history]
    assert run_installed(first, isolated, backend_env(served))[:2] == (0, "out/a-edit.jpg\n")
    argv = ["edit", "x/a.png", "y/a.png", "-p", "a hat", "-d", "out", "-j", "1", "--skip-existing"]
    code, out, err = run_installed([*argv, *history], isolated, backend_env(served))
    # y's image is found where it is, x is sent: each job once, and no image listed twice.
    assert (code, out) == (0, "out/a-edit.jpg\nout/a-edit-3.jpg\n"), err
    assert len(posts(served)) == 2
    assert sorted(os.listdir(isolated / "out")) == ["a-edit-3.jpg", "a-edit.jpg"]
    assert (made_from(isolated / "out/a-edit.jpg"), made_from(isolated / "out/a-edit-3.jpg")) == (
        "y/a.png", "x/a.png"
    )  # fmt: skip
    with Image.open(isolated / "out/a-edit-3.jpg") as image:
        assert (image.format, image.size) == ("JPEG", EDIT_SIZE)


def test_two_skip_existing_runs_at_once_pay_for_each_job_once(
    held_answers: tuple[Served, threading.Event], isolated: Path
) -> None:
    served, release = held_answers
    distinct_pngs(isolated / "in", 8)
    argv = ["edit", "in", "-p", "a hat", "-d", "out", "-j", "8", "--skip-existing"]
    env = {"NANOEDIT_OPENAI_BASE_URL": served.base_url, "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY}
    results = two_runs_at_once(argv, isolated, env, release.set)
    assert len(posts(served)) == 8  # not 16: each job was claimed by one run
    expected = [f"out/{n:03d}-edit.jpg" for n in range(8)]
    for code, out, err in results:
        # The run that had none of them waited for the other and lists its images.
        assert (code, sorted(out.splitlines())) == (0, expected), err
    assert sorted(os.listdir(isolated / "out")) == [name[4:] for name in expected]
    for name in expected:
        with Image.open(isolated / name) as image:
            assert (image.format, image.size) == ("JPEG", EDIT_SIZE)
    with Journal(data_dir(os.environ)) as journal:
        records = all_jobs(journal)
    assert [record.state for record in records] == ["saved"] * 8


# The installed command, run with each try to switch the journal to WAL written down (a line
# with the process id, to the file WAL_SWITCHES names): the test sees each run try, then try
# again, as it happens.
TRACED_RUN = """
import os, sqlite3, sys

connect = sqlite3.connect

def traced(*args, **kwargs):
    connection = connect(*args, **kwargs)

    def trace(statement):
        if statement.startswith("PRAGMA journal_mode"):
            with open(os.environ["WAL_SWITCHES"], "a") as switches:
                switches.write(f"{os.getpid()}\\n")

    connection.set_trace_callback(trace)
    return connection

sqlite3.connect = traced
sys.argv[0] = "nanoedit"
from nanoedit.__main__ import main
main()
"""


def test_two_runs_started_together_in_a_new_data_folder_pay_for_each_job_once(
    served: Served, isolated: Path
) -> None:
    # The crash benchmark's two runs at once on fal, 12 images for 6 jobs: while one run
    # switched the new journal to WAL, SQLite refused the other's switch at once (no busy
    # handler where waiting could deadlock), and that run went on without a journal, so
    # without the claims that leave each job to one run. Here the new journal's file is held
    # as a run switching it holds it, until both runs have tried (and, waiting, tried again).
    distinct_pngs(isolated / "in", 6)
    data = Path(os.environ["NANOEDIT_DATA_DIR"])
    data.mkdir(mode=0o700)
    switches = isolated.parent / "wal-switches"
    switches.touch()
    creating = sqlite3.connect(data / "journal.sqlite3", isolation_level=None)
    creating.execute("BEGIN IMMEDIATE")
    argv = [sys.executable, "-c", TRACED_RUN, "edit", "in", "-p", "a hat", "-d", "out", "-j", "6"]
    argv += ["--skip-existing"]
    env = dict(os.environ) | one_backend_env(served, "fal") | {"WAL_SWITCHES": str(switches)}
    runs = [
        subprocess.Popen(argv, cwd=isolated, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip

    def tried_again_or_ended() -> bool:
        tries = switches.read_text().split()
        return all(tries.count(str(run.pid)) >= 2 or run.poll() is not None for run in runs)

    try:
        wait_for(tried_again_or_ended, "both runs trying the journal again", timeout=60)
        creating.execute("COMMIT")
        said = [run.communicate(timeout=60) for run in runs]
    finally:
        creating.close()
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.communicate()
    assert len(paid(served)) == 6  # not 12: each job was claimed by one run
    expected = [f"out/{n:03d}-edit.png" for n in range(6)]
    for run, (out, err) in zip(runs, said, strict=True):
        # The run that had none of them waited for the other and lists its images.
        assert (run.returncode, sorted(out.splitlines())) == (0, expected), err
        assert "journal" not in err, err
    assert sorted(os.listdir(isolated / "out")) == [name[4:] for name in expected]
    for name in expected:
        with Image.open(isolated / name) as image:
            assert (image.format, image.size) == ("PNG", EDIT_SIZE)
    with Journal(data) as journal:
        records = all_jobs(journal)
    assert [record.state for record in records] == ["saved"] * 6
    assert runs_begun(data) == 2


class ManualClock:
    """The sandbox's time, moved on only by the test: a task runs until the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_run_waiting_for_another_takes_its_job_up_when_that_run_is_killed(
    isolated: Path,
) -> None:
    # The first run is killed with its task submitted: the run waiting for it collects the
    # task, and pays for nothing again.
    clock = ManualClock()
    sandbox = Sandbox(keys=frozenset({DUOMI_KEY}), clock=clock, task_seconds=5)
    with SandboxServer(sandbox) as server:
        env = dict(os.environ) | {
            "NANOEDIT_DUOMI_BASE_URL": server.base_url, "NANOEDIT_DUOMI_API_KEY": DUOMI_KEY,
            "NANOEDIT_DUOMI_POLL_INTERVAL": "0.01",
        }  # fmt: skip
        argv = [NANOEDIT, "edit", f"{server.base_url}/samples/cat.png", "-p", "a hat"]
        argv += ["-d", "out", "--backend", "duomi", "--skip-existing"]
        first = subprocess.Popen(argv, cwd=isolated, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)  # fmt: skip
        second = None
        try:
            wait_for(lambda: task_journaled(), "the first run's task id in the journal")
            second = subprocess.Popen(argv, cwd=isolated, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)  # fmt: skip
            data = Path(os.environ["NANOEDIT_DATA_DIR"])
            wait_for(lambda: runs_begun(data) == 2, "the second run claiming its job")
            first.kill()
            first.wait(30)
            clock.now = 60.0  # the task finishes on the server meanwhile
            out, err = second.communicate(timeout=60)
        finally:
            for run in (first, second):
                if run is not None and run.poll() is None:
                    run.kill()
                    run.communicate()
        assert (second.returncode, out) == (0, "out/cat-edit.jpg\n"), err
        submits = [r for r in sandbox.received if r.path == "/api/gemini/nano-banana-edit"]
        assert len(submits) == 1  # the one task, collected by the second run
    with Image.open(isolated / "out" / "cat-edit.jpg") as image:
        assert (image.format, image.size) == ("JPEG", EDIT_SIZE)
    with Journal(data_dir(os.environ)) as journal:
        [record] = all_jobs(journal)
    assert (record.state, len(record.tasks), record.owner) == ("saved", 1, 2)


def task_journaled() -> bool:
    with Journal(data_dir(os.environ)) as journal:
        return any(record.tasks for record in all_jobs(journal))


def test_a_stop_while_waiting_for_another_run_leaves_its_jobs_to_that_run(
    held_answers: tuple[Served, threading.Event], isolated: Path
) -> None:
    served, release = held_answers
    for letter in "ab":
        (isolated / f"{letter}.png").write_bytes(CAT)
    argv = [NANOEDIT, "edit", "a.png", "b.png", "-p", "a hat", "--skip-existing"]
    env = dict(os.environ) | {
        "NANOEDIT_OPENAI_BASE_URL": served.base_url, "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY,
    }  # fmt: skip
    first = subprocess.Popen(argv, cwd=isolated, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    second = None
    lines: list[str] = []
    try:
        wait_for(lambda: len(posts(served)) == 2, "the first run's two requests")
        second = subprocess.Popen(
            argv, cwd=isolated, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        reader = threading.Thread(target=lambda: lines.extend(second.stderr or []))
        reader.start()
        waiting = "under way (job {}); waiting for it"
        wait_for(
            lambda: sum(1 for line in lines if line.rstrip().endswith("waiting for it")) == 2,
            "the second run waiting for both jobs",
        )
        second.send_signal(signal.SIGINT)
        assert second.stdout is not None and second.stderr is not None
        out = second.stdout.read()
        second.wait(60)
        reader.join(60)
        # Read here, not by communicate(): the test closes the pipes itself.
        second.stdout.close()
        second.stderr.close()
        release.set()
        assert sorted(first.communicate(timeout=60)[0].splitlines()) == [
            "a-edit.jpg", "b-edit.jpg"
        ]  # fmt: skip
    finally:
        release.set()
        for run in (first, second):
            if run is not None and run.poll() is None:
                run.kill()
                run.communicate()
    assert (second.returncode, out) == (130, "")
    said = [line.rstrip("\n") for line in lines]
    assert sorted(said[1:3]) == [
        f"warning: a.png: another run has it {waiting.format(1)}",
        f"warning: b.png: another run has it {waiting.format(2)}",
    ]
    assert said[3] == (
        "warning: Ctrl-C: stopping; no new job is sent, the 2 jobs under way finish and save: "
        "a.png, b.png. Ctrl-C again aborts; nanoedit resume takes them up later"
    )
    assert sorted(said[4:6]) == [
        "error: a.png: not sent: another run has it under way (job 1), and it is left to that run",
        "error: b.png: not sent: another run has it under way (job 2), and it is left to that run",
    ]
    assert said[6:] == [
        "2 jobs: 0 done, 0 failed, 2 not sent, 0 images saved",
        "interrupted: nothing more was sent; images already saved are kept",
    ]
    assert len(posts(served)) == 2
    assert sorted(os.listdir(isolated)) == ["a-edit.jpg", "a.png", "b-edit.jpg", "b.png"]
