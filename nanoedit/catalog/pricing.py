"""What images cost: Google's list prices as defaults, the user's own prices from the config
file (``pricing.BACKEND.MODEL[.SIZE]``), and the estimate of a job or a batch.

A price is per image, in US dollars. A price nanoedit does not know is ``None`` and is said to
be unknown, never taken as 0: a budget that counted it as free would not be one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nanoedit.catalog.models import Catalog, shipped_catalog
from nanoedit.catalog.tiers import tier_factor
from nanoedit.errors import UsageError
from nanoedit.jobs import SIZES, STANDARD_TIER, PlannedJob

PRICING = "pricing"
"""The config section of prices: ``pricing.BACKEND.MODEL[.SIZE]``."""


@dataclass(frozen=True)
class PriceKey:
    """Where a user's price applies: one backend's model, at one size or at every size."""

    backend: str
    model: str
    size: str | None = None

    @property
    def key(self) -> str:
        """The config key that holds the price."""
        return ".".join(part for part in (PRICING, self.backend, self.model, self.size) if part)


def parse_price_key(key: str) -> PriceKey | None:
    """``pricing.openai.nano-banana.4K`` as a :class:`PriceKey`; None when ``key`` is not a
    pricing key; a usage error when it is one but malformed (no model, an unknown backend)."""
    section, _, rest = key.partition(".")
    if section != PRICING:
        return None
    from nanoedit.backends.registry import backend_names

    backend, _, model = rest.partition(".")
    if backend not in backend_names() or not model.strip("."):
        raise UsageError(
            f"{key} is not a pricing key; write pricing.BACKEND.MODEL or "
            f"pricing.BACKEND.MODEL.SIZE, with BACKEND one of: {', '.join(backend_names())} "
            "(e.g. pricing.openai.nano-banana)"
        )
    head, _, last = model.rpartition(".")
    if head and last.upper() in SIZES:
        return PriceKey(backend, head, last.upper())
    return PriceKey(backend, model)


def check_price(value: str) -> str:
    """A price per image in dollars: a number, 0 or more."""
    try:
        price = float(value)
    except ValueError:
        price = math.nan
    if not math.isfinite(price) or price < 0:
        raise UsageError(
            f"invalid price {value!r}; give the price of one image in US dollars, "
            "a number such as 0.039"
        )
    return f"{price:g}"


@dataclass(frozen=True)
class Price:
    """The price of one image of a model, and where it comes from."""

    amount: float
    model: str
    """How the price is named: Google's id, or the model as the backend sends it."""
    size: str | None
    source: str
    """``list`` (Google's list price), a backend's name (its own published price), or the
    config key that set it."""
    tier: str = STANDARD_TIER
    """The service tier it is the price of: the standard price times the tier's multiple."""

    @property
    def label(self) -> str:
        """``gemini-3.1-flash-image 1K flex``: the model, its size and a tier other than
        standard, as an estimate names the price."""
        size = f" {self.size}" if self.size else ""
        tier = f" {self.tier}" if self.tier != STANDARD_TIER else ""
        return f"{self.model}{size}{tier}"


