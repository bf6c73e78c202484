"""duomi's asynchronous API: submit a task with image URLs, then poll it. The key is sent raw
(no ``Bearer``), and most errors come as HTTP 200 with a ``code`` in the body."""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from PIL import Image

from nanoedit.sandbox.catalog import DUOMI_MODELS, RATIOS, REFUSAL, SIZES, Model, output_size
from nanoedit.sandbox.faults import Phase, Stage, result_fault, shared_kinds, status_answer
from nanoedit.sandbox.prompts import google_message, input_limit, input_tokens
from nanoedit.sandbox.render import Picture, decode
from nanoedit.sandbox.runtime import SANDBOX_HOST, Call, EmulatedApi, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

MAX_IMAGE_URLS = 10
# The one model whose image_size duomi honours (its seed).
SIZED_MODEL = "gemini-3-pro-image-preview"
MAX_TASKS = 5000
# The real server measures these; fixed values keep answers comparable in tests.
EXEC_TIME = 0.05
CALLER_IP = "127.0.0.1"
STATUS_CODES = {"queued": "0", "pending": "1", "running": "2", "succeeded": "3", "error": "4"}
FAILED = "image generation failed: "
TASK_ERROR = FAILED + "the output was blocked by the safety filter (IMAGE_SAFETY)"
STATUS_MESSAGES = {
    408: "request timeout",
    429: "too many requests, please retry later",
    500: "internal server error",
    502: "bad gateway",
    503: "service temporarily unavailable, please retry later",
    504: "gateway timeout",
}
POLL_PREFIX = "/api/gemini/nano-banana/"
SUBMIT_PATHS = {"/api/gemini/nano-banana-edit": True, "/api/gemini/nano-banana": False}


class Invalid(Exception):
    """A request duomi turns down with ``code`` 400 (in an HTTP 200 answer)."""


@dataclass(frozen=True)
class Job:
    """What one task was asked to make."""

    model: Model
    prompt: str
    image_urls: tuple[str, ...]
    ratio: str | None
    size: str | None


@dataclass(frozen=True)
class Outcome:
    """How a finished task ended: ``data`` is the inner ``data`` object (None: null)."""

    state: str
    data: dict[str, object] | None = None
    msg: str = ""


@dataclass
class Task:
    """One submitted task; it moves on by the clock when polled."""

    id: str
    job: Job
    created: float
    base_url: str
    own_hosts: frozenset[str]
    fault: str | None
    polls: int = 0
    outcome: Outcome | None = None
    finished_after: float = 0.0
    """Seconds from creation to the end, fixed when it ends."""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _envelope(code: int, msg: str, data: object = None) -> dict[str, object]:
    payload: dict[str, object] = {"code": code, "msg": msg}
    if data is not None:
        payload["data"] = data
    payload["exec_time"] = EXEC_TIME
    payload["ip"] = CALLER_IP
    return payload


