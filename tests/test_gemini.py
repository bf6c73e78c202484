"""The Gemini backend against the served sandbox: the exact requests, the saved images, the
refusals (exit 8), retries, limits checked before sending, the Files API, and the dry run."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import GEMINI_KEY, Served, SkippingClock, error_object, host, one_backend_env, run_cli
from PIL import Image

from nanoedit.backends.base import PreparedJob
from nanoedit.backends.gemini import GeminiBackend
from nanoedit.errors import RefusedError
from nanoedit.jobs import Options, build_edit_jobs
from nanoedit.net.http import Deadline, JobHttp, RetryPolicy
from nanoedit.net.inputs import load_local
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
HAT = sample_image("hat.png")[0]


def calls(served: Served) -> list[str]:
    return [f"{r.method} {r.path}" for r in served.sandbox.received]


def test_an_edit_sends_the_prompt_then_the_exact_bytes_and_saves_the_image(
    served: Served, sample: Path
) -> None:
    Path("hat.png").write_bytes(HAT)
    result = run_cli(
        ["edit", "cat.png", "--ref", "hat.png", "-p", "put the hat on", "--ratio", "16:9"],
        env=one_backend_env(served, "gemini"),
    )
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    (post,) = served.sandbox.received
    # nano-banana, the default, is the newest GA flash model: Nano Banana 2.1.
    assert post.path == "/v1beta/models/gemini-nano-banana-2.1:generateContent"
    assert post.query == {} and GEMINI_KEY not in post.path  # the key never goes in the URL
    assert post.headers["x-goog-api-key"] == GEMINI_KEY
    assert "authorization" not in post.headers
    assert post.json == {
        "contents": [{"role": "user", "parts": [
            {"text": "put the hat on"},
            {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(CAT).decode()}},
            {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(HAT).decode()}},
        ]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "16:9"},
        },
    }  # fmt: skip
    with Image.open("cat-edit.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (1376, 768))
    # The model's words beside the image are shown, not saved.
    assert "cat.png: the model says: Here is the edited image." in result.stderr


def test_a_3x_model_skips_thought_images_and_reports_its_words_in_json(
    served: Served, sample: Path
) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "night", "-m", "nano-banana-pro", "--size", "2K",
         "--ratio", "4:3", "--json"],
        env=one_backend_env(served, "gemini"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["backend"], record["model"]) == ("gemini", "gemini-3-pro-image")
    assert record["text"] == "Here is the edited image."
    # One image: the draft marked as a thought is not a result.
    assert [(o["path"], o["width"], o["height"], o["format"]) for o in record["outputs"]] == [
        ("cat-edit.jpg", 2400, 1792, "jpeg")
    ]
    assert served.sandbox.received[0].json["generationConfig"]["imageConfig"] == {
        "aspectRatio": "4:3",
        "imageSize": "2K",
    }
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat-edit.jpg", "cat.png"]


def test_generate_sends_the_text_alone_and_count_is_that_many_requests(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox", "-n", "2", "-m", "nano-banana-2", "--ratio", "1:4"],
        env=one_backend_env(served, "gemini"),
    )
    assert (result.exit_code, result.stdout) == (0, "a-red-fox.jpg\na-red-fox-2.jpg\n")
    assert calls(served) == ["POST /v1beta/models/gemini-3.1-flash-image:generateContent"] * 2
    assert served.sandbox.received[0].json["contents"] == [
        {"role": "user", "parts": [{"text": "a red fox"}]}
    ]
    for name in ("a-red-fox.jpg", "a-red-fox-2.jpg"):
        with Image.open(name) as image:
            assert image.size == (512, 2048)


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (
            "image-safety",
            "made no image (finishReason IMAGE_SAFETY): Unable to show the generated image.",
        ),
        ("prompt-blocked", "blocked the prompt (PROHIBITED_CONTENT); rephrase the prompt"),
        ("text-only", "answered with text but no image:"),
    ],
)
def test_a_refusal_exits_8_names_the_reason_and_is_not_sent_again(
    served: Served, sample: Path, fault: str, said: str
) -> None:
    served.sandbox.add_faults(fault)
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--json"], env=one_backend_env(served, "gemini")
    )
    assert (result.exit_code, len(served.sandbox.received)) == (8, 1)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {host(served)} ")
    assert said in last
    error = json.loads(result.stdout)["error"]
    assert (error["kind"], error["exit_code"]) == ("refused", 8)
    assert error["message"] == last.removeprefix("error: ")
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat.png"]


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("no-image",
         "made no image with gemini-nano-banana-2.1 (finishReason NO_IMAGE: \"The model was "
         "expected to generate an image, but none was generated\", in Google's words); that is "
         "not a refusal of the content: try again"),
        ("image-other",
         "made no image with gemini-nano-banana-2.1 (finishReason IMAGE_OTHER: \"Image "
         "generation stopped for a reason not otherwise specified\", in Google's words); that "
         "is not a refusal of the content: try again"),
    ],
)  # fmt: skip
def test_no_image_and_image_other_are_api_failures_not_refusals(
    served: Served, sample: Path, fault: str, said: str
) -> None:
    # Google's meaning of these two is "no image, for no content reason": exit 5, not 8. The
    # model is the catalog's, an image model: the advice to check it is for unknown ids.
    served.sandbox.add_faults(fault)
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--json"], env=one_backend_env(served, "gemini")
    )
    assert (result.exit_code, len(served.sandbox.received)) == (5, 1)
    message = f"{host(served)} {said}"
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}"
    error = json.loads(result.stdout)["error"]
    assert error == error_object("api", message, 5, fault.upper().replace("-", "_"))
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat.png"]


def test_a_429_asks_for_its_wait_in_the_body_and_it_is_honoured(
    served: Served, sample: Path
) -> None:
    # RetryInfo asks for 17 s; with 5 s left the job says so instead of waiting in vain.
    served.sandbox.add_faults("429")
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--timeout", "5"], env=one_backend_env(served, "gemini")
    )
    assert result.exit_code == 6
    assert "failed (HTTP 429) and a retry in 17 s would pass the job's time limit of 5 s" in (
        result.stderr
    )
    assert len(served.sandbox.received) == 1


def test_an_overloaded_model_is_retried(served: Served, sample: Path) -> None:
    served.sandbox.add_faults("503")
    result = run_cli(["edit", "cat.png", "-p", "x"], env=one_backend_env(served, "gemini"))
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    assert len(served.sandbox.received) == 2
    assert "HTTP 503; retry 1 of 3" in result.stderr


def test_errors_in_googles_shape(served: Served, sample: Path) -> None:
    served.sandbox.add_faults("invalid-argument")
    bad = run_cli(["edit", "cat.png", "-p", "x"], env=one_backend_env(served, "gemini"))
    assert bad.exit_code == 5
    assert (
        bad.stderr.strip().splitlines()[-1].startswith(f"error: {host(served)} answered HTTP 400: ")
    )
    assert bad.stderr.strip().endswith("[INVALID_ARGUMENT]")
    wrong = run_cli(
        ["edit", "cat.png", "-p", "x"],
        env=one_backend_env(served, "gemini")
        | {"NANOEDIT_GEMINI_API_KEY": "AIza-wrong-key-for-the-test"},
    )
    assert wrong.exit_code == 3
    assert f"error: {host(served)} rejected the gemini API key (" in wrong.stderr
    assert "AIza-wrong-key-for-the-test" not in wrong.stderr + wrong.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--ref", "cat.png"] * 14, 4,
         "cat.png: 15 images for one job, and gemini-nano-banana-2.1 takes at most 14; pass "
         "fewer --ref images"),
        (["-m", "nano-banana-pro", "--ratio", "1:8"], 2,
         "gemini-3-pro-image does not render the ratio 1:8 on gemini; choose another --ratio, "
         "or choose a model that renders it (--model nano-banana-2.1 or nano-banana-2)"),
        (["-m", "nano-banana-pro", "--size", "512"], 2,
         "gemini-3-pro-image renders 1K, 2K, 4K only on gemini, so size 512 cannot be "
         "honoured; drop it (from --size, NANOEDIT_SIZE or default.size), or choose a model "
         "that renders it (--model nano-banana-2)"),
        (["-m", "gemini-2.5-flash-image"], 2,
         "gemini-2.5-flash-image (Nano Banana) was shut down on 2026-10-02, so nothing was "
         "sent; use its replacement: --model gemini-3.1-flash-image (Nano Banana 2)"),
    ],
)  # fmt: skip
def test_what_a_model_cannot_do_is_refused_before_sending(
    served: Served, sample: Path, args: list[str], code: int, message: str
) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", *args], env=one_backend_env(served, "gemini"))
    assert (result.exit_code, result.stderr.strip()) == (code, f"error: {message}")
    assert served.sandbox.received == []


class PacedClock(SkippingClock):
    """A clock that moves only by the waits it skips, not with real time: a run's time limit
    and the sandbox's processing then count the same seconds, however loaded the machine."""

    def monotonic(self) -> float:
        """The waits skipped so far."""
        return self.skipped


