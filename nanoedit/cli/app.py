"""The command line: parse arguments, call the core, print. Nothing here builds a request.

Heavy modules (httpx, Pillow, rich progress) are imported inside the commands, so
``nanoedit --help`` and ``nanoedit --version`` stay fast.
"""

# No `from __future__ import annotations` here, unlike elsewhere: typer reads every
# command's signature each time the program starts, and annotations kept as strings would
# have to be evaluated again every time (3 of every 5 ms it takes).

import copy
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer._click.core import Context as ParserContext
from typer._click.exceptions import UsageError as ParserError
from typer._types import TyperChoice
from typer.core import TyperGroup
from typer.main import get_command_name
from typer.models import CommandInfo

from nanoedit import __version__
from nanoedit.clock import Clock
from nanoedit.errors import ExitCode, InputError, NanoeditError, OutputError, UsageError
from nanoedit.jobs import (
    DEFAULT_COUNT,
    DEFAULT_JOBS,
    DEFAULT_RESPONSE_FORMAT,
    WHOLE_RUN,
    Job,
    JobOutcome,
    Options,
    RunOptions,
    exit_code_for,
)

if TYPE_CHECKING:
    from rich.console import Console

    from nanoedit.journal.records import JobRecord
    from nanoedit.journal.store import Journal
    from nanoedit.output.report import PlainConsole
    from nanoedit.run.budget import Budget
    from nanoedit.run.plan import Planned
    from nanoedit.run.resume import ResumePlan
    from nanoedit.settings.values import Settings


class Ratio(StrEnum):
    """Aspect ratios the models render."""

    auto = "auto"
    r1_1 = "1:1"
    r2_3 = "2:3"
    r3_2 = "3:2"
    r3_4 = "3:4"
    r4_3 = "4:3"
    r4_5 = "4:5"
    r5_4 = "5:4"
    r9_16 = "9:16"
    r16_9 = "16:9"
    r21_9 = "21:9"
    r1_4 = "1:4"
    r4_1 = "4:1"
    r1_8 = "1:8"
    r8_1 = "8:1"


class BackendNames(TyperChoice[str]):
    """``--backend``'s choices: ``auto`` and every registered backend, read from the registry
    only when a command needs them, so a plain ``--help`` does not load it."""

    def __init__(self) -> None:
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> Sequence[str]:
        """``auto``, then the backends in registry order."""
        from nanoedit.registry import backend_names

        return ("auto", *backend_names())

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        """The base class sets the choices it was given; these come from the registry."""


class ResponseFormat(StrEnum):
    """How the multipart backend returns images."""

    url = "url"
    b64_json = "b64_json"


DEFAULT_FORMAT = ResponseFormat(DEFAULT_RESPONSE_FORMAT)


# Where the top group notes whether --json was given, for errors raised further down.
_JSON_GIVEN = "nanoedit.json"


@contextmanager
def _parser_errors_as_json(json_out: bool) -> Iterator[None]:
    """With --json, a usage error the parser catches itself (a bad value, an unknown option)
    also gives the one JSON error object on stdout; the parser still prints its text."""
    try:
        yield
    except ParserError as exc:
        if json_out:
            import json

            error = {"kind": "usage", "message": exc.format_message(), "exit_code": exc.exit_code}
            typer.echo(json.dumps({"ok": False, "error": error}, ensure_ascii=False))
        raise


def _stdout_closed() -> NoReturn:
    """End as a Unix tool does when stdout's reader went away (``| head -1``): quietly, with
    141. stdout is pointed at the null device first, so that leaving does not fail again."""
    from nanoedit.stdio import to_devnull

    to_devnull(sys.stdout)
    raise typer.Exit(ExitCode.OUTPUT_CLOSED)


@contextmanager
def _reader_may_leave() -> Iterator[None]:
    """A closed pipe on stdout, wherever it is written (a list, help, a completion script),
    ends the command with 141; the parser's own answer to it would be exit 1."""
    try:
        yield
    except BrokenPipeError:
        _stdout_closed()


class _Commands(TyperGroup):
    """The top command group: every parser error of nanoedit and its commands passes here,
    and so does a stdout whose reader left."""

    def parse_args(self, ctx: ParserContext, args: list[str]) -> list[str]:
        """Parse the group's own options, noting --json for the command's parser."""
        # A command's options are parsed inside invoke(); ctx.meta is shared with its context.
        ctx.meta[_JSON_GIVEN] = "--json" in args
        with _reader_may_leave(), _parser_errors_as_json(ctx.meta[_JSON_GIVEN]):
            return super().parse_args(ctx, args)

    def invoke(self, ctx: ParserContext) -> Any:
        """Run the command, its own parsing included."""
        with _reader_may_leave(), _parser_errors_as_json(bool(ctx.meta.get(_JSON_GIVEN))):
            return super().invoke(ctx)


app = typer.Typer(
    name="nanoedit",
    cls=_Commands,
    help="Edit and generate images with Google's nano-banana models through reseller APIs.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Locals in a traceback could hold an API key: never show them.
    pretty_exceptions_show_locals=False,
    # Plain help: rich's formatter pulls in markdown-it and costs ~100 ms on every --help.
    rich_markup_mode=None,
)
config_app = typer.Typer(
    help="Show and change settings: backends, keys, defaults.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
sandbox_app = typer.Typer(
    help="The built-in emulated API server: no key, no network, no cost.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
history_app = typer.Typer(
    help="Jobs sent before: list, show, search, their cost, a page of them.",
    invoke_without_command=True,
    rich_markup_mode=None,
)
app.add_typer(config_app, name="config")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(history_app, name="history")

PromptOpt = Annotated[
    str | None,
    typer.Option(
        "--prompt",
        "-p",
        metavar="TEXT",
        help="What to make, in words; - reads it from stdin.",
        show_default=False,
    ),
]
PromptFileOpt = Annotated[
    str | None,
    typer.Option(
        "--prompt-file",
        metavar="FILE",
        help="Read the prompt from FILE (UTF-8 text; - for stdin) instead of -p.",
        show_default=False,
    ),
]
RatioOpt = Annotated[
    Ratio | None,
    typer.Option(
        "--ratio",
        help="Aspect ratio of the result (default: auto, or default.ratio).",
        show_default=False,
    ),
]


def _complete_size(incomplete: str) -> list[str]:
    from nanoedit.jobs import SIZES

    return [size for size in SIZES if size.startswith(incomplete.upper())]


# Checked by default.size's rule when the settings are loaded, so that a wrong one is named
# as written (1K, 2K, 4K), which a case-insensitive choice would list in lower case.
SizeOpt = Annotated[
    str | None,
    typer.Option(
        "--size",
        metavar="512|1K|2K|4K",
        show_default=False,
        help="Resolution of the result, any case (3.x models; 512 on 3.1 Flash only).",
        autocompletion=_complete_size,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        metavar="ID",
        help="An alias (nano-banana, nano-banana-pro, nano-banana-2, nano-banana-2.1, "
        "nano-banana-2-lite), Google's id or the backend's own: sent as the backend names the "
        "model (nanoedit models); a shut-down id is refused; an unknown id is sent as given.",
        show_default=False,
    ),
]
CountOpt = Annotated[
    int, typer.Option("--count", "-n", min=1, max=10, metavar="N", help="Images per job.")
]
BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        click_type=BackendNames(),
        show_default=False,
        help="Which API to use (default: NANOEDIT_BACKEND, default.backend, or auto: by inputs).",
    ),
]
SandboxOpt = Annotated[
    bool,
    typer.Option("--sandbox", help="Use the built-in emulated API: no key, no network, no cost."),
]


