"""A sandbox job is never taken for a real one: it is marked as such in the journal and in its
images, costs nothing, is never skipped for a real run's sake, and is resumed against the
sandbox, never against a real key. The real API is stood in for by a served sandbox, whose
requests are counted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    JOURNAL_VERSION_1,
    Served,
    backend_env,
    close_stdout,
    distinct_pngs,
    image_info,
    journal_jobs,
    posts,
    run_installed,
)

from nanoedit.journal.store import data_dir
from nanoedit.output.provenance import read as read_provenance

PROMPT = "make it night"
# The size the sandbox gives an edit of a 4:3 input with no ratio or size asked for (the default
# model, Nano Banana 2, answers JPEG at the 3.x sizes).
EDIT_SIZE = (1200, 896)
FULL = Path("/dev/full")  # every write to it fails: No space left on device


@pytest.mark.parametrize("metadata", [[], ["--no-metadata"]], ids=["provenance", "no-metadata"])
def test_a_real_run_with_skip_existing_never_takes_sandbox_results_for_its_own(
    served: Served, isolated: Path, metadata: list[str]
) -> None:
    distinct_pngs(isolated / "in", 8)
    trial = ["edit", "in", "-p", PROMPT, "-d", "out", "--sandbox", *metadata]
    code, out, err = run_installed(trial, isolated, {})
    assert (code, sorted(out.splitlines())) == (0, [f"out/{n:03d}-edit.jpg" for n in range(8)])
    if not metadata:
        made = read_provenance(isolated / "out" / "000-edit.jpg")
        assert made is not None and made["sandbox"] is True
    real = ["edit", "in", "-p", PROMPT, "-d", "out", "--skip-existing", *metadata]
    code, out, err = run_installed(real, isolated, backend_env(served))
    assert code == 0, err
    assert len(posts(served)) == 8  # every job paid for once, none taken from the trial
    assert sorted(out.splitlines()) == [f"out/{n:03d}-edit-2.jpg" for n in range(8)]
    for number in range(8):
        path = isolated / "out" / f"{number:03d}-edit-2.jpg"
        assert image_info(path) == ("JPEG", EDIT_SIZE)
        if not metadata:
            made = read_provenance(path)
            assert made is not None and "sandbox" not in made
    # Run again: now the real results are there, and they are what is skipped.
    code, out, _ = run_installed(real, isolated, backend_env(served))
    assert (code, sorted(out.splitlines())) == (
        0, [f"out/{n:03d}-edit-2.jpg" for n in range(8)]
    )  # fmt: skip
    assert len(posts(served)) == 8
    assert [record.sandbox for record in journal_jobs()] == [True] * 8 + [False] * 8


def test_sandbox_jobs_cost_nothing_and_are_left_out_of_the_ledger(isolated: Path) -> None:
    distinct_pngs(isolated / "in", 8)
    code, _, err = run_installed(
        ["edit", "in", "-p", PROMPT, "-d", "out", "--sandbox"], isolated, {}
    )
    assert code == 0, err
    assert run_installed(["history", "--cost"], isolated, {}) == (
        0, "", "no paid jobs in the history yet; sandbox jobs cost nothing\n"
    )  # fmt: skip
    code, out, _ = run_installed(["history", "show", "1"], isolated, {})
    assert code == 0
    assert "backend: openai (the sandbox: nothing was charged)\n" in out
    assert "cost: $0.00\n" in out


def test_a_sandbox_trial_held_back_by_max_images_is_never_sent_by_resume(
    served: Served, isolated: Path
) -> None:
    # As found: a sandbox trial with --max-images 2, then a real key, then nanoedit resume.
    distinct_pngs(isolated / "in", 8)
    trial = ["edit", "in", "-p", PROMPT, "-d", "out", "--sandbox", "--max-images", "2", "--json"]
    code, out, _ = run_installed([*trial, "-j", "1"], isolated, {})
    assert code == 7
    jobs = sorted((line["job"], line["state"]) for line in map(json.loads, out.splitlines()))
    assert jobs == [(1, "saved"), (2, "saved"), *[(n, "not sent") for n in range(3, 9)]]
    real = backend_env(served)
    assert run_installed(["resume"], isolated, real) == (
        0, "", "nothing to resume: every job in the history has ended\n"
    )  # fmt: skip
    assert [record.state for record in journal_jobs()] == ["saved"] * 2 + ["held"] * 6
    code, out, err = run_installed(["resume", "5"], isolated, real)
    assert (code, out) == (2, "")
    assert err == (
        "error: job 5 was never sent: --max-images 2 reached: 6 jobs not sent; raise the limit "
        "and run the same command with --skip-existing to send them\n"
    )
    assert len(posts(served)) == 0
    # What the message says to do sends them, in the sandbox still.
    trial[trial.index("2")] = "8"
    code, out, _ = run_installed([*trial, "--skip-existing"], isolated, real)
    assert code == 0
    assert sorted(line["state"] for line in map(json.loads, out.splitlines())) == (
        ["saved"] * 6 + ["skipped"] * 2
    )
    assert len(posts(served)) == 0
    assert len(list((isolated / "out").iterdir())) == 8


def test_sandbox_jobs_never_sent_are_resumed_in_the_sandbox_not_with_the_real_key(
    served: Served, isolated: Path
) -> None:
    distinct_pngs(isolated / "in", 3)
    argv = ["edit", "in", "-p", PROMPT, "-d", "out", "--sandbox"]
    code, _, err = run_installed(argv, isolated, {}, preexec_fn=close_stdout)
    assert (code, err.splitlines()[-1]) == (
        141, "stopped: stdout was closed; 3 jobs not sent, 0 images saved"
    )  # fmt: skip
    code, out, err = run_installed(["resume"], isolated, backend_env(served))
    assert len(posts(served)) == 0
    assert code == 0, err
    folder = isolated / "out"
    assert sorted(out.splitlines()) == [str(folder / f"{n:03d}-edit.jpg") for n in range(3)]
    for number in range(3):
        path = folder / f"{number:03d}-edit.jpg"
        assert image_info(path) == ("JPEG", EDIT_SIZE)
        made = read_provenance(path)
        assert made is not None and made["sandbox"] is True
    assert [(r.state, r.sandbox) for r in journal_jobs()] == [("saved", True)] * 3


def test_real_jobs_are_not_resumed_into_the_sandbox_that_nanoedit_sandbox_asks_for(
    served: Served, isolated: Path
) -> None:
    distinct_pngs(isolated / "in", 1)
    argv = ["edit", "in/000.png", "-p", PROMPT, "-d", "out"]
    code, _, _ = run_installed(argv, isolated, backend_env(served), preexec_fn=close_stdout)
    assert code == 141
    env = backend_env(served) | {"NANOEDIT_SANDBOX": "1"}
    code, out, err = run_installed(["resume"], isolated, env)
    assert (code, out) == (2, "")
    assert err == (
        "error: job 1 (in/000.png) is for the real openai backend, and NANOEDIT_SANDBOX asks for "
        "the sandbox, so it is left as it is; unset NANOEDIT_SANDBOX to resume it\n"
    )
    assert len(posts(served)) == 0
    assert [(r.state, r.sandbox) for r in journal_jobs()] == [("planned", False)]
    assert not (isolated / "out").exists()


def test_a_real_job_whose_backend_is_not_set_up_now_is_held_with_what_sets_it_up(
    served: Served, isolated: Path
) -> None:
    distinct_pngs(isolated / "in", 1)
    argv = ["edit", "in/000.png", "-p", PROMPT, "-d", "out"]
    assert run_installed(argv, isolated, backend_env(served), preexec_fn=close_stdout)[0] == 141
    code, out, err = run_installed(["resume"], isolated, {})
    assert (code, out) == (3, "")
    assert err == (
        "error: job 1 (in/000.png) is for the openai backend, which is not configured; run: "
        "nanoedit config set openai.base_url https://YOUR-SERVER && nanoedit config set "
        "openai.api_key YOUR-KEY, then nanoedit resume 1\n"
    )
    assert [record.state for record in journal_jobs()] == ["planned"]


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full here")
def test_resume_of_a_sandbox_job_after_a_full_disk_says_so_again_without_a_traceback(
    served: Served, isolated: Path
) -> None:
    # As found: the advice of a full disk on a --sandbox run, followed with a real key set.
    distinct_pngs(isolated / "in", 1)
    argv = ["edit", "in/000.png", "-p", PROMPT, "--sandbox", "-o", str(FULL)]
    code, _, err = run_installed(argv, isolated, {})
    assert (code, err) == (
        4,
        f"error: the result of in/000.png could not be written to {FULL} (No space left on "
        "device); nanoedit resume 1 makes it again in the sandbox\n",
    )
    # With no real backend set up (where the traceback was), then with a real key set.
    for env in ({}, backend_env(served)):
        code, out, err = run_installed(["resume", "1"], isolated, env)
        assert (code, out) == (4, "")
        assert err == (
            "taking up 1 job: 1 to send, 1 of them in the sandbox\n"
            f"error: the result of {isolated / 'in' / '000.png'} could not be written to {FULL} "
            "(No space left on device); nanoedit resume 1 makes it again in the sandbox\n"
        )
    assert len(posts(served)) == 0


# nanoedit, killed by SIGKILL the moment its journal holds the answer (a result URL of its
# in-process sandbox), before the image is saved.
KILLED_AFTER_ANSWERED = """
import os, signal, sys
from nanoedit.journal import store as journal
from nanoedit.__main__ import main

