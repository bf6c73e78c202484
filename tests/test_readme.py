"""The README stays true: its --help section is the app's own, and what it promises holds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from conftest import OPENAI_KEY, Served, backend_env, distinct_pngs, run_cli, two_runs_at_once
from readme_help import README, help_block, readme_with

from nanoedit.provenance import read as read_provenance
from nanoedit.sandbox import sample_image


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


def test_readme_a_live_runs_jobs_are_left_to_it_by_skip_existing_too(
    held_answers: tuple[Served, threading.Event], isolated: Path
) -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert (
        "Jobs a live process still has under way are left to it. Rerunning the original "
        "command with `--skip-existing` does the same."
    ) in text
    served, release = held_answers
    distinct_pngs(isolated / "in", 8)
    argv = ["edit", "in", "-p", "x", "-d", "out", "--skip-existing", "--json"]
    env = {"NANOEDIT_OPENAI_BASE_URL": served.base_url, "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY}
    done = two_runs_at_once(argv, isolated, env, release.set)
    assert sum(1 for request in served.sandbox.received if request.method == "POST") == 8
    assert [code for code, _, _ in done] == [0, 0]
    # One run sent every job; the other left each to it, and lists its images as skipped.
    states = sorted(
        sorted(json.loads(line)["state"] for line in out.splitlines()) for _, out, _ in done
    )
    assert states == [["saved"] * 8, ["skipped"] * 8]
    assert len(os.listdir(isolated / "out")) == 8
