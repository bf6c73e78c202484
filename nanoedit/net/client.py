"""The HTTP client of a run: one httpx client whose pool every job shares, and request
bodies that report their progress. Only a run that sends requests imports this module."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import httpx

from nanoedit import __version__
from nanoedit.clock import Clock
from nanoedit.net.http import CONNECT_TIMEOUT, MIN_POOL, READ_TIMEOUT, environment_proxies

if TYPE_CHECKING:
    from nanoedit.settings.values import Settings


class LazyTransport(httpx.BaseTransport):
    """A transport built on first use: loading the certificate bundle for https costs about
    70 ms, which a run that only speaks plain http (a local sandbox) need not pay."""

    def __init__(self, build: Callable[[], httpx.BaseTransport]) -> None:
        self._build = build
        self._inner: httpx.BaseTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the real transport, building it the first time."""
        with self._lock:
            if self._inner is None:
                self._inner = self._build()
            inner = self._inner
        return inner.handle_request(request)

    def close(self) -> None:
        """Close the real transport, if it was ever built."""
        with self._lock:
            if self._inner is not None:
                self._inner.close()


def make_client(
    transport: httpx.BaseTransport | None = None, *, proxy: str | None = None, pool: int = 0
) -> httpx.Client:
    """One HTTP client for the whole run, so every job shares one connection pool; ``pool``
    is how many jobs run at once."""
    connections = max(pool, MIN_POOL)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    mounts: dict[str, httpx.BaseTransport | None] | None = None
    given = transport
    if transport is None and proxy is None and not environment_proxies():
        # With a proxy httpx builds its own transports; without one, plain http needs no
        # certificates and https loads them when first used.
        transport = LazyTransport(lambda: httpx.HTTPTransport(limits=limits))
        mounts = {"http://": httpx.HTTPTransport(limits=limits, verify=False)}
    return httpx.Client(
        transport=transport,
        mounts=mounts,
        proxy=proxy if given is None else None,
        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        limits=limits,
        # API answers are never followed: a redirect could carry the key to another host.
        # Downloads follow redirects explicitly, and carry no key.
        follow_redirects=False,
        headers={"User-Agent": f"nanoedit/{__version__}"},
    )


def client_for(settings: Settings, pool: int = 0, clock: Clock | None = None) -> httpx.Client:
    """The run's client: over the network, or wired to the in-process sandbox, whose tasks
    take their time on the run's ``clock``."""
    if not settings.sandbox:
        return make_client(proxy=settings.proxy, pool=pool)
    from nanoedit.sandbox import Sandbox, SandboxTransport
    from nanoedit.sandbox.batching import quick_clock

    # A short task time shows the asynchronous flow of the URL-list API without a long wait,
    # and a quick batch clock that of the Batch API (--tier batch).
    monotonic = (clock or Clock()).monotonic
    sandbox = Sandbox(task_seconds=1.0, clock=monotonic, batch_clock=quick_clock(monotonic))
    return make_client(SandboxTransport(sandbox), pool=pool)


class CountingStream(httpx.SyncByteStream):
    """A request body that reports how much of it has been sent; it can be sent again."""

    piece = 64 * 1024

    def __init__(
        self, inner: Iterable[bytes], total: int, report: Callable[[int, int], None]
    ) -> None:
        self.inner = inner
        self.total = total
        self.report = report

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for piece in pieces(self.inner, self.piece):
            yield piece
            sent += len(piece)
            self.report(sent, self.total)


def pieces(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The chunks as pieces of ``size`` bytes (the last one shorter). A multipart body is
    handed over as a dozen small chunks (boundaries, headers, fields) around each file in
    one: in pieces, the small ones go out together, not a system call and a packet each,
    and progress moves while a large file is sent."""
    pending = b""
    for chunk in chunks:
        view = memoryview(chunk)
        start = 0
        if pending:
            start = size - len(pending)
            pending += view[:start]
            if len(pending) < size:
                continue
            yield pending
        end = start + (len(view) - start) // size * size
        for at in range(start, end, size):
            yield bytes(view[at : at + size])
        pending = bytes(view[end:])
    if pending:
        yield pending


def with_upload_progress(
    request: httpx.Request, report: Callable[[int, int], None]
) -> httpx.Request:
    """The same request, whose body reports its progress as it is sent."""
    total = int(request.headers.get("content-length", "0") or 0)
    assert isinstance(request.stream, Iterable)
    return httpx.Request(
        request.method,
        request.url,
        headers=request.headers,
        stream=CountingStream(request.stream, total, report),
        extensions=request.extensions,
    )
