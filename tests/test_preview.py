"""Terminal previews and opening results in a viewer.

The unit tests draw small images whose every pixel is known; the terminal test runs the
installed ``nanoedit`` with stderr on a pseudo-terminal and reads the half blocks it drew back
into pixels.
"""

from __future__ import annotations

import base64
import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Served, backend_env, on_pty, run_cli
from PIL import Image
from rich.console import Console

from nanoedit.output.preview import (
    PROTOCOL_CHOICES,
    Area,
    Drawn,
    HalfBlocks,
    Protocol,
    Viewer,
    choose_protocol,
    detect_protocol,
    iterm_escape,
    kitty_escape,
    render,
    sixel_escape,
)
from nanoedit.settings.keys import CORE_KEYS

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
# 24-bit colour codes: a foreground, and maybe a background, then the cells they colour.
CELLS = re.compile(r"\x1b\[38;2;(\d+);(\d+);(\d+)(?:;48;2;(\d+);(\d+);(\d+))?m([▀▄]+)\x1b\[0m")
Pixel = tuple[int, int, int]


def cells_of(line: str) -> list[tuple[Pixel, Pixel | None]]:
    """The (upper, lower) colours of each half-block cell of one line; the line must hold
    nothing else."""
    cells: list[tuple[Pixel, Pixel | None]] = []
    position = 0
    for match in CELLS.finditer(line):
        assert match.start() == position, repr(line[position : match.start()])
        numbers = [int(n) if n is not None else None for n in match.groups()[:6]]
        fg = (numbers[0], numbers[1], numbers[2])
        bg = None if numbers[3] is None else (numbers[3], numbers[4], numbers[5])
        assert match.group(7) == "▀" * len(match.group(7)), "no lower halves in an opaque image"
        cells += [(fg, bg)] * len(match.group(7))  # type: ignore[list-item]
        position = match.end()
    assert position == len(line), repr(line[position:])
    return cells


def expected_cells(image: Image.Image) -> list[list[tuple[Pixel, Pixel | None]]]:
    """Each row of cells an opaque image gives: upper pixel, lower pixel (none past the end)."""
    rgb = image.convert("RGB")
    rows = []
    for top in range(0, rgb.height, 2):
        row = []
        for x in range(rgb.width):
            lower = rgb.getpixel((x, top + 1)) if top + 1 < rgb.height else None
            row.append((rgb.getpixel((x, top)), lower))
        rows.append(row)
    return rows  # type: ignore[return-value]


def truecolor(width: int = 80, height: int = 40) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    console = Console(
        file=out, force_terminal=True, color_system="truecolor", width=width, height=height
    )
    return console, out


def small_image(path: Path) -> Image.Image:
    """A 5x3 image, every pixel a different colour."""
    image = Image.new("RGB", (5, 3))
    for y in range(3):
        for x in range(5):
            image.putpixel((x, y), (40 * x + 10, 80 * y + 5, 200 - 30 * x))
    image.save(path)
    return image


# Choosing how to draw ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "protocol"),
    [
        ({"TERM": "xterm-kitty"}, Protocol.kitty),
        ({"TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"}, Protocol.kitty),
        ({"TERM": "xterm-ghostty"}, Protocol.kitty),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "ghostty"}, Protocol.kitty),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "iTerm.app"}, Protocol.iterm),
        ({"TERM": "xterm-256color", "LC_TERMINAL": "iTerm2"}, Protocol.iterm),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, Protocol.iterm),
        ({"TERM": "xterm-256color", "KONSOLE_VERSION": "230805"}, Protocol.sixel),
        ({"TERM": "foot"}, Protocol.sixel),
        ({"TERM": "mlterm"}, Protocol.sixel),
        ({"TERM": "xterm-256color"}, Protocol.halfblocks),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "vscode"}, Protocol.halfblocks),
        # Inside tmux or screen, whatever the outer terminal: their cells always work.
        ({"TERM": "tmux-256color", "KITTY_WINDOW_ID": "1"}, Protocol.halfblocks),
        ({"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"}, Protocol.halfblocks),
        ({"TERM": "screen", "LC_TERMINAL": "iTerm2"}, Protocol.halfblocks),
        ({"TERM": "dumb"}, Protocol.none),
        ({}, Protocol.none),
    ],
)
def test_the_protocol_is_read_from_the_environment(env: dict[str, str], protocol: Protocol) -> None:
    assert detect_protocol(env) is protocol
    assert choose_protocol("auto", env) is protocol


