"""fal's queue: a request submitted to an app's queue moves from IN_QUEUE to IN_PROGRESS to
COMPLETED over the runtime's ``task_seconds``; its status, its response (the images, drawn once
when it is first found done, or the error a fault asks for) and its cancellation.
"""

from __future__ import annotations

import base64
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from nanoedit.sandbox.catalog import REFUSAL
from nanoedit.sandbox.fal_schema import (
    OWNER,
    App,
    Invalid,
    Job,
    detail_error,
    output_dimensions,
    read_job,
)
from nanoedit.sandbox.fal_storage import CDN_PREFIX, FalStorage
from nanoedit.sandbox.faults import Phase, Stage
from nanoedit.sandbox.fetch import FetchError
from nanoedit.sandbox.render import Encoded, Picture, decode, render_edit, render_generate
from nanoedit.sandbox.runtime import SANDBOX_HOST, Call, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

MAX_REQUESTS = 5000
POLICY_MESSAGE = (
    "The content could not be processed because it contained material flagged by a content checker."
)
MODEL_ERROR = "Runner disconnected while processing the request"


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


class FalQueue:
    """The requests queued on fal's apps; ``api`` names the emulated API whose faults they
    take, ``storage`` holds the uploads their ``image_urls`` may point to."""

    def __init__(self, runtime: Runtime, api: str, storage: FalStorage) -> None:
        self.runtime = runtime
        self.api = api
        self.storage = storage
        self._lock = threading.Lock()
        self._requests: dict[str, Request] = {}  # insertion order is age order

    def submit(self, call: Call, app: App, *, edit: bool) -> SandboxResponse:
        """Queue a request to ``app`` (its ``/edit`` path when ``edit``): its status, IN_QUEUE;
        a body its schema refuses gets the 422."""
        try:
            job = read_job(call.received.json, app, edit)
        except Invalid as invalid:
            return detail_error(422, invalid.loc, invalid.msg, invalid.type, invalid.ctx)
        fault = self.runtime.faults.take(
            frozenset({Phase.SUBMIT, Phase.API}), self.api, Stage.RESULT
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

    def request_route(self, call: Call, app: App, request_id: str, rest: str) -> SandboxResponse:
        """A queued request's routes: ``status``, its response (``rest`` empty) and ``cancel``."""
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
            picture = Picture(job.prompt, size, job.mime, variant, job.num_images, seed=job.seed)
            image = render_edit(inputs, picture) if inputs else render_generate(picture)
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
            upload = self.storage.lookup(parts.path)
            if upload is None:
                raise FetchError("HTTP 404")
            return upload.data
        return self.runtime.fetch_input(url, own_hosts)[0]
