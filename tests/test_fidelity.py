"""The sandbox against clients nobody on this project wrote: Google's ``google-genai`` SDK on
the Gemini routes, and the ``openai`` SDK on the OpenAI-compatible ones.

Where an SDK and the sandbox disagree, the sandbox is wrong. Every test also checks that the
SDK spoke to the sandbox only, as the tests run with no network.
"""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import OPENAI_KEY, Served, shape

from nanoedit.sandbox import Sandbox, SandboxServer, UploadedFile, sample_image

try:
    import openai
    from google import genai
    from google.genai import errors, types
except ImportError as exc:  # both are in the test extra: pip install -e '.[test]'
    pytest.skip(
        f"the vendors' SDKs are needed ({exc.name} is missing): pip install -e '.[test]'",
        allow_module_level=True,
    )

GEMINI_KEY = "AIza-test-gemini-key-0003"
CAT, _ = sample_image("cat.png")
HAT, _ = sample_image("hat.png")
# Google's lineup as of 2026-12: the sandbox serves the GA ids, all 3.x models that think.
FLASH = "gemini-nano-banana-2.1"
PRO = "gemini-3-pro-image"
SHUT_DOWN = "gemini-2.5-flash-image"
CHAT_ACTIONS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
IMAGE_ACTIONS = ["generateContent", "countTokens", "batchGenerateContent"]

# Hosts the process tried to reach while ``watching`` holds a list (see ``only_loopback``).
_watching: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _watching:
        return
    if event == "socket.getaddrinfo":
        _watching[-1].append(str(args[0]))
    elif event == "socket.connect" and isinstance(args[1], tuple):
        _watching[-1].append(str(args[1][0]))


# An audit hook cannot be removed: it stays, and does nothing unless a test is watching.
sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def only_loopback() -> Iterator[None]:
    """Fail a test whose SDK looked up or connected to any host but the sandbox's."""
    reached: list[str] = []
    _watching.append(reached)
    try:
        yield
    finally:
        _watching.remove(reached)
    assert set(reached) <= {"127.0.0.1"}, reached


@pytest.fixture
def served() -> Iterator[Served]:
    """The sandbox over real HTTP on 127.0.0.1, knowing a Gemini key and an OpenAI one."""
    sandbox = Sandbox(keys=frozenset({GEMINI_KEY, OPENAI_KEY}))
    with SandboxServer(sandbox) as server:
        yield Served(sandbox, server.base_url)


@pytest.fixture
def google(served: Served) -> Iterator[genai.Client]:
    """Google's own client, pointed at the sandbox (retries are off by default)."""
    options = types.HttpOptions(base_url=served.base_url)
    with genai.Client(api_key=GEMINI_KEY, http_options=options) as client:
        yield client


@pytest.fixture
def gateway(served: Served) -> Iterator[openai.OpenAI]:
    """OpenAI's own client, pointed at the sandbox's OpenAI-compatible routes."""
    with openai.OpenAI(
        base_url=served.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0
    ) as client:
        yield client


def image_data(part: types.Part) -> bytes:
    assert part.inline_data is not None and part.inline_data.data is not None
    return part.inline_data.data


# --- google-genai ----------------------------------------------------------------------------


def test_the_watch_sees_each_connection(served: Served) -> None:
    assert httpx.get(served.base_url + "/").status_code == 200
    assert "127.0.0.1" in _watching[-1]


def test_the_sdk_version_is_the_one_these_tests_were_written_for() -> None:
    # google-genai 3.x calls /v1 by default; the sandbox serves its routes there too.
    assert genai.__version__.split(".")[0] == "3"
    assert openai.__version__.split(".")[0] == "3"


