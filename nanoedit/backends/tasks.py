"""What every asynchronous API shares: submit, then poll each task with a growing interval
until all have ended, inside the job's time budget (``--timeout``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from nanoedit.errors import (
    AuthError,
    NanoeditError,
    NetworkError,
    RefusedError,
    TaskFailed,
    UsageError,
)

if TYPE_CHECKING:
    from nanoedit.jobs import Progress
    from nanoedit.net.http import JobHttp

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

    A poll that fails (an answer cut short, an error in its body, retries used up) is not the
    task's end: it is polled again next round, up to ``--retries`` rounds in a row, and when
    they are used up the error says the task is paid for and still on the server, and is
    marked ``tasks_left`` (the journal keeps the job for resume). Only the task's own end
    (:class:`TaskFailed`, :class:`RefusedError`) fails the job for good.

    ``abandon(pending)`` is called with the tasks still pending when the deadline passes or
    the run is interrupted, to cancel what the provider would otherwise still run (and
    charge for); it returns True when every one of them was cancelled.
    """
    # Here, not at the top: the CLI lists backends without loading httpx.
    from nanoedit.net.http import Interrupted

    deadline = http.deadline
    interval = first_interval
    pending = list(tasks)
    failed_rounds = 0
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
            pending, failure = _poll_round(pending, poll)
            failed_rounds = failed_rounds + 1 if failure is not None else 0
            # Out of time during the poll: the deadline above says so next round.
            if failure is not None and deadline.remaining() > 0:
                retries = http.policy.retries
                if failed_rounds > retries or isinstance(failure, AuthError):
                    raise _gave_up(failure, timed_out(pending), failed_rounds, http.keep_tasks)
                http.notify(
                    f"{_cause(failure)}; polling again (retry {failed_rounds} of {retries})"
                )
            if pending:
                progress(f"waiting for the model, task {state(pending[0])}")
            interval = min(interval * POLL_GROWTH, MAX_POLL_INTERVAL)
    except Interrupted:
        if abandon is not None:
            abandon(pending)
        raise


def _poll_round(
    pending: list[T], poll: Callable[[T], bool]
) -> tuple[list[T], NanoeditError | None]:
    """Poll each pending task once: the tasks still pending, and the error of the first poll
    that failed (its task stays pending). A task's own end is raised as it comes."""
    still: list[T] = []
    failure: NanoeditError | None = None
    for task in pending:
        try:
            if not poll(task):
                still.append(task)
        except (TaskFailed, RefusedError):
            raise
        except NanoeditError as exc:
            still.append(task)
            failure = failure or exc
    return still, failure


def _gave_up(error: NanoeditError, tasks: str, rounds: int, kept: bool) -> NanoeditError:
    """The last failed poll's error, saying that the task is paid for and not lost: the
    journal keeps it for resume (``kept``), else ``nanoedit fetch`` collects it by its id."""
    times = "once" if rounds == 1 else f"{rounds} times in a row"
    later = "" if kept else "; nanoedit fetch saves its result by its task id"
    error.message = (
        f"{tasks} was submitted and is paid for, but polling it failed {times} "
        f"({_cause(error)}); it may still finish on the server{later}"
    )
    error.tasks_left = True
    return error


# The advice a failed request ends with: for a poll it would mean sending the job again,
# paying twice, while the task may well be done.
_RETRY_ADVICE = re.compile(r"(?:[;,] (?:wait a little and |or )?try again(?: later)?)+$")


def _cause(error: NanoeditError) -> str:
    """What went wrong with a poll, without the advice to try again."""
    return _RETRY_ADVICE.sub("", error.message)
