"""The result of a run: the summary and the trace tables as pandas DataFrames, and writing them to a folder."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.model.plan import Plan
from sim.output.run_folder import write_run_folder
from sim.scenario.load import dump_scenario_yaml
from sim.scenario.model import Scenario
from sim.trace.schema import INSTANCE_SCHEMA, STEP_COLUMNS

HEADLINE = ("p_failure", "expected_loss_per_instance", "expected_failure_loss_per_instance",
            "expected_escalation_cost_per_instance", "silent_failure_rate", "amplification",
            "root_errors_per_instance", "escalation_rate")
"""The per-variant figures of `Result.summary_table`."""


def tidy(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Summary rows as a DataFrame a pandas user expects: each `x_ci95` pair as float columns `x_low` and
    `x_high` (a bare `ci95` as `low` and `high`), text as strings and no value (None, or "" for 'no root
    cause') as NA."""
    frame = pd.DataFrame(rows)
    for col in [c for c in frame.columns if c == "ci95" or c.endswith("_ci95")]:
        stem = col.removesuffix("ci95")  # "x_" (or "" for a bare ci95 beside its value)
        pairs = frame.pop(col)
        at = frame.columns.get_loc(stem[:-1]) + 1 if stem[:-1] in frame.columns else len(frame.columns)
        frame.insert(at, f"{stem}low", [float(p[0]) if p else float("nan") for p in pairs])
        frame.insert(at + 1, f"{stem}high", [float(p[1]) if p else float("nan") for p in pairs])
    frame = frame.replace("", pd.NA)
    for col in frame.columns:
        if frame[col].dtype == object and frame[col].map(lambda v: v is pd.NA or v is None or isinstance(v, str)).all():
            frame[col] = frame[col].astype("string")
    return frame


