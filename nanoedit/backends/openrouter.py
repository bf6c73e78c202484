"""The OpenRouter backend: Google's image models through OpenRouter's chat completions.

``POST {base}/v1/chat/completions`` with one user message (the prompt, then each image as a
``data:`` URI), ``modalities: ["image", "text"]`` and ``image_config``; the images come back
as ``data:`` URIs in ``choices[0].message.images``. One request makes one image, so ``-n N``
is N requests, each paid for.

A ``--continue`` job sends its thread as the chat history before that user message: each
earlier turn's user message and the assistant message it was answered with, its
``reasoning_details`` (Gemini's thought signatures) exactly as they came and its image put
back from the saved result (see :mod:`nanoedit.backends.openrouter_history`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

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
    looks_like_json,
    non_json_verdict,
    not_a_listing,
    parse_json,
    read_json,
    reported_usage,
    result_from_url,
)
from nanoedit.backends.openrouter_history import (
    History,
    SentTurn,
    exchange_of,
    history,
    user_message,
)
from nanoedit.catalog.models import Catalog
from nanoedit.errors import ApiError, ConfigError, ModelNotServed, NanoeditError, RefusedError
from nanoedit.jobs import Exchange, Progress
from nanoedit.urls import host_of

if TYPE_CHECKING:
    import httpx

    from nanoedit.b64stream import Streamed
    from nanoedit.net.http import JobHttp
    from nanoedit.net.inputs import InputImage
    from nanoedit.settings.values import BackendSettings

# OpenRouter spells Google's 512 tier 0.5K (API-NOTES-PROVIDERS §2a).
SIZE_NAMES = {"512": "0.5K"}
CREDITS_URL = "https://openrouter.ai/settings/credits"
KEYS_URL = "https://openrouter.ai/settings/keys"
# Typed error codes (error.metadata.error_type) that mean the content was refused.
REFUSAL_TYPES = frozenset({"content_policy_violation", "refusal"})
# Google's finish reasons, passed on as native_finish_reason, that mean the image was blocked.
BLOCKED_REASONS = frozenset(
    {
        "SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST", "SPII", "RECITATION", "IMAGE_RECITATION",
    }
)  # fmt: skip
# [I] The catalog is of Google's models: other makers' image models OpenRouter lists are not
# drift. OpenRouter names Google's models google/... ([P] its model pages).
GOOGLE_PREFIX = "google/"
# Typed error codes of a retryable status that no retry fixes.
PERMANENT_TYPES = frozenset({"not_found", "invalid_request", "payment_required"})
# [S] What OpenRouter puts before the provider's own error JSON in ``metadata.raw`` when it
# passes on a refusal it has advice for ("… Upstream error: {…}").
UPSTREAM_MARK = "Upstream error:"


class Parsed(NamedTuple):
    """One answer read: its images, its words, and the assistant message they came in (its
    ``images`` kept to those that became results, in their order), for the exchange."""

    images: list[ResultImage]
    text: str
    message: dict[str, Any]


def api_root(base_url: str) -> str:
    """The API root, whether the base URL was given as ``…/api`` or ``…/api/v1``."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def is_path_not_found(response: httpx.Response) -> bool:
    """A 404 that says the path is not OpenRouter's: any 404 but OpenRouter's own error
    object, which it answers with code 404 when no provider serves the model."""
    if response.status_code != 404:
        return False
    body = parse_json(response) if looks_like_json(response) else None
    error = body.get("error") if isinstance(body, dict) else None
    return not (isinstance(error, dict) and error.get("code") == 404)


def path_not_found(request: httpx.Request, root: str, where: str) -> ApiError:
    """The error for a path the server does not have: the base URL is not OpenRouter's API
    root (most often it lacks ``/api``: the sandbox's bare address, or openrouter.ai's)."""
    from nanoedit.urls import redact_userinfo

    root = redact_userinfo(root)
    url = redact_userinfo(str(request.url))
    fix = (
        f"{root}/api"
        if not root.endswith("/api")
        else f"the address of OpenRouter's API ({OpenRouterBackend.default_base_url})"
    )
    return ApiError(
        f"{where} answered HTTP 404 for {request.method} {url}: no such path, so the base URL "
        f"{root} looks wrong; OpenRouter's routes are under /api, set openrouter.base_url (or "
        f"NANOEDIT_OPENROUTER_BASE_URL) to {fix}"
    )


