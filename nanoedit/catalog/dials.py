"""Which provider dials (``--seed``, ``--thinking``, ``--search``…) a model takes on a backend.

The facts are data in ``models.toml``: a ``[dials.BACKEND]`` table says what the backend's API
takes for every model it sells (``takes``), and the values it takes for the dials that have a
set (``formats``, ``safety``); a model's ``on.BACKEND`` table may list its own ``dials``,
``formats`` and ``safety`` instead (an app whose schema lacks a field). ``thinking`` and
``search`` are also the model's own: a model without thinking levels or search grounding
(``thinking``, ``search`` in its entry) takes neither, whatever its backend's API has.

An id the catalog does not know takes what its backend's API takes, unchecked beyond that (the
server's call, as for its sizes); a ``[dials.BACKEND.prefix."ID-START"]`` table says what the
ids starting so take (OpenAI's ``gpt-image-`` models on the openai backend).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from nanoedit.errors import ConfigError
from nanoedit.jobs import DIAL_NAMES

DIALS_OF_THE_MODEL = ("thinking", "search")
"""The dials a model must have itself (levels, grounding), beside its backend's API."""


class BackendDials(NamedTuple):
    """What one backend's API takes: the dials, their values, what a search query costs."""

    takes: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    safety: tuple[str, ...] = ()
    search_price: float | None = None
    """US dollars per grounded request (one search query a request, see the README)."""
    prefixes: Mapping[str, BackendDials] = MappingProxyType({})
    """What ids the catalog does not know take, by how the id starts."""


class DialSupport(NamedTuple):
    """What one model takes on one backend."""

    takes: tuple[str, ...]
    thinking: tuple[str, ...] | None
    """Its thinking levels, lower case; None when nanoedit cannot know (an unknown id)."""
    formats: tuple[str, ...]
    safety: tuple[str, ...]
    search_price: float | None


NO_BACKEND_DIALS = BackendDials()


def support(
    dials: BackendDials,
    offer_dials: tuple[str, ...] | None,
    thinking: tuple[str, ...] | None,
    search: bool | None,
    overrides: Mapping[str, tuple[str, ...]] = MappingProxyType({}),
) -> DialSupport:
    """What a model takes on a backend: the backend's ``dials`` (or the offer's own list),
    narrowed by the model's ``thinking`` levels and ``search`` (None for either: an id the
    catalog does not know, left to the server)."""
    takes = offer_dials if offer_dials is not None else dials.takes
    if thinking is not None and not thinking:
        takes = tuple(name for name in takes if name != "thinking")
    if search is False:
        takes = tuple(name for name in takes if name != "search")
    return DialSupport(
        takes=takes,
        thinking=None if thinking is None else tuple(level.lower() for level in thinking),
        formats=overrides.get("formats", dials.formats),
        safety=overrides.get("safety", dials.safety),
        search_price=dials.search_price,
    )


def for_unknown_id(dials: BackendDials, model: str) -> DialSupport:
    """What an id the catalog does not know takes on a backend: its prefix's table, else the
    backend's API's dials, thinking levels unchecked."""
    for start, table in dials.prefixes.items():
        if model.startswith(start):
            return support(table, None, None, None)
    return support(dials, None, None, None)


def _bad(key: str, why: str) -> ConfigError:
    return ConfigError(f"the model catalog's {key} {why}; correct models.toml")


def _names(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise _bad(key, f"must be a list of dial names, not {value!r}")
    wrong = [name for name in value if name not in DIAL_NAMES]
    if wrong:
        raise _bad(key, f"has {wrong[0]!r}; dials are {', '.join(DIAL_NAMES)}")
    return tuple(value)


def values(key: str, value: Any) -> tuple[str, ...]:
    """A list of a dial's values (formats, safety levels) as the catalog gives it."""
    if not isinstance(value, list) or not value:
        raise _bad(key, f"must be a list of values, not {value!r}")
    return tuple(str(item) for item in value)


def dial_names(key: str, value: Any) -> tuple[str, ...]:
    """A ``dials`` list of an ``on.BACKEND`` table, checked."""
    return _names(key, value)


def backend_dials(key: str, table: Any) -> BackendDials:
    """One ``[dials.BACKEND]`` table, checked."""
    if not isinstance(table, Mapping):
        raise _bad(key, "must be a table")
    price = table.get("search_price")
    if price is not None and (not isinstance(price, int | float) or isinstance(price, bool)):
        raise _bad(f"{key}.search_price", f"must be a price in dollars, not {price!r}")
    prefixes = table.get("prefix", {})
    if not isinstance(prefixes, Mapping):
        raise _bad(f"{key}.prefix", "must be a table of id starts")
    return BackendDials(
        takes=_names(f"{key}.takes", table.get("takes", [])),
        formats=values(f"{key}.formats", table["formats"]) if "formats" in table else (),
        safety=values(f"{key}.safety", table["safety"]) if "safety" in table else (),
        search_price=None if price is None else float(price),
        prefixes=MappingProxyType(
            {
                str(start): backend_dials(f"{key}.prefix.{start}", sub)
                for start, sub in prefixes.items()
            }
        ),
    )


def load_dials(document: Mapping[str, Any]) -> dict[str, BackendDials]:
    """Every backend's ``[dials.BACKEND]`` table of the catalog's document."""
    tables = document.get("dials", {})
    if not isinstance(tables, Mapping):
        raise _bad("dials", "must be a table of backends")
    return {name: backend_dials(f"dials.{name}", table) for name, table in tables.items()}
