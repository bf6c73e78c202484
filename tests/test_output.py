"""Where results go, as a Unix tool's user expects: ``-o -`` to stdout, devices and FIFOs
written as they are, ``-o`` names kept exactly, every refusal before a request, reruns that
work, resumed batches that list every result, and ``--print0``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import shlex
import stat
import subprocess
import sys
import threading
from html import unescape
from pathlib import Path

import pytest
from conftest import Served, backend_env, on_pty, run_cli, usage_envelope
from PIL import Image, PngImagePlugin
from readme_help import README

from nanoedit.output.provenance import read as read_provenance
from nanoedit.sandbox import sample_image
from nanoedit.sandbox.render import Picture, render_generate

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
CAT = sample_image("cat.png")[0]


def image_of(data: bytes) -> tuple[str | None, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


def files(folder: str | Path = ".") -> list[str]:
    return sorted(path.name for path in Path(folder).iterdir())


# -o - : the image on stdout ----------------------------------------------------------------


def test_dash_writes_the_image_itself_to_stdout_and_nothing_else(
    served: Served, sample: Path
) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "make it a watercolor", "--ratio", "16:9", "-o", "-"],
        env=backend_env(served),
    )
    assert result.exit_code == 0, result.stderr
    assert image_of(result.stdout_bytes) == ("JPEG", (1376, 768))
    assert result.stderr == "wrote the image to stdout (1376x768 JPEG) from cat.png\n"
    # The provenance is in the bytes, as in a saved file; no file was made, no "-.jpg".
    saved = Path("saved.jpg")
    saved.write_bytes(result.stdout_bytes)
    provenance = read_provenance(saved)
    assert provenance is not None and provenance["prompt"] == "make it a watercolor"
    saved.unlink()
    assert files() == ["cat.png"]
    assert [r.path for r in served.sandbox.received if r.method == "POST"] == ["/v1/images/edits"]


def test_dash_with_no_metadata_is_the_servers_bytes(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a fox", "-o", "-", "--no-metadata", "--response-format", "b64_json"],
        env=backend_env(served),
    )
    assert result.exit_code == 0, result.stderr
    rendered = render_generate(Picture("a fox", (1024, 1024), "image/jpeg")).data
    assert result.stdout_bytes == rendered
    assert files() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cat.png", "-n", "2"],
         "-o - writes one image to stdout, but this run makes 2 images; use -d/--out-dir instead"),
        (["cat.png", "cat.png"],
         "-o - writes one image to stdout, but this run makes 2 images; use -d/--out-dir instead"),
        (["cat.png", "--json"],
         "-o - writes the image itself to stdout, so --json has nowhere to go; give -o FILE, "
         "or leave out --json"),
        (["cat.png", "--sidecar"],
         "--sidecar writes FILE.json beside a saved file, and -o - is not one; leave out "
         "--sidecar, or give -o FILE"),
    ],
    ids=["count", "two-jobs", "json", "sidecar"],
)  # fmt: skip
def test_dash_that_cannot_be_one_image_on_stdout_is_refused_before_sending(
    served: Served, sample: Path, args: list[str], message: str
) -> None:
    result = run_cli(["edit", *args, "-p", "x", "-o", "-"], env=backend_env(served))
    assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")
    if "--json" in args:
        record = json.loads(result.stdout)
        assert record == usage_envelope(message)
    else:
        assert result.stdout == ""
    assert served.sandbox.received == []
    assert files() == ["cat.png"]


def on_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, bytes, str]:
    """Run the installed nanoedit with stdout on a pseudo-terminal: exit code, what reached
    the terminal, stderr."""
    controller, terminal = pty.openpty()
    inherited = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    process = subprocess.Popen(
        [NANOEDIT, *args], cwd=cwd, env=inherited | env,
        stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _, stderr, screen = on_pty(process, controller, terminal)
    return process.returncode, screen, stderr


def test_dash_refuses_to_write_binary_to_a_terminal(served: Served, sample: Path) -> None:
    env = backend_env(served)
    code, screen, stderr = on_terminal(
        ["edit", "cat.png", "-p", "x", "-o", "-"], sample.parent, env
    )
    assert (code, screen) == (2, b"")
    assert stderr == (
        "error: -o - would write the image's binary bytes to the terminal; redirect stdout "
        "(-o - > out.png, or into a program with |), or give -o FILE\n"
    )
    assert served.sandbox.received == []
    code, screen, stderr = on_terminal(["sandbox", "sample", "-o", "-"], sample.parent, env)
    assert (code, screen) == (2, b"")
    assert stderr == (
        "error: -o - would write the image's binary bytes to the terminal; redirect stdout "
        "(-o - > cat.png), or give -o FILE\n"
    )
    assert files(sample.parent) == ["cat.png"]


def test_sandbox_sample_to_stdout_and_to_a_file_named_dash(isolated: Path) -> None:
    result = run_cli(["sandbox", "sample", "dog.jpg", "-o", "-"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout_bytes == sample_image("dog.jpg")[0]
    assert files() == []
    # A file that really is named "-" is ./-, as with curl.
    named = run_cli(["sandbox", "sample", "dog.jpg", "-o", "./-"])
    assert (named.exit_code, named.stdout) == (0, "-\n")
    assert Path("-").read_bytes() == sample_image("dog.jpg")[0]


def test_sandbox_sample_help_says_what_o_is() -> None:
    result = run_cli(["sandbox", "sample", "--help"])
    assert "-o, --output FILE  File to write the sample to (default: NAME; - for stdout)." in (
        result.stdout
    )


# Devices and FIFOs ---------------------------------------------------------------------------


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_dev_null_is_written_to_as_it_is(
    served: Served, sample: Path, overwrite: list[str]
) -> None:
    assert not os.path.lexists("/dev/null.png")
    try:
        result = run_cli(["edit", "cat.png", "-p", "x", "-o", "/dev/null", *overwrite],
                         env=backend_env(served))  # fmt: skip
        assert (result.exit_code, result.stdout) == (0, "/dev/null\n"), result.stderr
        assert result.stderr == "saved /dev/null (1200x896 JPEG) from cat.png\n"
        assert not os.path.lexists("/dev/null.png")
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
        written = run_cli(["sandbox", "sample", "-o", "/dev/null"])
        assert (written.exit_code, written.stdout) == (0, "/dev/null\n")
    finally:
        # Before the fix a file was made beside the device: never leave one there.
        Path("/dev/null.png").unlink(missing_ok=True)
    assert files() == ["cat.png"]


def test_a_fifo_gets_the_image_bytes(served: Served, sample: Path) -> None:
    os.mkfifo("pipe")
    received: list[bytes] = []
    reader = threading.Thread(
        target=lambda: received.append(Path("pipe").read_bytes()), daemon=True
    )
    reader.start()
    result = run_cli(["edit", "cat.png", "-p", "x", "-o", "pipe", "--no-metadata"],
                     env=backend_env(served))  # fmt: skip
    # If nanoedit never opened the FIFO, open it once here so the reader sees its end; if the
    # reader is gone (nanoedit wrote and closed it), there is nothing to do.
    with contextlib.suppress(OSError):
        os.close(os.open("pipe", os.O_WRONLY | os.O_NONBLOCK))
    reader.join(timeout=30)
    assert (result.exit_code, result.stdout) == (0, "pipe\n"), result.stderr
    assert image_of(received[0]) == ("JPEG", (1200, 896))
    assert stat.S_ISFIFO(os.stat("pipe").st_mode)
    assert files() == ["cat.png", "pipe"]


# -o names kept exactly -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "warning"),
    [
        ("result", "JPEG", ""),
        ("result.v2", "JPEG", ""),
        ("o.tif", "TIFF",
         "warning: the server sent JPEG; converted to TIFF for o.tif\n"
         "warning: o.tif holds no provenance: TIFF has no place for it; name the output .png, "
         ".jpg or .webp, or add --sidecar to keep it beside the image\n"),
        ("o.webp", "WEBP", "warning: the server sent JPEG; converted to WEBP for o.webp\n"),
        ("o.heic", "JPEG",
         "warning: the server sent JPEG, and nanoedit cannot convert to HEIC; o.heic holds the "
         "JPEG image as it came\n"),
    ],
)  # fmt: skip
def test_the_output_name_is_used_exactly_as_given(
    served: Served, sample: Path, name: str, fmt: str, warning: str
) -> None:
    env = backend_env(served)
    result = run_cli(["edit", "cat.png", "-p", "x", "-o", name], env=env)
    assert (result.exit_code, result.stdout) == (0, f"{name}\n"), result.stderr
    assert result.stderr == f"{warning}saved {name} (1200x896 {fmt}) from cat.png\n"
    assert files() == sorted(["cat.png", name])
    assert image_of(Path(name).read_bytes()) == (fmt, (1200, 896))
    # A second run is refused before it pays for anything.
    again = run_cli(["edit", "cat.png", "-p", "x", "-o", name], env=env)
    assert (again.exit_code, again.stdout) == (4, "")
    assert again.stderr == (
        f"error: {name} already exists; pass --overwrite to replace it, or choose another -o\n"
    )
    assert len(served.sandbox.received) == 2  # the first run's edit and download


def embedded_record(path: Path) -> dict[str, object]:
    """The provenance JSON inside an image, read back with Pillow alone: PNG's ``nanoedit``
    iTXt chunk, or the ``nanoedit:provenance`` element of a JPEG's or WebP's XMP packet."""
    with Image.open(path) as image:
        if isinstance(image, PngImagePlugin.PngImageFile):
            return dict(json.loads(image.text["nanoedit"]))
        packet = image.info["xmp"]
    text = packet.decode("utf-8") if isinstance(packet, bytes) else packet
    found = re.search(r"<nanoedit:provenance>(.*?)</nanoedit:provenance>", text, re.S)
    assert found, text
    return dict(json.loads(unescape(found.group(1))))


@pytest.mark.parametrize(
    ("name", "model", "sent", "fmt", "size"),
    [
        ("res.webp", "nano-banana-hd", "PNG", "WEBP", (1184, 864)),
        ("res.jpg", "nano-banana-hd", "PNG", "JPEG", (1184, 864)),
        ("res.jpeg", "nano-banana-hd", "PNG", "JPEG", (1184, 864)),
        ("res.png", "nano-banana-pro", "JPEG", "PNG", (1200, 896)),
        ("res.webp", "nano-banana-pro", "JPEG", "WEBP", (1200, 896)),
    ],
)  # fmt: skip
def test_a_converted_output_carries_its_provenance(
    served: Served, sample: Path, name: str, model: str, sent: str, fmt: str, size: tuple[int, int]
) -> None:
    # Before the fix the provenance was added, then the image converted, which dropped it.
    result = run_cli(
        ["edit", "cat.png", "-p", "make it a watercolor", "-m", model, "-o", name],
        env=backend_env(served),
    )
    assert (result.exit_code, result.stdout) == (0, f"{name}\n"), result.stderr
    assert result.stderr == (
        f"warning: the server sent {sent}; converted to {fmt} for {name}\n"
        f"saved {name} ({size[0]}x{size[1]} {fmt}) from cat.png\n"
    )
    assert image_of(Path(name).read_bytes()) == (fmt, size)
    record = embedded_record(Path(name))
    assert (record["prompt"], record["model"], record["backend"]) == (
        "make it a watercolor", model, "openai"
    )  # fmt: skip
    assert record == read_provenance(Path(name))
    assert files() == sorted(["cat.png", name])


def test_a_format_that_holds_no_provenance_says_so(served: Served, sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "-o", "res.bmp"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (0, "res.bmp\n"), result.stderr
    assert result.stderr == (
        "warning: the server sent JPEG; converted to BMP for res.bmp\n"
        "warning: res.bmp holds no provenance: BMP has no place for it; name the output .png, "
        ".jpg or .webp, or add --sidecar to keep it beside the image\n"
        "saved res.bmp (1200x896 BMP) from cat.png\n"
    )
    assert image_of(Path("res.bmp").read_bytes()) == ("BMP", (1200, 896))
    # With --sidecar the record is beside the image, and the warning says where.
    kept = run_cli(
        ["edit", "cat.png", "-p", "x", "-o", "kept.bmp", "--sidecar"], env=backend_env(served)
    )
    assert kept.exit_code == 0, kept.stderr
    assert kept.stderr.splitlines()[1] == (
        "warning: kept.bmp holds no provenance: BMP has no place for it; its sidecar "
        "kept.bmp.json keeps it"
    )
    sidecar = json.loads(Path("kept.bmp.json").read_text(encoding="utf-8"))
    assert (sidecar["format"], sidecar["provenance"]["prompt"]) == ("bmp", "x")


def setup_path(case: str, isolated: Path) -> None:
    if case == "dangling":
        os.symlink(isolated / "elsewhere" / "made.png", "out.png")
    elif case == "exists":
        Path("out.png").write_bytes(b"mine")
    elif case == "under a file":
        Path("notes").write_bytes(b"mine")


@pytest.mark.parametrize(
    ("case", "output", "message"),
    [
        ("dangling", "out.png",
         "out.png is a symbolic link to {tmp}/elsewhere/made.png, which does not exist; "
         "pass --overwrite to replace the link itself, or choose another -o"),
        ("missing folder", "new/out.png",
         "the folder of new/out.png does not exist (new); create it first (mkdir -p new), or "
         "choose another -o"),
        ("unwritable folder", "/proc/sys/out.png",
         "the folder of /proc/sys/out.png (/proc/sys) is not writable; choose another -o"),
        ("under a file", "notes/out.png", "the folder of notes/out.png is not a folder (notes is a file)"),
        ("exists", "out.png", "out.png already exists; pass --overwrite to replace it, or choose another -o"),
    ],
)  # fmt: skip
def test_every_refusal_to_write_comes_before_anything_is_sent(
    served: Served, sample: Path, case: str, output: str, message: str
) -> None:
    setup_path(case, sample.parent)
    before = files()
    result = run_cli(["edit", "cat.png", "-p", "x", "-o", output], env=backend_env(served))
    expected = message.replace("{tmp}", str(sample.parent))
    assert (result.exit_code, result.stdout, result.stderr) == (4, "", f"error: {expected}\n")
    assert served.sandbox.received == []
    assert files() == before


def test_overwrite_replaces_a_dangling_link_and_never_follows_it(
    served: Served, sample: Path
) -> None:
    os.symlink(sample.parent / "elsewhere" / "made.png", "out.png")
    result = run_cli(["edit", "cat.png", "-p", "x", "-o", "out.png", "--overwrite"],
                     env=backend_env(served))  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, "out.png\n"), result.stderr
    assert not Path("out.png").is_symlink()
    assert image_of(Path("out.png").read_bytes()) == ("PNG", (1200, 896))
    assert not (sample.parent / "elsewhere").exists()


def test_a_dangling_link_at_a_generated_name_is_passed_over(served: Served, sample: Path) -> None:
    os.symlink("nowhere.jpg", "cat-edit.jpg")
    result = run_cli(["edit", "cat.png", "-p", "x"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (0, "cat-edit-2.jpg\n"), result.stderr
    assert os.readlink("cat-edit.jpg") == "nowhere.jpg"
    assert files() == ["cat-edit-2.jpg", "cat-edit.jpg", "cat.png"]


# The README's first command, twice -----------------------------------------------------------


def readme_first_command() -> list[list[str]]:
    """The nanoedit commands of the README's first command line, in order."""
    text = README.read_text(encoding="utf-8")
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    (line,) = block.strip().splitlines()
    commands = [shlex.split(part) for part in line.split("&&")]
    return [words[1:] for words in commands if words[0].endswith("nanoedit")]


