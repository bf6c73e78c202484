"""The Python API: ``nanoedit.edit``, ``edit_many`` and ``generate`` run the session the
command line runs (against the in-process sandbox, or a sandbox served on loopback whose
requests are counted) and return frozen values, or raise errors carrying their exit codes."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import Served, backend_env, one_backend_env, paid, posts
from PIL import Image
from readme_help import README

import nanoedit
from nanoedit.errors import BudgetError, ExitCode, InputError, RefusedError, UsageError
from nanoedit.sandbox import sample_image


def cat(name: str = "cat.png") -> Path:
    """The sandbox's sample cat, written to ``name`` in the working folder."""
    path = Path(name)
    path.write_bytes(sample_image("cat.png")[0])
    return path


def test_edit_in_the_sandbox_returns_the_saved_image_at_its_exact_size() -> None:
    cat()
    result = nanoedit.edit("cat.png", prompt="add a hat", ratio="16:9", sandbox=True)
    # Nano Banana 2 (the default model) renders 16:9 at 1K as 1376x768.
    assert (result.path, result.path.is_absolute()) == (Path("cat-edit.jpg").absolute(), True)
    with Image.open(result.path) as image:
        assert (image.format, image.size) == ("JPEG", (1376, 768))
    (saved,) = result.images
    assert (saved.format, saved.width, saved.height) == ("jpeg", 1376, 768)
    assert saved.bytes == result.path.stat().st_size
    assert (result.job_id, result.backend, result.model) == (1, "openai", "nano-banana-2")
    assert (result.prompt, result.inputs, result.cost, result.skipped) == (
        "add a hat",
        ("cat.png",),
        0.0,
        False,
    )
    provenance = saved.provenance()
    assert provenance is not None
    assert (provenance["prompt"], provenance["inputs"][0]["name"]) == ("add a hat", "cat.png")
    # Frozen: a result is a value.
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.job_id = 2  # type: ignore[misc]


def test_generate_against_a_served_sandbox_sends_one_request_for_two_images(
    served: Served,
) -> None:
    env = dict(os.environ) | backend_env(served)
    result = nanoedit.generate(prompt="a red fox in snow", count=2, ratio="1:1", environ=env)
    assert [path.name for path in result.paths] == [
        "a-red-fox-in-snow.jpg",
        "a-red-fox-in-snow-2.jpg",
    ]
    for path in result.paths:
        with Image.open(path) as image:
            assert image.size == (1024, 1024)
    assert [request.path for request in paid(served)] == ["/v1/images/generations"]
    assert result.cost == pytest.approx(0.134)


def test_a_refusal_raises_refused_error_with_exit_code_8(served: Served) -> None:
    cat()
    served.sandbox.add_faults("image-safety")
    env = dict(os.environ) | one_backend_env(served, "gemini")
    with pytest.raises(RefusedError) as refused:
        nanoedit.edit("cat.png", prompt="add a hat", environ=env)
    assert int(refused.value.exit_code) == 8  # ExitCode.REFUSED
    assert len(paid(served)) == 1  # a refusal is never sent again
    assert not Path("cat-edit.jpg").exists()


def test_a_batch_with_one_bad_input_gives_each_jobs_outcome_without_raising(
    served: Served,
) -> None:
    cat("a.png")
    cat("b.png")
    Path("bad.png").write_bytes(b"this is no image\n")
    env = dict(os.environ) | backend_env(served)
    batch = nanoedit.edit_many(["a.png", "bad.png", "b.png"], prompt="x", jobs=2, environ=env)
    assert (batch.exit_code, batch.ok, len(batch)) == (ExitCode.PARTIAL, False, 3)
    assert [(outcome.input, outcome.state, outcome.exit_code) for outcome in batch] == [
        ("a.png", "saved", 0), ("bad.png", "failed", 4), ("b.png", "saved", 0)
    ]  # fmt: skip
    (error,) = batch.errors
    assert isinstance(error, InputError) and "bad.png" in error.message
    with pytest.raises(InputError):
        batch.outcomes[1].unwrap()
    assert sorted(result.path.name for result in batch.results) == ["a-edit.jpg", "b-edit.jpg"]
    for result in batch.results:
        with Image.open(result.path) as image:
            assert image.size == (result.images[0].width, result.images[0].height)
    # The bad input is refused before it is sent: two requests for the two good ones.
    assert len(posts(served)) == 2
    assert batch.cost == pytest.approx(0.134)
    assert "bad.png" in batch.log


