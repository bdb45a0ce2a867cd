"""What a worker computes for one work unit, returned as rows (one per point x variant) for the sweep table.

A problem of one point (an invalid combination of values, a workflow an engine cannot take) is a row marked
`failed` with its message; it never stops the other points. Nothing here writes files: the client keeps what
the workers return (`sim.sweeps.units.SweepFolder`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sim.core.errors import CascadeError
from sim.metrics.uncertainty import CASCADE_FIGURES, POINT_FIGURES, evaluate_points
from sim.model.plan import Plan
from sim.output.result import HEADLINE
from sim.runner import run
from sim.scenario.model import Scenario

FIGURES = (*HEADLINE, "loss_difference", "horizon_loss", "horizon_loss_difference")
"""Every figure a row carries, each followed in the table by `_low` and `_high` (its 95% interval): the headline
figures of `Result.summary_table`, each variant's paired difference in expected loss per instance from base,
and (timeline) the loss over the horizon, mean over replications, and its paired difference from base."""


def empty_row(point: int, variant: str, error: str | None = None) -> dict[str, Any]:
    """A row with no figures: failed with `error`, or to be filled."""
    row: dict[str, Any] = {"point": point, "variant": variant, "status": "failed" if error else "ok", "error": error}
    for name in FIGURES:
        row.update({name: math.nan, f"{name}_low": math.nan, f"{name}_high": math.nan})
    return row


def evaluate_batch(plans: Mapping[str, Plan], paths: Sequence[str], own: Mapping[str, Sequence[str]],
                   values: Sequence[Sequence[float]], points: Sequence[int]) -> tuple[list[dict[str, Any]], None]:
    """Analytic points in one batched walk per variant (`sim.metrics.uncertainty.evaluate_points`): `values[i]`
    gives `paths` at `points[i]`; a variant takes no value for the paths it sets itself (`own[variant]`). Exact
    figures (intervals of zero width) for p_failure, expected loss (and its failure-loss and escalation parts),
    silent-failure rate, root errors per instance and amplification."""
    columns = np.asarray(values, dtype=float).reshape(len(points), len(paths))
    per_variant: dict[str, list[dict[str, float] | str]] = {}
    for variant, plan in plans.items():
        mine = {p: columns[:, j] for j, p in enumerate(paths) if p not in own.get(variant, ())}
        try:
            table = evaluate_points(plan, mine, cascade=True).values.to_dict(orient="records")
            per_variant[variant] = table if mine else table * len(points)  # sets every swept path itself
        except CascadeError:  # one point's values do not fit this variant: find which, keep the others
            per_variant[variant] = [_one(plan, {p: float(v[i]) for p, v in mine.items()}) for i in range(len(points))]
    rows = []
    for i, point in enumerate(points):
        base = per_variant.get("base", [None] * len(points))[i]
        for variant in plans:
            got = per_variant[variant][i]
            if isinstance(got, str):
                rows.append(empty_row(point, variant, got))
                continue
            row = empty_row(point, variant)
            for m in POINT_FIGURES + CASCADE_FIGURES:
                row.update({m: float(got[m]), f"{m}_low": float(got[m]), f"{m}_high": float(got[m])})
            if variant != "base" and isinstance(base, dict):
                d = float(got["expected_loss_per_instance"] - base["expected_loss_per_instance"])
                row.update({"loss_difference": d, "loss_difference_low": d, "loss_difference_high": d})
            rows.append(row)
    return rows, None


def _one(plan: Plan, changes: dict[str, float]) -> dict[str, float] | str:
    try:
        plan.with_parameters(changes)
    except CascadeError as exc:
        return f"variant '{plan.variant}': {exc}"
    return evaluate_points(plan, {p: np.array([v]) for p, v in changes.items()},
                           cascade=True).values.iloc[0].to_dict()


def run_point(scenario: Scenario, engine: str, instances: int | None, point: int, max_instance_rows: int,
              options: Any = None) -> tuple[list[dict[str, Any]], Any]:
    """One point run whole by `engine` (`sim.run`, one process: the sweep's workers are the parallelism; an
    engine that spreads its own work gets the Dask client in `options`): its rows and its Result (the client
    writes it as the point's run folder)."""
    names = ["base", *(v.name for v in scenario.variants)]
    try:
        result = run(scenario, engine=engine, instances=instances, workers=1, max_instance_rows=max_instance_rows,
                     options=options)
    except CascadeError as exc:
        return [empty_row(point, v, str(exc)) for v in names], None
    # The run folder's sensitivity.csv is computed when first read (one-at-a-time analytic runs: for a short
    # timeline point several times the run itself); computed here it travels with the result, so the client,
    # which writes every folder, does not become the study's bottleneck.
    _ = result.sensitivity
    rows = []
    differences = result.summary.get("differences") or {}
    for record in result.summary_table.to_dict(orient="records"):
        variant = str(record["variant"])
        row = empty_row(point, variant)
        for name in HEADLINE:
            for suffix in ("", "_low", "_high"):
                value = record.get(name + suffix)
                row[name + suffix] = math.nan if value is None or pd.isna(value) else float(value)
        block = result.summary if variant == "base" else result.summary["variant_results"][variant]
        _interval(row, "horizon_loss", ((block.get("timeline") or {}).get("horizon_loss") or {}), "mean")
        diff = differences.get(variant) or {}
        _interval(row, "loss_difference", diff.get("expected_loss_per_instance") or {}, "difference")
        _interval(row, "horizon_loss_difference", diff.get("horizon_loss") or {}, "difference")
        rows.append(row)
    return rows, result


def _interval(row: dict[str, Any], name: str, block: Mapping[str, Any], key: str) -> None:
    if block.get(key) is None:
        return
    ci = block.get(f"{key}_ci95") or block.get("ci95") or [block[key], block[key]]
    row.update({name: float(block[key]), f"{name}_low": float(ci[0]), f"{name}_high": float(ci[1])})

__all__ = ["FIGURES", "empty_row", "evaluate_batch", "run_point"]
