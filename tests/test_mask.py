"""``edit --mask`` and ``--region`` through the front door, against the sandbox: on every
backend, the saved image equals the input bit for bit outside the mask (the seam is feathered
inward), and what the model changed there is reported as the drift; every mask that cannot
work is refused before a request is sent."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shlex
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import Served, journal_jobs, one_backend_env, paid, run_cli
from PIL import Image

from nanoedit.errors import UsageError
from nanoedit.sandbox import sample_image

CAT = sample_image("cat.png")[0]
# The region the tests edit, in cat.png's pixels (640x480).
REGION = (200, 120, 240, 200)
REGION_FLAG = ",".join(map(str, REGION))


def inside(x: int, y: int, box: tuple[int, int, int, int] = REGION) -> bool:
    return box[0] <= x < box[0] + box[2] and box[1] <= y < box[1] + box[3]


def pixels(path: Path | bytes) -> tuple[tuple[int, int], list[Any]]:
    """An image's size and its RGB pixels, row by row."""
    with Image.open(io.BytesIO(path) if isinstance(path, bytes) else path) as image:
        rgb = image.convert("RGB")
        return rgb.size, list(rgb.get_flattened_data())


def changed_where(original: bytes | Path, saved: Path) -> tuple[int, int]:
    """How many pixels of ``saved`` differ from ``original`` outside REGION, and inside it."""
    (width, height), before = pixels(original)
    size, after = pixels(saved)
    assert size == (width, height)
    outside = changed = 0
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        if old != new:
            if inside(index % width, index // width):
                changed += 1
            else:
                outside += 1
    return outside, changed


# Every backend of the sandbox, and the API or model that makes it another road: (backend,
# extra environment, extra flags).
BACKENDS: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "gemini": ("gemini", {}, []),
    "gemini-interactions": ("gemini", {"NANOEDIT_GEMINI_API": "interactions"}, []),
    "vertex": ("vertex", {"GOOGLE_CLOUD_PROJECT": "my-project-123"}, []),
    "openrouter": ("openrouter", {}, []),
    "fal": ("fal", {}, []),
    "replicate": ("replicate", {}, []),
    "openai-gateway": ("openai", {}, []),
    "openai-gpt-image": ("openai", {}, ["--model", "gpt-image-1.5"]),
    "duomi": ("duomi", {}, []),
}


@pytest.fixture
def hosting(tmp_path: Path) -> Iterator[str]:
    """An upload command for the URL-list backend (duomi): it copies the file into a folder
    served over HTTP on loopback and prints its URL."""
    folder = tmp_path / "public"
    folder.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=folder)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    quoted = shlex.quote(str(folder))
    try:
        yield f'cp "$1" {quoted}/ && echo {shlex.quote(base)}/"$(basename "$1")"'
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("road", list(BACKENDS))
def test_outside_the_region_the_saved_image_is_the_input_bit_for_bit_on_every_backend(
    served: Served, road: str, monkeypatch: pytest.MonkeyPatch, hosting: str
) -> None:
    backend, more, flags = BACKENDS[road]
    for name in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    Path("cat.png").write_bytes(CAT)
    env = one_backend_env(served, backend) | more
    if backend == "duomi":  # it takes URLs only: the local file goes through an uploader
        env |= {"NANOEDIT_UPLOAD_VIA": "command", "NANOEDIT_UPLOAD_COMMAND": hosting}
    result = run_cli(
        ["edit", "cat.png", "-p", "a red hat", "--region", REGION_FLAG, "--json", *flags], env=env
    )
    assert result.exit_code == 0, result.stderr
    line = json.loads(result.stdout)
    [output] = line["outputs"]
    assert (output["path"], output["format"], output["width"], output["height"]) == (
        "cat-edit.png", "png", 640, 480,
    )  # fmt: skip
    outside, changed = changed_where(CAT, Path("cat-edit.png"))
    assert outside == 0  # the promise: nothing outside the region moved, not one pixel
    assert changed > 0.9 * REGION[2] * REGION[3]  # the sandbox draws a new frame: it shows
    # The sandbox's frame is not the cat: the model "changed" the outside too, and says so.
    drift = output["drift"]
    assert drift["mean"] > 1 and drift["changed"] > 50 and drift["over"] is False
    assert drift["limit"] is None
    assert len(paid(served)) == 1


