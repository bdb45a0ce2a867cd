"""The analytic engine on a plan, against the closed form of the chain (retrieve -> decide -> gate -> act)."""

from __future__ import annotations

import pytest

from sim.engines.analytic import expected_loss, solve
from sim.model.plan import compile_plan
from sim.scenario.load import scenario_from_dict
from tests.conftest import chain


def _closed_form(catch: float) -> tuple[float, float]:
    # Retrieval errs: negation 0.05 (carried 0.9), miss 0.1 (carried 0.5); a decision on correct (or masked)
    # context errs 0.02; the gate catches `catch` of errors and flags 0.01 of correct inputs.
    carried = 0.05 * 0.9 + 0.1 * 0.5
    wrong = carried + (1 - carried) * 0.02
    p_failure = wrong * (1 - catch)
    escalations = wrong * catch + (1 - wrong) * 0.01
    return p_failure, p_failure * 1000 + escalations * 50


@pytest.mark.parametrize("catch", [0.3, 0.0, 0.75, 1.0])
def test_chain_matches_its_closed_form(catch):
    plan = compile_plan(scenario_from_dict(chain())).with_parameters({"workflow.steps.check.catch.default": catch})
    p_failure, loss = _closed_form(catch)
    exact = solve(plan)
    assert exact.p_failure == pytest.approx(p_failure, rel=1e-12)
    assert expected_loss(plan) == pytest.approx(loss, rel=1e-12)
    # Attribution adds up: failures by root sum to all failures.
    assert exact.failures_from_root.sum() == pytest.approx(exact.action_failures, rel=1e-12)