@pytest.fixture
def paced_clock() -> PacedClock:
    return PacedClock()


@pytest.fixture
def paced(paced_clock: PacedClock) -> Iterator[Served]:
    """The sandbox on loopback on ``paced_clock``: a file it processes for 3 s is ACTIVE
    after exactly the run's waits that add up to 3 s."""
    sandbox = Sandbox(keys=frozenset({GEMINI_KEY}), clock=paced_clock.monotonic)
    with SandboxServer(sandbox) as server:
        yield Served(sandbox, server.base_url)


def big_png() -> bytes:
    """big.png, written: noise does not compress, so about 16 MiB of PNG, over 20 MiB as
    base64, which goes through the Files API."""
    side = 2400
    noise = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    noise.save("big.png", compress_level=0)
    return Path("big.png").read_bytes()


def test_inputs_too_large_to_inline_go_through_the_files_api_and_wait_for_active(
    paced: Served, paced_clock: PacedClock
) -> None:
    data = big_png()
    result = run_cli(
        ["edit", "big.png", "-p", "x"], env=one_backend_env(paced, "gemini"), clock=paced_clock
    )
    assert (result.exit_code, result.stdout) == (0, "big-edit.jpg\n"), result.stderr
    start, finish, *polls, post = paced.sandbox.received
    assert (start.method, start.path) == ("POST", "/upload/v1beta/files")
    assert start.headers["x-goog-upload-protocol"] == "resumable"
    assert start.headers["x-goog-upload-header-content-length"] == str(len(data))
    assert (finish.headers["x-goog-upload-command"], finish.body) == ("upload, finalize", data)
    # A file that large is PROCESSING for 3 s: polled after 1, 2.5 and 4.75 s, then used.
    file_id = polls[0].path.removeprefix("/v1beta/files/")
    assert [(r.method, r.path) for r in polls] == [("GET", f"/v1beta/files/{file_id}")] * 3
    assert all(r.headers["x-goog-api-key"] == GEMINI_KEY for r in polls)
    assert paced_clock.waits == [1.0, 1.5, 2.25]
    (text, part) = post.json["contents"][0]["parts"]
    assert text == {"text": "x"}
    assert part["fileData"] == {
        "mimeType": "image/png",
        "fileUri": f"{paced.base_url}/v1beta/files/{file_id}",
    }


