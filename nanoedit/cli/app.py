"""The app: every command group joined into one typer app, the version, and the console
script's entry (``main``), which hands typer only the command named (:func:`app_for`).

Heavy modules (httpx, Pillow, rich progress) are imported inside the commands, so
``nanoedit --help`` and ``nanoedit --version`` stay fast.
"""

# No `from __future__ import annotations` here, unlike elsewhere: typer reads every
# command's signature each time the program starts, and annotations kept as strings would
# have to be evaluated again every time (3 of every 5 ms it takes).

import copy
import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from typer.models import CommandInfo

from nanoedit import __version__
from nanoedit.cli.chat import chat
from nanoedit.cli.compat import get_command_name
from nanoedit.cli.completion import completion
from nanoedit.cli.config import config_app
from nanoedit.cli.describe import schema, skill
from nanoedit.cli.errors import Commands, json_given, unwritable_stdout
from nanoedit.cli.history import history_app
from nanoedit.cli.mcp import mcp
from nanoedit.cli.models import models
from nanoedit.cli.presets import presets
from nanoedit.cli.run import edit, generate
from nanoedit.cli.sandbox import sandbox_app
from nanoedit.cli.tasks import fetch, resume

app = typer.Typer(
    name="nanoedit",
    cls=Commands,
    help="Edit and generate images with Google's nano-banana models through reseller APIs.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Locals in a traceback could hold an API key: never show them.
    pretty_exceptions_show_locals=False,
    # Plain help: rich's formatter pulls in markdown-it and costs ~100 ms on every --help.
    rich_markup_mode=None,
)
app.add_typer(config_app, name="config")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(history_app, name="history")
COMMANDS = (edit, generate, chat, fetch, resume, models, presets, mcp, completion, schema, skill)
for command in COMMANDS:
    app.command()(command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nanoedit {__version__}")
        raise typer.Exit()


def _usage(ctx: typer.Context, value: bool) -> None:
    """Print the whole command line's description (with --json, as one JSON document) and
    end: read from the parser itself, every command included."""
    if not value:
        return
    import json

    from nanoedit.describe.usage import usage, usage_text

    document = usage(ctx.find_root().command, program="nanoedit", version=__version__)
    if json_given(ctx):
        typer.echo(json.dumps(document, ensure_ascii=False, indent=1))
    else:
        typer.echo(usage_text(document), nl=False)
    raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    usage: Annotated[
        bool,
        typer.Option(
            "--usage",
            callback=_usage,
            is_eager=True,
            help="Describe every command, option and exit code (with --json: for programs).",
        ),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="With --usage: one JSON document.")
    ] = False,
) -> None:
    """Edit and generate images with Google's nano-banana models through reseller APIs."""


def main() -> None:
    """Run the command line (the console script starts in ``nanoedit.__main__``)."""
    try:
        app_for(sys.argv[1:])(prog_name="nanoedit")
    except OSError as exc:
        unwritable_stdout(exc)
        raise


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
