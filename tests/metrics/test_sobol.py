"""Sobol indices (SALib) of expected loss: a chain whose loss is a product of three independent inputs has
known indices; an input nothing reads scores 0; first-order indices sum to at most 1; groups add up."""

from __future__ import annotations

import numpy as np
import pytest

from sim.core.errors import CascadeError
from sim.metrics.sobol import sobol_indices
from sim.metrics.uncertainty import group_of
from sim.model.plan import compile_plan
from sim.scenario.load import resolve_variants, scenario_from_dict

# Expected loss = negation_flip rate x susceptibility x failure loss (one retrieve, one decide, one act, icc 0).
LOW_HIGH = {"rate": (0.05, 0.15), "susceptibility": (0.2, 0.8), "loss": (500.0, 1500.0)}
PRODUCT = {
    "schema_version": 1, "name": "product", "seed": 3,
    "retrievers": {"docs": {"kind": "injected", "rates": {"negation_flip": {"uniform": list(LOW_HIGH["rate"])}}}},
    "workflow": {"steps": [
        {"id": "fetch", "kind": "retrieve", "retriever": "docs"},
        {"id": "judge", "kind": "decide", "inputs": ["fetch"],
         "susceptibility": {"default": {"uniform": list(LOW_HIGH["susceptibility"])}}},
        {"id": "apply", "kind": "act", "inputs": ["judge"]}]},
    "costs": {"apply": {"failure_loss": {"uniform": list(LOW_HIGH["loss"])}}},
    "variants": [{"name": "v", "set": {"retrievers.docs.rates.topical_miss": {"beta": [2, 50]}}}],
}


def closed_form() -> tuple[np.ndarray, np.ndarray]:
    """S1 and ST of Y = X1 X2 X3 with independent uniforms: Var E[Y|Xi] = s_i^2 prod_{j!=i} m_j^2 and
    E Var(Y|X~i) = s_i^2 prod_{j!=i} (s_j^2 + m_j^2), over Var Y = prod (s^2 + m^2) - prod m^2."""
    lo, hi = np.array([v[0] for v in LOW_HIGH.values()]), np.array([v[1] for v in LOW_HIGH.values()])
    m, s2 = (lo + hi) / 2, (hi - lo) ** 2 / 12
    var = np.prod(s2 + m**2) - np.prod(m**2)
    s1 = np.array([s2[i] * np.prod(np.delete(m, i) ** 2) for i in range(3)]) / var
    st = np.array([s2[i] * np.prod(np.delete(s2 + m**2, i)) for i in range(3)]) / var
    return s1, st


def test_indices_of_a_product_match_the_closed_form_and_an_unread_input_scores_zero():
    scenario = scenario_from_dict(PRODUCT)
    variants = resolve_variants(scenario)
    plans = {k: compile_plan(s, k) for k, s in variants.items()}
    table = sobol_indices(variants, plans, 1024, seed=3)
    base = table[table["output"] == "expected_loss_per_instance@base"].set_index("group")
    s1, st = closed_form()
    names = ["retrievers.docs.rates.negation_flip", "workflow.steps.judge.susceptibility.default",
             "costs.apply.failure_loss"]
    for i, name in enumerate(names):
        row = base.loc[name]
        # Within the bootstrap 95% interval, widened by a third for the other 5% (three inputs, two indices).
        assert abs(row["S1"] - s1[i]) <= 1.34 * row["S1_conf"], (name, row["S1"], s1[i])
        assert abs(row["ST"] - st[i]) <= 1.34 * row["ST_conf"], (name, row["ST"], st[i])
    # topical_miss is drawn only for variant v: base never reads it, so it scores exactly 0 there.
    assert base.loc["retrievers.docs.rates.topical_miss", ["S1", "ST"]].tolist() == [0.0, 0.0]
    for _, rows in table.groupby("output"):
        assert rows["S1"].sum() <= 1 + rows["S1_conf"].max()
    # v - base is driven by the input only v reads (its topical misses displace none of base's errors).
    diff = table[table["output"] == "difference@v"].set_index("group")
    assert diff.loc["retrievers.docs.rates.topical_miss", "ST"] > 0.5


def test_grouped_indices_and_groupings():
    assert group_of("retrievers.contract.rates.role_swap@tuned", "retriever") == "retriever contract"
    assert group_of("workflow.steps.legal_review.catch.role_swap", "error_type") == "type role_swap"
    assert group_of("workflow.steps.decide_x.base_error_rate", "error_type") == "type reasoning"
    assert group_of("costs.sign.failure_loss", "step") == "step sign"
    assert group_of("costs.sign.failure_loss", "retriever") == "costs.sign.failure_loss"
    with pytest.raises(CascadeError, match="unknown grouping of inputs 'bogus'"):
        group_of("costs.sign.failure_loss", "bogus")
    scenario = scenario_from_dict(PRODUCT)
    variants = resolve_variants(scenario)
    plans = {k: compile_plan(s, k) for k, s in variants.items()}
    table = sobol_indices(variants, plans, 256, seed=3, by="retriever")
    base = table[table["output"] == "expected_loss_per_instance@base"]
    assert base["group"].tolist() == ["retriever docs", "workflow.steps.judge.susceptibility.default",
                                      "costs.apply.failure_loss"]
    with pytest.raises(CascadeError, match="power of 2"):
        sobol_indices(variants, plans, 1000, seed=3)
