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

This module routes requests, checks keys and answers the model search; the apps and their
schema are in ``fal_schema``, the queue in ``fal_queue``, the storage and CDN in
``fal_storage``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nanoedit.sandbox.catalog import RATIOS
from nanoedit.sandbox.fal_queue import FalQueue
from nanoedit.sandbox.fal_schema import (
    ADDED_APPS,
    APP_NAMES,
    APPS,
    DROPPED_APP,
    OWNER,
    TALL_RATIOS,
    WIDENED_APP,
    App,
    openapi_schema,
)
from nanoedit.sandbox.fal_storage import CDN_PREFIX, UPLOAD_PREFIX, FalStorage
from nanoedit.sandbox.faults import Phase, result_fault, shared_kinds, status_answer
from nanoedit.sandbox.lineup import LISTING_PHASES, WIDENED
from nanoedit.sandbox.runtime import Call, EmulatedApi, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

# APPS is read from here by the model catalog's tests, as before the apps had a module.
__all__ = ["APPS", "FalApi"]

MODELS_PATH = "/v1/models"
UNKNOWN_KEY = "No user found for Key ID and Secret"
STATUS_DETAILS = {
    408: "Request timed out",
    429: "Too many requests, please slow down",
    500: "Internal server error",
    502: "Bad gateway",
    503: "No runner available, please retry",
    504: "Request timed out",
}


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
    paid_routes = (rf"POST /{OWNER}/[^/ ]+(/edit)?",)
    refusal = "content-flagged"
    fault_kinds = (
        result_fault("queue-stuck", "the request stays queued and never starts"),
        result_fault("model-error", "the request ends in an error of the model's runner"),
        result_fault("content-flagged", "the request is refused by the content checker"),
        result_fault("cancelled", "fal cancels the request: COMPLETED with error_type cancelled"),
        *shared_kinds("empty-data", "text-only", "data-uri", "widened"),
    )

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.storage = FalStorage(runtime)
        self.queue = FalQueue(runtime, self.name, self.storage)

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
            return self.storage.cdn_file(path)
        if method == "PUT" and path.startswith(UPLOAD_PREFIX):
            return self.storage.put_upload(call)
        if (method, path) == ("POST", "/files/upload"):
            return self.storage.cdn_upload(call)
        if path == MODELS_PATH:
            return self._search(call)
        if not self._authorized(call):
            return json_response(401, {"detail": UNKNOWN_KEY})
        if (method, path) == ("POST", "/storage/upload/initiate"):
            return self.storage.initiate(call)
        if (method, path) == ("POST", "/storage/auth/token"):
            return self.storage.cdn_token(call)
        parts = path.strip("/").split("/")
        if parts[0] == OWNER and len(parts) >= 2:
            app = self._apps(APPS).get(parts[1])
            if app is None:
                return json_response(404, {"detail": f"Application '{parts[1]}' not found"})
            if method == "POST" and len(parts) in (2, 3) and parts[2:] in ([], ["edit"]):
                return self.queue.submit(call, app, edit=parts[2:] == ["edit"])
            if len(parts) >= 4 and parts[2] == "requests":
                return self.queue.request_route(call, app, parts[3], "/".join(parts[4:]))
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
