"""Retriever kinds: `dense` (cosine of embeddings, searched in Chroma), `lexical` (BM25 via the `bm25s` library)
and `hybrid` (dense and BM25 fused by reciprocal rank fusion or by weighted scores).

Lexical and hybrid rankings score every document of an index for a query (`FullScorer`): exact, and small
enough for a probe or a panel set (a 5,000-document set costs 5,000 scores a query). Tokens are lower-cased
words of two characters or more (bm25s's tokenizer), with no stop-word list and no stemming, so "not" counts.

Ties. BM25 scores a text and any reordering of its words identically (a role swap keeps the bag of words), so
exact ties are common. They are broken by a seeded random order of the documents, never by id, which would
always favour the same side of a twin pair: a tie between an original and its twin is a coin flip, as it is for
an agent reading whichever the index returns first. Profiles count the ties separately.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sim.core.errors import CascadeError
from sim.core.seeding import stream

RETRIEVER_KINDS = ("dense", "lexical", "hybrid")
FUSIONS = ("rrf", "weighted")


@dataclass(frozen=True)
class RetrieverSpec:
    """A retriever: its kind and, for BM25 and fusion, their parameters (recorded in the profile).

    `rrf_k`: reciprocal rank fusion's constant, score = sum over retrievers of 1 / (rrf_k + rank), counting only
    each retriever's top `depth`. `dense_weight`: weighted fusion, score = w * cosine + (1 - w) * BM25, each
    min-max normalised over the query's candidates. `k1`, `b`: BM25's term-frequency saturation and length
    normalisation (Lucene's variant)."""

    kind: str = "dense"
    fusion: str = "rrf"
    rrf_k: int = 60
    depth: int = 100
    dense_weight: float = 0.5
    k1: float = 1.5
    b: float = 0.75

    def __post_init__(self):
        if self.kind not in RETRIEVER_KINDS:
            raise CascadeError(f"--retriever {self.kind}: one of {', '.join(RETRIEVER_KINDS)}")
        if self.fusion not in FUSIONS:
            raise CascadeError(f"--fusion {self.fusion}: one of {', '.join(FUSIONS)}")
        for name, low, high in (("rrf_k", 0, 100_000), ("depth", 1, 1_000_000)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise CascadeError(f"retriever setting {name} = {value!r}: an integer from {low} to {high:,}")
        for name, low, high in (("dense_weight", 0.0, 1.0), ("k1", 0.0, 100.0), ("b", 0.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise CascadeError(f"retriever setting {name} = {value!r}: a number from {low} to {high}")

    @property
    def needs_embeddings(self) -> bool:
        return self.kind != "lexical"

    def describe(self) -> dict[str, Any]:
        """What the profile records: the kind, and only the parameters that kind uses."""
        d = asdict(self)
        if self.kind == "dense":
            return {"kind": "dense"}
        bm25 = {"bm25": {"k1": self.k1, "b": self.b, "library": "bm25s", "tokens": "lower-cased words, no "
                         "stop words, no stemming", "ties": "seeded random order of the documents"}}
        if self.kind == "lexical":
            return {"kind": "lexical", **bm25}
        fusion = ({"fusion": "rrf", "rrf_k": d["rrf_k"], "depth": d["depth"]} if self.fusion == "rrf" else
                  {"fusion": "weighted", "dense_weight": d["dense_weight"], "normalisation": "min-max per query"})
        return {"kind": "hybrid", **fusion, **bm25}


def _tokens(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords=None, return_ids=False, show_progress=False)


class FullScorer:
    """Scores every document of one index for each query: BM25, cosine, or their fusion (see RetrieverSpec).

    `doc_vectors` / `query_vectors` (unit rows) are needed by dense and hybrid scoring; `seed` orders ties."""

    def __init__(self, spec: RetrieverSpec, doc_texts: list[str], query_texts: list[str], seed: int,
                 doc_vectors: np.ndarray | None = None, query_vectors: np.ndarray | None = None):
        import bm25s

        self.spec = spec
        self.n = len(doc_texts)
        self.tiebreak = stream(seed, "retriever/ties", 0).permutation(self.n)
        self.bm25 = None
        if spec.kind != "dense":
            self.bm25 = bm25s.BM25(k1=spec.k1, b=spec.b)
            self.bm25.index(bm25s.tokenize(doc_texts, stopwords=None, show_progress=False), show_progress=False)
            self.query_tokens = _tokens(query_texts)
        if spec.needs_embeddings:
            if doc_vectors is None or query_vectors is None:
                raise ValueError("dense and hybrid scoring need the vectors of documents and queries")
            self.doc_vectors = np.asarray(doc_vectors, dtype=np.float64)
            self.query_vectors = np.asarray(query_vectors, dtype=np.float64)

    def lexical(self, qi: int) -> np.ndarray:
        return np.asarray(self.bm25.get_scores(self.query_tokens[qi]), dtype=np.float64)

    def dense(self, qi: int) -> np.ndarray:
        return self.doc_vectors @ self.query_vectors[qi]

    def order(self, scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """`candidates` (document positions) best first: by score, ties by the seeded order."""
        return candidates[np.lexsort((self.tiebreak[candidates], -scores[candidates]))]

    def scores(self, qi: int, candidates: np.ndarray | None = None) -> np.ndarray:
        """The retriever's score of every document for query `qi` (length n; only `candidates` meaningful:
        fusion ranks and normalises among them, as an index holding only them would)."""
        cand = np.arange(self.n) if candidates is None else np.asarray(candidates)
        if self.spec.kind == "lexical":
            return self.lexical(qi)
        if self.spec.kind == "dense":
            return self.dense(qi)
        dense, lexical = self.dense(qi), self.lexical(qi)
        fused = np.full(self.n, -np.inf)
        if self.spec.fusion == "weighted":
            w = self.spec.dense_weight
            fused[cand] = w * _minmax(dense[cand]) + (1 - w) * _minmax(lexical[cand])
            return fused
        fused[cand] = 0.0
        for part in (dense, lexical):
            top = self.order(part, cand)[: self.spec.depth]
            fused[top] += 1.0 / (self.spec.rrf_k + np.arange(1, len(top) + 1))
        return fused

    def top(self, qi: int, n: int, candidates: np.ndarray | None = None) -> np.ndarray:
        """Positions of the best `n` documents among `candidates` (default: all) for query `qi`."""
        cand = np.arange(self.n) if candidates is None else np.asarray(candidates)
        return self.order(self.scores(qi, cand), cand)[:n]


def _minmax(x: np.ndarray) -> np.ndarray:
    span = float(x.max() - x.min()) if len(x) else 0.0
    return np.zeros_like(x) if span == 0.0 else (x - x.min()) / span
