"""Benchmarks of the nanoedit command against the sandbox served on a loopback port.

Run from the repository root with the project's interpreter::

    .venv/bin/python benchmarks/run.py            # full run (~10 minutes), writes RESULTS.md
    .venv/bin/python benchmarks/run.py --quick    # ~1-2 minutes, prints the tables

Every figure is the median of several runs made in this one invocation, against one
``nanoedit sandbox serve`` started here; a ratio between two clients is the median of the
ratios of runs made side by side. See ``benchmarks/README.md`` for what each benchmark
measures and why.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

REPO = Path(__file__).resolve().parent.parent
CURL_SCRIPT = REPO / "benchmarks" / "curl_edit.sh"
B64_WORKER = REPO / "benchmarks" / "b64_worker.py"
DEFAULT_RESULTS = REPO / "benchmarks" / "RESULTS.md"
KEY = "benchmark-key"
PROMPT = "add a hat"
# A run that takes longer than this is stopped and counted as failed.
RUN_TIMEOUT = 600.0
SERVER_START_TIMEOUT = 30.0
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # PNG, JPEG
# Proxy settings of the caller must not route loopback requests elsewhere.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
BENCHMARKS = ("throughput", "wide", "overhead", "memory", "startup", "b64", "scale", "alpha")

_started = time.monotonic()


def log(message: str) -> None:
    """One progress line on stderr, stamped with the seconds since the start."""
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


class BenchmarkError(Exception):
    """The benchmark itself cannot go on (the server did not start, a tool is missing)."""


class RunFailed(Exception):
    """One measured run failed: a non-zero exit code, a time-out or missing output files."""


# Running and measuring -----------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One finished run: its wall-clock time, and the peak RSS and the CPU time (user and
    system, its own children's included) of the process started."""

    seconds: float
    max_rss_kib: int
    cpu_seconds: float
    stdout: str
    stderr: str


def _tail(text: str, lines: int = 6) -> str:
    return " / ".join(text.strip().splitlines()[-lines:]) or "(nothing on stderr)"


