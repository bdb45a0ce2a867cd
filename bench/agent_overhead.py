"""Agent engine speed: instances per second with the simulated reader, and its overhead over bare LangGraph
invocation of the same compiled graph on the same episodes and chance, in the same run (goal: <= 1.5x).

The engine's extra work is drawing chance, mapping each instance's records onto the trace schema, the
per-step trace rows, tallies and the summary. Both sides run after a warm-up pass (model loaded, Chroma
answers memoised), alternating, median of the repeats.

    python bench/agent_overhead.py [--workflow contract_review|ticket_triage] [--instances N] [--repeats R]
    python bench/agent_overhead.py --workflow ticket_triage --tickets ../shared/data/banking77/test.csv
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from agents.engine import AgentEngine, AgentSettings, draw_chance
from sim.core.seeding import uniforms
from sim.scenario.load import load_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workflow", default="contract_review", choices=["contract_review", "ticket_triage"])
    ap.add_argument("--instances", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tickets", type=Path, default=None, help="ticket triage on a Banking77-style CSV")
    args = ap.parse_args()
    scenario = load_scenario(f"scenarios/{args.workflow}.yaml").model_copy(update={"variants": []})
    t0 = time.perf_counter()
    engine = AgentEngine(scenario, {"base": scenario}, AgentSettings(tickets=args.tickets))
    print(f"set-up (corpus, embeddings, Chroma, graph): {time.perf_counter() - t0:.1f} s")
    n = args.instances
    engine.run(min(n, 100), max_rows=0, pass_k_sample=0)  # warm-up: memoise live searches, import everything

    # The bare side: the same graph, episodes and chance objects, only `graph.invoke` timed.
    picks = (uniforms(scenario.seed, "agent/episode", 0, 0, n) * len(engine.domain.episodes)).astype(int)
    chance = draw_chance(engine.kernels["base"], 0, 0, n, slips=True)
    states = [{"episode": engine.domain.episodes[p], "chance": chance.instance(j, j), "outputs": {}}
              for j, p in enumerate(picks)]
    graph = engine.graphs["base"]

    def bare() -> float:
        t = time.perf_counter()
        for state in states:
            graph.invoke(state)
        return time.perf_counter() - t

    def full() -> float:
        t = time.perf_counter()
        engine.run(n, max_rows=n, pass_k_sample=0)  # like for like: no repeated pass^k attempts
        return time.perf_counter() - t

    bare_times, engine_times = [], []
    for _ in range(args.repeats):
        bare_times.append(bare())
        engine_times.append(full())
    b, e = statistics.median(bare_times), statistics.median(engine_times)
    source = f", tickets from {args.tickets}" if args.tickets else ""
    print(f"{args.workflow}{source}: {n} instances x {len(scenario.workflow.steps)} steps, median of {args.repeats}")
    print(f"bare LangGraph invoke:  {n / b:8.1f} instances/s ({b * 1000 / n:.2f} ms each)")
    print(f"agent engine (full):    {n / e:8.1f} instances/s ({e * 1000 / n:.2f} ms each)")
    print(f"overhead: {e / b:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
