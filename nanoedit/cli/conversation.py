"""The loop of ``nanoedit chat``: where the chat stands, one prompt a turn, and its commands.

Each turn is an edit run through the session, with the options a command line run has: the
first turn on an image file is a plain edit of it, every later one ``edit @ID --continue``, so
the chat's turns are a thread in the history (``nanoedit history thread @last``). A turn is a
whole run: a first Ctrl-C during it stops nothing paid for (the image under way is still
saved), as any run's does, and the chat goes on from the prompt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanoedit.errors import InputError, NanoeditError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from nanoedit.cli.options import RunFlags
    from nanoedit.output.preview import Viewer
    from nanoedit.output.report import PlainConsole
    from nanoedit.session import Environment

HELP = """each line is a prompt: the next turn, going on from the current image
  /undo         go back to the image this one went on from; the next prompt branches there
  /branch N     go on from turn N of this chat (0: the image it started from)
  /branch @ID   go on from a job of the history (@ID, @ID.N or @last)
  /ratio R      the aspect ratio of the next turns (auto, 1:1, 16:9, ...)
  /size S       the resolution of the next turns (512, 1K, 2K or 4K)
  /model M      the model of the next turns (an alias such as nano-banana-pro, or an id)
  /cost         what this chat's turns have cost so far
  /help         this list
  /quit         leave the chat (so do Ctrl-D, and Ctrl-C at the prompt)
  //TEXT        a prompt that starts with /"""

Reader = Callable[[str], str]
"""Reads one line after writing its prompt (``input``); raises EOFError at the end of the
input (Ctrl-D) and KeyboardInterrupt on Ctrl-C."""


@dataclass(frozen=True)
class Point:
    """An image the chat can go on from: the file it started from (``job`` None), or a saved
    result of a job of the history (``ref``: the @ID.N that names it for ever, not @last).
    ``turn`` is its number in this chat (0: where it started; None for a job taken with
    /branch @ID) and ``parent`` the point its turn went on from (/undo goes back there)."""

    path: Path
    job: int | None
    ref: str
    turn: int | None
    parent: Point | None = None

    def shown(self) -> str:
        """Its file as the chat says it: from the current folder when it is under it."""
        try:
            return str(self.path.resolve().relative_to(Path.cwd()))
        except (OSError, ValueError):
            return str(self.path)

    def name(self) -> str:
        """How the chat names it: ``turn N``, or ``job N`` for one taken from the history."""
        return f"turn {self.turn}" if self.turn is not None else f"job {self.job}"


def start_point(text: str, env: Environment) -> Point:
    """Where a chat on ``text`` starts: an image file, or an earlier result (@last, @ID,
    @ID.N). A usage or input error saying why it cannot start there."""
    from nanoedit.jobs import is_history_reference

    if is_history_reference(text):
        return job_point(text, env, turn=0)
    if text == "-" or text.startswith(("http://", "https://")):
        raise UsageError(
            f"chat starts from an image file or an earlier result (@last, @ID), and {text} is "
            "neither (stdin carries the chat's prompts); save the image to a file and name it"
        )
    path = Path(text)
    if path.is_dir():
        raise UsageError(
            f"{text} is a folder, and chat edits one image; name an image in it, or edit the "
            "folder with: nanoedit edit FOLDER -p PROMPT"
        )
    if not path.is_file():
        raise InputError(f"{text} does not exist; name an image file, or an earlier result: @last")
    return Point(path, None, text, 0)


def job_point(text: str, env: Environment, *, turn: int | None) -> Point:
    """The saved result ``text`` (@last, @ID, @ID.N) names, checked to be there, named for
    good: @last is the last image saved *now*, and a later turn saves another."""
    from nanoedit.journal.history import read_history, resolve_result

    found = resolve_result(text, env.environ)
    with read_history(env.environ) as journal:
        record = journal.get(found.job) if journal is not None else None
    assert record is not None  # resolve_result has just read it
    # @ID.N counts the job's saved images, where the journal numbers all its results.
    place = sum(1 for entry in record.results[: found.result] if entry.get("path"))
    return Point(found.path, found.job, f"@{found.job}.{place}", turn)


