"""fal's nano-banana apps: what each takes (its ratios and resolutions, and what the lineup
faults change), its OpenAPI schema as the platform API's model search gives it, a submitted
body checked against that schema as fal's validation checks it (422 ``{"detail": [...]}``), and
the size each app renders at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nanoedit.sandbox.catalog import RATIOS, Family, Model, nearest_ratio, output_size
from nanoedit.sandbox.prompts import prompt_characters
from nanoedit.sandbox.wire import SandboxResponse, json_response

MAX_IMAGE_URLS = 14
MAX_NUM_IMAGES = 4
OWNER = "fal-ai"
OUTPUT_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
# [S] The nano-banana apps' safety_tolerance: a string, "1" the strictest, "4" the default.
SAFETY_TOLERANCES = ("1", "2", "3", "4", "5", "6")
MAX_SEED = 2**31 - 1
TALL_RATIOS = ("1:4", "4:1", "1:8", "8:1")
# nano-banana-2 alone: the tall ratios at 1K, and every ratio at 0.5K (fal's 512 tier).
TALL_SIZES_1K = {"1:4": (512, 2048), "4:1": (2048, 512), "1:8": (384, 3072), "8:1": (3072, 384)}
HALF_K_SIZES = {
    "1:1": (512, 512), "2:3": (424, 632), "3:2": (632, 424), "3:4": (448, 600),
    "4:3": (600, 448), "4:5": (464, 576), "5:4": (576, 464), "9:16": (384, 688),
    "16:9": (688, 384), "21:9": (792, 336), "1:4": (256, 1024), "4:1": (1024, 256),
    "1:8": (192, 1536), "8:1": (1536, 192),
}  # fmt: skip
SIZE_FACTORS = {"1K": 1, "2K": 2, "4K": 4}


@dataclass(frozen=True)
class App:
    """One nano-banana app on fal: its model and what it accepts."""

    alias: str
    model: Model
    resolutions: tuple[str, ...]
    """Empty: the app has no ``resolution`` field."""
    ratios: tuple[str, ...]


APPS: dict[str, App] = {
    app.alias: app
    for app in (
        # fal-ai/nano-banana (2.5) went with Google's model, shut down on 2026-10-02.
        App(
            "nano-banana-pro",
            Model("gemini-3-pro-image", Family.PRO),
            ("1K", "2K", "4K"),
            RATIOS,
        ),
        App(
            "nano-banana-2",
            Model("gemini-3.1-flash-image", Family.PRO),
            ("0.5K", "1K", "2K", "4K"),
            RATIOS + TALL_RATIOS,
        ),
    )
}


# What the lineup faults change: the app ``added`` lists (Nano Banana 3), the one ``dropped``
# drops, and the one ``widened`` gives the tall ratios.
ADDED_APPS: dict[str, App] = {
    "nano-banana-3": App(
        "nano-banana-3",
        Model("gemini-3.5-flash-image", Family.PRO),
        ("1K", "2K", "4K"),
        RATIOS + TALL_RATIOS,
    )
}
DROPPED_APP = "nano-banana-2"
WIDENED_APP = "nano-banana-pro"
APP_NAMES = {
    "nano-banana-pro": "Nano Banana Pro",
    "nano-banana-2": "Nano Banana 2",
    "nano-banana-3": "Nano Banana 3",
}


def _pascal(alias: str) -> str:
    return "".join(part.capitalize() for part in alias.replace(".", "-").split("-"))


def openapi_schema(app: App, edit: bool) -> dict[str, Any]:
    """The app's OpenAPI schema as fal's model search gives it (``expand=openapi-3.0``): the
    queue's paths, the submission's body schema referred to from the POST, enums inline."""
    endpoint = f"{OWNER}/{app.alias}" + ("/edit" if edit else "")
    name = _pascal(app.alias) + ("Edit" if edit else "")
    inputs: dict[str, Any] = {
        "prompt": {"title": "Prompt", "type": "string", "minLength": 3, "maxLength": 50000,
                   "description": "The text prompt to generate an image from."},
        "num_images": {"title": "Number of Images", "type": "integer", "minimum": 1,
                       "maximum": MAX_NUM_IMAGES, "default": 1},
        "aspect_ratio": {"title": "Aspect Ratio", "type": "string",
                         "enum": [*(("auto",) if edit else ()), *app.ratios],
                         "default": "auto" if edit else "1:1"},
        "output_format": {"title": "Output Format", "type": "string",
                          "enum": list(OUTPUT_FORMATS), "default": "png"},
        "seed": {"title": "Seed", "type": "integer",
                 "description": "The seed for the random number generator."},
        "safety_tolerance": {"title": "Safety Tolerance", "type": "string",
                             "enum": list(SAFETY_TOLERANCES), "default": "4",
                             "description": "1 is the most strict and 6 the least strict."},
        "enable_web_search": {"title": "Enable Web Search", "type": "boolean",
                              "default": False},
    }  # fmt: skip
    if app.resolutions:
        inputs["resolution"] = {"title": "Resolution", "type": "string",
                                "enum": list(app.resolutions), "default": "1K"}  # fmt: skip
    required = ["prompt"]
    if edit:
        inputs["image_urls"] = {
            "title": "Image URLs", "type": "array", "items": {"type": "string"},
            "maxItems": MAX_IMAGE_URLS,
        }  # fmt: skip
        required.append("image_urls")
    return {
        "openapi": "3.0.4",
        "info": {"title": "Queue OpenAPI for " + endpoint, "version": "1.0.0",
                 "x-fal-metadata": {"endpointId": endpoint,
                                    "category": "image-to-image" if edit else "text-to-image"}},
        "components": {
            "securitySchemes": {"apiKeyAuth": {"type": "apiKey", "in": "header",
                                               "name": "Authorization",
                                               "description": "Fal Key"}},
            "schemas": {
                f"{name}Input": {"title": f"{name}Input", "type": "object",
                                 "properties": inputs, "required": required},
                f"{name}Output": {"title": f"{name}Output", "type": "object",
                                  "properties": {"images": {"type": "array"},
                                                 "description": {"type": "string"}},
                                  "required": ["images", "description"]},
            },
        },
        "paths": {
            f"/{endpoint}": {"post": {
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{name}Input"}}}},
                "responses": {"200": {"description": "The request status."}},
            }},
            f"/{endpoint}/requests/{{request_id}}": {"get": {
                "responses": {"200": {"description": "Result of the request.", "content": {
                    "application/json": {"schema": {
                        "$ref": f"#/components/schemas/{name}Output"}}}}},
            }},
        },
        "servers": [{"url": "https://queue.fal.run"}],
        "security": [{"apiKeyAuth": []}],
    }  # fmt: skip


class Invalid(Exception):
    """A body fal answers with 422: ``loc`` names the field, ``ctx`` the limit it broke."""

    def __init__(
        self,
        loc: tuple[str | int, ...],
        msg: str,
        type_: str = "value_error",
        ctx: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg
        self.type = type_
        self.ctx = ctx


def detail_error(
    status: int,
    loc: tuple[str | int, ...],
    msg: str,
    type_: str,
    ctx: dict[str, Any] | None = None,
) -> SandboxResponse:
    """A FastAPI-style validation error: ``{"detail": [{loc, msg, type[, ctx]}]}``."""
    detail: dict[str, Any] = {"loc": ["body", *loc], "msg": msg, "type": type_}
    if ctx is not None:
        detail["ctx"] = ctx
    return json_response(status, {"detail": [detail]})


@dataclass(frozen=True)
class Job:
    """What one queued request was asked to make."""

    app: App
    edit: bool
    prompt: str
    image_urls: tuple[str, ...]
    num_images: int
    ratio: str | None
    resolution: str | None
    mime: str
    seed: int | None = None
    safety: str = "4"
    web_search: bool = False


def _text(body: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise Invalid((name,), "field required", "value_error.missing")
        return None
    if not isinstance(value, str):
        raise Invalid((name,), "str type expected", "type_error.str")
    return value


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...]) -> str | None:
    value = _text(body, name)
    if value is not None and value not in choices:
        allowed = ", ".join(f"'{choice}'" for choice in choices)
        raise Invalid((name,), f"value is not a valid enumeration member; permitted: {allowed}",
                      "type_error.enum")  # fmt: skip
    return value


def read_job(body: object, app: App, edit: bool) -> Job:
    """Check a submitted body as the app's input schema does; Invalid names the field."""
    if not isinstance(body, dict):
        raise Invalid((), "value is not a valid dict", "type_error.dict")
    prompt = _text(body, "prompt", required=True)
    if prompt is None or not prompt.strip():
        raise Invalid(("prompt",), "ensure this value has at least 1 characters")
    # fal's schemas publish no bound; the model's input limit in plain text stands for the one
    # its validation holds to, in pydantic's words for a string too long (inferred).
    longest = prompt_characters(app.model)
    if len(prompt) > longest:
        raise Invalid(
            ("prompt",), f"ensure this value has at most {longest} characters",
            "value_error.any_str.max_length", {"limit_value": longest},
        )  # fmt: skip
    urls: tuple[str, ...] = ()
    if edit:
        urls = _image_urls(body.get("image_urls"))
    num = body.get("num_images", 1)
    if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_NUM_IMAGES:
        raise Invalid(
            ("num_images",), f"ensure this value is an integer from 1 to {MAX_NUM_IMAGES}"
        )
    ratios = (("auto",) if edit else ()) + app.ratios
    ratio = _choice(body, "aspect_ratio", ratios)
    # Apps without the field ignore it, as every fal input schema ignores unknown fields.
    resolution = _choice(body, "resolution", app.resolutions) if app.resolutions else None
    output_format = _choice(body, "output_format", tuple(OUTPUT_FORMATS)) or "png"
    seed = body.get("seed")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
    ):
        raise Invalid(("seed",), "value is not a valid integer", "type_error.integer")
    safety = _choice(body, "safety_tolerance", SAFETY_TOLERANCES) or "4"
    search = body.get("enable_web_search", False)
    if not isinstance(search, bool):
        raise Invalid(("enable_web_search",), "value could not be parsed to a boolean",
                      "type_error.bool")  # fmt: skip
    return Job(
        app, edit, prompt, urls, num, ratio, resolution, OUTPUT_FORMATS[output_format],
        seed, safety, search,
    )  # fmt: skip


