"""Bad input, each refused with one line that names it, its exit code, and nothing sent."""

from __future__ import annotations

import io
import os
import re
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import OPENAI_KEY, Served, backend_env, run_cli
from PIL import Image
from readme_help import README

from nanoedit.backends.base import backend_class
from nanoedit.backends.registry import backend_names
from nanoedit.sandbox import sample_image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def make_unreadable() -> str:
    path = Path("locked.png")
    if os.geteuid() == 0:
        # Permissions do not stop root: a file whose read fails in the kernel does.
        path.symlink_to("/proc/self/mem")
        return "locked.png cannot be read (Input/output error); check the file"
    path.write_bytes(png())
    path.chmod(0)
    return "locked.png cannot be read (permission denied); check its permissions"


def make_bomb() -> str:
    # 400 million pixels in 48 kB: nanoedit's limit for an input is 250 million.
    Image.new("1", (20000, 20000)).save("bomb.png")
    return (
        "bomb.png is 20000x20000 pixels (400 MP), over the limit of 250 MP; scale it down and "
        "pass it again"
    )


def make_setup(files: dict[str, bytes]) -> Callable[[], None]:
    def setup() -> None:
        for name, data in files.items():
            Path(name).parent.mkdir(parents=True, exist_ok=True)
            Path(name).write_bytes(data)

    return setup


CAT = sample_image("cat.png")[0]
GIF = Image.new("P", (8, 8))
GIF_BYTES = io.BytesIO()
GIF.save(GIF_BYTES, format="GIF")
URL = "https://img.example/x.png"

