"""The Replicate backend against the served sandbox's predictions and files APIs, over
loopback: uploads, predictions held with Prefer: wait, polls, cancelling, faults, and
Replicate's own client as the judge of the sandbox's fidelity."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import (
    REPLICATE_KEY,
    LogWatch,
    Served,
    all_jobs,
    host,
    interrupted_run,
    one_backend_env,
    received,
    run_cli,
)
from PIL import Image
from replicate.client import Client
from replicate.exceptions import ModelError, ReplicateError

from nanoedit.backends.base import PreparedJob
from nanoedit.backends.replicate import ReplicateBackend
from nanoedit.jobs import Options, build_edit_jobs
from nanoedit.net.http import Deadline, JobHttp, RetryPolicy
from nanoedit.output.provenance import read as read_provenance
from nanoedit.sandbox import (
    SANDBOX_BASE_URL,
    ReceivedRequest,
    Sandbox,
    SandboxServer,
    SandboxTransport,
    sample_image,
)
from nanoedit.settings.values import BackendSettings

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
CAT = sample_image("cat.png")[0]


def routes(served: Served) -> list[str]:
    """Each request as METHOD and path, ids made readable."""
    shown = []
    for request in served.sandbox.received:
        path = re.sub(r"/v1/(predictions|files)/[0-9a-f]+", r"/v1/\1/ID", request.path)
        path = re.sub(r"/files/[0-9a-f]{32}", "/files/TOKEN", path)
        shown.append(f"{request.method} {path}")
    return shown


def creates(served: Served) -> list[ReceivedRequest]:
    return [r for r in received(served, "POST") if r.path.endswith("/predictions")]


def test_a_local_file_is_uploaded_and_a_url_passed_as_it_is(served: Served, sample: Path) -> None:
    hat = f"{served.base_url}/samples/hat.png"
    result = run_cli(
        # Without the journal: a held answer (Prefer: wait) is then the quickest way.
        ["edit", "cat.png", "--ref", hat, "-p", "put the hat on the cat", "--model",
         "nano-banana-pro", "--size", "2K", "--ratio", "16:9", "--no-history"],
        env=one_backend_env(served, "replicate"),
    )  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, "cat-edit.png\n"), result.stderr
    assert routes(served) == [
        "POST /v1/files",
        "POST /v1/models/google/nano-banana-pro/predictions",
        "GET /files/TOKEN.png",
    ]
    upload, create, download = served.sandbox.received
    [part] = upload.files
    assert (part.field, part.filename, part.content_type, part.data) == (
        "content", "cat.png", "image/png", CAT
    )  # fmt: skip
    for request in (upload, create):
        assert request.headers["authorization"] == f"Bearer {REPLICATE_KEY}"
    assert "authorization" not in download.headers
    assert create.headers["prefer"] == "wait=60"
    [file_url] = [u for u in create.json["input"]["image_input"] if "/v1/files/" in u]
    assert re.fullmatch(rf"{served.base_url}/v1/files/[0-9a-f]{{12}}", file_url)
    assert create.json == {
        "input": {
            "prompt": "put the hat on the cat",
            "image_input": [file_url, hat],
            "aspect_ratio": "16:9",
            "resolution": "2K",
            "output_format": "png",
        }
    }
    with Image.open("cat-edit.png") as image:
        assert (image.format, image.size) == ("PNG", (2752, 1536))
    record = read_provenance(Path("cat-edit.png"))
    assert record is not None
    assert (record["backend"], record["model"]) == ("replicate", "google/nano-banana-pro")
    assert [(item["name"], len(item["sha256"])) for item in record["inputs"]] == [
        ("cat.png", 64), (hat, 0)
    ]  # fmt: skip


def test_a_url_only_edit_is_never_downloaded_by_nanoedit(served: Served) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    result = run_cli(["edit", url, "-p", "add a hat"], env=one_backend_env(served, "replicate"))
    assert (result.exit_code, result.stdout) == (0, "dog-edit.png\n"), result.stderr
    assert routes(served) == [
        "POST /v1/models/google/nano-banana-2/predictions",
        "GET /v1/predictions/ID",
        "GET /files/TOKEN.png",
    ]
    assert creates(served)[0].json == {
        "input": {"prompt": "add a hat", "image_input": [url], "output_format": "png"}
    }
    with Image.open("dog-edit.png") as image:
        assert (image.format, image.size) == ("PNG", (1200, 896))


def test_a_generation_and_one_prediction_per_image(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox", "--model", "gemini-3.1-flash-image", "--ratio",
         "21:9", "--size", "4K", "-n", "2", "--backend", "replicate", "--json", "--no-history"],
        env=one_backend_env(served, "replicate"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert [(r.path, r.json) for r in creates(served)] == [
        ("/v1/models/google/nano-banana-2/predictions",
         {"input": {"prompt": "a red fox", "aspect_ratio": "21:9", "resolution": "4K",
                    "output_format": "png"}}),
    ] * 2  # fmt: skip
    # The first runs while the second is held: one after another, they would take twice as long.
    assert [r.headers.get("prefer") for r in creates(served)] == [None, "wait=60"]
    outputs = json.loads(result.stdout)["outputs"]
    assert [(o["path"], o["width"], o["height"]) for o in outputs] == [
        ("a-red-fox.png", 6336, 2688), ("a-red-fox-2.png", 6336, 2688)
    ]  # fmt: skip


def test_a_journaled_prediction_is_not_held_so_its_id_is_kept_before_the_model_runs(
    served: Served,
) -> None:
    # A held answer (Prefer: wait) brings the id only with the image: a run killed while it
    # is held would leave a paid prediction nobody can find. With the journal, the id comes
    # at once and is written down before the first poll.
    result = run_cli(
        ["generate", "-p", "a red fox", "-n", "2", "--backend", "replicate"],
        env=one_backend_env(served, "replicate"),
    )
    assert (result.exit_code, result.stdout) == (0, "a-red-fox.png\na-red-fox-2.png\n")
    assert [r.headers.get("prefer") for r in creates(served)] == [None, None]
    from nanoedit.journal.store import Journal, data_dir

    with Journal(data_dir(os.environ)) as journal:
        [record] = all_jobs(journal)
    assert record.state == "saved" and len(record.tasks) == 2
    polled = {r.path.rsplit("/", 1)[1] for r in received(served, "GET")
              if r.path.startswith("/v1/predictions/")}  # fmt: skip
    assert polled == set(record.tasks)


def test_limits_are_checked_before_anything_is_sent(served: Served, sample: Path) -> None:
    # google/nano-banana (2.5, 1K only) was shut down: refused, naming its replacement.
    gone = run_cli(
        ["edit", "cat.png", "-p", "x", "--model", "google/nano-banana", "--size", "2K"],
        env=one_backend_env(served, "replicate"),
    )
    assert (gone.exit_code, gone.stdout, gone.stderr.strip()) == (
        2,
        "",
        "error: google/nano-banana (Nano Banana) was shut down on 2026-10-02, so nothing was "
        "sent; use its replacement: --model google/nano-banana-2 (Nano Banana 2)",
    )
    half = run_cli(["edit", "cat.png", "-p", "x", "--model", "nano-banana-2", "--size", "512"],
                   env=one_backend_env(served, "replicate"))  # fmt: skip
    assert half.exit_code == 2
    assert half.stderr.startswith(
        "error: google/nano-banana-2 renders 1K, 2K, 4K only on replicate, so size 512 cannot "
        "be honoured;"
    )
    refs = [arg for n in range(14) for arg in ("--ref", f"https://h.example/{n}.png")]
    many = run_cli(["edit", "cat.png", *refs, "-p", "x"], env=one_backend_env(served, "replicate"))
    assert (many.exit_code, many.stderr.strip()) == (
        4,
        "error: cat.png: 15 images for one job, and google/nano-banana-2 takes at most 14; pass "
        "fewer --ref images",
    )
    assert served.sandbox.received == []


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_prediction_longer_than_the_wait_is_polled_with_its_state_shown() -> None:
    """In memory, with a clock that moves only when the backend waits: a prediction of 90 s
    outlasts Prefer: wait=60, so it is polled; a 502 on one poll is retried."""
    fake = FakeTime()
    sandbox = Sandbox(task_seconds=90.0, clock=fake.clock, faults="poll:502")
    settings = BackendSettings("replicate", SANDBOX_BASE_URL, "any-key", "google/nano-banana-2")
    with httpx.Client(transport=SandboxTransport(sandbox)) as client:
        http = JobHttp(
            client, RetryPolicy(), Deadline(900, fake.clock), sleeper=fake.sleep,
            jitter=lambda: 0.0,
        )  # fmt: skip
        backend = ReplicateBackend(settings, http)
        [job] = build_edit_jobs(["https://h.example/cat.png"], [], Options(prompt="x"), None)
        phases: list[str] = []
        answer = backend.run(
            PreparedJob(job=job, model=settings.model, urls=(job.images[0].location,)),
            lambda phase, done=None, total=None: phases.append(phase),
        )
    assert len(answer.images) == 1
    polls = [r for r in sandbox.received if r.method == "GET" and "/predictions/" in r.path]
    assert sandbox.received[0].headers["prefer"] == "wait=60"
    assert len(polls) >= 3
    assert phases[:2] == ["waiting for the model", "waiting for the model, task starting"]
    assert "waiting for the model, task processing" in phases[2:]
    assert set(phases[2:]) <= {
        "waiting for the model, task starting", "waiting for the model, task processing"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "code", "message"),
    [
        ("content-flagged", 8,
         "prediction ID on HOST was refused: The input or output was flagged as sensitive. "
         "Please try again with different inputs. (E005); rephrase the prompt or change the "
         "image"),
        ("model-error", 5,
         "prediction ID on HOST failed: Prediction interrupted; please retry (code: PA)"),
        ("no-data", 8,
         "prediction ID on HOST was refused: it succeeded with output null, which is how "
         "Replicate shows an image its safety filter removed; rephrase the prompt or change the "
         "image"),
        ("empty-data", 5,
         "prediction ID on HOST succeeded with an empty output, so no image was made; try "
         "again"),
    ],
    ids=["refused", "failed", "null output", "empty output"],
)  # fmt: skip
def test_a_prediction_that_ends_badly(
    served: Served, sample: Path, fault: str, code: int, message: str
) -> None:
    served.sandbox.add_faults(fault)
    result = run_cli(["edit", "cat.png", "-p", "x"], env=one_backend_env(served, "replicate"))
    assert (result.exit_code, result.stdout) == (code, "")
    [prediction_id] = re.findall(r"prediction ([0-9a-f]{26})", result.stderr)
    expected = message.replace("ID", prediction_id).replace("HOST", host(served))
    assert result.stderr.strip().splitlines() == [f"error: {expected}"]
    assert len(creates(served)) == 1
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat.png"]


@pytest.mark.parametrize(
    ("fault", "sent", "retried"),
    [("submit:429", 2, True), ("submit:503-empty", 2, True), ("submit:reset", 1, False),
     ("reset-early", 1, True)],
    ids=["429 on create", "bare 503 on create", "reset after the create", "reset upload"],
)  # fmt: skip
def test_retries_never_pay_twice(
    served: Served, sample: Path, fault: str, sent: int, retried: bool
) -> None:
    served.sandbox.add_faults(fault)
    result = run_cli(["edit", "cat.png", "-p", "x"], env=one_backend_env(served, "replicate"))
    assert len(creates(served)) == sent
    assert served.sandbox.pending_faults() == []
    if retried:
        assert (result.exit_code, result.stdout) == (0, "cat-edit.png\n"), result.stderr
        assert "; retry 1 of 3 in " in result.stderr
    else:
        assert (result.exit_code, result.stdout) == (6, "")
        assert "it may have reached the model, so nanoedit did not send it again" in (result.stderr)


def test_a_bad_input_and_a_bad_key(served: Served, sample: Path) -> None:
    other = run_cli(["edit", "cat.png", "-p", "x", "--model", "google/imagen-5"],
                    env=one_backend_env(served, "replicate"))  # fmt: skip
    assert (other.exit_code, other.stderr.strip()) == (
        5,
        f"error: {host(served)} does not serve google/imagen-5 on the replicate backend (HTTP "
        "404: The model google/imagen-5 does not exist.); it was not retried: see nanoedit "
        "models --backend replicate for what it sells, and choose another --model",
    )
    env = one_backend_env(served, "replicate") | {
        "NANOEDIT_REPLICATE_API_KEY": "r8_wrong_token_123456"
    }
    wrong = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    assert (wrong.exit_code, wrong.stderr.strip()) == (
        3,
        f"error: {host(served)} rejected the replicate API key (You did not pass a valid "
        "authentication token); the key comes from NANOEDIT_REPLICATE_API_KEY, which overrides "
        "the config file: unset NANOEDIT_REPLICATE_API_KEY or fix it",
    )
    assert "r8_wrong_token_123456" not in wrong.stderr


def test_the_providers_own_variable_gives_the_key(served: Served, sample: Path) -> None:
    env = one_backend_env(served, "replicate")
    del env["NANOEDIT_REPLICATE_API_KEY"]
    result = run_cli(
        ["edit", "cat.png", "-p", "x"], env=env | {"REPLICATE_API_TOKEN": REPLICATE_KEY}
    )
    assert result.exit_code == 0, result.stderr


def test_a_timeout_cancels_the_prediction(served: Served, sample: Path) -> None:
    served.sandbox.add_faults("queue-stuck")
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--timeout", "1", "--no-history"],
        env=one_backend_env(served, "replicate"),
    )
    assert (result.exit_code, result.stdout) == (6, "")
    [cancel] = [r for r in received(served, "POST") if r.path.endswith("/cancel")]
    prediction_id = cancel.path.split("/")[3]
    assert cancel.headers["authorization"] == f"Bearer {REPLICATE_KEY}"
    assert creates(served)[0].headers["prefer"] == "wait=1"
    subject = f"prediction {prediction_id} on {host(served)}"
    assert result.stderr.strip().splitlines() == [
        f"warning: cat.png: {subject} was starting, so it was cancelled",
        f"error: {subject} did not finish within the job's time limit of 1 s (1 s elapsed, last "
        "state: starting); it was cancelled on the server, so send the job again when the "
        "provider is less busy, or raise --timeout",
    ]


@pytest.fixture
def watched() -> Iterator[tuple[Served, LogWatch]]:
    """A served sandbox whose log says when a prediction was polled."""
    log = LogWatch("GET /v1/predictions/")
    sandbox = Sandbox(keys=frozenset({REPLICATE_KEY}), faults="queue-stuck")
    with SandboxServer(sandbox, log=log) as server:
        yield Served(sandbox, server.base_url), log


def test_ctrl_c_cancels_a_running_prediction(
    watched: tuple[Served, LogWatch], isolated: Path
) -> None:
    served, log = watched
    (isolated / "cat.png").write_bytes(CAT)
    returncode, stdout, stderr = interrupted_run(
        ["edit", "cat.png", "-p", "x", "--no-history"],
        isolated,
        one_backend_env(served, "replicate"),
        log.seen,
        "the prediction's poll",
    )
    assert (returncode, stdout) == (130, ""), stderr
    [cancel] = [r for r in received(served, "POST") if r.path.endswith("/cancel")]
    prediction_id = cancel.path.split("/")[3]
    assert stderr.splitlines() == [
        "warning: Ctrl-C: stopping; no new job is sent, the 1 job under way finishes and saves: "
        "cat.png. Ctrl-C again aborts",
        f"warning: cat.png: prediction {prediction_id} on {host(served)} was starting, so it "
        "was cancelled",
        "error: cat.png: stopped while under way; nothing was kept to resume it",
        "interrupted: nothing more was sent; images already saved are kept",
    ]
    assert sorted(p.name for p in isolated.iterdir()) == ["cat.png"]


def test_dry_run_shows_the_upload_and_the_prediction(served: Served, sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "-n", "2", "--dry-run", "--no-history"],
                     env=one_backend_env(served, "replicate"))  # fmt: skip
    assert (result.exit_code, result.stderr) == (
        0,
        "1 job, 2 images, estimated $0.134 (gemini-3.1-flash-image at $0.067)\n",
    )
    base = served.base_url
    rest = (
        "  -H 'Content-Type: application/json' \\\n"
        """  -d '{"input": {"prompt": "x", "image_input": ["FILE_URL_1"], "output_format": "png"}}'\n"""
        f"# if its status is not final, poll GET {base}/v1/predictions/ID until it is\n"
    )
    create = f"curl -sS -X POST {base}/v1/models/google/nano-banana-2/predictions -H "
    assert result.stdout == (
        "# cat.png -> cat-edit, cat-edit-2 (replicate, google/nano-banana-2)\n"
        f"curl -sS -X POST {base}/v1/files -H 'Authorization: Bearer ****0004' \\\n"
        "  -F content=@cat.png\n"
        "# its urls.get is FILE_URL_1 below\n"
        # Only the last is held: the first runs meanwhile.
        f"{create}'Authorization: Bearer ****0004' \\\n{rest}"
        f"{create}'Authorization: Bearer ****0004' -H 'Prefer: wait=60' \\\n{rest}"
    )
    assert served.sandbox.received == []


def test_config_check(served: Served) -> None:
    ready = run_cli(["config", "check", "--json"], env=one_backend_env(served, "replicate"))
    assert ready.exit_code == 0, ready.stderr
    [line] = [b for b in json.loads(ready.stdout)["backends"] if b["backend"] == "replicate"]
    assert line["status"] == "ready"
    assert line["detail"] == f"{host(served)}, account nanoedit"
    [probe] = served.sandbox.received
    assert (probe.method, probe.path, probe.headers["authorization"]) == (
        "GET", "/v1/account", f"Bearer {REPLICATE_KEY}"
    )  # fmt: skip
    env = one_backend_env(served, "replicate") | {
        "NANOEDIT_REPLICATE_API_KEY": "r8_wrong_token_123456"
    }
    wrong = run_cli(["config", "check"], env=env)
    assert wrong.exit_code == 3
    [text] = [x for x in wrong.stdout.splitlines() if x.startswith("replicate ")]
    assert text == (
        f"replicate   key rejected  ({host(served)} rejected the key (HTTP 401: You did not pass "
        "a valid authentication token); the key comes from NANOEDIT_REPLICATE_API_KEY, which "
        "overrides the config file: unset NANOEDIT_REPLICATE_API_KEY or fix it)"
    )


def test_the_in_process_sandbox_serves_replicate_too(sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "--backend", "replicate", "--sandbox"])
    assert (result.exit_code, result.stdout) == (0, "cat-edit.png\n"), result.stderr


# Replicate's own client as the judge: where it and the sandbox disagree, the sandbox is wrong.


@pytest.fixture
def sdk(served: Served) -> Iterator[Client]:
    """Replicate's Python client, pointed at the served sandbox."""
    client = Client(api_token=REPLICATE_KEY, base_url=served.base_url)
    client.poll_interval = 0.01
    yield client
    client._client.close()


