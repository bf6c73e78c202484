"""The sandbox, spoken to over real HTTP on loopback (and a few times in memory).

Its answers must match what the real servers send (API-NOTES), so these tests pin exact
shapes, statuses, sizes and bytes.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import errno
import io
import json
import multiprocessing
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import shape, wait_for
from PIL import Image, ImageStat

from nanoedit.sandbox import (
    FAULT_KINDS,
    SAMPLE_NAMES,
    SANDBOX_BASE_URL,
    SANDBOX_KEY,
    ReceivedRequest,
    Sandbox,
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
    SandboxTransport,
    UploadedFile,
    sample_image,
)
from nanoedit.sandbox.app import APIS
from nanoedit.sandbox.faults import (
    CORE_FAULT_KINDS,
    FILES,
    Stage,
    parse_faults,
    result_fault,
    retry_date,
    with_api_kinds,
)
from nanoedit.sandbox.render import Encoded, Picture
from nanoedit.sandbox.renderer import Renderer

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
KEY = "test-key"
# Built once: loading the CA roots costs tens of milliseconds per client otherwise.
TLS = ssl.create_default_context()
CAT, _ = sample_image("cat.png")
DOG, _ = sample_image("dog.jpg")
HAT, _ = sample_image("hat.png")
PERSON, _ = sample_image("person.png")
EDIT_PATH = "/api/gemini/nano-banana-edit"
GENERATE_PATH = "/api/gemini/nano-banana"
TASK_ID = re.compile(r"[0-9a-f]{32}")
# duomi's own names: its Nano Banana 2 (what nanoedit's nano-banana is sent as) and its Pro.
DUOMI_FLASH = "gemini-3.1-flash-image-preview"
DUOMI_PRO = "gemini-3-pro-image-preview"
REFUSAL = (
    "I can't create this image: the request may go against the content policy. "
    "Try describing it differently."
)
EXPIRED_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>\n"
)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Served:
    """A sandbox on a loopback port, a plain httpx client pointed at it, and its log."""

    sandbox: Sandbox
    base_url: str
    client: httpx.Client
    server: SandboxServer
    log: io.StringIO

    def requests(self, path_prefix: str = "/") -> list[ReceivedRequest]:
        return [r for r in self.sandbox.received if r.path.startswith(path_prefix)]


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start sandboxes on free ports; all are closed when the test ends."""
    with ExitStack() as stack:

        def start(**options: Any) -> Served:
            sandbox = Sandbox(**options)
            log = io.StringIO()
            server = stack.enter_context(SandboxServer(sandbox, log=log))
            client = stack.enter_context(
                httpx.Client(base_url=server.base_url, timeout=10, verify=TLS)
            )
            return Served(sandbox, server.base_url, client, server, log)

        yield start


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    return serve()


@pytest.fixture
def in_process() -> Iterator[tuple[Sandbox, httpx.Client]]:
    sandbox = Sandbox()
    transport = SandboxTransport(sandbox)
    with httpx.Client(transport=transport, base_url=SANDBOX_BASE_URL) as client:
        yield sandbox, client


