"""A run folder holds everything the report shows: `cascade report` renders it and recomputes nothing."""

from __future__ import annotations

import json

import pandas as pd

import sim
import sim.metrics.sensitivity
from sim.output.report import report_from_run_dir
from tests.conftest import SCENARIOS


def _timeline_run(name: str, replications: int = 2):
    scenario = sim.load_scenario(SCENARIOS / f"{name}.yaml")
    tl = scenario.timeline.model_copy(update={"replications": replications})
    return sim.run(scenario.model_copy(update={"timeline": tl}), engine="timeline")


def test_timeline_on_a_measured_retriever_runs_and_reports(tmp_path, monkeypatch):
    # The timeline engine used to rebuild scenarios from YAML (refused for measured retrievers), and wrote its own
    # summary header without `measured_with` (the report's retriever section then failed).
    result = _timeline_run("contract_review_measured")
    result.write(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["engine"] == "timeline"
    assert summary["retrievers"]["contract"]["measured_with"]["model"] == "all-MiniLM-L6-v2"
    assert set(summary["variant_results"]) == {"assumed_rates"}

    def recompute(*args, **kwargs):
        raise AssertionError("the report recomputed the sensitivity table")

    monkeypatch.setattr(sim.metrics.sensitivity, "sensitivity", recompute)
    html = report_from_run_dir(tmp_path).read_text()
    assert "all-MiniLM-L6-v2" in html and "chart-sensitivity" in html and "chart-timeline" in html


def test_the_run_stores_its_sensitivity_table(tmp_path):
    result = sim.run(SCENARIOS / "contract_review.yaml", engine="analytic")
    result.write(tmp_path)
    table = pd.read_csv(tmp_path / "sensitivity.csv")
    assert list(table.columns) == list(sim.metrics.sensitivity.COLUMNS)
    assert (table["variant"] == "base").all() and (table["computed_by"] == "analytic (exact)").all()
    assert table["reference_loss"].iloc[0] == result.summary["expected_loss_per_instance"]
    assert table["swing"].is_monotonic_decreasing
