"""Through the command line: the size check after saving, sizes a model cannot render, provenance
in saved images, --dry-run, config check, key commands, model aliases and proxies.

Most tests run against the sandbox on a loopback port. Two small servers of this file's own
stand in where the sandbox cannot: a provider that ignores the ratio or size asked for, and an
HTTP forward proxy that relays to the sandbox and records what it relayed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shlex
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from conftest import (
    DUOMI_KEY,
    FAL_KEY,
    GEMINI_KEY,
    OPENAI_KEY,
    OPENROUTER_KEY,
    REPLICATE_KEY,
    Served,
    backend_env,
    big_jpeg,
    closed_port,
    error_object,
    host,
    not_set_up_detail,
    not_set_up_line,
    posts,
    printed_command,
    run_cli,
    run_printed,
)
from PIL import Image, PngImagePlugin

from nanoedit import __version__
from nanoedit.backends.registry import backend_names
from nanoedit.output.provenance import XMP_HEADER
from nanoedit.output.provenance import read as read_provenance
from nanoedit.sandbox import ReceivedRequest, sample_image
from nanoedit.sandbox.catalog import OPENAI_MODELS

EDITS = "/v1/images/edits"
DUOMI_EDIT = "/api/gemini/nano-banana-edit"
DUOMI_CHECK = "/api/gemini/nano-banana/nanoedit-config-check"
# Pro as the gateway names it in its own list: sent as given, so nanoedit checks nothing about it.
PRO = "gemini-3-pro-image-preview"


# Helpers -----------------------------------------------------------------------------------


def write_sample(name: str) -> bytes:
    """One of the sandbox's sample images, written to the working folder; returns its bytes."""
    data = sample_image(name)[0]
    Path(name).write_bytes(data)
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode(fmt: str, size: tuple[int, int], colour: tuple[int, int, int] = (40, 90, 160)) -> bytes:
    """A plain image in ``fmt`` (PNG, JPEG, WEBP)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def pixels(source: Path | bytes) -> tuple[str, tuple[int, int], bytes]:
    """Mode, size and raw pixels of an image."""
    with Image.open(source if isinstance(source, Path) else io.BytesIO(source)) as image:
        return image.mode, image.size, image.tobytes()


def url_of(base_url: str, request: ReceivedRequest) -> str:
    """The absolute URL a request the sandbox received was sent to."""
    query = f"?{urlencode(request.query)}" if request.query else ""
    return f"{base_url}{request.path}{query}"


def served_file(served: Served) -> bytes:
    """The result file exactly as the sandbox serves it, fetched again from the URL nanoedit
    downloaded it from."""
    (download,) = [r for r in served.sandbox.received if r.path.startswith("/files/")]
    with httpx.Client(trust_env=False) as client:
        response = client.get(url_of(served.base_url, download))
    assert response.status_code == 200
    return response.content


def one_json(stdout: str) -> dict[str, Any]:
    (line,) = stdout.splitlines()
    record: dict[str, Any] = json.loads(line)
    return record


# Small servers of the test's own -------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request a test server got: ``target`` as the request line gave it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server on a free loopback port, serving from a background thread."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.seen: list[Seen] = []
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        address, port = self.server_address[:2]
        return f"http://{address!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _take(self) -> Seen:
        """Read the request (body by Content-Length or chunked) and record it."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            body = b"".join(parts)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        seen = Seen(self.command, self.path, headers, body)
        self.server.seen.append(seen)
        return seen

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class StandIn(LoopbackServer):
    """A multipart gateway that answers every image request with the one image it is given,
    whatever ratio or size was asked for (as relays that drop them do)."""

    def __init__(self) -> None:
        super().__init__(_StandInHandler)
        self.image = encode("PNG", (1024, 1024))


class _StandInHandler(_Handler):
    server: StandIn

    def do_POST(self) -> None:
        seen = self._take()
        if seen.target not in (EDITS, "/v1/images/generations"):
            self._send(404, [("Content-Type", "text/plain")], b"404 page not found")
            return
        b64 = base64.b64encode(self.server.image).decode()
        item = {"revised_prompt": "", "url": "", "b64_json": b64}
        answer = {"created": 1763965223, "data": [item], "model": "stand-in"}
        body = json.dumps(answer).encode()
        self._send(200, [("Content-Type", "application/json")], body)


# Headers that belong to one connection, not to the request it carries.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "transfer-encoding",
     "te", "trailer", "upgrade", "content-length"}
)  # fmt: skip


class ForwardProxy(LoopbackServer):
    """A plain HTTP forward proxy: takes absolute-form requests (``GET http://host/...``),
    sends them on and relays the answer. ``seen`` holds every request it relayed."""

    def __init__(self) -> None:
        super().__init__(_ProxyHandler)


class _ProxyHandler(_Handler):
    server: ForwardProxy

    def do_GET(self) -> None:
        seen = self._take()
        target = urlsplit(seen.target)
        assert target.scheme == "http" and target.hostname, seen.target
        headers = {k: v for k, v in seen.headers.items() if k not in HOP_BY_HOP}
        upstream = HTTPConnection(target.hostname, target.port or 80, timeout=30)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            upstream.request(self.command, path, body=seen.body or None, headers=headers)
            answer = upstream.getresponse()
            body = answer.read()
            relayed = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
        finally:
            upstream.close()
        self._send(answer.status, relayed, body)

    do_POST = do_GET


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    """The ratio-ignoring gateway on loopback."""
    with StandIn() as server:
        yield server


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    """A forward proxy on loopback."""
    with ForwardProxy() as server:
        yield server


