"""The registry of backends: one line each, its name and what implements it.

A new backend is one module with a :class:`~nanoedit.backends.base.BackendBase` subclass and
one line here. Everything that lists backends (config keys, ``--backend`` choices, ``config
check``, prices, completions, automatic selection) reads this registry and never names one.

The lines are declarations: the names, and which backend sells another's catalog offers, are
known without importing anything, so the settings and the catalog (layers below the backends)
read them here, and a run imports only the module of the backend it uses (``load``). This
module imports nothing of nanoedit, so whoever reads it closes no import circle.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any, NamedTuple


class Entry(NamedTuple):
    """One backend as the registry declares it."""

    implementation: str
    """``module:Class`` of its :class:`~nanoedit.backends.base.BackendBase` subclass."""
    sells_as: str | None = None
    """The backend whose catalog offers it sells too, by the same ids and limits, wherever the
    catalog gives it none of its own (``on.NAME``): Vertex AI sells Google's models as the
    Gemini API names them."""


# In the order automatic selection prefers them among those configured.
REGISTRY: dict[str, Entry] = {
    "openai": Entry("nanoedit.backends.openai:OpenAIBackend"),
    "duomi": Entry("nanoedit.backends.duomi:DuomiBackend"),
    "gemini": Entry("nanoedit.backends.gemini:GeminiBackend"),
    "fal": Entry("nanoedit.backends.fal:FalBackend"),
    "replicate": Entry("nanoedit.backends.replicate:ReplicateBackend"),
    "openrouter": Entry("nanoedit.backends.openrouter:OpenRouterBackend"),
    "vertex": Entry("nanoedit.backends.vertex:VertexBackend", sells_as="gemini"),
}


def backend_names() -> tuple[str, ...]:
    """Every registered backend's name, in registry order; no backend module is imported."""
    return tuple(REGISTRY)


def shared_offers() -> dict[str, str]:
    """Each backend that sells another's catalog offers, and that other."""
    return {name: entry.sells_as for name, entry in REGISTRY.items() if entry.sells_as}


@cache
def load(name: str) -> Any:
    """The class of the backend called ``name``, its module imported now if it was not yet.

    Typed by what reads it: :func:`nanoedit.backends.base.backend_class` checks it is a
    ``BackendBase`` for the layers above; the settings read it through their own protocol.
    """
    module, _, attribute = REGISTRY[name].implementation.partition(":")
    loaded = getattr(importlib.import_module(module), attribute)
    if getattr(loaded, "name", None) != name:
        raise TypeError(f"the registry's {name} names {REGISTRY[name].implementation}")
    return loaded
