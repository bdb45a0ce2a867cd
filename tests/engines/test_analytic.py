"""The analytic engine on a plan, against the closed form of the chain (retrieve -> decide -> gate -> act)."""

from __future__ import annotations

import pytest

from sim.core.errors import EngineLimitError
from sim.engines import analytic
from sim.engines.analytic import expected_loss, solve
from sim.model.plan import compile_plan
from sim.scenario.load import load_scenario, scenario_from_dict
from tests.conftest import SCENARIOS, chain


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


def test_a_walk_per_root_step_where_one_walk_would_outgrow_the_limit(monkeypatch):
    """Attribution walks one copy of the frontier per root step; where all of them together would pass MAX_ROWS,
    the engine walks the main rows and then each root step's copy on its own: the same figures."""
    plan = compile_plan(load_scenario(SCENARIOS / "contract_review.yaml"))
    together = vars(solve(plan))
    roots = sorted({p for p, _ in plan.roots})
    peaks = []
    for tags in [(), tuple(roots)] + [(p,) for p in roots]:
        walk = analytic._Pass(analytic.stack([plan]), tags=tags)
        walk.run()
        peaks.append(walk.F.peak_rows)
    # The main walk fits, and each root step's copy beside it (such a walk may hold the main walk's peak and
    # MAX_ROWS more); all the copies together do not.
    limit = max(peaks[0], max(peaks[2:]) - peaks[0])
    assert peaks[1] > limit
    monkeypatch.setattr(analytic, "MAX_ROWS", limit)
    walks = []
    real_pass = analytic._Pass
    monkeypatch.setattr(analytic, "_Pass", lambda *a, **k: walks.append(k.get("tags", ())) or real_pass(*a, **k))
    apart = vars(solve(plan))
    assert walks == [tuple(roots), ()] + [(p,) for p in roots]
    for name, value in together.items():
        assert value == pytest.approx(apart[name], rel=1e-12, abs=1e-300), name
    assert apart["caught_from_root"].sum() > 0 and apart["failures_from_root"].sum() > 0


def test_the_limit_still_stops_a_main_walk_past_it(monkeypatch):
    monkeypatch.setattr(analytic, "MAX_ROWS", 2)
    with pytest.raises(EngineLimitError, match="joint table of .* rows .*limit 2\\)"):
        solve(compile_plan(scenario_from_dict(chain())))
