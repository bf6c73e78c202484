"""A boolean setting that is not a boolean is an error, never "off".

``NANOEDIT_SANDBOX=ture`` read as off sent a paid request to the configured server. Every
boolean setting (``NANOEDIT_SANDBOX``, ``NANOEDIT_HISTORY``, ``history.enabled`` in the file)
is read by one rule: true, 1, yes or on; false, 0, no or off (any case, spaces around); an
empty variable is unset; anything else stops the run before anything is sent (exit 3),
naming the variable or key and the value, and listing the spellings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Served, all_jobs, backend_env, run_cli
from PIL import Image

from nanoedit.journal.store import Journal, data_dir

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
SPELLINGS = "true, 1, yes, on, false, 0, no, off"


def _config_file() -> Path:
    return Path(os.environ["NANOEDIT_CONFIG_DIR"]) / "config.toml"


def _generate(served: Served, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A generation through the installed command, with the served sandbox configured as the
    (paid) multipart backend."""
    command = [NANOEDIT, "generate", "-p", "a red fox", "-o", "fox.png"]
    full = dict(os.environ) | backend_env(served, duomi=False) | env
    return subprocess.run(command, env=full, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("value", ["ture", "2", "enabled", "y e s", "tru"])
def test_a_sandbox_variable_that_is_not_a_boolean_stops_the_run_before_paying(
    served: Served, value: str
) -> None:
    run = _generate(served, {"NANOEDIT_SANDBOX": value})
    assert (run.returncode, run.stdout) == (3, "")
    assert run.stderr == (
        f"error: the environment variable NANOEDIT_SANDBOX: {value!r} is not true or false; "
        f"use one of: {SPELLINGS}\n"
    )
    assert len(served.sandbox.received) == 0
    assert not Path("fox.png").exists()


@pytest.mark.parametrize(
    ("value", "requests"),
    [("1", 0), ("true", 0), ("TRUE", 0), (" yes ", 0), ("On", 0),
     ("0", 1), ("false", 1), ("No", 1), ("off", 1), ("", 1)],
)  # fmt: skip
def test_every_spelling_of_a_boolean_is_read_as_it_says(
    served: Served, value: str, requests: int
) -> None:
    env = backend_env(served, duomi=False) | {"NANOEDIT_SANDBOX": value}
    result = run_cli(["generate", "-p", "a red fox", "-o", "fox.png"], env=env)
    assert (result.exit_code, result.stdout) == (0, "fox.png\n"), result.stderr
    with Image.open("fox.png") as image:
        assert (image.format, image.size) == ("PNG", (1024, 1024))
    # On, the in-process sandbox answers: the configured server is paid nothing.
    assert sum(1 for r in served.sandbox.received if r.method == "POST") == requests


def test_a_history_variable_that_is_not_a_boolean_stops_the_run(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox"],
        env=backend_env(served, duomi=False) | {"NANOEDIT_HISTORY": "flase"},
    )
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        "error: the environment variable NANOEDIT_HISTORY: 'flase' is not true or false; "
        f"use one of: {SPELLINGS}\n"
    )
    assert len(served.sandbox.received) == 0


@pytest.mark.parametrize(("value", "kept"), [("0", 0), ("off", 0), ("yes", 1), ("1", 1)])
def test_the_history_variable_takes_every_spelling(served: Served, value: str, kept: int) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox"],
        env=backend_env(served, duomi=False) | {"NANOEDIT_HISTORY": value},
    )
    assert (result.exit_code, result.stdout) == (0, "a-red-fox.jpg\n"), result.stderr
    folder = data_dir(os.environ)
    jobs = all_jobs(Journal(folder)) if (folder / "journal.sqlite3").exists() else []
    assert len(jobs) == kept


def test_a_config_file_boolean_that_is_not_one_stops_the_run(served: Served) -> None:
    _config_file().parent.mkdir(parents=True, exist_ok=True)
    _config_file().write_text('[history]\nenabled = "nope"\n', encoding="utf-8")
    _config_file().chmod(0o600)
    result = run_cli(["generate", "-p", "a red fox"], env=backend_env(served, duomi=False))
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"error: config key history.enabled: 'nope' is not true or false; use one of: {SPELLINGS}\n"
    )
    assert len(served.sandbox.received) == 0


def test_config_set_takes_any_spelling_and_stores_true_or_false() -> None:
    stored = run_cli(["config", "set", "history.enabled", "Off"])
    assert stored.exit_code == 0, stored.stderr
    assert run_cli(["config", "get", "history.enabled"]).stdout == "false\n"
    assert 'enabled = "false"' in _config_file().read_text(encoding="utf-8")
    refused = run_cli(["config", "set", "history.enabled", "ture"])
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert f"'ture' is not true or false; use one of: {SPELLINGS}" in refused.stderr
    assert run_cli(["config", "get", "history.enabled"]).stdout == "false\n"
