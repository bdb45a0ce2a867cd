"""An agent run's traces: retrieved passages as OpenInference documents, action failures as span events, and
export-then-import giving the same trace tables (the user's labels standing in for production ground truth)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.otel import conventions as c
from sim.otel.otlp_json import read_otlp_json
from tests.otel.conftest import labels_from_agent_trace, same_tables

pytestmark = pytest.mark.agent
runner = CliRunner()


def test_agent_spans_carry_passages_outcomes_and_failure_events(agent_run, tmp_path):
    file = tmp_path / "t.json"
    assert runner.invoke(app, ["export", str(agent_run), "--otlp", str(file)]).exit_code == 0
    trace = pd.read_parquet(agent_run / "agent_trace.parquet").set_index(["variant", "instance", "step"])
    roots, steps = {}, []
    for request in read_otlp_json(file):
        for span in request.resource_spans[0].scope_spans[0].spans:
            attrs = {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}
            (steps.append((span, attrs)) if span.parent_span_id else roots.__setitem__(span.trace_id, attrs))
    assert len(roots) == 60 and {a[c.SPAN_KIND] for a in roots.values()} == {"AGENT"}
    failures = 0
    for span, attrs in steps:
        root = roots[span.trace_id]
        row = trace.loc[(root[c.VARIANT], root[c.INSTANCE], span.name)]
        assert attrs[c.STEP_OUTCOME] == row.outcome and attrs[c.STEP_KIND] == row.kind
        if row.kind == "retrieve":
            assert attrs[c.SPAN_KIND] == "RETRIEVER"
            docs = [attrs[c.document_id(n)] for n in range(len(row.passages))]
            assert docs == list(row.passages) and c.document_id(len(docs)) not in attrs
        events = [e.name for e in span.events]
        if row.kind == "act" and row.outcome == "error":
            failures += 1
            assert events == [c.ACTION_FAILURE_EVENT] and attrs[c.ROOT_CAUSE_STEP] == row.root_cause_step
        if row.outcome == "error" and row.root_cause_step == span.name:
            assert c.ROOT_CAUSE_EVENT in events
    assert failures == int(((trace.kind == "act") & (trace.outcome == "error")).sum()) > 0


def test_export_then_import_gives_the_agent_runs_tables(agent_run, tmp_path):
    file = tmp_path / "base.json"
    assert runner.invoke(app, ["export", str(agent_run), "--otlp", str(file), "--variant", "base"]).exit_code == 0
    ids = {}
    for request in read_otlp_json(file):
        for span in request.resource_spans[0].scope_spans[0].spans:
            if not span.parent_span_id:
                ids[next(a.value.int_value for a in span.attributes if a.key == c.INSTANCE)] = span.trace_id.hex()
    trace = pd.read_parquet(agent_run / "agent_trace.parquet")
    labels = tmp_path / "labels.csv"
    labels_from_agent_trace(trace[trace.variant == "base"], ids, labels)
    out = tmp_path / "imported"
    result = runner.invoke(app, ["import", str(file), "--workflow", str(agent_run / "scenario.yaml"),
                                 "--labels", str(labels), "--out", str(out)])
    assert result.exit_code == 0, result.output
    same_tables(agent_run, out)