def bearer(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


RAW = {"Authorization": KEY}


def edit(
    client: httpx.Client,
    *,
    prompt: str | None = "make it a watercolor",
    model: str = "nano-banana",
    images: list[tuple[str, bytes, str]] | None = None,
    field: str = "image",
    headers: dict[str, str] | None = None,
    **fields: str,
) -> httpx.Response:
    data = {"model": model, **fields}
    if prompt is not None:
        data["prompt"] = prompt
    uploads = [("cat.png", CAT, "image/png")] if images is None else images
    return client.post(
        "/v1/images/edits",
        headers=bearer() if headers is None else headers,
        data=data,
        files=[(field, upload) for upload in uploads],
    )


def generate(client: httpx.Client, **body: Any) -> httpx.Response:
    payload = {"model": "nano-banana", "prompt": "a red banana", **body}
    return client.post("/v1/images/generations", headers=bearer(), json=payload)


def submit(client: httpx.Client, path: str = EDIT_PATH, **body: Any) -> httpx.Response:
    payload = {"model": DUOMI_FLASH, "prompt": "make it night", **body}
    return client.post(path, headers=RAW, json=payload)


def poll(client: httpx.Client, task_id: str) -> dict[str, Any]:
    response = client.get(f"/api/gemini/nano-banana/{task_id}", headers=RAW)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def task_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    task_id: str = response.json()["data"]["task_id"]
    return task_id


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def only_url(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    (item,) = response.json()["data"]
    url: str = item["url"]
    return url


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The error object, after checking its message ends with this answer's request id."""
    error: dict[str, Any] = response.json()["error"]
    request_id = response.headers["x-oneapi-request-id"]
    assert re.fullmatch(r"\d{26}", request_id)
    suffix = f" (request id: {request_id})"
    assert error["message"].endswith(suffix)
    return {**error, "message": error["message"].removesuffix(suffix)}


# --- OpenAI-compatible gateway -------------------------------------------------------------


def test_edit_answers_the_captured_shape_with_a_signed_url(serve: Callable[..., Served]) -> None:
    served = serve(clock=FakeClock())
    response = edit(served.client, aspect_ratio="16:9")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert list(body) == ["created", "data", "model", "usage"]
    assert body["model"] == "nano-banana"
    # "make it a watercolor" is 20 bytes (5 tokens), plus 258 for the image; 1290 out.
    assert body["usage"] == {"prompt_tokens": 263, "completion_tokens": 1290, "total_tokens": 1553}
    (item,) = body["data"]
    assert list(item) == ["revised_prompt", "url", "b64_json"]
    assert item["revised_prompt"] == "make it a watercolor"
    assert item["b64_json"] == ""
    match = re.fullmatch(
        re.escape(served.base_url)
        + r"/files/([0-9a-f]{32})\.png\?X-Expires=(\d+)&sig=[0-9a-f]{32}",
        item["url"],
    )
    assert match is not None
    assert int(match[2]) == body["created"] + 3600
    download = served.client.get(item["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-length"] == str(len(download.content))
    assert shape(download.content) == (1344, 768, "PNG")


def test_b64_json_fills_b64_and_leaves_url_empty(served: Served) -> None:
    body = edit(served.client, response_format="b64_json").json()
    (item,) = body["data"]
    assert item["url"] == ""
    # cat.png is 640x480: with no ratio the nearest table ratio is 4:3.
    assert shape(base64.b64decode(item["b64_json"])) == (1184, 864, "PNG")


@pytest.mark.parametrize("field", ["image", "image[]"])
def test_both_image_field_forms_are_accepted_and_recorded(served: Served, field: str) -> None:
    images = [("cat.png", CAT, "image/png"), ("hat.png", HAT, "image/png")]
    response = edit(served.client, images=images, field=field, aspect_ratio="1:1")
    assert response.status_code == 200
    (received,) = served.requests("/v1/")
    assert received.method == "POST"
    assert received.fields == {
        "model": ["nano-banana"],
        "aspect_ratio": ["1:1"],
        "prompt": ["make it a watercolor"],
    }
    assert received.files == [
        UploadedFile(field, "cat.png", "image/png", CAT),
        UploadedFile(field, "hat.png", "image/png", HAT),
    ]
    assert received.headers["authorization"] == f"Bearer {KEY}"
    assert received.json is None


def test_the_key_never_shows_in_a_record(served: Served) -> None:
    edit(served.client, headers=bearer("sk-very-secret"))
    (received,) = served.sandbox.received
    assert received.headers["authorization"] == "Bearer sk-very-secret"
    assert "sk-very-secret" not in repr(received)
    assert "sk-very-secret" not in repr(received.headers)


@pytest.mark.parametrize(
    ("model", "ratio", "size", "expected"),
    [
        ("nano-banana", "16:9", None, (1344, 768, "PNG")),
        ("nano-banana", "16:9", "4K", (1344, 768, "PNG")),  # 2.5 ignores the size
        ("nano-banana-hd", "21:9", "2K", (1536, 672, "PNG")),
        ("gemini-2.5-flash-image-preview", "9:16", None, (768, 1344, "PNG")),
        ("nano-banana", None, None, (1024, 1024, "PNG")),  # generate with no ratio: 1:1
        ("gemini-3-pro-image-preview", "16:9", "4K", (5504, 3072, "JPEG")),
        ("nano-banana-pro", "9:16", "1K", (768, 1376, "JPEG")),
        ("nano-banana-2", "3:2", "2K", (2528, 1696, "JPEG")),
        ("gemini-3.1-flash-image-preview", "4:5", None, (928, 1152, "JPEG")),
        ("nano-banana-2-4k", "1:1", None, (4096, 4096, "JPEG")),  # the suffix sets 4K
        ("nano-banana-2-2k", "5:4", None, (2304, 1856, "JPEG")),
        ("nano-banana-2-2k", "5:4", "1K", (1152, 928, "JPEG")),  # an explicit size wins
    ],
)
def test_generation_sizes_follow_the_tables(
    served: Served, model: str, ratio: str | None, size: str | None, expected: tuple[int, int, str]
) -> None:
    body: dict[str, Any] = {"model": model, "response_format": "b64_json"}
    if ratio:
        body["aspect_ratio"] = ratio
    if size:
        body["image_size"] = size
    response = generate(served.client, **body)
    assert response.status_code == 200, response.text
    (item,) = response.json()["data"]
    assert shape(base64.b64decode(item["b64_json"])) == expected


@pytest.mark.parametrize(
    ("model", "image", "expected"),
    [
        ("nano-banana-2", CAT, (1200, 896, "JPEG")),  # 640x480 is 4:3
        ("gemini-2.5-flash-image", PERSON, (864, 1184, "PNG")),  # 480x640 is 3:4
        ("nano-banana-pro", HAT, (1024, 1024, "JPEG")),  # 512x512 is 1:1
    ],
)
def test_an_edit_with_no_ratio_follows_the_first_image(
    served: Served, model: str, image: bytes, expected: tuple[int, int, str]
) -> None:
    images = [("in", image, "image/png"), ("other", DOG, "image/jpeg")]
    url = only_url(edit(served.client, model=model, images=images))
    assert shape(served.client.get(url).content) == expected


def test_an_edit_visibly_relates_to_its_input(served: Served) -> None:
    def result(prompt: str, images: list[tuple[str, bytes, str]]) -> Image.Image:
        response = edit(served.client, prompt=prompt, images=images, response_format="b64_json")
        return opened(base64.b64decode(response.json()["data"][0]["b64_json"])).convert("RGB")

    cat = [("cat.png", CAT, "image/png")]
    night = ImageStat.Stat(result("the same cat at night", cat)).mean
    day = ImageStat.Stat(opened(CAT).convert("RGB")).mean
    assert sum(night) < 0.6 * sum(day)
    assert night[2] > night[0]  # blue over red
    alone = result("add a hat", cat)
    with_hat = result("add a hat", [*cat, ("hat.png", HAT, "image/png")])
    # The reference is inset at the top right; the rest of the picture is the same.
    box = (alone.width * 3 // 4, 0, alone.width, alone.height // 4)
    assert alone.crop(box).tobytes() != with_hat.crop(box).tobytes()
    left = (0, alone.height // 3, alone.width // 2, alone.height * 2 // 3)
    assert alone.crop(left).tobytes() == with_hat.crop(left).tobytes()


def test_the_same_request_gives_the_same_bytes(serve: Callable[..., Served]) -> None:
    # Two sandboxes, so that the second answer is drawn again, not the first one kept.
    first, second = (
        edit(serve().client, response_format="b64_json").json()["data"][0]["b64_json"]
        for _ in range(2)
    )
    assert first == second


def test_generations_take_json_and_n(serve: Callable[..., Served]) -> None:
    served = serve(clock=FakeClock())
    response = generate(served.client, n=2, model="nano-banana-pro", aspect_ratio="3:2")
    assert response.status_code == 200
    body = response.json()
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2240, "total_tokens": 2243}
    images = [served.client.get(item["url"]).content for item in body["data"]]
    assert [shape(data) for data in images] == [(1264, 848, "JPEG")] * 2
    assert images[0] != images[1]
    assert [item["revised_prompt"] for item in body["data"]] == ["a red banana"] * 2
    (received,) = served.sandbox.received[:1]
    assert received.path == "/v1/images/generations"
    assert received.json == {
        "model": "nano-banana-pro",
        "prompt": "a red banana",
        "n": 2,
        "aspect_ratio": "3:2",
    }


def test_models_are_listed(served: Served) -> None:
    response = served.client.get("/v1/models", headers=bearer())
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [model["id"] for model in body["data"]] == [
        "nano-banana",
        "nano-banana-hd",
        "gemini-2.5-flash-image",
        "gemini-2.5-flash-image-preview",
        "nano-banana-pro",
        "nano-banana-2",
        "nano-banana-2-2k",
        "nano-banana-2-4k",
        "gemini-3-pro-image-preview",
        "gemini-3.1-flash-image-preview",
    ]
    assert body["data"][0] == {"id": "nano-banana", "object": "model", "owned_by": "google"}


INVALID_TOKEN = {
    "message": "invalid token",
    "type": "new_api_error",
    "param": "",
    "code": "invalid_api_key",
}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "right"}, bearer("wrong"), {"Authorization": "Basic right"}]
)
def test_openai_needs_a_known_bearer_key(
    serve: Callable[..., Served], headers: dict[str, str]
) -> None:
    served = serve(keys=frozenset({"right"}))
    for response in (
        edit(served.client, headers=headers),
        served.client.get("/v1/models", headers=headers),
    ):
        assert response.status_code == 401
        assert error_of(response) == INVALID_TOKEN
    assert edit(served.client, headers=bearer("right")).status_code == 200


def test_any_key_is_accepted_without_a_key_list(served: Served) -> None:
    assert edit(served.client, headers=bearer("anything")).status_code == 200
    assert edit(served.client, headers={"Authorization": "Bearer"}).status_code == 401


def _bad(param: str, message: str) -> dict[str, str]:
    return {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": "invalid_request",
    }


@pytest.mark.parametrize(
    ("changes", "status", "expected"),
    [
        ({"prompt": None}, 400, _bad("prompt", "prompt is required")),
        ({"images": []}, 400, _bad("image", "image is required")),
        ({"model": ""}, 400, _bad("model", "model is required")),
        (
            {"aspect_ratio": "auto"},
            400,
            _bad(
                "aspect_ratio",
                "aspect_ratio must be one of 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, "
                "21:9, got 'auto'",
            ),
        ),
        (
            {"image_size": "4k"},
            400,
            _bad("image_size", "image_size must be one of 1K, 2K, 4K, got '4k'"),
        ),
        ({"n": "5"}, 400, _bad("n", "n must be an integer from 1 to 4, got 5")),
        ({"n": "0"}, 400, _bad("n", "n must be an integer from 1 to 4, got 0")),
        (
            {"response_format": "png"},
            400,
            _bad("response_format", "response_format must be url or b64_json, got 'png'"),
        ),
        (
            {"images": [("cat.png", CAT, "image/png"), ("notes.pdf", b"%PDF-1.7", "image/png")]},
            400,
            _bad(
                "image",
                "image 2 (notes.pdf) is not a PNG, JPEG or WebP image; send PNG, JPEG or WebP",
            ),
        ),
        (
            {"images": [("cut.png", CAT[:200], "image/png")]},
            400,
            None,
        ),
        (
            {"model": "dall-e-3"},
            503,
            {
                "message": "no available channel for model dall-e-3 under group default",
                "type": "new_api_error",
                "param": "",
                "code": "model_not_found",
            },
        ),
    ],
)
def test_openai_rejects_bad_fields(
    served: Served, changes: dict[str, Any], status: int, expected: dict[str, str] | None
) -> None:
    response = edit(served.client, **changes)
    assert response.status_code == status
    error = error_of(response)
    if expected is None:  # a damaged upload: the decoder's words, the part named
        assert error["param"] == "image"
        assert error["message"].startswith("image 1 (cut.png) is a damaged image")
    else:
        assert error == expected


def test_generations_reject_a_body_that_is_not_json(served: Served) -> None:
    response = served.client.post(
        "/v1/images/generations",
        headers={**bearer(), "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == ""
    assert error["message"].startswith("invalid request: the body is not valid JSON")


def test_a_truncated_multipart_body_is_rejected(served: Served) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nnano-banana'
    response = served.client.post(
        "/v1/images/edits",
        headers={**bearer(), "Content-Type": "multipart/form-data; boundary=b"},
        content=body,
    )
    assert response.status_code == 400
    assert error_of(response)["message"] == (
        "could not read the multipart body: the multipart body ends without its closing "
        "boundary (truncated?)"
    )


def test_unknown_paths_answer_in_each_servers_shape(served: Served) -> None:
    openai = served.client.post("/v1/images/variations", headers=bearer())
    assert openai.status_code == 404
    assert error_of(openai) == {
        "message": "Invalid URL (POST /v1/images/variations)",
        "type": "invalid_request_error",
        "param": "",
        "code": "invalid_url",
    }
    duomi = served.client.get("/api/gemini/nano-banana-edit", headers=RAW)
    assert duomi.status_code == 404
    assert duomi.json() == {"code": 404, "msg": "route not found: /api/gemini/nano-banana-edit"}
    other = served.client.get("/nothing")
    assert (other.status_code, other.text) == (404, "404 page not found")
    index = served.client.get("/")
    assert index.status_code == 200
    assert index.text.startswith("nanoedit sandbox")


# --- duomi -----------------------------------------------------------------------------------


def test_duomi_submit_answers_a_task_id(served: Served) -> None:
    response = submit(served.client, image_urls=[f"{served.base_url}/samples/cat.png"])
    assert response.status_code == 200
    body = response.json()
    assert TASK_ID.fullmatch(body["data"]["task_id"])
    assert body == {
        "code": 200,
        "msg": "success",
        "data": {"task_id": body["data"]["task_id"]},
        "exec_time": 0.05,
        "ip": "127.0.0.1",
    }


@pytest.mark.parametrize("value", [None, f"Bearer {KEY}", "bearer right", "wrong", "Bearer right"])
def test_duomi_needs_the_raw_key(serve: Callable[..., Served], value: str | None) -> None:
    served = serve(keys=frozenset({"right"}))
    headers = {} if value is None else {"Authorization": value}
    body = {"model": DUOMI_FLASH, "prompt": "p", "image_urls": ["https://a/b.png"]}
    response = served.client.post(EDIT_PATH, headers=headers, json=body)
    assert response.status_code == 401
    assert response.json() == {"code": 401, "msg": "invalid api key"}
    task_id = task_of(served.client.post(EDIT_PATH, headers={"Authorization": "right"}, json=body))
    polled = served.client.get(f"/api/gemini/nano-banana/{task_id}", headers=headers)
    assert (polled.status_code, polled.json()) == (401, {"code": 401, "msg": "invalid api key"})


RATIO_MESSAGE = (
    "aspect_ratio must be auto or one of 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9, "
    "got '7:3'"
)
LINK_MESSAGE = (
    "is not an http(s) link; base64 and data URIs are not supported, upload the image and "
    "pass its URL"
)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prompt": ""}, "prompt is required"),
        ({"image_urls": []}, "image_urls is required"),
        ({"image_urls": None}, "image_urls is required"),
        ({"image_urls": "https://a/b.png"}, "image_urls must be an array of image links"),
        (
            {"image_urls": [f"https://a/{i}.png" for i in range(11)]},
            "image_urls accepts at most 10 images, got 11",
        ),
        (
            {"image_urls": ["https://a/b.png", "data:image/png;base64,iVBORw0"]},
            f"image_urls[1] {LINK_MESSAGE}",
        ),
        ({"image_urls": ["iVBORw0KGgoAAAANSUhEUgAA"]}, f"image_urls[0] {LINK_MESSAGE}"),
        ({"image_urls": ["ftp://a/b.png"]}, f"image_urls[0] {LINK_MESSAGE}"),
        (
            {"model": "nano-banana"},
            "unsupported model: nano-banana; use one of gemini-3-pro-image-preview, "
            "gemini-3.1-flash-image-preview",
        ),
        # Its 2.5 model went with Google's, shut down on 2026-10-02.
        (
            {"model": "gemini-2.5-flash-image"},
            "unsupported model: gemini-2.5-flash-image; use one of gemini-3-pro-image-preview, "
            "gemini-3.1-flash-image-preview",
        ),
        ({"model": ""}, "model is required"),
        ({"aspect_ratio": "7:3"}, RATIO_MESSAGE),
        ({"image_size": "2k"}, "image_size must be one of 1K, 2K, 4K (capital K), got '2k'"),
    ],
)
def test_duomi_rejects_bad_bodies_with_http_200(
    served: Served, changes: dict[str, Any], message: str
) -> None:
    body = {"image_urls": ["https://example.com/a.png"], **changes}
    body = {name: value for name, value in body.items() if value is not None}
    response = submit(served.client, **body)
    assert response.status_code == 200
    assert response.json() == {"code": 400, "msg": message, "exec_time": 0.05, "ip": "127.0.0.1"}


def test_duomi_task_moves_on_by_the_clock(serve: Callable[..., Served]) -> None:
    clock = FakeClock()
    served = serve(clock=clock, task_seconds=10)
    task_id = task_of(submit(served.client, image_urls=[f"{served.base_url}/samples/dog.jpg"]))
    first = poll(served.client, task_id)
    created = first["data"]["create_time"]
    assert created.isdigit()

    def expected(state: str, status: str, after: int, data: Any = None) -> dict[str, Any]:
        return {
            "code": 200,
            "msg": "success",
            "data": {
                "task_id": task_id,
                "state": state,
                "data": data,
                "create_time": created,
                "update_time": str(int(created) + after),
                "msg": "",
                "status": status,
                "action": "generate",
            },
            "exec_time": 0.05,
            "ip": "127.0.0.1",
        }

    assert first == expected("pending", "1", 0)
    clock.advance(4.9)
    assert poll(served.client, task_id) == expected("pending", "1", 0)
    clock.advance(0.1)
    assert poll(served.client, task_id) == expected("running", "2", 5)
    clock.advance(4.9)
    assert poll(served.client, task_id) == expected("running", "2", 5)
    clock.advance(0.1)
    done = poll(served.client, task_id)
    images = done["data"]["data"]["images"]
    assert done == expected("succeeded", "3", 10, {"images": images, "description": ""})
    (image,) = images
    assert image["file_name"] == "output.jpeg"
    assert image["url"].startswith(f"{served.base_url}/files/")
    assert shape(served.client.get(image["url"]).content) == (1200, 896, "JPEG")
    # Later polls repeat the same result.
    clock.advance(100)
    assert poll(served.client, task_id)["data"]["data"]["images"] == images


def test_duomi_unknown_task_is_a_404_code_in_http_200(served: Served) -> None:
    response = served.client.get("/api/gemini/nano-banana/" + "0" * 32, headers=RAW)
    assert response.status_code == 200
    assert response.json() == {"code": 404, "msg": "task not found"}


@pytest.mark.parametrize(
    ("model", "ratio", "size", "expected"),
    [
        # duomi honours image_size for Pro alone (its seed): Nano Banana 2 renders 1K.
        (DUOMI_FLASH, None, "4K", (1024, 1024, "JPEG")),  # a generation with no ratio: 1:1
        (DUOMI_FLASH, "auto", None, (1024, 1024, "JPEG")),
        (DUOMI_FLASH, "21:9", "4K", (1584, 672, "JPEG")),
        (DUOMI_PRO, "2:3", "2K", (1696, 2528, "JPEG")),
        (DUOMI_PRO, None, "4K", (4096, 4096, "JPEG")),
    ],
)
def test_duomi_generate_sizes(
    served: Served, model: str, ratio: str | None, size: str | None, expected: tuple[int, int, str]
) -> None:
    body = {"model": model, "prompt": "a cat"}
    if ratio:
        body["aspect_ratio"] = ratio
    if size:
        body["image_size"] = size
    task_id = task_of(served.client.post(GENERATE_PATH, headers=RAW, json=body))
    data = poll(served.client, task_id)["data"]
    assert data["state"] == "succeeded"
    (image,) = data["data"]["images"]
    assert image["file_name"] == f"output.{'png' if expected[2] == 'PNG' else 'jpeg'}"
    assert shape(served.client.get(image["url"]).content) == expected


def test_duomi_fetches_its_own_urls_without_a_socket(serve: Callable[..., Served]) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> tuple[bytes, str]:
        fetched.append(url)
        raise AssertionError("own URLs must not be fetched")

    served = serve(fetch=fetch)
    result = only_url(edit(served.client, images=[("hat.png", HAT, "image/png")]))
    urls = [f"{served.base_url}/samples/person.png", result]
    task_id = task_of(submit(served.client, image_urls=urls))
    data = poll(served.client, task_id)["data"]
    assert data["state"] == "succeeded", data["msg"]
    assert fetched == []
    # Neither input was asked for over HTTP: only the client's own requests are recorded.
    assert [r.path for r in served.sandbox.received if r.method == "GET"] == [
        f"/api/gemini/nano-banana/{task_id}"
    ]
    # person.png is 480x640, so the output is 3:4.
    url = data["data"]["images"][0]["url"]
    assert shape(served.client.get(url).content) == (896, 1200, "JPEG")


def test_duomi_hands_foreign_urls_to_fetch(serve: Callable[..., Served]) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> tuple[bytes, str]:
        fetched.append(url)
        return DOG, "image/jpeg"

    served = serve(fetch=fetch)
    task_id = task_of(
        submit(served.client, image_urls=["https://cdn.example/a.jpg", "http://b.example/c"])
    )
    data = poll(served.client, task_id)["data"]
    assert data["state"] == "succeeded"
    assert fetched == ["https://cdn.example/a.jpg", "http://b.example/c"]


def test_a_failed_fetch_ends_the_task_in_error(serve: Callable[..., Served]) -> None:
    def fetch(url: str) -> tuple[bytes, str]:
        if "broken" in url:
            raise OSError("connection refused")
        return b"<html>not an image</html>", "text/html"

    served = serve(fetch=fetch)
    for url, message in [
        (
            "https://a.example/broken.png",
            "failed to download image_urls[1] https://a.example/broken.png: connection refused",
        ),
        (
            "https://a.example/page",
            "image_urls[1] https://a.example/page is not a PNG, JPEG or WebP image",
        ),
    ]:
        urls = [f"{served.base_url}/samples/cat.png", url]
        task_id = task_of(submit(served.client, image_urls=urls))
        data = poll(served.client, task_id)["data"]
        assert (data["state"], data["status"], data["data"], data["msg"]) == (
            "error",
            "4",
            None,
            message,
        )


def test_a_served_sandbox_downloads_foreign_urls_for_real(serve: Callable[..., Served]) -> None:
    elsewhere = serve()
    served = serve()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}/x.png"
    good = task_of(submit(served.client, image_urls=[f"{elsewhere.base_url}/samples/dog.jpg"]))
    data = poll(served.client, good)["data"]
    assert data["state"] == "succeeded"
    assert [r.path for r in elsewhere.sandbox.received] == ["/samples/dog.jpg"]
    url = data["data"]["images"][0]["url"]
    assert shape(served.client.get(url).content) == (1200, 896, "JPEG")  # dog.jpg is 4:3
    bad = task_of(submit(served.client, image_urls=[dead_url]))
    data = poll(served.client, bad)["data"]
    assert data["state"] == "error"
    assert data["msg"].startswith(f"failed to download image_urls[0] {dead_url}: ")
    missing = task_of(submit(served.client, image_urls=[f"{elsewhere.base_url}/samples/x.png"]))
    assert poll(served.client, missing)["data"]["msg"] == (
        f"failed to download image_urls[0] {elsewhere.base_url}/samples/x.png: HTTP 404"
    )


