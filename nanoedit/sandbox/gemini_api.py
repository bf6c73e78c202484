"""Google's own Gemini API (generativelanguage): ``models/MODEL:generateContent`` with
``inlineData`` and ``fileData`` parts, ``models/MODEL``, the model list (paged with
``pageSize`` and ``pageToken``), and the Files API's resumable upload.

Routes are served under ``/v1beta`` and under ``/v1``, which Google's SDK calls by default. The
key goes in ``x-goog-api-key`` (or ``?key=``). Errors come in Google's shape
``{"error": {"code", "message", "status", "details"}}``; a path Google has no route for gets
its front end's HTML page. Request fields are read in camelCase or snake_case, as Google's
proto-JSON parser does (the SDK sends a mix: ``inlineData`` holding ``mime_type``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from nanoedit.sandbox.catalog import (
    GEMINI_MODELS,
    HALF_SIZE,
    REFUSAL,
    Family,
    Model,
    output_size,
    output_tokens,
)
from nanoedit.sandbox.faults import Phase, Stage, status_answer
from nanoedit.sandbox.lineup import LISTING_PHASES
from nanoedit.sandbox.prompts import (
    INPUT_IMAGE_TOKENS,
    INPUT_TOKEN_LIMITS,
    google_message,
    input_limit,
    input_tokens,
)
from nanoedit.sandbox.prompts import text_tokens as _tokens
from nanoedit.sandbox.render import Encoded, decode
from nanoedit.sandbox.runtime import SANDBOX_HOST, Call, EmulatedApi, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response, text_response

# How long an uploaded file lives (Google keeps them 48 h).
UPLOAD_TTL = 48 * 3600.0
MAX_UPLOADS = 500
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
# What Google's upload server tells clients to cut their chunks to.
CHUNK_GRANULARITY = 8 * 1024 * 1024
# A file of this size or more is PROCESSING for a while before it is ACTIVE (usable), as the
# Files API does with large media; so is any file under the fault upload-processing, while
# under upload-failed it ends FAILED, with this error.
LARGE_UPLOAD_BYTES = CHUNK_GRANULARITY
PROCESSING_SECONDS = 3.0
PROCESSING_FAILURE: dict[str, object] = {
    "code": 3,
    "message": "The file could not be processed as an image.",
}
UPLOAD_FAULTS = frozenset({"upload-processing", "upload-failed"})
# Input image types the image models take; the sandbox itself draws from PNG, JPEG and WebP.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
MAX_INPUT_IMAGES = {
    Family.FLASH: 3, Family.PRO: 14, Family.FLASH_3: 14, Family.FLASH_21: 14, Family.LITE: 14
}  # fmt: skip
RETRY_DELAY = "17s"
MODALITIES = ("TEXT", "IMAGE")
SUBMIT_PHASES = frozenset({Phase.SUBMIT, Phase.API})
API_PHASES = frozenset({Phase.API})
# Finish reasons the fault plan can ask for, with the finishMessage Google sends beside them
# (None: none; IMAGE_OTHER is Google's "not otherwise specified").
BLOCKED_IMAGE = (
    "Unable to show the generated image. The image was filtered out because it violated "
    "Google's Generative AI Prohibited Use policy. You will not be charged for blocked images. "
    "Try rephrasing the prompt. If you think this was a mistake, send feedback."
)
FINISH_FAULTS: dict[str, tuple[str, str | None]] = {
    "image-safety": ("IMAGE_SAFETY", BLOCKED_IMAGE),
    "image-prohibited": ("IMAGE_PROHIBITED_CONTENT", BLOCKED_IMAGE),
    "no-image": (
        "NO_IMAGE",
        "The model was expected to generate an image, but none was generated.",
    ),
    "image-other": ("IMAGE_OTHER", None),
}
# Google's words for each status a fault plan can ask for. 408 and 502 come from its front
# end, as an HTML page.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
STATUS_MESSAGES = {
    429: (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. "
        "To monitor your current usage, head to: https://ai.dev/rate-limit. "
    ),
    500: (
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting"
    ),
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
FRONT_END_PAGES = {
    404: ("Not Found", "The requested URL <code>{path}</code> was not found on this server."),
    408: ("Request Timeout", "Your client has taken too long to issue its request."),
    502: (
        "Bad Gateway",
        "The server encountered a temporary error and could not complete your request."
        "<p>Please try again in 30 seconds.",
    ),
}
MISSING_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
INVALID_KEY = "API key not valid. Please pass a valid API key."
# The 403s that are not about the key: a model the project may not use, and an API not enabled
# for the project (Google's ErrorInfo names the reason and where to enable it).
NO_PERMISSION = "The caller does not have permission"
PROJECT = "123456789012"
ACTIVATION_URL = (
    "https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/"
    f"overview?project={PROJECT}"
)
SERVICE_DISABLED = (
    f"Generative Language API has not been used in project {PROJECT} before or it is disabled. "
    f"Enable it by visiting {ACTIVATION_URL} then retry. If you enabled this API recently, wait "
    "a few minutes for the action to propagate to our systems and retry."
)
BAD_IMAGE = (
    "Unable to process input image. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting"
)
IMAGE_CONFIG_FIELDS = frozenset({"aspectRatio", "aspect_ratio", "imageSize", "image_size"})
_FILE_ID_CHARS = string.ascii_lowercase + string.digits
_MODEL_PATH = re.compile(r"/(?P<version>v1beta|v1)/models/(?P<model>[^/:]+)(?::(?P<action>\w+))?")
_MODELS_PATH = re.compile(r"/(?P<version>v1beta|v1)/models")
_FILE_PATH = re.compile(r"/(?P<version>v1beta|v1)/files/(?P<file>[a-z0-9-]+)")
_FILES_PATH = re.compile(r"/(?P<version>v1beta|v1)/files")
_UPLOAD_PATH = re.compile(r"/upload/(?P<version>v1beta|v1)/files")

# The model list's pages: Google's default and largest page size; and the most the sandbox
# answers on one page, fewer than asked as Google's list may ("the service may return fewer
# models"), so that a client's paging is exercised.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
SANDBOX_PAGE = 5
# The model the fault ``added`` lists (Nano Banana 3), and the one ``dropped`` drops.
ADDED_MODELS: dict[str, Model] = {
    "gemini-3.5-flash-image": Model("gemini-3.5-flash-image", Family.FLASH_21)
}
DROPPED_MODEL = "gemini-3.1-flash-image"
# How models.get describes a model whose family's description is not its own.
MODEL_NAMES: dict[str, dict[str, object]] = {
    "gemini-3.5-flash-image": {
        "version": "3.5", "displayName": "Nano Banana 3", "description": "Gemini 3.5 Flash Image"
    },
}  # fmt: skip
_CHAT_METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
# Models Google lists beside the image ones, so that a client's filter is tested: two text
# models, an embedding model, and Imagen, which predicts rather than generating content.
LISTED_BEFORE: tuple[dict[str, object], ...] = (
    {
        "name": "models/gemini-3-pro", "version": "3.0", "displayName": "Gemini 3 Pro",
        "description": "Gemini 3 Pro", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
        "supportedGenerationMethods": _CHAT_METHODS, "temperature": 1, "topP": 0.95,
        "topK": 64, "maxTemperature": 2, "thinking": True,
    },
    {
        "name": "models/gemini-3-flash", "version": "3.0", "displayName": "Gemini 3 Flash",
        "description": "Gemini 3 Flash", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
        "supportedGenerationMethods": _CHAT_METHODS, "temperature": 1, "topP": 0.95,
        "topK": 64, "maxTemperature": 2, "thinking": True,
    },
)  # fmt: skip
LISTED_AFTER: tuple[dict[str, object], ...] = (
    {
        "name": "models/gemini-embedding-001", "version": "001",
        "displayName": "Gemini Embedding 001",
        "description": "Obtain a distributed representation of a text.",
        "inputTokenLimit": 2048, "outputTokenLimit": 1,
        "supportedGenerationMethods": [
            "embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"
        ],
    },
    {
        "name": "models/imagen-4.0-generate-001", "version": "001", "displayName": "Imagen 4",
        "description": "Vertex served Imagen 4.0 model", "inputTokenLimit": 480,
        "outputTokenLimit": 8192, "supportedGenerationMethods": ["predict"],
    },
)  # fmt: skip

# What ``models.get`` tells of each model (Google's published limits; version as it reports).
MODEL_INFO: dict[Family, dict[str, object]] = {
    Family.FLASH: {
        "version": "2.0",
        "displayName": "Nano Banana",
        "description": "Gemini 2.5 Flash Image",
        "inputTokenLimit": INPUT_TOKEN_LIMITS[Family.FLASH],
        "outputTokenLimit": 32768,
    },
    Family.PRO: {
        "version": "3.0",
        "displayName": "Nano Banana Pro",
        "description": "Gemini 3 Pro Image",
        "inputTokenLimit": INPUT_TOKEN_LIMITS[Family.PRO],
        "outputTokenLimit": 32768,
    },
    Family.FLASH_3: {
        "version": "3.1",
        "displayName": "Nano Banana 2",
        "description": "Gemini 3.1 Flash Image",
        "inputTokenLimit": INPUT_TOKEN_LIMITS[Family.FLASH_3],
        "outputTokenLimit": 32768,
    },
    Family.FLASH_21: {
        "version": "2.1",
        "displayName": "Nano Banana 2.1",
        "description": "Gemini Nano Banana 2.1",
        "inputTokenLimit": 131072,
        "outputTokenLimit": 32768,
    },
    Family.LITE: {
        "version": "3.1",
        "displayName": "Nano Banana 2 Lite",
        "description": "Gemini 3.1 Flash-Lite Image",
        "inputTokenLimit": 131072,
        "outputTokenLimit": 32768,
    },
}


class GoogleError(Exception):
    """A request Google turns down: an error object with its HTTP status (and its status
    name, when it is not the usual one for the code)."""

    def __init__(
        self,
        code: int,
        message: str,
        details: list[dict[str, object]] | None = None,
        status: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.status = status or STATUS_NAMES[code]

    def response(self, headers: Mapping[str, str] | None = None) -> SandboxResponse:
        """The error answer: ``details`` only when there are some, as Google sends it."""
        error: dict[str, object] = {
            "code": self.code,
            "message": self.message,
            "status": self.status,
        }
        if self.details:
            error["details"] = self.details
        return json_response(self.code, {"error": error}, headers)


def front_end_page(status: int, path: str) -> SandboxResponse:
    """The HTML page Google's front end answers with, for a URL it has no route for (404) or
    when it gives up (408, 502)."""
    reason, text = FRONT_END_PAGES[status]
    page = (
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
        f"  <title>Error {status} ({reason})!!1</title>\n"
        f"  <p><b>{status}.</b> <ins>That\u2019s an error.</ins>\n"
        f"  <p>{text.format(path=path)}  <ins>That\u2019s all we know.</ins>\n"
    )
    return text_response(status, page, "text/html; charset=UTF-8")


def _field(values: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A field by either of its names (None when absent)."""
    value = values.get(camel)
    return values.get(snake) if value is None else value


