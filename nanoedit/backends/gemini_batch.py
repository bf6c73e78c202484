"""Google's Batch API for the gemini backend (``--tier batch``): the wire, and nothing of the
journal or the run.

What is sent and read ([P] Google's Batch API documentation and the google-genai SDK's
``batches`` module, ``_BatchJobSource_to_mldev``, ``_BatchJob_from_mldev``,
``_InlinedResponse_from_mldev``, ``t_job_state``):

- ``POST {root}/v1beta/models/{model}:batchGenerateContent`` with ``{"batch": {"displayName":
  ..., "inputConfig": {"fileName": "files/..."}}}`` (a JSONL file uploaded through the Files
  API, one ``{"key": ..., "request": GenerateContentRequest}`` a line) or ``{"inputConfig":
  {"requests": {"requests": [{"request": ..., "metadata": {"key": ...}}]}}}`` (inline);
  the answer is a long-running operation named ``batches/...``;
- ``GET {root}/v1beta/batches/{id}``: the operation, ``metadata.state`` one of
  ``BATCH_STATE_PENDING|RUNNING|SUCCEEDED|FAILED|CANCELLED|EXPIRED``, ``metadata.output``
  (the SDK reads it there; ``response`` too, as the operation's result) holding
  ``responsesFile`` or ``inlinedResponses.inlinedResponses[]`` (each ``response`` or
  ``error``, with its ``metadata``), and ``metadata.batchStats`` ([P] REST reference:
  ``requestCount``, ``successfulRequestCount``, ``failedRequestCount``,
  ``pendingRequestCount``, int64 as strings);
- ``GET {root}/v1beta/batches`` (``operations``, ``nextPageToken``) and
  ``POST {root}/v1beta/batches/{id}:cancel``;
- the results file: ``GET {root}/download/v1beta/{file}:download?alt=media``, one
  ``{"key": ..., "response": ...}`` or ``{"key": ..., "error": ...}`` a line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from nanoedit.backends.base import Answer, clip, read_json
from nanoedit.backends.gemini import API_VERSION, GeminiBackend, parse_answer
from nanoedit.backends.gemini_errors import error_of
from nanoedit.errors import ApiError, NanoeditError

if TYPE_CHECKING:
    import httpx

    from nanoedit.b64stream import Streamed
    from nanoedit.jobs import Progress
    from nanoedit.net.inputs import InputImage
    from nanoedit.output.parts import PartFile

# [P] Batch API docs: inline requests are for batches whose total size stays under 20 MB;
# anything larger goes as a JSONL input file, which may be up to 2 GB.
MAX_INLINE_BYTES = 20 * 1024 * 1024
MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024
# [I] Kept under both with room for the request's own JSON around the lines.
INLINE_LIMIT = MAX_INLINE_BYTES - 1024 * 1024
FILE_LIMIT = MAX_FILE_BYTES - 16 * 1024 * 1024
# [P] The docs' own example uploads the JSONL with mime_type "jsonl".
JSONL_MIME = "jsonl"
# The batch states, Google's names as nanoedit says them ([P] SDK t_job_state maps the same).
STATES = {
    "BATCH_STATE_PENDING": "pending",
    "BATCH_STATE_RUNNING": "running",
    "BATCH_STATE_SUCCEEDED": "succeeded",
    "BATCH_STATE_FAILED": "failed",
    "BATCH_STATE_CANCELLED": "cancelled",
    "BATCH_STATE_EXPIRED": "expired",
    "JOB_STATE_PENDING": "pending",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_EXPIRED": "expired",
}
ENDED = frozenset({"succeeded", "failed", "cancelled", "expired"})
# A listing that has not ended after this many pages is a server answering the same page.
MAX_LIST_PAGES = 200
# Read from the results file at a time: one chunk, plus one image's part file, is what a
# results file of any size holds in memory.
CHUNK = 256 * 1024


@dataclass(frozen=True)
class BatchState:
    """A batch as Google described it: its name and display name, its state (``pending``,
    ``running``, ``succeeded``, ``failed``, ``cancelled``, ``expired``), its request counts
    when given, where its results are, and its error when it failed."""

    name: str
    display_name: str
    state: str
    total: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    responses_file: str | None = None
    inlined: tuple[dict[str, Any], ...] | None = None
    error: str | None = None

    @property
    def ended(self) -> bool:
        """Whether Google is done with it (whatever the outcome)."""
        return self.state in ENDED

    @property
    def done(self) -> int | None:
        """How many requests have ended, when Google says."""
        if self.succeeded is None and self.failed is None:
            return None
        return (self.succeeded or 0) + (self.failed or 0)


def _count(value: object, missing: int | None = None) -> int | None:
    """An int64 count, which JSON carries as a string (``missing`` when it is left out)."""
    try:
        return int(str(value)) if value is not None else missing
    except ValueError:
        return missing


def parse_batch(body: object, where: str) -> BatchState:
    """The batch of an operation Google answered with; an error for another shape."""
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise ApiError(
            f"{where} answered with JSON that is not a batch ({clip(str(body), 80)}); check "
            "gemini.base_url, or try again later"
        )
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    raw = str(metadata.get("state") or "")
    state = STATES.get(raw, raw.lower() or "pending")
    stats = metadata.get("batchStats") if isinstance(metadata.get("batchStats"), dict) else {}
    assert isinstance(stats, dict)
    output = metadata.get("output")
    if not isinstance(output, dict):
        output = body.get("response") if isinstance(body.get("response"), dict) else {}
    assert isinstance(output, dict)
    inline = output.get("inlinedResponses")
    listed = inline.get("inlinedResponses") if isinstance(inline, dict) else None
    error = body.get("error")
    said = error.get("message") if isinstance(error, dict) else None
    file = output.get("responsesFile")
    # [P] proto3 JSON leaves a zero count out: with any count given, a missing one is 0.
    zero = 0 if stats else None
    return BatchState(
        name=body["name"],
        display_name=str(metadata.get("displayName") or ""),
        state=state,
        total=_count(stats.get("requestCount")),
        succeeded=_count(stats.get("successfulRequestCount"), zero),
        failed=_count(stats.get("failedRequestCount"), zero),
        responses_file=file if isinstance(file, str) and file else None,
        inlined=tuple(item for item in listed if isinstance(item, dict))
        if isinstance(listed, list)
        else None,
        error=clip(str(said)) if said else None,
    )


@dataclass(frozen=True)
class LineResult:
    """One request's result: its key, and the answer or the error it ended with."""

    key: str
    answer: Answer | None
    error: NanoeditError | None


