"""Shared fixtures: an isolated user directory, a sandbox on loopback, and a CLI runner."""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from nanoedit.cli.app import app
from nanoedit.clock import Clock
from nanoedit.journal.records import JobRecord
from nanoedit.journal.store import Journal
from nanoedit.registry import backend_classes
from nanoedit.sandbox import Sandbox, SandboxServer, sample_image

OPENAI_KEY = "sk-test-openai-key-0001"
DUOMI_KEY = "duomi-test-key-0002"
GEMINI_KEY = "AIza-test-gemini-key-0003"
FAL_KEY = "fal-test-key-id:fal-test-secret-0003"
REPLICATE_KEY = "r8_test_replicate_token_0004"
OPENROUTER_KEY = "sk-or-v1-test-openrouter-key-0003"
# The tables as version 1 of the journal made them (before sandbox jobs were marked and jobs
# claimed): what an older nanoedit left on a user's disk.
JOURNAL_VERSION_1 = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL,
    pid INTEGER NOT NULL, command TEXT NOT NULL, cwd TEXT NOT NULL);
CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, run INTEGER NOT NULL REFERENCES runs(id),
    created REAL NOT NULL, updated REAL NOT NULL, state TEXT NOT NULL, kind TEXT NOT NULL,
    backend TEXT NOT NULL, model TEXT NOT NULL, prompt TEXT NOT NULL, fingerprint TEXT NOT NULL,
    spec TEXT NOT NULL, provenance TEXT, tasks TEXT NOT NULL DEFAULT '[]',
    results TEXT NOT NULL DEFAULT '[]', error_kind TEXT, error TEXT,
    images INTEGER NOT NULL DEFAULT 0, cost REAL, usage TEXT);
CREATE INDEX jobs_state ON jobs(state);
CREATE INDEX jobs_fingerprint ON jobs(fingerprint);
CREATE INDEX jobs_created ON jobs(created);
CREATE VIRTUAL TABLE jobs_text USING fts5(prompt, content='jobs', content_rowid='id');
CREATE TRIGGER jobs_text_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO jobs_text(rowid, prompt) VALUES (new.id, new.prompt);
END;
CREATE TRIGGER jobs_text_delete AFTER DELETE ON jobs BEGIN
    INSERT INTO jobs_text(jobs_text, rowid, prompt) VALUES ('delete', old.id, old.prompt);
