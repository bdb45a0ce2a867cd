"""The document-QA agent: a user's inline workflow over the user's corpus and case file (`agent:` block), on
real contract clauses (CUAD, from ../shared/data; the test writes its small corpus and case file from it)."""

from __future__ import annotations

import ast
import csv
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from agents.engine import AgentSettings
from agents.openai_policy import LLMSettings
from sim.cli import app
from sim.runner import run
from sim.scenario.load import load_scenario
from tests.agents.test_llm_concurrency import most_in_any_window
from tests.conftest import ROOT, SCENARIOS
from tests.llm_fixtures import llm_server  # noqa: F401

CUAD = ROOT.parent / "shared" / "data" / "cuad" / "master_clauses.csv"
TAU2_KB = ROOT.parent / "shared" / "data" / "retrieval" / "tau2_banking_kb"
pytestmark = pytest.mark.skipif(not CUAD.is_file(), reason="../shared/data/cuad is not beside the project")
runner = CliRunner()

LAWS = ["New York", "California", "Delaware", "Texas"]
CLAUSES = {"law": "Governing Law", "cap": "Cap On Liability", "assign": "Anti-Assignment", "audit": "Audit Rights",
           "insurance": "Insurance"}
CAP_QUESTION = "Does the agreement cap or limit either party's liability?"
LAW_QUESTION = "Which state's law governs the agreement?"

SCENARIO = """\
schema_version: 1
name: cuad_qa
seed: 7
instances: 1000
retrievers:
  cap_clauses: {kind: injected, rates: {negation_flip: 0.0}}
  law_clauses: {kind: injected, rates: {modifier_swap: 0.0}}
workflow:
  steps:
    - {id: retrieve_cap, kind: retrieve, retriever: cap_clauses}
    - {id: decide_cap, kind: decide, inputs: [retrieve_cap], susceptibility: {default: 0.9}}
    - {id: record_cap, kind: act, inputs: [decide_cap]}
    - {id: retrieve_law, kind: retrieve, retriever: law_clauses}
    - {id: decide_law, kind: decide, inputs: [retrieve_law], susceptibility: {default: 0.9}}
    - {id: review_law, kind: verify, inputs: [decide_law], catch: {default: 0.0}}
    - {id: file_law, kind: act, inputs: [review_law]}
costs:
  record_cap: {failure_loss: 1000}
  file_law: {failure_loss: 500}
agent:
  corpus: {path: clauses.csv, group_column: contract}
  cases: cases.csv
  k: 3
  answers:
    decide_cap: {type: yes_no}
    decide_law: {type: label, labels: [New York, California, Delaware, Texas]}
  actions:
    record_cap: {decision: decide_cap, map: {"yes": record_cap, "no": flag_uncapped}}
"""
VARIANTS = """\
variants:
  - name: negated
    set: {retrievers.cap_clauses.rates.negation_flip: 1.0}
  - name: twins
    set: {retrievers.cap_clauses.rates.negation_flip: 0.3}
"""


def write_cuad(folder: Path, contracts: int = 12, variants: bool = False, outdated: bool = False) -> Path:
    """A corpus of the clauses of the first `contracts` CUAD contracts that cap liability and are governed by one
    of LAWS (one group per contract), a case per contract (does it cap liability: yes; which law), and the
    scenario; returns the scenario's path. `outdated`: each cap clause replaces an older draft of itself
    (the `replaces` column), which is what a stale fault makes the agent read."""
    table = pd.read_csv(CUAD)
    passages, cases = [], []
    for _, row in table.iterrows():
        if row["Governing Law-Answer"] not in LAWS or row["Cap On Liability-Answer"] != "Yes":
            continue
        c = f"c{len(cases):03d}"
        for key, column in CLAUSES.items():
            texts = ast.literal_eval(row[column])  # a Python list literal of strings (see the data's README)
            if texts:
                passages.append({"id": f"{c}/{key}", "contract": c, "text": " ".join(texts), "replaces": ""})
                if outdated and key == "cap":
                    passages[-1]["replaces"] = f"{c}/cap-draft"
                    passages.append({"id": f"{c}/cap-draft", "contract": c, "replaces": "",
                                     "text": "Superseded draft, not signed. " + " ".join(texts)})
        cases.append({"id": c, "group": c, "decide_cap.question": CAP_QUESTION, "decide_cap.gold": f"{c}/cap",
                      "decide_cap.answer": "yes", "decide_law.question": LAW_QUESTION,
                      "decide_law.gold": f"{c}/law", "decide_law.answer": row["Governing Law-Answer"]})
        if len(cases) == contracts:
            break
    pd.DataFrame(passages).to_csv(folder / "clauses.csv", index=False)
    pd.DataFrame(cases).to_csv(folder / "cases.csv", index=False)
    path = folder / "scenario.yaml"
    text = SCENARIO + (VARIANTS if variants else "")
    if outdated:
        text = text.replace("group_column: contract}", "group_column: contract, replaces_column: replaces}")
    path.write_text(text, encoding="utf-8")
    return path


