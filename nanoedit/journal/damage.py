"""A journal whose file is damaged: telling damage from a busy database, and moving the
damaged file aside so that a new journal can start where it was (nothing is deleted)."""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import suppress
from pathlib import Path


def is_damaged(error: BaseException) -> bool:
    """Whether a SQLite error says the database file itself is damaged (not a database, or
    malformed), which no retry mends; a busy, locked or read-only database is not."""
    code = getattr(error, "sqlite_errorcode", None)
    damage = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    return isinstance(error, sqlite3.DatabaseError) and code is not None and code & 0xFF in damage


def set_aside(database: Path, now: float | None = None) -> Path:
    """Move a damaged database, its -wal and -shm with it, to ``NAME.broken-TIME`` beside it
    (never over an earlier one; nothing is deleted), so that a new journal can start where it
    was. Returns where it went; raises :class:`OSError` when it cannot be moved."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    number = 1
    while True:
        suffix = f"-{number}" if number > 1 else ""
        aside = database.with_name(f"{database.name}.broken-{stamp}{suffix}")
        if not any(os.path.lexists(f"{aside}{end}") for end in ("", "-wal", "-shm")):
            break
        number += 1
    # The log first: a database moved without it would be read back without its last commits,
    # and a log left behind would be taken for the new journal's.
    for end in ("-wal", "-shm", ""):
        with suppress(FileNotFoundError):
            os.rename(f"{database}{end}", f"{aside}{end}")
    return aside
