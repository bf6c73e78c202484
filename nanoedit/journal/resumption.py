"""What becomes of each unfinished job of the journal: resume's plan, and ``--skip-existing``'s
going on with a job an earlier run left. Planning only, next to the journal it reads; the session
runs the plan.

An asynchronous task is polled again by its handle, a result URL not yet saved is downloaded,
a spooled base64 result is saved, and a job never sent is sent. A synchronous request that went
out but whose answer never came may have been charged: it is listed, and sent again only with
``--retry-unsafe``. Jobs an earlier run still has under way (its process is alive) are left to it;
a job this resume takes up becomes its own, so that two resumes never both send it.

A sandbox job goes back to the sandbox, never to a real API; its tasks and result links lived
in the process that ran it, so it is sent to the sandbox again, which charges nothing. A real
job is never resumed into the sandbox. A job a budget held back (``--max-images``,
``--max-cost``) has ended: resume does not send it past the limit that held it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nanoedit.errors import ConfigError, InputError, NanoeditError, NetworkError, UsageError
from nanoedit.jobs import JobOutcome, PlannedJob
from nanoedit.journal.recording import SavingOptions, planned_from
from nanoedit.journal.records import HELD, PLANNED, SAVED, Claim, JobRecord
from nanoedit.journal.store import Journal

if TYPE_CHECKING:
    from nanoedit.settings.values import Settings


@dataclass(frozen=True)
class Step:
    """What resume does (or, with ``--dry-run``, would do) with one job: ``action`` is
    ``send``, ``collect``, ``save``, ``hold`` or ``busy``, and ``says`` tells it in words."""

    job: int
    label: str
    backend: str
    model: str
    sandbox: bool
    action: str
    says: str

    def line(self) -> str:
        """The step as one line for a person."""
        return f"job {self.job} ({self.label}): {self.says}"

    def to_json(self) -> dict[str, Any]:
        """The step as one ``--json`` object."""
        return {
            "job": self.job,
            "input": self.label,
            "backend": self.backend,
            "model": self.model,
            "sandbox": self.sandbox,
            "action": self.action,
            "message": self.says,
        }


@dataclass
class ResumePlan:
    """What ``resume`` will do: jobs to run, grouped by how their images are saved and by
    whether they go to the sandbox, and jobs it will not touch (with why)."""

    groups: dict[tuple[SavingOptions, bool], list[PlannedJob]] = field(default_factory=dict)
    # Jobs that may have been charged (not sent again without --retry-unsafe), whose input
    # cannot be read again, or that cannot be sent where they belong: each an outcome with its
    # error.
    held: list[JobOutcome] = field(default_factory=list)
    # Jobs another live process has under way: said, not touched.
    busy: list[str] = field(default_factory=list)
    # Every job, in order, with what is done with it.
    steps: list[Step] = field(default_factory=list)

    @property
    def jobs(self) -> int:
        """How many jobs will run."""
        return sum(len(group) for group in self.groups.values())

    def heading(self) -> str:
        """One line on what is about to be done: how many jobs are sent, collected, saved."""
        counts = {
            action: sum(1 for step in self.steps if step.action == action)
            for action in ("send", "collect", "save")
        }
        words = {"send": "to send", "collect": "to collect", "save": "to save"}
        parts = [f"{count} {words[action]}" for action, count in counts.items() if count]
        boxed = sum(1 for step in self.steps if step.sandbox and step.action != "hold")
        if boxed:
            parts.append(f"{boxed} of them in the sandbox")
        jobs = "job" if self.jobs == 1 else "jobs"
        return f"taking up {self.jobs} {jobs}: {', '.join(parts)}"


def nothing_to_resume(busy: int) -> str:
    """What resume says when it has nothing to do: every job ended, or the unfinished ones
    are another live process's."""
    if not busy:
        return "nothing to resume: every job in the history has ended"
    jobs = "job is" if busy == 1 else "jobs are"
    return f"nothing to resume now: the {busy} unfinished {jobs} under way in other processes"


def _other_owner(journal: Journal, record: JobRecord) -> int | None:
    """The live process, other than this one, whose run has ``record`` under way."""
    from nanoedit.output.parts import process_alive

    owner = journal.run_pid(record.owner_run)
    if owner is None or owner == os.getpid() or not process_alive(owner):
        return None
    return owner


def _label(record: JobRecord) -> str:
    """How a journaled job is named in messages: its input as it was given, or its stem."""
    labels = record.spec.get("labels") or []
    return str(labels[0]) if labels else str(record.spec.get("stem", record.id))


def _records(journal: Journal, ids: Sequence[int]) -> Iterable[JobRecord]:
    """The jobs to plan: ``ids`` (each checked first), or every unfinished job."""
    if not ids:
        return journal.unfinished()
    records = []
    for ident in ids:
        record = journal.get(ident)
        if record is None:
            raise UsageError(f"there is no job {ident} in the history; see nanoedit history")
        if record.state == HELD:
            raise UsageError(f"job {ident} was never sent: {record.error}")
        if not record.unfinished:
            raise UsageError(
                f"job {ident} has nothing left to resume: it is {record.state}"
                + ("" if record.state == "saved" else "; send it again with edit or generate")
            )
        records.append(record)
    return records


