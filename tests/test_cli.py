"""The command line as a whole: generate, exit codes, bad input, -o, the in-process sandbox."""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    OPENAI_KEY,
    Served,
    SkippingClock,
    backend_env,
    error_object,
    one_backend_env,
    run_cli,
)
from PIL import Image

import nanoedit.backends
from nanoedit import __version__
from nanoedit.backends.base import backend_class
from nanoedit.backends.registry import REGISTRY, backend_names
from nanoedit.cli.app import _name, app, app_for
from nanoedit.net.client import LazyTransport, make_client, pieces


def test_generate_sends_json_and_names_the_file_after_the_prompt(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox in snow", "--ratio", "3:2", "--size", "1K"],
        env=backend_env(served),
    )
    assert (result.exit_code, result.stdout) == (0, "a-red-fox-in-snow.jpg\n"), result.stderr
    post = served.sandbox.received[0]
    assert (post.path, post.headers["authorization"]) == (
        "/v1/images/generations",
        f"Bearer {OPENAI_KEY}",
    )
    assert post.json == {
        "model": "nano-banana-2", "prompt": "a red fox in snow", "n": 1,
        "response_format": "url", "aspect_ratio": "3:2", "image_size": "1K",
    }  # fmt: skip
    with Image.open("a-red-fox-in-snow.jpg") as image:
        assert image.size == (1264, 848)


def test_output_option_writes_exactly_there_and_refuses_to_overwrite(served: Served) -> None:
    env = backend_env(served)
    first = run_cli(["generate", "-p", "fox", "-o", "fox.png"], env=env)
    assert (first.exit_code, first.stdout) == (0, "fox.png\n"), first.stderr
    before = Path("fox.png").read_bytes()
    again = run_cli(["generate", "-p", "fox", "-o", "fox.png"], env=env)
    assert (again.exit_code, again.stdout) == (4, "")
    assert again.stderr.strip() == (
        "error: fox.png already exists; pass --overwrite to replace it, or choose another -o"
    )
    assert len(served.sandbox.received) == 2  # the refused run sent nothing
    assert Path("fox.png").read_bytes() == before
    forced = run_cli(["generate", "-p", "fox", "--ratio", "16:9", "-o", "fox.png", "--overwrite"],
                     env=env)  # fmt: skip
    assert forced.exit_code == 0
    with Image.open("fox.png") as image:
        assert image.size == (1376, 768)


def test_output_option_with_several_images_is_a_usage_error(served: Served) -> None:
    result = run_cli(["generate", "-p", "fox", "-n", "2", "-o", "fox.png"], env=backend_env(served))
    assert result.exit_code == 2
    assert (
        "-o/--output names one file, but this run makes 2 images for it; use -d/--out-dir"
        in result.stderr
    )
    assert served.sandbox.received == []


