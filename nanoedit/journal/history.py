"""The history of jobs, read from the journal: lists, one job whole, full-text search, the
cost ledger and a page of it all; and ``@last`` / ``@ID``, inputs that name an earlier result.

Nothing here writes the journal; the runner does. Reading never creates the database: with
no journal yet, there is no history to show.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanoedit.errors import InputError, UsageError
from nanoedit.jobs import HISTORY_REFERENCE
from nanoedit.journal.damage import is_damaged, set_aside
from nanoedit.journal.records import CostRow, JobRecord
from nanoedit.journal.store import DATABASE_NAME, Journal, data_dir
from nanoedit.output.names import stream_name

if TYPE_CHECKING:
    from rich.table import Table

    from nanoedit.output.contact_sheet import SheetImage, SheetRow

# How much of a prompt a list line shows.
PROMPT_WIDTH = 60
ENABLED_KEY = "history.enabled"


def database_path(env: Mapping[str, str]) -> Path:
    """Where the journal database is (it need not exist)."""
    return data_dir(env) / DATABASE_NAME


def history_enabled(env: Mapping[str, str]) -> bool:
    """Whether the history is kept: ``history.enabled`` (true unless set false)."""
    from nanoedit.settings.keys import all_keys
    from nanoedit.settings.load import resolve_key
    from nanoedit.settings.store import config_path, flat_values, read_document

    # The key comes with the runner's journal; before it is registered, history is on.
    if ENABLED_KEY not in all_keys():
        return True
    values = flat_values(read_document(config_path(env)))
    # Read by the setting's own rule: a value that is not a boolean is a ConfigError.
    return resolve_key(ENABLED_KEY, values, env).value != "false"


def open_history(env: Mapping[str, str]) -> Journal | None:
    """The journal, to read; None when no run has written one yet."""
    folder = data_dir(env)
    if not (folder / DATABASE_NAME).is_file():
        return None
    return Journal(folder)


@contextmanager
def read_history(env: Mapping[str, str]) -> Iterator[Journal | None]:
    """The journal to read while the block runs (None: no run has written one yet), closed
    after it. A journal found damaged, on opening or by any read of the block, is moved aside
    (see :func:`set_aside`) and the block fails with :class:`InputError` saying where it went:
    what it held cannot be read, and the next run starts a new one."""
    journal: Journal | None = None
    try:
        journal = open_history(env)
        yield journal
    except sqlite3.DatabaseError as exc:
        if not is_damaged(exc):
            raise
        if journal is not None:
            journal.close()
            journal = None
        raise damaged_journal(data_dir(env) / DATABASE_NAME, exc) from None
    finally:
        if journal is not None:
            journal.close()


def damaged_journal(database: Path, exc: sqlite3.DatabaseError) -> InputError:
    """The error of a damaged journal that was to be read, once it is moved aside."""
    try:
        aside = set_aside(database)
    except OSError as moving:
        return InputError(
            f"the job journal {database} is damaged ({exc}), so it cannot be read, and it "
            f"could not be moved aside ({moving.strerror}); move it away, and the next run "
            "starts a new one"
        )
    return InputError(
        f"the job journal {database} is damaged ({exc}), so it cannot be read; it was moved "
        f"aside to {aside} (kept, not deleted) and the next run starts a new one; sqlite3's "
        ".recover may get its jobs back from there"
    )


# @last and @ID ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedResult:
    """The result an input such as ``@last`` or ``@12.2`` names: the job that saved it, its
    number among the job's results (1-based, as the journal orders them) and its file."""

    job: int
    result: int
    path: Path


def resolve_reference(text: str, env: Mapping[str, str]) -> Path:
    """The saved image an input such as ``@last`` or ``@12.2`` names, checked to be there.

    Raises :class:`InputError` saying why it cannot be used: the history is off or empty, no
    such job, the job saved no image, or the file was moved or deleted since.
    """
    return resolve_result(text, env).path


