"""The fault matrix: both backends against every way the servers misbehave, over loopback.

Each case injects one fault plan into the served sandbox, runs one edit through the CLI and
asserts the exit code, the last line on stderr, how many requests of each kind the server
saw (a paid request sent twice would show here), and the files left on disk. The runs skip
their waits (retries, polls) on a :class:`SkippingClock`; one test waits a Retry-After for
real, and the time limits the server's silence reaches are real socket timeouts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import (
    DUOMI_KEY,
    OPENAI_KEY,
    OPENROUTER_KEY,
    Served,
    SkippingClock,
    backend_env,
    run_cli,
)
from PIL import Image

from nanoedit.sandbox import Sandbox, SandboxServer, sample_image
from nanoedit.sandbox.app import APIS


@pytest.fixture
def faulty(clock: SkippingClock) -> Iterator[Served]:
    """A served sandbox whose slow answers take 3 s and whose huge files are 201 MiB."""
    sandbox = Sandbox(
        keys=frozenset({OPENAI_KEY, DUOMI_KEY, OPENROUTER_KEY}),
        slow_seconds=3.0,
        huge_bytes=201 * 1024 * 1024,
        clock=clock.monotonic,
    )
    with SandboxServer(sandbox) as server:
        yield Served(sandbox, server.base_url)


@dataclass(frozen=True)
class Case:
    """One fault plan and everything that must follow from it."""

    faults: str
    code: int
    # The last stderr line (for a failure) contains this; "" for a success.
    message: str = ""
    # Requests the server saw: API submissions, task polls (at least), file downloads.
    submits: int = 1
    polls: int | None = None
    files: int = 1
    args: tuple[str, ...] = ()
    retries: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


OK = 0
API = 5
NET = 6
REFUSED = 8
RETRY = "retry 1 of 3"

# The multipart backend: one paid POST, then a download.
OPENAI_CASES: dict[str, Case] = {
    "429 honoured": Case("429", OK, submits=2, retries=1),
    "429 as HTTP date": Case("429-date", OK, submits=2, retries=1),
    "429 past the retries": Case(
        "429x2", API, "[rate_limit_exceeded]; the server is rate limiting requests; wait a little and try again", submits=2, files=0,
        args=("--retries", "1"), retries=1,
    ),
    "408": Case("408", OK, submits=2, retries=1),
    **{f"{status} json": Case(status, OK, submits=2, retries=1)
       for status in ("500", "502", "503", "504")},
    **{f"{status} html": Case(f"{status}-html", OK, submits=2, retries=1)
       for status in ("500", "502", "503", "504")},
    **{f"{status} empty": Case(f"{status}-empty", OK, submits=2, retries=1)
       for status in ("500", "502", "503", "504")},
    "503 json past the retries": Case(
        "503x4", API, "answered HTTP 503:", submits=4, files=0, retries=3,
    ),
    "502 html past the retries": Case(
        "502-htmlx4", API,
        "answered HTTP 502 with a body that is not JSON (it starts like HTML); the server or a "
        "proxy in front of it failed, try again later", submits=4, files=0, retries=3,
    ),
    "504 empty past the retries": Case(
        "504-emptyx4", API, "answered HTTP 504 with no error details; try again later",
        submits=4, files=0, retries=3,
    ),
    "reset after the body": Case(
        "reset", NET,
        "it may have reached the model, so nanoedit did not send it again (a second request "
        "could be charged twice); check your account, then run again, or pass --retry-unsafe "
        "to allow resending", files=0,
    ),
    "reset after the body, --retry-unsafe": Case(
        "reset", OK, submits=2, args=("--retry-unsafe",), retries=1
    ),
    "reset before the body": Case("reset-early", OK, submits=2, retries=1, extra={"big": "1"}),
    "slower than the timeout": Case(
        "slow", NET,
        "did not finish within the job's time limit of 1 s (1.0 s elapsed); raise it with "
        "--timeout", files=0, args=("--timeout", "1"),
    ),
    "invalid JSON": Case(
        "bad-json", API,
        "answered HTTP 200 with JSON that is cut short or malformed (it breaks at byte ", files=0,
    ),
    "error in HTTP 200": Case("error200", API, "answered HTTP 200:", files=0),
    "no image": Case("no-data", API, "answered HTTP 200 with no data list, so no image was made",
                     files=0),
    "empty data": Case("empty-data", API,
                       "answered HTTP 200 with an empty data list, so no image was made", files=0),
    "empty url": Case("empty-url", API,
                      "answered HTTP 200 with an empty image URL, so no image was made", files=0),
    "text only": Case("text-only", REFUSED, "answered with text but no image:", files=0),
    "data: URI": Case("data-uri", OK, files=0),
    "redirecting result": Case("redirect", OK, files=2),
    "expired result": Case(
        "expired", API, "could not be downloaded from", files=1,
    ),
    "result cut short": Case("truncated", OK, files=2, retries=1),
    "result cut short every time": Case(
        "truncatedx4", NET, "failed after 4 attempts (the connection broke: peer closed "
        "connection without sending complete message body", files=4, retries=3,
    ),
    "HTML instead of an image": Case(
        "html-result", API, "is not an image (it starts like HTML); nothing was saved",
    ),
    "result larger than the cap": Case(
        "huge", API, "is larger than 200 MiB; refusing to download it"
    ),
    "result larger than the cap, no length": Case(
        "huge-chunked", API, "is larger than 200 MiB; refusing to download it"
    ),
}  # fmt: skip

# The URL-list backend: a paid task submission, polls, then a download.
DUOMI_CASES: dict[str, Case] = {
    "429 on submit": Case("submit:429", OK, submits=2, retries=1),
    "429 date on a poll": Case("poll:429-date", OK, retries=1),
    "429 past the retries": Case(
        "submit:429x2", API, "refused the task submission (code 429)", submits=2, files=0,
        args=("--retries", "1"), retries=1,
    ),
    "408 on a poll": Case("poll:408", OK, retries=1),
    **{f"{status} json on submit": Case(f"submit:{status}", OK, submits=2, retries=1)
       for status in ("500", "502", "503", "504")},
    **{f"{status} html on a poll": Case(f"poll:{status}-html", OK, retries=1)
       for status in ("500", "502", "503", "504")},
    **{f"{status} empty on submit": Case(f"submit:{status}-empty", OK, submits=2, retries=1)
       for status in ("500", "502", "503", "504")},
    "503 past the retries": Case(
        "submit:503x4", API, "refused the task submission (code 503)", submits=4, files=0,
        retries=3,
    ),
    "reset after the submission": Case(
        "submit:reset", NET,
        "it may have reached the model, so nanoedit did not send it again", files=0,
    ),
    "reset after the submission, --retry-unsafe": Case(
        "submit:reset", OK, submits=2, args=("--retry-unsafe",), retries=1
    ),
    "reset on a poll": Case("poll:reset", OK, retries=1),
    "reset before a poll's body": Case("poll:reset-early", OK, retries=1),
    # The first poll comes 1.5 s in (skipped), so the silent poll is cut 0.5 s later.
    "poll slower than the timeout": Case(
        "poll:slow", NET, "did not finish within the job's time limit of 2 s", files=0,
        args=("--timeout", "2"), env={"NANOEDIT_DUOMI_POLL_INTERVAL": "1.5"},
    ),
    "invalid JSON on submit": Case(
        "submit:bad-json", API, "answered HTTP 200 with JSON that is cut short or malformed", files=0,
    ),
    "code 500 in HTTP 200 on submit": Case(
        "submit:error200", API, "refused the task submission (code 500)", files=0
    ),
    # A poll's failure is not the task's: it is polled again, and past --retries the job is
    # kept for resume, as its message says.
    "error in HTTP 200 on a poll": Case("poll:error200", OK),
    "error in HTTP 200 on every poll": Case(
        "poll:error200", API, "was submitted and is paid for, but polling it failed once "
        "(127.0.0.1", files=0, args=("--retries", "0"),
    ),
    "invalid JSON on a poll": Case("poll:bad-json", OK),
    "task error": Case("task-error", REFUSED, "was refused:", files=0),
    "task never finishes": Case(
        "task-stuck", NET,
        "did not finish within the job's time limit of 2 s (2 s elapsed, last state: running); "
        "it is still running on the server (it may be charged); nanoedit resume 1 collects it "
        "when it has finished", files=0, args=("--timeout", "2"),
    ),
    "unknown task state": Case("task-unknown", OK),
    "empty url": Case("empty-url", API, "succeeded without an image", files=0),
    "no image": Case("no-data", API, "succeeded without an image", files=0),
    "text only": Case("text-only", API, "succeeded without an image:", files=0),
    "data: URI": Case("data-uri", OK, files=0),
    "redirecting result": Case("redirect", OK, files=2),
    "expired result": Case("expired", API, "HTTP 403", files=1),
    "result cut short": Case("truncated", OK, files=2, retries=1),
    "HTML instead of an image": Case("html-result", API, "is not an image (it starts like HTML)"),
    "result larger than the cap": Case("huge", API, "is larger than 200 MiB"),
}  # fmt: skip


# OpenRouter's chat completions: one paid POST whose answer carries the image inline.
OPENROUTER_CASES: dict[str, Case] = {
    "429 honoured": Case("429", OK, submits=2, files=0, retries=1),
    "429 as HTTP date": Case("429-date", OK, submits=2, files=0, retries=1),
    "429 past the retries": Case(
        "429x2", API, "answered HTTP 429: Rate limit exceeded, please retry shortly "
        "[rate_limit_exceeded]; OpenRouter is rate limiting requests, wait a little and try again",
        submits=2, files=0, args=("--retries", "1"), retries=1,
    ),
    "408": Case("408", OK, submits=2, files=0, retries=1),
    **{f"{status} json": Case(status, OK, submits=2, files=0, retries=1)
       for status in ("500", "502", "503", "504")},
    **{f"{status} html": Case(f"{status}-html", OK, submits=2, files=0, retries=1)
       for status in ("502", "503")},
    "502 past the retries": Case(
        "502x4", API, "answered HTTP 502: Provider returned error [provider_unavailable]; the "
        "model or its provider is failing, try again later", submits=4, files=0, retries=3,
    ),
    "reset after the body": Case(
        "reset", NET, "it may have reached the model, so nanoedit did not send it again",
        files=0,
    ),
    "reset after the body, --retry-unsafe": Case(
        "reset", OK, submits=2, files=0, args=("--retry-unsafe",), retries=1
    ),
    "reset before the body": Case(
        "reset-early", OK, submits=2, files=0, retries=1, extra={"big": "1"}
    ),
    "slower than the timeout": Case(
        "slow", NET, "did not finish within the job's time limit of 1 s", files=0,
        args=("--timeout", "1"),
    ),
    "invalid JSON": Case(
        "bad-json", API, "answered HTTP 200 with JSON that is cut short or malformed", files=0,
    ),
    "result as a link": Case("url-result", OK),
    "result as a link that redirects": Case("url-result,redirect", OK, files=2),
    "result as a link, expired": Case("url-result,expired", API, "could not be downloaded from"),
}  # fmt: skip


def noisy_png(path: Path) -> None:
    """A PNG of noise, too big (over 4 MB) to fit in loopback's socket buffers."""
    Image.frombytes("RGB", (1400, 1400), os.urandom(1400 * 1400 * 3)).save(path, compress_level=0)


