"""Images on disk: whether a file is a whole image and what it is, and converting one to
another format. Below the network layer, which checks its inputs with the same pixel limits.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

from nanoedit.errors import ApiError, InputError
from nanoedit.jobs import SavedImage
from nanoedit.output.imageformat import (
    describe,
    format_from_suffix,
    jpeg_header,
    png_header,
    sniff,
)
from nanoedit.output.parts import PartFile, PartFiles, write_part

if TYPE_CHECKING:
    from PIL import Image

# Pixel limits, checked from an image's header before any pixel is decoded (inputs have their
# own, in the network layer that reads them). Results: the largest image these models render
# is 4K 21:9 (6336x2688, 17 MP). Checking one decodes a JPEG at an eighth of each side, a WebP
# whole (4 bytes a pixel at most).
MAX_RESULT_PIXELS = 100_000_000
# How a refused result's message ends.
NOT_SAVED = "nothing was saved"


def inspect_image(path: Path, where: str) -> SavedImage:
    """Check that a file really is a whole image, without decoding it at full size, and
    return what it is.

    The type comes from the bytes, never from a URL. PNG chunks are checked against their
    CRCs to the end, and JPEG's segments to its scan and its end marker, without an image
    library; anything else is decoded by Pillow (a WebP whole).
    """
    with path.open("rb") as handle:
        head = handle.read(64)
        fmt = sniff(head)
        if fmt is None:
            raise ApiError(f"{where} is not an image ({describe(head)}); nothing was saved")
        if fmt in ("png", "jpeg"):
            handle.seek(0)
            try:
                header = png_header(handle) if fmt == "png" else jpeg_header(handle, whole=True)
                check_pixels(where, header.width, header.height, MAX_RESULT_PIXELS, NOT_SAVED)
            except InputError as exc:
                raise ApiError(exc.message) from None
            except ValueError as exc:
                raise ApiError(
                    f"{where} is a damaged {fmt.upper()} image ({exc}); nothing was saved"
                ) from None
            return SavedImage(
                path, fmt, header.width, header.height, os.fstat(handle.fileno()).st_size
            )
    from PIL import UnidentifiedImageError

    try:
        with open_image(path, where, MAX_RESULT_PIXELS, NOT_SAVED) as image:
            width, height = image.size
            if fmt == "png":
                image.verify()
            else:
                if fmt == "jpeg":
                    image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                image.load()
    except InputError as exc:
        raise ApiError(exc.message) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ApiError(
            f"{where} is a damaged {fmt.upper()} image ({exc}); nothing was saved"
        ) from None
    return SavedImage(path, fmt, width, height, path.stat().st_size)


def convert_for(
    part: PartFile, checked: SavedImage, path: Path, parts: PartFiles | None = None
) -> tuple[PartFile, SavedImage, str | None]:
    """The image in the format the extension of ``path`` (an ``-o`` name) names, and a note
    that says what became of it.

    When that is another format than the server sent and nanoedit can write it, the image is
    converted into a new part file beside ``part``, which is discarded. A format it cannot
    write (HEIC) keeps the image as it came, and the note says so; a name with no image
    extension keeps it as it came with no note. Called before the provenance is added:
    converting re-encodes the image, and what was inside it would be lost.
    """
    fmt = checked.format
    wanted = format_from_suffix(path.suffix)
    if wanted is None or wanted == fmt:
        return part, checked, None
    if not can_convert_to(wanted):
        kept = (
            f"the server sent {fmt.upper()}, and nanoedit cannot convert to {wanted.upper()}; "
            f"{path} holds the {fmt.upper()} image as it came"
        )
        return part, checked, kept
    converted = write_part(part.directory, [convert(part.path, wanted)], part.what, parts=parts)
    part.discard()
    again = replace(checked, path=converted.path, format=wanted, size=converted.size)
    note = f"the server sent {fmt.upper()}; converted to {wanted.upper()} for {path}"
    return converted, again, note


def existing_image(path: Path) -> SavedImage | None:
    """An image already saved at ``path`` (read from its header), or None when there is no
    regular file there or it is not an image."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            fmt = sniff(handle.read(64))
        if fmt is None:
            return None
        with warnings.catch_warnings():
            # Only the header is read: a large image is no bomb here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
        return SavedImage(path, fmt, width, height, path.stat().st_size)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError):
        return None


def can_convert_to(fmt: str) -> bool:
    """Whether nanoedit can re-encode an image as ``fmt`` (what Pillow writes here: PNG,
    JPEG, WebP, GIF, BMP, TIFF, AVIF in current builds; not HEIC)."""
    from PIL import Image

    Image.init()
    return fmt.upper() in Image.SAVE


def convert(source: Path, fmt: str) -> bytes:
    """Re-encode an image in another format (losslessly where the format allows)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    with Image.open(source) as image:
        if fmt == "jpeg":
            image.convert("RGB").save(out, format="JPEG", quality=95)
        elif fmt == "webp":
            image.save(out, format="WEBP", lossless=True)
        else:
            image.save(out, format=fmt.upper())
    return out.getvalue()


def open_image(source: Path | IO[bytes], where: str, limit: int, advice: str) -> Image.Image:
    """Open an image (its header only) and refuse it past ``limit`` pixels, naming its size.

    The message ends with ``advice``, what the user can do.
    """
    from PIL import Image

    # Pillow's own check is process-wide, with one limit for every image, and it warns before
    # it refuses; each caller here gives the limit that fits what it opens instead.
    Image.MAX_IMAGE_PIXELS = None
    image = Image.open(source)
    try:
        check_pixels(where, *image.size, limit, advice)
    except InputError:
        image.close()
        raise
    return image


def check_pixels(where: str, width: int, height: int, limit: int, advice: str) -> None:
    """Refuse an image past ``limit`` pixels, naming its size; the message ends with
    ``advice``, what the user can do."""
    if width * height > limit:
        raise InputError(
            f"{where} is {width}x{height} pixels ({_megapixels(width * height)} MP), over the "
            f"limit of {_megapixels(limit)} MP; {advice}"
        )


def _megapixels(pixels: int) -> str:
    return f"{round(pixels / 1_000_000, 1):g}"