def stand_in_env(stand_in: StandIn) -> dict[str, str]:
    return {"NANOEDIT_OPENAI_BASE_URL": stand_in.base_url, "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY}


# The size check after saving ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "answer", "saved", "warning"),
    [
        (["--ratio", "16:9"], ("PNG", (1024, 1024)), "cat-edit.png (1024x1024 PNG)",
         "cat-edit.png: asked for 16:9 (1376x768 on nano-banana-2) but the image is 1024x1024; "
         "the provider ignored the ratio"),
        (["--ratio", "16:9", "--size", "2K", "--model", "nano-banana-2", "-d", "out"],
         ("JPEG", (1376, 768)), "out/cat-edit.jpg (1376x768 JPEG)",
         "out/cat-edit.jpg: asked for 16:9 at 2K (2752x1536 on nano-banana-2) but the image is "
         "1376x768; the provider ignored the size"),
        # Google's id of Pro is the gateway's nano-banana-pro, which renders 1K only.
        (["--ratio", "9:16", "--model", "gemini-3-pro-image"], ("JPEG", (1536, 2752)),
         "cat-edit.jpg (1536x2752 JPEG)",
         "cat-edit.jpg: asked for 9:16 (768x1376 on nano-banana-pro) but the image is 1536x2752; "
         "the provider ignored the size"),
    ],
)  # fmt: skip
def test_an_image_of_another_size_than_asked_is_warned_about(
    stand_in: StandIn,
    sample: Path,
    args: list[str],
    answer: tuple[str, tuple[int, int]],
    saved: str,
    warning: str,
) -> None:
    stand_in.image = encode(*answer)
    result = run_cli(["edit", "cat.png", "-p", "x", "--json", *args], env=stand_in_env(stand_in))
    assert result.exit_code == 0, result.stderr  # a warning, not a failure
    assert result.stderr == f"warning: {warning}\nsaved {saved} from cat.png\n"
    record = one_json(result.stdout)
    assert record["warnings"] == [warning]
    width, height = answer[1]
    assert (record["outputs"][0]["width"], record["outputs"][0]["height"]) == (width, height)
    # Quiet: not on stderr, still in the JSON.
    quiet = run_cli(
        ["edit", "cat.png", "-p", "x", "--json", "-q", *args], env=stand_in_env(stand_in)
    )
    assert (quiet.exit_code, quiet.stderr) == (0, "")
    assert one_json(quiet.stdout)["warnings"] == [warning.replace("cat-edit", "cat-edit-2")]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--ratio", "1:1"],
        ["--ratio", "1:1", "--size", "1K"],
        ["--model", "nano-banana-hd", "--ratio", "16:9"],
    ],
    ids=["auto", "1:1", "1:1-1K", "unknown-model"],
)
def test_no_warning_when_the_size_is_right_or_cannot_be_known(
    stand_in: StandIn, sample: Path, args: list[str]
) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "--json", *args], env=stand_in_env(stand_in))
    assert result.exit_code == 0
    assert result.stderr == "saved cat-edit.png (1024x1024 PNG) from cat.png\n"
    assert one_json(result.stdout)["warnings"] == []


@pytest.mark.parametrize(
    ("args", "size", "saved"),
    [
        (["cat.png", "--ratio", "16:9"], (1376, 768), "cat-edit.jpg (1376x768 JPEG) from cat.png"),
        (["cat.png", "--ratio", "9:16", "--size", "2k", "--model", "nano-banana-2"], (1536, 2752),
         "cat-edit.jpg (1536x2752 JPEG) from cat.png"),
        (["URL", "--ratio", "21:9", "--model", "nano-banana-2", "--size", "1K"], (1584, 672),
         "dog-edit.jpg (1584x672 JPEG) from URL"),
    ],
)  # fmt: skip
def test_the_sandbox_honours_ratio_and_size_so_nothing_is_warned(
    served: Served, sample: Path, args: list[str], size: tuple[int, int], saved: str
) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    argv = [url if arg == "URL" else arg for arg in args]
    result = run_cli(["edit", *argv, "-p", "x", "--json"], env=backend_env(served))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"saved {saved.replace('URL', url)}\n"
    record = one_json(result.stdout)
    assert record["warnings"] == []
    assert [(o["width"], o["height"]) for o in record["outputs"]] == [size]


# Sizes a model cannot render ---------------------------------------------------------------


def refusal(model: str, size: str, backend: str = "openai") -> str:
    # What renders 2K and 4K there: on the gateway its nano-banana-2, on duomi Pro.
    able = "nano-banana-2" if backend == "openai" else "nano-banana-pro"
    return (
        f"error: {model} renders 1K only on {backend}, so size {size} cannot be honoured; drop it (from --size, NANOEDIT_SIZE or default.size), or "
        f"choose a model that renders it (--model {able})\n"
    )


def test_a_result_over_the_pixel_limit_is_not_saved(stand_in: StandIn, sample: Path) -> None:
    stand_in.image = big_jpeg(12000, 9000)  # 108 MP: six times the largest render
    result = run_cli(["edit", "cat.png", "-p", "x"], env=stand_in_env(stand_in))
    assert (result.exit_code, result.stdout) == (5, "")
    assert result.stderr == (
        "error: the result of cat.png is 12000x9000 pixels (108 MP), over the limit of 100 MP; "
        "nothing was saved\n"
    )
    assert sorted(os.listdir()) == ["cat.png"]


def test_a_result_under_the_pixel_limit_is_saved_whole(stand_in: StandIn, sample: Path) -> None:
    stand_in.image = big_jpeg(10000, 9000)  # 90 MP: past Pillow's default, within nanoedit's
    result = run_cli(["edit", "cat.png", "-p", "x", "--no-metadata"], env=stand_in_env(stand_in))
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    assert Path("cat-edit.jpg").read_bytes() == stand_in.image
    assert result.stderr.splitlines()[-1] == "saved cat-edit.jpg (10000x9000 JPEG) from cat.png"