def test_faults_on_real_clauses_become_wrong_decisions_and_actions_at_their_rate(tmp_path):
    """Clean retrieval: no wrong action. Every cap retrieval negated: the trace names retrieve_cap as the root
    of each wrong decision and of the wrong action it caused, and nothing else goes wrong. Negation twins at
    30%: wrong decisions exactly where a twin was read, at the injected rate (less the clauses no negation
    can be made in)."""
    sc = load_scenario(write_cuad(tmp_path, variants=True))
    n = 300
    result = run(sc, instances=n, engine="agent")
    summary, trace = result.summary, result.agent_trace
    assert summary["agent"]["workflow"] == "document_qa" and summary["agent"]["episodes"] == 12
    assert summary["agent"]["cases"].endswith("cases.csv") and summary["agent"]["policy"] == "simulated"
    base = trace[trace["variant"] == "base"]
    assert (base["outcome"] == "ok").all(), base[base["outcome"] != "ok"].head().to_string()
    assert summary["p_failure"] == 0.0

    negated = trace[trace["variant"] == "negated"].set_index(["instance", "step"])
    applied = negated.xs("retrieve_cap", level="step")["fault_applied"]
    assert applied.mean() > 0.8  # legal clauses nearly always have a "shall" or "will" to negate
    for i, made in applied.items():
        act = negated.loc[(i, "record_cap")]
        if made:
            assert (act["outcome"], act["root_cause_step"], act["error_type"]) == ("error", "retrieve_cap",
                                                                                   "negation_flip")
            assert (act["output"], act["truth"]) == ('{"action": "flag_uncapped"}', '{"action": "record_cap"}')
            assert negated.loc[(i, "decide_cap")]["output"] == '{"yes_no": "no"}'
        else:
            assert act["outcome"] == "ok"
        assert negated.loc[(i, "file_law")]["outcome"] == "ok"
    assert summary["variant_results"]["negated"]["p_failure"] == pytest.approx(applied.mean())

    twins = trace[trace["variant"] == "twins"]
    retrieved = twins[twins["step"] == "retrieve_cap"].set_index("instance")
    decided = twins[twins["step"] == "decide_cap"].set_index("instance")
    wrong = decided["outcome"] != "ok"
    assert wrong.equals(retrieved["fault_applied"])  # the stand-in reader errs exactly where it read a twin
    drawn = (retrieved["fault"] == "negation_flip").mean()
    assert abs(drawn - 0.3) < 4 * math.sqrt(0.3 * 0.7 / n)  # the injected rate, within 4 standard errors
    assert 0.8 * drawn <= wrong.mean() <= drawn


