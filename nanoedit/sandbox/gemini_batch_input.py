"""What a ``models/MODEL:batchGenerateContent`` body asks for, checked as Google checks it at
creation: its display name, and its requests, inline or in an uploaded JSONL file.

[P] google-genai 3.6.1 ``batches._CreateBatchJobParameters_to_mldev`` sends
``{"batch": {"displayName", "inputConfig": {"requests": {"requests": [{"request":
GenerateContentRequest, "metadata": {...}}]}} | {"fileName": "files/ID"}}}``; Google's REST
reference names the same fields (``batch.inputConfig``, ``InputConfig.fileName`` /
``InputConfig.requests``). Fields are read in camelCase or snake_case, as Google's parser does.

The requests themselves are checked only when the batch runs (as Google reports a bad request
as an ``error`` in its result, not as a refusal of the batch); a file's lines are found here,
by their offsets, without copying the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nanoedit.sandbox.gemini_errors import GoogleError
from nanoedit.sandbox.gemini_files import StoredUpload, UploadStore, file_denied
from nanoedit.sandbox.gemini_request import proto_field, proto_object

# [P] Google's batch guide: inline requests suit batches whose whole request stays under 20 MB;
# an input file may be up to 2 GB.
MAX_INLINE_BYTES = 20 * 1024 * 1024
MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024
# [S] What Google's front end says of a body over its limit (issue threads on large inline
# batches).
TOO_LARGE = f"Request payload size exceeds the limit: {MAX_INLINE_BYTES} bytes."


@dataclass(frozen=True)
class Item:
    """One request of a batch as it will run: its ``key`` (file lines) or ``metadata`` (inline
    requests), and its ``GenerateContentRequest`` body, or why the line could not be read."""

    key: object
    metadata: object
    body: object
    unreadable: str | None = None


@dataclass(frozen=True)
class InlineInput:
    """Requests sent in the create body."""

    items: tuple[Item, ...]

    @property
    def count(self) -> int:
        """How many requests."""
        return len(self.items)

    def item(self, index: int) -> Item:
        """The request at ``index``."""
        return self.items[index]


@dataclass(frozen=True)
class FileInput:
    """Requests in an uploaded JSONL file, one a line: ``starts`` holds each line's offset
    (blank lines are no requests)."""

    file: StoredUpload
    starts: tuple[int, ...]

    @property
    def count(self) -> int:
        """How many requests."""
        return len(self.starts)

    def item(self, index: int) -> Item:
        """The request on line ``index`` (0-based, blank lines left out)."""
        data = self.file.data
        start = self.starts[index]
        end = data.find(b"\n", start)
        line = data[start : len(data) if end < 0 else end]
        try:
            parsed = json.loads(line)
        except ValueError:
            return Item(None, None, None, f"Invalid JSON on line {index + 1} of the input file.")
        if not isinstance(parsed, dict):
            return Item(None, None, None, f"Line {index + 1} of the input file is not an object.")
        request = parsed.get("request")
        if not isinstance(request, dict):
            return Item(
                parsed.get("key"),
                None,
                None,
                f"Line {index + 1} of the input file has no request object.",
            )
        return Item(parsed.get("key"), None, request)


BatchInput = InlineInput | FileInput


@dataclass(frozen=True)
class BatchOrder:
    """A checked create body."""

    display_name: str | None
    input: BatchInput
    file_name: str | None
    """``files/ID`` of the input file (None: inline requests)."""


def read_order(body: object, size: int, uploads: UploadStore, now: float) -> BatchOrder:
    """Check a ``batchGenerateContent`` body of ``size`` bytes; GoogleError says what Google
    refuses. ``now`` is the uploads' clock reading, to tell whether an input file is usable."""
    if size > MAX_INLINE_BYTES:
        raise GoogleError(400, TOO_LARGE)
    if not isinstance(body, dict):
        raise GoogleError(400, "Invalid JSON payload received. Unexpected token.")
    if body.get("batch") is None:
        raise GoogleError(400, "* BatchGenerateContentRequest.batch: batch is not specified")
    batch = proto_object(body["batch"], "batch")
    name = proto_field(batch, "displayName", "display_name")
    if name is not None and not isinstance(name, str):
        raise GoogleError(
            400, f"Invalid value at 'batch.display_name' (TYPE_STRING), {json.dumps(name)}"
        )
    config = proto_field(batch, "inputConfig", "input_config")
    if config is None:
        raise GoogleError(
            400,
            "* BatchGenerateContentRequest.batch.input_config: input_config is not specified",
        )
    config = proto_object(config, "batch.input_config")
    file_name = proto_field(config, "fileName", "file_name")
    requests = config.get("requests")
    if (file_name is None) == (requests is None):
        raise GoogleError(
            400,
            "* BatchGenerateContentRequest.batch.input_config: exactly one of file_name and "
            "requests must be set",
        )
    if file_name is not None:
        return BatchOrder(name, _file_input(file_name, uploads, now), str(file_name))
    return BatchOrder(name, _inline_input(requests), None)


def _inline_input(requests: object) -> InlineInput:
    """The inline requests of ``inputConfig.requests``."""
    listed = proto_object(requests, "batch.input_config.requests").get("requests")
    if not isinstance(listed, list) or not listed:
        raise GoogleError(
            400,
            "* BatchGenerateContentRequest.batch.input_config.requests.requests: requests must "
            "not be empty",
        )
    items: list[Item] = []
    for index, raw in enumerate(listed):
        where = f"batch.input_config.requests.requests[{index}]"
        entry: Mapping[str, Any] = proto_object(raw, where)
        request = entry.get("request")
        if not isinstance(request, dict):
            raise GoogleError(
                400, f"* BatchGenerateContentRequest.{where}.request: request is not specified"
            )
        metadata = entry.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise GoogleError(
                400,
                f"Invalid value at '{where}.metadata' (type.googleapis.com/google.protobuf."
                "Struct), it must be an object",
            )
        items.append(Item(None, metadata, request))
    return InlineInput(tuple(items))


def _file_input(file_name: object, uploads: UploadStore, now: float) -> FileInput:
    """The requests of an uploaded JSONL file named ``files/ID``."""
    name = str(file_name)
    file_id = name.removeprefix("files/")
    if not name.startswith("files/") or not file_id:
        raise GoogleError(
            400,
            f"Invalid file name {name!r} in batch.input_config.file_name: name a file of the "
            "Files API as files/ID",
        )
    stored = uploads.lookup(file_id)
    if stored is None:
        raise file_denied(file_id)
    if stored.state(now) != "ACTIVE":
        raise GoogleError(
            400,
            f"The File {file_id} is not in an ACTIVE state and usage is not allowed.",
            status="FAILED_PRECONDITION",
        )
    if len(stored.data) > MAX_FILE_BYTES:
        raise GoogleError(
            400, f"The input file {name} is over the Batch API's limit of 2 GB: split it."
        )
    starts = tuple(_line_starts(stored.data))
    if not starts:
        raise GoogleError(400, f"The input file {name} holds no requests: it has no lines.")
    return FileInput(stored, starts)


def _line_starts(data: bytes) -> Iterator[int]:
    """The offset of each line of ``data`` that is not blank, found without copying it."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if data[start:end].strip():
            yield start
        start = end + 1
