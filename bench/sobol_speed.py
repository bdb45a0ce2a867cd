"""Sobol analysis of contract_review over all its uncertain inputs (issue 13 goal: N >= 1,024 base draws in under
60 s on this machine): every injected retrieval rate a Beta(400 r, 400 (1 - r)) around its value, every failure
loss a PERT from half to twice its value, base and fine-tuned variants, Sobol indices of both expected losses
and of their difference. The same at icc 0 shows what the 24 difficulty levels cost.

    python bench/sobol_speed.py [N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

from sim.metrics.sobol import sobol_indices
from sim.metrics.uncertainty import uncertain_inputs
from sim.model.plan import compile_plan
from sim.scenario.load import resolve_variants, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent


def uncertain_contract_review(icc: float | None = None):
    raw = yaml.safe_load((ROOT / "scenarios" / "contract_review.yaml").read_text())
    for r in raw["retrievers"].values():
        r["rates"] = {t: {"beta": [400 * v, 400 * (1 - v)]} if v > 0 else v for t, v in r["rates"].items()}
    for cost in raw["costs"].values():
        x = cost["failure_loss"]
        cost["failure_loss"] = {"pert": [x / 2, x, 2 * x]}
    if icc is not None:
        raw["difficulty"]["icc"] = icc
    return scenario_from_dict(raw, base_dir=ROOT / "scenarios")


def main(n: int) -> None:
    for icc in (None, 0.0):
        scenario = uncertain_contract_review(icc)
        variants = resolve_variants(scenario)
        plans = {k: compile_plan(s, k) for k, s in variants.items()}
        d = len(uncertain_inputs(variants))
        t0 = time.perf_counter()
        table = sobol_indices(variants, plans, n, scenario.seed)
        took = time.perf_counter() - t0
        evaluations = n * (d + 2) * len(plans)
        print(f"contract_review, icc {scenario.difficulty.icc}: {d} uncertain inputs, N = {n:,}: {evaluations:,} "
              f"plan evaluations in {took:.1f} s ({evaluations / took:,.0f} per second)")
        top = table[table["output"] == "difference@finetuned_retriever"].nlargest(4, "ST")
        print(top.to_string(index=False))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
