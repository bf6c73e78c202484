"""The kill storm: batches of nanoedit stopped at random moments, then ``nanoedit resume``.

Run from the repository root with the project's interpreter::

    .venv/bin/python benchmarks/crash.py            # full run (~30 minutes), writes CRASH.md
    .venv/bin/python benchmarks/crash.py --quick    # ~1 minute, prints the tables

Each round runs ``nanoedit edit in/ -p ... -j 8 -d out --backend B`` against one
``nanoedit sandbox serve --latency 0.5``, stops it with a signal at a moment drawn from a
seeded random generator, then runs ``nanoedit resume`` until nothing is left that resume may
take up without ``--retry-unsafe``. The "two runs at once" rounds start that batch twice at
the same moment, both with ``--skip-existing``, sharing one journal, and stop neither. What
was paid is counted at the server (its request log on stderr), what was kept on disk and in
the journal. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from nanoedit.backends.base import backend_class
from nanoedit.backends.registry import backend_names
from nanoedit.sandbox.app import APIS
from nanoedit.settings.keys import backend_keys

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REPORT = REPO / "benchmarks" / "CRASH.md"
PROMPT = "add a hat"
LATENCY = 0.5
# Every process here is bounded: a run that hangs is stopped and the round marked stuck.
RUN_TIMEOUT = 300.0
SERVER_START_TIMEOUT = 30.0
# After a backend's last round, the server may still be answering a request the killed run
# sent (it answers after the latency): its log is read once it has been quiet this long.
QUIET_SECONDS = 2 * LATENCY + 1.0
# Resume is run again while it makes progress; this many times at most.
MAX_RESUMES = 8
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
# Every backend of the registry, in its order, and the emulated APIs of the sandbox: a backend
# added to either is stormed with no line here.
BACKENDS = backend_names()
# Synchronous backends pay for a request whose answer a kill cuts; asynchronous ones
# journal a task handle the moment the provider gives it.
SYNCHRONOUS = tuple(name for name in BACKENDS if not backend_class(name).asynchronous)
# The requests that cost money, as the server logs them ("METHOD /path STATUS"): the paid
# routes each emulated API declares. One backend is stormed at a time, so any API's count.
PAID = re.compile("(?:" + "|".join(route for api in APIS for route in api.paid_routes) + ") ")
# --quick storms one backend of each kind that takes local files: the first synchronous one
# and the first asynchronous one of the registry.
QUICK = tuple(
    next(name for name in BACKENDS if backend_class(name).takes.files and asynchronous
         is backend_class(name).asynchronous)
    for asynchronous in (False, True)
)  # fmt: skip
MODES = ("kill", "term", "int", "abort", "twice")
MODE_TITLES = {
    "kill": "SIGKILL at a random moment",
    "term": "SIGTERM at a random moment (the run drains)",
    "int": "SIGINT at a random moment (the run drains)",
    "abort": "SIGINT twice (the second aborts)",
    "twice": "Two runs at once (the same batch with --skip-existing, started together)",
}
CHARGED = "may have been charged"

_started = time.monotonic()


def log(message: str) -> None:
    """One progress line on stderr, stamped with the seconds since the start."""
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


class BenchmarkError(Exception):
    """The benchmark itself cannot go on (a server did not start)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes]) -> bool:
    """Wait until ``port`` accepts connections (False if ``process`` ended first)."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@contextlib.contextmanager
def serving(command: Sequence[str], env: dict[str, str], log_path: Path) -> Iterator[int]:
    """Run a server ``command`` (``{port}`` replaced by a free port) with its stderr in
    ``log_path``; yields the port once it accepts connections, stops it at the end."""
    port = free_port()
    with log_path.open("wb") as server_log:
        process = subprocess.Popen(
            [part.format(port=port) for part in command],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=server_log,
        )  # fmt: skip
        try:
            if not wait_port(port, process):
                raise BenchmarkError(f"`{' '.join(command[:4])}` did not start; see {log_path}")
            yield port
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_quiet(log_path: Path) -> None:
    """Wait until the server's log has not grown for QUIET_SECONDS (at most a minute)."""
    deadline = time.monotonic() + 60
    size, since = log_path.stat().st_size, time.monotonic()
    while time.monotonic() - since < QUIET_SECONDS and time.monotonic() < deadline:
        time.sleep(0.1)
        now = log_path.stat().st_size
        if now != size:
            size, since = now, time.monotonic()


