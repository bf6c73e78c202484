"""What every backend shares: how it describes itself, the job it is handed, the results it
returns, answer parsing and the judging of a ``config check`` answer.

A backend is a subclass of :class:`BackendBase`: its class attributes say what it is (name,
config keys, what inputs it takes, aliases, limits, setup hint), its class methods how
``config check`` probes it and how ``models --live`` asks what it serves today, and an
instance sends one job. The core derives every list of backends from the registry in
``nanoedit.backends`` and never names one.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

from nanoedit.backends.registry import backend_names, load
from nanoedit.catalog.models import FLASH_ALIAS, Catalog, Offer, shipped_catalog
from nanoedit.errors import ApiError, AuthError, NanoeditError
from nanoedit.jobs import Exchange, Job, Options, PastTurn, Progress
from nanoedit.net.inputs import InputImage
from nanoedit.urls import host_of

if TYPE_CHECKING:
    import httpx

    from nanoedit.b64stream import Streamed
    from nanoedit.net.http import JobHttp
    from nanoedit.net.uploads import HostedImage
    from nanoedit.settings.keys import KeySpec
    from nanoedit.settings.values import BackendSettings


@dataclass(frozen=True)
class PreparedTurn:
    """An earlier turn of a ``--continue`` job's thread with its images read: those the user
    sent that turn (``inputs``, as :attr:`PastTurn.inputs` names them) and the result the
    thread goes on from (``image``), for a backend that resends the history."""

    turn: PastTurn
    inputs: tuple[InputImage, ...]
    image: InputImage


@dataclass(frozen=True)
class PreparedJob:
    """A job whose inputs are checked: local images read, URLs kept as URLs.

    For an API that takes URLs only, ``urls`` holds every input in order and ``hosted`` the
    local files among them, each with the URL its upload got.
    """

    job: Job
    model: str
    uploads: tuple[InputImage, ...] = ()
    urls: tuple[str, ...] = ()
    hosted: tuple[HostedImage, ...] = ()
    history: tuple[PreparedTurn, ...] = ()
    """With ``job.thread``, on a backend that :attr:`~BackendBase.converses`: every earlier turn,
    oldest first, its images read (the job's own ``uploads`` still hold its first image, the
    last turn's result, for a backend that sends only that)."""

    def added_uploads(self) -> tuple[InputImage, ...]:
        """The images a continued turn sends beside its prompt: every upload but the first,
        which is the last turn's result and already in the history (all of them for a job
        that is no continuation)."""
        if self.job.thread is None:
            return self.uploads
        first = self.job.images[0] if self.job.images else None
        return tuple(upload for upload in self.uploads if upload.source != first)

    def inputs(self) -> list[InputImage | str]:
        """Every input in the job's order (the edited image first): its bytes when it was
        read or downloaded, else its URL. A backend that takes both needs the order back."""
        uploads = {upload.source: upload for upload in self.uploads}
        hosted = {item.image.source: item.url for item in self.hosted}
        urls = set(self.urls)
        inputs: list[InputImage | str] = []
        for source in self.job.images:
            if source in uploads:
                inputs.append(uploads[source])
            elif source in hosted:
                inputs.append(hosted[source])  # a local file an uploader put online
            elif source.location in urls:
                inputs.append(source.location)
        return inputs


@dataclass(frozen=True)
class ResultImage:
    """One image a backend produced: its bytes already, a URL to download them from, or a
    part file its bytes were streamed into while the answer arrived (see ``JobHttp.spool``)."""

    data: bytes | None = None
    url: str | None = None
    file: Path | None = None


@dataclass(frozen=True)
class PlannedRequest:
    """A request a backend would send, for ``--dry-run`` to show as a curl command."""

    method: str
    url: str
    headers: dict[str, str]
    # Multipart text fields and files (field name, local path or URL, content type).
    fields: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, str, str], ...] = ()
    json: Any = None
    # Strings inside ``json`` that stand for an image's base64 text (placeholder, local path or
    # URL): too large for a command line, so the curl command pipes them in.
    inline_files: tuple[tuple[str, str], ...] = ()
    # The same for strings that stand for a whole ``data:`` URI of an image
    # (``data:image/png;base64,…``), for APIs that take images that way.
    data_uris: tuple[tuple[str, str], ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Answer:
    """What a backend got for one job: its images, and any words the model said beside them.

    ``error`` is what stopped a job of several requests after some of its images were made:
    those are paid for, so they are saved before the job fails with it.
    """

    images: list[ResultImage]
    text: str = ""
    error: NanoeditError | None = None
    usage: dict[str, Any] | None = None
    """What the provider reported the job used (tokens, and a cost where it gives one)."""
    exchanges: tuple[Exchange, ...] = ()
    """What a backend that converses (:attr:`BackendBase.converses`) keeps of each request that
    made images, for a later ``--continue`` turn (see :data:`nanoedit.jobs.Exchange`)."""


def reported_usage(response: httpx.Response, field: str = "usage") -> dict[str, Any] | None:
    """The usage report of a JSON answer (``usage``, Gemini's ``usageMetadata``), or None."""
    try:
        body = json.loads(response.content) if looks_like_json(response) else None
    except (ValueError, RuntimeError):  # not JSON after all, or a stream not read
        return None
    usage = body.get(field) if isinstance(body, dict) else None
    return usage if isinstance(usage, dict) and usage else None


def add_usage(total: dict[str, Any] | None, more: dict[str, Any] | None) -> dict[str, Any] | None:
    """Two usage reports of one job's requests as one: numbers added, the rest the latest."""
    if total is None or more is None:
        return more if total is None else total
    summed = dict(total)
    for name, value in more.items():
        before = summed.get(name)
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in (before, value)
        )
        summed[name] = before + value if numbers else value
    return summed


