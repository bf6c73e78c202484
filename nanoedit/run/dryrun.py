"""``--dry-run``: every request a run would send, printed as a runnable curl command (or,
with ``--json``, as one JSON object per request).

Nothing is sent and no key command is run: the key shows masked (or as the ``$(command)``
that prints it), so the output can be pasted into a ticket.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from nanoedit.backends.base import PlannedRequest, PreparedJob, Takes
from nanoedit.jobs import JobOutcome, PlannedJob
from nanoedit.net.http import Deadline, JobHttp, RetryPolicy
from nanoedit.output.imageformat import MIME_TYPES, format_from_suffix, sniff
from nanoedit.quoting import comment, curl_form_file, curl_url, sh_word
from nanoedit.run.routing import make_backend
from nanoedit.settings.secrets import mask_secret
from nanoedit.settings.values import BackendSettings, Settings

if TYPE_CHECKING:
    from nanoedit.run.events import Events
    from nanoedit.run.plan import Planned


def shown_key(settings: BackendSettings) -> str:
    """The key as a dry run shows it: masked, or the command that prints it."""
    if settings.api_key:
        return mask_secret(settings.api_key)
    if settings.api_key_cmd:
        return f"$({settings.api_key_cmd})"
    return "KEY"


def curl_command(request: PlannedRequest, key: str) -> str:
    """One request as a curl command line; ``{key}`` in a header becomes ``key``. Every word
    that holds text from elsewhere (a URL, a header, a prompt, a file name) goes through
    ``nanoedit.quoting``, so the line runs as printed and nothing in it runs but curl."""
    words = ["curl", "-sS", "-X", sh_word(request.method), curl_url(request.url)]
    for name, value in request.headers.items():
        header = f"{name}: {value}"
        if key.startswith("$(") and "{key}" in header:
            # The key command must run when the line is pasted: double quotes let $(...) work.
            before, _, after = header.partition("{key}")
            words += ["-H", f'"{_in_double_quotes(before)}{key}{_in_double_quotes(after)}"']
        else:
            words += ["-H", sh_word(header.replace("{key}", key))]
    parts = [" ".join(words)]
    for name, value in request.fields:
        # --form-string: a prompt starting with @ or < is text, not a file to read.
        parts.append(f"--form-string {sh_word(f'{name}={value}')}")
    for name, location, _mime in request.files:
        if location.lower().startswith(("http://", "https://")):
            filename = location.rsplit("/", 1)[-1].split("?", 1)[0] or "image"
            # bash process substitution: the URL is fetched and sent as a file, as nanoedit does.
            fetch = f"curl -sSL {curl_url(location)}"
            parts.append(
                f"-F {sh_word(name)}=@<({fetch})" + sh_word(f";filename={curl_form_file(filename)}")
            )
        else:
            parts.append(f"-F {sh_word(f'{name}=@{curl_form_file(location)}')}")
    if request.json is not None:
        parts.append("-H 'Content-Type: application/json'")
        body = json.dumps(request.json, ensure_ascii=False)
        if request.inline_files or request.data_uris:
            parts.append("--data-binary @-")
            feed = _json_feed(body, request.inline_files, request.data_uris)
            return f"{feed} |\n" + " \\\n  ".join(parts)
        parts.append(f"-d {sh_word(body)}")
    return " \\\n  ".join(parts)


def _json_feed(
    body: str,
    inline_files: tuple[tuple[str, str], ...],
    data_uris: tuple[tuple[str, str], ...] = (),
) -> str:
    """A shell group that prints ``body`` with each placeholder replaced by the base64 of its
    file or URL (after ``data:TYPE;base64,`` for a data URI): an image's base64 is far too
    long for one command-line argument."""
    entries = [(placeholder, location, "") for placeholder, location in inline_files]
    entries += [
        (placeholder, location, f"data:{_mime_of(location)};base64,")
        for placeholder, location in data_uris
    ]
    entries.sort(key=lambda entry: body.find(entry[0]))
    pieces = []
    rest = body
    for placeholder, location, prefix in entries:
        before, _, rest = rest.partition(placeholder)
        pieces.append(f"printf '%s' {sh_word(before + prefix)}")
        if location.lower().startswith(("http://", "https://")):
            pieces.append(f"curl -sSL {curl_url(location)} | base64 | tr -d '\\n'")
        else:
            pieces.append(f"base64 < {sh_word(location)} | tr -d '\\n'")
    pieces.append(f"printf '%s' {sh_word(rest)}")
    return "{ " + "; ".join(pieces) + "; }"


def request_json(request: PlannedRequest, key: str, planned: PlannedJob) -> dict[str, Any]:
    """One request as the JSON object ``--dry-run --json`` prints, with its job."""
    job = planned.job
    return {
        # Its JSON Schema: nanoedit schema dry-run.
        "schema": "nanoedit/dry-run/1",
        "job": job.label,
        "backend": planned.backend,
        "model": planned.model,
        "names": list(planned.names) if job.output is None else [str(job.output)],
        "method": request.method,
        "url": request.url,
        "headers": {name: value.replace("{key}", key) for name, value in request.headers.items()},
        "fields": dict(request.fields),
        "files": [{"field": name, "source": location} for name, location, _ in request.files],
        "json": request.json,
        "note": request.note or None,
    }


def _mime_of(location: str) -> str:
    """The type a data URI of this file or URL gets: read from a local file's first bytes
    (nanoedit checked it is an image), else named by the extension, else PNG's."""
    if not location.lower().startswith(("http://", "https://")):
        try:
            with open(location, "rb") as handle:
                found = sniff(handle.read(16))
        except OSError:
            found = None
        if found is not None:
            return MIME_TYPES[found]
    name = location.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
    by_name = format_from_suffix(PurePosixPath(name).suffix)
    return MIME_TYPES[by_name] if by_name else MIME_TYPES["png"]


