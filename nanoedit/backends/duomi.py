"""The URL-list backend: duomi's asynchronous nano-banana API (submit a task, then poll it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from nanoedit.backends.base import (
    PlannedRequest,
    PreparedJob,
    Progress,
    ResultImage,
    auth_error,
    clip,
    host_of,
    looks_like_json,
    read_json,
    result_from_url,
)
from nanoedit.config import BackendSettings
from nanoedit.errors import ApiError, NetworkError
from nanoedit.http import JobHttp

MAX_IMAGE_URLS = 10
MAX_POLL_INTERVAL = 10.0
POLL_GROWTH = 1.5
FAILED_STATES = frozenset({"error", "failed", "failure"})


@dataclass
class _Task:
    task_id: str
    state: str = "submitted"
    images: list[ResultImage] | None = None
    # Why a task that succeeded brought no image: the job fails with it only if none did.
    empty: ApiError | None = None


class DuomiBackend:
    """Submits jobs as tasks with the raw key and polls them until they end or time runs out.

    The job's time budget (``JobHttp.deadline``, from ``--timeout``) bounds the polling too.
    """

    name = "duomi"

    def __init__(self, settings: BackendSettings, http: JobHttp) -> None:
        assert settings.base_url is not None
        self.settings = settings
        self.http = http
        self.root = settings.base_url.rstrip("/")
        self.where = host_of(self.root)

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

    def _submit_url(self, prepared: PreparedJob) -> str:
        path = "nano-banana-edit" if prepared.job.kind == "edit" else "nano-banana"
        return f"{self.root}/api/gemini/{path}"

    def plan(self, prepared: PreparedJob) -> list[PlannedRequest]:
        """The task submissions of the job (one per image asked for)."""
        note = f"then poll GET {self.root}/api/gemini/nano-banana/TASK_ID until it succeeds"
        request = PlannedRequest(
            "POST",
            self._submit_url(prepared),
            {"Authorization": "{key}"},
            json=self.body(prepared),
            note=note,
        )
        return [request] * prepared.job.options.count

    def run(self, prepared: PreparedJob, progress: Progress) -> list[ResultImage]:
        """Submit ``count`` tasks, then poll them together until every one has ended."""
        deadline = self.http.deadline
        tasks = []
        for _ in range(prepared.job.options.count):
            progress("submitting task")
            tasks.append(_Task(self._submit(self._submit_url(prepared), self.body(prepared))))
        progress("waiting for the model, task submitted")
        interval = self.settings.poll_interval
        while True:
            self.http.sleep(min(interval, deadline.remaining()))
            pending = [task for task in tasks if task.images is None]
            if deadline.remaining() <= 0:
                ids = ", ".join(task.task_id for task in pending)
                raise NetworkError(
                    f"task {ids} on {self.where} did not finish within the job's time limit of "
                    f"{deadline.seconds:g} s ({deadline.elapsed():.0f} s elapsed, last state: "
                    f"{pending[0].state}); it may still finish on the server, so wait before "
                    "sending the job again, or raise --timeout"
                )
            for task in pending:
                self._poll(task)
            pending = [task for task in tasks if task.images is None]
            if not pending:
                break
            progress(f"waiting for the model, task {pending[0].state}")
            interval = min(interval * POLL_GROWTH, MAX_POLL_INTERVAL)
        images = [image for task in tasks for image in task.images or []]
        failures = [task.empty for task in tasks if task.empty is not None]
        if not images and failures:
            raise failures[0]
        # Some tasks empty, some not: the runner warns that fewer images came than asked.
        return images

    def _headers(self) -> dict[str, str]:
        # The raw key: this API rejects the "Bearer" prefix.
        return {"Authorization": self.settings.key()}

    def _submit(self, url: str, body: dict[str, Any]) -> str:
        request = self.http.client.build_request("POST", url, headers=self._headers(), json=body)
        response = self.http.send(request, where=self.where, what="the task submission", paid=True)
        answer = self._check(response, "task submission")
        data = answer.get("data")
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not isinstance(task_id, str | int) or str(task_id) == "":
            raise ApiError(f"{self.where} accepted the task but sent no task id; try again later")
        return str(task_id)

    def _poll(self, task: _Task) -> None:
        url = f"{self.root}/api/gemini/nano-banana/{task.task_id}"
        request = self.http.client.build_request("GET", url, headers=self._headers())
        what = f"the poll of task {task.task_id}"
        response = self.http.send(request, where=self.where, what=what, paid=False)
        answer = self._check(response, f"task {task.task_id}")
        data = answer.get("data")
        if not isinstance(data, dict):
            raise ApiError(f"{self.where} answered the poll of task {task.task_id} with no data")
        task.state = str(data.get("state") or "unknown")
        if task.state == "succeeded":
            try:
                task.images = _images_of(data, task.task_id, self.where)
            except ApiError as exc:
                task.images, task.empty = [], exc
        elif task.state in FAILED_STATES:
            reason = clip(str(data.get("msg") or answer.get("msg") or "no reason given"))
            raise ApiError(f"task {task.task_id} on {self.where} failed: {reason}")
        # pending, running and states nobody has documented: keep polling until the deadline.

    def _check(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """The answer as a dict, once both the HTTP status and the ``code`` field say success."""
        status = response.status_code
        if status in (401, 403) and not looks_like_json(response):
            raise auth_error(self.settings, self.where, f"HTTP {status}")
        answer = read_json(response, self.where)
        if not isinstance(answer, dict):
            if status in (401, 403):
                raise auth_error(self.settings, self.where, f"HTTP {status}")
            raise ApiError(f"{self.where} answered the {what} with JSON of an unexpected shape")
        code = answer.get("code")
        message = clip(str(answer.get("msg") or answer.get("message") or "no message"))
        if status in (401, 403) or code in (401, 403, "401", "403"):
            raise auth_error(self.settings, self.where, message)
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
