"""The MCP server: the tools, their arguments (with the catalog's ratios, sizes and models
as enums) and the client's roots, on the official ``mcp`` SDK's :class:`MCPServer`.

Each tool finds the folders it may use (the client's roots, else the server's), then runs
its call (:mod:`nanoedit.mcp.calls`) in a worker thread: a run blocks, and the protocol's
loop must go on reading meanwhile. A client's cancel drains the call's run as a first Ctrl-C
drains a command's: no new job is sent, the jobs under way finish and save (they may be paid
already), and the call is answered nothing (the protocol's rule for a cancelled request).
"""

# No `from __future__ import annotations`: the SDK reads the tools' annotations at run time
# to make their input schemas.

import inspect
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field, WithJsonSchema

from nanoedit import __version__
from nanoedit.jobs import (
    DEFAULT_FEATHER,
    FIDELITIES,
    FORMATS,
    QUALITIES,
    RATIOS,
    SIZES,
    THINKING_LEVELS,
)
from nanoedit.mcp.calls import Calls, Masking, Request, ServerOptions, dials_from, model_names
from nanoedit.mcp.safety import Folders

if TYPE_CHECKING:
    from nanoedit.run.interrupts import Stop

INSTRUCTIONS = (
    "nanoedit edits and generates images with Google's nano-banana models. Results are "
    "written inside the server's folders (never overwriting a file); each answer gives their "
    "absolute paths, sizes, the job id and the cost. Inputs are paths inside those folders, "
    "http(s) URLs, or earlier results (@last, @ID, @ID.N). estimate_cost says what a call "
    "would cost without sending it; the server refuses a call over its cost limits."
)


def _choice(values: list[str], description: str) -> Any:
    """An optional text argument whose schema lists its allowed values."""
    schema = {"type": "string", "enum": values, "description": description}
    return Annotated[str | None, WithJsonSchema(schema)]


if TYPE_CHECKING:
    Ratio: TypeAlias = str | None
    Size: TypeAlias = str | None
    Model: TypeAlias = str | None
else:
    Ratio = _choice(list(RATIOS), "The aspect ratio (default: the settings', else the input's).")
    Size = _choice(list(SIZES), "The image size (default: the settings', else the model's).")
    Model = _choice(list(model_names()), "The model: an alias or a catalog id (list_models).")
Prompt = Annotated[str, Field(description="What to do, in words.")]
Images = Annotated[
    list[str],
    Field(
        description="Images to edit, one job each: paths inside the server's folders, "
        "http(s) URLs, or earlier results (@last, @ID, @ID.N).",
        min_length=1,
    ),
]
Refs = Annotated[list[str], Field(description="Reference images sent with every job (as images).")]
Count = Annotated[int, Field(description="Images to ask for per job.", ge=1, le=10)]
OutputFolder = Annotated[
    str | None,
    Field(description="Where results go: a folder inside the server's folders (default: the "
          "first of them)."),
]  # fmt: skip
MaxCost = Annotated[
    float | None,
    Field(description="The most this call may spend, in US dollars (the server's own limits "
          "apply too).", ge=0),
]  # fmt: skip
Thumbnails = Annotated[bool, Field(description="Also return a small PNG thumbnail of each image.")]
Transparent = Annotated[
    Literal["auto", "native", "key", "matte"] | None,
    Field(description="Save the images with an alpha channel (PNG), as --transparent-method "
          "does: auto (native where the API draws it, else key), native, key (one request) "
          "or matte (two paid requests; keeps glass and hair)."),
]  # fmt: skip
# The providers' dials, as the command line's flags (--seed, --thinking…): one object.
DIAL_SCHEMA = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "description": "The provider's own dials, each refused where the model or backend lacks "
    "it (list_models shows which it has where): seed, thinking (a level), search (Google "
    "Search grounding, paid per request), image_only, format (rendered by the API), safety "
    "(the backend's level), quality and input_fidelity (gpt-image).",
    "properties": {
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        "thinking": {"type": "string", "enum": list(THINKING_LEVELS)},
        "search": {"type": "boolean"},
        "image_only": {"type": "boolean"},
        "format": {"type": "string", "enum": list(FORMATS)},
        "safety": {"type": "string"},
        "quality": {"type": "string", "enum": list(QUALITIES)},
        "input_fidelity": {"type": "string", "enum": list(FIDELITIES)},
    },
}
DialArgs = Annotated[dict[str, Any] | None, WithJsonSchema(DIAL_SCHEMA)]
PresetName = Annotated[
    str | None,
    Field(description="A preset (nanoedit presets: icon, product, sticker, thumbnail, or the "
          "config file's): its template takes the prompt, and its ratio, size and model apply "
          "where this call gives none."),
]  # fmt: skip
Mask = Annotated[
    str | None,
    Field(
        description="A mask image (in the folders): the model may change the image only where "
        "it is white (or opaque, on a transparent mask); every other pixel stays the input's, "
        "bit for bit. Saved as PNG."
    ),
]
Region = Annotated[
    str | None,
    Field(description="X,Y,W,H: the model may change only this box (the input's pixels)."),
]
Feather = Annotated[
    int, Field(description="Width of the blended seam inside the mask (0: hard).", ge=0, le=64)
]
Crop = Annotated[
    bool,
    Field(description="Send the model only a crop around the mask; its answer goes back there."),
]
MaxDrift = Annotated[
    float | None,
    Field(
        description="Fail a job whose model changed more than this % outside the mask (its "
        "image kept as NAME-drift.png).",
        ge=0,
        le=100,
    ),
]


