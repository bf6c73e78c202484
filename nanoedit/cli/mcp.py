"""``nanoedit mcp``: serve the Model Context Protocol on stdin and stdout, for an agent's
client (Claude Code, Codex, Cursor, Gemini CLI...) to edit and generate images through.
"""

import os
from pathlib import Path
from typing import Annotated

import typer

from nanoedit.cli.errors import errors
from nanoedit.cli.options import BackendOpt, SandboxOpt
from nanoedit.jobs import DEFAULT_JOBS


def mcp(
    root: Annotated[
        list[Path] | None,
        typer.Option(
            "--root",
            metavar="DIR",
            show_default=False,
            help="A folder the tools may read inputs from and write results to (repeatable; "
            "default: the current folder). A client's own roots replace these.",
        ),
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            min=0,
            metavar="DOLLARS",
            show_default=False,
            help="Refuse a tool call estimated over this many US dollars, before it sends.",
        ),
    ] = None,
    session_max_cost: Annotated[
        float | None,
        typer.Option(
            "--session-max-cost",
            min=0,
            metavar="DOLLARS",
            show_default=False,
            help="The most all tool calls together may spend; a call over what is left is "
            "refused before it sends.",
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            max=64,
            metavar="N",
            help="Jobs one tool call sends at once.",
        ),
    ] = DEFAULT_JOBS,
    backend: BackendOpt = None,
    sandbox: SandboxOpt = False,
) -> None:
    """Serve the Model Context Protocol on stdin and stdout (an agent's image tools).

    Add it to a client with one line, e.g. Claude Code:

    \b
      claude mcp add nanoedit -- nanoedit mcp
    """
    with errors():
        from nanoedit.errors import ConfigError
        from nanoedit.mcp.calls import ServerOptions

        try:
            from nanoedit.mcp.server import serve
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.partition(".")[0] not in ("mcp", "mcp_types"):
                raise
            raise ConfigError(
                "nanoedit mcp needs the MCP SDK, which is not installed; install it with: "
                "pip install 'nanoedit[mcp]'"
            ) from None

        options = ServerOptions(
            roots=tuple(root or ()),
            sandbox=sandbox,
            backend=backend,
            max_cost=max_cost,
            session_max_cost=session_max_cost,
            jobs=jobs,
        )
        serve(options, dict(os.environ))