def test_max_cost_refuses_a_batch_over_it_and_sends_nothing(served: Served) -> None:
    names = [str(cat(name)) for name in ("a.png", "b.png", "c.png")]
    env = dict(os.environ) | backend_env(served)
    with pytest.raises(BudgetError) as over:
        nanoedit.edit_many(names, prompt="x", max_cost=0.10, environ=env)
    assert int(over.value.exit_code) == 7  # ExitCode.PARTIAL
    assert "over --max-cost $0.10; nothing was sent" in over.value.message
    assert posts(served) == []
    assert sorted(Path().iterdir()) == sorted(Path(name) for name in names)


def test_continue_from_goes_on_from_an_earlier_result_as_its_threads_next_turn() -> None:
    cat()
    first = nanoedit.edit("cat.png", prompt="add a hat", sandbox=True)
    second = nanoedit.edit(continue_from=f"@{first.job_id}", prompt="now a scarf", sandbox=True)
    by_number = nanoedit.edit(continue_from=second.job_id, prompt="and boots", sandbox=True)
    assert (second.job_id, by_number.job_id) == (2, 3)
    assert second.inputs == (str(first.path),)
    provenance = by_number.images[0].provenance()
    assert provenance is not None and provenance["continues"] == {"job": 2, "result": 1}
    with Image.open(by_number.path) as image:
        assert image.size == (by_number.images[0].width, by_number.images[0].height)


def test_nothing_is_overwritten_unless_asked() -> None:
    cat()
    Path("out.jpg").write_bytes(b"mine")
    with pytest.raises(InputError) as refused:
        nanoedit.edit("cat.png", prompt="x", output="out.jpg", sandbox=True)
    assert (refused.value.kind, refused.value.exit_code) == ("overwrite", 4)
    assert Path("out.jpg").read_bytes() == b"mine"
    result = nanoedit.edit("cat.png", prompt="x", output="out.jpg", overwrite=True, sandbox=True)
    assert result.path == Path("out.jpg").absolute()
    with Image.open(result.path) as image:
        assert image.format == "JPEG"


@pytest.mark.parametrize(
    ("call", "said"),
    [
        (
            lambda: nanoedit.edit(prompt="x", sandbox=True),
            "takes the image to edit, or continue_from",
        ),
        (lambda: nanoedit.edit("-", prompt="x", sandbox=True), "image '-' would read stdin"),
        (lambda: nanoedit.edit("cat.png", prompt="-", sandbox=True), "prompt='-' would read stdin"),
        (lambda: nanoedit.edit("cat.png", prompt="x", output="-", sandbox=True), "is stdout"),
        (lambda: nanoedit.edit(".", prompt="x", sandbox=True), "call edit_many(['.'])"),
        (lambda: nanoedit.edit("cat.png", prompt="x", ratio="7:3", sandbox=True), "invalid ratio"),
        (lambda: nanoedit.edit_many("cat.png", prompt="x", sandbox=True), "call edit()"),
        (lambda: nanoedit.edit_many(["cat.png"], prompt="x", jobs=0, sandbox=True), "1 to 64"),
        (lambda: nanoedit.generate(prompt="x", count=11, sandbox=True), "1 to 10 images"),
        (lambda: nanoedit.generate(prompt="  ", sandbox=True), "the prompt is empty"),
    ],
)
def test_a_bad_call_raises_a_usage_error_with_exit_code_2(call: object, said: str) -> None:
    cat()
    assert callable(call)
    with pytest.raises(UsageError) as bad:
        call()
    assert bad.value.exit_code == 2
    assert said in bad.value.message
    assert sorted(path.name for path in Path().iterdir()) == ["cat.png"]


