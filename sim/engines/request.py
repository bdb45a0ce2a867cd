"""What the runner asks of an engine: the scenario, its compiled plans per variant, sizes and options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.core.seeding import BLOCK_SIZE
from sim.model.plan import Plan
from sim.scenario.model import Scenario

DEFAULT_CHUNK = 4 * BLOCK_SIZE
DEFAULT_MAX_INSTANCE_ROWS = 1_000_000
DEFAULT_PASS_K_SAMPLE = 20_000
KERNELS = ("numpy", "fused")
"""Monte Carlo kernels: `numpy` (the reference: vectorised over instances, a pass per operation) and `fused`
(`sim.engines.monte_carlo.fused`: the same draws, one compiled walk). Same seed, same tables."""


@dataclass(frozen=True)
class RunRequest:
    """One run of one engine over every variant. Engines read plans; `variants` is there for engines that
    build something from a scenario's structure (the agent engine's graphs)."""

    scenario: Scenario
    """The base scenario (seed overrides applied)."""
    variants: dict[str, Scenario]
    plans: dict[str, Plan]
    """Compiled plan per variant, `base` first."""
    instances: int
    max_instance_rows: int = DEFAULT_MAX_INSTANCE_ROWS
    chunk_size: int = DEFAULT_CHUNK
    workers: int = 1
    pass_k_sample: int = DEFAULT_PASS_K_SAMPLE
    progress: Callable[[int, int], None] | None = None
    precision: float | None = None
    """Monte Carlo: stop once every variant's p_failure 95% CI half-width is at most this (after a seeding block);
    `instances` is then the most it runs."""
    precision_loss: float | None = None
    """Monte Carlo: stop once every variant's expected-loss 95% CI half-width is at most this fraction of it (with
    `precision`: once both hold)."""
    kernel: str = "numpy"
    """Monte Carlo: one of KERNELS; never changes a number."""
    options: Any = None
    """Engine-specific settings (the agent engine: `agents.engine.AgentSettings` or a mapping of its fields)."""
