"""The commands that describe nanoedit to programs and agents: ``schema`` (the JSON Schemas of
its JSON) and ``skill`` (the agent skill, printed or installed)."""

# No `from __future__ import annotations`: typer reads these annotations as objects.

from pathlib import Path
from typing import Annotated

import typer

from nanoedit.cli.errors import errors


def schema(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME]",
            help="The schema to print (job-line, result, error…); without it, the list.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the JSON Schema of a --from line or of a --json record (draft 2020-12).

    Each record's "schema" field ("nanoedit/result/1") names its schema and version.
    """
    from nanoedit.describe.schemas import schema_names, schema_text

    with errors():
        if name is None:
            typer.echo("\n".join(schema_names()))
        else:
            typer.echo(schema_text(name), nl=False)


def skill(
    install: Annotated[
        Path | None,
        typer.Option(
            "--install",
            metavar="DIR",
            help="Write the skill to DIR/nanoedit/SKILL.md (an agent's skills folder).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --install: replace a different SKILL.md.")
    ] = False,
) -> None:
    """Print the agent skill (SKILL.md): when to use nanoedit, its commands and exit codes."""
    from nanoedit.describe.skill import install_skill, skill_text

    with errors():
        if install is None:
            typer.echo(skill_text(), nl=False)
            return
        target, written = install_skill(install, force=force)
        typer.echo(str(target))
        if not written:
            typer.echo(f"{target} is already this skill; nothing written", err=True)