def test_the_readmes_first_command_can_be_run_again() -> None:
    commands = readme_first_command()
    assert [words[:2] for words in commands] == [["sandbox", "sample"], ["edit", "cat.png"]]
    outputs = []
    for _ in range(2):
        for words in commands:  # as `&&` runs them: stop at the first failure
            result = run_cli(words)
            assert result.exit_code == 0, result.stderr
            outputs.append((result.stdout, result.stderr))
    assert outputs == [
        ("cat.png\n", ""),
        ("cat-edit.jpg\n", "saved cat-edit.jpg (1376x768 JPEG) from cat.png\n"),
        ("cat.png\n", "cat.png is already there, with the sample's bytes\n"),
        ("cat-edit-2.jpg\n", "saved cat-edit-2.jpg (1376x768 JPEG) from cat.png\n"),
    ]
    assert Path("cat.png").read_bytes() == CAT
    assert files() == ["cat-edit-2.jpg", "cat-edit.jpg", "cat.png"]


def test_a_sample_name_holding_other_bytes_is_still_refused(isolated: Path) -> None:
    Path("cat.png").write_bytes(b"my own cat")
    result = run_cli(["sandbox", "sample", "cat.png"])
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr == (
        "error: cat.png already exists; pass --overwrite to replace it, or choose another -o\n"
    )
    assert Path("cat.png").read_bytes() == b"my own cat"


