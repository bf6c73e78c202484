"""OpenRouter's chat completions with image output (API-NOTES-PROVIDERS §2):
``POST /api/v1/chat/completions`` with ``modalities`` and ``image_config``, images in as
``data:`` URIs or URLs and out as ``data:`` URIs in ``message.images``, and ``GET /api/v1/key``,
with a ``Bearer`` key, and the public model list ``GET /api/v1/models`` filtered by
``output_modalities``. Errors are ``{"error": {"code", "message", "metadata"}}`` with the HTTP
status of the code, or inside an HTTP 200 once the generation has begun. The messages are read
as a whole conversation (earlier turns, Gemini's thought signatures) by ``openrouter_chat``."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from nanoedit.sandbox.catalog import (
    FLASH_SIZES,
    PRO_SIZES_1K,
    RATIOS,
    REFUSAL,
    SIZE_FACTORS,
    Family,
    Model,
    nearest_ratio,
    output_tokens,
)
from nanoedit.sandbox.faults import FaultKind, Phase, Stage, shared_kinds, status_answer
from nanoedit.sandbox.lineup import LISTING_PHASES
from nanoedit.sandbox.openrouter_chat import (
    PROVIDER,
    Conversation,
    Refused,
    read_conversation,
    reasoning_details,
)
from nanoedit.sandbox.prompts import input_limit, text_tokens
from nanoedit.sandbox.render import Encoded, Picture, render_edit, render_generate
from nanoedit.sandbox.runtime import SANDBOX_HOST, Call, EmulatedApi
from nanoedit.sandbox.wire import SandboxResponse, json_response

NAME = "openrouter"
PREFIX = "/api/v1"
CHAT_PATH = "/api/v1/chat/completions"
KEY_PATH = "/api/v1/key"
MODELS_PATH = "/api/v1/models"
# Per input image, what Gemini bills for a picture of up to 384 px a side.
INPUT_IMAGE_TOKENS = 258
# What 3.1 Flash bills for one image at 0.5K (API-NOTES-PROVIDERS §6).
HALF_K_TOKENS = 747
# Dollars per token, as OpenRouter lists gemini-2.5-flash-image: $0.30 per million tokens in,
# $30 per million out (an image of 1290 tokens: $0.0387). One rate for every model here.
INPUT_TOKEN_PRICE = 0.30e-6
OUTPUT_TOKEN_PRICE = 30e-6
MODALITIES = frozenset({"text", "image", "audio"})
# Only 3.1 Flash renders these; at 1K (2K and 4K double and quadruple each side).
TALL_SIZES_1K: dict[str, tuple[int, int]] = {
    "1:4": (512, 2048), "4:1": (2048, 512), "1:8": (384, 3072), "8:1": (3072, 384),
}  # fmt: skip
CREDITS_URL = "https://openrouter.ai/settings/credits"
# What OpenRouter says with each HTTP status a fault plan can ask for, and its error_type.
STATUS_ERRORS: dict[int, tuple[str, str]] = {
    408: ("Request timed out", "timeout"),
    429: ("Rate limit exceeded, please retry shortly", "rate_limit_exceeded"),
    500: ("Internal Server Error", "server"),
    502: ("Provider returned error", "provider_unavailable"),
    503: ("No allowed providers are available for the selected model.", "provider_overloaded"),
    504: ("The provider did not respond in time", "timeout"),
}
MODERATION_REASON = "violence/graphic"


@dataclass(frozen=True)
class ImageModel:
    """One of OpenRouter's Gemini image models: what it takes and how it renders."""

    model: Model
    ratios: tuple[str, ...]
    sizes: tuple[str, ...]
    max_images: int


def _models(*models: ImageModel) -> dict[str, ImageModel]:
    return {entry.model.id: entry for entry in models}


# 0.5K and the tall ratios are for 3.1 Flash only (API-NOTES-PROVIDERS §2a). The 2.5 model
# renders 1K whatever size is asked for, as Google's own API does.
# Google's lineup under OpenRouter's names (API-NOTES-LINEUP): the shut-down previews and 2.5
# answer as any id OpenRouter does not list.
MODELS: dict[str, ImageModel] = _models(
    ImageModel(Model("google/gemini-3-pro-image", Family.PRO), RATIOS, ("1K", "2K", "4K"), 14),
    ImageModel(
        Model("google/gemini-3.1-flash-image", Family.PRO),
        RATIOS + tuple(TALL_SIZES_1K),
        ("0.5K", "1K", "2K", "4K"),
        14,
    ),
    ImageModel(
        Model("google/gemini-nano-banana-2.1", Family.PRO),
        RATIOS + tuple(TALL_SIZES_1K),
        ("1K", "2K", "4K"),
        14,
    ),
    ImageModel(Model("google/gemini-3.1-flash-lite-image", Family.PRO), RATIOS, ("1K",), 14),
)


