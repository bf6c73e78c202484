"""Settings as a run holds them, resolved and frozen: a run's :class:`Settings`, each backend's
(built when first asked for) and the uploader's, and where one value came from. Every layer
above reads these types.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nanoedit.catalog.models import Catalog, shipped_catalog
from nanoedit.errors import ConfigError
from nanoedit.settings.keys import spec_for
from nanoedit.settings.secrets import KeyCache, run_key_command


@dataclass(frozen=True)
class Resolved:
    """A setting's value and where it came from (``flag``, ``env``, ``file``, ``default``);
    ``env_name`` is the variable that gave it."""

    value: str | None
    source: str
    env_name: str | None = None


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
    _key_cache: KeyCache = field(default_factory=KeyCache, init=False, repr=False, compare=False)

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


class BackendsByName(Mapping[str, BackendSettings]):
    """Every registered backend's settings by name, in registry order, each built when first
    asked for and then kept: building one imports that backend's module, and a run imports
    only the backends it reads. Iterating the values builds them all."""

    def __init__(self, names: tuple[str, ...], build: Callable[[str], BackendSettings]) -> None:
        self._names = names
        self._build = build
        self._built: dict[str, BackendSettings] = {}
        # Jobs run on threads: one backend's settings (and its key command's cache) are one.
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> BackendSettings:
        if name not in self._names:
            raise KeyError(name)
        with self._lock:
            found = self._built.get(name)
            if found is None:
                found = self._built[name] = self._build(name)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"BackendsByName({self._names!r}, built={tuple(self._built)!r})"


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
    """Every registered backend's settings, in registry order (:class:`BackendsByName`: each
    built when first read)."""
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
