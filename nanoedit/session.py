"""The one place a run is wired: settings, plan, budget, journal, client, runner and report.

``edit``, ``generate``, ``fetch`` and ``resume`` are called with an :class:`Environment` (the
streams, the environment variables, the clock, argv) and plain values, raise NanoeditErrors and
return what became of the jobs; ``check`` and ``check_live`` probe the configured backends
(``config check``, ``models --live``). A face (the command line, a Python API) prints and
exits.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from nanoedit.clock import Clock
from nanoedit.errors import ExitCode, InputError, NanoeditError, OutputError, UsageError
from nanoedit.jobs import NO_DIALS, Dials, Job, JobOutcome, Options, RunOptions, exit_code_for

if TYPE_CHECKING:
    from rich.console import Console

    from nanoedit.catalog.pricing import BatchEstimate
    from nanoedit.journal.resumption import ResumePlan
    from nanoedit.journal.store import Journal
    from nanoedit.output.report import PlainConsole
    from nanoedit.run.budget import Budget
    from nanoedit.run.check import CheckResult
    from nanoedit.run.events import Events
    from nanoedit.run.interrupts import Stop
    from nanoedit.run.live import LiveResult
    from nanoedit.run.plan import Planned
    from nanoedit.settings.values import Settings


@dataclass(frozen=True)
class Environment:
    """What a run reads and writes outside its arguments: the standard streams (stdin or
    stdout None when the process started with it closed), the environment variables, the
    clock it reads the time and waits on, and the command line it was started with."""

    stdin: TextIO | None
    stdout: TextIO | None
    stderr: TextIO
    environ: Mapping[str, str]
    clock: Clock = field(default_factory=Clock)
    argv: Sequence[str] = ()
    stop: Stop | None = None  # Told from outside (an MCP cancel): the run drains.

    @classmethod
    def current(cls, clock: Clock | None = None) -> Environment:
        """This process's streams, variables and argv, as they are now (a test's runner may
        have replaced the streams), and ``clock`` or the real one."""
        return cls(sys.stdin, sys.stdout, sys.stderr, os.environ, clock or Clock(), tuple(sys.argv))

    def say(self, text: str) -> None:
        """One line on stderr, for a person."""
        self.stderr.write(f"{text}\n")
        self.stderr.flush()

    def warn(self, text: str) -> None:
        """A warning on stderr, in yellow on a terminal."""
        from nanoedit.output.report import error_console

        error_console(self.stderr).print(f"warning: {text}", style="yellow")


@dataclass(frozen=True)
class Asked:
    """What is asked of the model, as given: the prompt (``-`` reads stdin) or its file, the
    ratio and size (None: the settings decide), model, count, format, and preset (its template)."""

    prompt: str | None = None
    prompt_file: str | None = None
    ratio: str | None = None
    size: str | None = None
    model: str | None = None
    count: int = 1
    response_format: str = "url"
    dials: Dials = NO_DIALS
    preset: str | None = None


@dataclass(frozen=True)
class EditInputs:
    """An edit's jobs, as given: the inputs (one job each), the references sent with every
    job, a job file (``-``: stdin), whether folders are searched down, and ``-o``."""

    inputs: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()
    from_file: str | None = None
    recursive: bool = False
    output: Path | None = None
    continues: bool = False
    """``--continue``: each input (an earlier result: @last, @ID, @ID.N) is the last turn of
    a thread, and its job the next turn, sent with the thread where the backend converses."""


@dataclass(frozen=True)
class Finished:
    """What a run ended with: every job's outcome, the exit code, and whether a first Ctrl-C
    or SIGTERM stopped it sending (an interruption, though the jobs under way finished)."""

    outcomes: tuple[JobOutcome, ...]
    exit_code: int
    stopped: bool = False
    estimate: BatchEstimate | None = None
    """What the jobs were estimated to cost, where it was worked out (a dry run, a batch)."""


def edit(env: Environment, given: EditInputs, asked: Asked, run: RunOptions) -> Finished:
    """Edit each input of ``given`` as ``asked``."""
    check_stdin(given, asked)

    def make_jobs(options: Options, warn: Callable[[str], None]) -> list[Job]:
        from nanoedit.jobs import build_edit_jobs
        from nanoedit.journal.history import resolve_reference
        from nanoedit.run.batch import expand_inputs, read_job_file
        from nanoedit.run.presets import preset_finder

        def references(text: str) -> Path:
            # @last and @ID are looked up in the history this run's environment names.
            return resolve_reference(text, env.environ)

        refs = list(given.refs)
        if given.continues:
            return _continued_jobs(env, given, options)
        found = expand_inputs(list(given.inputs), recursive=given.recursive, warn=warn)
        jobs = build_edit_jobs(found, refs, options, given.output, references)
        if given.from_file is not None:
            name = "stdin" if given.from_file == "-" else given.from_file
            # A job file's paths start from its folder; stdin's from the current one.
            folder = "" if given.from_file == "-" else os.path.dirname(given.from_file)
            text = read_text(env, given.from_file, "the job file", "--from")
            jobs += read_job_file(
                name, text, options, refs, given.output, folder=folder, references=references,
                presets=preset_finder(env.environ),
            )  # fmt: skip
        if not jobs:
            raise UsageError("no input given; pass images to edit, or --from FILE")
        return jobs

    return _run(env, make_jobs, asked, run)


def _continued_jobs(env: Environment, given: EditInputs, options: Options) -> list[Job]:
    """The jobs of ``edit --continue``: one per input, each an earlier result that its job
    goes on from (the thread read back from the journal), with the --ref images it adds."""
    from dataclasses import replace

    from nanoedit.jobs import build_edit_jobs, is_history_reference
    from nanoedit.journal.history import SavedResult, resolve_result
    from nanoedit.journal.threads import thread_of

    if given.from_file is not None:
        raise UsageError(
            "--continue goes on from the earlier results named on the command line (@last, "
            "@ID, @ID.N), and --from reads jobs from a file; use one of them"
        )
    if not given.inputs:
        raise UsageError(
            "--continue needs the earlier result to go on from: edit @last --continue -p ..., "
            "or @ID, @ID.N (ids: nanoedit history)"
        )
    for text in given.inputs:
        if not is_history_reference(text):
            raise UsageError(
                f"--continue goes on from an earlier result, and {text} is not one; name it as "
                "@last, @ID or @ID.N (ids: nanoedit history), or leave out --continue to edit "
                f"{text} afresh"
            )
    saved: dict[str, SavedResult] = {}

    def references(text: str) -> Path:
        saved[text] = found = resolve_result(text, env.environ)
        return found.path

    jobs = []
    for text in given.inputs:
        (job,) = build_edit_jobs([text], list(given.refs), options, given.output, references)
        result = saved[text]
        jobs.append(replace(job, thread=thread_of(env.environ, result.job, result.result)))
    return jobs


def generate(env: Environment, output: Path | None, asked: Asked, run: RunOptions) -> Finished:
    """Make images from the prompt alone, written to ``output`` when it is given."""
    from nanoedit.jobs import build_generate_job

    return _run(env, lambda options, _warn: [build_generate_job(options, output)], asked, run)


def _run(
    env: Environment,
    make_jobs: Callable[[Options, Callable[[str], None]], list[Job]],
    asked: Asked,
    run: RunOptions,
) -> Finished:
    """Run edit's or generate's jobs: ``make_jobs`` makes them from what is asked of the
    model (the prompt, ratio, size, model, count and response format, resolved here)."""
    from nanoedit.startup import lasting_imports, preload

    clock = env.clock
    with lasting_imports():
        from nanoedit.net.inputs import RunInputs
        from nanoedit.output.report import Reporter
        from nanoedit.run.plan import Planner
        from nanoedit.run.presets import fill_prompts, preset_finder
        from nanoedit.run.threads import seen_from
        from nanoedit.settings.load import load_settings, wants_sandbox

        if not run.dry_run:
            # A dry run sends nothing, so it skips the HTTP stack (httpx: about 30 ms to import).
            from nanoedit.journal.recording import journal_run, open_journal
            from nanoedit.net.client import client_for
            from nanoedit.output.names import tidy_folders
            from nanoedit.run.interrupts import run_gently
            from nanoedit.run.runner import Runner

            # Loaded later (by the client's transport; by each job when its answer comes:
            # its cost, its provenance): here, with the rest, while the collector is paused
            # and no job is under way. The in-process sandbox needs no transport.
            preload("nanoedit.catalog.pricing", "nanoedit.output.provenance")
            try:
                local = wants_sandbox(run, env.environ)
            except NanoeditError:
                local = False  # a NANOEDIT_SANDBOX that is not a boolean: said just below
            if not local:
                preload("httpcore")
    with ExitStack() as closing:
        prompt = _prompt_text(env, asked.prompt, asked.prompt_file, run.quiet)
        with lasting_imports():
            # The settings import the backend the run names (with auto, those they look at).
            settings = load_settings(env.environ, run, ratio=asked.ratio, size=asked.size)
        model = asked.model.strip() if asked.model else None
        options = Options(
            prompt=prompt,
            ratio=settings.ratio,
            size=settings.size,
            model=model or None,
            count=asked.count,
            response_format=asked.response_format,
            dials=asked.dials,
            preset=asked.preset,
        )
        # What expanding the inputs left out, said once the reporter is there to say it.
        notes: list[str] = []
        jobs = seen_from(make_jobs(options, notes.append), settings.sandbox, notes.append)
        jobs = fill_prompts(jobs, preset_finder(env.environ))
        if any(not job.options.prompt for job in jobs):
            raise UsageError('the prompt is empty; say what you want with -p "..."')
        check_stdout(env, jobs, run)
        if run.report is not None:
            from nanoedit.output.contact_sheet import check_report_path

            if run.dry_run:
                raise UsageError(
                    "--report shows the images a run made, and --dry-run makes none; drop one"
                )
            check_report_path(run.report)
        viewer = None
        if run.preview or run.open_images:
            from nanoedit.output.preview import Viewer, choose_protocol

            viewer = Viewer(
                preview=run.preview,
                open_images=run.open_images,
                protocol=choose_protocol(settings.preview_protocol, env.environ),
                open_command=settings.open_command,
            )
        started, when = clock.monotonic(), clock.now().astimezone()
        with Reporter(
            env.stdout,
            env.stderr,
            json_lines=run.json_lines,
            quiet=run.quiet,
            print0=run.print0,
            viewer=viewer,
        ) as reporter:
            for text in [*settings.warnings, *notes]:
                reporter.warning(text)
            if run.dry_run and env.stdout is None:
                # Started with stdout closed: nowhere to print the plan.
                return Finished((), ExitCode.OUTPUT_CLOSED)
            inputs = RunInputs(reporter.warning)
            # Opened before planning: --skip-existing finds earlier work in it.
            journal = None if run.dry_run else open_journal(settings, reporter.warning)
            if journal is not None:
                # Closed, not left to the exit: closing folds its log into the database, so
                # the next run does not have to read the log back.
                closing.callback(journal.close)
            planner = Planner(settings, run, inputs, reporter.warning, journal=journal)
            planned = planner.plan(jobs)
            budget, estimate = _budget(planned, settings, run, reporter.console)
            stopped = False
            if run.dry_run:
                from nanoedit.run.dryrun import print_plan

                assert env.stdout is not None
                outcomes = print_plan(planned, settings, env.stdout, reporter, run.json_lines)
            else:
                binary = env.stdout.buffer if env.stdout is not None else None
                with client_for(settings, pool=run.jobs, clock=clock) as client:
                    tidy_folders(jobs, settings.out_dir, clock.now().timestamp())
                    if journal is not None:
                        journal.tidy_spool(clock.now().timestamp())
                        planned = journal_run(
                            journal, planned, settings, run, inputs.sha256, planner.seen
                        )
                    runner = Runner(
                        settings, client, reporter, run, inputs, stdout=binary, clock=clock,
                        journal=journal, budget=budget,
                    )  # fmt: skip
                    outcomes = run_gently(runner, planned, reporter, journal, env.stop)
                    stopped = runner.draining.is_set()
        if reporter.gone and not run.dry_run:
            return _closed_stdout(env, outcomes, run.quiet, reporter.write_error)
        if not run.dry_run:
            reporter.summary(outcomes)
        if run.report is not None:
            from nanoedit.output.contact_sheet import save_run_page

            save_run_page(run.report, outcomes, when, clock.monotonic() - started)
            if not run.quiet:
                reporter.console.print(f"wrote the report {run.report}")
    # A first Ctrl-C or SIGTERM let the jobs under way finish: still an interruption.
    code = ExitCode.INTERRUPTED if stopped else exit_code_for(outcomes)
    return Finished(tuple(outcomes), code, stopped=stopped, estimate=estimate)


def _budget(
    planned: Sequence[Planned],
    settings: Settings,
    run: RunOptions,
    console: Console | PlainConsole,
) -> tuple[Budget | None, BatchEstimate | None]:
    """Say what the batch is estimated to cost (on a dry run, and before a batch), refuse it
    when it is over --max-cost, and return what keeps the run within its limits, and the
    estimate (None when none was needed)."""
    from nanoedit.jobs import PlannedJob

    sent = [entry for entry in planned if isinstance(entry, PlannedJob)]
    said = bool(sent) and not run.quiet and (run.dry_run or len(sent) > 1)
    if not said and run.max_cost is None and run.max_images is None:
        return None, None  # nothing to say or keep: one job pays no price table's import
    from nanoedit.catalog.pricing import Prices, batch_estimate
    from nanoedit.run.budget import Budget, check_estimate

    prices = Prices(settings.prices, settings.catalog)
    estimate = batch_estimate(sent, prices)
    if said:
        console.print(estimate.describe())  # the console reads no markup
    check_estimate(estimate, run.max_cost)
    if run.max_cost is None and run.max_images is None:
        return None, estimate
    return Budget(prices, max_cost=run.max_cost, max_images=run.max_images), estimate


def check_stdout(env: Environment, jobs: Sequence[Job], run: RunOptions) -> None:
    """Refuse, before anything is sent, what cannot go with an image written to stdout."""
    from nanoedit.output.names import STDOUT

    if run.print0 and run.json_lines:
        raise UsageError("--print0 ends paths with NUL, --json prints JSON lines; use one of them")
    if not any(job.output == STDOUT for job in jobs):
        return
    if run.json_lines:
        raise UsageError(
            "-o - writes the image itself to stdout, so --json has nowhere to go; "
            "give -o FILE, or leave out --json"
        )
    if not run.dry_run and env.stdout is not None and env.stdout.isatty():
        raise UsageError(
            "-o - would write the image's binary bytes to the terminal; redirect stdout "
            "(-o - > out.png, or into a program with |), or give -o FILE"
        )


def _prompt_text(env: Environment, prompt: str | None, prompt_file: str | None, quiet: bool) -> str:
    """The prompt as given with -p, or read whole from stdin (``-p -``) or --prompt-file."""
    if prompt is not None and prompt_file is not None:
        raise UsageError("-p and --prompt-file both give the prompt; use one of them")
    if prompt != "-" and prompt_file is None:
        return (prompt or "").strip()
    path = prompt_file if prompt_file is not None else "-"
    if path == "-" and env.stdin is not None and env.stdin.isatty() and not quiet:
        env.say("reading the prompt from stdin; end it with Ctrl-D")
    text = read_text(env, path, "the prompt file", "--prompt-file").removeprefix("\ufeff").strip()
    if not text:
        if path == "-":
            raise UsageError("the prompt read from stdin is empty; pipe the prompt in, or use -p")
        raise UsageError(f"the prompt file {path} is empty; write the prompt in it")
    return text


def read_text(env: Environment, path: str, what: str, flag: str) -> str:
    """A text file's content, or all of stdin for ``-``; ``what`` and ``flag`` name it."""
    if path == "-":
        if env.stdin is None:  # started with stdin closed (<&-)
            raise InputError(f"stdin is closed, so {flag} - has nothing to read; pipe it in")
        return env.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist; check the {flag} path") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise InputError(f"{what} {path} cannot be read ({reason})") from None


