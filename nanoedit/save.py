"""Saving images: names that say where an image came from, exclusive and atomic writes.

An image is written to a temporary file beside its destination and then linked into place,
so no reader ever sees half an image and an existing file is never replaced unless the user
asked for it.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nanoedit.errors import ApiError, InputError, OverwriteError
from nanoedit.imageformat import EXTENSIONS, IMAGE_SUFFIXES, describe, format_from_suffix, sniff

MAX_NAME_TRIES = 10_000


@dataclass(frozen=True)
class DecodedImage:
    """Result bytes checked to be an image, with what Pillow read of them."""

    data: bytes
    format: str
    width: int
    height: int


@dataclass(frozen=True)
class SavedImage:
    """An image written to disk."""

    path: Path
    format: str
    width: int
    height: int
    size: int


def decode_result(data: bytes, where: str) -> DecodedImage:
    """Check that a result really is an image; the file type comes from the bytes, never a URL."""
    from PIL import Image, UnidentifiedImageError

    fmt = sniff(data)
    if fmt is None:
        raise ApiError(f"{where} is not an image ({describe(data)}); nothing was saved")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ApiError(
            f"{where} is a damaged {fmt.upper()} image ({exc}); nothing was saved"
        ) from None
    return DecodedImage(data=data, format=fmt, width=width, height=height)


def check_output_path(path: Path, overwrite: bool) -> None:
    """Refuse an ``-o`` target before any request is sent, so no paid image is wasted."""
    if path.is_dir():
        raise InputError(
            f"the output path {path} is a directory; give a file name, or use -d {path}"
        )
    if path.exists() and not overwrite:
        raise OverwriteError(
            f"{path} already exists; pass --overwrite to replace it, or choose another -o"
        )
    check_directory(path.parent if str(path.parent) else Path("."))


def check_directory(directory: Path) -> None:
    """The output folder must be a writable folder, or creatable."""
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError(f"the output folder {directory} is not a folder ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"the output folder {directory} is not writable; choose another with -d")


def next_free_path(
    directory: Path, stem: str, ext: str, *, exists: Callable[[Path], bool] = os.path.exists
) -> Path:
    """``stem.ext``, else ``stem-2.ext``, ``stem-3.ext``…: the first stem no image uses yet.

    A stem counts as taken when an image of any extension has it, so ``cat-edit.png`` and a
    later JPEG do not end up as ``cat-edit.png`` beside ``cat-edit.jpg``.
    """
    for number in range(1, MAX_NAME_TRIES):
        name = stem if number == 1 else f"{stem}-{number}"
        if not any(exists(directory / f"{name}{suffix}") for suffix in IMAGE_SUFFIXES):
            return directory / f"{name}{ext}"
    raise InputError(f"{directory} has {MAX_NAME_TRIES} images named {stem}; choose another -d")


def save_new(image: DecodedImage, directory: Path, stem: str) -> SavedImage:
    """Save under the next free name in ``directory``; never replaces anything."""
    directory.mkdir(parents=True, exist_ok=True)
    ext = EXTENSIONS[image.format]
    while True:
        path = next_free_path(directory, stem, ext)
        try:
            write_atomic(path, image.data, overwrite=False)
        except FileExistsError:
            continue  # another process took the name between the check and the link
        return SavedImage(path, image.format, image.width, image.height, len(image.data))


def save_as(image: DecodedImage, path: Path, overwrite: bool) -> tuple[SavedImage, str | None]:
    """Save to the path the user gave with ``-o``; returns the image and a note for the user.

    The bytes decide the format: when the path's extension names another format the image is
    converted to it (and the note says so); a path with no image extension gets the real one.
    """
    note = None
    data, fmt = image.data, image.format
    wanted = format_from_suffix(path.suffix)
    if wanted is None:
        path = path.with_name(path.name + EXTENSIONS[fmt])
    elif wanted != fmt:
        data = convert(image.data, wanted)
        note = f"the server sent {fmt.upper()}; converted to {wanted.upper()} for {path}"
        fmt = wanted
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(path, data, overwrite=overwrite)
    except FileExistsError:
        raise OverwriteError(
            f"{path} already exists; pass --overwrite to replace it, or choose another -o"
        ) from None
    return SavedImage(path, fmt, image.width, image.height, len(data)), note


def convert(data: bytes, fmt: str) -> bytes:
    """Re-encode an image in another format (losslessly where the format allows)."""
    from PIL import Image

    out = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        if fmt == "jpeg":
            image.convert("RGB").save(out, format="JPEG", quality=95)
        elif fmt == "webp":
            image.save(out, format="WEBP", lossless=True)
        else:
            image.save(out, format=fmt.upper())
    return out.getvalue()


def write_atomic(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write through a temporary file in the same folder, then link or rename it into place.

    Without ``overwrite`` the final step is a hard link, which fails with FileExistsError
    instead of replacing a file; the temporary file is removed in every case.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    # Created like any new file (mode 0666 less the umask), not 0600 as mkstemp would.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            _link_exclusive(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _link_exclusive(temp: Path, path: Path) -> None:
    try:
        os.link(temp, path)
    except FileExistsError:
        raise
    except OSError:
        # Some file systems have no hard links: reserve the name exclusively, then rename.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(temp, path)
