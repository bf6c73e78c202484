"""The ``nanoedit`` command and ``python -m nanoedit``.

``--version`` is answered here, before the command line (typer, rich) is even imported:
scripts call it to probe the tool, and it should cost no more than starting Python.
"""

from __future__ import annotations

import os
import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """The console script: the version at once, everything else through the command line,
    and then the process ends (see :func:`_leave`)."""
    try:
        start()
    except SystemExit as done:
        _leave(done)


def start() -> None:
    """What the console script runs, up to its end: the command line raises ``SystemExit``
    with the exit code, and the caller (the console script, or a test) decides what follows."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        _version()
        return
    # SIGTERM (CI cancel, timeout, docker stop) and SIGHUP (the terminal closed; unless
    # nohup ignores it) are handled like Ctrl-C, from the first moment: exit 130 with the
    # clean-up run, never a traceback, also while still importing.
    for number in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _interrupt)
    from nanoedit.stdio import guard_standard_streams

    guard_standard_streams()
    # httpx imports its own command line (httpx._main) whenever click is installed, as the
    # MCP SDK's server brings it, and that loads rich and pygments: about 30 ms of every
    # run's start, for a program nanoedit never calls. A None entry makes that import fail,
    # and httpx puts a stub in its place.
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from nanoedit.startup import lasting_imports

    try:
        with lasting_imports():
            from nanoedit.cli.app import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted while starting: nothing was sent\n")
        sys.exit(130)
    run()


def _version() -> None:
    """Print the version; a stdout that cannot take it ends the process as any command
    ends then: quietly with 141 when closed (``| head -c0``, ``>&-``), with an error and 4
    when it fails (``> /dev/full``)."""
    from nanoedit import __version__

    try:
        if sys.stdout is None:
            raise BrokenPipeError
        sys.stdout.write(f"nanoedit {__version__}\n")
        sys.stdout.flush()
    except BrokenPipeError:
        from nanoedit.errors import ExitCode

        os._exit(ExitCode.OUTPUT_CLOSED)
    except OSError as exc:
        from nanoedit.errors import ExitCode

        if sys.stderr is not None:  # closed (2>&-): the exit code says it
            sys.stderr.write(f"error: could not write to stdout ({exc.strerror})\n")
            sys.stderr.flush()
        os._exit(ExitCode.INPUT)


def _leave(done: SystemExit) -> None:
    """End the process with the run's exit code, skipping the interpreter's teardown.

    By now every file is closed and renamed and the journal committed; what is left is
    Python tearing down each module and the objects they hold, about 5 ms that change
    nothing on disk. So stdout and stderr are flushed and the process ends at once. When a
    flush fails (a reader that left) or the code is not a number, the usual exit runs, as
    it always did, and says what it says.
    """
    code = done.code
    if code is None:
        code = 0
    if not isinstance(code, int):
        raise done
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            raise done from None
    os._exit(code)


if __name__ == "__main__":
    main()
