"""The journal's batches: each ``--tier batch`` submission Google holds for a run's jobs.

A batch is one paid submission for many jobs, so its steps are committed as they happen,
each before the next starts, and in its own table beside the jobs (created in place in a
journal of any earlier version: ``CREATE TABLE IF NOT EXISTS``, no job row changes):

``building``    its requests are being written and its input images uploaded (free steps:
                a killed run's resume does them again, reusing the uploads already made);
``submitting``  the create request is about to go out: a run killed now may have created the
                batch, so resume first looks for it by its display name (which carries the
                batch's ``token``) before it submits again;
``pending``, ``running``  Google has it (its name is journaled the moment the create returns);
``cancelling``  ``nanoedit batches --cancel`` asked Google to cancel it;
``succeeded``, ``failed``, ``cancelled``, ``expired``  how Google ended it (journaled once its
                results are read: until then a batch stays open, for resume to read them);
``collected``   its results were read into its jobs (each then saved as any job is).

A job of a batch is ``submitted`` in the jobs table until its batch's results are read.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nanoedit.journal.store import Journal

BUILDING, SUBMITTING, PENDING, RUNNING = "building", "submitting", "pending", "running"
SUCCEEDED, FAILED, CANCELLED, EXPIRED = "succeeded", "failed", "cancelled", "expired"
COLLECTED, CANCELLING = "collected", "cancelling"
# What resume takes up: a batch not yet submitted, one Google still runs, one whose results
# were not read yet (a kill between its end and the reading).
OPEN = (BUILDING, SUBMITTING, PENDING, RUNNING, CANCELLING, SUCCEEDED)
# How Google ended a batch without results for every job: its jobs not done can be resent.
ENDED_EARLY = (FAILED, CANCELLED, EXPIRED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    token TEXT PRIMARY KEY,
    name TEXT,
    run INTEGER,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    jobs TEXT NOT NULL,
    uploads TEXT NOT NULL DEFAULT '{}',
    input_file TEXT,
    results_file TEXT,
    requests INTEGER NOT NULL DEFAULT 0,
    estimate REAL,
    cost REAL,
    done INTEGER NOT NULL DEFAULT 0,
    error TEXT
)
"""
_COLUMNS = (
    "token, name, run, backend, model, state, created, updated, jobs, uploads, input_file, "
    "results_file, requests, estimate, cost, done, error"
)


@dataclass(frozen=True)
class BatchRecord:
    """One batch as the journal holds it: ``token`` is nanoedit's own id (in the display
    name sent with it), ``name`` Google's (``batches/...``, None until the create returned),
    ``jobs`` the journal ids of its jobs (each request's key starts with its job's id),
    ``uploads`` each input image's URI by SHA-256 (uploaded once per batch)."""

    token: str
    name: str | None
    run: int | None
    backend: str
    model: str
    state: str
    created: float
    updated: float
    jobs: tuple[int, ...]
    uploads: Mapping[str, str] = field(default_factory=dict)
    input_file: str | None = None
    results_file: str | None = None
    requests: int = 0
    estimate: float | None = None
    cost: float | None = None
    done: int = 0
    error: str | None = None

    @property
    def display_name(self) -> str:
        """What the batch is created with and found by again after a kill."""
        return display_name(self.token)

    @property
    def shown(self) -> str:
        """How the batch is named to a person: Google's name once it has one."""
        return self.name or f"{self.display_name} (not submitted)"

    def to_json(self) -> dict[str, Any]:
        """The batch as ``nanoedit batches --json`` prints it."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "backend": self.backend,
            "model": self.model,
            "state": self.state,
            "created": self.created,
            "jobs": list(self.jobs),
            "requests": self.requests,
            "done": self.done,
            "estimate": self.estimate,
            "cost": self.cost,
            "error": self.error,
        }


DISPLAY_PREFIX = "nanoedit-"


def display_name(token: str) -> str:
    """A batch's display name: ``nanoedit-`` and its token."""
    return f"{DISPLAY_PREFIX}{token}"


def _record(row: Sequence[Any]) -> BatchRecord:
    return BatchRecord(
        token=row[0],
        name=row[1],
        run=row[2],
        backend=row[3],
        model=row[4],
        state=row[5],
        created=row[6],
        updated=row[7],
        jobs=tuple(json.loads(row[8])),
        uploads=json.loads(row[9] or "{}"),
        input_file=row[10],
        results_file=row[11],
        requests=row[12],
        estimate=row[13],
        cost=row[14],
        done=row[15],
        error=row[16],
    )


