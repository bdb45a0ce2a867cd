"""The per-period loss curve (FAIR-style): a period's loss is the sum of the independent losses of the instances
arriving in it (Poisson arrivals), so with one failure mode of fixed loss it is that loss times a Poisson count,
a mixture of Poisson counts over months of different volumes, which the sampled periods match."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import stats

import sim
from sim.core.seeding import stream
from sim.metrics.loss_exceedance import PERIODS, period_exceedance_band, period_losses
from sim.scenario.model import DAYS_PER_MONTH, Timeline
from tests.conftest import with_timeline

LOSS = 1000.0


def test_periods_of_a_single_fixed_loss_are_poisson_counts_times_the_loss():
    share, volume = 0.03, 400.0
    hist = Counter({0.0: 97_000, LOSS: 3_000})  # an instance sample: 3% of instances lose LOSS
    totals = period_losses(hist, np.array([volume]), PERIODS, stream(1, "test/periods", 0))
    counts = totals / LOSS
    assert np.array_equal(counts, np.round(counts)) and np.all(np.diff(totals) >= 0)
    # P(period loss > k x LOSS) = Poisson(volume x share) survival at k; each estimate from PERIODS periods, 4
    # standard errors (a family-wise bound over the eight amounts).
    for k in (4, 8, 10, 12, 14, 16, 20, 25):
        want = stats.poisson.sf(k, volume * share)
        got = float(np.mean(counts > k))
        assert abs(got - want) <= 4 * np.sqrt(want * (1 - want) / PERIODS) + 1e-12, k
    assert totals.mean() == pytest.approx(volume * share * LOSS, rel=4 / np.sqrt(volume * share * PERIODS))
    # Poisson, not binomial: the variance is the mean (a binomial's, 400 x 0.03 x 0.97, is 3% less).
    assert np.var(counts) == pytest.approx(volume * share, rel=0.06)


def test_months_of_different_volumes_give_the_mixture_of_their_poisson_counts():
    share, volumes = 0.03, np.array([100.0, 400.0, 1600.0])
    hist = Counter({0.0: 97_000, LOSS: 3_000})
    counts = period_losses(hist, volumes, PERIODS, stream(2, "test/periods", 0)) / LOSS
    for k in (2, 5, 10, 20, 40, 50, 60):
        want = float(np.mean(stats.poisson.sf(k, volumes * share)))
        got = float(np.mean(counts > k))
        assert abs(got - want) <= 4 * np.sqrt(want * (1 - want) / PERIODS) + 1e-12, k
    lam = volumes * share  # the mixture's variance: the mean plus the variance of the months' means
    assert np.var(counts) == pytest.approx(lam.mean() + lam.var(), rel=0.06)


def test_the_band_is_over_draws_and_its_quantiles_match_the_poisson():
    shares = [0.01, 0.02, 0.03, 0.04, 0.05]
    hists = {"base": [Counter({0.0: 100_000 - round(s * 1e5), LOSS: round(s * 1e5)}) for s in shares]}
    band = period_exceedance_band(hists, np.array([500.0]), seed=3)
    assert band["months"] == 1 and band["draws"] == 5 and len(band["amounts"]) == 24
    q90 = [stats.poisson.ppf(0.9, 500 * s) * LOSS for s in shares]
    got = band["variants"]["base"]["quantiles"]["p90"]
    # The median over draws is the middle draw's quantile (0.03), within one count of the Poisson's.
    assert abs(got["median"] - q90[2]) <= LOSS and got["p05"] <= got["median"] <= got["p95"]
    assert band["variants"]["base"]["mean"]["median"] == pytest.approx(500 * 0.03 * LOSS, rel=0.02)
    curve = band["variants"]["base"]["curve"]
    assert all(r["p05"] <= r["median"] <= r["p95"] for r in curve)
    assert np.all(np.diff([r["median"] for r in curve]) <= 0)  # an exceedance curve falls
    # Same seed, same band; draws are keyed by their index, so a variant with the same losses gets the same.
    again = period_exceedance_band({"base": hists["base"], "same": hists["base"]}, np.array([500.0]), seed=3)
    assert again["variants"]["base"] == band["variants"]["base"] == again["variants"]["same"]


def test_month_volumes_follow_the_arrivals_weekdays_and_bursts():
    data = with_timeline()["timeline"]
    flat = Timeline.model_validate({**data, "horizon_days": 365})
    assert len(flat.month_volumes()) == 12 and flat.month_volumes() == pytest.approx(
        flat.arrivals.per_day * DAYS_PER_MONTH)
    # A burst in the last days of the year is in the last month (every day of the horizon is in one month).
    burst = {**data["arrivals"], "bursts": [{"start_day": 31, "days": 30, "factor": 2.0},
                                            {"start_day": 340, "days": 20, "factor": 3.0}]}
    bursty = Timeline.model_validate({**data, "horizon_days": 365, "arrivals": burst})
    months = bursty.month_volumes()
    assert months.mean() == pytest.approx(bursty.volume_per_month(), rel=1e-12)
    assert months[1] > 1.9 * months[3] and months[0] < months[1]
    assert months[11] > 1.9 * months[3] and months.argmax() == 11
    short = Timeline.model_validate({**data, "horizon_days": 10})
    assert short.month_volumes() == pytest.approx([short.volume_per_month()])


def test_an_uncertainty_run_with_a_volume_reports_the_monthly_curve_and_writes_the_table(write_scenario, tmp_path):
    data = with_timeline()
    data["costs"]["apply"]["failure_loss"] = {"pert": [500, 1000, 2000]}
    scenario = sim.load_scenario(write_scenario(data))
    result = sim.run(scenario, engine="analytic", uncertainty=16)
    per = result.summary["uncertainty"]["loss_exceedance_per_period"]
    volume = scenario.timeline.volume_per_month()
    assert per["per"] == "month" and per["volume_per_month"] == pytest.approx(300 * 365.25 / 12)
    assert per["months"] == len(scenario.timeline.month_volumes()) and per["draws"] == 16
    # A month's mean loss is its volume times an instance's expected loss, draw by draw (to sampling error).
    expected = result.uncertainty["expected_loss_per_instance"].to_numpy()
    assert per["variants"]["base"]["mean"]["median"] == pytest.approx(np.median(expected) * volume, rel=0.05)
    table = result.loss_exceedance
    assert set(table["per"]) == {"instance", "month"} and list(table.columns) == ["per", "variant", "loss", "median",
                                                                                   "p05", "p95"]
    result.write(tmp_path / "run")
    assert (tmp_path / "run" / "loss_exceedance.csv").exists()
    # Without a volume there is no period: no per-period key.
    no_volume = {k: v for k, v in data.items() if k != "timeline"}
    plain = sim.run(sim.load_scenario(write_scenario(no_volume, "plain.yaml")), engine="analytic", uncertainty=4)
    assert "loss_exceedance_per_period" not in plain.summary["uncertainty"]
    assert set(plain.loss_exceedance["per"]) == {"instance"}
