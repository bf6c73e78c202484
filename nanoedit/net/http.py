"""HTTP for a run: the retry policy, and each job's time budget (the client is built in
``nanoedit.net.client``).

Retrying is where money is lost: a paid request that reached the model and is sent again may
be charged twice. So a request is sent again only when the server said it did not do it (408,
429, 5xx) or when the failure came before the whole request body left this machine; a drop
or a timeout after that is retried only for safe requests (polls, downloads) or with
``--retry-unsafe``.

httpx is imported where a request is sent or its failure read, not here: a ``--dry-run``
builds the same backends on a :class:`JobHttp` but sends nothing, and skips the HTTP stack's
import (about 30 ms).
"""

from __future__ import annotations

import email.utils
import random
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from nanoedit.clock import Clock
from nanoedit.errors import NanoeditError, NetworkError

if TYPE_CHECKING:
    import httpx

    from nanoedit.b64stream import JsonPath, Streamed
    from nanoedit.output.parts import PartFile

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# A server that accepts no connection in this long is down; no reason to wait for a render.
CONNECT_TIMEOUT = 10.0
# One synchronous 4K edit can take minutes before its first byte; the job's own budget
# (--timeout) is what really bounds it.
READ_TIMEOUT = 300.0
# The longest single wait, whatever Retry-After asks for and however many attempts failed.
MAX_RETRY_WAIT = 60.0
MAX_BACKOFF = 30.0
# A clean-up request (cancelling a task) goes out after Ctrl-C, when the process is about to
# exit, or after the job's time is up: it cannot wait long.
CLEANUP_TIMEOUT = 5.0
# Connections the client keeps open at least; a run of more jobs at once gets one for each.
MIN_POOL = 10
# The pieces an answer streamed to disk is read in: large enough that decoding runs at the
# speed of one base64 pass over the whole text, small enough to cost nothing held.
STREAM_CHUNK = 256 * 1024
# Headers of the answer as it came over the wire, which the kept JSON no longer matches.
_WIRE_HEADERS = ("content-length", "content-encoding", "transfer-encoding")
# The most an API answer may hold, counted as decoded. An answer holds a few images at most
# (200 MiB each, as a result downloaded from a URL may be): past this, a server or proxy that
# sends without end, or a compressed answer that inflates without end, is refused before it
# fills the memory (an answer read whole) or the disk (images streamed out of one).
MAX_ANSWER_BYTES = 1024 * 1024 * 1024

Spool = Callable[[], "PartFile"]
"""Where an image streamed out of an answer goes: a new part file, open for writing and listed
in the run's part files (so Ctrl-C removes it); made by the runner, one per image."""


class Interrupted(Exception):
    """The run was cancelled (Ctrl-C) while a job was waiting or sending."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to send a request again."""

    retries: int = 3
    backoff: float = 1.0
    retry_unsafe: bool = False


def backoff_delay(attempt: int, base: float, jitter: float) -> float:
    """The wait before retry ``attempt`` (0-based): ``base * 2**attempt``, capped, less up to
    a quarter at random (``jitter`` in [0, 1)) so many clients do not retry in step."""
    return min(base * 2.0**attempt, MAX_BACKOFF) * (1 - 0.25 * jitter)


