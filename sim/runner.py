"""`run(scenario, ...)`: pick an engine, run every variant, and gather the result tables."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

from sim.core.errors import CascadeError
from sim.core.seeding import BLOCK_SIZE
from sim.engines.analytic import solve
from sim.engines.monte_carlo import Kernel
from sim.metrics.summary import exact_difference, paired_difference, summary_from_exact, summary_from_tally
from sim.model.plan import Plan, compile_plan
from sim.output.result import Result, steps_table
from sim.scenario.load import load_scenario, resolve_variants
from sim.scenario.model import Scenario
from sim.trace.schema import INSTANCE_SCHEMA, instance_outcomes, instance_table
from sim.trace.tally import PASS_K, Tally

Engine = Literal["monte_carlo", "analytic", "timeline", "agent"]
ENGINES: tuple[str, ...] = ("monte_carlo", "analytic", "timeline", "agent")

DEFAULT_CHUNK = 4 * BLOCK_SIZE
DEFAULT_MAX_INSTANCE_ROWS = 1_000_000
DEFAULT_PASS_K_SAMPLE = 20_000


def run(scenario: Scenario | str | Path, *, instances: int | None = None, seed: int | None = None,
        engine: Engine = "monte_carlo", chunk_size: int = DEFAULT_CHUNK,
        max_instance_rows: int = DEFAULT_MAX_INSTANCE_ROWS, pass_k_sample: int = DEFAULT_PASS_K_SAMPLE,
        workers: int = 1, progress: Callable[[int, int], None] | None = None, agent=None) -> Result:
    """Run a scenario (a path or a loaded Scenario) and return its Result.

    `instances` and `seed` override the scenario's; `chunk_size` bounds memory (instances held at once) and
    never changes the numbers; `workers` > 1 runs chunks in that many processes, same numbers again;
    `max_instance_rows` caps the per-instance table per variant (the summary says when it is a sample);
    `progress(done, total)` is called after each chunk. The agent engine takes `agent`
    (`sim.agent_run.AgentSettings`; default: the simulated reader), runs 500 instances unless told, and
    attempts its first 40 instances 8 times for pass^k (each attempt is a full agent run).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if seed is not None:
        if seed < 0:
            raise CascadeError(f"seed must be a non-negative integer, got {seed}")
        scenario = scenario.model_copy(update={"seed": seed})
    if instances is None and engine == "agent":
        from agents.engine import DEFAULT_AGENT_INSTANCES

        instances = min(scenario.instances, DEFAULT_AGENT_INSTANCES)
    n = scenario.instances if instances is None else instances
    if n < 1:
        raise CascadeError(f"instances must be at least 1, got {n}")
    if chunk_size < 1:
        raise CascadeError(f"chunk_size must be at least 1, got {chunk_size}")
    if workers < 1:
        raise CascadeError(f"workers must be at least 1, got {workers}")
    if engine not in ENGINES:
        raise CascadeError(f"unknown engine '{engine}'; choose one of: {', '.join(ENGINES)}")
    variants = resolve_variants(scenario)
    if engine == "timeline":  # compiles its own plans, one per replication seed and review bypass
        from sim.engines.timeline.run import run_timeline

        return run_timeline(scenario, variants, max_instance_rows, progress)
    if engine == "agent":
        from agents.engine import AgentSettings, run_agent

        return run_agent(scenario, variants, n, agent or AgentSettings(), max_instance_rows, progress)
    plans = {name: compile_plan(s, name) for name, s in variants.items()}
    if engine == "analytic":
        return _run_analytic(scenario, plans)
    return _run_monte_carlo(scenario, plans, n, chunk_size, max_instance_rows, pass_k_sample, workers, progress)


def summary_header(scenario: Scenario, engine: str, n: int | None) -> dict:
    retrievers = {name: {"kind": r.kind, **({"measured_with": r.measured_with} if r.kind == "measured" else {})}
                  for name, r in scenario.retrievers.items()}
    return {"scenario": scenario.name, "engine": engine, "seed": scenario.seed, "instances": n,
            "currency": scenario.currency, "variants": ["base"] + [v.name for v in scenario.variants],
            "retrievers": retrievers}


def _run_analytic(scenario: Scenario, plans: dict[str, Plan]) -> Result:
    blocks = {name: summary_from_exact(plan, solve(plan)) for name, plan in plans.items()}
    summary = {**summary_header(scenario, "analytic", None), **blocks["base"], "instance_rows": None}
    if len(plans) > 1:
        summary["variant_results"] = {k: v for k, v in blocks.items() if k != "base"}
        summary["differences"] = {k: exact_difference(v, blocks["base"]) for k, v in blocks.items() if k != "base"}
    return Result(summary=summary, scenario=scenario, plans=plans)


