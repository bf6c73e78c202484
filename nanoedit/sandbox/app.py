"""The sandbox itself: one object that answers every route of both APIs and their file host,
and records each request it is sent."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from nanoedit.sandbox.duomi_api import DuomiApi
from nanoedit.sandbox.faults import PASS_THROUGH, Api, FaultPlan, Phase, Stage, status_answer
from nanoedit.sandbox.fetch import Fetch, http_fetch, standin_fetch
from nanoedit.sandbox.files import EXPIRED, Denial, FileStore, cdn_error, huge_download
from nanoedit.sandbox.openai_api import OpenAIApi
from nanoedit.sandbox.runtime import SANDBOX_HOST, Call, Runtime
from nanoedit.sandbox.samples import SAMPLE_NAMES, sample_image
from nanoedit.sandbox.wire import (
    JSON_TYPE,
    ReceivedRequest,
    SandboxRequest,
    SandboxResponse,
    not_found,
    record,
    socket_fault,
    text_response,
)

SANDBOX_BASE_URL = f"http://{SANDBOX_HOST}"
SANDBOX_KEY = "sandbox"
# Defaults of the faults slow and huge.
SLOW_SECONDS = 30.0
HUGE_BYTES = 256 * 1024 * 1024

# What the CDN in front of result files says with each status a fault plan can ask for.
CDN_STATUS_ERRORS = {
    408: (
        "RequestTimeout",
        "Your socket connection to the server was not read from or written to within the "
        "timeout period. Idle connections will be closed.",
    ),
    429: ("SlowDown", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    502: ("BadGateway", "The origin server did not answer in time."),
    503: ("ServiceUnavailable", "Please reduce your request rate."),
    504: ("GatewayTimeout", "The origin server did not answer in time."),
}
# What a result URL shows when a CDN puts a browser check in front of the file.
CHALLENGE_PAGE = (
    '<!DOCTYPE html><html lang="en"><head><title>Just a moment...</title></head>'
    "<body><h1>Checking your browser before accessing the file.</h1>"
    "<p>Enable JavaScript and cookies to continue.</p></body></html>\n"
)
INDEX = f"""nanoedit sandbox: an emulated image API, no key and no network needed.

OpenAI-compatible (Authorization: Bearer KEY)
  POST /v1/images/edits          multipart: model, prompt, image (repeatable), ...
  POST /v1/images/generations    JSON: model, prompt, n, ...
  GET  /v1/models
duomi (Authorization: KEY, no Bearer)
  POST /api/gemini/nano-banana-edit   JSON: model, prompt, image_urls, ...
  POST /api/gemini/nano-banana        JSON: model, prompt, ...
  GET  /api/gemini/nano-banana/TASK_ID
Sample images
  {"  ".join(f"/samples/{name}" for name in SAMPLE_NAMES)}