def test_gpt_image_gets_openais_mask_transparent_where_it_may_edit(served: Served) -> None:
    Path("cat.png").write_bytes(CAT)
    result = run_cli(
        ["edit", "cat.png", "-p", "a hat", "--region", REGION_FLAG, "--model", "gpt-image-1.5"],
        env=one_backend_env(served, "openai"),
    )
    assert result.exit_code == 0, result.stderr
    [request] = paid(served)
    [mask] = [part for part in request.files if part.field == "mask"]
    assert (mask.filename, mask.content_type) == ("mask.png", "image/png")
    with Image.open(io.BytesIO(mask.data)) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (640, 480))
        alpha = image.getchannel("A")
        assert alpha.getpixel((REGION[0], REGION[1])) == 0  # to edit: fully transparent
        assert alpha.getpixel((REGION[0] - 1, REGION[1])) == 255
        assert alpha.getextrema() == (0, 255)
        # Exactly the region is transparent.
        assert alpha.histogram()[0] == REGION[2] * REGION[3]


def test_a_nano_banana_gateway_gets_no_mask_field(served: Served) -> None:
    Path("cat.png").write_bytes(CAT)
    result = run_cli(
        ["edit", "cat.png", "-p", "a hat", "--region", REGION_FLAG],
        env=one_backend_env(served, "openai"),
    )
    assert result.exit_code == 0, result.stderr
    [request] = paid(served)
    assert [part.field for part in request.files] == ["image"]


def test_a_mask_file_white_where_to_edit_keeps_the_rest_exact(served: Served) -> None:
    Path("cat.png").write_bytes(CAT)
    mask = Image.new("L", (640, 480), 0)
    mask.paste(255, (REGION[0], REGION[1], REGION[0] + REGION[2], REGION[1] + REGION[3]))
    mask.save("mask.png")
    result = run_cli(
        ["edit", "cat.png", "-p", "a hat", "--mask", "mask.png", "--feather", "0", "--sidecar"],
        env=one_backend_env(served, "gemini"),
    )
    assert result.exit_code == 0, result.stderr
    outside, changed = changed_where(CAT, Path("cat-edit.png"))
    assert outside == 0 and changed > 0.9 * REGION[2] * REGION[3]
    # With --feather 0, the edge is hard: every pixel inside is the answer's.
    sidecar = json.loads(Path("cat-edit.png.json").read_text())
    record = sidecar["provenance"]["mask"]
    assert record["feather"] == 0 and record["region"] is None
    assert record["mask"] == hashlib.sha256(Path("mask.png").read_bytes()).hexdigest()
    assert record["drift"]["mean"] > 0
    with Image.open("cat-edit.png") as saved:
        embedded = json.loads(saved.info["nanoedit"])
    assert embedded["mask"] == record


