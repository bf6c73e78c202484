"""A run as one HTML page: per job its input and results side by side, with the prompt, the
model, the sizes asked and got, the time, warnings and failures; a summary on top.

The page stands alone: thumbnails are data URIs made here with Pillow, styles are inline, and
there is no script, so it works from an e-mail, a CI artifact or a phone with JavaScript off.
Full-size images are links, relative to the page's folder.

The builder takes plain records (:class:`SheetRow`), not the runner's outcomes, so a page can
be made from a run that just ended (:func:`rows_from_outcomes`) or from any other record of
one.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from nanoedit.errors import OutputError, UsageError

if TYPE_CHECKING:
    from nanoedit.jobs import Drift, JobOutcome, SavedImage

# Thumbnails fit in a square of this many pixels: sharp at twice the size they are shown.
THUMBNAIL_BOX = 360
THUMBNAIL_QUALITY = 82
# The mark that tells a page this module wrote from any other file, so --report replaces
# an earlier page but never a file the user keeps for something else.
GENERATOR = "nanoedit"
GENERATOR_TAG = f'<meta name="generator" content="{GENERATOR}'
# How far into a file that mark is looked for.
MARK_WITHIN = 4096


@dataclass(frozen=True)
class SheetImage:
    """A result image: where it is, and what it is."""

    path: str
    width: int
    height: int
    format: str
    bytes: int
    drift: str | None = None
    """A masked edit's drift, as the page says it."""


@dataclass(frozen=True)
class SheetRow:
    """One job of a run, as the page shows it."""

    label: str
    inputs: tuple[str, ...]
    """Input paths or URLs, as given; none for a generation."""
    outputs: tuple[SheetImage, ...]
    prompt: str
    model: str | None
    backend: str | None
    ratio: str
    """The aspect ratio asked for (``auto`` when none was)."""
    size: str | None
    """The size asked for (``1K``…), or None."""
    seconds: float | None
    """How long the job took; None when it never ran."""
    cost: float | None = None
    """Estimated cost in US dollars, when known."""
    warnings: tuple[str, ...] = ()
    error: str | None = None
    skipped: bool = False

    @property
    def status(self) -> str:
        """``failed``, ``skipped`` or ``saved``."""
        if self.error is not None:
            return "failed"
        return "skipped" if self.skipped else "saved"


@dataclass(frozen=True)
class SheetRun:
    """What the page says of the run as a whole."""

    when: datetime
    seconds: float | None
    """The run's wall time; jobs run at once, so it is not the sum of theirs."""
    version: str
    command: str | None = None


@dataclass(frozen=True)
class Thumbnail:
    """A small copy of an image as a data URI, and the size of both."""

    uri: str
    width: int
    height: int
    full_width: int
    full_height: int


def make_thumbnail(path: Path, box: int = THUMBNAIL_BOX) -> Thumbnail | None:
    """A thumbnail of the image at ``path`` within ``box`` pixels: JPEG, or PNG when the
    image has transparency; None when the file cannot be read as an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            full = opened.size
            # JPEG decodes straight at a fraction of its size: much faster for a large one.
            opened.draft("RGB", (box, box))
            image = opened.copy()
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
        return None
    image.thumbnail((box, box), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image.convert("RGBA").save(out, format="PNG", optimize=True)
        mime = "image/png"
    else:
        image.convert("RGB").save(out, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
        mime = "image/jpeg"
    uri = f"data:{mime};base64,{base64.b64encode(out.getvalue()).decode('ascii')}"
    return Thumbnail(uri, image.width, image.height, *full)


def drift_text(drift: Drift) -> str:
    """A masked edit's drift in a few words: ``drift 1.25% outside the mask (3.5% of pixels)``,
    with what else the reader must know."""
    text = f"drift {drift.mean:g}% outside the mask ({drift.changed:g}% of pixels)"
    if drift.stretched:
        text += ", answer stretched to fit"
    if drift.over:
        text += f", past --max-drift {drift.limit:g}%"
    return text


def sheet_image(saved: SavedImage) -> SheetImage:
    """A result as the page shows it."""
    drift = None if saved.drift is None else drift_text(saved.drift)
    return SheetImage(str(saved.path), saved.width, saved.height, saved.format, saved.size, drift)


def rows_from_outcomes(outcomes: Sequence[JobOutcome]) -> list[SheetRow]:
    """The page's rows for a run that just ended."""
    rows = []
    for outcome in outcomes:
        job, options = outcome.job, outcome.job.options
        rows.append(
            SheetRow(
                label=job.label,
                inputs=tuple(source.location for source in job.images),
                outputs=tuple(sheet_image(saved) for saved in outcome.outputs),
                prompt=options.prompt,
                model=outcome.model,
                backend=outcome.backend,
                ratio=options.ratio,
                size=options.size,
                seconds=outcome.seconds,
                # A job never sent cost this run nothing, as the run's estimate counts it.
                cost=outcome.cost if outcome.sent else 0.0,
                warnings=tuple(outcome.warnings),
                error=None if outcome.error is None else outcome.error.message,
                skipped=outcome.skipped,
            )
        )
    return rows