def test_a_protocol_set_is_used_whatever_the_terminal() -> None:
    assert choose_protocol("sixel", {"TERM": "xterm-kitty"}) is Protocol.sixel
    assert choose_protocol("none", {"TERM": "xterm-kitty"}) is Protocol.none


def test_the_config_key_offers_exactly_the_protocols() -> None:
    spec = CORE_KEYS["preview.protocol"]
    assert (spec.env, spec.default) == ("NANOEDIT_PREVIEW_PROTOCOL", "auto")
    for choice in PROTOCOL_CHOICES:
        assert spec.check(choice) == choice
    assert PROTOCOL_CHOICES == ("auto", "kitty", "iterm", "sixel", "halfblocks", "none")


def test_a_bad_protocol_setting_is_refused_with_the_choices(served: Served, sample: Path) -> None:
    env = backend_env(served) | {"NANOEDIT_PREVIEW_PROTOCOL": "ascii"}
    result = run_cli(["edit", "cat.png", "-p", "x", "--preview"], env=env)
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        "error: the environment variable NANOEDIT_PREVIEW_PROTOCOL: invalid value 'ascii'; use "
        "one of: auto, kitty, iterm, sixel, halfblocks, none\n"
    )
    assert served.sandbox.received == []


# Half blocks ---------------------------------------------------------------------------------


def test_half_blocks_colour_each_cell_with_its_two_pixels(tmp_path: Path) -> None:
    image = small_image(tmp_path / "small.png")
    console, out = truecolor()
    console.print(render(tmp_path / "small.png", Protocol.halfblocks, Area(80, 40)))
    lines = out.getvalue().split("\n")
    # Three pixel rows: two lines of cells, the last with no lower pixel; nothing after.
    assert lines[2:] == [""]
    assert [cells_of(line) for line in lines[:2]] == expected_cells(image)
    # Never enlarged: five pixels wide is five cells.
    assert [len(cells_of(line)) for line in lines[:2]] == [5, 5]


def test_half_blocks_fit_the_width_and_keep_the_shape(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (400, 100), (200, 30, 60)).save(path)
    drawn = render(path, Protocol.halfblocks, Area(columns=40, rows=20))
    assert isinstance(drawn, HalfBlocks)
    assert (drawn.width, drawn.height) == (40, 10)
    # Too tall for the rows: the height decides, two pixels a row.
    tall = tmp_path / "tall.png"
    Image.new("RGB", (100, 400), (200, 30, 60)).save(tall)
    drawn = render(tall, Protocol.halfblocks, Area(columns=40, rows=20))
    assert isinstance(drawn, HalfBlocks)
    assert (drawn.width, drawn.height) == (10, 40)


def test_transparent_pixels_show_the_terminal_background(tmp_path: Path) -> None:
    image = Image.new("RGBA", (3, 2), (0, 0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0, 255))  # upper only
    image.putpixel((1, 1), (0, 0, 255, 255))  # lower only
    image.putpixel((2, 0), (0, 255, 0, 255))  # both
    image.putpixel((2, 1), (9, 9, 9, 255))
    console, out = truecolor()
    console.print(HalfBlocks(image))
    assert out.getvalue() == (
        "\x1b[38;2;255;0;0m▀\x1b[0m"
        "\x1b[38;2;0;0;255m▄\x1b[0m"
        "\x1b[38;2;0;255;0;48;2;9;9;9m▀\x1b[0m\n"
    )


