"""The cache of ``nanoedit models --live``: what providers' schemas last said of ratios and
sizes (``models-live.json`` in the data folder), read back as corrections to the catalog. It
is the catalog's own layer, so settings lay it under the config file's corrections without
reaching up to the command that writes it (:mod:`nanoedit.run.live`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nanoedit.catalog.models import SIZES_KNOWN, Catalog, Model, Offer, shipped_as_of
from nanoedit.datadir import LIVE_CACHE_NAME, data_dir
from nanoedit.jobs import RATIOS

CACHE_NAME = LIVE_CACHE_NAME
CACHE_VERSION = 1
# The values of a schema nanoedit can send, and so adopt from the cache.
_KNOWN_RATIOS = frozenset(RATIOS) - {"auto"}
_KNOWN_SIZES = frozenset(SIZES_KNOWN)


def catalog_ids(catalog: Catalog, backend: str) -> dict[str, tuple[Model, Offer]]:
    """The ids the catalog sells on ``backend`` today (an edit app's too), each with its
    model and offer, in catalog order; shut-down models are left out, as providers drop them."""
    ids: dict[str, tuple[Model, Offer]] = {}
    for model in catalog.models.values():
        offer = model.offers.get(backend)
        if offer is None or model.is_shut_down(catalog.today):
            continue
        for sold in (offer.id, offer.edit):
            if sold and sold not in ids:
                ids[sold] = (model, offer)
    return ids


def cache_path(env: Mapping[str, str]) -> Path:
    """Where the cache lives: the data folder, beside the journal."""
    return data_dir(env) / CACHE_NAME


def read_cache(path: Path) -> tuple[dict[str, Any], str | None]:
    """The cache's document, or an empty one and, unless there simply is none, a warning
    saying why it is ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        return {}, _ignored(path, why or str(exc))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, _ignored(path, f"it is not valid JSON ({exc.msg} at line {exc.lineno})")
    if not (
        isinstance(document, dict)
        and document.get("version") == CACHE_VERSION
        and isinstance(document.get("backends"), dict)
    ):
        return {}, _ignored(path, "it is not a cache this version of nanoedit writes")
    return document, None


def _ignored(path: Path, why: str) -> str:
    return (
        f"the cache of nanoedit models --live, {path}, is ignored: {why}; run nanoedit models "
        "--live to write it again, or delete it"
    )


def cached_corrections(
    env: Mapping[str, str],
    catalog: Catalog,
    user: Mapping[str, Any],
    base_urls: Mapping[str, str | None],
) -> tuple[dict[str, Any], str | None]:
    """The cache's ratios and sizes as corrections to the catalog, in the config file's shape
    (``{ID: {"on": {BACKEND: {"ratios": [...]}}}}``), and a warning when the cache cannot be
    read. ``catalog`` is the catalog with the user's corrections ``user`` (the config file's
    ``models`` table), whose fields win: one the user set is not corrected.

    Kept: backends whose base URL is the one read from, read on or after the day the shipped
    catalog was taken; values nanoedit can send."""
    document, warning = read_cache(cache_path(env))
    as_of = shipped_as_of()
    corrections: dict[str, Any] = {}
    for backend, entry in document.get("backends", {}).items():
        if not isinstance(entry, dict) or entry.get("base_url") != base_urls.get(backend):
            continue
        checked = _day(entry.get("checked"))
        models = entry.get("models")
        if checked is None or (as_of and checked < as_of) or not isinstance(models, dict):
            continue
        sold = catalog_ids(catalog, backend)
        for sold_id, enums in models.items():
            if sold_id in sold and isinstance(enums, dict):
                model, offer = sold[sold_id]
                _correct(corrections, user, model, offer, enums)
    return corrections, warning


def _table(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a table (of the config file's corrections), else an empty one."""
    return value if isinstance(value, Mapping) else {}


def _day(value: Any) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(value).date() if isinstance(value, str) else None
    except ValueError:
        return None


def _correct(
    corrections: dict[str, Any],
    user: Mapping[str, Any],
    model: Model,
    offer: Offer,
    enums: Mapping[str, Any],
) -> None:
    """Lay one model's cached enums into ``corrections``: an app and its edit app both give
    theirs, and an offer takes what both take."""
    mine = _table(user.get(model.id))
    on_user = _table(_table(mine.get("on")).get(offer.backend))
    target = corrections.setdefault(model.id, {}).setdefault("on", {}).setdefault(offer.backend, {})
    for name, known in (("ratios", _KNOWN_RATIOS), ("sizes", _KNOWN_SIZES)):
        values = enums.get(name)
        if name in mine or name in on_user or not isinstance(values, list):
            continue  # the user's own correction wins
        if name == "sizes" and not offer.size_field:
            continue  # the API has no size field for it: nothing is sent
        kept = [str(value) for value in values if str(value) in known]
        if name in target:
            kept = [value for value in target[name] if value in kept]
        if kept:
            target[name] = kept
    if not target:
        del corrections[model.id]["on"][offer.backend]
        if not corrections[model.id]["on"]:
            del corrections[model.id]
