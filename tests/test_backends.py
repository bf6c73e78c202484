"""Backends below the CLI, where time itself must be injected: the URL-list task deadline."""

from __future__ import annotations

import httpx
import pytest

from nanoedit.backends.base import PreparedJob
from nanoedit.backends.duomi import DuomiBackend
from nanoedit.config import BackendSettings
from nanoedit.errors import ExitCode, NetworkError
from nanoedit.jobs import Options, build_edit_jobs
from nanoedit.sandbox import SANDBOX_BASE_URL, SANDBOX_KEY, Sandbox, SandboxTransport


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def test_a_task_that_never_finishes_ends_at_the_deadline_with_the_elapsed_time() -> None:
    sandbox = Sandbox(faults="task-stuck")
    fake = FakeTime()
    settings = BackendSettings("duomi", SANDBOX_BASE_URL, SANDBOX_KEY, "gemini-2.5-flash-image")
    with httpx.Client(transport=SandboxTransport(sandbox)) as client:
        backend = DuomiBackend(settings, client, deadline=60, clock=fake.clock, sleep=fake.sleep)
        [job] = build_edit_jobs(["https://h.example/cat.png"], [], Options(prompt="x"), None)
        phases: list[str] = []
        with pytest.raises(NetworkError) as caught:
            backend.run(
                PreparedJob(job=job, model=settings.model, urls=(job.images[0].location,)),
                phases.append,
            )
    assert caught.value.exit_code == ExitCode.NETWORK
    assert "did not finish within 60 s (last state: running)" in caught.value.message
    assert (
        "it may still finish on the server, so wait before sending the job again"
        in caught.value.message
    )
    # The interval grows by half each time from 2 s and stops at 10 s; the last sleep is cut
    # to what is left of the deadline.
    assert fake.sleeps == [2.0, 3.0, 4.5, 6.75, 10.0, 10.0, 10.0, 10.0, 3.75]
    assert phases[:2] == ["submitting task", "waiting for the model"]
    assert set(phases[2:]) == {"task running"}
    polls = [r for r in sandbox.received if r.method == "GET"]
    assert len(polls) == len(fake.sleeps)
