"""One replication of the timeline: arrivals, desks and rework on SimPy; outcomes from the Monte Carlo kernel.

Outcomes are drawn in bulk by the Monte Carlo kernel (replication 0 uses the scenario's seed, so with unlimited
capacity it reproduces the Monte Carlo engine instance by instance). SimPy handles only time: arrivals, the
queues of verify steps staffed by reviewers, working hours, waits and bypasses, and rework tasks. A review that
is bypassed (the wait ran past `max_wait_hours`, or the queue was full) cannot catch anything: the instance takes
its outcome from the plan without that step's catches, drawn with the same random numbers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.core.errors import CascadeError
from sim.core.seeding import BLOCK_SIZE, stream, stream_key
from sim.engines.monte_carlo.kernel import Kernel
from sim.engines.timeline.accounting import account
from sim.engines.timeline.desks import DAY_HOURS, MINUTES_PER_DAY, Desk
from sim.model.plan import Plan
from sim.model.tokens import is_error
from sim.scenario.model import Timeline
from sim.trace.schema import BlockTrace


def arrival_times(tl: Timeline, seed: int, replication: int) -> np.ndarray:
    """Sorted arrival times in days: Poisson counts per day, uniform within the day."""
    rng = stream(seed, "timeline/arrivals", replication)
    counts = rng.poisson(tl.arrivals.daily_means(tl.horizon_days))
    times = np.repeat(np.arange(tl.horizon_days), counts) + rng.random(int(counts.sum()))
    return np.sort(times)


def replication_seed(seed: int, replication: int) -> int:
    """Replication 0 is the scenario's own seed; the others get independent seeds derived from it."""
    if replication == 0:
        return seed
    return int(np.random.SeedSequence(seed, spawn_key=(stream_key("replication"), replication)).generate_state(1)[0])


def simulate_all(kernel: Kernel, n: int) -> BlockTrace:
    """Outcomes of instances 0..n-1, block by block, as one trace."""
    parts = [kernel.simulate(b, 0, min(BLOCK_SIZE, n - b * BLOCK_SIZE)) for b in range(math.ceil(n / BLOCK_SIZE))]
    tokens = [None if parts[0].tokens[i] is None else np.concatenate([p.tokens[i] for p in parts])
              for i in range(len(parts[0].tokens))]
    level = None if parts[0].level is None else np.concatenate([p.level for p in parts])

    def joined(attr: str) -> dict:
        return {k: np.concatenate([getattr(p, attr)[k] for p in parts]) for k in getattr(parts[0], attr)}

    return BlockTrace(n, level, tokens, joined("masked"), joined("caught"), joined("detected"), joined("gate_caught"))


def mix(traces: list[BlockTrace], version: np.ndarray) -> BlockTrace:
    """Per instance, the trace of its version (`version[i]` indexes `traces`)."""
    first = traces[0]

    def pick(arrays: list[np.ndarray]) -> np.ndarray:
        out = arrays[0].copy()
        for v in range(1, len(arrays)):
            out = np.where(version == v, arrays[v], out)
        return out

    tokens = [None if first.tokens[i] is None else pick([t.tokens[i] for t in traces]) for i in range(len(first.tokens))]
    return BlockTrace(first.n, first.level, tokens,
                      {k: pick([t.masked[k] for t in traces]) for k in first.masked},
                      {k: pick([t.caught[k] for t in traces]) for k in first.caught},
                      {k: pick([t.detected[k] for t in traces]) for k in first.detected},
                      {k: pick([t.gate_caught[k] for t in traces]) for k in first.gate_caught})


@dataclass
class _Versions:
    """Outcomes of the plan with each subset of reviewed steps bypassed, computed when first needed."""

    plan: Plan
    human: list[str]
    n: int
    traces: dict[int, BlockTrace] = field(default_factory=dict)
    plans: dict[int, Plan] = field(default_factory=dict)

    def get(self, mask: int) -> BlockTrace:
        if mask not in self.traces:
            # A bypassed review catches nothing and raises no false alarm: the same plan without it.
            plan = self.plan.without_catch([sid for j, sid in enumerate(self.human) if mask >> j & 1])
            self.plans[mask] = plan
            self.traces[mask] = simulate_all(Kernel(plan), self.n)
        return self.traces[mask]


