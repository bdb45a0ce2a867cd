"""EVPI and EVPPI: a two-option decision with one Beta input against its closed form; EVPPI <= EVPI for any
group; an input that cannot change the decision is worth 0; an uncertainty run reports them per group."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

import sim
from sim.core.errors import CascadeError
from sim.metrics.uncertainty import design
from sim.metrics.value_of_information import evpi, evppi, partition
from tests.metrics.test_uncertainty import _chain_with_variant

ALPHA, BETA = 12, 88
SCALE, FIXED = 1000.0, 130.0
"""Option `v` loses SCALE x theta with theta ~ Beta(12, 88) (mean 120); `base` loses FIXED (130): v is chosen."""


def two_options(n: int):
    u = design(n, 2, seed=5)
    theta = stats.beta.ppf(u[:, 0], ALPHA, BETA)
    psi = u[:, 1]  # shifts both options alike: knowing it cannot change the choice
    return {"base": FIXED + 100 * psi, "v": SCALE * theta + 100 * psi}, theta, psi


def closed_form() -> float:
    """E[max(0, L_v - L_base)] = SCALE E[(theta - k)+], k = FIXED / SCALE, with
    E[(theta - k)+] = mean (1 - I_k(a + 1, b)) - k (1 - I_k(a, b))."""
    k = FIXED / SCALE
    mean = ALPHA / (ALPHA + BETA)
    return SCALE * (mean * (1 - special.betainc(ALPHA + 1, BETA, k)) - k * (1 - special.betainc(ALPHA, BETA, k)))


def test_one_beta_input_matches_the_closed_form():
    losses, theta, psi = two_options(4096)
    exact = closed_form()
    # With one uncertain input that decides, EVPPI of it is EVPI; 4,096 Latin-hypercube draws get within 1%.
    assert evpi(losses) == pytest.approx(exact, rel=0.01)
    assert evppi(losses, theta) == pytest.approx(exact, rel=0.01)
    # psi moves both losses alike: worth nothing but the estimator's cell noise (well under 1% of EVPI here).
    assert evppi(losses, psi) < 0.01 * exact


def test_evppi_never_exceeds_evpi_and_a_dominated_choice_is_worth_nothing():
    losses, theta, psi = two_options(1000)
    both = np.column_stack([theta, psi])
    for coords in (theta, psi, both, psi[::-1]):
        assert evppi(losses, coords) <= evpi(losses) + 1e-12
    dominated = {"base": losses["base"] + 500, "v": losses["v"]}  # v is better at every draw
    assert evpi(dominated) == 0.0 and evppi(dominated, both) == 0.0
    cells = partition(both, 30)
    assert sorted(np.concatenate(cells).tolist()) == list(range(1000))
    with pytest.raises(CascadeError, match="at least two variants"):
        evpi({"base": losses["base"]})


def test_an_uncertainty_run_reports_evppi_per_group(write_scenario):
    result = sim.run(sim.load_scenario(write_scenario(_chain_with_variant())), engine="analytic", uncertainty=256)
    voi = result.summary["uncertainty"]["value_of_information"]
    assert voi["choice_on_current_information"] in ("base", "tuned", "stricter")
    for by, groups in voi["evppi_per_instance"].items():
        assert set(groups) and all(0 <= x <= voi["evpi_per_instance"] + 1e-12 for x in groups.values()), by
