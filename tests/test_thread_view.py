"""``nanoedit history thread``: the whole thread a job belongs to, as a tree on a terminal, an
indented form off one, one JSON document, and a page of strips in a real browser.

The thread is made by real runs of ``edit --continue`` against the served sandbox (never rows
written by hand): three turns, and a branch that goes on from turn 2 a second time."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    CHROMIUM,
    NANOEDIT,
    Served,
    chromium,
    edit_turn,
    on_pty,
    one_backend_env,
    paid,
    run_cli,
)
from PIL import Image

PRO = "gemini-3-pro-image"
# Google's list price of one 1K image of Nano Banana Pro, as the catalog holds it.
PRICE = 0.134
NAMES = ("cat-edit.jpg", "cat-edit-edit.jpg", "cat-edit-edit-edit.jpg", "cat-edit-edit-edit-2.jpg")
SGR = re.compile(r"\x1b\[[0-9;]*m")


def a_thread_with_a_branch(served: Served) -> dict[str, str]:
    """Jobs 1, 2, 3 each going on from the one before; job 4 goes on from job 2 again."""
    env = one_backend_env(served, "gemini")
    saved = [
        edit_turn(["cat.png", "-p", "make it night", "-m", "nano-banana-pro"], env),
        edit_turn(["@last", "--continue", "-p", "add a moon"], env),
        edit_turn(["@last", "--continue", "-p", "add stars"], env),
        edit_turn(["@2", "--continue", "-p", "add a sun"], env),
    ]
    assert tuple(saved) == NAMES
    assert len(paid(served)) == 4
    return env


def expected_plain(asked: int) -> str:
    """The indented tree of the thread, marked at job ``asked``."""
    facts = f"saved · gemini {PRO} · $0.134"
    prompts = ("make it night", "add a moon", "add stars", "add a sun")
    heads = [
        f"#{n} {prompt}" + ("  ← asked" if n == asked else "")
        for n, prompt in enumerate(prompts, 1)
    ]
    return (
        f"thread of job {asked}, from job 1: 4 jobs in 2 branches, 4 images, estimated cost "
        "$0.536\n"
        f"{heads[0]}\n"
        f"   {facts}\n"
        "   cat-edit.jpg 1200x896\n"
        f"   {heads[1]}\n"
        f"      {facts}\n"
        "      cat-edit-edit.jpg 1200x896\n"
        f"      {heads[2]}\n"
        f"         {facts}\n"
        "         cat-edit-edit-edit.jpg 1200x896\n"
        f"      {heads[3]}\n"
        f"         {facts}\n"
        "         cat-edit-edit-edit-2.jpg 1200x896\n"
    )


def test_the_thread_off_a_terminal_is_an_indented_tree_from_its_first_turn(
    served: Served, sample: Path
) -> None:
    env = a_thread_with_a_branch(served)
    result = run_cli(["history", "thread", "3"], env=env)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == expected_plain(3)
    # Any job of the thread shows the same tree, marked where it was asked from: @last is the
    # branch's job, @2.1 names job 2's image, @1 the first turn.
    for asked, ident in (("@last", 4), ("@2.1", 2), ("@1", 1)):
        shown = run_cli(["history", "thread", asked], env=env)
        assert (shown.exit_code, shown.stdout) == (0, expected_plain(ident)), shown.stderr
    # A job no turn continues, and that continues none, is a thread of its own.
    lone = edit_turn(["cat.png", "-p", "a hat", "-m", "nano-banana-pro"], env)
    alone = run_cli(["history", "thread", "@last"], env=env)
    assert alone.stdout == (
        "thread of job 5, from job 5: 1 job in 1 branch, 1 image, estimated cost $0.134\n"
        "#5 a hat  ← asked\n"
        f"   saved · gemini {PRO} · $0.134\n"
        f"   {lone} 1200x896\n"
    )


def on_terminal(args: list[str], env: dict[str, str], columns: int = 100) -> tuple[int, str]:
    """Run the installed nanoedit with stdout on a pseudo-terminal ``columns`` wide; its
    exit code and what it drew there."""
    import fcntl
    import pty
    import struct
    import termios

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    inherited = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    process = subprocess.Popen(
        [NANOEDIT, *args], stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.PIPE,
        env=inherited | {"TERM": "xterm-256color", "COLORTERM": "truecolor"} | env,
    )  # fmt: skip
    _, stderr, screen = on_pty(process, controller, terminal)
    assert stderr == b"", stderr
    return process.returncode, screen.decode("utf-8")


def test_the_thread_on_a_terminal_is_a_tree_whose_guides_show_the_branch(
    served: Served, sample: Path
) -> None:
    env = a_thread_with_a_branch(served)
    code, screen = on_terminal(["history", "thread", "3"], env)
    assert code == 0
    assert "\x1b[32msaved\x1b[0m" in screen  # the state in its colour
    assert "\x1b[1;36m← asked\x1b[0m" in screen
    facts = f"saved · gemini {PRO} · $0.134"
    assert SGR.sub("", screen).replace("\r\n", "\n") == (
        "thread of job 3, from job 1: 4 jobs in 2 branches, 4 images, estimated cost $0.536\n"
        "└── #1 make it night\n"
        f"    {facts}\n"
        "    cat-edit.jpg 1200x896\n"
        "    └── #2 add a moon\n"
        f"        {facts}\n"
        "        cat-edit-edit.jpg 1200x896\n"
        "        ├── #3 add stars  ← asked\n"
        f"        │   {facts}\n"
        "        │   cat-edit-edit-edit.jpg 1200x896\n"
        "        └── #4 add a sun\n"
        f"            {facts}\n"
        "            cat-edit-edit-edit-2.jpg 1200x896\n"
    )


def test_the_thread_as_json_is_one_tree_with_each_exchange_s_api_and_no_bytes(
    served: Served, sample: Path
) -> None:
    env = a_thread_with_a_branch(served)
    result = run_cli(["history", "thread", "@3", "--json"], env=env)
    assert (result.exit_code, result.stderr) == (0, "")
    tree = json.loads(result.stdout)

    def node(ident: int, turn: int, prompt: str, parent: int | None, *children: Any) -> Any:
        path = Path(NAMES[ident - 1]).resolve()
        return {
            "id": ident,
            "turn": turn,
            "continues": None if parent is None else {"job": parent, "result": 1},
            "asked": ident == 3,
            "state": "saved",
            "kind": "edit",
            "backend": "gemini",
            "model": PRO,
            "prompt": prompt,
            "outputs": [
                {
                    "path": str(path),
                    "width": 1200,
                    "height": 896,
                    "format": "jpeg",
                    "bytes": path.stat().st_size,
                    "missing": False,
                }
            ],
            "cost": PRICE,
            "sandbox": False,
            "error": None,
            "exchanges": [{"api": "generate_content", "images": [1]}],
            "children": list(children),
        }

    assert tree == {
        "asked": 3,
        "root": 1,
        "continues_lost": None,
        "jobs": 4,
        "branches": 2,
        "images": 4,
        "cost": 0.536,
        "unpriced": 0,
        "tree": node(
            1, 1, "make it night", None,
            node(2, 2, "add a moon", 1,
                 node(3, 3, "add stars", 2), node(4, 3, "add a sun", 2)),
        ),
    }  # fmt: skip
    # Nothing of the model's answer but how it was asked: no signature, no image, no key.
    key = env["NANOEDIT_GEMINI_API_KEY"]
    assert "thoughtSignature" not in result.stdout and key not in result.stdout


def test_a_job_that_is_not_in_the_history_or_not_a_job_is_a_usage_error(
    served: Served, sample: Path
) -> None:
    env = a_thread_with_a_branch(served)
    for asked, message in (
        ("9", "error: there is no job 9 in the history; see: nanoedit history\n"),
        (
            "cat.png",
            "error: 'cat.png' names no job; give its id (12), @12, @12.2 or @last (ids: "
            "nanoedit history)\n",
        ),
    ):
        result = run_cli(["history", "thread", asked], env=env)
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)


def test_a_moved_image_is_named_missing_and_the_tree_still_shows(
    served: Served, sample: Path
) -> None:
    env = a_thread_with_a_branch(served)
    Path("cat-edit-edit.jpg").rename("elsewhere.jpg")
    result = run_cli(["history", "thread", "1"], env=env)
    assert result.exit_code == 0
    assert "      cat-edit-edit.jpg (missing: moved or deleted)\n" in result.stdout
    tree = json.loads(run_cli(["history", "thread", "1", "--json"], env=env).stdout)
    (moved,) = tree["tree"]["children"][0]["outputs"]
    assert moved == {
        "path": str(Path("cat-edit-edit.jpg").resolve()), "width": None, "height": None,
        "format": None, "bytes": None, "missing": True,
    }  # fmt: skip


# The page ------------------------------------------------------------------------------------

# Appended to a copy of the page under test: once everything has loaded, it writes what the
# browser made of each strip and image into the page, for --dump-dom to show.
HARNESS = """<script>
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "harness";
  out.textContent = JSON.stringify({
    strips: [...document.querySelectorAll("section.strip")].map(s => [
      s.querySelector("h3").textContent, s.dataset.depth,
      [...s.querySelectorAll("li.step")].map(li => Number(li.dataset.job)),
      s.getBoundingClientRect().left]),
    images: [...document.images].map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]),
    asked: [...document.querySelectorAll("li.step.asked")].map(li => li.id),
    cost: document.querySelector(".total-cost dd").textContent,
  });
  document.body.append(out);
});
</script>"""


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (apt-get install chromium)"
)
def test_the_thread_page_in_a_real_browser(served: Served, sample: Path, isolated: Path) -> None:
    env = a_thread_with_a_branch(served)
    result = run_cli(["history", "thread", "@3", "--report", "pages/thread.html"], env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "", "wrote the report pages/thread.html\n"
    )  # fmt: skip
    page = (isolated / "pages" / "thread.html").read_text(encoding="utf-8")
    # The full-size images are linked from the page's folder.
    assert all(f'href="../{name}"' in page for name in NAMES)
    probe = isolated / "pages" / "probe.html"
    probe.write_text(page.replace("</body>", HARNESS + "</body>"), encoding="utf-8")
    dumped = chromium("--window-size=1280,1600", "--dump-dom", probe.as_uri())
    assert dumped.returncode == 0, dumped.stderr
    found = re.search(r'<pre id="harness">(.*?)</pre>', dumped.stdout, re.S)
    assert found, dumped.stdout[-2000:]
    seen = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    # The thread's strip (turns 1 to 3), then the branch from job 2, set in under it.
    (thread, thread_depth, thread_jobs, thread_left), (branch, depth, jobs, left) = seen["strips"]
    assert (thread, thread_depth, thread_jobs) == ("Thread from #1", "0", [1, 2, 3])
    assert (branch, depth, jobs) == ("Branch from #2 (turn 2), at turn 3", "1", [4])
    assert left > thread_left
    # Every thumbnail is an image the browser decoded, the shape of the saved 1200x896.
    assert [alt for alt, *_ in seen["images"]] == [
        "The image of #1: make it night", "The image of #2: add a moon",
        "The image of #3: add stars", "The image of #4: add a sun",
    ]  # fmt: skip
    for _, complete, width, height in seen["images"]:
        assert complete and (width, height) == (360, 269)
    assert (seen["asked"], seen["cost"]) == (["job-3"], "$0.536")
    # The thumbnails are the saved images, shrunk: job 4's is not job 3's.
    uris = re.findall(r'src="(data:image/jpeg;base64,[^"]+)"', page)
    assert len(set(uris)) == 4
    with Image.open(isolated / NAMES[0]) as first:
        assert first.size == (1200, 896)


def test_the_page_is_refused_before_anything_is_read_where_it_cannot_be_written(
    served: Served, sample: Path
) -> None:
    env = a_thread_with_a_branch(served)
    Path("notes.html").write_text("<p>mine</p>\n")
    result = run_cli(["history", "thread", "3", "--report", "notes.html"], env=env)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: notes.html already exists and is not a nanoedit report; choose another --report "
        "(an earlier report is replaced, any other file is kept)\n"
    )
    assert Path("notes.html").read_text() == "<p>mine</p>\n"


def test_the_preview_draws_each_turn_s_image_under_its_job(served: Served, sample: Path) -> None:
    from test_preview import cells_of, expected_cells

    from nanoedit.output.preview import ROWS_KEPT, Area, halfblock_pixels

    env = a_thread_with_a_branch(served) | {"NANOEDIT_PREVIEW_PROTOCOL": "halfblocks"}
    code, screen = on_terminal(["history", "thread", "4", "--preview"], env, columns=100)
    assert code == 0
    lines = screen.split("\r\n")
    heads = [n for n, line in enumerate(lines) if SGR.sub("", line).lstrip().startswith("#")]
    assert [SGR.sub("", lines[n]) for n in heads] == [
        "#1 make it night", "   #2 add a moon", "      #3 add stars",
        "      #4 add a sun  ← asked",
    ]  # fmt: skip
    # As large as the terminal lets it be (100 columns, 40 rows less those kept for the
    # lines around it), each image under its job's lines, drawn from the saved file.
    size = halfblock_pixels(1200, 896, Area(100, 40 - ROWS_KEPT))
    for head, name in zip(heads, NAMES, strict=True):
        assert SGR.sub("", lines[head + 2]).strip() == f"{name} 1200x896"
        drawn = [cells_of(line) for line in lines[head + 3 : head + 3 + (size[1] + 1) // 2]]
        with Image.open(name) as image:
            assert drawn == expected_cells(image.convert("RGBA").resize(size, Image.Resampling.BOX))


def test_the_readme_shows_the_tree_the_command_prints() -> None:
    from readme_help import README

    text = README.read_text(encoding="utf-8")
    start = text.index("$ nanoedit history thread 3 | cat\n") + len(
        "$ nanoedit history thread 3 | cat\n"
    )
    assert text[start : text.index("```", start)] == expected_plain(3)