# Resumed batches, --print0, image order, sidecars ---------------------------------------------


def write_input(path: str, shade: int) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), (shade, 255 - shade, 90)).save(path)


def test_a_resumed_batch_lists_every_result(served: Served) -> None:
    for shade, name in enumerate(("a", "b", "c")):
        write_input(f"in/{name}.png", 40 * shade)
    env = backend_env(served, duomi=False)
    first = run_cli(["edit", "in", "-p", "x", "-j", "1"], env=env)
    assert first.stdout == "a-edit.jpg\nb-edit.jpg\nc-edit.jpg\n", first.stderr
    Path("b-edit.jpg").unlink()
    served.sandbox.received.clear()
    again = run_cli(["edit", "in", "-p", "x", "-j", "1", "--skip-existing"], env=env)
    assert again.exit_code == 0, again.stderr
    # The skipped jobs are settled before any job is sent, so their paths come first.
    assert again.stdout == "a-edit.jpg\nc-edit.jpg\nb-edit.jpg\n"
    assert again.stderr.splitlines()[-1] == "3 jobs: 1 done, 0 failed, 2 skipped, 1 image saved"
    as_json = run_cli(["edit", "in", "-p", "x", "--skip-existing", "--json"], env=env)
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(r["inputs"], r["skipped"], r["outputs"]) for r in records] == [
        ([f"in/{name}.png"], True,
         [{"path": f"{name}-edit.jpg", "width": 1200, "height": 896, "format": "jpeg",
           "bytes": Path(f"{name}-edit.jpg").stat().st_size}])
        for name in ("a", "b", "c")
    ]  # fmt: skip
    assert len([r for r in served.sandbox.received if r.method == "POST"]) == 1


