"""The ``nanoedit`` command and ``python -m nanoedit``.

``--version`` is answered here, before the command line (typer, rich) is even imported:
scripts call it to probe the tool, and it should cost no more than starting Python.
"""

from __future__ import annotations

import sys


def main() -> None:
    """The console script: the version at once, everything else through the command line."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from nanoedit import __version__

        sys.stdout.write(f"nanoedit {__version__}\n")
        return
    from nanoedit.startup import lasting_imports

    with lasting_imports():
        from nanoedit.cli import main as run
    run()


if __name__ == "__main__":
    main()
