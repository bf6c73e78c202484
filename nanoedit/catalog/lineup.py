"""What ``nanoedit models`` shows: the catalog as rows, one a model (and, with a backend
named, as that backend sells it), for a table or for JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nanoedit.catalog.dials import DialSupport
from nanoedit.catalog.models import Catalog, Model, ModelLimits, Resolved
from nanoedit.errors import UsageError


@dataclass(frozen=True)
class LineupRow:
    """One model as ``nanoedit models`` shows it."""

    model: Model
    alias: str
    """The alias that reaches it (on the backend named, or on Google's API), or empty."""
    state: str
    """``live``, ``deprecated`` or ``shut down`` today."""
    ids: dict[str, str]
    """Each backend's id for it, by backend."""
    limits: ModelLimits
    price_1k: tuple[float, str] | None
    """The price of one 1K image (or its one size) and where it comes from."""
    dials: dict[str, DialSupport]
    """The provider dials it takes on each backend that sells it, by backend."""

    def as_json(self) -> dict[str, Any]:
        """The row as a JSON object (dates as ISO text)."""
        model = self.model
        return {
            # Its JSON Schema: nanoedit schema model.
            "schema": "nanoedit/model/1",
            "id": model.id,
            "name": model.name,
            "aliases": [name for name in self.alias.split(", ") if name],
            "family": model.family,
            "tier": model.tier,
            "status": model.status,
            "state": self.state,
            "released": _iso(model.released),
            "deprecated": _iso(model.deprecated),
            "shutdown": _iso(model.shutdown),
            "replacement": model.replacement,
            "backends": self.ids,
            "max_images": self.limits.max_images,
            "sizes": list(self.limits.sizes),
            "ratios": list(self.limits.ratios),
            "thinking": list(model.thinking),
            "search": model.search,
            "dials": {
                backend: {
                    "takes": list(able.takes),
                    "thinking": list(able.thinking or ()) if "thinking" in able.takes else [],
                    "formats": list(able.formats) if "format" in able.takes else [],
                    "safety": list(able.safety) if "safety" in able.takes else [],
                    "search_price": able.search_price if "search" in able.takes else None,
                }
                for backend, able in self.dials.items()
            },
            "price_1k": None if self.price_1k is None else self.price_1k[0],
            "price_source": None if self.price_1k is None else self.price_1k[1],
            "sources": model.sources,
        }


def _iso(day: Any) -> str | None:
    return None if day is None else str(day)


def lineup(catalog: Catalog, backend: str | None = None) -> list[LineupRow]:
    """The catalog's models, live ones first; with ``backend``, only those it sells, with
    its limits and prices."""
    rows = []
    for model in catalog.models.values():
        offer = model.offers.get(backend) if backend else None
        if backend and offer is None:
            continue
        limits = offer.limits if offer else model.limits
        # Without a backend named, the model is shown as the catalog's first offer names it
        # (Google's own API, listed first in each entry).
        where = backend or next(iter(model.offers), "")
        alias = _alias_of(catalog, model, where) if where else ""
        size = "1K" if "1K" in limits.sizes else limits.sizes[0]
        price = catalog.price(where, offer.id if offer else model.id, size) if where else None
        rows.append(
            LineupRow(
                model=model,
                alias=alias,
                state=_state(catalog, model),
                ids={name: sold.id for name, sold in model.offers.items()},
                dials={
                    name: catalog.dial_support(name, Resolved(sold.id, sold.id, model, sold))
                    for name, sold in model.offers.items()
                    if backend is None or name == backend
                },
                limits=limits,
                price_1k=None if price is None else (price[0], price[2]),
            )
        )
    order = {"live": 0, "deprecated": 1, "shut down": 2}
    return sorted(rows, key=lambda row: order[row.state])


def _state(catalog: Catalog, model: Model) -> str:
    if model.is_shut_down(catalog.today):
        return "shut down"
    return "deprecated" if model.deprecated else "live"


def _alias_of(catalog: Catalog, model: Model, backend: str) -> str:
    """The aliases that resolve to ``model`` on ``backend``, ``nano-banana`` first."""
    names = []
    for alias in catalog.aliases():
        try:
            if catalog.resolve(backend, alias).model is model:
                names.append(alias)
        except UsageError:  # an alias the backend sells nothing of
            continue
    return ", ".join(names)


def table_lines(rows: Sequence[LineupRow], backends: Sequence[str]) -> list[list[str]]:
    """The rows as text cells: header first."""
    header = ["alias", "Google id", *backends, "sizes", "ratios", "refs", "1K price", "status"]
    one = backends[0] if len(backends) == 1 else None
    if one is not None:
        # With one backend named, the dials the model takes there (--seed, --search…).
        header.insert(-1, "dials")
    lines = [header]
    for row in rows:
        ratios = row.limits.ratios
        tall = [ratio for ratio in ratios if ratio in ("1:4", "4:1", "1:8", "8:1")]
        shown_ratios = f"{len(ratios)}" + (" (with 1:8, 8:1…)" if tall else "")
        price = "unknown"
        if row.price_1k is not None:
            amount, source = row.price_1k
            price = f"${amount:g}" + ("" if source == "list" else f" ({source})")
        status = row.model.lifecycle()
        if row.state == "shut down":
            status = f"SHUT DOWN {row.model.shutdown}; use {row.model.replacement}"
        cells = [
            row.alias or "-",
            row.model.id,
            *(row.ids.get(name, "-") for name in backends),
            ",".join(row.limits.sizes),
            shown_ratios,
            str(row.limits.max_images),
            price,
            status,
        ]
        if one is not None:
            able = row.dials.get(one)
            cells.insert(-1, ",".join(able.takes) if able and able.takes else "-")
        lines.append(cells)
    return lines
