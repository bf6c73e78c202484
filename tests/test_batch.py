"""Batches through the command line: inputs from globs, folders and job files, jobs run at
once with names fixed beforehand, partial failures, --skip-existing, --shard, exact uploads."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import Served, error_object, image_info, made_from, one_backend_env, posts, run_cli
from PIL import Image, PngImagePlugin
from readme_help import README
from typer.testing import Result

EDITS = "/v1/images/edits"
# The README's sizes for nano-banana (1K JPEG) by ratio: auto, 1:1, 3:2.
AUTO_SIZE = (1200, 896)


def write_image(path: str | Path, shade: int, fmt: str = "PNG") -> bytes:
    """A small image of a colour of its own, so its bytes tell it apart from the others."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), (shade, 255 - shade, 90)).save(target, format=fmt)
    return target.read_bytes()


def sent_inputs(served: Served, candidates: list[str]) -> list[str]:
    """Which candidate file each edit request carried as its first image, by its bytes."""
    by_bytes = {Path(path).read_bytes(): path for path in candidates}
    assert len(by_bytes) == len(candidates), "the candidates must differ in their bytes"
    assert all(request.path == EDITS for request in posts(served))
    return [by_bytes[request.files[0].data] for request in posts(served)]


def summary(result: Result) -> str:
    return result.stderr.splitlines()[-1]


def listing(folder: str | Path = ".") -> list[str]:
    """Every file under a folder, hidden ones too, as sorted relative paths."""
    root = Path(folder)
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


# Expansion ----------------------------------------------------------------------------------


def test_inputs_run_in_the_order_given_and_a_file_named_on_its_own_is_always_taken(
    served: Served,
) -> None:
    write_image("b.png", 10)
    write_image("a.jpg", 20, "JPEG")
    write_image("cat-edit.png", 30)  # looks like a result, but was named: it is an input
    result = run_cli(
        ["edit", "b.png", "a.jpg", "cat-edit.png", "-p", "make it night", "-j", "1"],
        env=one_backend_env(served, "openai"),
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "b-edit.jpg\na-edit.jpg\ncat-edit-edit.jpg\n"
    assert sent_inputs(served, ["b.png", "a.jpg", "cat-edit.png"]) == [
        "b.png",
        "a.jpg",
        "cat-edit.png",
    ]
    assert [request.fields["prompt"] for request in posts(served)] == [["make it night"]] * 3
    assert summary(result) == "3 jobs: 3 done, 0 failed, 3 images saved"
    for name in ("b-edit.jpg", "a-edit.jpg", "cat-edit-edit.jpg"):
        assert image_info(name) == ("JPEG", AUTO_SIZE)


@pytest.fixture
def tree(isolated: Path) -> Path:
    """in/ with images, non-images, hidden files, earlier results and subfolders."""
    write_image("in/b.png", 10)
    write_image("in/a.jpg", 20, "JPEG")
    write_image("in/c.webp", 30, "WEBP")
    write_image("in/photo.PNG", 40)
    write_image("in/.hidden.png", 50)
    write_image("in/cat-edit.png", 60)  # results of an earlier run over in/
    write_image("in/cat-edit-2.jpg", 70, "JPEG")
    Path("in/notes.txt").write_text("not an image\n")
    write_image("in/sub/d.png", 80)
    write_image("in/sub/d-edit.png", 90)
    write_image("in/sub/.g.png", 100)
    write_image("in/sub/deeper/e.png", 110)
    write_image("in/.cache/f.png", 120)
    return isolated / "in"


EVERY_TREE_FILE = [
    "in/.cache/f.png", "in/.hidden.png", "in/a.jpg", "in/b.png", "in/c.webp",
    "in/cat-edit-2.jpg", "in/cat-edit.png", "in/photo.PNG", "in/sub/.g.png", "in/sub/d-edit.png",
    "in/sub/d.png", "in/sub/deeper/e.png",
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["in"], ["in/a.jpg", "in/b.png", "in/c.webp", "in/photo.PNG"]),
        (
            ["in", "--recursive"],
            [
                "in/a.jpg",
                "in/b.png",
                "in/c.webp",
                "in/photo.PNG",
                "in/sub/d.png",
                "in/sub/deeper/e.png",
            ],
        ),
        (["in/*"], ["in/a.jpg", "in/b.png", "in/c.webp", "in/photo.PNG"]),
        (["in/[bc].*", "in/?.jpg"], ["in/b.png", "in/c.webp", "in/a.jpg"]),
        # Without --recursive, ** is one folder level, as in the shell.
        (["in/**/*.png"], ["in/sub/d.png"]),
        (["in/**/*.png", "-R"], ["in/b.png", "in/sub/d.png", "in/sub/deeper/e.png"]),
        # Two ** parts match a file in more ways than one: it is still one job.
        (["in/**/**/*.png", "-R"], ["in/b.png", "in/sub/d.png", "in/sub/deeper/e.png"]),
    ],
)
def test_folders_and_globs_expand_to_their_images_sorted(
    served: Served, tree: Path, args: list[str], expected: list[str]
) -> None:
    result = run_cli(["edit", *args, "-p", "x", "-j", "1"], env=one_backend_env(served, "openai"))
    assert result.exit_code == 0, result.stderr
    stems = [Path(path).stem for path in expected]
    assert result.stdout == "".join(f"{stem}-edit.jpg\n" for stem in stems)
    # Hidden files, non-images and earlier results are never sent.
    assert sent_inputs(served, [p for p in EVERY_TREE_FILE if p != "in/notes.txt"]) == expected
    assert [r.path for r in served.sandbox.received].count(EDITS) == len(expected)
    assert listing(".") == sorted(
        EVERY_TREE_FILE + ["in/notes.txt"] + [f"{s}-edit.jpg" for s in stems]
    )


# Links to folders ----------------------------------------------------------------------------

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))