def retry_after(headers: httpx.Headers, now: datetime) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds or as an HTTP date; None if absent
    or unreadable."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Deadline:
    """A job's whole time budget (``--timeout``): every request and wait of the job fits in it."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.started = clock()
        self.read_cap = READ_TIMEOUT  # a backend whose answers come slower may raise it

    def elapsed(self) -> float:
        """Seconds since the job started."""
        return self.clock() - self.started

    def remaining(self) -> float:
        """Seconds left, never below zero."""
        return max(0.0, self.seconds - self.elapsed())

    def timeout(self) -> httpx.Timeout:
        """The timeouts of one request: short to connect, and never past the budget."""
        import httpx  # see the module's docstring

        left = max(self.remaining(), 0.001)
        return httpx.Timeout(min(self.read_cap, left), connect=min(CONNECT_TIMEOUT, left))

    def exceeded(self, where: str, what: str) -> NetworkError:
        """The error of a job that ran out of time."""
        return NetworkError(
            f"{what} on {where} did not finish within the job's time limit of "
            f"{self.seconds:g} s ({self.elapsed():.1f} s elapsed); raise it with --timeout"
        )


class JobLog(Protocol):
    """Where a job's paid steps are written down the moment they happen, so a process that
    dies right after one still leaves a record of it (the journal)."""

    def paid_request(self) -> None:
        """A paid request is about to be handed to the network (called for each attempt)."""

    def task(self, handle: str) -> None:
        """An asynchronous provider answered a submission with this task's handle (see
        :meth:`~nanoedit.backends.base.BackendBase.collect`); nothing has polled it yet."""


class _NoLog:
    """A job log that writes nothing down."""

    def paid_request(self) -> None:
        """Nothing to record."""

    def task(self, handle: str) -> None:
        """Nothing to record."""


NO_LOG: JobLog = _NoLog()
"""The log of a job nobody keeps a record of."""


def environment_proxies() -> dict[str, str]:
    """The proxies the environment names, by scheme; ``NO_PROXY`` alone names none."""
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    # NO_PROXY comes back as the "no" entry: an exemption list, not a proxy.
    proxies.pop("no", None)
    return proxies


def proxy_for(url: str, explicit: str | None) -> str | None:
    """The proxy a request to ``url`` goes through: the explicit one, or the environment's
    (``HTTPS_PROXY``, ``ALL_PROXY``… unless ``NO_PROXY`` exempts the host), as httpx picks it."""
    if explicit:
        return explicit
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if proxy and parts.hostname and bypass(parts.hostname):
        return None
    return proxy


def check_download(
    response: httpx.Response,
    what: str,
    where: str,
    cap: int,
    failure: type[NanoeditError],
    denied: str,
) -> int | None:
    """Refuse an answer that is not a file (an error status), or too large by its header;
    returns the announced length. ``denied`` is the advice for a 401, 403 or 410."""
    if response.status_code != 200:
        from nanoedit.output.imageformat import describe

        body = _head(response, 512)
        hint = denied if response.status_code in (401, 403, 410) else "check the address"
        error = failure(
            f"{what} could not be downloaded from {where}: "
            f"HTTP {response.status_code} ({describe(body)}); {hint}"
        )
        error.transient = response.status_code in RETRY_STATUSES
        raise error
    announced = response.headers.get("content-length")
    length = int(announced) if announced and announced.isdigit() else None
    if length is not None and length > cap:
        raise too_large(what, where, cap, failure)
    return length


def too_large(what: str, where: str, cap: int, failure: type[NanoeditError]) -> NanoeditError:
    """The error of a download past its size cap."""
    return failure(
        f"{what} at {where} is larger than {cap // (1024 * 1024)} MiB; refusing to download it"
    )


@dataclass
class _BodyTrace:
    """What httpcore reports of a request's journey: did the whole body leave?"""

    events: list[str] = field(default_factory=list)

    def __call__(self, name: str, info: dict[str, Any]) -> None:
        self.events.append(name)

    @property
    def body_sent(self) -> bool | None:
        """True when the body was sent whole, False when it was not, None when unknown
        (a transport that reports nothing: then the request may have arrived)."""
        if not self.events:
            return None
        return any(name.endswith("send_request_body.complete") for name in self.events)


def _never_sent(exc: httpx.TransportError, trace: _BodyTrace) -> bool:
    """Whether a failed request certainly never reached the server whole."""
    import httpx  # see the module's docstring

    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return True
    return trace.body_sent is False


# Under this many bytes an answer holds no base64 value that would be streamed (the decoder
# keeps values under its MIN_CHARS, 64 KiB, in the JSON): it is read whole.
SMALL_ANSWER = 64 * 1024


