"""Changes to today's lineup that a fault plan can make, so a client's view of what each
provider serves (``nanoedit models --live``) can be tested against a lineup that moved.

Unlike the other faults, which spoil one answer, a lineup fault changes the lineup itself: the
first model listing request after it is queued makes the change, and it holds from then on, on
every API that lists models, as a provider's lineup does not change back. Every lineup fault
waiting is made at once, so ``lineup:added,lineup:dropped`` shows both in the first listing.

- ``added``: a new image model is listed (Nano Banana 3, ``gemini-3.5-flash-image`` and each
  API's name for it);
- ``dropped``: Nano Banana 2 (``gemini-3.1-flash-image`` and each API's name for it) is listed
  no more (Replicate's and Google's model pages answer 404 for it);
- ``widened``: Nano Banana Pro's schema on Replicate and fal lists the tall ratios
  ``1:4 4:1 1:8 8:1`` too, and those APIs render them.

``added`` and ``dropped`` change what the listing endpoints say; ``widened`` changes what the
APIs take as well, since a schema is what a request is checked against.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TypeVar

from nanoedit.sandbox.faults import FaultPlan, Phase, Stage

ADDED = "added"
DROPPED = "dropped"
WIDENED = "widened"
CHANGES = (ADDED, DROPPED, WIDENED)
# The phases of a model listing request: a plain API request that lineup faults wait for.
LISTING_PHASES = frozenset({Phase.API, Phase.LINEUP})

Entry = TypeVar("Entry")


class Lineup:
    """The lineup changes made so far; shared by every API of one sandbox."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: set[str] = set()

    def catch_up(self, faults: FaultPlan, api: str) -> None:
        """Make every lineup change waiting in ``faults`` that fits the API named ``api``; a
        listing request of that API calls this once its key has been accepted."""
        while (change := faults.take(frozenset({Phase.LINEUP}), api, Stage.RESULT)) is not None:
            with self._lock:
                self._made.add(change)

    def has(self, change: str) -> bool:
        """Whether ``change`` (one of ``CHANGES``) has been made."""
        with self._lock:
            return change in self._made

    def current(
        self, listed: Mapping[str, Entry], added: Mapping[str, Entry], dropped: str
    ) -> dict[str, Entry]:
        """An API's models as it lists them now: ``listed`` with ``added`` after it once the
        change ``added`` is made, and without the one called ``dropped`` once ``dropped`` is."""
        models = dict(listed)
        if self.has(ADDED):
            models |= added
        if self.has(DROPPED):
            models.pop(dropped, None)
        return models
