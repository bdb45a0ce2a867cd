"""Per-instance latent difficulty: discrete levels shared by every engine, so they compute the same model.

Each error event with mean probability p gets, on an instance at difficulty quantile u, the probability
Q(u) of a Beta(p(1-icc)/icc, (1-p)(1-icc)/icc) distribution: its mean is p and the correlation between two
attempts at the same instance is icc. All steps share u (comonotone), so hard instances are hard everywhere.
u is cut into levels (finer in both tails, where rare hard instances live); a level's probability is the exact
conditional mean of Q over its slice of u, so the mean over levels is exactly p.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


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
        tail = count // 4
        inner = count - 2 * tail
        edges = np.concatenate([
            [0.0], np.geomspace(1e-6, 0.05, tail), np.linspace(0.05, 0.95, inner + 1)[1:-1],
            1.0 - np.geomspace(0.05, 1e-6, tail), [1.0]])
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
        a = p * (1.0 - self.icc) / self.icc
        b = (1.0 - p) * (1.0 - self.icc) / self.icc
        x = special.betaincinv(a, b, self.edges)
        x[0], x[-1] = 0.0, 1.0
        # E[X; X in slice] = mean * (I_x1(a+1, b) - I_x0(a+1, b)) for X ~ Beta(a, b).
        partial = p * np.diff(special.betainc(a + 1.0, b, x))
        return np.clip(partial / self.weights, 0.0, 1.0)

    def sample(self, u: np.ndarray) -> np.ndarray:
        """Level index for each uniform in `u` (the instance's difficulty quantile)."""
        return np.searchsorted(self.edges[1:-1], u, side="right").astype(np.int32)
