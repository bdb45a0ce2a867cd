"""Difficulty levels: every event keeps its mean and gets exactly the icc written, over the whole range the
checks admit; what the levels cannot represent is refused with the line of `difficulty.icc`."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from sim.core.errors import ScenarioError
from sim.runner import run
from sim.scenario.difficulty import IccOutOfReach, Levels, _slice_means
from sim.scenario.load import scenario_from_dict

ICCS = [0.0, 0.05, 0.15, 0.3, 0.5, 0.65, 0.8, 0.9, 0.95]
PROBABILITIES = [1e-6, 1e-4, 0.001, 0.02, 0.3, 0.58, 0.9, 0.999]


@pytest.mark.parametrize("count", [3, 24, 512])
@pytest.mark.parametrize("icc", ICCS)
def test_levels_keep_the_mean_and_give_the_icc_or_refuse(icc, count):
    levels = Levels.build(icc, count)
    for p in PROBABILITIES:
        if icc > levels.max_icc(p):
            with pytest.raises(IccOutOfReach):
                levels.probabilities(p)
            continue
        q = levels.probabilities(p)
        assert float(q @ levels.weights) == pytest.approx(p, rel=1e-9)
        # P(both of two attempts err) - p^2 = icc * p(1-p): the definition of the intra-class correlation
        assert float((q * q) @ levels.weights) - p * p == pytest.approx(icc * p * (1 - p), rel=1e-6, abs=1e-15)
        assert np.all(np.diff(q) >= -1e-11)  # harder instances never err less (up to rounding)
        assert np.all((q >= 0) & (q <= 1))


def test_enough_levels_reach_every_icc_the_issue_sweeps_for_common_rates():
    levels = Levels.build(0.95, 512)
    assert min(levels.max_icc(p) for p in np.geomspace(1e-3, 0.999, 400)) > 0.95
    # The default 24 levels hold icc up to about 0.68 for any rate of at least 1 in 10,000.
    assert min(Levels.build(0.5, 24).max_icc(p) for p in np.geomspace(1e-4, 0.9999, 2000)) > 0.68


def _slice_means_mp(p: float, rho: float, edges: np.ndarray) -> np.ndarray:
    """The same slice means in 40-digit arithmetic, the quantile found by bisection on log x (or log(1 - x))."""
    mp.mp.dps = 40
    p_, rho_ = mp.mpf(p), mp.mpf(rho)
    a, b = p_ * (1 - rho_) / rho_, (1 - p_) * (1 - rho_) / rho_

    def log_quantile(a, b, u):
        lo, hi = mp.mpf(-1e9), mp.mpf(0)
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if mp.betainc(a, b, 0, mp.exp(mid), regularized=True) < u else (lo, mid)
        return (lo + hi) / 2

    def cumulative(u):  # E[X; quantile below u's]
        if u in (0, 1):
            return p_ * u
        if u <= mp.betainc(a, b, 0, mp.mpf(1) / 2, regularized=True):
            return p_ * mp.betainc(a + 1, b, 0, mp.exp(log_quantile(a, b, u)), regularized=True)
        return p_ - p_ * mp.betainc(b, a + 1, 0, mp.exp(log_quantile(b, a, 1 - u)), regularized=True)

    c = [cumulative(mp.mpf(float(e))) for e in edges]
    return np.array([float((c[i + 1] - c[i]) / (mp.mpf(float(edges[i + 1])) - mp.mpf(float(edges[i]))))
                     for i in range(len(edges) - 1)])


@pytest.mark.parametrize(("p", "rho"), [(1e-4, 0.3), (0.05, 0.999), (0.58, 0.999), (0.97, 0.9)])
def test_slice_means_agree_with_high_precision_arithmetic_at_high_correlation(p, rho):
    edges = Levels.build(0.5, 12).edges
    assert np.max(np.abs(_slice_means(p, rho, edges) - _slice_means_mp(p, rho, edges))) < 1e-12


def test_levels_are_sampled_with_their_weights():
    levels = Levels.build(0.2, 24)
    u = np.linspace(0, 1, 1_000_001)[:-1] + 0.5e-6
    counts = np.bincount(levels.sample(u), minlength=levels.count) / len(u)
    assert np.allclose(counts, levels.weights, atol=2e-6)


def _one_decision(p: float, icc: float, levels: int = 512) -> dict:
    return {"schema_version": 1, "name": "one", "seed": 7, "instances": 100_000,
            "difficulty": {"icc": icc, "levels": levels},
            "retrievers": {"docs": {"kind": "injected", "rates": {"topical_miss": 0.0}}},
            "workflow": {"steps": [
                {"id": "fetch", "kind": "retrieve", "retriever": "docs"},
                {"id": "judge", "kind": "decide", "inputs": ["fetch"], "base_error_rate": p,
                 "susceptibility": {"default": 1.0}},
                {"id": "apply", "kind": "act", "inputs": ["judge"]}]},
            "costs": {"apply": {"failure_loss": 1.0}}}


def _achieved_icc(p: float, pass2: float) -> float:
    # pass^2 = E[(1 - q)^2] = 1 - 2p + E[q^2]  and  icc = (E[q^2] - p^2) / (p (1 - p))
    return (pass2 - 1 + 2 * p - p * p) / (p * (1 - p))


@pytest.mark.parametrize("p", [0.05, 0.58])
def test_both_engines_give_the_mean_rate_and_the_icc_over_the_whole_range(p):
    for icc in ICCS:
        scenario = scenario_from_dict(_one_decision(p, icc))
        exact = run(scenario, engine="analytic").summary
        assert exact["p_failure"] == pytest.approx(p, rel=1e-9)
        assert _achieved_icc(p, exact["pass_k"][1]["p"]) == pytest.approx(icc, abs=1e-7)
        sampled = run(scenario, engine="monte_carlo").summary
        n, m = scenario.instances, sampled["pass_k_sample"]
        # 4 standard errors: a family-wise bound over the 36 comparisons of this test
        assert abs(sampled["p_failure"] - p) < 4 * math.sqrt(p * (1 - p) / n)
        pass2 = exact["pass_k"][1]["p"]
        assert abs(sampled["pass_k"][1]["p"] - pass2) < 4 * math.sqrt(pass2 * (1 - pass2) / m)


def test_an_icc_the_levels_cannot_hold_is_refused_at_its_line(write_scenario):
    from sim.scenario.load import load_scenario

    path = write_scenario(_one_decision(0.001, 0.9, levels=24))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    text = str(err.value)
    assert f"{path}:" in text and "difficulty.icc" in text and "step 'judge'" in text
    assert "raise difficulty.levels" in text
    # A rate rarer than the finest level cannot be that correlated with any number of levels.
    path = write_scenario(_one_decision(1e-6, 0.3, levels=24))
    with pytest.raises(ScenarioError, match="no number of levels can"):
        load_scenario(path)


@pytest.mark.parametrize("count", [3, 24, 512])
@pytest.mark.parametrize("icc", ICCS)
def test_levels_of_a_batch_of_rates_are_those_of_each_rate_alone(icc, count):
    """Solved together (one vectorised root search) or one by one (brentq): the same levels, to rounding; the
    mean and the icc hold as tightly as alone. The tolerance is on the probabilities themselves: two roots a few
    ulps apart move the hardest level of a rare event by a few 1e-12 of its mean at 512 levels."""
    levels = Levels.build(icc, count)
    rates = np.array([p for p in [*PROBABILITIES, 0.0, 1.0, 0.02] if not 0 < p < 1 or icc <= levels.max_icc(p)])
    together = levels.probabilities_batch(rates)
    for p, q in zip(rates, together, strict=True):
        alone = levels.probabilities(float(p))
        assert np.max(np.abs(q - alone)) <= 1e-9 * max(p, 1e-300) + 1e-300
        if 0 < p < 1:
            assert float(q @ levels.weights) == pytest.approx(p, rel=1e-9)
            assert float((q * q) @ levels.weights) - p * p == pytest.approx(icc * p * (1 - p), rel=1e-6, abs=1e-15)
    beyond = [p for p in PROBABILITIES if icc > levels.max_icc(p)]
    if beyond:
        with pytest.raises(IccOutOfReach) as err:
            levels.probabilities_batch(np.array([0.3, beyond[0]]))
        assert err.value.p == beyond[0]
