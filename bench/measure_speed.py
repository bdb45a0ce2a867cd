"""Speed of the measure pipeline, as ratios to baselines measured in the same run.

    python bench/measure_speed.py [--texts N] [--retrievers-only]

1. Embedding throughput of the pipeline (hashing, cache look-up, batching, cache write) against bare
   `SentenceTransformer.encode` of the same texts (goal: >= 0.9x).
2. A cached re-run of the whole measurement (`cascade measure` on the same corpus) against the first run
   (goal: >= 20x).
3. Lexical (BM25) and hybrid measurements against the dense one on the same clauses: time ratios, first runs
   (empty embedding cache each) and cached re-runs.
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
from sim.retrieval.retrievers import RetrieverSpec
from sim.retrieval.store import StoreLocation


def pipeline_and_cache(texts: list[str], corpus: Corpus, location: StoreLocation, settings: ProbeSettings,
                       tmp: Path) -> None:
    """Parts 1 and 2: embedding throughput against bare encode, and a cached re-run against the first run."""
    embedder = Embedder(cache_dir=tmp / "a")
    model = embedder.model  # loaded once, outside both timings
    model.encode(texts[:64], batch_size=64, normalize_embeddings=True)  # warm-up
    t0 = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    bare = time.perf_counter() - t0
    t0 = time.perf_counter()
    embedder.embed(texts)
    pipeline = time.perf_counter() - t0
    print(f"bare encode        : {len(texts) / bare:7.1f} texts/s")
    print(f"measure pipeline   : {len(texts) / pipeline:7.1f} texts/s")
    print(f"throughput ratio   : {bare / pipeline:.3f}   (goal >= 0.9)")

    t0 = time.perf_counter()
    first = measure(corpus, Embedder(cache_dir=tmp / "b"), location, settings)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = measure(corpus, Embedder(cache_dir=tmp / "b"), location, settings)
    warm = time.perf_counter() - t0
    assert again["counts"] == first["counts"] and again["embeddings"]["computed"] == 0
    print(f"first measurement  : {cold:7.2f} s ({first['embeddings']['computed']} texts embedded, "
          "model load included)")
    print(f"cached re-run      : {warm:7.2f} s (0 texts embedded, same profile)")
    print(f"cached speed-up    : {cold / warm:.1f}x   (goal >= 20x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1500)
    parser.add_argument("--retrievers-only", action="store_true", help="part 3 only")
    args = parser.parse_args()
    texts = [clause for _, clause in cuad_clauses(args.texts)]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Corpus("cuad", tuple(Passage(f"c{i}", t) for i, t in enumerate(texts)))
        location = StoreLocation(None, Path(tmp) / "chroma")
        settings = ProbeSettings(probes=300)
        print(f"{len(texts)} CUAD clauses")
        if not args.retrievers_only:
            pipeline_and_cache(texts, corpus, location, settings, Path(tmp))

        times: dict[str, list[float]] = {}
        for kind in ("dense", "lexical", "hybrid"):
            spec = RetrieverSpec(kind)
            for _ in range(2):  # a first run with an empty cache, then a cached re-run
                embedder = Embedder(cache_dir=Path(tmp) / f"r-{kind}") if spec.needs_embeddings else None
                t0 = time.perf_counter()
                measure(corpus, embedder, location, settings, spec)
                times.setdefault(kind, []).append(time.perf_counter() - t0)
        for kind in ("lexical", "hybrid"):
            print(f"{kind:7} vs dense     : first run {times[kind][0]:6.2f} s / {times['dense'][0]:6.2f} s = "
                  f"{times[kind][0] / times['dense'][0]:.3f}x;  cached {times[kind][1]:6.2f} s / "
                  f"{times['dense'][1]:6.2f} s = {times[kind][1] / times['dense'][1]:.3f}x")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from shared_data import cuad_clauses

    main()
