"""The user's shell commands nanoedit runs (a key command, an upload command): each in a
session of its own, with no stdin, listed while it runs so that an interrupted run can stop it
and everything it started.

A command's session is out of reach of a Ctrl-C at the terminal, and it runs in a job's
thread, which KeyboardInterrupt does not reach either: the main thread stops them all through
:func:`stop_all`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence

# How much of a failing command's stderr a message quotes: enough to show why.
STDERR_CHARS = 200

_RUNNING: set[subprocess.Popen[bytes]] = set()
_LOCK = threading.Lock()


@contextlib.contextmanager
def running(command: str | Sequence[str]) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` through the shell and list it until the block ends (raises
    :class:`OSError` when it cannot start). Stdout and stderr are pipes to read."""
    # Started and listed under the lock: the command may be running before Popen returns,
    # and a Ctrl-C meanwhile must find it listed (stop_all waits for the lock).
    with _LOCK:
        process = subprocess.Popen(
            command,
            shell=True,
            # The command must not eat an image piped to nanoedit; it gets no stdin.
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own process group, so stopping it stops everything it started.
            start_new_session=True,
        )
        _RUNNING.add(process)
    try:
        with process:
            yield process
    finally:
        with _LOCK:
            _RUNNING.discard(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill a command with everything it started: the shell's children (the real command)
    would otherwise hold the pipes open, and reading them would wait for those."""
    if sys.platform != "win32":
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        process.kill()


def stop_and_drain(process: subprocess.Popen[bytes]) -> None:
    """:func:`stop` it, then read what is left, without waiting for anything that left its
    group and still holds the pipes."""
    stop(process)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=2)


def stop_all() -> None:
    """Stop every command still running (the run was interrupted)."""
    with _LOCK:
        live = [process for process in _RUNNING if process.returncode is None]
    for process in live:
        stop(process)


def last_line(text: str) -> str:
    """The last non-blank line of a command's stderr, folded to one line and clipped."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return last if len(last) <= STDERR_CHARS else last[: STDERR_CHARS - 1] + "…"
