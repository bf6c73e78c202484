"""Google's own Gemini API: ``generateContent`` with the images inline (or through the Files
API when they are too large to inline), the key in ``x-goog-api-key``, never in the URL; or,
with ``gemini.api`` set to ``interactions``, the same job through Google's Interactions API
(``nanoedit.backends.gemini_interactions``).

Which API is the default, and why ([P] Google's documentation; [I] nanoedit's judgement):
``generateContent`` ([P] generally available, "fully supported"; the body Vertex AI shares).
The Interactions API is what Google recommends for new work, but [P] it is served under
``v1beta``, pinned by an ``Api-Revision`` date and changed incompatibly since (its May 2026
"breaking changes"), and [P] it stores every interaction unless told not to. [I] A default
that changes what is sent, and what Google keeps, is not changed under a user: one chooses it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
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
    carries_thread,
    clip,
    encode_base64,
    gather,
    non_json_verdict,
    not_a_listing,
    parse_json,
    read_json,
    reported_usage,
    result_from_base64,
)
from nanoedit.backends.gemini_errors import (
    NO_IMAGE_REASONS,
    REFUSAL_REASONS,
    retry_delay,
)
from nanoedit.backends.gemini_errors import denial as _denial
from nanoedit.backends.gemini_errors import error_of as _error_of
from nanoedit.backends.gemini_errors import is_key_error as _is_key_error
from nanoedit.backends.gemini_errors import no_image as _no_image
from nanoedit.backends.gemini_errors import refused as _refused
from nanoedit.backends.gemini_history import exchange_of, history_contents, kept_part
from nanoedit.backends.gemini_tiers import (
    FLEX_READ_TIMEOUT,
    served_header,
    shed_advice,
    with_served_tier,
)
from nanoedit.catalog.models import FLASH_ALIAS, Catalog, shipped_catalog
from nanoedit.errors import ApiError, NanoeditError, NetworkError, RefusedError, UsageError
from nanoedit.jobs import STANDARD_TIER, Dials, ImageSource, Progress
from nanoedit.net.inputs import InputImage
from nanoedit.settings.checks import check_bool
from nanoedit.settings.keys import KeySpec
from nanoedit.urls import host_of

if TYPE_CHECKING:
    import httpx

    from nanoedit.b64stream import Streamed
    from nanoedit.backends.gemini_interactions import Interactions
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
# The two APIs a job can go through (``gemini.api``), the default first (see the module's
# docstring for why).
GENERATE_CONTENT = "generate_content"
INTERACTIONS = "interactions"
APIS = (GENERATE_CONTENT, INTERACTIONS)


def check_api(value: str) -> str:
    """``gemini.api``'s rule: ``generate_content`` or ``interactions`` (any case, ``-`` for
    ``_``, Google's own ``generateContent``); a usage error naming the nearest for another."""
    cleaned = value.strip().lower().replace("-", "_")
    cleaned = GENERATE_CONTENT if cleaned == "generatecontent" else cleaned
    if cleaned in APIS:
        return cleaned
    close = difflib.get_close_matches(cleaned, APIS, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UsageError(
        f"{value.strip()!r} names no API the gemini backend sends through; {hint}use "
        f"{GENERATE_CONTENT} "
        f"(Google's generateContent, the default) or {INTERACTIONS} (Google's Interactions API)"
    )


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
    # [P] generateContent's serviceTier and the Interactions API's service_tier (SDK
    # google-genai 3.6.1; docs flex-inference, priority-inference).
    service_tiers = True
    extra_keys: ClassVar[dict[str, KeySpec]] = {
        "api": KeySpec(
            "NANOEDIT_GEMINI_API",
            f"Google Gemini API: the API a job goes through, {GENERATE_CONTENT} (Google's "
            f"generateContent) or {INTERACTIONS} (Google's Interactions API)",
            GENERATE_CONTENT,
            check=check_api,
        ),
        "store": KeySpec(
            "NANOEDIT_GEMINI_STORE",
            "Google Gemini API: let Google keep the requests and answers (true, Google's own "
            "default) or ask it not to (false; --no-store for one run)",
            "true",
            check=check_bool,
        ),
    }

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
        dials = options.dials
        # [P] responseModalities ["IMAGE"] asks for the image alone (--image-only).
        modalities = ["IMAGE"] if dials.image_only else ["TEXT", "IMAGE"]
        config: dict[str, Any] = {"responseModalities": modalities}
        image: dict[str, Any] = {}
        # Without a ratio the model follows the input image (or draws a square).
        if options.ratio != "auto":
            image["aspectRatio"] = options.ratio
        if options.size:
            image["imageSize"] = options.size
        image |= self.image_dials(dials)
        if image:
            config["imageConfig"] = image
        if dials.seed is not None:
            config["seed"] = dials.seed  # [P] GenerationConfig.seed
        if dials.thinking is not None:
            # [P] ThinkingConfig.thinking_level: the enum's names, upper case.
            config["thinkingConfig"] = {"thinkingLevel": dials.thinking.upper()}
        return config

    def image_dials(self, dials: Dials) -> dict[str, Any]:
        """What of the dials goes in ``imageConfig``: nothing on the Gemini API, which refuses
        an output format ([P] google-genai raises for output_mime_type there)."""
        return {}

    def body(
        self,
        prepared: PreparedJob,
        parts: list[dict[str, Any]],
        history: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """The request body: the ``history`` of a ``--continue`` job's thread (its earlier
        turns' contents), then this turn's user content: the prompt's text part first, then
        the images in input order; ``store: false`` when Google is asked not to keep it
        (``gemini.store``, --no-store)."""
        text = {"text": prepared.job.options.prompt}
        body: dict[str, Any] = {
            "contents": [*history, {"role": "user", "parts": [text, *parts]}],
            "generationConfig": self._config(prepared),
        }
        if prepared.job.options.dials.search:
            # [P] Tool.google_search: Google Search grounding, its queries paid apart.
            body["tools"] = [{"googleSearch": {}}]
        if self.settings.option("store") == "false":
            # [P] Since 2026-10-26 Google stores generateContent requests of new paid
            # projects unless the request says store: false.
            body["store"] = False
        tier = prepared.job.options.tier
        if tier != STANDARD_TIER and self.service_tiers:
            # [P] The SDK (google-genai 3.6.1, _GenerateContentConfig_to_mldev) puts a config's
            # service_tier on the request itself, beside contents, as serviceTier, in lower
            # case; left out, the request is standard (docs flex-inference).
            body["serviceTier"] = tier
        return body

    def api(self) -> str:
        """The API this backend's jobs go through (``gemini.api``); a backend built on this one
        without that setting (Vertex AI) has generateContent alone."""
        return self.settings.option("api") or GENERATE_CONTENT

    def _interactions(self) -> Interactions:
        from nanoedit.backends.gemini_interactions import Interactions

        return Interactions(self.http, self.settings, self.root, self.where, self.auth_headers)

    def plan(self, prepared: PreparedJob) -> list[PlannedRequest]:
        """One request per image asked for; each input's base64 is piped in by the command
        (with a thread, the earlier turns' images too, from where they were saved)."""
        if self.api() == INTERACTIONS:
            return self._interactions().plan(prepared)
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
        if prepared.job.options.tier == "flex":
            # Queued for minutes before its answer: a read that gave up sooner would leave a
            # request that may be charged unanswered (the job's --timeout still bounds it).
            self.http.deadline.read_cap = FLEX_READ_TIMEOUT
        if self.api() == INTERACTIONS:
            return self._interactions().run(prepared, progress, self._image_parts)
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

        def ask(before: int) -> Answer:
            response, streamed = self._generate(prepared.model, body)
            try:
                answer = parse_answer(
                    response, self.where, self.settings, prepared.model, streamed,
                    number_from=before + 1,
                )  # fmt: skip
            except NanoeditError as exc:
                raise shed_advice(exc, prepared.job.options.tier) from None
            usage = with_served_tier(
                reported_usage(response, "usageMetadata"), served_header(response),
                prepared.job.options.tier, self.where, self.http.notify,
            )  # fmt: skip
            return replace(answer, usage=usage)

        return gather(prepared.job.options.count, progress, ask)

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
        """The Files API's resumable upload of an input image; returns the file it made."""
        what = f"the upload of {upload.source.location}"
        return self.upload_file(
            upload.data,
            upload.mime,
            upload.filename,
            what,
            headers,
            lambda file: bool(_file_uri(file)),
        )

    def upload_file(
        self,
        data: bytes,
        mime: str,
        display_name: str,
        what: str,
        headers: dict[str, str],
        usable: Callable[[dict[str, Any]], bool],
    ) -> dict[str, Any]:
        """The Files API's resumable upload in one piece (an input image, or a batch's JSONL
        requests); returns the file it made, as the finalizing answer gives it (an error when
        it gives none, or one ``usable`` turns down)."""
        start = self.http.client.build_request(
            "POST",
            f"{self.root}/upload/{API_VERSION}/files",
            headers={
                **headers,
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(len(data)),
                "X-Goog-Upload-Header-Content-Type": mime,
            },
            json={"file": {"display_name": display_name}},
        )
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
                "Content-Type": mime,
            },
            content=data,
        )
        done = self.http.send(finish, where=self.where, what=what, paid=False)
        body = read_json(done, self.where) if done.status_code == 200 else None
        file = body.get("file") if isinstance(body, dict) else None
        if not isinstance(file, dict) or not usable(file):
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
        ).coded(str(block))
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
        return _refused(f"{where} made no image (finishReason {reason}){said}", text, reason)
    if text:
        return _refused(f"{where} answered with text but no image: {clip(text)!r}", "")
    shown = reason or "none given"
    raise ApiError(f"{where} answered without an image (finishReason {shown}){said}; try again")


def _mime_of_name(name: str) -> str:
    lowered = name.lower()
    for ending, mime in ((".jpg", "image/jpeg"), (".jpeg", "image/jpeg"), (".webp", "image/webp")):
        if lowered.endswith(ending):
            return mime
    return "image/png"
