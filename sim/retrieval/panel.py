"""Broad retrieval on a panel of sets: nDCG@10, recall@100 and MRR@10 per set, with bootstrap CIs over queries,
and for two models the paired difference with a paired bootstrap CI (the same resampled queries for both).

Gains are graded and linear (a grade-2 document counts twice a grade-1 one), as in BEIR's evaluation
(pytrec_eval); the ideal ranking is every judged-relevant document by grade. The panel holds in-domain sets
(held-out topics of the corpus a model is tuned for) and unrelated ones (domains it never saw); only the latter
compare with figures published on general-domain benchmarks such as NanoBEIR.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.core.seeding import stream
from sim.retrieval.beir import RetrievalSet
from sim.retrieval.embedding import Embedder
from sim.retrieval.retrievers import FullScorer, RetrieverSpec
from sim.retrieval.store import StoreLocation, VectorIndex, collection_name, connect

METRICS = ("ndcg_at_10", "recall_at_100", "mrr_at_10")
DEPTH = 100
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class SetResult:
    """One model on one set: per-query values of each metric (query order of the set)."""

    set: RetrievalSet
    per_query: dict[str, np.ndarray]


def query_metrics(ranking: list[str], relevant: dict[str, int]) -> dict[str, float]:
    """nDCG@10, recall@100 and MRR@10 of one ranked list against graded judgments (grade > 0 = relevant)."""
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    found = sum(1 for d in ranking[:DEPTH] if d in relevant)
    first = next((i for i, d in enumerate(ranking[:10]) if d in relevant), None)
    return {"ndcg_at_10": dcg / idcg if idcg else 0.0, "recall_at_100": found / len(relevant),
            "mrr_at_10": 0.0 if first is None else 1.0 / (first + 1)}


def rankings(rset: RetrievalSet, spec: RetrieverSpec, embedder: Embedder | None, location: StoreLocation | None,
             seed: int = 0) -> list[list[str]]:
    """The top DEPTH document ids of each query of the set."""
    n = min(DEPTH, len(rset.doc_ids))
    vectors = qvec = None
    if spec.needs_embeddings:
        all_vectors = embedder.embed(list(rset.doc_texts) + list(rset.query_texts))
        vectors, qvec = all_vectors[: len(rset.doc_ids)], all_vectors[len(rset.doc_ids):]
    if spec.kind == "dense":
        ids = list(rset.doc_ids)
        texts = dict(zip(ids, rset.doc_texts, strict=True))
        index = VectorIndex(connect(location), collection_name("cs-panel", embedder.key, ids, texts), embedder.key,
                            dict(zip(ids, vectors, strict=True)))
        return index.search(qvec, n)[0]
    scorer = FullScorer(spec, list(rset.doc_texts), list(rset.query_texts), seed, vectors, qvec)
    return [[rset.doc_ids[j] for j in scorer.top(i, n)] for i in range(len(rset.query_ids))]


def evaluate(rset: RetrievalSet, spec: RetrieverSpec, embedder: Embedder | None, location: StoreLocation | None,
             seed: int = 0) -> SetResult:
    """Per-query metrics of one retriever on one set."""
    values = [query_metrics(r, dict(rset.qrels[q])) for r, q in
              zip(rankings(rset, spec, embedder, location, seed), rset.query_ids, strict=True)]
    return SetResult(rset, {m: np.array([v[m] for v in values]) for m in METRICS})


def _bootstrap(data: tuple[np.ndarray, ...], statistic, seed: int, name: str) -> list[float] | None:
    """95% percentile bootstrap interval over queries (paired when two samples are given), seeded."""
    from scipy.stats import bootstrap

    if len(data[0]) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant sample gives a degenerate (zero-width) interval: fine
        res = bootstrap(data, statistic, n_resamples=BOOTSTRAP_RESAMPLES, paired=len(data) > 1,
                        vectorized=True, method="percentile", rng=stream(seed, f"panel/bootstrap/{name}", 0))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return [low, high] if math.isfinite(low) and math.isfinite(high) else None


def summary(result: SetResult, seed: int = 0) -> dict[str, Any]:
    """Mean and 95% CI of each metric on the set, with what the set is."""
    out: dict[str, Any] = result.set.describe()
    for m in METRICS:
        x = result.per_query[m]
        out[m] = {"mean": float(x.mean()),
                  "ci95": _bootstrap((x,), lambda a, axis=-1: a.mean(axis=axis), seed, f"{result.set.name}/{m}")}
    return out


def paired(before: SetResult, after: SetResult, seed: int = 0) -> dict[str, Any]:
    """`after` minus `before` on the same set and queries: absolute and relative changes of each metric's mean,
    each with a paired bootstrap CI (queries resampled together)."""
    if before.set.query_ids != after.set.query_ids:
        raise ValueError("a paired comparison needs the same queries")
    out: dict[str, Any] = {"set": before.set.name, "domain": before.set.domain,
                           "queries": len(before.set.query_ids)}
    for m in METRICS:
        a, b = before.per_query[m], after.per_query[m]
        base = float(a.mean())
        name = f"{before.set.name}/{m}"

        def relative(x, y, axis=-1):
            mx = x.mean(axis=axis)
            return np.where(mx > 0, y.mean(axis=axis) / np.where(mx > 0, mx, 1.0) - 1.0, np.nan)

        out[m] = {"before": base, "after": float(b.mean()), "difference": float((b - a).mean()),
                  "difference_ci95": _bootstrap((a, b), lambda x, y, axis=-1: (y - x).mean(axis=axis), seed,
                                                f"{name}/difference"),
                  "relative": float(b.mean() / base - 1.0) if base > 0 else None,
                  "relative_ci95": _bootstrap((a, b), relative, seed, f"{name}/relative") if base > 0 else None}
    return out
