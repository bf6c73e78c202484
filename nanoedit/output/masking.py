"""Masked edits in pixels: reading a mask (``--mask``) or drawing one (``--region``), checking
it against the input, feathering its seam, compositing a model's answer over the original,
and measuring how much the model changed outside the mask (the drift).

The promise this module keeps: every pixel outside the mask is the original's, bit for bit.
So the seam is feathered *inward* (its ramp lies inside the mask, its outermost step already
part of the mask) and the result is written losslessly (PNG). Pillow only: the erosions and
histograms it offers are enough, and numpy is not a dependency.

The mask's rule: white, or opaque, marks where the model may change the image. A mask with
transparency (any pixel of its alpha below 255) is read by its alpha; any other by its
luminance. Either is then cut at half (128 of 255): there is no half-editable pixel, and the
only soft edge is the seam ``--feather`` draws.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageChops, ImageFilter

from nanoedit.errors import InputError, UsageError
from nanoedit.jobs import DRIFT_TOLERANCE, Drift, MaskSpec

# --feather's largest value: the seam costs one 3x3 erosion of the mask's box per pixel.
MAX_FEATHER = 64
# A mask of another size is scaled to the input's when their shapes agree this closely.
SHAPE_TOLERANCE = 0.01
# --crop's margin around the mask's box: half the box's longer side, and at least this: the
# model sees enough of the surroundings to match them.
CROP_MIN_MARGIN = 32
# Modes the original is composited in as they are; any other (a palette, 16 bits, CMYK) is
# converted to RGB, or to RGBA when it has transparency, first: outside the mask the result is
# then the input as converted (Pillow reads 16-bit RGB as 8-bit RGB already).
KEPT_MODES = ("L", "LA", "RGB", "RGBA")


def parse_region(text: str) -> tuple[int, int, int, int]:
    """``--region X,Y,W,H`` as four integers: a corner at or right of and below 0,0 and a
    box at least one pixel wide and high (whether it is inside the image is checked with the
    image: :func:`check_mask`)."""
    parts = [part.strip() for part in text.split(",")]
    try:
        x, y, w, h = (int(part) for part in parts)
    except ValueError:
        raise UsageError(
            f"--region {text!r} is not X,Y,W,H; give four whole numbers in the input's pixels, "
            "e.g. --region 10,20,200,100 (left, top, width, height)"
        ) from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise UsageError(
            f"--region {text!r} has a negative corner or an empty box; X and Y are 0 or more, "
            "W and H 1 or more"
        )
    return x, y, w, h


def sha256_of(path: Path, what: str) -> str:
    """The SHA-256 of a file read whole, or an input error naming ``what`` it is."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"{what} {path} cannot be read ({reason}); check the path") from None


