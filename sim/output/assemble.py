"""One result assembly for every engine: the summary header, a block per variant, the paired differences,
and the tables (DESIGN.md, summary.json)."""

from __future__ import annotations

from typing import Any

from sim.metrics.summary import exact_difference, paired_difference, summary_from_exact, summary_from_tally
from sim.output.result import Result
from sim.scenario.model import Scenario
from sim.trace.engine_output import EngineOutput
from sim.trace.record import steps_table


def summary_header(scenario: Scenario, engine: str, n: int | None) -> dict[str, Any]:
    """What every summary starts with: which scenario, engine, seed and size, and where rates came from."""
    retrievers = {name: {"kind": r.kind, **({"measured_with": r.measured_with} if r.kind == "measured" else {})}
                  for name, r in scenario.retrievers.items()}
    tl = scenario.timeline
    per_month = tl.volume_per_month() if tl else None
    return {"scenario": scenario.name, "engine": engine, "seed": scenario.seed, "instances": n,
            "currency": scenario.currency, "variants": ["base"] + [v.name for v in scenario.variants],
            "retrievers": retrievers, "volume_per_month": per_month}


def assemble(scenario: Scenario, out: EngineOutput) -> Result:
    """The Result of an engine run: summary (base block at the top level, the others under `variant_results`,
    differences under `differences`) and tables."""
    if out.exact:
        blocks = {name: summary_from_exact(out.plans[name], x) for name, x in out.exact.items()}
    else:
        blocks = {name: summary_from_tally(t) for name, t in out.tallies.items()}
    for name, keys in out.variant_extra.items():
        blocks[name].update(keys)
    summary = {**summary_header(scenario, out.engine, out.instances), **blocks["base"],
               "instance_rows": out.instance_rows}
    if len(blocks) > 1:
        summary["variant_results"] = {k: v for k, v in blocks.items() if k != "base"}
        if out.differences is not None:
            summary["differences"] = out.differences
        elif out.exact:
            summary["differences"] = {k: exact_difference(v, blocks["base"]) for k, v in blocks.items() if k != "base"}
        else:
            summary["differences"] = {k: paired_difference(out.tallies[k], out.tallies["base"])
                                      for k in out.tallies if k != "base"}
    summary.update(out.extra)
    return Result(summary=summary, scenario=scenario, plans=out.plans, instances_arrow=out.instances_table,
                  steps=steps_table(out.tallies), timeline=out.tables.get("timeline"),
                  agent_trace=out.tables.get("agent_trace"))
