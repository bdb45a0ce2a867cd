"""Every built-in scenario's summary.json under the fast engines, against the one recorded in tests/golden/.

The files were recorded before the packages were reorganised (and checked byte for byte against the code before
it). A change of any figure shows here as a diff; when a change is intended, say why in the commit and
re-record: CASCADESIM_RECORD_GOLDEN=1 pytest tests/test_golden_summaries.py
"""

from __future__ import annotations

import json
import os

import pytest

import sim
from tests.conftest import ROOT, SCENARIOS

GOLDEN = ROOT / "tests" / "golden"
TIMELINE_REPLICATIONS = 2  # the horizon-loss distribution needs several; two keep the test fast
CASES = [(name, engine) for name in ("contract_review", "contract_review_measured", "finetune_tradeoff",
                                     "refund_agent", "ticket_triage") for engine in ("analytic", "monte_carlo")]
CASES += [(name, "timeline") for name in ("contract_review", "contract_review_measured", "finetune_tradeoff")]


def _summary(name: str, engine: str) -> str:
    scenario = sim.load_scenario(SCENARIOS / f"{name}.yaml")
    if engine == "timeline":
        tl = scenario.timeline.model_copy(update={"replications": TIMELINE_REPLICATIONS})
        scenario = scenario.model_copy(update={"timeline": tl})
    result = sim.run(scenario, engine=engine, instances=20_000 if engine == "monte_carlo" else None)
    # Profile paths are absolute: the same files live under another folder on another machine.
    return json.dumps(result.summary, indent=2, allow_nan=False).replace(str(ROOT), "<root>") + "\n"


@pytest.mark.parametrize("name, engine", CASES, ids=[f"{n}-{e}" for n, e in CASES])
def test_summary_is_unchanged(name, engine):
    path = GOLDEN / f"{name}__{engine}.json"
    got = _summary(name, engine)
    if os.environ.get("CASCADESIM_RECORD_GOLDEN"):
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")
