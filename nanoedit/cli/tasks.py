"""``nanoedit fetch`` and ``nanoedit resume``: tasks submitted elsewhere, and jobs a run left
unfinished, finished by the session.
"""

from typing import Annotated

import typer

from nanoedit.cli.errors import errors
from nanoedit.cli.options import (
    JobsOpt,
    JsonOpt,
    OutDirOpt,
    OutputOpt,
    OverwriteOpt,
    QuietOpt,
    RetryUnsafeOpt,
    TimeoutOpt,
    environment,
)
from nanoedit.jobs import DEFAULT_JOBS, RunOptions


def _complete_asynchronous(incomplete: str) -> list[str]:
    from nanoedit.run.fetch import asynchronous_names

    return [name for name in asynchronous_names() if name.startswith(incomplete)]


def fetch(
    ctx: typer.Context,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            metavar="NAME",
            show_default=False,
            help="The API the tasks were submitted to: one that answers with task ids.",
            autocompletion=_complete_asynchronous,
        ),
    ],
    task_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Ids of tasks submitted elsewhere, as the provider answered them.",
            show_default=False,
            metavar="TASK_ID...",
        ),
    ] = None,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="ID",
            show_default=False,
            help="Model the tasks were sent to, where the API needs it to find them "
            "(default: the backend's configured model).",
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    json_lines: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Save the results of asynchronous tasks submitted elsewhere, by their ids.

    Nothing is submitted: each task is polled until it ends, and its images are saved as
    edit saves them. Ctrl-C leaves the tasks on the server, to be fetched again.
    """
    from nanoedit import session

    again = "interrupted: the tasks are still on the server; run the same command to fetch them"
    env = environment(ctx)
    with errors(json_lines, interrupted=again):
        run = RunOptions(out_dir=out_dir, overwrite=overwrite, json_lines=json_lines, quiet=quiet)
        done = session.fetch(env, backend, task_ids or [], model=model, output=output, run=run)
    raise typer.Exit(done.exit_code)


def resume(
    ctx: typer.Context,
    ids: Annotated[
        list[int] | None,
        typer.Argument(
            help="Ids of the jobs to take up (see: nanoedit history); default: every "
            "unfinished job.",
            show_default=False,
            metavar="[ID]...",
        ),
    ] = None,
    jobs: JobsOpt = DEFAULT_JOBS,
    timeout: TimeoutOpt = None,
    retry_unsafe: RetryUnsafeOpt = False,
    json_lines: JsonOpt = False,
    quiet: QuietOpt = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Send nothing; print what would be done with each job (with --json: a "
            "JSON object).",
        ),
    ] = False,
    resend: Annotated[
        bool,
        typer.Option(
            "--resend",
            help="Send again, at the standard tier, the jobs of a batch that failed, was "
            "cancelled or expired without them (asks first on a terminal).",
        ),
    ] = False,
) -> None:
    """Finish the jobs a run left unfinished (Ctrl-C, a crash, a timeout), paying for
    nothing twice.

    A submitted task is polled again, a result not yet saved is saved, a job never sent is
    sent. A request that went out with no answer back may have been charged: it is only sent
    again with --retry-unsafe. A sandbox job goes back to the sandbox. A batch (--tier
    batch) is submitted if a run left it unsubmitted, waited for, and its images saved.
    """
    from nanoedit import session

    run = RunOptions(
        jobs=jobs, timeout=timeout, retry_unsafe=retry_unsafe, json_lines=json_lines,
        quiet=quiet, dry_run=dry_run, resend=resend,
    )  # fmt: skip
    env = environment(ctx)
    with errors(json_lines):
        done = session.resume(env, ids or [], run)
    raise typer.Exit(done.exit_code)
