"""Seeing a result where it was made: a preview on the terminal, or the image in a viewer.

A preview is drawn on stderr, never on stdout (that is for results), and only on a terminal.
How it is drawn is read from the environment (``TERM``, ``TERM_PROGRAM``, ``KITTY_WINDOW_ID``,
``LC_TERMINAL``…), or forced by ``preview.protocol``: Kitty's graphics protocol, iTerm2's
inline images, sixel, or, on any colour terminal, half blocks: each character cell a ``▀``
whose foreground is the upper pixel and whose background is the lower one.

The terminal is never asked what it can do: an answer comes back on stdin, which may carry a
job file (``--from -``), and a terminal that does not answer costs a time-out per run.

Pillow, and the sixel encoder of ``textual-image``, are loaded only when an image is drawn.
"""

from __future__ import annotations

import base64
import io
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import ControlType, Segment
from rich.style import Style

if TYPE_CHECKING:
    from PIL.Image import Image

UPPER_HALF = "▀"
LOWER_HALF = "▄"
# Pixels of one character cell when the terminal does not say (a VT340's, as most tools guess).
DEFAULT_CELL = (10, 20)
# Rows kept free under a preview, so the line that names the image stays on screen with it.
ROWS_KEPT = 3
# A pixel at least this opaque is drawn; fainter ones show the terminal's own background.
OPAQUE = 128
# Kitty takes a payload in pieces of at most 4096 bytes of base64.
KITTY_CHUNK = 4096


class Protocol(StrEnum):
    """How a preview is drawn."""

    kitty = "kitty"
    iterm = "iterm"
    sixel = "sixel"
    halfblocks = "halfblocks"
    none = "none"


PROTOCOL_CHOICES = ("auto", *(protocol.value for protocol in Protocol))


def detect_protocol(env: Mapping[str, str]) -> Protocol:
    """The best way to draw on the terminal that ``env`` describes, from the environment only."""
    term = env.get("TERM", "").lower()
    program = env.get("TERM_PROGRAM", "").lower()
    if not term or term == "dumb":
        return Protocol.none
    # tmux and screen pass image escapes on only when configured to; their cells always work.
    if env.get("TMUX") or env.get("STY") or term.startswith(("tmux", "screen")):
        return Protocol.halfblocks
    if env.get("KITTY_WINDOW_ID") or term in ("xterm-kitty", "xterm-ghostty"):
        return Protocol.kitty
    if program == "ghostty":
        return Protocol.kitty
    # iTerm2 sets LC_TERMINAL, which ssh passes on where TERM_PROGRAM is lost.
    if program in ("iterm.app", "wezterm") or env.get("LC_TERMINAL") == "iTerm2":
        return Protocol.iterm
    if env.get("KONSOLE_VERSION") or term.startswith(("foot", "mlterm", "contour", "yaft")):
        return Protocol.sixel
    return Protocol.halfblocks


def choose_protocol(setting: str, env: Mapping[str, str]) -> Protocol:
    """``preview.protocol``'s value, with ``auto`` read from the environment."""
    return detect_protocol(env) if setting == "auto" else Protocol(setting)


@dataclass(frozen=True)
class Area:
    """Where a preview may go: character cells, and the pixels of one cell."""

    columns: int
    rows: int
    cell_width: int = DEFAULT_CELL[0]
    cell_height: int = DEFAULT_CELL[1]


def terminal_area(console: Console) -> Area:
    """The console's size in cells, less a few rows, and its cell size in pixels when the
    terminal reports it (``TIOCGWINSZ``); a VT340's cell otherwise."""
    columns, rows = console.width, max(2, console.height - ROWS_KEPT)
    cell_width, cell_height = DEFAULT_CELL
    try:
        import fcntl
        import struct
        import termios

        packed = fcntl.ioctl(console.file.fileno(), termios.TIOCGWINSZ, bytes(8))
        height, width, x_pixels, y_pixels = struct.unpack("HHHH", packed)
        if width and height and x_pixels and y_pixels:
            cell_width, cell_height = x_pixels // width, y_pixels // height
    except (ImportError, OSError, ValueError):
        pass  # not a terminal, or Windows: keep the guess
    return Area(columns, rows, max(1, cell_width), max(1, cell_height))


