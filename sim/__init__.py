"""cascadesim: how single retrieval errors cascade through agent workflows into wrong actions, and their cost.

Three lines for a notebook::

    import sim
    result = sim.run(sim.load_scenario("scenarios/contract_review.yaml"))
    result.summary, result.instances, result.attribution
"""

from sim import _env  # noqa: F401  (offline environment defaults, before any heavy import)
from sim.core.errors import CascadeError, ScenarioError
from sim.output.result import Result
from sim.runner import run
from sim.scenario.load import load_scenario, resolve_variants
from sim.scenario.model import Scenario


def measure(corpus="contracts", **options):
    """The error profile of an embedding model on a corpus (see `sim.probe.measure_retriever`)."""
    from sim.retrieval.measure import (
        measure_retriever,  # heavy (chromadb, sentence-transformers): only when used
    )

    return measure_retriever(corpus, **options)


def sweep(scenario, **options):
    """Run a scenario's `sweep:` study on Dask and return its table (`sim.sweeps.study.sweep`; pass
    `client=` to use your own Dask client)."""
    from sim.sweeps.study import sweep as run_study  # Dask is imported only when a study runs

    return run_study(scenario, **options)


def calibrate(scenario, result_or_trace, variant: str = "base"):
    """Step parameters estimated from an agent run (a Result of `run(..., engine="agent")` or its
    `agent_trace`), as a `sim.calibration.Calibration`: `.scenario` (runs at Monte Carlo speed) and `.table`."""
    from sim.metrics.calibration import calibrate as estimate

    trace = getattr(result_or_trace, "agent_trace", result_or_trace)
    return estimate(scenario, trace, variant)


__all__ = ["load_scenario", "resolve_variants", "run", "sweep", "measure", "calibrate", "Result", "Scenario",
           "CascadeError", "ScenarioError"]