def run_case(
    served: Served,
    case: Case,
    inputs: list[str],
    clock: SkippingClock,
    env: dict[str, str] | None = None,
) -> None:
    served.sandbox.add_faults(case.faults)
    args = ["edit", *inputs, "-p", "make it a watercolor", *case.args]
    result = run_cli(args, env=(env or backend_env(served)) | case.env, clock=clock)
    stderr = result.stderr.splitlines()
    received = served.sandbox.received
    submits = [r for r in received if r.method == "POST"]
    polls = [r for r in received if r.method == "GET" and r.path.startswith("/api/")]
    files = [r for r in received if r.path.startswith("/files/")]
    retry_lines = [line for line in stderr if "; retry " in line]
    assert result.exit_code == case.code, result.stderr
    assert len(submits) == case.submits, result.stderr
    assert len(files) == case.files, result.stderr
    assert len(retry_lines) == case.retries, result.stderr
    if case.polls is not None:
        assert len(polls) >= case.polls
    on_disk = sorted(str(p) for p in Path(".").rglob("*") if p.is_file())
    local = [i for i in inputs if not i.startswith("http")]
    if case.code == OK:
        assert result.stdout == "cat-edit.jpg\n"
        assert stderr[-1].startswith("saved cat-edit.jpg (")
        with Image.open("cat-edit.jpg") as image:
            image.load()
            assert image.size[0] > 0
        assert on_disk == sorted([*local, "cat-edit.jpg"])
    else:
        assert result.stdout == ""
        assert stderr[-1].startswith("error: ")
        assert case.message in stderr[-1]
        assert on_disk == sorted(local), "a failed job must leave nothing behind"
    assert pending(served) == []
    assert not any(key in result.stderr for key in (OPENAI_KEY, DUOMI_KEY, OPENROUTER_KEY))


