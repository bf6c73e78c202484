"""The one mapping of what a command raises to what it prints and its exit code: a
NanoeditError, Ctrl-C, a parser's error (with --json, as JSON too) and a reader that left.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from nanoedit.cli.compat import ParserContext, ParserError, get_current_context
from nanoedit.errors import ExitCode, NanoeditError

INTERRUPTED = "interrupted: nothing more was sent; images already saved are kept"

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

            from nanoedit.errors import UsageError
            from nanoedit.output.report import error_envelope

            # The parser's usage errors exit 2, as nanoedit's own do.
            error = error_envelope(UsageError(exc.format_message()))
            typer.echo(json.dumps(error, ensure_ascii=False))
        raise


def json_given(ctx: ParserContext) -> bool:
    """Whether --json was given on the command line ``ctx`` belongs to."""
    return bool(ctx.meta.get(_JSON_GIVEN))


def stdout_closed() -> NoReturn:
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
        stdout_closed()


class Commands(TyperGroup):
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


def json_asked() -> bool:
    """Whether the command running was given its own ``--json`` option (whatever its
    parameter is named), so that its failure is the JSON error envelope too."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return False
    return any(
        "--json" in getattr(param, "opts", ()) and ctx.params.get(param.name or "") is True
        for param in ctx.command.params
    )


@contextmanager
def errors(json_lines: bool | None = None, interrupted: str = INTERRUPTED) -> Iterator[None]:
    """Turn every expected error into its message and exit code (with ``json_lines``, by
    default when the command was given --json, the JSON error envelope on stdout too); Ctrl-C
    into 130 (saying ``interrupted``), and a closed stdout (a reader that left) into 141,
    quietly."""
    try:
        yield
    except NanoeditError as exc:
        fail(exc, json_asked() if json_lines is None else json_lines)
    except KeyboardInterrupt:
        typer.echo(interrupted, err=True)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except BrokenPipeError:
        stdout_closed()


def fail(error: NanoeditError, json_lines: bool = False) -> NoReturn:
    """Print ``error`` (with ``json_lines``, as a JSON object on stdout too) and exit with its
    code."""
    from nanoedit.output.report import error_console, error_envelope

    if json_lines:
        import json

        typer.echo(json.dumps(error_envelope(error), ensure_ascii=False))
    error_console(sys.stderr).print(f"error: {error.message}", style="bold red")
    raise typer.Exit(error.exit_code) from None


def warn(text: str) -> None:
    """A warning on stderr, in yellow on a terminal."""
    from nanoedit.output.report import error_console

    error_console(sys.stderr).print(f"warning: {text}", style="yellow")


def unwritable_stdout(error: OSError) -> None:
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
