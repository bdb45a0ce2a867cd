"""Sobol analysis of contract_review over all its uncertain inputs (issue 13 goal: N >= 1,024 base draws in under
60 s on this machine): every injected retrieval rate a Beta(400 r, 400 (1 - r)) around its value, every failure
loss a PERT from half to twice its value, base and fine-tuned variants, Sobol indices of both expected losses
and of their difference. The same at icc 0 shows what the 24 difficulty levels cost. Wall-clock seconds with
CPU seconds in brackets (on a shared machine the CPU figure is the steadier one), and the time per evaluation
against one point-by-point evaluation (`Plan.with_parameters` + `headline`) measured in the same run.

    python bench/sobol_speed.py [N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

from sim.core.seeding import stream
from sim.engines.analytic import headline
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
        w0, c0 = time.perf_counter(), time.process_time()
        table = sobol_indices(variants, plans, n, scenario.seed)
        took, cpu = time.perf_counter() - w0, time.process_time() - c0
        evaluations = n * (d + 2) * len(plans)
        # One point at a time, as before batching: 32 points of the base plan with its rates moved.
        base = plans["base"]
        rng = stream(0, "bench/sobol_speed", 0)
        rates = [k for k in base.parameters if k.startswith("retrievers.") and base.parameters[k] > 0]
        w1, c1 = time.perf_counter(), time.process_time()
        for _ in range(32):
            headline(base.with_parameters({k: base.parameters[k] * rng.uniform(0.8, 1.2) for k in rates}))
        one, one_cpu = (time.perf_counter() - w1) / 32, (time.process_time() - c1) / 32
        print(f"contract_review, icc {scenario.difficulty.icc}: {d} uncertain inputs, N = {n:,}: {evaluations:,} "
              f"plan evaluations in {took:.1f} s [{cpu:.1f} s CPU] (goal < 60 s; {evaluations / took:,.0f} per "
              f"second); point by point would take {evaluations * one:,.0f} s [{evaluations * one_cpu:,.0f} s CPU]: "
              f"{evaluations * one / took:.1f}x wall, {evaluations * one_cpu / cpu:.1f}x CPU")
        top = table[table["output"] == "difference@finetuned_retriever"].nlargest(4, "ST")
        print(top.to_string(index=False))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