def resolve_result(text: str, env: Mapping[str, str]) -> SavedResult:
    """What :func:`resolve_reference` finds, with the job and the result number it names (a
    ``--continue`` turn journals them, to find its thread again)."""
    match = HISTORY_REFERENCE.fullmatch(text.strip())
    if match is None:
        raise InputError(f"{text} names no earlier result; write @last, @ID or @ID.N")
    which, number = match.group(1), match.group(2)
    if not history_enabled(env):
        raise InputError(
            f"{text} names an image from the history, which is off ({ENABLED_KEY} is false); "
            "pass the image's path instead"
        )
    with read_history(env) as journal:
        if journal is None:
            raise InputError(
                f"{text} names an earlier result, but there is no history yet "
                f"({database_path(env)}); run an edit or generate first, or pass an image's path"
            )
        if which == "last":
            record = journal.last_saved()
            if record is None:
                raise InputError(
                    f"{text} names the last image saved, but no job in the history saved one "
                    "yet; pass an image's path"
                )
        else:
            found = journal.get(int(which))
            if found is None:
                raise InputError(
                    f"{text}: there is no job {which} in the history; see the ids with: "
                    "nanoedit history"
                )
            record = found
        # Each saved result with its number among all the job's results (one that could not
        # be saved keeps its number: an exchange names results by it).
        saved = [
            (place, absolute_path(journal, record, Path(entry["path"])))
            for place, entry in enumerate(record.results, start=1)
            if entry.get("path")
        ]
    if not saved:
        why = f" ({record.state}: {record.error})" if record.error else f" (it is {record.state})"
        raise InputError(
            f"{text}: job {record.id} saved no image{why}; choose another job with: "
            "nanoedit history"
        )
    if number is not None:
        index = int(number)
        if not 1 <= index <= len(saved):
            if len(saved) == 1:
                choice, count = f"write @{record.id}", "1 image"
            else:
                choice = f"write @{record.id}.1 to @{record.id}.{len(saved)}"
                count = f"{len(saved)} images"
            raise InputError(
                f"{text}: job {record.id} saved {count}, so there is no image {index}; {choice}"
            )
        place, path = saved[index - 1]
    else:
        # @last continues from the latest image; @ID from the job's first.
        place, path = saved[-1] if which == "last" else saved[0]
    stream = stream_name(path)
    if stream is not None:
        # Nothing was kept of an image written to stdout, a FIFO or a device, and reading the
        # path now reads whatever is there instead: with `>> out.png`, the run's own output.
        raise InputError(
            f"{text}: job {record.id} wrote its image to {stream}, so no file of it is there "
            "to edit; save the result with -o FILE or -d DIR to go on from it"
        )
    if not path.is_file():
        raise InputError(
            f"{text} names {path}, saved by job {record.id}, which is no longer there (moved or "
            "deleted); pass the image's new path instead"
        )
    return SavedResult(record.id, place, path)


def absolute_path(journal: Journal, record: JobRecord, path: Path) -> Path:
    """A saved path as it can be opened from here: a relative one starts in its run's folder."""
    if path.is_absolute():
        return path
    folder = journal.run_folder(record.run)
    return folder / path if folder is not None else path


# Listing ------------------------------------------------------------------------------------


def local_time(timestamp: float) -> str:
    """A journal time as the local date and time, to the minute."""
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")


