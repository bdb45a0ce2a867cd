"""`--engine monte_carlo`: every variant's plan over instance chunks, in this process or in worker processes.

Chunks are cut at seeding blocks, so neither the chunk size nor the number of workers changes a number.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from sim.core.errors import CascadeError
from sim.core.seeding import BLOCK_SIZE, block_segments
from sim.core.stats import hist_moments, mean_ci, wilson
from sim.core.worker_process import die_with_parent
from sim.engines.monte_carlo.kernel import Kernel
from sim.engines.request import KERNELS, RunRequest
from sim.model.plan import Plan
from sim.trace.engine_output import EngineOutput
from sim.trace.record import count_block, instance_rows, rows_kept
from sim.trace.tally import Tally


def run_monte_carlo(request: RunRequest) -> EngineOutput:
    """Simulate `request.instances` instances of every variant (with `precision` / `precision_loss`: until every
    variant's p_failure 95% CI half-width is within `precision` and its expected loss's within `precision_loss`
    of it, checked after each seeding block); tallies per variant and the kept rows."""
    plans, n, max_rows = request.plans, request.instances, request.max_instance_rows
    goal = Precision(request.precision, request.precision_loss)
    tallies, rows = simulate(plans, n, request.chunk_size, max_rows, min(n, request.pass_k_sample),
                             request.workers, request.progress, precision=goal if goal.asked else None,
                             kernel=request.kernel)
    used = next(iter(tallies.values())).n
    extra = {}
    if goal.asked:
        extra["precision"] = {**goal.keys(), "reached": goal.reached(tallies), "instances_used": used,
                              "instances_allowed": n}
    return EngineOutput(engine="monte_carlo", plans=plans, instances=used, tallies=tallies,
                        instances_table=instance_rows(rows), instance_rows=rows_kept(used, max_rows), extra=extra)


@dataclass(frozen=True)
class Precision:
    """When Monte Carlo may stop: every variant's p_failure 95% (Wilson) half-width at most `p_failure`, and its
    expected loss's 95% (normal) half-width at most `loss_relative` x the expected loss (a loss still 0 is not
    precise: nothing is known of its scale yet). A goal left None is not asked."""

    p_failure: float | None = None
    loss_relative: float | None = None

    @property
    def asked(self) -> bool:
        return self.p_failure is not None or self.loss_relative is not None

    def keys(self) -> dict[str, float]:
        """The goals as summary['precision'] names them."""
        out = {}
        if self.p_failure is not None:
            out["p_failure_ci95_half_width"] = self.p_failure
        if self.loss_relative is not None:
            out["expected_loss_ci95_relative_half_width"] = self.loss_relative
        return out

    def reached(self, tallies: dict[str, Tally]) -> bool:
        for t in tallies.values():
            if self.p_failure is not None:
                lo, hi = wilson(t.failed, t.n)
                if (hi - lo) / 2 > self.p_failure:
                    return False
            if self.loss_relative is not None:
                total, total_sq, _ = hist_moments(t.loss_hist)
                mean, (lo, hi) = mean_ci(total, total_sq, t.n)
                if not mean > 0 or (hi - lo) / 2 > self.loss_relative * mean:
                    return False
        return True


def simulate(plans: dict[str, Plan], n: int, chunk_size: int, max_rows: int, pass_n: int, workers: int = 1,
             progress=None, precision: Precision | None = None,
             kernel: str = "numpy") -> tuple[dict[str, Tally], dict[str, list[pa.Table]]]:
    """Tallies and kept instance rows of instances 0..n-1 of every plan, chunk by chunk; with `precision`, in
    seeding blocks, stopping after the first block where it is reached (so the stop does not depend on the
    chunk size or the workers). `kernel`: one of KERNELS (same numbers from each)."""
    kernel_class(kernel)  # a bad name fails here, not in a worker
    if precision is not None:
        chunk_size = BLOCK_SIZE
    ranges = ((a, min(n, a + chunk_size)) for a in range(0, n, chunk_size))  # lazy: n may be large
    if workers > 1 and n > chunk_size:
        parts = _in_processes(plans, ranges, max_rows, pass_n, workers, n, progress, kernel)
    else:
        parts = _in_process(plans, ranges, max_rows, pass_n, n, progress, kernel)
    tallies, rows = next(parts)
    for more_tallies, more_rows in parts:  # in range order, so sums are added in the same order every time
        if precision is not None and precision.reached(tallies):
            parts.close()
            break
        for name in plans:
            tallies[name].merge(more_tallies[name])
            rows[name] += more_rows[name]
    return tallies, rows


def kernel_class(name: str) -> type[Kernel]:
    """The kernel class of a KERNELS name (the fused one imported only when asked for: numba loads in ~0.5 s)."""
    if name == "numpy":
        return Kernel
    if name == "fused":
        from sim.engines.monte_carlo.fused import FusedKernel

        return FusedKernel
    raise CascadeError(f"kernel: {name!r} is not one of {', '.join(KERNELS)}")


def _in_process(plans, ranges, max_rows, pass_n, n, progress, kernel):
    kernels = make_kernels(plans, kernel)  # once: building them (and their buffers) anew per chunk cost ~5 ms
    for a, b in ranges:
        yield simulate_range(plans, a, b, max_rows, pass_n, kernel, kernels)
        if progress:
            progress(b, n)


def make_kernels(plans: dict[str, Plan], kernel: str) -> dict[str, Kernel]:
    """A kernel of class `kernel` (one of KERNELS) per variant."""
    make = kernel_class(kernel)
    return {name: make(plan) for name, plan in plans.items()}


def simulate_range(plans: dict[str, Plan], start: int, stop: int, max_rows: int, pass_n: int,
                   kernel: str = "numpy", kernels: dict[str, Kernel] | None = None):
    """Simulate instances start..stop-1 of every variant: (tallies, per-instance rows) for that range.

    Instance rows are kept for instances below `max_rows`; pass^k attempts for instances below `pass_n`.
    `kernels`: the variants' kernels of class `kernel` when already built (else built here).
    """
    kernels = kernels if kernels is not None else make_kernels(plans, kernel)
    tallies = {name: Tally(plan) for name, plan in plans.items()}
    rows: dict[str, list[pa.Table]] = {name: [] for name in plans}
    for first, block, lo, hi in block_segments(start, stop):
        base_out = None
        for name, kernel in kernels.items():
            plan = plans[name]
            out = count_block(plan, tallies[name], rows[name], kernel.simulate(block, lo, hi), first, max_rows,
                              pass_n, base_out, lambda a, m, k=kernel, b=block, lo=lo: k.simulate(b, lo, lo + m, a),
                              kernel.add_block)
            if name == "base":
                base_out = out
    return tallies, rows


def _in_processes(plans, ranges, max_rows, pass_n, workers, n, progress, kernel):
    """Run the ranges in worker processes, two in flight per worker, and yield their results in range order."""
    context = multiprocessing.get_context("spawn")  # fork is unsafe with the thread pools of numpy / arrow
    in_flight: deque[tuple[int, Future]] = deque()
    # Workers die with this process even under `kill -9` (nothing else would stop them). The pool is created
    # and used from this thread, which outlives it: Linux's death signal follows the creating thread.
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        for a, b in ranges:
            in_flight.append((b, pool.submit(simulate_range, plans, a, b, max_rows, pass_n, kernel)))
            if len(in_flight) < 2 * workers:
                continue
            stop, future = in_flight.popleft()
            yield future.result()
            if progress:
                progress(stop, n)
        while in_flight:
            stop, future = in_flight.popleft()
            yield future.result()
            if progress:
                progress(stop, n)
