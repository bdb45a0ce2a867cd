"""What a measurement is worth before choosing a variant: the expected value of perfect information (EVPI) and of
partial perfect information about a group of inputs (EVPPI), in money per instance, from the draws of an
uncertainty run. The decision is the variant with the lowest expected loss per instance.

EVPPI(phi) = E_phi[ max_v E[L_best - L_v | phi] ], where `best` is the variant chosen on current information.
The conditional means are estimated nonparametrically by partitioning the draws on phi into cells of about
sqrt(N) draws (sorted into equal bins for one input: Strong & Oakley 2013 / Sadatsafavi et al. 2013; a k-d
partition at medians of the inputs' design coordinates for several). Using a partition (each draw in exactly
one cell) makes two properties exact for any sample: EVPPI <= EVPI, and an input whose knowledge never changes
the decision has EVPPI 0. The estimate is biased upward by cell noise, about sd(L_best - L_v) / sqrt(cell size)
at worst; more draws shrink it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sim.core.errors import CascadeError


def evpi(losses: Mapping[str, np.ndarray]) -> float:
    """Expected value of perfect information per instance: how much lower the expected loss would be if every
    uncertain input were known before choosing (`losses`: variant -> loss per instance at each draw)."""
    gains = _gains(losses)
    return float(gains.max(axis=0).mean())


def evppi(losses: Mapping[str, np.ndarray], coordinates: np.ndarray) -> float:
    """Expected value of partial perfect information per instance about the inputs whose values at each draw are
    the columns of `coordinates` (draws x inputs; ranks are what counts, so design coordinates or values)."""
    gains = _gains(losses)
    coords = np.asarray(coordinates, dtype=float).reshape(gains.shape[1], -1)
    cells = partition(coords, max(2, int(round(np.sqrt(len(coords))))))
    total = 0.0
    for cell in cells:
        total += len(cell) * gains[:, cell].mean(axis=1).max()
    return float(total / len(coords))


def _gains(losses: Mapping[str, np.ndarray]) -> np.ndarray:
    """variants x draws: loss of the variant best on current information minus each variant's loss (>= 0 where
    that variant would have been better at that draw; the best's own row is 0)."""
    if len(losses) < 2:
        raise CascadeError("the value of information needs a decision: at least two variants")
    table = np.stack([np.asarray(v, dtype=float) for v in losses.values()])
    best = int(np.argmin(table.mean(axis=1)))
    return table[best] - table


def partition(coords: np.ndarray, cell_size: int) -> list[np.ndarray]:
    """Indices of the draws in each cell of a k-d partition: split at the median of the coordinate whose ranks
    spread most, until cells hold fewer than 2 x `cell_size` draws (one coordinate: equal bins of the sorted
    draws)."""
    ranks = np.argsort(np.argsort(coords, axis=0, kind="stable"), axis=0, kind="stable").astype(float)
    out: list[np.ndarray] = []
    stack = [np.arange(len(coords))]
    while stack:
        idx = stack.pop()
        if len(idx) < 2 * cell_size:
            out.append(idx)
            continue
        r = ranks[idx]
        axis = int(np.argmax(r.max(axis=0) - r.min(axis=0)))
        order = idx[np.argsort(r[:, axis], kind="stable")]
        half = len(order) // 2
        stack += [order[half:], order[:half]]
    return out


__all__ = ["evpi", "evppi", "partition"]
