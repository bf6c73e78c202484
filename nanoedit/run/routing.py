"""Which backend a job goes to: the one asked for, else the first configured that can take the
job's inputs, checked before anything is sent; and the backend instance a job is sent with.
Automatic selection loads backends in registry order and stops at the one it chooses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from nanoedit.backends.base import BackendBase, Takes, backend_class, backend_classes
from nanoedit.backends.registry import backend_names
from nanoedit.errors import ConfigError, InputError
from nanoedit.net.uploads import can_upload, check_uploader

if TYPE_CHECKING:
    from nanoedit.jobs import Job
    from nanoedit.net.http import JobHttp
    from nanoedit.settings.values import Settings


def choose_backend(job: Job, settings: Settings) -> str:
    """The backend a job goes to, by the setting, the inputs and what is configured."""
    local = [source for source in job.images if not source.is_url]
    wanted = settings.backend
    thread = job.thread
    # A thread goes on where it was begun, unless told otherwise (--backend, the config) or
    # that backend is not set up here: then it goes where any edit would go.
    if (
        wanted == "auto"
        and thread is not None
        and settings.backend_settings(thread.parent.backend).configured
    ):
        wanted = thread.parent.backend
    if wanted == "auto":
        wanted = _auto_backend(job, settings, bool(local))
    backend = backend_class(wanted)
    if not backend.takes.files and local:
        if not can_upload(settings.upload):
            others = " or ".join(
                f"--backend {other.name}" for other in backend_classes() if other.takes.files
            )
            raise InputError(
                f"{local[0].label} is a local file, and the {wanted} backend takes only "
                f"http(s) URLs; use {others}, pass a public URL, or have nanoedit upload it "
                "first: nanoedit config set upload.via command"
            )
        # Local files go through the uploader: a setting it lacks fails before any job.
        check_uploader(settings.upload)
    if backend.max_images is not None and len(job.images) > backend.max_images:
        raise InputError(
            f"{job.label}: {len(job.images)} images for one job, and the {wanted} backend "
            f"takes at most {backend.max_images}; pass fewer --ref images"
        )
    if not settings.backend_settings(wanted).configured:
        if settings.backend == "auto":
            suitable = [
                other
                for other in backend_classes()
                if job.kind == "generate"
                or not local
                or other.takes.files
                or can_upload(settings.upload)
            ]
            if job.kind == "edit" and not local:
                # Sorted, not filtered: an API that fetches URLs itself is the first advice.
                suitable.sort(key=lambda other: not other.takes.fetches)
            setup = ", or: ".join(other.setup_hint() for other in suitable)
            fetching = [
                other.name
                for other in backend_classes()
                if other.takes is Takes.URLS and settings.backend_settings(other.name).configured
            ]
            if local and fetching and not can_upload(settings.upload):
                # The one key there is serves URLs only: say how local files can reach it.
                setup += (
                    f", or let nanoedit upload local files for the {fetching[0]} backend: "
                    "nanoedit config set upload.via command && nanoedit config set "
                    "upload.command 'my-upload \"$1\"'"
                )
            raise ConfigError(
                f"no backend is configured for {job.label}; run: {setup} "
                "(or try it with no key: add --sandbox)"
            )
        raise ConfigError(
            f"the {wanted} backend is not configured; run: {backend.setup_hint()} "
            "(or try it with no key: add --sandbox)"
        )
    return wanted


def _auto_backend(job: Job, settings: Settings, has_local: bool) -> str:
    """The first configured backend, in registry order, that can take the job's inputs.

    Local files travel as bytes, or, with an uploader (``upload.via``) and no backend that
    takes bytes configured, as the URLs their upload gets; a job of URLs alone prefers an API
    that fetches them itself, and falls back to one that is sent them as files (nanoedit
    downloads them).
    """

    def first(fits: Callable[[type[BackendBase]], bool]) -> type[BackendBase] | None:
        return next((backend for backend in _configured(settings) if fits(backend)), None)

    if job.kind == "edit" and not has_local:
        fetching = first(lambda backend: backend.takes.fetches)
        if fetching:
            return fetching.name
    usable = first(lambda backend: backend.takes.files or job.kind == "generate")
    if usable:
        return usable.name
    if can_upload(settings.upload):
        uploading = first(lambda backend: backend.takes is Takes.URLS)
        if uploading:
            return uploading.name
    # Nothing fits: name the first backend that would, for the "not configured" message.
    takes_files = [backend for backend in backend_classes() if backend.takes.files]
    return (takes_files or list(backend_classes()))[0].name


def _configured(settings: Settings) -> Iterator[type[BackendBase]]:
    """The configured backends in registry order, each read (and its module imported) only
    when those before it did not do."""
    for name in backend_names():
        if settings.backend_settings(name).configured:
            yield backend_class(name)


def make_backend(name: str, settings: Settings, http: JobHttp) -> BackendBase:
    """An instance of the named backend, bound to its settings and the job's network."""
    return backend_class(name)(settings.backend_settings(name), http, settings.catalog)
