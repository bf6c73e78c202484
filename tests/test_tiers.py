"""Service tiers (``--tier standard|flex|priority``): refused before sending where the model or
the backend takes none (today every image model, per Google's model pages), sent exactly where
Google takes them once the catalog says a model does, priced in the estimate, --max-cost and
the ledger, kept in the journal, and a shed flex request retried without paying twice."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import (
    GEMINI_KEY,
    Served,
    config_file,
    error_object,
    image_info,
    journal_jobs,
    one_backend_env,
    paid,
    run_cli,
)

from nanoedit.backends.base import PreparedJob
from nanoedit.backends.gemini import GeminiBackend
from nanoedit.catalog.models import load_catalog
from nanoedit.catalog.pricing import Prices
from nanoedit.jobs import Options, build_generate_job
from nanoedit.journal.recording import planned_from
from nanoedit.net.http import Deadline, JobHttp, RetryPolicy
from nanoedit.sandbox import (
    SANDBOX_BASE_URL,
    SANDBOX_KEY,
    Sandbox,
    SandboxServer,
    SandboxTransport,
    sample_image,
)
from nanoedit.settings.values import BackendSettings

CAT = sample_image("cat.png")[0]
NB2 = "gemini-3.1-flash-image"
GENERATE = f"/v1beta/models/{NB2}:generateContent"
# What Google's optimization page says the tiers cost beside the standard price; priority at
# the top of its range ("75% to 100% more").
ENABLED = f'[models."{NB2}".on.gemini]\ntiers = {{ flex = 0.5, priority = 2.0 }}\n'
REFUSED_FLEX = (
    "error: --tier flex: gemini-nano-banana-2.1 (Nano Banana 2.1) does not take the flex tier "
    "on gemini, as far as the catalog knows (Google's model pages, "
    "https://ai.google.dev/gemini-api/docs/models, list flex and priority inference for text "
    "models, not for the image models), so nothing was sent; drop --tier to send it at the "
    "standard tier, or, if Google offers flex for it now, enable it in the config file: "
    '[models."gemini-nano-banana-2.1".on.gemini] tiers = { flex = 0.5 }\n'
)


def gemini(served: Served, api: str = "generate_content") -> dict[str, str]:
    """The gemini backend alone, on the served sandbox, through ``api``."""
    return one_backend_env(served, "gemini") | {"NANOEDIT_GEMINI_API": api}


@pytest.fixture
def tiered(served: Served) -> Iterator[Served]:
    """The served sandbox acting out a Google that takes flex and priority for its image
    models, and a config file whose catalog says Nano Banana 2 takes them on gemini."""
    served.sandbox.tiers = frozenset({"flex", "priority"})
    config_file().parent.mkdir(parents=True, exist_ok=True)
    config_file().write_text(ENABLED, encoding="utf-8")
    os.chmod(config_file(), 0o600)
    yield served


# --- refused before anything is sent ----------------------------------------------------------


@pytest.mark.parametrize("api", ["generate_content", "interactions"])
def test_a_tier_no_image_model_takes_is_refused_before_sending(served: Served, api: str) -> None:
    result = run_cli(["generate", "-p", "a fox", "--tier", "flex"], env=gemini(served, api))
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", REFUSED_FLEX)
    assert served.sandbox.received == []
    priority = run_cli(
        ["generate", "-p", "a fox", "--tier", "PRIORITY", "-m", "nano-banana-pro"],
        env=gemini(served, api),
    )
    assert priority.exit_code == 2
    assert priority.stderr.startswith(
        "error: --tier priority: gemini-3-pro-image (Nano Banana Pro) does not take the priority "
        "tier on gemini"
    )
    assert priority.stderr.endswith(
        '[models."gemini-3-pro-image".on.gemini] tiers = { priority = 2 }\n'
    )
    assert served.sandbox.received == []


def test_the_refusal_is_a_usage_error_in_json_too(served: Served) -> None:
    result = run_cli(["generate", "-p", "a fox", "--tier", "flex", "--json"], env=gemini(served))
    assert result.exit_code == 2
    (line,) = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["error"] == error_object("usage", REFUSED_FLEX[len("error: ") : -1], 2)
    assert served.sandbox.received == []


@pytest.mark.parametrize("backend", ["openai", "fal", "openrouter", "vertex"])
def test_a_backend_without_tiers_refuses_any_tier_but_standard(
    served: Served, backend: str
) -> None:
    env = one_backend_env(served, backend) | {"NANOEDIT_VERTEX_PROJECT": "p"}
    result = run_cli(["generate", "-p", "a fox", "--tier", "priority"], env=env)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: --tier priority: the {backend} backend has no service tiers (Google's Gemini "
        "API alone takes flex and priority), so nothing was sent; drop --tier, or send the job "
        "with --backend gemini\n",
    )
    assert served.sandbox.received == []


def test_an_unknown_tier_is_a_usage_error(served: Served) -> None:
    result = run_cli(["generate", "-p", "a fox", "--tier", "batchy"], env=gemini(served))
    assert result.exit_code == 2
    assert "Invalid value for '--tier': 'batchy' is not one of" in result.stderr
    assert served.sandbox.received == []


# --- sent exactly where Google takes it ---------------------------------------------------------


def test_standard_sends_no_field_and_is_the_same_job_as_no_tier(served: Served) -> None:
    first = run_cli(
        ["generate", "-p", "a fox", "-m", NB2, "--tier", "standard"], env=gemini(served)
    )
    assert (first.exit_code, first.stdout) == (0, "a-fox.jpg\n"), first.stderr
    (post,) = served.sandbox.received
    assert "serviceTier" not in post.json and "service_tier" not in post.json
    again = run_cli(["generate", "-p", "a fox", "-m", NB2, "--skip-existing"], env=gemini(served))
    assert again.exit_code == 0
    assert len(served.sandbox.received) == 1  # the same request: not sent again
    assert journal_jobs()[0].spec["options"]["tier"] == "standard"


def test_flex_is_sent_as_service_tier_beside_contents_and_priced_at_half(tiered: Served) -> None:
    result = run_cli(["generate", "-p", "a fox", "-m", NB2, "--tier", "flex"], env=gemini(tiered))
    assert (result.exit_code, result.stdout) == (0, "a-fox.jpg\n"), result.stderr
    (post,) = tiered.sandbox.received
    assert post.path == GENERATE
    assert post.json == {
        "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
        "serviceTier": "flex",
    }
    assert image_info(Path("a-fox.jpg")) == ("JPEG", (1024, 1024))
    (job,) = journal_jobs()
    assert job.spec["options"]["tier"] == "flex"
    # Half of Google's $0.067 for a 1K image: the ledger keeps the flex price.
    assert job.cost == 0.0335
    planned, _ = planned_from(job)
    assert planned.job.options.tier == "flex"  # resumed, it is sent at the same tier


def test_priority_through_the_interactions_api_is_its_service_tier(tiered: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a fox", "-m", NB2, "--tier", "priority"],
        env=gemini(tiered, "interactions"),
    )
    assert (result.exit_code, result.stdout) == (0, "a-fox.jpg\n"), result.stderr
    (post,) = tiered.sandbox.received
    assert (post.method, post.path) == ("POST", "/v1beta/interactions")
    assert post.headers["api-revision"] == "2026-05-20"
    assert post.json["service_tier"] == "priority"
    assert "serviceTier" not in post.json
    assert image_info(Path("a-fox.jpg")) == ("JPEG", (1024, 1024))
    (job,) = journal_jobs()
    assert (job.spec["options"]["tier"], job.cost) == ("priority", 0.134)


def test_another_tier_is_another_job(tiered: Served) -> None:
    args = ["generate", "-p", "a fox", "-m", NB2, "-o", "fox.jpg", "--overwrite"]
    assert run_cli([*args, "--tier", "flex"], env=gemini(tiered)).exit_code == 0
    skipped = run_cli([*args, "--tier", "flex", "--skip-existing"], env=gemini(tiered))
    assert skipped.exit_code == 0
    assert len(paid(tiered)) == 1  # the same flex job: already done
    standard = run_cli([*args, "--skip-existing"], env=gemini(tiered))
    assert standard.exit_code == 0, standard.stderr
    assert [post.json.get("serviceTier") for post in paid(tiered)] == ["flex", None]
    flex, plain = journal_jobs()
    assert flex.fingerprint != plain.fingerprint


# --- prices -----------------------------------------------------------------------------------


def test_the_estimate_and_max_cost_price_the_tier(tiered: Served) -> None:
    env = gemini(tiered)
    for name in ("a.png", "b.png"):
        Path(name).write_bytes(CAT)
    flex = run_cli(
        ["edit", "a.png", "b.png", "-p", "x", "-m", NB2, "--tier", "flex", "--dry-run"], env=env
    )
    assert flex.exit_code == 0
    assert flex.stderr.splitlines()[0] == (
        f"2 jobs, 2 images, estimated $0.067 ({NB2} flex at $0.034)"
    )
    over = run_cli(
        ["edit", "a.png", "b.png", "-p", "x", "-m", NB2, "--tier", "priority", "--max-cost", "0.2"],
        env=env,
    )
    assert (over.exit_code, over.stdout) == (7, "")
    assert over.stderr == (
        f"2 jobs, 2 images, estimated $0.268 ({NB2} priority at $0.134)\n"
        "error: the batch is estimated at $0.268 for 2 images, over --max-cost $0.20; nothing "
        "was sent: raise --max-cost, or send fewer jobs\n"
    )
    assert paid(tiered) == []
    within = run_cli(
        ["edit", "a.png", "b.png", "-p", "x", "-m", NB2, "--tier", "flex", "--max-cost", "0.067"],
        env=env,
    )
    assert within.exit_code == 0, within.stderr
    assert [post.json["serviceTier"] for post in paid(tiered)] == ["flex", "flex"]


def test_tier_prices_unknown_downgraded_and_the_users_own() -> None:
    prices = Prices(catalog=load_catalog({NB2: {"on": {"gemini": {"tiers": {"flex": 0.5}}}}}))
    assert prices.estimate("gemini", NB2, "2K", 2, "flex") == 0.101
    assert prices.estimate("gemini", NB2, "2K", 2, "priority") is None
    # Google's usage says which tier served it: a priority request downgraded is standard.
    enabled = Prices(catalog=load_catalog({NB2: {"on": {"gemini": {"tiers": {"priority": 2}}}}}))
    served = {"serviceTier": "standard", "candidatesTokenCount": 1120}
    assert enabled.job_cost("gemini", NB2, None, 1, served, "priority") == 0.067
    assert enabled.job_cost("gemini", NB2, None, 1, None, "priority") == 0.134
    # The user's own price is the standard one; the tier's multiple applies to it.
    mine = Prices({"pricing.gemini.gemini-3.1-flash-image": 0.04}, enabled.catalog)
    assert mine.estimate("gemini", NB2, None, 1, "priority") == 0.08


def test_a_malformed_tier_in_the_config_names_the_key() -> None:
    from nanoedit.errors import ConfigError

    with pytest.raises(ConfigError) as bad:
        load_catalog({NB2: {"on": {"gemini": {"tiers": {"turbo": 0.5}}}}})
    assert bad.value.message.startswith(
        f'the model catalog entry models."{NB2}".on.gemini.tiers.turbo names no tier; use flex '
        "or priority"
    )
    # Vertex sells Google's models under its own API: it does not inherit gemini's tiers.
    catalog = load_catalog({NB2: {"on": {"gemini": {"tiers": {"flex": 0.5}}}}})
    assert catalog.models[NB2].offers["gemini"].tiers == {"flex": 0.5}
    assert catalog.models[NB2].offers["vertex"].tiers == {}


# --- a shed flex request ----------------------------------------------------------------------


def test_a_shed_flex_request_is_sent_again_and_paid_once(tiered: Served) -> None:
    tiered.sandbox.add_faults("flex-shed")
    result = run_cli(["generate", "-p", "a fox", "-m", NB2, "--tier", "flex"], env=gemini(tiered))
    assert (result.exit_code, result.stdout) == (0, "a-fox.jpg\n"), result.stderr
    assert "HTTP 503; retry 1 of 3" in result.stderr
    # Two paid requests, the same flex request twice: the shed one made nothing.
    assert [(post.path, post.json["serviceTier"]) for post in paid(tiered)] == [
        (GENERATE, "flex"),
        (GENERATE, "flex"),
    ]
    (job,) = journal_jobs()
    assert (job.state, job.images, job.cost) == ("saved", 1, 0.0335)


def test_a_flex_request_shed_every_time_fails_saying_it_was_not_charged(tiered: Served) -> None:
    tiered.sandbox.add_faults("flex-shedx4")
    result = run_cli(
        ["generate", "-p", "a fox", "-m", NB2, "--tier", "flex"], env=gemini(tiered, "interactions")
    )
    assert (result.exit_code, result.stdout) == (5, "")
    # --retries 3: the first request and three more, every one shed.
    assert len(paid(tiered)) == 4
    assert result.stderr.endswith(
        "answered HTTP 503: The flex tier has no capacity for this request now, so it was not "
        "run. Please try again later, or send it at the standard tier. [UNAVAILABLE]; the model "
        "is overloaded; try again later; a flex request is shed when Google is busy, and a shed "
        "request is not charged: send it again later (more tries: --retries), or at the "
        "standard tier (drop --tier)\n"
    )
    (job,) = journal_jobs()
    assert (job.state, job.images, job.cost) == ("failed", 0, None)


def test_a_shed_waits_for_a_flex_request(tiered: Served) -> None:
    tiered.sandbox.add_faults("flex-shed")
    result = run_cli(["generate", "-p", "a fox", "-m", NB2], env=gemini(tiered))
    assert result.exit_code == 0
    assert len(paid(tiered)) == 1
    assert tiered.sandbox.pending_faults() == ["submit:flex-shedx1"]


# --- the sandbox, as Google answers -------------------------------------------------------------


def _post(served: Served, path: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(served.base_url + path, json=body, headers={"x-goog-api-key": GEMINI_KEY})


def test_the_sandbox_refuses_a_tier_where_google_does_and_reads_it_where_it_does(
    served: Served,
) -> None:
    body: dict[str, object] = {"contents": [{"parts": [{"text": "a fox"}]}], "serviceTier": "flex"}
    refused = _post(served, GENERATE, body)
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": (
            f"Service tier flex is not supported for models/{NB2}. Send the request without "
            "service_tier to use the standard tier."
        )}},
    )  # fmt: skip
    wrong = _post(served, GENERATE, {**body, "serviceTier": "turbo"})
    assert wrong.status_code == 400
    assert wrong.json()["error"]["message"] == (
        "Invalid value at 'service_tier' "
        "(type.googleapis.com/google.ai.generativelanguage.v1beta.ServiceTier), 'turbo'"
    )
    interaction = _post(
        served, "/v1beta/interactions", {"model": NB2, "input": "a fox", "service_tier": "flex"}
    )
    assert interaction.status_code == 400
    assert interaction.json()["error"]["message"].startswith("Service tier flex is not supported")
    # Standard, in any of its spellings, is what a request without the field gets.
    for standard in ("standard", "STANDARD", "SERVICE_TIER_STANDARD", "unspecified"):
        assert _post(served, GENERATE, {**body, "serviceTier": standard}).status_code == 200
    served.sandbox.tiers = frozenset({"flex"})
    for flex in ("flex", "FLEX", "SERVICE_TIER_FLEX"):
        assert _post(served, GENERATE, {**body, "service_tier": flex}).status_code == 200
    assert _post(served, GENERATE, {**body, "serviceTier": "priority"}).status_code == 400


def test_google_genai_sends_its_service_tier_where_the_sandbox_reads_it() -> None:
    genai = pytest.importorskip("google.genai")
    from google.genai import errors, types

    sandbox = Sandbox(keys=frozenset({GEMINI_KEY}))
    with (
        SandboxServer(sandbox) as server,
        genai.Client(
            api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=server.base_url)
        ) as google,
    ):
        flex = types.GenerateContentConfig(service_tier=types.ServiceTier.FLEX)
        with pytest.raises(errors.ClientError) as refused:
            google.models.generate_content(model=NB2, contents="a fox", config=flex)
        assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
        sandbox.tiers = frozenset({"flex"})
        answer = google.models.generate_content(model=NB2, contents="a fox", config=flex)
        assert answer.candidates and answer.parts
        images = [part for part in answer.parts if part.inline_data and not part.thought]
        assert len(images) == 1
        # The SDK put it on the request itself, beside contents, in lower case.
        assert sandbox.received[-1].json["serviceTier"] == "flex"
        assert "serviceTier" not in sandbox.received[-1].json["generationConfig"]
        sandbox.add_faults("flex-shed")
        with pytest.raises(errors.ServerError) as shed:
            google.models.generate_content(model=NB2, contents="a fox", config=flex)
        assert (shed.value.code, shed.value.status) == (503, "UNAVAILABLE")
        created = google.interactions.create(
            model=NB2, input="a fox", service_tier="flex", stream=False
        )
        assert created.status == "completed"
        assert sandbox.received[-1].json["service_tier"] == "flex"


def test_the_python_api_takes_the_tier_and_refuses_it_as_the_command_line_does(
    tiered: Served,
) -> None:
    import nanoedit
    from nanoedit.errors import UsageError

    # The API's environ replaces os.environ: the config folder is named in it.
    env = gemini(tiered) | {"NANOEDIT_CONFIG_DIR": os.environ["NANOEDIT_CONFIG_DIR"]}
    result = nanoedit.generate(prompt="a fox", model=NB2, tier="flex", environ=env)
    assert [image.path.name for image in result.images] == ["a-fox.jpg"]
    assert [post.json["serviceTier"] for post in paid(tiered)] == ["flex"]
    with pytest.raises(UsageError) as refused:
        nanoedit.generate(prompt="a fox", tier="priority", environ=env)
    assert refused.value.exit_code == 2
    assert refused.value.message.startswith(
        "--tier priority: gemini-nano-banana-2.1 (Nano Banana 2.1) does not take the priority "
        "tier on gemini"
    )
    with pytest.raises(UsageError) as unknown:
        nanoedit.generate(prompt="a fox", tier="turbo", environ=env)
    assert unknown.value.message == "invalid tier 'turbo'; use one of: standard, flex, priority"
    assert len(paid(tiered)) == 1


def test_the_dry_run_shows_the_tier_in_the_body_it_would_send(tiered: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a fox", "-m", NB2, "--tier", "flex", "--dry-run", "--json"],
        env=gemini(tiered, "interactions"),
    )
    assert result.exit_code == 0, result.stderr
    (planned,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert planned["json"]["service_tier"] == "flex"
    assert result.stderr == f"1 job, 1 image, estimated $0.034 ({NB2} flex at $0.034)\n"
    assert tiered.sandbox.received == []


def test_a_flex_request_waits_up_to_googles_fifteen_minutes_for_its_answer() -> None:
    # [P] Flex targets 1 to 15 minutes: a read given up after the usual 5 would leave a request
    # that may be charged unanswered. The job's own time limit still bounds it.
    sandbox = Sandbox()
    sandbox.tiers = frozenset({"flex"})
    settings = BackendSettings("gemini", SANDBOX_BASE_URL, SANDBOX_KEY, NB2)
    reads: list[float] = []

    class Recording(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = SandboxTransport(sandbox)

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            reads.append(request.extensions["timeout"]["read"])
            return self.inner.handle_request(request)

    catalog = load_catalog({NB2: {"on": {"gemini": {"tiers": {"flex": 0.5}}}}})
    for tier, limit in (("standard", 3600), ("flex", 3600), ("flex", 600)):
        job = build_generate_job(Options(prompt="a fox", tier=tier), None)
        with httpx.Client(transport=Recording()) as client:
            http = JobHttp(client, RetryPolicy(), Deadline(limit))
            answer = GeminiBackend(settings, http, catalog).run(
                PreparedJob(job=job, model=NB2), lambda *_: None
            )
        assert len(answer.images) == 1 and answer.error is None
    assert [round(read) for read in reads] == [300, 900, 600]
    assert [request.json.get("serviceTier") for request in sandbox.received] == [
        None,
        "flex",
        "flex",
    ]


def test_an_id_the_catalog_does_not_know_is_sent_with_its_tier_at_googles_multiple(
    served: Served,
) -> None:
    # An unknown id is the server's call (sent unchecked), and its price is the user's.
    assert run_cli(["config", "set", "pricing.gemini.gemini-9-image", "0.1"]).exit_code == 0
    result = run_cli(
        ["generate", "-p", "a fox", "-m", "gemini-9-image", "--tier", "flex", "--dry-run"],
        env=gemini(served),
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "1 job, 1 image, estimated $0.05 (gemini-9-image flex at $0.05)"
    )


# --- a priority request served at standard -----------------------------------------------------


@pytest.mark.parametrize("api", ["generate_content", "interactions"])
def test_a_priority_request_served_at_standard_is_said_and_costs_standard(
    tiered: Served, api: str
) -> None:
    tiered.sandbox.add_faults("priority-downgrade")
    args = ["generate", "-p", "a fox", "-m", NB2, "--tier", "priority"]
    result = run_cli([*args, "-o", "first.jpg"], env=gemini(tiered, api))
    assert (result.exit_code, result.stdout) == (0, "first.jpg\n"), result.stderr
    assert f"{host_of(tiered)} served the priority request at the standard tier" in result.stderr
    served = run_cli([*args, "-o", "second.jpg"], env=gemini(tiered, api))
    assert served.exit_code == 0
    assert "served the priority" not in served.stderr
    # Google's list price, not twice it, for the one past the limit; twice it for the other.
    assert [(job.spec["options"]["tier"], job.cost) for job in journal_jobs()] == [
        ("priority", 0.067),
        ("priority", 0.134),
    ]
    assert [job.usage and job.usage["serviceTier"] for job in journal_jobs()] == [
        "standard",
        "priority",
    ]


def host_of(served: Served) -> str:
    return served.base_url.removeprefix("http://")


def test_google_genai_reads_the_tier_that_served_it_where_googles_docs_read_it() -> None:
    genai = pytest.importorskip("google.genai")
    from google.genai import types

    sandbox = Sandbox(keys=frozenset({GEMINI_KEY}))
    sandbox.tiers = frozenset({"priority"})
    with (
        SandboxServer(sandbox) as server,
        genai.Client(
            api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=server.base_url)
        ) as google,
    ):
        priority = types.GenerateContentConfig(service_tier=types.ServiceTier.PRIORITY)
        answer = google.models.generate_content(model=NB2, contents="a fox", config=priority)
        assert answer.sdk_http_response is not None and answer.sdk_http_response.headers
        assert answer.sdk_http_response.headers["x-gemini-service-tier"] == "priority"
        sandbox.add_faults("priority-downgrade")
        downgraded = google.models.generate_content(model=NB2, contents="a fox", config=priority)
        # As Google's priority page checks a downgrade: the answer's header.
        assert downgraded.sdk_http_response is not None
        assert downgraded.sdk_http_response.headers is not None
        assert downgraded.sdk_http_response.headers["x-gemini-service-tier"] == "standard"
        created = google.interactions.create(
            model=NB2, input="a fox", service_tier="priority", stream=False
        )
        assert created.service_tier == "priority"


# --- with the provider dials, presets and --transparent ---------------------------------------


def test_the_tier_prices_each_matte_request_and_not_the_search_queries(tiered: Served) -> None:
    env = gemini(tiered)
    args = ["generate", "-p", "a red robot on a flat #00FF00 background", "-m", NB2]
    args += ["--tier", "flex", "--search", "--transparent-method", "matte", "-o", "robot.png"]
    dry = run_cli([*args, "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.stderr
    # Two paid requests, each a flex image (half of $0.067) and a search query at its one
    # price ($0.014): 2 * (0.0335 + 0.014) = $0.095.
    assert dry.stderr.splitlines()[0] == (
        "1 job, 1 image, 2 paid requests (a matte image is two), estimated $0.095 "
        f"({NB2} flex at $0.034; 2 search queries $0.028)"
    )
    over = run_cli([*args, "--max-cost", "0.094"], env=env)
    assert over.exit_code == 7
    assert paid(tiered) == []
    within = run_cli([*args, "--max-cost", "0.095"], env=env)
    assert within.exit_code == 0, within.stderr
    posts = paid(tiered)
    assert [post.json["serviceTier"] for post in posts] == ["flex", "flex"]
    assert [post.json["tools"] for post in posts] == [[{"googleSearch": {}}]] * 2
    (job,) = journal_jobs()
    assert job.spec["options"]["tier"] == "flex"
    assert job.spec["options"]["dials"] == {"search": True}
    assert job.cost == pytest.approx(0.095)
    assert image_info(Path("robot.png"))[0] == "PNG"


def test_the_fingerprint_holds_the_tier_and_the_dials_each_only_when_set() -> None:
    from nanoedit.jobs import Dials
    from nanoedit.journal.recording import fingerprint

    def of(**changes: object) -> str:
        options = Options(prompt="a fox", **changes)  # type: ignore[arg-type]
        return fingerprint(build_generate_job(options, None), NB2, lambda _: None)

    plain, standard = of(), of(tier="standard")
    flex, seeded = of(tier="flex"), of(dials=Dials(seed=7))
    both = of(tier="flex", dials=Dials(seed=7))
    assert plain == standard  # standard and no dial: the fingerprint of before either existed
    assert len({plain, flex, seeded, both}) == 4
    assert both == of(dials=Dials(seed=7), tier="flex")


def test_a_preset_sets_the_tier_and_the_command_line_wins(tiered: Served) -> None:
    path = config_file()
    path.write_text(
        ENABLED + '\n[presets.cheap]\nprompt = "{prompt}, flat"\ntier = "flex"\n', encoding="utf-8"
    )
    env = gemini(tiered)
    args = ["generate", "-p", "a fox", "-m", NB2, "--preset", "cheap"]
    assert run_cli(args, env=env).exit_code == 0
    assert run_cli([*args, "--tier", "priority", "--overwrite"], env=env).exit_code == 0
    assert run_cli([*args, "--tier", "standard", "--overwrite"], env=env).exit_code == 0
    assert [post.json.get("serviceTier") for post in paid(tiered)] == ["flex", "priority", None]
    listed = run_cli(["presets", "cheap"], env=env)
    assert listed.stdout.endswith('tier = "flex"\n'), listed.stdout
    # The whole run's, as --tier: a --from line's preset may not set it.
    Path("cat.png").write_bytes(CAT)
    Path("jobs.jsonl").write_text('{"input": "cat.png", "preset": "cheap"}\n', encoding="utf-8")
    line = run_cli(["edit", "--from", "jobs.jsonl", "-p", "x", "-m", NB2], env=env)
    assert (line.exit_code, line.stderr) == (
        2,
        "error: jobs.jsonl line 1: the preset cheap sets tier, which is the whole run's, not one "
        "job's (a line's preset may set: ratio, size, model, count, transparent); give --preset "
        "cheap on the command line instead\n",
    )
    assert len(paid(tiered)) == 3


def test_the_python_api_takes_a_presets_tier_where_the_call_gives_none(tiered: Served) -> None:
    import nanoedit

    config_file().write_text(ENABLED + '\n[presets.cheap]\ntier = "flex"\n', encoding="utf-8")
    env = gemini(tiered) | {"NANOEDIT_CONFIG_DIR": os.environ["NANOEDIT_CONFIG_DIR"]}
    for tier, name in ((None, "a.png"), ("priority", "b.png")):
        nanoedit.generate(
            prompt="a fox", model=NB2, preset="cheap", tier=tier, environ=env, output=name
        )
    assert [post.json["serviceTier"] for post in paid(tiered)] == ["flex", "priority"]
