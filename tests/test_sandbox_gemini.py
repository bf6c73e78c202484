"""The sandbox's emulation of Google's Gemini API, spoken to over real HTTP on loopback (and
once in memory).

It must answer as Google does (API-NOTES §3-4, API-NOTES-PROVIDERS §1 and §6): shapes,
statuses, messages, sizes per model, ratio and size, and the Files API's resumable upload.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import Direct as Served
from conftest import run_cli, shape

from nanoedit.sandbox import (
    FAULT_KINDS,
    SANDBOX_BASE_URL,
    Sandbox,
    SandboxTransport,
    sample_image,
)

KEY = "gemini-test-key"
CAT, _ = sample_image("cat.png")
DOG, _ = sample_image("dog.jpg")
HAT, _ = sample_image("hat.png")
# Google's lineup as of 2026-12: every model is a 3.x one that thinks and answers JPEG.
FLASH = "gemini-nano-banana-2.1"
PRO = "gemini-3-pro-image"
FLASH_3 = "gemini-3.1-flash-image"
LITE = "gemini-3.1-flash-lite-image"
# Shut down (2.5 on 2026-10-02, the previews on 2026-06-25): Google answers them as unknown ids.
SHUT_DOWN = (
    "gemini-2.5-flash-image",
    "gemini-3-pro-image-preview",
    "gemini-3.1-flash-image-preview",
)
RESPONSE_ID = re.compile(r"[A-Za-z0-9_-]{22}")
TROUBLESHOOTING = "https://developers.generativeai.google/guide/troubleshooting"
THOUGHT = "**Planning the picture**\n\nI'm working out how to show: "
REFUSAL = (
    "I can't create this image: the request may go against the content policy. "
    "Try describing it differently."
)
BLOCKED_IMAGE = (
    "Unable to show the generated image. The image was filtered out because it violated "
    "Google's Generative AI Prohibited Use policy. You will not be charged for blocked images. "
    "Try rephrasing the prompt. If you think this was a mistake, send feedback."
)
HOUR = 3600.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def serve(serve_direct: Callable[..., Served]) -> Callable[..., Served]:
    """Sandboxes taking KEY (each request names it itself, or not)."""
    return functools.partial(serve_direct, KEY)


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    return serve()


def inline(data: bytes = CAT, mime: str = "image/png") -> dict[str, Any]:
    return {"inlineData": {"mimeType": mime, "data": base64.b64encode(data).decode()}}


def generate(
    client: httpx.Client,
    model: str = FLASH,
    *,
    parts: list[Any] | None = None,
    config: dict[str, Any] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    version: str = "v1beta",
) -> httpx.Response:
    """A generateContent call: by default an edit of cat.png, "make it a watercolor"."""
    if body is None:
        body = {
            "contents": [
                {"role": "user", "parts": parts or [{"text": "make it a watercolor"}, inline()]}
            ]
        }
        if config is not None:
            body["generationConfig"] = config
    return client.post(
        f"/{version}/models/{model}:generateContent",
        headers={"x-goog-api-key": KEY} if headers is None else headers,
        json=body,
    )


def image_config(**fields: str) -> dict[str, Any]:
    return {"responseModalities": ["IMAGE"], "imageConfig": fields}


def parts_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    (candidate,) = response.json()["candidates"]
    parts: list[dict[str, Any]] = candidate["content"]["parts"]
    return parts


def final_image(response: httpx.Response) -> bytes:
    """The last image part that is not a thought, as a client is to pick it."""
    images = [p for p in parts_of(response) if "inlineData" in p and not p.get("thought")]
    return base64.b64decode(images[-1]["inlineData"]["data"])


def error(code: int, status: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        body["details"] = details
    return {"error": body}


# --- generateContent -------------------------------------------------------------------------


def test_an_edit_answers_googles_shape(served: Served) -> None:
    response = generate(served.client, config={"imageConfig": {"aspectRatio": "16:9"}})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert list(body) == ["candidates", "usageMetadata", "modelVersion", "responseId"]
    (candidate,) = body["candidates"]
    assert list(candidate) == ["content", "finishReason", "index"]
    assert (candidate["finishReason"], candidate["index"]) == ("STOP", 0)
    assert candidate["content"]["role"] == "model"
    thought, draft, text, image = candidate["content"]["parts"]
    assert thought == {"text": THOUGHT + "make it a watercolor", "thought": True}
    assert list(draft) == ["inlineData", "thought"] and draft["thought"] is True
    # No responseModalities: text and image, as Google's default is. The first part after the
    # thoughts is signed, and so is the image.
    assert list(text) == ["text", "thoughtSignature"]
    assert text["text"] == "Here is the edited image."
    assert len(base64.b64decode(text["thoughtSignature"], validate=True)) == 64
    assert list(image) == ["inlineData", "thoughtSignature"]
    assert image["inlineData"]["mimeType"] == "image/jpeg"
    assert shape(base64.b64decode(image["inlineData"]["data"])) == (1376, 768, "JPEG")
    # "make it a watercolor" is 5 tokens and the image 560; 7 for the text, 1120 for the image;
    # the thought text's 19 count in the total only.
    assert body["usageMetadata"] == {
        "promptTokenCount": 565,
        "candidatesTokenCount": 1127,
        "totalTokenCount": 1711,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 5},
            {"modality": "IMAGE", "tokenCount": 560},
        ],
        "candidatesTokensDetails": [
            {"modality": "TEXT", "tokenCount": 7},
            {"modality": "IMAGE", "tokenCount": 1120},
        ],
        "thoughtsTokenCount": 19,
    }
    assert body["modelVersion"] == FLASH
    assert RESPONSE_ID.fullmatch(body["responseId"])
    (received,) = served.sandbox.received
    assert received.path == f"/v1beta/models/{FLASH}:generateContent"
    assert received.json["generationConfig"] == {"imageConfig": {"aspectRatio": "16:9"}}


def test_image_only_leaves_the_text_out_and_the_same_request_gives_the_same_bytes(
    served: Served,
) -> None:
    first, second = (generate(served.client, config=image_config()) for _ in range(2))
    # The thought and its draft image come first on 3.x; the only text is the thought.
    thought, draft, image = parts_of(first)
    assert thought == {"text": THOUGHT + "make it a watercolor", "thought": True}
    assert list(draft) == ["inlineData", "thought"] and draft["thought"] is True
    assert list(image) == ["inlineData", "thoughtSignature"]
    assert parts_of(second) == [thought, draft, image]
    assert first.json()["responseId"] != second.json()["responseId"]


@pytest.mark.parametrize(
    ("model", "ratio", "size", "expected"),
    [
        (FLASH, "16:9", None, (1376, 768, "JPEG")),
        (FLASH, "4:1", "2K", (4096, 1024, "JPEG")),
        (LITE, "21:9", "1K", (1584, 672, "JPEG")),
        (FLASH, None, None, (1024, 1024, "JPEG")),  # a generation with no ratio: 1:1
        (PRO, "16:9", "4K", (5504, 3072, "JPEG")),
        (PRO, "9:16", None, (768, 1376, "JPEG")),
        ("gemini-3-pro-image", "4:5", "2K", (1856, 2304, "JPEG")),
        (FLASH_3, "21:9", "512", (792, 336, "JPEG")),
        (FLASH_3, "1:1", "512", (512, 512, "JPEG")),
        (FLASH_3, "4:1", "512", (1024, 256, "JPEG")),
        (FLASH_3, "1:4", "1K", (512, 2048, "JPEG")),
        (FLASH_3, "8:1", "2K", (6144, 768, "JPEG")),
        ("gemini-3.1-flash-image", "1:8", "2K", (768, 6144, "JPEG")),
    ],
)
def test_sizes_follow_googles_tables(
    served: Served, model: str, ratio: str | None, size: str | None, expected: tuple[int, int, str]
) -> None:
    fields = {"aspectRatio": ratio, "imageSize": size}
    config = image_config(**{name: value for name, value in fields.items() if value})
    response = generate(served.client, model, parts=[{"text": "a red banana"}], config=config)
    assert shape(final_image(response)) == expected


def test_an_edit_with_no_ratio_follows_the_first_image(served: Served) -> None:
    # cat.png is 640x480, nearest 4:3; dog.jpg comes second and does not count.
    parts = [{"text": "add the dog"}, inline(), inline(DOG, "image/jpeg")]
    assert shape(final_image(generate(served.client, PRO, parts=parts))) == (1200, 896, "JPEG")


def test_3x_models_think_first_and_sign_the_final_image(served: Served) -> None:
    config = {"imageConfig": {"aspectRatio": "21:9", "imageSize": "2K"}}
    response = generate(served.client, PRO, parts=[{"text": "a red banana"}], config=config)
    thought, draft, text, image = parts_of(response)
    assert thought == {"text": THOUGHT + "a red banana", "thought": True}
    # An interim "thought image": a smaller draft, to be skipped by clients.
    assert list(draft) == ["inlineData", "thought"] and draft["thought"] is True
    assert shape(base64.b64decode(draft["inlineData"]["data"])) == (792, 336, "JPEG")
    assert list(text) == ["text", "thoughtSignature"] and text["text"] == "Here is the image."
    assert list(image) == ["inlineData", "thoughtSignature"]
    assert image["inlineData"]["mimeType"] == "image/jpeg"
    assert shape(base64.b64decode(image["inlineData"]["data"])) == (3168, 1344, "JPEG")
    assert len(base64.b64decode(image["thoughtSignature"], validate=True)) == 64
    # 3 prompt tokens; 5 + 1120 out; the thought text's 17 count in the total only.
    assert response.json()["usageMetadata"] == {
        "promptTokenCount": 3,
        "candidatesTokenCount": 1125,
        "totalTokenCount": 1145,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3}],
        "candidatesTokensDetails": [
            {"modality": "TEXT", "tokenCount": 5},
            {"modality": "IMAGE", "tokenCount": 1120},
        ],
        "thoughtsTokenCount": 17,
    }


@pytest.mark.parametrize(
    ("model", "tokens"),
    [
        (FLASH_3, {"512": 747, "1K": 1120, "4K": 2000}),
        (FLASH, {"1K": 1120, "2K": 1120, "4K": 2000}),
        (LITE, {"1K": 1120}),
    ],
)
def test_output_tokens_follow_the_size(served: Served, model: str, tokens: dict[str, int]) -> None:
    for size, expected in tokens.items():
        response = generate(served.client, model, config=image_config(imageSize=size))
        assert response.json()["usageMetadata"]["candidatesTokensDetails"] == [
            {"modality": "IMAGE", "tokenCount": expected}
        ]


def test_text_modality_alone_answers_in_text(served: Served) -> None:
    response = generate(served.client, config={"responseModalities": ["TEXT"]})
    assert parts_of(response) == [
        {"text": THOUGHT + "make it a watercolor", "thought": True},
        {"text": "Here is what the image would show: make it a watercolor"},
    ]


def test_snake_case_fields_and_any_case_modalities_are_read(served: Served) -> None:
    camel = generate(served.client, config=image_config(aspectRatio="3:4"))
    body = {
        "contents": [
            {
                "parts": [
                    {"text": "make it a watercolor"},
                    {
                        "inline_data": {
                            "mime_type": "image/png",
                            "data": base64.b64encode(CAT).decode(),
                        }
                    },
                ]
            }
        ],
        "generation_config": {
            "response_modalities": ["Image"],
            "image_config": {"aspect_ratio": "3:4"},
        },
    }
    snake = generate(served.client, body=body)
    assert final_image(snake) == final_image(camel)
    assert shape(final_image(snake)) == (896, 1200, "JPEG")


def test_inline_data_may_be_url_safe_base64_without_padding(served: Served) -> None:
    # Google's SDK sends bytes in the URL-safe alphabet, as proto JSON allows.
    url_safe = base64.urlsafe_b64encode(CAT).decode().rstrip("=")
    assert "-" in url_safe or "_" in url_safe
    part = {"inlineData": {"mimeType": "image/png", "data": url_safe}}
    by_url_safe = generate(served.client, parts=[{"text": "make it a watercolor"}, part])
    assert final_image(by_url_safe) == final_image(generate(served.client))


def test_reference_images_are_limited_per_model(served: Served) -> None:
    # Every model of today's lineup takes 14 (2.5's limit of 3 went with it: see
    # test_shut_down_models_are_not_found).
    fourteen = [{"text": "add the hats"}, *[inline(HAT) for _ in range(14)]]
    assert generate(served.client, PRO, parts=fourteen, config=image_config()).status_code == 200
    assert generate(served.client, LITE, parts=fourteen, config=image_config()).status_code == 200
    fifteen = generate(served.client, FLASH, parts=[*fourteen, inline(HAT)])
    assert fifteen.status_code == 400
    assert fifteen.json() == error(
        400,
        "INVALID_ARGUMENT",
        f"* GenerateContentRequest.contents: 15 input images; {FLASH} takes at most 14",
    )
    fifteen = generate(served.client, FLASH_3, parts=[*fourteen, inline(HAT)])
    assert fifteen.json()["error"]["message"] == (
        f"* GenerateContentRequest.contents: 15 input images; {FLASH_3} takes at most 14"
    )


TEN_RATIOS = "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9"


@pytest.mark.parametrize(
    ("model", "fields", "message"),
    [
        (
            LITE,
            {"imageSize": "2K"},
            f"* GenerateContentRequest.generation_config.image_config.image_size: '2K' is not "
            f"supported by {LITE}; use one of 1K",
        ),
        (
            FLASH,
            {"imageSize": "512"},
            f"* GenerateContentRequest.generation_config.image_config.image_size: '512' is not "
            f"supported by {FLASH}; use one of 1K, 2K, 4K",
        ),
        (
            PRO,
            {"imageSize": "512"},
            f"* GenerateContentRequest.generation_config.image_config.image_size: '512' is not "
            f"supported by {PRO}; use one of 1K, 2K, 4K",
        ),
        (
            FLASH_3,
            {"imageSize": "1k"},
            f"* GenerateContentRequest.generation_config.image_config.image_size: '1k' is not "
            f"supported by {FLASH_3}; use one of 512, 1K, 2K, 4K",
        ),
        (
            PRO,
            {"aspectRatio": "1:8"},
            f"* GenerateContentRequest.generation_config.image_config.aspect_ratio: '1:8' is "
            f"not supported by {PRO}; use one of {TEN_RATIOS}",
        ),
        (
            LITE,
            {"aspectRatio": "auto"},
            f"* GenerateContentRequest.generation_config.image_config.aspect_ratio: 'auto' is "
            f"not supported by {LITE}; use one of {TEN_RATIOS}",
        ),
        (
            LITE,
            {"aspectRatio": "1:4"},
            f"* GenerateContentRequest.generation_config.image_config.aspect_ratio: '1:4' is "
            f"not supported by {LITE}; use one of {TEN_RATIOS}",
        ),
    ],
)
def test_ratios_and_sizes_a_model_does_not_draw_are_refused(
    served: Served, model: str, fields: dict[str, str], message: str
) -> None:
    response = generate(served.client, model, config=image_config(**fields))
    assert response.status_code == 400
    assert response.json() == error(400, "INVALID_ARGUMENT", message)


CAT_B64 = base64.b64encode(CAT).decode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "* GenerateContentRequest.contents: contents is not specified"),
        (
            {"contents": [{"parts": []}]},
            "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.",
        ),
        (
            {
                "contents": [
                    {
                        "parts": [
                            {"text": "a", "inlineData": {"mimeType": "image/png", "data": CAT_B64}}
                        ]
                    }
                ]
            },
            "* GenerateContentRequest.contents[0].parts[0].data: required oneof field 'data' "
            "must have one initialized field",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "***"}}]}]},
            "Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES), Base64 "
            "decoding failed for '***'",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"data": CAT_B64}}]}]},
            "* GenerateContentRequest.contents[0].parts[0].inline_data.mime_type: mime_type is "
            "not specified",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "image/gif", "data": CAT_B64}}]}]},
            "Unsupported MIME type: image/gif",
        ),
        (
            {
                "contents": [
                    {"parts": [{"inlineData": {"mimeType": "image/png", "data": "aGVsbG8="}}]}
                ]
            },
            f"Unable to process input image. Please retry or report in {TROUBLESHOOTING}",
        ),
        (
            {
                "contents": [{"parts": [{"text": "a"}]}],
                "generationConfig": {"responseModalities": ["PICTURE"]},
            },
            "Invalid value at 'generation_config.response_modalities[0]' (type.googleapis.com/"
            "google.ai.generativelanguage.v1beta.GenerationConfig.Modality), 'PICTURE'",
        ),
        (
            {"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"candidateCount": 2}},
            f"Multiple candidates is not enabled for models/{FLASH}",
        ),
        (
            {"contents": [{"parts": [{"fileData": {"fileUri": "gs://bucket/cat.png"}}]}]},
            "Invalid or unsupported file uri: gs://bucket/cat.png",
        ),
    ],
)
def test_bad_bodies_are_refused_with_googles_words(
    served: Served, body: dict[str, Any], message: str
) -> None:
    response = generate(served.client, body=body)
    assert response.status_code == 400
    assert response.json() == error(400, "INVALID_ARGUMENT", message)


def test_a_body_that_is_not_json_or_a_misspelt_image_config_is_refused(served: Served) -> None:
    not_json = served.client.post(
        f"/v1beta/models/{FLASH}:generateContent",
        headers={"x-goog-api-key": KEY, "Content-Type": "application/json"},
        content=b"{contents",
    )
    assert not_json.json() == error(
        400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token."
    )
    misspelt = generate(served.client, config={"imageConfig": {"aspectratio": "16:9"}})
    message = (
        'Invalid JSON payload received. Unknown name "aspectratio" at '
        "'generation_config.image_config': Cannot find field."
    )
    assert misspelt.json() == error(
        400,
        "INVALID_ARGUMENT",
        message,
        [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {"field": "generation_config.image_config", "description": message}
                ],
            }
        ],
    )


def test_unknown_models_are_not_found(served: Served) -> None:
    response = generate(served.client, "gemini-9-image")
    assert response.status_code == 404
    assert response.json() == error(
        404,
        "NOT_FOUND",
        "models/gemini-9-image is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods.",
    )
    model = served.client.get("/v1/models/nano-banana", headers={"x-goog-api-key": KEY})
    assert model.status_code == 404
    assert model.json()["error"]["message"].startswith(
        "models/nano-banana is not found for API version v1, or is not supported for get."
    )


@pytest.mark.parametrize("model", SHUT_DOWN)
def test_shut_down_models_are_not_found(served: Served, model: str) -> None:
    # Google answers a shut-down id as any id it does not know, for generateContent and get.
    response = generate(served.client, model)
    assert response.status_code == 404
    assert response.json() == error(
        404,
        "NOT_FOUND",
        f"models/{model} is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods.",
    )
    got = served.client.get(f"/v1beta/models/{model}", headers={"x-goog-api-key": KEY})
    assert got.status_code == 404
    assert got.json()["error"]["message"].startswith(
        f"models/{model} is not found for API version v1beta, or is not supported for get."
    )


# --- keys --------------------------------------------------------------------------------------


def test_a_missing_key_is_permission_denied(served: Served) -> None:
    for headers in ({}, {"x-goog-api-key": ""}, {"Authorization": f"Bearer {KEY}"}):
        response = generate(served.client, headers=headers)
        assert response.status_code == 403
        assert response.json() == error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to call "
            "this API.",
        )


def test_a_wrong_key_is_an_invalid_argument(served: Served) -> None:
    message = "API key not valid. Please pass a valid API key."
    for response in (
        generate(served.client, headers={"x-goog-api-key": "AIza-wrong"}),
        served.client.get(f"/v1beta/models/{FLASH}", headers={"x-goog-api-key": "AIza-wrong"}),
    ):
        assert response.status_code == 400
        assert response.json() == error(
            400,
            "INVALID_ARGUMENT",
            message,
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                },
            ],
        )


def test_the_key_may_come_in_the_query_and_never_shows_in_a_record(served: Served) -> None:
    response = served.client.post(
        f"/v1beta/models/{FLASH}:generateContent?key={KEY}",
        json={"contents": [{"parts": [{"text": "a red banana"}]}]},
    )
    assert response.status_code == 200
    generate(served.client, config=image_config())
    by_query, by_header = served.sandbox.received
    assert by_query.query == {"key": KEY}
    assert by_header.headers["x-goog-api-key"] == KEY
    assert KEY not in repr(by_query) and KEY not in repr(by_header)


# --- models and routes ------------------------------------------------------------------------


def test_models_get_describes_the_model(served: Served) -> None:
    response = served.client.get(f"/v1beta/models/{PRO}", headers={"x-goog-api-key": KEY})
    assert response.status_code == 200
    assert response.json() == {
        "name": f"models/{PRO}",
        "version": "3.0",
        "displayName": "Nano Banana Pro",
        "description": "Gemini 3 Pro Image",
        "inputTokenLimit": 131072,
        "outputTokenLimit": 32768,
        "supportedGenerationMethods": ["generateContent", "countTokens", "batchGenerateContent"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    }
    flash = served.client.get(f"/v1beta/models/{FLASH}?key={KEY}").json()
    assert (flash["name"], flash["version"], flash["displayName"], flash["thinking"]) == (
        f"models/{FLASH}",
        "2.1",
        "Nano Banana 2.1",
        True,
    )


def test_models_are_listed_page_by_page_text_models_among_them(served: Served) -> None:
    google = {"x-goog-api-key": KEY}
    first = served.client.get("/v1beta/models", params={"pageSize": 1000}, headers=google)
    assert first.status_code == 200
    # At most five a page, fewer than asked, as Google's list may answer.
    page = first.json()
    assert [model["name"] for model in page["models"]] == [
        "models/gemini-3-pro",
        "models/gemini-3-flash",
        "models/gemini-3-pro-image",
        "models/gemini-3.1-flash-image",
        "models/gemini-nano-banana-2.1",
    ]
    second = served.client.get(
        "/v1beta/models", params={"pageSize": 1000, "pageToken": page["nextPageToken"]},
        headers=google,
    ).json()  # fmt: skip
    assert [model["name"] for model in second["models"]] == [
        "models/gemini-3.1-flash-lite-image",
        "models/gemini-embedding-001",
        "models/imagen-4.0-generate-001",
    ]
    assert "nextPageToken" not in second
    assert second["models"][2]["supportedGenerationMethods"] == ["predict"]
    one = served.client.get(f"/v1beta/models/{FLASH_3}", headers=google)
    assert page["models"][3] == one.json()
    small = served.client.get("/v1beta/models", params={"pageSize": 2}, headers=google).json()
    assert len(small["models"]) == 2
    bad = served.client.get("/v1beta/models", params={"pageToken": "nope"}, headers=google)
    assert (bad.status_code, bad.json()["error"]["status"]) == (400, "INVALID_ARGUMENT")


def test_v1_is_shared_with_the_openai_compatible_api(served: Served) -> None:
    google = {"x-goog-api-key": KEY}
    # Google's SDK calls /v1 by default: its routes there are Google's.
    assert generate(served.client, version="v1", config=image_config()).status_code == 200
    model = served.client.get(f"/v1/models/{FLASH}", headers=google)
    assert model.json()["name"] == f"models/{FLASH}"
    # The same paths with no Google key belong to the OpenAI-compatible gateway.
    openai = served.client.get(f"/v1/models/{FLASH}", headers={"Authorization": f"Bearer {KEY}"})
    assert openai.status_code == 404
    assert openai.json()["error"]["code"] == "invalid_url"
    models = served.client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert models.json()["object"] == "list"
    listed = served.client.get("/v1/models", headers=google)
    assert listed.json()["models"][2]["name"] == f"models/{PRO}"


def test_unknown_routes_get_googles_front_end_page(served: Served) -> None:
    for response in (
        served.client.get("/v1beta/images", headers={"x-goog-api-key": KEY}),
        served.client.get(f"/v1beta/models/{FLASH}:generateContent"),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"] == "text/html; charset=UTF-8"
        path = response.request.url.path
        assert response.text == (
            "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
            "  <title>Error 404 (Not Found)!!1</title>\n"
            "  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n"
            f"  <p>The requested URL <code>{path}</code> was not found on this server.  "
            "<ins>That\u2019s all we know.</ins>\n"
        )


def test_the_index_lists_googles_routes(served: Served) -> None:
    index = served.client.get("/").text
    assert "Gemini (x-goog-api-key: KEY, or ?key=KEY; the same under /v1)\n" in index
    assert (
        "  POST /v1beta/models/MODEL:generateContent   JSON: contents, generationConfig\n" in index
    )
    assert (
        "  POST /upload/v1beta/files                   resumable upload: start, then upload, finalize\n"
        in index
    )
    assert "  DELETE /v1beta/files/FILE_ID\n" in index


# --- Files API ----------------------------------------------------------------------------------


def start_upload(
    client: httpx.Client,
    *,
    size: int | None = len(CAT),
    mime: str = "image/png",
    headers: dict[str, str] | None = None,
    version: str = "v1beta",
) -> httpx.Response:
    """The first step of a resumable upload, as Google's SDK sends it."""
    sent = {
        "x-goog-api-key": KEY,
        "X-Goog-Upload-Protocol": "resumable",
        "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Type": mime,
    }
    if size is not None:
        sent["X-Goog-Upload-Header-Content-Length"] = str(size)
    return client.post(
        f"/upload/{version}/files",
        headers=sent if headers is None else headers,
        json={"file": {"display_name": "cat.png"}},
    )


