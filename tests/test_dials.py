"""The providers' dials (--seed, --thinking, --search, --image-only, --format, --safety,
--quality, --input-fidelity) against the served sandbox over loopback: each is sent exactly as
its API takes it where the catalog says the model has it on that backend, and refused before
anything is sent everywhere else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    GEMINI_KEY,
    Served,
    config_file,
    image_info,
    journal_jobs,
    one_backend_env,
    paid,
    received,
    run_cli,
)

from nanoedit.jobs import Dials

PROJECT = "my-project-123"


def env_for(served: Served, backend: str) -> dict[str, str]:
    """Only ``backend`` set up on the served sandbox (``interactions``: gemini on that API)."""
    if backend == "interactions":
        return one_backend_env(served, "gemini") | {"NANOEDIT_GEMINI_API": "interactions"}
    env = one_backend_env(served, backend)
    if backend == "vertex":
        env["GOOGLE_CLOUD_PROJECT"] = PROJECT
    return env


def sent(served: Served) -> Any:
    """The one paid request's JSON body (or its form fields, for the multipart API)."""
    [request] = paid(served)
    return request.json if request.json is not None else request.fields


# Each dial on each backend whose catalog entry has it: the command, what the paid request
# carries, and the saved file (its name and format: --format is rendered, not converted).
SENT = [
    pytest.param(
        "gemini",
        ["-m", "nano-banana-2", "--seed", "7", "--thinking", "HIGH", "--search", "--image-only"],
        lambda body: (body["generationConfig"], body["tools"]),
        (
            {"responseModalities": ["IMAGE"], "seed": 7,
             "thinkingConfig": {"thinkingLevel": "HIGH"}},
            [{"googleSearch": {}}],
        ),
        ("a-red-fox.jpg", "JPEG"),
        id="gemini",
    ),
    pytest.param(
        "interactions",
        ["-m", "nano-banana-2.1", "--seed", "7", "--thinking", "medium", "--search",
         "--image-only"],
        lambda body: {key: body[key] for key in ("generation_config", "tools",
                                                 "response_modalities")},
        {"generation_config": {"seed": 7, "thinking_level": "medium"},
         "tools": [{"type": "google_search"}], "response_modalities": ["image"]},
        ("a-red-fox.jpg", "JPEG"),
        id="interactions",
    ),
    pytest.param(
        "vertex",
        ["-m", "nano-banana-2", "--seed", "7", "--format", "png"],
        lambda body: body["generationConfig"],
        {"responseModalities": ["TEXT", "IMAGE"], "seed": 7,
         "imageConfig": {"imageOutputOptions": {"mimeType": "image/png"}}},
        ("a-red-fox.png", "PNG"),
        id="vertex",
    ),
    pytest.param(
        "openrouter",
        ["-m", "nano-banana-2", "--seed", "7"],
        lambda body: body["seed"],
        7,
        ("a-red-fox.jpg", "JPEG"),
        id="openrouter",
    ),
    pytest.param(
        "fal",
        ["-m", "nano-banana-2", "--seed", "7", "--safety", "2", "--search", "--format", "webp"],
        lambda body: body,
        {"prompt": "a red fox", "num_images": 1, "output_format": "webp", "seed": 7,
         "safety_tolerance": "2", "enable_web_search": True},
        ("a-red-fox.webp", "WEBP"),
        id="fal",
    ),
    pytest.param(
        "replicate",
        ["-m", "nano-banana-pro", "--safety", "block_low_and_above", "--search", "--format",
         "jpeg"],
        lambda body: body["input"],
        {"prompt": "a red fox", "output_format": "jpg", "safety_filter_level":
         "block_low_and_above", "google_search": True},
        ("a-red-fox.jpg", "JPEG"),
        id="replicate",
    ),
    pytest.param(
        "openai",
        ["-m", "gpt-image-1.5", "--quality", "high", "--format", "webp"],
        lambda body: body,
        {"model": "gpt-image-1.5", "prompt": "a red fox", "n": 2, "quality": "high",
         "output_format": "webp"},
        ("a-red-fox.webp", "WEBP"),
        id="gpt-image",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("backend", "args", "part", "expected", "saved"), SENT)
def test_each_dial_is_sent_where_the_catalog_has_it(
    served: Served,
    backend: str,
    args: list[str],
    part: Any,
    expected: Any,
    saved: tuple[str, str],
) -> None:
    dials = ["--backend", "gemini" if backend == "interactions" else backend, *args]
    if backend == "openai":
        dials += ["-n", "2"]
    result = run_cli(["generate", "-p", "a red fox", *dials], env=env_for(served, backend))
    assert result.exit_code == 0, result.stderr
    assert part(sent(served)) == expected
    name, kind = saved
    assert result.stdout.splitlines()[0] == name
    assert image_info(name)[0] == kind


def test_gpt_image_edits_take_input_fidelity(served: Served, sample: Path) -> None:
    result = run_cli(
        ["edit", str(sample), "-p", "a hat", "--backend", "openai", "-m", "gpt-image-1.5",
         "--input-fidelity", "high", "--quality", "low", "--format", "jpeg"],
        env=one_backend_env(served, "openai"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    fields = sent(served)
    assert {key: fields[key] for key in ("quality", "input_fidelity", "output_format")} == {
        "quality": ["low"],
        "input_fidelity": ["high"],
        "output_format": ["jpeg"],
    }
    assert image_info("cat-edit.jpg")[0] == "JPEG"


# A dial the model or the backend lacks: refused with exit 2 before any request at all.
REFUSED = [
    pytest.param(
        "duomi", ["--seed", "3"],
        "--seed is not sent by the duomi backend for Nano Banana 2; backends that take it for "
        "Nano Banana 2: gemini, openrouter, fal, vertex (choose one with --backend), or drop "
        "--seed",
        id="seed-on-duomi",
    ),
    pytest.param(
        "replicate", ["--seed", "3"],
        "--seed is not sent by the replicate backend for Nano Banana 2; backends that take it "
        "for Nano Banana 2: gemini, openrouter, fal, vertex (choose one with --backend), or "
        "drop --seed",
        id="seed-on-replicate",
    ),
    pytest.param(
        "gemini", ["--format", "png", "-m", "nano-banana-2"],
        "--format is not sent by the gemini backend for Nano Banana 2; backends that take it "
        "for Nano Banana 2: fal, replicate, vertex (choose one with --backend), or drop "
        "--format",
        id="format-on-gemini",
    ),
    pytest.param(
        "gemini", ["--search", "-m", "nano-banana-2-lite"],
        "--search: Nano Banana 2 Lite has no search grounding; models with it on gemini: "
        "nano-banana-pro, nano-banana-2.1, nano-banana-2; drop --search or choose one of them "
        "with --model",
        id="search-on-lite",
    ),
    pytest.param(
        "gemini", ["--thinking", "high", "-m", "nano-banana-pro"],
        "--thinking: Nano Banana Pro has no thinking levels; models with it on gemini: "
        "nano-banana-2.1, nano-banana-2; drop --thinking or choose one of them with --model",
        id="thinking-on-pro",
    ),
    pytest.param(
        "gemini", ["--thinking", "medium", "-m", "nano-banana-2"],
        "--thinking medium: Nano Banana 2 takes minimal, high on gemini; choose one of them",
        id="level-the-model-lacks",
    ),
    pytest.param(
        "openrouter", ["--search", "-m", "nano-banana-2"],
        "--search is not sent by the openrouter backend for Nano Banana 2; backends that take "
        "it for Nano Banana 2: gemini, fal, replicate, vertex (choose one with --backend), or "
        "drop --search",
        id="search-on-openrouter",
    ),
    pytest.param(
        "fal", ["--safety", "7"],
        "--safety 7: Nano Banana 2 takes 1, 2, 3, 4, 5, 6 on fal; choose one of them",
        id="safety-out-of-range",
    ),
    pytest.param(
        "replicate", ["--safety", "3"],
        "--safety 3: Nano Banana 2 takes block_low_and_above, block_medium_and_above, "
        "block_only_high on replicate; choose one of them",
        id="safety-of-another-backend",
    ),
    pytest.param(
        "replicate", ["--format", "webp"],
        "--format webp: Nano Banana 2 takes png, jpeg on replicate; choose one of them",
        id="format-replicate-lacks",
    ),
    pytest.param(
        "openai", ["-m", "gpt-image-1.5", "--input-fidelity", "high"],
        "--input-fidelity says how closely an edit keeps its input images, and a-red-fox is a "
        "generation; drop --input-fidelity",
        id="fidelity-without-inputs",
    ),
    pytest.param(
        "openai", ["-m", "gpt-image-1.5", "--seed", "1"],
        "--seed is not sent by the openai backend for gpt-image-1.5; no backend takes it for "
        "gpt-image-1.5, or drop --seed",
        id="seed-on-gpt-image",
    ),
    pytest.param(
        "gemini", ["-m", "gemini-9-image", "--format", "webp"],
        "--format is not sent by the gemini backend for gemini-9-image; backends whose API "
        "takes it: vertex, fal, replicate (choose one with --backend), or drop --format",
        id="format-for-an-unknown-id",
    ),
    pytest.param(
        "openai", ["-m", "nano-banana-2", "--quality", "high"],
        "--quality is not sent by the openai backend for Nano Banana 2; no backend takes it "
        "for Nano Banana 2, or drop --quality",
        id="quality-on-a-gateway-model",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("backend", "args", "message"), REFUSED)
def test_a_dial_is_refused_before_sending_where_the_catalog_lacks_it(
    served: Served, backend: str, args: list[str], message: str
) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox", "--backend", backend, *args, "--json"],
        env=env_for(served, backend),
    )
    assert result.exit_code == 2, result.stderr
    [line] = result.stdout.splitlines()
    assert json.loads(line)["error"]["message"] == message
    assert received(served) == []


def test_the_same_seed_draws_the_same_image_and_another_seed_another(served: Served) -> None:
    env = one_backend_env(served, "gemini")
    for seed, name in (("11", "a.jpg"), ("11", "b.jpg"), ("12", "c.jpg")):
        result = run_cli(
            ["generate", "-p", "a red fox", "--seed", seed, "-o", name, "--no-metadata"], env=env
        )
        assert result.exit_code == 0, result.stderr
    first, again, other = (Path(name).read_bytes() for name in ("a.jpg", "b.jpg", "c.jpg"))
    assert first == again
    assert first != other
    assert [request.json["generationConfig"]["seed"] for request in paid(served)] == [11, 11, 12]


def test_search_is_priced_per_image_in_the_estimate_the_budget_and_the_ledger(
    served: Served,
) -> None:
    env = one_backend_env(served, "gemini")
    args = ["generate", "-p", "a red fox", "-m", "nano-banana-2", "--search", "-n", "2"]
    dry = run_cli([*args, "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.stderr
    # Nano Banana 2 at $0.067 an image, and $0.014 a grounded request: (0.067 + 0.014) * 2.
    assert (
        "1 job, 2 images, estimated $0.162 (gemini-3.1-flash-image at $0.067; 2 search queries "
        "$0.028)"
    ) in dry.stderr
    over = run_cli([*args, "--max-cost", "0.16"], env=env)
    assert over.exit_code == 7
    assert "the batch is estimated at $0.162 for 2 images, over --max-cost $0.16" in over.stderr
    assert received(served) == []
    within = run_cli([*args, "--max-cost", "0.162"], env=env)
    assert within.exit_code == 0, within.stderr
    assert len(paid(served)) == 2
    [job] = journal_jobs()
    assert job.cost == pytest.approx(0.162)


def test_an_unpublished_search_price_keeps_max_cost_from_being_kept(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox", "--backend", "replicate", "--search", "--max-cost", "5"],
        env=one_backend_env(served, "replicate"),
    )
    assert result.exit_code == 7
    assert (
        "--max-cost $5.00 cannot be kept: what a search query costs on replicate is unknown; "
        "drop --search or --max-cost; nothing was sent"
    ) in result.stderr
    assert received(served) == []


def test_the_journal_keeps_the_dials_and_another_seed_is_another_job(served: Served) -> None:
    env = one_backend_env(served, "fal")
    args = ["generate", "-p", "a red fox", "--backend", "fal", "--skip-existing"]
    for seed in ("5", "5", "6"):
        result = run_cli([*args, "--seed", seed, "--format", "webp"], env=env)
        assert result.exit_code == 0, result.stderr
    # The same seed twice is one job, paid once; another seed is another request.
    assert [request.json["seed"] for request in paid(served)] == [5, 6]
    jobs = journal_jobs()
    assert [job.spec["options"].get("dials") for job in jobs] == [
        {"seed": 5, "format": "webp"},
        {"seed": 6, "format": "webp"},
    ]
    assert Dials.from_given(jobs[0].spec["options"]["dials"]) == Dials(seed=5, format="webp")
    # A row written before dials existed has none: nothing more is sent.
    assert Dials.from_given(None) == Dials()


def test_an_interrupted_job_is_resumed_with_its_dials(served: Served) -> None:
    env = one_backend_env(served, "gemini")
    # The connection is reset once the request is read: it may have been paid, so the run
    # leaves it for resume --retry-unsafe.
    served.sandbox.add_faults("reset")
    first = run_cli(
        ["generate", "-p", "a red fox", "-m", "nano-banana-2", "--seed", "9", "--thinking",
         "minimal", "--retries", "0"],
        env=env,
    )  # fmt: skip
    assert first.exit_code != 0
    [job] = journal_jobs()
    resumed = run_cli(["resume", str(job.id), "--retry-unsafe"], env=env)
    assert resumed.exit_code == 0, resumed.stderr
    configs = [request.json["generationConfig"] for request in paid(served)]
    assert configs[-1] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "seed": 9,
        "thinkingConfig": {"thinkingLevel": "MINIMAL"},
    }


def test_a_users_catalog_correction_changes_what_is_accepted(served: Served) -> None:
    config_file().parent.mkdir(parents=True, exist_ok=True)
    config_file().write_text(
        '[models."gemini-3.1-flash-image".on.replicate]\n'
        'id = "google/nano-banana-2"\ndials = ["format"]\n',
        encoding="utf-8",
    )
    result = run_cli(
        ["generate", "-p", "a red fox", "--backend", "replicate", "--safety", "block_only_high"],
        env=one_backend_env(served, "replicate"),
    )
    assert result.exit_code == 2
    assert "--safety is not sent by the replicate backend for Nano Banana 2" in result.stderr
    assert received(served) == []


def test_models_lists_each_models_dials_by_backend() -> None:
    result = run_cli(["models", "--backend", "fal", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = {row["id"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows["gemini-3.1-flash-image"]["dials"] == {
        "fal": {
            "takes": ["seed", "search", "format", "safety"],
            "thinking": [],
            "formats": ["png", "jpeg", "webp"],
            "safety": ["1", "2", "3", "4", "5", "6"],
            "search_price": 0.015,
        }
    }
    every = run_cli(["models", "--json"])
    row = next(
        json.loads(line) for line in every.stdout.splitlines() if '"gemini-3.1-flash-image"' in line
    )
    assert row["dials"]["gemini"] == {
        "takes": ["seed", "thinking", "search", "image_only"],
        "thinking": ["minimal", "high"],
        "formats": [],
        "safety": [],
        "search_price": 0.014,
    }
    assert row["dials"]["duomi"]["takes"] == []


# The sandbox refuses what the real APIs refuse, in their shapes -----------------------------


def gemini_post(served: Served, model: str, body: dict[str, Any]) -> httpx.Response:
    """One generateContent request to the served sandbox."""
    return httpx.post(
        f"{served.base_url}/v1beta/models/{model}:generateContent",
        headers={"x-goog-api-key": GEMINI_KEY},
        json={"contents": [{"parts": [{"text": "a red fox"}]}], **body},
    )


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (
            "gemini-3.1-flash-image",
            {"generationConfig": {"thinkingConfig": {"thinkingLevel": "MEDIUM"}}},
            "Thinking level MEDIUM is not supported for models/gemini-3.1-flash-image; "
            "supported levels: MINIMAL, HIGH.",
        ),
        (
            "gemini-3.1-flash-image",
            {"generationConfig": {"thinkingConfig": {"thinkingLevel": "DEEP"}}},
            "Invalid value at 'generation_config.thinking_config.thinking_level' "
            "(type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingLevel), 'DEEP'",
        ),
        (
            "gemini-3.1-flash-lite-image",
            {"tools": [{"googleSearch": {}}]},
            "Search Grounding is not supported.",
        ),
        (
            "gemini-3.1-flash-image",
            {"generationConfig": {"seed": "seven"}},
            "Invalid value at 'generation_config.seed' (TYPE_INT32), seven",
        ),
        (
            "gemini-3.1-flash-image",
            {"generationConfig": {"outputFormat": "png"}},
            'Invalid JSON payload received. Unknown name "outputFormat" at '
            "'generation_config': Cannot find field.",
        ),
        (
            "gemini-3.1-flash-image",
            {"generationConfig": {"imageConfig": {"imageOutputOptions": {"mimeType": "x"}}}},
            'Invalid JSON payload received. Unknown name "imageOutputOptions" at '
            "'generation_config.image_config': Cannot find field.",
        ),
    ],
)
def test_the_gemini_sandbox_refuses_what_google_refuses(
    served: Served, model: str, body: dict[str, Any], message: str
) -> None:
    response = gemini_post(served, model, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["status"], error["message"]) == ("INVALID_ARGUMENT", message)


def test_the_fal_and_replicate_sandboxes_refuse_a_bad_safety_level(served: Served) -> None:
    fal = httpx.post(
        f"{served.base_url}/fal-ai/nano-banana-2",
        headers={"Authorization": f"Key {one_backend_env(served, 'fal')['NANOEDIT_FAL_API_KEY']}"},
        json={"prompt": "a red fox", "safety_tolerance": 7},
    )
    assert fal.status_code == 422
    assert fal.json()["detail"][0]["loc"] == ["body", "safety_tolerance"]
    token = one_backend_env(served, "replicate")["NANOEDIT_REPLICATE_API_KEY"]
    replicate = httpx.post(
        f"{served.base_url}/v1/models/google/nano-banana-pro/predictions",
        headers={"Authorization": f"Bearer {token}"},
        json={"input": {"prompt": "a red fox", "safety_filter_level": "block_none"}},
    )
    assert replicate.status_code == 422
    assert "safety_filter_level must be one of the following" in replicate.text


def test_google_genai_sends_the_dials_the_sandbox_takes(served: Served) -> None:
    genai = pytest.importorskip("google.genai")
    from google.genai import errors, types

    options = types.HttpOptions(base_url=served.base_url)
    with genai.Client(api_key=GEMINI_KEY, http_options=options) as client:
        answer = client.models.generate_content(
            model="gemini-3.1-flash-image",
            contents="a red fox",
            config=types.GenerateContentConfig(
                seed=21,
                response_modalities=["IMAGE"],
                thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.HIGH),
                tools=[types.Tool(google_search=types.GoogleSearch())],
            ),
        )
        parts = [part for part in answer.candidates[0].content.parts if not part.thought]
        # The image alone: no words beside it.
        assert [part.text for part in parts] == [None]
        assert parts[0].inline_data.mime_type == "image/jpeg"
        with pytest.raises(errors.ClientError) as lite:
            client.models.generate_content(
                model="gemini-3.1-flash-lite-image",
                contents="a red fox",
                config=types.GenerateContentConfig(
                    tools=[types.Tool(google_search=types.GoogleSearch())]
                ),
            )
    assert (lite.value.code, lite.value.message) == (400, "Search Grounding is not supported.")
    body = paid(served)[0].json
    assert body["generationConfig"]["seed"] == 21
    # The SDK writes the level's name in snake case, which Google's parser takes as well.
    assert body["generationConfig"]["thinkingConfig"] == {"thinking_level": "HIGH"}
    assert body["tools"] == [{"googleSearch": {}}]


def test_a_format_and_an_output_name_of_another_format_are_refused(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox", "--backend", "fal", "--format", "jpeg", "-o", "fox.png"],
        env=one_backend_env(served, "fal"),
    )
    assert result.exit_code == 2
    assert (
        "--format jpeg and -o fox.png ask for two formats (png by its extension); give -o a "
        ".jpg name, or drop one"
    ) in result.stderr
    assert received(served) == []
    named = run_cli(
        ["generate", "-p", "a red fox", "--backend", "fal", "--format", "jpeg", "-o", "fox.jpg"],
        env=one_backend_env(served, "fal"),
    )
    assert named.exit_code == 0, named.stderr
    # Rendered as JPEG by the API and saved as it came: no conversion, no warning.
    assert image_info("fox.jpg")[0] == "JPEG"
    assert "converted" not in named.stderr


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"generation_config": {"thinking_level": "medium"}},
            "* CreateInteractionRequest.generation_config.thinking_level: medium is not "
            "supported by gemini-3.1-flash-image; supported levels: minimal, high",
        ),
        (
            {"tools": [{"type": "url_context"}]},
            "* CreateInteractionRequest.tools[0]: 'url_context' is not supported by "
            "gemini-3.1-flash-image",
        ),
        (
            {"generation_config": {"seed": "one"}},
            "Invalid value at 'generation_config.seed' (TYPE_INT32), 'one'",
        ),
    ],
)
def test_the_interactions_sandbox_refuses_a_dial_the_model_lacks(
    served: Served, body: dict[str, Any], message: str
) -> None:
    response = httpx.post(
        f"{served.base_url}/v1beta/interactions",
        headers={"x-goog-api-key": GEMINI_KEY, "Api-Revision": "2026-05-20"},
        json={"model": "gemini-3.1-flash-image", "input": "a red fox", "store": False, **body},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message
