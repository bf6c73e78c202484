"""What goes in and out of the sandbox: requests, answers, and the record kept of each request."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from nanoedit.sandbox.multipart import MultipartError, UploadedFile, parse_multipart

JSON_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class SandboxRequest:
    """One HTTP request as the sandbox sees it, whichever adapter carried it."""

    method: str
    url: str
    """Absolute: the scheme and host are those the client used, so answers can link back."""
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes = b""


@dataclass
class SandboxResponse:
    """One answer, as the adapter (a socket server, or an httpx transport in memory) is to
    send it."""

    status: int
    headers: dict[str, str]
    body: bytes
    fault: str | None = None
    """A socket-level misbehaviour to act out instead of sending the answer as is (None: send
    it as is). ``reset`` and ``reset-early``: a TCP reset and no answer; ``slow``: silence for
    ``delay`` seconds, then the answer; ``truncated``: the status, the headers and about half
    the body, then the connection closed. Any other name: the connection closed unanswered."""
    delay: float = 0.0
    """Seconds of silence before the answer (fault ``slow``)."""
    stream: Iterator[bytes] | None = None
    """A body too big to hold, sent chunk by chunk as it is made instead of ``body``; it goes
    out chunked when the headers carry ``Transfer-Encoding: chunked``."""


def socket_fault(name: str) -> SandboxResponse:
    """An answer that is no answer: the adapter acts out the socket fault ``name`` instead."""
    return SandboxResponse(0, {}, b"", fault=name)


class RedactedHeaders(dict[str, str]):
    """Request headers that keep the real key values (Authorization, Google's
    x-goog-api-key) but never show them in a repr, so a failing test or a log line cannot leak
    a key."""

    secrets: frozenset[str] = frozenset({"authorization", "x-goog-api-key"})

    def __repr__(self) -> str:
        shown = {
            name: ("<redacted>" if name in self.secrets else value) for name, value in self.items()
        }
        return repr(shown)


class RedactedQuery(RedactedHeaders):
    """Query parameters that keep a ``key`` (as Google's APIs take it) out of a repr."""

    secrets = frozenset({"key"})


@dataclass
class ReceivedRequest:
    """The sandbox's record of one request, for tests to assert on."""

    method: str
    path: str
    query: RedactedQuery
    headers: RedactedHeaders
    json: Any = None
    """The parsed JSON body, or None when the body is not JSON."""
    fields: dict[str, list[str]] = field(default_factory=dict)
    """Form text fields (multipart or URL-encoded), each value list in arrival order."""
    files: list[UploadedFile] = field(default_factory=list)
    """Multipart file parts in arrival order."""
    body_error: str | None = None
    """Why the body could not be read as the JSON or multipart it claimed to be."""
    body: bytes = field(default=b"", repr=False)
    """The raw body, for tests that compare a request byte for byte."""
    body_read: bool = True
    """False when the connection was reset before the body was read (fault ``reset-early``):
    the body and what is parsed from it are then left empty."""


def record(request: SandboxRequest, *, body_read: bool = True) -> ReceivedRequest:
    """Parse a request's URL and body into the record kept of it. With ``body_read`` False
    the body is left out, as the server never read it."""
    parts = urlsplit(request.url)
    headers = RedactedHeaders({name.lower(): value for name, value in request.headers.items()})
    received = ReceivedRequest(
        method=request.method.upper(),
        path=parts.path or "/",
        query=RedactedQuery(parse_qsl(parts.query, keep_blank_values=True)),
        headers=headers,
        body=request.body if body_read else b"",
        body_read=body_read,
    )
    if not body_read:
        return received
    content_type = headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        try:
            received.fields, received.files = parse_multipart(request.body, content_type)
        except MultipartError as exc:
            received.body_error = str(exc)
    elif content_type.lower().startswith("application/x-www-form-urlencoded"):
        form = parse_qs(request.body.decode("utf-8", errors="replace"), keep_blank_values=True)
        received.fields = form
    elif request.body.strip():
        try:
            received.json = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            received.body_error = f"the body is not valid JSON ({exc})"
    return received


def json_response(
    status: int, payload: object, headers: Mapping[str, str] | None = None
) -> SandboxResponse:
    """An answer with a JSON body, keys in the order given (as the real servers send them)."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    return SandboxResponse(status, {"Content-Type": JSON_TYPE, **(headers or {})}, body)


def text_response(
    status: int, text: str, content_type: str = "text/plain; charset=utf-8"
) -> SandboxResponse:
    """An answer with a text body (HTML, XML or plain)."""
    return SandboxResponse(status, {"Content-Type": content_type}, text.encode())


def not_found() -> SandboxResponse:
    """What a Go server answers for a path it has no route for."""
    return text_response(404, "404 page not found")


# nginx's own words for the statuses it answers with a page of its own.
NGINX_REASONS = {
    408: "Request Time-out",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def proxy_page(status: int) -> SandboxResponse:
    """The HTML page an nginx in front of a server sends with ``status`` (one of
    ``NGINX_REASONS``): when the server behind it fails, is slow, or a rate limit trips."""
    title = f"{status} {NGINX_REASONS[status]}"
    return text_response(
        status,
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n",
        "text/html",
    )


def empty_response(status: int) -> SandboxResponse:
    """A bare status with no body and no type, as a load balancer may send it."""
    return SandboxResponse(status, {}, b"")
