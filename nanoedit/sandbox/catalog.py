"""The models the sandbox knows, and the image size each (model, ratio, size) renders at."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

RATIOS: tuple[str, ...] = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
SIZES: tuple[str, ...] = ("1K", "2K", "4K")
# Only gemini-3.1-flash-image and gemini-nano-banana-2.1 draw these.
WIDE_RATIOS: tuple[str, ...] = ("1:4", "4:1", "1:8", "8:1")
HALF_SIZE = "512"
# What the model says instead of drawing when it declines.
REFUSAL = (
    "I can't create this image: the request may go against the content policy. "
    "Try describing it differently."
)

# gemini-2.5-flash-image renders 1K only.
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

# gemini-3 at 1K; portrait ratios are the landscape ones turned on their side.
_PRO_LANDSCAPE: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "3:2": (1264, 848),
    "4:3": (1200, 896),
    "5:4": (1152, 928),
    "16:9": (1376, 768),
    "21:9": (1584, 672),
}
PRO_SIZES_1K: dict[str, tuple[int, int]] = {
    **_PRO_LANDSCAPE,
    **{
        portrait: (_PRO_LANDSCAPE[landscape][1], _PRO_LANDSCAPE[landscape][0])
        for portrait, landscape in (
            ("2:3", "3:2"),
            ("3:4", "4:3"),
            ("4:5", "5:4"),
            ("9:16", "16:9"),
        )
    },
}
# gemini-3.1-flash-image's extra ratios at 1K.
WIDE_SIZES_1K: dict[str, tuple[int, int]] = {
    "1:4": (512, 2048),
    "4:1": (2048, 512),
    "1:8": (384, 3072),
    "8:1": (3072, 384),
}
SIZE_FACTORS: dict[str, int] = {"1K": 1, "2K": 2, "4K": 4}


class Family(Enum):
    """Which Gemini generation a model id stands for: it decides sizes and output format."""

    FLASH = "gemini-2.5"
    PRO = "gemini-3"
    FLASH_3 = "gemini-3.1-flash"
    """As PRO, plus the size 512 and the four ``WIDE_RATIOS`` where they can be asked for."""
    FLASH_21 = "gemini-nano-banana-2.1"
    """As PRO, plus the four ``WIDE_RATIOS`` (no 512 tier)."""
    LITE = "gemini-3.1-flash-lite"
    """As PRO at 1K only."""


@dataclass(frozen=True)
class Model:
    """One model id as a server (a reseller, or Google) publishes it."""

    id: str
    family: Family
    default_size: str = "1K"

    @property
    def mime(self) -> str:
        """Gemini 3 answers JPEG, 2.5 PNG."""
        return "image/png" if self.family is Family.FLASH else "image/jpeg"

    @property
    def sizes(self) -> tuple[str, ...]:
        """The image sizes the model draws (2.5: 1K only)."""
        if self.family in (Family.FLASH, Family.LITE):
            return ("1K",)
        return (HALF_SIZE, *SIZES) if self.family is Family.FLASH_3 else SIZES

    @property
    def thinking_levels(self) -> tuple[str, ...]:
        """The thinking levels a request may set ([P] Gemini API changelog: 3.1 Flash Image
        MINIMAL and HIGH, 2.1 also MEDIUM; [I] none on Pro, whose thinking is fixed, nor on
        2.5 and Lite, which do not think by levels)."""
        if self.family is Family.FLASH_3:
            return ("MINIMAL", "HIGH")
        if self.family is Family.FLASH_21:
            return ("MINIMAL", "MEDIUM", "HIGH")
        return ()

    @property
    def searches(self) -> bool:
        """Whether the model takes the Google Search tool ([P] Pro, 3.1 Flash and 2.1; [I] not
        2.5 Flash Image nor Lite)."""
        return self.family in (Family.PRO, Family.FLASH_3, Family.FLASH_21)

    @property
    def ratios(self) -> tuple[str, ...]:
        """The aspect ratios the model draws."""
        wide = self.family in (Family.FLASH_3, Family.FLASH_21)
        return (*RATIOS, *WIDE_RATIOS) if wide else RATIOS


def _models(*models: Model) -> dict[str, Model]:
    return {model.id: model for model in models}


OPENAI_MODELS: dict[str, Model] = _models(
    Model("nano-banana", Family.FLASH),
    Model("nano-banana-hd", Family.FLASH),
    Model("gemini-2.5-flash-image", Family.FLASH),
    Model("gemini-2.5-flash-image-preview", Family.FLASH),
    Model("nano-banana-pro", Family.PRO),
    Model("nano-banana-2", Family.FLASH_3),
    Model("nano-banana-2-2k", Family.FLASH_3, "2K"),
    Model("nano-banana-2-4k", Family.FLASH_3, "4K"),
    Model("gemini-3-pro-image-preview", Family.PRO),
    Model("gemini-3.1-flash-image-preview", Family.FLASH_3),
)

# duomi's own names (its seed and API-NOTES §2): they are duomi's, not Google's, so the
# preview names live on there. Its 2.5 model went with Google's (shut down 2026-10-02).
DUOMI_MODELS: dict[str, Model] = _models(
    Model("gemini-3-pro-image-preview", Family.PRO),
    Model("gemini-3.1-flash-image-preview", Family.FLASH_3),
)

# Google's lineup as of 2026-12 (API-NOTES-LINEUP): the GA ids. The previews were shut down on
# 2026-06-25 and gemini-2.5-flash-image on 2026-10-02; Google answers them as unknown ids.
GEMINI_MODELS: dict[str, Model] = _models(
    Model("gemini-3-pro-image", Family.PRO),
    Model("gemini-3.1-flash-image", Family.FLASH_3),
    Model("gemini-nano-banana-2.1", Family.FLASH_21),
    Model("gemini-3.1-flash-lite-image", Family.LITE),
)


def nearest_ratio(width: int, height: int) -> str:
    """The table ratio closest to an image's shape (compared on a log scale, so 2:1 and 1:2
    are equally far from 1:1)."""
    aspect = math.log(width / height)

    def distance(ratio: str) -> float:
        w, h = ratio.split(":")
        return abs(math.log(int(w) / int(h)) - aspect)

    return min(RATIOS, key=distance)


def output_size(
    model: Model, ratio: str | None, size: str | None, source: tuple[int, int] | None
) -> tuple[int, int]:
    """Width and height of the image ``model`` renders.

    ``ratio`` None (or ``auto``) follows the first input image (``source``), else 1:1.
    The 2.5 family ignores ``size``, as relays do. A ``WIDE_RATIOS`` ratio or the size
    ``512`` is for a model whose ``ratios`` and ``sizes`` have it (the caller checks).
    """
    if ratio is None or ratio == "auto":
        ratio = nearest_ratio(*source) if source else "1:1"
    if model.family is Family.FLASH:
        return FLASH_SIZES[ratio]
    width, height = PRO_SIZES_1K[ratio] if ratio in PRO_SIZES_1K else WIDE_SIZES_1K[ratio]
    size = size or model.default_size
    if size == HALF_SIZE:
        # Half of 1K on each side, as Google's table has it for every ratio.
        return width // 2, height // 2
    factor = SIZE_FACTORS[size]
    return width * factor, height * factor


def output_tokens(model: Model, size: str | None) -> int:
    """Tokens Gemini bills for one output image (1290 for 2.5; 1120 for 3 up to 2K, 2000 at 4K,
    747 at 512)."""
    if model.family is Family.FLASH:
        return 1290
    size = size or model.default_size
    return {"4K": 2000, HALF_SIZE: 747}.get(size, 1120)