told = journal.Journal.answered

def answered(self, *args, **given):
    told(self, *args, **given)
    os.kill(os.getpid(), signal.SIGKILL)

journal.Journal.answered = answered
sys.argv[0] = "nanoedit"
main()
"""


def test_a_killed_sandbox_job_is_resumed_against_the_sandbox_and_saved(
    served: Served, isolated: Path
) -> None:
    distinct_pngs(isolated / "in", 1)
    argv = ["edit", "in/000.png", "-p", PROMPT, "-d", "out", "--sandbox"]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_ANSWERED, *argv], cwd=isolated,
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [record] = journal_jobs()
    assert record.state == "answered"
    assert record.results[0]["url"].startswith("http://nanoedit-sandbox.invalid/files/")
    code, out, err = run_installed(["resume"], isolated, backend_env(served))
    assert len(posts(served)) == 0
    assert code == 0, err
    saved = isolated / "out" / "000-edit.jpg"
    assert out == f"{saved}\n"
    assert image_info(saved) == ("JPEG", EDIT_SIZE)
    made = read_provenance(saved)
    assert made is not None and made["sandbox"] is True
    [record] = journal_jobs()
    assert (record.state, record.sandbox, record.saved_paths) == ("saved", True, [saved])


def test_resume_dry_run_says_what_it_would_send_and_where_and_sends_nothing(
    served: Served, isolated: Path
) -> None:
    distinct_pngs(isolated / "in", 2)
    real, boxed = ["edit", "in", "-p", PROMPT, "-d", "out"], ["edit", "in/000.png", "-p", PROMPT]
    assert run_installed(real, isolated, backend_env(served), preexec_fn=close_stdout)[0] == 141
    assert run_installed([*boxed, "--sandbox"], isolated, {}, preexec_fn=close_stdout)[0] == 141
    code, out, err = run_installed(["resume", "--dry-run"], isolated, backend_env(served))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"job 1 (in/000.png): send it to openai (nano-banana-2) at {served.base_url}",
        f"job 2 (in/001.png): send it to openai (nano-banana-2) at {served.base_url}",
        "job 3 (in/000.png): send it to openai (nano-banana-2) in the sandbox, which charges nothing",
    ]
    code, out, _ = run_installed(["resume", "--dry-run", "--json", "3"], isolated, {})
    assert (code, json.loads(out)) == (
        0,
        {
            "job": 3, "input": "in/000.png", "backend": "openai", "model": "nano-banana-2",
            "sandbox": True, "action": "send",
            "message": "send it to openai (nano-banana-2) in the sandbox, which charges nothing",
        },
    )  # fmt: skip
    assert len(posts(served)) == 0
    assert [record.state for record in journal_jobs()] == ["planned"] * 3
    assert not (isolated / "out").exists()


def test_a_sandbox_job_an_older_version_left_unsent_is_still_resumed_in_the_sandbox(
    served: Served, isolated: Path
) -> None:
    import sqlite3

    from nanoedit.journal.records import JobSpec, identity

    [image] = distinct_pngs(isolated / "in", 1)
    spec: JobSpec = {
        "kind": "edit", "inputs": [{"path": str(image)}], "labels": ["in/000.png"],
        "stem": "000-edit", "output": None, "names": ["000-edit"],
        "options": {"prompt": PROMPT, "ratio": "auto", "size": None, "model": None, "count": 1,
                    "response_format": "url"},
        "out_dir": str(isolated / "out"), "metadata": True, "sidecar": False, "overwrite": False,
    }  # fmt: skip
    folder = data_dir(os.environ)
    folder.mkdir()
    gone = subprocess.Popen(["true"])  # the runs' process: ended long ago
    gone.wait()
    with sqlite3.connect(folder / "journal.sqlite3") as db:
        db.executescript(JOURNAL_VERSION_1)
        for command in (["nanoedit", "edit", "in", "--sandbox"], ["nanoedit", "edit", "in"]):
            db.execute(
                "INSERT INTO runs(started, pid, command, cwd) VALUES (1, ?, ?, ?)",
                (gone.pid, json.dumps(command), str(isolated)),
            )
        for run, state in ((1, "planned"), (2, "saved")):
            db.execute(
                "INSERT INTO jobs(run, created, updated, state, kind, backend, model, prompt, "
                "fingerprint, spec) VALUES (?, 1, 1, ?, 'edit', 'openai', 'nano-banana', ?, "
                "'f', ?)",
                (run, state, PROMPT, json.dumps(spec)),
            )
    migrated = journal_jobs()
    assert [(r.sandbox, r.identity) for r in migrated] == [
        (True, identity("f", spec, ["000-edit"], True)),
        (False, identity("f", spec, ["000-edit"], False)),
    ]
    code, out, err = run_installed(["resume"], isolated, backend_env(served))
    assert len(posts(served)) == 0
    assert (code, out) == (0, f"{isolated / 'out' / '000-edit.png'}\n"), err
    made = read_provenance(isolated / "out" / "000-edit.png")
    assert made is not None and made["sandbox"] is True
