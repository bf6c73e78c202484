"""Running a planned run: send the jobs (several at once), save what comes back.

The runner takes what :mod:`nanoedit.run.plan` made of the jobs and returns an outcome for each;
it reports what happens through an :class:`~nanoedit.run.events.Events` object and never
prints by itself. It only schedules: a pool of threads takes the jobs in turn, holds back
those a rejected key or a budget stops, and keeps the outcomes in job order; each job's own
walk is :class:`~nanoedit.run.job.JobPipeline`'s.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, BinaryIO

import httpx

from nanoedit.clock import Clock
from nanoedit.commands import stop_all as stop_commands
from nanoedit.errors import (
    AuthError,
    ModelNotServed,
    NanoeditError,
    NetworkError,
    OutputClosed,
    StoppedError,
)
from nanoedit.jobs import NAMED_JOBS, JobOutcome, PlannedJob, RunOptions, named_jobs
from nanoedit.net.http import Deadline
from nanoedit.net.inputs import RunInputs
from nanoedit.output.parts import PartFiles
from nanoedit.run.job import JobPipeline
from nanoedit.settings.values import Settings

if TYPE_CHECKING:
    from nanoedit.journal.records import Claim
    from nanoedit.journal.store import Journal
    from nanoedit.run.budget import Budget
    from nanoedit.run.events import Events
    from nanoedit.run.plan import Planned

# After Ctrl-C, how long running jobs get to stop by themselves before the process exits.
CANCEL_GRACE = 1.0
# How often a job another run has under way is looked at again in the journal.
OTHER_RUN_POLL = 0.5


class Runner:
    """Runs planned jobs over one client, ``options.jobs`` at a time.

    ``inputs`` is the run's, which planning read the local images with: a stream's bytes are
    kept there. ``stdout`` is where ``-o -`` writes (the process's own unless given). Jobs
    read the time and wait (between retries, between polls) on ``clock``. With a ``journal``,
    each job's paid steps are written to it as they happen (for jobs that carry a journal id).
    """

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client,
        events: Events,
        options: RunOptions,
        inputs: RunInputs,
        stdout: BinaryIO | None = None,
        clock: Clock | None = None,
        journal: Journal | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.settings = settings
        self.journal = journal
        # Set by a first Ctrl-C or SIGTERM: no job is sent any more, those under way finish.
        self.draining = threading.Event()
        # Jobs a first Ctrl-C stopped before their first paid request: said at the end, with
        # the others the stop kept from being sent.
        self._stopped_early: list[tuple[int, PlannedJob]] = []
        # The jobs under way, by their place in the run: what an abort leaves unfinished.
        self._under_way: dict[int, PlannedJob] = {}
        self.events = events
        self.options = options
        self.inputs = inputs
        self.clock = clock or Clock()
        # --max-cost, --max-images: asked before each job is sent; the jobs it kept back.
        self.budget = budget
        self._over_budget: list[tuple[int, PlannedJob]] = []
        self.cancel = threading.Event()
        # The run's temporary files: Ctrl-C removes those still there.
        self.parts = PartFiles()
        # Each job's own walk, whichever thread takes it.
        self.jobs = JobPipeline(
            settings, client, events, options, inputs, clock=self.clock, journal=journal,
            parts=self.parts, cancel=self.cancel, draining=self.draining, stdout=stdout,
        )  # fmt: skip
        # Jobs not sent yet, by their place in the run.
        self._waiting: queue.SimpleQueue[tuple[int, PlannedJob]] = queue.SimpleQueue()
        # Guards taking a job from the queue against holding jobs back.
        self._lock = threading.Lock()
        # Per backend, the first rejection of its key: every job after it shares it.
        # What stopped a backend (its key rejected: model None) or one model on it (not
        # served), so the jobs still waiting for it are held back rather than sent to fail.
        self._rejected: dict[tuple[str, str | None], NanoeditError] = {}

    def run(self, planned: Sequence[Planned]) -> list[JobOutcome]:
        """Send every planned job, several at once, and return every job's outcome in job
        order (a refused or skipped one as planning left it); Ctrl-C stops them all."""
        self.events.run_started(len(planned))
        outcomes: dict[int, JobOutcome] = {}
        for place, entry in enumerate(planned):
            if isinstance(entry, PlannedJob):
                self._waiting.put((place, entry))
            else:
                outcomes[place] = entry
                self.events.job_finished(entry)
        runnable = len(planned) - len(outcomes)
        if runnable:
            self._run_all(runnable, outcomes)
        if self._over_budget and self.budget is not None:
            stopped = self.budget.stopped(len(self._over_budget))
            for place, entry in sorted(self._over_budget, key=lambda waiting: waiting[0]):
                outcomes[place] = self._over_limit(entry, stopped)
                self.events.job_finished(outcomes[place])
        if self.draining.is_set():
            for place, outcome in self._not_sent():
                outcomes[place] = outcome
                self.events.job_finished(outcome)
            return [outcomes[place] for place in range(len(planned))]
        with self._lock:
            unsent = self._hold_back(None)
        # Nobody reads the results: the jobs not sent yet stay unsent, and unreported.
        closed = OutputClosed("not sent: stdout was closed")
        for place, entry in unsent:
            outcomes[place] = _held_back(entry, closed)
        return [outcomes[place] for place in range(len(planned))]

    def _not_sent(self) -> list[tuple[int, JobOutcome]]:
        """The jobs a stop kept from being sent (an abort, or a first Ctrl-C before their
        turn), by their place in the run: each with the one error that names them all and
        what sends them."""
        with self._lock:
            unsent = sorted(
                [*self._stopped_early, *self._hold_back(None)], key=lambda waiting: waiting[0]
            )
            self._stopped_early = []
        others = [(place, entry) for place, entry in unsent if entry.elsewhere is not None]
        unsent = [(place, entry) for place, entry in unsent if entry.elsewhere is None]
        left = [(place, left_to_other(entry)) for place, entry in others]
        if not unsent:
            return left
        jobs = [entry for _, entry in unsent]
        them = "it" if len(jobs) == 1 else "them"
        if self.journal is None:
            then = f"run the command again to send {them}"
        elif len(jobs) <= NAMED_JOBS:
            then = f"nanoedit resume {' '.join(str(job.journal_id) for job in jobs)} sends {them}"
        else:
            then = f"nanoedit resume sends {them}"
        error = StoppedError(f"not sent, as the run was stopped first: {named_jobs(jobs)}; {then}")
        mine = [(place, _held_back(entry, error)) for place, entry in unsent]
        return sorted([*mine, *left], key=lambda done: done[0])

    def not_sent(self) -> list[JobOutcome]:
        """After an abort: the jobs it kept from being sent, each naming them all."""
        return [outcome for _, outcome in self._not_sent()]

    def _over_limit(self, planned: PlannedJob, stopped: NanoeditError) -> JobOutcome:
        """The outcome of a job a budget kept from being sent. Ended in the journal, not left
        for resume: a later run sends it only when the user raises the limit that held it
        (a job an earlier run took part of the way stays as it is: it was paid for)."""
        sent_before = bool(planned.tasks or planned.results)
        if self.journal is not None and planned.journal_id is not None and not sent_before:
            self.journal.held(planned.journal_id, stopped.message)
        return _held_back(planned, stopped)

    def _send(self, place: int, planned: PlannedJob) -> tuple[PlannedJob, JobOutcome | None]:
        """Run one job taken from the queue, first waiting for it when another run has it;
        returns the job as it ran and its outcome (None: the interruption stopped it)."""
        if planned.elsewhere is None:
            return planned, self.jobs.run(planned)
        settled = self._wait_for_other(planned)
        if not isinstance(settled, PlannedJob):
            return planned, settled
        if self.budget is not None and not self.budget.take(settled):
            return settled, self._over_limit(settled, self.budget.stopped(1))
        with self._lock:
            self._under_way[place] = settled
        return settled, self.jobs.run(settled)

    def _wait_for_other(self, planned: PlannedJob) -> PlannedJob | JobOutcome | None:
        """A job another live run has under way (``--skip-existing``): wait until that run
        ends it, then take it as a run started then would (see
        :func:`~nanoedit.journal.resumption.after_other`). None when the run is aborted
        meanwhile; a stop or the job's time limit leaves the job to the other run."""
        from nanoedit.journal.resumption import after_other

        assert self.journal is not None and planned.elsewhere is not None
        job, other = planned.job, planned.elsewhere
        self.events.job_started(job)
        deadline = Deadline(self.settings.timeout, self.clock.monotonic)
        said = False
        while True:
            settled = after_other(
                self.journal, other, planned, retry_unsafe=self.options.retry_unsafe,
                claim=self._claim_again,
            )  # fmt: skip
            if not isinstance(settled, int):
                return settled
            other = settled
            waiting = f"another run has it under way (job {other}); waiting for it"
            if not said:
                # Said once: a run that sends nothing for a while says why.
                self.events.warning(f"{job.label}: {waiting}")
                said = True
            self.events.job_phase(job, waiting)
            if self.clock.wait(OTHER_RUN_POLL, self.cancel):
                return None
            if self.draining.is_set():
                return left_to_other(replace(planned, elsewhere=other))
            if deadline.remaining() <= 0:
                left = f"another run has it under way (job {other}), and it is left to that run"
                error = NetworkError(
                    f"{job.label}: not sent: {left}; this run waited {deadline.seconds:g} s "
                    "for it (--timeout); run the command again with --skip-existing once that "
                    "run has ended"
                )
                return JobOutcome(job, planned.backend, planned.model, error=error)

    def _claim_again(self, planned: PlannedJob) -> Claim:
        """Claim a job of this run's anew: the other run it was left to ended it without its
        images."""
        from nanoedit.journal.recording import SavingOptions, new_job

        assert self.journal is not None
        saving = SavingOptions(
            out_dir=self.settings.out_dir,
            metadata=self.options.metadata,
            sidecar=self.options.sidecar,
            overwrite=self.options.overwrite,
        )
        fresh = new_job(planned, saving, self.inputs.sha256, self.settings.sandbox)
        return self.journal.claim([fresh], defer=True, seen=self.journal.last_id())[0]

    def drain(self) -> None:
        """Send no new job; the jobs under way finish and save."""
        self.draining.set()

    def under_way(self) -> list[PlannedJob]:
        """The jobs started and not finished (after an abort: those left unfinished)."""
        with self._lock:
            return [self._under_way[place] for place in sorted(self._under_way)]

    def _run_all(self, runnable: int, outcomes: dict[int, JobOutcome]) -> None:
        """Run the queued jobs in worker threads until the queue is empty or the run stops."""
        crashes: list[BaseException] = []
        working = min(max(1, self.options.jobs), runnable)
        count_lock = threading.Lock()
        all_done = threading.Event()

        def work() -> None:
            nonlocal working
            try:
                while (taken := self._next()) is not None:
                    place, entry = taken
                    try:
                        entry, outcome = self._send(place, entry)
                        if outcome is None and not self.cancel.is_set():
                            # Stopped by a first Ctrl-C before its first paid request: said at
                            # the end, with every job the stop kept from being sent.
                            with self._lock:
                                self._under_way.pop(place, None)
                                self._stopped_early.append((place, entry))
                        if outcome is not None:
                            # No longer under way before it is reported: a Ctrl-C that comes
                            # once its image is printed must not count it among those to wait for.
                            with self._lock:
                                self._under_way.pop(place, None)
                        for done, finished in self._finish(place, entry, outcome):
                            outcomes[done] = finished
                    except BaseException as exc:  # a bug: stop the run and show it
                        crashes.append(exc)
                        self.cancel.set()
            finally:
                with count_lock:
                    working -= 1
                    if working == 0:
                        all_done.set()

        # Daemon threads: a job blocked on a silent server must not keep the process alive
        # after Ctrl-C (an executor's threads are joined at exit, however long that takes).
        workers = [
            threading.Thread(target=work, name=f"job-{n}", daemon=True) for n in range(working)
        ]
        try:
            # Started inside the try: a job may be well on its way (its key command running)
            # before start() returns, and Ctrl-C then must stop it too.
            for worker in workers:
                worker.start()
            # Not Thread.join: a join that Ctrl-C interrupts can leave its thread looking
            # finished (is_alive() False, seen on Python 3.11), and the jobs would get no grace.
            while not all_done.wait(0.2):
                pass
        except BaseException:
            # Ctrl-C: every job stops where it stands (cancelling what it can on the server);
            # images saved stay, temporary files go.
            self.cancel.set()
            stop_commands()
            all_done.wait(CANCEL_GRACE)
            # Again: a job may have started a key or upload command just as Ctrl-C came.
            stop_commands()
            self.parts.discard_all()
            raise
        if crashes:
            raise crashes[0]

    def _next(self) -> tuple[int, PlannedJob] | None:
        """The next job to send, or None when there is none left or the run is stopping."""
        with self._lock:
            if self.cancel.is_set() or self.draining.is_set() or self.events.closed():
                return None
            try:
                taken = self._waiting.get_nowait()
            except queue.Empty:
                return None
            # A job another run has costs this run nothing unless it comes to send it.
            counted = taken[1].elsewhere is None
            if counted and self.budget is not None and not self.budget.take(taken[1]):
                self._over_budget = [taken, *self._hold_back(None)]
                return None
            self._under_way[taken[0]] = taken[1]
            return taken

    def _hold_back(
        self, backend: str | None, model: str | None = None
    ) -> list[tuple[int, PlannedJob]]:
        """Take the jobs of ``backend`` (None: of any), and of ``model`` on it when given, that
        are not sent yet off the queue (with the lock)."""
        held: list[tuple[int, PlannedJob]] = []
        others: list[tuple[int, PlannedJob]] = []
        while True:
            try:
                waiting = self._waiting.get_nowait()
            except queue.Empty:
                break
            hit = backend in (None, waiting[1].backend) and model in (None, waiting[1].model)
            (held if hit else others).append(waiting)
        for waiting in others:
            self._waiting.put(waiting)
        return held

    def _finish(
        self, place: int, planned: PlannedJob, outcome: JobOutcome | None
    ) -> list[tuple[int, JobOutcome]]:
        """Report a job that ran (None: one the interruption stopped, said nothing of), and
        the jobs its rejected key holds back; returns them all by their place in the run."""
        if self.budget is not None and planned.elsewhere is None:
            self.budget.spent(planned, outcome)
        if outcome is None:
            return []
        done = [(place, outcome)]
        if isinstance(outcome.error, ModelNotServed):
            outcome.error.message = _not_served_message(planned, outcome.error)
        if isinstance(outcome.error, AuthError | ModelNotServed):
            model = planned.model if isinstance(outcome.error, ModelNotServed) else None
            first, held = self._stop_sending(planned.backend, model, outcome.error)
            if first is not outcome.error:
                outcome = replace(outcome, error=first)
            done = [(place, outcome), *held]
        for _, finished in done:
            self.events.job_finished(finished)
        return done

    def _stop_sending(
        self, backend: str, model: str | None, error: NanoeditError
    ) -> tuple[NanoeditError, list[tuple[int, JobOutcome]]]:
        """A job's key was rejected (``model`` None), or its model is not served: every job of
        that backend (and model) not sent yet is held back, as it would fail the same way (and
        print the same error). Returns the error the job keeps (the first, said once) and the
        jobs held back."""
        with self._lock:
            first = self._rejected.get((backend, model))
            if first is not None:
                # Sent before the first rejection came back: the same error, said once.
                return first, []
            self._rejected[(backend, model)] = error
            held = self._hold_back(backend, model)
        if held:
            error.message += f"; {len(held)} {'job' if len(held) == 1 else 'jobs'} not sent"
        return error, [(place, _held_back(entry, error)) for place, entry in held]


def _not_served_message(planned: PlannedJob, error: ModelNotServed) -> str:
    """What the user reads when the provider does not serve the job's model: which model on
    which backend, and where to see what it does serve."""
    if error.message.startswith(f"{error.where} does not serve {planned.model} "):
        return error.message  # said already (a job of several requests)
    return (
        f"{error.where} does not serve {planned.model} on the {planned.backend} backend "
        f"({error.said}); it was not retried: see nanoedit models --backend {planned.backend} "
        "for what it sells, and choose another --model"
    )


def _held_back(planned: PlannedJob, error: NanoeditError) -> JobOutcome:
    """The outcome of a job never sent: ``error`` stopped the run before it."""
    return JobOutcome(
        planned.job,
        planned.backend,
        planned.model,
        error=error,
        held_back=True,
        journal_id=planned.journal_id,
    )


def left_to_other(planned: PlannedJob) -> JobOutcome:
    """The outcome of a job a stop found another run having under way: left to that run."""
    message = (
        f"{planned.job.label}: not sent: another run has it under way (job "
        f"{planned.elsewhere}), and it is left to that run"
    )
    return _held_back(planned, StoppedError(message))
