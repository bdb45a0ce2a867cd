"""One agent run's instances spread over two Dask worker processes gives the tables and summary of a run in
one process (each worker builds its engine once; the client reads the instances back)."""

from __future__ import annotations

import json

import pytest
from distributed import Client, LocalCluster

import sim
from agents.distribute import SHARD
from agents.engine import AgentSettings
from tests.conftest import SCENARIOS

pytestmark = pytest.mark.dask


def test_instances_on_two_workers_equal_one_process(tmp_path):
    scenario = sim.load_scenario(SCENARIOS / "contract_review.yaml")
    n = 3 * SHARD + 7  # shards of several sizes, and pass^k attempts on the first 40
    one = sim.run(scenario, engine="agent", instances=n)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as c:
        spread = sim.run(scenario, engine="agent", instances=n, options=AgentSettings(client=c))
        built = c.run(lambda: len(__import__("agents.distribute").distribute._ENGINES))
    assert sorted(built.values()) == [1, 1], "each worker builds its engine once and runs shards with it"
    assert json.dumps(spread.summary, sort_keys=True, default=str) == json.dumps(one.summary, sort_keys=True,
                                                                                 default=str)
    assert spread.instances.equals(one.instances) and spread.steps.equals(one.steps)
    assert spread.agent_trace.equals(one.agent_trace)
