"""What every asynchronous API shares: submit, then poll each task with a growing interval
until all have ended, inside the job's time budget (``--timeout``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from nanoedit.errors import NetworkError, UsageError

if TYPE_CHECKING:
    from nanoedit.backends.base import Progress
    from nanoedit.http import JobHttp

T = TypeVar("T")
MAX_POLL_INTERVAL = 10.0
POLL_GROWTH = 1.5
# What a provider's task id is made of: it goes into a URL path, so nothing that moves it.
TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


def plain_id(text: str, what: str, example: str) -> str:
    """A task id as the user typed it, trimmed; a usage error naming ``what`` (``duomi task
    id``) and an ``example`` of one when it cannot be one."""
    cleaned = text.strip()
    if TASK_ID.fullmatch(cleaned):
        return cleaned
    shown = cleaned[:80] or "an empty string"
    raise UsageError(
        f"{shown!r} is not a {what}; pass the id as the provider shows it, such as {example}"
    )


def poll_until_done(
    tasks: Sequence[T],
    poll: Callable[[T], bool],
    http: JobHttp,
    progress: Progress,
    *,
    first_interval: float,
    state: Callable[[T], str],
    timed_out: Callable[[list[T]], str],
    abandon: Callable[[list[T]], bool] | None = None,
) -> None:
    """Poll every task not yet done until ``poll`` says each has ended (it raises on a failed
    task). Waits grow from ``first_interval`` by half each round up to 10 s, and never past
    the job's deadline: then a :class:`NetworkError` says ``timed_out(pending)``.

    ``abandon(pending)`` is called with the tasks still pending when the deadline passes or
    the run is interrupted, to cancel what the provider would otherwise still run (and
    charge for); it returns True when every one of them was cancelled.
    """
    # Here, not at the top: the CLI lists backends without loading httpx.
    from nanoedit.http import Interrupted

    deadline = http.deadline
    interval = first_interval
    pending = list(tasks)
    # A journaled job's tasks are left running when it stops waiting: resume collects them.
    if http.keep_tasks:
        abandon = None
    try:
        while pending:
            http.sleep(min(interval, deadline.remaining()))
            if deadline.remaining() <= 0:
                cancelled = abandon is not None and abandon(pending)
                if cancelled:
                    after = (
                        "it was cancelled on the server, so send the job again when the "
                        "provider is less busy, or raise --timeout"
                    )
                elif http.keep_tasks:
                    after = "it is still running on the server (it may be charged)"
                else:
                    after = (
                        "it may still finish on the server, so wait before sending the job "
                        "again, or raise --timeout"
                    )
                raise NetworkError(
                    f"{timed_out(pending)} did not finish within the job's time limit of "
                    f"{deadline.seconds:g} s ({deadline.elapsed():.0f} s elapsed, last state: "
                    f"{state(pending[0])}); {after}"
                )
            pending = [task for task in pending if not poll(task)]
            if pending:
                progress(f"waiting for the model, task {state(pending[0])}")
            interval = min(interval * POLL_GROWTH, MAX_POLL_INTERVAL)
    except Interrupted:
        if abandon is not None:
            abandon(pending)
        raise