# The measured command runs as the child of this small helper, which times it and reads its
# peak RSS with os.wait4. Why not from here: subprocess starts children with vfork, and on
# exec Linux folds the parent's RSS high-water mark into the child's ru_maxrss, so a child of
# this script (which holds Pillow) would never read below this script's own peak. The helper
# (python -I -S, about 7 MB) forks from a small image, so the figures are the child's own.
RSS_HELPER = """
import os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"cannot run {argv[0]}: {exc}\\n".encode())
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(report, "w") as f:
    f.write(f"{seconds!r} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime!r}\\n")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def measure(command: Sequence[str], *, cwd: Path, env: dict[str, str], shown: str) -> Measurement:
    """Run ``command`` once, timed; RunFailed unless it exits 0 within RUN_TIMEOUT.

    The time (fork to exit) and the peak RSS (ru_maxrss, KiB on Linux) come from RSS_HELPER.
    The helper runs in a session of its own, so a time-out or Ctrl-C stops everything the
    command started (curl under xargs too).
    """
    with (
        tempfile.TemporaryDirectory() as scratch,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        report = Path(scratch) / "report"
        helper = [sys.executable, "-I", "-S", "-c", RSS_HELPER, str(report), *command]
        process = subprocess.Popen(
            helper,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
            raise RunFailed(f"`{shown}` took over {RUN_TIMEOUT:.0f} s and was stopped") from None
        except BaseException:
            _kill_group(process.pid)
            process.wait()
            raise
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        figures = report.read_text().split() if report.exists() else []
    if code != 0:
        raise RunFailed(f"`{shown}` exited with {code}: {_tail(stderr)}")
    if len(figures) != 3:
        raise RunFailed(f"`{shown}`: the measuring helper wrote no report")
    return Measurement(float(figures[0]), int(figures[1]), float(figures[2]), stdout, stderr)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``nanoedit sandbox serve`` as a subprocess on a free port, stopped on exit."""

    def __init__(self, tools: Tools, work: Path, latency: float) -> None:
        self.tools = tools
        self.work = work
        self.latency = latency
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def command(self, port: int) -> list[str]:
        """The serve command for ``port``."""
        return [
            *self.tools.nanoedit,
            "sandbox",
            "serve",
            "--port",
            str(port),
            "--latency",
            f"{self.latency:g}",
        ]

    @property
    def shown(self) -> str:
        """The serve command as RESULTS.md shows it, with ``$PORT`` for the port."""
        return shown(self.command(0)).replace("--port 0", "--port $PORT")

    def __enter__(self) -> Server:
        for _attempt in range(3):
            # Another process may take the port between the probe and the bind: try again.
            self.port = free_port()
            log_path = self.work / f"server-{self.port}.log"
            self._log = log_path.open("wb")
            self._process = subprocess.Popen(
                self.command(self.port),
                env=self.tools.env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            try:
                ready = self._wait_ready()
            except BaseException:  # Ctrl-C while waiting: __exit__ will not run
                self.close()
                raise
            if ready:
                log(f"sandbox serving on port {self.port} (--latency {self.latency:g})")
                return self
            self.close()
            log(f"the sandbox did not start on port {self.port}: {_tail(log_path.read_text())}")
        raise BenchmarkError("`nanoedit sandbox serve` did not start; see the lines above")

    def _wait_ready(self) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def cpu_seconds(self) -> float | None:
        """CPU time (user and system) the server and its drawing processes have used so far;
        None where /proc is not."""
        if self._process is None:
            return None
        pid = self._process.pid
        own = _proc_stat(pid)
        if own is None:
            return None
        ticks = own[1]
        # The pool's processes are not waited for until they end, so the server's own
        # cutime does not hold them yet: add each child's.
        with contextlib.suppress(OSError):
            for entry in os.scandir("/proc"):
                if entry.name.isdigit() and entry.name != str(pid):
                    child = _proc_stat(int(entry.name))
                    if child is not None and child[0] == pid:
                        ticks += child[1]
        return ticks / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        """Stop the server as Ctrl-C would (it stops its pool), then for good if it lingers."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """The parent pid and the CPU ticks (user and system) of a process; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # ppid, utime and stime are fields 4, 14 and 15 of the line: 2, 12 and 13 after the name.
    return int(fields[1]), int(fields[11]) + int(fields[12])


def listen_backlog(port: int) -> int | None:
    """The listen backlog of the socket listening on 127.0.0.1:``port``, as ``ss`` shows it
    (the Send-Q of a listening socket); None where ``ss`` is not."""
    try:
        done = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "LISTEN" and fields[2].isdigit():
            return int(fields[2])
    return None


# Tools, inputs and outputs -------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    """The programs measured, and the environment they run in."""

    python: str
    nanoedit: tuple[str, ...]
    env: dict[str, str]

    @staticmethod
    def find(config_dir: Path) -> Tools:
        """nanoedit beside this interpreter (as in a virtual environment), curl and sh."""
        python = sys.executable
        script = Path(python).parent / "nanoedit"
        nanoedit = (str(script),) if script.exists() else (python, "-m", "nanoedit")
        for tool in ("curl", "sed", "sh", "xargs"):
            if shutil.which(tool) is None:
                raise BenchmarkError(f"{tool} is not installed; the shell baselines need it")
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("NANOEDIT_") and name.lower() not in PROXY_VARIABLES
        }
        env.update(
            NANOEDIT_CONFIG_DIR=str(config_dir),
            # The runs' job journal: in the work folder, never the user's own history.
            NANOEDIT_DATA_DIR=str(config_dir.parent / "data"),
            NANOEDIT_OPENAI_API_KEY=KEY,
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        return Tools(python, nanoedit, env)

    def client_env(self, server: Server, **extra: str) -> dict[str, str]:
        """The environment of a client of ``server``."""
        return {**self.env, "NANOEDIT_OPENAI_BASE_URL": server.base_url, **extra}


def write_samples(tools: Tools, folder: Path, count: int) -> Path:
    """``count`` copies of the sandbox's cat.png (640x480) as folder/00.png, 01.png, ..."""
    folder.mkdir(parents=True)
    first = folder / "00.png"
    command = [*tools.nanoedit, "sandbox", "sample", "cat.png", "-o", str(first)]
    measure(command, cwd=folder, env=tools.env, shown="nanoedit sandbox sample cat.png")
    for number in range(1, count):
        shutil.copyfile(first, folder / f"{number:02d}.png")
    return folder


def write_megapixel(folder: Path, count: int, side: int = 1000) -> int:
    """``count`` copies of a 1000x1000 PNG of gradients, outlined shapes, lines and a faint
    Mandelbrot set, softened: no noise, but as much detail as a photo (about 1 MB, as a
    photo's PNG is). Returns its size in bytes."""
    from PIL import Image, ImageDraw, ImageFilter

    folder.mkdir(parents=True)
    red = Image.linear_gradient("L").resize((side, side))
    image = Image.merge(
        "RGB", (red, red.rotate(90), Image.radial_gradient("L").resize((side, side)))
    )
    draw = ImageDraw.Draw(image)
    rng = random.Random(20240601)

    def colour() -> tuple[int, int, int]:
        return rng.randrange(256), rng.randrange(256), rng.randrange(256)

    for _ in range(300):
        x, y = rng.randrange(side), rng.randrange(side)
        extent = rng.randrange(side // 50, side // 6)
        box = (x - extent, y - extent, x + extent, y + extent)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape(box, fill=colour(), outline=(0, 0, 0), width=2)
    for _ in range(300):
        ends = [(rng.randrange(side), rng.randrange(side)) for _ in range(2)]
        draw.line(ends, fill=colour(), width=rng.randrange(1, 5))
    fractal = Image.effect_mandelbrot((side, side), (-2.0, -1.25, 0.75, 1.25), 60).convert("RGB")
    image = Image.blend(image, fractal, 0.25).filter(ImageFilter.GaussianBlur(1.5))
    first = folder / "00.png"
    image.save(first, "PNG")
    for number in range(1, count):
        shutil.copyfile(first, folder / f"{number:02d}.png")
    return first.stat().st_size


@dataclass(frozen=True)
class Produced:
    """What one run wrote: the format and size of its images and their mean file size."""

    format: str
    width: int
    height: int
    mean_bytes: float

    def describe(self) -> str:
        """e.g. ``PNG 1184x864 (52 kB)``: the first image's format and size, the mean bytes."""
        return f"{self.format} {self.width}x{self.height} ({self.mean_bytes / 1000:,.0f} kB)"


def check_outputs(folder: Path, expected: int) -> Produced | None:
    """RunFailed unless ``folder`` holds exactly ``expected`` files, each a PNG or JPEG;
    what they are (None when none were expected)."""
    from PIL import Image

    files = sorted(path for path in folder.iterdir() if path.is_file())
    images = []
    for path in files:
        with path.open("rb") as f:
            head = f.read(8)
        if any(head.startswith(magic) for magic in IMAGE_MAGIC):
            images.append(path)
    if len(images) != expected or len(files) != expected:
        others = [path.name for path in files if path not in images][:5]
        raise RunFailed(
            f"{len(images)} images in {folder.name}/ where {expected} were expected"
            + (f" (other files: {', '.join(others)})" if others else "")
        )
    if not images:
        return None
    with Image.open(images[0]) as first:
        width, height = first.size
        fmt = first.format or "?"
    mean = statistics.fmean(path.stat().st_size for path in images)
    return Produced(fmt, width, height, mean)


def shown(command: Sequence[str] | str) -> str:
    """A command as RESULTS.md shows it: paths inside the repository made relative to it."""
    text = command if isinstance(command, str) else shlex.join(command)
    return text.replace(f"{REPO}{os.sep}", "")


# Series of runs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    """One client in a benchmark: the command and where its results go (under the work dir)."""

    name: str
    command: tuple[str, ...]
    cwd: Path
    out_dir: str
    expected: int
    env: dict[str, str]
    display: str = ""

    @property
    def shown(self) -> str:
        """The command as printed in RESULTS.md."""
        return self.display or shown(self.command)


@dataclass
class Series:
    """The runs of one contender."""

    contender: Contender
    seconds: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    produced: Produced | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every run succeeded (and there was at least one)."""
        return self.error is None and bool(self.seconds)

    @property
    def median(self) -> float:
        """Median wall-clock seconds."""
        return statistics.median(self.seconds)

    @property
    def median_rss_mb(self) -> float:
        """Median peak RSS in MB (10^6 bytes)."""
        return statistics.median(self.rss_kib) * 1024 / 1e6

    @property
    def median_cpu(self) -> float:
        """Median CPU seconds of the client (its child processes included)."""
        return statistics.median(self.cpu)

    @property
    def median_server_cpu(self) -> float | None:
        """Median CPU seconds the server spent during a run (None where not measurable)."""
        return statistics.median(self.server_cpu) if self.server_cpu else None

    def spread(self, scale: float = 1.0, digits: int = 2) -> str:
        """``min-max`` of the times, times ``scale``."""
        return f"{min(self.seconds) * scale:.{digits}f}-{max(self.seconds) * scale:.{digits}f}"


def run_series(
    label: str, contenders: Sequence[Contender], runs: int, server: Server | None = None
) -> list[Series]:
    """``runs`` rounds; each round runs every contender once, in an order that rotates from
    round to round so that none is always first. A contender that fails once is out. The
    CPU time ``server`` spends during each run is recorded too."""
    series = [Series(contender) for contender in contenders]
    for round_number in range(runs):
        shift = round_number % len(series)
        for item in series[shift:] + series[:shift]:
            if item.error is not None:
                continue
            contender = item.contender
            out = contender.cwd / contender.out_dir
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            server_before = server.cpu_seconds() if server else None
            try:
                result = measure(
                    contender.command, cwd=contender.cwd, env=contender.env, shown=contender.shown
                )
                item.produced = check_outputs(out, contender.expected)
            except RunFailed as exc:
                item.error = str(exc)
                log(f"{label}: run {round_number + 1}/{runs} {contender.name}: FAILED: {exc}")
                continue
            finally:
                shutil.rmtree(out, ignore_errors=True)
            server_after = server.cpu_seconds() if server else None
            item.seconds.append(result.seconds)
            item.rss_kib.append(result.max_rss_kib)
            item.cpu.append(result.cpu_seconds)
            note = ""
            if server_before is not None and server_after is not None:
                item.server_cpu.append(server_after - server_before)
                note = f", server CPU {server_after - server_before:.2f} s"
            log(
                f"{label}: run {round_number + 1}/{runs} {contender.name}: "
                f"{result.seconds:.2f} s, CPU {result.cpu_seconds:.2f} s, "
                f"peak RSS {result.max_rss_kib / 1024:.0f} MiB{note}"
            )
    return series


def paired_ratio(numerator: Series, denominator: Series) -> float | None:
    """The median of numerator/denominator over the rounds both completed (None if none)."""
    pairs = list(zip(numerator.seconds, denominator.seconds, strict=False))
    if not numerator.ok or not denominator.ok or not pairs:
        return None
    return statistics.median(a / b for a, b in pairs)


def verdict(passed: bool | None) -> str:
    """PASS, FAIL, or n/a when the figure could not be measured."""
    return "n/a" if passed is None else ("PASS" if passed else "FAIL")


def fmt_ratio(value: float | None) -> str:
    """``1.23x``, or ``—`` when there is no figure."""
    return "—" if value is None else f"{value:.2f}x"


def cpu_cell(item: Series, scale: float = 1.0, digits: int = 2) -> str:
    """The client's median CPU time, times ``scale``."""
    return f"{item.median_cpu * scale:.{digits}f}" if item.ok else "—"


def server_cpu_cell(item: Series, scale: float = 1.0, digits: int = 2) -> str:
    """The server's median CPU time during the runs, times ``scale``."""
    value = item.median_server_cpu
    return "—" if value is None or not item.ok else f"{value * scale:.{digits}f}"


def seconds_cell(item: Series, digits: int = 2, scale: float = 1.0) -> str:
    """The median, or the failure."""
    if not item.ok:
        # A table cell holds no pipe and no newline; the whole message is in the log.
        reason = (item.error or "not run").replace("|", "/").replace("\n", " ")
        return f"FAILED: {reason[:300]}"
    return f"{item.median * scale:.{digits}f}"


# The benchmarks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one invocation."""

    quick: bool
    runs_throughput: int
    runs_overhead: int
    runs_memory: int
    runs_startup: int
    throughput_images: int
    throughput_jobs: int
    latency: float
    overhead_images: int
    memory_images: int
    memory_jobs: int
    runs_wide: int
    wide_images: int
    wide_jobs: int
    runs_b64: int
    b64_side: tuple[int, int]
    b64_rounds: int
    scale_sizes: tuple[int, ...] = (1000, 5000, 10000, 20000)
    runs_scale: int = 3


@dataclass
class Section:
    """One benchmark's part of RESULTS.md, and whether it met its target."""

    title: str
    lines: list[str]
    passed: bool | None
    failures: int = 0


def curl_contender(
    name: str,
    tools: Tools,
    work: Path,
    server: Server,
    *,
    inputs: str,
    out_dir: str,
    expected: int,
    model: str,
    ext: str,
    size: str | None = None,
    parallel: int = 1,
) -> Contender:
    """The curl baseline, one after another (``parallel`` 1) or ``parallel``-wide by xargs."""
    env = {
        **tools.env,
        "BASE": server.base_url,
        "KEY": KEY,
        "MODEL": model,
        "PROMPT": PROMPT,
        "OUT": out_dir,
        "EXT": ext,
    }
    if size:
        env["SIZE"] = size
    script = shlex.quote(str(CURL_SCRIPT))
    if parallel == 1:
        line = f"sh {script} {inputs}/*.png"
    else:
        line = f'printf "%s\\n" {inputs}/*.png | xargs -P {parallel} -n 1 sh {script}'
    variables = f"MODEL={model} PROMPT={shlex.quote(PROMPT)} OUT={out_dir} EXT={ext}"
    if size:
        variables += f" SIZE={size}"
    display = f"BASE=http://127.0.0.1:$PORT KEY=$KEY {variables} sh -c {shlex.quote(shown(line))}"
    return Contender(name, ("sh", "-c", line), work, out_dir, expected, env, display)


def nanoedit_contender(
    name: str,
    tools: Tools,
    work: Path,
    server: Server,
    *,
    inputs: str,
    out_dir: str,
    expected: int,
    options: Sequence[str],
) -> Contender:
    """``nanoedit edit INPUTS/ -p PROMPT OPTIONS -d OUT_DIR`` against ``server``."""
    command = (*tools.nanoedit, "edit", f"{inputs}/", "-p", PROMPT, *options, "-d", out_dir)
    return Contender(name, command, work, out_dir, expected, tools.client_env(server))


def warm_up(tools: Tools, work: Path, server: Server, inputs: str, options: Sequence[str]) -> None:
    """One untimed edit, so that the first measured run does not pay for cold caches."""
    folder = work / "warm-up"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    source = sorted((work / inputs).glob("*.png"))[0]
    command = [*tools.nanoedit, "edit", str(source), "-p", PROMPT, *options, "-d", str(folder)]
    measure(command, cwd=work, env=tools.client_env(server), shown=shown(command))
    shutil.rmtree(folder)


def bench_throughput(tools: Tools, work: Path, plan: Plan) -> Section:
    """Many edits at a fixed server latency: nanoedit --jobs N against curl, serial and N-wide."""
    return _batch(
        "throughput",
        "1. Throughput",
        tools,
        work,
        count=plan.throughput_images,
        jobs=plan.throughput_jobs,
        latency=plan.latency,
        runs=plan.runs_throughput,
        serial=True,
    )


def bench_wide(tools: Tools, work: Path, plan: Plan) -> Section:
    """A wide batch: nanoedit --jobs 64 against curl 64-wide, where the server must keep up."""
    return _batch(
        "wide",
        "2. A wide batch",
        tools,
        work,
        count=plan.wide_images,
        jobs=plan.wide_jobs,
        latency=plan.latency,
        runs=plan.runs_wide,
        serial=False,
    )


def _batch(
    label: str,
    title: str,
    tools: Tools,
    work: Path,
    *,
    count: int,
    jobs: int,
    latency: float,
    runs: int,
    serial: bool,
) -> Section:
    """``count`` edits at ``latency``: nanoedit ``--jobs N`` against the curl loop N-wide (and
    one after another, with ``serial``)."""
    # A batch goes in waves of ``jobs``; the last one may be partly empty but takes as long.
    waves = math.ceil(count / jobs)
    ideal = waves * latency
    write_samples(tools, work / "in", count)
    with Server(tools, work, latency) as server:
        warm_up(tools, work, server, "in", [])
        contenders = [
            nanoedit_contender(
                f"nanoedit --jobs {jobs}",
                tools,
                work,
                server,
                inputs="in",
                out_dir="out-nanoedit",
                expected=count,
                options=["--jobs", str(jobs)],
            ),
        ]
        if serial:
            contenders.append(
                curl_contender(
                    "curl loop, one after another",
                    tools,
                    work,
                    server,
                    inputs="in",
                    out_dir="out-curl",
                    expected=count,
                    model="nano-banana",
                    ext="png",
                )
            )
        contenders.append(
            curl_contender(
                f"curl loop, {jobs}-wide (xargs -P {jobs})",
                tools,
                work,
                server,
                inputs="in",
                out_dir="out-curl-parallel",
                expected=count,
                model="nano-banana",
                ext="png",
                parallel=jobs,
            )
        )
        load = os.getloadavg()[0]
        backlog = listen_backlog(server.port)
        series = run_series(label, contenders, runs, server)
        serve = server.shown
    nanoedit, parallel = series[0], series[-1]
    target = 1.15
    ratio_ideal = nanoedit.median / ideal if nanoedit.ok else None
    passed = None if ratio_ideal is None else ratio_ideal <= target
    waves_text = f"{count}/{jobs}" if count % jobs == 0 else f"{waves} waves ({count}/{jobs})"
    lines = [
        f"{count} edits of a 640x480 PNG (the sandbox's cat.png, copied) with the default model "
        f"(nano-banana; each result a {_produced(series)}), server latency {latency:g} s "
        f"per API answer. Ideal for {jobs} at a time: {waves_text} x {latency:g} s = "
        f"**{ideal:g} s**. Target: nanoedit ≤ {target}x ideal. "
        f"{len(nanoedit.seconds)} run(s) of each, rotated; load average (1 min) before the "
        f"first run: {load:.2f} on {os.cpu_count()} CPUs.",
        "",
        f"| client | median s | min-max s | x ideal | x curl {jobs}-wide | client CPU s "
        "| server CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for item in series:
        lines.append(
            f"| {item.contender.name} | {seconds_cell(item)} | "
            f"{item.spread() if item.ok else '—'} | "
            f"{fmt_ratio(item.median / ideal if item.ok else None)} | "
            f"{fmt_ratio(paired_ratio(item, parallel))} | {cpu_cell(item)} | "
            f"{server_cpu_cell(item)} |"
        )
    lines += [
        "",
        f"**nanoedit --jobs {jobs}: {fmt_ratio(ratio_ideal)} ideal (target ≤ {target}x), "
        f"{_failed_jobs(nanoedit)}: {verdict(passed)}**; against the curl loop run "
        f"{jobs}-wide on the same server: {fmt_ratio(paired_ratio(nanoedit, parallel))}.",
        "",
        f"The sandbox's listen backlog (`ss -ltn`, Send-Q of its listening socket): "
        f"{'unknown (no ss)' if backlog is None else backlog}; it draws in a pool of one "
        f"process per CPU ({os.cpu_count()}).",
        "",
        *_server_floor(series, parallel, count, ideal, jobs, target),
        "Commands (in `$WORK`):",
        "",
        "```sh",
        f"{serve} &",
        *[item.contender.shown for item in series],
        "```",
    ]
    failures = sum(1 for item in series if not item.ok)
    return Section(f"{title}: {count} edits, --jobs {jobs}", lines, passed, failures)


def _failed_jobs(item: Series) -> str:
    """``0 failed jobs in 3 runs``: a run with a failed job exits non-zero and is FAILED."""
    if not item.ok:
        return "a run FAILED"
    return f"0 failed jobs in {len(item.seconds)} run(s)"


def _server_floor(
    series: Sequence[Series], lean: Series, count: int, ideal: float, jobs: int, target: float
) -> list[str]:
    """A sentence on what the server's own cost leaves of the ideal, from this run's figures."""
    spent = [item.median_server_cpu for item in series if item.median_server_cpu is not None]
    if not spent or not lean.ok:
        return []
    per_answer = statistics.median(spent) / count * 1000
    lean_ratio = lean.median / ideal
    verdict_text = (
        f"so no client can meet the {target}x target against this server on this machine"
        if lean_ratio > target
        else "so the server leaves room for the target"
    )
    return [
        f"The sandbox spent {per_answer:.0f} ms of CPU per edit (its process and its drawing "
        f"pool together, on the same {os.cpu_count()} CPUs as the client) on top of the "
        "latency. The inputs are copies of one image, so it draws the picture once and "
        "answers the rest from its cache of recent drawings: what remains is HTTP, the "
        "multipart body, decoding each input and serving each result file. The curl loop "
        f"{jobs}-wide, which sends the requests and nothing more, took "
        f"{fmt_ratio(lean_ratio)} ideal: {verdict_text}.",
        "",
    ]


# 7. Large batches: a dry run and the first request of 1,000 to 20,000 jobs -------------------


class FirstRequest:
    """A relay on a free loopback port in front of ``server``: it passes every connection on
    both ways and notes when the first request's bytes arrive, the moment the sandbox
    receives its first request (the relay adds a copy in this process, well under 1 ms)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.first: float | None = None
        self.arrived = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="relay", daemon=True).start()

    @property
    def base_url(self) -> str:
        """The relay's ``http://127.0.0.1:PORT``, which the client is given."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def reset(self) -> None:
        """Forget the last run's first request, and drop its connections."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
            self.first = None
            self.arrived.clear()
        for sock in sockets:
            sock.close()

    def close(self) -> None:
        """Stop relaying."""
        self.reset()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.server.port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink, marks in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, marks), name="relay-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, marks: bool) -> None:
        try:
            while data := source.recv(65536):
                if marks and self.first is None:
                    with self._lock:
                        if self.first is None:
                            self.first = time.perf_counter()
                            self.arrived.set()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


def time_to_first_request(
    command: Sequence[str], *, cwd: Path, env: dict[str, str], relay: FirstRequest, shown: str
) -> float:
    """Seconds from starting ``command`` to the first request reaching the server; the
    command is stopped with SIGTERM as soon as it has arrived (not SIGINT: a script run in
    the background of a shell, and its children, ignore that)."""
    relay.reset()
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(command), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = start + RUN_TIMEOUT
            while not relay.arrived.wait(0.05):
                if process.poll() is not None or time.perf_counter() > deadline:
                    break
            first = relay.first
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait()
        except BaseException:
            _kill_group(process.pid)
            process.wait()
            raise
        if first is None:
            err.seek(0)
            stderr = err.read().decode(errors="replace")
            raise RunFailed(
                f"`{shown}` sent no request (exit code {process.returncode}): {_tail(stderr)}"
            )
    return first - start


def write_scale_inputs(work: Path, sizes: Sequence[int]) -> None:
    """For each size N: ``inN/`` holding N copies of a small PNG (64x48), and ``jobsN.jsonl``
    naming the same files, one JSON line each."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(out, "PNG")
    png = out.getvalue()
    for size in sizes:
        folder = work / f"in{size}"
        folder.mkdir()
        lines = []
        for number in range(size):
            name = f"{number:05d}.png"
            (folder / name).write_bytes(png)
            lines.append(json.dumps({"input": f"in{size}/{name}", "prompt": PROMPT}))
        (work / f"jobs{size}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class ScaleRuns:
    """One way of giving the jobs (a folder, or a job file) at one size: its runs."""

    seconds: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    first_request: list[float] = field(default_factory=list)
    error: str | None = None


def _slope(values: dict[int, float], low: int, high: int) -> float:
    """What 1,000 more jobs cost between sizes ``low`` and ``high``."""
    return (values[high] - values[low]) / (high - low) * 1000


def bench_alpha(tools: Tools, work: Path, plan: Plan) -> Section:
    """8: the alpha --transparent recovers (key and matte) against the sandbox's known alpha
    (see alpha_bench.py)."""
    from alpha_bench import PROMPTS, measure_alpha, section_lines

    prompts = PROMPTS[:2] if plan.quick else PROMPTS
    with Server(tools, work, 0.0) as server:
        rows = measure_alpha(
            tools.nanoedit, tools.client_env(server), work,
            work / f"server-{server.port}.log", prompts, log,
        )  # fmt: skip
        serve = server.shown
    lines, passed, failures = section_lines(rows, prompts, serve)
    return Section("8. Recovered alpha: --transparent key and matte", lines, passed, failures)


def bench_scale(tools: Tools, work: Path, plan: Plan) -> Section:
    """20,000 jobs: the dry run's time and peak RSS, and a real run's time to its first
    request, at four sizes to show the growth; from a folder and from a job file."""
    sizes = plan.scale_sizes
    largest = sizes[-1]
    dry_target_s, rss_target_mb, first_target_s, linear_target = 5.0, 120.0, 3.0, 1.5
    write_scale_inputs(work, sizes)
    ways = {"folder": "a folder", "from": "--from JSONL"}

    def arguments(way: str, size: int) -> list[str]:
        if way == "folder":
            return ["edit", f"in{size}/", "-p", PROMPT]
        return ["edit", "--from", f"jobs{size}.jsonl"]

    runs = {(way, size): ScaleRuns() for way in ways for size in sizes}
    with Server(tools, work, plan.latency) as server:
        serve = server.shown
        relay = FirstRequest(server)
        try:
            load = os.getloadavg()[0]
            cases = [(way, size) for size in sizes for way in ways]
            for round_number in range(plan.runs_scale):
                shift = round_number % len(cases)
                for way, size in cases[shift:] + cases[:shift]:
                    item = runs[(way, size)]
                    if item.error is not None:
                        continue
                    label = f"scale: run {round_number + 1}/{plan.runs_scale} {way} {size}"
                    dry_run = [*tools.nanoedit, *arguments(way, size), "--dry-run", "-d", "out"]
                    real_run = [*tools.nanoedit, *arguments(way, size), "-d", "out-run"]
                    try:
                        result = measure(
                            dry_run, cwd=work, env=tools.client_env(server), shown=shown(dry_run)
                        )
                        headers = sum(1 for line in result.stdout.splitlines() if line[:2] == "# ")
                        if headers != size:
                            raise RunFailed(f"`{shown(dry_run)}` printed {headers} jobs of {size}")
                        waited = time_to_first_request(
                            real_run, cwd=work, relay=relay, shown=shown(real_run),
                            env={**tools.env, "NANOEDIT_OPENAI_BASE_URL": relay.base_url},
                        )  # fmt: skip
                    except RunFailed as exc:
                        item.error = str(exc)
                        log(f"{label}: FAILED: {exc}")
                        continue
                    finally:
                        shutil.rmtree(work / "out-run", ignore_errors=True)
                    item.seconds.append(result.seconds)
                    item.rss_kib.append(result.max_rss_kib)
                    item.first_request.append(waited)
                    log(
                        f"{label}: dry run {result.seconds:.2f} s, peak RSS "
                        f"{result.max_rss_kib / 1024:.0f} MiB; first request after {waited:.2f} s"
                    )
        finally:
            relay.close()

    def median_of(way: str, what: str) -> dict[int, float]:
        return {
            size: statistics.median(getattr(runs[(way, size)], what))
            for size in sizes
            if runs[(way, size)].error is None and getattr(runs[(way, size)], what)
        }

    rows, slope_rows = [], []
    verdicts: list[bool | None] = []
    for way, name in ways.items():
        dry, first = median_of(way, "seconds"), median_of(way, "first_request")  # by size
        rss = {size: kib * 1024 / 1e6 for size, kib in median_of(way, "rss_kib").items()}
        for size in sizes:
            item = runs[(way, size)]
            if item.error is not None:
                reason = item.error.replace("|", "/").replace("\n", " ")[:300]
                rows.append(f"| {name} | {size:,} | FAILED: {reason} | — | — | — |")
                continue
            rows.append(
                f"| {name} | {size:,} | {dry[size]:.2f} | {dry[size] / size * 1e6:.0f} | "
                f"{rss[size]:.1f} | {first[size]:.2f} |"
            )
        if len(dry) == len(sizes):
            slopes = {
                label: (_slope(series, sizes[0], sizes[-2]), _slope(series, sizes[-2], sizes[-1]))
                for label, series in (("dry run", dry), ("first request", first))
            }
            # 5 µs a job of slack: at the small sizes of --quick a slope is a few ms of noise.
            linear = all(
                late <= max(early, 0.0) * linear_target + 0.005 for early, late in slopes.values()
            )
            for label, (early, late) in slopes.items():
                slope_rows.append(
                    f"| {name} | {label} | {early * 1000:.0f} | {late * 1000:.0f} | "
                    f"{fmt_ratio(late / early if early > 0 else None)} |"
                )
            met = (
                dry[largest] < dry_target_s
                and rss[largest] < rss_target_mb
                and first[largest] < first_target_s
            )
            verdicts.append(linear and met)
            log(f"scale: {way}: linear {linear}, targets at {largest} met {met}")
        else:
            verdicts.append(None)
    passed = None if None in verdicts or not verdicts else all(v is True for v in verdicts)
    lines = [
        f"Jobs of a small PNG (64x48) each, at {', '.join(f'{size:,}' for size in sizes)} jobs: "
        "from a folder, and the same files named in a job file (`--from`, one JSON line a job). "
        "*Dry run*: the time and peak RSS (ru_maxrss, from `os.wait4`; MB = 10^6 bytes) of "
        "`--dry-run`, which checks and names every job and prints its curl command (stdout "
        "to a file, every job's command counted). *First request*: the time from starting the "
        "same command without `--dry-run` to the sandbox receiving its first request (through "
        "a relay of this script's in front of it that notes when the first request's bytes "
        "arrive), then stopped (SIGTERM). "
        f"Targets at {largest:,} jobs: dry run under {dry_target_s:g} s and {rss_target_mb:g} "
        f"MB, first request under {first_target_s:g} s, and linear growth: 1,000 more jobs "
        f"cost at most {linear_target}x more from {sizes[-2]:,} to {largest:,} jobs than from "
        f"{sizes[0]:,} to {sizes[-2]:,} (a cost growing with the square of the jobs, as naming "
        f"was, gives about {(sizes[-2] + largest) / (sizes[0] + sizes[-2]):.1f}x). "
        f"{plan.runs_scale} run(s) of each, rotated; load average (1 min) before "
        f"the first run: {load:.2f} on {os.cpu_count()} CPUs.",
        "",
        "| jobs given as | jobs | dry run s | dry run µs/job | dry run peak RSS MB | "
        "first request s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "Growth: what 1,000 more jobs cost (ms of the medians).",
        "",
        f"| jobs given as | figure | {sizes[0]:,} to {sizes[-2]:,} | {sizes[-2]:,} to "
        f"{sizes[-1]:,} | ratio (target ≤ {linear_target}x) |",
        "| --- | --- | ---: | ---: | ---: |",
        *slope_rows,
        "",
        f"**{largest:,} jobs: {verdict(passed)}** (dry run < {dry_target_s:g} s and < "
        f"{rss_target_mb:g} MB, first request < {first_target_s:g} s, linear growth, "
        "from a folder and from a job file).",
        "",
        f"Commands (in `$WORK`, for N = {', '.join(str(size) for size in sizes)}; "
        "`NANOEDIT_OPENAI_BASE_URL` points at the relay for the second pair):",
        "",
        "```sh",
        f"{serve} &",
        *[
            shown([*tools.nanoedit, *arguments(way, largest), *extra]).replace(str(largest), "$N")
            for extra in (["--dry-run", "-d", "out"], ["-d", "out-run"])
            for way in ways
        ],
        "```",
    ]
    failures = sum(1 for item in runs.values() if item.error is not None)
    return Section(f"7. Large batches: {sizes[0]:,} to {largest:,} jobs", lines, passed, failures)


def marginal_ms(batch: Series, single: Series, count: int) -> str:
    """What one more image costs: the slope between the median times for 1 and ``count``."""
    if not batch.ok or not single.ok or count < 2:
        return "—"
    return f"{(batch.median - single.median) / (count - 1) * 1000:.0f}"


def fixed_ms(batch: Series, single: Series, count: int) -> str:
    """What a run costs besides its images: the time for one image less the marginal cost."""
    if not batch.ok or not single.ok or count < 2:
        return "—"
    marginal = (batch.median - single.median) / (count - 1)
    return f"{(single.median - marginal) * 1000:.0f}"


def _produced(series: Sequence[Series]) -> str:
    for item in series:
        if item.produced is not None:
            return item.produced.describe()
    return "(no run succeeded)"


# Per-image target: 24 one-megapixel edits in one run against the curl loop over them.
OVERHEAD_TARGET = 0.95


def _bytecode_note(tools: Tools) -> str:
    """Which bytecode nanoedit's runs had."""
    given = " (PYTHONDONTWRITEBYTECODE is set here, so it was not next to the sources)"
    return (
        "nanoedit runs with every module's bytecode cached in the work folder, as an "
        f"installed nanoedit starts{given if tools.env.get('PYTHONDONTWRITEBYTECODE') else ''}."
    )


def bench_overhead(tools: Tools, work: Path, plan: Plan) -> Section:
    """Per-image client cost at zero latency: nanoedit --jobs 1 against the serial curl loop."""
    count = plan.overhead_images
    input_bytes = write_megapixel(work / "mp", count)
    # One image alone, to split each client's time into a fixed and a per-image part.
    (work / "mp1").mkdir()
    shutil.copyfile(work / "mp" / "00.png", work / "mp1" / "00.png")
    variants = [
        # (label, model, size, extension of the curl results)
        # The gateway's own nano-banana-hd answers PNG (nanoedit's nano-banana is now Nano
        # Banana 2 there, which answers JPEG).
        ("1K PNG out (nano-banana-hd)", "nano-banana-hd", None, "png"),
        ("2K JPEG out (nano-banana-2 --size 2K)", "nano-banana-2", "2K", "jpg"),
    ]
    rows: list[str] = []
    split_rows: list[str] = []
    cpu_rows: list[str] = []
    commands: list[str] = []
    verdicts: list[bool | None] = []
    failures = 0
    with Server(tools, work, 0.0) as server:
        serve = server.shown
        warm_up(tools, work, server, "mp", [])
        load = os.getloadavg()[0]
        for label, model, size, ext in variants:
            options = ["--jobs", "1", "-m", model] + (["--size", size] if size else [])
            slug = model.replace(".", "")
            contenders = [
                nanoedit_contender(
                    "nanoedit --jobs 1",
                    tools,
                    work,
                    server,
                    inputs="mp",
                    out_dir=f"out-nanoedit-{slug}",
                    expected=count,
                    options=options,
                ),
                curl_contender(
                    "curl loop",
                    tools,
                    work,
                    server,
                    inputs="mp",
                    out_dir=f"out-curl-{slug}",
                    expected=count,
                    model=model,
                    ext=ext,
                    size=size,
                ),
                nanoedit_contender(
                    "nanoedit --jobs 1, one image",
                    tools,
                    work,
                    server,
                    inputs="mp1",
                    out_dir=f"out-nanoedit1-{slug}",
                    expected=1,
                    options=options,
                ),
                curl_contender(
                    "curl loop, one image",
                    tools,
                    work,
                    server,
                    inputs="mp1",
                    out_dir=f"out-curl1-{slug}",
                    expected=1,
                    model=model,
                    ext=ext,
                    size=size,
                ),
            ]
            # nanoedit starts as installed: with its modules' bytecode (written by a warm-up).
            contenders = [
                replace(item, env=bytecode_env(item.env, work))
                if item.name.startswith("nanoedit")
                else item
                for item in contenders
            ]
            measure(contenders[2].command, cwd=work, env=contenders[2].env, shown="warm-up")
            shutil.rmtree(work / contenders[2].out_dir, ignore_errors=True)
            nanoedit, curl, nanoedit1, curl1 = run_series(
                f"overhead {label}", contenders, plan.runs_overhead, server
            )
            failures += sum(1 for item in (nanoedit, curl, nanoedit1, curl1) if not item.ok)
            split_rows.append(
                f"| {label} | {seconds_cell(nanoedit1, 0, 1000)} | {seconds_cell(curl1, 0, 1000)} "
                f"| {marginal_ms(nanoedit, nanoedit1, count)} | {marginal_ms(curl, curl1, count)} "
                f"| {fixed_ms(nanoedit, nanoedit1, count)} | {fixed_ms(curl, curl1, count)} |"
            )
            ratio = paired_ratio(nanoedit, curl)
            passed = None if ratio is None else ratio <= OVERHEAD_TARGET
            verdicts.append(passed)
            extra_ms = (
                f"{(nanoedit.median - curl.median) / count * 1000:+.0f}"
                if nanoedit.ok and curl.ok
                else "—"
            )
            rows.append(
                f"| {label}: {_produced([nanoedit, curl])} | "
                f"{seconds_cell(nanoedit, 0, 1000 / count)} | "
                f"{seconds_cell(curl, 0, 1000 / count)} | {extra_ms} | {fmt_ratio(ratio)} | "
                f"{verdict(passed)} |"
            )
            commands += [item.contender.shown for item in (nanoedit, curl, nanoedit1, curl1)]
            per_image = 1000 / count
            cpu_rows.append(
                f"| {label} | {cpu_cell(nanoedit, per_image, 0)} | {cpu_cell(curl, per_image, 0)} "
                f"| {server_cpu_cell(nanoedit, per_image, 0)} | "
                f"{server_cpu_cell(curl, per_image, 0)} |"
            )
    passed_all = None if None in verdicts else all(v is True for v in verdicts)
    lines = [
        f"{count} edits of a 1000x1000 PNG ({input_bytes / 1e6:.2f} MB: gradients, shapes, "
        "lines, a faint fractal, softened; no noise), one at a time, server latency 0. "
        f"Per-image time = total wall time / {count}, so nanoedit's start-up is spread over "
        f"the {count} images. "
        f"Target: nanoedit at most {OVERHEAD_TARGET:.2f}x the curl loop. "
        f"{plan.runs_overhead} run(s) of each, rotated; load average (1 min) before the first "
        f"run: {load:.2f} on {os.cpu_count()} CPUs. {_bytecode_note(tools)}",
        "",
        "**No model of the sandbox returns a 2K PNG**: the gateway's 2.5-based models "
        "(nano-banana-hd…) render 1K PNG only; the 3.x models render 2K but as JPEG. Both "
        "neighbours are measured instead: the PNG path at 1K, and 2K as JPEG.",
        "",
        "| result | nanoedit ms/image | curl ms/image | nanoedit - curl ms/image | "
        f"nanoedit / curl | target ≤ {OVERHEAD_TARGET:.2f}x |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        *rows,
        "",
        f"Fixed and per-image cost: the same commands over `mp1/`, one of the images alone; "
        f"the per-image (marginal) cost is (time for {count} - time for 1) / {count - 1}, "
        "the rest of the time for one image is the fixed cost of a run (start-up).",
        "",
        "| result | nanoedit, 1 image ms | curl, 1 image ms | nanoedit marginal ms/image "
        "| curl marginal ms/image | nanoedit fixed ms | curl fixed ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *split_rows,
        "",
        "Where the time goes, CPU ms per image (medians; a client's CPU includes its child "
        "processes: curl, sed and sh for the loop):",
        "",
        "| result | nanoedit CPU | curl loop CPU | server CPU, nanoedit runs | "
        "server CPU, curl runs |",
        "| --- | ---: | ---: | ---: | ---: |",
        *cpu_rows,
        "",
        "Commands (in `$WORK`; `mp/` holds the 1000x1000 PNGs):",
        "",
        "```sh",
        f"{serve} &",
        *commands,
        "```",
    ]
    return Section(f"3. Per-image client overhead, {count} images", lines, passed_all, failures)


def bench_memory(tools: Tools, work: Path, plan: Plan) -> Section:
    """Peak RSS of nanoedit saving many 4K results, URL mode against base64 mode."""
    count, jobs = plan.memory_images, plan.memory_jobs
    samples = work / "in-memory"
    if not samples.exists():
        write_samples(tools, samples, count)
    target_mb = 60.0
    base = ["--jobs", str(jobs), "-m", "nano-banana-2", "--size", "4K"]
    with Server(tools, work, 0.0) as server:
        serve = server.shown
        warm_up(tools, work, server, "in-memory", ["-m", "nano-banana-2", "--size", "4K"])
        contenders = [
            nanoedit_contender(
                f"--response-format {fmt}",
                tools,
                work,
                server,
                inputs="in-memory",
                out_dir=f"out-{fmt}",
                expected=count,
                options=[*base, "--response-format", fmt],
            )
            for fmt in ("url", "b64_json")
        ]
        load = os.getloadavg()[0]
        series = run_series("memory", contenders, plan.runs_memory, server)
    version = Contender(
        "nanoedit --version (baseline)",
        (*tools.nanoedit, "--version"),
        work,
        "out-version",
        0,
        tools.env,
    )
    (baseline,) = run_series("memory", [version], plan.runs_memory)
    url_mode = series[0]
    passed = url_mode.median_rss_mb < target_mb if url_mode.ok else None
    lines = [
        f"{count} edits of cat.png with `-m nano-banana-2 --size 4K --jobs {jobs}`, each "
        f"result a {_produced(series)}, server latency 0. Peak RSS (ru_maxrss of the nanoedit "
        "process, from `os.wait4`), MB = 10^6 bytes. Target: under "
        f"{target_mb:.0f} MB in URL mode. {plan.runs_memory} run(s) of each; load average "
        f"(1 min) before the first run: {load:.2f} on {os.cpu_count()} CPUs.",
        "",
        "| run | median peak RSS MB | min-max MB | median time s | client CPU s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for item in [*series, baseline]:
        if item.ok:
            low, high = (min(item.rss_kib) * 1024 / 1e6, max(item.rss_kib) * 1024 / 1e6)
            lines.append(
                f"| {item.contender.name} | {item.median_rss_mb:.1f} | {low:.1f}-{high:.1f} | "
                f"{item.median:.2f} | {cpu_cell(item)} |"
            )
        else:
            lines.append(f"| {item.contender.name} | {seconds_cell(item)} | — | — | — |")
    lines += [
        "",
        f"**URL mode: {url_mode.median_rss_mb if url_mode.ok else float('nan'):.1f} MB "
        f"(target < {target_mb:.0f} MB): {verdict(passed)}**; base64 mode reported only.",
        "",
        "Commands (in `$WORK`):",
        "",
        "```sh",
        f"{serve} &",
        *[item.contender.shown for item in [*series, baseline]],
        "```",
    ]
    failures = sum(1 for item in [*series, baseline] if not item.ok)
    return Section(f"4. Peak memory, {count} results at 4K", lines, passed, failures)


def paired_difference(numerator: Series, denominator: Series) -> float | None:
    """The median of numerator - denominator seconds over the rounds both completed."""
    pairs = list(zip(numerator.seconds, denominator.seconds, strict=False))
    if not numerator.ok or not denominator.ok or not pairs:
        return None
    return statistics.median(a - b for a, b in pairs)


def bytecode_env(env: dict[str, str], work: Path) -> dict[str, str]:
    """``env`` with bytecode written to (on the warm-up run) and read from a folder under
    ``work``: how an installed nanoedit starts. Under PYTHONDONTWRITEBYTECODE an editable
    install has none, and compiles its own modules at every start."""
    out = {name: value for name, value in env.items() if name != "PYTHONDONTWRITEBYTECODE"}
    out["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return out


# What the start-up of any tool on nanoedit's stack pays before its own first line: the
# interpreter, typer and the HTTP client (httpx, and httpcore that its transport loads), ended
# as the console script ends, without the interpreter's teardown.
STACK_ONLY = "import gc, os; gc.disable(); import typer, httpx, httpcore; os._exit(0)"


def bench_startup(tools: Tools, work: Path, plan: Plan) -> Section:
    """Fixed start-up: ``nanoedit edit`` of one small image against the sandbox at zero
    latency, its ``--dry-run``, ``--help`` and ``--version``, beside ``python -c pass`` and the
    curl POST+GET pair of the same edit."""
    help_target, edit_target_ms, pair_target = 4.0, 110.0, 2.0
    inputs = work / "startup-in"
    if not inputs.exists():
        write_samples(tools, inputs, 1)
    modes = [("bytecode", bytecode_env(tools.env, work))]
    if tools.env.get("PYTHONDONTWRITEBYTECODE"):
        modes.append(("no bytecode (PYTHONDONTWRITEBYTECODE, as given)", tools.env))
    lines = [
        f"Wall time of one start, {plan.runs_startup} runs of each after one warm-up run, "
        "rotated; nanoedit runs on the same interpreter as `python -c pass`. `edit` is one "
        "edit of the sandbox's cat.png (640x480 PNG in, a 1184x864 PNG out) against "
        "`nanoedit sandbox serve --latency 0`; the curl pair is `curl_edit.sh` over the same "
        f"image (one POST, one GET). Targets: `edit` at most {edit_target_ms:g} ms above "
        f"`python -c pass`, `edit` within {pair_target:g}x the curl pair, `--help` under "
        f"{help_target:g}x `python -c pass`; figures above python and ratios are medians of "
        "the differences and ratios of runs made side by side. *bytecode*: every module's "
        "bytecode cached (in a folder of the work directory, written by the warm-up run), as "
        "an installed nanoedit starts. *no bytecode*: the environment as given, where "
        "PYTHONDONTWRITEBYTECODE leaves an editable install's own modules to be compiled at "
        "every start.",
        "",
    ]
    verdicts: list[bool | None] = []
    failures = 0
    commands: list[str] = []
    with Server(tools, work, 0.0) as server:
        serve = server.shown
        for mode, env in modes:
            client = {**env, "NANOEDIT_OPENAI_BASE_URL": server.base_url}
            edit = (*tools.nanoedit, "edit", "startup-in/00.png", "-p", PROMPT)
            contenders = [
                Contender("python -c pass", (tools.python, "-c", "pass"), work, "out-pass", 0, env),
                Contender(
                    "python -c: typer, httpx, httpcore",
                    (tools.python, "-c", STACK_ONLY),
                    work,
                    "out-stack",
                    0,
                    env,
                ),
                Contender("nanoedit --help", (*tools.nanoedit, "--help"), work, "out-help", 0, env),
                Contender(
                    "nanoedit --version", (*tools.nanoedit, "--version"), work, "out-ver", 0, env
                ),
                Contender(
                    "nanoedit edit --dry-run", (*edit, "--dry-run"), work, "out-dry", 0, client
                ),
                Contender("nanoedit edit", (*edit, "-d", "out-edit"), work, "out-edit", 1, client),
                curl_contender(
                    "curl POST+GET pair",
                    tools,
                    work,
                    server,
                    inputs="startup-in",
                    out_dir="out-curl",
                    expected=1,
                    model="nano-banana",
                    ext="png",
                ),
            ]
            for contender in contenders:  # warm the file cache, the bytecode and the server
                out = work / contender.out_dir
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                measure(contender.command, cwd=work, env=contender.env, shown=contender.shown)
                shutil.rmtree(out)
            load = os.getloadavg()[0]
            series = run_series(f"startup, {mode}", contenders, plan.runs_startup, server)
            python, stack, help_, _version, _dry, edit_run, pair = series
            failures += sum(1 for item in series if not item.ok)
            above = paired_difference(edit_run, python)
            help_ratio = paired_ratio(help_, python)
            pair_ratio = paired_ratio(edit_run, pair)
            checks = [
                None if above is None else above * 1000 <= edit_target_ms,
                None if pair_ratio is None else pair_ratio <= pair_target,
                None if help_ratio is None else help_ratio < help_target,
            ]
            if mode == "bytecode":
                verdicts += checks
            lines += [
                f"**{mode}**; load average (1 min) before the first run: {load:.2f} on "
                f"{os.cpu_count()} CPUs.",
                "",
                "| command | median ms | min-max ms | ms above python -c pass "
                "| / python -c pass | / curl pair | peak RSS MB |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            ]
            for item in series:
                rss = f"{item.median_rss_mb:.1f}" if item.ok else "—"
                difference = paired_difference(item, python)
                lines.append(
                    f"| `{item.contender.name}` | {seconds_cell(item, 0, 1000)} | "
                    f"{item.spread(1000, 0) if item.ok else '—'} | "
                    f"{'—' if difference is None else f'{difference * 1000:+.0f}'} | "
                    f"{fmt_ratio(paired_ratio(item, python))} | "
                    f"{fmt_ratio(paired_ratio(item, pair))} | {rss} |"
                )
            shown_above = "—" if above is None else f"{above * 1000:.0f} ms"
            stack_ratio = paired_ratio(stack, pair)
            lines += [
                "",
                f"`nanoedit edit`: {shown_above} above `python -c pass` (target ≤ "
                f"{edit_target_ms:g} ms): {verdict(checks[0])}; {fmt_ratio(pair_ratio)} the "
                f"curl pair (target ≤ {pair_target:g}x): {verdict(checks[1])}. "
                f"`nanoedit --help`: {fmt_ratio(help_ratio)} `python -c pass` (target < "
                f"{help_target:g}x): {verdict(checks[2])}."
                + ("" if mode == "bytecode" else " (Reported only: the targets are for bytecode.)"),
                "",
                f"The stack alone (`{STACK_ONLY}`: the interpreter, typer and httpx, no line of "
                f"nanoedit) is {fmt_ratio(stack_ratio)} the curl pair: the floor under any "
                "command-line tool built on them, and so under `nanoedit edit`.",
                "",
            ]
            if not commands:
                commands = [item.contender.shown for item in series]
    passed = None if None in verdicts else all(v is True for v in verdicts)
    lines += [
        "Commands (in `$WORK`; `startup-in/00.png` is cat.png; the *bytecode* runs have "
        "`PYTHONPYCACHEPREFIX=$WORK/pycache` and no `PYTHONDONTWRITEBYTECODE`):",
        "",
        "```sh",
        f"{serve} &",
        *commands,
        "```",
    ]
    return Section("5. Start-up", lines, passed, failures)


def write_b64_answer(path: Path, size: tuple[int, int]) -> int:
    """An OpenAI-shaped JSON answer holding a PNG of random pixels (it does not compress) as
    ``data[0].b64_json``; returns the PNG's size in bytes."""
    import base64
    import io

    from PIL import Image

    pixels = random.Random(20240601).randbytes(size[0] * size[1] * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(out, "PNG", compress_level=1)
    png = out.getvalue()
    answer = {
        "created": 1_700_000_000,
        "data": [{"revised_prompt": PROMPT, "url": "", "b64_json": base64.b64encode(png).decode()}],
        "usage": {"prompt_tokens": 262, "completion_tokens": 1290, "total_tokens": 1552},
    }
    path.write_text(json.dumps(answer), encoding="ascii")
    return len(png)


def bench_b64(tools: Tools, work: Path, plan: Plan) -> Section:
    """Base64 results decoded while they arrive (``nanoedit.b64stream``) against whole-string
    decoding: speed, and the peak RSS of writing one result to a file."""
    body = work / "answer.json"
    png_bytes = write_b64_answer(body, plan.b64_side)
    body_mb = body.stat().st_size / 1e6
    worker = [tools.python, str(B64_WORKER)]
    speed_target, memory_target = 1.0, 5.0
    lines = [
        f"One answer in OpenAI's shape holding a {plan.b64_side[0]}x{plan.b64_side[1]} PNG of "
        f"random pixels ({png_bytes / 1e6:.1f} MB; random, so it does not compress) as "
        f"`data[0].b64_json`: a {body_mb:.1f} MB body. MB = 10^6 bytes.",
        "",
    ]
    failures = 0
    shown_speed = shown([*worker, "speed", "answer.json", str(plan.b64_rounds)])
    try:
        done = subprocess.run(
            [*worker, "speed", str(body), str(plan.b64_rounds)],
            cwd=work, env=tools.env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
        )  # fmt: skip
        if done.returncode != 0:
            raise RunFailed(f"`{shown_speed}` exited with {done.returncode}: {_tail(done.stderr)}")
        rates: dict[str, float] | None = json.loads(done.stdout)
    except (RunFailed, subprocess.TimeoutExpired, ValueError) as exc:
        log(f"b64: speed: FAILED: {exc}")
        rates, failures = None, failures + 1
    speed_passed = None
    lines += [
        f"**Speed**: MB of base64 text decoded per second, each way the best of "
        f"{plan.b64_rounds} rounds taken in turns in one process.",
        "",
        "| decoder | MB/s | x base64.b64decode |",
        "| --- | ---: | ---: |",
    ]
    if rates is None:
        lines.append("| all | FAILED (see the log) | — |")
    else:
        whole = rates["b64decode"]
        speed_passed = rates["stream"] >= whole * speed_target
        for key, name in (
            ("stream", "`nanoedit.b64stream`, fed the body in 256 KiB pieces"),
            ("b64decode", "`base64.b64decode` over the whole base64 text"),
            ("json_loads_decode_base64", "`json.loads` + `decode_base64` (reading whole)"),
        ):
            lines.append(f"| {name} | {rates[key]:,.0f} | {fmt_ratio(rates[key] / whole)} |")
        lines += [
            "",
            f"**b64stream: {fmt_ratio(rates['stream'] / whole)} the speed of base64.b64decode "
            f"(target ≥ {speed_target:.2f}x): {verdict(speed_passed)}**.",
        ]
    contenders = [
        Contender(
            name,
            (*worker, "memory", way, "answer.json", f"out-{way}/image.png"),
            work,
            f"out-{way}",
            0 if way == "baseline" else 1,
            tools.env,
        )
        for name, way in (
            ("streamed into the file (b64stream)", "stream"),
            ("read whole: json.loads + decode_base64", "whole"),
            ("imports only (baseline)", "baseline"),
        )
    ]
    stream, whole_read, baseline = run_series("b64", contenders, plan.runs_b64)
    failures += sum(1 for item in (stream, whole_read, baseline) if not item.ok)
    memory_passed = None
    added = None
    if stream.ok and baseline.ok:
        added = stream.median_rss_mb - baseline.median_rss_mb
        memory_passed = added < memory_target
    lines += [
        "",
        f"**Memory**: peak RSS (ru_maxrss, from `os.wait4`) of a process that writes the image "
        f"to a file from the body on disk, {plan.runs_b64} run(s) of each; the baseline "
        "imports the same modules and does nothing. Target: streaming adds under "
        f"{memory_target:g} MB to the baseline, whatever the image's size.",
        "",
        "| way | median peak RSS MB | min-max MB | above baseline MB | median time s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for item in (stream, whole_read, baseline):
        if item.ok:
            low, high = (min(item.rss_kib) * 1024 / 1e6, max(item.rss_kib) * 1024 / 1e6)
            above = f"{item.median_rss_mb - baseline.median_rss_mb:+.1f}" if baseline.ok else "—"
            lines.append(
                f"| {item.contender.name} | {item.median_rss_mb:.1f} | {low:.1f}-{high:.1f} | "
                f"{above} | {item.median:.2f} |"
            )
        else:
            lines.append(f"| {item.contender.name} | {seconds_cell(item)} | — | — | — |")
    lines += [
        "",
        f"**Streaming: {'—' if added is None else f'{added:+.1f} MB'} above the baseline "
        f"(target < {memory_target:g} MB): {verdict(memory_passed)}**.",
        "",
        "Commands (in `$WORK`; `answer.json` is the body):",
        "",
        "```sh",
        shown_speed,
        *[item.contender.shown for item in (stream, whole_read, baseline)],
        "```",
    ]
    received, received_passed, received_failures = _b64_received(tools, work, plan, body)
    lines += received
    failures += received_failures
    verdicts = (speed_passed, memory_passed, received_passed)
    passed = None if None in verdicts else all(verdicts)
    return Section(f"6. Base64 results: {body_mb:.0f} MB answers", lines, passed, failures)


class AnswerServer(Server):
    """``b64_worker.py serve``: every POST answered with the same JSON body, at once."""

    def __init__(self, tools: Tools, work: Path, body: Path) -> None:
        super().__init__(tools, work, 0.0)
        self.body = body

    def command(self, port: int) -> list[str]:
        """The serve command for ``port``."""
        return [self.tools.python, str(B64_WORKER), "serve", str(port), str(self.body)]

    @property
    def shown(self) -> str:
        """The serve command as RESULTS.md shows it."""
        return shown([self.tools.python, str(B64_WORKER), "serve"]) + f" $PORT {self.body.name}"


def _b64_received(
    tools: Tools, work: Path, plan: Plan, body: Path
) -> tuple[list[str], bool | None, int]:
    """Peak RSS of nanoedit itself receiving the answer for several edits at once, each
    image streamed from the socket into its part file; the lines, verdict and failures."""
    count = jobs = 8
    target_mb = 120.0
    if not (work / "in-b64").exists():
        write_samples(tools, work / "in-b64", count)
    options = ["--jobs", str(jobs), "--backend", "openai", "--response-format", "b64_json"]
    with AnswerServer(tools, work, body) as server:
        contender = nanoedit_contender(
            f"nanoedit --response-format b64_json --jobs {jobs}", tools, work, server,
            inputs="in-b64", out_dir="out-b64", expected=count, options=options,
        )  # fmt: skip
        version = Contender(
            "nanoedit --version (baseline)", (*tools.nanoedit, "--version"), work,
            "out-version", 0, tools.env,
        )  # fmt: skip
        streamed, baseline = run_series("b64", [contender, version], plan.runs_b64)
        serve = server.shown
    passed = streamed.median_rss_mb < target_mb if streamed.ok else None
    lines = [
        "",
        f"**nanoedit receiving it**: {count} edits with `--jobs {jobs}`, each answered with "
        f"this body by `b64_worker.py serve` (a server that answers every POST with it at "
        f"once), so {count} images arrive at the same time. Peak RSS of the nanoedit process; "
        f"{plan.runs_b64} run(s). Target: under {target_mb:.0f} MB.",
        "",
        "| run | median peak RSS MB | min-max MB | median time s | client CPU s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for item in (streamed, baseline):
        if item.ok:
            low, high = (min(item.rss_kib) * 1024 / 1e6, max(item.rss_kib) * 1024 / 1e6)
            lines.append(
                f"| {item.contender.name} | {item.median_rss_mb:.1f} | {low:.1f}-{high:.1f} | "
                f"{item.median:.2f} | {cpu_cell(item)} |"
            )
        else:
            lines.append(f"| {item.contender.name} | {seconds_cell(item)} | — | — | — |")
    figure = f"{streamed.median_rss_mb:.1f} MB" if streamed.ok else "—"
    lines += [
        "",
        f"**{count} answers at once: {figure} (target < {target_mb:.0f} MB): {verdict(passed)}**.",
        "",
        "Commands (in `$WORK`):",
        "",
        "```sh",
        f"{serve} &",
        *[item.contender.shown for item in (streamed, baseline)],
        "```",
    ]
    failures = sum(1 for item in (streamed, baseline) if not item.ok)
    return lines, passed, failures


# The report ----------------------------------------------------------------------------------


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def _version_of(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (done.stdout.strip().splitlines() or ["?"])[0]


def report(sections: Sequence[Section], tools: Tools, plan: Plan, argv: Sequence[str]) -> str:
    """RESULTS.md: the machine, the date, then a table per benchmark with its commands."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += " plus uncommitted changes"
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    python = tools.python if tools.python.startswith(f"{REPO}{os.sep}") else "python3"
    invocation = shown([python, "benchmarks/run.py", *argv])
    summary = [
        f"| {section.title} | {verdict(section.passed)} | "
        + (f"{section.failures} client(s) FAILED |" if section.failures else "all runs ok |")
        for section in sections
    ]
    lines = [
        "# nanoedit benchmark results",
        "",
        "Written by `benchmarks/run.py` (see `benchmarks/README.md`); not run by CI.",
        "",
        f"- Date: {now}",
        f"- nanoedit {_version_of([*tools.nanoedit, '--version']).removeprefix('nanoedit ')}, "
        f"git {commit}",
        f"- Machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}; "
        f"load average at the end (1/5/15 min): {load}; the machine is shared, so expect noise",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{' '.join(_version_of(['curl', '--version']).split()[:2])}",
        f"- Mode: {'quick' if plan.quick else 'full'}; command: `{invocation}`",
        "- Every figure is the median of the runs listed; a ratio between two clients is the "
        "median of the per-round ratios (each round runs every client once, in rotating "
        "order); every run's exit code was 0 and its output folder held exactly the "
        "expected images, or the row says FAILED.",
        "- Commands ran in a fresh temporary folder, `$WORK`, with `NANOEDIT_CONFIG_DIR` "
        "and `NANOEDIT_DATA_DIR` (the job journal) "
        "set to empty folders in it, `NANOEDIT_OPENAI_BASE_URL=http://127.0.0.1:$PORT` and "
        "`NANOEDIT_OPENAI_API_KEY=$KEY` (any key), every other `NANOEDIT_*` and proxy "
        "variable removed. `.venv/bin/…` and `benchmarks/…` are relative to the repository "
        "root. The sandbox ran as a subprocess on a free port, and shares the CPUs with "
        "the client it serves.",
        "",
        "| benchmark | target met | runs |",
        "| --- | --- | --- |",
        *summary,
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", "", *section.lines, ""]
    text = "\n".join(lines)
    # No path of this machine goes into the repository.
    return text.replace(str(REPO), "<repo>").replace(tempfile.gettempdir(), "<tmp>")


# Main ----------------------------------------------------------------------------------------


def make_plan(args: argparse.Namespace) -> Plan:
    """The sizes and repetitions the options ask for."""
    if args.quick:
        # A latency of 0.25 s keeps the serial curl loop to 4 s: a quick run takes ~30 s,
        # short enough for the test that keeps this script working.
        plan = Plan(True, 1, 2, 1, 5, 16, 8, 0.25, 4, 8, 4, 1, 128, 64, 1, (1024, 1024), 2)
    else:
        # 4096x2200 pixels of noise: a 27 MB PNG, 36 MB as base64, as a 4K result can be.
        plan = Plan(False, 3, 5, 3, 15, 64, 8, 1.0, 24, 32, 4, 3, 1000, 64, 3, (4096, 2200), 7)
    if args.quick:
        # The same four steps of growth, small enough for a few seconds.
        plan = replace(plan, scale_sizes=(125, 250, 500, 1000), runs_scale=1)
    if args.runs is not None:
        plan = replace(
            plan,
            runs_scale=args.runs,
            runs_throughput=args.runs,
            runs_overhead=args.runs,
            runs_memory=args.runs,
            runs_wide=args.runs,
            runs_b64=args.runs,
        )
    if args.startup_runs is not None:
        plan = replace(plan, runs_startup=args.startup_runs)
    return plan


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="Benchmark nanoedit against the sandbox served on a loopback port.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer runs, smaller batches (~1-2 minutes): checks the script, not nanoedit",
    )
    parser.add_argument(
        "--runs",
        type=int,
        metavar="N",
        help="runs of each client in benchmarks 1-3 (default: 3, 5, 3; quick: 1, 2, 1)",
    )
    parser.add_argument(
        "--startup-runs",
        type=int,
        metavar="N",
        help="runs of each command in the start-up benchmark (default 15; quick 5)",
    )
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help=f"comma-separated subset of: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="where to write the report ('-' for stdout; default: benchmarks/RESULTS.md, "
        "or stdout with --quick)",
    )
    args = parser.parse_args(argv)
    for name in ("runs", "startup_runs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be 1 or more")
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def work_folder() -> Iterator[Path]:
    """A temporary folder for inputs, outputs and the server's log, removed at the end."""
    with tempfile.TemporaryDirectory(prefix="nanoedit-bench-") as name:
        yield Path(name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks asked for and write the report; 0 if every run succeeded."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    selected = BENCHMARKS if not args.only else tuple(args.only.split(","))
    unknown = [name for name in selected if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    plan = make_plan(args)
    signal.signal(signal.SIGTERM, _interrupt)
    functions = {
        "throughput": bench_throughput,
        "wide": bench_wide,
        "b64": bench_b64,
        "overhead": bench_overhead,
        "memory": bench_memory,
        "startup": bench_startup,
        "scale": bench_scale,
        "alpha": bench_alpha,
    }
    sections: list[Section] = []
    try:
        with work_folder() as work:
            config_dir = work / "config"
            config_dir.mkdir()
            tools = Tools.find(config_dir)
            log(f"work folder {work}; {os.cpu_count()} CPUs; Python {platform.python_version()}")
            for name in BENCHMARKS:
                if name in selected:
                    log(f"{name}: starting")
                    folder = work / name
                    folder.mkdir()
                    sections.append(functions[name](tools, folder, plan))
            text = report(sections, tools, plan, arguments)
    except KeyboardInterrupt:
        log("interrupted: the servers and the work folder are gone, nothing was written")
        return 130
    except (BenchmarkError, RunFailed) as exc:
        log(f"error: {exc}")
        return 1
    output = args.output or ("-" if args.quick else str(DEFAULT_RESULTS))
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
        log(f"wrote {shown(str(Path(output).resolve()))}")
    failures = sum(section.failures for section in sections)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
