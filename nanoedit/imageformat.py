"""What a run of bytes is: image formats by their magic numbers, and a word for what is not."""

from __future__ import annotations

# The formats every backend takes as input and that nanoedit saves as they come.
UPLOAD_FORMATS: tuple[str, ...] = ("png", "jpeg", "webp")

MIME_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "heic": "image/heic",
    "avif": "image/avif",
}

EXTENSIONS: dict[str, str] = {
    "png": ".png",
    "jpeg": ".jpg",
    "webp": ".webp",
    "gif": ".gif",
    "bmp": ".bmp",
    "tiff": ".tiff",
    "heic": ".heic",
    "avif": ".avif",
}

# Every extension a saved image may carry; a name is "taken" when any of them exists.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def sniff(data: bytes) -> str | None:
    """The image format named by the first bytes (``png``, ``jpeg``, ``webp``, …) or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
            return "heic"
        if brand in (b"avif", b"avis"):
            return "avif"
    return None


def format_from_suffix(suffix: str) -> str | None:
    """The format an extension names (``.JPG`` -> ``jpeg``), None for anything else."""
    lowered = suffix.lower()
    if lowered in (".jpg", ".jpeg"):
        return "jpeg"
    if lowered in (".tif", ".tiff"):
        return "tiff"
    for name, ext in EXTENSIONS.items():
        if ext == lowered:
            return name
    return None


def describe(data: bytes) -> str:
    """What bytes that are not an image look like, for error messages: ``a PDF``, ``HTML``…"""
    if not data:
        return "it is empty"
    fmt = sniff(data)
    if fmt is not None:
        return f"it is a {fmt.upper()} image"
    head = data[:512].lstrip()
    lowered = head.lower()
    if data.startswith(b"%PDF"):
        kind = "a PDF"
    elif lowered.startswith((b"<!doctype html", b"<html")) or b"<body" in lowered:
        kind = "HTML"
    elif lowered.startswith(b"<?xml") or lowered.startswith(b"<"):
        kind = "XML or markup"
    elif head[:1] in (b"{", b"["):
        kind = "JSON"
    elif data.startswith(b"PK\x03\x04"):
        kind = "a ZIP archive"
    elif data.startswith(b"\x1f\x8b"):
        kind = "a gzip archive"
    elif _looks_like_text(data[:512]):
        kind = "text"
    else:
        kind = "unknown binary data"
    return f"it starts like {kind}"


def _looks_like_text(sample: bytes) -> bool:
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(byte >= 32 or byte in (9, 10, 13) for byte in sample)
