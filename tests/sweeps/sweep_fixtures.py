"""Small studies for the sweep tests: the chain scenario of tests/conftest.py with a sweep block."""

from __future__ import annotations

import copy

from tests.conftest import chain, with_timeline

RATE = "retrievers.docs.rates.negation_flip"
MISS = "retrievers.docs.rates.topical_miss"
CATCH = "workflow.steps.check.catch.default"


def study(sweep: dict, timeline: bool = False, variants: bool = True) -> dict:
    """The chain scenario (a timeline when asked) with a `safer` variant and `sweep`."""
    data = with_timeline() if timeline else chain()
    if variants:
        data["variants"] = [{"name": "safer", "set": {CATCH: 0.7, "costs.apply.escalation_cost": 120.0}}]
    data["sweep"] = copy.deepcopy(sweep)
    return data


def timeline_study(points: int = 8, per_day: int = 400) -> dict:
    """A timeline study of `points` points (about 0.4 s each on one idle core at 400 arrivals a day)."""
    data = study({"parameters": {RATE: {"grid": [0.0, 0.14, points]}}, "engines": ["timeline"]}, timeline=True)
    data["timeline"].update({"horizon_days": 60, "replications": 2, "arrivals": {"per_day": per_day}})
    return data
