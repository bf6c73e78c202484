"""The plain data a run is made of: image sources, options and jobs, and their validation."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol, TypedDict
from urllib.parse import unquote, urlsplit

from nanoedit.errors import ExitCode, InputError, NanoeditError, UsageError

# Every ratio some model renders; which model renders which is checked before sending.
RATIOS: tuple[str, ...] = (
    "auto", "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
    "1:4", "4:1", "1:8", "8:1",
)  # fmt: skip
SIZES: tuple[str, ...] = ("512", "1K", "2K", "4K")
# The service tiers a request may ask for: ``standard`` is what a request that names none gets
# ([P] Google's flex and priority inference pages: the field omitted means standard).
STANDARD_TIER = "standard"
TIERS: tuple[str, ...] = (STANDARD_TIER, "flex", "priority")
# --tier batch is no service tier but another API: every job of the run in one Batch API
# submission (nanoedit.run.batch_run), each request at the standard tier.
BATCH_TIER = "batch"
RUN_TIERS: tuple[str, ...] = (*TIERS, BATCH_TIER)
# The INPUT (or --ref) that means standard input, as in curl and cat.
STDIN = "-"

JobKind = Literal["edit", "generate", "fetch"]
"""``fetch``: collecting a task submitted elsewhere (``nanoedit fetch``), sent to no model."""


def normalize_ratio(value: str) -> str:
    """Return a ratio from :data:`RATIOS`, or raise a usage error naming the choices."""
    cleaned = value.strip().lower().replace("/", ":")
    if cleaned in RATIOS:
        return cleaned
    raise UsageError(f"invalid ratio {value!r}; use one of: {', '.join(RATIOS)}")


def normalize_size(value: str | None) -> str | None:
    """Return ``512``, ``1K``, ``2K`` or ``4K`` (any case accepted), ``None`` for no size."""
    if value is None or value.strip() == "":
        return None
    cleaned = value.strip().upper()
    if cleaned in SIZES:
        return cleaned
    raise UsageError(f"invalid size {value!r}; use one of: {', '.join(SIZES)}")


def normalize_tier(value: str | None) -> str:
    """Return a tier of :data:`TIERS` (any case accepted; None or empty: standard), or raise a
    usage error naming the choices."""
    if value is None or value.strip() == "":
        return STANDARD_TIER
    cleaned = value.strip().lower()
    if cleaned in TIERS:
        return cleaned
    raise UsageError(f"invalid tier {value!r}; use one of: {', '.join(TIERS)}")


@dataclass(frozen=True, slots=True)
class ImageSource:
    """One input image as the user named it: a local file or an http(s) URL."""

    location: str
    url: str | None = None

    @property
    def is_url(self) -> bool:
        """True for an http(s) URL, False for a local file."""
        return self.url is not None

    @property
    def is_stdin(self) -> bool:
        """True for ``-``: the image is read from standard input."""
        return self.url is None and self.location == STDIN

    @property
    def label(self) -> str:
        """How the image is named in messages: ``stdin`` for ``-``, else as given."""
        return "stdin" if self.is_stdin else self.location

    @property
    def path(self) -> Path:
        """The local file's path (only meaningful when not a URL)."""
        return Path(self.location)

    @property
    def name(self) -> str:
        """The file name part: ``cat.png`` for ``./pics/cat.png`` or ``https://h/x/cat.png?s=1``;
        ``stdin`` for ``-`` and ``/dev/stdin``, ``fd63`` for ``/dev/fd/63`` (``<(...)``)."""
        if self.url is None:
            if self.is_stdin:
                return "stdin"
            descriptor = re.fullmatch(r"/(?:dev|proc/self)/fd/(\d+)", self.location)
            if descriptor:
                number = descriptor.group(1)
                return "stdin" if number == "0" else f"fd{number}"
            return self.path.name
        parts = urlsplit(self.url)
        name = PurePosixPath(unquote(parts.path)).name
        return name or parts.hostname or "image"

    @property
    def stem(self) -> str:
        """The name without its extension, made safe for a file name."""
        name = self.name
        is_host = self.url is not None and not PurePosixPath(urlsplit(self.url).path).name
        if not is_host and "." in name.lstrip("."):
            name = name.rsplit(".", 1)[0]
        return safe_file_stem(name) or "image"


