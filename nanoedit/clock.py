"""The time a run reads and the waits it makes, in one object that a test can replace.

A run reads the monotonic clock for each job's time budget and duration, and the wall clock
for a ``Retry-After`` given as a date; it waits between retries and between polls of a task.
All of that goes through a :class:`Clock`, so a test can pass one whose waits return at once.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """The real clocks, and real waits that Ctrl-C cuts short."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back: for budgets and durations."""
        return time.monotonic()

    def now(self) -> datetime:
        """The time of day, in UTC: for dates servers give."""
        return datetime.now(UTC)

    def wait(self, seconds: float, cancel: threading.Event) -> bool:
        """Wait ``seconds``, or less when ``cancel`` is set meanwhile; True when it was."""
        return cancel.wait(seconds)