def test_a_transparent_mask_is_read_by_its_alpha_and_a_smaller_one_of_the_same_shape_is_scaled(
    served: Served,
) -> None:
    Path("cat.png").write_bytes(CAT)
    # Half the input's size, RGB black everywhere, opaque only on the region (at half scale).
    mask = Image.new("RGBA", (320, 240), (0, 0, 0, 0))
    x, y, w, h = (v // 2 for v in REGION)
    mask.paste((0, 0, 0, 255), (x, y, x + w, y + h))
    mask.save("mask.png")
    result = run_cli(
        ["edit", "cat.png", "-p", "a hat", "--mask", "mask.png"],
        env=one_backend_env(served, "gemini"),
    )
    assert result.exit_code == 0, result.stderr
    assert (
        "warning: the mask mask.png is 320x240 and cat.png is 640x480: it is scaled to fit; "
        "make it the input's size for an exact edge"
    ) in " ".join(result.stderr.split())
    outside, changed = changed_where(CAT, Path("cat-edit.png"))
    assert outside == 0 and changed > 0.8 * REGION[2] * REGION[3]


def test_max_drift_fails_the_job_with_exit_5_and_keeps_its_image_under_a_drift_name(
    served: Served,
) -> None:
    Path("cat.png").write_bytes(CAT)
    result = run_cli(
        ["edit", "cat.png", "-p", "a hat", "--region", REGION_FLAG, "--max-drift", "0.5",
         "--json"],
        env=one_backend_env(served, "gemini"),
    )  # fmt: skip
    assert result.exit_code == 5
    line = json.loads(result.stdout)
    [output] = line["outputs"]
    drift = output["drift"]
    assert output["path"] == "cat-edit-drift.png"
    assert (drift["limit"], drift["over"]) == (0.5, True)
    assert line["error"]["kind"] == "api"
    assert line["error"]["message"] == (
        f"the model changed {drift['mean']:g}% of cat.png outside the mask "
        f"({drift['changed']:g}% of its pixels), more than --max-drift 0.5%; the composited "
        "result is kept as cat-edit-drift.png; look at it, and run again (another model, a "
        "clearer prompt) or raise --max-drift"
    )
    assert not Path("cat-edit.png").exists()
    assert changed_where(CAT, Path("cat-edit-drift.png"))[0] == 0
    [record] = journal_jobs()
    assert record.state == "failed"


def test_a_drift_under_the_limit_saves_as_usual(served: Served) -> None:
    Path("cat.png").write_bytes(CAT)
    result = run_cli(
        ["edit", "cat.png", "-p", "a hat", "--region", REGION_FLAG, "--max-drift", "100"],
        env=one_backend_env(served, "gemini"),
    )
    assert (result.exit_code, result.stdout) == (0, "cat-edit.png\n"), result.stderr


def test_another_mask_is_another_job_and_the_same_mask_the_same_one(served: Served) -> None:
    Path("cat.png").write_bytes(CAT)
    env = one_backend_env(served, "gemini")
    first = ["edit", "cat.png", "-p", "a hat", "--region", REGION_FLAG, "--skip-existing"]
    assert run_cli(first, env=env).exit_code == 0
    again = run_cli(first, env=env)
    assert again.exit_code == 0, again.stderr
    assert len(paid(served)) == 1  # the same masked edit: already saved, not paid again
    other = ["edit", "cat.png", "-p", "a hat", "--region", "0,0,10,10", "--skip-existing"]
    assert run_cli(other, env=env).exit_code == 0
    assert len(paid(served)) == 2
    records = journal_jobs()
    assert len({record.fingerprint for record in records}) == 2
    assert records[0].spec["mask"]["region"] == list(REGION)


def _refused(served: Served, args: list[str], code: int, message: str) -> None:
    result = run_cli(["edit", *args, "-p", "a hat"], env=one_backend_env(served, "gemini"))
    assert result.exit_code == code, result.stderr
    assert " ".join(result.stderr.split()) == f"error: {message}"
    assert served.sandbox.received == []  # refused before a single request


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--region", "1,2,3"], 2,
         "--region '1,2,3' is not X,Y,W,H; give four whole numbers in the input's pixels, e.g. "
         "--region 10,20,200,100 (left, top, width, height)"),
        (["--region", "0,0,0,5"], 2,
         "--region '0,0,0,5' has a negative corner or an empty box; X and Y are 0 or more, W "
         "and H 1 or more"),
        (["--region", "600,0,41,10"], 2,
         "--region 600,0,41,10 reaches past cat.png, which is 640x480; keep X+W at most 640 and "
         "Y+H at most 480"),
        (["--region", "0,0,640,480"], 2,
         "--region 0,0,640,480 is the whole of cat.png; leave it out to edit the whole image, "
         "or give a smaller box"),
        (["--mask", "mask.png", "--region", "0,0,1,1"], 2,
         "--mask and --region both say where to edit; use one (to combine them, draw the box "
         "into the mask file)"),
        (["--max-drift", "3"], 2,
         "--max-drift shapes a masked edit, and no mask was given; add --mask FILE or --region "
         "X,Y,W,H, or drop --max-drift"),
        (["--feather", "0", "--max-drift", "3"], 2,
         "--feather and --max-drift shape a masked edit, and no mask was given; add --mask FILE "
         "or --region X,Y,W,H, or drop --feather and --max-drift"),
        (["--mask", "nothere.png"], 4,
         "the mask nothere.png is not a file; check the path given to --mask"),
        (["--region", "0,0,5,5", "-o", "out.jpg"], 2,
         "a masked edit is saved as PNG, so that the pixels outside the mask stay exactly the "
         "input's, and -o out.jpg names another format; name it .png"),
    ],
)  # fmt: skip
def test_a_bad_region_or_flag_is_refused_before_sending(
    served: Served, args: list[str], code: int, message: str
) -> None:
    Path("cat.png").write_bytes(CAT)
    Image.new("L", (640, 480), 0).save("mask.png")
    _refused(served, ["cat.png", *args], code, message)