def _timestamp(epoch: float) -> str:
    """RFC 3339 in UTC with microseconds, as Google writes them."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Route:
    """Which of the API's routes a request is for."""

    kind: str
    """``generate``, ``model``, ``models`` (the list), ``upload`` (a session's start),
    ``chunk`` (bytes for a session), ``file``, ``files`` (the list) or ``delete`` (a file)."""
    version: str
    name: str = ""
    """The model id or file id in the path."""


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
class Request:
    """A ``generateContent`` body, checked."""

    prompt: str
    images: tuple[InlineImage | FileImage, ...]
    modalities: frozenset[str]
    ratio: str | None
    size: str | None


@dataclass
class Upload:
    """An open resumable upload session and the bytes it has had so far."""

    mime: str
    display_name: str | None
    announced: int | None
    data: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class StoredUpload:
    """A file uploaded through the Files API."""

    id: str
    mime: str
    display_name: str | None
    data: bytes
    created: float
    """The clock reading when it was finalized."""
    ready: float
    """The clock reading when its processing ends (``created``: none)."""
    fails: bool = False
    """Whether its processing ends in FAILED rather than ACTIVE."""

    def state(self, now: float) -> str:
        """PROCESSING until ``ready``, then ACTIVE, or FAILED."""
        if now < self.ready:
            return "PROCESSING"
        return "FAILED" if self.fails else "ACTIVE"


