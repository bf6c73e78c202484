"""The README stays true: its --help section is the app's own."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import Served, backend_env, run_cli
from readme_help import README, help_block, readme_with

from nanoedit.provenance import read as read_provenance
from nanoedit.sandbox import sample_image
from nanoedit.save import can_convert_to


def test_readme_help_section_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert readme_with(help_block(), text) == text, (
        "the README's --help section is stale; run: python tests/readme_help.py"
    )


def test_readme_first_screen_has_the_two_commands() -> None:
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:24])
    assert "nanoedit edit cat.png" in first_screen and "--sandbox" in first_screen
    assert ".venv/bin/python -m pytest" in first_screen


def test_readme_provenance_one_liner_prints_the_record(served: Served) -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r'`python -c "([^"`]+)" IMAGE`', text)
    assert found, "the Provenance section has no python -c one-liner"
    code = re.sub(r"\s*\n\s*", " ", found.group(1))  # Markdown shows a line break as a space
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    assert run_cli(["edit", "cat.png", "-p", "x"], env=backend_env(served)).exit_code == 0
    result = subprocess.run(
        [sys.executable, "-c", code, "cat-edit.png"], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    record = json.loads(result.stdout)
    assert record == read_provenance(Path("cat-edit.png"))
    assert (record["prompt"], record["inputs"][0]["name"]) == ("x", "cat.png")


def test_readme_every_saved_image_carries_where_it_came_from_converted_or_not(
    served: Served,
) -> None:
    # The README said so while `-o res.webp` (and .jpg, .png) dropped it in the conversion.
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert "Every saved image carries where it came from" in text
    found = re.search(r"An image `-o` converts \((.*?) for another format", text)
    assert found, "the Provenance section no longer says what -o conversions keep"
    names = re.findall(r"`(?:-o )?(res\.\w+)`", found.group(1))
    assert names == ["res.webp", "res.jpg", "res.png"]
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    # nano-banana sends PNG, nano-banana-pro JPEG: each name converts from one or the other.
    for model in ("nano-banana", "nano-banana-pro"):
        Path(model).mkdir()
        for name in names:
            output = Path(model, name)
            result = run_cli(
                ["edit", "cat.png", "-p", "x", "-m", model, "-o", str(output)],
                env=backend_env(served),
            )
            assert result.exit_code == 0, result.stderr
            record = read_provenance(output)
            assert record is not None, f"{output} carries no provenance"
            assert (record["prompt"], record["model"]) == ("x", model)
    # The formats the README says have no place for it: saved, and said to hold none.
    holding_none = re.search(r"carries it too; (.*?) have no place for it", text)
    assert holding_none
    formats = re.findall(r"[A-Z]+", holding_none.group(1))
    assert formats == ["GIF", "BMP", "TIFF", "AVIF"]
    for fmt in formats:
        if not can_convert_to(fmt.lower()):
            continue  # AVIF where Pillow cannot write it: kept as it came, with provenance
        name = f"res.{fmt.lower()}"
        result = run_cli(["edit", "cat.png", "-p", "x", "-o", name], env=backend_env(served))
        assert result.exit_code == 0, result.stderr
        assert f"warning: {name} holds no provenance: {fmt} has no place for it;" in result.stderr
