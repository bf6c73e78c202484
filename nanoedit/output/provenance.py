"""Provenance: what made an image, written inside the image file and beside it.

Result images are paid for, so the metadata is spliced in at the byte level and the image
data is copied exactly as the server sent it, never re-encoded. The copy streams from file to
file, so a 4K image costs a few kilobytes of memory, not its size.

What each format gets:

- PNG: after IHDR, an ``iTXt`` ``nanoedit`` chunk (the compact JSON), an ``iTXt``
  ``Description`` (the prompt) and a ``tEXt`` ``Software`` (``nanoedit X.Y.Z``).
- JPEG: an APP1 XMP segment after SOI, behind any APP0 (JFIF, JFXX) and an Exif APP1 that
  lead the file, so those stay where readers look for them.
- WebP: an ``XMP `` chunk at the end, with the XMP flag set in ``VP8X`` (created from the
  bitstream header when the file is a simple ``VP8 ``/``VP8L`` one) and the RIFF size fixed.

The XMP packet holds ``dc:description`` (the prompt), ``xmp:CreatorTool`` and the JSON in
``nanoedit:provenance`` (namespace :data:`NAMESPACE`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias

from nanoedit import __version__
from nanoedit.output.imageformat import describe, format_from_suffix, sniff

NAMESPACE = "https://nanoedit.dev/ns/1.0/"
PNG_KEYWORD = "nanoedit"
# Put at the end of a prompt cut short to fit a JPEG segment, in both places it appears.
CLIP_MARKER = "… [clipped by nanoedit]"

XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
# A JPEG segment's 16-bit length counts itself, so an APP1 payload holds at most 65533 bytes.
JPEG_XMP_LIMIT = 0xFFFF - 2 - len(XMP_HEADER)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IHDR_END = 8 + 8 + 13 + 4  # signature, then IHDR's length, type, 13 data bytes and CRC

WEBP_ALPHA_FLAG = 0x10
WEBP_XMP_FLAG = 0x04
RIFF_MAX = 0xFFFF_FFFF

COPY_BLOCK = 1 << 16

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_DC = "http://purl.org/dc/elements/1.1/"
_XMP = "http://ns.adobe.com/xap/1.0/"

# Characters XML 1.0 cannot carry at all, not even as character references (the complement
# of its Char production, listed this way because that compiles in a millisecond, not 15).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Lone surrogates (a prompt read with surrogateescape) cannot be encoded as UTF-8, and U+FFFE
# and U+FFFF are not XML; json.dumps leaves them raw, so they are written as JSON escapes.
_RAW_IN_JSON = re.compile(r"[\ud800-\udfff\ufffe\uffff]")

# What is written: source bytes as (start, end) with end None for "to the end", or new bytes.
_Piece: TypeAlias = "bytes | tuple[int, int | None]"


@dataclass(frozen=True)
class InputRecord:
    """One input as the user named it (a path or URL) and the SHA-256 of the bytes sent;
    ``url`` is where an uploader put a local file for an API that takes URLs only."""

    name: str
    sha256: str
    url: str | None = None

    def to_json(self) -> dict[str, str]:
        """The input as it is written: ``url`` only when the file was uploaded."""
        record = {"name": self.name, "sha256": self.sha256}
        return record | {"url": self.url} if self.url is not None else record


@dataclass(frozen=True)
class Provenance:
    """What made an image: the request that was paid for and the nanoedit that sent it."""

    prompt: str
    model: str
    backend: str
    ratio: str
    size: str | None
    inputs: tuple[InputRecord, ...]
    version: str = __version__
    # Made by the built-in sandbox: a placeholder, never a real result.
    sandbox: bool = False
    # A --continue turn: the journal's job and result number the thread went on from (the
    # model saw the thread, not only the first input).
    continues: tuple[int, int] | None = None
    # The service tier it was asked at (--tier): another tier is another request.
    tier: str = "standard"
    # The provider dials the request asked for (--seed, --format…), by name; empty: none.
    dials: dict[str, Any] = field(default_factory=dict)
    # The preset (--preset, or a --from line's) whose template the prompt was put into.
    preset: str | None = None
    # A masked edit (--mask, --region): the mask's SHA-256 or the region, the feather, and
    # how much the model changed outside the mask before compositing (the drift).
    mask: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The dict embedded in the image, and written under ``provenance`` in the sidecar;
        ``sandbox`` only on the sandbox's images, ``continues`` only on a thread's turns,
        ``tier`` only when it was not standard, ``preset`` only when one made the prompt."""
        record: dict[str, Any] = {
            "prompt": self.prompt,
            "model": self.model,
            "backend": self.backend,
            "ratio": self.ratio,
            "size": self.size,
            "inputs": [item.to_json() for item in self.inputs],
            "version": self.version,
        }
        if self.continues is not None:
            record["continues"] = {"job": self.continues[0], "result": self.continues[1]}
        if self.tier != "standard":
            record["tier"] = self.tier
        if self.dials:
            record["dials"] = dict(self.dials)
        if self.preset is not None:
            record["preset"] = self.preset
        if self.mask is not None:
            record["mask"] = self.mask
        return record | {"sandbox": True} if self.sandbox else record

    @property
    def software(self) -> str:
        """The name written as the creating software: ``nanoedit X.Y.Z``."""
        return f"nanoedit {self.version}"


