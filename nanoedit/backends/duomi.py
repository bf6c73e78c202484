"""The URL-list backend: duomi's asynchronous nano-banana API (submit a task, then poll it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nanoedit.backends.base import (
    FAILED,
    KEY_REJECTED,
    READY,
    Answer,
    BackendBase,
    PlannedRequest,
    PreparedJob,
    Probe,
    ResultImage,
    Takes,
    Verdict,
    auth_error,
    clip,
    looks_like_json,
    non_json_verdict,
    parse_json,
    read_json,
    result_from_url,
)
from nanoedit.backends.tasks import plain_id, poll_until_done
from nanoedit.catalog.models import Catalog
from nanoedit.errors import ApiError, RefusedError, TaskFailed
from nanoedit.jobs import Progress
from nanoedit.settings.checks import check_positive_seconds
from nanoedit.settings.keys import KeySpec
from nanoedit.urls import host_of

if TYPE_CHECKING:
    import httpx

    from nanoedit.b64stream import Streamed
    from nanoedit.net.http import JobHttp
    from nanoedit.settings.values import BackendSettings

MAX_IMAGE_URLS = 10
FAILED_STATES = frozenset({"error", "failed", "failure"})
# How a failed task says the content was refused (内容违规: "content violation"); such a
# task failed for good, and its reason is the provider's to show.
REFUSAL_WORDS = ("违规", "敏感", "safety", "policy", "prohibited", "blocked", "violat")
CHECK_TASK = "nanoedit-config-check"


@dataclass
class _Task:
    task_id: str
    state: str = "submitted"
    images: list[ResultImage] | None = None
    # Why a task that succeeded brought no image: the job fails with it only if none did.
    empty: ApiError | None = None


class DuomiBackend(BackendBase):
    """Submits jobs as tasks with the raw key and polls them until they end or time runs out.

    The job's time budget (``JobHttp.deadline``, from ``--timeout``) bounds the polling too.
    """

    name = "duomi"
    # data.data.images[].url, a data: URI when a task carries its images.
    base64_keys = frozenset({"url"})
    title = "duomi URL-list API (asynchronous tasks)"
    asynchronous = True
    takes = Takes.URLS
    default_base_url = "https://duomiapi.com"
    max_images = MAX_IMAGE_URLS
    response_formats = ("url",)
    extra_keys: ClassVar[dict[str, KeySpec]] = {
        "poll_interval": KeySpec(
            "NANOEDIT_DUOMI_POLL_INTERVAL", "seconds before the first poll of a task (grows to 10)",
            "2", check=check_positive_seconds("2"), toml_type=float,
        ),
    }  # fmt: skip

    def __init__(
        self, settings: BackendSettings, http: JobHttp, catalog: Catalog | None = None
    ) -> None:
        super().__init__(settings, http, catalog)
        assert settings.base_url is not None
        self.root = settings.base_url.rstrip("/")
        self.where = host_of(self.root)
        self.poll_interval = float(settings.option("poll_interval") or 2)

    @classmethod
    def probe(cls, base_url: str, key: str) -> Probe:
        """A poll of a task that does not exist: a good key gets "not found", a bad one 401."""
        root = base_url.rstrip("/")
        url = f"{root}/api/gemini/nano-banana/{CHECK_TASK}"
        # The raw key: this API rejects the "Bearer" prefix.
        return Probe(url, key, host_of(root), {"Authorization": key})

    @classmethod
    def judge(cls, response: httpx.Response, probe: Probe, settings: BackendSettings) -> Verdict:
        """duomi puts its own code next to the HTTP status; both are read."""
        body = parse_json(response)
        if not isinstance(body, dict):
            return non_json_verdict(response, probe, settings)
        status = response.status_code
        code = "" if body.get("code") is None else probe.quote(body["code"], 20)
        message = probe.quote(body.get("msg") or body.get("message") or "no message")
        answer = f"HTTP {status}, code {code}" if code else f"HTTP {status}"
        if status in (401, 403) or code in ("401", "403"):
            return Verdict(
                KEY_REJECTED,
                f"{probe.where} rejected the key ({answer}: {message}); {settings.key_advice()}",
            )
        # Past the key check the made-up task is not found (the sandbox says code 404). How the
        # real server words that is not documented, so any complaint about the request (a 4xx
        # code other than 429) counts as the key having passed.
        if 200 <= status < 300 and (code == "200" or (code[:1] == "4" and code != "429")):
            return Verdict(READY, f"{probe.where}, key accepted")
        if status == 404:
            return Verdict(
                FAILED,
                f"{probe.where} has no duomi API there ({answer}: {message}); "
                f"check {settings.name}.base_url",
            )
        return Verdict(FAILED, f"{probe.where} answered {answer}: {message}")

    def body(self, prepared: PreparedJob) -> dict[str, Any]:
        """The JSON body of one task, fields in the documented order."""
        options = prepared.job.options
        body: dict[str, Any] = {"model": prepared.model, "prompt": options.prompt}
        if prepared.job.kind == "edit":
            body["image_urls"] = list(prepared.urls)
        # The API adapts the ratio by itself when the field is absent, which is what auto means.
        if options.ratio != "auto":
            body["aspect_ratio"] = options.ratio
        offer = self.offer(prepared.model)
        # duomi's seed: image_size is for the models whose entry has a size field (Pro).
        if options.size and (offer is None or offer.size_field):
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

    def run(self, prepared: PreparedJob, progress: Progress) -> Answer:
        """Submit ``count`` tasks, then poll them together until every one has ended."""
        handles = []
        for _ in range(prepared.job.options.count):
            progress("submitting task")
            handles.append(self._submit(self._submit_url(prepared), self.body(prepared)))
        return self.collect(handles, progress)

    def collect(self, handles: Sequence[str], progress: Progress) -> Answer:
        """Poll the tasks (a handle is the task id) until every one has ended."""
        tasks = [_Task(handle) for handle in handles]
        progress("waiting for the model, task submitted")
        poll_until_done(
            tasks,
            self._poll,
            self.http,
            progress,
            first_interval=self.poll_interval,
            state=lambda task: task.state,
            timed_out=lambda pending: (
                f"task {', '.join(task.task_id for task in pending)} on {self.where}"
            ),
        )
        images = [image for task in tasks for image in task.images or []]
        failures = [task.empty for task in tasks if task.empty is not None]
        if not images and failures:
            raise failures[0]
        # Some tasks empty, some not: the runner warns that fewer images came than asked.
        return Answer(images)

    @classmethod
    def handle_from_user(cls, text: str, model: str) -> str:
        """duomi's task id, as its submission answered it (``data.task_id``)."""
        return plain_id(text, "duomi task id", "8f14e45fceea167a5a36dedd4bea2543")

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
        self.http.log.task(str(task_id))
        return str(task_id)

    def _poll(self, task: _Task) -> bool:
        url = f"{self.root}/api/gemini/nano-banana/{task.task_id}"
        request = self.http.client.build_request("GET", url, headers=self._headers())
        what = f"the poll of task {task.task_id}"
        # A finished task may carry its images as data: URIs, streamed to files as they come.
        response, streamed = self.http.send_json(
            request, where=self.where, what=what, paid=False, keys=self.base64_keys
        )
        try:
            answer = self._check(response, f"task {task.task_id}")
        except ApiError as exc:
            body = parse_json(response)
            if response.status_code == 404 or (isinstance(body, dict) and body.get("code") == 404):
                # The server does not know the task: polling again cannot change that.
                message = f"{exc.message}; check the task id, and {self.name}.base_url"
                raise TaskFailed(message) from None
            raise
        data = answer.get("data")
        if not isinstance(data, dict):
            raise ApiError(f"{self.where} answered the poll of task {task.task_id} with no data")
        task.state = str(data.get("state") or "unknown")
        if task.state == "succeeded":
            try:
                task.images = _images_of(data, task.task_id, self.where, streamed)
            except ApiError as exc:
                task.images, task.empty = [], exc
            return True
        if task.state in FAILED_STATES:
            reason = clip(str(data.get("msg") or answer.get("msg") or "no reason given"))
            if any(word in reason.lower() for word in REFUSAL_WORDS):
                raise RefusedError(
                    f"task {task.task_id} on {self.where} was refused: {reason}; "
                    "rephrase the prompt or change the image"
                )
            raise TaskFailed(f"task {task.task_id} on {self.where} failed: {reason}")
        # pending, running and states nobody has documented: keep polling until the deadline.
        return False

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


def _images_of(
    data: dict[str, Any], task_id: str, where: str, streamed: Streamed | None = None
) -> list[ResultImage]:
    # The images sit in a second, nested "data" object.
    inner = data.get("data")
    images = inner.get("images") if isinstance(inner, dict) else None
    results = [
        result_from_url(item["url"].strip(), where, streamed)
        for item in images or []
        if isinstance(item, dict) and isinstance(item.get("url"), str) and item["url"].strip()
    ]
    if not results:
        text = inner.get("description") if isinstance(inner, dict) else None
        said = f": {clip(str(text))!r}" if text else ""
        raise ApiError(f"task {task_id} on {where} succeeded without an image{said}; try again")
    return results