def send_bytes(
    client: httpx.Client, url: str, data: bytes, offset: int, command: str = "upload, finalize"
) -> httpx.Response:
    return client.post(
        url,
        headers={"X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)},
        content=data,
    )


def upload(client: httpx.Client, data: bytes = CAT) -> dict[str, Any]:
    url = start_upload(client, size=len(data)).headers["x-goog-upload-url"]
    response = send_bytes(client, url, data, 0)
    assert response.status_code == 200, response.text
    file: dict[str, Any] = response.json()["file"]
    return file


def stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_resumable_upload_makes_a_file_to_use(serve: Callable[..., Served]) -> None:
    served = serve(clock=FakeClock())
    started = start_upload(served.client)
    assert (started.status_code, started.content) == (200, b"")
    url = started.headers["x-goog-upload-url"]
    match = re.fullmatch(
        re.escape(served.base_url)
        + r"/upload/v1beta/files\?upload_id=([A-Za-z0-9_-]{43})&upload_protocol=resumable",
        url,
    )
    assert match is not None, url
    assert started.headers["x-goog-upload-status"] == "active"
    assert started.headers["x-goog-upload-chunk-granularity"] == "8388608"
    # The upload URL is the credential: no key goes with the bytes.
    finished = send_bytes(served.client, url, CAT, 0)
    assert finished.status_code == 200
    assert finished.headers["x-goog-upload-status"] == "final"
    file = finished.json()["file"]
    file_id = file["name"].removeprefix("files/")
    assert re.fullmatch(r"[a-z0-9]{12}", file_id)
    created = served.sandbox.received[-1]
    assert created.headers.get("x-goog-api-key") is None
    assert file == {
        "name": f"files/{file_id}",
        "displayName": "cat.png",
        "mimeType": "image/png",
        "sizeBytes": str(len(CAT)),
        "createTime": file["createTime"],
        "updateTime": file["createTime"],
        "expirationTime": file["expirationTime"],
        "sha256Hash": base64.b64encode(hashlib.sha256(CAT).hexdigest().encode()).decode(),
        "uri": f"{served.base_url}/v1beta/files/{file_id}",
        "state": "ACTIVE",
        "source": "UPLOADED",
    }
    created_at = datetime.strptime(file["createTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert stamp(created_at.timestamp() + 48 * HOUR) == file["expirationTime"]
    got = served.client.get(f"/v1beta/files/{file_id}", headers={"x-goog-api-key": KEY})
    assert got.json() == file
    # Used by its URI, the file is the same input as the bytes sent inline.
    by_file = generate(
        served.client,
        parts=[
            {"text": "make it a watercolor"},
            {"fileData": {"mimeType": "image/png", "fileUri": file["uri"]}},
        ],
        config=image_config(),
    )
    assert final_image(by_file) == final_image(generate(served.client, config=image_config()))


@pytest.mark.parametrize("fault", ["upload-processing", "upload-failed"])
def test_a_processing_upload_is_not_usable_until_it_is_active(
    serve: Callable[..., Served], fault: str
) -> None:
    clock = FakeClock()
    served = serve(clock=clock, faults=fault)
    file = upload(served.client)
    file_id = file["name"].removeprefix("files/")
    assert (file["state"], file["updateTime"]) == ("PROCESSING", file["createTime"])
    google = {"x-goog-api-key": KEY}
    parts = [{"text": "at night"}, {"fileData": {"fileUri": file["uri"]}}]
    not_active = error(
        400,
        "FAILED_PRECONDITION",
        f"The File {file_id} is not in an ACTIVE state and usage is not allowed.",
    )
    # Processing takes 3 s of the sandbox's clock; until then the file cannot be used.
    clock.advance(2.999)
    assert served.client.get(f"/v1beta/{file['name']}", headers=google).json() == file
    used = generate(served.client, parts=parts)
    assert (used.status_code, used.json()) == (400, not_active)
    clock.advance(0.001)
    done = served.client.get(f"/v1beta/{file['name']}", headers=google).json()
    created = datetime.strptime(file["createTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    changed = {"updateTime": stamp(created.timestamp() + 3.0)}
    if fault == "upload-processing":
        assert done == file | {"state": "ACTIVE"} | changed
        assert generate(served.client, parts=parts).status_code == 200
    else:
        failure = {"code": 3, "message": "The file could not be processed as an image."}
        assert done == file | {"state": "FAILED", "error": failure} | changed
        again = generate(served.client, parts=parts)
        assert (again.status_code, again.json()) == (400, not_active)


def test_a_large_upload_is_processing_at_first(served: Served) -> None:
    # Below 8 MiB a file is usable at once (every other upload test); from 8 MiB it is
    # processed first, as the Files API does with large media.
    large = 8 * 1024 * 1024
    assert upload(served.client, bytes(large - 1))["state"] == "ACTIVE"
    assert upload(served.client, bytes(large))["state"] == "PROCESSING"


def test_files_are_listed_newest_first_and_deleted(served: Served) -> None:
    google = {"x-goog-api-key": KEY}
    assert served.client.get("/v1beta/files", headers=google).json() == {}
    first, second = upload(served.client), upload(served.client, HAT)
    listed = served.client.get("/v1beta/files", headers=google)
    assert listed.json() == {"files": [second, first]}
    deleted = served.client.delete(f"/v1beta/{first['name']}", headers=google)
    assert (deleted.status_code, deleted.json()) == (200, {})
    assert served.client.get(f"/v1beta/{first['name']}", headers=google).status_code == 403
    again = served.client.delete(f"/v1beta/{first['name']}", headers=google)
    assert again.json()["error"]["status"] == "PERMISSION_DENIED"
    assert served.client.get("/v1/files", headers=google).json() == {"files": [second]}
    assert served.client.get("/v1beta/files").status_code == 403


def test_an_upload_may_come_in_chunks(served: Served) -> None:
    url = start_upload(served.client).headers["x-goog-upload-url"]
    half = len(CAT) // 2
    first = send_bytes(served.client, url, CAT[:half], 0, "upload")
    assert (first.status_code, first.headers["x-goog-upload-status"], first.content) == (
        200,
        "active",
        b"",
    )
    query = send_bytes(served.client, url, b"", 0, "query")
    assert query.headers["x-goog-upload-size-received"] == str(half)
    last = send_bytes(served.client, url, CAT[half:], half)
    assert last.json()["file"]["sizeBytes"] == str(len(CAT))
    # The session is closed: its URL takes no more bytes.
    again = send_bytes(served.client, url, CAT, 0)
    assert again.status_code == 404
    assert again.headers["x-goog-upload-status"] == "final"


def test_an_upload_at_the_wrong_offset_or_of_the_wrong_length_fails(served: Served) -> None:
    url = start_upload(served.client).headers["x-goog-upload-url"]
    skipped = send_bytes(served.client, url, CAT[10:], 10)
    assert skipped.status_code == 400
    assert skipped.headers["x-goog-upload-status"] == "final"
    assert skipped.json() == error(
        400,
        "INVALID_ARGUMENT",
        "Invalid request. The given offset is 10, but the current offset is 0.",
    )
    url = start_upload(served.client, size=len(CAT) + 1).headers["x-goog-upload-url"]
    short = send_bytes(served.client, url, CAT, 0)
    assert short.json()["error"]["message"] == (
        f"Failed to upload the file: {len(CAT)} bytes arrived, but {len(CAT) + 1} were "
        "announced in X-Goog-Upload-Header-Content-Length."
    )


def test_an_upload_needs_a_key_and_the_resumable_protocol(served: Served) -> None:
    headers = {"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"}
    assert start_upload(served.client, headers=headers).status_code == 403
    multipart = start_upload(served.client, headers={"x-goog-api-key": KEY})
    assert multipart.json() == error(
        400,
        "INVALID_ARGUMENT",
        "The sandbox takes resumable uploads only: send X-Goog-Upload-Protocol: resumable",
    )


def test_uploads_expire_after_48_hours(serve: Callable[..., Served]) -> None:
    clock = FakeClock()
    served = serve(clock=clock)
    file = upload(served.client)
    file_id = file["name"].removeprefix("files/")
    parts = [{"text": "at night"}, {"fileData": {"fileUri": file["uri"]}}]
    clock.advance(48 * HOUR - 1)
    assert generate(served.client, parts=parts).status_code == 200
    clock.advance(1)
    denied = error(
        403,
        "PERMISSION_DENIED",
        f"You do not have permission to access the File {file_id} or it may not exist.",
    )
    expired = generate(served.client, parts=parts)
    assert (expired.status_code, expired.json()) == (403, denied)
    got = served.client.get(f"/v1beta/files/{file_id}", headers={"x-goog-api-key": KEY})
    assert (got.status_code, got.json()) == (403, denied)


def test_a_file_uri_may_be_a_url(served: Served) -> None:
    parts = [{"text": "at night"}, {"fileData": {"fileUri": f"{served.base_url}/samples/dog.jpg"}}]
    # dog.jpg is 800x600, so 4:3. The sandbox reads its own URLs with no socket.
    assert shape(final_image(generate(served.client, parts=parts))) == (1200, 896, "JPEG")
    assert [r.path for r in served.sandbox.received] == [f"/v1beta/models/{FLASH}:generateContent"]


# --- faults --------------------------------------------------------------------------------------


def test_status_faults_answer_in_googles_shape(serve: Callable[..., Served]) -> None:
    served = serve(faults="429,500,503,504")
    throttled = generate(served.client)
    assert throttled.status_code == 429
    assert "retry-after" not in throttled.headers
    assert throttled.json() == error(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. "
        "To monitor your current usage, head to: https://ai.dev/rate-limit. ",
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_requests_per_model",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                        "quotaDimensions": {"location": "global", "model": FLASH},
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
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"},
        ],
    )
    assert generate(served.client).json() == error(
        500,
        "INTERNAL",
        f"An internal error has occurred. Please retry or report in {TROUBLESHOOTING}",
    )
    assert generate(served.client).json() == error(
        503, "UNAVAILABLE", "The model is overloaded. Please try again later."
    )
    assert generate(served.client).json() == error(
        504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."
    )
    assert generate(served.client).status_code == 200


def test_408_and_502_come_from_googles_front_end(serve: Callable[..., Served]) -> None:
    served = serve(faults="408,502,429-date,503-html")
    timeout, gateway = generate(served.client), generate(served.client)
    assert (timeout.status_code, gateway.status_code) == (408, 502)
    assert "<title>Error 408 (Request Timeout)!!1</title>" in timeout.text
    assert "Please try again in 30 seconds." in gateway.text
    assert gateway.headers["content-type"] == "text/html; charset=UTF-8"
    # A 429-date still carries its date, for clients behind a proxy that adds one.
    dated = generate(served.client)
    assert dated.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert dated.headers["retry-after"].endswith(" GMT")
    assert "<center>nginx</center>" in generate(served.client).text


def test_invalid_argument_comes_before_the_key_check(serve: Callable[..., Served]) -> None:
    served = serve(faults="invalid-argument")
    response = generate(served.client, headers={})
    assert response.json() == error(
        400, "INVALID_ARGUMENT", "Request contains an invalid argument."
    )


def test_the_403s_that_are_not_about_the_key(serve: Callable[..., Served]) -> None:
    served = serve(faults="permission-denied,service-disabled")
    denied = generate(served.client)
    assert denied.json() == error(403, "PERMISSION_DENIED", "The caller does not have permission")
    disabled = generate(served.client)
    assert disabled.status_code == 403
    url = (
        "https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/"
        "overview?project=123456789012"
    )
    message = (
        "Generative Language API has not been used in project 123456789012 before or it is "
        f"disabled. Enable it by visiting {url} then retry. If you enabled this API recently, "
        "wait a few minutes for the action to propagate to our systems and retry."
    )
    assert disabled.json() == error(403, "PERMISSION_DENIED", message, [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED",
         "domain": "googleapis.com",
         "metadata": {"consumer": "projects/123456789012",
                      "service": "generativelanguage.googleapis.com", "activationUrl": url,
                      "serviceTitle": "Generative Language API", "containerInfo": "123456789012"}},
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
         "message": message},
        {"@type": "type.googleapis.com/google.rpc.Help",
         "links": [{"description": "Google developers console API activation", "url": url}]},
    ])  # fmt: skip
    # Each took one request, the model lookup a config check makes included.
    assert generate(served.client).status_code == 200


@pytest.mark.parametrize(
    ("fault", "reason", "message"),
    [
        ("image-safety", "IMAGE_SAFETY", BLOCKED_IMAGE),
        ("image-prohibited", "IMAGE_PROHIBITED_CONTENT", BLOCKED_IMAGE),
        (
            "no-image",
            "NO_IMAGE",
            "The model was expected to generate an image, but none was generated.",
        ),
        # Google's "not otherwise specified": no message beside it.
        ("image-other", "IMAGE_OTHER", None),
    ],
)
def test_blocks_by_finish_reason(
    serve: Callable[..., Served], fault: str, reason: str, message: str | None
) -> None:
    served = serve(faults=fault)
    body = generate(served.client, PRO).json()
    assert list(body) == ["candidates", "usageMetadata", "modelVersion", "responseId"]
    said = {} if message is None else {"finishMessage": message}
    assert body["candidates"] == [{"finishReason": reason, "index": 0, **said}]
    # Blocked images are not billed: the prompt only (5 + 560 for the image on 3.x).
    assert body["usageMetadata"] == {
        "promptTokenCount": 565,
        "totalTokenCount": 565,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 5},
            {"modality": "IMAGE", "tokenCount": 560},
        ],
    }


