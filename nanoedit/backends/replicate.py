"""Replicate's predictions API for Google's official models: local files go up to the files
API first, then a prediction is created on the model and, when the answer is not final,
polled until it ends. Only a job's last prediction, and only when the run keeps no journal,
is held with ``Prefer: wait``: a journaled job needs the prediction's id at once. A
prediction still running when an unjournaled run stops is cancelled (API-NOTES-PROVIDERS §4).

URL inputs are passed as they are: Replicate fetches them itself.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

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
from nanoedit.catalog.models import Catalog
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
from nanoedit.settings.checks import check_positive_seconds
from nanoedit.settings.keys import KeySpec
from nanoedit.urls import host_of

if TYPE_CHECKING:
    import httpx

    from nanoedit.net.http import JobHttp
    from nanoedit.settings.values import BackendSettings

# The longest Prefer: wait the API takes, in seconds.
MAX_WAIT = 60
FINAL = frozenset({"succeeded", "failed", "canceled"})
# The path of a prediction's URL: the API's urls.get, or its page on the web site.
PREDICTION_PATH = re.compile(r"(?:/v1)?/(?:predictions|p)/(?P<id>[^/]+)/*")
# How a failed prediction says the content was refused ("flagged as sensitive … (E005)").
REFUSAL_WORDS = ("e005", "flagged as sensitive", "nsfw", "safety filter")


@dataclass
class _Prediction:
    """One created prediction, as the API's answers describe it."""

    id: str
    status: str
    images: list[ResultImage] | None = None


def _schema_model(model_id: str, body: Any, url: str) -> LiveModel:
    """A model as ``GET /v1/models/OWNER/NAME`` describes it: the enums of its latest
    version's inputs (``openapi_schema.components.schemas.Input``, each enum behind ``allOf``
    and ``$ref`` as Cog writes them; [P] Replicate's HTTP API and its Python client)."""
    from nanoedit.catalog import openapi

    version = body.get("latest_version") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not (version is None or isinstance(version, dict)):
        raise not_a_listing(url, "a model")
    schema = (version or {}).get("openapi_schema") or {}
    if not isinstance(schema, dict):
        raise not_a_listing(url, "a model's schema")
    inputs = openapi.properties(schema, {"$ref": "#/components/schemas/Input"})
    return LiveModel(
        model_id,
        ratios=openapi.ratios(openapi.enum(schema, inputs, "aspect_ratio")),
        sizes=openapi.sizes(openapi.enum(schema, inputs, "resolution")),
        formats=openapi.enum(schema, inputs, "output_format"),
    )


def _problem(body: Any) -> str:
    """The words of a problem-details body: its detail, else its title."""
    if not isinstance(body, dict):
        return ""
    said = body.get("detail") or body.get("title") or ""
    return " ".join(str(said).split())