def test_a_stale_fault_reads_the_outdated_version_the_corpus_names(tmp_path):
    """Outdated drafts are never found by a search; a stale fault puts the draft its `replaces` column names in
    place of the current clause, and the stand-in reader, finding no current clause, decides wrongly."""
    path = write_cuad(tmp_path, contracts=6, outdated=True)
    path.write_text(path.read_text(encoding="utf-8") + "variants:\n  - name: stale\n    set: "
                    "{retrievers.cap_clauses.rates.stale: 1.0}\n", encoding="utf-8")
    result = run(load_scenario(path), instances=40, engine="agent")
    trace = result.agent_trace
    base, stale = trace[trace["variant"] == "base"], trace[trace["variant"] == "stale"]
    assert (base["outcome"] == "ok").all()
    assert not any(p.endswith("-draft") for ps in base["passages"] for p in ps)
    retrieved = stale[stale["step"] == "retrieve_cap"]
    assert retrieved["fault_applied"].all() and all(any(p.endswith("/cap-draft") for p in ps)
                                                    for ps in retrieved["passages"])
    act = stale[stale["step"] == "record_cap"]
    assert set(zip(act["outcome"], act["root_cause_step"], act["error_type"], strict=True)) == {
        ("error", "retrieve_cap", "stale")}
    assert result.summary["agent"]["faults"]["stale"]["retrieve_cap"] == {"drawn": {"stale": 40},
                                                                          "applied": {"stale": 40}}


def test_concurrency_changes_no_byte_of_a_document_qa_run(llm_server, tmp_path):  # noqa: F811
    """The real path: the OpenAI-compatible client against the test server (50 ms a request). One request at
    a time or eight in flight: the same run folder, byte for byte, and the same requests, each sent once."""
    sc = load_scenario(write_cuad(tmp_path, contracts=6))
    folders, keys, logs = {}, {}, {}
    for concurrency in (1, 8):
        llm_server.script("ok", latency=0.05)
        options = AgentSettings(policy="openai", llm=LLMSettings(base_url=llm_server.base_url, model="test-model",
                                                                 cache_dir=tmp_path / f"cache{concurrency}",
                                                                 concurrency=concurrency))
        result = run(sc, instances=10, engine="agent", options=options)
        assert result.summary["agent"]["policy"] == "openai:test-model"
        folders[concurrency] = result.write(tmp_path / f"run{concurrency}")
        logs[concurrency] = llm_server.log()
        keys[concurrency] = sorted(e["key"] for e in logs[concurrency])
    files = sorted(p.name for p in folders[1].iterdir())
    assert "agent_trace.parquet" in files and files == sorted(p.name for p in folders[8].iterdir())
    for name in files:
        assert (folders[1] / name).read_bytes() == (folders[8] / name).read_bytes(), name
    # No fault and one question per decide step: one distinct request per (contract met, decide step).
    met = pd.read_parquet(folders[1] / "agent_trace.parquet")["episode"].nunique()
    assert keys[1] == keys[8] and len(set(keys[1])) == len(keys[1]) == 2 * met
    assert most_in_any_window([e["t"] for e in logs[8]], 0.04) > 1  # the eight did overlap


