"""What a body of the Interactions API's ``POST /v1beta/interactions`` says, checked as Google
checks it, with each mistake refused in Google's shape (``GoogleError``).

Wire facts ([P] Google's SDK google-genai 3.6.1, its ``CreateModelInteraction``,
``ImageResponseFormat``, ``GenerationConfig``, step and content types; [I] inferred, where
Google publishes no wording):

- [P] ``model`` is required; ``input`` is a string, one content block, a list of content
  blocks, or a list of steps (the history resent, ``user_input``, ``thought`` and
  ``model_output`` steps); the SDK itself sends a list of blocks as one ``user_input`` step.
- [P] Content blocks: ``{"type": "text", "text"}`` and ``{"type": "image", "data" (base64) or
  "uri", "mime_type"}``; a thought step carries a ``signature`` (base64) and a ``summary``.
- [P] ``response_format`` is one format or a list (``{"type": "image", "aspect_ratio",
  "image_size", "mime_type": "image/jpeg" (its only value), "delivery": "inline" | "uri"}``,
  ``{"type": "text"}``…); ``generation_config.image_config`` (``aspect_ratio``,
  ``image_size``) is the deprecated place of the same; ``generation_config.thinking_level`` is
  minimal, low, medium, high or xhigh.
- [I] A field the API does not have, a value of the wrong type or outside its choices is a
  400 INVALID_ARGUMENT in the words ``generateContent`` uses for the same mistake.
- [I] The sandbox serves ``stream: false`` only (Google streams server-sent events): a
  streamed request is refused with a 400 that says so; so is ``delivery: "uri"``.
- [I] Gemini 3 refuses a resent history whose model image has no thought signature before it
  (as ``generateContent`` refuses an image part without its ``thought_signature`` [S]), in the
  same words adapted to steps; a signature the server never gave is refused too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nanoedit.sandbox.catalog import Model
from nanoedit.sandbox.gemini_errors import GoogleError
from nanoedit.sandbox.gemini_request import IMAGE_TYPES, FileImage, InlineImage, decode_bytes
from nanoedit.sandbox.gemini_tiers import read_tier

# The fields of a model interaction's create body [P] (CreateModelInteraction, agents aside).
CREATE_FIELDS = frozenset(
    {
        "model", "input", "response_format", "generation_config", "previous_interaction_id",
        "store", "stream", "background", "service_tier", "system_instruction", "tools",
        "safety_settings", "labels", "response_modalities", "response_mime_type",
        "cached_content", "continuation_token", "webhook_config", "environment",
    }
)  # fmt: skip
GENERATION_FIELDS = frozenset(
    {
        "image_config", "max_output_tokens", "seed", "speech_config", "stop_sequences",
        "temperature", "thinking_level", "thinking_summaries", "tool_choice", "top_p",
        "transcription_config", "video_config",
    }
)  # fmt: skip
IMAGE_FORMAT_FIELDS = frozenset({"type", "aspect_ratio", "image_size", "mime_type", "delivery"})
IMAGE_CONFIG_FIELDS = frozenset({"aspect_ratio", "image_size"})
THINKING_LEVELS = ("minimal", "low", "medium", "high", "xhigh")
THINKING_SUMMARIES = ("auto", "none")
# [P] The one MIME type an image response format takes.
FORMAT_MIME = "image/jpeg"
DELIVERIES = ("inline", "uri")
FORMAT_TYPES = ("text", "image", "audio", "video")
STEP_TYPES = frozenset({"user_input", "thought", "model_output"})
# Every step type the API has [P]; the sandbox's image models take the three above.
OTHER_STEP_TYPES = frozenset(
    {
        "function_call", "function_result", "code_execution_call", "code_execution_result",
        "url_context_call", "url_context_result", "google_search_call", "google_search_result",
        "mcp_server_tool_call", "mcp_server_tool_result", "file_search_call",
        "file_search_result", "google_maps_call", "google_maps_result",
    }
)  # fmt: skip
BLOCK_TYPES = ("text", "image", "document", "audio", "video")
# "files/ID", as the Files API names a file, or its whole URI.
FILE_NAME = re.compile(r"files/[a-z0-9-]+")
# [S] generateContent's words for a model image resent without its signature, and where to
# read about it; [I] the same adapted to steps.
SIGNATURE_DOCS = "https://ai.google.dev/gemini-api/docs/thought-signatures#model-behavior"


@dataclass(frozen=True)
class Format:
    """What the answer is asked to hold: an image (of a ratio and size, None: the model's
    choice), and words."""

    image: bool = True
    ratio: str | None = None
    size: str | None = None
    summaries: bool = True
    text: bool = True
    """Words beside the image: ``response_modalities`` without ``text`` asks for none."""
    seed: int | None = None
    search: bool = False


@dataclass(frozen=True)
class CreateRequest:
    """A create body, checked: the model, the input as steps (a plain input made one
    ``user_input`` step, as the SDK sends it), what is asked of the answer, and how the
    interaction is kept."""

    model: Model
    steps: tuple[dict[str, Any], ...]
    format: Format
    store: bool
    background: bool
    previous_id: str | None
    tier: str = "standard"
    """The service tier asked for (``service_tier``; see ``gemini_tiers``)."""


@dataclass(frozen=True)
class Conversation:
    """A conversation read from its steps (the earlier interactions' and this input's): the
    prompt of its last user turn and the images that turn adds, the prompts of the turns
    before it, the last image before that turn (the one a continued edit works on), and how
    many images the user sent in all."""

    prompt: str
    added: tuple[InlineImage | FileImage, ...]
    earlier: tuple[str, ...]
    last_image: InlineImage | FileImage | None
    user_images: int
    images: int
    """Every image of the conversation, the model's own among them (each is read)."""


