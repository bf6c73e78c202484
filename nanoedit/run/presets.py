"""A run's presets put to work: each job's prompt put into its preset's template, once every
job is known (a ``--from`` line may name its own preset), before anything is sent.

The settings a preset holds are the command line's business (they stand in for flags it did
not give); what is left here is the prompt, which may come from -p, stdin, a file or a line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from nanoedit.errors import UsageError
from nanoedit.jobs import Job
from nanoedit.settings.presets import Preset, PresetBook


def preset_finder(environ: Mapping[str, str]) -> Callable[[str], Preset]:
    """Looks a preset up by name in the config file ``environ`` names, read when a preset is
    first asked for (a run that names none never reads it: a wrong preset there stops only
    the runs that use presets), and once."""
    book: PresetBook | None = None

    def find(name: str) -> Preset:
        nonlocal book
        if book is None:
            book = PresetBook.of(environ)
        return book.find(name)

    return find


def fill_prompts(jobs: Sequence[Job], find: Callable[[str], Preset]) -> list[Job]:
    """The jobs, each whose options name a preset (``find`` looks it up) with its prompt put
    into that preset's template: the prompt the journal keeps, and resume sends again."""
    filled = []
    for job in jobs:
        name = job.options.preset
        if name is None:
            filled.append(job)
            continue
        try:
            prompt = find(name).fill(job.options.prompt)
        except UsageError as exc:
            # Which job, when there are inputs: a --from line may have left out its prompt.
            raise UsageError(f"{job.label}: {exc.message}" if job.images else exc.message) from None
        filled.append(replace(job, options=replace(job.options, prompt=prompt)))
    return filled
