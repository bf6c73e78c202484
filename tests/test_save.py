"""Saving: next free names, exclusive atomic writes, and -o handling."""

from __future__ import annotations

import errno
import io
import os
import socket
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from nanoedit.errors import ApiError, InputError, OutputError, OverwriteError
from nanoedit.jobs import SavedImage
from nanoedit.output.images import convert_for, inspect_image
from nanoedit.output.names import check_output_path, next_free_path, place_as, place_new
from nanoedit.output.parts import PartFile, PartFiles, write_atomic, write_part


def png_bytes(width: int = 4, height: int = 3, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("existing", "ext", "expected"),
    [
        ([], ".png", "cat-edit.png"),
        (["cat-edit.png"], ".png", "cat-edit-2.png"),
        (["cat-edit.png"], ".jpg", "cat-edit-2.jpg"),
        (["cat-edit.jpeg", "cat-edit-2.webp"], ".png", "cat-edit-3.png"),
        (["cat-edit-2.png"], ".png", "cat-edit.png"),
        (["cat-edit.txt"], ".png", "cat-edit.png"),
    ],
)
def test_next_free_path(existing: list[str], ext: str, expected: str) -> None:
    taken = {Path("out") / name for name in existing}
    assert next_free_path(Path("out"), "cat-edit", ext, exists=lambda p: p in taken) == (
        Path("out") / expected
    )


def test_place_new_never_replaces_and_leaves_no_temporary_file(isolated: Path) -> None:
    saved: list[SavedImage] = []
    for data in (png_bytes(4, 3), png_bytes(5, 2, "JPEG")):
        with write_part(isolated, [data], "the result") as part:
            facts = inspect_image(part.path, "the result")
            saved.append(place_new(facts, isolated, "cat-edit"))
    assert [(s.path.name, s.format, s.width, s.height) for s in saved] == [
        ("cat-edit.png", "png", 4, 3),
        ("cat-edit-2.jpg", "jpeg", 5, 2),
    ]
    assert sorted(p.name for p in isolated.iterdir()) == ["cat-edit-2.jpg", "cat-edit.png"]
    assert (isolated / "cat-edit.png").read_bytes() == png_bytes(4, 3)


def test_place_new_keeps_names_promised_to_other_jobs(isolated: Path) -> None:
    with write_part(isolated, [png_bytes()], "the result") as part:
        facts = inspect_image(part.path, "the result")
        saved = place_new(facts, isolated, "cat-edit", avoid={"cat-edit"})
    assert saved.path.name == "cat-edit-2.png"


def test_write_atomic_refuses_an_existing_file_and_cleans_up(isolated: Path) -> None:
    target = isolated / "keep.png"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        write_atomic(target, b"new", overwrite=False)
    assert target.read_bytes() == b"precious"
    write_atomic(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"
    assert os.listdir(isolated) == ["keep.png"]


def test_convert_for_gives_the_format_the_path_names_and_place_as_puts_it_there(
    isolated: Path,
) -> None:
    jpeg = png_bytes(6, 4, "JPEG")

    def received() -> tuple[PartFile, SavedImage]:
        part = write_part(isolated, [jpeg], "the result")
        return part, inspect_image(part.path, "the result")

    part, facts = received()
    converted, again, note = convert_for(part, facts, isolated / "out.png")
    assert (again.format, note) == (
        "png", f"the server sent JPEG; converted to PNG for {isolated / 'out.png'}"
    )  # fmt: skip
    assert not part.path.exists()  # the image as it came is discarded for the converted one
    with converted:
        saved = place_as(again, isolated / "out.png", overwrite=False)
    assert (saved.path, saved.format) == (isolated / "out.png", "png")
    with Image.open(saved.path) as image:
        assert (image.format, image.size) == ("PNG", (6, 4))
    # The name is kept as given: no extension is added, the bytes stay as they came.
    part, facts = received()
    with part:
        same, kept, note = convert_for(part, facts, isolated / "result")
        assert (same, kept, note) == (part, facts, None)
        plain = place_as(kept, isolated / "result", overwrite=False)
    assert (plain.path.name, plain.format) == ("result", "jpeg")
    assert plain.path.read_bytes() == jpeg
    part, facts = received()
    with part:
        same, kept, note = convert_for(part, facts, isolated / "out.heic")
        assert (same, kept, note) == (
            part, facts,
            "the server sent JPEG, and nanoedit cannot convert to HEIC; "
            f"{isolated / 'out.heic'} holds the JPEG image as it came",
        )  # fmt: skip
        heic = place_as(kept, isolated / "out.heic", overwrite=False)
        assert heic.path.read_bytes() == jpeg
        with pytest.raises(OverwriteError, match=r"out.png already exists; pass --overwrite"):
            place_as(kept, isolated / "out.png", overwrite=False)
    assert sorted(p.name for p in isolated.iterdir()) == ["out.heic", "out.png", "result"]


def test_each_run_removes_only_its_own_part_files(isolated: Path) -> None:
    mine, theirs = PartFiles(), PartFiles()
    held = PartFile(isolated, "the result", mine)
    other = PartFile(isolated, "the result", theirs)
    held.close()
    other.close()
    placed = write_part(isolated, [b"done"], "the result", parts=mine)
    placed.discard()
    mine.discard_all()
    assert (held.path.exists(), other.path.exists()) == (False, True)
    theirs.discard_all()
    assert list(isolated.iterdir()) == []


def test_output_path_checks(isolated: Path) -> None:
    (isolated / "taken.png").write_bytes(b"x")
    with pytest.raises(OverwriteError, match=r"taken\.png already exists; pass --overwrite"):
        check_output_path(isolated / "taken.png", overwrite=False)
    check_output_path(isolated / "taken.png", overwrite=True)
    with pytest.raises(InputError, match="is a directory; give a file name, or use -d"):
        check_output_path(isolated, overwrite=False)
    # A device or a FIFO is written into, not replaced: no --overwrite needed.
    check_output_path(Path("/dev/null"), overwrite=False)
    os.mkfifo(isolated / "pipe")
    check_output_path(isolated / "pipe", overwrite=False)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(isolated / "sock"))
        with pytest.raises(InputError, match=r"sock is a socket; -o writes to a file, a FIFO or"):
            check_output_path(isolated / "sock", overwrite=True)