def test_genai_edits_an_image(served: Served, google: genai.Client) -> None:
    contents: list[types.PartUnionDict] = [
        types.Part.from_bytes(data=CAT, mime_type="image/png"),
        "make it a watercolor",
    ]
    response = google.models.generate_content(
        model=FLASH,
        contents=contents,
        config=types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            image_config=types.ImageConfig(aspect_ratio="16:9"),
        ),
    )
    assert response.parts is not None
    # A 3.x model thinks first: a thought and its draft image, then the image.
    thought, draft, part = response.parts
    assert (thought.thought, draft.thought, part.thought) == (True, True, None)
    assert part.inline_data is not None and part.inline_data.mime_type == "image/jpeg"
    assert shape(image_data(part)) == (1376, 768, "JPEG")
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == FLASH
    assert response.usage_metadata is not None
    # 5 for the prompt's text and 560 for the image on 3.x; 1120 for the image out.
    assert response.usage_metadata.prompt_token_count == 565
    assert response.usage_metadata.candidates_token_count == 1120
    (received,) = served.sandbox.received
    assert (received.method, received.path) == (
        "POST",
        f"/v1/models/{FLASH}:generateContent",
    )
    assert received.headers["x-goog-api-key"] == GEMINI_KEY
    # The SDK writes inlineData in camelCase with mime_type inside in snake_case, and the
    # bytes in URL-safe base64.
    assert received.json == {
        "contents": [
            {
                "parts": [
                    {
                        "inlineData": {
                            "data": base64.urlsafe_b64encode(CAT).decode(),
                            "mime_type": "image/png",
                        }
                    },
                    {"text": "make it a watercolor"},
                ],
                "role": "user",
            }
        ],
        "generationConfig": {
            "responseModalities": ["IMAGE"],
            "imageConfig": {"aspectRatio": "16:9"},
        },
    }


def test_genai_on_a_3x_model_skips_thoughts_in_text_but_not_in_parts(
    google: genai.Client,
) -> None:
    response = google.models.generate_content(
        model=PRO,
        contents="a red banana",
        config=types.GenerateContentConfig(
            image_config=types.ImageConfig(aspect_ratio="21:9", image_size="2K")
        ),
    )
    # The SDK's text helper leaves the thought text out...
    assert response.text == "Here is the image."
    # ...but its parts keep the thought image: a client must skip it by itself.
    assert response.parts is not None
    assert [part.thought for part in response.parts] == [True, True, None, None]
    draft, final = (part for part in response.parts if part.inline_data is not None)
    assert shape(image_data(draft)) == (792, 336, "JPEG")
    assert shape(image_data(final)) == (3168, 1344, "JPEG")
    assert final.thought_signature is not None and len(final.thought_signature) == 64
    assert response.usage_metadata is not None
    assert response.usage_metadata.thoughts_token_count == 17


def test_genai_reads_blocks(served: Served, google: genai.Client) -> None:
    served.sandbox.add_faults("image-safety,prompt-blocked")
    blocked = google.models.generate_content(model=FLASH, contents="a red banana")
    assert blocked.candidates is not None
    assert blocked.candidates[0].finish_reason == types.FinishReason.IMAGE_SAFETY
    assert blocked.parts is None
    refused = google.models.generate_content(model=FLASH, contents="a red banana")
    assert refused.candidates is None
    assert refused.prompt_feedback is not None
    assert refused.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT
    # The two reasons that say no image came, for no reason of the content.
    served.sandbox.add_faults("no-image,image-other")
    for reason in (types.FinishReason.NO_IMAGE, types.FinishReason.IMAGE_OTHER):
        empty = google.models.generate_content(model=FLASH, contents="a red banana")
        assert empty.candidates is not None
        assert (empty.candidates[0].finish_reason, empty.parts) == (reason, None)


