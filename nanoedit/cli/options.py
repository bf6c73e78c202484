"""The options edit and generate share, written once: the ``Annotated`` aliases, their choices,
and :class:`RunFlags`, which gives a command every run flag and builds its ``RunOptions``.
"""

# No `from __future__ import annotations`: typer and RunFlags's fields read these annotations
# as objects each time the program starts.

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nanoedit.cli.compat import TyperChoice
from nanoedit.cli.dial_options import (
    FidelityOpt,
    ImageOnlyOpt,
    OutputFormatOpt,
    QualityOpt,
    SafetyOpt,
    SearchOpt,
    SeedOpt,
    ThinkingOpt,
    dials_of,
)
from nanoedit.clock import Clock
from nanoedit.errors import UsageError
from nanoedit.jobs import (
    BATCH_TIER,
    DEFAULT_COUNT,
    DEFAULT_JOBS,
    DEFAULT_RESPONSE_FORMAT,
    RATIOS,
    RUN_TIERS,
    STANDARD_TIER,
    TRANSPARENT_AUTO,
    TRANSPARENT_METHODS,
    WHOLE_RUN,
    RunOptions,
)

if TYPE_CHECKING:
    # The session (and the run it wires) is loaded when a command runs, not for --help.
    from nanoedit.session import Asked, Environment


class BackendNames(TyperChoice[str]):
    """``--backend``'s choices: ``auto`` and every registered backend, read from the registry
    only when a command needs them, so a plain ``--help`` does not load it."""

    def __init__(self) -> None:
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> Sequence[str]:
        """``auto``, then the backends in registry order."""
        from nanoedit.backends.registry import backend_names

        return ("auto", *backend_names())

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        """The base class sets the choices it was given; these come from the registry."""


class ResponseFormat(StrEnum):
    """How the multipart backend returns images."""

    url = "url"
    b64_json = "b64_json"


DEFAULT_FORMAT = ResponseFormat(DEFAULT_RESPONSE_FORMAT)
TRANSPARENT_CHOICES = (TRANSPARENT_AUTO, *TRANSPARENT_METHODS)


PromptOpt = Annotated[
    str | None,
    typer.Option(
        "--prompt",
        "-p",
        metavar="TEXT",
        help="What to make, in words; - reads it from stdin.",
        show_default=False,
    ),
]
PromptFileOpt = Annotated[
    str | None,
    typer.Option(
        "--prompt-file",
        metavar="FILE",
        help="Read the prompt from FILE (UTF-8 text; - for stdin) instead of -p.",
        show_default=False,
    ),
]
PresetOpt = Annotated[
    str | None,
    typer.Option(
        "--preset",
        metavar="NAME",
        help="Start from a preset: its template takes the prompt ({prompt}) and its settings "
        "stand in for flags not given here (nanoedit presets lists them).",
        show_default=False,
    ),
]
RatioOpt = Annotated[
    str | None,
    typer.Option(
        "--ratio",
        click_type=TyperChoice(RATIOS, case_sensitive=True),
        help="Aspect ratio of the result (default: auto, or default.ratio).",
        show_default=False,
    ),
]


def _complete_size(incomplete: str) -> list[str]:
    from nanoedit.jobs import SIZES

    return [size for size in SIZES if size.startswith(incomplete.upper())]


# Checked by default.size's rule when the settings are loaded, so that a wrong one is named
# as written (1K, 2K, 4K), which a case-insensitive choice would list in lower case.
SizeOpt = Annotated[
    str | None,
    typer.Option(
        "--size",
        metavar="512|1K|2K|4K",
        show_default=False,
        help="Resolution of the result, any case (3.x models; 512 on 3.1 Flash only).",
        autocompletion=_complete_size,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        metavar="ID",
        help="An alias (nano-banana, nano-banana-pro, nano-banana-2, nano-banana-2.1, "
        "nano-banana-2-lite), Google's id or the backend's own: sent as the backend names the "
        "model (nanoedit models); a shut-down id is refused; an unknown id is sent as given.",
        show_default=False,
    ),
]
CountOpt = Annotated[
    int, typer.Option("--count", "-n", min=1, max=10, metavar="N", help="Images per job.")
]
BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        click_type=BackendNames(),
        show_default=False,
        help="Which API to use (default: NANOEDIT_BACKEND, default.backend, or auto: by inputs).",
    ),
]
SandboxOpt = Annotated[
    bool,
    typer.Option("--sandbox", help="Use the built-in emulated API: no key, no network, no cost."),
]
NoStoreOpt = Annotated[
    bool,
    typer.Option(
        "--no-store",
        help="Ask Google not to keep the requests and answers (gemini backend; gemini.store).",
    ),
]


