"""The HTML page of a run (``--report``): its structure read back with the standard library's
HTML parser, its thumbnails decoded, and the page loaded in a real headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import CHROMIUM, Served, backend_env, chromium, run_cli
from PIL import Image

from nanoedit.output.contact_sheet import SheetImage, SheetRow, SheetRun, build_page, make_thumbnail
from nanoedit.sandbox import sample_image

VOID = {"meta", "img", "br", "link", "input", "hr", "source"}
WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@dataclass
class Node:
    """An element of a parsed page."""

    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        """All the text inside, with runs of white space (and line breaks) made one space."""
        parts = [
            child if isinstance(child, str) else " " if child.tag == "br" else child.text()
            for child in self.children
        ]
        return " ".join("".join(parts).split())

    def walk(self) -> Iterator[Node]:
        """This element and every element inside it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        """Every element inside with this tag whose attributes include these (``class_``
        matches one of the classes)."""
        found = []
        for node in self.walk():
            if node.tag != tag:
                continue
            wanted = dict(attrs)
            if (
                "class_" in wanted
                and wanted.pop("class_") not in node.attrs.get("class", "").split()
            ):
                continue
            if all(node.attrs.get(name) == value for name, value in wanted.items()):
                found.append(node)
        return found

    def one(self, tag: str, **attrs: str) -> Node:
        """The one element inside that matches."""
        (node,) = self.find_all(tag, **attrs)
        return node


class TreeBuilder(HTMLParser):
    """Builds :class:`Node` trees, and checks every element is closed where it is opened."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(page: str) -> tuple[str, Node]:
    """The page's doctype and its tree."""
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.doctype, builder.root


def data_image(uri: str) -> tuple[str, tuple[int, int]]:
    """The format and size of the image in a data URI."""
    match = re.fullmatch(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)", uri)
    assert match, uri[:60]
    with Image.open(io.BytesIO(base64.b64decode(match.group(2)))) as image:
        assert image.format == match.group(1).upper()
        return match.group(1).upper(), image.size


def photo(path: Path, size: tuple[int, int], mode: str = "RGB") -> Path:
    """Write an image of this size; noise, so it is not trivially small."""
    image = Image.effect_noise(size, 50).convert(mode)
    if mode == "RGBA":
        image.putalpha(128)
    image.save(path)
    return path


def facts(article: Node) -> dict[str, str]:
    """A job's facts: each term and its value."""
    found = article.one("dl", class_="facts")
    return {div.one("dt").text(): div.one("dd").text() for div in found.find_all("div")}


def totals(root: Node) -> dict[str, str]:
    """The summary's totals."""
    found = root.one("dl", class_="totals")
    return {div.one("dt").text(): div.one("dd").text() for div in found.find_all("div")}


def three_rows(folder: Path) -> list[SheetRow]:
    """A saved edit, a failed one and a skipped generation, with real image files."""
    photo(folder / "cat.png", (1024, 768))
    photo(folder / "cat-edit.png", (1184, 864))
    photo(folder / "dog.png", (100, 50))
    return [
        SheetRow(
            label="cat.png",
            inputs=("cat.png",),
            outputs=(SheetImage("cat-edit.png", 1184, 864, "png", 181234),),
            prompt="make it a watercolor",
            model="nano-banana",
            backend="openai",
            ratio="auto",
            size=None,
            seconds=3.25,
            cost=0.039,
            warnings=("cat-edit.png: asked for 16:9 but the image is 1184x864",),
        ),
        SheetRow(
            label="dog.png",
            inputs=("dog.png", "https://cdn.example/hat.png"),
            outputs=(),
            prompt="add a hat",
            model="gemini-2.5-flash-image",
            backend="duomi",
            ratio="16:9",
            size="1K",
            seconds=75.0,
            error="the model declined: try describing it differently",
        ),
        SheetRow(
            label="a-red-fox",
            inputs=(),
            outputs=(),
            prompt="a red fox",
            model=None,
            backend=None,
            ratio="auto",
            size=None,
            seconds=None,
            skipped=True,
        ),
    ]


