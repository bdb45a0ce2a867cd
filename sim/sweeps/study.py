"""`sweep(scenario, ...)`: a whole study. Expand the points, cut them into content-addressed work units, skip the
units the folder already holds, run the others on Dask, keep each as it completes, then write the table
(`sweep.parquet`), the study's summary (`sweep.json`) and the break-even frontiers.

Cheap analytic points go in batches of `BATCH_POINTS` per task, evaluated in one walk (`evaluate_points`, the
mechanism the uncertainty analysis uses); batches are cut in point order from the whole study, so a batch
holds the same points whatever the workers or what was resumed. Every other point is one task: a whole
`sim.run` of the scenario with the point's values, written as a run folder under `points/`.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sim.core.atomic import write_text, write_with
from sim.core.errors import CascadeError, ScenarioError
from sim.core.yaml_source import SourceMap
from sim.engines.registry import get_engine
from sim.model.plan import compile_plan
from sim.scenario.load import dump_scenario_yaml, load_scenario, resolve_variants, scenario_from_dict
from sim.scenario.model import Scenario
from sim.scenario.overrides import apply_set
from sim.sweeps.cluster import WORKER_WAIT_SECONDS, compute, dask_client
from sim.sweeps.frontier import break_even
from sim.sweeps.points import Point, expand
from sim.sweeps.table import sweep_table
from sim.sweeps.tasks import empty_row, run_point
from sim.sweeps.units import SweepFolder, WorkUnit, unit_key

BATCH_POINTS = 64
"""Analytic points per task (one batched walk per variant). Fixed, so that a batch holds the same points
however many workers run the study (the batched walk's last bits depend on what it is batched with)."""

POINT_INSTANCE_ROWS = 100_000
"""Per-instance rows kept in each point's run folder, per variant (the table holds the point's figures)."""


def sweep(scenario: Scenario | str | Path, *, out: str | Path | None = None, engines: Sequence[str] | None = None,
          instances: int | None = None, client: Any = None, scheduler: str | None = None,
          workers: int | None = None, progress: Callable[[int, int], None] | None = None,
          log: Callable[[str], None] | None = None, worker_wait: float = WORKER_WAIT_SECONDS) -> pd.DataFrame:
    """Run the scenario's `sweep:` study and return its table (`sim.sweeps.table`), also written to
    `out/sweep.parquet` with `out/sweep.json` and the points' run folders. `out` None: a temporary folder (nothing
    kept). Dask: the caller's `client`, else the scheduler at `scheduler`, else a LocalCluster of `workers`
    processes. `engines` and `instances` override the sweep block's. A study re-run with the same `out`
    computes only the work units its folder does not hold; `log(message)` says how many were reused.
    `progress(done, total)` counts points (x engines). A study whose scheduler has had no worker for
    `worker_wait` seconds stops (CascadeError) with the completed points kept."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if scenario.sweep is None:
        raise CascadeError(f"scenario '{scenario.name}' has no sweep: block; add one (sweep: {{parameters: "
                           "{retrievers.NAME.rates.role_swap: {grid: [0, 0.05, 11]}}}}) or give --grid / --values")
    engines = list(engines or scenario.sweep.engines)
    for engine in engines:
        get_engine(engine)  # an unknown engine is refused before anything runs
    n_instances = instances if instances is not None else scenario.sweep.instances
    points = expand(scenario.sweep, scenario.seed)
    variants = ["base", *(v.name for v in scenario.variants)]
    say = log or (lambda message: None)
    with tempfile.TemporaryDirectory(prefix="cascade-sweep-") as scratch:
        folder = SweepFolder.open(out if out is not None else scratch, scenario.name)
        units, rows, where = plan_units(scenario, points, engines, n_instances, variants)
        todo = []
        for unit in units:
            kept = folder.record(unit.key)
            if kept is None:
                todo.append(unit)
            else:
                _place(rows, unit, kept)
        total = len(points) * len(engines)
        reused = sum(len(u.points) for u in units) - sum(len(u.points) for u in todo)
        say(f"{total:,} points in {len(units):,} work units: {len(units) - len(todo):,} units ({reused:,} points) "
            f"reused from {folder.path}, {len(todo):,} to compute")
        done = total - sum(len(u.points) for u in todo)
        if progress:
            progress(done, total)
        if todo:
            # An engine that spreads one run over the workers (agent) runs its points from here, one at a time.
            driven = [u for u in todo if get_engine(u.engine).distributes]
            with dask_client(client, scheduler, workers) as dask:
                finished = compute(dask, [u for u in todo if u not in driven], worker_wait)
                for unit, got, result, keep in itertools.chain(finished, _driven(driven, dask, worker_wait)):
                    if keep:
                        folder.keep(unit, got, result)
                    _place(rows, unit, got)
                    done += len(unit.points)
                    if progress:
                        progress(done, total)
        for unit in units:  # a folder only where the point's run was kept
            if unit.kind == "run":
                where[(unit.points[0], unit.engine)] = (unit.key, f"points/{unit.key}"
                                                        if folder.run_folder(unit.key).is_dir() else None)
        table = sweep_table(points, engines, variants, rows, where)
        summary = study_summary(scenario, engines, points, table, len(units), len(units) - len(todo))
        if out is not None:
            write_with(folder.path / "sweep.parquet", lambda tmp: table.to_parquet(tmp, index=False))
            write_text(folder.path / "sweep.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    table.attrs["sweep"] = summary
    return table


def plan_units(scenario: Scenario, points: list[Point], engines: Sequence[str], instances: int | None,
               variants: list[str]) -> tuple[list[WorkUnit], dict, dict]:
    """The study's work units, the rows known before anything runs (points that cannot be built fail here) and
    each (point, engine)'s unit key and run folder (filled for the units as they are placed)."""
    paths = list(scenario.sweep.parameters)
    rows: dict[tuple[int, str], list[dict]] = {}
    where: dict[tuple[int, str], tuple[str | None, str | None]] = {}
    content = json.loads(scenario.model_dump_json(exclude={"sweep"}))
    units: list[WorkUnit] = []
    plans = _batchable(scenario, paths)
    for engine in engines:
        if engine == "analytic" and plans is not None:
            own = {v.name: [p for p in paths if p in v.set] for v in scenario.variants}
            for start in range(0, len(points), BATCH_POINTS):
                chunk = points[start:start + BATCH_POINTS]
                values = [[float(p.coordinates[k]) for k in paths] for p in chunk]
                key = unit_key({"kind": "batch", "engine": engine, "scenario": content, "paths": paths,
                                "values": values})
                index = tuple(p.index for p in chunk)
                units.append(WorkUnit(key, engine, index, "batch", tuple(variants),
                                      (plans, paths, own, values, list(index))))
                where.update({(i, engine): (key, None) for i in index})
            continue
        spec = get_engine(engine)
        n = instances if instances is not None else (spec.default_instances(scenario) if spec.default_instances
                                                     else scenario.instances)
        for point in points:
            try:
                at = point_scenario(scenario, point)
            except CascadeError as exc:
                rows[(point.index, engine)] = [empty_row(point.index, v, _one_line(exc)) for v in variants]
                where[(point.index, engine)] = (None, None)
                continue
            key = unit_key({"kind": "run", "engine": engine, "instances": n,
                            "scenario": json.loads(at.model_dump_json(exclude={"sweep"}))})
            units.append(WorkUnit(key, engine, (point.index,), "run", tuple(variants),
                                  (at, engine, n, point.index, POINT_INSTANCE_ROWS)))
            where[(point.index, engine)] = (key, None)
    return units, rows, where


def point_scenario(scenario: Scenario, point: Point) -> Scenario:
    """The scenario at a point: the point's values set on the scenario as a variant's `set` would set them
    (`sim.scenario.overrides`), validated whole; each variant's own `set` applies on top of it."""
    data = yaml.safe_load(dump_scenario_yaml(scenario))
    data.pop("sweep", None)
    try:
        return scenario_from_dict(apply_set(data, point.coordinates, (), SourceMap()))
    except ScenarioError as exc:
        raise CascadeError("; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in exc.problems)) from None


def _batchable(scenario: Scenario, paths: list[str]) -> dict | None:
    """Each variant's plan when every swept path is a numeric parameter every variant's plan has (then the
    analytic engine evaluates points as parameter changes of one plan), else None."""
    try:
        plans = {name: compile_plan(s, name) for name, s in resolve_variants(scenario).items()}
    except CascadeError:
        return None
    ok = all(p in plan.parameters for plan in plans.values() for p in paths)
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool)
                  for parameter in scenario.sweep.parameters.values()
                  for v in (parameter.values or []))
    return plans if ok and numeric else None