def output_path(text: str) -> Path:
    """``-o``'s value as a path; ``-`` is stdout."""
    # Parsed here, not by typer's Path type: that would read `./-` (a file named -) as `-`.
    from nanoedit.output.names import output_target

    return output_target(text)


OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="File to write the one result to, exactly as named (- for stdout).",
        show_default=False,
        parser=output_path,
    ),
]
OutDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--out-dir",
        "-d",
        metavar="DIR",
        help="Folder for results (default: default.out_dir, or the current one).",
        show_default=False,
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Let -o replace an existing file.")]
FormatOpt = Annotated[
    ResponseFormat,
    typer.Option("--response-format", help="How the multipart backend returns images."),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object per job on stdout.")
]  # fmt: skip
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing on stderr but errors.")
]  # fmt: skip
Print0Opt = Annotated[
    bool,
    typer.Option("--print0", help="End each path on stdout with NUL, not a newline (xargs -0)."),
]
JobsOpt = Annotated[
    int,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        max=64,
        metavar="N",
        help="Jobs sent at once.",
        rich_help_panel="Batch",
    ),
]
SkipOpt = Annotated[
    bool,
    typer.Option(
        "--skip-existing",
        help="Send no job whose result is already saved (resume a batch).",
        rich_help_panel="Batch",
    ),
]
NoHistoryOpt = Annotated[
    bool,
    typer.Option(
        "--no-history",
        help="Keep nothing of this run in the job journal (no resume, no history).",
        rich_help_panel="Batch",
    ),
]
ShardOpt = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="K/N",
        help="Run only every N-th job from the K-th (positions K, K+N, K+2N… of the job list).",
        show_default=False,
        rich_help_panel="Batch",
    ),
]
# --retries and --timeout are checked by the rule of the key they override (network.retries,
# network.timeout), when the settings are loaded: one rule, not a range here and one there.
RetriesOpt = Annotated[
    int | None,
    typer.Option(
        "--retries",
        metavar="N",
        show_default=False,
        help="Times a failed request is sent again, 0 to 20 (default 3, or network.retries).",
        rich_help_panel="Network",
    ),
]
RetryUnsafeOpt = Annotated[
    bool,
    typer.Option(
        "--retry-unsafe",
        help="Also resend a paid request that may have reached the model (may charge twice).",
        rich_help_panel="Network",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        show_default=False,
        metavar="SECONDS",
        help="Time limit of each job, polls and retries included, above 0 (default 900).",
        rich_help_panel="Network",
    ),
]
ProxyOpt = Annotated[
    str | None,
    typer.Option(
        "--proxy",
        metavar="URL",
        show_default=False,
        help="Proxy for every request (default: network.proxy, or HTTPS_PROXY and friends).",
        rich_help_panel="Network",
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Send nothing; print each request as a curl command (with --json: a JSON object).",
    ),
]
MaxCostOpt = Annotated[
    float | None,
    typer.Option(
        "--max-cost",
        min=0,
        metavar="DOLLARS",
        show_default=False,
        help="Refuse a batch estimated over this many US dollars; stop sending once it is spent "
        "(exit 7). Prices: pricing.BACKEND.MODEL.",
        rich_help_panel="Batch",
    ),
]
MaxImagesOpt = Annotated[
    int | None,
    typer.Option(
        "--max-images",
        min=1,
        metavar="N",
        show_default=False,
        help="Send jobs for at most N images in all (-n counted); the rest are not sent (exit 7).",
        rich_help_panel="Batch",
    ),
]
TierOpt = Annotated[
    str,
    typer.Option(
        "--tier",
        click_type=TyperChoice(RUN_TIERS, case_sensitive=False),
        help="standard: one request per job; batch: every job in one Google Batch API "
        "submission at half price, answered within 24 h; flex (half price, may be shed and "
        "slow) and priority (up to twice the price): Google's service tiers, refused for a "
        "model that does not take them (gemini backend).",
        rich_help_panel="Batch",
    ),
]
DetachOpt = Annotated[
    bool,
    typer.Option(
        "--detach",
        help="With --tier batch: exit once the batch is submitted; nanoedit resume saves it.",
        rich_help_panel="Batch",
    ),
]
NoMetadataOpt = Annotated[
    bool,
    typer.Option("--no-metadata", help="Save images without the provenance metadata."),
]
SidecarOpt = Annotated[
    bool,
    typer.Option("--sidecar", help="Also write the provenance as IMAGE.json beside each image."),
]
# Two options, not one with an optional value (--transparent[=METHOD]): typer's parser has
# no option whose value may be left out, and a value-less --transparent must not swallow the
# word after it (an INPUT) as its method.
TransparentOpt = Annotated[
    bool,
    typer.Option(
        "--transparent",
        help="Save results with an alpha channel (PNG): natively where the API draws it "
        "(gpt-image), else by a key colour removed here.",
    ),
]
TransparentMethodOpt = Annotated[
    str | None,
    typer.Option(
        "--transparent-method",
        click_type=TyperChoice(TRANSPARENT_CHOICES, case_sensitive=True),
        show_default=False,
        help="How --transparent gets the alpha (implies it): native, key (one request) or "
        "matte (on white, then on black: two paid requests; keeps glass and hair).",
    ),
]

