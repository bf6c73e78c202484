"""Real, deterministic images: what the sandbox's "model" draws for edits and generations.

Everything is drawn on a canvas of at most about 1.6K pixels a side and scaled up at the end,
so a 4K answer costs well under a second. Same inputs, same bytes.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

# Kept importable from here, where the sandbox's APIs have always found them.
from nanoedit.sandbox.encoded import EXTENSIONS, RGB, Encoded, encode, seed_of

__all__ = ["EXTENSIONS", "RGB", "Encoded", "encode", "seed_of"]

WORK_SIDE = 1600
# The most pixels an uploaded or fetched image may have: what nanoedit itself sends at most
# (real servers do not publish a limit).
MAX_DECODE_PIXELS = 250_000_000


@dataclass(frozen=True)
class Picture:
    """What a drawing is asked for: the prompt it shows (and picks its look by), the answer's
    size in pixels and its format, which of ``count`` images of one request it is
    (``variant``), and the prompts of the conversation's earlier turns when it continues one
    (see ``thread_marks``)."""

    prompt: str
    size: tuple[int, int]
    mime: str
    variant: int = 0
    count: int = 1
    earlier: tuple[str, ...] = ()
    transparent: bool = False
    """Asked for a transparent background (OpenAI's ``background: transparent``): the answer
    is the subject with its alpha (see ``transparency``)."""
    seed: int | None = None
    """The request's seed, if it gave one: the same seed draws the same picture, another seed
    another (its colours and shapes), and the caption names it."""


def sniff_mime(data: bytes) -> str | None:
    """The MIME type of a PNG, JPEG or WebP file from its first bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode(data: bytes) -> Image.Image:
    """An uploaded or fetched image as upright RGB; ValueError unless a readable PNG, JPEG
    or WebP."""
    if sniff_mime(data) is None:
        raise ValueError("not a PNG, JPEG or WebP image")
    # Pillow's own check is process-wide, and nanoedit (in the same process in tests and with
    # --sandbox) turns it off for its own limits: the sandbox checks its limit itself.
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_DECODE_PIXELS:
                raise ValueError("an image too large to decode")
            # Inputs are drawn as thumbnails on a work canvas: a phone photo need not be
            # decoded whole (JPEG decodes at 1/2, 1/4 or 1/8 of each side for free).
            opened.draft(None, (WORK_SIDE, WORK_SIDE))
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"a damaged image ({exc})") from None
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent areas become white, as a model sees a pasted cut-out.
        backdrop = Image.new("RGBA", image.size, "white")
        return Image.alpha_composite(backdrop, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def color_of(*parts: str) -> RGB:
    """A saturated colour picked by the text given."""
    rng = random.Random(seed_of("colour", *parts))
    hue = rng.random()
    # A cheap HSV-to-RGB with full saturation and value, then softened a little.
    channels = [max(0.0, min(1.0, abs((hue * 6 + shift) % 6 - 3) - 1)) for shift in (0, 4, 2)]
    r, g, b = (int(40 + 200 * c) for c in channels)
    return r, g, b


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` pixels (no system fonts, so output is the same
    everywhere)."""
    return ImageFont.load_default(size=max(8, size))


def fit_caption(text: str, room: int, measure: Callable[[str], float]) -> str:
    """The start of ``text`` that fits on one line ``room`` pixels wide, as ``measure`` (a
    font's ``getlength``) gives widths: whitespace runs (line breaks, tabs) as one space, and
    an ellipsis at the end when it is cut.

    The work does not grow with the text: only its first ``room + 1`` characters are looked at
    (a glyph narrower than a pixel is a rare mark, and a caption of more of them is cut all
    the same), and the cut is found by halving, in a number of measurements that grows with
    the logarithm of ``room``. Measuring one character fewer each time, as this did, took
    minutes for a long prompt: quadratic in its length.
    """
    head = " ".join(text[: room + 1].split())
    if len(text) <= room + 1 and measure(head) <= room:
        return head
    # The longest start that fits with the ellipsis after it: widths grow with the length.
    fits, overflows = 0, len(head) + 1
    while overflows - fits > 1:
        middle = (fits + overflows) // 2
        if measure(head[:middle] + "…") <= room:
            fits = middle
        else:
            overflows = middle
    return head[:fits] + "…"


def caption(image: Image.Image, text: str) -> Image.Image:
    """The prompt written in a dark band along the bottom, cut with an ellipsis to fit."""
    width, height = image.size
    band = max(24, height // 11)
    face = font(int(band * 0.5))
    margin = band // 3
    fitted = fit_caption(text, width - 2 * margin, face.getlength)
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0, 150))
    draw.text((margin, height - band / 2), fitted, font=face, fill="white", anchor="lm")
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


def _watercolor(image: Image.Image, prompt: str) -> Image.Image:
    soft = image.filter(ImageFilter.BoxBlur(radius=max(1, image.width // 400)))
    return Image.blend(ImageOps.posterize(soft, 3), Image.new("RGB", image.size, "white"), 0.15)


def _night(image: Image.Image, prompt: str) -> Image.Image:
    dark = ImageEnhance.Brightness(image).enhance(0.45)
    return Image.blend(dark, Image.new("RGB", image.size, (20, 30, 90)), 0.35)


def _grayscale(image: Image.Image, prompt: str) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


def _sketch(image: Image.Image, prompt: str) -> Image.Image:
    edges = ImageOps.grayscale(image).filter(ImageFilter.FIND_EDGES)
    return ImageOps.autocontrast(ImageOps.invert(edges)).convert("RGB")


def _sepia(image: Image.Image, prompt: str) -> Image.Image:
    return ImageOps.colorize(ImageOps.grayscale(image), "#3b2a1a", "#f0e0c0").convert("RGB")


def _invert(image: Image.Image, prompt: str) -> Image.Image:
    return ImageOps.invert(image)


def _tint(image: Image.Image, prompt: str) -> Image.Image:
    return Image.blend(image, Image.new("RGB", image.size, color_of(prompt)), 0.3)


# The first entry with a word found in the prompt decides the look; otherwise a tint.
EFFECTS: tuple[tuple[tuple[str, ...], Callable[[Image.Image, str], Image.Image]], ...] = (
    (("watercolor", "watercolour", "painting", "painted"), _watercolor),
    (("night", "dark", "moonlight"), _night),
    (("black and white", "grayscale", "greyscale", "monochrome"), _grayscale),
    (("sketch", "pencil", "line art"), _sketch),
    (("sepia", "vintage", "old photo"), _sepia),
    (("invert", "negative"), _invert),
)


def effect_for(prompt: str) -> Callable[[Image.Image, str], Image.Image]:
    """The visible change an edit applies for this prompt."""
    lowered = prompt.lower()
    for words, effect in EFFECTS:
        if any(word in lowered for word in words):
            return effect
    return _tint


def _work_size(size: tuple[int, int]) -> tuple[int, int]:
    scale = max(1, math.ceil(max(size) / WORK_SIDE))
    return round(size[0] / scale), round(size[1] / scale)


def _label(picture: Picture) -> str:
    """The caption: the prompt, and which image of its request it is when there are several."""
    seeded = "" if picture.seed is None else f"  (seed {picture.seed})"
    if picture.count > 1:
        return f"{picture.prompt}  ({picture.variant + 1}/{picture.count}){seeded}"
    return picture.prompt + seeded


def thread_marks(image: Image.Image, earlier: Sequence[str]) -> Image.Image:
    """A continued conversation's marks along the top left: a square per earlier turn, in
    the colour its prompt picks, then the turn this is (``turn 3``). A model that sees the
    earlier turns draws them; one sent only the last image sees none, so an answer shows
    which of the two it was. Nothing is drawn for a first turn."""
    if not earlier:
        return image
    side = max(12, min(image.size) // 16)
    gap = max(3, side // 4)
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    label = f"turn {len(earlier) + 1}"
    lettering = font(int(side * 0.8))
    # A band under the marks: a continued image is drawn from the one before, marks and all,
    # and the earlier turn's label must not show through the new one.
    width = len(earlier) * (side + gap) + gap + int(draw.textlength(label, font=lettering)) + gap
    draw.rectangle((0, 0, width, side + 2 * gap), fill=(16, 16, 24, 255))
    x = gap
    for prompt in earlier:
        draw.rectangle((x, gap, x + side, gap + side), fill=(*color_of(prompt), 255))
        draw.rectangle((x, gap, x + side, gap + side), outline="white", width=max(1, side // 10))
        x += side + gap
    draw.text((x, gap + side / 2), label, font=lettering, fill="white", anchor="lm")
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


def render_edit(inputs: Sequence[Image.Image], picture: Picture) -> Encoded:
    """The first input fitted to the picture's size with an effect chosen by its prompt, the
    other inputs inset as thumbnails, the marks of the earlier turns' prompts when it
    continues a conversation (``thread_marks``), and the prompt as a caption."""
    acted = _acted_out(picture)
    if acted is not None:
        return acted
    prompt, work = picture.prompt, _work_size(picture.size)
    canvas = effect_for(prompt)(ImageOps.fit(inputs[0], work, Image.Resampling.BICUBIC), prompt)
    thumb = max(16, min(work) // 5)
    gap = max(4, thumb // 12)
    x, y = work[0] - gap, gap
    for reference in inputs[1:]:
        small = ImageOps.contain(reference, (thumb, thumb), Image.Resampling.BICUBIC)
        framed = ImageOps.expand(small, border=max(2, gap // 2), fill="white")
        if x - framed.width < 0:
            x, y = work[0] - gap, y + thumb + gap
        canvas.paste(framed, (x - framed.width, y))
        x -= framed.width + gap
    return _finished(canvas, picture)


def render_generate(picture: Picture) -> Encoded:
    """A gradient with shapes, both picked by the picture's prompt, the marks of the earlier
    turns' prompts (``thread_marks``), and the prompt as a caption."""
    acted = _acted_out(picture)
    if acted is not None:
        return acted
    work = _work_size(picture.size)
    key = f"{picture.prompt}\0{picture.variant}"
    if picture.seed is not None:
        key += f"\0seed {picture.seed}"
    top, bottom = (
        Image.new("RGB", work, color_of(key, "top")),
        Image.new("RGB", work, color_of(key)),
    )
    canvas = Image.composite(bottom, top, Image.linear_gradient("L").resize(work))
    rng = random.Random(seed_of("shapes", key))
    overlay = Image.new("RGBA", work, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(8):
        r, g, b = (rng.randrange(256) for _ in range(3))
        x0, y0 = rng.randrange(work[0]), rng.randrange(work[1])
        extent = rng.randrange(min(work) // 8, min(work) // 2)
        box = (x0 - extent // 2, y0 - extent // 2, x0 + extent // 2, y0 + extent // 2)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=(r, g, b, 170))
        else:
            draw.rectangle(box, fill=(r, g, b, 170))
    canvas = Image.alpha_composite(canvas.convert("RGBA"), overlay)
    return _finished(canvas, picture)


def _acted_out(picture: Picture) -> Encoded | None:
    """A picture asking for a transparent or a flat, one-colour background, as the
    ``transparency`` module draws it (a subject with a known alpha, the same whatever the
    inputs: what a model keeps when asked to change only the background); None for any other.
    """
    from nanoedit.sandbox.transparency import backdrop_of, render_backdrop, render_transparent

    if picture.transparent:
        return render_transparent(picture.prompt, picture.size, picture.mime, picture.variant)
    colour = backdrop_of(picture.prompt)
    if colour is None:
        return None
    return render_backdrop(picture.prompt, picture.size, picture.mime, colour, picture.variant)


def _finished(canvas: Image.Image, picture: Picture) -> Encoded:
    """A drawing finished: the earlier turns' marks and the caption, scaled to the size asked
    for and encoded."""
    canvas = caption(thread_marks(canvas, picture.earlier), _label(picture))
    return encode(canvas.resize(picture.size, Image.Resampling.BILINEAR), picture.mime)


def standin(url: str, mime: str, size: tuple[int, int] = (800, 600)) -> Encoded:
    """A placeholder for an image the sandbox cannot download: a gradient naming the URL."""
    top = Image.new("RGB", size, color_of(url, "top"))
    bottom = Image.new("RGB", size, color_of(url))
    canvas = Image.composite(bottom, top, Image.linear_gradient("L").resize(size))
    return encode(caption(canvas, f"stand-in for {url}"), mime)