def plan_resume(
    journal: Journal,
    ids: Sequence[int],
    *,
    retry_unsafe: bool,
    settings: Settings,
    dry_run: bool = False,
    leave: Mapping[int, NanoeditError | None] | None = None,
) -> ResumePlan:
    """Decide what to do with each unfinished job (``ids``: only those), taking each one up
    for this run; with ``dry_run``, only say what would be done, and change nothing.
    ``settings`` are the environment's: whether the sandbox is asked for, which backends are
    configured. Jobs of ``leave`` are not touched: those of a batch still at Google (None),
    and those a batch ended without, held with the error that says so."""
    plan = ResumePlan()
    leave = leave or {}
    for record in _records(journal, ids):
        if record.id in leave:
            said = leave[record.id]
            if said is not None:
                planned, _ = planned_from(record)
                plan.held.append(
                    JobOutcome(planned.job, record.backend, record.model, error=said,
                               sent=True, journal_id=record.id, left=record.state)
                )  # fmt: skip
                plan.steps.append(_step(record, "hold", said.message))
            continue
        owner = _other_owner(journal, record)
        if owner is None and not dry_run and not journal.take_up(record.id):
            # Another resume took it between the look and the claim.
            now = journal.get(record.id)
            if now is None or not now.unfinished:
                continue
            owner = _other_owner(journal, now) or 0
        if owner is not None:
            busy = f"under way in process {owner}; left to it"
            plan.busy.append(f"job {record.id} is {busy}")
            plan.steps.append(_step(record, "busy", busy))
            continue
        record, error = going_on(journal, record, retry_unsafe=retry_unsafe, write=not dry_run)
        error = error or _refusal(record, settings)
        threaded: PlannedJob | None = None
        if error is None:
            try:
                threaded = _rethreaded(journal, record)
            except InputError as exc:
                error = exc
        if error is not None:
            planned, _ = planned_from(record)
            plan.held.append(
                JobOutcome(
                    planned.job,
                    record.backend,
                    record.model,
                    error=error,
                    sent=record.state != PLANNED,
                    journal_id=record.id,
                    left=record.state,
                )
            )
            plan.steps.append(_step(record, "hold", error.message))
            continue
        planned, saving = planned_from(record)
        plan.groups.setdefault((saving, record.sandbox), []).append(threaded or planned)
        plan.steps.append(_going_step(record, settings))
    return plan


def _rethreaded(journal: Journal, record: JobRecord) -> PlannedJob | None:
    """A ``--continue`` job that is to be sent (again), with its thread read back from the
    journal: it is sent with the thread it was first planned with. None for any other job,
    and for one whose answer is known already (its results are saved, not asked for again).
    :class:`InputError` when a turn of the thread is no longer to be had as it was."""
    from nanoedit.journal.threads import build_thread, continues_of

    link = continues_of(record)
    if link is None or record.state != PLANNED:
        return None
    planned, _ = planned_from(record)
    thread = build_thread(journal, link["job"], link["result"])
    return replace(planned, job=replace(planned.job, thread=thread))


def going_on(
    journal: Journal, record: JobRecord, *, retry_unsafe: bool, write: bool = True
) -> tuple[JobRecord, NanoeditError | None]:
    """An unfinished job as it goes on: its spooled results adopted; a sandbox job whose
    tasks or result links died with its process, or a request that may have been charged
    with ``retry_unsafe``, sent again from the start. The error says why it is held instead
    (a request that may have been charged). With ``write`` False the journal is left as it
    is, and the record returned is what it would be."""
    record = journal.adopt_spooled(record, keep=write)
    # The in-process sandbox's tasks and links were in the memory of the run that made them;
    # sending the job to the sandbox again costs nothing.
    lost = record.tasks or any("url" in entry and "path" not in entry for entry in record.results)
    again = record.sandbox and (lost or record.may_have_been_charged)
    if record.may_have_been_charged and not again and not retry_unsafe:
        return record, _unsafe(record)
    if again or record.may_have_been_charged:
        if not write:
            return replace(record, state=PLANNED, tasks=(), results=()), None
        journal.replan(record.id)
        record = journal.get(record.id) or record
    return record, None


