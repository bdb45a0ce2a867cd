"""Timeline engine speed: a one-year horizon at 2,000 tickets a day (goal: under a minute), and its overhead
over a bare SimPy model of the same reviewer queue fed the same arrivals, in the same run (goal: <= 1.3x).

    python bench/timeline_speed.py [--days N] [--per-day N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import simpy

from sim.engines.timeline.replication import arrival_times, replication_seed, run_replication
from sim.model.plan import compile_plan
from sim.scenario.load import scenario_from_dict


def scenario(days: int, per_day: float) -> dict:
    return {
        "schema_version": 1, "name": "timeline bench", "seed": 11,
        "retrievers": {"kb": {"kind": "injected", "rates": {"topical_miss": 0.04, "negation_flip": 0.01}}},
        "workflow": {"steps": [
            {"id": "fetch", "kind": "retrieve", "retriever": "kb"},
            {"id": "classify", "kind": "decide", "inputs": ["fetch"], "base_error_rate": 0.03,
             "susceptibility": {"default": 0.6}},
            {"id": "review", "kind": "verify", "inputs": ["classify"], "catch": {"default": 0.5}},
            {"id": "route", "kind": "act", "inputs": ["review"]}]},
        "costs": {"route": {"failure_loss": 35}},
        "timeline": {"horizon_days": days, "replications": 1, "arrivals": {"per_day": per_day},
                     "reviewers": {"review": {"servers": 12, "minutes": 8}}},
    }


def bare_simpy(times: np.ndarray, servers: int, mean_days: float, seed: int) -> float:
    """The same queue, nothing else: arrivals into a Store, servers taking exponential service times."""
    rng = np.random.Generator(np.random.PCG64(seed))
    env = simpy.Environment()
    queue = simpy.Store(env)
    waits = []

    def source():
        for i, t in enumerate(times):
            yield env.timeout(t - env.now)
            queue.put((i, env.now))

    def server():
        while True:
            _, enq = yield queue.get()
            waits.append(env.now - enq)
            yield env.timeout(rng.exponential(mean_days))

    env.process(source())
    for _ in range(servers):
        env.process(server())
    t0 = time.perf_counter()
    env.run(until=float(times[-1]) + 365.0)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=float, default=2000)
    args = parser.parse_args()
    s = scenario_from_dict(scenario(args.days, args.per_day))
    times = arrival_times(s.timeline, replication_seed(s.seed, 0), 0)
    bare = min(bare_simpy(times, 12, 8 / 1440, 1) for _ in range(2))
    t0 = time.perf_counter()
    *_, stats, _record, _times = run_replication(compile_plan(s), s.timeline, 0)
    ours = time.perf_counter() - t0
    print(f"{len(times):,} instances over {args.days} days ({args.per_day:.0f} a day), 12 reviewers, 8 min each")
    print(f"bare SimPy queue         : {bare:6.2f} s")
    print(f"timeline replication     : {ours:6.2f} s (outcomes, queue, accounting; p_failure {stats['p_failure']:.4f})")
    print(f"overhead over bare SimPy : {ours / bare:.2f}x   (goal <= 1.3x)")
    print(f"one-year horizon         : {'under' if ours < 60 else 'OVER'} a minute (goal: under a minute)")


if __name__ == "__main__":
    main()
