"""The fault plan: misbehaviours queued up for the sandbox to act out, one request at a time.

A plan is a comma-separated list of tokens ``[phase:]name[xN]``, e.g. ``429x2,poll:502,redirect``.
Each token is used up by the next request, in plan order, that it can apply to: a request of
its phase, to an API the fault makes sense for, at the point where the fault shows. ``xN``
repeats it for N requests.

Phases: ``submit`` (API POSTs), ``poll`` (duomi task GETs), ``file`` (result downloads),
``lineup`` (model listing GETs) and ``api`` (any API request). Names, with their default phase:

- ``api``, on every server (in phase ``file``, on the result-file host):

  - ``408``, ``429`` (with Retry-After: 1), ``429-date`` (a 429 whose Retry-After is an HTTP
    date about 2 s ahead), ``500``, ``502``, ``503``, ``504``: an error body in the API's shape
    (in phase ``file``, the CDN's XML). On Gemini routes: Google's error object (a 429 carries
    a ``google.rpc.RetryInfo`` of 17 s and no Retry-After; a 503 says the model is overloaded),
    and for 408 and 502 its front end's HTML page.
  - ``NNN-html`` for each of 408, 429, 500, 502, 503 and 504: that status with nginx's HTML
    page (``html502`` is ``502-html``); ``NNN-empty``: that status with an empty body. Neither
    carries a Retry-After, as a proxy in front of the API sends none.
  - ``reset``: the whole request is read, then the connection is reset (TCP RST), unanswered.
  - ``reset-early``: the connection is reset once the request's headers are in, with the body
    left unread, so a client still sending a large body sees its write fail.
  - ``slow``: the request is read, then nothing is sent for the sandbox's ``slow_seconds``,
    then the answer.

- ``api``, on every API: ``bad-json`` (HTTP 200 with a JSON body cut off halfway: the first
  half of the answer the request would have had); ``key-rejected`` (the key, whatever it is,
  is refused where the API checks it, with the answer its provider gives a key it does not
  know: 401 on the OpenAI-compatible gateway, duomi, fal, Replicate and OpenRouter, Gemini's
  400 INVALID_ARGUMENT with ``API_KEY_INVALID``; a request that carries no key, such as an
  upload to a URL the API gave out, leaves it queued); on the two reseller APIs: ``error200``
  (an error in an HTTP 200 answer); on Gemini: ``invalid-argument`` (HTTP 400
  INVALID_ARGUMENT), ``permission-denied`` (HTTP 403 PERMISSION_DENIED with no reason: Google
  keeps a model from the key's project) and ``service-disabled`` (HTTP 403 PERMISSION_DENIED
  with the reason SERVICE_DISABLED: the API is not enabled for the key's project); neither is a
  bad key.
- ``submit`` (results, the reseller APIs): ``data-uri``, ``empty-url``, ``empty-data``,
  ``no-data``, ``text-only`` (Gemini too: ``finishReason`` STOP with only text), ``fewer``
  (one image fewer than asked: ``n`` less one on the multipart API, a task with an empty image
  list on duomi, where a job of ``n`` images is ``n`` tasks); (duomi tasks)
  ``task-error``, ``task-stuck``, ``task-unknown``; (Gemini) ``image-safety``,
  ``image-prohibited``, ``no-image``, ``image-other`` (a candidate with that ``finishReason``
  and no image),
  ``prompt-blocked`` (``promptFeedback.blockReason`` and no candidates), ``upload-expired``
  (every uploaded file expires at once, so a request using one is refused); these Gemini
  faults are acted out by its Interactions API too, in its shape; (Gemini's Interactions API
  alone) ``interaction-failed``, ``interaction-incomplete``, ``interaction-budget-exceeded``,
  ``interaction-cancelled``, ``interaction-requires-action`` (an interaction that ends in that
  status), ``interaction-in-progress`` and ``interaction-queued`` (one that shows that status
  until the sandbox's ``task_seconds`` have passed), which a ``generateContent`` request
  leaves queued; (Gemini's Batch API, taken by the next batch made) ``batch-expired`` (it
  never runs, and expires 48 hours on the batch clock), ``batch-failed`` (it fails as a whole
  when it would start), ``batch-cancelled`` (cancelled halfway through its running time) and
  ``batch-request-error`` (its first request ends in an error); the result faults above go
  to a batch's requests one by one as they are answered.
- ``api`` (Gemini's Files API, on the upload that makes a file): ``upload-processing`` (the
  file is PROCESSING for 3 s before it is ACTIVE, as an upload of 8 MiB or more always is)
  and ``upload-failed`` (PROCESSING for 3 s, then FAILED); a file that is not ACTIVE cannot
  be used.
- ``file``: ``redirect``, ``expired``, ``html-result``, ``mislabeled``, ``truncated`` (the
  file's full Content-Length, about half its bytes, then the connection closed), ``huge`` (a
  PNG signature and zeros, the sandbox's ``huge_bytes`` long, streamed), ``huge-chunked`` (the
  same, chunked, with no Content-Length).
- ``lineup`` (the APIs that list models): ``added``, ``dropped``, ``widened``. These change
  the lineup itself rather than one answer: see ``nanoedit.sandbox.lineup``.

``slow`` and ``bad-json`` change how an answer goes out, not what it says, so a result fault
queued after one of them can apply to the same request.

Which APIs act out a fault is declared by the APIs themselves (``EmulatedApi.fault_kinds``),
never here: a core kind fits every API, or, when a few share it, none until an API declares it
(``shared_kinds``); a fault of one API alone is declared in that API's module (``result_fault``,
``answer_fault``, ``made_file_fault``). ``nanoedit sandbox faults`` lists every one: the core's,
then each API's own, in the registry's order.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from enum import Enum

from nanoedit.sandbox.wire import SandboxResponse, empty_response, proxy_page


class Phase(Enum):
    """Which requests a token waits for."""

    SUBMIT = "submit"  # the API POSTs that start work
    POLL = "poll"  # duomi's task GETs
    FILE = "file"  # downloads of result files
    API = "api"  # any request to an API route (submits, polls, model lists)
    LINEUP = "lineup"  # model listing requests (lists, and the model pages that list one)


# The server name of the result-file host, which stands beside every API (an API's server name
# is its ``EmulatedApi.name``).
FILES = "files"


class Stage(Enum):
    """Where in handling a request a fault shows.

    HEADERS faults show as soon as a request's line and headers are in, before its body is
    read. ANSWER faults replace (or delay, or spoil) the whole answer before anything is
    checked, like a proxy or an overloaded gateway. KEY faults show where an API checks the
    key a request carries (``EmulatedApi.accepts``). RESULT faults change a successful result,
    so a request that fails auth or validation leaves them queued for the next one.
    """

    HEADERS = "headers"
    ANSWER = "answer"
    KEY = "key"
    RESULT = "result"


@dataclass(frozen=True)
class FaultKind:
    """What a fault name means: where it may go and where it goes by default."""

    name: str
    default_phase: Phase
    phases: frozenset[Phase]
    apis: frozenset[str] | None
    """The APIs it fits, by name; None: every API, so a new API acts it out too."""
    on_files: bool
    """Whether it fits the result-file host."""
    stage: Stage
    summary: str

    def fits(self, server: str) -> bool:
        """Whether the server named ``server`` (an API's name, or ``FILES``) can act it out."""
        if server == FILES:
            return self.on_files
        return self.apis is None or server in self.apis


_ANY_PHASE = frozenset(Phase)
_API_PHASES = frozenset({Phase.API, Phase.SUBMIT, Phase.POLL})
# The APIs a shared fault fits before any API declares that it acts it out (``shared_kinds``):
# none. Which APIs do is said by the APIs themselves, never here.
_NO_API: frozenset[str] = frozenset()


def _kinds(*kinds: FaultKind) -> dict[str, FaultKind]:
    return {kind.name: kind for kind in kinds}


def _anywhere(name: str, summary: str, stage: Stage = Stage.ANSWER) -> FaultKind:
    return FaultKind(name, Phase.API, _ANY_PHASE, None, True, stage, summary)


def _every_api(name: str, summary: str) -> FaultKind:
    """A fault of an API request's answer (not a download) that every API acts out."""
    return FaultKind(name, Phase.API, _API_PHASES, None, False, Stage.ANSWER, summary)


def answer_fault(name: str, summary: str) -> FaultKind:
    """A fault that replaces the whole answer of an API request (not a download), before
    anything is checked; it fits no API until one declares it (``EmulatedApi.fault_kinds``)."""
    return FaultKind(name, Phase.API, _API_PHASES, _NO_API, False, Stage.ANSWER, summary)


def made_file_fault(name: str, summary: str) -> FaultKind:
    """A fault that changes a file an upload makes (phase ``api``, where uploads are), once
    the upload would otherwise have succeeded; it fits no API until one declares it."""
    phases = frozenset({Phase.API})
    return FaultKind(name, Phase.API, phases, _NO_API, False, Stage.RESULT, summary)


def result_fault(name: str, summary: str) -> FaultKind:
    """A fault an emulated API declares for itself (``EmulatedApi.fault_kinds``): it changes
    the result of a submission (phase ``submit``) that would otherwise succeed."""
    return FaultKind(
        name, Phase.SUBMIT, frozenset({Phase.SUBMIT}), _NO_API, False, Stage.RESULT, summary
    )


def _download(name: str, summary: str, stage: Stage = Stage.ANSWER) -> FaultKind:
    return FaultKind(name, Phase.FILE, frozenset({Phase.FILE}), frozenset(), True, stage, summary)


def _lineup(name: str, summary: str, apis: frozenset[str] | None = None) -> FaultKind:
    """A lineup change; ``apis`` None: every API that lists models makes it."""
    # Taken once a listing request has passed the key check (RESULT), as the change it makes
    # must not be spent on a request that is refused.
    phases = frozenset({Phase.LINEUP})
    return FaultKind(name, Phase.LINEUP, phases, apis, False, Stage.RESULT, summary)


# The statuses a client is expected to retry; each also comes as an HTML page and empty.
RETRYABLE_STATUSES = (408, 429, 500, 502, 503, 504)

# The faults every sandbox knows: those that fit every API (or the file host), and those a few
# APIs share, which fit an API once it declares them. An emulated API adds its own
# (``EmulatedApi.fault_kinds``).
CORE_FAULT_KINDS: dict[str, FaultKind] = _kinds(
    _anywhere("408", "HTTP 408 with an error body"),
    _anywhere("429", "HTTP 429 with Retry-After: 1 (Gemini: retryDelay 17s in the body instead)"),
    _anywhere("429-date", "HTTP 429 with Retry-After as an HTTP date about 2 s ahead"),
    _anywhere("500", "HTTP 500 with an error body"),
    _anywhere("502", "HTTP 502 with an error body"),
    _anywhere("503", "HTTP 503 with an error body"),
    _anywhere("504", "HTTP 504 with an error body"),
    *(
        _anywhere(f"{status}-html", f"HTTP {status} with an nginx HTML page")
        for status in RETRYABLE_STATUSES
    ),
    _anywhere("html502", "HTTP 502 with an HTML page from a proxy (as 502-html)"),
    *(
        _anywhere(f"{status}-empty", f"HTTP {status} with an empty body")
        for status in RETRYABLE_STATUSES
    ),
    _anywhere("reset", "the request is read, then the connection is reset (TCP RST)"),
    _anywhere(
        "reset-early", "the connection is reset after the headers, body unread", Stage.HEADERS
    ),
    _anywhere("slow", "nothing is sent for slow_seconds, then the answer"),
    FaultKind(
        "key-rejected",
        Phase.API,
        _API_PHASES,
        None,
        False,
        Stage.KEY,
        "the key is refused as its provider refuses an unknown key (401; Gemini: 400)",
    ),
    # error200, and the results after bad-json, are shared by a few APIs, each of which says so
    # (``shared_kinds``); bad-json fits every API.
    answer_fault("error200", "HTTP 200 carrying an error object"),
    _every_api("bad-json", "HTTP 200 with a JSON body cut off halfway"),
    result_fault("data-uri", "the result URL is a data: URI"),
    result_fault("empty-url", "HTTP 200 with an empty result URL"),
    result_fault("empty-data", "HTTP 200 with an empty list of results"),
    result_fault("no-data", "HTTP 200 with no result list at all"),
    result_fault("text-only", "HTTP 200 with a refusal in text and no image"),
    result_fault("fewer", "one image fewer than asked (duomi: a task with no image)"),
    _download("redirect", "the result URL answers 302 to the real file"),
    _download("expired", "the result URL answers 403, expired"),
    _download("html-result", "the result URL answers 200 with an HTML page"),
    _download("mislabeled", "the result file is served in the other format", Stage.RESULT),
    _download("truncated", "the download stops halfway, short of Content-Length", Stage.RESULT),
    _download("huge", "the download is a PNG signature and zeros, huge_bytes long"),
    _download("huge-chunked", "as huge, chunked, with no Content-Length"),
    _lineup("added", "from the next model listing on, a new image model is listed"),
    _lineup("dropped", "from the next model listing on, Nano Banana 2 is listed no more"),
    _lineup(
        "widened",
        "from the next model listing on, Nano Banana Pro takes the tall ratios too",
        _NO_API,
    ),
)


def shared_kinds(*names: str) -> tuple[FaultKind, ...]:
    """The core kinds of ``names``, for an API to declare that it acts them out too
    (``EmulatedApi.fault_kinds``)."""
    return tuple(CORE_FAULT_KINDS[name] for name in names)


def with_api_kinds(
    kinds: Mapping[str, FaultKind], api: str, own: Iterable[FaultKind]
) -> dict[str, FaultKind]:
    """``kinds`` and the fault kinds of the API named ``api``. A kind of a name already known
    is that kind acted out by one more API (its other fields must match); a new one fits
    ``api`` alone."""
    merged = dict(kinds)
    for kind in own:
        known = merged.get(kind.name)
        if known is None:
            merged[kind.name] = replace(kind, apis=frozenset({api}))
            continue
        if (known.default_phase, known.phases, known.stage) != (
            kind.default_phase,
            kind.phases,
            kind.stage,
        ):
            raise ValueError(f"the {api} API's fault {kind.name} differs from the known one")
        if known.apis is not None:
            merged[kind.name] = replace(known, apis=known.apis | {api})
    return merged


# Faults that leave the answer to the API and change how it goes out.
PASS_THROUGH = frozenset({"slow", "bad-json"})
# How far ahead a 429-date's Retry-After points, in whole seconds past the current one.
RETRY_DATE_SECONDS = 2


def retry_date(epoch: float) -> str:
    """A Retry-After HTTP date (IMF-fixdate) about ``RETRY_DATE_SECONDS`` after Unix time
    ``epoch``: the next whole second plus that, as the date has no fractions to round."""
    moment = datetime.fromtimestamp(math.ceil(epoch) + RETRY_DATE_SECONDS, UTC)
    return format_datetime(moment, usegmt=True)


def status_answer(
    fault: str, error: Callable[[int], SandboxResponse], epoch: float
) -> SandboxResponse:
    """The answer to a status fault (``503``, ``503-html``, ``503-empty``, ``429-date``,
    ``html502``). ``error(status)`` is the server's own error answer with that status, and
    ``epoch`` the Unix time now."""
    if fault == "html502":
        return proxy_page(502)
    number, _, variant = fault.partition("-")
    status = int(number)
    if variant == "html":
        return proxy_page(status)
    if variant == "empty":
        return empty_response(status)
    response = error(status)
    if status == 429:
        response.headers["Retry-After"] = retry_date(epoch) if variant == "date" else "1"
    return response


_TOKEN = re.compile(r"(?:(?P<phase>[a-z]+):)?(?P<name>[a-z0-9-]+?)(?:x(?P<count>\d+))?")


@dataclass
class PlannedFault:
    """One token of a plan and how many more requests it applies to."""

    kind: FaultKind
    phase: Phase
    remaining: int


def parse_faults(
    spec: str, kinds: Mapping[str, FaultKind] = CORE_FAULT_KINDS
) -> list[PlannedFault]:
    """Read a plan of the faults in ``kinds``; raise ValueError naming the first token that
    makes no sense."""
    planned: list[PlannedFault] = []
    for raw in spec.split(","):
        token = raw.strip().lower()
        if not token:
            continue
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise ValueError(f"fault {raw.strip()!r} is not of the form [phase:]name[xN]")
        kind = kinds.get(match["name"])
        if kind is None:
            known = ", ".join(kinds)
            raise ValueError(f"unknown fault {match['name']!r} in {raw.strip()!r}; known: {known}")
        phase = kind.default_phase
        if match["phase"] is not None:
            try:
                phase = Phase(match["phase"])
            except ValueError:
                known = ", ".join(p.value for p in Phase)
                raise ValueError(
                    f"unknown phase {match['phase']!r} in fault {raw.strip()!r}; known: {known}"
                ) from None
            if phase not in kind.phases:
                allowed = ", ".join(sorted(p.value for p in kind.phases))
                raise ValueError(
                    f"fault {raw.strip()!r}: {kind.name} applies to {allowed}, not {phase.value}"
                )
        count = int(match["count"]) if match["count"] is not None else 1
        if count < 1:
            raise ValueError(f"fault {raw.strip()!r} repeats {count} times; use x1 or more")
        planned.append(PlannedFault(kind, phase, count))
    return planned


class FaultPlan:
    """The queue of planned faults, shared by every request thread."""

    def __init__(self, spec: str = "", kinds: Mapping[str, FaultKind] = CORE_FAULT_KINDS) -> None:
        self._lock = threading.Lock()
        self._kinds = kinds
        self._planned = parse_faults(spec, kinds)

    def add(self, spec: str) -> None:
        """Append tokens to the end of the plan (the spec is checked first, all or nothing)."""
        planned = parse_faults(spec, self._kinds)
        with self._lock:
            self._planned.extend(planned)

    def pending(self) -> list[str]:
        """The tokens still waiting, as ``phase:name`` strings with their repeat count."""
        with self._lock:
            return [f"{p.phase.value}:{p.kind.name}x{p.remaining}" for p in self._planned]

    def take(
        self,
        phases: frozenset[Phase],
        server: str,
        stage: Stage,
        acts: Collection[str] | None = None,
    ) -> str | None:
        """Use up the fault this request should show at ``stage``, if any. ``server`` names
        the server answering it: an API's name, or ``FILES``. ``acts`` names the faults the
        route answering it acts out, when an API's routes act out different ones (Gemini's
        ``generateContent`` and its Interactions API): a token for another route of the API
        waits for that route, as a token for another API does (None: every fault that fits
        the server).

        Only the first token waiting for this kind of request counts: when it belongs to
        another stage it stays queued, so faults are acted out in plan order.
        """
        with self._lock:
            for index, planned in enumerate(self._planned):
                if acts is not None and planned.kind.name not in acts:
                    continue
                if planned.phase in phases and planned.kind.fits(server):
                    if planned.kind.stage is not stage:
                        return None
                    planned.remaining -= 1
                    if planned.remaining == 0:
                        del self._planned[index]
                    return planned.kind.name
        return None
