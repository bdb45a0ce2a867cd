"""The vector store: Chroma, embedded (PersistentClient) by default or a `chroma run` server over HTTP.

cascadesim embeds every text itself; the collection is given a registered embedding function that refuses to
embed, so Chroma can never fall back to its default model (which would download one). Chroma returns
candidates; they are re-scored with exact cosines in float64, so rankings are deterministic and equal to a
brute-force ranking whenever the true top results are among the candidates.

Failures the user can act on become CascadeErrors naming the folder or address: a `--store` that is neither a
folder nor http(s)://HOST:PORT, a file where a folder belongs, a full disk, a server that is down, dies or stops
answering. Waits on a server are bounded (StoreTimeouts), so a frozen server cannot hang a run.
"""

from __future__ import annotations

import errno
import hashlib
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from sim import _env  # noqa: F401
from sim.core.errors import CascadeError
from sim.core.folders import require_folder
from sim.retrieval.embedding import require_cache_folder

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


@dataclass(frozen=True)
class StoreTimeouts:
    """How long the client waits on a `chroma run` server, in seconds: `connect` to open a connection, `read`
    for each answer (an upsert of 4000 records into a busy server can take several seconds)."""

    connect: float = 5.0
    read: float = 60.0

    def __post_init__(self) -> None:
        for name, value in (("connect", self.connect), ("read", self.read)):
            if not 0 < value < math.inf:
                raise CascadeError(f"store {name} timeout {value!r}: give a number of seconds above 0")


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_STORE_FORMS = ("a folder for the embedded store (created if missing), or http://HOST:PORT (or https://) of a "
                "`chroma run` server")


@dataclass(frozen=True)
class StoreLocation:
    """Where the store is: an embedded folder, or a server URL (`http://HOST:PORT`), and how long to wait on
    the server."""

    url: str | None
    path: Path | None
    timeouts: StoreTimeouts = StoreTimeouts()

    @classmethod
    def parse(cls, store: str | None, cache_dir: Path, timeouts: StoreTimeouts = StoreTimeouts()) -> StoreLocation:
        """The location `--store` names (None: embedded, under the cache folder), refused with what is accepted
        when it is neither a usable folder nor a server address."""
        if not store:
            require_cache_folder(cache_dir)
            return cls(None, cache_dir / "chroma", timeouts)
        if store.lower().startswith(("http:", "https:")) or _URL.match(store):
            return cls(_server_url(store), None, timeouts)
        require_folder(Path(store), f"--store {store}", _STORE_FORMS)
        return cls(None, Path(store), timeouts)

    def describe(self) -> str:
        return self.url or "embedded Chroma"


def _server_url(store: str) -> str:
    """`store` itself when it is http(s)://HOST:PORT of a server, else a CascadeError saying what is accepted."""
    scheme = store.split(":", 1)[0]
    if scheme.lower() not in ("http", "https"):
        raise CascadeError(f"--store {store}: {scheme}:// is not a store cascadesim can use; give {_STORE_FORMS}")
    parsed = urlparse(store)
    try:
        port = parsed.port
    except ValueError:  # a port that is not a number in 0..65535
        port = None
    if (not store.lower().startswith(f"{scheme.lower()}://") or not parsed.hostname or not port
            or parsed.path not in ("", "/") or parsed.query or parsed.params):
        raise CascadeError(f"--store {store}: give a server address as http://HOST:PORT (a port in 1..65535, "
                           "no path), where `chroma run --host HOST --port PORT` listens")
    return store


# Chroma reports OS failures as text inside its own errors (SQLite's "database or disk is full", Rust's "No
# space left on device (os error 28)"): (errno, what to find in the text, what it means for the user).
_DISK_FULL = (errno.ENOSPC, ("disk is full", "no space left on device", "os error 28"),
              "the disk is full (ENOSPC): free space there, or give --store another folder")
_OS_FAILURES = (_DISK_FULL,
                (errno.EACCES, ("permission denied", "os error 13"),
                 "permission denied: give --store a folder you can write"),
                (errno.EROFS, ("read-only file system", "readonly database", "os error 30"),
                 "the file system is read-only: give --store a writable folder"))


def _os_failure(exc: BaseException, embedded: bool) -> str | None:
    """What an OS-level failure means for the user, or None if it is not one. A server's own disk can only be
    full; its other errors mentioning permissions are about access to the server, not files."""
    text = str(exc).lower()
    for code, needles, meaning in _OS_FAILURES if embedded else (_DISK_FULL,):
        if getattr(exc, "errno", None) == code or any(n in text for n in needles):
            return meaning
    return None


def _no_answer(location: StoreLocation, doing: str) -> str:
    t = location.timeouts
    return (f"the Chroma server at {location.url} did not answer while {doing} (waited {t.connect:g} s to "
            f"connect, {t.read:g} s for an answer): is `chroma run` on that host and port stopped or overloaded? "
            "A slow server needs a longer --store-timeout")


@contextmanager
def store_errors(location: StoreLocation, doing: str):
    """Turn failures of the store into CascadeErrors naming it: a server that went away or stopped answering,
    or a disk that filled up under the embedded store. Other errors pass through (they are bugs)."""
    import httpx
    from chromadb.errors import ChromaError

    try:
        yield
    except httpx.TimeoutException:
        raise CascadeError(_no_answer(location, doing)) from None
    except httpx.TransportError as exc:
        raise CascadeError(
            f"lost the Chroma server at {location.url} while {doing} ({type(exc).__name__}: {str(exc)[:160]}); "
            "check that `chroma run` is still up on that host and port") from None
    except (ChromaError, OSError) as exc:
        meaning = _os_failure(exc, embedded=location.url is None)
        if meaning is None:
            raise
        where = f"the Chroma server at {location.url} reports" if location.url else f"the store folder {location.path}:"
        raise CascadeError(f"{where} {meaning} ({str(exc)[:160]})") from None


