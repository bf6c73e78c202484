"""The command line: parse arguments, call the core, print. Nothing here builds a request.

Heavy modules (httpx, Pillow, rich progress) are imported inside the commands, so
``nanoedit --help`` and ``nanoedit --version`` stay fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from nanoedit import __version__
from nanoedit.errors import ExitCode, NanoeditError, UsageError

if TYPE_CHECKING:
    from nanoedit.jobs import Job, Options


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


app = typer.Typer(
    name="nanoedit",
    help="Edit and generate images with Google's nano-banana models through reseller APIs.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Locals in a traceback could hold an API key: never show them.
    pretty_exceptions_show_locals=False,
)
config_app = typer.Typer(
    help="Show and change settings: backends, keys, defaults.", no_args_is_help=True
)
sandbox_app = typer.Typer(
    help="The built-in emulated API server: no key, no network, no cost.", no_args_is_help=True
)
app.add_typer(config_app, name="config")
app.add_typer(sandbox_app, name="sandbox")

PromptOpt = Annotated[
    str, typer.Option("--prompt", "-p", help="What to do, in words.", show_default=False)
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
        show_default=False,
        help="Resolution of the result, any case (3.x models).",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="Model id, passed to the server as given.", show_default=False
    ),
]
CountOpt = Annotated[int, typer.Option("--count", "-n", min=1, max=10, help="Images per job.")]
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
    typer.Option("--output", "-o", help="File to write the one result to.", show_default=False),
]
OutDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--out-dir",
        "-d",
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
    """Turn every expected error into its message and exit code; Ctrl-C into 130."""
    try:
        yield
    except NanoeditError as exc:
        _fail(exc, json_lines)
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing more was sent; images already saved are kept", err=True)
        raise typer.Exit(ExitCode.INTERRUPTED) from None


def _fail(error: NanoeditError, json_lines: bool = False) -> NoReturn:
    from nanoedit.report import error_console, error_json

    if json_lines:
        import json

        typer.echo(json.dumps({"ok": False, "error": error_json(error)}, ensure_ascii=False))
    error_console(sys.stderr).print(f"error: {error.message}", style="bold red")
    raise typer.Exit(error.exit_code) from None


def _run(
    make_jobs: Callable[[Options], list[Job]],
    *,
    prompt: str,
    ratio: Ratio | None,
    size: Size | None,
    model: str | None,
    count: int,
    backend: BackendChoice | None,
    sandbox: bool,
    out_dir: Path | None,
    overwrite: bool,
    response_format: ResponseFormat,
    json_lines: bool,
) -> None:
    from nanoedit.config import Flags, load_settings
    from nanoedit.jobs import Options
    from nanoedit.report import Reporter
    from nanoedit.runner import Runner, client_for, exit_code_for

    with _errors(json_lines):
        if not prompt.strip():
            raise UsageError('the prompt is empty; say what you want with -p "..."')
        flags = Flags(
            backend=backend.value if backend else None,
            ratio=ratio.value if ratio else None,
            size=size.value if size else None,
            out_dir=str(out_dir) if out_dir else None,
            sandbox=sandbox,
        )
        settings = load_settings(os.environ, flags)
        options = Options(
            prompt=prompt.strip(),
            ratio=settings.ratio,
            size=settings.size,
            model=model.strip() if model and model.strip() else None,
            count=count,
            response_format=response_format.value,
        )
        jobs = make_jobs(options)
        with (
            client_for(settings) as client,
            Reporter(sys.stdout, sys.stderr, json_lines=json_lines) as reporter,
        ):
            outcomes = Runner(settings, client, reporter, overwrite=overwrite).run(jobs)
        reporter.summary(outcomes)
    raise typer.Exit(exit_code_for(outcomes))


@app.command()
def edit(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Images to edit: files or http(s) URLs; one job each.",
            show_default=False,
            metavar="INPUT...",
        ),
    ],
    prompt: PromptOpt,
    ref: Annotated[
        list[str] | None,
        typer.Option(
            "--ref",
            "-r",
            help="Reference image sent with every job (repeatable).",
            show_default=False,
        ),
    ] = None,
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
) -> None:
    """Edit images: each INPUT is one job, with every --ref image sent after it."""
    from nanoedit.jobs import build_edit_jobs

    _run(
        lambda options: build_edit_jobs(inputs, ref or [], options, output),
        prompt=prompt, ratio=ratio, size=size, model=model, count=count, backend=backend,
        sandbox=sandbox, out_dir=out_dir, overwrite=overwrite,
        response_format=response_format, json_lines=json_lines,
    )  # fmt: skip


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
) -> None:
    """Make images from a text prompt alone."""
    from nanoedit.jobs import build_generate_job

    _run(
        lambda options: [build_generate_job(options, output)],
        prompt=prompt, ratio=ratio, size=size, model=model, count=count, backend=backend,
        sandbox=sandbox, out_dir=out_dir, overwrite=overwrite,
        response_format=response_format, json_lines=json_lines,
    )  # fmt: skip


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
    from nanoedit.config import config_path, read_file, spec_for, write_file

    with _errors():
        spec = spec_for(key)
        if value == "-":
            value = sys.stdin.readline().strip()
        checked = spec.check(value)
        path = config_path(os.environ)
        values = read_file(path)
        values[key] = checked
        write_file(path, values)
        shown = "(hidden)" if spec.secret else checked
        typer.echo(f"set {key} = {shown} in {path}", err=True)


@config_app.command("get")
def config_get(key: KeyArg) -> None:
    """Print a setting's value as it applies now (keys masked). Exit 3 when unset."""
    from nanoedit.config import config_path, mask_secret, read_file, resolve_key, spec_for

    with _errors():
        spec = spec_for(key)
        resolved = resolve_key(key, read_file(config_path(os.environ)), os.environ)
        if resolved.value is None:
            typer.echo(f"{key} is not set; set it with: nanoedit config set {key} VALUE", err=True)
            raise typer.Exit(ExitCode.CONFIG)
        typer.echo(mask_secret(resolved.value) if spec.secret else resolved.value)


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
    from nanoedit.config import KEYS, config_path, mask_secret, read_file, resolve_key

    with _errors():
        values = read_file(config_path(os.environ))
        for key, spec in KEYS.items():
            resolved = resolve_key(key, values, os.environ)
            if resolved.value is None:
                typer.echo(f"{key} = (not set)")
                continue
            shown = mask_secret(resolved.value) if spec.secret else resolved.value
            source = spec.env if resolved.source == "env" else resolved.source
            typer.echo(f"{key} = {shown}  ({source})")


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
        float, typer.Option("--latency", min=0, help="Seconds added to each API answer.")
    ] = 0.0,
    task_seconds: Annotated[
        float, typer.Option("--task-seconds", min=0, help="How long a URL-list task runs.")
    ] = 2.0,
) -> None:
    """Serve the emulated APIs over HTTP for tests and pipelines (Ctrl-C stops)."""
    from nanoedit.sandbox import serve_forever

    try:
        serve_forever(
            host, port, faults=faults, latency=latency, task_seconds=task_seconds, log=sys.stderr
        )
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
    """The ``nanoedit`` console script."""
    app(prog_name="nanoedit")
