"""stdout and stderr as the console script writes them, when they cannot be written.

When stdout cannot be written (``> /dev/full``, a full disk, a device error), the write fails
deep inside whatever printed (typer's echo, the dry run's plan, help): the error that comes
up is a bare ``OSError`` that says nothing of where. The console script's stdout marks such
errors as its own, so that the command line can say "could not write to stdout" and exit 4,
as a Unix tool does, instead of showing a traceback. A reader that left (EPIPE) is not marked:
that is a closed pipe, handled as one.

stderr only ever carries messages. When it cannot take them (``2> /dev/full``, a log file on
a full disk, a reader that left), the messages are lost and nothing else: the run goes on,
and its exit code still tells what became of the jobs. A script that read exit 1 after a
paid image was saved would send the job again. A stderr closed from the start (``2>&-``, as
under cron), which Python gives as ``sys.stderr`` None, is the same: the messages go to the
null device.

A standard descriptor closed from the start is given the null device, whatever Python makes
of it: else the next file opened (an image being written, a spooled result) would take its
number, and whatever writes to that number (a C library's message, a child process that
inherits it) would write into that file. ``sys.stdin`` and ``sys.stdout`` stay None, which is
how a closed stdin or stdout is told.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from typing import IO, TextIO

_MARK = "nanoedit_stdout"


class _Stdout(io.TextIOWrapper):
    """sys.stdout as Python made it, whose failed writes and flushes are marked."""

    def write(self, text: str, /) -> int:
        try:
            return super().write(text)
        except OSError as exc:
            _mark(exc)
            raise

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            _mark(exc)
            raise


class _Stderr(io.TextIOWrapper):
    """sys.stderr as Python made it; once a write fails, the rest goes to the null device."""

    def write(self, text: str, /) -> int:
        try:
            return super().write(text)
        except OSError:
            to_devnull(self)
            return len(text)

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:
            to_devnull(self)


def to_devnull(stream: IO[str]) -> None:
    """Point the file descriptor under ``stream`` at the null device, so what is still in its
    buffer goes nowhere instead of failing again when Python flushes it on exit."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def _mark(exc: OSError) -> None:
    if exc.errno != errno.EPIPE:
        setattr(exc, _MARK, True)


def guard_standard_streams() -> None:
    """Replace ``sys.stdout`` and ``sys.stderr`` with the streams above, on the same files
    and with the same settings (each left as it is when it is not the interpreter's own); a
    stderr closed from the start becomes one on the null device."""
    _fill_closed_descriptors()
    sys.stdout = _rewrapped(sys.stdout, _Stdout, "__stdout__")
    if sys.stderr is None:
        sys.stderr = _lost_stderr()
    else:
        sys.stderr = _rewrapped(sys.stderr, _Stderr, "__stderr__")


def _fill_closed_descriptors() -> None:
    """Open the null device on each of the descriptors 0, 1 and 2 that is closed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:  # a lower one was open: this one is put in its place
            os.dup2(null, fd)
            os.close(null)


def _lost_stderr() -> TextIO:
    """A stderr whose messages go nowhere: on descriptor 2, the null device by now."""
    buffer = os.fdopen(2, "wb", closefd=False)
    return _Stderr(buffer, encoding="utf-8", errors="backslashreplace", line_buffering=True)


def _rewrapped(stream: TextIO, kind: type[io.TextIOWrapper], original: str) -> TextIO:
    if type(stream) is not io.TextIOWrapper:
        return stream
    encoding, errors = stream.encoding, stream.errors
    line_buffering, write_through = stream.line_buffering, stream.write_through
    try:
        buffer = stream.detach()  # flushes first: a failure leaves the stream as it was
    except (OSError, ValueError):
        return stream
    wrapped = kind(
        buffer,
        encoding=encoding,
        errors=errors,
        line_buffering=line_buffering,
        write_through=write_through,
    )
    if getattr(sys, original) is stream:
        # The original is detached now; what reads the original (rich, the terminal image
        # protocols) reads the same file through this one.
        setattr(sys, original, wrapped)
    return wrapped


def from_stdout(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure to write stdout (other than a reader that left)."""
    return isinstance(exc, OSError) and getattr(exc, _MARK, False)