# --- result files and samples ------------------------------------------------------------------


def test_result_files_expire_by_the_clock(serve: Callable[..., Served]) -> None:
    clock = FakeClock()
    served = serve(clock=clock, file_ttl=60)
    url = only_url(edit(served.client))
    clock.advance(59.9)
    assert served.client.get(url).status_code == 200
    clock.advance(0.1)
    expired = served.client.get(url)
    assert expired.status_code == 403
    assert expired.headers["content-type"] == "application/xml"
    assert expired.text == EXPIRED_XML
    # An expired own URL given to duomi ends its task in error.
    task_id = task_of(submit(served.client, image_urls=[url]))
    assert poll(served.client, task_id)["data"]["msg"] == (
        f"failed to download image_urls[0] {url}: HTTP 403 AccessDenied: Request has expired"
    )


def test_result_urls_must_carry_their_signature(served: Served) -> None:
    url = only_url(edit(served.client))
    path = url.partition("?")[0]
    tampered = re.sub(r"X-Expires=(\d+)", lambda m: f"X-Expires={int(m[1]) + 1}", url)
    for bad in (path, tampered, url.replace(".png?", ".jpeg?")):
        response = served.client.get(bad)
        assert response.status_code == 403
        assert "<Code>AccessDenied</Code>" in response.text
    assert served.client.get(url).status_code == 200


