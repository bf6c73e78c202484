"""Asynchronous backends and ``nanoedit fetch``: each task's id is written down before it is
polled, a task can be collected by its handle in a later process, and ``fetch`` saves the
result of a task submitted elsewhere without submitting it again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    DUOMI_KEY,
    FAL_KEY,
    REPLICATE_KEY,
    LogWatch,
    Served,
    SkippingClock,
    backend_env,
    error_object,
    interrupted_run,
    one_backend_env,
    run_cli,
)
from PIL import Image

from nanoedit.backends.base import PreparedJob, backend_class, backend_classes
from nanoedit.jobs import Options, build_generate_job
from nanoedit.net.http import Deadline, JobHttp, RetryPolicy
from nanoedit.sandbox import Sandbox, SandboxServer
from nanoedit.settings.values import BackendSettings

# The backends `fetch` serves, as its messages list them: the registry's asynchronous ones.
TASK_BACKENDS = ", ".join(b.name for b in backend_classes() if b.asynchronous)


@dataclass(frozen=True)
class Api:
    """How a test reaches one asynchronous API of the sandbox directly."""

    name: str
    key: str
    auth: str
    model: str
    """The backend's model id the tasks here are sent to."""


APIS = {
    "duomi": Api("duomi", DUOMI_KEY, DUOMI_KEY, "gemini-3.1-flash-image-preview"),
    "fal": Api("fal", FAL_KEY, f"Key {FAL_KEY}", "fal-ai/nano-banana-2"),
    "replicate": Api("replicate", REPLICATE_KEY, f"Bearer {REPLICATE_KEY}", "google/nano-banana-2"),
}
# What each API's image comes as: duomi's 3.x model answers JPEG; fal and Replicate are
# asked for PNG (output_format).
FORMATS = {"duomi": ("jpg", "JPEG"), "fal": ("png", "PNG"), "replicate": ("png", "PNG")}
ASYNC = sorted(APIS)


def submit(served: Served, name: str, prompt: str = "a red fox") -> str:
    """Submit a generation as another tool would; returns the task id the API answered."""
    api = APIS[name]
    headers = {"Authorization": api.auth}
    root = served.base_url
    body: dict[str, Any]
    if name == "duomi":
        url, body = f"{root}/api/gemini/nano-banana", {"model": api.model, "prompt": prompt}
    elif name == "fal":
        url, body = f"{root}/{api.model}", {"prompt": prompt, "output_format": "png"}
    else:
        url = f"{root}/v1/models/{api.model}/predictions"
        body = {"input": {"prompt": prompt, "output_format": "png"}}
    answer = httpx.post(url, headers=headers, json=body).json()
    task_id = answer["data"]["task_id"] if name == "duomi" else answer.get("request_id")
    return str(task_id or answer["id"])


def made_image(served: Served, name: str, task_id: str) -> bytes:
    """The bytes of the image the sandbox made for a task, fetched the API's own way."""
    headers = {"Authorization": APIS[name].auth}
    root = served.base_url
    if name == "duomi":
        answer = httpx.get(f"{root}/api/gemini/nano-banana/{task_id}", headers=headers).json()
        url = answer["data"]["data"]["images"][0]["url"]
    elif name == "fal":
        answer = httpx.get(f"{root}/fal-ai/nano-banana-2/requests/{task_id}", headers=headers)
        url = answer.json()["images"][0]["url"]
    else:
        answer = httpx.get(f"{root}/v1/predictions/{task_id}", headers=headers)
        output = answer.json()["output"]
        url = output[0] if isinstance(output, list) else output
    return httpx.get(url).content


def submissions(served: Served) -> list[str]:
    """The paths of the POSTs that started work (uploads and cancels aside)."""
    return [
        r.path
        for r in served.sandbox.received
        if r.method == "POST" and not r.path.endswith("/cancel")
    ]


