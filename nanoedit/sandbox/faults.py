"""The fault plan: misbehaviours queued up for the sandbox to act out, one request at a time.

A plan is a comma-separated list of tokens ``[phase:]name[xN]``, e.g. ``429x2,poll:502,redirect``.
Each token is used up by the next request, in plan order, that it can apply to: a request of
its phase, to an API the fault makes sense for, at the point where the fault shows. ``xN``
repeats it for N requests.

Phases: ``submit`` (API POSTs), ``poll`` (duomi task GETs), ``file`` (result downloads) and
``api`` (any API request). Names, with their default phase:

- ``api``: ``429`` (with Retry-After: 1), ``500``, ``502``, ``503``, ``504`` (an error body in
  the API's shape; in phase ``file``, the CDN's XML), ``html502`` (an nginx page),
  ``error200`` (an error in an HTTP 200 answer).
- ``submit`` (results, both APIs): ``data-uri``, ``empty-url``, ``empty-data``, ``no-data``,
  ``text-only``; (duomi tasks) ``task-error``, ``task-stuck``, ``task-unknown``.
- ``file``: ``redirect``, ``expired``, ``html-result``, ``mislabeled``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from enum import Enum


class Phase(Enum):
    """Which requests a token waits for."""

    SUBMIT = "submit"  # the API POSTs that start work
    POLL = "poll"  # duomi's task GETs
    FILE = "file"  # downloads of result files
    API = "api"  # any request to an API route (submits, polls, model lists)


class Api(Enum):
    """Which server answers: the two reseller APIs or the result-file host."""

    OPENAI = "openai"
    DUOMI = "duomi"
    FILES = "files"


class Stage(Enum):
    """Where in handling a request a fault shows.

    ANSWER faults replace the whole answer before anything is checked, like a proxy or an
    overloaded gateway. RESULT faults change a successful result, so a request that fails
    auth or validation leaves them queued for the next one.
    """

    ANSWER = "answer"
    RESULT = "result"


@dataclass(frozen=True)
class FaultKind:
    """What a fault name means: where it may go and where it goes by default."""

    name: str
    default_phase: Phase
    phases: frozenset[Phase]
    apis: frozenset[Api]
    stage: Stage
    summary: str


_ANY_PHASE = frozenset(Phase)
_API_PHASES = frozenset({Phase.API, Phase.SUBMIT, Phase.POLL})
_BOTH_APIS = frozenset({Api.OPENAI, Api.DUOMI})
_EVERY_SERVER = frozenset(Api)


def _kinds(*kinds: FaultKind) -> dict[str, FaultKind]:
    return {kind.name: kind for kind in kinds}


def _status(name: str, summary: str) -> FaultKind:
    return FaultKind(name, Phase.API, _ANY_PHASE, _EVERY_SERVER, Stage.ANSWER, summary)


def _result(name: str, summary: str, apis: frozenset[Api] = _BOTH_APIS) -> FaultKind:
    return FaultKind(name, Phase.SUBMIT, frozenset({Phase.SUBMIT}), apis, Stage.RESULT, summary)


def _download(name: str, summary: str, stage: Stage = Stage.ANSWER) -> FaultKind:
    return FaultKind(
        name, Phase.FILE, frozenset({Phase.FILE}), frozenset({Api.FILES}), stage, summary
    )


FAULT_KINDS: dict[str, FaultKind] = _kinds(
    _status("429", "HTTP 429 with Retry-After: 1"),
    _status("500", "HTTP 500 with an error body"),
    _status("502", "HTTP 502 with an error body"),
    _status("503", "HTTP 503 with an error body"),
    _status("504", "HTTP 504 with an error body"),
    _status("html502", "HTTP 502 with an HTML page from a proxy"),
    FaultKind(
        "error200",
        Phase.API,
        _API_PHASES,
        _BOTH_APIS,
        Stage.ANSWER,
        "HTTP 200 carrying an error object",
    ),
    _result("data-uri", "the result URL is a data: URI"),
    _result("empty-url", "HTTP 200 with an empty result URL"),
    _result("empty-data", "HTTP 200 with an empty list of results"),
    _result("no-data", "HTTP 200 with no result list at all"),
    _result("text-only", "HTTP 200 with a refusal in text and no image"),
    _result("task-error", "the task ends in state error", frozenset({Api.DUOMI})),
    _result("task-stuck", "the task stays running forever", frozenset({Api.DUOMI})),
    _result("task-unknown", "the task reports state queued once", frozenset({Api.DUOMI})),
    _download("redirect", "the result URL answers 302 to the real file"),
    _download("expired", "the result URL answers 403, expired"),
    _download("html-result", "the result URL answers 200 with an HTML page"),
    _download("mislabeled", "the result file is served in the other format", Stage.RESULT),
)

_TOKEN = re.compile(r"(?:(?P<phase>[a-z]+):)?(?P<name>[a-z0-9-]+?)(?:x(?P<count>\d+))?")


@dataclass
class PlannedFault:
    """One token of a plan and how many more requests it applies to."""

    kind: FaultKind
    phase: Phase
    remaining: int


def parse_faults(spec: str) -> list[PlannedFault]:
    """Read a plan; raise ValueError naming the first token that makes no sense."""
    planned: list[PlannedFault] = []
    for raw in spec.split(","):
        token = raw.strip().lower()
        if not token:
            continue
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise ValueError(f"fault {raw.strip()!r} is not of the form [phase:]name[xN]")
        kind = FAULT_KINDS.get(match["name"])
        if kind is None:
            known = ", ".join(FAULT_KINDS)
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

    def __init__(self, spec: str = "") -> None:
        self._lock = threading.Lock()
        self._planned = parse_faults(spec)

    def add(self, spec: str) -> None:
        """Append tokens to the end of the plan (the spec is checked first, all or nothing)."""
        planned = parse_faults(spec)
        with self._lock:
            self._planned.extend(planned)

    def pending(self) -> list[str]:
        """The tokens still waiting, as ``phase:name`` strings with their repeat count."""
        with self._lock:
            return [f"{p.phase.value}:{p.kind.name}x{p.remaining}" for p in self._planned]

    def take(self, phases: frozenset[Phase], api: Api, stage: Stage) -> str | None:
        """Use up the fault this request should show at ``stage``, if any.

        Only the first token waiting for this kind of request counts: when it belongs to
        another stage it stays queued, so faults are acted out in plan order.
        """
        with self._lock:
            for index, planned in enumerate(self._planned):
                if planned.phase in phases and api in planned.kind.apis:
                    if planned.kind.stage is not stage:
                        return None
                    planned.remaining -= 1
                    if planned.remaining == 0:
                        del self._planned[index]
                    return planned.kind.name
        return None
