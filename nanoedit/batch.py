"""Many jobs from one command: globs, folders and job files expanded, the list split in shards.

Every expansion is sorted, so the same command gives the same job list in the same order on
every machine; that is what lets ``--shard K/N`` split a batch with no coordination.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from nanoedit.errors import InputError, UsageError
from nanoedit.jobs import (
    Job,
    Options,
    build_edit_jobs,
    normalize_ratio,
    normalize_size,
)
from nanoedit.save import numbered, output_target

T = TypeVar("T")

# Files a folder argument contributes: every image format nanoedit reads.
INPUT_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".avif"}
)
GLOB_CHARS = frozenset("*?[")
# nanoedit's own result names (cat-edit.png, cat-edit-2.jpg): a folder or glob that is edited
# twice would otherwise pick up the first run's results as new inputs.
RESULT_NAME = re.compile(r".-edit(-\d+)?$")
JOB_FILE_KEYS = frozenset({"input", "prompt", "ratio", "size", "ref", "output", "model"})


def _is_url(text: str) -> bool:
    return text.strip().lower().startswith(("http://", "https://"))


def expand_inputs(arguments: Iterable[str], *, recursive: bool = False) -> list[str]:
    """Turn INPUT arguments into one input per job: URLs and files as given, globs (quoted,
    so the shell left them alone) and folders expanded to their images, sorted.

    Expansion leaves out hidden files and nanoedit's own results (``*-edit.png``,
    ``*-edit-2.jpg``); a file named on its own is always taken.
    """
    inputs: list[str] = []
    for text in arguments:
        if _is_url(text) or os.path.isfile(text):
            inputs.append(text)
        elif os.path.isdir(text):
            inputs.extend(_folder_images(Path(text), recursive))
        elif GLOB_CHARS & set(text):
            matches = sorted(
                match
                for match in glob.glob(text, recursive=recursive)
                if os.path.isfile(match) and _is_input(Path(match))
            )
            if not matches:
                raise InputError(f"no image file matches {text}; check the pattern")
            inputs.extend(matches)
        else:
            inputs.append(text)  # a missing file: the input check names it
    return inputs


def _folder_images(folder: Path, recursive: bool) -> list[str]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    images = sorted(
        str(path)
        for path in found
        if path.is_file()
        and _is_input(path)
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    if not images:
        hint = "" if recursive else " (add --recursive to look in its subfolders)"
        raise InputError(f"the folder {folder} holds no images{hint}; pass image files")
    return images


def _is_input(path: Path) -> bool:
    return path.suffix.lower() in INPUT_SUFFIXES and not RESULT_NAME.search(path.stem)


def read_job_file(
    path: str, text: str, options: Options, refs: Sequence[str], output: Path | None
) -> list[Job]:
    """Jobs from a ``--from`` file: one per line, JSON objects or plain paths/URLs.

    A JSON line may give ``input``, ``prompt``, ``ratio``, ``size``, ``ref`` (a list),
    ``output`` and ``model``; what it leaves out comes from the flags. Blank lines and lines
    starting with ``#`` are skipped. Errors name the file and line.
    """
    jobs: list[Job] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path} line {number}"
        try:
            if line.startswith("{"):
                jobs.append(_job_from_object(_load_object(line), options, refs, output))
            else:
                jobs.extend(build_edit_jobs([line], list(refs), options, output))
        except (InputError, UsageError) as exc:
            raise type(exc)(f"{where}: {exc.message}") from None
    if not jobs:
        raise InputError(f"{path} holds no jobs; give one input or JSON object per line")
    return jobs


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
    value: dict[str, Any], options: Options, refs: Sequence[str], output: Path | None
) -> Job:
    source = _text_field(value, "input")
    if not source:
        raise UsageError('the line has no "input"; give the image to edit')
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
    job_options = replace(
        options,
        prompt=prompt.strip() if prompt is not None else options.prompt,
        ratio=normalize_ratio(ratio) if ratio is not None else options.ratio,
        size=normalize_size(size) if size is not None else options.size,
        model=model.strip() or None if model is not None else options.model,
    )
    if prompt is not None and not prompt.strip():
        raise UsageError('the line\'s "prompt" is blank; give text, or leave it out to use -p')
    if not job_options.prompt:
        raise UsageError('the job has no prompt; give "prompt" on the line or -p')
    # "-" is stdout, as on the command line.
    target = output_target(line_output) if line_output else output
    [job] = build_edit_jobs([source], line_refs, job_options, target)
    return job


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


def shard(items: Sequence[T], k: int, n: int) -> list[T]:
    """The K-th of N slices: every N-th item from the K-th, so slices stay even in size."""
    return [item for position, item in enumerate(items) if position % n == k - 1]


def natural_stems(jobs: Sequence[Job]) -> list[tuple[str, ...]]:
    """The names each job's images get in an empty folder, as the whole job list decides them.

    Two jobs with the same stem (``a/cat.png``, ``b/cat.png``) number on: ``cat-edit`` and
    ``cat-edit-2``. Worked out over the whole list before sharding or skipping, so every
    machine and every rerun agrees on them.
    """
    used: set[str] = set()
    stems: list[tuple[str, ...]] = []
    for job in jobs:
        names: list[str] = []
        if job.output is not None:
            stems.append(())  # the user named the file: it takes no generated name
            continue
        number = 1
        while len(names) < job.options.count:
            name = numbered(job.stem, number)
            number += 1
            if name not in used:
                used.add(name)
                names.append(name)
        stems.append(tuple(names))
    return stems