def test_genai_raises_its_own_errors(served: Served, google: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as unknown:
        google.models.generate_content(model="gemini-9-image", contents="a red banana")
    assert (unknown.value.code, unknown.value.status) == (404, "NOT_FOUND")
    # A shut-down model is an unknown one to Google.
    with pytest.raises(errors.ClientError) as shut_down:
        google.models.generate_content(model=SHUT_DOWN, contents="a red banana")
    assert (shut_down.value.code, shut_down.value.status) == (404, "NOT_FOUND")
    options = types.HttpOptions(base_url=served.base_url)
    with (
        genai.Client(api_key="AIza-wrong", http_options=options) as wrong,
        pytest.raises(errors.ClientError) as invalid,
    ):
        wrong.models.generate_content(model=FLASH, contents="a red banana")
    assert (invalid.value.code, invalid.value.status, invalid.value.message) == (
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
    )
    served.sandbox.add_faults("429,503")
    with pytest.raises(errors.ClientError) as throttled:
        google.models.generate_content(model=FLASH, contents="a red banana")
    assert (throttled.value.code, throttled.value.status) == (429, "RESOURCE_EXHAUSTED")
    retry = throttled.value.details["error"]["details"][-1]
    assert retry == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}
    with pytest.raises(errors.ServerError) as overloaded:
        google.models.generate_content(model=FLASH, contents="a red banana")
    assert (overloaded.value.code, overloaded.value.status, overloaded.value.message) == (
        503,
        "UNAVAILABLE",
        "The model is overloaded. Please try again later.",
    )
    # The 403s that are not about the key: no reason, and SERVICE_DISABLED.
    served.sandbox.add_faults("permission-denied,service-disabled")
    with pytest.raises(errors.ClientError) as denied:
        google.models.generate_content(model=FLASH, contents="a red banana")
    assert (denied.value.code, denied.value.status, denied.value.message) == (
        403,
        "PERMISSION_DENIED",
        "The caller does not have permission",
    )
    with pytest.raises(errors.ClientError) as disabled:
        google.models.get(model=FLASH)
    assert (disabled.value.code, disabled.value.status) == (403, "PERMISSION_DENIED")
    info = disabled.value.details["error"]["details"][0]
    assert (info["@type"], info["reason"]) == (
        "type.googleapis.com/google.rpc.ErrorInfo",
        "SERVICE_DISABLED",
    )


def test_genai_chat_goes_on_from_its_own_history_signatures_and_all(
    served: Served, google: genai.Client
) -> None:
    chat = google.chats.create(model=PRO)
    first = chat.send_message([types.Part.from_bytes(data=CAT, mime_type="image/png"), "night"])
    second = chat.send_message("add a moon")
    assert first.parts is not None and second.parts is not None
    made = [part for part in first.parts if part.inline_data is not None and not part.thought]
    (image,) = made
    _, sent = served.sandbox.received
    # The SDK's chat sends the model's turn back: its thoughts too, and every signature as
    # the sandbox gave it, in the SDK's URL-safe base64.
    user, model, new = sent.json["contents"]
    assert [user["role"], model["role"], new["role"]] == ["user", "model", "user"]
    assert image.thought_signature is not None
    sent_back = [
        part for part in model["parts"] if "inlineData" in part and not part.get("thought")
    ]
    assert [part["thoughtSignature"] for part in sent_back] == [
        base64.urlsafe_b64encode(image.thought_signature).decode()
    ]
    assert new["parts"] == [{"text": "add a moon"}]
    final = [part for part in second.parts if part.inline_data is not None and not part.thought]
    assert len(final) == 1 and final[0].thought_signature is not None
    assert shape(image_data(final[0]))[:2] == shape(image_data(image))[:2]


def test_genai_is_refused_a_history_image_without_its_signature(
    google: genai.Client,
) -> None:
    first = google.models.generate_content(model=PRO, contents="a red banana")
    assert first.parts is not None
    model_parts = [
        types.Part(text=part.text, thought_signature=part.thought_signature)
        if part.text is not None
        else types.Part(inline_data=part.inline_data)  # the signature left out
        for part in first.parts
        if not part.thought
    ]
    history = [
        types.Content(role="user", parts=[types.Part(text="a red banana")]),
        types.Content(role="model", parts=model_parts),
        types.Content(role="user", parts=[types.Part(text="make it yellow")]),
    ]
    with pytest.raises(errors.ClientError) as refused:
        google.models.generate_content(model=PRO, contents=history)
    assert (refused.value.code, refused.value.status, refused.value.message) == (
        400,
        "INVALID_ARGUMENT",
        "Image part is missing a thought_signature in content position 2, part position 2. "
        "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures"
        "#model-behavior for more details.",
    )


