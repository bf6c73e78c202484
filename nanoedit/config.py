"""Settings: the config file, the environment and the flags, merged in that order of weight.

The file is TOML in the platformdirs user config directory (or ``NANOEDIT_CONFIG_DIR``),
written with mode 0600 in a 0700 directory because it holds API keys.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nanoedit.errors import ConfigError, UsageError
from nanoedit.jobs import BACKEND_CHOICES, RATIOS, normalize_ratio, normalize_size

CONFIG_DIR_ENV = "NANOEDIT_CONFIG_DIR"
CONFIG_FILE_NAME = "config.toml"
SANDBOX_ENV = "NANOEDIT_SANDBOX"


def _check_url(value: str) -> str:
    cleaned = value.strip().rstrip("/")
    parts = urlsplit(cleaned)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError(f"invalid base URL {value!r}; give it as https://host or https://host/v1")
    return cleaned


def _check_choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value in choices:
            return value
        raise UsageError(f"invalid value {value!r}; use one of: {', '.join(choices)}")

    return check


def _check_positive_float(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number <= 0:
        raise UsageError(f"invalid value {value!r}; give a number of seconds above 0, such as 2")
    return value.strip()


def _check_size(value: str) -> str:
    return normalize_size(value) or ""


def _check_text(value: str) -> str:
    if not value.strip():
        raise UsageError("the value is empty; to remove a setting use nanoedit config unset KEY")
    return value.strip()


@dataclass(frozen=True)
class KeySpec:
    """One config key: its environment variable, default, check and help."""

    env: str
    help: str
    default: str | None = None
    secret: bool = False
    check: Callable[[str], str] = _check_text


KEYS: dict[str, KeySpec] = {
    "openai.base_url": KeySpec(
        "NANOEDIT_OPENAI_BASE_URL", "multipart backend server (https://host or https://host/v1)",
        check=_check_url,
    ),
    "openai.api_key": KeySpec("NANOEDIT_OPENAI_API_KEY", "multipart backend API key", secret=True),
    "openai.model": KeySpec("NANOEDIT_OPENAI_MODEL", "multipart backend model", "nano-banana"),
    "openai.image_field": KeySpec(
        "NANOEDIT_OPENAI_IMAGE_FIELD", "multipart field name for images: image or image[]",
        "image", check=_check_choice(("image", "image[]")),
    ),
    "duomi.base_url": KeySpec(
        "NANOEDIT_DUOMI_BASE_URL", "URL-list backend server", "https://duomiapi.com",
        check=_check_url,
    ),
    "duomi.api_key": KeySpec("NANOEDIT_DUOMI_API_KEY", "URL-list backend API key", secret=True),
    "duomi.model": KeySpec(
        "NANOEDIT_DUOMI_MODEL", "URL-list backend model", "gemini-2.5-flash-image"
    ),
    "duomi.poll_interval": KeySpec(
        "NANOEDIT_DUOMI_POLL_INTERVAL", "seconds before the first poll of a task (grows to 10)",
        "2", check=_check_positive_float,
    ),
    "default.backend": KeySpec(
        "NANOEDIT_BACKEND", "auto, openai or duomi", "auto", check=_check_choice(BACKEND_CHOICES)
    ),
    "default.out_dir": KeySpec("NANOEDIT_OUT_DIR", "where images are saved (default: .)"),
    "default.ratio": KeySpec(
        "NANOEDIT_RATIO", f"aspect ratio: {', '.join(RATIOS)}", "auto", check=normalize_ratio
    ),
    "default.size": KeySpec("NANOEDIT_SIZE", "image size: 1K, 2K or 4K", check=_check_size),
}  # fmt: skip


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


def spec_for(key: str) -> KeySpec:
    """The spec of a key, or a usage error that lists the known keys."""
    try:
        return KEYS[key]
    except KeyError:
        raise UsageError(f"unknown config key {key!r}; known keys: {', '.join(KEYS)}") from None


def read_file(path: Path) -> dict[str, str]:
    """The file's values as flat ``section.name`` keys; an absent file is empty."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(
            f"cannot read the config file {path} ({exc.strerror}); check it"
        ) from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"the config file {path} is not valid TOML ({exc}); fix it or delete it"
        ) from None
    values: dict[str, str] = {}
    for section, table in document.items():
        if not isinstance(table, dict):
            continue
        for name, value in table.items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                values[f"{section}.{name}"] = str(value)
    return values


