"""The timeline engine: queueing theory, Little's law, agreement with Monte Carlo, reproducibility, load."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.runner import run
from sim.scenario.load import scenario_from_dict
from tests.conftest import chain, with_timeline

runner = CliRunner()


def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue of M/M/c (same time unit as 1/lam)."""
    a = lam / mu
    top = a ** c / math.factorial(c) * c / (c - a)
    p_wait = top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c * mu - lam)


def test_reviewer_queue_matches_erlang_c_and_littles_law():
    # 288 arrivals a day (0.2 a minute), 12-minute reviews, 3 reviewers around the clock: load 0.8.
    data = with_timeline(horizon_days=100, replications=6, arrivals={"per_day": 288},
                         reviewers={"check": {"servers": 3, "minutes": 12}})
    result = run(scenario_from_dict(data), engine="timeline")
    tl = result.summary["timeline"]
    expected_hours = erlang_c_wait(0.2, 1 / 12, 3) / 60
    waits = [w for w in _replication_waits(data)]
    mean, half = np.mean(waits), 2.571 * np.std(waits, ddof=1) / math.sqrt(len(waits))  # t(5), 95%
    assert abs(mean - expected_hours) <= half, (mean, half, expected_hours)
    assert tl["mean_wait_hours"]["check"] == pytest.approx(mean)
    assert tl["utilisation"]["check"] == pytest.approx(0.8, abs=0.02)
    # Little's law: the number waiting, seen at the end of each day, against arrival rate x mean wait.
    daily = result.timeline
    backlog = daily["backlog"].to_numpy()
    lam_per_hour = daily["arrivals"].sum() / (len(daily) * 24)
    l_mean, l_half = backlog.mean(), 1.96 * backlog.std(ddof=1) / math.sqrt(len(backlog))
    assert abs(l_mean - lam_per_hour * mean) <= l_half + 0.02, (l_mean, lam_per_hour * mean, l_half)


def _replication_waits(data: dict) -> list[float]:
    from sim.engines.timeline.replication import run_replication
    from sim.model.plan import compile_plan

    s = scenario_from_dict(data)
    plan = compile_plan(s)
    return [run_replication(plan, s.timeline, r)[3]["mean_wait_hours"]["check"] for r in range(s.timeline.replications)]


@pytest.mark.parametrize("reviewers", [{}, {"check": {"servers": 50, "minutes": 5}}], ids=["no reviewers", "ample"])
def test_unlimited_capacity_reproduces_monte_carlo_exactly(reviewers):
    data = with_timeline(reviewers=reviewers)
    timeline = run(scenario_from_dict(data), engine="timeline").summary
    n = timeline["instances"]
    mc = run(scenario_from_dict(data), instances=n).summary
    assert timeline["timeline"]["bypass_rate"] == {k: 0.0 for k in reviewers}
    assert timeline["p_failure"] == mc["p_failure"]
    assert timeline["expected_loss_per_instance"] == pytest.approx(mc["expected_loss_per_instance"], rel=1e-12)


def test_same_seed_same_outputs(tmp_path):
    data = with_timeline(reviewers={"check": {"servers": 1, "minutes": 4, "max_wait_hours": 2}},
                         sla={"hours": 3, "breach_cost": 10})
    a = run(scenario_from_dict(data), engine="timeline")
    b = run(scenario_from_dict(data), engine="timeline")
    assert json.dumps(a.summary) == json.dumps(b.summary)
    pd.testing.assert_frame_equal(a.timeline, b.timeline)


