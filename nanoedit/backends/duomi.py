"""The URL-list backend: duomi's asynchronous nano-banana API (submit a task, then poll it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from nanoedit.backends.base import (
    PreparedJob,
    Progress,
    ResultImage,
    auth_error,
    clip,
    host_of,
    looks_like_json,
    network_error,
    read_json,
    result_from_url,
)
from nanoedit.config import BackendSettings
from nanoedit.errors import ApiError, NetworkError

MAX_IMAGE_URLS = 10
MAX_POLL_INTERVAL = 10.0
POLL_GROWTH = 1.5
# Public clients give up after 5 to 10 minutes; 4K renders on a busy day need the upper end.
DEFAULT_DEADLINE = 600.0
FAILED_STATES = frozenset({"error", "failed", "failure"})


@dataclass
class _Task:
    task_id: str
    state: str = "submitted"
    images: list[ResultImage] | None = None


class DuomiBackend:
    """Submits jobs as tasks with the raw key and polls them until they end or time runs out."""

    name = "duomi"

    def __init__(
        self,
        settings: BackendSettings,
        client: httpx.Client,
        *,
        deadline: float = DEFAULT_DEADLINE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        assert settings.base_url is not None and settings.api_key is not None
        self.settings = settings
        self.client = client
        self.root = settings.base_url.rstrip("/")
        self.where = host_of(self.root)
        self.deadline = deadline
        self.clock = clock
        self.sleep = sleep

    def body(self, prepared: PreparedJob) -> dict[str, Any]:
        """The JSON body of one task, fields in the documented order."""
        options = prepared.job.options
        body: dict[str, Any] = {"model": prepared.model, "prompt": options.prompt}
        if prepared.job.kind == "edit":
            body["image_urls"] = list(prepared.urls)
        # The API adapts the ratio by itself when the field is absent, which is what auto means.
        if options.ratio != "auto":
            body["aspect_ratio"] = options.ratio
        if options.size:
            body["image_size"] = options.size
        return body

    def run(self, prepared: PreparedJob, progress: Progress) -> list[ResultImage]:
        """Submit ``count`` tasks, then poll them together until every one has ended."""
        started = self.clock()
        path = "nano-banana-edit" if prepared.job.kind == "edit" else "nano-banana"
        tasks = []
        for _ in range(prepared.job.options.count):
            progress("submitting task")
            tasks.append(_Task(self._submit(f"{self.root}/api/gemini/{path}", self.body(prepared))))
        progress("waiting for the model")
        interval = self.settings.poll_interval
        while True:
            self.sleep(min(interval, max(0.0, started + self.deadline - self.clock())))
            for task in tasks:
                if task.images is None:
                    self._poll(task)
            pending = [task for task in tasks if task.images is None]
            if not pending:
                break
            elapsed = self.clock() - started
            if elapsed >= self.deadline:
                ids = ", ".join(task.task_id for task in pending)
                raise NetworkError(
                    f"task {ids} on {self.where} did not finish within {elapsed:.0f} s "
                    f"(last state: {pending[0].state}); it may still finish on the server, "
                    "so wait before sending the job again"
                )
            progress(f"task {pending[0].state}")
            interval = min(interval * POLL_GROWTH, MAX_POLL_INTERVAL)
        return [image for task in tasks for image in task.images or []]

    def _headers(self) -> dict[str, str]:
        # The raw key: this API rejects the "Bearer" prefix.
        return {"Authorization": str(self.settings.api_key)}

    def _submit(self, url: str, body: dict[str, Any]) -> str:
        try:
            response = self.client.post(url, headers=self._headers(), json=body)
        except httpx.HTTPError as exc:
            raise network_error(exc, self.where) from None
        answer = self._check(response, "task submission")
        data = answer.get("data")
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not isinstance(task_id, str | int) or str(task_id) == "":
            raise ApiError(f"{self.where} accepted the task but sent no task id; try again later")
        return str(task_id)

    def _poll(self, task: _Task) -> None:
        url = f"{self.root}/api/gemini/nano-banana/{task.task_id}"
        try:
            response = self.client.get(url, headers=self._headers())
        except httpx.HTTPError as exc:
            raise network_error(exc, self.where) from None
        answer = self._check(response, f"task {task.task_id}")
        data = answer.get("data")
        if not isinstance(data, dict):
            raise ApiError(f"{self.where} answered the poll of task {task.task_id} with no data")
        task.state = str(data.get("state") or "unknown")
        if task.state == "succeeded":
            task.images = _images_of(data, task.task_id, self.where)
        elif task.state in FAILED_STATES:
            reason = clip(str(data.get("msg") or answer.get("msg") or "no reason given"))
            raise ApiError(f"task {task.task_id} on {self.where} failed: {reason}")
        # pending, running and states nobody has documented: keep polling until the deadline.

    def _check(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """The answer as a dict, once both the HTTP status and the ``code`` field say success."""
        status = response.status_code
        if status in (401, 403) and not looks_like_json(response):
            raise auth_error("duomi", self.where, f"HTTP {status}")
        answer = read_json(response, self.where)
        if not isinstance(answer, dict):
            if status in (401, 403):
                raise auth_error("duomi", self.where, f"HTTP {status}")
            raise ApiError(f"{self.where} answered the {what} with JSON of an unexpected shape")
        code = answer.get("code")
        message = clip(str(answer.get("msg") or answer.get("message") or "no message"))
        if status in (401, 403) or code in (401, 403, "401", "403"):
            raise auth_error("duomi", self.where, message)
        if status >= 400 or (code is not None and str(code) != "200"):
            shown = f"code {code}" if code is not None else f"HTTP {status}"
            raise ApiError(f"{self.where} refused the {what} ({shown}): {message}")
        return answer


def _images_of(data: dict[str, Any], task_id: str, where: str) -> list[ResultImage]:
    # The images sit in a second, nested "data" object.
    inner = data.get("data")
    images = inner.get("images") if isinstance(inner, dict) else None
    results = [
        result_from_url(item["url"].strip(), where)
        for item in images or []
        if isinstance(item, dict) and isinstance(item.get("url"), str) and item["url"].strip()
    ]
    if not results:
        text = inner.get("description") if isinstance(inner, dict) else None
        said = f": {clip(str(text))!r}" if text else ""
        raise ApiError(f"task {task_id} on {where} succeeded without an image{said}; try again")
    return results
