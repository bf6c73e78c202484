"""``nanoedit models --live``: what each configured backend serves today, against the catalog.

Each backend is asked through its provider's listing endpoints, which are free: no image is
made and nothing is paid (each backend's ``list_models`` says which):

- gemini: every page of ``GET /v1beta/models`` ([P] ``pageSize`` up to 1000, ``pageToken``
  from ``nextPageToken`` until there is none), kept to Gemini image models. [P] Google's Model
  resource says nothing of a model's outputs, only its ``supportedGenerationMethods``; so
  [I] an image model is one that does ``generateContent`` and whose name says image
  (``...-image``, ``...nano-banana...``), as Google names every one of them ([P] its model
  pages). Text models, embeddings and Imagen (which predicts) are left out.
- openrouter: ``GET /api/v1/models?output_modalities=image`` ([P] the Models API's filter),
  kept to Google's (``google/...``) [I], as the catalog is of Google's models.
- replicate: ``GET /v1/models/google/NAME`` for each catalog model, whose latest version's
  OpenAPI schema gives the enums of ``aspect_ratio``, ``resolution`` and ``output_format``
  ([P] the HTTP API; enums behind ``allOf``/``$ref``, as Cog writes them). Models Replicate
  adds are not seen: its list is of every public model.
- fal: the platform API's model search, ``GET https://api.fal.ai/v1/models?endpoint_id=APP
  &expand=openapi-3.0`` ([P] its reference: the key optional, up to 50 ids), for each catalog
  app and its edit app; the schema gives the same enums. Apps fal adds are not seen.
- openai (a gateway): ``GET /v1/models``. Its names are its own, so only the catalog's ids for
  it are looked for.
- duomi: no listing endpoint; not checked.

The answer is compared with the catalog as shipped, with the config file's corrections (not
with the cache this command writes, so a difference keeps showing until the catalog or the
config file says what the provider says). A difference is one of:

- ``added``: an image model the provider lists that the catalog does not know (where the
  listing is the whole lineup and the ids are not a gateway's own);
- ``dropped``: an id the catalog sells on the backend, of a model not shut down, that the
  provider no longer lists;
- ``ratios``, ``sizes``: the values a model's schema allows differ from the catalog's;
- ``formats``: the schema's ``output_format`` no longer has the format nanoedit asks for.

The ratios and sizes read are cached in the data folder (``models-live.json``, beside the
journal) with the time they were read and the base URL they were read from. A later run lays
them over the catalog, under the config file's own corrections, when they are at least as new
as the shipped catalog (``as_of`` in ``models.toml``) and the backend's base URL is the same:
so a ratio a provider's schema has listed since the release is accepted at plan time, and one
it dropped is refused before anything is paid for.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanoedit.catalog.livecache import CACHE_VERSION, catalog_ids, read_cache
from nanoedit.catalog.models import Catalog, Model
from nanoedit.errors import ConfigError, ExitCode, NanoeditError

if TYPE_CHECKING:
    import httpx

    from nanoedit.backends.base import BackendBase, LiveModel
    from nanoedit.settings.values import BackendSettings, Settings

# The kinds of difference.
ADDED, DROPPED, RATIOS_CHANGED, SIZES_CHANGED, FORMATS_CHANGED = (
    "added",
    "dropped",
    "ratios",
    "sizes",
    "formats",
)
# A backend's outcome, beside config check's statuses (not configured, key rejected...).
NO_DRIFT, DRIFT, NOT_CHECKED = "no drift", "drift", "not checked"


@dataclass(frozen=True)
class Difference:
    """One way a provider's lineup differs from the catalog."""

    change: str
    id: str
    """The backend's id of the model."""
    model: Model | None = None
    """The catalog's model behind it (None for one the catalog does not know)."""
    catalog: tuple[str, ...] = ()
    live: tuple[str, ...] = ()

    def describe(self) -> str:
        """The difference in words, for the table."""
        if self.change == ADDED:
            return "listed by the provider, not in the catalog"
        name = f"{self.model.name} ({self.model.id})" if self.model else self.id
        if self.change == DROPPED:
            return f"{name} in the catalog, no longer listed by the provider"
        if self.change == FORMATS_CHANGED:
            listed, asked = ", ".join(self.live), ", ".join(self.catalog)
            return f"the schema's output_format is {listed}; nanoedit asks for {asked}"
        more = [value for value in self.live if value not in self.catalog]
        fewer = [value for value in self.catalog if value not in self.live]
        parts = []
        if more:
            parts.append(f"the provider also lists {', '.join(more)}")
        if fewer:
            parts.append(f"the provider no longer lists {', '.join(fewer)}")
        return "; ".join(parts)

    def as_json(self) -> dict[str, Any]:
        """The difference as a ``--json`` object."""
        return {
            "change": self.change,
            "id": self.id,
            "model": self.model.id if self.model else None,
            "catalog": list(self.catalog),
            "live": list(self.live),
        }