def test_short_review_capacity_lets_errors_through_and_rework_feeds_it():
    ample = run(scenario_from_dict(with_timeline(reviewers={"check": {"servers": 2, "minutes": 4}})),
                engine="timeline").summary
    short = {"check": {"servers": 1, "minutes": 5.5, "open_hour": 9, "close_hour": 17, "max_wait_hours": 8}}
    tight = run(scenario_from_dict(with_timeline(reviewers=short)), engine="timeline").summary
    assert ample["timeline"]["bypass_rate"]["check"] == 0.0
    assert tight["timeline"]["bypass_rate"]["check"] > 0.05
    assert tight["p_failure"] > ample["p_failure"] + 0.01  # skipped reviews catch nothing
    reworked = with_timeline(reviewers=short, rework={"apply": {"step": "check", "minutes": 30, "cost": 20}})
    more = run(scenario_from_dict(reworked), engine="timeline").summary
    assert more["timeline"]["bypass_rate"]["check"] > tight["timeline"]["bypass_rate"]["check"]
    assert more["timeline"]["horizon_loss"]["mean"] > tight["timeline"]["horizon_loss"]["mean"]


def test_timeline_cli_writes_the_daily_table(tmp_path, write_scenario):
    path = write_scenario(with_timeline(reviewers={"check": {"servers": 2, "minutes": 4}}))
    result = runner.invoke(app, ["run", str(path), "--engine", "timeline", "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    daily = pd.read_parquet(tmp_path / "t" / "timeline.parquet")
    assert len(daily) == 2 * 60 and set(daily.columns) >= {"day", "arrivals", "backlog", "failures", "loss"}
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    loss = summary["timeline"]["horizon_loss"]
    assert loss["var95"] <= loss["max"] and loss["cvar95"] >= loss["var95"]
    assert "horizon loss" in " ".join(result.output.split())


@pytest.mark.parametrize("timeline, fragment", [
    ({"horizon_days": 10, "arrivals": {"per_day": 5}, "reviewers": {"apply": {"servers": 1, "minutes": 3}}},
     "'apply' is not a verify step"),
    ({"horizon_days": 10, "arrivals": {"per_day": 5, "weekly": [1, 1]}}, "timeline.arrivals.weekly"),
    ({"horizon_days": 10, "arrivals": {"per_day": 5}, "rework": {"apply": {"step": "check", "minutes": 3}}},
     "has no reviewers"),
])
def test_bad_timeline_blocks_exit_2(write_scenario, timeline, fragment):
    data = chain()
    data["timeline"] = timeline
    result = runner.invoke(app, ["validate", str(write_scenario(data))])
    assert result.exit_code == 2 and fragment in " ".join(result.output.split()), result.output


def test_timeline_engine_needs_a_timeline(write_scenario, tmp_path):
    result = runner.invoke(app, ["run", str(write_scenario(chain())), "-e", "timeline", "-o", str(tmp_path / "x")])
    assert result.exit_code == 2 and "timeline:" in result.output


def _fates(result) -> pd.DataFrame:
    """Per root (step, error type): its root errors and their fates, from the steps table alone."""
    steps = result.steps
    own = steps[(steps.step == steps.root_cause_step) & (steps.outcome == "error")]
    return own.pivot_table(index=["step", "error_type"], columns="fate", values="count", aggfunc="sum",
                           fill_value=0)


def test_bypassed_reviews_catch_no_root_error():
    """In the chain one error at most reaches the reviewer, so the root errors it caught are exactly the
    instances escalated for a caught error; bypasses (the mixed trace) leave fewer caught, more failed, and the
    same masked (the decision's draws do not depend on the reviewer)."""
    results, masked = {}, {}
    for name, reviewers in (("ample", {"check": {"servers": 2, "minutes": 4}}),
                            ("short", {"check": {"servers": 1, "minutes": 5.5, "open_hour": 9, "close_hour": 17,
                                                 "max_wait_hours": 8}})):
        result = run(scenario_from_dict(with_timeline(reviewers=reviewers)), engine="timeline")
        fates = _fates(result)
        assert fates["caught"].sum() == result.instances["caught"].sum()
        masked[name] = fates["masked"]
        results[name] = {c["error_type"]: c for c in result.summary["cascade"]}
    for etype, short in results["short"].items():
        ample = results["ample"][etype]
        assert short["p_caught_given_root"] < ample["p_caught_given_root"], etype
        assert short["p_action_failure_given_root"] > ample["p_action_failure_given_root"], etype
    pd.testing.assert_series_equal(masked["short"], masked["ample"])