def test_an_upload_that_fails_processing_is_a_clear_error_and_nothing_is_paid(
    paced: Served, paced_clock: PacedClock
) -> None:
    big_png()
    paced.sandbox.add_faults("upload-failed")
    result = run_cli(
        ["edit", "big.png", "-p", "x", "--json"],
        env=one_backend_env(paced, "gemini"),
        clock=paced_clock,
    )
    assert result.exit_code == 5
    paths = [f"{r.method} {r.path}" for r in paced.sandbox.received]
    file_id = paths[-1].removeprefix("GET /v1beta/files/")
    # Polled until it ended, and no generateContent went out: nothing was paid for.
    assert paths == ["POST /upload/v1beta/files"] * 2 + [f"GET /v1beta/files/{file_id}"] * 3
    message = (
        f"{host(paced)} could not process the upload of big.png (files/{file_id} ended FAILED: "
        "The file could not be processed as an image.), so nothing was sent to the model; "
        "check that the file is an image Gemini takes (PNG, JPEG, WebP, HEIC), or send the "
        "job again"
    )
    assert json.loads(result.stdout)["error"] == error_object("api", message, 5)
    assert sorted(p.name for p in Path(".").iterdir()) == ["big.png"]


def test_an_upload_still_processing_at_the_time_limit_says_so(
    paced: Served, paced_clock: PacedClock
) -> None:
    big_png()
    result = run_cli(
        ["edit", "big.png", "-p", "x", "--timeout", "2"],
        env=one_backend_env(paced, "gemini"),
        clock=paced_clock,
    )
    assert result.exit_code == 6
    file_id = paced.sandbox.received[-1].path.removeprefix("/v1beta/files/")
    # Polled after 1 s; the next wait is cut to the 1 s left.
    assert paced_clock.waits == [1.0, 1.0]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: the upload of big.png on {host(paced)} (files/{file_id}) was still PROCESSING "
        "when the job's time limit of 2 s ran out (2.0 s elapsed); nothing was sent to the "
        "model: raise --timeout, or try again later"
    )
    assert not any(r.path.endswith(":generateContent") for r in paced.sandbox.received)


