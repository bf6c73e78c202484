"""``edit``, ``edit_many`` and ``generate`` for Python programs: the session's runs, called
with keyword options that mirror the command line's, in an environment with no terminal.

A run here is a run of the command line: the same settings (environment variables and the
config file), plan, budget, journal, client and runner, wired once in :mod:`nanoedit.session`.
Only what a program cannot use is different: stdin is closed (a prompt or image of ``-`` is
refused), the lines a person would read are kept in :attr:`Batch.log` instead of printed, and
results come back as values instead of lines on stdout.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from nanoedit.api.results import Batch, Result, outcome_of
from nanoedit.clock import Clock
from nanoedit.errors import ExitCode, NanoeditError, StoppedError, UsageError
from nanoedit.jobs import (
    DEFAULT_FEATHER,
    DEFAULT_JOBS,
    NO_DIALS,
    TRANSPARENT_AUTO,
    TRANSPARENT_METHODS,
    Dials,
    RunOptions,
    normalize_tier,
)
from nanoedit.session import Asked, EditInputs, Environment, Finished
from nanoedit.session import edit as run_edit
from nanoedit.session import generate as run_generate

PathLike = Union[str, "os.PathLike[str]"]
# A region: (X, Y, W, H) in the input's pixels, or the command line's "X,Y,W,H".
Region = str | tuple[int, int, int, int]


@dataclass(frozen=True)
class _Run:
    """What every call shares: the run's options, and the environment it reads."""

    options: RunOptions
    environ: Mapping[str, str] | None
    clock: Clock | None