@pytest.mark.parametrize(
    ("args", "model", "size", "backend"),
    [
        # The gateway's nano-banana-pro has no size field; duomi's Nano Banana 2 neither.
        (["edit", "cat.png", "--size", "2K", "--model", "nano-banana-pro"], "nano-banana-pro",
         "2K", "openai"),
        (["edit", "cat.png", "--size", "4k", "--model", "gemini-3-pro-image"],
         "nano-banana-pro", "4K", "openai"),
        (["generate", "--size", "2K", "--model", "nano-banana-pro"], "nano-banana-pro", "2K",
         "openai"),
        (["edit", "URL", "--size", "4K"], "gemini-3.1-flash-image-preview", "4K", "duomi"),
        (["edit", "URL", "--size", "2K", "--model", "nano-banana"],
         "gemini-3.1-flash-image-preview", "2K", "duomi"),
    ],
)  # fmt: skip
def test_2k_or_4k_with_a_1k_only_model_is_refused_before_any_request(
    served: Served, sample: Path, args: list[str], model: str, size: str, backend: str
) -> None:
    argv = [f"{served.base_url}/samples/dog.jpg" if arg == "URL" else arg for arg in args]
    result = run_cli([*argv, "-p", "x"], env=backend_env(served))
    assert (result.exit_code, result.stdout, result.stderr) == (
        2, "", refusal(model, size, backend)
    )  # fmt: skip
    as_json = run_cli([*argv, "-p", "x", "--json"], env=backend_env(served))
    assert as_json.exit_code == 2
    record = one_json(as_json.stdout)
    assert (record["ok"], record["outputs"]) == (False, [])
    assert record["error"] == error_object(
        "usage", refusal(model, size, backend)[len("error: ") : -1], 2
    )
    assert served.sandbox.received == []
    assert sorted(path.name for path in Path(".").iterdir()) == ["cat.png"]


def test_a_batch_of_refused_jobs_sends_nothing_and_1k_is_fine(served: Served, sample: Path) -> None:
    write_sample("hat.png")
    pro = ["--model", "nano-banana-pro"]
    refused = run_cli(
        ["edit", "cat.png", "hat.png", "-p", "x", "--size", "4K", *pro], env=backend_env(served)
    )
    assert refused.exit_code == 2
    assert refused.stderr == refusal("nano-banana-pro", "4K") * 2 + (
        "2 jobs: 0 done, 2 failed, 0 images saved\n"
    )
    assert served.sandbox.received == []
    one_k = run_cli(["edit", "cat.png", "-p", "x", "--size", "1K", *pro], env=backend_env(served))
    assert (one_k.exit_code, one_k.stdout) == (0, "cat-edit.jpg\n")
    # The gateway's Pro has no size field: its 1K is its default, asked for by sending none.
    assert "image_size" not in posts(served)[0].fields


def test_a_refused_default_size_names_where_it_came_from(served: Served, sample: Path) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--model", "nano-banana-pro"],
        env=backend_env(served) | {"NANOEDIT_SIZE": "2K"},
    )
    assert result.exit_code == 2
    assert served.sandbox.received == []
    assert "NANOEDIT_SIZE" in result.stderr or "default.size" in result.stderr, result.stderr


# Provenance --------------------------------------------------------------------------------


def provenance(
    prompt: str,
    model: str,
    backend: str,
    ratio: str,
    size: str | None,
    inputs: list[tuple[str, str]],
) -> dict[str, Any]:
    return {
        "prompt": prompt, "model": model, "backend": backend, "ratio": ratio, "size": size,
        "inputs": [{"name": name, "sha256": digest} for name, digest in inputs],
        "version": __version__,
    }  # fmt: skip