# (name, files to create, arguments after "edit", exit code, the one error line)
CASES: list[tuple[str, Callable[[], object], list[str], int, str]] = [
    ("missing file", lambda: None, ["missing.png", "-p", "x"], 4,
     "missing.png: no such file; check the path"),
    ("folder without images", lambda: Path("empty").mkdir(), ["empty", "-p", "x"], 4,
     "the folder empty holds no images (add --recursive to look in its subfolders); "
     "pass image files"),
    ("unreadable file", make_unreadable, ["locked.png", "-p", "x"], 4, ""),
    ("empty file", make_setup({"empty.png": b""}), ["empty.png", "-p", "x"], 4,
     "empty.png is not an image (it is empty); pass a PNG, JPEG or WebP file"),
    ("not an image", make_setup({"doc.png": b"%PDF-1.7\n%\xe2\xe3"}), ["doc.png", "-p", "x"], 4,
     "doc.png is not an image (it starts like a PDF); pass a PNG, JPEG or WebP file"),
    ("zip as image", make_setup({"a.jpg": b"PK\x03\x04rest"}), ["a.jpg", "-p", "x"], 4,
     "a.jpg is not an image (it starts like a ZIP archive); pass a PNG, JPEG or WebP file"),
    ("truncated image", make_setup({"cut.png": CAT[: len(CAT) // 2]}), ["cut.png", "-p", "x"], 4,
     "cut.png looks like a PNG image but cannot be decoded"),
    ("decompression bomb", make_bomb, ["bomb.png", "-p", "x"], 4, ""),
    ("glob matching nothing", lambda: None, ["nothing-*.png", "-p", "x"], 4,
     "no image file matches nothing-*.png; check the pattern"),
    ("too many images for the URL-list backend", lambda: None,
     [URL, *[arg for n in range(10) for arg in ("--ref", f"{URL}?{n}")], "-p", "x",
      "--backend", "duomi"], 4,
     "https://img.example/x.png: 11 images for one job, and the duomi backend takes at most 10; "
     "pass fewer --ref images"),
    ("local file for the URL-list backend", make_setup({"cat.png": CAT}),
     ["cat.png", "-p", "x", "--backend", "duomi"], 4,
     "cat.png is a local file, and the duomi backend takes only http(s) URLs; use "
     + " or ".join(f"--backend {name}" for name in backend_names() if backend_class(name).takes.files)
     + ", pass a public URL, or have nanoedit upload it first: nanoedit config set "
     "upload.via command"),
    ("file:// URL", lambda: None, ["file:///etc/passwd", "-p", "x"], 4,
     "file:///etc/passwd uses the file: scheme; nanoedit reads local files and http(s) URLs "
     "only (for a local file, pass its path)"),
    ("ftp URL", lambda: None, ["ftp://host/cat.png", "-p", "x"], 4,
     "ftp://host/cat.png uses the ftp: scheme; nanoedit reads local files and http(s) URLs only"),
    ("URL without a host", lambda: None, ["https:///cat.png", "-p", "x"], 4,
     "https:///cat.png is not a valid URL (it has no host); check the address"),
    ("empty prompt", make_setup({"cat.png": CAT}), ["cat.png", "-p", "  "], 2,
     'the prompt is empty; say what you want with -p "..."'),
    # The gateway's nano-banana-pro has no size field: it renders 1K only.
    ("4K on a 1K-only model", make_setup({"cat.png": CAT}),
     ["cat.png", "-p", "x", "--size", "4K", "--model", "nano-banana-pro"], 2,
     "nano-banana-pro renders 1K only on openai, so size 4K cannot be honoured; drop it (from --size, NANOEDIT_SIZE or default.size), or "
     "choose a model that renders it (--model nano-banana-2)"),
    ("unwritable output folder", make_setup({"cat.png": CAT}),
     ["cat.png", "-p", "x", "-d", "/proc/sys/nanoedit-out"], 4,
     "the output folder /proc/sys/nanoedit-out is not writable; choose another with -d"),
    ("output folder under a file", make_setup({"cat.png": CAT}),
     ["cat.png", "-p", "x", "-d", "cat.png/out"], 4,
     "the output folder cat.png/out is not a folder (cat.png is a file)"),
    ("output path that is a folder", make_setup({"cat.png": CAT, "out/keep": b""}),
     ["cat.png", "-p", "x", "-o", "out"], 4,
     "the output path out is a directory; give a file name, or use -d out"),
    ("output file that exists", make_setup({"cat.png": CAT, "taken.png": b"mine"}),
     ["cat.png", "-p", "x", "-o", "taken.png"], 4,
     "taken.png already exists; pass --overwrite to replace it, or choose another -o"),
    ("bad --from line", make_setup({"cat.png": CAT, "jobs.jsonl": b'{"input": "cat.png",}\n'}),
     ["--from", "jobs.jsonl", "-p", "x"], 2,
     "jobs.jsonl line 1: not valid JSON (Expecting property name enclosed in double quotes); "
     "fix the line"),
    ("bad shard", make_setup({"cat.png": CAT}), ["cat.png", "-p", "x", "--shard", "3/2"], 2,
     "invalid shard '3/2'; give K/N with 1 <= K <= N, such as 2/4"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "args", "code", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_refused_before_any_request(
    served: Served,
    setup: Callable[[], object],
    args: list[str],
    code: int,
    message: str,
) -> None:
    expected = setup() or message
    before = sorted(str(p) for p in Path(".").rglob("*"))
    result = run_cli(["edit", *args], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (code, "")
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {expected}")
    assert served.sandbox.received == []
    assert sorted(str(p) for p in Path(".").rglob("*")) == before


def test_other_formats_are_converted_losslessly_to_png_and_said(served: Served) -> None:
    Path("anim.gif").write_bytes(GIF_BYTES.getvalue())
    result = run_cli(["edit", "anim.gif", "-p", "x"], env=backend_env(served))
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "warning: anim.gif is GIF, which the API does not take; sending it converted "
        "losslessly to PNG"
    )
    [post] = served.sandbox.received[:1]
    [sent] = post.files
    assert (sent.filename, sent.content_type) == ("anim.png", "image/png")
    with Image.open(io.BytesIO(sent.data)) as image, Image.open("anim.gif") as source:
        assert image.format == "PNG"
        assert image.convert("RGB").tobytes() == source.convert("RGB").tobytes()


def _limit_file_size() -> None:
    # A real kernel refusal: writes past 20 kB fail with EFBIG, as on a full disk.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_a_full_disk_while_writing_exits_4_naming_the_folder_and_leaves_nothing(
    served: Served,
) -> None:
    Path("cat.png").write_bytes(CAT)
    env = os.environ | backend_env(served)
    result = subprocess.run(
        # No journal: it could not be written either under the limit.
        [NANOEDIT, "edit", "cat.png", "-p", "x", "-d", "out", "--no-history"],
        env=env, capture_output=True, text=True, timeout=60, preexec_fn=_limit_file_size,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (4, "")
    [line] = result.stderr.splitlines()
    assert line.startswith(
        "error: the result of cat.png could not be written to out: File too large; free some "
        "space (or choose another -d) and run again; the image is still at "
        f"{served.base_url}/files/"
    )
    assert OPENAI_KEY not in result.stderr
    assert os.listdir("out") == []  # no half file, no temporary file


# Truncated and complete JPEGs (and WebPs) ---------------------------------------------------


def photo(fmt: str, **options: object) -> bytes:
    """A real photo-like image (noise, so its scan data is long) in ``fmt``."""
    out = io.BytesIO()
    Image.effect_noise((320, 240), 60).convert("RGB").save(out, format=fmt, **options)
    return out.getvalue()


def exif_block() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "nanoedit"  # the camera's maker
    exif[0x0112] = 1  # orientation: as stored
    return exif.tobytes()


JPEG = photo("JPEG", quality=90)
PROGRESSIVE = photo("JPEG", quality=90, progressive=True)
WITH_EXIF = photo("JPEG", quality=90, exif=exif_block())
WEBP = photo("WEBP", quality=80)
CUT = "it may be truncated or damaged, re-export it"
NO_EOI = f"truncated JPEG file: it ends before its end marker (EOI)); {CUT}"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(JPEG[: len(JPEG) // 2], NO_EOI, id="cut in its scan"),
        pytest.param(JPEG[:-2], NO_EOI, id="only its end marker missing"),
        pytest.param(PROGRESSIVE[: len(PROGRESSIVE) * 2 // 3], NO_EOI, id="progressive, cut"),
        pytest.param(WITH_EXIF[: len(WITH_EXIF) // 2], NO_EOI, id="with EXIF, cut"),
        pytest.param(
            WEBP[: len(WEBP) // 2], "could not create decoder object); " + CUT, id="WebP, cut"
        ),
    ],
)
def test_a_truncated_jpeg_or_webp_is_refused_before_anything_is_paid(
    served: Served, data: bytes, error: str
) -> None:
    fmt = "WEBP" if data.startswith(b"RIFF") else "JPEG"
    Path("cut.jpg").write_bytes(data)
    result = subprocess.run(
        [NANOEDIT, "edit", "cut.jpg", "-p", "x"],
        env=os.environ | backend_env(served), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr == (
        f"error: cut.jpg looks like a {fmt} image but cannot be decoded ({error}\n"
    )
    assert len(served.sandbox.received) == 0
    assert sorted(os.listdir(".")) == ["cut.jpg"]


# What some cameras write after the end marker: a second image (an MPO's preview, a depth map)
# or a block of their own (a motion photo's video, a maker's trailer). Only the end is cut off
# a truncated file, so a trailer still there says the JPEG before it is whole.
TRAILERS = {
    "nothing after its end marker": b"",
    "a second image (MPO)": photo("JPEG", quality=50),
    "a maker's trailer": b"SEFH" + bytes(range(256)) * 64 + b"\xff\xd8 no end marker here",
}


@pytest.mark.parametrize("trailer", TRAILERS.values(), ids=list(TRAILERS))
@pytest.mark.parametrize("image", [JPEG, PROGRESSIVE, WITH_EXIF], ids=["baseline", "progressive",
                                                                       "with EXIF"])  # fmt: skip
def test_a_whole_jpeg_is_sent_as_it_is_whatever_follows_its_end_marker(
    served: Served, image: bytes, trailer: bytes
) -> None:
    Path("photo.jpg").write_bytes(image + trailer)
    result = subprocess.run(
        [NANOEDIT, "edit", "photo.jpg", "-p", "x", "-q"],
        env=os.environ | backend_env(served), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (0, "photo-edit.jpg\n", "")
    [post] = [request for request in served.sandbox.received if request.method == "POST"]
    [sent] = post.files
    assert sent.data == image + trailer


def test_the_readmes_word_on_truncated_inputs_holds_for_each_format(served: Served) -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    found = re.search(
        r"A truncated input is refused before anything is sent \(exit (\d)\), since a provider "
        r"takes it and charges for the answer: a PNG is checked to its last chunk, a JPEG to "
        r"its end marker \(what a camera writes after it, such as an MPO's second image, is "
        r"allowed\), a WebP to its last chunk\. The error names the file and says to "
        r"re-export it\.",
        text,
    )
    assert found, "the README no longer says how truncated inputs are refused"
    for name, data in (("a.png", CAT), ("b.jpg", JPEG), ("c.webp", WEBP)):
        Path(name).write_bytes(data[: len(data) // 2])
        result = run_cli(["edit", name, "-p", "x"], env=backend_env(served))
        assert (result.exit_code, result.stdout) == (int(found.group(1)), "")
        assert result.stderr.startswith(f"error: {name} looks like a ")
        assert result.stderr.endswith("; it may be truncated or damaged, re-export it\n")
    Path("mpo.jpg").write_bytes(JPEG + JPEG)
    assert run_cli(["edit", "mpo.jpg", "-p", "x"], env=backend_env(served)).exit_code == 0
    posted = [request for request in served.sandbox.received if request.method == "POST"]
    assert [file.data for request in posted for file in request.files] == [JPEG + JPEG]


@pytest.mark.parametrize("history", [True, False])
def test_a_file_name_that_is_not_utf8_is_refused_before_anything_is_sent(
    served: Served, tmp_path: Path, history: bool
) -> None:
    # A Latin-1 name ended a run in a traceback once it had started: the journal and the
    # request's multipart header both name files in UTF-8.
    name = os.fsdecode(b"caf\xe9.png")
    (tmp_path / name).write_bytes(sample_image("cat.png")[0])
    args = [str(NANOEDIT), "edit", name, "-p", "x", *([] if history else ["--no-history"])]
    done = subprocess.run(
        args, cwd=tmp_path, env=os.environ | backend_env(served), capture_output=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert done.stderr.decode() == (
        "error: caf\\xe9.png: the name is not valid UTF-8, which requests and the job history "
        "name files in; rename the file (for instance with convmv -f latin1 -t utf8)\n"
    )
    assert served.sandbox.received == []
