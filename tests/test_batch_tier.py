"""--tier batch on the gemini backend, against the served sandbox's Batch API: a run that
waits, --detach and resume, every batch state, per-request errors, prices and the ledger."""

from __future__ import annotations

import io
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Served, SkippingClock, every_key, one_backend_env, paid, run_cli
from PIL import Image

from nanoedit.journal.batches import Batches, BatchRecord
from nanoedit.journal.store import Journal, data_dir
from nanoedit.sandbox.app import Sandbox
from nanoedit.sandbox.batching import BatchClock
from nanoedit.sandbox.server import SandboxServer

PROMPT = "make it blue"
# The default model's 1K price at the batch tier: half its interactive $0.0336.
HALF = 0.0168


@pytest.fixture
def batch_served(clock: SkippingClock) -> Iterator[Served]:
    """A served sandbox whose batch clock follows the run's skipping clock: a run that polls
    moves the batches on by its (skipped) waits."""
    batch_clock = BatchClock(speed=1.0, monotonic=clock.monotonic)
    sandbox = Sandbox(keys=every_key(), clock=clock.monotonic, batch_clock=batch_clock)
    with SandboxServer(sandbox) as server:
        yield Served(sandbox, server.base_url)


def inputs(folder: Path, count: int) -> list[str]:
    """``count`` small images of their own colours."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for number in range(count):
        path = folder / f"in{number:04d}.png"
        Image.new("RGB", (16, 12), (number % 256, number // 256 % 256, 200)).save(path)
        names.append(str(path))
    return names


def jobs_table() -> list[tuple[int, str, float | None]]:
    """Each journaled job's id, state and cost."""
    path = data_dir(os.environ) / "journal.sqlite3"
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, state, cost FROM jobs ORDER BY id").fetchall()


def batches_journaled() -> list[BatchRecord]:
    """The journal's batches."""
    with Journal(data_dir(os.environ)) as journal:
        return Batches(journal).all()


def batch_posts(served: Served) -> list[str]:
    """The batch creations the sandbox received."""
    return [r.path for r in paid(served) if r.path.endswith(":batchGenerateContent")]


def test_a_batch_run_waits_for_its_batch_and_saves_every_image_at_half_price(
    batch_served: Served, clock: SkippingClock, isolated: Path
) -> None:
    files = inputs(isolated / "in", 3)
    env = one_backend_env(batch_served, "gemini")
    result = run_cli(
        ["edit", *files, "-p", PROMPT, "--tier", "batch", "-d", "out"], env=env, clock=clock
    )
    assert result.exit_code == 0, result.stderr
    saved = sorted(Path(line) for line in result.stdout.splitlines())
    assert [path.name for path in saved] == [f"in000{n}-edit.jpg" for n in range(3)]
    for path in saved:
        with Image.open(path) as image:
            image.load()
            assert image.format == "JPEG"
    assert len(batch_posts(batch_served)) == 1
    assert len(batch_served.sandbox.batch_bills()) == 1
    assert [bill.requests for bill in batch_served.sandbox.batch_bills()] == [3]
    # Not one generateContent request: every job went in the batch.
    assert not [r for r in paid(batch_served) if r.path.endswith(":generateContent")]
    # The ledger: each job at the batch price, half Google's interactive one.
    assert [(state, cost) for _, state, cost in jobs_table()] == [("saved", HALF)] * 3
    assert "3 jobs, 3 images, estimated $0.05 (gemini-nano-banana-2.1 at $0.017)" in result.stderr
    progress = [line.split(": ", 1)[1] for line in result.stderr.splitlines()
                if line.startswith("batches/")]  # fmt: skip
    assert progress[0] == "pending, 0/3 done (0 s)" and progress[-1].startswith(
        "succeeded, 3/3 done"
    )
    assert any(line.startswith("running, 1/3 done") for line in progress)


