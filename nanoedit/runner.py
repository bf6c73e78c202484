"""Running a planned run: send the jobs (several at once), save what comes back.

The runner takes what :mod:`nanoedit.plan` made of the jobs and returns an outcome for each;
it reports what happens through an :class:`Events` object and never prints by itself.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, BinaryIO, Protocol

import httpx

from nanoedit import __version__
from nanoedit.backends import backend_class, make_backend
from nanoedit.backends.base import PreparedJob, Progress, Takes
from nanoedit.clock import Clock
from nanoedit.commands import stop_all as stop_commands
from nanoedit.config import Settings
from nanoedit.errors import AuthError, NanoeditError, OutputClosed
from nanoedit.http import Deadline, Interrupted, JobHttp, RetryPolicy
from nanoedit.inputs import InputImage, RunInputs
from nanoedit.jobs import Job, JobOutcome, PlannedJob, RunOptions, SavedImage
from nanoedit.models import expected_size
from nanoedit.save import PartFiles, ResultWriter, shown

if TYPE_CHECKING:
    from nanoedit.plan import Planned
    from nanoedit.provenance import Provenance

# After Ctrl-C, how long running jobs get to stop by themselves before the process exits.
CANCEL_GRACE = 1.0


class Events(Protocol):
    """What the runner tells whoever shows the run to a person."""

    def run_started(self, jobs: int) -> None:
        """The run begins with this many jobs."""

    def job_started(self, job: Job) -> None:
        """A job begins."""

    def job_phase(
        self, job: Job, phase: str, done: int | None = None, total: int | None = None
    ) -> None:
        """A job moved on (``uploading``, ``task running``, ``downloading``…), maybe with bytes."""

    def job_finished(self, outcome: JobOutcome) -> None:
        """A job ended: saved, failed or skipped."""

    def warning(self, text: str) -> None:
        """Something the user should know that is not an error."""

    def closed(self) -> bool:
        """Whether nobody reads the results any more (stdout was closed): send no new job."""


class Runner:
    """Runs planned jobs over one client, ``options.jobs`` at a time.

    ``inputs`` is the run's, which planning read the local images with: a stream's bytes are
    kept there. ``stdout`` is where ``-o -`` writes (the process's own unless given). Jobs
    read the time and wait (between retries, between polls) on ``clock``.
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
    ) -> None:
        self.settings = settings
        self.client = client
        self.events = events
        self.options = options
        self.inputs = inputs
        self.clock = clock or Clock()
        self.cancel = threading.Event()
        # The run's temporary files: Ctrl-C removes those still there.
        self.parts = PartFiles()
        self.writer = ResultWriter(
            settings.out_dir,
            overwrite=options.overwrite,
            metadata=options.metadata,
            sidecar=options.sidecar,
            stdout=stdout,
            warn=events.warning,
            parts=self.parts,
        )
        self.policy = RetryPolicy(
            retries=settings.retries,
            backoff=settings.backoff,
            retry_unsafe=options.retry_unsafe,
        )
        # Jobs not sent yet, by their place in the run.
        self._waiting: queue.SimpleQueue[tuple[int, PlannedJob]] = queue.SimpleQueue()
        # Guards taking a job from the queue against holding jobs back.
        self._lock = threading.Lock()
        # Per backend, the first rejection of its key: every job after it shares it.
        self._rejected: dict[str, NanoeditError] = {}

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
        with self._lock:
            unsent = self._hold_back(None)
        # Nobody reads the results: the jobs not sent yet stay unsent, and unreported.
        closed = OutputClosed("not sent: stdout was closed")
        for place, entry in unsent:
            outcomes[place] = _held_back(entry, closed)
        return [outcomes[place] for place in range(len(planned))]

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
                        for done, outcome in self._finish(place, entry, self.run_one(entry)):
                            outcomes[done] = outcome
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
            if self.cancel.is_set() or self.events.closed():
                return None
            try:
                return self._waiting.get_nowait()
            except queue.Empty:
                return None

    def _hold_back(self, backend: str | None) -> list[tuple[int, PlannedJob]]:
        """Take the jobs of ``backend`` (None: of any) that are not sent yet off the queue
        (with the lock)."""
        held: list[tuple[int, PlannedJob]] = []
        others: list[tuple[int, PlannedJob]] = []
        while True:
            try:
                waiting = self._waiting.get_nowait()
            except queue.Empty:
                break
            (held if backend in (None, waiting[1].backend) else others).append(waiting)
        for waiting in others:
            self._waiting.put(waiting)
        return held

    def _finish(
        self, place: int, planned: PlannedJob, outcome: JobOutcome | None
    ) -> list[tuple[int, JobOutcome]]:
        """Report a job that ran (None: one the interruption stopped, said nothing of), and
        the jobs its rejected key holds back; returns them all by their place in the run."""
        if outcome is None:
            return []
        done = [(place, outcome)]
        if isinstance(outcome.error, AuthError):
            first, held = self._key_rejected(planned.backend, outcome.error)
            if first is not outcome.error:
                outcome = replace(outcome, error=first)
            done = [(place, outcome), *held]
        for _, finished in done:
            self.events.job_finished(finished)
        return done

    def _key_rejected(
        self, backend: str, error: AuthError
    ) -> tuple[NanoeditError, list[tuple[int, JobOutcome]]]:
        """A job's key was rejected: every job of its backend not sent yet is held back, as it
        would fail the same way (and print the same error). Returns the error the job keeps
        (the first rejection, said once) and the jobs held back."""
        with self._lock:
            first = self._rejected.get(backend)
            if first is not None:
                # Sent before the first rejection came back: the same error, said once.
                return first, []
            self._rejected[backend] = error
            held = self._hold_back(backend)
        if held:
            error.message += f"; {len(held)} {'job' if len(held) == 1 else 'jobs'} not sent"
        return error, [(place, _held_back(entry, error)) for place, entry in held]

    def run_one(self, planned: PlannedJob) -> JobOutcome | None:
        """Send one planned job and save its images as soon as they arrive; None when the run
        was interrupted meanwhile."""
        job = planned.job
        if self.cancel.is_set():
            return None
        started = self.clock.monotonic()
        self.events.job_started(job)

        def progress(phase: str, done: int | None = None, total: int | None = None) -> None:
            self.events.job_phase(job, phase, done, total)

        def notify(text: str) -> None:
            self.events.warning(f"{job.label}: {text}")

        http = JobHttp(
            self.client,
            self.policy,
            Deadline(self.settings.timeout, self.clock.monotonic),
            notify=notify,
            cancel=self.cancel,
            proxy=self.settings.proxy,
            clock=self.clock,
        )
        outputs: list[SavedImage] = []
        warnings: list[str] = []
        text = ""
        error: NanoeditError | None = None
        try:
            backend = make_backend(planned.backend, self.settings, http)
            progress("preparing inputs")
            prepared = self.prepare(job, planned.backend, planned.model, http, progress)
            answer = backend.run(prepared, progress)
            results = answer.images
            text = answer.text
            warnings += self._check_count(job, len(results))
            # Worked out once per job: it hashes every input, and each image carries it.
            wanted = self.options.metadata or self.options.sidecar
            provenance = _provenance(planned, prepared) if wanted else None
            for number, result in enumerate(results, start=1):
                saved = self.writer.save(
                    job, planned.names, provenance, result, number, len(results), http, progress
                )
                outputs.append(saved)
                warnings += self._check_dimensions(planned, saved)
                if self.options.sidecar and provenance is not None:
                    self.writer.write_sidecar(provenance, saved, overwrite=job.output is not None)
            if answer.error is not None:
                raise answer.error  # what stopped the job, once the images it made are saved
        except NanoeditError as exc:
            error = exc
        except Interrupted:
            return None
        if self.cancel.is_set() and error is not None:
            return None  # the failure is the interruption's doing: say nothing of it
        return JobOutcome(
            job,
            planned.backend,
            planned.model,
            outputs=tuple(outputs),
            warnings=tuple(warnings),
            error=error,
            text=text,
            seconds=self.clock.monotonic() - started,
            sent=http.sent,
        )

    def prepare(
        self, job: Job, backend: str, model: str, http: JobHttp, progress: Progress
    ) -> PreparedJob:
        """Read the local images and, for a backend that needs bytes, download the URLs; for
        one that takes URLs only, have the uploader (``upload.via``) put local files online."""
        takes = backend_class(backend).takes
        if takes is Takes.URLS:
            from nanoedit.uploads import host_inputs

            urls, hosted = host_inputs(job, self.settings.upload, http, progress)
            for item in hosted:
                self.inputs.warn_notes(item.image)
            self._converted(item.image for item in hosted)
            return PreparedJob(job=job, model=model, urls=urls, hosted=hosted)
        # A provider that fetches URLs itself is sent them as they are.
        fetched = takes.fetches
        urls = tuple(source.location for source in job.images if fetched and source.is_url)
        uploads = tuple(
            self.inputs.load(source, http)
            for source in job.images
            if not (fetched and source.is_url)
        )
        for upload in uploads:
            self.inputs.warn_notes(upload)  # once per image, however many jobs send it
        self._converted(uploads)
        return PreparedJob(job=job, model=model, uploads=uploads, urls=urls)

    def _converted(self, images: Iterable[InputImage]) -> None:
        for upload in images:
            if upload.converted_from:
                self.events.warning(
                    f"{upload.source.label} is {upload.converted_from.upper()}, which the "
                    "API does not take; sending it converted losslessly to PNG"
                )

    def _check_count(self, job: Job, got: int) -> list[str]:
        """Warn when the provider sent fewer images than the job asked for (a relay that
        drops some, a task that came back empty): the job keeps what came."""
        asked = job.options.count
        if got >= asked:
            return []
        text = f"{job.label}: asked for {asked} images, {got} came back; the job keeps those {got}"
        self.events.warning(text)
        return [text]

    def _check_dimensions(self, planned: PlannedJob, saved: SavedImage) -> list[str]:
        """Warn when the provider ignored the ratio or size that was asked for."""
        options, model = planned.job.options, planned.model
        expected = expected_size(model, options.ratio, options.size)
        if expected is None or expected == (saved.width, saved.height):
            return []
        asked = " at ".join(
            part for part in (options.ratio, options.size) if part and part != "auto"
        )
        text = (
            f"{shown(saved.path)}: asked for {asked} ({expected[0]}x{expected[1]} on {model}) "
            f"but the image is {saved.width}x{saved.height}; the provider ignored the "
            f"{_what_was_ignored(expected, (saved.width, saved.height))}"
        )
        self.events.warning(text)
        return [text]


