"""The contract every backend keeps, run against each registered backend through the command
line and the served sandbox: a rejected key, a refusal, a timeout then ``nanoedit resume``, an
interrupt, ``--dry-run`` and ``config check``.

The backends come from the registry and never from a list here: a backend added to it is held
to the contract with no line in this file. Where backends differ by design, the test reads
what the backend declares (``asynchronous``, ``takes``), never its name.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    LogWatch,
    Served,
    SkippingClock,
    api_key_for,
    every_key,
    host,
    interrupted_run,
    journal_jobs,
    one_backend_env,
    paid,
    run_cli,
)

from nanoedit.backends.base import BackendBase, backend_class
from nanoedit.backends.registry import backend_names
from nanoedit.errors import ExitCode
from nanoedit.sandbox import FAULT_KINDS, Sandbox, SandboxServer, sample_image
from nanoedit.sandbox.app import APIS
from nanoedit.settings.keys import backend_keys

NAMES = backend_names()
ASYNCHRONOUS = [name for name in NAMES if backend_class(name).asynchronous]
SYNCHRONOUS = [name for name in NAMES if not backend_class(name).asynchronous]
WRONG_KEY = "wrong-key-1234567"
CAT = sample_image("cat.png")[0]


def sandbox_api(backend: type[BackendBase]) -> str:
    """The name of the sandbox API that emulates ``backend``'s provider: the API of its name,
    or of the backend it derives from (a backend that speaks another's protocol)."""
    apis = {api.name for api in APIS}
    for cls in backend.__mro__:
        name = getattr(cls, "name", None)
        if name in apis:
            return str(name)
    raise AssertionError(f"no sandbox API emulates the {backend.name} backend: add one")


def refusal_fault(backend: type[BackendBase]) -> str:
    """The fault by which the sandbox API of ``backend`` refuses a request's content."""
    [api] = [api for api in APIS if api.name == sandbox_api(backend)]
    assert api.refusal is not None, f"the sandbox's {api.name} API declares no refusal fault"
    assert FAULT_KINDS[api.refusal].fits(api.name)
    return api.refusal


def input_for(backend: type[BackendBase], served: Served, work: Path) -> str:
    """An input the backend takes: cat.png as a local file, or as the sandbox's URL of it for
    a backend that takes URLs only."""
    if backend.takes.files:
        (work / "cat.png").write_bytes(CAT)
        return "cat.png"
    return f"{served.base_url}/samples/cat.png"


def key_variable(backend: type[BackendBase]) -> str:
    """The variable of the backend's own key, as ``one_backend_env`` sets it."""
    return backend_keys(backend)[f"{backend.name}.api_key"].env


def files_in(folder: Path) -> list[str]:
    """The names in ``folder``, sorted."""
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.parametrize("name", NAMES)
def test_a_rejected_key_exits_3_names_the_backend_and_the_fix_and_writes_nothing(
    served: Served, isolated: Path, name: str
) -> None:
    backend = backend_class(name)
    source = input_for(backend, served, isolated)
    before = files_in(isolated)
    variable = key_variable(backend)
    env = one_backend_env(served, name) | {variable: WRONG_KEY}
    result = run_cli(["edit", source, "-p", "x"], env=env)
    assert (result.exit_code, result.stdout) == (ExitCode.CONFIG, "")
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"error: {host(served)} rejected the {name} API key")
    assert message.endswith(
        f"the key comes from {variable}, which overrides the config file: unset {variable} or "
        "fix it"
    )
    assert WRONG_KEY not in result.stderr
    assert files_in(isolated) == before
    assert len(paid(served)) <= 1


