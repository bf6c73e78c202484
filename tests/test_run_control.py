"""A good Unix citizen: short answers, closed pipes, signals, rejected keys, usage errors.

Most tests run through the command line against the sandbox on a loopback port; those about
pipes and signals run the installed ``nanoedit`` command in a child process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    OPENAI_KEY,
    Served,
    backend_env,
    close_stdout,
    error_object,
    image_info,
    interrupted_run,
    run_cli,
    usage_envelope,
)

from nanoedit.sandbox import Sandbox, SandboxRequest, SandboxResponse, SandboxServer, sample_image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))


def default_sigint() -> None:
    """In a child: a child of a non-interactive shell may start with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """Every JSON object a run printed, in order."""
    return [json.loads(line) for line in stdout.splitlines()]


def read_fifo(path: Path, timeout: float) -> str:
    """The first write to a named pipe, waited for at most ``timeout`` seconds."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        assert readable, f"nothing was written to {path} within {timeout} s"
        return os.read(fd, 4096).decode()
    finally:
        os.close(fd)


def ended_within(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` has ended (a zombie counts) within ``timeout`` seconds."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(pidfd)


# Fewer images than asked ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["openai", "duomi"])
def test_fewer_images_than_asked_is_a_warning_and_the_job_keeps_what_came(
    served: Served, sample: Path, backend: str
) -> None:
    served.sandbox.add_faults("fewer")
    source = "cat.png" if backend == "openai" else f"{served.base_url}/samples/cat.png"
    result = run_cli(["edit", source, "-p", "x", "-n", "3", "--json"], env=backend_env(served))
    assert result.exit_code == 0, result.stderr
    warning = f"{source}: asked for 3 images, 2 came back; the job keeps those 2"
    assert result.stderr == (
        f"warning: {warning}\n"
        f"saved cat-edit.jpg (1200x896 JPEG) from {source}\n"
        f"saved cat-edit-2.jpg (1200x896 JPEG) from {source}\n"
    )
    (record,) = json_lines(result.stdout)
    assert (record["ok"], record["backend"], record["warnings"]) == (True, backend, [warning])
    assert [output["path"] for output in record["outputs"]] == ["cat-edit.jpg", "cat-edit-2.jpg"]
    for name in ("cat-edit.jpg", "cat-edit-2.jpg"):
        assert image_info(name) == ("JPEG", (1200, 896))
    assert not Path("cat-edit-3.jpg").exists()
    assert served.sandbox.pending_faults() == []


# Usage errors with --json -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["edit", "cat.png", "-p", "x", "--ratio", "16x9", "--json"],
         "Invalid value for '--ratio': '16x9' is not one of 'auto', '1:1', '2:3', '3:2', '3:4', "
         "'4:3', '4:5', '5:4', '9:16', '16:9', '21:9', '1:4', '4:1', '1:8', '8:1'."),
        (["edit", "--json", "cat.png", "-p", "x", "-n", "0"],
         "Invalid value for '--count' / '-n': 0 is not in the range 1<=x<=10."),
        (["edit", "cat.png", "-p", "x", "--json", "--frobnicate-wildly"], "No such option: --frobnicate-wildly"),
        (["config", "check", "--json", "--frobnicate-wildly"], "No such option: --frobnicate-wildly"),
    ],
)  # fmt: skip
def test_usage_errors_caught_by_the_parser_still_print_the_json_error_object(
    sample: Path, args: list[str], message: str
) -> None:
    result = run_cli(args)
    assert result.exit_code == 2
    assert json_lines(result.stdout) == [usage_envelope(message)]
    # The parser's own text stays on stderr, usage line and all.
    assert result.stderr.startswith("Usage: nanoedit ")
    assert result.stderr.endswith(f"Error: {message}\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--json", "-p", "x", "--size", "3K"],
         "--size: invalid size '3K'; use one of: 512, 1K, 2K, 4K"),
        (["generate", "--json"], 'the prompt is empty; say what you want with -p "..."'),
    ],
)  # fmt: skip
def test_usage_errors_nanoedit_finds_print_the_same_json_error_object(
    args: list[str], message: str
) -> None:
    # Checked by nanoedit, not the parser: the same JSON object, and one error line.
    result = run_cli(args)
    assert result.exit_code == 2
    assert json_lines(result.stdout) == [usage_envelope(message)]
    assert result.stderr == f"error: {message}\n"


def test_usage_errors_without_json_print_nothing_on_stdout(sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "--ratio", "16x9"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.endswith(
        "Error: Invalid value for '--ratio': '16x9' is not one of 'auto', '1:1', '2:3', '3:2', "
        "'3:4', '4:3', '4:5', '5:4', '9:16', '16:9', '21:9', '1:4', '4:1', '1:8', '8:1'.\n"
    )


# Key commands and Ctrl-C -----------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open (Linux)")
def test_ctrl_c_stops_a_key_command_that_is_still_running(
    served: Served, sample: Path, tmp_path: Path
) -> None:
    ready = tmp_path / "key-command-pid"
    os.mkfifo(ready)
    # The shell writes its PID (its own process group's, as it leads a new session), then
    # becomes a sleep that would outlive nanoedit.
    command = f"echo $$ > {shlex.quote(str(ready))}; exec sleep 60"
    env = {
        "NANOEDIT_OPENAI_BASE_URL": served.base_url,
        "NANOEDIT_OPENAI_API_KEY_CMD": command,
    }
    pids: list[int] = []
    started = threading.Event()

    def watch() -> None:
        pids.append(int(read_fifo(ready, timeout=30)))
        started.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        # The first Ctrl-C waits for the job under way; the second aborts it, command and all.
        returncode, stdout, stderr = interrupted_run(
            ["edit", "cat.png", "-p", "x"], Path.cwd(), env, started, "the key command's start"
        )
        assert (returncode, stdout) == (130, "")
        assert stderr.splitlines() == [
            "warning: Ctrl-C: stopping; no new job is sent, the 1 job under way finishes and "
            "saves: job 1 (cat.png). Ctrl-C again aborts; nanoedit resume takes them up later",
            "error: cat.png: stopped while under way: it was not sent; nanoedit resume 1 sends it",
            "interrupted: nothing more was sent; images already saved are kept",
        ]
        assert ended_within(pids[0], timeout=10), "the key command outlived nanoedit"
        assert served.sandbox.received == []
    finally:
        watcher.join(30)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


# A rejected key -----------------------------------------------------------------------------------

WRONG_KEY = "sk-wrong-key-123456789"
REJECTED = (
    r"(?P<host>127\.0\.0\.1:\d+) rejected the openai API key \(invalid token \(request id: "
    r"\d{26}\)\); "
)
FROM_ENV = (
    "the key comes from NANOEDIT_OPENAI_API_KEY, which overrides the config file: "
    "unset NANOEDIT_OPENAI_API_KEY or fix it"
)


def copies_of_cat(*names: str) -> None:
    for name in names:
        Path(name).write_bytes(sample_image("cat.png")[0])


def test_a_rejected_key_stops_the_batch_and_says_so_once(served: Served) -> None:
    names = ["a.png", "b.png", "c.png", "d.png", "e.png", "f.png"]
    copies_of_cat(*names)
    env = backend_env(served) | {"NANOEDIT_OPENAI_API_KEY": WRONG_KEY}
    result = run_cli(["edit", *names, "-p", "x", "-j", "1", "--json"], env=env)
    assert result.exit_code == 3
    estimate, error, summary = result.stderr.splitlines()
    assert estimate == "6 jobs, 6 images, estimated $0.402 (gemini-3.1-flash-image at $0.067)"
    assert re.fullmatch(f"error: {REJECTED}{re.escape(FROM_ENV)}; 5 jobs not sent", error), error
    assert summary == "6 jobs: 0 done, 1 failed, 5 not sent, 0 images saved"
    records = json_lines(result.stdout)
    assert [(r["inputs"], r["ok"], r["sent"]) for r in records] == [
        (["a.png"], False, True),
        *(([name], False, False) for name in names[1:]),
    ]
    assert {json.dumps(r["error"]) for r in records} == {
        json.dumps(error_object("auth", error.removeprefix("error: "), 3, "invalid_api_key"))
    }
    assert [r.path for r in served.sandbox.received] == ["/v1/images/edits"]
    assert WRONG_KEY not in result.stdout + result.stderr


class Together(Sandbox):
    """A sandbox that answers its first ``parties`` API POSTs only once all of them are in."""

    def __init__(self, parties: int) -> None:
        super().__init__(keys=frozenset({OPENAI_KEY}))
        self.barrier = threading.Barrier(parties, timeout=30)

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method == "POST":
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait()
        return super().handle(request)


def test_jobs_in_flight_when_the_key_is_rejected_say_it_once_too(isolated: Path) -> None:
    names = ["a.png", "b.png", "c.png", "d.png"]
    copies_of_cat(*names)
    sandbox = Together(parties=2)
    with SandboxServer(sandbox) as server:
        env = {"NANOEDIT_OPENAI_BASE_URL": server.base_url, "NANOEDIT_OPENAI_API_KEY": WRONG_KEY}
        result = run_cli(["edit", *names, "-p", "x", "-j", "2", "--json"], env=env)
    assert result.exit_code == 3
    estimate, error, summary = result.stderr.splitlines()
    assert estimate == "4 jobs, 4 images, estimated $0.268 (gemini-3.1-flash-image at $0.067)"
    assert re.fullmatch(f"error: {REJECTED}{re.escape(FROM_ENV)}; 2 jobs not sent", error), error
    assert summary == "4 jobs: 0 done, 2 failed, 2 not sent, 0 images saved"
    records = {r["inputs"][0]: r for r in json_lines(result.stdout)}
    assert {name: records[name]["sent"] for name in names} == {
        "a.png": True, "b.png": True, "c.png": False, "d.png": False
    }  # fmt: skip
    assert [r.path for r in sandbox.received] == ["/v1/images/edits"] * 2


@pytest.mark.parametrize(
    ("where", "advice"),
    [
        ("env", FROM_ENV),
        ("file", "set a valid one with: nanoedit config set openai.api_key KEY"),
        ("env-command", "check what the command in NANOEDIT_OPENAI_API_KEY_CMD prints, "
                        "or set openai.api_key"),
        ("file-command", "check what openai.api_key_cmd prints, or set openai.api_key"),
    ],
)  # fmt: skip
def test_a_rejected_key_names_where_it_came_from(
    served: Served, sample: Path, where: str, advice: str
) -> None:
    env = {"NANOEDIT_OPENAI_BASE_URL": served.base_url}
    command = f"echo {WRONG_KEY}"
    if where == "env":
        env["NANOEDIT_OPENAI_API_KEY"] = WRONG_KEY
    elif where == "env-command":
        env["NANOEDIT_OPENAI_API_KEY_CMD"] = command
    else:
        key, value = (
            ("openai.api_key", WRONG_KEY) if where == "file" else ("openai.api_key_cmd", command)
        )
        assert run_cli(["config", "set", key, value]).exit_code == 0
    result = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    assert (result.exit_code, result.stdout) == (3, "")
    assert re.fullmatch(f"error: {REJECTED}{re.escape(advice)}\n", result.stderr), result.stderr


# A closed stdout ----------------------------------------------------------------------------------


class Gated(Sandbox):
    """A sandbox that holds the ``hold``-th API POST until ``gate`` opens."""

    def __init__(self, hold: int) -> None:
        super().__init__(keys=frozenset({OPENAI_KEY}))
        self.hold = hold
        self.posts = 0
        self.arrived = threading.Event()
        self.gate = threading.Event()
        self._count = threading.Lock()

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method == "POST":
            with self._count:
                self.posts += 1
                number = self.posts
            if number == self.hold:
                self.arrived.set()
                assert self.gate.wait(30), "the test never opened the gate"
        return super().handle(request)


@pytest.fixture
def gated() -> Iterator[tuple[Gated, str]]:
    """A served sandbox that holds the second edit until the test lets it go."""
    sandbox = Gated(hold=2)
    with SandboxServer(sandbox) as server:
        yield sandbox, server.base_url
        sandbox.gate.set()


def test_a_pipe_closed_by_its_reader_stops_the_batch_quietly_with_141(
    gated: tuple[Gated, str], tmp_path: Path
) -> None:
    sandbox, base_url = gated
    names = ["a.png", "b.png", "c.png", "d.png", "e.png"]
    copies_of_cat(*names)
    env = dict(os.environ) | {
        "NANOEDIT_OPENAI_BASE_URL": base_url,
        "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY,
    }
    run = subprocess.Popen(
        [NANOEDIT, "edit", *names, "-p", "x", "-j", "1"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert run.stdout is not None
        # The reader takes the first line and goes away, as `| head -1` does, while the
        # second job is at the server.
        assert run.stdout.readline() == "a-edit.jpg\n"
        assert sandbox.arrived.wait(30)
        run.stdout.close()
        sandbox.gate.set()
        _, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
        run.wait()
    assert run.returncode == 141
    assert stderr == (
        "5 jobs, 5 images, estimated $0.335 (gemini-3.1-flash-image at $0.067)\n"
        "saved a-edit.jpg (1200x896 JPEG) from a.png\n"
        "stopped: stdout was closed; 3 jobs not sent, 2 images saved\n"
    )
    # The second job was paid for: its image is saved whole; no temporary file is left.
    assert sandbox.posts == 2
    assert sorted(p.name for p in Path.cwd().iterdir()) == sorted(
        [*names, "a-edit.jpg", "b-edit.jpg"]
    )
    assert image_info("b-edit.jpg") == ("JPEG", (1200, 896))


def test_a_closed_stdout_sends_nothing_and_exits_141(served: Served, sample: Path) -> None:
    env = dict(os.environ) | backend_env(served)
    run = subprocess.run(
        [NANOEDIT, "edit", "cat.png", "-p", "x"], env=env, stderr=subprocess.PIPE, text=True,
        preexec_fn=close_stdout, timeout=60,
    )  # fmt: skip
    assert run.returncode == 141
    assert run.stderr == "stopped: stdout was closed; 1 job not sent, 0 images saved\n"
    assert served.sandbox.received == []
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["cat.png"]


@pytest.mark.parametrize(
    "args",
    [
        ["sandbox", "faults"],
        ["config", "path"],
        ["config", "list"],
        ["history", "path"],
        ["completion", "bash"],
        ["--help"],
        ["edit", "--help"],
        ["sandbox", "serve", "--help"],
    ],
)
def test_every_command_whose_reader_left_exits_141_quietly(args: list[str]) -> None:
    # The reader is gone before the first line, as `| head -0` leaves it: every write fails
    # with EPIPE. Before the fix most of these exited 1, the parser's own answer to EPIPE.
    reader, writer = os.pipe()
    os.close(reader)
    try:
        run = subprocess.run(
            [NANOEDIT, *args], stdout=writer, stderr=subprocess.PIPE, text=True, timeout=60
        )
    finally:
        os.close(writer)
    assert (run.returncode, run.stderr) == (141, ""), args


FULL = Path("/dev/full")  # every write to it fails: No space left on device


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full here")
def test_a_stdout_that_cannot_be_written_stops_the_batch_with_an_error(served: Served) -> None:
    # As on a closed pipe, nothing new is sent once a path cannot be written and what was
    # paid for is saved; but a full disk is an error: said, and exit 4, never a traceback.
    names = ["a.png", "b.png", "c.png"]
    copies_of_cat(*names)
    env = dict(os.environ) | backend_env(served)
    with FULL.open("w") as full:
        run = subprocess.run(
            [NANOEDIT, "edit", *names, "-p", "x", "-j", "1"], env=env, stdout=full,
            stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    assert run.returncode == 4
    assert run.stderr.splitlines()[-1] == (
        "error: could not write to stdout (No space left on device), 2 jobs not sent; 1 image saved"
    )
    assert [r.method for r in served.sandbox.received] == ["POST", "GET"]  # one edit, its image
    assert image_info("a-edit.jpg") == ("JPEG", (1200, 896))
    assert sorted(p.name for p in Path.cwd().iterdir()) == sorted([*names, "a-edit.jpg"])


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full here")
def test_any_command_says_when_stdout_cannot_be_written(tmp_path: Path) -> None:
    # Help, lists and plans fail the same way, in one line, exit 4.
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    env = dict(os.environ) | {
        "NANOEDIT_OPENAI_BASE_URL": "http://127.0.0.1:9", "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY,
        "NANOEDIT_CONFIG_DIR": str(tmp_path / "config"), "NANOEDIT_DATA_DIR": str(tmp_path),
    }  # fmt: skip
    for args in (["--help"], ["edit", "--help"], ["config", "list"], ["config", "path"],
                 ["completion", "bash"], ["edit", "cat.png", "-p", "x", "--dry-run", "-q"]):  # fmt: skip
        with FULL.open("w") as full:
            run = subprocess.run([NANOEDIT, *args], env=env, stdout=full, stderr=subprocess.PIPE,
                                 text=True, timeout=60)  # fmt: skip
        assert (run.returncode, run.stderr) == (
            4, "error: could not write to stdout (No space left on device)\n"
        ), args  # fmt: skip


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full here")
def test_a_stderr_that_cannot_be_written_loses_messages_not_the_exit_code(
    served: Served,
) -> None:
    # The messages are lost; the exit code still says the image was saved (a script reading
    # 1 there would pay for the job again), or what went wrong.
    copies_of_cat("a.png")
    env = dict(os.environ) | backend_env(served)
    runs = []
    for args in (["a.png"], ["missing.png"]):
        with FULL.open("w") as full:
            runs.append(subprocess.run([NANOEDIT, "edit", *args, "-p", "x"], env=env,
                                       stdout=subprocess.PIPE,
                                       stderr=full, text=True, timeout=60))  # fmt: skip
    assert [(run.returncode, run.stdout) for run in runs] == [(0, "a-edit.jpg\n"), (4, "")]
    assert image_info("a-edit.jpg") == ("JPEG", (1200, 896))
    with FULL.open("w") as full:
        both = subprocess.run([NANOEDIT, "edit", "a.png", "-p", "x"], env=env, stdout=full,
                              stderr=full, timeout=60)  # fmt: skip
    assert both.returncode == 4  # the path could not be said; the image is saved
    assert image_info("a-edit-2.jpg") == ("JPEG", (1200, 896))


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full here")
def test_the_version_and_a_sample_end_as_any_command_when_stdout_fails() -> None:
    # --version is answered before the command line loads, and `sandbox sample -o -` writes
    # bytes: each ends as the rest do, 4 with an error on a full device, 141 when closed.
    for args in (["--version"], ["sandbox", "sample", "cat.png", "-o", "-"]):
        with FULL.open("w") as full:
            failed = subprocess.run([NANOEDIT, *args], stdout=full, stderr=subprocess.PIPE,
                                    text=True, timeout=60)  # fmt: skip
        closed = subprocess.run([NANOEDIT, *args], stderr=subprocess.PIPE, text=True,
                                preexec_fn=close_stdout, timeout=60)  # fmt: skip
        said = "the sample cat.png could not be written to stdout" if "sample" in args else (
            "could not write to stdout"
        )  # fmt: skip
        assert (failed.returncode, failed.stderr) == (
            4, f"error: {said} (No space left on device)\n"
        ), args  # fmt: skip
        assert (closed.returncode, closed.stderr) == (141, ""), args


# sandbox serve ------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sandbox_serve_gives_its_url_on_stdout_and_stops_at_once_on_a_signal(
    stop: signal.Signals,
) -> None:
    serve = subprocess.Popen(
        [NANOEDIT, "sandbox", "serve", "--port", "0"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        assert serve.stdout is not None and serve.stderr is not None
        url = serve.stdout.readline()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+\n", url), url
        base_url = url.strip()
        assert serve.stderr.readline() == f"serving on {base_url}\n"
        answer = httpx.get(f"{base_url}/v1/models", headers={"Authorization": "Bearer k"})
        assert answer.status_code == 200
        assert serve.stderr.readline() == "GET /v1/models 200\n"
        serve.send_signal(stop)
        stdout, stderr = serve.communicate(timeout=10)
    finally:
        serve.kill()
        serve.wait()
    assert (serve.returncode, stdout, stderr) == (0, "", f"stopped ({stop.name})\n")


@pytest.mark.parametrize("port", ["99999", "65536", "-1"])
def test_sandbox_serve_refuses_a_port_out_of_range_as_a_usage_error(port: str) -> None:
    # The installed command, as it was found: before the fix, an OverflowError traceback.
    serve = subprocess.run(
        [NANOEDIT, "sandbox", "serve", "--port", port],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (serve.returncode, serve.stdout) == (2, "")
    assert serve.stderr.endswith(
        f"Error: Invalid value for '--port': {port} is not in the range 0<=x<=65535.\n"
    ), serve.stderr
    assert "Traceback" not in serve.stderr


def handler_threads_end(timeout: float) -> None:
    """Wait for the running threads the servers started to answer connections."""
    for thread in threading.enumerate():
        # One not started yet cannot be joined, and has nothing to say yet.
        if thread.name.endswith("(process_request_thread)") and thread.is_alive():
            thread.join(timeout)
            assert not thread.is_alive(), f"{thread.name} still runs"


class LineLog(io.StringIO):
    """A server log whose lines a test can wait for."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def write(self, text: str) -> int:
        with self.changed:
            written = super().write(text)
            self.changed.notify_all()
        return written

    def wait_for(self, line: str, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: line in self.getvalue().splitlines(), timeout)


