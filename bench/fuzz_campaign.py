"""The hardening campaign: seeded scenario mutants through the real CLI, counted by family and outcome.

    python bench/fuzz_campaign.py [--mutants 800] [--seed 12] [--time-bound 60]

Prints, per family, how many validate/run commands ended ok, refused with file:line, refused without a line,
in a traceback, or past the time bound; then the slowest cases and every non-clean one. The goal is 0 tracebacks,
0 hangs and 0 refusals without a line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzzing import FAMILIES, mutants, try_mutant  # noqa: E402

KINDS = ["ok", "refused", "no line", "traceback", "hang"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mutants", type=int, default=800)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--time-bound", type=float, default=60.0)
    args = ap.parse_args()
    counts: dict[str, Counter] = {f: Counter() for f in FAMILIES}
    bad, slow = [], []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, mutant in enumerate(mutants(args.seed, args.mutants)):
            for o in try_mutant(mutant, Path(tmp) / f"m{i}", args.time_bound):
                counts[o.family][o.kind] += 1
                slow.append((o.seconds, i, o.family, o.command))
                if o.kind in ("no line", "traceback", "hang"):
                    bad.append((i, o))
    print(f"{args.mutants} mutants (seed {args.seed}) in {time.perf_counter() - start:.0f} s; commands by outcome:")
    print(f"{'family':12}" + "".join(f"{k:>11}" for k in KINDS))
    total = Counter()
    for family, c in counts.items():
        total += c
        print(f"{family:12}" + "".join(f"{c[k]:>11}" for k in KINDS))
    print(f"{'all':12}" + "".join(f"{total[k]:>11}" for k in KINDS))
    print("slowest:", ", ".join(f"#{i} {f} {cmd} {s:.1f}s" for s, i, f, cmd in sorted(slow, reverse=True)[:5]))
    for i, o in bad:
        print(f"--- #{i} {o.family} ({o.source}) {o.command}: {o.kind} after {o.seconds:.1f}s\n{o.message}")


if __name__ == "__main__":
    main()
