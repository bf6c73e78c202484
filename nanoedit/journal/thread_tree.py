"""A thread as a tree: every job of the conversation a job belongs to, read from the journal,
from the turn that started afresh through every branch (``nanoedit history thread``).

A ``--continue`` job journals the turn it goes on from (``continues`` in its spec); a turn is
always journaled after the one it continues, so the thread's root is found by following those
links down to smaller ids, and its branches among the later jobs that name a turn. The tree is
shown as text (a rich Tree on a terminal, an indented form elsewhere), as one JSON document
(no image bytes, no signatures, no keys), or as a page of strips
(:mod:`nanoedit.output.thread_page`). Nothing here writes the journal.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanoedit.errors import InputError, UsageError
from nanoedit.jobs import HISTORY_REFERENCE
from nanoedit.journal.history import absolute_path, clipped, cost_text, sheet_image
from nanoedit.journal.records import Continues, JobRecord
from nanoedit.journal.store import Journal
from nanoedit.journal.threads import MAX_TURNS, continues_of

if TYPE_CHECKING:
    from rich.text import Text
    from rich.tree import Tree

    from nanoedit.output.contact_sheet import SheetImage
    from nanoedit.output.thread_page import Strip, StripStep

# What marks the job asked for, on every form of the tree.
ASKED = "← asked"
# How far each turn is set in under the one it continues, in the indented form.
INDENT = "   "
# An exchange's fields that say how a turn was asked; the rest (the model's parts, their
# signatures) is the provider's to read, and never shown.
EXCHANGE_FIELDS = ("api", "images", "interaction_id", "stored")
STATE_STYLES = {"saved": "green", "failed": "red", "refused": "red"}


@dataclass(frozen=True)
class ThreadNode:
    """One job of a thread: its journal record, its turn (1: the job that started afresh),
    the turn it goes on from, its saved images (each as the journal names it, and as read
    from its file now) and the turns that go on from it, oldest first."""

    record: JobRecord
    turn: int
    continues: Continues | None
    saved: tuple[tuple[str, SheetImage], ...]
    children: tuple[ThreadNode, ...]

    def walk(self) -> Iterator[tuple[int, ThreadNode]]:
        """This node and every one under it, depth first, each with its depth (0: this)."""
        stack: list[tuple[int, ThreadNode]] = [(0, self)]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack += [(depth + 1, child) for child in reversed(node.children)]


@dataclass(frozen=True)
class ThreadTree:
    """The whole thread of job ``asked``: its root (the turn that started afresh) and every
    branch. ``lost`` is the job the root says it continues when that job is no longer in the
    history (None when the root started afresh)."""

    root: ThreadNode
    asked: int
    lost: int | None = None

    def nodes(self) -> list[ThreadNode]:
        """Every job of the thread, depth first."""
        return [node for _, node in self.root.walk()]

    @property
    def ends(self) -> int:
        """How many branches the thread has: the turns nothing goes on from."""
        return sum(1 for node in self.nodes() if not node.children)

    @property
    def cost(self) -> float:
        """What the jobs whose cost is known cost, in US dollars."""
        return round(sum(node.record.cost or 0.0 for node in self.nodes()), 6)

    @property
    def unpriced(self) -> int:
        """How many jobs made images at a price nobody knows."""
        return sum(1 for node in self.nodes() if _unpriced(node.record))

    def cost_text(self) -> str:
        """The thread's cost as shown: dollars, with the jobs of unknown price counted."""
        from nanoedit.catalog.pricing import money

        known = money(self.cost)
        if not self.unpriced:
            return known
        jobs = f"{self.unpriced} job{'' if self.unpriced == 1 else 's'}"
        return f"{known} + unknown ({jobs})"

    def heading(self) -> str:
        """One line on the thread as a whole: which job, from where, its size and cost."""
        jobs = len(self.nodes())
        images = sum(len(node.saved) for node in self.nodes())
        lost = (
            f" (which continues job {self.lost}, no longer in the history)"
            if self.lost is not None
            else ""
        )
        return (
            f"thread of job {self.asked}, from job {self.root.record.id}{lost}: "
            f"{_count(jobs, 'job')} in {_count(self.ends, 'branch', 'branches')}, "
            f"{_count(images, 'image')}, estimated cost {self.cost_text()}"
        )


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"


def _unpriced(record: JobRecord) -> bool:
    return record.cost is None and record.images > 0


# Reading the tree -----------------------------------------------------------------------------


def asked_job(journal: Journal, text: str) -> JobRecord:
    """The job ``text`` names: ``12``, ``@12``, ``@12.2`` (the job that saved that result) or
    ``@last`` (the job of the last image saved). A usage error for anything else, or a job the
    history does not hold."""
    cleaned = text.strip()
    match = HISTORY_REFERENCE.fullmatch(cleaned)
    if match is None and not cleaned.isdigit():
        raise UsageError(
            f"{text!r} names no job; give its id (12), @12, @12.2 or @last (ids: nanoedit history)"
        )
    if match is not None and match.group(1) == "last":
        record = journal.last_saved()
        if record is None:
            raise InputError(
                f"{text} names the job of the last image saved, and no job in the history saved "
                "one yet; give a job's id (ids: nanoedit history)"
            )
        return record
    ident = int(match.group(1)) if match is not None else int(cleaned)
    found = journal.get(ident)
    if found is None:
        raise UsageError(f"there is no job {ident} in the history; see: nanoedit history")
    return found


