"""The multipart backend: OpenAI-compatible ``/v1/images/edits`` and ``/v1/images/generations``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

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
    reported_usage,
    result_from_base64,
    result_from_url,
)
from nanoedit.catalog.models import ModelLimits
from nanoedit.errors import ApiError, NanoeditError, RefusedError, UsageError
from nanoedit.jobs import Progress
from nanoedit.settings.checks import check_choice
from nanoedit.settings.keys import KeySpec
from nanoedit.urls import host_of

if TYPE_CHECKING:
    import httpx

    from nanoedit.b64stream import Streamed
    from nanoedit.catalog.models import Catalog
    from nanoedit.jobs import Options
    from nanoedit.net.http import JobHttp
    from nanoedit.settings.values import BackendSettings

# What each error code of the new-api/one-api gateways means for the user.
ERROR_HINTS: dict[str, str] = {
    "model_not_found": "this server does not offer that model; choose another with --model",
    "insufficient_user_quota": "the account's quota is used up; top it up or use another key",
    "prompt_blocked": "the provider's safety filter blocked the prompt; rephrase it",
    "sensitive_words_detected": "the provider's filter flagged words in the prompt; rephrase it",
    "content_policy_violation": "the provider's content policy refused the request; rephrase it",
}
# Codes that mean the content was refused, not that anything failed (exit 8, never retried).
REFUSAL_CODES = frozenset(
    {"prompt_blocked", "sensitive_words_detected", "content_policy_violation"}
)
AUTH_CODES = frozenset({"invalid_api_key", "invalid_token", "unauthorized"})

# OpenAI's own GPT image models (``gpt-image-*``, on api.openai.com or a relay that passes
# them through): they answer base64 always, and turn down ``response_format`` (dall-e-2's) and
# every field they do not know (a gateway's ``aspect_ratio``, ``image_size``) with 400
# unknown_parameter. Their one ``size`` field takes these, by the ratio nanoedit asks for;
# ``--ratio auto`` leaves it out, and the model picks one of them.
GPT_IMAGE_PREFIX = "gpt-image-"
GPT_IMAGE_SIZES: dict[str, str] = {"1:1": "1024x1024", "3:2": "1536x1024", "2:3": "1024x1536"}
# Each of those is about a megapixel: the 1K tier, and no other.
GPT_IMAGE_LIMITS = ModelLimits(16, ("1K",), tuple(GPT_IMAGE_SIZES))
# A list of images goes as image[], as OpenAI's own client sends it.
GPT_IMAGE_FIELD = "image[]"


def is_gpt_image(model: str) -> bool:
    """Whether ``model`` is one of OpenAI's own GPT image models."""
    return model.startswith(GPT_IMAGE_PREFIX)


