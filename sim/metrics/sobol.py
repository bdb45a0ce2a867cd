"""Which uncertain input drives the money: Sobol first-order and total indices (SALib: Saltelli's design,
Jansen / Saltelli 2010 estimators, bootstrap confidence intervals) of each variant's expected loss per instance
and of each variant's paired difference from base, per input or per group of inputs (retriever, step, error type).

Every variant is evaluated on the same design points (`sim.metrics.uncertainty.evaluate_points`), so a
difference's indices see common random numbers; an input a variant does not read is constant for it and scores 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from sim.core.errors import CascadeError
from sim.core.seeding import stream_key
from sim.metrics.uncertainty import UncertainInput, evaluate_points, group_of, input_values, uncertain_inputs
from sim.model.plan import Plan
from sim.scenario.model import Scenario

COLUMNS = ("output", "group", "S1", "S1_conf", "ST", "ST_conf")
"""The columns of a Sobol table (`sobol.csv` in a run folder); `_conf` are half-widths of 95% bootstrap CIs."""

RESAMPLES = 200
"""Bootstrap resamples of each index's confidence interval."""

SEED_STREAM = "uncertainty/sobol"


def sobol_indices(variants: Mapping[str, Scenario], plans: Mapping[str, Plan], base_draws: int, seed: int,
                  by: str = "input", instances: int = 20_000) -> pd.DataFrame:
    """First-order (S1) and total (ST) Sobol indices with 95% bootstrap half-widths of every variant's expected
    loss per instance (`output` = `expected_loss_per_instance@<variant>`) and of every variant's paired difference
    from base (`difference@<variant>`), per group of uncertain inputs; `base_draws` (N, a power of 2) gives
    N x (groups + 2) evaluations per variant."""
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    inputs = uncertain_inputs(variants)
    if not inputs:
        raise CascadeError("nothing in this scenario is uncertain: Sobol indices need distributions")
    if base_draws < 2 or base_draws & (base_draws - 1):
        raise CascadeError(f"Sobol base draws must be a power of 2 (e.g. 1024), got {base_draws:,}")
    groups = [group_of(i.name, by) for i in inputs]
    problem = {"num_vars": len(inputs), "names": [i.name for i in inputs], "bounds": [[0.0, 1.0]] * len(inputs),
               **({"groups": groups} if len(set(groups)) < len(groups) else {})}
    key = stream_key(SEED_STREAM) % (2**32)
    u = np.clip(sample.sample(problem, base_draws, calc_second_order=False, seed=(seed + key) % (2**32)),
                1e-12, 1 - 1e-12)
    losses = {v: _losses(plan, v, inputs, u, instances) for v, plan in plans.items()}
    outputs = {f"expected_loss_per_instance@{v}": y for v, y in losses.items()}
    outputs.update({f"difference@{v}": y - losses["base"] for v, y in losses.items() if v != "base"})
    rows = []
    for name, y in outputs.items():
        if np.ptp(y) == 0.0:  # no input moves it: every index is 0 (SALib would divide by a zero variance)
            rows += [{"output": name, "group": g, "S1": 0.0, "S1_conf": 0.0, "ST": 0.0, "ST_conf": 0.0}
                     for g in dict.fromkeys(groups)]
            continue
        res = analyze.analyze(problem, y, calc_second_order=False, num_resamples=RESAMPLES, seed=seed % (2**32))
        names = list(dict.fromkeys(groups)) if "groups" in problem else problem["names"]
        rows += [{"output": name, "group": g, "S1": float(res["S1"][k]), "S1_conf": float(res["S1_conf"][k]),
                  "ST": float(res["ST"][k]), "ST_conf": float(res["ST_conf"][k])} for k, g in enumerate(names)]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _losses(plan: Plan, variant: str, inputs: list[UncertainInput], u: np.ndarray, instances: int) -> np.ndarray:
    values = input_values(inputs, u)
    points = {i.path: values[i.name] for i in inputs if variant in i.variants}
    return evaluate_points(plan, points, instances).values["expected_loss_per_instance"].to_numpy()


__all__ = ["COLUMNS", "sobol_indices"]