def _output_path(text: str) -> Path:
    # Parsed here, not by typer's Path type: that would read `./-` (a file named -) as `-`.
    from nanoedit.output.names import output_target

    return output_target(text)


OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="File to write the one result to, exactly as named (- for stdout).",
        show_default=False,
        parser=_output_path,
    ),
]
OutDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--out-dir",
        "-d",
        metavar="DIR",
        help="Folder for results (default: default.out_dir, or the current one).",
        show_default=False,
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Let -o replace an existing file.")]
FormatOpt = Annotated[
    ResponseFormat,
    typer.Option("--response-format", help="How the multipart backend returns images."),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object per job on stdout.")
]  # fmt: skip
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing on stderr but errors.")
]  # fmt: skip
Print0Opt = Annotated[
    bool,
    typer.Option("--print0", help="End each path on stdout with NUL, not a newline (xargs -0)."),
]
JobsOpt = Annotated[
    int,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        max=64,
        metavar="N",
        help="Jobs sent at once.",
        rich_help_panel="Batch",
    ),
]
SkipOpt = Annotated[
    bool,
    typer.Option(
        "--skip-existing",
        help="Send no job whose result is already saved (resume a batch).",
        rich_help_panel="Batch",
    ),
]
NoHistoryOpt = Annotated[
    bool,
    typer.Option(
        "--no-history",
        help="Keep nothing of this run in the job journal (no resume, no history).",
        rich_help_panel="Batch",
    ),
]
ShardOpt = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="K/N",
        help="Run only every N-th job from the K-th (positions K, K+N, K+2N… of the job list).",
        show_default=False,
        rich_help_panel="Batch",
    ),
]
# --retries and --timeout are checked by the rule of the key they override (network.retries,
# network.timeout), when the settings are loaded: one rule, not a range here and one there.
RetriesOpt = Annotated[
    int | None,
    typer.Option(
        "--retries",
        metavar="N",
        show_default=False,
        help="Times a failed request is sent again, 0 to 20 (default 3, or network.retries).",
        rich_help_panel="Network",
    ),
]
RetryUnsafeOpt = Annotated[
    bool,
    typer.Option(
        "--retry-unsafe",
        help="Also resend a paid request that may have reached the model (may charge twice).",
        rich_help_panel="Network",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        show_default=False,
        metavar="SECONDS",
        help="Time limit of each job, polls and retries included, above 0 (default 900).",
        rich_help_panel="Network",
    ),
]
ProxyOpt = Annotated[
    str | None,
    typer.Option(
        "--proxy",
        metavar="URL",
        show_default=False,
        help="Proxy for every request (default: network.proxy, or HTTPS_PROXY and friends).",
        rich_help_panel="Network",
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Send nothing; print each request as a curl command (with --json: a JSON object).",
    ),
]
MaxCostOpt = Annotated[
    float | None,
    typer.Option(
        "--max-cost",
        min=0,
        metavar="DOLLARS",
        show_default=False,
        help="Refuse a batch estimated over this many US dollars; stop sending once it is spent "
        "(exit 7). Prices: pricing.BACKEND.MODEL.",
        rich_help_panel="Batch",
    ),
]
MaxImagesOpt = Annotated[
    int | None,
    typer.Option(
        "--max-images",
        min=1,
        metavar="N",
        show_default=False,
        help="Send jobs for at most N images in all (-n counted); the rest are not sent (exit 7).",
        rich_help_panel="Batch",
    ),
]
NoMetadataOpt = Annotated[
    bool,
    typer.Option("--no-metadata", help="Save images without the provenance metadata."),
]
SidecarOpt = Annotated[
    bool,
    typer.Option("--sidecar", help="Also write the provenance as IMAGE.json beside each image."),
]

