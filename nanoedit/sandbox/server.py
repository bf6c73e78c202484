"""The sandbox on a real port: a threaded HTTP/1.1 server on loopback, in the background."""

from __future__ import annotations

import contextlib
import signal
import socket
import struct
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import urlsplit

from nanoedit.sandbox.app import Sandbox
from nanoedit.sandbox.batching import quick_clock
from nanoedit.sandbox.renderer import Renderer, usable_cores
from nanoedit.sandbox.wire import SandboxRequest, SandboxResponse

# Idle keep-alive connections are dropped after this many seconds.
IDLE_TIMEOUT = 60.0
# How often the accept loop looks for a stop request: closing waits up to this long.
STOP_POLL_SECONDS = 0.02
# How often serve_forever looks for a stop signal a thread other than the main one received.
SIGNAL_POLL_SECONDS = 0.2
# A client closing its connection at any moment is no bug of the server's.
CLIENT_GONE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
# Connections the kernel completes while the accept loop is busy. socketserver's 5 drops the
# handshakes of a wide batch (-j 64 opens 64 at once): they wait out TCP's retransmissions
# (1 s, 3 s, 7 s...), or time out.
LISTEN_BACKLOG = 1024


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], sandbox: Sandbox, log: TextIO | None) -> None:
        super().__init__(address, _Handler)
        self.sandbox = sandbox
        self.log = log
        self._log_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # Set on close: wakes handlers that are keeping quiet (fault slow) or streaming.
        self.closing = threading.Event()

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def drop_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections, so they end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Report an exception of a handler thread, unless it is a client that went away."""
        if isinstance(sys.exc_info()[1], CLIENT_GONE):
            return
        super().handle_error(request, client_address)

    def log_line(self, method: str, path: str, outcome: int | str) -> None:
        # The path only: no query string, no header, so no key or signature is printed.
        if self.log is not None:
            with self._log_lock:
                print(f"{method} {path} {outcome}", file=self.log, flush=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    timeout = IDLE_TIMEOUT
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body
    # would wait for the client's delayed ACK, 40 ms per answer.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the server's own log line is written by ``log_line``."""

    def _serve(self) -> None:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if self.path.startswith(("http://", "https://")):
            url = self.path  # absolute form, as sent to a proxy
        else:
            host = headers.get("host") or "{}:{}".format(*self.server.server_address[:2])
            url = f"http://{host}{self.path}"
        path = urlsplit(url).path
        request = SandboxRequest(self.command, url, headers)
        sandbox = self.server.sandbox
        try:
            answer = sandbox.before_body(request)
        except Exception:
            # The body stays unread, so the connection cannot carry another request.
            self.close_connection = True
            answer = self._crashed()
        if answer is None:
            try:
                body = self._read_body()
            except ValueError:
                self.send_error(400, "Bad Request", "unreadable Content-Length or chunk size")
                return
            except CLIENT_GONE:
                self.close_connection = True
                self.server.log_line(self.command, path, "(the client went away)")
                return
            try:
                answer = sandbox.handle(replace(request, body=body))
            except Exception:
                answer = self._crashed()
        if answer.fault is None:
            self._send(answer, path)
        else:
            self._act_out(answer, path)

    def _crashed(self) -> SandboxResponse:
        """A bug in the sandbox: show it, and answer as a crashed server would."""
        traceback.print_exc(file=sys.stderr)
        return SandboxResponse(
            500, {"Content-Type": "text/plain; charset=utf-8"}, b"sandbox internal error\n"
        )

    def _send(self, answer: SandboxResponse, path: str, note: str = "") -> None:
        """Send an answer whole (a streamed body as it comes) and log it."""
        outcome = f"{answer.status}{note}"
        try:
            self._send_head(answer)
            if self.command != "HEAD":
                if answer.stream is None:
                    self.wfile.write(answer.body)
                elif not self._send_stream(answer.stream, _is_chunked(answer.headers)):
                    outcome += " (stopped: the server is closing)"
        except OSError:
            # The client went away (or the server dropped the connection on close).
            self.close_connection = True
            outcome += " (the client went away)"
        self.server.log_line(self.command, path, outcome)

    def _send_head(self, answer: SandboxResponse) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        names = {name.lower() for name in answer.headers}
        if answer.stream is None and "content-length" not in names:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()

    def _send_stream(self, chunks: Iterator[bytes], chunked: bool) -> bool:
        """Send a streamed body; False when the server began closing before its end."""
        for chunk in chunks:
            if self.server.closing.is_set():
                self.close_connection = True
                return False
            if not chunk:
                continue  # an empty chunk would end a chunked body early
            self.wfile.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        return True

    def _act_out(self, answer: SandboxResponse, path: str) -> None:
        """Misbehave on the socket as ``answer.fault`` says, and log what was done."""
        fault = answer.fault
        if fault in ("reset", "reset-early"):
            # Logged first, so the line is there by the time the client sees the reset.
            self.server.log_line(self.command, path, fault)
            self._reset()
        elif fault == "slow":
            # Wait on the server's closing event, so that closing never waits for the fault.
            if self.server.closing.wait(answer.delay):
                self.close_connection = True
                self.server.log_line(self.command, path, "slow (dropped: the server is closing)")
            else:
                self._send(answer, path, " slow")
        elif fault == "truncated":
            self.close_connection = True
            try:
                self._send_head(answer)
                if self.command != "HEAD":
                    self.wfile.write(answer.body[: len(answer.body) // 2])
            except OSError:
                pass  # the client left first: the answer is cut short either way
            self.server.log_line(self.command, path, f"{answer.status} truncated")
        else:
            self.close_connection = True
            self.server.log_line(self.command, path, "dropped")

    def _reset(self) -> None:
        """Drop the connection with a TCP RST and no answer: linger on, for 0 seconds."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The buffered reader holds a reference that keeps the socket open: close it first.
        # Closing here, before socketserver's shutdown(SHUT_WR), keeps a FIN from going first.
        self.rfile.close()
        self.connection.close()

    def _read_body(self) -> bytes:
        """The request body, by Content-Length or chunked; ValueError when unreadable."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailer lines, if any, end with an empty line.
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""


def _is_chunked(headers: dict[str, str]) -> bool:
    return any(
        name.lower() == "transfer-encoding" and "chunked" in value.lower()
        for name, value in headers.items()
    )


class SandboxServer:
    """Serves a ``Sandbox`` over HTTP on ``host:port`` (port 0: any free port) from a
    background thread. Foreign image URLs are downloaded for real (see
    ``Sandbox.fetch_over_network``). ``log`` gets one line per request: method, path, status.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log: TextIO | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.host = host
        self.port = port
        self.log = log
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._server is None:
            raise RuntimeError("the sandbox server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SandboxServer:
        """Bind the port and start answering; returns self."""
        if self._server is None:
            self.sandbox.fetch_over_network()
            self._server = _HTTPServer((self.host, self.port), self.sandbox, self.log)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": STOP_POLL_SECONDS},
                name="nanoedit-sandbox",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop answering, drop open connections and free the port."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.closing.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def _stop_signals(stop: Callable[[str], None]) -> Iterator[None]:
    """Call ``stop`` with the signal's name on SIGINT and SIGTERM, from the main thread only
    (where Python can take signals); the handlers in place before come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    numbers = [signal.SIGINT, signal.SIGTERM]

    def handler(number: int, frame: object) -> None:
        stop(signal.Signals(number).name)

    previous = {number: signal.signal(number, handler) for number in numbers}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def serve_forever(
    host: str,
    port: int,
    *,
    faults: str = "",
    latency: float = 0.0,
    task_seconds: float = 2.0,
    keys: frozenset[str] | None = None,
    log: TextIO | None = None,
    url_out: TextIO | None = None,
    workers: int | None = None,
) -> None:
    """Serve a new sandbox until SIGINT (Ctrl-C) or SIGTERM.

    The base URL goes on ``url_out`` alone on its line, for a script to read; ``log`` gets a
    ``serving on URL`` line, a line per request, and a ``stopped`` line at the end. Images are
    drawn by ``workers`` processes (None: one per CPU, or none on a single CPU, where a pool
    adds only copying; 0: in the threads answering). They are started as new interpreters
    that import the caller's main module, so a script calling this needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    if workers is None:
        cores = usable_cores()
        workers = cores if cores > 1 else 0
    renderer = Renderer(workers)
    # Nobody reads the request record of a served sandbox: keep none, so memory stays flat.
    sandbox = Sandbox(
        keys=keys,
        faults=faults,
        latency=latency,
        task_seconds=task_seconds,
        keep_received=0,
        renderer=renderer,
        batch_clock=quick_clock(),
    )
    stopped = threading.Event()
    why: list[str] = []

    def stop(reason: str) -> None:
        why.append(reason)
        stopped.set()

    # The pool stops last, after the server (a handler still drawing then draws in its thread).
    with renderer, _stop_signals(stop), SandboxServer(sandbox, host, port, log=log) as server:
        if url_out is not None:
            print(server.base_url, file=url_out, flush=True)
        if log is not None:
            print(f"serving on {server.base_url}", file=log, flush=True)
        try:
            # Waits with a bound: a signal that reached another thread is only acted on when
            # the main thread runs Python again, and a wait without one might never end.
            while not stopped.wait(SIGNAL_POLL_SECONDS):
                pass
        except KeyboardInterrupt:  # off the main thread, Ctrl-C still comes this way
            why.append("SIGINT")
    if log is not None:
        print(f"stopped ({why[0]})", file=log, flush=True)