# What the fault ``added`` lists (Nano Banana 3), and the model ``dropped`` drops.
ADDED_MODELS: dict[str, ImageModel] = _models(
    ImageModel(
        Model("google/gemini-3.5-flash-image", Family.PRO),
        RATIOS + tuple(TALL_SIZES_1K),
        ("1K", "2K", "4K"),
        14,
    ),
)
DROPPED_MODEL = "google/gemini-3.1-flash-image"
# The names OpenRouter shows for Google's image models.
MODEL_NAMES = {
    "google/gemini-3-pro-image": "Google: Nano Banana Pro (Gemini 3 Pro Image)",
    "google/gemini-3.1-flash-image": "Google: Nano Banana 2 (Gemini 3.1 Flash Image)",
    "google/gemini-nano-banana-2.1": "Google: Nano Banana 2.1",
    "google/gemini-3.1-flash-lite-image": (
        "Google: Nano Banana 2 Lite (Gemini 3.1 Flash Lite Image)"
    ),
    "google/gemini-3.5-flash-image": "Google: Nano Banana 3 (Gemini 3.5 Flash Image)",
}
# Models listed beside Google's image ones, so that a client's filters are tested: two text
# models, and an image model that is not Google's.
OTHER_MODELS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("google/gemini-3-pro", "Google: Gemini 3 Pro", ("text", "image", "file"), ("text",)),
    ("google/gemini-3-flash", "Google: Gemini 3 Flash", ("text", "image", "file"), ("text",)),
    ("black-forest-labs/flux.2-pro", "Black Forest Labs: FLUX.2 Pro", ("text", "image"),
     ("image",)),
)  # fmt: skip


def _listed_model(
    model_id: str, name: str, inputs: tuple[str, ...], outputs: tuple[str, ...], created: int
) -> dict[str, Any]:
    """One model of the list, in the fields OpenRouter's Models API gives."""
    return {
        "id": model_id,
        "canonical_slug": model_id,
        "hugging_face_id": "",
        "name": name,
        "created": created,
        "description": name.partition(": ")[2],
        "context_length": 32768 if "image" in outputs else 1048576,
        "architecture": {
            "modality": f"{'+'.join(inputs)}->{'+'.join(outputs)}",
            "input_modalities": list(inputs),
            "output_modalities": list(outputs),
            "tokenizer": "Gemini" if model_id.startswith("google/") else "Other",
            "instruct_type": None,
        },
        "pricing": {
            "prompt": f"{INPUT_TOKEN_PRICE:.7f}", "completion": f"{OUTPUT_TOKEN_PRICE:.5f}",
            "request": "0", "image": "0", "web_search": "0", "internal_reasoning": "0",
        },
        "top_provider": {"context_length": 32768, "max_completion_tokens": 32768,
                         "is_moderated": False},
        "per_request_limits": None,
        "supported_parameters": ["max_tokens", "temperature", "top_p", "response_format"],
    }  # fmt: skip


def _fault(name: str, summary: str) -> FaultKind:
    """A fault of this API alone that changes the answer to a chat completion, once the
    request has passed the key and validation checks (as the real service checks first)."""
    phases = frozenset({Phase.SUBMIT})
    return FaultKind(name, Phase.SUBMIT, phases, frozenset({NAME}), False, Stage.RESULT, summary)


def error(status: int, message: str, metadata: Mapping[str, Any] | None = None) -> SandboxResponse:
    """OpenRouter's error object, with the HTTP status of its code."""
    body: dict[str, Any] = {"code": status, "message": message}
    if metadata:
        body["metadata"] = dict(metadata)
    return json_response(status, {"error": body})


@dataclass(frozen=True)
class Request:
    """One chat completion request, checked."""

    entry: ImageModel
    conversation: Conversation
    wants_image: bool
    wants_text: bool
    ratio: str | None
    size: str | None
    seed: int | None = None

    @property
    def prompt(self) -> str:
        """The last user message's text."""
        return self.conversation.prompt

    @property
    def images(self) -> list[Image.Image]:
        """The images the model works on (a continued chat's latest first)."""
        return self.conversation.images