def test_detach_exits_once_submitted_and_resume_collects_the_batch_later(
    batch_served: Served, isolated: Path
) -> None:
    files = inputs(isolated / "in", 2)
    env = one_backend_env(batch_served, "gemini")
    args = ["edit", *files, "-p", PROMPT, "--tier", "batch", "--detach", "-d", "out"]
    detached = run_cli(args, env=env)
    assert (detached.exit_code, detached.stdout) == (0, "")
    [record] = batches_journaled()
    assert record.name is not None and record.state == "pending"
    assert f"detached: {record.name} holds 2 jobs; collect and save them with: nanoedit resume" in (
        detached.stderr
    )
    assert [state for _, state, _ in jobs_table()] == ["submitted"] * 2
    listed = run_cli(["batches", "--json"], env=env)
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == [record.name]
    batch_served.sandbox.batch_clock.advance(400)
    resumed = run_cli(["resume"], env=env)
    assert resumed.exit_code == 0, resumed.stderr
    assert sorted(Path(line).name for line in resumed.stdout.splitlines()) == [
        "in0000-edit.jpg",
        "in0001-edit.jpg",
    ]
    assert [(state, cost) for _, state, cost in jobs_table()] == [("saved", HALF)] * 2
    assert len(batch_posts(batch_served)) == 1 and len(batch_served.sandbox.batch_bills()) == 1
    [record] = batches_journaled()
    assert record.state == "collected" and record.cost == pytest.approx(2 * HALF)
    again = run_cli(["resume"], env=env)
    assert (again.exit_code, again.stderr) == (
        0,
        "nothing to resume: every job in the history has ended\n",
    )


@pytest.mark.parametrize(
    ("fault", "advance", "how"),
    [
        ("batch-failed", 100.0, "failed"),
        ("batch-expired", 49 * 3600.0, "expired"),
        ("batch-cancelled", 400.0, "was cancelled"),
    ],
)
def test_a_batch_that_ends_early_lists_its_jobs_not_done_and_resend_sends_them(
    batch_served: Served, isolated: Path, fault: str, advance: float, how: str
) -> None:
    batch_served.sandbox.add_faults(fault)
    files = inputs(isolated / "in", 4)
    env = one_backend_env(batch_served, "gemini")
    args = ["edit", *files, "-p", PROMPT, "--tier", "batch", "--detach", "-d", "out"]
    assert run_cli(args, env=env).exit_code == 0
    batch_served.sandbox.batch_clock.advance(advance)
    listed = run_cli(["resume"], env=env)
    [record] = batches_journaled()
    missing = [ident for ident, state, _ in jobs_table() if state == "submitted"]
    done = 4 - len(missing)
    assert (record.state, len(missing)) == (
        fault.removeprefix("batch-"),
        2 if fault == "batch-cancelled" else 4,
    )
    assert listed.exit_code == (7 if done else 5), listed.stderr
    assert f"{record.name} {how}" in listed.stderr
    assert "nanoedit resume --resend sends them again at the standard tier" in listed.stderr
    assert len(listed.stdout.splitlines()) == done
    resent = run_cli(["resume", "--resend"], env=env)
    assert resent.exit_code == 0, resent.stderr
    assert len(resent.stdout.splitlines()) == len(missing)
    assert [state for _, state, _ in jobs_table()] == ["saved"] * 4
    generated = [r for r in paid(batch_served) if r.path.endswith(":generateContent")]
    assert len(generated) == len(missing)
    assert len(sorted((isolated / "out").glob("*.jpg"))) == 4


def test_a_refused_request_inside_a_succeeded_batch_is_a_refusal_of_that_job_alone(
    batch_served: Served, clock: SkippingClock, isolated: Path
) -> None:
    batch_served.sandbox.add_faults("image-safety")
    files = inputs(isolated / "in", 3)
    env = one_backend_env(batch_served, "gemini")
    args = ["edit", *files, "-p", PROMPT, "--tier", "batch", "-d", "out", "--json"]
    result = run_cli(args, env=env, clock=clock)
    assert result.exit_code == 7, result.stderr  # some saved, one refused
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    refused = [line for line in lines if line.get("error")]
    assert len(refused) == 1 and refused[0]["error"]["exit_code"] == 8
    assert sorted(state for _, state, _ in jobs_table()) == ["refused", "saved", "saved"]
    one = run_cli(["generate", "-p", PROMPT, "--tier", "batch", "-o", "one.png"], env=env,
                  clock=clock)  # fmt: skip
    assert one.exit_code == 0, one.stderr
    batch_served.sandbox.add_faults("image-safety")
    alone = run_cli(["generate", "-p", PROMPT, "--tier", "batch", "-o", "two.png"], env=env,
                    clock=clock)  # fmt: skip
    assert alone.exit_code == 8, alone.stderr


def test_an_error_line_fails_its_job_and_the_others_are_saved(
    batch_served: Served, clock: SkippingClock, isolated: Path
) -> None:
    batch_served.sandbox.add_faults("batch-request-error")
    files = inputs(isolated / "in", 3)
    env = one_backend_env(batch_served, "gemini")
    args = ["edit", *files, "-p", PROMPT, "--tier", "batch", "-d", "out"]
    result = run_cli(args, env=env, clock=clock)
    assert result.exit_code == 7, result.stderr
    assert sorted(state for _, state, _ in jobs_table()) == ["failed", "saved", "saved"]
    assert len(batch_served.sandbox.batch_bills()) == 1