def save_run_page(
    path: Path, outcomes: Sequence[JobOutcome], when: datetime, seconds: float
) -> None:
    """Write the page of a run that just ended, beside which its links work."""
    from nanoedit import __version__

    base = path.parent if str(path.parent) else Path(".")
    page = build_page(rows_from_outcomes(outcomes), SheetRun(when, seconds, __version__), base=base)
    write_report(path, page)


def check_report_path(path: Path) -> None:
    """Refuse, before anything is sent, a page that could not be written or would replace a
    file that is not an earlier page."""
    # A missing folder is made when the page is written, as the output folder is.
    probe = path.parent
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(
            f"the report {path} cannot be written: {probe} is not a folder; choose another --report"
        )
    if path.is_dir():
        raise UsageError(f"the report {path} is a folder; give a file name such as run.html")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        # The page goes in by a rename in that folder (and its missing folders are made
        # there): a folder that refuses would fail it once the run had paid for its images.
        raise OutputError(
            f"the report {path} cannot be written: {probe} is not writable; choose another --report"
        )
    if path.exists() and not _is_page(path):
        raise UsageError(
            f"{path} already exists and is not a nanoedit report; choose another --report "
            "(an earlier report is replaced, any other file is kept)"
        )


def _is_page(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(MARK_WITHIN)
    except OSError:
        return False
    return GENERATOR_TAG.encode() in head


def write_report(path: Path, page: str) -> None:
    """Write the page atomically, replacing only an earlier page (see check_report_path)."""
    from nanoedit.output.parts import write_atomic, write_error

    check_report_path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, page.encode("utf-8"), overwrite=True)
    except OSError as exc:
        error: OutputError = write_error(exc, folder, f"the report {path.name}")
        raise error from None


# Rendering ----------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _amount(size: int) -> str:
    from rich.filesize import decimal

    return decimal(size)


def _seconds(value: float | None) -> str:
    if value is None:
        return "not run"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds:02d} s"


def _cost(value: float) -> str:
    # As the run says it on stderr (``estimated $0.10``), so the page and the run agree.
    from nanoedit.catalog.pricing import money

    return money(value)


def _href(location: str, base: Path) -> str:
    """A link to an image: a URL as it is, a file relative to the page's folder."""
    if location.startswith(("http://", "https://")):
        return location
    path = Path(location)
    try:
        relative = os.path.relpath(path.resolve(), base.resolve())
    except ValueError:  # another drive, on Windows
        return path.resolve().as_uri()
    return "/".join(relative.split(os.sep))


