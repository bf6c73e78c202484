"""``nanoedit history``: jobs sent before, listed, shown, searched, summed by cost, or as a page;
the thread a job belongs to, as a tree."""

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nanoedit.cli.errors import errors
from nanoedit.cli.options import report_option
from nanoedit.errors import UsageError

if TYPE_CHECKING:
    from nanoedit.journal.records import JobRecord
    from nanoedit.journal.store import Journal
    from nanoedit.journal.thread_tree import ThreadTree

history_app = typer.Typer(
    help="Jobs sent before: list, show, search, their cost, a page of them, a thread.",
    invoke_without_command=True,
    rich_markup_mode=None,
)


LimitOpt = Annotated[
    int, typer.Option("--limit", "-n", min=1, metavar="N", help="Show at most N jobs.")
]
HistoryJsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object per job on stdout.")
]


@contextmanager
def _history() -> Iterator["Journal | None"]:
    """The journal to read (None: no run has written one yet), with errors turned into
    their message and exit code (a damaged journal's among them: see read_history)."""
    from nanoedit.journal.history import read_history

    with errors(), read_history(os.environ) as journal:
        yield journal


def _print_jobs(records: Sequence["JobRecord"], json_out: bool, empty: str) -> None:
    """Jobs on stdout: JSON lines, a table on a terminal, tab-separated lines otherwise."""
    from nanoedit.journal.history import plain_line, record_json, table

    if json_out:
        import json

        for record in records:
            typer.echo(json.dumps(record_json(record), ensure_ascii=False))
        return
    if not records:
        typer.echo(empty, err=True)
        return
    if sys.stdout.isatty():
        from rich.console import Console

        Console(file=sys.stdout).print(table(records))
        return
    for record in records:
        typer.echo(plain_line(record))


@history_app.callback()
def history_main(
    ctx: typer.Context,
    limit: LimitOpt = 20,
    json_out: HistoryJsonOpt = False,
    cost: Annotated[
        bool,
        typer.Option("--cost", help="Sum the jobs by day, backend and model (= history cost)."),
    ] = False,
    report: Annotated[
        Path | None,
        report_option(
            "Write one HTML page of the last --limit jobs: images, prompts, states, costs."
        ),
    ] = None,
) -> None:
    """Jobs sent before, newest first (the last 20; --limit N for more). Ids are stable: give
    one to history show, or as an input (@ID, @last for the last image saved)."""
    if ctx.invoked_subcommand is not None:
        return
    if cost:
        history_cost(json_out)
        return
    if report is not None:
        _history_report(report, limit)
        return
    history_list(limit, json_out)


def _history_report(path: Path, limit: int) -> None:
    from nanoedit.journal.history import save_history_page
    from nanoedit.output.contact_sheet import check_report_path

    with _history() as journal:
        check_report_path(path)
        if journal is None:
            raise UsageError("there is no history yet, so no page to make; run a job first")
        save_history_page(path, journal, journal.recent(limit))
        typer.echo(f"wrote the report {path}", err=True)


@history_app.command("list")
def history_list(limit: LimitOpt = 20, json_out: HistoryJsonOpt = False) -> None:
    """Recent jobs, newest first: id, time, state, backend, model, prompt, saved images."""
    with _history() as journal:
        records = [] if journal is None else journal.recent(limit)
        _print_jobs(records, json_out, "no jobs in the history yet")


@history_app.command("show")
def history_show(
    ident: Annotated[str, typer.Argument(metavar="ID", help="The job's id.", show_default=False)],
    json_out: Annotated[bool, typer.Option("--json", help="Print the job as JSON.")] = False,
) -> None:
    """One job whole: its request, tasks, results, error, cost and usage."""
    from nanoedit.journal.history import get_job, record_json, show_lines

    with _history() as journal:
        if journal is None:
            raise UsageError(f"there is no job {ident} in the history: it is empty")
        record = get_job(journal, ident)
        if json_out:
            import json

            typer.echo(json.dumps(record_json(record), ensure_ascii=False, indent=2))
        else:
            for line in show_lines(record):
                typer.echo(line)


