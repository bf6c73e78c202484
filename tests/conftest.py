"""Shared fixtures: an isolated user directory, a sandbox on loopback, and a CLI runner."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from nanoedit.backends.base import BackendBase, backend_class, backend_classes
from nanoedit.backends.registry import backend_names
from nanoedit.cli.app import app
from nanoedit.clock import Clock
from nanoedit.jobs import RunOptions
from nanoedit.journal.records import JobRecord
from nanoedit.journal.store import Journal, data_dir
from nanoedit.output.provenance import read as read_provenance
from nanoedit.sandbox import ReceivedRequest, Sandbox, SandboxServer, sample_image
from nanoedit.sandbox.app import APIS
from nanoedit.settings.keys import backend_keys
from nanoedit.settings.load import load_settings
from nanoedit.settings.values import Settings

OPENAI_KEY = "sk-test-openai-key-0001"
DUOMI_KEY = "duomi-test-key-0002"
GEMINI_KEY = "AIza-test-gemini-key-0003"
FAL_KEY = "fal-test-key-id:fal-test-secret-0003"
REPLICATE_KEY = "r8_test_replicate_token_0004"
OPENROUTER_KEY = "sk-or-v1-test-openrouter-key-0003"
# The test key of a backend, shaped as its provider's keys are (fal's "id:secret", Google's
# "AIza…"): tests quote these. A backend this table does not name gets a key made from its
# name (``api_key_for``), so a backend added to the registry needs no line here.
KEY_SHAPES = {
    "openai": OPENAI_KEY, "duomi": DUOMI_KEY, "gemini": GEMINI_KEY, "fal": FAL_KEY,
    "replicate": REPLICATE_KEY, "openrouter": OPENROUTER_KEY,
}  # fmt: skip
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
# Where the pages' tests find a real browser (they are skipped without one).
CHROMIUM = Path("/usr/bin/chromium")
# Built once: loading the CA roots costs tens of milliseconds per client otherwise.
TLS = ssl.create_default_context()


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
    sandbox = Sandbox(keys=every_key(), clock=clock.monotonic)
    with SandboxServer(sandbox) as server:
        yield Served(sandbox, server.base_url)


@contextmanager
def held_sandbox(key: str, *, holding: bool) -> Iterator[tuple[Served, threading.Event]]:
    """A served sandbox taking ``key`` whose API answers wait while the event is clear (it
    starts clear when ``holding``); the event is set when the sandbox stops."""
    release = threading.Event()
    if not holding:
        release.set()

    def hold(seconds: float) -> None:
        release.wait(seconds)

    sandbox = Sandbox(keys=frozenset({key}), latency=60, sleep=hold)
    try:
        with SandboxServer(sandbox) as server:
            yield Served(sandbox, server.base_url), release
    finally:
        release.set()


@pytest.fixture
def held_answers() -> Iterator[tuple[Served, threading.Event]]:
    """A served sandbox whose API answers wait until the event is set."""
    with held_sandbox(OPENAI_KEY, holding=True) as held:
        yield held


@pytest.fixture
def held_gemini() -> Iterator[tuple[Served, threading.Event]]:
    """A served sandbox taking the gemini test key whose answers wait while the event is
    clear (it starts set)."""
    with held_sandbox(GEMINI_KEY, holding=False) as held:
        yield held


@dataclass
class Direct:
    """A sandbox on a loopback port and a plain httpx client pointed at it: the API spoken to
    with no nanoedit between."""

    sandbox: Sandbox
    base_url: str
    client: httpx.Client


@pytest.fixture
def serve_direct() -> Iterator[Callable[..., Direct]]:
    """Start sandboxes on free ports, each taking one key: ``serve_direct(key, headers,
    **options)``, ``headers`` sent with each of the client's requests and ``options`` for the
    Sandbox; all close when the test ends."""
    with ExitStack() as stack:

        def start(key: str, headers: dict[str, str] | None = None, **options: Any) -> Direct:
            sandbox = Sandbox(keys=frozenset({key}), **options)
            server = stack.enter_context(SandboxServer(sandbox))
            client = stack.enter_context(
                httpx.Client(base_url=server.base_url, timeout=10, verify=TLS, headers=headers)
            )
            return Direct(sandbox, server.base_url, client)

        yield start


@pytest.fixture
def sample(isolated: Path) -> Path:
    """cat.png from the sandbox's samples, written to the working folder."""
    path = isolated / "cat.png"
    path.write_bytes(sample_image("cat.png")[0])
    return path


