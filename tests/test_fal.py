"""The fal backend against the served sandbox's fal queue and storage, over loopback: uploads,
submissions, polls, responses, cancelling, faults, and fal's own client as the judge of the
sandbox's fidelity."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import fal_client
import httpx
import pytest
from conftest import (
    FAL_KEY,
    LogWatch,
    Served,
    host,
    interrupted_run,
    one_backend_env,
    received,
    run_cli,
)
from PIL import Image

from nanoedit.backends.base import PreparedJob
from nanoedit.backends.fal import FalBackend
from nanoedit.jobs import Options, build_edit_jobs
from nanoedit.net.http import Deadline, JobHttp, RetryPolicy
from nanoedit.output.provenance import read as read_provenance
from nanoedit.sandbox import (
    SANDBOX_BASE_URL,
    Sandbox,
    SandboxServer,
    SandboxTransport,
    sample_image,
)
from nanoedit.settings.values import BackendSettings

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
CAT = sample_image("cat.png")[0]
REQUEST_ID = re.compile(r"[0-9a-f-]{36}")


def routes(served: Served) -> list[str]:
    """Each request as METHOD and path, request ids and tokens made readable."""
    shown = []
    for request in served.sandbox.received:
        path = REQUEST_ID.sub("ID", request.path)
        path = re.sub(r"/(storage/uploads|files)/[0-9a-f]{32}", r"/\1/TOKEN", path)
        shown.append(f"{request.method} {path}")
    return shown


def test_a_local_file_is_uploaded_and_a_url_passed_as_it_is(served: Served, sample: Path) -> None:
    hat = f"{served.base_url}/samples/hat.png"
    result = run_cli(
        ["edit", "cat.png", "--ref", hat, "-p", "put the hat on the cat", "--model",
         "nano-banana-pro", "--size", "2K", "--ratio", "16:9"],
        env=one_backend_env(served, "fal"),
    )  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, "cat-edit.png\n"), result.stderr
    assert routes(served) == [
        "POST /storage/upload/initiate",
        "PUT /storage/uploads/TOKEN",
        "POST /fal-ai/nano-banana-pro/edit",
        "GET /fal-ai/nano-banana-pro/requests/ID/status",
        "GET /fal-ai/nano-banana-pro/requests/ID",
        "GET /files/TOKEN.png",
    ]
    initiate, put, submit, status, response, download = served.sandbox.received
    assert initiate.query == {"storage_type": "fal-cdn-v3"}
    assert initiate.json == {"content_type": "image/png", "file_name": "cat.png"}
    # The key goes to the queue and the storage API; never to the bucket or the result file.
    for request in (initiate, submit, status, response):
        assert request.headers["authorization"] == f"Key {FAL_KEY}"
    assert "authorization" not in put.headers and "authorization" not in download.headers
    assert (put.headers["content-type"], put.body) == ("image/png", CAT)
    [file_url] = [u for u in submit.json["image_urls"] if "/fal-media/files/" in u]
    assert re.fullmatch(rf"{served.base_url}/fal-media/files/[0-9a-f]{{16}}/cat\.png", file_url)
    assert submit.json == {
        "prompt": "put the hat on the cat",
        "image_urls": [file_url, hat],
        "num_images": 1,
        "aspect_ratio": "16:9",
        "resolution": "2K",
        "output_format": "png",
    }
    # The status and response URLs drop the app's /edit path: they are the ones fal answered.
    assert status.path.endswith("/status") and "/edit" not in status.path + response.path
    with Image.open("cat-edit.png") as image:
        assert (image.format, image.size) == ("PNG", (2752, 1536))
    # The file was hashed as sent; the URL went as a URL and was never read here.
    record = read_provenance(Path("cat-edit.png"))
    assert record is not None
    assert (record["backend"], record["model"]) == ("fal", "fal-ai/nano-banana-pro")
    assert [item["name"] for item in record["inputs"]] == ["cat.png", hat]
    assert record["inputs"][1]["sha256"] == ""
    assert len(record["inputs"][0]["sha256"]) == 64


def test_a_url_only_edit_is_never_downloaded_by_nanoedit(served: Served) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    result = run_cli(["edit", url, "-p", "add a hat"], env=one_backend_env(served, "fal"))
    assert (result.exit_code, result.stdout) == (0, "dog-edit.png\n"), result.stderr
    assert routes(served)[0] == "POST /fal-ai/nano-banana-2/edit"
    assert not any(r.path.startswith("/samples/") for r in served.sandbox.received)
    assert received(served, "POST")[0].json == {
        "prompt": "add a hat", "image_urls": [url], "num_images": 1, "output_format": "png",
    }  # fmt: skip
    with Image.open("dog-edit.png") as image:
        assert (image.format, image.size) == ("PNG", (1200, 896))


def test_a_generation_goes_to_the_app_itself_and_512_is_spelled_0_5k(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox", "--model", "gemini-3.1-flash-image", "--size",
         "512", "--ratio", "4:1", "--backend", "fal"],
        env=one_backend_env(served, "fal"),
    )  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, "a-red-fox.png\n"), result.stderr
    submit = received(served, "POST")[0]
    assert (submit.path, submit.json) == (
        "/fal-ai/nano-banana-2",
        {"prompt": "a red fox", "num_images": 1, "aspect_ratio": "4:1", "resolution": "0.5K",
         "output_format": "png"},
    )  # fmt: skip
    with Image.open("a-red-fox.png") as image:
        assert image.size == (1024, 256)


def test_more_than_four_images_go_in_several_submissions(served: Served) -> None:
    result = run_cli(["generate", "-p", "fox", "-n", "5", "--backend", "fal", "--json"],
                     env=one_backend_env(served, "fal"))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    submits = received(served, "POST")
    assert [s.json["num_images"] for s in submits] == [4, 1]
    outputs = json.loads(result.stdout)["outputs"]
    assert [(o["path"], o["width"], o["height"]) for o in outputs] == [
        ("fox.png", 1024, 1024), *[(f"fox-{n}.png", 1024, 1024) for n in range(2, 6)]
    ]  # fmt: skip


def test_the_shut_down_app_is_refused_and_fourteen_images_at_most(
    served: Served, sample: Path
) -> None:
    # fal-ai/nano-banana (2.5: no resolution field, three images at most) was shut down.
    for app in ("fal-ai/nano-banana", "fal-ai/nano-banana/edit"):
        gone = run_cli(
            ["edit", "cat.png", "-p", "x", "--model", app, "--size", "1K"],
            env=one_backend_env(served, "fal"),
        )
        assert (gone.exit_code, gone.stdout, gone.stderr.strip()) == (
            2,
            "",
            f"error: {app} (Nano Banana) was shut down on 2026-10-02, so nothing was sent; use "
            "its replacement: --model fal-ai/nano-banana-2 (Nano Banana 2)",
        )
    assert served.sandbox.received == []
    refs = [arg for n in range(14) for arg in ("--ref", f"https://h.example/{n}.png")]
    many = run_cli(["edit", "cat.png", *refs, "-p", "x"], env=one_backend_env(served, "fal"))
    assert (many.exit_code, many.stdout) == (4, "")
    assert many.stderr.strip() == (
        "error: cat.png: 15 images for one job, and fal-ai/nano-banana-2 takes at most 14; pass "
        "fewer --ref images"
    )
    assert served.sandbox.received == []
    one_k = run_cli(
        ["edit", "cat.png", "-p", "x", "--size", "1K"], env=one_backend_env(served, "fal")
    )
    assert one_k.exit_code == 0, one_k.stderr
    # nano-banana-2 has a resolution field: the size is sent.
    assert received(served, "POST")[-1].json["resolution"] == "1K"
    assert served.sandbox.received[0].path == "/storage/upload/initiate"


def test_the_queue_position_and_state_are_the_progress_phases() -> None:
    """In memory with a clock that moves only when the backend waits: every phase shows."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    sandbox = Sandbox(task_seconds=3.0, clock=lambda: now[0])
    settings = BackendSettings("fal", SANDBOX_BASE_URL, "any-key", "fal-ai/nano-banana-2")
    with httpx.Client(transport=SandboxTransport(sandbox)) as client:
        http = JobHttp(client, RetryPolicy(), Deadline(60, lambda: now[0]), sleeper=sleep)
        backend = FalBackend(settings, http)
        [job] = build_edit_jobs(["https://h.example/cat.png"], [], Options(prompt="x"), None)
        phases: list[str] = []
        answer = backend.run(
            PreparedJob(job=job, model=settings.model, urls=(job.images[0].location,)),
            lambda phase, done=None, total=None: phases.append(phase),
        )
    assert len(answer.images) == 1
    assert phases[0] == "submitting"
    assert phases[1] == "waiting for the model, task queued at position 0"
    # Polled every 0.5 s and on by half: queued, then running, until it completes.
    assert phases[2:] == [
        "waiting for the model, task queued at position 1",
        "waiting for the model, task running",
        "waiting for the model, task running",
    ]