PreviewOpt = Annotated[
    bool,
    typer.Option(
        "--preview",
        help="Show each saved image on the terminal (stderr), drawn as preview.protocol says.",
        rich_help_panel="Seeing results",
    ),
]
OpenOpt = Annotated[
    bool,
    typer.Option(
        "--open",
        help="Open each saved image in the viewer (preview.open_command, or the system's).",
        rich_help_panel="Seeing results",
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        metavar="FILE.html",
        show_default=False,
        help="Write one HTML page of the run: inputs and results side by side, failures.",
        rich_help_panel="Seeing results",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nanoedit {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Edit and generate images with Google's nano-banana models through reseller APIs."""


INTERRUPTED = "interrupted: nothing more was sent; images already saved are kept"


@contextmanager
def _errors(json_lines: bool = False, interrupted: str = INTERRUPTED) -> Iterator[None]:
    """Turn every expected error into its message and exit code; Ctrl-C into 130 (saying
    ``interrupted``), and a closed stdout (a reader that left) into 141, quietly."""
    try:
        yield
    except NanoeditError as exc:
        _fail(exc, json_lines)
    except KeyboardInterrupt:
        typer.echo(interrupted, err=True)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except BrokenPipeError:
        _stdout_closed()


def _fail(error: NanoeditError, json_lines: bool = False) -> NoReturn:
    from nanoedit.output.report import error_console, error_json

    if json_lines:
        import json

        typer.echo(json.dumps({"ok": False, "error": error_json(error)}, ensure_ascii=False))
    error_console(sys.stderr).print(f"error: {error.message}", style="bold red")
    raise typer.Exit(error.exit_code) from None


def _check_stdout(jobs: list[Job], run: RunOptions) -> None:
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
    if not run.dry_run and sys.stdout is not None and sys.stdout.isatty():
        raise UsageError(
            "-o - would write the image's binary bytes to the terminal; redirect stdout "
            "(-o - > out.png, or into a program with |), or give -o FILE"
        )


def _clock(ctx: typer.Context) -> Clock:
    """The clock a command's run reads the time and waits on: the real one, unless the
    caller gave another as the context's object (``CliRunner.invoke(app, args, obj=...)``)."""
    return ctx.obj if isinstance(ctx.obj, Clock) else Clock()


def _shard(text: str | None) -> tuple[int, int]:
    """``--shard K/N`` as numbers (a usage error when it is not one); every job without it."""
    from nanoedit.startup import lasting_imports

    with lasting_imports():
        from nanoedit.run.batch import parse_shard

    return WHOLE_RUN if text is None else parse_shard(text)


def _run(
    make_jobs: Callable[[Options, Callable[[str], None]], list[Job]],
    run: RunOptions,
    *,
    prompt: str | None,
    prompt_file: str | None,
    ratio: Ratio | None,
    size: str | None,
    model: str | None,
    count: int,
    response_format: ResponseFormat,
    clock: Clock,
) -> None:
    """Run edit's or generate's jobs: ``make_jobs`` makes them from what is asked of the
    model (the prompt, ratio, size, model, count and response format, resolved here). The
    run reads the time and waits on ``clock``."""
    from nanoedit.startup import lasting_imports, preload

    with lasting_imports():
        from nanoedit.net.inputs import RunInputs
        from nanoedit.output.report import Reporter
        from nanoedit.registry import backend_classes
        from nanoedit.run.plan import Planner
        from nanoedit.settings.load import load_settings, wants_sandbox

        backend_classes()  # the settings read every backend's: their modules load here

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
                local = wants_sandbox(run, os.environ)
            except NanoeditError:
                local = False  # a NANOEDIT_SANDBOX that is not a boolean: said just below
            if not local:
                preload("httpcore")
    with _errors(run.json_lines), ExitStack() as closing:
        prompt = _prompt_text(prompt, prompt_file, run.quiet)
        settings = load_settings(os.environ, run, ratio=ratio.value if ratio else None, size=size)
        options = Options(
            prompt=prompt,
            ratio=settings.ratio,
            size=settings.size,
            model=model.strip() if model and model.strip() else None,
            count=count,
            response_format=response_format.value,
        )
        # What expanding the inputs left out, said once the reporter is there to say it.
        notes: list[str] = []
        jobs = make_jobs(options, notes.append)
        if any(not job.options.prompt for job in jobs):
            raise UsageError('the prompt is empty; say what you want with -p "..."')
        _check_stdout(jobs, run)
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
                protocol=choose_protocol(settings.preview_protocol, os.environ),
                open_command=settings.open_command,
            )
        started, when = clock.monotonic(), clock.now().astimezone()
        with Reporter(
            sys.stdout,
            sys.stderr,
            json_lines=run.json_lines,
            quiet=run.quiet,
            print0=run.print0,
            viewer=viewer,
        ) as reporter:
            for text in [*settings.warnings, *notes]:
                reporter.warning(text)
            if run.dry_run and sys.stdout is None:
                # Started with stdout closed: nowhere to print the plan.
                raise typer.Exit(ExitCode.OUTPUT_CLOSED)
            inputs = RunInputs(reporter.warning)
            # Opened before planning: --skip-existing finds earlier work in it.
            journal = None if run.dry_run else open_journal(settings, reporter.warning)
            if journal is not None:
                # Closed, not left to the exit: closing folds its log into the database, so
                # the next run does not have to read the log back.
                closing.callback(journal.close)
            planner = Planner(settings, run, inputs, reporter.warning, journal=journal)
            planned = planner.plan(jobs)
            budget = _budget(planned, settings, run, reporter.console)
            stopped = False
            if run.dry_run:
                from nanoedit.run.dryrun import print_plan

                assert sys.stdout is not None
                outcomes = print_plan(planned, settings, sys.stdout, reporter, run.json_lines)
            else:
                binary = sys.stdout.buffer if sys.stdout is not None else None
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
                    outcomes = run_gently(runner, planned, reporter, journal)
                    stopped = runner.draining.is_set()
        if reporter.gone and not run.dry_run:
            _closed_stdout(outcomes, run.quiet, reporter.write_error)
        if not run.dry_run:
            reporter.summary(outcomes)
        if run.report is not None:
            from nanoedit.output.contact_sheet import save_run_page

            save_run_page(run.report, outcomes, when, clock.monotonic() - started)
            if not run.quiet:
                reporter.console.print(f"wrote the report {run.report}")
    if stopped:
        # A first Ctrl-C or SIGTERM let the jobs under way finish: still an interruption.
        typer.echo(INTERRUPTED, err=True)
        raise typer.Exit(ExitCode.INTERRUPTED)
    raise typer.Exit(exit_code_for(outcomes))


def _budget(
    planned: Sequence["Planned"],
    settings: "Settings",
    run: RunOptions,
    console: "Console | PlainConsole",
) -> "Budget | None":
    """Say what the batch is estimated to cost (on a dry run, and before a batch), refuse it
    when it is over --max-cost, and return what keeps the run within its limits."""
    from nanoedit.jobs import PlannedJob

    sent = [entry for entry in planned if isinstance(entry, PlannedJob)]
    said = bool(sent) and not run.quiet and (run.dry_run or len(sent) > 1)
    if not said and run.max_cost is None and run.max_images is None:
        return None  # nothing to say or keep: one job pays no price table's import
    from nanoedit.catalog.pricing import Prices, batch_estimate
    from nanoedit.run.budget import Budget, check_estimate

    prices = Prices(settings.prices, settings.catalog)
    estimate = batch_estimate(sent, prices)
    if said:
        console.print(estimate.describe())  # the console reads no markup
    check_estimate(estimate, run.max_cost)
    if run.max_cost is None and run.max_images is None:
        return None
    return Budget(prices, max_cost=run.max_cost, max_images=run.max_images)


def _prompt_text(prompt: str | None, prompt_file: str | None, quiet: bool) -> str:
    """The prompt as given with -p, or read whole from stdin (``-p -``) or --prompt-file."""
    if prompt is not None and prompt_file is not None:
        raise UsageError("-p and --prompt-file both give the prompt; use one of them")
    if prompt != "-" and prompt_file is None:
        return (prompt or "").strip()
    path = prompt_file if prompt_file is not None else "-"
    if path == "-" and sys.stdin is not None and sys.stdin.isatty() and not quiet:
        typer.echo("reading the prompt from stdin; end it with Ctrl-D", err=True)
    text = _read_text(path, "the prompt file", "--prompt-file").removeprefix("\ufeff").strip()
    if not text:
        if path == "-":
            raise UsageError("the prompt read from stdin is empty; pipe the prompt in, or use -p")
        raise UsageError(f"the prompt file {path} is empty; write the prompt in it")
    return text


def _stdin_once(uses: list[str]) -> None:
    """Refuse a command line that reads stdin more than once: it can be read only once."""
    if len(uses) > 1:
        both = "both" if len(uses) == 2 else "all"
        raise UsageError(
            f"{', '.join(uses[:-1])} and {uses[-1]} {both} read stdin, which can be read only "
            "once; save all but one of them to a file and name it"
        )


def _closed_stdout(
    outcomes: Sequence[JobOutcome], quiet: bool, write_error: str | None = None
) -> NoReturn:
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
        typer.echo(
            f"stopped: stdout was closed; {unsent} {jobs} not sent, {saved} {images} saved",
            err=True,
        )
    raise typer.Exit(ExitCode.OUTPUT_CLOSED)


@app.command()
def edit(
    ctx: typer.Context,
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Images to edit: files, folders, quoted globs, http(s) URLs or - (stdin); "
            "one job each.",
            show_default=False,
            metavar="INPUT...",
        ),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt",
            "-p",
            metavar="TEXT",
            help="What to do, in words; - reads it from stdin (required unless --from gives it).",
            show_default=False,
        ),
    ] = None,
    prompt_file: PromptFileOpt = None,
    ref: Annotated[
        list[str] | None,
        typer.Option(
            "--ref",
            "-r",
            metavar="IMAGE",
            help="Reference image sent with every job (repeatable).",
            show_default=False,
        ),
    ] = None,
    from_file: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="FILE",
            show_default=False,
            help="Jobs from a file (- for stdin): one path, URL or JSON object per line.",
            rich_help_panel="Batch",
        ),
    ] = None,
    recursive: Annotated[
        bool,
        typer.Option(
            "--recursive", "-R", help="Look for images in subfolders too.", rich_help_panel="Batch"
        ),
    ] = False,
    ratio: RatioOpt = None,
    size: SizeOpt = None,
    model: ModelOpt = None,
    count: CountOpt = DEFAULT_COUNT,
    backend: BackendOpt = None,
    sandbox: SandboxOpt = False,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    overwrite: OverwriteOpt = False,
    response_format: FormatOpt = DEFAULT_FORMAT,
    json_lines: JsonOpt = False,
    quiet: QuietOpt = False,
    print0: Print0Opt = False,
    jobs: JobsOpt = DEFAULT_JOBS,
    skip_existing: SkipOpt = False,
    no_history: NoHistoryOpt = False,
    shard: ShardOpt = None,
    retries: RetriesOpt = None,
    retry_unsafe: RetryUnsafeOpt = False,
    timeout: TimeoutOpt = None,
    proxy: ProxyOpt = None,
    dry_run: DryRunOpt = False,
    max_cost: MaxCostOpt = None,
    max_images: MaxImagesOpt = None,
    no_metadata: NoMetadataOpt = False,
    sidecar: SidecarOpt = False,
    preview: PreviewOpt = False,
    open_images: OpenOpt = False,
    report: ReportOpt = None,
) -> None:
    """Edit images: each INPUT is one job, with every --ref image sent after it.

    An INPUT or --ref of - is an image read from stdin. Put a file whose name starts with
    a dash after --, so that it is not taken for an option:

    \b
      nanoedit edit -p "make it night" -- -dash.png
    """
    with _errors(json_lines):
        _stdin_once([
            *["INPUT -"] * (inputs or []).count("-"),
            *["--ref -"] * (ref or []).count("-"),
            *(["--from -"] if from_file == "-" else []),
            *(["-p -"] if prompt == "-" else []),
            *(["--prompt-file -"] if prompt_file == "-" else []),
        ])  # fmt: skip
        run = RunOptions(
            backend=backend,
            out_dir=out_dir,
            sandbox=sandbox,
            proxy=proxy,
            timeout=timeout,
            retries=retries,
            jobs=jobs,
            shard=_shard(shard),
            skip_existing=skip_existing,
            history=not no_history,
            overwrite=overwrite,
            retry_unsafe=retry_unsafe,
            metadata=not no_metadata,
            sidecar=sidecar,
            dry_run=dry_run,
            json_lines=json_lines,
            quiet=quiet,
            print0=print0,
            preview=preview,
            open_images=open_images,
            report=report,
            max_cost=max_cost,
            max_images=max_images,
        )

    def make_jobs(options: Options, warn: Callable[[str], None]) -> list[Job]:
        from nanoedit.jobs import build_edit_jobs
        from nanoedit.journal.history import resolve_reference
        from nanoedit.run.batch import expand_inputs, read_job_file

        def references(text: str) -> Path:
            return resolve_reference(text, os.environ)

        found = expand_inputs(inputs or [], recursive=recursive, warn=warn)
        jobs = build_edit_jobs(found, ref or [], options, output, references)
        if from_file is not None:
            name = "stdin" if from_file == "-" else from_file
            # A job file's paths start from its folder; stdin's from the current one.
            folder = "" if from_file == "-" else os.path.dirname(from_file)
            text = _read_text(from_file, "the job file", "--from")
            jobs += read_job_file(
                name, text, options, ref or [], output, folder=folder, references=references
            )
        if not jobs:
            raise UsageError("no input given; pass images to edit, or --from FILE")
        return jobs

    _run(
        make_jobs,
        run,
        prompt=prompt,
        prompt_file=prompt_file,
        ratio=ratio,
        size=size,
        model=model,
        count=count,
        response_format=response_format,
        clock=_clock(ctx),
    )


