"""An encoded answer image and what encodes one: the part of the sandbox's drawing that
every drawing module shares (``render`` and ``transparency``), on its own so that neither
imports the other back."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image

RGB = tuple[int, int, int]
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}


@dataclass(frozen=True)
class Encoded:
    """An encoded image and what it is."""

    data: bytes
    mime: str

    @property
    def ext(self) -> str:
        """The file extension for the format (``png``, ``jpeg`` or ``webp``)."""
        return EXTENSIONS[self.mime]


def encode(image: Image.Image, mime: str, *, fast: bool = False) -> Encoded:
    """Encode as PNG, JPEG or WebP (no metadata, so the bytes depend on the pixels only)."""
    buffer = io.BytesIO()
    if mime == "image/jpeg":
        image.convert("RGB").save(buffer, "JPEG", quality=90)
    elif mime == "image/png":
        image.save(buffer, "PNG", compress_level=1 if fast else 3)
    elif mime == "image/webp":
        image.convert("RGB").save(buffer, "WEBP", quality=90)
    else:
        raise ValueError(f"cannot encode {mime}")
    return Encoded(buffer.getvalue(), mime)


def seed_of(*parts: str) -> int:
    """A stable seed (Python's own hash() changes from run to run)."""
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")