def planned_inputs(*args: str) -> list[str]:
    """The input of each job the installed command plans for ``args`` (a dry run on the
    sandbox), in order. A walk that never ends fails the test at the time limit, not forever."""
    done = subprocess.run(
        [NANOEDIT, "edit", *args, "-p", "x", "--sandbox", "--dry-run", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["job"] for line in done.stdout.splitlines()]


# A loop of one link, a loop of two (2 ** 40 paths before the kernel says "too many links"),
# and a link to a sibling folder: each image is one job, found by its real path.
LINKS = {
    "one loop": ({"d/self": "../d"}, ["d/a/cat.png", "d/top.png"]),
    "two loops": ({"d/up": "..", "d/a/back": "../.."}, ["d/a/cat.png", "d/top.png"]),
    "a sibling": ({"d/a/to-b": "../b"}, ["d/a/cat.png", "d/b/dog.png", "d/top.png"]),
}


@pytest.mark.parametrize("case", LINKS, ids=list(LINKS))
@pytest.mark.parametrize("pattern", ["d", "d/**/*.png", "d/**"])
def test_a_recursive_folder_or_glob_takes_each_image_once_whatever_links_loop(
    isolated: Path, case: str, pattern: str
) -> None:
    links, expected = LINKS[case]
    write_image("d/top.png", 10)
    write_image("d/a/cat.png", 20)
    if case == "a sibling":
        write_image("d/b/dog.png", 30)
    for link, target in links.items():
        Path(link).symlink_to(target, target_is_directory=True)
    assert planned_inputs(pattern, "-R") == expected


def test_the_readmes_link_back_up_leaves_each_image_one_job(isolated: Path) -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    found = re.search(
        r"Neither goes down a link to a folder: a link back up \(`ln -s (\S+) (\S+)`\) would "
        r"make it endless, and a link to a folder already in the tree would give its images "
        r"twice, so each image is one job, found by its real path; to edit what only a link "
        r"leads to, name the link\.",
        text,
    )
    assert found, "the README no longer says how a folder or glob treats links to folders"
    target, link = found.groups()
    write_image("in/a.png", 10)
    write_image("in/sub/b.png", 20)
    Path(link).symlink_to(target, target_is_directory=True)
    for given in ("in", "in/**/*.png", "**/*.png"):
        assert planned_inputs(given, "-R") == ["in/a.png", "in/sub/b.png"]
    # Named, the link is gone down; the links below it are not.
    assert planned_inputs(link, "-R") == [f"{link}/in/a.png", f"{link}/in/sub/b.png"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["in/*.gif"], "no image file matches in/*.gif; check the pattern"),
        # Only earlier results match: the error says so, and how to edit them anyway.
        (["in/*-edit*"], "no image file to edit matches in/*-edit*; left out 1 image named like "
         "nanoedit's results (in/b-edit.png); to edit it, name it on the command line"),
        (["in/*.txt"], "no image file matches in/*.txt; check the pattern"),
        # One good input does not save the run.
        (["in/b.png", "nowhere/*.png"], "no image file matches nowhere/*.png; check the pattern"),
    ],
)  # fmt: skip
def test_a_glob_matching_no_image_exits_4_before_anything_is_sent(
    served: Served, args: list[str], message: str
) -> None:
    write_image("in/b.png", 10)
    write_image("in/b-edit.png", 20)
    write_image("in/.h.png", 30)
    Path("in/notes.txt").write_text("x\n")
    result = run_cli(["edit", *args, "-p", "x"], env=one_backend_env(served, "openai"))
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr == f"error: {message}\n"
    assert served.sandbox.received == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["empty"],
            "error: the folder empty holds no images to edit (add --recursive to look in its "
            "subfolders); left out 2 images named like nanoedit's results (empty/old-edit-3.jpg, "
            "empty/old-edit.png); to edit them, name them on the command line\n",
        ),
        (
            ["empty", "-R"],
            "error: the folder empty holds no images to edit; left out 2 images named like "
            "nanoedit's results (empty/old-edit-3.jpg, empty/old-edit.png); to edit them, name "
            "them on the command line\n",
        ),
    ],
)
def test_a_folder_with_no_images_exits_4_and_says_so(
    served: Served, args: list[str], message: str
) -> None:
    Path("empty").mkdir()
    Path("empty/notes.txt").write_text("x\n")
    write_image("empty/.hidden.png", 10)
    write_image("empty/old-edit.png", 20)
    write_image("empty/old-edit-3.jpg", 30, "JPEG")
    write_image("empty/.git/x.png", 40)
    result = run_cli(["edit", *args, "-p", "x"], env=one_backend_env(served, "openai"))
    assert (result.exit_code, result.stdout, result.stderr) == (4, "", message)
    assert served.sandbox.received == []


def test_expansion_goes_by_bytes_and_says_what_it_left_out(served: Served) -> None:
    write_image("in/a.png", 10)
    scan = write_image("in/scan", 20, "JPEG")  # an image with no extension
    write_image("in/credit-edit.png", 30)  # the user's own file, named like a result
    write_image("in/x-edit-2.jpg", 40, "JPEG")
    write_image("in/y-edit.webp", 50, "WEBP")
    write_image("in/z-edit.png", 60)
    Path("in/doc.png").write_bytes(b"%PDF-1.7\n")  # named like an image, but not one
    Path("in/notes.txt").write_text("not an image\n")  # neither: nothing to say
    result = run_cli(["edit", "in", "-p", "x", "-j", "1"], env=one_backend_env(served, "openai"))
    assert (result.exit_code, result.stdout) == (0, "a-edit.jpg\nscan-edit.jpg\n"), result.stderr
    assert result.stderr.splitlines()[:2] == [
        "warning: in: left out 4 images named like nanoedit's results (in/credit-edit.png, "
        "in/x-edit-2.jpg, in/y-edit.webp and 1 more); to edit them, name them on the command line",
        "warning: in: left out 1 file named like an image but not one (in/doc.png: it starts "
        "like a PDF)",
    ]
    assert [(f.filename, f.content_type) for r in posts(served) for f in r.files] == [
        ("a.png", "image/png"),
        ("scan.jpg", "image/jpeg"),  # the part's name gets the extension its bytes call for
    ]
    assert posts(served)[1].files[0].data == scan
    # Named on the command line, a file that looks like a result is edited.
    served.sandbox.received.clear()
    named = run_cli(
        ["edit", "in/credit-edit.png", "-p", "x"], env=one_backend_env(served, "openai")
    )
    assert (named.exit_code, named.stdout) == (0, "credit-edit-edit.jpg\n"), named.stderr
    assert [r.files[0].filename for r in posts(served)] == ["credit-edit.png"]


def test_a_glob_goes_by_bytes_too(served: Served) -> None:
    write_image("in/a.png", 10)
    write_image("in/b-edit.png", 20)
    Path("in/fake.png").write_text("<html><body>404</body></html>")
    result = run_cli(["edit", "in/*.png", "-p", "x"], env=one_backend_env(served, "openai"))
    assert (result.exit_code, result.stdout) == (0, "a-edit.jpg\n"), result.stderr
    assert result.stderr.splitlines()[:2] == [
        "warning: in/*.png: left out 1 image named like nanoedit's results (in/b-edit.png); to "
        "edit it, name it on the command line",
        "warning: in/*.png: left out 1 file named like an image but not one (in/fake.png: it "
        "starts like HTML)",
    ]
    assert [r.files[0].filename for r in posts(served)] == ["a.png"]


# Job files ----------------------------------------------------------------------------------