def _read_text(path: str, what: str, flag: str) -> str:
    """A text file's content, or all of stdin for ``-``; ``what`` and ``flag`` name it."""
    if path == "-":
        if sys.stdin is None:  # started with stdin closed (<&-)
            raise InputError(f"stdin is closed, so {flag} - has nothing to read; pipe it in")
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist; check the {flag} path") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise InputError(f"{what} {path} cannot be read ({reason})") from None


@app.command()
def generate(
    ctx: typer.Context,
    prompt: PromptOpt = None,
    prompt_file: PromptFileOpt = None,
    ratio: RatioOpt = None,
    size: SizeOpt = None,
    model: ModelOpt = None,
    count: CountOpt = DEFAULT_COUNT,
    backend: BackendOpt = None,
    sandbox: SandboxOpt = False,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    overwrite: OverwriteOpt = False,
    response_format: FormatOpt = DEFAULT_FORMAT,
    json_lines: JsonOpt = False,
    quiet: QuietOpt = False,
    print0: Print0Opt = False,
    skip_existing: SkipOpt = False,
    no_history: NoHistoryOpt = False,
    retries: RetriesOpt = None,
    retry_unsafe: RetryUnsafeOpt = False,
    timeout: TimeoutOpt = None,
    proxy: ProxyOpt = None,
    dry_run: DryRunOpt = False,
    max_cost: MaxCostOpt = None,
    max_images: MaxImagesOpt = None,
    no_metadata: NoMetadataOpt = False,
    sidecar: SidecarOpt = False,
    preview: PreviewOpt = False,
    open_images: OpenOpt = False,
    report: ReportOpt = None,
) -> None:
    """Make images from a text prompt alone."""
    from nanoedit.jobs import build_generate_job

    run = RunOptions(
        backend=backend,
        out_dir=out_dir,
        sandbox=sandbox,
        proxy=proxy,
        timeout=timeout,
        retries=retries,
        skip_existing=skip_existing,
        history=not no_history,
        overwrite=overwrite,
        retry_unsafe=retry_unsafe,
        metadata=not no_metadata,
        sidecar=sidecar,
        dry_run=dry_run,
        json_lines=json_lines,
        quiet=quiet,
        print0=print0,
        preview=preview,
        open_images=open_images,
        report=report,
        max_cost=max_cost,
        max_images=max_images,
    )
    _run(
        lambda options, _warn: [build_generate_job(options, output)],
        run,
        prompt=prompt,
        prompt_file=prompt_file,
        ratio=ratio,
        size=size,
        model=model,
        count=count,
        response_format=response_format,
        clock=_clock(ctx),
    )


def _complete_asynchronous(incomplete: str) -> list[str]:
    from nanoedit.run.fetch import asynchronous_names

    return [name for name in asynchronous_names() if name.startswith(incomplete)]


