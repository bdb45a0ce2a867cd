"""A sweep's parameters as values: grids expanded, zipped groups and designs checked. Which values a parameter
accepts is decided by the scenario itself: `sim.scenario.load` applies each value through the variants' dotted
`set` (`sim.scenario.overrides`) and validates the result, so a sweep accepts exactly what a variant would."""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.core import limits
from sim.scenario.checks import Located, did_you_mean
from sim.scenario.model import Sweep, SweepParameter


def listed_values(parameter: SweepParameter) -> list[Any]:
    """The values of a grid or list parameter in order (a grid's are evenly spaced floats, ends included);
    a `range` parameter has none of its own (its design draws them): []."""
    if parameter.grid is not None:
        start, stop, count = parameter.grid
        return [float(v) for v in np.linspace(start, stop, count)] if count > 1 else [float(start)]
    return list(parameter.values) if parameter.values is not None else []


def axes(sweep: Sweep) -> list[list[str]]:
    """The crossed axes of a sweep, in the order first written: each zip group is one axis, every other grid or
    list parameter its own, and the design's `range` parameters together one axis (last)."""
    zipped = {path: group for group in sweep.zip for path in group}
    out: list[list[str]] = []
    for path, parameter in sweep.parameters.items():
        if parameter.range is not None:
            continue
        group = zipped.get(path, [path])
        if group not in out:
            out.append(group)
    ranged = [p for p, parameter in sweep.parameters.items() if parameter.range is not None]
    return out + ([ranged] if ranged else [])


def check_sweep(sweep: Sweep) -> list[Located]:
    """Problems of a sweep's shape (zip groups, design, size) as (field path, message); [] when sound. Whether
    each value suits its parameter is checked by loading (see the module docstring)."""
    out: list[Located] = []
    where = ("sweep",)
    seen: dict[str, int] = {}
    for g, group in enumerate(sweep.zip):
        if len(group) < 2:
            out.append((where + ("zip", g), "a zip group moves two or more parameters together"))
        lengths = {}
        for path in group:
            parameter = sweep.parameters.get(path)
            if parameter is None:
                out.append((where + ("zip", g), f"'{path}' is not a swept parameter"
                                                f"{did_you_mean(path, sweep.parameters)}"))
            elif parameter.range is not None:
                out.append((where + ("zip", g), f"'{path}' is drawn by the design (range); zip takes grids and lists"))
            else:
                lengths[path] = len(listed_values(parameter))
            if path in seen:
                out.append((where + ("zip", g), f"'{path}' is already in zip group {seen[path]}"))
            seen[path] = g
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{p}: {n}" for p, n in lengths.items())
            out.append((where + ("zip", g), f"zipped parameters need as many values each, got {shown}"))
    ranged = [p for p, parameter in sweep.parameters.items() if parameter.range is not None]
    if ranged and sweep.design is None:
        out.append((where + ("parameters", ranged[0], "range"), "a range is drawn by a design: add "
                                                                "design: {kind: lhs, points: N} (or kind: random)"))
    if sweep.design is not None and not ranged:
        out.append((where + ("design",), "a design draws range parameters; give at least one "
                                         "parameter a range: [low, high]"))
    if out:
        return out
    total = len(sweep.engines)
    for axis in axes(sweep):
        first = sweep.parameters[axis[0]]
        total *= sweep.design.points if first.range is not None else len(listed_values(first))
    if total > limits.MAX_SWEEP_POINTS:
        out.append((where, f"{total:,} points (engines included) is past the bound of "
                           f"{limits.MAX_SWEEP_POINTS:,}; sweep fewer values or split the study"))
    return out


__all__ = ["listed_values", "axes", "check_sweep"]
