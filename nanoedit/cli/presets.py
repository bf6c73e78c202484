"""``nanoedit presets``: the presets ``--preset`` can name, built in and from the config file,
each written as the TOML table that makes it (to copy into the config file and change)."""

# No `from __future__ import annotations`: typer reads these annotations as objects.

from typing import Annotated

import typer

from nanoedit.cli.errors import errors
from nanoedit.cli.options import environment


def presets(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME]", help="The preset to show; without it, all.", show_default=False
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per preset on stdout.")
    ] = False,
) -> None:
    """The presets --preset NAME can use: each one's source (built in, or the config file,
    which overrides a built-in one of the same name), prompt template and settings.

    Each is printed as the [presets.NAME] table that makes it: copy one into the config file
    (nanoedit config path) under a new name, or the same name to change the built-in one.
    """
    import json

    from nanoedit.settings.presets import PresetBook

    with errors(json_out):
        book = PresetBook.of(environment(ctx).environ)
        shown = book.all() if name is None else [book.find(name)]
        if json_out:
            for preset in shown:
                typer.echo(json.dumps(preset.as_json(), ensure_ascii=False))
            return
        typer.echo("\n".join(preset.as_toml() for preset in shown), nl=False)
