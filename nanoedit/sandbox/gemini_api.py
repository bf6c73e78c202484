"""Google's own Gemini API (generativelanguage): ``models/MODEL:generateContent`` with
``inlineData`` and ``fileData`` parts, ``models/MODEL``, the model list (paged with
``pageSize`` and ``pageToken``), and the Files API's resumable upload.

Routes are served under ``/v1beta`` and under ``/v1``, which Google's SDK calls by default. The
key goes in ``x-goog-api-key`` (or ``?key=``). Errors come in Google's shape
``{"error": {"code", "message", "status", "details"}}``; a path Google has no route for gets
its front end's HTML page. Request fields are read in camelCase or snake_case, as Google's
proto-JSON parser does (the SDK sends a mix: ``inlineData`` holding ``mime_type``).

This module routes requests and checks keys; the answers are made in ``gemini_generate``
(``generateContent``, the piece another Google API can reuse), ``gemini_models`` (the model
list), ``gemini_files`` (the Files API), ``gemini_request`` (reading a body) and
``gemini_errors`` (Google's error answers), ``gemini_interactions`` (the Interactions API,
``POST /v1beta/interactions`` and ``GET /v1beta/interactions/ID``) and ``gemini_batches`` (the
Batch API: ``models/MODEL:batchGenerateContent``, ``batches/ID`` and its results file, on a
clock of its own that tests move, ``nanoedit.sandbox.batching``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nanoedit.sandbox.catalog import GEMINI_MODELS
from nanoedit.sandbox.faults import (
    Phase,
    answer_fault,
    made_file_fault,
    result_fault,
    shared_kinds,
)
from nanoedit.sandbox.gemini_batch_store import FAULT_KINDS as BATCH_FAULT_KINDS
from nanoedit.sandbox.gemini_batches import Batches
from nanoedit.sandbox.gemini_errors import (
    MISSING_KEY,
    GoogleError,
    fault_answer,
    front_end_page,
    key_invalid,
    not_found,
)
from nanoedit.sandbox.gemini_files import FILE_PATH, FilesApi
from nanoedit.sandbox.gemini_generate import GenerateContent
from nanoedit.sandbox.gemini_interactions import FAULT_KINDS as INTERACTION_FAULT_KINDS
from nanoedit.sandbox.gemini_interactions import Interactions
from nanoedit.sandbox.gemini_models import ModelList
from nanoedit.sandbox.gemini_request import json_body
from nanoedit.sandbox.gemini_tiers import DOWNGRADE_FAULT, SERVED_HEADER, SHED_FAULT
from nanoedit.sandbox.lineup import LISTING_PHASES
from nanoedit.sandbox.runtime import SANDBOX_HOST, Call, EmulatedApi, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

SUBMIT_PHASES = frozenset({Phase.SUBMIT, Phase.API})
API_PHASES = frozenset({Phase.API})
POLL_PHASES = frozenset({Phase.POLL, Phase.API})
MODEL_PATH = re.compile(r"/(?P<version>v1beta|v1)/models/(?P<model>[^/:]+)(?::(?P<action>\w+))?")
MODELS_PATH = re.compile(r"/(?P<version>v1beta|v1)/models")
FILES_PATH = re.compile(r"/(?P<version>v1beta|v1)/files")
UPLOAD_PATH = re.compile(r"/upload/(?P<version>v1beta|v1)/files")
INTERACTIONS_PATH = re.compile(r"/(?P<version>v1beta|v1)/interactions")
INTERACTION_PATH = re.compile(r"/(?P<version>v1beta|v1)/interactions/(?P<id>[^/]+)")
BATCHES_PATH = re.compile(r"/(?P<version>v1beta|v1)/batches")
BATCH_PATH = re.compile(r"/(?P<version>v1beta|v1)/batches/(?P<id>[a-z0-9]+)(?::(?P<action>\w+))?")
# [P] The SDK downloads from /v1beta/files/ID:download; Google's REST guide from /download/v1beta.
DOWNLOAD_PATH = re.compile(
    r"(?:/download)?/(?P<version>v1beta|v1)/files/(?P<file>[a-z0-9-]+):download"
)
# Routes that read a batch: polls, as a client polls a task.
BATCH_READS = frozenset({"batch", "batches"})


@dataclass(frozen=True)
class Route:
    """Which of the API's routes a request is for."""

    kind: str
    """``generate``, ``model``, ``models`` (the list), ``upload`` (a session's start),
    ``chunk`` (bytes for a session), ``file``, ``files`` (the list), ``delete`` (a file),
    ``interactions`` (a create) or ``interaction`` (a stored one read back), and the Batch
    API's ``batch-create``, ``batch``, ``batches`` (the list), ``batch-cancel``,
    ``batch-delete`` and ``download`` (a batch's results file)."""
    version: str
    name: str = ""
    """The model id, file id, interaction id or batch id in the path."""


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
  POST /v1beta/interactions                   JSON: model, input, response_format, store
  GET  /v1beta/interactions/ID
  POST /v1beta/models/MODEL:batchGenerateContent  JSON: batch {displayName, inputConfig}
  GET  /v1beta/batches/ID                     the batch, as an operation
  GET  /v1beta/batches                        ?pageSize=N&pageToken=T
  POST /v1beta/batches/ID:cancel
  DELETE /v1beta/batches/ID
  GET  /download/v1beta/files/FILE_ID:download?alt=media   a batch's results (JSONL)