def clipped(text: str, width: int = PROMPT_WIDTH) -> str:
    """A prompt on one line, cut to ``width`` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def record_json(record: JobRecord) -> dict[str, Any]:
    """One job as ``--json`` prints it: every field the journal holds."""
    return {
        "schema": "nanoedit/history-job/1",
        "id": record.id,
        "run": record.run,
        "created": local_datetime(record.created),
        "updated": local_datetime(record.updated),
        "state": record.state,
        "kind": record.kind,
        "backend": record.backend,
        "model": record.model,
        "prompt": record.prompt,
        "outputs": [str(path) for path in record.saved_paths],
        "images": record.images,
        "cost": record.cost,
        "usage": record.usage,
        "error": None
        if record.error is None
        else {"kind": record.error_kind, "message": record.error},
        "sandbox": record.sandbox,
        "tasks": list(record.tasks),
        "results": list(record.results),
        "spec": record.spec,
        "provenance": record.provenance,
        "exchanges": list(record.exchanges),
    }


def local_datetime(timestamp: float) -> str:
    """A journal time as ISO 8601 with the local offset, to the second."""
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def plain_line(record: JobRecord) -> str:
    """One job as a tab-separated line for scripts: id, time, state, backend, model, prompt,
    then each saved path."""
    fields = [
        str(record.id),
        local_time(record.created),
        record.state,
        record.backend,
        record.model,
        " ".join(record.prompt.split()),
        *(str(path) for path in record.saved_paths),
    ]
    return "\t".join(fields)


def table(records: Sequence[JobRecord], title: str | None = None) -> Table:
    """Jobs as a table for a person at a terminal."""
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=title, title_justify="left", header_style="bold", expand=False)
    for name in ("id", "time", "state", "backend", "model", "prompt", "outputs"):
        grid.add_column(name, overflow="fold" if name == "outputs" else "ellipsis")
    styles = {"saved": "green", "failed": "red", "refused": "red"}
    for record in records:
        outputs = "\n".join(str(path) for path in record.saved_paths) or "-"
        grid.add_row(
            str(record.id),
            local_time(record.created),
            Text(record.state, style=styles.get(record.state, "yellow")),
            record.backend,
            record.model,
            Text(clipped(record.prompt)),
            Text(outputs),
        )
    return grid


def show_lines(record: JobRecord) -> list[str]:
    """One job whole, as ``name: value`` lines."""
    import json

    lines = [
        f"id: {record.id}",
        f"run: {record.run}",
        f"created: {local_datetime(record.created)}",
        f"updated: {local_datetime(record.updated)}",
        f"state: {record.state}",
        f"kind: {record.kind}",
        f"backend: {record.backend}"
        + (" (the sandbox: nothing was charged)" if record.sandbox else ""),
        f"model: {record.model}",
        f"prompt: {record.prompt}",
    ]
    asked = record.spec.get("options")
    if asked is not None and asked.get("preset"):
        # The prompt above is the one sent: the preset's template, with the prompt given in it.
        lines.append(f"preset: {asked.get('preset')}")
    lines += [f"output: {path}" for path in record.saved_paths]
    lines.append(f"cost: {cost_text(record.cost, record.images)}")
    if record.usage:
        lines.append(f"usage: {json.dumps(record.usage, ensure_ascii=False)}")
    if record.error is not None:
        lines.append(f"error: {record.error_kind}: {record.error}")
    lines += [f"task: {task}" for task in record.tasks]
    lines += [f"result: {json.dumps(entry, ensure_ascii=False)}" for entry in record.results]
    lines.append(f"spec: {json.dumps(record.spec, ensure_ascii=False)}")
    return lines


def cost_text(cost: float | None, images: int) -> str:
    """A job's cost as shown: dollars, or ``unknown`` (never 0 for a price not known)."""
    from nanoedit.catalog.pricing import money

    if cost is not None:
        return money(cost)
    return "unknown" if images else "none"


def find(journal: Journal, text: str, limit: int) -> list[JobRecord]:
    """Jobs whose prompt matches ``text`` (SQLite FTS5), newest first; a usage error for a
    query FTS5 cannot read."""
    if not text.strip():
        raise UsageError("the search text is empty; give words to look for in prompts")
    try:
        return journal.search(text, limit)
    except sqlite3.OperationalError as exc:
        raise UsageError(
            f'cannot search for {text!r} ({exc}); search words, "a phrase" in double quotes, '
            "a prefix such as cat*, or words joined with AND, OR, NOT"
        ) from None


def get_job(journal: Journal, ident: str) -> JobRecord:
    """The job with the id ``ident`` (``12`` or ``@12``), or a usage error."""
    cleaned = ident.strip().removeprefix("@")
    if not cleaned.isdigit():
        raise UsageError(f"{ident!r} is not a job id; ids are numbers, see: nanoedit history")
    record = journal.get(int(cleaned))
    if record is None:
        raise UsageError(f"there is no job {cleaned} in the history; see: nanoedit history")
    return record