Exchange = dict[str, Any]
"""One request's side of a conversation as a provider gave it, kept by the journal so that a
later turn can continue it (JSON; see :class:`PastTurn`). Keys:

- ``api``: how it was asked: ``"generate_content"`` (Gemini's and Vertex's generateContent),
  ``"interactions"`` (Gemini's Interactions API) or ``"chat"`` (OpenRouter's chat completions);
- ``images``: the job's result numbers (1-based, in the order of the job's results) that this
  request produced;
- ``model``: the model's answer as the API gave it, for sending back in a history: the
  ``parts`` of a generateContent ``content`` (thought parts dropped, every other part kept with
  its ``thoughtSignature`` exactly as received), or the Interactions ``steps`` (thought steps
  with their ``signature``, ``model_output`` steps), or a chat ``message``; every image's
  base64 replaced by ``{"nanoedit_result": N}`` (the result number it was saved as);
- ``interaction_id`` (Interactions only): the interaction's id; ``stored``: whether the server
  kept it (``store`` was not false), so that ``previous_interaction_id`` may name it.
"""


@dataclass(frozen=True, slots=True)
class PastTurn:
    """One earlier turn of a thread, oldest first: what the user asked (the prompt, and the
    images sent beside it: for the first turn every input, for a later one only the images
    added to it), what the provider answered (its :data:`Exchange` for the request that made
    the image the thread goes on from; None when the job kept none, e.g. a backend with no
    conversation), and that image, saved."""

    job: int
    backend: str
    model: str
    prompt: str
    inputs: tuple[ImageSource, ...]
    exchange: Exchange | None
    result: int
    """The number (1-based) of the job's result the thread goes on from."""
    image: Path
    """Where that result was saved (checked to be there, with the SHA-256 the journal holds)."""
    sandbox: bool = False
    """Whether the built-in sandbox answered it: its answer (its thought signatures) means
    nothing to a real model, nor a real model's to the sandbox."""


@dataclass(frozen=True, slots=True)
class Thread:
    """The conversation a ``--continue`` job is the next turn of: its earlier turns, oldest
    first; the last is the one the job continues, and the job's first image is that turn's
    saved result (so a backend without conversation still edits the right image)."""

    turns: tuple[PastTurn, ...]

    @property
    def parent(self) -> PastTurn:
        """The turn this job continues."""
        return self.turns[-1]

    def seen_from(self, sandbox: bool) -> tuple[Thread, tuple[int, ...]]:
        """The thread as a run to the sandbox (``sandbox``) or to a real provider can send it:
        the turns the other one answered keep their prompts and images but not their answers
        (a real model refuses the sandbox's thought signatures, and the sandbox a real one's),
        so they go as the user's; and the jobs of those turns."""
        other = tuple(turn.job for turn in self.turns if turn.sandbox != sandbox)
        if not other:
            return self, ()
        turns = tuple(
            turn if turn.sandbox == sandbox else replace(turn, exchange=None) for turn in self.turns
        )
        return Thread(turns), other


class Progress(Protocol):
    """Where a job reports what it is doing (its backend, its uploads, its downloads): a short
    phase ("uploading", "task running"), with byte counts when it moves data."""

    def __call__(self, phase: str, done: int | None = None, total: int | None = None) -> None:
        """Report the job's current phase."""


# @last, @12, @12.2: the last image saved, job 12's first image, job 12's second image.
HISTORY_REFERENCE = re.compile(r"@(last|\d+)(?:\.(\d+))?")


def is_history_reference(text: str) -> bool:
    """Whether an input names an earlier result (``@last``, ``@ID``, ``@ID.N``)."""
    return HISTORY_REFERENCE.fullmatch(text.strip()) is not None


References = Callable[[str], Path]
"""Looks up the saved image an input such as ``@last`` or ``@12.2`` names (the journal's history
does: :func:`nanoedit.journal.history.resolve_reference`), or says why it cannot be used."""


