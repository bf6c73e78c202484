"""fal's queue API and its storage: submit a request to an app's queue, poll its status,
fetch its response, cancel it; local files go up through the storage API first. The key is
sent as ``Authorization: Key KEY``; errors are ``{"detail": ...}``, validation errors a list
of ``{loc, msg, type}`` (API-NOTES-PROVIDERS §3).

The platform API's model search (``api.fal.ai/v1/models``: each app's metadata, and with
``expand=openapi-3.0`` its OpenAPI schema, whose enums are what a request is checked against)
answers there too, for requests that carry fal's ``Key`` or name an ``endpoint_id``.

The queue (``queue.fal.run``), the REST storage API (``rest.fal.ai``), the platform API
(``api.fal.ai``) and the CDN that serves uploads (``v3.fal.media``) all answer on the sandbox's
one address.
"""

from __future__ import annotations

import base64
import secrets
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from PIL import Image

from nanoedit.sandbox.catalog import RATIOS, REFUSAL, Family, Model, nearest_ratio, output_size
from nanoedit.sandbox.faults import Phase, Stage, result_fault, status_answer
from nanoedit.sandbox.fetch import FetchError
from nanoedit.sandbox.lineup import LISTING_PHASES, WIDENED
from nanoedit.sandbox.prompts import prompt_characters
from nanoedit.sandbox.render import Encoded, decode, render_edit, render_generate, sniff_mime
from nanoedit.sandbox.runtime import SANDBOX_HOST, Call, EmulatedApi, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

MAX_IMAGE_URLS = 14
MAX_NUM_IMAGES = 4
MAX_REQUESTS = 5000
# Uploads are kept in memory: at most this many bytes, oldest dropped first.
MAX_UPLOAD_BYTES = 128 * 1024 * 1024
OWNER = "fal-ai"
MODELS_PATH = "/v1/models"
CDN_PREFIX = "/fal-media/files/"
UPLOAD_PREFIX = "/storage/uploads/"
STORAGE_TYPES = ("fal-cdn-v3", "gcs")
OUTPUT_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
TALL_RATIOS = ("1:4", "4:1", "1:8", "8:1")
UNKNOWN_KEY = "No user found for Key ID and Secret"
POLICY_MESSAGE = (
    "The content could not be processed because it contained material flagged by a content checker."
)
MODEL_ERROR = "Runner disconnected while processing the request"
STATUS_DETAILS = {
    408: "Request timed out",
    429: "Too many requests, please slow down",
    500: "Internal server error",
    502: "Bad gateway",
    503: "No runner available, please retry",
    504: "Request timed out",
}
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


@dataclass(frozen=True)
class Outcome:
    """How a request ended: its response status and body, and the error its status shows."""

    status: int
    body: dict[str, Any]
    error: str | None = None
    error_type: str | None = None


@dataclass
class Request:
    """One queued request; it moves from IN_QUEUE to IN_PROGRESS to COMPLETED by the clock."""

    id: str
    job: Job
    created: float
    base_url: str
    own_hosts: frozenset[str]
    fault: str | None
    cancelled: bool = False
    outcome: Outcome | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, suffix: str = "") -> str:
        """The request's own URLs: on owner/alias, without the app's ``/edit`` path."""
        return f"{self.base_url}/{OWNER}/{self.job.app.alias}/requests/{self.id}{suffix}"


@dataclass(frozen=True)
class Upload:
    """A file put into storage."""

    data: bytes
    content_type: str


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
    return Job(app, edit, prompt, urls, num, ratio, resolution, OUTPUT_FORMATS[output_format])


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