class UploadStore:
    """Upload sessions and the files they made, dropped after ``UPLOAD_TTL`` and, past a size
    bound, oldest first."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Upload] = {}
        self._files: dict[str, StoredUpload] = {}  # insertion order is age order
        self._bytes = 0

    def start(self, upload: Upload) -> str:
        """Open a session; returns its id."""
        upload_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[upload_id] = upload
            while len(self._sessions) > MAX_UPLOADS:
                del self._sessions[next(iter(self._sessions))]
        return upload_id

    def session(self, upload_id: str) -> Upload | None:
        """The open session of that id, if any."""
        with self._lock:
            return self._sessions.get(upload_id)

    def finish(self, upload_id: str, processing: float = 0.0, fails: bool = False) -> StoredUpload:
        """Close a session and keep its bytes as a file, processed for ``processing`` seconds
        (then FAILED when ``fails``)."""
        with self._lock:
            upload = self._sessions.pop(upload_id)
            file_id = "".join(secrets.choice(_FILE_ID_CHARS) for _ in range(12))
            now = self._clock()
            stored = StoredUpload(
                file_id,
                upload.mime,
                upload.display_name,
                bytes(upload.data),
                now,
                now + processing,
                fails,
            )
            self._files[file_id] = stored
            self._bytes += len(stored.data)
            while len(self._files) > MAX_UPLOADS or self._bytes > MAX_UPLOAD_BYTES:
                self._bytes -= len(self._files.pop(next(iter(self._files))).data)
        return stored

    def cancel(self, upload_id: str) -> None:
        """Drop a session that failed."""
        with self._lock:
            self._sessions.pop(upload_id, None)

    def lookup(self, file_id: str) -> StoredUpload | None:
        """The file of that id, unless it expired or never was."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None or self._clock() - stored.created >= UPLOAD_TTL:
            return None
        return stored

    def files(self) -> list[StoredUpload]:
        """The files that have not expired, newest first."""
        with self._lock:
            stored = list(self._files.values())
        now = self._clock()
        return [file for file in reversed(stored) if now - file.created < UPLOAD_TTL]

    def delete(self, file_id: str) -> None:
        """Drop one file."""
        with self._lock:
            dropped = self._files.pop(file_id, None)
            if dropped is not None:
                self._bytes -= len(dropped.data)

    def expire_all(self) -> None:
        """Drop every file, as when their 48 hours are up (fault ``upload-expired``)."""
        with self._lock:
            self._files.clear()
            self._bytes = 0


