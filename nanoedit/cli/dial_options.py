"""The providers' dials as options of edit and generate (fields of
:class:`~nanoedit.cli.options.RunFlags`): each is sent where the catalog says the model takes it
on its backend, and refused before sending elsewhere (``nanoedit models`` lists them)."""

# No `from __future__ import annotations`: typer reads these annotations as objects.

from typing import Annotated

import typer

from nanoedit.cli.compat import TyperChoice
from nanoedit.jobs import FIDELITIES, FORMATS, QUALITIES, THINKING_LEVELS, Dials

PANEL = "Provider dials"

SeedOpt = Annotated[
    int | None,
    typer.Option(
        "--seed",
        metavar="N",
        min=0,
        max=2**31 - 1,
        show_default=False,
        rich_help_panel=PANEL,
        help="Seed the model's sampling (gemini, vertex, fal, openrouter).",
    ),
]
ThinkingOpt = Annotated[
    str | None,
    typer.Option(
        "--thinking",
        click_type=TyperChoice(THINKING_LEVELS, case_sensitive=False),
        show_default=False,
        rich_help_panel=PANEL,
        help="Thinking level, on models that have levels (gemini, vertex).",
    ),
]
SearchOpt = Annotated[
    bool,
    typer.Option(
        "--search",
        rich_help_panel=PANEL,
        help="Ground the image in Google Search results; each request's search is paid apart.",
    ),
]
ImageOnlyOpt = Annotated[
    bool,
    typer.Option(
        "--image-only",
        rich_help_panel=PANEL,
        help="Ask for the image alone, no text beside it (gemini, vertex).",
    ),
]
OutputFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        click_type=TyperChoice(FORMATS, case_sensitive=False),
        show_default=False,
        rich_help_panel=PANEL,
        help="Image format the API renders, never converted here (fal, replicate, vertex, "
        "gpt-image); the saved file's extension follows it.",
    ),
]
SafetyOpt = Annotated[
    str | None,
    typer.Option(
        "--safety",
        metavar="LEVEL",
        show_default=False,
        rich_help_panel=PANEL,
        help="The backend's safety level: fal 1 (strictest) to 6, replicate "
        "block_low_and_above, block_medium_and_above or block_only_high.",
    ),
]
QualityOpt = Annotated[
    str | None,
    typer.Option(
        "--quality",
        click_type=TyperChoice(QUALITIES, case_sensitive=False),
        show_default=False,
        rich_help_panel=PANEL,
        help="Rendering quality of a gpt-image model.",
    ),
]
FidelityOpt = Annotated[
    str | None,
    typer.Option(
        "--input-fidelity",
        click_type=TyperChoice(FIDELITIES, case_sensitive=False),
        show_default=False,
        rich_help_panel=PANEL,
        help="How closely a gpt-image edit keeps its input images.",
    ),
]


def dials_of(
    seed: int | None,
    thinking: str | None,
    search: bool,
    image_only: bool,
    format: str | None,
    safety: str | None,
    quality: str | None,
    input_fidelity: str | None,
) -> Dials:
    """The dials as the flags give them, choices in lower case."""
    return Dials(
        seed=seed,
        thinking=thinking.lower() if thinking else None,
        search=search,
        image_only=image_only,
        format=format.lower() if format else None,
        safety=safety.strip() if safety else None,
        quality=quality.lower() if quality else None,
        input_fidelity=input_fidelity.lower() if input_fidelity else None,
    )
