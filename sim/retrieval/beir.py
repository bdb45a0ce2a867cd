"""Retrieval sets in the BEIR layout: a folder with `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl`
(`_id`, `text`) and `qrels/<split>.tsv` (`query-id`, `corpus-id`, `score`, graded; 0 = judged not relevant).

It is the layout of BEIR, NanoBEIR and most public retrieval benchmarks, so any such set a user has can join a
panel (`sim.retrieval.panel`). An in-domain corpus with gold passages becomes a set too (`from_corpus`).
A document's text is its title and its text joined by a blank line, as BEIR's dense evaluation does. Queries
with no relevant document are left out (their nDCG is undefined); judgments of documents or queries the
folder does not hold (subsets keep the full qrels) are counted and left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from sim.core.errors import CascadeError, DataFileError, Problem
from sim.core.limits import MAX_PASSAGE_CHARS, MAX_PASSAGES
from sim.core.table_source import Limits, read_table
from sim.retrieval.corpus import Corpus, Passage

_LIMITS = Limits(rows=MAX_PASSAGES, chars=MAX_PASSAGE_CHARS)
MAX_GRADE = 1000
"""Largest relevance grade read from a qrels file (BEIR sets use 0-3)."""


@dataclass(frozen=True)
class RetrievalSet:
    """Documents, queries and graded judgments (query id -> document id -> grade > 0)."""

    name: str
    domain: str
    """`in-domain` (the corpus a model is tuned for) or `unrelated` (a domain it never saw)."""
    doc_ids: tuple[str, ...]
    doc_texts: tuple[str, ...]
    query_ids: tuple[str, ...]
    query_texts: tuple[str, ...]
    qrels: Mapping[str, Mapping[str, int]]
    left_out: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """What was read but not used, by reason (counts)."""

    def describe(self) -> dict:
        return {"name": self.name, "domain": self.domain, "documents": len(self.doc_ids),
                "queries": len(self.query_ids), "judgments": sum(len(v) for v in self.qrels.values()),
                **({"left_out": dict(self.left_out)} if self.left_out else {})}


def read_beir(folder: str | Path, split: str = "test", domain: str = "unrelated") -> RetrievalSet:
    """A BEIR-layout folder as a RetrievalSet (its name is the folder's name)."""
    root = Path(folder)
    if not root.is_dir():
        raise CascadeError(f"--panel {folder}: no such folder; a panel set is a BEIR-layout folder with "
                           "corpus.jsonl, queries.jsonl and qrels/test.tsv")
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (root / name).is_file():
            raise CascadeError(f"--panel {folder}: no {name}; a panel set is a BEIR-layout folder with "
                               "corpus.jsonl, queries.jsonl and qrels/test.tsv")
    qrels_file = root / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        have = sorted(p.name for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
        raise CascadeError(f"--panel {folder}: no qrels/{split}.tsv (qrels/ holds {have or 'nothing'})")

    documents = beir_corpus(root)
    doc_ids, doc_texts = [p.id for p in documents.passages], [p.text for p in documents.passages]
    seen = set(doc_ids)
    queries = read_table(root / "queries.jsonl", "queries", ["_id", "text"], limits=_LIMITS)
    query_text = {}
    for r in queries.records:
        if r.values["_id"] in query_text:
            raise DataFileError(Problem(queries.file, r.line, "_id", f"query id {r.values['_id'][:80]!r} appears "
                                        "twice; ids must be unique"))
        query_text[r.values["_id"]] = r.values["text"]

    table = read_table(qrels_file, "qrels", ["query-id", "corpus-id", "score"], limits=_LIMITS)
    qrels: dict[str, dict[str, int]] = {}
    left_out = {"judgments_of_documents_not_in_corpus": 0, "judgments_of_queries_not_in_queries": 0}
    for r in table.records:
        qid, did, score = r.values["query-id"], r.values["corpus-id"], r.values["score"]
        try:
            grade = int(score)
        except ValueError:
            grade = -1
        if not 0 <= grade <= MAX_GRADE:
            raise DataFileError(Problem(table.file, r.line, "score", f"{score[:40]!r} is not a relevance grade; "
                                        f"an integer from 0 (judged not relevant) to {MAX_GRADE}"))
        if did not in seen:
            left_out["judgments_of_documents_not_in_corpus"] += 1
        elif qid not in query_text:
            left_out["judgments_of_queries_not_in_queries"] += 1
        elif grade > 0:
            qrels.setdefault(qid, {})[did] = grade
    left_out["queries_without_relevant_document"] = sum(1 for q in query_text if q not in qrels)
    kept = [q for q in query_text if q in qrels]
    if not kept:
        raise CascadeError(f"--panel {folder}: no query has a relevant document in the corpus ({qrels_file})")
    return RetrievalSet(root.resolve().name, domain, tuple(doc_ids), tuple(doc_texts), tuple(kept),
                        tuple(query_text[q] for q in kept),
                        MappingProxyType({q: MappingProxyType(qrels[q]) for q in kept}),
                        MappingProxyType({k: v for k, v in left_out.items() if v}))


def beir_corpus(folder: str | Path) -> Corpus:
    """The documents of a BEIR-layout folder (its corpus.jsonl) as a corpus of passages, named after the folder;
    a passage's text is its title and text joined by a blank line."""
    root = Path(folder)
    docs = read_table(root / "corpus.jsonl", "corpus", ["_id", "text"], ["title"], limits=_LIMITS,
                      may_be_empty=("title", "text"))
    passages, seen = [], {}
    for r in docs.records:
        did = r.values["_id"]
        if did in seen:
            raise DataFileError(Problem(docs.file, r.line, "_id", f"document id {did[:80]!r} appears twice (lines "
                                        f"{seen[did]} and {r.line}); ids must be unique"))
        seen[did] = r.line
        title = r.values.get("title", "")
        passages.append(Passage(did, f"{title}\n\n{r.values['text']}".strip() if title else r.values["text"]))
    return Corpus(root.resolve().name, tuple(passages))


def from_corpus(corpus: Corpus, domain: str = "in-domain") -> RetrievalSet:
    """A corpus with queries as a set: each query's gold passage is its one relevant document (grade 1)."""
    if not corpus.queries:
        raise CascadeError(f"corpus '{corpus.name}' has no queries with gold passages: it cannot be a panel set")
    qids = tuple(f"q{i}" for i in range(len(corpus.queries)))
    return RetrievalSet(corpus.name, domain, tuple(p.id for p in corpus.passages),
                        tuple(p.text for p in corpus.passages), qids, tuple(q.text for q in corpus.queries),
                        MappingProxyType({qid: MappingProxyType({q.gold_id: 1})
                                          for qid, q in zip(qids, corpus.queries, strict=True)}))
