"""Recording a sampled run block by block: tallies, the kept instance rows, pass^k attempts, the steps table.

The Monte Carlo, timeline and agent engines and the bridge's recorded runs all record through here, so their
tables are built one way.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.model.plan import Plan
from sim.trace.schema import (
    INSTANCE_SCHEMA,
    PASS_K,
    STEP_COLUMNS,
    BlockTrace,
    InstanceOutcomes,
    PairedOutcomes,
    instance_outcomes,
    instance_table,
)
from sim.trace.tally import Tally


def count_block(plan: Plan, tally: Tally, tables: list[pa.Table], trace: BlockTrace, first: int, max_rows: int,
                pass_n: int, base_out: InstanceOutcomes | PairedOutcomes | None,
                attempt: Callable[[int, int], BlockTrace],
                add_block: Callable[[Tally, BlockTrace, PairedOutcomes | None], PairedOutcomes] | None = None,
                ) -> InstanceOutcomes | PairedOutcomes:
    """Tally one block's trace (paired with the base variant's outcomes when given), keep the rows of its
    instances below `max_rows`, and for those below `pass_n` the pass^k attempts: `attempt(a, m)` is the trace
    of attempt a at the block's first m instances. `add_block` tallies the trace as `Tally.add` does, faster (the
    fused kernel's compiled tally); the instances' outcomes are then built only where rows or pass^k need them.
    Returns what the other variants' blocks pair with."""
    take = min(trace.n, max_rows - first)
    m = min(trace.n, pass_n - first)
    if add_block is None:
        out = paired = instance_outcomes(plan, trace)
        tally.add(trace, out, base_out)
    else:
        paired = add_block(tally, trace, base_out)
        out = instance_outcomes(plan, trace) if take > 0 or m > 0 else None
    if take > 0:
        tables.append(instance_table(plan, trace, out, first, take))
    if m > 0:
        attempts = [~out.failed[:m]] + [~instance_outcomes(plan, attempt(a, m)).failed for a in range(1, PASS_K)]
        tally.add_pass_k(np.column_stack(attempts))
    return paired


def instance_rows(tables: dict[str, list[pa.Table]]) -> pa.Table:
    """Every variant's kept instance rows as one table."""
    parts = [t for name in tables for t in tables[name]]
    return pa.concat_tables(parts).combine_chunks() if parts else INSTANCE_SCHEMA.empty_table()


def steps_table(tallies: dict[str, Tally]) -> pd.DataFrame:
    """Per variant x step: outcome counts by error type and root-cause step (long format)."""
    rows = [(name, step, kind, *counts) for name, t in tallies.items() for step, kind, *counts in t.step_rows()]
    return pd.DataFrame(rows, columns=list(STEP_COLUMNS))


def rows_kept(n: int, max_rows: int) -> dict:
    """How a sampled run's instance table relates to its n instances per variant (the first `max_rows`)."""
    sampled = n > max_rows
    return {"mode": "sampled" if sampled else "all", "rows": min(n, max_rows), "of": n,
            "note": ("instances.parquet holds the first rows of each variant; instances are independent and "
                     "identically distributed, so they are a uniform sample; every summary figure uses all "
                     "instances") if sampled else ""}
