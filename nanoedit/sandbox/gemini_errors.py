"""Google's error answers, as the Gemini API (and any Google API behind the same front end)
gives them: the error object ``{"error": {"code", "message", "status", "details"}}``, its
front end's HTML pages, the details it sends beside a bad key, a disabled API or an exhausted
quota, and its answers to the sandbox's status faults.
"""

from __future__ import annotations

from collections.abc import Mapping

from nanoedit.sandbox.faults import status_answer
from nanoedit.sandbox.wire import SandboxResponse, json_response, text_response

RETRY_DELAY = "17s"
# Google's words for each status a fault plan can ask for. 408 and 502 come from its front
# end, as an HTML page.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
STATUS_MESSAGES = {
    429: (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. "
        "To monitor your current usage, head to: https://ai.dev/rate-limit. "
    ),
    500: (
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting"
    ),
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
FRONT_END_PAGES = {
    404: ("Not Found", "The requested URL <code>{path}</code> was not found on this server."),
    408: ("Request Timeout", "Your client has taken too long to issue its request."),
    502: (
        "Bad Gateway",
        "The server encountered a temporary error and could not complete your request."
        "<p>Please try again in 30 seconds.",
    ),
}
MISSING_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
INVALID_KEY = "API key not valid. Please pass a valid API key."
# The 403s that are not about the key: a model the project may not use, and an API not enabled
# for the project (Google's ErrorInfo names the reason and where to enable it).
NO_PERMISSION = "The caller does not have permission"
PROJECT = "123456789012"
ACTIVATION_URL = (
    "https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/"
    f"overview?project={PROJECT}"
)
SERVICE_DISABLED = (
    f"Generative Language API has not been used in project {PROJECT} before or it is disabled. "
    f"Enable it by visiting {ACTIVATION_URL} then retry. If you enabled this API recently, wait "
    "a few minutes for the action to propagate to our systems and retry."
)


class GoogleError(Exception):
    """A request Google turns down: an error object with its HTTP status (and its status
    name, when it is not the usual one for the code)."""

    def __init__(
        self,
        code: int,
        message: str,
        details: list[dict[str, object]] | None = None,
        status: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.status = status or STATUS_NAMES[code]

    def response(self, headers: Mapping[str, str] | None = None) -> SandboxResponse:
        """The error answer: ``details`` only when there are some, as Google sends it."""
        error: dict[str, object] = {
            "code": self.code,
            "message": self.message,
            "status": self.status,
        }
        if self.details:
            error["details"] = self.details
        return json_response(self.code, {"error": error}, headers)


def front_end_page(status: int, path: str) -> SandboxResponse:
    """The HTML page Google's front end answers with, for a URL it has no route for (404) or
    when it gives up (408, 502)."""
    reason, text = FRONT_END_PAGES[status]
    page = (
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
        f"  <title>Error {status} ({reason})!!1</title>\n"
        f"  <p><b>{status}.</b> <ins>That\u2019s an error.</ins>\n"
        f"  <p>{text.format(path=path)}  <ins>That\u2019s all we know.</ins>\n"
    )
    return text_response(status, page, "text/html; charset=UTF-8")


def not_found(model_id: str, version: str, method: str) -> GoogleError:
    """The 404 for a model id Google does not serve (``method``: ``get``, or the action)."""
    return GoogleError(
        404,
        f"models/{model_id} is not found for API version {version}, or is not supported for "
        f"{method}. Call ListModels to see the list of available models and their supported "
        "methods.",
    )


def key_invalid() -> GoogleError:
    """What Google answers a key it does not know: a bad argument (400), not a 401."""
    details: list[dict[str, object]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": INVALID_KEY,
        },
    ]
    return GoogleError(400, INVALID_KEY, details)


def fault_answer(fault: str, model_id: str | None, epoch: float) -> SandboxResponse:
    """Google's answer to an answer fault taken for a request; ``model_id`` is the model a
    ``generateContent`` request names (None: another request), which a 429's quota details
    name, and ``epoch`` the Unix time now."""
    if fault == "invalid-argument":
        return GoogleError(400, "Request contains an invalid argument.").response()
    if fault == "permission-denied":
        return GoogleError(403, NO_PERMISSION).response()
    if fault == "service-disabled":
        return GoogleError(403, SERVICE_DISABLED, service_disabled_details()).response()

    def status_error(status: int) -> SandboxResponse:
        if status in FRONT_END_PAGES:
            return front_end_page(status, "")
        details: list[dict[str, object]] | None = None
        if status == 429:
            details = quota_details(model_id)
        return GoogleError(status, STATUS_MESSAGES[status], details).response()

    response = status_answer(fault, status_error, epoch)
    if fault == "429":
        # Google gives the wait in the body (RetryInfo), with no Retry-After header.
        response.headers.pop("Retry-After", None)
    return response


def service_disabled_details() -> list[dict[str, object]]:
    """What Google says beside a 403 for an API the project has not enabled."""
    return [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "SERVICE_DISABLED",
            "domain": "googleapis.com",
            "metadata": {
                "consumer": f"projects/{PROJECT}",
                "service": "generativelanguage.googleapis.com",
                "activationUrl": ACTIVATION_URL,
                "serviceTitle": "Generative Language API",
                "containerInfo": PROJECT,
            },
        },
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": SERVICE_DISABLED,
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {"description": "Google developers console API activation", "url": ACTIVATION_URL}
            ],
        },
    ]


def quota_details(model_id: str | None) -> list[dict[str, object]]:
    """What Google says beside a 429: the quota the request ran out of (per model, when it
    names one), where to read about quotas, and how long to wait."""
    dimensions = {"location": "global"} | ({"model": model_id} if model_id else {})
    return [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_requests_per_model",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                    "quotaDimensions": dimensions,
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": RETRY_DELAY},
    ]