def parse_source(text: str, references: References | None = None) -> ImageSource:
    """Turn an INPUT or --ref argument into an :class:`ImageSource`.

    ``http://`` and ``https://`` are URLs; any other ``scheme://`` is refused, because
    nanoedit only ever fetches http(s); ``@last`` and ``@ID`` are images earlier jobs saved,
    looked up with ``references``; everything else is a local path.
    """
    stripped = text.strip()
    if not stripped:
        raise InputError("an input is empty; pass an image file or an http(s) URL")
    if is_history_reference(stripped):
        # An earlier result (@last, @12, @12.2): the file it was saved to, from the history.
        if references is None:
            raise InputError(
                f"{text} names an earlier result, and there is no history to look it up in "
                "here; pass the image's path"
            )
        return ImageSource(location=str(references(stripped)))
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", stripped)
    scheme = match.group(1).lower() if match else ""
    if scheme in ("http", "https"):
        parts = urlsplit(stripped)
        if not parts.netloc or not parts.hostname:
            raise InputError(f"{text} is not a valid URL (it has no host); check the address")
        return ImageSource(location=stripped, url=stripped)
    if match and (stripped[len(scheme) + 1 :].startswith("//") or scheme in ("data", "mailto")):
        raise InputError(
            f"{text} uses the {scheme}: scheme; nanoedit reads local files and http(s) URLs only"
            + (" (for a local file, pass its path)" if scheme == "file" else "")
        )
    return ImageSource(location=text)


def safe_file_stem(text: str, limit: int = 60) -> str:
    """Keep letters, digits, dots, dashes and underscores; collapse the rest into dashes."""
    cleaned = re.sub(r"[^\w.-]+", "-", text, flags=re.UNICODE).strip("-.")
    return cleaned[:limit].rstrip("-.")


def prompt_slug(prompt: str, limit: int = 40) -> str:
    """A short file-name slug of a prompt: ``a red fox in snow`` -> ``a-red-fox-in-snow``."""
    words = re.findall(r"\w+", prompt.lower(), flags=re.UNICODE)
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > limit:
            break
        slug = candidate
    if not slug and words:
        slug = words[0][:limit]
    return slug or "image"


# --transparent's methods (see nanoedit.run.transparency), and the value that picks one.
TRANSPARENT_METHODS: tuple[str, ...] = ("native", "key", "matte")
TRANSPARENT_AUTO = "auto"

# The defaults of what the command line leaves out; its options show them in --help.
DEFAULT_COUNT = 1
DEFAULT_RESPONSE_FORMAT = "url"
DEFAULT_JOBS = 4
# --shard 1/1: the whole job list.
WHOLE_RUN = (1, 1)


DIAL_NAMES: tuple[str, ...] = (
    "seed", "thinking", "search", "image_only", "format", "safety", "quality", "input_fidelity",
)  # fmt: skip
"""Every provider dial, by the name the catalog's ``dials`` lists use."""
DIAL_FLAGS: dict[str, str] = {name: "--" + name.replace("_", "-") for name in DIAL_NAMES}
"""The command-line flag of each dial, for messages."""
FORMATS: tuple[str, ...] = ("png", "jpeg", "webp")
THINKING_LEVELS: tuple[str, ...] = ("minimal", "low", "medium", "high")
QUALITIES: tuple[str, ...] = ("low", "medium", "high", "auto")
FIDELITIES: tuple[str, ...] = ("low", "high")


@dataclass(frozen=True, kw_only=True, slots=True)
class Dials:
    """The providers' own dials a job asks for (None or False: not asked, so not sent). Which
    backend and model take which is the catalog's to say; each backend reads them from here."""

    seed: int | None = None
    thinking: str | None = None
    """A thinking level, lower case (``minimal``, ``medium``, ``high``)."""
    search: bool = False
    """Google Search grounding."""
    image_only: bool = False
    """Ask for the image alone, no text beside it."""
    format: str | None = None
    """The image format the API is asked to return: png, jpeg or webp."""
    safety: str | None = None
    """The backend's own safety level, as its API spells it (fal 1-6, Replicate block_...)."""
    quality: str | None = None
    """gpt-image's rendering quality: low, medium, high or auto."""
    input_fidelity: str | None = None
    """gpt-image's faithfulness to the input images of an edit: low or high."""

    def given(self) -> dict[str, Any]:
        """The dials asked for, by name, in :data:`DIAL_NAMES` order (JSON values); empty when
        none is, so that a job without dials is recorded and matched as before they existed."""
        values = {name: getattr(self, name) for name in DIAL_NAMES}
        return {name: value for name, value in values.items() if value not in (None, False)}

    @classmethod
    def from_given(cls, given: Any) -> Dials:
        """The dials a journal's spec holds (:meth:`given`); none for an older row without."""
        if not isinstance(given, dict):
            return cls()
        return cls(**{name: given[name] for name in DIAL_NAMES if name in given})


NO_DIALS = Dials()


