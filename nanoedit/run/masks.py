"""``edit --mask`` and ``--region`` in a run: each job's mask checked against its input when
the run is planned, before anything is sent, and the failure a result past ``--max-drift``
gives its job. The pixels are :mod:`nanoedit.output.masking`'s; saving composites through it
(:mod:`nanoedit.run.writer`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nanoedit.errors import ApiError, InputError, UsageError
from nanoedit.jobs import DEFAULT_FEATHER, Job, MaskSpec, SavedImage
from nanoedit.output.names import is_stream

if TYPE_CHECKING:
    from nanoedit.net.inputs import InputImage


def mask_spec(
    mask: str | None,
    region: str | None,
    feather: int | None,
    max_drift: float | None,
    crop: bool = False,
) -> MaskSpec:
    """The mask of ``edit --mask FILE`` or ``--region X,Y,W,H``, with its ``--feather`` and
    ``--max-drift``, as given (checked against each input when the run is planned)."""
    from nanoedit.output.masking import parse_region

    if mask is not None and region is not None:
        # Refused, not combined: whether the box would add to the mask or cut it down is a
        # guess either way, and drawing the box into the mask says it exactly.
        raise UsageError(
            "--mask and --region both say where to edit; use one (to combine them, draw the "
            "box into the mask file)"
        )
    if mask is None and region is None:
        named = (("--feather", feather), ("--max-drift", max_drift), ("--crop", crop or None))
        given = [flag for flag, value in named if value is not None]
        flags = " and ".join(given)
        raise UsageError(
            f"{flags} {'shape' if len(given) > 1 else 'shapes'} a masked edit, and no mask was "
            f"given; add --mask FILE or --region X,Y,W,H, or drop {flags}"
        )
    if mask is not None and not mask.strip():
        raise UsageError("--mask is empty; give the mask image's path")
    box = parse_region(region) if region is not None else None
    seam = DEFAULT_FEATHER if feather is None else feather
    return MaskSpec(mask=mask, region=box, feather=seam, max_drift=max_drift, crop=crop)


def check_job(job: Job, spec: MaskSpec, warn: Callable[[str], None]) -> Job:
    """``job`` with its mask, checked before sending: the edited image a local file (its
    pixels are put back outside the mask when the result is saved, by this run or a resumed
    one), an ``-o`` that keeps them exact (PNG), and the mask itself (:func:`check_mask`)."""
    from nanoedit.output.masking import check_mask

    source = job.images[0]
    if source.is_url or source.is_stdin:
        raise UsageError(
            f"--mask and --region edit a local file, and {source.label} is "
            f"{'a URL' if source.is_url else 'standard input'}: its pixels must still be there "
            "when the result is composited over it; save it to a file and edit that"
        )
    if not Path(source.location).is_file():
        # A pipe (<(...), /dev/stdin) would be used up by reading it here; a missing file is
        # said as such. Either way its pixels could not be read again when saving.
        what = "does not exist" if not os.path.lexists(source.location) else "is not a file"
        raise InputError(
            f"the input {source.label} {what}; --mask and --region edit a regular file, whose "
            "pixels are read again when the result is saved"
        )
    output = job.output
    if output is not None and not is_stream(output) and output.suffix.lower() != ".png":
        raise UsageError(
            f"a masked edit is saved as PNG, so that the pixels outside the mask stay "
            f"exactly the input's, and -o {output} names another format; name it .png"
        )
    if spec.max_drift is not None and job.output is not None and is_stream(job.output):
        raise UsageError(
            f"--max-drift keeps a result past its limit under a -drift name, and -o "
            f"{job.output} is a stream with no folder to keep it in; write to a file, or drop "
            "--max-drift"
        )
    return replace(job, mask=check_mask(spec, Path(source.location), source.label, warn))


def with_crop(mask: MaskSpec, uploads: tuple[InputImage, ...]) -> tuple[InputImage, ...]:
    """The uploads of a ``--crop`` job: its first image (a local file, checked when planned)
    replaced by the crop around the mask, as PNG; the others as they are."""
    from nanoedit.output.masking import cropped_input

    first = uploads[0]
    data = cropped_input(mask, first.source.path, first.source.label)
    # Named as a conversion to PNG: the part's file name then ends in .png, as its bytes are.
    crop = replace(first, data=data, format="png", converted_from=first.format, notes=())
    return (crop, *uploads[1:])


def crop_of(job: Job) -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom) of ``job``'s input a ``--crop`` sends."""
    from PIL import Image

    from nanoedit.output.masking import crop_box, mask_for

    assert job.mask is not None
    source = job.images[0]
    with Image.open(source.path) as image:
        size = image.size
    return crop_box(mask_for(job.mask, size, source.label))


def crop_needs_bytes(backend: str) -> UsageError:
    """The refusal of ``--crop`` on a backend that takes URLs only."""
    return UsageError(
        f"--crop sends a crop of the input, and the {backend} backend takes only URLs the "
        "uploader made of whole files; leave out --crop, or use a backend that takes files"
    )


def drifted(name: str) -> str:
    """The name a result past ``--max-drift`` is kept under: ``cat-edit-drift`` for
    ``cat-edit``. A name of its own, so that no one takes it for a good result."""
    return f"{name}-drift"


def drift_error(job: Job, saved: SavedImage) -> ApiError:
    """The failure of a job whose result ``saved`` drifted past ``--max-drift``."""
    assert saved.drift is not None and job.mask is not None
    return ApiError(
        f"the model changed {saved.drift.mean:g}% of {job.label} outside the mask "
        f"({saved.drift.changed:g}% of its pixels), more than --max-drift "
        f"{saved.drift.limit:g}%; the composited result is kept as {saved.path}; look at it, "
        "and run again (another model, a clearer prompt) or raise --max-drift"
    )


def same_mask(record: object, mask: MaskSpec | None) -> bool:
    """Whether an image's provenance ``mask`` record (None: not a masked edit) says it was
    made through ``mask``: the same mask file (by its SHA-256) or region, and the same seam."""
    if mask is None or not isinstance(record, dict):
        return mask is None and record is None
    region = list(mask.region) if mask.region is not None else None
    return (
        record.get("mask") == mask.sha256
        and record.get("region") == region
        and record.get("feather") == mask.feather
        and bool(record.get("crop")) == mask.crop
    )
