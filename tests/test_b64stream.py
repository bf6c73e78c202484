"""Base64 values of a JSON answer streamed into sinks: byte-exact round trips over random
images cut at random places, JSON escapes, data: URIs, the JSON kept, errors, and memory."""

from __future__ import annotations

import base64
import io
import json
import random
import tracemalloc
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

import pytest
from PIL import Image

from nanoedit.b64stream import (
    MIN_CHARS,
    Base64StreamError,
    JsonBase64Stream,
    JsonPath,
    Sink,
    Streamed,
    format_path,
)
from nanoedit.backends.base import backend_classes

# The keys every registered backend says its images come under.
KEYS = frozenset().union(*(backend.base64_keys for backend in backend_classes()))
# Small enough that a test image is streamed, not kept.
MIN = 256


class Sinks:
    """Opens a BytesIO per streamed value and remembers what it was opened for."""

    def __init__(self) -> None:
        self.opened: list[tuple[JsonPath, str | None, io.BytesIO]] = []

    def __call__(self, path: JsonPath, media_type: str | None) -> io.BytesIO:
        sink = io.BytesIO()
        self.opened.append((path, media_type, sink))
        return sink

    def contents(self) -> list[bytes]:
        return [sink.getvalue() for _, _, sink in self.opened]


def stream_json(
    chunks: Iterable[bytes],
    open_sink: Callable[[JsonPath, str | None], Sink],
    *,
    keys: Collection[str] = KEYS,
    min_chars: int = MIN_CHARS,
) -> Streamed:
    """Read a whole document from ``chunks`` through a :class:`JsonBase64Stream`, as
    ``JobHttp`` feeds it an answer."""
    stream = JsonBase64Stream(open_sink, keys=keys, min_chars=min_chars)
    for chunk in chunks:
        stream.feed(chunk)
    return stream.close()


def noise_image(rng: random.Random, fmt: str) -> bytes:
    """A picture of random pixels (it does not compress), as PNG or JPEG bytes."""
    width, height = rng.randrange(8, 120), rng.randrange(8, 120)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def pieces(data: bytes, rng: random.Random, most: int = 60) -> Iterator[bytes]:
    """``data`` cut at random places (some pieces a single byte)."""
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randrange(1, most))))
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        yield data[start:end]


def streamed(document: bytes, rng: random.Random, **options: Any) -> tuple[Streamed, Sinks]:
    sinks = Sinks()
    return stream_json(pieces(document, rng), sinks, min_chars=MIN, **options), sinks


def restored(result: Streamed, value: Any) -> Any:
    """The parsed kept JSON with each placeholder put back as the base64 it stood for."""
    if isinstance(value, dict):
        return {key: restored(result, item) for key, item in value.items()}
    if isinstance(value, list):
        return [restored(result, item) for item in value]
    found = result.value_of(value)
    if found is None:
        return value
    assert isinstance(found.sink, io.BytesIO)
    data = base64.b64encode(found.sink.getvalue()).decode()
    return f"data:{found.media_type};base64,{data}" if found.media_type else data


@pytest.mark.parametrize("seed", range(12))
def test_openai_answers_round_trip_byte_for_byte_wherever_the_chunks_break(seed: int) -> None:
    rng = random.Random(seed)
    images = [noise_image(rng, rng.choice(["PNG", "JPEG"])) for _ in range(rng.randrange(1, 4))]
    answer = {
        "created": 1_700_000_000,
        "data": [
            {"revised_prompt": "a hat", "url": "", "b64_json": base64.b64encode(image).decode()}
            for image in images
        ],
        "usage": {"prompt_tokens": 7, "total_tokens": 1297},
    }
    document = json.dumps(answer, indent=rng.choice([None, 2])).encode()
    result, sinks = streamed(document, rng)
    assert sinks.contents() == images
    assert [(path, media) for path, media, _ in sinks.opened] == [
        (("data", index, "b64_json"), None) for index in range(len(images))
    ]
    assert [value.size for value in result.values] == [len(image) for image in images]
    assert restored(result, result.load()) == answer
    assert len(result.kept) < 600  # the images are not in it
    with Image.open(io.BytesIO(sinks.contents()[0])) as first:
        assert first.size == Image.open(io.BytesIO(images[0])).size