def fit(width: int, height: int, max_width: float, max_height: float) -> tuple[int, int]:
    """``width`` x ``height`` scaled to fit ``max_width`` x ``max_height``, its shape kept,
    never enlarged, at least 1 x 1."""
    scale = min(max_width / width, max_height / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def halfblock_pixels(width: int, height: int, area: Area) -> tuple[int, int]:
    """The size an image is shrunk to for half blocks: a cell is one pixel wide and two high,
    so a pixel stays square on a terminal whose cells are twice as high as wide."""
    return fit(width, height, area.columns, 2 * area.rows)


def shrink(image: Image, size: tuple[int, int]) -> Image:
    """The image as RGBA at ``size``, each pixel the average of those it covers."""
    from PIL import Image as PILImage

    rgba = image.convert("RGBA")
    return rgba if rgba.size == size else rgba.resize(size, PILImage.Resampling.BOX)


class HalfBlocks:
    """An RGBA image drawn with half blocks, two pixels a cell: ``▀`` in the upper pixel's
    colour on the lower pixel's (transparent pixels show the terminal's background)."""

    def __init__(self, image: Image) -> None:
        self.width, self.height = image.size
        data = image.convert("RGBA").tobytes()
        self.pixels = [
            (data[i], data[i + 1], data[i + 2], data[i + 3]) for i in range(0, len(data), 4)
        ]

    def cells(self) -> Iterable[list[tuple[str, Style]]]:
        """Each row of cells: its character and style."""
        from rich.color import Color

        def colour(pixel: tuple[int, int, int, int]) -> Color | None:
            return Color.from_rgb(*pixel[:3]) if pixel[3] >= OPAQUE else None

        for top_row in range(0, self.height, 2):
            row = []
            for x in range(self.width):
                upper = colour(self.pixels[top_row * self.width + x])
                below = top_row + 1 < self.height
                lower = colour(self.pixels[(top_row + 1) * self.width + x]) if below else None
                if upper is None and lower is None:
                    row.append((" ", Style()))
                elif upper is None:
                    row.append((LOWER_HALF, Style(color=lower)))
                else:
                    row.append((UPPER_HALF, Style(color=upper, bgcolor=lower)))
            yield row

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for row in self.cells():
            # A run of equal cells is one segment: one colour code for it, not one a cell.
            for (text, style), run in groupby(row):
                yield Segment(text * len(list(run)), style)
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)


class Drawn:
    """An image drawn by the terminal itself, over ``rows`` blank lines printed first: rich
    counts those lines, so a live progress display below keeps its place, and the image is
    then drawn over them with the cursor put back where it was."""

    def __init__(self, escape: str, columns: int, rows: int) -> None:
        self.escape, self.columns, self.rows = escape, columns, rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for _ in range(self.rows):
            yield Segment(" " * self.columns)
            yield Segment.line()
        # A control segment is written as it is and takes no room on the line.
        control = [(ControlType.BELL,)]
        yield Segment(f"\x1b7\x1b[{self.rows}A\r{self.escape}\x1b8", None, control)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.columns, self.columns)


