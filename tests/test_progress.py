"""Progress as people see it: live bars when stderr is a terminal, plain lines elsewhere.

The terminal tests run the installed ``nanoedit`` with stderr on a pseudo-terminal, against a
sandbox on a loopback port that answers a little slowly and sends result files in two parts,
so that the phases last long enough to be drawn (the display refreshes ten times a second).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import OPENAI_KEY, on_pty, run_cli
from rich.filesize import decimal

from nanoedit.sandbox import Sandbox, SandboxRequest, SandboxResponse, SandboxServer, sample_image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
COLUMNS, ROWS = 120, 30
SAMPLES = ("cat.png", "dog.jpg", "hat.png", "person.png")
# What each sample becomes with the ratio left to auto (the table size of the ratio nearest
# its shape): with the default model (nano-banana), and with the pro model at 2K.
SAVED = {
    "cat.png": "saved cat-edit.jpg (1200x896 JPEG) from cat.png",
    "dog.jpg": "saved dog-edit.jpg (1200x896 JPEG) from dog.jpg",
    "hat.png": "saved hat-edit.jpg (1024x1024 JPEG) from hat.png",
    "person.png": "saved person-edit.jpg (896x1200 JPEG) from person.png",
}
SAVED_PRO_2K = {
    "cat.png": "saved cat-edit.jpg (2400x1792 JPEG) from cat.png",
    "dog.jpg": "saved dog-edit.jpg (2400x1792 JPEG) from dog.jpg",
    "hat.png": "saved hat-edit.jpg (2048x2048 JPEG) from hat.png",
    "person.png": "saved person-edit.jpg (1792x2400 JPEG) from person.png",
}
PATHS = ["cat-edit.jpg", "dog-edit.jpg", "hat-edit.jpg", "person-edit.jpg"]
# The download reads a result in 64 KiB pieces, so the display can show exactly one piece
# received while the rest is held back (the pro model's 2K results are all larger than that).
PIECE = 64 * 1024

# Cursor movement and line erasing (what a live display is drawn with), and every SGR code.
CURSOR_CONTROLS = ("\x1b[2K", "\x1b[1A", "\x1b[?25l", "\x1b[?25h")
ANY_CODE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SGR = re.compile(r"\x1b\[([0-9;]*)m")
# Each redraw starts at column 0 and erases the lines of the previous one, bottom to top.
REDRAW = re.compile(r"\r\x1b\[2K(?:\x1b\[1A\x1b\[2K)*")
ELAPSED = re.compile(r" \d:\d\d:\d\d$")


class SlowSandbox(Sandbox):
    """The sandbox, with every result file sent as a first piece, a pause, then the rest.

    Records the size of each result file it sends, for the byte counts on screen.
    """

    def __init__(self, *, latency: float, pause: float) -> None:
        super().__init__(keys=frozenset({OPENAI_KEY}), latency=latency)
        self.pause = pause
        self.file_sizes: list[int] = []

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer as the sandbox does; a result file's body is streamed in two parts."""
        response = super().handle(request)
        if "/files/" in request.url and response.status == 200 and response.stream is None:
            body, response.body = response.body, b""
            self.file_sizes.append(len(body))
            response.stream = self._in_two_parts(body)
        return response

    def _in_two_parts(self, body: bytes) -> Iterator[bytes]:
        yield body[: PIECE + 1]
        # The emulated server's own slowness between two pieces of a file: what the
        # progress display is there to show, not the test waiting for something.
        threading.Event().wait(self.pause)
        yield body[PIECE + 1 :]


@pytest.fixture
def slow(request: pytest.FixtureRequest) -> Iterator[tuple[SlowSandbox, dict[str, str]]]:
    """A sandbox on loopback, as slow as the test asks (``(latency, pause)`` given through
    indirect parametrization; quick by default), and the environment pointing nanoedit at it."""
    latency, pause = getattr(request, "param", (0.05, 0.0))
    sandbox = SlowSandbox(latency=latency, pause=pause)
    with SandboxServer(sandbox) as server:
        yield (
            sandbox,
            {
                "NANOEDIT_OPENAI_BASE_URL": server.base_url,
                "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY,
                "NANOEDIT_BACKOFF": "0.01",
            },
        )


