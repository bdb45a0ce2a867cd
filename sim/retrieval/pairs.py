"""A user's contrast pairs (NevIR, a red-team set): an original text, its contrast (same words, other meaning),
the contrast's type, and optionally the query each one answers (`query`, `contrast_query`; an empty value or
a column left out means none). `cascade measure --pairs FILE` scores them with
the measured retriever, beside the rule-made twins (which stay the default probe).

For each pair: does the contrast outrank the original for the original's query (a retrieval error)? Without a
`query`, the original's keyword rewrite stands in (`self_query`, as the probe does for corpora without
queries). NevIR-style paired accuracy asks more: the original wins for its query AND the contrast wins for its
own (`contrast_query`, else the contrast's keyword rewrite). Scores come from one index holding every text of
the file (BM25 statistics and fusion ranks over that collection); ties are counted apart and are not wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.core.errors import CascadeError
from sim.core.limits import MAX_PASSAGE_CHARS, MAX_PASSAGES
from sim.core.stats import wilson
from sim.core.table_source import Limits, read_table
from sim.retrieval.embedding import Embedder
from sim.retrieval.retrievers import FullScorer, RetrieverSpec

_LIMITS = Limits(rows=MAX_PASSAGES, chars=MAX_PASSAGE_CHARS)
_HINT = " (a pairs file has columns original, contrast, type, and optionally query and contrast_query)"


@dataclass(frozen=True)
class ContrastPair:
    original: str
    contrast: str
    type: str
    query: str | None = None
    contrast_query: str | None = None
    line: int = 0


@dataclass(frozen=True)
class PairSet:
    """The pairs of one file, with what a profile records of it: the file as given and a fingerprint."""

    file: str
    fingerprint: str
    pairs: tuple[ContrastPair, ...]


def read_pairs(path: str | Path) -> PairSet:
    """The pairs of a CSV / TSV / JSONL file."""
    table = read_table(path, "pairs", ["original", "contrast", "type"], ["query", "contrast_query"],
                       limits=_LIMITS, hint=_HINT, may_be_empty=("query", "contrast_query"))
    pairs = []
    h = hashlib.sha256()
    for r in table.records:
        v = r.values
        if v["original"] == v["contrast"]:
            raise CascadeError(f"{table.file}:{r.line}: contrast is the same text as original; a contrast pair "
                               "differs in meaning")
        pairs.append(ContrastPair(v["original"], v["contrast"], v["type"], v.get("query") or None,
                                  v.get("contrast_query") or None, r.line))
        h.update("\x00".join([v["original"], v["contrast"], v["type"], v.get("query", ""),
                              v.get("contrast_query", ""), "\n"]).encode())
    return PairSet(table.file, h.hexdigest()[:16], tuple(pairs))


def score_pairs(pairs: tuple[ContrastPair, ...], spec: RetrieverSpec, embedder: Embedder | None,
                stand_in: Callable[[str], str], seed: int = 0) -> dict[str, Any]:
    """Per contrast type: pairs, how often the contrast outranks the original for its query (rate, Wilson CI),
    ties, and NevIR-style paired accuracy; each query's scores over an index of every text of the file.
    `stand_in(text)` is the query of a text that comes without one (the probe's keyword rewrite)."""
    docs: dict[str, int] = {}
    for p in pairs:
        docs.setdefault(p.original, len(docs))
        docs.setdefault(p.contrast, len(docs))
    texts = list(docs)
    queries = [p.query or stand_in(p.original) for p in pairs]
    queries += [p.contrast_query or stand_in(p.contrast) for p in pairs]
    vectors = qvec = None
    if spec.needs_embeddings:
        all_vectors = embedder.embed(texts + queries)
        vectors, qvec = all_vectors[: len(texts)], all_vectors[len(texts):]
    scorer = FullScorer(spec, texts, queries, seed, vectors, qvec)
    per_type: dict[str, dict[str, Any]] = {}
    n = len(pairs)
    for i, p in enumerate(pairs):
        o, c = docs[p.original], docs[p.contrast]
        s1, s2 = scorer.scores(i), scorer.scores(n + i)
        t = per_type.setdefault(p.type, {"pairs": 0, "contrast_outranks_original": 0, "ties": 0,
                                         "paired_correct": 0})
        t["pairs"] += 1
        t["contrast_outranks_original"] += int(s1[c] > s1[o])
        t["ties"] += int(s1[c] == s1[o])
        t["paired_correct"] += int(s1[o] > s1[c] and s2[c] > s2[o])
    for t in per_type.values():
        t["rate"] = t["contrast_outranks_original"] / t["pairs"]
        t["rate_ci95"] = list(wilson(t["contrast_outranks_original"], t["pairs"]))
        t["paired_accuracy"] = t["paired_correct"] / t["pairs"]
        t["paired_accuracy_ci95"] = list(wilson(t["paired_correct"], t["pairs"]))
    if vectors is not None:
        for typ, t in per_type.items():
            cos = [float(vectors[docs[p.original]] @ vectors[docs[p.contrast]]) for p in pairs if p.type == typ]
            t["mean_cosine_original_to_contrast"] = float(np.mean(cos))
    return dict(sorted(per_type.items()))