# The cost ledger ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CostLine:
    """One line of the ledger, as printed."""

    day: str
    backend: str
    model: str
    jobs: int
    images: int
    cost: str


def ledger(rows: Sequence[CostRow]) -> list[CostLine]:
    """The ledger's lines, then a total: a cost with unpriced jobs says how many."""
    from nanoedit.catalog.pricing import money

    def shown(cost: float | None, unpriced: int) -> str:
        if unpriced == 0:
            return money(cost or 0.0)
        known = money(cost) if cost is not None else ""
        some = f"{unpriced} job{'' if unpriced == 1 else 's'}"
        return f"{known} + unknown ({some})" if known else "unknown"

    lines = [
        CostLine(
            row.day, row.backend, row.model, row.jobs, row.images, shown(row.cost, row.unpriced)
        )
        for row in rows
    ]
    known = [row.cost for row in rows if row.cost is not None]
    total = shown(sum(known) if known else None, sum(row.unpriced for row in rows))
    jobs, images = sum(row.jobs for row in rows), sum(row.images for row in rows)
    lines.append(CostLine("total", "", "", jobs, images, total))
    return lines


def ledger_table(lines: Sequence[CostLine]) -> Table:
    """The ledger as a table for a person at a terminal."""
    from rich.table import Table

    grid = Table(header_style="bold")
    for name in ("day", "backend", "model"):
        grid.add_column(name)
    for name in ("jobs", "images", "estimated cost"):
        grid.add_column(name, justify="right")
    for line in lines:
        grid.add_row(
            line.day, line.backend, line.model, str(line.jobs), str(line.images), line.cost,
            end_section=line is lines[-2] if len(lines) > 1 else False,
        )  # fmt: skip
    return grid


# The page -----------------------------------------------------------------------------------


def sheet_rows(journal: Journal, records: Sequence[JobRecord]) -> list[SheetRow]:
    """The jobs as rows of the run page (:mod:`nanoedit.output.contact_sheet`)."""
    from nanoedit.output.contact_sheet import SheetRow

    rows = []
    for record in records:
        spec = record.spec
        # Each input as the run journaled it: a path or a URL (an image read from stdin has
        # neither, and no thumbnail).
        inputs = [item.get("path") or item.get("url") or "" for item in spec.get("inputs", [])]
        asked = spec.get("options")
        outputs = tuple(
            sheet_image(absolute_path(journal, record, path)) for path in record.saved_paths
        )
        if record.state in ("failed", "refused", "held"):
            error: str | None = record.error or record.state
        elif record.state != "saved":
            error = f"not finished ({record.state}); nanoedit resume takes it up"
        else:
            error = None
        rows.append(
            SheetRow(
                label=f"#{record.id} {local_time(record.created)}",
                inputs=tuple(item for item in inputs if item),
                outputs=outputs,
                prompt=record.prompt,
                model=record.model,
                backend=record.backend,
                ratio=asked["ratio"] if asked else "auto",
                size=asked["size"] if asked else None,
                seconds=None,
                cost=record.cost,
                error=error,
            )
        )
    return rows


def sheet_image(path: Path) -> SheetImage:
    """A saved image as the page describes it: its size read from the file (0 when gone)."""
    from PIL import Image, UnidentifiedImageError

    from nanoedit.output.contact_sheet import SheetImage

    try:
        size = path.stat().st_size
        with Image.open(path) as opened:
            return SheetImage(str(path), opened.width, opened.height, opened.format or "", size)
    except (OSError, UnidentifiedImageError):
        return SheetImage(str(path), 0, 0, "missing", 0)


def save_history_page(path: Path, journal: Journal, records: Sequence[JobRecord]) -> None:
    """Write the page of these jobs: thumbnails of their saved images, prompts, states, costs."""
    from nanoedit import __version__
    from nanoedit.output.contact_sheet import SheetRun, build_page, write_report

    base = path.parent if str(path.parent) else Path(".")
    run = SheetRun(datetime.now().astimezone(), None, __version__, command="nanoedit history")
    write_report(path, build_page(sheet_rows(journal, records), run, base=base))
