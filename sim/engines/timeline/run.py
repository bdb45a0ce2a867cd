"""`run(..., engine="timeline")`: replications of every variant, the horizon-loss distribution and the tables."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.core.errors import CascadeError
from sim.engines.timeline.desks import run_replication
from sim.metrics.summary import Z95, summary_from_tally
from sim.output.result import Result, steps_table
from sim.scenario.model import Scenario
from sim.trace.schema import INSTANCE_SCHEMA, instance_outcomes, instance_table
from sim.trace.tally import Tally

EXCEEDANCE_POINTS = 50


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
            "cvar95": float(tail.mean()), "min": float(x[0]), "max": float(x[-1]),
            "exceedance": [{"loss": float(v), "p_exceed": float((x > v).mean())} for v in levels]}


def run_timeline(scenario: Scenario, variants: dict[str, Scenario], max_rows: int, progress) -> Result:
    if scenario.timeline is None:
        raise CascadeError("the timeline engine needs a `timeline:` block in the scenario (horizon_days, arrivals, "
                           "reviewers, ...); see scenarios/ticket_triage.yaml")
    reps = scenario.timeline.replications
    blocks, daily_tables, rows, tallies, per_variant = {}, [], [], {}, {}
    total, done = reps * len(variants), 0
    for name, s in variants.items():
        stats_all = []
        for r in range(reps):
            mixed, plan, daily, stats, _record, _times = run_replication(s, r)
            stats_all.append(stats)
            daily_tables.append(daily.assign(variant=name))
            if r == 0:  # replication 0: the instance-level tables and the usual summary figures
                plan = dataclasses.replace(plan, variant=name)
                tally = Tally(plan)
                out = instance_outcomes(plan, mixed)
                tally.add(mixed, out)
                tallies[name] = tally
                if max_rows > 0:
                    rows.append(instance_table(plan, mixed, out, 0, min(mixed.n, max_rows)))
            done += 1
            if progress:
                progress(done, total)
        block = summary_from_tally(tallies[name])
        block["instances"] = tallies[name].n
        block["timeline"] = _timeline_block(s, stats_all)
        blocks[name] = block
        per_variant[name] = [st["horizon_loss"] for st in stats_all]
    base = blocks["base"]
    summary = {"scenario": scenario.name, "engine": "timeline", "seed": scenario.seed,
               "instances": base["instances"], "currency": scenario.currency, "variants": list(variants),
               "retrievers": {n: {"kind": r.kind} for n, r in scenario.retrievers.items()}, **base,
               "instance_rows": {"mode": "replication 0", "rows": min(base["instances"], max_rows),
                                 "of": base["instances"],
                                 "note": "per-instance rows and the summary figures are replication 0's"}}
    if len(variants) > 1:
        summary["variant_results"] = {k: v for k, v in blocks.items() if k != "base"}
        summary["differences"] = {k: _paired_horizon(per_variant[k], per_variant["base"])
                                  for k in variants if k != "base"}
    instances = pa.concat_tables(rows).combine_chunks() if rows else INSTANCE_SCHEMA.empty_table()
    return Result(summary=summary, scenario=scenario, plans={}, instances_arrow=instances,
                  steps=steps_table(tallies), timeline=pd.concat(daily_tables, ignore_index=True))


def _timeline_block(s: Scenario, stats: list[dict]) -> dict:
    tl = s.timeline
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
