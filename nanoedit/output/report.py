"""Everything a run prints: results on stdout (paths or JSON lines), people's text on stderr.

On a terminal, stderr shows live progress: an overall bar for a batch and one line per
running job with its phase, bytes moved and elapsed time. Elsewhere (pipes, CI logs) it
gets one plain line per finished job, with no control characters. Jobs run in threads, so
every method may be called from any of them.
"""

from __future__ import annotations

import errno
import json
import os
import threading
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from nanoedit.errors import NanoeditError
from nanoedit.jobs import Job, JobOutcome
from nanoedit.output.names import STDOUT
from nanoedit.stdio import to_devnull

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn, TaskID
    from rich.text import Text

    from nanoedit.output.preview import Viewer


ERROR_SCHEMA = "nanoedit/error/1"
RESULT_SCHEMA = "nanoedit/result/1"


def error_json(error: NanoeditError) -> dict[str, Any]:
    """The ``error`` member of a ``--json`` object (a job's, or the envelope's): the kind,
    the message, the exit code, a hint of what to do and the provider's own code (or null)."""
    return {
        "kind": error.kind,
        "message": error.message,
        "exit_code": int(error.exit_code),
        "hint": error.hint,
        "provider_code": error.provider_code,
    }


def error_envelope(error: NanoeditError) -> dict[str, Any]:
    """The one JSON object a command given ``--json`` prints on stdout when it fails as a
    whole (a job's failure is its own result line, whose ``error`` is the same object): the
    fields of :func:`error_json` at the top, and under ``error`` as scripts read them before."""
    fields = error_json(error)
    return {"schema": ERROR_SCHEMA, "ok": False, **fields, "error": fields}


def outcome_json(outcome: JobOutcome) -> dict[str, Any]:
    """The ``--json`` object of one job."""
    job = outcome.job
    error = outcome.error
    # A fetch's job has no prompt or inputs of its own: its task says which it was.
    task = {} if job.task is None else {"task": job.task}
    # The preset whose template the prompt was put into, when one was.
    preset = {} if job.options.preset is None else {"preset": job.options.preset}
    return {
        # Each record says what it is and its version (its JSON Schema: nanoedit schema result).
        "schema": RESULT_SCHEMA,
        "ok": outcome.ok,
        "job": outcome.journal_id,
        "state": outcome.state,
        "kind": job.kind,
        "backend": outcome.backend,
        "model": outcome.model,
        "prompt": job.options.prompt,
        **preset,
        "inputs": [source.location for source in job.images],
        **task,
        "outputs": [
            {
                "path": str(saved.path),
                "width": saved.width,
                "height": saved.height,
                "format": saved.format,
                "bytes": saved.size,
                # Only a masked edit's images have it (see Drift).
                **({} if saved.drift is None else {"drift": saved.drift.to_json()}),
            }
            for saved in outcome.outputs
        ],
        "sent": outcome.sent,
        "tasks": list(outcome.tasks),
        "skipped": outcome.skipped,
        "warnings": list(outcome.warnings),
        "text": outcome.text,
        "error": None if error is None else error_json(error),
    }


# What rich leaves out of printed text: bell, backspace, vertical tab, form feed and
# carriage return (a server's "\r" must not overwrite the start of a line).
_DROPPED_CONTROLS = dict.fromkeys((7, 8, 11, 12, 13))


class PlainConsole:
    """Lines of text on a stream that is not a terminal, exactly as rich prints them there
    (no style, tabs expanded, control codes dropped), without loading rich: a pipe or a log
    gets no colour, and a run should not pay rich's import time (about 15 ms) for none."""

    is_terminal = False

    def __init__(self, file: IO[str]) -> None:
        self.file = file

    def print(self, text: str, style: str | None = None) -> None:
        """Write ``text`` and a newline, flushed as rich does; ``style`` is what a terminal
        would show it in."""
        self.file.write(text.translate(_DROPPED_CONTROLS).expandtabs(8) + "\n")
        self.file.flush()


