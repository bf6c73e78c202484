"""An agent evaluation: a scripted client (no model) given the tasks an agent gets, through
both faces an agent sees, against a sandbox served on loopback:

    .venv/bin/python benchmarks/agent_eval.py --quick    # ~20 s, prints the table

- MCP: the official ``mcp`` SDK's stdio client spawns ``nanoedit mcp`` and calls its tools,
  checking each tool's schema (its enums) before it asks.
- CLI: command lines built only from ``nanoedit --usage --json``: the client looks each
  option up there by its name, and stops if it is not found (it never guesses a flag).

Each task checks the files written, the paid requests the server logged, the cost and exit
code. A task the tool cannot do must be refused clearly (a message naming the value, and no
request), never guessed. Prints one markdown table; exits 1 if any task FAILs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crash import PAID, backend_env, clean_env, serving, write_inputs

BACKEND = "gemini"
NANOEDIT = (sys.executable, "-m", "nanoedit")
RUN_TIMEOUT = 120.0
# A dry run's summary on stderr: "N jobs, N images, estimated $X (MODEL at $Y)".
ESTIMATE = re.compile(r"estimated \$([0-9.]+)")


@dataclass(frozen=True)
class Row:
    """One task's outcome on one face."""

    task: str
    face: str
    result: str
    files: int
    requests: int
    cost: str
    exit_code: int
    passed: bool


class Usage:
    """``nanoedit --usage --json``, the only place the CLI client learns its flags from."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.commands = {c["name"]: c for c in document["command"]["commands"]}

    def flag(self, command: str, name: str) -> str:
        """The long flag of option ``name`` of ``command``; an error if usage lacks it."""
        for param in self.commands[command]["params"]:
            if param["name"] == name and param["kind"] == "option":
                return str(param["flags"][0])
        raise LookupError(f"`nanoedit {command}` has no option {name!r} in --usage --json")

    def choices(self, command: str, name: str) -> list[str] | None:
        """The choices usage lists for option ``name`` (None: free-form)."""
        for param in self.commands[command]["params"]:
            if param["name"] == name:
                choices = param["choices"]
                return None if choices is None else [str(c) for c in choices]
        raise LookupError(f"`nanoedit {command}` has no option {name!r} in --usage --json")


class Server:
    """The served sandbox's request log: paid requests counted since a mark."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path

    def mark(self) -> int:
        """Where the log ends now."""
        return self.log_path.stat().st_size

    def paid_since(self, offset: int) -> int:
        """Paid requests the server logged after ``offset``."""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        return sum(1 for line in text.splitlines() if PAID.search(line))


def images(folder: Path) -> set[Path]:
    """Every result image in ``folder`` (what a task wrote is the difference)."""
    return {p for p in folder.rglob("*") if p.suffix in (".jpg", ".png", ".webp")}


def find_cost(value: Any) -> float | None:
    """The first number under a key that names a cost, anywhere in a JSON answer."""
    if isinstance(value, dict):
        for key, item in value.items():
            if "cost" in key and isinstance(item, int | float) and not isinstance(item, bool):
                return float(item)
            found = find_cost(item)
            if found is not None:
                return found
    if isinstance(value, list):
        for item in value:
            found = find_cost(item)
            if found is not None:
                return found
    return None


def exit_of(answer: dict[str, Any]) -> int:
    """A tool answer's exit code: its own, or its error's (0 when it names none)."""
    error = answer.get("error")
    if isinstance(error, dict) and "exit_code" in error:
        return int(error["exit_code"])
    return int(answer.get("exit_code", 0))


def money(value: float | None) -> str:
    """A cost for the table."""
    return "-" if value is None else f"${value:.3f}"


# The CLI face ---------------------------------------------------------------------------


class Cli:
    """Runs ``nanoedit`` command lines built from usage in ``folder``."""

    def __init__(self, usage: Usage, env: dict[str, str], folder: Path, server: Server) -> None:
        self.usage, self.env, self.folder, self.server = usage, env, folder, server

    def run(self, argv: Sequence[str]) -> tuple[int, str, str, int, int]:
        """Exit code, stdout, stderr, files written and paid requests of one command."""
        before, mark = images(self.folder), self.server.mark()
        done = subprocess.run(
            [*NANOEDIT, *argv], cwd=self.folder, env=self.env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=RUN_TIMEOUT,
        )  # fmt: skip
        written = len(images(self.folder) - before)
        return done.returncode, done.stdout, done.stderr, written, self.server.paid_since(mark)

    def edit(self, inputs: Sequence[str], prompt: str, **options: str | None) -> list[str]:
        """An ``edit`` command line: each option looked up in usage by its name."""
        u = self.usage
        argv = ["edit", *inputs, u.flag("edit", "prompt"), prompt]
        argv += [u.flag("edit", "backend"), BACKEND, u.flag("edit", "json_lines")]
        for name, value in options.items():
            argv += [u.flag("edit", name)] + ([] if value is None else [value])
        return argv