def test_a_mask_that_marks_nothing_the_whole_image_or_another_shape_is_refused(
    served: Served,
) -> None:
    Path("cat.png").write_bytes(CAT)
    Image.new("L", (640, 480), 0).save("black.png")
    Image.new("L", (640, 480), 255).save("white.png")
    Image.new("L", (100, 100), 255).save("square.png")
    Path("text.png").write_text("not an image")
    _refused(served, ["cat.png", "--mask", "black.png"], 4,
             "the mask black.png marks nothing to edit (no white or opaque pixel); paint the "
             "area the model may change white (or opaque, on a transparent mask)")  # fmt: skip
    _refused(served, ["cat.png", "--mask", "white.png"], 4,
             "the mask white.png marks the whole of cat.png as editable; leave out --mask to "
             "edit all of it, or paint what must stay black (or transparent)")  # fmt: skip
    _refused(served, ["cat.png", "--mask", "square.png"], 4,
             "the mask square.png is 100x100 and cat.png is 640x480, another shape; make the "
             "mask the input's size")  # fmt: skip
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--mask", "text.png"], env=one_backend_env(served, "gemini")
    )
    assert result.exit_code == 4
    assert " ".join(result.stderr.split()).startswith(
        "error: the mask text.png is not an image Pillow can read ("
    )
    assert served.sandbox.received == []


def test_a_url_or_stdin_input_is_refused_with_a_mask(served: Served) -> None:
    url = f"{served.base_url}/samples/cat.png"
    _refused(served, [url, "--region", "0,0,5,5"], 2,
             f"--mask and --region edit a local file, and {url} is a URL: its pixels must "
             "still be there when the result is composited over it; save it to a file and "
             "edit that")  # fmt: skip


def test_a_missing_input_or_a_pipe_is_refused_with_a_mask_before_it_is_read(
    served: Served,
) -> None:
    _refused(served, ["gone.png", "--region", "0,0,5,5"], 4,
             "the input gone.png does not exist; --mask and --region edit a regular file, whose "
             "pixels are read again when the result is saved")  # fmt: skip
    os.mkfifo("pipe.png")  # nothing writes to it: reading it would hang the test
    _refused(served, ["pipe.png", "--region", "0,0,5,5"], 4,
             "the input pipe.png is not a file; --mask and --region edit a regular file, whose "
             "pixels are read again when the result is saved")  # fmt: skip


def test_generate_has_no_mask(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a fox", "--region", "0,0,5,5"], env=one_backend_env(served, "gemini")
    )
    assert result.exit_code == 2
    assert "No such option: --region" in result.stderr
    assert served.sandbox.received == []


