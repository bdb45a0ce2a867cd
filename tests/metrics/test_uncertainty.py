"""Uncertainty runs: propagation agrees with a brute-force nested loop (draw parameters independently, run
today's analytic engine one point at a time) to the Monte Carlo error of that outer loop; seeds reproduce;
the per-draw table and summary keys are what the README says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

import sim
from sim.core.errors import CascadeError
from sim.core.seeding import stream
from sim.engines import analytic
from sim.engines.analytic import solve
from sim.metrics.uncertainty import METRICS, design, evaluate_points, propagate, uncertain_inputs
from sim.model.plan import compile_plan
from sim.output.run_folder import open_run_folder
from sim.scenario.distributions import uncertain_parameters
from sim.scenario.load import resolve_variants, scenario_from_dict
from sim.scenario.model import Uncertainty
from tests.conftest import SCENARIOS, chain

CONCENTRATION = 400
"""Beta(r K, (1 - r) K) around each written rate r: about as sure as a few hundred probes."""


def uncertain_builtin(name: str):
    """A built-in scenario with every injected retrieval rate a Beta around its value and every failure loss a
    PERT from half to twice its value (measured rates carry their Jeffreys Dirichlet posteriors already)."""
    raw = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text())
    for r in raw["retrievers"].values():
        if r["kind"] == "injected":
            r["rates"] = {t: {"beta": [v * CONCENTRATION, (1 - v) * CONCENTRATION]} if v > 0 else v
                          for t, v in r["rates"].items()}
    for cost in raw["costs"].values():
        x = cost["failure_loss"]
        cost["failure_loss"] = {"pert": [x / 2, x, 2 * x]}
    return scenario_from_dict(raw, base_dir=SCENARIOS)


def brute_force(variants, plans, draws: int, seed: int) -> dict[str, pd.DataFrame]:
    """Independent draws with numpy's own samplers (no design, no quantile functions), one analytic `solve` per
    draw and variant; an input shared by variants (same path, same distribution) gets one value per draw."""
    rng = stream(seed, "test/brute_force", 0)
    rows: dict[str, list[dict]] = {v: [] for v in plans}
    for _ in range(draws):
        drawn: dict = {}
        for vname, plan in plans.items():
            changes = {}
            uncertain = uncertain_parameters(variants[vname])
            for path, p in uncertain.items():
                dist = p.distribution
                key = (path, dist)
                if p.marginal is not None and key not in drawn:  # a measured retriever: its rates together
                    retriever = path.rsplit(".", 1)[0]
                    group = [(q, u) for q, u in uncertain.items() if q.rsplit(".", 1)[0] == retriever]
                    alpha = [u.marginal.args[0] for _, u in group]
                    total = sum(p.marginal.args)  # a Dirichlet's marginal Beta(a_t, A - a_t)
                    for (q, u), x in zip(group, rng.dirichlet([*alpha, total - sum(alpha)])[:-1], strict=True):
                        drawn[(q, u.distribution)] = x
                if key not in drawn:
                    a = dist.args
                    if dist.kind == "beta":
                        drawn[key] = rng.beta(*a)
                    elif dist.kind == "lognormal_90":  # a 90% interval: +/- 1.645 sd of the log
                        mu, sd = np.log(a).mean(), np.diff(np.log(a))[0] / (2 * stats.norm.ppf(0.95))
                        drawn[key] = rng.lognormal(mu, sd)
                    else:  # pert
                        w = a[2] - a[0]
                        drawn[key] = a[0] + w * rng.beta(1 + 4 * (a[1] - a[0]) / w, 1 + 4 * (a[2] - a[1]) / w)
                changes[path] = drawn[key]
            x = solve(plan.with_parameters(changes))
            rows[vname].append({"p_failure": x.p_failure, "silent_failure_rate": x.silent_failure_rate,
                                "expected_loss_per_instance": x.expected_failure_loss + x.expected_escalation_cost})
    return {v: pd.DataFrame(r) for v, r in rows.items()}


def _agree(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """Means within 4 standard errors of the two samples; distributions not told apart by a KS test at 0.1%."""
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert abs(a.mean() - b.mean()) <= 4 * se + 1e-12, (what, a.mean(), b.mean(), se)
    if se > 0:
        assert stats.ks_2samp(a, b).pvalue > 1e-3, what


SLOW = pytest.mark.uncertainty


@pytest.mark.parametrize("name", ["chain"] + [pytest.param(n, marks=SLOW) for n in (
    "refund_agent", "ticket_triage", "contract_review", "contract_review_measured", "finetune_tradeoff")])
def test_propagation_agrees_with_a_brute_force_nested_loop(name):
    scenario = scenario_from_dict(_chain_with_variant()) if name == "chain" else uncertain_builtin(name)
    variants = resolve_variants(scenario)
    plans = {v: compile_plan(s, v) for v, s in variants.items()}
    result = propagate(variants, plans, Uncertainty(draws=128), scenario.seed)
    brute = brute_force(variants, plans, draws=64 if "contract" in name or "finetune" in name else 128, seed=5)
    table = result.draws
    for v in plans:
        mine = table[table["variant"] == v].sort_values("draw")
        for m in METRICS:
            _agree(mine[m].to_numpy(), brute[v][m].to_numpy(), f"{v} {m}")
        if v != "base":
            base = table[table["variant"] == "base"].sort_values("draw")
            for m in METRICS:
                _agree(mine[m].to_numpy() - base[m].to_numpy(), (brute[v][m] - brute["base"][m]).to_numpy(),
                       f"{v} - base {m}")
            p = result.summary["differences"][v]["p_lower_expected_loss"]
            q = float((brute[v]["expected_loss_per_instance"] < brute["base"]["expected_loss_per_instance"]).mean())
            assert abs(p - q) <= 4 * np.sqrt(0.25 / 96) + 1e-12
    # The point value next to each band is the scenario's own (today's) number.
    for v, plan in plans.items():
        x = solve(plan)
        assert result.summary["results"][v]["p_failure"]["point"] == pytest.approx(x.p_failure, rel=1e-12)


def _chain_with_variant() -> dict:
    data = chain()
    data["retrievers"]["docs"]["rates"]["negation_flip"] = {"beta": [10, 190]}
    data["costs"]["apply"]["failure_loss"] = {"lognormal_90": [500, 2000]}
    data["variants"] = [{"name": "tuned", "set": {"retrievers.docs.rates.negation_flip": {"beta": [2, 198]}}},
                        {"name": "stricter", "set": {"workflow.steps.check.catch.default": 0.6}}]
    return data


def test_inputs_are_shared_by_variants_unless_a_variant_gives_its_own(write_scenario):
    scenario = sim.load_scenario(write_scenario(_chain_with_variant()))
    inputs = {i.name: i for i in uncertain_inputs(resolve_variants(scenario))}
    assert inputs["retrievers.docs.rates.negation_flip"].variants == ("base", "stricter")
    assert inputs["retrievers.docs.rates.negation_flip@tuned"].variants == ("tuned",)
    assert inputs["costs.apply.failure_loss"].variants == ("base", "tuned", "stricter")


def test_same_seed_same_table_and_a_stricter_reviewer_is_always_better(write_scenario):
    scenario = sim.load_scenario(write_scenario(_chain_with_variant()))
    a = sim.run(scenario, engine="analytic", uncertainty=64)
    b = sim.run(scenario, engine="analytic", uncertainty=64)
    pd.testing.assert_frame_equal(a.uncertainty, b.uncertainty)
    c = sim.run(scenario, engine="analytic", uncertainty=64, seed=scenario.seed + 1)
    assert not a.uncertainty.equals(c.uncertainty)
    assert list(a.uncertainty.columns[:5]) == ["draw", "variant", *METRICS]
    assert set(a.uncertainty.columns[5:]) == {"retrievers.docs.rates.negation_flip",
                                              "retrievers.docs.rates.negation_flip@tuned", "costs.apply.failure_loss"}
    # Catching more of the same draws loses less in every draw (common random numbers: no noise in the sign).
    assert a.summary["uncertainty"]["differences"]["stricter"]["p_lower_expected_loss"] == 1.0
    u = a.summary["uncertainty"]
    for v in ("base", "tuned", "stricter"):
        b_ = u["results"][v]["expected_loss_per_instance"]
        assert b_["p05"] <= b_["median"] <= b_["p95"]
    assert a.summary["p_failure"] == sim.run(scenario, engine="analytic").summary["p_failure"]


def test_nothing_uncertain_and_bad_designs_are_refused(write_scenario):
    with pytest.raises(CascadeError, match="nothing in this scenario is uncertain"):
        sim.run(sim.load_scenario(write_scenario(chain())), engine="analytic", uncertainty=8)
    with pytest.raises(CascadeError, match="power of 2.*64 or 128"):
        design(100, 3, seed=1, kind="sobol")
    with pytest.raises(CascadeError, match="uncertainty must be between 2"):
        sim.run(sim.load_scenario(write_scenario(_chain_with_variant())), engine="analytic", uncertainty=1)
    points = design(128, 3, seed=1, kind="sobol")
    assert points.shape == (128, 3) and 0 < points.min() and points.max() < 1
    # A Latin hypercube puts exactly one point in each of the n slices of every input.
    lhs = design(50, 4, seed=1)
    assert all(sorted(np.floor(lhs[:, j] * 50).astype(int)) == list(range(50)) for j in range(4))


def test_monte_carlo_takes_over_where_the_analytic_engine_cannot(write_scenario, monkeypatch):
    scenario = sim.load_scenario(write_scenario(_chain_with_variant()))
    plan = compile_plan(scenario)
    points = {"retrievers.docs.rates.negation_flip": np.array([0.02, 0.08])}
    exact = evaluate_points(plan, points)
    monkeypatch.setattr(analytic, "MAX_ROWS", 1)  # a workflow past what the analytic engine takes
    sampled = evaluate_points(plan, points, instances=50_000)
    assert sampled.computed_by.startswith("monte_carlo") and exact.computed_by.startswith("analytic")
    p, q = exact.values["p_failure"].to_numpy(), sampled.values["p_failure"].to_numpy()
    assert np.all(np.abs(p - q) <= 4 * np.sqrt(p * (1 - p) / 50_000))


def test_cli_writes_the_per_draw_table_and_summary(write_scenario, tmp_path):
    from typer.testing import CliRunner

    from sim.cli import app

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(write_scenario(_chain_with_variant())), "--engine", "analytic",
                                   "--uncertainty", "32", "--sobol", "64", "--sobol-by", "retriever",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "P(tuned has lower expected loss)" in res.output
    table = pd.read_parquet(out / "uncertainty.parquet")
    assert len(table) == 32 * 3
    folder = open_run_folder(out)
    assert folder.summary["uncertainty"]["draws"] == 32
    sobol = pd.read_csv(out / "sobol.csv")
    assert set(sobol["output"]) == {"expected_loss_per_instance@base", "expected_loss_per_instance@tuned",
                                    "expected_loss_per_instance@stricter", "difference@tuned", "difference@stricter"}
    assert "retriever docs" in set(sobol["group"]) and folder.summary["sobol"]["by"] == "retriever"
    bad = CliRunner().invoke(app, ["run", str(write_scenario(chain(), "plain.yaml")), "--uncertainty", "8",
                                   "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "nothing in this scenario is uncertain" in bad.output


def test_an_uncertainty_block_runs_with_every_run_and_the_option_overrides_its_draws(write_scenario):
    data = _chain_with_variant()
    data["uncertainty"] = {"draws": 64, "design": "sobol"}
    scenario = sim.load_scenario(write_scenario(data))
    assert sim.run(scenario, engine="analytic").summary["uncertainty"]["design"] == "sobol"
    assert len(sim.run(scenario, engine="analytic").uncertainty) == 64 * 3
    with pytest.raises(CascadeError, match="power of 2"):
        sim.run(scenario, engine="analytic", uncertainty=100)
    data["uncertainty"] = {"draws": 1, "design": "grid"}
    with pytest.raises(sim.ScenarioError) as err:
        sim.load_scenario(write_scenario(data, "bad.yaml"))
    assert "uncertainty.draws" in str(err.value) and "uncertainty.design" in str(err.value)


def test_the_loss_exceedance_band_matches_each_draws_failure_probability(write_scenario):
    from sim.metrics.loss_exceedance import exceedance, exceedance_band, loss_histograms

    data = _chain_with_variant()
    data["costs"]["apply"]["failure_loss"] = {"pert": [500, 1000, 2000]}  # every failure costs more than 60
    scenario = sim.load_scenario(write_scenario(data))
    plan = compile_plan(scenario)
    points = {"retrievers.docs.rates.negation_flip": np.array([0.01, 0.05, 0.12])}
    hists = loss_histograms(plan, points, instances=40_000)
    exact = evaluate_points(plan, points).values["p_failure"].to_numpy()
    # One act: an instance loses more than 60 exactly when it failed (escalations cost 50).
    got = np.array([exceedance(h, np.array([60.0]))[0] for h in hists])
    assert np.all(np.abs(got - exact) <= 4 * np.sqrt(exact * (1 - exact) / 40_000))
    assert all(exceedance(h, np.array([0.0]))[0] >= exceedance(h, np.array([60.0]))[0] for h in hists)
    band = exceedance_band({"base": hists}, np.array([60.0]))["variants"]["base"][0]
    assert band["p05"] <= band["median"] <= band["p95"] and band["median"] == pytest.approx(np.median(got))
    summary = sim.run(scenario, engine="analytic", uncertainty=16).summary["uncertainty"]["loss_exceedance"]
    assert summary["draws"] == 16 and set(summary["variants"]) == {"base", "tuned", "stricter"}


def test_a_variant_that_reads_no_uncertain_input_is_the_same_at_every_draw(write_scenario):
    data = _chain_with_variant()
    data["variants"].append({"name": "certain", "set": {"retrievers.docs.rates.negation_flip": 0.02,
                                                        "costs.apply.failure_loss": 1000.0}})
    result = sim.run(sim.load_scenario(write_scenario(data)), engine="analytic", uncertainty=16)
    certain = result.uncertainty[result.uncertainty["variant"] == "certain"]
    assert len(certain) == 16 and certain["expected_loss_per_instance"].nunique() == 1
    block = result.summary["uncertainty"]["results"]["certain"]["expected_loss_per_instance"]
    assert block["p05"] == block["p95"] == block["point"]
    assert len(result.summary["uncertainty"]["loss_exceedance"]["variants"]["certain"]) == 24
