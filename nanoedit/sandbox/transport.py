"""The sandbox inside an httpx client: requests are answered in memory, with no socket."""

from __future__ import annotations

import httpx

from nanoedit.sandbox.app import Sandbox
from nanoedit.sandbox.runtime import SANDBOX_HOST
from nanoedit.sandbox.wire import SandboxRequest


def _headers(request: httpx.Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.multi_items():
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


class SandboxTransport(httpx.BaseTransport):
    """Routes requests for the sandbox's host to ``Sandbox.handle``.

    There is no network in here: a GET to any other host is answered with the sandbox's
    ``fetch`` (by default a deterministic stand-in image), so an input given as a URL
    works offline; any other request to another host fails as a connection error.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request in memory."""
        body = request.read()
        if request.url.host != SANDBOX_HOST:
            return self._foreign(request)
        answer = self.sandbox.handle(
            SandboxRequest(request.method, str(request.url), _headers(request), body)
        )
        if answer.fault is not None:
            # Every socket-level fault looks, in memory, like a connection dropped unanswered.
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(
            answer.status, headers=list(answer.headers.items()), content=answer.body
        )

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