def pending(served: Served) -> list[str]:
    return served.sandbox.pending_faults()


@pytest.mark.parametrize("case", list(OPENAI_CASES.values()), ids=list(OPENAI_CASES))
def test_multipart_backend_meets_every_fault(
    faulty: Served, case: Case, clock: SkippingClock
) -> None:
    if case.extra.get("big"):
        noisy_png(Path("cat.png"))
    else:
        Path("cat.png").write_bytes(sample_image("cat.png")[0])
    run_case(faulty, case, ["cat.png"], clock)


@pytest.mark.parametrize("case", list(DUOMI_CASES.values()), ids=list(DUOMI_CASES))
def test_url_list_backend_meets_every_fault(
    faulty: Served, case: Case, clock: SkippingClock
) -> None:
    run_case(faulty, case, [f"{faulty.base_url}/samples/cat.png"], clock)


@pytest.mark.parametrize("case", list(OPENROUTER_CASES.values()), ids=list(OPENROUTER_CASES))
def test_chat_completions_backend_meets_every_fault(
    faulty: Served, case: Case, clock: SkippingClock
) -> None:
    if case.extra.get("big"):
        noisy_png(Path("cat.png"))
    else:
        Path("cat.png").write_bytes(sample_image("cat.png")[0])
    env = backend_env(faulty, openai=False, duomi=False, openrouter=True)
    run_case(faulty, case, ["cat.png"], clock, env)


