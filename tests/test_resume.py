"""``nanoedit resume`` after a run was killed: nothing paid is lost, nothing is paid twice."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import DUOMI_KEY, OPENAI_KEY, journal_jobs, run_cli, wait_for
from PIL import Image

from nanoedit.journal.store import data_dir
from nanoedit.sandbox import Sandbox, SandboxServer, sample_image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
CAT = sample_image("cat.png")[0]


class ManualClock:
    """The sandbox's time, moved on only by the test: a task runs until the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def held() -> Iterator[tuple[Sandbox, str, ManualClock, threading.Event]]:
    """A sandbox whose tasks run until the clock moves, and whose synchronous answers are
    held until the event is set."""
    clock = ManualClock()
    release = threading.Event()

    def hold(seconds: float) -> None:
        release.wait(seconds)

    sandbox = Sandbox(
        keys=frozenset({OPENAI_KEY, DUOMI_KEY}), clock=clock, task_seconds=5, sleep=hold
    )
    try:
        with SandboxServer(sandbox) as server:
            yield sandbox, server.base_url, clock, release
    finally:
        release.set()


def _env(base_url: str) -> dict[str, str]:
    return dict(os.environ) | {
        "NANOEDIT_OPENAI_BASE_URL": base_url, "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY,
        "NANOEDIT_DUOMI_BASE_URL": base_url, "NANOEDIT_DUOMI_API_KEY": DUOMI_KEY,
        "NANOEDIT_DUOMI_POLL_INTERVAL": "0.01",
    }  # fmt: skip


def _a_task_journaled() -> bool:
    return any(record.tasks for record in journal_jobs())


def _posts(sandbox: Sandbox, path: str) -> int:
    return sum(
        1 for request in sandbox.received if request.method == "POST" and request.path == path
    )