def test_the_dry_run_prints_a_command_that_works(served: Served, sample: Path) -> None:
    env = one_backend_env(served, "gemini") | {"NANOEDIT_GEMINI_API_KEY_CMD": f"echo {GEMINI_KEY}"}
    del env["NANOEDIT_GEMINI_API_KEY"]
    planned = run_cli(["edit", "cat.png", "-p", "it's a 'test'", "--dry-run"], env=env)
    assert planned.exit_code == 0, planned.stderr
    assert (
        planned.stdout.splitlines()[0] == "# cat.png -> cat-edit (gemini, gemini-nano-banana-2.1)"
    )
    assert served.sandbox.received == []
    command = "\n".join(planned.stdout.splitlines()[1:])
    answer = subprocess.run(
        ["bash", "-c", command], capture_output=True, check=True, timeout=30
    ).stdout
    parts = json.loads(answer)["candidates"][0]["content"]["parts"]
    # A 3.x model: its thought and draft first, then its words (the first part after the
    # thoughts, signed) and the signed image.
    assert [sorted(part) for part in parts] == [
        ["text", "thought"], ["inlineData", "thought"], ["text", "thoughtSignature"],
        ["inlineData", "thoughtSignature"],
    ]  # fmt: skip
    (post,) = served.sandbox.received
    assert post.json["contents"][0]["parts"] == [
        {"text": "it's a 'test'"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(CAT).decode()}},
    ]


def test_googles_own_variable_holds_the_key_and_config_shows_where_it_came_from(
    served: Served,
) -> None:
    env = {"GEMINI_API_KEY": GEMINI_KEY, "NANOEDIT_GEMINI_BASE_URL": served.base_url}
    listed = run_cli(["config", "list"], env=env)
    assert "gemini.api_key = ****0003  (GEMINI_API_KEY)" in listed.stdout.splitlines()
    # nanoedit's own variable comes first, then Google's two.
    both = env | {"GOOGLE_API_KEY": "AIza-other-key-0000000000", "NANOEDIT_GEMINI_API_KEY": "x"}
    assert (
        "gemini.api_key = ****  (NANOEDIT_GEMINI_API_KEY)"
        in run_cli(["config", "list"], env=both).stdout.splitlines()
    )
    checked = run_cli(["config", "check"], env=env)
    assert checked.exit_code == 0
    lines = [" ".join(line.split()) for line in checked.stdout.splitlines()]
    assert f"gemini ready ({host(served)}, key accepted)" in lines


def test_googles_api_key_wins_over_gemini_api_key_with_one_warning(
    served: Served, sample: Path
) -> None:
    # As Google's SDK does: GOOGLE_API_KEY first, and a word that both are set.
    other = "AIza-the-other-key-not-used-0009"
    env = {"NANOEDIT_GEMINI_BASE_URL": served.base_url, "GOOGLE_API_KEY": GEMINI_KEY,
           "GEMINI_API_KEY": other}  # fmt: skip
    Path("hat.png").write_bytes(HAT)
    result = run_cli(["edit", "cat.png", "hat.png", "-p", "x", "-n", "2"], env=env)
    assert result.exit_code == 0, result.stderr
    # Jobs finish in any order.
    assert sorted(result.stdout.splitlines()) == [
        "cat-edit-2.jpg", "cat-edit.jpg", "hat-edit-2.jpg", "hat-edit.jpg"
    ]  # fmt: skip
    assert [r.headers["x-goog-api-key"] for r in served.sandbox.received] == [GEMINI_KEY] * 4
    warning = (
        "warning: both GOOGLE_API_KEY and GEMINI_API_KEY are set; the gemini backend uses "
        "GOOGLE_API_KEY, the first of them (as Google's own SDK does); unset GEMINI_API_KEY if "
        "it is not the key you mean, or set NANOEDIT_GEMINI_API_KEY"
    )
    # Once for the run, whatever the number of jobs and requests.
    assert [line for line in result.stderr.splitlines() if line.startswith("warning:")] == [warning]
    for key in (GEMINI_KEY, other):
        assert key not in result.stdout + result.stderr
    listed = run_cli(["config", "list"], env=env)
    assert "gemini.api_key = ****0003  (GOOGLE_API_KEY)" in listed.stdout.splitlines()
    checked = run_cli(["config", "check"], env=env)
    assert checked.exit_code == 0
    assert checked.stderr.splitlines() == [warning]
    # nanoedit's own variable still comes first, and then neither of Google's is used.
    own = run_cli(["config", "check"], env=env | {"NANOEDIT_GEMINI_API_KEY": GEMINI_KEY})
    assert (own.exit_code, own.stderr) == (0, "")


