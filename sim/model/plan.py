"""A scenario compiled for the engines: steps in canonical order with their parameters as arrays.

Tokens are what flows along the workflow's edges for one instance, encoded as small integers:
OK, FLAGGED (a gate's false alarm: escalated without error), CAUGHT (a gate stopped an error: escalated), and
ERROR + r for an error whose root r is a (root-cause step, error type) pair. When a step has several inputs,
the strongest token wins: caught > flagged > error > ok, and of several errors the first in input order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.core.error_types import DEFAULT_KEY, REASONING, all_error_types
from sim.model.difficulty import Levels
from sim.scenario.graph import topological_order
from sim.scenario.model import ActStep, DecideStep, RetrieveStep, Scenario, VerifyStep

OK, FLAGGED, CAUGHT, ERROR = 0, 1, 2, 3

# Precedence of a token when inputs meet: ok < error < flagged < caught.
RANK = np.array([0, 2, 3, 1], dtype=np.int8)


@dataclass(frozen=True)
class StepPlan:
    """One step, compiled. Probabilities per error type are arrays indexed like `Plan.types`."""

    id: str
    kind: str
    pos: int
    inputs: tuple[int, ...]
    audit: bool = False
    # retrieve: probability of each error type per difficulty level (levels x types)
    rates: np.ndarray | None = None
    # decide: own reasoning-error probability per level; carry probability per incoming error type
    base_error: np.ndarray | None = None
    susceptibility: np.ndarray | None = None
    susceptibility_by_input: dict[int, np.ndarray] = field(default_factory=dict)
    """Input position -> carry probability per type for errors arriving through that input."""
    # verify: catch probability per error type; false alarm probability
    catch: np.ndarray | None = None
    false_alarm: float = 0.0
    # act: costs, and the audits that review it
    failure_loss: float = 0.0
    detected_loss: float = 0.0
    escalation_cost: float = 0.0
    audited_by: tuple[int, ...] = ()
    consumers: tuple[int, ...] = ()

    def carry(self, src: int) -> np.ndarray:
        """Decide: the carry probability per type of errors arriving from input position `src`."""
        return self.susceptibility_by_input.get(src, self.susceptibility)


@dataclass(frozen=True)
class Plan:
    """What every engine runs: the steps in canonical topological order plus the root-cause index."""

    scenario: str
    variant: str
    seed: int
    currency: str
    types: tuple[str, ...]
    steps: tuple[StepPlan, ...]
    roots: tuple[tuple[int, int], ...]
    """Possible root causes as (step position, type index); a token ERROR + r carries root r."""
    levels: Levels
    root_index: dict[tuple[int, int], int] = field(repr=False)

    @property
    def acts(self) -> tuple[StepPlan, ...]:
        return tuple(s for s in self.steps if s.kind == "act")

    @property
    def n_codes(self) -> int:
        return ERROR + len(self.roots)

    def root_label(self, r: int) -> tuple[str, str]:
        """(root-cause step id, error type) of root r."""
        pos, t = self.roots[r]
        return self.steps[pos].id, self.types[t]

    def code_type(self) -> np.ndarray:
        """Error-type index of every token code (-1 for ok / flagged / caught)."""
        out = np.full(self.n_codes, -1, dtype=np.int16)
        out[ERROR:] = [t for _, t in self.roots]
        return out

    def code_root_step(self) -> np.ndarray:
        """Root-cause step position of every token code (-1 for ok / flagged / caught)."""
        out = np.full(self.n_codes, -1, dtype=np.int16)
        out[ERROR:] = [p for p, _ in self.roots]
        return out


def compile_plan(scenario: Scenario, variant: str = "base", all_roots: bool = False) -> Plan:
    """Compile a validated scenario (one variant) into a Plan.

    Roots are the (step, error type) pairs with a positive probability; `all_roots` adds every retrieval type
    at every retrieve step and `reasoning` at every decide step, for engines whose errors are observed rather
    than drawn (the agent engine: a live retriever can miss even where no fault was injected).
    """
    types = all_error_types(scenario.error_types)
    t_index = {t: i for i, t in enumerate(types)}
    steps_by_id = {s.id: s for s in scenario.workflow.steps}
    order = topological_order({s.id: s.inputs for s in scenario.workflow.steps}, list(steps_by_id))
    assert order is not None, "validated scenarios are acyclic"
    pos = {sid: i for i, sid in enumerate(order)}
    levels = Levels.build(scenario.difficulty.icc, scenario.difficulty.levels)

    def per_type(table: dict[str, float]) -> np.ndarray:
        return np.array([table.get(t, table[DEFAULT_KEY]) for t in types])

    consumers: dict[int, list[int]] = {i: [] for i in range(len(order))}
    for sid in order:
        for src in steps_by_id[sid].inputs:
            consumers[pos[src]].append(pos[sid])

    roots: list[tuple[int, int]] = []
    compiled: list[StepPlan] = []
    for i, sid in enumerate(order):
        st = steps_by_id[sid]
        common = dict(id=sid, kind=st.kind, pos=i, inputs=tuple(pos[x] for x in st.inputs),
                      consumers=tuple(consumers[i]))
        if isinstance(st, RetrieveStep):
            retriever = scenario.retrievers[st.retriever]
            total = retriever.error_rate
            at_level = levels.probabilities(min(total, 1.0))
            rates = np.zeros((levels.count, len(types)))
            for t, rate in retriever.rates.items():
                if total > 0:
                    rates[:, t_index[t]] = at_level * (rate / total)
                    if rate > 0 and not all_roots:
                        roots.append((i, t_index[t]))
            if all_roots:
                roots += [(i, t) for t in range(len(types)) if types[t] != REASONING]
            compiled.append(StepPlan(**common, rates=rates))
        elif isinstance(st, DecideStep):
            if st.base_error_rate > 0 or all_roots:
                roots.append((i, t_index[REASONING]))
            general = per_type(st.susceptibility)
            by_input = {pos[src]: np.array([table.get(t, general[k]) for k, t in enumerate(types)])
                        for src, table in st.susceptibility_by_input.items()}
            compiled.append(StepPlan(**common, base_error=levels.probabilities(st.base_error_rate),
                                     susceptibility=general, susceptibility_by_input=by_input))
        elif isinstance(st, VerifyStep):
            audit = any(isinstance(steps_by_id[x], ActStep) for x in st.inputs)
            compiled.append(StepPlan(**common, audit=audit, catch=per_type(st.catch), false_alarm=st.false_alarm))
        else:
            cost = scenario.costs[sid]
            compiled.append(StepPlan(**common, failure_loss=cost.failure_loss, detected_loss=cost.loss_if_detected,
                                     escalation_cost=cost.escalation_cost))
    # Acts learn which audits review them.
    audits_of: dict[int, list[int]] = {}
    for s in compiled:
        if s.audit:
            for a in s.inputs:
                audits_of.setdefault(a, []).append(s.pos)
    compiled = [StepPlan(**{**s.__dict__, "audited_by": tuple(audits_of.get(s.pos, ()))}) if s.kind == "act" else s
                for s in compiled]
    roots.sort()
    return Plan(scenario=scenario.name, variant=variant, seed=scenario.seed, currency=scenario.currency,
                types=types, steps=tuple(compiled), roots=tuple(roots), levels=levels,
                root_index={r: i for i, r in enumerate(roots)})
