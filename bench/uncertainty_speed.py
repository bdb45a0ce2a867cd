"""Evaluating one plan at a batch of parameter points (issue 13 goal: >= 100x): points per second of the batched
analytic engine (`sim.metrics.uncertainty.evaluate_points`: `Plan.at_points` builds all points at once, then one
walk per cache-sized slice) against today's analytic engine called point by point (`Plan.with_parameters` +
`headline`, and + the full `solve` with attribution), on contract_review with every retrieval rate, reasoning
rate and catch rate drawn (the base variant), in one run.

    python bench/uncertainty_speed.py [POINTS]

Columns: `build` is making each point's plan (which solves the difficulty levels of every drawn rate when
icc > 0), `walk` the analytic walk. Figures are wall-clock seconds with CPU seconds in brackets: on a shared
machine the CPU ratio is the steadier one. The same with icc = 0 shows what the level computation costs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sim.core.seeding import stream
from sim.engines.analytic import headline, headline_batch, solve
from sim.metrics.uncertainty import evaluate_points
from sim.model.plan import compile_plan
from sim.scenario.difficulty import _level_probabilities
from sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def timed(fn):
    """(result, wall seconds, CPU seconds)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


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
        _level_probabilities.cache_clear()  # every point is a new draw: nothing solved before
        plans, build, build_cpu = timed(lambda p=plan, v=values: [
            p.with_parameters({k: float(x[i]) for k, x in v.items()}) for i in range(points)])
        one, walk, walk_cpu = timed(lambda ps=plans: [headline(p) for p in ps])
        few = max(1, points // 8)
        _, full, full_cpu = timed(lambda ps=plans[:few]: [solve(p) for p in ps])
        full, full_cpu = full * points / few, full_cpu * points / few
        batch_plan, at_build, at_build_cpu = timed(lambda p=plan, v=values: p.at_points(v))
        _, batch_walk, batch_walk_cpu = timed(lambda bp=batch_plan: headline_batch(bp))
        ev, whole, whole_cpu = timed(lambda p=plan, v=values: evaluate_points(p, v))
        got = ev.values
        err = max(abs(got[m][i] - one[i][m]) / max(abs(one[i][m]), 1e-300) for i in range(points) for m in one[0])
        print(f"contract_review base, icc {icc}: {points} points, {len(paths)} drawn parameters")
        print(f"  point by point: build {build:.2f} s [{build_cpu:.2f}] + headline walk {walk:.2f} s [{walk_cpu:.2f}]"
              f" = {points / (build + walk):,.0f} points/s; with the full solve (attribution) "
              f"{points / (build + full):,.0f} points/s")
        print(f"  batched:        at_points {at_build:.2f} s [{at_build_cpu:.2f}] + one walk of all points "
              f"{batch_walk:.2f} s [{batch_walk_cpu:.2f}]; evaluate_points {whole:.2f} s [{whole_cpu:.2f}] = "
              f"{points / whole:,.0f} points/s")
        print(f"  ratio evaluate_points / point by point (headline): {(build + walk) / whole:.1f}x wall, "
              f"{(build_cpu + walk_cpu) / whole_cpu:.1f}x CPU (goal >= 100x); against the full solve "
              f"{(build + full) / whole:.1f}x wall, {(build_cpu + full_cpu) / whole_cpu:.1f}x CPU")
        print(f"  ratio of the parts: build {build_cpu / at_build_cpu:.1f}x CPU, walk {walk_cpu / batch_walk_cpu:.1f}x "
              f"CPU; largest relative difference from point by point {err:.1e}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
