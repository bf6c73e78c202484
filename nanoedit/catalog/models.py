"""The model catalog: every model nanoedit knows, each backend's id for it, what it renders,
what it costs and when it is shut down.

The facts are data (``models.toml`` beside this module), because the lineup moves every month;
the user's config file can correct or add entries under the same keys (``[models."ID"]``),
which take effect without a release. Code reads the catalog and never spells a model id.

A name given with ``--model`` is resolved per backend, in this order:

1. an alias names a family (``nano-banana-pro``), or for ``nano-banana`` the flash tier: the
   newest model of it that the backend sells and that is not shut down, GA before preview;
2. the backend's own id for a model (``fal-ai/nano-banana-pro``, duomi's
   ``gemini-3-pro-image-preview``) is that model, sent as given;
3. Google's id of a model is that model, sent as the backend names it (``gemini-3-pro-image``
   goes to fal as ``fal-ai/nano-banana-pro``);
4. anything else is an id nanoedit does not know, sent untouched and unchecked.

An id that resolves to a model is never swapped for another: a shut-down one is refused.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from types import MappingProxyType
from typing import Any, NamedTuple

from nanoedit.backends.registry import shared_offers
from nanoedit.catalog.dials import (
    NO_BACKEND_DIALS,
    BackendDials,
    DialSupport,
    dial_names,
    for_unknown_id,
    load_dials,
    support,
    values,
)
from nanoedit.errors import ConfigError, UsageError

FLASH_ALIAS = "nano-banana"
"""The alias of the flash tier as a whole: the newest GA flash model a backend sells."""
WARN_DAYS = 30
# The tables of output sizes a model may follow (nanoedit.catalog.pixels).
FLASH_25_TABLE = "gemini-2.5"
PIXEL_TABLES = (FLASH_25_TABLE, "gemini-3")
"""A model this many days or fewer from its shutdown draws a warning."""
SIZES_KNOWN: tuple[str, ...] = ("512", "1K", "2K", "4K")
NO_PRICES: Mapping[str, float] = MappingProxyType({})
# The catalog's values are named tuples, not dataclasses: frozen all the same, and a named
# tuple class costs a tenth of a frozen dataclass to create, which every run pays at start-up.


class ModelLimits(NamedTuple):
    """What one model accepts: images per request, sizes and ratios (``auto`` always)."""

    max_images: int
    sizes: tuple[str, ...]
    ratios: tuple[str, ...]


class Offer(NamedTuple):
    """How one backend sells a model: the id it is sent as, what that API lets it render, and
    the backend's own price per image by size (empty: it publishes none)."""

    backend: str
    id: str
    limits: ModelLimits
    edit: str | None = None
    """The id an edit is sent to when it differs (fal's ``…/edit`` apps)."""
    size_field: bool = True
    """False where the API has no size field for the model: it renders its default only."""
    prices: Mapping[str, float] = NO_PRICES
    batch_prices: Mapping[str, float] = NO_PRICES
    """The price per image by size through the backend's Batch API (``--tier batch``)."""
    tiers: Mapping[str, float] = NO_PRICES
    """The service tiers other than standard this API takes for the model, each with its price
    as a multiple of the standard one (``{ flex = 0.5 }``); empty: standard alone."""
    dials: tuple[str, ...] | None = None
    """The dials this model takes here, where they differ from its backend's (``[dials]``)."""
    dial_values: Mapping[str, tuple[str, ...]] = MappingProxyType({})
    """Its own ``formats`` or ``safety`` values, where they differ from its backend's."""


