"""A Result from observed instances (engine `recorded`): what each step did per instance, compared with ground
truth (`sim.trace.observed`), turned into the same tables every engine writes. Used by the bridge to users'
LangGraph apps (`agents.bridge`) and by `cascade import` (`sim.otel.ingest`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.model.plan import Plan
from sim.output.assemble import assemble
from sim.output.result import Result
from sim.scenario.model import Scenario
from sim.trace.engine_output import EngineOutput
from sim.trace.observed import InstanceTokens, Observation, block_trace, instance_tokens
from sim.trace.record import rows_kept
from sim.trace.schema import INSTANCE_SCHEMA, instance_outcomes, instance_table
from sim.trace.tally import Tally

ENGINE = "recorded"


def recorded_result(scenario: Scenario, plan: Plan, seen: Mapping[int, Mapping[str, Observation]],
                    rows: Callable[[int, InstanceTokens], list[dict]], extra: dict[str, Any],
                    levels: Mapping[int, int] | None = None) -> Result:
    """The Result of observed instances (`seen`: instance number -> step id -> observation; instance numbers
    are kept as given). `rows(instance, tokens)` gives the instance's rows of the `agent_trace` table; `extra`
    is the summary's `recorded` block (where the records came from); `levels` the instances' difficulty levels
    when they are known (a trace exported by cascadesim carries its own)."""
    instances = sorted(seen)
    tokens = [instance_tokens(plan, seen[i]) for i in instances]
    # Tallies number instances 0..n-1 within one block; the tables keep the given numbers.
    level = np.array([levels[i] for i in instances], dtype=np.int16) if levels else None
    trace = block_trace(plan, tokens, level)
    out = instance_outcomes(plan, trace)
    tally = Tally(plan)
    tally.add(trace, out)
    n = len(instances)
    table = instance_table(plan, trace, out, 0, n)
    at = table.schema.get_field_index("instance")
    table = table.set_column(at, INSTANCE_SCHEMA.field("instance"), pa.array(instances, pa.int64()))
    trace_rows = [row for i, it in zip(instances, tokens, strict=True) for row in rows(i, it)]
    return assemble(scenario, EngineOutput(
        engine=ENGINE, plans={plan.variant: plan}, instances=n, tallies={plan.variant: tally},
        instances_table=table, instance_rows=rows_kept(n, n), extra={ENGINE: extra},
        tables={"agent_trace": pd.DataFrame(trace_rows)}))
