"""Saving images: names that say where an image came from, exclusive and atomic writes.

An image is streamed into a temporary file beside its destination, checked, given its
provenance, and then linked into place, so no reader ever sees half an image, memory does not
grow with its size, and an existing file is never replaced unless the user asked for it.
Standard output (``-o -``), a FIFO or a character device (``/dev/null``) is not a file to
replace: the checked image is copied into it as it is. :class:`ResultWriter` does all of that
for a run's results.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from nanoedit.errors import ApiError, InputError, OutputError, OverwriteError
from nanoedit.jobs import Job, SavedImage
from nanoedit.output.imageformat import (
    EXTENSIONS,
    IMAGE_SUFFIXES,
    describe,
    format_from_suffix,
    jpeg_header,
    png_header,
    sniff,
)

if TYPE_CHECKING:
    import httpx

    from nanoedit.backends.base import ResultImage
    from nanoedit.jobs import Progress
    from nanoedit.net.http import JobHttp
    from nanoedit.output.provenance import Provenance

MAX_NAME_TRIES = 10_000
# Result images larger than this are refused rather than written to disk.
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
# What to do when a result download is refused (401, 403, 410): its link is signed and
# short-lived.
RESULT_DENIED = "the link has expired; results must be fetched at once"
# How a refused result's message ends.
NOT_SAVED = "nothing was saved"
# `-o -`: the image's bytes go to standard output. /dev/stdout names that same place, so this
# one value never stands for a file the user meant instead (a file named "-" is `-o ./-`).
STDOUT = Path("/dev/stdout")
# Errors of a full or limited disk: said as such, with what to do.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def write_error(exc: OSError, where: Path, what: str) -> OutputError:
    """A failed write, said in terms of the folder or file and what to do."""
    if exc.errno in DISK_FULL:
        return OutputError(
            f"{what} could not be written to {where}: {exc.strerror or 'the disk is full'}; "
            "free some space (or choose another -d) and run again"
        )
    reason = exc.strerror or type(exc).__name__
    return OutputError(f"{what} could not be written to {where} ({reason}); check the folder")


class PartFiles:
    """The part files of one run not yet placed or discarded, so that an interrupted run can
    remove those whose job thread is still blocked on the network when the process exits."""

    def __init__(self) -> None:
        self._paths: set[Path] = set()
        self._lock = threading.Lock()

    def add(self, path: Path) -> None:
        """A part file was made."""
        with self._lock:
            self._paths.add(path)

    def remove(self, path: Path) -> None:
        """A part file was placed or discarded."""
        with self._lock:
            self._paths.discard(path)

    def discard_all(self) -> None:
        """Remove every part file still in use (after Ctrl-C)."""
        with self._lock:
            paths = list(self._paths)
            self._paths.clear()
        for path in paths:
            path.unlink(missing_ok=True)


# A part file's name says which process owns it: a later run removes those of dead processes.
PART_PREFIX, PART_SUFFIX = ".nanoedit-", ".part"
# A part file of an older version has no owner in its name: gone after this long untouched.
UNOWNED_PART_AGE = 24 * 3600.0


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` is running (another user's counts: it is not ours to judge)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # PermissionError among them: alive, under another user
    return True


def remove_stale_parts(folder: Path, now: float, keep: Collection[str] = ()) -> int:
    """Remove the part files a crashed or killed run left in ``folder``: those whose owning
    process is gone (and unowned ones, of older versions, not touched for a day), but none
    whose path is in ``keep``. Returns how many were removed; a folder that cannot be listed
    is left alone."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX)):
            continue
        if entry.path in keep:
            continue
        owner, dash, _ = name[len(PART_PREFIX) : -len(PART_SUFFIX)].partition("-")
        try:
            if dash and owner.isdigit():
                if int(owner) == os.getpid() or process_alive(int(owner)):
                    continue
            elif now - entry.stat(follow_symlinks=False).st_mtime < UNOWNED_PART_AGE:
                continue
            os.unlink(entry.path)
            removed += 1
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    return removed


def _same_device(one: Path, other: Path) -> bool:
    """Whether a file in ``one`` can be linked into ``other`` (both on one file system)."""
    try:
        return os.stat(one).st_dev == os.stat(other).st_dev
    except OSError:
        return False


def tidy_folders(jobs: Iterable[Job], out_dir: Path, now: float) -> None:
    """Before a run writes anything: remove what killed runs left in its output folders."""
    folders = {out_dir}
    folders.update(
        _folder_of(job.output)
        for job in jobs
        if job.output is not None and not is_stream(job.output)
    )
    for folder in folders:
        remove_stale_parts(folder, now)


