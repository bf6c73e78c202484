"""benchmarks/agent_eval.py --quick: a scripted agent's tasks through MCP and through command
lines built from ``--usage --json``, against a served sandbox, all PASS with the exact files,
paid requests and exit codes each task must give (a refusal sends nothing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROWS = [
    "| icon 1:1 at 512 | cli | refused, names 512 | 0 | 0 | - | 2 | PASS |",
    "| estimate 4 photos | cli | dry run | 0 | 0 | $0.134 | 0 | PASS |",
    "| 4 photos under $1 | cli | fits | 4 | 4 | $0.134 | 0 | PASS |",
    "| 4 photos under $0.05 | cli | refused (exit 7) | 0 | 0 | $0.000 | 7 | PASS |",
    "| continue the last edit | cli | saved | 1 | 1 | - | 0 | PASS |",
    "| icon 1:1 at 512 | mcp | refused, names 512 | 0 | 0 | - | 2 | PASS |",
    "| 4 photos under $1 | mcp | fits | 4 | 4 | $0.134 | 0 | PASS |",
    "| continue the last edit | mcp | saved | 1 | 1 | $0.034 | 0 | PASS |",
    "| write outside the folder | mcp | refused | 0 | 0 | - | 4 | PASS |",
]


@pytest.mark.benchmark
@pytest.mark.timeout(120)
def test_the_quick_agent_evaluation_passes_every_task_on_both_faces(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "agent_eval.py"), "--quick"],
        capture_output=True, text=True, timeout=110, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.endswith(("PASS |", "FAIL |"))]
    assert rows == ROWS