class Prices:
    """The price table: the user's prices first, then the catalog's (the backend's own
    published price, else Google's list price). At the ``batch`` tier (``--tier batch``) the
    catalog's batch prices (``on.BACKEND.batch_prices``, corrected in the config file as any
    catalog entry is): the user's ``pricing.*`` are interactive prices, not batch ones."""

    def __init__(
        self,
        overrides: Mapping[str, float] | Iterable[tuple[str, float]] = (),
        catalog: Catalog | None = None,
        tier: str = "standard",
    ) -> None:
        self.catalog = catalog or shipped_catalog()
        self.tier = tier
        items = overrides.items() if isinstance(overrides, Mapping) else overrides
        self.overrides: dict[PriceKey, float] = {}
        for key, amount in items:
            parsed = parse_price_key(key)
            if parsed is not None:
                self.overrides[parsed] = amount

    def price(
        self, backend: str, model: str, size: str | None, tier: str = STANDARD_TIER
    ) -> Price | None:
        """The price of one image of ``model`` (as the backend sends it) at ``size`` (None:
        the model's default) and ``tier``, or None when nanoedit does not know it. A tier's
        price is the standard one (the user's, else the catalog's) times the tier's multiple
        in the catalog: a tier the catalog does not price for the model is unknown."""
        standard = self._standard(backend, model, size)
        if standard is None or tier == STANDARD_TIER:
            return standard
        factor = tier_factor(self.catalog.resolve_quietly(backend, model), tier)
        if factor is None:
            return None
        return Price(standard.amount * factor, standard.model, standard.size, standard.source, tier)

    def _standard(self, backend: str, model: str, size: str | None) -> Price | None:
        """The standard tier's price of one image (see :meth:`price`)."""
        google = self._google_id(backend, model)
        size = size.upper() if size else None
        if self.tier == "batch":
            batch = self.catalog.price(backend, model, size, "batch")
            return None if batch is None else Price(batch[0], batch[1], size, batch[2])
        mine = [
            (key, amount)
            for key, amount in self.overrides.items()
            if key.backend == backend and self._google_id(backend, key.model) == google
        ]
        # The user's price for this size wins over theirs for every size.
        for wanted in (size, None) if size else (None, "1K"):
            for key, amount in mine:
                if key.size == wanted:
                    return Price(amount, google, size, key.key)
        listed = self.catalog.price(backend, model, size)
        if listed is None:
            return None
        amount, google, source = listed
        return Price(amount, google, size, source)

    def _google_id(self, backend: str, model: str) -> str:
        """Google's id of the model a backend sends as ``model`` (``fal-ai/nano-banana-pro`` on
        fal, an alias anywhere), or ``model`` itself when the catalog does not know it."""
        found = self.catalog.resolve_quietly(backend, model).model
        return found.id if found else model

    def search_price(self, backend: str, model: str) -> float | None:
        """What one grounded request (--search) costs beside its image on ``backend``: the
        catalog's ``search_price`` of the backend ([dials.BACKEND]); None when unknown."""
        resolved = self.catalog.resolve_quietly(backend, model)
        return self.catalog.dial_support(backend, resolved).search_price

    def estimate(
        self,
        backend: str,
        model: str,
        size: str | None,
        images: int,
        tier: str = STANDARD_TIER,
        *,
        search: bool = False,
    ) -> float | None:
        """What ``images`` images of ``model`` cost on ``backend`` at ``tier`` (``search``:
        grounded, one search query counted per image, as one request makes one image on the
        APIs that charge per query); None when unknown. The tier's multiple prices the image
        and not its search query: [I] Google's flex and priority pages price tokens, and
        grounding is billed per query beside them."""
        price = self.price(backend, model, size, tier)
        if price is None:
            return None
        if not search:
            return price.amount * images
        per_query = self.search_price(backend, model)
        return None if per_query is None else (price.amount + per_query) * images

    def job_cost(
        self,
        backend: str,
        model: str,
        size: str | None,
        images: int,
        usage: Mapping[str, Any] | None,
        tier: str = STANDARD_TIER,
        *,
        search: bool = False,
    ) -> float | None:
        """What a finished job cost: the provider's own figure when its answer gave one
        (OpenRouter's ``usage.cost``), else the table's price of the images it made (with
        their search queries when ``search``), at the tier the provider says served it
        (Google's ``serviceTier``), else the one asked."""
        reported = reported_cost(usage)
        if reported is not None:
            return reported
        return self.estimate(
            backend, model, size, images, served_tier(usage) or tier, search=search
        )


def served_tier(usage: Mapping[str, Any] | None) -> str | None:
    """The tier a provider says served the request, if it said: the Gemini backend keeps it in
    the usage as ``serviceTier``, from the answer's ``x-gemini-service-tier`` header
    (generateContent) or the interaction's ``service_tier``, which tell a priority request
    served at standard once its priority limit was passed ([P] docs priority-inference:
    "graceful downgrade"); read in any case, with or without the ``SERVICE_TIER_`` prefix."""
    value = usage.get("serviceTier") if usage else None
    if not isinstance(value, str):
        return None
    name = value.strip().lower().removeprefix("service_tier_")
    return name if name in (STANDARD_TIER, "flex", "priority") else None


def reported_cost(usage: Mapping[str, Any] | None) -> float | None:
    """The cost a provider put in its usage report, if it did."""
    cost = usage.get("cost") if usage else None
    if isinstance(cost, int | float) and not isinstance(cost, bool) and math.isfinite(cost):
        return float(cost)
    return None


def estimate(
    backend: str,
    model: str,
    size: str | None,
    images: int,
    overrides: Mapping[str, float] | Iterable[tuple[str, float]] = (),
    tier: str = STANDARD_TIER,
) -> float | None:
    """What ``images`` images cost (``overrides``: the user's ``pricing.*`` settings)."""
    return Prices(overrides).estimate(backend, model, size, images, tier)


