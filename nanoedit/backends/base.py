"""What every backend shares: the job it is handed, the results it returns, answer parsing."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from nanoedit.config import BackendSettings
from nanoedit.errors import ApiError, AuthError
from nanoedit.inputs import InputImage
from nanoedit.jobs import Job


class Progress(Protocol):
    """Where a backend reports what it is doing: a short phase ("uploading", "task running"),
    with byte counts when it moves data."""

    def __call__(self, phase: str, done: int | None = None, total: int | None = None) -> None:
        """Report the job's current phase."""


@dataclass(frozen=True)
class PreparedJob:
    """A job whose inputs are checked: local images read, URLs kept as URLs."""

    job: Job
    model: str
    uploads: tuple[InputImage, ...] = ()
    urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResultImage:
    """One image a backend produced: its bytes already, or a URL to download them from."""

    data: bytes | None = None
    url: str | None = None


@dataclass(frozen=True)
class PlannedRequest:
    """A request a backend would send, for ``--dry-run`` to show as a curl command."""

    method: str
    url: str
    headers: dict[str, str]
    # Multipart text fields and files (field name, local path or URL, content type).
    fields: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, str, str], ...] = ()
    json: Any = None
    note: str = ""


class Backend(Protocol):
    """Turns a prepared job into HTTP requests and the answers into result images."""

    name: str

    def run(self, prepared: PreparedJob, progress: Progress) -> list[ResultImage]:
        """Send the job and return its images, or raise a :class:`NanoeditError`."""
        ...

    def plan(self, prepared: PreparedJob) -> list[PlannedRequest]:
        """The requests :meth:`run` would start with, sending nothing."""
        ...


def host_of(url: str) -> str:
    """The host (and port) of a URL, for messages."""
    return urlsplit(url).netloc or url


def result_from_url(value: str, where: str) -> ResultImage:
    """A result whose ``url`` field is either an http(s) URL or a ``data:`` URI."""
    if value.startswith("data:"):
        return ResultImage(data=decode_data_uri(value, where))
    if value.lower().startswith(("http://", "https://")):
        return ResultImage(url=value)
    raise ApiError(f"{where} returned an image URL nanoedit will not fetch: {value[:80]!r}")


def decode_data_uri(value: str, where: str) -> bytes:
    """Decode a ``data:image/…;base64,…`` URI."""
    header, _, payload = value.partition(",")
    if ";base64" not in header:
        raise ApiError(f"{where} returned a data: URI that is not base64 ({header[:40]})")
    return decode_base64(payload, where)


def decode_base64(payload: str, where: str) -> bytes:
    """Decode base64 image data, tolerating whitespace and missing padding."""
    cleaned = re.sub(r"\s+", "", payload)
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(f"{where} returned base64 image data that does not decode") from None


def read_json(response: httpx.Response, where: str) -> Any:
    """The answer's JSON, or an error that says what came instead (an HTML proxy page…)."""
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        from nanoedit.imageformat import describe

        if looks_like_json(response) and isinstance(exc, json.JSONDecodeError):
            size = len(response.content)
            what = f"JSON that is cut short or malformed (it breaks at byte {exc.pos} of {size})"
        else:
            what = f"a body that is not JSON ({describe(response.content)})"
        raise ApiError(
            f"{where} answered HTTP {response.status_code} with {what}; the server or a proxy "
            "in front of it failed, try again later"
        ) from None


def looks_like_json(response: httpx.Response) -> bool:
    """Whether a body is JSON at all: a 401 from a proxy is often an HTML page."""
    return response.content.lstrip()[:1] in (b"{", b"[")


def auth_error(settings: BackendSettings, where: str, detail: str) -> AuthError:
    """The key was rejected: say how to fix it where it was set."""
    return AuthError(
        f"{where} rejected the {settings.name} API key ({detail}); {settings.key_advice()}"
    )


def clip(text: str, limit: int = 300) -> str:
    """Server text cut to a length that fits in one message line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
