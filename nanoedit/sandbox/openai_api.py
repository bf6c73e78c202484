"""The OpenAI-compatible gateway (new-api / one-api style): ``/v1/images/edits`` (multipart),
``/v1/images/generations`` (JSON) and ``/v1/models``, with a ``Bearer`` key. For OpenAI's own
GPT image model names (``gpt-image-*``) the two image routes answer as OpenAI's API does
(``nanoedit.sandbox.gpt_image``)."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PIL import Image

import nanoedit.sandbox.gpt_image as gpt_image
from nanoedit.sandbox.catalog import (
    OPENAI_MODELS,
    RATIOS,
    REFUSAL,
    SIZES,
    Family,
    Model,
    output_size,
    output_tokens,
)
from nanoedit.sandbox.faults import Phase, Stage, shared_kinds, status_answer
from nanoedit.sandbox.lineup import LISTING_PHASES
from nanoedit.sandbox.multipart import UploadedFile
from nanoedit.sandbox.prompts import google_message, input_limit, input_tokens
from nanoedit.sandbox.render import Encoded, Picture, decode
from nanoedit.sandbox.runtime import Call, EmulatedApi, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

MAX_N = 4
IMAGE_FIELDS = ("image", "image[]")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
OWNER = "google"
# Per input image, what Gemini bills for a picture of up to 384 px a side.
INPUT_IMAGE_TOKENS = 258
# What a gateway says with each HTTP status a fault plan can ask for.
STATUS_ERRORS: dict[int, tuple[str, str]] = {
    408: ("request timed out while reading the request, please retry", "request_timeout"),
    429: ("rate limit exceeded for the current group, please retry later", "rate_limit_exceeded"),
    500: ("internal server error", "internal_server_error"),
    502: ("bad response status code 502 from upstream", "bad_response_status_code"),
    503: ("upstream service temporarily unavailable, please retry later", "service_unavailable"),
    504: ("upstream request timed out", "gateway_timeout"),
}

Route = Callable[[Call, frozenset[Phase]], SandboxResponse]
# What the lineup faults change on the gateway's list: the name ``added`` lists (Nano Banana
# 3), and the one ``dropped`` drops.
ADDED_MODELS: dict[str, Model] = {"nano-banana-3": Model("nano-banana-3", Family.FLASH_21)}
DROPPED_MODEL = "nano-banana-2"


class Rejected(Exception):
    """A request the gateway refuses; carries the error object's fields (``type_`` None: the
    gateway's own type for the status)."""

    def __init__(
        self,
        message: str,
        *,
        param: str = "",
        status: int = 400,
        code: str = "invalid_request",
        type_: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code
        self.type = type_ or ("invalid_request_error" if status == 400 else "new_api_error")


@dataclass(frozen=True)
class Options:
    """The fields of one image request, checked."""

    model: Model
    prompt: str
    n: int
    response_format: str
    ratio: str | None
    size: str | None


def error(
    status: int, message: str, type_: str, code: str, request_id: str, param: str = ""
) -> SandboxResponse:
    """The gateway's error object; every message ends with the request id."""
    payload = {
        "error": {
            "message": f"{message} (request id: {request_id})",
            "type": type_,
            "param": param,
            "code": code,
        }
    }
    return json_response(status, payload)


def _text(values: Mapping[str, object], name: str) -> str | None:
    value = values.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Rejected(f"{name} must be a string", param=name)
    # Gateways are written in Go, where an empty field and a missing one look the same.
    return value or None


def _count(values: Mapping[str, object]) -> int:
    value = values.get("n", 1)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_N:
        raise Rejected(f"n must be an integer from 1 to {MAX_N}, got {value!r}", param="n")
    return value


def read_options(values: Mapping[str, object], has_images: bool | None) -> Options:
    """Check the fields in the order the gateway does: the model picks a channel first.

    ``has_images`` is None for generations, which take no image.
    """
    model_id = _text(values, "model")
    if model_id is None:
        raise Rejected("model is required", param="model")
    model = OPENAI_MODELS.get(model_id)
    if model is None:
        raise Rejected(
            f"no available channel for model {model_id} under group default",
            status=503,
            code="model_not_found",
        )
    prompt = _text(values, "prompt")
    if prompt is None or not prompt.strip():
        raise Rejected("prompt is required", param="prompt")
    if has_images is False:
        raise Rejected("image is required", param="image")
    n = _count(values)
    response_format = _text(values, "response_format") or "url"
    if response_format not in ("url", "b64_json"):
        raise Rejected(
            f"response_format must be url or b64_json, got {response_format!r}",
            param="response_format",
        )
    ratio = _text(values, "aspect_ratio")
    if ratio is not None and ratio not in RATIOS:
        raise Rejected(
            f"aspect_ratio must be one of {', '.join(RATIOS)}, got {ratio!r}", param="aspect_ratio"
        )
    size = _text(values, "image_size")
    if size is not None and size not in SIZES:
        raise Rejected(
            f"image_size must be one of {', '.join(SIZES)}, got {size!r}", param="image_size"
        )
    return Options(model, prompt, n, response_format, ratio, size)


def _check_prompt_length(options: Options, images: int) -> None:
    """Refuse a prompt past the model's input limit as the gateway does: it relays Google's
    400 in its own error object, typed as the upstream's (inferred from how a new-api gateway
    passes on any upstream error; the limit and Google's words are documented)."""
    count = input_tokens(options.model, options.prompt, images)
    limit = input_limit(options.model)
    if count > limit:
        raise Rejected(
            google_message(count, limit), code="INVALID_ARGUMENT", type_="upstream_error"
        )


class OpenAIApi(EmulatedApi):
    """Answers the ``/v1/…`` routes."""

    name = "openai"
    index = """OpenAI-compatible (Authorization: Bearer KEY)
  POST /v1/images/edits          multipart: model, prompt, image (repeatable), ...
  POST /v1/images/generations    JSON: model, prompt, n, ...
  GET  /v1/models
  (for gpt-image-* models the two image routes answer as OpenAI's own API: base64 only,
   size 1024x1024, 1536x1024, 1024x1536 or auto, 400 for response_format and other
   unknown fields)
"""
    # The shared faults it acts out: its results are URLs on the result-file host.
    paid_routes = ("POST /v1/images/edits", "POST /v1/images/generations")
    refusal = "text-only"
    fault_kinds = shared_kinds(
        "error200", "data-uri", "empty-url", "empty-data", "no-data", "text-only", "fewer"
    )

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._routes: dict[tuple[str, str], Route] = {
            ("POST", "/v1/images/edits"): self._edit,
            ("POST", "/v1/images/generations"): self._generate,
            ("GET", "/v1/models"): self._models,
        }

    def answers(self, call: Call) -> bool:
        """Everything under ``/v1``."""
        path = call.received.path
        return path == "/v1" or path.startswith("/v1/")

    def phases(self, call: Call) -> frozenset[Phase] | None:
        """Submits for the POSTs, a listing for the model list."""
        if (call.method, call.received.path) not in self._routes:
            return None
        return frozenset({Phase.SUBMIT, Phase.API}) if call.method == "POST" else LISTING_PHASES

    def handle(self, call: Call, fault: str | None = None) -> SandboxResponse:
        """Answer one request under ``/v1``; ``fault`` is the answer fault taken for it."""
        request_id = self.runtime.request_id()
        if fault is None:
            response = self._answer(call, request_id)
        else:
            response = self._fault_answer(fault, request_id)
        response.headers["X-Oneapi-Request-Id"] = request_id
        return response

    def _answer(self, call: Call, request_id: str) -> SandboxResponse:
        path = call.received.path
        route = self._routes.get((call.method, path))
        phases = self.phases(call)
        if route is None or phases is None:
            return error(
                404,
                f"Invalid URL ({call.method} {path})",
                "invalid_request_error",
                "invalid_url",
                request_id,
            )
        scheme, _, key = call.received.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.accepts(call, key.strip()):
            return error(401, "invalid token", "new_api_error", "invalid_api_key", request_id)
        try:
            return route(call, phases)
        except Rejected as rejected:
            return error(
                rejected.status,
                rejected.message,
                rejected.type,
                rejected.code,
                request_id,
                rejected.param,
            )

    def _fault_answer(self, fault: str, request_id: str) -> SandboxResponse:
        if fault == "error200":
            return error(
                200,
                "upstream error: do request failed",
                "new_api_error",
                "do_request_failed",
                request_id,
            )

        def status_error(status: int) -> SandboxResponse:
            message, code = STATUS_ERRORS[status]
            return error(status, message, "new_api_error", code, request_id)

        return status_answer(fault, status_error, self.runtime.epoch())

    def _models(self, call: Call, phases: frozenset[Phase]) -> SandboxResponse:
        self.runtime.lineup.catch_up(self.runtime.faults, self.name)
        listed = self.runtime.lineup.current(OPENAI_MODELS, ADDED_MODELS, DROPPED_MODEL)
        models = [{"id": model, "object": "model", "owned_by": OWNER} for model in listed]
        return json_response(200, {"object": "list", "data": models})

    def _edit(self, call: Call, phases: frozenset[Phase]) -> SandboxResponse:
        received = call.received
        content_type = received.headers.get("content-type", "").lower()
        if not content_type.startswith(FORM_TYPES):
            raise Rejected("the request must be multipart/form-data")
        if received.body_error is not None:
            raise Rejected(f"could not read the multipart body: {received.body_error}")
        # A URL-encoded form is read too (it just cannot carry images), as Go's form
        # parsing does; and like Go's FormValue, the first of repeated fields counts.
        values = {name: texts[0] for name, texts in received.fields.items()}
        uploads = [part for part in received.files if part.field in IMAGE_FIELDS]
        if gpt_image.is_gpt_image(values.get("model")):
            names = [*received.fields, *(part.field for part in received.files)]
            return self._gpt_image(values, names, uploads, call)
        options = read_options(values, has_images=bool(uploads))
        inputs = [self._decoded(number, upload) for number, upload in enumerate(uploads, 1)]
        return self._result(options, inputs, call, phases)

    def _generate(self, call: Call, phases: frozenset[Phase]) -> SandboxResponse:
        body = call.received.json
        if not isinstance(body, dict):
            detail = call.received.body_error or "the body must be a JSON object"
            raise Rejected(f"invalid request: {detail}")
        if gpt_image.is_gpt_image(body.get("model")):
            return self._gpt_image(body, list(body), None, call)
        return self._result(read_options(body, has_images=None), [], call, phases)

    def _gpt_image(
        self,
        values: Mapping[str, object],
        names: list[str],
        uploads: list[UploadedFile] | None,
        call: Call,
    ) -> SandboxResponse:
        """An edit (``uploads``) or a generation (None) for a GPT image model, answered as
        OpenAI's own API does. Result faults are the gateway's: they wait for its answers."""
        try:
            request = gpt_image.read_request(
                values, names, images=None if uploads is None else len(uploads)
            )
            inputs = [self._decoded(number, part) for number, part in enumerate(uploads or [], 1)]
            for part in call.received.files:
                if part.field == "mask":
                    gpt_image.check_mask(part.data, inputs[0].size if inputs else None)
        except Rejected as rejected:
            return gpt_image.OpenAIError(rejected.message, "image", "invalid_image").response()
        except gpt_image.OpenAIError as error:
            return error.response()
        source = inputs[0].size if inputs else None
        size = gpt_image.size_of(request, source)
        mime = gpt_image.OUTPUT_FORMATS[request.output_format]
        draw = self.runtime.renderer
        transparent = request.background == "transparent"
        pictures = [
            Picture(
                request.prompt,
                gpt_image.SIZES[size],
                mime,
                variant,
                request.n,
                transparent=transparent,
            )
            for variant in range(request.n)
        ]
        images = [
            draw.edit(inputs, picture) if inputs else draw.generate(picture) for picture in pictures
        ]
        created = int(self.runtime.epoch())
        return gpt_image.answer(request, size, images, len(inputs), created)

    @staticmethod
    def _decoded(number: int, upload: UploadedFile) -> Image.Image:
        """An uploaded image's picture; Rejected names it when it is none."""
        try:
            return decode(upload.data)
        except ValueError as exc:
            raise Rejected(
                f"image {number} ({upload.filename}) is {exc}; send PNG, JPEG or WebP",
                param="image",
            ) from None

    def _result(
        self, options: Options, inputs: list[Image.Image], call: Call, phases: frozenset[Phase]
    ) -> SandboxResponse:
        _check_prompt_length(options, len(inputs))
        fault = self.runtime.faults.take(phases, self.name, Stage.RESULT)
        prompt_tokens = math.ceil(len(options.prompt.encode()) / 4)
        prompt_tokens += INPUT_IMAGE_TOKENS * len(inputs)
        if fault == "text-only":
            items = [{"revised_prompt": REFUSAL, "url": "", "b64_json": ""}]
            return self._success(options, items, prompt_tokens, completion_tokens=40)
        if fault in ("empty-data", "no-data"):
            return self._success(options, [] if fault == "empty-data" else None, prompt_tokens, 0)
        # A relay that drops part of an answer sends fewer items; n stays what was asked.
        made = options.n - 1 if fault == "fewer" else options.n
        items = []
        for variant in range(made):
            image = self._render(options, inputs, variant)
            url, b64 = self._deliver(image, options, fault, call)
            items.append({"revised_prompt": options.prompt, "url": url, "b64_json": b64})
        completion_tokens = output_tokens(options.model, options.size) * made
        return self._success(options, items, prompt_tokens, completion_tokens)

    def _render(self, options: Options, inputs: list[Image.Image], variant: int) -> Encoded:
        source = inputs[0].size if inputs else None
        size = output_size(options.model, options.ratio, options.size, source)
        mime = options.model.mime
        draw = self.runtime.renderer
        picture = Picture(options.prompt, size, mime, variant, options.n)
        return draw.edit(inputs, picture) if inputs else draw.generate(picture)

    def _deliver(
        self, image: Encoded, options: Options, fault: str | None, call: Call
    ) -> tuple[str, str]:
        """The ``url`` and ``b64_json`` of one result: one of them is always empty."""
        encoded = base64.b64encode(image.data).decode()
        if fault == "empty-url":
            return "", ""
        if fault == "data-uri":
            return f"data:{image.mime};base64,{encoded}", ""
        if options.response_format == "b64_json":
            return "", encoded
        return self.runtime.files.put(image).url(call.base_url), ""

    def _success(
        self,
        options: Options,
        items: list[dict[str, str]] | None,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> SandboxResponse:
        payload: dict[str, object] = {"created": int(self.runtime.epoch())}
        if items is not None:
            payload["data"] = items
        payload["model"] = options.model.id
        payload["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return json_response(200, payload)
