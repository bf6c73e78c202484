"""The core of a run: check every job, send each to its backend, save what comes back.

The runner takes plain jobs and settings and returns outcomes; it reports what happens
through an :class:`Events` object and never prints by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from nanoedit import __version__
from nanoedit.backends import URL_ONLY_LIMITS, choose_backend, make_backend
from nanoedit.backends.base import PreparedJob, ResultImage, host_of, network_error
from nanoedit.config import Settings
from nanoedit.errors import ApiError, ExitCode, InputError, NanoeditError, UsageError
from nanoedit.imageformat import describe
from nanoedit.inputs import InputImage, check_image, load_local
from nanoedit.jobs import ImageSource, Job
from nanoedit.save import (
    SavedImage,
    check_directory,
    check_output_path,
    decode_result,
    save_as,
    save_new,
)

# Result images and input downloads larger than this are refused rather than held in memory.
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
CONNECT_TIMEOUT = 10.0
# A synchronous 4K edit can take minutes before the first byte of the answer.
READ_TIMEOUT = 300.0


class Events(Protocol):
    """What the runner tells whoever shows the run to a person."""

    def job_started(self, job: Job) -> None:
        """A job begins."""

    def job_phase(self, job: Job, phase: str) -> None:
        """A job moved on (``uploading``, ``task running``, ``downloading``…)."""

    def job_finished(self, outcome: JobOutcome) -> None:
        """A job ended, saved or failed."""

    def warning(self, text: str) -> None:
        """Something the user should know that is not an error."""


@dataclass
class JobOutcome:
    """What became of one job."""

    job: Job
    backend: str | None = None
    model: str | None = None
    outputs: list[SavedImage] = field(default_factory=list)
    error: NanoeditError | None = None

    @property
    def ok(self) -> bool:
        """True when the job saved every image and failed nowhere."""
        return self.error is None


def make_client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """One HTTP client for the whole run, so connections are pooled."""
    return httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        follow_redirects=False,
        headers={"User-Agent": f"nanoedit/{__version__}"},
    )


def client_for(settings: Settings) -> httpx.Client:
    """The run's client: over the network, or wired to the in-process sandbox."""
    if not settings.sandbox:
        return make_client()
    from nanoedit.sandbox import Sandbox, SandboxTransport

    # A short task time shows the asynchronous flow of the URL-list API without a long wait.
    return make_client(SandboxTransport(Sandbox(task_seconds=1.0)))


def exit_code_for(outcomes: Sequence[JobOutcome]) -> ExitCode:
    """0 when all saved, the failure's own code when all failed, 7 when some did."""
    failures = [outcome.error for outcome in outcomes if outcome.error is not None]
    if not failures:
        return ExitCode.OK
    if len(failures) < len(outcomes):
        return ExitCode.PARTIAL
    return failures[0].exit_code