def render_size(
    entry: ImageModel, ratio: str | None, size: str | None, source: tuple[int, int] | None
) -> tuple[int, int]:
    """Width and height of the image ``entry`` renders; no ratio follows the first input."""
    if ratio is None:
        ratio = nearest_ratio(*source) if source else "1:1"
    if entry.model.family is Family.FLASH:
        return FLASH_SIZES[ratio]
    width, height = PRO_SIZES_1K.get(ratio) or TALL_SIZES_1K[ratio]
    if size == "0.5K":
        return width // 2, height // 2
    factor = SIZE_FACTORS[size or "1K"]
    return width * factor, height * factor


class OpenRouterApi(EmulatedApi):
    """Answers the ``/api/v1/…`` routes (before the URL-list API, which takes ``/api/``)."""

    name = NAME
    index = """OpenRouter (Authorization: Bearer KEY)
  POST /api/v1/chat/completions  JSON: model, messages, modalities, image_config
  GET  /api/v1/key
  GET  /api/v1/models            ?output_modalities=text|image|...|all (no key needed)
"""
    paid_routes = (f"POST {CHAT_PATH}",)
    refusal = "content-filter"
    fault_kinds = (
        # Shared faults it acts out too, in its own shape.
        *shared_kinds("error200", "text-only", "empty-data", "no-data", "empty-url"),
        _fault("no-credits", "HTTP 402: the account has no credits left"),
        _fault("moderation", "HTTP 403: the input was flagged by moderation"),
        _fault("content-filter", "HTTP 200, finish_reason content_filter and no image"),
        _fault("choice-error", "HTTP 200 whose choice ended in an error, no image"),
        _fault("url-result", "the result image is a link to the file host, not a data: URI"),
    )

    def answers(self, call: Call) -> bool:
        """Everything under ``/api/v1``."""
        path = call.received.path
        return path == PREFIX or path.startswith(PREFIX + "/")

    def phases(self, call: Call) -> frozenset[Phase] | None:
        """A submit for the chat completion, a plain API request for the key."""
        route = (call.method, call.received.path)
        if route == ("POST", CHAT_PATH):
            return frozenset({Phase.SUBMIT, Phase.API})
        if route == ("GET", KEY_PATH):
            return frozenset({Phase.API})
        if route == ("GET", MODELS_PATH):
            return LISTING_PHASES
        return None

    def handle(self, call: Call, fault: str | None = None) -> SandboxResponse:
        """Answer one request under ``/api/v1``; ``fault`` is the answer fault taken for it."""
        if self.phases(call) is None:
            return error(404, f"Not Found: {call.method} {call.received.path}")
        if fault is not None:
            return self._fault_answer(fault)
        if call.received.path == MODELS_PATH:
            return self._list_models(call)  # public: no key needed
        header = call.received.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if not header.strip():
            return error(401, "No auth credentials found")
        if scheme.lower() != "bearer" or not self.accepts(call, key.strip()):
            return error(401, "User not found.")
        if call.method == "GET":
            return self._key(key.strip())
        try:
            return self._chat(call)
        except Refused as refused:
            return error(refused.status, refused.message, refused.metadata)

    def _fault_answer(self, fault: str) -> SandboxResponse:
        if fault == "error200":
            metadata = {"error_type": "provider_unavailable", "provider_name": PROVIDER}
            return json_response(
                200, {"error": {"code": 502, "message": "Provider returned error",
                                "metadata": metadata}}
            )  # fmt: skip

        def status_error(status: int) -> SandboxResponse:
            message, error_type = STATUS_ERRORS[status]
            return error(status, message, {"error_type": error_type})

        return status_answer(fault, status_error, self.runtime.epoch())

    def _list_models(self, call: Call) -> SandboxResponse:
        """The model list, kept to the models with an output modality asked for
        (``output_modalities``: a comma-separated list, ``text`` when absent, ``all`` for
        every model)."""
        self.runtime.lineup.catch_up(self.runtime.faults, self.name)
        asked = {
            part.strip()
            for part in (call.received.query.get("output_modalities") or "text").split(",")
        }
        created = int(self.runtime.epoch())
        listed = [_listed_model(*other, created) for other in OTHER_MODELS[:2]]
        for entry in self.runtime.lineup.current(MODELS, ADDED_MODELS, DROPPED_MODEL).values():
            model_id = entry.model.id
            name = MODEL_NAMES.get(model_id, model_id)
            listed.append(_listed_model(model_id, name, ("image", "text"), ("image", "text"),
                                        created))  # fmt: skip
        listed += [_listed_model(*other, created) for other in OTHER_MODELS[2:]]
        if "all" not in asked:
            listed = [
                model for model in listed
                if asked & set(model["architecture"]["output_modalities"])
            ]  # fmt: skip
        return json_response(200, {"data": listed})

    def _key(self, key: str) -> SandboxResponse:
        # OpenRouter shows a key by its first 12 and last 3 characters.
        label = f"{key[:12]}...{key[-3:]}" if len(key) > 20 else "sk-or-v1-..."
        data = {
            "label": label,
            "limit": None,
            "usage": 0,
            "is_free_tier": False,
            "is_provisioning_key": False,
            "limit_remaining": None,
            "rate_limit": {"requests": -1, "interval": "10s"},
        }
        return json_response(200, {"data": data})

    def _chat(self, call: Call) -> SandboxResponse:
        request = self._read(call)
        _check_context(request)
        if request.conversation.upstream is not None:
            # OpenRouter's own checks passed: the provider refuses the history.
            raise request.conversation.upstream
        fault = self.runtime.faults.take(
            frozenset({Phase.SUBMIT, Phase.API}), self.name, Stage.RESULT
        )
        model_id = request.entry.model.id
        if fault == "no-credits":
            raise Refused(
                402, f"Insufficient credits. Add more using {CREDITS_URL}",
                {"error_type": "payment_required"},
            )  # fmt: skip
        if fault == "moderation":
            flagged = request.prompt if len(request.prompt) <= 100 else (
                request.prompt[:48] + "..." + request.prompt[-49:]
            )  # fmt: skip
            raise Refused(
                403,
                f"{model_id} requires moderation on {PROVIDER}. Your input was flagged for "
                f'"{MODERATION_REASON}". No credits were charged.',
                {"reasons": [MODERATION_REASON], "flagged_input": flagged,
                 "provider_name": PROVIDER, "model_slug": model_id},
            )  # fmt: skip
        prompt_tokens = _input_tokens(request)
        said = "Here is the edited image." if request.images else "Here is the image."
        message: dict[str, Any] = {"content": ""}
        if fault == "text-only" or not request.wants_image:
            # Without the image modality the model can only answer in words.
            return self._answer(model_id, {"content": REFUSAL}, prompt_tokens, 40)
        if fault == "content-filter":
            return self._answer(
                model_id, {"content": None}, prompt_tokens, 0, "content_filter", "IMAGE_SAFETY"
            )
        if fault == "choice-error":
            failure = {"code": 502, "message": "Provider returned error",
                       "metadata": {"error_type": "provider_unavailable"}}  # fmt: skip
            return self._answer(model_id, {"content": ""}, prompt_tokens, 0, "error", "ERROR",
                                error=failure)  # fmt: skip
        if fault in ("empty-data", "no-data"):
            if fault == "empty-data":
                message["images"] = []
            return self._answer(model_id, message, prompt_tokens, 0)
        image = self._render(request)
        if fault == "empty-url":
            url = ""
        elif fault == "url-result":
            url = self.runtime.files.put(image).url(call.base_url)
        else:
            url = f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}"
        message = {
            "content": said if request.wants_text else None,
            "images": [{"type": "image_url", "image_url": {"url": url}, "index": 0}],
            # Gemini 3 signs the image it makes; the signature comes as reasoning details.
            "reasoning_details": reasoning_details([image.data]),
        }
        return self._answer(model_id, message, prompt_tokens, _completion_tokens(request))

    def _render(self, request: Request) -> Encoded:
        source = request.images[0].size if request.images else None
        size = render_size(request.entry, request.ratio, request.size, source)
        # A continued chat's answer shows the turns the model saw (the renderer's earlier).
        earlier = request.conversation.earlier
        picture = Picture(
            request.prompt, size, request.entry.model.mime, earlier=earlier, seed=request.seed
        )
        if request.images:
            return render_edit(request.images, picture)
        return render_generate(picture)

    def _answer(
        self,
        model_id: str,
        message: dict[str, Any],
        prompt_tokens: int,
        completion_tokens: int,
        finish: str = "stop",
        native: str = "STOP",
        *,
        error: dict[str, Any] | None = None,
    ) -> SandboxResponse:
        created = int(self.runtime.epoch())
        choice: dict[str, Any] = {
            "logprobs": None,
            "finish_reason": finish,
            "native_finish_reason": native,
            "index": 0,
            "message": {"role": "assistant", "refusal": None, "reasoning": None, **message},
        }
        if error is not None:
            choice["error"] = error
        payload = {
            "id": f"gen-{created}-{secrets.token_hex(10)}",
            "provider": PROVIDER,
            "model": model_id,
            "object": "chat.completion",
            "created": created,
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                # OpenRouter reports what it charged, in credits (dollars).
                "cost": round(
                    prompt_tokens * INPUT_TOKEN_PRICE + completion_tokens * OUTPUT_TOKEN_PRICE, 6
                ),
            },
        }
        return json_response(200, payload)

    def _read(self, call: Call) -> Request:
        """Check the body in the order OpenRouter does: the model first, then the rest."""
        body = call.received.json
        if not isinstance(body, dict):
            detail = call.received.body_error or "the body must be a JSON object"
            raise Refused(400, f"Input validation error: {detail}")
        if body.get("stream"):
            raise Refused(400, "streaming is not emulated by the sandbox; send stream: false")
        model_id = body.get("model")
        if not isinstance(model_id, str) or not model_id:
            raise Refused(400, "No models provided")
        entry = MODELS.get(model_id)
        if entry is None:
            raise Refused(400, f"{model_id} is not a valid model ID")
        hosts = frozenset({call.netloc, SANDBOX_HOST})
        conversation = read_conversation(
            body.get("messages"), model_id, entry.max_images,
            lambda url: self.runtime.fetch_input(url, hosts)[0],
        )  # fmt: skip
        modalities = body.get("modalities", ["text"])
        if not isinstance(modalities, list) or not set(modalities) <= MODALITIES or not modalities:
            raise Refused(
                400, f"modalities must be a list of {', '.join(sorted(MODALITIES))}",
                {"error_type": "invalid_request"},
            )  # fmt: skip
        config = body.get("image_config") or {}
        if not isinstance(config, dict):
            raise Refused(400, "image_config must be an object", {"error_type": "invalid_request"})
        ratio = _choice(config, "aspect_ratio", entry.ratios, model_id)
        size = _choice(config, "image_size", entry.sizes, model_id)
        # [P] seed: an integer, passed to the providers that take it.
        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise Refused(400, "seed must be an integer", {"error_type": "invalid_request"})
        return Request(entry, conversation, "image" in modalities, "text" in modalities,
                       ratio, size, seed)  # fmt: skip