def gather(count: int, progress: Progress, ask: Callable[[int], Answer]) -> Answer:
    """The answers of a job sent ``count`` times (one image each) as one answer: ``ask(before)``
    sends it once, ``before`` being how many images the job has so far (the first it makes is
    result ``before + 1``). A failure (raised, or an answer's ``error``) after some images were
    made returns those with it: they are paid for; one before any image is raised."""
    images: list[ResultImage] = []
    texts: list[str] = []
    exchanges: list[Exchange] = []
    usage: dict[str, Any] | None = None
    for _ in range(count):
        progress("waiting for the model")
        try:
            answer = ask(len(images))
        except NanoeditError as exc:
            if not images:
                raise
            answer = Answer([], error=exc)
        images += answer.images
        usage = add_usage(usage, answer.usage)
        exchanges += answer.exchanges
        if answer.text:
            texts.append(answer.text)
        if answer.error is not None:
            if not images:
                raise answer.error
            return Answer(images, "\n".join(texts), answer.error, usage, tuple(exchanges))
    return Answer(images, "\n".join(texts), usage=usage, exchanges=tuple(exchanges))


class Takes(StrEnum):
    """What a backend's requests carry for input images."""

    FILES = "files"
    """The image bytes: local files as they are, URLs downloaded by nanoedit first."""
    URLS = "urls"
    """Public http(s) URLs only, fetched by the provider."""
    BOTH = "files and urls"
    """Local files as bytes (the backend uploads them to the provider's storage), and URLs as
    they are, fetched by the provider."""

    @property
    def files(self) -> bool:
        """Whether local files can go to such a backend."""
        return self is not Takes.URLS

    @property
    def fetches(self) -> bool:
        """Whether the provider fetches URL inputs itself (nanoedit need not download them)."""
        return self is not Takes.FILES


# The statuses of a ``config check`` verdict.
READY = "ready"
KEY_REJECTED = "key rejected"
UNREACHABLE = "unreachable"
NOT_CONFIGURED = "not configured"
NO_KEY = "no key"
"""The key command failed, so nothing was sent."""
FAILED = "error"
"""The server answered, but not as the API should (a wrong base URL, a 429, a JSON 5xx)."""


@dataclass(frozen=True)
class Verdict:
    """How a backend judged its ``config check`` answer: a status above and a detail line."""

    status: str
    detail: str


class LiveModel(NamedTuple):
    """One image model as a provider's listing endpoint describes it today: its id there, and
    what its schema lets it take, in nanoedit's spelling (None: the provider publishes none)."""

    id: str
    ratios: tuple[str, ...] | None = None
    sizes: tuple[str, ...] | None = None
    formats: tuple[str, ...] | None = None


