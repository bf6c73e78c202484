"""How the sandbox gets the images behind duomi's ``image_urls``.

In process there is no network: a foreign URL is answered by a stand-in image made from
the URL itself (or the built-in sample of the same file name). Served on a port, the
sandbox downloads foreign URLs for real.
"""

from __future__ import annotations

import functools
import posixpath
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from nanoedit.sandbox.render import standin
from nanoedit.sandbox.samples import SAMPLE_NAMES, sample_image

FETCH_TIMEOUT = 15.0
MAX_FETCH_BYTES = 30 * 1024 * 1024
Fetch = Callable[[str], tuple[bytes, str]]
"""Downloads a URL; returns its bytes and Content-Type, raises on failure."""
_STANDIN_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


class FetchError(Exception):
    """An input image could not be downloaded."""


def standin_fetch(url: str) -> tuple[bytes, str]:
    """A deterministic image for ``url`` with no network: the sample of the same file name
    (``…/dog.jpg``), else a gradient naming the URL, in the format its extension says."""
    filename = posixpath.basename(urlsplit(url).path)
    if filename in SAMPLE_NAMES:
        return sample_image(filename)
    mime = _STANDIN_MIME.get(posixpath.splitext(filename)[1].lower(), "image/png")
    image = standin(url, mime)
    return image.data, image.mime


@functools.cache
def _tls() -> ssl.SSLContext:
    # Loading the CA roots takes tens of milliseconds: do it once, not per download.
    return httpx.create_ssl_context()


def http_fetch(url: str) -> tuple[bytes, str]:
    """Download ``url`` (following redirects, at most 30 MB); FetchError on any failure."""
    try:
        with (
            httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=True, verify=_tls()) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise FetchError(f"HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_FETCH_BYTES:
                    raise FetchError(f"larger than {MAX_FETCH_BYTES // (1024 * 1024)} MB")
                chunks.append(chunk)
            return b"".join(chunks), response.headers.get("content-type", "")
    except httpx.HTTPError as exc:
        raise FetchError(str(exc) or type(exc).__name__) from None