class Model(NamedTuple):
    """One model of the catalog, keyed by Google's id."""

    id: str
    name: str
    family: str
    tier: str
    status: str
    limits: ModelLimits
    pixels: str
    offers: Mapping[str, Offer]
    released: dt.date | None = None
    deprecated: dt.date | None = None
    shutdown: dt.date | None = None
    replacement: str | None = None
    thinking: tuple[str, ...] = ()
    search: bool = False
    prices: Mapping[str, float] = NO_PRICES
    """Google's list price per image, by size."""
    sources: str = ""

    def is_shut_down(self, today: dt.date) -> bool:
        """Whether the model's shutdown date has come."""
        return self.shutdown is not None and self.shutdown <= today

    def lifecycle(self) -> str:
        """``GA since 2026-05-28, deprecated 2026-10-06`` and so on, for tables and messages."""
        parts = [f"{'GA' if self.status == 'ga' else 'preview'}"]
        if self.released:
            parts[0] += f" since {self.released}"
        if self.deprecated:
            parts.append(f"deprecated {self.deprecated}")
        if self.shutdown:
            parts.append(f"shutdown {self.shutdown}")
        return ", ".join(parts)


class Resolved(NamedTuple):
    """What a model name means on one backend: the id sent, and the catalog's model and offer
    behind it (both None for an id the catalog does not know)."""

    asked: str
    sent: str
    model: Model | None = None
    offer: Offer | None = None

    @property
    def limits(self) -> ModelLimits | None:
        """What the model accepts on this backend; None when nanoedit cannot know."""
        return self.offer.limits if self.offer else None