@pytest.mark.parametrize("seed", range(6))
def test_gemini_answers_keep_text_parts_and_flags_for_json_loads(seed: int) -> None:
    rng = random.Random(100 + seed)
    draft, final = noise_image(rng, "PNG"), noise_image(rng, "PNG")
    answer = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "**Planning**\n\nA hat.", "thought": True},
                        {
                            "inlineData": {"mimeType": "image/png", "data": b64(draft)},
                            "thought": True,
                        },
                        {"text": "Here is the edited image."},
                        {"inlineData": {"mimeType": "image/png", "data": b64(final)}},
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 265, "candidatesTokenCount": 1290},
        "modelVersion": "gemini-3-pro-image-preview",
    }
    result, sinks = streamed(json.dumps(answer).encode(), rng)
    assert sinks.contents() == [draft, final]
    parts = result.load()["candidates"][0]["content"]["parts"]
    assert [value.path for value in result.values] == [
        ("candidates", 0, "content", "parts", index, "inlineData", "data") for index in (1, 3)
    ]
    assert [result.value_of(part["inlineData"]["data"]) for part in parts[1::2]] == list(
        result.values
    )
    assert [part.get("thought", False) for part in parts] == [True, True, False, False]
    assert restored(result, result.load()) == answer


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_data_uri_gives_its_media_type_and_its_payload() -> None:
    rng = random.Random(7)
    image = noise_image(rng, "JPEG")
    answer = {
        "choices": [
            {
                "message": {
                    "content": "Here you go.",
                    "images": [
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/jpeg;base64,{b64(image)}"},
                        }
                    ],
                }
            }
        ]
    }
    result, sinks = streamed(json.dumps(answer).encode(), rng)
    assert sinks.opened[0][:2] == (
        ("choices", 0, "message", "images", 0, "image_url", "url"),
        "image/jpeg",
    )
    assert sinks.contents() == [image]
    assert restored(result, result.load()) == answer


@pytest.mark.parametrize(
    "writing",
    [
        "slashes escaped, as PHP writes them",
        "lines of 76 with \\n",
        "lines of 64 with \\r\\n",
        "every character as \\u00XX",
        "spaces and tabs",
        "padding left out",
    ],
)
def test_escapes_whitespace_and_missing_padding_are_read_at_every_cut(writing: str) -> None:
    # n % 3 == 1: the text ends in "==". Six escape characters per character make the
    # document six times as long, and every cut is tried: a shorter image keeps it quick.
    size = 100 if writing.startswith("every") else 700
    data = random.Random(3).randbytes(size)
    text = b64(data)
    if writing.startswith("slashes"):
        raw = text.replace("/", "\\/")
    elif writing.startswith("lines of 76"):
        raw = "\\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    elif writing.startswith("lines of 64"):
        raw = "\\r\\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    elif writing.startswith("every"):
        raw = "".join(
            f"\\u{ord(c):04X}" if i % 2 else f"\\u{ord(c):04x}" for i, c in enumerate(text)
        )
    elif writing.startswith("spaces"):
        raw = " ".join(text[i : i + 10] for i in range(0, len(text), 10)) + "\\t "
    else:
        raw = text.rstrip("=")
    document = ('{"b64_json": "' + raw + '", "n": 1}').encode()
    assert json.loads(document)["n"] == 1  # the writing is valid JSON
    # Every place a first cut can fall, then the rest one byte at a time.
    for cut in range(1, len(document)):
        sinks = Sinks()
        stream = JsonBase64Stream(sinks, keys=KEYS, min_chars=MIN)
        stream.feed(document[:cut])
        for byte in range(cut, min(len(document), cut + 40)):
            stream.feed(document[byte : byte + 1])
        stream.feed(document[cut + 40 :])
        result = stream.close()
        assert sinks.contents() == [data], cut
        assert result.load()["n"] == 1


def test_short_values_and_other_keys_are_kept_as_they_are() -> None:
    rng = random.Random(5)
    long_text = "x" * 5000  # long, but under a key that is not streamed
    answer = {
        "data": [
            {"url": "https://cdn.example/files/r.png?X-Amz-Signature=" + "ab" * 600},
            {"b64_json": b64(b"small")},
        ],
        "text": long_text,
        "nested": {"data": {"b64_json": ""}},
    }
    document = json.dumps(answer).encode()
    sinks = Sinks()
    result = stream_json(pieces(document, rng), sinks, min_chars=4096)
    assert sinks.opened == [] and result.values == ()
    assert result.kept == document
    assert result.load() == answer


