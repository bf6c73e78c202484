"""The Gemini API's Files API: resumable uploads (a session started, bytes sent in chunks,
then finalized), the files they make (PROCESSING for a while when large or under a fault, then
ACTIVE or FAILED, gone after 48 hours), their listing, and their deletion.

A ``generateContent`` request refers to an uploaded file by its URI in a ``fileData`` part;
``file_id_of`` tells which file a URI names.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from nanoedit.sandbox.faults import Phase, Stage
from nanoedit.sandbox.gemini_errors import GoogleError
from nanoedit.sandbox.gemini_request import proto_field, proto_object
from nanoedit.sandbox.runtime import Call, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

# How long an uploaded file lives (Google keeps them 48 h).
UPLOAD_TTL = 48 * 3600.0
# [I] Files kept at once, the oldest dropped beyond (the bytes cap bounds the memory): Google
# caps a project's files by bytes (20 GB) only [P Files API docs], and a batch references
# every distinct input of its jobs, so thousands of them must stay.
MAX_UPLOADS = 20_000
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
# What Google's upload server tells clients to cut their chunks to.
CHUNK_GRANULARITY = 8 * 1024 * 1024
# A file of this size or more is PROCESSING for a while before it is ACTIVE (usable), as the
# Files API does with large media; so is any file under the fault upload-processing, while
# under upload-failed it ends FAILED, with this error.
LARGE_UPLOAD_BYTES = CHUNK_GRANULARITY
PROCESSING_SECONDS = 3.0
PROCESSING_FAILURE: dict[str, object] = {
    "code": 3,
    "message": "The file could not be processed as an image.",
}
UPLOAD_FAULTS = frozenset({"upload-processing", "upload-failed"})
# A file an upload makes is changed by a fault of phase api, where uploads are.
UPLOAD_PHASES = frozenset({Phase.API})
_FILE_ID_CHARS = string.ascii_lowercase + string.digits
FILE_PATH = re.compile(r"/(?P<version>v1beta|v1)/files/(?P<file>[a-z0-9-]+)")


def _timestamp(epoch: float) -> str:
    """RFC 3339 in UTC with microseconds, as Google writes them."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Upload:
    """An open resumable upload session and the bytes it has had so far."""

    mime: str
    display_name: str | None
    announced: int | None
    data: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class StoredUpload:
    """A file uploaded through the Files API."""

    id: str
    mime: str
    display_name: str | None
    data: bytes
    created: float
    """The clock reading when it was finalized."""
    ready: float
    """The clock reading when its processing ends (``created``: none)."""
    fails: bool = False
    """Whether its processing ends in FAILED rather than ACTIVE."""

    def state(self, now: float) -> str:
        """PROCESSING until ``ready``, then ACTIVE, or FAILED."""
        if now < self.ready:
            return "PROCESSING"
        return "FAILED" if self.fails else "ACTIVE"