class Conversation:
    """A chat at a terminal: where it stands, the flags its next turns are run with (/ratio,
    /size and /model change them), and every point it has been at (its turns)."""

    def __init__(
        self,
        env: Environment,
        flags: RunFlags,
        start: Point,
        *,
        read: Reader,
        console: Console | PlainConsole,
        viewer: Viewer | None,
    ) -> None:
        self.env = env
        self.flags = flags
        self.points: list[Point] = [start]
        self.current = start
        self.read = read
        self.console = console
        self.viewer = viewer
        # The jobs this chat's turns made, for /cost (a failed turn's among them).
        self.jobs: list[int] = []

    # Saying ----------------------------------------------------------------------------------

    def say(self, text: str, style: str | None = None) -> None:
        """A line for the person at the terminal (stderr, as a run's own lines)."""
        self.console.print(text, style=style)

    def error(self, error: NanoeditError) -> None:
        """What went wrong, as a command line run says it; the chat goes on."""
        self.say(f"error: {error.message}", style="bold red")

    def show(self, point: Point) -> None:
        """Draw the image on the terminal, when it can draw one."""
        from rich.console import Console

        # Only rich draws a picture: off a terminal the console is a plain one.
        if self.viewer is None or not isinstance(self.console, Console):
            return
        said = self.viewer.preview(point.path, self.console)
        if said is not None:
            self.say(f"warning: {said}", style="yellow")

    # The loop --------------------------------------------------------------------------------

    def run(self) -> None:
        """Read prompts and commands until /quit, Ctrl-D, or Ctrl-C at the prompt confirmed."""
        start = self.current
        self.say(
            f"chat on {start.shown()} (turn 0): each line you type is the next turn; /help lists "
            "the commands, /quit or Ctrl-D leaves"
        )
        self.show(start)
        while True:
            try:
                line = self.read("> ")
            except EOFError:
                self.say("")
                break
            except KeyboardInterrupt:
                if self._leave_asked():
                    break
                continue
            text = line.strip()
            if not text:
                continue
            if text.startswith("/") and not text.startswith("//"):
                if not self.command(text):
                    break
                continue
            self.turn(text.removeprefix("/") if text.startswith("//") else text)
        self._goodbye()

    def _leave_asked(self) -> bool:
        """Ctrl-C at the prompt: ask before leaving (a second Ctrl-C, or Ctrl-D, leaves)."""
        try:
            answer = self.read("\nleave the chat? [y/N] ")
        except (EOFError, KeyboardInterrupt):
            self.say("")
            return True
        return answer.strip().lower() in ("y", "yes")

    def _goodbye(self) -> None:
        if not self.jobs:
            self.say("no turn was sent")
            return
        turns = len(self.jobs)
        self.say(
            f"{turns} turn{'' if turns == 1 else 's'} sent; see the thread with: nanoedit "
            f"history thread {self.jobs[-1]}"
        )

    # Turns -----------------------------------------------------------------------------------

    def turn(self, prompt: str) -> None:
        """Send ``prompt`` as the next turn from the current image: a plain edit of the file
        the chat started from, otherwise the next turn of its thread (``edit --continue``)."""
        from nanoedit import session

        if prompt == "-":
            self.error(UsageError("a prompt of - alone says nothing to the model; say what to do"))
            return
        point = self.current
        given = session.EditInputs(inputs=(point.ref,), continues=point.job is not None)
        run = dataclasses.replace(self.flags.run_options(), preview=self.viewer is not None)
        try:
            done = session.edit(self.env, given, self.flags.asked(prompt, None), run)
        except NanoeditError as exc:
            self.error(exc)
            return
        except KeyboardInterrupt:
            # A second Ctrl-C aborted the turn: the run has said what it left, and how
            # resume takes it up.
            self.say(f"the turn was stopped; the chat is still at {point.name()}", style="yellow")
            return
        saved = None
        for outcome in done.outcomes:
            if outcome.journal_id is not None:
                self.jobs.append(outcome.journal_id)
                if outcome.outputs and saved is None:
                    saved = (outcome.journal_id, outcome.outputs[0].path)
        if saved is None:
            self.say(f"nothing was saved; the chat is still at {point.name()}", style="yellow")
            return
        job, path = saved
        made = Point(Path(path), job, f"@{job}.1", len(self.points), point)
        self.points.append(made)
        self.current = made
        self.say(f"turn {made.turn} (job {job}, from {point.name()}): {made.shown()}", style="bold")

    # Commands --------------------------------------------------------------------------------

    def command(self, line: str) -> bool:
        """Do what a /command says; False when the chat is to end."""
        name, _, argument = line.partition(" ")
        argument = argument.strip()
        if name in ("/quit", "/exit", "/q"):
            return False
        handlers: dict[str, Callable[[str], None]] = {
            "/help": lambda _: self.say(HELP),
            "/undo": lambda _: self.undo(),
            "/branch": self.branch,
            "/ratio": self.ratio,
            "/size": self.size,
            "/model": self.model,
            "/cost": lambda _: self.cost(),
        }
        handler = handlers.get(name)
        if handler is None:
            self.error(UsageError(f"there is no command {name}; /help lists them"))
            return True
        try:
            handler(argument)
        except NanoeditError as exc:
            self.error(exc)
        return True

    def _go(self, point: Point, why: str) -> None:
        self.current = point
        self.say(f"{why}: {point.shown()}; the next prompt goes on from there")
        self.show(point)

    def undo(self) -> None:
        """Go back to the image the current one was made from."""
        parent = self.current.parent
        if parent is None:
            raise UsageError(
                f"nothing to undo: {self.current.name()} is where this chat started (or was "
                "taken with /branch); /branch N or /branch @ID goes on from another image"
            )
        self._go(parent, f"back to {parent.name()}")

    def branch(self, argument: str) -> None:
        """Go on from turn N of this chat, or from a job of the history (@ID, @ID.N, @last)."""
        from nanoedit.jobs import is_history_reference

        if is_history_reference(argument):
            point = job_point(argument, self.env, turn=None)
            self._go(point, f"at job {point.job}")
            return
        last = len(self.points) - 1
        if not argument.isdigit() or int(argument) > last:
            raise UsageError(
                f"/branch takes a turn of this chat (0 to {last}) or a job of the history "
                f"(@ID, @ID.N, @last), and {argument or 'nothing'} is neither"
            )
        point = self.points[int(argument)]
        self._go(point, f"at {point.name()}")

    def ratio(self, argument: str) -> None:
        """Set the aspect ratio of the next turns, checked as --ratio is."""
        from nanoedit.jobs import normalize_ratio

        self._set("ratio", argument, normalize_ratio)

    def size(self, argument: str) -> None:
        """Set the resolution of the next turns, checked as --size is."""
        from nanoedit.jobs import normalize_size

        self._set("size", argument, normalize_size)

    def _set(self, name: str, argument: str, normalize: Callable[[str], str | None]) -> None:
        """Set the run flag ``name`` (one a default.NAME setting stands for when it is not
        given) to ``argument`` as ``normalize`` checks it; with no argument, say what it is."""
        if not argument:
            now = getattr(self.flags, name) or f"as the settings say (default.{name})"
            self.say(f"{name}: {now}")
            return
        value = normalize(argument)
        changed: dict[str, Any] = {name: value}
        self.flags = dataclasses.replace(self.flags, **changed)
        self.say(f"{name} {value} from the next turn")

    def model(self, argument: str) -> None:
        """Set the model of the next turns; as with --model, what the backend sells is
        checked when the turn is planned, before anything is sent."""
        if not argument:
            shown = self.flags.model or "the thread's own (or the backend's)"
            self.say(f"model: {shown}")
            return
        self.flags = dataclasses.replace(self.flags, model=argument)
        self.say(f"model {argument} from the next turn")

    def cost(self) -> None:
        """Say what this chat's turns cost, as the history holds it."""
        from nanoedit.catalog.pricing import money
        from nanoedit.journal.history import read_history

        if not self.jobs:
            self.say("this chat has sent no turn yet: nothing spent")
            return
        with read_history(self.env.environ) as journal:
            records = [journal.get(job) for job in self.jobs] if journal is not None else []
        found = [record for record in records if record is not None]
        known = sum(record.cost or 0.0 for record in found)
        unpriced = sum(1 for record in found if record.cost is None and record.images > 0)
        images = sum(record.images for record in found)
        jobs = f"{unpriced} job{'' if unpriced == 1 else 's'}"
        text = money(known) + (f" + unknown ({jobs})" if unpriced else "")
        turns = len(found)
        free = bool(found) and all(record.sandbox for record in found)
        sandbox = " (the sandbox: nothing charged)" if free else ""
        self.say(
            f"this chat: {turns} turn{'' if turns == 1 else 's'}, {images} "
            f"image{'' if images == 1 else 's'}, estimated cost {text}{sandbox}"
        )
