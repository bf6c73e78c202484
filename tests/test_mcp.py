"""``nanoedit mcp`` driven by a real MCP client: the official SDK's stdio client spawns the
installed command, which edits against a sandbox served on loopback (its requests counted).
"""

from __future__ import annotations

import base64
import io
import json
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from conftest import (
    NANOEDIT,
    OPENAI_KEY,
    Served,
    backend_env,
    config_file,
    image_info,
    journal_jobs,
    paid,
    received,
    run_installed,
)
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_types import CallToolResult, ImageContent, ListRootsResult, Root, TextContent
from PIL import Image

from nanoedit.jobs import RATIOS, SIZES
from nanoedit.sandbox import Sandbox, SandboxServer, sample_image

Client = Callable[[ClientSession], Awaitable[None]]
TOOLS = {
    "edit_image": ["images", "prompt"],
    "generate_image": ["prompt"],
    "continue_edit": ["result", "prompt"],
    "estimate_cost": ["prompt"],
    "list_models": [],
    "search_history": ["text"],
    "resume": ["ids"],
}


def with_server(
    args: list[str],
    env: dict[str, str],
    work: Path,
    client: Client,
    roots: list[Path] | None = None,
) -> str:
    """Spawn ``nanoedit mcp ARGS`` in ``work`` with ``env`` (over the test's own variables),
    run ``client`` on a session with it (a client that gives ``roots``, when given), and
    return what the server wrote on stderr."""
    errlog = work.parent / "mcp-stderr.log"

    async def list_roots(context: Any) -> ListRootsResult:
        assert roots is not None
        return ListRootsResult(
            roots=[Root.model_validate({"uri": root.as_uri()}) for root in roots]
        )

    async def main() -> None:
        params = StdioServerParameters(
            command=NANOEDIT, args=["mcp", *args], cwd=work, env=dict(os.environ) | env
        )
        with errlog.open("w") as log:
            async with (
                stdio_client(params, errlog=log) as (read, write),
                ClientSession(
                    read, write, list_roots_callback=None if roots is None else list_roots
                ) as session,
            ):
                await session.initialize()
                await client(session)

    anyio.run(main)
    return errlog.read_text()


def body(result: CallToolResult) -> dict[str, Any]:
    """A tool's structured answer, checked to be what its text content says too."""
    text = result.content[0]
    assert isinstance(text, TextContent)
    assert isinstance(result.structured_content, dict)
    assert json.loads(text.text) == result.structured_content
    return result.structured_content


def outside_cat(tmp_path: Path) -> Path:
    """A real image outside the working folder (the server's only folder)."""
    folder = tmp_path / "outside"
    folder.mkdir(exist_ok=True)
    path = folder / "cat.png"
    path.write_bytes(sample_image("cat.png")[0])
    return path


def test_the_tools_are_listed_with_their_required_arguments_and_choices(
    isolated: Path, served: Served
) -> None:
    listed: dict[str, Any] = {}

    async def client(session: ClientSession) -> None:
        tools = await session.list_tools()
        listed.update({tool.name: tool.input_schema for tool in tools.tools})

    with_server([], backend_env(served), isolated, client)
    assert {name: schema.get("required", []) for name, schema in listed.items()} == TOOLS
    edit = listed["edit_image"]["properties"]
    assert edit["ratio"]["enum"] == list(RATIOS)
    assert edit["size"]["enum"] == list(SIZES)
    assert {"nano-banana", "nano-banana-pro", "gemini-3-pro-image"} <= set(edit["model"]["enum"])
    assert received(served) == []