class Catalog:
    """The models, with the lookups every part of nanoedit uses."""

    def __init__(
        self,
        models: Mapping[str, Model],
        today: dt.date | None = None,
        dials: Mapping[str, BackendDials] | None = None,
    ) -> None:
        self.models = dict(models)
        self.today = today or dt.date.today()
        self.dials = dict(dials or {})
        # The catalog does not change once made, and every job resolves its model a few
        # times (plan, price, size check, request): 20,000 jobs must not walk it each time.
        self._aliases = tuple(dict.fromkeys([FLASH_ALIAS, *(m.family for m in models.values())]))
        self._resolved: dict[tuple[str, str, bool], Resolved] = {}

    # ---- names -------------------------------------------------------------------------

    def aliases(self) -> tuple[str, ...]:
        """Every alias: ``nano-banana`` and each family's name, in catalog order."""
        return self._aliases

    def family_members(self, alias: str) -> list[Model]:
        """The models an alias may stand for, newest first (GA before preview)."""
        members = [
            model
            for model in self.models.values()
            if (model.tier == "flash" if alias == FLASH_ALIAS else model.family == alias)
        ]
        return sorted(members, key=_preference)

    def resolve(self, backend: str, name: str, *, free_ids: bool = False) -> Resolved:
        """What ``name`` means on ``backend`` (see the module's docstring). A usage error
        when ``name`` is an alias of which the backend sells no live model, or Google's id
        of a model the backend does not sell; on a gateway whose names are its own
        (``free_ids``) such an id is sent as given."""
        key = (backend, name, free_ids)
        resolved = self._resolved.get(key)
        if resolved is None:
            # A refusal is raised anew each time: only answers are kept.
            resolved = self._resolved[key] = self._resolve(backend, name, free_ids)
        return resolved

    def _resolve(self, backend: str, name: str, free_ids: bool) -> Resolved:
        if name in self._aliases:
            return self._resolve_alias(backend, name)
        by_offer = [
            model
            for model in self.models.values()
            if backend in model.offers
            and name in (model.offers[backend].id, model.offers[backend].edit)
        ]
        if by_offer:
            found = sorted(by_offer, key=lambda m: m.is_shut_down(self.today))[0]
            return Resolved(name, found.offers[backend].id, found, found.offers[backend])
        model = self.models.get(name)
        if model is None:
            return Resolved(name, name)
        offer = model.offers.get(backend)
        if offer is None and free_ids:
            return Resolved(name, name)
        if offer is None:
            if model.is_shut_down(self.today):
                raise self.shut_down_error(model, name, backend)
            raise UsageError(
                f"{name} ({model.name}) is not sold on the {backend} backend as far as the "
                f"catalog knows; {self._where_sold(model)}"
            )
        return Resolved(name, offer.id, model, offer)

    def _resolve_alias(self, backend: str, alias: str) -> Resolved:
        members = self.family_members(alias)
        for model in members:
            offer = model.offers.get(backend)
            if offer is not None and not model.is_shut_down(self.today):
                return Resolved(alias, offer.id, model, offer)
        live = [model for model in members if not model.is_shut_down(self.today)]
        where = self._where_sold(live[0]) if live else "every model of it is shut down"
        raise UsageError(
            f"--model {alias}: the {backend} backend sells no model of that name that is not "
            f"shut down, as far as the catalog knows; {where}"
        )

    def _where_sold(self, model: Model) -> str:
        backends = ", ".join(model.offers) or "no backend"
        return (
            f"the catalog knows it on: {backends} (choose one with --backend, or see "
            f"nanoedit models); if a backend sells it now, add its id to the config file: "
            f'[models."{model.id}".on.BACKEND] id = "..."'
        )

    def names_that(self, backend: str, test: Callable[[ModelLimits], bool]) -> list[str]:
        """The live models on ``backend`` whose limits there pass ``test``, each by the name
        that reaches it: its family's alias, or its id where the alias means a newer model."""
        names: list[str] = []
        for model in self.models.values():
            offer = model.offers.get(backend)
            if offer is None or model.is_shut_down(self.today) or not test(offer.limits):
                continue
            name = model.family
            try:
                if self.resolve(backend, name).model is not model:
                    name = offer.id
            except UsageError:
                name = offer.id
            if name not in names:
                names.append(name)
        return names

    def dial_support(self, backend: str, resolved: Resolved) -> DialSupport:
        """The dials the model ``resolved`` names takes on ``backend`` (see
        :mod:`nanoedit.catalog.dials`)."""
        dials = self.dials.get(backend, NO_BACKEND_DIALS)
        model, offer = resolved.model, resolved.offer
        if model is None or offer is None:
            return for_unknown_id(dials, resolved.sent)
        return support(dials, offer.dials, model.thinking, model.search, offer.dial_values)

    # ---- lifecycle -----------------------------------------------------------------------

    def live(self, model: Model) -> Model | None:
        """The first model down ``model``'s chain of replacements that is not shut down."""
        seen = {model.id}
        current: Model | None = model
        while current is not None and current.is_shut_down(self.today):
            following = self.models.get(current.replacement or "")
            if following is None or following.id in seen:
                return None
            seen.add(following.id)
            current = following
        return current

    def shut_down_error(self, model: Model, asked: str, backend: str) -> UsageError:
        """The refusal of a shut-down model: its date and what replaces it."""
        instead = self.live(model)
        advice = "choose another model (nanoedit models)"
        if instead is not None:
            offer = instead.offers.get(backend)
            name = offer.id if offer else instead.id
            advice = f"use its replacement: --model {name} ({instead.name})"
        return UsageError(
            f"{asked} ({model.name}) was shut down on {model.shutdown}, so nothing was sent; "
            f"{advice}"
        )

    def check_alive(self, resolved: Resolved, backend: str) -> str | None:
        """Refuse a shut-down model; a warning when it is near its shutdown, else None."""
        model = resolved.model
        if model is None or model.shutdown is None:
            return None
        if model.is_shut_down(self.today):
            raise self.shut_down_error(model, resolved.asked, backend)
        days = (model.shutdown - self.today).days
        if days > WARN_DAYS:
            return None
        instead = self.models.get(model.replacement or "")
        then = f"; move to {instead.id} ({instead.name})" if instead else ""
        when = "tomorrow" if days == 1 else f"in {days} days"
        return f"{resolved.sent} ({model.name}) shuts down on {model.shutdown}, {when}{then}"

    # ---- prices --------------------------------------------------------------------------

    def price(
        self, backend: str, sent: str, size: str | None, tier: str = "standard"
    ) -> tuple[float, str, str] | None:
        """The price of one image of the model sent as ``sent`` on ``backend`` at ``size``
        (None: its default, 1K): (amount, Google's id, source), the source ``BACKEND`` for the
        backend's own published price and ``list`` for Google's; None when unknown. At the
        ``batch`` tier, the backend's ``batch_prices`` alone (``BACKEND batch``)."""
        resolved = self.resolve_quietly(backend, sent)
        model = resolved.model
        if model is None:
            return None
        size = size or "1K"
        offer = resolved.offer
        if tier == "batch":
            amount = offer.batch_prices.get(size) if offer is not None else None
            return None if amount is None else (amount, model.id, f"{backend} batch")
        if offer is not None and offer.prices:
            amount = offer.prices.get(size)
            return None if amount is None else (amount, model.id, backend)
        amount = model.prices.get(size)
        return None if amount is None else (amount, model.id, "list")

    def resolve_quietly(self, backend: str, name: str) -> Resolved:
        """:meth:`resolve`, with what cannot be resolved taken as unknown (for prices and
        records of jobs already sent)."""
        try:
            return self.resolve(backend, name)
        except UsageError:
            model = self.models.get(name)
            return Resolved(name, name, model, None)


