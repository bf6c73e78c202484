"""The journal holds every prompt and signed result URL, and its spool paid images: it is kept
as the config file is, for its owner only.

The database and its ``-wal`` and ``-shm`` files are 0600, the spool's files 0600 in a 0700
folder, and the data folder 0700 when nanoedit makes it; files an earlier version left
readable are tightened when the journal is opened. An image saved from the spool gets the
mode any new file gets. Checked through the installed command, under umask 022.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from PIL import Image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
ARGS = ["generate", "-p", "a red fox", "--sandbox", "--response-format", "b64_json",
        "--no-metadata", "-d", "out"]  # fmt: skip

# nanoedit under umask 022, killed by SIGKILL the moment it is about to tell its journal the
# answer came: the image is whole in the spool, and the database's -wal and -shm are left.
KILLED_WHEN_ANSWERED = """
import os, signal, sys
os.umask(0o022)
from nanoedit.journal import store as journal
from nanoedit.__main__ import main

def answered(self, job_id, results, **given):
    os.kill(os.getpid(), signal.SIGKILL)

journal.Journal.answered = answered
sys.argv[0] = "nanoedit"
main()
"""


# nanoedit under umask 022, killed by SIGKILL when it closes its journal: the database's -wal
# and -shm, which closing would remove, are left to be looked at.
KILLED_WHEN_CLOSING = """
import os, signal, sys
os.umask(0o022)
from nanoedit.journal import store as journal
from nanoedit.__main__ import main

def close(self):
    os.kill(os.getpid(), signal.SIGKILL)

journal.Journal.close = close
sys.argv[0] = "nanoedit"
main()
"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _umask_022() -> None:
    os.umask(0o022)


def _nanoedit(*args: str) -> subprocess.CompletedProcess[str]:
    # The run was the in-process sandbox's: so is its resume.
    env = os.environ | {"NANOEDIT_SANDBOX": "1"}
    return subprocess.run(
        [NANOEDIT, *args], env=env, capture_output=True, text=True, timeout=60,
        preexec_fn=_umask_022,
    )  # fmt: skip


def _killed(script: str, *args: str) -> str:
    """Run nanoedit through ``script``, which kills it; returns what it printed on stdout."""
    run = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    return run.stdout


def _modes(data: Path) -> dict[str, int]:
    """The mode of the data folder and of everything in it."""
    return {"": _mode(data)} | {
        str(path.relative_to(data)): _mode(path) for path in sorted(data.rglob("*"))
    }


def test_a_new_journal_and_its_spool_are_for_their_owner_only(isolated: Path) -> None:
    data = Path(os.environ["NANOEDIT_DATA_DIR"])
    assert not data.exists()
    _killed(KILLED_WHEN_ANSWERED, *ARGS)
    assert _modes(data) == {
        "": 0o700,
        "journal.sqlite3": 0o600,
        "journal.sqlite3-shm": 0o600,
        "journal.sqlite3-wal": 0o600,
        "spool": 0o700,
        "spool/1-1.bin": 0o600,
    }
    # Saved from the spool (linked into place, as --no-metadata has it), the image is the
    # user's: it gets the mode any new file gets.
    resumed = _nanoedit("resume")
    assert resumed.returncode == 0, resumed.stderr
    saved = isolated / "out" / "a-red-fox.jpg"
    assert resumed.stdout == f"{saved}\n"
    with Image.open(saved) as image:
        image.load()
        assert (image.format, image.size) == ("JPEG", (1024, 1024))
    assert _mode(saved) == 0o644
    assert _modes(data) == {"": 0o700, "journal.sqlite3": 0o600, "spool": 0o700}


def test_a_journal_left_readable_is_tightened_when_opened(isolated: Path) -> None:
    data = Path(os.environ["NANOEDIT_DATA_DIR"])
    _killed(KILLED_WHEN_ANSWERED, *ARGS)
    # As an earlier version left them, in a folder of the user's own making.
    for path in [data, data / "spool"]:
        path.chmod(0o755)
    for path in [*data.glob("journal.sqlite3*"), data / "spool" / "1-1.bin"]:
        path.chmod(0o644)
    listed = _killed(KILLED_WHEN_CLOSING, "history")
    assert listed.split("\t")[:3] == ["1", listed.split("\t")[1], "submitted"]
    assert _modes(data) == {
        "": 0o755,  # not made by nanoedit this time: the folder is left as it is
        "journal.sqlite3": 0o600,
        "journal.sqlite3-shm": 0o600,
        "journal.sqlite3-wal": 0o600,
        "spool": 0o700,
        "spool/1-1.bin": 0o600,
    }
