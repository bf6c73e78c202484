"""The Gemini API's models: ``models.get`` and the model list, paged with ``pageSize`` and
``pageToken``, with today's image models (after any lineup fault) between the text models, the
embedding model and Imagen that Google lists beside them.
"""

from __future__ import annotations

import base64
import binascii

from nanoedit.sandbox.catalog import GEMINI_MODELS, Family, Model
from nanoedit.sandbox.gemini_errors import GoogleError, not_found
from nanoedit.sandbox.prompts import INPUT_TOKEN_LIMITS
from nanoedit.sandbox.runtime import Call, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

# The model list's pages: Google's default and largest page size; and the most the sandbox
# answers on one page, fewer than asked as Google's list may ("the service may return fewer
# models"), so that a client's paging is exercised.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
SANDBOX_PAGE = 5
# The model the fault ``added`` lists (Nano Banana 3), and the one ``dropped`` drops.
ADDED_MODELS: dict[str, Model] = {
    "gemini-3.5-flash-image": Model("gemini-3.5-flash-image", Family.FLASH_21)
}
DROPPED_MODEL = "gemini-3.1-flash-image"
# How models.get describes a model whose family's description is not its own.
MODEL_NAMES: dict[str, dict[str, object]] = {
    "gemini-3.5-flash-image": {
        "version": "3.5", "displayName": "Nano Banana 3", "description": "Gemini 3.5 Flash Image"
    },
}  # fmt: skip
_CHAT_METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
# Models Google lists beside the image ones, so that a client's filter is tested: two text
# models, an embedding model, and Imagen, which predicts rather than generating content.
LISTED_BEFORE: tuple[dict[str, object], ...] = (
    {
        "name": "models/gemini-3-pro", "version": "3.0", "displayName": "Gemini 3 Pro",
        "description": "Gemini 3 Pro", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
        "supportedGenerationMethods": _CHAT_METHODS, "temperature": 1, "topP": 0.95,
        "topK": 64, "maxTemperature": 2, "thinking": True,
    },
    {
        "name": "models/gemini-3-flash", "version": "3.0", "displayName": "Gemini 3 Flash",
        "description": "Gemini 3 Flash", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
        "supportedGenerationMethods": _CHAT_METHODS, "temperature": 1, "topP": 0.95,
        "topK": 64, "maxTemperature": 2, "thinking": True,
    },
)  # fmt: skip
LISTED_AFTER: tuple[dict[str, object], ...] = (
    {
        "name": "models/gemini-embedding-001", "version": "001",
        "displayName": "Gemini Embedding 001",
        "description": "Obtain a distributed representation of a text.",
        "inputTokenLimit": 2048, "outputTokenLimit": 1,
        "supportedGenerationMethods": [
            "embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"
        ],
    },
    {
        "name": "models/imagen-4.0-generate-001", "version": "001", "displayName": "Imagen 4",
        "description": "Vertex served Imagen 4.0 model", "inputTokenLimit": 480,
        "outputTokenLimit": 8192, "supportedGenerationMethods": ["predict"],
    },
)  # fmt: skip

# What ``models.get`` tells of each model (Google's published limits; version as it reports).
MODEL_INFO: dict[Family, dict[str, object]] = {
    Family.FLASH: {
        "version": "2.0",
        "displayName": "Nano Banana",
        "description": "Gemini 2.5 Flash Image",
        "inputTokenLimit": INPUT_TOKEN_LIMITS[Family.FLASH],
        "outputTokenLimit": 32768,
    },
    Family.PRO: {
        "version": "3.0",
        "displayName": "Nano Banana Pro",
        "description": "Gemini 3 Pro Image",
        "inputTokenLimit": INPUT_TOKEN_LIMITS[Family.PRO],
        "outputTokenLimit": 32768,
    },
    Family.FLASH_3: {
        "version": "3.1",
        "displayName": "Nano Banana 2",
        "description": "Gemini 3.1 Flash Image",
        "inputTokenLimit": INPUT_TOKEN_LIMITS[Family.FLASH_3],
        "outputTokenLimit": 32768,
    },
    Family.FLASH_21: {
        "version": "2.1",
        "displayName": "Nano Banana 2.1",
        "description": "Gemini Nano Banana 2.1",
        "inputTokenLimit": 131072,
        "outputTokenLimit": 32768,
    },
    Family.LITE: {
        "version": "3.1",
        "displayName": "Nano Banana 2 Lite",
        "description": "Gemini 3.1 Flash-Lite Image",
        "inputTokenLimit": 131072,
        "outputTokenLimit": 32768,
    },
}


