"""What a journal row is: the states a job moves through, the job as the journal holds it, the
values a run hands the journal, and the identity that tells one job from another. Kept apart
from the database, so that recording a run and reading the history share them without it."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

from nanoedit.jobs import Exchange, ResultEntry

PLANNED, SUBMITTED, ANSWERED, SAVED, FAILED, REFUSED, HELD = (
    "planned",
    "submitted",
    "answered",
    "saved",
    "failed",
    "refused",
    "held",
)
UNFINISHED = (PLANNED, SUBMITTED, ANSWERED)


class AskedSpec(TypedDict):
    """What a journaled job asks of the model."""

    prompt: str
    ratio: str
    size: str | None
    model: str | None
    count: int
    response_format: str
    tier: NotRequired[str]
    """The service tier asked for; absent in rows from before tiers, which were standard."""
    transparent: NotRequired[str]
    """``--transparent``'s method (native, key, matte); absent for an opaque result."""
    dials: NotRequired[dict[str, Any]]
    """The provider dials asked for (:meth:`~nanoedit.jobs.Dials.given`); absent: none."""
    preset: NotRequired[str | None]
    """The preset the prompt was put into (absent before presets): provenance only, as the
    prompt kept is the one sent."""


class Continues(TypedDict):
    """The turn a ``--continue`` job goes on from: a job of the journal and the number
    (1-based, in the order of its results) of the result it continues."""

    job: int
    result: int


class MaskRecord(TypedDict):
    """A masked edit's mask as the journal keeps it (see :class:`nanoedit.jobs.MaskSpec`):
    what a resumed job composites its results with, checked to be the same files."""

    mask: str | None
    region: list[int] | None
    feather: int
    max_drift: float | None
    sha256: str | None
    original: str | None
    crop: bool


class JobSpec(TypedDict, total=False):
    """Everything it takes to send a journaled job again from another process (see
    :func:`nanoedit.journal.recording.spec_of`). Older rows may lack what later versions added,
    so every key is read as possibly missing."""

    kind: Literal["edit", "generate", "fetch"]
    inputs: list[dict[str, str]]
    """Each input as ``{"path": ...}``, ``{"url": ...}`` or ``{"stream": label}``."""
    labels: list[str]
    stem: str
    output: str | None
    names: list[str]
    options: AskedSpec
    out_dir: str
    metadata: bool
    sidecar: bool
    overwrite: bool
    continues: Continues
    """With ``--continue``: the turn the job goes on from (absent for a job that starts
    afresh); its thread is read back from the journal by following these links."""
    mask: MaskRecord
    """With ``--mask`` or ``--region`` (absent otherwise)."""


@dataclass(frozen=True)
class JobRecord:
    """One job as the journal holds it."""

    id: int
    run: int
    created: float
    updated: float
    state: str
    kind: str
    backend: str
    model: str
    prompt: str
    fingerprint: str
    # What it takes to send the job again (see :mod:`nanoedit.journal.resumption`).
    spec: JobSpec
    provenance: dict[str, Any] | None
    # The asynchronous API's task handles, in the order they were submitted.
    tasks: tuple[str, ...]
    # One entry per result: {"url": ...} or {"spool": path}, with "path" and "sha256" once saved.
    results: tuple[ResultEntry, ...]
    error_kind: str | None
    error: str | None
    images: int
    cost: float | None
    usage: dict[str, Any] | None
    # Sent to the built-in sandbox: its images are placeholders, and it cost nothing.
    sandbox: bool = False
    # What makes it this job and no other (see :func:`nanoedit.journal.recording.identity`).
    identity: str | None = None
    # The run that has it under way now (None: the run that made it).
    owner: int | None = None
    # What a conversing backend kept of each request that made images (none before schema 3).
    exchanges: tuple[Exchange, ...] = ()

    @property
    def owner_run(self) -> int:
        """The run whose process has the job: the last to take it up."""
        return self.run if self.owner is None else self.owner

    @property
    def unfinished(self) -> bool:
        """Whether the job has not ended: it may hold a paid result not yet saved."""
        return self.state in UNFINISHED

    @property
    def may_have_been_charged(self) -> bool:
        """A request went out and nothing of its answer is known: sending it again may pay
        twice, so it is only sent again when the user says so."""
        return self.state == SUBMITTED and not self.tasks and not self.results

    @property
    def saved_paths(self) -> list[Path]:
        """Where its results were saved."""
        return [Path(entry["path"]) for entry in self.results if entry.get("path")]


COLUMNS = (
    "id, run, created, updated, state, kind, backend, model, prompt, fingerprint, spec, "
    "provenance, tasks, results, error_kind, error, images, cost, usage, sandbox, identity, owner, "
    "exchanges"
)


def record_of_row(row: Sequence[Any]) -> JobRecord:
    (ident, run, created, updated, state, kind, backend, model, prompt, fingerprint, spec) = row[
        :11
    ]
    provenance, tasks, results, error_kind, error, images, cost, usage = row[11:19]
    sandbox, identity, owner, exchanges = row[19:]
    return JobRecord(
        id=ident,
        run=run,
        created=created,
        updated=updated,
        state=state,
        kind=kind,
        backend=backend,
        model=model,
        prompt=prompt,
        fingerprint=fingerprint,
        spec=json.loads(spec),
        provenance=json.loads(provenance) if provenance else None,
        tasks=tuple(json.loads(tasks)),
        results=tuple(json.loads(results)),
        error_kind=error_kind,
        error=error,
        images=images,
        cost=cost,
        usage=json.loads(usage) if usage else None,
        sandbox=bool(sandbox),
        identity=identity,
        owner=owner,
        exchanges=tuple(json.loads(exchanges)) if exchanges else (),
    )


@dataclass(frozen=True)
class CostRow:
    """The jobs of one day, backend and model: how many, their images, and what they cost
    (``cost``: the sum of the known costs, None when none is known)."""

    day: str
    backend: str
    model: str
    jobs: int
    images: int
    cost: float | None
    unpriced: int


@dataclass(frozen=True)
class NewJob:
    """A job about to be journaled as planned."""

    kind: str
    backend: str
    model: str
    prompt: str
    fingerprint: str
    spec: JobSpec
    sandbox: bool = False
    identity: str | None = None


@dataclass(frozen=True)
class Claim:
    """A job as a run claimed it: ``id``, the row it is this run's to send under; or
    ``other``, the row of the same job that another run has, which this run must not send."""

    id: int | None = None
    other: int | None = None


def identity(fingerprint: str, spec: JobSpec, names: Sequence[str], sandbox: bool) -> str:
    """What makes a job this job and no other: its request (``fingerprint``), its inputs as
    ``spec`` names them (absolute paths, URLs), where it saves (``-o``, or the folder and the
    ``names`` it is given there before any file or earlier job takes one), and whether it
    goes to the sandbox, whose placeholders are never a real job's results."""
    output = spec.get("output")
    # `-d ../here/out` and `-d out` are one folder: the paths are compared as normalized.
    inputs = [
        {kind: os.path.normpath(where) if kind == "path" else where}
        for item in spec["inputs"]
        for kind, where in item.items()
    ]
    what = {
        "request": fingerprint,
        "inputs": inputs,
        "output": output if output in (None, "-") else os.path.normpath(output),
        "out_dir": None if output is not None else os.path.normpath(spec["out_dir"]),
        "names": [] if output is not None else list(names),
        "sandbox": sandbox,
    }
    text = json.dumps(what, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
