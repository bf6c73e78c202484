"""The pixels each model renders: width and height by ratio and size, from Google's tables
(the catalog's ``pixels`` names which table a model follows)."""

from __future__ import annotations

from nanoedit.catalog.models import FLASH_25_TABLE, Resolved

# ---- output sizes --------------------------------------------------------------------------

# The first Nano Banana (pixels = the 2.5 table) renders at 1K only, whatever size is asked for
# (API-NOTES §3).
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
# The tall ratios at 1K, and every ratio at 512 (API-NOTES-PROVIDERS §6; the printed 792x168
# for 21:9 is a typo in Google's table, so 21:9 at 512 is left unknown).
TALL_SIZES_1K: dict[str, tuple[int, int]] = {
    "1:4": (512, 2048), "4:1": (2048, 512), "1:8": (384, 3072), "8:1": (3072, 384),
}  # fmt: skip
SIZES_512: dict[str, tuple[int, int]] = {
    "1:1": (512, 512), "2:3": (424, 632), "3:2": (632, 424), "3:4": (448, 600),
    "4:3": (600, 448), "4:5": (464, 576), "5:4": (576, 464), "9:16": (384, 688),
    "16:9": (688, 384), "1:4": (256, 1024), "4:1": (1024, 256), "1:8": (192, 1536),
    "8:1": (1536, 192),
}  # fmt: skip


def expected_size(resolved: Resolved, ratio: str, size: str | None) -> tuple[int, int] | None:
    """Width and height the model renders for ``ratio`` and ``size`` (None: the model's
    default, 1K), or None when that cannot be known (unknown model or ratio, ``auto``, or a
    size the model cannot render here)."""
    model, limits = resolved.model, resolved.limits
    if model is None or limits is None or ratio not in limits.ratios:
        return None
    size = (size or "1K").upper() if size != "512" else "512"
    if resolved.offer is not None and not resolved.offer.size_field:
        size = "1K"  # the API has no size field: the model renders its default
    if size not in limits.sizes:
        return None
    if model.pixels == FLASH_25_TABLE:
        return FLASH_SIZES.get(ratio)
    if size == "512":
        return SIZES_512.get(ratio)
    one_k = PRO_SIZES_1K.get(ratio) or TALL_SIZES_1K.get(ratio)
    factor = SIZE_FACTORS.get(size)
    if one_k is None or factor is None:
        return None
    return one_k[0] * factor, one_k[1] * factor