def test_job_file_lines_override_the_flags_and_fall_back_to_them(served: Served) -> None:
    a = write_image("in/a.png", 10)
    b = write_image("in/b.png", 20)
    c = write_image("in/c.png", 30)
    hat = write_image("hat.png", 200)
    Path("jobs.txt").write_text(
        "# tonight's batch\n"
        '{"input": "in/a.png", "prompt": "make it night", "ratio": "16:9", "size": "2k",'
        ' "model": "gemini-3-pro-image-preview", "ref": ["hat.png"]}\n'
        "\n"
        '{"input": "in/b.png"}\n'
        "   # an indented comment\n"
        "   \n"
        "in/c.png\n"
        '{"input": "in/a.png", "prompt": "  night again ", "ratio": "1:1", "size": "1k", "ref": []}\n'
    )
    result = run_cli(
        ["edit", "--from", "jobs.txt", "-p", "default prompt", "--ratio", "3:2", "-r", "hat.png",
         "-j", "1"],
        env=one_backend_env(served, "openai"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "a-edit.jpg\nb-edit.jpg\nc-edit.jpg\na-edit-2.jpg\n"
    assert summary(result) == "4 jobs: 4 done, 0 failed, 4 images saved"
    sent = [
        (list(r.fields.items()), [(f.field, f.filename, f.data) for f in r.files])
        for r in posts(served)
    ]

    def fields(
        model: str, prompt: str, ratio: str, size: str | None = None
    ) -> list[tuple[str, list[str]]]:
        common = [("model", [model]), ("prompt", [prompt]), ("n", ["1"]),
                  ("response_format", ["url"]), ("aspect_ratio", [ratio])]  # fmt: skip
        return common + ([("image_size", [size])] if size else [])

    assert sent == [
        (fields("gemini-3-pro-image-preview", "make it night", "16:9", "2K"),
         [("image", "a.png", a), ("image", "hat.png", hat)]),
        (fields("nano-banana-2", "default prompt", "3:2"),
         [("image", "b.png", b), ("image", "hat.png", hat)]),
        (fields("nano-banana-2", "default prompt", "3:2"),
         [("image", "c.png", c), ("image", "hat.png", hat)]),
        (fields("nano-banana-2", "night again", "1:1", "1K"), [("image", "a.png", a)]),
    ]  # fmt: skip
    assert image_info("a-edit.jpg") == ("JPEG", (2752, 1536))
    assert image_info("b-edit.jpg") == ("JPEG", (1264, 848))
    assert image_info("c-edit.jpg") == ("JPEG", (1264, 848))
    assert image_info("a-edit-2.jpg") == ("JPEG", (1024, 1024))


def test_job_file_from_stdin_runs_after_the_inputs_given_as_arguments(served: Served) -> None:
    write_image("in/a.png", 10)
    write_image("in/b.png", 20)
    write_image("in/c.png", 30)
    stdin = 'in/b.png\n\n# c gets its own prompt\n{"input": "in/c.png", "prompt": "second"}\n'
    result = run_cli(
        ["edit", "in/a.png", "--from", "-", "-p", "first", "-j", "1"],
        env=one_backend_env(served, "openai"),
        stdin=stdin,
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "a-edit.jpg\nb-edit.jpg\nc-edit.jpg\n"
    assert sent_inputs(served, ["in/a.png", "in/b.png", "in/c.png"]) == [
        "in/a.png",
        "in/b.png",
        "in/c.png",
    ]
    assert [r.fields["prompt"] for r in posts(served)] == [["first"], ["first"], ["second"]]


def test_job_file_line_with_its_own_output_among_one_other_line(served: Served) -> None:
    write_image("in/a.png", 10)
    write_image("in/b.png", 20)
    Path("out").mkdir()
    Path("jobs.txt").write_text('{"input": "in/a.png", "output": "out/mine.jpg"}\nin/b.png\n')
    result = run_cli(
        ["edit", "--from", "jobs.txt", "-p", "x", "-j", "1"], env=one_backend_env(served, "openai")
    )
    assert (result.exit_code, result.stdout) == (0, "out/mine.jpg\nb-edit.jpg\n"), result.stderr
    assert made_from("out/mine.jpg") == "in/a.png"
    assert made_from("b-edit.jpg") == "in/b.png"


def test_a_refused_job_does_not_stop_the_others(served: Served) -> None:
    write_image("in/a.png", 10)
    write_image("in/b.png", 20)
    write_image("in/c.png", 30)
    served.sandbox.add_faults("submit:text-only")
    result = run_cli(["edit", "in", "-p", "x", "-j", "1"], env=one_backend_env(served, "openai"))
    assert (result.exit_code, result.stdout) == (7, "b-edit.jpg\nc-edit.jpg\n")
    estimate, first, *rest = result.stderr.splitlines()
    assert estimate == "3 jobs, 3 images, estimated $0.201 (gemini-3.1-flash-image at $0.067)"
    assert first.startswith("error: ")
    assert "answered with text but no image:" in first
    assert rest == [
        "saved b-edit.jpg (1200x896 JPEG) from in/b.png",
        "saved c-edit.jpg (1200x896 JPEG) from in/c.png",
        "3 jobs: 2 done, 1 failed, 2 images saved",
    ]
    # The refusal was paid for: it is not sent again.
    assert sent_inputs(served, ["in/a.png", "in/b.png", "in/c.png"]) == [
        "in/a.png",
        "in/b.png",
        "in/c.png",
    ]
    assert listing(".") == ["b-edit.jpg", "c-edit.jpg", "in/a.png", "in/b.png", "in/c.png"]


def test_an_image_that_is_not_one_is_refused_in_its_turn_after_the_jobs_before_it(
    served: Served,
) -> None:
    # A run reads each image's bytes as its job starts, not every image of the batch before
    # its first request: one job at a time, the jobs report in list order.
    write_image("a.png", 10)
    Path("doc.png").write_bytes(b"%PDF-1.7\n%\xe2\xe3")
    write_image("c.png", 30)
    result = run_cli(
        ["edit", "a.png", "doc.png", "c.png", "-p", "x", "-j", "1"],
        env=one_backend_env(served, "openai"),
    )
    assert (result.exit_code, result.stdout) == (7, "a-edit.jpg\nc-edit.jpg\n")
    assert result.stderr.splitlines() == [
        # Checked in its turn, doc.png is still a job when the batch is priced.
        "3 jobs, 3 images, estimated $0.201 (gemini-3.1-flash-image at $0.067)",
        "saved a-edit.jpg (1200x896 JPEG) from a.png",
        "error: doc.png is not an image (it starts like a PDF); pass a PNG, JPEG or WebP file",
        "saved c-edit.jpg (1200x896 JPEG) from c.png",
        "3 jobs: 2 done, 1 failed, 2 images saved",
    ]
    assert sent_inputs(served, ["a.png", "c.png"]) == ["a.png", "c.png"]
    assert listing(".") == ["a-edit.jpg", "a.png", "c-edit.jpg", "c.png", "doc.png"]


def test_a_dry_run_reads_every_image_before_it_prints_a_command(served: Served) -> None:
    # Nothing is sent, so the dry run's own look at the bytes is the only one: up front.
    write_image("a.png", 10)
    Path("doc.png").write_bytes(b"%PDF-1.7\n%\xe2\xe3")
    result = run_cli(
        ["edit", "a.png", "doc.png", "-p", "x", "--dry-run"], env=one_backend_env(served, "openai")
    )
    assert result.exit_code == 7
    assert result.stdout.startswith("# a.png -> a-edit (openai, nano-banana-2)\ncurl ")
    assert "doc.png" not in result.stdout
    assert result.stderr == (
        "1 job, 1 image, estimated $0.067 (gemini-3.1-flash-image at $0.067)\n"
        "error: doc.png is not an image (it starts like a PDF); pass a PNG, JPEG or WebP file\n"
    )
    assert served.sandbox.received == []


def test_when_every_job_fails_the_exit_code_is_the_failures_own(served: Served) -> None:
    result = run_cli(
        ["edit", "gone1.png", "gone2.png", "-p", "x"], env=one_backend_env(served, "openai")
    )
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr == (
        "error: gone1.png: no such file; check the path\n"
        "error: gone2.png: no such file; check the path\n"
        "2 jobs: 0 done, 2 failed, 0 images saved\n"
    )
    assert served.sandbox.received == []


# --skip-existing ----------------------------------------------------------------------------


def test_skip_existing_sends_nothing_that_is_saved_and_resumes_the_rest(served: Served) -> None:
    inputs = ["in/a.png", "in/b.png", "in/c.png"]
    for shade, path in enumerate(inputs):
        write_image(path, 40 * shade)
    first = run_cli(["edit", "in", "-p", "x", "-j", "2"], env=one_backend_env(served, "openai"))
    assert first.exit_code == 0, first.stderr
    saved = {name: Path(name).read_bytes() for name in ("a-edit.jpg", "b-edit.jpg", "c-edit.jpg")}

    served.sandbox.received.clear()
    again = run_cli(
        ["edit", "in", "-p", "x", "-j", "2", "--skip-existing"],
        env=one_backend_env(served, "openai"),
    )
    assert (again.exit_code, again.stdout) == (0, "a-edit.jpg\nb-edit.jpg\nc-edit.jpg\n")
    assert again.stderr == (
        "skipped in/a.png: its result is already there (--skip-existing)\n"
        "skipped in/b.png: its result is already there (--skip-existing)\n"
        "skipped in/c.png: its result is already there (--skip-existing)\n"
        "3 jobs: 0 done, 0 failed, 3 skipped, 0 images saved\n"
    )
    assert served.sandbox.received == []

    # A result of another extension counts; a missing one is made again, and only it.
    Path("b-edit.jpg").unlink()
    Path("a-edit.jpg").rename("a-edit.webp")
    served.sandbox.received.clear()
    resumed = run_cli(
        ["edit", "in", "-p", "x", "-j", "2", "--skip-existing", "--json"],
        env=one_backend_env(served, "openai"),
    )
    assert resumed.exit_code == 0, resumed.stderr
    assert sent_inputs(served, inputs) == ["in/b.png"]
    records = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert sorted((r["inputs"][0], r["ok"], r["skipped"], len(r["outputs"])) for r in records) == [
        ("in/a.png", True, True, 1),
        ("in/b.png", True, False, 1),
        ("in/c.png", True, True, 1),
    ]
    assert summary(resumed) == "3 jobs: 1 done, 0 failed, 2 skipped, 1 image saved"
    assert listing(".") == ["a-edit.webp", "b-edit.jpg", "c-edit.jpg", *inputs]
    assert Path("c-edit.jpg").read_bytes() == saved["c-edit.jpg"]
    assert made_from("b-edit.jpg") == "in/b.png"


def test_skip_existing_resumes_the_second_of_two_same_stems(served: Served) -> None:
    write_image("a/cat.png", 10)
    write_image("b/cat.png", 20)
    args = ["edit", "a/cat.png", "b/cat.png", "-p", "x", "--skip-existing"]
    first = run_cli(args, env=one_backend_env(served, "openai"))
    assert first.exit_code == 0, first.stderr
    Path("cat-edit-2.jpg").unlink()
    served.sandbox.received.clear()
    again = run_cli(args, env=one_backend_env(served, "openai"))
    assert (again.exit_code, again.stdout) == (0, "cat-edit.jpg\ncat-edit-2.jpg\n"), again.stderr
    assert sent_inputs(served, ["a/cat.png", "b/cat.png"]) == ["b/cat.png"]
    assert made_from("cat-edit-2.jpg") == "b/cat.png"
    assert summary(again) == "2 jobs: 1 done, 0 failed, 1 skipped, 1 image saved"


def test_skip_existing_with_an_output_file_that_exists_sends_nothing(served: Served) -> None:
    write_image("cat.png", 10)
    mine = write_image("mine.png", 99)
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "-o", "mine.png", "--skip-existing"],
        env=one_backend_env(served, "openai"),
    )
    assert (result.exit_code, result.stdout) == (0, "mine.png\n")
    assert result.stderr == "skipped cat.png: its result is already there (--skip-existing)\n"
    assert served.sandbox.received == []
    assert Path("mine.png").read_bytes() == mine
    # Without --skip-existing the same file is refused, still before anything is sent.
    refused = run_cli(
        ["edit", "cat.png", "-p", "x", "-o", "mine.png"], env=one_backend_env(served, "openai")
    )
    assert (refused.exit_code, refused.stdout) == (4, "")
    assert served.sandbox.received == []


# --shard ------------------------------------------------------------------------------------

# Sorted as -R lists them; stems shared across folders so a shard cannot name on its own.
SEVEN = [
    "in/a/cat.png", "in/b/cat.png", "in/c/cat.png", "in/c/dog.png",
    "in/d/cat.png", "in/d/dog.png", "in/e/fox.png",
]  # fmt: skip
SEVEN_NAMES = {
    "cat-edit.jpg": "in/a/cat.png",
    "cat-edit-2.jpg": "in/b/cat.png",
    "cat-edit-3.jpg": "in/c/cat.png",
    "dog-edit.jpg": "in/c/dog.png",
    "cat-edit-4.jpg": "in/d/cat.png",
    "dog-edit-2.jpg": "in/d/dog.png",
    "fox-edit.jpg": "in/e/fox.png",
}


def test_shards_cover_every_job_once_and_agree_on_the_names(served: Served) -> None:
    for shade, path in enumerate(SEVEN):
        write_image(path, 30 * shade)
    whole = run_cli(
        ["edit", "in", "-R", "-p", "x", "-d", "whole"], env=one_backend_env(served, "openai")
    )
    assert whole.exit_code == 0, whole.stderr
    assert {name: made_from(Path("whole", name)) for name in listing("whole")} == SEVEN_NAMES

    for n in range(1, 5):
        folder = f"shards{n}"
        received: list[str] = []
        for k in range(n, 0, -1):  # the last shard first: the order must not matter
            served.sandbox.received.clear()
            result = run_cli(
                ["edit", "in", "-R", "-p", "x", "--shard", f"{k}/{n}", "-d", folder,
                 "--response-format", "b64_json"],
                env=one_backend_env(served, "openai"),
            )  # fmt: skip
            assert result.exit_code == 0, result.stderr
            mine = SEVEN[k - 1 :: n]
            assert sorted(sent_inputs(served, SEVEN)) == sorted(mine)
            names = [f"{folder}/{name}" for name, path in SEVEN_NAMES.items() if path in mine]
            assert sorted(result.stdout.splitlines()) == sorted(names)
            if len(mine) > 1:
                count = len(mine)
                assert (
                    summary(result) == f"{count} jobs: {count} done, 0 failed, {count} images saved"
                )
            received += sent_inputs(served, SEVEN)
        assert Counter(received) == Counter(SEVEN), f"--shard K/{n}"
        assert {name: made_from(Path(folder, name)) for name in listing(folder)} == SEVEN_NAMES


@pytest.mark.parametrize(
    "value",
    [
        "0/2",
        "3/2",
        "x",
        "1/0",
        "2",
        "-1/2",
        "1/2/3",
        "",
    ],
)
def test_a_bad_shard_exits_2_before_anything_is_sent(served: Served, value: str) -> None:
    write_image("cat.png", 10)
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "--shard", value], env=one_backend_env(served, "openai")
    )
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: invalid shard {value!r}; give K/N with 1 <= K <= N, such as 2/4\n"
    )
    assert served.sandbox.received == []


