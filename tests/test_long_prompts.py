"""Long prompts in the sandbox: the caption of any prompt is drawn in bounded work, and a
prompt past the model's input limit is refused by each emulated API in its provider's words."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    DUOMI_KEY,
    FAL_KEY,
    GEMINI_KEY,
    OPENAI_KEY,
    OPENROUTER_KEY,
    REPLICATE_KEY,
    Served,
    backend_env,
    image_info,
    run_cli,
)
from PIL import ImageFont

from nanoedit.output.provenance import CLIP_MARKER
from nanoedit.output.provenance import read as read_provenance
from nanoedit.sandbox import render, sample_image
from nanoedit.sandbox.render import font

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
CAT, _ = sample_image("cat.png")
# Past every model's limit: 275,000 tokens of text (the 3.x models take 131,072, the
# gateway's 2.5 model 32,768).
TOO_LONG = "x" * 1_100_000
# Well past what a caption can show, and within every model's limit (25,000 tokens).
LONG = "y" * 100_000
# More characters measured than this is work that grows with the prompt: the fix measures
# 10 strings, about 1,150 characters in all, for the caption of a long prompt at 1024 pixels.
BUDGET = 20_000


class Measured:
    """Every measurement a caption's font is asked for, within a budget: a drawing that
    measures more than ``budget`` characters fails at once instead of running for minutes."""

    def __init__(self, budget: int = BUDGET) -> None:
        self.budget = budget
        self.lengths: list[int] = []

    def font(self, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        face = font(size)
        real = face.getlength

        def getlength(text: str, *args: Any, **kwargs: Any) -> float:
            self.lengths.append(len(text))
            assert sum(self.lengths) <= self.budget, (
                f"{len(self.lengths)} measurements of {sum(self.lengths)} characters"
            )
            return real(text, *args, **kwargs)

        face.getlength = getlength  # type: ignore[method-assign,assignment]
        return face


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> Measured:
    """The sandbox's font, counting what is measured with it (drawing in this process)."""
    counter = Measured()
    monkeypatch.setattr(render, "font", counter.font)
    return counter


@pytest.mark.parametrize("length", [10_000, 100_000, 1_000_000])
def test_a_long_caption_costs_the_same_few_measurements_whatever_its_length(
    measured: Measured, length: int
) -> None:
    # Before the fix: a measurement per character dropped, each of the whole rest (quadratic).
    drawn = render.render_generate(render.Picture("z" * length, (1024, 1024), "image/png"))
    assert image_info(drawn.data) == ("PNG", (1024, 1024))
    assert (len(measured.lengths), sum(measured.lengths)) == (10, 1153)


def test_the_cut_is_the_longest_start_that_fits_with_its_ellipsis() -> None:
    face = font(46)
    fitted = render.fit_caption(LONG, 956, face.getlength)
    assert fitted == "y" * 38 + "…"
    assert face.getlength(fitted) <= 956 < face.getlength("y" * 39 + "…")
    assert render.fit_caption("fits", 956, face.getlength) == "fits"


def test_a_caption_is_one_line_whatever_breaks_the_prompt_holds() -> None:
    # Before the fix a multi-line prompt was drawn on several lines, below the band.
    face = font(46)
    assert render.fit_caption("make it\nnight\n\tand  more\r\n", 956, face.getlength) == (
        "make it night and more"
    )


def test_a_100k_character_prompt_edits_in_bounded_work_and_keeps_the_whole_prompt(
    measured: Measured, sample: Path
) -> None:
    Path("prompt.txt").write_text(LONG, encoding="utf-8")
    result = run_cli(["edit", "cat.png", "--prompt-file", "prompt.txt", "--sandbox", "--sidecar"])
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    assert image_info(Path("cat-edit.jpg").read_bytes()) == ("JPEG", (1200, 896))
    # One caption 1146 pixels wide: a handful of measurements, none of the whole prompt.
    assert (len(measured.lengths), sum(measured.lengths), max(measured.lengths)) == (10, 1401, 575)
    # A JPEG's one XMP segment holds a clipped prompt (provenance.embed); the sidecar the whole.
    record = read_provenance("cat-edit.jpg")
    assert record is not None and record["prompt"].endswith(CLIP_MARKER)
    kept = record["prompt"].removesuffix(CLIP_MARKER)
    assert kept and LONG.startswith(kept) and len(kept) < len(LONG)
    sidecar = json.loads(Path("cat-edit.jpg.json").read_text(encoding="utf-8"))
    assert sidecar["provenance"]["prompt"] == LONG


