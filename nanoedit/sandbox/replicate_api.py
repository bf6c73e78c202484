"""Replicate's predictions API for Google's official models: create a prediction on a model
(``Prefer: wait`` holds the answer until it ends), poll or cancel it; local files go up
through the files API first; ``GET /v1/models/OWNER/NAME`` describes a model, its latest
version's OpenAPI schema included, which is also what a prediction's input is checked against.
The key is a ``Bearer`` token; errors are RFC 7807 problem details ``{type, title, status,
detail}`` (API-NOTES-PROVIDERS §4).

``Prefer: wait`` is answered at once: with the finished prediction when it takes no longer
than the wait, else still ``starting``, as a real server says after holding the request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from nanoedit.sandbox.catalog import RATIOS, WIDE_RATIOS, Family, Model, output_size
from nanoedit.sandbox.faults import Phase, Stage, result_fault, shared_kinds, status_answer
from nanoedit.sandbox.fetch import FetchError
from nanoedit.sandbox.lineup import LISTING_PHASES, WIDENED
from nanoedit.sandbox.prompts import prompt_characters
from nanoedit.sandbox.render import Picture, decode, render_edit, render_generate, sniff_mime
from nanoedit.sandbox.runtime import SANDBOX_HOST, Call, EmulatedApi, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

MAX_IMAGE_INPUTS = 14
MAX_PREDICTIONS = 5000
MAX_FILE_BYTES = 128 * 1024 * 1024
MAX_WAIT = 60
OWNER = "google"
# The latest version of each model; a call to the model's endpoint runs it.
VERSION = "f5318740a7e9c8a3c0e3b0b4c8f1e2d3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9"
OUTPUT_FORMATS = {"jpg": "image/jpeg", "png": "image/png"}
PROBLEM_TYPE = "https://replicate.com/docs/reference/http#errors"
FLAGGED = (
    "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
)
MODEL_ERROR = "Prediction interrupted; please retry (code: PA)"
STATUS_TITLES = {
    408: "Request Timeout",
    429: "Request was throttled.",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
PREDICTION_PATH = re.compile(r"/v1/predictions/(?P<id>[a-z0-9]+)(?P<cancel>/cancel)?")
MODEL_PATH = re.compile(r"/v1/models/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+)(?P<create>/predictions)?")
FILE_PATH = re.compile(r"/v1/files/(?P<id>[a-zA-Z0-9]+)")
FINAL = frozenset({"succeeded", "failed", "canceled"})
# [S] The Pro and 2 schemas' safety_filter_level, strictest first; block_only_high the default.
SAFETY_LEVELS = ("block_low_and_above", "block_medium_and_above", "block_only_high")


@dataclass(frozen=True)
class ReplicateModel:
    """One of Google's models on Replicate and what its inputs accept (its schema's enums)."""

    name: str
    model: Model
    resolutions: tuple[str, ...]
    """Empty: the model has no ``resolution`` input."""
    ratios: tuple[str, ...] = RATIOS


def _models(*models: ReplicateModel) -> dict[str, ReplicateModel]:
    return {model.name: model for model in models}


MODELS: dict[str, ReplicateModel] = _models(
    # google/nano-banana (2.5) went with Google's model, shut down on 2026-10-02.
    ReplicateModel("nano-banana-pro", Model("gemini-3-pro-image", Family.PRO), ("1K", "2K", "4K")),
    # Its latest version lists the tall ratios too, and no 512 tier.
    ReplicateModel(
        "nano-banana-2",
        Model("gemini-3.1-flash-image", Family.PRO),
        ("1K", "2K", "4K"),
        RATIOS + WIDE_RATIOS,
    ),
)
# What the lineup faults change: the model ``added`` lists (Nano Banana 3), the one ``dropped``
# drops, and the one ``widened`` gives the tall ratios.
ADDED_MODELS: dict[str, ReplicateModel] = _models(
    ReplicateModel(
        "nano-banana-3",
        Model("gemini-3.5-flash-image", Family.PRO),
        ("1K", "2K", "4K"),
        RATIOS + WIDE_RATIOS,
    ),
)
DROPPED_MODEL = "nano-banana-2"
WIDENED_MODEL = "nano-banana-pro"


def openapi_schema(model: ReplicateModel) -> dict[str, Any]:
    """The model's latest version's OpenAPI schema as Cog writes it: the inputs under
    ``components.schemas.Input``, each enum its own schema, referred to through ``allOf``."""
    inputs: dict[str, Any] = {
        "prompt": {"type": "string", "title": "Prompt", "x-order": 0,
                   "description": "A text description of the image you want to generate"},
        "image_input": {"type": "array", "items": {"type": "string", "format": "uri"},
                        "title": "Image Input", "default": [], "x-order": 1,
                        "description": f"Input images to transform or use as reference "
                                       f"(up to {MAX_IMAGE_INPUTS} images)"},
        "aspect_ratio": {"allOf": [{"$ref": "#/components/schemas/aspect_ratio"}],
                         "default": "match_input_image", "x-order": 2,
                         "description": "Aspect ratio of the generated image"},
    }  # fmt: skip
    enums: dict[str, Any] = {
        "aspect_ratio": _enum_schema("aspect_ratio", ("match_input_image", *model.ratios)),
        "output_format": _enum_schema("output_format", tuple(OUTPUT_FORMATS)),
        "safety_filter_level": _enum_schema("safety_filter_level", SAFETY_LEVELS),
    }
    if model.resolutions:
        inputs["resolution"] = {"allOf": [{"$ref": "#/components/schemas/resolution"}],
                                "default": "2K", "x-order": 3,
                                "description": "Resolution of the generated image"}  # fmt: skip
        enums["resolution"] = _enum_schema("resolution", model.resolutions)
    inputs["output_format"] = {"allOf": [{"$ref": "#/components/schemas/output_format"}],
                               "default": "jpg", "x-order": 4,
                               "description": "Format of the output image"}  # fmt: skip
    inputs["safety_filter_level"] = {
        "allOf": [{"$ref": "#/components/schemas/safety_filter_level"}],
        "default": "block_only_high", "x-order": 5,
        "description": "block_low_and_above is strictest, block_medium_and_above blocks some "
                       "prompts, block_only_high is most permissive"}  # fmt: skip
    inputs["google_search"] = {"type": "boolean", "title": "Google Search", "default": False,
                               "x-order": 6, "description": "Ground the image in Google "
                               "Search results"}  # fmt: skip
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {},
        "components": {
            "schemas": {
                "Input": {"type": "object", "title": "Input", "required": ["prompt"],
                          "properties": inputs},
                "Output": {"type": "string", "title": "Output", "format": "uri"},
                **enums,
            }
        },
    }  # fmt: skip


def _enum_schema(name: str, values: tuple[str, ...]) -> dict[str, Any]:
    return {"enum": list(values), "type": "string", "title": name, "description": "An enumeration."}


def problem(status: int, title: str, detail: str, **extra: Any) -> SandboxResponse:
    """An RFC 7807 problem-details answer, as Replicate sends every API error."""
    body = {"type": PROBLEM_TYPE, "title": title, "status": status, "detail": detail, **extra}
    return json_response(status, body, {"Content-Type": "application/problem+json"})


class Invalid(Exception):
    """An input Replicate's schema check turns down (422), naming the field."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


