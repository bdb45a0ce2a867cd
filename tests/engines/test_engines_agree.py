"""Monte Carlo agrees with the exact engine: on a closed form, on every built-in scenario, on random workflows."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.runner import run
from sim.scenario.load import load_scenario, scenario_from_dict
from tests.agreement import disagreements
from tests.conftest import BUILTIN_SCENARIOS, chain


def test_analytic_matches_the_closed_form_of_a_chain():
    # fetch: negation 0.05, topical miss 0.10 -> judge carries them with 0.9 / 0.5, else errs itself with
    # 0.02 -> check catches 30% of errors and flags 1% of correct ones -> apply.
    wrong = 0.05 * 0.9 + 0.10 * 0.5 + (1 - 0.05 * 0.9 - 0.10 * 0.5) * 0.02
    p_fail = wrong * 0.7
    escalations = wrong * 0.3 + (1 - wrong) * 0.01
    s = run(scenario_from_dict(chain()), engine="analytic").summary
    assert s["p_failure"] == pytest.approx(p_fail, rel=1e-12)
    assert s["expected_loss_per_instance"] == pytest.approx(p_fail * 1000 + escalations * 50, rel=1e-12)
    assert s["silent_failure_rate"] == pytest.approx(p_fail, rel=1e-12)  # no audit: every failure is silent
    root_errors = 0.05 + 0.10 + (1 - 0.05 * 0.9 - 0.10 * 0.5) * 0.02  # masked retrieval errors count too
    assert s["amplification"] == pytest.approx(p_fail / root_errors, rel=1e-12)
    neg = next(c for c in s["cascade"] if c["error_type"] == "negation_flip")
    assert neg["p_root_error"] == pytest.approx(0.05, rel=1e-12)
    assert neg["p_action_failure_given_root"] == pytest.approx(0.9 * 0.7, rel=1e-12)
    assert [p["p"] for p in s["pass_k"]] == pytest.approx([(1 - p_fail) ** k for k in range(1, 9)], rel=1e-12)
    mc = run(scenario_from_dict(chain()), instances=100_000).summary
    assert disagreements(mc, s) == []


def test_susceptibility_by_input_matches_its_closed_form(write_scenario):
    """Two retrievals feed one decision; a miss through the second is carried far less often (0.1 vs 0.5):
    P(failure) = 1 - (1 - 0.2 * 0.5)(1 - 0.3 * 0.1), exactly, and within Monte Carlo's interval."""
    data = chain(retrievers={"a": {"kind": "injected", "rates": {"topical_miss": 0.2}},
                             "b": {"kind": "injected", "rates": {"topical_miss": 0.3}}},
                 workflow={"steps": [
                     {"id": "get_a", "kind": "retrieve", "retriever": "a"},
                     {"id": "get_b", "kind": "retrieve", "retriever": "b"},
                     {"id": "judge", "kind": "decide", "inputs": ["get_a", "get_b"],
                      "susceptibility": {"default": 0.5}, "susceptibility_by_input": {"get_b": {"topical_miss": 0.1}}},
                     {"id": "apply", "kind": "act", "inputs": ["judge"]}]},
                 costs={"apply": {"failure_loss": 100.0}})
    scenario = load_scenario(write_scenario(data))
    want = 1 - (1 - 0.2 * 0.5) * (1 - 0.3 * 0.1)
    assert run(scenario, engine="analytic").summary["p_failure"] == pytest.approx(want, abs=1e-12)
    mc = run(scenario, instances=200_000).summary
    lo, hi = mc["p_failure_ci95"]
    assert lo <= want <= hi


@pytest.mark.parametrize("path", BUILTIN_SCENARIOS, ids=lambda p: p.stem)
def test_monte_carlo_agrees_with_analytic_on_builtin_scenarios(path):
    scenario = load_scenario(path)
    exact = run(scenario, engine="analytic").summary
    mc = run(scenario, instances=100_000).summary
    blocks = [(mc, exact)] + [(mc["variant_results"][v], exact["variant_results"][v])
                              for v in mc.get("variant_results", {})]
    for m, e in blocks:
        m = {**m, "instances": mc["instances"]}
        assert disagreements(m, e, blocks=len(blocks)) == [], m["variant"]
    for name, d in mc.get("differences", {}).items():
        want = exact["differences"][name]
        for key in ("p_failure", "expected_loss_per_instance"):
            lo, hi = d[key]["ci95"]
            half = (hi - lo) / 2 * 2.576 / 1.96
            assert abs(d[key]["difference"] - want[key]["difference"]) <= half, (name, key)


TYPES = ["topical_miss", "negation_flip", "role_swap", "numeric_swap", "stale"]
prob = st.sampled_from([0.0, 0.05, 0.2, 0.5, 0.9, 1.0])


