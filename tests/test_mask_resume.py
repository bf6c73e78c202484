"""A masked edit killed after its answer came, saved by ``nanoedit resume``: composited with
the mask its run was given, from the journal, and not paid for again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Served, journal_jobs, one_backend_env, paid, run_cli
from PIL import Image
from test_resume import KILLED_BEFORE_ANSWERED

from nanoedit.sandbox import sample_image

CAT = sample_image("cat.png")[0]


def test_resume_composites_a_killed_masked_edit_with_its_mask(
    served: Served, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("cat.png").write_bytes(CAT)
    mask = Image.new("L", (640, 480), 0)
    mask.paste(255, (100, 50, 300, 250))
    mask.save("mask.png")
    env = dict(os.environ) | one_backend_env(served, "openai")
    argv = ["edit", "cat.png", "-p", "a hat", "--mask", "mask.png", "--feather", "3",
            "--response-format", "b64_json", "-d", "out"]  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_ANSWERED, *argv],
        env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == -signal.SIGKILL, run.stderr
    [record] = journal_jobs()
    assert record.state == "submitted"
    assert record.spec["mask"]["mask"] == str(isolated / "mask.png")
    assert record.spec["mask"]["feather"] == 3
    (isolated / "elsewhere").mkdir()
    monkeypatch.chdir(isolated / "elsewhere")  # resume goes by the journal's absolute paths
    result = run_cli(["resume"], env=env)
    assert result.exit_code == 0, result.stderr
    saved = isolated / "out" / "cat-edit.png"  # PNG, though the gateway answers JPEG
    assert result.stdout == f"{saved}\n"
    with Image.open(isolated / "cat.png") as before, Image.open(saved) as after:
        assert after.format == "PNG" and after.size == (640, 480)
        old, new = before.convert("RGB"), after.convert("RGB")
        outside = [
            (x, y)
            for y in range(480)
            for x in range(640)
            if not (100 <= x < 300 and 50 <= y < 250)
            and old.getpixel((x, y)) != new.getpixel((x, y))
        ]
        assert outside == []
        assert old.getpixel((200, 150)) != new.getpixel((200, 150))
    assert len(paid(served)) == 1  # taken from the spool, not paid again
    [record] = journal_jobs()
    assert record.state == "saved"


def test_resume_refuses_to_composite_with_a_mask_changed_since(
    served: Served, isolated: Path
) -> None:
    Path("cat.png").write_bytes(CAT)
    mask = Image.new("L", (640, 480), 0)
    mask.paste(255, (0, 0, 10, 10))
    mask.save("mask.png")
    env = dict(os.environ) | one_backend_env(served, "openai")
    argv = ["edit", "cat.png", "-p", "a hat", "--mask", "mask.png",
            "--response-format", "b64_json"]  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_ANSWERED, *argv],
        env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == -signal.SIGKILL, run.stderr
    mask.paste(255, (0, 0, 20, 20))
    mask.save("mask.png")
    result = run_cli(["resume"], env=env)
    assert result.exit_code == 4
    assert (
        f"the mask {isolated / 'mask.png'} changed since the job was sent (its SHA-256 "
        "differs); put back the mask it was sent with, or send the job again"
    ) in " ".join(result.stderr.split())
    assert not Path("cat-edit.png").exists()
    assert len(paid(served)) == 1