class BatchApi:
    """Google's Batch API as one backend's settings reach it: uploads, create, poll, list,
    cancel, and the results read line by line."""

    def __init__(self, backend: GeminiBackend) -> None:
        self.backend = backend
        self.http = backend.http
        self.root = backend.root
        self.where = backend.where
        self.settings = backend.settings

    def _headers(self) -> dict[str, str]:
        return self.backend.auth_headers(self.settings.key())

    def _send(self, method: str, url: str, what: str, *, paid: bool, **kwargs: Any) -> Any:
        """One request whose 200 answer is JSON; Google's error otherwise."""
        request = self.http.client.build_request(method, url, headers=self._headers(), **kwargs)
        answer = self.http.send(request, where=self.where, what=what, paid=paid)
        if answer.status_code != 200:
            raise error_of(answer, self.where, self.settings, what)
        return read_json(answer, self.where)

    # Uploads (free: a retry at worst leaves a second copy for 48 hours) --------------------

    def upload_image(self, upload: InputImage, progress: Progress) -> str:
        """Upload one input image through the Files API; its ``fileUri`` once ACTIVE."""
        headers = self._headers()
        file = self.backend._upload(upload, headers)
        return self.backend._when_active(file, upload, headers, progress)

    def upload_requests(self, path: Path, shown: str) -> str:
        """Upload a JSONL file of requests; the file's name (``files/...``)."""
        what = f"the upload of the batch's requests ({shown})"
        file = self.backend.upload_file(
            path.read_bytes(), JSONL_MIME, shown, what, self._headers(),
            lambda file: str(file.get("name") or "").startswith("files/"),
        )  # fmt: skip
        return str(file["name"])

    # The batch -----------------------------------------------------------------------------

    def create(
        self, model: str, display: str, *, file_name: str | None, inline: list[Any] | None
    ) -> BatchState:
        """Submit the batch (paid: never sent twice blindly; see the run's journal)."""
        source: dict[str, Any] = (
            {"fileName": file_name} if file_name else {"requests": {"requests": inline or []}}
        )
        body = {"batch": {"displayName": display, "inputConfig": source}}
        url = f"{self.root}/{API_VERSION}/models/{model}:batchGenerateContent"
        answer = self._send("POST", url, "the batch's creation", paid=True, json=body)
        return parse_batch(answer, self.where)

    def get(self, name: str) -> BatchState:
        """The batch as it is now (free)."""
        url = f"{self.root}/{API_VERSION}/{name}"
        return parse_batch(self._send("GET", url, f"the state of {name}", paid=False), self.where)

    def get_streamed(self, name: str) -> tuple[BatchState, Streamed | None]:
        """The batch as it is now, each inline response's image streamed into a part file of
        the spool of this API's ``http`` as the answer arrives (an ended inline batch carries
        every image in this one answer)."""
        url = f"{self.root}/{API_VERSION}/{name}"
        what = f"the state of {name}"
        request = self.http.client.build_request("GET", url, headers=self._headers())
        answer, streamed = self.http.send_json(
            request, where=self.where, what=what, paid=False, keys=GeminiBackend.base64_keys
        )
        if answer.status_code != 200:
            raise error_of(answer, self.where, self.settings, what)
        return parse_batch(read_json(answer, self.where), self.where), streamed

    def find(self, display: str) -> BatchState | None:
        """The batch created with the display name ``display``, looked for in every page of
        the listing; None when there is none (so it was never created)."""
        token = ""
        for _ in range(MAX_LIST_PAGES):
            query = {"pageSize": 100} | ({"pageToken": token} if token else {})
            url = f"{self.root}/{API_VERSION}/batches?{urlencode(query)}"
            body = self._send("GET", url, "the list of batches", paid=False)
            operations = body.get("operations", []) if isinstance(body, dict) else None
            if not isinstance(operations, list):
                raise ApiError(f"{self.where} answered the list of batches with another shape")
            for item in operations:
                found = parse_batch(item, self.where)
                if found.display_name == display:
                    return found
            token = body.get("nextPageToken") or ""
            if not isinstance(token, str) or not token:
                return None
        raise ApiError(f"{self.where} kept answering another page of batches; try again later")

    def cancel(self, name: str) -> None:
        """Ask Google to cancel the batch (the requests it ran are still charged)."""
        url = f"{self.root}/{API_VERSION}/{name}:cancel"
        self._send("POST", url, f"the cancellation of {name}", paid=False, json={})

    # Results -------------------------------------------------------------------------------

    def read_results(
        self,
        file_name: str,
        model: str,
        spool: Callable[[], PartFile],
        take: Callable[[LineResult], None],
    ) -> int:
        """Download the results file and hand each line's result to ``take`` as it is read,
        each image's base64 streamed into a part file of ``spool`` (never a whole line nor the
        whole file in memory); returns how many lines were read."""
        url = f"{self.root}/download/{API_VERSION}/{file_name}:download?alt=media"
        request = self.http.client.build_request("GET", url, headers=self._headers())
        what = f"the results of the batch ({file_name})"

        def consume(response: httpx.Response) -> int:
            if response.status_code != 200:
                response.read()
                raise error_of(response, self.where, self.settings, what)
            lines = 0
            for streamed, parts in _lines(response.iter_bytes(CHUNK), spool, self.where):
                take(self.line_result(streamed.load(), model, streamed, parts))
                lines += 1
            return lines

        return self.http.stream(request, consume, where=self.where, what=what, paid=False)

    def line_result(
        self,
        line: object,
        model: str,
        streamed: Streamed | None = None,
        parts: list[PartFile] | None = None,
    ) -> LineResult:
        """One result (a line of the results file, or an inline response): its key (the
        line's ``key``, or ``metadata.key`` inline), and its answer or error."""
        import httpx

        if not isinstance(line, dict):
            raise ApiError(f"{self.where} gave a batch result that is not an object")
        metadata = line.get("metadata")
        key = line.get("key") or (metadata.get("key") if isinstance(metadata, dict) else None)
        if not isinstance(key, str):
            raise ApiError(f"{self.where} gave a batch result without its request's key")
        error = line.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            status = code if isinstance(code, int) and 400 <= code < 600 else 500
            fake = httpx.Response(status, json={"error": error})
            failure = error_of(fake, self.where, self.settings, f"request {key} of the batch")
            for part in parts or []:
                part.discard()
            return LineResult(key, None, failure)
        response = line.get("response")
        content = json.dumps(response).encode()
        try:
            answer = parse_answer(httpx.Response(200, content=content), self.where,
                                  self.settings, model, streamed)  # fmt: skip
        except NanoeditError as exc:
            for part in parts or []:
                part.discard()
            return LineResult(key, None, exc)
        usage = response.get("usageMetadata") if isinstance(response, dict) else None
        if isinstance(usage, dict) and usage:
            from dataclasses import replace

            answer = replace(answer, usage=usage)
        return LineResult(key, answer, None)