class ModelList:
    """The models Google lists, as ``api`` (the emulated API's name, whose lineup faults a
    listing catches up with) answers for them."""

    def __init__(self, runtime: Runtime, api: str) -> None:
        self.runtime = runtime
        self.api = api

    def listed(self) -> dict[str, Model]:
        """The image models Google lists now, after any lineup change."""
        return self.runtime.lineup.current(GEMINI_MODELS, ADDED_MODELS, DROPPED_MODEL)

    def get(self, model_id: str, version: str) -> SandboxResponse:
        """``models.get``: one model Google lists now; GoogleError for any other id."""
        model = self.listed().get(model_id)
        if model is None:
            raise not_found(model_id, version, "get")
        return json_response(200, model_object(model))

    def page(self, call: Call) -> SandboxResponse:
        """One page of the model list: ``pageSize`` models (50 unless asked, at most 1000, and
        at most ``SANDBOX_PAGE`` here) from where ``pageToken`` left off, and the token of the
        next page while there is one."""
        self.runtime.lineup.catch_up(self.runtime.faults, self.api)
        listed = [
            *LISTED_BEFORE,
            *(model_object(model) for model in self.listed().values()),
            *LISTED_AFTER,
        ]
        query = call.received.query
        size = page_size(query.get("pageSize", query.get("page_size")))
        start = page_start(query.get("pageToken", query.get("page_token")), len(listed))
        end = start + min(size, SANDBOX_PAGE)
        body: dict[str, object] = {"models": listed[start:end]}
        if end < len(listed):
            body["nextPageToken"] = page_token(end)
        return json_response(200, body)


def page_size(value: str | None) -> int:
    """The page size asked for: Google's default when absent or not above 0, at most 1000."""
    if value is None:
        return PAGE_SIZE
    try:
        size = int(value)
    except ValueError:
        raise GoogleError(400, f"Invalid value at 'page_size' (TYPE_INT32), {value!r}") from None
    return PAGE_SIZE if size <= 0 else min(size, MAX_PAGE_SIZE)


def page_token(start: int) -> str:
    """An opaque token for the page that starts at ``start``."""
    return base64.urlsafe_b64encode(f"models:{start}".encode()).decode()


def page_start(token: str | None, total: int) -> int:
    """Where the page a token names starts; a token the list never gave is refused."""
    if not token:
        return 0
    try:
        kind, _, start = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind == "models" and start.isdigit() and int(start) <= total:
            return int(start)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise GoogleError(400, "Invalid page token.")


def model_object(model: Model) -> dict[str, object]:
    """What ``models.get`` and ``models.list`` tell of a model."""
    info = MODEL_INFO[model.family] | MODEL_NAMES.get(model.id, {})
    payload: dict[str, object] = {
        "name": f"models/{model.id}",
        "version": info["version"],
        "displayName": info["displayName"],
        "description": info["description"],
        "inputTokenLimit": info["inputTokenLimit"],
        "outputTokenLimit": info["outputTokenLimit"],
        "supportedGenerationMethods": ["generateContent", "countTokens", "batchGenerateContent"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
    }
    if model.family is not Family.FLASH:
        payload["thinking"] = True
    return payload