@pytest.mark.parametrize(
    ("fault", "code", "message", "fetched"),
    [
        (
            "content-flagged",
            8,
            "fal request ID on HOST was refused: The content could not be processed because it "
            "contained material flagged by a content checker. [content_policy_violation]; "
            "rephrase the prompt or change the image",
            0,
        ),
        (
            "text-only",
            8,
            "fal request ID on HOST completed with text but no image: \"I can't create this "
            "image: the request may go against the content policy. Try describing it "
            'differently."; the model declined or only described the result, rephrase the prompt',
            1,
        ),
        ("empty-data", 5, "fal request ID on HOST completed without an image; try again", 1),
        (
            "model-error",
            5,
            "fal request ID on HOST failed: Runner disconnected while processing the request "
            "[runner_disconnected]",
            0,
        ),
        (
            "cancelled",
            5,
            "fal request ID on HOST was cancelled on the server (Request was cancelled "
            "[cancelled]), so no image was made; send the job again",
            0,
        ),
    ],
    ids=["refused", "text only", "no image", "model error", "cancelled"],
)
def test_a_request_that_ends_badly(
    served: Served, sample: Path, fault: str, code: int, message: str, fetched: int
) -> None:
    served.sandbox.add_faults(fault)
    result = run_cli(["edit", "cat.png", "-p", "x"], env=one_backend_env(served, "fal"))
    assert (result.exit_code, result.stdout) == (code, "")
    status = next(r for r in received(served, "GET") if r.path.endswith("/status"))
    request_id = status.path.split("/")[4]
    expected = message.replace("ID", request_id).replace("HOST", host(served))
    assert result.stderr.strip().splitlines() == [f"error: {expected}"]
    # A COMPLETED status that carries an error is the request's outcome (fal_client reads it
    # so): its response is not fetched, and nothing is sent again. Otherwise it is fetched once.
    responses = [r for r in received(served, "GET") if r.path.endswith(request_id)]
    assert len(responses) == fetched
    assert len(received(served, "POST")) == 2  # the upload's start, and the one submission
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat.png"]