def _invalid(where: str, value: object, kind: str = "TYPE_STRING") -> GoogleError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return GoogleError(400, f"Invalid value at '{where}' ({kind}), {shown}")


def _unknown(name: str, where: str) -> GoogleError:
    at = f" at '{where}'" if where else ""
    return GoogleError(
        400, f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
    )


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise GoogleError(
            400, f"Invalid JSON payload received. '{where}' must be an object, got {value!r}."
        )
    return value


def _bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _invalid(name, value, "TYPE_BOOL")
    return value


def read_create(
    body: object, models: Mapping[str, Model], missing: Callable[[str], GoogleError]
) -> CreateRequest:
    """Check a create body; the model is looked up in ``models`` (``missing`` makes the 404
    of an id not there). GoogleError says what is wrong, in the order Google's front end and
    then the model check it."""
    if not isinstance(body, dict):
        raise GoogleError(400, "Invalid JSON payload received. Unexpected token.")
    for name in body:
        if name not in CREATE_FIELDS:
            raise _unknown(name, "")
    raw_model = body.get("model")
    if raw_model is None or raw_model == "":
        raise GoogleError(400, "* CreateInteractionRequest.model: model is not specified")
    if not isinstance(raw_model, str):
        raise _invalid("model", raw_model)
    model_id = raw_model.removeprefix("models/")
    if _bool(body, "stream", False):
        raise GoogleError(
            400,
            "* CreateInteractionRequest.stream: the nanoedit sandbox answers stream: false only "
            "(Google streams server-sent events); send stream: false",
        )
    store = _bool(body, "store", True)
    background = _bool(body, "background", False)
    tier = read_tier(body, None, "service_tier")
    previous = body.get("previous_interaction_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise _invalid("previous_interaction_id", previous)
    if "input" not in body or body["input"] in (None, "", []):
        raise GoogleError(400, "* CreateInteractionRequest.input: input is not specified")
    steps = input_steps(body["input"])
    model = models.get(model_id)
    if model is None:
        raise missing(model_id)
    generation = _object(body.get("generation_config") or {}, "generation_config")
    return CreateRequest(
        model, steps, _format(body, generation, model), store, background, previous, tier
    )


def input_steps(value: object) -> tuple[dict[str, Any], ...]:
    """The input as steps: a string, a block or a list of blocks is one ``user_input`` step;
    a list of steps is itself. Each step and block is checked."""
    if isinstance(value, str):
        value = [{"type": "text", "text": value}]
    elif isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise _invalid("input", value, "TYPE_MESSAGE")
    kinds = [item.get("type") if isinstance(item, dict) else None for item in value]
    as_steps = [kind in STEP_TYPES or kind in OTHER_STEP_TYPES for kind in kinds]
    if any(as_steps) and not all(as_steps):
        raise GoogleError(
            400,
            "* CreateInteractionRequest.input: a list of steps and a list of content blocks "
            "cannot be mixed; send one or the other",
        )
    steps = value if all(as_steps) else [{"type": "user_input", "content": value}]
    for index, step in enumerate(steps):
        _check_step(step, f"input[{index}]")
    return tuple(steps)


def _check_step(step: dict[str, Any], where: str) -> None:
    kind = step.get("type")
    if kind in OTHER_STEP_TYPES:
        raise GoogleError(
            400, f"* CreateInteractionRequest.{where}: a {kind} step answers a tool call, and "
            "no tool was declared",
        )  # fmt: skip
    if kind == "thought":
        signature = step.get("signature")
        if signature is not None and not isinstance(signature, str):
            raise _invalid(f"{where}.signature", signature, "TYPE_BYTES")
        return
    content = step.get("content")
    if kind == "user_input" and not content:
        raise GoogleError(
            400, f"* CreateInteractionRequest.{where}.content: content must not be empty."
        )
    if content is not None and not isinstance(content, list):
        raise _invalid(f"{where}.content", content, "TYPE_MESSAGE")
    for index, block in enumerate(content or []):
        read_block(_object(block, f"{where}.content[{index}]"), f"{where}.content[{index}]")


def read_block(block: Mapping[str, Any], where: str) -> InlineImage | FileImage | str:
    """A content block: its text, or the image it holds (bytes or a file's URI)."""
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise _invalid(f"{where}.text", text)
        return text
    if kind != "image":
        if kind in BLOCK_TYPES:
            raise GoogleError(400, f"* CreateInteractionRequest.{where}: {kind} input is not "
                              "supported by image models")  # fmt: skip
        raise _invalid(f"{where}.type", kind)
    mime = block.get("mime_type")
    data, uri = block.get("data"), block.get("uri")
    if (data is None) == (uri is None):
        raise GoogleError(
            400, f"* CreateInteractionRequest.{where}: an image block holds data or a uri, "
            "one of them",
        )  # fmt: skip
    if mime is not None and (not isinstance(mime, str) or mime not in IMAGE_TYPES):
        raise GoogleError(400, f"Unsupported MIME type: {mime}")
    if uri is not None:
        if not isinstance(uri, str) or not uri:
            raise _invalid(f"{where}.uri", uri)
        # A file's name ("files/ID") is its URI on the API's own host.
        return FileImage(f"/v1beta/{uri}" if FILE_NAME.fullmatch(uri) else uri)
    if mime is None:
        raise GoogleError(
            400, f"* CreateInteractionRequest.{where}.mime_type: mime_type is not specified"
        )
    if not isinstance(data, str):
        raise _invalid(f"{where}.data", data, "TYPE_BYTES")
    return InlineImage(mime, decode_bytes(data, f"{where}.data"))


def _format(body: Mapping[str, Any], generation: Mapping[str, Any], model: Model) -> Format:
    """What the answer is asked for: the response format (or the deprecated image config)."""
    for name in generation:
        if name not in GENERATION_FIELDS:
            raise _unknown(name, "generation_config")
    level = generation.get("thinking_level")
    if level is not None and level not in THINKING_LEVELS:
        raise _invalid("generation_config.thinking_level", level, "ThinkingLevel")
    if level is not None and level.upper() not in model.thinking_levels:
        # [I] as generateContent says it (gemini_request._thinking).
        takes = ", ".join(item.lower() for item in model.thinking_levels) or "none"
        raise GoogleError(
            400,
            f"* CreateInteractionRequest.generation_config.thinking_level: {level} is not "
            f"supported by {model.id}; supported levels: {takes}",
        )
    seed = generation.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise _invalid("generation_config.seed", seed, "TYPE_INT32")
    search = _search_tool(body.get("tools"), model)
    summaries = generation.get("thinking_summaries")
    if summaries is not None and summaries not in THINKING_SUMMARIES:
        raise _invalid("generation_config.thinking_summaries", summaries, "ThinkingSummaries")
    config = _object(generation.get("image_config") or {}, "generation_config.image_config")
    for name in config:
        if name not in IMAGE_CONFIG_FIELDS:
            raise _unknown(name, "generation_config.image_config")
    ratio = config.get("aspect_ratio")
    size = config.get("image_size")
    image = True
    given = body.get("response_format")
    if given is not None:
        formats = given if isinstance(given, list) else [given]
        image = False
        for index, raw in enumerate(formats):
            where = f"response_format[{index}]" if isinstance(given, list) else "response_format"
            found = _object(raw, where)
            kind = found.get("type")
            if kind not in FORMAT_TYPES:
                raise _invalid(f"{where}.type", kind)
            if kind in ("audio", "video"):
                raise GoogleError(
                    400, f"* CreateInteractionRequest.{where}: {model.id} does not output {kind}"
                )
            if kind == "image":
                image = True
                ratio, size = _image_format(found, where, ratio, size)
    modalities = body.get("response_modalities")
    text = True
    if isinstance(modalities, list) and modalities:
        named = {str(item).lower() for item in modalities}
        text = "text" in named
        if given is None:
            image = "image" in named
    for name, value, allowed in (
        ("aspect_ratio", ratio, model.ratios), ("image_size", size, model.sizes)
    ):  # fmt: skip
        if value is None:
            continue
        if not isinstance(value, str):
            raise _invalid(f"response_format.{name}", value)
        if value not in allowed:
            raise GoogleError(
                400,
                f"* CreateInteractionRequest.response_format.{name}: {value!r} is not "
                f"supported by {model.id}; use one of {', '.join(allowed)}",
            )
    return Format(image, ratio, size, summaries != "none", text, seed, search)


def _search_tool(value: object, model: Model) -> bool:
    """Whether ``tools`` holds ``{"type": "google_search"}`` ([P] the interactions ``Tool``
    union); the image models take no other tool, and search only where they have it."""
    if value is None:
        return False
    if not isinstance(value, list):
        raise _invalid("tools", value, "TYPE_LIST")
    search = False
    for index, raw in enumerate(value):
        tool = _object(raw, f"tools[{index}]")
        kind = tool.get("type")
        if kind != "google_search":
            # [I] The image models take no other tool.
            raise GoogleError(
                400,
                f"* CreateInteractionRequest.tools[{index}]: {kind!r} is not supported "
                f"by {model.id}",
            )
        search = True
    if search and not model.searches:
        raise GoogleError(400, "Search Grounding is not supported.")
    return search


def _image_format(
    found: Mapping[str, Any], where: str, ratio: object, size: object
) -> tuple[object, object]:
    """An image response format's ratio and size (over the image config's), its other
    fields checked."""
    for name in found:
        if name not in IMAGE_FORMAT_FIELDS:
            raise _unknown(name, where)
    mime = found.get("mime_type")
    if mime is not None and mime != FORMAT_MIME:
        raise _invalid(f"{where}.mime_type", mime, "ImageResponseFormatMimeType")
    delivery = found.get("delivery")
    if delivery is not None and delivery not in DELIVERIES:
        raise _invalid(f"{where}.delivery", delivery, "ImageResponseFormatDelivery")
    if delivery == "uri":
        raise GoogleError(
            400,
            f"* CreateInteractionRequest.{where}.delivery: the nanoedit sandbox delivers "
            'images inline only; send delivery "inline", or leave it out',
        )
    return found.get("aspect_ratio", ratio), found.get("image_size", size)


def check_signatures(steps: tuple[dict[str, Any], ...], signed: Callable[[str], bool]) -> None:
    """Refuse a resent model image without a thought signature before it in its turn, or
    with one the server never gave (``signed`` says whether it did)."""
    since_user = False  # whether a signed thought step came since the last user turn
    for index, step in enumerate(steps):
        kind = step.get("type")
        if kind == "user_input":
            since_user = False
        elif kind == "thought":
            signature = step.get("signature")
            if isinstance(signature, str) and signature:
                if not signed(signature):
                    raise GoogleError(
                        400,
                        f"Thought signature is not valid in input step position {index + 1}. "
                        f"Please refer to {SIGNATURE_DOCS} for more details.",
                    )
                since_user = True
        elif kind == "model_output" and not since_user:
            for part, block in enumerate(step.get("content") or []):
                if isinstance(block, dict) and block.get("type") == "image":
                    raise GoogleError(
                        400,
                        "Image part is missing a thought_signature in input step position "
                        f"{index + 1}, content position {part + 1}. Please refer to "
                        f"{SIGNATURE_DOCS} for more details.",
                    )


def conversation_of(steps: list[dict[str, Any]]) -> Conversation:
    """The conversation its steps (checked) make: the last user turn is the one to answer."""
    turns = [index for index, step in enumerate(steps) if step.get("type") == "user_input"]
    if not turns or turns[-1] != len(steps) - 1:
        raise GoogleError(
            400,
            "* CreateInteractionRequest.input: the input must end with a user_input step, the "
            "turn to answer",
        )
    last = turns[-1]
    earlier: list[str] = []
    last_image: InlineImage | FileImage | None = None
    user_images = seen = 0
    for index, step in enumerate(steps[:last]):
        texts, images = _blocks(step, f"input[{index}]")
        if step.get("type") == "user_input":
            earlier.append(" ".join(texts))
            user_images += len(images)
        seen += len(images)
        if images:
            last_image = images[-1]
    texts, added = _blocks(steps[last], f"input[{last}]")
    return Conversation(
        " ".join(texts),
        tuple(added),
        tuple(earlier),
        last_image,
        user_images + len(added),
        seen + len(added),
    )


def _blocks(step: Mapping[str, Any], where: str) -> tuple[list[str], list[InlineImage | FileImage]]:
    """A step's texts and images (a thought step has none that count)."""
    texts: list[str] = []
    images: list[InlineImage | FileImage] = []
    if step.get("type") == "thought":
        return texts, images
    for index, block in enumerate(step.get("content") or []):
        read = read_block(block, f"{where}.content[{index}]")
        if isinstance(read, str):
            texts.append(read)
        else:
            images.append(read)
    return texts, images