def cli_tasks(cli: Cli, photos: list[str], quick: bool) -> Iterator[Row]:
    """The tasks through the command line."""
    # 1. "Make this icon 1:1 at 512": the ratio must be one usage lists; the size is asked
    # for as is, and the tool either makes it or refuses it naming the value, with 0 requests.
    ratios = cli.usage.choices("edit", "ratio") or []
    task = "icon 1:1 at 512"
    if "1:1" not in ratios:
        yield Row(task, "cli", "1:1 not offered by usage", 0, 0, "-", 0, False)
    else:
        code, out, err, files, paid = cli.run(
            cli.edit(["icon.png"], "a flat icon", ratio="1:1", size="512")
        )
        yield _icon_row("cli", code, err, files, paid, find_cost(_json(out)), cli.folder)
    # 2. "Edit these 20 photos, stay under $1", and again with a budget they cannot fit.
    # The client estimates first (a dry run sends nothing), as an agent told a budget would.
    code, out, err, files, paid = cli.run(cli.edit(photos, "warmer light", dry_run=None))
    estimate = ESTIMATE.search(err)
    cost = float(estimate.group(1)) if estimate else None
    ok = estimate is not None and code == 0 and paid == 0 == files
    result = "dry run" if estimate else "no estimate"
    yield Row(f"estimate {len(photos)} photos", "cli", result, files, paid, money(cost), code, ok)
    for budget in ("1", "0.05"):
        code, out, err, files, paid = cli.run(cli.edit(photos, "warmer light", max_cost=budget))
        fits = code == 0 and files == len(photos) and paid == len(photos)
        refused = code == 7 and files == 0 and paid == 0 and "max-cost" in err
        within = cost is not None and cost <= float(budget)
        result = "fits" if fits else "refused (exit 7)" if refused else "neither"
        task = f"{len(photos)} photos under ${budget}"
        spent = money(cost if fits else 0.0)
        yield Row(task, "cli", result, files, paid, spent, code, (fits and within) or refused)
    # 3. "Continue the last edit": `edit @last --continue`.
    code, out, err, files, paid = cli.run(
        cli.edit(["@last"], "add a small moon", continue_thread=None)
    )
    ok = code == 0 and files == 1 and paid == 1
    yield Row("continue the last edit", "cli", "saved" if ok else err.strip()[-60:], files,
              paid, money(find_cost(_json(out))), code, ok)  # fmt: skip


def _json(text: str) -> Any:
    """A command's --json answer: its JSON lines (the ones that parse)."""
    found = []
    for line in text.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def _icon_row(
    face: str, code: int, message: str, files: int, paid: int, cost: float | None, folder: Path
) -> Row:
    """Task 1's verdict: a square result, or a clear refusal naming 512 before any request."""
    from PIL import Image

    task = "icon 1:1 at 512"
    if code == 0 and files == 1:
        (path,) = sorted(images(folder), key=lambda p: p.stat().st_mtime)[-1:]
        with Image.open(path) as image:
            width, height = image.size
        ok = width == height and paid == 1
        return Row(task, face, f"saved {width}x{height}", files, paid, money(cost), code, ok)
    refused = code in (2, 4) and files == 0 and paid == 0 and "512" in message
    result = "refused, names 512" if refused else "unclear failure"
    return Row(task, face, result, files, paid, money(cost), code, refused)


# The MCP face ---------------------------------------------------------------------------


