"""The URL-list backend: task submission, polling and the nested result, over loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DUOMI_KEY, Served, SkippingClock, backend_env, error_object, run_cli
from PIL import Image

from nanoedit.backends.base import backend_class
from nanoedit.backends.registry import backend_names


def test_url_only_job_goes_to_the_url_list_api(served: Served) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    result = run_cli(["edit", url, "-p", "add a hat", "--ratio", "21:9"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (0, "dog-edit.jpg\n"), result.stderr
    submit, *polls, download = served.sandbox.received
    assert (submit.method, submit.path) == ("POST", "/api/gemini/nano-banana-edit")
    assert submit.headers["authorization"] == DUOMI_KEY
    assert submit.json == {
        "model": "gemini-3.1-flash-image-preview",
        "prompt": "add a hat",
        "image_urls": [url],
        "aspect_ratio": "21:9",
    }
    task_id = None
    for poll in polls:
        assert poll.method == "GET"
        assert poll.path.startswith("/api/gemini/nano-banana/")
        assert poll.headers["authorization"] == DUOMI_KEY
        task_id = poll.path.rsplit("/", 1)[1]
    assert task_id and len(polls) >= 1
    assert "authorization" not in download.headers
    with Image.open("dog-edit.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (1584, 672))


def test_references_and_size_go_in_the_body(served: Served) -> None:
    urls = [f"{served.base_url}/samples/{name}" for name in ("person.png", "hat.png")]
    result = run_cli(
        ["edit", urls[0], "--ref", urls[1], "-p", "put the hat on the person", "--size", "4k",
         "--model", "gemini-3-pro-image-preview", "--ratio", "9:16", "--json"],
        env=backend_env(served),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    submit = served.sandbox.received[0]
    assert submit.json == {
        "model": "gemini-3-pro-image-preview",
        "prompt": "put the hat on the person",
        "image_urls": urls,
        "aspect_ratio": "9:16",
        "image_size": "4K",
    }
    with Image.open("person-edit.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (3072, 5504))


def test_slow_task_is_polled_until_it_succeeds(served: Served, clock: SkippingClock) -> None:
    served.sandbox.task_seconds = 0.3
    url = f"{served.base_url}/samples/cat.png"
    result = run_cli(["edit", url, "-p", "x"], env=backend_env(served), clock=clock)
    assert result.exit_code == 0, result.stderr
    polls = [r for r in served.sandbox.received if r.path.startswith("/api/gemini/nano-banana/")]
    assert len(polls) >= 3


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("submit:error200", "refused the task submission (code 500)"),
    ],
)
def test_task_failures_exit_5(served: Served, fault: str, message: str) -> None:
    served.sandbox.add_faults(fault)
    url = f"{served.base_url}/samples/cat.png"
    result = run_cli(["edit", url, "-p", "x"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (5, "")
    assert message in result.stderr
    assert list(Path(".").iterdir()) == []


def test_a_task_refused_by_the_safety_filter_exits_8(served: Served) -> None:
    served.sandbox.add_faults("task-error")
    url = f"{served.base_url}/samples/cat.png"
    result = run_cli(["edit", url, "-p", "x", "--json"], env=backend_env(served))
    assert result.exit_code == 8
    task = [r for r in served.sandbox.received if r.path.startswith("/api/gemini/nano-banana/")]
    task_id = task[-1].path.rsplit("/", 1)[1]
    message = (
        f"task {task_id} on {served.base_url.removeprefix('http://')} was refused: image "
        "generation failed: the output was blocked by the safety filter (IMAGE_SAFETY); "
        "rephrase the prompt or change the image"
    )
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}"
    record = json.loads(result.stdout)
    assert record["error"] == error_object("refused", message, 8)
    assert list(Path(".").iterdir()) == []


def test_unknown_state_keeps_polling(served: Served) -> None:
    served.sandbox.add_faults("task-unknown")
    url = f"{served.base_url}/samples/cat.png"
    result = run_cli(["edit", url, "-p", "x"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr


def test_business_error_inside_http_200(served: Served) -> None:
    result = run_cli(["edit", "https://host.example/a.png", "-p", "x", "--model", "nope"],
                     env=backend_env(served))  # fmt: skip
    assert result.exit_code == 5
    assert "refused the task submission (code 400)" in result.stderr


def test_local_file_refused_by_url_list_backend(served: Served, sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "--backend", "duomi"], env=backend_env(served))
    assert result.exit_code == 4
    # Every registered backend that takes files is offered instead, in registry order.
    others = " or ".join(
        f"--backend {name}" for name in backend_names() if backend_class(name).takes.files
    )
    assert others.startswith("--backend openai or --backend gemini or ")
    assert result.stderr.strip() == (
        f"error: cat.png is a local file, and the duomi backend takes only http(s) URLs; "
        f"use {others}, pass a public URL, or have nanoedit upload it first: nanoedit "
        "config set upload.via command"
    )
    assert served.sandbox.received == []


def test_more_than_ten_urls_is_refused_before_sending(served: Served) -> None:
    refs = [arg for n in range(10) for arg in ("--ref", f"https://h.example/{n}.png")]
    result = run_cli(
        ["edit", "https://h.example/main.png", *refs, "-p", "x"], env=backend_env(served)
    )
    assert result.exit_code == 4
    assert "11 images for one job, and the duomi backend takes at most 10" in result.stderr
    assert served.sandbox.received == []


def test_generate_on_the_url_list_backend(served: Served) -> None:
    result = run_cli(["generate", "-p", "a red fox in snow", "--backend", "duomi"],
                     env=backend_env(served))  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, "a-red-fox-in-snow.jpg\n"), result.stderr
    submit = served.sandbox.received[0]
    assert (submit.path, submit.json) == (
        "/api/gemini/nano-banana",
        {"model": "gemini-3.1-flash-image-preview", "prompt": "a red fox in snow"},
    )


def test_count_submits_one_task_per_image(served: Served) -> None:
    result = run_cli(["generate", "-p", "fox", "-n", "2", "--backend", "duomi", "--json"],
                     env=backend_env(served))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    submits = [r for r in served.sandbox.received if r.method == "POST"]
    assert [r.json for r in submits] == [
        {"model": "gemini-3.1-flash-image-preview", "prompt": "fox"}
    ] * 2
    outputs = json.loads(result.stdout)["outputs"]
    assert [(o["path"], o["width"], o["height"], o["format"]) for o in outputs] == [
        ("fox.jpg", 1024, 1024, "jpeg"),
        ("fox-2.jpg", 1024, 1024, "jpeg"),
    ]