def test_a_retry_after_is_waited_for_in_real_time(faulty: Served) -> None:
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    faulty.sandbox.add_faults("429")
    started = time.monotonic()
    result = run_cli(["edit", "cat.png", "-p", "x"], env=backend_env(faulty))
    waited = time.monotonic() - started
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    assert result.stderr.splitlines()[0].endswith("HTTP 429; retry 1 of 3 in 1.0 s")
    assert len([r for r in faulty.sandbox.received if r.method == "POST"]) == 2
    assert waited >= 1.0


def test_the_skipped_waits_are_the_ones_a_real_run_waits(
    faulty: Served, clock: SkippingClock
) -> None:
    case = Case("submit:429,poll:503", OK, submits=2, retries=2)
    run_case(faulty, case, [f"{faulty.base_url}/samples/cat.png"], clock)
    # Retry-After: 1 on the submission; the first poll 0.01 s on (NANOEDIT_DUOMI_POLL_INTERVAL);
    # then the backoff of the 503 (NANOEDIT_BACKOFF 0.01 s, less up to a quarter of jitter).
    first, poll, backoff = clock.waits
    assert (first, poll) == (1.0, 0.01)
    assert 0.0075 <= backoff <= 0.01


def test_a_big_upload_reset_before_its_body_is_resent_whole(
    faulty: Served, clock: SkippingClock
) -> None:
    noisy_png(Path("cat.png"))
    faulty.sandbox.add_faults("reset-early")
    result = run_cli(["edit", "cat.png", "-p", "x"], env=backend_env(faulty), clock=clock)
    assert result.exit_code == 0, result.stderr
    first, second = [r for r in faulty.sandbox.received if r.method == "POST"]
    assert (first.body_read, second.body_read) == (False, True)
    assert second.files[0].data == Path("cat.png").read_bytes()


# A rejected key -----------------------------------------------------------------------------

GEMINI_KEY_INVALID = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    }
}
# Each API's cheapest request that carries a key, and how its provider refuses an unknown key.
KEY_CHECKS: dict[str, tuple[str, str, dict[str, str], int, object]] = {
    "openai": ("GET", "/v1/models", {"Authorization": "Bearer KEY"}, 401, {"error": {
        "message": "invalid token", "type": "new_api_error", "param": "",
        "code": "invalid_api_key"}}),
    "duomi": ("GET", "/api/gemini/nano-banana/0123456789abcdef0123456789abcdef",
              {"Authorization": "KEY"}, 401, {"code": 401, "msg": "invalid api key"}),
    "gemini": ("GET", "/v1beta/models", {"x-goog-api-key": "KEY"}, 400, GEMINI_KEY_INVALID),
    "fal": ("GET", "/fal-ai/nano-banana/requests/unknown/status", {"Authorization": "Key KEY"},
            401, {"detail": "No user found for Key ID and Secret"}),
    "replicate": ("GET", "/v1/account", {"Authorization": "Bearer KEY"}, 401, {
        "type": "https://replicate.com/docs/reference/http#errors", "title": "Unauthenticated",
        "status": 401, "detail": "You did not pass a valid authentication token"}),
    "openrouter": ("GET", "/api/v1/key", {"Authorization": "Bearer KEY"}, 401,
                   {"error": {"code": 401, "message": "User not found."}}),
    "vertex": ("GET", "/v1/publishers/google/models/gemini-3-pro-image",
               {"Authorization": "Bearer KEY"}, 401, {"error": {
        "code": 401, "status": "UNAUTHENTICATED",
        "message": "Request had invalid authentication credentials. Expected OAuth 2 access "
        "token, login cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project."}}),
}  # fmt: skip


