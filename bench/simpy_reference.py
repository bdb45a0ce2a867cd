"""A SimPy process-per-instance implementation of the cascade model, the way one would write it naively.

Used by bench/mc_throughput.py as the comparison point for the vectorised engine. Each instance is a SimPy
process that walks the steps one event at a time, with scalar Python logic. Its uniforms are drawn up front in
bulk (which flatters it: the draws are not timed as per-instance calls).
"""

from __future__ import annotations

import numpy as np
import simpy

from sim.model.plan import Plan
from sim.model.tokens import CAUGHT, ERROR, FLAGGED, OK


def simulate(plan: Plan, n: int, seed: int) -> float:
    """Run n instances; return the fraction with at least one action failure."""
    rng = np.random.Generator(np.random.PCG64(seed))
    draws_per_instance = 1 + sum(1 + len(s.inputs) for s in plan.steps)
    u_all = rng.random((n, draws_per_instance)).tolist()
    types = plan.code_type().tolist()
    rank = {OK: 0, FLAGGED: 2, CAUGHT: 3}
    env = simpy.Environment()
    failed = [0]
    steps = plan.steps
    cum = {s.pos: np.cumsum(s.rates, axis=1).tolist() for s in steps if s.kind == "retrieve"}
    live = {s.pos: [t for t in range(len(plan.types)) if (s.pos, t) in plan.root_index]
            for s in steps if s.kind == "retrieve"}
    edges = plan.levels.edges[1:-1].tolist()

    def merge(a: int, b: int) -> int:
        return b if rank.get(b, 1) > rank.get(a, 1) else a

    def instance(u: list[float]):
        k = 0
        level = sum(1 for e in edges if u[0] >= e)
        k += 1
        tok: dict[int, int] = {}
        detected: set[int] = set()
        for s in steps:
            yield env.timeout(0)
            acc = OK
            for src in s.inputs:
                x = tok.get(src, OK)
                t = types[x]
                v = u[k]
                k += 1
                if s.kind == "decide" and t >= 0 and v >= s.susceptibility[t]:
                    x = OK
                elif s.kind == "verify" and t >= 0 and v < s.catch[t]:
                    if s.audit:
                        detected.add(src)
                        continue
                    x = CAUGHT
                acc = merge(acc, x)
            v = u[k]
            k += 1
            if s.kind == "retrieve" and acc == OK:
                row = cum[s.pos][level]
                for t in live[s.pos]:
                    if v < row[t]:
                        acc = ERROR + plan.root_index[(s.pos, t)]
                        break
            elif s.kind == "decide" and acc == OK and (s.pos, len(plan.types) - 1) in plan.root_index:
                if v < s.base_error[level]:
                    acc = ERROR + plan.root_index[(s.pos, len(plan.types) - 1)]
            elif s.kind == "verify" and not s.audit and acc == OK and v < s.false_alarm:
                acc = FLAGGED
            tok[s.pos] = acc
        if any(tok[s.pos] >= ERROR for s in steps if s.kind == "act"):
            failed[0] += 1

    for i in range(n):
        env.process(instance(u_all[i]))
    env.run()
    return failed[0] / n
