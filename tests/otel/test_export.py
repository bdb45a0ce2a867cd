"""`cascade export`: a run folder as OTLP traces, to a file (checked against opentelemetry-proto's messages) and
to a real OTLP/HTTP receiver on 127.0.0.1, including one that is down, slow or refuses."""

from __future__ import annotations

import hashlib
import json
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.otel import conventions as c
from sim.otel.otlp_json import read_otlp_json
from tests.conftest import chain, free_port
from tests.otel.otlp_receiver import Receiver

runner = CliRunner()


@pytest.fixture(scope="module")
def mc_run(tmp_path_factory):
    """A Monte Carlo run of the chain scenario with a variant (600 instances each)."""
    import yaml

    folder = tmp_path_factory.mktemp("mc")
    data = chain(instances=600, variants=[{"name": "better", "set": {"retrievers.docs.rates.topical_miss": 0.01}}])
    scenario = folder / "chain.yaml"
    scenario.write_text(yaml.safe_dump(data, sort_keys=False))
    out = folder / "run"
    result = runner.invoke(app, ["run", str(scenario), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def _spans(file):
    """(span, attributes as a dict) of every span of an OTLP JSON file, parsed by opentelemetry-proto."""
    out = []
    for request in read_otlp_json(file):
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    attrs = {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}
                    out.append((span, attrs))
    return out


def _folder_digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_each_instance_is_a_trace_with_a_span_per_step_and_its_outcome(mc_run, tmp_path):
    file = tmp_path / "traces.json"
    result = runner.invoke(app, ["export", str(mc_run), "--otlp", str(file), "--max-traces", "600"])
    assert result.exit_code == 0, result.output
    spans = _spans(file)
    instances = pd.read_parquet(mc_run / "instances.parquet")
    roots = {s.trace_id: (s, a) for s, a in spans if not s.parent_span_id}
    assert len(roots) == len(instances) == 1200
    children: dict[bytes, list] = {}
    for s, a in spans:
        if s.parent_span_id:
            assert s.parent_span_id == roots[s.trace_id][0].span_id
            assert roots[s.trace_id][0].start_time_unix_nano <= s.start_time_unix_nano
            assert s.end_time_unix_nano <= roots[s.trace_id][0].end_time_unix_nano
            children.setdefault(s.trace_id, []).append((s, a))
    kinds = {"fetch": "RETRIEVER", "judge": "CHAIN", "check": "GUARDRAIL", "apply": "TOOL"}
    by_key = {(r.variant, r.instance): r for r in instances.itertuples()}
    failed_seen = 0
    for trace_id, (root, a) in roots.items():
        row = by_key[(a[c.VARIANT], a[c.INSTANCE])]
        assert a[c.SPAN_KIND] == "CHAIN" and a[c.GEN_AI_OPERATION] == "invoke_agent"
        assert a[c.FAILED] == row.failed and a[c.LOSS] == row.loss and a[c.SILENT] == row.silent
        assert a[c.OUTCOME] == ("action_failure" if row.failed else "escalated" if row.caught or row.false_alarm
                                else "ok")
        steps = {s.name: (s, sa) for s, sa in children[trace_id]}
        assert {name: sa[c.SPAN_KIND] for name, (s, sa) in steps.items()} == kinds
        assert steps["fetch"][1][c.GEN_AI_OPERATION] == "retrieval"
        assert steps["apply"][1][c.GEN_AI_OPERATION] == "execute_tool"
        with_event = [name for name, (s, _) in steps.items() if any(e.name == c.ROOT_CAUSE_EVENT for e in s.events)]
        if row.failed:
            failed_seen += 1
            assert root.status.code == 2  # STATUS_CODE_ERROR
            assert a[c.ROOT_CAUSE_STEP] == row.root_cause_step and a[c.ROOT_CAUSE_TYPE] == row.root_cause_error_type
            assert with_event == [row.root_cause_step]
            event = next(e for e in steps[row.root_cause_step][0].events if e.name == c.ROOT_CAUSE_EVENT)
            assert {x.key: x.value.string_value for x in event.attributes}[c.ROOT_CAUSE_TYPE] == \
                row.root_cause_error_type
            # a Monte Carlo run keeps no per-step trace, yet names the act that failed (instances' failed_acts)
            act, act_attrs = steps["apply"]
            assert row.failed_acts == "apply" and act.status.code == 2 and act_attrs[c.STEP_OUTCOME] == "error"
            assert [e.name for e in act.events] == [c.ACTION_FAILURE_EVENT]
            assert not any(e.name == c.ACTION_FAILURE_EVENT for e in root.events)
        else:
            assert with_event == [] and c.ROOT_CAUSE_STEP not in a
    assert failed_seen == int(instances.failed.sum()) > 30


def test_a_capped_export_samples_the_same_instances_in_every_variant_and_is_reproducible(mc_run, tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for file in (first, second):
        result = runner.invoke(app, ["export", str(mc_run), "--otlp", str(file), "--max-traces", "50"])
        assert result.exit_code == 0, result.output
        assert "a seeded sample of 1,200" in " ".join(result.output.split())
    assert first.read_bytes() == second.read_bytes()
    roots = [a for s, a in _spans(first) if not s.parent_span_id]
    by_variant = {v: sorted(a[c.INSTANCE] for a in roots if a[c.VARIANT] == v) for v in ("base", "better")}
    assert len(by_variant["base"]) == 50 and by_variant["base"] == by_variant["better"]
    assert by_variant["base"] != list(range(50))  # a sample across the run, not its first instances
    only = tmp_path / "only.json"
    result = runner.invoke(app, ["export", str(mc_run), "--otlp", str(only), "--variant", "better"])
    assert result.exit_code == 0, result.output
    assert {a[c.VARIANT] for s, a in _spans(only) if not s.parent_span_id} == {"better"}


def test_the_synthetic_clock_starts_where_asked(mc_run, tmp_path):
    file = tmp_path / "t.json"
    result = runner.invoke(app, ["export", str(mc_run), "--otlp", str(file), "--max-traces", "3",
                                 "--start", "2026-03-01T12:00:00+00:00", "--variant", "base"])
    assert result.exit_code == 0, result.output
    roots = sorted((a[c.INSTANCE], s.start_time_unix_nano) for s, a in _spans(file) if not s.parent_span_id)
    t0 = 1772366400 * 10**9  # 2026-03-01T12:00:00Z
    assert [t for _, t in roots] == [t0 + i * 10**9 for i, _ in roots]


def test_export_to_an_endpoint_sends_protobuf_with_the_auth_header_and_writes_nothing(mc_run, tmp_path,
                                                                                      monkeypatch):
    before = _folder_digest(mc_run)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=cascades")
    with Receiver() as rx:
        result = runner.invoke(app, ["export", str(mc_run), "--endpoint", rx.url, "--max-traces", "300",
                                     "--header", "authorization=Bearer s3cret-token"])
        assert result.exit_code == 0, result.output
    assert len(rx.spans) == 2 * 300 * 5 and len(rx.requests) == -(-len(rx.spans) // 512)
    assert all(h["authorization"] == "Bearer s3cret-token" and h["x-team"] == "cascades" for h in rx.headers)
    assert all(h["content-type"] == "application/x-protobuf" for h in rx.headers)
    assert "s3cret" not in result.output
    assert _folder_digest(mc_run) == before


@pytest.mark.parametrize("status", [401, 404, 500, 503])
def test_an_endpoint_that_refuses_exits_2_and_leaves_the_run_as_it_was(mc_run, status):
    before = _folder_digest(mc_run)
    with Receiver(status=status) as rx:
        result = runner.invoke(app, ["export", str(mc_run), "--endpoint", rx.url, "--max-traces", "10",
                                     "--timeout", "1.5", "--header", "authorization=Bearer s3cret-token"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert f"--endpoint {rx.url}: the export failed after 0 of" in text and "s3cret" not in text
    assert "Traceback" not in text
    assert _folder_digest(mc_run) == before


def test_an_endpoint_that_is_down_or_slow_exits_2_within_the_timeout(mc_run):
    before = _folder_digest(mc_run)
    down = f"http://127.0.0.1:{free_port()}/v1/traces"
    t = time.monotonic()
    result = runner.invoke(app, ["export", str(mc_run), "--endpoint", down, "--timeout", "2", "--max-traces", "5"])
    assert result.exit_code == 2 and "Connection refused" in result.output, result.output
    with Receiver(delay=3.0) as rx:
        result = runner.invoke(app, ["export", str(mc_run), "--endpoint", rx.url, "--timeout", "1",
                                     "--max-traces", "5"])
    assert result.exit_code == 2 and "larger --timeout" in " ".join(result.output.split()), result.output
    assert time.monotonic() - t < 30  # bounded by the timeouts, never a hang
    assert _folder_digest(mc_run) == before


@pytest.mark.parametrize("args, says", [
    ([], "nothing to do"),
    (["--endpoint", "127.0.0.1:6006"], "give an OTLP/HTTP traces URL"),
    (["--endpoint", "http://127.0.0.1:6006"], "no path"),
    (["--endpoint", "http://127.0.0.1:6006/v1/traces", "--header", "novalue"], "give KEY=VALUE"),
    (["--otlp", "x.json", "--start", "yesterday"], "--start 'yesterday'"),
    (["--otlp", "x.json", "--variant", "nope"], "--variant 'nope'"),
])
def test_bad_export_arguments_exit_2_naming_them(mc_run, args, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["export", str(mc_run), *args])
    assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output
    assert not (tmp_path / "x.json").exists()


def test_a_folder_that_is_not_a_run_exits_2(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = runner.invoke(app, ["export", str(tmp_path), "--otlp", str(tmp_path / "t.json")])
    assert result.exit_code == 2 and "summary.json" in result.output


def test_the_file_is_otlp_json_with_hex_ids(mc_run, tmp_path):
    file = tmp_path / "t.json"
    assert runner.invoke(app, ["export", str(mc_run), "--otlp", str(file), "--max-traces", "2"]).exit_code == 0
    doc = json.loads(file.read_text())
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16 and len(span["parentSpanId"]) == 16
    int(span["traceId"], 16)
    resource = {a["key"]: a["value"] for a in doc["resourceSpans"][0]["resource"]["attributes"]}
    assert resource[c.PROJECT] == {"stringValue": "chain"}


def test_an_analytic_run_has_no_instances_to_export(tmp_path):
    import yaml

    scenario = tmp_path / "chain.yaml"
    scenario.write_text(yaml.safe_dump(chain(), sort_keys=False))
    assert runner.invoke(app, ["run", str(scenario), "--engine", "analytic", "--out", str(tmp_path / "r"),
                               "-q"]).exit_code == 0
    result = runner.invoke(app, ["export", str(tmp_path / "r"), "--otlp", str(tmp_path / "t.json")])
    assert result.exit_code == 2 and "the analytic engine computes expectations" in " ".join(result.output.split())
    assert not (tmp_path / "t.json").exists()


def test_a_timeline_run_exports_its_simulated_times(tmp_path):
    """Root spans run from each instance's simulated arrival to its completion; the steps share that span."""
    import yaml

    from tests.conftest import with_timeline

    data = with_timeline(reviewers={"check": {"servers": 3, "minutes": 4, "open_hour": 9, "close_hour": 17}})
    scenario = tmp_path / "tl.yaml"
    scenario.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(scenario), "--engine", "timeline", "--out", str(out), "-q"]).exit_code == 0
    rows = pd.read_parquet(out / "instances.parquet").set_index("instance")
    assert rows["arrival_day"].is_monotonic_increasing
    assert (rows["completed_day"].isna() | (rows["completed_day"] >= rows["arrival_day"])).all()
    assert rows["completed_day"].notna().mean() > 0.99
    file = tmp_path / "t.json"
    result = runner.invoke(app, ["export", str(out), "--otlp", str(file), "--max-traces", "20",
                                 "--start", "2026-03-01T00:00:00+00:00"])
    assert result.exit_code == 0, result.output
    spans = _spans(file)
    t0 = 1772323200 * 10**9  # 2026-03-01T00:00:00Z
    roots = [(s, a) for s, a in spans if not s.parent_span_id]
    assert len(roots) == 20
    day = 86_400 * 10**9
    for span, attrs in roots:
        row = rows.loc[attrs[c.INSTANCE]]
        assert abs(span.start_time_unix_nano - (t0 + row["arrival_day"] * day)) < 10**3
        if pd.isna(row["completed_day"]):
            continue
        assert abs(span.end_time_unix_nano - (t0 + row["completed_day"] * day)) < 10**6 * len(data["workflow"]["steps"])
        children = sorted((s.start_time_unix_nano, s.end_time_unix_nano) for s, _ in spans
                          if s.trace_id == span.trace_id and s.parent_span_id)
        assert children[0][0] == span.start_time_unix_nano and children[-1][1] == span.end_time_unix_nano