@history_app.command("thread")
def history_thread(
    ident: Annotated[
        str,
        typer.Argument(
            metavar="ID", help="The job: its id, @ID, @ID.N or @last.", show_default=False
        ),
    ],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the tree as one JSON document.")
    ] = False,
    preview: Annotated[
        bool,
        typer.Option("--preview", help="Show each turn's images on the terminal, under its job."),
    ] = False,
    report: Annotated[
        Path | None,
        report_option(
            "Write one HTML page of the thread: a strip of turns per branch, with thumbnails."
        ),
    ] = None,
) -> None:
    """The whole thread a job belongs to (edit --continue, chat): every turn from the first
    and every branch, each job's prompt, images, model, state and cost; the thread's total."""
    from nanoedit.journal.thread_tree import plain_lines, read_tree, save_thread_page, tree_json

    with _history() as journal:
        if report is not None:
            from nanoedit.output.contact_sheet import check_report_path

            check_report_path(report)
        if journal is None:
            raise UsageError(f"there is no job {ident} in the history: it is empty")
        tree = read_tree(journal, ident)
        if report is not None:
            save_thread_page(report, tree, f"nanoedit history thread {ident}")
            typer.echo(f"wrote the report {report}", err=True)
        if json_out:
            import json

            typer.echo(json.dumps(tree_json(tree), ensure_ascii=False, indent=2))
        elif report is None and sys.stdout.isatty():
            _thread_on_terminal(tree, preview)
        elif report is None:
            for line in plain_lines(tree):
                typer.echo(line)


def _thread_on_terminal(tree: "ThreadTree", preview: bool) -> None:
    """The tree for a person: rich's Tree; with ``preview``, each job set in under the one
    it continues with its images drawn under it (a picture cannot sit inside a tree's guides)."""
    from rich.console import Console

    from nanoedit.journal.thread_tree import INDENT, rich_tree, styled

    console = Console(file=sys.stdout)
    if not preview:
        console.print(rich_tree(tree))
        return
    from rich.text import Text

    from nanoedit.cli.errors import warn
    from nanoedit.jobs import RunOptions
    from nanoedit.output.preview import Viewer, choose_protocol
    from nanoedit.settings.load import load_settings

    settings = load_settings(os.environ, RunOptions())
    viewer = Viewer(
        preview=True,
        open_images=False,
        protocol=choose_protocol(settings.preview_protocol, os.environ),
    )
    console.print(tree.heading())
    for depth, node in tree.root.walk():
        for line in styled(node, tree.asked).split("\n"):
            console.print(Text(INDENT * depth) + line)
        for _, image in node.saved:
            if image.format != "missing":
                said = viewer.preview(Path(image.path), console)
                if said is not None:
                    warn(said)


@history_app.command("search")
def history_search(
    text: Annotated[
        str,
        typer.Argument(
            help='Words of the prompt; "a phrase", cat* (a prefix), AND, OR, NOT.',
            show_default=False,
        ),
    ],
    limit: LimitOpt = 50,
    json_out: HistoryJsonOpt = False,
) -> None:
    """Jobs whose prompt matches TEXT (full-text search), newest first."""
    from nanoedit.journal.history import find

    with _history() as journal:
        records = [] if journal is None else find(journal, text, limit)
        _print_jobs(records, json_out, f"no job's prompt matches {text!r}")


@history_app.command("cost")
def history_cost(json_out: HistoryJsonOpt = False) -> None:
    """What the jobs cost, summed by day, backend and model (estimated where no price was
    reported; unknown where no price is known: set pricing.BACKEND.MODEL)."""
    from nanoedit.journal.history import ledger, ledger_table

    with _history() as journal:
        rows = [] if journal is None else journal.cost_by_day()
        if json_out:
            import json

            for row in rows:
                typer.echo(json.dumps(row.__dict__, ensure_ascii=False))
            return
        if not rows:
            typer.echo("no paid jobs in the history yet; sandbox jobs cost nothing", err=True)
            return
        lines = ledger(rows)
        if sys.stdout.isatty():
            from rich.console import Console

            Console(file=sys.stdout).print(ledger_table(lines))
            return
        for line in lines:
            fields = (line.day, line.backend, line.model, line.jobs, line.images, line.cost)
            typer.echo("\t".join(str(field) for field in fields))


@history_app.command("path")
def history_path() -> None:
    """Print the history database's path."""
    from nanoedit.journal.history import database_path

    typer.echo(str(database_path(os.environ)))