# The environment ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """The command, and the environment that points it at the served sandbox."""

    nanoedit: tuple[str, ...]
    env: dict[str, str]


def clean_env(config_dir: Path) -> dict[str, str]:
    """The caller's environment without its NANOEDIT_* and proxy variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("NANOEDIT_") and name.lower() not in PROXY_VARIABLES
    }
    env.update(
        NANOEDIT_CONFIG_DIR=str(config_dir), NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )  # fmt: skip
    return env


def backend_env(base: dict[str, str], api: str, files: str, work: Path) -> dict[str, str]:
    """``base`` with every registered backend pointed at the sandbox at ``api`` (at the path
    its real server has, as OpenRouter's ``/api``), under a key made from its name, polling
    every 0.25 s. URL-only backends take their inputs from an uploader that prints the
    input's URL on ``files``, a plain file server of ``work``."""
    env = dict(base)
    for name in BACKENDS:
        backend = backend_class(name)
        keys = backend_keys(backend)
        path = urlsplit(backend.default_base_url or "").path.rstrip("/")
        env[keys[f"{name}.base_url"].env] = api + path
        env[keys[f"{name}.api_key"].env] = f"crash-{name}"
        poll = backend.extra_keys.get("poll_interval")
        if poll is not None:
            env[poll.env] = "0.25"
    return env | {
        "NANOEDIT_UPLOAD_VIA": "command",
        "NANOEDIT_UPLOAD_COMMAND": f'echo "{files}/${{1#{work}/}}"',
    }


def write_inputs(folder: Path, count: int) -> None:
    """``count`` small PNGs of distinct colours, so each job's result is its own."""
    from PIL import Image

    folder.mkdir(parents=True)
    for number in range(count):
        colour = ((number * 37) % 256, (number * 91) % 256, (number * 53 + 40) % 256)
        Image.new("RGB", (64, 48), colour).save(folder / f"{number:03d}.png")


# One round -----------------------------------------------------------------------------------


@dataclass
class Tally:
    """What rounds of one backend left, summed."""

    rounds: int = 0
    expected: int = 0
    on_disk: int = 0
    duplicates: int = 0
    leftovers: int = 0
    corrupt: int = 0
    paid: int = 0
    charged_listed: int = 0
    charged_unlisted: int = 0
    stuck: int = 0
    resumes: int = 0
    # Runs of two at once that failed, or did not list every image.
    incomplete: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        """Add another round's figures (and notes)."""
        for spec in fields(self):
            if spec.name == "notes":
                self.notes += other.notes
            else:
                setattr(self, spec.name, getattr(self, spec.name) + getattr(other, spec.name))

    @property
    def lost(self) -> int:
        """Jobs without their image."""
        return self.expected - (self.on_disk - self.duplicates)

    @property
    def extra_paid(self) -> int:
        """Paid submissions beyond one per job."""
        return max(0, self.paid - self.expected)

    @property
    def never_saved(self) -> int:
        """Paid results with no image on disk."""
        return max(0, self.paid - (self.on_disk - self.duplicates))


class Storm:
    """Rounds against one served sandbox, its log read to count what was paid."""

    def __init__(self, setup: Setup, work: Path, server_log: Path, args: Options) -> None:
        self.setup = setup
        self.work = work
        self.server_log = server_log
        self.args = args
        self.rng = random.Random(args.seed)
        # How long an uninterrupted batch takes on each backend: kills are drawn within it.
        self.horizon: dict[str, float] = {}

    def _run(self, folder: Path, argv: Sequence[str], name: str = "") -> subprocess.Popen[bytes]:
        """Start nanoedit in ``folder``; its stdout and stderr go to ``stdout{name}.txt`` and
        ``stderr{name}.txt`` there."""
        out = (folder / f"stdout{name}.txt").open("ab")
        err = (folder / f"stderr{name}.txt").open("ab")
        with out, err:
            err.write(f"$ nanoedit {' '.join(argv)}\n".encode())
            err.flush()
            return subprocess.Popen(
                [*self.setup.nanoedit, *argv], cwd=folder, env=self._env(folder),
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )  # fmt: skip

    def _env(self, folder: Path) -> dict[str, str]:
        return self.setup.env | {"NANOEDIT_DATA_DIR": str(folder / "data")}

    def _batch(self, folder: Path, backend: str) -> list[str]:
        jobs = str(min(8, self.args.jobs))
        return ["edit", "in", "-p", PROMPT, "-j", jobs, "-d", "out", "--backend", backend]

    def calibrate(self, backend: str) -> None:
        """Time one uninterrupted batch (its requests are not counted)."""
        folder = self.work / f"calibrate-{backend}"
        write_inputs(folder / "in", self.args.jobs)
        started = time.monotonic()
        process = self._run(folder, self._batch(folder, backend))
        code = process.wait(RUN_TIMEOUT)
        self.horizon[backend] = time.monotonic() - started
        if code != 0:
            tail = (folder / "stderr.txt").read_text(errors="replace").splitlines()[-3:]
            raise BenchmarkError(f"{backend}: the batch failed (exit {code}): {' / '.join(tail)}")
        log(f"{backend}: an uninterrupted batch takes {self.horizon[backend]:.1f} s")

    def round(self, mode: str, backend: str, number: int) -> Tally:
        """One round: the batch stopped as ``mode`` says, then resume until done."""
        if mode == "twice":
            return self.twice(backend, number)
        folder = self.work / f"{mode}-{backend}-{number}"
        write_inputs(folder / "in", self.args.jobs)
        horizon = self.horizon[backend]
        at = self.rng.uniform(0.1, horizon)
        tally = Tally(rounds=1, expected=self.args.jobs)
        process = self._run(folder, self._batch(folder, backend))
        code = self._stop(process, mode, at, folder)
        said = f"{mode} {backend} round {number}: batch stopped at {at:.2f} s (exit {code})"
        if self._left(folder) is None:
            # Stopped before it journaled its jobs (still starting): nothing was sent, and
            # there is nothing to resume; the user runs the command again.
            code = self._run(folder, self._batch(folder, backend)).wait(RUN_TIMEOUT)
            said += f"; nothing journaled, the batch run again (exit {code})"
        # Some rounds kill the first resume too, at a moment drawn the same way.
        kill_resume = mode == "kill" and number % 2 == 1
        last = ""
        for attempt in range(MAX_RESUMES):
            resume = self._run(folder, ["resume"])
            if kill_resume and attempt == 0:
                code = self._stop(resume, "kill", self.rng.uniform(0.1, horizon / 2), folder)
                said += f"; first resume killed (exit {code})"
                continue
            try:
                code = resume.wait(RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                resume.kill()
                resume.wait()
                code = -1
            tally.resumes += 1
            last = _last_command_stderr(folder)
            left = self._left(folder)
            if left is not None and left == 0:
                break
        else:
            tally.stuck = 1
            tally.notes.append(f"{folder.name}: resume did not finish in {MAX_RESUMES} runs")
        self._count(folder, tally, last)
        log(f"{said}; {tally.resumes} resumes; on disk {tally.on_disk}/{tally.expected}")
        return tally

    def twice(self, backend: str, number: int) -> Tally:
        """One round of two runs at once: the same batch with --skip-existing, started
        together in one folder with one journal, neither stopped. Each job must be paid for
        once, by one of them, and both must list every image."""
        folder = self.work / f"twice-{backend}-{number}"
        write_inputs(folder / "in", self.args.jobs)
        tally = Tally(rounds=1, expected=self.args.jobs)
        argv = [*self._batch(folder, backend), "--skip-existing"]
        runs = [self._run(folder, argv, name=f"-{n}") for n in (1, 2)]
        codes = []
        for run in runs:
            try:
                codes.append(run.wait(RUN_TIMEOUT))
            except subprocess.TimeoutExpired:
                run.kill()
                codes.append(run.wait())
                tally.stuck = 1
        for n, code in enumerate(codes, start=1):
            # A run without its journal makes no claims, and pays for every job again: said in
            # the report, as the run said it (once, two runs starting together did so).
            # (The round's folder left out: the report names no path of this machine.)
            warned = (folder / f"stderr-{n}.txt").read_text(errors="replace").splitlines()
            for line in warned:
                if line.startswith("warning: the job journal"):
                    said = line.replace(f"{folder}{os.sep}", "").replace(str(folder), ".")
                    tally.notes.append(f"{folder.name}: run {n}: {said}")
            listed = (folder / f"stdout-{n}.txt").read_text(errors="replace").splitlines()
            if code != 0 or len(set(listed)) != self.args.jobs:
                tally.incomplete += 1
                tally.notes.append(
                    f"{folder.name}: run {n} exited {code} listing {len(set(listed))} of "
                    f"{self.args.jobs} images"
                )
        self._count(folder, tally, "")
        said = f"exits {codes}; on disk {tally.on_disk}/{tally.expected}"
        log(f"twice {backend} round {number}: {said}")
        return tally

    def _stop(self, process: subprocess.Popen[bytes], mode: str, at: float, folder: Path) -> int:
        """Stop ``process`` at ``at`` seconds after its start as ``mode`` says; its exit code."""
        try:
            return process.wait(at)  # it may finish before the moment comes
        except subprocess.TimeoutExpired:
            pass
        number = {
            "kill": signal.SIGKILL, "term": signal.SIGTERM, "int": signal.SIGINT,
            "abort": signal.SIGINT,
        }[mode]  # fmt: skip
        process.send_signal(number)
        if mode == "abort":
            # The second Ctrl-C once the first was taken (the run says it is stopping).
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and process.poll() is None:
                if "stopping; no new job is sent" in _last_command_stderr(folder):
                    process.send_signal(signal.SIGINT)
                    break
                time.sleep(0.01)
        try:
            return process.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def _left(self, folder: Path) -> int | None:
        """Jobs resume could still take up without --retry-unsafe (None: no journal)."""
        database = folder / "data" / "journal.sqlite3"
        if not database.exists():
            return None
        import sqlite3

        with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
            if db.execute("SELECT name FROM sqlite_master WHERE name = 'jobs'").fetchone() is None:
                return None
            if db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0:
                return None
            rows = db.execute(
                "SELECT state, tasks, results FROM jobs WHERE state IN "
                "('planned', 'submitted', 'answered')"
            ).fetchall()
        charged = [row for row in rows if row[0] == "submitted" and row[1:] == ("[]", "[]")]
        return len(rows) - len(charged)

    def _count(self, folder: Path, tally: Tally, last_resume: str) -> None:
        """Count what is on disk and what the journal says may have been charged."""
        from PIL import Image

        out = folder / "out"
        images = sorted(out.glob("*-edit*")) if out.is_dir() else []
        images = [path for path in images if not path.name.startswith(".")]
        inputs: dict[str, int] = {}
        for path in images:
            stem = path.name.split("-edit", 1)[0]
            inputs[stem] = inputs.get(stem, 0) + 1
            try:
                with Image.open(path) as image:
                    image.verify()
            except Exception as exc:  # Pillow raises many kinds for a broken file
                tally.corrupt += 1
                tally.notes.append(f"{folder.name}: {path.name} is corrupt ({exc})")
        tally.on_disk += len(images)
        tally.duplicates += len(images) - len(inputs)
        parts = [path for path in folder.rglob("*.part")]
        spool = folder / "data" / "spool"
        spooled = list(spool.iterdir()) if spool.is_dir() else []
        tally.leftovers += len(parts) + len(spooled)
        for path in [*parts, *spooled]:
            tally.notes.append(f"{folder.name}: left over: {path.relative_to(folder)}")
        charged = self._charged_ids(folder)
        for ident in charged:
            if f"job {ident} (" in last_resume and CHARGED in last_resume:
                tally.charged_listed += 1
            else:
                tally.charged_unlisted += 1
                tally.notes.append(f"{folder.name}: job {ident} may have been charged, unlisted")
        missing = set(f"{n:03d}" for n in range(self.args.jobs)) - set(inputs)
        if len(missing) > len(charged):
            tally.notes.append(
                f"{folder.name}: {len(missing)} inputs without an image, "
                f"{len(charged)} listed as may have been charged"
            )

    def _charged_ids(self, folder: Path) -> list[int]:
        import sqlite3

        database = folder / "data" / "journal.sqlite3"
        if not database.exists():
            return []
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE state = 'submitted' AND tasks = '[]' AND results = '[]'"
            ).fetchall()
        return [int(row[0]) for row in rows]

    def paid_since(self, offset: int, backend: str) -> int:
        """Paid requests of ``backend`` the server answered with 2xx after ``offset``."""
        with self.server_log.open("rb") as server_log:
            server_log.seek(offset)
            text = server_log.read().decode(errors="replace")
        # "POST /v1/images/edits 200", also "200 (the client went away)": paid all the same.
        found = (PAID.match(line) for line in text.splitlines())
        return sum(1 for match in found if match and match.string[match.end() :][:1] == "2")


def _last_command_stderr(folder: Path) -> str:
    """What the latest command of a round said on stderr."""
    text = (folder / "stderr.txt").read_text(errors="replace")
    return text.rsplit("\n$ nanoedit ", 1)[-1]


# The journal's cost --------------------------------------------------------------------------


def journal_cost(
    setup: Setup, work: Path, jobs: int, pairs: int
) -> tuple[float, float, float, float]:
    """Seconds of a ``jobs``-job batch against a zero-latency sandbox: the first journaled run
    (it creates the database), then the medians of runs with the journal (which holds the
    earlier runs' jobs, as a user's does) and with ``--no-history``, run in alternation, and
    the median of the per-pair ratios."""
    data = work / "journal-data"

    def batch(name: str, journaled: bool) -> float:
        folder = work / f"journal-{name}"
        write_inputs(folder / "in", jobs)
        argv = [*setup.nanoedit, "edit", "in", "-p", PROMPT, "-j", "8", "-d", "out"]
        argv += ["--backend", "openai", *([] if journaled else ["--no-history"])]
        env = setup.env | {"NANOEDIT_DATA_DIR": str(data if journaled else folder / "data")}
        started = time.perf_counter()
        done = subprocess.run(
            argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=RUN_TIMEOUT,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        saved = len(list((folder / "out").glob("*-edit.*")))
        if done.returncode != 0 or saved != jobs:
            said = done.stderr.decode(errors="replace").strip().splitlines() or ["nothing"]
            raise BenchmarkError(
                f"the journal-cost batch failed (exit {done.returncode}, {saved} saved): "
                + said[-1]
            )
        return seconds

    first = batch("first", True)
    with_journal: list[float] = []
    without: list[float] = []
    ratios: list[float] = []
    for pair in range(pairs):
        times = {}
        order = (True, False) if pair % 2 == 0 else (False, True)
        for journaled in order:
            times[journaled] = batch(f"{pair}-{'on' if journaled else 'off'}", journaled)
        with_journal.append(times[True])
        without.append(times[False])
        ratios.append(times[True] / times[False])
        log(f"journal cost pair {pair + 1}: {times[True]:.2f} s with, {times[False]:.2f} s without")
    return (
        first,
        statistics.median(with_journal),
        statistics.median(without),
        statistics.median(ratios),
    )


# The report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What the command line asked for."""

    quick: bool
    jobs: int
    rounds: int
    signal_rounds: int
    backends: tuple[str, ...]
    modes: tuple[str, ...]
    seed: int
    journal_jobs: int
    journal_pairs: int


def goal(backend: str, mode: str, tally: Tally) -> tuple[bool, str]:
    """Whether the rounds met the goal, and the goal in words."""
    clean = tally.duplicates == 0 and tally.leftovers == 0 and tally.corrupt == 0
    clean = clean and tally.stuck == 0 and tally.extra_paid == 0 and tally.incomplete == 0
    if mode in ("kill", "abort"):
        # Only requests in flight may be lost, and resume lists each of them. An asynchronous
        # API's task id comes in the answer to its submission: a kill inside that round trip
        # leaves a task nobody can name, so the same holds there (no provider here takes an
        # idempotency key or lists its tasks).
        listed = tally.charged_unlisted == 0 and tally.lost == tally.charged_listed
        return clean and listed and tally.never_saved <= tally.charged_listed, "losses listed"
    return clean and tally.lost == 0 and tally.never_saved == 0, "0 lost, 0 re-paid"


def table(mode: str, results: dict[str, Tally]) -> list[str]:
    """One markdown table: a row per backend."""
    lines = [
        f"## {MODE_TITLES[mode]}",
        "",
        "| backend | kind | rounds | images expected / on disk | duplicates | leftovers | "
        "corrupt | paid beyond one per job | paid results never saved | "
        f'listed "{CHARGED}" | goal |',
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for backend, tally in results.items():
        kind = "sync" if backend in SYNCHRONOUS else "async"
        met, words = goal(backend, mode, tally)
        listed = f"{tally.charged_listed}"
        if tally.charged_unlisted:
            listed += f" (+{tally.charged_unlisted} unlisted)"
        lines.append(
            f"| {backend} | {kind} | {tally.rounds} | {tally.expected} / {tally.on_disk} | "
            f"{tally.duplicates} | {tally.leftovers} | {tally.corrupt} | {tally.extra_paid} | "
            f"{tally.never_saved} | {listed} | {'PASS' if met else 'FAIL'}: {words} |"
        )
    notes = [note for tally in results.values() for note in tally.notes]
    if notes:
        lines += ["", *[f"- {note}" for note in notes[:40]]]
        if len(notes) > 40:
            lines.append(f"- ... and {len(notes) - 40} more")
    return [*lines, ""]


def report(
    options: Options,
    tables: dict[str, dict[str, Tally]],
    cost: tuple[float, float, float, float] | None,
    argv: Sequence[str],
    load: tuple[float, float],
) -> str:
    """The whole report, in markdown."""
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    command = " ".join([".venv/bin/python benchmarks/crash.py", *argv])
    lines = [
        "# Kill storm: nanoedit stopped at random, then resumed",
        "",
        f"- Date: {now}; {os.cpu_count()} CPUs; Python {platform.python_version()}; "
        f"load average {load[0]:.2f} at the start, {load[1]:.2f} at the end",
        f"- Command: `{command}`; seed {options.seed}",
        f"- Each round: `nanoedit edit in/ -p '{PROMPT}' -j {min(8, options.jobs)} -d out "
        f"--backend B` over {options.jobs} distinct PNGs against `nanoedit sandbox serve "
        f"--latency {LATENCY:g}`, stopped at a random moment of an uninterrupted batch's "
        "duration, then `nanoedit resume` (never `--retry-unsafe`) until only jobs that "
        "may have been charged are left. In the SIGKILL rounds of odd number the first "
        "resume is SIGKILLed too.",
        "- Paid: the backend's paid requests the server answered with 2xx (its log). "
        '"Paid results never saved" = paid minus distinct images on disk. Goal: after one '
        "SIGTERM or SIGINT, 0 lost and 0 re-paid on every backend; after SIGKILL or an abort, "
        "0 re-paid, and only requests in flight lost, each listed by resume as "
        f'"{CHARGED}". On the asynchronous backends that is a submission whose answer (the '
        "task id) had not come: their APIs take no idempotency key and list no tasks.",
        "- Two runs at once: the same batch with `--skip-existing` started twice at the same "
        "moment in one folder, sharing one journal, neither stopped. Goal: 0 lost, 0 re-paid "
        "(every job paid for once, by one of the two), and both list every image.",
        "",
    ]
    for mode, results in tables.items():
        lines += table(mode, results)
    if cost is not None:
        first, with_journal, without, ratio = cost
        lines += [
            f"## Journal cost: {options.journal_jobs} jobs, -j 8, latency 0",
            "",
            "| first run (creates the journal) | with the journal | with --no-history | "
            f"ratio (median of {options.journal_pairs} pairs) |",
            "| ---: | ---: | ---: | ---: |",
            f"| {first:.2f} s | {with_journal:.2f} s | {without:.2f} s | {ratio:.2f} |",
            "",
        ]
    return "\n".join(lines)


def passed(tables: dict[str, dict[str, Tally]]) -> bool:
    """Whether every backend met its goal in every mode."""
    return all(
        goal(backend, mode, tally)[0]
        for mode, results in tables.items()
        for backend, tally in results.items()
    )


def parse_args(argv: Sequence[str]) -> tuple[Options, str, bool]:
    """The command line: the options and where the report goes."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/crash.py",
        description="Stop nanoedit batches at random, resume them, count what was lost.",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"6 jobs, 1 round, {' and '.join(QUICK)}"
    )
    parser.add_argument("--jobs", type=int, metavar="N", help="jobs per batch (default 100)")
    parser.add_argument("--rounds", type=int, metavar="N", help="SIGKILL rounds (default 10)")
    parser.add_argument(
        "--signal-rounds", type=int, metavar="N", help="SIGTERM/SIGINT/abort rounds (default 3)"
    )
    parser.add_argument("--backends", metavar="NAMES", help="comma-separated backends")
    parser.add_argument("--modes", metavar="NAMES", help=f"subset of {','.join(MODES)},journal")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--seed", type=int, help="the random generator's seed (default: drawn)")
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="where the report goes ('-': stdout; default benchmarks/CRASH.md, stdout if quick)",
    )
    args = parser.parse_args(argv)
    backends = QUICK if args.quick else BACKENDS
    if args.backends:
        backends = tuple(args.backends.split(","))
    modes = (*MODES, "journal")
    if args.modes:
        modes = tuple(args.modes.split(","))
    unknown = [name for name in backends if name not in BACKENDS]
    unknown += [name for name in modes if name not in (*MODES, "journal")]
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)}")
    options = Options(
        quick=args.quick,
        jobs=args.jobs or (6 if args.quick else 100),
        rounds=args.rounds or (1 if args.quick else 10),
        signal_rounds=args.signal_rounds or (1 if args.quick else 3),
        backends=backends,
        modes=modes,
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(10**6),
        journal_jobs=8 if args.quick else 64,
        journal_pairs=1 if args.quick else 5,
    )
    output = args.output or ("-" if args.quick else str(DEFAULT_REPORT))
    return options, output, args.keep


@contextlib.contextmanager
def work_folder(keep: bool) -> Iterator[Path]:
    """A temporary folder for the rounds and the servers' logs, removed at the end unless
    ``keep`` (to look into a round that failed)."""
    if keep:
        work = Path(tempfile.mkdtemp(prefix="nanoedit-crash-"))
        log(f"the work folder is kept: {work}")
        yield work
        return
    with tempfile.TemporaryDirectory(prefix="nanoedit-crash-") as name:
        yield Path(name)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the storm and write the report; 0 when every goal was met."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    options, output, keep = parse_args(arguments)
    signal.signal(signal.SIGTERM, _interrupt)
    script = Path(sys.executable).parent / "nanoedit"
    nanoedit = (str(script),) if script.exists() else (sys.executable, "-m", "nanoedit")
    load_start = os.getloadavg()[0]
    log(f"seed {options.seed}; {os.cpu_count()} CPUs; load average {load_start:.2f}")
    tables: dict[str, dict[str, Tally]] = {}
    cost = None
    try:
        with work_folder(keep) as work:
            base = clean_env(work / "config")
            serve = [*nanoedit, "sandbox", "serve", "--port", "{port}"]
            files = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]
            files += ["--directory", str(work), "{port}"]
            server_log = work / "server.log"
            with (
                serving([*serve, "--latency", f"{LATENCY:g}"], base, server_log) as port,
                serving(files, base, work / "files.log") as files_port,
            ):
                api, host = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{files_port}"
                setup = Setup(nanoedit, backend_env(base, api, host, work))
                storm = Storm(setup, work, server_log, options)
                for backend in options.backends:
                    storm.calibrate(backend)
                for mode in (mode for mode in options.modes if mode in MODES):
                    rounds = options.rounds if mode == "kill" else options.signal_rounds
                    results = tables.setdefault(mode, {})
                    for backend in options.backends:
                        offset = server_log.stat().st_size
                        tally = Tally()
                        for number in range(1, rounds + 1):
                            tally.add(storm.round(mode, backend, number))
                        wait_quiet(server_log)
                        tally.paid = storm.paid_since(offset, backend)
                        results[backend] = tally
            if "journal" in options.modes:
                with serving([*serve, "--latency", "0"], base, work / "zero.log") as port:
                    setup = Setup(nanoedit, backend_env(base, f"http://127.0.0.1:{port}", "", work))
                    cost = journal_cost(setup, work, options.journal_jobs, options.journal_pairs)
    except KeyboardInterrupt:
        log("interrupted: the servers and the work folder are gone, nothing was written")
        return 130
    except BenchmarkError as exc:
        log(f"error: {exc}")
        return 1
    text = report(options, tables, cost, arguments, (load_start, os.getloadavg()[0]))
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
        log(f"wrote {output}")
    return 0 if passed(tables) else 1


if __name__ == "__main__":
    sys.exit(main())
