"""The sandbox's emulation of Google's Interactions API, spoken to over real HTTP on loopback:
creates and their answers, the stored timeline, continuations (by id, and by a resent history
whose thought signatures are checked), what is refused, and every status a fault acts out."""

from __future__ import annotations

import base64
import functools
import io
import math
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import Direct as Served
from conftest import Served as CliServed
from conftest import paid, run_cli
from PIL import Image

from nanoedit.sandbox import FAULT_KINDS, sample_image
from nanoedit.sandbox.render import Picture, decode, render_edit

KEY = "gemini-test-key"
CAT, _ = sample_image("cat.png")
HAT, _ = sample_image("hat.png")
FLASH = "gemini-nano-banana-2.1"
PRO = "gemini-3-pro-image"
ID = re.compile(r"[A-Za-z0-9_-]{24}")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
THOUGHT = "**Planning the picture**\n\nI'm working out how to show: "
SIGNATURE_DOCS = "https://ai.google.dev/gemini-api/docs/thought-signatures#model-behavior"


@pytest.fixture
def serve(serve_direct: Callable[..., Served]) -> Callable[..., Served]:
    """Sandboxes taking KEY, each with a client that sends it."""
    return functools.partial(serve_direct, KEY, {"x-goog-api-key": KEY})


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    return serve()


def image_block(data: bytes = CAT, mime: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "data": base64.b64encode(data).decode(), "mime_type": mime}


def create(client: httpx.Client, **body: Any) -> httpx.Response:
    body.setdefault("model", FLASH)
    body.setdefault("input", [image_block(), {"type": "text", "text": "make it night"}])
    return client.post("/v1beta/interactions", json=body)


def image_of(interaction: dict[str, Any]) -> bytes:
    """The one image of an interaction's model_output steps."""
    (image,) = [
        block["data"]
        for step in interaction["steps"]
        if step["type"] == "model_output"
        for block in step.get("content", [])
        if block["type"] == "image"
    ]
    return base64.b64decode(image)


def size_of(data: bytes) -> tuple[int, int, str | None]:
    with Image.open(io.BytesIO(data)) as image:
        return image.width, image.height, image.format


def error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def tokens(text: str) -> int:
    return math.ceil(len(text.encode()) / 4)


def test_a_create_answers_its_output_steps_and_a_get_the_whole_timeline(served: Served) -> None:
    sent = [image_block(), {"type": "text", "text": "make it night"}]
    response = create(
        served.client, input=sent, response_format={"type": "image", "aspect_ratio": "16:9"}
    )
    assert response.status_code == 200
    answer = response.json()
    assert sorted(answer) == ["created", "id", "model", "status", "steps", "updated", "usage"]
    assert ID.fullmatch(answer["id"]) and STAMP.fullmatch(answer["created"])
    assert (answer["status"], answer["model"]) == ("completed", FLASH)
    thought, output = answer["steps"]
    assert sorted(thought) == ["signature", "summary", "type"]
    assert len(base64.b64decode(thought["signature"])) == 48
    words, draft = thought["summary"]
    assert words == {"type": "text", "text": THOUGHT + "make it night"}
    # A draft in the thought's summary: half size, not the answer.
    assert size_of(base64.b64decode(draft["data"])) == (688, 384, "JPEG")
    assert output["type"] == "model_output"
    assert output["content"][0] == {"type": "text", "text": "Here is the edited image."}
    assert output["content"][1]["mime_type"] == "image/jpeg"
    assert size_of(image_of(answer)) == (1376, 768, "JPEG")
    thought_tokens = tokens(THOUGHT + "make it night")
    assert answer["usage"] == {
        "total_input_tokens": 4 + 560,
        "input_tokens_by_modality": [
            {"modality": "text", "tokens": 4}, {"modality": "image", "tokens": 560}
        ],
        "total_output_tokens": 7 + 1120,
        "total_thought_tokens": thought_tokens,
        "total_tokens": 564 + 1127 + thought_tokens,
        "output_tokens_by_modality": [
            {"modality": "text", "tokens": 7}, {"modality": "image", "tokens": 1120}
        ],
    }  # fmt: skip
    stored = served.client.get(f"/v1beta/interactions/{answer['id']}").json()
    assert stored == {**answer, "steps": [{"type": "user_input", "content": sent}, thought, output]}
    # Google's SDK calls /v1, and asks for stream=false.
    again = served.client.get(f"/v1/interactions/{answer['id']}", params={"stream": "false"})
    assert again.json() == stored


