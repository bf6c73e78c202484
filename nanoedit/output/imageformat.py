"""What a run of bytes is: image formats by their magic numbers, and a word for what is not."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunk data is checked in pieces of this size, so a large image is never held whole.
_PIECE = 1 << 20
# JPEG's start-of-frame markers, which hold the size (C4, C8 and CC are other segments).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class Header:
    """What a PNG's or JPEG's structure says, read without decoding a pixel."""

    width: int
    height: int
    # PNG's animation control chunk (acTL) names the frames; 1 for everything else.
    frames: int = 1
    # An EXIF block (PNG's eXIf chunk, JPEG's APP1 Exif segment): its orientation may matter.
    exif: bool = False


def png_header(f: BinaryIO) -> Header:
    """Walk a PNG's chunks from IHDR to IEND, each checked against its CRC as Pillow's
    ``verify`` does, and return its size: a truncated or damaged file raises ValueError.

    Checking a result this way reads it once, with no image library loaded: zlib's CRC is
    all it costs.
    """
    if f.read(8) != PNG_SIGNATURE:
        raise ValueError("it has no PNG signature")
    width = height = 0
    frames = 1
    exif = has_data = False
    first = True
    while True:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("truncated PNG file: it ends before IEND")
        length, kind = struct.unpack(">I4s", head)
        name = kind.decode("latin-1")
        if first and (kind != b"IHDR" or length != 13):
            raise ValueError("broken PNG file: it does not start with IHDR")
        first = False
        if length > 0x7FFFFFFF:
            raise ValueError(f"broken PNG file: its {name} chunk has an impossible length")
        crc = zlib.crc32(kind)
        kept = b""
        left = length
        while left:
            piece = f.read(min(left, _PIECE))
            if not piece:
                raise ValueError(f"truncated PNG file: its {name} chunk runs past the end")
            crc = zlib.crc32(piece, crc)
            left -= len(piece)
            if kind in (b"IHDR", b"acTL") and len(kept) < 8:
                kept += piece[:8]
        stored = f.read(4)
        if len(stored) < 4:
            raise ValueError(f"truncated PNG file: its {name} chunk runs past the end")
        if struct.unpack(">I", stored)[0] != crc:
            raise ValueError(f"broken PNG file: bad checksum in its {name} chunk")
        if kind == b"IHDR":
            width, height = struct.unpack(">II", kept[:8])
            if not width or not height:
                raise ValueError(f"broken PNG file: its size is {width}x{height}")
        elif kind == b"acTL" and len(kept) >= 4:
            frames = max(1, struct.unpack(">I", kept[:4])[0])
        elif kind == b"eXIf":
            exif = True
        elif kind == b"IDAT":
            has_data = True
        elif kind == b"IEND":
            break
    if not has_data:
        raise ValueError("broken PNG file: it has no image data (IDAT)")
    return Header(width, height, frames, exif)


def jpeg_header(f: BinaryIO, *, whole: bool) -> Header:
    """Read a JPEG's segments up to its scan and return its size; with ``whole``, also check
    that the file goes on to its end marker (EOI), as a truncated one does not. A broken
    layout raises ValueError. Nothing is decoded: the entropy-coded data is only searched."""
    if f.read(2) != b"\xff\xd8":
        raise ValueError("it has no JPEG start marker")
    size: tuple[int, int] | None = None
    exif = False
    while True:
        byte = f.read(1)
        if byte != b"\xff":
            raise ValueError("broken JPEG file: a segment does not start with a marker")
        marker = 0xFF
        while marker == 0xFF:  # fill bytes may pad a marker
            byte = f.read(1)
            if not byte:
                raise ValueError("truncated JPEG file: it ends before the scan")
            marker = byte[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        if marker in (0x00, 0xD8, 0xD9):
            raise ValueError("broken JPEG file: no image data before its end")
        raw = f.read(2)
        if len(raw) < 2 or struct.unpack(">H", raw)[0] < 2:
            raise ValueError("truncated JPEG file: a segment has no length")
        payload = f.read(struct.unpack(">H", raw)[0] - 2)
        if len(payload) < struct.unpack(">H", raw)[0] - 2:
            raise ValueError("truncated JPEG file: a segment runs past the end")
        if marker in _JPEG_FRAMES and len(payload) >= 5:
            height, width = struct.unpack(">HH", payload[1:5])
            size = (width, height)
        elif marker == 0xE1 and payload.startswith(b"Exif\x00"):
            exif = True
        elif marker == 0xDA:
            break
    if size is None or not size[0] or not size[1]:
        raise ValueError("broken JPEG file: no frame header gives its size before the scan")
    if whole and not _reaches_eoi(f):
        raise ValueError("truncated JPEG file: it ends before its end marker (EOI)")
    return Header(size[0], size[1], exif=exif)


def _reaches_eoi(f: BinaryIO) -> bool:
    """Whether an end marker follows in the (seekable) file, from where it stands to its end.

    0xFF is always escaped in scan data, so the marker cannot appear there by chance, and only
    the end is ever cut off a truncated file: a JPEG cut in its scan has no marker after it.
    Bytes some cameras write after the marker (an MPO's second image, a motion photo's video,
    a maker's trailer block) are allowed, as they must be: a trailer still there says the JPEG
    before it is whole. The search runs from the end back, piece by piece, because that is
    where the marker is in all but a damaged file: found in the last piece, a 60 MB photo
    costs one small search, not one over all its data (about 5 ms a MiB).
    """
    start = f.tell()
    end = f.seek(0, 2)
    following = b""  # the first byte of the piece after this one: the marker may straddle
    while end > start:
        size = min(_PIECE, end - start)
        end -= size
        f.seek(end)
        piece = f.read(size)
        if piece.rfind(b"\xff\xd9") >= 0 or (piece.endswith(b"\xff") and following == b"\xd9"):
            return True
        following = piece[:1]
    return False
