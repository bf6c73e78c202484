"""``nanoedit --usage --json``: the command line described from its own parser, checked against
what ``--help`` says, so that an agent reading it builds command lines the CLI accepts."""

from __future__ import annotations

import json
import re
from typing import Any

from conftest import run_cli

from nanoedit import __version__
from nanoedit.describe.usage import CONFIG_KEYS
from nanoedit.errors import EXIT_MEANINGS, ExitCode
from nanoedit.settings.keys import CORE_KEYS, is_known_key


def document() -> dict[str, Any]:
    result = run_cli(["--usage", "--json"])
    assert (result.exit_code, result.stderr) == (0, "")
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def command(doc: dict[str, Any], *path: str) -> dict[str, Any]:
    node: dict[str, Any] = doc["command"]
    for name in path:
        node = next(sub for sub in node["commands"] if sub["name"] == name)
    return node


def help_commands(args: list[str]) -> list[str]:
    """The command names a ``--help`` lists in its Commands section."""
    text = run_cli([*args, "--help"]).stdout
    section = text.split("Commands:\n", 1)[1]
    return re.findall(r"^  (\S+)", section, re.M)


def test_every_command_of_help_is_described_with_its_subcommands() -> None:
    doc = document()
    assert (doc["schema"], doc["program"], doc["version"]) == (
        "nanoedit/usage/1", "nanoedit", __version__,
    )  # fmt: skip
    top = [sub["name"] for sub in doc["command"]["commands"]]
    assert sorted(top) == sorted(help_commands([]))
    for group in ("config", "sandbox", "history"):
        subs = [sub["name"] for sub in command(doc, group)["commands"]]
        assert sorted(subs) == sorted(help_commands([group])), group
        assert all(
            sub["path"][:2] == ["nanoedit", group] for sub in command(doc, group)["commands"]
        )


def test_every_option_of_edit_help_is_described_with_its_choices() -> None:
    edit = command(document(), "edit")
    helped = run_cli(["edit", "--help"]).stdout
    # Every long flag --help shows (an option's first line starts with it or its short form).
    shown = set(re.findall(r"^  (?:-\w, )?(--[\w-]+)", helped, re.M)) - {"--help"}
    described = {flag for param in edit["params"] for flag in param["flags"]}
    assert shown <= described
    assert {flag for flag in described if flag.startswith("--")} == shown
    by_flag = {flag: param for param in edit["params"] for flag in param["flags"]}
    ratio = by_flag["--ratio"]
    assert ratio["choices"] == re.search(r"--ratio <([^>]+)>", helped)[1].split("|")  # type: ignore[index]
    assert (ratio["config_key"], ratio["config_envvar"]) == ("default.ratio", "NANOEDIT_RATIO")
    backend = by_flag["--backend"]
    assert backend["choices"] == re.search(r"--backend <([^>]+)>", helped)[1].split("|")  # type: ignore[index]
    count = by_flag["-n"]
    assert (count["type"], count["default"], count["min"], count["max"]) == ("int range", 1, 1, 10)
    assert (by_flag["--ref"]["multiple"], by_flag["--overwrite"]["type"]) == (True, "flag")
    assert by_flag["--response-format"]["default"] == "url"
    [inputs] = [param for param in edit["params"] if param["kind"] == "argument"]
    assert (inputs["name"], inputs["multiple"], inputs["flags"]) == ("inputs", True, [])


def test_exit_codes_are_every_code_with_its_meaning() -> None:
    codes = document()["exit_codes"]
    assert [(c["code"], c["name"]) for c in codes] == [(int(c), c.name.lower()) for c in ExitCode]
    assert set(EXIT_MEANINGS) == set(ExitCode)
    assert {c["code"]: c["meaning"] for c in codes}[8] == EXIT_MEANINGS[ExitCode.REFUSED]


def test_the_config_keys_named_are_real_keys() -> None:
    for flag, key in CONFIG_KEYS.items():
        assert key.startswith("BACKEND.") or is_known_key(key), flag
    assert CORE_KEYS["default.size"].env == "NANOEDIT_SIZE"


def test_usage_without_json_is_one_line_per_command_and_option() -> None:
    result = run_cli(["--usage"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert (
        "nanoedit config check  Check each configured backend with one cheap request: ready, "
        "key rejected, unreachable."
    ) in lines
    assert "    --overwrite  Let -o replace an existing file." in lines
    assert lines[-1].startswith("exit codes: 0 ok; 1 internal; 2 usage;")
