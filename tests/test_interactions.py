"""The gemini backend through Google's Interactions API (``gemini.api interactions``) against
the served sandbox: the exact requests, the same files as ``generateContent``, every status
and error mapped to its exit code, polling, never paying twice, --no-store on both
transports, the dry run, and the setting's own check."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import (
    GEMINI_KEY,
    Served,
    SkippingClock,
    host,
    journal_jobs,
    one_backend_env,
    paid,
    run_cli,
)
from PIL import Image

from nanoedit.sandbox import gemini_interactions, sample_image

CAT = sample_image("cat.png")[0]
HAT = sample_image("hat.png")[0]
FLASH = "gemini-nano-banana-2.1"
ID = "[A-Za-z0-9_-]{24}"
BLOCKED_IMAGE = (
    "Unable to show the generated image. The image was filtered out because it violated "
    "Google's Generative AI Prohibited Use policy. You will not be charged for blocked images. "
    "Try rephrasing the prompt. If you think this was a mistake, send feedback."
)
REFUSAL = (
    "I can't create this image: the request may go against the content policy. "
    "Try describing it differently."
)


def interactions_env(served: Served) -> dict[str, str]:
    return one_backend_env(served, "gemini") | {"NANOEDIT_GEMINI_API": "interactions"}


def matches(message: str, template: str) -> bool:
    """Whether ``message`` is ``template`` with an interaction's id where it says ``{id}``."""
    pattern = re.escape(template).replace(re.escape("{id}"), ID)
    return re.fullmatch(pattern, message) is not None


def last_error(stderr: str) -> str:
    return stderr.strip().splitlines()[-1].removeprefix("error: ")


