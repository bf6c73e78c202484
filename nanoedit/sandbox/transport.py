"""The sandbox inside an httpx client: requests are answered in memory, with no socket."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import httpx

from nanoedit.sandbox.app import Sandbox
from nanoedit.sandbox.runtime import SANDBOX_HOST
from nanoedit.sandbox.wire import SandboxRequest, SandboxResponse

# What httpx says, over a real socket, when a connection is reset while it waits for an answer.
CONNECTION_RESET = "[Errno 104] Connection reset by peer"
# What it says when the connection closes before an answer or during the request's body.
DISCONNECTED = "Server disconnected without sending a response."
# How much of a request body the two ends' socket buffers take in on Linux loopback: a body
# that fits has left before a reset right after the headers can stop it.
SOCKET_BUFFERS = 4 * 1024 * 1024


def _headers(request: httpx.Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.multi_items():
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


class _Body(httpx.SyncByteStream):
    """A response body handed over as it is made; ``failure`` is raised after its last chunk,
    as when a connection breaks mid-body."""

    def __init__(
        self, chunks: Iterable[bytes], failure: httpx.TransportError | None = None
    ) -> None:
        self._chunks = chunks
        self._failure = failure

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks
        if self._failure is not None:
            raise self._failure


def _traced(
    request: httpx.Request, failure: httpx.TransportError, *, body_sent: bool
) -> httpx.TransportError:
    """``failure``, once the request's ``trace`` extension, if any, has heard the steps httpcore
    reports for it over a socket, so a client that asks whether its body left gets the answer
    a socket would give."""
    trace = request.extensions.get("trace")
    if trace is not None:
        body_end: tuple[str, dict[str, object]] = (
            ("send_request_body.complete", {"return_value": None})
            if body_sent
            else ("send_request_body.failed", {"exception": failure})
        )
        for step, info in (
            ("send_request_headers.started", {"request": request}),
            ("send_request_headers.complete", {"return_value": None}),
            ("send_request_body.started", {"request": request}),
            body_end,
            ("receive_response_headers.started", {"request": request}),
            ("receive_response_headers.failed", {"exception": failure}),
        ):
            trace(f"http11.{step}", info)
    return failure


class SandboxTransport(httpx.BaseTransport):
    """Routes requests for the sandbox's host to ``Sandbox.handle``.

    There is no network in here: a GET to any other host is answered with the sandbox's
    ``fetch`` (by default a deterministic stand-in image), so an input given as a URL
    works offline; any other request to another host fails as a connection error. Socket
    faults end as they do for a client of the served sandbox: resets raise ``ReadError`` or
    ``RemoteProtocolError``, ``slow`` waits through ``sleep`` (raising ``ReadTimeout`` once the
    request's read timeout is up) and a truncated body raises ``RemoteProtocolError`` halfway.
    """

    def __init__(self, sandbox: Sandbox, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sandbox = sandbox
        self.sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request in memory."""
        body = request.read()
        if request.url.host != SANDBOX_HOST:
            return self._foreign(request)
        answer = self.sandbox.handle(
            SandboxRequest(request.method, str(request.url), _headers(request), body)
        )
        if answer.fault is not None:
            return self._act_out(answer, request, body)
        return _response(answer)

    def _act_out(
        self, answer: SandboxResponse, request: httpx.Request, body: bytes
    ) -> httpx.Response:
        """What a client of the served sandbox sees of ``answer.fault``."""
        if answer.fault == "slow":
            timeout = request.extensions.get("timeout", {}).get("read")
            if timeout is not None and timeout < answer.delay:
                self.sleep(timeout)
                timed_out = httpx.ReadTimeout("timed out", request=request)
                raise _traced(request, timed_out, body_sent=True)
            self.sleep(answer.delay)
            return _response(answer)
        if answer.fault == "truncated":
            half = answer.body[: len(answer.body) // 2]
            # h11's words for a body that ends before its Content-Length.
            failure = httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body "
                f"(received {len(half)} bytes, expected {len(answer.body)})",
                request=request,
            )
            return httpx.Response(
                answer.status,
                headers=list(answer.headers.items()),
                stream=_Body([half], failure),
            )
        if answer.fault == "reset" or (
            answer.fault == "reset-early" and len(body) < SOCKET_BUFFERS
        ):
            # The body has left and the client is waiting for the answer when the reset comes.
            reset = httpx.ReadError(CONNECTION_RESET, request=request)
            raise _traced(request, reset, body_sent=True)
        disconnected = httpx.RemoteProtocolError(DISCONNECTED, request=request)
        if answer.fault == "reset-early":
            # The reset meets the body on its way and the body's write fails; httpcore then
            # reads on, in case an answer came, and finds the connection closed.
            raise _traced(request, disconnected, body_sent=False)
        raise disconnected

    def _foreign(self, request: httpx.Request) -> httpx.Response:
        if request.method not in ("GET", "HEAD"):
            raise httpx.ConnectError(
                f"the sandbox has no network: {request.url.host} cannot be reached",
                request=request,
            )
        try:
            data, mime = self.sandbox.fetch(str(request.url))
        except Exception as exc:  # a caller's fetch may fail in any way; all mean the same
            raise httpx.ConnectError(f"{request.url}: {exc}", request=request) from None
        content = b"" if request.method == "HEAD" else data
        headers = {"Content-Type": mime, "Content-Length": str(len(data))}
        return httpx.Response(200, headers=headers, content=content)


def _response(answer: SandboxResponse) -> httpx.Response:
    headers = list(answer.headers.items())
    if answer.stream is not None:
        return httpx.Response(answer.status, headers=headers, stream=_Body(answer.stream))
    return httpx.Response(answer.status, headers=headers, content=answer.body)
