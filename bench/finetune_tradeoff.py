"""The fine-tuning trade-off, measured: base vs tuned vs control on the built-in contract corpus (held-out
clause types) and on CUAD clauses, and the money: expected loss per 1,000 contracts in
scenarios/finetune_tradeoff.yaml for each model.

    python bench/finetune_tradeoff.py [--out runs/finetune] [--clauses N]

Trains with `cascade finetune` defaults first unless OUT already holds the models (a re-run reuses them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from sim.retrieval.corpus import Corpus, Passage
from sim.retrieval.embedding import Embedder, default_cache_dir
from sim.retrieval.measure import ProbeSettings, measure
from sim.retrieval.store import StoreLocation
from sim.runner import run
from sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def row(label: str, values: list[str]) -> str:
    return f"  {label:34}" + "".join(f"{v:>16}" for v in values)


def main() -> None:
    from shared_data import cuad_clauses

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "finetune")
    parser.add_argument("--clauses", type=int, default=1500)
    args = parser.parse_args()
    if not (args.out / "comparison.yaml").is_file():
        from sim.retrieval.corpora.builtin import contract_corpus
        from sim.retrieval.finetune import finetune

        finetune(contract_corpus(), args.out)
    comparison = yaml.safe_load((args.out / "comparison.yaml").read_text())
    names = list(comparison["models"])
    print(f"built-in contracts, held-out clause types {comparison['held_out_topics']} "
          f"({comparison['training_triplets']} training triplets):")
    print(row("", names))
    for t in comparison["models"]["base"]["twin_outranks_gold"]:
        print(row(f"{t}: twin outranks gold", [f"{comparison['models'][n]['twin_outranks_gold'][t]['rate']:.1%}"
                                               for n in names]))
    print(row("nDCG@10", [f"{comparison['models'][n]['ndcg_at_10']:.3f}" for n in names]))
    print(row("recall@10", [f"{comparison['models'][n]['recall_at_10']:.1%}" for n in names]))
    for name, change in comparison["changes_vs_base"].items():
        print(f"  {name}: {change['statement']}")

    cuad = Corpus("cuad", tuple(Passage(f"cuad-{i}", text, topic) for i, (topic, text)
                                in enumerate(cuad_clauses(args.clauses))))
    cache = default_cache_dir()
    paths = {"base": None, "tuned": str(args.out / "tuned"), "control": str(args.out / "control")}
    profiles = {n: measure(cuad, Embedder(p, cache_dir=cache), StoreLocation(None, cache / "chroma"),
                           ProbeSettings(probes=300)) for n, p in paths.items() if p is None or Path(p).is_dir()}
    print(f"\nCUAD, {len(cuad.passages)} clauses, {profiles['base']['counts']['queries']} self-queries:")
    print(row("", list(profiles)))
    for t in ("negation_flip", "role_swap", "modifier_swap", "numeric_swap"):
        print(row(f"{t}: twin outranks gold", [f"{p['confusion'][t]['rate']:.1%}" for p in profiles.values()]))
        print(row(f"{t}: rate per query", [f"{p['rates'][t]:.1%}" for p in profiles.values()]))
    print(row("nDCG@10", [f"{p['broad_retrieval']['ndcg_at_10']:.3f}" for p in profiles.values()]))
    print(row("recall@10", [f"{p['broad_retrieval']['recall_at_10']:.1%}" for p in profiles.values()]))

    scenario = load_scenario(ROOT / "scenarios" / "finetune_tradeoff.yaml")
    s = run(scenario, engine="analytic").summary
    blocks = {"base": s, **s.get("variant_results", {})}
    print("\nscenarios/finetune_tradeoff.yaml (contract review, analytic):")
    for name, b in blocks.items():
        print(f"  {name:10} expected loss per 1,000 contracts: {1000 * b['expected_loss_per_instance']:>14,.0f} "
              f"{s['currency']}   P(wrong action) {b['p_failure']:.1%}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