PreviewOpt = Annotated[
    bool,
    typer.Option(
        "--preview",
        help="Show each saved image on the terminal (stderr), drawn as preview.protocol says.",
        rich_help_panel="Seeing results",
    ),
]
OpenOpt = Annotated[
    bool,
    typer.Option(
        "--open",
        help="Open each saved image in the viewer (preview.open_command, or the system's).",
        rich_help_panel="Seeing results",
    ),
]


def report_option(help_text: str, panel: str | None = None) -> Any:
    """A ``--report FILE.html`` option (the run's page, the history's, a thread's), with its
    own help and, for a command with panels, its help panel."""
    return typer.Option(
        "--report",
        metavar="FILE.html",
        show_default=False,
        help=help_text,
        rich_help_panel=panel,
    )


ReportOpt = Annotated[
    Path | None,
    report_option(
        "Write one HTML page of the run: inputs and results side by side, failures.",
        "Seeing results",
    ),
]


def environment(ctx: typer.Context) -> "Environment":
    """The process's environment for a command's run, with the clock it reads the time and
    waits on: the real one, unless the caller gave another as the context's object
    (``CliRunner.invoke(app, args, obj=...)``)."""
    from nanoedit.session import Environment

    return Environment.current(ctx.obj if isinstance(ctx.obj, Clock) else None)


def shard(text: str | None) -> tuple[int, int]:
    """``--shard K/N`` as numbers (a usage error when it is not one); every job without it."""
    from nanoedit.startup import lasting_imports

    with lasting_imports():
        from nanoedit.run.batch import parse_shard

    return WHOLE_RUN if text is None else parse_shard(text)


