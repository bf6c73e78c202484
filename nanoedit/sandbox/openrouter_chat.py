"""How the OpenRouter emulation reads a chat completion's ``messages``: the last user message
(the prompt and its images), the conversation before it (earlier user messages, and assistant
messages with the images the model made and the ``reasoning_details`` it gave with them), and
the thought signatures Gemini 3 hands out with an image and wants back with it.

Wire facts:

- [P] OpenRouter's SDK types one assistant message "for requests and responses" with
  ``content``, ``images`` (``[{"image_url": {"url": …}}]``, "generated images from image
  generation models") and ``reasoning_details`` (``reasoning.summary``, ``reasoning.text`` or
  ``reasoning.encrypted`` with its ``data``, ``format``, ``index``): so a history sends the
  model's image back in the assistant message that made it.
- [S] Gemini's answers through OpenRouter carry their thought signature as a
  ``{"type": "reasoning.encrypted", "data": SIGNATURE, "format": "google-gemini-v1",
  "index": 0}`` entry of ``reasoning_details`` (answers quoted in client projects' tests).
- [S] A history whose Gemini 3 turn lacks them is refused with HTTP 400 ``Provider returned
  error`` and ``metadata.raw`` = "Gemini models require OpenRouter reasoning details to be
  preserved in each request. Please refer to our docs: …#preserving-reasoning-blocks. Upstream
  error: " and Google's own error JSON; an altered signature with ``raw`` = Google's error JSON
  alone, message "Corrupted thought signature." (both from issue threads quoting OpenRouter).
- [I] One ``reasoning.encrypted`` entry per image, in the images' order; the signature is
  checked on images only (Gemini 3 image models sign each image part); OpenRouter turns an
  assistant message into the parts of its content (text first) then its images, which gives
  the part position Google names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from nanoedit.sandbox.fetch import FetchError
from nanoedit.sandbox.render import decode

PROVIDER = "Google AI Studio"
REASONING_FORMAT = "google-gemini-v1"
ENCRYPTED = "reasoning.encrypted"
PRESERVING_DOCS = (
    "https://openrouter.ai/docs/guides/best-practices/reasoning-tokens#preserving-reasoning-blocks"
)
SIGNATURES_DOCS = "https://ai.google.dev/gemini-api/docs/thought-signatures#model-behavior"
# Signatures are made with a fixed key, so that a thread goes on in another sandbox (each
# ``--sandbox`` run is a process of its own): what they prove is that this emulation made them
# and nobody changed them, as Google's are opaque and checked by Google alone.
SIGNATURE_KEY = b"nanoedit sandbox: Gemini thought signatures through OpenRouter"
NONCE_BYTES = 16
TAG_BYTES = 16
# The message roles that are no part of Gemini's ``contents`` (OpenRouter sends them as the
# system instruction), so that they count in no content position.
SYSTEM_ROLES = frozenset({"system", "developer"})

Fetch = Callable[[str], bytes]
"""The bytes behind an http(s) image URL, or FetchError/OSError."""


class Refused(Exception):
    """A request OpenRouter turns down: its status and the ``error`` object's fields."""

    def __init__(
        self, status: int, message: str, metadata: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.metadata = dict(metadata or {})


@dataclass(frozen=True)
class Conversation:
    """What the model is asked, read out of ``messages``."""

    prompt: str
    """The last user message's text."""
    images: list[Image.Image]
    """What the model works on: the latest image of the earlier turns (a continued chat edits
    what it made last), then the last user message's images."""
    earlier: tuple[str, ...]
    """The prompt of each turn the model answered before the last user message (the text of
    the user message before each assistant message), as the renderer's ``earlier`` takes it."""
    texts: list[str] = field(default_factory=list)
    """Every text of the messages up to the last user message, for the token count."""
    seen: int = 0
    """How many images those messages carry, for the token count."""
    upstream: Refused | None = None
    """What Google refuses in the history (a signature missing or altered), said by the
    provider once OpenRouter's own checks have passed."""


def sign(image: bytes) -> str:
    """A thought signature for an image the emulation made: a nonce taken from the image (so
    the same answer has the same bytes) and a MAC of it, in base64."""
    nonce = hashlib.sha256(image).digest()[:NONCE_BYTES]
    tag = hmac.new(SIGNATURE_KEY, nonce, hashlib.sha256).digest()[:TAG_BYTES]
    return base64.b64encode(nonce + tag).decode()


def signature_ok(value: object) -> bool:
    """Whether ``value`` is a signature :func:`sign` made, unchanged."""
    if not isinstance(value, str):
        return False
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) != NONCE_BYTES + TAG_BYTES:
        return False
    nonce, tag = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
    expected = hmac.new(SIGNATURE_KEY, nonce, hashlib.sha256).digest()[:TAG_BYTES]
    return hmac.compare_digest(tag, expected)


def reasoning_details(images: list[bytes]) -> list[dict[str, Any]]:
    """The ``reasoning_details`` of an answer with these images: each image's signature."""
    return [
        {"type": ENCRYPTED, "data": sign(image), "format": REASONING_FORMAT, "index": 0}
        for image in images
    ]


