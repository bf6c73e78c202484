"""The command line: parse arguments, call the core, print. Nothing here builds a request.

Heavy modules (httpx, Pillow, rich progress) are imported inside the commands, so
``nanoedit --help`` and ``nanoedit --version`` stay fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer._click.core import Context as ParserContext
from typer._click.exceptions import UsageError as ParserError
from typer.core import TyperGroup

from nanoedit import __version__
from nanoedit.errors import ExitCode, InputError, NanoeditError, UsageError

if TYPE_CHECKING:
    from nanoedit.jobs import Job, Options
    from nanoedit.runner import JobOutcome


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


class Size(StrEnum):
    """Output sizes of the 3.x models."""

    k1 = "1K"
    k2 = "2K"
    k4 = "4K"


class BackendChoice(StrEnum):
    """Which API a job goes to."""

    auto = "auto"
    openai = "openai"
    duomi = "duomi"


class ResponseFormat(StrEnum):
    """How the multipart backend returns images."""

    url = "url"
    b64_json = "b64_json"


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


class _Commands(TyperGroup):
    """The top command group: every parser error of nanoedit and its commands passes here."""

    def parse_args(self, ctx: ParserContext, args: list[str]) -> list[str]:
        """Parse the group's own options, noting --json for the command's parser."""
        # A command's options are parsed inside invoke(); ctx.meta is shared with its context.
        ctx.meta[_JSON_GIVEN] = "--json" in args
        with _parser_errors_as_json(ctx.meta[_JSON_GIVEN]):
            return super().parse_args(ctx, args)

    def invoke(self, ctx: ParserContext) -> Any:
        """Run the command, its own parsing included."""
        with _parser_errors_as_json(bool(ctx.meta.get(_JSON_GIVEN))):
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
app.add_typer(config_app, name="config")
app.add_typer(sandbox_app, name="sandbox")

PromptOpt = Annotated[
    str,
    typer.Option(
        "--prompt", "-p", metavar="TEXT", help="What to do, in words.", show_default=False
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
SizeOpt = Annotated[
    Size | None,
    typer.Option(
        "--size",
        case_sensitive=False,
        metavar="1K|2K|4K",
        show_default=False,
        help="Resolution of the result, any case (3.x models).",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        metavar="ID",
        help="Model id, passed to the server as given.",
        show_default=False,
    ),
]
CountOpt = Annotated[
    int, typer.Option("--count", "-n", min=1, max=10, metavar="N", help="Images per job.")
]
BackendOpt = Annotated[
    BackendChoice | None,
    typer.Option(
        "--backend",
        show_default=False,
        help="Which API to use (default: NANOEDIT_BACKEND, default.backend, or auto: by inputs).",
    ),
]
SandboxOpt = Annotated[
    bool,
    typer.Option("--sandbox", help="Use the built-in emulated API: no key, no network, no cost."),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="File to write the one result to.",
        show_default=False,
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
ShardOpt = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="K/N",
        help="Run only the K-th of N even slices of the job list.",
        show_default=False,
        rich_help_panel="Batch",
    ),
]
RetriesOpt = Annotated[
    int | None,
    typer.Option(
        "--retries",
        metavar="N",
        min=0,
        max=20,
        show_default=False,
        help="Times a failed request is sent again (default 3, or network.retries).",
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
        min=0.001,
        show_default=False,
        metavar="SECONDS",
        help="Time limit of each job, polls and retries included (default 900).",
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
NoMetadataOpt = Annotated[
    bool,
    typer.Option("--no-metadata", help="Save images without the provenance metadata."),
]
SidecarOpt = Annotated[
    bool,
    typer.Option("--sidecar", help="Also write the provenance as IMAGE.json beside each image."),
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


@contextmanager
def _errors(json_lines: bool = False) -> Iterator[None]:
    """Turn every expected error into its message and exit code; Ctrl-C into 130, and a
    closed stdout (a reader that left) into 141, quietly."""
    try:
        yield
    except NanoeditError as exc:
        _fail(exc, json_lines)
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing more was sent; images already saved are kept", err=True)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except BrokenPipeError:
        from nanoedit.report import to_devnull

        to_devnull(sys.stdout)
        raise typer.Exit(ExitCode.OUTPUT_CLOSED) from None


def _fail(error: NanoeditError, json_lines: bool = False) -> NoReturn:
    from nanoedit.report import error_console, error_json

    if json_lines:
        import json

        typer.echo(json.dumps({"ok": False, "error": error_json(error)}, ensure_ascii=False))
    error_console(sys.stderr).print(f"error: {error.message}", style="bold red")
    raise typer.Exit(error.exit_code) from None


@dataclass(frozen=True)
class RunFlags:
    """The flags edit and generate share, as given."""

    prompt: str | None
    ratio: Ratio | None
    size: Size | None
    model: str | None
    count: int
    backend: BackendChoice | None
    sandbox: bool
    out_dir: Path | None
    overwrite: bool
    response_format: ResponseFormat
    json_lines: bool
    quiet: bool
    jobs: int
    skip_existing: bool
    shard: str | None
    retries: int | None
    retry_unsafe: bool
    timeout: float | None
    proxy: str | None
    dry_run: bool
    metadata: bool
    sidecar: bool


def _run(make_jobs: Callable[[Options], list[Job]], flags: RunFlags) -> None:
    from nanoedit.batch import parse_shard
    from nanoedit.config import Flags, load_settings
    from nanoedit.jobs import Options
    from nanoedit.report import Reporter
    from nanoedit.runner import Runner, RunOptions, client_for, exit_code_for

    with _errors(flags.json_lines):
        prompt = (flags.prompt or "").strip()
        settings = load_settings(
            os.environ,
            Flags(
                backend=flags.backend.value if flags.backend else None,
                ratio=flags.ratio.value if flags.ratio else None,
                size=flags.size.value if flags.size else None,
                out_dir=str(flags.out_dir) if flags.out_dir else None,
                sandbox=flags.sandbox,
                proxy=flags.proxy,
                timeout=flags.timeout,
                retries=flags.retries,
            ),
        )
        options = Options(
            prompt=prompt,
            ratio=settings.ratio,
            size=settings.size,
            model=flags.model.strip() if flags.model and flags.model.strip() else None,
            count=flags.count,
            response_format=flags.response_format.value,
        )
        jobs = make_jobs(options)
        if any(not job.options.prompt for job in jobs):
            raise UsageError('the prompt is empty; say what you want with -p "..."')
        run_options = RunOptions(
            overwrite=flags.overwrite,
            jobs=flags.jobs,
            skip_existing=flags.skip_existing,
            shard=parse_shard(flags.shard) if flags.shard is not None else (1, 1),
            retry_unsafe=flags.retry_unsafe,
            metadata=flags.metadata,
            sidecar=flags.sidecar,
        )
        with (
            client_for(settings, pool=flags.jobs) as client,
            Reporter(
                sys.stdout, sys.stderr, json_lines=flags.json_lines, quiet=flags.quiet
            ) as reporter,
        ):
            for text in settings.warnings:
                reporter.warning(text)
            runner = Runner(settings, client, reporter, run_options)
            if flags.dry_run:
                from nanoedit.dryrun import print_plan

                if sys.stdout is None:  # started with stdout closed: nowhere to print the plan
                    raise typer.Exit(ExitCode.OUTPUT_CLOSED)
                outcomes = print_plan(
                    runner, jobs, settings, sys.stdout, reporter, flags.json_lines
                )
            else:
                outcomes = runner.run(jobs)
        if reporter.gone and not flags.dry_run:
            _closed_stdout(outcomes, flags.quiet)
        if not flags.dry_run:
            reporter.summary(outcomes)
    raise typer.Exit(exit_code_for(outcomes))


def _closed_stdout(outcomes: Sequence[JobOutcome], quiet: bool) -> NoReturn:
    """stdout was closed during the run: one line on what became of the jobs, and 141."""
    unsent = sum(1 for outcome in outcomes if outcome.held_back)
    if unsent and not quiet:
        saved = sum(len(outcome.outputs) for outcome in outcomes)
        jobs = "job" if unsent == 1 else "jobs"
        images = "image" if saved == 1 else "images"
        typer.echo(
            f"stopped: stdout was closed; {unsent} {jobs} not sent, {saved} {images} saved",
            err=True,
        )
    raise typer.Exit(ExitCode.OUTPUT_CLOSED)


@app.command()
def edit(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Images to edit: files, folders, quoted globs or http(s) URLs; one job each.",
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
            help="What to do, in words (required unless --from gives it).",
            show_default=False,
        ),
    ] = None,
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
    count: CountOpt = 1,
    backend: BackendOpt = None,
    sandbox: SandboxOpt = False,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    overwrite: OverwriteOpt = False,
    response_format: FormatOpt = ResponseFormat.url,
    json_lines: JsonOpt = False,
    quiet: QuietOpt = False,
    jobs: JobsOpt = 4,
    skip_existing: SkipOpt = False,
    shard: ShardOpt = None,
    retries: RetriesOpt = None,
    retry_unsafe: RetryUnsafeOpt = False,
    timeout: TimeoutOpt = None,
    proxy: ProxyOpt = None,
    dry_run: DryRunOpt = False,
    no_metadata: NoMetadataOpt = False,
    sidecar: SidecarOpt = False,
) -> None:
    """Edit images: each INPUT is one job, with every --ref image sent after it."""

    def make_jobs(options: Options) -> list[Job]:
        from nanoedit.batch import expand_inputs, read_job_file
        from nanoedit.jobs import build_edit_jobs

        found = expand_inputs(inputs or [], recursive=recursive)
        jobs = build_edit_jobs(found, ref or [], options, output)
        if from_file is not None:
            name = "stdin" if from_file == "-" else from_file
            jobs += read_job_file(name, _read_text(from_file), options, ref or [], output)
        if not jobs:
            raise UsageError("no input given; pass images to edit, or --from FILE")
        return jobs

    _run(make_jobs, RunFlags(
        prompt, ratio, size, model, count, backend, sandbox, out_dir, overwrite,
        response_format, json_lines, quiet, jobs, skip_existing, shard, retries, retry_unsafe,
        timeout, proxy, dry_run, not no_metadata, sidecar,
    ))  # fmt: skip


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"the job file {path} does not exist; check the --from path") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise InputError(f"the job file {path} cannot be read ({reason})") from None


@app.command()
def generate(
    prompt: PromptOpt,
    ratio: RatioOpt = None,
    size: SizeOpt = None,
    model: ModelOpt = None,
    count: CountOpt = 1,
    backend: BackendOpt = None,
    sandbox: SandboxOpt = False,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    overwrite: OverwriteOpt = False,
    response_format: FormatOpt = ResponseFormat.url,
    json_lines: JsonOpt = False,
    quiet: QuietOpt = False,
    skip_existing: SkipOpt = False,
    retries: RetriesOpt = None,
    retry_unsafe: RetryUnsafeOpt = False,
    timeout: TimeoutOpt = None,
    proxy: ProxyOpt = None,
    dry_run: DryRunOpt = False,
    no_metadata: NoMetadataOpt = False,
    sidecar: SidecarOpt = False,
) -> None:
    """Make images from a text prompt alone."""
    from nanoedit.jobs import build_generate_job

    _run(lambda options: [build_generate_job(options, output)], RunFlags(
        prompt, ratio, size, model, count, backend, sandbox, out_dir, overwrite,
        response_format, json_lines, quiet, 1, skip_existing, None, retries, retry_unsafe,
        timeout, proxy, dry_run, not no_metadata, sidecar,
    ))  # fmt: skip


KeyArg = Annotated[
    str,
    typer.Argument(
        help="A key such as openai.api_key; see: nanoedit config list.", show_default=False
    ),
]


@config_app.command("set")
def config_set(
    key: KeyArg,
    value: Annotated[
        str,
        typer.Argument(
            help="The value; - reads it from stdin (keeps keys out of shell history).",
            show_default=False,
        ),
    ],
) -> None:
    """Save a setting in the config file."""
    from nanoedit.config import config_path, display_value, read_file, spec_for, write_file

    with _errors():
        spec = spec_for(key)
        if value == "-":
            value = sys.stdin.readline().strip()
        checked = spec.check(value)
        path = config_path(os.environ)
        values = read_file(path)
        values[key] = checked
        write_file(path, values)
        shown = "(hidden)" if spec.secret else display_value(key, checked)
        typer.echo(f"set {key} = {shown} in {path}", err=True)


@config_app.command("get")
def config_get(key: KeyArg) -> None:
    """Print a setting's value as it applies now (keys masked). Exit 3 when unset."""
    from nanoedit.config import config_path, display_value, read_file, resolve_key, spec_for

    with _errors():
        spec_for(key)
        resolved = resolve_key(key, read_file(config_path(os.environ)), os.environ)
        if resolved.value is None:
            typer.echo(f"{key} is not set; set it with: nanoedit config set {key} VALUE", err=True)
            raise typer.Exit(ExitCode.CONFIG)
        typer.echo(display_value(key, resolved.value))


