"""The job journal: every job nanoedit sends, and each step of it that costs money or produces
a paid result, in a SQLite database under the user data folder.

A job's row moves through its states, each committed before the next step starts:

``planned``   the run will send it (nothing paid yet);
``submitted`` a paid request is about to go out; an asynchronous API's task handle is
              written the moment the provider gives it;
``answered``  the results are known: their URLs, or base64 results already in a spool file;
``saved``     every result is on disk (paths and SHA-256), or ``failed`` / ``refused``;
``held``      never sent: ``--max-cost`` or ``--max-images`` kept it back (it ended there, so
              that ``resume`` does not send it past the limit that held it).

A job is *owned* by the run that has it under way (the run that made it, or a later run that
took it up): another process sends it only once that run's process is gone. A sandbox job is
marked so, and is never sent to a real API nor taken for a real job's result.

Because each step is committed first, a process killed at any moment leaves the journal
saying what was paid for and where its results are, and ``nanoedit resume`` takes it from
there. WAL mode lets concurrent runs (``-j 16``, two processes, CI shards on one machine)
share the database; each write is one short transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

# The folder is found without loading this module's database; its names are kept here too.
from nanoedit.datadir import DATA_DIR_ENV, data_dir
from nanoedit.jobs import Exchange, ResultEntry
from nanoedit.journal.records import (
    ANSWERED,
    COLUMNS,
    FAILED,
    HELD,
    PLANNED,
    REFUSED,
    SAVED,
    SUBMITTED,
    UNFINISHED,
    Claim,
    CostRow,
    JobRecord,
    NewJob,
    identity,
    record_of_row,
)

__all__ = ["DATA_DIR_ENV", "data_dir"]

DATABASE_NAME = "journal.sqlite3"
SPOOL_FOLDER = "spool"

# Raised when the tables change; a database of an older version gets what it lacks.
SCHEMA_VERSION = 3
# Another run holding the write lock briefly (a commit is a few ms): wait rather than fail.
BUSY_TIMEOUT_MS = 30_000
# How long a run opening the journal waits before trying again to switch a database another
# run is setting up to WAL (see Journal._use_wal): doubled each time, up to the most.
WAL_RETRY_FIRST = 0.002
WAL_RETRY_MOST = 0.05
# The journal holds every prompt and signed result URL, and its spool paid images: like the
# config file, they are for their owner only.
PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    pid INTEGER NOT NULL,
    command TEXT NOT NULL,
    cwd TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run INTEGER NOT NULL REFERENCES runs(id),
    created REAL NOT NULL,
    updated REAL NOT NULL,
    state TEXT NOT NULL,
    kind TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    spec TEXT NOT NULL,
    provenance TEXT,
    tasks TEXT NOT NULL DEFAULT '[]',
    results TEXT NOT NULL DEFAULT '[]',
    error_kind TEXT,
    error TEXT,
    images INTEGER NOT NULL DEFAULT 0,
    cost REAL,
    usage TEXT,
    sandbox INTEGER NOT NULL DEFAULT 0,
    identity TEXT,
    owner INTEGER REFERENCES runs(id),
    exchanges TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE INDEX IF NOT EXISTS jobs_identity ON jobs(identity);
CREATE INDEX IF NOT EXISTS jobs_fingerprint ON jobs(fingerprint);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created);
CREATE VIRTUAL TABLE IF NOT EXISTS jobs_text USING fts5(
    prompt, content='jobs', content_rowid='id'
);
CREATE TRIGGER IF NOT EXISTS jobs_text_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO jobs_text(rowid, prompt) VALUES (new.id, new.prompt);
END;
CREATE TRIGGER IF NOT EXISTS jobs_text_delete AFTER DELETE ON jobs BEGIN
    INSERT INTO jobs_text(jobs_text, rowid, prompt) VALUES ('delete', old.id, old.prompt);
END;
"""