def from_json(document: dict[str, Any]) -> Provenance:
    """A provenance as :meth:`Provenance.to_json` wrote it (the journal keeps it that way)."""
    return Provenance(
        prompt=document["prompt"],
        model=document["model"],
        backend=document["backend"],
        ratio=document["ratio"],
        size=document["size"],
        inputs=tuple(
            InputRecord(item["name"], item["sha256"], item.get("url"))
            for item in document["inputs"]
        ),
        version=document.get("version", __version__),
        sandbox=bool(document.get("sandbox", False)),
        continues=read_continues(document.get("continues")),
        tier=str(document.get("tier", "standard")),
        dials=dict(document.get("dials") or {}),
        preset=document.get("preset") if isinstance(document.get("preset"), str) else None,
        mask=document.get("mask") if isinstance(document.get("mask"), dict) else None,
    )


def read_continues(value: object) -> tuple[int, int] | None:
    """A provenance's ``continues`` as :class:`Provenance` holds it (None: none, or not one
    nanoedit wrote)."""
    if not isinstance(value, dict):
        return None
    job, result = value.get("job"), value.get("result")
    return (job, result) if isinstance(job, int) and isinstance(result, int) else None


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in blocks."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def can_embed(fmt: str) -> bool:
    """Whether :func:`embed` writes provenance into an image of format ``fmt``."""
    return fmt in ("png", "jpeg", "webp")


def embed(source: Path, target: Path, fmt: str, provenance: Provenance) -> Provenance:
    """Copy the image ``source`` to ``target`` with ``provenance`` inserted; returns what it holds.

    ``fmt`` is ``png``, ``jpeg`` or ``webp``. Every image byte is copied unchanged. Only JPEG
    has a size limit: a prompt too long for one 64 KB XMP segment is clipped, in the
    description and in the JSON alike, and ends with :data:`CLIP_MARKER`; the returned
    provenance says what the file holds (the sidecar keeps the whole prompt).

    Raises ValueError, before ``target`` is opened, for another format, a file that does not
    parse as ``fmt``, a JPEG or WebP that already has an XMP packet (nanoedit does not merge
    packets) and a file with C2PA Content Credentials (their signature covers the file's bytes,
    so inserting anything would break it). ``target`` is created or replaced: write to a
    temporary path and move it into place, as ``save.write_atomic`` does.
    """
    planners = {"png": _plan_png, "jpeg": _plan_jpeg, "webp": _plan_webp}
    planner = planners.get(fmt)
    if planner is None:
        raise ValueError(
            f"cannot embed provenance in a {fmt.upper()} image; only PNG, JPEG and WebP take it"
        )
    if target.exists() and target.samefile(source):
        raise ValueError(f"cannot embed provenance in {source} in place; give another target")
    with source.open("rb") as src:
        pieces, embedded = planner(src, str(source), provenance)
        with target.open("wb") as dst:
            for piece in pieces:
                if isinstance(piece, bytes):
                    dst.write(piece)
                else:
                    _copy_range(src, dst, *piece)
    return embedded