def test_replicate_client_runs_a_model_with_a_file(
    served: Served, sdk: Client, sample: Path
) -> None:
    assert sdk.accounts.current().username == "nanoedit"
    with sample.open("rb") as file:
        output = sdk.run(
            "google/nano-banana-pro",
            input={"prompt": "make it a watercolor", "image_input": [file], "resolution": "1K",
                   "output_format": "png"},
        )  # fmt: skip
    # An http URL comes back as a plain string (only https ones are wrapped).
    assert isinstance(output, str) and output.startswith(f"{served.base_url}/files/")
    with Image.open(io.BytesIO(httpx.get(output).content)) as image:
        assert (image.format, image.size) == ("PNG", (1200, 896))
    upload, create = served.sandbox.received[1:3]
    assert (upload.path, upload.files[0].field, upload.files[0].data) == (
        "/v1/files", "content", CAT
    )  # fmt: skip
    assert create.headers["prefer"] == "wait"
    file_id = create.json["input"]["image_input"][0].rsplit("/", 1)[1]
    assert sdk.files.get(file_id).size == len(CAT)
    assert [f.id for f in sdk.files.list()] == [file_id]
    assert sdk.files.delete(file_id) is True


def test_replicate_client_waits_polls_and_cancels(served: Served, sdk: Client) -> None:
    prediction = sdk.models.predictions.create(
        model="google/nano-banana-2", input={"prompt": "a fox"}
    )
    # Without Prefer: wait the answer comes at once, before the model has run.
    statuses = [prediction.status]
    prediction.wait()
    statuses.append(prediction.status)
    assert statuses == ["starting", "succeeded"]
    assert isinstance(prediction.output, str)
    served.sandbox.add_faults("queue-stuck")
    stuck = sdk.models.predictions.create(model="google/nano-banana-2", input={"prompt": "a fox"})
    stuck.cancel()
    assert stuck.status == "canceled"
    assert sdk.predictions.get(stuck.id).status == "canceled"


def test_replicate_client_reads_failures_and_problems(served: Served, sdk: Client) -> None:
    served.sandbox.add_faults("content-flagged")
    with pytest.raises(ModelError) as failed:
        sdk.run("google/nano-banana-2", input={"prompt": "a fox"})
    assert "(E005)" in str(failed.value.prediction.error)
    with pytest.raises(ReplicateError) as invalid:
        sdk.models.predictions.create(model="google/nano-banana-2", input={"image_input": []})
    assert (invalid.value.status, invalid.value.title, invalid.value.detail) == (
        422, "Input validation failed", "- input.prompt: Missing required field\n"
    )  # fmt: skip
    stranger = Client(api_token="r8_wrong", base_url=served.base_url)
    with pytest.raises(ReplicateError) as unknown:
        stranger.accounts.current()
    stranger._client.close()
    assert (unknown.value.status, unknown.value.title) == (401, "Unauthenticated")