def api_key_for(name: str) -> str:
    """The test key of the backend ``name`` (the sandbox of ``served`` takes it)."""
    return KEY_SHAPES.get(name, f"{name}-test-key-0000")


def every_key() -> frozenset[str]:
    """The test key of every registered backend."""
    return frozenset(api_key_for(name) for name in backend_names())


def sandbox_base_url(served: Served, backend: type[BackendBase]) -> str:
    """Where ``backend`` finds its API on the served sandbox: at the path its real server has
    (OpenRouter's routes are under /api), as ``--sandbox`` points it there too."""
    path = urlsplit(backend.default_base_url or "").path.rstrip("/")
    return served.base_url + path


def short_polls() -> dict[str, str]:
    """A poll every 10 ms on every backend that polls, configured or not: a run in the tests
    waits for tasks no longer than it must."""
    return {
        spec.env: "0.01"
        for backend in backend_classes()
        for short, spec in backend.extra_keys.items()
        if short == "poll_interval"
    }


def sandbox_env(served: Served, backend: type[BackendBase]) -> dict[str, str]:
    """The variables that point ``backend`` at the served sandbox with its test key, named as
    the backend's own config keys name them."""
    keys = backend_keys(backend)
    return {
        keys[f"{backend.name}.base_url"].env: sandbox_base_url(served, backend),
        keys[f"{backend.name}.api_key"].env: api_key_for(backend.name),
    }


# The backends ``backend_env`` sets up unless told otherwise: the two the first tests were
# written against, so that automatic selection among them stays as it was.
DEFAULT_BACKENDS = ("openai", "duomi")


def backend_env(served: Served, **wanted: bool) -> dict[str, str]:
    """Environment that points nanoedit at the served sandbox. Any registered backend is set up
    or left out by its name (``fal=True``, ``openai=False``); those of ``DEFAULT_BACKENDS`` are
    set up unless left out, the others only when asked for."""
    unknown = sorted(set(wanted) - set(backend_names()))
    if unknown:
        raise TypeError(f"backend_env: no backend is called {', '.join(unknown)}")
    # Short waits: the retry policy itself is what the fault tests check, not its patience.
    env = {"NANOEDIT_BACKOFF": "0.01"} | short_polls()
    for backend in backend_classes():
        if wanted.get(backend.name, backend.name in DEFAULT_BACKENDS):
            env |= sandbox_env(served, backend)
    return env


def one_backend_env(served: Served, name: str) -> dict[str, str]:
    """``backend_env`` with only the backend ``name`` set up: automatic selection has no other
    choice."""
    return backend_env(served, **{other: other == name for other in backend_names()})


def every_backend_env(served: Served) -> dict[str, str]:
    """``backend_env`` with every registered backend set up."""
    return backend_env(served, **dict.fromkeys(backend_names(), True))


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


def error_object(
    kind: str, message: str, exit_code: int, provider_code: str | None = None
) -> dict[str, Any]:
    """The ``error`` member of a --json job line or envelope: the hint is the one nanoedit's
    error of that kind gives."""
    from nanoedit import errors

    kinds = [
        value for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.NanoeditError)
    ]  # fmt: skip
    hint = next(error.hint for error in kinds if error.kind == kind)
    return {
        "kind": kind, "message": message, "exit_code": exit_code, "hint": hint,
        "provider_code": provider_code,
    }  # fmt: skip


def usage_envelope(message: str) -> dict[str, Any]:
    """The JSON error envelope a command given --json prints for a usage error."""
    hint = "fix the option named; see nanoedit COMMAND --help or nanoedit --usage --json"
    fields = {"kind": "usage", "message": message, "exit_code": 2, "hint": hint}
    error = fields | {"provider_code": None}
    return {"schema": "nanoedit/error/1", "ok": False, **error, "error": error}


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


def edit_turn(args: list[str], env: dict[str, str]) -> str:
    """Run one ``nanoedit edit`` (a thread's turn, say) that must succeed; the path it saved."""
    result = run_cli(["edit", *args], env=env)
    assert result.exit_code == 0, result.stderr
    (line,) = result.stdout.splitlines()
    return line


def printed_command(stdout: str, *keys: str) -> str:
    """The command a dry run printed: its comment lines left out, each of ``keys`` put back
    where it shows masked (``****0003``)."""
    command = "\n".join(line for line in stdout.splitlines() if line[0] != "#")
    for key in keys:
        command = command.replace(f"****{key[-4:]}", key)
    return command


def run_printed(command: str) -> dict[str, Any]:
    """Run a printed curl command with bash, in the working folder; its JSON answer."""
    env = {name: value for name, value in os.environ.items() if "proxy" not in name.lower()}
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a fresh profile and nothing that reaches the network."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars", *args],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip


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


