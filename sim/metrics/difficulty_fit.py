"""Per-instance difficulty from evidence: `difficulty.icc` and pass^k from a log of repeated trials (task id,
trial, success), the shape of tau-bench trajectories, Inspect epochs or the agent engine's attempts.

A task's failure probability q is modelled as Beta with mean `mean` and intra-class correlation `icc`
(a + b = (1 - icc) / icc), so its failures in n trials are beta-binomial; `icc` is the correlation between two
trials of one task, the quantity `difficulty.icc` sets for every error event. Fitted by maximum likelihood
(scipy), with a 95% profile-likelihood interval. A second shape adds a share of tasks that never fail (observed
pass^k curves often flatten); AIC says which fits better. pass^k is observed with the unbiased estimator
C(s, k) / C(n, k) per task (s successes of n trials, tasks with n >= k) and modelled as E[(1 - q)^k].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from sim.core.errors import CascadeError, DataFileError, Problem
from sim.core.limits import MAX_DATA_FILE_BYTES
from sim.core.table_source import Limits, read_table

TRIALS_LIMITS = Limits(rows=10_000_000, chars=512)
"""A trials file: at most 10 million trials (tasks x attempts), ids of at most 512 characters."""

SUCCESS = {"1": True, "1.0": True, "true": True, "pass": True, "passed": True, "yes": True,
           "0": False, "0.0": False, "false": False, "fail": False, "failed": False, "no": False}
"""How a trial's success may be written (a JSON 1, 1.0 or true reads as "1", "1.0", "true")."""
PASS_K_MAX = 8
_EPS = 1e-6


@dataclass(frozen=True)
class DifficultyFit:
    """What a trials log says about difficulty."""

    tasks: int
    trials: int
    mean_failure: float
    icc: float
    icc_ci95: tuple[float, float]
    always_solved_share: float
    """Second shape: the share of tasks that never fail (0 when the first shape is chosen or fits as well)."""
    preferred: str
    """`beta-binomial` or `beta-binomial + always-solved share`, by AIC."""
    aic: dict[str, float]
    pass_k: pd.DataFrame
    """k, observed (unbiased), tasks used, modelled by each shape."""


def read_trials(path: str | Path) -> pd.DataFrame:
    """A trials log as task, trial, success: CSV, TSV or JSONL with those columns, or tau-bench's results file
    (`.json`: a list of runs with task_id, trial and reward; success is reward 1, as tau-bench counts it). Bad
    rows name file:line (or the run's index in a results file)."""
    if Path(path).suffix.lower() == ".json":
        rows, where = _tau_bench_runs(Path(path))
        file = str(path)
    else:
        table = read_table(path, "trials", ("task", "trial", "success"), limits=TRIALS_LIMITS)
        rows, where, file = [], [], table.file
        for r in table.records:
            word = r.values["success"].strip().lower()
            if word not in SUCCESS:
                raise DataFileError(Problem(table.file, r.line, "success", f"'{r.values['success']}' is not a "
                                            "success value: use 1/0, true/false or pass/fail"))
            rows.append((r.values["task"], r.values["trial"], SUCCESS[word]))
            where.append(r.line)
    trials = pd.DataFrame(rows, columns=["task", "trial", "success"])
    dup = trials.duplicated(["task", "trial"])
    if dup.any():
        at = where[int(np.flatnonzero(dup.to_numpy())[0])]
        line, field = (at, "trial") if isinstance(at, int) else (None, f"{at}.trial")
        raise DataFileError(Problem(file, line, field, "this task and trial appear twice"))
    return trials


def _tau_bench_runs(file: Path) -> tuple[list[tuple[str, str, bool]], list]:
    """tau-bench's results file: a JSON list of runs, each with task_id, trial and reward (trajectories and
    the rest are ignored); success is a reward of 1 (within 1e-6)."""
    import json

    size = file.stat().st_size if file.is_file() else None
    if size is None:
        raise DataFileError(Problem(str(file), None, "", "no such trials file"))
    if size > MAX_DATA_FILE_BYTES:
        raise DataFileError(Problem(str(file), None, "", f"{size:,} bytes; at most {MAX_DATA_FILE_BYTES:,}"))
    try:
        runs = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataFileError(Problem(str(file), None, "", f"not JSON ({exc}); a .json trials file is tau-bench's "
                                    "results (a list of runs with task_id, trial, reward)")) from None
    if not isinstance(runs, list) or not runs:
        raise DataFileError(Problem(str(file), None, "", "a .json trials file is tau-bench's results: a non-empty "
                                    "list of runs with task_id, trial and reward"))
    if len(runs) > TRIALS_LIMITS.rows:
        raise DataFileError(Problem(str(file), None, "", f"{len(runs):,} runs; at most {TRIALS_LIMITS.rows:,}"))
    rows, where = [], []
    for i, run in enumerate(runs):
        at = f"[{i}]"
        if not isinstance(run, dict):
            raise DataFileError(Problem(str(file), None, at, "a run is an object with task_id, trial, reward"))
        for key, kinds in (("task_id", (int, str)), ("trial", (int, str)), ("reward", (int, float))):
            value = run.get(key)
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise DataFileError(Problem(str(file), None, f"{at}.{key}", f"{value!r}: give the run's {key}"
                                            + (" as a number in [0, 1]" if key == "reward" else "")))
        reward = float(run["reward"])
        if not 0.0 <= reward <= 1.0 + 1e-6:
            raise DataFileError(Problem(str(file), None, f"{at}.reward", f"{reward} is not in [0, 1]"))
        rows.append((str(run["task_id"]), str(run["trial"]), reward >= 1.0 - 1e-6))
        where.append(at)
    return rows, where


