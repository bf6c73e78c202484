"""The providers' dials checked before sending: a dial is sent where the catalog says the model
takes it on its backend, and refused (a usage error, exit 2, nothing sent) everywhere else,
with where it can be had instead."""

from __future__ import annotations

from nanoedit.catalog.dials import DIALS_OF_THE_MODEL, NO_BACKEND_DIALS, DialSupport
from nanoedit.catalog.models import Catalog, Model, Resolved
from nanoedit.errors import UsageError
from nanoedit.jobs import DIAL_FLAGS, Dials, Job
from nanoedit.output.imageformat import format_from_suffix

_SUFFIXES = {"jpeg": "jpg"}

DIAL_WORDS: dict[str, str] = {
    "seed": "a seed",
    "thinking": "thinking levels",
    "search": "search grounding",
    "image_only": "an image-only answer",
    "format": "a choice of image format",
    "safety": "a safety level",
    "quality": "a quality setting",
    "input_fidelity": "an input-fidelity setting",
}


def check_dials(catalog: Catalog, backend: str, resolved: Resolved, job: Job) -> None:
    """Refuse a dial that ``resolved``'s model does not take on ``backend``, or a value it
    does not take, naming the models or backends that do."""
    dials = job.options.dials
    asked = dials.given()
    if not asked:
        return
    able = catalog.dial_support(backend, resolved)
    model = resolved.model.name if resolved.model is not None else resolved.sent
    for name in asked:
        flag = DIAL_FLAGS[name]
        if name not in able.takes:
            raise UsageError(_missing(catalog, backend, resolved, name, flag, model))
        _check_value(dials, able, name, flag, model, backend, job)


def _missing(
    catalog: Catalog, backend: str, resolved: Resolved, name: str, flag: str, model: str
) -> str:
    """Why ``name`` cannot be sent: the model lacks it (then the models that have it here),
    or the backend's API does (then the backends that take it for this model)."""
    own = resolved.model
    if name in DIALS_OF_THE_MODEL and own is not None and not _model_has(own, name):
        others = catalog.names_that(backend, lambda _limits: True)
        having = [
            other
            for other in others
            if name in catalog.dial_support(backend, catalog.resolve_quietly(backend, other)).takes
        ]
        where = f"; models with it on {backend}: {', '.join(having)}" if having else ""
        return (
            f"{flag}: {model} has no {DIAL_WORDS[name]}{where}; drop {flag} or choose one of "
            "them with --model"
        )
    if own is None:
        # An id the catalog does not know: the backends whose API takes the dial at all;
        # none for a kind of id the backend's own table names (gpt-image-…), sold nowhere else.
        own_kind = catalog.dials.get(backend, NO_BACKEND_DIALS).prefixes
        named = any(resolved.sent.startswith(start) for start in own_kind)
        backends = [
            other for other, dials in catalog.dials.items() if name in dials.takes and not named
        ]
        whose = "backends whose API takes it"
    else:
        backends = [
            other
            for other in own.offers
            if name in catalog.dial_support(other, catalog.resolve_quietly(other, own.id)).takes
        ]
        whose = f"backends that take it for {model}"
    where = (
        f"; {whose}: {', '.join(backends)} (choose one with --backend)"
        if backends
        else f"; no backend takes it for {model}"
    )
    return f"{flag} is not sent by the {backend} backend for {model}{where}, or drop {flag}"


def _model_has(model: Model, name: str) -> bool:
    """Whether the model itself has thinking levels, or search grounding."""
    return bool(model.thinking) if name == "thinking" else model.search


def _check_value(
    dials: Dials, able: DialSupport, name: str, flag: str, model: str, backend: str, job: Job
) -> None:
    """Refuse a value the model does not take there (a thinking level, a format, a safety
    level), and an input fidelity without input images."""
    value = getattr(dials, name)
    choices: tuple[str, ...] | None = {
        "thinking": able.thinking,
        "format": able.formats or None,
        "safety": able.safety or None,
    }.get(name)
    if choices is not None and value not in choices:
        raise UsageError(
            f"{flag} {value}: {model} takes {', '.join(choices)} on {backend}; choose one of them"
        )
    if name == "format" and job.output is not None and job.output.suffix:
        # -o names the format too: a file of another kind would be converted, lossily for a
        # JPEG, which --format is there to avoid.
        named = format_from_suffix(job.output.suffix)
        if named is not None and named != value:
            raise UsageError(
                f"--format {value} and -o {job.output} ask for two formats ({named} by its "
                f"extension); give -o a .{_SUFFIXES.get(str(value), value)} name, or drop one"
            )
    if name == "input_fidelity" and job.kind != "edit":
        raise UsageError(
            f"{flag} says how closely an edit keeps its input images, and "
            f"{job.label} is a generation; drop {flag}"
        )
