"""Settings: the config file, the environment and the flags, merged in that order of weight.

The file is TOML in the platformdirs user config directory (or ``NANOEDIT_CONFIG_DIR``),
written with mode 0600 in a 0700 directory because it holds API keys.

A key may also come from a command (``openai.api_key_cmd``, e.g. ``pass show nanoedit/openai``),
run only when a request needs the key, at most once per backend and run.
"""

from __future__ import annotations

import ipaddress
import math
import os
import shlex
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from nanoedit import commands
from nanoedit.catalog.models import Catalog, deep_merge, load_catalog, shipped_catalog
from nanoedit.errors import ConfigError, NanoeditError, UsageError
from nanoedit.jobs import RATIOS, RunOptions, normalize_ratio, normalize_size
from nanoedit.urls import redact_userinfo, without_userinfo

if TYPE_CHECKING:
    from nanoedit.backends.base import BackendBase

CONFIG_DIR_ENV = "NANOEDIT_CONFIG_DIR"
CONFIG_FILE_NAME = "config.toml"
SANDBOX_ENV = "NANOEDIT_SANDBOX"
# The most retries --retries and network.retries allow: past that a failing server is down.
MAX_RETRIES = 20

Value = str | int | float
"""A setting as the config file holds it."""


def check_url(value: str) -> str:
    cleaned = value.strip().rstrip("/")
    try:
        parts = urlsplit(cleaned)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(
            f"invalid base URL {redact_userinfo(value.strip())!r}; give it as https://host or "
            "https://host/v1"
        )
    return cleaned


def check_choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value in choices:
            return value
        raise UsageError(f"invalid value {value!r}; use one of: {', '.join(choices)}")

    return check


# The spellings of a boolean setting, any case. Anything else is an error: a typo read as
# "off" (NANOEDIT_SANDBOX=ture) would send paid requests.
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def check_bool(value: str) -> str:
    """A boolean setting as ``true`` or ``false``, from any of its spellings; a
    :class:`UsageError` listing them for anything else."""
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return "true"
    if word in FALSE_WORDS:
        return "false"
    spellings = ", ".join(TRUE_WORDS + FALSE_WORDS)
    raise UsageError(f"{value.strip()!r} is not true or false; use one of: {spellings}")


PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
KEY_COMMAND_TIMEOUT = 30.0


def _seconds(value: str) -> float:
    # "nan" and "inf" parse as floats but mean nothing as a wait or a deadline.
    try:
        number = float(value)
    except ValueError:
        return math.nan
    return number if math.isfinite(number) else math.nan


def number_text(number: float) -> str:
    """A number as nanoedit prints it: ``900`` for 900.0, ``0.5`` for 0.5."""
    text = repr(float(number))
    return text.removesuffix(".0")


