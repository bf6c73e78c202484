"""Google's words for what went wrong, as the Gemini API gives them on every route (the
``generateContent`` request, the Interactions API, the Files API): its error object (a key it
rejects, a 403 that is not about the key, a model it does not serve, a 429's ``RetryInfo``),
and the reasons a model gives for making no image (a refusal of the content, exit 8, or no
image for no reason of the content, exit 5)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from nanoedit.backends.base import auth_error, clip, parse_json, read_json
from nanoedit.catalog.models import shipped_catalog
from nanoedit.errors import ApiError, ModelNotServed, NanoeditError, RefusedError

if TYPE_CHECKING:
    import httpx

    from nanoedit.settings.values import BackendSettings

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
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def no_image(
    where: str, model: str, reason: str, message: object, text: str, field: str = "finishReason"
) -> ApiError:
    """The error of an answer whose ``field`` (generateContent's finishReason, the reason an
    interaction's error gives) says no image came for no reason of the content (NO_IMAGE,
    IMAGE_OTHER): quoted in Google's words, the model named, since NO_IMAGE is what a model
    that does not draw answers."""
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
        f'{where} made no image with {model} ({field} {reason}: "{meaning}", in '
        f"Google's words){extra}{words}; that is not a refusal of the content: {advice}"
    ).coded(reason)


def refusal(what: str, text: str, code: str | None = None) -> RefusedError:
    """A refusal of the content: what Google said (``what``), the model's words beside it,
    and what to do; ``code`` is Google's reason (a finishReason such as IMAGE_SAFETY)."""
    words = f"; the model said: {clip(text)!r}" if text else ""
    return RefusedError(f"{what}{words}; rephrase the prompt or change the image").coded(code)


def refused(what: str, text: str, code: str | None = None) -> NoReturn:
    """Raise :func:`refusal`."""
    raise refusal(what, text, code)


def is_key_error(status: int, error: dict[str, Any]) -> bool:
    """Whether Google's error object says the key is bad: a 401, or a reason that names the
    key (a 403 alone does not: see ``KEY_REASONS``)."""
    return status == 401 or bool(reasons_of(error) & KEY_REASONS)


def denial(error: dict[str, Any], quote: Callable[[str, int], str]) -> str:
    """A 403 that is not about the key, as Google said it (its message, status and reasons,
    each passed through ``quote``), and what to do about it."""
    message = quote(str(error.get("message") or "no message"), 300)
    reasons = sorted(reasons_of(error))
    tags = [quote(tag, 60) for tag in (str(error.get("status") or ""), *reasons) if tag]
    shown = f"{message} [{', '.join(tags)}]" if tags else message
    if not reasons:
        return f"{shown}; {DENIED_HINTS['']}"
    hint = next((DENIED_HINTS[reason] for reason in reasons if reason in DENIED_HINTS), None)
    return f"{shown}; {hint or OTHER_DENIAL}"


def reasons_of(error: dict[str, Any]) -> set[str]:
    """The ``reason`` of every detail of Google's error object (its ``ErrorInfo``)."""
    details = error.get("details")
    items = details if isinstance(details, list) else []
    return {str(item["reason"]) for item in items if isinstance(item, dict) and item.get("reason")}


def error_of(
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
    state = str(error.get("status") or "")
    shown = _shown(error)
    # Google's status (INVALID_ARGUMENT, RESOURCE_EXHAUSTED…) is the provider's code.
    if is_key_error(status, error):
        return auth_error(settings, where, shown).coded(state)
    if model_call and status == 404 and state in ("NOT_FOUND", ""):
        return ModelNotServed(where, shown).coded(state)
    if status == 403:
        return ApiError(f"{where} answered HTTP 403: {denial(error, clip)}").coded(state)
    hints = {
        429: "the quota or rate limit is used up; wait, or check the project's quota",
        404: f"check the model id (--model or {settings.name}.model)",
        503: "the model is overloaded; try again later",
    }
    hint = hints.get(status, "")
    if status == 400 and state == "FAILED_PRECONDITION":
        hint = "the project needs billing enabled for this model, or it is not offered here"
    suffix = f"; {hint}" if hint else ""
    return ApiError(f"{where} answered HTTP {status}: {shown}{suffix}").coded(state)


def error_line(response: httpx.Response, *, with_code: bool = False) -> str:
    """Google's message and status from an error answer, one line (after ``HTTP N: ``
    ``with_code``); ``HTTP N`` alone when the answer holds no error object."""
    body = parse_json(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"HTTP {response.status_code}"
    return f"HTTP {response.status_code}: {_shown(error)}" if with_code else _shown(error)


def _shown(error: dict[str, Any]) -> str:
    """Google's error object as a message: its message and, in brackets, its status."""
    message = clip(str(error.get("message") or "no message"))
    state = str(error.get("status") or "")
    return f"{message} [{state}]" if state else message


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
            match = DURATION.match(str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None