class _Record:
    """What happened when, per instance (arrays) and per event (lists)."""

    def __init__(self, n: int, human: list[str], versions: _Versions, tl: Timeline, env, desks,
                 act_pos: dict[str, int]):
        self.n, self.versions, self.env, self.desks = n, versions, env, desks
        self.bit = {sid: 1 << j for j, sid in enumerate(human)}
        self.completed = np.full(n, np.nan)
        self.mask = np.zeros(n, dtype=np.int64)
        self.waits: dict[str, list[float]] = {sid: [] for sid in human}
        self.queue_spans: dict[str, list[tuple[float, float]]] = {sid: [] for sid in human}
        self.bypassed = {sid: 0 for sid in human}
        self.rework = tl.rework
        self.act_pos = act_pos
        self.rework_times: list[tuple[float, float]] = []  # (created, cost)

    def left(self, sid: str, item: list, when: float, bypassed: bool) -> None:
        if item[0] >= 0 and bypassed:  # a served instance's wait was recorded when its review started
            self.bypassed[sid] += 1
            self.queue_spans[sid].append((item[1], when))

    def started(self, sid: str, item: list, now: float) -> None:
        if item[0] >= 0:
            self.queue_spans[sid].append((item[1], now))
            self.waits[sid].append(now - item[1])
            item[1] = math.nan  # served: its queue span is recorded

    def complete(self, item: list, when: float) -> None:
        i = item[0]
        self.completed[i] = when
        self.mask[i] = item[2]
        if not self.rework:
            return
        trace = self.versions.get(item[2])
        for act, rw in self.rework.items():
            if is_error(trace.tokens[self.act_pos[act]][i]):
                self.rework_times.append((when, rw.cost))
                self.env.process(self._rework(rw, when))

    def _rework(self, rw, when: float):
        yield self.env.timeout(rw.delay_hours / DAY_HOURS)
        self.desks[rw.step].put([-1, self.env.now, 0, when, rw.minutes / MINUTES_PER_DAY])


def run_replication(plan: Plan, tl: Timeline, replication: int):
    """One replication of a variant's plan: (mixed trace of its instances, plan, daily table, stats, record,
    arrival times)."""
    seed = replication_seed(plan.seed, replication)
    times = arrival_times(tl, seed, replication)
    n = len(times)
    if n == 0:
        raise CascadeError("timeline: no instance arrives within the horizon; raise arrivals.per_day or horizon_days")
    order = plan.steps
    human = [s.id for s in order if s.id in tl.reviewers]
    versions = _Versions(dataclasses.replace(plan, seed=seed), human, n)
    env = simpy.Environment()
    desks: dict[str, Desk] = {}
    record = _Record(n, human, versions, tl, env, desks, {s.id: s.pos for s in order if s.kind == "act"})
    service_rng = stream(seed, "timeline/service", replication)
    for sid in human:
        desks[sid] = Desk(env, sid, tl.reviewers[sid], service_rng, record)
    for a, b in zip(human, human[1:], strict=False):
        desks[a].next = desks[b]
    for d in desks.values():
        d.horizon = tl.horizon_days
    first = desks[human[0]] if human else None

    def source():
        for i, t in enumerate(times):
            if t > env.now:
                yield env.timeout(t - env.now)
            if first is None:
                record.complete([i, t, 0, t], t)
            else:
                first.put([i, t, 0, t])

    env.process(source())
    env.run(until=tl.horizon_days + 365.0)  # a year past the horizon lets the backlog drain
    for d in desks.values():
        d._drop_expired(env.now)
    done = ~np.isnan(record.completed)
    masks = np.unique(record.mask[done])
    mixed = mix([versions.get(int(m)) for m in masks], np.searchsorted(masks, record.mask))
    plan = versions.plans[0] if 0 in versions.plans else versions.plans[int(masks[0])]
    daily, stats = account(tl, replication, seed, times, record, mixed, plan, desks, human)
    return mixed, plan, daily, stats, record, times