def test_a_png_result_carries_its_provenance_and_every_byte_the_server_sent(
    served: Served, sample: Path
) -> None:
    cat, hat = sample.read_bytes(), write_sample("hat.png")
    prompt = "put the hat on the cat"
    # The gateway's nano-banana-hd (a 2.5 model of its own list) answers PNG.
    result = run_cli(
        ["edit", "cat.png", "--ref", "hat.png", "-p", prompt, "--ratio", "16:9", "--json",
         "--model", "nano-banana-hd"],
        env=backend_env(served),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    saved_path = Path("cat-edit.png")
    expected = provenance(
        prompt, "nano-banana-hd", "openai", "16:9", None,
        [("cat.png", sha256(cat)), ("hat.png", sha256(hat))],
    )  # fmt: skip
    assert read_provenance(saved_path) == expected
    # The hashes are those of the bytes that were uploaded.
    assert [sha256(part.data) for part in posts(served)[0].files] == [sha256(cat), sha256(hat)]
    with Image.open(saved_path) as image:
        assert isinstance(image, PngImagePlugin.PngImageFile)
        assert image.text == {
            "nanoedit": json.dumps(expected, ensure_ascii=False, separators=(",", ":")),
            "Description": prompt,
            "Software": f"nanoedit {__version__}",
        }
    # The chunks go in after IHDR; every byte of the server's file is still there, in order.
    original, saved = served_file(served), saved_path.read_bytes()
    ihdr_end = 8 + 8 + 13 + 4
    added = len(saved) - len(original)
    assert added > 0
    assert saved[:ihdr_end] == original[:ihdr_end]
    assert saved[ihdr_end + added :] == original[ihdr_end:]
    assert pixels(saved_path) == pixels(original)
    assert one_json(result.stdout)["outputs"][0]["bytes"] == len(saved)


def test_a_jpeg_result_carries_an_xmp_segment_and_every_byte_the_server_sent(
    served: Served, sample: Path
) -> None:
    prompt = "ajoute un béret"
    result = run_cli(
        ["edit", "cat.png", "-p", prompt, "--model", PRO, "--ratio", "3:4", "--size", "1k"],
        env=backend_env(served),
    )
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    saved_path = Path("cat-edit.jpg")
    assert read_provenance(saved_path) == provenance(
        prompt, PRO, "openai", "3:4", "1K", [("cat.png", sha256(sample.read_bytes()))]
    )
    original, saved = served_file(served), saved_path.read_bytes()
    # One APP1 segment was added: taken out again, the server's file is left, byte for byte.
    start = saved.index(XMP_HEADER) - 4
    assert saved[start : start + 2] == b"\xff\xe1"
    length = int.from_bytes(saved[start + 2 : start + 4], "big")
    assert saved[:start] + saved[start + 2 + length :] == original
    packet = saved[start + 4 + len(XMP_HEADER) : start + 2 + length]
    assert '<rdf:li xml:lang="x-default">ajoute un béret</rdf:li>'.encode() in packet
    assert f"<xmp:CreatorTool>nanoedit {__version__}</xmp:CreatorTool>".encode() in packet
    with Image.open(saved_path) as image:
        assert (image.format, image.size) == ("JPEG", (896, 1200))


def test_a_webp_result_carries_an_xmp_chunk(stand_in: StandIn, sample: Path) -> None:
    stand_in.image = encode("WEBP", (1376, 768))
    result = run_cli(["edit", "cat.png", "-p", "x", "--ratio", "16:9"], env=stand_in_env(stand_in))
    assert (result.exit_code, result.stdout) == (0, "cat-edit.webp\n"), result.stderr
    assert result.stderr == "saved cat-edit.webp (1376x768 WEBP) from cat.png\n"
    saved_path = Path("cat-edit.webp")
    assert read_provenance(saved_path) == provenance(
        "x", "nano-banana-2", "openai", "16:9", None, [("cat.png", sha256(sample.read_bytes()))]
    )
    assert pixels(saved_path) == pixels(stand_in.image)


@pytest.mark.parametrize("duomi", [True, False], ids=["sent-as-url", "downloaded"])
def test_url_inputs_are_hashed_only_when_their_bytes_were_sent(served: Served, duomi: bool) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    result = run_cli(["edit", url, "-p", "add a hat"], env=backend_env(served, duomi=duomi))
    assert (result.exit_code, result.stdout) == (0, "dog-edit.jpg\n"), result.stderr
    dog = sample_image("dog.jpg")[0]
    backend, model = (
        ("duomi", "gemini-3.1-flash-image-preview") if duomi else ("openai", "nano-banana-2")
    )
    # Sent as a URL, the bytes never passed through nanoedit: no hash. Downloaded and
    # uploaded, they are hashed as sent.
    digest = "" if duomi else sha256(dog)
    assert read_provenance(Path("dog-edit.jpg")) == provenance(
        "add a hat", model, backend, "auto", None, [(url, digest)]
    )
    if not duomi:
        assert posts(served)[0].files[0].data == dog


@pytest.mark.parametrize(
    ("model", "name"),
    [(["--model", "nano-banana-hd"], "cat-edit.png"), (["--model", PRO], "cat-edit.jpg")],
    ids=["png", "jpeg"],
)
def test_no_metadata_leaves_the_file_exactly_as_the_server_sent_it(
    served: Served, sample: Path, model: list[str], name: str
) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--no-metadata", *model], env=backend_env(served)
    )
    assert (result.exit_code, result.stdout) == (0, f"{name}\n"), result.stderr
    assert Path(name).read_bytes() == served_file(served)
    assert read_provenance(Path(name)) is None


@pytest.mark.parametrize("metadata", [True, False], ids=["embedded-too", "no-metadata"])
def test_sidecar_is_written_beside_each_image(served: Served, sample: Path, metadata: bool) -> None:
    prompt = "put the hat on the cat — café style"
    flags = [] if metadata else ["--no-metadata"]
    result = run_cli(
        ["edit", "cat.png", "-p", prompt, "--ratio", "16:9", "-n", "2", "--sidecar", *flags],
        env=backend_env(served),
    )
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\ncat-edit-2.jpg\n"), result.stderr
    record = provenance(
        prompt, "nano-banana-2", "openai", "16:9", None, [("cat.png", sha256(sample.read_bytes()))]
    )
    for name in ("cat-edit.jpg", "cat-edit-2.jpg"):
        document = {
            "image": name,
            "format": "jpeg",
            "width": 1376,
            "height": 768,
            "provenance": record,
        }
        sidecar = Path(f"{name}.json").read_bytes()
        assert sidecar.decode("utf-8") == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        assert read_provenance(Path(name)) == (record if metadata else None)
    assert sorted(path.name for path in Path(".").iterdir()) == [
        "cat-edit-2.jpg", "cat-edit-2.jpg.json", "cat-edit.jpg", "cat-edit.jpg.json", "cat.png",
    ]  # fmt: skip


# --dry-run ---------------------------------------------------------------------------------


def test_dry_run_multipart_shows_the_form_and_files_with_the_key_masked(
    served: Served, sample: Path
) -> None:
    write_sample("hat.png")
    result = run_cli(
        ["edit", "cat.png", "--ref", "hat.png", "-p", "put the hat on the cat", "--ratio", "16:9",
         "--size", "2K", "--model", "nano-banana-2", "-n", "2", "--dry-run"],
        env=backend_env(served),
    )  # fmt: skip
    assert (result.exit_code, result.stderr) == (
        0,
        "1 job, 2 images, estimated $0.202 (gemini-3.1-flash-image 2K at $0.101)\n",
    )
    assert result.stdout == (
        "# cat.png -> cat-edit, cat-edit-2 (openai, nano-banana-2)\n"
        f"curl -sS -X POST {served.base_url}/v1/images/edits -H 'Authorization: Bearer ****0001' \\\n"
        "  --form-string model=nano-banana-2 \\\n"
        "  --form-string 'prompt=put the hat on the cat' \\\n"
        "  --form-string n=2 \\\n"
        "  --form-string response_format=url \\\n"
        "  --form-string aspect_ratio=16:9 \\\n"
        "  --form-string image_size=2K \\\n"
        "  -F image=@cat.png \\\n"
        "  -F image=@hat.png\n"
    )
    assert OPENAI_KEY not in result.stdout
    assert served.sandbox.received == []
    assert sorted(path.name for path in Path(".").iterdir()) == ["cat.png", "hat.png"]


