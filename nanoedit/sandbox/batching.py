"""The batch clock and the batch bills: what a test holds to drive the Gemini Batch API's
emulation (``gemini_batches``) and to check what it charged.

A real batch takes minutes to a day; a test cannot wait for that, nor sleep. So batches keep
their own time: the clock starts at the real time the sandbox started and moves only when it
is told to (``advance``, or the sandbox's control route ``POST /sandbox/batch-clock``), or, when
given a ``speed``, follows the real time that many times faster (for a sandbox a person runs).
Each time it moves it tells its listeners, so the batches due are worked through (their images
drawn, their results written) in the thread that moved it, before ``advance`` returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# [I] How long a batch waits before it runs, and how long it runs (its requests finishing
# evenly over that time): Google gives no figures beyond "within 24 hours, mostly much
# quicker"; these are settable on the clock.
PENDING_SECONDS = 60.0
RUNNING_SECONDS = 300.0
# [S] A batch that has not finished 48 hours after it was made expires, with no results
# (Google's batch guide, JOB_STATE_EXPIRED: "running or pending for more than 48 hours").
EXPIRY_SECONDS = 48 * 3600.0


class BatchClock:
    """The batches' time, in Unix seconds, and how long a batch stays in each state.

    ``speed`` 0 (the default) keeps the clock still until ``advance`` moves it; a positive
    ``speed`` makes it also follow ``monotonic`` that many times faster. ``start`` is the Unix
    time it reads at first (default: now).
    """

    def __init__(
        self,
        *,
        start: float | None = None,
        speed: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
        pending_seconds: float = PENDING_SECONDS,
        running_seconds: float = RUNNING_SECONDS,
        expiry_seconds: float = EXPIRY_SECONDS,
    ) -> None:
        self.pending_seconds = pending_seconds
        self.running_seconds = running_seconds
        self.expiry_seconds = expiry_seconds
        self._start = time.time() if start is None else start
        self._speed = speed
        self._monotonic = monotonic
        self._started = monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        """The batches' Unix time."""
        with self._lock:
            offset = self._offset
        followed = self._speed * (self._monotonic() - self._started) if self._speed else 0.0
        return self._start + offset + followed

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` on (not back: ValueError) and work through what falls
        due; returns the new time."""
        if seconds < 0:
            raise ValueError(f"the batch clock moves forward only, not by {seconds} s")
        with self._lock:
            self._offset += seconds
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return self.now()

    def listen(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (with no arguments) after each ``advance``."""
        with self._lock:
            self._listeners.append(listener)


# A sandbox a person tries --tier batch on moves its batches on by itself, in seconds rather
# than the real service's minutes; tests and benchmarks keep a still clock and move it by hand.
QUICK_PENDING_SECONDS = 1.0
QUICK_RUNNING_SECONDS = 2.0


def quick_clock(monotonic: Callable[[], float] = time.monotonic) -> BatchClock:
    """The batch clock of the sandbox a run or ``nanoedit sandbox serve`` starts: real time, a
    batch pending 1 s and running 2 s (the control route still moves it on)."""
    return BatchClock(
        speed=1.0,
        monotonic=monotonic,
        pending_seconds=QUICK_PENDING_SECONDS,
        running_seconds=QUICK_RUNNING_SECONDS,
    )


@dataclass(frozen=True)
class BatchBill:
    """One charge for a batch: made once, when the batch ends."""

    batch: str
    """The batch's name, ``batches/ID``."""
    model: str
    """``models/MODEL``."""
    state: str
    """The state it ended in (``BATCH_STATE_SUCCEEDED``, or ``…_CANCELLED`` for the part done)."""
    requests: int
    """How many of its requests were charged: those that made an image."""


class BatchBills:
    """The charges the batches made, in order: a test asserts "exactly one batch billed"."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bills: list[BatchBill] = []

    def add(self, bill: BatchBill) -> None:
        """Record one charge."""
        with self._lock:
            self._bills.append(bill)

    def all(self) -> list[BatchBill]:
        """Every charge so far, oldest first."""
        with self._lock:
            return list(self._bills)