def _image_urls(value: object) -> tuple[str, ...]:
    if value is None:
        raise Invalid(("image_urls",), "field required", "value_error.missing")
    if not isinstance(value, list) or not all(isinstance(url, str) for url in value):
        raise Invalid(("image_urls",), "value is not a valid list of strings", "type_error.list")
    if not value:
        raise Invalid(("image_urls",), "ensure this value has at least 1 items")
    if len(value) > MAX_IMAGE_URLS:
        raise Invalid(("image_urls",), f"ensure this value has at most {MAX_IMAGE_URLS} items")
    for index, url in enumerate(value):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid(("image_urls", index), "invalid or missing URL scheme", "value_error.url")
    return tuple(value)


def output_dimensions(job: Job, source: tuple[int, int] | None) -> tuple[int, int]:
    """The size the app renders at (nano-banana-2 adds 0.5K and the tall ratios)."""
    ratio = job.ratio if job.ratio not in (None, "auto") else None
    if job.app.alias == "nano-banana-2":
        wanted = ratio or "1:1"
        if ratio is None and source is not None:
            wanted = nearest_ratio(*source)
        if job.resolution == "0.5K":
            return HALF_K_SIZES[wanted]
        if wanted in TALL_SIZES_1K:
            width, height = TALL_SIZES_1K[wanted]
            factor = SIZE_FACTORS[job.resolution or "1K"]
            return width * factor, height * factor
    return output_size(job.app.model, ratio, job.resolution, source)
