"""Engines by name: the built-in ones, and those other packages register under the entry-point group
`cascadesim.engines` (the agent engine in `agents`), so `sim` never imports them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

from sim.core.errors import CascadeError
from sim.engines.analytic import run_analytic
from sim.engines.monte_carlo.run import run_monte_carlo
from sim.engines.request import RunRequest
from sim.engines.timeline.run import run_timeline
from sim.scenario.checks import did_you_mean
from sim.scenario.model import Scenario
from sim.trace.engine_output import EngineOutput

ENTRY_POINT_GROUP = "cascadesim.engines"


@dataclass(frozen=True)
class EngineSpec:
    """An engine as the runner sees it."""

    name: str
    run: Callable[[RunRequest], EngineOutput]
    summary: str
    all_roots: bool = False
    """Compile plans with every possible root (errors observed rather than drawn)."""
    default_instances: Callable[[Scenario], int] | None = None
    """Instances per variant when neither the caller nor the CLI says (default: the scenario's)."""
    distributes: bool = False
    """Spreads one run's own work over a Dask client given in its options (`client`); a sweep then runs such
    points from its client, one at a time, instead of as one task each."""
    check: Callable[[Scenario], str] | None = None
    """Reads and checks the files a scenario gives this engine (an `agent:` block's corpus and cases) without
    running anything, for `cascade validate`: a line saying what was read; CascadeError at file:line if bad."""


BUILTIN = (
    EngineSpec("monte_carlo", run_monte_carlo, "sampled, vectorised, with confidence intervals"),
    EngineSpec("analytic", run_analytic, "exact expectations (joint distribution of in-flight tokens)"),
    EngineSpec("timeline", run_timeline, "SimPy over calendar time: queues, reviewers, SLAs, loss over time"),
)


@lru_cache(maxsize=1)
def engines() -> dict[str, EngineSpec | EntryPoint]:
    """Every available engine by name: built-in first, then registered ones (entry points, not yet loaded)."""
    out = {spec.name: spec for spec in BUILTIN}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in out:
            out[ep.name] = ep  # loaded when first asked for: importing an engine can be heavy
    return out


def get_engine(name: str) -> EngineSpec:
    """The engine called `name` (a clear error naming the available ones otherwise)."""
    known = engines()
    if name not in known:
        raise CascadeError(f"unknown engine '{name}'{did_you_mean(name, known)}")
    spec = known[name]
    if not isinstance(spec, EngineSpec):
        spec = spec.load()
        if not isinstance(spec, EngineSpec):
            raise CascadeError(f"the entry point for engine '{name}' does not give an EngineSpec")
    return spec
