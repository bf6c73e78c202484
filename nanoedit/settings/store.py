"""The config file: TOML in the user's config folder (or ``NANOEDIT_CONFIG_DIR``), read,
changed one key at a time and written atomically, mode 0600 in a 0700 folder, as it holds API
keys; a broken file is kept aside, never lost.
"""

from __future__ import annotations

import os
import shlex
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanoedit.errors import ConfigError
from nanoedit.settings.checks import number_text
from nanoedit.settings.keys import Value, did_you_mean, is_known_key

CONFIG_DIR_ENV = "NANOEDIT_CONFIG_DIR"
CONFIG_FILE_NAME = "config.toml"
MODELS = "models"
"""The config file's section of corrections to the model catalog."""
PRESETS = "presets"
"""The config file's section of presets, one table each: ``[presets.NAME]``."""


def config_dir(env: Mapping[str, str]) -> Path:
    """The folder that holds the config file."""
    override = env.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("nanoedit", appauthor=False))


def config_path(env: Mapping[str, str]) -> Path:
    """The config file's path (it need not exist)."""
    return config_dir(env) / CONFIG_FILE_NAME


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        # A folder on the way that is a file: no config file can be there either.
        return None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the config file {path} ({exc.strerror}); check it"
        ) from None


@dataclass(frozen=True)
class BrokenFile:
    """A config file that is not valid TOML: what it held, and what is wrong with it."""

    data: bytes
    reason: str


def _parse(raw: bytes) -> dict[str, Any] | BrokenFile:
    # Only a run with a config file parses TOML: the others skip the parser's import.
    import tomllib

    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return BrokenFile(raw, str(exc))


def read_document(path: Path) -> dict[str, Any]:
    """The file's TOML document as it is; an absent file is empty."""
    raw = _read_bytes(path)
    document = {} if raw is None else _parse(raw)
    if isinstance(document, BrokenFile):
        raise ConfigError(
            f"the config file {path} is not valid TOML ({document.reason}); fix it or delete it"
        )
    return document


def read_for_update(path: Path) -> tuple[dict[str, Any], BrokenFile | None]:
    """The document a change starts from, and the file when it is not valid TOML: then the
    change starts from an empty document, and the file is to be kept aside."""
    raw = _read_bytes(path)
    document = {} if raw is None else _parse(raw)
    if isinstance(document, BrokenFile):
        return {}, document
    return document, None


def keep_broken_copy(path: Path, data: bytes, now: float | None = None) -> Path:
    """Keep ``data`` (a broken config file) beside ``path`` as ``NAME.broken-TIME``, mode 0600
    as it may hold keys; never over an earlier copy. Returns the copy's path."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    number = 1
    while True:
        suffix = f"-{number}" if number > 1 else ""
        copy = path.with_name(f"{path.name}.broken-{stamp}{suffix}")
        try:
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            number += 1
            continue
        except OSError as exc:
            raise _cannot_write(copy, exc.strerror or str(exc)) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException as exc:
            copy.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise _cannot_write(copy, exc.strerror or str(exc)) from None
            raise
        return copy


def unknown_keys(document: Mapping[str, Any]) -> list[str]:
    """The keys of a document that nanoedit does not know, in the file's order."""
    found = []
    for section, table in document.items():
        if section in (MODELS, PRESETS) and isinstance(table, dict):
            # The catalog's corrections (load_catalog checks them) and the presets (checked
            # when a preset is used or listed: settings.presets).
            continue
        if not isinstance(table, dict):
            found.append(section)
            continue
        found += [f"{section}.{name}" for name in table if not is_known_key(f"{section}.{name}")]
    return found


def unknown_keys_warning(path: Path, document: Mapping[str, Any]) -> str | None:
    """A warning naming each key of the file nanoedit does not know (a typo, most often)."""
    unknown = unknown_keys(document)
    if not unknown:
        return None
    named = ", ".join(f"{key} ({hint})" if (hint := did_you_mean(key)) else key for key in unknown)
    some = "keys" if len(unknown) > 1 else "a key"
    them = "them" if len(unknown) > 1 else "it"
    return (
        f"the config file {path} has {some} nanoedit does not know, and ignores: {named}; "
        f"correct or remove {them}"
    )


def value_text(value: Value) -> str:
    """A value of the file as text, whether it was written as a number or as a string
    (earlier versions wrote every value as a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number_text(value)
    return str(value)


def flat_values(document: Mapping[str, Any]) -> dict[str, str]:
    """A document's values as text under flat ``section.name`` keys."""
    values: dict[str, str] = {}
    for section, table in document.items():
        if not isinstance(table, dict):
            continue
        for name, value in table.items():
            if isinstance(value, str | int | float):
                values[f"{section}.{name}"] = value_text(value)
    return values


def set_value(document: dict[str, Any], key: str, value: Value) -> None:
    """Put one setting in a document, leaving everything else in it as it was."""
    section, name = key.split(".", 1)
    table = document.get(section)
    if not isinstance(table, dict):
        table = document[section] = {}
    table[name] = value


def remove_value(document: dict[str, Any], key: str) -> bool:
    """Take one setting out of a document; False when it was not there."""
    section, name = key.split(".", 1)
    table = document.get(section)
    if not isinstance(table, dict) or name not in table:
        return False
    del table[name]
    if not table:
        del document[section]
    return True


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (or itself) when it is not a folder."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def _cannot_write(path: Path, reason: str) -> ConfigError:
    blocker = _file_in_the_way(path.parent)
    if blocker is not None:
        reason = f"{blocker} is a file, not a folder"
    return ConfigError(
        f"cannot write the config file {path} ({reason}); make {path.parent} a folder you can "
        f"write to, or point {CONFIG_DIR_ENV} at one"
    )


def write_document(path: Path, document: Mapping[str, Any]) -> None:
    """Write the document atomically, the folder 0700 and the file 0600 from the start.

    Raises :class:`ConfigError` when the folder or the file cannot be written; the file
    that was there is then left as it was.
    """
    import tomli_w

    data = tomli_w.dumps(document).encode("utf-8")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        where = exc.filename or path.parent
        raise _cannot_write(path, f"cannot create the folder {where}: {exc.strerror}") from None
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        reason = f"cannot create a file in {path.parent}: {exc.strerror}"
        raise _cannot_write(path, reason) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            # On disk before it replaces the old file: a crash must not leave an empty one.
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc.strerror or str(exc)) from None
        raise


def permission_warning(path: Path) -> str | None:
    """A warning when the config file exists and other users may read or change it."""
    if os.name == "nt":
        # Windows has ACLs instead; st_mode there says nothing about other users.
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    readable, writable = bool(mode & 0o044), bool(mode & 0o022)
    if not (readable or writable):
        return None
    can = " and ".join(word for word, yes in (("read", readable), ("changed", writable)) if yes)
    return (
        f"the config file {path} can be {can} by other users (mode {mode:04o}), and it may "
        f"hold API keys; fix it with: chmod 600 {shlex.quote(str(path))}"
    )
