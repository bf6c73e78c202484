"""`nanoedit config`: the file, its permissions, masking, and precedence file < env < flag."""

from __future__ import annotations

import inspect
import json
import shlex
import stat
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import OPENAI_KEY, Served, backend_env, config_file, run_cli, settings_from

from nanoedit.backends.registry import backend_names
from nanoedit.errors import ConfigError, ExitCode, UsageError
from nanoedit.jobs import RunOptions
from nanoedit.settings.load import plain_http_warning
from nanoedit.settings.secrets import KEY_COMMAND_TIMEOUT, display_value, run_key_command
from nanoedit.settings.store import permission_warning, write_document
from nanoedit.settings.values import BackendSettings
from nanoedit.urls import redact_userinfo


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
    assert listing[:5] == [
        "openai.base_url = https://api.example/v1  (file)",
        "openai.api_key = ****1234  (file)",
        "openai.api_key_cmd = (not set)",
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
    assert (
        "unknown config key 'openai.colour'; did you mean openai.model? known keys: "
        "openai.base_url,"
    ) in unknown.stderr
    bad = run_cli(["config", "set", "default.ratio", "7:3"])
    assert (bad.exit_code, bad.stderr.strip()) == (
        2, "error: invalid ratio '7:3'; use one of: auto, 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9, 1:4, 4:1, 1:8, 8:1"
    )  # fmt: skip
    url = run_cli(["config", "set", "openai.base_url", "api.example"])
    assert url.exit_code == 2
    assert (
        "invalid base URL 'api.example'; give it as https://host or https://host/v1" in url.stderr
    )
    assert not config_file().exists()
    assert run_cli(["config", "set", "default.size", "1k"]).exit_code == 0
    assert run_cli(["config", "get", "default.size"]).stdout == "1K\n"


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
    run_cli(["edit", "cat.png", "-p", "x", "--model", "nano-banana-pro"], env=env)
    run_cli(["edit", "cat.png", "-p", "x"], env=env | {"NANOEDIT_OPENAI_MODEL": "nano-banana-2"})
    run_cli(["edit", "cat.png", "-p", "x", "--ratio", "21:9"], env=env)
    posts = [r for r in served.sandbox.received if r.method == "POST"]
    assert [(r.fields["model"], r.fields["aspect_ratio"]) for r in posts] == [
        (["nano-banana-pro"], ["3:2"]),
        (["nano-banana-2"], ["3:2"]),
        (["model-from-file"], ["21:9"]),
    ]


def test_bad_value_in_environment_names_the_variable(sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x"], env={"NANOEDIT_BACKEND": "gpt"})
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "error: the environment variable NANOEDIT_BACKEND: invalid value 'gpt'; "
        f"use one of: auto, {', '.join(backend_names())}"
    )
    assert OPENAI_KEY not in result.stderr


def test_a_run_stopped_by_a_setting_still_prints_json(sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "--json"], env={"NANOEDIT_RATIO": "wide"})
    assert result.exit_code == 3
    message = (
        "the environment variable NANOEDIT_RATIO: invalid ratio 'wide'; use one of: "
        "auto, 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9, 1:4, 4:1, 1:8, 8:1"
    )
    assert json.loads(result.stdout) == {
        "schema": "nanoedit/error/1",
        "ok": False,
        "exit_code": 3,
        "kind": "config",
        "message": message,
        "hint": "run nanoedit config check, then nanoedit config set the key it names",
        "provider_code": None,
        "error": {
            "kind": "config",
            "message": message,
            "exit_code": 3,
            "hint": "run nanoedit config check, then nanoedit config set the key it names",
            "provider_code": None,
        },
    }


def counting(counter: Path, command: str) -> str:
    """A key command that also appends a line to ``counter`` each time it runs."""
    return f"echo run >> {shlex.quote(str(counter))}; {command}"


def openai_with_cmd(command: str, api_key: str | None = None) -> BackendSettings:
    return BackendSettings(
        "openai", "https://api.example", api_key, "nano-banana", api_key_cmd=command
    )


# Network settings


def test_network_defaults() -> None:
    settings = settings_from()
    assert (settings.proxy, settings.timeout, settings.retries, settings.backoff) == (
        None, 900.0, 3, 1.0,
    )  # fmt: skip
    assert settings.warnings == ()


