"""The sandbox's Gemini Batch API judged by Google's own ``google-genai`` SDK: ``client.batches``
create (inline and from an uploaded JSONL file), get, list, cancel and delete, and
``client.files.download`` of a results file, against a served sandbox whose batch clock the
test moves. Where the SDK and the sandbox disagree, the sandbox is wrong."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Served
from PIL import Image

from nanoedit.sandbox import Sandbox, SandboxServer, sample_image

try:
    from google import genai
    from google.genai import errors, types
except ImportError as exc:  # in the test extra: pip install -e '.[test]'
    pytest.skip(
        f"Google's SDK is needed ({exc.name} is missing): pip install -e '.[test]'",
        allow_module_level=True,
    )

GEMINI_KEY = "AIza-test-gemini-key-0003"
CAT, _ = sample_image("cat.png")
FLASH = "gemini-nano-banana-2.1"
PRO = "gemini-3-pro-image"
DONE = 360.0  # the default 60 s pending and 300 s running


@pytest.fixture
def served() -> Iterator[Served]:
    """The sandbox over real HTTP on 127.0.0.1, knowing the Gemini key."""
    sandbox = Sandbox(keys=frozenset({GEMINI_KEY}))
    with SandboxServer(sandbox) as server:
        yield Served(sandbox, server.base_url)


@pytest.fixture
def google(served: Served) -> Iterator[genai.Client]:
    """Google's own client, pointed at the sandbox."""
    options = types.HttpOptions(base_url=served.base_url)
    with genai.Client(api_key=GEMINI_KEY, http_options=options) as client:
        yield client


def inline(count: int) -> list[types.InlinedRequestDict]:
    """``count`` image requests as the SDK takes them inline, keyed in their metadata."""
    requests: list[types.InlinedRequestDict] = []
    for index in range(count):
        content: types.ContentDict = {"role": "user", "parts": [{"text": f"a cat, take {index}"}]}
        requests.append(
            {
                "contents": [content],
                "config": {"response_modalities": ["IMAGE"]},
                "metadata": {"key": f"k{index}"},
            }
        )
    return requests