def test_the_same_request_draws_what_generate_content_draws(served: Served) -> None:
    interaction = create(served.client, response_format={"type": "image", "image_size": "2K"})
    content = served.client.post(
        f"/v1beta/models/{FLASH}:generateContent",
        json={
            "contents": [{"parts": [
                {"text": "make it night"},
                {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(CAT).decode()}},
            ]}],
            "generationConfig": {"imageConfig": {"imageSize": "2K"}},
        },
    ).json()  # fmt: skip
    part = content["candidates"][0]["content"]["parts"][-1]
    assert image_of(interaction.json()) == base64.b64decode(part["inlineData"]["data"])


def test_an_unstored_interaction_can_be_neither_read_nor_continued(served: Served) -> None:
    answer = create(served.client, store=False).json()
    assert answer["status"] == "completed"
    not_found = error(404, "NOT_FOUND", "Requested entity was not found.")
    got = served.client.get(f"/v1beta/interactions/{answer['id']}")
    assert (got.status_code, got.json()) == (404, not_found)
    continued = create(served.client, input="and a moon", previous_interaction_id=answer["id"])
    assert (continued.status_code, continued.json()) == (404, not_found)
    unknown = create(served.client, input="x", previous_interaction_id="never-made")
    assert (unknown.status_code, unknown.json()) == (404, not_found)


def test_a_continuation_draws_on_the_last_image_with_the_earlier_turns_marked(
    served: Served,
) -> None:
    first = create(served.client).json()
    made = image_of(first)
    continued = create(
        served.client,
        input=[image_block(HAT), {"type": "text", "text": "add a hat"}],
        previous_interaction_id=first["id"],
    ).json()
    assert continued["previous_interaction_id"] == first["id"]
    # What the model draws: the last image, the turn's own, the first turn's mark.
    drawn = render_edit(
        [decode(made), decode(HAT)],
        Picture("add a hat", (1200, 896), "image/jpeg", earlier=("make it night",)),
    )
    assert image_of(continued) == drawn.data
    # Sent again as the user's own image, with no history, it is a first turn: no marks.
    fresh = create(
        served.client,
        input=[
            image_block(made, "image/jpeg"),
            image_block(HAT),
            {"type": "text", "text": "add a hat"},
        ],
    ).json()
    assert (
        image_of(fresh)
        == render_edit(
            [decode(made), decode(HAT)], Picture("add a hat", (1200, 896), "image/jpeg")
        ).data
    )
    assert image_of(fresh) != image_of(continued)
    # The stored continuation's timeline is its own: its input, then its output.
    stored = served.client.get(f"/v1beta/interactions/{continued['id']}").json()
    assert [step["type"] for step in stored["steps"]] == ["user_input", "thought", "model_output"]