def check_stdin(given: EditInputs, asked: Asked) -> None:
    """Refuse an edit that reads stdin more than once: it can be read only once."""
    uses = [
        *["INPUT -"] * given.inputs.count("-"),
        *["--ref -"] * given.refs.count("-"),
        *(["--from -"] if given.from_file == "-" else []),
        *(["-p -"] if asked.prompt == "-" else []),
        *(["--prompt-file -"] if asked.prompt_file == "-" else []),
    ]  # fmt: skip
    if len(uses) > 1:
        both = "both" if len(uses) == 2 else "all"
        raise UsageError(
            f"{', '.join(uses[:-1])} and {uses[-1]} {both} read stdin, which can be read only "
            "once; save all but one of them to a file and name it"
        )


def _closed_stdout(
    env: Environment, outcomes: Sequence[JobOutcome], quiet: bool, write_error: str | None = None
) -> Finished:
    """stdout was closed during the run: one line on what became of the jobs, and 141. When
    it could not be written (``write_error``: a full disk...), an error, and 4."""
    unsent = sum(1 for outcome in outcomes if outcome.held_back)
    saved = sum(len(outcome.outputs) for outcome in outcomes)
    images = "image" if saved == 1 else "images"
    jobs = "job" if unsent == 1 else "jobs"
    if write_error is not None:
        not_sent = f", {unsent} {jobs} not sent" if unsent else ""
        raise OutputError(
            f"could not write to stdout ({write_error}){not_sent}; {saved} {images} saved"
        )
    if unsent and not quiet:
        env.say(f"stopped: stdout was closed; {unsent} {jobs} not sent, {saved} {images} saved")
    return Finished(tuple(outcomes), ExitCode.OUTPUT_CLOSED)