class PartFile:
    """A temporary ``.part`` file beside the destination; removed unless it is placed, and
    listed in the run's ``parts`` meanwhile, if given.

    Created like any new file (mode 0666 less the umask), not 0600 as mkstemp would; a file of
    the journal's spool is given ``mode`` 0600 (see :meth:`adopt`).
    """

    def __init__(
        self, directory: Path, what: str, parts: PartFiles | None = None, *, mode: int = 0o666
    ) -> None:
        self.directory = directory
        self.what = what
        self.parts = parts
        self.path = directory / f"{PART_PREFIX}{os.getpid()}-{os.urandom(6).hex()}{PART_SUFFIX}"
        self.size = 0
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except OSError as exc:
            raise write_error(exc, directory, what) from None
        self.handle: BinaryIO | None = os.fdopen(fd, "wb")
        if parts is not None:
            parts.add(self.path)

    @classmethod
    def adopt(cls, path: Path, what: str, parts: PartFiles | None = None) -> PartFile:
        """A closed part file made earlier (an image streamed out of an answer), taken over
        as it is: placing or discarding it removes its temporary name, as for any other.

        One kept in the journal's spool is its owner's only (0600): placed as it is, it is
        the user's image, so it is given the mode any new file gets."""
        part = cls.__new__(cls)
        part.directory, part.what, part.parts, part.path = path.parent, what, parts, path
        part.handle = None
        try:
            part.size = path.stat().st_size
            os.chmod(path, new_file_mode())
        except OSError as exc:
            raise write_error(exc, path.parent, what) from None
        if parts is not None:
            parts.add(path)
        return part

    def write(self, chunk: bytes) -> None:
        """Append bytes."""
        assert self.handle is not None, "a part file taken over is not written to"
        try:
            self.handle.write(chunk)
        except OSError as exc:
            raise write_error(exc, self.directory, self.what) from None
        self.size += len(chunk)

    def close(self, *, sync: bool = True) -> Path:
        """Flush the bytes (to the disk itself with ``sync``) and close; the file stays until
        placed or discarded. Skip ``sync`` only for a file that is copied before placing."""
        handle = self.handle
        if handle is not None and not handle.closed:
            try:
                handle.flush()
                if sync:
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise write_error(exc, self.directory, self.what) from None
            finally:
                handle.close()
        return self.path

    def discard(self) -> None:
        """Remove the temporary file, whatever state it is in."""
        if self.handle is not None and not self.handle.closed:
            self.handle.close()
        self.path.unlink(missing_ok=True)
        if self.parts is not None:
            self.parts.remove(self.path)

    def __enter__(self) -> PartFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Placing links the file under its real name: the temporary name always goes.
        self.discard()


_umask: list[int] = []


def new_file_mode() -> int:
    """The mode a new file gets here: 0666 less the umask (read once; setting it to read it
    back is safe, as a file made meanwhile gets the stricter 077)."""
    if not _umask:
        mask = os.umask(0o077)
        os.umask(mask)
        _umask.append(mask)
    return 0o666 & ~_umask[0]


def write_part(
    directory: Path,
    chunks: Iterable[bytes],
    what: str,
    *,
    sync: bool = True,
    parts: PartFiles | None = None,
) -> PartFile:
    """A closed part file holding ``chunks`` (the caller discards it)."""
    part = PartFile(directory, what, parts)
    try:
        for chunk in chunks:
            part.write(chunk)
        part.close(sync=sync)
    except BaseException:
        part.discard()
        raise
    return part


def sync_file(path: Path, directory: Path, what: str) -> None:
    """Make a written file's bytes durable before it is linked into place."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise write_error(exc, directory, what) from None


def inspect_image(path: Path, where: str) -> SavedImage:
    """Check that a file really is a whole image, without decoding it at full size, and
    return what it is.

    The type comes from the bytes, never from a URL. PNG chunks are checked against their
    CRCs to the end, and JPEG's segments to its scan and its end marker, without an image
    library; anything else is decoded by Pillow (a WebP whole).
    """
    from nanoedit.net.inputs import MAX_RESULT_PIXELS, check_pixels

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

    from nanoedit.net.inputs import open_image

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
    folder = _folder_of(path)
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
            _link_exclusive(part.path, path)
        except FileExistsError:
            continue  # another process took the name between the check and the link
        except OSError as exc:
            raise write_error(exc, directory, f"the image {path.name}") from None
        return replace(part, path=path)


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


def place_as(part: SavedImage, path: Path, overwrite: bool) -> SavedImage:
    """Put a checked part file at exactly the path given with ``-o`` (converted first, if its
    extension asks for it: :func:`convert_for`). The name is never changed."""
    try:
        if overwrite:
            os.replace(part.path, path)
        else:
            _link_exclusive(part.path, path)
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


def read_chunks(path: Path, size: int = 64 * 1024) -> Iterator[bytes]:
    """A file's bytes, a piece at a time."""
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


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


