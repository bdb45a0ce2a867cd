"""Results that are determined exactly: invariants of the model, reproducibility, chunk-size independence."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sim.core.yaml_source import SourceMap
from sim.runner import run
from sim.scenario.load import load_scenario, scenario_from_dict
from sim.scenario.overrides import apply_set, base_dict
from tests.conftest import BUILTIN_SCENARIOS, chain


def _silenced(data: dict) -> dict:
    """All retrieval error rates and reasoning-error rates set to zero."""
    out = json.loads(json.dumps(data))
    for name, r in out["retrievers"].items():
        out["retrievers"][name] = {"kind": "injected", "rates": {t: 0.0 for t in r["rates"]}}
    for s in out["workflow"]["steps"]:
        if s["kind"] == "decide":
            s["base_error_rate"] = 0.0
    return out


@pytest.mark.parametrize("path", BUILTIN_SCENARIOS, ids=lambda p: p.stem)
@pytest.mark.parametrize("engine", ["analytic", "monte_carlo"])
def test_zero_error_rates_mean_zero_failures(path, engine):
    data = _silenced(base_dict(load_scenario(path)))
    s = run(scenario_from_dict(data), engine=engine, instances=20_000).summary
    assert s["p_failure"] == 0.0
    assert s["silent_failure_rate"] == 0.0
    assert s["expected_failure_loss_per_instance"] == 0.0
    assert s["root_errors_per_instance"] == 0.0
    assert all(p["p"] == 1.0 for p in s["pass_k"])


@pytest.mark.parametrize("engine", ["analytic", "monte_carlo"])
def test_a_perfect_gate_leaves_no_failure(engine):
    data = chain()
    data["workflow"]["steps"][2]["catch"] = {"default": 1.0}
    s = run(scenario_from_dict(data), engine=engine).summary
    assert s["p_failure"] == 0.0 and s["silent_failure_rate"] == 0.0
    assert s["expected_escalation_cost_per_instance"] > 0  # caught errors cost an escalation instead


@pytest.mark.parametrize("engine", ["analytic", "monte_carlo"])
def test_a_perfect_audit_leaves_no_silent_failure(engine):
    data = chain()
    data["workflow"]["steps"].append({"id": "audit", "kind": "verify", "inputs": ["apply"], "catch": {"default": 1.0}})
    data["costs"]["apply"]["detected_loss"] = 100.0
    s = run(scenario_from_dict(data), engine=engine).summary
    assert s["p_failure"] > 0.05
    assert s["silent_failure_rate"] == 0.0
    # every failure was detected, so it costs detected_loss, not failure_loss
    assert s["expected_failure_loss_per_instance"] == pytest.approx(s["action_failures_per_instance"] * 100.0)


@pytest.mark.parametrize("engine", ["analytic", "monte_carlo"])
def test_susceptibility_zero_stops_an_error_type(engine):
    data = chain()
    data["workflow"]["steps"][1]["susceptibility"] = {"default": 0.5, "negation_flip": 0.0}
    result = run(scenario_from_dict(data), engine=engine)
    neg = next(c for c in result.summary["cascade"] if c["error_type"] == "negation_flip")
    assert neg["p_root_error"] > 0
    assert neg["p_action_failure_given_root"] == 0.0
    if engine == "monte_carlo":
        steps = result.steps
        passed = steps[(steps.step == "judge") & (steps.outcome == "error") & (steps.error_type == "negation_flip")]
        masked = steps[(steps.step == "judge") & (steps.outcome == "masked") & (steps.error_type == "negation_flip")]
        assert passed.empty and masked["count"].sum() > 0


def test_same_seed_same_tables_other_seed_other_tables(tmp_path):
    scenario = load_scenario(BUILTIN_SCENARIOS[0])
    a = run(scenario, instances=50_000)
    b = run(scenario, instances=50_000)
    assert json.dumps(a.summary) == json.dumps(b.summary)
    pd.testing.assert_frame_equal(a.instances, b.instances)
    pd.testing.assert_frame_equal(a.steps, b.steps)
    c = run(scenario, instances=50_000, seed=scenario.seed + 1)
    assert c.summary["p_failure"] != a.summary["p_failure"]


def test_results_do_not_depend_on_chunk_size():
    scenario = load_scenario(BUILTIN_SCENARIOS[-1])
    runs = [run(scenario, instances=150_000, chunk_size=size, pass_k_sample=70_000)
            for size in (150_000, 65_536, 10_007)]
    first = json.dumps(runs[0].summary)
    for other in runs[1:]:
        assert json.dumps(other.summary) == first
        pd.testing.assert_frame_equal(other.instances, runs[0].instances)
        pd.testing.assert_frame_equal(other.steps, runs[0].steps)


def test_results_do_not_depend_on_worker_count():
    scenario = load_scenario(BUILTIN_SCENARIOS[0])
    one = run(scenario, instances=120_000, chunk_size=40_000, pass_k_sample=50_000)
    two = run(scenario, instances=120_000, chunk_size=40_000, pass_k_sample=50_000, workers=2)
    assert json.dumps(one.summary) == json.dumps(two.summary)
    pd.testing.assert_frame_equal(one.instances, two.instances)
    pd.testing.assert_frame_equal(one.steps, two.steps)


def test_variant_equal_to_base_differs_by_exactly_zero():
    data = chain(variants=[{"name": "same", "set": {"retrievers.docs.rates.negation_flip": 0.05}}])
    for engine in ("monte_carlo", "analytic"):
        d = run(scenario_from_dict(data), engine=engine).summary["differences"]["same"]
        assert d["p_failure"]["difference"] == 0.0 and d["p_failure"]["ci95"] == [0.0, 0.0]
        assert d["expected_loss_per_instance"]["difference"] == 0.0


def test_common_random_numbers_make_paired_differences_tight():
    """A small improvement is resolved by the paired difference although the two CIs overlap."""
    data = chain(instances=50_000, variants=[{"name": "better", "set": {"retrievers.docs.rates.negation_flip": 0.045}}])
    s = run(scenario_from_dict(data)).summary
    base, better = s, s["variant_results"]["better"]
    d = s["differences"]["better"]["p_failure"]
    assert base["p_failure_ci95"][0] < better["p_failure_ci95"][1]  # the unpaired intervals overlap
    assert d["ci95"][1] < 0  # the paired difference is significantly negative
    assert d["ci95"][1] - d["ci95"][0] < (base["p_failure_ci95"][1] - base["p_failure_ci95"][0]) / 3


def test_pass_k_is_a_power_without_correlation_and_decays_slower_with_it():
    independent = run(scenario_from_dict(chain()), engine="analytic").summary["pass_k"]
    p1 = independent[0]["p"]
    assert [p["p"] for p in independent] == pytest.approx([p1 ** k for k in range(1, 9)], rel=1e-12)
    summary = run(scenario_from_dict(chain(difficulty={"icc": 0.3})), engine="analytic").summary
    correlated = summary["pass_k"]
    # Difficulty keeps every step's mean rate (the first step's errors are untouched) ...
    neg = next(c for c in summary["cascade"] if c["error_type"] == "negation_flip")
    assert neg["p_root_error"] == pytest.approx(0.05, rel=1e-9)
    # ... but errors now pile up on hard instances, so fewer instances fail at all.
    assert p1 < correlated[0]["p"] < p1 + 0.01
    for k in range(1, 8):
        assert correlated[k]["p"] > correlated[0]["p"] ** (k + 1) + 1e-4


def test_variant_overrides_by_step_id():
    data = base_dict(load_scenario(BUILTIN_SCENARIOS[0]))
    changed = apply_set(data, {"workflow.steps.legal_review.catch.default": 0.9}, (), SourceMap())
    step = next(s for s in changed["workflow"]["steps"] if s["id"] == "legal_review")
    assert step["catch"]["default"] == 0.9
    assert next(s for s in data["workflow"]["steps"] if s["id"] == "legal_review")["catch"]["default"] != 0.9


@pytest.mark.parametrize("path", BUILTIN_SCENARIOS, ids=lambda p: p.stem)
def test_each_instance_names_the_acts_that_failed_as_the_steps_table_counts_them(path):
    result = run(load_scenario(path), instances=30_000)
    inst = result.instances
    assert result.summary["instance_rows"]["mode"] == "all"  # every instance kept: the counts must match exactly
    named = inst.failed_acts.astype(str).str.split(",").map(lambda acts: [a for a in acts if a])
    assert (named.map(len) == inst.n_failed_actions).all()
    acts = named.explode().dropna()
    counted = acts.groupby(inst.variant.astype(str).loc[acts.index]).value_counts()
    steps = result.steps[(result.steps.kind == "act") & (result.steps.outcome == "error")]
    expected = steps.groupby([steps.variant.astype(str), steps.step.astype(str)])["count"].sum()
    assert {k: int(v) for k, v in counted.items()} == {k: int(v) for k, v in expected.items() if v}


@pytest.mark.parametrize("path", BUILTIN_SCENARIOS, ids=lambda p: p.stem)
@pytest.mark.parametrize("engine", ["analytic", "monte_carlo"])
def test_every_root_error_fails_is_caught_or_is_masked(path, engine):
    """Per root and variant: P(action failure | root) + P(caught | root) + P(masked | root) = 1; for a sampled
    run, in counts of the steps table: at the root's step, its error rows split by fate are those."""
    result = run(load_scenario(path), engine=engine, instances=20_000)
    s = result.summary
    for name, block in {"base": s, **s.get("variant_results", {})}.items():
        for c in block["cascade"]:
            fates = [c[f"p_{f}_given_root"] for f in ("action_failure", "caught", "masked")]
            if c["p_root_error"] == 0:
                assert fates == [None, None, None]
                continue
            assert sum(fates) == pytest.approx(1.0, abs=1e-12) and min(fates) >= 0, (name, c)
            if engine == "analytic":
                continue
            steps = result.steps
            own = steps[(steps.variant == name) & (steps.step == c["root_cause_step"])
                        & (steps.root_cause_step == c["root_cause_step"]) & (steps.error_type == c["error_type"])]
            assert set(own.outcome) == {"error"} and set(own.fate) <= {"failed", "caught", "masked"}
            count = own.set_index("fate")["count"]
            errors = round(c["p_root_error"] * s["instances"])
            assert count.sum() == errors, (name, c)
            for fate, key in (("failed", "action_failure"), ("caught", "caught"), ("masked", "masked")):
                assert count.get(fate, 0) == round(c[f"p_{key}_given_root"] * errors), (name, c, fate)