def figure(
    location: str,
    caption: str,
    alt: str,
    base: Path,
    thumbnail: Callable[[Path], Thumbnail | None],
    css_class: str,
) -> str:
    """One picture of a page: its thumbnail (a placeholder saying why when there is none)
    linked to the full-size image, with its ``caption`` (HTML) under it."""
    href = _href(location, base)
    is_url = location.startswith(("http://", "https://"))
    thumb = None if is_url else thumbnail(Path(location))
    if thumb is None:
        why = "not downloaded for this page" if is_url else "could not be read"
        picture = f'<span class="placeholder">{_e(Path(location).name or location)}<br>{why}</span>'
    else:
        picture = (
            f'<img src="{thumb.uri}" width="{thumb.width}" height="{thumb.height}" alt="{_e(alt)}">'
        )
    return (
        f'<figure class="{css_class}"><a href="{_e(href)}">{picture}</a>'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _facts(row: SheetRow) -> list[tuple[str, str]]:
    asked = f"ratio {row.ratio}" + (f", size {row.size}" if row.size else "")
    got = ", ".join(f"{image.width}x{image.height}" for image in row.outputs) or "nothing"
    facts = [
        ("Prompt", _e(row.prompt)),
        ("Model", _e(row.model or "unknown")),
        ("Backend", _e(row.backend or "none")),
        ("Asked", _e(asked)),
        ("Got", _e(got)),
        ("Time", _e(_seconds(row.seconds))),
    ]
    if row.cost is not None:
        facts.append(("Estimated cost", _e(_cost(row.cost))))
    return facts


def _job(
    number: int, row: SheetRow, base: Path, thumbnail: Callable[[Path], Thumbnail | None]
) -> str:
    anchor = f"job-{number}"
    figures = []
    for place, location in enumerate(row.inputs):
        role = "Input" if place == 0 else f"Reference {place}"
        name = Path(location).name if not location.startswith("http") else location
        figures.append(
            figure(
                location,
                f"{role}<br>{_e(name)}",
                f"{role}: {name}",
                base,
                thumbnail,
                "input",
            )
        )
    if not row.inputs:
        figures.append('<div class="input placeholder">Made from the prompt alone</div>')
    results = []
    for place, image in enumerate(row.outputs, start=1):
        name = Path(image.path).name
        which = f"Result {place} of {len(row.outputs)}" if len(row.outputs) > 1 else "Result"
        detail = f"{image.width}x{image.height} {image.format.upper()} · {_amount(image.bytes)}"
        if image.drift is not None:
            detail += f" · {image.drift}"
        results.append(
            figure(
                image.path,
                f"{which}<br>{_e(name)}<br>{_e(detail)}",
                f"{which} of {row.label}: {name}, {image.width}x{image.height}",
                base,
                thumbnail,
                "output",
            )
        )
    if not results:
        say = "Skipped: already saved" if row.skipped else "No image"
        results.append(f'<div class="output placeholder">{say}</div>')
    parts = [
        f'<article class="job {row.status}" id="{anchor}" data-status="{row.status}" '
        f'aria-labelledby="{anchor}-title">',
        f'<h3 id="{anchor}-title"><span class="badge">{row.status}</span> '
        f"<span>{number}. {_e(row.label)}</span></h3>",
    ]
    if row.error is not None:
        parts.append(f'<p class="error"><strong>Error:</strong> {_e(row.error)}</p>')
    parts.append(
        '<div class="body"><div class="images">'
        + "".join(figures)
        + '<span class="arrow" aria-hidden="true">→</span>'
        + "".join(results)
        + '</div><div class="about"><dl class="facts">'
        + "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in _facts(row))
        + "</dl>"
    )
    if row.warnings:
        items = "".join(f"<li>{_e(text)}</li>" for text in row.warnings)
        parts.append(f'<div class="warnings"><h4>Warnings</h4><ul>{items}</ul></div>')
    parts.append("</div></div></article>")
    return "\n".join(parts)


def _summary(rows: Sequence[SheetRow], run: SheetRun) -> str:
    failed = [(n, row) for n, row in enumerate(rows, start=1) if row.status == "failed"]
    skipped = sum(1 for row in rows if row.status == "skipped")
    images = sum(len(row.outputs) for row in rows)
    costs = [row.cost for row in rows if row.cost is not None]
    if not costs:
        cost = "unknown"
    elif len(costs) == len(rows):
        cost = _cost(sum(costs))
    else:
        cost = f"at least {_cost(sum(costs))} ({len(costs)} of {len(rows)} jobs priced)"
    facts = [
        ("Jobs", str(len(rows))),
        ("Saved", str(len(rows) - len(failed) - skipped)),
        ("Failed", str(len(failed))),
        ("Skipped", str(skipped)),
        ("Images", str(images)),
        ("Time", _seconds(run.seconds)),
        ("Estimated cost", cost),
    ]
    parts = [
        '<section class="summary" aria-labelledby="summary-title">',
        '<h2 id="summary-title">Summary</h2>',
        '<dl class="totals">'
        + "".join(
            f'<div class="total-{name.split()[-1].lower()}"><dt>{_e(name)}</dt>'
            f"<dd>{_e(value)}</dd></div>"
            for name, value in facts
        )
        + "</dl>",
    ]
    if failed:
        items = "".join(
            f'<li><a href="#job-{n}">{_e(row.label)}</a>: {_e(row.error)}</li>' for n, row in failed
        )
        parts.append(f'<h3>Failures</h3><ul class="failures">{items}</ul>')
    parts.append("</section>")
    return "\n".join(parts)


def build_page(
    rows: Sequence[SheetRow],
    run: SheetRun,
    *,
    base: Path,
    thumbnail: Callable[[Path], Thumbnail | None] = make_thumbnail,
) -> str:
    """The whole page, as text. ``base`` is the folder it will be written to (links to the
    full-size images are relative to it); ``thumbnail`` makes each picture."""
    failed = sum(1 for row in rows if row.status == "failed")
    jobs = "1 job" if len(rows) == 1 else f"{len(rows)} jobs"
    title = f"nanoedit: {jobs}" + (f", {failed} failed" if failed else "")
    body = "\n".join(_job(n, row, base, thumbnail) for n, row in enumerate(rows, start=1))
    main = f"""{_summary(rows, run)}
<section id="jobs" class="jobs" aria-labelledby="jobs-title" tabindex="-1">
<h2 id="jobs-title">Jobs</h2>
{body}
</section>"""
    return html_page(
        title,
        run,
        skip=("jobs", "the jobs"),
        made="Run of",
        main=main,
        # The line breaks are the page's own, as it was first written.
        footer="This page needs no network and no\nJavaScript; select an image to open it at "
        "full size.",
    )


def html_page(
    title: str,
    run: SheetRun,
    *,
    skip: tuple[str, str],
    made: str,
    main: str,
    footer: str,
    extra_style: str = "",
) -> str:
    """A whole page of nanoedit's (a run's, a thread's), as text: the head, with the mark a
    later page replaces it by (``GENERATOR``) and the style (``STYLE``, then ``extra_style``);
    a link past the header to the element ``skip`` names (its id, and what it is); the header,
    saying when it was ``made`` and by what command; ``main``; the footer, ``footer`` after
    the version. Nothing in it reaches the network or runs a script."""
    when = run.when.isoformat(sep=" ", timespec="seconds")
    command = f'<p class="command"><code>{_e(run.command)}</code></p>' if run.command else ""
    target, words = skip
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{GENERATOR} {_e(run.version)}">
<title>{_e(title)}</title>
<style>{STYLE}{extra_style}</style>
</head>
<body>
<a class="skip" href="#{target}">Skip to {words}</a>
<header>
<h1>{_e(title)}</h1>
<p class="when">{made} {_e(when)}, nanoedit {_e(run.version)}</p>
{command}
</header>
<main>
{main}
</main>
<footer><p>Made by nanoedit {_e(run.version)}. {footer}</p></footer>
</body>
</html>
"""


STYLE = """
:root{color-scheme:light dark;--bg:#f6f7f9;--card:#fff;--text:#1b1f24;--muted:#57606a;
--line:#d0d7de;--ok:#1a7f37;--bad:#c2182b;--bad-bg:#fff0f1;--skip:#6e7781;--warn:#7d4e00;
--warn-bg:#fff8e5;--focus:#0b5fff}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#161b22;--text:#e6edf3;
--muted:#9198a1;--line:#30363d;--ok:#3fb950;--bad:#ff7b72;--bad-bg:#2d1417;--skip:#9198a1;
--warn:#e3b341;--warn-bg:#2b2111;--focus:#79c0ff}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);line-height:1.45;
font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}
header{padding-top:1.25rem}
h1{font-size:1.6rem;margin:.2rem 0}
h2{font-size:1.25rem;margin:1.5rem 0 .75rem}
h3{font-size:1.05rem;margin:0 0 .75rem;display:flex;gap:.6rem;align-items:center;
overflow-wrap:anywhere}
h4{font-size:.95rem;margin:.75rem 0 .25rem}
.when,.command,footer{color:var(--muted);font-size:.9rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
a{color:inherit}
a:focus-visible,.jobs:focus-visible{outline:3px solid var(--focus);outline-offset:3px;
border-radius:4px}
.skip{position:absolute;left:-999rem;top:.5rem;background:var(--card);padding:.5rem 1rem;
border:2px solid var(--focus);border-radius:6px;z-index:1}
.skip:focus{left:1rem}
.totals{display:grid;grid-template-columns:repeat(auto-fit,minmax(8rem,1fr));gap:.5rem;
margin:0}
.totals div{background:var(--card);border:1px solid var(--line);border-radius:8px;
padding:.5rem .75rem}
.totals dt{color:var(--muted);font-size:.85rem}
.totals dd{margin:0;font-size:1.3rem;font-weight:600;overflow-wrap:anywhere}
.totals .total-failed dd{color:var(--bad)}
.totals .total-saved dd{color:var(--ok)}
.summary h3{margin:1rem 0 .25rem}
.failures{padding-left:1.25rem;margin:0}
.failures li{margin:.25rem 0;overflow-wrap:anywhere}
.job{background:var(--card);border:1px solid var(--line);border-left:6px solid var(--ok);
border-radius:8px;padding:1rem;margin:0 0 1rem}
.job.failed{border-left-color:var(--bad)}
.job.skipped{border-left-color:var(--skip)}
.badge{font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;padding:.15rem .5rem;
border-radius:999px;color:#fff;background:var(--ok);flex:none}
@media (prefers-color-scheme:dark){.badge{color:#0d1117}}
.failed .badge{background:var(--bad)}
.skipped .badge{background:var(--skip)}
.error{background:var(--bad-bg);border:1px solid var(--bad);border-radius:6px;
padding:.5rem .75rem;overflow-wrap:anywhere}
.body{display:grid;grid-template-columns:minmax(0,40rem) minmax(14rem,1fr);gap:1rem 1.5rem;
align-items:start}
.images{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center}
figure{margin:0;max-width:100%}
figure a{display:block;line-height:0}
figure img{display:block;max-width:100%;height:auto;max-height:12rem;width:auto;
border-radius:6px;border:1px solid var(--line);background:repeating-conic-gradient(
#8882 0 25%,#0000 0 50%) 0 0/16px 16px}
figcaption{font-size:.85rem;color:var(--muted);margin-top:.35rem;line-height:1.35;
overflow-wrap:anywhere;max-width:22rem}
.placeholder{display:flex;align-items:center;justify-content:center;text-align:center;
min-width:10rem;min-height:7rem;padding:.75rem;border:2px dashed var(--line);
border-radius:6px;color:var(--muted);line-height:1.4;overflow-wrap:anywhere}
.arrow{font-size:1.5rem;color:var(--muted)}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
.facts div{display:contents}
.facts dt{color:var(--muted)}
.facts dd{margin:0;overflow-wrap:anywhere}
.warnings{background:var(--warn-bg);color:var(--text);border-radius:6px;
padding:.25rem .75rem;margin-top:.75rem}
.warnings h4{color:var(--warn)}
.warnings ul{margin:.25rem 0 .5rem;padding-left:1.25rem}
@media (max-width:56rem){.body{grid-template-columns:1fr}}
@media (max-width:40rem){.arrow{display:none}.images{flex-direction:column;
align-items:stretch}figure img{max-height:none;width:100%}}
"""