def test_an_edit_saves_the_file_and_answers_with_its_path_size_job_and_thumbnail(
    isolated: Path, sample: Path, served: Served
) -> None:
    answers: list[CallToolResult] = []
    reported: list[tuple[float, float | None, str | None]] = []

    async def noted(progress: float, total: float | None, message: str | None) -> None:
        reported.append((progress, total, message))

    async def client(session: ClientSession) -> None:
        answers.append(
            await session.call_tool(
                "edit_image",
                {"images": ["cat.png"], "prompt": "make it night", "thumbnails": True},
                progress_callback=noted,
            )
        )
        answers.append(
            await session.call_tool("continue_edit", {"result": "@last", "prompt": "add a moon"})
        )
        answers.append(await session.call_tool("search_history", {"text": "night"}))

    stderr = with_server([], backend_env(served), isolated, client)
    edited, continued, history = answers
    assert reported == [(0, 1, "working"), (1, 1, "done")]
    assert not edited.is_error, edited.structured_content
    answer = body(edited)
    (job,) = answer["jobs"]
    (output,) = job["outputs"]
    path = Path(output["path"])
    assert path == isolated / "cat-edit.jpg"
    assert image_info(path) == ("JPEG", (output["width"], output["height"]))
    assert (job["job"], job["state"], job["backend"], answer["exit_code"]) == (
        1,
        "saved",
        "openai",
        0,
    )
    assert output["bytes"] == path.stat().st_size
    thumbnail = edited.content[1]
    assert isinstance(thumbnail, ImageContent) and thumbnail.mime_type == "image/png"
    with Image.open(io.BytesIO(base64.b64decode(thumbnail.data))) as small:
        assert small.format == "PNG" and max(small.size) == 256
    # The next turn goes on from the first one's result, and is job 2 of the journal.
    assert not continued.is_error, continued.structured_content
    (turn,) = body(continued)["jobs"]
    assert turn["job"] == 2 and turn["inputs"] == [str(path)]
    assert Path(turn["outputs"][0]["path"]).parent == isolated
    assert [found["id"] for found in body(history)["jobs"]] == [1]
    assert body(history)["jobs"][0]["outputs"] == [str(path)]
    assert len(paid(served)) == 2
    every_answer = json.dumps([a.model_dump(mode="json") for a in answers])
    assert OPENAI_KEY not in every_answer and OPENAI_KEY not in stderr


def test_paths_that_escape_the_folder_are_refused_before_any_request(
    isolated: Path, tmp_path: Path, served: Served
) -> None:
    outside = outside_cat(tmp_path)
    (isolated / "link.png").symlink_to(outside)
    (isolated / "away").symlink_to(outside.parent)
    (isolated / "cat.png").write_bytes(sample_image("cat.png")[0])
    calls: list[dict[str, Any]] = [
        {"images": ["../outside/cat.png"]},
        {"images": [str(outside)]},
        {"images": ["link.png"]},
        {"images": ["cat.png"], "refs": ["away/cat.png"]},
        {"images": ["cat.png"], "output_folder": "../outside"},
        {"images": ["cat.png"], "output_folder": "away"},
        {"images": ["cat.png"], "output_folder": str(tmp_path)},
        {"images": ["*.png"]},
        {"images": ["."]},
    ]
    errors: list[dict[str, Any]] = []

    async def client(session: ClientSession) -> None:
        for arguments in calls:
            result = await session.call_tool("edit_image", {"prompt": "x", **arguments})
            assert result.is_error
            errors.append(body(result)["error"])

    with_server([], backend_env(served), isolated, client)
    assert [(error["exit_code"], error["kind"]) for error in errors] == [(4, "input")] * 9
    assert errors[0]["message"] == (
        f"the input ../outside/cat.png is outside the folders this MCP server may read "
        f"({isolated}); copy it into one of them, or give an http(s) URL"
    )
    assert errors[4]["message"] == (
        f"the output folder ../outside is outside the folders this MCP server may write to "
        f"({isolated}); give a folder inside one of them"
    )
    assert errors[7]["message"].startswith("the input *.png is a pattern")
    assert errors[8]["message"].startswith("the input . is a folder")
    assert received(served) == []
    assert sorted(path.name for path in isolated.iterdir()) == ["away", "cat.png", "link.png"]


