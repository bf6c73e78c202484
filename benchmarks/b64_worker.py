"""The measured side of benchmark 6 (``benchmarks/run.py --only b64``), run in a process of
its own so that its memory figures are its own.

    python benchmarks/b64_worker.py speed BODY ROUNDS
    python benchmarks/b64_worker.py memory stream|whole|baseline BODY OUT
    python benchmarks/b64_worker.py serve PORT BODY

BODY is a JSON answer in OpenAI's shape with one image as ``data[0].b64_json``. ``speed``
prints one JSON line of MB/s (MB = 10^6 bytes of base64 text) for three ways of decoding it,
each the best of ROUNDS, taken in turns: ``nanoedit.b64stream`` fed the body in the pieces
nanoedit reads an answer in (``nanoedit.net.http.STREAM_CHUNK``), ``base64.b64decode`` over the
whole base64 text, and what nanoedit's backends did before they streamed (``json.loads`` of
the body, then ``decode_base64``). ``memory`` writes the image to OUT one way (``stream``:
the body read in pieces through
``b64stream`` into the file; ``whole``: the body read whole, ``json.loads``,
``decode_base64``, the bytes written), or does nothing after the imports (``baseline``); its
peak RSS is read by whoever started it (``os.wait4``). ``serve`` answers every POST on
127.0.0.1:PORT with BODY (as an OpenAI-compatible server answers an edit with
``response_format=b64_json``), so that nanoedit itself can be measured receiving it.
"""

from __future__ import annotations

import base64
import http.server
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from nanoedit.b64stream import JsonBase64Stream, Sink
from nanoedit.backends.base import decode_base64
from nanoedit.net.http import STREAM_CHUNK

CHUNK = STREAM_CHUNK


# The answers here are OpenAI's shape: the image under data[0].b64_json.
KEYS = frozenset({"b64_json"})


def stream_json(pieces: Iterable[bytes], open_sink: Callable[..., Sink]) -> None:
    """Feed a whole answer through the decoder, as ``JobHttp`` feeds it as it arrives."""
    stream = JsonBase64Stream(open_sink, keys=KEYS)
    for piece in pieces:
        stream.feed(piece)
    stream.close()


def chunks(handle: BinaryIO) -> Iterator[bytes]:
    """The file in pieces of CHUNK bytes."""
    while piece := handle.read(CHUNK):
        yield piece


class Discard:
    """A sink that counts what it is given and keeps none of it."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)


def speed(body_path: Path, rounds: int) -> dict[str, float]:
    body = body_path.read_bytes()
    pieces = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    text = json.loads(body)["data"][0]["b64_json"].encode()
    expected = len(base64.b64decode(text))

    def streamed() -> None:
        sink = Discard()
        stream_json(pieces, lambda path, media_type: sink)
        assert sink.size == expected

    def whole() -> None:
        assert len(base64.b64decode(text)) == expected

    def today() -> None:
        assert len(decode_base64(json.loads(body)["data"][0]["b64_json"], "bench")) == expected

    ways: dict[str, Callable[[], None]] = {
        "stream": streamed,
        "b64decode": whole,
        "json_loads_decode_base64": today,
    }
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(rounds):
        for name, way in ways.items():
            started = time.perf_counter()
            way()
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: len(text) / seconds / 1e6 for name, seconds in best.items()}


def memory(way: str, body_path: Path, out_path: Path) -> None:
    if way == "stream":
        with body_path.open("rb") as body, out_path.open("wb") as out:
            stream_json(chunks(body), lambda path, media_type: out)
    elif way == "whole":
        answer = json.loads(body_path.read_bytes())
        out_path.write_bytes(decode_base64(answer["data"][0]["b64_json"], "bench"))
    elif way != "baseline":
        raise SystemExit(f"unknown way {way!r}: stream, whole or baseline")


def serve(port: int, body_path: Path) -> None:
    """Answer every POST with the body, until stopped (SIGINT)."""
    body = body_path.read_bytes()

    class Answer(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            # The request (the input image) is read and dropped; the answer is always BODY.
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Answer)
    server.daemon_threads = True
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str]) -> None:
    """Run one measurement, or serve the answer."""
    if argv[:1] == ["serve"] and len(argv) == 3:
        serve(int(argv[1]), Path(argv[2]))
    elif argv[:1] == ["speed"] and len(argv) == 3:
        print(json.dumps(speed(Path(argv[1]), int(argv[2]))))
    elif argv[:1] == ["memory"] and len(argv) == 4:
        memory(argv[1], Path(argv[2]), Path(argv[3]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