def test_prompt_blocked_has_no_candidates(serve: Callable[..., Served]) -> None:
    served = serve(faults="prompt-blocked")
    body = generate(served.client, parts=[{"text": "a red banana"}]).json()
    assert list(body) == ["promptFeedback", "usageMetadata", "modelVersion", "responseId"]
    assert body["promptFeedback"] == {"blockReason": "PROHIBITED_CONTENT"}
    assert body["usageMetadata"] == {
        "promptTokenCount": 3,
        "totalTokenCount": 3,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3}],
    }


def test_text_only_answers_stop_with_text(serve: Callable[..., Served]) -> None:
    served = serve(faults="text-onlyx2")
    flash = generate(served.client)
    assert flash.json()["candidates"][0]["finishReason"] == "STOP"
    # On 3.x the thought comes first, with no image at all.
    assert parts_of(flash) == [
        {"text": THOUGHT + "make it a watercolor", "thought": True},
        {"text": REFUSAL},
    ]
    assert flash.json()["usageMetadata"]["candidatesTokensDetails"] == [
        {"modality": "TEXT", "tokenCount": 26}
    ]
    pro = generate(served.client, PRO)
    assert parts_of(pro) == [
        {"text": THOUGHT + "make it a watercolor", "thought": True},
        {"text": REFUSAL},
    ]