# Uploads ------------------------------------------------------------------------------------


def test_png_jpeg_and_webp_are_uploaded_byte_for_byte_and_gif_as_png(served: Served) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "keep me")
    Image.new("RGBA", (40, 30), (10, 20, 30, 128)).save("a.png", pnginfo=info)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: a re-encoder would be tempted to turn it
    Image.new("RGB", (40, 30), (200, 100, 0)).save("b.jpg", quality=73, exif=exif)
    Image.new("RGB", (40, 30), (0, 100, 200)).save("c.webp", quality=61)
    Image.new("RGB", (40, 30), (0, 200, 100)).save("lossless.webp", lossless=True)
    gif = Image.new("P", (40, 30), 0)
    gif.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    gif.paste(1, (0, 0, 20, 30))
    gif.save("d.gif")
    ref = write_image("ref.jpeg", 77, "JPEG")
    result = run_cli(
        ["edit", "a.png", "b.jpg", "c.webp", "lossless.webp", "d.gif", "-r", "ref.jpeg",
         "-p", "x", "-j", "1"],
        env=one_backend_env(served, "openai"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert (
        "warning: d.gif is GIF, which the API does not take; sending it converted losslessly to PNG"
        in result.stderr.splitlines()
    )
    assert summary(result) == "5 jobs: 5 done, 0 failed, 5 images saved"
    sent = [[(f.field, f.filename, f.content_type, f.data) for f in r.files] for r in posts(served)]
    expected_ref = ("image", "ref.jpeg", "image/jpeg", ref)
    assert sent[:4] == [
        [("image", "a.png", "image/png", Path("a.png").read_bytes()), expected_ref],
        [("image", "b.jpg", "image/jpeg", Path("b.jpg").read_bytes()), expected_ref],
        [("image", "c.webp", "image/webp", Path("c.webp").read_bytes()), expected_ref],
        [("image", "lossless.webp", "image/webp", Path("lossless.webp").read_bytes()),
         expected_ref],
    ]  # fmt: skip
    [(field, filename, content_type, data), sent_ref] = sent[4]
    assert (field, filename, content_type, sent_ref) == (
        "image",
        "d.png",
        "image/png",
        expected_ref,
    )
    with Image.open(io.BytesIO(data)) as png, Image.open("d.gif") as original:
        assert png.format == "PNG"
        assert png.convert("RGB").tobytes() == original.convert("RGB").tobytes()


# --dry-run ----------------------------------------------------------------------------------


def curl(base: str, path: str, prompt: str = "make it night") -> str:
    return (
        f"curl -sS -X POST {base}/v1/images/edits -H 'Authorization: Bearer ****0001' \\\n"
        "  --form-string model=nano-banana-2 \\\n"
        f"  --form-string 'prompt={prompt}' \\\n"
        "  --form-string n=1 \\\n"
        "  --form-string response_format=url \\\n"
        "  --form-string aspect_ratio=16:9 \\\n"
        f"  -F image=@{path}\n"
    )


@pytest.mark.parametrize(
    ("shard", "expected"),
    [
        ([], [("a/cat.png", "cat-edit"), ("b/cat.png", "cat-edit-2"), ("dog.jpg", "dog-edit")]),
        (["--shard", "2/2"], [("b/cat.png", "cat-edit-2")]),
    ],
)
def test_dry_run_prints_a_curl_command_per_job_and_sends_nothing(
    served: Served, shard: list[str], expected: list[tuple[str, str]]
) -> None:
    write_image("a/cat.png", 10)
    write_image("b/cat.png", 20)
    write_image("dog.jpg", 30, "JPEG")
    before = listing(".")
    result = run_cli(
        ["edit", "a/cat.png", "b/cat.png", "dog.jpg", "-p", "make it night", "--ratio", "16:9",
         "-j", "4", "--dry-run", *shard],
        env=one_backend_env(served, "openai"),
    )  # fmt: skip
    jobs = f"{len(expected)} job{'s' if len(expected) > 1 else ''}"
    images = f"{len(expected)} image{'s' if len(expected) > 1 else ''}"
    estimate = f"{jobs}, {images}, estimated ${0.067 * len(expected):.3f}".rstrip("0")
    assert (result.exit_code, result.stderr) == (
        0,
        f"{estimate} (gemini-3.1-flash-image at $0.067)\n",
    )
    assert result.stdout == "".join(
        f"# {path} -> {names} (openai, nano-banana-2)\n" + curl(served.base_url, path)
        for path, names in expected
    )
    assert served.sandbox.received == []
    assert listing(".") == before


# Job files, continued -----------------------------------------------------------------------


def test_job_file_line_with_its_own_output_among_several_other_lines(served: Served) -> None:
    write_image("in/a.png", 10)
    write_image("in/b.png", 20)
    write_image("in/c.png", 30)
    Path("out").mkdir()
    Path("jobs.txt").write_text(
        '{"input":"in/a.png","output":"out/mine.jpg"}\nin/b.png\nin/c.png\n'
    )
    result = run_cli(
        ["edit", "--from", "jobs.txt", "-p", "x", "-j", "1"], env=one_backend_env(served, "openai")
    )
    assert (result.exit_code, result.stdout) == (
        0,
        "out/mine.jpg\nb-edit.jpg\nc-edit.jpg\n",
    ), result.stderr
    assert summary(result) == "3 jobs: 3 done, 0 failed, 3 images saved"
    assert sent_inputs(served, ["in/a.png", "in/b.png", "in/c.png"]) == [
        "in/a.png",
        "in/b.png",
        "in/c.png",
    ]
    assert made_from("out/mine.jpg") == "in/a.png"
    assert made_from("b-edit.jpg") == "in/b.png"
    assert made_from("c-edit.jpg") == "in/c.png"
    assert listing(".") == [
        "b-edit.jpg", "c-edit.jpg", "in/a.png", "in/b.png", "in/c.png", "jobs.txt", "out/mine.jpg",
    ]  # fmt: skip


RATIO_CHOICES = "auto, 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9, 1:4, 4:1, 1:8, 8:1"


@pytest.mark.parametrize(
    ("line", "flags", "code", "message"),
    [
        pytest.param(
            '{"input": "in/b.png", "prompt": "x"',
            ["-p", "x"],
            2,
            "not valid JSON (Expecting ',' delimiter); fix the line",
            id="bad-json",
        ),
        pytest.param(
            '{"input": "in/b.png", "colour": "red"}',
            ["-p", "x"],
            2,
            'unknown field "colour"; the fields are: input, model, output, preset, prompt, ratio, ref, size',
            id="unknown-field",
        ),
        pytest.param(
            '{"prompt": "x"}',
            ["-p", "x"],
            2,
            'the line has no "input"; give the image to edit',
            id="missing-input",
        ),
        pytest.param(
            '{"input": ""}',
            ["-p", "x"],
            2,
            'the line has no "input"; give the image to edit',
            id="empty-input",
        ),
        pytest.param(
            '{"input": "in/b.png"}',
            [],
            2,
            'the job has no prompt; give "prompt" on the line or -p',
            id="no-prompt",
        ),
        pytest.param(
            '{"input": "in/b.png", "prompt": "   "}',
            ["-p", "x"],
            2,
            'the line\'s "prompt" is blank; give text, or leave it out to use -p',
            id="blank-prompt",
        ),
        pytest.param(
            '{"input": "in/b.png", "ratio": "2:1"}',
            ["-p", "x"],
            2,
            f"invalid ratio '2:1'; use one of: {RATIO_CHOICES}",
            id="bad-ratio",
        ),
        pytest.param(
            '{"input": "in/b.png", "size": "8k"}',
            ["-p", "x"],
            2,
            "invalid size '8k'; use one of: 512, 1K, 2K, 4K",
            id="bad-size",
        ),
        pytest.param(
            '{"input": "in/b.png", "ref": ["hat.png", 2]}',
            ["-p", "x"],
            2,
            'the field "ref" must be a list of paths or URLs',
            id="ref-not-strings",
        ),
        pytest.param(
            '{"input": "in/b.png", "ref": {"hat.png": true}}',
            ["-p", "x"],
            2,
            'the field "ref" must be a list of paths or URLs',
            id="ref-not-a-list",
        ),
        pytest.param(
            '{"input": "in/b.png", "prompt": 5}',
            ["-p", "x"],
            2,
            'the field "prompt" must be a string, not a number',
            id="prompt-not-a-string",
        ),
        pytest.param(
            '{"input": ["in/b.png"]}',
            ["-p", "x"],
            2,
            'the field "input" must be a string, not a list',
            id="input-not-a-string",
        ),
        pytest.param(
            '{"input": "file:///etc/hosts"}',
            ["-p", "x"],
            4,
            "file:///etc/hosts uses the file: scheme; nanoedit reads local files and http(s) "
            "URLs only (for a local file, pass its path)",
            id="file-url",
        ),
    ],
)
def test_job_file_errors_name_the_file_and_line_and_send_nothing(
    served: Served, line: str, flags: list[str], code: int, message: str
) -> None:
    write_image("in/a.png", 10)
    write_image("in/b.png", 20)
    # The good lines around the bad one are not sent either: the file is read whole first.
    Path("jobs.txt").write_text(
        f'# tonight\n{{"input": "in/a.png", "prompt": "fine"}}\n{line}\nin/a.png\n'
    )
    result = run_cli(
        ["edit", "--from", "jobs.txt", *flags, "-j", "1"], env=one_backend_env(served, "openai")
    )
    assert (result.exit_code, result.stdout) == (code, "")
    assert result.stderr == f"error: jobs.txt line 3: {message}\n"
    assert served.sandbox.received == []
    assert listing(".") == ["in/a.png", "in/b.png", "jobs.txt"]


def test_job_file_errors_from_stdin_name_the_line(served: Served) -> None:
    write_image("in/a.png", 10)
    write_image("in/b.png", 20)
    stdin = 'in/a.png\n{"input": "in/b.png", "ratio": "2:1"}\n'
    result = run_cli(
        ["edit", "--from", "-", "-p", "x"], env=one_backend_env(served, "openai"), stdin=stdin
    )
    assert (result.exit_code, result.stdout) == (2, "")
    assert (
        result.stderr == f"error: stdin line 2: invalid ratio '2:1'; use one of: {RATIO_CHOICES}\n"
    )
    assert served.sandbox.received == []
    assert listing(".") == ["in/a.png", "in/b.png"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            None,
            "the job file jobs.txt does not exist; check the --from path",
            id="missing",
        ),
        pytest.param(
            b"# nothing tonight\n\n   \n   # an indented comment\n",
            "jobs.txt holds no jobs; give one input or JSON object per line",
            id="comments-only",
        ),
        pytest.param(
            "in/caf\u00e9.png\n".encode("latin-1"),
            "the job file jobs.txt cannot be read (it is not UTF-8 text)",
            id="not-utf8",
        ),
    ],
)
def test_job_file_that_gives_no_jobs_exits_4(
    served: Served, content: bytes | None, message: str
) -> None:
    write_image("in/café.png", 10)
    if content is not None:
        Path("jobs.txt").write_bytes(content)
    before = listing(".")
    result = run_cli(
        ["edit", "--from", "jobs.txt", "-p", "x"], env=one_backend_env(served, "openai")
    )
    assert (result.exit_code, result.stdout, result.stderr) == (4, "", f"error: {message}\n")
    assert served.sandbox.received == []
    assert listing(".") == before