def read_tree(journal: Journal, text: str) -> ThreadTree:
    """The thread of the job ``text`` names (see :func:`asked_job`): from its root, every
    branch. A job that continues no turn, and that no turn continues, is a thread of one."""
    asked = asked_job(journal, text)
    root, lost = _root(journal, asked)
    below: dict[int, list[JobRecord]] = {}
    for record in journal.continuations(root.id):
        link = continues_of(record)
        if link is not None:
            below.setdefault(link["job"], []).append(record)
    # The thread's jobs, parents first; nodes are then made children first (a child's id is
    # always larger), without recursion however long the thread is.
    order, turns = [root], {root.id: 1}
    for record in order:
        for child in below.get(record.id, []):
            turns[child.id] = turns[record.id] + 1
            order.append(child)
    made: dict[int, ThreadNode] = {}
    for record in sorted(order, key=lambda r: r.id, reverse=True):
        made[record.id] = ThreadNode(
            record=record,
            turn=turns[record.id],
            continues=continues_of(record),
            saved=_saved(journal, record),
            children=tuple(made[child.id] for child in below.get(record.id, [])),
        )
    return ThreadTree(made[root.id], asked.id, lost)


def _root(journal: Journal, record: JobRecord) -> tuple[JobRecord, int | None]:
    """The turn ``record``'s thread started with, and the job that turn says it continues when
    the history no longer holds it (None when it started afresh)."""
    for _ in range(MAX_TURNS):
        link = continues_of(record)
        if link is None:
            return record, None
        parent = journal.get(link["job"]) if link["job"] < record.id else None
        if parent is None:
            # Gone from the history (or a link no run writes): the thread is shown from here.
            return record, link["job"]
        record = parent
    raise InputError(
        f"the thread of job {record.id} goes back more than {MAX_TURNS} turns, which no "
        "conversation does: the history was changed by hand"
    )


def _saved(journal: Journal, record: JobRecord) -> tuple[tuple[str, SheetImage], ...]:
    """Each saved image of the job: its path as the journal holds it, and the file as read
    now (its size; ``missing`` when it was moved or deleted)."""
    return tuple(
        (str(path), sheet_image(absolute_path(journal, record, path)))
        for path in record.saved_paths
    )


# Text -----------------------------------------------------------------------------------------


def node_lines(node: ThreadNode, asked: int) -> list[str]:
    """A job of the tree as the text forms show it: ``#ID prompt`` (marked when it is the job
    asked for), its state, backend, model and cost, its error, then each saved image."""
    record = node.record
    head = f"#{record.id} {clipped(record.prompt)}"
    if record.id == asked:
        head += f"  {ASKED}"
    cost = cost_text(record.cost, record.images) + (" (sandbox)" if record.sandbox else "")
    facts = f"{record.state} · {record.backend} {record.model} · {cost}"
    link = node.continues
    if link is not None and link["result"] != 1:
        facts += f" · from @{link['job']}.{link['result']}"
    lines = [head, facts]
    if record.error is not None:
        lines.append(f"error: {clipped(record.error, 200)}")
    for shown, image in node.saved:
        lines.append(f"{shown} {_dimensions(image)}")
    return lines


def _dimensions(image: SheetImage) -> str:
    if image.format == "missing":
        return "(missing: moved or deleted)"
    return f"{image.width}x{image.height}"


def plain_lines(tree: ThreadTree) -> list[str]:
    """The tree off a terminal: the heading, then each job set in under the one it
    continues, depth first (a job's own lines set in once more than its head)."""
    lines = [tree.heading()]
    for depth, node in tree.root.walk():
        head, *rest = node_lines(node, tree.asked)
        lines.append(INDENT * depth + head)
        lines += [INDENT * (depth + 1) + line for line in rest]
    return lines


def styled(node: ThreadNode, asked: int) -> Text:
    """A job's lines for a terminal: its head bold (the job asked for marked), its state in
    its colour."""
    from rich.text import Text

    head, facts, *rest = node_lines(node, asked)
    text = Text()
    if head.endswith(ASKED):
        text.append(head.removesuffix(ASKED), style="bold")
        text.append(ASKED, style="bold cyan")
    else:
        text.append(head, style="bold")
    state, _, others = facts.partition(" · ")
    text.append("\n")
    text.append(state, style=STATE_STYLES.get(state, "yellow"))
    text.append(f" · {others}")
    for line in rest:
        text.append("\n")
        text.append(line, style="red" if line.startswith("error: ") else "")
    return text


def rich_tree(tree: ThreadTree) -> Tree:
    """The tree for a terminal: rich's Tree, its guides showing where the thread branches."""
    from rich.tree import Tree

    top = Tree(tree.heading(), guide_style="dim")
    places: dict[int, Tree] = {}
    for _, node in tree.root.walk():
        parent = node.continues["job"] if node.continues is not None else None
        under = places.get(parent, top) if parent is not None else top
        places[node.record.id] = under.add(styled(node, tree.asked))
    return top


