"""``nanoedit completion``: the shell completion scripts, as typer writes them."""

from enum import StrEnum
from typing import Annotated

import typer

from nanoedit.cli.compat import completion_script


class Shell(StrEnum):
    """Shells nanoedit ships completion scripts for."""

    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(
    shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.", show_default=False)],
) -> None:
    """Print the shell completion script; completions/ holds the same scripts."""
    typer.echo(completion_script(shell.value))
