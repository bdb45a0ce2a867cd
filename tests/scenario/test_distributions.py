"""Distributions written in place of numbers: their mean is the point value, they round-trip, bad ones are
refused with their line, variants may give their own, measured counts become Jeffreys posteriors."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy import stats

import sim
from sim.core.errors import ScenarioError
from sim.core.seeding import stream
from sim.engines.analytic import solve
from sim.model.plan import compile_plan
from sim.scenario.distributions import uncertain_parameters
from sim.scenario.load import dump_scenario_yaml, resolve_variants
from sim.scenario.model import Distribution
from tests.conftest import SCENARIOS, chain


def uncertain_chain() -> dict:
    data = chain()
    data["retrievers"]["docs"]["rates"]["negation_flip"] = {"beta": [5, 95]}
    data["workflow"]["steps"][1]["base_error_rate"] = {"pert": [0.01, 0.02, 0.06]}
    data["workflow"]["steps"][2]["catch"]["default"] = {"uniform": [0.2, 0.4]}
    data["costs"]["apply"]["failure_loss"] = {"lognormal_90": [500, 2000]}
    return data


def test_distribution_means_and_quantiles_match_scipy():
    beta = Distribution(beta=(5, 95))
    assert beta.mean == pytest.approx(0.05)
    assert beta.ppf(np.array([0.5]))[0] == pytest.approx(stats.beta.median(5, 95))
    pert = Distribution(pert=(0.01, 0.02, 0.06))
    assert pert.mean == pytest.approx((0.01 + 4 * 0.02 + 0.06) / 6)
    # BetaPERT's mean from its quantile function (numerically) equals the closed form.
    u = (np.arange(200_000) + 0.5) / 200_000
    assert pert.ppf(u).mean() == pytest.approx(pert.mean, rel=1e-4)
    logn = Distribution(lognormal_90=(500, 2000))
    assert logn.ppf(np.array([0.05, 0.95])) == pytest.approx([500, 2000])  # a 90% interval, as written
    assert logn.ppf(u).mean() == pytest.approx(logn.mean, rel=1e-3)
    assert Distribution(uniform=(0.2, 0.4)).mean == pytest.approx(0.3)


def test_the_point_value_is_the_mean_and_gives_the_numbers_of_the_plain_scenario(write_scenario):
    uncertain = sim.load_scenario(write_scenario(uncertain_chain()))
    plain = chain()
    for path, dist in uncertain.distributions.items():
        assert dist == Distribution.model_validate(_at(uncertain_chain(), path))
    plain["retrievers"]["docs"]["rates"]["negation_flip"] = 0.05
    plain["workflow"]["steps"][1]["base_error_rate"] = Distribution(pert=(0.01, 0.02, 0.06)).mean
    plain["workflow"]["steps"][2]["catch"]["default"] = 0.3
    plain["costs"]["apply"]["failure_loss"] = Distribution(lognormal_90=(500, 2000)).mean
    point = sim.load_scenario(write_scenario(plain, "plain.yaml"))
    a, b = solve(compile_plan(uncertain)), solve(compile_plan(point))
    for name in ("p_failure", "expected_failure_loss", "expected_escalation_cost", "silent_failure_rate"):
        assert getattr(a, name) == getattr(b, name)  # exactly: the same numbers reach the engine
    assert set(uncertain.distributions) == {"retrievers.docs.rates.negation_flip",
                                            "workflow.steps.judge.base_error_rate",
                                            "workflow.steps.check.catch.default", "costs.apply.failure_loss"}


def _at(data: dict, path: str):
    """The raw value at a parameter path of the chain scenario (steps by id)."""
    parts = path.split(".")
    if parts[0] == "workflow":
        node = next(s for s in data["workflow"]["steps"] if s["id"] == parts[2])
        parts = parts[3:]
    else:
        node = data
    for p in parts:
        node = node[p]
    return node


def test_the_resolved_scenario_round_trips_its_distributions(write_scenario, tmp_path):
    data = uncertain_chain()
    data["variants"] = [{"name": "tuned", "set": {"retrievers.docs.rates.negation_flip": {"beta": [1, 99]},
                                                  "workflow.steps.check.catch.default": 0.5}}]
    scenario = sim.load_scenario(write_scenario(data))
    again = sim.load_scenario(write_scenario(yaml.safe_load(dump_scenario_yaml(scenario)), "again.yaml"))
    assert again == scenario
    tuned = resolve_variants(scenario)["tuned"]
    assert tuned.distributions["retrievers.docs.rates.negation_flip"] == Distribution(beta=(1, 99))
    assert tuned.retrievers["docs"].rates["negation_flip"] == pytest.approx(0.01)
    # A plain number in a variant replaces the base's distribution: that parameter is certain there.
    assert "workflow.steps.check.catch.default" not in tuned.distributions
    assert tuned.step("check").catch["default"] == 0.5


@pytest.mark.parametrize("where, value, message", [
    (("retrievers", "docs", "rates", "negation_flip"), {"beta": [0, 3]}, "greater than 0"),
    (("retrievers", "docs", "rates", "negation_flip"), {"lognormal_90": [0.01, 0.1]}, "lognormal_90 is for amounts"),
    (("retrievers", "docs", "rates", "negation_flip"), {"uniform": [0.5, 1.5]}, "goes past it"),
    (("retrievers", "docs", "rates", "negation_flip"), {"pert": [0.3, 0.1, 0.5]}, "low <= mode <= high"),
    (("retrievers", "docs", "rates", "negation_flip"), {"beta": [1, 2], "uniform": [0, 1]}, "exactly one of"),
    (("retrievers", "docs", "rates", "negation_flip"), {"gamma": [1, 2]}, "gamma"),
    (("costs", "apply", "failure_loss"), {"beta": [1, 2]}, "for an amount use pert"),
    (("costs", "apply", "failure_loss"), {"uniform": [-5, 10]}, "goes past it"),
])
def test_a_bad_distribution_is_refused_with_its_line(write_scenario, where, value, message):
    data = chain()
    node = data
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    path = write_scenario(data)
    with pytest.raises(ScenarioError) as err:
        sim.load_scenario(path)
    text = str(err.value)
    assert message in text and f"{path}:" in text and ".".join(where) in text
    line = int(text.split(f"{path}:")[1].split(":")[0])
    assert where[-1] in path.read_text().splitlines()[line - 1]


def test_distributions_are_refused_where_no_probability_or_cost_stands(write_scenario):
    with pytest.raises(ScenarioError, match="distributions.*write a distribution in place"):
        sim.load_scenario(write_scenario(chain(distributions={"x": {"beta": [1, 2]}})))
    with pytest.raises(ScenarioError, match="difficulty.icc"):
        sim.load_scenario(write_scenario(chain(difficulty={"icc": {"beta": [1, 2]}})))


def test_a_variant_with_a_bad_distribution_is_refused_at_its_set_line(write_scenario):
    data = chain(variants=[{"name": "v", "set": {"retrievers.docs.rates.topical_miss": {"uniform": [0.3, 0.2]}}}])
    with pytest.raises(ScenarioError, match="in variant 'v'.*low < high"):
        sim.load_scenario(write_scenario(data))


def test_measured_rates_become_jeffreys_posteriors_only_for_uncertainty():
    scenario = sim.load_scenario(SCENARIOS / "contract_review_measured.yaml")
    uncertain = uncertain_parameters(scenario)
    measured = [n for n, r in scenario.retrievers.items() if r.kind == "measured"]
    assert measured and not scenario.distributions
    for name in measured:
        r = scenario.retrievers[name]
        n = r.counts["queries"]
        kinds = len(r.rates)
        for t, rate in r.rates.items():
            p = uncertain[f"retrievers.{name}.rates.{t}"]
            k = r.counts[t]
            assert rate == pytest.approx(k / n)  # the point value stays the measured rate
            # One Dirichlet over the outcomes of a probe: each rate's marginal is Beta(k + 1/2, n - k + K/2).
            assert p.own == Distribution(beta=(k + 0.5, n - k + kinds / 2)) and "Jeffreys" in p.source


def test_measured_rates_are_drawn_jointly_and_never_sum_past_one():
    """The stick-breaking draws are a Dirichlet: moments equal numpy's own Dirichlet sampler's, and no draw of
    a retriever's rates sums past 1 (independent Betas did, and broke finetune_tradeoff's Sobol run)."""
    from sim.metrics.uncertainty import design, input_values, uncertain_inputs

    scenario = sim.load_scenario(SCENARIOS / "finetune_tradeoff.yaml")
    inputs = uncertain_inputs({"base": scenario})
    values = input_values(inputs, design(4096, len(inputs), 7))
    for name, r in scenario.retrievers.items():
        if r.kind != "measured":
            continue
        mine = [i for i in inputs if i.path.startswith(f"retrievers.{name}.rates.")]
        assert len(mine) == len(r.rates)
        total = sum(values[i.name] for i in mine)
        assert total.max() < 1.0
        n = r.counts["queries"]
        alpha = np.array([r.counts[t] + 0.5 for t in r.rates] + [n - sum(r.counts[t] for t in r.rates) + 0.5])
        reference = stream(3, "test/dirichlet", 0).dirichlet(alpha, 200_000)[:, :-1]
        for j, i in enumerate(mine):
            drawn = values[i.name]
            assert drawn.mean() == pytest.approx(reference[:, j].mean(), rel=0.02, abs=2e-4)
            assert drawn.std() == pytest.approx(reference[:, j].std(), rel=0.06, abs=2e-4)
        both = np.corrcoef(values[mine[0].name], values[mine[1].name])[0, 1]
        assert both == pytest.approx(np.corrcoef(reference[:, 0], reference[:, 1])[0, 1], abs=0.06)


def test_the_json_schema_accepts_distributions_where_the_loader_does():
    jsonschema = pytest.importorskip("jsonschema")
    from sim.scenario.model import json_schema

    schema = json_schema()
    data = uncertain_chain()
    data["workflow"]["steps"][1]["susceptibility_by_input"] = {"fetch": {"default": {"beta": [1, 1]}}}
    data["costs"]["apply"]["detected_loss"] = {"pert": [1, 2, 3]}
    jsonschema.validate(data, schema)
    with pytest.raises(jsonschema.ValidationError):  # only probabilities and costs may be uncertain
        jsonschema.validate(chain(seed={"beta": [1, 2]}), schema)