def test_samples_are_served(served: Served) -> None:
    expected = {
        "cat.png": (640, 480, "PNG"),
        "dog.jpg": (800, 600, "JPEG"),
        "hat.png": (512, 512, "PNG"),
        "person.png": (480, 640, "PNG"),
    }
    assert tuple(expected) == SAMPLE_NAMES
    for name, size in expected.items():
        response = served.client.get(f"/samples/{name}")
        data, mime = sample_image(name)
        assert response.status_code == 200
        assert response.headers["content-type"] == mime
        assert response.content == data
        assert shape(data) == size
    assert opened(HAT).mode == "RGBA"
    assert served.client.get("/samples/cow.png").status_code == 404
    with pytest.raises(KeyError):
        sample_image("cow.png")


# --- faults ------------------------------------------------------------------------------------


OPENAI_STATUS_ERRORS = {
    408: ("request timed out while reading the request, please retry", "request_timeout"),
    429: ("rate limit exceeded for the current group, please retry later", "rate_limit_exceeded"),
    500: ("internal server error", "internal_server_error"),
    502: ("bad response status code 502 from upstream", "bad_response_status_code"),
    503: ("upstream service temporarily unavailable, please retry later", "service_unavailable"),
    504: ("upstream request timed out", "gateway_timeout"),
}
DUOMI_STATUS_MESSAGES = {
    408: "request timeout",
    429: "too many requests, please retry later",
    500: "internal server error",
    502: "bad gateway",
    503: "service temporarily unavailable, please retry later",
    504: "gateway timeout",
}


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_status_faults_answer_in_each_apis_shape(serve: Callable[..., Served], status: int) -> None:
    served = serve(faults=f"{status},{status}")
    openai = edit(served.client)
    assert openai.status_code == status
    message, code = OPENAI_STATUS_ERRORS[status]
    assert error_of(openai) == {
        "message": message,
        "type": "new_api_error",
        "param": "",
        "code": code,
    }
    duomi = submit(served.client, image_urls=["https://a.example/b.png"])
    assert duomi.status_code == status
    assert duomi.json() == {"code": status, "msg": DUOMI_STATUS_MESSAGES[status]}
    retry_after = [openai.headers.get("retry-after"), duomi.headers.get("retry-after")]
    assert retry_after == (["1", "1"] if status == 429 else [None, None])
    # Used up: the next request is answered normally.
    assert edit(served.client).status_code == 200


def test_html502_is_a_proxy_page(serve: Callable[..., Served]) -> None:
    served = serve(faults="html502x2")
    for response in (edit(served.client), submit(served.client, image_urls=["https://a/b"])):
        assert response.status_code == 502
        assert response.headers["content-type"] == "text/html"
        assert "<title>502 Bad Gateway</title>" in response.text
        assert "nginx" in response.text


def test_error200_carries_an_error_in_http_200(serve: Callable[..., Served]) -> None:
    served = serve(faults="error200x2")
    openai = edit(served.client)
    assert openai.status_code == 200
    assert error_of(openai) == {
        "message": "upstream error: do request failed",
        "type": "new_api_error",
        "param": "",
        "code": "do_request_failed",
    }
    duomi = submit(served.client, image_urls=["https://a.example/b.png"])
    assert duomi.status_code == 200
    assert duomi.json() == {
        "code": 500,
        "msg": "upstream service error, please retry",
        "exec_time": 0.05,
        "ip": "127.0.0.1",
    }


def test_result_shape_faults_on_openai(serve: Callable[..., Served]) -> None:
    served = serve(faults="data-uri,empty-url,empty-data,no-data,text-only")
    (item,) = edit(served.client).json()["data"]
    prefix = "data:image/png;base64,"
    assert item["url"].startswith(prefix)
    assert item["b64_json"] == ""
    assert shape(base64.b64decode(item["url"].removeprefix(prefix))) == (1184, 864, "PNG")
    assert edit(served.client).json()["data"] == [
        {"revised_prompt": "make it a watercolor", "url": "", "b64_json": ""}
    ]
    assert edit(served.client).json()["data"] == []
    no_data = edit(served.client).json()
    assert list(no_data) == ["created", "model", "usage"]
    assert edit(served.client).json()["data"] == [
        {"revised_prompt": REFUSAL, "url": "", "b64_json": ""}
    ]
    assert served.sandbox.pending_faults() == []


def test_fewer_answers_one_image_less_than_n_asks_for(serve: Callable[..., Served]) -> None:
    served = serve(faults="fewer")
    answer = edit(served.client, n="3").json()
    assert [shape(served.client.get(item["url"]).content) for item in answer["data"]] == [
        (1184, 864, "PNG"),
        (1184, 864, "PNG"),
    ]
    assert len(edit(served.client, n="3").json()["data"]) == 3  # used up
    assert served.sandbox.pending_faults() == []