def _google_image_model(entry: Any) -> LiveModel | None:
    """The model of a list entry when it is one of Google's that outputs images, else None."""
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        return None
    architecture = entry.get("architecture")
    outputs = architecture.get("output_modalities") if isinstance(architecture, dict) else None
    if not isinstance(outputs, list) or "image" not in outputs:
        return None
    return LiveModel(entry["id"]) if entry["id"].startswith(GOOGLE_PREFIX) else None


class OpenRouterBackend(BackendBase):
    """Sends each image of a job as one chat completion with a ``Bearer`` key."""

    name = "openrouter"
    # choices[].message.images[].image_url.url, a data: URI.
    base64_keys = frozenset({"url"})
    title = "OpenRouter chat completions"
    # Local files travel as data: URIs of their exact bytes. URL inputs are downloaded first,
    # as for every backend that is sent bytes: nanoedit checks the image before paying, records
    # its hash, and the URL need not be reachable from OpenRouter.
    takes = Takes.FILES
    default_base_url = "https://openrouter.ai/api"
    key_env = ("OPENROUTER_API_KEY",)
    lists_all = True
    # A --continue job sends its thread as the chat's messages (openrouter_history).
    converses = True

    def __init__(
        self, settings: BackendSettings, http: JobHttp, catalog: Catalog | None = None
    ) -> None:
        super().__init__(settings, http, catalog)
        assert settings.base_url is not None
        self.root = api_root(settings.base_url)
        self.where = host_of(self.root)
        self.url = f"{self.root}/v1/chat/completions"
        self.usage: dict[str, Any] | None = None

    @classmethod
    def probe(cls, base_url: str, key: str) -> Probe:
        """The key's own record (``GET /v1/key``): free, and it needs a valid key."""
        root = api_root(base_url)
        return Probe(f"{root}/v1/key", key, host_of(root), {"Authorization": f"Bearer {key}"})

    @classmethod
    def judge(cls, response: httpx.Response, probe: Probe, settings: BackendSettings) -> Verdict:
        """A key record means ready (with the credit left, when the key has a limit); an
        error object says what is wrong. The record's label is never shown: it quotes the key."""
        if is_path_not_found(response):
            wrong = path_not_found(response.request, api_root(settings.base_url or ""), probe.where)
            return Verdict(FAILED, wrong.message)
        body = parse_json(response)
        if not isinstance(body, dict):
            return non_json_verdict(response, probe, settings)
        status = response.status_code
        error = body.get("error")
        if error:
            message = probe.quote(
                (error.get("message") or "no message") if isinstance(error, dict) else error
            )
            if status in (401, 403):
                return Verdict(
                    KEY_REJECTED,
                    f"{probe.where} rejected the key (HTTP {status}: {message}); "
                    f"{settings.key_advice()}",
                )
            return Verdict(FAILED, f"{probe.where} answered HTTP {status}: {message}")
        if status in (401, 403):
            return Verdict(
                KEY_REJECTED,
                f"{probe.where} rejected the key (HTTP {status}); {settings.key_advice()}",
            )
        data = body.get("data")
        if 200 <= status < 300 and isinstance(data, dict):
            left = data.get("limit_remaining")
            credit = ""
            if isinstance(left, int | float) and not isinstance(left, bool):
                credit = f", {left:g} credits left on this key"
            if data.get("is_free_tier") is True:
                credit += ", free tier"
            return Verdict(READY, f"{probe.where}, key accepted{credit}")
        return Verdict(
            FAILED,
            f"{probe.where} answered HTTP {status} with JSON that is not a key record; "
            f"check {settings.name}.base_url",
        )

    @classmethod
    def list_models(
        cls, base_url: str, key: str, ids: Sequence[str], get: ListingGet
    ) -> list[LiveModel]:
        """Google's image models on OpenRouter: ``GET /v1/models?output_modalities=image``
        (a public list; [P] the Models API's filter), kept to ``google/`` ids whose
        ``architecture.output_modalities`` has ``image``, in case a server ignores the filter."""
        url = f"{api_root(base_url)}/v1/models"
        body = get(f"{url}?output_modalities=image", {"Authorization": f"Bearer {key}"})
        models = body.get("data") if isinstance(body, dict) else None
        if not isinstance(models, list):
            raise not_a_listing(url)
        return [model for entry in models if (model := _google_image_model(entry)) is not None]

    def body(
        self, prepared: PreparedJob, images: list[str], earlier: History | None = None
    ) -> dict[str, Any]:
        """The JSON body of one request: the thread's earlier turns (``earlier``) if any, then
        the user message: the prompt first (as OpenRouter advises), then each image as a URL
        (a ``data:`` URI)."""
        options = prepared.job.options
        messages = [*(earlier.messages if earlier else []), user_message(options.prompt, images)]
        body: dict[str, Any] = {
            "model": prepared.model,
            "messages": messages,
            "modalities": ["image", "text"],
        }
        config: dict[str, str] = {}
        # Without a ratio the model follows the first input image, which is what auto means.
        if options.ratio != "auto":
            config["aspect_ratio"] = options.ratio
        if options.size:
            config["image_size"] = SIZE_NAMES.get(options.size, options.size)
        if config:
            body["image_config"] = config
        if options.dials.seed is not None:
            body["seed"] = options.dials.seed  # [P] a chat completions parameter
        return body

    def plan(self, prepared: PreparedJob) -> list[PlannedRequest]:
        """One request per image asked for; each image's data URI is piped in by the shell
        (a continued job's earlier turns too: their inputs, and their results as saved)."""
        data_uris: list[tuple[str, str]] = []

        def piped(location: str) -> str:
            placeholder = f"@nanoedit-image-{len(data_uris) + 1}@"
            data_uris.append((placeholder, location))
            return placeholder

        job = prepared.job
        earlier = None
        sources = list(job.images)
        if job.thread is not None and carries_thread(job, self.name):
            # From the thread's records, as a dry run reads no image: the same messages.
            earlier = history(
                [
                    SentTurn(
                        turn,
                        tuple(piped(source.location) for source in turn.inputs),
                        piped(str(turn.image)),
                    )
                    for turn in job.thread.turns
                ]
            )
            # The first image is the last turn's result, already in the history.
            sources = [source for source in sources if source != job.images[0]]
        images = [piped(source.location) for source in sources]
        request = PlannedRequest(
            "POST",
            self.url,
            {"Authorization": "Bearer {key}"},
            json=self.body(prepared, images, earlier),
            data_uris=tuple(data_uris),
            note=earlier.note() if earlier is not None else "",
        )
        return [request] * job.options.count

    def run(self, prepared: PreparedJob, progress: Progress) -> Answer:
        """Send one request per image asked for. A failure after some images were made
        returns those with it: they are paid for."""
        earlier = None
        uploads = prepared.uploads
        # The history is read when the thread is this backend's to carry (carries_thread).
        if prepared.job.thread is not None and prepared.history:
            earlier = history(
                [
                    SentTurn(turn.turn, tuple(map(data_uri, turn.inputs)), data_uri(turn.image))
                    for turn in prepared.history
                ]
            )
            uploads = prepared.added_uploads()
            if earlier.note():
                self.http.notify(earlier.note())
        body = self.body(prepared, [data_uri(upload) for upload in uploads], earlier)
        sends_images = bool(uploads) or earlier is not None
        count = prepared.job.options.count
        results: list[ResultImage] = []
        texts: list[str] = []
        exchanges: list[Exchange] = []
        for number in range(1, count + 1):
            of = f", image {number} of {count}" if count > 1 else ""
            try:
                got = self._request(body, sends_images, of, progress)
            except NanoeditError as exc:
                if not results:
                    raise
                return Answer(results, "\n".join(texts), error=exc, usage=self.usage,
                              exchanges=tuple(exchanges))  # fmt: skip
            # Each answer, for a later turn to send back: its images are results N… of the job.
            numbers = range(len(results) + 1, len(results) + len(got.images) + 1)
            exchanges.append(exchange_of(got.message, numbers))
            results += got.images
            if got.text:
                texts.append(got.text)
        return Answer(results, "\n".join(texts), usage=self.usage, exchanges=tuple(exchanges))

    def _request(self, body: dict[str, Any], uploads: bool, of: str, progress: Progress) -> Parsed:
        from nanoedit.net.client import with_upload_progress

        headers = {"Authorization": f"Bearer {self.settings.key()}"}
        request = self.http.client.build_request("POST", self.url, headers=headers, json=body)
        if uploads:
            # Inputs travel inside the body, which can be many megabytes: show it going out.
            def uploaded(done: int, total: int) -> None:
                if done >= total:
                    progress(f"waiting for the model{of}")
                else:
                    progress(f"uploading{of}", done, total)

            progress(f"uploading{of}", 0, int(request.headers.get("content-length", "0") or 0))
            request = with_upload_progress(request, uploaded)
        else:
            progress(f"waiting for the model{of}")
        response, streamed = self.http.send_json(
            request, where=self.where, what="the chat completion", paid=True,
            permanent=is_permanent, keys=self.base64_keys)  # fmt: skip
        if is_path_not_found(response):
            raise path_not_found(request, self.root, self.where)
        # Summed over the job's requests; OpenRouter's includes what it charged (``cost``).
        self.usage = add_usage(self.usage, reported_usage(response))
        return parse_answer(response, self.where, self.settings, streamed)