@dataclass(frozen=True, kw_only=True, slots=True)
class Options:
    """What to ask the model for; shared by every job of a run (a job-file line may change
    some of it for its own job)."""

    prompt: str
    ratio: str = "auto"
    size: str | None = None
    model: str | None = None
    count: int = DEFAULT_COUNT
    response_format: str = DEFAULT_RESPONSE_FORMAT
    tier: str = STANDARD_TIER
    """The service tier asked for (--tier): ``standard``, ``flex`` or ``priority``; what is
    sent and what it costs depend on it, so a job of another tier is another job."""
    transparent: str | None = None
    """How the result gets its alpha channel (``--transparent``), once planned: ``native``
    (the API's own transparent background), ``key`` (a flat key colour removed here) or
    ``matte`` (on white, then on black); None for an opaque result. The prompt then holds
    the instruction the method needs (see :mod:`nanoedit.run.transparency`)."""
    dials: Dials = NO_DIALS
    preset: str | None = None
    """The preset (``--preset``, or a ``--from`` line's) whose template ``prompt`` is put into
    before the job is planned; after that, the prompt is the one sent, and the name is kept
    for provenance."""

    @property
    def renders(self) -> int:
        """The paid requests each image takes: two for matte (on white, then on black)."""
        return 2 if self.transparent == "matte" else 1


@dataclass(frozen=True, kw_only=True, slots=True)
class RunOptions:
    """How a run behaves: where it sends and saves, how patiently, and what it prints.

    The first six override the settings of the same name (None: the environment or the
    config file decides); --ratio and --size, which are asked of the model, are given to
    :func:`~nanoedit.settings.load.load_settings` beside them.
    """

    backend: str | None = None
    out_dir: Path | None = None
    sandbox: bool = False
    proxy: str | None = None
    timeout: float | None = None
    retries: int | None = None
    jobs: int = DEFAULT_JOBS
    shard: tuple[int, int] = WHOLE_RUN
    """This run's part of the job list: K of N, as ``--shard K/N`` gives it."""
    skip_existing: bool = False
    overwrite: bool = False
    retry_unsafe: bool = False
    metadata: bool = True
    sidecar: bool = False
    dry_run: bool = False
    json_lines: bool = False
    quiet: bool = False
    print0: bool = False
    preview: bool = False
    open_images: bool = False
    report: Path | None = None
    # False: nothing of the run is written to the journal (--no-history).
    history: bool = True
    store: bool = True
    """False: ask the provider not to keep the requests and answers (--no-store), where a
    backend has a ``store`` setting (Google's Gemini API)."""
    max_cost: float | None = None
    """--max-cost: the most the run may spend, in US dollars (None: no limit)."""
    max_images: int | None = None
    """--max-images: the most images the run may ask for (None: no limit)."""
    tier: str = STANDARD_TIER
    """--tier: ``standard`` (one request a job, answered at once), ``flex`` or ``priority``
    (the service tier every job asks for, given to each job's :class:`Options` as it is
    planned), or ``batch`` (every job in one Batch API submission, at the batch price,
    answered within a day: gemini backend)."""
    detach: bool = False
    """--detach: with ``--tier batch``, exit once the batch is submitted (resume collects)."""
    resend: bool = False
    """resume --resend: send again, at once, the jobs of a batch that ended without them."""
    transparent: str | None = None
    """--transparent: results with an alpha channel, by ``auto`` (the best method for each
    job's backend and model), ``native``, ``key`` or ``matte``; None: opaque results."""
    mask: MaskSpec | None = None
    """``edit --mask`` or ``--region``: where each job's first image may change, as given;
    the planner checks it against each input and gives it to the job (:attr:`Job.mask`)."""


# --feather's default: a seam this many pixels wide, inside the mask (never outside it).
DEFAULT_FEATHER = 8


