"""The README stays true: its --help section is the app's own."""

from __future__ import annotations

from readme_help import README, help_block, readme_with


def test_readme_help_section_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert readme_with(help_block(), text) == text, (
        "the README's --help section is stale; run: python tests/readme_help.py"
    )


def test_readme_first_screen_has_the_two_commands() -> None:
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:24])
    assert "nanoedit edit cat.png" in first_screen and "--sandbox" in first_screen
    assert ".venv/bin/python -m pytest" in first_screen
