"""A strict, small multipart/form-data reader, so the sandbox sees uploads exactly as sent."""

from __future__ import annotations

import re
from dataclasses import dataclass

# One `; name=value` header parameter; the value quoted (with backslash escapes) or bare.
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request."""

    field: str
    filename: str
    content_type: str
    data: bytes

    def __repr__(self) -> str:
        return (
            f"UploadedFile(field={self.field!r}, filename={self.filename!r}, "
            f"content_type={self.content_type!r}, data=<{len(self.data)} bytes>)"
        )


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


def header_params(value: str) -> dict[str, str]:
    """The parameters of a header such as ``form-data; name="image"; filename="a.png"``."""
    params: dict[str, str] = {}
    for name, raw in _PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[name.lower()] = raw
    return params


def parse_multipart(
    body: bytes, content_type: str
) -> tuple[dict[str, list[str]], list[UploadedFile]]:
    """Text fields (name to values) and file parts, both in arrival order.

    A part is a file when its Content-Disposition carries a ``filename``, as in browsers,
    httpx and the OpenAI SDK.
    """
    boundary = header_params(content_type).get("boundary")
    if not boundary:
        raise MultipartError("the multipart Content-Type has no boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    start = body.find(delimiter)
    if start < 0:
        raise MultipartError("the multipart body does not contain its boundary")
    fields: dict[str, list[str]] = {}
    files: list[UploadedFile] = []
    chunks = body[start + len(delimiter) :].split(b"\r\n" + delimiter)
    for chunk in chunks:
        if chunk.startswith(b"--"):
            return fields, files
        # RFC 2046 allows whitespace between a boundary and its line break.
        head_start = chunk.find(b"\r\n")
        if head_start < 0 or chunk[:head_start].strip(b" \t"):
            raise MultipartError("a multipart boundary is not followed by a line break")
        head, sep, data = chunk[head_start + 2 :].partition(b"\r\n\r\n")
        if not sep:
            raise MultipartError("a multipart part has no blank line after its headers")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        params = header_params(disposition)
        if not disposition.lower().startswith("form-data") or "name" not in params:
            raise MultipartError("a multipart part has no form-data name")
        if "filename" in params:
            content_type_of_part = headers.get("content-type", "application/octet-stream")
            files.append(
                UploadedFile(params["name"], params["filename"], content_type_of_part, data)
            )
        else:
            fields.setdefault(params["name"], []).append(data.decode("utf-8", errors="replace"))
    raise MultipartError("the multipart body ends without its closing boundary (truncated?)")
