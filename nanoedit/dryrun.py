"""``--dry-run``: every request a run would send, printed as a runnable curl command (or,
with ``--json``, as one JSON object per request).

Nothing is sent and no key command is run: the key shows masked (or as the ``$(command)``
that prints it), so the output can be pasted into a ticket.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import replace
from typing import IO, Any

from nanoedit.backends.base import PlannedRequest
from nanoedit.config import BackendSettings, Settings, mask_secret
from nanoedit.jobs import Job, JobOutcome
from nanoedit.runner import Events, Runner


def shown_key(settings: BackendSettings) -> str:
    """The key as a dry run shows it: masked, or the command that prints it."""
    if settings.api_key:
        return mask_secret(settings.api_key)
    if settings.api_key_cmd:
        return f"$({settings.api_key_cmd})"
    return "KEY"


def curl_command(request: PlannedRequest, key: str) -> str:
    """One request as a curl command line; ``{key}`` in a header becomes ``key``."""
    words = [shlex.quote(word) for word in ("curl", "-sS", "-X", request.method, request.url)]
    for name, value in request.headers.items():
        header = f"{name}: {value}"
        if key.startswith("$(") and "{key}" in header:
            # The key command must run when the line is pasted: double quotes let $(...) work.
            before, _, after = header.partition("{key}")
            words += ["-H", f'"{_in_double_quotes(before)}{key}{_in_double_quotes(after)}"']
        else:
            words += ["-H", shlex.quote(header.replace("{key}", key))]
    parts = [" ".join(words)]
    for name, value in request.fields:
        # --form-string: a prompt starting with @ or < is text, not a file to read.
        parts.append(f"--form-string {shlex.quote(f'{name}={value}')}")
    for name, location, _mime in request.files:
        if location.lower().startswith(("http://", "https://")):
            filename = location.rsplit("/", 1)[-1].split("?", 1)[0] or "image"
            # bash process substitution: the URL is fetched and sent as a file, as nanoedit does.
            fetch = f"curl -sSL {shlex.quote(location)}"
            parts.append(
                f"-F {shlex.quote(name)}=@<({fetch}){shlex.quote(f';filename={filename}')}"
            )
        else:
            parts.append(f"-F {shlex.quote(f'{name}=@{location}')}")
    if request.json is not None:
        parts.append("-H 'Content-Type: application/json'")
        body = json.dumps(request.json, ensure_ascii=False)
        if request.inline_files:
            parts.append("--data-binary @-")
            return f"{_json_feed(body, request.inline_files)} |\n" + " \\\n  ".join(parts)
        parts.append(f"-d {shlex.quote(body)}")
    return " \\\n  ".join(parts)


def _json_feed(body: str, inline_files: tuple[tuple[str, str], ...]) -> str:
    """A shell group that prints ``body`` with each placeholder replaced by the base64 of its
    file or URL: an image's base64 is far too long for one command-line argument."""
    pieces = []
    rest = body
    for placeholder, location in inline_files:
        before, _, rest = rest.partition(placeholder)
        pieces.append(f"printf '%s' {shlex.quote(before)}")
        if location.lower().startswith(("http://", "https://")):
            pieces.append(f"curl -sSL {shlex.quote(location)} | base64 | tr -d '\\n'")
        else:
            pieces.append(f"base64 < {shlex.quote(location)} | tr -d '\\n'")
    pieces.append(f"printf '%s' {shlex.quote(rest)}")
    return "{ " + "; ".join(pieces) + "; }"


def request_json(request: PlannedRequest, key: str, outcome: JobOutcome) -> dict[str, Any]:
    """One request as the JSON object ``--dry-run --json`` prints, with its job."""
    job = outcome.job
    return {
        "job": job.label,
        "backend": outcome.backend,
        "model": outcome.model,
        "names": list(outcome.stems) if job.output is None else [str(job.output)],
        "method": request.method,
        "url": request.url,
        "headers": {name: value.replace("{key}", key) for name, value in request.headers.items()},
        "fields": dict(request.fields),
        "files": [{"field": name, "source": location} for name, location, _ in request.files],
        "json": request.json,
        "note": request.note or None,
    }


def _in_double_quotes(text: str) -> str:
    for char in ("\\", '"', "$", "`"):
        text = text.replace(char, "\\" + char)
    return text


def print_plan(
    runner: Runner,
    jobs: Sequence[Job],
    settings: Settings,
    out: IO[str],
    events: Events,
    json_lines: bool = False,
) -> list[JobOutcome]:
    """Check the jobs as a real run would, and print the requests of each good one."""
    outcomes = runner.select(jobs)
    for outcome in outcomes:
        if outcome.error is not None or outcome.skipped:
            # A skipped job's paths stay off stdout here: it holds commands to paste.
            events.job_finished(replace(outcome, outputs=[]))
            continue
        assert outcome.backend is not None
        key = shown_key(settings.backend_settings(outcome.backend))
        if json_lines:
            for request in runner.plan(outcome):
                line = json.dumps(request_json(request, key, outcome), ensure_ascii=False)
                out.write(line + "\n")
            continue
        names = ", ".join(outcome.stems) if outcome.job.output is None else str(outcome.job.output)
        out.write(f"# {outcome.job.label} -> {names} ({outcome.backend}, {outcome.model})\n")
        for request in runner.plan(outcome):
            out.write(curl_command(request, key) + "\n")
            if request.note:
                out.write(f"# {request.note}\n")
    out.flush()
    return outcomes