@dataclass(frozen=True)
class LiveResult:
    """How one backend fared: ``status`` is ``no drift``, ``drift``, ``not checked``, or a
    ``config check`` status (not configured, key rejected, unreachable, error, no key)."""

    backend: str
    status: str
    detail: str
    requests: int = 0
    models: tuple[LiveModel, ...] = ()
    differences: tuple[Difference, ...] = ()
    base_url: str | None = None

    @property
    def checked(self) -> bool:
        """Whether the provider answered its listing (with or without drift)."""
        return self.status in (NO_DRIFT, DRIFT)

    @property
    def exit_code(self) -> ExitCode:
        """The exit code this result alone would give."""
        from nanoedit.run.check import EXIT_CODES

        if self.status == DRIFT:
            return ExitCode.DRIFT
        return EXIT_CODES.get(self.status, ExitCode.OK)

    def lines(self, width: int) -> list[str]:
        """The backend's line of the table, then one line per difference."""
        lines = [f"{self.backend:<{width}}  {self.status}  ({self.detail})"]
        id_width = max((len(found.id) for found in self.differences), default=0)
        lines += [
            f"  {found.change:<7}  {found.id:<{id_width}}  {found.describe()}"
            for found in self.differences
        ]
        return lines

    def as_json(self) -> dict[str, Any]:
        """The result as a ``--json`` object."""
        return {
            "backend": self.backend,
            "status": self.status,
            "detail": self.detail,
            "requests": self.requests,
            "listed": [model.id for model in self.models],
            "differences": [found.as_json() for found in self.differences],
        }


class _Failed(Exception):
    """A listing request that did not get its answer: the status and detail to report."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _Getter:
    """The listing's GETs for one backend: counted, each within the check's time limit, and
    judged as ``config check`` judges its probe when the answer is not the listing."""

    def __init__(
        self,
        client: httpx.Client,
        settings: BackendSettings,
        key: str,
        *,
        timeout: float,
        proxy: str | None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.key = key
        self.timeout = timeout
        self.proxy = proxy
        self.requests = 0

    def __call__(self, url: str, headers: Mapping[str, str], *, missing_ok: bool = False) -> Any:
        import httpx

        from nanoedit.backends.base import (
            FAILED,
            READY,
            UNREACHABLE,
            Probe,
            backend_class,
            parse_json,
        )
        from nanoedit.run.check import unreachable_detail
        from nanoedit.urls import host_of

        probe = Probe(url, self.key, host_of(url), headers)
        self.requests += 1
        try:
            response = self.client.get(url, headers=dict(headers), timeout=self.timeout)
        except httpx.TransportError as exc:
            raise _Failed(UNREACHABLE, unreachable_detail(exc, probe, self.proxy)) from None
        except httpx.HTTPError as exc:
            detail = f"the request to {probe.where} failed ({type(exc).__name__})"
            raise _Failed(FAILED, detail) from None
        status = response.status_code
        if missing_ok and status == 404:
            return None
        body = parse_json(response)
        if 200 <= status < 300 and body is not None:
            return body
        verdict = backend_class(self.settings.name).judge(response, probe, self.settings)
        if verdict.status == READY:  # an answer the probe's judge takes, but no listing
            raise _Failed(FAILED, f"{probe.where} answered HTTP {status} with no model list")
        raise _Failed(verdict.status, verdict.detail)


def differences(
    backend: type[BackendBase],
    models: Sequence[LiveModel],
    catalog: Catalog,
) -> tuple[Difference, ...]:
    """How what ``backend``'s provider listed differs from the catalog: new models first, in
    the provider's order, then the catalog's models in its order."""
    sold = catalog_ids(catalog, backend.name)
    listed = {model.id: model for model in models}
    found: list[Difference] = []
    if backend.lists_all and not backend.free_ids:
        known = {
            name
            for model in catalog.models.values()
            if (offer := model.offers.get(backend.name))
            for name in (offer.id, offer.edit)
            if name
        }
        found += [Difference(ADDED, model.id) for model in models if model.id not in known]
    for sold_id, (model, offer) in sold.items():
        live = listed.get(sold_id)
        if live is None:
            found.append(Difference(DROPPED, sold_id, model))
            continue
        limits = offer.limits
        if live.ratios is not None and set(live.ratios) != set(limits.ratios):
            found.append(Difference(RATIOS_CHANGED, sold_id, model, limits.ratios, live.ratios))
        if live.sizes is not None and offer.size_field and set(live.sizes) != set(limits.sizes):
            found.append(Difference(SIZES_CHANGED, sold_id, model, limits.sizes, live.sizes))
        sent = backend.output_format
        if live.formats is not None and sent is not None and sent not in live.formats:
            found.append(Difference(FORMATS_CHANGED, sold_id, model, (sent,), live.formats))
    return tuple(found)


def _summary(backend: type[BackendBase], models: Sequence[LiveModel], asked: int) -> str:
    """What was learned, for the backend's line."""
    if not backend.lists_all:
        return f"{len(models)} of the catalog's {asked} ids found, each asked for by name"
    if backend.free_ids:
        return f"{len(models)} models listed, under names of its own"
    return f"{len(models)} image models listed"


