"""Terminal previews and opening results in a viewer.

The unit tests draw small images whose every pixel is known; the terminal test runs the
installed ``nanoedit`` with stderr on a pseudo-terminal and reads the half blocks it drew back
into pixels.
"""

from __future__ import annotations

import base64
import io
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console

from nanoedit.preview import (
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
