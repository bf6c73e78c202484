"""A closed stderr (``2>&-``, as under cron) loses the messages, never the exit code.

Python starts such a process with ``sys.stderr`` None, and every message written to it failed
the run with exit 1: a saved image, a missing file (4) and a batch alike, the batch before it
sent anything. Run through the installed command, its stderr closed at the descriptor by the
shell, as the README says it may be.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import Served, backend_env, image_info
from readme_help import README

from nanoedit.sandbox import sample_image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))


def _closed_stderr() -> str:
    """How the README says stderr may be closed, read from its sentence that promises the
    exit code survives it."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    found = re.search(
        r"A stderr that cannot be written[^.]*?\(`(2>&-)`[^.]*?never the exit code\.", text
    )
    assert found, "the README no longer says that a closed stderr keeps the exit code"
    return found.group(1)


def _run(
    args: list[str], env: dict[str, str] | None = None, stdout: str = ""
) -> subprocess.CompletedProcess[str]:
    """The installed command with its stderr closed by the shell; stdout is kept, or sent
    where the redirection ``stdout`` says."""
    line = f"{shlex.join([NANOEDIT, *args])} {stdout} {_closed_stderr()}"
    return subprocess.run(
        ["sh", "-c", line], env=dict(os.environ) | (env or {}), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, timeout=120,
    )  # fmt: skip


def test_a_saved_image_exits_0_with_stderr_closed(sample: Path) -> None:
    run = _run(["edit", "cat.png", "-p", "a hat", "--sandbox"])
    assert (run.returncode, run.stdout) == (0, "cat-edit.jpg\n")
    assert image_info("cat-edit.jpg") == ("JPEG", (1200, 896))


def test_a_missing_file_exits_4_with_stderr_closed(sample: Path) -> None:
    run = _run(["edit", "missing.png", "-p", "a hat", "--sandbox"])
    assert (run.returncode, run.stdout) == (4, "")
    assert sorted(os.listdir()) == ["cat.png"]


def test_both_jobs_of_a_batch_are_sent_and_saved_with_stderr_closed(
    served: Served, sample: Path
) -> None:
    Path("dog.jpg").write_bytes(sample_image("dog.jpg")[0])
    run = _run(["edit", "cat.png", "dog.jpg", "-p", "a hat"], backend_env(served))
    assert run.returncode == 0
    assert sorted(run.stdout.splitlines()) == ["cat-edit.jpg", "dog-edit.jpg"]
    assert image_info("cat-edit.jpg") == ("JPEG", (1200, 896))
    assert image_info("dog-edit.jpg") == ("JPEG", (1200, 896))
    edits = [r for r in served.sandbox.received if r.method == "POST"]
    assert len(edits) == 2


def test_a_version_that_cannot_be_written_exits_4_with_stderr_closed() -> None:
    run = _run(["--version"], stdout="> /dev/full")
    assert (run.returncode, run.stdout) == (4, "")
