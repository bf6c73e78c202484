"""The Gemini Batch API's batches and how they move on along the batch clock
(``nanoedit.sandbox.batching``): PENDING, then RUNNING with their requests finishing evenly over
the running time, then SUCCEEDED; or FAILED, CANCELLED or EXPIRED.

A batch's requests are answered by the sandbox's own ``generateContent`` (``gemini_generate``),
so a batch's answer is what that request alone would have had, result faults included. Each
answer is written to the batch's results file as it is made, never kept in memory: a 10,000
request batch holds one answer at a time, and its results file is served by streaming.

[P] The states are the REST API's ``BatchState`` names (google-genai 3.6.1
``_transformers.t_job_state`` maps them to ``JOB_STATE_*``).
"""

from __future__ import annotations

import json
import secrets
import shutil
import string
import tempfile
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from nanoedit.sandbox.batching import BatchBill
from nanoedit.sandbox.catalog import Model
from nanoedit.sandbox.faults import Phase, Stage, result_fault
from nanoedit.sandbox.gemini_batch_input import BatchInput, BatchOrder, InlineInput
from nanoedit.sandbox.gemini_errors import GoogleError
from nanoedit.sandbox.gemini_generate import GenerateContent
from nanoedit.sandbox.runtime import Runtime

PENDING = "BATCH_STATE_PENDING"
RUNNING = "BATCH_STATE_RUNNING"
SUCCEEDED = "BATCH_STATE_SUCCEEDED"
FAILED = "BATCH_STATE_FAILED"
CANCELLED = "BATCH_STATE_CANCELLED"
EXPIRED = "BATCH_STATE_EXPIRED"
ENDED = frozenset({SUCCEEDED, FAILED, CANCELLED, EXPIRED})
# [I] The ended states whose results can be read: a cancelled batch keeps what it finished;
# an expired one has none (Google's guide: an expired job has no results to retrieve).
WITH_RESULTS = frozenset({SUCCEEDED, CANCELLED})

# The batch faults, taken when a batch is created (phase submit): how that batch goes.
FAULT_KINDS = (
    result_fault("batch-expired", "a batch never runs, and expires 48 h (batch clock) on"),
    result_fault("batch-failed", "a batch fails as a whole when it would start running"),
    result_fault(
        "batch-cancelled", "a batch is cancelled halfway through, keeping what it finished"
    ),
    result_fault(
        "batch-request-error", "a batch's first request ends in an error (google.rpc.Status)"
    ),
)
BATCH_FAULTS = frozenset(kind.name for kind in FAULT_KINDS)
SUBMITS = frozenset({Phase.SUBMIT})
# [P] google.rpc.Code numbers of the statuses a request's error can carry (a result line's
# ``error`` is a google.rpc.Status: the gRPC code, not the HTTP status).
RPC_CODES = {
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
}
# [I] What a batch that failed as a whole says (fault batch-failed), and what the request the
# fault batch-request-error spoils says: Google's words for an internal error.
INTERNAL_ERROR = (
    "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting"
)
_ID_CHARS = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class Result:
    """One request's result line, and how it counts."""

    line: dict[str, object]
    succeeded: bool
    billed: int = 0
    """1 when it made an image (what a batch is charged for)."""


@dataclass
class Batch:
    """One batch and how far it has got; changed only under its store's lock."""

    id: str
    model: Model
    display_name: str | None
    input: BatchInput
    file_name: str | None
    own_hosts: frozenset[str]
    created: float
    """Batch-clock Unix time of its creation; ``updated`` and ``ended`` likewise."""
    results: Path
    fault: str | None = None
    state: str = PENDING
    updated: float = 0.0
    ended: float | None = None
    done: int = 0
    succeeded: int = 0
    failed: int = 0
    billed: int = 0
    """Requests that made an image: what the batch is charged for."""
    error: dict[str, object] | None = None
    deleted: bool = False

    @property
    def name(self) -> str:
        """``batches/ID``."""
        return f"batches/{self.id}"

    @property
    def inline(self) -> bool:
        """Whether its requests came inline (and its results go back inline)."""
        return isinstance(self.input, InlineInput)

    @property
    def results_id(self) -> str:
        """The Files API id of its results file (file input only)."""
        return f"batch-{self.id}"


