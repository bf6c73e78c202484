"""`nanoedit edit` over the multipart backend, against the sandbox on a loopback port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import OPENAI_KEY, Served, backend_env, image_info, run_cli

from nanoedit.sandbox import sample_image


def test_edit_sends_exact_multipart_and_saves_the_image(served: Served, sample: Path) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "make it a watercolor", "--ratio", "16:9"],
        env=backend_env(served, duomi=False),
    )
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    assert result.stderr == "saved cat-edit.jpg (1376x768 JPEG) from cat.png\n"
    post, download = served.sandbox.received
    assert (post.method, post.path) == ("POST", "/v1/images/edits")
    assert post.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert post.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert list(post.fields.items()) == [
        # nano-banana on the gateway is its NB2.
        ("model", ["nano-banana-2"]),
        ("prompt", ["make it a watercolor"]),
        ("n", ["1"]),
        ("response_format", ["url"]),
        ("aspect_ratio", ["16:9"]),
    ]
    assert [(f.field, f.filename, f.content_type, f.data) for f in post.files] == [
        ("image", "cat.png", "image/png", sample.read_bytes())
    ]
    # The result is fetched at once, and the key never goes to the image host.
    assert (download.method, download.path.startswith("/files/")) == ("GET", True)
    assert "authorization" not in download.headers
    assert image_info("cat-edit.jpg") == ("JPEG", (1376, 768))


def test_multipart_body_byte_for_byte(served: Served, sample: Path) -> None:
    Path("hat.png").write_bytes(sample_image("hat.png")[0])
    result = run_cli(
        [
            "edit",
            "cat.png",
            "--ref",
            "hat.png",
            "-p",
            "put the hat on the cat",
            "--size",
            "4k",
            # The gateway's nano-banana-2 takes image_size (its nano-banana-pro does not).
            "--model",
            "nano-banana-2",
        ],
        env=backend_env(served),
    )
    assert result.exit_code == 0, result.stderr
    post = served.sandbox.received[0]
    boundary = post.headers["content-type"].split("boundary=", 1)[1].encode()

    def field(name: str, value: str) -> bytes:
        head = f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        return b"--" + boundary + b"\r\n" + head + value.encode() + b"\r\n"

    def image(path: str) -> bytes:
        head = (
            f'Content-Disposition: form-data; name="image"; filename="{path}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        return b"--" + boundary + b"\r\n" + head + Path(path).read_bytes() + b"\r\n"

    expected = (
        field("model", "nano-banana-2")
        + field("prompt", "put the hat on the cat")
        + field("n", "1")
        + field("response_format", "url")
        + field("image_size", "4K")
        + image("cat.png")
        + image("hat.png")
        + b"--" + boundary + b"--\r\n"
    )  # fmt: skip
    assert post.body == expected
    assert post.headers["content-length"] == str(len(expected))


def test_references_follow_the_input_and_size_is_sent_uppercase(
    served: Served, sample: Path
) -> None:
    Path("hat.png").write_bytes(sample_image("hat.png")[0])
    result = run_cli(
        ["edit", "cat.png", "--ref", "hat.png", "-p", "put the hat on the cat",
         "--size", "2k", "--model", "gemini-3-pro-image-preview", "--ratio", "3:2"],
        env=backend_env(served),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    post = served.sandbox.received[0]
    assert post.fields["image_size"] == ["2K"]
    assert [(f.field, f.filename) for f in post.files] == [
        ("image", "cat.png"),
        ("image", "hat.png"),
    ]
    assert result.stdout == "cat-edit.jpg\n"
    assert image_info("cat-edit.jpg") == ("JPEG", (2528, 1696))


def test_two_inputs_make_two_jobs_and_names_never_collide(served: Served, sample: Path) -> None:
    Path("cat-edit.png").write_bytes(b"an older result")
    Path("dog.jpg").write_bytes(sample_image("dog.jpg")[0])
    result = run_cli(
        ["edit", "cat.png", "dog.jpg", "-p", "make it night", "-j", "1"], env=backend_env(served)
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "cat-edit-2.jpg\ndog-edit.jpg\n"
    assert Path("cat-edit.png").read_bytes() == b"an older result"
    posts = [r for r in served.sandbox.received if r.method == "POST"]
    assert sorted([f.filename for f in r.files] for r in posts) == [["cat.png"], ["dog.jpg"]]
    assert result.stderr.splitlines()[-1] == "2 jobs: 2 done, 0 failed, 2 images saved"


def test_image_field_by_config_and_base_url_with_v1(served: Served, sample: Path) -> None:
    env = backend_env(served, duomi=False) | {
        "NANOEDIT_OPENAI_BASE_URL": f"{served.base_url}/v1/",
        "NANOEDIT_OPENAI_IMAGE_FIELD": "image[]",
    }
    result = run_cli(["edit", "cat.png", "-p", "x", "-n", "2"], env=env)
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\ncat-edit-2.jpg\n"), result.stderr
    post = served.sandbox.received[0]
    assert (post.path, post.fields["n"], [f.field for f in post.files]) == (
        "/v1/images/edits", ["2"], ["image[]"]
    )  # fmt: skip


def test_b64_json_answers_are_decoded(served: Served, sample: Path) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--response-format", "b64_json", "--json"],
        env=backend_env(served),
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record == {
        "schema": "nanoedit/result/1", "ok": True, "job": 1, "state": "saved", "kind": "edit", "backend": "openai",
        "model": "nano-banana-2", "prompt": "x", "inputs": ["cat.png"],
        "outputs": [{"path": "cat-edit.jpg", "width": 1200, "height": 896, "format": "jpeg",
                     "bytes": Path("cat-edit.jpg").stat().st_size}],
        "sent": True, "tasks": [], "skipped": False, "warnings": [], "text": "", "error": None,
    }  # fmt: skip
    assert served.sandbox.received[0].fields["response_format"] == ["b64_json"]
    assert len(served.sandbox.received) == 1  # nothing to download


def test_url_input_is_downloaded_and_sent_as_a_file(served: Served) -> None:
    url = f"{served.base_url}/samples/dog.jpg"
    result = run_cli(["edit", url, "-p", "add a hat", "--backend", "openai", "-d", "out"],
                     env=backend_env(served))  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, "out/dog-edit.jpg\n"), result.stderr
    fetch, post, _download = served.sandbox.received
    assert (fetch.path, "authorization" in fetch.headers) == ("/samples/dog.jpg", False)
    assert [(f.filename, f.content_type, f.data) for f in post.files] == [
        ("dog.jpg", "image/jpeg", sample_image("dog.jpg")[0])
    ]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("data-uri", ("JPEG", (1200, 896))),
        ("redirect", ("JPEG", (1200, 896))),
    ],
)
def test_answer_shapes_that_still_carry_an_image(
    served: Served, sample: Path, fault: str, expected: tuple[str, tuple[int, int]]
) -> None:
    served.sandbox.add_faults(fault)
    result = run_cli(["edit", "cat.png", "-p", "x"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (0, "cat-edit.jpg\n"), result.stderr
    assert image_info("cat-edit.jpg") == expected


def test_extension_follows_the_bytes_not_the_url(served: Served, sample: Path) -> None:
    served.sandbox.add_faults("mislabeled")
    result = run_cli(["edit", "cat.png", "-p", "x"], env=backend_env(served))
    assert result.exit_code == 0, result.stderr
    saved = result.stdout.strip()
    fmt, _ = image_info(saved)
    assert Path(saved).suffix == {"JPEG": ".jpg", "PNG": ".png"}[fmt]
    assert saved in ("cat-edit.jpg", "cat-edit.png")


@pytest.mark.parametrize(
    ("fault", "code", "message"),
    [
        ("error200", 5, "answered HTTP 200:"),
        ("empty-url", 5, "answered HTTP 200 with an empty image URL, so no image was made"),
        ("empty-data", 5, "answered HTTP 200 with an empty data list, so no image was made"),
        ("no-data", 5, "answered HTTP 200 with no data list, so no image was made"),
        ("text-only", 8, "answered with text but no image:"),
        ("html502x4", 5, "answered HTTP 502 with a body that is not JSON (it starts like HTML)"),
        ("500x4", 5, "answered HTTP 500:"),
        ("expired", 5, "could not be downloaded"),
        ("html-result", 5, "is not an image (it starts like HTML); nothing was saved"),
    ],
)
def test_failures_exit_5_and_save_nothing(
    served: Served, sample: Path, fault: str, code: int, message: str
) -> None:
    served.sandbox.add_faults(fault)
    result = run_cli(["edit", "cat.png", "-p", "x"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (code, "")
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: ")
    assert message in last
    assert sorted(p.name for p in Path(".").iterdir()) == ["cat.png"]


def test_unknown_model_is_reported_with_a_hint(served: Served, sample: Path) -> None:
    result = run_cli(["edit", "cat.png", "-p", "x", "--model", "dall-e-9"], env=backend_env(served))
    assert result.exit_code == 5
    assert "answered HTTP 503:" in result.stderr
    assert (
        "[model_not_found]; this server does not offer that model; choose another with --model"
        in (result.stderr)
    )


# --- OpenAI's own GPT image models -------------------------------------------------------------


def test_a_gpt_image_model_gets_openais_own_fields_and_answers_base64(
    served: Served, sample: Path
) -> None:
    Path("hat.png").write_bytes(sample_image("hat.png")[0])
    result = run_cli(
        ["edit", "cat.png", "--ref", "hat.png", "-p", "put the hat on the cat",
         "--model", "gpt-image-1.5", "--ratio", "3:2", "--size", "1k"],
        env=backend_env(served, duomi=False),
    )  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, "cat-edit.png\n"), result.stderr
    # One request: the image comes as base64 in the answer, nothing to download.
    (post,) = served.sandbox.received
    assert list(post.fields.items()) == [
        ("model", ["gpt-image-1.5"]),
        ("prompt", ["put the hat on the cat"]),
        ("n", ["1"]),
        ("size", ["1536x1024"]),
    ]
    # A list of images goes as image[], as OpenAI's own client sends it.
    assert [(f.field, f.filename) for f in post.files] == [
        ("image[]", "cat.png"),
        ("image[]", "hat.png"),
    ]
    assert image_info("cat-edit.png") == ("PNG", (1536, 1024))


def test_a_gpt_image_generation_with_no_ratio_leaves_the_size_to_the_model(
    served: Served,
) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox", "--model", "gpt-image-2", "--backend", "openai",
         "-n", "2", "--response-format", "url"],
        env=backend_env(served, duomi=False),
    )  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, "a-red-fox.png\na-red-fox-2.png\n"), (
        result.stderr
    )
    (post,) = served.sandbox.received
    assert post.json == {"model": "gpt-image-2", "prompt": "a red fox", "n": 2}
    assert image_info("a-red-fox.png") == ("PNG", (1024, 1024))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ratio", "16:9"],
         "gpt-image-1.5 renders 1024x1024 (--ratio 1:1), 1536x1024 (--ratio 3:2) or 1024x1536 "
         "(--ratio 2:3), or picks one of them itself (--ratio auto), all 1K; --ratio 16:9 "
         "cannot be honoured: choose one of those ratios"),
        (["--size", "4K"],
         "gpt-image-1.5 renders 1024x1024 (--ratio 1:1), 1536x1024 (--ratio 3:2) or 1024x1536 "
         "(--ratio 2:3), or picks one of them itself (--ratio auto), all 1K; size 4K cannot be "
         "honoured: drop it (from --size, NANOEDIT_SIZE or default.size)"),
    ],
    ids=["ratio", "size"],
)  # fmt: skip
def test_what_a_gpt_image_model_cannot_do_is_refused_before_sending(
    served: Served, sample: Path, args: list[str], message: str
) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--model", "gpt-image-1.5", *args],
        env=backend_env(served, duomi=False),
    )
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"error: {message}\n")
    assert served.sandbox.received == []
