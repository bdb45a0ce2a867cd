"""What an engine hands back: its per-variant tallies (sampled) or exact expectations, and its own extras.

One assembly (`sim.output.assemble`) turns any EngineOutput into the summary and tables of a Result, so every
engine fills the same summary keys in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from sim.model.plan import Plan
from sim.trace.exact import Exact
from sim.trace.schema import INSTANCE_SCHEMA
from sim.trace.tally import Tally


@dataclass
class EngineOutput:
    """The outcome of one engine run over every variant (`base` first)."""

    engine: str
    plans: dict[str, Plan]
    instances: int | None
    """Instances per variant (None for exact results)."""
    tallies: dict[str, Tally] = field(default_factory=dict)
    """Sampled engines: counts per variant."""
    exact: dict[str, Exact] = field(default_factory=dict)
    """The analytic engine: exact expectations per variant."""
    instances_table: pa.Table = field(default_factory=INSTANCE_SCHEMA.empty_table)
    instance_rows: dict[str, Any] | None = None
    """How `instances_table` relates to the run (mode, rows, of, note); None when it holds no instances."""
    variant_extra: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Keys the engine adds to a variant's summary block (the timeline's horizon-loss distribution)."""
    differences: dict[str, dict[str, Any]] | None = None
    """The engine's own paired variant differences; None: computed from tallies or exact results."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Top-level summary keys of this engine (the agent engine's policy, store and faults)."""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Engine-specific tables by name: `timeline`, `agent_trace`."""