@dataclass(frozen=True)
class Job:
    """What one prediction was asked to make."""

    model: ReplicateModel
    prompt: str
    image_input: tuple[str, ...]
    ratio: str | None
    resolution: str | None
    mime: str
    safety: str = "block_only_high"
    search: bool = False


def read_job(body: object, model: ReplicateModel) -> tuple[Job, dict[str, Any]]:
    """The checked job and the input as the prediction echoes it; Invalid names the field."""
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        raise Invalid("input", "input is required and must be an object")
    given: dict[str, Any] = body["input"]
    prompt = given.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise Invalid("input.prompt", "Missing required field")
    # The model's schema publishes no bound; the model's input limit in plain text stands for
    # it, in the JSON Schema check's words for a string too long (inferred).
    longest = prompt_characters(model.model)
    if len(prompt) > longest:
        raise Invalid("input.prompt", f"String length must be less than or equal to {longest}")
    images = given.get("image_input", [])
    if not isinstance(images, list) or not all(isinstance(url, str) for url in images):
        raise Invalid("input.image_input", "Invalid type. Expected: array of URIs")
    if len(images) > MAX_IMAGE_INPUTS:
        raise Invalid("input.image_input", f"Array must have at most {MAX_IMAGE_INPUTS} items")
    for index, url in enumerate(images):
        if urlsplit(url).scheme not in ("http", "https", "data"):
            raise Invalid(f"input.image_input.{index}", "Does not match format 'uri'")
    ratio = _enum(given, "aspect_ratio", ("match_input_image", *model.ratios))
    resolution = _enum(given, "resolution", model.resolutions) if model.resolutions else None
    output_format = _enum(given, "output_format", tuple(OUTPUT_FORMATS)) or "jpg"
    safety = _enum(given, "safety_filter_level", SAFETY_LEVELS) or "block_only_high"
    search = given.get("google_search", False)
    if not isinstance(search, bool):
        raise Invalid("input.google_search", "Invalid type. Expected: boolean, given: string")
    job = Job(
        model, prompt, tuple(images), ratio, resolution, OUTPUT_FORMATS[output_format], safety,
        search,
    )  # fmt: skip
    return job, given


