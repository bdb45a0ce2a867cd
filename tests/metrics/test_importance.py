"""Counterfactuals and importance measures: each counterfactual equals the engine run on the changed scenario;
Fussell-Vesely, RRW and RAW follow their definitions; Birnbaum is the exact slope where loss is linear (icc 0)."""

from __future__ import annotations

import pytest

import sim
from sim.engines.analytic import expected_loss
from sim.metrics.importance import counterfactuals, importance
from sim.metrics.sensitivity import sensitivity
from sim.model.plan import compile_plan
from tests.conftest import SCENARIOS, chain


def test_each_counterfactual_is_the_changed_scenario_run_exactly():
    plan = compile_plan(sim.load_scenario(SCENARIOS / "contract_review.yaml"))
    table = counterfactuals(plan).set_index("counterfactual")
    reference = expected_loss(plan)
    assert table.loc["as is", "expected_loss_per_instance"] == pytest.approx(reference, rel=1e-12)
    rates = [p for p in plan.parameters if p.startswith("retrievers.")]
    oracle = expected_loss(plan.with_parameters({p: 0.0 for p in rates}))
    assert table.loc["oracle retrieval (every retriever perfect)", "loss_removed"] == pytest.approx(
        reference - oracle, rel=1e-12)
    removed = expected_loss(plan.without_catch(["legal_review"]))
    assert table.loc["verifier legal_review removed", "expected_loss_per_instance"] == pytest.approx(removed, rel=1e-12)
    # One perfect retriever removes part of what perfect retrieval everywhere removes; a perfect gate removes
    # loss and a removed gate adds loss.
    assert 0 < table.loc["retriever contract perfect", "loss_removed"] <= table.loc[
        "oracle retrieval (every retriever perfect)", "loss_removed"]
    assert table.loc["verifier legal_review perfect", "loss_removed"] > 0 > table.loc[
        "verifier legal_review removed", "loss_removed"]


def test_importance_measures_follow_their_definitions(write_scenario):
    plan = compile_plan(sim.load_scenario(write_scenario(chain())))
    table = importance(plan).set_index("path")
    reference = expected_loss(plan)
    slopes = sensitivity(plan).set_index("path")["importance"]  # icc 0: loss is linear in each probability
    for path, row in table.iterrows():
        without = expected_loss(plan.with_parameters({path: 0.0}))
        at_max = expected_loss(plan.with_parameters({path: row["p_max"]}))
        assert row["fussell_vesely"] == pytest.approx((reference - without) / reference, rel=1e-12)
        assert row["rrw"] == pytest.approx(reference / without, rel=1e-12)
        assert row["raw"] == pytest.approx(at_max / reference, rel=1e-12)
        assert row["birnbaum"] == pytest.approx(slopes[path], rel=1e-9)
    assert table.loc["retrievers.docs.rates.topical_miss", "p_max"] == pytest.approx(1 - 0.05)


def test_cli_importance_writes_both_tables(write_scenario, tmp_path):
    result = sim.run(sim.load_scenario(write_scenario(chain())), engine="analytic", importance=True)
    assert {"counterfactuals", "importance"} <= set(result.summary)
    out = result.write(tmp_path / "run")
    assert (out / "counterfactuals.csv").is_file() and (out / "importance.csv").is_file()