def _provenance(planned: PlannedJob, prepared: PreparedJob) -> Provenance:
    from nanoedit.provenance import InputRecord, Provenance

    options = planned.job.options
    # Sent as URLs: a local file an uploader put online has the hash of its bytes and its URL;
    # a URL given as it is was never read here.
    hosted = {item.url: item.image for item in prepared.hosted}
    inputs = tuple(
        InputRecord(item.source.label, hashlib.sha256(item.data).hexdigest())
        if not isinstance(item, str)
        else InputRecord(
            hosted[item].source.label, hashlib.sha256(hosted[item].data).hexdigest(), item
        )
        if item in hosted
        else InputRecord(item, "")
        for item in prepared.inputs()
    )
    return Provenance(
        prompt=options.prompt,
        model=planned.model,
        backend=planned.backend,
        ratio=options.ratio,
        size=options.size,
        inputs=inputs,
        version=__version__,
    )


def _held_back(planned: PlannedJob, error: NanoeditError) -> JobOutcome:
    """The outcome of a job never sent: ``error`` stopped the run before it."""
    return JobOutcome(planned.job, planned.backend, planned.model, error=error, held_back=True)


def _what_was_ignored(expected: tuple[int, int], got: tuple[int, int]) -> str:
    wanted, actual = expected[0] / expected[1], got[0] / got[1]
    # Within 2%: the sides of one ratio differ by rounding from one model to another.
    return "size" if abs(wanted - actual) <= 0.02 * wanted else "ratio"
