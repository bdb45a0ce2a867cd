"""Which parameter moves expected loss most: one-at-a-time sensitivity of every retrieval error rate and every
verifier catch rate, exact (analytic engine) where it applies, else Monte Carlo with common random numbers.

For each parameter p: expected loss at a low and a high value (half and 1.5 times an error rate, -/+ 0.1 for a
catch rate, clipped to valid values), the Birnbaum-style importance dL/dp as the slope between them (the exact
derivative when icc = 0, where the loss is linear in each single probability; a secant otherwise) and the
elasticity (dL/dp)(p/L).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from sim.core.errors import EngineLimitError
from sim.core.yaml_source import SourceMap
from sim.engines.analytic import expected_loss
from sim.model.plan import compile_plan
from sim.scenario.load import apply_set, base_dict, scenario_from_dict
from sim.scenario.model import Scenario


def parameters(scenario: Scenario) -> list[tuple[str, str, float, float, float]]:
    """(label, dotted path, value, low, high) for every retrieval error rate and every catch rate."""
    out = []
    for name, r in scenario.retrievers.items():
        for t, rate in r.rates.items():
            if rate <= 0:
                continue
            room = 1.0 - r.error_rate  # the rates of one retriever may not pass 1 together
            out.append((f"{name} retriever: {t} rate", f"retrievers.{name}.rates.{t}", rate, rate * 0.5,
                        min(rate * 1.5, rate + room)))
    for st in scenario.workflow.steps:
        if st.kind == "decide" and st.base_error_rate > 0:
            b = st.base_error_rate
            out.append((f"{st.id}: reasoning error rate", f"workflow.steps.{st.id}.base_error_rate", b, b * 0.5,
                        min(1.0, b * 1.5)))
        if st.kind == "verify":
            for t, c in st.catch.items():
                out.append((f"{st.id}: catch {t}", f"workflow.steps.{st.id}.catch.{t}", c, max(0.0, c - 0.1),
                            min(1.0, c + 0.1)))
    return out


def sensitivity(scenario: Scenario, instances: int = 100_000) -> tuple[pd.DataFrame, str]:
    """The sensitivity table (sorted by swing) and the engine that computed it."""
    base = base_dict(scenario)
    for r in base["retrievers"].values():  # measured retrievers become injected ones with their rates
        if r["kind"] == "measured":
            rates = r["rates"]
            r.clear()
            r.update({"kind": "injected", "rates": rates})
    try:
        loss = _analytic
        reference = loss(base)
        engine = "analytic (exact)"
    except EngineLimitError:
        loss = _monte_carlo(instances)
        reference = loss(base)
        engine = f"monte_carlo ({instances:,} instances, common random numbers)"
    rows: list[dict[str, Any]] = []
    for label, path, value, low, high in parameters(scenario):
        lo = loss(apply_set(base, {path: low}, (), SourceMap()))
        hi = loss(apply_set(base, {path: high}, (), SourceMap()))
        slope = (hi - lo) / (high - low) if high > low else 0.0
        rows.append({"parameter": label, "path": path, "value": value, "low": low, "high": high,
                     "loss_at_low": lo, "loss_at_high": hi, "swing": abs(hi - lo),
                     "importance": slope, "elasticity": slope * value / reference if reference else 0.0})
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)
    table.attrs["expected_loss"] = reference
    return table, engine


def _analytic(data: dict) -> float:
    return expected_loss(compile_plan(scenario_from_dict(data)))


def _monte_carlo(instances: int):
    from sim.runner import run

    def loss(data: dict) -> float:
        s = scenario_from_dict({**data, "variants": []})
        return run(s, instances=instances, max_instance_rows=0, pass_k_sample=0).summary["expected_loss_per_instance"]

    return loss
