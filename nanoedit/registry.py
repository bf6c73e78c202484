"""The registry of backends: one line each, a name and the ``module:Class`` that implements it.

A new backend is one module with a :class:`~nanoedit.backends.base.BackendBase` subclass and
one line here. Everything that lists backends (config keys, ``--backend`` choices, ``config
check``, prices, completions, automatic selection) reads this registry and never names one.
The names are known without importing anything; a backend's module is imported when its
class is first asked for, as a plug-in is, so this module sits below every layer that asks.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nanoedit.backends.base import BackendBase

# In the order automatic selection prefers them among those configured.
REGISTRY: dict[str, str] = {
    "openai": "nanoedit.backends.openai:OpenAIBackend",
    "duomi": "nanoedit.backends.duomi:DuomiBackend",
    "gemini": "nanoedit.backends.gemini:GeminiBackend",
    "fal": "nanoedit.backends.fal:FalBackend",
    "replicate": "nanoedit.backends.replicate:ReplicateBackend",
    "openrouter": "nanoedit.backends.openrouter:OpenRouterBackend",
    "vertex": "nanoedit.backends.vertex:VertexBackend",
}


def backend_names() -> tuple[str, ...]:
    """Every registered backend's name, in registry order; no backend module is imported."""
    return tuple(REGISTRY)


@cache
def backend_class(name: str) -> type[BackendBase]:
    """The backend called ``name`` (a name the settings already checked), its module imported
    now if it was not yet."""
    module, _, attribute = REGISTRY[name].partition(":")
    backend: type[BackendBase] = getattr(importlib.import_module(module), attribute)
    if backend.name != name:
        raise TypeError(f"the registry's {name} names {REGISTRY[name]}, called {backend.name}")
    return backend


def backend_classes() -> tuple[type[BackendBase], ...]:
    """Every registered backend class, in registry order (each backend's module imported)."""
    return tuple(backend_class(name) for name in REGISTRY)
