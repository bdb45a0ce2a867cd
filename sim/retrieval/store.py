"""The vector store: Chroma, embedded (PersistentClient) by default or a `chroma run` server over HTTP.

cascadesim embeds every text itself; the collection is given a registered embedding function that refuses to
embed, so Chroma can never fall back to its default model (which would download one). Chroma returns
candidates; they are re-scored with exact cosines in float64, so rankings are deterministic and equal to a
brute-force ranking whenever the true top results are among the candidates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from sim import _env  # noqa: F401
from sim.core.errors import CascadeError

_BATCH = 4000  # Chroma caps the records of one add; stay well below


def _embedding_function_class():
    from chromadb.api.types import EmbeddingFunction
    from chromadb.utils.embedding_functions import register_embedding_function

    @register_embedding_function
    class CascadeEmbeddings(EmbeddingFunction):
        """Stands in for the model: texts reach Chroma already embedded by cascadesim."""

        def __init__(self, model_key: str = ""):
            self.model_key = model_key

        def __call__(self, input):  # noqa: A002 (Chroma's signature)
            raise RuntimeError("cascadesim passes its own embeddings; Chroma must not embed texts")

        @staticmethod
        def name() -> str:
            return "cascadesim"

        def get_config(self) -> dict[str, Any]:
            return {"model_key": self.model_key}

        @staticmethod
        def build_from_config(config: dict[str, Any]):
            return CascadeEmbeddings(config.get("model_key", ""))

        def default_space(self):
            return "cosine"

    return CascadeEmbeddings


_EF_CLASS = None


def embedding_function(model_key: str):
    global _EF_CLASS
    if _EF_CLASS is None:
        _EF_CLASS = _embedding_function_class()
    return _EF_CLASS(model_key)


@dataclass
class StoreLocation:
    """Where the store is: an embedded folder, or a server URL (`http://HOST:PORT`)."""

    url: str | None
    path: Path | None

    @classmethod
    def parse(cls, store: str | None, cache_dir: Path) -> StoreLocation:
        if not store:
            return cls(None, cache_dir / "chroma")
        if store.startswith(("http://", "https://")):
            parsed = urlparse(store)
            if not parsed.hostname or not parsed.port:
                raise CascadeError(f"--store {store}: give a server address as http://HOST:PORT")
            return cls(store, None)
        return cls(None, Path(store))

    def describe(self) -> str:
        return self.url or "embedded Chroma"


def connect(location: StoreLocation):
    """A Chroma client for the location, with telemetry off; unreachable servers give a clear error."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if location.url is None:
        return chromadb.PersistentClient(path=str(location.path), settings=settings)
    parsed = urlparse(location.url)
    try:
        client = chromadb.HttpClient(host=parsed.hostname, port=parsed.port, ssl=parsed.scheme == "https",
                                     settings=settings)
        client.heartbeat()
    except Exception as exc:  # noqa: BLE001 - every failure here means "no usable server there"
        raise CascadeError(f"cannot reach a Chroma server at {location.url} ({type(exc).__name__}: "
                           f"{str(exc)[:160]}); start one with `chroma run --host HOST --port PORT`, or omit "
                           "--store to use the embedded store") from None
    return client


def collection_name(prefix: str, model_key: str, ids: list[str], texts: dict[str, str]) -> str:
    """A collection name that changes whenever the model or any record changes (so a stale one is never used)."""
    h = hashlib.sha256(model_key.encode())
    for i in ids:
        h.update(f"{i}\x00{texts[i]}\x00".encode())
    return f"{prefix}-{h.hexdigest()[:24]}"


class VectorIndex:
    """One collection of (id, vector, group) records, searched by cosine similarity, optionally within groups."""

    def __init__(self, client, name: str, model_key: str, vectors_by_id: dict[str, np.ndarray],
                 groups: dict[str, str] | None = None):
        self.name, self.model_key = name, model_key
        ef = embedding_function(model_key)
        existing = {c.name if hasattr(c, "name") else c for c in client.list_collections()}
        if name in existing:
            collection = client.get_collection(name, embedding_function=ef)
            built_with = (collection.metadata or {}).get("model_key")
            if built_with != model_key:
                raise CascadeError(f"collection '{name}' in the store was built with another model "
                                   f"({built_with}, not {model_key}); delete it or use another store")
        else:
            collection = client.create_collection(
                name, embedding_function=ef, metadata={"model_key": model_key},
                configuration={"hnsw": {"space": "cosine", "ef_search": 200, "ef_construction": 200}})
        self.collection = collection
        self.ids = list(vectors_by_id)
        self.matrix = np.vstack([vectors_by_id[i] for i in self.ids]).astype(np.float64)
        self.position = {pid: i for i, pid in enumerate(self.ids)}
        groups = groups or {}
        if collection.count() != len(self.ids):
            for a in range(0, len(self.ids), _BATCH):
                chunk = self.ids[a:a + _BATCH]
                collection.upsert(ids=chunk, embeddings=self.matrix[a:a + _BATCH].astype(np.float32).tolist(),
                                  metadatas=[{"group": groups.get(i, "")} for i in chunk])

    def search(self, queries: np.ndarray, k: int, groups: list[str] | None = None) -> tuple[list[list[str]], np.ndarray]:
        """Top-k ids per query (exact cosine order, ties by id) and their cosines (queries x k), among the
        records whose group is one of `groups` (default: all records)."""
        n_candidates = min(len(self.ids), max(2 * k, k + 20))
        where = None
        if groups is not None:
            where = {"group": groups[0]} if len(groups) == 1 else {"group": {"$in": groups}}
        found = self.collection.query(query_embeddings=queries.astype(np.float32).tolist(),
                                      n_results=n_candidates, include=[], where=where)["ids"]
        q = queries.astype(np.float64)
        top_ids, top_scores = [], np.zeros((len(q), k))
        for row, candidates in enumerate(found):
            idx = np.array([self.position[c] for c in candidates])
            scores = self.matrix[idx] @ q[row]
            order = sorted(range(len(idx)), key=lambda j: (-scores[j], candidates[j]))[:k]
            top_ids.append([candidates[j] for j in order])
            top_scores[row, :len(order)] = scores[order]
        return top_ids, top_scores
