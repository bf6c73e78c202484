"""The ``nanoedit`` command and ``python -m nanoedit``.

``--version`` is answered here, before the command line (typer, rich) is even imported:
scripts call it to probe the tool, and it should cost no more than starting Python.
"""

from __future__ import annotations

import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """The console script: the version at once, everything else through the command line."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from nanoedit import __version__

        sys.stdout.write(f"nanoedit {__version__}\n")
        return
    # SIGTERM (CI cancel, timeout, docker stop) is handled like Ctrl-C, from the first moment:
    # exit 130 with the clean-up run, never a traceback, also while still importing.
    signal.signal(signal.SIGTERM, _interrupt)
    from nanoedit.startup import lasting_imports

    try:
        with lasting_imports():
            from nanoedit.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted while starting: nothing was sent\n")
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
