"""Google's service tiers as the Gemini backend meets them in answers: how long a flex answer
may take, what a shed flex request means, and which tier a request was served at (a priority
request past its limit is served, and charged, at standard)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nanoedit.errors import NanoeditError
from nanoedit.jobs import STANDARD_TIER

if TYPE_CHECKING:
    import httpx

# [P] A flex request's latency: "Minutes (1-15 min target)" (docs flex-inference): one may wait
# that long for its answer, within the job's --timeout, where another waits READ_TIMEOUT.
FLEX_READ_TIMEOUT = 15 * 60.0
# [P] The header that says which tier served a generateContent request (docs
# priority-inference: "x-gemini-service-tier" is "standard" when a priority request was
# downgraded); an interaction says it in its service_tier (SDK google-genai 3.6.1,
# Interaction).
SERVED_HEADER = "x-gemini-service-tier"


def shed_advice(error: NanoeditError, tier: str) -> NanoeditError:
    """``error`` with what it means for a flex request when it says Google had no capacity
    (503 UNAVAILABLE): the flex tier runs on capacity Google sheds under load ([P] docs
    flex-inference: "best-effort", "sheddable"; [S] a shed request is answered 503, with no
    fall-back to standard), and a request answered so made nothing and is not charged ([S]
    Google's billing FAQ: failed requests are not billed), so it was sent again while the
    run's retries lasted."""
    if tier == "flex" and error.provider_code == "UNAVAILABLE":
        error.message += (
            "; a flex request is shed when Google is busy, and a shed request is not charged: "
            "send it again later (more tries: --retries), or at the standard tier (drop --tier)"
        )
    return error


def with_served_tier(
    usage: dict[str, Any] | None,
    served: object,
    asked: str,
    where: str,
    notify: Callable[[str], None],
) -> dict[str, Any] | None:
    """``usage`` with the tier that served the request (``served``: the header's value, or an
    interaction's ``service_tier``) as ``serviceTier``, which prices it (see
    :func:`nanoedit.catalog.pricing.served_tier`); said once when it is not the one asked."""
    if not isinstance(served, str) or not served.strip():
        return usage
    tier = served.strip().lower().removeprefix("service_tier_")
    if asked != STANDARD_TIER and tier != asked:
        notify(
            f"{where} served the {asked} request at the {tier} tier (a priority request past "
            f"the project's priority limit is served at standard); it is priced at {tier}"
        )
    report = dict(usage or {})
    report.setdefault("serviceTier", tier)
    return report


def served_header(response: httpx.Response) -> str | None:
    """The tier a generateContent answer's header says served it, if it says."""
    value = response.headers.get(SERVED_HEADER)
    return value if isinstance(value, str) else None
