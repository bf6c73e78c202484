"""The backends nanoedit speaks, and which one a job goes to.

A new backend is one module with a class like :class:`OpenAIBackend` and one line in
:data:`BACKENDS`.
"""

from __future__ import annotations

from collections.abc import Callable

from nanoedit.backends.base import Backend
from nanoedit.backends.duomi import MAX_IMAGE_URLS, DuomiBackend
from nanoedit.backends.openai import OpenAIBackend
from nanoedit.config import BackendSettings, Settings
from nanoedit.errors import ConfigError, InputError
from nanoedit.http import JobHttp
from nanoedit.jobs import Job

BackendFactory = Callable[[BackendSettings, JobHttp], Backend]

BACKENDS: dict[str, BackendFactory] = {
    "openai": OpenAIBackend,
    "duomi": DuomiBackend,
}

# Backends that take only public URLs, with how many images one job may carry.
URL_ONLY_LIMITS: dict[str, int] = {"duomi": MAX_IMAGE_URLS}

# The --response-format values each backend can honour (duomi's tasks give URLs only).
RESPONSE_FORMATS: dict[str, tuple[str, ...]] = {"openai": ("url", "b64_json"), "duomi": ("url",)}

SETUP_HINTS: dict[str, str] = {
    "openai": "nanoedit config set openai.base_url https://YOUR-SERVER && "
    "nanoedit config set openai.api_key YOUR-KEY",
    "duomi": "nanoedit config set duomi.api_key YOUR-KEY",
}


def choose_backend(job: Job, settings: Settings) -> str:
    """The backend a job goes to, by the setting, the inputs and what is configured."""
    local = [source for source in job.images if not source.is_url]
    wanted = settings.backend
    if wanted == "auto":
        wanted = _auto_backend(job, settings, bool(local))
    limit = URL_ONLY_LIMITS.get(wanted)
    if limit is not None:
        if local:
            raise InputError(
                f"{local[0].location} is a local file, and the {wanted} backend takes only "
                "http(s) URLs; use --backend openai (multipart) or pass a public URL"
            )
        if len(job.images) > limit:
            raise InputError(
                f"{job.label}: {len(job.images)} images for one job, and the {wanted} backend "
                f"takes at most {limit}; pass fewer --ref images"
            )
    if not settings.backend_settings(wanted).configured:
        if settings.backend == "auto" and job.kind == "edit" and not local:
            setup = f"{SETUP_HINTS['duomi']}, or: {SETUP_HINTS['openai']}"
            raise ConfigError(
                f"no backend is configured for {job.label}; run: {setup} "
                "(or try it with no key: add --sandbox)"
            )
        raise ConfigError(
            f"the {wanted} backend is not configured; run: {SETUP_HINTS[wanted]} "
            "(or try it with no key: add --sandbox)"
        )
    return wanted


def _auto_backend(job: Job, settings: Settings, has_local: bool) -> str:
    # Local files can only travel as multipart; URL-only jobs prefer the URL-list API,
    # which fetches the images itself, and fall back to downloading them for multipart.
    if job.kind == "edit" and not has_local and settings.duomi.configured:
        return "duomi"
    if settings.openai.configured or job.kind == "edit":
        return "openai"
    return "duomi" if settings.duomi.configured else "openai"


def make_backend(name: str, settings: Settings, http: JobHttp) -> Backend:
    """An instance of the named backend, bound to its settings and the job's network."""
    return BACKENDS[name](settings.backend_settings(name), http)
