"""Local files for the URL-list backend: an upload command puts each one on a small loopback
web server of the test's, and the sandbox's duomi task is sent (and fetches) that URL."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import select
import shlex
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import DUOMI_KEY, Served, backend_env, interrupted_run, run_cli
from PIL import Image

from nanoedit import __version__
from nanoedit.backends.base import backend_class
from nanoedit.backends.registry import backend_names
from nanoedit.output.provenance import read as read_provenance
from nanoedit.sandbox import sample_image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
CAT, _ = sample_image("cat.png")
PERSON, _ = sample_image("person.png")
SUBMIT = "/api/gemini/nano-banana-edit"
needs_pidfd = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open (Linux)")


@dataclass
class Hosting:
    """A folder served over HTTP on loopback, and the paths it was asked for."""

    folder: Path
    base_url: str
    fetched: list[str] = field(default_factory=list)

    def command(self) -> str:
        """An upload command that copies the file in and prints its URL."""
        folder = shlex.quote(str(self.folder))
        return f'cp "$1" {folder}/ && echo {shlex.quote(self.base_url)}/"$(basename "$1")"'


@pytest.fixture
def hosting(tmp_path: Path) -> Iterator[Hosting]:
    folder = tmp_path / "public"
    folder.mkdir()
    hosting = Hosting(folder, "")

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            hosting.fetched.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    hosting.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield hosting
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def duomi_only(served: Served, command: str | None) -> dict[str, str]:
    """Only the URL-list backend has a key; local files go through ``command``."""
    env = backend_env(served, openai=False)
    if command is not None:
        env |= {"NANOEDIT_UPLOAD_VIA": "command", "NANOEDIT_UPLOAD_COMMAND": command}
    return env


def submits(served: Served) -> list[Any]:
    return [r for r in served.sandbox.received if (r.method, r.path) == ("POST", SUBMIT)]


def test_a_local_file_reaches_the_url_list_backend_through_the_upload_command(
    served: Served, sample: Path, hosting: Hosting
) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "make it a watercolor"], env=duomi_only(served, hosting.command())
    )
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    assert result.stderr == "saved cat-edit.jpg (1200x896 JPEG) from cat.png\n"
    url = f"{hosting.base_url}/cat.png"
    [submit] = submits(served)
    assert submit.headers["authorization"] == DUOMI_KEY
    assert submit.json == {
        "model": "gemini-3.1-flash-image-preview",
        "prompt": "make it a watercolor",
        "image_urls": [url],
    }
    assert (hosting.folder / "cat.png").read_bytes() == CAT
    assert hosting.fetched == ["/cat.png"]  # the sandbox's task fetched what was uploaded
    with Image.open("cat-edit.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (1200, 896))
    assert read_provenance(Path("cat-edit.jpg")) == {
        "prompt": "make it a watercolor",
        "model": "gemini-3.1-flash-image-preview",
        "backend": "duomi",
        "ratio": "auto",
        "size": None,
        "inputs": [{"name": "cat.png", "sha256": hashlib.sha256(CAT).hexdigest(), "url": url}],
        "version": __version__,
    }
    assert DUOMI_KEY not in result.stderr


def test_backend_duomi_takes_local_files_and_urls_in_their_order(
    served: Served, sample: Path, hosting: Hosting
) -> None:
    Path("person.png").write_bytes(PERSON)
    hat = f"{served.base_url}/samples/hat.png"
    env = backend_env(served) | {
        "NANOEDIT_UPLOAD_VIA": "command", "NANOEDIT_UPLOAD_COMMAND": hosting.command(),
    }  # fmt: skip
    result = run_cli(
        ["edit", "cat.png", "--ref", hat, "--ref", "person.png", "-p", "x", "--backend", "duomi",
         "--sidecar"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    urls = [f"{hosting.base_url}/cat.png", hat, f"{hosting.base_url}/person.png"]
    assert submits(served)[0].json["image_urls"] == urls
    sidecar = json.loads(Path("cat-edit.jpg.json").read_text())
    assert sidecar["provenance"]["inputs"] == [
        {"name": "cat.png", "sha256": hashlib.sha256(CAT).hexdigest(), "url": urls[0]},
        {"name": hat, "sha256": ""},
        {"name": "person.png", "sha256": hashlib.sha256(PERSON).hexdigest(), "url": urls[2]},
    ]


def test_a_backend_sent_bytes_is_still_preferred_for_local_files(
    served: Served, sample: Path, hosting: Hosting
) -> None:
    env = backend_env(served) | {
        "NANOEDIT_UPLOAD_VIA": "command", "NANOEDIT_UPLOAD_COMMAND": hosting.command(),
    }  # fmt: skip
    result = run_cli(["edit", "cat.png", "-p", "x", "--json"], env=env)
    assert json.loads(result.stdout)["backend"] == "openai"
    assert list(hosting.folder.iterdir()) == []


def test_a_gif_is_uploaded_as_the_png_nanoedit_converted_it_to(
    served: Served, hosting: Hosting
) -> None:
    Image.open(io.BytesIO(CAT)).convert("P").save("cat.gif")
    result = run_cli(["edit", "cat.gif", "-p", "x"], env=duomi_only(served, hosting.command()))
    assert result.exit_code == 0, result.stderr
    assert "cat.gif is GIF, which the API does not take; sending it converted losslessly" in (
        result.stderr
    )
    assert submits(served)[0].json["image_urls"] == [f"{hosting.base_url}/cat.png"]
    with Image.open(hosting.folder / "cat.png") as uploaded:
        assert (uploaded.format, uploaded.size) == ("PNG", (640, 480))


def test_a_job_with_an_image_that_is_not_one_uploads_none_of_its_images(
    served: Served, sample: Path, hosting: Hosting
) -> None:
    # A job reads its images as it starts: every one is checked before the first is put online.
    Path("doc.png").write_bytes(b"%PDF-1.7\n%\xe2\xe3")
    result = run_cli(
        ["edit", "cat.png", "--ref", "doc.png", "-p", "x"],
        env=duomi_only(served, hosting.command()),
    )
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr == (
        "error: doc.png is not an image (it starts like a PDF); pass a PNG, JPEG or WebP file\n"
    )
    assert list(hosting.folder.iterdir()) == []
    assert served.sandbox.received == []


def test_without_an_uploader_the_only_key_says_how_to_get_one(served: Served, sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x"], env=duomi_only(served, None))
    assert (result.exit_code, result.stdout) == (3, "")
    # Every registered backend that takes the file as it is, then how local files could reach
    # the URL-list backend that has the key.
    hints = [backend_class(name).setup_hint() for name in backend_names()]
    takes_files = [hint for name, hint in zip(backend_names(), hints, strict=True)
                   if backend_class(name).takes.files]  # fmt: skip
    assert takes_files[0] == (
        "nanoedit config set openai.base_url https://YOUR-SERVER && nanoedit config set "
        "openai.api_key YOUR-KEY"
    )
    assert result.stderr.strip() == (
        f"error: no backend is configured for cat.png; run: {', or: '.join(takes_files)}, "
        "or let nanoedit upload local files for the duomi backend: nanoedit config set "
        "upload.via command && nanoedit config set upload.command 'my-upload \"$1\"' (or try "
        "it with no key: add --sandbox)"
    )
    assert served.sandbox.received == []


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("echo 'bucket not found' >&2; exit 1 # $1",
         "upload.command failed with exit status 1 for cat.png (bucket not found); nothing was "
         "sent. Run it in a shell to see why"),
        ('true "$1"',
         "upload.command printed nothing for cat.png (exit status 0); nothing was sent, make it "
         "print only the file's public http(s) URL"),
        ('echo uploading "$1"; echo https://h.example/cat.png',
         "upload.command printed 2 lines for cat.png, not one URL; nothing was sent, make it "
         "print only the file's public http(s) URL"),
        ("echo ftp://h.example/cat.png # $1",
         "upload.command printed 'ftp://h.example/cat.png' for cat.png, which is not an "
         "http(s) URL; nothing was sent, make it print only the file's public http(s) URL"),
        ('echo "$1"',
         "upload.command printed '{path}' for cat.png, which is not an http(s) URL; nothing was "
         "sent, make it print only the file's public http(s) URL"),
        ('no-such-uploader-here "$1"',
         "upload.command failed for cat.png: command not found (exit status 127"),
    ],
)  # fmt: skip
def test_an_upload_that_fails_or_prints_no_url_exits_3_and_submits_nothing(
    served: Served, sample: Path, command: str, message: str
) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "--json"], env=duomi_only(served, command))
    assert (result.exit_code, json.loads(result.stdout)["error"]["exit_code"]) == (3, 3)
    # A path is shown whole up to 80 characters, then cut with an ellipsis.
    path = str(sample.resolve())
    expected = message.format(path=path if len(path) <= 80 else path[:79] + "…")
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {expected}")
    assert served.sandbox.received == []
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat.png"]


@needs_pidfd
def test_an_upload_past_its_time_limit_is_killed_and_nothing_is_submitted(
    served: Served, sample: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "uploader.pid"
    command = f'echo $$ > {shlex.quote(str(pid_file))}; exec sleep 60 # "$1"'
    env = duomi_only(served, command) | {"NANOEDIT_UPLOAD_TIMEOUT": "0.5"}
    result = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr.strip() == (
        "error: upload.command did not finish within 0.5 s for cat.png and was stopped; "
        "nothing was sent. Make sure it does not wait for input (it gets none), or raise "
        "upload.timeout"
    )
    assert ends(int(pid_file.read_text()))
    assert served.sandbox.received == []


def test_an_uploader_without_its_command_fails_before_any_request(
    served: Served, sample: Path
) -> None:
    env = duomi_only(served, None) | {"NANOEDIT_UPLOAD_VIA": "command"}
    result = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr.strip() == (
        "error: upload.via is command, but upload.command is not set; set it with: nanoedit "
        "config set upload.command 'my-upload \"$1\"'"
    )
    assert served.sandbox.received == []


def test_upload_settings_are_checked_when_set() -> None:
    no_file = run_cli(["config", "set", "upload.command", "my-upload"])
    assert (no_file.exit_code, no_file.stderr.strip()) == (
        2, "error: the command 'my-upload' does not use the file it is given as $1; write it "
        "as, for example: my-upload \"$1\""
    )  # fmt: skip
    unknown = run_cli(["config", "set", "upload.via", "ftp"])
    assert (unknown.exit_code, unknown.stderr.strip()) == (
        2, "error: invalid value 'ftp'; use one of: command"
    )  # fmt: skip
    assert run_cli(["config", "set", "upload.via", "command"]).exit_code == 0
    assert run_cli(["config", "set", "upload.command", 'my-upload "$1"']).exit_code == 0
    listed = run_cli(["config", "list"]).stdout.splitlines()
    assert [line for line in listed if line.startswith("upload.")] == [
        "upload.via = command  (file)",
        'upload.command = my-upload "$1"  (file)',
        "upload.timeout = 120  (default)",
    ]


def test_dry_run_shows_where_the_upload_goes_and_runs_nothing(
    served: Served, sample: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    env = duomi_only(served, f'touch {shlex.quote(str(marker))} # "$1"')
    result = run_cli(["edit", "cat.png", "-p", "x", "--dry-run"], env=env)
    assert (result.exit_code, result.stderr) == (
        0,
        "1 job, 1 image, estimated $0.067 (gemini-3.1-flash-image at $0.067)\n",
    )
    body = {"model": "gemini-3.1-flash-image-preview", "prompt": "x",
            "image_urls": ["<URL from upload.via command for cat.png>"]}  # fmt: skip
    assert f"-d '{json.dumps(body)}'" in result.stdout
    assert not marker.exists()
    assert served.sandbox.received == []


def ends(pid: int, within: float = 10.0) -> bool:
    """Whether the process ``pid`` has ended, or ends within ``within`` seconds (it is
    waited for as an event: a pidfd turns readable when its process exits)."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([handle], [], [], within)
    finally:
        os.close(handle)
    return bool(ready)


