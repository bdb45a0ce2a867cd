"""A scenario compiled for the engines: steps in canonical order with their parameters as arrays.

Past `load_scenario` nothing reads YAML again. A Plan keeps every numeric parameter of its scenario under the
dotted path a scenario file would use (`retrievers.contract.rates.role_swap`,
`workflow.steps.legal_review.catch.default`, `costs.sign.failure_loss`), so sensitivity, uncertainty, sweeps
and the timeline's bypassed reviews are transformations of a Plan (`with_parameters`, `without_catch`)
that rebuild only the arrays. Tokens and how they meet: `sim.model.tokens`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from sim.core.error_types import DEFAULT_KEY, REASONING, all_error_types
from sim.core.errors import CascadeError
from sim.model.tokens import ERROR
from sim.scenario.checks import did_you_mean
from sim.scenario.difficulty import IccOutOfReach, Levels
from sim.scenario.graph import topological_order
from sim.scenario.model import ActStep, DecideStep, RetrieveStep, Scenario, VerifyStep


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
    # what the arrays are rebuilt from (`Plan.with_parameters`)
    retriever: str | None = None
    """Retrieve: the retriever whose rates it draws."""
    input_ids: tuple[str, ...] = ()

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
    parameters: Mapping[str, float] = field(repr=False, default_factory=dict)
    """Every numeric parameter by its scenario path (do not mutate: `with_parameters` makes a new plan)."""
    all_roots: bool = field(repr=False, default=False)
    batch: int | None = field(repr=False, default=None)
    """None for one parameter point; B for a batch of B points (`stack`): every step's arrays then carry a
    leading axis of B values, and `parameters` are those of the first point."""

    @property
    def acts(self) -> tuple[StepPlan, ...]:
        return tuple(s for s in self.steps if s.kind == "act")

    @property
    def n_codes(self) -> int:
        return ERROR + len(self.roots)

    @property
    def reasoning(self) -> int:
        """Type index of a decide step's own mistakes."""
        return self.types.index(REASONING)

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

    # -- transformations ----------------------------------------------------------------------------------------
    def with_parameters(self, changes: Mapping[str, float]) -> Plan:
        """This plan with some parameters (by scenario path) set to new values; checked like a scenario."""
        if self.batch is not None:
            raise CascadeError("with_parameters changes a plan of one parameter point, not a stacked batch")
        values = dict(self.parameters)
        for path, value in changes.items():
            if path not in values:
                raise CascadeError(f"no parameter '{path}' in scenario '{self.scenario}'"
                                   f"{did_you_mean(path, values)}")
            value = float(value)
            if not np.isfinite(value) or value < 0 or (not path.startswith("costs.") and value > 1):
                kind = "an amount >= 0" if path.startswith("costs.") else "a probability in [0, 1]"
                raise CascadeError(f"{path}: {value!r} is not {kind}")
            values[path] = value
        for name in {s.retriever for s in self.steps if s.retriever is not None}:
            total = sum(_table(values, f"retrievers.{name}.rates.").values())
            if total > 1.0 + 1e-9:
                raise CascadeError(f"retrievers.{name}.rates sum to {total:.6g}, past 1")
        return _build(self, values)

    def without_catch(self, step_ids: Iterable[str]) -> Plan:
        """This plan with the given verify steps catching nothing and raising no false alarm (bypassed)."""
        prefixes = tuple(f"workflow.steps.{sid}.{name}" for sid in step_ids for name in ("catch.", "false_alarm"))
        return self.with_parameters({p: 0.0 for p in self.parameters if p.startswith(prefixes)})


