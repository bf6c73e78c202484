"""The Gemini Batch API's routes: a batch created (``models/MODEL:batchGenerateContent``),
read, listed, cancelled and deleted, and its results file downloaded. The batches and their
clock are in ``gemini_batch_store``; the body is read in ``gemini_batch_input``.

[P] google-genai 3.6.1 ``batches.py``: create POSTs ``{model}:batchGenerateContent``; get,
cancel and delete use ``batches/{name}`` (cancel with ``:cancel``); list GETs ``batches`` with
``pageSize``/``pageToken`` and reads ``operations`` and ``nextPageToken``. Every batch comes back
as a long-running operation whose ``metadata`` is the batch (``_BatchJob_from_mldev`` reads
``metadata.displayName``, ``state``, ``createTime``, ``updateTime``, ``endTime``, ``model`` and
``output``). ``files.download`` GETs ``files/{name}:download?alt=media``; Google's REST guide
downloads from ``/download/v1beta/files/{name}:download?alt=media``: both are served.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from nanoedit.sandbox.catalog import Model
from nanoedit.sandbox.gemini_batch_input import read_order
from nanoedit.sandbox.gemini_batch_store import ENDED, WITH_RESULTS, Batch, BatchStore
from nanoedit.sandbox.gemini_errors import GoogleError
from nanoedit.sandbox.gemini_files import UPLOAD_TTL, UploadStore, file_denied
from nanoedit.sandbox.gemini_generate import GenerateContent
from nanoedit.sandbox.runtime import SANDBOX_HOST, Call, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

# [S] The types Google names in a batch operation (responses quoted in issue threads).
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
# [I] The list's page size when none is asked for, and the most it gives.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
DOWNLOAD_CHUNK = 64 * 1024
# [S] Google's words for a resource it does not have.
NOT_FOUND = "Requested entity was not found."


def _timestamp(epoch: float) -> str:
    """RFC 3339 in UTC with microseconds, as Google writes them."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Batches:
    """The Batch API of one emulated Gemini API (``api`` names it, for its faults)."""

    def __init__(
        self, runtime: Runtime, api: str, generator: GenerateContent, uploads: UploadStore
    ) -> None:
        self.runtime = runtime
        self.uploads = uploads
        self.store = BatchStore(runtime, generator, api)

    def create(self, call: Call, model: Model) -> SandboxResponse:
        """Make a batch of the requests a body holds; GoogleError says what Google refuses."""
        received = call.received
        if received.body_error is not None and received.json is None:
            raise GoogleError(400, "Invalid JSON payload received. Unexpected token.")
        order = read_order(received.json, len(received.body), self.uploads, self.runtime.clock())
        own_hosts = frozenset({call.netloc, SANDBOX_HOST})
        return json_response(200, self.operation(self.store.create(order, model, own_hosts)))

    def get(self, batch_id: str) -> SandboxResponse:
        """One batch as an operation."""
        return json_response(200, self.operation(self._batch(batch_id)))

    def listing(self, call: Call) -> SandboxResponse:
        """A page of batches, newest first: ``operations`` and, when more follow,
        ``nextPageToken``."""
        query = call.received.query
        size_text = query.get("pageSize", "")
        size = int(size_text) if size_text.isdigit() and int(size_text) > 0 else PAGE_SIZE
        size = min(size, MAX_PAGE_SIZE)
        batches = self.store.listing()
        start = 0
        token = query.get("pageToken")
        if token:
            ids = [batch.id for batch in batches]
            if token not in ids:
                raise GoogleError(
                    400, f"Invalid page token {token!r}: pass a nextPageToken the list gave"
                )
            start = ids.index(token)
        page = batches[start : start + size]
        payload: dict[str, object] = {}
        if page:
            payload["operations"] = [self.operation(batch) for batch in page]
        if start + size < len(batches):
            payload["nextPageToken"] = batches[start + size].id
        return json_response(200, payload)

    def cancel(self, batch_id: str) -> SandboxResponse:
        """Cancel a batch: [I] an empty object (google.protobuf.Empty), as Google's
        long-running operations answer ``:cancel``; a batch already ended is left as it is."""
        if self.store.cancel(batch_id) is None:
            raise GoogleError(404, NOT_FOUND)
        return json_response(200, {})

    def delete(self, batch_id: str) -> SandboxResponse:
        """Delete a batch and its results: an empty object."""
        if not self.store.delete(batch_id):
            raise GoogleError(404, NOT_FOUND)
        return json_response(200, {})

    def results_file(self, call: Call, file_id: str) -> dict[str, object] | None:
        """What the Files API tells of a batch's results file (None: no batch has one of that
        id, or it is not written yet)."""
        batch = self.store.by_results(file_id)
        if batch is None or batch.state not in WITH_RESULTS or batch.ended is None:
            return None
        url = f"{call.base_url}/v1beta/files/{file_id}"
        return {
            "name": f"files/{file_id}",
            "mimeType": "application/jsonl",
            "sizeBytes": str(batch.results.stat().st_size),
            "createTime": _timestamp(batch.ended),
            "updateTime": _timestamp(batch.ended),
            "expirationTime": _timestamp(batch.ended + UPLOAD_TTL),
            "uri": url,
            "downloadUri": f"{url}:download?alt=media",
            "state": "ACTIVE",
            # [P] google-genai's FileSource: files a service made are GENERATED.
            "source": "GENERATED",
        }

    def download(self, call: Call, file_id: str) -> SandboxResponse:
        """A batch's results file, streamed from disk (never read whole): one JSON line per
        request; GoogleError when there is no such file (yet)."""
        if call.received.query.get("alt") != "media":
            raise GoogleError(
                400, f"Download files/{file_id} with ?alt=media: the bytes come only that way"
            )
        batch = self.store.by_results(file_id)
        if batch is None or batch.state not in WITH_RESULTS:
            raise file_denied(file_id)
        # Opened only when the body is sent (a HEAD sends none); an ended batch's file no
        # longer changes, so its size now is its size then.
        size = batch.results.stat().st_size
        headers = {
            # [I] Google serves the bytes as they were stored; a JSONL file's type.
            "Content-Type": "application/jsonl",
            "Content-Length": str(size),
        }
        return SandboxResponse(200, headers, b"", stream=_chunks(batch.results))

    def operation(self, batch: Batch) -> dict[str, object]:
        """A batch as Google shows it: a long-running operation whose ``metadata`` is the
        batch, ``done`` once it ended, with its output as ``response`` (or its ``error``)."""
        stats = {
            # [P] proto3 JSON: int64 counts are strings, and a zero count is left out.
            "requestCount": batch.input.count,
            "successfulRequestCount": batch.succeeded,
            "failedRequestCount": batch.failed,
            "pendingRequestCount": 0 if batch.state in ENDED else batch.input.count - batch.done,
        }
        metadata: dict[str, object] = {
            "@type": BATCH_TYPE,
            "model": f"models/{batch.model.id}",
        }
        if batch.display_name is not None:
            metadata["displayName"] = batch.display_name
        if batch.file_name is not None:
            metadata["inputConfig"] = {"fileName": batch.file_name}
        metadata |= {
            "createTime": _timestamp(batch.created),
            "updateTime": _timestamp(batch.updated),
            "batchStats": {name: str(count) for name, count in stats.items() if count},
            "state": batch.state,
            "name": batch.name,
        }
        if batch.ended is not None:
            metadata["endTime"] = _timestamp(batch.ended)
        output = self._output(batch)
        if output is not None:
            metadata["output"] = output
        payload: dict[str, object] = {"name": batch.name, "metadata": metadata}
        if batch.state in ENDED:
            payload["done"] = True
            if batch.error is not None:
                payload["error"] = batch.error
            elif output is not None:
                payload["response"] = {"@type": OUTPUT_TYPE, **output}
        return payload

    def _output(self, batch: Batch) -> dict[str, object] | None:
        """An ended batch's output: its results file's name, or its inline responses in
        request order (None: it has none)."""
        if batch.state not in WITH_RESULTS:
            return None
        if not batch.inline:
            return {"responsesFile": f"files/{batch.results_id}"}
        with batch.results.open(encoding="utf-8") as lines:
            responses = [json.loads(line) for line in lines if line.strip()]
        # [P] proto3 JSON leaves an empty list out (a batch cancelled before any answer).
        return {"inlinedResponses": {"inlinedResponses": responses} if responses else {}}

    def _batch(self, batch_id: str) -> Batch:
        batch = self.store.get(batch_id)
        if batch is None:
            raise GoogleError(404, NOT_FOUND)
        return batch


def _chunks(path: Path) -> Iterator[bytes]:
    """A file's bytes, ``DOWNLOAD_CHUNK`` at a time, never more held."""
    with path.open("rb") as handle:
        while chunk := handle.read(DOWNLOAD_CHUNK):
            yield chunk
