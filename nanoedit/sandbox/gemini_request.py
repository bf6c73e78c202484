"""What a Gemini ``generateContent`` body says, checked as Google checks it: the prompt, the
image parts (``inlineData`` bytes or ``fileData`` references), the answer's modalities and the
image config, with each mistake refused in Google's words (``GoogleError``).

Fields are read in camelCase or snake_case, as Google's proto-JSON parser does (the SDK sends a
mix: ``inlineData`` holding ``mime_type``). Nothing here depends on the route a body came by,
so every emulation of a Google API that takes this body reads it here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nanoedit.sandbox.catalog import Family, Model
from nanoedit.sandbox.gemini_errors import GoogleError
from nanoedit.sandbox.gemini_tiers import read_tier
from nanoedit.sandbox.wire import ReceivedRequest

# Input image types the image models take; the sandbox itself draws from PNG, JPEG and WebP.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
MAX_INPUT_IMAGES = {
    Family.FLASH: 3, Family.PRO: 14, Family.FLASH_3: 14, Family.FLASH_21: 14, Family.LITE: 14
}  # fmt: skip
MODALITIES = ("TEXT", "IMAGE")
IMAGE_CONFIG_FIELDS = frozenset({"aspectRatio", "aspect_ratio", "imageSize", "image_size"})


def _both_cases(*camel: str) -> frozenset[str]:
    """Each camelCase name and its snake_case twin, as Google's proto-JSON parser takes both."""
    snake = ("".join("_" + c.lower() if c.isupper() else c for c in name) for name in camel)
    return frozenset((*camel, *snake))


# [P] GenerationConfig's fields (google-genai types.py, the REST reference).
GENERATION_FIELDS = _both_cases(
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
    "responseModalities", "candidateCount", "maxOutputTokens", "temperature", "topP", "topK",
    "seed", "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs",
    "enableEnhancedCivicAnswers", "speechConfig", "thinkingConfig", "imageConfig",
    "mediaResolution",
)  # fmt: skip
THINKING_FIELDS = _both_cases("includeThoughts", "thinkingBudget", "thinkingLevel")
# [P] ThinkingConfig.thinking_level's enum.
THINKING_ENUM = ("THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH")
# [P] Tool's fields; the image models take google_search alone of them ([I] the others are
# refused as the search is where a model lacks it).
TOOL_FIELDS = _both_cases(
    "functionDeclarations", "retrieval", "googleSearchRetrieval", "codeExecution",
    "googleSearch", "computerUse", "fileSearch", "googleMaps", "urlContext", "mcpServers",
)  # fmt: skip
SEARCH_TOOL = ("googleSearch", "google_search")
INT32 = 2**31


@dataclass(frozen=True)
class InlineImage:
    """An ``inlineData`` part: the image bytes sent in the request."""

    mime: str
    data: bytes


@dataclass(frozen=True)
class FileImage:
    """A ``fileData`` part: an uploaded file (or a URL) the request refers to."""

    uri: str


@dataclass(frozen=True)
class SignedImage:
    """An image of the model's own in a request's history, with the thought signature it
    came back with; ``content`` and ``part`` are its 1-based positions, as Google names them."""

    image: InlineImage | FileImage
    signature: bytes
    content: int
    part: int


@dataclass(frozen=True)
class Request:
    """A ``generateContent`` body, checked.

    A body of several contents is a conversation: ``prompt`` is its last content's text,
    ``images`` the image it goes on from (the last one before that content, the model's
    own or one the user sent) and then that content's images; ``context`` holds the
    earlier contents' texts, ``earlier`` the prompt of each earlier turn the model
    answered, and ``signed`` the model's images with their signatures, to be checked.
    """

    prompt: str
    images: tuple[InlineImage | FileImage, ...]
    modalities: frozenset[str]
    ratio: str | None
    size: str | None
    seed: int | None = None
    thinking: str | None = None
    search: bool = False
    mime: str | None = None
    """The format the answer is asked in, where the API has such a field (Vertex)."""
    context: tuple[str, ...] = ()
    earlier: tuple[str, ...] = ()
    signed: tuple[SignedImage, ...] = ()
    tier: str = "standard"
    """The service tier asked for (``serviceTier``; see ``gemini_tiers``)."""


