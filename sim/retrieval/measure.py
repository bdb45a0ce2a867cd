"""Measure a retriever: embed a corpus plus structural twins of probe passages, index them in Chroma (dense),
or score them with BM25 or a fusion of both (lexical, hybrid: `sim.retrieval.retrievers`), run the probe
queries, and count what the agent would read first.

One collection holds the corpus and the twins; each twin belongs to the group of its original. A query is
searched twice: among the corpus alone (broad retrieval: nDCG@10, recall@10, and whether the gold passage is
in the top k), and among the corpus plus its own gold passage's twins (what an index holding near-duplicates
of the answer returns first). Twins of other passages never compete: a real index rarely holds every
passage's twins at once. Per probe query exactly one outcome, as in a scenario's error profile: the twin type
when a twin of the gold passage comes first; `topical_miss` when the gold passage is not in the corpus's top k;
else ok.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from sim.core.errors import CascadeError
from sim.core.limits import MAX_PROBES, MAX_SEED
from sim.core.seeding import stream
from sim.core.stats import Z95, wilson
from sim.retrieval.beir import RetrievalSet
from sim.retrieval.corpus import Corpus, Query
from sim.retrieval.embedding import Embedder
from sim.retrieval.pairs import PairSet, score_pairs
from sim.retrieval.panel import evaluate, summary
from sim.retrieval.realism import twin_realism
from sim.retrieval.retrievers import FullScorer, RetrieverSpec
from sim.retrieval.store import StoreLocation, StoreTimeouts, VectorIndex, collection_name, connect
from sim.retrieval.twins import TWIN_MARK, TWIN_TYPES, twin_id, twins_of


@dataclass(frozen=True)
class ProbeSettings:
    """How to probe: `k` results an agent reads (topical miss: gold not among them), at most `probes`
    queries, `seed` for the choice of probes and twin edits."""

    k: int = 5
    probes: int = 300
    seed: int = 0

    def __post_init__(self):
        for name, low, high in (("k", 1, 1000), ("probes", 1, MAX_PROBES), ("seed", 0, MAX_SEED)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise CascadeError(f"probe setting {name} = {value!r}: an integer from {low} to {high:,}")


DENSE = RetrieverSpec()
"""The default retriever: dense, searched in Chroma."""

_FILLER = frozenset("""a an the of such any all this that these those hereby herein hereunder thereof therein
hereto thereto whereas said same which who whom whose its it be been being as to in on at by for with from
and or""".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\$?\d[\d,]*(?:\.\d+)?%?")


def self_query(text: str, max_words: int = 40) -> str:
    """A keyword rewrite of a passage, for corpora without queries: lower case, filler words and punctuation
    dropped, every word that carries structure (negations, modals, parties, numbers) kept in order."""
    # finditer, not findall: only the words used are scanned, however long the passage.
    words = [w for w in map(re.Match.group, islice(_WORD.finditer(text), max_words * 2)) if w.lower() not in _FILLER]
    return " ".join(words[:max_words]).lower()


def probe_queries(corpus: Corpus, settings: ProbeSettings) -> list[Query]:
    """The probe's queries: the corpus's own (a seeded sample), or self-queries of sampled passages."""
    rng = stream(settings.seed, "probe/sample", 0)
    if corpus.queries:
        picked = rng.permutation(len(corpus.queries))[: settings.probes]
        return [corpus.queries[i] for i in sorted(picked)]
    picked = rng.permutation(len(corpus.passages))[: settings.probes]
    return [Query(self_query(corpus.passages[i].text), corpus.passages[i].id, corpus.passages[i].topic)
            for i in sorted(picked)]


def measure(corpus: Corpus, embedder: Embedder | None, location: StoreLocation | None,
            settings: ProbeSettings = ProbeSettings(), retriever: RetrieverSpec = DENSE,
            panel: list[RetrievalSet] = (), pairs: PairSet | None = None) -> dict[str, Any]:
    """Run the probe and return the profile (see `sim.retrieval.profile`). A lexical retriever needs no
    embedder or store; each `panel` set adds a broad-retrieval row (nDCG@10, recall@100, MRR@10 with CIs);
    a user's contrast `pairs` are scored too (`sim.retrieval.pairs`), beside the rule-made twins."""
    reserved = next((p.id for p in corpus.passages if TWIN_MARK in p.id), None)
    if reserved is not None:
        raise CascadeError(f"corpus '{corpus.name}': passage id {reserved!r} contains {TWIN_MARK!r}, the syntax "
                           "reserved for the ids of structural twins; rename the passage")
    if len({p.id for p in corpus.passages}) != len(corpus.passages):
        raise CascadeError(f"corpus '{corpus.name}': passage ids must be unique")
    queries = probe_queries(corpus, settings)
    # What the model reads of each passage, before twins are made: an edit past that point changes no vector.
    cut = embedder.readable if embedder is not None else (lambda text: text)
    texts = {p.id: cut(p.text) for p in corpus.passages}
    truncated = sum(1 for p in corpus.passages if len(texts[p.id]) < len(p.text))
    known_texts = set(texts.values())
    twin_of: dict[str, tuple[str, str]] = {}   # twin id -> (gold id, type)
    made = dict.fromkeys(TWIN_TYPES, 0)
    skipped = dict.fromkeys(TWIN_TYPES, 0)
    for gold in sorted({q.gold_id for q in queries}):
        twins, missing = twins_of(texts[gold], settings.seed, gold)
        for t in missing:
            skipped[t] += 1
        for twin in twins:
            if twin.text in known_texts:  # the corpus already holds this text: not a new passage
                skipped[twin.error_type] += 1
                continue
            tid = twin_id(gold, twin.error_type)
            texts[tid] = twin.text
            known_texts.add(twin.text)
            twin_of[tid] = (gold, twin.error_type)
            made[twin.error_type] += 1

    ids = list(texts)
    computed_before = embedder.computed if embedder is not None else 0
    vec: dict[str, np.ndarray] = {}
    qvec = None
    if retriever.needs_embeddings:
        vectors = embedder.embed([texts[i] for i in ids] + [q.text for q in queries])
        vec = dict(zip(ids, vectors[: len(ids)], strict=True))
        qvec = vectors[len(ids):]
    corpus_ids = [p.id for p in corpus.passages]
    k = min(settings.k, len(corpus_ids))
    n_broad = min(10, len(corpus_ids))
    if retriever.kind == "dense":
        top_broad, first_with_twins = _dense_search(queries, ids, texts, vec, qvec, twin_of, embedder, location,
                                                    n_broad)
        confusion = _cosine_confusion(queries, vec, qvec)
    else:
        top_broad, first_with_twins, confusion = _full_search(queries, ids, texts, vec, qvec, twin_of, corpus_ids,
                                                              retriever, settings.seed, n_broad)

    outcomes = []
    for q, first, top in zip(queries, first_with_twins, top_broad, strict=True):
        if first in twin_of:
            outcomes.append(twin_of[first][1])
        elif q.gold_id not in top[:k]:
            outcomes.append("topical_miss")
        else:
            outcomes.append("ok")
    n = len(queries)
    kinds = ("topical_miss",) + TWIN_TYPES
    counts = {"queries": n, "ok": outcomes.count("ok"), **{t: outcomes.count(t) for t in kinds}}

    gains = []
    for q, top in zip(queries, top_broad, strict=True):  # binary relevance: the gold passage only
        rank = top.index(q.gold_id) + 1 if q.gold_id in top else None
        gains.append(1.0 / math.log2(rank + 1) if rank else 0.0)
    gains_arr = np.array(gains)
    ndcg = float(gains_arr.mean())
    half = Z95 * float(gains_arr.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    hits = int((gains_arr > 0).sum())

    panel_rows = [summary(evaluate(s, retriever, embedder, location, settings.seed), settings.seed)
                  for s in panel]
    model = ({"name": embedder.name, "identity": embedder.key} if retriever.needs_embeddings else
             {"name": "BM25 (bm25s)", "identity": f"bm25s-{_bm25s_version()}"})
    return {
        "kind": "error_profile",
        "schema_version": 1,
        "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "model": model,
        "retriever": retriever.describe(),
        "corpus": {"name": corpus.name, "fingerprint": corpus.fingerprint(), "passages": len(corpus.passages),
                   "truncated_to_model": truncated,
                   "queries": "from the corpus" if corpus.queries else "self-queries (keyword rewrites)"},
        "settings": {"k": k, "probes": settings.probes, "seed": settings.seed,
                     "store": location.describe() if retriever.kind == "dense" else "none (every document scored)"},
        "rates": {t: counts[t] / n for t in kinds},
        "rates_ci95": {t: list(wilson(counts[t], n)) for t in kinds},
        "counts": counts,
        "twins": {"made": made, "skipped": skipped},
        "confusion": confusion,
        "broad_retrieval": {"ndcg_at_10": ndcg, "ndcg_at_10_ci95": [ndcg - half, ndcg + half],
                            "recall_at_10": hits / n, "recall_at_10_ci95": list(wilson(hits, n)), "queries": n},
        **({"panel": panel_rows} if panel_rows else {}),
        **({"contrast_pairs": {"file": pairs.file, "fingerprint": pairs.fingerprint, "pairs": len(pairs.pairs),
                               "queries": "the file's, else keyword rewrites of the texts",
                               "by_type": score_pairs(pairs.pairs, retriever, embedder, self_query, settings.seed),
                               **({"twin_realism": twin_realism(pairs.pairs, embedder, settings.seed)}
                                  if embedder is not None else {})}}
           if pairs is not None else {}),
        "embeddings": {"computed": (embedder.computed if embedder is not None else 0) - computed_before,
                       "texts": len(ids) + n if retriever.needs_embeddings else 0},
    }


def _bm25s_version() -> str:
    from importlib.metadata import version

    return version("bm25s")


def _dense_search(queries, ids, texts, vec, qvec, twin_of, embedder, location, n_broad):
    """Dense: one Chroma search over the whole collection, then each query keeps the corpus and its own gold's
    twins. When the list holds too few of those (rare), that query is searched again with a filter: exact
    either way."""
    store = connect(location)
    groups = {tid: gold for tid, (gold, _) in twin_of.items()}
    index = VectorIndex(store, collection_name("cs-probe", embedder.key, ids, texts), embedder.key, vec, groups)
    ranked, _ = index.search(qvec, min(len(ids), n_broad + 50))
    top_broad: list[list[str]] = []
    first_with_twins: list[str] = []
    for i, (q, found) in enumerate(zip(queries, ranked, strict=True)):
        broad = [x for x in found if x not in twin_of][:n_broad]
        if len(broad) < n_broad:
            broad = index.search(qvec[i:i + 1], n_broad, groups=[""])[0][0]
        own = [x for x in found if x not in twin_of or twin_of[x][0] == q.gold_id]
        first = own[0] if own else index.search(qvec[i:i + 1], 1, groups=["", q.gold_id])[0][0][0]
        top_broad.append(broad)
        first_with_twins.append(first)
    return top_broad, first_with_twins


def _confusion_entry(outranks: int, ties: int, n: int, gaps: list[float], twin_cosines: list[float],
                     gap_name: str) -> dict[str, Any]:
    return {"queries_with_twin": n, "twin_outranks_gold": outranks, "twin_ties_gold": ties,
            "rate": outranks / n if n else None, "rate_ci95": list(wilson(outranks, n)) if n else None,
            gap_name: float(np.mean(gaps)) if gaps else None,
            "mean_twin_cosine_to_gold": float(np.mean(twin_cosines)) if twin_cosines else None}


def _cosine_confusion(queries, vec, qvec) -> dict[str, Any]:
    confusion = {}
    for t in TWIN_TYPES:
        pairs = [(qvec[i], vec[q.gold_id], vec[twin_id(q.gold_id, t)]) for i, q in enumerate(queries)
                 if twin_id(q.gold_id, t) in vec]
        outranks = sum(1 for qv, g, tw in pairs if float(qv @ tw) > float(qv @ g))
        ties = sum(1 for qv, g, tw in pairs if float(qv @ tw) == float(qv @ g))
        confusion[t] = _confusion_entry(outranks, ties, len(pairs), [float(qv @ g) - float(qv @ tw)
                                                                      for qv, g, tw in pairs],
                                        [float(g @ tw) for _, g, tw in pairs], "mean_cosine_gap")
    return confusion


def _full_search(queries, ids, texts, vec, qvec, twin_of, corpus_ids, retriever, seed, n_broad):
    """Lexical and hybrid: every document scored (`FullScorer`). Broad retrieval ranks an index of the corpus
    alone (its BM25 statistics untouched by twins); the twin decision ranks the corpus plus the query's own
    gold's twins in an index holding every twin. Confusion compares the gold's and each twin's scores there:
    a tie (BM25 on a role swap) is counted apart, and decided by the seeded order of documents."""
    nc = len(corpus_ids)
    matrix = np.vstack([vec[i] for i in ids]) if vec else None
    query_texts = [q.text for q in queries]
    broad = FullScorer(retriever, [texts[i] for i in corpus_ids], query_texts, seed,
                       None if matrix is None else matrix[:nc], qvec)
    full = FullScorer(retriever, [texts[i] for i in ids], query_texts, seed, matrix, qvec)
    position = {pid: j for j, pid in enumerate(ids)}
    own: dict[str, list[int]] = {}
    for tid, (gold, _) in twin_of.items():
        own.setdefault(gold, []).append(position[tid])
    corpus_positions = np.arange(nc)
    top_broad, first_with_twins = [], []
    tally = {t: {"outranks": 0, "ties": 0, "n": 0, "gaps": [], "cos": []} for t in TWIN_TYPES}
    for i, q in enumerate(queries):
        top_broad.append([corpus_ids[j] for j in broad.top(i, n_broad)])
        cand = np.concatenate([corpus_positions, np.array(own.get(q.gold_id, []), dtype=int)])
        scores = full.scores(i, cand)
        first_with_twins.append(ids[full.order(scores, cand)[0]])
        g = position[q.gold_id]
        for tpos in own.get(q.gold_id, []):
            t = tally[twin_of[ids[tpos]][1]]
            t["n"] += 1
            t["outranks"] += int(scores[tpos] > scores[g])
            t["ties"] += int(scores[tpos] == scores[g])
            t["gaps"].append(float(scores[g] - scores[tpos]))
            if vec:
                t["cos"].append(float(vec[q.gold_id] @ vec[ids[tpos]]))
    confusion = {t: _confusion_entry(v["outranks"], v["ties"], v["n"], v["gaps"], v["cos"], "mean_score_gap")
                 for t, v in tally.items()}
    return top_broad, first_with_twins, confusion


def measure_retriever(corpus: str | Corpus = "contracts", *, model: str | None = None, store: str | None = None,
                      cache_dir=None, k: int = 5, probes: int = 300, seed: int = 0,
                      store_timeouts: StoreTimeouts | None = None) -> dict[str, Any]:
    """Python twin of `cascade measure`: the error profile of `model` on `corpus` (a built-in name, a file
    path, or a Corpus); `store_timeouts` bound the waits on a Chroma server."""
    from sim.retrieval.embedding import default_cache_dir
    from sim.retrieval.sources import open_corpus

    chosen = corpus if isinstance(corpus, Corpus) else open_corpus(corpus)
    cache = cache_dir or default_cache_dir()
    return measure(chosen, Embedder(model, cache_dir=cache), StoreLocation.parse(store, cache, store_timeouts or StoreTimeouts()),
                   ProbeSettings(k=k, probes=probes, seed=seed))


def _cache_entry(corpus: str, model: str | None, probes: int, k: int) -> tuple[Corpus, Path]:
    """The corpus and where its profile under `model` is cached; reads the model's files for their identity,
    embeds nothing."""
    from sim.retrieval.embedding import default_cache_dir, model_identity, resolve_model
    from sim.retrieval.sources import open_corpus

    chosen = open_corpus(corpus)
    key = hashlib.sha256(f"{model_identity(resolve_model(model)[1])}|{chosen.fingerprint()}|{probes}|{k}".encode())
    return chosen, default_cache_dir() / "profiles" / f"{chosen.name}-{key.hexdigest()[:16]}.yaml"


def cached_profile_path(corpus: str, model: str | None, probes: int, k: int) -> Path:
    """Where the profile of `model` on `corpus` is cached, whether or not it has been measured yet."""
    return _cache_entry(corpus, model, probes, k)[1]


def cached_profile(corpus: str, model: str | None, probes: int, k: int) -> Path:
    """The profile of `model` on `corpus`, measured on first use and read from the cache after that."""
    import sys

    from sim.retrieval.profile import write_profile

    chosen, path = _cache_entry(corpus, model, probes, k)
    if not path.is_file():
        print(f"measuring the retriever on corpus '{chosen.name}' (first use; cached in {path})", file=sys.stderr)
        write_profile(measure_retriever(chosen, model=model, k=k, probes=probes), path)
    return path