@config_app.command("unset")
def config_unset(key: KeyArg) -> None:
    """Remove a setting from the config file."""
    from nanoedit.config import config_path, read_file, spec_for, write_file

    with _errors():
        spec_for(key)
        path = config_path(os.environ)
        values = read_file(path)
        if values.pop(key, None) is None:
            typer.echo(f"{key} was not set in {path}", err=True)
            return
        write_file(path, values)
        typer.echo(f"unset {key} in {path}", err=True)


@config_app.command("list")
def config_list() -> None:
    """Every setting with its value (keys masked) and where it comes from."""
    from nanoedit.config import KEYS, config_path, display_value, read_file, resolve_key

    with _errors():
        values = read_file(config_path(os.environ))
        for key, spec in KEYS.items():
            resolved = resolve_key(key, values, os.environ)
            if resolved.value is None:
                typer.echo(f"{key} = (not set)")
                continue
            shown = display_value(key, resolved.value)
            source = spec.env if resolved.source == "env" else resolved.source
            typer.echo(f"{key} = {shown}  ({source})")


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
    from nanoedit.check import check_backends, check_exit_code
    from nanoedit.config import Flags, load_settings, plain_http_warning
    from nanoedit.report import error_console
    from nanoedit.runner import client_for

    with _errors(json_out):
        settings = load_settings(os.environ, Flags(sandbox=sandbox))
        console = error_console(sys.stderr)
        warnings = [*settings.warnings]
        warnings += [
            warning
            for name in ("openai", "duomi")
            if (warning := plain_http_warning(settings.backend_settings(name)))
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
    from nanoedit.config import config_path

    typer.echo(str(config_path(os.environ)))


@sandbox_app.command("serve")
def sandbox_serve(
    port: Annotated[
        int, typer.Option("--port", help="Port on 127.0.0.1 (0 picks a free one).")
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
        float, typer.Option("--latency", min=0, help="Seconds each API answer takes at least.")
    ] = 0.0,
    task_seconds: Annotated[
        float, typer.Option("--task-seconds", min=0, help="How long a URL-list task runs.")
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
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write one of the sandbox's sample images, to try the tool with."""
    from nanoedit.sandbox import SAMPLE_NAMES, sample_image
    from nanoedit.save import check_output_path, write_atomic

    with _errors():
        if name not in SAMPLE_NAMES:
            raise UsageError(f"no sample called {name!r}; choose one of: {', '.join(SAMPLE_NAMES)}")
        target = output or Path(name)
        check_output_path(target, overwrite)
        data, _mime = sample_image(name)
        try:
            write_atomic(target, data, overwrite=overwrite)
        except FileExistsError:
            raise UsageError(
                f"{target} already exists; pass --overwrite or choose another -o"
            ) from None
        typer.echo(str(target))


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
    app(prog_name="nanoedit")
