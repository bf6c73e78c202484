"""The installed `nanoedit` command against `nanoedit sandbox serve` on a real loopback port."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DUOMI_KEY, OPENAI_KEY, STOPPING, interrupted_run, wait_for
from PIL import Image

from nanoedit.journal.store import Journal
from nanoedit.sandbox import Sandbox, SandboxServer, sample_image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))


@pytest.fixture
def server() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`nanoedit sandbox serve --port 0` in a child process; yields its base URL."""
    process = subprocess.Popen(
        [NANOEDIT, "sandbox", "serve", "--port", "0", "--task-seconds", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    # The base URL alone on stdout; the log on stderr.
    first = process.stdout.readline()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+\n", first), first
    try:
        yield first.strip(), process
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()


def test_installed_command_edits_over_both_backends(
    server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    base_url, process = server
    env = dict(os.environ) | {
        "NANOEDIT_OPENAI_BASE_URL": base_url,
        "NANOEDIT_OPENAI_API_KEY": "sk-any-key-works-here",
        "NANOEDIT_DUOMI_BASE_URL": base_url,
        "NANOEDIT_DUOMI_API_KEY": "duomi-any-key",
        "NANOEDIT_DUOMI_POLL_INTERVAL": "0.05",
    }
    sample = subprocess.run(
        [NANOEDIT, "sandbox", "sample", "cat.png", "-o", str(tmp_path / "cat.png")],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert sample.stdout == f"{tmp_path / 'cat.png'}\n"
    local = subprocess.run(
        [NANOEDIT, "edit", str(tmp_path / "cat.png"), "-p", "make it a watercolor",
         "--ratio", "16:9", "-d", str(tmp_path / "out"), "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr
    record = json.loads(local.stdout)
    assert (record["backend"], record["outputs"][0]["path"]) == (
        "openai", str(tmp_path / "out" / "cat-edit.jpg")
    )  # fmt: skip
    remote = subprocess.run(
        [NANOEDIT, "edit", f"{base_url}/samples/dog.jpg", "-p", "add a hat", "-d", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert (remote.returncode, remote.stdout) == (0, f"{tmp_path / 'out' / 'dog-edit.jpg'}\n"), (
        remote.stderr
    )
    with Image.open(tmp_path / "out" / "dog-edit.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (1200, 896))
    process.terminate()
    assert process.stderr is not None
    log = process.stderr.read()
    assert "POST /v1/images/edits 200" in log
    assert "POST /api/gemini/nano-banana-edit 200" in log
    assert "sk-any-key-works-here" not in log and "duomi-any-key" not in log


def test_ctrl_c_twice_exits_130_and_leaves_no_partial_file(isolated: Path) -> None:
    # The answer is held until the test lets it go: Ctrl-C comes while the request is out.
    release = threading.Event()
    arrived = threading.Event()

    def hold(seconds: float) -> None:
        arrived.set()
        release.wait(seconds)

    sandbox = Sandbox(keys=frozenset({OPENAI_KEY}), latency=30, sleep=hold)
    try:
        with SandboxServer(sandbox) as server:
            (isolated / "cat.png").write_bytes(sample_image("cat.png")[0])
            env = {"NANOEDIT_OPENAI_BASE_URL": server.base_url,
                   "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY}  # fmt: skip
            # The first Ctrl-C waits for the paid request; the second aborts it.
            returncode, stdout, stderr = interrupted_run(
                ["edit", "cat.png", "-p", "x"], isolated, env, arrived,
                "the edit request to reach the server",
            )  # fmt: skip
            release.set()
    finally:
        release.set()
    assert (returncode, stdout) == (130, "")
    assert stderr.splitlines() == [
        "warning: Ctrl-C: stopping; no new job is sent, the 1 job under way finishes and saves: "
        "job 1 (cat.png). Ctrl-C again aborts; nanoedit resume takes them up later",
        "error: cat.png: stopped while under way: its request went out, so it may have been "
        "charged; "
        "nanoedit resume 1 --retry-unsafe sends it again",
        "interrupted: nothing more was sent; images already saved are kept",
    ]
    assert [r.path for r in sandbox.received] == ["/v1/images/edits"]
    assert sorted(p.name for p in isolated.iterdir()) == ["cat.png"]


def test_ctrl_c_twice_in_a_batch_keeps_what_was_saved_and_stops_the_rest_at_once(
    isolated: Path,
) -> None:
    sandbox = Sandbox(keys=frozenset({OPENAI_KEY, DUOMI_KEY}), faults="task-stuck")
    with SandboxServer(sandbox) as server:
        (isolated / "cat.png").write_bytes(sample_image("cat.png")[0])
        env = dict(os.environ) | {
            "NANOEDIT_OPENAI_BASE_URL": server.base_url, "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY,
            "NANOEDIT_DUOMI_BASE_URL": server.base_url, "NANOEDIT_DUOMI_API_KEY": DUOMI_KEY,
            "NANOEDIT_DUOMI_POLL_INTERVAL": "0.2",
        }  # fmt: skip
        # The local file goes multipart and is saved at once; the URL's task never ends.
        run = subprocess.Popen(
            [NANOEDIT, "edit", f"{server.base_url}/samples/dog.jpg", "cat.png", "-p", "x",
             "-j", "2"],
            cwd=isolated, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        assert run.stdout is not None and run.stderr is not None
        lines: list[str] = []

        def said(text: str) -> bool:
            return any(text in line for line in lines)

        def read_err() -> None:
            assert run.stderr is not None
            for line in run.stderr:
                lines.append(line)

        reader = threading.Thread(target=read_err)
        reader.start()
        try:
            wait_for(lambda: said("saved cat-edit.jpg"), "cat-edit.jpg to be saved")
            # The first Ctrl-C waits for the task, which never ends; the second aborts.
            run.send_signal(signal.SIGINT)
            wait_for(lambda: said(STOPPING), "the stopping notice")
            polls_before = len(sandbox.received)
            started = time.monotonic()
            run.send_signal(signal.SIGINT)
            out = run.stdout.read()
            run.wait(timeout=30)
            stopped = time.monotonic() - started
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
            reader.join(30)
            run.stdout.close()
            run.stderr.close()
        assert (run.returncode, out) == (130, "cat-edit.jpg\n")
        with Journal(Path(os.environ["NANOEDIT_DATA_DIR"])) as journal:
            record = journal.get(1)
        assert record is not None
        [task_id] = record.tasks
        assert (record.state, record.backend) == ("submitted", "duomi")
        assert [line.rstrip("\n") for line in lines] == [
            "2 jobs, 2 images, estimated $0.134 (gemini-3.1-flash-image at $0.067)",
            "saved cat-edit.jpg (1200x896 JPEG) from cat.png",
            "warning: Ctrl-C: stopping; no new job is sent, the 1 job under way finishes and "
            f"saves: job 1 ({server.base_url}/samples/dog.jpg). Ctrl-C again aborts; nanoedit "
            "resume takes them up later",
            f"error: {server.base_url}/samples/dog.jpg: stopped while under way: task {task_id} "
            "was submitted; nanoedit resume 1 saves its result",
            "interrupted: nothing more was sent; images already saved are kept",
        ]
        assert stopped < 5, stopped
        # The saved image is whole; nothing else, no temporary file, was left behind.
        assert sorted(p.name for p in isolated.iterdir()) == ["cat-edit.jpg", "cat.png"]
        with Image.open(isolated / "cat-edit.jpg") as image:
            image.load()
        # The process is gone, so nothing more can come from it; the task was not cancelled.
        assert len(sandbox.received) <= polls_before + 1  # polling stopped with the run
        assert [r.method for r in sandbox.received if r.method != "GET"] == ["POST", "POST"]