class Runner:
    """Runs jobs one after another over one client."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client,
        events: Events,
        *,
        overwrite: bool = False,
    ) -> None:
        self.settings = settings
        self.client = client
        self.events = events
        self.overwrite = overwrite

    def run(self, jobs: Sequence[Job]) -> list[JobOutcome]:
        """Check every job first (no request is sent for a bad one), then run the good ones."""
        images = sum(job.options.count for job in jobs)
        if any(job.output is not None for job in jobs) and images > 1:
            raise UsageError(
                f"-o/--output names one file, but this run makes {images} images; "
                "use -d/--out-dir instead"
            )
        outcomes = [JobOutcome(job) for job in jobs]
        for outcome in outcomes:
            try:
                outcome.backend = self.check(outcome.job)
                backend_settings = self.settings.backend_settings(outcome.backend)
                outcome.model = outcome.job.options.model or backend_settings.model
            except NanoeditError as exc:
                outcome.error = exc
        for outcome in outcomes:
            if outcome.error is None:
                self.run_one(outcome)
            else:
                self.events.job_finished(outcome)
        return outcomes

    def check(self, job: Job) -> str:
        """Route the job and check its local inputs and output; returns the backend name."""
        backend = choose_backend(job, self.settings)
        # Every local image is read and decoded here, before any job is sent, and read again
        # when its job runs: a long batch must not hold all its inputs in memory at once.
        for source in job.images:
            if not source.is_url:
                load_local(source)
        if job.output is not None:
            check_output_path(job.output, self.overwrite)
        else:
            check_directory(self.settings.out_dir)
        return backend

    def run_one(self, outcome: JobOutcome) -> None:
        """Send one checked job and save its images as soon as they arrive."""
        job = outcome.job
        assert outcome.backend is not None and outcome.model is not None
        self.events.job_started(job)
        try:
            backend = make_backend(outcome.backend, self.settings, self.client)

            def progress(phase: str) -> None:
                self.events.job_phase(job, phase)

            progress("preparing inputs")
            prepared = self.prepare(job, outcome.backend, outcome.model)
            results = backend.run(prepared, progress)
            for number, result in enumerate(results, start=1):
                progress("downloading" if result.url else "saving")
                self.save(outcome, result, number, len(results))
        except NanoeditError as exc:
            outcome.error = exc
        self.events.job_finished(outcome)

    def prepare(self, job: Job, backend: str, model: str) -> PreparedJob:
        """Read the local images and, for a backend that needs bytes, download the URLs."""
        if backend in URL_ONLY_LIMITS:
            return PreparedJob(job=job, model=model, urls=tuple(s.location for s in job.images))
        uploads = tuple(self.load(source) for source in job.images)
        for upload in uploads:
            if upload.converted_from:
                self.events.warning(
                    f"{upload.source.location} is {upload.converted_from.upper()}, which the "
                    "API does not take; sending it converted losslessly to PNG"
                )
        return PreparedJob(job=job, model=model, uploads=uploads)

    def load(self, source: ImageSource) -> InputImage:
        """An input's bytes: read from disk, or downloaded from its URL."""
        if not source.is_url:
            return load_local(source)
        data = self.download(source.location, f"the input {source.location}", InputError)
        return check_image(source, data)

    def save(self, outcome: JobOutcome, result: ResultImage, number: int, total: int) -> None:
        """Fetch a result's bytes if needed, check they are an image, write them."""
        job = outcome.job
        where = f"result {number} of {job.label}" if total > 1 else f"the result of {job.label}"
        if result.data is not None:
            data = result.data
        else:
            assert result.url is not None
            data = self.download(result.url, where, ApiError)
        image = decode_result(data, where)
        if job.output is not None:
            saved, note = save_as(image, job.output, self.overwrite)
            if note:
                self.events.warning(note)
        else:
            saved = save_new(image, self.settings.out_dir, job.stem)
        outcome.outputs.append(saved)

    def download(self, url: str, what: str, failure: type[NanoeditError]) -> bytes:
        """GET an image with no credentials, following redirects, within the size cap.

        The API key never goes with it: result URLs live on third-party storage. A refusal
        is raised as ``failure`` (an input's problem or the API's).
        """
        try:
            with self.client.stream("GET", url, follow_redirects=True) as response:
                if response.status_code != 200:
                    body = response.read()[:512]
                    hint = (
                        "the link has expired; results must be fetched at once"
                        if response.status_code in (401, 403, 410)
                        else "check the address"
                    )
                    raise failure(
                        f"{what} could not be downloaded from {host_of(url)}: "
                        f"HTTP {response.status_code} ({describe(body)}); {hint}"
                    )
                chunks = []
                received = 0
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise failure(
                            f"{what} at {host_of(url)} is larger than "
                            f"{MAX_DOWNLOAD_BYTES // (1024 * 1024)} MiB; refusing to download it"
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            raise network_error(exc, host_of(url)) from None
