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


def replicate_bullet() -> str:
    """The README's paragraph on the replicate backend, its lines joined."""
    text = README.read_text(encoding="utf-8")
    found = re.search(r"^- \*\*replicate\*\* — .*?(?=^- \*\*)", text, re.S | re.M)
    assert found, "the README has no replicate backend paragraph"
    return " ".join(found.group(0).split())


def test_readme_says_when_replicate_holds_an_answer_with_prefer_wait(served: Served) -> None:
    said = replicate_bullet()
    assert (
        "The answer comes at once with the prediction's id, which the journal keeps, and the "
        "prediction is polled at `GET /v1/predictions/{id}` (first after "
        "`replicate.poll_interval`, 1 s, then 1.5\N{MULTIPLICATION SIGN} longer each time up to 10 s) until it ends. "
        "With the journal off (`--no-history`), the job's last prediction is sent with "
        "`Prefer: wait=N`, N the seconds left of `--timeout` up to 60, so that its answer "
        "comes when the image is made; the others are not held, so they run side by side."
    ) in said
    assert "`Prefer: wait=60` and" not in said
    # What it says is what is sent: journaled, no prediction is held; without the journal,
    # only the last of a job's predictions.
    env = backend_env(served, openai=False, duomi=False, replicate=True)
    journaled = run_cli(["generate", "-p", "a fox", "-n", "2", "--backend", "replicate"], env=env)
    assert journaled.exit_code == 0, journaled.stderr
    run_cli(
        ["generate", "-p", "a fox", "-n", "2", "--backend", "replicate", "--no-history"], env=env
    )
    created = [r for r in served.sandbox.received if r.path.endswith("/predictions")]
    assert [r.headers.get("prefer") for r in created] == [None, None, None, "wait=60"]