def _not_found(model_id: str, version: str, method: str) -> GoogleError:
    return GoogleError(
        404,
        f"models/{model_id} is not found for API version {version}, or is not supported for "
        f"{method}. Call ListModels to see the list of available models and their supported "
        "methods.",
    )


def _file_denied(file_id: str) -> GoogleError:
    # Google says the same for a file that expired, was deleted, or is someone else's.
    return GoogleError(
        403, f"You do not have permission to access the File {file_id} or it may not exist."
    )


def _unknown_field(name: str, where: str) -> GoogleError:
    message = (
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field."
    )
    violation = {"field": where, "description": message}
    details: list[dict[str, object]] = [
        {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
    ]
    return GoogleError(400, message, details)


def _object(value: object, where: str) -> Mapping[str, Any]:
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
    texts: list[str] = []
    images: list[InlineImage | FileImage] = []
    for turn_index, raw_turn in enumerate(contents):
        turn = _object(raw_turn, f"contents[{turn_index}]")
        parts = turn.get("parts")
        if not parts or not isinstance(parts, list):
            raise GoogleError(
                400,
                f"* GenerateContentRequest.contents[{turn_index}].parts: contents.parts must "
                "not be empty.",
            )
        if turn.get("role", "user") == "model":
            continue  # the model's own earlier turns are history, not input
        for part_index, raw_part in enumerate(parts):
            where = f"contents[{turn_index}].parts[{part_index}]"
            _read_part(_object(raw_part, where), where, texts, images)
    config = _object(
        _field(body, "generationConfig", "generation_config") or {}, "generation_config"
    )
    modalities = _modalities(_field(config, "responseModalities", "response_modalities"))
    candidates = _field(config, "candidateCount", "candidate_count")
    if candidates is not None and candidates != 1:
        raise GoogleError(400, f"Multiple candidates is not enabled for models/{model.id}")
    image_config = _object(_field(config, "imageConfig", "image_config") or {}, "image_config")
    for name in image_config:
        if name not in IMAGE_CONFIG_FIELDS:
            raise _unknown_field(name, "generation_config.image_config")
    ratio = _field(image_config, "aspectRatio", "aspect_ratio")
    size = _field(image_config, "imageSize", "image_size")
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
    return Request(" ".join(texts), tuple(images), modalities, ratio, size)


def _read_part(
    part: Mapping[str, Any],
    where: str,
    texts: list[str],
    images: list[InlineImage | FileImage],
) -> None:
    text = part.get("text")
    inline = _field(part, "inlineData", "inline_data")
    file_data = _field(part, "fileData", "file_data")
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
        blob = _object(inline, f"{where}.inline_data")
        mime = _field(blob, "mimeType", "mime_type")
        if mime is None:
            raise GoogleError(
                400,
                f"* GenerateContentRequest.{where}.inline_data.mime_type: mime_type is not "
                "specified",
            )
        mime = _string(mime, f"{where}.inline_data.mime_type")
        encoded = _string(blob.get("data", ""), f"{where}.inline_data.data")
        try:
            # The proto-JSON parser also takes the URL-safe alphabet, and no padding.
            standard = encoded.replace("-", "+").replace("_", "/")
            data = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise GoogleError(
                400,
                f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding "
                f"failed for {_shown(encoded)}",
            ) from None
        if mime not in IMAGE_TYPES:
            raise GoogleError(400, f"Unsupported MIME type: {mime}")
        images.append(InlineImage(mime, data))
        return
    reference = _object(file_data, f"{where}.file_data")
    uri = _string(_field(reference, "fileUri", "file_uri") or "", f"{where}.file_data.file_uri")
    mime = _field(reference, "mimeType", "mime_type")
    if mime is not None and _string(mime, f"{where}.file_data.mime_type") not in IMAGE_TYPES:
        raise GoogleError(400, f"Unsupported MIME type: {mime}")
    images.append(FileImage(uri))


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


class GeminiApi(EmulatedApi):
    """Answers Google's routes under ``/v1beta``, ``/upload`` and, for Google's SDK, ``/v1``."""

    name = "gemini"
    index = """Gemini (x-goog-api-key: KEY, or ?key=KEY; the same under /v1)
  POST /v1beta/models/MODEL:generateContent   JSON: contents, generationConfig
  GET  /v1beta/models/MODEL
  GET  /v1beta/models                         ?pageSize=N&pageToken=T
  POST /upload/v1beta/files                   resumable upload: start, then upload, finalize
  GET  /v1beta/files
  GET  /v1beta/files/FILE_ID
  DELETE /v1beta/files/FILE_ID
"""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.uploads = UploadStore(runtime.clock)

    def answers(self, call: Call) -> bool:
        """Everything under ``/v1beta`` and ``/upload``; under ``/v1`` (the OpenAI-compatible
        namespace) the ``models/MODEL:action`` routes, and the model and file requests that
        carry a Google key."""
        path = call.received.path
        if path == "/v1beta" or path.startswith(("/v1beta/", "/upload/")):
            return True
        if not path.startswith("/v1/"):
            return False
        model = _MODEL_PATH.fullmatch(path)
        if model is not None and model["action"] is not None:
            return True  # no OpenAI-compatible path has a colon action
        return _route_of(call) is not None and _key_of(call) is not None

    def phases(self, call: Call) -> frozenset[Phase] | None:
        """Submits for ``generateContent``, a listing for the model list, plain API requests
        for the rest."""
        route = _route_of(call)
        if route is None:
            return None
        if route.kind == "models":
            return LISTING_PHASES
        return SUBMIT_PHASES if route.kind == "generate" else API_PHASES

    def handle(self, call: Call, fault: str | None = None) -> SandboxResponse:
        """Answer one request; ``fault`` is the answer fault taken for it."""
        route = _route_of(call)
        if fault is not None:
            return self._fault_answer(fault, route)
        if route is None:
            return front_end_page(404, call.received.path)
        try:
            if route.kind == "chunk":
                # The upload URL is the credential: Google's SDK sends no key with the bytes.
                return self._chunk(call)
            self._authenticate(call)
            if route.kind == "generate":
                return self._generate(call, route)
            if route.kind == "model":
                return self._model(route)
            if route.kind == "models":
                return self._list_models(call)
            if route.kind == "upload":
                return self._start_upload(call, route)
            if route.kind == "files":
                files = [self._file_object(stored, call) for stored in self.uploads.files()]
                return json_response(200, {"files": files} if files else {})
            stored = self.uploads.lookup(route.name)
            if stored is None:
                raise _file_denied(route.name)
            if route.kind == "delete":
                self.uploads.delete(stored.id)
                return json_response(200, {})
            return json_response(200, self._file_object(stored, call))
        except GoogleError as error:
            return error.response()

    def _authenticate(self, call: Call) -> None:
        key = _key_of(call)
        if not key:
            raise GoogleError(403, MISSING_KEY)
        if not self.accepts(call, key):
            details: list[dict[str, object]] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": INVALID_KEY,
                },
            ]
            # A key Google does not know is a bad argument (400), not a 401.
            raise GoogleError(400, INVALID_KEY, details)

    def _fault_answer(self, fault: str, route: Route | None) -> SandboxResponse:
        if fault == "invalid-argument":
            return GoogleError(400, "Request contains an invalid argument.").response()
        if fault == "permission-denied":
            return GoogleError(403, NO_PERMISSION).response()
        if fault == "service-disabled":
            return GoogleError(403, SERVICE_DISABLED, _service_disabled_details()).response()

        def status_error(status: int) -> SandboxResponse:
            if status in FRONT_END_PAGES:
                return front_end_page(status, "")
            details: list[dict[str, object]] | None = None
            if status == 429:
                details = _quota_details(route.name if route and route.kind == "generate" else None)
            return GoogleError(status, STATUS_MESSAGES[status], details).response()

        response = status_answer(fault, status_error, self.runtime.epoch())
        if fault == "429":
            # Google gives the wait in the body (RetryInfo), with no Retry-After header.
            response.headers.pop("Retry-After", None)
        return response

    def _listed(self) -> dict[str, Model]:
        """The image models Google lists now, after any lineup change."""
        return self.runtime.lineup.current(GEMINI_MODELS, ADDED_MODELS, DROPPED_MODEL)

    def _model(self, route: Route) -> SandboxResponse:
        model = self._listed().get(route.name)
        if model is None:
            raise _not_found(route.name, route.version, "get")
        return json_response(200, _model_object(model))

    def _list_models(self, call: Call) -> SandboxResponse:
        """One page of the model list: ``pageSize`` models (50 unless asked, at most 1000, and
        at most ``SANDBOX_PAGE`` here) from where ``pageToken`` left off, and the token of the
        next page while there is one."""
        self.runtime.lineup.catch_up(self.runtime.faults, self.name)
        listed = [
            *LISTED_BEFORE,
            *(_model_object(model) for model in self._listed().values()),
            *LISTED_AFTER,
        ]
        query = call.received.query
        size = _page_size(query.get("pageSize", query.get("page_size")))
        start = _page_start(query.get("pageToken", query.get("page_token")), len(listed))
        end = start + min(size, SANDBOX_PAGE)
        body: dict[str, object] = {"models": listed[start:end]}
        if end < len(listed):
            body["nextPageToken"] = _page_token(end)
        return json_response(200, body)

    def _generate(self, call: Call, route: Route) -> SandboxResponse:
        model = GEMINI_MODELS.get(route.name)
        if model is None:
            raise _not_found(route.name, route.version, "generateContent")
        if call.received.body_error is not None and call.received.json is None:
            raise GoogleError(400, "Invalid JSON payload received. Unexpected token.")
        request = read_request(call.received.json, model)
        # Counted before any image is fetched or drawn: a prompt past the limit costs nothing.
        count, limit = input_tokens(model, request.prompt, len(request.images)), input_limit(model)
        if count > limit:
            raise GoogleError(400, google_message(count, limit))
        inputs = [self._load(image, call) for image in request.images]
        # Submits only: a fault for a file an upload makes waits for the upload.
        fault = self.runtime.faults.take(frozenset({Phase.SUBMIT}), self.name, Stage.RESULT)
        if fault == "upload-expired":
            self.uploads.expire_all()
            for image in request.images:
                file_id = _upload_id(image.uri) if isinstance(image, FileImage) else None
                if file_id is not None:
                    raise _file_denied(file_id)
        return json_response(200, self._answer(model, request, inputs, fault))

    def _load(self, image: InlineImage | FileImage, call: Call) -> Image.Image:
        """The picture an image part stands for; GoogleError when there is none."""
        if isinstance(image, InlineImage):
            data = image.data
        else:
            file_id = _upload_id(image.uri)
            if file_id is not None:
                stored = self.uploads.lookup(file_id)
                if stored is None:
                    raise _file_denied(file_id)
                if stored.state(self.runtime.clock()) != "ACTIVE":
                    raise GoogleError(
                        400,
                        f"The File {file_id} is not in an ACTIVE state and usage is not allowed.",
                        status="FAILED_PRECONDITION",
                    )
                data = stored.data
            elif urlsplit(image.uri).scheme in ("http", "https"):
                # Google fetches public and signed URLs given as fileUri.
                try:
                    data, _ = self.runtime.fetch_input(
                        image.uri, frozenset({call.netloc, SANDBOX_HOST})
                    )
                except Exception:  # a caller's fetch may fail in any way; all mean the same
                    raise GoogleError(
                        400, f"Cannot fetch content from the provided URL: {image.uri}"
                    ) from None
            else:
                raise GoogleError(400, f"Invalid or unsupported file uri: {image.uri}")
        try:
            return decode(data)
        except ValueError:
            raise GoogleError(400, BAD_IMAGE) from None

    def _answer(
        self, model: Model, request: Request, inputs: list[Image.Image], fault: str | None
    ) -> dict[str, object]:
        """The ``generateContent`` answer, or the block or text a result fault asks for."""
        text_tokens = _tokens(request.prompt)
        image_tokens = INPUT_IMAGE_TOKENS[model.family] * len(inputs)
        prompt_details = [{"modality": "TEXT", "tokenCount": text_tokens}]
        if inputs:
            prompt_details.append({"modality": "IMAGE", "tokenCount": image_tokens})
        prompt_tokens = text_tokens + image_tokens
        if fault == "prompt-blocked":
            usage: dict[str, object] = {
                "promptTokenCount": prompt_tokens,
                "totalTokenCount": prompt_tokens,
                "promptTokensDetails": prompt_details,
            }
            return {
                "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                **self._trailer(model, usage),
            }
        if fault in FINISH_FAULTS:
            reason, message = FINISH_FAULTS[fault]
            candidate: dict[str, object] = {"finishReason": reason, "index": 0}
            if message is not None:
                candidate["finishMessage"] = message
            usage = {
                "promptTokenCount": prompt_tokens,
                "totalTokenCount": prompt_tokens,
                "promptTokensDetails": prompt_details,
            }
            return {"candidates": [candidate], **self._trailer(model, usage)}
        parts: list[dict[str, object]] = []
        thought_tokens = 0
        thinks = model.family is not Family.FLASH
        draws = fault != "text-only" and "IMAGE" in request.modalities
        if thinks:
            thought = f"**Planning the picture**\n\nI'm working out how to show: {request.prompt}"
            parts.append({"text": thought, "thought": True})
            thought_tokens = _tokens(thought)
            if draws:
                # An interim "thought image": a smaller draft, not billed, to be skipped.
                draft = self._render(model, request, inputs, HALF_SIZE, f"draft: {request.prompt}")
                parts.append({"inlineData": _blob(draft), "thought": True})
        out_details: list[dict[str, object]] = []
        out_tokens = 0
        if not draws:
            answer = (
                REFUSAL
                if fault == "text-only"
                else f"Here is what the image would show: {request.prompt}"
            )
            parts.append({"text": answer})
            out_tokens = _tokens(answer)
            out_details.append({"modality": "TEXT", "tokenCount": out_tokens})
        else:
            if "TEXT" in request.modalities:
                words = "Here is the edited image." if inputs else "Here is the image."
                parts.append({"text": words})
                out_tokens += _tokens(words)
                out_details.append({"modality": "TEXT", "tokenCount": out_tokens})
            image = self._render(model, request, inputs, request.size, request.prompt)
            image_part: dict[str, object] = {"inlineData": _blob(image)}
            if thinks:
                image_part["thoughtSignature"] = _signature(image)
            parts.append(image_part)
            image_out = output_tokens(model, request.size)
            out_tokens += image_out
            out_details.append({"modality": "IMAGE", "tokenCount": image_out})
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": out_tokens,
            "totalTokenCount": prompt_tokens + out_tokens + thought_tokens,
            "promptTokensDetails": prompt_details,
            "candidatesTokensDetails": out_details,
        }
        if thinks:
            usage["thoughtsTokenCount"] = thought_tokens
        candidate = {
            "content": {"parts": parts, "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
        return {"candidates": [candidate], **self._trailer(model, usage)}

    def _trailer(self, model: Model, usage: dict[str, object]) -> dict[str, object]:
        return {
            "usageMetadata": usage,
            "modelVersion": model.id,
            "responseId": secrets.token_urlsafe(16),
        }

    def _render(
        self,
        model: Model,
        request: Request,
        inputs: list[Image.Image],
        size: str | None,
        caption: str,
    ) -> Encoded:
        source = inputs[0].size if inputs else None
        pixels = output_size(model, request.ratio, size, source)
        if inputs:
            return self.runtime.renderer.edit(inputs, caption, pixels, model.mime)
        return self.runtime.renderer.generate(caption, pixels, model.mime)

    def _start_upload(self, call: Call, route: Route) -> SandboxResponse:
        headers = call.received.headers
        if headers.get("x-goog-upload-protocol", "").lower() != "resumable":
            raise GoogleError(
                400,
                "The sandbox takes resumable uploads only: send X-Goog-Upload-Protocol: resumable",
            )
        if headers.get("x-goog-upload-command", "").strip().lower() != "start":
            raise GoogleError(400, "A resumable upload starts with X-Goog-Upload-Command: start")
        metadata: Mapping[str, Any] = {}
        if isinstance(call.received.json, dict):
            metadata = _object(call.received.json.get("file") or {}, "file")
        mime = headers.get("x-goog-upload-header-content-type") or _field(
            metadata, "mimeType", "mime_type"
        )
        announced = headers.get("x-goog-upload-header-content-length", "")
        display_name = _field(metadata, "displayName", "display_name")
        upload = Upload(
            mime=str(mime or "application/octet-stream"),
            display_name=None if display_name is None else str(display_name),
            announced=int(announced) if announced.isdigit() else None,
        )
        upload_id = self.uploads.start(upload)
        url = (
            f"{call.base_url}/upload/{route.version}/files"
            f"?upload_id={upload_id}&upload_protocol=resumable"
        )
        return SandboxResponse(
            200,
            {
                "X-Goog-Upload-Status": "active",
                "X-Goog-Upload-URL": url,
                "X-Goog-Upload-Control-URL": url,
                "X-Goog-Upload-Chunk-Granularity": str(CHUNK_GRANULARITY),
                "Content-Type": "text/plain; charset=utf-8",
            },
            b"",
        )

    def _chunk(self, call: Call) -> SandboxResponse:
        """Bytes for an upload session, or a question about it. Every answer carries
        ``X-Goog-Upload-Status``: Google's SDK sends a chunk again when it is missing."""
        upload_id = call.received.query["upload_id"]
        upload = self.uploads.session(upload_id)
        final = {"X-Goog-Upload-Status": "final"}
        if upload is None:
            return GoogleError(404, f"No upload session {upload_id}").response(final)
        commands = {
            word.strip().lower()
            for word in call.received.headers.get("x-goog-upload-command", "").split(",")
        }
        received = len(upload.data)
        if "query" in commands:
            headers = {
                "X-Goog-Upload-Status": "active",
                "X-Goog-Upload-Size-Received": str(received),
            }
            return SandboxResponse(200, headers, b"")
        if not commands & {"upload", "finalize"}:
            return GoogleError(
                400, "X-Goog-Upload-Command must be upload, finalize, or query"
            ).response({"X-Goog-Upload-Status": "active"})
        if "upload" in commands:
            offset = call.received.headers.get("x-goog-upload-offset", "")
            if offset != str(received):
                self.uploads.cancel(upload_id)
                return GoogleError(
                    400,
                    f"Invalid request. The given offset is {offset or 'missing'}, but the "
                    f"current offset is {received}.",
                ).response(final)
            upload.data += call.received.body
        if "finalize" not in commands:
            return SandboxResponse(200, {"X-Goog-Upload-Status": "active"}, b"")
        if upload.announced is not None and upload.announced != len(upload.data):
            self.uploads.cancel(upload_id)
            return GoogleError(
                400,
                f"Failed to upload the file: {len(upload.data)} bytes arrived, but "
                f"{upload.announced} were announced in X-Goog-Upload-Header-Content-Length.",
            ).response(final)
        fault = self.runtime.faults.take(API_PHASES, self.name, Stage.RESULT)
        processing = 0.0
        if fault in UPLOAD_FAULTS or len(upload.data) >= LARGE_UPLOAD_BYTES:
            processing = PROCESSING_SECONDS
        stored = self.uploads.finish(upload_id, processing, fails=fault == "upload-failed")
        return json_response(200, {"file": self._file_object(stored, call)}, final)

    def _file_object(self, stored: StoredUpload, call: Call) -> dict[str, object]:
        created = self.runtime.epoch(stored.created)
        state = stored.state(self.runtime.clock())
        # Updated when its processing ended, if it has.
        updated = created if state == "PROCESSING" else self.runtime.epoch(stored.ready)
        payload: dict[str, object] = {"name": f"files/{stored.id}"}
        if stored.display_name is not None:
            payload["displayName"] = stored.display_name
        payload |= {
            "mimeType": stored.mime,
            # int64 fields are strings in proto JSON.
            "sizeBytes": str(len(stored.data)),
            "createTime": _timestamp(created),
            "updateTime": _timestamp(updated),
            "expirationTime": _timestamp(created + UPLOAD_TTL),
            # Base64 of the hex digest, as Google's own values decode.
            "sha256Hash": base64.b64encode(
                hashlib.sha256(stored.data).hexdigest().encode()
            ).decode(),
            "uri": f"{call.base_url}/v1beta/files/{stored.id}",
            "state": state,
            "source": "UPLOADED",
        }
        if state == "FAILED":
            payload["error"] = PROCESSING_FAILURE
        return payload


def _page_size(value: str | None) -> int:
    """The page size asked for: Google's default when absent or not above 0, at most 1000."""
    if value is None:
        return PAGE_SIZE
    try:
        size = int(value)
    except ValueError:
        raise GoogleError(400, f"Invalid value at 'page_size' (TYPE_INT32), {value!r}") from None
    return PAGE_SIZE if size <= 0 else min(size, MAX_PAGE_SIZE)


def _page_token(start: int) -> str:
    """An opaque token for the page that starts at ``start``."""
    return base64.urlsafe_b64encode(f"models:{start}".encode()).decode()


def _page_start(token: str | None, total: int) -> int:
    """Where the page a token names starts; a token the list never gave is refused."""
    if not token:
        return 0
    try:
        kind, _, start = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind == "models" and start.isdigit() and int(start) <= total:
            return int(start)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise GoogleError(400, "Invalid page token.")


def _model_object(model: Model) -> dict[str, object]:
    """What ``models.get`` and ``models.list`` tell of a model."""
    info = MODEL_INFO[model.family] | MODEL_NAMES.get(model.id, {})
    payload: dict[str, object] = {
        "name": f"models/{model.id}",
        "version": info["version"],
        "displayName": info["displayName"],
        "description": info["description"],
        "inputTokenLimit": info["inputTokenLimit"],
        "outputTokenLimit": info["outputTokenLimit"],
        "supportedGenerationMethods": ["generateContent", "countTokens", "batchGenerateContent"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
    }
    if model.family is not Family.FLASH:
        payload["thinking"] = True
    return payload


def _route_of(call: Call) -> Route | None:
    """The route a request is for, by method and path (None: no such route)."""
    method, path = call.method, call.received.path
    if method == "GET" and (match := _MODELS_PATH.fullmatch(path)):
        return Route("models", match["version"])
    if method == "POST" and (match := _UPLOAD_PATH.fullmatch(path)):
        kind = "chunk" if "upload_id" in call.received.query else "upload"
        return Route(kind, match["version"])
    if (match := _MODEL_PATH.fullmatch(path)) is not None:
        action = match["action"]
        if method == "POST" and action == "generateContent":
            return Route("generate", match["version"], match["model"])
        if method == "GET" and action is None:
            return Route("model", match["version"], match["model"])
        return None
    if method == "GET" and (match := _FILES_PATH.fullmatch(path)):
        return Route("files", match["version"])
    if method in ("GET", "DELETE") and (match := _FILE_PATH.fullmatch(path)):
        return Route("file" if method == "GET" else "delete", match["version"], match["file"])
    return None


def _key_of(call: Call) -> str | None:
    """The Google key a request carries, in its header or its query (None: neither)."""
    key = call.received.headers.get("x-goog-api-key")
    return key.strip() if key is not None else call.received.query.get("key")


def _upload_id(uri: str) -> str | None:
    """The file id of a Files API URI (on any host: Google's, or the sandbox's own)."""
    match = _FILE_PATH.fullmatch(urlsplit(uri).path)
    return None if match is None else match["file"]


def _blob(image: Encoded) -> dict[str, object]:
    return {"mimeType": image.mime, "data": base64.b64encode(image.data).decode()}


def _signature(image: Encoded) -> str:
    """An opaque thought signature, 64 bytes, the same for the same picture."""
    digest = hashlib.sha512(b"thought signature\0" + image.data).digest()
    return base64.b64encode(digest).decode()


def _service_disabled_details() -> list[dict[str, object]]:
    """What Google says beside a 403 for an API the project has not enabled."""
    return [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "SERVICE_DISABLED",
            "domain": "googleapis.com",
            "metadata": {
                "consumer": f"projects/{PROJECT}",
                "service": "generativelanguage.googleapis.com",
                "activationUrl": ACTIVATION_URL,
                "serviceTitle": "Generative Language API",
                "containerInfo": PROJECT,
            },
        },
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": SERVICE_DISABLED,
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {"description": "Google developers console API activation", "url": ACTIVATION_URL}
            ],
        },
    ]


def _quota_details(model_id: str | None) -> list[dict[str, object]]:
    dimensions = {"location": "global"} | ({"model": model_id} if model_id else {})
    return [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_requests_per_model",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                    "quotaDimensions": dimensions,
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": RETRY_DELAY},
    ]
