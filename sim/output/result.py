"""The result of a run: the summary and the trace tables as pandas DataFrames, and writing them to a folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.core.atomic import write_text, write_with
from sim.model.plan import Plan
from sim.scenario.load import dump_scenario_yaml
from sim.scenario.model import Scenario
from sim.trace.schema import INSTANCE_SCHEMA, STEP_COLUMNS


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

    @cached_property
    def instances(self) -> pd.DataFrame:
        """One row per variant x instance (possibly a sample: see summary['instance_rows'])."""
        return self.instances_arrow.to_pandas()

    def _per_variant(self, key: str) -> pd.DataFrame:
        blocks = {"base": self.summary, **self.summary.get("variant_results", {})}
        return pd.DataFrame([{"variant": name, **row} for name, b in blocks.items() for row in b[key]])

    @property
    def attribution(self) -> pd.DataFrame:
        """Share of action failures and of failure loss by root-cause step x error type."""
        return self._per_variant("attribution")

    @property
    def cascade(self) -> pd.DataFrame:
        """P(root error), P(action failure | root error) and action failures per root error, per root cause."""
        return self._per_variant("cascade")

    @property
    def pass_k(self) -> pd.DataFrame:
        """P(k attempts at the same instance all succeed), k = 1..8."""
        return self._per_variant("pass_k")

    @cached_property
    def sensitivity(self) -> pd.DataFrame | None:
        """One-at-a-time sensitivity of expected loss for the base variant (`sim.metrics.sensitivity`), computed
        on first use; None for a run without a base plan."""
        from sim.metrics.sensitivity import sensitivity

        return sensitivity(self.plans["base"]) if "base" in self.plans else None

    def report(self, path: str | Path = "report.html") -> Path:
        """Write the HTML cascade report (and a markdown summary beside it); returns the HTML path."""
        from sim.output.report import write_report

        return write_report(self.summary, path, self.sensitivity, self.timeline, self.scenario.description)

    def markdown(self) -> str:
        """The markdown summary (for pull requests, chat, or a notebook's `display(Markdown(...))`)."""
        from sim.output.report import render_markdown

        return render_markdown(self.summary)

    def write(self, out_dir: str | Path) -> Path:
        """Write summary.json, instances.parquet, steps.parquet, attribution/cascade/sensitivity CSVs and
        scenario.yaml (and the engine's own tables)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_with(out / "instances.parquet", lambda p: pq.write_table(self.instances_arrow, p))
        write_with(out / "steps.parquet", lambda p: self.steps.to_parquet(p, index=False))
        write_with(out / "attribution.csv", lambda p: self.attribution.to_csv(p, index=False))
        write_with(out / "cascade.csv", lambda p: self.cascade.to_csv(p, index=False))
        write_text(out / "scenario.yaml", dump_scenario_yaml(self.scenario))
        if self.timeline is not None:
            write_with(out / "timeline.parquet", lambda p: self.timeline.to_parquet(p, index=False))
        if self.agent_trace is not None:
            write_with(out / "agent_trace.parquet", lambda p: self.agent_trace.to_parquet(p, index=False))
        if self.sensitivity is not None:
            write_with(out / "sensitivity.csv", lambda p: self.sensitivity.to_csv(p, index=False))
        # summary.json last: its presence says the folder is complete.
        write_text(out / "summary.json", json.dumps(self.summary, indent=2, allow_nan=False) + "\n")
        return out

