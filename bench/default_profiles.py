"""The default model's measured error profiles: the built-in contract corpus and CUAD clauses.

    python bench/default_profiles.py [--out DIR] [--clauses N] [--probes N]

Writes one profile YAML per corpus to DIR and prints the rate per error type, the twin-confusion rate and
broad retrieval for each: the first measured numbers the scenarios can use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.retrieval.corpora.builtin import contract_corpus
from sim.retrieval.corpus import Corpus, Passage
from sim.retrieval.embedding import Embedder, default_cache_dir
from sim.retrieval.measure import ProbeSettings, measure
from sim.retrieval.profile import write_profile
from sim.retrieval.store import StoreLocation


def main() -> None:
    from shared_data import cuad_clauses

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("profiles"))
    parser.add_argument("--clauses", type=int, default=1500)
    parser.add_argument("--probes", type=int, default=300)
    args = parser.parse_args()
    cuad = Corpus("cuad", tuple(Passage(f"cuad-{i}", text, topic) for i, (topic, text)
                                in enumerate(cuad_clauses(args.clauses))))
    embedder = Embedder()
    location = StoreLocation(None, default_cache_dir() / "chroma")
    for corpus in (contract_corpus(), cuad):
        profile = measure(corpus, embedder, location, ProbeSettings(probes=args.probes))
        path = write_profile(profile, args.out / f"{corpus.name}-{embedder.name}.yaml")
        b = profile["broad_retrieval"]
        print(f"\n{corpus.name}: {len(corpus.passages)} passages, {profile['counts']['queries']} probe queries "
              f"({profile['corpus']['queries']}); profile: {path}")
        print(f"  {'error type':14} {'rate/query':>10} {'95% CI':>17} {'twin beats gold':>16}")
        for t, rate in profile["rates"].items():
            lo, hi = profile["rates_ci95"][t]
            conf = profile["confusion"].get(t, {})
            beats = f"{conf['rate']:.1%} of {conf['queries_with_twin']}" if conf.get("rate") is not None else ""
            print(f"  {t:14} {rate:10.1%} [{lo:6.1%}, {hi:6.1%}] {beats:>16}")
        print(f"  broad retrieval: nDCG@10 {b['ndcg_at_10']:.3f} [{b['ndcg_at_10_ci95'][0]:.3f}, "
              f"{b['ndcg_at_10_ci95'][1]:.3f}], recall@10 {b['recall_at_10']:.1%}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