def test_a_run_of_equal_cells_is_coloured_once(tmp_path: Path) -> None:
    console, out = truecolor()
    console.print(HalfBlocks(Image.new("RGB", (6, 2), (1, 2, 3))))
    assert out.getvalue() == "\x1b[38;2;1;2;3;48;2;1;2;3m▀▀▀▀▀▀\x1b[0m\n"


# Terminal protocols --------------------------------------------------------------------------


def test_kitty_gets_the_image_shrunk_to_its_cells_in_pieces(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.effect_noise((1200, 800), 64).convert("RGB").save(path)
    drawn = render(path, Protocol.kitty, Area(columns=60, rows=30, cell_width=10, cell_height=20))
    assert isinstance(drawn, Drawn)
    # 1200x800 px is 120x40 cells of 10x20 px; halved to fit 60 columns: 60x20.
    assert (drawn.columns, drawn.rows) == (60, 20)
    pieces = re.findall(r"\x1b_G([^;]*);([^\x1b]*)\x1b\\", drawn.escape)
    assert "".join(f"\x1b_G{head};{data}\x1b\\" for head, data in pieces) == drawn.escape
    assert pieces[0][0] == "a=T,f=100,q=2,C=1,c=60,r=20,m=1"
    assert [head for head, _ in pieces[1:-1]] == ["m=1"] * (len(pieces) - 2)
    assert pieces[-1][0] == "m=0"
    assert all(len(data) <= 4096 for _, data in pieces)
    png = base64.b64decode("".join(data for _, data in pieces))
    with Image.open(io.BytesIO(png)) as sent:
        assert (sent.format, sent.size) == ("PNG", (600, 400))


def test_iterm_gets_one_inline_file_of_the_cells_size(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.new("RGB", (800, 1200), (10, 20, 30)).save(path)
    drawn = render(path, Protocol.iterm, Area(columns=100, rows=30, cell_width=8, cell_height=16))
    assert isinstance(drawn, Drawn)
    # 100x75 cells of 8x16 px at its own size; 30 rows is the limit: 40x30.
    assert (drawn.columns, drawn.rows) == (40, 30)
    match = re.fullmatch(
        r"\x1b\]1337;File=inline=1;size=(\d+);width=40;height=30;preserveAspectRatio=1:"
        r"([A-Za-z0-9+/=]+)\x07",
        drawn.escape,
    )
    assert match
    png = base64.b64decode(match.group(2))
    assert int(match.group(1)) == len(png)
    with Image.open(io.BytesIO(png)) as sent:
        assert sent.size == (320, 480)


def test_sixel_is_encoded_by_textual_image_at_the_cells_pixels(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.new("RGB", (300, 120), (250, 0, 0)).save(path)
    drawn = render(path, Protocol.sixel, Area(columns=20, rows=10, cell_width=10, cell_height=20))
    assert isinstance(drawn, Drawn)
    assert (drawn.columns, drawn.rows) == (20, 4)
    # A DCS sixel string: raster attributes say 200x80 pixels, then the data, then ST.
    assert drawn.escape.startswith("\x1bP") and drawn.escape.endswith("\x1b\\")
    assert '"1;1;200;80' in drawn.escape
    assert sixel_escape(Image.new("RGB", (4, 6))) is not None


def test_a_drawn_image_keeps_its_rows_and_puts_the_cursor_back() -> None:
    console, out = truecolor()
    console.print(Drawn("<image>", columns=4, rows=2))
    assert out.getvalue() == "    \n    \n\x1b7\x1b[2A\r<image>\x1b8"


def test_escape_builders_split_and_wrap_exactly() -> None:
    png = bytes(range(256)) * 20  # 5120 bytes: 6828 characters of base64, two pieces
    data = base64.b64encode(png).decode()
    assert kitty_escape(png, 3, 2) == (
        f"\x1b_Ga=T,f=100,q=2,C=1,c=3,r=2,m=1;{data[:4096]}\x1b\\\x1b_Gm=0;{data[4096:]}\x1b\\"
    )
    assert iterm_escape(b"abc", 3, 2) == (
        "\x1b]1337;File=inline=1;size=3;width=3;height=2;preserveAspectRatio=1:YWJj\x07"
    )


# The viewer ----------------------------------------------------------------------------------


def test_the_viewer_starts_the_chosen_command_with_each_path(tmp_path: Path) -> None:
    started: list[list[str]] = []

    def start(command: list[str]) -> subprocess.Popen[bytes]:
        started.append(command)
        return None  # type: ignore[return-value]  # the viewer never looks at it

    viewer = Viewer(
        preview=False,
        open_images=True,
        protocol=Protocol.none,
        open_command="feh --scale-down -g '800x600'",
        start=start,
    )
    assert viewer.open(Path("out/cat edit.png")) is None
    assert viewer.open(Path("dog.png")) is None
    assert started == [
        ["feh", "--scale-down", "-g", "800x600", "out/cat edit.png"],
        ["feh", "--scale-down", "-g", "800x600", "dog.png"],
    ]


def test_a_viewer_that_cannot_start_is_named_once(tmp_path: Path) -> None:
    calls = []

    def start(command: list[str]) -> subprocess.Popen[bytes]:
        calls.append(command)
        raise FileNotFoundError(2, "No such file or directory")

    viewer = Viewer(
        preview=False, open_images=True, protocol=Protocol.none, open_command="imv", start=start
    )
    assert viewer.open(Path("cat-edit.png")) == (
        "cat-edit.png could not be opened with imv (No such file or directory); check "
        "preview.open_command"
    )
    assert viewer.open(Path("dog-edit.png")) is None
    assert len(calls) == 1


def test_a_bad_open_command_setting_is_refused() -> None:
    check = CORE_KEYS["preview.open_command"].check
    assert check(" feh -F ") == "feh -F"
    with pytest.raises(Exception, match='invalid command "feh \'x" \\(No closing quotation\\)'):
        check("feh 'x")


@pytest.fixture
def opened(isolated: Path) -> Iterator[tuple[str, int]]:
    """A named pipe an open command writes each path it is given to, and a command for it."""
    fifo = isolated / "opened"
    os.mkfifo(fifo)
    # Held open for writing too: a read then waits for data instead of seeing the end.
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        yield f'sh -c \'printf "%s\\n" "$1" > {fifo}\' viewer', fd
    finally:
        os.close(fd)


def read_lines(fd: int, count: int, timeout: float = 30.0) -> list[str]:
    """``count`` lines from the pipe, waiting for each at most ``timeout`` seconds."""
    data = b""
    while data.count(b"\n") < count:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"only {data!r} came within {timeout} s"
        data += os.read(fd, 4096)
    return data.decode().splitlines()


def test_open_starts_the_viewer_with_each_saved_image(
    served: Served, sample: Path, opened: tuple[str, int]
) -> None:
    command, pipe = opened
    (sample.parent / "dog.png").write_bytes(sample.read_bytes())
    env = backend_env(served) | {"NANOEDIT_OPEN_COMMAND": command}
    result = run_cli(["edit", "cat.png", "dog.png", "-p", "x", "--open", "-d", "out"], env=env)
    assert result.exit_code == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["out/cat-edit.jpg", "out/dog-edit.jpg"]
    assert sorted(read_lines(pipe, 2)) == ["out/cat-edit.jpg", "out/dog-edit.jpg"]
    assert "warning" not in result.stderr


def test_open_without_a_system_viewer_says_what_to_do_once(
    served: Served, sample: Path, isolated: Path
) -> None:
    (isolated / "dog.png").write_bytes(sample.read_bytes())
    (isolated / "bin").mkdir()
    env = backend_env(served) | {"PATH": str(isolated / "bin")}
    result = run_cli(["edit", "cat.png", "dog.png", "-p", "x", "--open", "-j", "1"], env=env)
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\ndog-edit.jpg\n")
    assert result.stderr == (
        "2 jobs, 2 images, estimated $0.134 (gemini-3.1-flash-image at $0.067)\n"
        "saved cat-edit.jpg (1200x896 JPEG) from cat.png\n"
        "warning: cat-edit.jpg could not be opened: xdg-open was not found; install it, or "
        "choose a viewer with: nanoedit config set preview.open_command COMMAND\n"
        "saved dog-edit.jpg (1200x896 JPEG) from dog.png\n"
        "2 jobs: 2 done, 0 failed, 2 images saved\n"
    )


# Previews through the command ----------------------------------------------------------------


def test_no_preview_when_stderr_is_not_a_terminal(served: Served, sample: Path) -> None:
    env = backend_env(served) | {"NANOEDIT_PREVIEW_PROTOCOL": "halfblocks"}
    result = run_cli(["edit", "cat.png", "-p", "x", "--preview"], env=env)
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n")
    assert result.stderr == "saved cat-edit.jpg (1200x896 JPEG) from cat.png\n"


COLUMNS, ROWS = 60, 40


# What a live display's redraw writes: erase the line, or go up a line and erase that one.
REDRAW = re.compile(r"(\r\n|\r\x1b\[2K|\x1b\[1A\x1b\[2K)")


def settled_lines(screen: str) -> list[str]:
    """The lines a terminal keeps of ``screen``: what the live display drew and then erased
    is gone, however many lines it took (a bar wraps when its byte count grows)."""
    lines = [""]
    for piece in REDRAW.split(screen):
        if piece == "\r\n":
            lines.append("")
        elif piece == "\r\x1b[2K":
            lines[-1] = ""
        elif piece == "\x1b[1A\x1b[2K":
            lines.pop()
            lines[-1] = ""
        else:
            lines[-1] += piece
    return lines


def on_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, bytes, str]:
    """Run the installed nanoedit with stderr on a COLUMNS x ROWS pseudo-terminal; returns its
    exit code, its stdout (a pipe) and what it wrote on the terminal."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    inherited = {
        name: value
        for name, value in os.environ.items()
        # The size comes from the terminal itself, as it does for a person.
        if "proxy" not in name.lower()
        and name not in ("TMUX", "STY", "KITTY_WINDOW_ID", "COLUMNS", "LINES")
    }
    process = subprocess.Popen(
        [NANOEDIT, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=inherited | {"TERM": "xterm-256color", "COLORTERM": "truecolor"} | env,
    )
    stdout, _, screen = on_pty(process, controller, terminal)
    return process.returncode, stdout, screen.decode("utf-8")


def test_the_installed_command_previews_the_saved_image_in_half_blocks(isolated: Path) -> None:
    code, stdout, screen = on_terminal(
        ["generate", "-p", "a red fox", "--ratio", "16:9", "--sandbox", "--preview"],
        isolated,
        {"NANOEDIT_CONFIG_DIR": str(isolated / "config")},
    )
    assert (code, stdout) == (0, b"a-red-fox.jpg\n"), screen
    # A live display's redraw erases the lines it drew: the rest is what stays there.
    lines = settled_lines(screen)
    saved = "saved a-red-fox.jpg (1376x768 JPEG) from a-red-fox"
    (at,) = [n for n, line in enumerate(lines) if line == saved]
    preview = []
    for line in lines[at + 1 :]:
        if not CELLS.match(line):
            break
        preview.append(cells_of(line))
    # As wide as the terminal (60 cells), as high as the shape says: 33 pixels (768 * 60 /
    # 1376, rounded), 17 rows, the last one's lower half empty.
    with Image.open(isolated / "a-red-fox.jpg") as image:
        assert image.size == (1376, 768)
        expected = image.convert("RGBA").resize((60, 33), Image.Resampling.BOX)
    assert len(preview) == 17
    assert all(len(row) == 60 for row in preview)
    assert preview == expected_cells(expected)
    # The image is not blank: the preview shows its colours, not one flat one.
    assert len({cell for row in preview for cell in row}) > 20
