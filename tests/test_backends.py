"""Backends below the CLI, where time itself must be injected: the URL-list task deadline, and
what becomes of tasks abandoned at the deadline or on Ctrl-C."""

from __future__ import annotations

import threading

import httpx
import pytest

from nanoedit.backends.base import PreparedJob
from nanoedit.backends.duomi import DuomiBackend
from nanoedit.backends.tasks import poll_until_done
from nanoedit.errors import ExitCode, NetworkError
from nanoedit.jobs import Options, build_edit_jobs
from nanoedit.net.http import Deadline, Interrupted, JobHttp, RetryPolicy
from nanoedit.net.inputs import InputImage
from nanoedit.sandbox import SANDBOX_BASE_URL, SANDBOX_KEY, Sandbox, SandboxTransport
from nanoedit.settings.values import BackendSettings


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
    settings = BackendSettings(
        "duomi", SANDBOX_BASE_URL, SANDBOX_KEY, "gemini-3.1-flash-image-preview"
    )
    with httpx.Client(transport=SandboxTransport(sandbox)) as client:
        http = JobHttp(client, RetryPolicy(), Deadline(60, fake.clock), sleeper=fake.sleep)
        backend = DuomiBackend(settings, http)
        [job] = build_edit_jobs(["https://h.example/cat.png"], [], Options(prompt="x"), None)
        phases: list[str] = []

        def progress(phase: str, done: int | None = None, total: int | None = None) -> None:
            phases.append(phase)

        with pytest.raises(NetworkError) as caught:
            backend.run(
                PreparedJob(job=job, model=settings.model, urls=(job.images[0].location,)),
                progress,
            )
    assert caught.value.exit_code == ExitCode.NETWORK
    assert (
        "did not finish within the job's time limit of 60 s (60 s elapsed, last state: running)"
        in caught.value.message
    )
    assert (
        "it may still finish on the server, so wait before sending the job again, "
        "or raise --timeout" in caught.value.message
    )
    # The interval grows by half each time from 2 s and stops at 10 s; the last sleep is cut
    # to what is left of the deadline.
    assert fake.sleeps == [2.0, 3.0, 4.5, 6.75, 10.0, 10.0, 10.0, 10.0, 3.75]
    assert phases[:2] == ["submitting task", "waiting for the model, task submitted"]
    assert set(phases[2:]) == {"waiting for the model, task running"}
    polls = [r for r in sandbox.received if r.method == "GET"]
    # No poll after the last sleep: the budget is spent.
    assert len(polls) == len(fake.sleeps) - 1


def test_tasks_still_pending_at_the_deadline_are_abandoned_and_the_message_says_so() -> None:
    fake = FakeTime()
    http = JobHttp(httpx.Client(), RetryPolicy(), Deadline(5, fake.clock), sleeper=fake.sleep)
    abandoned: list[list[str]] = []

    def abandon(pending: list[str]) -> bool:
        abandoned.append(pending)
        return True

    with pytest.raises(NetworkError) as caught:
        poll_until_done(
            ["a", "b"],
            lambda task: task == "a",
            http,
            lambda phase, done=None, total=None: None,
            first_interval=2,
            state=lambda task: "queued",
            timed_out=lambda pending: f"task {', '.join(pending)}",
            abandon=abandon,
        )
    assert abandoned == [["b"]]
    assert caught.value.message == (
        "task b did not finish within the job's time limit of 5 s (5 s elapsed, last state: "
        "queued); it was cancelled on the server, so send the job again when the provider is "
        "less busy, or raise --timeout"
    )


def test_tasks_pending_when_the_run_is_interrupted_are_abandoned() -> None:
    cancel = threading.Event()
    http = JobHttp(httpx.Client(), RetryPolicy(), Deadline(60), cancel=cancel)
    abandoned: list[list[str]] = []

    def poll(task: str) -> bool:
        cancel.set()  # Ctrl-C while the first poll is answered
        return False

    def abandon(pending: list[str]) -> bool:
        abandoned.append(pending)
        return False

    with pytest.raises(Interrupted):
        poll_until_done(
            ["a"],
            poll,
            http,
            lambda phase, done=None, total=None: None,
            first_interval=0.001,
            state=lambda task: "queued",
            timed_out=lambda pending: "task",
            abandon=abandon,
        )
    assert abandoned == [["a"]]


def test_a_prepared_job_gives_its_inputs_back_in_the_jobs_order() -> None:
    [job] = build_edit_jobs(
        ["https://h.example/a.png"], ["b.png", "https://h.example/c.png"], Options(prompt="x"), None
    )
    local = InputImage(job.images[1], b"bytes", "png")
    prepared = PreparedJob(
        job=job,
        model="m",
        uploads=(local,),
        urls=("https://h.example/a.png", "https://h.example/c.png"),
    )
    assert prepared.inputs() == ["https://h.example/a.png", local, "https://h.example/c.png"]
