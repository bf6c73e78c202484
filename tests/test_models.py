"""Model aliases per backend, and the output-size tables of API-NOTES §3, in full."""

from __future__ import annotations

import pytest

from nanoedit.backends import backend_class
from nanoedit.models import GOOGLE_ALIASES, expected_size
from nanoedit.sandbox.catalog import DUOMI_MODELS, OPENAI_MODELS, output_size


def model_for(backend: str, model: str) -> str:
    """The id a backend sends for a model name (its own aliases translated)."""
    return backend_class(backend).model_id(model)


RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
FLASH = ("nano-banana", "gemini-2.5-flash-image")
PRO = (
    "nano-banana-pro",
    "gemini-3-pro-image-preview",
    "nano-banana-2",
    "gemini-3.1-flash-image-preview",
)

# Written out by hand from API-NOTES §3, not computed, so a slip in the code shows.
FLASH_1K = {
    "1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832), "3:4": (864, 1184),
    "4:3": (1184, 864), "4:5": (896, 1152), "5:4": (1152, 896), "9:16": (768, 1344),
    "16:9": (1344, 768), "21:9": (1536, 672),
}  # fmt: skip
PRO_TABLES = {
    "1K": {
        "1:1": (1024, 1024), "2:3": (848, 1264), "3:2": (1264, 848), "3:4": (896, 1200),
        "4:3": (1200, 896), "4:5": (928, 1152), "5:4": (1152, 928), "9:16": (768, 1376),
        "16:9": (1376, 768), "21:9": (1584, 672),
    },
    "2K": {
        "1:1": (2048, 2048), "2:3": (1696, 2528), "3:2": (2528, 1696), "3:4": (1792, 2400),
        "4:3": (2400, 1792), "4:5": (1856, 2304), "5:4": (2304, 1856), "9:16": (1536, 2752),
        "16:9": (2752, 1536), "21:9": (3168, 1344),
    },
    "4K": {
        "1:1": (4096, 4096), "2:3": (3392, 5056), "3:2": (5056, 3392), "3:4": (3584, 4800),
        "4:3": (4800, 3584), "4:5": (3712, 4608), "5:4": (4608, 3712), "9:16": (3072, 5504),
        "16:9": (5504, 3072), "21:9": (6336, 2688),
    },
}  # fmt: skip


def test_duomi_gets_google_ids_for_the_aliases() -> None:
    assert model_for("duomi", "nano-banana") == "gemini-2.5-flash-image"
    assert model_for("duomi", "nano-banana-pro") == "gemini-3-pro-image-preview"
    assert model_for("duomi", "nano-banana-2") == "gemini-3.1-flash-image-preview"


@pytest.mark.parametrize(
    "model",
    [
        "gemini-2.5-flash-image",
        "gemini-3-pro-image-preview",
        "nano-banana-hd",
        "nano-banana-2-4k",
        "Nano-Banana",
        "some-future-model",
    ],
)
def test_other_names_pass_through_untouched(model: str) -> None:
    assert model_for("duomi", model) == model


@pytest.mark.parametrize("model", ["nano-banana", "nano-banana-pro", "nano-banana-2", "x"])
def test_the_multipart_backend_gets_names_as_given(model: str) -> None:
    assert model_for("openai", model) == model


def test_every_alias_names_a_model_duomi_serves() -> None:
    assert set(GOOGLE_ALIASES.values()) <= set(DUOMI_MODELS)


@pytest.mark.parametrize("model", FLASH)
@pytest.mark.parametrize("size", [None, "1K", "2K", "4K"])
def test_flash_renders_1k_whatever_size_is_asked(model: str, size: str | None) -> None:
    assert {ratio: expected_size(model, ratio, size) for ratio in RATIOS} == FLASH_1K


@pytest.mark.parametrize("model", PRO)
@pytest.mark.parametrize("size", ["1K", "2K", "4K"])
def test_3x_tables(model: str, size: str) -> None:
    assert {ratio: expected_size(model, ratio, size) for ratio in RATIOS} == PRO_TABLES[size]


@pytest.mark.parametrize("model", PRO)
def test_3x_without_a_size_render_1k(model: str) -> None:
    assert {ratio: expected_size(model, ratio, None) for ratio in RATIOS} == PRO_TABLES["1K"]


def test_size_in_any_case() -> None:
    assert expected_size("nano-banana-2", "16:9", "4k") == (5504, 3072)


@pytest.mark.parametrize(
    ("model", "ratio", "size"),
    [
        ("nano-banana", "auto", None),
        ("gemini-3-pro-image-preview", "auto", "2K"),
        ("nano-banana-hd", "1:1", None),
        ("nano-banana-2-4k", "1:1", None),
        ("some-future-model", "1:1", "1K"),
        ("nano-banana-pro", "7:3", "1K"),
        ("nano-banana", "7:3", None),
        ("nano-banana-pro", "1:1", "8K"),
    ],
)
def test_unknown_is_none(model: str, ratio: str, size: str | None) -> None:
    assert expected_size(model, ratio, size) is None


@pytest.mark.parametrize("model", FLASH + PRO)
def test_the_sandbox_renders_the_same_sizes(model: str) -> None:
    # The sandbox is what the other tests run against: it must agree with the table.
    target = model_for("duomi", model)
    for catalog in (OPENAI_MODELS, DUOMI_MODELS):
        for name in (model, target):
            if name not in catalog:
                continue
            for ratio in RATIOS:
                for size in (None, "1K", "2K", "4K"):
                    rendered = output_size(catalog[name], ratio, size, None)
                    assert expected_size(model, ratio, size) == rendered, (name, ratio, size)