def test_the_page_shows_a_summary_then_each_job(isolated: Path) -> None:
    page = build_page(three_rows(isolated), SheetRun(WHEN, 78.5, "9.9.9"), base=isolated)
    doctype, root = parse(page)
    assert doctype == "doctype html"
    html = root.one("html")
    assert html.attrs["lang"] == "en"
    assert root.one("meta", charset="utf-8")
    assert (
        root.one("meta", name="viewport").attrs["content"] == "width=device-width, initial-scale=1"
    )
    assert root.one("meta", name="generator").attrs["content"] == "nanoedit 9.9.9"
    assert root.one("title").text() == "nanoedit: 3 jobs, 1 failed"
    # Stands alone: no script, no stylesheet or image fetched from anywhere.
    assert root.find_all("script") == [] and root.find_all("link") == []
    assert all(img.attrs["src"].startswith("data:image/") for img in root.find_all("img"))

    # The first thing a keyboard reaches skips to the jobs, which can take the focus.
    body = root.one("body")
    first = next(node for node in body.walk() if node.tag in ("a", "button", "input"))
    assert (first.attrs, first.text()) == (
        {"class": "skip", "href": "#jobs"}, "Skip to the jobs"
    )  # fmt: skip
    assert root.one("section", id="jobs").attrs["tabindex"] == "-1"
    headings = [(node.tag, node.text()) for node in body.walk() if re.fullmatch(r"h\d", node.tag)]
    assert headings == [
        ("h1", "nanoedit: 3 jobs, 1 failed"),
        ("h2", "Summary"),
        ("h3", "Failures"),
        ("h2", "Jobs"),
        ("h3", "saved 1. cat.png"),
        ("h4", "Warnings"),
        ("h3", "failed 2. dog.png"),
        ("h3", "skipped 3. a-red-fox"),
    ]
    assert [node.tag for node in body.children if isinstance(node, Node)] == [
        "a", "header", "main", "footer"
    ]  # fmt: skip
    assert root.one("p", class_="when").text() == "Run of 2025-03-04 05:06:07+00:00, nanoedit 9.9.9"

    assert totals(root) == {
        "Jobs": "3",
        "Saved": "1",
        "Failed": "1",
        "Skipped": "1",
        "Images": "1",
        "Time": "1 min 18 s",
        "Estimated cost": "at least $0.039 (1 of 3 jobs priced)",
    }
    (failure,) = root.one("ul", class_="failures").find_all("li")
    assert failure.text() == "dog.png: the model declined: try describing it differently"
    assert failure.one("a").attrs["href"] == "#job-2"

    saved, failed, skipped = root.find_all("article")
    assert [(a.attrs["id"], a.attrs["data-status"], a.attrs["class"]) for a in (saved, failed, skipped)] == [
        ("job-1", "saved", "job saved"), ("job-2", "failed", "job failed"), ("job-3", "skipped", "job skipped"),
    ]  # fmt: skip
    assert saved.attrs["aria-labelledby"] == "job-1-title"
    assert saved.one("h3", id="job-1-title")
    assert facts(saved) == {
        "Prompt": "make it a watercolor",
        "Model": "nano-banana",
        "Backend": "openai",
        "Asked": "ratio auto",
        "Got": "1184x864",
        "Time": "3.2 s",
        "Estimated cost": "$0.039",
    }
    assert saved.one("div", class_="warnings").one("li").text() == (
        "cat-edit.png: asked for 16:9 but the image is 1184x864"
    )
    assert saved.find_all("p", class_="error") == []
    assert facts(failed) == {
        "Prompt": "add a hat",
        "Model": "gemini-2.5-flash-image",
        "Backend": "duomi",
        "Asked": "ratio 16:9, size 1K",
        "Got": "nothing",
        "Time": "1 min 15 s",
    }
    assert failed.one("p", class_="error").text() == (
        "Error: the model declined: try describing it differently"
    )
    assert facts(skipped)["Time"] == "not run"
    assert skipped.one("div", class_="output").text() == "Skipped: already saved"
    assert skipped.one("div", class_="input").text() == "Made from the prompt alone"


def test_pictures_are_thumbnails_linked_to_the_full_images(isolated: Path) -> None:
    page = build_page(three_rows(isolated), SheetRun(WHEN, 1.0, "1"), base=isolated)
    _, root = parse(page)
    saved, failed, _ = root.find_all("article")
    source, result = saved.find_all("figure")
    assert source.attrs["class"] == "input" and result.attrs["class"] == "output"
    assert source.one("a").attrs["href"] == "cat.png"
    assert result.one("a").attrs["href"] == "cat-edit.png"
    assert source.one("figcaption").text() == "Input cat.png"
    assert result.one("figcaption").text() == "Result cat-edit.png 1184x864 PNG · 181.2 kB"
    images = [
        (fig.one("img").attrs, data_image(fig.one("img").attrs["src"])) for fig in (source, result)
    ]
    # Within 360 pixels, shape kept; JPEG for opaque images.
    assert [(attrs["alt"], attrs["width"], attrs["height"], found) for attrs, found in images] == [
        ("Input: cat.png", "360", "270", ("JPEG", (360, 270))),
        ("Result of cat.png: cat-edit.png, 1184x864", "360", "263", ("JPEG", (360, 263))),
    ]
    # A small input is never enlarged; a URL is linked, never fetched.
    own, url = failed.find_all("figure")
    assert data_image(own.one("img").attrs["src"]) == ("JPEG", (100, 50))
    assert url.one("a").attrs["href"] == "https://cdn.example/hat.png"
    assert url.find_all("img") == []
    assert url.one("span", class_="placeholder").text() == "hat.png not downloaded for this page"
    assert url.one("figcaption").text() == "Reference 1 https://cdn.example/hat.png"
    assert failed.one("div", class_="output").text() == "No image"


