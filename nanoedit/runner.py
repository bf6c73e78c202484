"""The core of a run: check every job, send them (several at once), save what comes back.

The runner takes plain jobs and settings and returns outcomes; it reports what happens
through an :class:`Events` object and never prints by itself.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import httpx

from nanoedit import __version__
from nanoedit.backends import backend_class, choose_backend, make_backend
from nanoedit.backends.base import (
    BackendBase,
    PlannedRequest,
    PreparedJob,
    Takes,
)
from nanoedit.batch import natural_stems
from nanoedit.config import Settings, plain_http_warning, stop_key_commands
from nanoedit.errors import (
    AuthError,
    InputError,
    NanoeditError,
    OutputClosed,
    OverwriteError,
    UsageError,
)
from nanoedit.http import Deadline, Interrupted, JobHttp, RetryPolicy
from nanoedit.imageformat import IMAGE_SUFFIXES
from nanoedit.inputs import RunInputs
from nanoedit.jobs import Job, JobOutcome, SavedImage
from nanoedit.models import ModelLimits, expected_size, limits_of
from nanoedit.save import (
    STDOUT,
    PartFiles,
    ResultWriter,
    check_directory,
    check_output_path,
    existing_image,
    is_stream,
    next_free_path,
    shown,
    stem_taken,
)

if TYPE_CHECKING:
    from nanoedit.provenance import Provenance

DEFAULT_JOBS = 4
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


@dataclass(frozen=True)
class RunOptions:
    """How a run behaves, beyond the settings."""

    overwrite: bool = False
    jobs: int = DEFAULT_JOBS
    skip_existing: bool = False
    shard: tuple[int, int] = (1, 1)
    retry_unsafe: bool = False
    metadata: bool = True
    sidecar: bool = False


class Runner:
    """Runs jobs over one client, ``options.jobs`` at a time."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client,
        events: Events,
        options: RunOptions | None = None,
        stdout: BinaryIO | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.events = events
        self.options = options or RunOptions()
        self.cancel = threading.Event()
        self.inputs = RunInputs(events.warning)
        # The run's temporary files: Ctrl-C removes those still there.
        self.parts = PartFiles()
        self.writer = ResultWriter(
            settings.out_dir,
            overwrite=self.options.overwrite,
            metadata=self.options.metadata,
            sidecar=self.options.sidecar,
            stdout=stdout,
            warn=events.warning,
            parts=self.parts,
        )
        self._name_taken = self.writer.taken
        self._waiting: queue.SimpleQueue[JobOutcome] = queue.SimpleQueue()
        # Guards taking a job from the queue against holding jobs back.
        self._lock = threading.Lock()
        # Per backend, the first rejection of its key: every job after it shares it.
        self._rejected: dict[str, NanoeditError] = {}
        self.policy = RetryPolicy(
            retries=settings.retries,
            backoff=settings.backoff,
            retry_unsafe=self.options.retry_unsafe,
        )

    # Checking -----------------------------------------------------------------------------

    def select(self, jobs: Sequence[Job]) -> list[JobOutcome]:
        """This shard's jobs, checked, named, and marked when they can be skipped.

        No request is sent for a job that fails here.
        """
        if any(job.output == STDOUT for job in jobs) and (
            len(jobs) > 1 or jobs[0].options.count > 1
        ):
            images = sum(job.options.count for job in jobs)
            raise UsageError(
                f"-o - writes one image to stdout, but this run makes {images} images; "
                "use -d/--out-dir instead"
            )
        targets = [job.output for job in jobs if job.output is not None]
        if len(targets) != len(set(targets)) or any(
            job.output is not None and job.options.count > 1 for job in jobs
        ):
            images = sum(job.options.count for job in jobs if job.output is not None)
            raise UsageError(
                f"-o/--output names one file, but this run makes {images} images for it; "
                "use -d/--out-dir instead"
            )
        stems = natural_stems(jobs)
        every_stem = frozenset(stem for names in stems for stem in names)
        k, n = self.options.shard
        outcomes = [
            JobOutcome(job, stems=names)
            for position, (job, names) in enumerate(zip(jobs, stems, strict=True))
            if position % n == k - 1
        ]
        for outcome in outcomes:
            try:
                outcome.backend = self.check(outcome.job)
                backend = backend_class(outcome.backend)
                outcome.model = backend.model_id(
                    outcome.job.options.model
                    or self.settings.backend_settings(outcome.backend).model
                )
                check_request(backend, outcome.model, outcome.job)
            except NanoeditError as exc:
                outcome.error = exc
                continue
            if self.options.skip_existing:
                found = self._existing(outcome)
                if found is not None:
                    # Reported as this run's results: a resumed batch still lists them all.
                    outcome.skipped = True
                    outcome.outputs = found
        self._reserve(outcomes, every_stem)
        for name in sorted({o.backend for o in outcomes if o.backend and o.error is None}):
            warning = plain_http_warning(self.settings.backend_settings(name))
            if warning:
                self.events.warning(warning)
            self._check_response_format(name, outcomes)
        return outcomes

    def _check_response_format(self, backend: str, outcomes: Sequence[JobOutcome]) -> None:
        """Warn, once per backend, when --response-format asks for what it cannot give."""
        honoured = backend_class(backend).response_formats
        asked = {
            o.job.options.response_format
            for o in outcomes
            if o.backend == backend and o.error is None and not o.skipped
        }
        only = "URLs" if honoured == ("url",) else " or ".join(honoured)
        for wanted in sorted(asked - set(honoured)):
            self.events.warning(
                f"the {backend} backend returns images as {only} only, so --response-format "
                f"{wanted} does not apply to its jobs; their images are downloaded from the URLs"
            )

    def check(self, job: Job) -> str:
        """Route the job and check its local inputs and output; returns the backend name."""
        backend = choose_backend(job, self.settings)
        for source in job.images:
            if not source.is_url:
                self.inputs.check_local(source)
        if job.output is not None and is_stream(job.output):
            if self.options.sidecar:
                raise UsageError(
                    f"--sidecar writes FILE.json beside a saved file, and -o {_dash(job.output)} "
                    "is not one; leave out --sidecar, or give -o FILE"
                )
        elif job.output is not None:
            if not (self.options.skip_existing and existing_image(job.output)):
                check_output_path(job.output, self.options.overwrite)
                if self.options.sidecar and not self.options.overwrite:
                    self._check_sidecar_free(job.output)
        else:
            check_directory(self.settings.out_dir)
        return backend

    def _check_sidecar_free(self, image: Path) -> None:
        from nanoedit.provenance import sidecar_path

        sidecar = sidecar_path(image)
        if os.path.lexists(sidecar):
            raise OverwriteError(
                f"{sidecar} already exists; pass --overwrite to replace it, or choose another -o"
            )

    def _existing(self, outcome: JobOutcome) -> list[SavedImage] | None:
        """The images a job saved on an earlier run, or None when any of them is missing."""
        job = outcome.job
        if job.output is not None:
            if is_stream(job.output):
                return None
            choices = [[job.output]]
        else:
            folder = self.settings.out_dir
            choices = [[folder / f"{stem}{x}" for x in IMAGE_SUFFIXES] for stem in outcome.stems]
        found = []
        for paths in choices:
            image = next((image for path in paths if (image := existing_image(path))), None)
            if image is None:
                return None
            found.append(image)
        return found

    def _reserve(self, outcomes: list[JobOutcome], every_stem: frozenset[str]) -> None:
        """Give each job to run its names now, in job order, so threads finishing in any
        order still save under the same names."""
        claimed: set[str] = set()
        for outcome in outcomes:
            if outcome.error is not None or outcome.skipped or outcome.job.output is not None:
                continue
            names = []
            for stem in outcome.stems:
                avoid = (every_stem - {stem}) | claimed
                if stem in avoid or stem_taken(self.settings.out_dir, stem, self._name_taken):
                    # Number on from the job's own stem: cat-edit-3, not cat-edit-2-2.
                    folder, base = self.settings.out_dir, outcome.job.stem
                    stem = next_free_path(
                        folder, base, "", avoid=avoid | {stem}, exists=self._name_taken
                    ).name
                claimed.add(stem)
                names.append(stem)
            outcome.stems = tuple(names)

    # Running ------------------------------------------------------------------------------

    def run(self, jobs: Sequence[Job]) -> list[JobOutcome]:
        """Check every job first, then run the good ones concurrently; Ctrl-C stops them all."""
        outcomes = self.select(jobs)
        self.events.run_started(len(outcomes))
        runnable = []
        for outcome in outcomes:
            if outcome.error is None and not outcome.skipped:
                runnable.append(outcome)
            else:
                self.events.job_finished(outcome)
        if not runnable:
            return outcomes
        # Daemon threads: a job blocked on a silent server must not keep the process alive
        # after Ctrl-C (an executor's threads are joined at exit, however long that takes).
        for outcome in runnable:
            self._waiting.put(outcome)
        crashes: list[BaseException] = []

        def work() -> None:
            while (outcome := self._next()) is not None:
                try:
                    self.run_one(outcome)
                except BaseException as exc:  # a bug: stop the run and show it
                    crashes.append(exc)
                    self.cancel.set()

        workers = [
            threading.Thread(target=work, name=f"job-{n}", daemon=True)
            for n in range(min(max(1, self.options.jobs), len(runnable)))
        ]
        try:
            # Started inside the try: a job may be well on its way (its key command running)
            # before start() returns, and Ctrl-C then must stop it too.
            for worker in workers:
                worker.start()
            for worker in workers:
                while worker.is_alive():
                    worker.join(0.2)
        except BaseException:
            # Ctrl-C: every job stops where it stands; images saved stay, temporary files go.
            self.cancel.set()
            stop_key_commands()
            deadline = time.monotonic() + CANCEL_GRACE
            for worker in workers:
                if worker.is_alive():  # one not started yet cannot be joined
                    worker.join(max(0.0, deadline - time.monotonic()))
            # Again: a job may have started its key command just as Ctrl-C came.
            stop_key_commands()
            self.parts.discard_all()
            raise
        if crashes:
            raise crashes[0]
        with self._lock:
            unsent = self._hold_back(None)
        if unsent:
            # Nobody reads the results: the jobs not sent yet stay unsent, and unreported.
            closed = OutputClosed("not sent: stdout was closed")
            for outcome in unsent:
                outcome.error, outcome.held_back = closed, True
        return outcomes

    def _next(self) -> JobOutcome | None:
        """The next job to send, or None when there is none left or the run is stopping."""
        with self._lock:
            if self.cancel.is_set() or self.events.closed():
                return None
            try:
                return self._waiting.get_nowait()
            except queue.Empty:
                return None

    def _hold_back(self, backend: str | None) -> list[JobOutcome]:
        """Take the jobs of ``backend`` (None: of any) that are not sent yet off the queue
        (with the lock)."""
        held: list[JobOutcome] = []
        others: list[JobOutcome] = []
        while True:
            try:
                outcome = self._waiting.get_nowait()
            except queue.Empty:
                break
            (held if backend in (None, outcome.backend) else others).append(outcome)
        for outcome in others:
            self._waiting.put(outcome)
        return held

    def _key_rejected(self, outcome: JobOutcome, error: AuthError) -> list[JobOutcome]:
        """A job's key was rejected: every job of its backend not sent yet is held back, as it
        would fail the same way (and print the same error). Returns the jobs held back."""
        assert outcome.backend is not None
        with self._lock:
            first = self._rejected.get(outcome.backend)
            if first is not None:
                # Sent before the first rejection came back: the same error, said once.
                outcome.error = first
                return []
            self._rejected[outcome.backend] = error
            held = self._hold_back(outcome.backend)
        if held:
            error.message += f"; {len(held)} {'job' if len(held) == 1 else 'jobs'} not sent"
        for other in held:
            other.error, other.held_back = error, True
        return held

    def run_one(self, outcome: JobOutcome) -> None:
        """Send one checked job and save its images as soon as they arrive."""
        job = outcome.job
        assert outcome.backend is not None and outcome.model is not None
        if self.cancel.is_set():
            return
        started = time.monotonic()
        self.events.job_started(job)

        def progress(phase: str, done: int | None = None, total: int | None = None) -> None:
            self.events.job_phase(job, phase, done, total)

        def notify(text: str) -> None:
            self.events.warning(f"{job.label}: {text}")

        http = JobHttp(
            self.client,
            self.policy,
            Deadline(self.settings.timeout),
            notify=notify,
            cancel=self.cancel,
            proxy=self.settings.proxy,
        )
        try:
            backend = make_backend(outcome.backend, self.settings, http)
            progress("preparing inputs")
            prepared = self.prepare(job, outcome.backend, outcome.model, http)
            answer = backend.run(prepared, progress)
            results = answer.images
            outcome.text = answer.text
            self._check_count(outcome, len(results))
            # Worked out once per job: it hashes every input, and each image carries it.
            wanted = self.options.metadata or self.options.sidecar
            provenance = self._provenance(outcome, prepared) if wanted else None
            for number, result in enumerate(results, start=1):
                saved = self.writer.save(
                    job, outcome.stems, provenance, result, number, len(results), http, progress
                )
                outcome.outputs.append(saved)
                self._check_dimensions(outcome, saved)
                if self.options.sidecar and provenance is not None:
                    self.writer.write_sidecar(provenance, saved, overwrite=job.output is not None)
        except NanoeditError as exc:
            outcome.error = exc
        except Interrupted:
            return
        finally:
            outcome.sent = http.sent
        if self.cancel.is_set() and outcome.error is not None:
            return  # the failure is the interruption's doing: say nothing of it
        outcome.seconds = time.monotonic() - started
        held = []
        if isinstance(outcome.error, AuthError):
            held = self._key_rejected(outcome, outcome.error)
        self.events.job_finished(outcome)
        for other in held:
            self.events.job_finished(other)

    def prepare(self, job: Job, backend: str, model: str, http: JobHttp) -> PreparedJob:
        """Read the local images and, for a backend that needs bytes, download the URLs."""
        if backend_class(backend).takes is Takes.URLS:
            return PreparedJob(job=job, model=model, urls=tuple(s.location for s in job.images))
        uploads = tuple(self.inputs.load(source, http) for source in job.images)
        for upload in uploads:
            if upload.source.is_url:
                self.inputs.warn_notes(upload)  # a local one's were given when it was checked
            if upload.converted_from:
                self.events.warning(
                    f"{upload.source.label} is {upload.converted_from.upper()}, which the "
                    "API does not take; sending it converted losslessly to PNG"
                )
        return PreparedJob(job=job, model=model, uploads=uploads)

    def plan(self, outcome: JobOutcome) -> list[PlannedRequest]:
        """The requests a checked job would send (for ``--dry-run``); nothing is sent."""
        assert outcome.backend is not None and outcome.model is not None
        job = outcome.job
        http = JobHttp(self.client, self.policy, Deadline(self.settings.timeout))
        backend = make_backend(outcome.backend, self.settings, http)
        urls = tuple(source.location for source in job.images)
        return backend.plan(PreparedJob(job=job, model=outcome.model, urls=urls))

    # Saving -------------------------------------------------------------------------------

    def _provenance(self, outcome: JobOutcome, prepared: PreparedJob) -> Provenance:
        from nanoedit.provenance import InputRecord, Provenance

        assert outcome.backend is not None and outcome.model is not None
        options = outcome.job.options
        if prepared.uploads:
            inputs = tuple(
                InputRecord(upload.source.label, hashlib.sha256(upload.data).hexdigest())
                for upload in prepared.uploads
            )
        else:
            # Sent as URLs, never read here: there are no bytes to hash.
            inputs = tuple(InputRecord(url, "") for url in prepared.urls)
        return Provenance(
            prompt=options.prompt,
            model=outcome.model,
            backend=outcome.backend,
            ratio=options.ratio,
            size=options.size,
            inputs=inputs,
            version=__version__,
        )

    def _check_count(self, outcome: JobOutcome, got: int) -> None:
        """Warn when the provider sent fewer images than the job asked for (a relay that
        drops some, a task that came back empty): the job keeps what came."""
        asked = outcome.job.options.count
        if got >= asked:
            return
        text = (
            f"{outcome.job.label}: asked for {asked} images, {got} came back; "
            f"the job keeps those {got}"
        )
        outcome.warnings.append(text)
        self.events.warning(text)

    def _check_dimensions(self, outcome: JobOutcome, saved: SavedImage) -> None:
        """Warn when the provider ignored the ratio or size that was asked for."""
        options = outcome.job.options
        assert outcome.model is not None
        expected = expected_size(outcome.model, options.ratio, options.size)
        if expected is None or expected == (saved.width, saved.height):
            return
        asked = " at ".join(
            part for part in (options.ratio, options.size) if part and part != "auto"
        )
        text = (
            f"{shown(saved.path)}: asked for {asked} "
            f"({expected[0]}x{expected[1]} on {outcome.model}) "
            f"but the image is {saved.width}x{saved.height}; the provider ignored the "
            f"{_what_was_ignored(expected, (saved.width, saved.height))}"
        )
        outcome.warnings.append(text)
        self.events.warning(text)