def _run_monte_carlo(scenario: Scenario, plans: dict[str, Plan], n: int, chunk_size: int, max_rows: int,
                     pass_k_sample: int, workers: int, progress) -> Result:
    pass_n = min(n, pass_k_sample)
    ranges = [(a, min(n, a + chunk_size)) for a in range(0, n, chunk_size)]
    if workers > 1 and len(ranges) > 1:
        parts = _in_processes(plans, ranges, max_rows, pass_n, workers, progress)
    else:
        parts = []
        for a, b in ranges:
            parts.append(simulate_range(plans, a, b, max_rows, pass_n))
            if progress:
                progress(b, n)
    tallies, rows = parts[0]
    for more_tallies, more_rows in parts[1:]:
        for name in plans:
            tallies[name].merge(more_tallies[name])
            rows[name] += more_rows[name]
    summary = tally_summary(scenario, "monte_carlo", n, tallies, max_rows)
    return Result(summary=summary, scenario=scenario, plans=plans, instances_arrow=instance_rows(rows),
                  steps=steps_table(tallies))


def tally_summary(scenario: Scenario, engine: str, n: int, tallies: dict[str, Tally], max_rows: int) -> dict:
    """The summary of a sampled run (Monte Carlo or agent): per-variant blocks and paired differences."""
    blocks = {name: summary_from_tally(t) for name, t in tallies.items()}
    sampled = n > max_rows
    summary = {**summary_header(scenario, engine, n), **blocks["base"],
               "instance_rows": {"mode": "sampled" if sampled else "all", "rows": min(n, max_rows), "of": n,
                                 "note": ("instances.parquet holds the first rows of each variant; instances are "
                                          "independent and identically distributed, so they are a uniform sample; "
                                          "every summary figure uses all instances") if sampled else ""}}
    if len(tallies) > 1:
        summary["variant_results"] = {k: v for k, v in blocks.items() if k != "base"}
        summary["differences"] = {k: paired_difference(tallies[k], tallies["base"]) for k in tallies if k != "base"}
    return summary


def count_block(plan: Plan, tally: Tally, tables: list[pa.Table], trace, first: int, max_rows: int, pass_n: int,
                base_out, attempt: Callable[[int, int], object]):
    """Tally one block's trace (paired with the base variant's outcomes when given), keep the rows of its
    instances below `max_rows`, and for those below `pass_n` the pass^k attempts: `attempt(a, m)` is the trace
    of attempt a at the block's first m instances. Returns the block's outcomes."""
    out = instance_outcomes(plan, trace)
    tally.add(trace, out, base_out)
    take = min(trace.n, max_rows - first)
    if take > 0:
        tables.append(instance_table(plan, trace, out, first, take))
    m = min(trace.n, pass_n - first)
    if m > 0:
        attempts = [~out.failed[:m]] + [~instance_outcomes(plan, attempt(a, m)).failed for a in range(1, PASS_K)]
        tally.add_pass_k(np.column_stack(attempts))
    return out


def instance_rows(tables: dict[str, list[pa.Table]]) -> pa.Table:
    """Every variant's kept instance rows as one table."""
    parts = [t for name in tables for t in tables[name]]
    return pa.concat_tables(parts).combine_chunks() if parts else INSTANCE_SCHEMA.empty_table()


def simulate_range(plans: dict[str, Plan], start: int, stop: int, max_rows: int, pass_n: int):
    """Simulate instances start..stop-1 of every variant: (tallies, per-instance rows) for that range.

    Instance rows are kept for instances below `max_rows`; pass^k attempts for instances below `pass_n`.
    """
    kernels = {name: Kernel(plan) for name, plan in plans.items()}
    tallies = {name: Tally(plan) for name, plan in plans.items()}
    rows: dict[str, list[pa.Table]] = {name: [] for name in plans}
    for first, block, lo, hi in block_segments(start, stop):
        base_out = None
        for name, kernel in kernels.items():
            plan = plans[name]
            out = count_block(plan, tallies[name], rows[name], kernel.simulate(block, lo, hi), first, max_rows,
                              pass_n, base_out, lambda a, m, k=kernel, b=block, lo=lo: k.simulate(b, lo, lo + m, a))
            if name == "base":
                base_out = out
    return tallies, rows


def _in_processes(plans, ranges, max_rows, pass_n, workers, progress):
    """Run the ranges in worker processes; results come back in range order whatever finishes first."""
    context = multiprocessing.get_context("spawn")  # fork is unsafe with the thread pools of numpy / arrow
    n = ranges[-1][1]
    results: list = [None] * len(ranges)
    done = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(simulate_range, plans, a, b, max_rows, pass_n): i for i, (a, b) in enumerate(ranges)}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            done += ranges[i][1] - ranges[i][0]
            if progress:
                progress(done, n)
    return results


def block_segments(start: int, stop: int):
    """(first instance, block, offset start, offset stop) pieces of [start, stop) cut at seeding blocks."""
    i = start
    while i < stop:
        block = i // BLOCK_SIZE
        end = min(stop, (block + 1) * BLOCK_SIZE)
        yield i, block, i - block * BLOCK_SIZE, end - block * BLOCK_SIZE
        i = end