def test_links_are_relative_to_the_pages_folder(isolated: Path) -> None:
    (isolated / "out").mkdir()
    (isolated / "reports").mkdir()
    photo(isolated / "out" / "cat edit.png", (40, 30))
    row = SheetRow(
        "cat.png", (), (SheetImage("out/cat edit.png", 40, 30, "png", 99),), "x", "m", "b",
        "auto", None, 1.0,
    )  # fmt: skip
    _, root = parse(build_page([row], SheetRun(WHEN, 1.0, "1"), base=isolated / "reports"))
    assert root.one("figure", class_="output").one("a").attrs["href"] == "../out/cat edit.png"


def test_everything_from_a_job_is_escaped(isolated: Path) -> None:
    nasty = '<script>alert("x")</script> & <b>bold</b> \' "'
    row = SheetRow(
        label=nasty, inputs=(f"{nasty}.png",), outputs=(), prompt=nasty, model=nasty,
        backend=nasty, ratio="auto", size=None, seconds=0.5, warnings=(nasty,), error=nasty,
    )  # fmt: skip
    page = build_page([row], SheetRun(WHEN, 0.5, "1"), base=isolated)
    assert "<script>" not in page and "<b>" not in page
    _, root = parse(page)
    assert root.find_all("script") == [] and root.find_all("b") == []
    article = root.one("article")
    assert article.one("h3").text() == f"failed 1. {' '.join(nasty.split())}"
    assert facts(article)["Prompt"] == " ".join(nasty.split())
    assert article.one("p", class_="error").text() == f"Error: {' '.join(nasty.split())}"
    assert article.one("div", class_="warnings").one("li").text() == " ".join(nasty.split())
    assert article.one("figure").one("a").attrs["href"] == f"{nasty}.png"
    # The file name: what follows the last slash (of "</b>").
    assert article.one("span", class_="placeholder").text() == "b> ' \".png could not be read"


@pytest.mark.parametrize(
    ("costs", "shown"),
    [
        ((None, None), "unknown"),
        ((0.039, 0.134), "$0.173"),
        ((0.039, None), "at least $0.039 (1 of 2 jobs priced)"),
    ],
)
def test_the_estimated_cost_is_summed_when_known(
    isolated: Path, costs: tuple[float | None, float | None], shown: str
) -> None:
    rows = [SheetRow("a", (), (), "x", "m", "b", "auto", None, 1.0, cost=cost) for cost in costs]
    _, root = parse(build_page(rows, SheetRun(WHEN, 2.0, "1"), base=isolated))
    assert totals(root)["Estimated cost"] == shown
    assert [("Estimated cost" in facts(a)) for a in root.find_all("article")] == [
        cost is not None for cost in costs
    ]


def test_a_transparent_image_keeps_its_transparency(isolated: Path) -> None:
    thumb = make_thumbnail(photo(isolated / "hat.png", (720, 720), "RGBA"))
    assert thumb is not None
    assert (thumb.width, thumb.height, thumb.full_width, thumb.full_height) == (360, 360, 720, 720)
    assert data_image(thumb.uri) == ("PNG", (360, 360))
    (isolated / "notes.png").write_text("not an image")
    assert make_thumbnail(isolated / "notes.png") is None
    assert make_thumbnail(isolated / "missing.png") is None


# Through the command ----------------------------------------------------------------------


def write_samples(folder: Path, served: Served) -> list[str]:
    """Six inputs for a batch: the four samples, a copy, and a URL."""
    from nanoedit.sandbox import sample_image

    for name in ("cat.png", "dog.jpg", "hat.png", "person.png"):
        (folder / name).write_bytes(sample_image(name)[0])
    shutil.copy(folder / "cat.png", folder / "kitten.png")
    return ["cat.png", "dog.jpg", "hat.png", "person.png", "kitten.png",
            f"{served.base_url}/samples/dog.jpg"]  # fmt: skip