def planned_requests(planned: PlannedJob, settings: Settings) -> list[PlannedRequest]:
    """The requests a planned job would send; nothing is sent (there is no client)."""
    # Shown as a run would send them: a journaled run leaves tasks to resume, not held answers.
    http = JobHttp(None, RetryPolicy(), Deadline(settings.timeout), keep_tasks=settings.history)
    backend = make_backend(planned.backend, settings, http)
    urls = tuple(source.location for source in planned.job.images)
    if backend.takes is Takes.URLS:
        from nanoedit.net.uploads import planned_urls

        urls = planned_urls(planned.job, settings.upload)
    return backend.plan(PreparedJob(job=planned.job, model=planned.model, urls=urls))


def _in_double_quotes(text: str) -> str:
    for char in ("\\", '"', "$", "`"):
        text = text.replace(char, "\\" + char)
    return text


def print_plan(
    planned: Sequence[Planned],
    settings: Settings,
    out: IO[str],
    events: Events,
    json_lines: bool = False,
) -> list[JobOutcome]:
    """Print the requests of each job planning kept, as a real run would send them; returns
    every job's outcome (a refused or skipped one as planning left it)."""
    outcomes = []
    for entry in planned:
        if isinstance(entry, JobOutcome):
            # A skipped job's paths stay off stdout here: it holds commands to paste.
            events.job_finished(replace(entry, outputs=()))
            outcomes.append(entry)
            continue
        outcomes.append(JobOutcome(entry.job, entry.backend, entry.model))
        key = shown_key(settings.backend_settings(entry.backend))
        requests = planned_requests(entry, settings)
        if json_lines:
            for request in requests:
                out.write(json.dumps(request_json(request, key, entry), ensure_ascii=False) + "\n")
            continue
        job = entry.job
        names = ", ".join(entry.names) if job.output is None else str(job.output)
        # A comment holds one line whatever the names hold: a newline in one would start a
        # command of its own for whoever pipes this into sh.
        out.write(f"# {comment(f'{job.label} -> {names} ({entry.backend}, {entry.model})')}\n")
        if job.mask is not None:
            # What curl alone would not do: the answer is put over the input through the mask.
            said = f"the answer is composited over {job.label} through {job.mask.label} (PNG)"
            if job.mask.crop:
                from nanoedit.run.masks import crop_of

                left, top, right, bottom = crop_of(job)
                said += (
                    f"; the model is sent only the box {left},{top},{right - left},"
                    f"{bottom - top} of it, as PNG"
                )
            out.write(f"# {comment(said)}\n")
        for request in requests:
            out.write(curl_command(request, key) + "\n")
            if request.note:
                out.write(f"# {comment(request.note)}\n")
        if job.options.transparent == "matte":
            # The second request edits the first's result, which a dry run does not have.
            out.write(
                "# then a second paid request: an edit of that result, its background made "
                "black (--transparent-method matte)\n"
            )
    out.flush()
    return outcomes