# Small helpers the test files share -------------------------------------------------------


def host(served: Served) -> str:
    """The served sandbox's host and port, as messages name the server."""
    return served.base_url.removeprefix("http://")


def received(served: Served, method: str | None = None) -> list[ReceivedRequest]:
    """The requests the served sandbox received (those of ``method`` only, if given), in
    arrival order."""
    return [r for r in served.sandbox.received if method is None or r.method == method]


def posts(served: Served) -> list[ReceivedRequest]:
    """The POST requests the served sandbox received, in arrival order: on the multipart API
    and duomi, the requests that start work (edits, generations, task submissions)."""
    return received(served, "POST")


def paid(served: Served) -> list[ReceivedRequest]:
    """The paid requests the served sandbox received (edits, generations, task submissions),
    whichever API they went to: those a route of some API's ``paid_routes`` matches, so that
    a new API's paid requests count without a line here."""
    routes = [re.compile(route) for api in APIS for route in api.paid_routes]
    return [
        request
        for request in served.sandbox.received
        if any(route.fullmatch(f"{request.method} {request.path}") for route in routes)
    ]


def image_info(source: str | Path | bytes) -> tuple[str, tuple[int, int]]:
    """The format and size of an image (a file, or its bytes), decoded whole by Pillow."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        image.load()
        return str(image.format), image.size


def shape(data: bytes) -> tuple[int, int, str | None]:
    """Width, height and format of an image's bytes, decoded whole by Pillow."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.width, image.height, image.format


def made_from(path: str | Path) -> str:
    """The input a saved result was made from, as its provenance records it."""
    provenance = read_provenance(Path(path))
    assert provenance is not None
    return str(provenance["inputs"][0]["name"])


def all_jobs(journal: Journal) -> list[JobRecord]:
    """Every job of a journal, oldest first (the journal itself lists the newest first)."""
    return journal.recent(limit=1 << 62)[::-1]


def journal_jobs() -> list[JobRecord]:
    """Every job the journal in the test's data folder holds, oldest first."""
    with Journal(data_dir(os.environ)) as journal:
        return all_jobs(journal)


def config_file() -> Path:
    """The config file of the test's config folder."""
    return Path(os.environ["NANOEDIT_CONFIG_DIR"]) / "config.toml"


def settings_from(env: dict[str, str] | None = None, flags: RunOptions | None = None) -> Settings:
    """load_settings with the test's config folder and only the variables given."""
    base = {"NANOEDIT_CONFIG_DIR": os.environ["NANOEDIT_CONFIG_DIR"]}
    return load_settings(base | (env or {}), flags or RunOptions())


def closed_port() -> int:
    """A loopback port nothing listens on: bound, noted, and let go."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def close_stdout() -> None:
    """In a child: start with no stdout at all, as `>&-` leaves it."""
    os.close(1)


def on_pty(
    process: subprocess.Popen[Any], controller: int, terminal: int
) -> tuple[Any, Any, bytes]:
    """Wait for ``process``, started with the pseudo-terminal ``terminal`` as some of its
    streams, reading what it writes there from ``controller`` meanwhile; both ends are closed
    after. Its stdout and stderr (where they were pipes, else None) and the terminal's bytes;
    a process still running after 60 s is killed."""
    os.close(terminal)
    chunks: list[bytes] = []
    reader = threading.Thread(target=drain, args=(controller, chunks), daemon=True)
    reader.start()
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        os.close(controller)
    return stdout, stderr, b"".join(chunks)


def drain(fd: int, chunks: list[bytes]) -> None:
    """Read a pseudo-terminal while the program runs (a full terminal buffer would block its
    writes), until it closes its end."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the program closed its end
            return
        if not chunk:
            return
        chunks.append(chunk)


# config check's and models --live's tables: the first column as wide as the longest name.
NAME_WIDTH = max(map(len, backend_names()))


def not_set_up_detail(name: str) -> str:
    """Why a registered backend a test gives no key is not set up, and the fix."""
    backend = backend_class(name)
    # A backend with no server of its own (a gateway) lacks its base URL too.
    missing = "no API key" if backend.default_base_url else "no base URL and no API key"
    return f"{missing}; run: {backend.setup_hint()}"


def not_set_up_line(name: str) -> str:
    """The table line of a registered backend a test gives no key (config check, models --live)."""
    return f"{name:<{NAME_WIDTH}}  not configured  ({not_set_up_detail(name)})"
