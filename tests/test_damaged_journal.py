"""A damaged journal is said, kept aside and never deleted; no command ends in a traceback.

The commands that read the history (``history``, ``list``, ``search``, ``show``, ``cost``,
``--cost``, ``--report``, ``@last`` or ``@ID`` as an input, and ``resume``) cannot do their
work without it: they say what is wrong and where the damaged file now is, and exit 4. A run that writes
to it (``edit``, ``generate``) keeps it aside the same way and starts a new one, so that what
it pays for is journaled. Through the installed command, on a journal a real run wrote.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from PIL import Image

from nanoedit.sandbox import sample_image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
GARBAGE = b"these bytes were a journal once\n" * 256


def _data() -> Path:
    return Path(os.environ["NANOEDIT_DATA_DIR"])


def _nanoedit(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) | {"NANOEDIT_SANDBOX": "1"}
    return subprocess.run([NANOEDIT, *args], env=env, capture_output=True, text=True, timeout=60)


def _not_a_database(database: Path) -> bytes:
    """The journal overwritten whole, as a disk or a copy gone wrong leaves it."""
    database.write_bytes(GARBAGE)
    return GARBAGE


def _malformed(database: Path) -> bytes:
    """The journal with its header intact and every page after the first few overwritten:
    it opens, and reading its jobs fails."""
    data = bytearray(database.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for offset in range(2 * page, len(data), page):
        data[offset : offset + page] = b"\xa5" * page
    database.write_bytes(bytes(data))
    return bytes(data)


@pytest.fixture
def journal(isolated: Path) -> Path:
    """The journal of one edit that saved cat-edit.jpg, written whole (no -wal or -shm)."""
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    made = run_cli(["edit", "cat.png", "-p", "a red hat", "--sandbox"])
    assert (made.exit_code, made.stdout) == (0, "cat-edit.jpg\n"), made.stderr
    database = _data() / "journal.sqlite3"
    assert sorted(path.name for path in _data().iterdir()) == ["journal.sqlite3", "spool"]
    return database


READS = {
    "history": ["history"],
    "list": ["history", "list"],
    "search": ["history", "search", "hat"],
    "show": ["history", "show", "1"],
    "cost": ["history", "cost"],
    "--cost": ["history", "--cost"],
    "--report": ["history", "--report", "past.html"],
    "@last": ["edit", "@last", "-p", "now at night"],
    "@1": ["edit", "@1", "-p", "now at night"],
    "resume": ["resume"],
}
DAMAGE = {
    "not a database": (_not_a_database, "file is not a database"),
    "malformed": (_malformed, "database disk image is malformed"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", list(READS))
def test_a_read_of_a_damaged_journal_says_so_and_keeps_it_aside(
    journal: Path, command: str, damage: str
) -> None:
    spoil, reason = DAMAGE[damage]
    damaged = spoil(journal)
    before = sorted(os.listdir())
    run = _nanoedit(*READS[command])
    [aside] = [path for path in _data().iterdir() if path.name.startswith("journal.sqlite3.")]
    assert (run.returncode, run.stdout) == (4, ""), run.stderr
    assert run.stderr == (
        f"error: the job journal {journal} is damaged ({reason}), so it cannot be read; it "
        f"was moved aside to {aside} (kept, not deleted) and the next run starts a new one; "
        "sqlite3's .recover may get its jobs back from there\n"
    )
    assert aside.name.startswith("journal.sqlite3.broken-")
    assert aside.read_bytes() == damaged
    assert not journal.exists()
    assert sorted(os.listdir()) == before  # nothing made, nothing sent
    # Asked again, the history is empty: nothing in it, nothing to fail on.
    again = _nanoedit("history")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "no jobs in the history yet\n")


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_run_keeps_a_damaged_journal_aside_and_journals_itself_in_a_new_one(
    journal: Path, damage: str
) -> None:
    spoil, reason = DAMAGE[damage]
    damaged = spoil(journal)
    run = _nanoedit("generate", "-p", "a red fox")
    assert (run.returncode, run.stdout) == (0, "a-red-fox.jpg\n"), run.stderr
    with Image.open("a-red-fox.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (1024, 1024))
    [aside] = [path for path in _data().iterdir() if path.name.startswith("journal.sqlite3.")]
    assert aside.read_bytes() == damaged
    assert run.stderr.splitlines()[0] == (
        f"warning: the job journal {journal} is damaged ({reason}); it was moved aside to "
        f"{aside} (kept, not deleted), and this run starts a new one"
    )
    listed = _nanoedit("history")
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.split("\t")[0] == "1" and line.endswith("\ta red fox\ta-red-fox.jpg")
    with sqlite3.connect(journal) as fresh:
        assert fresh.execute("SELECT count(*) FROM jobs").fetchone() == (1,)