def mcp_tasks(env: dict[str, str], folder: Path, server: Server, photos: list[str]) -> list[Row]:
    """The tasks through ``nanoedit mcp`` (spawned by the MCP SDK's stdio client)."""
    import anyio
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    rows: list[Row] = []

    async def call(
        session: ClientSession, tool: str, arguments: dict[str, Any]
    ) -> tuple[bool, dict[str, Any], int, int]:
        before, mark = images(folder), server.mark()
        result = await session.call_tool(tool, arguments)
        answer = result.structured_content or {}
        return result.is_error, answer, len(images(folder) - before), server.paid_since(mark)

    async def main() -> None:
        params = StdioServerParameters(
            command=NANOEDIT[0], args=[*NANOEDIT[1:], "mcp", "--backend", BACKEND,
                                       "--max-cost", "1"],
            cwd=folder, env=env,
        )  # fmt: skip
        with (folder.parent / "mcp-stderr.log").open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                tools = {t.name: t.input_schema for t in (await session.list_tools()).tools}
                edit = tools["edit_image"]["properties"]
                # 1. The icon: 1:1 and 512 only if the schema's enums offer them.
                if "1:1" in edit["ratio"]["enum"] and "512" in edit["size"]["enum"]:
                    error, answer, files, paid = await call(session, "edit_image", {
                        "images": ["icon.png"], "prompt": "a flat icon", "ratio": "1:1",
                        "size": "512"})  # fmt: skip
                    rows.append(_icon_row("mcp", exit_of(answer),
                                          json.dumps(answer), files, paid,
                                          find_cost(answer), folder))  # fmt: skip
                else:
                    rows.append(Row("icon 1:1 at 512", "mcp", "not in the schema", 0, 0, "-",
                                    0, True))  # fmt: skip
                # 2. The 20 photos under the server's --max-cost 1.
                error, answer, files, paid = await call(
                    session, "edit_image", {"images": photos, "prompt": "warmer light"}
                )
                code = exit_of(answer)
                spent = find_cost(answer)
                fits = not error and files == len(photos) and paid == len(photos)
                fits = fits and spent is not None and spent <= 1
                refused = error and files == 0 and paid == 0
                rows.append(Row(f"{len(photos)} photos under $1", "mcp",
                                "fits" if fits else "refused" if refused else "neither",
                                files, paid, money(find_cost(answer)), code,
                                fits or refused))  # fmt: skip
                # 3. Continue the last edit.
                error, answer, files, paid = await call(
                    session, "continue_edit", {"result": "@last", "prompt": "add a moon"}
                )
                ok = not error and files == 1 and paid == 1
                rows.append(Row("continue the last edit", "mcp", "saved" if ok else "failed",
                                files, paid, money(find_cost(answer)),
                                exit_of(answer), ok))  # fmt: skip
                # 4. Write outside the allowed folder: refused, no request.
                escape = {"images": ["icon.png"], "prompt": "x", "output_folder": "../outside"}
                error, answer, files, paid = await call(session, "edit_image", escape)
                outside = images(folder.parent / "outside") if (
                    folder.parent / "outside").exists() else set()  # fmt: skip
                ok = error and files == 0 and paid == 0 and not outside
                rows.append(Row("write outside the folder", "mcp",
                                "refused" if ok else "not refused", files + len(outside), paid,
                                "-", exit_of(answer), ok))  # fmt: skip

    anyio.run(main)
    return rows


# The report -----------------------------------------------------------------------------


def table(rows: Sequence[Row]) -> str:
    """The markdown table of every task on every face."""
    lines = [
        "| Task | Face | Result | Files | Paid requests | Cost | Exit | Verdict |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        verdict = "PASS" if r.passed else "FAIL"
        lines.append(
            f"| {r.task} | {r.face} | {r.result} | {r.files} | {r.requests} | {r.cost} "
            f"| {r.exit_code} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run every task on both faces; print the table; 1 if any task failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 photos instead of 20")
    args = parser.parse_args(argv)
    count = 4 if args.quick else 20
    with tempfile.TemporaryDirectory(prefix="agent-eval-") as temp:
        work = Path(temp)
        base = clean_env(work / "config")
        usage = Usage(json.loads(subprocess.run(
            [*NANOEDIT, "--usage", "--json"], env=base, capture_output=True, text=True,
            check=True, timeout=RUN_TIMEOUT).stdout))  # fmt: skip
        server_log = work / "server.log"
        serve = [*NANOEDIT, "sandbox", "serve", "--port", "{port}", "--latency", "0"]
        rows: list[Row] = []
        with serving(serve, base, server_log) as port:
            env = backend_env(base, f"http://127.0.0.1:{port}", "http://127.0.0.1:9", work)
            server = Server(server_log)
            for face in ("cli", "mcp"):
                folder = work / face
                write_inputs(folder / "photos", count)
                os.replace(sorted((folder / "photos").iterdir())[0], folder / "icon.png")
                write_inputs(folder / "more", 1)
                (next((folder / "more").iterdir())).rename(folder / "photos" / "last.png")
                photos = sorted(f"photos/{p.name}" for p in (folder / "photos").iterdir())
                face_env = env | {"NANOEDIT_CONFIG_DIR": str(work / f"config-{face}")}
                if face == "cli":
                    rows += cli_tasks(Cli(usage, face_env, folder, server), photos, args.quick)
                else:
                    rows += mcp_tasks(face_env, folder, server, photos)
    print(f"# Agent evaluation ({'quick, ' if args.quick else ''}{count} photos)\n")
    print(table(rows))
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