@pytest.mark.parametrize(
    ("setup", "args", "code", "message"),
    [
        (None, ["edit", "missing.png", "-p", "x"], 4, "error: missing.png: no such file; check the path"),
        ("dir", ["edit", "folder", "-p", "x"], 4,
         "error: the folder folder holds no images (add --recursive to look in its subfolders); "
         "pass image files"),
        ("pdf", ["edit", "doc.png", "-p", "x"], 4,
         "error: doc.png is not an image (it starts like a PDF); pass a PNG, JPEG or WebP file"),
        ("empty", ["edit", "empty.png", "-p", "x"], 4,
         "error: empty.png is not an image (it is empty); pass a PNG, JPEG or WebP file"),
        (None, ["edit", "file:///tmp/cat.png", "-p", "x"], 4,
         "error: file:///tmp/cat.png uses the file: scheme; nanoedit reads local files and http(s) "
         "URLs only (for a local file, pass its path)"),
        (None, ["generate", "-p", "   "], 2, "error: the prompt is empty; say what you want with -p \"...\""),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_any_request(
    served: Served, setup: str | None, args: list[str], code: int, message: str
) -> None:
    if setup == "dir":
        Path("folder").mkdir()
    elif setup == "pdf":
        Path("doc.png").write_bytes(b"%PDF-1.7\n%binary")
    elif setup == "empty":
        Path("empty.png").write_bytes(b"")
    result = run_cli(args, env=backend_env(served))
    assert (result.exit_code, result.stdout, result.stderr.strip()) == (code, "", message)
    assert served.sandbox.received == []


def test_bad_option_values_exit_2(sample: Path) -> None:
    ratio = run_cli(["edit", "cat.png", "-p", "x", "--ratio", "7:3"])
    assert ratio.exit_code == 2
    assert "7:3" in ratio.stderr
    count = run_cli(["edit", "cat.png", "-p", "x", "-n", "0"])
    assert count.exit_code == 2


def test_no_backend_configured_exits_3_naming_the_command(sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x"])
    assert (result.exit_code, result.stdout) == (3, "")
    # Every registered backend that takes a local file, in registry order: its setup command.
    backends = [backend_class(name) for name in backend_names()]
    takes_files = [backend.setup_hint() for backend in backends if backend.takes.files]
    assert takes_files[0] == (
        "nanoedit config set openai.base_url https://YOUR-SERVER && nanoedit config set "
        "openai.api_key YOUR-KEY"
    )
    assert result.stderr.strip() == (
        f"error: no backend is configured for cat.png; run: {', or: '.join(takes_files)} "
        "(or try it with no key: add --sandbox)"
    )
    urls = run_cli(["edit", "https://h.example/a.png", "-p", "x"])
    assert urls.exit_code == 3
    # An API that fetches the URLs itself is the first advice; each backend is named once.
    fetching = [backend.setup_hint() for backend in backends if backend.takes.fetches]
    others = [backend.setup_hint() for backend in backends if not backend.takes.fetches]
    assert fetching[0] == "nanoedit config set duomi.api_key YOUR-KEY"
    assert urls.stderr.strip() == (
        "error: no backend is configured for https://h.example/a.png; run: "
        f"{', or: '.join(fetching + others)} (or try it with no key: add --sandbox)"
    )
    # With only a Gemini key (by Google's own variable), edits and generations go to Gemini.
    key = {"GEMINI_API_KEY": "AIza-test-key-0123456789"}
    for args in (["generate", "-p", "x"], ["edit", "cat.png", "-p", "x"]):
        planned = run_cli([*args, "--dry-run"], env=key)
        assert planned.exit_code == 0, planned.stderr
        assert planned.stdout.splitlines()[0].endswith("(gemini, gemini-nano-banana-2.1)")
        assert "https://generativelanguage.googleapis.com/v1beta/models/" in planned.stdout


def test_json_failure_record_still_comes(sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "missing.png", "-p", "x", "--json", "--sandbox"])
    assert result.exit_code == 7
    records = sorted(
        (json.loads(line) for line in result.stdout.splitlines()), key=lambda r: r["inputs"]
    )
    assert [(r["ok"], r["inputs"]) for r in records] == [
        (True, ["cat.png"]),
        (False, ["missing.png"]),
    ]
    assert records[1]["error"] == error_object(
        "input", "missing.png: no such file; check the path", 4
    )
    assert records[1]["outputs"] == []


def test_in_process_sandbox_needs_no_key_and_no_network(sample: Path, clock: SkippingClock) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "make it a watercolor", "--ratio", "16:9", "--sandbox"],
        clock=clock,
    )
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    url = run_cli(["edit", "https://example.com/dog.jpg", "-p", "add a hat", "--ratio", "21:9",
                   "--size", "4K", "--model", "gemini-3-pro-image-preview"],
                  env={"NANOEDIT_SANDBOX": "1", "NANOEDIT_DUOMI_POLL_INTERVAL": "0.5"},
                  clock=clock)  # fmt: skip
    assert (url.exit_code, url.stdout) == (0, "dog-edit.jpg\n"), url.stderr
    with Image.open("dog-edit.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (6336, 2688))


def test_version_and_help_do_not_load_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from nanoedit.cli.app import main\n"
        "sys.argv = ['nanoedit', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('httpx', 'PIL', 'rich', 'nanoedit.run.runner') if m in sys.modules))\n"
    )
    for args in (["--help"], ["--version"], ["edit", "--help"]):
        out = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
        )
        assert out.stdout.splitlines()[-1] == "[]"
    assert run_cli(["--version"]).stdout == f"nanoedit {__version__}\n"


