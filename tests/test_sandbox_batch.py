"""The sandbox's emulation of Google's Gemini Batch API, spoken to over real HTTP on loopback:
batches made inline and from an uploaded JSONL file, every state reached by moving the batch
clock by hand (never by sleeping), the results (inline, and a file streamed from disk), the
faults that act out a whole batch's and a single request's failures, and the one bill a batch
makes."""

from __future__ import annotations

import base64
import functools
import io
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from conftest import Direct as Served
from PIL import Image

from nanoedit.sandbox import sample_image
from nanoedit.sandbox.batching import BatchBill

KEY = "gemini-test-key"
CAT, _ = sample_image("cat.png")
FLASH = "gemini-nano-banana-2.1"
PRO = "gemini-3-pro-image"
CREATE = f"/v1beta/models/{FLASH}:batchGenerateContent"
HOUR = 3600.0


@pytest.fixture
def serve(serve_direct: Callable[..., Served]) -> Callable[..., Served]:
    """Sandboxes taking KEY, each with a client that sends it."""
    return functools.partial(serve_direct, KEY, {"x-goog-api-key": KEY})


def request(prompt: str, *parts: dict[str, Any]) -> dict[str, Any]:
    """A generateContent body asking for an image."""
    return {
        "contents": [{"role": "user", "parts": [*parts, {"text": prompt}]}],
        "generationConfig": {"responseModalities": ["IMAGE"]},
    }


def inline_batch(served: Served, count: int, name: str = "four cats") -> dict[str, Any]:
    """Make an inline batch of ``count`` requests (metadata keys k0, k1…); its operation."""
    requests = [
        {"request": request(f"cat {index}"), "metadata": {"key": f"k{index}"}}
        for index in range(count)
    ]
    body = {"batch": {"displayName": name, "inputConfig": {"requests": {"requests": requests}}}}
    answer = served.client.post(CREATE, json=body)
    assert answer.status_code == 200, answer.text
    operation: dict[str, Any] = answer.json()
    return operation


def read(served: Served, name: str) -> dict[str, Any]:
    """GET a batch's operation."""
    answer = served.client.get(f"/v1beta/{name}")
    assert answer.status_code == 200, answer.text
    operation: dict[str, Any] = answer.json()
    return operation


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def upload(served: Served, data: bytes, mime: str) -> dict[str, Any]:
    """Upload bytes through the Files API's resumable protocol; the file object."""
    start = served.client.post(
        "/upload/v1beta/files",
        headers={
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(len(data)),
            "X-Goog-Upload-Header-Content-Type": mime,
        },
        json={"file": {"displayName": "input"}},
    )
    url = start.headers["X-Goog-Upload-URL"]
    done = httpx.post(
        url,
        content=data,
        headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
    )
    assert done.status_code == 200, done.text
    file: dict[str, Any] = done.json()["file"]
    return file


def image_of(response: dict[str, Any]) -> bytes:
    """The image of an answer (the part that is not a thought)."""
    [image] = [
        part["inlineData"]["data"]
        for part in response["candidates"][0]["content"]["parts"]
        if "inlineData" in part and not part.get("thought")
    ]
    return base64.b64decode(image)