def data_uri(image: InputImage) -> str:
    """An image as a ``data:`` URI of its exact bytes."""
    return f"data:{image.mime};base64,{encode_base64(image.data)}"


def is_permanent(response: httpx.Response) -> bool:
    """A retryable status whose typed error says no retry can fix it."""
    response.read()
    body = parse_json(response) if looks_like_json(response) else None
    error = body.get("error") if isinstance(body, dict) else None
    metadata = error.get("metadata") if isinstance(error, dict) else None
    return isinstance(metadata, dict) and metadata.get("error_type") in PERMANENT_TYPES


def parse_answer(
    response: httpx.Response,
    where: str,
    settings: BackendSettings,
    streamed: Streamed | None = None,
) -> Parsed:
    """The images, text and message of one answer, or the error it carries (in any HTTP
    status: an error that comes once the model has started arrives with HTTP 200).
    ``streamed`` holds the images already streamed to files out of their ``data:`` URLs."""
    status = response.status_code
    if status in (401, 403) and not looks_like_json(response):
        raise auth_error(settings, where, f"HTTP {status}")
    body = read_json(response, where) if response.content.strip() else None
    if isinstance(body, dict) and body.get("error"):
        raise _error_from_object(body["error"], status, where, settings)
    if status in (401, 403):
        raise auth_error(settings, where, f"HTTP {status}")
    if status >= 400 or body is None:
        raise ApiError(f"{where} answered HTTP {status} with no error details; try again later")
    choices = body.get("choices") if isinstance(body, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict):
        raise ApiError(
            f"{where} answered HTTP {status} with no choices, so no image was made; try again"
        )
    if choice.get("error"):
        raise _error_from_object(choice["error"], status, where, settings, started=True)
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    content = message.get("content")
    text = content.strip() if isinstance(content, str) else ""
    listed = message.get("images")
    made = [
        item
        for item in (listed if isinstance(listed, list) else [])
        if isinstance(item, dict)
        and isinstance(item.get("image_url"), dict)
        and isinstance(item["image_url"].get("url"), str)
        and item["image_url"]["url"].strip()
    ]
    images = [result_from_url(item["image_url"]["url"].strip(), where, streamed) for item in made]
    if images:
        return Parsed(images, text, {**message, "images": made})
    if isinstance(listed, list) and listed:
        raise ApiError(
            f"{where} answered HTTP 200 with an empty image URL, so no image was made; the "
            "prompt may still have been charged, try again"
        )
    raise _no_image(choice, message, text, where)


