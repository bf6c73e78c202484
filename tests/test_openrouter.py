"""The OpenRouter backend: chat completions with image output, against the sandbox on a
loopback port (and, for fidelity, the vendor's own ``openai`` client against the sandbox)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import (
    OPENROUTER_KEY,
    Served,
    backend_env,
    host,
    image_info,
    one_backend_env,
    printed_command,
    run_cli,
    run_printed,
)
from PIL import Image

from nanoedit.backends.base import PreparedJob
from nanoedit.backends.openrouter import OpenRouterBackend
from nanoedit.jobs import Options, build_edit_jobs
from nanoedit.net.http import Deadline, JobHttp, RetryPolicy
from nanoedit.output.provenance import read as read_provenance
from nanoedit.run.check import KEY_REJECTED, READY, CheckResult, check_backend
from nanoedit.sandbox import SANDBOX_BASE_URL, SANDBOX_KEY, Sandbox, SandboxTransport, sample_image
from nanoedit.sandbox.catalog import REFUSAL
from nanoedit.settings.values import BackendSettings

CHAT = "/api/v1/chat/completions"
# What nano-banana is on OpenRouter: the newest GA flash model, Nano Banana 2.1.
FLASH = "google/gemini-nano-banana-2.1"
PRO = "google/gemini-3-pro-image"
FLASH31 = "google/gemini-3.1-flash-image"
CAT, _ = sample_image("cat.png")
DOG, _ = sample_image("dog.jpg")
HAT, _ = sample_image("hat.png")


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def chats(served: Served) -> list[Any]:
    return [r for r in served.sandbox.received if (r.method, r.path) == ("POST", CHAT)]


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


# Requests and results ----------------------------------------------------------------------


def test_edit_sends_the_prompt_then_the_image_as_a_data_uri_of_its_exact_bytes(
    served: Served, sample: Path
) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "make it a watercolor", "--ratio", "16:9"],
        env=one_backend_env(served, "openrouter"),
    )
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    assert result.stderr == (
        "cat.png: the model says: Here is the edited image.\n"
        "saved cat-edit.jpg (1376x768 JPEG) from cat.png\n"
    )
    [post] = served.sandbox.received
    assert (post.method, post.path) == ("POST", CHAT)
    assert post.headers["authorization"] == f"Bearer {OPENROUTER_KEY}"
    assert post.headers["content-type"] == "application/json"
    assert post.json == {
        "model": FLASH,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "make it a watercolor"},
                    {"type": "image_url", "image_url": {"url": data_uri(CAT, "image/png")}},
                ],
            }
        ],
        "modalities": ["image", "text"],
        "image_config": {"aspect_ratio": "16:9"},
    }
    assert image_info("cat-edit.jpg") == ("JPEG", (1376, 768))
    assert read_provenance(Path("cat-edit.jpg")) == {
        "prompt": "make it a watercolor",
        "model": FLASH,
        "backend": "openrouter",
        "ratio": "16:9",
        "size": None,
        "inputs": [{"name": "cat.png", "sha256": __import__("hashlib").sha256(CAT).hexdigest()}],
        "version": __import__("nanoedit").__version__,
    }


@pytest.mark.parametrize(
    ("model", "sent", "ratio", "size", "config", "saved"),
    [
        ("nano-banana-2", FLASH31, "4:1", "512", {"aspect_ratio": "4:1", "image_size": "0.5K"},
         ("JPEG", (1024, 256))),
        ("gemini-3-pro-image", PRO, "3:2", "2K",
         {"aspect_ratio": "3:2", "image_size": "2K"}, ("JPEG", (2528, 1696))),
        ("nano-banana-pro", PRO, "auto", None, None, ("JPEG", (1200, 896))),
        (FLASH31, FLASH31, "1:8", "1K", {"aspect_ratio": "1:8", "image_size": "1K"},
         ("JPEG", (384, 3072))),
    ],
)  # fmt: skip
def test_names_sizes_and_ratios_are_sent_as_openrouter_spells_them(
    served: Served,
    sample: Path,
    model: str,
    sent: str,
    ratio: str,
    size: str | None,
    config: dict[str, str] | None,
    saved: tuple[str, tuple[int, int]],
) -> None:
    args = ["edit", "cat.png", "-p", "x", "--model", model, "--ratio", ratio]
    args += ["--size", size] if size else []
    result = run_cli(args, env=one_backend_env(served, "openrouter"))
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    [post] = chats(served)
    assert post.json["model"] == sent
    assert post.json.get("image_config") == config
    assert image_info("cat-edit.jpg") == saved
    # The provider kept to the table: no warning that it ignored the ratio or size.
    assert "warning" not in result.stderr


def test_url_inputs_are_downloaded_and_sent_as_data_uris_after_the_local_ones(
    served: Served, sample: Path
) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    result = run_cli(
        ["edit", "cat.png", "--ref", url, "-p", "add the dog"],
        env=one_backend_env(served, "openrouter"),
    )
    assert result.exit_code == 0, result.stderr
    download, post = served.sandbox.received
    assert (download.method, download.path) == ("GET", "/samples/dog.jpg")
    assert "authorization" not in download.headers
    assert [part.get("image_url", {}).get("url") for part in post.json["messages"][0]["content"]] == [
        None, data_uri(CAT, "image/png"), data_uri(DOG, "image/jpeg"),
    ]  # fmt: skip


def test_a_gif_is_sent_converted_to_png(served: Served) -> None:
    Image.open(io.BytesIO(HAT)).convert("P").save("hat.gif")
    result = run_cli(["edit", "hat.gif", "-p", "x"], env=one_backend_env(served, "openrouter"))
    assert result.exit_code == 0, result.stderr
    assert "hat.gif is GIF, which the API does not take; sending it converted losslessly" in (
        result.stderr
    )
    url = chats(served)[0].json["messages"][0]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))) as sent:
        assert (sent.format, sent.size) == ("PNG", (512, 512))


def test_generate_sends_the_prompt_alone_with_no_image_config(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox in snow"], env=one_backend_env(served, "openrouter")
    )
    assert (result.exit_code, result.stdout) == (0, "a-red-fox-in-snow.jpg\n"), result.stderr
    [post] = chats(served)
    assert post.json == {
        "model": FLASH,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "a red fox in snow"}]}],
        "modalities": ["image", "text"],
    }
    assert image_info("a-red-fox-in-snow.jpg") == ("JPEG", (1024, 1024))


def test_count_is_one_paid_request_per_image(served: Served, sample: Path) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "-n", "3"], env=one_backend_env(served, "openrouter")
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "cat-edit.jpg\ncat-edit-2.jpg\ncat-edit-3.jpg\n"
    posts = chats(served)
    assert len(posts) == 3
    assert posts[0].body == posts[1].body == posts[2].body


def test_an_image_made_before_a_later_request_fails_is_saved(served: Served, sample: Path) -> None:
    # The first request's result comes as a link, the second is refused by moderation.
    served.sandbox.add_faults("url-result,moderation")
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "-n", "2"], env=one_backend_env(served, "openrouter")
    )
    assert (result.exit_code, result.stdout) == (8, "cat-edit.jpg\n")
    assert len(chats(served)) == 2
    assert image_info("cat-edit.jpg") == ("JPEG", (1200, 896))
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat-edit.jpg", "cat.png"]
    assert last_line(result.stderr).startswith(f"error: {host(served)} refused the request")


def test_the_providers_own_key_variable_is_read(served: Served, sample: Path) -> None:
    env = one_backend_env(served, "openrouter")
    del env["NANOEDIT_OPENROUTER_API_KEY"]
    result = run_cli(
        ["edit", "cat.png", "-p", "x"], env=env | {"OPENROUTER_API_KEY": OPENROUTER_KEY}
    )
    assert result.exit_code == 0, result.stderr
    assert chats(served)[0].headers["authorization"] == f"Bearer {OPENROUTER_KEY}"


def test_the_base_url_may_be_given_with_v1(served: Served, sample: Path) -> None:
    env = one_backend_env(served, "openrouter") | {
        "NANOEDIT_OPENROUTER_BASE_URL": f"{served.base_url}/api/v1/"
    }
    assert run_cli(["edit", "cat.png", "-p", "x"], env=env).exit_code == 0
    assert len(chats(served)) == 1


# Automatic selection and limits -------------------------------------------------------------


def test_automatic_selection(served: Served, sample: Path) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    everything = backend_env(served, openrouter=True)
    without_openai = backend_env(served, openai=False, openrouter=True)
    cases = [
        (["edit", "cat.png", "-p", "x"], everything, "openai"),
        (["edit", "cat.png", "-p", "x"], without_openai, "openrouter"),
        # An API that fetches URLs itself is preferred for a job of URLs alone.
        (["edit", url, "-p", "x"], without_openai, "duomi"),
        (["edit", url, "-p", "x"], one_backend_env(served, "openrouter"), "openrouter"),
        (["generate", "-p", "x"], one_backend_env(served, "openrouter"), "openrouter"),
    ]
    for args, env, backend in cases:
        result = run_cli([*args, "--json", "--overwrite"], env=env)
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["backend"] == backend, args


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        # Lite renders 1K only.
        (["--model", "nano-banana-2-lite", "--size", "2K"], 2,
         "google/gemini-3.1-flash-lite-image renders 1K only on openrouter, so size 2K cannot "
         "be honoured; drop it (from --size, NANOEDIT_SIZE or default.size), or choose a model "
         "that renders it (--model nano-banana-pro or nano-banana-2.1 or nano-banana-2)"),
        (["--model", "nano-banana-pro", "--ratio", "4:1"], 2,
         f"{PRO} does not render the ratio 4:1 on openrouter; choose another --ratio, or choose "
         "a model that renders it (--model nano-banana-2.1 or nano-banana-2)"),
        (["--ref", "hat.png"] * 14, 4,
         f"cat.png: 15 images for one job, and {FLASH} takes at most 14; pass fewer --ref "
         "images"),
        (["--model", "google/gemini-2.5-flash-image"], 2,
         "google/gemini-2.5-flash-image (Nano Banana) was shut down on 2026-10-02, so nothing "
         "was sent; use its replacement: --model google/gemini-3.1-flash-image (Nano Banana 2)"),
    ],
)  # fmt: skip
def test_what_the_model_cannot_do_is_refused_before_paying(
    served: Served, sample: Path, args: list[str], code: int, message: str
) -> None:
    Path("hat.png").write_bytes(HAT)
    result = run_cli(
        ["edit", "cat.png", "-p", "x", *args], env=one_backend_env(served, "openrouter")
    )
    assert (result.exit_code, result.stdout) == (code, "")
    assert last_line(result.stderr) == f"error: {message}"
    assert served.sandbox.received == []


# Errors and refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code", "message"),
    [
        ("no-credits", 3,
         "{host} refused the request: the OpenRouter account or key has no credits left "
         "(Insufficient credits. Add more using https://openrouter.ai/settings/credits); add "
         "credits at https://openrouter.ai/settings/credits or raise the key's limit at "
         "https://openrouter.ai/settings/keys, then run again"),
        ("moderation", 8,
         "{host} refused the request (flagged for violence/graphic): " + FLASH + " requires "
         "moderation on Google AI Studio. Your input was flagged for \"violence/graphic\". No "
         "credits were charged.; rephrase the prompt or change the image"),
        ("content-filter", 8,
         "{host} answered without an image: the provider's safety filter blocked it "
         "(IMAGE_SAFETY); rephrase the prompt or change the image"),
        ("text-only", 8,
         "{host} answered with text but no image: " + repr(REFUSAL) + "; the model declined "
         "or only described the result, rephrase the prompt"),
        ("error200", 5,
         "{host} answered HTTP 200, error 502: Provider returned error [provider_unavailable]; "
         "the generation failed after it started (the prompt may still be charged), try again"),
        ("choice-error", 5,
         "{host} answered HTTP 200, error 502: Provider returned error [provider_unavailable]; "
         "the generation failed after it started (the prompt may still be charged), try again"),
        ("no-data", 5,
         "{host} answered HTTP 200 with no image (finish reason STOP); the prompt may still "
         "have been charged, try again"),
        ("empty-data", 5,
         "{host} answered HTTP 200 with no image (finish reason STOP); the prompt may still "
         "have been charged, try again"),
        ("empty-url", 5,
         "{host} answered HTTP 200 with an empty image URL, so no image was made; the prompt "
         "may still have been charged, try again"),
    ],
)  # fmt: skip
def test_errors_and_refusals_exit_with_their_code_and_are_never_resent(
    served: Served, sample: Path, fault: str, code: int, message: str
) -> None:
    served.sandbox.add_faults(fault)
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--json"], env=one_backend_env(served, "openrouter")
    )
    expected = message.format(host=host(served))
    assert result.exit_code == code, result.stderr
    assert last_line(result.stderr) == f"error: {expected}"
    assert json.loads(result.stdout)["error"]["message"] == expected
    assert len(chats(served)) == 1
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat.png"]
    assert served.sandbox.pending_faults() == []


def test_a_wrong_key_exits_3_naming_the_command(served: Served, sample: Path) -> None:
    env = one_backend_env(served, "openrouter") | {
        "NANOEDIT_OPENROUTER_API_KEY": "sk-or-v1-wrong-key-99999999"
    }
    result = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    assert (result.exit_code, result.stdout) == (3, "")
    assert last_line(result.stderr) == (
        f"error: {host(served)} rejected the openrouter API key (User not found.); the key "
        "comes from NANOEDIT_OPENROUTER_API_KEY, which overrides the config file: unset "
        "NANOEDIT_OPENROUTER_API_KEY or fix it"
    )


def test_an_unknown_model_is_an_api_error_with_the_servers_words(
    served: Served, sample: Path
) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--model", "google/nope"],
        env=one_backend_env(served, "openrouter"),
    )
    assert (result.exit_code, result.stdout) == (5, "")
    assert last_line(result.stderr) == (
        f"error: {host(served)} does not serve google/nope on the openrouter backend "
        "(google/nope is not a valid model ID); it was not retried: see nanoedit models "
        "--backend openrouter for what it sells, and choose another --model"
    )


@pytest.mark.parametrize(
    ("suffix", "fix"),
    [
        # The sandbox's bare address: its /v1 belongs to the OpenAI-compatible gateway.
        ("", "{base}/api"),
        ("/v1", "{base}/api"),
        # A path nothing answers at all.
        ("/other/api", "the address of OpenRouter's API (https://openrouter.ai/api)"),
    ],
)
def test_a_base_url_without_the_api_path_is_named_as_the_fault(
    served: Served, sample: Path, suffix: str, fix: str
) -> None:
    env = one_backend_env(served, "openrouter") | {
        "NANOEDIT_OPENROUTER_BASE_URL": served.base_url + suffix
    }
    result = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    assert (result.exit_code, result.stdout) == (5, "")
    root = served.base_url + suffix.removesuffix("/v1")
    assert last_line(result.stderr) == (
        f"error: {host(served)} answered HTTP 404 for POST {root}/v1/chat/completions: no "
        f"such path, so the base URL {root} looks wrong; OpenRouter's routes are under "
        "/api, set openrouter.base_url (or NANOEDIT_OPENROUTER_BASE_URL) to "
        + fix.format(base=served.base_url)
    )
    check = run_cli(["config", "check"], env=env)
    assert check.exit_code == 5
    assert (
        f"openrouter  error  ({host(served)} answered HTTP 404 for GET {root}/v1/key: no such "
        f"path, so the base URL {root} looks wrong; OpenRouter's routes are under /api, set "
        "openrouter.base_url (or NANOEDIT_OPENROUTER_BASE_URL) to "
        + fix.format(base=served.base_url)
        + ")"
    ) in check.stdout.splitlines()
    assert chats(served) == []


def test_config_check_masks_a_key_the_server_echoes() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        said = f"bad key {request.headers['authorization']}"
        return httpx.Response(401, json={"error": {"code": 401, "message": said}})

    settings = BackendSettings("openrouter", "https://or.example/api", "sk-or-v1-secret-1234", "m")
    with httpx.Client(transport=httpx.MockTransport(echo)) as client:
        result = check_backend(settings, client)
    assert result == CheckResult(
        "openrouter",
        KEY_REJECTED,
        "or.example rejected the key (HTTP 401: bad key Bearer ****); set a valid one with: "
        "nanoedit config set openrouter.api_key KEY",
    )


def test_config_check_reports_the_credit_left_and_never_the_label() -> None:
    key = "sk-or-v1-0123456789abcdef"

    def record(request: httpx.Request) -> httpx.Response:
        assert (request.url.path, request.headers["authorization"]) == (
            "/api/v1/key",
            f"Bearer {key}",
        )
        data = {"label": key[:12] + "..." + key[-3:], "limit": 5, "usage": 0.5,
                "limit_remaining": 4.5, "is_free_tier": False}  # fmt: skip
        return httpx.Response(200, json={"data": data})

    settings = BackendSettings("openrouter", "https://or.example/api", key, "m")
    with httpx.Client(transport=httpx.MockTransport(record)) as client:
        result = check_backend(settings, client)
    assert result == CheckResult(
        "openrouter", READY, "or.example, key accepted, 4.5 credits left on this key"
    )


# Retries: the fault matrix of this backend is in test_faults.py ---------------------------


# Progress, below the CLI --------------------------------------------------------------------


def test_progress_shows_the_body_going_out_then_the_wait() -> None:
    sandbox = Sandbox()
    settings = BackendSettings("openrouter", f"{SANDBOX_BASE_URL}/api", SANDBOX_KEY, FLASH)
    # Noise, stored uncompressed: a body of several 64 KiB pieces, each reported as it goes.
    Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3)).save(
        "noise.png", compress_level=0
    )
    [job] = build_edit_jobs(["noise.png"], [], Options(prompt="x", count=2), None)
    from nanoedit.net.inputs import load_local

    phases: list[tuple[str, int | None, int | None]] = []

    def progress(phase: str, done: int | None = None, total: int | None = None) -> None:
        phases.append((phase, done, total))

    with httpx.Client(transport=SandboxTransport(sandbox)) as client:
        http = JobHttp(client, RetryPolicy(), Deadline(60))
        upload = load_local(job.images[0])
        answer = OpenRouterBackend(settings, http).run(
            PreparedJob(job=job, model=FLASH, uploads=(upload,)), progress
        )
    assert len(answer.images) == 2
    assert answer.text == "Here is the edited image.\nHere is the edited image."
    assert answer.error is None
    size = len(sandbox.received[0].body)
    for number in (1, 2):
        mine = [p for p in phases if p[0].endswith(f"image {number} of 2")]
        assert mine[0] == (f"uploading, image {number} of 2", 0, size)
        assert mine[-1] == (f"waiting for the model, image {number} of 2", None, None)
        sent = [done for phase, done, _ in mine if phase.startswith("uploading") and done]
        assert sent == [64 * 1024 * n for n in range(1, size // (64 * 1024) + 1)]


# --dry-run ----------------------------------------------------------------------------------


def test_dry_run_pipes_each_image_in_as_a_data_uri(served: Served, sample: Path) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    result = run_cli(
        ["edit", "cat.png", "--ref", url, "-p", "it's a dog", "--size", "2K", "--model",
         "nano-banana-pro", "-n", "2", "--dry-run"],
        env=one_backend_env(served, "openrouter"),
    )  # fmt: skip
    assert (result.exit_code, result.stderr) == (
        0,
        "1 job, 2 images, estimated $0.268 (gemini-3-pro-image 2K at $0.134)\n",
    )
    head = (
        '{"model": "google/gemini-3-pro-image", "messages": [{"role": "user", '
        '"content": [{"type": "text", "text": "it\'"\'"\'s a dog"}, {"type": "image_url", '
        '"image_url": {"url": "data:image/png;base64,'
    )
    middle = '"}}, {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,'
    tail = '"}}]}], "modalities": ["image", "text"], "image_config": {"image_size": "2K"}}'
    command = (
        f"{{ printf '%s' '{head}'; base64 < cat.png | tr -d '\\n'; "
        f"printf '%s' '{middle}'; curl -sSL {url} | base64 | tr -d '\\n'; "
        f"printf '%s' '{tail}'; }} |\n"
        f"curl -sS -X POST {served.base_url}/api/v1/chat/completions "
        "-H 'Authorization: Bearer ****0003' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        "  --data-binary @-\n"
    )
    assert result.stdout == (
        f"# cat.png -> cat-edit, cat-edit-2 (openrouter, {PRO})\n" + command + command
    )
    assert OPENROUTER_KEY not in result.stdout
    assert served.sandbox.received == []


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash"
)
def test_the_printed_command_sends_what_nanoedit_sends(served: Served, sample: Path) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    args = ["edit", "cat.png", "--ref", url, "-p", 'it\'s "night"', "--ratio", "3:4"]
    printed = run_cli([*args, "--dry-run"], env=one_backend_env(served, "openrouter"))
    answer = run_printed(printed_command(printed.stdout, OPENROUTER_KEY))
    assert answer["choices"][0]["message"]["images"][0]["image_url"]["url"].startswith(
        "data:image/jpeg;base64,"
    )
    assert run_cli(args, env=one_backend_env(served, "openrouter")).exit_code == 0
    by_curl, by_nanoedit = chats(served)
    assert by_curl.json == by_nanoedit.json
    assert by_curl.headers["authorization"] == by_nanoedit.headers["authorization"]


# Fidelity: the vendor's own client ----------------------------------------------------------


@contextmanager
def vendor_client(served: Served, key: str = OPENROUTER_KEY) -> Iterator[openai.OpenAI]:
    """The openai SDK pointed at the served sandbox as at OpenRouter, without retries, and
    with no proxy from the environment between them."""
    with (
        openai.DefaultHttpxClient(trust_env=False) as http,
        openai.OpenAI(
            base_url=f"{served.base_url}/api/v1", api_key=key, max_retries=0, http_client=http
        ) as client,
    ):
        yield client


def test_the_openai_client_gets_message_images_of_the_exact_size(served: Served) -> None:
    with vendor_client(served) as client:
        completion = client.chat.completions.create(
            model=PRO,
            messages=[{"role": "user", "content": [
                {"type": "text", "text": "make it night"},
                {"type": "image_url", "image_url": {"url": data_uri(DOG, "image/jpeg")}},
            ]}],
            extra_body={"modalities": ["image", "text"],
                        "image_config": {"aspect_ratio": "16:9", "image_size": "2K"}},
        )  # fmt: skip
    assert completion.object == "chat.completion"
    assert completion.model == PRO
    choice = completion.choices[0]
    assert (choice.finish_reason, choice.message.role) == ("stop", "assistant")
    assert choice.message.content == "Here is the edited image."
    # The SDK has no field for the images: it keeps them as an extra one.
    extra = choice.message.model_extra or {}
    [image] = extra["images"]
    assert image["type"] == "image_url"
    header, _, payload = image["image_url"]["url"].partition(",")
    assert header == "data:image/jpeg;base64"
    with Image.open(io.BytesIO(base64.b64decode(payload))) as drawn:
        assert (drawn.format, drawn.size) == ("JPEG", (2752, 1536))
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 1120
    [post] = chats(served)
    assert post.json["image_config"] == {"aspect_ratio": "16:9", "image_size": "2K"}
    assert post.headers["authorization"] == f"Bearer {OPENROUTER_KEY}"


def test_the_openai_client_sees_the_errors_as_openrouter_sends_them(served: Served) -> None:
    messages: list[Any] = [{"role": "user", "content": "a cat"}]
    body = {"modalities": ["image", "text"]}
    served.sandbox.add_faults("no-credits,moderation")
    with vendor_client(served) as client:
        with pytest.raises(openai.APIStatusError) as credits:
            client.chat.completions.create(model=FLASH, messages=messages, extra_body=body)
        with pytest.raises(openai.PermissionDeniedError) as moderated:
            client.chat.completions.create(model=FLASH, messages=messages, extra_body=body)
    assert credits.value.status_code == 402
    assert credits.value.body == {
        "code": 402,
        "message": "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
        "metadata": {"error_type": "payment_required"},
    }
    assert moderated.value.body == {
        "code": 403,
        "message": f"{FLASH} requires moderation on Google AI Studio. Your input was flagged "
        'for "violence/graphic". No credits were charged.',
        "metadata": {"reasons": ["violence/graphic"], "flagged_input": "a cat",
                     "provider_name": "Google AI Studio", "model_slug": FLASH},
    }  # fmt: skip
    with (
        vendor_client(served, "sk-or-v1-wrong") as wrong_key,
        pytest.raises(openai.AuthenticationError) as wrong,
    ):
        wrong_key.chat.completions.create(model=FLASH, messages=messages, extra_body=body)
    assert wrong.value.body == {"code": 401, "message": "User not found."}


# The emulation itself ----------------------------------------------------------------------


def post_chat(served: Served, body: object, key: str | None = OPENROUTER_KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(trust_env=False) as client:
        return client.post(f"{served.base_url}{CHAT}", json=body, headers=headers)


def chat_body(model: str = FLASH, **extra: object) -> dict[str, object]:
    content = [{"type": "text", "text": "x"},
               {"type": "image_url", "image_url": {"url": data_uri(CAT, "image/png")}}]  # fmt: skip
    return {"model": model, "messages": [{"role": "user", "content": content}],
            "modalities": ["image", "text"], **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "key", "status", "error"),
    [
        (chat_body(), None, 401, {"code": 401, "message": "No auth credentials found"}),
        (chat_body(), "wrong", 401, {"code": 401, "message": "User not found."}),
        (chat_body("google/nope"), OPENROUTER_KEY, 400,
         {"code": 400, "message": "google/nope is not a valid model ID"}),
        (chat_body(image_config={"image_size": "0.5K"}), OPENROUTER_KEY, 400,
         {"code": 400, "message": f"image_config.image_size '0.5K' is not supported by {FLASH}; "
          "use one of 1K, 2K, 4K", "metadata": {"error_type": "invalid_request"}}),
        (chat_body(PRO, image_config={"aspect_ratio": "1:8"}), OPENROUTER_KEY, 400,
         {"code": 400, "message": f"image_config.aspect_ratio '1:8' is not supported by {PRO}; "
          "use one of 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9",
          "metadata": {"error_type": "invalid_request"}}),
        ({"model": FLASH, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,bm90IGFuIGltYWdl"}},
         ]}]}, OPENROUTER_KEY, 400,
         {"code": 400, "message": "content[0] is not a PNG, JPEG or WebP image; send PNG, JPEG "
          "or WebP", "metadata": {"error_type": "invalid_image"}}),
        ({"model": FLASH, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": data_uri(CAT, "image/png")}}] * 15}]},
         OPENROUTER_KEY, 400,
         {"code": 400, "message": f"{FLASH} takes at most 14 images, got 15",
          "metadata": {"error_type": "invalid_request", "provider_name": "Google AI Studio"}}),
    ],
)  # fmt: skip
def test_the_emulation_refuses_as_openrouter_does(
    served: Served, body: object, key: str | None, status: int, error: dict[str, object]
) -> None:
    answer = post_chat(served, body, key)
    assert (answer.status_code, answer.json()) == (status, {"error": error})


def test_the_emulation_fetches_url_inputs_and_answers_text_alone_without_the_image_modality(
    served: Served,
) -> None:
    url = f"{served.base_url}/samples/person.png"
    body = chat_body()
    body["messages"] = [{"role": "user", "content": [
        {"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": url}}]}]  # fmt: skip
    answer = post_chat(served, body).json()
    image = answer["choices"][0]["message"]["images"][0]["image_url"]["url"]
    with Image.open(io.BytesIO(base64.b64decode(image.partition(",")[2]))) as drawn:
        assert (drawn.format, drawn.size) == ("JPEG", (896, 1200))  # 3:4, the person's shape
    words = post_chat(served, chat_body(modalities=["text"])).json()
    assert words["choices"][0]["message"]["content"] == REFUSAL
    assert "images" not in words["choices"][0]["message"]


def test_sandbox_mode_reaches_the_emulation_in_process(sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "--backend", "openrouter", "--sandbox"])
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    assert image_info("cat-edit.jpg") == ("JPEG", (1200, 896))


def test_the_emulations_faults_are_listed() -> None:
    listed = [line.split(None, 2) for line in run_cli(["sandbox", "faults"]).stdout.splitlines()]
    # OpenRouter's own, together and in order (an API after it in the registry lists its own
    # after them).
    first = listed.index(["no-credits", "submit", "HTTP 402: the account has no credits left"])
    assert listed[first : first + 5] == [
        ["no-credits", "submit", "HTTP 402: the account has no credits left"],
        ["moderation", "submit", "HTTP 403: the input was flagged by moderation"],
        ["content-filter", "submit", "HTTP 200, finish_reason content_filter and no image"],
        ["choice-error", "submit", "HTTP 200 whose choice ended in an error, no image"],
        ["url-result", "submit", "the result image is a link to the file host, not a data: URI"],
    ]
