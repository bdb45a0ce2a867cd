"""The loss-exceedance curve with its uncertainty band: P(loss of one instance > x) at each of a grid of
amounts x, at each of a subset of an uncertainty run's draws, then the median and 5-95% band over the draws.

The analytic engine gives expectations, not the distribution of an instance's loss, so each draw runs Monte
Carlo on the plan's own streams (common random numbers across draws and variants: the curves differ only by
their parameters).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

from sim.engines.monte_carlo.run import simulate
from sim.model.plan import Plan

DRAWS = 64
"""Draws of an uncertainty run that get a curve (the first ones of its design)."""

GRID = 24
"""Amounts on the curve: log-spaced from the smallest to the largest positive loss seen."""

CHUNK = 1 << 18


def loss_histograms(plan: Plan, points: Mapping[str, np.ndarray], instances: int) -> list[Counter]:
    """Per point, the count of instances at each per-instance loss (currency), from `instances` instances."""
    n = len(next(iter(points.values()))) if points else 1
    out = []
    for i in range(n):
        at = plan.with_parameters({p: float(v[i]) for p, v in points.items()}) if points else plan
        tallies, _ = simulate({plan.variant: at}, instances, CHUNK, 0, 0)
        out.append(tallies[plan.variant].loss_hist)
    return out


def exceedance(hist: Counter, amounts: np.ndarray) -> np.ndarray:
    """P(loss > x) for each x in `amounts`, from a histogram of per-instance losses."""
    values = np.array(sorted(hist))
    counts = np.array([hist[v] for v in values], dtype=float)
    above = counts[::-1].cumsum()[::-1]  # instances with loss >= values[j]
    idx = np.searchsorted(values, amounts, side="right")
    return np.where(idx < len(values), above[np.minimum(idx, len(values) - 1)], 0.0) / counts.sum()


def exceedance_band(histograms: Mapping[str, list[Counter]], amounts: np.ndarray | None = None) -> dict:
    """Per variant, the curve's median and 5-95% band over draws at each amount (a shared grid)."""
    if amounts is None:
        positive = [v for hs in histograms.values() for h in hs for v in h if v > 0]
        if not positive:
            return {"amounts": [], "variants": {v: [] for v in histograms}}
        amounts = np.geomspace(min(positive), max(positive), GRID) * (1 - 1e-9)  # just under: "loss > x" holds at x
    out: dict = {"amounts": [float(x) for x in amounts], "variants": {}}
    for v, hs in histograms.items():
        curves = np.stack([exceedance(h, amounts) for h in hs])
        q05, q50, q95 = np.quantile(curves, [0.05, 0.5, 0.95], axis=0)
        out["variants"][v] = [{"loss": float(x), "median": float(b), "p05": float(a), "p95": float(c)}
                              for x, a, b, c in zip(amounts, q05, q50, q95, strict=True)]
    return out


__all__ = ["DRAWS", "loss_histograms", "exceedance", "exceedance_band"]