def read(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The provenance dict embedded in a PNG, JPEG or WebP file, or None if it has none.

    ``path`` is a ``str`` or a path object. Raises ValueError for any other file, or one
    that does not parse.
    """
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(512)
        fmt = sniff(head)
        if fmt == "png":
            return _read_png(handle, str(path))
        if fmt == "jpeg":
            return _read_jpeg(handle, str(path))
        if fmt == "webp":
            return _read_webp(handle, str(path))
    raise ValueError(f"{path} is not a PNG, JPEG or WebP image ({describe(head)})")


def sidecar_bytes(
    provenance: Provenance, image_path: Path, width: int, height: int, fmt: str | None = None
) -> bytes:
    """The UTF-8 JSON written beside an image: its name, format and size, and the provenance.

    ``fmt`` is the format of the bytes; without it, the one the name's extension gives (an
    ``-o`` name may have none, or one nanoedit cannot convert to).
    """
    document = {
        "image": image_path.name,
        "format": fmt or format_from_suffix(image_path.suffix),
        "width": width,
        "height": height,
        "provenance": provenance.to_json(),
    }
    return (_dumps(document, indent=2) + "\n").encode("utf-8")


def sidecar_path(image_path: Path) -> Path:
    """Where an image's sidecar goes: ``cat-edit.png`` -> ``cat-edit.png.json``."""
    return image_path.with_name(image_path.name + ".json")


# --- PNG ----------------------------------------------------------------------------------


def _plan_png(src: BinaryIO, name: str, provenance: Provenance) -> tuple[list[_Piece], Provenance]:
    for kind, _, _ in _png_chunks(src, name):
        if kind == b"caBX":
            raise _c2pa_error(name)
    chunks = (
        _png_chunk(b"iTXt", _itxt(PNG_KEYWORD, _dumps(provenance.to_json())))
        + _png_chunk(b"iTXt", _itxt("Description", _xml_safe(provenance.prompt)))
        + _png_chunk(b"tEXt", b"Software\x00" + provenance.software.encode("latin-1", "replace"))
    )
    return [(0, PNG_IHDR_END), chunks, (PNG_IHDR_END, None)], provenance


def _png_chunks(f: BinaryIO, name: str) -> Iterator[tuple[bytes, int, int]]:
    """(type, offset of the data, length) of every chunk up to IEND; checks the layout only."""
    f.seek(0)
    head = f.read(8)
    if head != PNG_SIGNATURE:
        raise ValueError(f"{name} is not a PNG image ({_what_it_is(f)})")
    size = f.seek(0, 2)
    offset = 8
    while True:
        f.seek(offset)
        header = f.read(8)
        if len(header) < 8:
            raise ValueError(f"{name} is a truncated PNG image (it ends before IEND)")
        length, kind = struct.unpack(">I4s", header)
        end = offset + 12 + length
        if end > size:
            raise ValueError(
                f"{name} is a truncated PNG image (its {_fourcc(kind)} chunk runs past the end)"
            )
        if offset == 8 and (kind != b"IHDR" or length != 13):
            raise ValueError(f"{name} is not a valid PNG image (it does not start with IHDR)")
        yield kind, offset + 8, length
        if kind == b"IEND":
            return
        offset = end


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _itxt(keyword: str, text: str) -> bytes:
    # Uncompressed, no language tag, no translated keyword: readable with any tool as is.
    return keyword.encode("latin-1") + b"\x00\x00\x00" + b"\x00\x00" + text.encode("utf-8")


