"""fit-difficulty recovers the icc the Monte Carlo engine simulated (0.1, 0.4, 0.8) within its 95% CI, prefers
the second shape when a share of tasks is always solved, and refuses bad logs with file:line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.core.errors import CascadeError, DataFileError
from sim.core.seeding import stream
from sim.engines.monte_carlo.kernel import Kernel
from sim.metrics.difficulty_fit import fit_difficulty, read_trials
from sim.model.plan import compile_plan
from sim.model.tokens import is_error
from sim.scenario.load import scenario_from_dict


def simulated(icc: float, tasks: int = 600, attempts: int = 8) -> pd.DataFrame:
    """Repeated attempts at the same instances (same difficulty, fresh draws), as the engine makes for pass^k."""
    plan = compile_plan(scenario_from_dict({
        "schema_version": 1, "name": "one", "seed": 11, "difficulty": {"icc": icc},
        "retrievers": {"docs": {"kind": "injected", "rates": {"topical_miss": 0.3}}},
        "workflow": {"steps": [{"id": "fetch", "kind": "retrieve", "retriever": "docs"},
                               {"id": "apply", "kind": "act", "inputs": ["fetch"]}]},
        "costs": {"apply": {"failure_loss": 1.0}}}))
    kernel, act = Kernel(plan), plan.acts[0].pos
    rows = []
    for a in range(attempts):
        failed = is_error(kernel.simulate(0, 0, tasks, attempt=a).tokens[act])
        rows += [(str(i), str(a), not f) for i, f in enumerate(failed)]
    return pd.DataFrame(rows, columns=["task", "trial", "success"])


@pytest.mark.parametrize("icc", [0.1, 0.4, 0.8])
def test_the_icc_the_engine_simulated_is_within_the_fitted_ci(icc):
    fit = fit_difficulty(simulated(icc))
    assert fit.icc_ci95[0] <= icc <= fit.icc_ci95[1]
    assert fit.mean_failure == pytest.approx(0.3, abs=0.03)
    # The observed pass^k curve and the fitted one agree to a few points at every k.
    assert np.max(np.abs(fit.pass_k["observed"] - fit.pass_k["beta-binomial"])) < 0.03


def test_a_share_of_always_solved_tasks_prefers_the_second_shape():
    rng = stream(4, "test/always_solved", 0)
    tasks, attempts = 800, 8
    q = np.where(rng.random(tasks) < 0.4, 0.0, rng.beta(2.0, 2.0, tasks))  # 40% never fail
    fails = rng.random((tasks, attempts)) < q[:, None]
    trials = pd.DataFrame([(str(i), str(a), not fails[i, a]) for i in range(tasks) for a in range(attempts)],
                          columns=["task", "trial", "success"])
    fit = fit_difficulty(trials)
    assert fit.preferred == "beta-binomial + always-solved share"
    assert fit.always_solved_share == pytest.approx(0.4, abs=0.06)


def test_cli_reads_a_csv_and_writes_the_block(tmp_path):
    path = tmp_path / "trials.csv"
    simulated(0.4, tasks=200, attempts=4).assign(success=lambda d: d["success"].map({True: "pass", False: "fail"})
                                                 ).to_csv(path, index=False)
    block = tmp_path / "difficulty.yaml"
    res = CliRunner().invoke(app, ["fit-difficulty", str(path), "--write", str(block)])
    assert res.exit_code == 0, res.output
    assert "icc" in res.output and block.read_text().startswith("difficulty:")
    bad = tmp_path / "bad.csv"
    bad.write_text("task,trial,success\na,1,1\na,2,maybe\n")
    with pytest.raises(DataFileError, match=r"bad.csv:3: success: 'maybe'"):
        read_trials(bad)
    res = CliRunner().invoke(app, ["fit-difficulty", str(bad)])
    assert res.exit_code == 2 and "bad.csv:3" in res.output
    with pytest.raises(CascadeError, match="every trial succeeded"):
        fit_difficulty(pd.DataFrame({"task": ["a", "a", "b", "b"], "trial": ["1", "2"] * 2, "success": [True] * 4}))


def test_tau_bench_results_read_as_the_same_trials(tmp_path):
    """tau-bench writes a JSON list of runs (task_id, trial, reward, plus the trajectory and info); success is a
    reward of 1. The fit equals the one of the same trials written as CSV."""
    trials = simulated(0.4, tasks=120, attempts=4)
    runs = [{"task_id": int(t), "trial": int(k), "reward": 1.0 if ok else 0.0,
             "info": {"reward_info": {"actions": []}}, "traj": [{"role": "user", "content": "hi"}]}
            for t, k, ok in trials[["task", "trial", "success"]].itertuples(index=False)]
    as_json, as_csv = tmp_path / "results.json", tmp_path / "trials.csv"
    as_json.write_text(json.dumps(runs))
    trials.to_csv(as_csv, index=False)
    a, b = fit_difficulty(read_trials(as_json)), fit_difficulty(read_trials(as_csv))
    assert (a.icc, a.icc_ci95, a.tasks, a.trials) == (b.icc, b.icc_ci95, b.tasks, b.trials)
    runs[3]["reward"] = "1"
    as_json.write_text(json.dumps(runs))
    res = CliRunner().invoke(app, ["fit-difficulty", str(as_json)])
    assert res.exit_code == 2 and "[3].reward" in res.output
    as_json.write_text(json.dumps(runs[:2] + runs[:1]))
    with pytest.raises(DataFileError, match=r"\[2\]\.trial: this task and trial appear twice"):
        read_trials(as_json)