# From version 1: whether a job went to the sandbox, what identifies it as a job (see
# :func:`nanoedit.journal.recording.identity`), and the run that has it under way now.
_TO_2 = (
    "ALTER TABLE jobs ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN identity TEXT",
    "ALTER TABLE jobs ADD COLUMN owner INTEGER REFERENCES runs(id)",
)
# From version 2: what a conversing backend kept of each request that made images (see
# :data:`nanoedit.jobs.Exchange`), for a later ``--continue`` turn; NULL for the jobs before.
_TO_3 = ("ALTER TABLE jobs ADD COLUMN exchanges TEXT",)
# Where the in-process sandbox says its results are (a host that never resolves): a version 1
# job that names it, or whose run was given --sandbox, went to the sandbox.
_SANDBOX_HOST = "nanoedit-sandbox.invalid"


def _statements(script: str) -> list[str]:
    """A script's statements one by one (a trigger's body stays in its statement), to run
    inside a transaction that ``executescript`` would commit first."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


def _backfill_2(db: sqlite3.Connection) -> None:
    """Fill version 2's columns for the jobs a version 1 database holds."""
    db.execute(
        "UPDATE jobs SET sandbox = 1 WHERE results LIKE ? OR tasks LIKE ? "
        "OR run IN (SELECT id FROM runs WHERE command LIKE '%\"--sandbox\"%')",
        (f"%{_SANDBOX_HOST}%", f"%{_SANDBOX_HOST}%"),
    )
    updates = []
    for ident, fingerprint, text, sandbox in db.execute(
        "SELECT id, fingerprint, spec, sandbox FROM jobs"
    ).fetchall():
        spec = json.loads(text)
        # Version 1 kept the names a job took, not the names it was given first: the same
        # but for a name an earlier file had taken.
        updates.append((identity(fingerprint, spec, spec.get("names", []), bool(sandbox)), ident))
    db.executemany("UPDATE jobs SET identity = ? WHERE id = ?", updates)


def _same_file(one: Path, other: Path) -> bool:
    """Whether two paths name the same file (False when either is not there)."""
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


def _open_privately(folder: Path, database: Path, spool: Path) -> None:
    """Make the data folder 0700 when it is not there yet (a folder already there is the
    user's to set), the database 0600 before SQLite does (which gives its -wal and -shm the
    database's mode), the spool folder 0700; and take group and other access away from what
    an earlier version left readable: the database, its -wal and -shm, the spool's files."""
    folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    try:
        spool.mkdir(mode=PRIVATE_FOLDER, exist_ok=True)
        spooled = list(spool.iterdir())
    except OSError:
        spooled = []  # a journal only read, in a folder this user cannot write: left as it is
    companions = [database.with_name(f"{database.name}{end}") for end in ("-wal", "-shm")]
    for path in [database, *companions, spool, *spooled]:
        _tighten(path)


def _is_busy(error: sqlite3.Error) -> bool:
    """Whether a SQLite error says another connection holds the lock (SQLITE_BUSY and its
    extended codes), which waiting mends."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


def _tighten(path: Path) -> None:
    """Take group and other access away from ``path``, if it has any; a file that is not
    there, or not this user's to change, is left as it is."""
    try:
        info = os.lstat(path)
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077 and not stat.S_ISLNK(info.st_mode):
            os.chmod(path, mode & 0o700)
    except OSError:
        pass


