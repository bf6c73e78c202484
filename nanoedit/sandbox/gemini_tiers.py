"""Google's service tiers, as its ``generateContent`` and Interactions API take them: the
field read and checked, refused for a model that does not take the tier, and a flex request
shed (the fault ``flex-shed``).

Wire facts:

- [P] ``generateContent`` takes ``serviceTier`` on the request itself, beside ``contents``
  (not in ``generationConfig``): Google's SDK (google-genai 3.6.1) sends a config's
  ``service_tier`` there, as ``flex``, ``standard`` or ``priority``; Google's REST sample on
  its flex page sends ``"service_tier": "FLEX"``, so [I] either case and the proto enum's
  ``SERVICE_TIER_`` names are read, and ``unspecified`` is standard.
- [P] The Interactions API takes ``service_tier`` (``flex``, ``standard``, ``priority``) on a
  create body (``CreateModelInteraction``).
- [P] Google's model pages list which models take flex and priority ("Consumption options");
  gemini-3.1-flash-lite-image's says "Not supported" for both, and [S] no page lists a tier
  for another image model: so the sandbox's image models take none unless the sandbox is
  told otherwise (``Runtime.tiers``, as a later change of Google's would). [I] The refusal is
  a 400 INVALID_ARGUMENT, in words Google does not publish.
- [P] Past a project's priority limit a priority request is served at standard ("graceful
  downgrade"), which a generateContent answer's ``x-gemini-service-tier`` header says (docs
  priority-inference; its usage metadata has no such field in the SDK), and an interaction's
  ``service_tier`` (its ``Interaction`` type); [I] the sandbox says so only for a request that
  named a tier. The fault ``priority-downgrade`` acts out a downgrade.
- [P] Flex runs on capacity Google sheds under load ("best-effort", "sheddable"); [S] a shed
  request is answered 503 UNAVAILABLE, with no fall-back to standard; [I] in the words of the
  sandbox's own overloaded answer, adapted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nanoedit.sandbox.catalog import Model
from nanoedit.sandbox.faults import result_fault
from nanoedit.sandbox.gemini_errors import GoogleError

STANDARD = "standard"
TIERS = ("flex", STANDARD, "priority")
SHED = "flex-shed"
SHED_FAULT = result_fault(
    SHED, "a flex request shed: HTTP 503 UNAVAILABLE, nothing made (a standard one waits it out)"
)
DOWNGRADE = "priority-downgrade"
DOWNGRADE_FAULT = result_fault(
    DOWNGRADE,
    "a priority request served at standard (past its limit): x-gemini-service-tier standard",
)
# [P] The header that says which tier served a generateContent request (docs
# priority-inference); [I] sent, with the usage's serviceTier, when a request named a tier.
SERVED_HEADER = "x-gemini-service-tier"
SHED_MESSAGE = (
    "The flex tier has no capacity for this request now, so it was not run. Please try again "
    "later, or send it at the standard tier."
)
ENUM = "type.googleapis.com/google.ai.generativelanguage.v1beta.ServiceTier"


def read_tier(body: Mapping[str, Any], camel: str | None, snake: str) -> str:
    """The tier a body asks for, by its field (``camel`` or ``snake``): ``standard`` when it
    names none; GoogleError for a value that is no tier."""
    value = body.get(camel) if camel is not None else None
    if value is None:
        value = body.get(snake)
    if value is None:
        return STANDARD
    name = value.strip().lower().removeprefix("service_tier_") if isinstance(value, str) else ""
    if name == "unspecified":
        return STANDARD
    if name not in TIERS:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise GoogleError(400, f"Invalid value at '{snake}' ({ENUM}), {shown}")
    return name


def check_tier(model: Model, tier: str, taken: frozenset[str]) -> None:
    """Refuse a tier other than standard that the image models do not take (``taken``: the
    tiers the sandbox has been told they take)."""
    if tier != STANDARD and tier not in taken:
        raise GoogleError(
            400,
            f"Service tier {tier} is not supported for models/{model.id}. Send the request "
            "without service_tier to use the standard tier.",
        )


def served_tier(tier: str, downgraded: bool) -> str:
    """The tier a request asking for ``tier`` is served at: standard when a priority one is
    downgraded (the fault ``priority-downgrade``), else the one asked."""
    return STANDARD if downgraded and tier == "priority" else tier


def shed() -> GoogleError:
    """The answer to a flex request shed under load."""
    return GoogleError(503, SHED_MESSAGE)
