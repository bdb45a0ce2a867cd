"""What the analytic engine emits instead of sampled traces: exact expectations per instance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Exact:
    """Exact expectations per instance (currency amounts in the scenario's currency)."""

    p_failure: float
    silent_failure_rate: float
    expected_failure_loss: float
    expected_escalation_cost: float
    action_failures: float
    """Expected action failures per instance."""
    originated: np.ndarray
    """P(root r originates) per root."""
    failures_from_root: np.ndarray
    """Expected action failures per instance caused by root r."""
    loss_from_root: np.ndarray
    """Expected failure loss per instance caused by root r."""
    any_failure_from_root: np.ndarray
    """P(at least one action fails because of root r)."""
    caught_from_root: np.ndarray
    """P(root r originates, a gate catches its error, and it causes no action failure)."""
    pass_k: np.ndarray
    """P(k independent attempts at the same instance all succeed), k = 1..8."""

    @property
    def masked_from_root(self) -> np.ndarray:
        """P(root r originates, causes no action failure, and no gate catches it). The difference of sums taken
        in different orders leaves rounding of a few ulps where nothing is masked: below 1e-12 of P(r) it is 0."""
        masked = self.originated - self.any_failure_from_root - self.caught_from_root
        return np.where(masked > 1e-12 * self.originated, masked, 0.0)

    @property
    def root_errors(self) -> float:
        return float(self.originated.sum())