def stack(plans: Sequence[Plan]) -> Plan:
    """One plan evaluated at several parameter points: the plans (same scenario structure, e.g. from
    `with_parameters`) with each step's arrays stacked along a leading batch axis and the union of their roots
    (a root absent at one point has probability 0 there), for engines that evaluate all points at once."""
    first = plans[0]
    if any(p.batch is not None for p in plans):
        raise CascadeError("stack takes plans of one parameter point each")
    if any([s.id for s in p.steps] != [s.id for s in first.steps] or p.types != first.types
           or (p.levels.icc, p.levels.count) != (first.levels.icc, first.levels.count) for p in plans):
        raise CascadeError("stack takes plans of one scenario structure (steps, types and levels alike)")
    steps = []
    for i, st in enumerate(first.steps):
        at = [p.steps[i] for p in plans]

        def arrays(name: str, st: StepPlan = st, at: list[StepPlan] = at) -> np.ndarray | None:
            return None if getattr(st, name) is None else np.stack([getattr(a, name) for a in at])

        steps.append(dataclasses.replace(
            st, rates=arrays("rates"), base_error=arrays("base_error"), susceptibility=arrays("susceptibility"),
            susceptibility_by_input={k: np.stack([a.susceptibility_by_input[k] for a in at])
                                     for k in st.susceptibility_by_input},
            catch=arrays("catch"), false_alarm=np.array([a.false_alarm for a in at], dtype=float),
            failure_loss=np.array([a.failure_loss for a in at], dtype=float),
            detected_loss=np.array([a.detected_loss for a in at], dtype=float),
            escalation_cost=np.array([a.escalation_cost for a in at], dtype=float)))
    roots = tuple(sorted({r for p in plans for r in p.roots}))
    return dataclasses.replace(first, steps=tuple(steps), roots=roots,
                               root_index={r: i for i, r in enumerate(roots)}, batch=len(plans))


def _table(values: Mapping[str, float], prefix: str) -> dict[str, float]:
    """The entries under `prefix` (e.g. a catch table), keyed by their last path part, in written order."""
    return {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix)}


def scenario_parameters(scenario: Scenario) -> dict[str, float]:
    """Every numeric parameter of a scenario by its dotted path: retrievers' rates, then the steps in
    declaration order, then costs (an unset detected_loss is absent: it follows failure_loss)."""
    out: dict[str, float] = {}
    for name, r in scenario.retrievers.items():
        out.update({f"retrievers.{name}.rates.{t}": rate for t, rate in r.rates.items()})
    for st in scenario.workflow.steps:
        at = f"workflow.steps.{st.id}"
        if isinstance(st, DecideStep):
            out[f"{at}.base_error_rate"] = st.base_error_rate
            out.update({f"{at}.susceptibility.{t}": p for t, p in st.susceptibility.items()})
            for src, table in st.susceptibility_by_input.items():
                out.update({f"{at}.susceptibility_by_input.{src}.{t}": p for t, p in table.items()})
        elif isinstance(st, VerifyStep):
            out.update({f"{at}.catch.{t}": p for t, p in st.catch.items()})
            out[f"{at}.false_alarm"] = st.false_alarm
    for sid, cost in scenario.costs.items():
        out[f"costs.{sid}.failure_loss"] = cost.failure_loss
        if cost.detected_loss is not None:
            out[f"costs.{sid}.detected_loss"] = cost.detected_loss
        out[f"costs.{sid}.escalation_cost"] = cost.escalation_cost
    return out


