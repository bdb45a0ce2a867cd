"""Plans know their parameters by scenario path; changing them on the Plan equals changing the scenario."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from sim.core.errors import CascadeError
from sim.engines.analytic import solve
from sim.model.plan import compile_plan
from sim.scenario.load import load_scenario, scenario_from_dict
from tests.conftest import CHAIN, SCENARIOS, chain


def _arrays(plan) -> list:
    out = []
    for s in plan.steps:
        for name in ("rates", "base_error", "susceptibility", "catch"):
            if getattr(s, name) is not None:
                out.append((s.id, name, getattr(s, name).tolist()))
        out += [(s.id, "by_input", k, v.tolist()) for k, v in sorted(s.susceptibility_by_input.items())]
        out.append((s.id, s.false_alarm, s.failure_loss, s.detected_loss, s.escalation_cost, s.audited_by))
    return out + [plan.roots]


def test_parameters_are_named_as_in_a_scenario_file():
    plan = compile_plan(scenario_from_dict(chain()))
    assert plan.parameters == {
        "retrievers.docs.rates.negation_flip": 0.05, "retrievers.docs.rates.topical_miss": 0.1,
        "workflow.steps.judge.base_error_rate": 0.02, "workflow.steps.judge.susceptibility.default": 0.5,
        "workflow.steps.judge.susceptibility.negation_flip": 0.9, "workflow.steps.check.catch.default": 0.3,
        "workflow.steps.check.false_alarm": 0.01, "costs.apply.failure_loss": 1000.0,
        "costs.apply.escalation_cost": 50.0}


@pytest.mark.parametrize("path, value", [
    ("retrievers.contract.rates.role_swap", 0.001),
    ("workflow.steps.legal_review.catch.default", 0.9),
    ("workflow.steps.decide_indemnity.susceptibility.default", 0.1),
    ("workflow.steps.decide_indemnity.base_error_rate", 0.0),  # a root disappears
    ("costs.sign_contract.failure_loss", 1.0),
])
def test_with_parameters_equals_the_changed_scenario(path, value):
    scenario = load_scenario(SCENARIOS / "contract_review.yaml")
    plan = compile_plan(scenario)
    assert path in plan.parameters
    variant = scenario.model_copy(update={"variants": [type(scenario.variants[0])(name="v", set={path: value})]})
    from sim.scenario.load import resolve_variants

    expected = compile_plan(resolve_variants(variant)["v"])
    moved = plan.with_parameters({path: value})
    assert _arrays(moved) == _arrays(expected)
    assert solve(moved).p_failure == solve(expected).p_failure
    assert plan.parameters[path] != value  # the original plan is unchanged


def test_without_catch_is_a_review_that_catches_nothing():
    plan = compile_plan(scenario_from_dict(chain()))
    data = copy.deepcopy(CHAIN)
    data["workflow"]["steps"][2].update(catch={"default": 0.0}, false_alarm=0.0)
    assert _arrays(plan.without_catch(["check"])) == _arrays(compile_plan(scenario_from_dict(data)))
    assert _arrays(plan.without_catch([])) == _arrays(plan)


def test_bad_changes_are_refused_with_the_right_name():
    plan = compile_plan(scenario_from_dict(chain()))
    with pytest.raises(CascadeError, match="did you mean 'retrievers.docs.rates.negation_flip'"):
        plan.with_parameters({"retrievers.docs.rates.negation_flp": 0.1})
    with pytest.raises(CascadeError, match="not a probability"):
        plan.with_parameters({"workflow.steps.check.catch.default": 1.5})
    with pytest.raises(CascadeError, match="sum to 1.05, past 1"):
        plan.with_parameters({"retrievers.docs.rates.topical_miss": 1.0})
    with pytest.raises(CascadeError, match="not an amount"):
        plan.with_parameters({"costs.apply.failure_loss": -1})


def test_reasoning_is_found_by_name():
    plan = compile_plan(scenario_from_dict(chain(error_types=["wrong_tenant"])))
    assert plan.types[plan.reasoning] == "reasoning"
    assert np.all(plan.steps[1].base_error == 0.02)


def test_a_plan_at_a_batch_of_points_is_the_stack_of_the_plans_at_each_point():
    from sim.model.plan import stack

    plan = compile_plan(load_scenario(SCENARIOS / "contract_review.yaml"))
    rate, base = "retrievers.contract.rates.role_swap", "workflow.steps.decide_indemnity.base_error_rate"
    points = {rate: np.array([0.01, 0.0, 0.02]), base: np.array([0.0, 0.0, 0.01]),
              "costs.sign_contract.failure_loss": np.array([1.0, 2.0, 3.0])}
    batch = plan.at_points(points)
    stacked = stack([plan.with_parameters({k: v[i] for k, v in points.items()}) for i in range(3)])
    assert batch.batch == 3 and batch.roots == stacked.roots
    for sa, sb in zip(batch.steps, stacked.steps, strict=True):
        for name in ("rates", "base_error", "susceptibility", "catch", "false_alarm", "failure_loss"):
            x, y = getattr(sa, name), getattr(sb, name)
            assert (x is None) == (y is None) and (x is None or np.allclose(x, y, rtol=1e-12, atol=0)), (sa.id, name)
    part = batch.slice_points(1, 3)
    assert part.batch == 2 and part.roots == batch.roots
    for sa, sb in zip(part.steps, batch.steps, strict=True):
        assert (sa.rates is None or np.array_equal(sa.rates, sb.rates[1:3])) and np.array_equal(
            np.atleast_1d(sa.failure_loss), np.atleast_1d(sb.failure_loss)[1:3] if sb.kind == "act" else [0.0])
    with pytest.raises(CascadeError, match=r"draw 11: workflow.steps.decide_indemnity.base_error_rate: 1.5 is not"):
        plan.at_points({base: np.array([0.0, 1.5])}, first_draw=10)
    with pytest.raises(CascadeError, match=r"draw 1: retrievers.contract.rates sum to .* past 1"):
        plan.at_points({rate: np.array([0.01, 0.99])})
    # A drawn rate the difficulty levels cannot hold (contract review's icc 0.15 at 24 levels) names its draw.
    with pytest.raises(CascadeError, match=r"draw 2: workflow.steps.decide_indemnity.base_error_rate: icc 0.15 "):
        plan.at_points({base: np.array([0.01, 0.02, 1e-7])})
    with pytest.raises(CascadeError, match="one value per point"):
        plan.at_points({rate: np.array([0.01, 0.02]), base: np.array([0.0])})
