"""Per-instance latent difficulty: discrete levels shared by every engine, so they compute the same model.

Each error event with mean probability p gets, on an instance at difficulty quantile u, the probability
Q(u) of a Beta distribution with mean p. All steps share u (comonotone), so hard instances are hard everywhere.
u is cut into levels (finer in both tails, where rare hard instances live); a level's probability is the exact
conditional mean of Q over its slice of u, so the mean over levels is exactly p. Averaging within a level
loses a little variance, so the Beta's own correlation is raised until the *levels* give exactly `icc`: the
correlation between two attempts at the same instance, for every error event.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, special


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
        """Probability of an event with mean `p` at each level (shape: levels)."""
        if self.icc == 0.0 or p <= 0.0 or p >= 1.0:
            return np.full(self.count, p)
        if p > 0.5:
            # Q_p(u) = 1 - Q_{1-p}(1 - u), and the levels are symmetric: this keeps the precision near 1.
            return 1.0 - self.probabilities(1.0 - p)[::-1]
        return np.array(_level_probabilities(p, self.icc, tuple(self.edges.tolist())))

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
    weights = np.diff(edges)

    def at(rho: float) -> np.ndarray:
        a, b = p * (1.0 - rho) / rho, (1.0 - p) * (1.0 - rho) / rho
        x = special.betaincinv(a, b, edges)
        x[0], x[-1] = 0.0, 1.0
        # E[X; X in slice] = mean * (I_x1(a+1, b) - I_x0(a+1, b)) for X ~ Beta(a, b).
        return np.clip(p * np.diff(special.betainc(a + 1.0, b, x)) / weights, 0.0, 1.0)

    def excess(rho: float) -> float:
        q = at(rho)
        return float(((q - p) ** 2) @ weights) / (p * (1.0 - p)) - icc

    hi = min(0.999, icc * 4.0)
    if excess(icc) >= 0:
        rho = icc
    elif excess(hi) <= 0:  # cannot be reached with these levels: the closest there is
        rho = hi
    else:
        rho = optimize.brentq(excess, icc, hi, xtol=1e-14)
    return tuple(at(rho).tolist())
