"""The break-even frontier between a variant and base along a swept parameter: where the variant's paired
difference in loss (variant - base) crosses zero, so where the variant starts to beat base, with the
uncertainty of that place: the crossings of the difference's 95% interval bounds (a sampled engine's CI;
exact engines give zero width) and the two grid points that bracket it (the sweep's resolution).

Crossings are read by linear interpolation between neighbouring points; a difference that never changes sign
has no frontier in the swept range (the variant is better, or worse, everywhere it was evaluated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

COLUMNS = ("engine", "variant", "parameter", "other_parameter", "other_value", "metric", "break_even",
           "break_even_low", "break_even_high", "bracket_low", "bracket_high", "variant_better")


def break_even(table: pd.DataFrame, paths: Sequence[str]) -> pd.DataFrame:
    """One row per engine x variant x numeric swept parameter (x value of one other swept parameter, when there
    are two): the break-even value, its interval, and where the variant is better (`above`, `below`,
    `everywhere`, `nowhere`); NaN where the difference does not cross zero in the swept range."""
    rows = []
    numeric = [p for p in paths if pd.api.types.is_numeric_dtype(table[p])]
    ok = table[(table["status"] == "ok") & (table["variant"] != "base")]
    for (engine, variant), part in ok.groupby(["engine", "variant"], sort=False):
        metric = "loss_difference" if part["loss_difference"].notna().any() else "horizon_loss_difference"
        if part[metric].isna().all():
            continue
        for x in numeric:
            others = [p for p in paths if p != x]
            groups = part.groupby(others, sort=True) if others else [((), part)]
            for key, line in groups:
                if line[x].nunique() < 2:
                    continue
                line = line.sort_values(x)
                xs = line[x].to_numpy(float)
                found = crossing(xs, line[metric].to_numpy(float), line[f"{metric}_low"].to_numpy(float),
                                 line[f"{metric}_high"].to_numpy(float))
                other_value = float(key[0] if isinstance(key, tuple) else key) if len(others) == 1 and \
                    pd.api.types.is_numeric_dtype(table[others[0]]) else math.nan
                rows.append({"engine": engine, "variant": variant, "parameter": x,
                             "other_parameter": others[0] if len(others) == 1 else None,
                             "other_value": other_value, "metric": metric, **found})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def crossing(x: np.ndarray, d: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict:
    """Where `d` (variant - base, sorted by `x`) first crosses zero, the crossings of its interval bounds, the
    grid bracket, and on which side the variant is better (d < 0)."""
    keep = np.isfinite(d)
    x, d, low, high = x[keep], d[keep], low[keep], high[keep]
    out = {"break_even": math.nan, "break_even_low": math.nan, "break_even_high": math.nan,
           "bracket_low": math.nan, "bracket_high": math.nan}
    if len(x) == 0:
        return {**out, "variant_better": None}
    at = _first_sign_change(d)
    if at is None:
        return {**out, "variant_better": "everywhere" if (d < 0).all() else "nowhere" if (d >= 0).all()
                else "mixed"}
    out["break_even"] = _interpolate(x, d, at)
    out["bracket_low"], out["bracket_high"] = float(x[at]), float(x[at + 1])
    falling = d[at + 1] < d[at]
    if np.isfinite(low).all() and np.isfinite(high).all():
        # Falling difference: its upper bound reaches zero last, its lower bound first (rising: the reverse).
        # A bound that stays on one side in the swept range puts that end of the interval at the range's end.
        first, last = (low, high) if falling else (high, low)
        out["break_even_low"] = min(_zero(x, first, x[0]), out["break_even"])
        out["break_even_high"] = max(_zero(x, last, x[-1]), out["break_even"])
    out["variant_better"] = "above" if falling else "below"
    return out


def _first_sign_change(d: np.ndarray) -> int | None:
    for i in range(len(d) - 1):
        if (d[i] < 0) != (d[i + 1] < 0):
            return i
    return None


def _interpolate(x: np.ndarray, d: np.ndarray, i: int) -> float:
    span = d[i + 1] - d[i]
    return float(x[i] if span == 0 else x[i] - d[i] * (x[i + 1] - x[i]) / span)


def _zero(x: np.ndarray, d: np.ndarray, otherwise: float) -> float:
    """Where an interval bound crosses zero (`otherwise` where it does not in the swept range)."""
    at = _first_sign_change(d)
    return float(otherwise) if at is None else _interpolate(x, d, at)


__all__ = ["break_even", "crossing", "COLUMNS"]