def google_error(message: str) -> str:
    """Google's error JSON as OpenRouter quotes it in ``metadata.raw``: indented by two."""
    body = {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
    return json.dumps(body, indent=2) + "\n"


def provider_error(raw: str) -> Refused:
    """OpenRouter passing on the provider's 400."""
    return Refused(400, "Provider returned error", {"raw": raw, "provider_name": PROVIDER})


def missing_signature(content: int, part: int) -> Refused:
    """The refusal of a history whose model image at ``content``, ``part`` (1-based) has no
    signature: Google's words behind OpenRouter's advice."""
    said = google_error(
        f"Image part is missing a thought_signature in content position {content}, part "
        f"position {part}. Please refer to {SIGNATURES_DOCS} for more details."
    )
    return provider_error(
        "Gemini models require OpenRouter reasoning details to be preserved in each request. "
        f"Please refer to our docs: {PRESERVING_DOCS}. Upstream error: {said}"
    )


def invalid_prompt(message: str) -> Refused:
    """A request whose messages are not what the API takes."""
    return Refused(400, message, {"error_type": "invalid_prompt"})


def read_conversation(
    messages: object, model_id: str, max_images: int, fetch: Fetch
) -> Conversation:
    """The conversation ``messages`` hold, checked in the order OpenRouter checks: the shape of
    every message up to the last user one and its images; what Google would refuse of the
    history is kept in :attr:`Conversation.upstream`."""
    if not isinstance(messages, list) or not messages:
        raise invalid_prompt("messages must be a non-empty array")
    users = [n for n, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise invalid_prompt("messages need a user message")
    last = users[-1]
    texts: list[str] = []
    earlier: list[str] = []
    asked = ""
    latest: Image.Image | None = None
    seen = position = 0
    upstream: Refused | None = None
    for number, message in enumerate(messages[:last]):
        if not isinstance(message, dict) or message.get("role") in SYSTEM_ROLES:
            continue
        position += 1
        where = f"messages[{number}]"
        said, images = _parts(message.get("content"), f"{where}.content", fetch, optional=True)
        texts += said
        if message.get("role") == "assistant":
            made = _assistant_images(message.get("images"), where, fetch)
            problem = _unsigned(message, len(made), position, _part_count(message))
            upstream = upstream or problem
            images += made
            earlier.append(asked)
        else:
            asked = " ".join(said)
        seen += len(images)
        latest = images[-1] if images else latest
    said, images = _parts(messages[last].get("content"), "content", fetch, optional=False)
    if len(images) > max_images:
        raise Refused(
            400, f"{model_id} takes at most {max_images} images, got {len(images)}",
            {"error_type": "invalid_request", "provider_name": PROVIDER},
        )  # fmt: skip
    texts += said
    working = [latest, *images] if latest is not None else images
    return Conversation(
        "\n".join(said), working, tuple(earlier), texts, seen + len(images), upstream
    )


def _part_count(message: Mapping[str, Any]) -> int:
    """How many parts an assistant message's content becomes before its images: a text, or
    each part of a list, or none."""
    content = message.get("content")
    if isinstance(content, str):
        return 1 if content else 0
    return len(content) if isinstance(content, list) else 0


def _unsigned(message: Mapping[str, Any], images: int, position: int, parts: int) -> Refused | None:
    """What Google says of an assistant message's images without their signatures (or with
    ones altered), or None when each has its own."""
    details = message.get("reasoning_details")
    signed = [
        entry.get("data")
        for entry in (details if isinstance(details, list) else [])
        if isinstance(entry, dict) and entry.get("type") == ENCRYPTED
    ]
    for number in range(images):
        if number >= len(signed) or not signed[number]:
            return missing_signature(position, parts + number + 1)
        if not signature_ok(signed[number]):
            return provider_error(google_error("Corrupted thought signature."))
    return None


def _assistant_images(listed: object, where: str, fetch: Fetch) -> list[Image.Image]:
    """The images an assistant message of the history carries (what the model made then)."""
    if listed is None:
        return []
    if not isinstance(listed, list):
        raise invalid_prompt(f"{where}.images must be an array of image_url objects")
    images = []
    for index, item in enumerate(listed):
        url = item.get("image_url") if isinstance(item, dict) else None
        url = url.get("url") if isinstance(url, dict) else None
        if not isinstance(url, str):
            raise invalid_prompt(f"{where}.images[{index}].image_url.url must be a string")
        images.append(_image(url, f"{where}.images[{index}]", fetch))
    return images


def _parts(
    content: object, where: str, fetch: Fetch, *, optional: bool
) -> tuple[list[str], list[Image.Image]]:
    """The texts and images of one message's ``content`` (an assistant's may be empty)."""
    if isinstance(content, str):
        return [content], []
    if optional and content is None:
        return [], []
    if not isinstance(content, list) or not content:
        raise invalid_prompt("content must be a string or a non-empty array of parts")
    texts: list[str] = []
    images: list[Image.Image] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url" and isinstance(part.get("image_url"), dict):
            url = part["image_url"].get("url")
            if not isinstance(url, str):
                raise invalid_prompt(f"{where}[{index}].image_url.url must be a string")
            images.append(_image(url, f"{where}[{index}]", fetch))
        else:
            raise invalid_prompt(f"{where}[{index}] is not a text or image_url part")
    return texts, images


def _image(url: str, where: str, fetch: Fetch) -> Image.Image:
    """One image of a message, from its data: URI or its URL, decoded."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if ";base64" not in header:
            raise Refused(400, f"{where}: the data URI is not base64",
                          {"error_type": "invalid_image"})  # fmt: skip
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise Refused(400, f"{where}: the data URI's base64 does not decode",
                          {"error_type": "invalid_image"}) from None  # fmt: skip
    elif url.startswith(("http://", "https://")):
        try:
            data = fetch(url)
        except (FetchError, OSError) as exc:
            raise Refused(400, f"{where}: could not download {url}: {exc}",
                          {"error_type": "image_download_failed"}) from None  # fmt: skip
    else:
        raise Refused(400, f"{where}: the image URL must be http(s) or a data: URI",
                      {"error_type": "invalid_image"})  # fmt: skip
    try:
        return decode(data)
    except ValueError as exc:
        raise Refused(400, f"{where} is {exc}; send PNG, JPEG or WebP",
                      {"error_type": "invalid_image"}) from None  # fmt: skip
