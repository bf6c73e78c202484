"""The user data folder: the journal and its spool, and what ``nanoedit models --live`` last
read. Kept apart from the journal so that finding the folder loads no database module."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

DATA_DIR_ENV = "NANOEDIT_DATA_DIR"
LIVE_CACHE_NAME = "models-live.json"
"""What ``nanoedit models --live`` last read, in the data folder."""


def data_dir(env: Mapping[str, str]) -> Path:
    """The folder of nanoedit's data: ``NANOEDIT_DATA_DIR``, else the platform's user data
    folder."""
    override = env.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("nanoedit", appauthor=False))