def _read_png(f: BinaryIO, name: str) -> dict[str, Any] | None:
    keyword = PNG_KEYWORD.encode("latin-1") + b"\x00"
    for kind, offset, length in _png_chunks(f, name):
        if kind != b"iTXt" or length < len(keyword) + 4:
            continue
        f.seek(offset)
        if f.read(len(keyword)) != keyword:
            continue
        rest = f.read(length - len(keyword))
        parts = rest[2:].split(b"\x00", 2)  # language tag, translated keyword, text
        if len(parts) != 3:
            raise ValueError(f"{name} has a nanoedit iTXt chunk that is not valid")
        try:
            raw = zlib.decompress(parts[2]) if rest[0] == 1 else parts[2]
            return _load_json(raw.decode("utf-8"), name)
        except (zlib.error, UnicodeDecodeError) as exc:
            raise ValueError(
                f"{name} has a nanoedit iTXt chunk that is not valid ({exc})"
            ) from None
    return None


# --- JPEG ---------------------------------------------------------------------------------


def _plan_jpeg(src: BinaryIO, name: str, provenance: Provenance) -> tuple[list[_Piece], Provenance]:
    insert_at = 2
    leading = True
    for marker, offset, length in _jpeg_segments(src, name):
        src.seek(offset)
        start = src.read(min(length, 64))
        if marker == 0xE1 and start.startswith(XMP_HEADER):
            raise ValueError(
                f"{name} already has an XMP packet; nanoedit does not merge XMP packets"
            )
        if marker == 0xEB and start.startswith(b"JP") and b"c2pa" in start:
            raise _c2pa_error(name)
        # JFIF (and its JFXX extension) must come first and Exif right after, so the
        # XMP segment goes behind them.
        if leading and (marker == 0xE0 or (marker == 0xE1 and start.startswith(b"Exif\0"))):
            insert_at = offset + length
        else:
            leading = False
    embedded, packet = _fit_jpeg(provenance, name)
    segment = b"\xff\xe1" + struct.pack(">H", 2 + len(XMP_HEADER) + len(packet))
    return [(0, insert_at), segment + XMP_HEADER + packet, (insert_at, None)], embedded