def write_file(path: Path, values: Mapping[str, str]) -> None:
    """Write the values atomically, the folder 0700 and the file 0600 from the start."""
    import tomli_w

    document: dict[str, dict[str, str]] = {}
    for key in sorted(values):
        section, name = key.split(".", 1)
        document.setdefault(section, {})[name] = values[key]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(tomli_w.dumps(document).encode("utf-8"))
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def mask_secret(value: str) -> str:
    """Show a key by its last four characters only, and not even those when it is short."""
    if len(value) < 12:
        return "****"
    return f"****{value[-4:]}"


@dataclass(frozen=True)
class Resolved:
    """A setting's value and where it came from (``flag``, ``env``, ``file``, ``default``)."""

    value: str | None
    source: str


def resolve_key(
    key: str, file_values: Mapping[str, str], env: Mapping[str, str], flag: str | None = None
) -> Resolved:
    """One key by precedence: flag, then environment, then file, then default."""
    spec = spec_for(key)
    if flag is not None:
        return Resolved(flag, "flag")
    env_value = env.get(spec.env)
    try:
        if env_value:
            return Resolved(spec.check(env_value), "env")
        if key in file_values:
            return Resolved(spec.check(file_values[key]), "file")
    except UsageError as exc:
        where = f"the environment variable {spec.env}" if env_value else f"config key {key}"
        raise ConfigError(f"{where}: {exc.message}") from None
    return Resolved(spec.default, "default")


@dataclass(frozen=True)
class BackendSettings:
    """Where and how to reach one backend."""

    name: str
    base_url: str | None
    api_key: str | None
    model: str
    image_field: str = "image"
    poll_interval: float = 2.0

    @property
    def configured(self) -> bool:
        """A backend is usable once it has a server and a key."""
        return bool(self.base_url) and bool(self.api_key)


@dataclass(frozen=True)
class Flags:
    """The command-line values that override the environment and the file."""

    backend: str | None = None
    ratio: str | None = None
    size: str | None = None
    out_dir: str | None = None
    sandbox: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, resolved."""

    openai: BackendSettings
    duomi: BackendSettings
    backend: str
    out_dir: Path
    ratio: str
    size: str | None
    sandbox: bool

    def backend_settings(self, name: str) -> BackendSettings:
        """The settings of the backend called ``name``."""
        return self.openai if name == "openai" else self.duomi


def load_settings(env: Mapping[str, str], flags: Flags) -> Settings:
    """Merge file, environment and flags into one :class:`Settings`."""
    sandbox = flags.sandbox or env.get(SANDBOX_ENV, "").strip().lower() in ("1", "true", "yes")
    file_values = read_file(config_path(env))

    def get(key: str, flag: str | None = None) -> str | None:
        return resolve_key(key, file_values, env, flag).value

    if sandbox:
        from nanoedit.sandbox import SANDBOX_BASE_URL, SANDBOX_KEY

        openai_url: str | None = SANDBOX_BASE_URL
        duomi_url: str | None = SANDBOX_BASE_URL
        openai_key: str | None = SANDBOX_KEY
        duomi_key: str | None = SANDBOX_KEY
    else:
        openai_url, openai_key = get("openai.base_url"), get("openai.api_key")
        duomi_url, duomi_key = get("duomi.base_url"), get("duomi.api_key")
    openai = BackendSettings(
        name="openai",
        base_url=openai_url,
        api_key=openai_key,
        model=get("openai.model") or "nano-banana",
        image_field=get("openai.image_field") or "image",
    )
    duomi = BackendSettings(
        name="duomi",
        base_url=duomi_url,
        api_key=duomi_key,
        model=get("duomi.model") or "gemini-2.5-flash-image",
        poll_interval=float(get("duomi.poll_interval") or 2),
    )
    backend = flags.backend or get("default.backend") or "auto"
    if backend not in BACKEND_CHOICES:
        raise UsageError(f"invalid backend {backend!r}; use one of: {', '.join(BACKEND_CHOICES)}")
    ratio = normalize_ratio(flags.ratio) if flags.ratio else (get("default.ratio") or "auto")
    size = normalize_size(flags.size) if flags.size else (get("default.size") or None)
    out_dir = Path(flags.out_dir or get("default.out_dir") or ".").expanduser()
    return Settings(
        openai=openai,
        duomi=duomi,
        backend=backend,
        out_dir=out_dir,
        ratio=ratio,
        size=size,
        sandbox=sandbox,
    )
