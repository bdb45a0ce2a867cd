"""One agent run's instances spread over two Dask worker processes gives the tables and summary of a run in
one process (each worker builds its engine once; the client reads the instances back); a sweep over the
agent engine runs its points that way."""

from __future__ import annotations

import json

import numpy as np
import pytest
from distributed import Client, LocalCluster

import sim
import sim.sweeps.options
from agents.distribute import SHARD
from agents.engine import AgentSettings
from sim.sweeps.points import expand
from sim.sweeps.study import point_scenario
from tests.conftest import SCENARIOS

pytestmark = pytest.mark.dask


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def test_instances_on_two_workers_equal_one_process(client):
    scenario = sim.load_scenario(SCENARIOS / "contract_review.yaml")
    n = 3 * SHARD + 7  # shards of several sizes, and pass^k attempts on the first 40
    one = sim.run(scenario, engine="agent", instances=n)
    spread = sim.run(scenario, engine="agent", instances=n, options=AgentSettings(client=client))
    built = client.run(lambda: len(__import__("agents.distribute").distribute._ENGINES))
    assert sorted(built.values()) == [1, 1], "each worker builds its engine once and runs shards with it"
    assert json.dumps(spread.summary, sort_keys=True, default=str) == json.dumps(one.summary, sort_keys=True,
                                                                                 default=str)
    assert spread.instances.equals(one.instances) and spread.steps.equals(one.steps)
    assert spread.agent_trace.equals(one.agent_trace)


def test_a_sweep_of_agent_points_spreads_each_point(client, tmp_path):
    path = SCENARIOS / "role_swap_sweep.yaml"
    scenario = sim.sweeps.options.scenario_with_sweep(path, [("values", "retrievers.contract.rates.role_swap=0,0.2")],
                                                      ["agent"])
    table = sim.sweep(scenario, client=client, instances=30, out=tmp_path / "study")
    assert (table["status"] == "ok").all() and table["run_folder"].notna().all()
    for point in expand(scenario.sweep, scenario.seed):
        alone = sim.run(point_scenario(scenario, point), engine="agent", instances=30).summary_table
        got = table[table["point"] == point.index]
        np.testing.assert_array_equal(got["expected_loss_per_instance"], alone["expected_loss_per_instance"])