class ListingGet(Protocol):
    """How a backend's listing asks its provider (``nanoedit models --live``)."""

    def __call__(self, url: str, headers: Mapping[str, str], *, missing_ok: bool = False) -> Any:
        """GET ``url`` and return its JSON; None for a 404 when ``missing_ok`` (the page of a
        model that is gone). Any other answer than 2xx JSON ends the listing, judged as
        ``config check`` judges its probe."""
        ...


@dataclass(frozen=True)
class Probe:
    """The one cheap request that checks a backend, and where it goes (for messages)."""

    url: str
    key: str = field(repr=False)
    where: str
    headers: Mapping[str, str] = field(repr=False)

    def quote(self, text: object, limit: int = 300) -> str:
        """Server text for a message: one line, clipped, and never the key (servers quote
        what they were sent more often than they should)."""
        said = str(text)
        return clip(said.replace(self.key, "****") if self.key else said, limit)


class BackendBase:
    """A backend describes itself in class attributes; an instance sends jobs.

    Every backend owns the config keys ``NAME.base_url``, ``NAME.api_key``, ``NAME.api_key_cmd``
    and ``NAME.model`` (environment ``NANOEDIT_NAME_…``), plus :attr:`extra_keys`.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    """What it is, for help texts: "OpenAI-compatible multipart gateway"."""
    takes: ClassVar[Takes]
    default_base_url: ClassVar[str | None] = None
    default_model: ClassVar[str] = FLASH_ALIAS
    """The model a backend uses unless told: an alias, so it follows the lineup."""
    key_env: ClassVar[tuple[str, ...]] = ()
    """The provider's own variables for the key, read after ``NANOEDIT_NAME_API_KEY``."""
    extra_keys: ClassVar[Mapping[str, KeySpec]] = {}
    """Config keys of this backend beyond the four every backend has, by their short name."""
    free_ids: ClassVar[bool] = False
    """Whether the API's model names are its own to choose (a gateway): Google's id of a model
    the catalog does not list for it is sent untouched, not refused."""
    max_images: ClassVar[int | None] = None
    asynchronous: ClassVar[bool] = False
    """Whether the API answers a submission with a task id to poll: such a task can be
    collected later, in another process, by its handle (:meth:`collect`)."""
    base64_keys: ClassVar[frozenset[str]] = frozenset()
    """The JSON keys whose string values may hold a whole image in its answers (base64, or a
    ``data:`` URI): each such value is streamed into a file while the answer arrives."""
    response_formats: ClassVar[tuple[str, ...]] = ("url", "b64_json")
    """The ``--response-format`` values it honours (an API that gives only URLs: ``url``)."""
    """Images one request may carry whatever the model, when the API itself limits it."""
    output_format: ClassVar[str | None] = None
    """The ``output_format`` its requests ask for, where the API has that field."""
    converses: ClassVar[bool] = False
    """Whether the API carries a conversation, so that a ``--continue`` job sends the thread
    (``job.thread``) and the model sees the earlier turns; otherwise only the last turn's image
    is sent, and the run says so once."""
    service_tiers: ClassVar[bool] = False
    """Whether the API takes a service tier (``--tier flex|priority``) for the models whose
    catalog offer lists it; a backend without one refuses any tier but standard."""
    lists_all: ClassVar[bool | None] = None
    """What ``models --live`` can learn of it: True when a listing endpoint gives the whole
    image lineup (so a model the catalog lacks shows), False when the catalog's ids are looked
    up one by one, None when the API has no listing endpoint (:meth:`list_models`)."""

    def __init__(
        self, settings: BackendSettings, http: JobHttp, catalog: Catalog | None = None
    ) -> None:
        assert settings.base_url is not None
        self.settings = settings
        self.http = http
        self.catalog = catalog or shipped_catalog()

    def offer(self, model: str) -> Offer | None:
        """How this backend sells the model sent as ``model``; None for an id the catalog
        does not know (sent as given, with nothing checked)."""
        return self.catalog.resolve_quietly(self.name, model).offer

    @classmethod
    def setup_hint(cls) -> str:
        """The command that sets this backend up."""
        key = f"nanoedit config set {cls.name}.api_key YOUR-KEY"
        if cls.default_base_url:
            return key
        return f"nanoedit config set {cls.name}.base_url https://YOUR-SERVER && {key}"

    @classmethod
    def check_options(cls, model: str, options: Options) -> None:
        """Refuse (:class:`~nanoedit.errors.UsageError`) what ``model`` cannot do on this
        backend in a way the shared checks cannot say, naming what it can instead; checked
        before anything is sent. Most backends have nothing of their own to check."""

    @classmethod
    def native_transparency(cls, model: str) -> bool:
        """Whether ``model`` on this backend draws a transparent background itself when asked
        (``--transparent-method native``); the nano-banana models have no such setting on any API
        (the other methods, key and matte, work on every model)."""
        return False

    @classmethod
    def probe(cls, base_url: str, key: str) -> Probe:
        """The ``config check`` request: authenticated, free, and makes no image."""
        raise NotImplementedError

    @classmethod
    def judge(cls, response: httpx.Response, probe: Probe, settings: BackendSettings) -> Verdict:
        """What the probe's answer says: ready, key rejected, or what is wrong."""
        raise NotImplementedError

    @classmethod
    def list_models(
        cls, base_url: str, key: str, ids: Sequence[str], get: ListingGet
    ) -> list[LiveModel]:
        """The image models the provider lists today, through its free listing endpoints
        (``ids``: the catalog's ids for this backend, for an API asked model by model); a
        backend whose :attr:`lists_all` is None has none."""
        raise NotImplementedError

    def run(self, prepared: PreparedJob, progress: Progress) -> Answer:
        """Send the job and return its images, or raise a :class:`NanoeditError`."""
        raise NotImplementedError

    def plan(self, prepared: PreparedJob) -> list[PlannedRequest]:
        """The requests :meth:`run` would start with, sending nothing."""
        raise NotImplementedError

    def collect(self, handles: Sequence[str], progress: Progress) -> Answer:
        """Poll the submitted tasks ``handles`` name until they end, and return their images as
        :meth:`run` would; an asynchronous backend only (``run`` submits, then collects)."""
        raise NotImplementedError

    @classmethod
    def handle_from_user(cls, text: str, model: str) -> str:
        """The handle of a task as the user names it (its id as the provider shows it), sent
        to ``model``; a :class:`~nanoedit.errors.UsageError` when it cannot be one."""
        raise NotImplementedError

    @classmethod
    def task_id(cls, handle: str) -> str:
        """The provider's id of the task ``handle`` names, as messages show it."""
        return handle


