"""The bridge to users' LangGraph apps: a real LangGraph graph over a real LangChain retriever, faults injected
through `FaultInjectingRetriever`, runs recorded into cascadesim's tables."""

from __future__ import annotations

import asyncio
import json
from math import comb
from typing import TypedDict

import pandas as pd
import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from agents.bridge import FAULT_KEY, FaultInjectingRetriever, Recorder
from sim.core.errors import CascadeError, ScenarioError
from sim.metrics.calibration import calibrate
from sim.scenario.load import load_scenario

CLAUSES = [
    Document("The Supplier shall indemnify the Customer against third-party claims.", id="supplier_indemnity"),
    Document("The Contractor shall not indemnify the Client for indirect losses.", id="contractor_indemnity"),
    Document("The Customer shall pay each invoice within 30 days of receipt.", id="payment"),
    Document("Either party may terminate this Agreement with 60 days written notice.", id="termination"),
]
# question, its right clause, the right decision
QUESTIONS = [
    ("does the supplier indemnify the customer against claims", "supplier_indemnity", "yes"),
    ("does the contractor indemnify the client for losses", "contractor_indemnity", "no"),
]
STEPS = [
    {"id": "retrieve", "kind": "retrieve"},
    {"id": "decide", "kind": "decide", "inputs": ["retrieve"]},
    {"id": "verify", "kind": "verify", "inputs": ["decide"]},
    {"id": "act", "kind": "act", "inputs": ["verify"]},
]
COSTS = {"act": {"failure_loss": 1000.0, "escalation_cost": 20.0}}
ZERO = {t: 0.0 for t in ("topical_miss", "negation_flip", "role_swap", "modifier_swap", "numeric_swap", "stale")}


class WordOverlap(BaseRetriever):
    """The k documents sharing the most words with the query (ties by id)."""

    docs: list[Document]
    k: int = 2

    def _get_relevant_documents(self, query: str, *, run_manager) -> list[Document]:
        words = set(query.lower().split())
        score = {d.id: len(words & set(d.page_content.lower().rstrip(".").split())) for d in self.docs}
        return sorted(self.docs, key=lambda d: (-score[d.id], d.id))[: self.k]


class State(TypedDict, total=False):
    question: str
    docs: list[Document]
    decision: str
    escalate: bool
    action: str


def gold(question: str) -> set[str]:
    return {right for q, right, _ in QUESTIONS if q == question}


def never(state: State) -> dict:
    return {"escalate": False}


def build(recorder: Recorder, rates: dict, check=never):
    """The user's app: retrieve -> decide (reads the top clause) -> verify (`check`; by default it never
    escalates) -> act, or the end when the verify step escalated."""
    retriever = recorder.retriever("retrieve", WordOverlap(docs=CLAUSES), rates, gold=gold)

    def retrieve(state: State) -> dict:
        return {"docs": retriever.invoke(state["question"])}

    @recorder.node("decide")
    def decide(state: State, config: RunnableConfig) -> dict:
        assert "cascade_instance" in config["metadata"]  # the wrapper forwards config to nodes that take it
        top = state["docs"][0].page_content if state["docs"] else ""
        if "shall not indemnify" in top:
            return {"decision": "no"}
        return {"decision": "yes" if "shall indemnify" in top else "unknown"}

    @recorder.node("act")
    def act(state: State) -> dict:
        return {"action": f"indemnity={state['decision']}"}

    graph = StateGraph(State)
    for name, fn in [("retrieve", retrieve), ("decide", decide), ("verify", recorder.node("verify")(check)),
                     ("act", act)]:
        graph.add_node(name, fn)
    graph.add_edge(START, "retrieve")
    graph.add_edge("retrieve", "decide")
    graph.add_edge("decide", "verify")
    graph.add_conditional_edges("verify", lambda state: END if state["escalate"] else "act")
    graph.add_edge("act", END)
    return graph.compile()


def record(rates: dict, n: int, seed: int = 7, check=never) -> Recorder:
    recorder = Recorder("indemnity_app", STEPS, COSTS, seed=seed)
    graph = build(recorder, rates, check)
    for i in range(n):
        question, _, right = QUESTIONS[i % len(QUESTIONS)]
        recorder.invoke(graph, {"question": question}, i,
                        truth={"decide": {"decision": right}, "act": {"action": f"indemnity={right}"}})
    return recorder


