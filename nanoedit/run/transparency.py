"""``--transparent``: which method a job gets its alpha channel by, and what it asks for.

- ``native``: the API draws the transparent background itself (OpenAI's GPT image models,
  ``background: transparent``); refused before sending where the API has no such setting.
- ``key``: the prompt asks for the subject on a flat key colour it does not use (green, or
  magenta when an edit's input is greener), and the colour is removed when the result is
  saved (:mod:`nanoedit.output.alpha`). One request, any model.
- ``matte``: the subject on white, then an edit of that render with the background made black
  (an edit of the first, not a second generation, so that the subject is the same and at the
  same place: alpha is their difference). Two paid requests per image.

``auto`` (``--transparent`` with no value) is native where the API has it, else key: key costs
one request, matte two, and the native alpha is the model's own.

The instructions are written here, once, and journaled in the job's prompt: resume sends
exactly what the first run did. Their wording is [I]: no transparent background is
documented for the nano-banana models on any API, so the colour is named both in words and
in hex, and the subject is told to use none of it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nanoedit.backends.base import BackendBase
from nanoedit.errors import UsageError
from nanoedit.jobs import TRANSPARENT_AUTO, Job

if TYPE_CHECKING:
    from nanoedit.output.alpha import KeyColour

KEY_INSTRUCTION = (
    "Place the subject on a solid, flat, uniform {name} ({hex}) background that fills the "
    "whole image, with no shadow, gradient, texture or reflection on it, and use no {name} "
    "anywhere in the subject."
)
WHITE_INSTRUCTION = (
    "Place the subject on a solid, flat, pure white (#FFFFFF) background that fills the "
    "whole image, with nothing else on it."
)
BLACK_INSTRUCTION = (
    "Replace only the white background with a solid, flat, pure black (#000000) background, "
    "and keep the subject exactly as it is, pixel for pixel, at the same place and size."
)
# Output names that cannot hold alpha.
OPAQUE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})


def with_instruction(prompt: str, instruction: str) -> str:
    """The user's prompt, ended as a sentence, then the method's instruction: the model (and
    the sandbox) read what to draw first and what to draw it on after."""
    base = prompt.rstrip()
    if not base.endswith((".", "!", "?")):
        base += "."
    return f"{base} {instruction}"


def black_prompt(prompt: str) -> str:
    """The matte's second request: the white render edited onto black. ``prompt`` is the
    job's own (the user's words and the white instruction), whose subject sentence is kept."""
    user = prompt.removesuffix(f" {WHITE_INSTRUCTION}")
    return f"{user} {BLACK_INSTRUCTION}"


def method_for(asked: str, backend: type[BackendBase], model: str) -> str:
    """The method a job gets: the one asked for, or for ``auto`` native where ``backend``
    draws transparency for ``model``, else key; native where it does not is refused."""
    native = backend.native_transparency(model)
    if asked == TRANSPARENT_AUTO:
        return "native" if native else "key"
    if asked == "native" and not native:
        raise UsageError(
            "--transparent-method native asks the API for a transparent background, and "
            f"{model} on the {backend.name} backend has none (only GPT image models on the "
            "openai backend do); use --transparent-method key or matte, which work on any model"
        )
    return asked


def transparent_job(job: Job, asked: str | None, backend: type[BackendBase], model: str) -> Job:
    """``job`` as ``--transparent`` (``asked``) makes it: its method, and its prompt with the
    method's instruction; refused (exit 2) before anything is sent when its output cannot
    hold alpha or the method cannot be had. Unchanged when ``asked`` is None."""
    if asked is None:
        return job
    output = job.output
    if output is not None and output.suffix.lower() in OPAQUE_SUFFIXES:
        raise UsageError(
            f"--transparent makes an image with an alpha channel, and -o {output} names a JPEG, "
            f"which has none; name it {output.with_suffix('.png').name} (or .webp)"
        )
    options = job.options
    if options.dials.format == "jpeg":
        raise UsageError(
            "--transparent makes an image with an alpha channel, and --format jpeg asks the API "
            "for JPEG, which has none; use --format png or webp, or leave --format out"
        )
    if job.mask is not None:
        raise UsageError(
            f"--transparent and --mask/--region ({job.mask.label}) do not go together: a masked "
            "edit keeps every "
            "pixel outside the mask as the input's, so there is no background to take out; "
            "leave out one of them"
        )
    method = method_for(asked, backend, model)
    if method == "matte" and options.count > 1:
        raise UsageError(
            f"--transparent-method matte edits each white render onto black, one image a job; "
            f"-n {options.count} asks for several: leave out -n, or use --transparent-method key"
        )
    if method == "native":
        prompt = options.prompt
    elif method == "key":
        key = _key_for(job)
        prompt = with_instruction(
            options.prompt, KEY_INSTRUCTION.format(name=key.name, hex=key.hex)
        )
    else:
        prompt = with_instruction(options.prompt, WHITE_INSTRUCTION)
    return replace(job, options=replace(options, prompt=prompt, transparent=method))


def _key_for(job: Job) -> KeyColour:
    """The key colour for a job: the one its first input uses least (a thumbnail's worth of
    it is read, a local file only), green for a generation or an input not read here."""
    # Pillow is loaded only for a --transparent-method key run: every other run plans without it.
    from nanoedit.output.alpha import choose_key

    if job.kind != "edit" or not job.images:
        return choose_key(None)
    source = job.images[0]
    if source.is_url or source.is_stdin:
        return choose_key(None)
    from PIL import Image

    try:
        with Image.open(Path(source.location)) as image:
            image.draft("RGB", (256, 256))  # JPEG decodes at a fraction of its size for free
            image.load()
            return choose_key(image)
    except (OSError, ValueError):
        # Unreadable here: the job's own read of it says what is wrong, before sending.
        return choose_key(None)
