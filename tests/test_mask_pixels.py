"""The pixel work of masked edits (nanoedit.output.masking) on constructed images: the mask's
rule, the inward seam, the composite's exactness, the drift's figures; and the sandbox's
check of OpenAI's ``mask`` field, over real HTTP."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from conftest import Served, api_key_for
from PIL import Image

from nanoedit.errors import InputError
from nanoedit.jobs import Drift, MaskSpec
from nanoedit.output.masking import composite, editable, feathered, measure, region_mask


def test_the_seam_is_feathered_inward_and_outside_stays_zero() -> None:
    mask = region_mask((2, 2, 6, 5), (12, 10))
    ramp = feathered(mask, 3)
    rows = [[ramp.getpixel((x, y)) for x in range(12)] for y in range(10)]
    assert rows == [
        [0] * 12,
        [0] * 12,
        [0, 0, 85, 85, 85, 85, 85, 85, 0, 0, 0, 0],
        [0, 0, 85, 170, 170, 170, 170, 85, 0, 0, 0, 0],
        [0, 0, 85, 170, 255, 255, 170, 85, 0, 0, 0, 0],
        [0, 0, 85, 170, 170, 170, 170, 85, 0, 0, 0, 0],
        [0, 0, 85, 85, 85, 85, 85, 85, 0, 0, 0, 0],
        [0] * 12,
        [0] * 12,
        [0] * 12,
    ]
    assert feathered(mask, 0) is mask  # a hard edge


def test_a_mask_touching_the_border_is_not_feathered_along_it() -> None:
    ramp = feathered(region_mask((0, 0, 4, 3), (8, 6)), 2)
    assert [ramp.getpixel((x, 0)) for x in range(6)] == [255, 255, 255, 128, 0, 0]
    assert [ramp.getpixel((0, y)) for y in range(5)] == [255, 255, 128, 0, 0]


def test_the_mask_rule_alpha_when_transparent_else_luminance_cut_at_half() -> None:
    transparent = Image.new("RGBA", (4, 1), (255, 255, 255, 0))
    transparent.putpixel((1, 0), (0, 0, 0, 200))  # opaque enough, though black: editable
    transparent.putpixel((2, 0), (255, 255, 255, 127))  # white, but under half opaque: not
    assert list(editable(transparent).get_flattened_data()) == [0, 255, 0, 0]
    opaque = Image.new("RGBA", (3, 1), (0, 0, 0, 255))
    opaque.putpixel((1, 0), (255, 255, 255, 255))
    opaque.putpixel((2, 0), (128, 128, 128, 255))
    assert list(editable(opaque).get_flattened_data()) == [0, 255, 255]  # luminance
    bits = Image.new("1", (2, 1), 0)
    bits.putpixel((1, 0), 1)
    assert list(editable(bits).get_flattened_data()) == [0, 255]


def test_the_drift_is_exact_on_a_constructed_answer(tmp_path: Path) -> None:
    # A 10x10 grey original, editable on its left half (50 pixels outside the mask). The
    # answer moved 10 of the outside pixels by 51 levels in every channel and one by 5 (under
    # the tolerance): mean = (10*51*3 + 5*3) / (50*3*255) = 4.0392...%, changed = 10/50.
    original = Image.new("RGB", (10, 10), (100, 100, 100))
    answer = original.copy()
    answer.paste((10, 10, 10), (0, 0, 5, 10))  # inside: anything
    for y in range(10):
        answer.putpixel((9, y), (151, 151, 151))
    answer.putpixel((5, 0), (105, 105, 105))
    original.save(tmp_path / "in.png")
    answer.save(tmp_path / "answer.png")
    spec = MaskSpec(region=(0, 0, 5, 10), feather=0, max_drift=4.0)
    drift = composite(
        spec, tmp_path / "in.png", tmp_path / "answer.png", tmp_path / "out.png", "in"
    )
    assert drift == Drift(4.04, 20.0, resized=False, stretched=False, limit=4.0)
    assert drift.over
    with Image.open(tmp_path / "out.png") as out:
        assert out.format == "PNG" and out.mode == "RGB"
        got = list(out.get_flattened_data())
    expected = [(10, 10, 10) if x < 5 else (100, 100, 100) for y in range(10) for x in range(10)]
    assert got == expected  # a hard edge: the answer inside, the original outside


def test_an_answer_of_another_shape_is_stretched_to_fit_and_said_so(tmp_path: Path) -> None:
    Image.new("RGB", (40, 20), (0, 0, 0)).save(tmp_path / "in.png")
    Image.new("RGB", (30, 30), (255, 255, 255)).save(tmp_path / "answer.png")
    spec = MaskSpec(region=(0, 0, 10, 10), feather=4)
    drift = composite(
        spec, tmp_path / "in.png", tmp_path / "answer.png", tmp_path / "out.png", "in"
    )
    assert drift == Drift(100.0, 100.0, resized=True, stretched=True, limit=None)
    assert not drift.over
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (40, 20)
        assert out.getpixel((10, 0)) == (0, 0, 0)  # just outside: the original's
        assert out.getpixel((0, 0)) == (255, 255, 255)  # at the image's edge: no seam there
        assert out.getpixel((9, 5)) == (64, 64, 64)  # the seam's first step inside (1 of 4)


def test_measure_of_an_untouched_outside_is_zero() -> None:
    image = Image.new("RGB", (8, 8), (1, 2, 3))
    assert measure(image, image.copy(), region_mask((0, 0, 2, 2), (8, 8))) == (0.0, 0.0)


def test_a_changed_input_or_mask_is_refused_when_compositing_later(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "answer.png")
    spec = MaskSpec(region=(0, 0, 2, 2), original="0" * 64)
    with pytest.raises(InputError) as caught:
        composite(spec, tmp_path / "in.png", tmp_path / "answer.png", tmp_path / "out.png", "in")
    assert caught.value.message == (
        "in changed since the job was sent (its SHA-256 differs), so its pixels outside the "
        "mask are not the ones the model saw; put back the image it was sent with, or send "
        "the job again"
    )
    mask = tmp_path / "mask.png"
    Image.new("L", (8, 8)).save(mask)
    spec = MaskSpec(mask=str(mask), sha256="0" * 64)
    with pytest.raises(InputError) as caught:
        composite(spec, tmp_path / "in.png", tmp_path / "answer.png", tmp_path / "out.png", "in")
    assert caught.value.message == (
        f"the mask {mask} changed since the job was sent (its SHA-256 differs); put back the "
        "mask it was sent with, or send the job again"
    )
    assert not (tmp_path / "out.png").exists()


def _png(image: Image.Image) -> bytes:
    data = io.BytesIO()
    image.save(data, format="PNG")
    return data.getvalue()


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (Image.new("RGBA", (32, 16)), "Invalid mask image: the mask is 32x16 and the image is "
         "16x16; they must have the same dimensions."),
        (Image.new("L", (16, 16)), "Invalid mask image: it must have an alpha channel "
         "(transparent where the image is to be edited)."),
        (None, "Invalid mask image: it must be a PNG file."),
    ],
)  # fmt: skip
def test_the_sandbox_turns_down_a_mask_openai_would(
    served: Served, mask: Image.Image | None, message: str
) -> None:
    image = _png(Image.new("RGB", (16, 16), (9, 9, 9)))
    data = b"GIF89a not a png" if mask is None else _png(mask)
    response = httpx.post(
        f"{served.base_url}/v1/images/edits",
        headers={"Authorization": f"Bearer {api_key_for('openai')}"},
        data={"model": "gpt-image-1.5", "prompt": "a hat"},
        files=[("image[]", ("in.png", image, "image/png")), ("mask", ("m.png", data, "image/png"))],
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": "mask",
            "code": "invalid_image",
        }
    }


def test_openais_client_sends_our_mask_and_meets_the_sandboxs_refusal(served: Served) -> None:
    import openai

    from nanoedit.output.masking import openai_mask

    image = _png(Image.new("RGB", (48, 32), (9, 9, 9)))
    mask = openai_mask(MaskSpec(region=(4, 4, 10, 10)), (48, 32), (48, 32), "in.png")
    with openai.OpenAI(
        base_url=served.base_url + "/v1", api_key=api_key_for("openai"), max_retries=0
    ) as client:
        answer = client.images.edit(
            image=("in.png", image, "image/png"),
            mask=("mask.png", mask, "image/png"),
            prompt="a hat",
            model="gpt-image-1.5",
        )
        assert answer.data is not None and answer.data[0].b64_json is not None
        (received,) = served.sandbox.received
        assert [part.field for part in received.files] == ["image", "mask"]
        wrong = openai_mask(MaskSpec(region=(4, 4, 10, 10)), (48, 32), (32, 32), "in.png")
        with pytest.raises(openai.BadRequestError) as refused:
            client.images.edit(
                image=("in.png", image, "image/png"),
                mask=("mask.png", wrong, "image/png"),
                prompt="a hat",
                model="gpt-image-1.5",
            )
    assert refused.value.status_code == 400
    assert refused.value.body == {
        "message": "Invalid mask image: the mask is 32x32 and the image is 48x32; they must "
        "have the same dimensions.",
        "type": "invalid_request_error",
        "param": "mask",
        "code": "invalid_image",
    }


def test_a_crop_answer_goes_back_into_its_box_and_its_drift_counts_only_what_was_shown(
    tmp_path: Path,
) -> None:
    # A 100x100 grey original, a 10x10 region in its middle: the crop is the region with 32
    # pixels around it, 13..87 each way. The answer for the crop moved every pixel by 51.
    Image.new("RGB", (100, 100), (100, 100, 100)).save(tmp_path / "in.png")
    Image.new("RGB", (74, 74), (151, 151, 151)).save(tmp_path / "answer.png")
    spec = MaskSpec(region=(45, 45, 10, 10), feather=0, crop=True)
    drift = composite(
        spec, tmp_path / "in.png", tmp_path / "answer.png", tmp_path / "out.png", "in"
    )
    # Measured over the 74*74 - 100 pixels shown and outside the mask, not the whole image.
    assert drift == Drift(20.0, 100.0, resized=False, stretched=False)
    with Image.open(tmp_path / "out.png") as out:
        got = list(out.get_flattened_data())
    inside = {(x, y) for x in range(45, 55) for y in range(45, 55)}
    assert got == [
        (151, 151, 151) if (x, y) in inside else (100, 100, 100)
        for y in range(100)
        for x in range(100)
    ]
