"""`--engine timeline`: replications of every variant, the horizon-loss distribution and the tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.core.errors import CascadeError
from sim.core.stats import Z95
from sim.engines.request import RunRequest
from sim.engines.timeline.replication import run_replication
from sim.scenario.model import Timeline
from sim.trace.engine_output import EngineOutput
from sim.trace.schema import INSTANCE_SCHEMA, instance_outcomes, instance_table
from sim.trace.tally import Tally

EXCEEDANCE_POINTS = 50
TAIL_REPLICATIONS = 20
"""Replications for the 95% tail to hold one of them: with fewer, VaR95 is the maximum and CVaR95 equals it."""


def loss_distribution(losses: list[float]) -> dict:
    """Mean with CI, VaR95, CVaR95 and the loss-exceedance curve of horizon losses across replications."""
    x = np.sort(np.asarray(losses, dtype=float))
    n = len(x)
    mean = float(x.mean())
    half = Z95 * float(x.std(ddof=1)) / np.sqrt(n) if n > 1 else 0.0
    var = float(np.quantile(x, 0.95, method="higher"))
    tail = x[x >= var]
    levels = np.unique(np.quantile(x, np.linspace(0, 1, min(n, EXCEEDANCE_POINTS)), method="lower"))
    return {"replications": n, "mean": mean, "mean_ci95": [mean - half, mean + half], "var95": var,
            "cvar95": float(tail.mean()), "tail_coarse": n < TAIL_REPLICATIONS,
            "replications_for_tail": TAIL_REPLICATIONS, "min": float(x[0]), "max": float(x[-1]),
            "exceedance": [{"loss": float(v), "p_exceed": float((x > v).mean())} for v in levels]}


def run_timeline(request: RunRequest) -> EngineOutput:
    """`--engine timeline`: the scenario's replications per variant; replication 0 gives the instance tables
    and the usual figures, all replications the horizon-loss distribution."""
    if request.scenario.timeline is None:
        raise CascadeError("the timeline engine needs a `timeline:` block in the scenario (horizon_days, arrivals, "
                           "reviewers, ...); see scenarios/ticket_triage.yaml")
    variants, max_rows, progress = request.variants, request.max_instance_rows, request.progress
    reps = request.scenario.timeline.replications
    extra, daily_tables, rows, tallies, per_variant = {}, [], [], {}, {}
    total, done = reps * len(variants), 0
    for name, plan in request.plans.items():
        tl = variants[name].timeline
        stats_all = []
        for r in range(reps):
            mixed, version_plan, daily, stats, record, times = run_replication(plan, tl, r)
            stats_all.append(stats)
            daily_tables.append(daily.assign(variant=name))
            if r == 0:  # replication 0: the instance-level tables and the usual summary figures
                tally = Tally(version_plan)
                out = instance_outcomes(version_plan, mixed)
                tally.add(mixed, out)
                tallies[name] = tally
                if max_rows > 0:
                    k = min(mixed.n, max_rows)
                    # When each instance arrived and was completed (days from the start of the horizon; NaN:
                    # not completed within the run), so exported traces carry the simulated time.
                    rows.append(instance_table(version_plan, mixed, out, 0, k)
                                .append_column("arrival_day", pa.array(times[:k], pa.float64()))
                                .append_column("completed_day", pa.array(record.completed[:k], pa.float64())))
            done += 1
            if progress:
                progress(done, total)
        extra[name] = {"instances": tallies[name].n, "timeline": _timeline_block(tl, stats_all)}
        per_variant[name] = [st["horizon_loss"] for st in stats_all]
    n = tallies["base"].n
    differences = {k: _paired_horizon(per_variant[k], per_variant["base"]) for k in variants if k != "base"}
    return EngineOutput(
        engine="timeline", plans=request.plans, instances=n, tallies=tallies,
        instances_table=pa.concat_tables(rows).combine_chunks() if rows else INSTANCE_SCHEMA.empty_table(),
        instance_rows={"mode": "replication 0", "rows": min(n, max_rows), "of": n,
                       "note": "per-instance rows and the summary figures are replication 0's"},
        variant_extra=extra, differences=differences or None,
        tables={"timeline": pd.concat(daily_tables, ignore_index=True)})


def _timeline_block(tl: Timeline, stats: list[dict]) -> dict:
    arrivals = sum(st["instances"] for st in stats)
    return {
        "horizon_days": tl.horizon_days,
        "horizon_loss": loss_distribution([st["horizon_loss"] for st in stats]),
        "undetected_exposure_at_horizon_mean": float(np.mean([st["undetected_exposure_at_horizon"] for st in stats])),
        "p_failure_by_replication": [st["p_failure"] for st in stats],
        "bypass_rate": {sid: sum(st["bypassed"][sid] for st in stats) / arrivals for sid in tl.reviewers},
        "mean_wait_hours": {sid: float(np.mean([st["mean_wait_hours"][sid] for st in stats])) for sid in tl.reviewers},
        "utilisation": {sid: float(np.mean([st["utilisation"][sid] for st in stats])) for sid in tl.reviewers},
    }


def _paired_horizon(variant: list[float], base: list[float]) -> dict:
    d = np.asarray(variant) - np.asarray(base)
    mean = float(d.mean())
    half = Z95 * float(d.std(ddof=1)) / np.sqrt(len(d)) if len(d) > 1 else 0.0
    return {"horizon_loss": {"difference": mean, "ci95": [mean - half, mean + half]}}
