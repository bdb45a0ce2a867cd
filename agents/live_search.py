"""Live retrieval for the agent engine: the domain's stores in Chroma, searched with real embeddings.

Every passage and every query the workflow can send is embedded once, through the embedding cache, before the
run. Searches go to Chroma (embedded or a `chroma run` server) and are re-scored exactly (`sim.retrieval.store`), so the
same search always returns the same ranking; a run therefore remembers each distinct search's answer instead
of asking Chroma again for every instance.
"""

from __future__ import annotations

import threading

import numpy as np

from agents.domain import Domain
from sim.retrieval.corpus import Passage
from sim.retrieval.embedding import Embedder
from sim.retrieval.store import StoreLocation, VectorIndex, collection_name, connect


class LiveSearch:
    """(store, query, groups, n) -> the n best passages of the store, best first."""

    def __init__(self, domain: Domain, embedder: Embedder, location: StoreLocation):
        self.domain, self.embedder = domain, embedder
        chroma = connect(location)
        self.indexes: dict[str, VectorIndex] = {}
        for name, store in domain.stores.items():
            texts = {p.id: p.text for p in store.passages}
            ids = list(texts)
            vectors = embedder.embed([texts[i] for i in ids])
            self.indexes[name] = VectorIndex(
                # The groups are part of the name: a collection's records carry them (`where` filters on them).
                chroma, collection_name(f"cs-agent-{domain.workflow[:12]}", embedder.key, ids,
                                        {i: f"{store.groups.get(i, '')}\x00{texts[i]}" for i in ids}),
                embedder.key, dict(zip(ids, vectors, strict=True)), dict(store.groups))
        queries = list(domain.queries)
        self.query_vectors = dict(zip(queries, embedder.embed(queries), strict=True)) if queries else {}
        self.searches = 0
        self._memo: dict[tuple, list[Passage]] = {}
        self._lock = threading.Lock()  # LangGraph runs the nodes of one superstep in threads, the engine instances
        self._search_lock = threading.Lock()

    def __call__(self, store: str, query: str, groups: tuple[str, ...] | None, n: int) -> list[Passage]:
        key = (store, query, groups, n)
        found = self._memo.get(key)
        if found is None:
            with self._search_lock:  # one search per key, whichever instance asks first: `searches` counts keys
                found = self._memo.get(key)
                if found is None:
                    found = self._search(store, query, groups, n)
                    with self._lock:
                        self._memo[key] = found
        return found

    def distinct(self) -> set[tuple]:
        """Every distinct search made so far, as (store, query, groups, n) (`searches` counts them)."""
        with self._lock:
            return set(self._memo)

    def _search(self, store: str, query: str, groups: tuple[str, ...] | None, n: int) -> list[Passage]:
        vector = self.query_vectors.get(query)
        if vector is None:
            vector = self.embedder.embed([query])[0]
        index, by_id = self.indexes[store], self.domain.stores[store].by_id
        in_groups = [p for p in by_id.values() if groups is None or self.domain.stores[store].groups[p.id] in groups]
        if not in_groups:
            return []
        ids, _ = index.search(np.asarray(vector)[None, :], min(n, len(in_groups)), list(groups) if groups else None)
        with self._lock:
            self.searches += 1
        return [by_id[i] for i in ids[0]]