def test_inspect_refuses_what_is_not_an_image(isolated: Path) -> None:
    for data, message in [
        (b"<!DOCTYPE html><html><body>expired</body></html>",
         r"^the result is not an image \(it starts like HTML\)"),
        (png_bytes()[:40], r"is a damaged PNG image"),
        (png_bytes(64, 64, "JPEG")[:-200], r"is a damaged JPEG image"),
    ]:  # fmt: skip
        with (
            write_part(isolated, [data], "the result") as part,
            pytest.raises(ApiError, match=message),
        ):
            inspect_image(part.path, "the result")
    assert list(isolated.iterdir()) == []


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _flipped(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1 :]


def _progressive_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(out, format="JPEG", progressive=True)
    return out.getvalue()


# A PNG whose header says 20000x20000 (400 MP): checked by its header, never decoded.
HUGE_PNG = (
    b"\x89PNG\r\n\x1a\n"
    + _chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
    + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    + _chunk(b"IEND", b"")
)


@pytest.mark.parametrize(
    ("data", "facts"),
    [
        # Bytes after the end marker (IEND, EOI) are the file's, not a reason to refuse it.
        (png_bytes(7, 5) + b"trailing", ("png", 7, 5)),
        (png_bytes(9, 8, "JPEG") + b"\x00\x00", ("jpeg", 9, 8)),
        (_progressive_jpeg(), ("jpeg", 40, 30)),
    ],
)
def test_inspect_reads_size_and_format_from_the_header(
    data: bytes, facts: tuple[str, int, int], isolated: Path
) -> None:
    with write_part(isolated, [data], "the result") as part:
        saved = inspect_image(part.path, "the result")
        assert (saved.format, saved.width, saved.height, saved.size) == (*facts, len(data))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # One byte of the image data flipped: its chunk's CRC no longer matches.
        (_flipped(png_bytes(), 8 + 25 + 8 + 2),
         "the result is a damaged PNG image (broken PNG file: bad checksum in its IDAT "
         "chunk); nothing was saved"),
        (png_bytes()[:-12],
         "the result is a damaged PNG image (truncated PNG file: it ends before IEND); "
         "nothing was saved"),
        (png_bytes(64, 64, "JPEG")[:-2],
         "the result is a damaged JPEG image (truncated JPEG file: it ends before its end "
         "marker (EOI)); nothing was saved"),
        (HUGE_PNG,
         "the result is 20000x20000 pixels (400 MP), over the limit of 100 MP; nothing was "
         "saved"),
    ],
)  # fmt: skip
def test_inspect_refuses_a_damaged_or_oversized_image_by_its_structure(
    data: bytes, message: str, isolated: Path
) -> None:
    with write_part(isolated, [data], "the result") as part:
        with pytest.raises(ApiError) as caught:
            inspect_image(part.path, "the result")
        assert caught.value.message == message
    assert list(isolated.iterdir()) == []


def test_a_full_disk_is_an_output_error_and_leaves_no_part_file(isolated: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"\x89PNG"
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_part(isolated, chunks(), "the result")
    assert list(isolated.iterdir()) == []
    part = PartFile(isolated, "the result")
    assert part.handle is not None
    part.handle.close()
    # The kernel's own full device: every write fails with ENOSPC.
    part.handle = open("/dev/full", "wb")  # noqa: SIM115
    with pytest.raises(OutputError) as caught:
        part.write(b"x" * 1024 * 1024)  # larger than the buffer: written at once
    part.discard()
    assert caught.value.message == (
        f"the result could not be written to {isolated}: No space left on device; "
        "free some space (or choose another -d) and run again"
    )
    assert list(isolated.iterdir()) == []
