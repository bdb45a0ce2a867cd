"""Booking a replication's losses over calendar time: on the day they are known.

At completion (escalations, audit-detected failures, SLA breaches), when a silent failure surfaces (after an
exponential delay, grown by `growth_per_day`), or when rework is created. Also the daily table and the
replication's statistics (waits, utilisation, bypasses).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.core.seeding import stream
from sim.engines.timeline.desks import DAY_HOURS
from sim.model.plan import Plan
from sim.model.tokens import is_error, is_escalation
from sim.scenario.model import Timeline
from sim.trace.schema import BlockTrace


def account(tl: Timeline, replication: int, seed: int, times: np.ndarray, record, mixed: BlockTrace, plan: Plan,
            desks, human: list[str]) -> tuple[pd.DataFrame, dict]:
    """Turn the replication's events and its instances' outcomes (`mixed`) into daily rows and statistics."""
    n = len(times)
    done = ~np.isnan(record.completed)
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
        fail = is_error(tok)
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
        book(completed, np.where(is_escalation(tok), s.escalation_cost, 0.0))
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
    return daily, stats
