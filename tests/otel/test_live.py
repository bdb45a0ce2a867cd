"""`cascade run --engine agent --otlp-endpoint URL`: each instance's spans go out while the run goes (the same
spans `cascade export` writes afterwards), and an endpoint that is down never stops or changes the run."""

from __future__ import annotations

import json
import socket

import pytest
from google.protobuf.json_format import MessageToDict
from typer.testing import CliRunner

from sim.cli import app
from sim.otel.otlp_json import read_otlp_json
from tests.conftest import SCENARIOS
from tests.otel.otlp_receiver import Receiver

pytestmark = pytest.mark.agent
runner = CliRunner()


def _run(out, *extra):
    return runner.invoke(app, ["run", str(SCENARIOS / "contract_review.yaml"), "--engine", "agent", "--instances",
                               "12", "--out", str(out), "-q", *extra])


def _key(span) -> str:
    return json.dumps(MessageToDict(span), sort_keys=True)


def test_live_spans_are_the_spans_export_writes(tmp_path):
    with Receiver() as rx:
        result = _run(tmp_path / "run", "--otlp-endpoint", rx.url)
        assert result.exit_code == 0, result.output
    live = sorted(_key(s) for s in rx.spans)
    assert len(live) == 2 * 12 * 17
    assert runner.invoke(app, ["export", str(tmp_path / "run"), "--otlp", str(tmp_path / "t.json")]).exit_code == 0
    exported = sorted(_key(s) for r in read_otlp_json(tmp_path / "t.json") for rs in r.resource_spans
                      for ss in rs.scope_spans for s in ss.spans)
    assert live == exported
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["agent"]["live_spans"] == {"endpoint": rx.url, "spans_sent": len(live), "spans_not_delivered": 0}


def test_a_dead_endpoint_never_stops_the_run(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _run(tmp_path / "run", "--otlp-endpoint", f"http://127.0.0.1:{port}/v1/traces")
    assert result.exit_code == 0, result.output
    live = json.loads((tmp_path / "run" / "summary.json").read_text())["agent"]["live_spans"]
    assert live["spans_sent"] == 0 and live["spans_not_delivered"] == 2 * 12 * 17
    plain = _run(tmp_path / "plain")
    assert plain.exit_code == 0
    for name in ("instances.parquet", "steps.parquet", "agent_trace.parquet"):
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()


def test_a_malformed_endpoint_exits_2_before_the_run(tmp_path):
    result = _run(tmp_path / "run", "--otlp-endpoint", "127.0.0.1:6006")
    assert result.exit_code == 2 and "give an OTLP/HTTP traces URL" in result.output
    assert not (tmp_path / "run").exists()
