"""A run folder holds everything the report shows: `cascade report` renders it and recomputes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import sim
import sim.metrics.sensitivity
from sim.cli import app
from sim.core import atomic
from sim.core.errors import CascadeError
from sim.output.report import report_from_run_dir
from sim.output.run_folder import MANIFEST
from sim.scenario.load import scenario_from_dict
from tests.conftest import SCENARIOS, chain

runner = CliRunner()


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
    assert list(table["variant"].unique()) == ["base", "finetuned_retriever"]
    assert (table["computed_by"] == "analytic (exact)").all()
    for name, block in [("base", result.summary), *result.summary["variant_results"].items()]:
        rows = table[table["variant"] == name]
        assert (rows["reference_loss"] == block["expected_loss_per_instance"]).all()
        assert rows["swing"].is_monotonic_decreasing
        assert (rows["importance_per_point"] == rows["importance"] / 100).all()


# A run folder is one whole run: replaced whole, refused when it is not one, checked before it is rendered.

def _chain_run(seed: int = 1, **changes):
    return sim.run(scenario_from_dict(chain(instances=4000, seed=seed, **changes)))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_rerun_replaces_the_folder_whole_and_its_stale_report_goes(tmp_path):
    out = tmp_path / "run"
    _chain_run(1).write(out)
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    assert (out / "report.html").is_file()
    _chain_run(2).write(out)
    assert not (out / "report.html").exists() and not (out / "report.md").exists()
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest["files"]) == set(_files(out)) - {MANIFEST}
    assert json.loads((out / "summary.json").read_text())["seed"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary or old folder left beside it


def test_the_portable_swap_replaces_too(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)  # as on a system without renameat2
    out = tmp_path / "run"
    _chain_run(1).write(out)
    _chain_run(2).write(out)
    assert json.loads((out / "summary.json").read_text())["seed"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_crash_between_the_two_renames_is_recovered(tmp_path):
    # The portable swap renames the old folder aside, then the new one in: a crash between leaves no folder at
    # all, the old one aside and the new one beside it. The next run, or report, puts the old one back.
    out = tmp_path / "run"
    _chain_run(1).write(out)
    before = _files(out)
    pid = _dead_pid()
    os.rename(out, tmp_path / f".run.cascade-old-{pid}-abc123")
    (tmp_path / f".run.cascade-new-{pid}-def456").mkdir()
    (tmp_path / f".run.cascade-new-{pid}-def456" / "summary.json").write_text("{}")
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    assert {k: v for k, v in _files(out).items() if not k.startswith("report.")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_leftovers_of_a_live_writer_are_left_alone(tmp_path):
    out = tmp_path / "run"
    _chain_run(1).write(out)
    live = tmp_path / f".run.cascade-new-{os.getppid()}-abc123"  # our parent: alive
    live.mkdir()
    _chain_run(2).write(out)
    assert live.is_dir()


def test_a_non_finite_summary_is_a_bug_and_leaves_the_old_run(tmp_path):
    out = tmp_path / "run"
    _chain_run(1).write(out)
    before = _files(out)
    bad = _chain_run(2)
    bad.summary["attribution"][0]["loss_per_instance"] = float("inf")
    with pytest.raises(ValueError, match=r"inf at attribution\.0\.loss_per_instance.*bug"):
        bad.write(out)
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.parametrize("setup, message", [
    (lambda d: (d / "notes.txt").write_text("mine"), "holds files but is not a run folder"),
    (lambda d: ((d / "summary.json").write_text("{}"), (d / "main.py").write_text("")), "not a run folder"),
])
def test_a_folder_with_other_files_is_refused_not_deleted(tmp_path, setup, message):
    out = tmp_path / "mine"
    out.mkdir()
    setup(out)
    before = _files(out)
    result = runner.invoke(app, ["run", str(SCENARIOS / "ticket_triage.yaml"), "--out", str(out), "-n", "100"])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert _files(out) == before
    with pytest.raises(CascadeError, match=message):
        _chain_run().write(out)
    assert _files(out) == before


def test_an_empty_folder_and_a_run_folder_of_an_older_version_are_written(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _chain_run().write(empty)
    assert (empty / MANIFEST).is_file()
    older = tmp_path / "older"
    older.mkdir()
    for name in ("summary.json", "instances.parquet", "report.html"):  # what an older `cascade run` left
        (older / name).write_text("{}")
    _chain_run().write(older)
    assert (older / MANIFEST).is_file() and not (older / "report.html").exists()


@pytest.mark.parametrize("out", ["", ".", "..", "file"])
def test_out_must_be_a_folder_of_its_own(tmp_path, monkeypatch, out):
    work = tmp_path / "work"
    work.mkdir()
    (work / "file").write_text("x")
    monkeypatch.chdir(work)
    result = runner.invoke(app, ["run", str(SCENARIOS / "ticket_triage.yaml"), "--out", out, "-n", "100"])
    assert result.exit_code == 2, result.output
    assert "output folder" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in work.iterdir()) == ["file"]


# `cascade report` trusts nothing it reads: a damaged folder exits 2 naming the file and what is wrong.

def _forge_manifest(folder: Path) -> None:
    """Make the manifest agree with the files again, as a careless tool or hand edit might."""
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"] = {p.name: {"bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
                         for p in folder.iterdir() if p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _edit_summary(folder: Path, edit) -> None:
    summary = json.loads((folder / "summary.json").read_text())
    edit(summary)
    (folder / "summary.json").write_text(json.dumps(summary))


DAMAGES = {
    "empty summary": (lambda d: (d / "summary.json").write_text("{}"), True, "summary.json: cascade: Field required"),
    "summary not json": (lambda d: (d / "summary.json").write_text("{"), True, "summary.json: Invalid JSON"),
    "summary a list": (lambda d: (d / "summary.json").write_text("[]"), True, "summary.json: Input should be"),
    "a string for a number": (lambda d: _edit_summary(d, lambda s: s.update(p_failure="high")), True,
                              "summary.json: p_failure: Input should be a valid number"),
    "true for a number": (lambda d: _edit_summary(d, lambda s: s["variant_results"]["v"].update(amplification=True)),
                          True, "summary.json: variant_results.v.amplification: Input should be a valid number"),
    "a seed with markup": (lambda d: _edit_summary(d, lambda s: s.update(seed="<script>x</script>")), True,
                           "summary.json: seed: Input should be a valid integer"),
    "a short interval": (lambda d: _edit_summary(d, lambda s: s["attribution"][0].update(loss_per_instance_ci95=[1])),
                         True, "summary.json: attribution.0.loss_per_instance_ci95.1: Field required"),
    "NaN": (lambda d: (d / "summary.json").write_text(
        (d / "summary.json").read_text().replace('"p_failure": 0.', '"p_failure": NaN, "x": 0.', 1)), True,
        "summary.json: p_failure: Input should be a finite number"),
    "a null cascade": (lambda d: _edit_summary(d, lambda s: s.update(cascade=None)), True,
                       "summary.json: cascade: Input should be a valid array"),
    "fates not adding up": (lambda d: _edit_summary(d, lambda s: s["cascade"][0].update(p_masked_given_root=0.9)),
                            True, "summary.json: cascade.0: p_action_failure_given_root, p_caught_given_root and "
                                  "p_masked_given_root are"),
    "garbage parquet": (lambda d: (d / "steps.parquet").write_bytes(b"not parquet"), True,
                        "steps.parquet: not a readable parquet table"),
    "parquet of another table": (lambda d: pq.write_table(pa.table({"x": [1]}), d / "instances.parquet"), True,
                                 "instances.parquet: missing columns ['variant'"),
    "sensitivity garbage": (lambda d: (d / "sensitivity.csv").write_text("a,b\n1,2\n"), True,
                            "sensitivity.csv: missing columns"),
    "sensitivity words": (lambda d: (d / "sensitivity.csv").write_text(
        (d / "sensitivity.csv").read_text().replace("analytic (exact),", "analytic (exact),oops", 1)), True,
        "sensitivity.csv: column 'reference_loss': needs numbers"),
    "a missing file": (lambda d: (d / "steps.parquet").unlink(), False, "steps.parquet: missing (the manifest"),
    "a summary from another run": (lambda d: _edit_summary(d, lambda s: s.update(seed=99)), False,
                                   "summary.json: not the file this run wrote"),
    "no manifest": (lambda d: (d / MANIFEST).unlink(), False, "no manifest.json"),
    "a foreign manifest": (lambda d: (d / MANIFEST).write_text('{"files": []}'), False,
                           "manifest.json: not a manifest written by `cascade run`"),
    "a manifest escaping the folder": (lambda d: (d / MANIFEST).write_text(json.dumps(
        {"format": "cascadesim run folder", "version": 1, "files": {
            **json.loads((d / MANIFEST).read_text())["files"], "../x": {"bytes": 1, "sha256": ""}}})), False,
        "files.../x: needs a plain file name"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_report_refuses_a_damaged_folder_with_what_is_wrong(tmp_path, damage):
    out = tmp_path / "run"
    sim.run(scenario_from_dict(chain(instances=2000, variants=[
        {"name": "v", "set": {"retrievers.docs.rates.negation_flip": 0.01}}])), engine="monte_carlo").write(out)
    harm, forge, message = DAMAGES[damage]
    harm(out)
    if forge:
        _forge_manifest(out)
    result = runner.invoke(app, ["report", str(out)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert message in text and "Traceback" not in text and "internal error" not in text
    assert not (out / "report.html").exists()


def test_every_summary_string_is_escaped_in_the_html():
    from sim.output.report import render_html

    summary = json.loads(json.dumps(_chain_run().summary))
    mark = "<u>pwned</u>"

    def taint(value, key=""):
        if isinstance(value, dict):
            return {k: taint(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [taint(v) for v in value]
        return value + mark if isinstance(value, str) and key not in ("engine", "kind") else value

    summary = taint(summary)
    summary["seed"] = mark  # a Python API user may hand any summary to the renderer
    summary["retrievers"]["docs"] = {"kind": "measured", "measured_with": {
        "model": mark, "corpus": mark, "created": mark, "profile": f"/p/{mark}"}}
    summary["agent"] = {"workflow": mark, "policy": mark, "episodes": mark, "embedding_model": mark, "store": mark,
                        "tickets": f"/t/{mark}", "faults": {mark: {mark: {"drawn": {mark: mark}, "applied": {}}}},
                        "invalid_replies": {}}
    page = render_html(summary, description=mark)
    body = page[page.index("</head>"):]
    assert "pwned" in body and mark not in body and "<u>" not in body


def test_a_folder_from_before_caught_and_masked_were_apart_still_reports_them_together(tmp_path):
    """Nothing a user computed is lost: a run folder written before the split (no fate keys in the summary, no
    `fate` or `failed_acts` column) still renders; its Sankey has one 'masked or caught' node and says why."""
    out = tmp_path / "run"
    sim.run(scenario_from_dict(chain(instances=2000)), engine="monte_carlo").write(out)
    _edit_summary(out, lambda s: [c.pop(k) for c in s["cascade"] for k in ("p_caught_given_root",
                                                                          "p_masked_given_root")])
    pq.write_table(pq.read_table(out / "steps.parquet").drop_columns(["fate"]), out / "steps.parquet")
    pq.write_table(pq.read_table(out / "instances.parquet").drop_columns(["failed_acts"]), out / "instances.parquet")
    _forge_manifest(out)
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert "masked or caught" in page and "written before caught and masked were kept apart" in page
