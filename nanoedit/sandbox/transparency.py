"""The sandbox's "model" acting out transparency: a subject with a KNOWN alpha.

A prompt that asks for a solid, flat background of one colour, named in hex (``... on a
solid, flat #00FF00 background ...``), is answered with a sticker-like subject (a soft-edged
body, fine hair strands, a semi-transparent glass pane, a soft shadow) composited over that
colour; ``background: transparent`` (OpenAI's GPT image API) is answered with the subject
itself, alpha and all. The subject depends only on the prompt's words before its first
sentence about the background, the picture's size and its variant, so the same subject comes
back on white and on black (what the matte method needs of a model), and a test can draw the
known alpha with :func:`subject` to measure what a client recovered.

No caption is drawn on these: the subject is the whole picture, and a caption band would be
neither subject nor background.
"""

from __future__ import annotations

import random
import re

from PIL import Image, ImageDraw, ImageFilter

from nanoedit.sandbox.encoded import RGB, Encoded, encode, seed_of

# "... (#00FF00) background", "#FFFFFF background": the last one named wins.
_BACKDROP = re.compile(r"#([0-9A-Fa-f]{6})\)?\s+background", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# The subject's colours: warm and blue tones, none of them green or magenta, so that either
# key can be taken out of them.
PALETTE: tuple[RGB, ...] = (
    (232, 120, 40), (40, 96, 200), (236, 200, 60), (200, 64, 48), (96, 64, 40),
    (240, 226, 200), (56, 60, 72),
)  # fmt: skip
GLASS: RGB = (150, 200, 255)
GLASS_ALPHA = 96
SHADOW_ALPHA = 110


def backdrop_of(prompt: str) -> RGB | None:
    """The flat background colour a prompt asks for (``#RRGGBB background``), if it does."""
    found = _BACKDROP.findall(prompt)
    if not found:
        return None
    value = found[-1]
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def subject_text(prompt: str) -> str:
    """The words that pick the subject: the prompt's sentences before the first one about
    the background (the rest says what to draw it on, which must not change it)."""
    kept = []
    for sentence in _SENTENCE_END.split(prompt.strip()):
        if "background" in sentence.lower():
            break
        kept.append(sentence)
    return " ".join(kept).strip() or prompt.strip()


def subject(text: str, size: tuple[int, int], variant: int = 0) -> Image.Image:
    """The subject ``text`` picks, at ``size``, as RGBA over full transparency: its alpha is
    the known alpha of every sandbox render of it."""
    width, height = size
    side = min(size)
    rng = random.Random(seed_of("subject", text, str(variant)))
    first, second = rng.sample(PALETTE, 2)
    cx = width * (0.5 + rng.uniform(-0.06, 0.06))
    cy = height * (0.5 + rng.uniform(-0.05, 0.05))
    rx, ry = side * rng.uniform(0.22, 0.28), side * rng.uniform(0.26, 0.32)
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))

    # A soft shadow under the body: black, its alpha fading out.
    shadow = Image.new("L", size, 0)
    ImageDraw.Draw(shadow).ellipse(
        (cx - rx * 1.1, cy + ry * 0.8, cx + rx * 1.1, cy + ry * 1.15), fill=SHADOW_ALPHA
    )
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(2, side // 40)))
    canvas = Image.alpha_composite(canvas, _layer(size, (0, 0, 0), shadow))

    # The body: a gradient between two colours, an anti-aliased edge a few pixels wide.
    body = Image.new("L", size, 0)
    ImageDraw.Draw(body).ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
    body = body.filter(ImageFilter.GaussianBlur(max(1, side // 300)))
    fill = Image.composite(
        Image.new("RGB", size, second),
        Image.new("RGB", size, first),
        Image.linear_gradient("L").resize(size),
    )
    eye = max(2, side // 30)
    draw = ImageDraw.Draw(fill)
    for dx in (-0.35, 0.35):
        x, y = cx + rx * dx, cy - ry * 0.25
        draw.ellipse((x - eye, y - eye, x + eye, y + eye), fill=(24, 24, 32))
    canvas = Image.alpha_composite(canvas, Image.merge("RGBA", (*fill.split(), body)))

    # Hair: thin strands off the top, one or two pixels wide, partly covering pixels.
    hair = Image.new("L", size, 0)
    strands = ImageDraw.Draw(hair)
    for _ in range(14):
        angle = rng.uniform(-0.9, 0.9)
        x0 = cx + rx * rng.uniform(-0.6, 0.6)
        y0 = cy - ry * 0.9
        x1, y1 = x0 + side * 0.12 * angle, y0 - side * rng.uniform(0.08, 0.14)
        strands.line((x0, y0, x1, y1), fill=255, width=max(1, side // 500))
    hair = hair.filter(ImageFilter.GaussianBlur(0.6))
    canvas = Image.alpha_composite(canvas, _layer(size, first, hair))

    # A glass pane across the body's side: partly see-through everywhere.
    glass = Image.new("L", size, 0)
    gx = cx + rx * 0.5
    ImageDraw.Draw(glass).rounded_rectangle(
        (gx, cy - ry * 0.2, gx + side * 0.2, cy + ry * 0.5), radius=side // 40, fill=GLASS_ALPHA
    )
    canvas = Image.alpha_composite(canvas, _layer(size, GLASS, glass))
    return canvas


def _layer(size: tuple[int, int], colour: RGB, alpha: Image.Image) -> Image.Image:
    return Image.merge("RGBA", (*Image.new("RGB", size, colour).split(), alpha))


def on_backdrop(prompt: str, size: tuple[int, int], colour: RGB, variant: int = 0) -> Image.Image:
    """The prompt's subject composited over a flat ``colour``, as RGB."""
    drawn = subject(subject_text(prompt), size, variant)
    backdrop = Image.new("RGBA", size, (*colour, 255))
    return Image.alpha_composite(backdrop, drawn).convert("RGB")


def render_backdrop(
    prompt: str, size: tuple[int, int], mime: str, colour: RGB, variant: int = 0
) -> Encoded:
    """The answer to a prompt asking for the subject on a flat ``colour``."""
    return encode(on_backdrop(prompt, size, colour, variant), mime)


def render_transparent(prompt: str, size: tuple[int, int], mime: str, variant: int = 0) -> Encoded:
    """The answer to ``background: transparent``: the subject with its alpha (PNG or WebP;
    JPEG has no alpha, and OpenAI refuses that pairing before drawing)."""
    import io

    drawn = subject(subject_text(prompt), size, variant)
    buffer = io.BytesIO()
    if mime == "image/webp":
        drawn.save(buffer, "WEBP", lossless=True)
    else:
        drawn.save(buffer, "PNG", compress_level=3)
    return Encoded(buffer.getvalue(), mime)