def job_cost(
    backend: str,
    model: str,
    size: str | None,
    images: int,
    usage: Mapping[str, Any] | None,
    overrides: Mapping[str, float] | Iterable[tuple[str, float]] = (),
) -> float | None:
    """What a finished job cost: the provider's reported cost, else the table's estimate."""
    return Prices(overrides).job_cost(backend, model, size, images, usage)


SEARCH = "search"
"""In :attr:`BatchEstimate.unknown`, in place of a model: the backend's search price."""


def money(amount: float) -> str:
    """Dollars as people read them: ``$2.50``, and ``$0.039`` for a price under a dollar."""
    if amount >= 1 or amount == 0:
        return f"${amount:.2f}"
    text = f"{amount:.3f}".rstrip("0")
    return f"${text}" if len(text.partition(".")[2]) >= 2 else f"${amount:.2f}"


@dataclass(frozen=True)
class BatchEstimate:
    """What a batch is estimated to cost: its jobs and images, the known part of the cost,
    the prices used, and the models whose price is unknown (``backend``, ``model``)."""

    jobs: int
    images: int
    cost: float
    priced_images: int
    prices: tuple[Price, ...]
    unknown: tuple[tuple[str, str], ...]
    requests: int = 0
    """Paid requests, where more than one image's worth (a matte image is two); 0: one a
    job, as for every job without --transparent-method matte."""
    searches: int = 0
    """Grounded requests (--search) counted, one per image."""
    search_cost: float = 0.0
    """What they cost, within ``cost``."""

    @property
    def known(self) -> bool:
        """Whether every image of the batch has a price."""
        return not self.unknown

    def describe(self) -> str:
        """``64 jobs, 64 images, estimated $2.50 (gemini-2.5-flash-image at $0.039)``, with
        what is unknown and the setting that makes it known."""
        jobs = f"{self.jobs} job{'' if self.jobs == 1 else 's'}"
        images = f"{self.images} image{'' if self.images == 1 else 's'}"
        parts = [f"{jobs}, {images}"]
        if self.requests:
            parts.append(f"{self.requests} paid requests (a matte image is two)")
        if self.prices:
            used = ", ".join(f"{price.label} at {money(price.amount)}" for price in self.prices)
            part = "" if self.known else f" for {self.priced_images} of them"
            if self.searches:
                used += f"; {self.searches} search quer{'y' if self.searches == 1 else 'ies'}"
                used += f" {money(self.search_cost)}"
            parts.append(f"estimated {money(self.cost)}{part} ({used})")
        text = ", ".join(parts)
        if self.unknown:
            text += "; " + "; ".join(
                f"price unknown for {model} on {backend}: set pricing.{backend}.{model}"
                if model != SEARCH
                else f"the price of a search query on {backend} is unknown: drop --search"
                for backend, model in self.unknown
            )
        return text


def batch_estimate(planned: Sequence[PlannedJob], prices: Prices) -> BatchEstimate:
    """The estimate of the jobs a run will send (each job's images counted as asked)."""
    cost = 0.0
    priced = 0
    used: dict[tuple[str, str | None, str, float], Price] = {}
    unknown: dict[tuple[str, str], None] = {}
    requests = 0
    searches, search_cost = 0, 0.0
    for job in planned:
        options = job.job.options
        images = options.count
        requests += options.renders  # one request a job, two for a matte image
        price = prices.price(job.backend, job.model, options.size, options.tier)
        if price is None:
            unknown[(job.backend, job.model)] = None
            continue
        # A matte job pays two requests for each image (on white, then on black), each
        # grounded when --search is asked for.
        paid = images * job.job.options.renders
        if job.job.options.dials.search:
            # At the search price whatever the tier: the tier's multiple is on the image's
            # price alone (see Prices.estimate).
            per_query = prices.search_price(job.backend, job.model)
            if per_query is None:
                unknown[(job.backend, SEARCH)] = None
                continue
            searches += paid
            search_cost += per_query * paid
            cost += per_query * paid
        cost += price.amount * paid
        priced += images
        used.setdefault((price.model, price.size, price.tier, price.amount), price)
    return BatchEstimate(
        jobs=len(planned),
        images=sum(job.job.options.count for job in planned),
        cost=cost,
        priced_images=priced,
        prices=tuple(used.values()),
        unknown=tuple(unknown),
        requests=requests if requests > len(planned) else 0,
        searches=searches,
        search_cost=search_cost,
    )