def streamed_result(value: object, streamed: Streamed | None) -> ResultImage | None:
    """The result whose bytes went to a part file while the answer arrived, when ``value``
    (a string of the kept JSON) is the placeholder of one; else None."""
    found = streamed.value_of(value) if streamed is not None else None
    if found is None:
        return None
    from nanoedit.output.parts import PartFile

    part = found.sink
    assert isinstance(part, PartFile), "a spool makes part files"
    return ResultImage(file=part.path)


def result_from_base64(value: str, where: str, streamed: Streamed | None = None) -> ResultImage:
    """A result given as bare base64: streamed to a file already, or decoded here."""
    return streamed_result(value, streamed) or ResultImage(data=decode_base64(value, where))


def result_from_url(value: str, where: str, streamed: Streamed | None = None) -> ResultImage:
    """A result whose ``url`` field is either an http(s) URL or a ``data:`` URI (streamed to
    a file already when ``streamed`` holds it)."""
    done = streamed_result(value, streamed)
    if done is not None:
        return done
    if value.startswith("data:"):
        return ResultImage(data=decode_data_uri(value, where))
    if value.lower().startswith(("http://", "https://")):
        return ResultImage(url=value)
    raise ApiError(f"{where} returned an image URL nanoedit will not fetch: {value[:80]!r}")


def decode_data_uri(value: str, where: str) -> bytes:
    """Decode a ``data:image/…;base64,…`` URI."""
    header, _, payload = value.partition(",")
    if ";base64" not in header:
        raise ApiError(f"{where} returned a data: URI that is not base64 ({header[:40]})")
    return decode_base64(payload, where)


def encode_base64(data: bytes) -> str:
    """An input image as base64 text, for APIs that take images inside JSON."""
    import pybase64  # the backends that send base64 load it when they do, not at start-up

    return pybase64.b64encode_as_string(data)


def decode_base64(payload: str, where: str) -> bytes:
    """Decode base64 image data, tolerating whitespace and missing padding."""
    cleaned = re.sub(r"\s+", "", payload)
    cleaned += "=" * (-len(cleaned) % 4)
    import pybase64  # only answers with base64 in them need it, not every start-up

    try:
        return pybase64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(f"{where} returned base64 image data that does not decode") from None