def _small(response: httpx.Response) -> bool:
    """Whether the answer says it is shorter than :data:`SMALL_ANSWER` (a URL result)."""
    length = response.headers.get("content-length", "")
    encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
    return length.isdigit() and int(length) < SMALL_ANSWER and not encoded


def _head(response: httpx.Response, size: int) -> bytes:
    """The first ``size`` bytes of the body (decoded), and no more of it read: enough to say
    what an error page was, whatever its length."""
    head = b""
    for piece in response.iter_bytes():
        head += piece
        if len(head) >= size:
            break
    return head[:size]


def read_whole(response: httpx.Response, where: str) -> httpx.Response:
    """The answer with its whole body read, as ``response.read()`` reads it, but refused
    (:class:`ApiError`) past :data:`MAX_ANSWER_BYTES`, decoded, however it came."""
    if _small(response):
        response.read()  # it says how long it is, and that is short
        return response
    return _with_content(response, b"".join(_capped(response, where)))


def _capped(response: httpx.Response, where: str, size: int | None = None) -> Iterator[bytes]:
    """The body decoded, in pieces of ``size`` bytes (as they come when None), refused
    (:class:`ApiError`) once past :data:`MAX_ANSWER_BYTES`."""
    read = 0
    for piece in response.iter_bytes(size):
        read += len(piece)
        if read > MAX_ANSWER_BYTES:
            from nanoedit.errors import ApiError

            raise ApiError(
                f"{where} answered HTTP {response.status_code} with more than "
                f"{MAX_ANSWER_BYTES // (1024 * 1024)} MiB; refusing to read more of it: the "
                "server or a proxy in front of it failed"
            )
        yield piece


def _with_content(response: httpx.Response, content: bytes) -> httpx.Response:
    """A read answer like ``response``, holding ``content`` (decoded) as its body."""
    import httpx  # see the module's docstring

    headers = [(k, v) for k, v in response.headers.multi_items() if k not in _WIRE_HEADERS]
    return httpx.Response(
        response.status_code, headers=headers, content=content, request=response.request
    )


