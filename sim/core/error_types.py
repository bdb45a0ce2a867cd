"""The error taxonomy (DESIGN.md, Vocabulary). Scenarios may declare more retrieval error types."""

from __future__ import annotations

RETRIEVAL_ERROR_TYPES: tuple[str, ...] = (
    "topical_miss",   # the relevant passage is not retrieved at all
    "negation_flip",  # a passage that says the opposite (shall / shall not)
    "role_swap",      # who does what to whom is reversed
    "modifier_swap",  # a modifier or attribute bound to the wrong noun
    "numeric_swap",   # a number, amount, date or duration changed
    "stale",          # an outdated version of the right passage
)

# A decide step's own mistake, made on correct context. Its root cause is that step.
REASONING = "reasoning"

# The key in susceptibility / catch tables that covers every error type not listed.
DEFAULT_KEY = "default"


def all_error_types(declared: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """Built-in retrieval types, then the scenario's declared ones, then `reasoning` (fixed order = code order)."""
    extra = tuple(t for t in declared if t not in RETRIEVAL_ERROR_TYPES)
    return RETRIEVAL_ERROR_TYPES + extra + (REASONING,)
