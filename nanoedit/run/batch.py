"""Many jobs from one command: globs, folders and job files expanded, and their names.

Every expansion is sorted, so the same command gives the same job list in the same order on
every machine; that is what lets ``--shard K/N`` split a batch with no coordination (the
planning step takes the shard's jobs, see :mod:`nanoedit.run.plan`).
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nanoedit.errors import InputError, UsageError
from nanoedit.jobs import (
    Job,
    Options,
    References,
    build_edit_jobs,
    is_history_reference,
    normalize_ratio,
    normalize_size,
    parse_source,
)
from nanoedit.output.imageformat import describe, sniff
from nanoedit.output.names import numbered, output_target
from nanoedit.settings.presets import PRESET_KEYS, Preset, PresetBook

FindPreset = Callable[[str], Preset]
"""Looks up a preset a job-file line names (:meth:`PresetBook.find`)."""

# Extensions that say "image": a file named so whose bytes are not one is reported, not sent.
INPUT_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".avif"}
)
GLOB_CHARS = frozenset("*?[")
# nanoedit's own result names (cat-edit.png, cat-edit-2.jpg): a folder or glob that is edited
# twice would otherwise pick up the first run's results as new inputs.
RESULT_NAME = re.compile(r".-edit(-\d+)?$")
JOB_FILE_KEYS = frozenset({"input", "prompt", "ratio", "size", "ref", "output", "model", "preset"})
# The fields of a line that a preset it names would otherwise set: the line's own win.
LINE_SETTINGS = ("ratio", "size", "model")
# How many names a note about left-out files lists before "and N more".
SHOWN_NAMES = 3


def _is_url(text: str) -> bool:
    return text.strip().lower().startswith(("http://", "https://"))


@dataclass
class _Sorted:
    """A folder's or a glob's files, sorted out by their bytes."""

    images: list[str]
    results: list[str]
    not_images: list[str]

    def left_out(self) -> list[str]:
        """What was left out and why, one clause for each kind."""
        clauses = []
        if self.results:
            clauses.append(
                f"{_count(len(self.results), 'image')} named like nanoedit's results "
                f"({_names(self.results)}); to edit {_them(self.results)}, name "
                f"{_them(self.results)} on the command line"
            )
        if self.not_images:
            clauses.append(
                f"{_count(len(self.not_images), 'file')} named like an image but "
                f"{'not one' if len(self.not_images) == 1 else 'not images'} "
                f"({_names(self.not_images)})"
            )
        return clauses


def expand_inputs(
    arguments: Iterable[str], *, recursive: bool = False, warn: Callable[[str], None]
) -> list[str]:
    """Turn INPUT arguments into one input per job: URLs and files as given, globs (quoted,
    so the shell left them alone) and folders expanded to their images, sorted.

    Expansion goes by a file's bytes, not its extension. It leaves out hidden files and
    non-images silently, and tells ``warn`` of the images named like nanoedit's own results
    (``*-edit.png``, ``*-edit-2.jpg``) and the files named like images that are not; a file
    named on its own is always taken.
    """
    inputs: list[str] = []
    for text in arguments:
        if _is_url(text) or os.path.isfile(text):
            inputs.append(text)
        elif os.path.isdir(text):
            found = _folder_files(Path(text), recursive)
            if not found.images:
                hint = "" if recursive else " (add --recursive to look in its subfolders)"
                raise InputError(
                    _nothing_left(f"the folder {text} holds no images to edit{hint}", found)
                    or f"the folder {text} holds no images{hint}; pass image files"
                )
            inputs.extend(found.images)
            _warn_left_out(text, found, warn)
        elif GLOB_CHARS & set(text):
            # A set: glob gives a file once for each way its ** parts match (in/**/**/*.png).
            found = _sort_out({match for match in _glob(text, recursive) if os.path.isfile(match)})
            if not found.images:
                raise InputError(
                    _nothing_left(f"no image file to edit matches {text}", found)
                    or f"no image file matches {text}; check the pattern"
                )
            inputs.extend(found.images)
            _warn_left_out(text, found, warn)
        else:
            inputs.append(text)  # a missing file (or a stream, such as -): the check names it
    return inputs


def _folder_files(folder: Path, recursive: bool) -> _Sorted:
    return _sort_out(
        str(Path(inside) / name)
        for inside, names in _walk(str(folder), recursive)
        for name in names
    )


def _walk(top: str, recursive: bool) -> Iterator[tuple[str, list[str]]]:
    """``top`` and, when ``recursive``, each folder under it, with the names of its files
    (a link to a file is a file); hidden ones left out, in a fixed order.

    A link to a folder is never gone down: a link to the folder itself or to one above it
    would make the walk endless (two such links, exponential), and a link to a folder of the
    tree would give its images twice. What only a link leads to is taken when it is named
    on the command line.
    """
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            # scandir knows a file from the directory entry: no stat for each of 20,000 files.
            with os.scandir(folder) as found:
                entries = [entry for entry in found if not entry.name.startswith(".")]
        except OSError:
            if folder == top:
                raise
            continue  # an unreadable subfolder is passed over, as glob passes it over
        if recursive:
            below = (entry.path for entry in entries if entry.is_dir(follow_symlinks=False))
            pending.extend(sorted(below, reverse=True))
        yield folder, [entry.name for entry in entries if entry.is_file()]


def _glob(pattern: str, recursive: bool) -> Iterator[str]:
    """What ``glob.glob(pattern, recursive=recursive)`` finds, except that a ``**`` part goes
    down only the folders a recursive folder does (:func:`_walk`), so a link that
    loops cannot make it endless. The parts the pattern spells out are glob's, links and all:
    the user named them."""
    parts = pattern.split("/")
    if not recursive or "**" not in parts:
        yield from glob.iglob(pattern)
        return
    at = parts.index("**")
    head = "/".join(parts[:at]) or ("/" if at else "")
    for base in glob.iglob(head) if head else [""]:
        if not os.path.isdir(base or "."):
            continue
        for folder, _ in _walk(base or ".", recursive=True):
            # Relative to the current folder, a match is named as glob names it: no "./".
            where = folder if base else folder.removeprefix(".").removeprefix("/")
            rest = "/".join(parts[at + 1 :]) if at + 1 < len(parts) else "*"
            yield from _glob(os.path.join(glob.escape(where), rest), recursive)


def _sort_out(names: Iterable[str]) -> _Sorted:
    """Images (by their first bytes) in sorted order; results and false images set apart."""
    found = _Sorted([], [], [])
    for name in sorted(names):
        path = Path(name)
        named_image = path.suffix.lower() in INPUT_SUFFIXES
        try:
            with path.open("rb") as handle:
                head = handle.read(512)
        except OSError:
            head = None  # unreadable: an image by its name goes on, and its check says why
        if head is not None and sniff(head) is None:
            if named_image:
                found.not_images.append(f"{name}: {describe(head)}")
            continue
        if head is None and not named_image:
            continue
        if RESULT_NAME.search(path.stem):
            found.results.append(name)
        else:
            found.images.append(name)
    return found


def _warn_left_out(text: str, found: _Sorted, warn: Callable[[str], None]) -> None:
    for clause in found.left_out():
        warn(f"{text}: left out {clause}")


def _nothing_left(start: str, found: _Sorted) -> str:
    """The error for a folder or glob that gave no image, saying what it left out, if any."""
    clauses = found.left_out()
    return f"{start}; left out {'; and '.join(clauses)}" if clauses else ""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _them(items: Sequence[str]) -> str:
    return "it" if len(items) == 1 else "them"


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN_NAMES])
    more = len(items) - SHOWN_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def read_job_file(
    path: str,
    text: str,
    options: Options,
    refs: Sequence[str],
    output: Path | None,
    *,
    folder: str = "",
    references: References | None = None,
    presets: FindPreset | None = None,
) -> list[Job]:
    """Jobs from a ``--from`` file: one per line, JSON objects or plain paths/URLs.

    A JSON line may give ``input``, ``prompt``, ``ratio``, ``size``, ``ref`` (a list),
    ``output``, ``model`` and ``preset`` (looked up with ``presets``, or among the built-in
    ones: its settings for this job, and its template for the prompt); what it leaves out
    comes from the flags. Relative paths on a line start from ``folder``, the job file's own
    ("" for stdin: the current folder), and every local image must exist. Blank lines, lines
    starting with ``#`` and a UTF-8 byte order mark are skipped. Errors name the file and line.
    """
    jobs: list[Job] = []
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path} line {number}"
        try:
            if line.startswith("{"):
                value = _load_object(line)
                line_options = _with_preset(value, options, presets)
                jobs.append(_job_from_object(value, line_options, refs, output, folder, references))
            else:
                source = _from_folder(line, folder, references)
                jobs.extend(build_edit_jobs([source], list(refs), options, output, references))
        except (InputError, UsageError) as exc:
            raise type(exc)(f"{where}: {exc.message}") from None
    if not jobs:
        raise InputError(f"{path} holds no jobs; give one input or JSON object per line")
    return jobs


def _from_folder(text: str, folder: str, references: References | None) -> str:
    """An image named on a job-file line, as a path from the current folder; a local file must
    exist, so that no job is sent before every line is known to be good."""
    source = parse_source(text, references)  # refuses file:// and the like before any path is made
    if source.is_url:
        return text
    if is_history_reference(text):
        return source.location  # an earlier result: the path it was saved to, checked there
    if source.is_stdin:
        raise UsageError("- (stdin) cannot be an image in a job file; give the image's path")
    path = _joined(folder, text)
    if not os.path.exists(path):
        looked = f" (looked for {path}: a job file's paths start from its folder)" if folder else ""
        raise InputError(f"{text} does not exist{looked}; check the path")
    return path


def _joined(folder: str, text: str) -> str:
    return os.path.join(folder, text) if folder and not os.path.isabs(text) else text


def _load_object(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UsageError(f"not valid JSON ({exc.msg}); fix the line") from None
    if not isinstance(value, dict):
        raise UsageError("not a JSON object; give one object or one path per line")
    unknown = sorted(set(value) - JOB_FILE_KEYS)
    if unknown:
        raise UsageError(
            f'unknown field "{unknown[0]}"; the fields are: {", ".join(sorted(JOB_FILE_KEYS))}'
        )
    return value


def _json_kind(value: object) -> str:
    """What a JSON value is, in JSON's words."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else "a string"


