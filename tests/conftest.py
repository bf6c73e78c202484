"""Shared fixtures: an isolated user directory, a sandbox on loopback, and a CLI runner."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from nanoedit.backends import backend_classes
from nanoedit.cli import app
from nanoedit.sandbox import Sandbox, SandboxServer, sample_image

OPENAI_KEY = "sk-test-openai-key-0001"
DUOMI_KEY = "duomi-test-key-0002"
OPENROUTER_KEY = "sk-or-v1-test-openrouter-key-0003"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own working folder and config folder, and no NANOEDIT_* variables
    (nor a provider's own key variable, such as OPENROUTER_API_KEY)."""
    provider_keys = {name for backend in backend_classes() for name in backend.key_env}
    for name in list(os.environ):
        if name.startswith("NANOEDIT_") or name in ("NO_COLOR", "FORCE_COLOR", *provider_keys):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NANOEDIT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("COLUMNS", "200")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@dataclass
class Served:
    """A sandbox serving on a loopback port."""

    sandbox: Sandbox
    base_url: str


@pytest.fixture
def served() -> Iterator[Served]:
    """A fresh sandbox over real HTTP on 127.0.0.1, with the test keys."""
    sandbox = Sandbox(keys=frozenset({OPENAI_KEY, DUOMI_KEY, OPENROUTER_KEY}))
    with SandboxServer(sandbox) as server:
        yield Served(sandbox, server.base_url)


@pytest.fixture
def sample(isolated: Path) -> Path:
    """cat.png from the sandbox's samples, written to the working folder."""
    path = isolated / "cat.png"
    path.write_bytes(sample_image("cat.png")[0])
    return path


def backend_env(
    served: Served, *, openai: bool = True, duomi: bool = True, openrouter: bool = False
) -> dict[str, str]:
    """Environment that points nanoedit at the served sandbox (OpenRouter only when asked,
    so tests written before it keep their automatic choices)."""
    # Short waits: the retry policy itself is what the fault tests check, not its patience.
    env = {"NANOEDIT_DUOMI_POLL_INTERVAL": "0.01", "NANOEDIT_BACKOFF": "0.01"}
    if openai:
        env |= {"NANOEDIT_OPENAI_BASE_URL": served.base_url, "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY}
    if duomi:
        env |= {"NANOEDIT_DUOMI_BASE_URL": served.base_url, "NANOEDIT_DUOMI_API_KEY": DUOMI_KEY}
    if openrouter:
        env |= {
            "NANOEDIT_OPENROUTER_BASE_URL": f"{served.base_url}/api",
            "NANOEDIT_OPENROUTER_API_KEY": OPENROUTER_KEY,
        }
    return env


def run_cli(args: list[str], env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    """Run nanoedit in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, args, env=env, input=stdin, catch_exceptions=False)
