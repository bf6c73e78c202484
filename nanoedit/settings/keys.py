"""Config keys: what each is (:class:`KeySpec`), the core's, each backend's and the uploader's,
and the lookups over them. Every other part of settings starts from a key's spec. A backend's
keys are built from its class when first asked for: a key resolves through its section alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from nanoedit.backends.registry import backend_names, load
from nanoedit.errors import UsageError
from nanoedit.jobs import RATIOS, normalize_ratio
from nanoedit.settings.checks import (
    MAX_RETRIES,
    as_is,
    check_bool,
    check_choice,
    check_positive_seconds,
    check_proxy,
    check_retries,
    check_seconds_or_zero,
    check_size,
    check_text,
    check_timeout,
    check_url,
    check_viewer,
)
from nanoedit.urls import redact_userinfo

Value = str | int | float
"""A setting as the config file holds it."""


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
    check: Callable[[str], str] = check_text
    toml_type: type[str] | type[int] | type[float] = str
    shown: Callable[[str], str] = as_is
    env_aliases: tuple[str, ...] = ()

    def stored(self, value: str) -> Value:
        """The value checked, as the config file is to hold it (raises :class:`UsageError`)."""
        return self.toml_type(self.check(value))


class BackendClass(Protocol):
    """What settings read of a backend's class (loaded through :mod:`nanoedit.backends.registry`):
    enough to list its keys and resolve them, without settings importing a backend."""

    @property
    def name(self) -> str:
        """The backend's name, as ``--backend`` and its keys' section spell it."""

    @property
    def title(self) -> str:
        """What it is, for help texts."""

    @property
    def key_env(self) -> tuple[str, ...]:
        """The provider's own variables for the key."""

    @property
    def default_base_url(self) -> str | None:
        """Its server, unless told another."""

    @property
    def default_model(self) -> str:
        """The model it uses unless told another."""

    @property
    def extra_keys(self) -> Mapping[str, KeySpec]:
        """Its own config keys beyond the four every backend has, by short name."""


def _check_backend(value: str) -> str:
    return check_choice(("auto", *backend_names()))(value)


COMMON_KEYS = ("base_url", "api_key", "api_key_cmd", "model")
"""The keys every backend has, by short name: known from the backend's name alone."""


def backend_env(name: str, short: str) -> str:
    """The variable of a backend's key ``short`` (``NANOEDIT_GEMINI_BASE_URL``): names alone."""
    return f"NANOEDIT_{name.upper()}_{short.upper()}"


def base_url_spec(name: str, help: str = "", default: str | None = None) -> KeySpec:
    """A backend's ``base_url`` key; what its class adds (help, default) is given, so that its
    variable and its check are had without importing the backend."""
    return KeySpec(
        backend_env(name, "base_url"), help, default, check=check_url, shown=redact_userinfo
    )


def backend_keys(backend: BackendClass) -> dict[str, KeySpec]:
    """The config keys a backend owns: the four every backend has, then its own."""
    name, title = backend.name, backend.title
    keys = {
        f"{name}.base_url": base_url_spec(name, f"{title}: server URL", backend.default_base_url),
        f"{name}.api_key": KeySpec(
            backend_env(name, "api_key"), f"{title}: API key", secret=True,
            env_aliases=backend.key_env,
        ),
        f"{name}.api_key_cmd": KeySpec(
            backend_env(name, "api_key_cmd"),
            f"{title}: shell command that prints the API key (when {name}.api_key is unset)",
        ),
        f"{name}.model": KeySpec(
            backend_env(name, "model"), f"{title}: model", backend.default_model
        ),
    }  # fmt: skip
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
    "default.size": KeySpec("NANOEDIT_SIZE", "image size: 1K, 2K or 4K", check=check_size),
    "preview.protocol": KeySpec(
        "NANOEDIT_PREVIEW_PROTOCOL",
        "how --preview draws: auto, kitty, iterm, sixel, halfblocks or none", "auto",
        check=check_choice(("auto", "kitty", "iterm", "sixel", "halfblocks", "none")),
    ),
    "preview.open_command": KeySpec(
        "NANOEDIT_OPEN_COMMAND",
        "viewer --open starts with each image's path (default: the system's own)",
        check=check_viewer,
    ),
    "history.enabled": KeySpec(
        "NANOEDIT_HISTORY",
        "keep the job journal (prompts, task ids, results) for resume and history: true or false",
        "true", check=check_bool,
    ),
    # No default: without it httpx follows HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY.
    "network.proxy": KeySpec(
        "NANOEDIT_PROXY", "proxy for every request: http://, https:// or socks5://host:port",
        check=check_proxy, shown=redact_userinfo,
    ),
    "network.timeout": KeySpec(
        "NANOEDIT_TIMEOUT", "seconds one job may take in all, retries and polls included",
        "900", check=check_timeout, toml_type=float,
    ),
    "network.retries": KeySpec(
        "NANOEDIT_RETRIES", f"times a failed request is sent again, 0 (never) to {MAX_RETRIES}",
        "3", check=check_retries, toml_type=int,
    ),
    "network.backoff": KeySpec(
        "NANOEDIT_BACKOFF", "seconds before the first retry (doubles each time)", "1",
        check=check_seconds_or_zero, toml_type=float,
    ),
}  # fmt: skip