def test_upload_expired_refuses_a_file_in_use(served: Served) -> None:
    file = upload(served.client)
    kept = upload(served.client, HAT)
    served.sandbox.add_faults("upload-expired")
    # A request that uses no file takes the fault too: the files expire under it.
    assert generate(served.client, config=image_config()).status_code == 200
    file_id = file["name"].removeprefix("files/")
    parts = [{"text": "at night"}, {"fileData": {"fileUri": file["uri"]}}]
    response = generate(served.client, parts=parts)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == (
        f"You do not have permission to access the File {file_id} or it may not exist."
    )
    served.sandbox.add_faults("upload-expired")
    kept_id = kept["name"].removeprefix("files/")
    fresh = upload(served.client)
    parts = [{"text": "a hat"}, {"fileData": {"fileUri": fresh["uri"]}}]
    response = generate(served.client, parts=parts)
    assert response.json()["error"]["message"] == (
        f"You do not have permission to access the File {fresh['name'].removeprefix('files/')} "
        "or it may not exist."
    )
    gone = served.client.get(f"/v1beta/files/{kept_id}", headers={"x-goog-api-key": KEY})
    assert gone.status_code == 403
    assert served.sandbox.pending_faults() == []


def test_result_faults_wait_for_a_request_that_succeeds(serve: Callable[..., Served]) -> None:
    served = serve(faults="image-safety")
    assert generate(served.client, config=image_config(imageSize="8K")).status_code == 400
    assert generate(served.client, headers={}).status_code == 403
    assert served.sandbox.pending_faults() == ["submit:image-safetyx1"]
    assert generate(served.client).json()["candidates"][0]["finishReason"] == "IMAGE_SAFETY"


