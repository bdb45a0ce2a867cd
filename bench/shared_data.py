"""Real text from ../shared/data for the benchmarks (read in place, never copied into the project)."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RETRIEVAL = DATA / "retrieval"
"""BEIR-layout sets from domains unrelated to contracts (DBpedia-Entity subset, tau2-bench banking KB)."""

CUAD_CATEGORIES = ("Cap On Liability", "Governing Law", "Anti-Assignment", "Audit Rights", "Insurance",
                   "Termination For Convenience", "License Grant", "Exclusivity")


def cuad_clauses(limit: int) -> list[tuple[str, str]]:
    """(category, clause) pairs from CUAD, distinct, 30 to 800 characters, in file order."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    with (DATA / "cuad" / "master_clauses.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for col in CUAD_CATEGORIES:
                for clause in ast.literal_eval(row[col]) if row[col] else []:
                    if 30 < len(clause) < 800 and clause not in seen:
                        seen.add(clause)
                        out.append((col, clause))
            if len(out) >= limit:
                return out[:limit]
    return out


def banking77_set(docs: int = 2000, queries: int = 200, seed: int = 0):
    """Banking77 as a retrieval set (unrelated to contracts): a seeded sample of `docs` training queries are
    the documents, a sample of `queries` test queries search them, and every document of the same intent is
    relevant (grade 1): "find the tickets like this one". (The files are sorted by intent: hence samples.)"""
    from types import MappingProxyType

    from sim.core.seeding import stream
    from sim.retrieval.beir import RetrievalSet

    def rows(name: str, limit: int) -> list[tuple[str, str]]:
        with (DATA / "banking77" / name).open(encoding="utf-8") as f:
            every = [(r["text"], r["category"]) for r in csv.DictReader(f)]
        return [every[i] for i in sorted(stream(seed, f"bench/banking77/{name}", 0).permutation(len(every))[:limit])]

    train, test = rows("train.csv", docs), rows("test.csv", queries)
    by_intent: dict[str, list[str]] = {}
    for i, (_, intent) in enumerate(train):
        by_intent.setdefault(intent, []).append(f"t{i}")
    kept = [(f"q{i}", text, intent) for i, (text, intent) in enumerate(test) if intent in by_intent]
    return RetrievalSet("banking77", "unrelated", tuple(f"t{i}" for i in range(len(train))),
                        tuple(t for t, _ in train), tuple(q for q, _, _ in kept), tuple(t for _, t, _ in kept),
                        MappingProxyType({q: MappingProxyType(dict.fromkeys(by_intent[intent], 1))
                                          for q, _, intent in kept}))


def cuad_set(clauses: int = 1500, queries: int = 300, seed: int = 0):
    """CUAD clauses as a retrieval set (contracts, but none the model was tuned on): keyword rewrites of a
    seeded sample of clauses search all of them; each rewrite's own clause is relevant."""
    from sim.retrieval.beir import from_corpus
    from sim.retrieval.corpus import Corpus, Passage
    from sim.retrieval.measure import ProbeSettings, probe_queries

    corpus = Corpus("cuad", tuple(Passage(f"cuad-{i}", text, topic) for i, (topic, text)
                                  in enumerate(cuad_clauses(clauses))))
    picked = probe_queries(corpus, ProbeSettings(probes=queries, seed=seed))
    return from_corpus(Corpus("cuad", corpus.passages, tuple(picked)), domain="contracts, unseen")
