"""Cost of checkpointing agent instances on the fast path (the simulated reader, ~8 ms an instance), and the
time a resumed run takes to read them back, on one warmed engine in the same run (searches memoised):
checkpoint off, on, and read back, alternating, median of the repeats.

    python bench/agent_checkpoint.py [--instances 400] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from agents.checkpoint import Checkpoint
from agents.engine import AgentEngine, AgentSettings
from sim.scenario.load import load_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n = args.instances
    scenario = load_scenario("scenarios/contract_review.yaml").model_copy(update={"variants": []})
    engine = AgentEngine(scenario, {"base": scenario}, AgentSettings())
    engine.run(n, max_rows=0, pass_k_sample=0)  # warm-up: every search memoised
    times: dict[str, list[float]] = {"without checkpoint": [], "with checkpoint": [], "read back": []}

    def timed(label: str) -> None:
        start = time.perf_counter()
        engine.run(n, max_rows=n, pass_k_sample=0)
        times[label].append(time.perf_counter() - start)

    for _ in range(args.repeats):
        engine.checkpoint = None
        timed("without checkpoint")
        folder = Path(tempfile.mkdtemp()) / "checkpoint"
        engine.checkpoint = Checkpoint(folder, "bench", engine._passages())
        timed("with checkpoint")
        engine.checkpoint = Checkpoint(folder, "bench", engine._passages())
        timed("read back")
        shutil.rmtree(folder.parent)
    base = statistics.median(times["without checkpoint"])
    for label, values in times.items():
        t = statistics.median(values)
        print(f"{label:20s} {t:6.2f} s for {n} contract reviews ({t / base:.2f}x)")


if __name__ == "__main__":
    main()