def _enum(given: dict[str, Any], name: str, choices: tuple[str, ...]) -> str | None:
    value = given.get(name)
    if value is None:
        return None
    if value not in choices:
        listed = ", ".join(f'"{choice}"' for choice in choices)
        raise Invalid(f"input.{name}", f"{name} must be one of the following: {listed}")
    return str(value)


@dataclass
class Prediction:
    """One prediction; it moves from starting to processing to its end by the clock."""

    id: str
    job: Job
    input: dict[str, Any]
    created: float
    base_url: str
    own_hosts: frozenset[str]
    fault: str | None
    status: str = "starting"
    output: Any = None
    error: str | None = None
    ended: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class StoredFile:
    """A file sent to the files API."""

    id: str
    name: str
    content_type: str
    data: bytes
    created: float
    metadata: dict[str, Any]


class ReplicateApi(EmulatedApi):
    """Answers ``/v1/account``, ``/v1/models/OWNER/NAME[/predictions]``, ``/v1/predictions…``
    and ``/v1/files…``; the rest of ``/v1`` is the OpenAI-compatible gateway's."""

    name = "replicate"
    index = """Replicate (Authorization: Bearer KEY)
  GET  /v1/models/google/nano-banana[-pro|-2]              the model, its OpenAPI schema
  POST /v1/models/google/nano-banana[-pro|-2]/predictions  JSON: {"input": {prompt, ...}}
  GET  /v1/predictions/ID
  POST /v1/predictions/ID/cancel
  POST /v1/files                                           multipart: content
  GET  /v1/account
"""
    paid_routes = (r"POST /v1/models/google/[^/ ]+/predictions",)
    refusal = "content-flagged"
    fault_kinds = (
        result_fault("queue-stuck", "the request stays queued and never starts"),
        result_fault("model-error", "the request ends in an error of the model's runner"),
        result_fault("content-flagged", "the request is refused by the content checker"),
        *shared_kinds("no-data", "empty-data", "widened"),
    )

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._lock = threading.Lock()
        self._predictions: dict[str, Prediction] = {}  # insertion order is age order
        self._files: dict[str, StoredFile] = {}
        self._file_bytes = 0

    def answers(self, call: Call) -> bool:
        """Replicate's own routes under ``/v1``."""
        path = call.received.path
        return (
            path == "/v1/account"
            or path.startswith(("/v1/predictions", "/v1/files"))
            or MODEL_PATH.fullmatch(path) is not None
        )

    def phases(self, call: Call) -> frozenset[Phase] | None:
        """Submits for creating a prediction, polls for reading or cancelling one, a listing
        for reading a model."""
        path, method = call.received.path, call.method
        model = MODEL_PATH.fullmatch(path)
        if model is not None and model["create"] and method == "POST":
            return frozenset({Phase.SUBMIT, Phase.API})
        if model is not None and method == "GET":
            return LISTING_PHASES
        if PREDICTION_PATH.fullmatch(path) is not None:
            return frozenset({Phase.POLL, Phase.API})
        return frozenset({Phase.API})

    def handle(self, call: Call, fault: str | None = None) -> SandboxResponse:
        """Answer one request; ``fault`` is the answer fault taken for it."""
        if fault is not None:
            return self._fault_answer(fault)
        scheme, _, key = call.received.headers.get("authorization", "").partition(" ")
        if scheme not in ("Bearer", "Token") or not self.accepts(call, key.strip()):
            return problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        path, method = call.received.path, call.method
        if path == "/v1/account" and method == "GET":
            return json_response(
                200,
                {"type": "user", "username": "nanoedit", "name": "nanoedit sandbox",
                 "github_url": None},
            )  # fmt: skip
        if model := MODEL_PATH.fullmatch(path):
            return self._model_route(call, model["owner"], model["name"], bool(model["create"]))
        if prediction := PREDICTION_PATH.fullmatch(path):
            return self._prediction_route(call, prediction["id"], bool(prediction["cancel"]))
        if path == "/v1/files":
            return self._create_file(call) if method == "POST" else self._list_files(call)
        if found := FILE_PATH.fullmatch(path):
            return self._file_route(call, found["id"])
        return problem(404, "Not found", "The requested resource could not be found.")

    def _fault_answer(self, fault: str) -> SandboxResponse:
        def status_error(status: int) -> SandboxResponse:
            detail = (
                "Request was throttled. Expected available in 1 second."
                if status == 429
                else "The server could not complete the request; please retry."
            )
            return problem(status, STATUS_TITLES[status], detail)

        return status_answer(fault, status_error, self.runtime.epoch())

    # Predictions ----------------------------------------------------------------------------

    def _current(self, models: dict[str, ReplicateModel]) -> dict[str, ReplicateModel]:
        """``models`` with Nano Banana Pro's tall ratios once the lineup fault ``widened`` has
        been made."""
        widened = models.get(WIDENED_MODEL)
        if widened is None or not self.runtime.lineup.has(WIDENED):
            return models
        return models | {WIDENED_MODEL: replace(widened, ratios=RATIOS + WIDE_RATIOS)}

    def _model_route(self, call: Call, owner: str, name: str, create: bool) -> SandboxResponse:
        if not create and call.method == "GET":
            self.runtime.lineup.catch_up(self.runtime.faults, self.name)
            listed = self.runtime.lineup.current(MODELS, ADDED_MODELS, DROPPED_MODEL)
        else:
            listed = MODELS  # a model dropped from the listings still runs, as providers do
        model = self._current(listed).get(name) if owner == OWNER else None
        if model is None:
            return problem(404, "Model not found", f"The model {owner}/{name} does not exist.")
        if not create:
            if call.method != "GET":
                return problem(405, "Method not allowed", "Use GET.")
            return json_response(200, self._model_json(model))
        if call.method != "POST":
            return problem(405, "Method not allowed", "Use POST.")
        try:
            job, given = read_job(call.received.json, model)
        except Invalid as invalid:
            return problem(
                422, "Input validation failed", f"- {invalid}\n",
                invalid_fields=[{"type": "invalid", "field": invalid.field,
                                 "description": invalid.description}],
            )  # fmt: skip
        fault = self.runtime.faults.take(
            frozenset({Phase.SUBMIT, Phase.API}), self.name, Stage.RESULT
        )
        prediction = Prediction(
            secrets.token_hex(13)[:26],
            job,
            given,
            self.runtime.clock(),
            call.base_url,
            frozenset({call.netloc, SANDBOX_HOST}),
            fault,
        )
        with self._lock:
            self._predictions[prediction.id] = prediction
            while len(self._predictions) > MAX_PREDICTIONS:
                del self._predictions[next(iter(self._predictions))]
        wait = _prefer_wait(call.received.headers.get("prefer", ""))
        with prediction.lock:
            if wait is not None and self.runtime.task_seconds <= wait:
                self._advance(prediction, finish_now=True)
            body = self._prediction_json(prediction)
        return json_response(201, body)

    def _prediction_route(self, call: Call, prediction_id: str, cancel: bool) -> SandboxResponse:
        with self._lock:
            prediction = self._predictions.get(prediction_id)
        if prediction is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        if call.method != ("POST" if cancel else "GET"):
            return problem(405, "Method not allowed", "Method not allowed.")
        with prediction.lock:
            self._advance(prediction)
            if cancel and prediction.status not in FINAL:
                prediction.status = "canceled"
                prediction.ended = self.runtime.clock()
            return json_response(200, self._prediction_json(prediction))

    def _advance(self, prediction: Prediction, *, finish_now: bool = False) -> None:
        """Move the prediction on by the clock: starting for the first third of
        ``task_seconds``, processing for the rest, then ended (once)."""
        if prediction.status in FINAL or prediction.fault == "queue-stuck":
            return
        total = self.runtime.task_seconds
        elapsed = self.runtime.clock() - prediction.created
        if not finish_now and elapsed < total:
            prediction.status = "starting" if elapsed < total / 3 else "processing"
            return
        self._finish(prediction)
        prediction.ended = prediction.created + total

    def _finish(self, prediction: Prediction) -> None:
        job, fault = prediction.job, prediction.fault
        if fault in ("model-error", "content-flagged"):
            prediction.status = "failed"
            prediction.error = MODEL_ERROR if fault == "model-error" else FLAGGED
            return
        inputs: list[Image.Image] = []
        for index, url in enumerate(job.image_input):
            try:
                inputs.append(decode(self._fetch(url, prediction.own_hosts)))
            except (FetchError, ValueError) as exc:
                prediction.status = "failed"
                prediction.error = f"Failed to load image_input[{index}] from {url}: {exc}"
                return
        prediction.status = "succeeded"
        if fault in ("no-data", "empty-data"):
            prediction.output = None if fault == "no-data" else []
            return
        source = inputs[0].size if inputs else None
        ratio = job.ratio if job.ratio != "match_input_image" else None
        size = output_size(job.model.model, ratio, job.resolution, source)
        if inputs:
            image = render_edit(inputs, Picture(job.prompt, size, job.mime))
        else:
            image = render_generate(Picture(job.prompt, size, job.mime))
        prediction.output = self.runtime.files.put(image).url(prediction.base_url)

    def _fetch(self, url: str, own_hosts: frozenset[str]) -> bytes:
        """An input's bytes: a data URI decoded, the files API's own files from memory, any
        other URL fetched."""
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            if ";base64" not in header:
                raise ValueError("a data: URI that is not base64")
            try:
                return base64.b64decode(payload, validate=True)
            except binascii.Error:
                raise ValueError("a data: URI whose base64 does not decode") from None
        parts = urlsplit(url)
        found = FILE_PATH.fullmatch(parts.path)
        if parts.netloc.lower() in own_hosts and found is not None:
            with self._lock:
                stored = self._files.get(found["id"])
            if stored is None:
                raise FetchError("HTTP 404")
            return stored.data
        return self.runtime.fetch_input(url, own_hosts)[0]

    def _prediction_json(self, prediction: Prediction) -> dict[str, Any]:
        base = f"{prediction.base_url}/v1/predictions/{prediction.id}"
        started = None if prediction.status == "starting" else prediction.created
        body: dict[str, Any] = {
            "id": prediction.id,
            "model": f"{OWNER}/{prediction.job.model.name}",
            "version": VERSION,
            "input": prediction.input,
            "logs": "",
            "output": prediction.output,
            "data_removed": False,
            "error": prediction.error,
            "status": prediction.status,
            "created_at": self._stamp(prediction.created),
            "started_at": None if started is None else self._stamp(started),
            "completed_at": None if prediction.ended is None else self._stamp(prediction.ended),
            "urls": {
                "cancel": f"{base}/cancel",
                "get": base,
                "web": f"https://replicate.com/p/{prediction.id}",
            },
        }
        if prediction.status == "succeeded":
            body["metrics"] = {"predict_time": round(self.runtime.task_seconds, 3)}
        return body

    def _stamp(self, reading: float) -> str:
        moment = datetime.fromtimestamp(self.runtime.epoch(reading), UTC)
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")

    def _model_json(self, model: ReplicateModel) -> dict[str, Any]:
        return {
            "url": f"https://replicate.com/{OWNER}/{model.name}",
            "owner": OWNER,
            "name": model.name,
            "description": f"Google's {model.model.id} image model",
            "visibility": "public",
            "github_url": None,
            "paper_url": None,
            "license_url": None,
            "run_count": 0,
            "cover_image_url": None,
            "default_example": None,
            "latest_version": {"id": VERSION, "created_at": self._stamp(0.0),
                               "cog_version": "0.16.8", "openapi_schema": openapi_schema(model)},
        }  # fmt: skip

    # Files ----------------------------------------------------------------------------------

    def _create_file(self, call: Call) -> SandboxResponse:
        received = call.received
        if received.body_error is not None:
            return problem(400, "Bad request", f"Could not read the form: {received.body_error}")
        parts = [part for part in received.files if part.field == "content"]
        if not parts:
            return problem(400, "Bad request", "The form has no file in its content field.")
        part = parts[0]
        if len(part.data) > MAX_FILE_BYTES:
            return problem(413, "Payload too large", "Files must be 100 MB or smaller.")
        metadata: dict[str, Any] = {}
        if received.fields.get("metadata"):
            try:
                metadata = json.loads(received.fields["metadata"][0])
            except ValueError:
                return problem(400, "Bad request", "metadata must be a JSON object.")
        content_type = part.content_type or sniff_mime(part.data) or "application/octet-stream"
        stored = StoredFile(
            secrets.token_hex(6),
            part.filename or "file",
            content_type,
            part.data,
            self.runtime.clock(),
            metadata,
        )
        with self._lock:
            self._files[stored.id] = stored
            self._file_bytes += len(stored.data)
            while self._file_bytes > MAX_FILE_BYTES and len(self._files) > 1:
                oldest = next(iter(self._files))
                self._file_bytes -= len(self._files.pop(oldest).data)
        return json_response(201, self._file_json(stored, call.base_url))

    def _file_route(self, call: Call, file_id: str) -> SandboxResponse:
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        if call.method == "DELETE":
            with self._lock:
                self._files.pop(file_id, None)
                self._file_bytes -= len(stored.data)
            return SandboxResponse(204, {}, b"")
        return json_response(200, self._file_json(stored, call.base_url))

    def _list_files(self, call: Call) -> SandboxResponse:
        with self._lock:
            files = list(self._files.values())
        results = [self._file_json(stored, call.base_url) for stored in reversed(files)]
        return json_response(200, {"next": None, "previous": None, "results": results})

    def _file_json(self, stored: StoredFile, base_url: str) -> dict[str, Any]:
        created = self._stamp(stored.created)
        # Replicate keeps an uploaded file for a day.
        expires = datetime.fromtimestamp(self.runtime.epoch(stored.created), UTC) + timedelta(
            days=1
        )
        return {
            "id": stored.id,
            "name": stored.name,
            "content_type": stored.content_type,
            "size": len(stored.data),
            "etag": hashlib.md5(stored.data).hexdigest(),
            "checksums": {
                "sha256": hashlib.sha256(stored.data).hexdigest(),
                "md5": hashlib.md5(stored.data).hexdigest(),
            },
            "metadata": stored.metadata,
            "created_at": created,
            "expires_at": expires.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "urls": {"get": f"{base_url}/v1/files/{stored.id}"},
        }


def _prefer_wait(value: str) -> int | None:
    """The seconds a ``Prefer: wait`` or ``Prefer: wait=N`` header asks for (None: absent)."""
    for token in value.split(","):
        name, _, seconds = token.strip().partition("=")
        if name.strip().lower() == "wait":
            if not seconds:
                return MAX_WAIT
            if seconds.strip().isdigit():
                return max(1, min(MAX_WAIT, int(seconds)))
    return None
