"""``nanoedit sandbox``: serve the emulated APIs, list their faults, write a sample image."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from nanoedit.cli.errors import errors, fail
from nanoedit.cli.options import output_path
from nanoedit.errors import ExitCode, UsageError

sandbox_app = typer.Typer(
    help="The built-in emulated API server: no key, no network, no cost.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


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
        fail(UsageError(str(exc)))
    except OSError as exc:
        fail(UsageError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"))
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
            parser=output_path,
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

    with errors():
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