@dataclass(frozen=True, slots=True)
class MaskSpec:
    """Where an edit may change its image (``--mask`` or ``--region``), how its seam is
    feathered, and how far the model may stray outside it (``--max-drift``). Applies to the
    job's first image only; its references are sent as they are.

    Once checked (before anything is sent), ``mask`` is the mask file's absolute path and
    ``sha256`` its SHA-256, and ``original`` the SHA-256 of the input it was checked against:
    a resumed job composites with the same two files, or refuses."""

    mask: str | None = None
    region: tuple[int, int, int, int] | None = None
    """``X,Y,W,H`` in the input's pixels."""
    feather: int = DEFAULT_FEATHER
    max_drift: float | None = None
    """The most drift (:attr:`Drift.mean`, in %) a result may have before its job fails."""
    sha256: str | None = None
    original: str | None = None
    crop: bool = False
    """``--crop``: the model is sent a crop of the input around the mask (with a margin), and
    its answer is put back into that box (see :func:`nanoedit.output.masking.crop_box`)."""

    @property
    def label(self) -> str:
        """How messages name it: the mask file, or ``--region X,Y,W,H``."""
        if self.mask is not None:
            return self.mask
        assert self.region is not None
        return "--region " + ",".join(map(str, self.region))


@dataclass(frozen=True, slots=True)
class Drift:
    """How much a model changed outside the mask, measured on its answer aligned to the
    original's size and before compositing (which puts the original's pixels back there)."""

    mean: float
    """The mean absolute difference over every channel of every pixel outside the mask, as a
    percentage of full scale (0: untouched, 100: black turned white everywhere)."""
    changed: float
    """The percentage of pixels outside the mask of which some channel moved by more than
    :data:`DRIFT_TOLERANCE` levels."""
    resized: bool
    """The answer's size was not the original's: it was resized to it first."""
    stretched: bool
    """Its aspect ratio was not the original's either (more than 1% off): the alignment
    stretched it, and the figures say more about that than about the model."""
    limit: float | None = None

    @property
    def over(self) -> bool:
        """Past ``--max-drift``."""
        return self.limit is not None and self.mean > self.limit

    def to_json(self) -> dict[str, Any]:
        """The figures as --json, the provenance and the report carry them."""
        return {
            "mean": self.mean,
            "changed": self.changed,
            "resized": self.resized,
            "stretched": self.stretched,
            "limit": self.limit,
            "over": self.over,
        }


# A channel that moved by this many levels (of 255) or fewer counts as unchanged in
# Drift.changed: resampling and lossy coding move pixels by a few levels without any edit.
DRIFT_TOLERANCE = 8


@dataclass(frozen=True, slots=True)
class Job:
    """One request to a model: an edit of one input (plus references) or a generation; or
    the collection of a task submitted elsewhere, which ``task`` names as the user gave it."""

    kind: JobKind
    images: tuple[ImageSource, ...]
    options: Options
    stem: str
    output: Path | None = None
    task: str | None = None
    thread: Thread | None = None
    """With ``--continue``: the conversation this job is the next turn of (``images[0]`` is its
    last turn's result); None for a job that starts afresh."""
    mask: MaskSpec | None = None
    """With ``--mask`` or ``--region``: where the first image may change (see
    :mod:`nanoedit.output.masking`); its results are composited over it when saved."""

    @property
    def continues(self) -> tuple[int, int] | None:
        """With ``--continue``: the journal's job and result number the thread goes on from."""
        if self.thread is None:
            return None
        return self.thread.parent.job, self.thread.parent.result

    @property
    def label(self) -> str:
        """How the job is named in messages: its own input, its task, or the prompt slug."""
        if self.images:
            return self.images[0].label
        return f"task {self.task}" if self.task is not None else self.stem


def build_edit_jobs(
    inputs: list[str],
    refs: list[str],
    options: Options,
    output: Path | None,
    references: References | None = None,
) -> list[Job]:
    """One edit job per input, each carrying every reference after its own input; an input
    naming an earlier result is looked up with ``references``."""
    ref_sources = tuple(parse_source(ref, references) for ref in refs)
    jobs = []
    for text in inputs:
        source = parse_source(text, references)
        jobs.append(
            Job(
                kind="edit",
                images=(source, *ref_sources),
                options=options,
                stem=f"{source.stem}-edit",
                output=output,
            )
        )
    return jobs


def build_generate_job(options: Options, output: Path | None) -> Job:
    """The one job of ``nanoedit generate``."""
    return Job(
        kind="generate", images=(), options=options, stem=prompt_slug(options.prompt), output=output
    )


@dataclass(frozen=True, slots=True)
class SavedImage:
    """A checked image file: where it is, its format, its size in pixels and in bytes."""

    path: Path
    format: str
    width: int
    height: int
    size: int
    drift: Drift | None = None
    """A masked edit's: how much the model changed outside the mask before compositing."""