class JobHttp:
    """One job's view of the network: the shared client, its retry policy and time budget.

    ``notify`` hears about every retry (for the progress display); ``sleep`` waits on the
    ``clock`` and raises :class:`Interrupted` when the run is cancelled. ``now`` and
    ``sleeper``, when given, replace the clock's time of day and its waits. ``log`` hears of
    every paid request before it leaves, and of every task id as soon as it is known. A
    ``--dry-run`` gives no ``client``: it builds backends to show their requests, and sends none.
    """

    def __init__(
        self,
        client: httpx.Client | None,
        policy: RetryPolicy,
        deadline: Deadline,
        *,
        notify: Callable[[str], None] = lambda text: None,
        cancel: threading.Event | None = None,
        jitter: Callable[[], float] = random.random,
        now: Callable[[], datetime] | None = None,
        sleeper: Callable[[float], None] | None = None,
        proxy: str | None = None,
        clock: Clock | None = None,
        log: JobLog = NO_LOG,
        spool: Spool | None = None,
        stop_unpaid: threading.Event | None = None,
        keep_tasks: bool = False,
    ) -> None:
        self._client = client
        self.policy = policy
        self.deadline = deadline
        self.notify = notify
        self.cancel = cancel or threading.Event()
        self.jitter = jitter
        self.clock = clock or Clock()
        self.now = now or self.clock.now
        self.sleeper = sleeper
        self.proxy = proxy
        self.log = log
        # Whether any request of the job was handed to the network (the --json "sent").
        self.sent = False
        # Set when the run stops sending (a first Ctrl-C): the job's first paid request is not
        # sent, while a job that paid already goes on to its result.
        self.stop_unpaid = stop_unpaid or threading.Event()
        self.paid = False
        # Whether an asynchronous task is left running when the job stops waiting for it (the
        # journal keeps its id for resume) instead of being cancelled on the server.
        self.keep_tasks = keep_tasks
        # Whether the last paid request may have reached the server and no answer came back:
        # the one case where the provider may have charged for what nobody received.
        self.unanswered = False
        # Without a spool, answers are read whole and their images decoded in memory.
        self.spool = spool
        # Every part file an answer's images were streamed into, for the runner to discard
        # those never saved (a job that failed after its first answer).
        self.spooled: list[PartFile] = []

    @property
    def client(self) -> httpx.Client:
        """The run's shared client."""
        if self._client is None:
            raise RuntimeError("a dry run sends no request")
        return self._client

    def sleep(self, seconds: float) -> None:
        """Wait, unless the run is cancelled meanwhile."""
        if self.sleeper is not None:
            self.sleeper(max(0.0, seconds))
        elif self.clock.wait(max(0.0, seconds), self.cancel):
            raise Interrupted

    def send(
        self,
        request: httpx.Request,
        *,
        where: str,
        what: str,
        paid: bool,
        permanent: Callable[[httpx.Response], bool] = lambda response: False,
        wait_hint: Callable[[httpx.Response], float | None] = lambda response: None,
    ) -> httpx.Response:
        """Send a request and read its whole answer, retrying as the policy allows.

        The last answer is returned whatever its status, for the backend to explain;
        ``permanent`` tells a retryable status that no retry can fix (an unknown model), and
        ``wait_hint`` reads a wait the body asks for when there is no ``Retry-After``.
        """

        def read(response: httpx.Response) -> httpx.Response:
            return read_whole(response, where)

        return self.stream(
            request, read, where=where, what=what, paid=paid, permanent=permanent,
            wait_hint=wait_hint,
        )  # fmt: skip

    def send_json(
        self,
        request: httpx.Request,
        *,
        where: str,
        what: str,
        paid: bool,
        permanent: Callable[[httpx.Response], bool] = lambda response: False,
        wait_hint: Callable[[httpx.Response], float | None] = lambda response: None,
        keys: Collection[str],
    ) -> tuple[httpx.Response, Streamed | None]:
        """Send a request whose successful answer is JSON that may carry images as base64, as
        :meth:`send` does, but stream each long base64 value under ``keys`` (the backend's
        ``base64_keys``) into a part file of the spool while the answer arrives.

        Returns the answer, whose body is the JSON kept (each streamed value replaced by a
        placeholder), and what was streamed (None when nothing could be: no spool, or an
        answer other than 2xx, which is read whole as :meth:`send` reads it). An attempt that
        fails discards the part files it made before the request is sent again.
        """
        spool = self.spool
        if spool is None:
            return self.send(
                request, where=where, what=what, paid=paid, permanent=permanent,
                wait_hint=wait_hint,
            ), None  # fmt: skip

        def consume(response: httpx.Response) -> tuple[httpx.Response, Streamed | None]:
            if not 200 <= response.status_code < 300 or _small(response):
                # An error answer, or one too short to hold a value worth streaming: read
                # whole, as send reads it (and without loading the streaming decoder).
                return read_whole(response, where), None
            return self._stream_json(response, spool, where, keys)

        return self.stream(
            request, consume, where=where, what=what, paid=paid, permanent=permanent,
            wait_hint=wait_hint,
        )  # fmt: skip

    def _stream_json(
        self,
        response: httpx.Response,
        spool: Spool,
        where: str,
        keys: Collection[str],
    ) -> tuple[httpx.Response, Streamed]:
        """Read a JSON answer in pieces, each long base64 value into a part file of its own."""

        from nanoedit.b64stream import (
            Base64StreamError,
            JsonBase64Stream,
            format_path,
        )
        from nanoedit.errors import ApiError

        parts: list[PartFile] = []

        def open_part(path: JsonPath, media_type: str | None) -> PartFile:
            part = spool()
            parts.append(part)
            return part

        stream = JsonBase64Stream(open_part, keys=keys)
        status = response.status_code
        try:
            try:
                for chunk in _capped(response, where, STREAM_CHUNK):
                    stream.feed(chunk)
            except Base64StreamError as exc:
                raise ApiError(
                    f"{where} answered HTTP {status} with base64 image data that does not decode "
                    f"({exc}); the server or a proxy in front of it failed, try again later"
                ) from None
            try:
                streamed = stream.close()
            except Base64StreamError as exc:
                size = response.num_bytes_downloaded
                raise ApiError(
                    f"{where} answered HTTP {status} with JSON that is cut short or malformed "
                    f"(it ends inside the base64 of {format_path(exc.path)}, at byte {size}); "
                    "the server or a proxy in front of it failed, try again later"
                ) from None
            for part in parts:
                # Not synced here: saving decides that (with metadata it writes a copy).
                part.close(sync=False)
        except BaseException:
            # Nothing of a failed attempt stays: a broken connection is retried from fresh
            # part files, any other failure ends the job.
            for part in parts:
                part.discard()
            raise
        self.spooled += parts
        return _with_content(response, streamed.kept), streamed

    def discard_spooled(self) -> None:
        """Remove the part files of streamed images that were not saved (saving moves each
        into place, so those that were are gone already)."""
        for part in self.spooled:
            part.discard()
        self.spooled.clear()

    def send_cleanup(self, request: httpx.Request) -> httpx.Response | None:
        """Send a request that tidies up after the job has stopped (cancelling a task that
        would otherwise still be charged): once, with no retry and a short time of its own,
        even when the run is interrupted or the job's time is up. None when it failed."""
        import httpx  # see the module's docstring

        request.extensions = {
            **request.extensions,
            "timeout": httpx.Timeout(CLEANUP_TIMEOUT).as_dict(),
        }
        try:
            response = self.client.send(request)
        except httpx.HTTPError:
            return None
        return response

    def stream(
        self,
        request: httpx.Request,
        consume: Callable[[httpx.Response], T],
        *,
        where: str,
        what: str,
        paid: bool,
        follow_redirects: bool = False,
        permanent: Callable[[httpx.Response], bool] = lambda response: False,
        wait_hint: Callable[[httpx.Response], float | None] = lambda response: None,
        unknown_host: str = "check the base URL",
    ) -> T:
        """Send a request and hand its streamed answer to ``consume``, retrying as allowed.

        A retryable status is retried without calling ``consume`` while attempts remain; a
        connection that breaks while ``consume`` reads the body is retried like any other
        transport failure. ``paid`` requests are not sent again after their body left. A
        host name that does not resolve fails at once, with ``unknown_host`` as the advice.
        """
        import httpx  # see the module's docstring

        attempt = 0
        while True:
            if self.cancel.is_set():
                raise Interrupted
            if self.deadline.remaining() <= 0:
                raise self.deadline.exceeded(where, what)
            trace = _BodyTrace()
            request.extensions = {
                **request.extensions,
                "timeout": self.deadline.timeout().as_dict(),
                "trace": trace,
            }
            if paid:
                if self.stop_unpaid.is_set() and not self.paid:
                    raise Interrupted  # the run is stopping: a job not paid for yet stays unsent
                # Written down before the bytes leave: a crash just after sending is never silent.
                self.log.paid_request()
                self.paid = True
            try:
                self.sent = True
                response = self.client.send(request, stream=True, follow_redirects=follow_redirects)
                if paid:
                    self.unanswered = False
                try:
                    if (
                        response.status_code in RETRY_STATUSES
                        and attempt < self.policy.retries
                        and not permanent(response)
                    ):
                        wait = retry_after(response.headers, self.now())
                        if wait is None:
                            wait = wait_hint(response)
                        reason = f"HTTP {response.status_code}"
                    else:
                        return consume(response)
                finally:
                    response.close()
            except httpx.TransportError as exc:
                if paid and not _never_sent(exc, trace):
                    self.unanswered = True
                if self.cancel.is_set():
                    raise Interrupted from None
                through = proxy_for(str(request.url), self.proxy)
                unresolved = unresolved_host(exc, through, unknown_host)
                if unresolved is not None:
                    raise unresolved from None
                failure = self._transport_failure(exc, trace, where, what, paid, attempt, through)
                if failure is not None:
                    raise failure from None
                wait, reason = None, _describe(exc, through)
            attempt += 1
            delay = backoff_delay(attempt - 1, self.policy.backoff, self.jitter())
            if wait is not None:
                delay = wait
            delay = min(delay, MAX_RETRY_WAIT)
            if delay >= self.deadline.remaining():
                raise NetworkError(
                    f"{what} on {where} failed ({reason}) and a retry in {delay:.0f} s would "
                    f"pass the job's time limit of {self.deadline.seconds:g} s "
                    f"({self.deadline.elapsed():.1f} s elapsed); try again later or raise --timeout"
                )
            self.notify(
                f"{what} on {where}: {reason}; retry {attempt} of {self.policy.retries} "
                f"in {delay:.1f} s"
            )
            self.sleep(delay)

    def _transport_failure(
        self,
        exc: httpx.TransportError,
        trace: _BodyTrace,
        where: str,
        what: str,
        paid: bool,
        attempt: int,
        proxy: str | None = None,
    ) -> NanoeditError | None:
        """The error to give up with, or None to retry."""
        import httpx  # see the module's docstring

        timed_out = isinstance(exc, httpx.TimeoutException)
        if timed_out and self.deadline.remaining() <= 0.01:
            error = self.deadline.exceeded(where, what)
            if paid and not _never_sent(exc, trace):
                # Stopping waiting is not stopping paying: the model may still make the image.
                error.message += "; the request had gone out, so it may have been charged"
            return error
        if paid and not self.policy.retry_unsafe and not _never_sent(exc, trace):
            return NetworkError(
                f"{what} on {where} failed after the request was sent ({_describe(exc, proxy)}, "
                f"{self.deadline.elapsed():.1f} s elapsed); it may have reached the model, so "
                "nanoedit did not send it again (a second request could be charged twice); "
                "check your account, then run again, or pass --retry-unsafe to allow resending"
            )
        if attempt >= self.policy.retries:
            tries = f"{attempt + 1} attempts" if attempt else "1 attempt"
            return NetworkError(
                f"{what} on {where} failed after {tries} ({_describe(exc, proxy)}, "
                f"{self.deadline.elapsed():.1f} s elapsed); check the address and network, "
                "or try again later"
            )
        return None