def check_backend(
    settings: BackendSettings,
    client: httpx.Client,
    catalog: Catalog,
    *,
    timeout: float,
    proxy: str | None = None,
) -> LiveResult:
    """Ask one backend what it serves today (no request when it is not configured or has no
    listing endpoint), and compare it with the catalog."""
    from nanoedit.backends.base import FAILED, NO_KEY, backend_class
    from nanoedit.run.check import not_configured

    name = settings.name
    backend = backend_class(name)
    if not settings.configured or settings.base_url is None:
        skipped = not_configured(settings)
        return LiveResult(name, skipped.status, skipped.detail)
    if backend.lists_all is None:
        return LiveResult(name, NOT_CHECKED, f"the {name} API has no listing endpoint")
    try:
        key = settings.key()
    except ConfigError as exc:
        return LiveResult(name, NO_KEY, exc.message)
    sold = catalog_ids(catalog, name)
    get = _Getter(client, settings, key, timeout=timeout, proxy=proxy)
    try:
        models = backend.list_models(settings.base_url, key, tuple(sold), get)
    except _Failed as failed:
        return LiveResult(name, failed.status, failed.detail, get.requests)
    except NanoeditError as exc:
        return LiveResult(name, FAILED, exc.message, get.requests)
    found = differences(backend, models, catalog)
    requests = "1 request" if get.requests == 1 else f"{get.requests} requests"
    detail = f"{_summary(backend, models, len(sold))}; {requests}"
    status = DRIFT if found else NO_DRIFT
    return LiveResult(name, status, detail, get.requests, tuple(models), found, settings.base_url)


def check_backends(
    settings: Settings,
    client: httpx.Client,
    catalog: Catalog,
    names: Iterable[str],
    *,
    timeout: float,
) -> list[LiveResult]:
    """Check the backends ``names``, in that order."""
    return [
        check_backend(
            settings.backend_settings(name), client, catalog, timeout=timeout, proxy=settings.proxy
        )
        for name in names
    ]


def live_exit_code(results: Sequence[LiveResult]) -> ExitCode:
    """3 when no backend is configured; else the code of the worst failure, as ``config
    check`` ranks them (3 a key, 5 a wrong answer, 6 unreachable); else 9 for drift; else 0."""
    from nanoedit.backends.base import NOT_CONFIGURED
    from nanoedit.run.check import EXIT_PRIORITY

    if all(result.status == NOT_CONFIGURED for result in results):
        return ExitCode.CONFIG
    codes = {result.exit_code for result in results}
    return next((code for code in (*EXIT_PRIORITY, ExitCode.DRIFT) if code in codes), ExitCode.OK)


# ---- writing the cache (nanoedit.catalog.livecache reads it) ----------------------------------


def _entry(result: LiveResult, now: dt.datetime) -> dict[str, Any]:
    models = {
        model.id: {
            name: list(values)
            for name, values in (("ratios", model.ratios), ("sizes", model.sizes))
            if values is not None
        }
        for model in result.models
        if model.ratios is not None or model.sizes is not None
    }
    return {"checked": now.isoformat(timespec="seconds"), "base_url": result.base_url,
            "models": models}  # fmt: skip


def write_cache(path: Path, results: Sequence[LiveResult], now: dt.datetime) -> bool:
    """Keep what the backends checked now said (the others' earlier answers stay); False when
    nothing was checked, so nothing was written. An OSError when it cannot be written."""
    checked = [result for result in results if result.checked]
    if not checked:
        return False
    from nanoedit.output.parts import write_atomic

    backends = dict(read_cache(path)[0].get("backends", {}))
    backends |= {result.backend: _entry(result, now) for result in checked}
    document = {"version": CACHE_VERSION, "backends": backends}
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    write_atomic(path, data, overwrite=True)
    return True


@dataclass(frozen=True)
class LiveReport:
    """A whole ``models --live`` run, for ``--json``."""

    results: tuple[LiveResult, ...]
    exit_code: ExitCode
    cache: Path | None = None
    """Where what was read is kept (None: nothing was)."""

    def as_json(self) -> dict[str, Any]:
        """The run as one JSON object."""
        return {
            "ok": self.exit_code == ExitCode.OK,
            "exit_code": int(self.exit_code),
            "requests": sum(result.requests for result in self.results),
            "cache": None if self.cache is None else str(self.cache),
            "backends": [result.as_json() for result in self.results],
        }