async def _folders(calls: Calls, ctx: Context) -> Folders:
    """The client's roots, when it has some, else the folders the server was started with."""
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.roots is None:
        return calls.configured
    with warnings.catch_warnings():
        # Roots are deprecated in the newest protocol revision, and still what clients send.
        warnings.simplefilter("ignore")
        listed = await ctx.session.list_roots()
    return Folders.of_uris([str(root.uri) for root in listed.roots]) or calls.configured


async def _run(ctx: Context, work: Callable[["Stop"], CallToolResult]) -> CallToolResult:
    """Run ``work`` in a worker thread, saying when it starts and ends (MCP progress, when
    the client asked for it). When the call is cancelled (the client's cancel, or the server
    shutting down), the run is told to drain, and the call ends once it has: a job under way
    is paid for, so its image is saved and journaled before the cancel goes on up."""
    from nanoedit.run.interrupts import Stop

    stop = Stop()
    ended = threading.Event()

    def run() -> CallToolResult:
        try:
            return work(stop)
        finally:
            ended.set()

    await ctx.report_progress(0, 1, "working")
    try:
        # Abandoned on cancel, so that the cancel is seen while the run goes on: the SDK
        # cancels the call's scope, and a thread not abandoned would hold it off to the end.
        result = await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        stop.tell()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(ended.wait)
        raise
    await ctx.report_progress(1, 1, "done")
    return result