@pytest.mark.parametrize("name", NAMES)
def test_a_refusal_exits_8_saves_nothing_and_is_not_sent_again(
    served: Served, isolated: Path, name: str
) -> None:
    backend = backend_class(name)
    source = input_for(backend, served, isolated)
    before = files_in(isolated)
    served.sandbox.add_faults(refusal_fault(backend))
    result = run_cli(["edit", source, "-p", "x", "--json"], env=one_backend_env(served, name))
    assert result.exit_code == ExitCode.REFUSED, result.stderr
    error = json.loads(result.stdout)["error"]
    assert (error["kind"], error["exit_code"]) == ("refused", 8)
    assert result.stderr.strip().splitlines()[-1] == f"error: {error['message']}"
    assert served.sandbox.pending_faults() == []
    assert len(paid(served)) == 1
    assert files_in(isolated) == before


@pytest.mark.parametrize("name", ASYNCHRONOUS)
def test_a_task_past_the_timeout_is_finished_by_resume_paying_once(
    served: Served, clock: SkippingClock, isolated: Path, name: str
) -> None:
    backend = backend_class(name)
    source = input_for(backend, served, isolated)
    # Under way (past any queue) when the 1 s limit comes, done a second later: the task is
    # left running for resume, not cancelled as a queued one would be.
    served.sandbox.task_seconds = 2
    env = one_backend_env(served, name)
    timed_out = run_cli(["edit", source, "-p", "x", "--timeout", "1"], env=env, clock=clock)
    assert (timed_out.exit_code, timed_out.stdout) == (ExitCode.NETWORK, "")
    [record] = journal_jobs()
    assert (record.state, len(record.tasks), record.results) == ("submitted", 1, ())
    assert f"nanoedit resume {record.id} collects it" in timed_out.stderr
    resumed = run_cli(["resume"], env=env, clock=clock)
    assert resumed.exit_code == 0, resumed.stderr
    [line] = resumed.stdout.splitlines()
    assert Path(line) == isolated / f"cat-edit{Path(line).suffix}"
    assert len(paid(served)) == 1
    [record] = journal_jobs()
    assert record.state == "saved"


