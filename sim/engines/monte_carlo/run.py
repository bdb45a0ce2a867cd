"""`--engine monte_carlo`: every variant's plan over instance chunks, in this process or in worker processes.

Chunks are cut at seeding blocks, so neither the chunk size nor the number of workers changes a number.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed

import pyarrow as pa

from sim.core.seeding import block_segments
from sim.core.worker_process import die_with_parent
from sim.engines.monte_carlo.kernel import Kernel
from sim.engines.request import RunRequest
from sim.model.plan import Plan
from sim.trace.engine_output import EngineOutput
from sim.trace.record import count_block, instance_rows, rows_kept
from sim.trace.tally import Tally


def run_monte_carlo(request: RunRequest) -> EngineOutput:
    """Simulate `request.instances` instances of every variant; tallies per variant and the kept rows."""
    plans, n, max_rows = request.plans, request.instances, request.max_instance_rows
    tallies, rows = simulate(plans, n, request.chunk_size, max_rows, min(n, request.pass_k_sample),
                             request.workers, request.progress)
    return EngineOutput(engine="monte_carlo", plans=plans, instances=n, tallies=tallies,
                        instances_table=instance_rows(rows), instance_rows=rows_kept(n, max_rows))


def simulate(plans: dict[str, Plan], n: int, chunk_size: int, max_rows: int, pass_n: int, workers: int = 1,
             progress=None) -> tuple[dict[str, Tally], dict[str, list[pa.Table]]]:
    """Tallies and kept instance rows of instances 0..n-1 of every plan, chunk by chunk."""
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
    return tallies, rows


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
    # Workers die with this process even under `kill -9` (nothing else would stop them). The pool is created
    # and used from this thread, which outlives it: Linux's death signal follows the creating thread.
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(simulate_range, plans, a, b, max_rows, pass_n): i for i, (a, b) in enumerate(ranges)}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            done += ranges[i][1] - ranges[i][0]
            if progress:
                progress(done, n)
    return results
