"""Per-instance latent difficulty: discrete levels shared by every engine, so they compute the same model.

Each error event with mean probability p gets, on an instance at difficulty quantile u, the probability
Q(u) of a Beta distribution with mean p. All steps share u (comonotone), so hard instances are hard everywhere.
u is cut into levels (finer in both tails, where rare hard instances live); a level's probability is the exact
conditional mean of Q over its slice of u, so the mean over levels is exactly p. Averaging within a level
loses a little variance, so the Beta's own correlation is raised until the *levels* give exactly `icc`: the
correlation between two attempts at the same instance, for every error event.

Levels bound the correlation an event can have: at most all of its errors fall on the hardest instances
(`max_icc`, the limit of a Beta whose correlation tends to 1). A scenario asking for more is refused when it is
checked, so no engine ever runs a correlation other than the one written.

This module sits with the scenario because checking a scenario needs it; the compiled plan uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import interpolate, optimize, special
from scipy.optimize import elementwise

# The Beta's own correlation is solved in [icc, _RHO_MAX]; past it the levels are already within 1e-9 of
# their limit (measured: the achieved correlation converges smoothly to `max_icc`).
_RHO_MAX = 1.0 - 1e-12
_TINY = np.finfo(float).tiny
_SECANT_STEPS = 8
"""Secant steps `probabilities_batch` tries before the bracketing solver (measured: 3 or 4 settle it)."""
_ANCHORS = 16
"""Means `probabilities_batch` solves first, to start the others near their root: at least this many, and one in
16 of a larger batch (batches of over 32 means; measured on 2,000 rates: 3.3 evaluations of the slice means per
rate with 16 anchors interpolated linearly, 3.0 cubic, 2.5 with 125 anchors cubic)."""


class IccOutOfReach(ValueError):
    """The levels cannot give an event of this probability the requested correlation."""

    def __init__(self, p: float, icc: float, reachable: float):
        self.p, self.icc, self.reachable = p, icc, reachable
        super().__init__(f"icc {icc:g} cannot be given to an event of probability {p:g} with these levels "
                         f"(at most {reachable:.4g})")


@dataclass(frozen=True)
class Levels:
    """Difficulty levels: `weights[k]` is the share of instances at level k; `edges` cut [0, 1] into them."""

    icc: float
    edges: np.ndarray
    weights: np.ndarray

    @classmethod
    def build(cls, icc: float, count: int) -> Levels:
        if icc == 0.0:
            return cls(0.0, np.array([0.0, 1.0]), np.array([1.0]))
        # About a third of the levels in each tail, down to 1 in 10,000 instances.
        tail = max(1, round(0.35 * count))
        inner = count - 2 * tail
        edges = np.concatenate([
            [0.0], np.geomspace(1e-4, 0.05, tail), np.linspace(0.05, 0.95, inner + 1)[1:-1],
            1.0 - np.geomspace(0.05, 1e-4, tail), [1.0]])
        return cls(icc, edges, np.diff(edges))

    @property
    def count(self) -> int:
        return len(self.weights)

    def probabilities(self, p: float) -> np.ndarray:
        """Probability of an event with mean `p` at each level (shape: levels); IccOutOfReach past `max_icc`."""
        if self.icc == 0.0 or p <= 0.0 or p >= 1.0:
            return np.full(self.count, p)
        return np.array(_level_probabilities(p, self.icc, tuple(self.edges.tolist())))

    def probabilities_batch(self, p: np.ndarray) -> np.ndarray:
        """`probabilities` of every mean in `p` at once (shape: len(p) x levels): the correlations of the distinct
        means are solved together (scipy.optimize.elementwise.find_root, to the tolerances of the scalar brentq),
        so the result agrees with `probabilities` to rounding. IccOutOfReach names the first mean out of reach."""
        p = np.asarray(p, dtype=float)
        if self.icc == 0.0:
            return np.repeat(p[:, None], self.count, axis=1)
        means, where = np.unique(p, return_inverse=True)
        table = np.repeat(means[:, None], self.count, axis=1)
        inside = (means > 0.0) & (means < 1.0)
        if inside.any():
            table[inside] = _solve_levels(means[inside], self)
        return table[where.ravel()]

    def max_icc(self, p: float) -> float:
        """The largest correlation these levels can give an event of mean `p`: all of its errors on the hardest
        instances (probability 1 on the top share p of u, 0 below; the level holding the boundary averages)."""
        if p <= 0.0 or p >= 1.0:
            return 1.0
        top = np.clip(self.edges[1:] - np.maximum(self.edges[:-1], 1.0 - p), 0.0, None) / self.weights
        return self.correlation(top)

    def correlation(self, q: np.ndarray) -> float:
        """Intra-class correlation of an event whose probability at each level is `q`."""
        p = float(q @ self.weights)
        return float(((q - p) ** 2) @ self.weights) / (p * (1.0 - p))

    def sample(self, u: np.ndarray) -> np.ndarray:
        """Level index for each uniform in `u` (the instance's difficulty quantile)."""
        return np.searchsorted(self.edges[1:-1], u, side="right").astype(np.int32)


@lru_cache(maxsize=4096)
def _level_probabilities(p: float, icc: float, edges_t: tuple[float, ...]) -> tuple[float, ...]:
    edges = np.array(edges_t)
    levels = Levels(icc, edges, np.diff(edges))
    reachable = levels.max_icc(p)
    if icc > reachable:
        raise IccOutOfReach(p, icc, reachable)

    def excess(rho: float) -> float:
        return levels.correlation(_slice_means(p, rho, edges)) - icc

    if excess(icc) >= 0.0:  # (levels lose variance: only when icc is tiny and rounding decides)
        rho = icc
    elif excess(_RHO_MAX) <= 0.0:  # icc within 1e-9 of the limit
        rho = _RHO_MAX
    else:
        rho = optimize.brentq(excess, icc, _RHO_MAX, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    return tuple(_slice_means(p, rho, edges).tolist())


def _solve_levels(p: np.ndarray, levels: Levels) -> np.ndarray:
    """The level probabilities of each mean in `p` (all in (0, 1), sorted), as `_level_probabilities` finds them
    one by one: the Beta's correlation rho raised until the levels give `levels.icc`, each mean's own root found
    to the scalar solver's tolerance.

    Most of the cost is the quantiles of the slice means (one scipy.special.betaincinv per level edge), once per
    evaluation, so the solver counts evaluations: from rho = icc and the proportional guess, secant steps take
    4 to 5 per mean (the bracketing solver 8 to 9). A large batch first solves anchor means that way, then
    starts every other mean at the root and slope interpolated between anchors (cubic in log p): 2.5 to 3.
    """
    icc, edges, w = levels.icc, levels.edges, levels.weights
    top = np.clip(edges[1:] - np.maximum(edges[:-1], 1.0 - p[:, None]), 0.0, None) / w
    reachable = _correlations(top, w)
    if np.any(icc > reachable):
        k = int(np.argmax(icc > reachable))
        raise IccOutOfReach(float(p[k]), icc, float(reachable[k]))
    anchors = np.arange(len(p))
    if len(p) > 2 * _ANCHORS:
        anchors = np.unique(np.linspace(0, len(p) - 1, max(_ANCHORS, len(p) // 16)).round().astype(int))
    q = np.empty((len(p), levels.count))
    q[anchors], rho, slope = _from_icc(p[anchors], levels)
    others = np.setdiff1d(np.arange(len(p)), anchors)
    if len(others) == 0:
        return q
    solved = (rho > icc) & np.isfinite(slope)
    if solved.sum() >= 2:
        at, where = np.log(p[anchors][solved]), np.log(p[others])
        # Cubic through the anchors (clamped to their range): the root and the slope vary smoothly in log p.
        start = interpolate.CubicSpline(at, rho[solved])(np.clip(where, at[0], at[-1]))
        along = interpolate.CubicSpline(at, slope[solved])(np.clip(where, at[0], at[-1]))
        q_others, _, _, settled = _secant(p[others], levels, start, slope=along)
        q[others[settled]] = q_others[settled]
        others = others[~settled]
    if len(others):
        q[others] = _from_icc(p[others], levels)[0]
    return q


def _correlations(q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`Levels.correlation` of each row of `q`."""
    mean = q @ w
    return ((q - mean[:, None]) ** 2 @ w) / (mean * (1.0 - mean))


def _from_icc(p: np.ndarray, levels: Levels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(level probabilities, rho, the excess's slope at rho or NaN) of each mean in `p`, from rho = icc: secant
    steps from the proportional guess icc^2 / corr(icc) (the levels lose a little of the Beta's variance, about
    in proportion: the guess is within 0.3% of the root), and for any mean they do not settle, the bracketing
    solver (Chandrupatla: scipy.optimize.elementwise) over the scalar solver's range."""
    icc, edges, w = levels.icc, levels.edges, levels.weights
    q = _slice_means(p, np.full_like(p, icc), edges)
    at_icc = _correlations(q, w) - icc
    rho, slope = np.full_like(p, icc), np.full_like(p, np.nan)
    todo = np.flatnonzero(at_icc < 0.0)  # (>= 0: the levels lose no variance, rho = icc, as the scalar solver)
    if len(todo) == 0:
        return q, rho, slope
    q_todo, rho[todo], slope[todo], settled = _secant(p[todo], levels, icc * icc / (at_icc[todo] + icc),
                                                      before=(np.full(len(todo), icc), at_icc[todo]))
    q[todo[settled]] = q_todo[settled]
    rest = todo[~settled]
    if len(rest):
        def excess(x: np.ndarray, p: np.ndarray) -> np.ndarray:
            return _correlations(_slice_means(p, x, edges), w) - icc

        high = np.minimum(icc + 3.0 * (icc * icc / (at_icc[rest] + icc) - icc), _RHO_MAX)
        tolerances = {"xatol": 1e-15, "xrtol": 4 * np.finfo(float).eps}
        found = elementwise.find_root(excess, (np.full_like(high, icc), high), args=(p[rest],),
                                      tolerances=tolerances)
        x = found.x
        missed = found.status == -1
        if missed.any():
            wide = elementwise.find_root(excess, (np.full(missed.sum(), icc), np.full(missed.sum(), _RHO_MAX)),
                                         args=(p[rest][missed],), tolerances=tolerances)
            # No root below _RHO_MAX: icc within 1e-9 of the limit (the scalar solver's other end).
            x[missed] = np.where(wide.status == -1, _RHO_MAX, wide.x)
        q[rest], rho[rest], slope[rest] = _slice_means(p[rest], x, edges), x, np.nan
    return q, rho, slope


def _secant(p: np.ndarray, levels: Levels, start: np.ndarray, before: tuple | None = None,
            slope: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Secant steps on rho for each mean in `p` from `start`, the first step from the point `before` (rho and
    excess) or along `slope`: (level probabilities, rho, last slope, settled), settled where a step moved rho by
    less than the scalar solver's tolerance (rho is then the last point evaluated, and the probabilities its)."""
    icc, edges, w = levels.icc, levels.edges, levels.weights
    q = np.zeros((len(p), levels.count))
    x1 = start.copy()
    x0, f0 = before if before is not None else (np.full_like(start, np.nan), np.full_like(start, np.nan))
    x0, f0 = x0.copy(), f0.copy()
    s = slope.copy() if slope is not None else np.full_like(start, np.nan)
    settled = np.zeros(len(p), dtype=bool)
    active = np.arange(len(p))
    for _ in range(_SECANT_STEPS):
        q1 = _slice_means(p[active], x1[active], edges)
        f1 = _correlations(q1, w) - icc
        with np.errstate(divide="ignore", invalid="ignore"):
            secant = np.where(np.isnan(x0[active]), s[active], (f1 - f0[active]) / (x1[active] - x0[active]))
            x2 = x1[active] - f1 / secant
        done = np.abs(x2 - x1[active]) <= 1e-15 + 4 * np.finfo(float).eps * np.abs(x2)
        q[active[done]] = q1[done]
        settled[active[done]] = True
        s[active] = secant
        keep = ~done & np.isfinite(x2) & (x2 > icc) & (x2 < _RHO_MAX)
        x0[active[keep]], f0[active[keep]] = x1[active[keep]], f1[keep]
        x1[active[keep]] = x2[keep]
        active = active[keep]
        if len(active) == 0:
            break
    return q, x1, s, settled


def _slice_means(p, rho, edges: np.ndarray) -> np.ndarray:
    """Mean of the Beta(mean p, correlation rho) quantile function over each slice of u between `edges` (p and rho
    scalars: one value per slice; arrays of n: n x slices, each row computed exactly as its scalar would be).

    For X ~ Beta(a, b) with quantile x at u, E[X; X <= x] = p I_x(a+1, b), so a slice's mean is p ΔG / Δu with
    G(u) = I_x(a+1, b); G runs from 0 to 1, so the means average to p exactly. G is computed from whichever of
    x or y = 1 - x is below 1/2 (G = 1 - I_y(b, a+1) above), because at high correlation the quantile sits
    within 1e-300 of 0 or of 1. Past the smallest double the limits hold to double precision: G -> 0 as x -> 0,
    and I_y(b, a+1) -> (1 - u)(a + b)/a as y -> 0 (DLMF 8.17.20 with I_y(b, a) = 1 - u)."""
    one = np.ndim(p) == 0
    p, rho = np.atleast_1d(np.asarray(p, dtype=float)), np.atleast_1d(np.asarray(rho, dtype=float))
    a, b = (p * (1.0 - rho) / rho)[:, None], ((1.0 - p) * (1.0 - rho) / rho)[:, None]
    n, m = len(p), len(edges)
    low = np.broadcast_to(edges, (n, m)) <= special.betainc(a, b, 0.5)  # edges where the quantile is at most 1/2
    low[:, 0], low[:, -1] = True, False
    g = np.zeros((n, m))  # G(u) at the low edges
    t = np.zeros((n, m))  # 1 - G(u) at the high edges
    ab = np.broadcast_to(a, (n, m)), np.broadcast_to(b, (n, m))
    with np.errstate(divide="ignore", over="ignore", under="ignore"):
        at = low & (np.arange(m) > 0)  # low edges but the first (u = 0: G = 0)
        ai, bi = ab[0][at], ab[1][at]
        u = np.broadcast_to(edges, (n, m))[at]
        x = special.betaincinv(ai, bi, u)
        # The quantile is below the smallest double (returned as 0 or clamped at the smallest normal number).
        beyond = (x <= _TINY) | (special.betainc(ai, bi, x) > u * (1.0 + 1e-9))
        g[at] = np.where(beyond, 0.0, special.betainc(ai + 1.0, bi, x))
        at = ~low & (np.arange(m) < m - 1)  # high edges but the last (u = 1: 1 - G = 0)
        ai, bi = ab[0][at], ab[1][at]
        v = 1.0 - np.broadcast_to(edges, (n, m))[at]
        y = special.betaincinv(bi, ai, v)
        beyond = (y <= _TINY) | (special.betainc(bi, ai, y) > v * (1.0 + 1e-9))
        t[at] = np.where(beyond, v * (ai + bi) / ai, special.betainc(bi, ai + 1.0, y))
    # Differences within each side (no cancellation against 1), and the one slice that crosses from low to high.
    step = np.where(low[:, 1:], np.diff(g, axis=1), -np.diff(t, axis=1))
    rows, cross = np.arange(n), low.sum(axis=1) - 1
    step[rows, cross] = 1.0 - t[rows, cross + 1] - g[rows, cross]
    out = np.clip(p[:, None] * step / np.diff(edges), 0.0, 1.0)
    return out[0] if one else out