def _text_field(value: dict[str, Any], key: str) -> str | None:
    field = value.get(key)
    if field is None:
        return None
    if not isinstance(field, str):
        raise UsageError(f'the field "{key}" must be a string, not {_json_kind(field)}')
    return field


def _job_from_object(
    value: dict[str, Any],
    options: Options,
    refs: Sequence[str],
    output: Path | None,
    folder: str,
    references: References | None,
) -> Job:
    source = _text_field(value, "input")
    if not source:
        raise UsageError('the line has no "input"; give the image to edit')
    source = _from_folder(source, folder, references)
    prompt = _text_field(value, "prompt")
    ratio = _text_field(value, "ratio")
    size = _text_field(value, "size")
    model = _text_field(value, "model")
    line_output = _text_field(value, "output")
    line_refs = value.get("ref", list(refs))
    if isinstance(line_refs, str):
        line_refs = [line_refs]
    if not isinstance(line_refs, list) or not all(isinstance(ref, str) for ref in line_refs):
        raise UsageError('the field "ref" must be a list of paths or URLs')
    if "ref" in value:  # the flags' references are paths from the current folder, as given
        line_refs = [_from_folder(ref, folder, references) for ref in line_refs]
    job_options = replace(
        options,
        prompt=prompt.strip() if prompt is not None else options.prompt,
        ratio=normalize_ratio(ratio) if ratio is not None else options.ratio,
        size=normalize_size(size) if size is not None else options.size,
        model=model.strip() or None if model is not None else options.model,
    )
    if prompt is not None and not prompt.strip():
        raise UsageError('the line\'s "prompt" is blank; give text, or leave it out to use -p')
    if not job_options.prompt and job_options.preset is None:
        # With a preset, its template says whether a prompt is wanted (run.presets).
        raise UsageError('the job has no prompt; give "prompt" on the line or -p')
    # "-" is stdout, as on the command line; other paths start from the job file's folder.
    target = (
        output_target(line_output if line_output == "-" else _joined(folder, line_output))
        if line_output
        else output
    )
    [job] = build_edit_jobs([source], line_refs, job_options, target, references)
    return job


