"""Every use of typer's private modules, in one place: the parser's context and usage error
(typer's own copy of click), its choice type, a command's name, and the completion script.

A typer release that moves one of them breaks this module alone.
"""

from typer._click.core import Context as ParserContext
from typer._click.exceptions import UsageError as ParserError
from typer._click.globals import get_current_context
from typer._types import TyperChoice
from typer.main import get_command_name

__all__ = [
    "ParserContext",
    "ParserError",
    "TyperChoice",
    "completion_script",
    "get_command_name",
    "get_current_context",
]


def completion_script(shell: str) -> str:
    """Typer's completion script for ``shell``: it asks nanoedit itself for candidates at run
    time. Imported when asked for: no other command needs it."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(
        prog_name="nanoedit", complete_var="_NANOEDIT_COMPLETE", shell=shell
    )