def read_json(response: httpx.Response, where: str) -> Any:
    """The answer's JSON, or an error that says what came instead (an HTML proxy page…)."""
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        from nanoedit.output.imageformat import describe

        if looks_like_json(response) and isinstance(exc, json.JSONDecodeError):
            size = len(response.content)
            what = f"JSON that is cut short or malformed (it breaks at byte {exc.pos} of {size})"
        else:
            what = f"a body that is not JSON ({describe(response.content)})"
        raise ApiError(
            f"{where} answered HTTP {response.status_code} with {what}; the server or a proxy "
            "in front of it failed, try again later"
        ) from None


def looks_like_json(response: httpx.Response) -> bool:
    """Whether a body is JSON at all: a 401 from a proxy is often an HTML page."""
    return response.content.lstrip()[:1] in (b"{", b"[")


def not_a_listing(url: str, what: str = "a model list") -> ApiError:
    """A listing endpoint answered JSON of another shape: most often a base URL that points
    at something else."""
    return ApiError(f"{host_of(url)} answered JSON that is not {what}; check the base URL")


def auth_error(settings: BackendSettings, where: str, detail: str) -> AuthError:
    """The key was rejected: say how to fix it where it was set."""
    return AuthError(
        f"{where} rejected the {settings.name} API key ({detail}); {settings.key_advice()}"
    )


def clip(text: str, limit: int = 300) -> str:
    """Server text cut to a length that fits in one message line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def parse_json(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it is not JSON at all."""
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def non_json_verdict(response: httpx.Response, probe: Probe, settings: BackendSettings) -> Verdict:
    """The verdict on a probe answered with something other than the API's JSON."""
    from nanoedit.output.imageformat import describe

    status = response.status_code
    name = settings.name
    what = describe(response.content)
    if status in (401, 403):
        return Verdict(
            KEY_REJECTED, f"{probe.where} rejected the key (HTTP {status}); {settings.key_advice()}"
        )
    if status >= 500:
        return Verdict(
            UNREACHABLE,
            f"{probe.where} answered HTTP {status} with no API answer ({what}); "
            "the server or a proxy in front of it is down, try again later",
        )
    if 300 <= status < 400 and "location" in response.headers:
        target = probe.quote(response.headers["location"], 120)
        return Verdict(
            FAILED,
            f"{probe.where} redirects to {target}; set {name}.base_url to the address it points to",
        )
    return Verdict(
        FAILED,
        f"{probe.where} answered HTTP {status} with no API answer ({what}); check {name}.base_url",
    )


def carries_thread(job: Job, backend: str) -> bool:
    """Whether a ``--continue`` job sent to ``backend`` sends its thread: the backend
    converses, and the turn it goes on from was answered by the same backend (a thread does
    not cross providers: another's history, its signatures, mean nothing there). Otherwise the
    job is sent with the last turn's image alone, as any edit of it."""
    thread = job.thread
    if thread is None or thread.parent.backend != backend:
        return False
    return backend_class(backend).converses


def thread_notice(job: Job, backend: str) -> str | None:
    """What a run says (once) of a ``--continue`` job whose thread ``backend`` does not
    send; None when it sends it, or the job is no continuation."""
    thread = job.thread
    if thread is None or carries_thread(job, backend):
        return None
    parent = thread.parent
    if backend_class(backend).converses:
        return (
            f"{backend} cannot carry on a thread of {parent.backend}: the model sees only the "
            f"image of job {parent.job}, not the thread"
        )
    return (
        f"{backend} has no conversation: the model sees only the image of job {parent.job}, "
        "not the thread"
    )


def backend_class(name: str) -> type[BackendBase]:
    """The registered backend called ``name`` (a name the settings already checked), its
    module imported now if it was not yet."""
    loaded = load(name)
    if not (isinstance(loaded, type) and issubclass(loaded, BackendBase)):
        raise TypeError(f"the registry's {name} is not a backend: {loaded!r}")
    return loaded


def backend_classes() -> tuple[type[BackendBase], ...]:
    """Every registered backend class, in registry order (each backend's module imported)."""
    return tuple(backend_class(name) for name in backend_names())