def _tool(
    server: MCPServer, annotations: ToolAnnotations
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a tool, its description its docstring without the code's indentation."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        description = inspect.cleandoc(function.__doc__ or "")
        return server.tool(description=description, annotations=annotations)(function)

    return register


def build_server(options: ServerOptions, environ: dict[str, str]) -> MCPServer:
    """The server with every tool, for ``options``."""
    calls = Calls(options, environ)
    # WARNING, not the SDK's INFO: at INFO, httpx logs every request's URL on stderr, and a
    # signed download URL is a secret for as long as it lasts.
    server = MCPServer(
        name="nanoedit", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    paid = ToolAnnotations(destructive_hint=False, idempotent_hint=False, open_world_hint=True)
    reading = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @_tool(server, paid)
    async def edit_image(
        ctx: Context,
        images: Images,
        prompt: Prompt,
        refs: Refs = [],  # noqa: B006 (the SDK copies defaults; the schema shows [])
        ratio: Ratio = None,
        size: Size = None,
        model: Model = None,
        count: Count = 1,
        output_folder: OutputFolder = None,
        max_cost: MaxCost = None,
        thumbnails: Thumbnails = False,
        dials: DialArgs = None,
        preset: PresetName = None,
        mask: Mask = None,
        region: Region = None,
        feather: Feather = DEFAULT_FEATHER,
        max_drift: MaxDrift = None,
        crop: Crop = False,
        transparent: Transparent = None,
    ) -> CallToolResult:
        """Edit images with a prompt: one job per image. Answers with each saved file's
        absolute path, size, job id and cost, and the model's text (and with a mask or a
        region, how much the model changed outside it: the drift)."""
        request = Request(
            prompt, tuple(images), tuple(refs), ratio, size, model, count, output_folder,
            max_cost, thumbnails, dials_from(dials), preset,
            Masking(mask, region, feather, max_drift, crop),
            transparent=transparent,
        )  # fmt: skip
        folders = await _folders(calls, ctx)
        return await _run(ctx, lambda stop: calls.edit(folders, request, stop=stop))

    @_tool(server, paid)
    async def generate_image(
        ctx: Context,
        prompt: Prompt,
        ratio: Ratio = None,
        size: Size = None,
        model: Model = None,
        count: Count = 1,
        output_folder: OutputFolder = None,
        max_cost: MaxCost = None,
        thumbnails: Thumbnails = False,
        dials: DialArgs = None,
        preset: PresetName = None,
        transparent: Transparent = None,
    ) -> CallToolResult:
        """Make images from a prompt alone. Answers with each saved file's absolute path,
        size, job id and cost, and the model's text."""
        request = Request(
            prompt, (), (), ratio, size, model, count, output_folder, max_cost, thumbnails,
            dials_from(dials), preset,
            transparent=transparent,
        )  # fmt: skip
        folders = await _folders(calls, ctx)
        return await _run(ctx, lambda stop: calls.generate(folders, request, stop=stop))

    @_tool(server, paid)
    async def continue_edit(
        ctx: Context,
        result: Annotated[
            str,
            Field(
                description="The earlier result to go on from: @last, @ID or @ID.N "
                "(search_history lists ids)."
            ),
        ],
        prompt: Prompt,
        refs: Refs = [],  # noqa: B006
        ratio: Ratio = None,
        size: Size = None,
        model: Model = None,
        output_folder: OutputFolder = None,
        max_cost: MaxCost = None,
        thumbnails: Thumbnails = False,
        dials: DialArgs = None,
    ) -> CallToolResult:
        """The next turn of a thread: edit an earlier result, the model seeing the earlier
        turns where the backend keeps a conversation (as `nanoedit edit --continue`)."""
        request = Request(
            prompt, (result,), tuple(refs), ratio, size, model, 1, output_folder, max_cost,
            thumbnails, dials_from(dials),
        )  # fmt: skip
        folders = await _folders(calls, ctx)
        return await _run(ctx, lambda stop: calls.edit(folders, request, continues=True, stop=stop))

    @_tool(server, reading)
    async def estimate_cost(
        ctx: Context,
        prompt: Prompt,
        images: Annotated[
            list[str], Field(description="Images to edit (none: a generation).")
        ] = [],  # noqa: B006
        refs: Refs = [],  # noqa: B006
        ratio: Ratio = None,
        size: Size = None,
        model: Model = None,
        count: Count = 1,
        dials: DialArgs = None,
        preset: PresetName = None,
        transparent: Transparent = None,
    ) -> CallToolResult:
        """What an edit (with images) or a generation would cost, and whether it is within
        the server's limits; nothing is sent."""
        request = Request(
            prompt, tuple(images), tuple(refs), ratio, size, model, count,
            dials=dials_from(dials), preset=preset,
            transparent=transparent,
        )  # fmt: skip
        folders = await _folders(calls, ctx)
        return await _run(ctx, lambda _stop: calls.estimate(folders, request))

    @_tool(server, reading)
    async def list_models(ctx: Context) -> CallToolResult:
        """The model catalog: each model's aliases, ids per backend, sizes, ratios, state
        and price of a 1K image."""
        return await _run(ctx, lambda _stop: calls.models())

    @_tool(server, reading)
    async def search_history(
        ctx: Context,
        text: Annotated[
            str,
            Field(description='Words of the prompt; "a phrase", cat* (a prefix), AND, OR, NOT.'),
        ],
        limit: Annotated[int, Field(description="The most jobs to list.", ge=1, le=200)] = 20,
    ) -> CallToolResult:
        """Earlier jobs whose prompt matches, newest first: ids (for continue_edit and
        resume), states, saved paths and costs."""
        return await _run(ctx, lambda _stop: calls.history(text, limit))

    @_tool(server, paid)
    async def resume(
        ctx: Context,
        ids: Annotated[
            list[int], Field(description="The ids of the jobs to finish.", min_length=1)
        ],
    ) -> CallToolResult:
        """Finish jobs an earlier run left unfinished, where it left them: a paid request
        already sent is collected, not sent again."""
        folders = await _folders(calls, ctx)
        return await _run(ctx, lambda stop: calls.resume(folders, ids, stop=stop))

    return server


def serve(options: ServerOptions, environ: dict[str, str]) -> None:
    """Serve MCP on stdin and stdout until the client closes them."""
    build_server(options, environ).run("stdio")
