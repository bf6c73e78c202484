"""Alpha from opaque renders: the two ``--transparent`` methods that work on any model.

``key``: the model draws the subject on a flat key colour it does not use (green or magenta);
alpha is how far each pixel is from that colour along the key's own direction, and the colour
is un-mixed from it (which is the despill: the key's share of an edge pixel is taken out).
``matte``: the model draws the subject on white and then on black; alpha is one minus their
difference, and the colour is the black render divided by alpha. Glass, hair and soft shadows
keep their partial alpha with ``matte``; with ``key`` they do only as far as the key is clean.

Pure pixel work with Pillow (no numpy: it is not a dependency), on whole images at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from PIL import Image, ImageMath, ImageStat

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class KeyColour:
    """A key colour the model is asked to paint the background with: its name in words and
    hex (both go into the prompt), its value, and which channels are "on" in it."""

    name: str
    hex: str
    rgb: RGB
    on: tuple[int, ...]
    """The channels the key is made of (green: G; magenta: R and B); the others are off."""

    @property
    def off(self) -> tuple[int, ...]:
        """The channels the key has none of."""
        return tuple(channel for channel in range(3) if channel not in self.on)


GREEN = KeyColour("green", "#00FF00", (0, 255, 0), (1,))
MAGENTA = KeyColour("magenta", "#FF00FF", (255, 0, 255), (0, 2))
KEYS: tuple[KeyColour, ...] = (GREEN, MAGENTA)
# Raw key alpha below LOW is background: compression noise on the flat key (a few levels in
# a JPEG) would otherwise leave a faint haze over the whole picture. Any stretch at the top
# only added error on the sandbox's known-alpha renders (measured: benchmarks/RESULTS.md).
LOW, HIGH = 0.02, 1.0
# A pixel counts as "using" a key colour when its key channels lead the others by this much
# (out of 255): a leaf for green, a flower for magenta.
USES_KEY = 60


def keyness(pixel: Sequence[int], key: KeyColour) -> int:
    """How far ``pixel``'s key channels lead the others (255 for the key itself; 0 or less for
    a colour with no trace of the key)."""
    return min(pixel[c] for c in key.on) - max(pixel[c] for c in key.off)


def choose_key(image: Image.Image | None) -> KeyColour:
    """The key colour ``image`` (an edit's input) uses least: green unless more of its pixels
    are green than magenta. With no image (a generation), green: the prompt tells the model
    to use none of it."""
    if image is None:
        return GREEN
    small = image.convert("RGB")
    small.thumbnail((128, 128))
    pixels = cast("list[tuple[int, int, int]]", list(small.get_flattened_data()))

    def users(key: KeyColour) -> int:
        return sum(1 for pixel in pixels if keyness(pixel, key) > USES_KEY)

    return min(KEYS, key=users)  # ties go to the first: green


def backdrop_of(image: Image.Image) -> RGB:
    """The background's colour as the model painted it: the median of the image's border
    (a model's "pure green" is rarely exactly #00FF00, and JPEG shifts it)."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    band = max(1, min(width, height) // 100)
    strips = [
        rgb.crop((0, 0, width, band)),
        rgb.crop((0, height - band, width, height)),
        rgb.crop((0, 0, band, height)),
        rgb.crop((width - band, 0, width, height)),
    ]
    frame = Image.new("RGB", (sum(strip.width * strip.height for strip in strips), 1))
    x = 0
    for strip in strips:
        row = _row(strip)
        frame.paste(row, (x, 0))
        x += row.width
    median = ImageStat.Stat(frame).median
    return int(median[0]), int(median[1]), int(median[2])


def _row(image: Image.Image) -> Image.Image:
    """An image's pixels as one row (for a median over several strips at once)."""
    row = Image.new(image.mode, (image.width * image.height, 1))
    row.putdata(list(image.get_flattened_data()))
    return row


def nearest_key(colour: RGB) -> KeyColour:
    """The key colour the painted background is closest to."""
    return max(KEYS, key=lambda key: keyness(colour, key))


def remove_key(image: Image.Image, key: KeyColour | None = None) -> Image.Image:
    """The subject of ``image`` (drawn on a flat key colour) as RGBA: alpha from each pixel's
    key lead relative to the background's, stretched between ``LOW`` and ``HIGH`` (a soft,
    anti-aliased edge, not a cut-out), colour un-mixed from the background and despilled.

    ``key`` is which key was asked for; the background's actual colour is measured on the
    border, so a model's near-green is taken out as it was painted."""
    rgb = image.convert("RGB")
    backdrop = backdrop_of(rgb)
    key = key or nearest_key(backdrop)
    lead = keyness(backdrop, key)
    if lead <= USES_KEY:
        raise ValueError(
            f"the background is {_hex(backdrop)}, not the {key.name} key ({key.hex}) that was "
            "asked for"
        )
    return _by_strips(rgb.size, lambda box: _keyed(rgb.crop(box), key, backdrop, lead))


def _keyed(rgb: Image.Image, key: KeyColour, backdrop: RGB, lead: int) -> Image.Image:
    """:func:`remove_key` of one strip, the backdrop measured on the whole image."""
    channels = [band.convert("F") for band in rgb.split()]
    on = _lowest([channels[c] for c in key.on])
    off = _highest([channels[c] for c in key.off])
    # 1 - lead/lead_of_backdrop: 0 on the backdrop, 1 where the key channels do not lead.
    alpha = _eval(
        lambda a: a["min"](
            a["max"](((1.0 - (a["on"] - a["off"]) / lead) - LOW) / (HIGH - LOW), 0.0), 1.0
        ),
        on=on,
        off=off,
    )
    colour = [_unmix(channel, alpha, backdrop[n]) for n, channel in enumerate(channels)]
    colour = _despill(colour, key)
    return _rgba(colour, alpha)


def combine_matte(on_white: Image.Image, on_black: Image.Image) -> Image.Image:
    """The subject as RGBA from the same subject drawn on white and on black: per channel,
    white - black = (1 - alpha) * 255, so alpha is one minus their mean difference; the
    colour is the black render (alpha * colour) divided by alpha."""
    if on_white.size != on_black.size:
        raise ValueError(
            f"the white render is {on_white.width}x{on_white.height} and the black one "
            f"{on_black.width}x{on_black.height}: they must be the same picture"
        )
    white_rgb, black_rgb = on_white.convert("RGB"), on_black.convert("RGB")
    return _by_strips(white_rgb.size, lambda box: _matted(white_rgb.crop(box), black_rgb.crop(box)))


def _matted(on_white: Image.Image, on_black: Image.Image) -> Image.Image:
    """:func:`combine_matte` of one strip."""
    white = [band.convert("F") for band in on_white.split()]
    black = [band.convert("F") for band in on_black.split()]
    alpha = _eval(
        lambda a: a["min"](
            a["max"](
                1.0 - ((a["wr"] - a["br"]) + (a["wg"] - a["bg"]) + (a["wb"] - a["bb"])) / 765.0,
                0.0,
            ),
            1.0,
        ),
        wr=white[0], wg=white[1], wb=white[2], br=black[0], bg=black[1], bb=black[2],
    )  # fmt: skip
    colour = [_unmix(channel, alpha, 0) for channel in black]
    return _rgba(colour, alpha)


# Rows worked on at a time: every step is per pixel, so strips give the same image as the
# whole, and a 4K result needs some 60 MB of float bands instead of about 550.
STRIP_ROWS = 256


def _by_strips(
    size: tuple[int, int], work: Callable[[tuple[int, int, int, int]], Image.Image]
) -> Image.Image:
    """An RGBA image of ``size`` made strip by strip: ``work`` makes the strip in a box."""
    width, height = size
    made = Image.new("RGBA", size)
    for top in range(0, height, STRIP_ROWS):
        box = (0, top, width, min(height, top + STRIP_ROWS))
        made.paste(work(box), (0, top))
    return made


def _unmix(observed: Image.Image, alpha: Image.Image, backdrop: int) -> Image.Image:
    """One channel's own colour where it was mixed with ``backdrop`` by ``alpha`` (0..1):
    (observed - (1 - alpha) * backdrop) / alpha, 0 where alpha is 0, within 0..255."""
    return _eval(
        lambda a: a["min"](
            a["max"](
                (a["c"] - (1.0 - a["alpha"]) * backdrop) / a["max"](a["alpha"], 1.0 / 255), 0.0
            ),
            255.0,
        ),
        c=observed,
        alpha=alpha,
    )


def _despill(colour: list[Image.Image], key: KeyColour) -> list[Image.Image]:
    """Take out what is left of the key's hue: its channels may not lead the others (the
    subject was asked to use none of the key colour, so a lead is the backdrop's light)."""
    on = _lowest([colour[c] for c in key.on])
    off = _highest([colour[c] for c in key.off])
    excess = _eval(lambda a: a["max"](a["on"] - a["off"], 0.0), on=on, off=off)
    return [
        _eval(lambda a: a["c"] - a["x"], c=band, x=excess) if n in key.on else band
        for n, band in enumerate(colour)
    ]


def _rgba(colour: Sequence[Image.Image], alpha: Image.Image) -> Image.Image:
    """RGBA from float channels (0..255) and a float alpha (0..1), rounded."""
    bands = [_byte(band) for band in colour]
    scaled = _eval(lambda a: a["x"] * 255.0 + 0.5, x=alpha)
    return Image.merge("RGBA", (*bands, _byte(scaled)))


def _byte(band: Image.Image) -> Image.Image:
    """A float channel as 8 bits, clamped (Pillow's F to L conversion clips)."""
    return band.convert("L")


def _lowest(bands: Sequence[Image.Image]) -> Image.Image:
    low = bands[0]
    for band in bands[1:]:
        low = _eval(lambda a: a["min"](a["x"], a["y"]), x=low, y=band)
    return low


def _highest(bands: Sequence[Image.Image]) -> Image.Image:
    high = bands[0]
    for band in bands[1:]:
        high = _eval(lambda a: a["max"](a["x"], a["y"]), x=high, y=band)
    return high


def _eval(expression: Any, **images: Image.Image) -> Image.Image:
    """Pillow's ``ImageMath.lambda_eval``, typed: these expressions always make an image."""
    made = ImageMath.lambda_eval(expression, **images)
    assert isinstance(made, Image.Image)
    return made


def _hex(colour: RGB) -> str:
    return "#{:02X}{:02X}{:02X}".format(*colour)


def alpha_error(recovered: Image.Image, known: Image.Image) -> tuple[float, int]:
    """The mean and the largest absolute difference (0..255) between two images' alpha."""
    if recovered.size != known.size:
        raise ValueError("the two images differ in size")
    from PIL import ImageChops

    difference = ImageChops.difference(recovered.getchannel("A"), known.getchannel("A"))
    stat = ImageStat.Stat(difference)
    return stat.mean[0], int(stat.extrema[0][1])


def png_bytes(image: Image.Image) -> bytes:
    """An RGBA image as PNG bytes (no metadata: the provenance is added when it is saved)."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def keyed_file(path: Path) -> bytes:
    """The image at ``path`` (a subject on a flat key colour) as a PNG with alpha; ValueError
    when its background is no key colour (the model ignored the instruction)."""
    with Image.open(path) as image:
        image.load()
        return png_bytes(remove_key(image))


def has_alpha(path: Path) -> bool:
    """Whether the image at ``path`` has an alpha channel (or a transparent colour)."""
    with Image.open(path) as image:
        return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