def test_batches_cancel_cancels_at_google_and_resume_lists_the_jobs_not_done(
    batch_served: Served, isolated: Path
) -> None:
    files = inputs(isolated / "in", 2)
    env = one_backend_env(batch_served, "gemini")
    args = ["edit", *files, "-p", PROMPT, "--tier", "batch", "--detach", "-d", "out"]
    assert run_cli(args, env=env).exit_code == 0
    [record] = batches_journaled()
    cancelled = run_cli(["batches", "--cancel", str(record.name)], env=env)
    assert (cancelled.exit_code, cancelled.stderr) == (0, f"{record.name}: cancelling\n")
    table = run_cli(["batches"], env=env)
    assert table.stdout.startswith(f"{record.name}  cancelling  gemini-nano-banana-2.1  2 jobs")
    listed = run_cli(["resume"], env=env)
    assert listed.exit_code == 5 and f"{record.name} was cancelled" in listed.stderr
    table = run_cli(["batches"], env=env)
    assert table.stdout.startswith(f"{record.name}  cancelled  gemini-nano-banana-2.1  2 jobs")
    unknown = run_cli(["batches", "--cancel", "batches/nope"], env=env)
    assert unknown.exit_code == 2
    assert "the history has no batch batches/nope; see nanoedit batches" in unknown.stderr


def test_max_cost_is_checked_against_the_batch_price(
    batch_served: Served, clock: SkippingClock, isolated: Path
) -> None:
    files = inputs(isolated / "in", 3)
    env = one_backend_env(batch_served, "gemini")
    # 3 images: $0.1008 at the standard tier, $0.0504 at the batch tier.
    base = ["edit", *files, "-p", PROMPT, "-d", "out", "--max-cost", "0.06"]
    standard = run_cli([*base, "--dry-run"], env=env)
    assert standard.exit_code == 7, standard.stderr
    batched = run_cli([*base, "--tier", "batch"], env=env, clock=clock)
    assert batched.exit_code == 0, batched.stderr


def test_tier_batch_refuses_other_backends_and_no_history(served: Served, isolated: Path) -> None:
    files = inputs(isolated / "in", 1)
    env = one_backend_env(served, "openai")
    other = run_cli(["edit", *files, "-p", PROMPT, "--tier", "batch"], env=env)
    assert other.exit_code == 2
    assert "--tier batch goes through Google's Batch API, which the gemini backend has" in (
        other.stderr
    )
    gemini = one_backend_env(served, "gemini")
    off = run_cli(["edit", *files, "-p", PROMPT, "--tier", "batch", "--no-history"], env=gemini)
    assert off.exit_code == 2 and "--tier batch keeps its batch in the history" in off.stderr
    alpha = run_cli(["edit", *files, "-p", PROMPT, "--tier", "batch", "--transparent"], env=gemini)
    assert alpha.exit_code == 2 and "--tier batch does not take --transparent yet" in alpha.stderr
    assert not paid(served)


def test_a_batch_is_read_as_google_describes_it_zero_counts_left_out() -> None:
    from nanoedit.backends.gemini_batch import parse_batch
    from nanoedit.run.batch_tier import job_of_key, key_of

    running = parse_batch(
        {
            "name": "batches/abc",
            "metadata": {
                "displayName": "nanoedit-0011",
                "state": "BATCH_STATE_RUNNING",
                "batchStats": {"requestCount": "4", "pendingRequestCount": "4"},
            },
        },
        "host",
    )
    assert (running.state, running.total, running.done, running.ended) == ("running", 4, 0, False)
    ended = parse_batch(
        {
            "name": "batches/abc",
            "metadata": {"state": "BATCH_STATE_SUCCEEDED", "output": {"responsesFile": "files/r"}},
            "done": True,
        },
        "host",
    )
    assert (ended.state, ended.responses_file, ended.ended, ended.done) == (
        "succeeded", "files/r", True, None,
    )  # fmt: skip
    assert job_of_key(key_of(12, 3)) == (12, 3) and job_of_key("someone-else") is None