def api_root(base_url: str) -> str:
    """The server root, whether the base URL was given as ``https://host`` or ``…/v1``."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


class OpenAIBackend(BackendBase):
    """Sends jobs as OpenAI-style image requests with a ``Bearer`` key."""

    name = "openai"
    # data[].b64_json, or a data: URI in data[].url.
    base64_keys = frozenset({"b64_json", "url"})
    title = "OpenAI-compatible multipart gateway"
    takes = Takes.FILES
    lists_all = True
    # A gateway names its models as it likes: an id the catalog does not list for it passes.
    free_ids = True
    extra_keys: ClassVar[dict[str, KeySpec]] = {
        "image_field": KeySpec(
            "NANOEDIT_OPENAI_IMAGE_FIELD", "multipart field name for images: image or image[]",
            "image", check=check_choice(("image", "image[]")),
        ),
    }  # fmt: skip

    def __init__(
        self, settings: BackendSettings, http: JobHttp, catalog: Catalog | None = None
    ) -> None:
        super().__init__(settings, http, catalog)
        assert settings.base_url is not None
        self.root = api_root(settings.base_url)
        self.where = host_of(self.root)
        self.image_field = settings.option("image_field") or "image"

    @classmethod
    def limits(cls, model: str) -> ModelLimits | None:
        """OpenAI's own GPT image models' limits; a gateway's models are its own call."""
        return GPT_IMAGE_LIMITS if is_gpt_image(model) else None

    @classmethod
    def check_options(cls, model: str, options: Options) -> None:
        """Refuse a ratio or size a GPT image model cannot render, saying what it can."""
        if not is_gpt_image(model):
            return
        sizes = [f"{size} (--ratio {ratio})" for ratio, size in GPT_IMAGE_SIZES.items()]
        can = (
            f"{model} renders {', '.join(sizes[:-1])} or {sizes[-1]}, or picks one of them "
            f"itself (--ratio auto), all {GPT_IMAGE_LIMITS.sizes[0]}"
        )
        if options.ratio != "auto" and options.ratio not in GPT_IMAGE_SIZES:
            raise UsageError(
                f"{can}; --ratio {options.ratio} cannot be honoured: choose one of those ratios"
            )
        if options.size is not None and options.size not in GPT_IMAGE_LIMITS.sizes:
            raise UsageError(
                f"{can}; size {options.size} cannot be honoured: drop it (from --size, "
                "NANOEDIT_SIZE or default.size)"
            )

    @classmethod
    def native_transparency(cls, model: str) -> bool:
        """GPT image models take ``background: transparent`` [P OpenAI's image guide]."""
        return is_gpt_image(model)

    @classmethod
    def probe(cls, base_url: str, key: str) -> Probe:
        """The gateway's model list."""
        root = api_root(base_url)
        return Probe(f"{root}/v1/models", key, host_of(root), {"Authorization": f"Bearer {key}"})

    @classmethod
    def judge(cls, response: httpx.Response, probe: Probe, settings: BackendSettings) -> Verdict:
        """A model list means ready; an error object says what is wrong."""
        body = parse_json(response)
        if not isinstance(body, dict):
            return non_json_verdict(response, probe, settings)
        status = response.status_code
        error = body.get("error")
        if error:
            message = probe.quote(
                (error.get("message") or "no message") if isinstance(error, dict) else error
            )
            code = (
                probe.quote(error.get("code") or error.get("type") or "", 60)
                if isinstance(error, dict)
                else ""
            )
            shown = f"{message} [{code}]" if code else message
            if status in (401, 403) or code in AUTH_CODES:
                return Verdict(
                    KEY_REJECTED,
                    f"{probe.where} rejected the key (HTTP {status}: {shown}); "
                    f"{settings.key_advice()}",
                )
            return Verdict(FAILED, f"{probe.where} answered HTTP {status}: {shown}")
        if status in (401, 403):
            return Verdict(
                KEY_REJECTED,
                f"{probe.where} rejected the key (HTTP {status}); {settings.key_advice()}",
            )
        models = body.get("data")
        if 200 <= status < 300 and isinstance(models, list):
            return Verdict(READY, f"{probe.where}, {len(models)} models")
        return Verdict(
            FAILED,
            f"{probe.where} answered HTTP {status} with JSON that is not a model list; "
            f"check {settings.name}.base_url",
        )

    @classmethod
    def list_models(
        cls, base_url: str, key: str, ids: Sequence[str], get: ListingGet
    ) -> list[LiveModel]:
        """Every model the gateway lists (``GET /v1/models``, OpenAI's list shape): its names
        are its own, so nothing tells an image model from another."""
        url = f"{api_root(base_url)}/v1/models"
        body = get(url, {"Authorization": f"Bearer {key}"})
        models = body.get("data") if isinstance(body, dict) else None
        if not isinstance(models, list):
            raise not_a_listing(url)
        return [
            LiveModel(model["id"])
            for model in models
            if isinstance(model, dict) and isinstance(model.get("id"), str)
        ]

    def fields(self, prepared: PreparedJob) -> dict[str, str]:
        """The text fields of a request, in the order they are sent."""
        options = prepared.job.options
        fields = {"model": prepared.model, "prompt": options.prompt, "n": str(options.count)}
        if is_gpt_image(prepared.model):
            # OpenAI's own fields only: anything else is refused with a 400.
            if options.ratio != "auto":
                fields["size"] = GPT_IMAGE_SIZES[options.ratio]
            if options.transparent == "native":
                # [P] OpenAI's image guide: a transparent background needs PNG or WebP
                # output; PNG unless --format asks for WebP (--format jpeg is refused).
                fields["background"] = "transparent"
                fields["output_format"] = "png"
            dials = options.dials
            # [P] OpenAI's Images API: quality, input_fidelity (edits), output_format.
            if dials.quality is not None:
                fields["quality"] = dials.quality
            if dials.input_fidelity is not None:
                fields["input_fidelity"] = dials.input_fidelity
            if dials.format is not None:
                fields["output_format"] = dials.format
            return fields
        fields["response_format"] = options.response_format
        if options.ratio != "auto":
            fields["aspect_ratio"] = options.ratio
        offer = self.offer(prepared.model)
        # Seed 000: image_size is for nano-banana-2 only; the catalog says which model has it.
        if options.size and (offer is None or offer.size_field):
            fields["image_size"] = options.size
        return fields

    def _image_field(self, prepared: PreparedJob) -> str:
        return GPT_IMAGE_FIELD if is_gpt_image(prepared.model) else self.image_field

    def _url(self, prepared: PreparedJob) -> str:
        path = "edits" if prepared.job.kind == "edit" else "generations"
        return f"{self.root}/v1/images/{path}"

    def _json_body(self, prepared: PreparedJob) -> dict[str, Any]:
        body: dict[str, Any] = dict(self.fields(prepared))
        body["n"] = prepared.job.options.count
        return body

    def plan(self, prepared: PreparedJob) -> list[PlannedRequest]:
        """The one request of the job, with the key left for the caller to mask."""
        headers = {"Authorization": "Bearer {key}"}
        if prepared.job.kind != "edit":
            return [
                PlannedRequest("POST", self._url(prepared), headers, json=self._json_body(prepared))
            ]
        return [
            PlannedRequest(
                "POST",
                self._url(prepared),
                headers,
                fields=tuple(self.fields(prepared).items()),
                files=tuple(
                    (self._image_field(prepared), source.location, "")
                    for source in prepared.job.images
                )
                + self._planned_mask(prepared),
                note=self._mask_note(prepared),
            )
        ]

    def _sends_mask(self, prepared: PreparedJob) -> bool:
        """Whether the request carries ``mask``: a masked edit of a GPT image model, whose API
        takes one [P: OpenAI's images/edits reference]; a gateway's nano-banana has none, and
        gets the whole image (the answer is composited over it all the same)."""
        return prepared.job.mask is not None and is_gpt_image(prepared.model)

    def _planned_mask(self, prepared: PreparedJob) -> tuple[tuple[str, str, str], ...]:
        """The ``mask`` part as a dry run shows it: a file nanoedit makes when it sends the
        request (see :meth:`_mask_note`)."""
        return (("mask", PLANNED_MASK, ""),) if self._sends_mask(prepared) else ()

    def _mask_note(self, prepared: PreparedJob) -> str:
        if not self._sends_mask(prepared):
            return ""
        assert prepared.job.mask is not None
        return (
            f"{PLANNED_MASK} is made from {prepared.job.mask.label} when the request is sent: "
            "black, transparent where the model may edit, the image's size"
        )

    def run(self, prepared: PreparedJob, progress: Progress) -> Answer:
        """Send one edit (multipart) or generation (JSON) and parse the answer."""
        from nanoedit.net.client import with_upload_progress

        headers = {"Authorization": f"Bearer {self.settings.key()}"}
        client = self.http.client
        if prepared.job.kind == "edit":
            files = [
                (self._image_field(prepared), (image.filename, image.data, image.mime))
                for image in prepared.uploads
            ]
            if self._sends_mask(prepared):
                files.append(("mask", ("mask.png", gpt_image_mask(prepared), "image/png")))
            request = client.build_request(
                "POST",
                self._url(prepared),
                headers=headers,
                data=self.fields(prepared),
                files=files,
            )

            def uploaded(done: int, total: int) -> None:
                if done >= total:
                    progress("waiting for the model")  # a spinner and a clock, not a full bar
                else:
                    progress("uploading", done, total)

            progress("uploading", 0, int(request.headers.get("content-length", "0") or 0))
            request = with_upload_progress(request, uploaded)
        else:
            request = client.build_request(
                "POST", self._url(prepared), headers=headers, json=self._json_body(prepared)
            )
            progress("waiting for the model")
        what = "the edit request" if prepared.job.kind == "edit" else "the generation request"
        response, streamed = self.http.send_json(
            request,
            where=self.where,
            what=what,
            paid=True,
            permanent=is_permanent,
            keys=self.base64_keys,
        )
        prompt = prepared.job.options.prompt
        return Answer(
            parse_answer(response, self.where, prompt, self.settings, streamed),
            usage=reported_usage(response),
        )