def _text(body: dict[str, object], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string")
    return value


def read_job(body: object, is_edit: bool) -> Job:
    """Check a submitted body; Invalid carries the message duomi answers with."""
    if not isinstance(body, dict):
        raise Invalid("invalid request body: a JSON object is required")
    model_id = _text(body, "model")
    if model_id is None:
        raise Invalid("model is required")
    model = DUOMI_MODELS.get(model_id)
    if model is None:
        raise Invalid(f"unsupported model: {model_id}; use one of {', '.join(DUOMI_MODELS)}")
    prompt = _text(body, "prompt")
    if prompt is None or not prompt.strip():
        raise Invalid("prompt is required")
    urls: tuple[str, ...] = ()
    if is_edit:
        urls = _image_urls(body.get("image_urls"))
    ratio = _text(body, "aspect_ratio")
    if ratio is not None and ratio != "auto" and ratio not in RATIOS:
        raise Invalid(f"aspect_ratio must be auto or one of {', '.join(RATIOS)}, got {ratio!r}")
    size = _text(body, "image_size")
    if size is not None and size not in SIZES:
        raise Invalid(f"image_size must be one of {', '.join(SIZES)} (capital K), got {size!r}")
    if model.id != SIZED_MODEL:
        # The seed: "分辨率参数,仅gemini-3-pro-image-preview支持" (the size is for Pro only).
        # What the others do with it is not documented; they render their default, as relays
        # that drop a field they do not take do [I].
        size = None
    return Job(model, prompt, urls, ratio, size)


def _image_urls(value: object) -> tuple[str, ...]:
    if value is None or value == []:
        raise Invalid("image_urls is required")
    if not isinstance(value, list) or not all(isinstance(url, str) for url in value):
        raise Invalid("image_urls must be an array of image links")
    if len(value) > MAX_IMAGE_URLS:
        raise Invalid(f"image_urls accepts at most {MAX_IMAGE_URLS} images, got {len(value)}")
    for index, url in enumerate(value):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid(
                f"image_urls[{index}] is not an http(s) link; base64 and data URIs are not "
                "supported, upload the image and pass its URL"
            )
    return tuple(value)


class DuomiApi(EmulatedApi):
    """Answers the ``/api/…`` routes and keeps the tasks, which take the runtime's
    ``task_seconds`` to succeed."""

    name = "duomi"
    index = """duomi (Authorization: KEY, no Bearer)
  POST /api/gemini/nano-banana-edit   JSON: model, prompt, image_urls, ...
  POST /api/gemini/nano-banana        JSON: model, prompt, ...
  GET  /api/gemini/nano-banana/TASK_ID
"""
    paid_routes = tuple(f"POST {path}" for path in SUBMIT_PATHS)
    refusal = "task-error"
    fault_kinds = (
        # The shared faults it acts out: its results are URLs on the result-file host.
        *shared_kinds(
            "error200", "data-uri", "empty-url", "empty-data", "no-data", "text-only", "fewer"
        ),
        result_fault("task-error", "the task ends in state error"),
        result_fault("task-stuck", "the task stays running forever"),
        result_fault("task-unknown", "the task reports state queued once"),
    )

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._lock = threading.Lock()
        self._tasks: dict[str, Task] = {}  # insertion order is age order

    def answers(self, call: Call) -> bool:
        """Everything under ``/api``."""
        return call.received.path.startswith("/api/")

    def phases(self, call: Call) -> frozenset[Phase] | None:
        """Submits for the two POSTs, polls for the task GETs."""
        method, path = call.method, call.received.path
        if method == "POST" and path in SUBMIT_PATHS:
            return frozenset({Phase.SUBMIT, Phase.API})
        if method == "GET" and path.startswith(POLL_PREFIX) and path != POLL_PREFIX:
            return frozenset({Phase.POLL, Phase.API})
        return None

    def handle(self, call: Call, fault: str | None = None) -> SandboxResponse:
        """Answer one request under ``/api``; ``fault`` is the answer fault taken for it."""
        path = call.received.path
        phases = self.phases(call)
        if phases is None:
            return json_response(404, {"code": 404, "msg": f"route not found: {path}"})
        if fault is not None:
            return self._fault_answer(fault)
        key = call.received.headers.get("authorization", "").strip()
        # The raw key only: "Bearer KEY" is looked up as a key, and there is none such.
        if key.lower().startswith("bearer ") or not self.accepts(call, key):
            return json_response(401, {"code": 401, "msg": "invalid api key"})
        return self._submit(call) if Phase.SUBMIT in phases else self._poll(call)

    def _fault_answer(self, fault: str) -> SandboxResponse:
        if fault == "error200":
            return json_response(200, _envelope(500, "upstream service error, please retry"))

        def status_error(status: int) -> SandboxResponse:
            return json_response(status, {"code": status, "msg": STATUS_MESSAGES[status]})

        return status_answer(fault, status_error, self.runtime.epoch())

    def _submit(self, call: Call) -> SandboxResponse:
        try:
            job = read_job(call.received.json, SUBMIT_PATHS[call.received.path])
        except Invalid as invalid:
            return json_response(200, _envelope(400, str(invalid)))
        phases = frozenset({Phase.SUBMIT, Phase.API})
        fault = self.runtime.faults.take(phases, self.name, Stage.RESULT)
        own_hosts = frozenset({call.netloc, SANDBOX_HOST})
        task = Task(
            secrets.token_hex(16), job, self.runtime.clock(), call.base_url, own_hosts, fault
        )
        with self._lock:
            self._tasks[task.id] = task
            while len(self._tasks) > MAX_TASKS:
                del self._tasks[next(iter(self._tasks))]
        return json_response(200, _envelope(200, "success", {"task_id": task.id}))

    def _poll(self, call: Call) -> SandboxResponse:
        task_id = call.received.path.removeprefix(POLL_PREFIX)
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            return json_response(200, {"code": 404, "msg": "task not found"})
        with task.lock:
            task.polls += 1
            state, changed, outcome = self._progress(task)
        created = self.runtime.epoch(task.created)
        data = {
            "task_id": task.id,
            "state": state,
            "data": outcome.data if outcome else None,
            "create_time": str(int(created)),
            "update_time": str(int(created + changed)),
            "msg": outcome.msg if outcome else "",
            "status": STATUS_CODES[state],
            "action": "generate",
        }
        return json_response(200, _envelope(200, "success", data))

    def _progress(self, task: Task) -> tuple[str, float, Outcome | None]:
        """The task's state now, the seconds after creation it entered it, and how it ended.

        Pending for the first half of ``task_seconds``, running for the second half, then
        finished; with ``task_seconds`` 0 the first poll finds it finished.
        """
        total = self.runtime.task_seconds
        elapsed = self.runtime.clock() - task.created
        if task.fault == "task-unknown" and task.polls == 1:
            return "queued", 0.0, None
        if elapsed < total / 2:
            return "pending", 0.0, None
        if elapsed < total or task.fault == "task-stuck":
            return "running", total / 2, None
        if task.outcome is None:
            task.outcome = self._finish(task)
            task.finished_after = total
        return task.outcome.state, task.finished_after, task.outcome

    def _finish(self, task: Task) -> Outcome:
        """Fetch the inputs and draw the result, once, when the task is first found done."""
        if task.fault == "task-error":
            return Outcome("error", msg=TASK_ERROR)
        job = task.job
        # duomi takes any prompt and passes it on; Google's refusal of one past the model's
        # input limit ends the task in error, in Google's words (inferred: that is how duomi
        # reports every failure upstream).
        count = input_tokens(job.model, job.prompt, len(job.image_urls))
        if count > input_limit(job.model):
            return Outcome("error", msg=FAILED + google_message(count, input_limit(job.model)))
        inputs: list[Image.Image] = []
        for index, url in enumerate(job.image_urls):
            try:
                data, _ = self.runtime.fetch_input(url, task.own_hosts)
            except Exception as exc:  # a caller's fetch may fail in any way; all mean the same
                return Outcome("error", msg=f"failed to download image_urls[{index}] {url}: {exc}")
            try:
                inputs.append(decode(data))
            except ValueError as exc:
                return Outcome("error", msg=f"image_urls[{index}] {url} is {exc}")
        if task.fault == "no-data":
            return Outcome("succeeded", None)
        # fewer: one of a job's tasks comes back empty, as duomi makes one image per task.
        if task.fault in ("text-only", "empty-data", "fewer"):
            description = REFUSAL if task.fault == "text-only" else ""
            return Outcome("succeeded", {"images": [], "description": description})
        source = inputs[0].size if inputs else None
        size = output_size(job.model, job.ratio, job.size, source)
        if inputs:
            image = self.runtime.renderer.edit(inputs, Picture(job.prompt, size, job.model.mime))
        else:
            image = self.runtime.renderer.generate(Picture(job.prompt, size, job.model.mime))
        if task.fault == "data-uri":
            url = f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}"
        elif task.fault == "empty-url":
            url = ""
        else:
            url = self.runtime.files.put(image).url(task.base_url)
        images = [{"url": url, "file_name": f"output.{image.ext}"}]
        return Outcome("succeeded", {"images": images, "description": ""})
