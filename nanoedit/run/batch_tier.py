"""``--tier batch``: a run's jobs sent as one Google Batch API submission (or several, under
its size limits), at the batch price, and their results saved as any job's are.

Who pays if this goes wrong: a batch is ONE paid submission for N jobs, so every step is
journaled (:mod:`nanoedit.journal.batches`) before the next one starts:

1. the batch is added (``building``) with its jobs, each job ``submitted`` with its
   provenance; its input images are uploaded once each (by SHA-256, the URI journaled as it
   comes) and its requests written to a JSONL file in the journal's spool, one line a request
   keyed ``JOBID-N``, each line the very body an interactive request of the job sends
   (:meth:`GeminiBackend.body`), its images referenced by ``fileData.fileUri``;
2. a small batch is sent inline, a larger one uploaded as the JSONL file (uploads are free:
   a run killed during one uploads it again on resume);
3. the batch is marked ``submitting``, then created (the one paid request); Google's name is
   journaled the moment the create returns. A run killed between the two cannot know whether
   Google has it: its display name carries the batch's token (``nanoedit-TOKEN``), and
   resume lists ``GET /v1beta/batches`` for it before it ever submits again;
4. the batch is polled until it ends; its results file is read line by line, each image's
   base64 streamed into the spool, and each job journaled ``answered`` (at the batch price)
   or failed/refused; then every answered job is saved by the runner, as any job going on
   from its journaled results is (names, provenance, sidecars, report).

Jobs a batch ended without (failed, cancelled, expired) are listed; ``resume --resend`` sends
them again at the standard tier.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanoedit.backends.gemini import GENERATE_CONTENT, GeminiBackend
from nanoedit.backends.gemini_batch import FILE_LIMIT, INLINE_LIMIT, BatchApi, LineResult
from nanoedit.catalog.pricing import Prices, money
from nanoedit.clock import Clock
from nanoedit.errors import ApiError, NanoeditError, RefusedError, UsageError
from nanoedit.jobs import JobOutcome, PlannedJob, ResultEntry, RunOptions
from nanoedit.journal.batches import (
    BUILDING,
    CANCELLED,
    COLLECTED,
    ENDED_EARLY,
    EXPIRED,
    FAILED,
    RUNNING,
    SUBMITTING,
    SUCCEEDED,
    Batches,
    BatchRecord,
)
from nanoedit.journal.records import ANSWERED, PLANNED, REFUSED, SUBMITTED
from nanoedit.net.http import Deadline, JobHttp, RetryPolicy
from nanoedit.output.parts import PartFile, PartFiles
from nanoedit.run.routing import make_backend

# The backend whose API takes batches (Google's Batch API is the Gemini API's).
BATCHES = GeminiBackend.name

if TYPE_CHECKING:
    import httpx

    from nanoedit.journal.store import Journal
    from nanoedit.net.inputs import RunInputs
    from nanoedit.run.events import Events
    from nanoedit.settings.values import Settings

BATCH = "batch"
# [I] Jobs in one batch at most: Google's limit is the input file's 2 GB (requests reference
# their images by URI, so a line is ~1 kB), but a results file of this many images is
# already several GB to read back; more jobs make more batches.
MAX_BATCH_JOBS = 50_000
# [I] Polling: first after this many seconds, half as long again each time, up to the most.
# Google says a batch ends within 24 hours, most far sooner; a poll is free.
POLL_FIRST = 2.0
POLL_MOST = 30.0
POLL_GROWTH = 1.5
# [I] Inline for a few requests only: Google answers an inline batch's results inside the
# batch itself, every image in one answer; a results file is read one line at a time.
INLINE_MAX_REQUESTS = 100
# [I] Time allowed to each free request (an upload, a poll); the create is one request too.
REQUEST_TIMEOUT = 300.0


def key_of(job_id: int, number: int) -> str:
    """A request's key: its job's journal id and the number of the image it asks for."""
    return f"{job_id}-{number}"


def job_of_key(key: str) -> tuple[int, int] | None:
    """The job id and image number a key names, or None for a key nanoedit did not make."""
    head, _, tail = key.partition("-")
    return (int(head), int(tail)) if head.isdigit() and tail.isdigit() else None


@dataclass
class Collected:
    """What a batch's results gave: each job's journal entries, usage and the errors."""

    entries: dict[int, list[ResultEntry]] = field(default_factory=dict)
    usage: dict[int, dict[str, Any]] = field(default_factory=dict)
    errors: dict[int, NanoeditError] = field(default_factory=dict)
    lines: int = 0


def check_batchable(planned: Sequence[PlannedJob], settings: Settings) -> None:
    """Refuse, before anything is sent, jobs the Batch API cannot take."""
    for entry in planned:
        if entry.backend != BATCHES:
            raise UsageError(
                f"--tier batch goes through Google's Batch API, which the {BATCHES} backend has "
                f"and {entry.backend} (for {entry.job.label}) has not; add --backend {BATCHES}, "
                "or leave out --tier batch"
            )
        # Not carried into a batch yet (untried there): --transparent (its matte sends two
        # renders a job, its key a composite after) and --mask/--region (a composite after).
        if entry.job.options.transparent is not None or entry.job.mask is not None:
            flag = "--transparent" if entry.job.options.transparent else "--mask/--region"
            raise UsageError(
                f"--tier batch does not take {flag} yet ({entry.job.label}); leave out one of them"
            )
        if entry.job.thread is not None:
            raise UsageError(
                f"{entry.job.label} continues a thread (--continue), which a batch does not "
                "carry; leave out --tier batch for it"
            )
    api = settings.backend_settings(BATCHES).option("api") or GENERATE_CONTENT
    if planned and api != GENERATE_CONTENT:
        raise UsageError(
            f"--tier batch sends generateContent requests, and gemini.api is {api}; set "
            f"gemini.api to {GENERATE_CONTENT} for this run, or leave out --tier batch"
        )


class BatchTier:
    """Builds, submits, polls and collects a run's batches; ``say`` tells a person how it
    goes (stderr). Saving the collected results is the runner's (see :func:`run_batch`)."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client,
        events: Events,
        options: RunOptions,
        inputs: RunInputs,
        *,
        clock: Clock,
        journal: Journal,
        say: Callable[[str], None],
    ) -> None:
        from nanoedit.run.job import JobPipeline

        self.settings = settings
        self.client = client
        self.events = events
        self.options = options
        self.clock = clock
        self.journal = journal
        self.say = say
        self.batches = Batches(journal)
        self.cancel = threading.Event()
        self.parts = PartFiles()
        self.pipeline = JobPipeline(
            settings, client, events, options, inputs, clock=clock, journal=journal,
            parts=self.parts, cancel=self.cancel, draining=threading.Event(),
        )  # fmt: skip
        self.prices = Prices(settings.prices, settings.catalog, BATCH)

    # Sending -------------------------------------------------------------------------------

    def _http(self, spool: Callable[[], PartFile] | None = None) -> JobHttp:
        """A fresh view of the network for one step (its own time budget); with ``spool``,
        base64 images in JSON answers are streamed into its part files."""
        policy = RetryPolicy(retries=self.settings.retries, backoff=self.settings.backoff)
        return JobHttp(
            self.client, policy, Deadline(REQUEST_TIMEOUT, self.clock.monotonic),
            notify=self.events.warning, cancel=self.cancel, proxy=self.settings.proxy,
            clock=self.clock, spool=spool,
        )  # fmt: skip

    def _api(self, http: JobHttp | None = None) -> BatchApi:
        backend = make_backend(BATCHES, self.settings, http or self._http())
        assert isinstance(backend, GeminiBackend)
        return BatchApi(backend)

    def submit(self, planned: Sequence[PlannedJob]) -> list[BatchRecord]:
        """Build and submit the batches of ``planned`` (journaled jobs), one per model and per
        :data:`MAX_BATCH_JOBS`; returns them as journaled once Google has each."""
        by_model: dict[str, list[PlannedJob]] = {}
        for entry in planned:
            by_model.setdefault(entry.model, []).append(entry)
        made = []
        for model, jobs in by_model.items():
            for start in range(0, len(jobs), MAX_BATCH_JOBS):
                chunk = jobs[start : start + MAX_BATCH_JOBS]
                ids = [entry.journal_id for entry in chunk if entry.journal_id is not None]
                requests = sum(entry.job.options.count for entry in chunk)
                estimate = self._cost(chunk[0], requests) if chunk else None
                token = os.urandom(8).hex()
                record = self.batches.add(
                    token, BATCHES, model, ids, requests=requests, estimate=estimate
                )
                made.append(self.send(record, {entry.journal_id: entry for entry in chunk}))
        return made

    def _cost(self, entry: PlannedJob, images: int) -> float | None:
        price = self.prices.price(entry.backend, entry.model, entry.job.options.size)
        return None if price is None else price.amount * images

    def send(self, record: BatchRecord, planned: Mapping[int | None, PlannedJob]) -> BatchRecord:
        """Take a batch from where the journal has it to submitted: build what is not built,
        look for it at Google when a create may have gone out, create it once."""
        # Submitting already when taken up: the create of the run that left it may have
        # reached Google.
        maybe_sent = record.state == SUBMITTING
        if record.state == BUILDING:
            record = self._build(record, planned)
        if record.state == SUBMITTING and record.name is None:
            record = self._create(record, look_first=maybe_sent)
        return record

    def _requests_path(self, record: BatchRecord) -> Path:
        return self.journal.spool / f"batch-{record.token}.jsonl"

    def _build(self, record: BatchRecord, planned: Mapping[int | None, PlannedJob]) -> BatchRecord:
        """Upload the inputs not uploaded yet and write every request; upload the JSONL file
        when the batch is too large to send inline. Free steps, done again after a kill."""
        from nanoedit.run.job import _provenance

        uploads = dict(record.uploads)
        path = self._requests_path(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.say(f"building batch {record.display_name}: {len(record.jobs)} jobs")
        part = path.with_name(f"{path.name}.part")
        size = 0
        with part.open("w", encoding="utf-8") as lines:
            for ident in record.jobs:
                entry = planned[ident]
                http = self._http()
                backend = self._api(http).backend
                progress = self._progress(entry)
                prepared = self.pipeline.prepare(
                    entry.job, entry.backend, entry.model, http, progress
                )
                parts = []
                for upload in prepared.added_uploads():
                    digest = hashlib.sha256(upload.data).hexdigest()
                    if digest not in uploads:
                        uploads[digest] = self._api().upload_image(upload, progress)
                        self.batches.update(record.token, uploads=uploads)
                    part_of = {"mimeType": upload.mime, "fileUri": uploads[digest]}
                    parts.append({"fileData": part_of})
                provenance = _provenance(entry, prepared, self.settings.sandbox)
                self.journal.submitted(ident, provenance.to_json())
                body = backend.body(prepared, parts)
                for number in range(1, entry.job.options.count + 1):
                    line = json.dumps({"key": key_of(ident, number), "request": body})
                    size += len(line) + 1
                    lines.write(line + "\n")
        if size > FILE_LIMIT:
            raise UsageError(
                f"the batch's requests come to {size} bytes, over the Batch API's 2 GB input "
                "file; send fewer jobs a run (--shard K/N splits them)"
            )
        part.replace(path)
        input_file = None
        if size > INLINE_LIMIT or record.requests > INLINE_MAX_REQUESTS:
            self.say(f"uploading the requests of {record.display_name} ({size} bytes)")
            input_file = self._api().upload_requests(path, record.display_name)
        return self.batches.update(record.token, state=SUBMITTING, input_file=input_file)

    def _progress(self, entry: PlannedJob) -> Callable[..., None]:
        def progress(phase: str, done: int | None = None, total: int | None = None) -> None:
            self.events.job_phase(entry.job, phase, done, total)

        return progress

    def _create(self, record: BatchRecord, *, look_first: bool) -> BatchRecord:
        """The one paid request: create the batch, unless a create of an earlier run of it
        reached Google (found by its display name), and journal its name at once."""
        api = self._api()
        if look_first:
            # Taken up from a killed run that may have sent the create: look before paying.
            found = api.find(record.display_name)
            if found is not None:
                self.say(f"found {found.name} ({record.display_name}), submitted before")
                return self.batches.update(record.token, name=found.name, state=found.state)
        inline = None
        if record.input_file is None:
            inline = []
            with self._requests_path(record).open(encoding="utf-8") as lines:
                for text in lines:
                    line = json.loads(text)
                    inline.append({"request": line["request"], "metadata": {"key": line["key"]}})
        # From here a kill may leave a batch at Google that the journal does not name yet.
        self.batches.update(record.token, state=SUBMITTING, run=self.journal.run_id)
        made = api.create(
            record.model, record.display_name, file_name=record.input_file, inline=inline
        )
        record = self.batches.update(record.token, name=made.name, state=made.state)
        estimate = f", estimated {money(record.estimate)}" if record.estimate is not None else ""
        self.say(f"submitted {made.name}: {record.requests} requests{estimate}")
        return record

    # Waiting and collecting ----------------------------------------------------------------

    def _part(self) -> PartFile:
        """A part file of the journal's spool, for an image streamed out of an answer."""
        from nanoedit.journal.store import PRIVATE_FILE

        spool = self.journal.spool
        return PartFile(spool, "an image of the batch", self.parts, mode=PRIVATE_FILE)

    def wait(self, record: BatchRecord) -> BatchRecord:
        """Poll the batch until it ends, saying its state and progress when they change."""
        assert record.name is not None
        started = self.clock.monotonic()
        interval = POLL_FIRST
        said = ""
        while True:
            # Streamed: an ended inline batch's answer carries every image (read by collect).
            state, _ = self._api(self._http(self._part)).get_streamed(record.name)
            self.parts.discard_all()
            # An ended state is journaled by collect, once the results are read: a kill in
            # between leaves the batch open, for resume to read them (never to resend jobs a
            # cancelled batch did).
            journaled = RUNNING if state.ended else state.state
            record = self.batches.update(record.token, state=journaled, done=state.done or 0)
            done = "" if state.done is None else f", {state.done}/{state.total or '?'} done"
            line = f"{record.name}: {state.state}{done}"
            if line != said:
                elapsed = self.clock.monotonic() - started
                self.say(f"{line} ({elapsed:.0f} s)")
                said = line
            if state.ended:
                return replace(record, state=state.state, error=state.error)
            if self.clock.wait(interval, self.cancel):
                return record
            interval = min(interval * POLL_GROWTH, POLL_MOST)

    def collect(self, record: BatchRecord) -> Collected:
        """Read an ended batch's results into its jobs: each answered job journaled with its
        spooled images and its batch cost, each failed one failed (a refusal refused). A job
        the batch has no result for stays submitted (see :func:`not_done`)."""
        assert record.name is not None
        collected = Collected()

        part = self._part
        api = self._api(self._http(part))
        state, streamed = api.get_streamed(record.name)

        def take(result: LineResult) -> None:
            self._take(record, result, collected)

        if state.responses_file:
            self.say(f"reading the results of {record.name}")
            collected.lines = api.read_results(state.responses_file, record.model, part, take)
        elif state.inlined is not None:
            for item in state.inlined:
                take(api.line_result(item, record.model, streamed))
                collected.lines += 1
        # What was streamed and is no result (a thought's draft image) goes.
        self.parts.discard_all()
        total = self._journal_results(record, collected)
        ended = COLLECTED if state.state == SUCCEEDED else state.state
        self.batches.update(
            record.token, state=ended, cost=total, done=collected.lines,
            results_file=state.responses_file, error=state.error,
        )  # fmt: skip
        return collected

    def _take(self, record: BatchRecord, result: LineResult, collected: Collected) -> None:
        """One result: its images moved to the spool under its job's name."""
        from nanoedit.run.spool import write_spool

        found = job_of_key(result.key)
        if found is None or found[0] not in record.jobs:
            self.events.warning(f"{record.name} gave a result for {result.key!r}, no job of it")
            return
        ident, number = found
        if result.error is not None:
            collected.errors[ident] = result.error
            return
        assert result.answer is not None
        entries = collected.entries.setdefault(ident, [])
        for extra, image in enumerate(result.answer.images):
            name = f"{ident}-{number}" + (f"-{extra + 1}" if extra else "")
            path = self.journal.spool / f"{name}.bin"
            if image.file is not None:
                self.parts.remove(image.file)
                image.file.replace(path)
            elif image.data is not None:
                write_spool(path, image.data)
            else:
                entries.append({"url": str(image.url)})
                continue
            entries.append({"spool": str(path)})
        if result.answer.usage:
            collected.usage[ident] = result.answer.usage

    def _journal_results(self, record: BatchRecord, collected: Collected) -> float:
        """Journal each job of the batch as its results say; the batch's cost."""
        total = 0.0
        for ident in record.jobs:
            entries = collected.entries.get(ident)
            error = collected.errors.get(ident)
            current = self.journal.get(ident)
            if current is None or current.state not in (PLANNED, SUBMITTED):
                continue  # read before a kill, and journaled then: not twice
            if entries:
                size = current.spec["options"]["size"]
                price = self.prices.price(current.backend, current.model, size)
                cost = None if price is None else price.amount * len(entries)
                total += cost or 0.0
                self.journal.answered(ident, entries, usage=collected.usage.get(ident), cost=cost)
            elif error is not None:
                refused = isinstance(error, RefusedError)
                self.journal.failed(ident, error.kind, error.message, refused=refused)
        return total


def not_done(journal: Journal, record: BatchRecord) -> list[int]:
    """The jobs of an ended batch that it gave no result for (still ``submitted``)."""
    found = []
    for ident in record.jobs:
        current = journal.get(ident)
        if current is not None and current.state == SUBMITTED:
            found.append(ident)
    return found


def ended_early(record: BatchRecord, missing: Sequence[int]) -> str:
    """What to say of a batch that ended without some of its jobs, and what to do."""
    how = {FAILED: "failed", CANCELLED: "was cancelled", EXPIRED: "expired"}.get(
        record.state, f"ended {record.state}"
    )
    why = f" ({record.error})" if record.error else ""
    shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
    return (
        f"{record.shown} {how}{why} before {len(missing)} of its jobs were done (jobs "
        f"{shown}); nanoedit resume --resend sends them again at the standard tier"
    )


def outcomes_after(
    journal: Journal,
    record: BatchRecord,
    planned: dict[int, PlannedJob],
    collected: Collected,
) -> tuple[list[PlannedJob], list[JobOutcome]]:
    """The jobs of a collected batch to save (answered, with their journaled results) and
    the outcomes of the others (failed, refused, or not done by a batch that ended early)."""
    from nanoedit.journal.recording import planned_from

    to_save: list[PlannedJob] = []
    ended: list[JobOutcome] = []
    for ident in record.jobs:
        current = journal.get(ident)
        entry = planned.get(ident)
        if current is None or entry is None:
            continue
        if current.state == ANSWERED:
            going, _ = planned_from(current)
            to_save.append(replace(going, job=entry.job))
            continue
        error = collected.errors.get(ident)
        left = None
        if error is None and current.state == SUBMITTED:
            error = ApiError(ended_early(record, [ident]))
            left = SUBMITTED
        elif error is None:
            kind = RefusedError if current.state == REFUSED else ApiError
            error = kind(current.error or f"job {ident} failed in {record.shown}")
        ended.append(
            JobOutcome(
                entry.job,
                entry.backend,
                entry.model,
                error=error,
                sent=True,
                journal_id=ident,
                left=left,
            )
        )
    return to_save, ended


def is_ended_early(record: BatchRecord) -> bool:
    """Whether Google ended the batch without results for every job."""
    return record.state in ENDED_EARLY