class Hold:
    """Answers held until ``release`` is set; ``arrived`` is set once one is held."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.arrived.set()
        self.release.wait(seconds)


@pytest.fixture
def held() -> Iterator[tuple[Served, Hold]]:
    """A served sandbox, with every test key, whose API answers wait until released."""
    hold = Hold()
    sandbox = Sandbox(keys=every_key(), latency=60, sleep=hold)
    try:
        with SandboxServer(sandbox) as server:
            yield Served(sandbox, server.base_url), hold
    finally:
        hold.release.set()


@pytest.mark.parametrize("name", SYNCHRONOUS)
def test_a_request_past_the_timeout_may_have_been_charged_and_resume_never_pays_it_again(
    held: tuple[Served, Hold], isolated: Path, name: str
) -> None:
    served, hold = held
    backend = backend_class(name)
    source = input_for(backend, served, isolated)
    before = files_in(isolated)
    env = one_backend_env(served, name)
    timed_out = run_cli(["edit", source, "-p", "x", "--timeout", "1"], env=env)
    hold.release.set()
    assert (timed_out.exit_code, timed_out.stdout) == (ExitCode.NETWORK, "")
    [record] = journal_jobs()
    assert (record.state, record.may_have_been_charged) == ("submitted", True)
    listed = run_cli(["resume"], env=env)
    assert (listed.exit_code, listed.stdout) == (ExitCode.NETWORK, "")
    assert f"nanoedit resume {record.id} --retry-unsafe sends it again" in listed.stderr
    assert len(paid(served)) == 1
    assert files_in(isolated) == before


@pytest.fixture
def slow_tasks() -> Iterator[tuple[Served, LogWatch, list[float]]]:
    """A served sandbox whose tasks run on a clock the test sets (``now[0]``): at 50 of 100
    seconds a task is under way, past 100 it is done. Its log tells when a task was polled
    once under way."""
    now = [0.0]
    log = PolledUnderWay(now)
    sandbox = Sandbox(keys=every_key(), clock=lambda: now[0], task_seconds=100)
    with SandboxServer(sandbox, log=log) as server:
        yield Served(sandbox, server.base_url), log, now


class PolledUnderWay(LogWatch):
    """A log that moves the tasks' clock to midway once a paid request is answered, and tells
    when the next request (the task's poll, under way) is."""

    def __init__(self, now: list[float]) -> None:
        super().__init__("")
        self.now = now
        self.paid = [re.compile(route) for api in APIS for route in api.paid_routes]

    def write(self, text: str) -> int:
        line = text.strip()
        if line and self.now[0] > 0:
            self.seen.set()
        if any(route.match(line) for route in self.paid):
            self.now[0] = 50.0
        return len(text)


@pytest.mark.parametrize("name", ASYNCHRONOUS)
def test_an_abort_leaves_the_running_task_to_resume_which_saves_it_paying_once(
    slow_tasks: tuple[Served, LogWatch, list[float]], isolated: Path, name: str
) -> None:
    served, log, now = slow_tasks
    backend = backend_class(name)
    source = input_for(backend, served, isolated)
    env = one_backend_env(served, name)
    returncode, _, stderr = interrupted_run(
        ["edit", source, "-p", "x"], isolated, env, log.seen, "the task's poll"
    )
    assert returncode == ExitCode.INTERRUPTED, stderr
    [record] = journal_jobs()
    assert (record.state, len(record.tasks), record.results) == ("submitted", 1, ())
    assert f"nanoedit resume {record.id} saves its result" in stderr
    now[0] = 200.0
    resumed = run_cli(["resume"], env=env)
    assert resumed.exit_code == 0, resumed.stderr
    [line] = resumed.stdout.splitlines()
    assert Path(line) == isolated / f"cat-edit{Path(line).suffix}"
    assert len(paid(served)) == 1


@pytest.mark.parametrize("name", SYNCHRONOUS)
def test_an_abort_leaves_the_request_in_doubt_in_the_journal_for_resume_retry_unsafe(
    held: tuple[Served, Hold], isolated: Path, name: str
) -> None:
    served, hold = held
    backend = backend_class(name)
    source = input_for(backend, served, isolated)
    env = one_backend_env(served, name)
    returncode, _, stderr = interrupted_run(
        ["edit", source, "-p", "x"], isolated, env, hold.arrived, "the paid request"
    )
    hold.release.set()
    assert returncode == ExitCode.INTERRUPTED, stderr
    [record] = journal_jobs()
    assert (record.state, record.may_have_been_charged) == ("submitted", True)
    resent = run_cli(["resume", str(record.id), "--retry-unsafe"], env=env)
    assert resent.exit_code == 0, resent.stderr
    [line] = resent.stdout.splitlines()
    assert Path(line) == isolated / f"cat-edit{Path(line).suffix}"
    # The one cut short, and the one sent again when asked.
    assert len(paid(served)) == 2


@pytest.mark.parametrize("name", NAMES)
def test_dry_run_prints_the_request_with_the_key_masked_and_sends_nothing(
    served: Served, isolated: Path, name: str
) -> None:
    backend = backend_class(name)
    source = input_for(backend, served, isolated)
    result = run_cli(["edit", source, "-p", "x", "--dry-run"], env=one_backend_env(served, name))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(rf"# {re.escape(source)} -> cat-edit \({name}, [^)]+\)", lines[0])
    posted = re.compile(rf"curl -sS -X POST '?{re.escape(served.base_url)}/")
    assert any(posted.match(line) for line in lines), result.stdout
    assert api_key_for(name) not in result.stdout
    assert served.sandbox.received == []


@pytest.mark.parametrize("name", NAMES)
def test_config_check_probes_the_backend_once_and_says_it_is_ready(
    served: Served, name: str
) -> None:
    result = run_cli(["config", "check", "--json"], env=one_backend_env(served, name))
    assert result.exit_code == 0, result.stderr
    [verdict] = [b for b in json.loads(result.stdout)["backends"] if b["backend"] == name]
    assert (verdict["status"], verdict["passed"]) == ("ready", True)
    # What it says beyond the server varies: "key accepted", its models, its account.
    assert verdict["detail"].startswith(f"{host(served)}, ")
    assert len(served.sandbox.received) == 1
    assert paid(served) == []
