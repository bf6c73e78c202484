"""``python -m nanoedit``."""

from nanoedit.cli import main

main()
