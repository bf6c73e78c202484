"""One job's walk: prepare its inputs, send it, journal its answer, save each image through
the run's writer, check what came, and say how it ended. Its own module, as the runner only
schedules jobs: every job walks this same way, whichever thread runs it.
"""

from __future__ import annotations

import glob
import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from nanoedit import __version__
from nanoedit.backends.base import (
    PreparedJob,
    PreparedTurn,
    Takes,
    backend_class,
    carries_thread,
)
from nanoedit.catalog.pixels import expected_size
from nanoedit.clock import Clock
from nanoedit.errors import ApiError, InputError, NanoeditError, NetworkError, RefusedError
from nanoedit.jobs import (
    Exchange,
    ImageSource,
    Job,
    JobOutcome,
    PlannedJob,
    Progress,
    ResultEntry,
    RunOptions,
    SavedImage,
)
from nanoedit.net.http import NO_LOG, Deadline, Interrupted, JobHttp, RetryPolicy
from nanoedit.net.inputs import InputImage, RunInputs
from nanoedit.output.names import is_stream, shown
from nanoedit.output.parts import PartFile, PartFiles, sync_file
from nanoedit.run.matte import Matte, black_unanswered, discard_spools, matte_left
from nanoedit.run.routing import make_backend
from nanoedit.run.spool import write_spool
from nanoedit.run.writer import ResultWriter
from nanoedit.settings.values import Settings

if TYPE_CHECKING:
    import httpx

    from nanoedit.backends.base import Answer, BackendBase, ResultImage
    from nanoedit.journal.recording import JobRecorder
    from nanoedit.journal.store import Journal
    from nanoedit.output.provenance import Provenance
    from nanoedit.run.events import Events


