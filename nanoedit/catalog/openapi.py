"""The values a model's inputs allow, read from the OpenAPI schema its provider publishes
(Replicate's model versions, fal's apps), for ``nanoedit models --live``.

A property's enum may be written inline (``{"enum": [...]}``, as fal writes them), behind a
``$ref`` to a schema of its own, or behind ``allOf`` of one ``$ref`` (as Cog, which builds
Replicate's schemas, writes them: ``{"allOf": [{"$ref": "#/components/schemas/aspect_ratio"}]}``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# A schema that refers to itself, or a chain of references this long, is not followed further.
MAX_REFS = 16
_RATIO = re.compile(r"[1-9][0-9]*:[1-9][0-9]*")


def resolve(document: Mapping[str, Any], node: Any) -> Mapping[str, Any]:
    """``node`` with its ``$ref`` (or ``allOf`` of one schema) followed within ``document``;
    an empty mapping when it leads nowhere."""
    for _ in range(MAX_REFS):
        if not isinstance(node, Mapping):
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            node = _pointer(document, ref[2:])
            continue
        every = node.get("allOf")
        if "enum" not in node and isinstance(every, list) and len(every) == 1:
            node = every[0]
            continue
        return node
    return {}


def _pointer(document: Mapping[str, Any], path: str) -> Any:
    """The node a JSON pointer (``components/schemas/Input``) names, or None."""
    node: Any = document
    for part in path.split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def properties(document: Mapping[str, Any], schema: Any) -> Mapping[str, Any]:
    """The properties of an input schema (followed through its references)."""
    found = resolve(document, schema).get("properties")
    return found if isinstance(found, Mapping) else {}


def request_properties(document: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """The properties of the JSON body a POST to ``path`` takes (its ``requestBody``)."""
    paths = resolve(document, document.get("paths"))
    operation = resolve(document, resolve(document, paths.get(path)).get("post"))
    body = resolve(document, operation.get("requestBody"))
    media = resolve(document, resolve(document, body.get("content")).get("application/json"))
    return properties(document, media.get("schema"))


def enum(
    document: Mapping[str, Any], inputs: Mapping[str, Any], name: str
) -> tuple[str, ...] | None:
    """The values the input ``name`` allows, in the schema's order; None when it has no enum
    (or no such input)."""
    values = resolve(document, inputs.get(name)).get("enum")
    if not isinstance(values, list):
        return None
    return tuple(str(value) for value in values)


def ratios(values: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """An ``aspect_ratio`` enum's ratios, without the values that are not one
    (``match_input_image``, ``auto``)."""
    if values is None:
        return None
    return tuple(value for value in values if _RATIO.fullmatch(value))


def sizes(values: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """A ``resolution`` enum in nanoedit's spelling: ``0.5K`` (fal's name for it) is ``512``,
    the rest upper case."""
    if values is None:
        return None
    return tuple("512" if value.upper() in ("0.5K", "512") else value.upper() for value in values)