def test_no_fault_means_no_failure():
    result = record(ZERO, 20).result()
    assert result.summary["p_failure"] == 0
    trace = result.agent_trace
    assert len(trace) == 20 * len(STEPS)
    assert (trace["outcome"] == "ok").all() and (trace["fault"] == "").all()
    assert not result.instances["failed"].any()


def test_negation_flip_cascades_to_the_action():
    recorder = record({"negation_flip": 1.0}, 20)
    result = recorder.result()
    trace = result.agent_trace.set_index(["step", "instance"])
    retrieve, decide, act = trace.loc["retrieve"], trace.loc["decide"], trace.loc["act"]
    assert retrieve["fault_applied"].all() and (retrieve["fault"] == "negation_flip").all()
    assert (decide["outcome"] == "error").all() and (decide["output"] != decide["truth"]).all()
    for part in (decide, act):
        assert (part["root_cause_step"] == "retrieve").all() and (part["error_type"] == "negation_flip").all()
    assert (act["outcome"] == "error").all()
    assert result.summary["p_failure"] == 1
    assert result.summary["expected_loss_per_instance"] == pytest.approx(1000.0)
    # The twin took the right clause's place and says so; the log agrees with the trace.
    assert all(ids[0].endswith("#negation_flip") for ids in retrieve["passages"])
    assert recorder.log.to_frame()["applied"].all()
    # Calibration reads the recorded trace like an agent trace: the retriever flipped every query.
    rates = calibrate(result.scenario, result.agent_trace).scenario.retrievers["retrieve"].rates
    assert rates == {"negation_flip": 1.0}


def test_a_perfect_gate_leaves_no_failure():
    def perfect(state: State) -> dict:  # sees the fault mark the bridge puts on an injected document
        return {"escalate": FAULT_KEY in state["docs"][0].metadata, "caught": ["decide"]}

    result = record({"negation_flip": 0.5}, 40, check=perfect).result()
    trace = result.agent_trace.set_index(["step", "instance"])
    flipped = trace.loc["retrieve", "fault_applied"]
    assert flipped.any() and not flipped.all()
    assert (trace.loc["verify", "outcome"][flipped] == "caught").all()
    assert (trace.loc["act", "outcome"][flipped] == "caught").all()
    assert (trace.loc["act", "output"][flipped] == "").all()  # the graph ended before acting
    assert result.summary["p_failure"] == 0
    assert result.summary["expected_loss_per_instance"] == pytest.approx(20.0 * flipped.mean())


def test_async_graph_records_like_a_sync_one():
    recorder = Recorder("indemnity_app", STEPS[:2] + [{"id": "act", "kind": "act", "inputs": ["decide"]}], COSTS)
    retriever = recorder.retriever("retrieve", WordOverlap(docs=CLAUSES), {"negation_flip": 1.0}, gold=gold)

    async def retrieve(state: State) -> dict:
        return {"docs": await retriever.ainvoke(state["question"])}

    @recorder.node("decide")
    async def decide(state: State) -> dict:
        return {"decision": "no" if "shall not" in state["docs"][0].page_content else "yes"}

    @recorder.node("act")
    async def act(state: State) -> dict:
        return {"action": f"indemnity={state['decision']}"}

    graph = StateGraph(State)
    for name, fn in [("retrieve", retrieve), ("decide", decide), ("act", act)]:
        graph.add_node(name, fn)
    graph.add_edge(START, "retrieve")
    graph.add_edge("retrieve", "decide")
    graph.add_edge("decide", "act")
    graph = graph.compile()

    async def run():
        for i, (question, _, right) in enumerate(QUESTIONS):
            await recorder.ainvoke(graph, {"question": question}, i, truth={"decide": {"decision": right}})

    asyncio.run(run())
    act_rows = recorder.result().agent_trace.query("step == 'act'")
    assert (act_rows["outcome"] == "error").all() and (act_rows["error_type"] == "negation_flip").all()


