"""Images that come as base64 inside a JSON answer are streamed into a part file while the
answer arrives, then moved into place: every backend whose answers carry base64, against the
sandbox on a loopback port."""

from __future__ import annotations

import base64
import http.server
import json
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import GEMINI_KEY, OPENAI_KEY, Served, one_backend_env, run_cli
from PIL import Image

import nanoedit.net.http
from nanoedit.errors import ApiError
from nanoedit.net.http import Deadline, JobHttp, RetryPolicy, check_download
from nanoedit.output.parts import PartFile, PartFiles
from nanoedit.run.writer import MAX_DOWNLOAD_BYTES

# A result this large is base64 text longer than b64stream.MIN_CHARS, so it is streamed
# rather than kept in the JSON and decoded in memory.
STREAMED_BYTES = 48 * 1024
JOB = ["generate", "-p", "a red fox", "-m", "nano-banana-2", "--size", "2K", "--no-metadata"]


def saved(folder: Path) -> tuple[bytes, tuple[int, int], list[str]]:
    """The one image in ``folder``: its bytes, its size, and every name in the folder."""
    names = sorted(path.name for path in folder.iterdir())
    (image,) = (folder / name for name in names if name.endswith((".png", ".jpg")))
    with Image.open(image) as opened:
        size = opened.size
    return image.read_bytes(), size, names