def test_dry_run_url_list_backend_shows_the_json_body_and_the_poll(served: Served) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    result = run_cli(
        ["edit", url, "-p", "add a hat", "--ratio", "21:9", "--size", "4K", "--model",
         "nano-banana-pro", "--dry-run"],
        env=backend_env(served),
    )  # fmt: skip
    # duomi publishes no price: Google's list price of Pro at 4K.
    assert (result.exit_code, result.stderr) == (
        0,
        "1 job, 1 image, estimated $0.24 (gemini-3-pro-image 4K at $0.24)\n",
    )
    body = {
        "model": "gemini-3-pro-image-preview", "prompt": "add a hat", "image_urls": [url],
        "aspect_ratio": "21:9", "image_size": "4K",
    }  # fmt: skip
    assert result.stdout == (
        f"# {url} -> dog-edit (duomi, gemini-3-pro-image-preview)\n"
        f"curl -sS -X POST {served.base_url}/api/gemini/nano-banana-edit "
        "-H 'Authorization: ****0002' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d '{json.dumps(body)}'\n"
        f"# then poll GET {served.base_url}/api/gemini/nano-banana/TASK_ID until it succeeds\n"
    )
    assert DUOMI_KEY not in result.stdout
    assert served.sandbox.received == []


@pytest.mark.parametrize(
    ("key", "shown"), [("sk-0123456789", "****6789"), ("sk-01234567", "****"), ("k", "****")]
)
def test_dry_run_generate_masks_the_key_by_its_length(served: Served, key: str, shown: str) -> None:
    env = backend_env(served) | {"NANOEDIT_OPENAI_API_KEY": key}
    result = run_cli(
        ["generate", "-p", "a red fox in snow", "--ratio", "3:2", "--dry-run"], env=env
    )
    assert (result.exit_code, result.stderr) == (
        0,
        "1 job, 1 image, estimated $0.067 (gemini-3.1-flash-image at $0.067)\n",
    )
    body = '{"model": "nano-banana-2", "prompt": "a red fox in snow", "n": 1, "response_format": "url", "aspect_ratio": "3:2"}'
    assert result.stdout == (
        "# a-red-fox-in-snow -> a-red-fox-in-snow (openai, nano-banana-2)\n"
        f"curl -sS -X POST {served.base_url}/v1/images/generations "
        f"-H 'Authorization: Bearer {shown}' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d '{body}'\n"
    )
    assert served.sandbox.received == []


needs_curl = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash"
)


@needs_curl
def test_the_printed_curl_commands_work_and_send_what_nanoedit_sends(
    served: Served, sample: Path
) -> None:
    write_sample("hat.png")
    url = f"{served.base_url}/samples/dog.jpg"
    env = backend_env(served)
    edit = ["edit", "cat.png", "--ref", "hat.png", "-p", 'it\'s "night"', "--ratio", "4:3"]
    task = ["edit", url, "-p", "add a hat", "--model", "nano-banana-pro", "--size", "2K"]
    for args in (edit, task):
        printed = run_cli([*args, "--dry-run"], env=env)
        assert printed.exit_code == 0
        answer = run_printed(printed_command(printed.stdout, OPENAI_KEY, DUOMI_KEY))
        if args is edit:
            assert answer["data"][0]["url"].startswith(f"{served.base_url}/files/")
        else:
            assert (answer["code"], answer["msg"]) == (200, "success")
            assert answer["data"]["task_id"]
        assert run_cli(args, env=env).exit_code == 0
    by_curl, by_nanoedit, task_by_curl, task_by_nanoedit = posts(served)
    assert by_curl.path == by_nanoedit.path == EDITS
    assert by_curl.fields == by_nanoedit.fields
    assert by_curl.fields["prompt"] == ['it\'s "night"']
    assert [(f.field, f.filename, f.data) for f in by_curl.files] == [
        (f.field, f.filename, f.data) for f in by_nanoedit.files
    ]
    assert by_curl.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert task_by_curl.path == task_by_nanoedit.path == DUOMI_EDIT
    assert task_by_curl.json == task_by_nanoedit.json
    assert task_by_curl.json["model"] == PRO
    assert task_by_curl.headers["authorization"] == DUOMI_KEY


# config check ------------------------------------------------------------------------------


def check_requests(served: Served) -> list[tuple[str, str, str]]:
    return [(r.method, r.path, r.headers.get("authorization", "")) for r in served.sandbox.received]


# Every backend after openai and duomi, which backend_env configures: not set up.
UNSET = backend_names()[2:]
NOT_SET_UP = "".join(f"{not_set_up_line(name)}\n" for name in UNSET)
NOT_SET_UP_JSON = [
    {"backend": name, "status": "not configured",
     "detail": not_set_up_detail(name), "passed": True}
    for name in UNSET
]  # fmt: skip


def test_config_check_two_ready_and_the_rest_not_set_up(served: Served) -> None:
    result = run_cli(["config", "check"], env=backend_env(served))
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        f"openai      ready  ({host(served)}, {len(OPENAI_MODELS)} models)\n"
        f"duomi       ready  ({host(served)}, key accepted)\n" + NOT_SET_UP
    )
    assert check_requests(served) == [
        ("GET", "/v1/models", f"Bearer {OPENAI_KEY}"),
        ("GET", DUOMI_CHECK, DUOMI_KEY),
    ]
    as_json = run_cli(["config", "check", "--json"], env=backend_env(served))
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == {
        "schema": "nanoedit/config-check/1",
        "ok": True,
        "exit_code": 0,
        "backends": [
            {"backend": "openai", "status": "ready",
             "detail": f"{host(served)}, {len(OPENAI_MODELS)} models", "passed": True},
            {"backend": "duomi", "status": "ready", "detail": f"{host(served)}, key accepted",
             "passed": True},
            *NOT_SET_UP_JSON,
        ],
    }  # fmt: skip


