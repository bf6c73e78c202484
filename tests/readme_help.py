"""The README's ``--help`` section, made from the app itself.

``python tests/readme_help.py`` rewrites the section in README.md; ``test_readme.py`` fails
when it is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from typer.testing import CliRunner

from nanoedit.cli.app import app

README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS: tuple[tuple[str, ...], ...] = (("--help",), ("edit", "--help"), ("generate", "--help"))
START = "<!-- help:start -->"
END = "<!-- help:end -->"


def help_block() -> str:
    """Every ``--help`` screen the README shows, at 80 columns, in a fenced block."""
    screens = []
    for args in COMMANDS:
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "80", "NO_COLOR": "1"})
        assert result.exit_code == 0, result.output
        screens.append(f"$ nanoedit {' '.join(args)}\n{result.stdout.rstrip()}\n")
    return f"{START}\n```text\n" + "\n".join(screens) + f"```\n{END}"


def readme_with(block: str, text: str) -> str:
    """The README text with its help section replaced by ``block``."""
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"README.md has no {START} ... {END} section")
    return pattern.sub(lambda _: block, text)


if __name__ == "__main__":
    README.write_text(readme_with(help_block(), README.read_text(encoding="utf-8")), "utf-8")
    sys.stdout.write(f"updated the --help section of {README.name}\n")
