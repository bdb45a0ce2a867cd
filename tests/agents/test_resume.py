"""Agent runs resume: `kill -9` half way, run again, and the completed instances are read back from the
checkpoint, not asked again; the tables equal an uninterrupted run's. Against the real test server."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
from typer.testing import CliRunner

from agents.checkpoint import decode
from agents.engine import AgentSettings
from agents.openai_policy import LLMSettings, user_message
from agents.ticket_triage import ticket_triage_domain
from sim.cli import app
from sim.output.run_folder import checkpoint_folder
from sim.runner import run
from sim.scenario.load import dump_scenario_yaml
from tests.agents.test_agents import scenario
from tests.conftest import ROOT
from tests.llm_fixtures import llm_server  # noqa: F401

N = 50
"""Instances: past the 40 attempted again for pass^k, so the last ten send requests no other instance run
needs (a run of the variant, or a repeat, would send the same ones and make the check below vacuous)."""


def instance_files(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*.json")}


def request_keys(folder, files: set[str]) -> set[str]:
    """The requests (SHA-256 of the user message, as the server logs them) the checkpointed instances sent:
    each decide step's task rebuilt from the instance's own records."""
    domain = ticket_triage_domain()
    known = {pid: p for store in domain.stores.values() for pid, p in store.by_id.items()}
    keys = set()
    for name in files:
        data = json.loads((folder / name).read_text(encoding="utf-8"))
        episode = domain.episodes[data["pick"]]
        records = {s: decode(r, known) for s, r in data["records"].items()}
        for step, spec in domain.specs.items():
            if step in records and hasattr(spec, "task"):
                keys.add(hashlib.sha256(user_message(spec.task(episode, records)).encode("utf-8")).hexdigest())
    return keys


def test_a_killed_run_continues_from_its_checkpoint(llm_server, tmp_path):  # noqa: F811
    sc = scenario("ticket_triage")  # without its variant
    path = tmp_path / "ticket_triage.yaml"
    path.write_text(dump_scenario_yaml(sc), encoding="utf-8")
    out = tmp_path / "run"
    checkpoint = checkpoint_folder(out)
    llm_server.script("ok", latency=0.2)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CASCADESIM_CACHE": str(tmp_path / "cache-killed")}
    process = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "run", str(path), "--engine", "agent", "-n", str(N), "--policy",
         "openai", "--llm-base-url", llm_server.base_url, "--llm-model", "m", "--llm-concurrency", "4",
         "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while (not checkpoint.is_dir() or len(instance_files(checkpoint)) < 46) and time.monotonic() < deadline:
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    done = instance_files(checkpoint)
    assert len(done) >= 46 and not out.exists()

    # The same run again (a fresh response cache: only the checkpoint can spare requests).
    llm_server.script("ok")
    llm = LLMSettings(base_url=llm_server.base_url, model="m", cache_dir=tmp_path / "cache-resumed")
    resumed = run(sc, instances=N, engine="agent",
                  options=AgentSettings(policy="openai", llm=llm, checkpoint=checkpoint))
    sent = {e["key"] for e in llm_server.log()}
    everything = instance_files(checkpoint)
    assert resumed.summary["agent"]["resumed_instances"] == len(done) < len(everything)
    done_keys, rest_keys = request_keys(checkpoint, done), request_keys(checkpoint, everything - done)
    assert done_keys - rest_keys  # requests only completed instances sent: the check below can fail
    assert sent & (done_keys - rest_keys) == set()  # no request of a completed instance was sent again
    assert sent == rest_keys

    # Same tables as an uninterrupted run.
    llm_server.script("ok")
    fresh = LLMSettings(base_url=llm_server.base_url, model="m", cache_dir=tmp_path / "cache-whole")
    whole = run(sc, instances=N, engine="agent", options=AgentSettings(policy="openai", llm=fresh))
    for table in ("instances", "steps", "agent_trace", "attribution", "cascade"):
        pd.testing.assert_frame_equal(getattr(resumed, table), getattr(whole, table), obj=table)

    def figures(summary: dict) -> dict:  # without the counts of work done (requests, searches)
        agent = {k: v for k, v in summary["agent"].items() if k not in ("llm", "resumed_instances", "live_searches")}
        return {**summary, "agent": agent}

    assert figures(resumed.summary) == figures(whole.summary)

    # The CLI on the finished checkpoint: every instance read back, no request, the checkpoint removed.
    llm_server.script("ok")
    res = CliRunner().invoke(app, ["run", str(path), "--engine", "agent", "-n", str(N), "--policy", "openai",
                                   "--llm-base-url", llm_server.base_url, "--llm-model", "m", "--out", str(out)],
                             env={"CASCADESIM_CACHE": str(tmp_path / "cache-cli")})
    assert res.exit_code == 0, res.output
    assert f"resumed: {len(everything):,} instance runs reused" in " ".join(res.output.split())
    assert llm_server.requests() == 0 and not checkpoint.exists()
    assert json.loads((out / "summary.json").read_text())["p_failure"] == whole.summary["p_failure"]
