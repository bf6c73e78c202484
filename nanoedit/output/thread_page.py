"""A thread as one HTML page: each branch a strip of steps (a thumbnail of each turn's image,
its prompt, model, state and cost), a branch set in under the strip it leaves; the thread's
totals on top.

It is the run page's kind of page (:mod:`nanoedit.output.contact_sheet`): the same look,
thumbnails as data URIs, no script, nothing fetched, full-size images linked relative to the
page's folder, and the same mark, so that a later page may replace it and no other file. The
builder takes plain records (:class:`Strip`, :class:`StripStep`), not the journal's.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nanoedit.output.contact_sheet import (
    SheetImage,
    SheetRun,
    Thumbnail,
    figure,
    html_page,
    make_thumbnail,
)

# How far a branch's strip is set in under the strip it leaves, per level.
BRANCH_INDENT_REM = 2


@dataclass(frozen=True)
class StripStep:
    """One turn of the thread, as the page shows it: its job, prompt and saved images, its
    facts (name, value: the turn, the state, the model, the cost…), its error, and whether it
    is the job the page was asked for."""

    job: int
    prompt: str
    images: tuple[SheetImage, ...]
    facts: tuple[tuple[str, str], ...]
    state: str
    error: str | None = None
    asked: bool = False


@dataclass(frozen=True)
class Strip:
    """A run of turns each going on from the one before: the thread from its first turn, or
    a branch; ``depth`` is how many branches deep it is (0: the thread itself)."""

    heading: str
    depth: int
    steps: tuple[StripStep, ...]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _status(state: str) -> str:
    """The run page's class for a state: its colours (saved, failed, or skipped's grey for a
    job that has not ended)."""
    if state == "saved":
        return "saved"
    return "failed" if state in ("failed", "refused", "held") else "skipped"


def _step(step: StripStep, base: Path, thumbnail: Callable[[Path], Thumbnail | None]) -> str:
    from rich.filesize import decimal

    anchor = f"job-{step.job}"
    pictures = []
    for place, image in enumerate(step.images, start=1):
        name = Path(image.path).name
        if image.format == "missing":
            detail = "moved or deleted since"
        else:
            detail = f"{image.width}x{image.height} {image.format.upper()} · {decimal(image.bytes)}"
        which = f"image {place} of #{step.job}" if len(step.images) > 1 else f"image of #{step.job}"
        pictures.append(
            figure(
                image.path,
                f"{_e(name)}<br>{_e(detail)}",
                f"The {which}: {step.prompt}",
                base,
                thumbnail,
                "output",
            )
        )
    if not pictures:
        pictures.append('<div class="output placeholder">No image</div>')
    status = _status(step.state)
    classes = f"step {status}" + (" asked" if step.asked else "")
    current = ' aria-current="true"' if step.asked else ""
    mark = ' <span class="mark">asked</span>' if step.asked else ""
    parts = [
        f'<li class="{classes}" id="{anchor}" data-job="{step.job}" data-state="{_e(step.state)}"'
        f'{current} aria-labelledby="{anchor}-title">',
        f'<h4 id="{anchor}-title"><span class="badge">{_e(step.state)}</span> '
        f"<span>#{step.job}</span>{mark}</h4>",
        "".join(pictures),
        f'<p class="prompt">{_e(step.prompt)}</p>',
    ]
    if step.error is not None:
        parts.append(f'<p class="error"><strong>Error:</strong> {_e(step.error)}</p>')
    parts.append(
        '<dl class="facts">'
        + "".join(
            f"<div><dt>{_e(name)}</dt><dd>{_e(value)}</dd></div>" for name, value in step.facts
        )
        + "</dl></li>"
    )
    return "\n".join(parts)


def _strip(
    number: int, strip: Strip, base: Path, thumbnail: Callable[[Path], Thumbnail | None]
) -> str:
    anchor = f"strip-{number}"
    indent = strip.depth * BRANCH_INDENT_REM
    kind = "thread" if strip.depth == 0 else "branch"
    steps = "\n".join(_step(step, base, thumbnail) for step in strip.steps)
    return (
        f'<section class="strip {kind}" id="{anchor}" data-depth="{strip.depth}" '
        f'style="margin-left:{indent}rem" aria-labelledby="{anchor}-title">\n'
        f'<h3 id="{anchor}-title">{_e(strip.heading)}</h3>\n'
        f'<ol class="steps">\n{steps}\n</ol>\n</section>'
    )


def build_thread_page(
    title: str,
    strips: Sequence[Strip],
    totals: Sequence[tuple[str, str]],
    run: SheetRun,
    *,
    base: Path,
    thumbnail: Callable[[Path], Thumbnail | None] = make_thumbnail,
) -> str:
    """The whole page, as text: ``totals`` (name, value) on top, then each strip. ``base``
    is the folder it will be written to (links to the full-size images are relative to it);
    ``thumbnail`` makes each picture."""
    body = "\n".join(
        _strip(number, strip, base, thumbnail) for number, strip in enumerate(strips, start=1)
    )
    facts = "".join(
        f'<div class="total-{name.split()[-1].lower()}"><dt>{_e(name)}</dt>'
        f"<dd>{_e(value)}</dd></div>"
        for name, value in totals
    )
    main = f"""<section class="summary" aria-labelledby="summary-title">
<h2 id="summary-title">Summary</h2>
<dl class="totals">{facts}</dl>
</section>
<section id="strips" class="strips" aria-labelledby="strips-title" tabindex="-1">
<h2 id="strips-title">Turns</h2>
{body}
</section>"""
    return html_page(
        title,
        run,
        skip=("strips", "the thread"),
        made="Made",
        main=main,
        footer="Each strip is a run of turns, each going on\nfrom the one before it; a branch is "
        "set in under the strip it leaves. This page needs no\nnetwork and no JavaScript; select "
        "an image to open it at full size.",
        extra_style=STRIP_STYLE,
    )


STRIP_STYLE = """
.strip{border-left:3px solid var(--line);padding:.25rem 0 .25rem 1rem;margin-bottom:1.25rem}
.strip.thread{border-left-color:var(--ok)}
.strip h3{margin:.25rem 0 .75rem}
.steps{display:flex;gap:1.75rem;list-style:none;margin:0;padding:0 0 .5rem;overflow-x:auto;
align-items:flex-start}
.step{position:relative;flex:0 0 15rem;background:var(--card);border:1px solid var(--line);
border-top:6px solid var(--ok);border-radius:8px;padding:.75rem}
.step.failed{border-top-color:var(--bad)}
.step.skipped{border-top-color:var(--skip)}
.step+.step::before{content:"→";position:absolute;left:-1.45rem;top:40%;color:var(--muted);
font-size:1.3rem}
.step.asked{outline:3px solid var(--focus);outline-offset:2px}
.step h4{display:flex;gap:.5rem;align-items:center;margin:0 0 .5rem}
.step .mark{font-size:.8rem;color:var(--focus);font-weight:600}
.step figure img{max-height:10rem}
.step .prompt{margin:.5rem 0;overflow-wrap:anywhere}
.step .facts{font-size:.85rem}
"""
