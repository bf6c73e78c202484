"""Where a run's planned jobs go: the runner (one request each), or ``--tier batch``'s
batches (:mod:`nanoedit.run.batch_tier`); and resume's part in batches: each batch the
journal has open is taken to its end before resume plans the other jobs."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, BinaryIO, TextIO

from nanoedit.errors import ApiError, NanoeditError, UsageError
from nanoedit.jobs import JobOutcome, PlannedJob, RunOptions

if TYPE_CHECKING:
    import httpx

    from nanoedit.clock import Clock
    from nanoedit.journal.batches import BatchRecord
    from nanoedit.journal.store import Journal
    from nanoedit.net.inputs import RunInputs
    from nanoedit.run.batch_tier import BatchTier
    from nanoedit.run.budget import Budget
    from nanoedit.run.events import Events
    from nanoedit.run.interrupts import Stop
    from nanoedit.run.plan import Planned
    from nanoedit.settings.values import Settings


def run_planned(
    settings: Settings,
    client: httpx.Client,
    events: Events,
    run: RunOptions,
    inputs: RunInputs,
    stdout: BinaryIO | None,
    clock: Clock,
    journal: Journal | None,
    budget: Budget | None,
    planned: Sequence[Planned],
    stop: Stop | None,
    say: Callable[[str], None],
) -> tuple[list[JobOutcome], bool]:
    """Run the planned jobs at the run's tier; their outcomes, and whether a first Ctrl-C or
    SIGTERM stopped the run sending."""
    from nanoedit.run.interrupts import run_gently
    from nanoedit.run.runner import Runner

    if run.tier == "batch":
        return run_batch(settings, client, events, run, inputs, stdout, clock, journal,
                         planned, stop, say), False  # fmt: skip
    runner = Runner(
        settings, client, events, run, inputs, stdout=stdout, clock=clock, journal=journal,
        budget=budget,
    )  # fmt: skip
    outcomes = run_gently(runner, planned, events, journal, stop)
    return outcomes, runner.draining.is_set()


def run_batch(
    settings: Settings,
    client: httpx.Client,
    events: Events,
    run: RunOptions,
    inputs: RunInputs,
    stdout: BinaryIO | None,
    clock: Clock,
    journal: Journal | None,
    planned: Sequence[Planned],
    stop: Stop | None,
    say: Callable[[str], None],
) -> list[JobOutcome]:
    """Send the jobs as batches; with ``--detach`` return once they are submitted, else wait
    for each, collect it and save its jobs' images."""
    from nanoedit.run.batch_tier import BatchTier, check_batchable

    jobs = [entry for entry in planned if isinstance(entry, PlannedJob)]
    ended = [entry for entry in planned if not isinstance(entry, PlannedJob)]
    if jobs and journal is None:
        raise UsageError(
            "--tier batch keeps its batch in the history, to collect it later; leave out "
            "--no-history (or set history.enabled true)"
        )
    check_batchable(jobs, settings)
    if jobs and run.detach and settings.sandbox:
        # The in-process sandbox ends with this process, and its batch with it.
        raise UsageError(
            "--detach leaves the batch for a later nanoedit resume, and --sandbox's emulated "
            "server ends with this run; leave out --detach, or run `nanoedit sandbox serve` "
            "and point the gemini backend at it (gemini.base_url)"
        )
    for outcome in ended:
        events.job_finished(outcome)
    if not jobs:
        return ended
    assert journal is not None
    tier = BatchTier(settings, client, events, run, inputs, clock=clock, journal=journal, say=say)
    # A job an earlier batch has (--skip-existing found it) is that batch's, never sent twice;
    # one whose results an earlier run has is saved from them.
    batched = tier.batches.job_ids()
    held = [entry for entry in jobs if entry.journal_id in batched]
    going_on = [entry for entry in jobs if entry.results and entry not in held]
    jobs = [entry for entry in jobs if entry not in held and entry not in going_on]
    for entry in held:
        note = f"{entry.job.label}: in a batch still at Google; nanoedit resume saves it"
        ended.append(JobOutcome(entry.job, entry.backend, entry.model, skipped=True,
                                warnings=(note,), journal_id=entry.journal_id))  # fmt: skip
        events.job_finished(ended[-1])
    if going_on:
        from nanoedit.run.interrupts import run_gently
        from nanoedit.run.runner import Runner

        runner = Runner(settings, client, events, run, inputs, stdout=stdout, clock=clock,
                        journal=journal)  # fmt: skip
        ended += run_gently(runner, going_on, events, journal, stop)
    if not jobs:
        return ended
    try:
        records = tier.submit(jobs)
    except KeyboardInterrupt:
        say("stopped before the batch was submitted: nanoedit resume builds and submits it")
        raise
    if run.detach:
        for record in records:
            say(
                f"detached: {record.name} holds {len(record.jobs)} jobs; collect and save "
                "them with: nanoedit resume"
            )
        return ended
    by_id = {entry.journal_id: entry for entry in jobs if entry.journal_id is not None}
    return ended + _finish(tier, records, by_id, stdout, stop)


