"""Where the loss comes from, counterfactually, and which basic event matters: expected loss per instance with
the retrieval made perfect (oracle: every rate 0, as tau2-bench's golden retrieval), each retriever perfect in
turn, each verifier perfect (catches everything, no false alarm) or removed (catches nothing); and, per basic
event (each retriever's rate of each error type, each decide step's reasoning error rate), the importance
measures of fault-tree analysis on expected loss L (as SCRAM computes them on a top event's probability):

- Birnbaum: (L(p = p_max) - L(p = 0)) / p_max, the loss per unit of probability (exact where L is linear in p,
  i.e. icc = 0; a secant otherwise); p_max is 1, or what the retriever's other rates leave.
- Fussell-Vesely: (L - L(p = 0)) / L, the share of the loss that needs the event.
- RAW (risk achievement worth): L(p = p_max) / L.  RRW (risk reduction worth): L / L(p = 0) (empty when the
  event alone makes all the loss).

All points of a plan are evaluated in one batched call (`evaluate_points`): exact where the analytic engine
applies, else Monte Carlo on common random numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.metrics.uncertainty import evaluate_points
from sim.model.plan import Plan

COUNTERFACTUAL_COLUMNS = ("variant", "counterfactual", "expected_loss_per_instance", "loss_removed",
                          "share_removed", "computed_by")
"""Columns of `counterfactuals.csv`: loss_removed = reference loss - loss under the counterfactual (currency per
instance; negative when the counterfactual adds loss, as removing a verifier does)."""

IMPORTANCE_COLUMNS = ("variant", "event", "path", "value", "p_max", "birnbaum", "fussell_vesely", "raw", "rrw")
"""Columns of `importance.csv`, one row per basic event."""


def _scenarios(plan: Plan) -> dict[str, dict[str, float]]:
    """Counterfactual name -> the parameter changes that make it."""
    values = plan.parameters
    retrievers = sorted({p.split(".")[1] for p in values if p.startswith("retrievers.")})
    rates = {name: [p for p in values if p.startswith(f"retrievers.{name}.rates.")] for name in retrievers}
    out = {"as is": {}, "oracle retrieval (every retriever perfect)": {p: 0.0 for r in rates.values() for p in r}}
    out.update({f"retriever {name} perfect": {p: 0.0 for p in paths} for name, paths in rates.items()})
    for s in plan.steps:
        if s.kind == "verify":
            at = f"workflow.steps.{s.id}"
            catch = [p for p in values if p.startswith(f"{at}.catch.")]
            out[f"verifier {s.id} perfect"] = {**{p: 1.0 for p in catch}, f"{at}.false_alarm": 0.0}
            out[f"verifier {s.id} removed"] = {**{p: 0.0 for p in catch}, f"{at}.false_alarm": 0.0}
    return out


def _evaluate(plan: Plan, changes: list[dict[str, float]]) -> tuple[np.ndarray, str]:
    """Expected loss per instance of `plan` under each set of changes, in one batched call."""
    paths = sorted({p for c in changes for p in c})
    points = {p: np.array([c.get(p, plan.parameters[p]) for c in changes]) for p in paths}
    ev = evaluate_points(plan, points)
    return ev.values["expected_loss_per_instance"].to_numpy(), ev.computed_by


def counterfactuals(plan: Plan) -> pd.DataFrame:
    """The loss each counterfactual removes from one plan (one variant)."""
    named = _scenarios(plan)
    loss, computed_by = _evaluate(plan, list(named.values()))
    reference = loss[0]
    rows = [{"variant": plan.variant, "counterfactual": name, "expected_loss_per_instance": float(x),
             "loss_removed": float(reference - x), "share_removed": float((reference - x) / reference)
             if reference else 0.0, "computed_by": computed_by} for name, x in zip(named, loss, strict=True)]
    return pd.DataFrame(rows, columns=list(COUNTERFACTUAL_COLUMNS))


def importance(plan: Plan) -> pd.DataFrame:
    """Birnbaum, Fussell-Vesely, RAW and RRW of every basic event of one plan with a positive probability."""
    values = plan.parameters
    events = [p for p, v in values.items() if v > 0 and (p.startswith("retrievers.") or p.endswith(".base_error_rate"))]
    highs = {}
    for p in events:
        if p.startswith("retrievers."):
            prefix = p.rsplit(".", 1)[0] + "."
            highs[p] = 1.0 - sum(v for k, v in values.items() if k.startswith(prefix) and k != p)
        else:
            highs[p] = 1.0
    changes = [{}] + [{p: 0.0} for p in events] + [{p: highs[p]} for p in events]
    loss, _ = _evaluate(plan, changes)
    reference, low, high = loss[0], loss[1:1 + len(events)], loss[1 + len(events):]
    rows = []
    for k, p in enumerate(events):
        parts = p.split(".")
        label = f"{parts[1]} retriever: {parts[3]}" if parts[0] == "retrievers" else f"{parts[2]}: reasoning"
        rows.append({"variant": plan.variant, "event": label, "path": p, "value": values[p], "p_max": highs[p],
                     "birnbaum": float((high[k] - low[k]) / highs[p]),
                     "fussell_vesely": float((reference - low[k]) / reference) if reference else 0.0,
                     "raw": float(high[k] / reference) if reference else None,
                     "rrw": float(reference / low[k]) if low[k] else None})
    table = pd.DataFrame(rows, columns=list(IMPORTANCE_COLUMNS))
    return table.sort_values("fussell_vesely", ascending=False, kind="stable").reset_index(drop=True)


__all__ = ["COUNTERFACTUAL_COLUMNS", "IMPORTANCE_COLUMNS", "counterfactuals", "importance"]
