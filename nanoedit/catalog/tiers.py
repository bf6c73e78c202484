"""Service tiers (``--tier``): which tiers a model takes on a backend, the refusal of one it
does not take (before anything is sent), and what a tier costs beside the standard price.

Which tiers an API takes for a model is catalog data (``on.BACKEND.tiers`` in ``models.toml``,
correctable in the config file); whether a backend can send a tier at all is the backend's
(``BackendBase.service_tiers``). An id the catalog does not know is the server's call, as its
sizes and ratios are.
"""

from __future__ import annotations

from nanoedit.catalog.models import Resolved
from nanoedit.errors import UsageError
from nanoedit.jobs import STANDARD_TIER

# What the config line that enables a tier suggests as its price multiple: [P] flex is "50%
# of the standard price"; priority "75% to 100% more than standard" (Google's optimization
# page), taken at the top of the range so that a budget is never passed by it.
SUGGESTED_FACTORS = {"flex": 0.5, "priority": 2.0}
# [P] Where Google says which models take which tier: each model page's "Consumption options"
# (gemini-3.1-flash-lite-image: Flex inference and Priority inference "Not supported").
DOCS = "https://ai.google.dev/gemini-api/docs/models"


def tier_factor(resolved: Resolved, tier: str) -> float | None:
    """The price of ``tier`` as a multiple of the standard price of the model ``resolved``
    names on its backend: 1 for standard; the catalog's multiple for a model it knows (None
    when it lists no such tier); for an id it does not know, which is sent unchecked, Google's
    own multiple ([P] its tiers are priced against the standard price, whatever the model)."""
    if tier == STANDARD_TIER:
        return 1.0
    offer = resolved.offer
    if offer is None:
        return SUGGESTED_FACTORS.get(tier)
    return offer.tiers.get(tier)


def check_tier(backend: str, takes_tiers: bool, resolved: Resolved, tier: str) -> None:
    """Refuse (:class:`UsageError`, exit 2) a tier the backend cannot send, or one the catalog
    says the model does not take there; nothing has been sent yet."""
    if tier == STANDARD_TIER:
        return
    if not takes_tiers:
        raise UsageError(
            f"--tier {tier}: the {backend} backend has no service tiers (Google's Gemini API "
            "alone takes flex and priority), so nothing was sent; drop --tier, or send the job "
            "with --backend gemini"
        )
    offer, model = resolved.offer, resolved.model
    if offer is None or model is None or tier in offer.tiers:
        return
    factor = SUGGESTED_FACTORS.get(tier, 1.0)
    raise UsageError(
        f"--tier {tier}: {resolved.sent} ({model.name}) does not take the {tier} tier on "
        f"{backend}, as far as the catalog knows (Google's model pages, {DOCS}, list flex and "
        "priority inference for text models, not for the image models), so nothing was sent; "
        f"drop --tier to send it at the standard tier, or, if Google offers {tier} for it now, "
        f'enable it in the config file: [models."{model.id}".on.{backend}] '
        f"tiers = {{ {tier} = {factor:g} }}"
    )