def test_only_the_keys_given_are_streamed() -> None:
    answer = {"b64_json": b64(bytes(600)), "picture": b64(bytes(range(256)) * 3)}
    sinks = Sinks()
    result = stream_json([json.dumps(answer).encode()], sinks, keys={"picture"}, min_chars=MIN)
    assert sinks.contents() == [bytes(range(256)) * 3]
    assert result.load()["b64_json"] == answer["b64_json"]


def test_format_path_writes_paths_as_json_paths_are_written() -> None:
    assert format_path(("candidates", 0, "content", "parts", 3, "inlineData", "data")) == (
        "candidates[0].content.parts[3].inlineData.data"
    )
    assert format_path(()) == "the document"


VALUE = b64(random.Random(9).randbytes(600))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            VALUE[:300] + "!" + VALUE[300:],
            "the value is not base64 (it holds '!') (in data[0].b64_json, at byte 324)",
        ),
        (
            VALUE[:300] + "\\u00e9" + VALUE[300:],
            "the value is not base64 (it holds the escape \\u00e9) (in data[0].b64_json, at byte 24)",
        ),
        (
            VALUE[:300] + "\\b" + VALUE[300:],
            "the value is not base64 (it holds the escape \\b) (in data[0].b64_json, at byte 24)",
        ),
        (
            VALUE[:300] + "\\\\" + VALUE[300:],
            "the value is not base64 (it holds \\\\) (in data[0].b64_json, at byte 24)",
        ),
        (
            VALUE[:400] + "=" + VALUE[401:],
            "the base64 text goes on after its padding (in data[0].b64_json, at byte 24)",
        ),
        (
            "QUJD" * 100 + "Q===",
            "the value is not base64 (its padding is wrong) (in data[0].b64_json, at byte 24)",
        ),
        (
            "QUJD" * 100 + "QQ==" + "QUJD",
            "the base64 text goes on after its padding (in data[0].b64_json, at byte 24)",
        ),
        (
            "QUJD" * 100 + "Q",
            "the base64 text ends with a lone character: it was cut short (in data[0].b64_json, at byte 425)",
        ),
        (
            "data:text/plain," + "A" * 400,
            "the value is a data: URI that is not base64 (in data[0].b64_json, at byte 24)",
        ),
    ],
    ids=[
        "bad character",
        "escape of a letter",
        "backspace",
        "backslash",
        "padding inside",
        "padding",
        "after padding",
        "lone character",
        "data URI",
    ],
)
def test_what_is_not_base64_is_named_with_where_it_is(value: str, message: str) -> None:
    document = ('{"data": [{"b64_json": "' + value + '"}]}').encode()
    sinks = Sinks()
    with pytest.raises(Base64StreamError) as caught:
        stream_json([document], sinks, min_chars=MIN)
    assert str(caught.value) == message
    assert caught.value.path == ("data", 0, "b64_json")


def test_an_answer_cut_short_inside_a_value_is_an_error_and_its_sink_is_known() -> None:
    document = json.dumps({"data": [{"b64_json": VALUE}]}).encode()
    sinks = Sinks()
    stream = JsonBase64Stream(sinks, keys=KEYS, min_chars=MIN)
    stream.feed(document[:500])
    with pytest.raises(Base64StreamError) as caught:
        stream.close()
    assert str(caught.value) == (
        "the answer ends inside a base64 value: it was cut short (in data[0].b64_json, at byte 500)"
    )
    assert stream.opened == [sinks.opened[0][2]]


def test_an_answer_cut_short_elsewhere_fails_to_parse() -> None:
    document = json.dumps({"data": [{"b64_json": VALUE}], "usage": {"total_tokens": 12}}).encode()
    result = stream_json([document[:-10]], Sinks(), min_chars=MIN)
    with pytest.raises(json.JSONDecodeError):
        result.load()


def test_memory_stays_at_a_chunk_however_long_the_value() -> None:
    data = random.Random(11).randbytes(6_000_000)
    document = json.dumps({"data": [{"b64_json": b64(data)}]}).encode()
    chunks = [document[i : i + 65536] for i in range(0, len(document), 65536)]
    del document

    class Counting:
        size = 0

        def write(self, piece: bytes) -> None:
            self.size += len(piece)

    sink = Counting()
    tracemalloc.start()
    try:
        result = stream_json(chunks, lambda path, media: sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size == len(data) and result.values[0].size == len(data)
    # The 8 MB of text pass through in pieces: what is held at once is about a chunk or two.
    assert peak < 400_000
