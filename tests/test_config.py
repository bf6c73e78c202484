"""`nanoedit config`: the file, its permissions, masking, and precedence file < env < flag."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

from conftest import OPENAI_KEY, Served, backend_env, run_cli


def config_file() -> Path:
    return Path(os.environ["NANOEDIT_CONFIG_DIR"]) / "config.toml"


def test_set_get_unset_list_and_path() -> None:
    assert run_cli(["config", "path"]).stdout == f"{config_file()}\n"
    result = run_cli(["config", "set", "openai.base_url", "https://api.example/v1/"])
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == f"set openai.base_url = https://api.example/v1 in {config_file()}\n"
    secret = run_cli(["config", "set", "openai.api_key", "sk-abcdefghijklmnop1234"])
    assert secret.exit_code == 0
    assert "sk-abcdefghijklmnop1234" not in secret.stdout + secret.stderr
    assert "(hidden)" in secret.stderr
    assert tomllib.loads(config_file().read_text()) == {
        "openai": {"api_key": "sk-abcdefghijklmnop1234", "base_url": "https://api.example/v1"}
    }
    assert run_cli(["config", "get", "openai.base_url"]).stdout == "https://api.example/v1\n"
    assert run_cli(["config", "get", "openai.api_key"]).stdout == "****1234\n"
    listing = run_cli(["config", "list"]).stdout.splitlines()
    assert listing[:4] == [
        "openai.base_url = https://api.example/v1  (file)",
        "openai.api_key = ****1234  (file)",
        "openai.model = nano-banana  (default)",
        "openai.image_field = image  (default)",
    ]
    assert "duomi.api_key = (not set)" in listing
    unset = run_cli(["config", "unset", "openai.api_key"])
    assert (unset.exit_code, unset.stderr) == (0, f"unset openai.api_key in {config_file()}\n")
    missing = run_cli(["config", "get", "openai.api_key"])
    assert (missing.exit_code, missing.stdout) == (3, "")
    assert "openai.api_key is not set; set it with: nanoedit config set openai.api_key VALUE" in (
        missing.stderr
    )


def test_file_and_folder_are_private() -> None:
    assert (
        run_cli(["config", "set", "duomi.api_key", "-"], stdin="dk-from-stdin-999\n").exit_code == 0
    )
    assert stat.S_IMODE(config_file().stat().st_mode) == 0o600
    assert stat.S_IMODE(config_file().parent.stat().st_mode) == 0o700
    assert tomllib.loads(config_file().read_text()) == {"duomi": {"api_key": "dk-from-stdin-999"}}


def test_bad_keys_and_values_exit_2() -> None:
    unknown = run_cli(["config", "set", "openai.colour", "blue"])
    assert unknown.exit_code == 2
    assert "unknown config key 'openai.colour'; known keys: openai.base_url," in unknown.stderr
    bad = run_cli(["config", "set", "default.ratio", "7:3"])
    assert (bad.exit_code, bad.stderr.strip()) == (
        2, "error: invalid ratio '7:3'; use one of: auto, 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9"
    )  # fmt: skip
    url = run_cli(["config", "set", "openai.base_url", "api.example"])
    assert url.exit_code == 2
    assert (
        "invalid base URL 'api.example'; give it as https://host or https://host/v1" in url.stderr
    )
    assert not config_file().exists()
    assert run_cli(["config", "set", "default.size", "4k"]).exit_code == 0
    assert run_cli(["config", "get", "default.size"]).stdout == "4K\n"


def test_broken_config_file_is_a_config_error() -> None:
    config_file().parent.mkdir(parents=True)
    config_file().write_text("[openai\nbase_url = 1")
    result = run_cli(["config", "list"])
    assert result.exit_code == 3
    assert f"the config file {config_file()} is not valid TOML" in result.stderr


def test_precedence_file_then_env_then_flag(served: Served, sample: Path) -> None:
    run_cli(["config", "set", "openai.model", "model-from-file"])
    run_cli(["config", "set", "default.ratio", "3:2"])
    env = backend_env(served, duomi=False)
    run_cli(["edit", "cat.png", "-p", "x", "--model", "nano-banana"], env=env)
    run_cli(["edit", "cat.png", "-p", "x"], env=env | {"NANOEDIT_OPENAI_MODEL": "nano-banana-2"})
    run_cli(["edit", "cat.png", "-p", "x", "--ratio", "21:9"], env=env)
    posts = [r for r in served.sandbox.received if r.method == "POST"]
    assert [(r.fields["model"], r.fields["aspect_ratio"]) for r in posts] == [
        (["nano-banana"], ["3:2"]),
        (["nano-banana-2"], ["3:2"]),
        (["model-from-file"], ["21:9"]),
    ]


def test_bad_value_in_environment_names_the_variable(sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x"], env={"NANOEDIT_BACKEND": "gpt"})
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "error: the environment variable NANOEDIT_BACKEND: invalid value 'gpt'; "
        "use one of: auto, openai, duomi"
    )
    assert OPENAI_KEY not in result.stderr


def test_a_run_stopped_by_a_setting_still_prints_json(sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "--json"], env={"NANOEDIT_RATIO": "wide"})
    assert result.exit_code == 3
    assert json.loads(result.stdout) == {
        "ok": False,
        "error": {
            "kind": "config",
            "message": "the environment variable NANOEDIT_RATIO: invalid ratio 'wide'; use one of: "
            "auto, 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9",
            "exit_code": 3,
        },
    }