def test_a_call_over_the_cost_limits_is_refused_before_any_request(
    isolated: Path, sample: Path, served: Served
) -> None:
    answers: list[dict[str, Any]] = []

    async def client(session: ClientSession) -> None:
        for arguments in (
            {"count": 2},  # $0.134 estimated: over the call's $0.10
            {},  # $0.067: within both limits
            {},  # $0.067 again: over the $0.033 the session has left
        ):
            result = await session.call_tool(
                "edit_image", {"images": ["cat.png"], "prompt": "night", **arguments}
            )
            answers.append(body(result))
        estimate = await session.call_tool("estimate_cost", {"prompt": "x", "images": ["cat.png"]})
        answers.append(body(estimate))

    args = ["--max-cost", "0.10", "--session-max-cost", "0.10"]
    with_server(args, backend_env(served), isolated, client)
    over_call, within, over_session, estimate = answers
    assert over_call["error"]["exit_code"] == 7 and over_call["error"]["kind"] == "budget"
    assert over_call["error"]["message"] == (
        "the batch is estimated at $0.134 for 2 images, over --max-cost $0.10; nothing was "
        "sent: raise --max-cost, or send fewer jobs"
    )
    assert within["ok"] and within["cost"] == 0.067
    assert within["session_spent"] == 0.067
    assert over_session["error"]["kind"] == "budget"
    assert "over --max-cost $0.033" in over_session["error"]["message"]
    assert (estimate["cost"], estimate["sent"], estimate["within_limit"]) == (0.067, 0, False)
    # One edit paid; the refused calls and the estimate sent nothing.
    assert len(paid(served)) == 1


def test_the_clients_roots_replace_the_servers_folder(
    isolated: Path, tmp_path: Path, served: Served
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "cat.png").write_bytes(sample_image("cat.png")[0])
    (isolated / "dog.png").write_bytes(sample_image("cat.png")[0])
    answers: list[CallToolResult] = []

    async def client(session: ClientSession) -> None:
        for images in (["cat.png"], [str(isolated / "dog.png")]):
            answers.append(await session.call_tool("edit_image", {"images": images, "prompt": "x"}))

    with_server([], backend_env(served), isolated, client, roots=[project])
    edited, refused = answers
    assert not edited.is_error, edited.structured_content
    assert body(edited)["jobs"][0]["outputs"][0]["path"] == str(project / "cat-edit.jpg")
    assert body(refused)["error"]["message"] == (
        f"the input {isolated / 'dog.png'} is outside the folders this MCP server may read "
        f"({project}); copy it into one of them, or give an http(s) URL"
    )
    assert len(paid(served)) == 1
    assert sorted(path.name for path in isolated.iterdir()) == ["dog.png"]