def test_a_dry_run_keeps_skipped_paths_off_stdout(served: Served, sample: Path) -> None:
    env = backend_env(served)
    assert run_cli(["edit", "cat.png", "-p", "x"], env=env).stdout == "cat-edit.jpg\n"
    served.sandbox.received.clear()
    dry = run_cli(["edit", "cat.png", "-p", "x", "--skip-existing", "--dry-run"], env=env)
    # Its stdout is commands to paste: a path there would run as one.
    assert (dry.exit_code, dry.stdout) == (0, "")
    assert dry.stderr == "skipped cat.png: its result is already there (--skip-existing)\n"
    assert served.sandbox.received == []


def test_a_skipped_output_file_is_listed_too(served: Served, sample: Path) -> None:
    write_input("mine.png", 99)
    result = run_cli(["edit", "cat.png", "-p", "x", "-o", "mine.png", "--skip-existing"],
                     env=backend_env(served))  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, "mine.png\n")
    assert result.stderr == "skipped cat.png: its result is already there (--skip-existing)\n"
    assert served.sandbox.received == []


def test_print0_ends_each_path_with_nul(served: Served, sample: Path) -> None:
    env = backend_env(served)
    folder = "my results\nfinal"
    result = run_cli(["edit", "cat.png", "-p", "x", "-n", "2", "-d", folder, "--print0"], env=env)
    assert (result.exit_code, result.stdout) == (
        0, f"{folder}/cat-edit.jpg\0{folder}/cat-edit-2.jpg\0"
    ), result.stderr  # fmt: skip
    generated = run_cli(["generate", "-p", "a fox", "--print0"], env=env)
    assert (generated.exit_code, generated.stdout) == (0, "a-fox.jpg\0"), generated.stderr
    both = run_cli(["generate", "-p", "a fox", "--print0", "--json"], env=env)
    assert (both.exit_code, both.stderr) == (
        2, "error: --print0 ends paths with NUL, --json prints JSON lines; use one of them\n"
    )  # fmt: skip