@app.command()
def fetch(
    ctx: typer.Context,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            metavar="NAME",
            show_default=False,
            help="The API the tasks were submitted to: one that answers with task ids.",
            autocompletion=_complete_asynchronous,
        ),
    ],
    task_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Ids of tasks submitted elsewhere, as the provider answered them.",
            show_default=False,
            metavar="TASK_ID...",
        ),
    ] = None,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="ID",
            show_default=False,
            help="Model the tasks were sent to, where the API needs it to find them "
            "(default: the backend's configured model).",
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    json_lines: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Save the results of asynchronous tasks submitted elsewhere, by their ids.

    Nothing is submitted: each task is polled until it ends, and its images are saved as
    edit saves them. Ctrl-C leaves the tasks on the server, to be fetched again.
    """
    from nanoedit.net.client import client_for
    from nanoedit.output.report import Reporter
    from nanoedit.run.fetch import Fetcher, plan_fetch
    from nanoedit.settings.load import load_settings

    clock = _clock(ctx)
    again = "interrupted: the tasks are still on the server; run the same command to fetch them"
    with _errors(json_lines, interrupted=again):
        run = RunOptions(out_dir=out_dir, overwrite=overwrite, json_lines=json_lines, quiet=quiet)
        settings = load_settings(os.environ, run)
        tasks = plan_fetch(
            settings,
            backend,
            task_ids or [],
            model=model.strip() if model and model.strip() else None,
            output=output,
            overwrite=overwrite,
        )
        _check_stdout([task.job for task in tasks], run)
        with (
            client_for(settings, clock=clock) as client,
            Reporter(sys.stdout, sys.stderr, json_lines=json_lines, quiet=quiet) as reporter,
        ):
            for text in settings.warnings:
                reporter.warning(text)
            binary = sys.stdout.buffer if sys.stdout is not None else None
            fetcher = Fetcher(settings, client, reporter, run, stdout=binary, clock=clock)
            outcomes = fetcher.fetch(tasks)
        if reporter.gone:
            _closed_stdout(outcomes, quiet=True, write_error=reporter.write_error)
        reporter.summary(outcomes)
    raise typer.Exit(exit_code_for(outcomes))


@app.command()
def resume(
    ctx: typer.Context,
    ids: Annotated[
        list[int] | None,
        typer.Argument(
            help="Ids of the jobs to take up (see: nanoedit history); default: every "
            "unfinished job.",
            show_default=False,
            metavar="[ID]...",
        ),
    ] = None,
    jobs: JobsOpt = DEFAULT_JOBS,
    timeout: TimeoutOpt = None,
    retry_unsafe: RetryUnsafeOpt = False,
    json_lines: JsonOpt = False,
    quiet: QuietOpt = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Send nothing; print what would be done with each job (with --json: a "
            "JSON object).",
        ),
    ] = False,
) -> None:
    """Finish the jobs a run left unfinished (Ctrl-C, a crash, a timeout), paying for
    nothing twice.

    A submitted task is polled again, a result not yet saved is saved, a job never sent is
    sent. A request that went out with no answer back may have been charged: it is only sent
    again with --retry-unsafe. A sandbox job goes back to the sandbox.
    """
    from nanoedit.journal.recording import open_journal
    from nanoedit.output.report import Reporter
    from nanoedit.run.resume import plan_resume, run_resume
    from nanoedit.settings.load import load_settings

    clock = _clock(ctx)
    run = RunOptions(
        jobs=jobs, timeout=timeout, retry_unsafe=retry_unsafe, json_lines=json_lines,
        quiet=quiet, dry_run=dry_run,
    )  # fmt: skip
    with _errors(json_lines):
        settings = load_settings(os.environ, run)
        if not settings.history:
            raise UsageError(
                "history is off (history.enabled false), so there is no journal to resume from"
            )
        # Come to read the journal: a damaged one fails, as history does (exit 4).
        journal = open_journal(settings, _warn, start_new=False)
        if journal is None:
            raise typer.Exit(ExitCode.CONFIG)
        with journal:
            if not dry_run:
                # The run that takes the jobs up: a job it has is not another process's to send.
                journal.begin_run(sys.argv)
            plan = plan_resume(
                journal, ids or [], retry_unsafe=retry_unsafe, settings=settings, dry_run=dry_run
            )
            if dry_run:
                _print_steps(plan, json_lines)
                raise typer.Exit(ExitCode.OK)
            for note in plan.busy:
                _warn(note)
            if not plan.jobs and not plan.held:
                if not quiet:
                    typer.echo(_nothing_to_resume(len(plan.busy)), err=True)
                raise typer.Exit(ExitCode.OK)
            if plan.jobs and not quiet:
                typer.echo(plan.heading(), err=True)
            binary = sys.stdout.buffer if sys.stdout is not None else None
            with Reporter(
                sys.stdout, sys.stderr, json_lines=json_lines, quiet=quiet, print0=False
            ) as reporter:
                outcomes = run_resume(journal, plan, run, reporter, clock, binary)
            reporter.summary(outcomes)
    raise typer.Exit(exit_code_for(outcomes))


def _print_steps(plan: "ResumePlan", json_lines: bool) -> None:
    """What ``resume --dry-run`` would do with each job, one line (or JSON object) each."""
    if not plan.steps:
        typer.echo("nothing to resume: every job in the history has ended", err=True)
    for step in plan.steps:
        if json_lines:
            import json

            typer.echo(json.dumps(step.to_json(), ensure_ascii=False))
        else:
            typer.echo(step.line())


def _nothing_to_resume(busy: int) -> str:
    """What resume says when it has nothing to do: every job ended, or the unfinished ones
    are another live process's."""
    if not busy:
        return "nothing to resume: every job in the history has ended"
    jobs = "job is" if busy == 1 else "jobs are"
    return f"nothing to resume now: the {busy} unfinished {jobs} under way in other processes"


KeyArg = Annotated[
    str,
    typer.Argument(
        help="A key such as openai.api_key; see: nanoedit config list.", show_default=False
    ),
]


@app.command()
def models(
    ctx: typer.Context,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            metavar="NAME",
            help="Only the models this backend sells, with its ids, limits and prices (with "
            "--live: ask this backend alone).",
        ),
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json", help="One JSON object per model on stdout (with --live: one in all)."
        ),
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Ask each configured backend what it serves today (free listing requests) "
            "and show how it differs from the catalog.",
        ),
    ] = False,
    sandbox: SandboxOpt = False,
) -> None:
    """The model catalog: each model's aliases, ids per backend, sizes, ratios, references,
    price of a 1K image and status (GA, deprecated, shut down) with dates.

    It is a snapshot kept as data: correct or add an entry in the config file under
    [models."ID"] (see the README). --live compares it with what each provider lists today:
    models added or dropped, ratios and sizes that differ; the ratios and sizes read are kept
    for later runs' checks. Exit 0 when nothing differs, 9 when something does, 3, 5 or 6
    when a backend could not be checked (as config check).
    """
    from nanoedit.catalog.lineup import lineup, table_lines
    from nanoedit.registry import backend_names
    from nanoedit.settings.load import load_settings

    with _errors(json_out):
        names = backend_names()
        if backend is not None and backend not in names:
            raise UsageError(f"no backend called {backend!r}; choose one of: {', '.join(names)}")
        if live:
            _models_live(ctx, (backend,) if backend else names, json_out, sandbox)
        if sandbox:
            raise UsageError("--sandbox goes with --live: the catalog itself asks no server")
        settings = load_settings(os.environ, RunOptions())
        rows = lineup(settings.catalog, backend)
        if json_out:
            import json

            for row in rows:
                typer.echo(json.dumps(row.as_json(), ensure_ascii=False))
            return
        shown = (backend,) if backend else names
        lines = table_lines(rows, shown)
        if sys.stdout.isatty():
            from rich.console import Console
            from rich.table import Table

            table = Table(*lines[0], show_lines=False)
            for line in lines[1:]:
                table.add_row(*line)
            Console(file=sys.stdout).print(table)
            return
        for line in lines:
            typer.echo("\t".join(line))


