"""Settings: the config file, the environment and the flags, merged in that order of weight.

The file is TOML in the platformdirs user config directory (or ``NANOEDIT_CONFIG_DIR``),
written with mode 0600 in a 0700 directory because it holds API keys.

A key may also come from a command (``openai.api_key_cmd``, e.g. ``pass show nanoedit/openai``),
run only when a request needs the key, at most once per backend and run.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import shlex
import signal
import stat
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from nanoedit.errors import ConfigError, UsageError
from nanoedit.jobs import RATIOS, normalize_ratio, normalize_size

if TYPE_CHECKING:
    from nanoedit.backends.base import BackendBase

CONFIG_DIR_ENV = "NANOEDIT_CONFIG_DIR"
CONFIG_FILE_NAME = "config.toml"
SANDBOX_ENV = "NANOEDIT_SANDBOX"


def check_url(value: str) -> str:
    cleaned = value.strip().rstrip("/")
    parts = urlsplit(cleaned)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError(f"invalid base URL {value!r}; give it as https://host or https://host/v1")
    return cleaned


def check_choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value in choices:
            return value
        raise UsageError(f"invalid value {value!r}; use one of: {', '.join(choices)}")

    return check


PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
KEY_COMMAND_TIMEOUT = 30.0
# How much of a failing key command's stderr goes into the message: enough to show why.
KEY_COMMAND_STDERR_CHARS = 200


def _seconds(value: str) -> float:
    # "nan" and "inf" parse as floats but mean nothing as a wait or a deadline.
    try:
        number = float(value)
    except ValueError:
        return math.nan
    return number if math.isfinite(number) else math.nan


def check_positive_seconds(example: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not _seconds(value) > 0:
            raise UsageError(
                f"invalid value {value!r}; give a number of seconds above 0, such as {example}"
            )
        return value.strip()

    return check


_check_timeout = check_positive_seconds("900")


def _check_seconds_or_zero(value: str) -> str:
    if not _seconds(value) >= 0:
        raise UsageError(f"invalid value {value!r}; give a number of seconds, 0 or more, such as 1")
    return value.strip()


def _check_count(value: str) -> str:
    cleaned = value.strip()
    if not (cleaned.isascii() and cleaned.isdigit()):
        raise UsageError(f"invalid value {value!r}; give a whole number, 0 or more, such as 3")
    return str(int(cleaned))


def redact_userinfo(url: str) -> str:
    """A URL with the password of any ``user:password@`` part replaced by ``****``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:****@{host}").geturl()


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


def _check_text(value: str) -> str:
    if not value.strip():
        raise UsageError("the value is empty; to remove a setting use nanoedit config unset KEY")
    return value.strip()


@dataclass(frozen=True)
class KeySpec:
    """One config key: its environment variable, default, check and help.

    ``env_aliases`` are further variables read after ``env``, such as a provider's own
    customary ``GEMINI_API_KEY``.
    """

    env: str
    help: str
    default: str | None = None
    secret: bool = False
    check: Callable[[str], str] = _check_text
    env_aliases: tuple[str, ...] = ()


def _check_backend(value: str) -> str:
    from nanoedit.backends import backend_names

    return check_choice(("auto", *backend_names()))(value)


