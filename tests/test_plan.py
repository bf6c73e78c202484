"""Planning: every job routed and named before anything is sent, with the folder's names
given by an injected ``exists`` so that no folder is needed."""

from __future__ import annotations

import os
from pathlib import Path

from nanoedit.jobs import JobOutcome, Options, PlannedJob, RunOptions, build_edit_jobs
from nanoedit.net.inputs import RunInputs
from nanoedit.output.names import numbered
from nanoedit.run.plan import Planned, Planner
from nanoedit.settings.load import load_settings

STEMS = 1000
COPIES = 20


def plan(
    urls: list[str], taken: set[Path], options: RunOptions, size: str | None = None
) -> tuple[list[Planned], list[str]]:
    settings = load_settings(os.environ, RunOptions(sandbox=True))
    warnings: list[str] = []
    # The output folder (settings.out_dir, the current one) is there, with ``taken`` in it.
    there = taken | {settings.out_dir}
    planner = Planner(
        settings, options, RunInputs(warnings.append), warnings.append, exists=there.__contains__
    )
    jobs = build_edit_jobs(urls, [], Options(prompt="make it night", size=size), None)
    return planner.plan(jobs), warnings


def test_twenty_thousand_jobs_are_named_in_list_order_around_the_names_in_use() -> None:
    # Copy k of stem i is job k * STEMS + i: the copies of one stem lie far apart in the list.
    urls = [f"https://img.example/f{k}/s{i}.png" for k in range(COPIES) for i in range(STEMS)]
    taken = (
        {Path(f"s{i}-edit.png") for i in range(0, STEMS, 2)}
        # Past every natural name of the list: where a renamed job numbers on.
        | {Path(f"s{i}-edit-21.jpg") for i in range(0, STEMS, 3)}
        # With --sidecar, a sidecar alone takes the name too.
        | {Path(f"s{i}-edit-7.png.json") for i in range(0, STEMS, 5)}
    )
    planned, warnings = plan(urls, taken, RunOptions(sidecar=True))

    def expected(i: int, k: int) -> str:
        renamed = [copy for copy, hit in ((0, i % 2 == 0), (6, i % 5 == 0)) if hit]
        if k not in renamed:
            return numbered(f"s{i}-edit", k + 1)
        free = [number for number in range(21, 30) if not (number == 21 and i % 3 == 0)]
        return f"s{i}-edit-{free[renamed.index(k)]}"

    assert warnings == []
    assert all(isinstance(entry, PlannedJob) for entry in planned)
    assert [(entry.job.images[0].location, entry.backend) for entry in planned] == [
        (url, "duomi") for url in urls
    ]
    names = [entry.names for entry in planned if isinstance(entry, PlannedJob)]
    assert names == [(expected(i, k),) for k in range(COPIES) for i in range(STEMS)]
    assert names[:3] == [("s0-edit-22",), ("s1-edit",), ("s2-edit-21",)]
    assert names[6 * STEMS : 6 * STEMS + 11 : 5] == [
        ("s0-edit-23",), ("s5-edit-21",), ("s10-edit-22",)
    ]  # fmt: skip
    assert len({name for (name,) in names}) == len(urls)


def test_a_shard_plans_its_own_jobs_under_the_names_the_whole_list_gives_them() -> None:
    urls = [f"https://img.example/f{k}/cat.png" for k in range(7)]
    whole, _ = plan(urls, set(), RunOptions())
    second, _ = plan(urls, set(), RunOptions(shard=(2, 3)))
    assert [entry.names for entry in second if isinstance(entry, PlannedJob)] == [
        ("cat-edit-2",), ("cat-edit-5",)
    ]  # fmt: skip
    assert second == [whole[1], whole[4]]


def test_a_job_refused_when_planned_keeps_what_was_known_of_it() -> None:
    url = "https://img.example/cat.png"
    [missing], _ = plan(["missing.png"], set(), RunOptions())
    [too_large], _ = plan([url], set(), RunOptions(), size="4K")
    [planned], _ = plan([url], set(), RunOptions())
    assert isinstance(missing, JobOutcome) and isinstance(too_large, JobOutcome)
    assert missing.error is not None and too_large.error is not None
    assert (missing.backend, missing.model, missing.error.message) == (
        None, None, "missing.png: no such file; check the path"
    )  # fmt: skip
    # nano-banana on duomi is duomi's name for NB2, which renders 1K only there.
    assert (too_large.backend, too_large.model) == ("duomi", "gemini-3.1-flash-image-preview")
    assert too_large.error.message.startswith(
        "gemini-3.1-flash-image-preview renders 1K only on duomi, so size 4K cannot be honoured; "
    )
    assert planned == PlannedJob(
        planned.job,
        "duomi",
        "gemini-3.1-flash-image-preview",
        ("cat-edit",),
        natural=("cat-edit",),
    )