def test_network_precedence_file_then_env_then_flag() -> None:
    config_file().parent.mkdir(mode=0o700)
    # Numbers as TOML numbers, as people write them by hand.
    config_file().write_text(
        '[network]\nproxy = "http://file-proxy:3128"\ntimeout = 120\nretries = 5\nbackoff = 0.5\n'
    )
    config_file().chmod(0o600)
    from_file = settings_from()
    assert (from_file.proxy, from_file.timeout, from_file.retries, from_file.backoff) == (
        "http://file-proxy:3128", 120.0, 5, 0.5,
    )  # fmt: skip
    env = {
        "NANOEDIT_PROXY": "socks5://env-proxy:1080",
        "NANOEDIT_TIMEOUT": "60",
        "NANOEDIT_RETRIES": "0",
        "NANOEDIT_BACKOFF": "0",
    }
    from_env = settings_from(env)
    assert (from_env.proxy, from_env.timeout, from_env.retries, from_env.backoff) == (
        "socks5://env-proxy:1080", 60.0, 0, 0.0,
    )  # fmt: skip
    flags = RunOptions(proxy="https://flag-proxy:8443/", timeout=30.5, retries=1)
    from_flags = settings_from(env, flags)
    assert (from_flags.proxy, from_flags.timeout, from_flags.retries, from_flags.backoff) == (
        "https://flag-proxy:8443", 30.5, 1, 0.0,
    )  # fmt: skip


PROXY_HELP = "give it as http://host:port, https://host:port or socks5://host:port"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("NANOEDIT_PROXY", "ftp://proxy:21", f"invalid proxy URL 'ftp://proxy:21'; {PROXY_HELP}"),
        (
            "NANOEDIT_PROXY",
            "http://ann:hunter2@proxy:99999",
            f"invalid proxy URL 'http://ann:****@proxy:99999'; {PROXY_HELP}",
        ),
        (
            "NANOEDIT_TIMEOUT",
            "0",
            "invalid value '0'; give a number of seconds above 0, such as 900",
        ),
        (
            "NANOEDIT_TIMEOUT",
            "nan",
            "invalid value 'nan'; give a number of seconds above 0, such as 900",
        ),
        (
            "NANOEDIT_RETRIES",
            "-1",
            "invalid value '-1'; give a whole number from 0 to 20, such as 3",
        ),
        (
            "NANOEDIT_RETRIES",
            "2.5",
            "invalid value '2.5'; give a whole number from 0 to 20, such as 3",
        ),
        (
            "NANOEDIT_BACKOFF",
            "-0.5",
            "invalid value '-0.5'; give a number of seconds, 0 or more, such as 1",
        ),
        (
            "NANOEDIT_BACKOFF",
            "inf",
            "invalid value 'inf'; give a number of seconds, 0 or more, such as 1",
        ),
        (
            "NANOEDIT_DUOMI_POLL_INTERVAL",
            "nan",
            "invalid value 'nan'; give a number of seconds above 0, such as 2",
        ),
    ],
)
def test_bad_network_value_names_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from({variable: value})
    assert caught.value.message == f"the environment variable {variable}: {message}"
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "hunter2" not in caught.value.message


def test_bad_network_value_in_the_file_names_the_key() -> None:
    write_document(config_file(), {"network": {"retries": "many"}})
    with pytest.raises(ConfigError) as caught:
        settings_from()
    assert caught.value.message == (
        "config key network.retries: invalid value 'many'; give a whole number from 0 to 20, such as 3"
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            RunOptions(timeout=0),
            "--timeout: invalid value '0'; give a number of seconds above 0, such as 900",
        ),
        (
            RunOptions(retries=-1),
            "--retries: invalid value '-1'; give a whole number from 0 to 20, such as 3",
        ),
        (RunOptions(proxy="proxy:8080"), f"--proxy: invalid proxy URL 'proxy:8080'; {PROXY_HELP}"),
    ],
)
def test_bad_network_flag_is_a_usage_error(flags: RunOptions, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        settings_from(flags=flags)
    assert (caught.value.message, caught.value.exit_code) == (message, ExitCode.USAGE)


def test_network_keys_through_config_set_and_list() -> None:
    assert run_cli(["config", "set", "network.retries", "5"]).exit_code == 0
    bad = run_cli(["config", "set", "network.timeout", "soon"])
    assert (bad.exit_code, bad.stderr.strip()) == (
        2, "error: invalid value 'soon'; give a number of seconds above 0, such as 900"
    )  # fmt: skip
    listing = run_cli(["config", "list"], env={"NANOEDIT_PROXY": "http://proxy.lan:3128"})
    assert [line for line in listing.stdout.splitlines() if line.startswith("network.")] == [
        "network.proxy = http://proxy.lan:3128  (NANOEDIT_PROXY)",
        "network.timeout = 900  (default)",
        "network.retries = 5  (file)",
        "network.backoff = 1  (default)",
    ]


def test_display_value_hides_secrets_and_proxy_passwords() -> None:
    assert display_value("network.proxy", "http://ann:hunter2@proxy:3128") == (
        "http://ann:****@proxy:3128"
    )
    assert display_value("network.proxy", "socks5://proxy:1080") == "socks5://proxy:1080"
    assert display_value("openai.api_key", "sk-abcdefghijklmnop1234") == "****1234"
    assert display_value("openai.api_key_cmd", "pass show nanoedit/openai") == (
        "pass show nanoedit/openai"
    )
    assert redact_userinfo("https://ann@proxy:3128") == "https://ann@proxy:3128"


# Key commands


def test_key_command_runs_on_first_use_only_once_across_threads(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    env = {
        "NANOEDIT_OPENAI_BASE_URL": "https://api.example",
        "NANOEDIT_OPENAI_API_KEY_CMD": counting(counter, "printf 'k3y-from-cmd\\n'"),
    }
    settings = settings_from(env)
    assert settings.backends["openai"].configured
    assert not counter.exists()  # loading the settings ran nothing
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: settings.backends["openai"].key(), range(16)))
    assert keys == ["k3y-from-cmd"] * 16
    assert counter.read_text() == "run\n"