def test_job_file_paths_start_from_its_folder(served: Served) -> None:
    a = write_image("batch/photos/a.png", 10)
    hat = write_image("batch/hat.png", 20)
    write_image("photos/a.png", 30)  # the same path from the current folder: not this one
    flag_ref = write_image("ref.png", 40)  # a --ref flag stays a path from the current folder
    Path("batch/out").mkdir()  # -o into a folder that does not exist is refused
    Path("batch/jobs.jsonl").write_text(
        'photos/a.png\n{"input": "photos/a.png", "ref": ["hat.png"], "output": "out/mine.png"}\n'
    )
    result = run_cli(
        ["edit", "--from", "batch/jobs.jsonl", "-r", "ref.png", "-p", "x", "-j", "1"],
        env=one_backend_env(served, "openai"),
    )
    assert (result.exit_code, result.stdout) == (0, "a-edit.jpg\nbatch/out/mine.png\n"), (
        result.stderr
    )
    assert [[(f.filename, f.data) for f in r.files] for r in posts(served)] == [
        [("a.png", a), ("ref.png", flag_ref)],
        [("a.png", a), ("hat.png", hat)],
    ]
    assert made_from("a-edit.jpg") == "batch/photos/a.png"
    assert image_info("batch/out/mine.png") == ("PNG", AUTO_SIZE)


