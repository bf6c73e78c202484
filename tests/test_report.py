"""What people see on stderr: spinners on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import os
import pty
import subprocess
from pathlib import Path

import pytest
from conftest import NANOEDIT, on_pty, run_cli

from nanoedit.output.report import PlainConsole, error_console


def test_off_a_terminal_stderr_has_one_plain_line_per_job(sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "--sandbox"])
    assert result.exit_code == 0
    assert "\x1b" not in result.stderr + result.stdout
    assert result.stderr == "saved cat-edit.jpg (1200x896 JPEG) from cat.png\n"


def test_on_a_terminal_stderr_shows_phases_and_stdout_stays_clean(sample: Path) -> None:
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": "xterm-256color"}
    process = subprocess.Popen(
        [NANOEDIT, "edit", "cat.png", "https://example.com/dog.jpg", "-p", "x", "--sandbox"],
        stdout=subprocess.PIPE, stderr=terminal, env=env | {"NANOEDIT_DUOMI_POLL_INTERVAL": "0.3"},
    )  # fmt: skip
    stdout, _, screen = on_pty(process, controller, terminal)
    text = screen.decode("utf-8", "replace")
    assert process.returncode == 0
    assert stdout == b"cat-edit.jpg\ndog-edit.jpg\n"
    assert "\x1b[" in text  # live spinner lines
    # Phases shorter than a refresh may never be drawn; a task's running state lasts long enough.
    assert "https://example.com/dog.jpg: waiting for the model, task running" in text
    assert "saved dog-edit.jpg (1200x896 JPEG) from https://example.com/dog.jpg" in text
    assert "2 jobs: 2 done, 0 failed, 2 images saved" in text


@pytest.mark.parametrize(
    "text",
    [
        "error: [bold]brackets[/] are text, not markup :smile:",
        "tabs\tat\tstops\tof 8",
        "a server's \r carriage return, bell \x07, backspace \x08, feeds \x0b\x0c",
        "an escape \x1b[31m passed through, as rich passes it",
        "two\nlines, and é ñ 中文 " + "long " * 40,
    ],
)
def test_plain_stderr_prints_what_rich_prints_off_a_terminal(text: str) -> None:
    plain, styled = io.StringIO(), io.StringIO()
    for console in (error_console(plain), error_console(styled, rich=True)):
        assert console.is_terminal is False
        console.print(text, style="bold red")
    assert isinstance(error_console(plain), PlainConsole)
    assert plain.getvalue() == styled.getvalue()