class Recorder:
    """A job log that notes each call with how many requests the sandbox had received then."""

    def __init__(self, served: Served, crash_on_task: bool = False) -> None:
        self.served = served
        self.crash_on_task = crash_on_task
        self.calls: list[tuple[str, ...]] = []

    def paid_request(self) -> None:
        """Note the paid request about to leave."""
        self.calls.append(("paid", str(len(self.served.sandbox.received))))

    def task(self, handle: str) -> None:
        """Note the task's handle; with ``crash_on_task`` the process "dies" right after."""
        self.calls.append(("task", handle, str(len(self.served.sandbox.received))))
        if self.crash_on_task:
            raise Crash


class Crash(Exception):
    """The process died (a stand-in for SIGKILL right after the journal was written)."""


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A client for the backends a test builds itself."""
    with httpx.Client() as client:
        yield client


def backend_for(
    served: Served, client: httpx.Client, name: str, clock: SkippingClock, log: Any
) -> Any:
    """The backend ``name`` on the served sandbox, with a job log and a clock that skips."""
    backend = backend_class(name)
    options = tuple(
        (short, "0.01" if short == "poll_interval" else "") for short in backend.extra_keys
    )
    settings = BackendSettings(
        name, served.base_url, APIS[name].key, APIS[name].model, options=options
    )
    http = JobHttp(client, RetryPolicy(), Deadline(60, clock.monotonic), clock=clock, log=log)
    return backend(settings, http)


def generation(model: str, count: int) -> PreparedJob:
    job = build_generate_job(Options(prompt="a red fox", count=count), None)
    return PreparedJob(job=job, model=model)


def test_exactly_the_asynchronous_backends_say_so() -> None:
    assert sorted(b.name for b in backend_classes() if b.asynchronous) == ASYNC


@pytest.mark.parametrize(
    ("name", "count", "tasks"), [("duomi", 2, 2), ("fal", 5, 2), ("replicate", 2, 2)]
)
def test_each_task_is_logged_before_its_first_poll(
    served: Served, client: httpx.Client, clock: SkippingClock, name: str, count: int, tasks: int
) -> None:
    served.sandbox.task_seconds = 2.0
    log = Recorder(served)
    backend = backend_for(served, client, name, clock, log)
    answer = backend.run(generation(APIS[name].model, count), lambda *args: None)
    assert len(answer.images) == count
    received = served.sandbox.received
    posts = [n for n, r in enumerate(received) if r.method == "POST"]
    assert len(posts) == tasks
    # Each paid POST is announced just before it is received, and its task is logged before
    # anything else is sent: the next submission, or the first poll.
    expected: list[tuple[str, ...]] = []
    for number, at in enumerate(posts):
        handle = log.calls[2 * number + 1][1]
        expected += [("paid", str(at)), ("task", handle, str(at + 1))]
    assert log.calls == expected
    first_poll = next(n for n, r in enumerate(received) if r.method == "GET")
    assert first_poll == posts[-1] + 1
    handles = [call[1] for call in log.calls if call[0] == "task"]
    ids = [backend.task_id(handle) for handle in handles]
    # The first task is polled by the id its log gave (Replicate held the last one until done).
    assert ids[0] in received[first_poll].path
    if name == "fal":
        base = f"{served.base_url}/fal-ai/nano-banana-2/requests/{ids[0]}"
        assert json.loads(handles[0]) == {
            "request_id": ids[0],
            "status_url": f"{base}/status",
            "response_url": base,
            "cancel_url": f"{base}/cancel",
        }
    else:
        assert handles == ids  # the handle is the provider's own id


@pytest.mark.parametrize("name", ASYNC)
def test_a_task_logged_before_a_crash_is_collected_by_another_process(
    served: Served, client: httpx.Client, clock: SkippingClock, name: str
) -> None:
    served.sandbox.task_seconds = 2.0
    log = Recorder(served, crash_on_task=True)
    with pytest.raises(Crash):
        backend_for(served, client, name, clock, log).run(
            generation(APIS[name].model, 1), lambda *a: None
        )
    [(_, handle, _)] = [call for call in log.calls if call[0] == "task"]
    sent = len(submissions(served))
    later = backend_for(served, client, name, clock, Recorder(served))
    answer = later.collect([handle], lambda *args: None)
    [image] = answer.images
    assert image.url is not None
    assert httpx.get(image.url).content == made_image(served, name, later.task_id(handle))
    assert len(submissions(served)) == sent == 1
    # Nothing was cancelled: the crash left the task to run, and collecting it waited for it.
    assert not any(r.path.endswith("/cancel") for r in served.sandbox.received)


@pytest.mark.parametrize("name", ASYNC)
def test_fetch_saves_the_image_of_a_task_submitted_elsewhere(
    served: Served, clock: SkippingClock, name: str
) -> None:
    served.sandbox.task_seconds = 3.0
    task_id = submit(served, name)
    result = run_cli(
        ["fetch", "--backend", name, task_id], env=one_backend_env(served, name), clock=clock
    )
    suffix, kind = FORMATS[name]
    saved = f"{name}-{task_id}.{suffix}"
    assert (result.exit_code, result.stdout) == (0, f"{saved}\n"), result.stderr
    assert result.stderr == f"saved {saved} (1024x1024 {kind}) from task {task_id}\n"
    assert submissions(served) == [submissions(served)[0]]  # the one made by the other tool
    polls = [r for r in served.sandbox.received if r.method == "GET" and task_id in r.path]
    assert len(polls) >= 2  # the task was still running when fetch first asked
    assert Path(saved).read_bytes() == made_image(served, name, task_id)
    with Image.open(saved) as image:
        assert (image.format, image.size) == (kind, (1024, 1024))


def test_fetch_several_tasks_with_json_into_a_folder(served: Served, clock: SkippingClock) -> None:
    first, second = submit(served, "replicate", "a fox"), submit(served, "replicate", "a cat")
    result = run_cli(
        ["fetch", "--backend", "replicate", first, f"https://replicate.com/p/{second}",
         "-d", "out", "--json", "--quiet"],
        env=one_backend_env(served, "replicate"), clock=clock,
    )  # fmt: skip
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    for record, task_id in zip(records, (first, second), strict=True):
        path = f"out/replicate-{task_id}.png"
        size = Path(path).stat().st_size
        assert record == {
            "schema": "nanoedit/result/1", "ok": True, "job": None, "state": "saved", "kind": "fetch", "backend": "replicate",
            "model": "google/nano-banana-2", "prompt": "", "inputs": [], "task": task_id,
            "outputs": [
                {"path": path, "width": 1024, "height": 1024, "format": "png", "bytes": size}
            ],
            "sent": True, "tasks": [], "skipped": False, "warnings": [], "text": "", "error": None,
        }  # fmt: skip
        assert Path(path).read_bytes() == made_image(served, "replicate", task_id)


def test_fetch_to_a_named_file_and_never_over_one(served: Served, clock: SkippingClock) -> None:
    task_id = submit(served, "duomi")  # duomi's 3.x model answers a JPEG
    env = one_backend_env(served, "duomi")
    Path("fox.jpg").write_bytes(b"mine")
    result = run_cli(["fetch", "--backend", "duomi", task_id, "-o", "fox.jpg"], env=env)
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr == (
        "error: fox.jpg already exists; pass --overwrite to replace it, or choose another -o\n"
    )
    assert Path("fox.jpg").read_bytes() == b"mine"
    assert submissions(served) == ["/api/gemini/nano-banana"]
    assert len(served.sandbox.received) == 1  # refused before asking the server anything
    result = run_cli(
        ["fetch", "--backend", "duomi", task_id, "-o", "fox.jpg", "--overwrite"],
        env=env, clock=clock,
    )  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, "fox.jpg\n"), result.stderr
    assert Path("fox.jpg").read_bytes() == made_image(served, "duomi", task_id)


def test_fetch_a_fal_request_sent_to_another_app(served: Served, clock: SkippingClock) -> None:
    """fal finds a request under the app it was sent to: --model names it, or a status URL."""
    answer = httpx.post(
        f"{served.base_url}/fal-ai/nano-banana-pro/edit",
        headers={"Authorization": f"Key {FAL_KEY}"},
        json={"prompt": "a hat", "image_urls": [f"{served.base_url}/samples/cat.png"]},
    ).json()
    request_id, status_url = answer["request_id"], answer["status_url"]
    env = one_backend_env(served, "fal")
    wrong = run_cli(["fetch", "--backend", "fal", request_id], env=env, clock=clock)
    host = served.base_url.removeprefix("http://")
    assert (wrong.exit_code, wrong.stdout) == (5, "")
    assert wrong.stderr == (
        f"error: {host} answered the status of request {request_id} with HTTP 404: Request "
        f"{request_id} not found; check the request id, and pass --model with the app it was "
        "sent to (this looked in fal-ai/nano-banana-2)\n"
    )
    for given in (["--model", "nano-banana-pro", request_id], [status_url]):
        result = run_cli(["fetch", "--backend", "fal", *given, "--overwrite", "-o", "hat.png"],
                         env=env, clock=clock)  # fmt: skip
        assert (result.exit_code, result.stdout) == (0, "hat.png\n"), result.stderr
        with Image.open("hat.png") as image:
            assert image.format == "PNG"
    assert submissions(served) == ["/fal-ai/nano-banana-pro/edit"]


@pytest.mark.parametrize(
    ("name", "task_id", "message"),
    [
        ("duomi", "0123abcd", "HOST refused the task 0123abcd (code 404): task not found; "
         "check the task id, and duomi.base_url"),
        ("fal", "0123abcd", "HOST answered the status of request 0123abcd with HTTP 404: Request "
         "0123abcd not found; check the request id, and pass --model with the app it was sent "
         "to (this looked in fal-ai/nano-banana-2)"),
        ("replicate", "0123abcd", "HOST answered the poll of prediction 0123abcd with HTTP 404: "
         "The requested resource could not be found; check the prediction id, and "
         "replicate.base_url"),
    ],
)  # fmt: skip
def test_fetch_an_unknown_task(served: Served, name: str, task_id: str, message: str) -> None:
    result = run_cli(
        ["fetch", "--backend", name, task_id, "--json"], env=one_backend_env(served, name)
    )
    assert result.exit_code == 5
    expected = message.replace("HOST", served.base_url.removeprefix("http://"))
    assert result.stderr == f"error: {expected}\n"
    record = json.loads(result.stdout)
    assert (record["task"], record["outputs"], record["error"]) == (
        task_id, [], error_object("api", expected, 5)
    )  # fmt: skip
    assert submissions(served) == []
    assert list(Path(".").iterdir()) == []


@pytest.mark.parametrize(
    ("name", "fault", "code", "message"),
    [
        ("duomi", "task-error", 8, "task ID on HOST was refused: image generation failed: the "
         "output was blocked by the safety filter (IMAGE_SAFETY); rephrase the prompt or change "
         "the image"),
        ("fal", "model-error", 5, "fal request ID on HOST failed: Runner disconnected while "
         "processing the request [runner_disconnected]"),
        ("replicate", "model-error", 5, "prediction ID on HOST failed: Prediction interrupted; "
         "please retry (code: PA)"),
    ],
)  # fmt: skip
def test_fetch_a_failed_task(
    served: Served, clock: SkippingClock, name: str, fault: str, code: int, message: str
) -> None:
    served.sandbox.add_faults(fault)
    task_id = submit(served, name)
    result = run_cli(
        ["fetch", "--backend", name, task_id], env=one_backend_env(served, name), clock=clock
    )
    assert (result.exit_code, result.stdout) == (code, "")
    expected = message.replace("ID", task_id).replace(
        "HOST", served.base_url.removeprefix("http://")
    )
    assert result.stderr == f"error: {expected}\n"
    assert len(submissions(served)) == 1
    assert list(Path(".").iterdir()) == []


def test_one_task_failing_of_two_exits_7(served: Served, clock: SkippingClock) -> None:
    good = submit(served, "duomi")
    result = run_cli(["fetch", "--backend", "duomi", good, "missing1"],
                     env=one_backend_env(served, "duomi"), clock=clock)  # fmt: skip
    assert (result.exit_code, result.stdout) == (7, f"duomi-{good}.jpg\n")
    assert result.stderr.splitlines()[-1] == "2 jobs: 1 done, 1 failed, 1 image saved"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "openai", "abc"], "the openai backend answers each request at once, so "
         "it has no tasks to fetch; fetch collects tasks of the asynchronous backends: "
         f"{TASK_BACKENDS}"),
        (["--backend", "gemini", "abc"], "the gemini backend answers each request at once, so "
         "it has no tasks to fetch; fetch collects tasks of the asynchronous backends: "
         f"{TASK_BACKENDS}"),
        (["--backend", "nope", "abc"], "there is no backend called 'nope'; fetch collects "
         f"tasks of the asynchronous backends: {TASK_BACKENDS}"),
        (["--backend", "duomi"], "no task id given; pass the ids the provider answered"),
        (["--backend", "duomi", "../x"], "'../x' is not a duomi task id; pass the id as the "
         "provider shows it, such as 8f14e45fceea167a5a36dedd4bea2543"),
        (["--backend", "replicate", "https://h.example/x"], "https://h.example/x is not a "
         "prediction's URL (…/v1/predictions/ID or replicate.com/p/ID); pass the prediction id"),
        (["--backend", "duomi", "a", "b", "-o", "x.png"], "-o names one file, and 2 tasks are "
         "given; use -d DIR for several"),
        (["--backend", "duomi", "a", " a"], "task a is given twice; name each task once"),
    ],
    ids=["openai", "gemini", "unknown", "no id", "bad id", "bad url", "-o", "twice"],
)  # fmt: skip
def test_usage_errors_send_nothing(served: Served, args: list[str], message: str) -> None:
    env = backend_env(served, fal=True, replicate=True, gemini=True)
    result = run_cli(["fetch", *args], env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"error: {message}\n")
    assert served.sandbox.received == []


def test_an_unconfigured_backend_says_how_to_set_it_up(served: Served) -> None:
    result = run_cli(["fetch", "--backend", "fal", "abc"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        "error: the fal backend is not configured; run: nanoedit config set fal.api_key YOUR-KEY\n"
    )


def test_fetch_writes_the_image_to_stdout(served: Served, clock: SkippingClock) -> None:
    task_id = submit(served, "fal")
    result = run_cli(["fetch", "--backend", "fal", task_id, "-o", "-", "-q"],
                     env=one_backend_env(served, "fal"), clock=clock)  # fmt: skip
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    assert result.stdout_bytes == made_image(served, "fal", task_id)


@pytest.fixture
def stuck() -> Iterator[tuple[Served, LogWatch]]:
    """A served sandbox whose one fal request stays queued, and whose log says when its
    status was polled."""
    log = LogWatch("/status 202")
    sandbox = Sandbox(keys=frozenset({FAL_KEY}), faults="queue-stuck")
    with SandboxServer(sandbox, log=log) as server:
        yield Served(sandbox, server.base_url), log


def test_ctrl_c_leaves_the_task_on_the_server(
    stuck: tuple[Served, LogWatch], isolated: Path
) -> None:
    served, log = stuck
    request_id = submit(served, "fal")
    returncode, stdout, stderr = interrupted_run(
        ["fetch", "--backend", "fal", request_id],
        isolated,
        one_backend_env(served, "fal"),
        log.seen,
        "the request's poll",
    )
    assert (returncode, stdout) == (130, ""), stderr
    assert stderr.splitlines() == [
        "interrupted: the tasks are still on the server; run the same command to fetch them"
    ]
    # Not cancelled, unlike a run's own request: the user came to collect it.
    assert [r.method for r in served.sandbox.received if r.method != "GET"] == ["POST"]
    assert list(isolated.iterdir()) == []