def test_job_file_from_stdin_takes_paths_from_the_current_folder(served: Served) -> None:
    a = write_image("photos/a.png", 10)
    result = run_cli(
        ["edit", "--from", "-", "-p", "x"],
        env=one_backend_env(served, "openai"),
        stdin="\ufeffphotos/a.png\n",
    )
    assert (result.exit_code, result.stdout) == (0, "a-edit.jpg\n"), result.stderr
    assert [r.files[0].data for r in posts(served)] == [a]


def test_job_file_with_a_byte_order_mark_reads_its_first_line(served: Served) -> None:
    a = write_image("in/a.png", 10)
    Path("jobs.jsonl").write_bytes(
        '\ufeff{"input": "in/a.png", "prompt": "make it night"}\n'.encode()
    )
    result = run_cli(["edit", "--from", "jobs.jsonl"], env=one_backend_env(served, "openai"))
    assert (result.exit_code, result.stdout) == (0, "a-edit.jpg\n"), result.stderr
    assert [(r.fields["prompt"], r.files[0].data) for r in posts(served)] == [
        (["make it night"], a)
    ]


@pytest.mark.parametrize(
    ("job_file", "line", "code", "message"),
    [
        pytest.param("jobs.jsonl", "photos/x.png", 4,
                     "jobs.jsonl line 3: photos/x.png does not exist; check the path",
                     id="plain-line"),
        pytest.param("jobs.jsonl", '{"input": "photos/x.png"}', 4,
                     "jobs.jsonl line 3: photos/x.png does not exist; check the path",
                     id="json-input"),
        pytest.param("jobs.jsonl", '{"input": "photos/a.png", "ref": ["hat.png"]}', 4,
                     "jobs.jsonl line 3: hat.png does not exist; check the path", id="json-ref"),
        pytest.param("batch/jobs.jsonl", "photos/a.png", 4,
                     "batch/jobs.jsonl line 3: photos/a.png does not exist (looked for "
                     "batch/photos/a.png: a job file's paths start from its folder); check the "
                     "path", id="other-folder"),
        pytest.param("jobs.jsonl", "-", 2,
                     "jobs.jsonl line 3: - (stdin) cannot be an image in a job file; give the "
                     "image's path", id="stdin-in-a-job-file"),
    ],
)  # fmt: skip
def test_job_file_naming_a_missing_image_sends_nothing(
    served: Served, job_file: str, line: str, code: int, message: str
) -> None:
    write_image("photos/a.png", 10)
    Path(job_file).parent.mkdir(exist_ok=True)
    Path(job_file).write_text(f"# tonight\n{Path('photos/a.png').resolve()}\n{line}\n")
    before = listing(".")
    result = run_cli(
        ["edit", "--from", job_file, "-p", "x"], env=one_backend_env(served, "openai"), stdin=b""
    )
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f"error: {message}\n")
    assert served.sandbox.received == []
    assert listing(".") == before