def _refusal(record: JobRecord, settings: Settings) -> NanoeditError | None:
    """Why a job cannot be sent where it belongs now, if it cannot: a real job while the
    sandbox is asked for, a backend no longer configured, a stream that cannot be read
    again."""
    label = _label(record)
    if not record.sandbox and settings.sandbox:
        return UsageError(
            f"job {record.id} ({label}) is for the real {record.backend} backend, and "
            "NANOEDIT_SANDBOX asks for the sandbox, so it is left as it is; unset "
            "NANOEDIT_SANDBOX to resume it"
        )
    if not record.sandbox and not settings.backend_settings(record.backend).configured:
        from nanoedit.backends.base import backend_class

        hint = backend_class(record.backend).setup_hint()
        return ConfigError(
            f"job {record.id} ({label}) is for the {record.backend} backend, which is not "
            f"configured; run: {hint}, then nanoedit resume {record.id}"
        )
    unreadable = [item["stream"] for item in record.spec["inputs"] if "stream" in item]
    if unreadable and record.state == PLANNED:
        return UsageError(
            f"job {record.id} reads its image from {unreadable[0]}, a stream that "
            "cannot be read again; send it again with edit"
        )
    return None


def _step(record: JobRecord, action: str, says: str) -> Step:
    return Step(
        record.id, _label(record), record.backend, record.model, record.sandbox, action, says
    )


def _going_step(record: JobRecord, settings: Settings) -> Step:
    """What is done with a job that goes on: its tasks collected, its results saved, or it is
    sent; and where to."""
    from nanoedit.backends.base import backend_class

    where = f"{record.backend} ({record.model})"
    if record.sandbox:
        where += " in the sandbox, which charges nothing"
    else:
        where += f" at {settings.backend_settings(record.backend).base_url}"
    pending = [entry for entry in record.results if "path" not in entry]
    if pending:
        kept = ", ".join(str(entry.get("url") or entry.get("spool")) for entry in pending)
        return _step(record, "save", f"save its result from {kept}")
    if record.tasks:
        ids = ", ".join(backend_class(record.backend).task_id(h) for h in record.tasks)
        return _step(record, "collect", f"collect task {ids} from {where}")
    return _step(record, "send", f"send it to {where}")


def _unsafe(record: JobRecord) -> NanoeditError:
    when = datetime.fromtimestamp(record.updated).astimezone().strftime("%Y-%m-%d %H:%M")
    return NetworkError(
        f"job {record.id} ({_label(record)}): its request went out at {when} and no answer "
        "came, so it may have been charged; check your account, then nanoedit resume "
        f"{record.id} --retry-unsafe sends it again"
    )


def carry_on(
    journal: Journal, record: JobRecord, planned: PlannedJob, *, retry_unsafe: bool
) -> JobOutcome | PlannedJob:
    """The same job met again by ``--skip-existing``, left unfinished by an earlier run: it
    goes on from where that run left it (its row, its tasks, its results), or, when its
    request may have been charged, is held back unless ``retry_unsafe``. When another live
    process has it under way, it is left to that process: this run waits for it."""
    if _other_owner(journal, record) is not None:
        return replace(planned, elsewhere=record.id)
    from nanoedit.journal.batches import batch_holding

    batch = batch_holding(journal, record.id)
    if batch is not None:
        # In a batch (--tier batch): sent, and the batch's to answer; never sent again here.
        note = f"job {record.id} is in {batch}, at Google: nanoedit resume saves it"
        return JobOutcome(planned.job, record.backend, record.model, skipped=True,
                          warnings=(note,), journal_id=record.id)  # fmt: skip
    record, error = going_on(journal, record, retry_unsafe=retry_unsafe)
    if error is not None:
        return JobOutcome(
            planned.job,
            record.backend,
            record.model,
            error=error,
            sent=True,
            journal_id=record.id,
            left=record.state,
        )
    return replace(planned, journal_id=record.id, tasks=record.tasks, results=record.results)


def after_other(
    journal: Journal,
    other: int,
    planned: PlannedJob,
    *,
    retry_unsafe: bool,
    claim: Callable[[PlannedJob], Claim],
) -> JobOutcome | PlannedJob | int:
    """What becomes, now, of a job this run left to another run's row ``other``: that row
    (or the row to wait for instead) while a live process has the job; else what
    ``--skip-existing`` makes of it in a run started now: its images, skipped; its row to go
    on with, taken up (its run died); or, when it ended without them, a row of this run's to
    send it under (``claim`` makes one, or names yet another run's)."""
    from nanoedit.output.images import existing_image
    from nanoedit.output.names import is_stream

    record = journal.get(other)
    if record is not None and record.unfinished:
        if _other_owner(journal, record) is not None or not journal.take_up(record.id):
            return other
        return carry_on(journal, record, planned, retry_unsafe=retry_unsafe)
    # An image the other run wrote to its stdout (-o -) is not this run's to give.
    streamed = planned.job.output is not None and is_stream(planned.job.output)
    if record is not None and record.state == SAVED and not streamed:
        found = [existing_image(path) for path in record.saved_paths]
        outputs = tuple(image for image in found if image is not None)
        if outputs and len(outputs) == len(found):
            return JobOutcome(
                planned.job,
                planned.backend,
                planned.model,
                outputs=outputs,
                skipped=True,
                journal_id=record.id,
            )
    claimed = claim(planned)
    if claimed.other is not None:
        return claimed.other
    return replace(planned, journal_id=claimed.id, elsewhere=None, tasks=(), results=())
