"""The sandbox itself: one object that answers every route of the emulated APIs and their file
host, and records each request it is sent. The APIs come from the registry
(``nanoedit.sandbox.registry``), loaded once as ``APIS``; the fault kinds and the index page
are derived from them."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from nanoedit.sandbox.batching import BatchBill, BatchClock
from nanoedit.sandbox.faults import (
    CORE_FAULT_KINDS,
    FILES,
    PASS_THROUGH,
    FaultKind,
    FaultPlan,
    Phase,
    Stage,
    status_answer,
    with_api_kinds,
)
from nanoedit.sandbox.fetch import Fetch, http_fetch, standin_fetch
from nanoedit.sandbox.files import EXPIRED, Denial, FileStore, cdn_error, huge_download
from nanoedit.sandbox.registry import load_apis
from nanoedit.sandbox.renderer import Renderer
from nanoedit.sandbox.runtime import SANDBOX_HOST, Call, EmulatedApi, Runtime
from nanoedit.sandbox.samples import SAMPLE_NAMES, sample_image
from nanoedit.sandbox.wire import (
    JSON_TYPE,
    ReceivedRequest,
    SandboxRequest,
    SandboxResponse,
    json_response,
    not_found,
    record,
    socket_fault,
    text_response,
)

SANDBOX_BASE_URL = f"http://{SANDBOX_HOST}"
SANDBOX_KEY = "sandbox"
# The sandbox's own control route (no API has it): moves the batch clock.
CONTROL_PATH = "/sandbox/batch-clock"
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
# The emulated APIs, from the registry's lines, in the order a request is offered to them.
APIS: tuple[type[EmulatedApi], ...] = load_apis()


def fault_kinds(apis: Sequence[type[EmulatedApi]]) -> dict[str, FaultKind]:
    """Every fault a plan to a sandbox of ``apis`` may name: the core's, then each API's own,
    each fitting the APIs that declare it."""
    kinds = CORE_FAULT_KINDS
    for api in apis:
        kinds = with_api_kinds(kinds, api.name, api.fault_kinds)
    return kinds


def index_page(apis: Sequence[type[EmulatedApi]]) -> str:
    """The page ``GET /`` answers: each API's routes, then the sample images."""
    return (
        "nanoedit sandbox: an emulated image API, no key and no network needed.\n\n"
        + "".join(api.index for api in apis)
        + "Sample images\n  "
        + "  ".join(f"/samples/{name}" for name in SAMPLE_NAMES)
        + "\n"
    )


# Every fault a plan may name (``nanoedit sandbox faults`` lists them), and the index page.
FAULT_KINDS: dict[str, FaultKind] = fault_kinds(APIS)
INDEX = index_page(APIS)


