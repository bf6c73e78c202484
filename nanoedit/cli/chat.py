"""``nanoedit chat``: edit one image turn by turn at a terminal, each prompt the next turn of
its thread (the loop: :mod:`nanoedit.cli.conversation`).
"""

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from nanoedit.cli.errors import errors
from nanoedit.cli.options import RunFlags, environment, with_run_flags
from nanoedit.errors import UsageError

# The run flags a chat has no use for: a turn is one image, saved under its own name (never
# over another), kept in the history (its thread is read back from there), previewed when
# the terminal can, and said to a person, not to a script.
LEFT_OUT = frozenset(
    {
        "count", "output", "overwrite", "response_format", "json_lines", "quiet", "print0",
        "skip_existing", "no_history", "dry_run", "max_cost", "max_images", "preview", "report",
        "preset",
    }
)  # fmt: skip


@with_run_flags(batch=False, without=LEFT_OUT)
def chat(
    ctx: typer.Context,
    image: Annotated[
        str,
        typer.Argument(
            metavar="IMAGE",
            help="The image to start from: a file, or an earlier result (@last, @ID, @ID.N).",
            show_default=False,
        ),
    ],
    *,
    flags: RunFlags,
) -> None:
    """Edit an image turn by turn at a terminal: each line you type is the next turn of its
    thread (edit --continue), saved and previewed; /undo, /branch N, /ratio, /size, /model,
    /cost, /help, /quit. In a script, use edit @last --continue instead.
    """
    with errors():
        if not sys.stdin.isatty():
            raise UsageError(
                "chat reads its prompts from a terminal, and stdin is not one; in a script, "
                'go on turn by turn with: nanoedit edit @last --continue -p "..."'
            )
        run = flags.run_options()
    env = environment(ctx)
    with errors(), contextlib.ExitStack() as closing:
        from nanoedit.cli.conversation import Conversation, start_point
        from nanoedit.output.preview import Viewer, choose_protocol
        from nanoedit.output.report import error_console
        from nanoedit.settings.load import load_settings

        # The flags are checked before the first prompt, as a run checks them.
        settings = load_settings(env.environ, run, ratio=flags.ratio, size=flags.size)
        if not settings.history:
            raise UsageError(
                "chat keeps its turns as a thread in the history, which is off (history.enabled "
                "is false); turn it on with: nanoedit config set history.enabled true"
            )
        start = start_point(image, env)
        stdout = env.stdout
        if stdout is not None and stdout.isatty():
            # On a terminal each turn's "saved" line names its image: the bare path a run
            # prints for scripts would say it twice. Redirected, stdout keeps the paths.
            stdout = closing.enter_context(open(os.devnull, "w", encoding="utf-8"))
        conversation = Conversation(
            # A turn reads nothing from stdin: the chat's prompts come from there.
            dataclasses.replace(env, stdin=None, stdout=stdout),
            flags,
            start,
            read=_reader(sys.stdout.isatty()),
            console=error_console(env.stderr),
            viewer=Viewer(
                preview=True,
                open_images=flags.open_images,
                protocol=choose_protocol(settings.preview_protocol, env.environ),
                open_command=settings.open_command,
            ),
        )
        conversation.run()


def _reader(stdout_is_terminal: bool) -> Callable[[str], str]:
    """``input``, with line editing and a history of the prompts where readline is there;
    its prompt on stderr when stdout is not the terminal (it carries the saved paths)."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (input() edits lines through it once it is loaded)
    if stdout_is_terminal:
        return input

    def read(prompt: str) -> str:
        sys.stderr.write(prompt)
        sys.stderr.flush()
        return input()

    return read
