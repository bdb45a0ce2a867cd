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
