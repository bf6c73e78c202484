"""fal's storage: the REST storage API's two-step upload (``initiate``, then a PUT of the bytes
to the URL it gives), the CDN's own upload route with a token, and the CDN (``v3.fal.media``)
serving what was uploaded, kept in memory. A queued request's ``image_urls`` may point here.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from nanoedit.sandbox.fal_schema import detail_error
from nanoedit.sandbox.render import sniff_mime
from nanoedit.sandbox.runtime import Call, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

# Uploads are kept in memory: at most this many bytes, oldest dropped first.
MAX_UPLOAD_BYTES = 128 * 1024 * 1024
CDN_PREFIX = "/fal-media/files/"
UPLOAD_PREFIX = "/storage/uploads/"
STORAGE_TYPES = ("fal-cdn-v3", "gcs")


@dataclass(frozen=True)
class Upload:
    """A file put into storage."""

    data: bytes
    content_type: str


class FalStorage:
    """Uploads waiting for their bytes, the CDN's upload tokens, and the files uploaded."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._pending_uploads: dict[str, str] = {}  # upload token -> file path in the CDN
        self._uploads: dict[str, Upload] = {}  # CDN path -> file
        self._upload_bytes = 0
        self._cdn_tokens: set[str] = set()

    def lookup(self, path: str) -> Upload | None:
        """The file uploaded at a CDN path (as a URL has it, quoted), if any."""
        with self._lock:
            return self._uploads.get(unquote(path))

    def initiate(self, call: Call) -> SandboxResponse:
        """Start an upload: the URL to PUT the bytes to, and the URL the file will have."""
        storage_type = call.received.query.get("storage_type", "")
        if storage_type not in STORAGE_TYPES:
            return json_response(
                400, {"detail": f"storage_type must be one of {', '.join(STORAGE_TYPES)}"}
            )
        body = call.received.json
        if not isinstance(body, dict):
            return detail_error(422, (), "value is not a valid dict", "type_error.dict")
        content_type = body.get("content_type")
        file_name = body.get("file_name")
        for name, value in (("content_type", content_type), ("file_name", file_name)):
            if not isinstance(value, str) or not value:
                return detail_error(422, (name,), "field required", "value_error.missing")
        assert isinstance(file_name, str)
        token = secrets.token_hex(16)
        path = f"{CDN_PREFIX}{secrets.token_hex(8)}/{file_name}"
        with self._lock:
            self._pending_uploads[token] = path
        return json_response(
            200,
            {
                "upload_url": f"{call.base_url}{UPLOAD_PREFIX}{token}",
                "file_url": f"{call.base_url}{quote(path)}",
            },
        )

    def put_upload(self, call: Call) -> SandboxResponse:
        """The bytes of an upload ``initiate`` started; its URL is the credential."""
        token = call.received.path.removeprefix(UPLOAD_PREFIX)
        with self._lock:
            path = self._pending_uploads.pop(token, None)
        if path is None:
            return json_response(403, {"detail": "The upload URL is invalid or was used already"})
        content_type = call.received.headers.get("content-type", "application/octet-stream")
        self._store(path, Upload(call.received.body, content_type))
        return SandboxResponse(200, {}, b"")

    def cdn_token(self, call: Call) -> SandboxResponse:
        """A token for the CDN's own upload route, as the Python client fetches one."""
        token = secrets.token_hex(16)
        with self._lock:
            self._cdn_tokens.add(token)
        expires = datetime.fromtimestamp(self.runtime.epoch(), UTC) + timedelta(hours=1)
        return json_response(
            200,
            {
                "token": token,
                "token_type": "Bearer",
                "base_url": call.base_url,
                "expires_at": expires.isoformat(),
            },
        )

    def cdn_upload(self, call: Call) -> SandboxResponse:
        """An upload to the CDN's own route, with a token ``cdn_token`` gave."""
        scheme, _, token = call.received.headers.get("authorization", "").partition(" ")
        with self._lock:
            known = scheme == "Bearer" and token.strip() in self._cdn_tokens
        if not known:
            return json_response(401, {"detail": "Invalid or expired upload token"})
        headers = call.received.headers
        name = headers.get("x-fal-file-name") or "upload.bin"
        path = f"{CDN_PREFIX}{secrets.token_hex(8)}/{name}"
        content_type = headers.get("content-type", "application/octet-stream")
        self._store(path, Upload(call.received.body, content_type))
        return json_response(200, {"access_url": f"{call.base_url}{quote(path)}"})

    def _store(self, path: str, upload: Upload) -> None:
        with self._lock:
            self._uploads[path] = upload
            self._upload_bytes += len(upload.data)
            while self._upload_bytes > MAX_UPLOAD_BYTES and len(self._uploads) > 1:
                oldest = next(iter(self._uploads))
                self._upload_bytes -= len(self._uploads.pop(oldest).data)

    def cdn_file(self, path: str) -> SandboxResponse:
        """An uploaded file, as the CDN serves it."""
        upload = self.lookup(path)
        if upload is None:
            return json_response(404, {"detail": "File not found"})
        mime = sniff_mime(upload.data) or upload.content_type
        return SandboxResponse(200, {"Content-Type": mime}, upload.data)
