"""Model requests in flight at once, per-minute budgets, Retry-After for everyone, and Ctrl-C: against the real
test server (tests/llm_server.py) with injected latency and 429 storms, nothing mocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from agents.engine import AgentSettings
from agents.openai_policy import LLMSettings
from agents.request_gate import RequestGate, Stopped
from sim.runner import run
from tests.agents.test_agents import scenario
from tests.conftest import ROOT, SCENARIOS
from tests.llm_fixtures import llm_server  # noqa: F401

SLACK = 0.3
"""Seconds after a 429 during which requests already on their way may still arrive (sent before its answer)."""


def settings(server, cache, **kw) -> AgentSettings:
    return AgentSettings(policy="openai", llm=LLMSettings(base_url=server.base_url, model="test-model",
                                                          cache_dir=cache, **kw))


class Progress:
    """A progress callback with the `detail` method the CLI's bar has: records what it is told."""

    def __init__(self):
        self.done, self.counts = [], []

    def __call__(self, done: int, total: int) -> None:
        self.done.append((done, total))

    def detail(self, counts: dict) -> None:
        self.counts.append(dict(counts))


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times)), default=0)


def test_the_gate_keeps_the_per_minute_budget_in_every_window():
    gate = RequestGate(in_flight=4, per_minute=5, window=0.5)
    sent: list[float] = []
    lock = threading.Lock()

    def ask():
        with gate.request(10):
            with lock:
                sent.append(time.monotonic())

    threads = [threading.Thread(target=ask) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sent) == 12
    assert most_in_any_window(sent, 0.5 - 1e-3) <= 5  # 12 requests at 5 per 0.5 s: three windows
    assert max(sent) - min(sent) >= 1.0 - 1e-3


def test_the_gate_counts_tokens_and_a_pause_holds_every_request():
    gate = RequestGate(in_flight=2, tokens_per_minute=100, window=0.4)
    start = time.monotonic()
    with gate.request(60) as entry:
        gate.settle(entry, 90)  # the reply said 90 tokens, not the 60 estimated
    with gate.request(20):  # 90 + 20 > 100: waits for the first to leave the window
        assert time.monotonic() - start >= 0.4 - 1e-3
    gate.pause(0.3)
    paused = time.monotonic()
    with gate.request(1):
        assert time.monotonic() - paused >= 0.3 - 1e-3


def test_stop_wakes_a_waiting_request_at_once():
    gate = RequestGate(in_flight=1)
    gate.pause(30.0)
    threading.Timer(0.2, gate.stop).start()
    start = time.monotonic()
    with pytest.raises(Stopped), gate.request(1):
        pass
    assert time.monotonic() - start < 2.0


def test_concurrency_changes_no_byte_of_the_run(llm_server, tmp_path):  # noqa: F811
    """200 ms a request: 16 in flight give the same folder as one at a time, byte for byte, and send each
    distinct request once (two instances asking the same question at once share one request)."""
    sc = scenario("ticket_triage", scale=3, base_errors=False)
    folders, logs = {}, {}
    for concurrency in (1, 16):
        llm_server.script("ok", latency=0.2)
        progress = Progress()
        result = run(sc, instances=8, engine="agent", progress=progress,
                     options=settings(llm_server, tmp_path / f"cache{concurrency}", concurrency=concurrency))
        # The progress bar's feed: every instance run, with the model calls, cache hits and tokens so far.
        llm = result.summary["agent"]["llm"]
        steps = [d for d, _ in progress.done]
        assert sorted(set(steps)) == list(range(1, max(steps) + 1)) and steps == sorted(steps)
        assert progress.counts[-1] == {"calls": llm["calls"], "cached": llm["cached"], "tokens": llm["total_tokens"]}
        assert all(a["calls"] <= b["calls"] for a, b in zip(progress.counts, progress.counts[1:], strict=False))
        folders[concurrency] = result.write(tmp_path / f"run{concurrency}")
        logs[concurrency] = llm_server.log()
    files = sorted(p.name for p in folders[1].iterdir())
    assert "agent_trace.parquet" in files and files == sorted(p.name for p in folders[16].iterdir())
    for name in files:
        assert (folders[1] / name).read_bytes() == (folders[16] / name).read_bytes(), name
    keys = {c: sorted(e["key"] for e in log) for c, log in logs.items()}
    assert keys[1] == keys[16] and len(set(keys[1])) == len(keys[1]) > 8
    # The wall-clock gain itself is measured in bench/llm_concurrency.py; here: the 16 did overlap.
    t16 = sorted(e["t"] for e in logs[16])
    assert most_in_any_window(t16, 0.15) > 1


