"""`cascade import`: a trace log (OTLP JSON) + ground-truth labels -> a recorded run that `cascade calibrate`
reads; malformed files exit 2 naming the file and the span; export-then-import gives the same tables."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.otel.otlp_json import read_otlp_json
from tests.conftest import chain

runner = CliRunner()
STEPS = [("fetch", "RETRIEVER"), ("judge", "LLM"), ("check", "GUARDRAIL"), ("apply", "TOOL")]


def _attr(key, value):
    kind = {bool: "boolValue", int: "intValue", float: "doubleValue", str: "stringValue"}[type(value)]
    return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}


def production_log(n: int, seed: int = 7):
    """A trace log as an instrumented app would write it (OpenInference attributes only), and the truth of
    every trace: fetch wrong (negation_flip or a plain miss), judge wrong, check escalated."""
    rng = np.random.Generator(np.random.PCG64(seed))
    spans, truth = [], []
    for i in range(n):
        trace = f"{i + 1:032x}"
        root = f"{i + 1:08x}00000000"
        fetch_wrong = rng.random() < 0.3
        fetch_type = "negation_flip" if rng.random() < 0.5 else "wrong"
        judge_wrong = rng.random() < (0.7 if fetch_wrong else 0.1)
        escalate = rng.random() < 0.4
        truth.append({"trace_id": trace, "fetch": fetch_type if fetch_wrong else "correct",
                      "judge": "wrong" if judge_wrong else "correct", "escalate": escalate})
        t0 = 1_700_000_000_000_000_000 + i * 10**9
        spans.append({"traceId": trace, "spanId": root, "name": "agent run", "kind": 1,
                      "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 10**8),
                      "attributes": [_attr("openinference.span.kind", "AGENT")]})
        for k, (name, kind) in enumerate(STEPS):
            attrs = [_attr("openinference.span.kind", kind)]
            if name == "fetch":
                attrs += [_attr("retrieval.documents.0.document.id", f"doc-{i}"),
                          _attr("retrieval.documents.1.document.id", f"doc-{i + 1}")]
            if name == "check":
                attrs.append(_attr("output.value", json.dumps({"escalate": escalate,
                                                               "caught": ["judge"] if escalate else []})))
            if name == "judge":
                attrs.append(_attr("output.value", "approve"))
            spans.append({"traceId": trace, "spanId": f"{i + 1:08x}{k + 1:08x}", "parentSpanId": root, "name": name,
                          "kind": 1, "startTimeUnixNano": str(t0 + k * 10**7),
                          "endTimeUnixNano": str(t0 + (k + 1) * 10**7), "attributes": attrs})
        spans.append({"traceId": trace, "spanId": f"{i + 1:08x}{99:08x}", "parentSpanId": f"{i + 1:08x}{2:08x}",
                      "name": "openai.chat", "kind": 3, "startTimeUnixNano": str(t0 + 10**7),
                      "endTimeUnixNano": str(t0 + 2 * 10**7)})
    doc = {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "my-app")]},
                              "scopeSpans": [{"scope": {"name": "openinference"}, "spans": spans}]}]}
    return doc, truth


def _labels(truth, path, skip=()):
    rows = [{"trace_id": t["trace_id"], "step": step, "label": t[step]} for t in truth for step in ("fetch", "judge")
            if (t["trace_id"], step) not in skip]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture
def files(tmp_path):
    doc, truth = production_log(300)
    scenario = tmp_path / "chain.yaml"
    scenario.write_text(yaml.safe_dump(chain(), sort_keys=False))
    traces = tmp_path / "traces.json"
    traces.write_text(json.dumps(doc))
    return tmp_path, doc, truth, scenario, traces


def _import(traces, scenario, labels, out):
    return runner.invoke(app, ["import", str(traces), "--workflow", str(scenario), "--labels", str(labels),
                               "--out", str(out)])


def test_a_trace_log_becomes_a_recorded_run_with_the_outcomes_its_labels_imply(files):
    tmp, doc, truth, scenario, traces = files
    # One trace loses its act span, one its judge label; two labelled traces are not in the log.
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    gone = truth[5]["trace_id"]
    spans[:] = [s for s in spans if not (s["traceId"] == gone and s["name"] == "apply")]
    traces.write_text(json.dumps(doc))
    extra = [{"trace_id": f"{10**6 + k:032x}", "fetch": "correct", "judge": "correct"} for k in range(2)]
    labels = _labels(truth + extra, tmp / "labels.csv", skip={(truth[9]["trace_id"], "judge")})
    result = _import(traces, scenario, labels, tmp / "run")
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "imported 298 of 300 traces" in text
    assert "left out 1 trace(s), no span for step(s) apply" in text
    assert "left out 1 trace(s), no label for step(s) judge" in text
    assert "openai.chat (300)" in text and "2 labelled trace(s) are not in" in text
    inst = pd.read_parquet(tmp / "run" / "instances.parquet").set_index("instance")
    kept = [(n, t) for n, t in enumerate(truth) if n not in (5, 9)]
    assert list(inst.index) == [n for n, _ in kept]
    for n, t in kept:
        judge_wrong = t["judge"] == "wrong"
        # The decision carries the first wrong input when it is wrong; the reviewer catches it when escalating.
        assert inst.loc[n, "failed"] == (judge_wrong and not t["escalate"])
        assert inst.loc[n, "caught"] == (judge_wrong and t["escalate"])
        assert inst.loc[n, "false_alarm"] == (not judge_wrong and t["escalate"])
        if inst.loc[n, "failed"]:
            root = ("fetch", "topical_miss" if t["fetch"] == "wrong" else t["fetch"]) if t["fetch"] != "correct" \
                else ("judge", "reasoning")
            assert (inst.loc[n, "root_cause_step"], inst.loc[n, "root_cause_error_type"]) == root
    # Each root error's fate as the labels and the reviewer's verdict say: a wrong judge carries the fetch's
    # error, and the reviewer's escalation catches it (else an action fails); a right judge masks it.
    steps = pd.read_parquet(tmp / "run" / "steps.parquet")
    own = steps[steps.fate != ""].set_index(["step", "error_type", "fate"])["count"]
    assert (steps[steps.fate != ""].outcome == "error").all()
    want: dict[tuple[str, str, str], int] = {}
    for _, t in kept:
        root = ("fetch", "topical_miss" if t["fetch"] == "wrong" else t["fetch"]) if t["fetch"] != "correct" \
            else ("judge", "reasoning") if t["judge"] == "wrong" else None
        if root is not None:
            fate = "masked" if t["judge"] == "correct" else "caught" if t["escalate"] else "failed"
            want[(*root, fate)] = want.get((*root, fate), 0) + 1
    assert own.to_dict() == want
    trace = pd.read_parquet(tmp / "run" / "agent_trace.parquet")
    fetch = trace[trace.step == "fetch"].set_index("instance")
    assert list(fetch.loc[0, "passages"]) == ["doc-0", "doc-1"]
    summary = json.loads((tmp / "run" / "summary.json").read_text())
    assert summary["engine"] == "recorded" and summary["recorded"]["left_out"] == {
        "no span for step(s) apply": 1, "no label for step(s) judge": 1}

    # calibrate reads it: the judge's base error rate is its wrong decisions on right inputs.
    result = runner.invoke(app, ["calibrate", str(tmp / "run"), "--check", "0"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp / "run" / "calibration.csv")
    row = table[(table["where"] == "judge") & (table["parameter"] == "base_error_rate")].iloc[0]
    clean = [t for _, t in kept if t["fetch"] == "correct"]
    assert (row.events, row.trials) == (sum(t["judge"] == "wrong" for t in clean), len(clean))


def _tables(folder):
    inst = pd.read_parquet(folder / "instances.parquet")
    steps = pd.read_parquet(folder / "steps.parquet").sort_values(["step", "outcome", "error_type",
                                                                   "root_cause_step"]).reset_index(drop=True)
    trace = pd.read_parquet(folder / "agent_trace.parquet").drop(columns=["trace_id"])
    trace = trace.map(lambda v: list(v) if isinstance(v, np.ndarray) else v)
    return inst, steps, trace


def test_export_then_import_gives_the_same_tables(files):
    tmp, doc, truth, scenario, traces = files
    assert _import(traces, scenario, _labels(truth, tmp / "labels.csv"), tmp / "first").exit_code == 0
    exported = tmp / "exported.json"
    result = runner.invoke(app, ["export", str(tmp / "first"), "--otlp", str(exported), "--max-traces", "1000"])
    assert result.exit_code == 0, result.output
    # The exported traces have ids of their own: labels follow them through cascadesim.instance.
    ids = {}
    for request in read_otlp_json(exported):
        for span in request.resource_spans[0].scope_spans[0].spans:
            attrs = {a.key: a.value for a in span.attributes}
            if not span.parent_span_id:
                ids[attrs["cascadesim.instance"].int_value] = span.trace_id.hex()
    relabelled = [{**t, "trace_id": ids[n]} for n, t in enumerate(truth)]
    assert _import(exported, scenario, _labels(relabelled, tmp / "l2.csv"), tmp / "second").exit_code == 0
    for first, second in zip(_tables(tmp / "first"), _tables(tmp / "second"), strict=True):
        pd.testing.assert_frame_equal(first, second)
    a, b = (json.loads((tmp / f / "summary.json").read_text()) for f in ("first", "second"))
    assert {k: a[k] for k in ("p_failure", "expected_loss_per_instance", "attribution", "cascade")} == \
        {k: b[k] for k in ("p_failure", "expected_loss_per_instance", "attribution", "cascade")}


def _span(doc, trace_index, name):
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    return next(s for s in spans if s["name"] == name and s["traceId"] == f"{trace_index + 1:032x}")


def _set_output(span, value):
    span["attributes"] = [a for a in span["attributes"] if a["key"] != "output.value"] + [_attr("output.value", value)]


MALFORMED = [
    ("not json", lambda d: "{\"resourceSpans\": [", "not JSON"),
    ("no resourceSpans", lambda d: {"spans": []}, "needs a top-level object with \"resourceSpans\""),
    ("bad trace id", lambda d: _span(d, 3, "judge").update(traceId="xyz") or d,
     "resourceSpans[0].scopeSpans[0].spans[20] (span 'judge'): traceId 'xyz' is not 32 hex digits"),
    ("bad time", lambda d: _span(d, 0, "fetch").update(startTimeUnixNano="soon") or d,
     "spans[1] (span 'fetch'): not an OTLP span: startTimeUnixNano field: invalid literal"),
    ("bad field", lambda d: _span(d, 1, "check").update(colour="red") or d,
     "spans[9] (span 'check'): not an OTLP span: Message type \"opentelemetry.proto.trace.v1.Span\" has no field "
     "named \"colour\""),
    ("no name", lambda d: _span(d, 2, "apply").update(name="") or d, "spans[16] (span '', id 0000000300000004)"),
    ("verdict not json", lambda d: _set_output(_span(d, 4, "check"), "escalated!") or d,
     "spans[27] (span 'check', id 0000000500000003): a verify step's span needs output.value"),
    ("verdict names a stranger", lambda d: _set_output(_span(d, 4, "check"),
                                                       '{"escalate": true, "caught": ["apply"]}') or d,
     "(span 'check', id 0000000500000003): caught ['apply'], which are not its inputs (judge)"),
]


@pytest.mark.parametrize("case, mutate, says", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_span_file_exits_2_naming_the_file_and_the_span(files, case, mutate, says):
    tmp, doc, truth, scenario, traces = files
    bad = mutate(copy.deepcopy(doc))
    traces.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    result = _import(traces, scenario, _labels(truth, tmp / "labels.csv"), tmp / "run")
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert str(traces) in text and says in text, text
    assert "Traceback" not in text and not (tmp / "run").exists()


def test_a_bad_line_of_json_lines_is_named(files):
    tmp, doc, truth, scenario, traces = files
    traces.write_text(json.dumps(doc) + "\n" + json.dumps(doc)[:50] + "\n")
    result = _import(traces, scenario, _labels(truth, tmp / "labels.csv"), tmp / "run")
    assert result.exit_code == 2 and f"{traces}:2: not JSON" in " ".join(result.output.split())


@pytest.mark.parametrize("row, says", [
    ({"step": "fetchh"}, "step 'fetchh' is not a step of the workflow"),
    ({"step": "apply"}, "step 'apply' is a act step; labels are for retrieve and decide steps"),
    ({"label": "maybe"}, "label 'maybe' for retrieve step 'fetch': give one of correct, wrong,"),
    ({"step": "judge", "label": "role_swap"}, "label 'role_swap' for decide step 'judge': give one of correct, wrong"),
    ({"trace_id": "42"}, "trace_id '42': give the trace's id, 32 hex digits"),
])
def test_a_bad_label_exits_2_naming_its_line(files, row, says):
    tmp, doc, truth, scenario, traces = files
    rows = [{"trace_id": truth[0]["trace_id"], "step": "fetch", "label": "correct"},
            {"trace_id": truth[1]["trace_id"], "step": "fetch", "label": "correct"}]
    rows[1].update(row)
    labels = tmp / "labels.csv"
    pd.DataFrame(rows).to_csv(labels, index=False)
    result = _import(traces, scenario, labels, tmp / "run")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and f"{labels}:3: {says}" in text, text


def test_labels_twice_or_without_their_columns_exit_2(files):
    tmp, doc, truth, scenario, traces = files
    labels = tmp / "labels.csv"
    labels.write_text(f"trace_id,step,label\n{truth[0]['trace_id']},fetch,correct\n{truth[0]['trace_id']},fetch,wrong\n")
    result = _import(traces, scenario, labels, tmp / "run")
    assert result.exit_code == 2 and f"{labels}:3: a second label" in result.output
    labels.write_text("trace,step,correct\nx,y,z\n")
    result = _import(traces, scenario, labels, tmp / "run")
    assert result.exit_code == 2 and "missing column(s) ['trace_id', 'label']" in result.output


def test_traces_of_several_variants_are_refused(files):
    tmp, doc, truth, scenario, traces = files
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    roots = [s for s in spans if "parentSpanId" not in s]
    for k, s in enumerate(roots):
        s["attributes"].append(_attr("cascadesim.variant", "base" if k % 2 else "better"))
    traces.write_text(json.dumps(doc))
    result = _import(traces, scenario, _labels(truth, tmp / "labels.csv"), tmp / "run")
    assert result.exit_code == 2 and "traces of several variants (base, better" in " ".join(result.output.split())


LANGFUSE_TYPE = {"RETRIEVER": "RETRIEVER", "LLM": "GENERATION", "TOOL": "TOOL", "GUARDRAIL": "GUARDRAIL",
                 "CHAIN": "CHAIN", "AGENT": "AGENT"}


def as_langfuse_observations(doc):
    """The observations Langfuse stores for the spans of an OTLP JSON document: the span id as `id`,
    openinference.span.kind as `type`, ISO times, input.value / output.value moved to input / output (parsed when
    JSON), every other attribute under metadata.attributes (integers as text, as Langfuse may keep them)."""
    out = []
    for span in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        attrs = {}
        for a in span.get("attributes", []):
            (kind, value), = a["value"].items()
            attrs[a["key"]] = str(value) if kind == "intValue" else value
        io = {k: attrs.pop(f"{k}.value", None) for k in ("input", "output")}
        for k, v in io.items():
            try:
                io[k] = json.loads(v) if v is not None else None
            except ValueError:
                pass
        start = pd.Timestamp(int(span["startTimeUnixNano"]), unit="ns", tz="UTC")
        end = pd.Timestamp(int(span["endTimeUnixNano"]), unit="ns", tz="UTC")
        out.append({"id": span["spanId"], "traceId": span["traceId"], "parentObservationId":
                    span.get("parentSpanId"), "name": span["name"],
                    "type": LANGFUSE_TYPE.get(attrs.get("openinference.span.kind"), "SPAN"),
                    "startTime": start.isoformat().replace("+00:00", "Z"),
                    "endTime": end.isoformat().replace("+00:00", "Z"), **io,
                    "metadata": {"attributes": attrs, "resourceAttributes": {"service.name": "my-app"}}})
    return out


def test_langfuse_exports_import_as_their_otlp_spans_do(files):
    tmp, doc, truth, scenario, traces = files
    labels = _labels(truth, tmp / "labels.csv")
    assert _import(traces, scenario, labels, tmp / "otlp").exit_code == 0
    obs = as_langfuse_observations(doc)
    by_trace = {}
    for o in obs:
        by_trace.setdefault(o["traceId"], []).append(o)
    session = tmp / "session.json"  # a session downloaded from the UI: traces, each with its observations
    session.write_text(json.dumps({"id": "s1", "traces": [{"id": t, "name": "agent run", "observations": o,
                                                            "scores": []} for t, o in by_trace.items()]}))
    table = tmp / "observations.jsonl"  # the observations table exported as JSON lines
    table.write_text("".join(json.dumps(o) + "\n" for o in obs))
    for source in (session, table):
        result = _import(source, scenario, labels, tmp / source.stem)
        assert result.exit_code == 0, result.output
        for first, second in zip(_tables(tmp / "otlp"), _tables(tmp / source.stem), strict=True):
            pd.testing.assert_frame_equal(first, second)

    trace = tmp / "trace.json"  # one trace downloaded from the UI
    first = next(iter(by_trace.values()))
    broken = copy.deepcopy(first)
    broken[2]["startTime"] = "yesterday"
    trace.write_text(json.dumps({"id": first[0]["traceId"], "observations": broken}))
    result = _import(trace, scenario, labels, tmp / "bad")
    assert result.exit_code == 2 and "observations[2]" in result.output and "ISO 8601" in result.output
