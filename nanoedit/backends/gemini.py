"""Google's own Gemini API: ``generateContent`` with the images inline (or through the Files
API when they are too large to inline), the key in ``x-goog-api-key``, never in the URL."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
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
    add_usage,
    auth_error,
    carries_thread,
    clip,
    encode_base64,
    non_json_verdict,
    not_a_listing,
    parse_json,
    read_json,
    reported_usage,
    result_from_base64,
)
from nanoedit.backends.gemini_history import exchange_of, history_contents, kept_part
from nanoedit.catalog.models import FLASH_ALIAS, Catalog, shipped_catalog
from nanoedit.errors import ApiError, ModelNotServed, NanoeditError, NetworkError, RefusedError
from nanoedit.jobs import Exchange, ImageSource, Progress
from nanoedit.net.inputs import InputImage
from nanoedit.urls import host_of

if TYPE_CHECKING:
    import httpx

    from nanoedit.b64stream import Streamed
    from nanoedit.net.http import JobHttp
    from nanoedit.settings.values import BackendSettings

API_VERSION = "v1beta"
# The model list's largest page [P]: Google answers at most 1000 models a page, 50 unless asked.
LIST_PAGE_SIZE = 1000
# A list that has not ended after this many pages is a server that keeps answering the same.
MAX_LIST_PAGES = 100
# [I] Google's Model resource says nothing of what a model outputs, so an image model is told
# by its name: Google names every Gemini image model "...-image[-preview]" or "...nano-banana..."
# ([P] its model pages), and Imagen, whose name has neither, is no Gemini model (it predicts).
IMAGE_MODEL_NAME = re.compile(r"(?:^|-)image(?:-|$)|nano-banana")
# Inline base64 above this goes through the Files API instead. Google raised its own limit to
# 100 MB (counted as base64) in 2026, but older limits (20 MB) still apply on some routes and
# proxies, so nanoedit stays under the old one.
MAX_INLINE_BASE64 = 20 * 1024 * 1024
# An uploaded file is usable once its state is ACTIVE; until then it is polled, first after
# this many seconds, then as tasks are (half as long again each time, up to 10 s).
FILE_POLL_INTERVAL = 1.0
# A file's name as the Files API gives it: it goes into the path of the poll, with the key.
FILE_NAME = re.compile(r"files/[a-z0-9-]{1,64}")
# finishReason values that mean the model declined to draw for the content (Google's
# FinishReason: safety, prohibited content, recitation, blocklist, personal data).
REFUSAL_REASONS = frozenset(
    {
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "PROHIBITED_CONTENT",
        "SAFETY",
        "RECITATION",
        "IMAGE_RECITATION",
        "BLOCKLIST",
        "SPII",
    }
)
# finishReason values that say no image came for no reason of the content, in Google's own
# words (its FinishReason reference): an API failure (exit 5), not a refusal (exit 8).
NO_IMAGE_REASONS: dict[str, str] = {
    "NO_IMAGE": "The model was expected to generate an image, but none was generated",
    "IMAGE_OTHER": "Image generation stopped for a reason not otherwise specified",
}
# API key errors come as 400 INVALID_ARGUMENT with this reason, not as 401. A 403
# PERMISSION_DENIED is about the key only with one of these reasons: others (a model kept from
# the project, an API not enabled for it, the project itself) are not fixed by another key.
KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED"})
# What to do about a 403 by its reason (none: Google names none).
DENIED_HINTS: dict[str, str] = {
    "SERVICE_DISABLED": (
        "the Generative Language API is not enabled for the key's Google Cloud project: enable "
        "it (Google's message gives the link), wait a few minutes, and try again"
    ),
    "": (
        "Google turned the request down, not the key (a key it rejects is API_KEY_INVALID): "
        "the key's project may not have access to this model (some are kept for projects that "
        "used them before), or to a file the request names; choose another --model, or check "
        "the project in Google AI Studio"
    ),
}
OTHER_DENIAL = (
    "Google turned the request down for the key's project, not for the key (a key it rejects "
    "is API_KEY_INVALID); check the project in Google AI Studio or the Cloud console"
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def api_root(base_url: str) -> str:
    """The server root, whether the base URL was given with ``/v1beta`` or without."""
    root = base_url.rstrip("/")
    return root[: -len(f"/{API_VERSION}")] if root.endswith(f"/{API_VERSION}") else root


def _image_model(entry: Any) -> LiveModel | None:
    """The model of a list entry when it is a Gemini image model, else None."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        return None
    model_id = entry["name"].removeprefix("models/")
    methods = entry.get("supportedGenerationMethods")
    if not isinstance(methods, list) or "generateContent" not in methods:
        return None
    return LiveModel(model_id) if IMAGE_MODEL_NAME.search(model_id) else None