# Names fixed up front -----------------------------------------------------------------------

# Out of sorted order, with stems shared across folders: names follow this list.
EIGHT = [
    "y/cat.png", "x/dog.png", "z/cat.png", "x/cat.png",
    "y/fox.png", "x/fox.png", "z/dog.png", "w/owl.png",
]  # fmt: skip
EIGHT_NAMES = {
    "cat-edit.jpg": "y/cat.png",
    "dog-edit.jpg": "x/dog.png",
    "cat-edit-2.jpg": "z/cat.png",
    "cat-edit-3.jpg": "x/cat.png",
    "fox-edit.jpg": "y/fox.png",
    "fox-edit-2.jpg": "x/fox.png",
    "dog-edit-2.jpg": "z/dog.png",
    "owl-edit.jpg": "w/owl.png",
}


def test_four_at_once_saves_every_image_under_the_same_names_in_every_run(
    served: Served,
) -> None:
    for shade, path in enumerate(EIGHT):
        write_image(path, 30 * shade)
    in_list_order = list(EIGHT_NAMES)
    mappings = []
    served.sandbox.slow_seconds = 0.5
    for run, faults in (("one", "submit:slowx2"), ("two", "")):
        # The first two requests to arrive are held back, so their jobs finish after later ones.
        if faults:
            served.sandbox.add_faults(faults)
        served.sandbox.received.clear()
        result = run_cli(
            ["edit", *EIGHT, "-p", "x", "-j", "4", "-d", run], env=one_backend_env(served, "openai")
        )
        assert result.exit_code == 0, result.stderr
        assert served.sandbox.pending_faults() == []
        printed = [line.removeprefix(f"{run}/") for line in result.stdout.splitlines()]
        assert sorted(printed) == sorted(in_list_order)
        if faults:
            assert printed != in_list_order, "the jobs were meant to finish out of order"
        assert summary(result) == "8 jobs: 8 done, 0 failed, 8 images saved"
        assert Counter(sent_inputs(served, EIGHT)) == Counter(EIGHT)
        assert listing(run) == sorted(EIGHT_NAMES)
        mappings.append({name: made_from(Path(run, name)) for name in listing(run)})
    assert mappings == [EIGHT_NAMES, EIGHT_NAMES]


