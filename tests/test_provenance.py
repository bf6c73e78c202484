"""Provenance: byte-level embedding in PNG, JPEG and WebP, read back by nanoedit and by Pillow.

The files are parsed here with small readers of their own, so a layout mistake in the module
cannot hide behind the same mistake in its reader.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tracemalloc
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from nanoedit.output.provenance import (
    CLIP_MARKER,
    JPEG_XMP_LIMIT,
    NAMESPACE,
    XMP_HEADER,
    InputRecord,
    Provenance,
    embed,
    read,
    sha256_file,
    sidecar_bytes,
    sidecar_path,
)

PROMPT = 'Give the cat a <hat> & "bow" — it\'s très chic 🍌🐈‍⬛\r\nsecond line'
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"


def provenance(prompt: str = PROMPT) -> Provenance:
    return Provenance(
        prompt=prompt,
        model="gemini-2.5-flash-image",
        backend="openai",
        ratio="16:9",
        size="2K",
        inputs=(
            InputRecord("cat.png", "a" * 64),
            InputRecord("https://example.com/hat.jpg?x=1&y=2", "b" * 64),
        ),
        version="9.8.7",
    )


# --- Test images, made with Pillow ----------------------------------------------------------


def exif() -> bytes:
    tags = Image.Exif()
    tags[0x0110] = "Pixel Test"  # Model
    return tags.tobytes()


def pattern(mode: str) -> Image.Image:
    """A small image whose pixels all differ, so a changed pixel cannot go unnoticed."""
    width, height = 23, 17
    count = width * height * len(mode)
    return Image.frombytes(
        mode, (width, height), bytes((i * 37 + i // 7) % 256 for i in range(count))
    )


def encode(mode: str, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    pattern(mode).save(out, format=fmt, **options)
    return out.getvalue()


def without_app0(data: bytes) -> bytes:
    """A JPEG with its leading JFIF APP0 segment taken out."""
    assert data[2:4] == b"\xff\xe0"
    return data[:2] + data[4 + struct.unpack(">H", data[4:6])[0] :]


CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "png-rgb": (lambda: encode("RGB", "PNG"), "png"),
    "png-rgba": (lambda: encode("RGBA", "PNG"), "png"),
    "jpeg-jfif": (lambda: encode("RGB", "JPEG", quality=90), "jpeg"),
    "jpeg-jfif-exif": (lambda: encode("RGB", "JPEG", exif=exif()), "jpeg"),
    "jpeg-exif-only": (lambda: without_app0(encode("RGB", "JPEG", exif=exif())), "jpeg"),
    "jpeg-cmyk-adobe": (lambda: encode("CMYK", "JPEG"), "jpeg"),
    "webp-lossy": (lambda: encode("RGB", "WEBP", quality=80), "webp"),
    "webp-lossless": (lambda: encode("RGB", "WEBP", lossless=True), "webp"),
    "webp-lossless-alpha": (lambda: encode("RGBA", "WEBP", lossless=True), "webp"),
    "webp-lossy-alpha": (lambda: encode("RGBA", "WEBP"), "webp"),
    "webp-vp8x-exif": (lambda: encode("RGB", "WEBP", exif=exif()), "webp"),
}


def embedded(tmp_path: Path, data: bytes, fmt: str, prov: Provenance) -> tuple[bytes, Provenance]:
    source, target = tmp_path / "source", tmp_path / "target"
    source.write_bytes(data)
    written = embed(source, target, fmt, prov)
    return target.read_bytes(), written


# --- Independent readers ----------------------------------------------------------------------


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, the whole chunk with length and CRC); every CRC checked."""
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        crc = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])[0]
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, data[offset : offset + 12 + length]))
        offset += 12 + length
    return chunks


def jpeg_segments(data: bytes) -> tuple[list[tuple[int, int, bytes]], int]:
    """(marker, offset, payload) of each segment before the first non-APP marker, and where
    that marker starts."""
    segments, offset = [], 2
    while 0xE0 <= data[offset + 1] <= 0xEF:
        length = struct.unpack(">H", data[offset + 2 : offset + 4])[0]
        segments.append((data[offset + 1], offset, data[offset + 4 : offset + 2 + length]))
        offset += 2 + length
    return segments, offset


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, offset = [], 12
    while offset < len(data):
        kind, length = (
            data[offset : offset + 4],
            struct.unpack("<I", data[offset + 4 : offset + 8])[0],
        )
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 8 + length + (length & 1)
    assert offset == len(data)
    return chunks