def check_request(backend: type[BackendBase], model: str, job: Job) -> None:
    """Refuse what the model cannot do (a size, a ratio, too many images) before a request
    is paid for. Sizes and ratios are the model's own; the image count is checked where the
    backend knows the model's limit."""
    options = job.options
    facts = backend.limits(model) or limits_of(model)
    if facts is None:
        return
    size, ratio = options.size, options.ratio
    if size is not None and size not in facts.sizes:
        able = _models_that(lambda other: size in other.sizes)
        raise UsageError(
            f"{model} renders {', '.join(facts.sizes)} only, so size {size} cannot be honoured; "
            "drop it (from --size, NANOEDIT_SIZE or default.size), or choose a model that "
            f"renders it ({able})"
        )
    if ratio != "auto" and ratio not in facts.ratios:
        able = _models_that(lambda other: ratio in other.ratios)
        raise UsageError(
            f"{model} does not render the ratio {ratio}; choose another --ratio, or a model "
            f"that renders it ({able})"
        )
    limits = backend.limits(model)
    if limits is not None and len(job.images) > limits.max_images:
        raise InputError(
            f"{job.label}: {len(job.images)} images for one job, and {model} takes at most "
            f"{limits.max_images}; pass fewer --ref images"
        )


def _models_that(test: Callable[[ModelLimits], bool]) -> str:
    from nanoedit.models import GOOGLE_ALIASES, GOOGLE_MODELS

    names = [alias for alias, model in GOOGLE_ALIASES.items() if test(GOOGLE_MODELS[model])]
    return "--model " + " or ".join(names)


def _dash(path: Path) -> str:
    """An ``-o`` value as the user typed it: ``-`` for stdout."""
    return "-" if path == STDOUT else str(path)


def _what_was_ignored(expected: tuple[int, int], got: tuple[int, int]) -> str:
    wanted, actual = expected[0] / expected[1], got[0] / got[1]
    # Within 2%: the sides of one ratio differ by rounding from one model to another.
    return "size" if abs(wanted - actual) <= 0.02 * wanted else "ratio"