def test_import_nanoedit_loads_the_api_only_when_it_is_used() -> None:
    code = (
        "import sys, nanoedit\n"
        "print(sorted(m for m in ('nanoedit.api', 'nanoedit.session', 'httpx', 'PIL') if m in sys.modules))\n"
        "assert 'edit' in dir(nanoedit) and callable(nanoedit.edit)\n"
        "print('nanoedit.api' in sys.modules, nanoedit.Result.__name__)\n"
        "try:\n    nanoedit.nothing\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "[]", "True Result", "module 'nanoedit' has no attribute 'nothing'"
    ]  # fmt: skip


def test_the_readmes_python_api_example_prints_what_its_comments_say() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API\n") :]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the Python API section has no python example"
    code = found.group(1)
    # Each print is followed by what it prints, as comment lines.
    said: list[str] = []
    printed = False
    for line in code.splitlines():
        if line.startswith("# ") and printed:
            said.append(line[2:])
        else:
            printed = "print(" in line
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == said
    assert len(said) == 6
    with Image.open("cat-edit.jpg") as image:
        assert image.size == (1376, 768)


def test_skip_existing_returns_the_saved_result_and_sends_nothing(served: Served) -> None:
    cat()
    env = dict(os.environ) | backend_env(served)
    first = nanoedit.edit("cat.png", prompt="add a hat", skip_existing=True, environ=env)
    again = nanoedit.edit("cat.png", prompt="add a hat", skip_existing=True, environ=env)
    assert (first.skipped, again.skipped) == (False, True)
    assert again.paths == first.paths == (Path("cat-edit.jpg").absolute(),)
    assert (again.images, again.job_id, again.cost) == (first.images, None, None)
    assert len(posts(served)) == 1


def test_calls_from_threads_at_once_each_save_their_own_image() -> None:
    # Outside the main thread no signal handler can be set: the run goes on without one.
    cat()
    results: dict[str, nanoedit.Result] = {}

    def edit(prompt: str) -> None:
        results[prompt] = nanoedit.edit("cat.png", prompt=prompt, sandbox=True)

    threads = [threading.Thread(target=edit, args=(prompt,)) for prompt in ("hat", "scarf")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == ["hat", "scarf"]
    assert {result.path.name for result in results.values()} == {"cat-edit.jpg", "cat-edit-2.jpg"}
    assert sorted(result.job_id or 0 for result in results.values()) == [1, 2]
    for prompt, result in results.items():
        provenance = result.images[0].provenance()
        assert provenance is not None and provenance["prompt"] == prompt


def test_the_models_text_and_usage_come_back_with_the_image(served: Served) -> None:
    cat()
    env = dict(os.environ) | one_backend_env(served, "gemini")
    result = nanoedit.edit("cat.png", prompt="add a hat", size="2K", environ=env)
    assert (result.backend, result.text) == ("gemini", "Here is the edited image.")
    assert result.usage is not None and result.usage["thoughtsTokenCount"] == 16
    (request,) = paid(served)
    assert request.path == f"/v1beta/models/{result.model}:generateContent"
    with Image.open(result.path) as image:
        assert image.size == (result.images[0].width, result.images[0].height)
        assert image.size == (2400, 1792)  # 4:3 at 2K, the ratio of the cat it was given


def test_generate_takes_the_provider_dials_and_refuses_those_the_backend_lacks(
    served: Served,
) -> None:
    env = dict(os.environ) | one_backend_env(served, "fal")
    dials = nanoedit.Dials(seed=42, format="webp", safety="1")
    result = nanoedit.generate(prompt="a red fox", dials=dials, environ=env)
    assert [path.name for path in result.paths] == ["a-red-fox.webp"]
    [submit] = paid(served)
    assert {key: submit.json[key] for key in ("seed", "output_format", "safety_tolerance")} == {
        "seed": 42,
        "output_format": "webp",
        "safety_tolerance": "1",
    }
    with pytest.raises(UsageError) as refused:
        nanoedit.generate(prompt="a red fox", dials=nanoedit.Dials(thinking="high"), environ=env)
    assert refused.value.exit_code == ExitCode.USAGE
    assert str(refused.value).startswith("--thinking is not sent by the fal backend")
    assert len(paid(served)) == 1
