"""Where the sandbox draws: in the thread answering, or in a pool of processes so that a
served sandbox uses every core. Either way the answers drawn last are kept, so a request
made again (a benchmark's batch of copies, a client's retry) costs no drawing, and requests
for the same picture at the same time draw it once. Drawing is deterministic (see
``render``), so where it ran and whether it was kept never changes a byte of an answer.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from PIL import Image

from nanoedit.sandbox.render import Encoded, Picture, render_edit, render_generate

# Encoded answers kept for repeats, in bytes: several hundred 1K results, or a few at 4K.
CACHE_BYTES = 64 * 1024 * 1024
# How often a pool process looks whether the sandbox that started it is gone (killed with
# no chance to stop its pool): an orphan then ends itself instead of waiting for work forever.
ORPHAN_POLL_SECONDS = 1.0

Drawing = Callable[[], Encoded]


class Renderer:
    """Draws the sandbox's edits and generations, keeping up to ``cache_bytes`` of answers.

    ``workers`` 0 draws in the calling thread; N draws in a pool of N processes, started on
    the first drawing (so a sandbox that draws nothing starts none). ``close`` stops the
    pool; a drawing asked for after it, or still waiting for the pool then, is done in the
    calling thread. Safe to call from many threads.
    """

    def __init__(self, workers: int = 0, *, cache_bytes: int = CACHE_BYTES) -> None:
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, not {workers}")
        self.workers = workers
        self.cache_bytes = cache_bytes
        self._lock = threading.Lock()
        # Oldest first. An entry is in the cache from the moment its drawing starts, so a
        # second request for it waits for the first instead of drawing it again.
        self._kept: OrderedDict[bytes, Future[Encoded]] = OrderedDict()
        self._kept_bytes = 0
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def edit(self, inputs: Sequence[Image.Image], picture: Picture) -> Encoded:
        """What ``render.render_edit`` draws for these inputs and this picture."""
        key = _key("edit", picture, inputs)
        return self._answer(key, functools.partial(render_edit, list(inputs), picture))

    def generate(self, picture: Picture) -> Encoded:
        """What ``render.render_generate`` draws for this picture."""
        key = _key("generate", picture, ())
        return self._answer(key, functools.partial(render_generate, picture))

    @property
    def kept_bytes(self) -> int:
        """The bytes of the answers kept for repeats."""
        with self._lock:
            return self._kept_bytes

    def close(self) -> None:
        """Stop the pool, if one was started (drawings waiting for it are cancelled)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _answer(self, key: bytes, drawing: Drawing) -> Encoded:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                mine: Future[Encoded] = Future()
                self._kept[key] = mine
            else:
                self._kept.move_to_end(key)
        if kept is not None:
            return kept.result()
        try:
            image = self._draw(drawing)
        except BaseException as exc:
            with self._lock:
                del self._kept[key]
            mine.set_exception(exc)
            raise
        with self._lock:
            # Finished and counted in at once, so that room is never made from it uncounted.
            mine.set_result(image)
            self._kept_bytes += len(image.data)
            for old, future in list(self._kept.items()):
                if self._kept_bytes <= self.cache_bytes:
                    break
                if future.done():  # one being drawn is not counted yet, and others wait on it
                    del self._kept[old]
                    self._kept_bytes -= len(future.result().data)
        return image

    def _draw(self, drawing: Drawing) -> Encoded:
        pool = self._started_pool()
        if pool is None:
            return drawing()
        try:
            return pool.submit(drawing).result()
        except CancelledError:
            return drawing()  # the pool was closed while this waited for it
        except BrokenProcessPool:
            # A pool process died (killed, out of memory): draw this one here, and start a
            # new pool for the next.
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            return drawing()

    def _started_pool(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._pool is None and self.workers > 0 and not self._closed:
                # spawn, not fork: forking a process that runs threads can copy a held lock.
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_pool_process_started,
                    initargs=(os.getpid(),),
                )
            return self._pool


def usable_cores() -> int:
    """How many CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _key(kind: str, picture: Picture, inputs: Sequence[Image.Image]) -> bytes:
    """A digest of everything a drawing depends on: the picture asked for and the input
    pixels."""
    arguments = (kind, picture.prompt, picture.size, picture.mime, picture.variant, picture.count)
    # A first turn's key is what it was before conversations were drawn: kept answers match.
    shown = (*arguments, picture.earlier) if picture.earlier else arguments
    if picture.transparent:
        shown = (*shown, "transparent")
    if picture.seed is not None:
        shown = (*shown, "seed", picture.seed)
    digest = hashlib.sha256(repr(shown).encode())
    for image in inputs:
        digest.update(repr((image.mode, image.size)).encode())
        digest.update(image.tobytes())
    return digest.digest()


def _pool_process_started(parent: int) -> None:
    # Ctrl-C reaches the whole process group: the sandbox stops its pool itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_when_orphaned, args=(parent,), daemon=True).start()


def _end_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_POLL_SECONDS)
    os._exit(0)