def _models_live(
    ctx: typer.Context, names: tuple[str, ...], json_out: bool, sandbox: bool
) -> NoReturn:
    """``nanoedit models --live``: check ``names``, print how each differs from the catalog,
    keep what was read for later runs, and exit with the run's code."""
    from nanoedit.catalog.livecache import cache_path
    from nanoedit.net.client import client_for
    from nanoedit.run.check import CHECK_TIMEOUT
    from nanoedit.run.live import LiveReport, check_backends, live_exit_code, write_cache
    from nanoedit.settings.load import load_settings

    # Compared with the catalog and the config file's corrections, not with this cache.
    settings = load_settings(os.environ, RunOptions(sandbox=sandbox), live_cache=False)
    for warning in settings.warnings:
        _warn(warning)
    with client_for(settings) as client:
        results = check_backends(settings, client, settings.catalog, names, timeout=CHECK_TIMEOUT)
    code = live_exit_code(results)
    requests = sum(result.requests for result in results)
    cache = None if settings.sandbox else cache_path(os.environ)
    try:
        if cache is not None and not write_cache(cache, results, _clock(ctx).now()):
            cache = None
    except OSError as exc:
        _warn(
            f"could not keep what was read in {cache} ({exc.strerror or exc}); later runs check "
            "ratios and sizes against the catalog alone"
        )
        cache = None
    if json_out:
        import json

        report = LiveReport(tuple(results), code, cache)
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        width = max(len(result.backend) for result in results)
        for result in results:
            for line in result.lines(width):
                typer.echo(line)
    from nanoedit.output.report import error_console

    console = error_console(sys.stderr)
    said = "1 request" if requests == 1 else f"{requests} requests"
    console.print(f"{said} to listing endpoints, which are free: no image made, nothing paid")
    if cache is not None:
        console.print(f"the ratios and sizes read are kept in {cache} for later runs' checks")
    elif settings.sandbox:
        console.print("the in-process sandbox is no provider: nothing kept for later runs")
    raise typer.Exit(code)


def _warn(text: str) -> None:
    from nanoedit.output.report import error_console

    error_console(sys.stderr).print(f"warning: {text}", style="yellow")


def _config_document(path: Path) -> dict[str, Any]:
    """The config file's TOML document, after a warning naming any key nanoedit ignores."""
    from nanoedit.settings.store import read_document

    document = read_document(path)
    _warn_unknown_keys(path, document)
    return document


def _warn_unknown_keys(path: Path, document: dict[str, Any]) -> None:
    from nanoedit.settings.store import unknown_keys_warning

    warning = unknown_keys_warning(path, document)
    if warning:
        _warn(warning)


# A value may start with a dash (a negative number, some keys): it is the value, for the
# value check to judge, not an unknown option. -h and --help still show the help.
@config_app.command("set", context_settings={"ignore_unknown_options": True})
def config_set(
    key: KeyArg,
    value: Annotated[
        str,
        typer.Argument(
            help="The value; - reads it from stdin, or asks for it on a terminal without showing "
            "a key (keeps keys out of shell history).",
            show_default=False,
        ),
    ],
) -> None:
    """Save a setting in the config file."""
    from nanoedit.settings.conflicts import check_combination
    from nanoedit.settings.keys import spec_for
    from nanoedit.settings.secrets import display_value
    from nanoedit.settings.store import (
        config_path,
        flat_values,
        keep_broken_copy,
        read_for_update,
        set_value,
        value_text,
        write_document,
    )

    with _errors():
        spec = spec_for(key)
        if value == "-":
            value = _read_value(key, hidden=spec.secret)
        stored = spec.stored(value)
        path = config_path(os.environ)
        # A file that is not TOML does not block a new setting: it is kept aside, and the
        # new file holds the one setting.
        document, broken = read_for_update(path)
        _warn_unknown_keys(path, document)
        before = flat_values(document)
        set_value(document, key, stored)
        warning = check_combination(key, before, flat_values(document), os.environ)
        if broken is not None:
            copy = keep_broken_copy(path, broken.data)
        write_document(path, document)
        if broken is not None:
            _warn(
                f"the config file {path} was not valid TOML ({broken.reason}); kept it as "
                f"{copy} and wrote a new one with only {key}"
            )
        if warning:
            _warn(warning)
        shown = "(hidden)" if spec.secret else display_value(key, value_text(stored))
        typer.echo(f"set {key} = {shown} in {path}", err=True)


def _read_value(key: str, *, hidden: bool) -> str:
    """The value of ``config set KEY -``: one line of stdin, or, on a terminal, typed at a
    prompt (not shown as it is typed when ``hidden``, like a password)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    try:
        if hidden:
            import getpass

            return getpass.getpass(f"{key} (typing is not shown): ", stream=sys.stderr)
        typer.echo(f"{key}: ", err=True, nl=False)
        return sys.stdin.readline()
    except EOFError:
        return ""
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: nothing was saved", err=True)
        raise typer.Exit(ExitCode.INTERRUPTED) from None


@config_app.command("get")
def config_get(key: KeyArg) -> None:
    """Print a setting's value as it applies now (keys masked). Exit 3 when unset."""
    from nanoedit.settings.keys import spec_for
    from nanoedit.settings.load import resolve_key
    from nanoedit.settings.secrets import display_value
    from nanoedit.settings.store import config_path, flat_values

    with _errors():
        spec_for(key)
        values = flat_values(_config_document(config_path(os.environ)))
        resolved = resolve_key(key, values, os.environ)
        if resolved.value is None:
            typer.echo(f"{key} is not set; set it with: nanoedit config set {key} VALUE", err=True)
            raise typer.Exit(ExitCode.CONFIG)
        typer.echo(display_value(key, resolved.value))


@config_app.command("unset")
def config_unset(key: KeyArg) -> None:
    """Remove a setting from the config file."""
    from nanoedit.settings.keys import spec_for
    from nanoedit.settings.store import config_path, remove_value, write_document

    with _errors():
        spec_for(key)
        path = config_path(os.environ)
        document = _config_document(path)
        if not remove_value(document, key):
            typer.echo(f"{key} was not set in {path}", err=True)
            return
        write_document(path, document)
        typer.echo(f"unset {key} in {path}", err=True)