# JSON -----------------------------------------------------------------------------------------


def tree_json(tree: ThreadTree) -> dict[str, Any]:
    """The tree as ``--json`` prints it: the thread's totals, then its root with every job's
    children inside it. Each exchange says only how the turn was asked (its API, the results
    it made, an Interactions id and whether it was stored): never the model's parts, their
    signatures or an image's bytes."""
    nodes: dict[int, dict[str, Any]] = {}
    for _, node in tree.root.walk():
        record = node.record
        nodes[record.id] = {
            "id": record.id,
            "turn": node.turn,
            "continues": node.continues,
            "asked": record.id == tree.asked,
            "state": record.state,
            "kind": record.kind,
            "backend": record.backend,
            "model": record.model,
            "prompt": record.prompt,
            "outputs": [_image_json(image) for _, image in node.saved],
            "cost": record.cost,
            "sandbox": record.sandbox,
            "error": None
            if record.error is None
            else {"kind": record.error_kind, "message": record.error},
            "exchanges": [
                {key: exchange[key] for key in EXCHANGE_FIELDS if key in exchange}
                for exchange in record.exchanges
            ],
            "children": [],
        }
        if node.continues is not None and node.continues["job"] in nodes:
            nodes[node.continues["job"]]["children"].append(nodes[record.id])
    every = tree.nodes()
    return {
        "asked": tree.asked,
        "root": tree.root.record.id,
        "continues_lost": tree.lost,
        "jobs": len(every),
        "branches": tree.ends,
        "images": sum(len(node.saved) for node in every),
        "cost": tree.cost,
        "unpriced": tree.unpriced,
        "tree": nodes[tree.root.record.id],
    }


def _image_json(image: SheetImage) -> dict[str, Any]:
    missing = image.format == "missing"
    return {
        "path": image.path,
        "width": None if missing else image.width,
        "height": None if missing else image.height,
        "format": None if missing else image.format.lower(),
        "bytes": None if missing else image.bytes,
        "missing": missing,
    }


# The page -------------------------------------------------------------------------------------


def strips(tree: ThreadTree) -> list[Strip]:
    """The tree as strips of steps for the page: the thread from its root, each turn followed
    by the first turn that goes on from it; every other turn starts a branch of its own, set
    in under the strip it leaves, listed after it (the earliest fork first)."""
    from nanoedit.output.thread_page import Strip

    made: list[Strip] = []
    pending: list[tuple[int, ThreadNode | None, ThreadNode]] = [(0, None, tree.root)]
    while pending:
        depth, fork, node = pending.pop()
        steps = [node]
        while steps[-1].children:
            steps.append(steps[-1].children[0])
        made.append(
            Strip(
                heading=_strip_heading(fork, node),
                depth=depth,
                steps=tuple(_step(step, tree.asked) for step in steps),
            )
        )
        forks = [(depth + 1, step, child) for step in steps for child in step.children[1:]]
        pending += reversed(forks)
    return made


def _strip_heading(fork: ThreadNode | None, start: ThreadNode) -> str:
    if fork is None:
        return f"Thread from #{start.record.id}"
    return f"Branch from #{fork.record.id} (turn {fork.turn}), at turn {start.turn}"


def _step(node: ThreadNode, asked: int) -> StripStep:
    from nanoedit.output.thread_page import StripStep

    record = node.record
    cost = cost_text(record.cost, record.images) + (" (sandbox)" if record.sandbox else "")
    facts = [
        ("Turn", str(node.turn)),
        ("State", record.state),
        ("Backend", record.backend),
        ("Model", record.model),
        ("Estimated cost", cost),
    ]
    link = node.continues
    if link is not None:
        facts.insert(1, ("Goes on from", f"#{link['job']}, image {link['result']}"))
    return StripStep(
        job=record.id,
        prompt=record.prompt,
        images=tuple(image for _, image in node.saved),
        facts=tuple(facts),
        state=record.state,
        error=record.error,
        asked=record.id == asked,
    )


def save_thread_page(path: Path, tree: ThreadTree, command: str) -> None:
    """Write the page of the thread: its strips of steps, thumbnails and prompts, its cost."""
    from datetime import datetime

    from nanoedit import __version__
    from nanoedit.output.contact_sheet import SheetRun, write_report
    from nanoedit.output.thread_page import build_thread_page

    base = path.parent if str(path.parent) else Path(".")
    run = SheetRun(datetime.now().astimezone(), None, __version__, command=command)
    every = tree.nodes()
    totals: Sequence[tuple[str, str]] = (
        ("Jobs", str(len(every))),
        ("Branches", str(tree.ends)),
        ("Images", str(sum(len(node.saved) for node in every))),
        ("Estimated cost", tree.cost_text()),
    )
    title = f"nanoedit: the thread of job {tree.asked}"
    write_report(path, build_thread_page(title, strips(tree), totals, run, base=base))
