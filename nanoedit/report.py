"""Everything a run prints: results on stdout (paths or JSON lines), people's text on stderr.

On a terminal, stderr shows a rich spinner per job; elsewhere (pipes, CI logs) one plain
line per finished job, with no control characters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import IO, Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from nanoedit.errors import NanoeditError
from nanoedit.jobs import Job
from nanoedit.runner import JobOutcome


def error_json(error: NanoeditError) -> dict[str, Any]:
    """The ``error`` member of a ``--json`` object."""
    return {"kind": error.kind, "message": error.message, "exit_code": int(error.exit_code)}


def outcome_json(outcome: JobOutcome) -> dict[str, Any]:
    """The ``--json`` object of one job."""
    job = outcome.job
    error = outcome.error
    return {
        "ok": outcome.ok,
        "kind": job.kind,
        "backend": outcome.backend,
        "model": outcome.model,
        "prompt": job.options.prompt,
        "inputs": [source.location for source in job.images],
        "outputs": [
            {
                "path": str(saved.path),
                "width": saved.width,
                "height": saved.height,
                "format": saved.format,
                "bytes": saved.size,
            }
            for saved in outcome.outputs
        ],
        "error": None if error is None else error_json(error),
    }


def error_console(stream: IO[str]) -> Console:
    """A stderr console that never reads server text as markup and honours NO_COLOR."""
    return Console(
        file=stream,
        markup=False,
        highlight=False,
        emoji=False,
        soft_wrap=True,
        no_color="NO_COLOR" in os.environ or None,
    )


class Reporter:
    """Shows a run: implements the runner's events."""

    def __init__(self, stdout: IO[str], stderr: IO[str], *, json_lines: bool) -> None:
        self.stdout = stdout
        self.json_lines = json_lines
        self.console = error_console(stderr)
        self.live = self.console.is_terminal
        self.progress: Progress | None = None
        self.tasks: dict[int, TaskID] = {}
        # Paths written to a terminal while the spinners run would land inside them, so
        # they wait until the spinners are gone; a pipe gets each path at once.
        self.held: list[str] = []
        self.hold_stdout = self.live and stdout.isatty()

    def __enter__(self) -> Reporter:
        if self.live:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.stdout.write("".join(self.held))
        self.stdout.flush()
        self.held.clear()

    def job_started(self, job: Job) -> None:
        """Add a spinner line for the job (on a terminal)."""
        if self.progress is not None:
            self.tasks[id(job)] = self.progress.add_task(f"{job.label}: starting", total=None)

    def job_phase(self, job: Job, phase: str) -> None:
        """Show the job's current phase (on a terminal)."""
        if self.progress is not None and id(job) in self.tasks:
            self.progress.update(self.tasks[id(job)], description=f"{job.label}: {phase}")

    def job_finished(self, outcome: JobOutcome) -> None:
        """Print the job's result on stdout and one line about it on stderr."""
        task = self.tasks.pop(id(outcome.job), None)
        if self.progress is not None and task is not None:
            self.progress.remove_task(task)
        if self.json_lines:
            lines = [json.dumps(outcome_json(outcome), ensure_ascii=False) + "\n"]
        else:
            lines = [f"{saved.path}\n" for saved in outcome.outputs]
        if self.hold_stdout:
            self.held.extend(lines)
        else:
            self.stdout.write("".join(lines))
            self.stdout.flush()
        for saved in outcome.outputs:
            self.console.print(
                f"saved {saved.path} ({saved.width}x{saved.height} {saved.format.upper()}) "
                f"from {outcome.job.label}"
            )
        if outcome.error is not None:
            self.error(outcome.error)

    def warning(self, text: str) -> None:
        """A warning line on stderr."""
        self.console.print(f"warning: {text}", style="yellow")

    def error(self, error: NanoeditError | str) -> None:
        """An error line on stderr."""
        message = error.message if isinstance(error, NanoeditError) else error
        self.console.print(f"error: {message}", style="bold red")

    def summary(self, outcomes: Sequence[JobOutcome]) -> None:
        """One closing line for runs of more than one job."""
        if len(outcomes) < 2:
            return
        saved = sum(len(outcome.outputs) for outcome in outcomes)
        failed = sum(1 for outcome in outcomes if not outcome.ok)
        self.console.print(
            f"{len(outcomes)} jobs: {len(outcomes) - failed} done, {failed} failed, "
            f"{saved} images saved"
        )