def _preference(model: Model) -> tuple[bool, bool, int]:
    """Sort key: GA first, then not deprecated, then the newest."""
    released = (model.released or dt.date.min).toordinal()
    return (model.status != "ga", model.deprecated is not None, -released)


# ---- loading -------------------------------------------------------------------------------


SHIPPED_TOML = "models.toml"
"""The catalog as people read and edit it."""
SHIPPED_JSON = "models.json"
"""The same, parsed: what a run reads. Parsing the TOML (and loading tomllib) would cost every
run some 4 ms; ``tests/models_json.py`` writes this file from it, and a test fails when the two
differ."""


@cache
def shipped_document() -> dict[str, Any]:
    """The catalog as shipped with this version (``models.json``, made from ``models.toml``)."""
    import json

    # Beside this module; read with open(), as importlib.resources costs a few ms to load.
    with open(os.path.join(os.path.dirname(__file__), SHIPPED_JSON), encoding="utf-8") as file:
        document: dict[str, Any] = json.load(file)
    return document


def json_of_toml(text: str) -> str:
    """``models.json`` as it must be for the ``models.toml`` whose text is ``text``: the same
    tables, dates as ISO text."""
    import json
    import tomllib

    return json.dumps(tomllib.loads(text), indent=1, ensure_ascii=False, default=str) + "\n"


def shipped_as_of() -> dt.date | None:
    """The day the shipped catalog's snapshot was taken (``as_of`` in ``models.toml``)."""
    value = shipped_document().get("as_of")
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, dt.date) else None


def merged_document(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The shipped catalog with the user's ``[models."ID"]`` tables laid over it, key by key
    (so one date or one price can be corrected without restating the entry)."""
    document = shipped_document()
    models = deep_merge(document.get("models", {}), overrides)
    return {**document, "models": models}


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid over it table by table: a value of ``over`` wins, a table
    of both is merged."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_catalog(
    overrides: Mapping[str, Any] | None = None,
    today: dt.date | None = None,
    backends: Iterable[str] | None = None,
) -> Catalog:
    """The catalog, with the user's corrections (``overrides``: the config file's ``models``
    table); a config error naming the key when an entry is malformed. ``backends``, when
    given, are the names an ``on.BACKEND`` table may use."""
    document = merged_document(overrides or {})
    ratio_sets = {
        name: tuple(str(ratio) for ratio in ratios)
        for name, ratios in document.get("ratio_sets", {}).items()
    }
    known = tuple(backends) if backends is not None else None
    shares = shared_offers()
    models = {
        model_id: _with_shared_offers(_model(model_id, table, ratio_sets, known), shares)
        for model_id, table in document.get("models", {}).items()
    }
    for model in models.values():
        if model.replacement and model.replacement not in models:
            raise _bad(model.id, "replacement", f"names {model.replacement!r}, not in the catalog")
    return Catalog(models, today, load_dials(shipped_document()))


def _with_shared_offers(model: Model, shares: Mapping[str, str]) -> Model:
    """``model`` with an offer for each backend of ``shares`` that has none of its own (an
    ``on.BACKEND`` table, from the catalog or the user, wins): the offer of the backend it
    sells as, under its own name."""
    # A service tier is a field of the API the offer is sent through, not of the model: a
    # backend that sells another's models under its own API does not inherit its tiers.
    added = {
        backend: model.offers[source]._replace(backend=backend, tiers=NO_PRICES)
        for backend, source in shares.items()
        if backend not in model.offers and source in model.offers
    }
    return model._replace(offers={**model.offers, **added}) if added else model


@cache
def shipped_catalog() -> Catalog:
    """The catalog as shipped, without the user's corrections (for defaults and help)."""
    return load_catalog()


