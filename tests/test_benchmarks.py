"""benchmarks/run.py --quick runs every benchmark end to end, so the script cannot rot: each
section is there, every run succeeded, and no path of this machine is in the report."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SECTIONS = [
    r"1\. Throughput: 16 edits, --jobs 8",
    r"2\. A wide batch: 128 edits, --jobs 64",
    r"3\. Per-image client overhead, 4 images",
    r"4\. Peak memory, 8 results at 4K",
    r"5\. Start-up",
    r"6\. Base64 results: 4 MB answers",
    r"7\. Large batches: 125 to 1,000 jobs",
    r"8\. Recovered alpha: --transparent key and matte",
]


@pytest.mark.benchmark
@pytest.mark.timeout(240)
@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("curl", "sed", "xargs", "sh")),
    reason="the benchmarks' shell baselines need curl, sed, xargs and sh",
)
def test_the_quick_benchmarks_run_every_benchmark_and_write_a_clean_report(tmp_path: Path) -> None:
    report = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--output", str(report)],
        capture_output=True, text=True, timeout=220, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines()[-1].endswith(f"] wrote {report}")
    text = report.read_text()
    assert "- Mode: quick; command: `.venv/bin/python benchmarks/run.py --quick --output " in text
    for title in SECTIONS:
        assert re.search(rf"^\| {title} \| (PASS|FAIL) \| all runs ok \|$", text, re.M), title
        assert re.search(rf"^## {title}$", text, re.M), title
    assert "FAILED:" not in text  # a failed run's cell reads "FAILED: why"
    assert str(REPO) not in text and tempfile.gettempdir() not in text
