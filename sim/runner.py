"""`run(scenario, ...)`: resolve variants, compile their plans, run an engine from the registry, assemble."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.core import limits
from sim.core.errors import CascadeError
from sim.engines.registry import get_engine
from sim.engines.request import (
    DEFAULT_CHUNK,
    DEFAULT_MAX_INSTANCE_ROWS,
    DEFAULT_PASS_K_SAMPLE,
    KERNELS,
    RunRequest,
)
from sim.metrics.importance import counterfactuals
from sim.metrics.importance import importance as event_importance
from sim.metrics.sobol import RESAMPLES, sobol_indices
from sim.metrics.uncertainty import propagate
from sim.model.plan import compile_plan
from sim.output.assemble import assemble
from sim.output.result import Result
from sim.scenario.load import load_scenario, resolve_variants
from sim.scenario.model import Scenario, Uncertainty

AUTO_WORKERS_FROM = 4_000_000
"""Instance-variants from which a run uses one process per core by default (below it, starting processes costs
more than it saves)."""


def run(scenario: Scenario | str | Path, *, instances: int | None = None, seed: int | None = None,
        engine: str = "monte_carlo", chunk_size: int = DEFAULT_CHUNK,
        max_instance_rows: int = DEFAULT_MAX_INSTANCE_ROWS, pass_k_sample: int = DEFAULT_PASS_K_SAMPLE,
        workers: int | None = None, progress: Callable[[int, int], None] | None = None, options: Any = None,
        uncertainty: int | None = None, sobol: int | None = None, sobol_by: str = "input",
        importance: bool = False, precision: float | None = None, precision_loss: float | None = None,
        kernel: str = "numpy") -> Result:
    """Run a scenario (a path or a loaded Scenario) and return its Result.

    `engine`: monte_carlo, analytic, timeline, or a registered one (agent). `instances` and `seed` override
    the scenario's; `chunk_size` bounds memory (instances held at once) and never changes the numbers;
    `workers` > 1 runs chunks in that many processes, same numbers again (None, the default: one per core
    for runs of 4 million instance-variants or more, else 1); `max_instance_rows` caps the
    per-instance table per variant (the summary says when it is a sample); `progress(done, total)` is called
    as work completes (the agent engine with a model policy also calls `progress.detail({"calls", "cached",
    "tokens"})` when the callable has that method); `options` are engine-specific (the agent engine: `agents.engine.AgentSettings`; by
    default the simulated reader, 500 instances, pass^k from its first 40 instances attempted 8 times).
    `uncertainty` draws (or the scenario's `uncertainty:` block) add an uncertainty analysis of every variant
    (`sim.metrics.uncertainty`): summary['uncertainty'] and `result.uncertainty`, one row per draw x variant.
    `sobol` base draws (a power of 2) add Sobol indices of expected loss and of each variant's difference from
    base per uncertain input, or per group (`sobol_by`: retriever, step, error_type): `result.sobol`.
    `importance` adds counterfactuals (oracle retrieval, each retriever perfect, each verifier perfect or
    removed) and Birnbaum / Fussell-Vesely / RAW / RRW per basic event (`sim.metrics.importance`).
    `precision` (Monte Carlo only): stop once every variant's p_failure 95% half-width is at most this, checked
    after each seeding block of 65,536 instances (`instances` is then the most it runs; summary['precision']).
    `precision_loss` (Monte Carlo only): the same, once every variant's expected loss 95% half-width is at most
    this fraction of the expected loss (0.02: within 2%); with `precision`, once both hold.
    `kernel` (Monte Carlo only): `numpy` (default) or `fused` (compiled by numba); same numbers from both.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    spec = get_engine(engine)
    if instances is None:
        instances = spec.default_instances(scenario) if spec.default_instances else scenario.instances
    if workers is None:
        big = instances * (1 + len(scenario.variants)) >= AUTO_WORKERS_FROM
        workers = (os.cpu_count() or 1) if big else 1
    _check_sizes(seed=(seed, 0, limits.MAX_SEED), instances=(instances, 1, limits.MAX_INSTANCES),
                 chunk_size=(chunk_size, 1, limits.MAX_CHUNK), workers=(workers, 1, limits.MAX_WORKERS),
                 max_instance_rows=(max_instance_rows, 0, limits.MAX_INSTANCE_ROWS),
                 pass_k_sample=(pass_k_sample, 0, limits.MAX_INSTANCES),
                 uncertainty=(uncertainty, 2, limits.MAX_UNCERTAINTY_DRAWS),
                 sobol=(sobol, 2, limits.MAX_UNCERTAINTY_DRAWS))
    if precision is not None and (engine != "monte_carlo" or isinstance(precision, bool)
                                  or not 0 < float(precision) < 0.5):
        raise CascadeError("precision is a p_failure CI half-width in (0, 0.5) for the monte_carlo engine, got "
                           f"{precision!r} with engine {engine}")
    if precision_loss is not None and (engine != "monte_carlo" or isinstance(precision_loss, bool)
                                       or not 0 < float(precision_loss) < 1):
        raise CascadeError("precision_loss is the expected loss's CI half-width as a fraction of it, in (0, 1) (0.02: "
                           f"within 2%), for the monte_carlo engine; got {precision_loss!r} with engine {engine}")
    if kernel not in KERNELS or (kernel != "numpy" and engine != "monte_carlo"):
        raise CascadeError(f"kernel is one of {', '.join(KERNELS)} and only applies to the monte_carlo engine, "
                           f"got {kernel!r} with engine {engine}")
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    variants = resolve_variants(scenario)
    plans = {name: compile_plan(s, name, all_roots=spec.all_roots) for name, s in variants.items()}
    out = spec.run(RunRequest(scenario=scenario, variants=variants, plans=plans, instances=instances,
                              max_instance_rows=max_instance_rows, chunk_size=chunk_size, workers=workers,
                              pass_k_sample=pass_k_sample, progress=progress, options=options,
                              precision=precision, precision_loss=precision_loss, kernel=kernel))
    result = assemble(scenario, out)
    settings = scenario.uncertainty
    if uncertainty is not None:
        settings = (settings or Uncertainty(draws=uncertainty)).model_copy(update={"draws": uncertainty})
    # Always plans with drawn roots only: the agent engine's observed roots do not apply to drawn inputs.
    exact_plans = plans if not spec.all_roots else {n: compile_plan(s, n) for n, s in variants.items()}
    if settings is not None:
        study = propagate(variants, exact_plans, settings, scenario.seed)
        result.summary["uncertainty"] = study.summary
        result.uncertainty = study.draws
        result.loss_exceedance = study.curves
    if sobol is not None:
        per_draw = settings.instances_per_draw if settings else Uncertainty(draws=2).instances_per_draw
        result.sobol = sobol_indices(variants, exact_plans, sobol, scenario.seed, sobol_by, per_draw)
        result.summary["sobol"] = {"base_draws": sobol, "by": sobol_by, "resamples": RESAMPLES,
                                   "indices": result.sobol.to_dict(orient="records")}
    if importance:
        result.counterfactuals = pd.concat([counterfactuals(p) for p in exact_plans.values()], ignore_index=True)
        result.importance = pd.concat([event_importance(p) for p in exact_plans.values()], ignore_index=True)
        for name in ("counterfactuals", "importance"):  # JSON has no NaN: an empty ratio is null
            table = getattr(result, name)
            result.summary[name] = table.astype(object).where(table.notna(), None).to_dict(orient="records")
    return result


def _check_sizes(**sizes: tuple[int | None, int, int]) -> None:
    """Each size an integer within its bounds (sim.core.limits says why each bound is what it is)."""
    for name, (value, low, high) in sizes.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise CascadeError(f"{name} must be a whole number, got {value!r}")
        if not low <= value <= high:
            raise CascadeError(f"{name} must be between {low:,} and {high:,}, got {value:,}")