def test_estimates_models_and_history_send_nothing_and_a_second_edit_keeps_the_first(
    isolated: Path, sample: Path, served: Served
) -> None:
    answers: dict[str, CallToolResult] = {}
    config = config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("bogus_key = 1\n")
    config.chmod(0o600)

    async def client(session: ClientSession) -> None:
        answers["estimate"] = await session.call_tool(
            "estimate_cost", {"prompt": "x", "images": ["cat.png"], "count": 3}
        )
        answers["models"] = await session.call_tool("list_models", {})
        answers["empty"] = await session.call_tool("search_history", {"text": "night"})
        answers["model"] = await session.call_tool(
            "edit_image", {"images": ["cat.png"], "prompt": "x", "model": "no-such-model"}
        )
        for turn in ("first", "second"):
            answers[turn] = await session.call_tool(
                "edit_image", {"images": ["cat.png"], "prompt": "night", "output_folder": "out"}
            )

    with_server([], backend_env(served), isolated, client)
    estimate = body(answers["estimate"])
    assert (estimate["jobs"], estimate["images"], estimate["cost"]) == (1, 3, 0.201)
    assert (
        estimate["description"]
        == "1 job, 3 images, estimated $0.201 (gemini-3.1-flash-image at $0.067)"
    )
    assert estimate["within_limit"] is True and estimate["limit"] is None
    models = {model["id"]: model for model in body(answers["models"])["models"]}
    assert models["gemini-3-pro-image"]["price_1k"] == 0.134
    assert body(answers["empty"]) == {"jobs": []}
    # A model the schema's enum does not list is refused before anything is sent.
    assert body(answers["model"])["error"] == {
        "exit_code": 2,
        "meaning": "a bad option or value; nothing was sent",
        "kind": "usage",
        "message": "no-such-model is not a model of the catalog; name one that list_models "
        "lists (an alias such as nano-banana, or a model's id)",
        "hint": "check the arguments against the tool's input schema",
        "provider_code": None,
    }
    saved = [
        Path(body(answers[turn])["jobs"][0]["outputs"][0]["path"]) for turn in ("first", "second")
    ]
    assert saved == [isolated / "out" / "cat-edit.jpg", isolated / "out" / "cat-edit-2.jpg"]
    # What the run warned of on stderr comes back with the answer.
    assert body(answers["first"])["warnings"] == [
        f"the config file {config} has a key nanoedit does not know, and ignores: bogus_key; "
        "correct or remove it"
    ]
    assert [job.state for job in journal_jobs()] == ["saved", "saved"]
    assert len(paid(served)) == 2


def test_resume_takes_up_only_jobs_that_save_inside_the_folders(
    isolated: Path, tmp_path: Path, served: Served
) -> None:
    outside = outside_cat(tmp_path)
    env = backend_env(served)
    answers: list[dict[str, Any]] = []

    async def first(session: ClientSession) -> None:
        await session.call_tool("edit_image", {"images": ["cat.png"], "prompt": "x"})

    async def second(session: ClientSession) -> None:
        answers.append(body(await session.call_tool("resume", {"ids": [1]})))
        # No ids: the schema wants one at least, and the server runs nothing.
        refused = await session.call_tool("resume", {"ids": []})
        assert refused.is_error and refused.structured_content is None

    # Job 1 saved into the outside folder: a server started there made it.
    with_server([], env, outside.parent, first)
    with_server([], env, isolated, second)
    (refused,) = answers
    assert refused["error"]["message"] == (
        f"job 1 saves to {outside.parent}, outside the folders this MCP server may write to "
        f"({isolated}); resume it in a terminal: nanoedit resume 1"
    )
    assert len(paid(served)) == 1


def test_a_root_that_is_no_folder_stops_the_server_at_once(isolated: Path) -> None:
    code, stdout, stderr = run_installed(["mcp", "--root", "missing"], isolated, {})
    assert (code, stdout) == (2, "")
    assert stderr == (
        "error: the folder missing the MCP server is to work in is not a folder; give an "
        "existing folder with --root\n"
    )