def xmp_fields(packet: bytes) -> tuple[str | None, str | None, dict[str, object]]:
    """CreatorTool, the x-default description and the provenance JSON of an XMP packet."""
    root = ElementTree.fromstring(packet)
    tool = root.find(".//{http://ns.adobe.com/xap/1.0/}CreatorTool")
    description = root.find(f".//{{http://purl.org/dc/elements/1.1/}}description/{RDF}Alt/{RDF}li")
    assert description is not None and description.get(
        "{http://www.w3.org/XML/1998/namespace}lang"
    ) == ("x-default")
    element = root.find(f".//{{{NAMESPACE}}}provenance")
    assert tool is not None and element is not None and element.text is not None
    return tool.text, description.text, json.loads(element.text)


# --- Every format -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_embed_round_trips_and_keeps_every_pixel(case: str, tmp_path: Path) -> None:
    make, fmt = CASES[case]
    source = make()
    prov = provenance()
    result, written = embedded(tmp_path, source, fmt, prov)

    assert written == prov
    assert read(tmp_path / "target") == prov.to_json()
    with Image.open(io.BytesIO(source)) as before, Image.open(io.BytesIO(result)) as after:
        after.load()
        assert (after.format, after.mode, after.size) == (before.format, before.mode, before.size)
        assert after.tobytes() == before.tobytes()
        if isinstance(after, PngImagePlugin.PngImageFile):
            assert after.info.get("xmp") is None
            assert dict(after.text) == {
                "nanoedit": json.dumps(prov.to_json(), ensure_ascii=False, separators=(",", ":")),
                "Description": PROMPT,
                "Software": "nanoedit 9.8.7",
            }
        else:
            assert xmp_fields(after.info["xmp"]) == ("nanoedit 9.8.7", PROMPT, prov.to_json())


@pytest.mark.parametrize("case", CASES)
def test_read_finds_nothing_in_an_image_without_provenance(case: str, tmp_path: Path) -> None:
    path = tmp_path / "plain"
    path.write_bytes(CASES[case][0]())
    assert read(path) is None


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_characters_no_xml_can_hold_still_round_trip_in_the_json(fmt: str, tmp_path: Path) -> None:
    # A NUL, a control character and a lone surrogate (a prompt read with surrogateescape).
    prov = provenance("bell\x07 nul\x00 lone\udcff end\ufffe")
    source = encode("RGB", {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt])
    result, _ = embedded(tmp_path, source, fmt, prov)

    assert read(tmp_path / "target") == prov.to_json()
    with Image.open(io.BytesIO(result)) as image:
        image.load()
        shown: str | None
        if isinstance(image, PngImagePlugin.PngImageFile):
            shown = image.text["Description"]
        else:
            shown = xmp_fields(image.info["xmp"])[1]
    assert shown == "bell\ufffd nul\ufffd lone\ufffd end\ufffd"


# --- PNG --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["png-rgb", "png-rgba"])
def test_png_chunks_go_after_ihdr_and_nothing_else_moves(case: str, tmp_path: Path) -> None:
    source = CASES[case][0]()
    prov = provenance()
    result, _ = embedded(tmp_path, source, "png", prov)

    before, after = png_chunks(source), png_chunks(result)
    assert [kind for kind, _ in after] == [b"IHDR", b"iTXt", b"iTXt", b"tEXt"] + [
        kind for kind, _ in before[1:]
    ]
    inserted = b"".join(chunk for _, chunk in after[1:4])
    assert result == source[:33] + inserted + source[33:]
    assert [c for k, c in after if k == b"IDAT"] == [c for k, c in before if k == b"IDAT"]
    compact = json.dumps(prov.to_json(), ensure_ascii=False, separators=(",", ":"))
    assert after[1][1][8:-4] == b"nanoedit\x00\x00\x00\x00\x00" + compact.encode()
    assert after[2][1][8:-4] == b"Description\x00\x00\x00\x00\x00" + PROMPT.encode()
    assert after[3][1][8:-4] == b"Software\x00nanoedit 9.8.7"


def test_png_of_tens_of_megabytes_is_copied_in_bounded_memory(tmp_path: Path) -> None:
    # Only the layout is read, so a valid chunk of zeros stands in for a 4K image's IDAT.
    source = tmp_path / "big.png"
    block, blocks = bytes(65536), 256
    with source.open("wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        ihdr = struct.pack(">IIBBBBB", 4096, 4096, 8, 2, 0, 0, 0)
        handle.write(struct.pack(">I", 13) + b"IHDR" + ihdr)
        handle.write(struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))
        handle.write(struct.pack(">I", len(block) * blocks) + b"IDAT")
        crc = zlib.crc32(b"IDAT")
        for _ in range(blocks):
            handle.write(block)
            crc = zlib.crc32(block, crc)
        handle.write(struct.pack(">I", crc))
        handle.write(struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))
    prov = provenance()
    small, _ = embedded(tmp_path, CASES["png-rgb"][0](), "png", prov)
    inserted = len(small) - len(CASES["png-rgb"][0]())
    target = tmp_path / "out.png"

    tracemalloc.start()
    try:
        embed(source, target, "png", prov)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 1024 * 1024
    assert target.stat().st_size == source.stat().st_size + inserted
    assert digest_from(target, 33 + inserted) == digest_from(source, 33)
    assert read(target) == prov.to_json()