def _no_image(
    choice: dict[str, Any], message: dict[str, Any], text: str, where: str
) -> NanoeditError:
    """Why an answer has no image: a block, a refusal in words, or nothing said."""
    finish = str(choice.get("finish_reason") or "")
    native = str(choice.get("native_finish_reason") or "")
    refusal = message.get("refusal")
    said = f": {clip(text)!r}" if text else ""
    if finish == "content_filter" or native.upper() in BLOCKED_REASONS:
        reason = native or finish
        return RefusedError(
            f"{where} answered without an image: the provider's safety filter blocked it "
            f"({reason}){said}; rephrase the prompt or change the image"
        )
    if isinstance(refusal, str) and refusal.strip():
        return RefusedError(
            f"{where} answered with a refusal and no image: {clip(refusal.strip())!r}; "
            "rephrase the prompt or change the image"
        )
    if text:
        return RefusedError(
            f"{where} answered with text but no image{said}; the model declined or only "
            "described the result, rephrase the prompt"
        )
    reason = f" (finish reason {native or finish})" if native or finish else ""
    return ApiError(
        f"{where} answered HTTP 200 with no image{reason}; the prompt may still have been "
        "charged, try again"
    )


def _error_from_object(
    error: Any, status: int, where: str, settings: BackendSettings, *, started: bool = False
) -> NanoeditError:
    """The error an ``{"error": {code, message, metadata}}`` object stands for."""
    if not isinstance(error, dict):
        return ApiError(f"{where} answered HTTP {status} with an error: {clip(str(error))}")
    message = clip(str(error.get("message") or "no message"))
    code = error.get("code")
    number = code if isinstance(code, int) and not isinstance(code, bool) else status
    if number == 400 and "not a valid model" in message.lower():
        # OpenRouter's answer for an id it does not list: "X is not a valid model ID".
        return ModelNotServed(where, message)
    metadata = error.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    error_type = str(metadata.get("error_type") or "")
    upstream = _upstream(metadata)
    if upstream:
        provider = metadata.get("provider_name")
        message = f"{message} ({provider}: {upstream})" if provider else f"{message} ({upstream})"
        if number == 400 and "thought" in upstream.lower() and "signature" in upstream.lower():
            return ApiError(
                f"{where} answered HTTP {status}: {message}; the chat history sent lacks the "
                "reasoning details (Gemini's thought signatures) the model gave with an "
                "earlier image of the thread, or they were changed since: continue from a turn "
                "made by this backend, or edit the image without --continue"
            )
    if number == 401 or error_type == "authentication":
        return auth_error(settings, where, message)
    if number == 402 or error_type == "payment_required":
        return ConfigError(
            f"{where} refused the request: the OpenRouter account or key has no credits left "
            f"({message}); add credits at {CREDITS_URL} or raise the key's limit at "
            f"{KEYS_URL}, then run again"
        )
    reasons = metadata.get("reasons")
    moderated = bool(reasons) or "flagged_input" in metadata or "patterns" in metadata
    if moderated or error_type in REFUSAL_TYPES:
        why = ""
        if isinstance(reasons, list) and reasons:
            why = f" (flagged for {', '.join(clip(str(reason), 60) for reason in reasons)})"
        return RefusedError(
            f"{where} refused the request{why}: {message}; rephrase the prompt or change the image"
        )
    if number == 403:
        return ConfigError(
            f"{where} refused the request (HTTP 403: {message}); the key may not be allowed "
            f"this model, check its settings at {KEYS_URL}"
        )
    detail = f" [{error_type}]" if error_type else ""
    shown = f"HTTP {status}" if number == status else f"HTTP {status}, error {number}"
    if started or status == 200:
        return ApiError(
            f"{where} answered {shown}: {message}{detail}; the generation failed after it "
            "started (the prompt may still be charged), try again"
        )
    hint = ""
    if number == 429:
        hint = "; OpenRouter is rate limiting requests, wait a little and try again"
    elif number in (400, 404):
        hint = "; check --model, --ratio and --size for this model"
    elif number >= 500:
        hint = "; the model or its provider is failing, try again later"
    return ApiError(f"{where} answered {shown}: {message}{detail}{hint}")


def _upstream(metadata: dict[str, Any]) -> str:
    """What the provider said, when OpenRouter passed its error on in ``metadata.raw``
    (Google's error JSON, maybe after OpenRouter's advice): its message, clipped; ""
    when there is none."""
    raw = metadata.get("raw")
    if not isinstance(raw, str) or not raw.strip():
        return ""
    said = raw.rpartition(UPSTREAM_MARK)[2]
    try:
        body = json.loads(said)
    except ValueError:
        return clip(raw, 240)
    error = body.get("error") if isinstance(body, dict) else None
    found = error.get("message") if isinstance(error, dict) else None
    return clip(found, 240) if isinstance(found, str) and found.strip() else clip(raw, 240)
