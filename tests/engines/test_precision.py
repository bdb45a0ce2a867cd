"""--precision: Monte Carlo stops after the first seeding block where every variant's p_failure is as precise as
asked; the stop and every number are the same whatever the chunk size."""

from __future__ import annotations

import pytest

import sim
from sim.core.errors import CascadeError
from sim.core.seeding import BLOCK_SIZE
from sim.core.stats import wilson
from tests.conftest import chain


def test_it_stops_at_a_block_once_precise_and_chunks_change_nothing(write_scenario):
    scenario = sim.load_scenario(write_scenario(chain(variants=[{"name": "v", "set": {
        "workflow.steps.check.catch.default": 0.6}}])))
    # p_failure is about 0.08: a half-width of 0.002 needs about 70,000 instances, so two blocks.
    a = sim.run(scenario, instances=2_000_000, precision=0.002, max_instance_rows=0)
    b = sim.run(scenario, instances=2_000_000, precision=0.002, max_instance_rows=0, chunk_size=10_000)
    assert a.summary == b.summary
    used = a.summary["precision"]["instances_used"]
    assert used == a.summary["instances"] == 2 * BLOCK_SIZE and a.summary["precision"]["reached"]
    for block in (a.summary, a.summary["variant_results"]["v"]):
        lo, hi = block["p_failure_ci95"]
        assert (hi - lo) / 2 <= 0.002
    # One block fewer would not have been precise enough for some variant.
    fewer = sim.run(scenario, instances=BLOCK_SIZE, max_instance_rows=0)
    assert any((hi - lo) / 2 > 0.002 for lo, hi in (wilson(p * BLOCK_SIZE, BLOCK_SIZE) for p in (
        fewer.summary["p_failure"], fewer.summary["variant_results"]["v"]["p_failure"])))
    capped = sim.run(scenario, instances=50_000, precision=1e-5, max_instance_rows=0)
    assert capped.summary["precision"] == {"p_failure_ci95_half_width": 1e-5, "reached": False,
                                           "instances_used": 50_000, "instances_allowed": 50_000}


def test_precision_is_for_monte_carlo_only(write_scenario):
    scenario = sim.load_scenario(write_scenario(chain()))
    with pytest.raises(CascadeError, match="precision is a p_failure CI half-width"):
        sim.run(scenario, engine="analytic", precision=0.01)
    with pytest.raises(CascadeError, match="precision is a p_failure CI half-width"):
        sim.run(scenario, precision=0.7)


def _relative_half_width(block: dict) -> float:
    lo, hi = block["expected_loss_per_instance_ci95"]
    return (hi - lo) / 2 / block["expected_loss_per_instance"]


def test_relative_precision_on_expected_loss_stops_at_a_block_whatever_the_chunks(write_scenario):
    scenario = sim.load_scenario(write_scenario(chain(variants=[{"name": "v", "set": {
        "workflow.steps.check.catch.default": 0.6}}])))
    # Loss is 1,000 on about 8% of instances (plus escalations): a relative half-width of 3% needs about
    # 1.96^2 x 0.92 / 0.08 / 0.03^2 = 49,000 instances for base, more for v: the first block is not enough
    # for every variant, a few are.
    a = sim.run(scenario, instances=2_000_000, precision_loss=0.03, max_instance_rows=0)
    b = sim.run(scenario, instances=2_000_000, precision_loss=0.03, max_instance_rows=0, chunk_size=30_000,
                workers=2)
    assert a.summary == b.summary
    p = a.summary["precision"]
    assert p["reached"] and p["expected_loss_ci95_relative_half_width"] == 0.03
    assert "p_failure_ci95_half_width" not in p and p["instances_used"] == a.summary["instances"]
    blocks = p["instances_used"] // BLOCK_SIZE
    assert blocks >= 2 and p["instances_used"] == blocks * BLOCK_SIZE
    for block in (a.summary, a.summary["variant_results"]["v"]):
        assert _relative_half_width(block) <= 0.03
    # One block fewer would not have been precise enough for some variant.
    fewer = sim.run(scenario, instances=(blocks - 1) * BLOCK_SIZE, max_instance_rows=0)
    assert max(_relative_half_width(x) for x in (fewer.summary, fewer.summary["variant_results"]["v"])) > 0.03
    # Both goals: it stops when the later of the two is reached.
    both = sim.run(scenario, instances=2_000_000, precision_loss=0.03, precision=0.0005, max_instance_rows=0)
    alone = sim.run(scenario, instances=2_000_000, precision=0.0005, max_instance_rows=0)
    assert both.summary["instances"] == max(alone.summary["instances"], a.summary["instances"])
    assert set(both.summary["precision"]) >= {"p_failure_ci95_half_width", "expected_loss_ci95_relative_half_width"}


def test_a_loss_never_seen_is_not_precise_and_bad_goals_are_refused(write_scenario):
    scenario = sim.load_scenario(write_scenario(chain()))
    nothing = scenario.model_copy(update={"costs": {k: v.model_copy(update={"failure_loss": 0.0,
                                                                            "escalation_cost": 0.0})
                                                    for k, v in scenario.costs.items()}})
    capped = sim.run(nothing, instances=2 * BLOCK_SIZE, precision_loss=0.5, max_instance_rows=0)
    assert capped.summary["precision"]["reached"] is False and capped.summary["instances"] == 2 * BLOCK_SIZE
    for bad in (0.0, 1.0, True):
        with pytest.raises(CascadeError, match="precision_loss is the expected loss's CI half-width"):
            sim.run(scenario, precision_loss=bad)
    with pytest.raises(CascadeError, match="for the monte_carlo engine"):
        sim.run(scenario, engine="analytic", precision_loss=0.02)


def test_the_cli_takes_precision_loss(write_scenario, tmp_path):
    import json

    from typer.testing import CliRunner

    from sim.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(write_scenario(chain())), "--out", str(out), "-n", "400000",
                                      "--precision-loss", "0.05", "--max-instance-rows", "0", "-q"])
    assert result.exit_code == 0, result.output
    precision = json.loads((out / "summary.json").read_text())["precision"]
    assert precision["reached"] and precision["expected_loss_ci95_relative_half_width"] == 0.05
    assert precision["instances_used"] < 400_000
    result = CliRunner().invoke(app, ["run", str(write_scenario(chain())), "--out", str(tmp_path / "bad"),
                                      "--precision-loss", "0"])
    assert result.exit_code == 2 and "--precision-loss" in result.output