@dataclass
class BatchStore:
    """Every batch of one emulated Gemini API, newest last, with their results files in a
    folder of their own (removed with the store)."""

    runtime: Runtime
    generator: GenerateContent
    api: str
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _batches: dict[str, Batch] = field(default_factory=dict)
    _folder: Path = field(init=False)

    def __post_init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="sandbox-batches-"))
        weakref.finalize(self, shutil.rmtree, self._folder, True)
        store = weakref.ref(self)

        def moved() -> None:
            # The clock keeps its listeners: a weak reference lets a dropped sandbox go.
            alive = store()
            if alive is not None:
                alive.catch_up()

        self.runtime.batch_clock.listen(moved)

    def create(self, order: BatchOrder, model: Model, own_hosts: frozenset[str]) -> Batch:
        """A new batch, PENDING, taking the batch fault due (if any)."""
        fault = self.runtime.faults.take(SUBMITS, self.api, Stage.RESULT, BATCH_FAULTS)
        now = self.runtime.batch_clock.now()
        batch_id = "".join(secrets.choice(_ID_CHARS) for _ in range(20))
        batch = Batch(
            batch_id,
            model,
            order.display_name,
            order.input,
            order.file_name,
            own_hosts,
            now,
            self._folder / f"{batch_id}.jsonl",
            fault,
            updated=now,
        )
        batch.results.touch()
        with self._lock:
            self._batches[batch_id] = batch
        return batch

    def get(self, batch_id: str) -> Batch | None:
        """The batch of that id, brought up to the clock (None: there is none)."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is not None:
                self._catch_up(batch)
            return batch

    def listing(self) -> list[Batch]:
        """Every batch, newest first, brought up to the clock."""
        with self._lock:
            batches = list(reversed(self._batches.values()))
            for batch in batches:
                self._catch_up(batch)
            return batches

    def by_results(self, file_id: str) -> Batch | None:
        """The batch whose results file has that Files API id (None: none)."""
        with self._lock:
            batch = self._batches.get(file_id.removeprefix("batch-"))
            if batch is None or batch.inline or file_id != batch.results_id:
                return None
            self._catch_up(batch)
            return batch

    def cancel(self, batch_id: str) -> Batch | None:
        """Cancel a batch: what it finished stays (and is billed); an ended batch stays as it
        is. None: there is no such batch."""
        with self._lock:
            batch = self.get(batch_id)
            if batch is not None and batch.state not in ENDED:
                self._end(batch, CANCELLED, self.runtime.batch_clock.now())
            return batch

    def delete(self, batch_id: str) -> bool:
        """Forget a batch and its results; False when there was none. [I] A batch deleted
        while it runs stops, uncharged (Google documents no charge for it)."""
        with self._lock:
            batch = self._batches.pop(batch_id, None)
            if batch is None:
                return False
            batch.deleted = True
            batch.results.unlink(missing_ok=True)
            return True

    def catch_up(self) -> None:
        """Bring every batch up to the clock (called when the clock moves)."""
        with self._lock:
            for batch in list(self._batches.values()):
                self._catch_up(batch)

    def _catch_up(self, batch: Batch) -> None:
        """Move one batch on to the clock's time: its state, and the requests due answered."""
        if batch.state in ENDED:
            return
        clock = self.runtime.batch_clock
        now = clock.now()
        expiry = batch.created + clock.expiry_seconds
        horizon = min(now, expiry)
        starts = batch.created + clock.pending_seconds
        ends = starts + clock.running_seconds
        if batch.fault == "batch-expired":
            starts = ends = float("inf")  # it never gets to run
        if horizon >= starts and batch.state == PENDING:
            batch.state, batch.updated = RUNNING, starts
            if batch.fault == "batch-failed":
                batch.error = {"code": RPC_CODES["INTERNAL"], "message": INTERNAL_ERROR}
                self._end(batch, FAILED, starts)
                return
        if batch.state == RUNNING:
            count = batch.input.count
            if horizon >= ends:
                due = count
            else:
                share = (horizon - starts) / clock.running_seconds
                due = min(count, int(share * count))
            if batch.fault == "batch-cancelled":
                # Cancelled by someone else halfway through its running time.
                halfway = starts + clock.running_seconds / 2
                due = min(due, count // 2)
                if horizon >= halfway:
                    self._answer(batch, due)
                    self._end(batch, CANCELLED, halfway)
                    return
            self._answer(batch, due)
            if batch.done == count:
                self._end(batch, SUCCEEDED, ends)
                return
        if now >= expiry:
            self._end(batch, EXPIRED, expiry)

    def _answer(self, batch: Batch, due: int) -> None:
        """Answer the batch's requests up to ``due``, one by one and in order (so the fault
        plan's result faults go to the requests in order), each line written as it is made."""
        if batch.done >= due:
            return
        with batch.results.open("a", encoding="utf-8") as out:
            while batch.done < due:
                self._write(batch, self._result(batch, batch.done), out)
        batch.updated = self.runtime.batch_clock.now()

    def _write(self, batch: Batch, result: Result, out: IO[str]) -> None:
        """Write one result line and count it."""
        out.write(json.dumps(result.line, separators=(",", ":")) + "\n")
        batch.done += 1
        if result.succeeded:
            batch.succeeded += 1
            batch.billed += result.billed
        else:
            batch.failed += 1

    def _result(self, batch: Batch, index: int) -> Result:
        """The result of request ``index``: its answer, or its error (google.rpc.Status)."""
        item = batch.input.item(index)
        line: dict[str, object] = {}
        if batch.inline:
            if item.metadata is not None:
                line["metadata"] = item.metadata
        elif item.key is not None:
            line["key"] = item.key
        if batch.fault == "batch-request-error" and index == 0:
            line["error"] = {"code": RPC_CODES["INTERNAL"], "message": INTERNAL_ERROR}
            return Result(line, succeeded=False)
        if item.unreadable is not None:
            line["error"] = {"code": RPC_CODES["INVALID_ARGUMENT"], "message": item.unreadable}
            return Result(line, succeeded=False)
        try:
            answer = self.generator.answer(item.body, batch.model, batch.own_hosts)
        except GoogleError as refused:
            line["error"] = {"code": RPC_CODES.get(refused.status, 2), "message": refused.message}
            return Result(line, succeeded=False)
        line["response"] = answer
        return Result(line, succeeded=True, billed=_made_image(answer))

    def _end(self, batch: Batch, state: str, when: float) -> None:
        """End a batch in ``state`` at batch-clock time ``when``; bill what it made, once."""
        batch.state, batch.ended, batch.updated = state, when, when
        if state not in WITH_RESULTS:
            batch.results.unlink(missing_ok=True)
            return
        if batch.billed:
            # [I] Billed once, as the batch ends, for the requests that made an image (Google
            # charges no blocked image); a cancelled batch for the part it finished.
            bill = BatchBill(batch.name, f"models/{batch.model.id}", state, batch.billed)
            self.runtime.batch_bills.add(bill)


def _made_image(answer: dict[str, object]) -> int:
    """1 when an answer holds an image that is not a thought, else 0."""
    candidates = answer.get("candidates")
    for candidate in candidates if isinstance(candidates, list) else []:
        content = candidate.get("content") if isinstance(candidate, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict) and "inlineData" in part and not part.get("thought"):
                return 1
    return 0