def check_positive_seconds(example: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        seconds = _seconds(value)
        if not seconds > 0:
            raise UsageError(
                f"invalid value {value!r}; give a number of seconds above 0, such as {example}"
            )
        return number_text(seconds)

    return check


_check_timeout = check_positive_seconds("900")


def _check_seconds_or_zero(value: str) -> str:
    seconds = _seconds(value)
    if not seconds >= 0:
        raise UsageError(f"invalid value {value!r}; give a number of seconds, 0 or more, such as 1")
    return number_text(seconds)


def _check_retries(value: str) -> str:
    cleaned = value.strip()
    if not (cleaned.isascii() and cleaned.isdigit() and int(cleaned) <= MAX_RETRIES):
        raise UsageError(
            f"invalid value {value!r}; give a whole number from 0 to {MAX_RETRIES}, such as 3"
        )
    return str(int(cleaned))


# A leading ``[scheme://]user:password@``, read as loosely as a mistyped URL may be written:
# the password is the part to hide even when the rest is not a valid URL.
def _as_is(value: str) -> str:
    return value


def _check_proxy(value: str) -> str:
    cleaned = value.strip().rstrip("/")
    try:
        parts = urlsplit(cleaned)
        valid = parts.scheme.lower() in PROXY_SCHEMES and bool(parts.hostname)
        # Reading the port checks it is a number in range.
        valid = valid and (parts.port is None or parts.port > 0)
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(
            f"invalid proxy URL {redact_userinfo(value.strip())!r}; give it as "
            "http://host:port, https://host:port or socks5://host:port"
        )
    return cleaned


def _check_size(value: str) -> str:
    return normalize_size(value) or ""


def _check_command(value: str) -> str:
    from nanoedit.output.preview import check_open_command

    return check_open_command(value)


def _check_text(value: str) -> str:
    if not value.strip():
        raise UsageError("the value is empty; to remove a setting use nanoedit config unset KEY")
    return value.strip()


@dataclass(frozen=True)
class KeySpec:
    """One config key: its environment variable, default, check, TOML type and help.

    ``check`` is the one rule for the key's value, wherever it comes from: the file, the
    environment, or the command-line flag that overrides it. It returns the value as text
    in its usual form; ``toml_type`` is what the file stores it as. A ``secret`` value is
    never printed whole; ``shown`` hides what else must not be printed (a URL's password).
    ``env_aliases`` are further variables read after ``env``, such as a provider's own
    customary ``GEMINI_API_KEY``.
    """

    env: str
    help: str
    default: str | None = None
    secret: bool = False
    check: Callable[[str], str] = _check_text
    toml_type: type[str] | type[int] | type[float] = str
    shown: Callable[[str], str] = _as_is
    env_aliases: tuple[str, ...] = ()

    def stored(self, value: str) -> Value:
        """The value checked, as the config file is to hold it (raises :class:`UsageError`)."""
        return self.toml_type(self.check(value))


def _check_backend(value: str) -> str:
    from nanoedit.registry import backend_names

    return check_choice(("auto", *backend_names()))(value)


def backend_keys(backend: type[BackendBase]) -> dict[str, KeySpec]:
    """The config keys a backend owns: the four every backend has, then its own."""
    name, title = backend.name, backend.title
    env = f"NANOEDIT_{name.upper()}"
    keys = {
        f"{name}.base_url": KeySpec(
            f"{env}_BASE_URL",
            f"{title}: server URL",
            backend.default_base_url,
            check=check_url,
            shown=redact_userinfo,
        ),
        f"{name}.api_key": KeySpec(
            f"{env}_API_KEY", f"{title}: API key", secret=True, env_aliases=backend.key_env
        ),
        f"{name}.api_key_cmd": KeySpec(
            f"{env}_API_KEY_CMD",
            f"{title}: shell command that prints the API key (when {name}.api_key is unset)",
        ),
        f"{name}.model": KeySpec(f"{env}_MODEL", f"{title}: model", backend.default_model),
    }
    keys |= {f"{name}.{short}": spec for short, spec in backend.extra_keys.items()}
    return keys


CORE_KEYS: dict[str, KeySpec] = {
    "default.backend": KeySpec(
        "NANOEDIT_BACKEND", "auto, or a backend's name", "auto", check=_check_backend
    ),
    "default.out_dir": KeySpec("NANOEDIT_OUT_DIR", "where images are saved (default: .)"),
    "default.ratio": KeySpec(
        "NANOEDIT_RATIO", f"aspect ratio: {', '.join(RATIOS)}", "auto", check=normalize_ratio
    ),
    "default.size": KeySpec("NANOEDIT_SIZE", "image size: 1K, 2K or 4K", check=_check_size),
    "preview.protocol": KeySpec(
        "NANOEDIT_PREVIEW_PROTOCOL",
        "how --preview draws: auto, kitty, iterm, sixel, halfblocks or none", "auto",
        check=check_choice(("auto", "kitty", "iterm", "sixel", "halfblocks", "none")),
    ),
    "preview.open_command": KeySpec(
        "NANOEDIT_OPEN_COMMAND",
        "viewer --open starts with each image's path (default: the system's own)",
        check=_check_command,
    ),
    "history.enabled": KeySpec(
        "NANOEDIT_HISTORY",
        "keep the job journal (prompts, task ids, results) for resume and history: true or false",
        "true", check=check_bool,
    ),
    # No default: without it httpx follows HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY.
    "network.proxy": KeySpec(
        "NANOEDIT_PROXY", "proxy for every request: http://, https:// or socks5://host:port",
        check=_check_proxy, shown=redact_userinfo,
    ),
    "network.timeout": KeySpec(
        "NANOEDIT_TIMEOUT", "seconds one job may take in all, retries and polls included",
        "900", check=_check_timeout, toml_type=float,
    ),
    "network.retries": KeySpec(
        "NANOEDIT_RETRIES", f"times a failed request is sent again, 0 (never) to {MAX_RETRIES}",
        "3", check=_check_retries, toml_type=int,
    ),
    "network.backoff": KeySpec(
        "NANOEDIT_BACKOFF", "seconds before the first retry (doubles each time)", "1",
        check=_check_seconds_or_zero, toml_type=float,
    ),
}  # fmt: skip


@cache
def all_keys() -> dict[str, KeySpec]:
    """Every config key: each registered backend's, then the core's."""
    from nanoedit.net.uploads import upload_keys
    from nanoedit.registry import backend_classes

    keys: dict[str, KeySpec] = {}
    for backend in backend_classes():
        keys |= backend_keys(backend)
    # The uploader's keys go before the network's, which close the list.
    core = list(CORE_KEYS.items())
    split = next(n for n, (key, _) in enumerate(core) if key.startswith("network."))
    return keys | dict(core[:split]) | upload_keys() | dict(core[split:])


MODELS = "models"
"""The config file's section of corrections to the model catalog."""


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


def closest_keys(key: str) -> list[str]:
    """The known keys a mistyped one most likely meant: the same name in another section
    (``network.retries`` for ``default.retries``), else the nearest spelling."""
    import difflib

    cleaned = key.strip().lower().replace("-", "_")
    keys = all_keys()
    if cleaned in keys:
        return [cleaned]
    name = cleaned.rpartition(".")[2]
    same_name = [known for known in keys if known.rpartition(".")[2] == name]
    return same_name or difflib.get_close_matches(cleaned, keys, n=1)


def _did_you_mean(key: str) -> str:
    closest = closest_keys(key)
    return f"did you mean {' or '.join(closest)}?" if closest else ""


def price_spec(key: str) -> KeySpec | None:
    """The spec of a ``pricing.BACKEND.MODEL[.SIZE]`` key (a family of keys, one per model a
    user prices, so not listed in :func:`all_keys`); None for any other key."""
    from nanoedit.catalog.pricing import check_price, parse_price_key

    if parse_price_key(key) is None:
        return None
    # No environment variable: a price is a setting of the file only.
    return KeySpec("", "price of one image in US dollars", check=check_price, toml_type=float)


def is_known_key(key: str) -> bool:
    """Whether nanoedit knows ``key``: a listed key, or a well-formed pricing key."""
    if key in all_keys():
        return True
    try:
        return price_spec(key) is not None
    except UsageError:
        return False


def spec_for(key: str) -> KeySpec:
    """The spec of a key, or a usage error that lists the known keys."""
    try:
        return all_keys()[key]
    except KeyError:
        spec = price_spec(key)
        if spec is not None:
            return spec
        hint = _did_you_mean(key)
        known = ", ".join(all_keys())
        raise UsageError(
            f"unknown config key {key!r}; {hint + ' ' if hint else ''}known keys: {known}"
        ) from None


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
        if section == MODELS and isinstance(table, dict):
            continue  # the catalog's corrections: load_catalog checks them
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
    named = ", ".join(f"{key} ({hint})" if (hint := _did_you_mean(key)) else key for key in unknown)
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


def write_file(path: Path, values: Mapping[str, Value]) -> None:
    """Write flat ``section.name`` values as the whole file (see :func:`write_document`)."""
    document: dict[str, Any] = {}
    for key in sorted(values):
        set_value(document, key, values[key])
    write_document(path, document)


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


def mask_secret(value: str) -> str:
    """Show a key by its last four characters only, and not even those when it is short."""
    if len(value) < 12:
        return "****"
    return f"****{value[-4:]}"


def display_value(key: str, value: str) -> str:
    """A setting's value as it may be printed: keys masked, a URL's password hidden."""
    spec = spec_for(key)
    return mask_secret(value) if spec.secret else spec.shown(value)


@dataclass(frozen=True)
class Resolved:
    """A setting's value and where it came from (``flag``, ``env``, ``file``, ``default``);
    ``env_name`` is the variable that gave it."""

    value: str | None
    source: str
    env_name: str | None = None


def resolve_key(
    key: str, file_values: Mapping[str, str], env: Mapping[str, str], flag: str | None = None
) -> Resolved:
    """One key by precedence: flag, then environment, then file, then default."""
    spec = spec_for(key)
    if flag is not None:
        return Resolved(flag, "flag")
    names = (spec.env, *spec.env_aliases) if spec.env else spec.env_aliases
    env_name = next((name for name in names if env.get(name)), None)
    try:
        if env_name is not None:
            return Resolved(spec.check(env[env_name]), "env", env_name)
        if key in file_values:
            return Resolved(spec.check(file_values[key]), "file")
    except UsageError as exc:
        where = f"the environment variable {env_name}" if env_name else f"config key {key}"
        raise ConfigError(f"{where}: {exc.message}") from None
    return Resolved(spec.default, "default")


def run_key_command(command: str, key_name: str, timeout: float = KEY_COMMAND_TIMEOUT) -> str:
    """Run a key command through the shell and return its first line of output, stripped.

    Failures are :class:`ConfigError` messages naming ``key_name``; none of them quotes the
    command's stdout, which may hold the key.
    """
    instead = f"or set {key_name.removesuffix('_cmd')} instead"
    try:
        with commands.running(command) as process:
            try:
                out, err = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                commands.stop_and_drain(process)
                raise ConfigError(
                    f"{key_name} did not finish within {timeout:g} s and was stopped; make sure "
                    f"it does not wait for input (it gets none), {instead}"
                ) from None
            except BaseException:
                # Ctrl-C while waiting here: the command must not live on, re-parented to init.
                commands.stop(process)
                raise
    except OSError as exc:
        raise ConfigError(
            f"{key_name} could not be started ({exc.strerror or exc}); check it, {instead}"
        ) from None
    try:
        output: str | None = out.decode("utf-8").strip()
    except UnicodeDecodeError:
        output = None
    key = output.splitlines()[0].strip() if output else ""
    why = commands.last_line(err.decode("utf-8", errors="replace"))
    # A command that echoes its output on stderr too must not leak it through the message.
    for line in sorted((output or "").splitlines(), key=len, reverse=True):
        if line.strip():
            why = why.replace(line.strip(), "****")
    status = process.returncode
    if status == 127:
        said = f": {why}" if why else ""
        raise ConfigError(
            f"{key_name} failed: command not found (exit status 127{said}); check the "
            f"command and your PATH, {instead}"
        )
    if status != 0:
        how = f"failed with exit status {status}"
        if status < 0:
            how = f"was killed by signal {-status}"
        said = f" ({why})" if why else ""
        raise ConfigError(f"{key_name} {how}{said}; run it in a shell to see why, {instead}")
    if output is None:
        raise ConfigError(
            f"{key_name} printed something that is not UTF-8 text; make it print the key, {instead}"
        )
    if not key:
        raise ConfigError(
            f"{key_name} printed nothing (exit status 0); make it print the key on its first "
            f"line, {instead}"
        )
    return key


class _KeyCache:
    """What a key command gave, kept for the run: jobs run in threads, and each command must
    run once (it may ask for a passphrase), so a lock guards it. A failure is kept too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcome: str | ConfigError | None = None

    def get(self, produce: Callable[[], str]) -> str:
        """The cached key, or the cached failure raised again; ``produce`` runs on first use."""
        with self._lock:
            if self._outcome is None:
                try:
                    self._outcome = produce()
                except ConfigError as exc:
                    self._outcome = exc
            if isinstance(self._outcome, ConfigError):
                raise ConfigError(self._outcome.message)
            return self._outcome


@dataclass(frozen=True)
class BackendSettings:
    """Where and how to reach one backend.

    The key is :meth:`key`: ``api_key``, or what ``api_key_cmd`` prints, run on first use.
    A copy made with ``dataclasses.replace`` has its own cache and runs the command again.
    """

    name: str
    base_url: str | None
    api_key: str | None
    model: str
    api_key_cmd: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    """The backend's own keys (``image_field``…) by short name, resolved: read with
    :meth:`option`."""
    key_source: str = "file"
    """Where the key in use (``api_key``, else ``api_key_cmd``) was set: ``env``, ``file``, or
    ``sandbox`` (the in-process sandbox's own)."""
    key_env: str | None = None
    """The environment variable that gave it, when ``key_source`` is ``env``."""
    unused_key_env: tuple[str, ...] = ()
    """The provider's other key variables that are set too, but lose to ``key_env``."""
    _key_cache: _KeyCache = field(default_factory=_KeyCache, init=False, repr=False, compare=False)

    def option(self, short: str) -> str:
        """The value of the backend's own key ``short`` (empty when unset)."""
        return dict(self.options).get(short, "")

    @property
    def configured(self) -> bool:
        """A backend is usable once it has a server and a key (or a command that prints one)."""
        return bool(self.base_url) and bool(self.api_key or self.api_key_cmd)

    def key(self) -> str:
        """The API key: ``api_key`` if set, else the output of ``api_key_cmd`` (run once).

        Raises :class:`ConfigError` when there is neither, or the command fails.
        """
        if self.api_key:
            return self.api_key
        command = self.api_key_cmd
        if not command:
            raise ConfigError(
                f"the {self.name} backend has no API key; set it with: "
                f"nanoedit config set {self.name}.api_key KEY"
            )
        return self._key_cache.get(lambda: run_key_command(command, f"{self.name}.api_key_cmd"))

    def key_advice(self) -> str:
        """What to do about a rejected key, by where it came from: a variable of the
        environment overrides the file, so ``config set`` cannot fix it."""
        name = f"{self.name}.api_key"
        if self.api_key or not self.api_key_cmd:
            if self.key_source == "env":
                env = self.key_env or spec_for(name).env
                return (
                    f"the key comes from {env}, which overrides the config file: "
                    f"unset {env} or fix it"
                )
            return f"set a valid one with: nanoedit config set {name} KEY"
        command = f"{name}_cmd"
        if self.key_source == "env":
            command = f"the command in {self.key_env or spec_for(command).env}"
        return f"check what {command} prints, or set {name}"


@dataclass(frozen=True)
class UploadSettings:
    """How local files reach an API that takes URLs only (``nanoedit.net.uploads``): ``via``
    names the uploader (None: none is chosen), ``options`` the ``upload.*`` keys' values."""

    via: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    def option(self, key: str) -> str:
        """The value of the upload key ``key`` (empty when unset)."""
        return dict(self.options).get(key, "")


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, resolved."""

    backends: Mapping[str, BackendSettings]
    """Every registered backend's settings, in registry order."""
    backend: str
    out_dir: Path
    ratio: str
    size: str | None
    sandbox: bool
    proxy: str | None = None
    timeout: float = 900.0
    retries: int = 3
    backoff: float = 1.0
    warnings: tuple[str, ...] = ()
    """Things to tell the user before the run, such as a config file others can read."""
    preview_protocol: str = "auto"
    open_command: str | None = None
    upload: UploadSettings = UploadSettings()
    history: bool = True
    """Whether runs are written to the job journal (``history.enabled``, ``--no-history``)."""
    prices: tuple[tuple[str, float], ...] = ()
    """The user's prices per image: ``pricing.BACKEND.MODEL[.SIZE]`` keys and their values."""
    catalog: Catalog = field(default_factory=shipped_catalog)
    """The model catalog, with the config file's corrections (``[models."ID"]``)."""

    def backend_settings(self, name: str) -> BackendSettings:
        """The settings of the backend called ``name``."""
        return self.backends[name]


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


def _stays_local(host: str) -> bool:
    # A .invalid name never resolves (RFC 2606): the sandbox's in-process host is one.
    if host.lower() == "localhost" or host.lower().endswith(".invalid"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def userinfo_warning(name: str, base_url: str | None) -> str | None:
    """A warning when a backend's base URL carries a user name or password, which would
    replace the API key if it were sent (HTTP clients turn it into Basic authentication)."""
    if not base_url or without_userinfo(base_url) == base_url:
        return None
    what = "a user name and password" if urlsplit(base_url).password is not None else "a user name"
    return (
        f"{name}.base_url holds {what} ({redact_userinfo(base_url)}), which nanoedit does not "
        f"send: the API key is what signs in; remove them from {name}.base_url"
    )


def plain_http_warning(settings: BackendSettings) -> str | None:
    """A warning when the backend's key would travel unencrypted to another machine."""
    if not settings.base_url or not (settings.api_key or settings.api_key_cmd):
        return None
    parts = urlsplit(settings.base_url)
    host = parts.hostname or ""
    if parts.scheme.lower() != "http" or _stays_local(host):
        return None
    return (
        f"the {settings.name} backend sends its API key to {host} over plain http://, where "
        f"anyone on the way can read it; use https:// in {settings.name}.base_url"
    )


def unused_key_warning(settings: BackendSettings) -> str | None:
    """A warning when the key in use came from one of the provider's own variables and
    another of them is set too: only the first counts (GOOGLE_API_KEY over GEMINI_API_KEY,
    as Google's own SDK has it), and the user may have meant the other. Names, never keys."""
    if not settings.unused_key_env:
        return None
    others = " and ".join(settings.unused_key_env)
    own = spec_for(f"{settings.name}.api_key").env
    return (
        f"both {settings.key_env} and {others} are set; the {settings.name} backend uses "
        f"{settings.key_env}, the first of them (as Google's own SDK does); unset {others} if "
        f"it is not the key you mean, or set {own}"
    )


def backend_warnings(settings: BackendSettings) -> list[str]:
    """What to tell, once per run, about a backend the run uses: a key that would travel in
    the clear, a key variable that loses to another."""
    found = (plain_http_warning(settings), unused_key_warning(settings))
    return [warning for warning in found if warning]


def _unused_key_env(key: str, given: Resolved, env: Mapping[str, str]) -> tuple[str, ...]:
    """The provider's key variables after ``given``'s that are set too (none when the key
    came from elsewhere: nanoedit's own variable, the file, a command)."""
    aliases = spec_for(key).env_aliases
    if given.source != "env" or given.env_name not in aliases:
        return ()
    later = aliases[aliases.index(given.env_name) + 1 :]
    return tuple(name for name in later if env.get(name))


def _flag(option: str, value: float | str | None, key: str) -> str | None:
    """A flag's value checked by the rule of the key it overrides; a bad one is a usage error."""
    if value is None:
        return None
    text = number_text(value) if isinstance(value, float) else str(value)
    try:
        return spec_for(key).check(text)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc.message}") from None


def _backend_settings(
    backend: type[BackendBase],
    resolve: Callable[[str], Resolved],
    sandbox: bool,
    env: Mapping[str, str],
) -> BackendSettings:
    """One backend's settings; in the sandbox every backend talks to the emulated server."""
    name = backend.name

    def get(key: str) -> str | None:
        return resolve(f"{name}.{key}").value

    options = tuple((short, get(short) or "") for short in backend.extra_keys)
    model = get("model") or backend.default_model
    if sandbox:
        from nanoedit.sandbox import SANDBOX_BASE_URL, SANDBOX_KEY

        # At the path its real server has: an API may live under a folder of its host.
        path = urlsplit(backend.default_base_url or "").path.rstrip("/")
        return BackendSettings(
            name, SANDBOX_BASE_URL + path, SANDBOX_KEY, model, options=options,
            key_source="sandbox",
        )  # fmt: skip
    # The key in use is the api_key setting if there is one, else the command's output.
    given = next(
        (found for key in ("api_key", "api_key_cmd") if (found := resolve(f"{name}.{key}")).value),
        Resolved(None, "file"),
    )
    url = get("base_url")
    return BackendSettings(
        name,
        # What signs in is the key; a URL's user:password@ would be sent instead of it.
        without_userinfo(url) if url else None,
        get("api_key"),
        model,
        api_key_cmd=get("api_key_cmd"),
        options=options,
        key_source=given.source,
        key_env=given.env_name,
        unused_key_env=_unused_key_env(f"{name}.api_key", given, env),
    )


def wants_sandbox(options: RunOptions, env: Mapping[str, str]) -> bool:
    """Whether the run talks to the in-process sandbox: --sandbox, or NANOEDIT_SANDBOX true
    (empty is unset); a :class:`ConfigError` when the variable is not a boolean."""
    value = env.get(SANDBOX_ENV)
    if options.sandbox or not value:
        return options.sandbox
    try:
        return check_bool(value) == "true"
    except UsageError as exc:
        raise ConfigError(f"the environment variable {SANDBOX_ENV}: {exc.message}") from None


def load_settings(
    env: Mapping[str, str],
    options: RunOptions,
    *,
    ratio: str | None = None,
    size: str | None = None,
    file_values: Mapping[str, str] | None = None,
    live_cache: bool = True,
) -> Settings:
    """Merge file, environment and the command line into one :class:`Settings`.

    The command line's values are the settings ``options`` overrides, and --ratio and --size
    (``ratio``, ``size``; None when not given). ``file_values`` stand in for the file's, to
    see what a change to it would make. The model catalog is the shipped one with what
    ``nanoedit models --live`` last read laid over it (unless ``live_cache`` is False), and
    the file's corrections over both. Key commands are not run here;
    :meth:`BackendSettings.key` runs them when needed.
    """
    sandbox = wants_sandbox(options, env)
    path = config_path(env)
    warnings: list[str | None] = []
    catalog = shipped_catalog()
    document: dict[str, Any] | None = None
    if file_values is None:
        document = read_document(path)
        file_values = flat_values(document)
        warnings += [permission_warning(path), unknown_keys_warning(path, document)]
        catalog = file_catalog(document)

    def get(key: str, flag: str | None = None) -> str | None:
        return resolve_key(key, file_values, env, flag).value

    from nanoedit.registry import backend_classes

    def resolve(key: str) -> Resolved:
        return resolve_key(key, file_values, env)

    backends = {
        backend.name: _backend_settings(backend, resolve, sandbox, env)
        for backend in backend_classes()
    }
    warnings += [
        userinfo_warning(name, None if sandbox else get(f"{name}.base_url")) for name in backends
    ]
    if document is not None and live_cache:
        base_urls = {name: settings.base_url for name, settings in backends.items()}
        catalog, warning = with_live_cache(catalog, document, env, base_urls)
        warnings.append(warning)
    backend = get("default.backend", _flag("--backend", options.backend, "default.backend"))
    ratio = get("default.ratio", _flag("--ratio", ratio, "default.ratio"))
    size = get("default.size", _flag("--size", size or None, "default.size"))
    out_dir = Path(options.out_dir or get("default.out_dir") or ".").expanduser()
    # Flags are checked here too: the CLI's own limits are not the only caller's.
    proxy = get("network.proxy", _flag("--proxy", options.proxy, "network.proxy"))
    timeout = get("network.timeout", _flag("--timeout", options.timeout, "network.timeout"))
    retries = get("network.retries", _flag("--retries", options.retries, "network.retries"))
    from nanoedit.net.uploads import upload_keys

    upload = UploadSettings(
        get("upload.via"),
        tuple((key, get(key) or "") for key in upload_keys() if key != "upload.via"),
    )
    return Settings(
        backends=backends,
        backend=backend or "auto",
        out_dir=out_dir,
        ratio=ratio or "auto",
        size=size or None,
        sandbox=sandbox,
        proxy=proxy,
        timeout=float(timeout or "900"),
        retries=int(retries or "3"),
        backoff=float(get("network.backoff") or "1"),
        warnings=tuple(warning for warning in warnings if warning),
        preview_protocol=get("preview.protocol") or "auto",
        open_command=get("preview.open_command"),
        upload=upload,
        history=options.history and get("history.enabled") != "false",
        prices=price_settings(file_values),
        catalog=catalog,
    )


def file_catalog(document: Mapping[str, Any]) -> Catalog:
    """The model catalog with the file's ``[models."ID"]`` corrections laid over it; a config
    error naming the entry when one is malformed."""
    overrides = document.get(MODELS)
    if not overrides:
        return shipped_catalog()
    if not isinstance(overrides, dict):
        raise ConfigError(
            f"the config file's {MODELS} must be a table of models, such as "
            f'[{MODELS}."gemini-3-pro-image"]; correct it in the config file'
        )
    from nanoedit.registry import backend_names

    return load_catalog(overrides, backends=backend_names())


def with_live_cache(
    catalog: Catalog,
    document: Mapping[str, Any],
    env: Mapping[str, str],
    base_urls: Mapping[str, str | None],
) -> tuple[Catalog, str | None]:
    """``catalog`` (the file's) with the ratios and sizes ``nanoedit models --live`` last read
    laid under the file's own corrections (see :mod:`nanoedit.run.live`), and a warning when that
    cache cannot be read."""
    from nanoedit.datadir import LIVE_CACHE_NAME, data_dir

    if not (data_dir(env) / LIVE_CACHE_NAME).exists():
        return catalog, None  # never read: the module that reads it is not even loaded
    from nanoedit.run.live import cached_corrections

    user = document.get(MODELS) or {}
    corrections, warning = cached_corrections(env, catalog, user, base_urls)
    if not corrections:
        return catalog, warning
    from nanoedit.registry import backend_names

    return load_catalog(deep_merge(corrections, user), backends=backend_names()), warning


def price_settings(file_values: Mapping[str, str]) -> tuple[tuple[str, float], ...]:
    """The ``pricing.*`` settings of the file, each checked (a bad one is a config error)."""
    prices = []
    for key in file_values:
        if key.startswith("pricing.") and is_known_key(key):
            price = resolve_key(key, file_values, {}).value
            assert price is not None  # the file has it
            prices.append((key, float(price)))
    return tuple(prices)


@dataclass(frozen=True)
class SizeConflict:
    """A default size that the model of some backends in use cannot render."""

    size: str
    models: tuple[tuple[str, str], ...]
    """(backend, model) of each backend in use that cannot render it."""
    every_run: bool
    """True when no backend in use can: then every run without --model fails."""
    renders: tuple[str, ...] = ()
    """What each of those models renders there (``1K``, ``1K, 2K, 4K``), in the same order."""
    choices: tuple[str, ...] = ()
    """The models that render the size on those backends, by the names that reach them."""


def size_conflict(settings: Settings) -> SizeConflict | None:
    """Whether the default size is one the backends' models cannot render.

    The backends in use are the one chosen, or with ``auto`` those configured (all of them
    while none is).
    """
    size = settings.size
    if size is None:
        return None
    names: tuple[str, ...] = (settings.backend,)
    if settings.backend == "auto":
        every = tuple(settings.backends)
        configured = tuple(name for name in every if settings.backend_settings(name).configured)
        names = configured or every
    failing = []
    renders: list[str] = []
    choices: list[str] = []
    for name in names:
        model = settings.backend_settings(name).model
        limits = settings.catalog.resolve_quietly(name, model).limits
        if limits is not None and size not in limits.sizes:
            failing.append((name, model))
            renders.append(", ".join(limits.sizes))
            for choice in settings.catalog.names_that(name, lambda other: size in other.sizes):
                if choice not in choices:
                    choices.append(choice)
    if not failing:
        return None
    return SizeConflict(
        size,
        tuple(failing),
        every_run=len(failing) == len(names),
        renders=tuple(renders),
        choices=tuple(choices),
    )


def _size_conflict_with(values: Mapping[str, str], env: Mapping[str, str]) -> SizeConflict | None:
    try:
        return size_conflict(load_settings(env, RunOptions(), file_values=values))
    except NanoeditError:
        # Another setting is wrong: every run reports that, whatever this one is.
        return None


def check_combination(
    key: str, before: Mapping[str, str], after: Mapping[str, str], env: Mapping[str, str]
) -> str | None:
    """Check a change of ``key`` in the file (its values ``before`` and ``after``) against
    the other settings, as a run would see them.

    Raises :class:`UsageError` when it would make every run fail, and returns a warning
    when it would make some fail; a problem that was there before is not this change's.
    """
    conflict = _size_conflict_with(after, env)
    if conflict is None or conflict == _size_conflict_with(before, env):
        return None
    keys = [f"{name}.model" for name, _ in conflict.models]
    models = " or ".join(
        f"{name}.model {model} ({renders} only)"
        for (name, model), renders in zip(conflict.models, conflict.renders, strict=True)
    )
    what = f"default.size {conflict.size} cannot be rendered by {models}"
    choices = " or ".join(conflict.choices) or "a model that renders it (nanoedit models)"
    if not conflict.every_run:
        names = " or ".join(name for name, _ in conflict.models)
        return f"{what}, so jobs sent to {names} would fail; set {' and '.join(keys)} to {choices}"
    if key == "default.size":
        fix = (
            f"set {' and '.join(keys)} to {choices} first, or leave default.size unset and "
            "pass --size with --model when you need it"
        )
    else:
        model_keys = [key] if key in keys else keys
        fix = (
            f"choose a model that renders {conflict.size} for {' and '.join(model_keys)} "
            f"({choices}), or first remove default.size: nanoedit config unset default.size"
        )
    raise UsageError(f"{what}, so every run would fail; {fix}")