@pytest.mark.parametrize(
    "command",
    [
        "printf 'k3y-from-cmd\\n'",
        "printf '  k3y-from-cmd  \\nsecond line\\n'",
        "printf '\\n\\nk3y-from-cmd'",
    ],
)
def test_key_command_output_first_line_stripped(command: str) -> None:
    assert openai_with_cmd(command).key() == "k3y-from-cmd"


def test_a_plain_key_wins_over_the_command(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    settings = openai_with_cmd(counting(counter, "printf 'from-cmd\\n'"), api_key="from-file")
    assert settings.key() == "from-file"
    assert not counter.exists()


def test_a_failure_is_kept_too(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    settings = openai_with_cmd(counting(counter, "exit 1"))
    messages = []
    for _ in range(2):
        with pytest.raises(ConfigError) as caught:
            settings.key()
        messages.append(caught.value.message)
    assert (
        messages
        == [
            "openai.api_key_cmd failed with exit status 1; run it in a shell to see why, "
            "or set openai.api_key instead"
        ]
        * 2
    )
    assert counter.read_text() == "run\n"


EMPTY = (
    "openai.api_key_cmd printed nothing (exit status 0); make it print the key on its first "
    "line, or set openai.api_key instead"
)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            "echo k3y-leaked; echo 'gpg: decryption failed: No secret key' >&2; exit 2",
            "openai.api_key_cmd failed with exit status 2 (gpg: decryption failed: No secret "
            "key); run it in a shell to see why, or set openai.api_key instead",
        ),
        (
            "echo k3y-leaked; echo 'k3y-leaked is not valid' >&2; exit 1",
            "openai.api_key_cmd failed with exit status 1 (**** is not valid); run it in a shell "
            "to see why, or set openai.api_key instead",
        ),
        (
            "echo k3y-leaked; echo 'first' >&2; echo '  last   line  ' >&2; echo >&2; exit 4",
            "openai.api_key_cmd failed with exit status 4 (last line); run it in a shell to see "
            "why, or set openai.api_key instead",
        ),
        (
            "printf '%0300d\\n' 0 >&2; exit 5",
            f"openai.api_key_cmd failed with exit status 5 ({'0' * 199}…); run it in a shell to "
            "see why, or set openai.api_key instead",
        ),
        (
            "echo k3y-leaked; kill -9 $$",
            "openai.api_key_cmd was killed by signal 9; run it in a shell to see why, "
            "or set openai.api_key instead",
        ),
        ("true", EMPTY),
        ("printf '  \\n\\n'", EMPTY),
        ("cat", EMPTY),  # it gets no stdin, so it cannot wait on the terminal or eat a pipe
        (
            "printf 'k3y\\377\\376\\n'",
            "openai.api_key_cmd printed something that is not UTF-8 text; make it print the "
            "key, or set openai.api_key instead",
        ),
    ],
)
def test_key_command_failures(command: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        openai_with_cmd(command).key()
    assert caught.value.message == message
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "k3y-leaked" not in caught.value.message


def test_key_command_not_found() -> None:
    with pytest.raises(ConfigError) as caught:
        openai_with_cmd("echo k3y-leaked; nanoedit-no-such-command-0451").key()
    message = caught.value.message
    # The shell's own words differ (dash: "not found", bash: "command not found").
    assert message.startswith("openai.api_key_cmd failed: command not found (exit status 127: ")
    assert "nanoedit-no-such-command-0451" in message
    assert message.endswith("); check the command and your PATH, or set openai.api_key instead")
    assert "k3y-leaked" not in message


def test_key_command_timeout_stops_it_and_what_it_started() -> None:
    assert KEY_COMMAND_TIMEOUT == 30.0
    assert inspect.signature(run_key_command).parameters["timeout"].default == 30.0
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        # The sleep is a child of the shell: stopping the shell alone would leave the pipes open.
        run_key_command("sleep 5; echo k3y-leaked", "duomi.api_key_cmd", timeout=0.3)
    assert time.monotonic() - started < 3
    assert caught.value.message == (
        "duomi.api_key_cmd did not finish within 0.3 s and was stopped; make sure it does not "
        "wait for input (it gets none), or set duomi.api_key instead"
    )


def test_no_key_and_no_command() -> None:
    settings = BackendSettings("duomi", "https://duomiapi.com", None, "gemini-2.5-flash-image")
    assert not settings.configured
    with pytest.raises(ConfigError) as caught:
        settings.key()
    assert caught.value.message == (
        "the duomi backend has no API key; set it with: nanoedit config set duomi.api_key KEY"
    )


def test_the_cache_is_not_part_of_the_value() -> None:
    command = "printf 'k3y-from-%s' cmd"
    first, second = openai_with_cmd(command), openai_with_cmd(command)
    assert first.key() == "k3y-from-cmd"
    assert first == second and hash(first) == hash(second)
    assert "cache" not in repr(first) and "k3y-from-cmd" not in repr(first)


def test_the_sandbox_needs_no_command(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    env = {"NANOEDIT_OPENAI_API_KEY_CMD": counting(counter, "printf x")}
    settings = settings_from(env, RunOptions(sandbox=True))
    assert (settings.backends["openai"].api_key_cmd, settings.backends["openai"].key()) == (
        None,
        "sandbox",
    )
    assert not counter.exists()


def test_config_shows_the_command_and_never_runs_it(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    command = counting(counter, "pass show nanoedit/openai")
    result = run_cli(["config", "set", "duomi.api_key_cmd", "pass show nanoedit/duomi"])
    assert result.stderr == f"set duomi.api_key_cmd = pass show nanoedit/duomi in {config_file()}\n"
    env = {"NANOEDIT_OPENAI_API_KEY_CMD": command}
    assert run_cli(["config", "get", "openai.api_key_cmd"], env=env).stdout == f"{command}\n"
    listing = run_cli(["config", "list"], env=env).stdout.splitlines()
    assert f"openai.api_key_cmd = {command}  (NANOEDIT_OPENAI_API_KEY_CMD)" in listing
    assert "duomi.api_key_cmd = pass show nanoedit/duomi  (file)" in listing
    assert not counter.exists()


# Warnings


def test_permission_warning(tmp_path: Path) -> None:
    path = tmp_path / "my config" / "config.toml"
    path.parent.mkdir()
    assert permission_warning(path) is None  # no file, nothing to say
    path.write_text("")
    path.chmod(0o600)
    assert permission_warning(path) is None
    quoted = shlex.quote(str(path))
    for mode, can in ((0o644, "read"), (0o620, "changed"), (0o666, "read and changed")):
        path.chmod(mode)
        assert permission_warning(path) == (
            f"the config file {path} can be {can} by other users (mode {mode:04o}), and it may "
            f"hold API keys; fix it with: chmod 600 {quoted}"
        )
    assert "'" in quoted  # the folder's space is quoted, so the command can be pasted


def test_load_settings_carries_the_permission_warning() -> None:
    write_document(config_file(), {"openai": {"api_key": "sk-abcdefghijklmnop1234"}})
    assert settings_from().warnings == ()
    config_file().chmod(0o640)
    assert settings_from().warnings == (permission_warning(config_file()),)
    assert (
        settings_from()
        .warnings[0]
        .startswith(f"the config file {config_file()} can be read by other users (mode 0640)")
    )


@pytest.mark.parametrize(
    ("base_url", "host"),
    [
        ("http://api.example.com/v1", "api.example.com"),
        ("http://10.0.0.5:3000", "10.0.0.5"),
        ("HTTP://[2001:db8::1]:8080", "2001:db8::1"),
    ],
)
def test_plain_http_to_another_machine_is_warned(base_url: str, host: str) -> None:
    for settings in (
        BackendSettings("openai", base_url, "sk-key", "nano-banana"),
        openai_with_cmd("pass show x").__class__(
            "openai", base_url, None, "nano-banana", api_key_cmd="pass show x"
        ),
    ):
        assert plain_http_warning(settings) == (
            f"the openai backend sends its API key to {host} over plain http://, where anyone "
            "on the way can read it; use https:// in openai.base_url"
        )


@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.example.com",
        "http://127.0.0.1:8787",
        "http://127.8.9.10",
        "http://localhost:3000/v1",
        "http://LOCALHOST",
        "http://[::1]:8787",
        "http://nanoedit-sandbox.invalid",
    ],
)
def test_plain_http_that_stays_on_this_machine_is_fine(base_url: str) -> None:
    assert plain_http_warning(BackendSettings("duomi", base_url, "key", "m")) is None


def test_no_key_no_warning() -> None:
    assert plain_http_warning(BackendSettings("duomi", "http://api.example", None, "m")) is None
    assert plain_http_warning(BackendSettings("duomi", None, "key", "m")) is None