def fetch(
    env: Environment,
    backend: str,
    task_ids: Sequence[str],
    *,
    model: str | None,
    output: Path | None,
    run: RunOptions,
) -> Finished:
    """Save the results of the tasks ``task_ids``, submitted elsewhere to ``backend``."""
    from nanoedit.net.client import client_for
    from nanoedit.output.report import Reporter
    from nanoedit.run.fetch import Fetcher, plan_fetch
    from nanoedit.settings.load import load_settings

    settings = load_settings(env.environ, run)
    tasks = plan_fetch(
        settings,
        backend,
        task_ids,
        model=model.strip() if model and model.strip() else None,
        output=output,
        overwrite=run.overwrite,
    )
    check_stdout(env, [task.job for task in tasks], run)
    with (
        client_for(settings, clock=env.clock) as client,
        Reporter(env.stdout, env.stderr, json_lines=run.json_lines, quiet=run.quiet) as reporter,
    ):
        for text in settings.warnings:
            reporter.warning(text)
        binary = env.stdout.buffer if env.stdout is not None else None
        fetcher = Fetcher(settings, client, reporter, run, stdout=binary, clock=env.clock)
        outcomes = fetcher.fetch(tasks)
    if reporter.gone:
        return _closed_stdout(env, outcomes, quiet=True, write_error=reporter.write_error)
    reporter.summary(outcomes)
    return Finished(tuple(outcomes), exit_code_for(outcomes))