@pytest.mark.parametrize(
    ("fault", "submits", "retried"),
    [("submit:429", 2, True), ("submit:503-html", 2, True), ("poll:502", 1, True),
     ("poll:reset", 1, True), ("submit:reset", 1, False)],
    ids=["429 on submit", "proxy 503 on submit", "502 on a poll", "reset poll", "reset submit"],
)  # fmt: skip
def test_retries_never_pay_twice(
    served: Served, sample: Path, fault: str, submits: int, retried: bool
) -> None:
    served.sandbox.add_faults(fault)
    result = run_cli(["edit", "cat.png", "-p", "x"], env=one_backend_env(served, "fal"))
    posts = [r for r in received(served, "POST") if r.path.startswith("/fal-ai/")]
    assert len(posts) == submits
    assert served.sandbox.pending_faults() == []
    if retried:
        assert (result.exit_code, result.stdout) == (0, "cat-edit.png\n"), result.stderr
        assert "; retry 1 of 3 in " in result.stderr
    else:
        assert (result.exit_code, result.stdout) == (6, "")
        assert result.stderr.strip().endswith(
            "it may have reached the model, so nanoedit did not send it again (a second request "
            "could be charged twice); check your account, then run again, or pass "
            "--retry-unsafe to allow resending; it is kept in the history as job 1: nanoedit "
            "resume 1 --retry-unsafe sends it again"
        )


def test_an_expired_result_url_says_so(served: Served, sample: Path) -> None:
    served.sandbox.add_faults("expired")
    result = run_cli(["edit", "cat.png", "-p", "x"], env=one_backend_env(served, "fal"))
    assert (result.exit_code, result.stdout) == (5, "")
    assert result.stderr.strip() == (
        f"error: the result of cat.png could not be downloaded from {host(served)}: HTTP 403 "
        "(it starts like XML or markup); the link has expired; results must be fetched at once"
    )


