"""A conversation on ``generateContent``: what a ``--continue`` turn sends before its own user
content, and what an answer keeps for the turn after it.

[P] generateContent keeps no state: a conversation is its history resent in ``contents``, the
user's turns and the model's, the model's parts exactly as they came, each with its
``thoughtSignature``. Gemini 3 image models sign the first part after their thoughts and
every image they return, and refuse a history whose image part lacks its signature (400
INVALID_ARGUMENT; docs image-generation#thought-signatures). Thought parts are not sent back.

The journal keeps the parts with each image's base64 replaced by ``{"nanoedit_result": N}``,
the result it was saved as (see :data:`nanoedit.jobs.Exchange`); the image goes back as the
saved result's bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nanoedit.jobs import Exchange, PastTurn

EXCHANGE_API = "generate_content"
"""What a generateContent exchange is called in the journal."""
RESULT_KEY = "nanoedit_result"
"""The key that stands, in a kept part, for the result an image was saved as."""

Turn = tuple[PastTurn, list[dict[str, Any]], dict[str, Any]]
"""An earlier turn as a request sends it: the turn, the image parts the user sent with it,
and its result's image part (its data base64, or a dry run's placeholder)."""


def kept_part(part: Mapping[str, Any], inline: Mapping[str, Any], number: int) -> dict[str, Any]:
    """An image part of an answer as the journal keeps it: every field as received (its
    ``thoughtSignature`` above all), the bytes replaced by the result number ``number``."""
    mime = inline.get("mimeType") or inline.get("mime_type") or "image/png"
    kept = {name: value for name, value in part.items() if name not in ("inline_data",)}
    return {**kept, "inlineData": {"mimeType": mime, "data": {RESULT_KEY: number}}}


def exchange_of(parts: list[dict[str, Any]], numbers: list[int]) -> Exchange:
    """One request's exchange: the model's kept parts, and the results its images became."""
    return {"api": EXCHANGE_API, "images": numbers, "model": parts}


def history_contents(backend: str, turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """The contents of a thread's earlier turns, oldest first, for ``backend``: each turn as
    a user content (its prompt, then the images the user sent with it), then the model's
    content as it answered, signatures and all, its image the saved result. A turn whose
    answer was not kept, or was another backend's (its signatures are not this one's),
    goes as a user content that holds its result too."""
    contents: list[dict[str, Any]] = []
    for turn, inputs, image in turns:
        parts: list[dict[str, Any]] = [{"text": turn.prompt}, *inputs]
        model = model_parts(backend, turn, image)
        if model is None:
            contents.append({"role": "user", "parts": [*parts, image]})
        else:
            contents += [{"role": "user", "parts": parts}, {"role": "model", "parts": model}]
    return contents


def model_parts(backend: str, turn: PastTurn, image: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The model's parts of a turn as the API gave them, the image's data put back from
    ``image`` (the saved result's part); None when the turn kept no answer ``backend`` can
    resend."""
    exchange = turn.exchange
    if exchange is None or exchange.get("api") != EXCHANGE_API or turn.backend != backend:
        return None
    parts = exchange.get("model")
    if not isinstance(parts, list):
        return None
    restored = []
    for part in parts:
        inline = part.get("inlineData") if isinstance(part, dict) else None
        data = inline.get("data") if isinstance(inline, dict) else None
        if isinstance(inline, dict) and isinstance(data, dict):
            if data.get(RESULT_KEY) != turn.result:
                # [I] Another image of the same request, which the thread does not go on
                # from: one generateContent request makes one image, so this does not come.
                continue
            part = {**part, "inlineData": {**inline, "data": image["inlineData"]["data"]}}
        restored.append(part)
    return restored
