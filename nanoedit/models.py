"""Google's image models: their nano-banana names, what each accepts and the size it renders.

These are properties of the models, not of a backend: a backend that speaks Google's ids
(duomi, Google's own API) declares :data:`GOOGLE_ALIASES` as its aliases and looks its limits
up in :data:`GOOGLE_MODELS`. The multipart gateways give the same names their own meanings
(and some add ids of their own), so they get every name exactly as the user wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Google's ids for the names people use (API-NOTES §2).
GOOGLE_ALIASES: dict[str, str] = {
    "nano-banana": "gemini-2.5-flash-image",
    "nano-banana-pro": "gemini-3-pro-image-preview",
    "nano-banana-2": "gemini-3.1-flash-image-preview",
}
BASE_RATIOS: tuple[str, ...] = (
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
)  # fmt: skip
# Only 3.1 Flash renders these (API-NOTES-PROVIDERS §1).
TALL_RATIOS: tuple[str, ...] = ("1:4", "4:1", "1:8", "8:1")


@dataclass(frozen=True)
class ModelLimits:
    """What one model accepts: images per request, sizes and ratios (``auto`` always)."""

    max_images: int
    sizes: tuple[str, ...]
    ratios: tuple[str, ...]


GOOGLE_MODELS: dict[str, ModelLimits] = {
    "gemini-2.5-flash-image": ModelLimits(3, ("1K",), BASE_RATIOS),
    "gemini-3-pro-image-preview": ModelLimits(14, ("1K", "2K", "4K"), BASE_RATIOS),
    "gemini-3.1-flash-image-preview": ModelLimits(
        14, ("512", "1K", "2K", "4K"), BASE_RATIOS + TALL_RATIOS
    ),
}

# gemini-2.5-flash-image renders at 1K only, whatever size is asked for (API-NOTES §3).
FLASH_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}

# The 3.x models at 1K; a portrait ratio is its landscape twin turned on its side.
_PRO_LANDSCAPE_1K: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "3:2": (1264, 848),
    "4:3": (1200, 896),
    "5:4": (1152, 928),
    "16:9": (1376, 768),
    "21:9": (1584, 672),
}
_PORTRAIT_OF: dict[str, str] = {"2:3": "3:2", "3:4": "4:3", "4:5": "5:4", "9:16": "16:9"}
PRO_SIZES_1K: dict[str, tuple[int, int]] = {
    **_PRO_LANDSCAPE_1K,
    **{
        portrait: (_PRO_LANDSCAPE_1K[landscape][1], _PRO_LANDSCAPE_1K[landscape][0])
        for portrait, landscape in _PORTRAIT_OF.items()
    },
}
# 2K doubles and 4K quadruples each side of the 1K size.
SIZE_FACTORS: dict[str, int] = {"1K": 1, "2K": 2, "4K": 4}
# 3.1 Flash alone: the tall ratios at 1K, and every ratio at 512 (API-NOTES-PROVIDERS §6; the
# printed 792x168 for 21:9 is a typo in Google's table, so 21:9 at 512 is left unknown).
TALL_SIZES_1K: dict[str, tuple[int, int]] = {
    "1:4": (512, 2048), "4:1": (2048, 512), "1:8": (384, 3072), "8:1": (3072, 384),
}  # fmt: skip
FLASH31_SIZES_512: dict[str, tuple[int, int]] = {
    "1:1": (512, 512), "2:3": (424, 632), "3:2": (632, 424), "3:4": (448, 600),
    "4:3": (600, 448), "4:5": (464, 576), "5:4": (576, 464), "9:16": (384, 688),
    "16:9": (688, 384), "1:4": (256, 1024), "4:1": (1024, 256), "1:8": (192, 1536),
    "8:1": (1536, 192),
}  # fmt: skip
FLASH31_MODELS = frozenset({"nano-banana-2", "gemini-3.1-flash-image-preview"})

# Both the alias and Google's id, since either may reach either backend.
FLASH_MODELS = frozenset({"nano-banana", "gemini-2.5-flash-image"})
PRO_MODELS = frozenset(
    {
        "nano-banana-pro",
        "gemini-3-pro-image-preview",
        "nano-banana-2",
        "gemini-3.1-flash-image-preview",
    }
)


def limits_of(model: str) -> ModelLimits | None:
    """What a Google model (by id or nano-banana alias) accepts; None for other ids."""
    return GOOGLE_MODELS.get(GOOGLE_ALIASES.get(model, model))


def expected_size(model: str, ratio: str, size: str | None) -> tuple[int, int] | None:
    """Width and height ``model`` renders at for ``ratio`` and ``size`` (None: the model's
    default, 1K), or None when that cannot be known (unknown model or ratio, ``auto``)."""
    if model in FLASH_MODELS:
        return FLASH_SIZES.get(ratio)
    if model not in PRO_MODELS:
        return None
    flash31 = model in FLASH31_MODELS
    if flash31 and size == "512":
        return FLASH31_SIZES_512.get(ratio)
    one_k = PRO_SIZES_1K.get(ratio) or (TALL_SIZES_1K.get(ratio) if flash31 else None)
    factor = SIZE_FACTORS.get((size or "1K").upper())
    if one_k is None or factor is None:
        return None
    return one_k[0] * factor, one_k[1] * factor
