"""The agent skill shipped in the package (``SKILL.md``): printed by ``nanoedit skill`` and
installed into an agent's skills folder, never replacing a different file unasked."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from nanoedit.errors import OutputError, OverwriteError

SKILL_NAME = "nanoedit"


def skill_text() -> str:
    """The skill's Markdown, as shipped."""
    return files("nanoedit").joinpath("SKILL.md").read_text(encoding="utf-8")


def install_skill(folder: Path, *, force: bool = False) -> tuple[Path, bool]:
    """Write the skill to ``folder/nanoedit/SKILL.md`` (the layout skills folders use: one
    folder per skill); return its path and whether it was written (False: the same file was
    there already). A different file there is replaced only with ``force``."""
    target = folder / SKILL_NAME / "SKILL.md"
    text = skill_text()
    try:
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            return target, False
    except (OSError, UnicodeDecodeError):
        pass  # unreadable: a different file, which --force alone may replace
    if target.exists() and not force:
        raise OverwriteError(
            f"{target} exists and differs from nanoedit's skill; pass --force to replace it, "
            "or compare it with: nanoedit skill"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        partial.write_text(text, encoding="utf-8")
        # Whole or not at all: an agent reading the folder never sees half a skill.
        partial.replace(target)
    except OSError as exc:
        raise OutputError(
            f"the skill could not be written to {target} ({exc.strerror or exc}); "
            "choose a folder you can write to"
        ) from None
    return target, True
