"""Where a corpus comes from: a built-in generator by name, or a user's passages file (and queries file)."""

from __future__ import annotations

from pathlib import Path

from sim.core.errors import CascadeError
from sim.retrieval.corpora.builtin import BUILTIN_CORPORA
from sim.retrieval.corpus import Corpus, read_corpus


def open_corpus(spec: str | Path, queries_file: str | Path | None = None, **columns: str | None) -> Corpus:
    """A built-in corpus by name (`contracts`, `support`), a user's passages file (with its columns), or a
    BEIR-layout folder (its corpus.jsonl)."""
    if str(spec) in BUILTIN_CORPORA:
        if queries_file is not None:
            raise CascadeError("a queries file goes with a corpus file, not with a built-in corpus")
        return BUILTIN_CORPORA[str(spec)]()
    if not Path(spec).exists() and not Path(spec).suffix:
        raise CascadeError(f"corpus '{spec}': neither a built-in corpus ({', '.join(BUILTIN_CORPORA)}) nor a file")
    if Path(spec).is_dir():
        from sim.retrieval.beir import beir_corpus

        if queries_file is not None or any(v is not None for v in columns.values()):
            raise CascadeError(f"corpus {spec}: a BEIR folder's corpus.jsonl has fixed fields (_id, title, text); "
                               "columns and a queries file go with a passages file")
        if not (Path(spec) / "corpus.jsonl").is_file():
            raise CascadeError(f"corpus {spec}: a folder, but not a BEIR-layout one (no corpus.jsonl in it)")
        return beir_corpus(spec)
    return read_corpus(spec, queries_file=queries_file, **{k: v for k, v in columns.items() if v is not None})