def edit(
    image: PathLike | None = None,
    *,
    prompt: str | None = None,
    prompt_file: PathLike | None = None,
    refs: Sequence[PathLike] = (),
    continue_from: str | int | None = None,
    output: PathLike | None = None,
    ratio: str | None = None,
    size: str | None = None,
    model: str | None = None,
    preset: str | None = None,
    count: int = 1,
    dials: Dials | None = None,
    backend: str | None = None,
    sandbox: bool = False,
    out_dir: PathLike | None = None,
    overwrite: bool = False,
    max_cost: float | None = None,
    max_images: int | None = None,
    retries: int | None = None,
    retry_unsafe: bool = False,
    timeout: float | None = None,
    proxy: str | None = None,
    metadata: bool = True,
    sidecar: bool = False,
    history: bool = True,
    store: bool = True,
    tier: str | None = None,
    skip_existing: bool = False,
    mask: PathLike | None = None,
    region: Region | None = None,
    feather: int = DEFAULT_FEATHER,
    max_drift: float | None = None,
    crop: bool = False,
    transparent: bool | str = False,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> Result:
    """Edit one image (a path, an http(s) URL, or an earlier result: ``@last``, ``@ID``) as
    ``prompt`` says, with every image of ``refs`` sent after it, and return what it made.

    ``continue_from="@ID"`` (or the job id) goes on from an earlier result as the next turn
    of its thread, instead of ``image``. The other options are the command line's (``--ratio``,
    ``--out-dir``, ``--max-cost``...; ``transparent=True`` is ``--transparent``, and a method,
    ``"key"``, ``"matte"`` or ``"native"``, is ``--transparent-method``;
    ``dials=Dials(seed=7, search=True)`` for its provider dials, --seed, --search and the
    rest; a ``preset``'s settings stand in for the options left at None, its count aside);
    ``sandbox=True`` runs against the built-in emulated API (no key, no network, no cost);
    ``environ`` replaces ``os.environ`` as the run's environment variables. ``mask`` (a file)
    or ``region`` (``(X, Y, W, H)`` or ``"X,Y,W,H"``) limits where the model may change the
    image, as ``--mask`` and ``--region`` do, with ``feather``, ``max_drift`` and ``crop``;
    each image's ``drift`` says how much it changed outside.
    Raises the job's error (a :class:`~nanoedit.errors.NanoeditError` carrying its exit code:
    a refusal is a :class:`~nanoedit.errors.RefusedError`, 8).
    """
    if (image is None) == (continue_from is None):
        raise UsageError(
            "edit() takes the image to edit, or continue_from (an earlier result to go on "
            "from: '@ID', '@ID.N' or '@last'); give one of them"
        )
    if continue_from is not None:
        text = f"@{continue_from}" if isinstance(continue_from, int) else continue_from
        given = EditInputs(
            inputs=(text,), refs=_sources(refs, "refs"), output=_output(output), continues=True
        )
    else:
        assert image is not None
        text = _source(image, "image")
        _one_image(text)
        given = EditInputs(inputs=(text,), refs=_sources(refs, "refs"), output=_output(output))
    chosen = _from_preset(preset, environ, ratio, size, model, backend, transparent, dials, tier)
    ratio, size, model, backend = chosen.ratio, chosen.size, chosen.model, chosen.backend
    transparent, dials, tier = chosen.transparent, chosen.dials, chosen.tier
    run = _run_options(
        backend=backend, sandbox=sandbox, out_dir=out_dir, overwrite=overwrite,
        max_cost=max_cost, max_images=max_images, retries=retries, retry_unsafe=retry_unsafe,
        timeout=timeout, proxy=proxy, metadata=metadata, sidecar=sidecar, history=history,
        store=store, tier=tier, skip_existing=skip_existing, transparent=transparent,
        jobs=1, environ=environ, clock=clock,
    )  # fmt: skip
    run = _masked(run, mask, region, feather, max_drift, crop)
    asked = _asked(prompt, prompt_file, ratio, size, model, count, dials, preset)
    return _one(_edit(run, given, asked))


def edit_many(
    images: Sequence[PathLike] = (),
    *,
    prompt: str | None = None,
    prompt_file: PathLike | None = None,
    refs: Sequence[PathLike] = (),
    from_file: PathLike | None = None,
    recursive: bool = False,
    jobs: int = DEFAULT_JOBS,
    ratio: str | None = None,
    size: str | None = None,
    model: str | None = None,
    preset: str | None = None,
    count: int = 1,
    dials: Dials | None = None,
    backend: str | None = None,
    sandbox: bool = False,
    out_dir: PathLike | None = None,
    overwrite: bool = False,
    max_cost: float | None = None,
    max_images: int | None = None,
    retries: int | None = None,
    retry_unsafe: bool = False,
    timeout: float | None = None,
    proxy: str | None = None,
    metadata: bool = True,
    sidecar: bool = False,
    history: bool = True,
    store: bool = True,
    tier: str | None = None,
    skip_existing: bool = False,
    mask: PathLike | None = None,
    region: Region | None = None,
    feather: int = DEFAULT_FEATHER,
    max_drift: float | None = None,
    crop: bool = False,
    transparent: bool | str = False,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> Batch:
    """Edit many images, ``jobs`` at once: one job per image (files, folders, globs, URLs,
    ``@ID``), plus the jobs of a ``--from`` file (``from_file``), and return every job's
    outcome. A job that fails does not raise: its :class:`Outcome` carries the error. What
    refuses the whole batch before anything is sent (a bad option, no backend configured, an
    estimate over ``max_cost``) raises, as the command line exits.
    """
    if isinstance(images, (str, os.PathLike)):
        raise UsageError("edit_many() takes a list of images; for one image, call edit()")
    given = EditInputs(
        inputs=_sources(images, "images"),
        refs=_sources(refs, "refs"),
        from_file=None if from_file is None else _source(from_file, "from_file"),
        recursive=recursive,
    )
    chosen = _from_preset(preset, environ, ratio, size, model, backend, transparent, dials, tier)
    ratio, size, model, backend = chosen.ratio, chosen.size, chosen.model, chosen.backend
    transparent, dials, tier = chosen.transparent, chosen.dials, chosen.tier
    run = _run_options(
        backend=backend, sandbox=sandbox, out_dir=out_dir, overwrite=overwrite,
        max_cost=max_cost, max_images=max_images, retries=retries, retry_unsafe=retry_unsafe,
        timeout=timeout, proxy=proxy, metadata=metadata, sidecar=sidecar, history=history,
        store=store, tier=tier, skip_existing=skip_existing, transparent=transparent,
        jobs=jobs, environ=environ, clock=clock,
    )  # fmt: skip
    run = _masked(run, mask, region, feather, max_drift, crop)
    return _edit(run, given, _asked(prompt, prompt_file, ratio, size, model, count, dials, preset))


def _masked(
    run: _Run,
    mask: PathLike | None,
    region: Region | None,
    feather: int,
    max_drift: float | None,
    crop: bool,
) -> _Run:
    """``run`` with the mask ``edit()`` or ``edit_many()`` was given, if any."""
    if mask is None and region is None and max_drift is None and not crop:
        return run
    from dataclasses import replace

    from nanoedit.run.masks import mask_spec

    if not 0 <= feather <= 64:
        raise UsageError(f"feather is {feather}; give 0 to 64 pixels")
    if isinstance(region, tuple):
        region = ",".join(str(part) for part in region)
    path = None if mask is None else _source(mask, "mask")
    # The default is no flag given: only a seam asked for names --feather in a refusal.
    seam = None if feather == DEFAULT_FEATHER else feather
    spec = mask_spec(path, region, seam, max_drift, crop)
    return replace(run, options=replace(run.options, mask=spec))


def generate(
    *,
    prompt: str | None = None,
    prompt_file: PathLike | None = None,
    output: PathLike | None = None,
    ratio: str | None = None,
    size: str | None = None,
    model: str | None = None,
    preset: str | None = None,
    count: int = 1,
    dials: Dials | None = None,
    backend: str | None = None,
    sandbox: bool = False,
    out_dir: PathLike | None = None,
    overwrite: bool = False,
    max_cost: float | None = None,
    max_images: int | None = None,
    retries: int | None = None,
    retry_unsafe: bool = False,
    timeout: float | None = None,
    proxy: str | None = None,
    metadata: bool = True,
    sidecar: bool = False,
    history: bool = True,
    store: bool = True,
    tier: str | None = None,
    skip_existing: bool = False,
    transparent: bool | str = False,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> Result:
    """Make ``count`` images from the prompt alone and return them (options as :func:`edit`);
    raises the job's error, carrying its exit code."""
    chosen = _from_preset(preset, environ, ratio, size, model, backend, transparent, dials, tier)
    ratio, size, model, backend = chosen.ratio, chosen.size, chosen.model, chosen.backend
    transparent, dials, tier = chosen.transparent, chosen.dials, chosen.tier
    run = _run_options(
        backend=backend, sandbox=sandbox, out_dir=out_dir, overwrite=overwrite,
        max_cost=max_cost, max_images=max_images, retries=retries, retry_unsafe=retry_unsafe,
        timeout=timeout, proxy=proxy, metadata=metadata, sidecar=sidecar, history=history,
        store=store, tier=tier, skip_existing=skip_existing, transparent=transparent,
        jobs=1, environ=environ, clock=clock,
    )  # fmt: skip
    asked = _asked(prompt, prompt_file, ratio, size, model, count, dials, preset)
    env, log = _environment(run)
    return _one(_batch(run_generate(env, _output(output), asked, run.options), log))


def _edit(run: _Run, given: EditInputs, asked: Asked) -> Batch:
    """Run an edit through the session, and the batch it ended with."""
    env, log = _environment(run)
    return _batch(run_edit(env, given, asked, run.options), log)


def _run_options(
    *,
    backend: str | None,
    sandbox: bool,
    out_dir: PathLike | None,
    overwrite: bool,
    max_cost: float | None,
    max_images: int | None,
    retries: int | None,
    retry_unsafe: bool,
    timeout: float | None,
    proxy: str | None,
    metadata: bool,
    sidecar: bool,
    history: bool,
    store: bool,
    tier: str | None,
    skip_existing: bool,
    transparent: bool | str,
    jobs: int,
    environ: Mapping[str, str] | None,
    clock: Clock | None,
) -> _Run:
    """The run's options, checked as the command line checks its flags."""
    if not 1 <= jobs <= 64:
        raise UsageError(f"jobs={jobs} is out of range; send 1 to 64 jobs at once")
    if max_cost is not None and max_cost < 0:
        raise UsageError(f"max_cost={max_cost} is below 0; give the most to spend, in US dollars")
    if max_images is not None and max_images < 1:
        raise UsageError(f"max_images={max_images} is below 1; give the most images to ask for")
    if transparent is True:
        transparent = TRANSPARENT_AUTO
    if transparent and transparent not in (TRANSPARENT_AUTO, *TRANSPARENT_METHODS):
        methods = ", ".join((TRANSPARENT_AUTO, *TRANSPARENT_METHODS))
        raise UsageError(
            f"transparent={transparent!r} is no method; give True or one of: {methods}"
        )
    options = RunOptions(
        backend=backend, out_dir=None if out_dir is None else Path(out_dir), sandbox=sandbox,
        proxy=proxy, timeout=timeout, retries=retries, jobs=jobs, skip_existing=skip_existing,
        overwrite=overwrite, retry_unsafe=retry_unsafe, metadata=metadata, sidecar=sidecar,
        history=history, store=store, max_cost=max_cost, max_images=max_images,
        tier=normalize_tier(tier),
        transparent=transparent or None,
    )  # fmt: skip
    return _Run(options, environ, clock)


def _asked(
    prompt: str | None,
    prompt_file: PathLike | None,
    ratio: str | None,
    size: str | None,
    model: str | None,
    count: int,
    dials: Dials | None = None,
    preset: str | None = None,
) -> Asked:
    """What is asked of the model; stdin is no source of a prompt here."""
    if prompt == "-":
        raise UsageError(
            "prompt='-' would read stdin, which a program's call does not; pass the text"
        )
    if not 1 <= count <= 10:
        raise UsageError(f"count={count} is out of range; ask for 1 to 10 images per job")
    file = None if prompt_file is None else _source(prompt_file, "prompt_file")
    if ratio is not None:
        from nanoedit.jobs import normalize_ratio

        ratio = normalize_ratio(ratio)
    return Asked(
        prompt=prompt, prompt_file=file, ratio=ratio, size=size, model=model, count=count,
        dials=dials or NO_DIALS, preset=preset,
    )  # fmt: skip


def _from_preset(
    preset: str | None,
    environ: Mapping[str, str] | None,
    ratio: str | None,
    size: str | None,
    model: str | None,
    backend: str | None,
    transparent: bool | str = False,
    dials: Dials | None = None,
    tier: str | None = None,
) -> _Chosen:
    """The ratio, size, model, backend, transparency, dials and tier, with ``preset``'s in
    place of those the call left out (None, False), as the command line's flags: what the call
    gives wins. The call's count is its own (its default, 1, cannot be told from a 1 asked
    for)."""
    if preset is None:
        return _Chosen(ratio, size, model, backend, transparent, dials, tier)
    from nanoedit.settings.presets import PresetBook

    found = PresetBook.of(os.environ if environ is None else environ).find(preset)
    chosen = found.stand_in({
        "ratio": ratio, "size": size, "model": model, "backend": backend,
        "transparent": transparent, "tier": tier,
    })  # fmt: skip
    return _Chosen(
        chosen["ratio"], chosen["size"], chosen["model"], chosen["backend"],
        chosen["transparent"], found.dials_under(dials or NO_DIALS), chosen["tier"],
    )  # fmt: skip


@dataclass(frozen=True)
class _Chosen:
    """A call's options once its preset stood in for those it left out."""

    ratio: str | None
    size: str | None
    model: str | None
    backend: str | None
    transparent: bool | str
    dials: Dials | None
    tier: str | None


def _source(value: PathLike, what: str) -> str:
    """A path given as str or path object, as the session reads it; ``-`` (stdin) refused."""
    text = os.fspath(value)
    if text == "-":
        raise UsageError(
            f"{what} '-' would read stdin, which a program's call does not; give a path"
        )
    return text


def _sources(values: Sequence[PathLike], what: str) -> tuple[str, ...]:
    """Many paths, as :func:`_source` reads each."""
    if isinstance(values, (str, os.PathLike)):
        raise UsageError(f"{what} takes a list of images; write {what}=[{os.fspath(values)!r}]")
    return tuple(_source(value, what) for value in values)


def _output(value: PathLike | None) -> Path | None:
    """The file to write the one result to; never stdout, whose bytes a program would lose."""
    if value is None:
        return None
    from nanoedit.output.names import STDOUT

    path = Path(value)
    if os.fspath(value) == "-" or path == STDOUT:
        raise UsageError(
            f"output={os.fspath(value)!r} is stdout, where a program's call keeps no image; "
            "name a file to write the image to"
        )
    return path


def _one_image(text: str) -> None:
    """Refuse an ``image`` that names many (a folder, a glob): edit() makes one job."""
    from nanoedit.jobs import is_history_reference

    if is_history_reference(text) or text.startswith(("http://", "https://")):
        return
    if Path(text).is_dir() or (any(mark in text for mark in "*?[") and not Path(text).exists()):
        raise UsageError(
            f"{text} names many images, and edit() makes one job; call edit_many([{text!r}])"
        )


def _environment(run: _Run) -> tuple[Environment, io.StringIO]:
    """An environment with no terminal: stdin closed, stdout kept in memory (the paths it
    would print are the results' own), stderr kept for the batch's log."""
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    log = io.StringIO()
    environ = os.environ if run.environ is None else run.environ
    env = Environment(None, stdout, log, environ, run.clock or Clock(), tuple(sys.argv))
    return env, log


def _batch(done: Finished, log: io.StringIO) -> Batch:
    """The batch a run ended with."""
    outcomes = tuple(outcome_of(outcome) for outcome in done.outcomes)
    return Batch(outcomes, ExitCode(done.exit_code), done.stopped, log.getvalue())


def _one(batch: Batch) -> Result:
    """The one job's result; or its error, raised; or :class:`StoppedError` when a Ctrl-C or
    SIGTERM stopped the run."""
    if not batch.outcomes:
        raise NanoeditError(f"the run ended with no job (exit {batch.exit_code}): {batch.log}")
    (outcome,) = batch.outcomes
    if outcome.error is not None:
        raise outcome.error
    if batch.stopped:
        saved = ", ".join(map(str, outcome.unwrap().paths))
        raise StoppedError(f"stopped by Ctrl-C or SIGTERM; the job saved {saved}")
    return outcome.unwrap()
