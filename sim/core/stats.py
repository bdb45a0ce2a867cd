"""Confidence intervals and moments: Wilson for proportions, normal (CLT) for means, delta method for ratios."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

Z95 = 1.959963984540054
POISSON_ZERO_95 = 3.6888794541139363
"""Two-sided 95% upper bound on a Poisson mean when zero events were seen (chi2(0.975, 2) / 2)."""


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_ci(total: float, total_sq: float, n: int, z: float = Z95) -> tuple[float, tuple[float, float]]:
    """Mean and normal-approximation interval from the sum and sum of squares of n observations."""
    if n == 0:
        return 0.0, (0.0, 0.0)
    mean = total / n
    var = max(total_sq / n - mean * mean, 0.0) * n / max(n - 1, 1)
    half = z * math.sqrt(var / n)
    return mean, (mean - half, mean + half)


def hist_moments(hist: Counter[float]) -> tuple[float, float, int]:
    """Sum, sum of squares and count of a histogram of values, added in sorted order (deterministic)."""
    keys = sorted(hist)
    values = np.array(keys, dtype=np.float64)
    counts = np.array([hist[k] for k in keys], dtype=np.float64)
    return float((values * counts).sum()), float((values * values * counts).sum()), int(counts.sum())


def ratio_ci(sx: float, sy: float, sxx: float, syy: float, sxy: float, n: int) -> tuple[float, tuple[float, float]]:
    """Ratio of means E[X]/E[Y] with a delta-method interval."""
    if sy == 0 or n == 0:
        return 0.0, (0.0, 0.0)
    mx, my = sx / n, sy / n
    ratio = mx / my
    vx, vy, cxy = sxx / n - mx * mx, syy / n - my * my, sxy / n - mx * my
    var = (vx - 2 * ratio * cxy + ratio * ratio * vy) / (my * my * n)
    half = Z95 * math.sqrt(max(var, 0.0))
    return ratio, (ratio - half, ratio + half)