def test_genai_uploads_a_file_and_uses_it(
    served: Served, google: genai.Client, tmp_path: Path
) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(CAT)
    file = google.files.upload(file=path)
    assert (file.state, file.mime_type, file.size_bytes) == (
        types.FileState.ACTIVE,
        "image/png",
        len(CAT),
    )
    assert file.name is not None and file.uri is not None
    assert file.create_time is not None and file.expiration_time is not None
    assert (file.expiration_time - file.create_time).total_seconds() == 48 * 3600
    assert google.files.get(name=file.name).uri == file.uri
    config = types.GenerateContentConfig(response_modalities=["IMAGE"])
    uploaded: list[types.PartUnionDict] = [file, "at night"]
    by_file = google.models.generate_content(model=FLASH, contents=uploaded, config=config)
    sent: list[types.PartUnionDict] = [
        types.Part.from_bytes(data=CAT, mime_type="image/png"),
        "at night",
    ]
    inline = google.models.generate_content(model=FLASH, contents=sent, config=config)
    assert by_file.parts is not None and inline.parts is not None
    assert [part.thought for part in by_file.parts] == [True, True, None]
    assert image_data(by_file.parts[-1]) == image_data(inline.parts[-1])
    start, data = served.sandbox.received[:2]
    assert (start.path, start.headers["x-goog-upload-command"]) == ("/upload/v1/files", "start")
    assert start.headers["x-goog-upload-header-content-length"] == str(len(CAT))
    assert data.query["upload_id"] and data.body == CAT
    assert data.headers["x-goog-upload-command"] == "upload, finalize"
    used = served.sandbox.received[3].json["contents"][0]["parts"][0]
    assert used == {"fileData": {"file_uri": file.uri, "mime_type": "image/png"}}


def test_genai_sees_an_upload_processing_then_active(tmp_path: Path) -> None:
    now = [1000.0]
    sandbox = Sandbox(keys=frozenset({GEMINI_KEY}), clock=lambda: now[0])
    sandbox.add_faults("upload-processing")
    path = tmp_path / "cat.png"
    path.write_bytes(CAT)
    with (
        SandboxServer(sandbox) as server,
        genai.Client(
            api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=server.base_url)
        ) as google,
    ):
        file = google.files.upload(file=path)
        assert file.state == types.FileState.PROCESSING and file.name is not None
        uploaded: list[types.PartUnionDict] = [file, "at night"]
        with pytest.raises(errors.ClientError) as early:
            google.models.generate_content(model=FLASH, contents=uploaded)
        assert (early.value.code, early.value.status, early.value.message) == (
            400,
            "FAILED_PRECONDITION",
            f"The File {file.name.removeprefix('files/')} is not in an ACTIVE state and usage "
            "is not allowed.",
        )
        now[0] += 3.0
        assert google.files.get(name=file.name).state == types.FileState.ACTIVE
        answer = google.models.generate_content(model=FLASH, contents=uploaded)
        assert answer.parts is not None and shape(image_data(answer.parts[-1]))[2] == "JPEG"


def test_genai_lists_and_deletes_files(google: genai.Client) -> None:
    first = google.files.upload(
        file=io.BytesIO(CAT), config=types.UploadFileConfig(mime_type="image/png")
    )
    second = google.files.upload(
        file=io.BytesIO(HAT), config=types.UploadFileConfig(mime_type="image/png")
    )
    assert [file.name for file in google.files.list()] == [second.name, first.name]
    assert first.name is not None and second.name is not None
    google.files.delete(name=first.name)
    assert [file.name for file in google.files.list()] == [second.name]
    with pytest.raises(errors.ClientError) as gone:
        google.files.get(name=first.name)
    assert (gone.value.code, gone.value.status) == (403, "PERMISSION_DENIED")
    google.files.delete(name=second.name)
    assert list(google.files.list()) == []


def test_genai_gets_and_lists_the_models(google: genai.Client) -> None:
    model = google.models.get(model=PRO)
    assert (model.name, model.display_name, model.thinking) == (
        f"models/{PRO}",
        "Nano Banana Pro",
        True,
    )
    assert model.supported_actions is not None and "generateContent" in model.supported_actions


def test_genai_pages_through_the_model_list(served: Served, google: genai.Client) -> None:
    # Text models, an embedding model and Imagen are listed beside the image models; the SDK
    # follows nextPageToken until the list ends.
    listed = list(google.models.list(config={"page_size": 3}))
    assert [(model.name, model.supported_actions) for model in listed] == [
        ("models/gemini-3-pro", CHAT_ACTIONS),
        ("models/gemini-3-flash", CHAT_ACTIONS),
        ("models/gemini-3-pro-image", IMAGE_ACTIONS),
        ("models/gemini-3.1-flash-image", IMAGE_ACTIONS),
        ("models/gemini-nano-banana-2.1", IMAGE_ACTIONS),
        ("models/gemini-3.1-flash-lite-image", IMAGE_ACTIONS),
        ("models/gemini-embedding-001",
         ["embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"]),
        ("models/imagen-4.0-generate-001", ["predict"]),
    ]  # fmt: skip
    pages = [received.query.get("pageToken") for received in served.sandbox.received]
    assert len(pages) == 3 and pages[0] is None and None not in pages[1:]
    assert {received.query["pageSize"] for received in served.sandbox.received} == {"3"}