def test_a_validation_error_names_the_field(served: Served, sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "--model", "fal-ai/nano-banana-pro",
                      "--ratio", "1:8"], env=one_backend_env(served, "fal"))  # fmt: skip
    # The ratio is refused before anything is sent: pro does not render 1:8.
    assert result.exit_code == 2
    assert served.sandbox.received == []
    other = run_cli(["generate", "-p", "x", "--backend", "fal", "--model", "fal-ai/other-app"],
                    env=one_backend_env(served, "fal"))  # fmt: skip
    assert (other.exit_code, other.stdout) == (5, "")
    assert other.stderr.strip() == (
        f"error: {host(served)} does not serve fal-ai/other-app on the fal backend (HTTP 404: "
        "Application 'other-app' not found); it was not retried: see nanoedit models --backend "
        "fal for what it sells, and choose another --model"
    )


def test_a_bad_key_exits_3_and_is_never_shown(served: Served, sample: Path) -> None:
    env = one_backend_env(served, "fal") | {"NANOEDIT_FAL_API_KEY": "wrong-key-1234567"}
    result = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr.strip() == (
        f"error: {host(served)} rejected the fal API key (No user found for Key ID and Secret); "
        "the key comes from NANOEDIT_FAL_API_KEY, which overrides the config file: unset "
        "NANOEDIT_FAL_API_KEY or fix it"
    )
    assert "wrong-key-1234567" not in result.stderr


def test_the_providers_own_variable_gives_the_key(served: Served, sample: Path) -> None:
    env = one_backend_env(served, "fal")
    del env["NANOEDIT_FAL_API_KEY"]
    result = run_cli(["edit", "cat.png", "-p", "x"], env=env | {"FAL_KEY": FAL_KEY})
    assert result.exit_code == 0, result.stderr
    assert served.sandbox.received[0].headers["authorization"] == f"Key {FAL_KEY}"


def test_a_separate_storage_url_gets_the_uploads(served: Served, sample: Path) -> None:
    with SandboxServer(Sandbox()) as storage:
        env = one_backend_env(served, "fal") | {"NANOEDIT_FAL_STORAGE_URL": storage.base_url}
        result = run_cli(["edit", "cat.png", "-p", "x"], env=env)
        assert result.exit_code == 0, result.stderr
        assert [r.path for r in storage.sandbox.received][:2] == [
            "/storage/upload/initiate", storage.sandbox.received[1].path
        ]  # fmt: skip
        assert storage.sandbox.received[1].method == "PUT"
    assert routes(served)[0] == "POST /fal-ai/nano-banana-2/edit"


def test_a_timeout_while_queued_cancels_the_request(served: Served, sample: Path) -> None:
    served.sandbox.add_faults("queue-stuck")
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--timeout", "1", "--no-history"],
        env=one_backend_env(served, "fal"),
    )
    assert (result.exit_code, result.stdout) == (6, "")
    [cancel] = received(served, "PUT")[1:]
    assert re.fullmatch(r"/fal-ai/nano-banana-2/requests/[0-9a-f-]{36}/cancel", cancel.path)
    assert cancel.headers["authorization"] == f"Key {FAL_KEY}"
    request_id = cancel.path.split("/")[4]
    subject = f"fal request {request_id} on {host(served)}"
    assert result.stderr.strip().splitlines() == [
        f"warning: cat.png: {subject} was still in the queue, so it was cancelled and is not "
        "charged",
        f"error: {subject} did not finish within the job's time limit of 1 s (1 s elapsed, last "
        "state: queued at position 3); it was cancelled on the server, so send the job again "
        "when the provider is less busy, or raise --timeout",
    ]
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat.png"]


@pytest.fixture
def watched() -> Iterator[tuple[Served, LogWatch]]:
    """A served sandbox whose log says when a queued request's status was polled."""
    log = LogWatch("/status 202")
    sandbox = Sandbox(keys=frozenset({FAL_KEY}), faults="queue-stuck")
    with SandboxServer(sandbox, log=log) as server:
        yield Served(sandbox, server.base_url), log


def test_ctrl_c_while_queued_cancels_the_request(
    watched: tuple[Served, LogWatch], isolated: Path
) -> None:
    served, log = watched
    (isolated / "cat.png").write_bytes(CAT)
    returncode, stdout, stderr = interrupted_run(
        ["edit", "cat.png", "-p", "x", "--no-history"],
        isolated,
        one_backend_env(served, "fal"),
        log.seen,
        "the request's poll",
    )
    assert (returncode, stdout) == (130, ""), stderr
    [cancel] = received(served, "PUT")[1:]
    request_id = cancel.path.split("/")[4]
    assert cancel.path == f"/fal-ai/nano-banana-2/requests/{request_id}/cancel"
    assert stderr.splitlines() == [
        "warning: Ctrl-C: stopping; no new job is sent, the 1 job under way finishes and saves: "
        "cat.png. Ctrl-C again aborts",
        f"warning: cat.png: fal request {request_id} on {host(served)} was still in the queue, "
        "so it was cancelled and is not charged",
        "error: cat.png: stopped while under way; nothing was kept to resume it",
        "interrupted: nothing more was sent; images already saved are kept",
    ]
    assert sorted(p.name for p in isolated.iterdir()) == ["cat.png"]