class JobPipeline:
    """What every job of a run walks through, one job per call of :meth:`run` (from any of
    the runner's threads): it holds what the jobs share, the client, the journal, the writer
    and the run's part files, and nothing of any one job.

    ``cancel`` is set by Ctrl-C: a job stops where it stands. ``draining`` is set by a first
    Ctrl-C: a job not yet paid for stops before its first paid request.
    """

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client,
        events: Events,
        options: RunOptions,
        inputs: RunInputs,
        *,
        clock: Clock,
        journal: Journal | None,
        parts: PartFiles,
        cancel: threading.Event,
        draining: threading.Event,
        stdout: BinaryIO | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.events = events
        self.options = options
        self.inputs = inputs
        self.clock = clock
        self.journal = journal
        self.parts = parts
        self.cancel = cancel
        self.draining = draining
        self.writer = ResultWriter(
            settings.out_dir,
            overwrite=options.overwrite,
            metadata=options.metadata,
            sidecar=options.sidecar,
            stdout=stdout,
            warn=events.warning,
            parts=parts,
            links_outlive_run=not settings.sandbox,
        )
        self.policy = RetryPolicy(
            retries=settings.retries,
            backoff=settings.backoff,
            retry_unsafe=options.retry_unsafe,
        )

    def run(self, planned: PlannedJob) -> JobOutcome | None:
        """Send one planned job and save its images as soon as they arrive; None when the run
        was interrupted meanwhile. A job an earlier run took part of the way goes on from
        there: its tasks are collected, its results saved, nothing is paid for again."""
        job = planned.job
        if self.cancel.is_set():
            return None
        started = self.clock.monotonic()
        self.events.job_started(job)

        def progress(phase: str, done: int | None = None, total: int | None = None) -> None:
            self.events.job_phase(job, phase, done, total)

        def notify(text: str) -> None:
            self.events.warning(f"{job.label}: {text}")

        recorder = self._recorder(planned)
        http = JobHttp(
            self.client,
            self.policy,
            Deadline(self.settings.timeout, self.clock.monotonic),
            notify=notify,
            cancel=self.cancel,
            proxy=self.settings.proxy,
            clock=self.clock,
            log=recorder or NO_LOG,
            spool=lambda: self._spool(planned),
            stop_unpaid=self.draining,
            keep_tasks=recorder is not None,
        )
        outputs: list[SavedImage] = []
        warnings: list[str] = []
        text = ""
        error: NanoeditError | None = None
        # The journal's entry of each result: its URL or spool file, then where it was saved.
        entries: list[ResultEntry] = [entry.copy() for entry in planned.results]
        answered = bool(entries)
        usage = None
        cost = None
        try:
            backend = make_backend(planned.backend, self.settings, http)
            provenance: Provenance | None
            if planned.results or planned.tasks:
                provenance = self._journaled_provenance(planned)
                self._placed_earlier(planned, entries)
                answer = self._go_on(backend, planned, entries, progress)
            else:
                progress("preparing inputs")
                prepared = self.prepare(job, planned.backend, planned.model, http, progress)
                # Worked out once per job: it hashes every input, and each image carries it.
                # Before sending, so the journal holds it for a job finished by a later run.
                wanted = self.options.metadata or self.options.sidecar or recorder is not None
                provenance = (
                    _provenance(planned, prepared, self.settings.sandbox) if wanted else None
                )
                if recorder is not None and provenance is not None:
                    recorder.provenance = provenance.to_json
                answer = backend.run(prepared, progress)
            results = answer.images
            text, usage = answer.text, answer.usage
            cost = self._cost(planned, len(entries) or len(results), usage)
            if not answered:
                entries, results = self._answered(
                    planned, results, http, usage, cost, answer.exchanges
                )
                answered = recorder is not None
            earlier = sum(1 for entry in entries if "path" in entry)
            warnings += self._check_count(job, len(results) + earlier)
            if not (self.options.metadata or self.options.sidecar):
                provenance = None
            pending = [n for n, entry in enumerate(entries) if "path" not in entry]
            if job.options.transparent == "matte":
                results = Matte(self, planned, backend, http, progress).results(
                    entries, pending, results
                )
            outputs += self._earlier_outputs(entries)
            for place, result in zip(pending, results, strict=True):
                saved = self.writer.save(
                    job, planned.names, provenance, result, place + 1, len(entries), http,
                    progress, self._placing(planned, entries, place),
                )  # fmt: skip
                outputs.append(saved)
                self._result_saved(planned, entries, place, saved)
                if saved.drift is None:  # a masked edit is the input's size, whatever came
                    warnings += self._check_dimensions(planned, saved)
                if self.options.sidecar and provenance is not None:
                    self.writer.write_sidecar(
                        provenance, saved, overwrite=job.output is not None, mask=job.mask
                    )
            drifted = [saved for saved in outputs if saved.drift is not None and saved.drift.over]
            if drifted:
                from nanoedit.run.masks import drift_error

                raise drift_error(job, drifted[0])  # each kept under its -drift name
            if answer.error is not None:
                raise answer.error  # what stopped the job, once the images it made are saved
        except NanoeditError as exc:
            error = exc
        except Interrupted:
            return None
        finally:
            # Images streamed out of an answer but never saved (the job failed after them).
            http.discard_spooled()
        if self.cancel.is_set() and error is not None:
            return None  # the failure is the interruption's doing: say nothing of it
        left = None
        if planned.journal_id is not None and self.journal is not None:
            error, left = self._journal_end(planned, recorder, http, entries, answered, error)
        handles = (*planned.tasks, *(recorder.handles if recorder is not None else ()))
        task_id = backend_class(planned.backend).task_id
        return JobOutcome(
            job,
            planned.backend,
            planned.model,
            outputs=tuple(outputs),
            warnings=tuple(warnings),
            error=error,
            text=text,
            seconds=self.clock.monotonic() - started,
            sent=http.sent or bool(planned.tasks or planned.results),
            journal_id=planned.journal_id,
            usage=usage,
            cost=cost,
            left=left,
            tasks=tuple(task_id(handle) for handle in handles),
        )

    def _recorder(self, planned: PlannedJob) -> JobRecorder | None:
        if self.journal is None or planned.journal_id is None:
            return None
        from nanoedit.journal.recording import JobRecorder

        return JobRecorder(self.journal, planned.journal_id)

    def _journaled_provenance(self, planned: PlannedJob) -> Provenance | None:
        """The provenance an earlier run of the job wrote to the journal before sending it."""
        assert self.journal is not None and planned.journal_id is not None
        record = self.journal.get(planned.journal_id)
        if record is None or record.provenance is None:
            return None
        from nanoedit.output.provenance import from_json

        return from_json(record.provenance)

    def _go_on(
        self,
        backend: BackendBase,
        planned: PlannedJob,
        entries: list[ResultEntry],
        progress: Progress,
    ) -> Answer:
        """The answer of a job an earlier run submitted: its results as journaled, or what its
        tasks give when collected now."""
        from nanoedit.backends.base import Answer, ResultImage

        if entries:
            images = []
            for entry in entries:
                if "path" in entry:
                    continue
                if "url" in entry:
                    images.append(ResultImage(url=entry["url"]))
                elif entry.get("lost"):
                    raise InputError(
                        f"a result of {planned.job.label} could be neither saved nor kept, so "
                        "it is lost; the job must be sent again"
                    )
                else:
                    images.append(ResultImage(file=_spooled(Path(entry["spool"]))))
            return Answer(images)
        progress("waiting for the model, task submitted earlier")
        return backend.collect(list(planned.tasks), progress)

    def _spool(self, planned: PlannedJob) -> PartFile:
        """Where a backend streams an image out of its answer: the journal's spool folder when
        the job is journaled (the file outlives a failure to save it), else beside the
        image's destination."""
        if self.journal is None or planned.journal_id is None:
            return self.writer.spool(planned.job)
        from nanoedit.journal.store import PRIVATE_FILE

        # For the journal's owner only, as the journal is.
        return PartFile(
            self.journal.spool, f"an image of {planned.job.label}", self.parts, mode=PRIVATE_FILE
        )

    def _answered(
        self,
        planned: PlannedJob,
        results: Sequence[ResultImage],
        http: JobHttp,
        usage: dict[str, Any] | None,
        cost: float | None,
        exchanges: Sequence[Exchange] = (),
    ) -> tuple[list[ResultEntry], list[ResultImage]]:
        """Journal the job's results before saving any: a URL as it is, bytes in a spool file
        of the data folder (synced), so that a failure to save loses nothing paid for; with
        them, the ``usage`` the provider reported, the job's ``cost`` and what a conversing
        backend kept of its requests (``exchanges``, for a later ``--continue`` turn).

        Every spool file is named after the job (``ID-N.bin``) before the journal is told: a
        run killed in between leaves files that resume takes up. Returns the journal's
        entries and the results as they now are (a streamed one at its new name)."""
        entries: list[ResultEntry] = []
        if self.journal is None or planned.journal_id is None:
            return [{} for _ in results], list(results)
        kept: list[ResultImage] = []
        for number, result in enumerate(results, start=1):
            kept.append(result)
            path = self.journal.spool / f"{planned.journal_id}-{number}.bin"
            if result.url is not None:
                entries.append({"url": result.url})
                continue
            if result.file is not None:
                # Streamed into the spool already: from now on the journal owns it, and neither
                # a failed save nor Ctrl-C removes it.
                sync_file(result.file, result.file.parent, f"an image of {planned.job.label}")
                self.parts.remove(result.file)
                http.spooled = [part for part in http.spooled if part.path != result.file]
                result.file.replace(path)
                kept[-1] = replace(result, file=path)
                entries.append({"spool": str(path)})
                continue
            assert result.data is not None
            try:
                write_spool(path, result.data)
            except OSError as exc:
                self.events.warning(
                    f"{planned.job.label}: could not keep a copy of the result in "
                    f"{self.journal.spool} ({exc.strerror}); saving it directly"
                )
                entries.append({"lost": True})
                continue
            # Saved from the spool file (linked into place), not written a second time.
            kept[-1] = replace(result, data=None, file=path)
            entries.append({"spool": str(path)})
        self.journal.answered(
            planned.journal_id, entries, usage=usage, cost=cost, exchanges=exchanges
        )
        return entries, kept

    def _cost(self, planned: PlannedJob, images: int, usage: dict[str, Any] | None) -> float | None:
        """What a job that made ``images`` images cost: the provider's own figure, else the
        price table's (the user's ``pricing.*`` settings first); None when unknown. The
        journal and the run's report both take this one figure."""
        from nanoedit.catalog.pricing import Prices, served_tier

        if self.settings.sandbox:
            return 0.0  # the sandbox charges nothing, whatever a real provider would
        if planned.results and self.journal is not None and planned.journal_id is not None:
            # Answered earlier (a batch's results, at its tier's price): the journal's figure.
            record = self.journal.get(planned.journal_id)
            if record is not None and record.cost is not None:
                return record.cost
        prices = Prices(self.settings.prices, self.settings.catalog, self.options.tier)
        options = planned.job.options
        search = options.dials.search  # its queries are paid beside the images
        if options.renders > 1:
            # Each image was paid for twice (matte): the table's price of both requests, as
            # the estimate counted them (the first answer's own figure covers only one), at
            # the tier the first answer says served it, else the one asked.
            return prices.estimate(
                planned.backend,
                planned.model,
                options.size,
                images * 2,
                served_tier(usage) or options.tier,
                search=search,
            )
        return prices.job_cost(
            planned.backend, planned.model, options.size, images, usage, options.tier, search=search
        )

    def _earlier_outputs(self, entries: Sequence[ResultEntry]) -> list[SavedImage]:
        """The images an earlier run of the job saved (and still on disk)."""
        from nanoedit.output.images import existing_image

        found = []
        for entry in entries:
            if "path" in entry and not is_stream(Path(entry["path"])):
                image = existing_image(Path(entry["path"]))
                if image is not None:
                    found.append(image)
        return found

    def _placing(
        self, planned: PlannedJob, entries: list[ResultEntry], place: int
    ) -> Callable[[Path], None] | None:
        """What journals the SHA-256 of a result's finished file just before it is put in
        place: a kill between placing it and journaling its path then leaves the journal
        enough to find it (see :meth:`_placed_earlier`) instead of saving it a second time."""
        journal, ident = self.journal, planned.journal_id
        if journal is None or ident is None:
            return None

        def placing(part: Path) -> None:
            from nanoedit.output.provenance import sha256_file

            entries[place]["placing"] = sha256_file(part)
            journal.result_saved(ident, entries)

        return placing

    def _placed_earlier(self, planned: PlannedJob, entries: list[ResultEntry]) -> None:
        """Results an earlier run put in place but was killed before journaling: found by
        their SHA-256 under their reserved name (or ``-o``), and journaled as saved."""
        from nanoedit.output.provenance import sha256_file

        assert self.journal is not None and planned.journal_id is not None
        job = planned.job
        for place, entry in enumerate(entries):
            digest = entry.get("placing")
            if digest is None or "path" in entry:
                continue
            if job.output is not None:
                candidates = [] if is_stream(job.output) else [job.output]
            else:
                stem = planned.names[place] if place < len(planned.names) else job.stem
                folder = self.writer.staging_folder(job)
                candidates = sorted(folder.glob(f"{glob.escape(stem)}*"))
            found = next(
                (path for path in candidates if path.is_file() and sha256_file(path) == digest),
                None,
            )
            if found is None:
                continue
            spool = entry.pop("spool", None)
            del entry["placing"]
            entry["path"], entry["sha256"] = str(found), digest
            self.journal.result_saved(planned.journal_id, entries)
            if spool is not None:
                Path(spool).unlink(missing_ok=True)

    def _result_saved(
        self, planned: PlannedJob, entries: list[ResultEntry], place: int, saved: SavedImage
    ) -> None:
        if self.journal is None or planned.journal_id is None:
            return
        entry = entries[place]
        discard_spools(entry)
        placing = entry.pop("placing", None)
        spool = entry.pop("spool", None)
        entry["path"] = str(saved.path)
        if placing is not None and planned.job.output is None:
            entry["sha256"] = placing  # linked into place as it was: the same bytes
        elif not is_stream(saved.path):  # stdout, a FIFO: its bytes cannot be read back
            from nanoedit.output.provenance import sha256_file

            entry["sha256"] = sha256_file(saved.path)
        self.journal.result_saved(planned.journal_id, entries)
        if spool is not None:
            Path(spool).unlink(missing_ok=True)

    def _journal_end(
        self,
        planned: PlannedJob,
        recorder: JobRecorder | None,
        http: JobHttp,
        entries: list[ResultEntry],
        answered: bool,
        error: NanoeditError | None,
    ) -> tuple[NanoeditError | None, str | None]:
        """Journal how the job ended, and say in its error how what was paid for can still be
        had: a result not saved, a task still running, a request that may have been charged.
        Returns the error and, for a job left for ``resume``, the state the journal keeps."""
        assert self.journal is not None and planned.journal_id is not None
        ident = planned.journal_id
        if error is None:
            self.journal.saved(ident, entries)
            return None, None
        unsaved = [entry for entry in entries if "path" not in entry and not entry.get("lost")]
        tasks = bool(planned.tasks) or bool(recorder is not None and recorder.handles)
        unanswered = bool(recorder is not None and recorder.paid and http.unanswered)
        # A result that came and could not be saved (its download failed, the disk is full)
        # is paid for: it stays answered, for resume to save. Not one that can never be
        # saved (an expired link, an image over the pixel limit).
        keep = isinstance(error, InputError | NetworkError) or (
            isinstance(error, ApiError) and error.transient
        )
        if answered and keep and black_unanswered(unsaved):
            return matte_left(error, ident), "answered"
        linked = any("url" in entry for entry in unsaved)
        if answered and unsaved and keep and self.settings.sandbox and linked:
            # The in-process sandbox's links ended with this process: resume asks it again.
            error.message += f"; nanoedit resume {ident} makes it again in the sandbox"
            return error, "answered"
        if answered and unsaved and keep:
            # Named, so that it can be had even without nanoedit (a URL expires, though).
            kept = ", ".join(str(entry.get("url") or entry.get("spool")) for entry in unsaved)
            what, it = ("result is", "it") if len(unsaved) == 1 else ("results are", "them")
            error.message += (
                f"; the {what} kept in the history ({kept}): nanoedit resume {ident} saves {it}"
            )
            return error, "answered"
        if not answered and tasks and (isinstance(error, NetworkError) or error.tasks_left):
            error.message += f"; nanoedit resume {ident} collects it when it has finished"
            return error, "submitted"
        if not answered and unanswered and not tasks and isinstance(error, NetworkError):
            error.message += (
                f"; it is kept in the history as job {ident}: nanoedit resume {ident} "
                "--retry-unsafe sends it again"
            )
            return error, "submitted"
        self.journal.failed(
            ident, error.kind, error.message, refused=isinstance(error, RefusedError)
        )
        return error, None

    def prepare(
        self, job: Job, backend: str, model: str, http: JobHttp, progress: Progress
    ) -> PreparedJob:
        """Read the local images and, for a backend that needs bytes, download the URLs; for
        one that takes URLs only, have the uploader (``upload.via``) put local files online."""
        takes = backend_class(backend).takes
        if job.mask is not None and job.mask.crop and takes is Takes.URLS:
            from nanoedit.run.masks import crop_needs_bytes

            raise crop_needs_bytes(backend)
        if takes is Takes.URLS:
            from nanoedit.net.uploads import host_inputs

            urls, hosted = host_inputs(job, self.settings.upload, http, progress)
            for item in hosted:
                self.inputs.warn_notes(item.image)
            self._converted(item.image for item in hosted)
            return PreparedJob(job=job, model=model, urls=urls, hosted=hosted)
        # A provider that fetches URLs itself is sent them as they are.
        fetched = takes.fetches
        urls = tuple(source.location for source in job.images if fetched and source.is_url)
        uploads = tuple(
            self.inputs.load(source, http)
            for source in job.images
            if not (fetched and source.is_url)
        )
        for upload in uploads:
            self.inputs.warn_notes(upload)  # once per image, however many jobs send it
        self._converted(uploads)
        if job.mask is not None and job.mask.crop:
            from nanoedit.run.masks import with_crop

            uploads = with_crop(job.mask, uploads)
        history = self._history(job, backend, http) if carries_thread(job, backend) else ()
        return PreparedJob(job=job, model=model, uploads=uploads, urls=urls, history=history)

    def _history(self, job: Job, backend: str, http: JobHttp) -> tuple[PreparedTurn, ...]:
        """The earlier turns of a ``--continue`` job's thread with their images read: what the
        user sent each turn (a URL fetched, as any input is) and the result it went on from."""
        assert job.thread is not None
        turns = []
        for turn in job.thread.turns:
            inputs = tuple(self.inputs.load(source, http) for source in turn.inputs)
            image = self.inputs.load(ImageSource(str(turn.image)), http)
            self._converted((*inputs, image))
            turns.append(PreparedTurn(turn=turn, inputs=inputs, image=image))
        return tuple(turns)

    def _converted(self, images: Iterable[InputImage]) -> None:
        for upload in images:
            if upload.converted_from:
                self.events.warning(
                    f"{upload.source.label} is {upload.converted_from.upper()}, which the "
                    "API does not take; sending it converted losslessly to PNG"
                )

    def _check_count(self, job: Job, got: int) -> list[str]:
        """Warn when the provider sent fewer images than the job asked for (a relay that
        drops some, a task that came back empty): the job keeps what came."""
        asked = job.options.count
        if got >= asked:
            return []
        text = f"{job.label}: asked for {asked} images, {got} came back; the job keeps those {got}"
        self.events.warning(text)
        return [text]

    def _check_dimensions(self, planned: PlannedJob, saved: SavedImage) -> list[str]:
        """Warn when the provider ignored the ratio or size that was asked for."""
        options, model = planned.job.options, planned.model
        resolved = self.settings.catalog.resolve_quietly(planned.backend, model)
        expected = expected_size(resolved, options.ratio, options.size)
        if expected is None or expected == (saved.width, saved.height):
            return []
        asked = " at ".join(
            part for part in (options.ratio, options.size) if part and part != "auto"
        )
        text = (
            f"{shown(saved.path)}: asked for {asked} ({expected[0]}x{expected[1]} on {model}) "
            f"but the image is {saved.width}x{saved.height}; the provider ignored the "
            f"{_what_was_ignored(expected, (saved.width, saved.height))}"
        )
        self.events.warning(text)
        return [text]


