"""``--tier batch`` at scale: one run of N jobs (10,000 by default) against the sandbox's
Gemini Batch API, served as a subprocess on a loopback port.

Run from the repository root with the project's interpreter::

    .venv/bin/python benchmarks/batch_tier.py              # 10,000 jobs
    .venv/bin/python benchmarks/batch_tier.py --jobs 1000

It measures, each in a process of its own (its peak resident memory read from the kernel's
accounting of that child, ``wait4``):

1. ``edit DIR --tier batch --detach``: planning, uploading the distinct inputs once each (the
   jobs' inputs are copies of 100 images, so 100 uploads), writing and uploading the JSONL
   file of requests, and the one create; its wall time is the time to submit;
2. the batch clock moved on (``POST /sandbox/batch-clock``) until the batch has succeeded;
3. ``resume``: one poll, the results file downloaded and read line by line (each image's
   base64 streamed to the spool), every job journaled and saved as a run saves it;

then the ledger (the journal's costs) against the same jobs' estimate at the standard tier
(``--dry-run``). It prints a Markdown section for ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
PROMPT = "add a hat"
DISTINCT = 100
MEMORY_TARGET_MB = 150.0


def measured(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Run the installed command; its wall seconds, peak RSS in MB and stderr's tail."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([NANOEDIT, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                 stderr=err)  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        err.seek(0)
        said = err.read()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])}... exited {child.returncode}:\n{said[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, said[-600:]


def main() -> None:
    """Run the benchmark and print its section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    jobs = parser.parse_args().jobs
    from PIL import Image

    work = Path(tempfile.mkdtemp(prefix="nanoedit-batch-bench-"))
    try:
        inputs = work / "in"
        inputs.mkdir()
        originals = []
        for number in range(DISTINCT):
            path = work / f"src{number}.png"
            Image.new("RGB", (64, 48), (number * 2, 90, 200 - number)).save(path)
            originals.append(path)
        for number in range(jobs):
            shutil.copyfile(originals[number % DISTINCT], inputs / f"in{number:05d}.png")
        server = subprocess.Popen(
            [NANOEDIT, "sandbox", "serve", "--port", "0"], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, env=_clean(os.environ),
        )  # fmt: skip
        try:
            assert server.stdout is not None
            base = server.stdout.readline().strip()
            env = _clean(os.environ) | {
                "NANOEDIT_CONFIG_DIR": str(work / "config"),
                "NANOEDIT_DATA_DIR": str(work / "data"),
                "NANOEDIT_GEMINI_BASE_URL": base,
                "NANOEDIT_GEMINI_API_KEY": "benchmark-key",
                "NANOEDIT_BACKEND": "gemini",
            }
            args = ["edit", "in", "-p", PROMPT, "-d", "out", "--tier", "batch"]
            submit = measured([*args, "--detach"], env, work)
            _advance(base, 400.0)
            resume = measured(["resume", "-q"], env, work)
            saved = len(list((work / "out").glob("*.jpg")))
            estimate = subprocess.run(
                [NANOEDIT, *args[:6], "--dry-run"], cwd=work, env=env, capture_output=True,
                text=True, check=True,
            ).stderr  # fmt: skip
            with sqlite3.connect(work / "data" / "journal.sqlite3") as db:
                (ledger,) = db.execute("SELECT sum(cost) FROM jobs").fetchone()
                (batches,) = db.execute("SELECT count(*) FROM batches").fetchone()
        finally:
            server.terminate()
            server.wait(30)
        _report(jobs, submit, resume, saved, ledger, batches, estimate)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _clean(environ: os._Environ[str] | dict[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in environ.items()
        if not name.startswith("NANOEDIT_") and name.lower() not in ("http_proxy", "https_proxy")
    }


def _advance(base: str, seconds: float) -> None:
    request = urllib.request.Request(
        f"{base}/sandbox/batch-clock", data=json.dumps({"advance": seconds}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=3600) as answer:
        answer.read()


def _report(
    jobs: int,
    submit: tuple[float, float, str],
    resume: tuple[float, float, str],
    saved: int,
    ledger: float,
    batches: int,
    estimate: str,
) -> None:
    interactive = next((line for line in estimate.splitlines() if "estimated" in line), "")
    peak = max(submit[1], resume[1])
    verdict = "PASS" if peak < MEMORY_TARGET_MB and saved == jobs else "FAIL"
    print(f"## --tier batch: {jobs:,} jobs against the sandbox's Batch API\n")
    print(f"Inputs: {jobs:,} PNGs 64x48, copies of {DISTINCT} distinct images (uploaded once "
          "each); default model, 1K JPEG results.\n")  # fmt: skip
    print("| step | wall s | peak RSS MB |")
    print("| --- | ---: | ---: |")
    print(f"| edit --tier batch --detach (plan, upload, JSONL, create) | {submit[0]:.1f} | "
          f"{submit[1]:.0f} |")  # fmt: skip
    print(f"| resume (poll, download, stream, journal, save {saved:,}) | {resume[0]:.1f} | "
          f"{resume[1]:.0f} |")  # fmt: skip
    print(f"\nBatches journaled: {batches}. Images saved: {saved:,} of {jobs:,}.")
    print(f"Ledger (journal): ${ledger:.2f} at the batch tier; the standard tier's estimate of "
          f"the same run: {interactive.strip()}.")  # fmt: skip
    print(f"\n**Peak memory {peak:.0f} MB (target < {MEMORY_TARGET_MB:.0f} MB): {verdict}**")


if __name__ == "__main__":
    main()
