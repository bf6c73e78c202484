"""Ctrl-C, SIGTERM and --timeout end to end: the installed command in a child process against
a served sandbox, and what the journal keeps for ``nanoedit resume`` afterwards.

Nothing paid is ever lost: a first Ctrl-C (or SIGTERM) lets the paid requests out finish and
save, a second aborts and leaves every job under way in the journal with what it takes to
collect it later.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    DUOMI_KEY,
    OPENAI_KEY,
    LogWatch,
    Served,
    SkippingClock,
    backend_env,
    error_object,
    interrupted_run,
    run_cli,
    run_installed,
)
from PIL import Image

from nanoedit.backends.base import backend_class
from nanoedit.journal.records import JobRecord
from nanoedit.journal.store import Journal
from nanoedit.sandbox import Sandbox, SandboxServer, sample_image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
# The size the sandbox gives an edit of cat.png with no ratio or size asked for.
CAT_EDIT_SIZE = (1200, 896)
DUOMI_POLL = "/api/gemini/nano-banana/"


def journal_records(count: int) -> list[JobRecord]:
    """Jobs 1 to ``count`` as the journal in the test's data folder holds them."""
    with Journal(Path(os.environ["NANOEDIT_DATA_DIR"])) as journal:
        records = [journal.get(ident) for ident in range(1, count + 1)]
    assert all(record is not None for record in records)
    return [record for record in records if record is not None]