def _bad(model_id: str, key: str, why: str) -> ConfigError:
    return ConfigError(
        f'the model catalog entry models."{model_id}".{key} {why}; correct it in the config '
        "file (nanoedit config path), or remove it to use the shipped entry"
    )


def _text(model_id: str, table: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise _bad(model_id, key, f"must be a non-empty string, not {value!r}")
    return value


def _date(model_id: str, table: Mapping[str, Any], key: str) -> dt.date | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _bad(model_id, key, f"must be a date such as 2026-10-02, not {value!r}")


def _sizes(model_id: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _bad(model_id, key, f"must be a list of sizes, not {value!r}")
    sizes = tuple(str(size).upper() if str(size) != "512" else "512" for size in value)
    wrong = [size for size in sizes if size not in SIZES_KNOWN]
    if wrong:
        raise _bad(model_id, key, f"has {wrong[0]!r}; sizes are {', '.join(SIZES_KNOWN)}")
    return sizes


def _ratios(
    model_id: str, key: str, value: Any, ratio_sets: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    if isinstance(value, str):
        if value not in ratio_sets:
            raise _bad(model_id, key, f"names {value!r}; use {' or '.join(ratio_sets)} or a list")
        return ratio_sets[value]
    if not isinstance(value, list) or not value:
        raise _bad(model_id, key, f'must be a list of ratios such as "16:9", not {value!r}')
    ratios = tuple(str(ratio) for ratio in value)
    for ratio in ratios:
        width, colon, height = ratio.partition(":")
        if not (colon and width.isdigit() and height.isdigit() and int(width) and int(height)):
            raise _bad(model_id, key, f"has {ratio!r}, which is not a ratio such as 16:9")
    return ratios


def _count(model_id: str, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _bad(model_id, key, f"must be a whole number of 1 or more, not {value!r}")
    return value


def _prices(model_id: str, key: str, value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise _bad(model_id, key, 'must be a table of prices by size, such as { "1K" = 0.04 }')
    prices: dict[str, float] = {}
    for size, amount in value.items():
        (size_name,) = _sizes(model_id, f"{key}.{size}", [size])
        if not isinstance(amount, int | float) or isinstance(amount, bool) or amount < 0:
            raise _bad(model_id, f"{key}.{size}", f"must be a price in dollars, not {amount!r}")
        prices[size_name] = float(amount)
    return prices


def _model(
    model_id: str,
    table: Any,
    ratio_sets: Mapping[str, tuple[str, ...]],
    backends: tuple[str, ...] | None,
) -> Model:
    if not isinstance(table, Mapping):
        raise _bad(model_id, "", "must be a table")
    limits = ModelLimits(
        _count(model_id, "max_images", table.get("max_images")),
        _sizes(model_id, "sizes", table.get("sizes")),
        _ratios(model_id, "ratios", table.get("ratios"), ratio_sets),
    )
    status = _text(model_id, table, "status", "ga")
    if status not in ("ga", "preview"):
        raise _bad(model_id, "status", f"is {status!r}; it is ga or preview")
    pixels = _text(model_id, table, "pixels", "gemini-3")
    if pixels not in PIXEL_TABLES:
        raise _bad(model_id, "pixels", f"is {pixels!r}; it is {' or '.join(PIXEL_TABLES)}")
    offers_table = table.get("on", {})
    if not isinstance(offers_table, Mapping):
        raise _bad(model_id, "on", "must be a table of backends")
    offers = {}
    for backend, offer in offers_table.items():
        if backends is not None and backend not in backends:
            raise _bad(model_id, f"on.{backend}", f"names no backend; use {', '.join(backends)}")
        offers[backend] = _offer(model_id, backend, offer, limits, ratio_sets)
    thinking = table.get("thinking", [])
    replacement = table.get("replacement")
    return Model(
        id=model_id,
        name=_text(model_id, table, "name", model_id),
        family=_text(model_id, table, "family", model_id),
        tier=_text(model_id, table, "tier", "flash"),
        status=status,
        limits=limits,
        pixels=pixels,
        offers=offers,
        released=_date(model_id, table, "released"),
        deprecated=_date(model_id, table, "deprecated"),
        shutdown=_date(model_id, table, "shutdown"),
        replacement=str(replacement) if replacement else None,
        thinking=tuple(str(level) for level in thinking) if isinstance(thinking, list) else (),
        search=bool(table.get("search", False)),
        prices=_prices(model_id, "prices", table.get("prices", {})),
        sources=str(table.get("sources", "")),
    )


def _offer(
    model_id: str,
    backend: str,
    table: Any,
    model: ModelLimits,
    ratio_sets: Mapping[str, tuple[str, ...]],
) -> Offer:
    key = f"on.{backend}"
    if not isinstance(table, Mapping):
        raise _bad(model_id, key, 'must be a table such as { id = "..." }')
    limits = ModelLimits(
        _count(model_id, f"{key}.max_images", table.get("max_images", model.max_images)),
        _sizes(model_id, f"{key}.sizes", table.get("sizes", list(model.sizes))),
        _ratios(model_id, f"{key}.ratios", table.get("ratios", list(model.ratios)), ratio_sets),
    )
    edit = table.get("edit")
    size_field = table.get("size_field", True)
    if not isinstance(size_field, bool):
        raise _bad(model_id, f"{key}.size_field", f"must be true or false, not {size_field!r}")
    dials = table.get("dials")
    return Offer(
        backend=backend,
        id=_text(model_id, table, "id"),
        limits=limits,
        edit=str(edit) if edit else None,
        size_field=size_field,
        prices=_prices(model_id, f"{key}.prices", table.get("prices", {})),
        batch_prices=_prices(model_id, f"{key}.batch_prices", table.get("batch_prices", {})),
        tiers=_tiers(model_id, f"{key}.tiers", table.get("tiers", {})),
        dials=None if dials is None else dial_names(f'models."{model_id}".{key}.dials', dials),
        dial_values=MappingProxyType(
            {
                name: values(f'models."{model_id}".{key}.{name}', table[name])
                for name in ("formats", "safety")
                if name in table
            }
        ),
    )


# The tiers an offer may list: standard is every offer's, at its own price.
PRICED_TIERS = ("flex", "priority")


def _tiers(model_id: str, key: str, value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise _bad(
            model_id, key, "must be a table of tiers and price multiples, such as { flex = 0.5 }"
        )
    tiers: dict[str, float] = {}
    for tier, factor in value.items():
        if tier not in PRICED_TIERS:
            raise _bad(model_id, f"{key}.{tier}", f"names no tier; use {' or '.join(PRICED_TIERS)}")
        if not isinstance(factor, int | float) or isinstance(factor, bool) or factor <= 0:
            raise _bad(
                model_id,
                f"{key}.{tier}",
                f"must be the tier's price as a multiple of the standard price (0.5 for half), "
                f"not {factor!r}",
            )
        tiers[tier] = float(factor)
    return tiers