class Batches:
    """The batches of a journal, read and written through its connection (one short
    transaction each, as every journal write is)."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        with journal._write() as db:
            db.execute(_SCHEMA)

    def _now(self) -> float:
        clock = getattr(self.journal, "_time", time.time)
        return float(clock())

    def _query(self, sql: str, parameters: Sequence[Any] = ()) -> list[BatchRecord]:
        with self.journal._lock:
            rows = self.journal._db.execute(sql, parameters).fetchall()
        return [_record(row) for row in rows]

    def add(
        self,
        token: str,
        backend: str,
        model: str,
        jobs: Sequence[int],
        *,
        requests: int,
        estimate: float | None,
    ) -> BatchRecord:
        """A batch about to be built, for ``jobs`` (their ids), with its estimated cost."""
        now = self._now()
        with self.journal._write() as db:
            db.execute(
                "INSERT INTO batches(token, run, backend, model, state, created, updated, jobs, "
                "requests, estimate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token, self.journal.run_id, backend, model, BUILDING, now, now,
                    json.dumps(list(jobs)), requests, estimate,
                ),
            )  # fmt: skip
        found = self.get(token)
        assert found is not None
        return found

    def update(self, token: str, **columns: Any) -> BatchRecord:
        """Change a batch's columns (``uploads`` given as a mapping); returns it as it is now."""
        if "uploads" in columns:
            columns["uploads"] = json.dumps(dict(columns["uploads"]))
        names = ", ".join(f"{name} = ?" for name in columns)
        with self.journal._write() as db:
            db.execute(
                f"UPDATE batches SET updated = ?, {names} WHERE token = ?",
                (self._now(), *columns.values(), token),
            )
        found = self.get(token)
        assert found is not None, f"batch {token} is in the journal"
        return found

    def get(self, token: str) -> BatchRecord | None:
        """The batch of nanoedit's ``token``."""
        found = self._query(f"SELECT {_COLUMNS} FROM batches WHERE token = ?", (token,))
        return found[0] if found else None

    def named(self, name: str) -> BatchRecord | None:
        """The batch Google calls ``name`` (``batches/...``; ``...`` alone is taken too), or
        the one whose display name or token is ``name``."""
        full = name if name.startswith("batches/") else f"batches/{name}"
        token = name.removeprefix(DISPLAY_PREFIX)
        found = self._query(
            f"SELECT {_COLUMNS} FROM batches WHERE name = ? OR token = ?", (full, token)
        )
        return found[0] if found else None

    def all(self) -> list[BatchRecord]:
        """Every batch, oldest first."""
        return self._query(f"SELECT {_COLUMNS} FROM batches ORDER BY created, token")

    def open(self) -> list[BatchRecord]:
        """The batches resume takes up (see :data:`OPEN`), oldest first."""
        marks = ", ".join("?" * len(OPEN))
        return self._query(
            f"SELECT {_COLUMNS} FROM batches WHERE state IN ({marks}) ORDER BY created, token",
            OPEN,
        )

    def job_ids(self, states: Sequence[str] = OPEN) -> set[int]:
        """The ids of the jobs of the batches in ``states``."""
        marks = ", ".join("?" * len(states))
        with self.journal._lock:
            rows = self.journal._db.execute(
                f"SELECT jobs FROM batches WHERE state IN ({marks})", tuple(states)
            ).fetchall()
        return {ident for (jobs,) in rows for ident in json.loads(jobs)}


def batch_holding(journal: Journal, job_id: int) -> str | None:
    """How the batch not yet collected that has the job ``job_id`` is named (None: none),
    read without creating the table in a journal that has none."""
    marks = ", ".join("?" * len(OPEN))
    try:
        with journal._lock:
            row = journal._db.execute(
                f"SELECT name, token FROM batches WHERE state IN ({marks}) AND EXISTS "
                "(SELECT 1 FROM json_each(batches.jobs) WHERE value = ?)",
                (*OPEN, job_id),
            ).fetchone()
    except sqlite3.OperationalError:
        return None  # no batches table: no batch was ever made here
    return None if row is None else str(row[0] or display_name(row[1]))


def open_job_ids(journal: Journal) -> set[int]:
    """The ids of the jobs of the batches not collected, read without creating the table."""
    marks = ", ".join("?" * len(OPEN))
    try:
        with journal._lock:
            rows = journal._db.execute(
                f"SELECT jobs FROM batches WHERE state IN ({marks})", OPEN
            ).fetchall()
    except sqlite3.OperationalError:
        return set()  # no batches table: no batch was ever made here
    return {ident for (jobs,) in rows for ident in json.loads(jobs)}


def open_batches(journal: Journal) -> Batches | None:
    """The journal's batches, or None when the table cannot be made (a read-only journal)."""
    try:
        return Batches(journal)
    except sqlite3.Error:
        return None
