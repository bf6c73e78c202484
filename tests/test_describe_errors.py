"""The --json error envelope: a command given --json that fails as a whole prints one JSON
object (exit code, kind, message, hint, the provider's own code) on stdout; a job's failure is
its result line, whose ``error`` is the same object. Real runs against the sandbox."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import Served, error_object, host, one_backend_env, run_cli, usage_envelope

ENVELOPE_KEYS = ["schema", "ok", "kind", "message", "exit_code", "hint", "provider_code", "error"]


def test_a_usage_error_is_the_envelope_with_exit_2(sample: Path) -> None:
    result = run_cli(["generate", "--json", "-p", "x", "--size", "3K"])
    message = "--size: invalid size '3K'; use one of: 512, 1K, 2K, 4K"
    assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")
    envelope = json.loads(result.stdout)
    assert list(envelope) == ENVELOPE_KEYS
    assert envelope == usage_envelope(message)


def test_an_input_error_is_the_envelope_with_exit_4(sample: Path) -> None:
    result = run_cli(["edit", "--json", "--from", "jobs.txt", "-p", "x", "--sandbox"])
    message = "the job file jobs.txt does not exist; check the --from path"
    assert (result.exit_code, result.stderr) == (4, f"error: {message}\n")
    error = error_object("input", message, 4)
    assert error["hint"] == "check the file or URL named; nothing was sent for it"
    assert json.loads(result.stdout) == {
        "schema": "nanoedit/error/1", "ok": False, **error, "error": error
    }  # fmt: skip


def test_a_command_without_jobs_gives_the_envelope_too(sample: Path) -> None:
    # history show's --json is its own option: the failure is the same envelope.
    result = run_cli(["history", "show", "999", "--json"])
    message = "there is no job 999 in the history: it is empty"
    assert (result.exit_code, json.loads(result.stdout)) == (2, usage_envelope(message))
    assert run_cli(["history", "show", "999"]).stdout == ""


def test_an_api_error_carries_googles_status_as_the_provider_code(
    served: Served, sample: Path
) -> None:
    served.sandbox.add_faults("invalid-argument")
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--json"], env=one_backend_env(served, "gemini")
    )
    assert (result.exit_code, len(served.sandbox.received)) == (5, 1)
    line = json.loads(result.stdout)
    message = result.stderr.strip().splitlines()[-1].removeprefix("error: ")
    assert message.startswith(f"{host(served)} answered HTTP 400: ")
    assert message.endswith("[INVALID_ARGUMENT]")
    assert (line["ok"], line["state"]) == (False, "failed")
    assert line["error"] == error_object("api", message, 5, "INVALID_ARGUMENT")


def test_a_refusal_exits_8_with_the_finish_reason_as_the_provider_code(
    served: Served, sample: Path
) -> None:
    served.sandbox.add_faults("image-safety")
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--json"], env=one_backend_env(served, "gemini")
    )
    assert (result.exit_code, len(served.sandbox.received)) == (8, 1)
    error = json.loads(result.stdout)["error"]
    assert error["provider_code"] == "IMAGE_SAFETY"
    assert error["hint"] == "change the prompt or the image; the same request is refused again"
    assert error == error_object("refused", error["message"], 8, "IMAGE_SAFETY")
    assert sorted(os.listdir(".")) == ["cat.png"]


def test_a_blocked_prompt_names_its_block_reason(served: Served, sample: Path) -> None:
    served.sandbox.add_faults("prompt-blocked")
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--json"], env=one_backend_env(served, "gemini")
    )
    assert result.exit_code == 8
    assert json.loads(result.stdout)["error"]["provider_code"] == "PROHIBITED_CONTENT"