@config_app.command("list")
def config_list() -> None:
    """Every setting with its value (keys masked) and where it comes from."""
    from nanoedit.settings.keys import all_keys, is_known_key
    from nanoedit.settings.load import resolve_key
    from nanoedit.settings.secrets import display_value
    from nanoedit.settings.store import config_path, flat_values

    with _errors():
        values = flat_values(_config_document(config_path(os.environ)))
        for key in all_keys():
            resolved = resolve_key(key, values, os.environ)
            if resolved.value is None:
                typer.echo(f"{key} = (not set)")
                continue
            shown = display_value(key, resolved.value)
            source = resolved.env_name if resolved.source == "env" else resolved.source
            typer.echo(f"{key} = {shown}  ({source})")
        # Prices are a family of keys, one per model priced: those set are listed.
        for key in sorted(key for key in values if key.startswith("pricing.")):
            if key not in all_keys() and is_known_key(key):
                typer.echo(f"{key} = {values[key]}  (file)")


@config_app.command("check")
def config_check(
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
    sandbox: SandboxOpt = False,
) -> None:
    """Check each configured backend with one cheap request: ready, key rejected, unreachable.

    Exit 0 when every configured backend is ready, 3 for a rejected key (or none configured),
    5 for a wrong answer, 6 when a server cannot be reached.
    """
    from nanoedit.net.client import client_for
    from nanoedit.output.report import error_console
    from nanoedit.run.check import check_backends, check_exit_code
    from nanoedit.settings.load import backend_warnings, load_settings

    with _errors(json_out):
        settings = load_settings(os.environ, RunOptions(sandbox=sandbox))
        console = error_console(sys.stderr)
        warnings = [*settings.warnings]
        warnings += [
            warning
            for backend in settings.backends.values()
            for warning in backend_warnings(backend)
        ]
        for warning in warnings:
            console.print(f"warning: {warning}", style="yellow")
        with client_for(settings) as client:
            results = check_backends(settings, client)
        code = check_exit_code(results)
        if json_out:
            import json

            payload = {
                "ok": code == ExitCode.OK,
                "exit_code": int(code),
                "backends": [result.as_json() for result in results],
            }
            typer.echo(json.dumps(payload, ensure_ascii=False))
        else:
            width = max(len(result.backend) for result in results)
            for result in results:
                typer.echo(f"{result.backend:<{width}}  {result.status}  ({result.detail})")
    raise typer.Exit(code)


@config_app.command("path")
def config_path_cmd() -> None:
    """Print the config file's path."""
    from nanoedit.settings.store import config_path

    typer.echo(str(config_path(os.environ)))


LimitOpt = Annotated[
    int, typer.Option("--limit", "-n", min=1, metavar="N", help="Show at most N jobs.")
]
HistoryJsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object per job on stdout.")
]


@contextmanager
def _history() -> Iterator["Journal | None"]:
    """The journal to read (None: no run has written one yet), with errors turned into
    their message and exit code (a damaged journal's among them: see read_history)."""
    from nanoedit.journal.history import read_history

    with _errors(), read_history(os.environ) as journal:
        yield journal


def _print_jobs(records: Sequence["JobRecord"], json_out: bool, empty: str) -> None:
    """Jobs on stdout: JSON lines, a table on a terminal, tab-separated lines otherwise."""
    from nanoedit.journal.history import plain_line, record_json, table

    if json_out:
        import json

        for record in records:
            typer.echo(json.dumps(record_json(record), ensure_ascii=False))
        return
    if not records:
        typer.echo(empty, err=True)
        return
    if sys.stdout.isatty():
        from rich.console import Console

        Console(file=sys.stdout).print(table(records))
        return
    for record in records:
        typer.echo(plain_line(record))


@history_app.callback()
def history_main(
    ctx: typer.Context,
    limit: LimitOpt = 20,
    json_out: HistoryJsonOpt = False,
    cost: Annotated[
        bool,
        typer.Option("--cost", help="Sum the jobs by day, backend and model (= history cost)."),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="FILE.html",
            show_default=False,
            help="Write one HTML page of the last --limit jobs: images, prompts, states, costs.",
        ),
    ] = None,
) -> None:
    """Jobs sent before, newest first (the last 20; --limit N for more). Ids are stable: give
    one to history show, or as an input (@ID, @last for the last image saved)."""
    if ctx.invoked_subcommand is not None:
        return
    if cost:
        history_cost(json_out)
        return
    if report is not None:
        _history_report(report, limit)
        return
    history_list(limit, json_out)


def _history_report(path: Path, limit: int) -> None:
    from nanoedit.journal.history import save_history_page
    from nanoedit.output.contact_sheet import check_report_path

    with _history() as journal:
        check_report_path(path)
        if journal is None:
            raise UsageError("there is no history yet, so no page to make; run a job first")
        save_history_page(path, journal, journal.recent(limit))
        typer.echo(f"wrote the report {path}", err=True)


@history_app.command("list")
def history_list(limit: LimitOpt = 20, json_out: HistoryJsonOpt = False) -> None:
    """Recent jobs, newest first: id, time, state, backend, model, prompt, saved images."""
    with _history() as journal:
        records = [] if journal is None else journal.recent(limit)
        _print_jobs(records, json_out, "no jobs in the history yet")


@history_app.command("show")
def history_show(
    ident: Annotated[str, typer.Argument(metavar="ID", help="The job's id.", show_default=False)],
    json_out: Annotated[bool, typer.Option("--json", help="Print the job as JSON.")] = False,
) -> None:
    """One job whole: its request, tasks, results, error, cost and usage."""
    from nanoedit.journal.history import get_job, record_json, show_lines

    with _history() as journal:
        if journal is None:
            raise UsageError(f"there is no job {ident} in the history: it is empty")
        record = get_job(journal, ident)
        if json_out:
            import json

            typer.echo(json.dumps(record_json(record), ensure_ascii=False, indent=2))
        else:
            for line in show_lines(record):
                typer.echo(line)


@history_app.command("search")
def history_search(
    text: Annotated[
        str,
        typer.Argument(
            help='Words of the prompt; "a phrase", cat* (a prefix), AND, OR, NOT.',
            show_default=False,
        ),
    ],
    limit: LimitOpt = 50,
    json_out: HistoryJsonOpt = False,
) -> None:
    """Jobs whose prompt matches TEXT (full-text search), newest first."""
    from nanoedit.journal.history import find

    with _history() as journal:
        records = [] if journal is None else find(journal, text, limit)
        _print_jobs(records, json_out, f"no job's prompt matches {text!r}")