def digest_from(path: Path, offset: int) -> str:
    with path.open("rb") as handle:
        handle.seek(offset)
        return hashlib.file_digest(handle, "sha256").hexdigest()


# --- JPEG -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "leading"),
    [
        ("jpeg-jfif", [(0xE0, b"JFIF\x00"), (0xE1, XMP_HEADER)]),
        ("jpeg-jfif-exif", [(0xE0, b"JFIF\x00"), (0xE1, b"Exif\x00"), (0xE1, XMP_HEADER)]),
        ("jpeg-exif-only", [(0xE1, b"Exif\x00"), (0xE1, XMP_HEADER)]),
        ("jpeg-cmyk-adobe", [(0xE1, XMP_HEADER), (0xEE, b"Adobe")]),
    ],
)
def test_jpeg_xmp_goes_behind_jfif_and_exif_and_nothing_else_moves(
    case: str, leading: list[tuple[int, bytes]], tmp_path: Path
) -> None:
    source = CASES[case][0]()
    result, _ = embedded(tmp_path, source, "jpeg", provenance())

    segments, first_other = jpeg_segments(result)
    assert [
        (marker, payload[: len(start)])
        for (marker, _, payload), (_, start) in zip(segments[: len(leading)], leading, strict=True)
    ] == leading
    xmp = [
        (offset, payload) for marker, offset, payload in segments if payload.startswith(XMP_HEADER)
    ]
    assert len(xmp) == 1
    offset, payload = xmp[0]
    assert result[:offset] + result[offset + 4 + len(payload) :] == source
    _, source_first_other = jpeg_segments(source)
    assert result[first_other:] == source[source_first_other:]


def test_jpeg_clips_a_prompt_too_long_for_one_segment(tmp_path: Path) -> None:
    prompt = "naïve 🍌 <b>&amp; " * 20_000
    prov = provenance(prompt)
    result, written = embedded(tmp_path, CASES["jpeg-jfif"][0](), "jpeg", prov)

    assert written == replace(prov, prompt=written.prompt)
    assert written.prompt.endswith(CLIP_MARKER)
    kept = written.prompt.removesuffix(CLIP_MARKER)
    assert len(kept) > 10_000 and prompt.startswith(kept)
    assert read(tmp_path / "target") == written.to_json()
    segments, _ = jpeg_segments(result)
    (packet,) = [p[len(XMP_HEADER) :] for _, _, p in segments if p.startswith(XMP_HEADER)]
    # The longest prompt that fits was kept: one more character (at most 2 x 5 bytes) would not.
    assert JPEG_XMP_LIMIT - 10 < len(packet) <= JPEG_XMP_LIMIT
    with Image.open(io.BytesIO(result)) as image:
        image.load()
        assert xmp_fields(image.info["xmp"])[1] == written.prompt


@pytest.mark.parametrize("case", ["png-rgb", "webp-lossy"])
def test_png_and_webp_keep_a_long_prompt_whole(case: str, tmp_path: Path) -> None:
    make, fmt = CASES[case]
    prov = provenance("naïve 🍌 <b>&amp; " * 20_000)
    _, written = embedded(tmp_path, make(), fmt, prov)
    assert written == prov
    assert read(tmp_path / "target") == prov.to_json()


# --- WebP -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "flags"),
    [
        ("webp-lossy", 0x04),
        ("webp-lossless", 0x04),
        ("webp-lossless-alpha", 0x14),
        ("webp-lossy-alpha", 0x14),
        ("webp-vp8x-exif", 0x0C),
    ],
)
def test_webp_gets_vp8x_flags_and_an_xmp_chunk_and_nothing_else_moves(
    case: str, flags: int, tmp_path: Path
) -> None:
    source = CASES[case][0]()
    result, _ = embedded(tmp_path, source, "webp", provenance())

    before, after = webp_chunks(source), webp_chunks(result)
    assert after[0][0] == b"VP8X" and after[-1][0] == b"XMP "
    assert after[1:-1] == [chunk for chunk in before if chunk[0] != b"VP8X"]
    vp8x = after[0][1]
    assert vp8x[0] == flags
    assert vp8x[1:4] == b"\x00\x00\x00"
    width = int.from_bytes(vp8x[4:7], "little") + 1
    height = int.from_bytes(vp8x[7:10], "little") + 1
    assert (width, height) == (23, 17)
    assert xmp_fields(after[-1][1])[2] == provenance().to_json()


# --- Refusals -----------------------------------------------------------------------------------