# Runs the console script's entry point in a fresh interpreter (stdout and stderr are pipes,
# not a terminal), then prints which of the watched modules the run loaded, last.
LOADED_MODULES = (
    "import sys\n"
    "watched = sys.argv[1].split(',')\n"
    "sys.argv = ['nanoedit', *sys.argv[2:]]\n"
    "from nanoedit.__main__ import start\n"
    "try:\n    start()\nexcept SystemExit as exc:\n    code = exc.code\n"
    "print(code, sorted(m for m in watched if m in sys.modules))\n"
)


def loaded_modules(
    args: list[str], watched: tuple[str, ...], env: dict[str, str]
) -> tuple[list[str], str]:
    """The lines a run printed on stdout, the last one its exit code and the watched modules
    it loaded; and what it printed on stderr."""
    out = subprocess.run(
        [sys.executable, "-c", LOADED_MODULES, ",".join(watched), *args],
        capture_output=True, text=True, check=True, env=os.environ | env, timeout=60,
    )  # fmt: skip
    return out.stdout.splitlines(), out.stderr


def test_an_edit_off_a_terminal_loads_no_rich_and_no_pillow(served: Served, sample: Path) -> None:
    # PNG's and JPEG's structure is checked without Pillow, and plain text needs no rich; an
    # answer too short to hold base64 worth streaming loads no streaming decoder, and one
    # job says no estimate (no price table).
    env = backend_env(served)
    watched = ("rich", "PIL", "httpx", "nanoedit.b64stream", "nanoedit.run.budget")
    for name in ("cat.png", "dog.jpg"):
        run_cli(["sandbox", "sample", name, "-o", name])
        lines, stderr = loaded_modules(["edit", name, "-p", "add a hat"], watched, env)
        stem = name.split(".")[0]
        assert lines == [f"{stem}-edit.jpg", "0 ['httpx']"], stderr
        assert stderr == f"saved {stem}-edit.jpg (1200x896 JPEG) from {name}\n"
    with Image.open("dog-edit.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (1200, 896))
    assert [post.path for post in served.sandbox.received if post.method == "POST"] == [
        "/v1/images/edits", "/v1/images/edits"
    ]  # fmt: skip


# Every module of the backends' package, loaded or not by a run.
BACKEND_MODULES = tuple(
    f"nanoedit.backends.{module.name}"
    for module in pkgutil.iter_modules(nanoedit.backends.__path__)
)
# The gemini backend is its module, the one that reads Google's errors (gemini_errors) and the
# one that holds its conversations (gemini_history).
GEMINI_ALONE = [
    "nanoedit.backends.base",
    "nanoedit.backends.gemini",
    "nanoedit.backends.gemini_errors",
    "nanoedit.backends.gemini_history",
    "nanoedit.backends.gemini_tiers",
    "nanoedit.backends.registry",
]


def test_an_edit_on_a_named_backend_loads_that_backend_alone(served: Served, sample: Path) -> None:
    # The settings build a backend's keys from its class when first asked for: a run that
    # names its backend imports that one module (and the base every backend is built on, and
    # the registry, which declares them all and imports none).
    env = one_backend_env(served, "gemini")
    for args, more in ((["--backend", "gemini"], {}), ([], {"NANOEDIT_BACKEND": "gemini"})):
        lines, stderr = loaded_modules(
            ["edit", "cat.png", "-p", "add a hat", *args], BACKEND_MODULES, env | more
        )
        assert lines[-1] == f"0 {GEMINI_ALONE}", stderr
    # Named in the config file; the file's keys of other backends load nothing either.
    for key, value in (("default.backend", "gemini"), ("fal.api_key", "unused")):
        assert run_cli(["config", "set", key, value]).exit_code == 0
    lines, stderr = loaded_modules(["edit", "cat.png", "-p", "add a hat"], BACKEND_MODULES, env)
    assert lines[-1] == f"0 {GEMINI_ALONE}", stderr
    posts = [post.path for post in served.sandbox.received if post.method == "POST"]
    assert len(posts) == 3 and all(path.endswith(":generateContent") for path in posts)


def test_an_edit_on_auto_loads_the_backends_up_to_the_one_it_chooses(
    served: Served, sample: Path
) -> None:
    # Automatic selection reads the backends in registry order and stops at the first that is
    # configured and takes the job: none after it is imported.
    registered = [entry.implementation.partition(":")[0] for entry in REGISTRY.values()]

    def loaded_backends(configured: str) -> list[str]:
        env = one_backend_env(served, configured)
        lines, stderr = loaded_modules(["edit", "cat.png", "-p", "add a hat"], BACKEND_MODULES, env)
        code, _, modules = lines[-1].partition(" ")
        assert code == "0", stderr
        return [name for name in registered if name in ast.literal_eval(modules)]

    gemini = registered.index("nanoedit.backends.gemini")
    assert loaded_backends("gemini") == registered[: gemini + 1]
    assert loaded_backends(next(iter(REGISTRY))) == registered[:1]


def test_a_run_freezes_its_imports_and_leaves_the_collector_on(sample: Path) -> None:
    # What the run imported is out of the collector's sight (the full collection at exit
    # skips it), and what the run makes is collected as usual.
    code = (
        "import gc, sys\n"
        "sys.argv = ['nanoedit', 'edit', 'cat.png', '-p', 'add a hat', '--dry-run']\n"
        "from nanoedit.__main__ import start\n"
        "try:\n    start()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "frozen = gc.get_freeze_count()\n"
        "print(code, gc.isenabled(), frozen > 10_000, len(gc.get_objects()) < frozen)\n"
    )
    env = os.environ | {
        "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY,
        "NANOEDIT_OPENAI_BASE_URL": "http://127.0.0.1:9",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.splitlines()[-1] == "0 True True True", out.stderr


def test_the_console_script_ends_without_the_interpreters_teardown(
    served: Served, sample: Path
) -> None:
    # Every output is flushed and the exit code kept, yet an exit handler (which the teardown
    # would run) never runs: the process ends at once.
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('torn down', file=sys.stderr))\n"
        "sys.argv = ['nanoedit', *sys.argv[1:]]\n"
        "from nanoedit.__main__ import main\n"
        "main()\n"
    )
    env = os.environ | backend_env(served)
    args = [sys.executable, "-c", code]
    done = subprocess.run([*args, "edit", "cat.png", "-p", "a hat", "--json"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (done.returncode, done.stderr) == (
        0,
        "saved cat-edit.jpg (1200x896 JPEG) from cat.png\n",
    )
    record = json.loads(done.stdout)
    assert (record["ok"], record["outputs"][0]["path"]) == (True, "cat-edit.jpg")
    refused = subprocess.run([*args, "edit", "cat.png", "-p", "a hat"], env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 0  # cat-edit-2.jpg: a second result beside the first
    missing = subprocess.run([*args, "edit", "nope.png", "-p", "a hat"], env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (missing.returncode, missing.stderr) == (
        4,
        "error: nope.png: no such file; check the path\n",
    )
    assert "torn down" not in missing.stderr
    # A message for SystemExit that is not a number takes the usual way out, handlers run.
    usual = subprocess.run(
        [sys.executable, "-c", "import atexit, sys\n"
         "atexit.register(lambda: print('torn down', file=sys.stderr))\n"
         "from nanoedit.__main__ import _leave\n_leave(SystemExit('bye'))\n"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (usual.returncode, usual.stderr) == (1, "bye\ntorn down\n")


def test_only_the_command_named_is_turned_into_a_parser() -> None:
    # Typer makes a parser of every command it is given before it parses: a run is given
    # the command it names, and nothing else.
    assert [_name(c) for c in app_for(["edit", "x.png"]).registered_commands] == ["edit"]
    assert app_for(["edit"]).registered_groups == []
    config = app_for(["config", "list"])
    assert (config.registered_commands, [g.name for g in config.registered_groups]) == (
        [], ["config"]
    )  # fmt: skip
    # No arguments, an option first, or no such command: the whole app, which lists them all.
    for args in ([], ["--help"], ["edt"], ["-V"]):
        assert app_for(args) is app
    assert [_name(c) for c in app.registered_commands] == [
        "edit", "generate", "chat", "fetch", "resume", "batches", "models", "presets", "mcp",
        "completion",
        "schema", "skill",
    ]  # fmt: skip
    assert [g.name for g in app.registered_groups] == ["config", "sandbox", "history"]


def test_a_command_parsed_alone_says_what_the_whole_app_says() -> None:
    # The console script (one command parsed) and the whole app say the same, to the byte:
    # help, usage errors, and the suggestion for a mistyped command.
    nanoedit = str(Path(sys.executable).parent / "nanoedit")
    whole_app = (
        "import sys\nfrom nanoedit.cli.app import app\napp(sys.argv[1:], prog_name='nanoedit')\n"
    )
    for args in (["edit", "--help"], ["config", "set", "--help"], ["generate", "--nope"],
                 ["history", "--help"], ["edt"]):  # fmt: skip
        alone, whole = (
            subprocess.run(command, capture_output=True, text=True, timeout=60)
            for command in ([nanoedit, *args], [sys.executable, "-c", whole_app, *args])
        )
        assert (alone.returncode, alone.stdout, alone.stderr) == (
            whole.returncode, whole.stdout, whole.stderr
        ), args  # fmt: skip
        assert alone.stdout or alone.stderr
    assert "No such command 'edt'. Did you mean 'edit'?" in alone.stderr


def test_no_proxy_alone_leaves_plain_http_without_certificates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # NO_PROXY names hosts to exempt, not a proxy: the certificate bundle (about 20 ms to
    # load) still waits for the first https request.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with make_client() as client:
        transport = client._transport
        assert isinstance(transport, LazyTransport)
        assert transport._inner is None


def test_a_body_goes_out_in_whole_pieces_small_parts_together() -> None:
    # A multipart body's small chunks (boundary, headers, a field) join the next piece; a
    # large chunk is cut; nothing is lost or reordered; only the last piece is short.
    chunks = [b"--b\r\n", b"name=x\r\n", b"F" * 10, b"", b"\r\n--b--\r\n"]
    assert list(pieces(chunks, 8)) == [
        b"--b\r\nnam", b"e=x\r\nFFF", b"FFFFFFF\r", b"\n--b--\r\n"
    ]  # fmt: skip
    assert list(pieces([b"A" * 16], 8)) == [b"A" * 8, b"A" * 8]
    assert list(pieces([b"ab", b"cd"], 8)) == [b"abcd"]
    assert list(pieces([], 8)) == list(pieces([b""], 8)) == []
    rng = random.Random(7)
    for _ in range(300):
        given = [rng.randbytes(rng.choice([0, 1, 7, 8, 9, 30])) for _ in range(rng.randrange(6))]
        out = list(pieces(given, 8))
        assert b"".join(out) == b"".join(given)
        assert all(len(piece) == 8 for piece in out[:-1])
        assert all(0 < len(piece) <= 8 for piece in out)


def test_a_dry_run_loads_no_http_stack(sample: Path) -> None:
    env = {"NANOEDIT_OPENAI_API_KEY": OPENAI_KEY, "NANOEDIT_OPENAI_BASE_URL": "http://127.0.0.1:9"}
    lines, stderr = loaded_modules(
        ["edit", "cat.png", "-p", "add a hat", "--dry-run"], ("httpx", "httpcore", "PIL"), env
    )
    assert lines[0] == "# cat.png -> cat-edit (openai, nano-banana-2)", stderr
    assert lines[-1] == "0 []"


def test_a_sandbox_run_loads_no_transport(sample: Path) -> None:
    # The in-process sandbox answers through httpx alone: httpcore (about 12 ms) stays out,
    # whether --sandbox or NANOEDIT_SANDBOX asked for it.
    for args, env in ((["--sandbox"], {}), ([], {"NANOEDIT_SANDBOX": "1"})):
        lines, stderr = loaded_modules(
            ["edit", "cat.png", "-p", "add a hat", *args], ("httpx", "httpcore"), env
        )
        assert lines[-1] == "0 ['httpx']", stderr
    assert sorted(os.listdir()) == ["cat-edit-2.jpg", "cat-edit.jpg", "cat.png"]


def test_an_error_found_before_any_request_loads_no_network_module() -> None:
    # Two uses of stdin: refused by the command itself, before the run is set up.
    code = (
        "import sys\n"
        "from nanoedit.cli.app import main\n"
        "sys.argv = ['nanoedit', 'edit', '-', '--ref', '-', '-p', 'x']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    print(exc.code)\n"
        "print(sorted(m for m in sys.modules if m in ('httpx', 'PIL', 'nanoedit.run.runner')"
        " or m.startswith('nanoedit.backends')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr == (
        "error: INPUT - and --ref - both read stdin, which can be read only once; save all but "
        "one of them to a file and name it\n"
    )
    assert out.stdout.splitlines() == ["2", "[]"]


def test_completion_scripts_are_current() -> None:
    folder = Path(__file__).parent.parent / "completions"
    for shell in ("bash", "zsh", "fish"):
        result = run_cli(["completion", shell])
        assert result.exit_code == 0
        assert (folder / f"nanoedit.{shell}").read_text() == result.stdout, (
            f"completions/nanoedit.{shell} is stale; regenerate: nanoedit completion {shell} > "
            f"completions/nanoedit.{shell}"
        )


@pytest.mark.parametrize(
    ("args", "configured", "setting", "expected"),
    [
        (["edit", "cat.png"], ("openai", "duomi"), None, "/v1/images/edits"),
        (["edit", "URL"], ("openai", "duomi"), None, "/api/gemini/nano-banana-edit"),
        (["edit", "URL"], ("openai",), None, "/v1/images/edits"),
        (["edit", "URL", "--ref", "cat.png"], ("openai", "duomi"), None, "/v1/images/edits"),
        (["edit", "URL"], ("openai", "duomi"), "openai", "/v1/images/edits"),
        (["generate"], ("openai", "duomi"), None, "/v1/images/generations"),
        (["generate"], ("duomi",), None, "/api/gemini/nano-banana"),
        (["generate"], ("openai", "duomi"), "duomi", "/api/gemini/nano-banana"),
    ],
)
def test_backend_selection(
    served: Served,
    sample: Path,
    args: list[str],
    configured: tuple[str, ...],
    setting: str | None,
    expected: str,
) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    env = backend_env(served, openai="openai" in configured, duomi="duomi" in configured)
    if setting:
        assert run_cli(["config", "set", "default.backend", setting]).exit_code == 0
    argv = [url if arg == "URL" else arg for arg in args] + ["-p", "x"]
    result = run_cli(argv, env=env)
    assert result.exit_code == 0, result.stderr
    posts = [r.path for r in served.sandbox.received if r.method == "POST"]
    assert posts == [expected]


def test_unreachable_server_exits_6(sample: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "NANOEDIT_OPENAI_BASE_URL": f"http://127.0.0.1:{port}",
        "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY,
        "NANOEDIT_BACKOFF": "0.01",
    }
    result = run_cli(["edit", "cat.png", "-p", "x"], env=env)
    assert (result.exit_code, result.stdout) == (6, "")
    *retries, last = result.stderr.splitlines()
    assert [line.split(" in ")[0] for line in retries] == [
        f"warning: cat.png: the edit request on 127.0.0.1:{port}: cannot connect: "
        f"[Errno 111] Connection refused; retry {n} of 3"
        for n in (1, 2, 3)
    ]
    assert last.startswith(
        f"error: the edit request on 127.0.0.1:{port} failed after 4 attempts (cannot connect: "
    )
    assert last.endswith("elapsed); check the address and network, or try again later")
    assert OPENAI_KEY not in result.stderr
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat.png"]