def compile_plan(scenario: Scenario, variant: str = "base", all_roots: bool = False) -> Plan:
    """Compile a validated scenario (one variant) into a Plan.

    Roots are the (step, error type) pairs with a positive probability; `all_roots` adds every retrieval type
    at every retrieve step and `reasoning` at every decide step, for engines whose errors are observed rather
    than drawn (the agent engine: a live retriever can miss even where no fault was injected).
    """
    steps_by_id = {s.id: s for s in scenario.workflow.steps}
    order = topological_order({s.id: s.inputs for s in scenario.workflow.steps}, list(steps_by_id))
    assert order is not None, "validated scenarios are acyclic"
    pos = {sid: i for i, sid in enumerate(order)}
    consumers: dict[int, list[int]] = {i: [] for i in range(len(order))}
    for sid in order:
        for src in steps_by_id[sid].inputs:
            consumers[pos[src]].append(pos[sid])
    audit = {sid: isinstance(st, VerifyStep) and any(isinstance(steps_by_id[x], ActStep) for x in st.inputs)
             for sid, st in steps_by_id.items()}
    audits_of: dict[int, list[int]] = {}
    for sid in order:
        if audit[sid]:
            for a in steps_by_id[sid].inputs:
                audits_of.setdefault(pos[a], []).append(pos[sid])
    skeletons = tuple(StepPlan(
        id=sid, kind=steps_by_id[sid].kind, pos=i, inputs=tuple(pos[x] for x in steps_by_id[sid].inputs),
        consumers=tuple(consumers[i]), audit=audit[sid], audited_by=tuple(audits_of.get(i, ())),
        retriever=steps_by_id[sid].retriever if isinstance(steps_by_id[sid], RetrieveStep) else None,
        input_ids=tuple(steps_by_id[sid].inputs)) for i, sid in enumerate(order))
    skeleton = Plan(scenario=scenario.name, variant=variant, seed=scenario.seed, currency=scenario.currency,
                    types=all_error_types(scenario.error_types), steps=skeletons, roots=(),
                    levels=Levels.build(scenario.difficulty.icc, scenario.difficulty.levels), root_index={},
                    all_roots=all_roots)
    return _build(skeleton, scenario_parameters(scenario))


def _build(plan: Plan, values: dict[str, float]) -> Plan:
    """`plan`'s structure with its arrays (and roots) computed from `values`."""
    types, levels = plan.types, plan.levels
    t_index = {t: i for i, t in enumerate(types)}
    reasoning = t_index[REASONING]

    def per_type(table: dict[str, float]) -> np.ndarray:
        return np.array([table.get(t, table[DEFAULT_KEY]) for t in types])

    def at_levels(p: float, where: str) -> np.ndarray:
        try:
            return levels.probabilities(p)
        except IccOutOfReach as exc:
            raise CascadeError(f"{where}: {exc}; raise difficulty.levels or lower difficulty.icc") from None

    roots: list[tuple[int, int]] = []
    compiled: list[StepPlan] = []
    for st in plan.steps:
        i, at = st.pos, f"workflow.steps.{st.id}"
        if st.kind == "retrieve":
            rates_in = _table(values, f"retrievers.{st.retriever}.rates.")
            total = sum(rates_in.values())
            at_level = at_levels(min(total, 1.0), f"retrievers.{st.retriever}.rates")
            rates = np.zeros((levels.count, len(types)))
            for t, rate in rates_in.items():
                if total > 0:
                    rates[:, t_index[t]] = at_level * (rate / total)
                    if rate > 0 and not plan.all_roots:
                        roots.append((i, t_index[t]))
            if plan.all_roots:
                roots += [(i, t) for t in range(len(types)) if t != reasoning]
            compiled.append(dataclasses.replace(st, rates=rates))
        elif st.kind == "decide":
            base = values[f"{at}.base_error_rate"]
            if base > 0 or plan.all_roots:
                roots.append((i, reasoning))
            general = per_type(_table(values, f"{at}.susceptibility."))
            by_input = {}
            for k, src in zip(st.inputs, st.input_ids, strict=True):
                table = _table(values, f"{at}.susceptibility_by_input.{src}.")
                if table:
                    by_input[k] = np.array([table.get(t, general[j]) for j, t in enumerate(types)])
            compiled.append(dataclasses.replace(st, base_error=at_levels(base, f"{at}.base_error_rate"), susceptibility=general,
                                                susceptibility_by_input=by_input))
        elif st.kind == "verify":
            compiled.append(dataclasses.replace(st, catch=per_type(_table(values, f"{at}.catch.")),
                                                false_alarm=values[f"{at}.false_alarm"]))
        else:
            failure = values[f"costs.{st.id}.failure_loss"]
            compiled.append(dataclasses.replace(
                st, failure_loss=failure, detected_loss=values.get(f"costs.{st.id}.detected_loss", failure),
                escalation_cost=values[f"costs.{st.id}.escalation_cost"]))
    roots.sort()
    return dataclasses.replace(plan, steps=tuple(compiled), roots=tuple(roots),
                               root_index={r: i for i, r in enumerate(roots)}, parameters=values)
