"""A good Unix citizen: short answers, closed pipes, signals, rejected keys, usage errors.

Most tests run through the command line against the sandbox on a loopback port; those about
pipes and signals run the installed ``nanoedit`` command in a child process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Served, backend_env, run_cli
from PIL import Image


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """Every JSON object a run printed, in order."""
    return [json.loads(line) for line in stdout.splitlines()]


def image_info(path: str | Path) -> tuple[str, tuple[int, int]]:
    with Image.open(path) as image:
        return str(image.format), image.size


# Fewer images than asked ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["openai", "duomi"])
def test_fewer_images_than_asked_is_a_warning_and_the_job_keeps_what_came(
    served: Served, sample: Path, backend: str
) -> None:
    served.sandbox.add_faults("fewer")
    source = "cat.png" if backend == "openai" else f"{served.base_url}/samples/cat.png"
    result = run_cli(["edit", source, "-p", "x", "-n", "3", "--json"], env=backend_env(served))
    assert result.exit_code == 0, result.stderr
    warning = f"{source}: asked for 3 images, 2 came back; the job keeps those 2"
    assert result.stderr == (
        f"warning: {warning}\n"
        f"saved cat-edit.png (1184x864 PNG) from {source}\n"
        f"saved cat-edit-2.png (1184x864 PNG) from {source}\n"
    )
    (record,) = json_lines(result.stdout)
    assert (record["ok"], record["backend"], record["warnings"]) == (True, backend, [warning])
    assert [output["path"] for output in record["outputs"]] == ["cat-edit.png", "cat-edit-2.png"]
    for name in ("cat-edit.png", "cat-edit-2.png"):
        assert image_info(name) == ("PNG", (1184, 864))
    assert not Path("cat-edit-3.png").exists()
    assert served.sandbox.pending_faults() == []
