"""fal.ai's queue API: local files go up to fal's storage first, then the job is submitted to
the app's queue and polled until it completes; a request still queued when the run stops is
cancelled, so it is not charged (API-NOTES-PROVIDERS §3).

URL inputs are passed to fal as they are: fal fetches them itself, so nanoedit neither
downloads nor uploads them again.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode, urlsplit

from nanoedit.backends.base import (
    FAILED,
    KEY_REJECTED,
    READY,
    Answer,
    BackendBase,
    ListingGet,
    LiveModel,
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
    not_a_listing,
    parse_json,
    read_json,
    result_from_url,
)
from nanoedit.backends.tasks import plain_id, poll_until_done
from nanoedit.catalog.models import FLASH_ALIAS, Catalog, shipped_catalog
from nanoedit.errors import (
    ApiError,
    ModelNotServed,
    NanoeditError,
    RefusedError,
    TaskFailed,
    UsageError,
)
from nanoedit.jobs import Progress
from nanoedit.net.inputs import InputImage
from nanoedit.quoting import sh_word
from nanoedit.settings.checks import check_positive_seconds, check_url
from nanoedit.settings.keys import KeySpec
from nanoedit.urls import host_of

if TYPE_CHECKING:
    import httpx

    from nanoedit.net.http import JobHttp
    from nanoedit.settings.values import BackendSettings

DEFAULT_STORAGE_URL = "https://rest.fal.ai"
# fal's platform API: its model search takes up to 50 endpoint ids and, with
# expand=openapi-3.0, gives each app's OpenAPI schema; the key is optional ([P] its reference).
DEFAULT_PLATFORM_URL = "https://api.fal.ai/v1"
SEARCH_IDS = 50
MAX_SEARCH_PAGES = 20
# fal spells Google's 512 tier 0.5K.
RESOLUTIONS = {"512": "0.5K", "1K": "1K", "2K": "2K", "4K": "4K"}
MAX_NUM_IMAGES = 4
QUEUED, RUNNING, COMPLETED = "IN_QUEUE", "IN_PROGRESS", "COMPLETED"
CHECK_REQUEST = "nanoedit-config-check"
# An app's owner/name, and a queue URL's path (status, response or cancel) of a request.
APP_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
QUEUE_PATH = re.compile(
    r"/*(?P<app>[^/]+/[^/]+)(?:/[^/]+)*?/requests/(?P<id>[^/]+)(?:/status|/cancel)?/*"
)
REFUSAL_TYPE = "content_policy_violation"


@dataclass
class _Request:
    """One submitted request, as the queue's answers describe it."""

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str
    state: str = QUEUED
    position: int | None = None
    images: list[ResultImage] | None = None

    @property
    def handle(self) -> str:
        """What :meth:`FalBackend.collect` needs of it in another process: the id and the
        URLs fal answered (fal's rule: use those, never build them)."""
        urls = {"status_url": self.status_url, "response_url": self.response_url}
        fields = {"request_id": self.request_id, **urls, "cancel_url": self.cancel_url}
        return json.dumps(fields, separators=(",", ":"))

    @property
    def shown(self) -> str:
        """The state for the progress line: its queue position while queued."""
        if self.state == QUEUED:
            return f"queued at position {self.position}" if self.position is not None else "queued"
        return "running" if self.state == RUNNING else self.state.lower()


def _handle_fields(handle: str) -> dict[str, Any]:
    """The fields of a handle :attr:`_Request.handle` or ``handle_from_user`` made."""
    try:
        fields = json.loads(handle)
    except json.JSONDecodeError:
        fields = None
    if not isinstance(fields, dict) or not isinstance(fields.get("request_id"), str):
        raise UsageError(f"{clip(handle, 80)!r} is not a fal request handle")
    if "status_url" not in fields and not isinstance(fields.get("app"), str):
        raise UsageError(f"{clip(handle, 80)!r} is not a fal request handle (it names no app)")
    return fields


def _chunks(count: int) -> list[int]:
    """Images per submission: an app makes at most four per request."""
    full, rest = divmod(count, MAX_NUM_IMAGES)
    return [MAX_NUM_IMAGES] * full + ([rest] if rest else [])