def reset(connection: socket.socket) -> None:
    """Close a connection with a TCP RST, as a client that crashed or was killed does."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def test_clients_that_go_away_leave_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    log = LineLog()
    with SandboxServer(Sandbox(), log=log) as server:
        address = httpx.URL(server.base_url)
        assert address.port is not None
        # One answered, then reset while the server waits for the next request on it.
        idle = socket.create_connection((address.host, address.port), timeout=10)
        idle.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n")
        answer = b""
        while b"}]}" not in answer:
            answer += idle.recv(65536)
        reset(idle)
        handler_threads_end(timeout=10)
        # One reset in the middle of its body.
        upload = socket.create_connection((address.host, address.port), timeout=10)
        upload.sendall(
            b"POST /v1/images/edits HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n"
        )
        reset(upload)
        assert log.wait_for("POST /v1/images/edits (the client went away)", timeout=10)
        handler_threads_end(timeout=10)
    assert log.getvalue().splitlines() == [
        "GET /v1/models 200",
        "POST /v1/images/edits (the client went away)",
    ]
    assert capfd.readouterr().err == ""


class Broken(Sandbox):
    """A sandbox with a bug: its answer's body is text, which no socket takes."""

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        return SandboxResponse(200, {}, "not bytes")  # type: ignore[arg-type]