def _finish(
    tier: BatchTier,
    records: Sequence[BatchRecord],
    planned: dict[int, PlannedJob],
    stdout: BinaryIO | None,
    stop: Stop | None,
) -> list[JobOutcome]:
    """Wait for each batch, collect it, save its answered jobs through the runner."""
    from nanoedit.run.batch_tier import ended_early, is_ended_early, not_done, outcomes_after
    from nanoedit.run.interrupts import run_gently
    from nanoedit.run.runner import Runner

    outcomes: list[JobOutcome] = []
    for record in records:
        try:
            record = tier.wait(record)
        except KeyboardInterrupt:
            tier.say(f"stopped waiting: {record.name} goes on at Google; nanoedit resume saves it")
            raise
        if not record.state or record.state in ("pending", "running"):
            tier.say(f"{record.name} goes on at Google; nanoedit resume collects it")
            continue
        collected = tier.collect(record)
        record = tier.batches.get(record.token) or record
        if is_ended_early(record):
            missing = not_done(tier.journal, record)
            if missing:
                tier.events.warning(ended_early(record, missing))
        to_save, failed = outcomes_after(tier.journal, record, planned, collected)
        for outcome in failed:
            tier.events.job_finished(outcome)
        outcomes += failed
        if to_save:
            runner = Runner(
                tier.settings, tier.client, tier.events, tier.options, tier.pipeline.inputs,
                stdout=stdout, clock=tier.clock, journal=tier.journal,
            )  # fmt: skip
            outcomes += run_gently(runner, to_save, tier.events, tier.journal, stop)
    return outcomes


def settle_batches(
    journal: Journal,
    settings: Settings,
    client: httpx.Client,
    events: Events,
    run: RunOptions,
    clock: Clock,
    stdin: TextIO | None,
    say: Callable[[str], None],
) -> dict[int, NanoeditError | None]:
    """Take every batch the journal has open to its end (build and submit what a killed run
    left, poll, read the results into the jobs), before resume plans the jobs; returns the
    jobs resume must leave alone: those of batches still running (None), and those a batch
    ended without (with the error that lists them) unless ``run.resend`` (asked on a
    terminal) sends them again."""
    from nanoedit.journal.batches import BUILDING, OPEN
    from nanoedit.journal.recording import planned_from
    from nanoedit.net.inputs import RunInputs
    from nanoedit.run.batch_tier import (
        BATCHES,
        BatchTier,
        ended_early,
        is_ended_early,
        not_done,
    )

    tier = BatchTier(settings, client, events, run, RunInputs(events.warning), clock=clock,
                     journal=journal, say=say)  # fmt: skip
    leave: dict[int, NanoeditError | None] = {}
    for record in tier.batches.all():
        if record.state in OPEN and record.backend == BATCHES:
            owner = _live_owner(journal, record)
            if owner is not None:
                say(f"{record.shown} is under way in process {owner}; left to it")
                leave.update(dict.fromkeys(record.jobs))
                continue
            # Taken up by this run: another resume started now leaves it to this one.
            record = tier.batches.update(record.token, run=journal.run_id)
            planned: dict[int | None, PlannedJob] = {}
            # Only a batch still to build needs its jobs (10,000 records are tens of MB).
            for ident in record.jobs if record.state == BUILDING else ():
                found = journal.get(ident)
                if found is not None:
                    planned[ident], _ = planned_from(found)
            record = tier.send(record, planned)
            record = tier.wait(record)
            if record.state in ("pending", "running"):
                leave.update(dict.fromkeys(record.jobs))
                continue
            tier.collect(record)
            record = tier.batches.get(record.token) or record
        if not is_ended_early(record):
            continue
        missing = not_done(journal, record)
        if not missing:
            continue
        if run.resend and _consents(stdin, events, len(missing), record.shown):
            for ident in missing:
                journal.replan(ident)
            continue
        error = ApiError(ended_early(record, missing))
        leave.update(dict.fromkeys(missing, error))
    return leave


def _live_owner(journal: Journal, record: BatchRecord) -> int | None:
    """The live process, other than this one, whose run has the batch under way."""
    import os

    from nanoedit.output.parts import process_alive

    if record.run is None or record.run == journal.run_id:
        return None
    pid = journal.run_pid(record.run)
    if pid is None or pid == os.getpid() or not process_alive(pid):
        return None
    return pid


def _consents(stdin: TextIO | None, events: Events, jobs: int, shown: str) -> bool:
    """On a terminal, ask before sending again; elsewhere ``--resend`` is the consent."""
    if stdin is None or not stdin.isatty():
        return True
    events.warning(f"send the {jobs} jobs {shown} did not do again, at the standard tier? [y/N]")
    return stdin.readline().strip().lower() in ("y", "yes")


def settle(
    journal: Journal,
    settings: Settings,
    run: RunOptions,
    clock: Clock,
    stdin: TextIO | None,
    stderr: TextIO,
) -> dict[int, NanoeditError | None]:
    """:func:`settle_batches` for ``resume``, with a client of its own and what it says on
    ``stderr``; nothing is sent when the journal has no batch. A dry run sends nothing: the
    jobs of the batches not collected are left alone (``nanoedit batches`` lists them)."""
    from nanoedit.journal.batches import Batches
    from nanoedit.net.client import client_for
    from nanoedit.output.report import Reporter

    if run.dry_run:
        from nanoedit.journal.batches import open_job_ids

        return dict.fromkeys(open_job_ids(journal))
    if not Batches(journal).all():
        return {}

    def say(text: str) -> None:
        if not run.quiet:
            stderr.write(f"{text}\n")
            stderr.flush()

    # The reporter only warns here: what the batches give is saved, and reported, by resume.
    with (
        client_for(settings, clock=clock) as client,
        Reporter(io.StringIO(), stderr, json_lines=False, quiet=run.quiet) as events,
    ):
        return settle_batches(journal, settings, client, events, run, clock, stdin, say)