# The name a dry run gives the mask OpenAI gets, which exists only when the request is sent.
PLANNED_MASK = "openai-mask.png"


def gpt_image_mask(prepared: PreparedJob) -> bytes:
    """The job's mask as OpenAI takes it, at the size of the first image as it is uploaded."""
    import io

    from PIL import Image

    from nanoedit.output.masking import openai_mask

    assert prepared.job.mask is not None
    first = prepared.uploads[0]
    with Image.open(io.BytesIO(first.data)) as image:
        size = image.size
    with Image.open(first.source.path) as image:  # the input as it is on disk: a local file
        original = image.size
    return openai_mask(prepared.job.mask, original, size, first.source.label)


def is_permanent(response: httpx.Response) -> bool:
    """A 5xx that says what is wrong in a way no retry fixes (an unknown model, no quota)."""
    response.read()
    if not looks_like_json(response):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and str(error.get("code")) in ERROR_HINTS


def parse_answer(
    response: httpx.Response,
    where: str,
    prompt: str,
    settings: BackendSettings,
    streamed: Streamed | None = None,
) -> list[ResultImage]:
    """Every image of an answer, or the error it carries (in any HTTP status).

    ``prompt`` tells an echoed ``revised_prompt`` (usual) from a text answer (a refusal);
    ``settings`` say where the key came from, should it be rejected; ``streamed`` holds the
    images already streamed to files, whose placeholders the answer's JSON has instead.
    """
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
    if not isinstance(body, dict):
        raise ApiError(f"{where} answered with JSON of an unexpected shape ({clip(str(body), 80)})")
    items = body.get("data")
    if not isinstance(items, list) or not items:
        state = "an empty" if isinstance(items, list) else "no"
        raise ApiError(
            f"{where} answered HTTP {status} with {state} data list, so no image was made; "
            "failed generations are not charged on this API, try again"
        )
    results: list[ResultImage] = []
    texts: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        b64 = item.get("b64_json")
        url = item.get("url")
        # Gateways send both keys with one of them empty: only a non-empty value counts.
        if isinstance(b64, str) and b64.strip():
            results.append(result_from_base64(b64, where, streamed))
        elif isinstance(url, str) and url.strip():
            results.append(result_from_url(url.strip(), where, streamed))
        else:
            text = item.get("revised_prompt")
            if isinstance(text, str) and text.strip() and text.strip() != prompt.strip():
                texts.append(text.strip())
    if results:
        return results
    if texts:
        raise RefusedError(
            f"{where} answered with text but no image: {clip(texts[0])!r}; "
            "the model declined or only described the result, rephrase the prompt"
        )
    raise ApiError(
        f"{where} answered HTTP {status} with an empty image URL, so no image was made; "
        "failed generations are not charged on this API, try again"
    )


def _error_from_object(
    error: Any, status: int, where: str, settings: BackendSettings
) -> NanoeditError:
    if not isinstance(error, dict):
        return ApiError(f"{where} answered HTTP {status} with an error: {clip(str(error))}")
    message = clip(str(error.get("message") or "no message"))
    code = str(error.get("code") or error.get("type") or "")
    if status in (401, 403) or code in AUTH_CODES:
        return auth_error(settings, where, message).coded(code)
    hint = ERROR_HINTS.get(code)
    if code in REFUSAL_CODES:
        return RefusedError(f"{where} refused the request: {message} [{code}]; {hint}").coded(code)
    if hint is None and status == 429:
        hint = "the server is rate limiting requests; wait a little and try again"
    detail = f" [{code}]" if code else ""
    suffix = f"; {hint}" if hint else ""
    return ApiError(f"{where} answered HTTP {status}: {message}{detail}{suffix}").coded(code)
