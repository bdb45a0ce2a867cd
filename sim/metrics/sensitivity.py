"""Which parameter moves expected loss most: one-at-a-time sensitivity of every retrieval error rate, every
reasoning error rate and every verifier catch rate of a plan, exact (analytic engine) where it applies, else
Monte Carlo with common random numbers. Parameters move on the Plan (`with_parameters`): no YAML round trip.

For each parameter p: expected loss at a low and a high value (half and 1.5 times an error rate, -/+ 0.1 for a
catch rate, clipped to valid values and to what the difficulty levels can represent at the scenario's icc), the Birnbaum-style importance dL/dp as the slope between them (the exact
derivative when icc = 0, where the loss is linear in each single probability; a secant otherwise) and the
elasticity (dL/dp)(p/L). `importance_per_point` is the same slope per percentage point (every parameter here is a
probability), the unit a reader can use: "+1 point of role-swap rate costs X per instance".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from sim.core.errors import EngineLimitError
from sim.engines.analytic import expected_loss
from sim.engines.monte_carlo.run import simulate
from sim.metrics.summary import summary_from_tally
from sim.model.plan import Plan

COLUMNS = ("variant", "computed_by", "reference_loss", "parameter", "path", "value", "low", "high", "loss_at_low",
           "loss_at_high", "swing", "importance", "importance_per_point", "elasticity")
"""The columns of a sensitivity table (`sensitivity.csv` in a run folder)."""

MC_INSTANCES = 100_000
"""Instances per point when the analytic engine cannot take the workflow."""


def parameters(plan: Plan) -> list[tuple[str, str, float, float, float]]:
    """(label, scenario path, value, low, high) for every positive retrieval error rate, every positive
    reasoning error rate and every catch rate, in the scenario's order."""
    values = plan.parameters
    out = []
    for path, value in values.items():
        parts = path.split(".")
        if parts[0] == "retrievers" and value > 0:
            name, t = parts[1], parts[3]
            # The rates of one retriever may not pass 1 together.
            total = sum(v for k, v in values.items() if k.startswith(f"retrievers.{name}.rates."))
            low, high = _reachable(plan, total - value, value, value * 0.5, min(value * 1.5, value + 1.0 - total))
            out.append((f"{name} retriever: {t} rate", path, value, low, high))
        elif parts[-1] == "base_error_rate" and value > 0:
            low, high = _reachable(plan, 0.0, value, value * 0.5, min(1.0, value * 1.5))
            out.append((f"{parts[2]}: reasoning error rate", path, value, low, high))
        elif parts[0] == "workflow" and parts[3] == "catch":
            out.append((f"{parts[2]}: catch {parts[4]}", path, value, max(0.0, value - 0.1), min(1.0, value + 0.1)))
    return out


def _reachable(plan: Plan, rest: float, value: float, low: float, high: float) -> tuple[float, float]:
    """`low` and `high` moved toward `value` until the event (`rest` + the parameter) can still carry the
    scenario's icc on its difficulty levels (a very rare event cannot be as correlated as a common one)."""
    def fits(x: float) -> bool:
        return plan.levels.max_icc(min(rest + x, 1.0)) >= plan.levels.icc

    ends = []
    for end in (low, high):
        for _ in range(40):
            if fits(end):
                break
            end = (end + value) / 2
        ends.append(end if fits(end) else value)
    return ends[0], ends[1]


def sensitivity(plan: Plan, instances: int = MC_INSTANCES) -> pd.DataFrame:
    """The sensitivity table of one plan, sorted by swing; every row says which variant it is for, what computed
    it (`computed_by`) and the expected loss the parameters move from (`reference_loss`)."""
    loss: Callable[[Plan], float]
    try:
        loss = expected_loss
        reference = loss(plan)
        engine = "analytic (exact)"
    except EngineLimitError:
        def loss(p: Plan) -> float:
            tallies, _ = simulate({"base": p}, instances, 1 << 18, 0, 0)
            return summary_from_tally(tallies["base"])["expected_loss_per_instance"]

        reference = loss(plan)
        engine = f"monte_carlo ({instances:,} instances, common random numbers)"
    rows: list[dict[str, Any]] = []
    for label, path, value, low, high in parameters(plan):
        lo = loss(plan.with_parameters({path: low}))
        hi = loss(plan.with_parameters({path: high}))
        slope = (hi - lo) / (high - low) if high > low else 0.0
        rows.append({"parameter": label, "path": path, "value": value, "low": low, "high": high,
                     "loss_at_low": lo, "loss_at_high": hi, "swing": abs(hi - lo),
                     "importance": slope, "importance_per_point": slope / 100,
                     "elasticity": slope * value / reference if reference else 0.0})
    table = pd.DataFrame(rows, columns=COLUMNS[3:])
    table = table.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "variant", plan.variant)
    table.insert(1, "computed_by", engine)
    table.insert(2, "reference_loss", reference)
    return table
