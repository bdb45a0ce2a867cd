"""Speed of the measure pipeline, as ratios to baselines measured in the same run.

    python bench/measure_speed.py [--texts N]

1. Embedding throughput of the pipeline (hashing, cache look-up, batching, cache write) against bare
   `SentenceTransformer.encode` of the same texts (goal: >= 0.9x).
2. A cached re-run of the whole measurement (`cascade measure` on the same corpus) against the first run
   (goal: >= 20x).
Texts: CUAD clauses from ../shared/data (real contract language).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sim.retrieval.corpus import Corpus, Passage
from sim.retrieval.embedding import Embedder
from sim.retrieval.measure import ProbeSettings, measure
from sim.retrieval.store import StoreLocation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1500)
    args = parser.parse_args()
    texts = [clause for _, clause in cuad_clauses(args.texts)]
    with tempfile.TemporaryDirectory() as tmp:
        embedder = Embedder(cache_dir=Path(tmp) / "a")
        model = embedder.model  # loaded once, outside both timings
        model.encode(texts[:64], batch_size=64, normalize_embeddings=True)  # warm-up
        t0 = time.perf_counter()
        model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        bare = time.perf_counter() - t0
        t0 = time.perf_counter()
        embedder.embed(texts)
        pipeline = time.perf_counter() - t0
        print(f"{len(texts)} CUAD clauses")
        print(f"bare encode        : {len(texts) / bare:7.1f} texts/s")
        print(f"measure pipeline   : {len(texts) / pipeline:7.1f} texts/s")
        print(f"throughput ratio   : {bare / pipeline:.3f}   (goal >= 0.9)")

        corpus = Corpus("cuad", tuple(Passage(f"c{i}", t) for i, t in enumerate(texts)))
        location = StoreLocation(None, Path(tmp) / "chroma")
        settings = ProbeSettings(probes=300)
        t0 = time.perf_counter()
        first = measure(corpus, Embedder(cache_dir=Path(tmp) / "b"), location, settings)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = measure(corpus, Embedder(cache_dir=Path(tmp) / "b"), location, settings)
        warm = time.perf_counter() - t0
        assert again["counts"] == first["counts"] and again["embeddings"]["computed"] == 0
        print(f"first measurement  : {cold:7.2f} s ({first['embeddings']['computed']} texts embedded, "
              "model load included)")
        print(f"cached re-run      : {warm:7.2f} s (0 texts embedded, same profile)")
        print(f"cached speed-up    : {cold / warm:.1f}x   (goal >= 20x)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from shared_data import cuad_clauses

    main()