def test_the_console_script_refuses_a_prompt_past_the_limit_in_the_gateways_words(
    sample: Path,
) -> None:
    # As the defect was found: 1.1 MB through --prompt-file was a ValueError traceback.
    Path("big.txt").write_text(TOO_LONG + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NANOEDIT_SANDBOX")}
    run = subprocess.run(
        [NANOEDIT, "edit", "cat.png", "--prompt-file", "big.txt", "--sandbox"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert (run.returncode, run.stdout) == (5, "")
    host = "nanoedit-sandbox.invalid"
    assert run.stderr.startswith(
        f"error: {host} answered HTTP 400: The input token count (275560) exceeds the maximum "
        "number of tokens allowed (131072). (request id: "
    ), run.stderr
    assert run.stderr.endswith(") [INVALID_ARGUMENT]\n"), run.stderr
    assert "Traceback" not in run.stderr
    assert sorted(os.listdir()) == ["big.txt", "cat.png"]


# Each API's answer to a prompt past the limit ------------------------------------------------


def cat_uri() -> str:
    return "data:image/png;base64," + base64.b64encode(CAT).decode()


def openai_edit(client: httpx.Client, prompt: str) -> httpx.Response:
    return client.post(
        "/v1/images/edits",
        headers={"Authorization": f"Bearer {OPENAI_KEY}"},
        data={"model": "nano-banana", "prompt": prompt},
        files=[("image", ("cat.png", CAT, "image/png"))],
    )


def duomi_edit(client: httpx.Client, prompt: str) -> httpx.Response:
    body = {"model": "gemini-3.1-flash-image-preview", "prompt": prompt,
            "image_urls": [f"{client.base_url.join('/samples/cat.png')}"]}  # fmt: skip
    submitted = client.post(
        "/api/gemini/nano-banana-edit", headers={"Authorization": DUOMI_KEY}, json=body
    )
    task = submitted.json()["data"]["task_id"]
    return client.get(f"/api/gemini/nano-banana/{task}", headers={"Authorization": DUOMI_KEY})


def gemini_edit(client: httpx.Client, prompt: str) -> httpx.Response:
    parts = [{"text": prompt}, {"inlineData": {"mimeType": "image/png",
                                               "data": base64.b64encode(CAT).decode()}}]  # fmt: skip
    return client.post(
        "/v1beta/models/gemini-nano-banana-2.1:generateContent",
        headers={"x-goog-api-key": GEMINI_KEY},
        json={"contents": [{"parts": parts}]},
    )


def fal_edit(client: httpx.Client, prompt: str) -> httpx.Response:
    return client.post(
        "/fal-ai/nano-banana-2/edit",
        headers={"Authorization": f"Key {FAL_KEY}"},
        json={"prompt": prompt, "image_urls": [f"{client.base_url.join('/samples/cat.png')}"]},
    )


def replicate_edit(client: httpx.Client, prompt: str) -> httpx.Response:
    return client.post(
        "/v1/models/google/nano-banana-2/predictions",
        headers={"Authorization": f"Bearer {REPLICATE_KEY}"},
        json={"input": {"prompt": prompt, "image_input": [cat_uri()]}},
    )


def openrouter_edit(client: httpx.Client, prompt: str) -> httpx.Response:
    content = [{"type": "text", "text": prompt},
               {"type": "image_url", "image_url": {"url": cat_uri()}}]  # fmt: skip
    return client.post(
        "/api/v1/chat/completions",
        headers={"Authorization": f"Bearer {OPENROUTER_KEY}"},
        json={"model": "google/gemini-nano-banana-2.1", "modalities": ["image", "text"],
              "messages": [{"role": "user", "content": content}]},
    )  # fmt: skip


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    """The gateway's error object with the request id its message ends with cut off."""
    message = body["error"]["message"]
    head, _, tail = message.rpartition(" (request id: ")
    assert tail[:-1].isdigit() and len(tail) == 27, message
    return {"error": {**body["error"], "message": head}}


# The gateway's nano-banana is its 2.5 model (32,768 tokens, 258 an image); the 3.x models
# take 131,072 tokens, 560 an image.
GOOGLE_WORDS = (
    "The input token count (275258) exceeds the maximum number of tokens allowed (32768)."
)
GOOGLE_WORDS_3 = (
    "The input token count (275560) exceeds the maximum number of tokens allowed (131072)."
)
CASES: dict[str, tuple[Callable[[httpx.Client, str], httpx.Response], int, Any]] = {
    "openai": (openai_edit, 400, {"error": {
        "message": GOOGLE_WORDS, "type": "upstream_error", "param": "",
        "code": "INVALID_ARGUMENT"}}),
    "duomi": (duomi_edit, 200, "image generation failed: " + GOOGLE_WORDS_3),
    "gemini": (gemini_edit, 400, {"error": {
        "code": 400, "message": GOOGLE_WORDS_3, "status": "INVALID_ARGUMENT"}}),
    "fal": (fal_edit, 422, {"detail": [{
        "loc": ["body", "prompt"], "msg": "ensure this value has at most 524288 characters",
        "type": "value_error.any_str.max_length", "ctx": {"limit_value": 524288}}]}),
    "replicate": (replicate_edit, 422, {
        "type": "https://replicate.com/docs/reference/http#errors",
        "title": "Input validation failed", "status": 422,
        "detail": "- input.prompt: String length must be less than or equal to 524288\n",
        "invalid_fields": [{"type": "invalid", "field": "input.prompt",
                            "description": "String length must be less than or equal to 524288"}]}),
    "openrouter": (openrouter_edit, 400, {"error": {"code": 400, "message": (
        "This endpoint's maximum context length is 131072 tokens. However, you requested about "
        "276378 tokens (275000 of text input, 258 of image input, 1120 in the output). Please "
        'reduce the length of either one, or use the "middle-out" transform to compress your '
        "prompt automatically.")}}),
}  # fmt: skip


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        yield http


@pytest.mark.parametrize("api", list(CASES))
def test_each_api_refuses_a_prompt_past_the_limit_as_its_provider_does(
    served: Served, client: httpx.Client, api: str
) -> None:
    send, status, expected = CASES[api]
    answer = send(client, TOO_LONG)
    assert answer.status_code == status, answer.text
    body = answer.json()
    if api == "openai":
        body = without_request_id(body)
    if api == "duomi":
        assert (body["data"]["state"], body["data"]["data"]) == ("error", None)
        body = body["data"]["msg"]
    assert body == expected
    # Nothing was drawn: no result file was made for a refused prompt.
    assert not [r for r in served.sandbox.received if r.path.startswith("/files/")]


# Each backend's default model is a 3.x one (JPEG); fal and Replicate are asked for PNG. Gemini's
# thinking models also draw a draft at 512 (600x448) captioned "draft: PROMPT": 9 measurements
# of 837 characters more.
@pytest.mark.parametrize(
    ("backend", "name", "measurements"),
    [("openai", "cat-edit.jpg", (10, 1401)), ("duomi", "cat-edit.jpg", (10, 1401)),
     ("gemini", "cat-edit.jpg", (19, 2238)), ("fal", "cat-edit.png", (10, 1401)),
     ("replicate", "cat-edit.png", (10, 1401)), ("openrouter", "cat-edit.jpg", (10, 1401))],
)  # fmt: skip
def test_a_long_prompt_within_the_limit_is_drawn_on_every_backend(
    served: Served, measured: Measured, backend: str, name: str,
    measurements: tuple[int, int],
) -> None:  # fmt: skip
    Path("prompt.txt").write_text(LONG, encoding="utf-8")
    env = backend_env(
        served, openai=True, duomi=True, gemini=True, fal=True, replicate=True, openrouter=True
    )
    # A URL, which every backend takes (duomi takes nothing else).
    cat = f"{served.base_url}/samples/cat.png"
    result = run_cli(["edit", cat, "--prompt-file", "prompt.txt", "--backend", backend], env=env)
    assert (result.exit_code, result.stdout) == (0, f"{name}\n"), result.stderr
    assert image_info(Path(name).read_bytes())[1] == (1200, 896)
    assert (len(measured.lengths), sum(measured.lengths)) == measurements