@pytest.mark.skipif(not TAU2_KB.is_dir(), reason="../shared/data/retrieval/tau2_banking_kb is not beside the project")
def test_the_example_scenario_runs_reports_and_calibrates_from_the_cli(tmp_path):
    """scenarios/kb_fee_questions.yaml (the τ²-bench banking KB, a BEIR folder, and its case file): the run
    folder, the HTML report and `cascade calibrate` work as for the built-in agents."""
    res = runner.invoke(app, ["run", str(SCENARIOS / "kb_fee_questions.yaml"), "--engine", "agent", "-n", "80",
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "document_qa read by simulated over 12 episodes" in " ".join(res.output.split())
    trace = pd.read_parquet(tmp_path / "r" / "agent_trace.parquet")
    fee = trace[trace["step"] == "decide_fee"]
    assert (fee["outcome"] == "ok").mean() > 0.6 and set(fee["truth"]) >= {'{"number": "2.5"}', '{"number": "0"}'}
    res = runner.invoke(app, ["report", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["calibrate", str(tmp_path / "r"), "--check", "20000"])
    assert res.exit_code == 0, res.output
    calibrated = load_scenario(tmp_path / "r" / "calibrated.yaml")
    assert calibrated.agent is not None and Path(calibrated.agent.cases).is_file()


def _rewrite(path: Path, change) -> None:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    change(rows)
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def _cell(line: int, column: str, value: str):
    """Set `column` of the record on physical `line` (1 is the header) of a one-line-per-record CSV."""
    def change(rows):
        rows[line - 1][rows[0].index(column)] = value
    return change


def _drop_column(column: str):
    def change(rows):
        at = rows[0].index(column)
        for r in rows:
            del r[at]
    return change


BAD_FILES = [
    ("cases.csv", _drop_column("decide_law.question"), "cases.csv:1", "missing column(s) ['decide_law.question']"),
    ("cases.csv", _cell(3, "decide_cap.question", " "), "cases.csv:3", "decide_cap.question: is empty"),
    ("cases.csv", _cell(2, "decide_cap.gold", "c999/cap"), "cases.csv:2", "gold passage 'c999/cap' is not in the corpus"),
    ("cases.csv", _cell(2, "decide_cap.gold", "c000/cap-draft"), "cases.csv:2", "is an outdated version"),
    ("cases.csv", _cell(4, "decide_law.gold", "c000/law"), "cases.csv:4", "is in group 'c000', not in the case's group"),
    ("cases.csv", _cell(4, "decide_law.answer", "Nevada"), "cases.csv:4", "'Nevada' is not one of the labels"),
    ("cases.csv", _cell(5, "decide_cap.answer", "maybe"), "cases.csv:5", "'maybe' is not yes or no"),
    ("cases.csv", _cell(6, "id", "c000"), "cases.csv:6", "case id 'c000' appears twice (lines 2 and 6)"),
    ("cases.csv", _cell(2, "group", "c0"), "cases.csv:2", "group 'c0' is not a group of the corpus"),
    ("clauses.csv", _cell(3, "id", "c000/law"), "clauses.csv:3", "passage id 'c000/law' appears twice"),
    ("clauses.csv", _cell(3, "replaces", "c000/nothing"), "clauses.csv:3", "replaces 'c000/nothing', which is not"),
]


@pytest.mark.parametrize("name,change,where,message", BAD_FILES, ids=[b[3][:40] for b in BAD_FILES])
def test_bad_case_and_corpus_files_exit_2_naming_file_and_line(tmp_path, name, change, where, message):
    """`cascade run` and `cascade validate` (which reads the files as a run does, embedding nothing)."""
    path = write_cuad(tmp_path, contracts=6, outdated=True)
    good = runner.invoke(app, ["validate", str(path)])
    assert good.exit_code == 0 and "agent: 6 cases in" in " ".join(good.output.split()), good.output
    _rewrite(tmp_path / name, change)
    for command in (["run", str(path), "--engine", "agent", "-n", "2", "--out", str(tmp_path / "out")],
                    ["validate", str(path)]):
        res = runner.invoke(app, command)
        assert res.exit_code == 2, res.output
        text = " ".join(res.output.split())
        assert f"{tmp_path / where}" in text.replace(" ", "") or where in text, text
        assert message in text, text
        assert "Traceback" not in res.output and not (tmp_path / "out").exists()


BAD_SCENARIOS = [
    ("    decide_law: {type: label, labels: [New York, California, Delaware, Texas]}\n", "",
     "agent.answers: decide step 'decide_law' has no answer type"),
    ("labels: [New York, California, Delaware, Texas]", "labels: [New York]",
     "a label answer needs at least two distinct labels"),
    ('{"yes": record_cap, "no": flag_uncapped}', '{"yes": record_cap, "nope": flag_uncapped}',
     "'nope' is not an answer of 'decide_cap'"),
    ("cases: cases.csv", "cases: no_such_cases.csv", "agent.cases: no such file or folder"),
    ("  k: 3\n", "  k: 3\n  top_k: 3\n", "unknown key 'top_k'"),
    ("{type: yes_no}", "{type: boolean}", "agent.answers.decide_cap.type"),
]


@pytest.mark.parametrize("old,new,message", BAD_SCENARIOS, ids=[b[2][:40] for b in BAD_SCENARIOS])
def test_a_bad_agent_block_exits_2_at_its_line(tmp_path, old, new, message):
    path = write_cuad(tmp_path, contracts=3)
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    res = runner.invoke(app, ["validate", str(path)])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert re.search(re.escape(str(path).replace(" ", "")) + r":\d+", out.replace(" ", "")), out
    assert message in out, out
