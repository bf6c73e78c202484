"""``--max-cost`` and ``--max-images``: a batch over its budget is refused before anything is
sent, and a running batch stops sending once what it spent reaches the limit.

The runner asks :meth:`Budget.take` before it sends each job and tells :meth:`Budget.spent`
what each job cost once it ended. Images are counted as each job asks for them (``-n``), so
``--max-images`` is exact on every backend, whatever the provider sends back.
"""

from __future__ import annotations

import threading

from nanoedit.catalog.pricing import SEARCH, BatchEstimate, Prices, money
from nanoedit.errors import BudgetError
from nanoedit.jobs import JobOutcome, PlannedJob

# Sums of prices such as 0.039 are not exact in binary: a batch at its limit is within it.
TOLERANCE = 1e-9


def check_estimate(estimate: BatchEstimate, max_cost: float | None) -> None:
    """Refuse, before anything is sent, a batch whose estimate is over ``--max-cost``, or
    whose price is unknown (then nothing says it is within the limit)."""
    if max_cost is None:
        return
    if estimate.unknown:
        backend, model = estimate.unknown[0]
        if model == SEARCH:
            raise BudgetError(
                f"--max-cost {money(max_cost)} cannot be kept: what a search query costs on "
                f"{backend} is unknown; drop --search or --max-cost; nothing was sent"
            )
        raise BudgetError(
            f"--max-cost {money(max_cost)} cannot be kept: the price of {model} on {backend} is "
            f"unknown; set it with: nanoedit config set pricing.{backend}.{model} PRICE "
            "(dollars per image); nothing was sent"
        )
    if estimate.cost > max_cost + TOLERANCE:
        images = f"{estimate.images} image{'' if estimate.images == 1 else 's'}"
        raise BudgetError(
            f"the batch is estimated at {money(estimate.cost)} for {images}, over --max-cost "
            f"{money(max_cost)}; nothing was sent: raise --max-cost, or send fewer jobs"
        )


class Budget:
    """What a run may still send: ``max_cost`` dollars, ``max_images`` images (None: no
    limit). Shared by the run's job threads."""

    def __init__(
        self, prices: Prices, *, max_cost: float | None = None, max_images: int | None = None
    ) -> None:
        self.prices = prices
        self.max_cost = max_cost
        self.max_images = max_images
        self.images = 0
        """Images asked for by the jobs sent so far."""
        self.cost = 0.0
        """What the jobs that ended cost."""
        self._pending: dict[int, float] = {}
        """The estimates of the jobs sent that have not ended, by job."""
        self._lock = threading.Lock()
        self.stopped_by = ""
        """The limit that stopped the run (``--max-images 3``), once one did."""

    def take(self, planned: PlannedJob) -> bool:
        """Whether ``planned`` may be sent; if so, it is counted as spent until it ends."""
        options = planned.job.options
        images = options.count
        estimate = self.prices.estimate(
            planned.backend,
            planned.model,
            options.size,
            # Each request paid for: a matte image is two (see nanoedit.run.matte).
            images * options.renders,
            options.tier,
            search=options.dials.search,
        )
        with self._lock:
            if self.max_images is not None and self.images + images > self.max_images:
                self.stopped_by = f"--max-images {self.max_images}"
                return False
            if self.max_cost is not None:
                # Jobs still running count at their estimate: they are paid for already.
                committed = self.cost + sum(self._pending.values())
                if estimate is None or committed + estimate > self.max_cost + TOLERANCE:
                    self.stopped_by = f"--max-cost {money(self.max_cost)}"
                    return False
            self.images += images
            self._pending[id(planned)] = estimate or 0.0
        return True

    def spent(self, planned: PlannedJob, outcome: JobOutcome | None) -> None:
        """A job that was taken ended (None: the interruption stopped it): count its cost,
        the provider's own figure when it gave one."""
        with self._lock:
            estimate = self._pending.pop(id(planned), 0.0)
        cost = None
        if outcome is not None:
            cost = self.prices.job_cost(
                planned.backend,
                planned.model,
                planned.job.options.size,
                len(outcome.outputs),
                outcome.usage,
                planned.job.options.tier,
                search=planned.job.options.dials.search,
            )
        with self._lock:
            self.cost += estimate if cost is None else cost

    def stopped(self, unsent: int) -> BudgetError:
        """The error of the jobs the limit kept from being sent."""
        jobs = "job" if unsent == 1 else "jobs"
        spent = f" ({money(self.cost)} spent)" if self.stopped_by.startswith("--max-cost") else ""
        return BudgetError(
            f"{self.stopped_by} reached{spent}: {unsent} {jobs} not sent; raise the limit and "
            "run the same command with --skip-existing to send them"
        )
