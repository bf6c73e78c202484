"""A poll that fails says nothing of the task: the task is paid for and may well finish.

A bad poll answer (JSON cut short, an error in an HTTP 200, a 5xx past its retries) is polled
again, as any safe request is; when the polls give up, the job stays in the journal as
submitted with its task, the message names the task and ``nanoedit resume``, and resume
collects it without submitting anything again. Counted on a served sandbox over loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Served, SkippingClock, journal_jobs, one_backend_env, run_cli
from PIL import Image

from nanoedit.sandbox import ReceivedRequest

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))


@dataclass(frozen=True)
class Api:
    """One asynchronous backend: how its submissions and polls look on the server."""

    name: str
    # The image of a generation at the default ratio, as each provider renders it.
    size: tuple[int, int]

    def env(self, served: Served) -> dict[str, str]:
        return one_backend_env(served, self.name)

    def submissions(self, received: list[ReceivedRequest]) -> int:
        return sum(1 for request in received if request.method == "POST" and self._paid(request))

    def _paid(self, request: ReceivedRequest) -> bool:
        if self.name == "duomi":
            return request.path == "/api/gemini/nano-banana"
        if self.name == "fal":
            return "/requests" not in request.path and not request.path.startswith("/storage")
        return request.path.endswith("/predictions") and request.path != "/v1/predictions"


APIS = {
    "duomi": Api("duomi", (1024, 1024)),
    "fal": Api("fal", (1024, 1024)),
    "replicate": Api("replicate", (1024, 1024)),
}
# Each way a poll's answer can be bad, on the APIs that answer so.
FAULTS = [
    ("duomi", "poll:bad-json"),
    ("duomi", "poll:error200"),
    ("duomi", "poll:502"),
    ("fal", "poll:bad-json"),
    ("fal", "poll:502"),
    ("replicate", "poll:bad-json"),
    ("replicate", "poll:502"),
]


def _saved_image(path: str, size: tuple[int, int]) -> None:
    with Image.open(path) as image:
        image.load()
        assert (image.format, image.size) == ("PNG", size)


@pytest.mark.parametrize(("api", "fault"), FAULTS, ids=[f"{a}-{f}" for a, f in FAULTS])
def test_a_poll_that_gives_up_leaves_the_task_to_resume_which_pays_nothing_more(
    served: Served, clock: SkippingClock, api: str, fault: str
) -> None:
    backend = APIS[api]
    served.sandbox.add_faults(fault)
    args = ["generate", "-p", "a red fox", "--backend", api, "--retries", "0", "-o", "fox.png"]
    result = run_cli(args, env=backend.env(served), clock=clock)
    assert (result.exit_code, result.stdout) == (5, ""), result.stderr
    [record] = journal_jobs()
    assert (record.state, len(record.tasks)) == ("submitted", 1)
    # fal's task is its request id, kept with the queue's URLs for it.
    task_id = json.loads(record.tasks[0])["request_id"] if api == "fal" else record.tasks[0]
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    assert f"{task_id} on 127.0.0.1" in last
    assert "was submitted and is paid for, but polling it failed once" in last
    assert last.endswith("; nanoedit resume 1 collects it when it has finished")
    assert "try again" not in last  # sending it again would pay twice
    assert not Path("fox.png").exists()
    assert backend.submissions(served.sandbox.received) == 1
    assert served.sandbox.pending_faults() == []

    resumed = run_cli(["resume"], env=backend.env(served), clock=clock)
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stdout == f"{Path('fox.png').resolve()}\n"
    _saved_image("fox.png", backend.size)
    assert backend.submissions(served.sandbox.received) == 1  # 0 new submissions
    [record] = journal_jobs()
    assert record.state == "saved"


@pytest.mark.parametrize(("api", "fault"), FAULTS, ids=[f"{a}-{f}" for a, f in FAULTS])
def test_a_bad_poll_answer_is_polled_again(
    served: Served, clock: SkippingClock, api: str, fault: str
) -> None:
    backend = APIS[api]
    # A 502 is retried by the request itself first: past those retries, the poll fails once.
    served.sandbox.add_faults(fault.replace("502", "502x4"))
    args = ["generate", "-p", "a red fox", "--backend", api, "-o", "fox.png"]
    result = run_cli(args, env=backend.env(served), clock=clock)
    assert (result.exit_code, result.stdout) == (0, "fox.png\n"), result.stderr
    _saved_image("fox.png", backend.size)
    polled_again = [line for line in result.stderr.splitlines() if "; polling again" in line]
    assert len(polled_again) == 1, result.stderr
    assert polled_again[0].startswith("warning: ")
    assert polled_again[0].endswith("; polling again (retry 1 of 3)")
    assert backend.submissions(served.sandbox.received) == 1
    assert served.sandbox.pending_faults() == []
    [record] = journal_jobs()
    assert record.state == "saved"


def test_the_console_script_gives_up_polling_then_resume_collects_the_task(
    served: Served, isolated: Path
) -> None:
    """As it was found: a duomi poll whose retries ran out, through the installed command."""
    # Four polls of four attempts each (the default --retries 3): every one a 502.
    served.sandbox.add_faults("poll:502x16")
    env = dict(os.environ) | APIS["duomi"].env(served)
    command = [NANOEDIT, "generate", "-p", "a red fox", "--backend", "duomi", "-o", "fox.png"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert (run.returncode, run.stdout) == (5, ""), run.stderr
    [record] = journal_jobs()
    assert (record.state, len(record.tasks)) == ("submitted", 1)
    last = run.stderr.splitlines()[-1]
    assert f"task {record.tasks[0]} on 127.0.0.1" in last
    assert "polling it failed 4 times in a row" in last
    assert last.endswith("; nanoedit resume 1 collects it when it has finished")
    assert len([line for line in run.stderr.splitlines() if "; polling again" in line]) == 3
    assert APIS["duomi"].submissions(served.sandbox.received) == 1

    resumed = subprocess.run(
        [NANOEDIT, "resume", "1"], env=env, capture_output=True, text=True, timeout=120
    )
    assert (resumed.returncode, resumed.stdout) == (0, f"{isolated / 'fox.png'}\n"), resumed.stderr
    _saved_image(str(isolated / "fox.png"), (1024, 1024))
    assert APIS["duomi"].submissions(served.sandbox.received) == 1  # 0 new submissions
