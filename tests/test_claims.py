"""A job is its request, its inputs (where they are, not only their bytes) and the names it
saves to: ``--skip-existing`` never takes one job's image for another's, and two runs at once
never both send a job, each claiming its jobs in the journal in one transaction."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    NANOEDIT,
    OPENAI_KEY,
    Served,
    backend_env,
    distinct_pngs,
    run_installed,
    wait_for,
)
from PIL import Image

from nanoedit.journal import Journal, data_dir
from nanoedit.provenance import read as read_provenance
from nanoedit.sandbox import Sandbox, SandboxServer, sample_image

CAT = sample_image("cat.png")[0]
EDIT_SIZE = (1184, 864)


def posts(served: Served) -> int:
    return sum(1 for request in served.sandbox.received if request.method == "POST")


def twins(isolated: Path) -> None:
    """x/a.png and y/a.png: two inputs with the same bytes and the same stem."""
    for folder in ("x", "y"):
        (isolated / folder).mkdir()
        (isolated / folder / "a.png").write_bytes(CAT)


def made_from(path: Path) -> str:
    made = read_provenance(path)
    assert made is not None
    return str(made["inputs"][0]["name"])


@pytest.mark.parametrize("history", [[], ["--no-history"]], ids=["journal", "provenance"])
def test_a_rerun_keeps_two_inputs_with_the_same_bytes_apart(
    served: Served, isolated: Path, history: list[str]
) -> None:
    twins(isolated)
    argv = ["edit", "x/a.png", "y/a.png", "-p", "a hat", "-d", "out", "-j", "1", *history]
    code, out, _ = run_installed(argv, isolated, backend_env(served))
    assert (code, out) == (0, "out/a-edit.png\nout/a-edit-2.png\n")
    assert (made_from(isolated / "out/a-edit.png"), made_from(isolated / "out/a-edit-2.png")) == (
        "x/a.png", "y/a.png"
    )  # fmt: skip
    code, out, err = run_installed([*argv, "--skip-existing"], isolated, backend_env(served))
    assert (code, out) == (0, "out/a-edit.png\nout/a-edit-2.png\n"), err
    assert err.splitlines()[-1] == "2 jobs: 0 done, 0 failed, 2 skipped, 0 images saved"
    assert posts(served) == 2


@pytest.mark.parametrize("history", [[], ["--no-history"]], ids=["journal", "provenance"])
def test_skip_existing_sends_the_job_never_done_and_skips_only_the_one_done(
    served: Served, isolated: Path, history: list[str]
) -> None:
    # y/a.png was edited alone first: its image took the name a-edit.png.
    twins(isolated)
    first = ["edit", "y/a.png", "-p", "a hat", "-d", "out", *history]
    assert run_installed(first, isolated, backend_env(served))[:2] == (0, "out/a-edit.png\n")
    argv = ["edit", "x/a.png", "y/a.png", "-p", "a hat", "-d", "out", "-j", "1", "--skip-existing"]
    code, out, err = run_installed([*argv, *history], isolated, backend_env(served))
    # y's image is found where it is, x is sent: each job once, and no image listed twice.
    assert (code, out) == (0, "out/a-edit.png\nout/a-edit-3.png\n"), err
    assert posts(served) == 2
    assert sorted(os.listdir(isolated / "out")) == ["a-edit-3.png", "a-edit.png"]
    assert (made_from(isolated / "out/a-edit.png"), made_from(isolated / "out/a-edit-3.png")) == (
        "y/a.png", "x/a.png"
    )  # fmt: skip
    with Image.open(isolated / "out/a-edit-3.png") as image:
        assert (image.format, image.size) == ("PNG", EDIT_SIZE)