def _loglik(failures: np.ndarray, n: np.ndarray, mean: float, icc: float, never: float = 0.0) -> float:
    s = (1.0 - icc) / icc
    ll = stats.betabinom.logpmf(failures, n, mean * s, (1.0 - mean) * s)
    if never > 0:
        ll = np.log((1.0 - never) * np.exp(ll) + never * (failures == 0))
    return float(ll.sum())


def _logit(x: float) -> float:
    return float(np.log(x / (1.0 - x)))


def _expit(x: float) -> float:
    return float(special.expit(x))


def fit_difficulty(trials: pd.DataFrame) -> DifficultyFit:
    """Fit both shapes to a trials table (task, trial, success) and compare pass^k observed with modelled."""
    per_task = trials.groupby("task", sort=True)["success"].agg(["size", "sum"])
    n = per_task["size"].to_numpy()
    failures = n - per_task["sum"].to_numpy()
    if len(n) < 2 or n.max() < 2:
        raise CascadeError("fitting difficulty needs at least two tasks and a task tried at least twice")
    if failures.sum() == 0 or failures.sum() == n.sum():
        raise CascadeError("every trial succeeded (or every one failed): the log says nothing about difficulty")
    start_mean = float(np.clip(failures.sum() / n.sum(), 0.01, 0.99))

    def neg(x: np.ndarray) -> float:
        return -_loglik(failures, n, _expit(x[0]), float(np.clip(_expit(x[1]), _EPS, 1 - _EPS)))

    one = optimize.minimize(neg, [_logit(start_mean), _logit(0.2)], method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 4000})
    mean, icc = _expit(one.x[0]), float(np.clip(_expit(one.x[1]), _EPS, 1 - _EPS))
    best = -one.fun

    def profile(r: float) -> float:  # log-likelihood at icc r, mean re-fitted
        res = optimize.minimize_scalar(lambda m: -_loglik(failures, n, _expit(m), r), bounds=(-15, 15),
                                       method="bounded", options={"xatol": 1e-10})
        return -res.fun

    drop = stats.chi2.ppf(0.95, 1) / 2
    low = _EPS if profile(_EPS) >= best - drop else optimize.brentq(lambda r: profile(r) - best + drop, _EPS, icc)
    high = 1 - _EPS if profile(1 - _EPS) >= best - drop else optimize.brentq(
        lambda r: profile(r) - best + drop, icc, 1 - _EPS)

    def neg2(x: np.ndarray) -> float:
        return -_loglik(failures, n, _expit(x[0]), float(np.clip(_expit(x[1]), _EPS, 1 - _EPS)), _expit(x[2]))

    two = optimize.minimize(neg2, [one.x[0], one.x[1], _logit(0.05)], method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 8000})
    aic = {"beta-binomial": 2 * 2 + 2 * one.fun, "beta-binomial + always-solved share": 2 * 3 + 2 * two.fun}
    preferred = min(aic, key=aic.__getitem__)
    m2, r2, never = _expit(two.x[0]), float(np.clip(_expit(two.x[1]), _EPS, 1 - _EPS)), _expit(two.x[2])
    rows = []
    successes = n - failures
    for k in range(1, min(PASS_K_MAX, int(n.max())) + 1):
        used = n >= k
        observed = float(np.mean(special.comb(successes[used], k) / special.comb(n[used], k)))
        rows.append({"k": k, "observed": observed, "tasks": int(used.sum()),
                     "beta-binomial": _pass_k(mean, icc, k),
                     "beta-binomial + always-solved share": never + (1 - never) * _pass_k(m2, r2, k)})
    return DifficultyFit(tasks=len(n), trials=int(n.sum()), mean_failure=mean, icc=icc, icc_ci95=(low, high),
                         always_solved_share=never if preferred != "beta-binomial" else 0.0, preferred=preferred,
                         aic=aic, pass_k=pd.DataFrame(rows))


def _pass_k(mean: float, icc: float, k: int) -> float:
    """E[(1 - q)^k] for q ~ Beta(mean, icc): B(a, b + k) / B(a, b)."""
    s = (1.0 - icc) / icc
    a, b = mean * s, (1.0 - mean) * s
    return float(np.exp(special.betaln(a, b + k) - special.betaln(a, b)))


__all__ = ["DifficultyFit", "read_trials", "fit_difficulty"]