def _completion_tokens(request: Request) -> int:
    """What the image of a request is billed, in tokens."""
    if request.size == "0.5K":
        return HALF_K_TOKENS
    return output_tokens(request.entry.model, request.size)


def _input_tokens(request: Request) -> int:
    """What the messages are billed, in tokens: every text and image of the conversation."""
    conversation = request.conversation
    return text_tokens("\n".join(conversation.texts)) + INPUT_IMAGE_TOKENS * conversation.seen


def _check_context(request: Request) -> None:
    """Refuse a request whose input and output together pass the model's context length, as
    OpenRouter does before it reaches a provider: HTTP 400 and its own words (documented by
    its answers; the context length is taken as Google's input limit, and the part naming
    image input is inferred)."""
    text = text_tokens("\n".join(request.conversation.texts))
    images = INPUT_IMAGE_TOKENS * request.conversation.seen
    output = _completion_tokens(request)
    context = input_limit(request.entry.model)
    if text + images + output <= context:
        return
    image_part = f"{images} of image input, " if images else ""
    raise Refused(
        400,
        f"This endpoint's maximum context length is {context} tokens. However, you requested "
        f"about {text + images + output} tokens ({text} of text input, {image_part}{output} in "
        'the output). Please reduce the length of either one, or use the "middle-out" '
        "transform to compress your prompt automatically.",
    )


def _choice(
    config: Mapping[str, object], name: str, allowed: tuple[str, ...], model_id: str
) -> str | None:
    value = config.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise Refused(
            400, f"image_config.{name} {value!r} is not supported by {model_id}; use one of "
            f"{', '.join(allowed)}", {"error_type": "invalid_request"},
        )  # fmt: skip
    return value
