"""Export throughput: spans per second from a run folder to an OTLP JSON file, against writing the same rows
(the exported instances and their per-step trace rows) to parquet, measured in the same process.

    python bench/otel_export.py [--instances N] [--repeat R]

Runs contract review on the agent engine (N instances per variant, two variants: 17 spans per instance), then
times `run_spans` (read and check the folder, build the spans) + `write_otlp_json` (encode, write atomically)
against `to_parquet` of the same rows. Reports the best of R repeats and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import timeit
from pathlib import Path

import pandas as pd

from sim.otel.export import write_otlp_json
from sim.otel.spans import run_spans
from sim.runner import run
from sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def best(fn, repeat: int) -> float:
    """The best of `repeat` timed calls (noise only adds time)."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        result = run(load_scenario(ROOT / "scenarios" / "contract_review.yaml"), instances=args.instances,
                     engine="agent")
        result.write(folder)
        cap = args.instances
        traces = run_spans(folder, cap)
        n_spans = len(traces.spans)
        build = best(lambda: run_spans(folder, cap), args.repeat)
        write = best(lambda: write_otlp_json(traces.spans, Path(tmp) / "t.json"), args.repeat)
        rows_i = pd.read_parquet(folder / "instances.parquet")
        rows_t = pd.read_parquet(folder / "agent_trace.parquet")
        parquet = best(lambda: (rows_i.to_parquet(Path(tmp) / "i.parquet"),
                                rows_t.to_parquet(Path(tmp) / "t.parquet")), args.repeat)
        size = (Path(tmp) / "t.json").stat().st_size
    export = build + write
    print(f"{traces.traces:,} traces, {n_spans:,} spans ({size / n_spans:,.0f} bytes each in OTLP JSON)")
    print(f"  export to OTLP JSON: {n_spans / export:,.0f} spans/s (build {build:.2f} s, encode+write {write:.2f} s)")
    print(f"  same rows to parquet: {n_spans / parquet:,.0f} spans/s equivalent ({len(rows_i) + len(rows_t):,} "
          f"rows in {parquet:.3f} s)")
    print(f"  ratio export / parquet time: {export / parquet:.1f}x slower")


if __name__ == "__main__":
    main()
