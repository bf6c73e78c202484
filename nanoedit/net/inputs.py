"""Input images: local files, streams and downloaded URLs turned into bytes ready to upload."""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

from nanoedit.errors import InputError
from nanoedit.jobs import ImageSource
from nanoedit.output.imageformat import (
    EXTENSIONS,
    MIME_TYPES,
    UPLOAD_FORMATS,
    Header,
    describe,
    jpeg_header,
    png_header,
    sniff,
)
from nanoedit.output.images import check_pixels, open_image

if TYPE_CHECKING:
    import httpx
    from PIL import Image

    from nanoedit.net.http import JobHttp

# Far above any real upload limit of these APIs, but it keeps a wrong argument
# (a disk image, a video) from being read into memory.
MAX_INPUT_BYTES = 50 * 1024 * 1024
# Pixel limits, checked from an image's header before any pixel is decoded. They replace
# Pillow's one default (89 MP, refused at twice that), which turns away a 108 MP phone photo.
# Inputs: a 200 MP phone sensor (16320x12240) with room to spare. Checking one reads its
# structure, not its pixels, and the file is sent as it is; only GIF, BMP and TIFF, converted
# to PNG, are decoded whole.
MAX_INPUT_PIXELS = 250_000_000

# EXIF orientation: how viewers turn the stored pixels to show an image (2-8; 1 is as stored).
ORIENTATIONS: dict[int, str] = {
    2: "mirrored left to right",
    3: "turned 180°",
    4: "mirrored top to bottom",
    5: "mirrored and turned 90° counter-clockwise",
    6: "turned 90° clockwise",
    7: "mirrored and turned 90° clockwise",
    8: "turned 90° counter-clockwise",
}
EXIF_ORIENTATION = 0x0112
_SCALE_DOWN = "scale it down and pass it again"
# What to do when an input URL is refused (401, 403, 410): it is the user's own link, and
# may need a login.
INPUT_DENIED = (
    "the URL needs authorization or has expired; pass a public URL, or download the image "
    "and pass the file"
)


@dataclass(frozen=True)
class InputImage:
    """An input image's bytes, as they will be sent."""

    source: ImageSource
    data: bytes
    format: str
    converted_from: str | None = None
    # Read from stdin, a pipe or a device: it cannot be read a second time.
    streamed: bool = False
    # What the user should know about how it is sent (orientation, animation).
    notes: tuple[str, ...] = ()

    @property
    def mime(self) -> str:
        """The content type sent with the bytes."""
        return MIME_TYPES[self.format]

    @property
    def filename(self) -> str:
        """The file name sent in a multipart part, with an extension that says the format."""
        if self.converted_from is None:
            name = self.source.name
            return name if Path(name).suffix else f"{name}{EXTENSIONS[self.format]}"
        return f"{self.source.stem}.png"


def load_local(source: ImageSource, stdin: BinaryIO | None = None) -> InputImage:
    """Read and check a local image: a file, or a stream (stdin for ``-``, a pipe, a FIFO, a
    device), read to its end once. Errors name the file and what to do."""
    if source.is_stdin:
        stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
        if stream is None:
            raise InputError("stdin is closed; pipe an image in, or name the file")
        if stream.isatty():
            raise InputError(
                "stdin is a terminal, not an image; pipe one in "
                "(cat photo.jpg | nanoedit edit - -p ...) or name the file"
            )
        return _streamed(check_image(source, _read_stream(stream, source.label)))
    path = source.path
    where = source.label
    is_file = stat_local(source)
    try:
        if not is_file:
            # A pipe, a FIFO, a process substitution or a device: no size to check up front.
            with path.open("rb") as stream:
                return _streamed(check_image(source, _read_stream(stream, where)))
        data = path.read_bytes()
    except PermissionError:
        raise InputError(
            f"{where} cannot be read (permission denied); check its permissions"
        ) from None
    except OSError as exc:
        raise InputError(f"{where} cannot be read ({exc.strerror}); check the file") from None
    return check_image(source, data)


def stat_local(source: ImageSource) -> bool:
    """What one stat tells of a local image (not stdin): refused when it is missing, a
    folder, unreadable or too large; True for a file, False for a stream (a pipe, a FIFO, a
    device), which has no size to check before it is read."""
    where = source.label
    try:
        # One stat answers "there?", "a folder?", "a stream?" and "how large?": a batch checks
        # every input, 20,000 of them in a large one.
        info = source.path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{where}: no such file; check the path") from None
    except PermissionError:
        raise InputError(
            f"{where} cannot be read (permission denied); check its permissions"
        ) from None
    except OSError as exc:
        raise InputError(f"{where} cannot be read ({exc.strerror}); check the file") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{where} is a directory; pass an image file")
    if not stat.S_ISREG(info.st_mode):
        return False
    if info.st_size > MAX_INPUT_BYTES:
        raise InputError(
            f"{where} is {info.st_size // (1024 * 1024)} MiB; images over "
            f"{MAX_INPUT_BYTES // (1024 * 1024)} MiB are not accepted, pass a smaller one"
        )
    return True


