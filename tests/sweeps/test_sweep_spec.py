"""The sweep block: its points (grids, lists, zip, designs) and its validation, every problem at file:line."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

import sim
from sim.cli import app
from sim.scenario.load import load_scenario
from sim.sweeps.points import expand
from tests.sweeps.sweep_fixtures import CATCH, MISS, RATE, study

runner = CliRunner()


def test_grid_is_start_stop_count_and_axes_cross_in_written_order(write_scenario):
    s = load_scenario(write_scenario(study({"parameters": {RATE: {"grid": [0, 0.05, 11]},
                                                           CATCH: {"values": [0.2, 0.6]}}})))
    points = expand(s.sweep, s.seed)
    assert len(points) == 22
    assert [p.coordinates[RATE] for p in points[:3]] == [0.0, 0.0, 0.005]  # the first axis varies slowest
    assert [p.coordinates[CATCH] for p in points[:3]] == [0.2, 0.6, 0.2]
    assert np.isclose(points[-1].coordinates[RATE], 0.05) and list(points[0].coordinates) == [RATE, CATCH]


def test_zip_moves_together_and_designs_are_seeded(write_scenario):
    s = load_scenario(write_scenario(study({"parameters": {RATE: {"values": [0.01, 0.02, 0.03]},
                                                           MISS: {"values": [0.1, 0.2, 0.3]},
                                                           CATCH: {"range": [0.2, 0.8]}},
                                            "zip": [[RATE, MISS]], "design": {"kind": "lhs", "points": 4}})))
    points = expand(s.sweep, s.seed)
    assert len(points) == 12
    assert {(p.coordinates[RATE], p.coordinates[MISS]) for p in points} == {(0.01, 0.1), (0.02, 0.2), (0.03, 0.3)}
    catches = sorted(p.coordinates[CATCH] for p in points[:4])
    # A Latin hypercube puts one point in each quarter of the range.
    assert [int((c - 0.2) / 0.15) for c in catches] == [0, 1, 2, 3]
    assert [p.coordinates for p in expand(s.sweep, s.seed)] == [p.coordinates for p in points]
    other = load_scenario(write_scenario(study({"parameters": {CATCH: {"range": [0.2, 0.8]}},
                                                "design": {"kind": "random", "points": 5}}), "r.yaml"))
    drawn = [p.coordinates[CATCH] for p in expand(other.sweep, other.seed)]
    assert len(set(drawn)) == 5 and all(0.2 <= c <= 0.8 for c in drawn)


BAD = [
    ({"parameters": {"retrievers.docs.rates.negation_flp": {"grid": [0, 0.1, 3]}}},
     "unknown error type 'negation_flp' — did you mean 'negation_flip'?"),
    ({"parameters": {"workflow.steps.chek.catch.default": {"values": [0.1]}}}, "did you mean 'check'?"),
    ({"parameters": {RATE: {"grid": []}}}, "an empty grid sweeps nothing"),
    ({"parameters": {RATE: {"values": []}}}, "at least 1 item"),
    ({"parameters": {RATE: {"grid": ["low", "high", 3]}}}, "valid number"),
    ({"parameters": {RATE: {"values": ["low", "high"]}}}, "valid number"),
    ({"parameters": {RATE: {"grid": [0, 2, 3]}}}, "less than or equal to 1"),
    ({"parameters": {RATE: {"values": [0.1], "grid": [0, 1, 2]}}}, "exactly one of"),
    ({"parameters": {RATE: {"values": [0.1, 0.2]}, MISS: {"values": [0.1]}}, "zip": [[RATE, MISS]]},
     "as many values each"),
    ({"parameters": {RATE: {"range": [0, 0.1]}}}, "add design"),
    ({"parameters": {RATE: {"values": [0.1]}}, "engines": []}, "at least 1 item"),
]


@pytest.mark.parametrize("sweep, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_sweep_exits_2_at_its_line(write_scenario, sweep, message, tmp_path):
    path = write_scenario(study(sweep))
    out = runner.invoke(app, ["sweep", str(path), "--out", str(tmp_path / "never")])
    assert out.exit_code == 2, out.output
    assert re.search(rf"{re.escape(str(path))}:\d+: sweep", out.output), out.output
    assert message in " ".join(out.output.split()), out.output
    assert not (tmp_path / "never").exists()


def test_command_line_sweep_is_checked_the_same_way(write_scenario, tmp_path):
    path = write_scenario(study({"parameters": {RATE: {"values": [0.1]}}}))
    out = runner.invoke(app, ["sweep", str(path), "--grid", "workflow.steps.chek.catch.default=0:1:3",
                              "--out", str(tmp_path / "x")])
    assert out.exit_code == 2 and "--grid workflow.steps.chek.catch.default=0:1:3" in out.output
    assert "did you mean 'check'?" in out.output
    out = runner.invoke(app, ["sweep", str(path), "--grid", f"{RATE}=0:0.1", "--out", str(tmp_path / "x")])
    assert out.exit_code == 2 and "START:STOP:COUNT" in out.output


def test_a_scenario_without_sweep_is_refused(write_scenario, tmp_path):
    data = study({"parameters": {RATE: {"values": [0.1]}}})
    del data["sweep"]
    with pytest.raises(sim.CascadeError, match="no sweep: block"):
        sim.sweep(load_scenario(write_scenario(data)))


def test_run_ignores_the_sweep_block(write_scenario):
    data = study({"parameters": {RATE: {"values": [0.3]}}})
    with_sweep = sim.run(load_scenario(write_scenario(data)), engine="analytic").summary
    del data["sweep"]
    assert with_sweep == sim.run(load_scenario(write_scenario(data, "b.yaml")), engine="analytic").summary


def test_a_scheduler_address_that_is_no_address_exits_2(write_scenario, tmp_path):
    path = write_scenario(study({"parameters": {RATE: {"values": [0.1]}}}))
    out = runner.invoke(app, ["sweep", str(path), "--scheduler", "localhost:8786", "--out", str(tmp_path / "x")])
    assert out.exit_code == 2 and "tcp://HOST:PORT" in out.output


def test_the_resolved_scenario_keeps_the_sweep_as_written(write_scenario):
    from sim.scenario.load import dump_scenario_yaml, scenario_from_dict

    s = load_scenario(write_scenario(study({"parameters": {RATE: {"grid": [0, 0.1, 3]}}})))
    text = dump_scenario_yaml(s)
    assert "values" not in text and "range" not in text
    import yaml

    assert scenario_from_dict(yaml.safe_load(text)).sweep == s.sweep
