"""``nanoedit fetch``: save the results of asynchronous tasks submitted elsewhere (by another
tool, or by a run that was killed before it saved them), by their task ids.

Nothing is submitted: each task is polled until it ends (the backend's ``collect``), and its
images are saved as a run saves them, through the same :class:`~nanoedit.run.writer.ResultWriter`.
The images carry no provenance: the prompt and inputs of a task made elsewhere are unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from nanoedit.backends.base import BackendBase, backend_class, backend_classes
from nanoedit.backends.registry import backend_names
from nanoedit.clock import Clock
from nanoedit.errors import ConfigError, NanoeditError, UsageError
from nanoedit.jobs import Job, JobOutcome, Options, RunOptions, SavedImage, safe_file_stem
from nanoedit.output.names import check_directory, check_output_path, is_stream
from nanoedit.output.parts import PartFiles
from nanoedit.run.routing import make_backend
from nanoedit.run.writer import ResultWriter

if TYPE_CHECKING:
    import httpx

    from nanoedit.run.events import Events
    from nanoedit.settings.values import Settings


@dataclass(frozen=True)
class TaskToFetch:
    """One task to collect: the job its images are saved as, and the backend's handle."""

    job: Job
    backend: str
    model: str
    handle: str


def asynchronous_names() -> tuple[str, ...]:
    """The backends whose tasks can be fetched, in registry order."""
    return tuple(backend.name for backend in backend_classes() if backend.asynchronous)


def fetch_backend(name: str) -> type[BackendBase]:
    """The backend ``fetch`` collects from; a usage error for one that answers at once."""
    if name not in backend_names():
        raise UsageError(
            f"there is no backend called {name!r}; fetch collects tasks of the asynchronous "
            f"backends: {', '.join(asynchronous_names())}"
        )
    backend = backend_class(name)
    if not backend.asynchronous:
        raise UsageError(
            f"the {name} backend answers each request at once, so it has no tasks to fetch; "
            f"fetch collects tasks of the asynchronous backends: {', '.join(asynchronous_names())}"
        )
    return backend


def plan_fetch(
    settings: Settings,
    name: str,
    task_ids: Sequence[str],
    *,
    model: str | None,
    output: Path | None,
    overwrite: bool,
) -> list[TaskToFetch]:
    """Check everything that can be checked before the network: the backend, its settings,
    each task id, and where the images go. ``model`` is the one the tasks were sent to
    (None: the backend's configured one)."""
    backend = fetch_backend(name)
    if not task_ids:
        raise UsageError("no task id given; pass the ids the provider answered")
    if output is not None and len(task_ids) > 1:
        raise UsageError(
            f"-o names one file, and {len(task_ids)} tasks are given; use -d DIR for several"
        )
    backend_settings = settings.backend_settings(name)
    if not backend_settings.configured:
        raise ConfigError(f"the {name} backend is not configured; run: {backend.setup_hint()}")
    model_id = settings.catalog.resolve(
        name, model or backend_settings.model, free_ids=backend.free_ids
    ).sent
    tasks: list[TaskToFetch] = []
    seen: set[str] = set()
    for text in task_ids:
        handle = backend.handle_from_user(text, model_id)
        task = backend.task_id(handle)
        if task in seen:
            raise UsageError(f"task {task} is given twice; name each task once")
        seen.add(task)
        stem = safe_file_stem(f"{name}-{task}") or name
        job = Job("fetch", (), Options(prompt=""), stem, output=output, task=task)
        tasks.append(TaskToFetch(job, name, model_id, handle))
    if output is None:
        check_directory(settings.out_dir)
    elif not is_stream(output):
        check_output_path(output, overwrite)
    return tasks


class Fetcher:
    """Collects tasks one after another over one client, and saves their images.

    It reports through the runner's :class:`~nanoedit.run.events.Events` (the same reporter as a
    run's), and waits (between polls, between retries) on ``clock``.
    """

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client,
        events: Events,
        options: RunOptions,
        stdout: BinaryIO | None = None,
        clock: Clock | None = None,
    ) -> None:
        from nanoedit.net.http import RetryPolicy

        self.settings = settings
        self.client = client
        self.events = events
        self.clock = clock or Clock()
        self.parts = PartFiles()
        self.writer = ResultWriter(
            settings.out_dir,
            overwrite=options.overwrite,
            metadata=options.metadata,
            sidecar=False,
            stdout=stdout,
            warn=events.warning,
            parts=self.parts,
        )
        self.policy = RetryPolicy(retries=settings.retries, backoff=settings.backoff)

    def fetch(self, tasks: Sequence[TaskToFetch]) -> list[JobOutcome]:
        """Collect every task and save its images; Ctrl-C leaves the tasks as they are on the
        server (they can be fetched again) and removes the temporary files."""
        self.events.run_started(len(tasks))
        outcomes = []
        try:
            for task in tasks:
                if self.events.closed():
                    break  # nobody reads the results: the tasks stay on the server
                outcome = self.fetch_one(task)
                self.events.job_finished(outcome)
                outcomes.append(outcome)
        except BaseException:
            self.parts.discard_all()
            raise
        return outcomes

    def fetch_one(self, task: TaskToFetch) -> JobOutcome:
        """Collect one task and save its images as they come."""
        from nanoedit.net.http import Deadline, JobHttp

        job = task.job
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
            proxy=self.settings.proxy,
            clock=self.clock,
        )
        outputs: list[SavedImage] = []
        error: NanoeditError | None = None
        text = ""
        try:
            backend = make_backend(task.backend, self.settings, http)
            answer = backend.collect([task.handle], progress)
            text = answer.text
            results = answer.images
            if job.output is not None and len(results) > 1:
                raise UsageError(
                    f"{job.label} has {len(results)} images, and -o names one file; fetch it "
                    "again with -d DIR to save them all"
                )
            for number, result in enumerate(results, start=1):
                outputs.append(
                    self.writer.save(job, (), None, result, number, len(results), http, progress)
                )
            if answer.error is not None:
                raise answer.error
        except NanoeditError as exc:
            error = exc
        return JobOutcome(
            job,
            task.backend,
            task.model,
            outputs=tuple(outputs),
            error=error,
            text=text,
            seconds=self.clock.monotonic() - started,
            sent=http.sent,
        )