def test_a_file_that_is_no_image_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    source = tmp_path / "notes.png"
    source.write_bytes(b"just some notes\n")
    for fmt, word in [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WebP")]:
        with pytest.raises(
            ValueError, match=rf"notes.png is not a {word} image \(it starts like text\)"
        ):
            embed(source, tmp_path / "out", fmt, provenance())
        assert not (tmp_path / "out").exists()
    with pytest.raises(
        ValueError, match=r"is not a PNG, JPEG or WebP image \(it starts like text\)"
    ):
        read(source)


def test_another_format_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "cat.gif"
    source.write_bytes(encode("P", "GIF"))
    with pytest.raises(
        ValueError, match="cannot embed provenance in a GIF image; only PNG, JPEG and WebP take it"
    ):
        embed(source, tmp_path / "out", "gif", provenance())
    with pytest.raises(ValueError, match=r"is not a PNG, JPEG or WebP image \(it is a GIF image\)"):
        read(source)


def test_bytes_of_another_format_than_named_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "cat.png"
    source.write_bytes(CASES["jpeg-jfif"][0]())
    with pytest.raises(ValueError, match=r"cat.png is not a PNG image \(it is a JPEG image\)"):
        embed(source, tmp_path / "out", "png", provenance())


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("png-rgb", "truncated PNG image"),
        ("jpeg-jfif", "truncated JPEG image"),
        ("webp-lossy", "not a valid WebP image"),
    ],
)
def test_a_truncated_image_is_refused(case: str, message: str, tmp_path: Path) -> None:
    source = tmp_path / "cut"
    source.write_bytes(CASES[case][0]()[:60])
    with pytest.raises(ValueError, match=message):
        embed(source, tmp_path / "out", CASES[case][1], provenance())
    with pytest.raises(ValueError, match=message):
        read(source)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_an_image_that_already_has_xmp_is_refused(fmt: str, tmp_path: Path) -> None:
    source = tmp_path / "tagged"
    source.write_bytes(encode("RGB", fmt, xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'))
    with pytest.raises(
        ValueError, match="already has an XMP packet; nanoedit does not merge XMP packets"
    ):
        embed(source, tmp_path / "out", fmt.lower(), provenance())


def test_an_image_with_c2pa_credentials_is_refused(tmp_path: Path) -> None:
    data = CASES["png-rgb"][0]()
    cabx = struct.pack(">I", 4) + b"caBXjumb" + struct.pack(">I", zlib.crc32(b"caBXjumb"))
    source = tmp_path / "signed.png"
    source.write_bytes(data[:33] + cabx + data[33:])
    with pytest.raises(ValueError, match="has C2PA Content Credentials"):
        embed(source, tmp_path / "out", "png", provenance())


def test_embedding_in_place_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "cat.png"
    data = CASES["png-rgb"][0]()
    source.write_bytes(data)
    with pytest.raises(ValueError, match="in place"):
        embed(source, source, "png", provenance())
    assert source.read_bytes() == data


# --- JSON, digests, sidecars -------------------------------------------------------------------


def test_to_json_is_the_dataclass_in_order() -> None:
    assert provenance("a hat").to_json() == {
        "prompt": "a hat",
        "model": "gemini-2.5-flash-image",
        "backend": "openai",
        "ratio": "16:9",
        "size": "2K",
        "inputs": [
            {"name": "cat.png", "sha256": "a" * 64},
            {"name": "https://example.com/hat.jpg?x=1&y=2", "sha256": "b" * 64},
        ],
        "version": "9.8.7",
    }


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    data = bytes(range(256)) * 1000
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_sidecar_is_exact_json_beside_the_image() -> None:
    prov = Provenance(
        prompt="a hat 🎩",
        model="gemini-2.5-flash-image",
        backend="duomi",
        ratio="auto",
        size=None,
        inputs=(InputRecord("cat.png", "c" * 64),),
        version="9.8.7",
    )
    image = Path("out") / "cat-edit.jpg"
    assert sidecar_path(image) == Path("out") / "cat-edit.jpg.json"
    assert sidecar_bytes(prov, image, 1024, 768).decode("utf-8") == (
        "{\n"
        '  "image": "cat-edit.jpg",\n'
        '  "format": "jpeg",\n'
        '  "width": 1024,\n'
        '  "height": 768,\n'
        '  "provenance": {\n'
        '    "prompt": "a hat 🎩",\n'
        '    "model": "gemini-2.5-flash-image",\n'
        '    "backend": "duomi",\n'
        '    "ratio": "auto",\n'
        '    "size": null,\n'
        '    "inputs": [\n'
        "      {\n"
        '        "name": "cat.png",\n'
        f'        "sha256": "{"c" * 64}"\n'
        "      }\n"
        "    ],\n"
        '    "version": "9.8.7"\n'
        "  }\n"
        "}\n"
    )