def resume(env: Environment, ids: Sequence[int], run: RunOptions) -> Finished:
    """Finish the jobs ``ids`` (none: every unfinished job) where their runs left them; with
    ``run.dry_run``, print what would be done with each, and do nothing."""
    from nanoedit.journal.recording import open_journal
    from nanoedit.journal.resumption import plan_resume
    from nanoedit.output.report import Reporter
    from nanoedit.settings.load import load_settings

    settings = load_settings(env.environ, run)
    if not settings.history:
        raise UsageError(
            "history is off (history.enabled false), so there is no journal to resume from"
        )
    # Come to read the journal: a damaged one fails, as history does (exit 4).
    journal = open_journal(settings, env.warn, start_new=False)
    if journal is None:
        return Finished((), ExitCode.CONFIG)
    with journal:
        if not run.dry_run:
            # The run that takes the jobs up: a job it has is not another process's to send.
            journal.begin_run(env.argv)
        plan = plan_resume(
            journal, ids, retry_unsafe=run.retry_unsafe, settings=settings, dry_run=run.dry_run
        )
        if run.dry_run:
            _print_steps(env, plan, run.json_lines)
            return Finished((), ExitCode.OK)
        for note in plan.busy:
            env.warn(note)
        if not plan.jobs and not plan.held:
            if not run.quiet:
                env.say(_nothing_to_resume(len(plan.busy)))
            return Finished((), ExitCode.OK)
        if plan.jobs and not run.quiet:
            env.say(plan.heading())
        binary = env.stdout.buffer if env.stdout is not None else None
        with Reporter(
            env.stdout, env.stderr, json_lines=run.json_lines, quiet=run.quiet, print0=False
        ) as reporter:
            outcomes = _run_resume(journal, plan, run, reporter, env, binary)
        reporter.summary(outcomes)
    return Finished(tuple(outcomes), exit_code_for(outcomes))