class Sandbox:
    """An emulated server for every API in ``apis`` (by default ``APIS``, the registry's, in
    the order a request is offered to them), answering in memory.

    ``keys`` None accepts any non-empty key. ``faults`` is a fault plan such as
    ``"429x2,poll:502,redirect"`` (see ``nanoedit.sandbox.faults``). Each API answer takes
    at least ``latency`` seconds of ``clock`` time (waited through ``sleep``). A duomi task takes
    ``task_seconds`` of ``clock`` time to succeed. ``fetch`` downloads foreign image URLs;
    None draws a deterministic stand-in instead, as there is no network in process (a
    ``SandboxServer`` switches that to real downloads). Result URLs stop working after
    ``file_ttl`` seconds. ``received`` keeps the last ``keep_received`` requests (None:
    all). The fault ``slow`` keeps quiet for ``slow_seconds``; ``huge`` sends ``huge_bytes``.
    ``renderer`` draws the images (default: in the thread answering, repeats kept); its owner
    closes it. ``batch_clock`` is the Gemini Batch API's own time (default: still until a
    test moves it, see ``nanoedit.sandbox.batching``). ``handle`` may be called from many
    threads at once.
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
        renderer: Renderer | None = None,
        apis: Sequence[type[EmulatedApi]] = APIS,
        batch_clock: BatchClock | None = None,
    ) -> None:
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.huge_bytes = huge_bytes
        self.received: list[ReceivedRequest] = []
        self._keep_received = keep_received
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._fetch_given = fetch is not None
        epoch_offset = time.time() - clock()
        plan = FaultPlan(faults, FAULT_KINDS if apis is APIS else fault_kinds(apis))
        self._index = INDEX if apis is APIS else index_page(apis)
        files = FileStore(ttl=file_ttl, clock=clock, epoch=lambda: epoch_offset + clock())
        self._runtime = Runtime(
            keys,
            plan,
            files,
            clock,
            fetch or standin_fetch,
            epoch_offset,
            task_seconds,
            renderer or Renderer(),
            batch_clock=batch_clock or BatchClock(),
        )
        self._apis = [api(self._runtime) for api in apis]

    @property
    def task_seconds(self) -> float:
        """How long an asynchronous task takes to succeed; changing it affects tasks not yet
        done."""
        return self._runtime.task_seconds

    @task_seconds.setter
    def task_seconds(self, seconds: float) -> None:
        self._runtime.task_seconds = seconds

    @property
    def batch_clock(self) -> BatchClock:
        """The Gemini Batch API's clock: ``advance`` it to move batches on."""
        return self._runtime.batch_clock

    def batch_bills(self) -> list[BatchBill]:
        """What the Gemini Batch API charged: one entry per batch that ended with images
        made."""
        return self._runtime.batch_bills.all()

    @property
    def tiers(self) -> frozenset[str]:
        """The service tiers besides standard the Gemini image models take (none by default,
        as Google's model pages say); set it to act out a Google that offers them."""
        return self._runtime.tiers

    @tiers.setter
    def tiers(self, tiers: frozenset[str]) -> None:
        self._runtime.tiers = frozenset(tiers)

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
        unread = record(request, body_read=False)
        call = _call(request, unread)
        target = self._target(call, self._api_for(call))
        if target is None:
            return None
        fault = self._runtime.faults.take(*target, Stage.HEADERS)
        if fault is None:
            return None
        self._keep(unread)
        return socket_fault(fault)

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request and record it in ``received``."""
        # An adapter that has the body already (in memory) still shows what the server does
        # before reading it; one that asked ``before_body`` first finds nothing left here.
        early = self.before_body(request)
        if early is not None:
            return early
        call = _call(request, self._keep(record(request)))
        api = self._api_for(call)
        target = self._target(call, api)
        fault = None if target is None else self._runtime.faults.take(*target, Stage.ANSWER)
        if fault == "reset":
            return socket_fault(fault)
        response = self._route(call, api, None if fault in PASS_THROUGH else fault)
        if fault == "slow":
            response.fault, response.delay = fault, self.slow_seconds
        elif fault == "bad-json":
            # As when the upstream breaks off mid-answer behind a gateway that already said 200.
            response.status = 200
            response.headers["Content-Type"] = JSON_TYPE
            response.body = response.body[: len(response.body) // 2]
        if response.stream is None:
            response.headers["Content-Length"] = str(len(response.body))
        if call.received.method == "HEAD":
            response.body, response.stream = b"", None
        return response

    def _keep(self, received: ReceivedRequest) -> ReceivedRequest:
        with self._lock:
            self.received.append(received)
            if self._keep_received is not None and len(self.received) > self._keep_received:
                del self.received[: len(self.received) - self._keep_received]
        return received

    def _api_for(self, call: Call) -> EmulatedApi | None:
        """The API whose request this is (None: the file host's, or nobody's)."""
        return next((api for api in self._apis if api.answers(call)), None)

    def _target(self, call: Call, api: EmulatedApi | None) -> tuple[frozenset[Phase], str] | None:
        """The phases and server of the faults a request to ``api`` (None: to no API) may
        show; None when it shows none."""
        if api is not None:
            phases = api.phases(call)
            return None if phases is None else (phases, api.name)
        if call.method == "GET" and call.received.path.startswith("/files/"):
            return frozenset({Phase.FILE}), FILES
        return None

    def _route(self, call: Call, api: EmulatedApi | None, fault: str | None) -> SandboxResponse:
        path = call.received.path
        if api is not None:
            started = self._clock()
            return self._wait(started, api.handle(call, fault))
        if path == CONTROL_PATH and call.method == "POST":
            return self._control(call)
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
            return text_response(200, self._index)
        return not_found()

    def _control(self, call: Call) -> SandboxResponse:
        """The sandbox's own control route, ``POST /sandbox/batch-clock`` with JSON
        ``{"advance": SECONDS}``: the batch clock moved on (and the batches due worked
        through) for a client in another process; answers the clock's Unix time."""
        body = call.received.json
        seconds = body.get("advance") if isinstance(body, dict) else None
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            message = 'send JSON {"advance": SECONDS}, SECONDS a number of 0 or more'
            return json_response(400, {"error": message})
        return json_response(200, {"now": self.batch_clock.advance(float(seconds))})

    def _wait(self, started: float, response: SandboxResponse) -> SandboxResponse:
        # The latency is how long an answer takes in all, on the sandbox's clock: time spent
        # drawing the image counts toward it, so a benchmark's ideal (requests x latency) is
        # what a real server gives.
        if self.latency > 0:
            self._sleep(max(0.0, self.latency - (self._clock() - started)))
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
        result_fault = self._runtime.faults.take(frozenset({Phase.FILE}), FILES, Stage.RESULT)
        response = self._runtime.files.respond(found, mislabel=result_fault == "mislabeled")
        if result_fault == "truncated":
            response.fault = result_fault
        return response


def _call(request: SandboxRequest, received: ReceivedRequest) -> Call:
    """The request to route and answer, with the method it is routed by: HEAD is answered
    as GET."""
    parts = urlsplit(request.url)
    method = received.method
    base_url = f"{parts.scheme}://{parts.netloc}"
    return Call(received, request.url, base_url, "GET" if method == "HEAD" else method)