def wants_terminal(stream: IO[str]) -> bool:
    """Whether rich would treat ``stream`` as a terminal: TTY_COMPATIBLE and FORCE_COLOR
    decide first (as rich reads them), then whether it is one."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force = os.environ.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    try:
        return stream.isatty()
    except (ValueError, AttributeError):  # closed, or not a file at all
        return False


def error_console(stream: IO[str], *, rich: bool = False) -> Console | PlainConsole:
    """A stderr console that never reads server text as markup and honours NO_COLOR: rich's
    for a terminal (or when ``rich`` asks for it: a feature only rich draws), else plain."""
    if not rich and not wants_terminal(stream):
        return PlainConsole(stream)
    from rich.console import Console

    return Console(
        file=stream,
        markup=False,
        highlight=False,
        emoji=False,
        soft_wrap=True,
        # no-color.org: set and not empty.
        no_color=bool(os.environ.get("NO_COLOR")) or None,
    )


def amount_column() -> ProgressColumn:
    """A column with the bytes a job moved (``1.2/3.4 MB``, or ``1.2 MB`` when the length is
    unknown), or the jobs done for the batch bar (``3/10``).

    Built on demand: rich's progress machinery is loaded only for a terminal.
    """
    from rich.filesize import decimal
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class AmountColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            unit = task.fields.get("unit")
            if unit == "jobs":
                done_jobs = f"{int(task.completed)}/{int(task.total or 0)}"
                return Text(done_jobs, style="progress.download")
            done, size = task.fields.get("done"), task.fields.get("size")
            if unit != "bytes" or not done:
                return Text("")
            if size:
                return Text(f"{decimal(done)}/{decimal(size)}", style="progress.download")
            return Text(decimal(done), style="progress.download")

    return AmountColumn()


def _reader_gone(stream: IO[str]) -> bool:
    """Whether ``stream`` is a pipe (or socket, or terminal) whose other end is gone: a pipe
    with no reader polls as an error before anything is written to it."""
    import select

    if not hasattr(select, "poll"):
        return False
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a file at all (a test's buffer), or closed
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


class Reporter:
    """Shows a run: implements the runner's events.

    ``stdout`` is None when the process started with it closed (``>&-``); once stdout is
    gone, the reporter says nothing more but errors, and :meth:`closed` tells the runner.
    """

    def __init__(
        self,
        stdout: IO[str] | None,
        stderr: IO[str],
        *,
        json_lines: bool,
        quiet: bool = False,
        print0: bool = False,
        viewer: Viewer | None = None,
    ) -> None:
        self.stdout = stdout
        self.gone = stdout is None
        # Why writing stdout failed when it was not a reader leaving (a full disk, a device
        # error): the end of the run says it as an error.
        self.write_error: str | None = None
        self.viewer = viewer
        self.json_lines = json_lines
        self.quiet = quiet
        # --print0: a NUL ends each path, so any file name (spaces, newlines) survives xargs -0.
        self.end = "\0" if print0 else "\n"
        # Previews are drawn by rich, so asking for them loads it even off a terminal.
        self.console = error_console(stderr, rich=viewer is not None)
        self.live = self.console.is_terminal and not quiet
        self.progress: Progress | None = None
        self.overall: TaskID | None = None
        self.tasks: dict[int, TaskID] = {}
        self.lock = threading.RLock()
        # Paths written to a terminal while the bars run would land inside them, so they
        # wait until the bars are gone; a pipe gets each path at once.
        self.held: list[str] = []
        self.hold_stdout = self.live and stdout is not None and stdout.isatty()
        # Errors several jobs share (a rejected key) are shown once.
        self.shown: set[NanoeditError] = set()

    def __enter__(self) -> Reporter:
        if self.live and not isinstance(self.console, PlainConsole):
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                amount_column(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            if self.progress is not None:
                self.progress.stop()
            self._write(self.held)
            self.held.clear()

    def closed(self) -> bool:
        """Whether stdout is gone: closed from the start, a write failed, or a pipe's reader
        left (``| head -1``). A run sends no new job then."""
        with self.lock:
            if not self.gone and self.stdout is not None and _reader_gone(self.stdout):
                self._stdout_gone(self.stdout)
            return self.gone

    def _write(self, lines: Sequence[str]) -> None:
        """Write results on stdout at once (with the lock held), unless stdout is gone."""
        if self.gone or self.stdout is None or not lines:
            return
        try:
            self.stdout.write("".join(lines))
            self.stdout.flush()
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.EBADF):
                # Not a reader that left: the paths cannot be said. As on a closed pipe,
                # nothing new is sent and the jobs under way save their images.
                self.write_error = exc.strerror or type(exc).__name__
            self._stdout_gone(self.stdout)

    def _stdout_gone(self, stream: IO[str]) -> None:
        """Nobody reads the results any more: keep quiet from now on, as a Unix tool on a
        closed pipe does."""
        self.gone = True
        to_devnull(stream)

    def run_started(self, jobs: int) -> None:
        """Add the overall bar for a batch (on a terminal)."""
        with self.lock:
            if self.progress is not None and jobs > 1:
                self.overall = self.progress.add_task("all jobs", total=jobs, unit="jobs", failed=0)

    def job_started(self, job: Job) -> None:
        """Add a line for the job (on a terminal); one it has already (a job that waited for
        another run, and now goes on itself) starts again on it."""
        with self.lock:
            if self.progress is None:
                return
            if id(job) in self.tasks:
                self.progress.update(self.tasks[id(job)], description=f"{job.label}: starting")
                return
            self.tasks[id(job)] = self.progress.add_task(
                f"{job.label}: starting", total=None, unit=""
            )

    def job_phase(
        self, job: Job, phase: str, done: int | None = None, total: int | None = None
    ) -> None:
        """Show the job's current phase and bytes (on a terminal)."""
        with self.lock:
            if self.progress is None or id(job) not in self.tasks:
                return
            task = self.tasks[id(job)]
            if done is None:
                self.progress.update(
                    task, description=f"{job.label}: {phase}", total=None, completed=0, unit=""
                )
            else:
                # One more than the size: a job's task must never count as finished, or rich
                # stops its spinner and its clock for the phases that follow.
                self.progress.update(
                    task,
                    description=f"{job.label}: {phase}",
                    total=total + 1 if total else None,
                    completed=done,
                    unit="bytes",
                    done=done,
                    size=total,
                )

    def job_finished(self, outcome: JobOutcome) -> None:
        """Print the job's result on stdout and one line about it on stderr."""
        with self.lock:
            task = self.tasks.pop(id(outcome.job), None)
            if self.progress is not None:
                if task is not None:
                    self.progress.remove_task(task)
                if self.overall is not None:
                    self.progress.advance(self.overall)
            if self.json_lines:
                lines = [json.dumps(outcome_json(outcome), ensure_ascii=False) + "\n"]
            else:
                # The order of outcome.outputs is the images' order: image 1's path first.
                # An image sent to stdout (-o -) has no path to print: its bytes were the output.
                lines = [f"{s.path}{self.end}" for s in outcome.outputs if s.path != STDOUT]
            if self.hold_stdout:
                self.held.extend(lines)
            else:
                self._write(lines)
            # Once stdout is gone, a job that was already sent still saves its image, in
            # silence but for errors.
            if not self.quiet and not self.gone:
                if outcome.text:
                    # The model's own words, before what was saved of its answer: a Text, so
                    # brackets in them are not markup.
                    self._line(f"{outcome.job.label}: the model says: {outcome.text}")
                # A skipped job's outputs were saved by an earlier run, not this one.
                for saved in [] if outcome.skipped else outcome.outputs:
                    facts = f"({saved.width}x{saved.height} {saved.format.upper()})"
                    if saved.path == STDOUT:
                        said = f"wrote the image to stdout {facts}"
                    else:
                        said = f"saved {saved.path} {facts}"
                    self.console.print(f"{said} from {outcome.job.label}")
                    if self.viewer is not None and saved.path != STDOUT:
                        assert not isinstance(self.console, PlainConsole)  # rich for a viewer
                        self._say(self.viewer.preview(saved.path, self.console))
                if outcome.skipped:
                    self.console.print(
                        f"skipped {outcome.job.label}: its result is already there "
                        "(--skip-existing)"
                    )
            if outcome.error is not None and outcome.error not in self.shown:
                self.shown.add(outcome.error)
                self.error(outcome.error)
            if self.viewer is not None:
                for saved in [] if outcome.skipped else outcome.outputs:
                    if saved.path != STDOUT:
                        self._say(self.viewer.open(saved.path))

    def _say(self, warning: str | None) -> None:
        if warning is not None:
            self.warning(warning)

    def warning(self, text: str) -> None:
        """A warning line on stderr (not with --quiet, nor once stdout is gone)."""
        if not self.quiet and not self.gone:
            self._line(f"warning: {text}", "yellow")

    def error(self, error: NanoeditError | str) -> None:
        """An error line on stderr, always."""
        message = error.message if isinstance(error, NanoeditError) else error
        self._line(f"error: {message}", "bold red")

    def _line(self, text: str, style: str = "") -> None:
        """One line on stderr, in ``style`` on a terminal."""
        if isinstance(self.console, PlainConsole):
            self.console.print(text)
            return
        from rich.text import Text  # loaded already: the console is rich's

        # A styled Text, not print(style=...): the live bars drawn with this print would take
        # on its style. A Text, not a str: brackets in server text are not markup.
        self.console.print(Text(text, style=style))

    def summary(self, outcomes: Sequence[JobOutcome]) -> None:
        """One closing line for runs of more than one job."""
        if len(outcomes) < 2 or self.quiet:
            return
        saved = sum(len(outcome.outputs) for outcome in outcomes if not outcome.skipped)
        held = sum(1 for outcome in outcomes if outcome.held_back)
        failed = sum(1 for outcome in outcomes if not outcome.ok) - held
        skipped = sum(1 for outcome in outcomes if outcome.skipped)
        done = len(outcomes) - failed - held - skipped
        tail = f", {held} not sent" if held else ""
        tail += f", {skipped} skipped" if skipped else ""
        images = "image" if saved == 1 else "images"
        self.console.print(
            f"{len(outcomes)} jobs: {done} done, {failed} failed{tail}, {saved} {images} saved"
        )
