"""Keys never shown, never sent where they do not belong; config file and plain-http warnings."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Served, run_cli

from nanoedit.sandbox import Sandbox, SandboxServer, sample_image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
# Long enough that a mask shows its last four characters; every part is searched for.
CANARY_OPENAI = "sk-CANARY-openai-7f3a9c2e5d1b"
CANARY_DUOMI = "CANARY-duomi-4e8b1a6f0c9d"
CANARIES = (CANARY_OPENAI, CANARY_DUOMI)


@pytest.fixture
def canary() -> Iterator[tuple[Served, io.StringIO]]:
    """A served sandbox that accepts the canary keys and keeps its request log."""
    log = io.StringIO()
    sandbox = Sandbox(keys=frozenset(CANARIES))
    with SandboxServer(sandbox, log=log) as server:
        yield Served(sandbox, server.base_url), log


def canary_env(served: Served) -> dict[str, str]:
    return {
        "NANOEDIT_OPENAI_BASE_URL": served.base_url,
        "NANOEDIT_OPENAI_API_KEY": CANARY_OPENAI,
        "NANOEDIT_DUOMI_BASE_URL": served.base_url,
        "NANOEDIT_DUOMI_API_KEY": CANARY_DUOMI,
        "NANOEDIT_DUOMI_POLL_INTERVAL": "0.01",
        "NANOEDIT_BACKOFF": "0.01",
    }


def leaks(text: str) -> list[str]:
    """Every canary, or a telling piece of one, found in ``text``."""
    pieces = [piece for key in CANARIES for piece in (key, key[:12], key[4:-4])]
    return [piece for piece in pieces if piece in text]


def test_no_key_in_any_output_of_the_whole_cli(canary: tuple[Served, io.StringIO]) -> None:
    served, log = canary
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    url = f"{served.base_url}/samples/dog.jpg"
    env = canary_env(served)
    runs: list[tuple[list[str], dict[str, str], str]] = [
        (["edit", "cat.png", "-p", "x"], env, ""),
        (["edit", "cat.png", "-p", "x", "--json", "-n", "2", "--sidecar"], env, ""),
        (["edit", url, "-p", "x", "--json"], env, ""),
        (["generate", "-p", "a fox", "--json", "--response-format", "b64_json"], env, ""),
        (["edit", "cat.png", url, "-p", "x", "--dry-run"], env, ""),
        (["generate", "-p", "a fox", "--dry-run", "--backend", "duomi"], env, ""),
        (["config", "list"], env, ""),
        (["config", "get", "openai.api_key"], env, ""),
        (["config", "set", "duomi.api_key", "-"], env, CANARY_DUOMI + "\n"),
        (["config", "get", "duomi.api_key"], {}, ""),
        (["config", "check"], env, ""),
        (["config", "check", "--json"], env, ""),
        # The key rejected, by both backends.
        (["edit", "cat.png", "-p", "x", "--json"],
         env | {"NANOEDIT_OPENAI_API_KEY": CANARY_OPENAI + "x"}, ""),
        (["edit", url, "-p", "x"], env | {"NANOEDIT_DUOMI_API_KEY": CANARY_DUOMI + "x"}, ""),
        (["config", "check"], env | {"NANOEDIT_OPENAI_API_KEY": CANARY_OPENAI + "x"}, ""),
        # Failures of every kind: server errors, unreachable server, a bad setting.
        (["edit", "cat.png", "-p", "x", "--retries", "0"], env, "500"),
        (["edit", "cat.png", "-p", "x", "--json"],
         env | {"NANOEDIT_OPENAI_BASE_URL": "http://127.0.0.1:9"}, ""),
        (["edit", "cat.png", "-p", "x"], env | {"NANOEDIT_TIMEOUT": "soon"}, ""),
        (["edit", "cat.png", "-p", "x", "--backend", "duomi"], env, ""),
    ]  # fmt: skip
    shown = []
    for args, run_env, stdin in runs:
        if stdin.isdigit():
            served.sandbox.add_faults(stdin)
            stdin = ""
        result = run_cli(args, env=run_env, stdin=stdin or None)
        shown.append(result.stdout + result.stderr)
        assert not leaks(result.stdout + result.stderr), (args, result.stdout, result.stderr)
    # Files nanoedit wrote: results, sidecars; and the sandbox's own log.
    for path in Path(".").rglob("*"):
        if path.is_file() and path.suffix == ".json":
            assert not leaks(path.read_text()), path
        elif path.is_file() and path.name != "cat.png":
            assert not leaks(path.read_bytes().decode("latin-1")), path
    assert not leaks(log.getvalue())
    assert "POST /v1/images/edits 200" in log.getvalue()
    # The runs did use the keys: the server saw both, each only in Authorization.
    auth = {r.headers.get("authorization") for r in served.sandbox.received}
    assert {f"Bearer {CANARY_OPENAI}", CANARY_DUOMI} <= auth
    assert len(shown) == len(runs)


def test_no_key_in_a_traceback_or_the_installed_command(
    canary: tuple[Served, io.StringIO],
) -> None:
    served, _ = canary
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    env = os.environ | canary_env(served)
    for args in (["edit", "cat.png", "-p", "x", "-j", "2"], ["edit", "nope.png", "-p", "x"]):
        result = subprocess.run(
            [NANOEDIT, *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert "Traceback" not in result.stderr
        assert not leaks(result.stdout + result.stderr)


def test_downloads_carry_no_key_and_api_calls_follow_no_redirect(
    canary: tuple[Served, io.StringIO],
) -> None:
    served, _ = canary
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    served.sandbox.add_faults("redirect")
    result = run_cli(["edit", "cat.png", "-p", "x"], env=canary_env(served))
    assert result.exit_code == 0, result.stderr
    downloads = [r for r in served.sandbox.received if r.path.startswith("/files/")]
    assert len(downloads) == 2  # the redirect and the file it points to
    assert all("authorization" not in r.headers for r in downloads)
    api = [r for r in served.sandbox.received if not r.path.startswith("/files/")]
    assert [r.headers.get("authorization") for r in api] == [f"Bearer {CANARY_OPENAI}"]


def test_a_config_file_others_can_read_draws_a_warning(tmp_path: Path) -> None:
    assert run_cli(["config", "set", "openai.model", "nano-banana-pro"]).exit_code == 0
    path = Path(run_cli(["config", "path"]).stdout.strip())
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    quiet = run_cli(["edit", "cat.png", "-p", "x", "--sandbox"])
    assert "warning" not in quiet.stderr
    path.chmod(0o644)
    loud = run_cli(["edit", "cat.png", "-p", "x", "--sandbox"])
    assert loud.exit_code == 0
    assert loud.stderr.splitlines()[0].startswith(f"warning: the config file {path} ")
    assert f"chmod 600 {path}" in loud.stderr


def test_a_key_over_plain_http_to_another_host_draws_a_warning(
    canary: tuple[Served, io.StringIO],
) -> None:
    served, _ = canary
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    local = run_cli(["edit", "cat.png", "-p", "x"], env=canary_env(served))
    assert "plain" not in local.stderr
    env = canary_env(served) | {"NANOEDIT_OPENAI_BASE_URL": "http://api.example.invalid.test"}
    result = run_cli(["edit", "cat.png", "-p", "x", "--dry-run"], env=env)
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert "http" in warning and "api.example.invalid.test" in warning
    assert json.dumps(CANARY_OPENAI) not in result.stdout


PASSWORD = "hunter2-CANARY-5b7e"


def test_a_password_in_a_base_url_is_never_shown_and_never_replaces_the_key(
    canary: tuple[Served, io.StringIO],
) -> None:
    served, log = canary
    Path("cat.png").write_bytes(sample_image("cat.png")[0])
    url = f"{served.base_url}/samples/dog.jpg"
    with_password = served.base_url.replace("http://", f"http://bob:{PASSWORD}@")
    masked = served.base_url.replace("http://", "http://bob:****@")
    env = canary_env(served) | {
        "NANOEDIT_OPENAI_BASE_URL": with_password,
        "NANOEDIT_DUOMI_BASE_URL": with_password,
    }
    outputs = []

    # The configured keys authenticate, on both backends, and nothing else goes with them.
    local = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    assert (local.exit_code, local.stdout) == (0, "cat-edit.jpg\n"), local.stderr
    remote = run_cli(["edit", url, "-p", "x", "--json"], env=env)
    assert remote.exit_code == 0, remote.stderr
    api = [r for r in served.sandbox.received if r.path.startswith(("/v1/", "/api/"))]
    assert {r.headers.get("authorization") for r in api} == {
        f"Bearer {CANARY_OPENAI}",
        CANARY_DUOMI,
    }
    assert [r.method for r in api][:2] == ["POST", "POST"]
    for name in ("openai", "duomi"):
        assert (
            f"warning: {name}.base_url holds a user name and password ({masked}), which "
            f"nanoedit does not send: the API key is what signs in; remove them from "
            f"{name}.base_url"
        ) in local.stderr.splitlines() + remote.stderr.splitlines()
    outputs += [local.stdout + local.stderr, remote.stdout + remote.stderr]

    # Shown masked by config set, get and list.
    setting = run_cli(["config", "set", "openai.base_url", with_password])
    path = run_cli(["config", "path"]).stdout.strip()
    assert setting.stderr == f"set openai.base_url = {masked} in {path}\n"
    assert run_cli(["config", "get", "openai.base_url"]).stdout == f"{masked}\n"
    listing = run_cli(["config", "list"], env={"NANOEDIT_DUOMI_BASE_URL": with_password})
    assert f"openai.base_url = {masked}  (file)" in listing.stdout.splitlines()
    assert f"duomi.base_url = {masked}  (NANOEDIT_DUOMI_BASE_URL)" in listing.stdout.splitlines()
    outputs += [setting.stderr, listing.stdout + listing.stderr]

    # And everywhere else the server's address appears: dry runs, checks, failures.
    served.sandbox.add_faults("500")
    for args, run_env in [
        (["edit", "cat.png", url, "-p", "x", "--dry-run"], env),
        (["config", "check"], env),
        (["config", "check", "--json"], env),
        (["edit", "cat.png", "-p", "x", "--retries", "0"], env),
        (["edit", "cat.png", "-p", "x", "--json"],
         env | {"NANOEDIT_OPENAI_API_KEY": CANARY_OPENAI + "x"}),
        (["edit", "cat.png", "-p", "x"],
         env | {"NANOEDIT_OPENAI_BASE_URL": f"http://bob:{PASSWORD}@127.0.0.1:9"}),
        (["edit", "cat.png", "-p", "x"],
         env | {"NANOEDIT_OPENAI_BASE_URL": f"ftp://bob:{PASSWORD}@127.0.0.1:9"}),
        (["config", "set", "duomi.base_url", f"bob:{PASSWORD}@gw.example.com"], env),
    ]:  # fmt: skip
        result = run_cli(args, env=run_env)
        outputs.append(result.stdout + result.stderr)
    for text in outputs:
        assert PASSWORD not in text, text
    assert "127.0.0.1" in outputs[-3] and "bob:****@" in outputs[-2]
    for saved in Path(".").rglob("*-edit.*"):
        assert PASSWORD.encode() not in saved.read_bytes(), saved
    assert PASSWORD not in log.getvalue()
