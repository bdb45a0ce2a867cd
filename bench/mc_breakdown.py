"""Where a Monte Carlo block's time goes (contract review, one seeding block of 65,536 instances, best of 9):

    python bench/mc_breakdown.py

drawing the streams, each kernel's whole `simulate` (the fused one's: draws, compiled walk, trace), and the tally
that reads its trace (`instance_outcomes` and `Tally.add`; the fused kernel's compiled tally in their place), next
to the bare numpy baseline of bench/mc_throughput.py on the same block (as a share of it, so the figures hold on a
busier or quieter machine).
"""

from __future__ import annotations

import timeit
from pathlib import Path

from sim.core.seeding import BLOCK_SIZE
from sim.engines.monte_carlo.fused import FusedKernel
from sim.engines.monte_carlo.kernel import Kernel
from sim.model.plan import compile_plan
from sim.scenario.load import load_scenario
from sim.trace.schema import instance_outcomes
from sim.trace.tally import Tally

ROOT = Path(__file__).resolve().parent.parent


def best(fn, repeat: int = 9) -> float:
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    from mc_throughput import bare_numpy  # bench-local module

    plan = compile_plan(load_scenario(ROOT / "scenarios" / "contract_review.yaml"))
    fused, numpy = FusedKernel(plan), Kernel(plan)
    n, steps = BLOCK_SIZE, len(plan.steps)
    fused.simulate(0, 0, 1000)  # compile or load
    trace = fused.simulate(1, 0, n)
    out = instance_outcomes(plan, trace)
    base = n * steps / bare_numpy(n, steps, 1)
    parts = {
        "bare numpy baseline (one uniform + threshold per instance-step)": base,
        f"draw the fused kernel's {len(fused.names)} streams and the difficulty's": best(
            lambda: fused.draws(1, n, 0)),
        "fused kernel: simulate (draws + compiled walk + trace)": best(lambda: fused.simulate(1, 0, n)),
        "numpy kernel: simulate": best(lambda: numpy.simulate(1, 0, n)),
        "tally: instance_outcomes": best(lambda: instance_outcomes(plan, trace)),
        "tally: Tally.add": best(lambda: Tally(plan).add(trace, out)),
        "fused kernel: compiled tally (add_block, instead of the two above)": best(
            lambda: fused.add_block(Tally(plan), trace, None)),
    }
    print(f"contract_review: {steps} steps, one block of {n:,} instances (ms; x bare numpy baseline)")
    for label, seconds in parts.items():
        print(f"  {label:66} {seconds * 1e3:7.2f} ms  {seconds / base:5.2f}x")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    main()
