"""Result files: kept in memory for a while behind signed, expiring URLs, like a CDN bucket."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from nanoedit.sandbox.render import EXTENSIONS, Encoded, decode, encode
from nanoedit.sandbox.wire import SandboxResponse, text_response

MAX_FILES = 2000
MAX_BYTES = 256 * 1024 * 1024
MIME_OF_EXT = {ext: mime for mime, ext in EXTENSIONS.items()}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HUGE_CHUNK = 64 * 1024
_OTHER_FORMAT = {"image/png": "image/jpeg", "image/jpeg": "image/png", "image/webp": "image/png"}


@dataclass(frozen=True)
class StoredFile:
    """One result file and the clock reading when it was stored."""

    token: str
    image: Encoded
    stored_at: float
    expires: int
    """The URL's X-Expires: Unix seconds after which the link stops working."""
    signature: str

    @property
    def name(self) -> str:
        """The file name in the URL path."""
        return f"{self.token}.{self.image.ext}"

    def url(self, base_url: str) -> str:
        """The absolute, signed URL of the file on the host at ``base_url``."""
        query = urlencode({"X-Expires": self.expires, "sig": self.signature})
        return f"{base_url}/files/{self.name}?{query}"


@dataclass(frozen=True)
class Denial:
    """Why a download is refused, in the words an S3-style CDN uses."""

    status: int
    code: str
    message: str

    def response(self) -> SandboxResponse:
        """The small XML error page a CDN sends."""
        return cdn_error(self.status, self.code, self.message)


EXPIRED = Denial(403, "AccessDenied", "Request has expired")
BAD_SIGNATURE = Denial(
    403, "AccessDenied", "The request signature does not match the signature provided"
)
NO_SUCH_KEY = Denial(404, "NoSuchKey", "The specified key does not exist.")


def cdn_error(status: int, code: str, message: str) -> SandboxResponse:
    """An S3-style XML error document."""
    return text_response(
        status,
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>\n",
        "application/xml",
    )


class FileStore:
    """Stored results, dropped once expired and, past a size bound, oldest first."""

    def __init__(
        self,
        *,
        ttl: float,
        clock: Callable[[], float],
        epoch: Callable[[], float],
        max_files: int = MAX_FILES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._epoch = epoch
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._secret = secrets.token_bytes(16)
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}  # insertion order is age order
        self._bytes = 0

    def _sign(self, name: str, expires: int) -> str:
        message = f"{name}:{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def put(self, image: Encoded) -> StoredFile:
        """Store one result and return it with its signed name."""
        token = secrets.token_hex(16)
        expires = int(self._epoch() + self.ttl)
        name = f"{token}.{image.ext}"
        stored = StoredFile(token, image, self._clock(), expires, self._sign(name, expires))
        with self._lock:
            self._drop_expired()
            self._files[token] = stored
            self._bytes += len(image.data)
            while self._files and (
                len(self._files) > self._max_files or self._bytes > self._max_bytes
            ):
                self._remove(next(iter(self._files)))
        return stored

    def _remove(self, token: str) -> None:
        self._bytes -= len(self._files.pop(token).image.data)

    def _drop_expired(self) -> None:
        now = self._clock()
        for token in [t for t, f in self._files.items() if now - f.stored_at >= self.ttl]:
            self._remove(token)

    def lookup(self, name: str, query: Mapping[str, str]) -> StoredFile | Denial:
        """The file a ``/files/<name>?X-Expires=…&sig=…`` URL points at, or why not."""
        expires = query.get("X-Expires", "")
        signature = query.get("sig", "")
        if not expires.isdigit() or not hmac.compare_digest(
            signature, self._sign(name, int(expires))
        ):
            return BAD_SIGNATURE
        token, _, ext = name.partition(".")
        with self._lock:
            stored = self._files.get(token)
        if stored is None:
            # Dropped to save memory, or never stored: the signed expiry still tells which.
            return EXPIRED if self._epoch() >= int(expires) else NO_SUCH_KEY
        if self._clock() - stored.stored_at >= self.ttl:
            return EXPIRED
        if stored.image.ext != ext:
            return NO_SUCH_KEY
        return stored

    def respond(self, stored: StoredFile, *, mislabel: bool = False) -> SandboxResponse:
        """The download of a found file. ``mislabel`` serves the bytes in the other format
        under the type its name claims, as a CDN does with a wrongly named upload."""
        image = stored.image
        if mislabel:
            image = encode(decode(image.data), _OTHER_FORMAT[image.mime], fast=True)
        headers = {
            # A CDN answers from the file name's extension, not from the bytes it holds.
            "Content-Type": MIME_OF_EXT[stored.image.ext],
            "Cache-Control": f"private, max-age={int(self.ttl)}",
            "ETag": f'"{hashlib.sha256(image.data).hexdigest()[:32]}"',
        }
        return SandboxResponse(200, headers, image.data)


def huge_body(size: int) -> Iterator[bytes]:
    """A PNG signature and then zeros, ``size`` bytes in all, made ``HUGE_CHUNK`` bytes at a
    time so that no more than one chunk is ever held."""
    zeros = bytes(HUGE_CHUNK)
    first = (PNG_SIGNATURE + zeros)[: min(size, HUGE_CHUNK)]
    sent = len(first)
    if first:
        yield first
    while sent < size:
        piece = zeros if size - sent >= HUGE_CHUNK else zeros[: size - sent]
        sent += len(piece)
        yield piece


def huge_download(size: int, *, chunked: bool) -> SandboxResponse:
    """A result download too big to hold: ``size`` bytes that claim to be a PNG, announced by
    Content-Length, or ``chunked`` with no length, so a client has to count for itself."""
    headers = {"Content-Type": "image/png"}
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(size)
    return SandboxResponse(200, headers, b"", stream=huge_body(size))
