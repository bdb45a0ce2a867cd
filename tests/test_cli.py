"""The `cascade` command as a user runs it: what it writes, prints, and how the outputs read back."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from sim.cli import app
from sim.scenario.load import load_scenario
from sim.trace.schema import OUTCOMES
from tests.conftest import SCENARIOS

runner = CliRunner()

SUMMARY_KEYS = {"scenario", "engine", "seed", "instances", "p_failure", "p_failure_ci95",
                "expected_loss_per_instance", "silent_failure_rate", "amplification", "attribution"}


def test_run_writes_the_tables_and_prints_a_summary(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(SCENARIOS / "contract_review.yaml"), "--out", str(out),
                                 "--instances", "30000", "--seed", "5"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "P(wrong action)" in text and "Where the loss comes from" in text
    assert "finetuned_retriever vs base (paired)" in text
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["seed"] == 5 and summary["instances"] == 30000 and summary["engine"] == "monte_carlo"
    assert summary["p_failure_ci95"][0] <= summary["p_failure"] <= summary["p_failure_ci95"][1]
    assert abs(sum(a["share_of_loss"] for a in summary["attribution"]) - 1) < 1e-9
    assert set(summary["differences"]) == {"finetuned_retriever"}
    instances = pd.read_parquet(out / "instances.parquet")
    assert len(instances) == 2 * 30000 and set(instances.variant) == {"base", "finetuned_retriever"}
    base = instances[instances.variant == "base"]
    assert base.failed.mean() == summary["p_failure"]
    assert abs(base.loss.mean() - summary["expected_loss_per_instance"]) < 1e-6
    failed = base[base.failed]
    assert (failed.root_cause_step != "").all() and (base[~base.failed].root_cause_step == "").all()
    steps = pd.read_parquet(out / "steps.parquet")
    assert set(steps.outcome) <= set(OUTCOMES)
    per_step = steps[steps.variant == "base"].groupby("step")["count"].sum()
    assert (per_step == 30000).all(), per_step  # every instance has exactly one outcome at every step
    # the resolved scenario reloads to the scenario that ran (with the seed given on the command line)
    resolved = load_scenario(out / "scenario.yaml")
    original = load_scenario(SCENARIOS / "contract_review.yaml")
    assert resolved.seed == 5
    assert resolved.model_dump(exclude={"seed", "workflow"}) == original.model_dump(exclude={"seed", "workflow"})
    assert resolved.workflow.steps == original.workflow.steps


def test_analytic_engine_from_the_cli(tmp_path):
    result = runner.invoke(app, ["run", str(SCENARIOS / "ticket_triage.yaml"), "--engine", "analytic",
                                 "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["engine"] == "analytic" and summary["p_failure_ci95"] == [summary["p_failure"]] * 2


def test_instance_rows_are_capped_and_the_summary_says_so(tmp_path):
    out = tmp_path / "capped"
    result = runner.invoke(app, ["run", str(SCENARIOS / "ticket_triage.yaml"), "--out", str(out), "-n", "20000",
                                 "--max-instance-rows", "5000", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["instance_rows"]["mode"] == "sampled" and summary["instance_rows"]["rows"] == 5000
    assert len(pd.read_parquet(out / "instances.parquet")) == 2 * 5000


def test_validate_and_schema():
    result = runner.invoke(app, ["validate", str(SCENARIOS / "contract_review.yaml"), "--show"])
    assert result.exit_code == 0, result.output
    assert "16 steps" in result.output and "legal_review" in result.output
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert {"seed", "retrievers", "workflow", "costs", "variants"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