@dataclass
class Result:
    """What `run` returns. Tables are pandas DataFrames; every row carries its variant."""

    summary: dict[str, Any]
    scenario: Scenario
    plans: dict[str, Plan]
    instances_arrow: pa.Table = field(default_factory=INSTANCE_SCHEMA.empty_table)
    steps: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(STEP_COLUMNS)))
    timeline: pd.DataFrame | None = None
    """Timeline engine only: one row per variant x replication x day."""
    agent_trace: pd.DataFrame | None = None
    """Agent engine only: one row per variant x instance x step (what the node read, decided, did; its truth)."""
    uncertainty: pd.DataFrame | None = None
    """Uncertainty runs only: one row per parameter draw x variant, its metrics and every uncertain input's value
    (`sim.metrics.uncertainty`; the summary's `uncertainty` block summarises it)."""
    sobol: pd.DataFrame | None = None
    """Sobol runs only: first-order and total indices per output x input group (`sim.metrics.sobol.COLUMNS`)."""
    loss_exceedance: pd.DataFrame | None = None
    """Uncertainty runs only: the loss-exceedance curves' bands, per instance and per month (loss_exceedance.csv)."""
    counterfactuals: pd.DataFrame | None = None
    """`--importance` only: the loss each counterfactual removes, per variant (`sim.metrics.importance`)."""
    importance: pd.DataFrame | None = None
    """`--importance` only: Birnbaum, Fussell-Vesely, RAW and RRW per basic event, per variant."""

    @cached_property
    def instances(self) -> pd.DataFrame:
        """One row per variant x instance (possibly a sample: see summary['instance_rows'])."""
        return self.instances_arrow.to_pandas()

    def _blocks(self) -> dict[str, dict[str, Any]]:
        return {"base": self.summary, **self.summary.get("variant_results", {})}

    def _per_variant(self, key: str) -> pd.DataFrame:
        return tidy([{"variant": name, **row} for name, b in self._blocks().items() for row in b[key]])

    @property
    def summary_table(self) -> pd.DataFrame:
        """One row per variant: the headline figures, each with `_low` / `_high` (95% CI; equal for exact runs,
        NA where an engine gives none)."""
        return tidy([{"variant": name, **{k: b.get(k) for k in HEADLINE}, **{f"{k}_ci95": b.get(f"{k}_ci95")
                                                                           for k in HEADLINE}}
                     for name, b in self._blocks().items()])

    @property
    def attribution(self) -> pd.DataFrame:
        """Share of action failures and of failure loss by root-cause step x error type."""
        return self._per_variant("attribution")

    @property
    def cascade(self) -> pd.DataFrame:
        """P(root error); P(action failure | root error), P(caught | root error) and P(masked | root error), which
        sum to 1; and action failures per root error, per root cause."""
        return self._per_variant("cascade")

    @property
    def pass_k(self) -> pd.DataFrame:
        """P(k attempts at the same instance all succeed), k = 1..8."""
        return self._per_variant("pass_k")

    @cached_property
    def sensitivity(self) -> pd.DataFrame | None:
        """One-at-a-time sensitivity of expected loss for every variant (`sim.metrics.sensitivity`; the `variant`
        column says which), computed on first use; None for a run without plans."""
        from sim.metrics.sensitivity import sensitivity

        tables = [sensitivity(plan) for plan in self.plans.values()]
        return pd.concat(tables, ignore_index=True) if tables else None

    def report(self, path: str | Path = "report.html") -> Path:
        """Write the HTML cascade report (and a markdown summary beside it); returns the HTML path."""
        from sim.output.report import write_report

        return write_report(self.summary, path, self.sensitivity, self.timeline, self.scenario.description)

    def markdown(self) -> str:
        """The markdown summary (for pull requests, chat, or a notebook's `display(Markdown(...))`)."""
        from sim.output.report import render_markdown

        return render_markdown(self.summary)

    def write(self, out_dir: str | Path) -> Path:
        """Write the run folder `out_dir` whole (an earlier run there is replaced, its report with it):
        summary.json, instances.parquet, steps.parquet, attribution/cascade/sensitivity CSVs, scenario.yaml,
        the engine's own tables, and manifest.json last. Returns the folder's absolute path."""
        summary = summary_json(self.summary, out_dir)  # before anything is written: a bad run replaces nothing

        def write_files(out: Path) -> None:
            # `out` is private until it is swapped in whole: plain writes suffice.
            pq.write_table(self.instances_arrow, out / "instances.parquet")
            self.steps.to_parquet(out / "steps.parquet", index=False)
            self.attribution.to_csv(out / "attribution.csv", index=False)
            self.cascade.to_csv(out / "cascade.csv", index=False)
            (out / "scenario.yaml").write_text(dump_scenario_yaml(self.scenario), encoding="utf-8")
            if self.timeline is not None:
                self.timeline.to_parquet(out / "timeline.parquet", index=False)
            if self.agent_trace is not None:
                self.agent_trace.to_parquet(out / "agent_trace.parquet", index=False)
            if self.uncertainty is not None:
                self.uncertainty.to_parquet(out / "uncertainty.parquet", index=False)
            for name in ("sobol", "counterfactuals", "importance", "loss_exceedance"):
                if getattr(self, name) is not None:
                    getattr(self, name).to_csv(out / f"{name}.csv", index=False)
            if self.sensitivity is not None:
                self.sensitivity.to_csv(out / "sensitivity.csv", index=False)
            (out / "summary.json").write_text(summary, encoding="utf-8")

        return write_run_folder(out_dir, write_files)


def summary_json(summary: dict[str, Any], folder: str | Path) -> str:
    """summary.json's text. A non-finite figure has no JSON form and no meaning: it is a bug upstream, reported
    with where it is, before anything is written."""
    try:
        return json.dumps(summary, indent=2, allow_nan=False) + "\n"
    except ValueError:
        where, value = _non_finite(summary)
        raise ValueError(f"summary.json would hold {value} at {where}: a non-finite figure is a bug in "
                         f"cascadesim (please report it); nothing was written, {folder} is as it was") from None


def _non_finite(value: Any, path: str = "") -> tuple[str, Any] | tuple[None, None]:
    """The first non-finite number inside `value` and its path (a.b.0.c)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "(top)", value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else ()
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}" if path else str(key))
        if found[0] is not None:
            return found
    return None, None