def _with_preset(value: dict[str, Any], options: Options, presets: FindPreset | None) -> Options:
    """The run's options with the settings of the preset a line names (``"preset"``), which
    win over the command line's for this job, as the line's own fields do, and lose to them;
    the line's prompt goes into that preset's template (:mod:`nanoedit.run.presets`)."""
    name = _text_field(value, "preset")
    if name is None:
        return options
    preset = (presets or PresetBook.built_in().find)(name.strip())
    run_keys = preset.run_keys()
    if run_keys:
        per_job = ", ".join(key.name for key in PRESET_KEYS if key.per_job)
        raise UsageError(
            f"the preset {preset.name} sets {', '.join(run_keys)}, which is the whole run's, not "
            f"one job's (a line's preset may set: {per_job}); give --preset {preset.name} on the "
            "command line instead"
        )
    given = [key for key in LINE_SETTINGS if value.get(key) is not None]
    return replace(options, preset=preset.name, **preset.values(given))


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` as two numbers, 1 <= K <= N."""
    try:
        index, _, total = text.partition("/")
        k, n = int(index), int(total)
    except ValueError:
        k = n = 0
    if n < 1 or not 1 <= k <= n:
        raise UsageError(f"invalid shard {text!r}; give K/N with 1 <= K <= N, such as 2/4")
    return k, n


def natural_stems(jobs: Sequence[Job]) -> list[tuple[str, ...]]:
    """The names each job's images get in an empty folder, as the whole job list decides them.

    Two jobs with the same stem (``a/cat.png``, ``b/cat.png``) number on: ``cat-edit`` and
    ``cat-edit-2``. Worked out over the whole list before sharding or skipping, so every
    machine and every rerun agrees on them.
    """
    used: set[str] = set()
    # Per job stem, the number to try next: every name below it is used, and stays used, so
    # a list of many jobs of one stem is named in one pass.
    next_number: dict[str, int] = {}
    stems: list[tuple[str, ...]] = []
    for job in jobs:
        names: list[str] = []
        if job.output is not None:
            stems.append(())  # the user named the file: it takes no generated name
            continue
        number = next_number.get(job.stem, 1)
        while len(names) < job.options.count:
            name = numbered(job.stem, number)
            number += 1
            if name not in used:
                used.add(name)
                names.append(name)
        next_number[job.stem] = number
        stems.append(tuple(names))
    return stems
