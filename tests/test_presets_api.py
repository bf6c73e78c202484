"""Presets through the Python API (nanoedit.edit, edit_many, generate) against the served
sandbox: the request carries the preset's template and settings, an option given wins over
the preset, and an unknown preset raises the command line's usage error with nothing sent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Served, config_file, every_backend_env, one_backend_env, paid
from PIL import Image

import nanoedit
from nanoedit.errors import UsageError
from nanoedit.sandbox import sample_image


def test_generate_and_edit_take_a_preset_and_an_option_given_wins(served: Served) -> None:
    config = config_file()
    config.parent.mkdir(parents=True)
    config.write_text(
        '[presets.poster]\nprompt = "{prompt}, as a poster"\nratio = "3:4"\nbackend = "gemini"\n'
    )
    config.chmod(0o600)
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    # Every backend set up: only the preset's backend sends these to Gemini.
    env = dict(os.environ) | every_backend_env(served)
    made = nanoedit.generate(prompt="a red fox", preset="poster", environ=env)
    assert (made.path.name, made.backend, made.prompt) == (
        "a-red-fox.jpg", "gemini", "a red fox, as a poster"
    )  # fmt: skip
    with Image.open(made.path) as image:
        assert image.size == (896, 1200)
    nanoedit.edit("cat.png", prompt="the cat", preset="poster", ratio="1:1", environ=env)
    batch = nanoedit.edit_many(["cat.png"], prompt="the cat", preset="sticker", environ=env,
                               backend="gemini", overwrite=True, out_dir="many")  # fmt: skip
    assert batch.ok, batch.log
    requests = paid(served)
    assert [request.path for request in requests] == [
        "/v1beta/models/gemini-nano-banana-2.1:generateContent"
    ] * 3
    assert [
        (r.json["contents"][0]["parts"][0]["text"], r.json["generationConfig"]["imageConfig"])
        for r in requests
    ] == [
        ("a red fox, as a poster", {"aspectRatio": "3:4"}),
        ("the cat, as a poster", {"aspectRatio": "1:1"}),
        (
            "the cat, as a die-cut sticker: bold clean outlines, flat vivid colours with simple "
            "cel shading, the whole subject inside a thick even white border that follows its "
            "outline, no text. Place the subject on a solid, flat, uniform magenta (#FF00FF) "
            "background that fills the whole image, with no shadow, gradient, texture or "
            "reflection on it, and use no magenta anywhere in the subject.",
            {"aspectRatio": "1:1"},
        ),
    ]
    # The sticker preset cuts out: its result has an alpha channel, as on the command line.
    (sticker,) = batch.results[0].images
    assert (sticker.path.name, sticker.format) == ("cat-edit.png", "png")
    with Image.open(sticker.path) as image:
        assert image.mode == "RGBA"


def test_an_unknown_preset_raises_a_usage_error_and_sends_nothing(served: Served) -> None:
    env = dict(os.environ) | one_backend_env(served, "gemini")
    with pytest.raises(UsageError) as refused:
        nanoedit.generate(prompt="x", preset="postr", environ=env)
    assert refused.value.message == (
        "no preset is called 'postr'; the presets are: icon, product, sticker, thumbnail "
        "(nanoedit presets shows them)"
    )
    assert int(refused.value.exit_code) == 2
    assert served.sandbox.received == []