"""


class Sandbox:
    """An emulated reseller server for both wire formats, answering in memory.

    ``keys`` None accepts any non-empty key. ``faults`` is a fault plan such as
    ``"429x2,poll:502,redirect"`` (see ``nanoedit.sandbox.faults``). Each API answer takes
    at least ``latency`` seconds (waited through ``sleep``). A duomi task takes
    ``task_seconds`` of ``clock`` time to succeed. ``fetch`` downloads foreign image URLs;
    None draws a deterministic stand-in instead, as there is no network in process (a
    ``SandboxServer`` switches that to real downloads). Result URLs stop working after
    ``file_ttl`` seconds. ``received`` keeps the last ``keep_received`` requests (None:
    all). The fault ``slow`` keeps quiet for ``slow_seconds``; ``huge`` sends ``huge_bytes``.
    ``handle`` may be called from many threads at once.
    """

    def __init__(
        self,
        *,
        keys: frozenset[str] | None = None,
        faults: str = "",
        latency: float = 0.0,
        task_seconds: float = 0.0,
        fetch: Fetch | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        file_ttl: float = 3600.0,
        keep_received: int | None = None,
        slow_seconds: float = SLOW_SECONDS,
        huge_bytes: int = HUGE_BYTES,
    ) -> None:
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.huge_bytes = huge_bytes
        self.received: list[ReceivedRequest] = []
        self._keep_received = keep_received
        self._sleep = sleep
        self._lock = threading.Lock()
        self._fetch_given = fetch is not None
        epoch_offset = time.time() - clock()
        plan = FaultPlan(faults)
        files = FileStore(ttl=file_ttl, clock=clock, epoch=lambda: epoch_offset + clock())
        self._runtime = Runtime(keys, plan, files, clock, fetch or standin_fetch, epoch_offset)
        self._openai = OpenAIApi(self._runtime)
        self._duomi = DuomiApi(self._runtime, task_seconds)

    @property
    def task_seconds(self) -> float:
        """How long a duomi task takes to succeed; changing it affects tasks not yet done."""
        return self._duomi.task_seconds

    @task_seconds.setter
    def task_seconds(self, seconds: float) -> None:
        self._duomi.task_seconds = seconds

    @property
    def fetch(self) -> Fetch:
        """How foreign image URLs are downloaded (also used by ``SandboxTransport``)."""
        return self._runtime.fetch

    def fetch_over_network(self) -> None:
        """Download foreign image URLs for real, unless a ``fetch`` was given."""
        if not self._fetch_given:
            self._runtime.fetch = http_fetch

    def add_faults(self, spec: str) -> None:
        """Append tokens to the fault plan; ValueError (and nothing added) if one is wrong."""
        self._runtime.faults.add(spec)

    def pending_faults(self) -> list[str]:
        """The fault tokens not acted out yet, as ``phase:namexN``."""
        return self._runtime.faults.pending()

    def before_body(self, request: SandboxRequest) -> SandboxResponse | None:
        """Called by an adapter once a request's line and headers are in, before it reads the
        body: the socket fault to act out instead of reading on (the request is recorded with
        its body unread), or None to read the body and call ``handle``."""
        parts = urlsplit(request.url)
        target = self._target(_route_method(request.method), parts.path or "/")
        if target is None:
            return None
        fault = self._runtime.faults.take(*target, Stage.HEADERS)
        if fault is None:
            return None
        self._keep(record(request, body_read=False))
        return socket_fault(fault)

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request and record it in ``received``."""
        # An adapter that has the body already (in memory) still shows what the server does
        # before reading it; one that asked ``before_body`` first finds nothing left here.
        early = self.before_body(request)
        if early is not None:
            return early
        received = self._keep(record(request))
        parts = urlsplit(request.url)
        method = _route_method(received.method)
        call = Call(received, request.url, f"{parts.scheme}://{parts.netloc}", method)
        target = self._target(method, received.path)
        fault = None if target is None else self._runtime.faults.take(*target, Stage.ANSWER)
        if fault == "reset":
            return socket_fault(fault)
        response = self._route(call, None if fault in PASS_THROUGH else fault)
        if fault == "slow":
            response.fault, response.delay = fault, self.slow_seconds
        elif fault == "bad-json":
            # As when the upstream breaks off mid-answer behind a gateway that already said 200.
            response.status = 200
            response.headers["Content-Type"] = JSON_TYPE
            response.body = response.body[: len(response.body) // 2]
        if response.stream is None:
            response.headers["Content-Length"] = str(len(response.body))
        if received.method == "HEAD":
            response.body, response.stream = b"", None
        return response

    def _keep(self, received: ReceivedRequest) -> ReceivedRequest:
        with self._lock:
            self.received.append(received)
            if self._keep_received is not None and len(self.received) > self._keep_received:
                del self.received[: len(self.received) - self._keep_received]
        return received

    def _target(self, method: str, path: str) -> tuple[frozenset[Phase], Api] | None:
        """The phases and server of the faults a request may show (None: it shows none)."""
        if path == "/v1" or path.startswith("/v1/"):
            phases, api = self._openai.phases(method, path), Api.OPENAI
        elif path.startswith("/api/"):
            phases, api = self._duomi.phases(method, path), Api.DUOMI
        elif method == "GET" and path.startswith("/files/"):
            phases, api = frozenset({Phase.FILE}), Api.FILES
        else:
            return None
        return None if phases is None else (phases, api)

    def _route(self, call: Call, fault: str | None) -> SandboxResponse:
        path = call.received.path
        if path == "/v1" or path.startswith("/v1/"):
            started = time.monotonic()
            return self._wait(started, self._openai.handle(call, fault))
        if path.startswith("/api/"):
            started = time.monotonic()
            return self._wait(started, self._duomi.handle(call, fault))
        if call.method != "GET":
            return not_found()
        if path.startswith("/files/"):
            return self._download(call, path.removeprefix("/files/"), fault)
        if path.startswith("/samples/"):
            try:
                data, mime = sample_image(path.removeprefix("/samples/"))
            except KeyError:
                return not_found()
            return SandboxResponse(200, {"Content-Type": mime}, data)
        if path == "/":
            return text_response(200, INDEX)
        return not_found()

    def _wait(self, started: float, response: SandboxResponse) -> SandboxResponse:
        # The latency is how long an answer takes in all: time spent drawing the image counts
        # toward it, so a benchmark's ideal (requests x latency) is what a real server gives.
        if self.latency > 0:
            self._sleep(max(0.0, self.latency - (time.monotonic() - started)))
        return response

    def _download(self, call: Call, name: str, fault: str | None) -> SandboxResponse:
        """A result file, as the CDN in front of the bucket serves it; ``fault`` is the
        answer fault taken for the request."""
        if fault == "expired":
            return EXPIRED.response()
        if fault == "html-result":
            return text_response(200, CHALLENGE_PAGE, "text/html; charset=utf-8")
        if fault in ("huge", "huge-chunked"):
            return huge_download(self.huge_bytes, chunked=fault == "huge-chunked")
        if fault == "redirect":
            # Back to the same file, marked so the hop shows in `received`.
            location = f"{call.url}{'&' if '?' in call.url else '?'}hop=1"
            headers = {"Location": location, "Content-Type": "text/html; charset=utf-8"}
            body = f'<a href="{html.escape(location)}">Found</a>.\n'.encode()
            return SandboxResponse(302, headers, body)
        if fault is not None:
            return status_answer(
                fault,
                lambda status: cdn_error(status, *CDN_STATUS_ERRORS[status]),
                self._runtime.epoch(),
            )
        found = self._runtime.files.lookup(name, call.received.query)
        if isinstance(found, Denial):
            return found.response()
        result_fault = self._runtime.faults.take(frozenset({Phase.FILE}), Api.FILES, Stage.RESULT)
        response = self._runtime.files.respond(found, mislabel=result_fault == "mislabeled")
        if result_fault == "truncated":
            response.fault = result_fault
        return response


def _route_method(method: str) -> str:
    """The method a request is routed by: HEAD is answered as GET."""
    method = method.upper()
    return "GET" if method == "HEAD" else method