def without_gateway_id(body: object) -> object:
    """The gateway's error object without the request id its message ends with."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
        if isinstance(message, str) and " (request id: " in message:
            return {"error": {**body["error"], "message": message.partition(" (request id: ")[0]}}
    return body


def test_every_registered_api_has_a_key_check() -> None:
    # An API added to the sandbox's registry must show how its provider refuses a key.
    assert sorted(KEY_CHECKS) == sorted(api.name for api in APIS)


@pytest.mark.parametrize("api", list(KEY_CHECKS))
def test_key_rejected_answers_as_the_provider_answers_an_unknown_key(api: str) -> None:
    method, path, headers, status, refusal = KEY_CHECKS[api]

    def ask(base_url: str, key: str) -> tuple[int, object]:
        sent = {name: value.replace("KEY", key) for name, value in headers.items()}
        answer = httpx.request(method, base_url + path, headers=sent, timeout=30)
        return answer.status_code, without_gateway_id(answer.json())

    # The same answer as a key the server does not know, and the provider's documented one.
    with SandboxServer(Sandbox(keys=frozenset({"right-key"}))) as keyed:
        assert ask(keyed.base_url, "wrong-key") == (status, refusal)
    with SandboxServer(Sandbox(faults="key-rejectedx2")) as served:
        assert ask(served.base_url, "any-key") == (status, refusal)
        assert ask(served.base_url, "any-key") == (status, refusal)
        # Used up: the same key works again.
        assert ask(served.base_url, "any-key")[0] in (200, 404)


@pytest.mark.parametrize(
    ("backend", "requests"),
    [
        ("openai", ["POST /v1/images/edits"]),
        ("duomi", ["POST /api/gemini/nano-banana-edit"]),
        ("gemini", ["POST /v1beta/models/gemini-nano-banana-2.1:generateContent"]),
        ("fal", ["POST /storage/upload/initiate"]),
        ("replicate", ["POST /v1/files"]),
        ("openrouter", ["POST /api/v1/chat/completions"]),
    ],
)
def test_a_rejected_key_holds_back_the_batch_on_every_backend(
    served: Served, backend: str, requests: list[str]
) -> None:
    names = ["a.png", "b.png", "c.png"]
    for name in names:
        Path(name).write_bytes(sample_image("cat.png")[0])
    # duomi takes URLs only: the sandbox's own sample, three times.
    inputs = [f"{served.base_url}/samples/cat.png"] * 3 if backend == "duomi" else names
    served.sandbox.add_faults("key-rejected")
    env = backend_env(
        served, openai=True, duomi=True, gemini=True, fal=True, replicate=True, openrouter=True
    )
    result = run_cli(
        ["edit", *inputs, "-p", "x", "-j", "1", "--backend", backend, "--json"], env=env
    )
    assert (result.exit_code, result.stdout.count('"sent": false')) == (3, 2), result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and error[0].endswith("; 2 jobs not sent"), result.stderr
    assert f"rejected the {backend} API key" in error[0]
    # One request reached the server: the first, refused; nothing else was sent.
    assert [f"{r.method} {r.path}" for r in served.sandbox.received] == requests
    assert served.sandbox.pending_faults() == []


def test_the_served_sandbox_rehearses_a_rejected_key_through_the_console_script(
    isolated: Path,
) -> None:
    # As the defect was found: `sandbox serve` took any key, so this could not be rehearsed.
    nanoedit = str(Path(sys.executable).with_name("nanoedit"))
    serve = subprocess.Popen(
        [nanoedit, "sandbox", "serve", "--port", "0", "--faults", "key-rejected"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        base_url = serve.stdout.readline().strip()
        for name in ("a.png", "b.png", "c.png"):
            Path(name).write_bytes(sample_image("cat.png")[0])
        env = dict(os.environ) | {
            "NANOEDIT_OPENAI_BASE_URL": base_url, "NANOEDIT_OPENAI_API_KEY": "sk-any-key",
        }  # fmt: skip
        run = subprocess.run(
            [nanoedit, "edit", "a.png", "b.png", "c.png", "-p", "x", "-j", "1"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        serve.terminate()
        _, log = serve.communicate(timeout=30)
    assert (run.returncode, run.stdout) == (3, "")
    assert run.stderr.splitlines()[1].endswith("; 2 jobs not sent"), run.stderr
    requests = [line for line in log.splitlines() if line.startswith(("GET ", "POST "))]
    assert requests == ["POST /v1/images/edits 401"]