def test_config_check_six_backends_ready(served: Served) -> None:
    env = backend_env(served, gemini=True, fal=True, replicate=True, openrouter=True)
    result = run_cli(["config", "check"], env=env)
    assert (result.exit_code, result.stderr) == (0, "")
    where = host(served)
    assert result.stdout == (
        f"openai      ready  ({where}, {len(OPENAI_MODELS)} models)\n"
        f"duomi       ready  ({where}, key accepted)\n"
        f"gemini      ready  ({where}, key accepted)\n"
        f"fal         ready  ({where}, key accepted)\n"
        f"replicate   ready  ({where}, account nanoedit)\n"
        f"openrouter  ready  ({where}, key accepted)\n"
        + "".join(f"{not_set_up_line(name)}\n" for name in backend_names()[6:])
    )
    assert check_requests(served) == [
        ("GET", "/v1/models", f"Bearer {OPENAI_KEY}"),
        ("GET", DUOMI_CHECK, DUOMI_KEY),
        ("GET", "/v1beta/models/gemini-nano-banana-2.1", ""),
        ("GET", "/fal-ai/nano-banana-2/requests/nanoedit-config-check/status", f"Key {FAL_KEY}"),
        ("GET", "/v1/account", f"Bearer {REPLICATE_KEY}"),
        ("GET", "/api/v1/key", f"Bearer {OPENROUTER_KEY}"),
    ]
    # Google's key travels in its own header.
    assert served.sandbox.received[2].headers["x-goog-api-key"] == GEMINI_KEY


def test_config_check_key_rejected_exits_3(served: Served) -> None:
    wrong = "sk-wrong-key-for-the-check-7777"
    env = backend_env(served) | {"NANOEDIT_OPENAI_API_KEY": wrong, "NANOEDIT_DUOMI_API_KEY": wrong}
    result = run_cli(["config", "check"], env=env)
    assert (result.exit_code, result.stderr) == (3, "")
    openai, duomi, *rest = result.stdout.splitlines(keepends=True)
    prefix = f"openai      key rejected  ({host(served)} rejected the key (HTTP 401: invalid token (request id: "
    assert openai.startswith(prefix)
    request_id, tail = openai[len(prefix) :].split(")", 1)
    assert request_id.isdigit() and len(request_id) == 26
    assert tail == (
        " [invalid_api_key]); the key comes from NANOEDIT_OPENAI_API_KEY, which overrides the "
        "config file: unset NANOEDIT_OPENAI_API_KEY or fix it)\n"
    )
    assert duomi == (
        f"duomi       key rejected  ({host(served)} rejected the key (HTTP 401, code 401: invalid "
        "api key); the key comes from NANOEDIT_DUOMI_API_KEY, which overrides the config file: "
        "unset NANOEDIT_DUOMI_API_KEY or fix it)\n"
    )
    assert "".join(rest) == NOT_SET_UP
    assert wrong not in result.stdout
    assert check_requests(served) == [
        ("GET", "/v1/models", f"Bearer {wrong}"),
        ("GET", DUOMI_CHECK, wrong),
    ]


def test_config_check_unreachable_exits_6() -> None:
    port = closed_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "NANOEDIT_OPENAI_BASE_URL": base, "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY,
        "NANOEDIT_DUOMI_BASE_URL": base, "NANOEDIT_DUOMI_API_KEY": DUOMI_KEY,
    }  # fmt: skip
    result = run_cli(["config", "check"], env=env)
    assert (result.exit_code, result.stderr) == (6, "")
    reason = f"cannot connect to 127.0.0.1:{port} ([Errno 111] Connection refused); check the address and the network"
    assert result.stdout == (
        f"openai      unreachable  ({reason})\nduomi       unreachable  ({reason})\n" + NOT_SET_UP
    )


def test_config_check_sandbox_and_a_backend_not_set_up(served: Served) -> None:
    sandbox = run_cli(["config", "check", "--sandbox"])
    assert (sandbox.exit_code, sandbox.stderr) == (0, "")
    # Every registered backend is ready on the sandbox; the first six, word for word.
    lines = sandbox.stdout.splitlines(keepends=True)
    assert [line.split()[:2] for line in lines] == [[name, "ready"] for name in backend_names()]
    assert "".join(lines[:6]) == (
        f"openai      ready  (nanoedit-sandbox.invalid, {len(OPENAI_MODELS)} models)\n"
        "duomi       ready  (nanoedit-sandbox.invalid, key accepted)\n"
        "gemini      ready  (nanoedit-sandbox.invalid, key accepted)\n"
        "fal         ready  (nanoedit-sandbox.invalid, key accepted)\n"
        "replicate   ready  (nanoedit-sandbox.invalid, account nanoedit)\n"
        "openrouter  ready  (nanoedit-sandbox.invalid, key accepted)\n"
    )
    only_openai = run_cli(["config", "check"], env=backend_env(served, duomi=False))
    assert only_openai.exit_code == 0
    assert only_openai.stdout == (
        f"openai      ready  ({host(served)}, {len(OPENAI_MODELS)} models)\n"
        "duomi       not configured  (no API key; run: nanoedit config set duomi.api_key "
        "YOUR-KEY)\n" + NOT_SET_UP
    )
    assert check_requests(served) == [("GET", "/v1/models", f"Bearer {OPENAI_KEY}")]
    nothing = run_cli(["config", "check"])
    assert nothing.exit_code == 3
    assert nothing.stdout.splitlines()[0] == (
        "openai      not configured  (no base URL and no API key; run: nanoedit config set "
        "openai.base_url https://YOUR-SERVER && nanoedit config set openai.api_key YOUR-KEY)"
    )


# Key commands ------------------------------------------------------------------------------


def key_command(marker: Path, key: str = OPENAI_KEY) -> str:
    """A key command that notes each run of it in ``marker``."""
    return f"echo ran >> {shlex.quote(str(marker))}; printf '%s\\n' {key}"


def test_a_key_command_gives_the_key_and_runs_once_per_run(
    served: Served, sample: Path, tmp_path: Path
) -> None:
    write_sample("hat.png")
    marker = tmp_path / "runs"
    env = backend_env(served) | {
        "NANOEDIT_OPENAI_API_KEY": "",
        "NANOEDIT_OPENAI_API_KEY_CMD": key_command(marker),
    }
    result = run_cli(["edit", "cat.png", "hat.png", "-p", "x", "-j", "2"], env=env)
    assert result.exit_code == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["cat-edit.jpg", "hat-edit.jpg"]
    assert [r.headers["authorization"] for r in posts(served)] == [f"Bearer {OPENAI_KEY}"] * 2
    assert marker.read_text() == "ran\n"