def unresolved_host(
    exc: httpx.TransportError, proxy: str | None, advice: str
) -> NetworkError | None:
    """The error of a request whose host name does not resolve (a typo, a host that is
    gone), which no retry fixes; None for any other failure."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, socket.gaierror):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    from urllib.parse import urlsplit

    if proxy:
        host, advice = urlsplit(proxy).hostname or proxy, "check the proxy"
    else:
        try:
            host = exc.request.url.host
        except RuntimeError:  # an exception raised outside of a request
            host = "the host"
    unknown = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
    if cause.errno in unknown:
        return NetworkError(f"cannot resolve {host}; {advice}")
    # A failing resolver rather than an unknown name: its reason says so (no network, say).
    return NetworkError(f"cannot resolve {host} ({cause.strerror}); {advice}")


def _describe(exc: httpx.TransportError, proxy: str | None = None) -> str:
    """A transport failure in a few words; a connection failure through a proxy names it."""
    import httpx  # see the module's docstring

    if proxy and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.ProxyError):
        from nanoedit.urls import redact_userinfo

        return f"cannot connect through the proxy {redact_userinfo(proxy)}: {exc}; check the proxy"
    if isinstance(exc, httpx.ConnectTimeout):
        return "no connection within the connect timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {exc}" if str(exc) else "cannot connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the connection broke: {exc}" if str(exc) else "the connection broke"
    text = str(exc) or type(exc).__name__
    return f"the connection failed: {text}"
