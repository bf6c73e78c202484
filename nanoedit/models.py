"""Model names: the nano-banana aliases each backend understands, and the size each renders.

The URL-list backend (duomi) knows only Google's model ids, so the popular nano-banana names
are translated for it. The multipart gateways give the same names their own meanings (and
some add ids of their own), so they get every name exactly as the user wrote it.
"""

from __future__ import annotations

# duomi's ids for the names people use (API-NOTES §2).
DUOMI_ALIASES: dict[str, str] = {
    "nano-banana": "gemini-2.5-flash-image",
    "nano-banana-pro": "gemini-3-pro-image-preview",
    "nano-banana-2": "gemini-3.1-flash-image-preview",
}
ALIASES: dict[str, dict[str, str]] = {"duomi": DUOMI_ALIASES}

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


def renders(model: str, size: str | None) -> bool:
    """Whether ``model`` can render ``size`` (None: its own default); unknown models may."""
    return not (model in FLASH_MODELS and size in ("2K", "4K"))


def model_for(backend: str, model: str) -> str:
    """The model id to send to ``backend``: an alias it knows translated, anything else as is."""
    return ALIASES.get(backend, {}).get(model, model)


def expected_size(model: str, ratio: str, size: str | None) -> tuple[int, int] | None:
    """Width and height ``model`` renders at for ``ratio`` and ``size`` (None: the model's
    default, 1K), or None when that cannot be known (unknown model or ratio, ``auto``)."""
    if model in FLASH_MODELS:
        return FLASH_SIZES.get(ratio)
    if model not in PRO_MODELS:
        return None
    one_k = PRO_SIZES_1K.get(ratio)
    factor = SIZE_FACTORS.get((size or "1K").upper())
    if one_k is None or factor is None:
        return None
    return one_k[0] * factor, one_k[1] * factor