# --- openai ----------------------------------------------------------------------------------


def test_openai_edits_an_image_and_reads_the_url(served: Served, gateway: openai.OpenAI) -> None:
    response = gateway.images.edit(
        image=("cat.png", CAT, "image/png"),
        prompt="make it a watercolor",
        model="nano-banana",
        extra_body={"aspect_ratio": "16:9"},
    )
    assert response.data is not None
    (item,) = response.data
    assert (item.b64_json, item.revised_prompt) == ("", "make it a watercolor")
    assert item.url is not None and item.url.startswith(served.base_url + "/files/")
    assert shape(httpx.get(item.url).content) == (1344, 768, "PNG")
    assert response.usage is not None and response.usage.total_tokens == 1553
    received = served.sandbox.received[0]
    assert received.path == "/v1/images/edits"
    assert received.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert received.fields == {
        "prompt": ["make it a watercolor"],
        "model": ["nano-banana"],
        "aspect_ratio": ["16:9"],
    }
    # One image goes as a part named image.
    assert received.files == [UploadedFile("image", "cat.png", "image/png", CAT)]


def test_openai_sends_several_images_as_image_brackets(
    served: Served, gateway: openai.OpenAI
) -> None:
    response = gateway.images.edit(
        image=[("cat.png", CAT, "image/png"), ("hat.png", HAT, "image/png")],
        prompt="add the hat",
        model="nano-banana",
        response_format="b64_json",
    )
    assert response.data is not None
    (item,) = response.data
    assert item.url == "" and item.b64_json
    # cat.png is 640x480: with no ratio the nearest is 4:3.
    assert shape(base64.b64decode(item.b64_json)) == (1184, 864, "PNG")
    (received,) = served.sandbox.received
    assert [(part.field, part.filename, part.data) for part in received.files] == [
        ("image[]", "cat.png", CAT),
        ("image[]", "hat.png", HAT),
    ]
    assert received.fields["response_format"] == ["b64_json"]


def test_openai_generates(served: Served, gateway: openai.OpenAI) -> None:
    response = gateway.images.generate(
        prompt="a red banana",
        model="nano-banana-pro",
        n=2,
        extra_body={"aspect_ratio": "3:2", "image_size": "2K"},
    )
    assert response.data is not None
    urls = [item.url for item in response.data]
    assert all(url is not None for url in urls)
    shapes = {shape(httpx.get(str(url)).content) for url in urls}
    assert shapes == {(2528, 1696, "JPEG")}
    assert response.usage is not None and response.usage.total_tokens == 2243
    received = served.sandbox.received[0]
    assert received.json == {
        "prompt": "a red banana",
        "model": "nano-banana-pro",
        "n": 2,
        "aspect_ratio": "3:2",
        "image_size": "2K",
    }


def test_openai_lists_the_gateway_s_models(served: Served, gateway: openai.OpenAI) -> None:
    assert [model.id for model in gateway.models.list()] == [
        "nano-banana", "nano-banana-hd", "gemini-2.5-flash-image",
        "gemini-2.5-flash-image-preview", "nano-banana-pro", "nano-banana-2",
        "nano-banana-2-2k", "nano-banana-2-4k", "gemini-3-pro-image-preview",
        "gemini-3.1-flash-image-preview",
    ]  # fmt: skip
    served.sandbox.add_faults("lineup:added,lineup:dropped")
    ids = [model.id for model in gateway.models.list()]
    assert ("nano-banana-2" in ids, ids[-1]) == (False, "nano-banana-3")
    assert [received.path for received in served.sandbox.received] == ["/v1/models"] * 2


