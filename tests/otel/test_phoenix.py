"""A real Arize Phoenix server (started here on 127.0.0.1 with its own working folder, stopped by its pid)
receives `cascade export --endpoint` over OTLP/HTTP; its REST API shows the spans with their kinds, root causes
and retrieved documents, and its own span export imports back into the same trace tables.

Phoenix is an optional extra (`pip install '.[phoenix]'`, about 850 MB and 1.5 minutes into a fresh venv):
.ci/run installs it into .venv-phoenix and points CASCADESIM_PHOENIX at its `phoenix` command. Without it the
test is skipped outside CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.otel import conventions as c
from tests.conftest import free_port
from tests.llm_fixtures import _stop as stop
from tests.otel.conftest import labels_from_agent_trace, same_tables

pytestmark = [pytest.mark.servers, pytest.mark.agent]
runner = CliRunner()
STARTUP_SECONDS = 180.0  # a first start migrates its database (about 35 s on the 2-core reference machine)
PROJECT = "cascade-test"


def _phoenix_command() -> str | None:
    given = os.environ.get("CASCADESIM_PHOENIX")
    if given:
        return given
    beside = Path(sys.executable).parent / "phoenix"
    return str(beside) if beside.is_file() else shutil.which("phoenix")


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    command = _phoenix_command()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs Phoenix (.ci/run: .venv-phoenix); set CASCADESIM_PHOENIX to its phoenix")
        pytest.skip("needs Arize Phoenix: pip install '.[phoenix]' or set CASCADESIM_PHOENIX")
    where = tmp_path_factory.mktemp("phoenix")
    port = free_port()
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(where), "PHOENIX_HOST": "127.0.0.1",
           "PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(free_port()),
           "PHOENIX_TELEMETRY_ENABLED": "false", "DO_NOT_TRACK": "1"}
    log = where / "phoenix.log"
    with open(log, "wb") as out:  # a file, not a pipe: nobody drains a pipe while tests run
        process = subprocess.Popen([command, "serve"], cwd=where, env=env, stdout=out, stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                _get(root + "/v1/projects")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Phoenix did not start within {STARTUP_SECONDS:g} s (exit code {process.poll()}):"
                                f"\n{log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.5)
        yield root
    finally:
        stop(process)  # by its pid: SIGTERM, then SIGKILL


def _pages(url: str, want: int) -> list[dict]:
    """Every page of a Phoenix span listing, waiting (up to 60 s) until `want` spans have been ingested."""
    deadline = time.monotonic() + 60
    while True:
        pages, cursor = [], None
        while True:
            try:
                page = _get(url + (f"&cursor={cursor}" if cursor else ""))
            except urllib.error.HTTPError as exc:
                if exc.code != 404:  # 404: the project is created with its first span, a moment later
                    raise
                page = {"data": []}
            pages.append(page)
            cursor = page.get("next_cursor")
            if not cursor:
                break
        if sum(len(p["data"]) for p in pages) >= want or time.monotonic() > deadline:
            return pages
        time.sleep(1)


def test_phoenix_server_receives_the_export_and_its_spans_import_back(phoenix, agent_run, tmp_path):
    result = runner.invoke(app, ["export", str(agent_run), "--endpoint", f"{phoenix}/v1/traces", "--variant",
                                 "base", "--project", PROJECT, "--header", "authorization=Bearer not-checked"])
    assert result.exit_code == 0, result.output
    trace = pd.read_parquet(agent_run / "agent_trace.parquet")
    trace = trace[trace.variant == "base"]
    instances = pd.read_parquet(agent_run / "instances.parquet")
    instances = instances[instances.variant == "base"].set_index("instance")
    want = len(trace) + len(instances)
    spans = [s for p in _pages(f"{phoenix}/v1/projects/{PROJECT}/spans?limit=1000", want) for s in p["data"]]
    assert len(spans) == want
    roots = {s["context"]["trace_id"]: s for s in spans if s["parent_id"] is None}
    assert len(roots) == 30 and {s["span_kind"] for s in roots.values()} == {"AGENT"}
    for root in roots.values():
        a, row = root["attributes"], instances.loc[root["attributes"][c.INSTANCE]]
        assert a[c.FAILED] == row.failed
        if row.failed:
            assert (a[c.ROOT_CAUSE_STEP], a[c.ROOT_CAUSE_TYPE]) == (row.root_cause_step, row.root_cause_error_type)
            assert root["status_code"] == "ERROR"
    kinds = {"retrieve": "RETRIEVER", "decide": "CHAIN", "verify": "GUARDRAIL", "act": "TOOL"}
    rows = trace.set_index(["instance", "step"])
    for s in spans:
        if s["parent_id"] is None:
            continue
        row = rows.loc[(roots[s["context"]["trace_id"]]["attributes"][c.INSTANCE], s["name"])]
        assert s["span_kind"] == kinds[row.kind] and s["attributes"][c.STEP_OUTCOME] == row.outcome
        if row.kind == "retrieve":
            docs = [s["attributes"][c.document_id(n)] for n in range(len(row.passages))]
            assert docs == list(row.passages)
        if row.kind == "act" and row.outcome == "error":
            assert [e["name"] for e in s["events"]] == [c.ACTION_FAILURE_EVENT]

    # Phoenix's own span export (OTLP, one page per line) imports back into the same tables.
    pages = _pages(f"{phoenix}/v1/projects/{PROJECT}/spans/otlpv1?limit=1000", want)
    exported = tmp_path / "phoenix.jsonl"
    exported.write_text("".join(json.dumps(p) + "\n" for p in pages))
    ids = {s["attributes"][c.INSTANCE]: tid for tid, s in roots.items()}
    labels = tmp_path / "labels.csv"
    labels_from_agent_trace(trace, ids, labels)
    out = tmp_path / "imported"
    result = runner.invoke(app, ["import", str(exported), "--workflow", str(agent_run / "scenario.yaml"),
                                 "--labels", str(labels), "--out", str(out)])
    assert result.exit_code == 0, result.output
    same_tables(agent_run, out)