class RunInputs:
    """The input images of one run: local ones checked before anything is sent, URLs
    downloaded when a job needs their bytes, and each image's notes said once.

    A run checks a local file with one stat when it is planned, and reads and checks its
    bytes when its job starts, before that job's request: a batch of 20,000 photos sends its
    first job without reading the other 19,999 first, and holds no more of them in memory
    than it is sending. A dry run, which sends nothing, reads and checks every image when it
    is planned. A stream (stdin, a pipe) can be read once only, so it is read when planned
    and its bytes are kept. Jobs run in threads: every method may be called from any of them.
    """

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        # Local inputs read from a stream, by source: their only read is the check's.
        self._streams: dict[ImageSource, InputImage] = {}
        # Local inputs refused, so a job sharing one is refused alike without a second read.
        self._refused: dict[ImageSource, InputError] = {}
        # Images whose notes (orientation, animation) were already given.
        self._noted: set[ImageSource] = set()
        # The SHA-256 of each local input's bytes as checked: what the journal tells jobs by.
        self.hashes: dict[ImageSource, str] = {}
        self._lock = threading.Lock()

    def check_local(self, source: ImageSource) -> None:
        """Read and check a local image before any job is sent, and give its notes."""
        image = self.read_local(source)
        if source not in self.hashes:
            self.hashes[source] = hashlib.sha256(image.data).hexdigest()
        self.warn_notes(image)

    def sha256(self, source: ImageSource) -> str | None:
        """The SHA-256 of a local input's bytes (read in pieces, once per run), or None when
        it cannot be read (its job is refused when it starts). The journal tells jobs by it."""
        with self._lock:
            known = self.hashes.get(source)
        if known is not None:
            return known
        kept = self._streams.get(source)
        digest = hashlib.sha256()
        if kept is not None:
            digest.update(kept.data)
        else:
            try:
                with source.path.open("rb") as image:
                    while chunk := image.read(1024 * 1024):
                        digest.update(chunk)
            except OSError:
                return None
        with self._lock:
            self.hashes[source] = digest.hexdigest()
        return self.hashes[source]

    def check_present(self, source: ImageSource) -> None:
        """Check what a stat tells of a local image (there, a file, not too large), leaving
        its bytes to be read and checked when its job starts; a stream is read and checked
        now, as it can be read once only."""
        if source.is_stdin or not stat_local(source):
            self.check_local(source)

    def read_local(self, source: ImageSource) -> InputImage:
        """A local image's bytes: read again, or kept from the check for a stream."""
        kept = self._streams.get(source)
        if kept is not None:
            return kept
        refused = self._refused.get(source)
        if refused is not None:
            # Said once for every job that sends it: a stream read again would just be empty.
            raise refused
        try:
            image = load_local(source)
        except InputError as exc:
            self._refused[source] = exc
            raise
        if image.streamed:
            self._streams[source] = image
        return image

    def load(self, source: ImageSource, http: JobHttp) -> InputImage:
        """An input's bytes: read from disk, or downloaded from its URL."""
        if not source.is_url:
            return self.read_local(source)
        return fetch_url(source, http)

    def warn_notes(self, image: InputImage) -> None:
        """Warn once per image, however many jobs send it, of what its notes say."""
        with self._lock:
            if image.source in self._noted:
                return
            self._noted.add(image.source)
        for note in image.notes:
            self.warn(note)


def fetch_url(source: ImageSource, http: JobHttp) -> InputImage:
    """Download an input URL (no credentials, redirects followed, within the size limit) and
    check that it is an image."""
    from nanoedit.net.http import check_download, too_large
    from nanoedit.urls import host_of

    where = host_of(source.location)
    what = f"the input {source.location}"

    def read(response: httpx.Response) -> bytes:
        check_download(response, what, where, MAX_INPUT_BYTES, InputError, INPUT_DENIED)
        chunks = []
        received = 0
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > MAX_INPUT_BYTES:
                raise too_large(what, where, MAX_INPUT_BYTES, InputError)
            chunks.append(chunk)
        return b"".join(chunks)

    request = http.client.build_request("GET", source.location)
    data = http.stream(
        request, read, where=where, what=f"downloading {what}", paid=False,
        follow_redirects=True, unknown_host="check the input URL",
    )  # fmt: skip
    return check_image(source, data)


