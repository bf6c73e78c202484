"""Saving: next free names, exclusive atomic writes, and -o handling."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from nanoedit.errors import ApiError, InputError, OverwriteError
from nanoedit.save import (
    check_output_path,
    decode_result,
    next_free_path,
    save_as,
    save_new,
    write_atomic,
)


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


def test_save_new_never_replaces_and_leaves_no_temporary_file(isolated: Path) -> None:
    first = decode_result(png_bytes(4, 3), "result")
    second = decode_result(png_bytes(5, 2, "JPEG"), "result")
    saved = [save_new(first, isolated, "cat-edit"), save_new(second, isolated, "cat-edit")]
    assert [(s.path.name, s.format, s.width, s.height) for s in saved] == [
        ("cat-edit.png", "png", 4, 3),
        ("cat-edit-2.jpg", "jpeg", 5, 2),
    ]
    assert sorted(p.name for p in isolated.iterdir()) == ["cat-edit-2.jpg", "cat-edit.png"]
    assert (isolated / "cat-edit.png").read_bytes() == first.data


def test_write_atomic_refuses_an_existing_file_and_cleans_up(isolated: Path) -> None:
    target = isolated / "keep.png"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        write_atomic(target, b"new", overwrite=False)
    assert target.read_bytes() == b"precious"
    write_atomic(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"
    assert os.listdir(isolated) == ["keep.png"]


def test_save_as_converts_to_the_format_the_path_names(isolated: Path) -> None:
    jpeg = decode_result(png_bytes(6, 4, "JPEG"), "result")
    saved, note = save_as(jpeg, isolated / "out.png", overwrite=False)
    assert (saved.path, saved.format, note) == (
        isolated / "out.png", "png", f"the server sent JPEG; converted to PNG for {isolated / 'out.png'}"
    )  # fmt: skip
    with Image.open(saved.path) as image:
        assert (image.format, image.size) == ("PNG", (6, 4))
    plain, note = save_as(jpeg, isolated / "result", overwrite=False)
    assert (plain.path.name, note) == ("result.jpg", None)
    with pytest.raises(OverwriteError, match=r"out.png already exists; pass --overwrite"):
        save_as(jpeg, isolated / "out.png", overwrite=False)


def test_output_path_checks(isolated: Path) -> None:
    (isolated / "taken.png").write_bytes(b"x")
    with pytest.raises(OverwriteError, match=r"taken\.png already exists; pass --overwrite"):
        check_output_path(isolated / "taken.png", overwrite=False)
    check_output_path(isolated / "taken.png", overwrite=True)
    with pytest.raises(InputError, match="is a directory; give a file name, or use -d"):
        check_output_path(isolated, overwrite=False)


def test_decode_result_refuses_what_is_not_an_image() -> None:
    with pytest.raises(ApiError, match=r"^the result is not an image \(it starts like HTML\)"):
        decode_result(b"<!DOCTYPE html><html><body>expired</body></html>", "the result")
    with pytest.raises(ApiError, match=r"is a damaged PNG image"):
        decode_result(png_bytes()[:40], "the result")