class ResultEntry(TypedDict, total=False):
    """One result of a job as the journal keeps it, in the order the API gave them."""

    url: str
    """Where the provider put the image, until it is saved."""
    spool: str
    """The spool file its base64 was streamed into while the answer arrived."""
    placing: str
    """The SHA-256 of the image while it is being linked into place (a crash in between
    leaves a file that may be it)."""
    path: str
    """Where it was saved, once it is."""
    sha256: str
    """The saved file's SHA-256."""
    lost: bool
    """Its spool file was gone when the job was taken up again: the result cannot be had."""
    black_sent: bool
    """A matte job's second paid request (the black render) was about to go out."""
    black_spool: str
    """The spool file its black render was kept in (see :mod:`nanoedit.run.matte`)."""
    black_url: str
    """Where the provider put its black render."""


@dataclass(frozen=True, slots=True)
class PlannedJob:
    """A checked job, ready to send: the backend it goes to, the model it asks for, and the
    names its images take (none for a job with ``-o``, which names its one file)."""

    job: Job
    backend: str
    model: str
    names: tuple[str, ...] = ()
    # Its row in the journal (None with --no-history), and how far an earlier run took it:
    # the task handles it submitted, the results it was answered with (a resumed job goes on
    # from there instead of paying again).
    journal_id: int | None = None
    tasks: tuple[str, ...] = ()
    results: tuple[ResultEntry, ...] = ()
    # The names it was given before a file or an earlier job of the run took any: with its
    # inputs and its request, what makes it this job (see nanoedit.journal.recording.identity).
    natural: tuple[str, ...] = ()
    # The journal row of the same job that another live run has under way: this run waits
    # for it instead of sending it again (--skip-existing).
    elsewhere: int | None = None


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What became of one job: refused or skipped when it was planned, or what running it
    gave. ``backend`` and ``model`` are None when the job was refused before they were known.
    """

    job: Job
    backend: str | None = None
    model: str | None = None
    outputs: tuple[SavedImage, ...] = ()
    warnings: tuple[str, ...] = ()
    error: NanoeditError | None = None
    skipped: bool = False
    text: str = ""
    """What the model said beside its images."""
    seconds: float | None = None
    """How long the job ran, from its start to its last image saved; None if it never ran."""
    sent: bool = False
    """Whether any request of the job went out."""
    held_back: bool = False
    """Never sent: a rejected key (another job's), a closed stdout or a budget stopped the run
    first."""
    usage: dict[str, Any] | None = None
    """What the provider reported the job used (tokens; OpenRouter's cost), if it did."""
    cost: float | None = None
    """What the job cost in US dollars, as the journal keeps it: the provider's own figure,
    else the price table's for the images it made; None when unknown or never answered."""
    journal_id: int | None = None
    """The job's id in the journal (``nanoedit history show ID``), when it has one."""
    left: str | None = None
    """The journal state an aborted run left the job in (``submitted``…), for ``resume``."""
    tasks: tuple[str, ...] = ()
    """The ids of the tasks an asynchronous API gave the job, as the provider names them."""

    @property
    def state(self) -> str:
        """Where the job stands: saved, skipped, failed, refused, not sent, or the journal
        state an abort left it in."""
        if self.left is not None:
            return self.left
        if self.error is None:
            return "skipped" if self.skipped else "saved"
        if self.held_back:
            return "not sent"
        return "refused" if self.error.kind == "refused" else "failed"

    @property
    def ok(self) -> bool:
        """True when the job saved every image (or was skipped) and failed nowhere."""
        return self.error is None


# How many jobs a message names before it says how many more there are.
NAMED_JOBS = 5


def named_jobs(jobs: Sequence[PlannedJob]) -> str:
    """Jobs as a message names them: ``job 3 (c.png)``, or the input alone for a job the
    journal does not keep; the first few, then how many more."""
    names = [
        job.job.label if job.journal_id is None else f"job {job.journal_id} ({job.job.label})"
        for job in jobs[:NAMED_JOBS]
    ]
    more = len(jobs) - NAMED_JOBS
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def exit_code_for(outcomes: Sequence[JobOutcome]) -> ExitCode:
    """0 when all saved, the failure's own code when all failed, 7 when some did."""
    failures = [outcome.error for outcome in outcomes if outcome.error is not None]
    if not failures:
        return ExitCode.OK
    if len(failures) < len(outcomes):
        return ExitCode.PARTIAL
    return failures[0].exit_code