def test_gemini_faults_leave_the_other_apis_alone(serve: Callable[..., Served]) -> None:
    served = serve(faults="image-safety,prompt-blocked,invalid-argument")
    edit = served.client.post(
        "/v1/images/edits",
        headers={"Authorization": f"Bearer {KEY}"},
        data={"model": "nano-banana", "prompt": "a hat"},
        files=[("image", ("cat.png", CAT, "image/png"))],
    )
    assert edit.status_code == 200
    assert served.sandbox.pending_faults() == [
        "submit:image-safetyx1",
        "submit:prompt-blockedx1",
        "api:invalid-argumentx1",
    ]


def test_socket_and_body_faults_work_on_gemini_routes(serve: Callable[..., Served]) -> None:
    served = serve(faults="bad-json,reset")
    cut = generate(served.client, config=image_config())
    assert cut.status_code == 200
    assert cut.headers["content-type"] == "application/json; charset=utf-8"
    # The first half of a real answer.
    assert cut.content.startswith(
        b'{"candidates": [{"content": {"parts": [{"text": "**Planning the picture**\\n\\n'
        b'I\'m working out how to show: make it a watercolor", "thought": true}, '
        b'{"inlineData": {"mimeType": "image/jpeg", "data": "/9j/'
    )
    with pytest.raises(json.JSONDecodeError):
        cut.json()
    with pytest.raises(httpx.ReadError):
        generate(served.client)
    assert generate(served.client).status_code == 200


