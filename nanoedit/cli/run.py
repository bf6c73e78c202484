"""``nanoedit edit`` and ``nanoedit generate``: their own arguments, the shared run flags
(:class:`~nanoedit.cli.options.RunFlags`), and the session that runs them.
"""

from typing import TYPE_CHECKING, Annotated

import typer

from nanoedit.cli.errors import INTERRUPTED, errors
from nanoedit.cli.options import PromptFileOpt, PromptOpt, RunFlags, environment, with_run_flags
from nanoedit.errors import ExitCode

if TYPE_CHECKING:
    from nanoedit import session


def _finish(done: "session.Finished") -> None:
    """Exit with the run's code; a run a first Ctrl-C stopped says it was interrupted."""
    if done.stopped:
        typer.echo(INTERRUPTED, err=True)
        raise typer.Exit(ExitCode.INTERRUPTED)
    raise typer.Exit(done.exit_code)


@with_run_flags(batch=True)
def edit(
    ctx: typer.Context,
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Images to edit: files, folders, quoted globs, http(s) URLs or - (stdin); "
            "one job each.",
            show_default=False,
            metavar="INPUT...",
        ),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt",
            "-p",
            metavar="TEXT",
            help="What to do, in words; - reads it from stdin (required unless --from gives it).",
            show_default=False,
        ),
    ] = None,
    prompt_file: PromptFileOpt = None,
    ref: Annotated[
        list[str] | None,
        typer.Option(
            "--ref",
            "-r",
            metavar="IMAGE",
            help="Reference image sent with every job (repeatable).",
            show_default=False,
        ),
    ] = None,
    from_file: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="FILE",
            show_default=False,
            help="Jobs from a file (- for stdin): one path, URL or JSON object per line.",
            rich_help_panel="Batch",
        ),
    ] = None,
    recursive: Annotated[
        bool,
        typer.Option(
            "--recursive", "-R", help="Look for images in subfolders too.", rich_help_panel="Batch"
        ),
    ] = False,
    continue_thread: Annotated[
        bool,
        typer.Option(
            "--continue",
            "-c",
            help="Go on from an earlier result (INPUT: @last, @ID or @ID.N) as the next turn "
            "of its thread: the model sees the earlier turns where the backend keeps a "
            "conversation; --ref images are what this turn adds.",
        ),
    ] = False,
    *,
    flags: RunFlags,
) -> None:
    """Edit images: each INPUT is one job, with every --ref image sent after it.

    An INPUT or --ref of - is an image read from stdin. Put a file whose name starts with
    a dash after --, so that it is not taken for an option:

    \b
      nanoedit edit -p "make it night" -- -dash.png
    """
    # The session, and the run it wires, load when a command runs (not for --help).
    from nanoedit import session

    given = session.EditInputs(
        inputs=tuple(inputs or ()),
        refs=tuple(ref or ()),
        from_file=from_file,
        recursive=recursive,
        output=flags.output,
        continues=continue_thread,
    )
    env = environment(ctx)
    with errors(flags.json_lines):
        # Refused before anything else is looked at, the options' values among them.
        session.check_stdin(given, flags.asked(prompt, prompt_file))
        flags = flags.with_preset(ctx, env.environ)
        asked = flags.asked(prompt, prompt_file)
        run = flags.run_options()
    with errors(run.json_lines):
        done = session.edit(env, given, asked, run)
    _finish(done)


@with_run_flags(batch=False)
def generate(
    ctx: typer.Context,
    prompt: PromptOpt = None,
    prompt_file: PromptFileOpt = None,
    *,
    flags: RunFlags,
) -> None:
    """Make images from a text prompt alone."""
    from nanoedit import session

    env = environment(ctx)
    with errors(flags.json_lines):
        flags = flags.with_preset(ctx, env.environ)
        run = flags.run_options()
    with errors(run.json_lines):
        done = session.generate(env, flags.output, flags.asked(prompt, prompt_file), run)
    _finish(done)