# [S] Google's words (issue threads) for a history whose image part of the model's lacks its
# signature, positions 1-based.
MISSING_SIGNATURE = (
    "Image part is missing a thought_signature in content position {content}, part position "
    "{part}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures#"
    "model-behavior for more details."
)


def proto_field(values: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A field by either of its names (None when absent)."""
    value = values.get(camel)
    return values.get(snake) if value is None else value


def json_body(received: ReceivedRequest) -> object:
    """A request's JSON body; GoogleError when it came but is not JSON."""
    if received.body_error is not None and received.json is None:
        raise GoogleError(400, "Invalid JSON payload received. Unexpected token.")
    return received.json


def _unknown_field(name: str, where: str) -> GoogleError:
    message = (
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field."
    )
    violation = {"field": where, "description": message}
    details: list[dict[str, object]] = [
        {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
    ]
    return GoogleError(400, message, details)


def proto_object(value: object, where: str) -> Mapping[str, Any]:
    """``value`` as a JSON object; GoogleError when it is none (``where`` names the field)."""
    if not isinstance(value, dict):
        raise GoogleError(
            400, f"Invalid JSON payload received. '{where}' must be an object, got {value!r}."
        )
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise GoogleError(400, f"Invalid value at '{where}' (TYPE_STRING), {_shown(value)}")
    return value


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_request(body: object, model: Model) -> Request:
    """Check a ``generateContent`` body for ``model``; GoogleError says what is wrong, in the
    order Google's front end and then the model check it."""
    if not isinstance(body, dict):
        raise GoogleError(400, "Invalid JSON payload received. Unexpected token.")
    contents = body.get("contents")
    if not contents:
        raise GoogleError(400, "* GenerateContentRequest.contents: contents is not specified")
    if not isinstance(contents, list):
        contents = [contents]
    history = _History(signs=model.family is not Family.FLASH)
    texts: list[str] = []
    images: list[InlineImage | FileImage] = []
    for turn_index, raw_turn in enumerate(contents):
        turn = proto_object(raw_turn, f"contents[{turn_index}]")
        parts = turn.get("parts")
        if not parts or not isinstance(parts, list):
            raise GoogleError(
                400,
                f"* GenerateContentRequest.contents[{turn_index}].parts: contents.parts must "
                "not be empty.",
            )
        if turn.get("role", "user") == "model":
            history.model_turn(turn_index, parts)
            continue
        if turn_index < len(contents) - 1:
            history.user_turn(turn_index, parts)
            continue
        for part_index, raw_part in enumerate(parts):
            where = f"contents[{turn_index}].parts[{part_index}]"
            _read_part(proto_object(raw_part, where), where, texts, images)
    # A conversation goes on from its last image before the last content.
    if history.last_image is not None:
        images.insert(0, history.last_image)
    store = body.get("store")
    if store is not None and not isinstance(store, bool):
        # [P] generateContent's ``store`` (2026-10-26): whether Google keeps the request; a
        # boolean, taken and of no effect here.
        raise GoogleError(400, f"Invalid value at 'store' (TYPE_BOOL), {_shown(store)}")
    tier = read_tier(body, "serviceTier", "service_tier")
    config = proto_object(
        proto_field(body, "generationConfig", "generation_config") or {}, "generation_config"
    )
    for name in config:
        if name not in GENERATION_FIELDS:
            raise _unknown_field(name, "generation_config")
    modalities = _modalities(proto_field(config, "responseModalities", "response_modalities"))
    seed = _seed(proto_field(config, "seed", "seed"))
    thinking = _thinking(proto_field(config, "thinkingConfig", "thinking_config"), model)
    search = _search(proto_field(body, "tools", "tools"), model)
    candidates = proto_field(config, "candidateCount", "candidate_count")
    if candidates is not None and candidates != 1:
        raise GoogleError(400, f"Multiple candidates is not enabled for models/{model.id}")
    image_config = proto_object(
        proto_field(config, "imageConfig", "image_config") or {}, "image_config"
    )
    for name in image_config:
        if name not in IMAGE_CONFIG_FIELDS:
            raise _unknown_field(name, "generation_config.image_config")
    ratio = proto_field(image_config, "aspectRatio", "aspect_ratio")
    size = proto_field(image_config, "imageSize", "image_size")
    ratio = None if ratio is None else _string(ratio, "generation_config.image_config.aspect_ratio")
    size = None if size is None else _string(size, "generation_config.image_config.image_size")
    if ratio is not None and ratio not in model.ratios:
        raise GoogleError(
            400,
            f"* GenerateContentRequest.generation_config.image_config.aspect_ratio: {ratio!r} "
            f"is not supported by {model.id}; use one of {', '.join(model.ratios)}",
        )
    if size is not None and size not in model.sizes:
        raise GoogleError(
            400,
            f"* GenerateContentRequest.generation_config.image_config.image_size: {size!r} is "
            f"not supported by {model.id}; use one of {', '.join(model.sizes)}",
        )
    limit = MAX_INPUT_IMAGES[model.family]
    if len(images) > limit:
        raise GoogleError(
            400,
            f"* GenerateContentRequest.contents: {len(images)} input images; {model.id} takes "
            f"at most {limit}",
        )
    return Request(
        " ".join(texts),
        tuple(images),
        modalities,
        ratio,
        size,
        seed=seed,
        thinking=thinking,
        search=search,
        context=tuple(history.texts),
        earlier=tuple(history.earlier),
        signed=tuple(history.signed),
        tier=tier,
    )


class _History:
    """What the contents before a request's last one say: their texts, the last image among
    them, each turn the model answered (by the prompt before it), and the model's images with
    their signatures. ``signs``: the model signs its images (Gemini 3), so that one sent back
    without its signature is refused."""

    def __init__(self, *, signs: bool) -> None:
        self.signs = signs
        self.texts: list[str] = []
        self.earlier: list[str] = []
        self.signed: list[SignedImage] = []
        self.last_image: InlineImage | FileImage | None = None
        self._asked = ""

    def user_turn(self, index: int, parts: list[Any]) -> None:
        """A user content of the history: its text asks, its last image is the latest."""
        texts: list[str] = []
        images: list[InlineImage | FileImage] = []
        for part_index, raw_part in enumerate(parts):
            where = f"contents[{index}].parts[{part_index}]"
            _read_part(proto_object(raw_part, where), where, texts, images)
        self.texts += texts
        self._asked = " ".join(texts)
        if images:
            self.last_image = images[-1]

    def model_turn(self, index: int, parts: list[Any]) -> None:
        """A content of the model's: its images must carry the signatures it gave them."""
        for part_index, raw_part in enumerate(parts):
            where = f"contents[{index}].parts[{part_index}]"
            part = proto_object(raw_part, where)
            if part.get("thought") is True:
                continue  # [P] thoughts are not sent back; one that is, is not read
            images: list[InlineImage | FileImage] = []
            _read_part(part, where, self.texts, images)
            signature = _signature(part, where)
            for image in images:
                if signature is None and self.signs:
                    raise GoogleError(
                        400, MISSING_SIGNATURE.format(content=index + 1, part=part_index + 1)
                    )
                if signature is not None:
                    self.signed.append(SignedImage(image, signature, index + 1, part_index + 1))
                self.last_image = image
        self.earlier.append(self._asked)


def _signature(part: Mapping[str, Any], where: str) -> bytes | None:
    """A part's ``thoughtSignature`` (bytes, sent as base64), None when it has none."""
    value = proto_field(part, "thoughtSignature", "thought_signature")
    if value is None:
        return None
    encoded = _string(value, f"{where}.thought_signature")
    return decode_bytes(encoded, f"{where}.thought_signature")


def _read_part(
    part: Mapping[str, Any],
    where: str,
    texts: list[str],
    images: list[InlineImage | FileImage],
) -> None:
    text = part.get("text")
    inline = proto_field(part, "inlineData", "inline_data")
    file_data = proto_field(part, "fileData", "file_data")
    given = [value for value in (text, inline, file_data) if value is not None]
    if len(given) != 1:
        # Exactly one data field per part, as the proto's oneof has it.
        raise GoogleError(
            400,
            f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one "
            "initialized field",
        )
    if text is not None:
        if part.get("thought") is not True:
            texts.append(_string(text, f"{where}.text"))
        return
    if inline is not None:
        blob = proto_object(inline, f"{where}.inline_data")
        mime = proto_field(blob, "mimeType", "mime_type")
        if mime is None:
            raise GoogleError(
                400,
                f"* GenerateContentRequest.{where}.inline_data.mime_type: mime_type is not "
                "specified",
            )
        mime = _string(mime, f"{where}.inline_data.mime_type")
        encoded = _string(blob.get("data", ""), f"{where}.inline_data.data")
        data = decode_bytes(encoded, f"{where}.inline_data.data")
        if mime not in IMAGE_TYPES:
            raise GoogleError(400, f"Unsupported MIME type: {mime}")
        images.append(InlineImage(mime, data))
        return
    reference = proto_object(file_data, f"{where}.file_data")
    uri = _string(
        proto_field(reference, "fileUri", "file_uri") or "", f"{where}.file_data.file_uri"
    )
    mime = proto_field(reference, "mimeType", "mime_type")
    if mime is not None and _string(mime, f"{where}.file_data.mime_type") not in IMAGE_TYPES:
        raise GoogleError(400, f"Unsupported MIME type: {mime}")
    images.append(FileImage(uri))


def decode_bytes(encoded: str, where: str) -> bytes:
    """A bytes field's base64 (the field at ``where``), decoded as Google's proto-JSON parser
    does: the URL-safe alphabet too, and no padding; GoogleError in its words otherwise."""
    try:
        standard = encoded.replace("-", "+").replace("_", "/")
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise GoogleError(
            400,
            f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed for "
            f"{_shown(encoded)}",
        ) from None


def _modalities(value: object) -> frozenset[str]:
    """The answer's modalities; none given means both. Google takes any case (the SDK's own
    samples send ``Image``)."""
    if value is None or value == []:
        return frozenset(MODALITIES)
    if not isinstance(value, list):
        value = [value]
    modalities = set()
    for index, item in enumerate(value):
        name = item.upper() if isinstance(item, str) else item
        if name not in MODALITIES:
            raise GoogleError(
                400,
                f"Invalid value at 'generation_config.response_modalities[{index}]' "
                f"(type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig."
                f"Modality), {_shown(item)}",
            )
        modalities.add(name)
    return frozenset(modalities)


def _seed(value: object) -> int | None:
    """``generationConfig.seed``: a 32-bit whole number ([P] TYPE_INT32)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not -INT32 <= value < INT32:
        raise GoogleError(400, f"Invalid value at 'generation_config.seed' (TYPE_INT32), {value}")
    return value


def _thinking(value: object, model: Model) -> str | None:
    """``thinkingConfig.thinkingLevel``: one of the enum's names, and one the model has."""
    if value is None:
        return None
    config = proto_object(value, "generation_config.thinking_config")
    for name in config:
        if name not in THINKING_FIELDS:
            raise _unknown_field(name, "generation_config.thinking_config")
    level = proto_field(config, "thinkingLevel", "thinking_level")
    if level is None:
        return None
    name = level.upper() if isinstance(level, str) else level
    if name not in THINKING_ENUM:
        raise GoogleError(
            400,
            "Invalid value at 'generation_config.thinking_config.thinking_level' "
            f"(type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingLevel), "
            f"{_shown(level)}",
        )
    if name not in model.thinking_levels:
        # [I] Google's words for a level the model does not take.
        takes = ", ".join(model.thinking_levels) or "none"
        raise GoogleError(
            400,
            f"Thinking level {name} is not supported for models/{model.id}; supported "
            f"levels: {takes}.",
        )
    return str(name)


def _search(value: object, model: Model) -> bool:
    """Whether ``tools`` asks for Google Search grounding, which only some models take."""
    if value is None:
        return False
    tools = value if isinstance(value, list) else [value]
    search = False
    for index, raw in enumerate(tools):
        tool = proto_object(raw, f"tools[{index}]")
        for name in tool:
            if name not in TOOL_FIELDS:
                raise _unknown_field(name, f"tools[{index}]")
            if name not in SEARCH_TOOL:
                # [I] The image models take no other tool.
                raise GoogleError(400, f"Tool {name} is not supported for models/{model.id}.")
        search = search or any(name in tool for name in SEARCH_TOOL)
    if search and not model.searches:
        # [S] Google's words (issue threads) for search asked of a model without it.
        raise GoogleError(400, "Search Grounding is not supported.")
    return search
