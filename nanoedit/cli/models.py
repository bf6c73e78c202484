"""``nanoedit models``: the model catalog as a table or JSON lines, and ``--live``, which asks
each backend what it serves today and says how that differs from the catalog.
"""

import os
import sys
from typing import Annotated, NoReturn

import typer

from nanoedit.cli.errors import errors
from nanoedit.cli.options import SandboxOpt, environment
from nanoedit.errors import UsageError
from nanoedit.jobs import RunOptions


def models(
    ctx: typer.Context,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            metavar="NAME",
            help="Only the models this backend sells, with its ids, limits and prices (with "
            "--live: ask this backend alone).",
        ),
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json", help="One JSON object per model on stdout (with --live: one in all)."
        ),
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Ask each configured backend what it serves today (free listing requests) "
            "and show how it differs from the catalog.",
        ),
    ] = False,
    sandbox: SandboxOpt = False,
) -> None:
    """The model catalog: each model's aliases, ids per backend, sizes, ratios, references,
    price of a 1K image and status (GA, deprecated, shut down) with dates.

    It is a snapshot kept as data: correct or add an entry in the config file under
    [models."ID"] (see the README). --live compares it with what each provider lists today:
    models added or dropped, ratios and sizes that differ; the ratios and sizes read are kept
    for later runs' checks. Exit 0 when nothing differs, 9 when something does, 3, 5 or 6
    when a backend could not be checked (as config check).
    """
    from nanoedit.backends.registry import backend_names
    from nanoedit.catalog.lineup import lineup, table_lines
    from nanoedit.settings.load import load_settings

    with errors(json_out):
        names = backend_names()
        if backend is not None and backend not in names:
            raise UsageError(f"no backend called {backend!r}; choose one of: {', '.join(names)}")
        if live:
            _models_live(ctx, (backend,) if backend else names, json_out, sandbox)
        if sandbox:
            raise UsageError("--sandbox goes with --live: the catalog itself asks no server")
        settings = load_settings(os.environ, RunOptions())
        rows = lineup(settings.catalog, backend)
        if json_out:
            import json

            for row in rows:
                typer.echo(json.dumps(row.as_json(), ensure_ascii=False))
            return
        shown = (backend,) if backend else names
        lines = table_lines(rows, shown)
        if sys.stdout.isatty():
            from rich.console import Console
            from rich.table import Table

            table = Table(*lines[0], show_lines=False)
            for line in lines[1:]:
                table.add_row(*line)
            Console(file=sys.stdout).print(table)
            return
        for line in lines:
            typer.echo("\t".join(line))


def _models_live(
    ctx: typer.Context, names: tuple[str, ...], json_out: bool, sandbox: bool
) -> NoReturn:
    """``nanoedit models --live``: check ``names``, print how each differs from the catalog,
    keep what was read for later runs, and exit with the run's code."""
    from nanoedit import session
    from nanoedit.run.live import LiveReport

    checked = session.check_live(environment(ctx), names, sandbox=sandbox)
    results, code, cache = checked.results, checked.exit_code, checked.cache
    requests = checked.requests
    if json_out:
        import json

        report = LiveReport(results, code, cache)
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        width = max(len(result.backend) for result in results)
        for result in results:
            for line in result.lines(width):
                typer.echo(line)
    from nanoedit.output.report import error_console

    console = error_console(sys.stderr)
    said = "1 request" if requests == 1 else f"{requests} requests"
    console.print(f"{said} to listing endpoints, which are free: no image made, nothing paid")
    if cache is not None:
        console.print(f"the ratios and sizes read are kept in {cache} for later runs' checks")
    elif checked.sandbox:
        console.print("the in-process sandbox is no provider: nothing kept for later runs")
    raise typer.Exit(code)