def test_a_batch_report_shows_what_the_run_printed(served: Served, isolated: Path) -> None:
    inputs = write_samples(isolated, served)
    served.sandbox.add_faults("text-only")
    result = run_cli(
        ["edit", *inputs, "-p", "make it a watercolor", "-d", "out", "-j", "1", "--json",
         "--report", "run.html"],
        env=backend_env(served),
    )  # fmt: skip
    assert result.exit_code == 7, result.stderr
    assert result.stderr.endswith(
        "6 jobs: 5 done, 1 failed, 5 images saved\nwrote the report run.html\n"
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]
    _, root = parse((isolated / "run.html").read_text(encoding="utf-8"))
    assert root.one("title").text() == "nanoedit: 6 jobs, 1 failed"
    articles = root.find_all("article")
    # Jobs in the order given, whatever order they finished in.
    labels = [re.sub(r"^\w+ \d+\. ", "", a.one("h3").text()) for a in articles]
    assert labels == inputs
    by_label = {record["inputs"][0]: record for record in records}
    for article, label in zip(articles, labels, strict=True):
        record = by_label[label]
        assert article.attrs["data-status"] == ("saved" if record["ok"] else "failed")
        assert [
            fig.one("a").attrs["href"] for fig in article.find_all("figure", class_="output")
        ] == [output["path"] for output in record["outputs"]]
        assert facts(article)["Got"] == (
            ", ".join(f"{o['width']}x{o['height']}" for o in record["outputs"]) or "nothing"
        )
        assert facts(article)["Backend"] == record["backend"]
        assert re.fullmatch(r"\d+\.\d s", facts(article)["Time"])
    (failed,) = [a for a in articles if a.attrs["data-status"] == "failed"]
    (record,) = [r for r in records if not r["ok"]]
    assert (
        failed.one("p", class_="error").text()
        == f"Error: {' '.join(record['error']['message'].split())}"
    )
    assert totals(root)["Images"] == "5"
    # Every local input and every result has its thumbnail; the URL input is linked.
    assert len(root.find_all("img")) == 5 + 5


