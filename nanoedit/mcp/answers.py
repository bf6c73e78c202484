"""A tool call's answer: what a run made (absolute paths, sizes, job ids, cost, the model's
text) as structured content and JSON text, small thumbnails when asked, and an error as the
exit code a command line would have ended with, its meaning and a hint."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_types import CallToolResult, ContentBlock, ImageContent, TextContent

from nanoedit.errors import EXIT_MEANINGS, ExitCode, NanoeditError

if TYPE_CHECKING:
    from nanoedit.jobs import JobOutcome
    from nanoedit.session import Finished

# The longest side of a thumbnail, in pixels: enough to see what was made, small enough
# (a few kB) for a model's context.
THUMBNAIL = 256

# What to do next, where a tool's caller is told otherwise than a command line's (each error's
# own ``hint`` speaks of flags and commands): the message says what went wrong, this what a
# client (or the model driving it) can do about it. Other kinds take the error's own hint.
HINTS = {
    "usage": "check the arguments against the tool's input schema",
    "config": "the server's backends are not set up: run `nanoedit config check` in a terminal",
    "auth": "the provider rejected the key: set a valid one with `nanoedit config set`",
    "input": "inputs and the output folder must be inside the server's folders (or inputs "
    "http(s) URLs); list_models and search_history show what can be named",
    "overwrite": "the server never overwrites a file: choose another output folder",
    "output": "the result could not be written: check the disk and the folder's permissions",
    "budget": "the call would cost more than the server allows: ask for fewer or smaller "
    "images (estimate_cost says what a call costs)",
    "interrupted": "the call was stopped: `resume` finishes the jobs left unfinished",
}


def error_answer(error: NanoeditError) -> CallToolResult:
    """A tool error: the ``--json`` error object (kind, message, exit code, hint, the
    provider's own code), with the exit code's meaning and a hint for a tool's caller."""
    from nanoedit.output.report import error_json

    code = ExitCode(error.exit_code)
    body = {
        "ok": False,
        "error": {
            **error_json(error),
            "meaning": EXIT_MEANINGS[code],
            "hint": hint_for(error, code),
        },
    }
    return CallToolResult(
        content=[TextContent(text=json.dumps(body, ensure_ascii=False))],
        structured_content=body,
        is_error=True,
    )


def hint_for(error: NanoeditError, code: ExitCode) -> str:
    """What a tool's caller can do about ``error``: the server's word for its kind (or, for a
    run that a limit or a stop ended, for that), else the error's own hint."""
    kind = {ExitCode.INTERRUPTED: "interrupted", ExitCode.PARTIAL: "budget"}.get(code, "")
    return HINTS.get(error.kind) or HINTS.get(kind) or error.hint


def job_json(outcome: JobOutcome) -> dict[str, Any]:
    """One job as a tool's answer gives it: ``--json``'s object, with absolute paths and the
    job's cost."""
    from nanoedit.output.report import outcome_json

    body = outcome_json(outcome)
    for output in body["outputs"]:
        output["path"] = str(Path(output["path"]).resolve())
    body["cost"] = outcome.cost
    return body


def run_answer(done: Finished, *, thumbnails: bool, extra: dict[str, Any]) -> CallToolResult:
    """What a run made, as the answer to the call that asked for it."""
    code = ExitCode(done.exit_code)
    jobs = [job_json(outcome) for outcome in done.outcomes]
    costs = [outcome.cost for outcome in done.outcomes if outcome.cost is not None]
    body: dict[str, Any] = {
        "ok": code == ExitCode.OK,
        "exit_code": int(code),
        "meaning": EXIT_MEANINGS[code],
        "cost": round(sum(costs), 6) if costs else None,
        "jobs": jobs,
        **extra,
    }
    failures = [outcome.error for outcome in done.outcomes if outcome.error is not None]
    if failures:
        first = failures[0]
        body["hint"] = hint_for(first, ExitCode(first.exit_code))
    content: list[ContentBlock] = [TextContent(text=json.dumps(body, ensure_ascii=False))]
    if thumbnails:
        content += thumbnail_images(done.outcomes)
    return CallToolResult(content=content, structured_content=body, is_error=code != ExitCode.OK)


def thumbnail_images(outcomes: Sequence[JobOutcome]) -> list[ContentBlock]:
    """A small PNG of each image the jobs saved."""
    from PIL import Image

    images: list[ContentBlock] = []
    for outcome in outcomes:
        for saved in outcome.outputs:
            with Image.open(saved.path) as image:
                image.thumbnail((THUMBNAIL, THUMBNAIL))
                data = io.BytesIO()
                image.convert("RGBA" if "A" in image.getbands() else "RGB").save(data, "PNG")
            encoded = base64.b64encode(data.getvalue()).decode("ascii")
            images.append(ImageContent(data=encoded, mime_type="image/png"))
    return images


def plain_answer(body: dict[str, Any]) -> CallToolResult:
    """A successful answer that is data alone (models, history)."""
    return CallToolResult(
        content=[TextContent(text=json.dumps(body, ensure_ascii=False))], structured_content=body
    )
