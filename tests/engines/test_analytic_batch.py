"""The batched analytic walk (one plan at many parameter points at once) gives what the point-by-point engine
gives at every point, to 1e-12, on every built-in scenario; points where a root is absent included."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.core.errors import CascadeError
from sim.core.seeding import stream
from sim.engines.analytic import headline_batch, points_per_walk, solve
from sim.model.plan import compile_plan, stack
from tests.conftest import BUILTIN_SCENARIOS


@pytest.mark.parametrize("path", BUILTIN_SCENARIOS, ids=[p.stem for p in BUILTIN_SCENARIOS])
def test_a_batched_walk_equals_the_engine_point_by_point(path):
    plan = compile_plan(sim.load_scenario(path))
    rng = stream(1, "test/batch", 0)
    probabilities = [k for k in plan.parameters if not k.startswith("costs.")]
    rate = next(k for k in probabilities if k.startswith("retrievers."))
    plans = []
    for i in range(6):
        changes = {k: plan.parameters[k] * rng.uniform(0.5, 1.0) for k in probabilities}
        changes.update({k: v * rng.uniform(0.5, 2.0) for k, v in plan.parameters.items() if k.startswith("costs.")})
        if i == 3:
            changes[rate] = 0.0  # this point lacks a root the others have: the union of roots carries it at 0
        plans.append(plan.with_parameters(changes))
    batch = headline_batch(stack(plans), cascade=True)
    for i, p in enumerate(plans):
        x = solve(p)
        want = {"p_failure": x.p_failure, "silent_failure_rate": x.silent_failure_rate,
                "expected_loss_per_instance": x.expected_failure_loss + x.expected_escalation_cost,
                "expected_failure_loss_per_instance": x.expected_failure_loss,
                "expected_escalation_cost_per_instance": x.expected_escalation_cost,
                "root_errors_per_instance": x.root_errors, "amplification": x.action_failures / x.root_errors}
        for k, v in want.items():
            assert batch[k][i] == pytest.approx(v, rel=1e-12, abs=1e-15), (i, k)
    assert points_per_walk(plan) >= 1


def test_stack_refuses_what_it_cannot_stack(tmp_path):
    plan = compile_plan(sim.load_scenario(BUILTIN_SCENARIOS[0]))
    other = compile_plan(sim.load_scenario([p for p in BUILTIN_SCENARIOS if "triage" in p.stem][0]))
    with pytest.raises(CascadeError, match="one scenario structure"):
        stack([plan, other])
    with pytest.raises(CascadeError, match="one parameter point each"):
        stack([stack([plan])])
    with pytest.raises(CascadeError, match="not a stacked batch"):
        stack([plan, plan]).with_parameters({})
    assert headline_batch(stack([plan, plan]))["p_failure"] == pytest.approx([solve(plan).p_failure] * 2, rel=1e-12)


def test_walking_a_batch_in_slices_gives_the_one_walk(monkeypatch):
    from sim.engines import analytic

    plan = compile_plan(sim.load_scenario(BUILTIN_SCENARIOS[0]))
    rate = next(k for k in plan.parameters if k.startswith("retrievers."))
    points = plan.at_points({rate: plan.parameters[rate] * np.linspace(0.5, 1.5, 40)})
    whole = headline_batch(points)
    monkeypatch.setattr(analytic, "BATCH_BYTES", 1)  # one point a walk after the first
    sliced = analytic.headline_slices(points)
    for k, v in whole.items():
        assert sliced[k] == pytest.approx(v, rel=1e-12, abs=1e-15)