@pytest.fixture
def samples(isolated: Path) -> list[str]:
    """The four sample images, written to the working folder."""
    for name in SAMPLES:
        (isolated / name).write_bytes(sample_image(name)[0])
    return list(SAMPLES)


@dataclass(frozen=True)
class Screen:
    """What a run left on the terminal, and on stdout when stdout was a pipe."""

    code: int
    stdout: bytes
    raw: str

    @property
    def plain(self) -> str:
        """The terminal's bytes with every control sequence removed."""
        return ANY_CODE.sub("", self.raw)

    def frames(self) -> list[list[str]]:
        """Each redraw of the live display (after any lines printed above it), as plain lines."""
        # A carriage return left at a line's start (the cursor sent back to column 0 before
        # an erase) moves nothing on screen.
        pieces = (ANY_CODE.sub("", piece).split("\r\n") for piece in REDRAW.split(self.raw))
        return [[line.lstrip("\r") for line in piece if line.strip()] for piece in pieces]

    def lines(self) -> list[str]:
        """Every plain line of every frame, in order."""
        return [line for frame in self.frames() for line in frame]


def on_terminal(args: list[str], env: dict[str, str], *, stdout_too: bool = False) -> Screen:
    """Run the installed nanoedit with stderr (and stdout, if asked) on a pseudo-terminal."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    # No proxy from the machine: the sandbox is on loopback.
    inherited = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    full_env = inherited | {"TERM": "xterm-256color", "COLUMNS": str(COLUMNS)} | env
    process = subprocess.Popen(
        [NANOEDIT, *args],
        stdin=subprocess.DEVNULL,
        stdout=terminal if stdout_too else subprocess.PIPE,
        stderr=terminal,
        env=full_env,
    )
    stdout, _, screen = on_pty(process, controller, terminal)
    return Screen(process.returncode, stdout or b"", screen.decode("utf-8", "replace"))


def colour_codes(text: str) -> list[str]:
    """The SGR sequences in ``text`` that set a colour (bold, reset and the like are not)."""
    found = []
    for match in SGR.finditer(text):
        params = [int(p) for p in match.group(1).split(";") if p]
        if any(30 <= p <= 49 or 90 <= p <= 107 for p in params):
            found.append(match.group(0))
    return found


@pytest.mark.parametrize("slow", [(0.3, 0.4)], indirect=True, ids=["slow"])
def test_a_batch_on_a_terminal_shows_the_overall_bar_each_job_and_its_bytes(
    slow: tuple[SlowSandbox, dict[str, str]], samples: list[str]
) -> None:
    sandbox, env = slow
    pro = ["--model", "gemini-3-pro-image-preview", "--size", "2K"]
    screen = on_terminal(["edit", *samples, "-p", "make it a watercolor", "-j", "2", *pro], env)
    assert screen.code == 0, screen.plain
    # Results on stdout (a pipe here) and nothing else; the terminal never shows a bare path.
    paths = list(PATHS)
    assert sorted(screen.stdout.decode().splitlines()) == paths
    assert screen.stdout.decode().endswith("\n")
    assert "\x1b" not in screen.stdout.decode()
    assert not set(paths) & set(screen.lines())
    assert all(control in screen.raw for control in CURSOR_CONTROLS)

    frames = [frame for frame in screen.frames() if any("all jobs" in line for line in frame)]
    labels = re.compile(rf"^. ({'|'.join(map(re.escape, samples))}): (.+?) ")
    # The overall bar: jobs done out of 4; two at a time, so the run passes 0/4 and 2/4.
    counts = set()
    for frame in frames:
        (overall,) = [line for line in frame if "all jobs" in line]
        match = re.search(r" (\d)/4 ", overall)
        assert match, overall
        counts.add(int(match.group(1)))
        assert ELAPSED.search(overall), overall
        # -j 2: never more than two job lines under the bar.
        assert len([line for line in frame if labels.match(line)]) <= 2, frame
    assert {0, 2} <= counts <= {0, 1, 2, 3, 4}

    # Each job's line: its label and its phase; while the model works, a spinner and a clock
    # (the upload itself is over too fast on loopback to be drawn).
    job_lines = [line for line in screen.lines() if labels.match(line)]
    assert all(ELAPSED.search(line) for line in job_lines), job_lines
    uploads = {
        request.files[0].filename: len(request.body)
        for request in sandbox.received
        if request.method == "POST"
    }
    assert sorted(uploads) == sorted(samples)
    for name in uploads:
        assert any(
            re.match(rf"^[^ ] {re.escape(name)}: waiting for the model ", line)
            for line in job_lines
        ), name
    # While a result file arrives, the bytes received so far out of its length.
    downloads = [line for line in job_lines if ": downloading " in line]
    assert len(sandbox.file_sizes) == 4 and min(sandbox.file_sizes) > PIECE
    for size in sandbox.file_sizes:
        amount = f"{decimal(PIECE)}/{decimal(size)}"
        assert amount.startswith("65.5 kB/") and amount.endswith(" kB")
        assert any(amount in line for line in downloads), (amount, downloads)

    # After the bars: one line per saved image, then the summary, and the cursor is back.
    lines = screen.lines()
    saved = sorted(line for line in lines if line.startswith("saved "))
    assert saved == sorted(SAVED_PRO_2K.values())
    assert lines[-1] == "4 jobs: 4 done, 0 failed, 4 images saved"
    assert screen.raw.rfind("\x1b[?25h") > screen.raw.rfind("all jobs")


def test_paths_wait_for_the_bars_when_stdout_is_the_terminal_too(
    slow: tuple[SlowSandbox, dict[str, str]], samples: list[str]
) -> None:
    _, env = slow
    screen = on_terminal(["edit", "cat.png", "hat.png", "-p", "x"], env, stdout_too=True)
    assert screen.code == 0, screen.plain
    bars_gone = screen.raw.rfind("\x1b[?25h")
    assert bars_gone > screen.raw.rfind("all jobs") > 0
    # Written while the bars ran, a path would land inside them: it comes after, once.
    tail = [line.strip() for line in ANY_CODE.sub("", screen.raw[bars_gone:]).split("\r\n")]
    *paths, summary = [line for line in tail if line]
    assert sorted(paths) == ["cat-edit.jpg", "hat-edit.jpg"]
    assert summary == "2 jobs: 2 done, 0 failed, 2 images saved"
    before = Screen(screen.code, b"", screen.raw[:bars_gone]).lines()
    assert "cat-edit.jpg" not in before and "hat-edit.jpg" not in before
    assert sorted(line for line in before if line.startswith("saved ")) == [
        SAVED["cat.png"],
        SAVED["hat.png"],
    ]


@pytest.mark.parametrize("no_color", [True, False])
def test_no_color_on_a_terminal(
    slow: tuple[SlowSandbox, dict[str, str]], samples: list[str], no_color: bool
) -> None:
    sandbox, env = slow
    sandbox.add_faults("503")  # one retry warning
    extra = {"NO_COLOR": "1"} if no_color else {}
    screen = on_terminal(["edit", "cat.png", "missing.png", "-p", "x"], env | extra)
    assert screen.code == 7
    host = env["NANOEDIT_OPENAI_BASE_URL"].removeprefix("http://")
    warning = f"warning: cat.png: the edit request on {host}: HTTP 503; retry 1 of 3 in 0.0 s"
    error = "error: missing.png: no such file; check the path"
    lines = screen.lines()
    assert warning in lines and error in lines
    assert SAVED["cat.png"] in lines
    # The live bars are drawn with cursor controls either way.
    assert all(control in screen.raw for control in CURSOR_CONTROLS)
    if no_color:
        assert colour_codes(screen.raw) == []
    else:
        assert f"\x1b[1;31m{error}\x1b[0m" in screen.raw
        assert f"\x1b[33m{warning}\x1b[0m" in screen.raw


def test_quiet_on_a_terminal_draws_nothing_but_errors(
    slow: tuple[SlowSandbox, dict[str, str]], samples: list[str]
) -> None:
    screen = on_terminal(["edit", "cat.png", "missing.png", "-p", "x", "-q"], slow[1])
    assert (screen.code, screen.stdout) == (7, b"cat-edit.jpg\n")
    assert screen.plain == "error: missing.png: no such file; check the path\r\n"
    assert not any(control in screen.raw for control in CURSOR_CONTROLS)


def test_a_job_waiting_for_the_model_keeps_its_spinner_and_clock(
    isolated: Path, sample: Path
) -> None:
    sandbox = SlowSandbox(latency=1.3, pause=0.0)
    with SandboxServer(sandbox) as server:
        env = {"NANOEDIT_OPENAI_BASE_URL": server.base_url, "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY}
        screen = on_terminal(["edit", "cat.png", "-p", "x"], env)
    assert screen.code == 0, screen.plain
    waiting = [line for line in screen.lines() if "cat.png: waiting for the model" in line]
    assert waiting
    assert waiting[-1].endswith(" 0:00:01"), waiting[-1]
    assert not waiting[-1].startswith("  "), "no spinner"


def test_an_error_during_the_bars_leaves_them_unstyled(sample: Path) -> None:
    screen = on_terminal(["edit", "missing.png", "cat.png", "-p", "x", "--sandbox"], {})
    assert screen.code == 7
    assert "\x1b[1;31merror: missing.png: no such file; check the path" in screen.raw
    assert "\x1b[1;31mall jobs" not in screen.raw


def test_an_empty_no_color_keeps_colours(sample: Path) -> None:
    screen = on_terminal(["edit", "missing.png", "-p", "x", "--sandbox"], {"NO_COLOR": ""})
    assert screen.code == 4
    assert "\x1b[1;31merror: missing.png: no such file; check the path\x1b[0m" in screen.raw


# Off a terminal -----------------------------------------------------------------------------


def test_off_a_terminal_one_plain_line_per_job_and_a_summary(
    slow: tuple[SlowSandbox, dict[str, str]], samples: list[str]
) -> None:
    sandbox, env = slow
    sandbox.add_faults("503")
    host = env["NANOEDIT_OPENAI_BASE_URL"].removeprefix("http://")
    process = subprocess.run(
        [NANOEDIT, "edit", *samples, "missing.png", "-p", "x", "-j", "2"],
        capture_output=True,
        text=True,
        env=os.environ | {"TERM": "xterm-256color"} | env,
        timeout=60,
    )
    assert process.returncode == 7
    assert "\x1b" not in process.stdout + process.stderr
    assert sorted(process.stdout.splitlines()) == PATHS
    lines = process.stderr.splitlines()
    # The retry happens to whichever job is sent first.
    retried = [line for line in lines if line.startswith("warning: ")]
    assert len(retried) == 1
    assert re.fullmatch(
        rf"warning: ({'|'.join(map(re.escape, samples))}): the edit request on "
        rf"{re.escape(host)}: HTTP 503; retry 1 of 3 in 0\.0 s",
        retried[0],
    ), retried
    assert sorted(line for line in lines if line.startswith("saved ")) == sorted(SAVED.values())
    assert lines[0] == "4 jobs, 4 images, estimated $0.268 (gemini-3.1-flash-image at $0.067)"
    assert lines[1] == "error: missing.png: no such file; check the path"
    assert lines[-1] == "5 jobs: 4 done, 1 failed, 4 images saved"
    assert len(lines) == 8


def test_off_a_terminal_in_process_sandbox(samples: list[str]) -> None:
    result = run_cli(["edit", *samples, "-p", "x", "-j", "2", "--sandbox"])
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert sorted(result.stdout.splitlines()) == PATHS
    estimate, *saved, summary = result.stderr.splitlines()
    assert estimate == "4 jobs, 4 images, estimated $0.268 (gemini-3.1-flash-image at $0.067)"
    assert sorted(saved) == sorted(SAVED.values())
    assert summary == "4 jobs: 4 done, 0 failed, 4 images saved"


def test_quiet_prints_only_error_lines(
    slow: tuple[SlowSandbox, dict[str, str]], samples: list[str]
) -> None:
    sandbox, env = slow
    sandbox.add_faults("503")  # its retry warning is silenced too
    result = run_cli(["edit", "cat.png", "missing.png", "-p", "x", "-q"], env=env)
    assert (result.exit_code, result.stdout) == (7, "cat-edit.jpg\n")
    assert result.stderr == "error: missing.png: no such file; check the path\n"
    quiet_json = run_cli(["edit", "hat.png", "-p", "x", "-q", "--json"], env=env)
    assert quiet_json.exit_code == 0
    assert quiet_json.stderr == ""
    assert [line[:43] for line in quiet_json.stdout.splitlines()] == [
        '{"schema": "nanoedit/result/1", "ok": true,'
    ]