def backend_keys(backend: type[BackendBase]) -> dict[str, KeySpec]:
    """The config keys a backend owns: the four every backend has, then its own."""
    name, title = backend.name, backend.title
    env = f"NANOEDIT_{name.upper()}"
    keys = {
        f"{name}.base_url": KeySpec(
            f"{env}_BASE_URL", f"{title}: server URL", backend.default_base_url, check=check_url
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
    # No default: without it httpx follows HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY.
    "network.proxy": KeySpec(
        "NANOEDIT_PROXY", "proxy for every request: http://, https:// or socks5://host:port",
        check=_check_proxy,
    ),
    "network.timeout": KeySpec(
        "NANOEDIT_TIMEOUT", "seconds one job may take in all, retries and polls included",
        "900", check=_check_timeout,
    ),
    "network.retries": KeySpec(
        "NANOEDIT_RETRIES", "times a failed request is sent again (0: never)", "3",
        check=_check_count,
    ),
    "network.backoff": KeySpec(
        "NANOEDIT_BACKOFF", "seconds before the first retry (doubles each time)", "1",
        check=_check_seconds_or_zero,
    ),
}  # fmt: skip


@cache
def all_keys() -> dict[str, KeySpec]:
    """Every config key: each registered backend's, then the core's."""
    from nanoedit.backends import backend_classes
    from nanoedit.uploads import upload_keys

    keys: dict[str, KeySpec] = {}
    for backend in backend_classes():
        keys |= backend_keys(backend)
    return keys | CORE_KEYS | upload_keys()


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
        return all_keys()[key]
    except KeyError:
        known = ", ".join(all_keys())
        raise UsageError(f"unknown config key {key!r}; known keys: {known}") from None


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


def display_value(key: str, value: str) -> str:
    """A setting's value as it may be printed: keys masked, a proxy's password hidden."""
    if spec_for(key).secret:
        return mask_secret(value)
    if key == "network.proxy":
        return redact_userinfo(value)
    return value


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
    env_name = next((name for name in (spec.env, *spec.env_aliases) if env.get(name)), None)
    try:
        if env_name is not None:
            return Resolved(spec.check(env[env_name]), "env", env_name)
        if key in file_values:
            return Resolved(spec.check(file_values[key]), "file")
    except UsageError as exc:
        where = f"the environment variable {env_name}" if env_name else f"config key {key}"
        raise ConfigError(f"{where}: {exc.message}") from None
    return Resolved(spec.default, "default")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    last = " ".join(lines[-1].split())
    if len(last) > KEY_COMMAND_STDERR_CHARS:
        return last[: KEY_COMMAND_STDERR_CHARS - 1] + "…"
    return last


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The shell's children (the real command) must go too, or they would hold the pipes
    # open and communicate() would wait for them.
    if sys.platform != "win32":
        try:
            os.killpg(process.pid, signal.SIGKILL)
            return
        except OSError:
            pass
    process.kill()


def run_key_command(command: str, key_name: str, timeout: float = KEY_COMMAND_TIMEOUT) -> str:
    """Run a key command through the shell and return its first line of output, stripped.

    Failures are :class:`ConfigError` messages naming ``key_name``; none of them quotes the
    command's stdout, which may hold the key.
    """
    instead = f"or set {key_name.removesuffix('_cmd')} instead"
    try:
        process = subprocess.Popen(
            command,
            shell=True,
            # The command must not eat an image piped to nanoedit; it gets no stdin.
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own process group, so a timeout can stop everything it started.
            start_new_session=True,
        )
    except OSError as exc:
        raise ConfigError(
            f"{key_name} could not be started ({exc.strerror or exc}); check it, {instead}"
        ) from None
    with process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(process)
            # Something it started may have left the group and hold the pipes: do not wait.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.communicate(timeout=2)
            raise ConfigError(
                f"{key_name} did not finish within {timeout:g} s and was stopped; make sure it "
                f"does not wait for input (it gets none), {instead}"
            ) from None
    try:
        output: str | None = out.decode("utf-8").strip()
    except UnicodeDecodeError:
        output = None
    key = output.splitlines()[0].strip() if output else ""
    why = _last_line(err.decode("utf-8", errors="replace"))
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


@dataclass(frozen=True)
class UploadSettings:
    """How local files reach an API that takes URLs only (``nanoedit.uploads``): ``via``
    names the uploader (None: none is chosen), ``options`` the ``upload.*`` keys' values."""

    via: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    def option(self, key: str) -> str:
        """The value of the upload key ``key`` (empty when unset)."""
        return dict(self.options).get(key, "")


@dataclass(frozen=True)
class Flags:
    """The command-line values that override the environment and the file."""

    backend: str | None = None
    ratio: str | None = None
    size: str | None = None
    out_dir: str | None = None
    sandbox: bool = False
    proxy: str | None = None
    timeout: float | None = None
    retries: int | None = None


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
    upload: UploadSettings = UploadSettings()

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


def _flag(option: str, value: float | str | None, check: Callable[[str], str]) -> str | None:
    """A flag's value checked like the key it overrides; a bad one is a usage error."""
    if value is None:
        return None
    try:
        return check(str(value))
    except UsageError as exc:
        raise UsageError(f"{option}: {exc.message}") from None


def _backend_settings(
    backend: type[BackendBase], get: Callable[[str], str | None], sandbox: bool
) -> BackendSettings:
    """One backend's settings; in the sandbox every backend talks to the emulated server."""
    name = backend.name
    options = tuple((short, get(f"{name}.{short}") or "") for short in backend.extra_keys)
    model = get(f"{name}.model") or backend.default_model
    if sandbox:
        from nanoedit.sandbox import SANDBOX_BASE_URL, SANDBOX_KEY

        # At the path its real server has: an API may live under a folder of its host.
        path = urlsplit(backend.default_base_url or "").path.rstrip("/")
        url = SANDBOX_BASE_URL + path
        return BackendSettings(name, url, SANDBOX_KEY, model, options=options)
    return BackendSettings(
        name,
        get(f"{name}.base_url"),
        get(f"{name}.api_key"),
        model,
        api_key_cmd=get(f"{name}.api_key_cmd"),
        options=options,
    )


def load_settings(env: Mapping[str, str], flags: Flags) -> Settings:
    """Merge file, environment and flags into one :class:`Settings`.

    Key commands are not run here; :meth:`BackendSettings.key` runs them when needed.
    """
    sandbox = flags.sandbox or env.get(SANDBOX_ENV, "").strip().lower() in ("1", "true", "yes")
    path = config_path(env)
    file_values = read_file(path)

    def get(key: str, flag: str | None = None) -> str | None:
        return resolve_key(key, file_values, env, flag).value

    from nanoedit.backends import backend_classes

    backends = {
        backend.name: _backend_settings(backend, get, sandbox) for backend in backend_classes()
    }
    backend = flags.backend or get("default.backend") or "auto"
    if backend != "auto" and backend not in backends:
        choices = ", ".join(("auto", *backends))
        raise UsageError(f"invalid backend {backend!r}; use one of: {choices}")
    ratio = normalize_ratio(flags.ratio) if flags.ratio else (get("default.ratio") or "auto")
    size = normalize_size(flags.size) if flags.size else (get("default.size") or None)
    out_dir = Path(flags.out_dir or get("default.out_dir") or ".").expanduser()
    # Flags are checked here too: the CLI's own limits are not the only caller's.
    proxy = get("network.proxy", _flag("--proxy", flags.proxy, _check_proxy))
    timeout = get("network.timeout", _flag("--timeout", flags.timeout, _check_timeout)) or "900"
    retries = get("network.retries", _flag("--retries", flags.retries, _check_count)) or "3"
    warning = permission_warning(path)
    from nanoedit.uploads import upload_keys

    upload = UploadSettings(
        get("upload.via"),
        tuple((key, get(key) or "") for key in upload_keys() if key != "upload.via"),
    )
    return Settings(
        backends=backends,
        backend=backend,
        out_dir=out_dir,
        ratio=ratio,
        size=size,
        sandbox=sandbox,
        proxy=proxy,
        timeout=float(timeout),
        retries=int(retries),
        backoff=float(get("network.backoff") or "1"),
        warnings=(warning,) if warning else (),
        upload=upload,
    )
