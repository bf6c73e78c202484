"""`nanoedit config set/unset` and the file they write: folders that cannot be written,
typed values, broken files, unknown keys, and reading a key from a terminal."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from nanoedit.config import write_file

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))


def config_file() -> Path:
    return Path(os.environ["NANOEDIT_CONFIG_DIR"]) / "config.toml"


def fix(folder: Path | str) -> str:
    """What a cannot-write message tells the user to do."""
    return f"make {folder} a folder you can write to, or point NANOEDIT_CONFIG_DIR at one"


# Folders that cannot be written (the tests run as root, so permissions stop nothing: the
# folders below are under a regular file, or in /proc, where nobody can create files).


def test_set_under_a_regular_file_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a folder")
    folder = tmp_path / "plain" / "nanoedit"
    result = run_cli(
        ["config", "set", "openai.model", "nano-banana-2"], env={"NANOEDIT_CONFIG_DIR": str(folder)}
    )
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"error: cannot write the config file {folder / 'config.toml'} ({tmp_path / 'plain'} is "
        f"a file, not a folder); {fix(folder)}\n"
    )
    assert (tmp_path / "plain").read_text() == "not a folder"


@pytest.mark.parametrize(
    ("folder", "reason"),
    [
        ("/proc/nanoedit-no-such-folder/conf",
         "cannot create the folder /proc/nanoedit-no-such-folder: No such file or directory"),
        ("/proc/self", "cannot create a file in /proc/self: No such file or directory"),
    ],
)  # fmt: skip
def test_set_where_no_file_can_be_made_is_one_error_line(folder: str, reason: str) -> None:
    result = run_cli(
        ["config", "set", "default.ratio", "16:9"], env={"NANOEDIT_CONFIG_DIR": folder}
    )
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"error: cannot write the config file {folder}/config.toml ({reason}); {fix(folder)}\n"
    )


@pytest.mark.parametrize("args", [["unset", "openai.model"], ["set", "default.ratio", "1:1"]])
def test_a_failed_write_leaves_the_file_as_it_was(args: list[str]) -> None:
    write_file(config_file(), {"openai.model": "nano-banana-2", "default.ratio": "3:2"})
    before = config_file().read_bytes()
    # A file size limit of 0: the new file cannot be written, as on a full disk.
    result = subprocess.run(
        [NANOEDIT, "config", *args],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0)),
    )
    assert (result.returncode, result.stdout) == (3, "")
    folder = config_file().parent
    assert result.stderr == (
        f"error: cannot write the config file {config_file()} (File too large); {fix(folder)}\n"
    )
    assert config_file().read_bytes() == before
    assert sorted(path.name for path in folder.iterdir()) == ["config.toml"]
