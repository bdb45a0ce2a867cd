"""Injected retrieval faults made real: the agent reads a structural twin, an outdated version, or goes
without the right passage.

The engine draws which fault (if any) hits a retrieval; this module turns it into text. A twin or an outdated
version takes the place of the right passage in the ranking (at the top when the retriever missed it anyway);
a topical miss removes every right passage. A fault that cannot be made here (no site for the edit, no older
version, no right passage to drop) is not applied, and the trace says so: the realised error rate is what the
calibration measures, not the injected one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sim.core.seeding import stream
from sim.retrieval.corpus import Passage
from sim.retrieval.twins import TWIN_TYPES, make_twin

STALE, TOPICAL_MISS = "stale", "topical_miss"


def twin_stream(seed: int, step: str, fault: str, instance: int) -> np.random.Generator:
    """Where a twin's edit site is chosen: keyed by what is edited (step, fault type) and the instance."""
    return stream(seed, f"agent/twin/{step}/{fault}", instance)


def inject(fault: str | None, ranked: Sequence[Passage], gold: frozenset[str], k: int,
           stale_of: Callable[[Passage], Passage | None],
           rng: Callable[[], np.random.Generator]) -> tuple[tuple[Passage, ...], bool]:
    """The k passages read after `fault` (None: no fault), and whether the fault could be made.

    `ranked` is the retriever's ranking with room beyond k for the right passages to be dropped; `rng` makes
    the generator that picks a twin's edit site (called only when a twin is made).
    """
    ranked = list(ranked)
    if fault is None:
        return tuple(ranked[:k]), False
    at = next((i for i, p in enumerate(ranked) if p.id in gold), None)
    if fault == TOPICAL_MISS:
        if at is None:
            return tuple(ranked[:k]), False
        return tuple(p for p in ranked if p.id not in gold)[:k], True
    original = ranked[at if at is not None else 0] if ranked else None
    if original is None:
        return (), False
    if fault == STALE:
        wrong = stale_of(original)
    elif fault in TWIN_TYPES:
        twin = make_twin(original.text, fault, rng())
        wrong = None if twin is None else Passage(f"{original.id}#{fault}", twin.text, original.topic)
    else:
        wrong = None  # a type the scenario declared but no edit here can make
    if wrong is None:
        return tuple(ranked[:k]), False
    ranked[at if at is not None else 0] = wrong
    return tuple(ranked[:k]), True
