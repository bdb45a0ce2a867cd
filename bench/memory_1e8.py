"""Peak memory of a Monte Carlo run of 10^8 instances (goal: under 1 GiB), against an import-only baseline.

    python bench/memory_1e8.py [--instances N]

Each measurement runs in a fresh child process; peak resident memory (ru_maxrss) is read when it exits.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
from sim.scenario.load import load_scenario
from sim.runner import run
s = load_scenario(sys.argv[1]).model_copy(update={{"variants": []}})
t = time.perf_counter()
summary = run(s, instances={n}, pass_k_sample=20_000).summary if {n} else None
print(json.dumps({{"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "seconds": time.perf_counter() - t,
                  "p_failure": summary and summary["p_failure"]}}))
"""


def measure(n: int) -> dict:
    scenario = str(ROOT / "scenarios" / "contract_review.yaml")
    out = subprocess.run([sys.executable, "-c", CHILD.format(n=n), scenario], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000_000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    base = measure(0)
    big = measure(args.instances)
    mib = big["peak_kib"] / 1024
    print(f"contract_review, {args.instances:,} instances (base variant), default chunk size")
    print(f"import-only baseline peak : {base['peak_kib'] / 1024:8.1f} MiB")
    print(f"run peak                  : {mib:8.1f} MiB  ({mib / 1024:.3f} GiB; goal < 1 GiB)")
    print(f"ratio run / baseline      : {big['peak_kib'] / base['peak_kib']:.2f}")
    print(f"run time                  : {big['seconds']:.1f} s, p_failure {big['p_failure']:.6f}")
    print(f"(bench wall time {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
