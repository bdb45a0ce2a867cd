"""Twin realism: are the rule-made twins as close to their originals as real contrasts are?

A structural twin is only a fair probe if an encoder sees it the way it sees a real contrast: published minimal-pair
sets put MiniLM's cosine between a sentence and its real negation near 0.80-0.84, while rule-made "not" twins of the
same sentences sat at 0.94-0.97 before antonyms were used. Given a user's contrast pairs (`--pairs`), this makes the
rule twin of each pair's original with the rule of the pair's type, and compares, per type, the cosine of the
original to its real contrast with the cosine of the original to its rule twin: quantiles of both distributions,
the paired difference (twin minus real) with a bootstrap 95% CI, the share of pairs whose twin is closer than the
real contrast, and the two-sample Kolmogorov-Smirnov statistic (scipy). A twin closer than the real contrast is
harder to tell apart, so rates measured with such twins overstate what real contrasts would do.

A pair's type names a twin rule (`negation_flip`, `role_swap`, `modifier_swap`, `numeric_swap`), or is `negation`
(NevIR's name, read as `negation_flip`); pairs of other types, and originals on which the rule finds no site, are
counted and left out of the comparison.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import ks_2samp

from sim.core.seeding import stream
from sim.retrieval.embedding import Embedder
from sim.retrieval.pairs import ContrastPair
from sim.retrieval.twins import TWIN_TYPES, make_twin

ALIASES = {"negation": "negation_flip"}
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
BOOTSTRAP = 2000


def rule_of(pair_type: str) -> str | None:
    """The twin rule that makes contrasts of this type, or None when no rule does."""
    rule = ALIASES.get(pair_type, pair_type)
    return rule if rule in TWIN_TYPES else None


def twin_realism(pairs: tuple[ContrastPair, ...], embedder: Embedder, seed: int = 0) -> dict[str, Any]:
    """Per pair type: the cosine of each original to its real contrast beside the cosine to its rule twin."""
    made: dict[str, list[tuple[ContrastPair, str]]] = {}
    out: dict[str, dict[str, Any]] = {}
    for p in pairs:
        rule = rule_of(p.type)
        entry = out.setdefault(p.type, {"pairs": 0, "rule": rule, "twins_made": 0})
        entry["pairs"] += 1
        if rule is None:
            continue
        twin = make_twin(p.original, rule, stream(seed, f"twins/{rule}/pair-line-{p.line}", 0))
        if twin is not None:
            made.setdefault(p.type, []).append((p, twin.text))
            entry["twins_made"] += 1
    texts = list(dict.fromkeys(t for rows in made.values() for p, twin in rows
                               for t in (p.original, p.contrast, twin)))
    vectors = dict(zip(texts, embedder.embed(texts), strict=True)) if texts else {}
    for typ, rows in made.items():
        real = np.array([float(vectors[p.original] @ vectors[p.contrast]) for p, _ in rows])
        rule_twin = np.array([float(vectors[p.original] @ vectors[t]) for p, t in rows])
        out[typ].update(_compare(real, rule_twin, stream(seed, f"realism/bootstrap/{typ}", 0)))
    return dict(sorted(out.items()))


def _compare(real: np.ndarray, twin: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    diff = twin - real
    n = len(diff)
    means = diff[rng.integers(0, n, size=(BOOTSTRAP, n))].mean(axis=1)
    ks = ks_2samp(twin, real) if n > 1 else None
    return {
        "real_cosine": _quantiles(real),
        "twin_cosine": _quantiles(twin),
        "mean_difference": float(diff.mean()),
        "mean_difference_ci95": [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))],
        "twin_closer_share": float((diff > 0).mean()),
        "ks_statistic": float(ks.statistic) if ks is not None else None,
        "ks_pvalue": float(ks.pvalue) if ks is not None else None,
    }


def _quantiles(x: np.ndarray) -> dict[str, float]:
    return {"mean": float(x.mean()), **{f"p{round(q * 100):02d}": float(np.quantile(x, q)) for q in QUANTILES}}
