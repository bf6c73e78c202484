"""A benchmark (``-m benchmark``): a 2,000-request batch is answered and its results file
served without the sandbox holding the results. Its answers are written to disk as they are
made and the download streams from there, so the Python memory the whole batch takes stays
far below the size of its results file. It takes minutes (2,000 images drawn), so it is a
benchmark, not part of the suite; it times nothing."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import httpx
import pytest

from nanoedit.sandbox import Sandbox, SandboxServer
from nanoedit.sandbox.renderer import Renderer

KEY = "gemini-test-key"
REQUESTS = 2000
# What the batch may take in Python memory at its peak, whatever its size: a few answers'
# worth (an answer is about 70 KB of JSON) and the bookkeeping of 2,000 line offsets.
BOUND = 32 * 1024 * 1024


@pytest.mark.benchmark
@pytest.mark.timeout(1800)
def test_a_2000_request_batch_is_answered_and_served_in_bounded_memory(tmp_path: Path) -> None:
    # No drawings kept for repeats: the renderer's own cache is not what is measured here.
    sandbox = Sandbox(keys=frozenset({KEY}), renderer=Renderer(cache_bytes=0))
    headers = {"x-goog-api-key": KEY}
    lines = "".join(
        json.dumps(
            {
                "key": f"job-{index}",
                "request": {
                    "contents": [{"parts": [{"text": f"a lighthouse, take {index}"}]}],
                    "generationConfig": {"responseModalities": ["IMAGE"]},
                },
            }
        )
        + "\n"
        for index in range(REQUESTS)
    ).encode()
    with (
        SandboxServer(sandbox) as server,
        httpx.Client(base_url=server.base_url, headers=headers, timeout=600) as client,
    ):
        start = client.post(
            "/upload/v1beta/files",
            headers={"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"},
        )
        uploaded = httpx.post(
            start.headers["X-Goog-Upload-URL"],
            content=lines,
            headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
        ).json()["file"]
        body = {"batch": {"inputConfig": {"fileName": uploaded["name"]}}}
        made = client.post(
            "/v1beta/models/gemini-nano-banana-2.1:batchGenerateContent", json=body
        ).json()
        tracemalloc.start()
        try:
            sandbox.batch_clock.advance(360)
            done = client.get(f"/v1beta/{made['name']}").json()
            results = done["metadata"]["output"]["responsesFile"]
            saved = tmp_path / "results.jsonl"
            with (
                client.stream("GET", f"/v1beta/{results}:download?alt=media") as download,
                saved.open("wb") as out,
            ):
                for chunk in download.iter_bytes():
                    out.write(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    size = saved.stat().st_size
    with saved.open() as read:
        keys = [json.loads(line)["key"] for line in read]
    assert keys == [f"job-{index}" for index in range(REQUESTS)]
    assert done["metadata"]["batchStats"] == {
        "requestCount": str(REQUESTS),
        "successfulRequestCount": str(REQUESTS),
    }
    print(f"\nresults file {size / 2**20:.1f} MiB; peak traced memory {peak / 2**20:.1f} MiB")
    assert size > 4 * BOUND  # the results could not have been held within the bound
    assert peak < BOUND
