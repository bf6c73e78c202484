"""`nanoedit config set/unset` and the file they write: folders that cannot be written,
typed values, broken files, unknown keys, and reading a key from a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import resource
import select
import stat
import subprocess
import sys
import termios
import time
import tomllib
from pathlib import Path

import pytest
from conftest import OPENAI_KEY, Served, config_file, run_cli
from PIL import Image

from nanoedit.backends.base import backend_classes
from nanoedit.backends.registry import backend_names
from nanoedit.sandbox import sample_image
from nanoedit.settings.checks import MAX_RETRIES
from nanoedit.settings.keys import all_keys
from nanoedit.settings.store import keep_broken_copy, write_document

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))


def fix(folder: Path | str) -> str:
    """What a cannot-write message tells the user to do."""
    return f"make {folder} a folder you can write to, or point NANOEDIT_CONFIG_DIR at one"


# Folders that cannot be written (the tests run as root, so permissions stop nothing: the
# folders below are under a regular file, or in /proc, where nobody can create files).


def test_set_under_a_regular_file_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a folder")
    folder = tmp_path / "plain" / "nanoedit"
    result = run_cli(
        ["config", "set", "openai.model", "nano-banana-2"], env={"NANOEDIT_CONFIG_DIR": str(folder)}
    )
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"error: cannot write the config file {folder / 'config.toml'} ({tmp_path / 'plain'} is "
        f"a file, not a folder); {fix(folder)}\n"
    )
    assert (tmp_path / "plain").read_text() == "not a folder"


@pytest.mark.parametrize(
    ("folder", "reason"),
    [
        ("/proc/nanoedit-no-such-folder/conf",
         "cannot create the folder /proc/nanoedit-no-such-folder: No such file or directory"),
        ("/proc/self", "cannot create a file in /proc/self: No such file or directory"),
    ],
)  # fmt: skip
def test_set_where_no_file_can_be_made_is_one_error_line(folder: str, reason: str) -> None:
    result = run_cli(
        ["config", "set", "default.ratio", "16:9"], env={"NANOEDIT_CONFIG_DIR": folder}
    )
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"error: cannot write the config file {folder}/config.toml ({reason}); {fix(folder)}\n"
    )


@pytest.mark.parametrize("args", [["unset", "openai.model"], ["set", "default.ratio", "1:1"]])
def test_a_failed_write_leaves_the_file_as_it_was(args: list[str]) -> None:
    write_document(
        config_file(), {"default": {"ratio": "3:2"}, "openai": {"model": "nano-banana-2"}}
    )
    before = config_file().read_bytes()
    # A file size limit of 0: the new file cannot be written, as on a full disk.
    result = subprocess.run(
        [NANOEDIT, "config", *args],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0)),
    )
    assert (result.returncode, result.stdout) == (3, "")
    folder = config_file().parent
    assert result.stderr == (
        f"error: cannot write the config file {config_file()} (File too large); {fix(folder)}\n"
    )
    assert config_file().read_bytes() == before
    assert sorted(path.name for path in folder.iterdir()) == ["config.toml"]


# Values: each key refuses what its flag refuses, and is stored with its TOML type


@pytest.mark.parametrize(
    ("key", "flag", "value", "message"),
    [
        ("network.retries", "--retries", "999",
         "invalid value '999'; give a whole number from 0 to 20, such as 3"),
        ("network.retries", "--retries", "21",
         "invalid value '21'; give a whole number from 0 to 20, such as 3"),
        ("network.retries", "--retries", "-1",
         "invalid value '-1'; give a whole number from 0 to 20, such as 3"),
        ("network.timeout", "--timeout", "0",
         "invalid value '0'; give a number of seconds above 0, such as 900"),
        ("network.timeout", "--timeout", "nan",
         "invalid value 'nan'; give a number of seconds above 0, such as 900"),
        ("network.proxy", "--proxy", "ftp://proxy:21",
         "invalid proxy URL 'ftp://proxy:21'; give it as http://host:port, https://host:port "
         "or socks5://host:port"),
    ],
)  # fmt: skip
def test_a_key_and_its_flag_refuse_the_same_values(
    sample: Path, key: str, flag: str, value: str, message: str
) -> None:
    setting = run_cli(["config", "set", "--", key, value])
    assert (setting.exit_code, setting.stdout, setting.stderr) == (2, "", f"error: {message}\n")
    assert not config_file().exists()
    run = run_cli(["edit", "cat.png", "-p", "x", "--sandbox", flag, value])
    assert (run.exit_code, run.stdout, run.stderr) == (2, "", f"error: {flag}: {message}\n")


def test_a_value_that_starts_with_a_dash_reaches_the_value_check() -> None:
    # Without `--` too: before the fix the parser took -1 for an option ("No such option: -1").
    negative = run_cli(["config", "set", "network.retries", "-1"])
    assert (negative.exit_code, negative.stdout, negative.stderr) == (
        2, "", "error: invalid value '-1'; give a whole number from 0 to 20, such as 3\n"
    )  # fmt: skip
    assert not config_file().exists()
    # A value that is good and starts with a dash is kept as it is.
    model = run_cli(["config", "set", "openai.model", "-my-model"])
    assert (model.exit_code, model.stderr) == (
        0, f"set openai.model = -my-model in {config_file()}\n"
    )  # fmt: skip
    assert run_cli(["config", "get", "openai.model"]).stdout == "-my-model\n"


@pytest.mark.parametrize(
    ("key", "flag", "value", "shown"),
    [
        ("network.retries", "--retries", "20", "20"),
        ("network.retries", "--retries", "0", "0"),
        ("network.timeout", "--timeout", "0.5", "0.5"),
        ("network.timeout", "--timeout", "1e3", "1000"),
    ],
)
def test_a_key_and_its_flag_take_the_same_values(
    sample: Path, key: str, flag: str, value: str, shown: str
) -> None:
    setting = run_cli(["config", "set", key, value])
    assert (setting.exit_code, setting.stderr) == (0, f"set {key} = {shown} in {config_file()}\n")
    assert run_cli(["config", "get", key]).stdout == f"{shown}\n"
    run = run_cli(["edit", "cat.png", "-p", "x", "--sandbox", flag, value])
    assert (run.exit_code, run.stdout) == (0, "cat-edit.jpg\n"), run.stderr


def test_values_are_stored_with_their_toml_type() -> None:
    for key, value in [
        ("network.retries", "5"),
        ("network.timeout", "120"),
        ("network.backoff", "0.5"),
        ("duomi.poll_interval", " 3 "),
        ("openai.model", "nano-banana-2"),
        ("default.size", "2k"),
    ]:
        result = run_cli(["config", "set", key, value])
        assert result.exit_code == 0, result.stderr
    # New keys go after those already there, so a file written by hand keeps its order.
    assert config_file().read_text() == (
        "[network]\n"
        "retries = 5\n"
        "timeout = 120.0\n"
        "backoff = 0.5\n"
        "\n"
        "[duomi]\n"
        "poll_interval = 3.0\n"
        "\n"
        "[openai]\n"
        'model = "nano-banana-2"\n'
        "\n"
        "[default]\n"
        'size = "2K"\n'
    )
    assert run_cli(["config", "list"]).stdout.splitlines()[-3:] == [
        "network.timeout = 120  (file)",
        "network.retries = 5  (file)",
        "network.backoff = 0.5  (file)",
    ]


def test_values_written_as_text_by_earlier_versions_still_count(sample: Path) -> None:
    config_file().parent.mkdir(mode=0o700)
    config_file().write_text(
        '[network]\nretries = "7"\ntimeout = "60"\n[duomi]\npoll_interval = "0.5"\n'
    )
    config_file().chmod(0o600)
    listing = run_cli(["config", "list"]).stdout.splitlines()
    assert "duomi.poll_interval = 0.5  (file)" in listing
    assert listing[-3:-1] == ["network.timeout = 60  (file)", "network.retries = 7  (file)"]
    # Setting another key keeps them as they were written.
    assert run_cli(["config", "set", "network.backoff", "2"]).exit_code == 0
    assert config_file().read_text() == (
        '[network]\nretries = "7"\ntimeout = "60"\nbackoff = 2.0\n\n[duomi]\npoll_interval = "0.5"\n'
    )
    run = run_cli(["edit", "cat.png", "-p", "x", "--sandbox", "--json"])
    assert run.exit_code == 0, run.stderr


def test_the_help_of_retries_states_the_limit_the_rule_keeps() -> None:
    words = " ".join(run_cli(["edit", "--help"]).stdout.split())
    assert f"Times a failed request is sent again, 0 to {MAX_RETRIES} (default 3" in words


# Reading a key from the terminal


def read_until(fd: int, wanted: bytes | None, seconds: float = 30) -> bytes:
    """What the terminal shows until ``wanted`` appears (None: until the program closes it)."""
    seen = b""
    deadline = time.monotonic() + seconds
    while wanted is None or wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"waited {seconds} s for {wanted!r}; the terminal showed {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every program holding the terminal has closed it
            chunk = b""
        if not chunk:
            assert wanted is None, f"the terminal closed before {wanted!r}: {seen!r}"
            break
        seen += chunk
    return seen


def test_a_key_typed_at_a_terminal_is_not_shown() -> None:
    controller, terminal = pty.openpty()

    def take_the_terminal() -> None:
        # A session of its own with the pseudo-terminal as its controlling terminal, so that
        # /dev/tty is this terminal, as in a shell.
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [NANOEDIT, "config", "set", "openai.api_key", "-"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
        preexec_fn=take_the_terminal,
    )
    os.close(terminal)
    try:
        shown = read_until(controller, b"openai.api_key (typing is not shown): ")
        os.write(controller, b"sk-typed-at-a-terminal-0042\n")
        shown += read_until(controller, None)
        assert process.wait(timeout=30) == 0, shown
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    assert b"sk-typed" not in shown and b"0042" not in shown
    assert shown.decode().replace("\r\n", "\n") == (
        f"openai.api_key (typing is not shown): \n"
        f"set openai.api_key = (hidden) in {config_file()}\n"
    )
    assert tomllib.loads(config_file().read_text()) == {
        "openai": {"api_key": "sk-typed-at-a-terminal-0042"}
    }


def test_a_key_from_a_pipe_is_read_without_a_prompt() -> None:
    result = run_cli(["config", "set", "duomi.api_key", "-"], stdin="dk-from-a-pipe-0007\n")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == f"set duomi.api_key = (hidden) in {config_file()}\n"
    assert tomllib.loads(config_file().read_text()) == {"duomi": {"api_key": "dk-from-a-pipe-0007"}}


# Settings that cannot work together


def test_a_default_size_the_default_models_cannot_render_is_refused() -> None:
    # Every backend's default model is nano-banana; on duomi that is its NB2, which renders
    # 1K only (no size field), while every other backend's renders 1K, 2K and 4K.
    backends = backend_classes()
    assert {b.default_model for b in backends} == {"nano-banana"}
    partly = run_cli(["config", "set", "default.size", "2K"])
    assert (partly.exit_code, partly.stderr) == (0, (
        "warning: default.size 2K cannot be rendered by duomi.model nano-banana (1K only), so "
        "jobs sent to duomi would fail; set duomi.model to nano-banana-pro\n"
        f"set default.size = 2K in {config_file()}\n"
    ))  # fmt: skip
    assert run_cli(["config", "unset", "default.size"]).exit_code == 0
    # With duomi the one backend in use, every run would fail: refused.
    env = {"NANOEDIT_BACKEND": "duomi"}
    refused = run_cli(["config", "set", "default.size", "2K"], env=env)
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr == (
        "error: default.size 2K cannot be rendered by duomi.model nano-banana (1K only), so "
        "every run would fail; set duomi.model to nano-banana-pro first, or leave default.size "
        "unset and pass --size with --model when you need it\n"
    )
    assert not config_file().exists() or "size" not in config_file().read_text()
    assert run_cli(["config", "set", "duomi.model", "nano-banana-pro"], env=env).exit_code == 0
    kept = run_cli(["config", "set", "default.size", "4k"], env=env)
    assert (kept.exit_code, kept.stderr) == (0, f"set default.size = 4K in {config_file()}\n")
    # Going back to a 1K-only model is refused in turn, naming the setting.
    back = run_cli(["config", "set", "duomi.model", "nano-banana-2"], env=env)
    assert (back.exit_code, back.stderr) == (2, (
        "error: default.size 4K cannot be rendered by duomi.model nano-banana-2 (1K only), so "
        "every run would fail; choose a model that renders 4K for duomi.model "
        "(nano-banana-pro), or first remove default.size: nanoedit config unset default.size\n"
    ))  # fmt: skip
    assert tomllib.loads(config_file().read_text()) == {
        "default": {"size": "4K"},
        "duomi": {"model": "nano-banana-pro"},
    }


def test_only_the_backends_in_use_count() -> None:
    # Only the URL-list backend has a key: its model is the one every run would use.
    env = {"NANOEDIT_DUOMI_API_KEY": "dk-some-key-0001", "NANOEDIT_OPENAI_MODEL": "nano-banana-2"}
    refused = run_cli(["config", "set", "default.size", "2K"], env=env)
    assert (refused.exit_code, refused.stderr) == (2, (
        "error: default.size 2K cannot be rendered by duomi.model nano-banana (1K only), so "
        "every run would fail; set duomi.model to nano-banana-pro first, or leave default.size "
        "unset and pass --size with --model when you need it\n"
    ))  # fmt: skip
    # With the multipart backend chosen, only its model counts.
    assert run_cli(["config", "set", "default.backend", "openai"], env=env).exit_code == 0
    kept = run_cli(["config", "set", "default.size", "2K"], env=env)
    assert (kept.exit_code, kept.stderr) == (0, f"set default.size = 2K in {config_file()}\n")


# A file written by hand


def test_unknown_keys_in_the_file_draw_a_warning_naming_each(sample: Path) -> None:
    config_file().parent.mkdir(mode=0o700)
    config_file().write_text(
        'colour = "blue"\n\n[openai]\nmodle = "nano-banana-2"\n\n[default]\nretries = 5\n'
    )
    config_file().chmod(0o600)
    warning = (
        f"warning: the config file {config_file()} has keys nanoedit does not know, and "
        "ignores: colour, openai.modle (did you mean openai.model?), default.retries (did you "
        "mean network.retries?); correct or remove them"
    )
    for args in (
        ["config", "list"],
        ["config", "get", "openai.model"],
        ["config", "set", "default.ratio", "3:2"],
        ["config", "unset", "default.ratio"],
        ["edit", "cat.png", "-p", "x", "--sandbox"],
    ):
        result = run_cli(args)
        assert result.exit_code == 0, (args, result.stderr)
        assert result.stderr.splitlines()[0] == warning, args
    # Kept as they were: they may be meant for another version.
    assert tomllib.loads(config_file().read_text()) == {
        "colour": "blue",
        "openai": {"modle": "nano-banana-2"},
        "default": {"retries": 5},
    }
    config_file().write_text('[duomi]\napi_key = "dk-0001"\nbase-url = "https://gw.example"\n')
    one = run_cli(["config", "list"])
    assert one.stderr == (
        f"warning: the config file {config_file()} has a key nanoedit does not know, and "
        "ignores: duomi.base-url (did you mean duomi.base_url?); correct or remove it\n"
    )


BROKEN = b'[openai\napi_key = "sk-half-written-0009"\n'


def test_set_over_a_file_that_is_not_toml_keeps_a_copy_and_starts_afresh(sample: Path) -> None:
    config_file().parent.mkdir(mode=0o700)
    config_file().write_bytes(BROKEN)
    config_file().chmod(0o600)
    with pytest.raises(tomllib.TOMLDecodeError) as caught:
        tomllib.loads(BROKEN.decode())
    refusal = f"error: the config file {config_file()} is not valid TOML ({caught.value}); fix it"
    # Commands that only read it refuse it, as does unset, which cannot know what it holds.
    for args in (
        ["config", "list"],
        ["config", "get", "openai.model"],
        ["config", "unset", "openai.api_key"],
        ["edit", "cat.png", "-p", "x", "--sandbox"],
    ):
        result = run_cli(args)
        assert result.exit_code == 3, args
        assert result.stderr.startswith(refusal), (args, result.stderr)
    assert sorted(path.name for path in config_file().parent.iterdir()) == ["config.toml"]

    result = run_cli(["config", "set", "openai.model", "nano-banana-2"])
    assert (result.exit_code, result.stdout) == (0, "")
    [copy] = config_file().parent.glob("config.toml.broken-*")
    assert re.fullmatch(r"config\.toml\.broken-\d{8}-\d{6}", copy.name), copy.name
    assert (copy.read_bytes(), stat.S_IMODE(copy.stat().st_mode)) == (BROKEN, 0o600)
    assert result.stderr == (
        f"warning: the config file {config_file()} was not valid TOML ({caught.value}); kept it "
        f"as {copy} and wrote a new one with only openai.model\n"
        f"set openai.model = nano-banana-2 in {config_file()}\n"
    )
    assert tomllib.loads(config_file().read_text()) == {"openai": {"model": "nano-banana-2"}}
    assert run_cli(["edit", "cat.png", "-p", "x", "--sandbox"]).exit_code == 0


def test_broken_copies_made_in_the_same_second_do_not_replace_each_other(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    when = time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1))
    first = keep_broken_copy(path, b"one", now=when)
    second = keep_broken_copy(path, b"two", now=when)
    assert (first.name, second.name) == (
        "config.toml.broken-20260102-030405",
        "config.toml.broken-20260102-030405-2",
    )
    assert (first.read_bytes(), second.read_bytes()) == (b"one", b"two")


# Unknown keys on the command line


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("openai.modle", "did you mean openai.model? "),
        ("OpenAI.API-Key", "did you mean openai.api_key? "),
        ("default.retries", "did you mean network.retries? "),
        ("timeout", "did you mean upload.timeout or network.timeout? "),
        (
            "default.model",
            # Every registered backend's model key: the one edit away from default.model.
            f"did you mean {' or '.join(f'{name}.model' for name in backend_names())}? ",
        ),
        ("colour", ""),
    ],
)
def test_an_unknown_key_names_the_closest_and_every_known_one(key: str, hint: str) -> None:
    for args in (["set", key, "x"], ["get", key], ["unset", key]):
        result = run_cli(["config", *args])
        assert (result.exit_code, result.stdout, result.stderr) == (
            2, "", f"error: unknown config key {key!r}; {hint}known keys: {', '.join(all_keys())}\n"
        ), args  # fmt: skip


# Help and messages that say what the program does


def test_a_bad_size_lists_the_sizes_as_they_are_written(sample: Path) -> None:
    for args in (["generate", "-p", "x"], ["edit", "cat.png", "-p", "x"]):
        result = run_cli([*args, "--size", "8k", "--sandbox"])
        assert (result.exit_code, result.stdout, result.stderr) == (
            2, "", "error: --size: invalid size '8k'; use one of: 512, 1K, 2K, 4K\n"
        )  # fmt: skip
    fine = run_cli(
        # The gateway's nano-banana-2 renders 2K (its nano-banana-pro has no size field).
        ["generate", "-p", "x", "--size", "2k", "--model", "nano-banana-2", "--sandbox"]
    )
    assert (fine.exit_code, fine.stdout) == (0, "x.jpg\n"), fine.stderr
    with Image.open("x.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (2048, 2048))


def test_sizes_still_complete_in_the_shell() -> None:
    result = subprocess.run(
        [NANOEDIT],
        env=os.environ
        | {
            "_NANOEDIT_COMPLETE": "complete_bash",
            "COMP_WORDS": "nanoedit generate --size ",
            "COMP_CWORD": "3",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["512", "1K", "2K", "4K"]


def test_sandbox_waits_show_seconds_in_the_help() -> None:
    words = " ".join(run_cli(["sandbox", "serve", "--help"]).stdout.split())
    assert "--latency SECONDS Seconds each API answer takes at least." in words
    assert "--task-seconds SECONDS How long a URL-list task runs." in words
    assert "range" not in words


def test_the_help_of_shard_says_it_takes_every_nth_job(served: Served) -> None:
    words = " ".join(run_cli(["edit", "--help"]).stdout.split())
    assert (
        "--shard K/N Run only every N-th job from the K-th (positions K, K+N, K+2N… of the "
        "job list)."
    ) in words
    for name in ("a.png", "b.png", "c.png", "d.png", "e.png"):
        Path(name).write_bytes(sample_image("cat.png")[0])
    env = {"NANOEDIT_OPENAI_BASE_URL": served.base_url, "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY}
    result = run_cli(["edit", "a.png", "b.png", "c.png", "d.png", "e.png", "-p", "x",
                      "--shard", "2/2"], env=env)  # fmt: skip
    # Jobs finish in any order; which ones ran is the point.
    assert result.exit_code == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["b-edit.jpg", "d-edit.jpg"]