def test_a_bug_in_the_server_is_still_reported(capfd: pytest.CaptureFixture[str]) -> None:
    with SandboxServer(Broken()) as server:
        address = httpx.URL(server.base_url)
        assert address.port is not None
        with socket.create_connection((address.host, address.port), timeout=10) as client:
            client.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
            while client.recv(65536):  # the head, then the connection closed
                pass
        handler_threads_end(timeout=10)
    err = capfd.readouterr().err
    assert "Exception occurred during processing of request from ('127.0.0.1', " in err
    assert err.rstrip().endswith("-" * 40)
    assert "TypeError: a bytes-like object is required, not 'str'" in err


# Unknown hosts ------------------------------------------------------------------------------------


def test_an_unknown_api_host_fails_at_once_naming_it(sample: Path) -> None:
    env = {
        "NANOEDIT_OPENAI_BASE_URL": "https://gw.example.invalid/v1",
        "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY,
    }
    result = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    # No retry: a name that does not resolve now will not resolve in a second either.
    assert (result.exit_code, result.stdout) == (6, "")
    assert result.stderr == "error: cannot resolve gw.example.invalid; check the base URL\n"


def test_an_unknown_input_host_fails_at_once_naming_it(served: Served) -> None:
    url = "https://img.example.invalid/cat.png"
    result = run_cli(["edit", url, "-p", "x", "--backend", "openai"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (6, "")
    assert result.stderr == "error: cannot resolve img.example.invalid; check the input URL\n"
    assert served.sandbox.received == []


# Input URLs that need authorization ----------------------------------------------------------------


def test_an_input_url_refused_with_403_gets_advice_for_inputs(served: Served) -> None:
    served.sandbox.add_faults("expired")
    url = f"{served.base_url}/files/cat.png"
    result = run_cli(["edit", url, "-p", "x", "--backend", "openai"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (4, "")
    host = served.base_url.removeprefix("http://")
    assert result.stderr == (
        f"error: the input {url} could not be downloaded from {host}: HTTP 403 (it starts like "
        "XML or markup); the URL needs authorization or has expired; pass a public URL, or "
        "download the image and pass the file\n"
    )
    assert [r.path for r in served.sandbox.received] == ["/files/cat.png"]


# --dry-run --json ---------------------------------------------------------------------------------


def test_dry_run_with_json_prints_each_request_as_a_json_object(
    served: Served, sample: Path
) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    result = run_cli(
        ["edit", "cat.png", url, "-p", "x", "--ratio", "16:9", "--dry-run", "--json"],
        env=backend_env(served),
    )
    assert (result.exit_code, result.stderr) == (
        0,
        "2 jobs, 2 images, estimated $0.134 (gemini-3.1-flash-image at $0.067)\n",
    )
    assert json_lines(result.stdout) == [
        {"schema": "nanoedit/dry-run/1", "job": "cat.png", "backend": "openai", "model": "nano-banana-2", "names": ["cat-edit"],
         "method": "POST", "url": f"{served.base_url}/v1/images/edits",
         "headers": {"Authorization": "Bearer ****0001"},
         "fields": {"model": "nano-banana-2", "prompt": "x", "n": "1", "response_format": "url",
                    "aspect_ratio": "16:9"},
         "files": [{"field": "image", "source": "cat.png"}], "json": None, "note": None},
        {"schema": "nanoedit/dry-run/1", "job": url, "backend": "duomi", "model": "gemini-3.1-flash-image-preview",
         "names": ["dog-edit"],
         "method": "POST", "url": f"{served.base_url}/api/gemini/nano-banana-edit",
         "headers": {"Authorization": "****0002"}, "fields": {}, "files": [],
         "json": {"model": "gemini-3.1-flash-image-preview", "prompt": "x", "image_urls": [url],
                  "aspect_ratio": "16:9"},
         "note": f"then poll GET {served.base_url}/api/gemini/nano-banana/TASK_ID until it succeeds"},
    ]  # fmt: skip
    assert served.sandbox.received == []


# --response-format on a backend that cannot honour it ----------------------------------------------


def test_b64_json_on_the_url_list_backend_draws_a_warning(served: Served) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    result = run_cli(
        ["edit", url, "-p", "x", "--response-format", "b64_json"], env=backend_env(served)
    )
    assert (result.exit_code, result.stdout) == (0, "dog-edit.jpg\n"), result.stderr
    assert result.stderr == (
        "warning: the duomi backend returns images as URLs only, so --response-format b64_json "
        "does not apply to its jobs; their images are downloaded from the URLs\n"
        f"saved dog-edit.jpg (1200x896 JPEG) from {url}\n"
    )
    # The multipart backend honours it: no warning there.
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    multipart = run_cli(
        ["edit", "cat.png", "-p", "x", "--response-format", "b64_json"], env=backend_env(served)
    )
    assert (multipart.exit_code, multipart.stderr) == (
        0,
        "saved cat-edit.jpg (1200x896 JPEG) from cat.png\n",
    )