def test_dry_run_shows_the_upload_and_the_submission(served: Served, sample: Path) -> None:
    url = "https://h.example/hat.png"
    result = run_cli(
        ["edit", "cat.png", "--ref", url, "-p", "x", "--dry-run"],
        env=one_backend_env(served, "fal"),
    )
    assert (result.exit_code, result.stderr) == (
        0,
        "1 job, 1 image, estimated $0.08 (gemini-3.1-flash-image at $0.08)\n",
    )
    base = served.base_url
    assert result.stdout == (
        "# cat.png -> cat-edit (fal, fal-ai/nano-banana-2)\n"
        f"curl -sS -X POST '{base}/storage/upload/initiate?storage_type=fal-cdn-v3' "
        "-H 'Authorization: Key ****0003' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        """  -d '{"content_type": "image/png", "file_name": "cat.png"}'\n"""
        "# then send the file to the upload_url it answers (no key): curl -sS -X PUT -H "
        "'Content-Type: image/png' --data-binary @cat.png UPLOAD_URL; its file_url is "
        "FILE_URL_1 below\n"
        f"curl -sS -X POST {base}/fal-ai/nano-banana-2/edit -H 'Authorization: Key ****0003' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"""  -d '{{"prompt": "x", "image_urls": ["FILE_URL_1", "{url}"], "num_images": 1, """
        """"output_format": "png"}'\n"""
        "# then poll GET the status_url it answers until COMPLETED, then GET its response_url\n"
    )
    assert served.sandbox.received == []


def test_config_check(served: Served) -> None:
    ready = run_cli(["config", "check", "--json"], env=one_backend_env(served, "fal"))
    assert ready.exit_code == 0, ready.stderr
    [fal] = [b for b in json.loads(ready.stdout)["backends"] if b["backend"] == "fal"]
    assert fal == {"backend": "fal", "status": "ready", "detail": f"{host(served)}, key accepted",
                   "passed": True}  # fmt: skip
    [probe] = served.sandbox.received
    assert (probe.method, probe.path, probe.headers["authorization"]) == (
        "GET", "/fal-ai/nano-banana-2/requests/nanoedit-config-check/status", f"Key {FAL_KEY}"
    )  # fmt: skip
    wrong = run_cli(["config", "check"], env=one_backend_env(served, "fal") | {"FAL_KEY": "x",
                    "NANOEDIT_FAL_API_KEY": "wrong-key-1234567"})  # fmt: skip
    assert wrong.exit_code == 3
    [line] = [line for line in wrong.stdout.splitlines() if line.startswith("fal ")]
    assert line.split(None, 1)[1] == (
        f"key rejected  ({host(served)} rejected the key (HTTP 401: No user found for Key ID and "
        "Secret); the key comes from NANOEDIT_FAL_API_KEY, which overrides the config file: "
        "unset NANOEDIT_FAL_API_KEY or fix it)"
    )


def test_the_in_process_sandbox_serves_fal_too(sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "--backend", "fal", "--sandbox"])
    assert (result.exit_code, result.stdout) == (0, "cat-edit.png\n"), result.stderr


# fal's own client as the judge: where it and the sandbox disagree, the sandbox is wrong.


@pytest.fixture
def fal_sdk(served: Served, monkeypatch: pytest.MonkeyPatch) -> Iterator[fal_client.SyncClient]:
    """fal's Python client, its queue, REST and CDN hosts all pointed at the served sandbox
    (it has no base-URL option of its own)."""
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", f"{served.base_url}/")
    monkeypatch.setattr(fal_client.client, "REST_URL", served.base_url)
    monkeypatch.setattr(fal_client.client, "CDN_URL", served.base_url)
    # The client opens an HTTP client per CDN upload and never closes it: these tests do.
    opened: list[httpx.Client] = []
    cdn_client = fal_client.SyncClient._get_cdn_client

    def tracked(self: fal_client.SyncClient) -> httpx.Client:
        opened.append(cdn_client(self))
        return opened[-1]

    monkeypatch.setattr(fal_client.SyncClient, "_get_cdn_client", tracked)
    sdk = fal_client.SyncClient(key=FAL_KEY)
    yield sdk
    for client in opened:
        client.close()
    if "_client" in vars(sdk):
        sdk._client.close()