def test_a_resent_history_goes_on_as_a_continuation_and_needs_its_signatures(
    served: Served,
) -> None:
    first = create(served.client).json()
    by_id = create(served.client, input="in watercolor", previous_interaction_id=first["id"])
    user = {
        "type": "user_input",
        "content": [image_block(), {"type": "text", "text": "make it night"}],
    }
    turn = {"type": "user_input", "content": [{"type": "text", "text": "in watercolor"}]}
    thought, output = first["steps"]
    resent = create(served.client, input=[user, thought, output, turn], store=False)
    assert resent.status_code == 200, resent.text
    assert image_of(resent.json()) == image_of(by_id.json())
    unsigned = create(served.client, input=[user, output, turn])
    message = (
        "Image part is missing a thought_signature in input step position 2, content position 2. "
        f"Please refer to {SIGNATURE_DOCS} for more details."
    )
    assert (unsigned.status_code, unsigned.json()) == (400, error(400, "INVALID_ARGUMENT", message))
    forged = {**thought, "signature": base64.b64encode(bytes(48)).decode()}
    refused = create(served.client, input=[user, forged, output, turn])
    message = (
        "Thought signature is not valid in input step position 2. "
        f"Please refer to {SIGNATURE_DOCS} for more details."
    )
    assert (refused.status_code, refused.json()) == (400, error(400, "INVALID_ARGUMENT", message))


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"model": "gemini-9-image"}, 404,
         "models/gemini-9-image is not found for API version v1beta, or is not supported for "
         "createInteraction. Call ListModels to see the list of available models and their "
         "supported methods."),
        ({"model": "gemini-2.5-flash-image"}, 404,
         "models/gemini-2.5-flash-image is not found for API version v1beta, or is not supported "
         "for createInteraction. Call ListModels to see the list of available models and their "
         "supported methods."),
        ({"stream": True}, 400,
         "* CreateInteractionRequest.stream: the nanoedit sandbox answers stream: false only "
         "(Google streams server-sent events); send stream: false"),
        ({"response_format": {"type": "image", "aspect_ratio": "7:3"}}, 400,
         "* CreateInteractionRequest.response_format.aspect_ratio: '7:3' is not supported by "
         "gemini-nano-banana-2.1; use one of 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, "
         "21:9, 1:4, 4:1, 1:8, 8:1"),
        ({"model": PRO, "response_format": {"type": "image", "image_size": "512"}}, 400,
         "* CreateInteractionRequest.response_format.image_size: '512' is not supported by "
         "gemini-3-pro-image; use one of 1K, 2K, 4K"),
        ({"response_format": {"type": "image", "mime_type": "image/png"}}, 400,
         "Invalid value at 'response_format.mime_type' (ImageResponseFormatMimeType), "
         "'image/png'"),
        ({"generation_config": {"thinking_level": "max"}}, 400,
         "Invalid value at 'generation_config.thinking_level' (ThinkingLevel), 'max'"),
        ({"input": []}, 400, "* CreateInteractionRequest.input: input is not specified"),
        ({"input": [{"type": "image", "data": "not base64!", "mime_type": "image/png"}]}, 400,
         "Invalid value at 'input[0].content[0].data' (TYPE_BYTES), Base64 decoding failed for "
         "'not base64!'"),
        ({"input": [{"type": "image", "data": base64.b64encode(b"GIF89a").decode(),
                     "mime_type": "image/png"}, {"type": "text", "text": "x"}]}, 400,
         "Unable to process input image. Please retry or report in "
         "https://developers.generativeai.google/guide/troubleshooting"),
        ({"input": [{"type": "text", "text": "x"}, {"type": "user_input", "content": []}]}, 400,
         "* CreateInteractionRequest.input: a list of steps and a list of content blocks "
         "cannot be mixed; send one or the other"),
        ({"temprature": 1}, 400,
         'Invalid JSON payload received. Unknown name "temprature": Cannot find field.'),
        ({"store": "no"}, 400, "Invalid value at 'store' (TYPE_BOOL), 'no'"),
    ],
)  # fmt: skip
def test_what_google_refuses_is_refused_in_its_shape(
    served: Served, body: dict[str, Any], code: int, message: str
) -> None:
    response = create(served.client, **body)
    status = "NOT_FOUND" if code == 404 else "INVALID_ARGUMENT"
    assert (response.status_code, response.json()) == (code, error(code, status, message))


def test_a_key_is_needed_and_a_wrong_one_is_googles_invalid_argument(served: Served) -> None:
    missing = served.client.post("/v1beta/interactions", json={}, headers={"x-goog-api-key": ""})
    assert missing.status_code == 403
    wrong = served.client.post("/v1beta/interactions", json={}, headers={"x-goog-api-key": "x"})
    assert wrong.status_code == 400
    assert wrong.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


@pytest.mark.parametrize(
    ("fault", "status", "steps", "errors"),
    [
        ("interaction-failed", "failed", ["thought"],
         [{"code": "https://generativelanguage.googleapis.com/errors/internal",
           "message": "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting"}]),
        ("interaction-incomplete", "incomplete", ["thought", "model_output"], None),
        ("interaction-budget-exceeded", "budget_exceeded", ["thought"],
         [{"code": "https://generativelanguage.googleapis.com/errors/budget-exceeded",
           "message": "The interaction's budget was used up before it finished."}]),
        ("interaction-cancelled", "cancelled", [], None),
        ("interaction-requires-action", "requires_action", ["thought"], None),
        ("prompt-blocked", "failed", ["model_output"],
         [{"code": "https://generativelanguage.googleapis.com/errors/prohibited-content",
           "message": "The prompt was blocked: PROHIBITED_CONTENT."}]),
        ("image-safety", "completed", ["thought", "model_output"], None),
        ("no-image", "completed", ["thought", "model_output"], None),
        ("text-only", "completed", ["thought", "model_output"], None),
    ],
)  # fmt: skip
def test_each_status_is_a_fault_of_its_own(
    serve: Callable[..., Served],
    fault: str,
    status: str,
    steps: list[str],
    errors: list[dict[str, str]] | None,
) -> None:
    served = serve(faults=fault)
    answer = create(served.client).json()
    assert answer["status"] == status
    assert [step["type"] for step in answer["steps"]] == steps
    assert answer.get("errors") == errors
    images = [
        block
        for step in answer["steps"]
        for block in step.get("content", [])
        if block.get("type") == "image"
    ]
    assert images == []
    assert create(served.client).json()["status"] == "completed"