def test_skip_existing_leaves_the_jobs_of_a_batch_at_google_to_it(
    batch_served: Served, isolated: Path
) -> None:
    files = inputs(isolated / "in", 2)
    env = one_backend_env(batch_served, "gemini")
    args = ["edit", *files, "-p", PROMPT, "--tier", "batch", "--detach", "-d", "out"]
    assert run_cli(args, env=env).exit_code == 0
    again = run_cli([*args, "--skip-existing"], env=env)
    assert again.exit_code == 0, again.stderr
    assert len(batch_posts(batch_served)) == 1  # not submitted (nor paid for) twice
    [record] = batches_journaled()
    assert f"job 1 is in {record.name}, at Google: nanoedit resume saves it" in again.stderr
    assert [state for _, state, _ in jobs_table()] == ["submitted"] * 2


def test_resume_dry_run_sends_nothing_and_leaves_a_batchs_jobs_to_it(
    batch_served: Served, isolated: Path
) -> None:
    files = inputs(isolated / "in", 2)
    env = one_backend_env(batch_served, "gemini")
    args = ["edit", *files, "-p", PROMPT, "--tier", "batch", "--detach", "-d", "out"]
    assert run_cli(args, env=env).exit_code == 0
    received = len(batch_served.sandbox.received)
    dry = run_cli(["resume", "--dry-run"], env=env)
    assert (dry.exit_code, dry.stdout) == (0, "")
    assert len(batch_served.sandbox.received) == received  # not even a poll
    assert [state for _, state, _ in jobs_table()] == ["submitted"] * 2


class _Terminal(io.StringIO):
    """A terminal's stdin that a person answers ``text`` on."""

    def isatty(self) -> bool:
        return True


def test_resend_asks_first_on_a_terminal_and_takes_the_flag_as_consent_elsewhere() -> None:
    from nanoedit.output.report import Reporter
    from nanoedit.run.batch_run import _consents

    said = io.StringIO()
    with Reporter(io.StringIO(), said, json_lines=False) as events:
        assert _consents(_Terminal("y\n"), events, 3, "batches/x") is True
        assert _consents(_Terminal("\n"), events, 3, "batches/x") is False
        assert _consents(io.StringIO(""), events, 3, "batches/x") is True  # not a terminal
        assert _consents(None, events, 3, "batches/x") is True
    asked = "send the 3 jobs batches/x did not do again, at the standard tier? [y/N]"
    assert said.getvalue().count(asked) == 2


def test_the_in_process_sandbox_finishes_a_batch_by_itself(
    isolated: Path, clock: SkippingClock
) -> None:
    # The sandbox a person tries --tier batch on moves its batch on with the run's clock (its
    # polls' waits, skipped here): pending 1 s, running 2 s, then every image saved.
    result = run_cli(
        ["generate", "--sandbox", "--backend", "gemini", "--tier", "batch", "-p", "a red fox",
         "-n", "2"],
        env=dict(os.environ),
        clock=clock,
    )  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, "a-red-fox.jpg\na-red-fox-2.jpg\n"), (
        result.stderr
    )
    assert "succeeded, 2/2 done" in result.stderr
    for name in ("a-red-fox.jpg", "a-red-fox-2.jpg"):
        with Image.open(name) as image:
            assert (image.format, image.size) == ("JPEG", (1024, 1024))
    # Waited on the run's clock, never on the real one: the first poll at 2 s, then 3 s.
    assert clock.waits[:2] == [2.0, 3.0]


def test_detach_is_refused_on_the_in_process_sandbox_before_anything_is_built(
    isolated: Path,
) -> None:
    result = run_cli(
        ["generate", "--sandbox", "--backend", "gemini", "--tier", "batch", "--detach", "-p",
         "a red fox"],
        env=dict(os.environ),
    )  # fmt: skip
    assert (result.exit_code, result.stderr) == (
        2,
        "error: --detach leaves the batch for a later nanoedit resume, and --sandbox's emulated "
        "server ends with this run; leave out --detach, or run `nanoedit sandbox serve` and "
        "point the gemini backend at it (gemini.base_url)\n",
    )
    assert not Path("a-red-fox.jpg").exists()


@pytest.mark.parametrize("tier", ["standard", "flex"])
def test_detach_without_the_batch_tier_is_refused_before_sending(
    served: Served, isolated: Path, tier: str
) -> None:
    # Taken silently, --detach would wait for every image it was meant to leave running.
    env = one_backend_env(served, "gemini")
    result = run_cli(["generate", "-p", PROMPT, "--tier", tier, "--detach"], env=env)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: --detach leaves a batch at Google for nanoedit resume, and --tier is {tier}, "
        "which sends each job at once; add --tier batch, or leave out --detach\n",
    )
    assert served.sandbox.received == []