def test_twin_keeps_metadata_and_marks_the_fault():
    recorder = Recorder("indemnity_app", STEPS, COSTS)
    base = WordOverlap(docs=[Document(d.page_content, metadata={"id": d.id, "source": "msa.pdf"}) for d in CLAUSES])
    retriever = recorder.retriever("retrieve", base, {"negation_flip": 1.0})  # no gold: the top one is edited
    docs = retriever.invoke(QUESTIONS[0][0], config={"metadata": {"cascade_instance": 3}})
    assert docs[0].page_content == "The Supplier shall not indemnify the Customer against third-party claims."
    assert docs[0].metadata == {"id": "supplier_indemnity", "source": "msa.pdf", FAULT_KEY: "negation_flip"}
    assert FAULT_KEY not in docs[1].metadata


def test_same_seed_same_faults_and_the_rate_is_right():
    n, p = 400, 0.3
    first, again = record({"topical_miss": p}, n), record({"topical_miss": p}, n)
    faults = first.log.to_frame()
    pd.testing.assert_frame_equal(faults, again.log.to_frame())
    other = record({"topical_miss": p}, n, seed=8).log.to_frame()
    assert (faults["fault"] != other["fault"]).any()
    # Exact 99% binomial interval for the number of faults among n independent instances.
    cdf = [sum(comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k + 1)) for k in range(n + 1)]
    low = next(k for k in range(n + 1) if cdf[k] > 0.005)
    high = next(k for k in range(n + 1) if cdf[k] >= 0.995)
    drawn = int(faults["fault"].notna().sum())
    assert low <= drawn <= high, (drawn, low, high)
    # Each drawn miss drops the right clause, the decision reads another one, and the action fails.
    result = first.result()
    assert faults["applied"].sum() == drawn
    assert result.summary["p_failure"] == pytest.approx(drawn / n)
    assert result.summary["engine"] == "recorded"


@pytest.mark.parametrize("rates, message", [
    ({"negation": 0.1}, "unknown error type 'negation' in rates — did you mean 'negation_flip'?"),
    ({"stale": 1.5}, "rates['stale'] is 1.5; a rate is a probability per query, in [0, 1]"),
    ({"stale": 0.6, "topical_miss": 0.5}, "rates sum to 1.1, past 1"),
])
def test_bad_rates_are_named(rates, message):
    base = WordOverlap(docs=CLAUSES)
    with pytest.raises(CascadeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        FaultInjectingRetriever(base=base, step="retrieve", rates=rates, seed=0)
    with pytest.raises(CascadeError, match="retrieve step 'retrieve'"):
        Recorder("app", STEPS, COSTS).retriever("retrieve", base, rates)


def test_misuse_is_explained():
    retriever = FaultInjectingRetriever(base=WordOverlap(docs=CLAUSES), step="retrieve", rates={}, seed=0)
    with pytest.raises(CascadeError, match=r"Recorder.invoke.*cascade_instance"):
        retriever.invoke("does the supplier indemnify")
    with pytest.raises(ScenarioError, match=r"workflow.steps\[1\].inputs\[0\]: unknown input 'retreive'"):
        Recorder("app", [STEPS[0], {**STEPS[1], "inputs": ["retreive"]}, *STEPS[2:]], COSTS)
    recorder = Recorder("app", STEPS, COSTS)
    with pytest.raises(CascadeError, match="has no step 'decid' — did you mean 'decide'"):
        recorder.node("decid")
    graph = build(recorder, ZERO)
    recorder.invoke(graph, {"question": QUESTIONS[0][0]}, 5, truth={})
    with pytest.raises(CascadeError, match="decide step 'decide' has no truth for instance 5"):
        recorder.result()


def test_result_writes_a_run_folder(tmp_path):
    result = record({"negation_flip": 0.2, "topical_miss": 0.1}, 30).result()
    out = result.write(tmp_path / "run")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "recorded" and summary["instances"] == 30
    for name in ("instances.parquet", "steps.parquet", "agent_trace.parquet", "scenario.yaml"):
        assert (out / name).is_file(), name
    written = pd.read_parquet(out / "agent_trace.parquet")
    assert list(written["instance"].unique()) == list(range(30))
    # The scenario written beside it loads back, with the rates the run injected.
    assert load_scenario(out / "scenario.yaml").retrievers["retrieve"].rates == {"negation_flip": 0.2,
                                                                                 "topical_miss": 0.1}
