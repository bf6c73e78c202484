"""Prices, the estimate a batch shows, and --max-cost / --max-images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Served, backend_env, posts, run_cli

from nanoedit.backends.base import BackendBase, PreparedJob
from nanoedit.backends.gemini import GeminiBackend
from nanoedit.backends.openai import OpenAIBackend
from nanoedit.backends.openrouter import OpenRouterBackend
from nanoedit.backends.registry import backend_names
from nanoedit.catalog.pricing import Prices, estimate, job_cost
from nanoedit.jobs import Options, build_edit_jobs
from nanoedit.net.http import Deadline, JobHttp, RetryPolicy
from nanoedit.net.inputs import load_local
from nanoedit.sandbox import SANDBOX_BASE_URL, SANDBOX_KEY, Sandbox, SandboxTransport, sample_image
from nanoedit.settings.values import BackendSettings

FLASH = "(gemini-3.1-flash-image at $0.067)"


def cats(*names: str) -> list[str]:
    for name in names:
        Path(name).write_bytes(sample_image("cat.png")[0])
    return list(names)


@pytest.mark.parametrize(
    ("backend", "model", "size", "images", "expected"),
    [
        # nano-banana on the gateway is NB2: Google's list price, as the gateway publishes none.
        ("openai", "nano-banana", None, 1, 0.067),
        ("duomi", "gemini-2.5-flash-image", "1K", 3, 0.117),
        ("gemini", "gemini-3-pro-image-preview", None, 1, 0.134),
        # fal's and Replicate's own published prices, where they have them.
        ("fal", "fal-ai/nano-banana-pro", "2K", 2, 0.30),
        ("fal", "nano-banana-pro", "4K", 1, 0.30),
        ("fal", "fal-ai/nano-banana-2", "1K", 1, 0.08),
        ("replicate", "google/nano-banana-2", None, 1, 0.067),
        ("replicate", "google/nano-banana-pro", "4K", 1, 0.24),
        ("openrouter", "google/gemini-2.5-flash-image", None, 2, 0.078),
        ("openai", "nano-banana-2", "1K", 1, 0.067),
        # Google lists no price for 2.1 at 2K, nor for any model not its own: unknown, not 0.
        ("openrouter", "google/gemini-nano-banana-2.1", "2K", 1, None),
        ("gemini", "nano-banana", "2K", 1, None),
        ("openai", "nano-banana-hd", None, 1, None),
        ("openrouter", "openai/gpt-5-image", None, 1, None),
    ],
)
def test_list_prices_by_backend_model_and_size(
    backend: str, model: str, size: str | None, images: int, expected: float | None
) -> None:
    found = estimate(backend, model, size, images)
    assert found == pytest.approx(expected) if expected is not None else found is None


def test_the_user_s_price_wins_and_one_for_a_size_wins_over_one_for_every_size() -> None:
    prices = Prices(
        {
            "pricing.fal.nano-banana-pro": 0.15,
            "pricing.fal.nano-banana-pro.4K": 0.30,
            "pricing.openai.nano-banana-2": 0.08,
        }
    )
    assert prices.estimate("fal", "fal-ai/nano-banana-pro", "2K", 2) == pytest.approx(0.30)
    assert prices.estimate("fal", "fal-ai/nano-banana-pro", "4K", 1) == pytest.approx(0.30)
    assert prices.estimate("openai", "nano-banana-2", None, 1) == pytest.approx(0.08)
    # Another backend's price is its own.
    assert prices.estimate("replicate", "google/nano-banana-pro", "2K", 1) == pytest.approx(0.134)


def test_a_cost_the_provider_reported_wins_over_the_table() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 1290, "cost": 0.0412}
    assert job_cost("openrouter", "google/gemini-2.5-flash-image", None, 1, usage) == 0.0412
    assert job_cost("openai", "nano-banana", None, 2, {"total_tokens": 9}) == pytest.approx(0.134)
    assert job_cost("openai", "x", None, 2, None) is None


def test_config_sets_and_lists_prices_and_refuses_a_bad_one() -> None:
    result = run_cli(["config", "set", "pricing.openai.nano-banana", "0.05"])
    assert result.exit_code == 0, result.stderr
    sized = run_cli(["config", "set", "pricing.fal.nano-banana-pro.4k", "0.3"])
    assert sized.exit_code == 0, sized.stderr
    assert run_cli(["config", "get", "pricing.openai.nano-banana"]).stdout == "0.05\n"
    listed = run_cli(["config", "list"]).stdout.splitlines()
    assert listed[-2:] == [
        "pricing.fal.nano-banana-pro.4k = 0.3  (file)",
        "pricing.openai.nano-banana = 0.05  (file)",
    ]
    bad = run_cli(["config", "set", "pricing.openai.nano-banana", "cheap"])
    assert (bad.exit_code, bad.stderr) == (
        2,
        "error: invalid price 'cheap'; give the price of one image in US dollars, a number "
        "such as 0.039\n",
    )
    nowhere = run_cli(["config", "set", "pricing.acme.nano-banana", "1"])
    assert nowhere.exit_code == 2
    assert nowhere.stderr.startswith(
        "error: pricing.acme.nano-banana is not a pricing key; write pricing.BACKEND.MODEL or "
        f"pricing.BACKEND.MODEL.SIZE, with BACKEND one of: {', '.join(backend_names())}"
    )


def test_a_configured_price_makes_the_estimate(served: Served) -> None:
    assert run_cli(["config", "set", "pricing.openai.nano-banana", "0.05"]).exit_code == 0
    cats("a.png", "b.png")
    result = run_cli(["edit", "a.png", "b.png", "-p", "x", "--dry-run"], env=backend_env(served))
    assert result.stderr == "2 jobs, 2 images, estimated $0.10 (gemini-3.1-flash-image at $0.05)\n"


def test_a_batch_shows_its_estimate_first_unless_quiet_and_one_job_does_not(
    served: Served,
) -> None:
    cats("a.png", "b.png")
    env = backend_env(served)
    batch = run_cli(["edit", "a.png", "b.png", "-p", "x", "-n", "2", "-j", "1"], env=env)
    assert batch.exit_code == 0
    assert batch.stderr.splitlines()[0] == f"2 jobs, 4 images, estimated $0.268 {FLASH}"
    quiet = run_cli(["edit", "a.png", "b.png", "-p", "x", "-q"], env=env)
    assert (quiet.exit_code, quiet.stderr) == (0, "")
    single = run_cli(["edit", "a.png", "-p", "y"], env=env)
    assert single.stderr == "saved a-edit-4.jpg (1200x896 JPEG) from a.png\n"


def test_max_cost_refuses_a_batch_estimated_over_it_and_sends_nothing(served: Served) -> None:
    names = cats("a.png", "b.png", "c.png")
    result = run_cli(["edit", *names, "-p", "x", "--max-cost", "0.10"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (7, "")
    assert result.stderr == (
        f"3 jobs, 3 images, estimated $0.201 {FLASH}\n"
        "error: the batch is estimated at $0.201 for 3 images, over --max-cost $0.10; nothing "
        "was sent: raise --max-cost, or send fewer jobs\n"
    )
    assert posts(served) == []
    within = run_cli(["edit", *names, "-p", "x", "--max-cost", "0.201"], env=backend_env(served))
    assert within.exit_code == 0
    assert sorted(within.stdout.splitlines()) == ["a-edit.jpg", "b-edit.jpg", "c-edit.jpg"]


def test_max_cost_with_an_unknown_price_is_refused_and_says_how_to_set_it(served: Served) -> None:
    cats("a.png")
    result = run_cli(
        # An id of the gateway's own, which the catalog does not know.
        ["edit", "a.png", "-p", "x", "-m", "nano-banana-hd", "--max-cost", "5"],
        env=backend_env(served),
    )
    assert (result.exit_code, result.stdout) == (7, "")
    assert result.stderr == (
        "error: --max-cost $5.00 cannot be kept: the price of nano-banana-hd on openai is "
        "unknown; set it with: nanoedit config set pricing.openai.nano-banana-hd PRICE (dollars "
        "per image); nothing was sent\n"
    )
    assert posts(served) == []


def test_max_images_sends_exactly_that_many_and_counts_the_jobs_not_sent(served: Served) -> None:
    names = cats("a.png", "b.png", "c.png", "d.png", "e.png")
    result = run_cli(
        ["edit", *names, "-p", "x", "--max-images", "3", "--json"], env=backend_env(served)
    )
    assert result.exit_code == 7
    assert len(posts(served)) == 3
    message = (
        "--max-images 3 reached: 2 jobs not sent; raise the limit and run the same command "
        "with --skip-existing to send them"
    )
    assert f"error: {message}" in result.stderr.splitlines()
    assert result.stderr.splitlines()[-1] == "5 jobs: 3 done, 0 failed, 2 not sent, 3 images saved"
    assert result.stdout.count('"kind": "budget"') == 2


def test_max_images_counts_each_job_s_images_as_asked(served: Served) -> None:
    names = cats("a.png", "b.png", "c.png")
    result = run_cli(
        ["edit", *names, "-p", "x", "-n", "2", "--max-images", "5", "-j", "1"],
        env=backend_env(served),
    )
    assert (result.exit_code, result.stdout) == (
        7,
        "a-edit.jpg\na-edit-2.jpg\nb-edit.jpg\nb-edit-2.jpg\n",
    )
    assert len(posts(served)) == 2
    assert "error: --max-images 5 reached: 1 job not sent;" in result.stderr


def test_max_cost_stops_sending_once_what_the_provider_charged_reaches_it(served: Served) -> None:
    # A price below what OpenRouter charges: the estimate passes, the reported costs do not.
    assert run_cli(["config", "set", "pricing.openrouter.nano-banana", "0.01"]).exit_code == 0
    names = cats("a.png", "b.png", "c.png", "d.png", "e.png")
    env = backend_env(served, openai=False, duomi=False, openrouter=True)
    result = run_cli(["edit", *names, "-p", "x", "-j", "1", "--max-cost", "0.05"], env=env)
    assert (result.exit_code, result.stdout) == (7, "a-edit.jpg\nb-edit.jpg\n")
    assert len(posts(served)) == 2
    assert result.stderr.splitlines()[0] == (
        "5 jobs, 5 images, estimated $0.05 (gemini-nano-banana-2.1 at $0.01)"
    )
    assert (
        "error: --max-cost $0.05 reached ($0.067 spent): 3 jobs not sent; raise the limit and "
        "run the same command with --skip-existing to send them"
    ) in result.stderr.splitlines()


# The usage each backend reports, below the CLI ----------------------------------------------


@pytest.mark.parametrize(
    ("backend", "root", "model", "expected"),
    [
        # Two requests, one image each: their numbers added.
        (GeminiBackend, "", "gemini-3.1-flash-image",
         # Each: 1 + 560 prompt tokens, 7 + 1120 out, 14 of thought (3.x thinks).
         {"promptTokenCount": 1122, "candidatesTokenCount": 2254, "totalTokenCount": 3404}),
        (OpenRouterBackend, "/api", "google/gemini-3.1-flash-image",
         # Each: 259 prompt and 1120 image tokens, 0.033678 dollars.
         {"prompt_tokens": 518, "completion_tokens": 2240, "total_tokens": 2758,
          "cost": 0.067356}),
        # One request for both images.
        (OpenAIBackend, "", "nano-banana",
         {"prompt_tokens": 259, "completion_tokens": 2580, "total_tokens": 2839}),
    ],
)  # fmt: skip
def test_each_backend_returns_the_usage_its_provider_reported(
    sample: Path, backend: type[BackendBase], root: str, model: str, expected: dict[str, Any]
) -> None:
    [job] = build_edit_jobs(["cat.png"], [], Options(prompt="x", count=2), None)
    settings = BackendSettings(backend.name, SANDBOX_BASE_URL + root, SANDBOX_KEY, model)
    with httpx.Client(transport=SandboxTransport(Sandbox())) as client:
        http = JobHttp(client, RetryPolicy(), Deadline(60))
        prepared = PreparedJob(job=job, model=model, uploads=(load_local(job.images[0]),))
        answer = backend(settings, http).run(prepared, lambda *_: None)
    assert len(answer.images) == 2
    assert answer.usage is not None
    assert {name: answer.usage[name] for name in expected} == expected