def _detail(body: Any) -> tuple[str, str]:
    """The message and type of a fal error body: ``{"detail": "..."}`` or a validation list
    ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``."""
    if not isinstance(body, dict):
        return "", ""
    detail = body.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = [str(part) for part in first.get("loc") or [] if part != "body"]
        message = str(first.get("msg") or "no message")
        kinds = [str(item.get("type")) for item in detail if isinstance(item, dict)]
        kind = REFUSAL_TYPE if REFUSAL_TYPE in kinds else str(first.get("type") or "")
        return (f"{'.'.join(loc)}: {message}" if loc else message), kind
    if detail is not None:
        return str(detail), str(body.get("error_type") or "")
    return "", str(body.get("error_type") or "")


def _app_model(entry: Any, url: str) -> LiveModel:
    """An app as the model search describes it: the enums of the body its queue takes (the
    schema the POST to the app's path refers to)."""
    from nanoedit.catalog import openapi

    schema = entry.get("openapi") or {}
    if not isinstance(schema, dict):
        raise not_a_listing(url, "an app's schema")
    inputs = openapi.request_properties(schema, f"/{entry['endpoint_id']}")
    return LiveModel(
        entry["endpoint_id"],
        ratios=openapi.ratios(openapi.enum(schema, inputs, "aspect_ratio")),
        sizes=openapi.sizes(openapi.enum(schema, inputs, "resolution")),
        formats=openapi.enum(schema, inputs, "output_format"),
    )


def _is_final(response: httpx.Response) -> bool:
    """A response fetch answered with fal's own error: the request's outcome, which no retry
    changes (a gateway's page is retried)."""
    response.read()
    return looks_like_json(response) and isinstance(parse_json(response), dict)