def test_fal_client_uploads_both_ways_submits_polls_and_gets_the_result(
    served: Served, fal_sdk: fal_client.SyncClient
) -> None:
    hat = sample_image("hat.png")[0]
    # The CDN's own route (a token from the REST host first), then the storage API's
    # initiate-and-PUT, which the JS client and nanoedit use.
    cdn_url = fal_sdk.upload(CAT, "image/png", file_name="cat.png")
    storage_url = fal_sdk.upload(hat, "image/png", file_name="hat.png", repository="fal")
    assert [r.path for r in served.sandbox.received] == [
        "/storage/auth/token", "/files/upload", "/storage/upload/initiate",
        served.sandbox.received[3].path,
    ]  # fmt: skip
    assert served.sandbox.received[2].query == {"storage_type": "gcs"}
    for url, data in ((cdn_url, CAT), (storage_url, hat)):
        assert httpx.get(url).content == data
    handle = fal_sdk.submit(
        "fal-ai/nano-banana-pro/edit",
        {"prompt": "put the hat on the cat", "image_urls": [cdn_url, storage_url],
         "num_images": 2, "resolution": "2K", "aspect_ratio": "3:2"},
    )  # fmt: skip
    status = handle.status(with_logs=True)
    assert isinstance(status, fal_client.Completed) and status.error is None
    result = handle.get()
    assert [(image["width"], image["height"]) for image in result["images"]] == [(2528, 1696)] * 2
    for image in result["images"]:
        with Image.open(io.BytesIO(httpx.get(image["url"]).content)) as picture:
            assert (picture.format, picture.size) == ("PNG", (2528, 1696))


def test_fal_client_sees_the_queue_and_cancels(
    served: Served, fal_sdk: fal_client.SyncClient
) -> None:
    served.sandbox.add_faults("queue-stuck")
    handle = fal_sdk.submit("fal-ai/nano-banana-2", {"prompt": "a fox"})
    assert handle.status() == fal_client.Queued(position=3)
    handle.cancel()
    status = handle.status()
    assert isinstance(status, fal_client.Completed)
    assert status.error == "Request was cancelled"


def test_fal_client_reads_a_request_fal_cancelled(
    served: Served, fal_sdk: fal_client.SyncClient
) -> None:
    served.sandbox.add_faults("cancelled")
    handle = fal_sdk.submit("fal-ai/nano-banana-2", {"prompt": "a fox"})
    status = handle.status()
    assert isinstance(status, fal_client.Completed)
    assert (status.error, status.error_type) == ("Request was cancelled", "cancelled")
    with pytest.raises(fal_client.FalClientHTTPError) as gone:
        handle.get()
    assert gone.value.status_code == 400


def test_fal_client_reads_a_refusal_and_a_validation_error(
    served: Served, fal_sdk: fal_client.SyncClient
) -> None:
    served.sandbox.add_faults("content-flagged")
    handle = fal_sdk.submit("fal-ai/nano-banana-2", {"prompt": "a fox"})
    with pytest.raises(fal_client.FalClientHTTPError) as refused:
        handle.get()
    assert refused.value.status_code == 422
    assert refused.value.message[0]["type"] == "content_policy_violation"  # type: ignore[index]
    with pytest.raises(fal_client.FalClientHTTPError) as invalid:
        fal_sdk.submit("fal-ai/nano-banana-2/edit", {"prompt": "x", "num_images": 9})
    assert invalid.value.status_code == 422
    assert invalid.value.message == [  # type: ignore[comparison-overlap]
        {"loc": ["body", "image_urls"], "msg": "field required", "type": "value_error.missing"}
    ]


def test_a_result_as_a_data_uri_is_saved_without_a_download(served: Served, sample: Path) -> None:
    served.sandbox.add_faults("data-uri")
    result = run_cli(["edit", "cat.png", "-p", "x"], env=one_backend_env(served, "fal"))
    assert (result.exit_code, result.stdout) == (0, "cat-edit.png\n"), result.stderr
    assert not any(r.path.startswith("/files/") for r in served.sandbox.received)
    with Image.open("cat-edit.png") as image:
        assert (image.format, image.size) == ("PNG", (1200, 896))
