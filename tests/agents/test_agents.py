"""The agent engine: LangGraph agents over real text, traced onto the common schema, and calibration.

Real LangGraph, real embeddings (the packaged MiniLM) in real embedded Chroma; the OpenAI-compatible policy
talks to a real HTTP server on 127.0.0.1 (tests/llm_server.py) started and stopped by this session.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from agents.contract_review import CLAUSE_TYPES
from agents.engine import AgentEngine, AgentSettings
from agents.nodes import InstanceChance
from agents.openai_policy import LLMSettings
from agents.trace_rows import observe, trace_rows
from sim.cli import app
from sim.metrics.calibration import agreement, calibrate
from sim.model.plan import ERROR
from sim.runner import run
from sim.scenario.load import load_scenario, resolve_variants, scenario_from_dict
from sim.scenario.overrides import base_dict
from sim.trace.observed import instance_tokens
from tests.conftest import ROOT, SCENARIOS
from tests.llm_fixtures import llm_server  # noqa: F401

runner = CliRunner()
BANKING77 = ROOT.parent / "shared" / "data" / "banking77" / "test.csv"


def scenario(name: str, scale: float = 1.0, base_errors: bool = True, variants: bool = False):
    """A built-in scenario with its retrieval rates scaled (capped at 0.2) and, optionally, no reasoning errors."""
    data = base_dict(load_scenario(SCENARIOS / f"{name}.yaml"))
    for r in data["retrievers"].values():
        r["rates"] = {t: min(v * scale, 0.2) for t, v in r["rates"].items()}
    for s in data["workflow"]["steps"]:
        if s["kind"] == "decide" and not base_errors:
            s["base_error_rate"] = 0.0
    if variants:
        data["variants"] = [v.model_dump(mode="json") for v in load_scenario(SCENARIOS / f"{name}.yaml").variants]
    return scenario_from_dict(data)


def engine(sc, **settings) -> AgentEngine:
    return AgentEngine(sc, resolve_variants(sc), AgentSettings(**settings))


def quiet_chance(sc, instance: int = 0, **fault) -> InstanceChance:
    """No reasoning slip, no false alarm, a reviewer who notices nothing; `fault` by retrieve step."""
    steps = sc.workflow.steps
    return InstanceChance(instance, fault, {}, {(s.id, i): 1.0 for s in steps if s.kind == "verify" for i in s.inputs},
                          {})


@pytest.mark.parametrize("name", ["contract_review", "ticket_triage"])
def test_without_faults_or_slips_the_simulated_reader_takes_no_wrong_action(name):
    """Every episode of the built-in corpora (60 contracts, 144 tickets), read with live retrieval: every
    retrieval right, every decision equal to ground truth, so no act executes on erroneous input."""
    sc = scenario(name)
    eng = engine(sc)
    plan = eng.plans["base"]
    wrong = []
    for i, episode in enumerate(eng.domain.episodes):
        records = eng.run_instance("base", episode, quiet_chance(sc, i))
        seen = observe(eng.domain, episode, records)
        tokens = instance_tokens(plan, seen).tokens
        wrong += [(episode.id, s.id) for s in plan.steps if seen[s.id].diverged
                  or (tokens[s.pos] is not None and tokens[s.pos] >= ERROR)]
    assert len(eng.domain.episodes) >= 60
    assert wrong == []


def test_a_negation_fault_on_one_clause_is_traced_from_its_retrieve_step_to_the_wrong_signature():
    sc = scenario("contract_review")
    eng = engine(sc)
    plan = eng.plans["base"]
    contract = eng.domain.episodes[0]
    records = eng.run_instance("base", contract, quiet_chance(sc, retrieve_indemnity="negation_flip"))
    read = records["retrieve_indemnity"]
    assert read.applied and any(p.id.endswith("#negation_flip") for p in read.passages)
    assert records["decide_indemnity"].decision["obligated"] == "no"  # the agent read "shall not indemnify"
    rows = {r["step"]: r for r in trace_rows(plan, eng.domain, contract, 0, records,
                                             instance_tokens(plan, observe(eng.domain, contract, records)))}
    assert rows["retrieve_indemnity"]["outcome"] == "error"
    assert (rows["retrieve_indemnity"]["root_cause_step"], rows["retrieve_indemnity"]["error_type"]) == (
        "retrieve_indemnity", "negation_flip")
    for step in ("decide_indemnity", "send_redlines", "sign_contract"):
        assert (rows[step]["outcome"], rows[step]["root_cause_step"], rows[step]["error_type"]) == (
            "error", "retrieve_indemnity", "negation_flip"), step
    others = [f"decide_{k}" for k in CLAUSE_TYPES if k != "indemnity"] + ["record_obligations"]
    assert all(rows[s]["outcome"] == "ok" for s in others)
    assert json.loads(rows["sign_contract"]["output"])["indemnity"] != json.loads(rows["sign_contract"]["truth"])[
        "indemnity"]

    # A reviewer who notices catches it: the contract is escalated instead of signed wrong.
    attentive = InstanceChance(0, {"retrieve_indemnity": "negation_flip"}, {},
                               {k: 0.0 for k in quiet_chance(sc).notice}, {})
    records = eng.run_instance("base", contract, attentive)
    assert records["legal_review"].caught == {"decide_indemnity": "negation_flip"}
    tokens = instance_tokens(plan, observe(eng.domain, contract, records))
    rows = {r["step"]: r for r in trace_rows(plan, eng.domain, contract, 0, records, tokens)}
    assert rows["legal_review"]["outcome"] == "caught" and rows["sign_contract"]["outcome"] == "caught"


def test_an_agent_run_writes_the_common_tables_and_repeats_exactly(tmp_path):
    sc = scenario("contract_review", scale=3, variants=True)
    first = run(sc, instances=40, engine="agent")
    again = run(sc, instances=40, engine="agent")
    assert first.summary == again.summary
    pd.testing.assert_frame_equal(first.agent_trace, again.agent_trace)
    s = first.summary
    assert s["engine"] == "agent" and s["instances"] == 40 and "finetuned_retriever" in s["variant_results"]
    assert s["agent"]["policy"] == "simulated" and s["agent"]["episodes"] == 60
    drawn = sum(n for c in s["agent"]["faults"]["base"].values() for n in c["drawn"].values())
    assert drawn > 0
    assert len(first.agent_trace) == 2 * 40 * len(sc.workflow.steps)
    # pass^k: the same 40 episodes attempted 8 times with fresh draws; all-k success can only fall with k.
    assert s["pass_k_sample"] == 40 and [p["k"] for p in s["pass_k"]] == list(range(1, 9))
    ps = [p["p"] for p in s["pass_k"]]
    assert ps[0] == pytest.approx(1 - s["p_failure"]) and all(a >= b for a, b in zip(ps, ps[1:], strict=False))
    # Instance table and trace agree: an instance failed iff one of its act rows is an error.
    trace = first.agent_trace[first.agent_trace["variant"] == "base"]
    failed_in_trace = set(trace[(trace["kind"] == "act") & (trace["outcome"] == "error")]["instance"])
    inst = first.instances[first.instances["variant"] == "base"]
    assert failed_in_trace == set(inst[inst["failed"]]["instance"])
    assert s["p_failure"] == pytest.approx(len(failed_in_trace) / 40)
    out = first.write(tmp_path / "run")
    assert (out / "agent_trace.parquet").is_file() and (out / "summary.json").is_file()


def test_the_openai_policy_through_a_real_server_reads_like_the_simulated_reader(llm_server, tmp_path):  # noqa: F811
    """The test server answers with the simulated reader, so an agent run through HTTP must give the same
    trace as the in-process reader; a second run comes from the response cache (no request)."""
    llm_server.script("ok")
    sc = scenario("ticket_triage", scale=3, base_errors=False)
    local = run(sc, instances=30, engine="agent")
    llm = LLMSettings(base_url=llm_server.base_url, model="test-model", cache_dir=tmp_path)
    remote = run(sc, instances=30, engine="agent", options=AgentSettings(policy="openai", llm=llm))
    assert remote.summary["agent"]["policy"] == "openai:test-model"
    assert remote.summary["p_failure"] == local.summary["p_failure"]
    pd.testing.assert_frame_equal(remote.agent_trace, local.agent_trace)
    calls = llm_server.requests()
    assert calls > 0 and remote.summary["agent"]["llm"]["calls"] == calls
    cached = run(sc, instances=30, engine="agent", options=AgentSettings(policy="openai", llm=llm))
    assert llm_server.requests() == calls and cached.summary["agent"]["llm"]["calls"] == 0
    assert cached.summary["agent"]["llm"]["cached"] > 0


def test_malformed_model_replies_are_recorded_as_wrong_decisions(llm_server, tmp_path):  # noqa: F811
    llm_server.script("malformed")
    sc = scenario("ticket_triage", base_errors=False)
    llm = LLMSettings(base_url=llm_server.base_url, model="broken-model", cache_dir=tmp_path, max_attempts=1)
    result = run(sc, instances=3, engine="agent", options=AgentSettings(policy="openai", llm=llm))
    assert result.summary["agent"]["invalid_replies"]["base"] == 3 * 4  # four decide steps per ticket
    trace = result.agent_trace
    decided = trace[trace["kind"] == "decide"]
    assert (decided["invalid"] != "").all() and (decided["outcome"] == "error").all()
    classify = decided[decided["step"] == "classify_intent"]
    assert (classify["error_type"] == "reasoning").all() and (classify["root_cause_step"] == "classify_intent").all()
    assert result.summary["p_failure"] == 1.0


def test_server_errors_and_missing_endpoints_end_in_clear_messages(llm_server, tmp_path, monkeypatch):  # noqa: F811
    path = str(SCENARIOS / "ticket_triage.yaml")
    llm_server.script("500")
    res = runner.invoke(app, ["run", path, "--engine", "agent", "-n", "1", "--policy", "openai", "--llm-base-url",
                              llm_server.base_url, "--llm-model", "m", "--out", str(tmp_path / "a")],
                        env={"CASCADESIM_CACHE": str(tmp_path / "cache")})
    assert res.exit_code == 2 and "500" in res.output and "127.0.0.1" in res.output
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL"):
        monkeypatch.delenv(var, raising=False)
    res = runner.invoke(app, ["run", path, "--engine", "agent", "-n", "1", "--policy", "openai",
                              "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "--llm-base-url" in res.output


@pytest.mark.parametrize("args, message", [
    (["scenarios/refund_agent.yaml", "--engine", "agent"], "agent engine runs the built-in workflows"),
    (["scenarios/contract_review.yaml", "--policy", "openai"], "only apply to --engine agent"),
    (["scenarios/ticket_triage.yaml", "--engine", "agent", "--tickets", "no/such.csv"], "no such file"),
    (["scenarios/ticket_triage.yaml", "--engine", "agent", "--llm-model", "x"], "need --policy openai"),
    (["scenarios/ticket_triage.yaml", "--engine", "agent", "--llm-concurrency", "4"], "need --policy openai"),
    (["scenarios/contract_review.yaml", "--llm-rpm", "60"], "only apply to --engine agent"),
])
def test_bad_agent_arguments_exit_2_with_a_message(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    res = runner.invoke(app, ["run", *args, "-n", "2", "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())


def test_a_tickets_file_without_text_and_category_is_refused(tmp_path):
    bad = tmp_path / "tickets.csv"
    bad.write_text("message,label\nhello,card_arrival\n", encoding="utf-8")
    res = runner.invoke(app, ["run", str(SCENARIOS / "ticket_triage.yaml"), "--engine", "agent", "-n", "2",
                              "--tickets", str(bad), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "text,category" in res.output


@pytest.mark.skipif(not BANKING77.is_file(), reason="../shared/data/banking77 is not beside the project")
def test_ticket_triage_on_real_banking77_queries():
    """Real customer messages: the classifier's examples are real past tickets, so its live retrieval misses
    on its own sometimes (topical misses at retrieve_examples), but mostly routes right."""
    sc = scenario("ticket_triage", scale=0.0, base_errors=False)
    result = run(sc, instances=150, engine="agent", options=AgentSettings(tickets=BANKING77))
    s = result.summary
    assert s["agent"]["tickets"] == str(BANKING77) and s["agent"]["episodes"] > 300
    trace = result.agent_trace
    examples = trace[trace["step"] == "retrieve_examples"]
    organic = (examples["outcome"] == "error").mean()
    assert 0.0 < organic < 0.4  # MiniLM k-NN over 40 real examples per intent: right for most messages
    assert (examples["fault"] == "").all()
    route = trace[trace["step"] == "route_ticket"]
    assert (route["outcome"] == "ok").mean() > 0.6


@pytest.mark.parametrize("name", ["contract_review", "ticket_triage"])
def test_calibrated_monte_carlo_agrees_with_the_agent_engine_on_fresh_seeds(name):
    """Calibrate on one agent run; Monte Carlo on the calibrated scenario must reproduce a second agent run
    with another seed (P(failure), expected loss, failures per instance by root cause), family-wise 99%."""
    sc = scenario(name, scale=4)
    train = run(sc, instances=400, engine="agent")
    calibrated = calibrate(sc, train.agent_trace).scenario
    fresh = run(sc, instances=400, engine="agent", seed=sc.seed + 101).summary
    mc = run(calibrated, instances=200_000, seed=sc.seed + 202).summary
    rows = agreement(fresh, mc)
    assert rows["ok"].all(), rows[~rows["ok"]].to_string()
    assert len(rows) > 10 and fresh["p_failure"] > 0.1


def test_calibrate_from_the_cli_writes_a_scenario_monte_carlo_runs(tmp_path):
    sc_path = tmp_path / "scenario.yaml"
    sc_path.write_text((SCENARIOS / "ticket_triage.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    res = runner.invoke(app, ["run", str(sc_path), "--engine", "agent", "-n", "60", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["calibrate", str(tmp_path / "r"), "--check", "20000"])
    assert res.exit_code == 0, res.output
    assert "figures agree" in " ".join(res.output.split())
    calibrated = load_scenario(tmp_path / "r" / "calibrated.yaml")
    assert calibrated.name == "ticket_triage_calibrated" and calibrated.retrievers["kb"].kind == "injected"
    table = pd.read_csv(tmp_path / "r" / "calibration.csv")
    assert {"rate", "base_error_rate", "susceptibility", "catch"} <= set(table["parameter"])
    res = runner.invoke(app, ["run", str(tmp_path / "r" / "calibrated.yaml"), "-n", "1000", "-q",
                              "--out", str(tmp_path / "mc")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["calibrate", str(tmp_path / "mc")])
    assert res.exit_code == 2 and "agent trace" in res.output
    res = runner.invoke(app, ["calibrate", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "no such folder" in res.output


def test_agent_engine_accepts_a_resolved_scenario_of_a_builtin_workflow():
    """A run folder's scenario.yaml has the built-in steps inline: the agent engine still knows them."""
    sc = scenario("ticket_triage")
    assert sc.workflow.builtin is None
    result = run(sc, instances=5, engine="agent")
    assert result.summary["agent"]["workflow"] == "ticket_triage"