def test_a_clients_cancel_drains_the_call_as_ctrl_c_drains_a_run(isolated: Path) -> None:
    # Three images, one job at a time; the sandbox holds its answers until told, and says
    # when a request has come.
    for name in ("a.png", "b.png", "c.png"):
        (isolated / name).write_bytes(sample_image("cat.png")[0])
    arrived = threading.Event()
    release = threading.Event()

    def hold(seconds: float) -> None:
        arrived.set()
        release.wait(seconds)

    sandbox = Sandbox(keys=frozenset({OPENAI_KEY}), latency=60, sleep=hold)
    answered: list[CallToolResult] = []
    later: list[CallToolResult] = []
    history: list[CallToolResult] = []
    cancelled = anyio.Event()

    async def client(session: ClientSession) -> None:
        async def edit() -> None:
            with anyio.CancelScope() as scope:
                cancel_scopes.append(scope)
                answered.append(
                    await session.call_tool(
                        "edit_image", {"images": ["a.png", "b.png", "c.png"], "prompt": "night"}
                    )
                )
            cancelled.set()

        cancel_scopes: list[anyio.CancelScope] = []
        async with anyio.create_task_group() as group:
            group.start_soon(edit)
            await anyio.to_thread.run_sync(arrived.wait)
            # The SDK's client sends notifications/cancelled as its call is cancelled.
            cancel_scopes[0].cancel()
            await cancelled.wait()
            # A request sent after the cancel is read after it: when its answer is back, the
            # server has told the run to drain; only then does the held answer come.
            await session.call_tool("list_models", {})
            release.set()
        # Paid calls run one at a time: this one (refused by its cost limit, sending nothing)
        # is answered once the drained run has ended.
        later.append(
            await session.call_tool(
                "edit_image", {"images": ["a.png"], "prompt": "later", "max_cost": 0}
            )
        )
        history.append(await session.call_tool("search_history", {"text": "night"}))

    try:
        with SandboxServer(sandbox) as server:
            served = Served(sandbox, server.base_url)
            with_server(["-j", "1"], backend_env(served, duomi=False), isolated, client)
    finally:
        release.set()
    assert answered == []
    # Exactly the one paid request under way at the cancel went out, then its image's
    # download; nothing after it.
    sent = [(r.method, r.path.partition("/files/")[0] or "/files/") for r in received(served)]
    assert sent == [("POST", "/v1/images/edits"), ("GET", "/files/")]
    assert len(paid(served)) == 1
    saved = isolated / "a-edit.jpg"
    assert image_info(saved)[0] == "JPEG"
    assert sorted(p.name for p in isolated.glob("*-edit*")) == ["a-edit.jpg"]
    assert (body(later[0])["error"]["kind"], body(later[0])["error"]["exit_code"]) == ("budget", 7)
    jobs = sorted(body(history[0])["jobs"], key=lambda job: job["id"])
    assert [(job["id"], job["state"], job["outputs"]) for job in jobs] == [
        (1, "saved", [str(saved)]),
        (2, "planned", []),
        (3, "planned", []),
    ]


def test_the_image_tools_take_the_provider_dials_and_refuse_them_before_sending(
    isolated: Path, served: Served
) -> None:
    listed: dict[str, Any] = {}
    answers: list[CallToolResult] = []

    async def client(session: ClientSession) -> None:
        tools = await session.list_tools()
        listed.update({tool.name: tool.input_schema for tool in tools.tools})
        prompt = {"prompt": "a red fox", "model": "nano-banana-2"}
        for dials in ({"thinking": "high"}, {"seed": 8, "format": "webp"}):
            answers.append(await session.call_tool("generate_image", {**prompt, "dials": dials}))

    with_server(["--backend", "fal"], backend_env(served, fal=True), isolated, client)
    for tool in ("edit_image", "generate_image", "continue_edit", "estimate_cost"):
        assert set(listed[tool]["properties"]["dials"]["properties"]) == {
            "seed", "thinking", "search", "image_only", "format", "safety", "quality",
            "input_fidelity",
        }  # fmt: skip
    refused, made = answers
    assert refused.is_error
    (job,) = body(refused)["jobs"]
    assert (job["sent"], job["error"]["exit_code"], job["error"]["message"]) == (
        False,
        2,
        "--thinking is not sent by the fal backend for Nano Banana 2; backends that take it for "
        "Nano Banana 2: gemini, vertex (choose one with --backend), or drop --thinking",
    )
    assert not made.is_error, made.structured_content
    (job,) = body(made)["jobs"]
    (output,) = job["outputs"]
    assert output["path"] == str(isolated / "a-red-fox.webp")
    assert image_info(output["path"])[0] == "WEBP"
    # The refused call sent nothing: the one paid request is the second call's.
    [submit] = paid(served)
    assert (submit.json["seed"], submit.json["output_format"]) == (8, "webp")
