"""How Monte Carlo throughput grows with instances and with workflow size, per kernel, as ratios to the bare numpy
baseline of bench/mc_throughput.py measured in the same process.

    python bench/mc_scaling.py [--kernels numpy,fused] [--sizes 100000,1000000,10000000] [--steps 4,16,64]

One process (workers=1) throughout, so the figures are per core. Contract review at each size; then random
workflows (seeded: retrieves, decisions over earlier steps, a gate, acts, an audit) of about 4, 16 and 64 steps
at the middle size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sim.core.seeding import stream
from sim.runner import run
from sim.scenario.load import load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent
TYPES = ["topical_miss", "negation_flip", "role_swap", "numeric_swap", "stale"]


def random_workflow(n_steps: int, seed: int = 7) -> dict:
    """A valid workflow of about `n_steps` steps: a quarter retrieves, an eighth acts, a gate, an audit past 8."""
    rng = stream(seed, f"bench/random_workflow/{n_steps}", 0)

    def pick(items: list, k: int) -> list:
        return [str(x) for x in rng.choice(items, size=min(k, len(items)), replace=False)]

    n_ret, n_act = max(1, n_steps // 4), max(1, n_steps // 8)
    n_dec = max(1, n_steps - n_ret - n_act - 1 - (n_steps >= 8))
    retrievers = {"r0": {"kind": "injected", "rates": {t: float(rng.choice([0.01, 0.03, 0.05])) for t in TYPES[:3]}},
                  "r1": {"kind": "injected", "rates": {t: float(rng.choice([0.01, 0.03])) for t in TYPES[2:]}}}
    steps = [{"id": f"get{i}", "kind": "retrieve", "retriever": f"r{i % 2}"} for i in range(n_ret)]
    pool = [s["id"] for s in steps]
    for i in range(n_dec):
        steps.append({"id": f"dec{i}", "kind": "decide", "inputs": pick(pool, 2),
                      "base_error_rate": 0.02, "susceptibility": {"default": 0.6, TYPES[i % 5]: 0.9}})
        pool.append(f"dec{i}")
    steps.append({"id": "gate", "kind": "verify", "inputs": pool[-2:], "catch": {"default": 0.5},
                  "false_alarm": 0.02})
    acts = [f"act{i}" for i in range(n_act)]
    steps += [{"id": a, "kind": "act", "inputs": ["gate"] if i == 0 else pick(pool, 1)}
              for i, a in enumerate(acts)]
    used = {x for s in steps for x in s.get("inputs", [])}
    unused = [s["id"] for s in steps if s["kind"] != "act" and s["id"] not in used]
    if unused:
        steps.append({"id": "act_rest", "kind": "act", "inputs": unused})
        acts.append("act_rest")
    if n_steps >= 8:
        steps.append({"id": "audit", "kind": "verify", "inputs": acts[:2], "catch": {"default": 0.5}})
    costs = {a: {"failure_loss": 100.0, "detected_loss": 30.0, "escalation_cost": 5.0} for a in acts}
    return {"schema_version": 1, "name": f"random{n_steps}", "seed": seed, "difficulty": {"icc": 0.15},
            "retrievers": {k: v for k, v in retrievers.items() if k == "r0" or n_ret > 1}, "workflow": {"steps": steps}, "costs": costs}


def rate(scenario, n: int, kernel: str) -> float:
    """Instance-steps per second of a whole run (summary and tables; no instance rows, no pass^k)."""
    run(scenario, instances=min(n, 65_536), max_instance_rows=0, pass_k_sample=0, workers=1, kernel=kernel)
    t0 = time.perf_counter()
    run(scenario, instances=n, max_instance_rows=0, pass_k_sample=0, workers=1, kernel=kernel)
    return n * len(scenario.workflow.steps) / (time.perf_counter() - t0)


def main() -> None:
    from mc_throughput import bare_numpy  # bench-local module

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", default="numpy,fused")
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--steps", default="4,16,64")
    args = parser.parse_args()
    kernels = args.kernels.split(",")
    sizes = [int(x) for x in args.sizes.split(",")]
    review = load_scenario(ROOT / "scenarios" / "contract_review.yaml").model_copy(update={"variants": []})
    cases = [("contract_review", review, n) for n in sizes]
    cases += [("random workflow", scenario_from_dict(random_workflow(k)), sizes[len(sizes) // 2])
              for k in (int(x) for x in args.steps.split(","))]
    print(f"{'workflow':24} {'steps':>5} {'instances':>11} {'bare numpy':>11} "
          + " ".join(f"{k + ' M/s':>10} {'ratio':>6}" for k in kernels))
    for label, scenario, n in cases:
        steps = len(scenario.workflow.steps)
        base = bare_numpy(n, steps, 1)
        ours = [rate(scenario, n, k) for k in kernels]
        print(f"{label:24} {steps:5d} {n:11,d} {base / 1e6:11.1f} "
              + " ".join(f"{r / 1e6:10.1f} {r / base:6.3f}" for r in ours), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
