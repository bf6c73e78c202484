"""``nanoedit edit`` and ``nanoedit generate``: their own arguments, the shared run flags
(:class:`~nanoedit.cli.options.RunFlags`), and the session that runs them.
"""

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from nanoedit.cli.errors import INTERRUPTED, errors
from nanoedit.cli.options import PromptFileOpt, PromptOpt, RunFlags, environment, with_run_flags
from nanoedit.errors import ExitCode
from nanoedit.jobs import DEFAULT_FEATHER

if TYPE_CHECKING:
    from nanoedit import session


# The help panel of edit's mask flags.
MASKS = "Masked edits"


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
    mask: Annotated[
        str | None,
        typer.Option(
            "--mask",
            metavar="FILE",
            help="Edit only where FILE is white (or opaque, if it has transparency): every "
            "other pixel stays the input's, bit for bit. Saved as PNG.",
            show_default=False,
            rich_help_panel=MASKS,
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            metavar="X,Y,W,H",
            help="Edit only inside this box (the input's pixels), as --mask does.",
            show_default=False,
            rich_help_panel=MASKS,
        ),
    ] = None,
    feather: Annotated[
        int | None,
        typer.Option(
            "--feather",
            min=0,
            max=64,
            metavar="PX",
            help=f"Width of the blended seam, inside the mask (default {DEFAULT_FEATHER}; 0: a "
            "hard edge).",
            show_default=False,
            rich_help_panel=MASKS,
        ),
    ] = None,
    crop: Annotated[
        bool,
        typer.Option(
            "--crop",
            help="Send the model only a crop around the mask (with a margin), and put its "
            "answer back into that box: more of its pixels go where the edit is.",
            rich_help_panel=MASKS,
        ),
    ] = False,
    max_drift: Annotated[
        float | None,
        typer.Option(
            "--max-drift",
            min=0,
            max=100,
            metavar="PCT",
            help="Fail a job (exit 5) whose model changed more than PCT % outside the mask; "
            "its image is kept as NAME-drift.png.",
            show_default=False,
            rich_help_panel=MASKS,
        ),
    ] = None,
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
        if (mask, region, feather, max_drift) != (None, None, None, None) or crop:
            from nanoedit.run.masks import mask_spec

            run = replace(run, mask=mask_spec(mask, region, feather, max_drift, crop))
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