def _jpeg_segments(f: BinaryIO, name: str) -> Iterator[tuple[int, int, int]]:
    """(marker, offset of the payload, payload length) of every segment up to the first SOS."""
    f.seek(0)
    head = f.read(2)
    if head != b"\xff\xd8":
        raise ValueError(f"{name} is not a JPEG image ({_what_it_is(f)})")
    size = f.seek(0, 2)
    offset = 2
    while True:
        f.seek(offset)
        if f.read(1) != b"\xff":
            raise ValueError(f"{name} is not a valid JPEG image (no marker at byte {offset})")
        marker = 0xFF
        while marker == 0xFF:  # fill bytes may pad a marker
            byte = f.read(1)
            if not byte:
                raise ValueError(f"{name} is a truncated JPEG image (it ends before the scan)")
            marker = byte[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            offset = f.tell()
            continue
        if marker in (0x00, 0xD8, 0xD9):
            raise ValueError(f"{name} is not a valid JPEG image (no image data before EOI)")
        length_bytes = f.read(2)
        if len(length_bytes) < 2 or struct.unpack(">H", length_bytes)[0] < 2:
            raise ValueError(f"{name} is a truncated JPEG image (a segment has no length)")
        payload = f.tell()
        length = struct.unpack(">H", length_bytes)[0] - 2
        if payload + length > size:
            raise ValueError(f"{name} is a truncated JPEG image (a segment runs past the end)")
        yield marker, payload, length
        if marker == 0xDA:
            return
        offset = payload + length


def _fit_jpeg(provenance: Provenance, name: str) -> tuple[Provenance, bytes]:
    """The provenance and XMP packet to embed, with the prompt clipped if it must be."""
    packet = _xmp_packet(provenance)
    if len(packet) <= JPEG_XMP_LIMIT:
        return provenance, packet
    # The packet grows with every character kept, so the longest prefix that fits is found
    # by bisection.
    fits: tuple[Provenance, bytes] | None = None
    low, high = 0, len(provenance.prompt) - 1
    while low <= high:
        middle = (low + high) // 2
        clipped = replace(provenance, prompt=provenance.prompt[:middle] + CLIP_MARKER)
        packet = _xmp_packet(clipped)
        if len(packet) <= JPEG_XMP_LIMIT:
            fits, low = (clipped, packet), middle + 1
        else:
            high = middle - 1
    if fits is None:
        raise ValueError(
            f"the provenance of {name} does not fit in a JPEG XMP segment even without its prompt"
        )
    return fits


def _read_jpeg(f: BinaryIO, name: str) -> dict[str, Any] | None:
    for marker, offset, length in _jpeg_segments(f, name):
        if marker != 0xE1 or length < len(XMP_HEADER):
            continue
        f.seek(offset)
        if f.read(len(XMP_HEADER)) == XMP_HEADER:
            found = _from_xmp(f.read(length - len(XMP_HEADER)), name)
            if found is not None:
                return found
    return None


# --- WebP ---------------------------------------------------------------------------------


def _plan_webp(src: BinaryIO, name: str, provenance: Provenance) -> tuple[list[_Piece], Provenance]:
    chunks = list(_webp_chunks(src, name))
    kinds = {kind for kind, _, _ in chunks}
    if b"XMP " in kinds:
        raise ValueError(f"{name} already has an XMP packet; nanoedit does not merge XMP packets")
    if b"C2PA" in kinds:
        raise _c2pa_error(name)
    packet = _xmp_packet(provenance)
    xmp = b"XMP " + struct.pack("<I", len(packet)) + packet + b"\x00" * (len(packet) & 1)
    riff_size = src.seek(0, 2) - 8 + len(xmp)
    first, offset, length = chunks[0]
    src.seek(offset)
    if first == b"VP8X":
        if length < 10:
            raise ValueError(f"{name} is not a valid WebP image (its VP8X chunk is too short)")
        payload = bytearray(src.read(length))
        payload[0] |= WEBP_XMP_FLAG
        vp8x = b"VP8X" + struct.pack("<I", length) + payload + b"\x00" * (length & 1)
        resume = offset + length + (length & 1)
    elif first in (b"VP8 ", b"VP8L"):
        width, height, alpha = _webp_canvas(first, src.read(min(length, 10)), name)
        flags = WEBP_XMP_FLAG | (WEBP_ALPHA_FLAG if alpha else 0)
        vp8x = (
            b"VP8X"
            + struct.pack("<IB3x", 10, flags)
            + (width - 1).to_bytes(3, "little")
            + (height - 1).to_bytes(3, "little")
        )
        riff_size += len(vp8x)
        resume = 12
    else:
        raise ValueError(
            f"{name} is not a valid WebP image (it starts with a {_fourcc(first)} chunk)"
        )
    if riff_size > RIFF_MAX:
        raise ValueError(f"{name} is too large to take an XMP chunk (over 4 GB)")
    head = b"RIFF" + struct.pack("<I", riff_size) + b"WEBP" + vp8x
    return [head, (resume, None), xmp], provenance


def _webp_chunks(f: BinaryIO, name: str) -> Iterator[tuple[bytes, int, int]]:
    """(FourCC, offset of the payload, payload length) of every chunk; checks the layout only."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        raise ValueError(f"{name} is not a WebP image ({_what_it_is(f)})")
    end = 8 + struct.unpack("<I", head[4:8])[0]
    size = f.seek(0, 2)
    if end != size:
        raise ValueError(
            f"{name} is not a valid WebP image (its RIFF header says {end} bytes, "
            f"the file has {size})"
        )
    if end == 12:
        raise ValueError(f"{name} is not a valid WebP image (it holds no chunk)")
    offset = 12
    while offset < end:
        f.seek(offset)
        header = f.read(8)
        if len(header) < 8:
            raise ValueError(f"{name} is a truncated WebP image (a chunk header is cut short)")
        kind, length = header[:4], struct.unpack("<I", header[4:])[0]
        following = offset + 8 + length + (length & 1)  # chunks are padded to even sizes
        if following > end:
            raise ValueError(
                f"{name} is a truncated WebP image (its {_fourcc(kind)} chunk runs past the end)"
            )
        yield kind, offset + 8, length
        offset = following


def _webp_canvas(kind: bytes, bitstream: bytes, name: str) -> tuple[int, int, bool]:
    """Width, height and whether alpha is used, from a VP8 or VP8L bitstream header."""
    if kind == b"VP8 ":
        # A key frame's 3-byte tag, the start code, then 14-bit width and height (2 bits scale).
        if len(bitstream) < 10 or bitstream[0] & 1 or bitstream[3:6] != b"\x9d\x01\x2a":
            raise ValueError(f"{name} is not a valid WebP image (bad VP8 frame header)")
        width, height = struct.unpack("<HH", bitstream[6:10])
        return width & 0x3FFF, height & 0x3FFF, False
    # VP8L: signature 0x2f, then width-1 and height-1 in 14 bits each, alpha_is_used, version.
    if len(bitstream) < 5 or bitstream[0] != 0x2F:
        raise ValueError(f"{name} is not a valid WebP image (bad VP8L header)")
    bits = struct.unpack("<I", bitstream[1:5])[0]
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)


def _read_webp(f: BinaryIO, name: str) -> dict[str, Any] | None:
    for kind, offset, length in _webp_chunks(f, name):
        if kind == b"XMP ":
            f.seek(offset)
            found = _from_xmp(f.read(length), name)
            if found is not None:
                return found
    return None


# --- Shared -------------------------------------------------------------------------------


def _xmp_packet(provenance: Provenance) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        f'<rdf:RDF xmlns:rdf="{_RDF}">'
        f'<rdf:Description rdf:about="" xmlns:dc="{_DC}" xmlns:xmp="{_XMP}"'
        f' xmlns:nanoedit="{NAMESPACE}">'
        f"<xmp:CreatorTool>{_xml_text(provenance.software)}</xmp:CreatorTool>"
        '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
        f"{_xml_text(provenance.prompt)}</rdf:li></rdf:Alt></dc:description>"
        f"<nanoedit:provenance>{_xml_text(_dumps(provenance.to_json()))}</nanoedit:provenance>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def _from_xmp(packet: bytes, name: str) -> dict[str, Any] | None:
    """The provenance in an XMP packet, as an element or (once rewritten by a tool) attribute."""
    if NAMESPACE.encode("ascii") not in packet:
        return None
    # A packet never needs a DTD; refusing one keeps entity expansion out of the parser.
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        raise ValueError(f"{name} has an XMP packet with a DTD; it was not read")
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.fromstring(packet)
    except ElementTree.ParseError as exc:
        raise ValueError(f"{name} has an XMP packet that is not well-formed ({exc})") from None
    tag = f"{{{NAMESPACE}}}provenance"
    for element in root.iter(tag):
        return _load_json(element.text or "", name)
    for element in root.iter(f"{{{_RDF}}}Description"):
        value = element.get(tag)
        if value is not None:
            return _load_json(value, name)
    return None


def _load_json(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} has nanoedit provenance that is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} has nanoedit provenance that is not a JSON object")
    return value


def _dumps(value: Any, indent: int | None = None) -> str:
    separators = (",", ": ") if indent is not None else (",", ":")
    text = json.dumps(value, ensure_ascii=False, indent=indent, separators=separators)
    return _RAW_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _xml_safe(text: str) -> str:
    """Text that PNG and XML can both hold: characters they cannot become U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def _xml_text(text: str) -> str:
    # A raw CR would be read back as LF, so it is written as a character reference.
    escaped = _xml_safe(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("\r", "&#13;")


def _what_it_is(f: BinaryIO) -> str:
    # describe() judges a file by up to 512 bytes; a header check reads too few of them.
    f.seek(0)
    return describe(f.read(512))


def _fourcc(kind: bytes) -> str:
    return repr(kind.decode("latin-1"))


def _c2pa_error(name: str) -> ValueError:
    return ValueError(
        f"{name} has C2PA Content Credentials, which any inserted metadata would invalidate"
    )


def _copy_range(src: BinaryIO, dst: BinaryIO, start: int, end: int | None) -> None:
    src.seek(start)
    if end is None:
        shutil.copyfileobj(src, dst)
        return
    remaining = end - start
    while remaining:
        block = src.read(min(remaining, COPY_BLOCK))
        if not block:
            raise ValueError("the image file changed while it was being copied")
        dst.write(block)
        remaining -= len(block)