@history_app.command("cost")
def history_cost(json_out: HistoryJsonOpt = False) -> None:
    """What the jobs cost, summed by day, backend and model (estimated where no price was
    reported; unknown where no price is known: set pricing.BACKEND.MODEL)."""
    from nanoedit.journal.history import ledger, ledger_table

    with _history() as journal:
        rows = [] if journal is None else journal.cost_by_day()
        if json_out:
            import json

            for row in rows:
                typer.echo(json.dumps(row.__dict__, ensure_ascii=False))
            return
        if not rows:
            typer.echo("no paid jobs in the history yet; sandbox jobs cost nothing", err=True)
            return
        lines = ledger(rows)
        if sys.stdout.isatty():
            from rich.console import Console

            Console(file=sys.stdout).print(ledger_table(lines))
            return
        for line in lines:
            fields = (line.day, line.backend, line.model, line.jobs, line.images, line.cost)
            typer.echo("\t".join(str(field) for field in fields))


@history_app.command("path")
def history_path() -> None:
    """Print the history database's path."""
    from nanoedit.journal.history import database_path

    typer.echo(str(database_path(os.environ)))


@sandbox_app.command("serve")
def sandbox_serve(
    port: Annotated[
        int,
        typer.Option(
            "--port",
            min=0,
            max=65535,
            metavar="PORT",
            help="Port on 127.0.0.1 (0 picks a free one).",
        ),
    ] = 8787,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    faults: Annotated[
        str,
        typer.Option(
            "--faults",
            help="Fault plan, e.g. 429x2,poll:502,empty-url (see: nanoedit sandbox faults).",
        ),
    ] = "",
    latency: Annotated[
        float,
        typer.Option(
            "--latency", min=0, metavar="SECONDS", help="Seconds each API answer takes at least."
        ),
    ] = 0.0,
    task_seconds: Annotated[
        float,
        typer.Option(
            "--task-seconds", min=0, metavar="SECONDS", help="How long a URL-list task runs."
        ),
    ] = 2.0,
) -> None:
    """Serve the emulated APIs over HTTP for tests and pipelines (Ctrl-C stops).

    The base URL is printed on stdout, alone on its line; the log goes to stderr.
    """
    from nanoedit.sandbox import serve_forever

    try:
        serve_forever(
            host, port, faults=faults, latency=latency, task_seconds=task_seconds,
            log=sys.stderr, url_out=sys.stdout,
        )  # fmt: skip
    except ValueError as exc:
        _fail(UsageError(str(exc)))
    except OSError as exc:
        _fail(UsageError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"))
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.OK) from None


@sandbox_app.command("faults")
def sandbox_faults() -> None:
    """List the faults --faults can inject: name, default phase, what it does."""
    from nanoedit.sandbox import FAULT_KINDS

    width = max(len(name) for name in FAULT_KINDS)
    for name, kind in FAULT_KINDS.items():
        typer.echo(f"{name:<{width}}  {kind.default_phase.value:<6}  {kind.summary}")


@sandbox_app.command("sample")
def sandbox_sample(
    name: Annotated[
        str, typer.Argument(help="cat.png, dog.jpg, hat.png or person.png.", show_default=False)
    ] = "cat.png",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="File to write the sample to (default: NAME; - for stdout).",
            show_default=False,
            parser=_output_path,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Let -o replace an existing file.")
    ] = False,
) -> None:
    """Write one of the sandbox's sample images, to try the tool with."""
    from nanoedit.errors import OverwriteError
    from nanoedit.output.names import STDOUT, check_output_path, is_stream, write_stream
    from nanoedit.output.parts import write_atomic
    from nanoedit.sandbox import SAMPLE_NAMES, sample_image

    with _errors():
        if name not in SAMPLE_NAMES:
            raise UsageError(f"no sample called {name!r}; choose one of: {', '.join(SAMPLE_NAMES)}")
        target = output or Path(name)
        data, _mime = sample_image(name)
        if target == STDOUT and sys.stdout is None:
            # Started with stdout closed (>&-): as a run does, exit 141.
            raise typer.Exit(ExitCode.OUTPUT_CLOSED)
        if target == STDOUT and sys.stdout.isatty():
            raise UsageError(
                "-o - would write the image's binary bytes to the terminal; redirect stdout "
                f"(-o - > {name}), or give -o FILE"
            )
        if output is None and _holds(target, data):
            # Already written by an earlier run: a quick start's commands can be run again.
            typer.echo(f"{target} is already there, with the sample's bytes", err=True)
            typer.echo(str(target))
            return
        check_output_path(target, overwrite)
        if is_stream(target):
            binary = sys.stdout.buffer if sys.stdout is not None else None
            write_stream(target, [data], binary, f"the sample {name}")
            if target != STDOUT:
                typer.echo(str(target))
            return
        try:
            write_atomic(target, data, overwrite=overwrite)
        except FileExistsError:
            raise OverwriteError(
                f"{target} already exists; pass --overwrite to replace it, or choose another -o"
            ) from None
        typer.echo(str(target))


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a regular file with exactly ``data`` in it."""
    try:
        return path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


class Shell(StrEnum):
    """Shells nanoedit ships completion scripts for."""

    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@app.command()
def completion(
    shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.", show_default=False)],
) -> None:
    """Print the shell completion script; completions/ holds the same scripts."""
    # Typer's own script templates: they ask nanoedit itself for candidates at run time.
    from typer._completion_shared import get_completion_script

    script = get_completion_script(
        prog_name="nanoedit", complete_var="_NANOEDIT_COMPLETE", shell=shell.value
    )
    typer.echo(script)


def main() -> None:
    """Run the command line (the console script starts in ``nanoedit.__main__``)."""
    try:
        app_for(sys.argv[1:])(prog_name="nanoedit")
    except OSError as exc:
        _unwritable_stdout(exc)
        raise


def _unwritable_stdout(error: OSError) -> None:
    """When ``error`` came from writing stdout (``> /dev/full``, a full disk, a device
    error), say so in one line and exit 4, as a Unix tool does; return otherwise. stdout is
    pointed at the null device first, so that leaving does not fail again."""
    from nanoedit.stdio import from_stdout

    if sys.stdout is None or not from_stdout(error):
        return
    from nanoedit.output.report import error_console
    from nanoedit.stdio import to_devnull

    to_devnull(sys.stdout)
    reason = error.strerror or type(error).__name__
    error_console(sys.stderr).print(
        f"error: could not write to stdout ({reason})", style="bold red"
    )
    raise SystemExit(ExitCode.INPUT) from None


def app_for(args: Sequence[str]) -> typer.Typer:
    """The app to parse ``args`` with: when they start with a command's name, the app with
    that command alone (a group with all of its commands).

    Before it parses anything, typer makes a parser of every command's signature: about
    8 ms at each start for the nineteen of them, when a run needs one. Anything else (no
    arguments, an option first, a name that is no command) gets the whole app, which lists
    the commands and suggests the one meant.
    """
    if not args:
        return app
    commands = [command for command in app.registered_commands if _name(command) == args[0]]
    groups = [group for group in app.registered_groups if group.name == args[0]]
    if not commands and not groups:
        return app
    narrowed = copy.copy(app)
    narrowed.registered_commands = commands
    narrowed.registered_groups = groups
    return narrowed


def _name(command: CommandInfo) -> str | None:
    """A command's name as typer gives it: the one it was registered with, or its function's
    name with dashes."""
    if command.name is not None or command.callback is None:
        return command.name
    return get_command_name(command.callback.__name__)
