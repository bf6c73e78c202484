"""The journal database itself: states, concurrent writers, full-text search."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from conftest import JOURNAL_VERSION_1, all_jobs

from nanoedit.jobs import ResultEntry
from nanoedit.journal.records import ANSWERED, PLANNED, SAVED, SUBMITTED, JobSpec, NewJob
from nanoedit.journal.store import DATABASE_NAME, SCHEMA_VERSION, Journal


def _job(prompt: str, fingerprint: str = "f") -> NewJob:
    return NewJob(
        "edit", "openai", "nano-banana", prompt, fingerprint, {"inputs": [{"path": "a.png"}]}
    )


def test_a_job_moves_through_its_states_and_each_is_read_back(tmp_path: Path) -> None:
    with Journal(tmp_path, clock=lambda: 1000.0) as journal:
        journal.begin_run(["nanoedit", "edit", "a.png"])
        (ident,) = journal.add_jobs([_job("make it blue")])
        record = journal.get(ident)
        assert record is not None and record.state == PLANNED and record.unfinished
        journal.submitted(ident, {"prompt": "make it blue"})
        record = journal.get(ident)
        assert record is not None and record.state == SUBMITTED and record.may_have_been_charged
        journal.task(ident, "task-1")
        journal.task(ident, "task-2")
        record = journal.get(ident)
        assert record is not None and record.tasks == ("task-1", "task-2")
        assert not record.may_have_been_charged
        journal.answered(ident, [{"url": "https://x/1.png"}], usage={"images": 1}, cost=0.039)
        record = journal.get(ident)
        assert record is not None and record.state == ANSWERED and record.cost == 0.039
        results: list[ResultEntry] = [
            {"url": "https://x/1.png", "path": "/out/a.png", "sha256": "ab"}
        ]
        journal.saved(ident, results)
        record = journal.get(ident)
        assert record is not None
        assert (record.state, record.images, record.saved_paths) == (SAVED, 1, [Path("/out/a.png")])
        assert record.provenance == {"prompt": "make it blue"}
        assert list(journal.unfinished()) == []
        assert journal.last_saved() == record


def test_search_finds_prompts_by_words_and_prefixes(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        ids = journal.add_jobs([_job("a watercolor cat"), _job("a dog at night"), _job("cats")])
        assert [r.id for r in journal.search("watercolor")] == [ids[0]]
        assert [r.id for r in journal.search("cat*")] == [ids[2], ids[0]]
        assert journal.search("giraffe") == []


def _writer(folder: str, prompt: str, count: int) -> None:
    with Journal(Path(folder)) as journal:
        journal.begin_run([prompt])
        for ident in journal.add_jobs(_job(f"{prompt} {n}") for n in range(count)):
            journal.submitted(ident)
            journal.saved(ident, [{"path": f"{prompt}.png"}])


def test_two_processes_write_at_once_and_lose_nothing(tmp_path: Path) -> None:
    Journal(tmp_path).close()  # the schema exists before both start
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_writer, args=(str(tmp_path), name, 40)) for name in "ab"]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    assert [writer.exitcode for writer in writers] == [0, 0]
    with Journal(tmp_path) as journal:
        records = all_jobs(journal)
    assert len(records) == 80 and {r.state for r in records} == {SAVED}
    assert sorted(r.prompt for r in records) == sorted(f"{p} {n}" for p in "ab" for n in range(40))


def _dead_pid() -> int:
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_the_spool_keeps_what_unfinished_jobs_need_and_drops_what_dead_runs_cut_off(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path) as journal:
        journal.spool.mkdir(exist_ok=True)  # there already: opening makes it, 0700
        dead = _dead_pid()
        needed = journal.spool / f".nanoedit-{dead}-aaaaaaaaaaaa.part"
        cut_off = journal.spool / f".nanoedit-{dead}-bbbbbbbbbbbb.part"
        mine = journal.spool / f".nanoedit-{os.getpid()}-cccccccccccc.part"
        for path in (needed, cut_off, mine):
            path.write_bytes(b"\x89PNG")
        (ident,) = journal.add_jobs([_job("kept")])
        journal.answered(ident, [{"spool": str(needed)}])
        assert journal.tidy_spool(now=0.0) == 1
        assert sorted(p.name for p in journal.spool.iterdir()) == sorted([needed.name, mine.name])


def _claimer(folder: str, results: Any) -> None:
    with Journal(Path(folder)) as journal:
        jobs = [
            NewJob("edit", "openai", "nano-banana", "p", "f", {}, identity=f"job-{n}")
            for n in range(40)
        ]
        claims = journal.claim(jobs, defer=True, seen=0, command=["claimer"])
        results.put(sum(1 for claim in claims if claim.id is not None))


def test_two_processes_claiming_the_same_jobs_at_once_get_each_one_once(tmp_path: Path) -> None:
    Journal(tmp_path).close()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    claimers = [context.Process(target=_claimer, args=(str(tmp_path), results)) for _ in "ab"]
    for claimer in claimers:
        claimer.start()
    for claimer in claimers:
        claimer.join(60)
    assert [claimer.exitcode for claimer in claimers] == [0, 0]
    assert sorted(results.get(timeout=10) for _ in claimers) == [0, 40]
    with Journal(tmp_path) as journal:
        records = all_jobs(journal)
    assert sorted(record.identity or "" for record in records) == sorted(
        f"job-{n}" for n in range(40)
    )
    assert len({record.run for record in records}) == 1


def test_a_journal_opened_while_another_run_creates_it_waits_for_that_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another run is switching the new database to WAL: it holds the write lock of the empty
    # file, as SQLite does while it writes the first page. SQLite refuses a second switch then
    # at once, without the busy handler (waiting could deadlock): a run opening the journal
    # at that moment went on without one, and without its claims paid for every job again.
    creating = sqlite3.connect(tmp_path / DATABASE_NAME, isolation_level=None)
    creating.execute("BEGIN IMMEDIATE")
    switches: list[str] = []
    tried_again = threading.Event()
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = connect(*args, **kwargs)

        def trace(statement: str) -> None:
            if statement.startswith("PRAGMA journal_mode"):
                switches.append(statement)
                if len(switches) == 2:
                    tried_again.set()

        connection.set_trace_callback(trace)
        return connection

    monkeypatch.setattr(sqlite3, "connect", traced)
    opened: list[Journal] = []
    failed: list[BaseException] = []

    def open_journal() -> None:
        try:
            opened.append(Journal(tmp_path))
        except BaseException as exc:
            failed.append(exc)
        finally:
            tried_again.set()

    opener = threading.Thread(target=open_journal)
    opener.start()
    try:
        assert tried_again.wait(30), "the journal never tried to switch to WAL"
        # Refused once, it tries again: still waiting while the other run holds the file.
        assert (failed, opened) == ([], [])
    finally:
        creating.execute("COMMIT")
        creating.close()
        opener.join(30)
    assert failed == [] and len(opened) == 1
    with opened[0] as journal:
        journal.begin_run(["nanoedit", "edit", "a.png"])
        assert journal.add_jobs([_job("a hat")]) == [1]
    with closing(connect(tmp_path / DATABASE_NAME)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_a_version_1_journal_is_migrated_in_place(tmp_path: Path) -> None:
    import json
    import sqlite3

    from nanoedit.journal.records import identity
    from nanoedit.journal.store import SCHEMA_VERSION

    spec: JobSpec = {
        "inputs": [{"path": "/in/a.png"}],
        "output": None,
        "out_dir": "/out",
        "names": ["a-edit"],
    }
    with sqlite3.connect(tmp_path / "journal.sqlite3") as db:
        db.executescript(JOURNAL_VERSION_1)
        db.execute(
            "INSERT INTO runs(started, pid, command, cwd) VALUES (1, 1, '[\"nanoedit\"]', '/')"
        )
        for results in ("[]", '[{"url": "http://nanoedit-sandbox.invalid/files/x.png"}]'):
            db.execute(
                "INSERT INTO jobs(run, created, updated, state, kind, backend, model, prompt, "
                "fingerprint, spec, results) VALUES (1, 1, 1, 'answered', 'edit', 'openai', "
                "'nano-banana', 'a hat', 'f', ?, ?)",
                (json.dumps(spec), results),
            )
    with Journal(tmp_path) as journal:
        records = all_jobs(journal)
        assert [(r.sandbox, r.identity, r.owner, r.owner_run) for r in records] == [
            (False, identity("f", spec, ["a-edit"], False), None, 1),
            (True, identity("f", spec, ["a-edit"], True), None, 1),
        ]
        assert [r.id for r in journal.search("hat")] == [2, 1]
    with sqlite3.connect(tmp_path / "journal.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_resume_reads_the_unfinished_jobs_one_at_a_time_each_as_it_is_now(tmp_path: Path) -> None:
    # Not all at once: a batch's 10,000 records held together were most of resume's peak
    # memory. Each is read when its turn comes, so one ended meanwhile is passed over.
    with Journal(tmp_path) as journal:
        journal.begin_run(["nanoedit", "edit", "a.png"])
        first, second, third, ended = journal.add_jobs(_job(prompt) for prompt in "abcd")
        journal.submitted(ended)
        journal.saved(ended, [{"path": "d.png"}])
        records = journal.unfinished()
        head = next(records)
        assert (head.id, head.state) == (first, PLANNED)
        # Another process ends the second job and is answered for the third meanwhile.
        journal.submitted(second)
        journal.saved(second, [{"path": "b.png"}])
        journal.answered(third, [{"url": "https://x/c.png"}])
        assert [(record.id, record.state, record.results) for record in records] == [
            (third, ANSWERED, ({"url": "https://x/c.png"},))
        ]
