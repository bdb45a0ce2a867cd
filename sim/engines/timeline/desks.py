"""The timeline engine: cascades over calendar time, with SimPy for queues, reviewers and working hours.

Outcomes are drawn in bulk by the Monte Carlo kernel (replication 0 uses the scenario's seed, so with unlimited
capacity it reproduces the Monte Carlo engine instance by instance). SimPy handles only time: arrivals, the
queues of verify steps staffed by reviewers, working hours, waits and bypasses, and rework tasks. A review that
is bypassed (the wait ran past `max_wait_hours`, or the queue was full) cannot catch anything: the instance takes
its outcome from a version of the workflow where that step catches nothing, drawn with the same random numbers.
Losses are booked on the day they are known: at completion (escalations, audit-detected failures, SLA breaches),
when a silent failure surfaces (after an exponential delay, grown by `growth_per_day`), or when rework is created.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import simpy

from sim.core.errors import CascadeError
from sim.core.seeding import BLOCK_SIZE, stream, stream_key
from sim.core.yaml_source import SourceMap
from sim.engines.monte_carlo import Kernel
from sim.model.plan import CAUGHT, ERROR, FLAGGED, Plan, compile_plan
from sim.scenario.load import apply_set, base_dict, scenario_from_dict
from sim.scenario.model import Reviewers, Scenario, Timeline
from sim.trace.schema import BlockTrace

DAY_HOURS = 24.0
MINUTES_PER_DAY = 1440.0


def arrival_times(tl: Timeline, seed: int, replication: int) -> np.ndarray:
    """Sorted arrival times in days: Poisson counts per day, uniform within the day."""
    rng = stream(seed, "timeline/arrivals", replication)
    days = np.arange(tl.horizon_days)
    mean = tl.arrivals.per_day * np.array(tl.arrivals.weekly)[days % 7]
    for b in tl.arrivals.bursts:
        mean[b.start_day:b.start_day + b.days] *= b.factor
    counts = rng.poisson(mean)
    times = np.repeat(days, counts) + rng.random(int(counts.sum()))
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

    def joined(attr: str) -> dict[int, np.ndarray]:
        return {k: np.concatenate([getattr(p, attr)[k] for p in parts]) for k in getattr(parts[0], attr)}

    return BlockTrace(n, level, tokens, joined("masked"), joined("caught"), joined("detected"))


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
                      {k: pick([t.detected[k] for t in traces]) for k in first.detected})


@dataclass
class _Versions:
    """Outcomes of the workflow with each subset of reviewed steps bypassed, computed when first needed."""

    scenario: Scenario
    seed: int
    human: list[str]
    n: int
    traces: dict[int, BlockTrace] = field(default_factory=dict)
    plans: dict[int, Plan] = field(default_factory=dict)

    def get(self, mask: int) -> BlockTrace:
        if mask not in self.traces:
            data = base_dict(self.scenario)
            data["seed"] = self.seed
            data.pop("timeline", None)
            off = {}
            for j, sid in enumerate(self.human):
                if mask >> j & 1:
                    off[f"workflow.steps.{sid}.catch"] = {"default": 0.0}
                    off[f"workflow.steps.{sid}.false_alarm"] = 0.0
            plan = compile_plan(scenario_from_dict(apply_set(data, off, (), SourceMap()) if off else data))
            self.plans[mask] = plan
            self.traces[mask] = simulate_all(Kernel(plan), self.n)
        return self.traces[mask]


class _Desk:
    """A verify step staffed by reviewers: a FIFO queue, servers, working hours, bypasses."""

    def __init__(self, env: simpy.Environment, sid: str, cfg: Reviewers, rng: np.random.Generator, record):
        self.env, self.sid, self.cfg, self.rng, self.record = env, sid, cfg, rng, record
        self.queue = simpy.Store(env)
        self.max_wait = cfg.max_wait_hours / DAY_HOURS if cfg.max_wait_hours else math.inf
        self.busy_days = 0.0
        self.horizon = math.inf
        self.next: _Desk | None = None
        self.always_open = cfg.open_hour == 0 and cfg.close_hour == 24 and cfg.workdays == 7
        self._service_times = iter(())
        for _ in range(cfg.servers):
            env.process(self._server())

    def _service(self) -> float:
        """Exponential review time in days, drawn in bulk (one numpy call per 4,096 reviews)."""
        try:
            return next(self._service_times)
        except StopIteration:
            self._service_times = iter(self.rng.exponential(self.cfg.minutes / MINUTES_PER_DAY, 4096).tolist())
            return next(self._service_times)

    def put(self, item: list) -> None:
        """item: [instance (-1 for rework), enqueue time, bypass mask, arrival time]."""
        now = self.env.now
        self._drop_expired(now)
        if self.cfg.queue_limit is not None and len(self.queue.items) >= self.cfg.queue_limit and item[0] >= 0:
            self._leave(item, now, bypassed=True)
            return
        item[1] = now
        self.queue.put(item)

    def _drop_expired(self, now: float) -> None:
        items = self.queue.items  # FIFO: the oldest first, so the expired ones are at the front
        while items and items[0][0] >= 0 and now - items[0][1] > self.max_wait:
            item = items.pop(0)
            self._leave(item, item[1] + self.max_wait, bypassed=True)

    def _leave(self, item: list, when: float, bypassed: bool) -> None:
        if bypassed:
            item[2] |= self.record.bit[self.sid]
        self.record.left(self.sid, item, when, bypassed)
        if self.next is not None:
            self.next.put(item)
        else:
            self.record.complete(item, when)

    def open_days(self, horizon: int) -> float:
        """Reviewer-days of opening hours within the horizon (the denominator of utilisation)."""
        cfg = self.cfg
        workdays = sum(1 for d in range(horizon) if d % 7 < cfg.workdays)
        return cfg.servers * workdays * (cfg.close_hour - cfg.open_hour) / DAY_HOURS

    def _closed_for(self, now: float) -> float:
        """Days until the desk is open (0 when open now)."""
        cfg = self.cfg
        day = math.floor(now)
        hour = (now - day) * DAY_HOURS
        if day % 7 < cfg.workdays and cfg.open_hour <= hour < cfg.close_hour:
            return 0.0
        d = day if hour < cfg.open_hour else day + 1
        while d % 7 >= cfg.workdays:
            d += 1
        return d + cfg.open_hour / DAY_HOURS - now

    def _server(self):
        env, record, sid = self.env, self.record, self.sid
        while True:
            item = yield self.queue.get()
            if not self.always_open:
                wait = self._closed_for(env.now)
                if wait > 0:
                    yield env.timeout(wait)
            now = env.now
            if item[0] >= 0 and now - item[1] > self.max_wait:
                self._leave(item, item[1] + self.max_wait, bypassed=True)
                continue
            service = self._service() if item[0] >= 0 else item[4]
            record.started(sid, item, now)
            yield env.timeout(service)
            if now < self.horizon:
                self.busy_days += service
            if item[0] >= 0:
                self._leave(item, env.now, bypassed=False)


class _Record:
    """What happened when, per instance (arrays) and per event (lists)."""

    def __init__(self, n: int, human: list[str], versions: _Versions, scenario: Scenario, env, desks,
                 act_pos: dict[str, int]):
        self.n, self.versions, self.env, self.desks = n, versions, env, desks
        self.bit = {sid: 1 << j for j, sid in enumerate(human)}
        self.completed = np.full(n, np.nan)
        self.mask = np.zeros(n, dtype=np.int64)
        self.waits: dict[str, list[float]] = {sid: [] for sid in human}
        self.queue_spans: dict[str, list[tuple[float, float]]] = {sid: [] for sid in human}
        self.bypassed = {sid: 0 for sid in human}
        self.rework = scenario.timeline.rework
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
            if trace.tokens[self.act_pos[act]][i] >= ERROR:
                self.rework_times.append((when, rw.cost))
                self.env.process(self._rework(rw, when))

    def _rework(self, rw, when: float):
        yield self.env.timeout(rw.delay_hours / DAY_HOURS)
        self.desks[rw.step].put([-1, self.env.now, 0, when, rw.minutes / MINUTES_PER_DAY])


def run_replication(scenario: Scenario, replication: int):
    """One replication: (mixed trace of its instances, plan, per-instance times, daily table, stats)."""
    tl = scenario.timeline
    seed = replication_seed(scenario.seed, replication)
    times = arrival_times(tl, seed, replication)
    n = len(times)
    if n == 0:
        raise CascadeError("timeline: no instance arrives within the horizon; raise arrivals.per_day or horizon_days")
    order = compile_plan(scenario).steps
    human = [s.id for s in order if s.id in tl.reviewers]
    versions = _Versions(scenario, seed, human, n)
    env = simpy.Environment()
    desks: dict[str, _Desk] = {}
    record = _Record(n, human, versions, scenario, env, desks, {s.id: s.pos for s in order if s.kind == "act"})
    service_rng = stream(seed, "timeline/service", replication)
    for sid in human:
        desks[sid] = _Desk(env, sid, tl.reviewers[sid], service_rng, record)
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
    return _account(scenario, replication, seed, times, record, versions, desks, human)


def _account(scenario, replication, seed, times, record, versions, desks, human):
    """Turn the replication's events into per-instance outcomes, daily rows and its horizon loss."""
    tl = scenario.timeline
    n = len(times)
    done = ~np.isnan(record.completed)
    masks = np.unique(record.mask[done])
    traces = [versions.get(int(m)) for m in masks]
    version = np.searchsorted(masks, record.mask)
    mixed = mix(traces, version)
    plan = versions.plans[0] if 0 in versions.plans else versions.plans[int(masks[0])]
    completed = np.where(done, record.completed, np.inf)
    rng = stream(seed, "timeline/detection", replication)
    delay = rng.exponential(tl.detection.mean_days, n)

    horizon = tl.horizon_days
    booked = np.zeros(horizon)
    failures = np.zeros(horizon)
    detections = np.zeros(horizon)
    exposure = 0.0
    failed_any = np.zeros(n, dtype=bool)

    def book(when: np.ndarray, amount: np.ndarray, into: np.ndarray = booked) -> None:
        day = np.floor(when).astype(np.int64)
        inside = (day >= 0) & (day < horizon) & (amount != 0)
        np.add.at(into, day[inside], amount[inside])

    for s in plan.acts:
        tok = mixed.tokens[s.pos]
        fail = tok >= ERROR
        failed_any |= fail
        det = mixed.detected[s.pos] & fail
        book(completed, np.where(det, s.detected_loss, 0.0))
        silent = fail & ~det
        surfaced = completed + delay
        grown = s.failure_loss * (1.0 + tl.detection.growth_per_day * delay)
        book(surfaced, np.where(silent, grown, 0.0))
        book(surfaced, silent.astype(float), detections)
        late = silent & (np.floor(surfaced) >= horizon) & (completed < horizon)
        exposure += float((s.failure_loss * (1.0 + tl.detection.growth_per_day * (horizon - completed[late]))).sum())
        book(completed, np.where((tok == CAUGHT) | (tok == FLAGGED), s.escalation_cost, 0.0))
    book(completed, failed_any.astype(float), failures)
    breaches = np.zeros(horizon)
    if tl.sla is not None:
        breach = (completed - times) * DAY_HOURS > tl.sla.hours
        book(np.where(np.isfinite(completed), completed, times + tl.sla.hours / DAY_HOURS),
             breach * tl.sla.breach_cost)
        book(np.where(np.isfinite(completed), completed, times), breach.astype(float), breaches)
    for when, cost in record.rework_times:
        if when < horizon:
            booked[int(when)] += cost

    day_ends = np.arange(1, horizon + 1, dtype=float)
    backlog = np.zeros(horizon)
    for spans in record.queue_spans.values():
        if spans:
            arr = np.array(spans)
            enter, leave = np.sort(arr[:, 0]), np.sort(arr[:, 1])
            backlog += np.searchsorted(enter, day_ends, side="right") - np.searchsorted(leave, day_ends, side="right")
    daily = pd.DataFrame({
        "replication": replication, "day": np.arange(horizon),
        "arrivals": np.bincount(np.floor(times).astype(np.int64), minlength=horizon)[:horizon],
        "completions": np.bincount(np.floor(completed[completed < horizon]).astype(np.int64), minlength=horizon),
        "backlog": backlog.astype(np.int64), "failures": failures.astype(np.int64),
        "detections": detections.astype(np.int64), "sla_breaches": breaches.astype(np.int64), "loss": booked})
    stats = {
        "replication": replication, "instances": n, "horizon_loss": float(booked.sum()),
        "undetected_exposure_at_horizon": exposure,
        "p_failure": float(failed_any.mean()),
        "bypassed": {sid: record.bypassed[sid] for sid in human},
        "mean_wait_hours": {sid: float(np.mean(record.waits[sid]) * DAY_HOURS) if record.waits[sid] else 0.0
                            for sid in human},
        "utilisation": {sid: desks[sid].busy_days / desks[sid].open_days(horizon) for sid in human},
        "completed": int(done.sum()),
    }
    return mixed, plan, daily, stats, record, times
