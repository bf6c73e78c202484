"""Part files: the temporary files an image is written into beside its destination, and the
atomic writes made of them. Below every other piece of saving, as the journal and the network
layer make part files too.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from nanoedit.errors import OutputError

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


def read_chunks(path: Path, size: int = 64 * 1024) -> Iterator[bytes]:
    """A file's bytes, a piece at a time."""
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def write_atomic(
    path: Path, data: bytes, *, overwrite: bool, parts: PartFiles | None = None
) -> None:
    """Write bytes through a temporary file in the same folder, then link or rename it into
    place; without ``overwrite`` an existing file raises FileExistsError."""
    with write_part(folder_of(path), [data], path.name, parts=parts) as part:
        if overwrite:
            os.replace(part.path, path)
        else:
            link_exclusive(part.path, path)


def link_exclusive(temp: Path, path: Path) -> None:
    """Put ``temp`` at ``path`` unless something is there already (FileExistsError)."""
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


def folder_of(path: Path) -> Path:
    """The folder a file is in (``.`` for a bare name)."""
    return path.parent if str(path.parent) else Path(".")
