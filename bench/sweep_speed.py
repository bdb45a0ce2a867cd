"""Sweeps on Dask (issue 14), ratios measured in one run on this machine:

1. Speed-up of a timeline study (contract review, 40 points over the base retriever's role-swap rate, a
   90-day horizon with 2 replications per point) on a LocalCluster of 2 worker processes vs 1. The cluster is
   started before the clock (its start-up, about 2-4 s, is printed apart).
2. Overhead per point of the sweep machinery for cheap analytic points (contract review, 200 points over two
   rates) against `sim.run(scenario_at_point, engine="analytic")` in a loop over scenarios built beforehand:
   sweep seconds per point / loop seconds per point (below 1: faster than the loop; the analytic points are
   batched into tasks of 64, one walk each).

    python bench/sweep_speed.py [TIMELINE_POINTS] [ANALYTIC_POINTS]

The machine has 2 cores shared with other work: the load average is printed before and after.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from distributed import Client, LocalCluster, get_task_stream

import sim
from sim.scenario.load import load_scenario
from sim.scenario.model import Sweep
from sim.sweeps.points import expand
from sim.sweeps.study import point_scenario

ROOT = Path(__file__).resolve().parent.parent


def _study(sweep: dict, timeline_days: int | None = None):
    base = load_scenario(ROOT / "scenarios" / "contract_review.yaml")
    update = {"sweep": Sweep.model_validate(sweep)}
    if timeline_days:
        update["timeline"] = base.timeline.model_copy(update={"horizon_days": timeline_days, "replications": 2})
    return base.model_copy(update=update)


def timed_sweep(scenario, workers: int) -> tuple[float, float]:
    """Seconds of the study on a fresh LocalCluster of `workers` processes, and of the cluster's start; prints
    what Dask's task stream says: tasks per worker and the tasks' own seconds (summed), so a loaded machine
    (tasks slower, not fewer at once) can be told from a study that does not spread."""
    t0 = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(workers)
        started = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as out, get_task_stream(client) as stream:
            t1 = time.perf_counter()
            cpu0 = time.process_time()
            table = sim.sweep(scenario, client=client, out=Path(out) / "s")
            seconds = time.perf_counter() - t1
            client_cpu = time.process_time() - cpu0
    assert (table["status"] == "ok").all()
    per_worker = Counter(t["worker"] for t in stream.data)
    busy = sum(s["stop"] - s["start"] for t in stream.data for s in t["startstops"] if s["action"] == "compute")
    print(f"  {workers} worker(s): {seconds:.1f} s wall, tasks per worker {sorted(per_worker.values())}, task compute "
          f"{busy:.1f} s summed ({busy / seconds:.2f} workers busy on average), client CPU {client_cpu:.1f} s")
    return seconds, started


def main(timeline_points: int, analytic_points: int) -> None:
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    timeline = _study({"parameters": {"retrievers.contract.rates.role_swap": {"grid": [0, 0.05, timeline_points]}},
                       "engines": ["timeline"]}, timeline_days=90)
    one, start1 = timed_sweep(timeline, 1)
    two, start2 = timed_sweep(timeline, 2)
    print(f"timeline study, {timeline_points} points x 2 variants: 1 worker {one:.1f} s, 2 workers {two:.1f} s "
          f"-> speed-up {one / two:.2f}x (goal >= 1.7x); cluster start-up {start1:.1f} s / {start2:.1f} s")

    side = int(analytic_points ** 0.5)
    analytic = _study({"parameters": {"retrievers.contract.rates.role_swap": {"grid": [0, 0.05, side]},
                                      "workflow.steps.legal_review.catch.default": {"grid": [0.2, 0.9, side]}}})
    n = side * side
    sweep_seconds, _ = timed_sweep(analytic, 1)
    scenarios = [point_scenario(analytic, p) for p in expand(analytic.sweep, analytic.seed)]
    t0 = time.perf_counter()
    for s in scenarios:
        sim.run(s, engine="analytic")
    loop = time.perf_counter() - t0
    print(f"analytic study, {n} points x 2 variants: sweep {1000 * sweep_seconds / n:.2f} ms a point, sim.run loop "
          f"{1000 * loop / n:.2f} ms a point -> overhead ratio {sweep_seconds / loop:.2f}x (goal <= 1.2x)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40, int(sys.argv[2]) if len(sys.argv) > 2 else 200)