"""
    paid_routes = (
        r"POST /v1(beta)?/models/[^/ ]+:generateContent",
        r"POST /v1(beta)?/interactions",
        # One batch is one charge, however many requests it holds (the bill itself is made
        # when it ends: Runtime.batch_bills).
        r"POST /v1(beta)?/models/[^/ ]+:batchGenerateContent",
    )
    refusal = "image-safety"
    fault_kinds = (
        *shared_kinds("text-only"),
        answer_fault("invalid-argument", "HTTP 400 INVALID_ARGUMENT"),
        answer_fault(
            "permission-denied",
            "HTTP 403 PERMISSION_DENIED with no reason (a model kept from the key's project)",
        ),
        answer_fault(
            "service-disabled",
            "HTTP 403 PERMISSION_DENIED, reason SERVICE_DISABLED (the API is "
            "not enabled for the key's project)",
        ),
        result_fault("image-safety", "no image: finishReason IMAGE_SAFETY, with finishMessage"),
        result_fault("image-prohibited", "no image: finishReason IMAGE_PROHIBITED_CONTENT"),
        result_fault("no-image", "no image: finishReason NO_IMAGE"),
        result_fault("image-other", "no image: finishReason IMAGE_OTHER"),
        result_fault("prompt-blocked", "no candidates: promptFeedback.blockReason"),
        result_fault("upload-expired", "uploaded files expire; one in use is refused (403)"),
        made_file_fault("upload-processing", "an upload is PROCESSING for 3 s before it is ACTIVE"),
        made_file_fault("upload-failed", "an upload is PROCESSING for 3 s, then FAILED"),
        SHED_FAULT,
        DOWNGRADE_FAULT,
        *INTERACTION_FAULT_KINDS,
        *BATCH_FAULT_KINDS,
    )

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.files = FilesApi(runtime, self.name)
        self.models = ModelList(runtime, self.name)
        self.generator = GenerateContent(runtime, self.name, self.files.uploads)
        self.interactions = Interactions(runtime, self.name, self.generator)
        self.batches = Batches(runtime, self.name, self.generator, self.files.uploads)

    def answers(self, call: Call) -> bool:
        """Everything under ``/v1beta`` and ``/upload``; under ``/v1`` (the OpenAI-compatible
        namespace) the ``models/MODEL:action`` routes, and the model and file requests that
        carry a Google key."""
        path = call.received.path
        if path == "/v1beta" or path.startswith(("/v1beta/", "/upload/", "/download/")):
            return True
        if not path.startswith("/v1/"):
            return False
        model = MODEL_PATH.fullmatch(path)
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
        if route.kind == "interaction" or route.kind in BATCH_READS:
            return POLL_PHASES
        if route.kind in ("generate", "interactions", "batch-create"):
            return SUBMIT_PHASES
        return API_PHASES

    def handle(self, call: Call, fault: str | None = None) -> SandboxResponse:
        """Answer one request; ``fault`` is the answer fault taken for it."""
        route = _route_of(call)
        if fault is not None:
            model_id = route.name if route and route.kind == "generate" else None
            return fault_answer(fault, model_id, self.runtime.epoch())
        if route is None:
            return front_end_page(404, call.received.path)
        try:
            if route.kind == "chunk":
                # The upload URL is the credential: Google's SDK sends no key with the bytes.
                return self.files.chunk(call)
            self._authenticate(call)
            return self._answer(call, route)
        except GoogleError as error:
            return error.response()

    def _answer(self, call: Call, route: Route) -> SandboxResponse:
        """The answer to a request whose key was accepted."""
        if route.kind == "generate":
            return self._generate(call, route)
        if route.kind == "interactions":
            return self.interactions.create(call, route.version)
        if route.kind == "interaction":
            return self.interactions.get(call, route.name)
        if route.kind.startswith("batch") or route.kind == "download":
            return self._batch(call, route)
        if route.kind == "model":
            return self.models.get(route.name, route.version)
        if route.kind == "models":
            return self.models.page(call)
        if route.kind == "upload":
            return self.files.start(call, route.version)
        if route.kind == "files":
            return self.files.listing(call)
        if route.kind == "delete":
            return self.files.delete(route.name)
        generated = self.batches.results_file(call, route.name)
        if generated is not None:
            return json_response(200, generated)
        return self.files.get(call, route.name)

    def _batch(self, call: Call, route: Route) -> SandboxResponse:
        """A Batch API request whose key was accepted."""
        if route.kind == "batch-create":
            model = GEMINI_MODELS.get(route.name)
            if model is None:
                raise not_found(route.name, route.version, "batchGenerateContent")
            return self.batches.create(call, model)
        if route.kind == "batches":
            return self.batches.listing(call)
        if route.kind == "batch-cancel":
            return self.batches.cancel(route.name)
        if route.kind == "batch-delete":
            return self.batches.delete(route.name)
        if route.kind == "download":
            return self.batches.download(call, route.name)
        return self.batches.get(route.name)

    def _authenticate(self, call: Call) -> None:
        key = _key_of(call)
        if not key:
            raise GoogleError(403, MISSING_KEY)
        if not self.accepts(call, key):
            raise key_invalid()

    def _generate(self, call: Call, route: Route) -> SandboxResponse:
        model = GEMINI_MODELS.get(route.name)
        if model is None:
            raise not_found(route.name, route.version, "generateContent")
        body = json_body(call.received)
        own_hosts = frozenset({call.netloc, SANDBOX_HOST})
        answer, served = self.generator.served(body, model, own_hosts)
        return json_response(200, answer, None if served is None else {SERVED_HEADER: served})


def _route_of(call: Call) -> Route | None:
    """The route a request is for, by method and path (None: no such route)."""
    method, path = call.method, call.received.path
    if method == "GET" and (match := MODELS_PATH.fullmatch(path)):
        return Route("models", match["version"])
    if method == "POST" and (match := UPLOAD_PATH.fullmatch(path)):
        kind = "chunk" if "upload_id" in call.received.query else "upload"
        return Route(kind, match["version"])
    if (match := MODEL_PATH.fullmatch(path)) is not None:
        action = match["action"]
        if method == "POST" and action == "generateContent":
            return Route("generate", match["version"], match["model"])
        if method == "POST" and action == "batchGenerateContent":
            return Route("batch-create", match["version"], match["model"])
        if method == "GET" and action is None:
            return Route("model", match["version"], match["model"])
        return None
    if method == "GET" and (match := DOWNLOAD_PATH.fullmatch(path)):
        return Route("download", match["version"], match["file"])
    if (batch := _batch_route(method, path)) is not None:
        return batch
    if method == "GET" and (match := FILES_PATH.fullmatch(path)):
        return Route("files", match["version"])
    if method in ("GET", "DELETE") and (match := FILE_PATH.fullmatch(path)):
        return Route("file" if method == "GET" else "delete", match["version"], match["file"])
    if method == "POST" and (match := INTERACTIONS_PATH.fullmatch(path)):
        return Route("interactions", match["version"])
    if method == "GET" and (match := INTERACTION_PATH.fullmatch(path)):
        return Route("interaction", match["version"], match["id"])
    return None


def _batch_route(method: str, path: str) -> Route | None:
    """The Batch API route of a request (None: none)."""
    if method == "GET" and (match := BATCHES_PATH.fullmatch(path)):
        return Route("batches", match["version"])
    match = BATCH_PATH.fullmatch(path)
    if match is None:
        return None
    action = match["action"]
    if method == "POST" and action == "cancel":
        return Route("batch-cancel", match["version"], match["id"])
    if action is None and method in ("GET", "DELETE"):
        kind = "batch" if method == "GET" else "batch-delete"
        return Route(kind, match["version"], match["id"])
    return None


def _key_of(call: Call) -> str | None:
    """The Google key a request carries, in its header or its query (None: neither)."""
    key = call.received.headers.get("x-goog-api-key")
    return key.strip() if key is not None else call.received.query.get("key")
