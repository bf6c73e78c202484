"""The shipped JSON Schemas checked against real output: each --json record of real runs on
the sandbox validates against the schema its ``schema`` field names, and a --from line
nanoedit takes validates while one it refuses does not."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import Served, backend_env, one_backend_env, run_cli
from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped]

from nanoedit.describe.schemas import schema_names, schema_text

SCHEMAS = Path(__file__).resolve().parent.parent / "nanoedit" / "describe" / "schemas"
NAMES = [
    "config-check", "dry-run", "error", "history-job", "job-line", "model", "preset", "result",
    "usage",
]  # fmt: skip


def validator(name: str) -> Any:
    return Draft202012Validator(json.loads(schema_text(name)), format_checker=FormatChecker())


def valid(name: str, record: dict[str, Any]) -> None:
    """``record`` is valid against schema ``name`` and says so in its ``schema`` field."""
    errors = [error.message for error in validator(name).iter_errors(record)]
    assert errors == [], (name, record)
    if name != "job-line":
        assert record["schema"] == f"nanoedit/{name}/1"


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_every_schema_is_a_valid_2020_12_schema_listed_and_printed_as_shipped() -> None:
    assert schema_names() == NAMES
    listed = run_cli(["schema"])
    assert (listed.exit_code, listed.stdout) == (0, "".join(f"{name}\n" for name in NAMES))
    for name in NAMES:
        text = (SCHEMAS / f"{name}.json").read_text("utf-8")
        schema = json.loads(text)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert run_cli(["schema", name]).stdout == text
    unknown = run_cli(["schema", "results"])
    assert unknown.exit_code == 2
    assert (
        unknown.stderr
        == f"error: no schema is called 'results'; the schemas are: {', '.join(NAMES)}\n"
    )


def test_edit_results_and_the_history_validate(served: Served, sample: Path) -> None:
    env = backend_env(served)
    result = run_cli(["edit", "cat.png", "missing.png", "-p", "x", "--json", "-j", "1"], env=env)
    assert result.exit_code == 7
    records = lines(result.stdout)
    assert sorted(record["ok"] for record in records) == [False, True]
    for record in records:
        valid("result", record)
    generated = run_cli(["generate", "-p", "a fox", "--json"], env=env)
    assert generated.exit_code == 0
    [made] = lines(generated.stdout)
    valid("result", made)
    history = lines(run_cli(["history", "--json"]).stdout)
    assert len(history) == 2
    for record in history:
        valid("history-job", record)
    shown = run_cli(["history", "show", str(made["job"]), "--json"])
    valid("history-job", json.loads(shown.stdout))


def test_a_refused_job_and_an_api_error_validate(served: Served, sample: Path) -> None:
    env = one_backend_env(served, "gemini")
    for fault, code in (("image-safety", 8), ("invalid-argument", 5)):
        served.sandbox.add_faults(fault)
        result = run_cli(["edit", "cat.png", "-p", "x", "--json"], env=env)
        assert result.exit_code == code
        [record] = lines(result.stdout)
        valid("result", record)
        assert record["error"]["provider_code"] == fault.upper().replace("-", "_")


def test_error_envelopes_validate(sample: Path) -> None:
    for args, code in (
        (["edit", "cat.png", "-p", "x", "--json", "--ratio", "16x9"], 2),
        (["edit", "--json", "--from", "none.txt", "-p", "x", "--sandbox"], 4),
        (["history", "show", "7", "--json"], 2),
    ):
        result = run_cli(args)
        assert result.exit_code == code, args
        [envelope] = lines(result.stdout)
        valid("error", envelope)
        assert envelope["exit_code"] == code


def test_usage_and_config_check_validate(sample: Path) -> None:
    valid("usage", json.loads(run_cli(["--usage", "--json"]).stdout))
    checked = run_cli(["config", "check", "--sandbox", "--json"])
    assert checked.exit_code == 0
    record = json.loads(checked.stdout)
    valid("config-check", record)
    assert record["backends"] and all(backend["passed"] for backend in record["backends"])


def test_models_and_dry_run_lines_validate(served: Served, sample: Path) -> None:
    models = lines(run_cli(["models", "--json"]).stdout)
    assert len(models) > 3
    for record in models:
        valid("model", record)
    env = backend_env(served, duomi=True)
    dry = run_cli(["edit", "cat.png", "-p", "x", "--ratio", "16:9", "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0
    [request] = lines(dry.stdout)
    valid("dry-run", request)
    assert served.sandbox.received == []


def test_a_from_line_nanoedit_takes_validates_and_one_it_refuses_does_not(
    served: Served, sample: Path
) -> None:
    good = {"input": "cat.png", "prompt": "make it night", "ratio": "16:9", "size": "1k"}
    Path("jobs.txt").write_text(json.dumps(good) + "\n")
    ran = run_cli(["edit", "--from", "jobs.txt", "--json"], env=backend_env(served))
    assert ran.exit_code == 0
    valid("job-line", good)
    bad = {"input": "cat.png", "prompt": "x", "colour": "red"}
    Path("bad.txt").write_text(json.dumps(bad) + "\n")
    refused = run_cli(["edit", "--from", "bad.txt", "--json"], env=backend_env(served))
    assert refused.exit_code == 2
    assert not validator("job-line").is_valid(bad)


@pytest.mark.parametrize(
    "line",
    [{"prompt": "x"}, {"input": "cat.png", "ratio": "16x9"}, {"input": "cat.png", "size": "3K"},
     {"input": "cat.png", "ref": {"path": "dog.png"}}, {"input": "cat.png", "prompt": "  "}],
)  # fmt: skip
def test_job_lines_nanoedit_refuses_are_invalid(
    served: Served, sample: Path, line: dict[str, Any]
) -> None:
    Path("jobs.txt").write_text(json.dumps(line) + "\n")
    result = run_cli(["edit", "--from", "jobs.txt", "-p", "x", "--json"], env=backend_env(served))
    assert result.exit_code == 2, result.stderr
    assert not validator("job-line").is_valid(line)
    assert served.sandbox.received == []


def test_presets_a_preset_result_and_a_preset_line_validate(served: Served, sample: Path) -> None:
    config = Path(os.environ["NANOEDIT_CONFIG_DIR"])
    config.mkdir()
    (config / "config.toml").write_text(
        '[presets.logo]\nprompt = "{prompt}, flat logo"\nsize = "1K"\ncount = 1\n'
        'model = "nano-banana"\nbackend = "gemini"\n'
    )
    presets = lines(run_cli(["presets", "--json"]).stdout)
    assert [record["name"] for record in presets] == [
        "icon", "product", "sticker", "thumbnail", "logo"
    ]  # fmt: skip
    for record in presets:
        valid("preset", record)
    line = {"input": "cat.png", "prompt": "the cat", "preset": "sticker"}
    Path("jobs.txt").write_text(json.dumps(line) + "\n")
    ran = run_cli(["edit", "--from", "jobs.txt", "--json"], env=one_backend_env(served, "gemini"))
    assert ran.exit_code == 0, ran.stderr
    valid("job-line", line)
    [record] = lines(ran.stdout)
    valid("result", record)
    assert record["preset"] == "sticker"
    assert not validator("job-line").is_valid(line | {"preset": ""})
