"""The README stays true: its --help section is the app's own, and what it promises holds."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    OPENAI_KEY,
    Served,
    backend_env,
    distinct_pngs,
    run_cli,
    two_runs_at_once,
)
from readme_help import README, help_block, readme_with

from nanoedit.backends.registry import backend_names
from nanoedit.catalog.models import shipped_catalog
from nanoedit.output.images import can_convert_to
from nanoedit.output.provenance import read as read_provenance
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
        [sys.executable, "-c", code, "cat-edit.jpg"], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    record = json.loads(result.stdout)
    assert record == read_provenance(Path("cat-edit.jpg"))
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
    # The gateway's nano-banana-hd sends PNG, nano-banana-pro JPEG: each name converts from
    # one or the other.
    for model in ("nano-banana-hd", "nano-banana-pro"):
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


@pytest.fixture
def sandbox_serve() -> Iterator[str]:
    """`nanoedit sandbox serve --port 0`, as the README starts it; yields its base URL."""
    serve = subprocess.Popen(
        [str(Path(sys.executable).with_name("nanoedit")), "sandbox", "serve", "--port", "0",
         "--task-seconds", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        yield serve.stdout.readline().strip()
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        assert serve.stdout is not None
        serve.stdout.close()


def test_readme_gives_a_sandbox_base_url_for_every_backend_and_each_works(
    sandbox_serve: str,
) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The sandbox") : text.index("## Recipes")]
    listed = re.findall(r"`NANOEDIT_([A-Z]+)_BASE_URL=http://127\.0\.0\.1:8787(\S*?)`", section)
    assert [name.lower() for name, _ in listed] == list(backend_names())
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    for name, path in listed:
        backend = name.lower()
        env = {
            f"NANOEDIT_{name}_BASE_URL": sandbox_serve + path,
            f"NANOEDIT_{name}_API_KEY": "any-key",
            f"NANOEDIT_{name}_POLL_INTERVAL": "0.01",
        }
        # duomi takes URLs only; the served sandbox has its samples at /samples/.
        image = f"{sandbox_serve}/samples/cat.png" if backend == "duomi" else "cat.png"
        result = run_cli(
            ["edit", image, "-p", "x", "--backend", backend, "-o", f"{backend}.png"], env=env
        )
        assert (result.exit_code, result.stdout) == (0, f"{backend}.png\n"), result.stderr


def test_readme_says_one_limit_of_images_per_request_and_it_is_the_codes() -> None:
    # It said "3 images per request" in one place and "3 reference images" in another.
    text = " ".join(README.read_text(encoding="utf-8").split())
    said = re.findall(r"at most (\d+) (\w+ )?images? per request", text)
    catalog = shipped_catalog()
    live = {
        model.limits.max_images
        for model in catalog.models.values()
        if not model.is_shut_down(catalog.today)
    }
    assert [(int(count), word) for count, word in said] == [(limit, "") for limit in live]
    assert "reference images on" not in text


def test_the_quick_starts_files_are_ignored_in_a_checkout() -> None:
    root = README.parent
    if not (root / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    quick_start = ["cat.png", "cat-edit.jpg", "cat-edit-2.jpg", "cat-edit-3.png"]
    ignored = subprocess.run(
        ["git", "-C", str(root), "check-ignore", "--no-index", *quick_start],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ignored.stdout.split() == quick_start
    # Only at the top, where the README's first command runs: nowhere else.
    kept = subprocess.run(
        ["git", "-C", str(root), "check-ignore", "--no-index", "tests/cat.png", "docs/cat-edit.png"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (kept.returncode, kept.stdout) == (1, "")


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
