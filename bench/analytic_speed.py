"""Time of the exact (analytic) engine per built-in scenario (goal: contract review under 30 ms a point), against
the Monte Carlo engine running 100,000 instances of the same scenario in the same process.

    python bench/analytic_speed.py
"""

from __future__ import annotations

import timeit
from pathlib import Path

from sim.engines.analytic import solve
from sim.model.plan import compile_plan
from sim.runner import run
from sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def best_of(fn, repeat: int = 5) -> float:
    """The best of `repeat` timed calls (noise only adds time)."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    print(f"{'scenario':18} {'variant':22} {'levels':>6} {'analytic ms':>12} {'MC 100k ms':>11} {'ratio':>7}")
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        scenario = load_scenario(path)
        base_only = scenario.model_copy(update={"variants": []})
        mc = best_of(lambda s=base_only: run(s, instances=100_000, max_instance_rows=0, pass_k_sample=0), 2)
        plan = compile_plan(scenario)
        t = best_of(lambda p=plan: solve(p))
        print(f"{path.stem:18} {'base':22} {plan.levels.count:6d} {1e3 * t:12.1f} {1e3 * mc:11.1f} {t / mc:7.3f}")
        whole = best_of(lambda s=scenario: run(s, engine="analytic"), 3)
        print(f"{path.stem:18} {'all variants, run()':22} {'':6} {1e3 * whole:12.1f}")


if __name__ == "__main__":
    main()
