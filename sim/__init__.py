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


def measure(corpus="contracts", **options):
    """The error profile of an embedding model on a corpus (see `sim.probe.measure_retriever`)."""
    from sim.probe import measure_retriever  # heavy (chromadb, sentence-transformers): only when used

    return measure_retriever(corpus, **options)


__all__ = ["load_scenario", "resolve_variants", "run", "measure", "Result", "Scenario", "CascadeError",
           "ScenarioError"]