def _png(image: Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def kitty_escape(png: bytes, columns: int, rows: int) -> str:
    """Kitty's graphics protocol: a PNG placed over ``columns`` x ``rows`` cells, sent in
    pieces, with the cursor left where it was and no answer asked for."""
    data = base64.b64encode(png).decode("ascii")
    pieces = [data[i : i + KITTY_CHUNK] for i in range(0, len(data), KITTY_CHUNK)] or [""]
    out = []
    for number, piece in enumerate(pieces):
        more = int(number < len(pieces) - 1)
        head = f"a=T,f=100,q=2,C=1,c={columns},r={rows},m={more}" if number == 0 else f"m={more}"
        out.append(f"\x1b_G{head};{piece}\x1b\\")
    return "".join(out)


def iterm_escape(png: bytes, columns: int, rows: int) -> str:
    """iTerm2's inline image (also drawn by WezTerm) over ``columns`` x ``rows`` cells."""
    data = base64.b64encode(png).decode("ascii")
    size = f"size={len(png)};width={columns};height={rows};preserveAspectRatio=1"
    return f"\x1b]1337;File=inline=1;{size}:{data}\x07"


def sixel_escape(image: Image) -> str | None:
    """The image as sixels, by textual-image's encoder; None when that is not installed."""
    try:
        # The encoder alone: importing textual_image.renderable queries the terminal.
        from textual_image._sixel import image_to_sixels
    except ImportError:
        return None
    return image_to_sixels(image.convert("RGB"))


def render(path: Path, protocol: Protocol, area: Area) -> HalfBlocks | Drawn:
    """A renderable that draws the image at ``path`` as large as fits ``area``.

    A terminal protocol gets the image shrunk to the pixels of the cells it covers, not the
    whole file: a 4K PNG would be megabytes of escapes. Sixel falls back to half blocks
    when its encoder is missing.
    """
    from PIL import Image as PILImage

    with PILImage.open(path) as opened:
        image = opened.copy()
    if protocol is Protocol.halfblocks:
        return HalfBlocks(shrink(image, halfblock_pixels(*image.size, area)))
    # The cells the image covers at its own size, scaled down to fit: as wide as fits, as
    # high as its shape says on cells of this terminal's shape.
    cells_wide = image.width / area.cell_width
    cells_high = image.height / area.cell_height
    scale = min(area.columns / cells_wide, area.rows / cells_high, 1.0)
    columns = max(1, min(area.columns, round(cells_wide * scale)))
    rows = max(1, min(area.rows, round(cells_high * scale)))
    pixels = fit(image.width, image.height, columns * area.cell_width, rows * area.cell_height)
    small = shrink(image, pixels)
    if protocol is Protocol.kitty:
        return Drawn(kitty_escape(_png(small), columns, rows), columns, rows)
    if protocol is Protocol.iterm:
        return Drawn(iterm_escape(_png(small), columns, rows), columns, rows)
    sixels = sixel_escape(small)
    if sixels is None:
        return HalfBlocks(shrink(image, halfblock_pixels(*image.size, area)))
    return Drawn(sixels, columns, rows)


def split_command(value: str) -> list[str]:
    """A command line split as a POSIX shell would, without running a shell."""
    from nanoedit.errors import UsageError

    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise UsageError(f"invalid command {value!r} ({exc}); check its quotes") from None
    if not words:
        raise UsageError("the command is empty; to remove a setting use nanoedit config unset KEY")
    return words


def check_open_command(value: str) -> str:
    """``preview.open_command``'s check: a command line that splits into words."""
    split_command(value)
    return value.strip()


def default_open_command() -> list[str]:
    """The system's own opener: ``open`` on macOS, ``xdg-open`` elsewhere."""
    return ["open"] if sys.platform == "darwin" else ["xdg-open"]


Starter = Callable[[list[str]], "subprocess.Popen[bytes]"]


def start_detached(command: list[str]) -> subprocess.Popen[bytes]:
    """Start a viewer that outlives nothing of ours: no stdin, and its output (viewers chat)
    kept off our stdout, which carries results. A thread reaps it when it ends."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    threading.Thread(target=process.wait, name="viewer", daemon=True).start()
    return process


class Viewer:
    """Shows each saved image: previewed on the terminal, opened in a viewer, or both.

    Each method returns a warning for the user, or None; a failing viewer is not started
    again for the next image.
    """

    def __init__(
        self,
        *,
        preview: bool,
        open_images: bool,
        protocol: Protocol,
        open_command: str | None = None,
        start: Starter = start_detached,
    ) -> None:
        self.preview_images = preview and protocol is not Protocol.none
        self.open_images = open_images
        self.protocol = protocol
        self.open_command = open_command
        self.start = start
        self.gave_up = False
        self.warned_colour = False

    def preview(self, path: Path, console: Console) -> str | None:
        """Draw the image under the line that named it, when stderr is a terminal."""
        if not self.preview_images or not console.is_terminal or console.is_dumb_terminal:
            return None
        if self.protocol is Protocol.halfblocks and (
            console.no_color or console.color_system is None
        ):
            if self.warned_colour:
                return None
            self.warned_colour = True
            return (
                "--preview draws half blocks in colour, and colour is off (NO_COLOR); unset "
                "NO_COLOR, or set preview.protocol to kitty, iterm or sixel if the terminal "
                "draws images"
            )
        try:
            console.print(render(path, self.protocol, terminal_area(console)))
        except (OSError, ValueError) as exc:
            return f"{path} could not be previewed ({exc})"
        return None

    def open(self, path: Path) -> str | None:
        """Open the image in the viewer: ``preview.open_command``, or the system's own."""
        if not self.open_images or self.gave_up:
            return None
        if self.open_command:
            command = [*split_command(self.open_command), str(path)]
            fix = "check preview.open_command"
        elif os.name == "nt":
            os.startfile(path)  # type: ignore[attr-defined]  # Windows only
            return None
        else:
            command = [*default_open_command(), str(path)]
            if shutil.which(command[0]) is None:
                self.gave_up = True
                return (
                    f"{path} could not be opened: {command[0]} was not found; install it, or "
                    "choose a viewer with: nanoedit config set preview.open_command COMMAND"
                )
            fix = "choose a viewer with: nanoedit config set preview.open_command COMMAND"
        try:
            self.start(command)
        except OSError as exc:
            self.gave_up = True
            return f"{path} could not be opened with {command[0]} ({exc.strerror or exc}); {fix}"
        return None