def _run_resume(
    journal: Journal,
    plan: ResumePlan,
    run: RunOptions,
    events: Events,
    env: Environment,
    stdout: BinaryIO | None,
) -> list[JobOutcome]:
    """Run the resumed jobs, one runner per way of saving (and per sandbox or not), and
    return every outcome (those held back first)."""
    import dataclasses

    from nanoedit.net.client import client_for
    from nanoedit.net.inputs import RunInputs
    from nanoedit.output.names import tidy_folders
    from nanoedit.run.interrupts import run_gently
    from nanoedit.run.runner import Runner
    from nanoedit.settings.load import load_settings

    clock = env.clock
    journal.tidy_spool(clock.now().timestamp())
    outcomes = list(plan.held)
    for outcome in plan.held:
        events.job_finished(outcome)
    for (saving, sandbox), planned in plan.groups.items():
        options = dataclasses.replace(
            run,
            out_dir=saving.out_dir,
            metadata=saving.metadata,
            sidecar=saving.sidecar,
            overwrite=saving.overwrite,
            sandbox=sandbox,
        )
        # A real job is never planned here while the sandbox is asked for (see _refusal).
        settings = load_settings(env.environ, options)
        # What killed runs (a killed resume among them) left in these jobs' folders.
        tidy_folders((job.job for job in planned), saving.out_dir, clock.now().timestamp())
        with client_for(settings, pool=options.jobs, clock=clock) as client:
            runner = Runner(
                settings, client, events, options, RunInputs(events.warning),
                stdout=stdout, clock=clock, journal=journal,
            )  # fmt: skip
            outcomes += run_gently(runner, planned, events, journal, env.stop)
    return outcomes