def test_every_new_fault_is_listed_by_the_cli() -> None:
    result = run_cli(["sandbox", "faults"])
    assert result.exit_code == 0
    width = max(len(name) for name in FAULT_KINDS)
    lines = result.stdout.splitlines()
    for name, summary in [
        ("invalid-argument", "api     HTTP 400 INVALID_ARGUMENT"),
        (
            "permission-denied",
            "api     HTTP 403 PERMISSION_DENIED with no reason (a model kept from the key's "
            "project)",
        ),
        (
            "service-disabled",
            "api     HTTP 403 PERMISSION_DENIED, reason SERVICE_DISABLED (the API is not "
            "enabled for the key's project)",
        ),
        ("image-safety", "submit  no image: finishReason IMAGE_SAFETY, with finishMessage"),
        ("image-prohibited", "submit  no image: finishReason IMAGE_PROHIBITED_CONTENT"),
        ("no-image", "submit  no image: finishReason NO_IMAGE"),
        ("image-other", "submit  no image: finishReason IMAGE_OTHER"),
        ("prompt-blocked", "submit  no candidates: promptFeedback.blockReason"),
        ("upload-expired", "submit  uploaded files expire; one in use is refused (403)"),
        ("upload-processing", "api     an upload is PROCESSING for 3 s before it is ACTIVE"),
        ("upload-failed", "api     an upload is PROCESSING for 3 s, then FAILED"),
        (
            "429",
            "api     HTTP 429 with Retry-After: 1 (Gemini: retryDelay 17s in the body instead)",
        ),
    ]:
        assert f"{name:<{width}}  {summary}" in lines


# --- in process ------------------------------------------------------------------------------


def test_in_process_the_gemini_api_answers_in_memory() -> None:
    sandbox = Sandbox(keys=frozenset({KEY}))
    with httpx.Client(transport=SandboxTransport(sandbox), base_url=SANDBOX_BASE_URL) as client:
        file = upload(client, DOG)
        assert file["uri"].startswith(f"{SANDBOX_BASE_URL}/v1beta/files/")
        parts = [{"text": "at night"}, {"fileData": {"fileUri": file["uri"]}}]
        response = generate(client, FLASH_3, parts=parts, config=image_config(imageSize="512"))
    # dog.jpg is 4:3: 600x448 at 512.
    assert shape(final_image(response)) == (600, 448, "JPEG")
