"""stdout that owns up to its write errors.

When stdout cannot be written (``> /dev/full``, a full disk, a device error), the write fails
deep inside whatever printed (typer's echo, the dry run's plan, help): the error that comes
up is a bare ``OSError`` that says nothing of where. The console script's stdout marks such
errors as its own, so that the command line can say "could not write to stdout" and exit 4,
as a Unix tool does, instead of showing a traceback. A reader that left (EPIPE) is not marked:
that is a closed pipe, handled as one.
"""

from __future__ import annotations

import errno
import io
import sys

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


def _mark(exc: OSError) -> None:
    if exc.errno != errno.EPIPE:
        setattr(exc, _MARK, True)


def mark_stdout_errors() -> None:
    """Make ``sys.stdout`` one whose write errors are marked, on the same file and with the
    same settings (left as it is when it is not the interpreter's own text stream)."""
    stdout = sys.stdout
    if type(stdout) is not io.TextIOWrapper:
        return
    encoding, errors = stdout.encoding, stdout.errors
    line_buffering, write_through = stdout.line_buffering, stdout.write_through
    stdout.flush()
    sys.stdout = _Stdout(
        stdout.detach(),
        encoding=encoding,
        errors=errors,
        line_buffering=line_buffering,
        write_through=write_through,
    )
    if sys.__stdout__ is stdout:
        # The original is detached now; what reads the original (rich, the terminal image
        # protocols) reads the same file through this one.
        setattr(sys, "__stdout__", sys.stdout)  # noqa: B010 (typeshed calls it final)


def from_stdout(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure to write stdout (other than a reader that left)."""
    return isinstance(exc, OSError) and getattr(exc, _MARK, False)
