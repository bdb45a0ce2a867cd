"""The loss-exceedance curves with their uncertainty band: P(loss > x) at each of a grid of amounts x, at each of
a subset of an uncertainty run's draws, then the median and 5-95% band over the draws; of one instance, and
FAIR-style of one period (a month at the scenario's volume).

The analytic engine gives expectations, not the distribution of an instance's loss, so each draw runs Monte
Carlo on the plan's own streams (common random numbers across draws and variants: the curves differ only by
their parameters). A period's loss is the sum of the losses of the instances arriving in it, independent and
distributed as one instance's. Arrivals are Poisson (the timeline's model), so this is a compound Poisson sum:
a period is one of the horizon's months, drawn uniformly, and the count of its instances at each distinct loss
is Poisson(the month's volume x that loss's share), independently. Each draw's periods are sampled exactly from
that draw's sample of instance losses (no lattice, no normal approximation), on a stream keyed by the draw alone
(common random numbers across variants).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
import pandas as pd

from sim.core.seeding import stream
from sim.engines.monte_carlo.run import simulate
from sim.model.plan import Plan

DRAWS = 64
"""Draws of an uncertainty run that get a curve (the first ones of its design)."""

GRID = 24
"""Amounts on the curve: log-spaced from the smallest to the largest positive loss seen."""

CHUNK = 1 << 18

PERIODS = 10_000
"""Periods sampled per draw for the per-period curve: P(period loss > x) is resolved to 1e-4."""

PERIOD_STREAM = "uncertainty/periods"

PERIOD_QUANTILES = (0.5, 0.9, 0.95, 0.99)
"""Quantiles of a period's loss reported with their band (FAIR's percentiles of annualised loss, per period)."""


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
        amounts = _grid([v for hs in histograms.values() for h in hs for v in h if v > 0])
    curves = {v: np.stack([exceedance(h, amounts) for h in hs]) for v, hs in histograms.items()}
    return {"amounts": [float(x) for x in amounts], "variants": {v: _band_rows(amounts, c) for v, c in curves.items()}}


def period_losses(hist: Counter, volumes: np.ndarray, periods: int, rng: np.random.Generator) -> np.ndarray:
    """Total loss (currency) of each of `periods` periods, sorted: a period is one of the months whose mean
    arrivals are `volumes`, drawn uniformly; its instances arrive as a Poisson process and their losses are
    independent and distributed as in `hist` (a histogram of per-instance losses), so the count at each
    distinct loss is Poisson(volume x share), independently."""
    total = sum(hist.values())
    values = np.array([v for v in sorted(hist) if v != 0], dtype=float)  # a zero loss adds nothing
    shares = np.array([hist[v] for v in values], dtype=float) / total
    month = rng.integers(len(volumes), size=periods)
    per_value = rng.poisson(np.asarray(volumes, dtype=float)[month, None] * shares[None, :])
    return np.sort(per_value @ values)


def period_exceedance_band(histograms: Mapping[str, list[Counter]], volumes: np.ndarray, seed: int,
                           periods: int = PERIODS) -> dict:
    """The per-period curve: per variant, the median and 5-95% band over draws of P(a period's loss > x) at a
    shared grid of amounts, with the mean and PERIOD_QUANTILES of a period's loss, each with its band; a period
    is one of the months of mean arrivals `volumes`, draw i's periods from draw i's instance losses."""
    draws = len(next(iter(histograms.values())))
    totals = {v: [period_losses(h, volumes, periods, stream(seed, PERIOD_STREAM, i)) for i, h in enumerate(hs)]
              for v, hs in histograms.items()}
    out: dict = {"months": len(volumes), "month_volume_min": float(np.min(volumes)),
                 "month_volume_max": float(np.max(volumes)), "periods_per_draw": periods, "draws": draws}
    positive = [t[t > 0] for ts in totals.values() for t in ts]
    amounts = _grid([x for p in positive if len(p) for x in (p[0], p[-1])])
    out["amounts"] = [float(x) for x in amounts]
    out["variants"] = {}
    for v, ts in totals.items():
        curves = np.stack([1.0 - np.searchsorted(t, amounts, side="right") / len(t) for t in ts])
        per_draw = np.stack([np.quantile(t, PERIOD_QUANTILES) for t in ts])
        out["variants"][v] = {
            "curve": _band_rows(amounts, curves),
            "mean": _band(np.array([t.mean() for t in ts])),
            "quantiles": {f"p{round(q * 100):02d}": _band(per_draw[:, k]) for k, q in enumerate(PERIOD_QUANTILES)}}
    return out


def _grid(positive: list[float]) -> np.ndarray:
    """GRID amounts log-spaced over the positive losses seen, just under each (so "loss > x" holds at x); none
    when no loss was seen."""
    if not positive:
        return np.zeros(0)
    return np.geomspace(min(positive), max(positive), GRID) * (1 - 1e-9)


def _band(x: np.ndarray) -> dict[str, float]:
    q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
    return {"median": float(q50), "p05": float(q05), "p95": float(q95)}


def _band_rows(amounts: np.ndarray, curves: np.ndarray) -> list[dict[str, float]]:
    """Rows of a curve's band: at each amount, the median and 5-95% over draws (`curves`: draws x amounts)."""
    q05, q50, q95 = np.quantile(curves, [0.05, 0.5, 0.95], axis=0)
    return [{"loss": float(x), "median": float(b), "p05": float(a), "p95": float(c)}
            for x, a, b, c in zip(amounts, q05, q50, q95, strict=True)]


def curve_table(instance: dict, period: dict | None, period_name: str) -> pd.DataFrame:
    """Both curves as one table (loss_exceedance.csv): `per` (instance or the period), variant, loss, median,
    p05, p95."""
    rows = [{"per": "instance", "variant": v, **r} for v, rs in instance["variants"].items() for r in rs]
    if period is not None:
        rows += [{"per": period_name, "variant": v, **r} for v, b in period["variants"].items() for r in b["curve"]]
    return pd.DataFrame(rows, columns=["per", "variant", "loss", "median", "p05", "p95"])


__all__ = ["DRAWS", "PERIODS", "PERIOD_QUANTILES", "loss_histograms", "exceedance", "exceedance_band",
           "period_losses", "period_exceedance_band", "curve_table"]
