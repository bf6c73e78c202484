"""What the API emulations share: keys, the fault plan, result files, the clock, and fetching."""

from __future__ import annotations

import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

from nanoedit.sandbox.batching import BatchBills, BatchClock
from nanoedit.sandbox.faults import FaultKind, FaultPlan, Phase, Stage
from nanoedit.sandbox.fetch import Fetch, FetchError
from nanoedit.sandbox.files import Denial, FileStore
from nanoedit.sandbox.lineup import Lineup
from nanoedit.sandbox.renderer import Renderer
from nanoedit.sandbox.samples import sample_image
from nanoedit.sandbox.wire import ReceivedRequest, SandboxResponse

SANDBOX_HOST = "nanoedit-sandbox.invalid"


@dataclass(frozen=True)
class Call:
    """One request being answered, with what the answer needs to link back to its host."""

    received: ReceivedRequest
    url: str
    base_url: str
    """``scheme://host[:port]`` as the client addressed the sandbox."""
    method: str
    """The method to route by (HEAD is answered as GET)."""

    @property
    def netloc(self) -> str:
        """The host (and port) the client addressed."""
        return urlsplit(self.base_url).netloc.lower()


@dataclass
class Runtime:
    """Services every API handler uses."""

    keys: frozenset[str] | None
    faults: FaultPlan
    files: FileStore
    clock: Callable[[], float]
    fetch: Fetch
    epoch_offset: float
    """Added to a clock reading to give Unix time, so timestamps follow an injected clock."""
    task_seconds: float = 0.0
    """How long an asynchronous task takes to succeed, in ``clock`` time."""
    renderer: Renderer = field(default_factory=Renderer)
    """Draws the answers' images."""
    lineup: Lineup = field(default_factory=Lineup)
    """The changes to today's lineup the fault plan has made (``nanoedit.sandbox.lineup``)."""
    batch_clock: BatchClock = field(default_factory=BatchClock)
    """The Batch API's own time, moved by tests (``nanoedit.sandbox.batching``)."""
    batch_bills: BatchBills = field(default_factory=BatchBills)
    """What the batches charged, one entry per batch that ended with work done."""
    tiers: frozenset[str] = frozenset()
    """The service tiers besides standard that Google's image models take: none, as Google's
    model pages say (``nanoedit.sandbox.gemini_tiers``), until the sandbox is told otherwise."""

    def epoch(self, reading: float | None = None) -> float:
        """Unix time now, or at an earlier clock ``reading``."""
        return self.epoch_offset + (self.clock() if reading is None else reading)

    def accepts(self, key: str) -> bool:
        """Whether ``key`` may use the APIs (any non-empty key when no key list was given)."""
        return bool(key) and (self.keys is None or key in self.keys)

    def request_id(self) -> str:
        """A gateway-style request id: a UTC timestamp and random digits."""
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(self.epoch()))
        return f"{stamp}{secrets.randbelow(10**12):012d}"

    def fetch_input(self, url: str, own_hosts: frozenset[str]) -> tuple[bytes, str]:
        """The bytes and type behind an input URL. The sandbox's own URLs (samples and
        results) are answered here, with no socket; others go to ``fetch``."""
        parts = urlsplit(url)
        if parts.netloc.lower() not in own_hosts:
            return self.fetch(url)
        if parts.path.startswith("/samples/"):
            try:
                return sample_image(parts.path.removeprefix("/samples/"))
            except KeyError:
                raise FetchError("HTTP 404") from None
        if parts.path.startswith("/files/"):
            found = self.files.lookup(
                parts.path.removeprefix("/files/"), dict(parse_qsl(parts.query))
            )
            if isinstance(found, Denial):
                raise FetchError(f"HTTP {found.status} {found.code}: {found.message}")
            return found.image.data, found.image.mime
        raise FetchError("HTTP 404")


class EmulatedApi(ABC):
    """One emulated API: which requests are its to answer, the fault phases of its routes,
    its lines on the index page, and its answers. The sandbox holds a registry of these and
    routes every request to the first that answers it."""

    name: ClassVar[str]
    """The API's name, as fault kinds name the APIs they fit (``FaultKind.apis``)."""
    index: ClassVar[str]
    """Its lines on the sandbox's index page: its auth rule, then a line per route."""
    fault_kinds: ClassVar[tuple[FaultKind, ...]] = ()
    """Faults of its own (see ``faults.result_fault``), and the shared ones it acts out too
    (``faults.shared_kinds``): a fault fits the APIs that declare it."""
    paid_routes: ClassVar[tuple[str, ...]] = ()
    """Its paid requests (edits, generations, task submissions) as patterns a request's
    ``METHOD /path`` matches whole: what a benchmark reading the server's log, or a test
    counting what was charged, counts as paid without naming the API."""
    refusal: ClassVar[str | None] = None
    """The fault (one of its ``fault_kinds``) by which it refuses a request's content as its
    provider does (a safety filter, a content checker): what a test of every API's refusal
    adds to the plan without naming the API."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @abstractmethod
    def answers(self, call: Call) -> bool:
        """Whether a request is this API's to answer, its unknown paths included (they get
        the API's own not-found answer). Only the line and headers may be looked at: the
        body may not have been read yet."""

    @abstractmethod
    def phases(self, call: Call) -> frozenset[Phase] | None:
        """The phases of faults a request may show; None for a route the API does not have.
        Only the line and headers may be looked at, as in ``answers``."""

    def accepts(self, call: Call, key: str) -> bool:
        """Whether ``key`` may make ``call``: a key the sandbox takes, unless a
        ``key-rejected`` fault is due for this request. Every API checks keys here, so that
        fault is answered exactly as the API answers a key it does not know."""
        if not self.runtime.accepts(key):
            return False
        phases = self.phases(call)
        return phases is None or self.runtime.faults.take(phases, self.name, Stage.KEY) is None

    @abstractmethod
    def handle(self, call: Call, fault: str | None) -> SandboxResponse:
        """Answer one request; ``fault`` is the answer fault taken for it (None: none), to be
        answered in the API's own shape."""
