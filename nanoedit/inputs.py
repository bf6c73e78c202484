"""Input images: local files and downloaded URLs turned into bytes ready to upload."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from nanoedit.errors import InputError
from nanoedit.imageformat import MIME_TYPES, UPLOAD_FORMATS, describe, sniff
from nanoedit.jobs import ImageSource

# Far above any real upload limit of these APIs, but it keeps a wrong argument
# (a disk image, a video) from being read into memory.
MAX_INPUT_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class InputImage:
    """An input image's bytes, as they will be sent."""

    source: ImageSource
    data: bytes
    format: str
    converted_from: str | None = None

    @property
    def mime(self) -> str:
        """The content type sent with the bytes."""
        return MIME_TYPES[self.format]

    @property
    def filename(self) -> str:
        """The file name sent in a multipart part."""
        if self.converted_from is None:
            return self.source.name
        return f"{self.source.stem}.png"


def load_local(source: ImageSource) -> InputImage:
    """Read and check a local image file; errors name the file and what to do."""
    path = source.path
    where = source.location
    if not path.exists():
        raise InputError(f"{where}: no such file; check the path")
    if path.is_dir():
        raise InputError(f"{where} is a directory; pass an image file")
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise InputError(
                f"{where} is {size // (1024 * 1024)} MiB; images over "
                f"{MAX_INPUT_BYTES // (1024 * 1024)} MiB are not accepted, pass a smaller one"
            )
        data = path.read_bytes()
    except PermissionError:
        raise InputError(
            f"{where} cannot be read (permission denied); check its permissions"
        ) from None
    except OSError as exc:
        raise InputError(f"{where} cannot be read ({exc.strerror}); check the file") from None
    return check_image(source, data)


def check_image(source: ImageSource, data: bytes) -> InputImage:
    """Accept PNG, JPEG and WebP as they are; convert other images losslessly to PNG."""
    where = source.location
    fmt = sniff(data)
    if fmt is None:
        raise InputError(
            f"{where} is not an image ({describe(data)}); pass a PNG, JPEG or WebP file"
        )
    if fmt in UPLOAD_FORMATS:
        _verify(where, data, fmt)
        return InputImage(source=source, data=data, format=fmt)
    return InputImage(
        source=source, data=_to_png(where, data, fmt), format="png", converted_from=fmt
    )


@contextmanager
def no_bombs(where: str) -> Iterator[None]:
    """Refuse an image whose pixel count is past Pillow's decompression-bomb limit.

    Pillow only warns between the limit and twice the limit; a file that small on disk and
    that large in memory is never a photo, so both are refused.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"{where} claims to be larger than {Image.MAX_IMAGE_PIXELS} pixels, so it looks "
            f"like a decompression bomb ({exc.__class__.__name__}); pass a real image"
        ) from None


def _verify(where: str, data: bytes, fmt: str) -> None:
    """Decode the header and structure so a broken file fails here, not on a paid request."""
    from PIL import Image, UnidentifiedImageError

    try:
        with no_bombs(where), Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"{where} looks like a {fmt.upper()} image but cannot be decoded ({exc}); "
            "it may be truncated or damaged, re-export it"
        ) from None


def _to_png(where: str, data: bytes, fmt: str) -> bytes:
    from PIL import Image, UnidentifiedImageError

    try:
        with no_bombs(where), Image.open(io.BytesIO(data)) as image:
            image.seek(0)
            out = io.BytesIO()
            image.save(out, format="PNG")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"{where} is a {fmt.upper()} file that cannot be decoded ({exc}); "
            "convert it to PNG, JPEG or WebP"
        ) from None
    return out.getvalue()