def test_the_paths_of_one_job_come_in_image_order(served: Served) -> None:
    # a-fox-2 is taken, so images 2 and 3 are not named in their order; they print in it.
    Path("a-fox-2.jpg").write_bytes(b"someone else's")
    result = run_cli(["generate", "-p", "a fox", "-n", "3", "--no-metadata",
                      "--response-format", "b64_json"], env=backend_env(served))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    paths = result.stdout.splitlines()
    assert paths == ["a-fox.jpg", "a-fox-4.jpg", "a-fox-3.jpg"]
    for variant, path in enumerate(paths):
        rendered = render_generate(Picture("a fox", (1024, 1024), "image/jpeg", variant, 3))
        assert Path(path).read_bytes() == rendered.data, path


def test_a_stale_sidecar_is_never_replaced(served: Served, sample: Path) -> None:
    env = backend_env(served)
    Path("out.png.json").write_text("stale")
    refused = run_cli(["edit", "cat.png", "-p", "x", "-o", "out.png", "--sidecar"], env=env)
    assert (refused.exit_code, refused.stderr) == (
        4, "error: out.png.json already exists; pass --overwrite to replace it, or choose "
           "another -o\n"
    )  # fmt: skip
    assert served.sandbox.received == []
    forced = run_cli(["edit", "cat.png", "-p", "x", "-o", "out.png", "--sidecar", "--overwrite"],
                     env=env)  # fmt: skip
    assert forced.exit_code == 0, forced.stderr
    assert json.loads(Path("out.png.json").read_text())["image"] == "out.png"
    # A generated name whose sidecar is there moves on, as it does for an image.
    Path("cat-edit.jpg.json").write_text("stale")
    named = run_cli(["edit", "cat.png", "-p", "x", "--sidecar"], env=env)
    assert (named.exit_code, named.stdout) == (0, "cat-edit-2.jpg\n"), named.stderr
    assert Path("cat-edit.jpg.json").read_text() == "stale"
    assert files() == [
        "cat-edit-2.jpg", "cat-edit-2.jpg.json", "cat-edit.jpg.json", "cat.png", "out.png",
        "out.png.json",
    ]  # fmt: skip


def test_a_sidecar_of_an_output_without_extension_names_the_real_format(
    served: Served, sample: Path
) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "-o", "result", "--sidecar"],
                     env=backend_env(served))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    document = json.loads(Path("result.json").read_text())
    assert (document["image"], document["format"]) == ("result", "jpeg")