class GeminiBackend(BackendBase):
    """One ``generateContent`` request per image asked for (``-n 3`` is three requests)."""

    name = "gemini"
    # candidates[].content.parts[].inlineData.data.
    base64_keys = frozenset({"data"})
    title = "Google Gemini API"
    takes = Takes.FILES
    default_base_url = "https://generativelanguage.googleapis.com"
    # Google's SDK reads GOOGLE_API_KEY first when both are set (and says so): so does nanoedit.
    key_env: ClassVar[tuple[str, ...]] = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
    lists_all = True
    # [P] generateContent is stateless: a conversation is its history resent in ``contents``,
    # the model's own turns with their thought signatures exactly as received (docs
    # image-generation#thought-signatures).
    converses = True

    def __init__(
        self, settings: BackendSettings, http: JobHttp, catalog: Catalog | None = None
    ) -> None:
        super().__init__(settings, http, catalog)
        assert settings.base_url is not None
        self.root = api_root(settings.base_url)
        self.where = host_of(self.root)

    @classmethod
    def probe(cls, base_url: str, key: str) -> Probe:
        """Look up the model ``nano-banana`` stands for: free, authenticated, and it says
        whether the model exists."""
        root = api_root(base_url)
        model = shipped_catalog().resolve(cls.name, FLASH_ALIAS).sent
        url = f"{root}/{API_VERSION}/models/{model}"
        return Probe(url, key, host_of(root), cls.auth_headers(key))

    @classmethod
    def judge(cls, response: httpx.Response, probe: Probe, settings: BackendSettings) -> Verdict:
        """A model description means ready; Google's error object says what is wrong."""
        body = parse_json(response)
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        if not isinstance(body, dict):
            return non_json_verdict(response, probe, settings)
        status = response.status_code
        error = body.get("error")
        if isinstance(error, dict):
            message = probe.quote(error.get("message") or "no message")
            state = probe.quote(error.get("status") or "", 40)
            shown = f"{message} [{state}]" if state else message
            if _is_key_error(status, error):
                return Verdict(
                    KEY_REJECTED,
                    f"{probe.where} rejected the key (HTTP {status}: {shown}); "
                    f"{settings.key_advice()}",
                )
            if status == 403:
                return Verdict(
                    FAILED, f"{probe.where} answered HTTP 403: {_denial(error, probe.quote)}"
                )
            return Verdict(FAILED, f"{probe.where} answered HTTP {status}: {shown}")
        if 200 <= status < 300 and isinstance(body.get("name"), str):
            return Verdict(READY, f"{probe.where}, key accepted")
        return Verdict(
            FAILED,
            f"{probe.where} answered HTTP {status} with JSON that is not a model; "
            f"check {settings.name}.base_url",
        )

    @classmethod
    def list_models(
        cls, base_url: str, key: str, ids: Sequence[str], get: ListingGet
    ) -> list[LiveModel]:
        """Google's image models: every page of ``GET /v1beta/models`` (``pageToken`` from
        each page's ``nextPageToken`` until there is none), kept to the models that
        ``generateContent`` and are named as image models (see ``IMAGE_MODEL_NAME``)."""
        url = f"{api_root(base_url)}/{API_VERSION}/models"
        headers = {"x-goog-api-key": key}
        listed: list[LiveModel] = []
        token = ""
        for _ in range(MAX_LIST_PAGES):
            query = {"pageSize": LIST_PAGE_SIZE} | ({"pageToken": token} if token else {})
            body = get(f"{url}?{urlencode(query)}", headers)
            models = body.get("models", []) if isinstance(body, dict) else None
            if not isinstance(models, list):
                raise not_a_listing(url)
            listed += [model for entry in models if (model := _image_model(entry)) is not None]
            token = body.get("nextPageToken") or ""
            if not isinstance(token, str) or not token:
                return listed
        raise ApiError(
            f"{host_of(url)} kept answering another page of models after {MAX_LIST_PAGES}; "
            "try again later"
        )

    # Requests ------------------------------------------------------------------------------

    @classmethod
    def auth_headers(cls, key: str) -> dict[str, str]:
        """The headers that sign a request in with ``key`` (``{key}`` for a dry run's
        placeholder): another Google API on the same body signs in its own way."""
        return {"x-goog-api-key": key}

    def _url(self, model: str) -> str:
        return f"{self.root}/{API_VERSION}/models/{model}:generateContent"

    def _config(self, prepared: PreparedJob) -> dict[str, Any]:
        options = prepared.job.options
        config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
        image: dict[str, str] = {}
        # Without a ratio the model follows the input image (or draws a square).
        if options.ratio != "auto":
            image["aspectRatio"] = options.ratio
        if options.size:
            image["imageSize"] = options.size
        if image:
            config["imageConfig"] = image
        return config

    def body(
        self,
        prepared: PreparedJob,
        parts: list[dict[str, Any]],
        history: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """The request body: the ``history`` of a ``--continue`` job's thread (its earlier
        turns' contents), then this turn's user content: the prompt's text part first, then
        the images in input order."""
        text = {"text": prepared.job.options.prompt}
        return {
            "contents": [*history, {"role": "user", "parts": [text, *parts]}],
            "generationConfig": self._config(prepared),
        }

    def plan(self, prepared: PreparedJob) -> list[PlannedRequest]:
        """One request per image asked for; each input's base64 is piped in by the command
        (with a thread, the earlier turns' images too, from where they were saved)."""
        inline: list[tuple[str, str]] = []

        def placeholder(location: str) -> str:
            name = f"@@IMAGE{len(inline) + 1}@@"
            inline.append((name, location))
            return name

        def part(location: str, name: str) -> dict[str, Any]:
            return {"inlineData": {"mimeType": _mime_of_name(name), "data": placeholder(location)}}

        def parts(sources: Sequence[ImageSource]) -> list[dict[str, Any]]:
            return [part(source.location, source.name) for source in sources]

        job = prepared.job
        history: list[Any] = []
        sources: Sequence[ImageSource] = job.images
        if job.thread is not None and carries_thread(job, self.name):
            turns = job.thread.turns
            history = history_contents(
                self.name,
                [
                    (turn, parts(turn.inputs), part(str(turn.image), turn.image.name))
                    for turn in turns
                ],
            )
            sources = job.images[1:]  # the first is the last turn's result, in the history
        request = PlannedRequest(
            "POST",
            self._url(prepared.model),
            self.auth_headers("{key}"),
            json=self.body(prepared, parts(sources), history),
            inline_files=tuple(inline),
        )
        return [request] * prepared.job.options.count

    def run(self, prepared: PreparedJob, progress: Progress) -> Answer:
        """Send the job ``count`` times (one image each) and gather the images and words, with
        what each request's answer keeps for a later ``--continue`` turn. A failure after some
        images were made returns those with it: they are paid for."""
        headers = self.auth_headers(self.settings.key())
        parts = self._image_parts(prepared.added_uploads(), headers, progress)
        history = history_contents(
            self.name,
            [
                (
                    turn.turn,
                    [self._inline_part(upload) for upload in turn.inputs],
                    self._inline_part(turn.image),
                )
                for turn in prepared.history
            ],
        )
        body = self.body(prepared, parts, history)
        images: list[ResultImage] = []
        texts: list[str] = []
        exchanges: list[Exchange] = []
        usage: dict[str, Any] | None = None
        for _ in range(prepared.job.options.count):
            progress("waiting for the model")
            try:
                response, streamed = self._generate(prepared.model, body)
                answer = parse_answer(
                    response, self.where, self.settings, prepared.model, streamed,
                    number_from=len(images) + 1,
                )  # fmt: skip
            except NanoeditError as exc:
                if not images:
                    raise
                return Answer(
                    images, "\n".join(texts), error=exc, usage=usage, exchanges=tuple(exchanges)
                )
            usage = add_usage(usage, reported_usage(response, "usageMetadata"))
            images += answer.images
            exchanges += answer.exchanges
            if answer.text:
                texts.append(answer.text)
        return Answer(images, "\n".join(texts), usage=usage, exchanges=tuple(exchanges))

    def _inline_part(self, upload: InputImage) -> dict[str, Any]:
        """An image sent inline, as its bytes in base64."""
        return {"inlineData": {"mimeType": upload.mime, "data": encode_base64(upload.data)}}

    def _generate(self, model: str, body: dict[str, Any]) -> tuple[httpx.Response, Streamed | None]:
        """One paid ``generateContent`` request, signed in with the key as it is now (another
        Google API whose credentials expire may sign in again and resend what was refused)."""
        request = self.http.client.build_request(
            "POST", self._url(model), headers=self.auth_headers(self.settings.key()), json=body
        )
        return self.http.send_json(
            request,
            where=self.where,
            what="the generateContent request",
            paid=True,
            wait_hint=retry_delay,
            keys=self.base64_keys,
        )

    def _image_parts(
        self, uploads: tuple[InputImage, ...], headers: dict[str, str], progress: Progress
    ) -> list[dict[str, Any]]:
        """Inline every image, unless together they are too large: then upload them."""
        inline_size = sum(4 * ((len(upload.data) + 2) // 3) for upload in uploads)
        if inline_size <= MAX_INLINE_BASE64:
            return [self._inline_part(upload) for upload in uploads]
        parts = []
        for upload in uploads:
            progress("uploading", 0, len(upload.data))
            file = self._upload(upload, headers)
            uri = self._when_active(file, upload, headers, progress)
            parts.append({"fileData": {"mimeType": upload.mime, "fileUri": uri}})
        return parts

    def _upload(self, upload: InputImage, headers: dict[str, str]) -> dict[str, Any]:
        """The Files API's resumable upload in one piece; returns the file it made."""
        start = self.http.client.build_request(
            "POST",
            f"{self.root}/upload/{API_VERSION}/files",
            headers={
                **headers,
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(len(upload.data)),
                "X-Goog-Upload-Header-Content-Type": upload.mime,
            },
            json={"file": {"display_name": upload.filename}},
        )
        what = f"the upload of {upload.source.location}"
        # Uploads cost nothing: a retry at worst leaves a second copy for 48 hours.
        answer = self.http.send(start, where=self.where, what=what, paid=False)
        target = answer.headers.get("x-goog-upload-url")
        if answer.status_code != 200 or not target:
            raise _error_of(answer, self.where, self.settings, what)
        # The key goes only back to the API's own host, wherever the answer points.
        same_host = urlsplit(target).netloc == urlsplit(self.root).netloc
        finish = self.http.client.build_request(
            "POST",
            target,
            headers={
                **(headers if same_host else {}),
                "X-Goog-Upload-Command": "upload, finalize",
                "X-Goog-Upload-Offset": "0",
                "Content-Type": upload.mime,
            },
            content=upload.data,
        )
        done = self.http.send(finish, where=self.where, what=what, paid=False)
        body = read_json(done, self.where) if done.status_code == 200 else None
        file = body.get("file") if isinstance(body, dict) else None
        if not isinstance(file, dict) or not _file_uri(file):
            raise _error_of(done, self.where, self.settings, what)
        return file

    def _when_active(
        self,
        file: dict[str, Any],
        upload: InputImage,
        headers: dict[str, str],
        progress: Progress,
    ) -> str:
        """The URI of an uploaded file once it is ACTIVE: a file still PROCESSING cannot be
        used yet, so it is polled (within the job's time limit); one that ends FAILED is an
        error, before anything is paid for."""
        from nanoedit.backends.tasks import MAX_POLL_INTERVAL, POLL_GROWTH

        shown = upload.source.location
        name = file.get("name")
        deadline = self.http.deadline
        interval = FILE_POLL_INTERVAL
        # No state at all: a server from before the Files API had states, where a file is usable.
        while (state := str(file.get("state") or "ACTIVE")) != "ACTIVE":
            if state == "FAILED":
                raise _processing_failed(self.where, shown, name, file.get("error"))
            if not isinstance(name, str) or not FILE_NAME.fullmatch(name):
                raise ApiError(
                    f"{self.where} answered the upload of {shown} with a file that is {state} "
                    f"and a name nanoedit cannot ask about ({clip(str(name), 80)!r}); try again"
                )
            progress(f"waiting for the upload to be processed ({state})")
            self.http.sleep(min(interval, deadline.remaining()))
            if deadline.remaining() <= 0:
                raise NetworkError(
                    f"the upload of {shown} on {self.where} ({name}) was still {state} when the "
                    f"job's time limit of {deadline.seconds:g} s ran out "
                    f"({deadline.elapsed():.1f} s elapsed); nothing was sent to the model: "
                    "raise --timeout, or try again later"
                )
            what = f"the state of the upload of {shown}"
            get = self.http.client.build_request(
                "GET", f"{self.root}/{API_VERSION}/{name}", headers=headers
            )
            answer = self.http.send(get, where=self.where, what=what, paid=False)
            polled = read_json(answer, self.where) if answer.status_code == 200 else None
            if not isinstance(polled, dict) or not _file_uri(polled):
                raise _error_of(answer, self.where, self.settings, what)
            file = polled
            interval = min(interval * POLL_GROWTH, MAX_POLL_INTERVAL)
        return _file_uri(file)


def _file_uri(file: dict[str, Any]) -> str:
    """The URI a request names an uploaded file by ("" when the file object has none)."""
    uri = file.get("uri")
    return uri if isinstance(uri, str) else ""


def _processing_failed(where: str, shown: str, name: object, error: object) -> ApiError:
    """The error of an upload whose processing ended FAILED (Google's ``error`` said why)."""
    said = error.get("message") if isinstance(error, dict) else None
    why = f": {clip(str(said))}" if said else ""
    return ApiError(
        f"{where} could not process the upload of {shown} ({name} ended FAILED{why}), so "
        "nothing was sent to the model; check that the file is an image Gemini takes (PNG, "
        "JPEG, WebP, HEIC), or send the job again"
    )


def parse_answer(
    response: httpx.Response,
    where: str,
    settings: BackendSettings,
    model: str,
    streamed: Streamed | None = None,
    *,
    number_from: int = 1,
) -> Answer:
    """The images and words of a ``generateContent`` answer ``model`` gave, or the error it
    carries, with its exchange: the model's parts for a later ``--continue`` turn to send
    back, each image as the number its result gets (``number_from`` for the answer's first).

    Thought parts (the 3.x models' interim drafts) are skipped; no image at all is a refusal
    when the model or its filter says it is for the content, an API error otherwise.
    ``streamed`` holds the images already streamed to files (a thought's image among them,
    left unsaved).
    """
    if response.status_code != 200:
        raise _error_of(response, where, settings, "the generateContent request", model_call=True)
    body = read_json(response, where)
    if not isinstance(body, dict):
        raise ApiError(f"{where} answered with JSON of an unexpected shape ({clip(str(body), 80)})")
    feedback = body.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    candidates = body.get("candidates")
    first = candidates[0] if isinstance(candidates, list) and candidates else None
    if block and not isinstance(first, dict):
        said = feedback.get("blockReasonMessage") if isinstance(feedback, dict) else None
        why = f": {clip(str(said))}" if said else ""
        raise RefusedError(
            f"{where} blocked the prompt ({block}){why}; rephrase the prompt or change the image"
        )
    if not isinstance(first, dict):
        raise ApiError(f"{where} answered without a candidate, so no image was made; try again")
    content = first.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    images: list[ResultImage] = []
    texts: list[str] = []
    # The parts a later --continue turn sends back (see gemini_history.kept_part).
    kept: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict) or part.get("thought") is True:
            continue
        inline = part.get("inlineData") or part.get("inline_data")
        if isinstance(inline, dict) and isinstance(inline.get("data"), str) and inline["data"]:
            images.append(result_from_base64(inline["data"], where, streamed))
            kept.append(kept_part(part, inline, number_from + len(images) - 1))
            continue
        if isinstance(part.get("text"), str) and part["text"].strip():
            texts.append(part["text"].strip())
        kept.append(part)
    text = "\n".join(texts)
    if images:
        numbers = list(range(number_from, number_from + len(images)))
        return Answer(images, text, exchanges=(exchange_of(kept, numbers),))
    reason = str(first.get("finishReason") or "")
    message = first.get("finishMessage")
    said = f": {clip(str(message))}" if message else ""
    if reason in NO_IMAGE_REASONS:
        raise _no_image(where, model, reason, message, text)
    if reason in REFUSAL_REASONS:
        return _refused(f"{where} made no image (finishReason {reason}){said}", text)
    if text:
        return _refused(f"{where} answered with text but no image: {clip(text)!r}", "")
    shown = reason or "none given"
    raise ApiError(f"{where} answered without an image (finishReason {shown}){said}; try again")


def _no_image(where: str, model: str, reason: str, message: object, text: str) -> ApiError:
    """The error of an answer whose finishReason says no image came for no reason of the
    content (NO_IMAGE, IMAGE_OTHER): quoted in Google's words, the model named, since
    NO_IMAGE is what a model that does not draw answers."""
    meaning = NO_IMAGE_REASONS[reason]
    # A finishMessage that only repeats the meaning is not said twice.
    said = str(message).strip() if message else ""
    extra = f": {clip(said)}" if said and said.rstrip(".") != meaning else ""
    words = f"; the model said: {clip(text)!r}" if text else ""
    advice = "try again"
    if reason == "NO_IMAGE" and shipped_catalog().resolve_quietly("gemini", model).model is None:
        # An id the catalog does not know may be a model that does not draw at all.
        advice = f"check that {model} is an image model (--model or gemini.model), or try again"
    return ApiError(
        f'{where} made no image with {model} (finishReason {reason}: "{meaning}", in '
        f"Google's words){extra}{words}; that is not a refusal of the content: {advice}"
    )


def _refused(what: str, text: str) -> Answer:
    words = f"; the model said: {clip(text)!r}" if text else ""
    raise RefusedError(f"{what}{words}; rephrase the prompt or change the image")


def _is_key_error(status: int, error: dict[str, Any]) -> bool:
    """Whether Google's error object says the key is bad: a 401, or a reason that names the
    key (a 403 alone does not: see ``KEY_REASONS``)."""
    return status == 401 or bool(_reasons(error) & KEY_REASONS)


def _denial(error: dict[str, Any], quote: Callable[[str, int], str]) -> str:
    """A 403 that is not about the key, as Google said it (its message, status and reasons,
    each passed through ``quote``), and what to do about it."""
    message = quote(str(error.get("message") or "no message"), 300)
    reasons = sorted(_reasons(error))
    tags = [quote(tag, 60) for tag in (str(error.get("status") or ""), *reasons) if tag]
    shown = f"{message} [{', '.join(tags)}]" if tags else message
    if not reasons:
        return f"{shown}; {DENIED_HINTS['']}"
    hint = next((DENIED_HINTS[reason] for reason in reasons if reason in DENIED_HINTS), None)
    return f"{shown}; {hint or OTHER_DENIAL}"


def _reasons(error: dict[str, Any]) -> set[str]:
    details = error.get("details")
    items = details if isinstance(details, list) else []
    return {str(item["reason"]) for item in items if isinstance(item, dict) and item.get("reason")}


def _error_of(
    response: httpx.Response,
    where: str,
    settings: BackendSettings,
    what: str,
    *,
    model_call: bool = False,
) -> NanoeditError:
    """The error an answer other than 200 carries, in Google's ``{"error": {…}}`` shape (or a
    one-element list of it, which the SDK accepts too). On a call to a model (``model_call``)
    404 ``NOT_FOUND`` means the model is not served: "models/X is not found for API version
    v1beta, or is not supported for generateContent"."""
    status = response.status_code
    body = parse_json(response)
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        if status in (401, 403):
            # No error object of Google's to read a reason from (a proxy's page): as before.
            return auth_error(settings, where, f"HTTP {status}")
        read_json(response, where)  # raises, saying what came instead of JSON
        return ApiError(f"{where} answered {what} with HTTP {status} and no error details")
    message = clip(str(error.get("message") or "no message"))
    state = str(error.get("status") or "")
    shown = f"{message} [{state}]" if state else message
    if _is_key_error(status, error):
        return auth_error(settings, where, shown)
    if model_call and status == 404 and state in ("NOT_FOUND", ""):
        return ModelNotServed(where, shown)
    if status == 403:
        return ApiError(f"{where} answered HTTP 403: {_denial(error, clip)}")
    hints = {
        429: "the quota or rate limit is used up; wait, or check the project's quota",
        404: f"check the model id (--model or {settings.name}.model)",
        503: "the model is overloaded; try again later",
    }
    hint = hints.get(status, "")
    if status == 400 and state == "FAILED_PRECONDITION":
        hint = "the project needs billing enabled for this model, or it is not offered here"
    suffix = f"; {hint}" if hint else ""
    return ApiError(f"{where} answered HTTP {status}: {shown}{suffix}")


def retry_delay(response: httpx.Response) -> float | None:
    """The wait a 429's ``google.rpc.RetryInfo`` detail asks for (``"17s"``), if any."""
    response.read()
    body = parse_json(response)
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for item in details if isinstance(details, list) else []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("rpc.RetryInfo"):
            match = _DURATION.match(str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _mime_of_name(name: str) -> str:
    lowered = name.lower()
    for ending, mime in ((".jpg", "image/jpeg"), (".jpeg", "image/jpeg"), (".webp", "image/webp")):
        if lowered.endswith(ending):
            return mime
    return "image/png"
