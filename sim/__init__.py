"""cascadesim: how single retrieval errors cascade through agent workflows into wrong actions, and their cost.

Three lines for a notebook::

    import sim
    result = sim.run(sim.load_scenario("scenarios/contract_review.yaml"))
    result.summary, result.instances, result.attribution
"""

from sim import _env  # noqa: F401  (offline environment defaults, before any heavy import)
from sim.errors import CascadeError, ScenarioError
from sim.loading import load_scenario, resolve_variants
from sim.result import Result
from sim.runner import run
from sim.scenario import Scenario

__all__ = ["load_scenario", "resolve_variants", "run", "Result", "Scenario", "CascadeError", "ScenarioError"]