class Journal:
    """The journal database, opened once per process and shared by its job threads.

    Every method is one committed transaction; a lock keeps the threads of one process from
    interleaving on the shared connection, SQLite's own locking keeps processes apart.
    """

    def __init__(self, folder: Path, *, clock: Any = time.time) -> None:
        self.folder = folder
        self.path = folder / DATABASE_NAME
        self.spool = folder / SPOOL_FOLDER
        self._time = clock
        self._lock = threading.Lock()
        _open_privately(folder, self.path, self.spool)
        self._db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            self._open()
        except BaseException:
            self._db.close()  # a damaged file (see is_damaged) is not held open
            raise
        self.run_id: int | None = None

    def _open(self) -> None:
        """Set the connection up, and the tables of a new journal."""
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._use_wal()
        # synchronous=NORMAL: a commit survives the process being killed (the log is in the
        # kernel's hands); only a power loss may take the last commits back.
        self._db.execute("PRAGMA synchronous = NORMAL")
        with self._lock:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version < SCHEMA_VERSION:
                # One transaction: two runs starting at once must not both create the tables.
                self._upgrade()
            # The schema and the jobs table's last page, read at once (a few pages at most):
            # a journal damaged there fails here, on opening, not halfway through a run.
            self._db.execute("SELECT max(id) FROM jobs").fetchone()

    def _use_wal(self) -> None:
        """Put the database in WAL mode (readers never block the writer, and a commit is an
        append to the log), waiting, as a write does, while another run holds it.

        A new database is switched by the first run that opens it, which writes the file's
        first page under a write lock. SQLite refuses another connection's switch at that
        moment at once ("database is locked"), without the busy handler, which it does not
        call where waiting could deadlock [P sqlite.org c3ref/busy_handler.html]: two runs
        started together in a new data folder met there, and the second went on without a
        journal, so without the claims that keep two runs from paying for one job. So the
        switch is tried again until the lock is let go, for as long as a write waits."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = WAL_RETRY_FIRST
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() + pause > deadline:
                    raise
            # A switch holds its lock for a page's write: a few ms, unless the machine is busy.
            time.sleep(pause)
            pause = min(2 * pause, WAL_RETRY_MOST)

    def _upgrade(self) -> None:
        """Bring a new database, or one of an older version, to :data:`SCHEMA_VERSION` in one
        transaction (the version is read again inside it: another run may have done it)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version == 1:
                for statement in _TO_2:
                    db.execute(statement)
            if version in (1, 2):
                for statement in _TO_3:
                    db.execute(statement)
            if version < SCHEMA_VERSION:
                for statement in _statements(_SCHEMA):
                    db.execute(statement)
                if version == 1:
                    _backfill_2(db)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute(sql, parameters).fetchall()
        return [record_of_row(row) for row in rows]

    # Writing -------------------------------------------------------------------------------

    def begin_run(self, command: Sequence[str]) -> int:
        """Record that a run starts; its jobs are added with :meth:`add_jobs` or
        :meth:`claim`."""
        with self._write() as db:
            self.run_id = self._insert_run(db, command)
        return self.run_id

    def _insert_run(self, db: sqlite3.Connection, command: Sequence[str]) -> int:
        cursor = db.execute(
            "INSERT INTO runs(started, pid, command, cwd) VALUES (?, ?, ?, ?)",
            (self._time(), os.getpid(), json.dumps(list(command)), os.getcwd()),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def add_jobs(self, jobs: Iterable[NewJob]) -> list[int]:
        """Journal a run's jobs as planned, all in one transaction; returns their ids."""
        claims = self.claim(list(jobs))
        return [claim.id for claim in claims if claim.id is not None]

    def last_id(self) -> int:
        """The id of the latest job (0 for none): what a run has seen of the journal."""
        with self._lock:
            (last,) = self._db.execute("SELECT coalesce(max(id), 0) FROM jobs").fetchone()
        return int(last)

    def claim(
        self,
        jobs: Sequence[NewJob | int],
        *,
        defer: bool = False,
        seen: int = 0,
        command: Sequence[str] = (),
    ) -> list[Claim]:
        """Claim a run's jobs for it in one transaction, which records the run too when it
        has not begun (as ``command``): a :class:`NewJob` becomes a planned row of this run;
        an id, an earlier run's unfinished row, becomes this run's unless a live process
        other than this one has it.

        With ``defer`` (``--skip-existing``), a new job whose identity another live process
        has under way, or another run journaled after row ``seen`` (the last row this run saw
        when it looked for earlier work), is left to that run: its claim names that row as
        ``other``. Two processes claiming the same jobs at once cannot both have one: the
        second's transaction starts once the first's has committed, and sees its rows.
        """
        from nanoedit.output.parts import process_alive

        alive: dict[int, bool] = {}

        def other_live(pid: int) -> bool:
            if pid == os.getpid():
                return False
            if pid not in alive:
                alive[pid] = process_alive(pid)
            return alive[pid]

        now = self._time()
        claims: list[Claim | NewJob] = []
        with self._write() as db:
            if self.run_id is None:
                self.run_id = self._insert_run(db, command)
            for job in jobs:
                if isinstance(job, int):
                    claims.append(self._take(db, job, other_live))
                    continue
                other = self._left_to(db, job.identity, seen, other_live) if defer else None
                claims.append(job if other is None else Claim(other=other))
            rows = [
                (
                    self.run_id, now, now, PLANNED, job.kind, job.backend, job.model,
                    job.prompt, job.fingerprint, json.dumps(job.spec, ensure_ascii=False),
                    int(job.sandbox), job.identity, self.run_id,
                )
                for job in claims
                if isinstance(job, NewJob)
            ]  # fmt: skip
            if rows:
                db.executemany(
                    "INSERT INTO jobs(run, created, updated, state, kind, backend, model, prompt,"
                    " fingerprint, spec, sandbox, identity, owner)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                # One writer inside one transaction: the rows took consecutive ids up to the
                # last.
                (last,) = db.execute("SELECT max(id) FROM jobs").fetchone()
        ids = iter(range(last - len(rows) + 1, last + 1) if rows else ())
        return [Claim(id=next(ids)) if isinstance(job, NewJob) else job for job in claims]

    def _take(
        self, db: sqlite3.Connection, job_id: int, other_live: Callable[[int], bool]
    ) -> Claim:
        """Make an unfinished row this run's, unless another live process has it (or it has
        ended meanwhile): then the claim names it as another run's."""
        row = db.execute(
            "SELECT jobs.state, runs.pid FROM jobs JOIN runs ON runs.id = "
            "coalesce(jobs.owner, jobs.run) WHERE jobs.id = ?",
            (job_id,),
        ).fetchone()
        if row is None or row[0] not in UNFINISHED or other_live(row[1]):
            return Claim(other=job_id)
        db.execute("UPDATE jobs SET owner = ? WHERE id = ?", (self.run_id, job_id))
        return Claim(id=job_id)

    def _left_to(
        self,
        db: sqlite3.Connection,
        identity: str | None,
        seen: int,
        other_live: Callable[[int], bool],
    ) -> int | None:
        """The row of the same job that another run has, if any: one journaled after row
        ``seen``, or one still unfinished whose process is alive."""
        if identity is None:
            return None
        marks = ", ".join("?" for _ in UNFINISHED)
        rows = db.execute(
            "SELECT jobs.id, runs.pid FROM jobs JOIN runs ON runs.id = "
            "coalesce(jobs.owner, jobs.run) WHERE jobs.identity = ? AND "
            f"(jobs.id > ? OR jobs.state IN ({marks})) ORDER BY jobs.id DESC",
            (identity, seen, *UNFINISHED),
        ).fetchall()
        for ident, pid in rows:
            if (ident > seen and pid != os.getpid()) or other_live(pid):
                return int(ident)
        return None

    def _update(self, job_id: int, **columns: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._write() as db:
            db.execute(
                f"UPDATE jobs SET updated = ?, {assignments} WHERE id = ?",
                (self._time(), *columns.values(), job_id),
            )

    def submitted(self, job_id: int, provenance: Mapping[str, Any] | None = None) -> None:
        """A paid request of the job is about to go out."""
        if provenance is None:
            self._update(job_id, state=SUBMITTED)
        else:
            self._update(job_id, state=SUBMITTED, provenance=json.dumps(provenance))

    def task(self, job_id: int, handle: str) -> None:
        """The provider gave a task handle for the job: add it to the job's tasks."""
        with self._write() as db:
            row = db.execute("SELECT tasks FROM jobs WHERE id = ?", (job_id,)).fetchone()
            tasks = [*json.loads(row[0]), handle] if row else [handle]
            db.execute(
                "UPDATE jobs SET updated = ?, state = ?, tasks = ? WHERE id = ?",
                (self._time(), SUBMITTED, json.dumps(tasks), job_id),
            )

    def answered(
        self,
        job_id: int,
        results: Sequence[ResultEntry],
        *,
        usage: Mapping[str, Any] | None = None,
        cost: float | None = None,
        exchanges: Sequence[Exchange] = (),
    ) -> None:
        """The job's results are known (URLs, or spool files holding their bytes), with what a
        conversing backend kept of its requests (``exchanges``): in the same commit, before any
        result is saved, so that a run killed while saving loses none of it."""
        self._update(
            job_id,
            state=ANSWERED,
            results=json.dumps(list(results)),
            usage=json.dumps(usage) if usage else None,
            cost=cost,
            exchanges=json.dumps(list(exchanges), ensure_ascii=False) if exchanges else None,
        )

    def result_saved(self, job_id: int, results: Sequence[ResultEntry]) -> None:
        """One more result is on disk: ``results`` with its entry's path and SHA-256 set."""
        self._update(job_id, results=json.dumps(list(results)))

    def saved(self, job_id: int, results: Sequence[ResultEntry]) -> None:
        """Every result of the job is on disk."""
        saved = sum(1 for entry in results if entry.get("path"))
        self._update(job_id, state=SAVED, results=json.dumps(list(results)), images=saved)

    def failed(self, job_id: int, kind: str, message: str, *, refused: bool = False) -> None:
        """The job ended without its images (or with some, then an error)."""
        self._update(job_id, state=REFUSED if refused else FAILED, error_kind=kind, error=message)

    def held(self, job_id: int, message: str) -> None:
        """A budget kept the job from being sent: it ends here, never sent."""
        self._update(job_id, state=HELD, error_kind="budget", error=message)

    def adopt_spooled(self, record: JobRecord, *, keep: bool = True) -> JobRecord:
        """A job killed after its results were spooled but before the journal heard of them
        (a request that would look like it may have been charged): its whole spool files,
        named after it, make it answered. Returns the record as it is now (with ``keep``
        False, as it would be: the journal is left as it is)."""
        if not record.may_have_been_charged:
            return record
        found = sorted(
            self.spool.glob(f"{record.id}-*.bin"),
            key=lambda path: int(path.stem.rpartition("-")[2] or 0),
        )
        if not found:
            return record
        results: list[ResultEntry] = [{"spool": str(path)} for path in found]
        if not keep:
            return replace(record, state=ANSWERED, results=tuple(results))
        self.answered(record.id, results)
        return self.get(record.id) or record

    def take_up(self, job_id: int) -> bool:
        """Make this run the owner of an unfinished job, in one transaction, unless a live
        process other than this one has it; returns whether it did. Two processes taking up
        the same job at once (two resumes) cannot both have it."""
        return self.claim([job_id])[0].id is not None

    def replan(self, job_id: int) -> None:
        """Send a job again from the start (``resume --retry-unsafe``)."""
        self._update(job_id, state=PLANNED, tasks="[]", results="[]")

    # Reading -------------------------------------------------------------------------------

    def run_pid(self, run_id: int) -> int | None:
        """The process a run was started in."""
        with self._lock:
            row = self._db.execute("SELECT pid FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else int(row[0])

    def spooled(self) -> set[str]:
        """The spool files unfinished jobs still need (their results not saved yet)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT results FROM jobs WHERE state = ? AND results LIKE '%\"spool\"%'",
                (ANSWERED,),
            ).fetchall()
        return {
            entry["spool"]
            for (results,) in rows
            for entry in json.loads(results)
            if "spool" in entry and "path" not in entry
        }

    def tidy_spool(self, now: float) -> int:
        """Remove the spool files killed runs left that no unfinished job needs (an image
        cut off while it streamed in); returns how many."""
        from nanoedit.output.parts import remove_stale_parts

        return remove_stale_parts(self.spool, now, keep=self.spooled())

    def get(self, job_id: int) -> JobRecord | None:
        """One job, by its id."""
        found = self._read(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return found[0] if found else None

    def unfinished(self) -> Iterator[JobRecord]:
        """Every job that has not ended, oldest first, each read when its turn comes: a
        batch's 10,000 records (specs, provenance and results decoded) held at once were
        most of a resume's peak memory, about 7 kB a job. One that has ended since the ids
        were read is passed over, as it would have been when taken up."""
        marks = ", ".join("?" for _ in UNFINISHED)
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM jobs WHERE state IN ({marks}) ORDER BY id", UNFINISHED
            ).fetchall()
        for (ident,) in rows:
            record = self.get(ident)
            if record is not None and record.unfinished:
                yield record

    def recent(self, limit: int = 20) -> list[JobRecord]:
        """The latest jobs, newest first."""
        return self._read(f"SELECT {COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?", (limit,))

    def search(self, text: str, limit: int = 50) -> list[JobRecord]:
        """Jobs whose prompt matches ``text`` (full-text: words, ``"a phrase"``, ``cat*``),
        newest first."""
        return self._read(
            f"SELECT {', '.join('jobs.' + c.strip() for c in COLUMNS.split(','))} FROM jobs "
            "JOIN jobs_text ON jobs_text.rowid = jobs.id WHERE jobs_text MATCH ? "
            "ORDER BY jobs.id DESC LIMIT ?",
            (text, limit),
        )

    def last_saved(self) -> JobRecord | None:
        """The latest job that saved an image."""
        found = self._read(
            f"SELECT {COLUMNS} FROM jobs WHERE images > 0 ORDER BY updated DESC, id DESC LIMIT 1"
        )
        return found[0] if found else None

    def by_identity(self, identity: str) -> list[JobRecord]:
        """Earlier runs of the very same job: the same request, of the same inputs, saved to
        the same names, in the sandbox or not (newest first)."""
        return self._read(
            f"SELECT {COLUMNS} FROM jobs WHERE identity = ? ORDER BY id DESC", (identity,)
        )

    def continuations(self, after: int) -> list[JobRecord]:
        """The jobs after job ``after`` whose spec names a turn they go on from (``edit
        --continue``), oldest first: the rest of a thread that starts at ``after`` is among
        them (a turn is always journaled after the one it continues)."""
        # A spec that names no turn cannot hold the key: those rows are not read.
        return self._read(
            f"SELECT {COLUMNS} FROM jobs WHERE id > ? AND instr(spec, ?) > 0 ORDER BY id",
            (after, '"continues"'),
        )

    def sandbox_made(self, path: Path) -> bool:
        """Whether a sandbox job saved the image at ``path`` (an image without provenance
        cannot say so itself). A saved path is kept as its run gave it: relative ones are
        read from that run's folder."""
        # The name as the results' JSON holds it: rows that cannot hold the path are not read.
        needle = json.dumps(path.name)[1:-1]
        with self._lock:
            rows = self._db.execute(
                "SELECT jobs.results, runs.cwd FROM jobs JOIN runs ON runs.id = jobs.run "
                "WHERE jobs.sandbox = 1 AND instr(jobs.results, ?) > 0",
                (needle,),
            ).fetchall()
        return any(
            _same_file(Path(folder) / entry["path"], path)
            for results, folder in rows
            for entry in json.loads(results)
            if entry.get("path")
        )

    def run_folder(self, run: int) -> Path | None:
        """The folder a run was started in: where its relative paths start."""
        with self._lock:
            row = self._db.execute("SELECT cwd FROM runs WHERE id = ?", (run,)).fetchone()
        return Path(row[0]) if row else None

    def cost_by_day(self) -> list[CostRow]:
        """What was spent, summed by local day, backend and model (newest day first). Jobs
        never sent are left out, and so are sandbox jobs, which cost nothing; ``unpriced``
        counts jobs with images and no known cost."""
        with self._lock:
            rows = self._db.execute(
                "SELECT date(created, 'unixepoch', 'localtime') AS day, backend, model, "
                "COUNT(*), SUM(images), SUM(cost), "
                "SUM(CASE WHEN cost IS NULL AND images > 0 THEN 1 ELSE 0 END) "
                "FROM jobs WHERE state NOT IN (?, ?) AND sandbox = 0 GROUP BY day, backend, model "
                "ORDER BY day DESC, backend, model",
                (PLANNED, HELD),
            ).fetchall()
        return [CostRow(*row) for row in rows]