END;
PRAGMA user_version = 1;
"""
# The console script installed beside this interpreter.
NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own working folder, config folder and data folder, and no NANOEDIT_* variables
    (nor a provider's own key variable, such as FAL_KEY or OPENROUTER_API_KEY)."""
    provider_keys = {name for backend in backend_classes() for name in backend.key_env}
    for name in list(os.environ):
        if name.startswith("NANOEDIT_") or name in ("NO_COLOR", "FORCE_COLOR", *provider_keys):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NANOEDIT_CONFIG_DIR", str(tmp_path / "config"))
    # The journal and its spool: each test its own, never the user's.
    monkeypatch.setenv("NANOEDIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


class SkippingClock(Clock):
    """Real time, except that a wait returns at once and moves this clock on by its length:
    a run that waits for a retry or a task costs no more than its requests."""

    def __init__(self) -> None:
        self.skipped = 0.0
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """The real monotonic clock, plus every wait skipped so far."""
        return time.monotonic() + self.skipped

    def now(self) -> datetime:
        """The real time of day, plus every wait skipped so far."""
        return datetime.now(UTC) + timedelta(seconds=self.skipped)

    def wait(self, seconds: float, cancel: threading.Event) -> bool:
        """Skip the wait (none once the run is cancelled)."""
        if cancel.is_set():
            return True
        with self._lock:
            self.skipped += seconds
            self.waits.append(seconds)
        return False


@pytest.fixture
def clock() -> SkippingClock:
    """A clock whose waits are skipped; ``served`` keeps its tasks' time on it."""
    return SkippingClock()


@dataclass
class Served:
    """A sandbox serving on a loopback port."""

    sandbox: Sandbox
    base_url: str


@pytest.fixture
def served(clock: SkippingClock) -> Iterator[Served]:
    """A fresh sandbox over real HTTP on 127.0.0.1, with the test keys; its tasks take their
    time on ``clock``, so a run given that clock skips its polls' waits."""
    sandbox = Sandbox(
        keys=frozenset({OPENAI_KEY, DUOMI_KEY, GEMINI_KEY, FAL_KEY, REPLICATE_KEY, OPENROUTER_KEY}),
        clock=clock.monotonic,
    )
    with SandboxServer(sandbox) as server:
        yield Served(sandbox, server.base_url)


@pytest.fixture
def held_answers() -> Iterator[tuple[Served, threading.Event]]:
    """A served sandbox whose API answers wait until the event is set."""
    release = threading.Event()

    def hold(seconds: float) -> None:
        release.wait(seconds)

    sandbox = Sandbox(keys=frozenset({OPENAI_KEY}), latency=60, sleep=hold)
    try:
        with SandboxServer(sandbox) as server:
            yield Served(sandbox, server.base_url), release
    finally:
        release.set()


@pytest.fixture
def sample(isolated: Path) -> Path:
    """cat.png from the sandbox's samples, written to the working folder."""
    path = isolated / "cat.png"
    path.write_bytes(sample_image("cat.png")[0])
    return path


def backend_env(
    served: Served,
    *,
    openai: bool = True,
    duomi: bool = True,
    gemini: bool = False,
    fal: bool = False,
    replicate: bool = False,
    openrouter: bool = False,
) -> dict[str, str]:
    """Environment that points nanoedit at the served sandbox (the newer backends only when
    asked for, so automatic selection among the first two stays as it was)."""
    # Short waits: the retry policy itself is what the fault tests check, not its patience.
    env = {"NANOEDIT_DUOMI_POLL_INTERVAL": "0.01", "NANOEDIT_BACKOFF": "0.01"}
    if openai:
        env |= {"NANOEDIT_OPENAI_BASE_URL": served.base_url, "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY}
    if duomi:
        env |= {"NANOEDIT_DUOMI_BASE_URL": served.base_url, "NANOEDIT_DUOMI_API_KEY": DUOMI_KEY}
    if gemini:
        env |= {"NANOEDIT_GEMINI_BASE_URL": served.base_url, "NANOEDIT_GEMINI_API_KEY": GEMINI_KEY}
    if fal:
        env |= {
            "NANOEDIT_FAL_BASE_URL": served.base_url,
            "NANOEDIT_FAL_API_KEY": FAL_KEY,
            "NANOEDIT_FAL_POLL_INTERVAL": "0.01",
        }
    if replicate:
        env |= {
            "NANOEDIT_REPLICATE_BASE_URL": served.base_url,
            "NANOEDIT_REPLICATE_API_KEY": REPLICATE_KEY,
            "NANOEDIT_REPLICATE_POLL_INTERVAL": "0.01",
        }
    if openrouter:
        env |= {
            "NANOEDIT_OPENROUTER_BASE_URL": f"{served.base_url}/api",
            "NANOEDIT_OPENROUTER_API_KEY": OPENROUTER_KEY,
        }
    return env


class LogWatch(io.StringIO):
    """A sandbox log that tells when a line with ``needle`` has been written."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = threading.Event()

    def write(self, text: str) -> int:
        if self.needle in text:
            self.seen.set()
        return super().write(text)


# What a run says on stderr when a first Ctrl-C or SIGTERM makes it stop sending.
STOPPING = "stopping; no new job is sent"


def interrupted_run(
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    seen: threading.Event,
    what: str,
    presses: int = 2,
    sig: signal.Signals = signal.SIGINT,
    on_stopping: Callable[[], object] | None = None,
) -> tuple[int, str, str]:
    """Run the installed command, send ``sig`` (Ctrl-C's SIGINT) once ``seen`` is set, and
    return its exit code, stdout and stderr. With ``presses=2`` (an abort), the second is sent
    once the run has said it is stopping (the first only stops new jobs from being sent).
    ``on_stopping`` is called once it has said so (e.g. to let held answers go)."""
    command = str(Path(sys.executable).with_name("nanoedit"))
    run = subprocess.Popen(
        [command, *args], cwd=cwd, env=dict(os.environ) | env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A child of a non-interactive shell may start with SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert run.stdout is not None and run.stderr is not None
    out: list[str] = []
    err: list[str] = []
    stopping = threading.Event()

    def read_err() -> None:
        assert run.stderr is not None
        for line in run.stderr:
            err.append(line)
            if STOPPING in line:
                stopping.set()

    readers = [
        threading.Thread(target=lambda: out.append(run.stdout.read() if run.stdout else "")),
        threading.Thread(target=read_err),
    ]
    for reader in readers:
        reader.start()
    try:
        assert seen.wait(60), f"{what} never happened"
        run.send_signal(sig)
        if presses == 2 or on_stopping is not None:
            wait_for(lambda: stopping.is_set() or run.poll() is not None, "the stopping notice")
            if on_stopping is not None:
                on_stopping()
            if presses == 2 and run.poll() is None:
                run.send_signal(signal.SIGINT)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for reader in readers:
            reader.join(30)
        # communicate() would close the pipes; reading them here, the test must.
        run.stdout.close()
        run.stderr.close()
    return run.returncode, "".join(out), "".join(err)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Wait until ``condition()`` holds, looking every 10 ms, or fail naming ``what``: a test
    waits for an event (a request arrived, a line was logged), never for a fixed time."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        tick.wait(0.01)


def run_cli(
    args: list[str],
    env: dict[str, str] | None = None,
    stdin: str | bytes | None = None,
    clock: Clock | None = None,
) -> Result:
    """Run nanoedit in-process; stdout and stderr are kept apart. ``stdin`` is text or bytes.
    The run reads the time and waits on ``clock`` (the real one unless given)."""
    return CliRunner().invoke(app, args, env=env, input=stdin, catch_exceptions=False, obj=clock)


def big_jpeg(width: int, height: int, colour: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    """A real JPEG of one colour at any size, made without holding its pixels in memory.

    Pillow encodes one 16-pixel band; a restart marker before every band resets the decoder,
    so the band's scan repeated once per band is the whole image, which any decoder reads.
    """
    band = io.BytesIO()
    Image.new("RGB", (width, 16), colour).save(band, format="JPEG", quality=50, subsampling=2)
    data = band.getvalue()
    sos = data.index(b"\xff\xda")
    scan_start = sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0]
    scan = data[scan_start:-2]  # the entropy-coded band, up to the end-of-image marker
    head = bytearray(data[:sos])
    sof = head.index(b"\xff\xc0")
    head[sof + 5 : sof + 7] = struct.pack(">H", height)
    bands = -(-height // 16)
    restart_every = struct.pack(">H", -(-width // 16))  # in 16x16 blocks: one band
    body = bytearray(scan)
    for band_number in range(1, bands):
        body += bytes([0xFF, 0xD0 + (band_number - 1) % 8]) + scan
    return (
        bytes(head)
        + b"\xff\xdd\x00\x04"
        + restart_every
        + data[sos:scan_start]
        + body
        + b"\xff\xd9"
    )


def run_installed(
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    preexec_fn: Callable[[], object] | None = None,
) -> tuple[int, str, str]:
    """Run the installed command to its end; its exit code, stdout and stderr."""
    done = subprocess.run(
        [NANOEDIT, *args], cwd=cwd, env=dict(os.environ) | env, capture_output=True, text=True,
        timeout=60, preexec_fn=preexec_fn,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def distinct_pngs(folder: Path, count: int) -> list[Path]:
    """``count`` small PNGs of distinct colours in ``folder`` (``000.png``, ``001.png``…), so
    that no two jobs send the same bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        colour = ((number * 37) % 256, (number * 91) % 256, (number * 53 + 40) % 256)
        path = folder / f"{number:03d}.png"
        Image.new("RGB", (64, 48), colour).save(path)
        paths.append(path)
    return paths


def runs_begun(data: Path) -> int:
    """How many runs the journal in ``data`` has recorded (0 before it exists): a run is
    recorded in the transaction that claims its jobs."""
    import sqlite3

    database = data / "journal.sqlite3"
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
            (count,) = db.execute("SELECT COUNT(*) FROM runs").fetchone()
    except sqlite3.Error:  # being created: no table yet
        return 0
    return int(count)


def _started(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A child process with its stdout and stderr piped, as text."""
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def two_runs_at_once(
    args: list[str], cwd: Path, env: dict[str, str], release: Callable[[], object]
) -> list[tuple[int, str, str]]:
    """Start the installed command twice at once with the same ``args``, sharing one journal;
    call ``release`` (to let a served sandbox's held answers go) once both have claimed their
    jobs, and return each run's exit code, stdout and stderr."""
    runs = [_started([NANOEDIT, *args], cwd, dict(os.environ) | env) for _ in range(2)]
    try:
        data = Path(os.environ["NANOEDIT_DATA_DIR"])
        wait_for(lambda: runs_begun(data) == 2, "both runs claiming their jobs", timeout=60)
        release()
        said = [run.communicate(timeout=60) for run in runs]
        return [(run.returncode, out, err) for run, (out, err) in zip(runs, said, strict=True)]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.communicate()


def all_jobs(journal: Journal) -> list[JobRecord]:
    """Every job of a journal, oldest first (the journal itself lists the newest first)."""
    return journal.recent(limit=1 << 62)[::-1]
