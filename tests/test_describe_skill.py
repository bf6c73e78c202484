"""The agent skill: shipped in the package, printed by ``nanoedit skill``, installed into a
skills folder without ever replacing a different file unasked; its exit codes are nanoedit's."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run_cli

from nanoedit.errors import ExitCode

SKILL = Path(__file__).resolve().parent.parent / "nanoedit" / "SKILL.md"


def test_the_skill_is_printed_as_shipped_with_its_name_and_description() -> None:
    result = run_cli(["skill"])
    assert (result.exit_code, result.stdout) == (0, SKILL.read_text("utf-8"))
    front = re.match(r"---\nname: (.+)\ndescription: (.+)\n---\n", result.stdout)
    assert front is not None
    assert front[1] == "nanoedit"
    assert "Use it when" in front[2]
    assert "Never pass `--overwrite` unless the user asked" in result.stdout


def test_the_skills_exit_codes_are_every_exit_code_by_its_name() -> None:
    rows = re.findall(r"^\| (\d+) \| (\w+)", SKILL.read_text("utf-8"), re.M)
    assert [(int(code), name) for code, name in rows] == [(int(c), _word(c)) for c in ExitCode]


def _word(code: ExitCode) -> str:
    """The first word of a code's row: its name, except 0 and 1, told in words."""
    return {ExitCode.OK: "every", ExitCode.INTERNAL: "an"}.get(code, code.name.lower())


def test_the_commands_the_skill_names_exist() -> None:
    text = SKILL.read_text("utf-8")
    named = set(re.findall(r"^nanoedit (\w[\w-]*)", text, re.M))
    assert named == {
        "generate", "edit", "resume", "history", "presets", "models", "config", "schema"
    }  # fmt: skip
    helped = run_cli(["--help"]).stdout
    for command in named:
        assert re.search(rf"^  {command}\b", helped, re.M), command


def test_install_writes_once_refuses_a_different_file_and_force_replaces_it(
    tmp_path: Path,
) -> None:
    target = tmp_path / "skills" / "nanoedit" / "SKILL.md"
    first = run_cli(["skill", "--install", str(tmp_path / "skills")])
    assert (first.exit_code, first.stdout, first.stderr) == (0, f"{target}\n", "")
    assert target.read_text("utf-8") == SKILL.read_text("utf-8")
    again = run_cli(["skill", "--install", str(tmp_path / "skills")])
    assert (again.exit_code, again.stderr) == (
        0,
        f"{target} is already this skill; nothing written\n",
    )
    target.write_text("my own notes\n")
    refused = run_cli(["skill", "--install", str(tmp_path / "skills")])
    assert refused.exit_code == 4
    assert refused.stderr == (
        f"error: {target} exists and differs from nanoedit's skill; pass --force to replace "
        "it, or compare it with: nanoedit skill\n"
    )
    assert target.read_text("utf-8") == "my own notes\n"
    forced = run_cli(["skill", "--install", str(tmp_path / "skills"), "--force"])
    assert forced.exit_code == 0
    assert target.read_text("utf-8") == SKILL.read_text("utf-8")
    assert sorted(p.name for p in target.parent.iterdir()) == ["SKILL.md"]
