"""Studies on an in-process Dask client (threads: fast): figures equal `sim.run` at each point, failures are
rows, work units are reused, the frontier is where the difference crosses zero, the report renders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from distributed import Client

import sim
from sim.cli import app
from sim.scenario.load import load_scenario
from sim.sweeps.frontier import crossing
from sim.sweeps.points import expand
from sim.sweeps.study import point_scenario
from tests.sweeps.sweep_fixtures import CATCH, MISS, RATE, study


@pytest.fixture(scope="module")
def client():
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as c:
        yield c


def test_analytic_points_equal_sim_run_at_each_point(write_scenario, client, tmp_path):
    s = load_scenario(write_scenario(study({"parameters": {RATE: {"grid": [0, 0.2, 5]},
                                                           CATCH: {"values": [0.1, 0.5]}}})))
    table = sim.sweep(s, client=client, out=tmp_path / "study")
    assert len(table) == 10 * 2 and (table["status"] == "ok").all()
    for point in expand(s.sweep, s.seed)[::3]:
        expected = sim.run(point_scenario(s, point), engine="analytic").summary_table.set_index("variant")
        got = table[table["point"] == point.index].set_index("variant")
        for m in ("p_failure", "expected_loss_per_instance", "silent_failure_rate", "root_errors_per_instance",
                  "amplification"):
            # The batched walk equals the point-by-point engine to rounding (sim.metrics.uncertainty).
            np.testing.assert_allclose(got[m], expected.loc[got.index, m], rtol=1e-12)
            assert (got[f"{m}_low"] == got[m]).all() and (got[f"{m}_high"] == got[m]).all()
        d = got.loc["safer", "expected_loss_per_instance"] - got.loc["base", "expected_loss_per_instance"]
        assert got.loc["safer", "loss_difference"] == pytest.approx(d, rel=1e-12)
    # The variant sets the catch rate itself: the sweep's catch values do not move it.
    safer = table[table["variant"] == "safer"]
    assert safer.groupby(RATE)["expected_loss_per_instance"].nunique().eq(1).all()
    assert pd.read_parquet(tmp_path / "study" / "sweep.parquet").equals(table)


def test_a_failing_point_is_a_row_with_its_message(write_scenario, client, tmp_path):
    sweep = {"parameters": {RATE: {"values": [0.05, 0.6]}, MISS: {"values": [0.1, 0.6]}},
             "engines": ["analytic", "monte_carlo"], "instances": 2000}
    table = sim.sweep(load_scenario(write_scenario(study(sweep))), client=client, out=tmp_path / "s")
    failed = table[table["status"] == "failed"]
    assert set(failed["point"]) == {3}  # 0.6 + 0.6 > 1; each value alone is fine
    assert failed["error"].str.contains("sum to 1.2").all() and len(failed) == 4  # 2 engines x 2 variants
    assert failed["expected_loss_per_instance"].isna().all()
    ok = table[table["status"] == "ok"]
    assert len(ok) == 12 and ok["expected_loss_per_instance"].notna().all()
    mc = ok[ok["engine"] == "monte_carlo"]
    assert (mc["p_failure_low"] < mc["p_failure"]).all() and (mc["p_failure"] < mc["p_failure_high"]).all()
    assert all((tmp_path / "s" / f).is_dir() for f in mc["run_folder"])


def test_completed_units_are_reused_and_a_changed_point_recomputes_only_itself(write_scenario, client, tmp_path):
    data = study({"parameters": {RATE: {"values": [0.05, 0.1, 0.2]}}, "engines": ["monte_carlo"],
                  "instances": 2000})
    messages: list[str] = []
    first = sim.sweep(load_scenario(write_scenario(data)), client=client, out=tmp_path / "s", log=messages.append)
    again = sim.sweep(load_scenario(write_scenario(data)), client=client, out=tmp_path / "s", log=messages.append)
    assert "3 units (3 points) reused" in messages[1] and "0 to compute" in messages[1]
    assert again.equals(first)
    data["sweep"]["parameters"][RATE]["values"][2] = 0.3
    changed = sim.sweep(load_scenario(write_scenario(data)), client=client, out=tmp_path / "s", log=messages.append)
    assert "2 units (2 points) reused" in messages[2] and "1 to compute" in messages[2]
    assert changed[changed["point"] < 2].equals(first[first["point"] < 2])


def test_a_folder_that_is_not_a_sweep_is_refused(write_scenario, client, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    s = load_scenario(write_scenario(study({"parameters": {RATE: {"values": [0.1]}}})))
    with pytest.raises(sim.CascadeError, match="not a sweep folder"):
        sim.sweep(s, client=client, out=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_break_even_is_where_the_difference_crosses_zero():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    d = 1.0 - x  # variant - base: better above 1 exactly
    got = crossing(x, d, d - 0.5, d + 0.5)
    assert got["break_even"] == 1.0 and got["variant_better"] == "above"
    assert (got["break_even_low"], got["break_even_high"]) == (0.5, 1.5)  # where the interval bounds cross
    assert (got["bracket_low"], got["bracket_high"]) == (1.0, 2.0)  # d = 0 at x = 1 counts as not yet better
    assert crossing(x, d + 10, d + 9, d + 11)["variant_better"] == "nowhere"
    assert np.isnan(crossing(x, d + 10, d + 9, d + 11)["break_even"])


def test_report_of_a_study_has_lines_heatmaps_and_the_frontier(write_scenario, client, tmp_path):
    from typer.testing import CliRunner

    one = study({"parameters": {CATCH: {"grid": [0, 1, 6]}}})
    one["variants"] = [{"name": "safer", "set": {"costs.apply.escalation_cost": 400.0,
                                                 "workflow.steps.check.false_alarm": 0.0}}]
    sim.sweep(load_scenario(write_scenario(one)), client=client, out=tmp_path / "one")
    two = study({"parameters": {CATCH: {"grid": [0, 1, 4]}, RATE: {"grid": [0, 0.3, 3]}}})
    sim.sweep(load_scenario(write_scenario(two, "two.yaml")), client=client, out=tmp_path / "two")
    for name, key in (("one", "lines-analytic"), ("two", "heatmap-analytic-safer")):
        out = CliRunner().invoke(app, ["report", str(tmp_path / name)])
        assert out.exit_code == 0, out.output
        page = (tmp_path / name / "report.html").read_text()
        assert f"chart-{key}" in page and "Break-even frontier" in page

