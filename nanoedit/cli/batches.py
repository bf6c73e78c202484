"""``nanoedit batches``: the Batch API submissions (``--tier batch``) the history knows."""

from typing import Annotated

import typer

from nanoedit.cli.errors import errors
from nanoedit.cli.options import JsonOpt, environment


def batches(
    ctx: typer.Context,
    cancel: Annotated[
        str | None,
        typer.Option(
            "--cancel",
            metavar="NAME",
            show_default=False,
            help="Cancel the batch NAME (batches/ID, as listed) at Google; resume then lists "
            "its jobs not done.",
        ),
    ] = None,
    json_lines: JsonOpt = False,
) -> None:
    """List the batches --tier batch submitted (name, state, jobs, estimate and cost), or
    cancel one.

    A batch still running is collected, and its images saved, by nanoedit resume.
    """
    import json

    from nanoedit.run.batch_admin import cancel_batch, list_batches

    env = environment(ctx)
    with errors(json_lines):
        if cancel is not None:
            record = cancel_batch(env.environ, cancel.strip(), env.clock, env.warn)
            if json_lines:
                typer.echo(json.dumps(record.to_json()))
            else:
                typer.echo(f"{record.shown}: {record.state}", err=True)
            return
        listing = list_batches(env.environ, env.warn)
    if json_lines:
        for record in listing.batches:
            typer.echo(json.dumps(record.to_json()))
        return
    if not listing.batches:
        typer.echo("no batches in the history (--tier batch makes them)", err=True)
        return
    from nanoedit.catalog.pricing import money

    for record in listing.batches:
        estimate = "?" if record.estimate is None else money(record.estimate)
        cost = "-" if record.cost is None else money(record.cost)
        jobs = "1 job" if len(record.jobs) == 1 else f"{len(record.jobs)} jobs"
        typer.echo(
            f"{record.shown}  {record.state}  {record.model}  {jobs}  "
            f"{record.done}/{record.requests} done  estimate {estimate}  cost {cost}"
        )