def test_the_python_api_takes_a_region_and_gives_each_image_its_drift(isolated: Path) -> None:
    import nanoedit

    Path("cat.png").write_bytes(CAT)
    result = nanoedit.edit("cat.png", prompt="a hat", region=REGION, sandbox=True)
    [image] = result.images
    assert image.path == isolated / "cat-edit.png" and image.format == "png"
    assert image.drift is not None and image.drift.mean > 0 and not image.drift.over
    assert changed_where(CAT, image.path)[0] == 0
    cropped = nanoedit.edit("cat.png", prompt="a hat", region=REGION, crop=True, sandbox=True)
    assert cropped.images[0].drift is not None
    assert changed_where(CAT, cropped.images[0].path)[0] == 0
    with pytest.raises(UsageError) as caught:
        nanoedit.edit("cat.png", prompt="a hat", region="0,0,5,5", feather=65, sandbox=True)
    assert caught.value.message == "feather is 65; give 0 to 64 pixels"


def test_a_dry_run_of_a_masked_gpt_image_edit_names_the_mask_it_would_make(
    served: Served,
) -> None:
    Path("cat.png").write_bytes(CAT)
    result = run_cli(
        ["edit", "cat.png", "-p", "a hat", "--region", REGION_FLAG, "--model", "gpt-image-1.5",
         "--dry-run", "--json"],
        env=one_backend_env(served, "openai"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    [line] = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["files"] == [
        {"field": "image[]", "source": "cat.png"},
        {"field": "mask", "source": "openai-mask.png"},
    ]
    assert line["note"] == (
        f"openai-mask.png is made from --region {REGION_FLAG} when the request is sent: black, "
        "transparent where the model may edit, the image's size"
    )
    assert served.sandbox.received == []


def test_masked_results_and_a_drift_failure_validate_against_the_result_schema(
    served: Served,
) -> None:
    from test_describe_schemas import valid

    Path("cat.png").write_bytes(CAT)
    env = one_backend_env(served, "gemini")
    for limit in ("100", "0.1"):
        result = run_cli(
            ["edit", "cat.png", "-p", "a hat", "--region", REGION_FLAG, "--max-drift", limit,
             "--json"],
            env=env,
        )  # fmt: skip
        assert result.exit_code == (0 if limit == "100" else 5), result.stderr
        valid("result", json.loads(result.stdout))


def test_the_report_page_says_each_masked_images_drift(served: Served) -> None:
    Path("cat.png").write_bytes(CAT)
    result = run_cli(
        ["edit", "cat.png", "-p", "a hat", "--region", REGION_FLAG, "--max-drift", "0.1",
         "--report", "run.html", "--json"],
        env=one_backend_env(served, "gemini"),
    )  # fmt: skip
    assert result.exit_code == 5
    drift = json.loads(result.stdout)["outputs"][0]["drift"]
    page = Path("run.html").read_text()
    assert (
        f"drift {drift['mean']:g}% outside the mask ({drift['changed']:g}% of pixels), past "
        "--max-drift 0.1%"
    ) in page


def test_a_masked_edit_is_the_inputs_size_whatever_ratio_was_asked_and_says_no_more(
    served: Served,
) -> None:
    Path("cat.png").write_bytes(CAT)
    result = run_cli(
        ["edit", "cat.png", "-p", "a hat", "--region", REGION_FLAG, "--ratio", "16:9", "--json"],
        env=one_backend_env(served, "gemini"),
    )
    assert result.exit_code == 0, result.stderr
    line = json.loads(result.stdout)
    [output] = line["outputs"]
    assert (output["width"], output["height"]) == (640, 480)
    # The answer came at 16:9 and was stretched onto the input: the drift says so, and no
    # warning blames the provider for a ratio the composite itself undid.
    assert output["drift"]["stretched"] is True
    assert line["warnings"] == []


def test_a_dry_run_says_the_answer_would_be_composited(served: Served) -> None:
    Path("cat.png").write_bytes(CAT)
    result = run_cli(
        ["edit", "cat.png", "-p", "a hat", "--region", REGION_FLAG, "--dry-run"],
        env=one_backend_env(served, "gemini"),
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == (
        f"# the answer is composited over cat.png through --region {REGION_FLAG} (PNG)"
    )
    assert served.sandbox.received == []


# --crop's box for REGION in cat.png: a margin of half the region's longer side (120) each
# way, within the image.
CROP_BOX = (80, 0, 560, 440)


@pytest.mark.parametrize("road", [road for road in BACKENDS if road != "duomi"])
def test_crop_sends_the_box_around_the_region_and_still_keeps_the_outside_exact(
    served: Served, road: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, more, flags = BACKENDS[road]
    for name in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    Path("cat.png").write_bytes(CAT)
    env = one_backend_env(served, backend) | more
    result = run_cli(
        ["edit", "cat.png", "-p", "a red hat", "--region", REGION_FLAG, "--crop", "--json",
         *flags],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    [output] = json.loads(result.stdout)["outputs"]
    assert (output["path"], output["width"], output["height"]) == ("cat-edit.png", 640, 480)
    outside, changed = changed_where(CAT, Path("cat-edit.png"))
    assert outside == 0 and changed > 0.9 * REGION[2] * REGION[3]
    assert len(paid(served)) == 1
    with Image.open("cat-edit.png") as saved:
        provenance = json.loads(saved.info["nanoedit"])
    assert provenance["mask"]["crop"] is True
    # The model was shown the crop: its SHA-256 is the input's the provenance records.
    with Image.open("cat.png") as whole:
        crop = io.BytesIO()
        whole.convert("RGB").crop(CROP_BOX).save(crop, format="PNG")
    sent = provenance["inputs"][0]
    assert sent["sha256"] == hashlib.sha256(crop.getvalue()).hexdigest()


def test_crop_gives_gpt_image_the_mask_of_the_crop(served: Served) -> None:
    Path("cat.png").write_bytes(CAT)
    result = run_cli(
        ["edit", "cat.png", "-p", "a hat", "--region", REGION_FLAG, "--crop", "--model",
         "gpt-image-1.5"],
        env=one_backend_env(served, "openai"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    [request] = paid(served)
    [image] = [part for part in request.files if part.field == "image[]"]
    [mask] = [part for part in request.files if part.field == "mask"]
    assert image.filename == "cat.png"
    width, height = CROP_BOX[2] - CROP_BOX[0], CROP_BOX[3] - CROP_BOX[1]
    with Image.open(io.BytesIO(image.data)) as sent:
        assert sent.size == (width, height)
    with Image.open(io.BytesIO(mask.data)) as alpha_mask:
        alpha = alpha_mask.getchannel("A")
        assert alpha.size == (width, height)
        assert alpha.histogram()[0] == REGION[2] * REGION[3]  # the region, within the crop
        assert alpha.getpixel((REGION[0] - CROP_BOX[0], REGION[1] - CROP_BOX[1])) == 0


def test_crop_is_refused_on_a_backend_that_takes_urls_only(served: Served, hosting: str) -> None:
    Path("cat.png").write_bytes(CAT)
    env = one_backend_env(served, "duomi") | {
        "NANOEDIT_UPLOAD_VIA": "command", "NANOEDIT_UPLOAD_COMMAND": hosting,
    }  # fmt: skip
    result = run_cli(["edit", "cat.png", "-p", "x", "--region", REGION_FLAG, "--crop"], env=env)
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()).endswith(
        "--crop sends a crop of the input, and the duomi backend takes only URLs the uploader "
        "made of whole files; leave out --crop, or use a backend that takes files"
    )
    assert paid(served) == []


def test_a_dry_run_with_crop_says_which_box_is_sent(served: Served) -> None:
    Path("cat.png").write_bytes(CAT)
    result = run_cli(
        ["edit", "cat.png", "-p", "a hat", "--region", REGION_FLAG, "--crop", "--dry-run"],
        env=one_backend_env(served, "gemini"),
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1] == (
        f"# the answer is composited over cat.png through --region {REGION_FLAG} (PNG); the "
        "model is sent only the box 80,0,480,440 of it, as PNG"
    )