def test_a_batch_moves_on_only_when_its_clock_is_moved_and_answers_as_generate_content(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    made = inline_batch(served, 4)
    name = made["name"]
    assert name.startswith("batches/") and "done" not in made
    meta = made["metadata"]
    assert (meta["state"], meta["displayName"], meta["model"]) == (
        "BATCH_STATE_PENDING",
        "four cats",
        f"models/{FLASH}",
    )
    assert meta["batchStats"] == {"requestCount": "4", "pendingRequestCount": "4"}
    created = stamp(meta["createTime"])
    clock = served.sandbox.batch_clock
    assert clock.now() == pytest.approx(created)

    clock.advance(59)
    assert read(served, name)["metadata"]["state"] == "BATCH_STATE_PENDING"
    clock.advance(1)
    running = read(served, name)["metadata"]
    assert running["state"] == "BATCH_STATE_RUNNING"
    assert running["batchStats"] == {"requestCount": "4", "pendingRequestCount": "4"}
    clock.advance(150)  # halfway through the 300 s it runs: half its requests are answered
    halfway = read(served, name)["metadata"]
    assert halfway["batchStats"] == {
        "requestCount": "4",
        "successfulRequestCount": "2",
        "pendingRequestCount": "2",
    }
    assert "output" not in halfway
    assert served.sandbox.batch_bills() == []
    clock.advance(150)
    done = read(served, name)
    meta = done["metadata"]
    assert (done["done"], meta["state"]) == (True, "BATCH_STATE_SUCCEEDED")
    assert meta["batchStats"] == {"requestCount": "4", "successfulRequestCount": "4"}
    assert stamp(meta["endTime"]) - created == pytest.approx(360)
    responses = meta["output"]["inlinedResponses"]["inlinedResponses"]
    assert done["response"]["inlinedResponses"]["inlinedResponses"] == responses
    assert [entry["metadata"] for entry in responses] == [{"key": f"k{i}"} for i in range(4)]
    # Each answer is what generateContent answers for the same request, byte for byte.
    for index, entry in enumerate(responses):
        direct = served.client.post(
            f"/v1beta/models/{FLASH}:generateContent", json=request(f"cat {index}")
        ).json()
        assert entry["response"]["candidates"] == direct["candidates"]
        assert entry["response"]["usageMetadata"] == direct["usageMetadata"]
        with Image.open(io.BytesIO(image_of(entry["response"]))) as image:
            assert (image.format, image.size) == ("JPEG", (1024, 1024))
    assert served.sandbox.batch_bills() == [
        BatchBill(name, f"models/{FLASH}", "BATCH_STATE_SUCCEEDED", 4)
    ]


def test_a_file_batch_writes_a_results_file_served_by_streaming(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    cat = upload(served, CAT, "image/png")
    part = {"fileData": {"fileUri": cat["uri"], "mimeType": "image/png"}}
    lines = [
        json.dumps({"key": "hat", "request": request("add a hat", part)}),
        "",  # a blank line is no request
        "{not json",
        json.dumps({"key": "bow", "request": request("add a bow", part)}),
    ]
    jsonl = upload(served, ("\n".join(lines) + "\n").encode(), "application/jsonl")
    body = {"batch": {"displayName": "edits", "inputConfig": {"fileName": jsonl["name"]}}}
    made = served.client.post(f"/v1beta/models/{PRO}:batchGenerateContent", json=body).json()
    assert made["metadata"]["inputConfig"] == {"fileName": jsonl["name"]}
    assert made["metadata"]["batchStats"]["requestCount"] == "3"
    served.sandbox.batch_clock.advance(360)
    done = read(served, made["name"])
    results = done["metadata"]["output"]["responsesFile"]
    assert done["response"] == {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main."
        "GenerateContentBatchOutput",
        "responsesFile": results,
    }
    assert done["metadata"]["batchStats"] == {
        "requestCount": "3",
        "successfulRequestCount": "2",
        "failedRequestCount": "1",
    }
    with served.client.stream(
        "GET", f"/download/v1beta/{results}:download", params={"alt": "media"}
    ) as download:
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/jsonl"
        assert "transfer-encoding" not in download.headers
        data = download.read()
    assert int(download.headers["content-length"]) == len(data)
    hat, broken, bow = (json.loads(line) for line in data.decode().splitlines())
    assert (hat["key"], bow["key"]) == ("hat", "bow")
    assert broken == {"error": {"code": 3, "message": "Invalid JSON on line 2 of the input file."}}
    for line in (hat, bow):
        with Image.open(io.BytesIO(image_of(line["response"]))) as image:
            assert (image.format, image.size) == ("JPEG", (1200, 896))  # the cat's 4:3 at 1K
    # The SDK's route gives the same bytes, and the file's metadata says it was made here.
    same = served.client.get(f"/v1beta/{results}:download", params={"alt": "media"})
    assert same.content == data
    head = served.client.head(f"/v1beta/{results}:download", params={"alt": "media"})
    assert (head.status_code, head.headers["content-length"], head.content) == (
        200,
        str(len(data)),
        b"",
    )
    about = served.client.get(f"/v1beta/{results}").json()
    assert (about["source"], about["sizeBytes"]) == ("GENERATED", str(len(data)))
    assert served.sandbox.batch_bills()[0].requests == 2


def test_a_results_file_is_refused_before_the_batch_ends(serve: Callable[..., Served]) -> None:
    served = serve()
    jsonl = upload(
        served, json.dumps({"key": "a", "request": request("a cat")}).encode(), "text/plain"
    )
    body = {"batch": {"inputConfig": {"fileName": jsonl["name"]}}}
    made = served.client.post(CREATE, json=body).json()
    results = "files/batch-" + made["name"].removeprefix("batches/")
    early = served.client.get(f"/v1beta/{results}:download", params={"alt": "media"})
    assert early.status_code == 403
    assert early.json()["error"]["status"] == "PERMISSION_DENIED"
    assert "displayName" not in made["metadata"]


def test_a_batch_not_ended_in_48_hours_expires_with_nothing_to_read_or_bill(
    serve: Callable[..., Served],
) -> None:
    served = serve(faults="batch-expired")
    name = inline_batch(served, 2)["name"]
    clock = served.sandbox.batch_clock
    clock.advance(48 * HOUR - 1)
    assert read(served, name)["metadata"]["state"] == "BATCH_STATE_PENDING"
    clock.advance(1)
    expired = read(served, name)
    assert (expired["done"], expired["metadata"]["state"]) == (True, "BATCH_STATE_EXPIRED")
    assert "output" not in expired["metadata"] and "response" not in expired
    assert served.sandbox.batch_bills() == []


def test_a_batch_still_running_at_48_hours_expires_and_drops_what_it_did(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    served.sandbox.batch_clock.running_seconds = 96 * HOUR
    name = inline_batch(served, 4)["name"]
    served.sandbox.batch_clock.advance(48 * HOUR)
    expired = read(served, name)["metadata"]
    assert expired["state"] == "BATCH_STATE_EXPIRED"
    assert expired["batchStats"] == {"requestCount": "4", "successfulRequestCount": "1"}
    assert "output" not in expired
    assert served.sandbox.batch_bills() == []


def test_a_failed_batch_has_an_error_and_no_results(serve: Callable[..., Served]) -> None:
    served = serve(faults="batch-failed")
    name = inline_batch(served, 2)["name"]
    served.sandbox.batch_clock.advance(60)
    failed = read(served, name)
    assert (failed["done"], failed["metadata"]["state"]) == (True, "BATCH_STATE_FAILED")
    assert failed["error"]["code"] == 13
    assert "response" not in failed and "output" not in failed["metadata"]
    served.sandbox.batch_clock.advance(HOUR)
    assert read(served, name)["metadata"]["state"] == "BATCH_STATE_FAILED"
    assert served.sandbox.batch_bills() == []


def test_a_cancel_mid_run_keeps_and_bills_what_was_finished(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    name = inline_batch(served, 4)["name"]
    served.sandbox.batch_clock.advance(60 + 150)
    cancelled = served.client.post(f"/v1beta/{name}:cancel")
    assert (cancelled.status_code, cancelled.json()) == (200, {})
    served.sandbox.batch_clock.advance(HOUR)  # a cancelled batch goes no further
    after = read(served, name)
    meta = after["metadata"]
    assert (after["done"], meta["state"]) == (True, "BATCH_STATE_CANCELLED")
    assert meta["batchStats"] == {"requestCount": "4", "successfulRequestCount": "2"}
    responses = meta["output"]["inlinedResponses"]["inlinedResponses"]
    assert [entry["metadata"]["key"] for entry in responses] == ["k0", "k1"]
    assert served.sandbox.batch_bills() == [
        BatchBill(name, f"models/{FLASH}", "BATCH_STATE_CANCELLED", 2)
    ]
    # Cancelling an ended batch changes nothing.
    assert served.client.post(f"/v1beta/{name}:cancel").status_code == 200
    assert read(served, name)["metadata"]["state"] == "BATCH_STATE_CANCELLED"
    assert len(served.sandbox.batch_bills()) == 1


def test_a_batch_cancelled_elsewhere_halfway_keeps_its_first_half(
    serve: Callable[..., Served],
) -> None:
    served = serve(faults="batch-cancelled")
    name = inline_batch(served, 4)["name"]
    served.sandbox.batch_clock.advance(60 + 149)
    assert read(served, name)["metadata"]["state"] == "BATCH_STATE_RUNNING"
    served.sandbox.batch_clock.advance(1)
    meta = read(served, name)["metadata"]
    assert meta["state"] == "BATCH_STATE_CANCELLED"
    assert len(meta["output"]["inlinedResponses"]["inlinedResponses"]) == 2


def test_requests_fail_one_by_one_inside_a_batch_that_succeeds(
    serve: Callable[..., Served],
) -> None:
    served = serve(faults="batch-request-error,image-safety,prompt-blocked")
    name = inline_batch(served, 4)["name"]
    served.sandbox.batch_clock.advance(360)
    meta = read(served, name)["metadata"]
    assert meta["state"] == "BATCH_STATE_SUCCEEDED"
    assert meta["batchStats"] == {
        "requestCount": "4",
        "successfulRequestCount": "3",
        "failedRequestCount": "1",
    }
    errored, blocked_image, blocked_prompt, drawn = meta["output"]["inlinedResponses"][
        "inlinedResponses"
    ]
    assert errored["error"]["code"] == 13 and "response" not in errored
    assert errored["metadata"] == {"key": "k0"}
    assert blocked_image["response"]["candidates"][0]["finishReason"] == "IMAGE_SAFETY"
    assert blocked_prompt["response"]["promptFeedback"] == {"blockReason": "PROHIBITED_CONTENT"}
    assert image_of(drawn["response"])[:3] == b"\xff\xd8\xff"
    # Only the request that made an image is charged.
    assert [bill.requests for bill in served.sandbox.batch_bills()] == [1]
    assert served.sandbox.pending_faults() == []


def test_a_request_google_refuses_is_an_error_line_not_a_refused_batch(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    bad = request("a cat")
    bad["generationConfig"]["imageConfig"] = {"imageSize": "8K"}
    requests = [{"request": bad}, {"request": request("a dog")}]
    body = {"batch": {"inputConfig": {"requests": {"requests": requests}}}}
    name = served.client.post(CREATE, json=body).json()["name"]
    served.sandbox.batch_clock.advance(360)
    refused, drawn = read(served, name)["metadata"]["output"]["inlinedResponses"][
        "inlinedResponses"
    ]
    assert refused["error"]["code"] == 3
    assert "'8K' is not supported by gemini-nano-banana-2.1" in refused["error"]["message"]
    assert "response" in drawn and "metadata" not in drawn


def test_one_batch_of_many_requests_is_one_paid_request_and_one_bill(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    name = inline_batch(served, 6)["name"]
    served.sandbox.batch_clock.advance(360)
    read(served, name)
    paid = [r for r in served.sandbox.received if r.method == "POST" and "Content" in r.path]
    assert [r.path for r in paid] == [CREATE]
    assert served.sandbox.batch_bills() == [
        BatchBill(name, f"models/{FLASH}", "BATCH_STATE_SUCCEEDED", 6)
    ]


def test_batches_are_listed_newest_first_a_page_at_a_time(serve: Callable[..., Served]) -> None:
    served = serve()
    names = [inline_batch(served, 1, f"batch {index}")["name"] for index in range(3)]
    first = served.client.get("/v1beta/batches", params={"pageSize": 2}).json()
    assert [op["name"] for op in first["operations"]] == names[:0:-1]
    second = served.client.get(
        "/v1beta/batches", params={"pageSize": 2, "pageToken": first["nextPageToken"]}
    ).json()
    assert [op["name"] for op in second["operations"]] == names[:1]
    assert "nextPageToken" not in second
    wrong = served.client.get("/v1beta/batches", params={"pageToken": "nope"})
    assert wrong.status_code == 400 and "nextPageToken" in wrong.json()["error"]["message"]


def test_a_deleted_batch_is_gone(serve: Callable[..., Served]) -> None:
    served = serve()
    name = inline_batch(served, 1)["name"]
    deleted = served.client.delete(f"/v1beta/{name}")
    assert (deleted.status_code, deleted.json()) == (200, {})
    gone = served.client.get(f"/v1beta/{name}")
    assert gone.status_code == 404
    assert gone.json() == {
        "error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}
    }
    assert served.client.delete(f"/v1beta/{name}").status_code == 404
    served.sandbox.batch_clock.advance(HOUR)
    assert served.sandbox.batch_bills() == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({}, 400, "batch is not specified"),
        ({"batch": {"displayName": "x"}}, 400, "input_config is not specified"),
        (
            {"batch": {"inputConfig": {"fileName": "files/abc", "requests": {"requests": []}}}},
            400,
            "exactly one of file_name and requests",
        ),
        ({"batch": {"inputConfig": {"requests": {"requests": []}}}}, 400, "must not be empty"),
        (
            {"batch": {"inputConfig": {"requests": {"requests": [{"metadata": {}}]}}}},
            400,
            "requests[0].request: request is not specified",
        ),
        ({"batch": {"inputConfig": {"fileName": "files/nosuchfile"}}}, 403, "nosuchfile"),
        ({"batch": {"inputConfig": {"fileName": "abc"}}}, 400, "name a file of the Files API"),
    ],
)
def test_a_batch_google_would_refuse_is_refused_in_its_words(
    serve: Callable[..., Served], body: dict[str, Any], status: int, words: str
) -> None:
    served = serve()
    answer = served.client.post(CREATE, json=body)
    assert answer.status_code == status
    assert words in answer.json()["error"]["message"]
    assert served.client.get("/v1beta/batches").json() == {}


def test_an_unknown_model_and_a_body_over_20_mb_are_refused(serve: Callable[..., Served]) -> None:
    served = serve()
    body = {"batch": {"inputConfig": {"requests": {"requests": [{"request": request("x")}]}}}}
    unknown = served.client.post("/v1beta/models/gemini-9-image:batchGenerateContent", json=body)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"].startswith(
        "models/gemini-9-image is not found for API version v1beta, or is not supported for "
        "batchGenerateContent."
    )
    huge = {"request": request("x" * (21 * 1024 * 1024))}
    big = served.client.post(
        CREATE, json={"batch": {"inputConfig": {"requests": {"requests": [huge]}}}}
    )
    assert big.status_code == 400
    assert big.json()["error"]["message"] == (
        "Request payload size exceeds the limit: 20971520 bytes."
    )


def test_the_control_route_moves_the_batch_clock_for_another_process(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    name = inline_batch(served, 1)["name"]
    before = served.sandbox.batch_clock.now()
    moved = httpx.post(f"{served.base_url}/sandbox/batch-clock", json={"advance": 360})
    assert moved.status_code == 200
    assert moved.json()["now"] == pytest.approx(before + 360)
    assert read(served, name)["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    wrong = httpx.post(f"{served.base_url}/sandbox/batch-clock", json={"advance": -1})
    assert wrong.status_code == 400 and "advance" in wrong.json()["error"]
    with pytest.raises(ValueError, match="forward only"):
        served.sandbox.batch_clock.advance(-1)


def test_a_status_fault_on_create_makes_no_batch(serve: Callable[..., Served]) -> None:
    served = serve(faults="submit:503")
    body = {"batch": {"inputConfig": {"requests": {"requests": [{"request": request("x")}]}}}}
    refused = served.client.post(CREATE, json=body)
    assert (refused.status_code, refused.json()["error"]["status"]) == (503, "UNAVAILABLE")
    assert served.client.get("/v1beta/batches").json() == {}