@dataclass(frozen=True)
class Store:
    """A connected Chroma client and the location it came from (named by every error)."""

    client: Any
    location: StoreLocation


def connect(location: StoreLocation) -> Store:
    """A Chroma client for the location, with telemetry off and, for a server, bounded waits (see
    StoreTimeouts); an unreachable server or an unusable folder gives a clear error."""
    import chromadb
    import httpx
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if location.url is None:
        require_folder(location.path, f"the store folder {location.path}", _STORE_FORMS)
        with store_errors(location, "opening the store"):
            return Store(chromadb.PersistentClient(path=str(location.path), settings=settings), location)
    parsed = urlparse(location.url)
    timeout = httpx.Timeout(location.timeouts.read, connect=location.timeouts.connect)
    try:
        # chromadb's constructor already sends requests, with no timeout (chromadb 1.5): a bounded request
        # first, so that a stopped server cannot hang it.
        api = settings.chroma_server_api_default_path.value  # an Enum: its str() is its name
        httpx.get(f"{location.url.rstrip('/')}{api}/heartbeat", timeout=timeout).raise_for_status()
        client = chromadb.HttpClient(host=parsed.hostname, port=parsed.port, ssl=parsed.scheme == "https",
                                     settings=settings)
    except httpx.TimeoutException:
        raise CascadeError(_no_answer(location, "connecting")) from None
    except Exception as exc:  # noqa: BLE001 - every failure here means "no usable server there"
        raise CascadeError(f"cannot reach a Chroma server at {location.url} ({type(exc).__name__}: "
                           f"{str(exc)[:160]}); start one with `chroma run --host HOST --port PORT`, or omit "
                           "--store to use the embedded store") from None
    _bound_waits(client, timeout)
    return Store(client, location)


def _bound_waits(client, timeout) -> None:
    """Give the client's HTTP session our timeouts. chromadb 1.5 builds it as `httpx.Client(timeout=None)` and
    has no setting for it (chroma-core/chroma#5805), so the session is reached through the client."""
    session = getattr(getattr(client, "_server", None), "_session", None)
    if session is None or not hasattr(session, "timeout"):
        raise RuntimeError("this chromadb version keeps its HTTP session elsewhere; cascadesim cannot bound its "
                           "waits (update sim.retrieval.store._bound_waits)")
    session.timeout = timeout


def collection_name(prefix: str, model_key: str, ids: list[str], texts: dict[str, str]) -> str:
    """A collection name that changes whenever the model or any record changes (so a stale one is never used)."""
    h = hashlib.sha256(model_key.encode())
    for i in ids:
        h.update(f"{i}\x00{texts[i]}\x00".encode())
    return f"{prefix}-{h.hexdigest()[:24]}"


class VectorIndex:
    """One collection of (id, vector, group) records, searched by cosine similarity, optionally within groups."""

    def __init__(self, store: Store, name: str, model_key: str, vectors_by_id: dict[str, np.ndarray],
                 groups: dict[str, str] | None = None):
        self.name, self.model_key, self.location = name, model_key, store.location
        self.ids = list(vectors_by_id)
        self.matrix = np.vstack([vectors_by_id[i] for i in self.ids]).astype(np.float64)
        self.position = {pid: i for i, pid in enumerate(self.ids)}
        with store_errors(self.location, f"building the collection '{name}'"):
            self.collection = self._open(store.client)
            if self.collection.count() != len(self.ids):
                groups = groups or {}
                for a in range(0, len(self.ids), _BATCH):
                    chunk = self.ids[a:a + _BATCH]
                    self.collection.upsert(ids=chunk, embeddings=self.matrix[a:a + _BATCH].astype(np.float32).tolist(),
                                           metadatas=[{"group": groups.get(i, "")} for i in chunk])

    def _open(self, client):
        """The collection, created if missing; one built with another model is refused."""
        ef = embedding_function(self.model_key)
        existing = {c.name if hasattr(c, "name") else c for c in client.list_collections()}
        if self.name not in existing:
            return client.create_collection(
                self.name, embedding_function=ef, metadata={"model_key": self.model_key},
                configuration={"hnsw": {"space": "cosine", "ef_search": 200, "ef_construction": 200}})
        collection = client.get_collection(self.name, embedding_function=ef)
        built_with = (collection.metadata or {}).get("model_key")
        if built_with != self.model_key:
            raise CascadeError(f"collection '{self.name}' in the store was built with another model "
                               f"({built_with}, not {self.model_key}); delete it or use another store")
        return collection

    def search(self, queries: np.ndarray, k: int, groups: list[str] | None = None) -> tuple[list[list[str]], np.ndarray]:
        """Top-k ids per query (exact cosine order, ties by id) and their cosines (queries x k), among the
        records whose group is one of `groups` (default: all records)."""
        n_candidates = min(len(self.ids), max(2 * k, k + 20))
        where = None
        if groups is not None:
            where = {"group": groups[0]} if len(groups) == 1 else {"group": {"$in": groups}}
        with store_errors(self.location, f"searching the collection '{self.name}'"):
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
