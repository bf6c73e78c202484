"""Ctrl-C, SIGTERM and SIGHUP during a run: the first stops sending, the second aborts.

A paid request already out is best let finish: its answer is saved, and nothing is paid twice.
So the first Ctrl-C (or SIGTERM, as CI cancels, ``timeout`` and ``docker stop`` send; or
SIGHUP, as a closed terminal or a dropped ssh session sends) only stops new jobs from going
out; the second aborts the jobs under way, which the journal keeps for ``nanoedit resume``.
A signal the run started with ignored (``nohup`` ignores SIGHUP) stays ignored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from nanoedit.run.runner import left_to_other

if TYPE_CHECKING:
    from nanoedit.jobs import JobOutcome, PlannedJob
    from nanoedit.journal.store import Journal
    from nanoedit.run.events import Events
    from nanoedit.run.plan import Planned
    from nanoedit.run.runner import Runner

# SIGHUP is POSIX's: Windows has none.
SIGNALS = (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else []))


def handled(signals: Sequence[int] = SIGNALS) -> list[int]:
    """The signals of ``signals`` that the process does not ignore: one started by ``nohup``
    ignores SIGHUP, and means it to go on when the terminal goes."""
    return [number for number in signals if signal.getsignal(number) is not signal.SIG_IGN]


class Drainable(Protocol):
    """A run that can stop sending new jobs."""

    draining: threading.Event

    def under_way(self) -> Sequence[PlannedJob]:
        """The jobs started and not finished."""
        ...

    def drain(self) -> None:
        """Send no new job; the jobs under way finish."""
        ...


@contextmanager
def stop_gently(run: Drainable, say: Callable[[str], None], resume: bool) -> Iterator[None]:
    """While the block runs, the first Ctrl-C or SIGTERM drains ``run`` and ``say``s so; the
    next one raises :class:`KeyboardInterrupt` to abort. Outside the main thread (where no
    signal handler can be set) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if run.draining.is_set():
            raise KeyboardInterrupt
        from nanoedit.jobs import named_jobs

        # Said before the run drains: what a job says once it sees the run stopping comes after.
        under_way = run.under_way()
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        jobs = (
            "job under way finishes and saves"
            if len(under_way) == 1
            else "jobs under way finish and save"
        )
        which = f": {named_jobs(under_way)}" if under_way else ""
        later = "; nanoedit resume takes them up later" if resume else ""
        say(
            f"{name}: stopping; no new job is sent, the {len(under_way)} {jobs}{which}. "
            f"Ctrl-C again aborts{later}"
        )
        run.drain()

    previous = {number: signal.getsignal(number) for number in handled()}
    for number in previous:
        signal.signal(number, handler)
    try:
        yield
    finally:
        for number, action in previous.items():
            signal.signal(number, action)


class Stop:
    """A stop told from outside the run, where no signal comes (an MCP client cancelling its
    tool call; the run is in a worker thread): each run watching it drains, as at a first
    Ctrl-C. Told from one thread (the protocol's loop), watched from another (the run's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._told = False
        self._runs: list[Drainable] = []

    @property
    def told(self) -> bool:
        """Whether the stop was told."""
        return self._told

    def tell(self) -> None:
        """Drain every run watching, and each run that starts watching later: none sends a
        new job, the jobs under way finish and save (they may be paid already)."""
        with self._lock:
            self._told = True
            runs = list(self._runs)
        for run in runs:
            run.drain()

    @contextmanager
    def watching(self, run: Drainable) -> Iterator[None]:
        """While the block runs, the stop drains ``run`` (at once, when it was told before)."""
        with self._lock:
            told = self._told
            self._runs.append(run)
        if told:
            run.drain()
        try:
            yield
        finally:
            with self._lock:
                self._runs.remove(run)


def run_gently(
    runner: Runner,
    planned: Sequence[Planned],
    events: Events,
    journal: Journal | None,
    stop: Stop | None = None,
) -> list[JobOutcome]:
    """Run the jobs with Ctrl-C and SIGTERM handled as above, and ``stop`` (when given)
    draining the run as a first Ctrl-C does. When the run is aborted, each job left under
    way is reported (its task ids, and the command that takes it up again) before the
    interruption goes on up, and so is every job it kept from being sent."""
    watched = nullcontext() if stop is None else stop.watching(runner)
    with stop_gently(runner, events.warning, resume=journal is not None), watched:
        try:
            return runner.run(planned)
        except KeyboardInterrupt:
            for outcome in [*left_under_way(runner.under_way(), journal), *runner.not_sent()]:
                events.job_finished(outcome)
            raise


def left_under_way(jobs: Sequence[PlannedJob], journal: Journal | None) -> list[JobOutcome]:
    """What an abort left of each job under way, as the journal holds it."""
    from nanoedit.backends.base import backend_class
    from nanoedit.errors import StoppedError
    from nanoedit.jobs import JobOutcome

    outcomes = []
    for planned in jobs:
        record = None
        label = planned.job.label
        if planned.elsewhere is not None:
            # Never this run's: another run has it under way, and keeps it.
            outcomes.append(left_to_other(planned))
            continue
        if journal is not None and planned.journal_id is not None:
            record = journal.get(planned.journal_id)
        if record is None:
            message = f"{label}: stopped while under way; nothing was kept to resume it"
            outcomes.append(
                JobOutcome(
                    planned.job,
                    planned.backend,
                    planned.model,
                    error=StoppedError(message),
                    sent=True,
                    left="stopped",
                )
            )
            continue
        if record.tasks:
            # A handle may hold more than the id (fal's queue URLs): the id is what people know.
            ids = ", ".join(backend_class(record.backend).task_id(h) for h in record.tasks)
            what = f"task {ids} was submitted"
            then = f"nanoedit resume {record.id} saves its result"
        elif record.results:
            what = "its result came and is not saved yet"
            then = f"nanoedit resume {record.id} saves it"
        elif record.state == "submitted":
            what = "its request went out, so it may have been charged"
            then = f"nanoedit resume {record.id} --retry-unsafe sends it again"
        else:
            what = "it was not sent"
            then = f"nanoedit resume {record.id} sends it"
        outcomes.append(
            JobOutcome(
                planned.job,
                planned.backend,
                planned.model,
                error=StoppedError(f"{label}: stopped while under way: {what}; {then}"),
                sent=record.state != "planned",
                journal_id=record.id,
                left=record.state,
                tasks=tuple(backend_class(record.backend).task_id(h) for h in record.tasks),
            )
        )
    return outcomes
