"""Evaluating one plan at a batch of parameter points (issue 13): points per second of the batched analytic walk
(`sim.metrics.uncertainty.evaluate_points`) against today's analytic engine called point by point, on
contract_review with every retrieval rate, reasoning rate and catch rate drawn (the base variant), in one run.

    python bench/uncertainty_speed.py [POINTS]

Columns: `build` is the time to make each point's plan (`Plan.with_parameters`, which solves the difficulty
levels of every drawn rate when icc > 0), `walk` the analytic walk alone. The same with icc = 0 shows what the
level computation costs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from sim.core.seeding import stream
from sim.engines.analytic import headline, headline_batch, solve
from sim.metrics.uncertainty import evaluate_points
from sim.model.plan import compile_plan, stack
from sim.scenario.difficulty import _level_probabilities
from sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(points: int) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "contract_review.yaml")
    rng = stream(0, "bench/uncertainty_speed", 0)
    for icc in (scenario.difficulty.icc, 0.0):
        s = scenario.model_copy(update={"difficulty": scenario.difficulty.model_copy(update={"icc": icc}),
                                        "variants": []})
        plan = compile_plan(s)
        paths = [k for k in plan.parameters if k.startswith("retrievers.") or k.endswith(".base_error_rate")
                 or ".catch." in k]
        values = {k: plan.parameters[k] * rng.uniform(0.6, 1.0, points) for k in paths}
        _level_probabilities.cache_clear()
        plans, build = timed(lambda p=plan, v=values: [p.with_parameters({k: float(x[i]) for k, x in v.items()})
                                                      for i in range(points)])
        one, walk_one = timed(lambda ps=plans: [headline(p) for p in ps])
        few = max(1, points // 8)
        _, solve_one = timed(lambda ps=plans[:few]: [solve(p) for p in ps])
        solve_one *= points / few
        batch, walk_batch = timed(lambda ps=plans: headline_batch(stack(ps)))
        _level_probabilities.cache_clear()  # evaluate_points builds its plans afresh, as for new draws
        ev, whole = timed(lambda p=plan, v=values: evaluate_points(p, v))
        err = max(abs(batch[m][i] - one[i][m]) / max(abs(one[i][m]), 1e-300) for i in range(points) for m in one[0])
        assert np.allclose(ev.values["expected_loss_per_instance"], batch["expected_loss_per_instance"], rtol=1e-12)
        print(f"contract_review base, icc {icc}: {points} points, {len(paths)} drawn parameters")
        print(f"  point by point: build {build:.2f} s + headline walk {walk_one:.2f} s "
              f"({points / (build + walk_one):,.0f} points/s); with full solve (attribution) "
              f"{points / (build + solve_one):,.0f} points/s")
        print(f"  batched:        build {build:.2f} s + batched walk {walk_batch:.2f} s; evaluate_points "
              f"{whole:.2f} s ({points / whole:,.0f} points/s)")
        print(f"  ratio (evaluate_points vs headline point by point): {(build + walk_one) / whole:.1f}x; walk alone "
              f"{walk_one / walk_batch:.1f}x; largest relative difference {err:.1e}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