class UploadStore:
    """Upload sessions and the files they made, dropped after ``UPLOAD_TTL`` and, past a size
    bound, oldest first."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Upload] = {}
        self._files: dict[str, StoredUpload] = {}  # insertion order is age order
        self._bytes = 0

    def start(self, upload: Upload) -> str:
        """Open a session; returns its id."""
        upload_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[upload_id] = upload
            while len(self._sessions) > MAX_UPLOADS:
                del self._sessions[next(iter(self._sessions))]
        return upload_id

    def session(self, upload_id: str) -> Upload | None:
        """The open session of that id, if any."""
        with self._lock:
            return self._sessions.get(upload_id)

    def finish(self, upload_id: str, processing: float = 0.0, fails: bool = False) -> StoredUpload:
        """Close a session and keep its bytes as a file, processed for ``processing`` seconds
        (then FAILED when ``fails``)."""
        with self._lock:
            upload = self._sessions.pop(upload_id)
            file_id = "".join(secrets.choice(_FILE_ID_CHARS) for _ in range(12))
            now = self._clock()
            stored = StoredUpload(
                file_id,
                upload.mime,
                upload.display_name,
                bytes(upload.data),
                now,
                now + processing,
                fails,
            )
            self._files[file_id] = stored
            self._bytes += len(stored.data)
            while len(self._files) > MAX_UPLOADS or self._bytes > MAX_UPLOAD_BYTES:
                self._bytes -= len(self._files.pop(next(iter(self._files))).data)
        return stored

    def cancel(self, upload_id: str) -> None:
        """Drop a session that failed."""
        with self._lock:
            self._sessions.pop(upload_id, None)

    def lookup(self, file_id: str) -> StoredUpload | None:
        """The file of that id, unless it expired or never was."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None or self._clock() - stored.created >= UPLOAD_TTL:
            return None
        return stored

    def files(self) -> list[StoredUpload]:
        """The files that have not expired, newest first."""
        with self._lock:
            stored = list(self._files.values())
        now = self._clock()
        return [file for file in reversed(stored) if now - file.created < UPLOAD_TTL]

    def delete(self, file_id: str) -> None:
        """Drop one file."""
        with self._lock:
            dropped = self._files.pop(file_id, None)
            if dropped is not None:
                self._bytes -= len(dropped.data)

    def expire_all(self) -> None:
        """Drop every file, as when their 48 hours are up (fault ``upload-expired``)."""
        with self._lock:
            self._files.clear()
            self._bytes = 0


def file_denied(file_id: str) -> GoogleError:
    """The 403 for a file that is not there: Google says the same for a file that expired, was
    deleted, or is someone else's."""
    return GoogleError(
        403, f"You do not have permission to access the File {file_id} or it may not exist."
    )


def file_id_of(uri: str) -> str | None:
    """The file id of a Files API URI (on any host: Google's, or the sandbox's own)."""
    match = FILE_PATH.fullmatch(urlsplit(uri).path)
    return None if match is None else match["file"]