def openai_env(base_url: str) -> dict[str, str]:
    return {"NANOEDIT_OPENAI_BASE_URL": base_url, "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY}


def duomi_env(base_url: str) -> dict[str, str]:
    return {
        "NANOEDIT_DUOMI_BASE_URL": base_url,
        "NANOEDIT_DUOMI_API_KEY": DUOMI_KEY,
        "NANOEDIT_DUOMI_POLL_INTERVAL": "0.05",
    }


class Held:
    """A sandbox whose API answers wait until the test lets them go; ``arrived`` is set once
    ``expected`` requests are waiting."""

    def __init__(self, expected: int) -> None:
        self.release = threading.Event()
        self.arrived = threading.Event()
        self._count = 0
        self._expected = expected
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._count += 1
            if self._count >= self._expected:
                self.arrived.set()
        self.release.wait(seconds)


@pytest.fixture
def held() -> Iterator[tuple[Served, Held]]:
    """A served sandbox whose first two API requests are held until released."""
    holder = Held(expected=2)
    sandbox = Sandbox(keys=frozenset({OPENAI_KEY}), latency=60, sleep=holder.hold)
    try:
        with SandboxServer(sandbox) as server:
            yield Served(sandbox, server.base_url), holder
    finally:
        holder.release.set()


@pytest.mark.parametrize(
    ("sig", "name"),
    [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP")],
    ids=["ctrl-c", "sigterm", "sighup"],
)
def test_one_stop_lets_the_paid_jobs_finish_and_sends_no_more(
    held: tuple[Served, Held], isolated: Path, sig: signal.Signals, name: str
) -> None:
    served, holder = held
    for letter in "abcd":
        (isolated / f"{letter}.png").write_bytes(sample_image("cat.png")[0])
    returncode, stdout, stderr = interrupted_run(
        ["edit", "a.png", "b.png", "c.png", "d.png", "-p", "x", "-j", "2"],
        isolated, openai_env(served.base_url), holder.arrived, "two requests out",
        presses=1, sig=sig, on_stopping=holder.release.set,
    )  # fmt: skip
    assert (returncode, sorted(stdout.splitlines())) == (130, ["a-edit.jpg", "b-edit.jpg"])
    lines = stderr.splitlines()
    assert lines[0] == "4 jobs, 4 images, estimated $0.268 (gemini-3.1-flash-image at $0.067)"
    assert lines[1] == (
        f"warning: {name}: stopping; no new job is sent, the 2 jobs under way finish and save: "
        "job 1 (a.png), job 2 (b.png). Ctrl-C again aborts; nanoedit resume takes them up later"
    )
    assert sorted(lines[2:4]) == [
        "saved a-edit.jpg (1200x896 JPEG) from a.png",
        "saved b-edit.jpg (1200x896 JPEG) from b.png",
    ]
    assert lines[4:] == [
        "error: not sent, as the run was stopped first: job 3 (c.png), job 4 (d.png); nanoedit "
        "resume 3 4 sends them",
        "4 jobs: 2 done, 0 failed, 2 not sent, 2 images saved",
        "interrupted: nothing more was sent; images already saved are kept",
    ]
    posts = [r for r in served.sandbox.received if r.method == "POST"]
    assert len(posts) == 2
    for saved in ("a-edit.jpg", "b-edit.jpg"):
        with Image.open(isolated / saved) as image:
            image.load()
            assert (image.format, image.size) == ("JPEG", CAT_EDIT_SIZE)
    assert sorted(p.name for p in isolated.iterdir()) == [
        "a-edit.jpg", "a.png", "b-edit.jpg", "b.png", "c.png", "d.png"
    ]  # fmt: skip
    records = journal_records(4)
    assert [record.state for record in records] == ["saved", "saved", "planned", "planned"]
    assert [record.saved_paths for record in records[:2]] == [
        [Path("a-edit.jpg")], [Path("b-edit.jpg")]
    ]  # fmt: skip


def test_an_abort_names_every_job_it_left_and_every_job_it_never_sent(
    held: tuple[Served, Held], isolated: Path
) -> None:
    served, holder = held
    for letter in "abcd":
        (isolated / f"{letter}.png").write_bytes(sample_image("cat.png")[0])
    returncode, stdout, stderr = interrupted_run(
        ["edit", "a.png", "b.png", "c.png", "d.png", "-p", "x", "-j", "2", "--json"],
        isolated, openai_env(served.base_url), holder.arrived, "two requests out",
    )  # fmt: skip
    assert returncode == 130
    charged = "its request went out, so it may have been charged"
    unsent = (
        "not sent, as the run was stopped first: job 3 (c.png), job 4 (d.png); nanoedit "
        "resume 3 4 sends them"
    )
    assert stderr.splitlines() == [
        "4 jobs, 4 images, estimated $0.268 (gemini-3.1-flash-image at $0.067)",
        "warning: Ctrl-C: stopping; no new job is sent, the 2 jobs under way finish and save: "
        "job 1 (a.png), job 2 (b.png). Ctrl-C again aborts; nanoedit resume takes them up later",
        f"error: a.png: stopped while under way: {charged}; nanoedit resume 1 --retry-unsafe "
        "sends it again",
        f"error: b.png: stopped while under way: {charged}; nanoedit resume 2 --retry-unsafe "
        "sends it again",
        f"error: {unsent}",
        "interrupted: nothing more was sent; images already saved are kept",
    ]
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [(r["job"], r["state"], r["sent"], r["error"]["kind"]) for r in records] == [
        (1, "submitted", True, "stopped"),
        (2, "submitted", True, "stopped"),
        (3, "not sent", False, "stopped"),
        (4, "not sent", False, "stopped"),
    ]
    assert records[3]["error"]["message"] == unsent
    assert [record.state for record in journal_records(4)] == [
        "submitted", "submitted", "planned", "planned"
    ]  # fmt: skip
    assert len([r for r in served.sandbox.received if r.method == "POST"]) == 2


@pytest.mark.parametrize("backend", ["duomi", "fal", "replicate"])
def test_json_gives_every_asynchronous_job_its_task_ids(
    served: Served, sample: Path, clock: SkippingClock, backend: str
) -> None:
    env = backend_env(served, openai=False, duomi=True, fal=True, replicate=True)
    argv = ["edit", str(sample), "-p", "x", "--backend", backend, "--json"]
    if backend == "duomi":  # it takes URLs only
        argv[1] = f"{served.base_url}/samples/cat.png"
    result = run_cli(argv, env=env, clock=clock)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    [record] = journal_records(1)
    ids = [backend_class(backend).task_id(handle) for handle in record.tasks]
    assert len(ids) == 1 and out["tasks"] == ids and (out["job"], out["state"]) == (1, "saved")
    # An id as the provider gives it, never the handle nanoedit keeps (fal's is its URLs).
    assert not ids[0].startswith("{") and "/" not in ids[0]


def test_a_run_started_by_nohup_goes_on_when_the_terminal_goes(
    held: tuple[Served, Held], isolated: Path
) -> None:
    # nohup starts the run with SIGHUP ignored: a hang-up then stops nothing, every job is
    # sent and saved.
    served, holder = held
    for letter in "ab":
        (isolated / f"{letter}.png").write_bytes(sample_image("cat.png")[0])
    run = subprocess.Popen(
        [NANOEDIT, "edit", "a.png", "b.png", "-p", "x", "-j", "2"], cwd=isolated,
        env=dict(os.environ) | openai_env(served.base_url), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )  # fmt: skip
    try:
        assert holder.arrived.wait(60), "the two requests never came"
        run.send_signal(signal.SIGHUP)
        holder.release.set()
        stdout, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert (run.returncode, sorted(stdout.splitlines())) == (0, ["a-edit.jpg", "b-edit.jpg"])
    assert "stopping" not in stderr
    assert len([r for r in served.sandbox.received if r.method == "POST"]) == 2


@pytest.fixture
def stuck() -> Iterator[tuple[Served, LogWatch]]:
    """A served sandbox whose duomi task never finishes; its log says when it was polled."""
    log = LogWatch(f"GET {DUOMI_POLL}")
    sandbox = Sandbox(keys=frozenset({OPENAI_KEY, DUOMI_KEY}), faults="task-stuck")
    with SandboxServer(sandbox, log=log) as server:
        yield Served(sandbox, server.base_url), log


def test_ctrl_c_twice_leaves_the_task_running_for_resume(
    stuck: tuple[Served, LogWatch], isolated: Path
) -> None:
    served, log = stuck
    url = f"{served.base_url}/samples/dog.jpg"
    returncode, stdout, stderr = interrupted_run(
        ["edit", url, "-p", "x", "--json"], isolated, duomi_env(served.base_url), log.seen,
        "the task's poll",
    )  # fmt: skip
    assert returncode == 130, stderr
    [record] = journal_records(1)
    [task_id] = record.tasks
    assert (record.state, record.backend, record.results) == ("submitted", "duomi", ())
    message = (
        f"{url}: stopped while under way: task {task_id} was submitted; nanoedit resume 1 saves "
        "its result"
    )
    assert stderr.splitlines() == [
        "warning: Ctrl-C: stopping; no new job is sent, the 1 job under way finishes and saves: "
        f"job 1 ({url}). Ctrl-C again aborts; nanoedit resume takes them up later",
        f"error: {message}",
        "interrupted: nothing more was sent; images already saved are kept",
    ]
    out = json.loads(stdout)
    assert (out["ok"], out["job"], out["state"], out["tasks"], out["sent"], out["outputs"]) == (
        False, 1, "submitted", [task_id], True, []
    )  # fmt: skip
    assert out["error"] == error_object("stopped", message, 130)
    # Not cancelled: the one request that is not a poll is the submission.
    assert [r.method for r in served.sandbox.received if r.method != "GET"] == ["POST"]
    assert sorted(p.name for p in isolated.iterdir()) == []


def test_a_timeout_leaves_a_stuck_task_for_resume(
    stuck: tuple[Served, LogWatch], isolated: Path
) -> None:
    served, _ = stuck
    url = f"{served.base_url}/samples/dog.jpg"
    returncode, stdout, stderr = run_installed(
        ["edit", url, "-p", "x", "--timeout", "1", "--json"], isolated, duomi_env(served.base_url)
    )
    assert returncode == 6, stderr
    [record] = journal_records(1)
    [task_id] = record.tasks
    assert (record.state, record.results) == ("submitted", ())
    host = served.base_url.removeprefix("http://")
    message = (
        f"task {task_id} on {host} did not finish within the job's time limit of 1 s (1 s "
        "elapsed, last state: running); it is still running on the server (it may be charged); "
        "nanoedit resume 1 collects it when it has finished"
    )
    assert stderr.splitlines()[-1] == f"error: {message}"
    out = json.loads(stdout)
    assert (out["job"], out["state"], out["tasks"], out["error"]) == (
        1, "submitted", [task_id], error_object("network", message, 6)
    )  # fmt: skip
    assert [r.method for r in served.sandbox.received if r.method != "GET"] == ["POST"]
    assert list(isolated.iterdir()) == []


def test_a_sync_request_cut_by_the_deadline_may_have_been_charged(
    held: tuple[Served, Held], sample: Path
) -> None:
    served, _ = held
    returncode, stdout, stderr = run_installed(
        ["edit", "cat.png", "-p", "x", "--timeout", "1", "--json"],
        sample.parent, openai_env(served.base_url),
    )  # fmt: skip
    assert returncode == 6, stderr
    error = json.loads(stdout)["error"]
    assert error["message"].endswith(
        "; the request had gone out, so it may have been charged; it is kept in the history as "
        "job 1: nanoedit resume 1 --retry-unsafe sends it again"
    )
    assert stderr.splitlines()[-1] == f"error: {error['message']}"
    out = json.loads(stdout)
    assert (out["job"], out["state"], out["tasks"]) == (1, "submitted", [])
    [record] = journal_records(1)
    assert (record.state, record.tasks, record.results) == ("submitted", (), ())
    assert record.may_have_been_charged
    assert [r.path for r in served.sandbox.received] == ["/v1/images/edits"]
    assert sorted(p.name for p in sample.parent.iterdir()) == ["cat.png"]


# One of the first imports `python -X importtime` reports inside the command line's own
# (typer's), long before anything is sent.
DEEP_IMPORT = " typer.colors"
STARTING = "interrupted while starting: nothing was sent"


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"]
)
def test_a_stop_while_python_is_importing_exits_130_without_a_traceback(
    isolated: Path, sig: signal.Signals
) -> None:
    # Each import is reported on stderr as it ends: the signal comes while nanoedit's command
    # line is still being imported. It may land just after; then a try again.
    env = dict(os.environ) | {"PYTHONPROFILEIMPORTTIME": "1"}
    hit = False
    for _ in range(5):
        run = subprocess.Popen(
            [NANOEDIT, "edit", "cat.png", "-p", "x"], cwd=isolated, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        assert run.stderr is not None
        lines: list[str] = []
        try:
            for line in run.stderr:
                lines.append(line)
                if line.rstrip().endswith(DEEP_IMPORT):
                    run.send_signal(sig)
                    break
            rest = run.stderr.read()
            stdout = run.communicate(timeout=30)[0]
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
        said = [
            line for line in "".join(lines).splitlines() + rest.splitlines()
            if not line.startswith("import time:")
        ]  # fmt: skip
        assert (run.returncode, stdout) == (130, ""), said
        assert not any("Traceback" in line for line in said), said
        if said == [STARTING]:
            hit = True
            break
    assert hit, "the signal never came while the command line was being imported"


def test_part_files_of_dead_runs_are_removed_and_live_ones_kept(
    held: tuple[Served, Held], sample: Path
) -> None:
    served, holder = held
    holder.release.set()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = sample.parent / f".nanoedit-{gone.pid}-abc.part"
    live = sample.parent / f".nanoedit-{os.getpid()}-abc.part"
    unowned = sample.parent / ".nanoedit-3f9a2c.part"
    for part in (dead, live, unowned):
        part.write_bytes(b"half an image")
    returncode, stdout, stderr = run_installed(
        ["edit", "cat.png", "-p", "x"], sample.parent, openai_env(served.base_url)
    )
    assert (returncode, stdout) == (0, "cat-edit.jpg\n"), stderr
    assert sorted(p.name for p in sample.parent.iterdir()) == sorted(
        ["cat.png", "cat-edit.jpg", live.name, unowned.name]
    )
    assert live.read_bytes() == unowned.read_bytes() == b"half an image"


def test_a_result_that_cannot_be_downloaded_is_kept_with_its_url(
    served: Served, sample: Path
) -> None:
    served.sandbox.add_faults("file:503x4")
    returncode, stdout, stderr = run_installed(
        ["edit", "cat.png", "-p", "x"], sample.parent,
        openai_env(served.base_url) | {"NANOEDIT_BACKOFF": "0.01"},
    )  # fmt: skip
    [record] = journal_records(1)
    [result] = record.results
    url = result["url"]
    assert (record.state, result) == ("answered", {"url": url})
    assert url.startswith(f"{served.base_url}/files/")
    assert (returncode, stdout) == (5, ""), stderr
    host = served.base_url.removeprefix("http://")
    assert stderr.splitlines()[-1] == (
        f"error: the result of cat.png could not be downloaded from {host}: HTTP 503 (it starts "
        "like XML or markup); check the address; the result is kept in the history "
        f"({url}): nanoedit resume 1 saves it"
    )
    assert served.sandbox.pending_faults() == []
    assert sorted(p.name for p in sample.parent.iterdir()) == ["cat.png"]