class FalApi(EmulatedApi):
    """Answers fal's queue routes (``/fal-ai/…``), its storage API (``/storage/…``) and the
    CDN that serves uploads; requests take the runtime's ``task_seconds`` to complete."""

    name = "fal"
    index = """fal (Authorization: Key KEY)
  GET  /v1/models?endpoint_id=APP&expand=openapi-3.0   the platform API's model search
  POST /fal-ai/nano-banana[-pro|-2][/edit]             JSON: prompt, image_urls, num_images, ...
  GET  /fal-ai/nano-banana[-pro|-2]/requests/ID/status
  GET  /fal-ai/nano-banana[-pro|-2]/requests/ID
  PUT  /fal-ai/nano-banana[-pro|-2]/requests/ID/cancel
  POST /storage/upload/initiate?storage_type=fal-cdn-v3  JSON: content_type, file_name
  PUT  the upload_url it answers, with the file's bytes (no key)
"""
    fault_kinds = (
        result_fault("queue-stuck", "the request stays queued and never starts"),
        result_fault("model-error", "the request ends in an error of the model's runner"),
        result_fault("content-flagged", "the request is refused by the content checker"),
        result_fault("cancelled", "fal cancels the request: COMPLETED with error_type cancelled"),
        result_fault("empty-data", "HTTP 200 with an empty list of results"),
        result_fault("text-only", "HTTP 200 with a refusal in text and no image"),
        result_fault("data-uri", "the result URL is a data: URI"),
    )

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._lock = threading.Lock()
        self._requests: dict[str, Request] = {}  # insertion order is age order
        self._pending_uploads: dict[str, str] = {}  # upload token -> file path in the CDN
        self._uploads: dict[str, Upload] = {}  # CDN path -> file
        self._upload_bytes = 0
        self._cdn_tokens: set[str] = set()

    def answers(self, call: Call) -> bool:
        """The queue's app paths, the storage API, the CDN's upload route and files, and the
        model search when it carries fal's ``Key`` or names an app (the gateway's model list
        has the same path on the sandbox's one address)."""
        path = call.received.path
        if path == MODELS_PATH:
            scheme = call.received.headers.get("authorization", "").partition(" ")[0]
            return scheme == "Key" or "endpoint_id" in call.received.query
        return path.startswith((f"/{OWNER}/", "/storage/", CDN_PREFIX)) or (call.method, path) == (
            "POST",
            "/files/upload",
        )

    def phases(self, call: Call) -> frozenset[Phase] | None:
        """Submits for the app POSTs, polls for a request's status, response and cancel; the
        storage and CDN routes are plain API requests."""
        method, path = call.method, call.received.path
        if path == MODELS_PATH:
            return LISTING_PHASES if method == "GET" else None
        if path.startswith(f"/{OWNER}/"):
            parts = path.strip("/").split("/")
            if method == "POST" and "requests" not in parts:
                return frozenset({Phase.SUBMIT, Phase.API})
            if len(parts) >= 4 and parts[2] == "requests":
                return frozenset({Phase.POLL, Phase.API})
            return None
        return frozenset({Phase.API})

    def handle(self, call: Call, fault: str | None = None) -> SandboxResponse:
        """Answer one request; ``fault`` is the answer fault taken for it."""
        if fault is not None:
            return self._fault_answer(fault)
        path, method = call.received.path, call.method
        if method == "GET" and path.startswith(CDN_PREFIX):
            return self._cdn_file(path)
        if method == "PUT" and path.startswith(UPLOAD_PREFIX):
            return self._put_upload(call)
        if (method, path) == ("POST", "/files/upload"):
            return self._cdn_upload(call)
        if path == MODELS_PATH:
            return self._search(call)
        if not self._authorized(call):
            return json_response(401, {"detail": UNKNOWN_KEY})
        if (method, path) == ("POST", "/storage/upload/initiate"):
            return self._initiate(call)
        if (method, path) == ("POST", "/storage/auth/token"):
            return self._cdn_token(call)
        parts = path.strip("/").split("/")
        if parts[0] == OWNER and len(parts) >= 2:
            app = self._apps(APPS).get(parts[1])
            if app is None:
                return json_response(404, {"detail": f"Application '{parts[1]}' not found"})
            if method == "POST" and len(parts) in (2, 3) and parts[2:] in ([], ["edit"]):
                return self._submit(call, app, edit=parts[2:] == ["edit"])
            if len(parts) >= 4 and parts[2] == "requests":
                return self._request_route(call, app, parts[3], "/".join(parts[4:]))
        return json_response(404, {"detail": "Not Found"})

    def _apps(self, apps: dict[str, App]) -> dict[str, App]:
        """``apps`` with Nano Banana Pro's tall ratios once the lineup fault ``widened`` has
        been made."""
        widened = apps.get(WIDENED_APP)
        if widened is None or not self.runtime.lineup.has(WIDENED):
            return apps
        return apps | {WIDENED_APP: replace(widened, ratios=RATIOS + TALL_RATIOS)}

    def _search(self, call: Call) -> SandboxResponse:
        """The platform API's model search: the apps ``endpoint_id`` names (every app when it
        names none), with their schemas under ``expand=openapi-3.0``. The key is optional (it
        buys higher rate limits), but a key fal does not know is refused."""
        header = call.received.headers.get("authorization", "")
        if header and not self._authorized(call):
            return json_response(401, {"detail": UNKNOWN_KEY})
        self.runtime.lineup.catch_up(self.runtime.faults, self.name)
        query = parse_qs(urlsplit(call.url).query)
        apps = self._apps(self.runtime.lineup.current(APPS, ADDED_APPS, DROPPED_APP))
        listed = {
            f"{OWNER}/{alias}" + ("/edit" if edit else ""): (app, edit)
            for alias, app in apps.items()
            for edit in (False, True)
        }
        asked = query.get("endpoint_id") or list(listed)
        expand = "openapi-3.0" in query.get("expand", [])
        models = []
        for endpoint in asked:
            if endpoint not in listed:
                continue  # fal leaves out what it does not have
            app, edit = listed[endpoint]
            name = APP_NAMES.get(app.alias, app.alias) + (" Edit" if edit else "")
            model: dict[str, Any] = {
                "endpoint_id": endpoint,
                "metadata": {
                    "display_name": name, "category": "image-to-image" if edit else "text-to-image",
                    "description": f"Google's {app.model.id} image model", "status": "active",
                    "tags": [], "updated_at": "2026-05-28T00:00:00Z", "is_favorited": False,
                    "thumbnail_url": "", "model_url": f"https://fal.run/{endpoint}",
                    "date": "2026-05-28T00:00:00Z", "highlighted": False, "pinned": False,
                },
            }  # fmt: skip
            if expand:
                model["openapi"] = openapi_schema(app, edit)
            models.append(model)
        return json_response(200, {"models": models, "next_cursor": None, "has_more": False})

    def _authorized(self, call: Call) -> bool:
        scheme, _, key = call.received.headers.get("authorization", "").partition(" ")
        return scheme == "Key" and self.accepts(call, key.strip())

    def _fault_answer(self, fault: str) -> SandboxResponse:
        def status_error(status: int) -> SandboxResponse:
            return json_response(
                status,
                {"detail": STATUS_DETAILS[status], "error_type": "runner_scheduling_failure"},
                {"X-Fal-Error-Type": "runner_scheduling_failure", "X-Fal-Retryable": "true"},
            )

        return status_answer(fault, status_error, self.runtime.epoch())

    # The queue ------------------------------------------------------------------------------

    def _submit(self, call: Call, app: App, *, edit: bool) -> SandboxResponse:
        try:
            job = read_job(call.received.json, app, edit)
        except Invalid as invalid:
            return detail_error(422, invalid.loc, invalid.msg, invalid.type, invalid.ctx)
        fault = self.runtime.faults.take(
            frozenset({Phase.SUBMIT, Phase.API}), self.name, Stage.RESULT
        )
        own_hosts = frozenset({call.netloc, SANDBOX_HOST})
        request = Request(
            str(uuid.uuid4()), job, self.runtime.clock(), call.base_url, own_hosts, fault
        )
        with self._lock:
            self._requests[request.id] = request
            while len(self._requests) > MAX_REQUESTS:
                del self._requests[next(iter(self._requests))]
        body = self._status_body(request, "IN_QUEUE", 0)
        return json_response(200, body, {"x-fal-request-id": request.id})

    def _status_body(self, request: Request, status: str, position: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": status,
            "request_id": request.id,
            "response_url": request.url(),
            "status_url": request.url("/status"),
            "cancel_url": request.url("/cancel"),
        }
        if status == "IN_QUEUE":
            body["queue_position"] = position
        else:
            body["logs"] = None
        if status == "COMPLETED":
            body["metrics"] = {"inference_time": round(self.runtime.task_seconds * 2 / 3, 3)}
            if request.outcome is not None and request.outcome.error is not None:
                body["error"] = request.outcome.error
                body["error_type"] = request.outcome.error_type
        return body

    def _request_route(self, call: Call, app: App, request_id: str, rest: str) -> SandboxResponse:
        with self._lock:
            request = self._requests.get(request_id)
        if request is None or request.job.app is not app:
            return json_response(404, {"detail": f"Request {request_id} not found"})
        method = call.method
        with request.lock:
            status, position = self._progress(request)
            if (method, rest) == ("GET", "status"):
                code = 200 if status == "COMPLETED" else 202
                return json_response(code, self._status_body(request, status, position))
            if (method, rest) == ("PUT", "cancel"):
                if status == "IN_QUEUE":
                    request.cancelled = True
                    return json_response(202, {"status": "CANCELLATION_REQUESTED"})
                return json_response(400, {"status": "ALREADY_COMPLETED"})
            if (method, rest) == ("GET", ""):
                if status != "COMPLETED" or request.outcome is None:
                    return json_response(400, {"detail": "Request is still in progress"})
                outcome = request.outcome
                headers = {"x-fal-request-id": request.id}
                if outcome.error_type is not None:
                    headers |= {"X-Fal-Error-Type": outcome.error_type, "X-Fal-Retryable": "false"}
                return json_response(outcome.status, outcome.body, headers)
        return json_response(405, {"detail": "Method Not Allowed"})

    def _progress(self, request: Request) -> tuple[str, int]:
        """The request's status now and its queue position: queued for the first third of
        ``task_seconds`` (positions 2, 1, 0), in progress for the rest, then completed.
        Under the fault ``cancelled`` fal has cancelled it itself (a runner's time limit, the
        dashboard), as if a client had."""
        if request.fault == "cancelled":
            request.cancelled = True
        if request.cancelled:
            if request.outcome is None:
                request.outcome = Outcome(
                    400, {"detail": "Request was cancelled"}, "Request was cancelled", "cancelled"
                )
            return "COMPLETED", 0
        total = self.runtime.task_seconds
        elapsed = self.runtime.clock() - request.created
        if request.fault == "queue-stuck":
            return "IN_QUEUE", 3
        if elapsed < total / 3:
            return "IN_QUEUE", min(2, int(3 * (1 - elapsed / (total / 3))))
        if elapsed < total:
            return "IN_PROGRESS", 0
        if request.outcome is None:
            request.outcome = self._finish(request)
        return "COMPLETED", 0

    def _finish(self, request: Request) -> Outcome:
        """Fetch the inputs and draw the results, once, when the request is first found done."""
        job, fault = request.job, request.fault
        if fault == "model-error":
            body = {"detail": MODEL_ERROR, "error_type": "runner_disconnected"}
            return Outcome(500, body, MODEL_ERROR, "runner_disconnected")
        if fault == "content-flagged":
            detail: dict[str, object] = {
                "loc": ["body", "prompt"],
                "msg": POLICY_MESSAGE,
                "type": "content_policy_violation",
                "url": "https://docs.fal.ai/errors#content_policy_violation",
                "ctx": {"extra": {"categories": ["model_moderated"]}},
                "input": job.prompt,
            }
            return Outcome(422, {"detail": [detail]}, POLICY_MESSAGE, "content_policy_violation")
        inputs: list[Image.Image] = []
        for index, url in enumerate(job.image_urls):
            try:
                inputs.append(decode(self._fetch(url, request.own_hosts)))
            except (FetchError, ValueError) as exc:
                failure: dict[str, object] = {
                    "loc": ["body", "image_urls", index],
                    "msg": f"Failed to download the file ({exc}); check that the URL is public",
                    "type": "file_download_error",
                    "input": url,
                }
                return Outcome(422, {"detail": [failure]}, str(exc), "file_download_error")
        if fault in ("empty-data", "text-only"):
            description = REFUSAL if fault == "text-only" else ""
            return Outcome(200, {"images": [], "description": description})
        source = inputs[0].size if inputs else None
        size = output_dimensions(job, source)
        images = []
        for variant in range(job.num_images):
            if inputs:
                image = render_edit(inputs, job.prompt, size, job.mime, variant=variant,
                                    count=job.num_images)  # fmt: skip
            else:
                image = render_generate(job.prompt, size, job.mime, variant=variant,
                                        count=job.num_images)  # fmt: skip
            images.append(self._image_item(image, size, request, fault))
        return Outcome(200, {"images": images, "description": ""})

    def _image_item(
        self, image: Encoded, size: tuple[int, int], request: Request, fault: str | None
    ) -> dict[str, Any]:
        if fault == "data-uri":
            url = f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}"
        else:
            url = self.runtime.files.put(image).url(request.base_url)
        return {
            "url": url,
            "content_type": image.mime,
            "file_name": f"{secrets.token_hex(8)}.{image.ext}",
            "file_size": len(image.data),
            "width": size[0],
            "height": size[1],
        }

    def _fetch(self, url: str, own_hosts: frozenset[str]) -> bytes:
        """An input's bytes: the sandbox's own uploads from memory, anything else fetched."""
        parts = urlsplit(url)
        if parts.netloc.lower() in own_hosts and parts.path.startswith(CDN_PREFIX):
            with self._lock:
                upload = self._uploads.get(unquote(parts.path))
            if upload is None:
                raise FetchError("HTTP 404")
            return upload.data
        return self.runtime.fetch_input(url, own_hosts)[0]

    # Storage --------------------------------------------------------------------------------

    def _initiate(self, call: Call) -> SandboxResponse:
        storage_type = call.received.query.get("storage_type", "")
        if storage_type not in STORAGE_TYPES:
            return json_response(
                400, {"detail": f"storage_type must be one of {', '.join(STORAGE_TYPES)}"}
            )
        body = call.received.json
        if not isinstance(body, dict):
            return detail_error(422, (), "value is not a valid dict", "type_error.dict")
        content_type = body.get("content_type")
        file_name = body.get("file_name")
        for name, value in (("content_type", content_type), ("file_name", file_name)):
            if not isinstance(value, str) or not value:
                return detail_error(422, (name,), "field required", "value_error.missing")
        assert isinstance(file_name, str)
        token = secrets.token_hex(16)
        path = f"{CDN_PREFIX}{secrets.token_hex(8)}/{file_name}"
        with self._lock:
            self._pending_uploads[token] = path
        return json_response(
            200,
            {
                "upload_url": f"{call.base_url}{UPLOAD_PREFIX}{token}",
                "file_url": f"{call.base_url}{quote(path)}",
            },
        )

    def _put_upload(self, call: Call) -> SandboxResponse:
        token = call.received.path.removeprefix(UPLOAD_PREFIX)
        with self._lock:
            path = self._pending_uploads.pop(token, None)
        if path is None:
            return json_response(403, {"detail": "The upload URL is invalid or was used already"})
        content_type = call.received.headers.get("content-type", "application/octet-stream")
        self._store(path, Upload(call.received.body, content_type))
        return SandboxResponse(200, {}, b"")

    def _cdn_token(self, call: Call) -> SandboxResponse:
        """A token for the CDN's own upload route, as the Python client fetches one."""
        token = secrets.token_hex(16)
        with self._lock:
            self._cdn_tokens.add(token)
        expires = datetime.fromtimestamp(self.runtime.epoch(), UTC) + timedelta(hours=1)
        return json_response(
            200,
            {
                "token": token,
                "token_type": "Bearer",
                "base_url": call.base_url,
                "expires_at": expires.isoformat(),
            },
        )

    def _cdn_upload(self, call: Call) -> SandboxResponse:
        scheme, _, token = call.received.headers.get("authorization", "").partition(" ")
        with self._lock:
            known = scheme == "Bearer" and token.strip() in self._cdn_tokens
        if not known:
            return json_response(401, {"detail": "Invalid or expired upload token"})
        headers = call.received.headers
        name = headers.get("x-fal-file-name") or "upload.bin"
        path = f"{CDN_PREFIX}{secrets.token_hex(8)}/{name}"
        content_type = headers.get("content-type", "application/octet-stream")
        self._store(path, Upload(call.received.body, content_type))
        return json_response(200, {"access_url": f"{call.base_url}{quote(path)}"})

    def _store(self, path: str, upload: Upload) -> None:
        with self._lock:
            self._uploads[path] = upload
            self._upload_bytes += len(upload.data)
            while self._upload_bytes > MAX_UPLOAD_BYTES and len(self._uploads) > 1:
                oldest = next(iter(self._uploads))
                self._upload_bytes -= len(self._uploads.pop(oldest).data)

    def _cdn_file(self, path: str) -> SandboxResponse:
        with self._lock:
            upload = self._uploads.get(unquote(path))
        if upload is None:
            return json_response(404, {"detail": "File not found"})
        mime = sniff_mime(upload.data) or upload.content_type
        return SandboxResponse(200, {"Content-Type": mime}, upload.data)