def _driven(units: list[WorkUnit], dask: Any, worker_wait: float):
    """Run points whose engine spreads its own work over `dask`'s workers, from the client, one at a time."""
    for unit in units:
        got, result = run_point(*unit.payload, options={"client": dask, "worker_wait": worker_wait})
        yield unit, got, result, True


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready records (JSON has no NaN: a missing value is null)."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _place(rows: dict, unit: WorkUnit, got: list[dict]) -> None:
    for point in unit.points:
        rows[(point, unit.engine)] = [r for r in got if r["point"] == point]


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def study_summary(scenario: Scenario, engines: Sequence[str], points: list[Point], table: pd.DataFrame,
                  units: int, reused: int) -> dict[str, Any]:
    """`sweep.json`: what was swept, how the points ran, which failed and why, and the break-even frontiers."""
    sweep = scenario.sweep
    failed = table[table["status"] == "failed"]
    return {
        "scenario": scenario.name, "seed": scenario.seed, "currency": scenario.currency,
        "parameters": {p: spec.model_dump(mode="json", exclude_none=True) for p, spec in sweep.parameters.items()},
        "zip": sweep.zip, "design": sweep.design.model_dump(mode="json") if sweep.design else None,
        "engines": list(engines), "variants": ["base", *(v.name for v in scenario.variants)],
        "points": len(points), "rows": len(table), "failed_rows": len(failed),
        "failed": [{"point": int(r.point), "engine": r.engine, "variant": r.variant, "error": r.error}
                   for r in failed.itertuples()][:1000],
        "units": {"total": units, "reused": reused, "computed": units - reused},
        "frontier": _records(break_even(table, list(sweep.parameters))),
    }


__all__ = ["sweep", "plan_units", "point_scenario", "BATCH_POINTS"]