class FilesApi:
    """The Files API's routes, over one ``UploadStore``; ``api`` names the emulated API whose
    faults its uploads take."""

    def __init__(self, runtime: Runtime, api: str) -> None:
        self.runtime = runtime
        self.api = api
        self.uploads = UploadStore(runtime.clock)

    def listing(self, call: Call) -> SandboxResponse:
        """Every file that has not expired, newest first (an empty object when none)."""
        files = [self.file_object(stored, call) for stored in self.uploads.files()]
        return json_response(200, {"files": files} if files else {})

    def get(self, call: Call, file_id: str) -> SandboxResponse:
        """One file; GoogleError when it is not there."""
        return json_response(200, self.file_object(self._stored(file_id), call))

    def delete(self, file_id: str) -> SandboxResponse:
        """Delete one file; GoogleError when it is not there."""
        self.uploads.delete(self._stored(file_id).id)
        return json_response(200, {})

    def _stored(self, file_id: str) -> StoredUpload:
        stored = self.uploads.lookup(file_id)
        if stored is None:
            raise file_denied(file_id)
        return stored

    def start(self, call: Call, version: str) -> SandboxResponse:
        """Open a resumable upload session: the URL to send the bytes to, as a header."""
        headers = call.received.headers
        if headers.get("x-goog-upload-protocol", "").lower() != "resumable":
            raise GoogleError(
                400,
                "The sandbox takes resumable uploads only: send X-Goog-Upload-Protocol: resumable",
            )
        if headers.get("x-goog-upload-command", "").strip().lower() != "start":
            raise GoogleError(400, "A resumable upload starts with X-Goog-Upload-Command: start")
        metadata: Mapping[str, Any] = {}
        if isinstance(call.received.json, dict):
            metadata = proto_object(call.received.json.get("file") or {}, "file")
        mime = headers.get("x-goog-upload-header-content-type") or proto_field(
            metadata, "mimeType", "mime_type"
        )
        announced = headers.get("x-goog-upload-header-content-length", "")
        display_name = proto_field(metadata, "displayName", "display_name")
        upload = Upload(
            mime=str(mime or "application/octet-stream"),
            display_name=None if display_name is None else str(display_name),
            announced=int(announced) if announced.isdigit() else None,
        )
        upload_id = self.uploads.start(upload)
        url = (
            f"{call.base_url}/upload/{version}/files"
            f"?upload_id={upload_id}&upload_protocol=resumable"
        )
        return SandboxResponse(
            200,
            {
                "X-Goog-Upload-Status": "active",
                "X-Goog-Upload-URL": url,
                "X-Goog-Upload-Control-URL": url,
                "X-Goog-Upload-Chunk-Granularity": str(CHUNK_GRANULARITY),
                "Content-Type": "text/plain; charset=utf-8",
            },
            b"",
        )

    def chunk(self, call: Call) -> SandboxResponse:
        """Bytes for an upload session, or a question about it. Every answer carries
        ``X-Goog-Upload-Status``: Google's SDK sends a chunk again when it is missing."""
        upload_id = call.received.query["upload_id"]
        upload = self.uploads.session(upload_id)
        final = {"X-Goog-Upload-Status": "final"}
        if upload is None:
            return GoogleError(404, f"No upload session {upload_id}").response(final)
        commands = {
            word.strip().lower()
            for word in call.received.headers.get("x-goog-upload-command", "").split(",")
        }
        received = len(upload.data)
        if "query" in commands:
            headers = {
                "X-Goog-Upload-Status": "active",
                "X-Goog-Upload-Size-Received": str(received),
            }
            return SandboxResponse(200, headers, b"")
        if not commands & {"upload", "finalize"}:
            return GoogleError(
                400, "X-Goog-Upload-Command must be upload, finalize, or query"
            ).response({"X-Goog-Upload-Status": "active"})
        if "upload" in commands:
            offset = call.received.headers.get("x-goog-upload-offset", "")
            if offset != str(received):
                self.uploads.cancel(upload_id)
                return GoogleError(
                    400,
                    f"Invalid request. The given offset is {offset or 'missing'}, but the "
                    f"current offset is {received}.",
                ).response(final)
            upload.data += call.received.body
        if "finalize" not in commands:
            return SandboxResponse(200, {"X-Goog-Upload-Status": "active"}, b"")
        if upload.announced is not None and upload.announced != len(upload.data):
            self.uploads.cancel(upload_id)
            return GoogleError(
                400,
                f"Failed to upload the file: {len(upload.data)} bytes arrived, but "
                f"{upload.announced} were announced in X-Goog-Upload-Header-Content-Length.",
            ).response(final)
        fault = self.runtime.faults.take(UPLOAD_PHASES, self.api, Stage.RESULT)
        processing = 0.0
        if fault in UPLOAD_FAULTS or len(upload.data) >= LARGE_UPLOAD_BYTES:
            processing = PROCESSING_SECONDS
        stored = self.uploads.finish(upload_id, processing, fails=fault == "upload-failed")
        return json_response(200, {"file": self.file_object(stored, call)}, final)

    def file_object(self, stored: StoredUpload, call: Call) -> dict[str, object]:
        """What the Files API tells of a file."""
        created = self.runtime.epoch(stored.created)
        state = stored.state(self.runtime.clock())
        # Updated when its processing ended, if it has.
        updated = created if state == "PROCESSING" else self.runtime.epoch(stored.ready)
        payload: dict[str, object] = {"name": f"files/{stored.id}"}
        if stored.display_name is not None:
            payload["displayName"] = stored.display_name
        payload |= {
            "mimeType": stored.mime,
            # int64 fields are strings in proto JSON.
            "sizeBytes": str(len(stored.data)),
            "createTime": _timestamp(created),
            "updateTime": _timestamp(updated),
            "expirationTime": _timestamp(created + UPLOAD_TTL),
            # Base64 of the hex digest, as Google's own values decode.
            "sha256Hash": base64.b64encode(
                hashlib.sha256(stored.data).hexdigest().encode()
            ).decode(),
            "uri": f"{call.base_url}/v1beta/files/{stored.id}",
            "state": state,
            "source": "UPLOADED",
        }
        if state == "FAILED":
            payload["error"] = PROCESSING_FAILURE
        return payload