def test_openai_raises_its_own_errors(served: Served) -> None:
    with (
        openai.OpenAI(base_url=served.base_url + "/v1", api_key="sk-wrong", max_retries=0) as wrong,
        pytest.raises(openai.AuthenticationError) as denied,
    ):
        wrong.images.generate(prompt="a red banana", model="nano-banana")
    assert denied.value.status_code == 401
    assert denied.value.code == "invalid_api_key"
    with (
        openai.OpenAI(base_url=served.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0) as right,
        pytest.raises(openai.InternalServerError) as missing,
    ):
        right.images.generate(prompt="a red banana", model="dall-e-9")
    assert (missing.value.status_code, missing.value.code) == (503, "model_not_found")


# --- openai, against OpenAI's own GPT image models ------------------------------------------


def unknown_parameter(name: str) -> dict[str, Any]:
    """OpenAI's answer to a field its GPT image models do not take."""
    return {
        "error": {
            "message": f"Unknown parameter: '{name}'.",
            "type": "invalid_request_error",
            "param": name,
            "code": "unknown_parameter",
        }
    }


def test_openai_edits_with_a_gpt_image_model_in_base64(
    served: Served, gateway: openai.OpenAI
) -> None:
    response = gateway.images.edit(
        image=[("cat.png", CAT, "image/png"), ("hat.png", HAT, "image/png")],
        prompt="put the hat on the cat",
        model="gpt-image-1.5",
        size="1536x1024",
        quality="low",
    )
    assert response.data is not None
    (item,) = response.data
    assert (item.url, item.revised_prompt) == (None, None)
    assert item.b64_json is not None
    assert shape(base64.b64decode(item.b64_json)) == (1536, 1024, "PNG")
    assert (response.size, response.output_format, response.quality, response.background) == (
        "1536x1024",
        "png",
        "low",
        "opaque",
    )
    assert response.usage is not None
    assert (response.usage.output_tokens, response.usage.input_tokens_details.text_tokens) == (
        408,
        6,
    )
    (received,) = served.sandbox.received
    assert [(part.field, part.filename) for part in received.files] == [
        ("image[]", "cat.png"),
        ("image[]", "hat.png"),
    ]


def test_openai_gpt_image_generates_the_size_and_format_asked(
    served: Served, gateway: openai.OpenAI
) -> None:
    response = gateway.images.generate(
        prompt="a red banana", model="gpt-image-2", size="1024x1536", output_format="jpeg", n=2
    )
    assert response.data is not None and len(response.data) == 2
    for item in response.data:
        assert item.b64_json is not None
        assert shape(base64.b64decode(item.b64_json)) == (1024, 1536, "JPEG")
    # Auto leaves the size to the model: for a text prompt, a square.
    auto = gateway.images.generate(prompt="a red banana", model="gpt-image-2")
    assert auto.data is not None and auto.data[0].b64_json is not None
    assert shape(base64.b64decode(auto.data[0].b64_json)) == (1024, 1024, "PNG")
    assert auto.size == "1024x1024"


def test_openai_gpt_image_turns_down_what_it_does_not_take(
    served: Served, gateway: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as legacy:
        gateway.images.edit(
            image=("cat.png", CAT, "image/png"),
            prompt="x",
            model="gpt-image-1.5",
            response_format="b64_json",
        )
    assert legacy.value.response.json() == unknown_parameter("response_format")
    with pytest.raises(openai.BadRequestError) as gateway_field:
        gateway.images.generate(
            prompt="x", model="gpt-image-1.5", extra_body={"aspect_ratio": "16:9"}
        )
    assert gateway_field.value.response.json() == unknown_parameter("aspect_ratio")
    with pytest.raises(openai.BadRequestError) as size:
        gateway.images.generate(prompt="x", model="gpt-image-1.5", size="2048x2048")
    assert size.value.response.json() == {
        "error": {
            "message": "Invalid value: '2048x2048'. Supported values are: '1024x1024', "
            "'1024x1536', '1536x1024', and 'auto'.",
            "type": "invalid_request_error",
            "param": "size",
            "code": "invalid_value",
        }
    }
    # The gateway's own models still take the gateway's fields.
    kept = gateway.images.generate(
        prompt="x", model="nano-banana", extra_body={"aspect_ratio": "16:9"}
    )
    assert kept.data is not None and kept.data[0].url