class FalBackend(BackendBase):
    """Uploads local files to fal's storage, submits to the app's queue with ``Key`` auth,
    and polls each request inside the job's time budget."""

    name = "fal"
    # images[].url, a data: URI in sync mode or from a gateway.
    base64_keys = frozenset({"url"})
    title = "fal.ai queue API"
    asynchronous = True
    takes = Takes.BOTH
    default_base_url = "https://queue.fal.run"
    key_env = ("FAL_KEY",)
    output_format = "png"
    # fal's model search pages through a thousand apps: the catalog's are asked for by id.
    lists_all = False
    extra_keys: ClassVar[dict[str, KeySpec]] = {
        "storage_url": KeySpec(
            "NANOEDIT_FAL_STORAGE_URL",
            f"storage API for uploads (default: {DEFAULT_STORAGE_URL}, or fal.base_url when "
            "that is changed)", check=check_url,
        ),
        "poll_interval": KeySpec(
            "NANOEDIT_FAL_POLL_INTERVAL", "seconds before the first status poll (grows to 10)",
            "0.5", check=check_positive_seconds("0.5"),
        ),
    }  # fmt: skip

    def __init__(
        self, settings: BackendSettings, http: JobHttp, catalog: Catalog | None = None
    ) -> None:
        super().__init__(settings, http, catalog)
        assert settings.base_url is not None
        self.root = settings.base_url.rstrip("/")
        self.where = host_of(self.root)
        # A server standing in for fal (a proxy, the sandbox) answers the storage API too.
        default = DEFAULT_STORAGE_URL if self.root == self.default_base_url else self.root
        self.storage = (settings.option("storage_url") or default).rstrip("/")
        self.poll_interval = float(settings.option("poll_interval") or 0.5)

    @classmethod
    def probe(cls, base_url: str, key: str) -> Probe:
        """The status of a request that does not exist: a good key gets "not found"."""
        root = base_url.rstrip("/")
        app = shipped_catalog().resolve(cls.name, FLASH_ALIAS).sent
        url = f"{root}/{app}/requests/{CHECK_REQUEST}/status"
        return Probe(url, key, host_of(root), {"Authorization": f"Key {key}"})

    @classmethod
    def judge(cls, response: httpx.Response, probe: Probe, settings: BackendSettings) -> Verdict:
        """401 or 403 is a bad key; fal's own "not found" means the key passed."""
        body = parse_json(response)
        if not isinstance(body, dict):
            return non_json_verdict(response, probe, settings)
        status = response.status_code
        message, kind = _detail(body)
        shown = probe.quote(message or "no message")
        if kind:
            shown += f" [{probe.quote(kind, 60)}]"
        if status in (401, 403):
            return Verdict(
                KEY_REJECTED,
                f"{probe.where} rejected the key (HTTP {status}: {shown}); {settings.key_advice()}",
            )
        # Past the key check the made-up request is not found: fal checks the key first.
        if status == 404 or 200 <= status < 300:
            return Verdict(READY, f"{probe.where}, key accepted")
        return Verdict(FAILED, f"{probe.where} answered HTTP {status}: {shown}")

    @classmethod
    def list_models(
        cls, base_url: str, key: str, ids: Sequence[str], get: ListingGet
    ) -> list[LiveModel]:
        """The catalog's apps (each model's app and its edit app), from the platform API's
        model search by ``endpoint_id`` with their schemas (``expand=openapi-3.0``); an app
        the answer leaves out is gone. A server standing in for fal (a proxy, the sandbox)
        answers the platform API at its own address."""
        root = base_url.rstrip("/")
        platform = DEFAULT_PLATFORM_URL if root == cls.default_base_url else f"{root}/v1"
        url = f"{platform}/models"
        listed: list[LiveModel] = []
        for start in range(0, len(ids), SEARCH_IDS):
            query: list[tuple[str, str]] = [
                ("endpoint_id", app) for app in ids[start : start + SEARCH_IDS]
            ]
            query.append(("expand", "openapi-3.0"))
            for _ in range(MAX_SEARCH_PAGES):
                body = get(f"{url}?{urlencode(query)}", {"Authorization": f"Key {key}"})
                models = body.get("models") if isinstance(body, dict) else None
                if not isinstance(models, list):
                    raise not_a_listing(url)
                listed += [
                    _app_model(entry, url)
                    for entry in models
                    if isinstance(entry, dict) and isinstance(entry.get("endpoint_id"), str)
                ]
                cursor = body.get("next_cursor")
                if not isinstance(cursor, str) or not cursor:
                    break
                query = [*(pair for pair in query if pair[0] != "cursor"), ("cursor", cursor)]
        return listed

    # Requests -------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.settings.key()}"}

    def _submit_url(self, prepared: PreparedJob) -> str:
        app = prepared.model
        # An edit goes to the catalog's edit app (the nano-banana apps' /edit); an app the
        # catalog does not know is used as given.
        offer = self.offer(app)
        if prepared.job.kind == "edit" and offer is not None and offer.edit:
            app = offer.edit
        return f"{self.root}/{app}"

    def body(self, prepared: PreparedJob, image_urls: list[str], count: int) -> dict[str, Any]:
        """The JSON input of one submission, fields in the documented order."""
        options = prepared.job.options
        body: dict[str, Any] = {"prompt": options.prompt}
        if prepared.job.kind == "edit":
            body["image_urls"] = image_urls
        body["num_images"] = count
        # Absent, the app picks: the input's own shape for an edit, 1:1 for a generation.
        if options.ratio != "auto":
            body["aspect_ratio"] = options.ratio
        offer = self.offer(prepared.model)
        if options.size and (offer is None or offer.size_field):
            body["resolution"] = RESOLUTIONS.get(options.size, options.size)
        dials = options.dials
        # PNG, fal's default, said outright: lossless, whatever the app's default becomes;
        # --format asks for another, which fal renders so ([S] output_format jpeg|png|webp).
        body["output_format"] = dials.format or self.output_format
        # [S] fal's nano-banana schemas: seed, safety_tolerance "1"-"6", enable_web_search.
        if dials.seed is not None:
            body["seed"] = dials.seed
        if dials.safety is not None:
            body["safety_tolerance"] = dials.safety
        if dials.search:
            body["enable_web_search"] = True
        return body

    def plan(self, prepared: PreparedJob) -> list[PlannedRequest]:
        """The uploads of local files, then the submissions (one per four images)."""
        headers = {"Authorization": "Key {key}"}
        planned: list[PlannedRequest] = []
        image_urls: list[str] = []
        for number, source in enumerate(prepared.job.images, start=1):
            if source.is_url:
                image_urls.append(source.location)
                continue
            placeholder = f"FILE_URL_{number}"
            mime = mimetypes.guess_type(source.location)[0] or "image/png"
            put = (
                f"curl -sS -X PUT -H {sh_word(f'Content-Type: {mime}')} --data-binary "
                f"@{sh_word(source.location)} UPLOAD_URL"
            )
            planned.append(
                PlannedRequest(
                    "POST",
                    f"{self.storage}/storage/upload/initiate?storage_type=fal-cdn-v3",
                    headers,
                    json={"content_type": mime, "file_name": source.name},
                    note=f"then send the file to the upload_url it answers (no key): {put}; "
                    f"its file_url is {placeholder} below",
                )
            )
            image_urls.append(placeholder)
        note = "then poll GET the status_url it answers until COMPLETED, then GET its response_url"
        planned += [
            PlannedRequest(
                "POST",
                self._submit_url(prepared),
                headers,
                json=self.body(prepared, image_urls, count),
                note=note,
            )
            for count in _chunks(prepared.job.options.count)
        ]
        return planned

    def run(self, prepared: PreparedJob, progress: Progress) -> Answer:
        """Upload the local files, submit, and poll every request until it completes."""
        from nanoedit.net.http import Interrupted

        image_urls = [
            item if isinstance(item, str) else self._upload(item, progress)
            for item in prepared.inputs()
        ]
        requests: list[_Request] = []
        try:
            for count in _chunks(prepared.job.options.count):
                progress("submitting")
                requests.append(self._submit(prepared, image_urls, count))
        except (Interrupted, NanoeditError):
            # What was submitted before the failure would run, be charged and never be saved.
            self._abandon(requests)
            raise
        return self._wait(requests, progress)

    def collect(self, handles: Sequence[str], progress: Progress) -> Answer:
        """Poll the requests the handles name until each completes, and fetch the results."""
        return self._wait([self._request_of(handle) for handle in handles], progress)

    @classmethod
    def handle_from_user(cls, text: str, model: str) -> str:
        """A request id sent to the app of ``model`` (its queue URLs are under the app's
        owner/name, whatever path it was submitted to), or a status, response or cancel URL
        fal answered, read for its app and id (the configured fal.base_url is asked)."""
        cleaned = text.strip()
        app = model
        if "://" in cleaned:
            match = QUEUE_PATH.fullmatch(urlsplit(cleaned).path)
            if match is None:
                raise UsageError(
                    f"{clip(cleaned, 80)} is not a fal queue URL (…/OWNER/APP/requests/ID); "
                    "pass the request id, or the status_url fal answered"
                )
            app, cleaned = match["app"], match["id"]
        request_id = plain_id(cleaned, "fal request id", "764cabcf-b745-4b3e-ae38-1200304cf45b")
        owner_app = "/".join(app.strip("/").split("/")[:2])
        if not APP_PATH.fullmatch(owner_app):
            raise UsageError(
                f"{model!r} is not a fal app (OWNER/APP, such as "
                f"{shipped_catalog().resolve(cls.name, FLASH_ALIAS).sent}); "
                "pass --model with the app the request was sent to"
            )
        return json.dumps({"request_id": request_id, "app": owner_app}, separators=(",", ":"))

    @classmethod
    def task_id(cls, handle: str) -> str:
        """The request id inside the handle."""
        return str(_handle_fields(handle)["request_id"])

    def _request_of(self, handle: str) -> _Request:
        """The request a handle names: with the URLs fal answered when it has them (checked to
        be on fal.base_url's host), else those fal documents under the app's owner/name."""
        fields = _handle_fields(handle)
        request_id = str(fields["request_id"])
        if "status_url" in fields:
            return _Request(
                request_id,
                status_url=self._own_url(fields.get("status_url"), "status_url"),
                response_url=self._own_url(fields.get("response_url"), "response_url"),
                cancel_url=self._own_url(fields.get("cancel_url"), "cancel_url"),
            )
        base = f"{self.root}/{fields['app']}/requests/{request_id}"
        return _Request(request_id, f"{base}/status", base, f"{base}/cancel")

    def _wait(self, requests: list[_Request], progress: Progress) -> Answer:
        """Poll every request until it completes, then return the images of them all."""
        progress(f"waiting for the model, task {requests[0].shown}")
        poll_until_done(
            requests,
            self._poll,
            self.http,
            progress,
            first_interval=self.poll_interval,
            state=lambda request: request.shown,
            timed_out=lambda pending: (
                f"fal request {', '.join(r.request_id for r in pending)} on {self.where}"
            ),
            abandon=self._abandon,
        )
        return Answer([image for request in requests for image in request.images or []])

    def _upload(self, image: InputImage, progress: Progress) -> str:
        """Put one local file in fal's storage; returns the URL fal fetches it from."""
        from nanoedit.net.client import with_upload_progress
        from nanoedit.output.imageformat import describe

        where = host_of(self.storage)
        name = image.source.location
        progress("uploading", 0, len(image.data))
        request = self.http.client.build_request(
            "POST",
            f"{self.storage}/storage/upload/initiate",
            params={"storage_type": "fal-cdn-v3"},
            headers=self._headers(),
            json={"content_type": image.mime, "file_name": image.filename},
        )
        response = self.http.send(request, where=where, what=f"the upload of {name}", paid=False)
        answer = self._check(response, f"upload of {name}", where)
        upload_url, file_url = answer.get("upload_url"), answer.get("file_url")
        for value in (upload_url, file_url):
            if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
                raise ApiError(
                    f"{where} answered the upload of {name} without an http(s) upload_url and "
                    "file_url; check fal.storage_url"
                )
        assert isinstance(upload_url, str) and isinstance(file_url, str)
        # A signed URL on the storage bucket: it carries no key.
        put = self.http.client.build_request(
            "PUT", upload_url, content=image.data, headers={"Content-Type": image.mime}
        )
        put = with_upload_progress(put, lambda done, total: progress("uploading", done, total))
        bucket = host_of(upload_url)
        response = self.http.send(put, where=bucket, what=f"the upload of {name}", paid=False)
        if not 200 <= response.status_code < 300:
            raise ApiError(
                f"{bucket} refused the upload of {name}: HTTP {response.status_code} "
                f"({describe(response.content)}); try again later"
            )
        return file_url

    def _submit(self, prepared: PreparedJob, image_urls: list[str], count: int) -> _Request:
        request = self.http.client.build_request(
            "POST",
            self._submit_url(prepared),
            headers=self._headers(),
            json=self.body(prepared, image_urls, count),
        )
        response = self.http.send(request, where=self.where, what="the submission", paid=True)
        answer = self._check(response, "submission", self.where)
        request_id = answer.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise ApiError(f"{self.where} accepted the submission but sent no request_id")
        # fal's own rule: use the URLs it answers, never build them (they drop the /edit path).
        submitted = _Request(
            request_id,
            status_url=self._own_url(answer.get("status_url"), "status_url"),
            response_url=self._own_url(answer.get("response_url"), "response_url"),
            cancel_url=self._own_url(answer.get("cancel_url"), "cancel_url"),
        )
        submitted.state = str(answer.get("status") or QUEUED)
        position = answer.get("queue_position")
        submitted.position = position if isinstance(position, int) else None
        self.http.log.task(submitted.handle)
        return submitted

    def _own_url(self, value: object, field: str) -> str:
        """A URL the queue answered, checked to be on its own host: the key goes with it."""
        url = value if isinstance(value, str) else ""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != self.where.lower():
            shown = clip(url, 80) if url else "nothing"
            raise ApiError(
                f"{self.where} answered the submission with {field} {shown!r}, not a URL on "
                f"{self.where}; nanoedit sends the fal key nowhere else, check fal.base_url"
            )
        return url

    def _poll(self, request: _Request) -> bool:
        what = f"the status of request {request.request_id}"
        get = self.http.client.build_request("GET", request.status_url, headers=self._headers())
        response = self.http.send(get, where=self.where, what=what, paid=False)
        if response.status_code == 404:
            raise self._not_found(request, response)
        answer = self._check(response, f"status of request {request.request_id}", self.where)
        request.state = str(answer.get("status") or "unknown")
        position = answer.get("queue_position")
        request.position = position if isinstance(position, int) else None
        if request.state != COMPLETED:
            # IN_QUEUE, IN_PROGRESS and states nobody has documented: poll on until the deadline.
            return False
        failure = answer.get("error")
        if failure:
            # COMPLETED with an error is how the queue says a request failed or was cancelled
            # (fal_client reads it so): that is its outcome, and there is no result to fetch.
            raise self._failed(request, str(failure), str(answer.get("error_type") or ""))
        request.images = self._result(request)
        return True

    def _failed(self, request: _Request, error: str, kind: str) -> NanoeditError:
        """The error of a request whose status says it ended in ``error`` of type ``kind``."""
        subject = f"fal request {request.request_id} on {self.where}"
        said = f"{clip(error)} [{clip(kind, 60)}]" if kind else clip(error)
        if kind == REFUSAL_TYPE:
            return RefusedError(
                f"{subject} was refused: {said}; rephrase the prompt or change the image"
            )
        if kind == "cancelled":
            return TaskFailed(
                f"{subject} was cancelled on the server ({said}), so no image was made; send the "
                "job again"
            )
        return TaskFailed(f"{subject} failed: {said}")

    def _not_found(self, request: _Request, response: httpx.Response) -> TaskFailed:
        """A request the queue does not know: a wrong id, or one sent to another app (fal
        keeps each request under the app it was sent to)."""
        message, _ = _detail(parse_json(response))
        match = QUEUE_PATH.fullmatch(urlsplit(request.status_url.removeprefix(self.root)).path)
        app = f" (this looked in {match['app']})" if match else ""
        return TaskFailed(
            f"{self.where} answered the status of request {request.request_id} with HTTP 404: "
            f"{clip(message or 'no error details')}; check the request id, and pass --model "
            f"with the app it was sent to{app}"
        )

    def _result(self, request: _Request) -> list[ResultImage]:
        """The response of a completed request: its images, or the error it ended in."""
        what = f"response of request {request.request_id}"
        get = self.http.client.build_request("GET", request.response_url, headers=self._headers())
        # Images may come as data: URIs (sync_mode, a gateway): streamed to files as they come.
        response, streamed = self.http.send_json(
            get,
            where=self.where,
            what=f"the {what}",
            paid=False,
            permanent=_is_final,
            keys=self.base64_keys,
        )
        try:
            answer = self._check(response, what, self.where, request.request_id)
        except ApiError as exc:
            if response.status_code != 429 and _is_final(response):
                # fal's own error for the request (its model failed): the request's end.
                raise TaskFailed(exc.message) from None
            raise
        items = answer.get("images")
        results = [
            result_from_url(item["url"].strip(), self.where, streamed)
            for item in items or []
            if isinstance(item, dict) and isinstance(item.get("url"), str) and item["url"].strip()
        ]
        if results:
            return results
        said = answer.get("description")
        if isinstance(said, str) and said.strip():
            raise RefusedError(
                f"fal request {request.request_id} on {self.where} completed with text but no "
                f"image: {clip(said)!r}; the model declined or only described the result, "
                "rephrase the prompt"
            )
        raise TaskFailed(
            f"fal request {request.request_id} on {self.where} completed without an image; "
            "try again"
        )

    def _check(
        self, response: httpx.Response, what: str, where: str, request_id: str | None = None
    ) -> dict[str, Any]:
        """The answer as a dict once its status says success; else the error it says."""
        status = response.status_code
        if status in (401, 403) and not looks_like_json(response):
            raise auth_error(self.settings, where, f"HTTP {status}")
        body = read_json(response, where) if response.content.strip() else None
        message, kind = _detail(body)
        if status in (401, 403):
            raise auth_error(self.settings, where, message or f"HTTP {status}")
        if status >= 400 and kind == REFUSAL_TYPE:
            subject = f"fal request {request_id}" if request_id else f"the {what}"
            raise RefusedError(
                f"{subject} on {where} was refused: {clip(message)} [{kind}]; rephrase the "
                "prompt or change the image"
            )
        if status == 404 and what == "submission":
            # The app path is the model: fal answers 404 for an app it does not have.
            raise ModelNotServed(where, f"HTTP 404{': ' + clip(message) if message else ''}")
        if status < 400 and not isinstance(body, dict):
            raise ApiError(
                f"{where} answered the {what} with HTTP {status} but no JSON object; the server "
                "or a proxy in front of it failed, try again later"
            )
        if status >= 400 or not isinstance(body, dict):
            said = f": {clip(message)}" if message else " with no error details"
            tag = f" [{kind}]" if kind else ""
            hint = "; fal is rate limiting requests, wait a little and try again" * (status == 429)
            raise ApiError(f"{where} answered the {what} with HTTP {status}{said}{tag}{hint}")
        return body

    def _abandon(self, pending: list[_Request]) -> bool:
        """Cancel the requests still queued, so they are not charged; say what became of each."""
        cancelled = True
        for request in pending:
            subject = f"fal request {request.request_id} on {self.where}"
            if request.state != QUEUED:
                self.http.notify(
                    f"{subject} was already {request.shown} when the job stopped; it may still "
                    "finish and be charged"
                )
                cancelled = False
                continue
            put = self.http.client.build_request("PUT", request.cancel_url, headers=self._headers())
            response = self.http.send_cleanup(put)
            if response is not None and 200 <= response.status_code < 300:
                self.http.notify(
                    f"{subject} was still in the queue, so it was cancelled and is not charged"
                )
                continue
            said = "no answer" if response is None else f"HTTP {response.status_code}"
            self.http.notify(
                f"{subject} could not be cancelled ({said}); it may still run and be charged"
            )
            cancelled = False
        return cancelled