@pytest.mark.parametrize("jobs", ["1", "4"])
@pytest.mark.parametrize("order", [["a/cat.png", "b/cat.png"], ["b/cat.png", "a/cat.png"]])
def test_same_stem_in_two_folders_numbers_in_list_order(
    served: Served, order: list[str], jobs: str
) -> None:
    write_image("a/cat.png", 10)
    write_image("b/cat.png", 20)
    result = run_cli(["edit", *order, "-p", "x", "-j", jobs], env=one_backend_env(served, "openai"))
    assert result.exit_code == 0, result.stderr
    printed = result.stdout.splitlines()
    if jobs == "1":
        assert printed == ["cat-edit.jpg", "cat-edit-2.jpg"]
    else:
        assert sorted(printed) == ["cat-edit-2.jpg", "cat-edit.jpg"]
    assert made_from("cat-edit.jpg") == order[0]
    assert made_from("cat-edit-2.jpg") == order[1]
    assert sorted(sent_inputs(served, order)) == ["a/cat.png", "b/cat.png"]
    assert listing(".") == ["a/cat.png", "b/cat.png", "cat-edit-2.jpg", "cat-edit.jpg"]


def test_names_taken_by_other_files_are_passed_over(served: Served) -> None:
    write_image("cat.png", 10)
    theirs = write_image("cat-edit.png", 99)  # not ours: no provenance, another format
    result = run_cli(["edit", "cat.png", "-p", "x"], env=one_backend_env(served, "openai"))
    assert (result.exit_code, result.stdout) == (0, "cat-edit-2.jpg\n"), result.stderr
    assert result.stderr == "saved cat-edit-2.jpg (1200x896 JPEG) from cat.png\n"
    assert made_from("cat-edit-2.jpg") == "cat.png"
    assert Path("cat-edit.png").read_bytes() == theirs
    assert listing(".") == ["cat-edit-2.jpg", "cat-edit.png", "cat.png"]


def test_a_rerun_of_the_same_stems_numbers_on(served: Served) -> None:
    write_image("a/cat.png", 10)
    write_image("b/cat.png", 20)
    args = ["edit", "a/cat.png", "b/cat.png", "-p", "x", "-j", "1"]
    first = run_cli(args, env=one_backend_env(served, "openai"))
    assert (first.exit_code, first.stdout) == (0, "cat-edit.jpg\ncat-edit-2.jpg\n"), first.stderr
    again = run_cli(args, env=one_backend_env(served, "openai"))
    assert (again.exit_code, again.stdout) == (0, "cat-edit-3.jpg\ncat-edit-4.jpg\n"), again.stderr
    assert {name: made_from(name) for name in listing(".") if name.startswith("cat-edit")} == {
        "cat-edit.jpg": "a/cat.png",
        "cat-edit-2.jpg": "b/cat.png",
        "cat-edit-3.jpg": "a/cat.png",
        "cat-edit-4.jpg": "b/cat.png",
    }
    assert sent_inputs(served, ["a/cat.png", "b/cat.png"]) == ["a/cat.png", "b/cat.png"] * 2

    # A folder run over the same place takes the inputs, never the results.
    served.sandbox.received.clear()
    before = listing(".")
    flat = run_cli(["edit", ".", "-p", "x", "--dry-run"], env=one_backend_env(served, "openai"))
    assert (flat.exit_code, flat.stdout) == (4, "")
    assert flat.stderr == (
        "error: the folder . holds no images to edit (add --recursive to look in its "
        "subfolders); left out 4 images named like nanoedit's results (cat-edit-2.jpg, "
        "cat-edit-3.jpg, cat-edit-4.jpg and 1 more); to edit them, name them on the command line\n"
    )
    deep = run_cli(
        ["edit", ".", "-R", "-p", "x", "--dry-run"], env=one_backend_env(served, "openai")
    )
    assert (deep.exit_code, deep.stderr) == (
        0,
        "warning: .: left out 4 images named like nanoedit's results (cat-edit-2.jpg, "
        "cat-edit-3.jpg, cat-edit-4.jpg and 1 more); to edit them, name them on the command "
        "line\n2 jobs, 2 images, estimated $0.134 (gemini-3.1-flash-image at $0.067)\n",
    )
    assert [line for line in deep.stdout.splitlines() if line.startswith("#")] == [
        "# a/cat.png -> cat-edit-5 (openai, nano-banana-2)",
        "# b/cat.png -> cat-edit-6 (openai, nano-banana-2)",
    ]
    assert served.sandbox.received == []
    assert listing(".") == before


# Partial failures, continued ----------------------------------------------------------------


def test_a_failed_download_fails_its_job_only(served: Served) -> None:
    write_image("in/a.png", 10)
    write_image("in/b.png", 20)
    url = f"{served.base_url}/samples/missing.png"
    host = served.base_url.removeprefix("http://")
    result = run_cli(
        ["edit", "in/a.png", "in/b.png", url, "-p", "x", "-j", "4", "--json"],
        env=one_backend_env(served, "openai"),
    )
    assert result.exit_code == 7, result.stderr
    records = {
        record["inputs"][0]: record for record in map(json.loads, result.stdout.splitlines())
    }
    assert len(records) == 3

    def done(job: int, source: str, name: str) -> dict[str, object]:
        output = {"path": name, "width": AUTO_SIZE[0], "height": AUTO_SIZE[1], "format": "jpeg",
                  "bytes": Path(name).stat().st_size}  # fmt: skip
        return {"schema": "nanoedit/result/1", "ok": True, "job": job, "state": "saved", "kind": "edit", "backend": "openai",
                "model": "nano-banana-2", "prompt": "x", "inputs": [source], "outputs": [output],
                "sent": True, "tasks": [], "skipped": False, "warnings": [], "text": "",
                "error": None}  # fmt: skip

    message = (
        f"the input {url} could not be downloaded from {host}: HTTP 404 (it starts like text); "
        "check the address"
    )
    assert records == {
        "in/a.png": done(1, "in/a.png", "a-edit.jpg"),
        "in/b.png": done(2, "in/b.png", "b-edit.jpg"),
        url: {"schema": "nanoedit/result/1", "ok": False, "job": 3, "state": "failed", "kind": "edit", "backend": "openai",
              "model": "nano-banana-2", "prompt": "x", "inputs": [url], "outputs": [], "sent": True,
              "tasks": [], "skipped": False, "warnings": [], "text": "",
              "error": error_object("input", message, 4)},
    }  # fmt: skip
    estimate, *lines, last = result.stderr.splitlines()
    assert estimate == "3 jobs, 3 images, estimated $0.201 (gemini-3.1-flash-image at $0.067)"
    assert sorted(lines) == [
        f"error: {message}",
        "saved a-edit.jpg (1200x896 JPEG) from in/a.png",
        "saved b-edit.jpg (1200x896 JPEG) from in/b.png",
    ]
    assert last == "3 jobs: 2 done, 1 failed, 2 images saved"
    # A 404 is not retried, and the job whose input never came sends nothing.
    assert [r.path for r in served.sandbox.received].count("/samples/missing.png") == 1
    assert sorted(sent_inputs(served, ["in/a.png", "in/b.png"])) == ["in/a.png", "in/b.png"]
    assert listing(".") == ["a-edit.jpg", "b-edit.jpg", "in/a.png", "in/b.png"]
