"""The JSON Schemas (draft 2020-12) of what nanoedit reads and prints as JSON, shipped in the
package: a ``--from`` line, and each ``--json`` record (whose ``schema`` field names its
schema and version, ``nanoedit/NAME/1``). Tests validate real output against them."""

from __future__ import annotations

from importlib.resources import files

from nanoedit.errors import UsageError


def schema_names() -> list[str]:
    """Every schema's name, sorted."""
    folder = files("nanoedit.describe").joinpath("schemas")
    names = (entry.name for entry in folder.iterdir())
    return sorted(name.removesuffix(".json") for name in names if name.endswith(".json"))


def schema_text(name: str) -> str:
    """The schema ``name`` as shipped (JSON text); an unknown name is a usage error."""
    names = schema_names()
    if name not in names:
        raise UsageError(f"no schema is called {name!r}; the schemas are: {', '.join(names)}")
    return files("nanoedit.describe").joinpath("schemas", f"{name}.json").read_text("utf-8")
