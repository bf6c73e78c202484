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

from nanoedit.errors import ExitCode, NanoeditError

if TYPE_CHECKING:
    from nanoedit.jobs import JobOutcome
    from nanoedit.session import Finished

# The longest side of a thumbnail, in pixels: enough to see what was made, small enough
# (a few kB) for a model's context.
THUMBNAIL = 256

# What each exit code means, as the command line's documentation says.
MEANINGS = {
    ExitCode.OK: "every job saved its images",
    ExitCode.INTERNAL: "an internal error",
    ExitCode.USAGE: "a bad argument or value",
    ExitCode.CONFIG: "no backend is set up, or a key was rejected",
    ExitCode.INPUT: "an input or output path cannot be used",
    ExitCode.API: "the provider answered with an error, or without an image",
    ExitCode.NETWORK: "the provider could not be reached",
    ExitCode.PARTIAL: "some jobs failed, or a cost limit stopped the call",
    ExitCode.REFUSED: "the provider refused the content",
    ExitCode.INTERRUPTED: "the call was stopped",
}

# What to do next, by the error's kind: the message says what went wrong, this what a client
# (or the model driving it) can do about it.
HINTS = {
    "usage": "check the arguments against the tool's input schema",
    "config": "the server's backends are not set up: run `nanoedit config check` in a terminal",
    "auth": "the provider rejected the key: set a valid one with `nanoedit config set`",
    "input": "inputs and the output folder must be inside the server's folders (or inputs "
    "http(s) URLs); list_models and search_history show what can be named",
    "overwrite": "the server never overwrites a file: choose another output folder",
    "output": "the result could not be written: check the disk and the folder's permissions",
    "api": "the provider failed: try again later, or another model (list_models)",
    "network": "the provider could not be reached: try again later",
    "refused": "the provider refused the prompt or image: rephrase it; the same request is "
    "refused again",
    "budget": "the call would cost more than the server allows: ask for fewer or smaller "
    "images (estimate_cost says what a call costs)",
    "interrupted": "the call was stopped: `resume` finishes the jobs left unfinished",
}


def error_answer(error: NanoeditError) -> CallToolResult:
    """A tool error: the exit code, its meaning, the kind, the message and a hint."""
    code = ExitCode(error.exit_code)
    body = {
        "ok": False,
        "error": {
            "exit_code": int(code),
            "meaning": MEANINGS.get(code, code.name.lower()),
            "kind": error.kind,
            "message": error.message,
            "hint": HINTS.get(error.kind, HINTS.get(_kind_of(code), "")),
        },
    }
    return CallToolResult(
        content=[TextContent(text=json.dumps(body, ensure_ascii=False))],
        structured_content=body,
        is_error=True,
    )


def _kind_of(code: ExitCode) -> str:
    """The hint's kind for an exit code whose error's kind has none of its own."""
    return {ExitCode.INTERRUPTED: "interrupted", ExitCode.PARTIAL: "budget"}.get(code, "")


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
        "meaning": MEANINGS.get(code, code.name.lower()),
        "cost": round(sum(costs), 6) if costs else None,
        "jobs": jobs,
        **extra,
    }
    failures = [outcome.error for outcome in done.outcomes if outcome.error is not None]
    if failures:
        first = failures[0]
        body["hint"] = HINTS.get(first.kind, "")
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
