"""Built-in sample images, drawn in code so the package ships no binary files."""

from __future__ import annotations

import functools
from collections.abc import Callable

from PIL import Image, ImageDraw

from nanoedit.sandbox.render import encode

# Shapes are drawn at twice the size and scaled down, which smooths their edges.
_SUPERSAMPLE = 2


def _canvas(
    size: tuple[int, int], background: tuple[int, ...]
) -> tuple[Image.Image, ImageDraw.ImageDraw, Callable[[float], int]]:
    mode = "RGBA" if len(background) == 4 else "RGB"
    image = Image.new(mode, (size[0] * _SUPERSAMPLE, size[1] * _SUPERSAMPLE), background)

    def px(value: float) -> int:
        return round(value * _SUPERSAMPLE)

    return image, ImageDraw.Draw(image), px


def _finish(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image.resize(size, Image.Resampling.LANCZOS)


def _cat() -> Image.Image:
    size = (640, 480)
    image, draw, px = _canvas(size, (170, 205, 235))
    draw.rectangle((0, px(380), px(640), px(480)), fill=(120, 170, 90))
    fur, dark = (235, 150, 60), (150, 80, 30)
    draw.polygon([(px(215), px(190)), (px(240), px(60)), (px(310), px(150))], fill=fur)
    draw.polygon([(px(425), px(190)), (px(400), px(60)), (px(330), px(150))], fill=fur)
    draw.polygon([(px(235), px(165)), (px(246), px(95)), (px(285), px(150))], fill=(245, 180, 180))
    draw.polygon([(px(405), px(165)), (px(394), px(95)), (px(355), px(150))], fill=(245, 180, 180))
    draw.ellipse((px(190), px(110), px(450), px(370)), fill=fur)
    for x in (260, 380):
        draw.ellipse((px(x - 24), px(190), px(x + 24), px(250)), fill=(110, 190, 80))
        draw.ellipse((px(x - 7), px(195), px(x + 7), px(245)), fill="black")
    draw.polygon([(px(305), px(270)), (px(335), px(270)), (px(320), px(288))], fill=(230, 110, 140))
    draw.arc((px(290), px(275), px(322), px(310)), 20, 160, fill=dark, width=px(3))
    draw.arc((px(318), px(275), px(350), px(310)), 20, 160, fill=dark, width=px(3))
    for dy in (-12, 0, 12):
        draw.line((px(230), px(285 + dy * 1.5), px(150), px(275 + dy * 3)), fill=dark, width=px(2))
        draw.line((px(410), px(285 + dy * 1.5), px(490), px(275 + dy * 3)), fill=dark, width=px(2))
    return _finish(image, size)


def _dog() -> Image.Image:
    size = (800, 600)
    image, draw, px = _canvas(size, (200, 225, 245))
    draw.rectangle((0, px(450), px(800), px(600)), fill=(110, 160, 70))
    brown, dark = (170, 110, 60), (90, 55, 30)
    draw.ellipse((px(250), px(120), px(550), px(440)), fill=brown)
    draw.ellipse((px(200), px(140), px(300), px(380)), fill=dark)
    draw.ellipse((px(500), px(140), px(600), px(380)), fill=dark)
    draw.ellipse((px(320), px(300), px(480), px(430)), fill=(225, 195, 150))
    for x in (340, 460):
        draw.ellipse((px(x - 20), px(230), px(x + 20), px(270)), fill="white")
        draw.ellipse((px(x - 10), px(240), px(x + 10), px(262)), fill="black")
    draw.ellipse((px(370), px(310), px(430), px(350)), fill="black")
    draw.ellipse((px(385), px(375), px(415), px(425)), fill=(225, 90, 100))
    draw.line((px(400), px(350), px(400), px(380)), fill="black", width=px(3))
    return _finish(image, size)


def _hat() -> Image.Image:
    # Transparent around the hat: a typical cut-out reference image.
    size = (512, 512)
    image, draw, px = _canvas(size, (0, 0, 0, 0))
    draw.ellipse((px(56), px(330), px(456), px(420)), fill=(25, 25, 30, 255))
    draw.rectangle((px(146), px(120), px(366), px(375)), fill=(35, 35, 42, 255))
    draw.ellipse((px(146), px(95), px(366), px(145)), fill=(50, 50, 60, 255))
    draw.rectangle((px(146), px(300), px(366), px(345)), fill=(190, 30, 45, 255))
    return _finish(image, size)


def _person() -> Image.Image:
    size = (480, 640)
    image, draw, px = _canvas(size, (235, 225, 205))
    skin, hair, shirt = (240, 200, 165), (70, 45, 30), (60, 110, 180)
    draw.rounded_rectangle((px(90), px(360), px(390), px(700)), radius=px(90), fill=shirt)
    draw.rectangle((px(210), px(300), px(270), px(380)), fill=skin)
    draw.ellipse((px(140), px(110), px(340), px(330)), fill=skin)
    draw.chord((px(130), px(90), px(350), px(260)), 180, 360, fill=hair)
    for x in (200, 280):
        draw.ellipse((px(x - 10), px(200), px(x + 10), px(222)), fill=(40, 40, 50))
    draw.arc((px(200), px(230), px(280), px(290)), 20, 160, fill=(170, 70, 70), width=px(5))
    return _finish(image, size)


_DRAWINGS: dict[str, tuple[Callable[[], Image.Image], str]] = {
    "cat.png": (_cat, "image/png"),
    "dog.jpg": (_dog, "image/jpeg"),
    "hat.png": (_hat, "image/png"),
    "person.png": (_person, "image/png"),
}
SAMPLE_NAMES: tuple[str, ...] = tuple(_DRAWINGS)


@functools.cache
def sample_image(name: str) -> tuple[bytes, str]:
    """A built-in sample as ``(bytes, mime)``: cat.png, dog.jpg, hat.png or person.png.

    Raises KeyError for any other name.
    """
    draw, mime = _DRAWINGS[name]
    encoded = encode(draw(), mime)
    return encoded.data, encoded.mime
