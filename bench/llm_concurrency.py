"""Agent throughput with a slow model: instances per second at --llm-concurrency 1, 4, 16, 64 against the test
LLM server (tests/llm_server.py, real HTTP on 127.0.0.1) answering every request after LATENCY seconds, as a
ratio to the ideal `concurrency / (calls per instance x latency)` (goal: >= 0.8 at 16), and the speed-up
over concurrency 1 measured in the same run.

Each level runs with a fresh response cache (every distinct request goes to the server) and without pass^k
repeats; calls per instance are the level's own (requests sent / instances).

    python bench/llm_concurrency.py [--workflow ticket_triage|contract_review] [--latency 0.2] [--rounds 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from agents.engine import AgentEngine, AgentSettings
from agents.openai_policy import LLMSettings
from sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def start_server(where: Path) -> tuple[subprocess.Popen, str]:
    port_file = where / "port"
    process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "llm_server.py"), "--port-file",
                                str(port_file)], cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the test LLM server did not start")
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port_file.read_text()}"


def configure(root: str, latency: float) -> None:
    request = urllib.request.Request(f"{root}/script", data=json.dumps({"script": "ok", "latency": latency}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workflow", default="ticket_triage", choices=["ticket_triage", "contract_review"])
    ap.add_argument("--latency", type=float, default=0.2, help="seconds the server takes per request")
    ap.add_argument("--levels", default="1,4,16,64")
    ap.add_argument("--rounds", type=int, default=8, help="instances per level = rounds x concurrency (min 12)")
    args = ap.parse_args()
    scenario = load_scenario(ROOT / "scenarios" / f"{args.workflow}.yaml").model_copy(update={"variants": []})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server, root = start_server(tmp)
        try:
            rows, base = [], None
            for level in [int(x) for x in args.levels.split(",")]:
                n = max(12, args.rounds * level)
                llm = LLMSettings(base_url=f"{root}/v1", model="bench-model", cache_dir=tmp / f"cache{level}",
                                  concurrency=level)
                engine = AgentEngine(scenario, {"base": scenario}, AgentSettings(policy="openai", llm=llm))
                configure(root, 0.0)
                engine.run(4, max_rows=0, pass_k_sample=0)  # warm-up: imports, client, first searches
                shutil.rmtree(tmp / f"cache{level}")
                engine.policy.stats = dict.fromkeys(engine.policy.stats, 0)
                configure(root, args.latency)
                start = time.perf_counter()
                engine.run(n, max_rows=0, pass_k_sample=0)
                seconds = time.perf_counter() - start
                calls = engine.policy.stats["calls"] / n
                rate, ideal = n / seconds, level / (calls * args.latency)
                base = base or rate
                rows.append((level, n, calls, rate, ideal, rate / ideal, rate / base))
                print(f"concurrency {level:3d}: {n:4d} instances in {seconds:6.1f} s, {calls:.2f} calls/instance, "
                      f"{rate:7.2f} instances/s; ideal {ideal:7.2f}: ratio {rate / ideal:.2f}; "
                      f"x{rate / base:.1f} over concurrency 1", flush=True)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