SERVICE_DISABLED = (
    "Generative Language API has not been used in project 123456789012 before or it is "
    "disabled. Enable it by visiting https://console.developers.google.com/apis/api/"
    "generativelanguage.googleapis.com/overview?project=123456789012 then retry. If you "
    "enabled this API recently, wait a few minutes for the action to propagate to our systems "
    "and retry."
)
# What nanoedit shows of it: one line, clipped to 300 characters.
SERVICE_DISABLED_SHOWN = SERVICE_DISABLED[:299] + "…"
DENIED_ADVICE = {
    "permission-denied": (
        "The caller does not have permission [PERMISSION_DENIED]; Google turned the request "
        "down, not the key (a key it rejects is API_KEY_INVALID): the key's project may not "
        "have access to this model (some are kept for projects that used them before), or to "
        "a file the request names; choose another --model, or check the project in Google AI "
        "Studio"
    ),
    "service-disabled": (
        f"{SERVICE_DISABLED_SHOWN} [PERMISSION_DENIED, SERVICE_DISABLED]; the Generative "
        "Language API is not enabled for the key's Google Cloud project: enable it (Google's "
        "message gives the link), wait a few minutes, and try again"
    ),
}


@pytest.mark.parametrize("fault", ["permission-denied", "service-disabled"])
def test_a_403_that_does_not_name_the_key_is_not_a_rejected_key(
    served: Served, sample: Path, fault: str
) -> None:
    Path("hat.png").write_bytes(HAT)
    served.sandbox.add_faults(f"{fault}x2")
    result = run_cli(
        ["edit", "cat.png", "hat.png", "-p", "x", "--json", "-j", "1"],
        env=one_backend_env(served, "gemini"),
    )
    # A rejected key holds every job not sent yet back; this is no rejected key: both go out.
    assert (result.exit_code, len(served.sandbox.received)) == (5, 2)
    message = f"{host(served)} answered HTTP 403: {DENIED_ADVICE[fault]}"
    errors = [json.loads(line)["error"] for line in result.stdout.splitlines()]
    assert errors == [error_object("api", message, 5, "PERMISSION_DENIED")] * 2
    assert "rejected" not in result.stderr


@pytest.mark.parametrize("fault", ["permission-denied", "service-disabled"])
def test_config_check_tells_a_403_from_a_rejected_key(served: Served, fault: str) -> None:
    served.sandbox.add_faults(fault)
    checked = run_cli(["config", "check", "--json"], env=one_backend_env(served, "gemini"))
    assert checked.exit_code == 5
    (gemini,) = [b for b in json.loads(checked.stdout)["backends"] if b["backend"] == "gemini"]
    assert gemini == {
        "backend": "gemini",
        "status": "error",
        "detail": f"{host(served)} answered HTTP 403: {DENIED_ADVICE[fault]}",
        "passed": False,
    }
    # A key Google rejects is still said to be one.
    wrong = run_cli(
        ["config", "check", "--json"],
        env=one_backend_env(served, "gemini")
        | {"NANOEDIT_GEMINI_API_KEY": "AIza-wrong-key-for-the-test"},
    )
    assert wrong.exit_code == 3
    (rejected,) = [b for b in json.loads(wrong.stdout)["backends"] if b["backend"] == "gemini"]
    assert rejected["status"] == "key rejected"


def test_an_image_made_before_a_later_request_is_refused_comes_back_with_the_refusal(
    sample: Path,
) -> None:
    # -n 2 is two paid requests: when the second is refused, the first's image is paid for
    # and must come back with the error (the runner saves it, then fails the job), not be lost.
    sandbox = Sandbox()
    settings = BackendSettings("gemini", SANDBOX_BASE_URL, SANDBOX_KEY, "gemini-3.1-flash-image")
    [job] = build_edit_jobs(["cat.png"], [], Options(prompt="x", count=2), None)
    waits: list[str] = []

    def progress(phase: str, done: int | None = None, total: int | None = None) -> None:
        if phase.startswith("waiting for the model"):
            waits.append(phase)
            if len(waits) == 2:
                sandbox.add_faults("image-safety")  # the second request only

    with httpx.Client(transport=SandboxTransport(sandbox)) as client:
        http = JobHttp(client, RetryPolicy(), Deadline(60))
        prepared = PreparedJob(
            job=job, model="gemini-3.1-flash-image", uploads=(load_local(job.images[0]),)
        )
        answer = GeminiBackend(settings, http).run(prepared, progress)
    assert len(sandbox.received) == 2
    assert len(answer.images) == 1 and answer.images[0].data is not None
    with Image.open(io.BytesIO(answer.images[0].data)) as image:
        assert image.size == (1200, 896)
    assert isinstance(answer.error, RefusedError)
    assert "IMAGE_SAFETY" in answer.error.message