def _provenance(planned: PlannedJob, prepared: PreparedJob, sandbox: bool) -> Provenance:
    from nanoedit.output.provenance import InputRecord, Provenance

    options = planned.job.options
    # Sent as URLs: a local file an uploader put online has the hash of its bytes and its URL;
    # a URL given as it is was never read here.
    hosted = {item.url: item.image for item in prepared.hosted}
    inputs = tuple(
        InputRecord(item.source.label, hashlib.sha256(item.data).hexdigest())
        if not isinstance(item, str)
        else InputRecord(
            hosted[item].source.label, hashlib.sha256(hosted[item].data).hexdigest(), item
        )
        if item in hosted
        else InputRecord(item, "")
        for item in prepared.inputs()
    )
    return Provenance(
        prompt=options.prompt,
        model=planned.model,
        backend=planned.backend,
        ratio=options.ratio,
        size=options.size,
        inputs=inputs,
        version=__version__,
        sandbox=sandbox,
        continues=planned.job.continues,
        tier=options.tier,
        dials=options.dials.given(),
        preset=options.preset,
    )


def _spooled(path: Path) -> Path:
    """A result kept in the spool, checked to be there still."""
    if not path.is_file():
        raise InputError(
            f"the result kept at {path} is gone (saved just before a crash, or removed); look "
            "for it in the output folder, or send the job again"
        )
    return path


def _what_was_ignored(expected: tuple[int, int], got: tuple[int, int]) -> str:
    wanted, actual = expected[0] / expected[1], got[0] / got[1]
    # Within 2%: the sides of one ratio differ by rounding from one model to another.
    return "size" if abs(wanted - actual) <= 0.02 * wanted else "ratio"
