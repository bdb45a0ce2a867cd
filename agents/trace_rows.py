"""An agent run's records compared with ground truth: the observations the trace is made of, and the rows of
`agent_trace.parquet` (what each node read, decided or did, and what it should have)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from agents.domain import Acted, Decided, Domain, Record, Retrieved, Reviewed
from sim.model.plan import Plan
from sim.trace.observed import InstanceTokens, Observation, step_row


def observe(domain: Domain, episode, records: Mapping[str, Record]) -> dict[str, Observation]:
    """The agent engine's records, compared with the domain's ground truth."""
    out = {}
    for step, rec in records.items():
        if isinstance(rec, Retrieved):
            out[step] = Observation(not rec.correct, rec.error_type)
        elif isinstance(rec, Decided):
            out[step] = Observation(rec.invalid is not None or dict(rec.decision) != domain.specs[step].truth(episode))
        elif isinstance(rec, Reviewed):
            out[step] = Observation(caught=frozenset(rec.caught), false_alarm=rec.false_alarm)
        else:
            out[step] = Observation()
    return out


def _json(value) -> str:
    return json.dumps(dict(value), sort_keys=True) if value is not None else ""


def trace_rows(plan: Plan, domain: Domain, episode, instance: int, records: Mapping[str, Record],
               it: InstanceTokens) -> list[dict]:
    """What each node did and what it should have done, with its outcome in the common vocabulary."""
    rows = []
    for s in plan.steps:
        rec = records[s.id]
        row = {**step_row(plan, s, instance, it), "episode": episode.id,
               "caught_inputs": [], "fault": "", "fault_applied": False, "passages": [], "output": "",
               "truth": "", "invalid": ""}
        if isinstance(rec, Retrieved):
            row.update(fault=rec.fault or "", fault_applied=rec.applied, passages=[p.id for p in rec.passages])
        elif isinstance(rec, Decided):
            row.update(output=_json(rec.decision), truth=_json(domain.specs[s.id].truth(episode)),
                       invalid=rec.invalid or "")
        elif isinstance(rec, Reviewed):
            row.update(caught_inputs=sorted(rec.caught))
        elif isinstance(rec, Acted):
            row.update(output=_json(rec.action), truth=_json(domain.specs[s.id].truth(episode)))
        rows.append(row)
    return rows