def _lines(
    chunks: Iterator[bytes], spool: Callable[[], PartFile], where: str
) -> Iterator[tuple[Streamed, list[PartFile]]]:
    """Each line of a JSONL body as it arrives, with its long base64 values streamed into
    part files (closed, not synced: saving decides that)."""
    from nanoedit.b64stream import Base64StreamError, JsonBase64Stream

    parts: list[PartFile] = []
    stream: JsonBase64Stream | None = None
    empty = True

    def open_part(path: object, media_type: str | None) -> PartFile:
        part = spool()
        parts.append(part)
        return part

    def finish() -> tuple[Streamed, list[PartFile]]:
        nonlocal stream, parts, empty
        assert stream is not None
        try:
            streamed = stream.close()
        except Base64StreamError as exc:
            raise ApiError(f"{where} gave a batch result cut short ({exc}); try again") from None
        for part in parts:
            part.close(sync=False)
        done = streamed, parts
        stream, parts, empty = None, [], True
        return done

    for chunk in chunks:
        start = 0
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end == -1 else chunk[start:end]
            if piece.strip():
                if stream is None:
                    stream = JsonBase64Stream(open_part, keys=GeminiBackend.base64_keys)
                stream.feed(piece)
                empty = False
            if end == -1:
                break
            if stream is not None and not empty:
                yield finish()
            start = end + 1
    if stream is not None and not empty:
        yield finish()
