"""Where a result goes: the ``-o`` target and its checks, generated names that are free, and
putting a checked part file in place (linked beside its siblings, or copied into a stream).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from nanoedit.errors import InputError, OutputError, OverwriteError
from nanoedit.jobs import Job, SavedImage
from nanoedit.output.imageformat import EXTENSIONS, IMAGE_SUFFIXES
from nanoedit.output.parts import (
    folder_of,
    link_exclusive,
    read_chunks,
    remove_stale_parts,
    write_error,
)

# How many numbered names are tried for one stem before the folder is called full.
MAX_NAME_TRIES = 10_000
# `-o -`: the image's bytes go to standard output. /dev/stdout names that same place, so this
# one value never stands for a file the user meant instead (a file named "-" is `-o ./-`).
STDOUT = Path("/dev/stdout")


def tidy_folders(jobs: Iterable[Job], out_dir: Path, now: float) -> None:
    """Before a run writes anything: remove what killed runs left in its output folders."""
    folders = {out_dir}
    folders.update(
        folder_of(job.output)
        for job in jobs
        if job.output is not None and not is_stream(job.output)
    )
    for folder in folders:
        remove_stale_parts(folder, now)


def output_target(text: str) -> Path:
    """The path an ``-o`` value names: ``-`` is standard output, anything else a path."""
    return STDOUT if text == "-" else Path(text)


def shown(path: Path) -> str:
    """An output path as messages name it."""
    return "stdout" if path == STDOUT else str(path)


def is_stream(path: Path) -> bool:
    """Whether ``path`` is standard output, a FIFO or a character device: written to as it
    is, never replaced, linked onto or given an extension."""
    return stream_name(path) is not None


def stream_name(path: Path) -> str | None:
    """How a message names ``path`` when it is a stream (``stdout``, ``the FIFO PATH``, ``the
    device PATH``): an image written there leaves no file behind. None for anything else."""
    if path == STDOUT:
        return "stdout"
    try:
        mode = path.stat().st_mode  # through a symlink: a link to /dev/null is /dev/null
    except OSError:
        return None
    if stat.S_ISFIFO(mode):
        return f"the FIFO {path}"
    return f"the device {path}" if stat.S_ISCHR(mode) else None


def check_output_path(path: Path, overwrite: bool) -> None:
    """Refuse an ``-o`` target before any request is sent, so no paid image is wasted."""
    if is_stream(path):
        return  # nothing there is replaced: the image is written into it
    if path.is_dir():
        raise InputError(
            f"the output path {path} is a directory; give a file name, or use -d {path}"
        )
    if os.path.lexists(path):
        special = _special_kind(path)
        if special:
            raise InputError(
                f"{path} is a {special}; -o writes to a file, a FIFO or a character device, "
                "so choose another -o"
            )
        if not overwrite and not path.exists():
            # Linking the image there would fail, and following the link would make a file
            # somewhere the user did not name.
            raise OverwriteError(
                f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; "
                "pass --overwrite to replace the link itself, or choose another -o"
            )
        if not overwrite:
            raise OverwriteError(
                f"{path} already exists; pass --overwrite to replace it, or choose another -o"
            )
    folder = folder_of(path)
    if not folder.is_dir():
        if os.path.lexists(folder):
            raise InputError(f"the folder of {path} is not a folder ({folder} is a file)")
        # As curl and a shell redirection do: a mistyped folder is not silently made.
        raise InputError(
            f"the folder of {path} does not exist ({folder}); create it first "
            f"(mkdir -p {_quoted(folder)}), or choose another -o"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"the folder of {path} ({folder}) is not writable; choose another -o")


def _special_kind(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return None


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


def taken_names(
    *, sidecar: bool, exists: Callable[[Path], bool] = os.path.lexists
) -> Callable[[Path], bool]:
    """What counts as a generated name in use: anything there, a link that points nowhere
    too; with ``sidecar`` its sidecar as well, so a stale ``cat-edit.png.json`` is never
    replaced."""
    if not sidecar:
        return exists
    from nanoedit.output.provenance import sidecar_path

    return lambda path: exists(path) or exists(sidecar_path(path))


def stem_taken(
    directory: Path, stem: str, exists: Callable[[Path], bool] = os.path.lexists
) -> bool:
    """Whether an image of any extension already uses ``stem`` in ``directory``.

    A symbolic link counts even when it points nowhere: linking a file onto it would fail.
    """
    return any(exists(directory / f"{stem}{suffix}") for suffix in IMAGE_SUFFIXES)


def numbered(stem: str, number: int) -> str:
    """``stem`` for 1, ``stem-2`` for 2, …"""
    return stem if number == 1 else f"{stem}-{number}"


def next_free_path(
    directory: Path,
    stem: str,
    ext: str,
    *,
    exists: Callable[[Path], bool] = os.path.lexists,
    avoid: Collection[str] = (),
) -> Path:
    """``stem.ext``, else ``stem-2.ext``, ``stem-3.ext``…: the first stem no image uses yet.

    A stem counts as taken when an image of any extension has it, so ``cat-edit.png`` and a
    later JPEG do not end up as ``cat-edit.png`` beside ``cat-edit.jpg``; stems in ``avoid``
    are promised to other jobs of the run.
    """
    for number in range(1, MAX_NAME_TRIES):
        name = numbered(stem, number)
        if name not in avoid and not stem_taken(directory, name, exists):
            return directory / f"{name}{ext}"
    raise InputError(f"{directory} has {MAX_NAME_TRIES} images named {stem}; choose another -d")


def place_new(
    part: SavedImage,
    directory: Path,
    stem: str,
    avoid: Collection[str] = (),
    exists: Callable[[Path], bool] = os.path.lexists,
) -> SavedImage:
    """Link a checked part file into ``directory`` under ``stem`` or the next free name."""
    ext = EXTENSIONS[part.format]
    while True:
        path = next_free_path(directory, stem, ext, avoid=avoid, exists=exists)
        try:
            link_exclusive(part.path, path)
        except FileExistsError:
            continue  # another process took the name between the check and the link
        except OSError as exc:
            raise write_error(exc, directory, f"the image {path.name}") from None
        return replace(part, path=path)


def place_as(part: SavedImage, path: Path, overwrite: bool) -> SavedImage:
    """Put a checked part file at exactly the path given with ``-o`` (converted first, if its
    extension asks for it: :func:`convert_for`). The name is never changed."""
    try:
        if overwrite:
            os.replace(part.path, path)
        else:
            link_exclusive(part.path, path)
    except FileExistsError:
        raise OverwriteError(
            f"{path} already exists; pass --overwrite to replace it, or choose another -o"
        ) from None
    except OSError as exc:
        raise write_error(exc, path.parent, f"the image {path.name}") from None
    return replace(part, path=path)


def place_stream(part: SavedImage, path: Path, stdout: BinaryIO, what: str) -> SavedImage:
    """Copy a checked part file into standard output, a FIFO or a character device."""
    write_stream(path, read_chunks(part.path), stdout, what)
    return replace(part, path=path)


def write_stream(path: Path, chunks: Iterable[bytes], stdout: BinaryIO | None, what: str) -> None:
    """Write bytes into standard output (``STDOUT``), a FIFO or a character device, as it is.
    ``stdout`` is None when the process has none (then ``path`` is never ``STDOUT``).

    Nothing is created or replaced, so there is no temporary file and no link: a device
    cannot be linked onto, and a FIFO's reader must get the bytes themselves.
    """
    try:
        if path == STDOUT:
            assert stdout is not None, "no stdout to write to"
            for chunk in chunks:
                stdout.write(chunk)
            stdout.flush()
            return
        # No O_CREAT: if the FIFO or device went away since it was checked, no file takes
        # its place. A FIFO blocks here until a reader opens it, as with any writer.
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
        with os.fdopen(fd, "wb") as handle:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                raise OverwriteError(
                    f"{path} became a regular file after it was checked; nothing was written "
                    "to it; run again"
                )
            for chunk in chunks:
                handle.write(chunk)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        hint = "; the program reading it stopped first" if exc.errno == errno.EPIPE else ""
        where = shown(path)
        raise OutputError(f"{what} could not be written to {where} ({reason}){hint}") from None


def _quoted(path: Path) -> str:
    """A path as a shell reads it, for a command an error message suggests."""
    import shlex  # only an error message needs it

    return shlex.quote(str(path))