def picture(data: bytes) -> tuple[str | None, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.format, image.size


def test_genai_creates_an_inline_batch_and_reads_its_responses(
    served: Served, google: genai.Client
) -> None:
    job = google.batches.create(model=FLASH, src=inline(3), config={"display_name": "cats"})
    assert job.name is not None and job.name.startswith("batches/")
    assert (job.state, job.display_name, job.model, job.done) == (
        types.JobState.JOB_STATE_PENDING,
        "cats",
        f"models/{FLASH}",
        False,
    )
    served.sandbox.batch_clock.advance(60)
    assert google.batches.get(name=job.name).state == types.JobState.JOB_STATE_RUNNING
    served.sandbox.batch_clock.advance(DONE - 60)
    done = google.batches.get(name=job.name)
    assert (done.state, done.done) == (types.JobState.JOB_STATE_SUCCEEDED, True)
    assert done.end_time is not None and done.create_time is not None
    assert (done.end_time - done.create_time).total_seconds() == DONE
    assert done.dest is not None and done.dest.inlined_responses is not None
    keys = [entry.metadata for entry in done.dest.inlined_responses]
    assert keys == [{"key": "k0"}, {"key": "k1"}, {"key": "k2"}]
    for entry in done.dest.inlined_responses:
        assert entry.error is None and entry.response is not None
        assert entry.response.candidates is not None
        assert entry.response.candidates[0].finish_reason == types.FinishReason.STOP
        parts = entry.response.parts or []
        [image] = [part for part in parts if part.inline_data is not None and not part.thought]
        assert image.inline_data is not None and image.inline_data.data is not None
        assert picture(image.inline_data.data) == ("JPEG", (1024, 1024))


def test_genai_makes_a_batch_from_a_jsonl_upload_and_downloads_its_results(
    served: Served, google: genai.Client, tmp_path: Path
) -> None:
    cat = tmp_path / "cat.png"
    cat.write_bytes(CAT)
    uploaded = google.files.upload(file=cat)
    assert uploaded.uri is not None
    lines = [
        {
            "key": f"edit-{index}",
            "request": {
                "contents": [
                    {
                        "role": "user",
                        "parts": [
                            {"file_data": {"file_uri": uploaded.uri, "mime_type": "image/png"}},
                            {"text": f"give it hat number {index}"},
                        ],
                    }
                ],
                "generation_config": {"response_modalities": ["IMAGE"]},
            },
        }
        for index in range(2)
    ]
    jsonl = tmp_path / "requests.jsonl"
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines))
    requests = google.files.upload(
        file=jsonl, config=types.UploadFileConfig(display_name="edits", mime_type="jsonl")
    )
    assert requests.name is not None
    job = google.batches.create(model=PRO, src=requests.name)
    assert job.name is not None
    served.sandbox.batch_clock.advance(DONE)
    done = google.batches.get(name=job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert done.dest is not None and done.dest.file_name is not None
    assert done.dest.file_name.startswith("files/batch-")
    data = google.files.download(file=done.dest.file_name)
    results = [json.loads(line) for line in data.decode().splitlines()]
    assert [result["key"] for result in results] == ["edit-0", "edit-1"]
    for result in results:
        parts = result["response"]["candidates"][0]["content"]["parts"]
        image = parts[-1]["inlineData"]
        assert picture(base64.b64decode(image["data"])) == ("JPEG", (1200, 896))
    assert [bill.requests for bill in served.sandbox.batch_bills()] == [2]


def test_genai_lists_cancels_and_deletes_batches(served: Served, google: genai.Client) -> None:
    names = [google.batches.create(model=FLASH, src=inline(2)).name for _ in range(3)]
    listed = [job.name for job in google.batches.list(config={"page_size": 2})]
    assert listed == names[::-1]
    first, second, third = names
    assert first is not None and second is not None and third is not None
    served.sandbox.batch_clock.advance(60 + 150)
    google.batches.cancel(name=second)
    cancelled = google.batches.get(name=second)
    assert (cancelled.state, cancelled.done) == (types.JobState.JOB_STATE_CANCELLED, True)
    assert cancelled.dest is not None and cancelled.dest.inlined_responses is not None
    assert len(cancelled.dest.inlined_responses) == 1
    deleted = google.batches.delete(name=third)
    assert isinstance(deleted, types.DeleteResourceJob)
    with pytest.raises(errors.ClientError) as gone:
        google.batches.get(name=third)
    assert (gone.value.code, gone.value.status) == (404, "NOT_FOUND")
    served.sandbox.batch_clock.advance(DONE)
    assert google.batches.get(name=first).state == types.JobState.JOB_STATE_SUCCEEDED
    states = {bill.batch: bill.state for bill in served.sandbox.batch_bills()}
    assert states == {second: "BATCH_STATE_CANCELLED", first: "BATCH_STATE_SUCCEEDED"}


@pytest.mark.parametrize(
    ("fault", "moved", "state"),
    [
        ("batch-expired", 48 * 3600.0, types.JobState.JOB_STATE_EXPIRED),
        ("batch-failed", 60.0, types.JobState.JOB_STATE_FAILED),
        ("batch-cancelled", DONE, types.JobState.JOB_STATE_CANCELLED),
    ],
)
def test_genai_reads_the_states_a_fault_brings_a_batch_to(
    served: Served, google: genai.Client, fault: str, moved: float, state: types.JobState
) -> None:
    served.sandbox.add_faults(fault)
    job = google.batches.create(model=FLASH, src=inline(2))
    assert job.name is not None
    served.sandbox.batch_clock.advance(moved)
    ended = google.batches.get(name=job.name)
    assert (ended.state, ended.done) == (state, True)


def test_genai_reads_a_request_error_inside_a_batch(served: Served, google: genai.Client) -> None:
    served.sandbox.add_faults("batch-request-error")
    job = google.batches.create(model=FLASH, src=inline(2))
    assert job.name is not None
    served.sandbox.batch_clock.advance(DONE)
    done = google.batches.get(name=job.name)
    assert done.dest is not None and done.dest.inlined_responses is not None
    failed, drawn = done.dest.inlined_responses
    assert failed.response is None and failed.error is not None
    assert failed.error.code == 13
    assert drawn.error is None and drawn.response is not None