def _read_stream(stream: IO[bytes], where: str) -> bytes:
    """A stream's bytes to its end, refused past the size limit rather than read on."""
    data = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(
            f"{where} gives more than {MAX_INPUT_BYTES // (1024 * 1024)} MiB; images over "
            "that are not accepted, pass a smaller one"
        )
    return data


def _streamed(image: InputImage) -> InputImage:
    return replace(image, streamed=True)


def check_image(source: ImageSource, data: bytes) -> InputImage:
    """Accept PNG, JPEG and WebP as they are; convert other images losslessly to PNG."""
    where = source.label
    fmt = sniff(data)
    if fmt is None:
        raise InputError(
            f"{where} is not an image ({describe(data)}); pass a PNG, JPEG or WebP file"
        )
    if fmt in UPLOAD_FORMATS:
        notes = _verify(where, data, fmt)
        return InputImage(source=source, data=data, format=fmt, notes=notes)
    png, notes = _to_png(where, data, fmt)
    return InputImage(source=source, data=png, format="png", converted_from=fmt, notes=notes)


def _verify(where: str, data: bytes, fmt: str) -> tuple[str, ...]:
    """Check the header and structure so a broken file fails here, not on a paid request,
    without decoding the pixels: PNG's chunks to the end, JPEG's segments and its end marker
    (a truncated one has none), WebP's chunks (Pillow's decoder reads them all on opening)."""
    if fmt in ("png", "jpeg"):
        header = _header(where, data, fmt)
        check_pixels(where, header.width, header.height, MAX_INPUT_PIXELS, _SCALE_DOWN)
        if not header.exif:
            return _animation_notes(where, header.frames, converted=False)
        # Its orientation is read from the EXIF block by Pillow, below.
    from PIL import UnidentifiedImageError

    try:
        with open_image(io.BytesIO(data), where, MAX_INPUT_PIXELS, _SCALE_DOWN) as image:
            notes = _notes(where, image, converted=False)
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"{where} looks like a {fmt.upper()} image but cannot be decoded ({exc}); "
            "it may be truncated or damaged, re-export it"
        ) from None
    return notes


def _header(where: str, data: bytes, fmt: str) -> Header:
    """A PNG's or JPEG's structure, read without an image library (Pillow's import is more
    than the check: PNG is CRCs over chunks, JPEG its markers), to its end as a result's is:
    a provider takes a truncated image, and its answer is paid for."""
    try:
        if fmt == "png":
            return png_header(io.BytesIO(data))
        return jpeg_header(io.BytesIO(data), whole=True)
    except ValueError as exc:
        raise InputError(
            f"{where} looks like a {fmt.upper()} image but cannot be decoded ({exc}); "
            "it may be truncated or damaged, re-export it"
        ) from None


def _to_png(where: str, data: bytes, fmt: str) -> tuple[bytes, tuple[str, ...]]:
    from PIL import UnidentifiedImageError

    try:
        with open_image(io.BytesIO(data), where, MAX_INPUT_PIXELS, _SCALE_DOWN) as image:
            notes = _notes(where, image, converted=True)
            image.seek(0)
            out = io.BytesIO()
            image.save(out, format="PNG")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"{where} is a {fmt.upper()} file that cannot be decoded ({exc}); "
            "convert it to PNG, JPEG or WebP"
        ) from None
    return out.getvalue(), notes


def _notes(where: str, image: Image.Image, *, converted: bool) -> tuple[str, ...]:
    """What is worth a warning about how the image is sent: what its header says, read
    without decoding a pixel."""
    from PIL import Image

    notes = []
    raw = image.info.get("exif")
    orientation = None
    if isinstance(raw, bytes):
        exif = Image.Exif()
        try:
            exif.load(raw)
            orientation = exif.get(EXIF_ORIENTATION)
        except (SyntaxError, ValueError, OSError, KeyError, IndexError, struct.error):
            pass  # a damaged EXIF block says nothing about orientation; the pixels are fine
        if isinstance(orientation, int) and orientation in ORIENTATIONS:
            notes.append(
                f"{where} has EXIF orientation {orientation} (viewers show it "
                f"{ORIENTATIONS[orientation]}), but its bytes are sent unchanged, so the model "
                "sees it as stored; save it upright first if the model should see it as you do"
            )
    # Only these animate: a phone's JPEG (MPO) holds a preview or a depth map as a second
    # frame, and a TIFF has pages, neither of them an animation.
    frames = getattr(image, "n_frames", 1) if image.format in ("GIF", "PNG", "WEBP") else 1
    return (*notes, *_animation_notes(where, frames, converted=converted))


def _animation_notes(where: str, frames: int, *, converted: bool) -> tuple[str, ...]:
    if frames < 2:
        return ()
    sent = "only its first frame is sent" if converted else "the model sees its first frame only"
    return (f"{where} is animated ({frames} frames); {sent}",)
