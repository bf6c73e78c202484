"""Writing a paid result into the journal's spool: the one way its bytes are kept before the
journal names the file (a job's results, and a matte's black render)."""

from __future__ import annotations

import os
from pathlib import Path

from nanoedit.output.parts import PART_PREFIX, PART_SUFFIX


def write_spool(path: Path, data: bytes) -> None:
    """Write a result's bytes to the spool, synced before the journal names the file.

    Written under a part name of this process first and renamed when whole: a file at
    ``path`` is always a whole result, which :meth:`Journal.adopt_spooled` can take up for a
    job killed before the journal heard of it; a part cut off by a kill is tidied away."""
    path.parent.mkdir(parents=True, exist_ok=True)
    from nanoedit.journal.store import PRIVATE_FILE

    part = path.with_name(f"{PART_PREFIX}{os.getpid()}-{path.stem}{PART_SUFFIX}")
    # For the journal's owner only, as the journal is.
    descriptor = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as spool:
        spool.write(data)
        spool.flush()
        os.fsync(spool.fileno())
    part.replace(path)
