"""The emulated APIs the sandbox answers for: one line each, ``module:Class``.

Adding an emulated API is its module (``NAME_api.py``, holding one ``EmulatedApi``) and its line
here: the routing, the fault kinds a plan may name and which APIs act each out, and the index
page all follow from this list. The modules are loaded by name, so this module imports none of
them and none of them can close an import circle through it.

A request goes to the first API that claims it (``EmulatedApi.answers``), so the order matters:
Gemini's routes under ``/v1`` (``models/MODEL:action``, and its model and file requests that
carry a Google key, ``/v1/files`` among them) come before Replicate's (``/v1/account``,
``/v1/predictions``, ``/v1/files``, ``/v1/models/google/NAME``); those and fal's model search
on ``/v1/models`` (with fal's key or an ``endpoint_id``) come before the OpenAI-compatible
gateway, which takes the rest of ``/v1``; OpenRouter's ``/api/v1`` comes before duomi, which
takes the rest of ``/api``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable

from nanoedit.sandbox.runtime import EmulatedApi

API_ENTRIES: tuple[str, ...] = (
    "nanoedit.sandbox.gemini_api:GeminiApi",
    "nanoedit.sandbox.vertex_api:VertexApi",
    "nanoedit.sandbox.replicate_api:ReplicateApi",
    "nanoedit.sandbox.fal_api:FalApi",
    "nanoedit.sandbox.openai_api:OpenAIApi",
    "nanoedit.sandbox.openrouter_api:OpenRouterApi",
    "nanoedit.sandbox.duomi_api:DuomiApi",
)


def load_api(entry: str) -> type[EmulatedApi]:
    """The API class a registry line names; ValueError says which line is wrong and how."""
    module, colon, name = entry.partition(":")
    if not (module and colon and name):
        raise ValueError(f"sandbox API entry {entry!r} is not of the form module:Class")
    api = getattr(importlib.import_module(module), name, None)
    if not (inspect.isclass(api) and issubclass(api, EmulatedApi) and not inspect.isabstract(api)):
        raise ValueError(
            f"sandbox API entry {entry!r} names no emulated API (an EmulatedApi subclass)"
        )
    return api


def load_apis(entries: Iterable[str] = API_ENTRIES) -> tuple[type[EmulatedApi], ...]:
    """The API classes of registry lines, in their order; ValueError when a line names none,
    or two APIs share a name (fault kinds and the fault plan tell APIs apart by it)."""
    apis: dict[str, tuple[str, type[EmulatedApi]]] = {}
    for entry in entries:
        api = load_api(entry)
        if api.name in apis:
            raise ValueError(
                f"sandbox API entries {apis[api.name][0]!r} and {entry!r} are both named "
                f"{api.name!r}; fault kinds tell APIs apart by name"
            )
        apis[api.name] = (entry, api)
    return tuple(api for _, api in apis.values())