# backend, extra options and fault of the streamed run, then those of a run whose image comes
# as a URL to download (the same image: the sandbox draws the same bytes for the same job).
CASES = {
    "openai b64_json": ("openai", ["--response-format", "b64_json"], None,
                        ["--response-format", "url"], None),
    "openai data: URL": ("openai", [], "data-uri", [], None),
    "openrouter data: URL": ("openrouter", [], None, [], "url-result"),
    # duomi renders 2K with Pro only (its NB2 has no size field).
    "duomi data: URL": ("duomi", ["-m", "nano-banana-pro"], "data-uri",
                        ["-m", "nano-banana-pro"], None),
    "fal data: URL": ("fal", [], "data-uri", [], None),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_base64_result_is_streamed_to_disk_with_the_exact_bytes_sent(
    served: Served, case: tuple[str, list[str], str | None, list[str], str | None]
) -> None:
    backend, options, fault, url_options, url_fault = case
    env = one_backend_env(served, backend)
    if url_fault:
        served.sandbox.add_faults(url_fault)
    reference = run_cli([*JOB, "--backend", backend, *url_options, "-d", "url"], env=env)
    assert reference.exit_code == 0, reference.stderr
    downloads = len(served.sandbox.received)
    if fault:
        served.sandbox.add_faults(fault)
    result = run_cli([*JOB, "--backend", backend, *options, "-d", "streamed"], env=env)
    assert result.exit_code == 0, result.stderr
    expected, expected_size, names = saved(Path("url"))
    data, size, streamed_names = saved(Path("streamed"))
    assert (data, size, streamed_names) == (expected, expected_size, names)
    assert (size, len(data) > STREAMED_BYTES) == ((2048, 2048), True)
    assert result.stdout == f"streamed/{names[0]}\n"
    # Nothing was downloaded: the image came inside the answer.
    assert not any(r.path.startswith("/files/") for r in served.sandbox.received[downloads:])


def test_a_gemini_inline_image_is_streamed_to_disk_with_the_exact_bytes_sent(
    served: Served,
) -> None:
    env = one_backend_env(served, "gemini")
    result = run_cli([*JOB, "--backend", "gemini", "-d", "out", "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    (post,) = served.sandbox.received
    # The same request again gives the same answer: decoded whole, it is what was saved.
    again = httpx.post(
        f"{served.base_url}{post.path}",
        content=post.body,
        headers={"x-goog-api-key": GEMINI_KEY, "content-type": "application/json"},
    )
    parts = again.json()["candidates"][0]["content"]["parts"]
    # The 3.x models draw a thought image first: that one is not saved.
    (sent,) = (
        base64.b64decode(p["inlineData"]["data"])
        for p in parts
        if "inlineData" in p and not p.get("thought")
    )
    data, size, names = saved(Path("out"))
    assert (data, size, names) == (sent, (2048, 2048), ["a-red-fox.jpg"])
    assert len(data) > STREAMED_BYTES
    assert json.loads(result.stdout)["outputs"][0]["bytes"] == len(sent)


@pytest.mark.parametrize("history", [True, False], ids=["journaled", "no history"])
def test_an_answer_cut_short_inside_the_base64_fails_and_leaves_no_file(
    served: Served, history: bool
) -> None:
    served.sandbox.add_faults("bad-json")
    result = run_cli(
        [*JOB, "--backend", "openai", "--response-format", "b64_json", "-d", "out",
         *([] if history else ["--no-history"])],
        env=one_backend_env(served, "openai"),
    )  # fmt: skip
    assert result.exit_code == 5, result.stderr
    (post,) = served.sandbox.received
    # The same request without the fault: the answer cut short was half of this one.
    whole = httpx.post(
        f"{served.base_url}{post.path}",
        content=post.body,
        headers={"authorization": f"Bearer {OPENAI_KEY}", "content-type": "application/json"},
    )
    where = served.base_url.removeprefix("http://")
    assert result.stderr == (
        f"error: {where} answered HTTP 200 with JSON that is cut short or malformed (it ends "
        f"inside the base64 of data[0].b64_json, at byte {len(whole.content) // 2}); the "
        "server or a proxy in front of it failed, try again later\n"
    )
    # Neither an image nor its part file anywhere: a journaled job streams into the spool of
    # the data folder, which is left empty; without the journal, the part goes beside the
    # image, and the output folder (made for it) is left empty.
    spool = Path(os.environ["NANOEDIT_DATA_DIR"]) / "spool"
    if history:
        assert (Path("out").exists(), list(spool.iterdir())) == (False, [])
    else:
        assert (list(Path("out").iterdir()), spool.exists()) == ([], False)


def test_a_retried_answer_discards_the_part_file_of_the_broken_attempt(tmp_path: Path) -> None:
    png = Image.new("RGB", (600, 400), "teal")  # larger than a piece of the answer
    holder = tmp_path / "image.png"
    png.save(holder, "PNG", compress_level=0)
    body = json.dumps({"data": [{"b64_json": base64.b64encode(holder.read_bytes()).decode()}]})
    attempts: list[int] = []

    def broken(body: bytes) -> Iterator[bytes]:
        yield body[: len(body) // 2]
        raise httpx.ReadError("the connection broke")

    def answer(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            return httpx.Response(200, content=broken(body.encode()))
        return httpx.Response(200, content=body.encode())

    parts = PartFiles()
    spooled: list[Path] = []

    def spool() -> PartFile:
        part = PartFile(tmp_path / "out", "the image", parts)
        spooled.append(part.path)
        return part

    http = JobHttp(
        httpx.Client(transport=httpx.MockTransport(answer)), RetryPolicy(retries=1, backoff=0),
        Deadline(60), sleeper=lambda seconds: None, spool=spool,
    )  # fmt: skip
    request = http.client.build_request("POST", "http://api.test/v1/images/generations")
    response, streamed = http.send_json(
        request, where="api.test", what="the request", paid=False, keys={"b64_json"}
    )
    assert streamed is not None
    (value,) = streamed.values
    assert response.json() == {"data": [{"b64_json": value.placeholder}]}
    # Two attempts, two part files: only the second one's is there, holding the image.
    assert len(attempts) == len(spooled) == 2
    assert sorted((tmp_path / "out").iterdir()) == [spooled[1]]
    assert spooled[1].read_bytes() == holder.read_bytes()
    http.discard_spooled()
    assert list((tmp_path / "out").iterdir()) == []


def test_a_streamed_result_gets_metadata_a_sidecar_and_converts_for_o(served: Served) -> None:
    args = [*JOB[:-1], "--backend", "openai", "--response-format", "b64_json", "--sidecar"]
    result = run_cli([*args, "-o", "fox.webp"], env=one_backend_env(served, "openai"))
    assert (result.exit_code, result.stdout) == (0, "fox.webp\n"), result.stderr
    assert result.stderr == (
        "warning: the server sent JPEG; converted to WEBP for fox.webp\n"
        "saved fox.webp (2048x2048 WEBP) from a-red-fox\n"
    )
    with Image.open("fox.webp") as image:
        assert (image.format, image.size) == ("WEBP", (2048, 2048))
    sidecar = json.loads(Path("fox.webp.json").read_text())
    assert (sidecar["image"], sidecar["format"], sidecar["width"], sidecar["height"]) == (
        "fox.webp", "webp", 2048, 2048
    )  # fmt: skip
    assert sidecar["provenance"]["prompt"] == "a red fox"
    assert sorted(path.name for path in Path().iterdir()) == ["fox.webp", "fox.webp.json"]


def test_a_streamed_result_goes_to_stdout_with_o_dash(served: Served) -> None:
    args = [*JOB, "--backend", "openai", "--response-format", "b64_json"]
    streamed = run_cli([*args, "-o", "-"], env=one_backend_env(served, "openai"))
    assert streamed.exit_code == 0, streamed.stderr
    reference = run_cli(
        [*JOB, "--backend", "openai", "-d", "url"], env=one_backend_env(served, "openai")
    )
    assert reference.exit_code == 0, reference.stderr
    assert streamed.stdout_bytes == saved(Path("url"))[0]
    assert sorted(path.name for path in Path().iterdir()) == ["url"]


# Answers without end ------------------------------------------------------------------------


class EndlessServer(http.server.ThreadingHTTPServer):
    """On a loopback port: answers every request with a chunked body that never ends (gzip
    of zeros, so that 1 kB on the wire is 1 MB decoded, when ``gzipped``); counts what it sent
    before the client hung up."""

    daemon_threads = True

    def __init__(
        self, body: Callable[[], Iterator[bytes]], gzipped: bool = False, status: int = 200
    ) -> None:
        self.body, self.gzipped, self.status, self.sent = body, gzipped, status, 0
        self.hung_up = threading.Event()
        super().__init__(("127.0.0.1", 0), _Endless)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/images/generations"


class _Endless(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EndlessServer

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(self.server.status)
        self.send_header("content-type", "application/json")
        self.send_header("transfer-encoding", "chunked")
        if self.server.gzipped:
            self.send_header("content-encoding", "gzip")
        self.end_headers()
        try:
            for piece in self.server.body():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.server.sent += len(piece)
        except OSError:
            self.server.hung_up.set()

    def log_message(self, *args: object) -> None:
        pass


def endless_base64() -> Iterator[bytes]:
    yield b'{"data": [{"b64_json": "'
    while True:
        yield b"A" * 65536


def endless_gzip_json() -> Iterator[bytes]:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip
    yield packer.compress(b'{"data": [{"url": "')
    zeros = b"0" * (1024 * 1024)
    while True:
        yield packer.compress(zeros) + packer.flush(zlib.Z_SYNC_FLUSH)


@pytest.mark.parametrize(
    ("body", "gzipped", "spooled"),
    [(endless_base64, False, True), (endless_gzip_json, True, False)],
    ids=["base64 streamed to disk", "gzip read whole"],
)
def test_an_answer_without_end_is_refused_at_its_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: Any, gzipped: bool, spooled: bool
) -> None:
    # Base64 that never ends would fill the disk; a compressed answer that inflates without
    # end, the memory. Either is refused once its decoded size passes the cap, the connection
    # is dropped, and no part file is left.
    monkeypatch.setattr(nanoedit.net.http, "MAX_ANSWER_BYTES", 4 * 1024 * 1024)
    with endless_server(body, gzipped) as server:
        refused_at_the_cap(server, tmp_path, spooled)


def refused_at_the_cap(server: EndlessServer, tmp_path: Path, spooled: bool) -> None:
    parts = PartFiles()

    def spool() -> PartFile:
        return PartFile(tmp_path / "out", "the image", parts)

    http_ = JobHttp(
        httpx.Client(), RetryPolicy(retries=0), Deadline(60), sleeper=lambda seconds: None,
        spool=spool if spooled else None,
    )  # fmt: skip
    request = http_.client.build_request("POST", server.url, json={"prompt": "x"})
    where = server.url.removeprefix("http://").split("/")[0]
    with pytest.raises(ApiError) as refused:
        http_.send_json(request, where=where, what="the request", paid=False, keys={"b64_json"})
    assert refused.value.message == (
        f"{where} answered HTTP 200 with more than 4 MiB; refusing to read more of it: the "
        "server or a proxy in front of it failed"
    )
    assert server.hung_up.wait(30)
    # It stopped soon after the cap: what the server got out is the cap and what the socket
    # buffers hold (a few MB on loopback), not without end.
    assert server.sent < 64 * 1024 * 1024
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    http_.client.close()


@contextmanager
def endless_server(
    body: Callable[[], Iterator[bytes]], gzipped: bool = False, status: int = 200
) -> Iterator[EndlessServer]:
    server = EndlessServer(body, gzipped, status)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def endless_html() -> Iterator[bytes]:
    yield b"<!doctype html><html><body><h1>502 Bad Gateway</h1>"
    while True:
        yield b"<p>" + b"x" * 65536 + b"</p>"


def test_an_error_page_without_end_is_read_no_further_than_its_head() -> None:
    # A result URL that answers an error: its page is looked at to say what it was, and the
    # rest of it (here, without end) is not read.
    with endless_server(endless_html, status=502) as server, httpx.Client() as client:
        url = server.url.replace("/v1/images/generations", "/files/result.png")
        where = url.removeprefix("http://").split("/")[0]
        with client.stream("GET", url) as response, pytest.raises(ApiError) as failed:
            check_download(response, "the image", where, MAX_DOWNLOAD_BYTES, ApiError, "denied")
        assert failed.value.message == (
            f"the image could not be downloaded from {where}: HTTP 502 (it starts like HTML); "
            "check the address"
        )
        assert failed.value.transient
        assert server.hung_up.wait(30)