@dataclasses.dataclass(frozen=True)
class RunFlags:
    """Every flag edit and generate share, in the order their help lists them: a new one is a
    field here (its option is the field's annotation) and a line in :meth:`run_options`."""

    preset: PresetOpt = None
    ratio: RatioOpt = None
    size: SizeOpt = None
    model: ModelOpt = None
    count: CountOpt = DEFAULT_COUNT
    backend: BackendOpt = None
    sandbox: SandboxOpt = False
    no_store: NoStoreOpt = False
    output: OutputOpt = None
    out_dir: OutDirOpt = None
    overwrite: OverwriteOpt = False
    response_format: FormatOpt = DEFAULT_FORMAT
    seed: SeedOpt = None
    thinking: ThinkingOpt = None
    search: SearchOpt = False
    image_only: ImageOnlyOpt = False
    format: OutputFormatOpt = None
    safety: SafetyOpt = None
    quality: QualityOpt = None
    input_fidelity: FidelityOpt = None
    json_lines: JsonOpt = False
    quiet: QuietOpt = False
    print0: Print0Opt = False
    jobs: JobsOpt = DEFAULT_JOBS
    skip_existing: SkipOpt = False
    no_history: NoHistoryOpt = False
    shard: ShardOpt = None
    retries: RetriesOpt = None
    retry_unsafe: RetryUnsafeOpt = False
    timeout: TimeoutOpt = None
    proxy: ProxyOpt = None
    dry_run: DryRunOpt = False
    max_cost: MaxCostOpt = None
    max_images: MaxImagesOpt = None
    tier: TierOpt = STANDARD_TIER
    detach: DetachOpt = False
    no_metadata: NoMetadataOpt = False
    sidecar: SidecarOpt = False
    transparent: TransparentOpt = False
    transparent_method: TransparentMethodOpt = None
    preview: PreviewOpt = False
    open_images: OpenOpt = False
    report: ReportOpt = None

    def run_options(self) -> RunOptions:
        """How the run behaves, as these flags say (``--shard`` and ``--detach`` checked
        here)."""
        if self.detach and self.tier.lower() != BATCH_TIER:
            # Taken silently, it would wait for every image the user meant to leave running.
            raise UsageError(
                f"--detach leaves a batch at Google for nanoedit resume, and --tier is "
                f"{self.tier.lower()}, which sends each job at once; add --tier batch, or leave "
                "out --detach"
            )
        return RunOptions(
            backend=self.backend,
            out_dir=self.out_dir,
            sandbox=self.sandbox,
            proxy=self.proxy,
            timeout=self.timeout,
            retries=self.retries,
            jobs=self.jobs,
            shard=shard(self.shard),
            skip_existing=self.skip_existing,
            history=not self.no_history,
            store=not self.no_store,
            overwrite=self.overwrite,
            retry_unsafe=self.retry_unsafe,
            metadata=not self.no_metadata,
            sidecar=self.sidecar,
            dry_run=self.dry_run,
            json_lines=self.json_lines,
            quiet=self.quiet,
            print0=self.print0,
            preview=self.preview,
            open_images=self.open_images,
            report=self.report,
            max_cost=self.max_cost,
            max_images=self.max_images,
            tier=self.tier.lower(),
            detach=self.detach,
            transparent=self._transparency(),
        )

    def _transparency(self) -> str | None:
        """The method --transparent and --transparent-method ask for (None: neither). A
        preset's ``transparent`` sets the first to True or to a method's name."""
        if self.transparent_method:
            return self.transparent_method
        if isinstance(self.transparent, str):
            return self.transparent
        return TRANSPARENT_AUTO if self.transparent else None

    def asked(self, prompt: str | None, prompt_file: str | None) -> "Asked":
        """What is asked of the model: the prompt as given, and these flags' part of it."""
        from nanoedit.session import Asked

        return Asked(
            prompt=prompt,
            prompt_file=prompt_file,
            ratio=self.ratio,
            size=self.size,
            model=self.model,
            count=self.count,
            response_format=self.response_format.value,
            dials=dials_of(
                self.seed,
                self.thinking,
                self.search,
                self.image_only,
                self.format,
                self.safety,
                self.quality,
                self.input_fidelity,
            ),
            preset=self.preset,
        )

    def with_preset(self, ctx: typer.Context, environ: Mapping[str, str]) -> "RunFlags":
        """These flags with ``--preset``'s settings in place of the flags the command line
        did not give (those it gave win); the preset is looked up in the config file
        ``environ`` names, or among the built-in ones (an unknown name is a usage error)."""
        if self.preset is None:
            return self
        from nanoedit.settings.presets import PresetBook

        preset = PresetBook.of(environ).find(self.preset)

        def given(name: str) -> bool:
            # Typed on the command line (or set by a variable); a default is not given. By the
            # source's name: typer's click and click's own are two classes of it.
            source = ctx.get_parameter_source(name)
            return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

        flags = [name for name, _ in preset.settings if given(name)]
        return dataclasses.replace(self, preset=preset.name, **preset.values(flags))


# Flags of a batch of jobs, which generate (one job) does not take.
BATCH_ONLY = frozenset({"jobs", "shard"})


def with_run_flags(
    *, batch: bool, without: frozenset[str] = frozenset()
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command every :class:`RunFlags` option after its own (without the batch ones
    unless ``batch``, nor the fields named in ``without``, which keep their defaults),
    handed to it as its last parameter, ``flags``."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = inspect.signature(command)
        params = [param for param in own.parameters.values() if param.name != "flags"]
        left_out = without if batch else without | BATCH_ONLY
        shared = [field for field in dataclasses.fields(RunFlags) if field.name not in left_out]
        params += [
            inspect.Parameter(
                field.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=field.type,
                default=field.default,
            )
            for field in shared
        ]
        names = [field.name for field in shared]

        @functools.wraps(command)
        def run(**values: Any) -> None:
            flags = RunFlags(**{name: values.pop(name) for name in names})
            command(**values, flags=flags)

        # Typer reads the signature (and the annotations) of the command it is given.
        run.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {param.name: param.annotation for param in params}
        return run

    return decorate