def test_a_429_storm_pauses_every_request_and_keeps_the_budget(llm_server, tmp_path):  # noqa: F811
    """Every request is answered 429 with Retry-After: 2 for two seconds, then normally: the run completes
    with the trace of a calm server, no request arrives before the Retry-After of a 429 already answered,
    and the requests-per-window budget holds throughout."""
    sc = scenario("ticket_triage", scale=3, base_errors=False)
    llm_server.script("ok")
    calm = run(sc, instances=6, engine="agent", options=settings(llm_server, tmp_path / "calm"))
    llm_server.script("ok", latency=0.05, storm=2)
    stormy = run(sc, instances=6, engine="agent",
                 options=settings(llm_server, tmp_path / "storm", concurrency=8, requests_per_minute=8,
                                  rate_window=0.5, max_attempts=6))
    assert stormy.agent_trace.equals(calm.agent_trace) and stormy.summary["p_failure"] == calm.summary["p_failure"]
    log = llm_server.log()
    refused = [e for e in log if e["status"] == 429]
    assert refused and all(e["retry_after"] == 2.0 for e in refused)
    for e in refused:
        early = [x for x in log if e["t"] + SLACK < x["t"] < e["t"] + e["retry_after"]]
        assert early == [], (e, early)
    assert all(e["status"] == 200 for e in log if e["t"] >= refused[-1]["t"] + SLACK)
    # Arrival times at the server carry the client's scheduling jitter (seconds on a loaded 2-core machine are
    # not exact): the window is shortened by 0.1 s. Without the budget, 8 requests in flight at 50 ms each would
    # put dozens into it.
    assert most_in_any_window([e["t"] for e in log], 0.5 - 0.1) <= 8
    assert stormy.summary["agent"]["llm"]["retries"] >= len(refused)


def test_ctrl_c_stops_a_concurrent_run_cleanly(llm_server, tmp_path):  # noqa: F811
    """SIGINT during a run with 8 slow requests in flight: the run says at once that it was interrupted, sends
    no request afterwards, exits 130 without a traceback and leaves no output folder."""
    llm_server.script("ok", latency=1.0)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CASCADESIM_CACHE": str(tmp_path / "cache")}
    process = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "run", str(SCENARIOS / "ticket_triage.yaml"), "--engine", "agent",
         "-n", "40", "--policy", "openai", "--llm-base-url", llm_server.base_url, "--llm-model", "m",
         "--llm-concurrency", "8", "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
        # As from a terminal: a test suite started in the background of a script (`cmd &`) has SIGINT ignored,
        # and a child would inherit that and never see the Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    watchdog = threading.Timer(90, process.kill)  # a hang fails the test instead of stalling the suite
    watchdog.start()
    try:
        deadline = time.monotonic() + 60
        while not llm_server.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert llm_server.log(), "the run sent no request"
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        lines = []
        for line in process.stdout:  # until the message (or the end of the output)
            lines.append(line)
            if "interrupted" in line:
                break
        said_after = time.monotonic() - interrupted
        sent_by_then = len(llm_server.log())
        lines += process.stdout.readlines()
        process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(lines)
    assert process.returncode == 130, output
    # In-flight requests (1 s each) end or are cut; nothing waits for the rest of the run.
    assert said_after < 3.0 and "interrupted" in output and "Traceback" not in output
    assert not out.exists()
    assert len(llm_server.log()) == sent_by_then  # nothing sent after the stop
