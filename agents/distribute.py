"""One agent run's instances spread over the workers of a Dask client, with the tables of a one-process run.

The instances (and their pass^k attempts) are cut into shards in instance order; each worker builds its agent
engine once (domain, embeddings, store, graphs; kept for the shards that follow) and runs its shards with the
chance the one-process run would draw for them (keyed streams: a slice of a block's draw is that slice). The
records come back as the checkpoint stores them (`agents.checkpoint`), are saved into the run's checkpoint, and
the engine's ordinary run then reads every instance back, so the tables, tallies and summary are the ones a
one-process run gives (the resumed-instance count excludes what the workers ran; live searches count the
distinct searches the workers made, as one process counts them).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.checkpoint import Checkpoint, decode, encode, run_key
from sim.core.errors import CascadeError
from sim.core.seeding import block_segments
from sim.scenario.model import Scenario
from sim.sweeps.cluster import completed
from sim.trace.engine_output import EngineOutput
from sim.trace.schema import PASS_K

SHARD = 25
"""Instances per task: enough to outweigh a task's overhead (an instance takes a few ms with the simulated
reader), few enough to keep every worker busy to the end."""

_ENGINES: dict[str, tuple[Any, dict]] = {}
"""Per worker process: the engine of each run key it has built (built once, reused by every shard)."""


def run_distributed(engine: Any, variants: dict[str, Scenario], n: int, max_rows: int,
                    progress: Callable[[int, int], None] | None, pass_k_sample: int) -> EngineOutput:
    """`engine.run(n, max_rows)` (an `agents.engine.AgentEngine`) with its instances computed on
    `engine.settings.client`'s workers (`variants`: the resolved scenarios the engine was built from; the first
    `pass_k_sample` instances are attempted PASS_K times, as `engine.run` attempts them)."""
    settings = engine.settings
    if engine.policy.name != "simulated":
        raise CascadeError("agent instances are spread over Dask workers with the simulated reader; with a model "
                           "endpoint, run them in one process with --llm-concurrency (the endpoint is the limit)")
    with tempfile.TemporaryDirectory(prefix="cascade-agent-") as scratch:
        if engine.checkpoint is None:
            engine.checkpoint = Checkpoint(Path(scratch), run_key(engine._identity()), engine._passages())
            own = False
        else:
            own = True
        ran, searches = _prefill(engine, variants, n, settings.client, pass_k_sample)
        engine.search.searches = len(searches)
        engine.checkpoint.reused = 0
        out = engine.run(n, max_rows, progress, pass_k_sample)
        described = out.extra["agent"]
        if own:
            described["resumed_instances"] = engine.checkpoint.reused - ran
        else:
            described.pop("resumed_instances", None)
        if not own:
            engine.checkpoint = None
    return out


def _shards(n: int, variants: list[str], pass_k_sample: int) -> list[tuple[str, int, int, int, int, int]]:
    """(variant, attempt, block, lo, hi, first instance) of every shard, in the order one process runs them."""
    out = []
    pass_n = min(n, pass_k_sample)
    for first, block, lo, hi in block_segments(0, n):
        m = min(hi - lo, pass_n - first)
        for variant in variants:
            for attempt, stop in [(0, hi)] + [(a, lo + m) for a in range(1, PASS_K) if m > 0]:
                for a in range(lo, stop, SHARD):
                    out.append((variant, attempt, block, a, min(stop, a + SHARD), first + a - lo))
    return out


def _prefill(engine: Any, variants: dict[str, Scenario], n: int, client, pass_k_sample: int) -> tuple[int, set]:
    """Run every instance the checkpoint does not hold on the workers and save it; (instances run, the
    distinct searches made)."""
    checkpoint = engine.checkpoint
    todo = [s for s in _shards(n, list(engine.plans), pass_k_sample)
            if any(checkpoint.load(s[0], s[1], i) is None for i in range(s[5], s[5] + s[4] - s[3]))]
    sent = dataclasses.replace(engine.settings, client=None, checkpoint=None, otlp_endpoint=None)
    inputs = client.scatter([engine.scenario, dict(variants), sent, engine.plans], broadcast=True)
    key = run_key(engine._identity())
    # The engine's class goes by reference (this module does not import the engine, which imports it).
    futures = {client.submit(run_shard, type(engine), key, *inputs, *shard, pure=False): shard for shard in todo}
    ran, searches = 0, set()
    for shard, value, error in completed(client, futures, engine.settings.worker_wait, "instances",
                                         lambda s: f"instances {s[5]}..{s[5] + s[4] - s[3] - 1} of {s[0]}"):
        if error is not None:
            raise error
        instances, used = value
        searches |= used
        variant, attempt = shard[:2]
        for instance, pick, records in instances:
            checkpoint.save(variant, attempt, instance, pick,
                            {step: decode(r, checkpoint.passages) for step, r in records.items()})
            ran += 1
    return ran, searches


def run_shard(build: Callable[..., Any], key: str, scenario, variants, settings, plans, variant: str,
              attempt: int, block: int, lo: int, hi: int, first: int) -> tuple[list, set]:
    """On a worker: instances lo..hi-1 of `block` (the run's `first`..) of one variant and attempt, as
    (instance, episode pick, encoded records); and every distinct search this worker's engine has made."""
    if key not in _ENGINES:
        built = build(scenario, variants, settings, plans)
        _ENGINES[key] = (built, built._passages())
    engine, known = _ENGINES[key]
    episodes = engine.domain.episodes
    picks, chance = engine.picks(block, lo, hi), engine.chance(variant, block, lo, hi, attempt)
    out = []
    for j, pick in enumerate(picks):
        records = engine.run_instance(variant, episodes[pick], chance.instance(j, first + j))
        out.append((first + j, pick, {step: encode(r, known) for step, r in records.items()}))
    return out, engine.search.distinct()


__all__ = ["run_distributed", "run_shard", "SHARD"]
