"""The points of a sweep: grids and lists crossed, zip groups moved together, a design's range parameters drawn
(a seeded Latin hypercube through the uncertainty analysis's `design`, or seeded uniforms)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sim.core.seeding import stream
from sim.metrics.uncertainty import design as lhs_design
from sim.scenario.model import Sweep
from sim.scenario.sweep import axes, listed_values

RANDOM_STREAM = "sweep/design"
"""The random stream of a `random` design, keyed like every other stream (the seed is the scenario's)."""


@dataclass(frozen=True)
class Point:
    """One parameter point: its index in the study and the value of every swept parameter (dotted path)."""

    index: int
    coordinates: dict[str, Any]


def expand(sweep: Sweep, seed: int) -> list[Point]:
    """Every point of `sweep` in a fixed order (the first axis written varies slowest); the same sweep and seed
    give the same points."""
    choices = []
    for axis in axes(sweep):
        first = sweep.parameters[axis[0]]
        if first.range is not None:
            choices.append(_drawn(sweep, axis, seed))
        else:
            choices.append(list(zip(*(listed_values(sweep.parameters[p]) for p in axis), strict=True)))
    names = [p for axis in axes(sweep) for p in axis]
    out = []
    for i, combo in enumerate(itertools.product(*choices)):
        values = [v for group in combo for v in group]
        out.append(Point(i, dict(zip(names, values, strict=True))))
    order = list(sweep.parameters)  # coordinates in the order the parameters were written
    return [Point(p.index, {k: p.coordinates[k] for k in order}) for p in out]


def _drawn(sweep: Sweep, axis: list[str], seed: int) -> list[tuple[float, ...]]:
    n, dims = sweep.design.points, len(axis)
    if sweep.design.kind == "lhs":
        u = lhs_design(n, dims, seed, "lhs")
    else:
        u = stream(seed, RANDOM_STREAM, 0).random((n, dims))
    lows = [sweep.parameters[p].range[0] for p in axis]
    highs = [sweep.parameters[p].range[1] for p in axis]
    return [tuple(float(lo + (hi - lo) * u[i, j]) for j, (lo, hi) in enumerate(zip(lows, highs, strict=True)))
            for i in range(n)]


__all__ = ["Point", "expand"]