@needs_pidfd
def test_ctrl_c_during_an_upload_stops_the_command_and_submits_nothing(
    served: Served, sample: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    command = f'echo $$ > {shlex.quote(str(fifo))}; exec sleep 60 # "$1"'
    # Opened before the run, without blocking: the command's line is the event waited for.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    pids: list[int] = []
    started = threading.Event()

    def watch() -> None:
        ready, _, _ = select.select([reader], [], [], 60)
        if ready:
            pids.append(int(os.read(reader, 64).decode().strip()))
            started.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        # The first Ctrl-C waits for the job under way; the second aborts it, upload and all.
        returncode, stdout, stderr = interrupted_run(
            ["edit", "cat.png", "-p", "x"], Path.cwd(), duomi_only(served, command), started,
            "the upload command's start",
        )  # fmt: skip
    finally:
        watcher.join(60)
        os.close(reader)
    assert (returncode, stdout) == (130, "")
    assert stderr.splitlines() == [
        "warning: Ctrl-C: stopping; no new job is sent, the 1 job under way finishes and saves: "
        "job 1 (cat.png). Ctrl-C again aborts; nanoedit resume takes them up later",
        "error: cat.png: stopped while under way: it was not sent; nanoedit resume 1 sends it",
        "interrupted: nothing more was sent; images already saved are kept",
    ]
    assert ends(pids[0])
    assert served.sandbox.received == []


def test_every_uploader_has_its_keys_and_every_key_set_an_uploader() -> None:
    # The settings (a layer below) list each uploader's keys; the uploaders are in net.
    from nanoedit.net.uploads import UPLOADERS
    from nanoedit.settings.keys import UPLOADER_KEYS

    assert list(UPLOADERS) == list(UPLOADER_KEYS) == ["command"]