@pytest.mark.parametrize(
    ("fault", "inner"),
    [
        ("empty-url", {"images": [{"url": "", "file_name": "output.jpeg"}], "description": ""}),
        ("empty-data", {"images": [], "description": ""}),
        ("fewer", {"images": [], "description": ""}),
        ("no-data", None),
        ("text-only", {"images": [], "description": REFUSAL}),
    ],
)
def test_result_shape_faults_on_duomi(
    serve: Callable[..., Served], fault: str, inner: dict[str, Any] | None
) -> None:
    served = serve(faults=fault)
    task_id = task_of(submit(served.client, path=GENERATE_PATH))
    data = poll(served.client, task_id)["data"]
    assert (data["state"], data["data"]) == ("succeeded", inner)


def test_data_uri_on_duomi(serve: Callable[..., Served]) -> None:
    served = serve(faults="data-uri")
    task_id = task_of(submit(served.client, path=GENERATE_PATH, model=DUOMI_PRO))
    (image,) = poll(served.client, task_id)["data"]["data"]["images"]
    prefix = "data:image/jpeg;base64,"
    assert image["url"].startswith(prefix)
    assert shape(base64.b64decode(image["url"].removeprefix(prefix))) == (1024, 1024, "JPEG")


def test_redirect_leads_to_the_real_file(serve: Callable[..., Served]) -> None:
    served = serve(faults="redirect")
    url = only_url(edit(served.client))
    first = served.client.get(url)
    assert first.status_code == 302
    assert first.headers["location"] == f"{url}&hop=1"
    followed = served.client.get(url, follow_redirects=True)
    assert followed.status_code == 200
    assert shape(followed.content)[2] == "PNG"
    assert [r.query.get("hop") for r in served.requests("/files/")] == [None, None]


def test_mislabeled_serves_the_other_format_under_the_claimed_type(
    serve: Callable[..., Served],
) -> None:
    served = serve(faults="mislabeled,mislabeled")
    png_url = only_url(edit(served.client))
    jpeg_url = only_url(edit(served.client, model="nano-banana-pro"))
    assert ".png?" in png_url and ".jpeg?" in jpeg_url
    png_path = served.client.get(png_url)
    assert png_path.headers["content-type"] == "image/png"
    assert shape(png_path.content) == (1184, 864, "JPEG")
    jpeg_path = served.client.get(jpeg_url)
    assert jpeg_path.headers["content-type"] == "image/jpeg"
    assert shape(jpeg_path.content) == (1200, 896, "PNG")
    assert shape(served.client.get(png_url).content)[2] == "PNG"  # used up


def test_expired_and_html_result_faults(serve: Callable[..., Served]) -> None:
    served = serve(faults="expired,html-result,file:503")
    url = only_url(edit(served.client))
    expired = served.client.get(url)
    assert (expired.status_code, expired.text) == (403, EXPIRED_XML)
    page = served.client.get(url)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.text.startswith("<!DOCTYPE html>")
    unavailable = served.client.get(url)
    assert unavailable.status_code == 503
    assert "<Code>ServiceUnavailable</Code>" in unavailable.text
    assert served.client.get(url).status_code == 200


def test_task_faults(serve: Callable[..., Served]) -> None:
    clock = FakeClock()
    served = serve(faults="task-error,task-stuck,task-unknown", clock=clock)
    failed, stuck, unknown = (task_of(submit(served.client, path=GENERATE_PATH)) for _ in "abc")
    data = poll(served.client, failed)["data"]
    assert (data["state"], data["status"], data["data"], data["msg"]) == (
        "error",
        "4",
        None,
        "image generation failed: the output was blocked by the safety filter (IMAGE_SAFETY)",
    )
    clock.advance(1e6)
    data = poll(served.client, stuck)["data"]
    assert (data["state"], data["status"], data["data"]) == ("running", "2", None)
    assert [poll(served.client, unknown)["data"]["state"] for _ in "ab"] == ["queued", "succeeded"]


def test_phases_direct_faults_to_their_requests(serve: Callable[..., Served]) -> None:
    served = serve(faults="poll:500,submit:429")
    # The model list is neither a submit nor a poll.
    assert served.client.get("/v1/models", headers=bearer()).status_code == 200
    assert submit(served.client, path=GENERATE_PATH).status_code == 429
    task_id = task_of(submit(served.client, path=GENERATE_PATH))
    response = served.client.get(f"/api/gemini/nano-banana/{task_id}", headers=RAW)
    assert (response.status_code, response.json()) == (
        500,
        {"code": 500, "msg": "internal server error"},
    )
    assert poll(served.client, task_id)["data"]["state"] == "succeeded"


def test_faults_are_used_in_plan_order_and_repeat(serve: Callable[..., Served]) -> None:
    served = serve(faults="data-uri,503x2")
    assert only_url(edit(served.client)).startswith("data:")
    assert [edit(served.client).status_code for _ in "abc"] == [503, 503, 200]


def test_result_faults_wait_for_a_request_that_succeeds(serve: Callable[..., Served]) -> None:
    served = serve(faults="empty-data,task-error")
    assert edit(served.client, headers={}).status_code == 401
    assert edit(served.client, prompt=None).status_code == 400
    # task-error is for duomi, so it stays queued while openai requests pass it by.
    assert served.sandbox.pending_faults() == ["submit:empty-datax1", "submit:task-errorx1"]
    assert edit(served.client).json()["data"] == []
    assert edit(served.client).status_code == 200
    task_id = task_of(submit(served.client, path=GENERATE_PATH))
    assert poll(served.client, task_id)["data"]["state"] == "error"