def _print_steps(env: Environment, plan: ResumePlan, json_lines: bool) -> None:
    """What ``resume --dry-run`` would do with each job, one line (or JSON object) each."""
    if not plan.steps:
        env.say("nothing to resume: every job in the history has ended")
    if env.stdout is None:
        return
    for step in plan.steps:
        if json_lines:
            import json

            env.stdout.write(json.dumps(step.to_json(), ensure_ascii=False) + "\n")
        else:
            env.stdout.write(step.line() + "\n")
        env.stdout.flush()


def _nothing_to_resume(busy: int) -> str:
    """What resume says when it has nothing to do: every job ended, or the unfinished ones
    are another live process's."""
    if not busy:
        return "nothing to resume: every job in the history has ended"
    jobs = "job is" if busy == 1 else "jobs are"
    return f"nothing to resume now: the {busy} unfinished {jobs} under way in other processes"


@dataclass(frozen=True)
class Checked:
    """What ``config check`` found: each configured backend's answer, and the exit code."""

    results: tuple[CheckResult, ...]
    exit_code: ExitCode


def check(env: Environment, *, sandbox: bool) -> Checked:
    """Probe each configured backend with one cheap request, warning first of what the
    settings say is amiss (a readable config file, a key sent over plain http...)."""
    from nanoedit.net.client import client_for
    from nanoedit.run.check import check_backends, check_exit_code
    from nanoedit.settings.load import backend_warnings, load_settings

    settings = load_settings(env.environ, RunOptions(sandbox=sandbox))
    for warning in settings.warnings:
        env.warn(warning)
    for backend in settings.backends.values():
        for warning in backend_warnings(backend):
            env.warn(warning)
    with client_for(settings, clock=env.clock) as client:
        results = check_backends(settings, client)
    return Checked(tuple(results), check_exit_code(results))


@dataclass(frozen=True)
class CheckedLive:
    """What ``models --live`` read: each backend's lineup against the catalog, the exit code,
    how many (free) listing requests it took, and where what was read is kept (None: not
    kept, as for the sandbox)."""

    results: tuple[LiveResult, ...]
    exit_code: ExitCode
    requests: int
    cache: Path | None
    sandbox: bool


def check_live(env: Environment, names: Sequence[str], *, sandbox: bool) -> CheckedLive:
    """Ask each backend of ``names`` what it serves today, compare it with the catalog, and
    keep the ratios and sizes read for later runs' checks (not the sandbox's)."""
    from nanoedit.catalog.livecache import cache_path
    from nanoedit.net.client import client_for
    from nanoedit.run.check import CHECK_TIMEOUT
    from nanoedit.run.live import check_backends, live_exit_code, write_cache
    from nanoedit.settings.load import load_settings

    # Compared with the catalog and the config file's corrections, not with this cache.
    settings = load_settings(env.environ, RunOptions(sandbox=sandbox), live_cache=False)
    for warning in settings.warnings:
        env.warn(warning)
    with client_for(settings, clock=env.clock) as client:
        results = check_backends(
            settings, client, settings.catalog, tuple(names), timeout=CHECK_TIMEOUT
        )
    cache = None if settings.sandbox else cache_path(env.environ)
    try:
        if cache is not None and not write_cache(cache, results, env.clock.now()):
            cache = None
    except OSError as exc:
        env.warn(
            f"could not keep what was read in {cache} ({exc.strerror or exc}); later runs check "
            "ratios and sizes against the catalog alone"
        )
        cache = None
    requests = sum(result.requests for result in results)
    return CheckedLive(tuple(results), live_exit_code(results), requests, cache, settings.sandbox)
