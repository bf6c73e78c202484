"""Settings from the config file, the environment and the flags, merged in that order of
weight into one :class:`~nanoedit.settings.values.Settings`, with what the user should hear
about them (a key sent in the clear, a URL's password, a key variable that loses to another).

Key commands are not run here: a backend's settings run theirs when a request needs the key.
A backend's settings are built (its module imported) when first read, except the one the run
names, or with ``auto`` those up to the first configured, built here: their errors come first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nanoedit.backends.registry import backend_names, load
from nanoedit.catalog.models import Catalog, deep_merge, load_catalog, shipped_catalog
from nanoedit.errors import ConfigError, UsageError
from nanoedit.jobs import RunOptions
from nanoedit.settings.checks import check_bool, number_text
from nanoedit.settings.keys import (
    BackendClass,
    KeySpec,
    base_url_spec,
    is_known_key,
    spec_for,
    upload_keys,
)
from nanoedit.settings.store import (
    MODELS,
    config_path,
    flat_values,
    permission_warning,
    read_document,
    unknown_keys_warning,
)
from nanoedit.settings.values import (
    BackendsByName,
    BackendSettings,
    Resolved,
    Settings,
    UploadSettings,
)
from nanoedit.urls import redact_userinfo, without_userinfo

SANDBOX_ENV = "NANOEDIT_SANDBOX"


def resolve_key(
    key: str, file_values: Mapping[str, str], env: Mapping[str, str], flag: str | None = None
) -> Resolved:
    """One key by precedence: flag, then environment, then file, then default."""
    return _resolve(key, spec_for(key), file_values, env, flag)


def _resolve(
    key: str,
    spec: KeySpec,
    file_values: Mapping[str, str],
    env: Mapping[str, str],
    flag: str | None = None,
) -> Resolved:
    """``key`` by precedence, read by ``spec``."""
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
    backend: BackendClass,
    resolve: Callable[[str], Resolved],
    sandbox: bool,
    env: Mapping[str, str],
    flags: Mapping[str, str] | None = None,
) -> BackendSettings:
    """One backend's settings; in the sandbox every backend talks to the emulated server.
    ``flags`` are the run's flags that override a backend's own key of that short name, for
    each backend that has it (``--no-store``: ``store`` false)."""
    name = backend.name
    flagged = {
        short: value for short, value in (flags or {}).items() if short in backend.extra_keys
    }

    def get(key: str) -> str | None:
        if key in flagged:
            return flagged[key]
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


def _build_first(backends: Mapping[str, BackendSettings], chosen: str) -> None:
    """Build now the backend settings a run reads first (the backend chosen, or with ``auto``
    those up to the first configured): what is wrong with them is a config error said before
    anything else, as it was when every backend's were built here, not a job's error."""
    for name in backends if chosen == "auto" else (chosen,):
        if backends[name].configured:
            return


def _given_base_url(
    name: str, file_values: Mapping[str, str], env: Mapping[str, str]
) -> str | None:
    """A backend's base URL as its variable or the file gives it, checked; None when neither
    does (it is then its class's default)."""
    return _resolve(f"{name}.base_url", base_url_spec(name), file_values, env).value


class _BaseUrls(Mapping[str, str | None]):
    """Each backend's base URL, read from its settings when asked for (the live cache asks
    only for the backends it holds)."""

    def __init__(self, backends: Mapping[str, BackendSettings]) -> None:
        self._backends = backends

    def __getitem__(self, name: str) -> str | None:
        return self._backends[name].base_url

    def __iter__(self) -> Iterator[str]:
        return iter(self._backends)

    def __len__(self) -> int:
        return len(self._backends)


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

    def resolve(key: str) -> Resolved:
        return resolve_key(key, file_values, env)

    # The run's flags that override a backend's own key, where a backend has it.
    flags = {} if options.store else {"store": "false"}
    backends = BackendsByName(
        backend_names(),
        lambda name: _backend_settings(load(name), resolve, sandbox, env, flags),
    )
    # Every backend's base URL is checked and warned of (a default one holds no user name):
    # its variable and check come from the name, without importing the backend.
    warnings += [
        userinfo_warning(name, None if sandbox else _given_base_url(name, file_values, env))
        for name in backends
    ]
    if document is not None and live_cache:
        catalog, warning = with_live_cache(catalog, document, env, _BaseUrls(backends))
        warnings.append(warning)
    backend = get("default.backend", _flag("--backend", options.backend, "default.backend"))
    _build_first(backends, backend or "auto")
    ratio = get("default.ratio", _flag("--ratio", ratio, "default.ratio"))
    size = get("default.size", _flag("--size", size or None, "default.size"))
    out_dir = Path(options.out_dir or get("default.out_dir") or ".").expanduser()
    # Flags are checked here too: the CLI's own limits are not the only caller's.
    proxy = get("network.proxy", _flag("--proxy", options.proxy, "network.proxy"))
    timeout = get("network.timeout", _flag("--timeout", options.timeout, "network.timeout"))
    retries = get("network.retries", _flag("--retries", options.retries, "network.retries"))
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
    return load_catalog(overrides, backends=backend_names())


def with_live_cache(
    catalog: Catalog,
    document: Mapping[str, Any],
    env: Mapping[str, str],
    base_urls: Mapping[str, str | None],
) -> tuple[Catalog, str | None]:
    """``catalog`` (the file's) with the ratios and sizes ``nanoedit models --live`` last read
    laid under the file's own corrections (see :mod:`nanoedit.catalog.livecache`), and a
    warning when that cache cannot be read."""
    from nanoedit.datadir import LIVE_CACHE_NAME, data_dir

    if not (data_dir(env) / LIVE_CACHE_NAME).exists():
        return catalog, None  # never read: the module that reads it is not even loaded
    from nanoedit.catalog.livecache import cached_corrections

    user = document.get(MODELS) or {}
    corrections, warning = cached_corrections(env, catalog, user, base_urls)
    if not corrections:
        return catalog, warning
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