def test_faults_can_be_added_while_running(served: Served) -> None:
    assert edit(served.client).status_code == 200
    served.sandbox.add_faults("api:502")
    assert served.client.get("/v1/models", headers=bearer()).status_code == 502
    assert served.client.get("/v1/models", headers=bearer()).status_code == 200


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("teapot", "unknown fault 'teapot' in 'teapot'; known: 408, 429, 429-date, 500, 502"),
        ("429,later:500", "unknown phase 'later' in fault 'later:500'; known: submit, poll"),
        ("submit:redirect", "fault 'submit:redirect': redirect applies to file, not submit"),
        ("poll:data-uri", "fault 'poll:data-uri': data-uri applies to submit, not poll"),
        ("500x0", "fault '500x0' repeats 0 times; use x1 or more"),
        ("5 00", "fault '5 00' is not of the form [phase:]name[xN]"),
        ("submit:truncated", "fault 'submit:truncated': truncated applies to file, not submit"),
        ("file:bad-json", "fault 'file:bad-json': bad-json applies to api, poll, submit, not file"),
        ("poll:huge", "fault 'poll:huge': huge applies to file, not poll"),
        ("api:huge-chunked", "fault 'api:huge-chunked': huge-chunked applies to file, not api"),
        ("418-html", "unknown fault '418-html' in '418-html'; known: 408,"),
        ("reset-latex2", "unknown fault 'reset-late' in 'reset-latex2'; known: 408,"),
    ],
)
def test_a_bad_fault_plan_names_the_token(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Sandbox(faults=spec)
    sandbox = Sandbox(faults="429")
    with pytest.raises(ValueError, match=re.escape(message)):
        sandbox.add_faults(spec)
    assert sandbox.pending_faults() == ["api:429x1"]  # nothing of a bad spec is added


class DrawingClock:
    """The sandbox's clock, on which drawing an edit takes ``edit_seconds`` and nothing else
    takes any time: the test decides how long a drawing lasts, not the machine's load."""

    def __init__(self, edit_seconds: float) -> None:
        self.now = 100.0
        self.edit_seconds = edit_seconds

    def monotonic(self) -> float:
        return self.now


class TimedRenderer(Renderer):
    """Draws as the sandbox does, and takes ``clock.edit_seconds`` of the clock per edit."""

    def __init__(self, clock: DrawingClock) -> None:
        super().__init__()
        self.clock = clock

    def edit(self, *args: Any, **kwargs: Any) -> Encoded:
        drawn = super().edit(*args, **kwargs)
        self.clock.now += self.clock.edit_seconds
        return drawn


def test_latency_is_the_least_time_of_api_answers_only(serve: Callable[..., Served]) -> None:
    slept: list[float] = []
    clock = DrawingClock(edit_seconds=0.4)
    served = serve(
        latency=1.5, sleep=slept.append, clock=clock.monotonic, renderer=TimedRenderer(clock)
    )
    url = only_url(edit(served.client))
    served.client.get(url)
    served.client.get("/samples/cat.png")
    submit(served.client, path=GENERATE_PATH)
    # Two API answers (the file and the sample wait for nothing); the 0.4 s spent drawing the
    # edit count toward its 1.5 s, the generation drew in no time.
    assert slept == [pytest.approx(1.1), pytest.approx(1.5)]


def test_the_new_fault_tokens_parse_with_their_default_phases() -> None:
    sandbox = Sandbox(
        faults="408,429-date,503-htmlx2,504-empty,reset,file:reset-early,poll:slow,bad-json,"
        "truncated,huge,huge-chunked"
    )
    assert sandbox.pending_faults() == [
        "api:408x1",
        "api:429-datex1",
        "api:503-htmlx2",
        "api:504-emptyx1",
        "api:resetx1",
        "file:reset-earlyx1",
        "poll:slowx1",
        "api:bad-jsonx1",
        "file:truncatedx1",
        "file:hugex1",
        "file:huge-chunkedx1",
    ]
    assert [name for name in FAULT_KINDS if not re.fullmatch(r"[a-z0-9-]+", name)] == []
    for status in (408, 429, 500, 502, 503, 504):
        assert {f"{status}", f"{status}-html", f"{status}-empty"} <= set(FAULT_KINDS)


def test_every_fault_fits_registered_servers() -> None:
    names = {api.name for api in APIS}
    assert len(names) == len(APIS)
    for kind in FAULT_KINDS.values():
        assert kind.apis is None or kind.apis <= names, kind.name
        assert kind.fits(FILES) is kind.on_files
    assert FAULT_KINDS["task-error"].apis == frozenset({"duomi"})
    assert [name for name in names if FAULT_KINDS["502"].fits(name)] == list(names)


NGINX_TITLES = {
    408: "408 Request Time-out",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out",
}


def nginx_page(status: int) -> str:
    title = NGINX_TITLES[status]
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_each_retryable_status_comes_as_an_nginx_page_and_empty(
    serve: Callable[..., Served], status: int
) -> None:
    served = serve(faults=f"{status}-html,{status}-empty,file:{status}-html,file:{status}-empty")
    # A result URL's host shows file faults whether or not the URL is good.
    html, file_html = edit(served.client), served.client.get("/files/any.png")
    empty = submit(served.client, image_urls=["https://a.example/b.png"])
    file_empty = served.client.get("/files/any.png")
    for response in (html, file_html):
        assert response.status_code == status
        assert response.headers["content-type"] == "text/html"
        assert response.text == nginx_page(status)
        assert "retry-after" not in response.headers
    for response in (empty, file_empty):
        assert response.status_code == status
        assert response.headers["content-length"] == "0"
        assert response.content == b""
        assert "content-type" not in response.headers
        assert "retry-after" not in response.headers
    assert served.sandbox.pending_faults() == []


def test_html502_is_502_html(serve: Callable[..., Served]) -> None:
    served = serve(faults="html502,502-html")
    assert [edit(served.client).text for _ in "ab"] == [nginx_page(502)] * 2


def test_retry_after_dates_are_imf_fixdates_of_a_whole_second() -> None:
    # The next whole second, plus 2: between 2 and 3 s ahead, as the date has no fractions.
    assert retry_date(1_700_000_000.2) == "Tue, 14 Nov 2023 22:13:23 GMT"
    assert retry_date(1_700_000_000.0) == "Tue, 14 Nov 2023 22:13:22 GMT"


def test_429_date_sends_retry_after_as_an_http_date_2_s_ahead(
    serve: Callable[..., Served],
) -> None:
    served = serve(faults="429-date,429-date,file:429-date")
    before = time.time()
    openai = edit(served.client)
    duomi = submit(served.client, image_urls=["https://a.example/b.png"])
    download = served.client.get("/files/any.png")
    after = time.time()
    for response in (openai, duomi, download):
        assert response.status_code == 429
        value = response.headers["retry-after"]
        assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", value)
        moment = email.utils.parsedate_to_datetime(value).timestamp()
        assert before + 2 - 0.01 <= moment <= after + 3
    assert error_of(openai)["code"] == "rate_limit_exceeded"
    assert duomi.json() == {"code": 429, "msg": "too many requests, please retry later"}
    assert "<Code>SlowDown</Code>" in download.text


def wait_for_line(served: Served, line: str) -> None:
    """Wait for a line a handler thread logs after the client has moved on."""
    wait_for(lambda: f"{line}\n" in served.log.getvalue(), f"the log line {line!r}", timeout=10)


def raw_exchange(served: Served, data: bytes) -> bytes:
    """Send bytes on a fresh connection and return the first bytes that come back."""
    host, _, port = served.base_url.removeprefix("http://").partition(":")
    with socket.create_connection((host, int(port)), timeout=2) as sock:
        sock.sendall(data)
        return sock.recv(65536)


def test_resets_are_tcp_resets_and_reset_early_reads_no_body(serve: Callable[..., Served]) -> None:
    served = serve(faults="reset,reset-early")
    with pytest.raises(ConnectionResetError):
        raw_exchange(served, b"GET /v1/models HTTP/1.1\r\nHost: sandbox\r\n\r\n")
    # The headers promise a body that never comes: the reset does not wait for it.
    head = b"POST /v1/images/edits HTTP/1.1\r\nHost: sandbox\r\nContent-Length: 1000\r\n\r\n"
    with pytest.raises(ConnectionResetError):
        raw_exchange(served, head)
    assert [(r.method, r.path, r.body_read) for r in served.sandbox.received] == [
        ("GET", "/v1/models", True),
        ("POST", "/v1/images/edits", False),
    ]
    assert served.log.getvalue() == "GET /v1/models reset\nPOST /v1/images/edits reset-early\n"


def test_reset_reads_the_whole_request_then_resets(serve: Callable[..., Served]) -> None:
    served = serve(faults="reset,file:reset")
    with pytest.raises(httpx.ReadError, match=re.escape("Connection reset by peer")):
        edit(served.client)
    (received,) = served.sandbox.received
    assert received.body_read
    assert received.files == [UploadedFile("image", "cat.png", "image/png", CAT)]
    url = only_url(edit(served.client))
    with pytest.raises(httpx.ReadError, match=re.escape("Connection reset by peer")):
        served.client.get(url)
    assert served.client.get(url).status_code == 200
    path = url.removeprefix(served.base_url).partition("?")[0]
    wait_for_line(served, f"GET {path} 200")
    assert served.log.getvalue().splitlines() == [
        "POST /v1/images/edits reset",
        "POST /v1/images/edits 200",
        f"GET {path} reset",
        f"GET {path} 200",
    ]


def test_reset_early_fails_a_large_upload_midway(serve: Callable[..., Served]) -> None:
    served = serve(faults="reset-early,poll:reset-early")
    # More than the sockets' buffers hold, so the reset comes while the body is on its way.
    upload = bytes(16 * 1024 * 1024)
    events: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        served.client.post(
            "/v1/images/edits",
            headers=bearer(),
            content=upload,
            extensions={"trace": lambda name, info: events.append(name)},
        )
    assert str(caught.value) == "Server disconnected without sending a response."
    assert "http11.send_request_body.failed" in events
    assert "http11.send_request_body.complete" not in events
    (received,) = served.sandbox.received
    assert (received.path, received.body_read, received.body) == ("/v1/images/edits", False, b"")
    assert received.headers["content-length"] == str(len(upload))
    # With no body to send, the client is already waiting for the answer when the reset comes.
    with pytest.raises(httpx.ReadError, match=re.escape("Connection reset by peer")):
        served.client.get(f"/api/gemini/nano-banana/{'0' * 32}", headers=RAW)
    assert served.client.get("/v1/models", headers=bearer()).status_code == 200


def test_slow_times_a_client_out_and_never_holds_up_the_server(
    serve: Callable[..., Served],
) -> None:
    served = serve(faults="slow")
    assert served.sandbox.slow_seconds == 30.0
    timed_out: list[float] = []

    def patient_for_half_a_second() -> None:
        timeout = httpx.Timeout(10, read=0.5)
        with httpx.Client(base_url=served.base_url, timeout=timeout) as client:
            start = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                client.get("/v1/models", headers=bearer())
            timed_out.append(time.monotonic() - start)

    thread = threading.Thread(target=patient_for_half_a_second)
    thread.start()
    wait_for(lambda: not served.sandbox.pending_faults(), "the slow fault to be taken")
    # While one request is kept waiting, others are answered: no lock is held meanwhile.
    assert served.client.get("/v1/models", headers=bearer()).status_code == 200
    thread.join()
    assert len(timed_out) == 1 and 0.5 <= timed_out[0] < 5
    start = time.monotonic()
    served.server.close()
    assert time.monotonic() - start < 1
    wait_for_line(served, "GET /v1/models slow (dropped: the server is closing)")


def test_slow_answers_normally_after_its_silence(serve: Callable[..., Served]) -> None:
    served = serve(faults="slow", slow_seconds=0.2)
    start = time.monotonic()
    response = served.client.get("/v1/models", headers=bearer())
    assert time.monotonic() - start >= 0.2
    assert response.status_code == 200
    assert response.json()["data"][0]["id"] == "nano-banana"
    wait_for_line(served, "GET /v1/models 200 slow")
    assert served.log.getvalue() == "GET /v1/models 200 slow\n"


def test_bad_json_is_the_first_half_of_a_real_answer(serve: Callable[..., Served]) -> None:
    served = serve(clock=FakeClock(), faults="bad-json")
    cut = edit(served.client, response_format="b64_json")
    whole = edit(served.client, response_format="b64_json")
    assert whole.status_code == 200
    assert (cut.status_code, cut.headers["content-type"]) == (
        200,
        "application/json; charset=utf-8",
    )
    assert cut.headers["content-length"] == str(len(whole.content) // 2)
    assert cut.content == whole.content[: len(whole.content) // 2]
    with pytest.raises(json.JSONDecodeError):
        cut.json()
    task_id = task_of(submit(served.client, path=GENERATE_PATH))
    served.sandbox.add_faults("poll:bad-json")
    poll_path = f"/api/gemini/nano-banana/{task_id}"
    cut = served.client.get(poll_path, headers=RAW)
    whole = served.client.get(poll_path, headers=RAW)
    assert cut.status_code == 200
    assert cut.content == whole.content[: len(whole.content) // 2]


def test_truncated_sends_half_the_file_and_closes(serve: Callable[..., Served]) -> None:
    served = serve(faults="truncated")
    url = only_url(edit(served.client))
    # A download refused for its signature has no file to cut, so the fault waits.
    assert served.client.get(url.partition("?")[0]).status_code == 403
    with served.client.stream("GET", url) as response:
        assert response.status_code == 200
        size = int(response.headers["content-length"])
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            response.read()
    assert str(caught.value) == (
        "peer closed connection without sending complete message body "
        f"(received {size // 2} bytes, expected {size})"
    )
    assert len(served.client.get(url).content) == size
    path = url.removeprefix(served.base_url).partition("?")[0]
    wait_for_line(served, f"GET {path} 200")
    assert served.log.getvalue().splitlines()[-2:] == [
        f"GET {path} 200 truncated",
        f"GET {path} 200",
    ]
    assert "sig=" not in served.log.getvalue()


@pytest.mark.parametrize("chunked", [False, True])
def test_huge_streams_a_png_signature_and_zeros(
    serve: Callable[..., Served], chunked: bool
) -> None:
    served = serve(faults="huge-chunked" if chunked else "huge", huge_bytes=1_000_000)
    with served.client.stream("GET", "/files/any.png") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        if chunked:
            assert response.headers["transfer-encoding"] == "chunked"
            assert "content-length" not in response.headers
        else:
            assert response.headers["content-length"] == "1000000"
        data = response.read()
    assert data == b"\x89PNG\r\n\x1a\n" + bytes(1_000_000 - 8)


def test_huge_is_256_mib_by_default_and_stops_when_the_client_goes(
    serve: Callable[..., Served],
) -> None:
    served = serve(faults="huge")
    with served.client.stream("GET", "/files/any.png") as response:
        assert response.headers["content-length"] == str(256 * 1024 * 1024)
        read = 0
        for chunk in response.iter_raw():
            read += len(chunk)
            if read >= 3 * 64 * 1024:
                break
    wait_for_line(served, "GET /files/any.png 200 (the client went away)")
    assert served.client.get("/samples/cat.png").status_code == 200


# --- in process ----------------------------------------------------------------------------


def test_in_process_sandbox_answers_with_its_own_host(
    in_process: tuple[Sandbox, httpx.Client],
) -> None:
    sandbox, client = in_process
    response = edit(client, headers=bearer(SANDBOX_KEY))
    url = only_url(response)
    assert url.startswith("http://nanoedit-sandbox.invalid/files/")
    assert shape(client.get(url).content) == (1184, 864, "PNG")
    # duomi in process: the sandbox's own URLs are read from memory.
    task_id = task_of(
        client.post(
            EDIT_PATH,
            headers={"Authorization": SANDBOX_KEY},
            json={
                "model": DUOMI_PRO,
                "prompt": "add the hat",
                "image_urls": [f"{SANDBOX_BASE_URL}/samples/person.png", url],
            },
        )
    )
    polled = client.get(f"/api/gemini/nano-banana/{task_id}", headers={"Authorization": "x"})
    (image,) = polled.json()["data"]["data"]["images"]
    assert shape(client.get(image["url"]).content) == (896, 1200, "JPEG")
    file_path = url.removeprefix(SANDBOX_BASE_URL).partition("?")[0]
    assert [r.path for r in sandbox.received][:2] == ["/v1/images/edits", file_path]


def test_in_process_foreign_urls_get_a_stand_in(in_process: tuple[Sandbox, httpx.Client]) -> None:
    sandbox, client = in_process
    dog = client.get("https://example.com/pets/dog.jpg")
    assert (dog.status_code, dog.headers["content-type"], dog.content) == (200, "image/jpeg", DOG)
    photo = client.get("https://example.com/photo.webp")
    assert photo.headers["content-type"] == "image/webp"
    assert shape(photo.content) == (800, 600, "WEBP")
    assert client.get("https://example.com/photo.webp").content == photo.content
    assert shape(client.get("https://example.com/x").content) == (800, 600, "PNG")
    assert sandbox.received == []
    with pytest.raises(httpx.ConnectError):
        client.post("https://api.example.com/v1/images/edits")
    # A duomi task in process reads foreign URLs the same way.
    task_id = task_of(submit(client, image_urls=["https://example.com/dog.jpg"]))
    data = poll(client, task_id)["data"]
    assert shape(client.get(data["data"]["images"][0]["url"]).content) == (1200, 896, "JPEG")


def test_settings_that_change_at_run_time() -> None:
    clock = FakeClock()
    sandbox = Sandbox(keep_received=2, clock=clock)
    with httpx.Client(transport=SandboxTransport(sandbox), base_url=SANDBOX_BASE_URL) as client:
        for name in SAMPLE_NAMES:
            client.get(f"/samples/{name}")
        assert [r.path for r in sandbox.received] == ["/samples/hat.png", "/samples/person.png"]
        sandbox.task_seconds = 30
        task_id = task_of(submit(client, path=GENERATE_PATH))
        clock.advance(29)
        assert poll(client, task_id)["data"]["state"] == "running"
        clock.advance(1)
        assert poll(client, task_id)["data"]["state"] == "succeeded"


def test_a_socket_fault_drops_the_connection(serve: Callable[..., Served]) -> None:
    class Dropping(Sandbox):
        def handle(self, request: SandboxRequest) -> SandboxResponse:
            answer = super().handle(request)
            answer.fault = "disconnect"
            return answer

    sandbox = Dropping()
    with (
        SandboxServer(sandbox) as server,
        httpx.Client(base_url=server.base_url, verify=TLS) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        client.get("/samples/cat.png")
    transport = SandboxTransport(sandbox)
    with (
        httpx.Client(transport=transport, base_url=SANDBOX_BASE_URL) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        client.get("/samples/cat.png")


def traced(events: list[str]) -> dict[str, Any]:
    return {"trace": lambda name, info: events.append(name)}


def test_in_process_resets_raise_what_a_socket_client_sees() -> None:
    sandbox = Sandbox(faults="reset,reset-early,reset-early")
    with httpx.Client(transport=SandboxTransport(sandbox), base_url=SANDBOX_BASE_URL) as client:
        events: list[str] = []
        with pytest.raises(httpx.ReadError) as reset:
            client.post("/v1/images/generations", json={}, extensions=traced(events))
        assert str(reset.value) == "[Errno 104] Connection reset by peer"
        assert "http11.send_request_body.complete" in events
        with pytest.raises(httpx.ReadError):
            client.get("/v1/models")
        events.clear()
        with pytest.raises(httpx.RemoteProtocolError) as early:
            client.post(
                "/v1/images/edits", content=bytes(5 * 1024 * 1024), extensions=traced(events)
            )
        assert str(early.value) == "Server disconnected without sending a response."
        assert "http11.send_request_body.failed" in events
        assert "http11.send_request_body.complete" not in events
    assert [(r.path, r.body_read, len(r.body)) for r in sandbox.received] == [
        ("/v1/images/generations", True, 2),
        ("/v1/models", False, 0),
        ("/v1/images/edits", False, 0),
    ]


def test_in_process_slow_waits_or_times_out_by_the_read_timeout() -> None:
    slept: list[float] = []
    sandbox = Sandbox(faults="slow,slow")
    transport = SandboxTransport(sandbox, sleep=slept.append)
    timeout = httpx.Timeout(10, read=0.5)
    with httpx.Client(transport=transport, base_url=SANDBOX_BASE_URL, timeout=timeout) as client:
        with pytest.raises(httpx.ReadTimeout, match=r"^timed out$"):
            client.get("/v1/models", headers=bearer())
        assert slept == [0.5]
        response = client.get("/v1/models", headers=bearer(), timeout=None)
        assert response.status_code == 200
        assert slept == [0.5, 30.0]


def test_in_process_truncated_breaks_off_halfway(in_process: tuple[Sandbox, httpx.Client]) -> None:
    sandbox, client = in_process
    url = only_url(edit(client))
    size = len(client.get(url).content)
    sandbox.add_faults("truncated")
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(size)
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            response.read()
    assert str(caught.value) == (
        "peer closed connection without sending complete message body "
        f"(received {size // 2} bytes, expected {size})"
    )


def test_in_process_huge_streams_without_holding_the_body(
    in_process: tuple[Sandbox, httpx.Client],
) -> None:
    sandbox, client = in_process
    sandbox.add_faults("huge,huge-chunked")
    with client.stream("GET", "/files/any.png") as response:
        assert response.headers["content-length"] == str(256 * 1024 * 1024)
        chunks = iter(response.iter_raw())
        first, second = next(chunks), next(chunks)
    assert (len(first), len(second)) == (64 * 1024, 64 * 1024)
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    with client.stream("GET", "/files/any.png") as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers


# --- the server ----------------------------------------------------------------------------


def test_many_clients_at_once(served: Served) -> None:
    statuses: list[int] = []

    def one(index: int) -> None:
        with httpx.Client(base_url=served.base_url, timeout=10, verify=TLS) as client:
            statuses.append(generate(client, prompt=f"banana {index}").status_code)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert len(served.sandbox.received) == 8


@pytest.mark.timeout(60)
def test_a_served_sandbox_takes_100_connections_at_once_while_it_is_busy() -> None:
    # Stopped, the server accepts nothing: only its listen backlog holds the connections the
    # kernel completes meanwhile. With socketserver's default of 5, the sixth on waits for
    # TCP to retry (1 s, 3 s, 7 s...) and a wide batch's clients time out or are reset.
    serve = subprocess.Popen(
        [NANOEDIT, "sandbox", "serve", "--port", "0"], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    sockets: list[socket.socket] = []
    try:
        assert serve.stdout is not None
        host, port = serve.stdout.readline().strip().removeprefix("http://").split(":")
        serve.send_signal(signal.SIGSTOP)
        for _ in range(100):
            client = socket.socket()
            client.setblocking(False)
            sockets.append(client)
            assert client.connect_ex((host, int(port))) in (0, errno.EINPROGRESS)
        waiting = {client.fileno(): client for client in sockets}
        poller = select.poll()
        for fd in waiting:
            poller.register(fd, select.POLLOUT)
        deadline = time.monotonic() + 10
        while waiting and time.monotonic() < deadline:
            for fd, _event in poller.poll(100):
                poller.unregister(fd)
                assert waiting.pop(fd).getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        assert not waiting, f"{100 - len(waiting)} of 100 connections made it while stopped"
        serve.send_signal(signal.SIGCONT)
        for client in sockets:
            client.setblocking(True)
            client.settimeout(10)
            client.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n")
        for client in sockets:
            assert client.recv(17) == b"HTTP/1.1 200 OK\r\n"
    finally:
        for client in sockets:
            client.close()
        serve.send_signal(signal.SIGCONT)
        serve.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            serve.communicate(timeout=10)
        serve.kill()
        serve.communicate()
    assert serve.returncode == 0


def test_a_drawing_pool_draws_the_same_bytes_as_the_thread_answering(
    serve: Callable[..., Served],
) -> None:
    here = serve()
    with Renderer(workers=2) as renderer:
        pooled = serve(renderer=renderer)
        assert multiprocessing.active_children() == []  # started on the first drawing only
        for served in (here, pooled):
            served.client.timeout = httpx.Timeout(60)
        answers = [
            (
                edit(served.client, response_format="b64_json").json()["data"],
                generate(served.client, n=2, response_format="b64_json").json()["data"],
            )
            for served in (here, pooled)
        ]
        # The pool grows as drawings wait for it, to 2 at most.
        assert 1 <= len(multiprocessing.active_children()) <= 2
    assert multiprocessing.active_children() == []
    assert answers[0] == answers[1]
    assert [shape(base64.b64decode(item["b64_json"])) for item in answers[1][1]] == [
        (1024, 1024, "PNG")
    ] * 2


def test_repeated_drawings_are_kept_within_their_budget() -> None:
    renderer = Renderer(cache_bytes=60_000)
    first = renderer.generate(Picture("a red banana", (256, 256), "image/png"))
    assert renderer.generate(Picture("a red banana", (256, 256), "image/png")) is first
    assert renderer.kept_bytes == len(first.data)
    for number in range(12):
        renderer.generate(Picture(f"banana {number}", (256, 256), "image/png"))
        assert 0 < renderer.kept_bytes <= 60_000
    again = renderer.generate(Picture("a red banana", (256, 256), "image/png"))
    assert again is not first  # let go to make room, then drawn again
    assert again == first


def test_keep_alive_http_1_1(served: Served) -> None:
    first = served.client.get("/samples/cat.png")
    second = served.client.head("/samples/cat.png")
    assert first.http_version == "HTTP/1.1"
    assert second.headers["content-length"] == first.headers["content-length"]
    assert second.content == b""
    assert served.client.get("/").status_code == 200


@pytest.mark.timeout(30)
def test_serve_forever_logs_requests_but_never_keys() -> None:
    code = (
        "import sys\n"
        "from nanoedit.sandbox import serve_forever\n"
        "serve_forever('127.0.0.1', 0, keys=frozenset({'sk-secret'}), log=sys.stdout)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.fullmatch(r"serving on (http://127\.0\.0\.1:\d+)\n", first)
        assert match is not None, first
        with httpx.Client(base_url=match[1]) as client:
            assert client.get("/v1/models", headers=bearer("sk-secret")).status_code == 200
            assert client.get("/v1/models", headers=bearer("sk-wrong")).status_code == 401
        lines = [process.stdout.readline(), process.stdout.readline()]
        assert lines == ["GET /v1/models 200\n", "GET /v1/models 401\n"]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, err
    assert out == "stopped (SIGINT)\n"
    assert "sk-secret" not in err and "sk-wrong" not in err


def test_an_api_brings_its_own_faults_or_acts_out_shared_ones() -> None:
    own = result_fault("stays-queued", "the task stays queued")
    shared = result_fault("empty-data", "no images")
    kinds = with_api_kinds(CORE_FAULT_KINDS, "other", (own, shared))
    assert kinds["stays-queued"].apis == frozenset({"other"})
    # A shared kind fits no API in the core, and each API that declares it.
    assert CORE_FAULT_KINDS["empty-data"].apis == frozenset()
    assert kinds["empty-data"].apis == frozenset({"other"})
    assert kinds["empty-data"].summary == CORE_FAULT_KINDS["empty-data"].summary
    assert "stays-queued" not in CORE_FAULT_KINDS
    assert [p.kind.name for p in parse_faults("stays-queued,429", kinds)] == ["stays-queued", "429"]
    with pytest.raises(ValueError, match="unknown fault 'stays-queued'"):
        parse_faults("stays-queued")
    clash = replace(CORE_FAULT_KINDS["redirect"], apis=frozenset())
    with pytest.raises(ValueError, match="the other API's fault redirect differs"):
        with_api_kinds(CORE_FAULT_KINDS, "other", (replace(clash, stage=Stage.RESULT),))
