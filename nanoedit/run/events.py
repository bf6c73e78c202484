"""What a run tells whoever shows it to a person: the one protocol the runner, a dry run,
``fetch`` and ``resume`` report through, and the reporter implements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from nanoedit.jobs import Job, JobOutcome


class Events(Protocol):
    """What the runner tells whoever shows the run to a person."""

    def run_started(self, jobs: int) -> None:
        """The run begins with this many jobs."""

    def job_started(self, job: Job) -> None:
        """A job begins."""

    def job_phase(
        self, job: Job, phase: str, done: int | None = None, total: int | None = None
    ) -> None:
        """A job moved on (``uploading``, ``task running``, ``downloading``…), maybe with bytes."""

    def job_finished(self, outcome: JobOutcome) -> None:
        """A job ended: saved, failed or skipped."""

    def warning(self, text: str) -> None:
        """Something the user should know that is not an error."""

    def closed(self) -> bool:
        """Whether nobody reads the results any more (stdout was closed): send no new job."""
