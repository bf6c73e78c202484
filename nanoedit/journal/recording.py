"""How a run's jobs go into the journal and come back out of it.

A job is journaled with its *spec*, everything it takes to send it again from another process
(inputs as absolute paths or URLs, what is asked of the model, where its images go), its
*fingerprint*, a hash of what makes two jobs the same request (prompt, model, options and the
SHA-256 of each input), and its *identity*: the same request of the same inputs (by where
they are, not only by their bytes), saved under the same names, in the sandbox or not.
``--skip-existing`` finds earlier work by the identity: two inputs with the same bytes are
two jobs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanoedit.jobs import STANDARD_TIER, Dials, ImageSource, Job, MaskSpec, Options, PlannedJob
from nanoedit.journal.records import JobSpec, identity

if TYPE_CHECKING:
    from nanoedit.jobs import RunOptions
    from nanoedit.journal.records import JobRecord, NewJob
    from nanoedit.journal.store import Journal
    from nanoedit.settings.values import Settings


def fingerprint(job: Job, model: str, digest: Callable[[ImageSource], str | None]) -> str:
    """What makes two jobs the same paid request: the same prompt, model and options, and
    inputs with the same bytes (a URL by its text: its bytes are the provider's to read);
    for a ``--continue`` job, the same turn gone on from."""
    options = job.options
    inputs = [
        source.location if source.is_url else digest(source) or source.location
        for source in job.images
    ]
    what: dict[str, Any] = {
        "kind": job.kind,
        "prompt": options.prompt,
        "model": model,
        "ratio": options.ratio,
        "size": options.size,
        "count": options.count,
        "inputs": inputs,
    }
    if options.tier != STANDARD_TIER:
        # Another tier is another request, at another price. A standard job leaves it out, so
        # that the jobs journaled before there were tiers keep their fingerprints.
        what["tier"] = options.tier
    if options.transparent is not None:
        # Alpha by another method is another result (and matte is two paid requests); absent
        # when opaque, so that the fingerprints journaled before --transparent still match.
        what["transparent"] = options.transparent
    dials = options.dials.given()
    if dials:
        # Another seed, level or format is another request; without dials the fingerprint is
        # what it was before they existed, so older journals still match.
        what["dials"] = dials
    # No preset name: the prompt, ratio and the rest it set are here, as sent, and the same
    # request made with or without a preset is one paid request.
    if job.thread is not None:
        # The same image edited afresh and as the next turn of a thread are two requests (the
        # second sends the thread); the thread is all in the turn it goes on from.
        parent = job.thread.parent
        what["continues"] = {"job": parent.job, "result": parent.result}
    if job.mask is not None:
        # Another mask, region or seam is another image (and on gpt-image another request):
        # another job. The limit of --max-drift is not: it only judges the image.
        region = list(job.mask.region) if job.mask.region is not None else None
        mask = job.mask
        what["mask"] = {
            "sha256": mask.sha256, "region": region, "feather": mask.feather, "crop": mask.crop,
        }  # fmt: skip
    text = json.dumps(what, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def job_identity(
    job: Job, names: Sequence[str], fingerprint: str, out_dir: Path, sandbox: bool
) -> str:
    """The :func:`identity` of a job about to be planned, saving in ``out_dir``."""
    spec: JobSpec = {
        "inputs": [_source(source) for source in job.images],
        "output": _output(job),
        "out_dir": _absolute(out_dir),
    }
    return identity(fingerprint, spec, names, sandbox)


@dataclass(frozen=True)
class SavingOptions:
    """How a journaled job's images are saved, as its run was asked."""

    out_dir: Path
    metadata: bool
    sidecar: bool
    overwrite: bool


def _absolute(path: Path) -> str:
    return str(path if path.is_absolute() else Path.cwd() / path)


def _source(source: ImageSource) -> dict[str, str]:
    if source.is_url:
        return {"url": source.location}
    # A stream (stdin, a pipe) cannot be read again: it is kept as its label, and a resumed
    # job that still has to send it says so.
    if source.is_stdin:
        return {"stream": source.location}
    return {"path": _absolute(Path(source.location))}


def _output(job: Job) -> str | None:
    """A job's ``-o`` as the journal keeps it: absolute, but ``-`` (stdout) as it is."""
    if job.output is None or str(job.output) == "-":
        return None if job.output is None else str(job.output)
    return _absolute(job.output)


def spec_of(planned: PlannedJob, saving: SavingOptions) -> JobSpec:
    """Everything it takes to send ``planned`` again from another process."""
    job, options = planned.job, planned.job.options
    output = _output(job)
    spec: JobSpec = {
        "kind": job.kind,
        "inputs": [_source(source) for source in job.images],
        "labels": [source.label for source in job.images],
        "stem": job.stem,
        "output": output,
        "names": list(planned.names),
        "options": {
            "prompt": options.prompt,
            "ratio": options.ratio,
            "size": options.size,
            "model": options.model,
            "count": options.count,
            "response_format": options.response_format,
            "tier": options.tier,
            "preset": options.preset,
        },
        "out_dir": _absolute(saving.out_dir),
        "metadata": saving.metadata,
        "sidecar": saving.sidecar,
        "overwrite": saving.overwrite,
    }
    if options.transparent is not None:
        spec["options"]["transparent"] = options.transparent
    dials = options.dials.given()
    if dials:
        spec["options"]["dials"] = dials
    if job.thread is not None:
        # The turn it goes on from: its thread is found again from there (resume).
        parent = job.thread.parent
        spec["continues"] = {"job": parent.job, "result": parent.result}
    if job.mask is not None:
        mask = job.mask
        spec["mask"] = {
            "mask": mask.mask,
            "region": list(mask.region) if mask.region is not None else None,
            "feather": mask.feather,
            "max_drift": mask.max_drift,
            "sha256": mask.sha256,
            "original": mask.original,
            "crop": mask.crop,
        }
    return spec


def new_job(
    planned: PlannedJob,
    saving: SavingOptions,
    digest: Callable[[ImageSource], str | None],
    sandbox: bool,
) -> NewJob:
    """The journal row of a job about to run (``sandbox``: in the sandbox)."""
    from nanoedit.journal.records import NewJob

    request = fingerprint(planned.job, planned.model, digest)
    spec = spec_of(planned, saving)
    return NewJob(
        kind=planned.job.kind,
        backend=planned.backend,
        model=planned.model,
        prompt=planned.job.options.prompt,
        fingerprint=request,
        spec=spec,
        sandbox=sandbox,
        identity=identity(request, spec, planned.natural or planned.names, sandbox),
    )


def planned_from(record: JobRecord) -> tuple[PlannedJob, SavingOptions]:
    """A journaled job as the runner takes it, going on from where its last run left it."""
    spec = record.spec
    images = tuple(
        ImageSource(item.get("path") or item.get("stream") or item["url"], item.get("url"))
        for item in spec["inputs"]
    )
    asked = spec["options"]
    options = Options(
        prompt=asked["prompt"],
        ratio=asked["ratio"],
        size=asked["size"],
        model=asked["model"],
        count=asked["count"],
        response_format=asked["response_format"],
        # A row from before tiers asked for the standard one: resumed, it is sent as it was.
        tier=asked.get("tier", STANDARD_TIER),
        transparent=asked.get("transparent"),
        # An older row has no dials: none were sent.
        dials=Dials.from_given(asked.get("dials")),
        preset=asked.get("preset"),
    )
    output = spec["output"]
    job = Job(
        kind=spec["kind"],
        images=images,
        options=options,
        stem=spec["stem"],
        output=None if output is None else Path(output),
        mask=_mask_of(spec),
    )
    planned = PlannedJob(
        job,
        record.backend,
        record.model,
        tuple(spec["names"]),
        journal_id=record.id,
        tasks=record.tasks,
        results=record.results,
    )
    saving = SavingOptions(
        out_dir=Path(spec["out_dir"]),
        metadata=spec["metadata"],
        sidecar=spec["sidecar"],
        overwrite=spec["overwrite"],
    )
    return planned, saving


def _mask_of(spec: JobSpec) -> MaskSpec | None:
    """A journaled job's mask, as its run checked it."""
    kept = spec.get("mask")
    if kept is None:
        return None
    region = kept["region"]
    return MaskSpec(
        mask=kept["mask"],
        region=(region[0], region[1], region[2], region[3]) if region is not None else None,
        feather=kept["feather"],
        max_drift=kept["max_drift"],
        sha256=kept["sha256"],
        original=kept["original"],
        crop=kept["crop"],
    )


class JobRecorder:
    """One job's paid steps, written to the journal as they happen (the runner's
    :class:`~nanoedit.net.http.JobLog`): the first paid request marks it submitted, with the
    provenance it will carry; each task handle is added the moment the provider gives it."""

    def __init__(
        self,
        journal: Journal,
        job_id: int,
        provenance: Callable[[], Mapping[str, Any] | None] = lambda: None,
    ) -> None:
        self.journal = journal
        self.job_id = job_id
        self.provenance = provenance
        self.paid = False
        self.handles: list[str] = []

    def paid_request(self) -> None:
        """A paid request is about to go out: journal the job as submitted (once)."""
        if not self.paid:
            self.paid = True
            self.journal.submitted(self.job_id, self.provenance())

    def task(self, handle: str) -> None:
        """The provider gave a task handle: journal it at once."""
        self.handles.append(handle)
        self.journal.task(self.job_id, handle)


def journal_jobs(
    journal: Journal,
    planned: Sequence[Any],
    saving: SavingOptions,
    digest: Callable[[ImageSource], str | None],
    sandbox: bool = False,
    *,
    defer: bool = False,
    seen: int = 0,
    command: Sequence[str] = (),
) -> list[Any]:
    """Claim every job about to be sent in the journal, in one transaction (see
    :meth:`~nanoedit.journal.store.Journal.claim`; ``defer``: --skip-existing), and return the plan
    with each such job carrying its journal id, or, for a job another run has, the row this
    run waits for instead of sending it; refused and skipped jobs are left as they are."""
    from dataclasses import replace

    claiming = [
        (place, entry)
        for place, entry in enumerate(planned)
        if isinstance(entry, PlannedJob) and entry.elsewhere is None
    ]
    wanted: list[NewJob | int] = [
        new_job(entry, saving, digest, sandbox) if entry.journal_id is None else entry.journal_id
        for _, entry in claiming
    ]
    claims = journal.claim(wanted, defer=defer, seen=seen, command=command)
    result = list(planned)
    for (place, entry), claim in zip(claiming, claims, strict=True):
        if claim.id is not None:
            result[place] = replace(entry, journal_id=claim.id)
        else:
            result[place] = replace(
                entry, journal_id=None, tasks=(), results=(), elsewhere=claim.other
            )
    return result


def journal_run(
    journal: Journal,
    planned: Sequence[Any],
    settings: Settings,
    run: RunOptions,
    digest: Callable[[ImageSource], str | None],
    seen: int = 0,
) -> list[Any]:
    """Start the run in the journal and claim its jobs, in one transaction (see
    :func:`journal_jobs`); ``seen`` is the last row planning saw."""
    import sys

    saving = SavingOptions(
        out_dir=settings.out_dir,
        metadata=run.metadata,
        sidecar=run.sidecar,
        overwrite=run.overwrite,
    )
    return journal_jobs(
        journal, planned, saving, digest, settings.sandbox,
        defer=run.skip_existing, seen=seen, command=sys.argv,
    )  # fmt: skip


def open_journal(
    settings: Settings, warn: Callable[[str], None], *, start_new: bool = True
) -> Journal | None:
    """The job journal, unless history is off; one that cannot be opened is said, and the run
    goes on without it (a paid image still matters more than its history).

    A damaged one is moved aside (see :func:`~nanoedit.journal.damage.set_aside`), said, and a new
    one started, so that what the run pays for is journaled; unless not ``start_new`` (a
    command that came to read it: ``resume``), which fails then as a read of the history
    does."""
    if not settings.history:
        return None

    from nanoedit.startup import lasting_imports

    with lasting_imports():
        import sqlite3

        from nanoedit.journal.damage import is_damaged, set_aside
        from nanoedit.journal.store import DATABASE_NAME, Journal, data_dir

    folder = data_dir(os.environ)
    try:
        try:
            return Journal(folder)
        except sqlite3.DatabaseError as exc:
            if not is_damaged(exc):
                raise
            database = folder / DATABASE_NAME
            if not start_new:
                from nanoedit.journal.history import damaged_journal

                raise damaged_journal(database, exc) from None
            aside = set_aside(database)
            warn(
                f"the job journal {database} is damaged ({exc}); it was moved aside to "
                f"{aside} (kept, not deleted), and this run starts a new one"
            )
            return Journal(folder)
    except (OSError, sqlite3.Error) as exc:
        warn(
            f"the job journal in {folder} cannot be opened ({exc}), so this run is not kept "
            "for resume and history; set NANOEDIT_DATA_DIR to a writable folder, or turn it "
            "off with --no-history"
        )
        return None