def test_a_key_command_set_in_the_config_file(served: Served, sample: Path, tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    saved = run_cli(["config", "set", "openai.api_key_cmd", key_command(marker)])
    assert saved.exit_code == 0
    env = {"NANOEDIT_OPENAI_BASE_URL": served.base_url}
    result = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    assert posts(served)[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert marker.read_text() == "ran\n"


def test_a_key_command_is_not_run_when_nothing_needs_the_key(
    served: Served, sample: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "runs"
    command = key_command(marker)
    env = backend_env(served) | {
        "NANOEDIT_OPENAI_API_KEY": "",
        "NANOEDIT_OPENAI_API_KEY_CMD": command,
    }
    dry = run_cli(["edit", "cat.png", "-p", "x", "--dry-run"], env=env)
    assert dry.exit_code == 0
    # The header as the shell reads it: the command shown, never its output.
    words = shlex.split(dry.stdout.splitlines()[1].removesuffix(" \\"))
    assert words[5:7] == ["-H", f"Authorization: Bearer $({command})"]
    listing = run_cli(["config", "list"], env=env)
    assert (
        f"openai.api_key_cmd = {command}  (NANOEDIT_OPENAI_API_KEY_CMD)"
        in listing.stdout.splitlines()
    )
    assert run_cli(["config", "get", "openai.api_key_cmd"], env=env).stdout == f"{command}\n"
    assert run_cli(["config", "get", "openai.api_key"], env=env).exit_code == 3
    pro_2k = ["--model", "nano-banana-pro", "--size", "2K"]
    assert run_cli(["edit", "cat.png", "-p", "x", *pro_2k], env=env).exit_code == 2
    sandbox = run_cli(["edit", "cat.png", "-p", "x", "--sandbox", "-o", "s.png"], env=env)
    assert (sandbox.exit_code, sandbox.stdout) == (0, "s.png\n")
    assert not marker.exists()
    assert served.sandbox.received == []


def test_a_failing_key_command_fails_each_job_once_and_sends_nothing(
    served: Served, sample: Path, tmp_path: Path
) -> None:
    write_sample("hat.png")
    marker = tmp_path / "runs"
    command = f"echo ran >> {shlex.quote(str(marker))}; echo 'the vault is locked' >&2; exit 7"
    env = backend_env(served) | {
        "NANOEDIT_OPENAI_API_KEY": "",
        "NANOEDIT_OPENAI_API_KEY_CMD": command,
    }
    result = run_cli(["edit", "cat.png", "hat.png", "-p", "x"], env=env)
    assert (result.exit_code, result.stdout) == (3, "")
    message = (
        "error: openai.api_key_cmd failed with exit status 7 (the vault is locked); run it in a "
        "shell to see why, or set openai.api_key instead"
    )
    estimate = "2 jobs, 2 images, estimated $0.134 (gemini-3.1-flash-image at $0.067)"
    assert result.stderr == (
        f"{estimate}\n{message}\n{message}\n2 jobs: 0 done, 2 failed, 0 images saved\n"
    )
    assert marker.read_text() == "ran\n"
    assert served.sandbox.received == []


@needs_curl
def test_a_dry_run_with_a_key_command_prints_a_command_that_sends_the_key(
    served: Served, sample: Path, tmp_path: Path
) -> None:
    command = f"printf '%s\\n' {OPENAI_KEY}"
    env = backend_env(served) | {
        "NANOEDIT_OPENAI_API_KEY": "",
        "NANOEDIT_OPENAI_API_KEY_CMD": command,
    }
    printed = run_cli(["edit", "cat.png", "-p", "x", "--dry-run"], env=env)
    assert printed.exit_code == 0
    run_printed(printed_command(printed.stdout))
    assert posts(served)[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"


# Model aliases -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "model", "name"),
    [
        ("nano-banana-pro", "gemini-3-pro-image-preview", "dog-edit.jpg"),
        ("nano-banana-2", "gemini-3.1-flash-image-preview", "dog-edit.jpg"),
        ("nano-banana", "gemini-3.1-flash-image-preview", "dog-edit.jpg"),
    ],
)
def test_an_alias_becomes_googles_id_on_the_url_list_backend(
    served: Served, alias: str, model: str, name: str
) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    result = run_cli(["edit", url, "-p", "x", "--model", alias, "--json"], env=backend_env(served))
    assert result.exit_code == 0, result.stderr
    (submit,) = posts(served)
    assert submit.path == DUOMI_EDIT
    assert submit.json == {"model": model, "prompt": "x", "image_urls": [url]}
    record = one_json(result.stdout)
    assert (record["backend"], record["model"], record["outputs"][0]["path"]) == (
        "duomi",
        model,
        name,
    )
    assert read_provenance(Path(name)) == provenance("x", model, "duomi", "auto", None, [(url, "")])
    generated = run_cli(
        ["generate", "-p", "y", "--backend", "duomi", "--model", alias], env=backend_env(served)
    )
    assert generated.exit_code == 0, generated.stderr
    assert posts(served)[-1].json == {"model": model, "prompt": "y"}


def test_the_multipart_backend_gets_the_name_as_given(served: Served, sample: Path) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--model", "nano-banana-pro", "--json"],
        env=backend_env(served),
    )
    assert result.exit_code == 0, result.stderr
    assert posts(served)[0].fields["model"] == ["nano-banana-pro"]
    record = one_json(result.stdout)
    assert (record["model"], record["outputs"][0]["path"]) == ("nano-banana-pro", "cat-edit.jpg")


def test_unknown_model_names_pass_through_untouched(served: Served, sample: Path) -> None:
    hd = run_cli(
        ["edit", "cat.png", "-p", "x", "--model", "nano-banana-hd"], env=backend_env(served)
    )
    assert (hd.exit_code, hd.stdout) == (0, "cat-edit.png\n"), hd.stderr
    assert posts(served)[0].fields["model"] == ["nano-banana-hd"]
    url = f"{served.base_url}/samples/dog.jpg"
    relay = run_cli(["edit", url, "-p", "x", "--model", "my-relay-model"], env=backend_env(served))
    assert posts(served)[1].json == {"model": "my-relay-model", "prompt": "x", "image_urls": [url]}
    assert relay.exit_code == 5
    assert relay.stderr == (
        f"error: {host(served)} refused the task submission (code 400): unsupported model: "
        "my-relay-model; use one of gemini-3-pro-image-preview, gemini-3.1-flash-image-preview\n"
    )


# Proxies -----------------------------------------------------------------------------------


def relayed(proxy: ForwardProxy) -> list[tuple[str, str]]:
    return [(seen.method, seen.target) for seen in proxy.seen]


def received_urls(served: Served) -> list[tuple[str, str]]:
    return [(r.method, url_of(served.base_url, r)) for r in served.sandbox.received]


def test_the_proxy_flag_sends_every_request_through_the_proxy(
    served: Served, sample: Path, proxy: ForwardProxy
) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--proxy", proxy.base_url], env=backend_env(served)
    )
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    # The edit and the download of its result, each sent to the proxy with the full URL.
    assert relayed(proxy) == received_urls(served)
    (post, post_url), (get, get_url) = relayed(proxy)
    assert (post, post_url) == ("POST", f"{served.base_url}{EDITS}")
    assert (get, urlsplit(get_url).path[:7]) == ("GET", "/files/")
    assert posts(served)[0].files[0].data == sample.read_bytes()
    assert proxy.seen[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert "authorization" not in proxy.seen[1].headers  # the download carries no key


@pytest.mark.parametrize("source", ["NANOEDIT_PROXY", "network.proxy", "HTTP_PROXY", "http_proxy"])
def test_a_proxy_from_the_settings_or_the_environment(
    served: Served, proxy: ForwardProxy, source: str
) -> None:
    env = backend_env(served)
    if source == "network.proxy":
        assert run_cli(["config", "set", "network.proxy", proxy.base_url]).exit_code == 0
    else:
        env[source] = proxy.base_url
    url = f"{served.base_url}/samples/dog.jpg"
    result = run_cli(["edit", url, "-p", "x"], env=env)
    assert (result.exit_code, result.stdout) == (0, "dog-edit.jpg\n"), result.stderr
    # The task's submission, its polls and the download: every one through the proxy.
    methods = [method for method, _ in relayed(proxy)]
    assert methods[0] == "POST" and methods[-1] == "GET" and len(methods) >= 3
    assert relayed(proxy) == received_urls(served)
    check = run_cli(["config", "check"], env=env)
    assert check.exit_code == 0
    assert relayed(proxy)[-2:] == [
        ("GET", f"{served.base_url}/v1/models"),
        ("GET", f"{served.base_url}{DUOMI_CHECK}"),
    ]


def test_the_proxy_flag_wins_over_the_settings(
    served: Served, sample: Path, proxy: ForwardProxy
) -> None:
    env = backend_env(served) | {"NANOEDIT_PROXY": f"http://127.0.0.1:{closed_port()}"}
    result = run_cli(["edit", "cat.png", "-p", "x", "--proxy", proxy.base_url], env=env)
    assert result.exit_code == 0, result.stderr
    assert len(proxy.seen) == 2


def test_no_proxy_exempts_hosts_from_an_environment_proxy_only(
    served: Served, sample: Path, proxy: ForwardProxy
) -> None:
    env = backend_env(served) | {"HTTP_PROXY": proxy.base_url, "NO_PROXY": "127.0.0.1"}
    direct = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    assert direct.exit_code == 0, direct.stderr
    assert proxy.seen == []
    # A proxy named for nanoedit is used for every request, NO_PROXY or not.
    named = run_cli(["edit", "cat.png", "-p", "x", "--proxy", proxy.base_url], env=env)
    assert named.exit_code == 0, named.stderr
    assert len(proxy.seen) == 2


def test_proxy_credentials_go_to_the_proxy_and_are_never_printed(
    served: Served, sample: Path, proxy: ForwardProxy
) -> None:
    with_password = proxy.base_url.replace("http://", "http://ann:s3cret@")
    env = backend_env(served)
    result = run_cli(["edit", "cat.png", "-p", "x", "--proxy", with_password], env=env)
    assert result.exit_code == 0, result.stderr
    basic = base64.b64encode(b"ann:s3cret").decode()
    assert [seen.headers.get("proxy-authorization") for seen in proxy.seen] == [
        f"Basic {basic}"
    ] * 2
    dead = f"http://ann:s3cret@127.0.0.1:{closed_port()}"
    failed = run_cli(["edit", "cat.png", "-p", "x", "--proxy", dead, "--retries", "0"], env=env)
    assert failed.exit_code == 6
    assert "s3cret" not in failed.stdout + failed.stderr
    listing = run_cli(["config", "list"], env={"NANOEDIT_PROXY": with_password})
    assert (
        f"network.proxy = http://ann:****@{proxy.base_url.removeprefix('http://')}  (NANOEDIT_PROXY)"
        in listing.stdout.splitlines()
    )


def test_a_proxy_that_cannot_be_reached_is_named(served: Served, sample: Path) -> None:
    env = backend_env(served, duomi=False) | {"NANOEDIT_PROXY": f"http://127.0.0.1:{closed_port()}"}
    check = run_cli(["config", "check"], env=env)
    assert check.exit_code == 6
    edit = run_cli(["edit", "cat.png", "-p", "x", "--retries", "0"], env=env)
    assert edit.exit_code == 6
    assert served.sandbox.received == []
    assert "proxy" in check.stdout.splitlines()[0], check.stdout
    assert "proxy" in edit.stderr, edit.stderr
