"""``nanoedit resume``: take every unfinished job of the journal where its last run left it.

An asynchronous task is polled again by its handle, a result URL not yet saved is downloaded,
a spooled base64 result is saved, and a job never sent is sent. A synchronous request that went
out but whose answer never came may have been charged: it is listed, and sent again only with
``--retry-unsafe``. Jobs an earlier run still has under way (its process is alive) are left to it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO

from nanoedit.errors import NetworkError, UsageError
from nanoedit.jobs import JobOutcome, PlannedJob, RunOptions
from nanoedit.journal import JobRecord, Journal
from nanoedit.recording import SavingOptions, planned_from

if TYPE_CHECKING:
    from nanoedit.clock import Clock
    from nanoedit.runner import Events


@dataclass
class ResumePlan:
    """What ``resume`` will do: jobs to run, grouped by how their images are saved, and jobs
    it will not touch (with why)."""

    groups: dict[SavingOptions, list[PlannedJob]] = field(default_factory=dict)
    # Jobs that may have been charged (not sent again without --retry-unsafe) or whose input
    # cannot be read again: each an outcome with its error.
    held: list[JobOutcome] = field(default_factory=list)
    # Jobs another live process has under way: said, not touched.
    busy: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> int:
        """How many jobs will run."""
        return sum(len(group) for group in self.groups.values())


def _other_owner(journal: Journal, record: JobRecord) -> int | None:
    """The live process, other than this one, whose run has ``record`` under way."""
    from nanoedit.save import process_alive

    owner = journal.run_pid(record.run)
    if owner is None or owner == os.getpid() or not process_alive(owner):
        return None
    return owner


def _records(journal: Journal, ids: Sequence[int]) -> list[JobRecord]:
    if not ids:
        return journal.unfinished()
    records = []
    for ident in ids:
        record = journal.get(ident)
        if record is None:
            raise UsageError(f"there is no job {ident} in the history; see nanoedit history")
        if not record.unfinished:
            raise UsageError(
                f"job {ident} has nothing left to resume: it is {record.state}"
                + ("" if record.state == "saved" else "; send it again with edit or generate")
            )
        records.append(record)
    return records


def plan_resume(journal: Journal, ids: Sequence[int], *, retry_unsafe: bool) -> ResumePlan:
    """Decide what to do with each unfinished job (``ids``: only those)."""
    plan = ResumePlan()
    for record in _records(journal, ids):
        owner = _other_owner(journal, record)
        if owner is not None:
            plan.busy.append(f"job {record.id} is under way in process {owner}; left to it")
            continue
        record = journal.adopt_spooled(record)
        if record.may_have_been_charged:
            if not retry_unsafe:
                plan.held.append(_unsafe(record))
                continue
            journal.replan(record.id)
            record = journal.get(record.id) or record
        planned, saving = planned_from(record)
        unreadable = [item["stream"] for item in record.spec["inputs"] if "stream" in item]
        if unreadable and record.state == "planned":
            plan.held.append(
                JobOutcome(
                    planned.job,
                    record.backend,
                    record.model,
                    error=UsageError(
                        f"job {record.id} reads its image from {unreadable[0]}, a stream that "
                        "cannot be read again; send it again with edit"
                    ),
                    journal_id=record.id,
                    left=record.state,
                )
            )
            continue
        plan.groups.setdefault(saving, []).append(planned)
    return plan


def _unsafe(record: JobRecord) -> JobOutcome:
    planned, _ = planned_from(record)
    when = datetime.fromtimestamp(record.updated).astimezone().strftime("%Y-%m-%d %H:%M")
    labels = record.spec.get("labels") or [planned.job.label]
    error = NetworkError(
        f"job {record.id} ({labels[0]}): its request went out at {when} and no answer "
        "came, so it may have been charged; check your account, then nanoedit resume "
        f"{record.id} --retry-unsafe sends it again"
    )
    return JobOutcome(
        planned.job,
        record.backend,
        record.model,
        error=error,
        sent=True,
        journal_id=record.id,
        left=record.state,
    )


def run_resume(
    journal: Journal,
    plan: ResumePlan,
    run: RunOptions,
    events: Events,
    clock: Clock,
    stdout: BinaryIO | None,
) -> list[JobOutcome]:
    """Run the resumed jobs, one runner per way of saving, and return every outcome (those
    held back first)."""
    import dataclasses

    from nanoedit.client import client_for
    from nanoedit.config import load_settings
    from nanoedit.inputs import RunInputs
    from nanoedit.interrupts import run_gently
    from nanoedit.runner import Runner
    from nanoedit.save import tidy_folders

    journal.tidy_spool(clock.now().timestamp())
    outcomes = list(plan.held)
    for outcome in plan.held:
        events.job_finished(outcome)
    for saving, planned in plan.groups.items():
        options = dataclasses.replace(
            run,
            out_dir=saving.out_dir,
            metadata=saving.metadata,
            sidecar=saving.sidecar,
            overwrite=saving.overwrite,
        )
        settings = load_settings(os.environ, options)
        # What killed runs (a killed resume among them) left in these jobs' folders.
        tidy_folders((job.job for job in planned), saving.out_dir, clock.now().timestamp())
        with client_for(settings, pool=options.jobs, clock=clock) as client:
            runner = Runner(
                settings, client, events, options, RunInputs(events.warning),
                stdout=stdout, clock=clock, journal=journal,
            )  # fmt: skip
            outcomes += run_gently(runner, planned, events, journal)
    return outcomes


def carry_on(
    journal: Journal, record: JobRecord, planned: PlannedJob, *, retry_unsafe: bool
) -> JobOutcome | PlannedJob | None:
    """The same request met again by ``--skip-existing``, left unfinished by an earlier run:
    it goes on from where that run left it (its row, its tasks, its results), or, when its
    request may have been charged, is held back unless ``retry_unsafe``. None when another
    live process has it under way (this run then sends its own)."""
    from dataclasses import replace

    if _other_owner(journal, record) is not None:
        return None
    record = journal.adopt_spooled(record)
    if record.may_have_been_charged:
        if not retry_unsafe:
            unsafe = _unsafe(record)
            return replace(unsafe, job=planned.job)
        journal.replan(record.id)
        return replace(planned, journal_id=record.id)
    return replace(planned, journal_id=record.id, tasks=record.tasks, results=record.results)