def _open(path: Path, what: str) -> Image.Image:
    """An image decoded whole, or an input error naming the file and what it is."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except OSError as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise InputError(
            f"{what} {path} is not an image Pillow can read ({reason}); give a PNG, JPEG or "
            "WebP file"
        ) from None


def editable(image: Image.Image) -> Image.Image:
    """The mask's rule applied: an ``L`` image, 255 where the model may change the image and
    0 where it may not (alpha when the mask has transparency, else luminance; cut at 128)."""
    gray = None
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A")
        low, _high = alpha.getextrema()
        if isinstance(low, (int, float)) and low < 255:
            gray = alpha
    if gray is None:
        gray = image.convert("L")
    return gray.point([0] * 128 + [255] * 128)


def region_mask(region: tuple[int, int, int, int], size: tuple[int, int]) -> Image.Image:
    """The mask ``--region`` draws: the box editable, the rest not."""
    x, y, w, h = region
    mask = Image.new("L", size, 0)
    mask.paste(255, (x, y, x + w, y + h))
    return mask


def _same_shape(one: tuple[int, int], other: tuple[int, int]) -> bool:
    wanted = other[0] / other[1]
    return abs(one[0] / one[1] - wanted) <= SHAPE_TOLERANCE * wanted


def mask_for(
    spec: MaskSpec,
    size: tuple[int, int],
    input_label: str,
    warn: Callable[[str], None] | None = None,
) -> Image.Image:
    """The editable area at ``size`` (the input's), checked: a region inside the image, a
    mask file of the input's size (or of its shape, scaled with a warning to ``warn``), and
    neither empty nor the whole image. A checked ``spec`` (with ``sha256``) must find its
    mask file unchanged."""
    width, height = size
    if spec.region is not None:
        x, y, w, h = spec.region
        if x + w > width or y + h > height:
            raise UsageError(
                f"--region {x},{y},{w},{h} reaches past {input_label}, which is {width}x{height}; "
                f"keep X+W at most {width} and Y+H at most {height}"
            )
        if (w, h) == size:
            raise UsageError(
                f"--region {x},{y},{w},{h} is the whole of {input_label}; leave it out to edit "
                "the whole image, or give a smaller box"
            )
        return region_mask(spec.region, size)
    assert spec.mask is not None
    path = Path(spec.mask)
    if spec.sha256 is not None and sha256_of(path, "the mask") != spec.sha256:
        raise InputError(
            f"the mask {path} changed since the job was sent (its SHA-256 differs); put back "
            "the mask it was sent with, or send the job again"
        )
    mask = editable(_open(path, "the mask"))
    if mask.size != size:
        if not _same_shape(mask.size, size):
            raise InputError(
                f"the mask {path} is {mask.width}x{mask.height} and {input_label} is "
                f"{width}x{height}, another shape; make the mask the input's size"
            )
        if warn is not None:
            warn(
                f"the mask {path} is {mask.width}x{mask.height} and {input_label} is "
                f"{width}x{height}: it is scaled to fit; make it the input's size for an exact "
                "edge"
            )
        mask = mask.resize(size, Image.Resampling.NEAREST)
    if mask.getbbox() is None:
        raise InputError(
            f"the mask {path} marks nothing to edit (no white or opaque pixel); paint the area "
            "the model may change white (or opaque, on a transparent mask)"
        )
    if ImageChops.invert(mask).getbbox() is None:
        raise InputError(
            f"the mask {path} marks the whole of {input_label} as editable; leave out --mask to "
            "edit all of it, or paint what must stay black (or transparent)"
        )
    return mask


def check_mask(
    spec: MaskSpec, original: Path, input_label: str, warn: Callable[[str], None]
) -> MaskSpec:
    """Check ``spec`` against the input at ``original`` before anything is sent, and return
    it as a job carries it: the mask file's absolute path and SHA-256, and the input's."""
    mask, digest = None, None
    if spec.mask is not None:
        if not Path(spec.mask).is_file():
            raise InputError(f"the mask {spec.mask} is not a file; check the path given to --mask")
        mask, digest = str(Path(spec.mask).absolute()), sha256_of(Path(spec.mask), "the mask")
    original_digest = sha256_of(original, "the input")
    try:
        with Image.open(original) as image:
            size = image.size
    except OSError as exc:
        raise InputError(
            f"{input_label} is not an image Pillow can read ({exc}); give a PNG, JPEG or WebP "
            "file to edit with --mask or --region"
        ) from None
    # Checked as given, so that a message names the mask as the user did.
    mask_for(spec, size, input_label, warn)
    return MaskSpec(
        mask=mask,
        region=spec.region,
        feather=spec.feather,
        max_drift=spec.max_drift,
        sha256=digest,
        original=original_digest,
        crop=spec.crop,
    )


def crop_box(mask: Image.Image) -> tuple[int, int, int, int]:
    """What ``--crop`` sends of the input: the box around the editable area, with a margin of
    half its longer side (at least :data:`CROP_MIN_MARGIN`) each way, within the image."""
    box = mask.getbbox()
    assert box is not None, "a checked mask marks something"
    left, top, right, bottom = box
    margin = max(CROP_MIN_MARGIN, max(right - left, bottom - top) // 2)
    return (
        max(left - margin, 0),
        max(top - margin, 0),
        min(right + margin, mask.width),
        min(bottom + margin, mask.height),
    )


def cropped_input(spec: MaskSpec, original: Path, input_label: str) -> bytes:
    """The crop of the input ``--crop`` sends, as PNG (lossless, whatever the input was)."""
    base = workable(_open(original, "the input"))
    box = crop_box(mask_for(spec, base.size, input_label))
    data = io.BytesIO()
    base.crop(box).save(data, format="PNG")
    return data.getvalue()


def feathered(mask: Image.Image, pixels: int) -> Image.Image:
    """The blend of a composite: 0 outside the mask (the original's pixels, exactly), rising
    inside it over ``pixels`` steps to 255 (the answer's). The ramp lies wholly inside: a mask
    pixel at depth ``d`` (its 3x3 erosions it survives, plus one) gets ``255 * d / pixels``."""
    if pixels <= 0:
        return mask
    box = mask.getbbox()
    if box is None:
        return mask
    # Only the mask's box (and a pixel around it, which is outside) is eroded: a small area of
    # a large image costs little. At the image's edge Pillow repeats the edge, so a mask that
    # touches the border is not feathered along it: nothing lies beyond to blend with.
    left, top = max(box[0] - 1, 0), max(box[1] - 1, 0)
    right, bottom = min(box[2] + 1, mask.width), min(box[3] + 1, mask.height)
    layer = mask.crop((left, top, right, bottom))
    ones = [0] + [1] * 255
    depth = layer.point(ones)
    for _ in range(pixels - 1):
        layer = layer.filter(ImageFilter.MinFilter(3))
        depth = ImageChops.add(depth, layer.point(ones))
    ramp = depth.point([round(255 * min(level, pixels) / pixels) for level in range(256)])
    blend = Image.new("L", mask.size, 0)
    blend.paste(ramp, (left, top))
    return blend


def workable(image: Image.Image) -> Image.Image:
    """The original as it is composited: as it is in a kept mode, else in RGB (RGBA when it has
    transparency)."""
    if image.mode in KEPT_MODES:
        return image
    alpha = image.mode in ("PA", "RGBa", "La") or "transparency" in image.info
    return image.convert("RGBA" if alpha else "RGB")


def measure(
    original: Image.Image,
    aligned: Image.Image,
    mask: Image.Image,
    within: tuple[int, int, int, int] | None = None,
) -> tuple[float, float]:
    """The drift's two figures (see :class:`~nanoedit.jobs.Drift`), in RGB, over the pixels
    outside ``mask`` (and inside ``within``, the box the model was shown, if it saw only
    that), rounded to hundredths of a percent."""
    diff = ImageChops.difference(original.convert("RGB"), aligned.convert("RGB"))
    outside = ImageChops.invert(mask)
    if within is not None:
        shown = Image.new("L", mask.size, 0)
        shown.paste(outside.crop(within), within[:2])
        outside = shown
    counts = diff.histogram(mask=outside)
    pixels = sum(counts[:256])
    if pixels == 0:
        return 0.0, 0.0
    total = sum(level * counts[band * 256 + level] for band in range(3) for level in range(256))
    red, green, blue = diff.split()
    most = ImageChops.lighter(ImageChops.lighter(red, green), blue).histogram(mask=outside)
    moved = sum(most[DRIFT_TOLERANCE + 1 :])
    return round(100 * total / (pixels * 3 * 255), 2), round(100 * moved / pixels, 2)


def composite(
    spec: MaskSpec, original_path: Path, answer_path: Path, out: Path, input_label: str
) -> Drift:
    """Write to ``out`` (PNG) the model's answer at ``answer_path`` composited over the
    original at ``original_path`` through ``spec``'s mask, and say how much the answer drifted
    outside the mask. The answer is resized to the original's size first (with ``--crop``, to
    the crop's, and put back into its box)."""
    if spec.original is not None and sha256_of(original_path, "the input") != spec.original:
        raise InputError(
            f"{input_label} changed since the job was sent (its SHA-256 differs), so its "
            "pixels outside the mask are not the ones the model saw; put back the image it was "
            "sent with, or send the job again"
        )
    base = workable(_open(original_path, "the input"))
    answer = _open(answer_path, "the result")
    mask = mask_for(spec, base.size, input_label)
    # With --crop the answer is of the crop: it goes back into that box, over the original.
    box = crop_box(mask) if spec.crop else (0, 0, base.width, base.height)
    shown = (box[2] - box[0], box[3] - box[1])
    resized = answer.size != shown
    stretched = not _same_shape(answer.size, shown)
    if answer.mode not in KEPT_MODES:
        answer = answer.convert("RGBA")
    aligned = answer.convert(base.mode)
    if resized:
        aligned = aligned.resize(shown, Image.Resampling.LANCZOS)
    if spec.crop:
        placed = base.copy()
        placed.paste(aligned, box[:2])
        aligned = placed
    mean, changed = measure(base, aligned, mask, box if spec.crop else None)
    blended = Image.composite(aligned, base, feathered(mask, spec.feather))
    blended.save(out, format="PNG")
    return Drift(mean, changed, resized, stretched, spec.max_drift)


def openai_mask(
    spec: MaskSpec, original: tuple[int, int], size: tuple[int, int], input_label: str
) -> bytes:
    """The mask as OpenAI's image edits take it [P: OpenAI's API reference, images/edits:
    "fully transparent areas (e.g. where alpha is zero) indicate where image should be edited",
    a PNG of the image's size]: ours (for an input of size ``original``; cut to the crop with
    ``--crop``) turned around, black with the editable area transparent, at ``size``, the
    size of the image as uploaded."""
    mask = mask_for(spec, original, input_label)
    if spec.crop:
        mask = mask.crop(crop_box(mask))
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.NEAREST)
    picture = Image.new("RGBA", size, (0, 0, 0, 255))
    picture.putalpha(ImageChops.invert(mask))
    data = io.BytesIO()
    picture.save(data, format="PNG")
    return data.getvalue()