def write_atomic(
    path: Path, data: bytes, *, overwrite: bool, parts: PartFiles | None = None
) -> None:
    """Write bytes through a temporary file in the same folder, then link or rename it into
    place; without ``overwrite`` an existing file raises FileExistsError."""
    with write_part(_folder_of(path), [data], path.name, parts=parts) as part:
        if overwrite:
            os.replace(part.path, path)
        else:
            _link_exclusive(part.path, path)


def _link_exclusive(temp: Path, path: Path) -> None:
    try:
        os.link(temp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
            raise
        # Some file systems have no hard links: reserve the name exclusively, then rename.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(temp, path)


def _folder_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


class ResultWriter:
    """Writes the images of one run: each is streamed or written into a part file beside its
    destination, checked, given its provenance, put in place, and given its sidecar.

    Every part file is listed in ``parts`` until it is placed or discarded. ``warn`` hears
    what the user should know (an image saved without metadata, a format converted).
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        overwrite: bool,
        metadata: bool,
        sidecar: bool,
        stdout: BinaryIO | None,
        warn: Callable[[str], None],
        parts: PartFiles,
        links_outlive_run: bool = True,
    ) -> None:
        self.out_dir = out_dir
        self.overwrite = overwrite
        self.metadata = metadata
        self.sidecar = sidecar
        # Where `-o -` sends an image's bytes (the process's stdout unless given).
        self.stdout = stdout
        self.warn = warn
        self.parts = parts
        self.taken = taken_names(sidecar=sidecar)
        # False for the in-process sandbox: its result links end with the process, so a
        # failed save does not point at one.
        self.links_outlive_run = links_outlive_run

    def save(
        self,
        job: Job,
        names: tuple[str, ...],
        provenance: Provenance | None,
        result: ResultImage,
        number: int,
        total: int,
        http: JobHttp,
        progress: Progress,
        placing: Callable[[Path], None] | None = None,
    ) -> SavedImage:
        """Write result ``number`` of ``total`` (downloaded when it is a URL, taken over when it
        was streamed to a part file already), check it, add the provenance, and put it at the
        job's ``-o`` or under its reserved name from ``names``. ``placing`` is given the
        finished part file just before it is put in place (not for a stream)."""
        where = f"result {number} of {job.label}" if total > 1 else f"the result of {job.label}"
        stream = job.output is not None and is_stream(job.output)
        folder = self.staging_folder(job)
        try:
            if result.url is not None:
                part = self.download(result.url, folder, where, http, progress)
            elif result.file is not None and not _same_device(result.file.parent, folder):
                # Kept in the journal's spool on another file system: copied, and the spool
                # file stays until the journal says the image is saved.
                progress("saving")
                chunks = read_chunks(result.file)
                part = write_part(folder, chunks, where, sync=not self.metadata, parts=self.parts)
            elif result.file is not None:
                # Streamed out of the answer already: only made durable here, unless the copy
                # that metadata makes is the one to be synced.
                part = PartFile.adopt(result.file, where, self.parts)
                if not self.metadata:
                    sync_file(part.path, part.directory, where)
            else:
                assert result.data is not None
                progress("saving")
                part = write_part(
                    folder, [result.data], where, sync=not self.metadata, parts=self.parts
                )
            try:
                checked = inspect_image(part.path, where)
                if job.output is not None and not stream:
                    # Converted before the provenance goes in: converting would drop it.
                    part, checked, note = convert_for(part, checked, job.output, self.parts)
                    if note:
                        self.warn(note)
                part = self._with_provenance(part, checked, provenance, folder, where, job.output)
                checked = replace(checked, path=part.path, size=part.size)
                if job.output is not None and stream:
                    out = self.stdout or sys.stdout.buffer
                    return place_stream(checked, job.output, out, where)
                if placing is not None:
                    placing(part.path)
                if job.output is not None:
                    return place_as(checked, job.output, self.overwrite)
                stem = names[number - 1] if number <= len(names) else job.stem
                others = frozenset(names) - {stem}
                return place_new(checked, folder, stem, avoid=others, exists=self.taken)
            finally:
                part.discard()
        except InputError as exc:
            if result.url is not None and self.links_outlive_run:
                # The image was paid for: say where it still is, while the link lasts.
                exc.message += f"; the image is still at {result.url} for a while"
            raise

    def staging_folder(self, job: Job) -> Path:
        """Where the part files of ``job``'s results are made: beside their destination, so
        that placing one is a link, not a copy."""
        if job.output is None:
            return self.out_dir
        if is_stream(job.output):
            # A device or stdout has no folder to stage in; the temporary file goes elsewhere.
            import tempfile  # only here: it and its random module cost about 1 ms a start

            return Path(tempfile.gettempdir())
        return _folder_of(job.output)

    def spool(self, job: Job) -> PartFile:
        """A new part file, open for writing, for one image of ``job`` that a backend streams
        out of an answer (base64 in JSON); listed in the run's part files until saved.

        The one place such files are made: :meth:`save` takes the file over and moves it
        into place."""
        return PartFile(self.staging_folder(job), f"an image of {job.label}", self.parts)

    def download(
        self, url: str, folder: Path, where: str, http: JobHttp, progress: Progress
    ) -> PartFile:
        """Stream a result into a part file in ``folder``: no credentials, redirects followed,
        within the size cap; a broken transfer is fetched again."""
        from nanoedit.net.http import check_download, too_large
        from nanoedit.urls import host_of

        host = host_of(url)

        def receive(response: httpx.Response) -> PartFile:
            length = check_download(
                response, where, host, MAX_DOWNLOAD_BYTES, ApiError, RESULT_DENIED
            )
            part = PartFile(folder, where, self.parts)
            try:
                progress("downloading", 0, length)
                for chunk in response.iter_bytes(64 * 1024):
                    part.write(chunk)
                    if part.size > MAX_DOWNLOAD_BYTES:
                        raise too_large(where, host, MAX_DOWNLOAD_BYTES, ApiError)
                    progress("downloading", part.size, length)
                # With metadata the bytes are copied once more: that copy is the one synced.
                part.close(sync=not self.metadata)
            except BaseException:
                part.discard()
                raise
            return part

        request = http.client.build_request("GET", url)
        return http.stream(
            request, receive, where=host, what=f"downloading {where}", paid=False,
            follow_redirects=True, unknown_host="it is the result link's host; try again later",
        )  # fmt: skip

    def _with_provenance(
        self,
        part: PartFile,
        checked: SavedImage,
        provenance: Provenance | None,
        folder: Path,
        where: str,
        output: Path | None = None,
    ) -> PartFile:
        """The image with its provenance in it, as a new part file (``part`` is discarded);
        ``part`` itself, and a warning, when it cannot take it. ``output`` is the ``-o``
        name, if the job has one."""
        if not self.metadata or provenance is None:
            return part
        from nanoedit.output.provenance import can_embed, embed, sidecar_path

        if output is not None and not can_embed(checked.format):
            # A format chosen with -o: the way out is another name, or the sidecar.
            keep = (
                f"its sidecar {sidecar_path(output)} keeps it"
                if self.sidecar
                else "name the output .png, .jpg or .webp, or add --sidecar to keep it beside "
                "the image"
            )
            self.warn(
                f"{output} holds no provenance: {checked.format.upper()} has no place for it; "
                f"{keep}"
            )
            return part

        tagged = PartFile(folder, where, self.parts)
        tagged.close()
        try:
            embed(part.path, tagged.path, checked.format, provenance)
        except ValueError as exc:
            tagged.discard()
            self.warn(f"{where}: saved without metadata ({exc})")
            return part
        except OSError as exc:
            tagged.discard()
            raise write_error(exc, folder, where) from None
        except BaseException:
            tagged.discard()
            raise
        part.discard()
        sync_file(tagged.path, folder, where)
        tagged.size = tagged.path.stat().st_size
        return tagged

    def write_sidecar(self, provenance: Provenance, saved: SavedImage, *, overwrite: bool) -> None:
        """Write ``IMAGE.json``; only ``-o`` with --overwrite may replace one (checked before
        sending); a generated name was chosen with its sidecar's name free."""
        from nanoedit.output.provenance import sidecar_bytes, sidecar_path

        path = sidecar_path(saved.path)
        data = sidecar_bytes(provenance, saved.path, saved.width, saved.height, saved.format)
        try:
            write_atomic(path, data, overwrite=overwrite and self.overwrite, parts=self.parts)
        except FileExistsError:
            raise OverwriteError(
                f"{path} appeared while {saved.path} was being made, so the image was saved "
                "without its sidecar; move that file away and run again"
            ) from None
        except OSError as exc:
            raise write_error(exc, path.parent, f"the sidecar {path.name}") from None


def _quoted(path: Path) -> str:
    """A path as a shell reads it, for a command an error message suggests."""
    import shlex  # only an error message needs it

    return shlex.quote(str(path))