class ReplicateBackend(BackendBase):
    """Creates predictions on Google's models with a ``Bearer`` token, one per image, and
    polls them inside the job's time budget."""

    name = "replicate"
    title = "Replicate predictions API"
    asynchronous = True
    takes = Takes.BOTH
    default_base_url = "https://api.replicate.com"
    key_env = ("REPLICATE_API_TOKEN",)
    output_format = "png"
    # Replicate lists every public model, pages of thousands: the catalog's are read by name.
    lists_all = False
    extra_keys: ClassVar[dict[str, KeySpec]] = {
        "poll_interval": KeySpec(
            "NANOEDIT_REPLICATE_POLL_INTERVAL",
            "seconds before the first poll of a prediction (grows to 10)", "1",
            check=check_positive_seconds("1"),
        ),
    }  # fmt: skip

    def __init__(
        self, settings: BackendSettings, http: JobHttp, catalog: Catalog | None = None
    ) -> None:
        super().__init__(settings, http, catalog)
        assert settings.base_url is not None
        root = settings.base_url.rstrip("/")
        # Given the SDK's way or with the version path: the routes start at /v1 either way.
        self.root = root.removesuffix("/v1")
        self.where = host_of(self.root)
        self.poll_interval = float(settings.option("poll_interval") or 1)

    @classmethod
    def probe(cls, base_url: str, key: str) -> Probe:
        """The account the token belongs to."""
        root = base_url.rstrip("/").removesuffix("/v1")
        return Probe(f"{root}/v1/account", key, host_of(root), {"Authorization": f"Bearer {key}"})

    @classmethod
    def judge(cls, response: httpx.Response, probe: Probe, settings: BackendSettings) -> Verdict:
        """An account means ready; a problem-details body says what is wrong."""
        body = parse_json(response)
        if not isinstance(body, dict):
            return non_json_verdict(response, probe, settings)
        status = response.status_code
        said = probe.quote(_problem(body) or "no details")
        if status in (401, 403):
            return Verdict(
                KEY_REJECTED,
                f"{probe.where} rejected the key (HTTP {status}: {said}); {settings.key_advice()}",
            )
        username = body.get("username")
        if 200 <= status < 300 and isinstance(username, str):
            return Verdict(READY, f"{probe.where}, account {probe.quote(username, 60)}")
        if 200 <= status < 300:
            return Verdict(
                FAILED,
                f"{probe.where} answered HTTP {status} with JSON that is not an account; "
                f"check {settings.name}.base_url",
            )
        return Verdict(FAILED, f"{probe.where} answered HTTP {status}: {said}")

    @classmethod
    def list_models(
        cls, base_url: str, key: str, ids: Sequence[str], get: ListingGet
    ) -> list[LiveModel]:
        """Each of the catalog's models, read with ``GET /v1/models/OWNER/NAME`` (free): one
        that answers 404 is gone; the others with their latest version's enums."""
        root = base_url.rstrip("/").removesuffix("/v1")
        listed = []
        for model_id in ids:
            url = f"{root}/v1/models/{model_id}"
            body = get(url, {"Authorization": f"Bearer {key}"}, missing_ok=True)
            if body is not None:
                listed.append(_schema_model(model_id, body, url))
        return listed

    # Requests -------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.key()}"}

    def _create_url(self, prepared: PreparedJob) -> str:
        return f"{self.root}/v1/models/{prepared.model}/predictions"

    def body(self, prepared: PreparedJob, image_urls: list[str]) -> dict[str, Any]:
        """The JSON body of one prediction, inputs in the documented order."""
        options = prepared.job.options
        given: dict[str, Any] = {"prompt": options.prompt}
        if prepared.job.kind == "edit":
            given["image_input"] = image_urls
        # Absent, the model matches the input's shape (match_input_image), or draws 1:1.
        if options.ratio != "auto":
            given["aspect_ratio"] = options.ratio
        offer = self.offer(prepared.model)
        if options.size and (offer is None or offer.size_field):
            given["resolution"] = options.size
        dials = options.dials
        # PNG said outright: the models' default is a lossy JPEG; --format jpeg asks for it
        # ([S] output_format is jpg or png).
        given["output_format"] = "jpg" if dials.format == "jpeg" else self.output_format
        # [S] google/nano-banana-pro's and -2's schemas: safety_filter_level, google_search.
        if dials.safety is not None:
            given["safety_filter_level"] = dials.safety
        if dials.search:
            given["google_search"] = True
        return {"input": given}

    def _prefer(self) -> str:
        # Held no longer than the job has left: an answer past the deadline is wasted.
        seconds = max(1, min(MAX_WAIT, int(self.http.deadline.remaining())))
        return f"wait={seconds}"

    def plan(self, prepared: PreparedJob) -> list[PlannedRequest]:
        """The uploads of local files, then one prediction per image asked for."""
        headers = {"Authorization": "Bearer {key}"}
        planned: list[PlannedRequest] = []
        image_urls: list[str] = []
        for number, source in enumerate(prepared.job.images, start=1):
            if source.is_url:
                image_urls.append(source.location)
                continue
            placeholder = f"FILE_URL_{number}"
            mime = mimetypes.guess_type(source.location)[0] or "image/png"
            planned.append(
                PlannedRequest(
                    "POST",
                    f"{self.root}/v1/files",
                    headers,
                    files=(("content", source.location, mime),),
                    note=f"its urls.get is {placeholder} below",
                )
            )
            image_urls.append(placeholder)
        note = f"if its status is not final, poll GET {self.root}/v1/predictions/ID until it is"
        count = prepared.job.options.count
        hold = not self.http.keep_tasks
        return planned + [
            PlannedRequest(
                "POST",
                self._create_url(prepared),
                {**headers, "Prefer": f"wait={MAX_WAIT}"} if number == count and hold else headers,
                json=self.body(prepared, image_urls),
                note=note,
            )
            for number in range(1, count + 1)
        ]

    def run(self, prepared: PreparedJob, progress: Progress) -> Answer:
        """Upload the local files, create one prediction per image, poll those not done."""
        from nanoedit.net.http import Interrupted

        image_urls = [
            item if isinstance(item, str) else self._upload(item, progress)
            for item in prepared.inputs()
        ]
        predictions: list[_Prediction] = []
        count = prepared.job.options.count
        try:
            for number in range(1, count + 1):
                progress("waiting for the model")
                # Only the last is held: held one by one, they would run one after another.
                predictions.append(self._create(prepared, image_urls, hold=number == count))
        except (Interrupted, NanoeditError):
            # What was created before the failure would run, be charged and never be saved.
            self._abandon([p for p in predictions if p.status not in FINAL])
            raise
        return self._wait(predictions, progress)

    def collect(self, handles: Sequence[str], progress: Progress) -> Answer:
        """Poll the predictions (a handle is the prediction id) until each has ended."""
        return self._wait([_Prediction(handle, "submitted") for handle in handles], progress)

    @classmethod
    def handle_from_user(cls, text: str, model: str) -> str:
        """A prediction id, or a URL that ends in one: the API's ``urls.get``
        (``…/v1/predictions/ID``) or the web page's (``replicate.com/p/ID``)."""
        cleaned = text.strip()
        if "://" in cleaned:
            match = PREDICTION_PATH.fullmatch(urlsplit(cleaned).path)
            if match is None:
                raise UsageError(
                    f"{clip(cleaned, 80)} is not a prediction's URL (…/v1/predictions/ID or "
                    "replicate.com/p/ID); pass the prediction id"
                )
            cleaned = match["id"]
        return plain_id(cleaned, "Replicate prediction id", "ufawqhfynnddngldkgtslldrkq")

    def _wait(self, predictions: list[_Prediction], progress: Progress) -> Answer:
        """Poll the predictions not ended yet until each has, then return all their images."""
        pending = [prediction for prediction in predictions if prediction.images is None]
        if pending:
            progress(f"waiting for the model, task {pending[0].status}")
            poll_until_done(
                pending,
                self._poll,
                self.http,
                progress,
                first_interval=self.poll_interval,
                state=lambda prediction: prediction.status,
                timed_out=lambda waiting: (
                    f"prediction {', '.join(p.id for p in waiting)} on {self.where}"
                ),
                abandon=self._abandon,
            )
        return Answer([image for prediction in predictions for image in prediction.images or []])

    def _upload(self, image: InputImage, progress: Progress) -> str:
        """Send one local file to the files API; returns the URL a prediction reads it from."""
        from nanoedit.net.client import with_upload_progress

        name = image.source.location
        request = self.http.client.build_request(
            "POST",
            f"{self.root}/v1/files",
            headers=self._headers(),
            files={"content": (image.filename, image.data, image.mime)},
        )
        progress("uploading", 0, int(request.headers.get("content-length", "0") or 0))
        request = with_upload_progress(
            request, lambda done, total: progress("uploading", done, total)
        )
        response = self.http.send(
            request, where=self.where, what=f"the upload of {name}", paid=False
        )
        answer = self._check(response, f"upload of {name}")
        urls = answer.get("urls")
        url = urls.get("get") if isinstance(urls, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(f"{self.where} took the upload of {name} but sent no urls.get for it")
        return url

    def _create(self, prepared: PreparedJob, image_urls: list[str], *, hold: bool) -> _Prediction:
        headers = self._headers()
        # A held answer brings the prediction's id only when the model is done: a journaled
        # job wants the id at once, so that a run killed meanwhile leaves it to resume.
        if hold and not self.http.keep_tasks:
            headers["Prefer"] = self._prefer()
        request = self.http.client.build_request(
            "POST",
            self._create_url(prepared),
            headers=headers,
            json=self.body(prepared, image_urls),
        )
        response = self.http.send(request, where=self.where, what="the prediction", paid=True)
        answer = self._check(response, "prediction")
        prediction_id = answer.get("id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise ApiError(f"{self.where} accepted the prediction but sent no id")
        self.http.log.task(prediction_id)
        prediction = _Prediction(prediction_id, str(answer.get("status") or "starting"))
        self._settle(prediction, answer)
        return prediction

    def _poll(self, prediction: _Prediction) -> bool:
        url = f"{self.root}/v1/predictions/{prediction.id}"
        request = self.http.client.build_request("GET", url, headers=self._headers())
        what = f"the poll of prediction {prediction.id}"
        response = self.http.send(request, where=self.where, what=what, paid=False)
        try:
            answer = self._check(response, f"poll of prediction {prediction.id}")
        except ApiError as exc:
            if response.status_code == 404:
                # The server does not know the prediction: polling again cannot change that.
                raise TaskFailed(
                    f"{exc.message.rstrip('.')}; check the prediction id, and {self.name}.base_url"
                ) from None
            raise
        prediction.status = str(answer.get("status") or "unknown")
        return self._settle(prediction, answer)

    def _settle(self, prediction: _Prediction, answer: dict[str, Any]) -> bool:
        """Read a final prediction's images, or raise the error it ended in; False while it
        runs (starting, processing, and states nobody has documented)."""
        status = prediction.status
        subject = f"prediction {prediction.id} on {self.where}"
        if status == "succeeded":
            output = answer.get("output")
            if output is None:
                # How Replicate shows an output its safety filter removed: a refusal.
                raise RefusedError(
                    f"{subject} was refused: it succeeded with output null, which is how "
                    "Replicate shows an image its safety filter removed; rephrase the prompt "
                    "or change the image"
                )
            items = output if isinstance(output, list) else [output]
            urls = [item.strip() for item in items if isinstance(item, str) and item.strip()]
            if not urls:
                raise TaskFailed(
                    f"{subject} succeeded with an empty output, so no image was made; try again"
                )
            prediction.images = [result_from_url(url, self.where) for url in urls]
            return True
        if status == "failed":
            reason = clip(str(answer.get("error") or "no reason given"))
            if any(word in reason.lower() for word in REFUSAL_WORDS):
                raise RefusedError(
                    f"{subject} was refused: {reason}; rephrase the prompt or change the image"
                )
            raise TaskFailed(f"{subject} failed: {reason}")
        if status == "canceled":
            raise TaskFailed(f"{subject} was canceled on the server; send the job again")
        return False

    def _check(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """The answer as a dict once its status says success; else the problem it states."""
        status = response.status_code
        if status in (401, 403) and not looks_like_json(response):
            raise auth_error(self.settings, self.where, f"HTTP {status}")
        body = read_json(response, self.where) if response.content.strip() else None
        said = _problem(body)
        if status in (401, 403):
            raise auth_error(self.settings, self.where, said or f"HTTP {status}")
        if status == 404 and what == "prediction":
            # The model is in the path: Replicate answers 404 for a model it does not have.
            raise ModelNotServed(self.where, f"HTTP 404{': ' + clip(said) if said else ''}")
        if status >= 400:
            shown = f": {clip(said)}" if said else " with no error details"
            hint = ""
            if status == 429:
                hint = "; Replicate is rate limiting requests, wait a little and try again"
            elif status == 402:
                hint = "; the account's credit is used up, add some on replicate.com"
            raise ApiError(f"{self.where} answered the {what} with HTTP {status}{shown}{hint}")
        if not isinstance(body, dict):
            raise ApiError(
                f"{self.where} answered the {what} with HTTP {status} but no JSON object; the "
                "server or a proxy in front of it failed, try again later"
            )
        return body

    def _abandon(self, pending: list[_Prediction]) -> bool:
        """Cancel the predictions still running, so they are not charged; say what became of
        each."""
        cancelled = True
        for prediction in pending:
            subject = f"prediction {prediction.id} on {self.where}"
            url = f"{self.root}/v1/predictions/{prediction.id}/cancel"
            post = self.http.client.build_request("POST", url, headers=self._headers())
            response = self.http.send_cleanup(post)
            body = parse_json(response) if response is not None else None
            status = body.get("status") if isinstance(body, dict) else None
            if response is not None and response.status_code == 200 and status == "canceled":
                self.http.notify(f"{subject} was {prediction.status}, so it was cancelled")
                continue
            said = "no answer" if response is None else f"HTTP {response.status_code}"
            if status in FINAL:
                said = f"it had {status} already"
            self.http.notify(
                f"{subject} could not be cancelled ({said}); it may still run and be charged"
            )
            cancelled = False
        return cancelled
