"""OpenAI's own image API for its GPT image models (``gpt-image-*``), as the sandbox answers
``/v1/images/edits`` and ``/v1/images/generations`` for those model names, beside the
nano-banana gateway that answers every other name on the same routes.

What a client meets there and not on a gateway: the answer is base64 only (no URL, no
``revised_prompt``); the one size field takes ``1024x1024``, ``1536x1024``, ``1024x1536`` or
``auto``; and any field the API does not know (``response_format``, dall-e-2's, or a
gateway's ``aspect_ratio`` and ``image_size``) is turned down with 400 ``unknown_parameter``,
in OpenAI's error shape (no request id in the message, unlike the gateway's).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nanoedit.sandbox.catalog import nearest_ratio
from nanoedit.sandbox.render import Encoded
from nanoedit.sandbox.wire import SandboxResponse, json_response

PREFIX = "gpt-image-"
# Each size by the ratio it has, and the sizes in the order OpenAI's messages list them.
SIZES: dict[str, tuple[int, int]] = {
    "1024x1024": (1024, 1024),
    "1536x1024": (1536, 1024),
    "1024x1536": (1024, 1536),
}
SIZE_BY_RATIO = {"1:1": "1024x1024", "3:2": "1536x1024", "2:3": "1024x1536"}
SIZE_CHOICES = ("1024x1024", "1024x1536", "1536x1024", "auto")
# The fields each route takes (images come as ``image`` or ``image[]`` parts).
EDIT_FIELDS = frozenset(
    {
        "image", "image[]", "mask", "prompt", "model", "n", "size", "quality", "background",
        "output_format", "output_compression", "input_fidelity", "user",
    }
)  # fmt: skip
GENERATION_FIELDS = frozenset(
    {
        "prompt", "model", "n", "size", "quality", "background", "output_format",
        "output_compression", "moderation", "user",
    }
)  # fmt: skip
OUTPUT_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
QUALITIES = ("low", "medium", "high", "auto")
BACKGROUNDS = ("transparent", "opaque", "auto")
MAX_N = 10
# Output tokens per image, by quality and by whether the size is square (OpenAI's table).
OUTPUT_TOKENS = {
    ("low", True): 272, ("medium", True): 1056, ("high", True): 4160,
    ("low", False): 408, ("medium", False): 1584, ("high", False): 6240,
}  # fmt: skip
# Input tokens the sandbox counts per input image (a figure of its own, as for the gateway).
INPUT_IMAGE_TOKENS = 258


def is_gpt_image(model: object) -> bool:
    """Whether a request's ``model`` names one of OpenAI's GPT image models."""
    return isinstance(model, str) and model.startswith(PREFIX)


class OpenAIError(Exception):
    """A request OpenAI turns down, with its error object's fields."""

    def __init__(self, message: str, param: str | None, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status

    def response(self) -> SandboxResponse:
        """OpenAI's error answer."""
        error = {
            "message": self.message,
            "type": "invalid_request_error",
            "param": self.param,
            "code": self.code,
        }
        return json_response(self.status, {"error": error})


@dataclass(frozen=True)
class GptRequest:
    """An image request for a GPT image model, checked."""

    model: str
    prompt: str
    n: int
    size: str
    """One of ``SIZES``, or ``auto``."""
    quality: str
    background: str
    output_format: str


def _invalid(value: object, param: str, choices: Iterable[str]) -> OpenAIError:
    listed = [f"'{choice}'" for choice in choices]
    supported = ", ".join(listed[:-1]) + f", and {listed[-1]}"
    return OpenAIError(
        f"Invalid value: '{value}'. Supported values are: {supported}.", param, "invalid_value"
    )


def _choice(
    values: Mapping[str, object], name: str, choices: tuple[str, ...], default: str = "auto"
) -> str:
    value = values.get(name) or default
    if value not in choices:
        raise _invalid(value, name, choices)
    return str(value)


def _count(values: Mapping[str, object]) -> int:
    value = values.get("n", 1)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OpenAIError(f"Invalid type for 'n': expected an integer, got {value!r}.", "n",
                          "invalid_type")  # fmt: skip
    if value < 1:
        raise OpenAIError(
            f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {value} "
            "instead.", "n", "integer_below_min_value",
        )  # fmt: skip
    if value > MAX_N:
        raise OpenAIError(
            f"Invalid 'n': integer above maximum value. Expected a value <= {MAX_N}, but got "
            f"{value} instead.", "n", "integer_above_max_value",
        )  # fmt: skip
    return value


def read_request(
    values: Mapping[str, object], names: Iterable[str], *, images: int | None
) -> GptRequest:
    """Check a request as OpenAI does: every field name (``names``, in the order sent) known
    to the route, then the fields. ``images`` is the number of images an edit carries (None
    for a generation)."""
    allowed = GENERATION_FIELDS if images is None else EDIT_FIELDS
    for name in names:
        if name not in allowed:
            raise OpenAIError(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    prompt = values.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise OpenAIError(
            "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
        )
    if images == 0:
        raise OpenAIError(
            "Missing required parameter: 'image'.", "image", "missing_required_parameter"
        )
    size = values.get("size") or "auto"
    if size not in SIZE_CHOICES:
        raise _invalid(size, "size", SIZE_CHOICES)
    background = _choice(values, "background", BACKGROUNDS)
    output_format = _choice(values, "output_format", tuple(OUTPUT_FORMATS), "png")
    if background == "transparent" and output_format == "jpeg":
        # [P] OpenAI's guide: transparency is for png and webp only. The message is [I].
        raise OpenAIError(
            "Transparent background is not supported for output format 'jpeg'. Use 'png' or "
            "'webp'.",
            "background",
            "invalid_value",
        )
    return GptRequest(
        model=str(values["model"]),
        prompt=prompt,
        n=_count(values),
        size=str(size),
        quality=_choice(values, "quality", QUALITIES),
        background=background,
        output_format=output_format,
    )


# A mask is a PNG under 4 MB [P: OpenAI's images/edits reference, ``mask``].
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_MASK_BYTES = 4 * 1024 * 1024


def check_mask(data: bytes, image: tuple[int, int] | None) -> None:
    """Check an edit's ``mask`` as OpenAI does [P: images/edits reference: "fully transparent
    areas (e.g. where alpha is zero) indicate where image should be edited ... Must be a valid
    PNG file, less than 4MB, and have the same dimensions as image"; it applies to the first
    image]. ``image`` is the first image's size. The messages and codes are [I]: OpenAI's own
    for a bad mask are not documented."""
    from PIL import Image

    if not data.startswith(PNG_SIGNATURE):
        raise OpenAIError("Invalid mask image: it must be a PNG file.", "mask", "invalid_image")
    if len(data) >= MAX_MASK_BYTES:
        raise OpenAIError(
            "Invalid mask image: it must be less than 4MB.", "mask", "image_too_large"
        )
    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
            size, mode, info = picture.size, picture.mode, picture.info
    except (OSError, ValueError, SyntaxError):
        raise OpenAIError(
            "Invalid mask image: it is not a valid PNG.", "mask", "invalid_image"
        ) from None
    if image is not None and size != image:
        raise OpenAIError(
            f"Invalid mask image: the mask is {size[0]}x{size[1]} and the image is "
            f"{image[0]}x{image[1]}; they must have the same dimensions.",
            "mask",
            "invalid_image",
        )
    if mode not in ("RGBA", "LA", "PA") and "transparency" not in info:
        raise OpenAIError(
            "Invalid mask image: it must have an alpha channel (transparent where the image "
            "is to be edited).",
            "mask",
            "invalid_image",
        )


def size_of(request: GptRequest, source: tuple[int, int] | None) -> str:
    """The size the model draws: the one asked for, or for ``auto`` the one nearest the first
    input's shape (a square for a generation)."""
    if request.size != "auto":
        return request.size
    if source is None:
        return "1024x1024"
    ratio = nearest_ratio(*source)
    width, height = (int(part) for part in ratio.split(":"))
    if width == height:
        return "1024x1024"
    return SIZE_BY_RATIO["3:2" if width > height else "2:3"]


def answer(
    request: GptRequest, size: str, images: list[Encoded], inputs: int, created: int
) -> SandboxResponse:
    """The answer: each image as base64, with what was used and the tokens."""
    quality = "medium" if request.quality == "auto" else request.quality
    text_tokens = math.ceil(len(request.prompt.encode()) / 4)
    image_tokens = INPUT_IMAGE_TOKENS * inputs
    width, height = SIZES[size]
    output = OUTPUT_TOKENS[(quality, width == height)] * len(images)
    payload = {
        "created": created,
        "background": "opaque" if request.background == "auto" else request.background,
        "data": [{"b64_json": base64.b64encode(image.data).decode()} for image in images],
        "output_format": request.output_format,
        "quality": quality,
        "size": size,
        "usage": {
            "input_tokens": text_tokens + image_tokens,
            "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": text_tokens},
            "output_tokens": output,
            "total_tokens": text_tokens + image_tokens + output,
        },
    }
    return json_response(200, payload)
