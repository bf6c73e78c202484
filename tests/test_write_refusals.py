"""Every refusal to write comes before the first request: a run that could not save its images,
its sidecars or its report sends nothing, and the sandbox over loopback counts 0 requests.

``-o FILE``, ``--sidecar``, ``-d DIR`` and ``--report FILE`` are each checked while the run is
planned, with ``--skip-existing`` too (it skips only a job whose result is already there: an
image another request made at ``-o FILE`` is not that).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Served, backend_env, run_cli
from PIL import Image
from readme_help import README

from nanoedit.output.provenance import read as read_provenance
from nanoedit.sandbox import sample_image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
# A folder nobody may write in, even root: the kernel's read-only view of its settings.
UNWRITABLE = "/proc/sys"


def _files() -> dict[str, bytes]:
    """Every file under the working folder, with its bytes."""
    return {str(path): path.read_bytes() for path in sorted(Path(".").rglob("*")) if path.is_file()}


@pytest.fixture
def made(served: Served, isolated: Path) -> Path:
    """cat.png, and fox.png: an image an earlier request ("a red fox") made, provenance and
    all."""
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    first = run_cli(["generate", "-p", "a red fox", "-o", "fox.png"], env=backend_env(served))
    assert first.exit_code == 0, first.stderr
    served.sandbox.received.clear()
    return isolated / "fox.png"


def _setup(case: str) -> None:
    if case == "sidecar folder":
        Path("new.png.json").mkdir()
    elif case == "report over a file":
        Path("notes.html").write_text("my notes\n", encoding="utf-8")


CASES = [
    ("another request's image at -o",
     ["-o", "fox.png", "--skip-existing"], 4,
     "fox.png already exists and holds an image another request made (its prompt, model or "
     "inputs differ), so --skip-existing does not take it for this job's result; pass "
     "--overwrite to replace it, or choose another -o"),
    ("another request's image at -o, with --sidecar",
     ["-o", "fox.png", "--skip-existing", "--sidecar"], 4,
     "fox.png already exists and holds an image another request made (its prompt, model or "
     "inputs differ), so --skip-existing does not take it for this job's result; pass "
     "--overwrite to replace it, or choose another -o"),
    ("sidecar folder",
     ["-o", "new.png", "--sidecar", "--overwrite"], 4,
     "new.png.json, where --sidecar writes the provenance of new.png, is a folder; move it "
     "away, or choose another -o"),
    ("unwritable -o folder",
     ["-o", f"{UNWRITABLE}/out.png", "--skip-existing"], 4,
     f"the folder of {UNWRITABLE}/out.png ({UNWRITABLE}) is not writable; choose another -o"),
    ("unwritable -d",
     ["-d", f"{UNWRITABLE}/out", "--skip-existing"], 4,
     f"the output folder {UNWRITABLE}/out is not writable; choose another with -d"),
    ("-d under a file",
     ["-d", "cat.png/out"], 4,
     "the output folder cat.png/out is not a folder (cat.png is a file)"),
    ("unwritable report folder",
     ["--report", f"{UNWRITABLE}/run.html"], 4,
     f"the report {UNWRITABLE}/run.html cannot be written: {UNWRITABLE} is not writable; "
     "choose another --report"),
    ("unwritable report folder, to be made",
     ["--report", f"{UNWRITABLE}/pages/run.html", "--skip-existing"], 4,
     f"the report {UNWRITABLE}/pages/run.html cannot be written: {UNWRITABLE} is not "
     "writable; choose another --report"),
    ("report over a file",
     ["--report", "notes.html"], 2,
     "notes.html already exists and is not a nanoedit report; choose another --report (an "
     "earlier report is replaced, any other file is kept)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "args", "code", "message"), CASES, ids=[case for case, *_ in CASES]
)
def test_a_refusal_to_write_comes_before_any_request(
    served: Served, made: Path, case: str, args: list[str], code: int, message: str
) -> None:
    _setup(case)
    before = _files()
    result = run_cli(["edit", "cat.png", "-p", "a hat", *args], env=backend_env(served))
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f"error: {message}\n")
    assert len(served.sandbox.received) == 0
    assert _files() == before


def test_the_console_script_refuses_another_requests_image_at_o_before_paying(
    served: Served, made: Path
) -> None:
    """As it was found: ``-o FILE --skip-existing`` through the installed command."""
    before = made.read_bytes()
    env = dict(os.environ) | backend_env(served)
    command = [NANOEDIT, "edit", "cat.png", "-p", "a hat", "-o", "fox.png", "--skip-existing"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout) == (4, "")
    assert run.stderr == (
        "error: fox.png already exists and holds an image another request made (its prompt, "
        "model or inputs differ), so --skip-existing does not take it for this job's result; "
        "pass --overwrite to replace it, or choose another -o\n"
    )
    assert len(served.sandbox.received) == 0
    assert made.read_bytes() == before
    # Its own image is still skipped, and --overwrite still replaces another's.
    fox = run_cli(["generate", "-p", "a red fox", "-o", "fox.png", "--skip-existing"],
                  env=backend_env(served))  # fmt: skip
    assert (fox.exit_code, fox.stdout) == (0, "fox.png\n"), fox.stderr
    assert len(served.sandbox.received) == 0
    replaced = subprocess.run(
        [*command, "--overwrite"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (replaced.returncode, replaced.stdout) == (0, "fox.png\n"), replaced.stderr
    with Image.open(made) as image:
        assert (image.format, image.size) == ("PNG", (1200, 896))
    provenance = read_provenance(made)
    assert provenance is not None and provenance["prompt"] == "a hat"


def test_the_readme_promises_what_these_tests_hold() -> None:
    """The README's sentences that proved false (a refusal after paying) are the ones these
    tests hold it to."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    for promise in [
        "another request's image there is refused like any existing FILE. Every refusal comes "
        "with exit 4 before any request is sent.",
        "any other file of that name is kept, and the run refused before anything is sent, as "
        "it is when the page's folder cannot be written (exit 4).",
        "(unless `--overwrite`; a folder there is refused even then)",
    ]:
        assert promise in text, promise