def test_a_refusal_is_a_step_error_that_names_the_reason(serve: Callable[..., Served]) -> None:
    served = serve(faults="image-safety")
    (_, output) = create(served.client).json()["steps"]
    assert output["content"] == []
    assert output["error"]["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "IMAGE_SAFETY",
            "domain": "generativelanguage.googleapis.com",
        }
    ]
    assert output["error"]["message"].startswith("Unable to show the generated image.")


def test_an_interaction_in_progress_is_completed_when_read_after_the_task_time(
    serve: Callable[..., Served],
) -> None:
    now = [100.0]
    served = serve(faults="interaction-in-progress,interaction-queued", clock=lambda: now[0])
    served.sandbox.task_seconds = 5
    answer = create(served.client).json()
    assert (answer["status"], answer["steps"]) == ("in_progress", [])
    assert "usage" not in answer
    path = f"/v1beta/interactions/{answer['id']}"
    waiting = served.client.get(path).json()
    assert waiting["status"] == "in_progress"
    assert [step["type"] for step in waiting["steps"]] == ["user_input"]
    still = create(served.client, input="x", previous_interaction_id=answer["id"])
    assert (still.status_code, still.json()["error"]["status"]) == (400, "FAILED_PRECONDITION")
    now[0] += 5
    done = served.client.get(path).json()
    assert done["status"] == "completed"
    assert [step["type"] for step in done["steps"]] == ["user_input", "thought", "model_output"]
    assert size_of(image_of(done)) == (1200, 896, "JPEG")
    assert create(served.client).json()["status"] == "queued"


def test_generate_content_leaves_an_interaction_fault_for_an_interaction(
    serve: Callable[..., Served],
) -> None:
    served = serve(faults="interaction-failed")
    generated = served.client.post(
        f"/v1beta/models/{FLASH}:generateContent", json={"contents": [{"parts": [{"text": "x"}]}]}
    )
    assert generated.json()["candidates"][0]["finishReason"] == "STOP"
    assert served.sandbox.pending_faults() == ["submit:interaction-failedx1"]
    assert create(served.client).json()["status"] == "failed"


def test_a_background_interaction_must_be_stored(served: Served) -> None:
    response = create(served.client, background=True, store=False)
    assert response.status_code == 400
    assert create(served.client, background=True).json()["status"] == "in_progress"


def test_creates_are_paid_and_reads_are_not(served: Served) -> None:
    answer = create(served.client).json()
    served.client.get(f"/v1beta/interactions/{answer['id']}")
    counted = paid(CliServed(served.sandbox, ""))
    assert [f"{r.method} {r.path}" for r in counted] == ["POST /v1beta/interactions"]


def test_the_index_and_the_fault_list_name_the_interactions_api(served: Served) -> None:
    index = served.client.get("/").text
    assert (
        "  POST /v1beta/interactions                   JSON: model, input, response_format, store\n"
        "  GET  /v1beta/interactions/ID\n"
    ) in index
    listed = run_cli(["sandbox", "faults"])
    assert listed.exit_code == 0
    width = max(len(name) for name in FAULT_KINDS)
    for name, summary in [
        ("interaction-failed", "Interactions API: status failed, errors[] INTERNAL"),
        ("interaction-incomplete", "Interactions API: status incomplete, words but no image"),
        ("interaction-budget-exceeded", "Interactions API: status budget_exceeded"),
        ("interaction-cancelled", "Interactions API: status cancelled"),
        ("interaction-requires-action", "Interactions API: status requires_action"),
        (
            "interaction-in-progress",
            "Interactions API: status in_progress; a GET finds it completed after task_seconds",
        ),
        (
            "interaction-queued",
            "Interactions API: status queued; a GET finds it completed after task_seconds",
        ),
    ]:
        assert f"{name:<{width}}  submit  {summary}" in listed.stdout.splitlines()