UPLOAD_TIMEOUT = "120"
"""Seconds an upload command may take unless ``upload.timeout`` says otherwise."""


def _check_upload_command(value: str) -> str:
    cleaned = value.strip()
    if not any(word in cleaned for word in ("$1", "${1", "$@", "$*")):
        raise UsageError(
            f"the command {cleaned!r} does not use the file it is given as $1; write it as, "
            'for example: my-upload "$1"'
        )
    return cleaned


# "upload.via" value -> that uploader's own keys, in the order help lists them. The uploaders
# themselves (nanoedit.net.uploads) are a layer above: a new one adds its keys here.
UPLOADER_KEYS: dict[str, dict[str, KeySpec]] = {
    "command": {
        "upload.command": KeySpec(
            "NANOEDIT_UPLOAD_COMMAND",
            'shell command that puts the local file "$1" on the web and prints its public URL',
            check=_check_upload_command,
        ),
        "upload.timeout": KeySpec(
            "NANOEDIT_UPLOAD_TIMEOUT", "seconds one upload command may take",
            UPLOAD_TIMEOUT, check=check_positive_seconds(UPLOAD_TIMEOUT),
        ),
    },
}  # fmt: skip


def upload_keys() -> dict[str, KeySpec]:
    """The config keys of uploads: ``upload.via``, then each uploader's own."""
    keys = {
        "upload.via": KeySpec(
            "NANOEDIT_UPLOAD_VIA",
            "how local files reach an API that takes URLs only: " + ", ".join(UPLOADER_KEYS),
            check=check_choice(tuple(UPLOADER_KEYS)),
        )
    }
    for own in UPLOADER_KEYS.values():
        keys |= own
    return keys


def backend_section(key: str) -> str | None:
    """The backend whose section holds ``key`` (``gemini`` for ``gemini.base_url``); None for
    a key of any other section."""
    section, dot, _ = key.partition(".")
    return section if dot and section in backend_names() else None


@cache
def section_keys(name: str) -> dict[str, KeySpec]:
    """The keys of the backend ``name``'s section: its module is imported now, no other."""
    return backend_keys(load(name))


@cache
def general_keys() -> dict[str, KeySpec]:
    """The keys of no backend: the core's, with the uploader's before the network's, which
    close the list."""
    core = list(CORE_KEYS.items())
    split = next(n for n, (key, _) in enumerate(core) if key.startswith("network."))
    return dict(core[:split]) | upload_keys() | dict(core[split:])


@cache
def all_keys() -> dict[str, KeySpec]:
    """Every config key: each registered backend's (every backend's module imported), then
    the others."""
    keys: dict[str, KeySpec] = {}
    for name in backend_names():
        keys |= section_keys(name)
    return keys | general_keys()


def _listed_spec(key: str) -> KeySpec | None:
    """The spec of a listed key, looked up in its own section: a backend's key loads that
    backend alone."""
    section = backend_section(key)
    if section is not None:
        return section_keys(section).get(key)
    return general_keys().get(key)


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


def did_you_mean(key: str) -> str:
    """``did you mean KEY?`` for a mistyped key, naming :func:`closest_keys`; empty when no
    known key is close."""
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
    """Whether nanoedit knows ``key``: a listed key, or a well-formed pricing key. The keys
    every backend has are known by the backend's name, without importing it."""
    if backend_section(key) is not None and key.partition(".")[2] in COMMON_KEYS:
        return True
    if _listed_spec(key) is not None:
        return True
    try:
        return price_spec(key) is not None
    except UsageError:
        return False


def spec_for(key: str) -> KeySpec:
    """The spec of a key, or a usage error that lists the known keys."""
    spec = _listed_spec(key) or price_spec(key)
    if spec is not None:
        return spec
    hint = did_you_mean(key)
    known = ", ".join(all_keys())
    raise UsageError(f"unknown config key {key!r}; {hint + ' ' if hint else ''}known keys: {known}")