def test_the_report_shows_the_estimate_the_run_printed(served: Served, isolated: Path) -> None:
    # As found, through the installed command: the page said "unknown" whatever was priced.
    nanoedit = str(Path(sys.executable).with_name("nanoedit"))
    env = dict(os.environ) | backend_env(served)
    subprocess.run([nanoedit, "config", "set", "pricing.openai.nano-banana", "0.05"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    for name in ("a.png", "b.png"):
        (isolated / name).write_bytes(sample_image("cat.png")[0])
    run = subprocess.run(
        [nanoedit, "edit", "a.png", "b.png", "-p", "x", "--report", "run.html"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines()[0] == (
        "2 jobs, 2 images, estimated $0.10 (gemini-3.1-flash-image at $0.05)"
    )
    _, root = parse((isolated / "run.html").read_text(encoding="utf-8"))
    assert totals(root)["Estimated cost"] == "$0.10"
    assert [facts(a)["Estimated cost"] for a in root.find_all("article")] == ["$0.05", "$0.05"]
    # One job (no estimate printed) at Google's list price: the page has the figure too.
    subprocess.run([nanoedit, "config", "unset", "pricing.openai.nano-banana"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    one = subprocess.run(
        [nanoedit, "edit", "a.png", "-p", "x", "--report", "one.html"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr
    _, root = parse((isolated / "one.html").read_text(encoding="utf-8"))
    assert totals(root)["Estimated cost"] == "$0.067"


def test_an_earlier_report_is_replaced(served: Served, sample: Path) -> None:
    for _ in range(2):
        result = run_cli(
            ["edit", "cat.png", "-p", "x", "--report", "run.html", "-q"], env=backend_env(served)
        )
        assert (result.exit_code, result.stderr) == (0, "")
    _, root = parse(Path("run.html").read_text(encoding="utf-8"))
    assert root.one("title").text() == "nanoedit: 1 job"
    assert [a.one("h3").text() for a in root.find_all("article")] == ["saved 1. cat.png"]
    assert facts(root.one("article"))["Got"] == "1200x896"
    assert sorted(p.name for p in Path().iterdir()) == [
        "cat-edit-2.jpg",
        "cat-edit.jpg",
        "cat.png",
        "run.html",
    ]


def test_the_reports_folder_is_made_like_the_output_folder(served: Served, sample: Path) -> None:
    result = run_cli(
        ["edit", "cat.png", "-p", "x", "-d", "out", "--report", "out/pages/run.html"],
        env=backend_env(served),
    )
    assert (result.exit_code, result.stdout) == (0, "out/cat-edit.jpg\n"), result.stderr
    assert result.stderr.endswith("wrote the report out/pages/run.html\n")
    _, root = parse(Path("out/pages/run.html").read_text(encoding="utf-8"))
    assert root.one("figure", class_="output").one("a").attrs["href"] == "../cat-edit.jpg"


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (
            "notes",
            ["--report", "notes.html"],
            "error: notes.html already exists and is not a nanoedit report; choose another --report "
            "(an earlier report is replaced, any other file is kept)",
        ),
        (
            "notes",
            ["--report", "notes.html/run.html"],
            "error: the report notes.html/run.html cannot be written: notes.html is not a "
            "folder; choose another --report",
        ),
        (
            "folder",
            ["--report", "run.html"],
            "error: the report run.html is a folder; give a file name such as run.html",
        ),
        (
            None,
            ["--report", "run.html", "--dry-run"],
            "error: --report shows the images a run made, and --dry-run makes none; drop one",
        ),
    ],
    ids=["not-a-report", "under-a-file", "a-folder", "dry-run"],
)
def test_a_report_that_cannot_be_written_is_refused_before_anything_is_sent(
    served: Served, sample: Path, setup: str | None, args: list[str], message: str
) -> None:
    if setup == "notes":
        Path("notes.html").write_text("<p>my notes</p>\n")
    elif setup == "folder":
        Path("run.html").mkdir()
    result = run_cli(["edit", "cat.png", "-p", "x", *args], env=backend_env(served))
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message + "\n")
    assert served.sandbox.received == []
    assert not Path("cat-edit.jpg").exists()
    if setup == "notes":
        assert Path("notes.html").read_text() == "<p>my notes</p>\n"


# In a real browser ------------------------------------------------------------------------

# Appended to a copy of the page under test: once everything has loaded, it writes what the
# browser made of each image into the page, for --dump-dom to show.
HARNESS = """<script>
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "harness";
  out.textContent = JSON.stringify({
    images: [...document.images].map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]),
    failed: [...document.querySelectorAll("article[data-status=failed] .error")].map(e => e.textContent),
    skip: getComputedStyle(document.querySelector(".skip")).left,
  });
  document.body.append(out);
});
</script>"""


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (apt-get install chromium)"
)
def test_the_report_in_a_real_browser(served: Served, isolated: Path) -> None:
    inputs = write_samples(isolated, served)
    served.sandbox.add_faults("text-only")
    result = run_cli(
        ["edit", *inputs, "-p", "make it a watercolor", "-d", "out", "--report", "run.html"],
        env=backend_env(served),
    )
    assert result.exit_code == 7, result.stderr
    page = (isolated / "run.html").read_text(encoding="utf-8")
    probe = isolated / "probe.html"
    probe.write_text(page.replace("</body>", HARNESS + "</body>"), encoding="utf-8")
    dumped = chromium("--dump-dom", probe.as_uri())
    assert dumped.returncode == 0, dumped.stderr
    found = re.search(r'<pre id="harness">(.*?)</pre>', dumped.stdout, re.S)
    assert found, dumped.stdout[-2000:]
    seen = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    # Every picture loaded: five inputs read from disk and five results.
    assert len(seen["images"]) == 10
    assert all(
        complete and width > 0 and height > 0 for _, complete, width, height in seen["images"]
    )
    alts = [alt for alt, *_ in seen["images"]]
    assert sorted(alt for alt in alts if alt.startswith("Input: ")) == [
        "Input: cat.png", "Input: dog.jpg", "Input: hat.png", "Input: kitten.png",
        "Input: person.png",
    ]  # fmt: skip
    # The failed job is there, with its message; the skip link waits off screen for the focus.
    (error,) = seen["failed"]
    assert error.startswith("Error: ") and "answered with text but no image" in error
    assert seen["skip"].startswith("-")

    screenshot = isolated / "report.png"
    shot = chromium(
        "--window-size=1280,2400", f"--screenshot={screenshot}", (isolated / "run.html").as_uri()
    )
    assert shot.returncode == 0, shot.stderr
    with Image.open(screenshot) as image:
        assert (image.format, image.size) == ("PNG", (1280, 2400))
        # Not a blank page: the thumbnails and the cards give it many colours.
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 1000
    print(f"screenshot of the report: {screenshot}")
