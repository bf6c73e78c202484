"""Settings that conflict: a default size the backends' models cannot render. ``config set``
checks a change against the others as a run would see them, before the file is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nanoedit.errors import NanoeditError, UsageError
from nanoedit.jobs import RunOptions
from nanoedit.settings.load import load_settings
from nanoedit.settings.values import Settings


@dataclass(frozen=True)
class SizeConflict:
    """A default size that the model of some backends in use cannot render."""

    size: str
    models: tuple[tuple[str, str], ...]
    """(backend, model) of each backend in use that cannot render it."""
    every_run: bool
    """True when no backend in use can: then every run without --model fails."""
    renders: tuple[str, ...] = ()
    """What each of those models renders there (``1K``, ``1K, 2K, 4K``), in the same order."""
    choices: tuple[str, ...] = ()
    """The models that render the size on those backends, by the names that reach them."""


def size_conflict(settings: Settings) -> SizeConflict | None:
    """Whether the default size is one the backends' models cannot render.

    The backends in use are the one chosen, or with ``auto`` those configured (all of them
    while none is).
    """
    size = settings.size
    if size is None:
        return None
    names: tuple[str, ...] = (settings.backend,)
    if settings.backend == "auto":
        every = tuple(settings.backends)
        configured = tuple(name for name in every if settings.backend_settings(name).configured)
        names = configured or every
    failing = []
    renders: list[str] = []
    choices: list[str] = []
    for name in names:
        model = settings.backend_settings(name).model
        limits = settings.catalog.resolve_quietly(name, model).limits
        if limits is not None and size not in limits.sizes:
            failing.append((name, model))
            renders.append(", ".join(limits.sizes))
            for choice in settings.catalog.names_that(name, lambda other: size in other.sizes):
                if choice not in choices:
                    choices.append(choice)
    if not failing:
        return None
    return SizeConflict(
        size,
        tuple(failing),
        every_run=len(failing) == len(names),
        renders=tuple(renders),
        choices=tuple(choices),
    )


def _size_conflict_with(values: Mapping[str, str], env: Mapping[str, str]) -> SizeConflict | None:
    try:
        return size_conflict(load_settings(env, RunOptions(), file_values=values))
    except NanoeditError:
        # Another setting is wrong: every run reports that, whatever this one is.
        return None


def check_combination(
    key: str, before: Mapping[str, str], after: Mapping[str, str], env: Mapping[str, str]
) -> str | None:
    """Check a change of ``key`` in the file (its values ``before`` and ``after``) against
    the other settings, as a run would see them.

    Raises :class:`UsageError` when it would make every run fail, and returns a warning
    when it would make some fail; a problem that was there before is not this change's.
    """
    conflict = _size_conflict_with(after, env)
    if conflict is None or conflict == _size_conflict_with(before, env):
        return None
    keys = [f"{name}.model" for name, _ in conflict.models]
    models = " or ".join(
        f"{name}.model {model} ({renders} only)"
        for (name, model), renders in zip(conflict.models, conflict.renders, strict=True)
    )
    what = f"default.size {conflict.size} cannot be rendered by {models}"
    choices = " or ".join(conflict.choices) or "a model that renders it (nanoedit models)"
    if not conflict.every_run:
        names = " or ".join(name for name, _ in conflict.models)
        return f"{what}, so jobs sent to {names} would fail; set {' and '.join(keys)} to {choices}"
    if key == "default.size":
        fix = (
            f"set {' and '.join(keys)} to {choices} first, or leave default.size unset and "
            "pass --size with --model when you need it"
        )
    else:
        model_keys = [key] if key in keys else keys
        fix = (
            f"choose a model that renders {conflict.size} for {' and '.join(model_keys)} "
            f"({choices}), or first remove default.size: nanoedit config unset default.size"
        )
    raise UsageError(f"{what}, so every run would fail; {fix}")
