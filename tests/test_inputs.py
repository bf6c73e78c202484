"""Where inputs come from and what is said of them: stdin, pipes, FIFOs and process
substitutions for images and prompts, --prompt-file, names after --, pixel limits, and the
warnings for a turned or animated image."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import Served, big_jpeg, image_info, one_backend_env, posts, run_cli
from PIL import Image

from nanoedit.output.provenance import read as read_provenance
from nanoedit.sandbox import sample_image

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
CAT = sample_image("cat.png")[0]
HAT = sample_image("hat.png")[0]
EDITS = "/v1/images/edits"
# What the sandbox's nano-banana renders for cat.png (640x480) at --ratio auto.
CAT_RESULT = ("JPEG", (1200, 896))


def process_env(served: Served) -> dict[str, str]:
    """The environment of an installed nanoedit run in a child process."""
    return dict(os.environ) | one_backend_env(served, "openai")


def sent_files(served: Served) -> list[list[tuple[str, str, bytes]]]:
    """Each edit request's files: name sent, content type and bytes."""
    assert all(request.path == EDITS for request in posts(served))
    return [[(f.filename, f.content_type, f.data) for f in r.files] for r in posts(served)]


def nanoedit(
    args: list[str], served: Served, input: bytes | None = None, stdin: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The installed command in a child process, with bytes for stdin and out; stdin is
    ``input``, or the descriptor ``stdin``, or nothing."""
    if input is None and stdin is None:
        stdin = subprocess.DEVNULL
    return subprocess.run(
        [NANOEDIT, *args], env=process_env(served), input=input, stdin=stdin,
        capture_output=True, timeout=60,
    )  # fmt: skip


# Images from stdin and pipes ----------------------------------------------------------------


def test_dash_reads_the_image_from_a_real_pipe_and_names_the_result_after_stdin(
    served: Served,
) -> None:
    result = nanoedit(["edit", "-", "-p", "make it night"], served, input=CAT)
    assert (result.returncode, result.stdout) == (0, b"stdin-edit.jpg\n"), result.stderr
    assert result.stderr.decode() == "saved stdin-edit.jpg (1200x896 JPEG) from stdin\n"
    assert sent_files(served) == [[("stdin.png", "image/png", CAT)]]
    assert image_info("stdin-edit.jpg") == CAT_RESULT
    provenance = read_provenance("stdin-edit.jpg")
    assert provenance is not None
    assert provenance["inputs"] == [{"name": "stdin", "sha256": hashlib.sha256(CAT).hexdigest()}]


def test_dev_stdin_on_a_pipe_is_read_once(served: Served) -> None:
    result = nanoedit(["edit", "/dev/stdin", "-p", "x"], served, input=CAT)
    assert (result.returncode, result.stdout) == (0, b"stdin-edit.jpg\n"), result.stderr
    assert sent_files(served) == [[("stdin.png", "image/png", CAT)]]
    assert image_info("stdin-edit.jpg") == CAT_RESULT


def test_a_process_substitution_is_read_once_and_named_after_its_descriptor(
    served: Served,
) -> None:
    Path("cat.png").write_bytes(CAT)
    command = f"exec {shlex.quote(NANOEDIT)} edit <(cat cat.png) -p x"
    result = subprocess.run(
        ["bash", "-c", command], env=process_env(served), capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # bash picks the descriptor (63 as a rule): the name follows it, whatever it is.
    match = re.fullmatch(rb"fd(\d+)-edit\.jpg\n", result.stdout)
    assert match, result.stdout
    number = match.group(1).decode()
    assert sent_files(served) == [[(f"fd{number}.png", "image/png", CAT)]]
    assert image_info(f"fd{number}-edit.jpg") == CAT_RESULT


def test_a_named_fifo_is_read_once(served: Served) -> None:
    os.mkfifo("shot")
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with open("shot", "wb") as fifo:  # blocks until nanoedit opens it
                fifo.write(CAT)
        except BrokenPipeError as exc:
            failures.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        result = nanoedit(["edit", "shot", "-p", "x"], served)
    finally:
        if writer.is_alive():  # nanoedit never opened it: let the writer go
            os.close(os.open("shot", os.O_RDONLY | os.O_NONBLOCK))
        writer.join(10)
    assert (result.returncode, result.stdout) == (0, b"shot-edit.jpg\n"), result.stderr
    assert failures == []
    # No extension in the name: the part sent gets the one its bytes call for.
    assert sent_files(served) == [[("shot.png", "image/png", CAT)]]
    assert image_info("shot-edit.jpg") == CAT_RESULT


def test_a_reference_from_stdin_is_read_once_and_sent_with_every_job(served: Served) -> None:
    Path("a.png").write_bytes(CAT)
    Path("b.jpg").write_bytes(sample_image("dog.jpg")[0])
    result = run_cli(
        ["edit", "a.png", "b.jpg", "--ref", "-", "-p", "x", "-j", "1"],
        env=one_backend_env(served, "openai"),
        stdin=HAT,
    )
    assert (result.exit_code, result.stdout) == (0, "a-edit.jpg\nb-edit.jpg\n"), result.stderr
    dog = sample_image("dog.jpg")[0]
    assert sent_files(served) == [
        [("a.png", "image/png", CAT), ("stdin.png", "image/png", HAT)],
        [("b.jpg", "image/jpeg", dog), ("stdin.png", "image/png", HAT)],
    ]


def test_a_terminal_on_stdin_is_refused_as_an_image(served: Served) -> None:
    controller, terminal = os.openpty()
    try:
        result = nanoedit(["edit", "-", "-p", "x"], served, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert (result.returncode, result.stdout) == (4, b"")
    assert result.stderr.decode() == (
        "error: stdin is a terminal, not an image; pipe one in "
        "(cat photo.jpg | nanoedit edit - -p ...) or name the file\n"
    )
    assert served.sandbox.received == []


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        pytest.param(["-", "-"], CAT, 2,
                     "INPUT - and INPUT - both read stdin, which can be read only once; save all "
                     "but one of them to a file and name it", id="dash-twice"),
        pytest.param(["-", "--from", "-"], CAT, 2,
                     "INPUT - and --from - both read stdin, which can be read only once; save all "
                     "but one of them to a file and name it", id="dash-and-from-dash"),
        pytest.param(["cat.png", "--ref", "-", "--prompt-file", "-"], CAT, 2,
                     "--ref - and --prompt-file - both read stdin, which can be read only once; "
                     "save all but one of them to a file and name it", id="ref-and-prompt-file"),
        pytest.param(["-", "-p", "-", "--from", "-"], CAT, 2,
                     "INPUT -, --from - and -p - all read stdin, which can be read only once; "
                     "save all but one of them to a file and name it", id="three"),
        pytest.param(["-"], b"", 4,
                     "stdin is not an image (it is empty); pass a PNG, JPEG or WebP file",
                     id="empty-stdin"),
        pytest.param(["-"], b"make it night\n", 4,
                     "stdin is not an image (it starts like text); pass a PNG, JPEG or WebP file",
                     id="text-on-stdin"),
    ],
)  # fmt: skip
def test_stdin_misuse_is_refused_before_any_request(
    served: Served, args: list[str], stdin: bytes, code: int, message: str
) -> None:
    Path("cat.png").write_bytes(CAT)
    result = run_cli(
        ["edit", *args, *(["-p", "x"] * ("-p" not in args))],
        env=one_backend_env(served, "openai"),
        stdin=stdin,
    )
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f"error: {message}\n")
    assert served.sandbox.received == []
    assert sorted(os.listdir()) == ["cat.png"]


# Prompts from stdin and files ---------------------------------------------------------------


def test_dash_p_dash_reads_the_whole_prompt_from_a_real_pipe(served: Served) -> None:
    Path("cat.png").write_bytes(CAT)
    result = nanoedit(
        ["edit", "cat.png", "-p", "-"], served, input=b"make it night\nwith stars  \n"
    )
    assert (result.returncode, result.stdout) == (0, b"cat-edit.jpg\n"), result.stderr
    assert [r.fields["prompt"] for r in posts(served)] == [["make it night\nwith stars"]]


def test_generate_reads_the_prompt_from_stdin(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "-"], env=one_backend_env(served, "openai"), stdin="a red fox in snow\n"
    )
    assert (result.exit_code, result.stdout) == (0, "a-red-fox-in-snow.jpg\n"), result.stderr
    [request] = posts(served)
    assert request.json["prompt"] == "a red fox in snow"


@pytest.mark.parametrize("command", ["edit", "generate"])
def test_prompt_file_gives_the_prompt_without_its_bom_and_trailing_newline(
    served: Served, command: str
) -> None:
    Path("cat.png").write_bytes(CAT)
    Path("prompt.txt").write_bytes("\ufeffmake it a watercolor\nsoft edges\n".encode())
    args = [command, *(["cat.png"] if command == "edit" else []), "--prompt-file", "prompt.txt"]
    result = run_cli(args, env=one_backend_env(served, "openai"))
    assert result.exit_code == 0, result.stderr
    [request] = posts(served)
    prompt = request.fields["prompt"] if command == "edit" else [request.json["prompt"]]
    assert prompt == ["make it a watercolor\nsoft edges"]


@pytest.mark.parametrize(
    ("files", "args", "stdin", "code", "message"),
    [
        pytest.param({"p.txt": b"x"}, ["-p", "x", "--prompt-file", "p.txt"], None, 2,
                     "-p and --prompt-file both give the prompt; use one of them", id="both"),
        pytest.param({"p.txt": b" \n\n"}, ["--prompt-file", "p.txt"], None, 2,
                     "the prompt file p.txt is empty; write the prompt in it", id="empty-file"),
        pytest.param({}, ["--prompt-file", "p.txt"], None, 4,
                     "the prompt file p.txt does not exist; check the --prompt-file path",
                     id="missing-file"),
        pytest.param({"p.txt": "caf\u00e9".encode("latin-1")}, ["--prompt-file", "p.txt"], None,
                     4, "the prompt file p.txt cannot be read (it is not UTF-8 text)",
                     id="not-utf8"),
        pytest.param({}, ["-p", "-"], "\n", 2,
                     "the prompt read from stdin is empty; pipe the prompt in, or use -p",
                     id="empty-stdin"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["edit", "generate"])
def test_bad_prompt_sources_are_refused_before_any_request(
    served: Served,
    command: str,
    files: dict[str, bytes],
    args: list[str],
    stdin: str | None,
    code: int,
    message: str,
) -> None:
    Path("cat.png").write_bytes(CAT)
    for name, data in files.items():
        Path(name).write_bytes(data)
    target = ["cat.png"] if command == "edit" else []
    result = run_cli([command, *target, *args], env=one_backend_env(served, "openai"), stdin=stdin)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f"error: {message}\n")
    assert served.sandbox.received == []


# Names that look like options ---------------------------------------------------------------


def test_a_file_named_with_a_leading_dash_goes_after_double_dash(served: Served) -> None:
    Path("-dash.png").write_bytes(CAT)
    result = run_cli(["edit", "-p", "x", "--", "-dash.png"], env=one_backend_env(served, "openai"))
    assert (result.exit_code, result.stdout) == (0, "dash-edit.jpg\n"), result.stderr
    assert sent_files(served) == [[("-dash.png", "image/png", CAT)]]
    assert image_info("dash-edit.jpg") == CAT_RESULT
    # Without --, the name is read as -d ash.png, as the help says.
    help_text = run_cli(["edit", "--help"]).stdout
    assert '\n    nanoedit edit -p "make it night" -- -dash.png\n' in help_text


def test_model_help_says_which_names_are_translated() -> None:
    # The help is wrapped at the terminal's width, which may break a name at its hyphen.
    help_text = " ".join(run_cli(["edit", "--help"]).stdout.split()).replace("nano- ", "nano-")
    assert (
        "-m, --model ID An alias (nano-banana, nano-banana-pro, nano-banana-2, "
        "nano-banana-2.1, nano-banana-2-lite), Google's id or the backend's own: sent as the "
        "backend names the model (nanoedit models); a shut-down id is refused; an unknown id "
        "is sent as given."
    ) in help_text


# Pixel limits -------------------------------------------------------------------------------


def test_a_108_megapixel_phone_photo_is_sent_as_it_is(served: Served) -> None:
    photo = big_jpeg(12000, 9000)
    Path("phone.jpg").write_bytes(photo)
    result = run_cli(["edit", "phone.jpg", "-p", "x"], env=one_backend_env(served, "openai"))
    assert (result.exit_code, result.stdout) == (0, "phone-edit.jpg\n"), result.stderr
    assert result.stderr == "saved phone-edit.jpg (1200x896 JPEG) from phone.jpg\n"
    assert sent_files(served) == [[("phone.jpg", "image/jpeg", photo)]]
    assert image_info("phone-edit.jpg") == ("JPEG", (1200, 896))


def test_an_input_over_the_pixel_limit_is_refused_with_its_size_and_the_limit(
    served: Served,
) -> None:
    Path("huge.jpg").write_bytes(big_jpeg(18000, 14000))
    result = run_cli(["edit", "huge.jpg", "-p", "x"], env=one_backend_env(served, "openai"))
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr == (
        "error: huge.jpg is 18000x14000 pixels (252 MP), over the limit of 250 MP; scale it "
        "down and pass it again\n"
    )
    assert served.sandbox.received == []


# What is said of a turned or animated image -------------------------------------------------


def jpeg_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 90, 200)).save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_a_turned_jpeg_is_sent_as_stored_and_said_once(served: Served) -> None:
    turned = jpeg_with_orientation(6)
    Path("turned.jpg").write_bytes(turned)
    Path("a.png").write_bytes(CAT)
    Path("b.png").write_bytes(HAT)
    result = run_cli(
        ["edit", "a.png", "b.png", "--ref", "turned.jpg", "-p", "x", "-j", "1"],
        env=one_backend_env(served, "openai"),
    )
    assert (result.exit_code, result.stdout) == (0, "a-edit.jpg\nb-edit.jpg\n"), result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: turned.jpg has EXIF orientation 6 (viewers show it turned 90° clockwise), "
        "but its bytes are sent unchanged, so the model sees it as stored; save it upright "
        "first if the model should see it as you do"
    ]
    assert [files[1] for files in sent_files(served)] == [("turned.jpg", "image/jpeg", turned)] * 2


def phone_jpeg() -> bytes:
    """A JPEG with a second picture (MPO), as phones write a preview or a depth map."""
    out = io.BytesIO()
    main, preview = Image.new("RGB", (64, 48), "navy"), Image.new("RGB", (32, 24), "gray")
    main.save(out, format="MPO", save_all=True, append_images=[preview])
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data"),
    [("upright.jpg", jpeg_with_orientation(1)), ("phone.jpg", phone_jpeg())],
)
def test_an_upright_or_two_picture_jpeg_is_not_warned_about(
    served: Served, name: str, data: bytes
) -> None:
    Path(name).write_bytes(data)
    result = run_cli(["edit", name, "-p", "x"], env=one_backend_env(served, "openai"))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"saved {Path(name).stem}-edit.jpg (1200x896 JPEG) from {name}\n"
    assert sent_files(served) == [[(name, "image/jpeg", data)]]


def animation(fmt: str) -> bytes:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:], duration=100)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "fmt", "sent_as", "warnings"),
    [
        ("anim.gif", "GIF", ("anim.png", "image/png"), [
            "anim.gif is animated (3 frames); only its first frame is sent",
            "anim.gif is GIF, which the API does not take; sending it converted losslessly "
            "to PNG",
        ]),
        ("anim.png", "PNG", ("anim.png", "image/png"), [
            "anim.png is animated (3 frames); the model sees its first frame only",
        ]),
        ("anim.webp", "WEBP", ("anim.webp", "image/webp"), [
            "anim.webp is animated (3 frames); the model sees its first frame only",
        ]),
    ],
)  # fmt: skip
def test_an_animation_is_said_to_count_for_its_first_frame(
    served: Served, name: str, fmt: str, sent_as: tuple[str, str], warnings: list[str]
) -> None:
    data = animation(fmt)
    Path(name).write_bytes(data)
    result = run_cli(["edit", name, "-p", "x"], env=one_backend_env(served, "openai"))
    assert result.exit_code == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("warning:")] == [
        f"warning: {text}" for text in warnings
    ]
    [[(filename, content_type, sent)]] = sent_files(served)
    assert (filename, content_type) == sent_as
    if fmt == "GIF":
        with Image.open(io.BytesIO(sent)) as image:
            assert (image.format, getattr(image, "n_frames", 1)) == ("PNG", 1)
            assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    else:
        assert sent == data  # sent as it is: every byte, every frame