@st.composite
def workflows(draw):
    """Small random but valid workflows: retrieves, decides over earlier steps, an optional gate, acts, audits."""
    retrievers, steps, pool = {}, [], []
    for i in range(draw(st.integers(1, 2))):
        rates = {t: draw(st.sampled_from([0.0, 0.03, 0.1])) for t in draw(st.lists(st.sampled_from(TYPES),
                                                                                    min_size=1, max_size=3, unique=True))}
        retrievers[f"r{i}"] = {"kind": "injected", "rates": rates}
        steps.append({"id": f"get{i}", "kind": "retrieve", "retriever": f"r{i}"})
        pool.append(f"get{i}")
    for i in range(draw(st.integers(1, 3))):
        inputs = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True))
        steps.append({"id": f"dec{i}", "kind": "decide", "inputs": inputs,
                      "base_error_rate": draw(st.sampled_from([0.0, 0.02, 0.1])),
                      "susceptibility": {"default": draw(prob), TYPES[i % 5]: draw(prob)}})
        if len(inputs) == 2 and draw(st.booleans()):  # errors through the second input carried differently
            steps[-1]["susceptibility_by_input"] = {inputs[1]: {TYPES[(i + 1) % 5]: draw(prob),
                                                                "topical_miss": draw(prob)}}
        pool.append(f"dec{i}")
        if draw(st.booleans()):  # a look-up driven by the decision (a wrong intent fetches the wrong article)
            steps.append({"id": f"follow{i}", "kind": "retrieve", "retriever": "r0", "inputs": [f"dec{i}"]})
            pool.append(f"follow{i}")
    if draw(st.booleans()):
        inputs = draw(st.lists(st.sampled_from(pool[-3:]), min_size=1, max_size=2, unique=True))
        steps.append({"id": "gate", "kind": "verify", "inputs": inputs, "catch": {"default": draw(prob)},
                      "false_alarm": draw(st.sampled_from([0.0, 0.05]))})
        pool.append("gate")
    acts = []
    for i in range(draw(st.integers(1, 3))):
        inputs = draw(st.lists(st.sampled_from(pool + acts), min_size=1, max_size=2, unique=True))
        steps.append({"id": f"act{i}", "kind": "act", "inputs": inputs})
        acts.append(f"act{i}")
    used = {x for s in steps for x in s.get("inputs", [])}
    unused = [s["id"] for s in steps if s["kind"] != "act" and s["id"] not in used]
    if unused:
        steps.append({"id": "act_rest", "kind": "act", "inputs": unused})
        acts.append("act_rest")
    if draw(st.booleans()):
        steps.append({"id": "audit", "kind": "verify", "inputs": acts[:2], "catch": {"default": draw(prob)}})
    costs = {a: {"failure_loss": float(10 * (k + 1)), "detected_loss": 3.0, "escalation_cost": 1.0}
             for k, a in enumerate(acts)}
    return {"schema_version": 1, "name": "random", "seed": draw(st.integers(0, 10**6)),
            "difficulty": {"icc": draw(st.sampled_from([0.0, 0.0, 0.2])), "levels": 16},
            "retrievers": retrievers, "workflow": {"steps": steps}, "costs": costs}


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(workflows())
def test_monte_carlo_agrees_with_analytic_on_random_workflows(data):
    scenario = scenario_from_dict(data)
    exact = run(scenario, engine="analytic").summary
    mc = run(scenario, instances=30_000, pass_k_sample=5_000).summary
    assert disagreements(mc, exact) == []


# One retrieval feeds two decisions (carrying a negation with 0.6 and 0.3); a gate catches with 0.5.
# Apart: the first decision goes through the gate to an action, the second straight to another action, so a
# catch on one path does not save the other. Together: both decisions are inputs of one gate, before one
# action: a catch of either escalates the action, and an instance caught on both inputs counts once.
FAN_OUT = {
    "apart": ([{"id": "check", "kind": "verify", "inputs": ["judge"], "catch": {"default": 0.5}},
               {"id": "sign", "kind": "act", "inputs": ["check"]},
               {"id": "send", "kind": "act", "inputs": ["draft"]}],
              {"p_action_failure_given_root": 1 - (1 - 0.6 * 0.5) * (1 - 0.3),
               "p_caught_given_root": 0.6 * 0.5 * (1 - 0.3), "p_masked_given_root": (1 - 0.6) * (1 - 0.3)}),
    "together": ([{"id": "check", "kind": "verify", "inputs": ["judge", "draft"], "catch": {"default": 0.5}},
                  {"id": "sign", "kind": "act", "inputs": ["check"]}],
                 {"p_action_failure_given_root": (1 - 0.6 * 0.5) * (1 - 0.3 * 0.5) - (1 - 0.6) * (1 - 0.3),
                  "p_caught_given_root": 1 - (1 - 0.6 * 0.5) * (1 - 0.3 * 0.5),
                  "p_masked_given_root": (1 - 0.6) * (1 - 0.3)}),
}


@pytest.mark.parametrize("shape", list(FAN_OUT))
def test_caught_and_masked_per_root_match_their_closed_form(write_scenario, shape):
    """A root error fails an action, else is caught by a gate, else is masked: exactly, and within Monte Carlo's
    interval."""
    tail, want = FAN_OUT[shape]
    data = chain(retrievers={"docs": {"kind": "injected", "rates": {"negation_flip": 0.2}}},
                 workflow={"steps": [
                     {"id": "fetch", "kind": "retrieve", "retriever": "docs"},
                     {"id": "judge", "kind": "decide", "inputs": ["fetch"], "susceptibility": {"default": 0.6}},
                     {"id": "draft", "kind": "decide", "inputs": ["fetch"], "susceptibility": {"default": 0.3}},
                     *tail]},
                 costs={s["id"]: {"failure_loss": 10.0} for s in tail if s["kind"] == "act"})
    scenario = load_scenario(write_scenario(data))
    exact = run(scenario, engine="analytic").summary
    (root,) = exact["cascade"]
    assert {k: root[k] for k in want} == pytest.approx(want, abs=1e-12)
    mc = run(scenario, instances=100_000).summary
    assert disagreements(mc, exact) == []