def _killed(args: list[str], base_url: str, until: Callable[[], object], what: str) -> None:
    """Run the installed command and SIGKILL it the moment ``until()`` holds."""
    run = subprocess.Popen(
        [NANOEDIT, *args], env=_env(base_url),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(until, what)
        run.send_signal(signal.SIGKILL)
        run.wait(30)
    finally:
        if run.poll() is None:
            run.kill()


def test_a_killed_run_leaves_its_task_to_resume_which_saves_it_without_paying_again(
    held: tuple[Sandbox, str, ManualClock, threading.Event], isolated: Path
) -> None:
    sandbox, base_url, clock, _ = held
    url = f"{base_url}/samples/cat.png"
    # The task id is in the journal the moment the provider gave it: kill then.
    _killed(
        ["edit", url, "-p", "a hat", "--backend", "duomi", "-d", "out"],
        base_url,
        lambda: any(r.tasks for r in journal_jobs()),
        "the task id journaled",
    )
    [record] = journal_jobs()
    assert (record.state, len(record.tasks)) == ("submitted", 1)
    clock.now = 60.0  # the task finishes on the server meanwhile
    result = run_cli(["resume"], env=_env(base_url))
    assert result.exit_code == 0, result.stderr
    [line] = result.stdout.splitlines()
    saved = Path(line)
    assert saved.parent == isolated / "out" and saved.name == "cat-edit.jpg"
    with Image.open(saved) as image:
        assert image.format == "JPEG" and image.size == (1200, 896)
    assert _posts(sandbox, "/api/gemini/nano-banana-edit") == 1  # paid once
    [record] = journal_jobs()
    assert record.state == "saved" and record.saved_paths == [saved]
    assert record.results[0]["sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()
    again = run_cli(["resume"], env=_env(base_url))
    assert (again.exit_code, again.stderr) == (
        0,
        "nothing to resume: every job in the history has ended\n",
    )


def test_a_synchronous_request_cut_by_a_kill_may_have_been_charged_and_is_resent_only_when_asked(
    held: tuple[Sandbox, str, ManualClock, threading.Event], isolated: Path
) -> None:
    sandbox, base_url, _, release = held
    Path("cat.png").write_bytes(CAT)
    _killed(
        ["edit", "cat.png", "-p", "a hat", "--backend", "openai"],
        base_url,
        lambda: _posts(sandbox, "/v1/images/edits") == 1,
        "the edit request",
    )
    release.set()
    [record] = journal_jobs()
    assert record.state == "submitted" and record.may_have_been_charged
    listed = run_cli(["resume"], env=_env(base_url))
    assert (listed.exit_code, listed.stdout) == (6, "")
    assert f"job {record.id} (cat.png): its request went out at " in listed.stderr
    assert (
        "no answer came, so it may have been charged; check your account, then nanoedit "
        f"resume {record.id} --retry-unsafe sends it again"
    ) in listed.stderr
    assert _posts(sandbox, "/v1/images/edits") == 1
    resent = run_cli(["resume", str(record.id), "--retry-unsafe"], env=_env(base_url))
    assert resent.exit_code == 0, resent.stderr
    assert resent.stdout == f"{isolated / 'cat-edit.jpg'}\n"  # resume names files in full
    assert _posts(sandbox, "/v1/images/edits") == 2
    with Image.open("cat-edit.jpg") as image:
        assert image.size == (1200, 896)


def test_resume_sends_the_jobs_a_killed_batch_never_sent(
    held: tuple[Sandbox, str, ManualClock, threading.Event], isolated: Path
) -> None:
    sandbox, base_url, _, release = held
    folder = Path("in")
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / f"{name}.png").write_bytes(CAT)
    _killed(
        ["edit", "in", "-p", "x", "--backend", "openai", "-j", "1", "-d", "out"],
        base_url,
        lambda: _posts(sandbox, "/v1/images/edits") == 1,
        "the first request",
    )
    release.set()
    states = sorted(record.state for record in journal_jobs())
    assert states == ["planned", "planned", "submitted"]
    # What a killed process left in the output folder goes before resume writes there.
    dead = subprocess.Popen(["true"])
    dead.wait()
    Path("out").mkdir(exist_ok=True)
    (Path("out") / f".nanoedit-{dead.pid}-0123456789ab.part").write_bytes(b"\x89PNG")
    result = run_cli(["resume", "--json"], env=_env(base_url))
    assert result.exit_code == 7  # two sent and saved; one may have been charged
    assert _posts(sandbox, "/v1/images/edits") == 3
    assert sorted(os.listdir("out")) == ["b-edit.jpg", "c-edit.jpg"]
    for name in ("b-edit.jpg", "c-edit.jpg"):
        with Image.open(io.BytesIO((Path("out") / name).read_bytes())) as image:
            assert image.size == (1200, 896)


def test_skip_existing_goes_on_with_a_killed_runs_task_instead_of_paying_again(
    held: tuple[Sandbox, str, ManualClock, threading.Event], isolated: Path
) -> None:
    sandbox, base_url, clock, _ = held
    url = f"{base_url}/samples/cat.png"
    command = ["edit", url, "-p", "a hat", "--backend", "duomi", "--skip-existing"]
    _killed(command, base_url, _a_task_journaled, "the task id journaled")
    clock.now = 60.0
    again = run_cli(command, env=_env(base_url))
    assert (again.exit_code, again.stdout) == (0, "cat-edit.jpg\n"), again.stderr
    assert _posts(sandbox, "/api/gemini/nano-banana-edit") == 1  # the same task, collected
    [record] = journal_jobs()  # the same row, not a second job
    assert record.state == "saved"
    third = run_cli(command, env=_env(base_url))
    assert (third.exit_code, third.stdout) == (0, "cat-edit.jpg\n")
    assert _posts(sandbox, "/api/gemini/nano-banana-edit") == 1  # done: skipped
    assert len(journal_jobs()) == 1


def test_skip_existing_does_not_take_another_prompts_image_for_this_one(
    held: tuple[Sandbox, str, ManualClock, threading.Event], isolated: Path
) -> None:
    sandbox, base_url, _, release = held
    release.set()
    Path("cat.png").write_bytes(CAT)
    first = run_cli(["edit", "cat.png", "-p", "a hat", "--backend", "openai"], env=_env(base_url))
    assert (first.exit_code, first.stdout) == (0, "cat-edit.jpg\n")
    # Another prompt: the image at the job's name is not its result (its provenance says so).
    other = ["edit", "cat.png", "-p", "a scarf", "--backend", "openai", "--skip-existing"]
    second = run_cli(other, env=_env(base_url))
    assert (second.exit_code, second.stdout) == (0, "cat-edit-2.jpg\n"), second.stderr
    assert _posts(sandbox, "/v1/images/edits") == 2
    # Without the journal, the provenance alone tells the done job from the other.
    for prompt, name in (("a hat", "cat-edit.jpg"), ("a scarf", "cat-edit-2.jpg")):
        again = ["edit", "cat.png", "-p", prompt, "--backend", "openai", "--skip-existing"]
        result = run_cli([*again, "--no-history"], env=_env(base_url))
        assert (result.exit_code, result.stdout) == (0, f"{name}\n"), result.stderr
    assert _posts(sandbox, "/v1/images/edits") == 2


def _killed_inside(script: str, argv: list[str], base_url: str) -> None:
    """Run nanoedit through ``script``, which kills it (SIGKILL) at a chosen moment."""
    run = subprocess.run(
        [sys.executable, "-c", script, *argv],
        env=_env(base_url), capture_output=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == -signal.SIGKILL, run.stderr


# nanoedit, killed by SIGKILL the moment its journal is told an image was saved: the image is
# in place, and the journal never hears of it.
KILLED_AFTER_PLACING = """
import os, signal, sys
from nanoedit.journal import store as journal
from nanoedit.__main__ import main

told = journal.Journal.result_saved

def result_saved(self, job_id, results):
    if any("path" in entry for entry in results):
        os.kill(os.getpid(), signal.SIGKILL)
    told(self, job_id, results)

journal.Journal.result_saved = result_saved
sys.argv[0] = "nanoedit"
main()
"""


def test_an_image_saved_just_before_a_kill_is_not_saved_twice_by_resume(
    held: tuple[Sandbox, str, ManualClock, threading.Event], isolated: Path
) -> None:
    sandbox, base_url, _, release = held
    release.set()
    Path("cat.png").write_bytes(CAT)
    argv = ["edit", "cat.png", "-p", "a hat", "--backend", "openai", "-d", "out"]
    _killed_inside(KILLED_AFTER_PLACING, argv, base_url)
    assert os.listdir("out") == ["cat-edit.jpg"]
    [record] = journal_jobs()
    assert record.state == "answered" and not record.saved_paths
    result = run_cli(["resume"], env=_env(base_url))
    assert result.exit_code == 0, result.stderr
    saved = isolated / "out" / "cat-edit.jpg"
    assert result.stdout == f"{saved}\n"
    assert os.listdir("out") == ["cat-edit.jpg"]  # not saved again as cat-edit-2.jpg
    with Image.open(saved) as image:
        assert image.size == (1200, 896)
    assert _posts(sandbox, "/v1/images/edits") == 1
    [record] = journal_jobs()
    assert record.state == "saved" and record.saved_paths == [saved]


# nanoedit, killed by SIGKILL the moment it is about to tell its journal the answer came: the
# base64 image is whole in the spool, and the journal says only that the request went out.
KILLED_BEFORE_ANSWERED = """
import os, signal, sys
from nanoedit.journal import store as journal
from nanoedit.__main__ import main

def answered(self, job_id, results, **given):
    os.kill(os.getpid(), signal.SIGKILL)

journal.Journal.answered = answered
sys.argv[0] = "nanoedit"
main()
"""


def test_a_result_spooled_just_before_a_kill_is_saved_by_resume_not_paid_again(
    held: tuple[Sandbox, str, ManualClock, threading.Event], isolated: Path
) -> None:
    sandbox, base_url, _, release = held
    release.set()
    Path("cat.png").write_bytes(CAT)
    argv = ["edit", "cat.png", "-p", "a hat", "--backend", "openai", "-d", "out",
            "--response-format", "b64_json"]  # fmt: skip
    _killed_inside(KILLED_BEFORE_ANSWERED, argv, base_url)
    [record] = journal_jobs()
    assert record.state == "submitted" and record.may_have_been_charged
    spool = data_dir(os.environ) / "spool"
    assert sorted(path.name for path in spool.iterdir()) == [f"{record.id}-1.bin"]
    result = run_cli(["resume"], env=_env(base_url))
    assert result.exit_code == 0, result.stderr
    saved = isolated / "out" / "cat-edit.jpg"
    assert result.stdout == f"{saved}\n"
    with Image.open(saved) as made:
        assert made.size == (1200, 896)
    assert _posts(sandbox, "/v1/images/edits") == 1  # taken from the spool, not paid again
    [record] = journal_jobs()
    assert record.state == "saved"
    assert list(spool.iterdir()) == []


def test_resume_says_the_jobs_another_process_is_running_are_left_to_it(
    held: tuple[Sandbox, str, ManualClock, threading.Event], isolated: Path
) -> None:
    sandbox, base_url, _, release = held
    Path("cat.png").write_bytes(CAT)
    running = subprocess.Popen(
        [NANOEDIT, "edit", "cat.png", "-p", "a hat", "--backend", "openai"], env=_env(base_url),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: _posts(sandbox, "/v1/images/edits") == 1, "the edit request")
        result = run_cli(["resume"], env=_env(base_url))
        assert (result.exit_code, result.stdout) == (0, "")
        assert result.stderr == (
            f"warning: job 1 is under way in process {running.pid}; left to it\n"
            "nothing to resume now: the 1 unfinished job is under way in other processes\n"
        )
        release.set()
        assert running.communicate(timeout=60)[0] == "cat-edit.jpg\n"
    finally:
        release.set()
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert _posts(sandbox, "/v1/images/edits") == 1
