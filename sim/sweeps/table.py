"""The sweep table: one row per point x engine x variant with the point's coordinates (one column per swept
parameter, named by its path) and every figure with its 95% interval as float columns `x_low` / `x_high`, as
`Result.summary_table` gives them. Rows are in study order (point, engine as listed, variant as declared), so
the same study gives the same table, byte for byte, whatever the workers and whatever was resumed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sim.sweeps.points import Point
from sim.sweeps.tasks import FIGURES

KEYS = ("point", "engine", "variant")
TRAILING = ("status", "error", "unit", "run_folder")


def sweep_table(points: Sequence[Point], engines: Sequence[str], variants: Sequence[str],
                rows: Mapping[tuple[int, str], list[dict[str, Any]]],
                units: Mapping[tuple[int, str], tuple[str | None, str | None]]) -> pd.DataFrame:
    """Assemble the table from each (point, engine)'s rows and its (unit key, run folder)."""
    order = {v: i for i, v in enumerate(variants)}
    records = []
    for point in points:
        for engine in engines:
            unit, folder = units[(point.index, engine)]
            got = sorted(rows[(point.index, engine)], key=lambda r: order.get(r["variant"], len(order)))
            for row in got:
                records.append({"point": point.index, "engine": engine, "variant": row["variant"],
                                **point.coordinates, "status": row["status"], "error": row["error"],
                                "unit": unit, "run_folder": folder,
                                **{k: row[k] for k in _figure_columns()}})
    paths = list(points[0].coordinates) if points else []
    columns = [*KEYS, *paths, *TRAILING, *_figure_columns()]
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["point"] = frame["point"].astype("int64")
    for col in (*KEYS[1:], *TRAILING):
        frame[col] = frame[col].astype("string")
    for path in paths:
        frame[path] = _coordinate(frame[path])
    for col in _figure_columns():
        frame[col] = frame[col].astype("float64")
    return frame


def _figure_columns() -> list[str]:
    return [f"{name}{suffix}" for name in FIGURES for suffix in ("", "_low", "_high")]


def _coordinate(values: pd.Series) -> pd.Series:
    """Whole numbers as int64, other numbers as float64, anything else as text."""
    items = values.tolist()
    if all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in items):
        if all(float(v).is_integer() and isinstance(v, int | np.integer) for v in items):
            return values.astype("int64")
        return values.astype("float64")
    return values.map(str).astype("string")


__all__ = ["sweep_table", "KEYS"]
