"""What the Python API returns: frozen values made from a run's job outcomes, which read as
a ``--json`` record does (paths, sizes, cost, the model's text, the job's id)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanoedit.errors import ExitCode, NanoeditError
from nanoedit.jobs import Drift, JobOutcome


@dataclass(frozen=True)
class Image:
    """One saved image: where it is, its format (``PNG``, ``JPEG``...), its size in pixels and
    in bytes."""

    path: Path
    format: str
    width: int
    height: int
    bytes: int
    drift: Drift | None = None
    """A masked edit's: how much the model changed outside the mask before compositing."""

    def provenance(self) -> dict[str, Any] | None:
        """The provenance record written into the file (prompt, model, backend, inputs...);
        None when it holds none (saved with ``metadata=False``)."""
        from nanoedit.output.provenance import read

        return read(self.path)


@dataclass(frozen=True)
class Result:
    """What one job made: its images, the job's id in the history (None with
    ``history=False``), where it went, what it cost, and what the model said beside them."""

    images: tuple[Image, ...]
    job_id: int | None
    backend: str | None
    model: str | None
    prompt: str
    inputs: tuple[str, ...]
    cost: float | None
    """US dollars: the provider's own figure, else the price table's; None when unknown."""
    text: str
    """What the model said beside its images ("" when nothing)."""
    usage: Mapping[str, Any] | None
    seconds: float | None
    warnings: tuple[str, ...]
    skipped: bool
    """True when ``skip_existing`` found the job's result already saved, and sent nothing."""

    @property
    def path(self) -> Path:
        """The first image's path (a job asked for ``count`` images has that many)."""
        if not self.images:
            raise LookupError("this job saved no image (it was skipped); see .skipped")
        return self.images[0].path

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every image's path, in the order the model gave them."""
        return tuple(image.path for image in self.images)


@dataclass(frozen=True)
class Outcome:
    """What became of one job of a batch: its result, or the error it failed with (which
    carries its exit code); ``state`` is saved, skipped, failed, refused or not sent."""

    input: str
    """The job's input as given (or, for a generation, its prompt's file-name stem)."""
    state: str
    result: Result | None
    error: NanoeditError | None

    @property
    def ok(self) -> bool:
        """True when the job saved its images (or was skipped)."""
        return self.error is None

    @property
    def exit_code(self) -> ExitCode:
        """0, or the exit code of the job's error (8 for a refusal...)."""
        return ExitCode.OK if self.error is None else self.error.exit_code

    def unwrap(self) -> Result:
        """The result, or raise the job's error."""
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@dataclass(frozen=True)
class Batch:
    """Every job's outcome, in the order of the inputs; the run's exit code (0 all saved, 7
    some failed, a failure's own code when all did); whether a Ctrl-C or SIGTERM stopped it
    sending; and what the run said for a person (warnings, one line per job)."""

    outcomes: tuple[Outcome, ...]
    exit_code: ExitCode
    stopped: bool
    log: str

    def __iter__(self) -> Iterator[Outcome]:
        return iter(self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)

    @property
    def ok(self) -> bool:
        """True when every job saved its images."""
        return self.exit_code == ExitCode.OK

    @property
    def results(self) -> tuple[Result, ...]:
        """The results of the jobs that saved theirs."""
        return tuple(outcome.result for outcome in self.outcomes if outcome.result is not None)

    @property
    def errors(self) -> tuple[NanoeditError, ...]:
        """The errors of the jobs that failed."""
        return tuple(outcome.error for outcome in self.outcomes if outcome.error is not None)

    @property
    def cost(self) -> float:
        """What the jobs cost in all, in US dollars, as far as it is known."""
        return sum(result.cost or 0.0 for result in self.results)


def result_of(outcome: JobOutcome) -> Result:
    """The :class:`Result` of a job that saved its images (or was skipped)."""
    job = outcome.job
    return Result(
        images=tuple(
            Image(
                saved.path.absolute(),
                saved.format,
                saved.width,
                saved.height,
                saved.size,
                saved.drift,
            )
            for saved in outcome.outputs
        ),
        job_id=outcome.journal_id,
        backend=outcome.backend,
        model=outcome.model,
        prompt=job.options.prompt,
        inputs=tuple(source.location for source in job.images),
        cost=outcome.cost,
        text=outcome.text,
        usage=outcome.usage,
        seconds=outcome.seconds,
        warnings=outcome.warnings,
        skipped=outcome.skipped,
    )


def outcome_of(outcome: JobOutcome) -> Outcome:
    """The :class:`Outcome` of one job of a run."""
    label = outcome.job.images[0].location if outcome.job.images else outcome.job.stem
    result = result_of(outcome) if outcome.error is None else None
    return Outcome(label, outcome.state, result, outcome.error)