def test_an_edit_sends_the_images_then_the_prompt_with_googles_revision(
    served: Served, sample: Path
) -> None:
    Path("hat.png").write_bytes(HAT)
    result = run_cli(
        ["edit", "cat.png", "--ref", "hat.png", "-p", "put the hat on", "--ratio", "16:9"],
        env=interactions_env(served),
    )
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    (post,) = served.sandbox.received
    assert (post.method, post.path, post.query) == ("POST", "/v1beta/interactions", {})
    assert post.headers["x-goog-api-key"] == GEMINI_KEY
    assert post.headers["api-revision"] == "2026-05-20"
    assert post.json == {
        "model": FLASH,
        "input": [
            {"type": "image", "data": base64.b64encode(CAT).decode(), "mime_type": "image/png"},
            {"type": "image", "data": base64.b64encode(HAT).decode(), "mime_type": "image/png"},
            {"type": "text", "text": "put the hat on"},
        ],
        "response_format": {"type": "image", "aspect_ratio": "16:9"},
        "store": True,
        "stream": False,
    }
    with Image.open("cat-edit.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (1376, 768))
    # The model's words beside the image are shown; its thought's draft is not saved.
    assert "cat.png: the model says: Here is the edited image." in result.stderr
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat-edit.jpg", "cat.png", "hat.png"]


def test_the_same_edit_gives_the_same_files_either_way(served: Served, sample: Path) -> None:
    Path("hat.png").write_bytes(HAT)
    made: dict[str, dict[str, str]] = {}
    for api in ("generate_content", "interactions"):
        result = run_cli(
            ["edit", "cat.png", "--ref", "hat.png", "-p", "at night", "-n", "2", "--size", "2K",
             "-d", api, "--no-metadata"],
            env=one_backend_env(served, "gemini") | {"NANOEDIT_GEMINI_API": api},
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        made[api] = {
            path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(Path(api).iterdir())
        }
    assert list(made["interactions"]) == ["cat-edit-2.jpg", "cat-edit.jpg"]
    assert made["interactions"] == made["generate_content"]
    with Image.open("interactions/cat-edit.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (2400, 1792))
    paths = [request.path for request in paid(served)]
    assert paths == [f"/v1beta/models/{FLASH}:generateContent"] * 2 + ["/v1beta/interactions"] * 2


def test_count_is_that_many_interactions_and_usage_and_cost_are_kept(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox", "-n", "3", "-m", "nano-banana-2", "--ratio", "1:4"],
        env=interactions_env(served),
    )
    assert (result.exit_code, result.stdout) == (
        0,
        "a-red-fox.jpg\na-red-fox-2.jpg\na-red-fox-3.jpg\n",
    )
    assert [r.path for r in served.sandbox.received] == ["/v1beta/interactions"] * 3
    assert served.sandbox.received[0].json["input"] == [{"type": "text", "text": "a red fox"}]
    for name in ("a-red-fox.jpg", "a-red-fox-3.jpg"):
        with Image.open(name) as image:
            assert image.size == (512, 2048)
    (job,) = journal_jobs()
    assert job.usage is not None
    # Three interactions' counts added: 3 tokens of text in, 1120 tokens of image out each.
    assert (job.usage["total_input_tokens"], job.usage["total_output_tokens"]) == (9, 3 * 1125)
    assert job.cost == pytest.approx(3 * 0.067)


@pytest.mark.parametrize(
    ("fault", "code", "template"),
    [
        ("image-safety", 8,
         "{host} made no image (interaction {id} completed, reason IMAGE_SAFETY): "
         f"{BLOCKED_IMAGE}; rephrase the prompt or change the image"),
        ("image-prohibited", 8,
         "{host} made no image (interaction {id} completed, reason IMAGE_PROHIBITED_CONTENT): "
         f"{BLOCKED_IMAGE}; rephrase the prompt or change the image"),
        ("prompt-blocked", 8,
         "{host} made no image (interaction {id} failed, reason PROHIBITED_CONTENT): The prompt "
         "was blocked: PROHIBITED_CONTENT.; rephrase the prompt or change the image"),
        ("text-only", 8,
         f"{{host}} answered with text but no image: {REFUSAL!r}; rephrase the prompt or change "
         "the image"),
        ("no-image", 5,
         f"{{host}} made no image with {FLASH} (reason NO_IMAGE: \"The model was expected to "
         "generate an image, but none was generated\", in Google's words); that is not a "
         "refusal of the content: try again"),
        ("image-other", 5,
         f"{{host}} made no image with {FLASH} (reason IMAGE_OTHER: \"Image generation stopped "
         "for a reason not otherwise specified\", in Google's words); that is not a refusal "
         "of the content: try again"),
        ("interaction-failed", 5,
         "{host} ended interaction {id} failed: An internal error has occurred. Please retry or "
         "report in https://developers.generativeai.google/guide/troubleshooting [INTERNAL]: "
         "try again, or send it through generateContent (gemini.api generate_content)"),
        ("interaction-incomplete", 5,
         "{host} ended interaction {id} incomplete; the model said: 'I was working on the "
         "picture when the output ran out.': the model stopped before it finished the image "
         "(its output ran out); try again, or make the prompt shorter"),
        ("interaction-budget-exceeded", 5,
         "{host} ended interaction {id} budget_exceeded: The interaction's budget was used up "
         "before it finished. [BUDGET_EXCEEDED]: the interaction's budget ran out before the "
         "image was made; check the project's spend limits in Google AI Studio, then try again"),
        ("interaction-cancelled", 5,
         "{host} ended interaction {id} cancelled: it was cancelled on Google's side (nanoedit "
         "cancels none); send the job again"),
        ("interaction-requires-action", 5,
         "{host} ended interaction {id} requires_action: the model asks for a tool's answer, "
         "and nanoedit declares no tool; try again, or send it through generateContent "
         "(gemini.api generate_content)"),
    ],
)  # fmt: skip
def test_each_status_and_reason_exits_with_its_code_and_says_what_to_do(
    served: Served, sample: Path, fault: str, code: int, template: str
) -> None:
    served.sandbox.add_faults(fault)
    result = run_cli(["edit", "cat.png", "-p", "x", "--json"], env=interactions_env(served))
    message = last_error(result.stderr)
    assert (result.exit_code, len(paid(served))) == (code, 1), result.stderr
    assert matches(message, template.replace("{host}", host(served))), message
    error = json.loads(result.stdout)["error"]
    assert (error["exit_code"], error["message"]) == (code, message)
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat.png"]


@pytest.mark.parametrize(
    ("args", "fault", "code", "said"),
    [
        ([], "invalid-argument", 5,
         "{host} answered HTTP 400: Request contains an invalid argument. [INVALID_ARGUMENT]"),
        ([], "key-rejected", 3,
         "{host} rejected the gemini API key (API key not valid. Please pass a valid API key. "
         "[INVALID_ARGUMENT]); the key comes from NANOEDIT_GEMINI_API_KEY, which overrides the "
         "config file: unset NANOEDIT_GEMINI_API_KEY or fix it"),
        ([], "permission-denied", 5,
         "{host} answered HTTP 403: The caller does not have permission [PERMISSION_DENIED]; "
         "Google turned the request down, not the key (a key it rejects is API_KEY_INVALID): "
         "the key's project may not have access to this model (some are kept for projects that "
         "used them before), or to a file the request names; choose another --model, or check "
         "the project in Google AI Studio"),
        (["-m", "gemini-9-image"], "", 5,
         "{host} does not serve gemini-9-image on the gemini backend (models/gemini-9-image is "
         "not found for API version v1beta, or is not supported for createInteraction. Call "
         "ListModels to see the list of available models and their supported methods. "
         "[NOT_FOUND]); it was not retried: see nanoedit models --backend gemini for what it "
         "sells, and choose another --model"),
    ],
)  # fmt: skip
def test_http_errors_are_read_as_generate_contents_are(
    served: Served, sample: Path, args: list[str], fault: str, code: int, said: str
) -> None:
    if fault:
        served.sandbox.add_faults(fault)
    result = run_cli(["edit", "cat.png", "-p", "x", "--json", *args], env=interactions_env(served))
    assert result.exit_code == code, result.stderr
    error = json.loads(result.stdout)["error"]
    assert (error["exit_code"], error["message"]) == (code, said.replace("{host}", host(served)))
    assert len(served.sandbox.received) == 1


def test_a_429_asks_for_its_wait_in_the_body_and_it_is_honoured(
    served: Served, sample: Path
) -> None:
    # RetryInfo asks for 17 s; with 5 s left the job says so instead of waiting in vain.
    served.sandbox.add_faults("429")
    result = run_cli(["edit", "cat.png", "-p", "x", "--timeout", "5"], env=interactions_env(served))
    assert result.exit_code == 6
    assert last_error(result.stderr).startswith(
        f"the interaction request on {host(served)} failed (HTTP 429) and a retry in 17 s would "
        "pass the job's time limit of 5 s ("
    )
    assert len(served.sandbox.received) == 1


def test_an_overloaded_model_is_retried(served: Served, sample: Path) -> None:
    served.sandbox.add_faults("503")
    result = run_cli(["edit", "cat.png", "-p", "x"], env=interactions_env(served))
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    assert [r.path for r in served.sandbox.received] == ["/v1beta/interactions"] * 2


def test_a_dropped_connection_after_the_request_arrived_is_not_paid_twice(
    served: Served, sample: Path
) -> None:
    served.sandbox.add_faults("reset")
    result = run_cli(["edit", "cat.png", "-p", "x"], env=interactions_env(served))
    assert result.exit_code == 6
    assert "it may have reached the model, so nanoedit did not send it again" in result.stderr
    assert [f"{r.method} {r.path}" for r in paid(served)] == ["POST /v1beta/interactions"]


def test_an_interaction_in_progress_is_polled_until_it_completes(
    served: Served, sample: Path, clock: SkippingClock
) -> None:
    served.sandbox.task_seconds = 3
    served.sandbox.add_faults("interaction-in-progress")
    result = run_cli(["edit", "cat.png", "-p", "x"], env=interactions_env(served), clock=clock)
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    post, *polls = served.sandbox.received
    assert post.path == "/v1beta/interactions"
    ident = polls[0].path.removeprefix("/v1beta/interactions/")
    assert re.fullmatch(ID, ident)
    # Polled after 1, 2.5 and 4.75 s: done after 3.
    assert [(r.method, r.path) for r in polls] == [("GET", f"/v1beta/interactions/{ident}")] * 3
    assert clock.waits == [1.0, 1.5, 2.25]
    assert all(r.headers["api-revision"] == "2026-05-20" for r in polls)
    assert len(paid(served)) == 1
    with Image.open("cat-edit.jpg") as image:
        assert image.size == (1200, 896)


def test_an_interaction_still_in_progress_at_the_time_limit_says_so(
    served: Served, sample: Path, clock: SkippingClock
) -> None:
    served.sandbox.task_seconds = 100
    served.sandbox.add_faults("interaction-queued")
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--timeout", "2"], env=interactions_env(served), clock=clock
    )
    assert result.exit_code == 6
    assert matches(
        last_error(result.stderr),
        f"interaction {{id}} on {host(served)} was still queued when the job's time limit of 2 s "
        "ran out (2.0 s elapsed); it may still end on Google's side: raise --timeout, or try "
        "again later",
    ), result.stderr
    assert len(paid(served)) == 1


def test_an_unstored_interaction_in_progress_cannot_be_polled(served: Served, sample: Path) -> None:
    served.sandbox.add_faults("interaction-in-progress")
    result = run_cli(["edit", "cat.png", "-p", "x", "--no-store"], env=interactions_env(served))
    assert result.exit_code == 5
    assert matches(
        last_error(result.stderr),
        f"{host(served)} answered interaction {{id}} in_progress, and it is not stored "
        "(gemini.store false, or --no-store), so it cannot be asked for again and its image "
        "cannot be had; send the job again, or let Google store it",
    ), result.stderr
    assert [r.method for r in served.sandbox.received] == ["POST"]


@pytest.mark.parametrize("api", ["generate_content", "interactions"])
def test_no_store_asks_google_not_to_keep_the_request_on_both_apis(
    served: Served, sample: Path, api: str
) -> None:
    env = one_backend_env(served, "gemini") | {"NANOEDIT_GEMINI_API": api}
    kept = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    flagged = run_cli(["edit", "cat.png", "-p", "x", "--no-store"], env=env)
    configured = run_cli(["edit", "cat.png", "-p", "x"], env=env | {"NANOEDIT_GEMINI_STORE": "no"})
    assert [kept.exit_code, flagged.exit_code, configured.exit_code] == [0, 0, 0]
    stores = [r.json.get("store") for r in served.sandbox.received]
    # generateContent says nothing unless asked not to store; an interaction always says.
    assert stores == ([None, False, False] if api == "generate_content" else [True, False, False])


def test_no_store_on_a_backend_without_the_setting_says_it_does_not_apply(
    served: Served, sample: Path
) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--no-store"], env=one_backend_env(served, "openai")
    )
    assert result.exit_code == 0
    assert (
        "warning: --no-store asks Google's Gemini API not to keep what is sent; the openai "
        "backend has no such setting, so its jobs are sent as they would be without it"
    ) in result.stderr.splitlines()


def test_the_dry_run_prints_a_command_that_works(served: Served, sample: Path) -> None:
    env = interactions_env(served)
    planned = run_cli(
        ["edit", "cat.png", "-p", "it's a 'test'", "--dry-run", "--no-store"], env=env
    )
    assert planned.exit_code == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert lines[0] == f"# cat.png -> cat-edit (gemini, {FLASH})"
    assert (
        f"curl -sS -X POST {served.base_url}/v1beta/interactions -H 'x-goog-api-key: ****0003' -H 'Api-Revision: 2026-05-20' \\"
        in lines
    )
    assert served.sandbox.received == []
    command = "\n".join(lines[1:]).replace("****0003", GEMINI_KEY)
    answer = json.loads(
        subprocess.run(["bash", "-c", command], capture_output=True, check=True, timeout=30).stdout
    )
    assert (answer["status"], [step["type"] for step in answer["steps"]]) == (
        "completed", ["thought", "model_output"]
    )  # fmt: skip
    (post,) = served.sandbox.received
    assert post.json == {
        "model": FLASH,
        "input": [
            {"type": "image", "data": base64.b64encode(CAT).decode(), "mime_type": "image/png"},
            {"type": "text", "text": "it's a 'test'"},
        ],
        "response_format": {"type": "image"},
        "store": False,
        "stream": False,
    }


@pytest.mark.parametrize(
    ("value", "hint"),
    [("interaction", "did you mean interactions? "), ("generate", "did you mean generate_content? "),
     ("chat", "")],
)  # fmt: skip
def test_a_mistyped_api_is_refused_naming_the_choices(
    served: Served, sample: Path, value: str, hint: str
) -> None:
    said = (
        f"{value!r} names no API the gemini backend sends through; {hint}use generate_content "
        "(Google's generateContent, the default) or interactions (Google's Interactions API)"
    )
    stored = run_cli(["config", "set", "gemini.api", value])
    assert (stored.exit_code, stored.stderr.strip()) == (2, f"error: {said}")
    env = one_backend_env(served, "gemini") | {"NANOEDIT_GEMINI_API": value}
    run = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    assert (run.exit_code, last_error(run.stderr)) == (
        3, f"the environment variable NANOEDIT_GEMINI_API: {said}"
    )  # fmt: skip
    assert served.sandbox.received == []
    # Written as Google writes it, or with a dash, it is the same API.
    for spelling in ("generateContent", "Generate-Content", "INTERACTIONS"):
        assert run_cli(["config", "set", "gemini.api", spelling]).exit_code == 0
    assert run_cli(["config", "get", "gemini.api"]).stdout.strip() == "interactions"
    assert run_cli(["config", "set", "gemini.store", "maybe"]).exit_code == 2


def test_an_interaction_gone_while_it_was_polled_is_said_to_be_gone(
    served: Served, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sandbox keeps none: the interaction is gone by the first poll.
    monkeypatch.setattr(gemini_interactions, "MAX_STORED", 0)
    served.sandbox.add_faults("interaction-in-progress")
    result = run_cli(["edit", "cat.png", "-p", "x"], env=interactions_env(served))
    assert result.exit_code == 5
    assert matches(
        last_error(result.stderr),
        f"{host(served)} no longer has interaction {{id}}, which was still running when last "
        "asked (HTTP 404: Requested entity was not found. [NOT_FOUND]); its image cannot be "
        "had: send the job again",
    ), result.stderr
    assert [r.method for r in served.sandbox.received] == ["POST", "GET"]


def test_inputs_too_large_to_inline_go_through_the_files_api(
    served: Served, clock: SkippingClock
) -> None:
    # Noise does not compress: about 16 MiB of PNG, over 20 MiB as base64.
    side = 2400
    noise = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    noise.save("big.png", compress_level=0)
    data = Path("big.png").read_bytes()
    result = run_cli(["edit", "big.png", "-p", "x"], env=interactions_env(served), clock=clock)
    assert (result.exit_code, result.stdout) == (0, "big-edit.jpg\n"), result.stderr
    start, finish, *polls, post = served.sandbox.received
    assert (start.path, finish.body) == ("/upload/v1beta/files", data)
    file_id = polls[0].path.removeprefix("/v1beta/files/")
    assert {(r.method, r.path) for r in polls} == {("GET", f"/v1beta/files/{file_id}")}
    assert post.path == "/v1beta/interactions"
    assert post.json["input"] == [
        {
            "type": "image",
            "uri": f"{served.base_url}/v1beta/files/{file_id}",
            "mime_type": "image/png",
        },
        {"type": "text", "text": "x"},
    ]
