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
        values.update({path: float(v) for path, v in _checked(self, changes, None).items()})
        return _build(self, values)

    def at_points(self, points: Mapping[str, np.ndarray], first_draw: int = 0) -> Plan:
        """This plan at a batch of parameter points (path -> one value per point), checked like `with_parameters`:
        what `stack` of the plans at each point gives, built at once (the difficulty levels of all drawn rates
        solved together by `Levels.probabilities_batch`, equal to the one-point solver to rounding). Errors name
        the point as `draw first_draw + i`."""
        if self.batch is not None:
            raise CascadeError("at_points changes a plan of one parameter point, not a stacked batch")
        sizes = {len(np.atleast_1d(v)) for v in points.values()}
        if len(sizes) != 1:
            raise CascadeError(f"at_points takes one value per point for every parameter, got lengths {sorted(sizes)}")
        batch = sizes.pop()
        values = {path: np.full(batch, v) for path, v in self.parameters.items()}
        values.update(_checked(self, points, batch, first_draw))
        return _build(self, values, batch, first_draw)

    def slice_points(self, start: int, stop: int) -> Plan:
        """A stacked plan's points start..stop-1 (the roots stay those of the whole batch)."""
        if self.batch is None:
            raise CascadeError("slice_points takes a stacked batch of points")

        def part(x):
            return x[start:stop] if isinstance(x, np.ndarray) else x

        steps = tuple(dataclasses.replace(
            s, rates=part(s.rates), base_error=part(s.base_error), susceptibility=part(s.susceptibility),
            susceptibility_by_input={k: part(v) for k, v in s.susceptibility_by_input.items()}, catch=part(s.catch),
            false_alarm=part(s.false_alarm), failure_loss=part(s.failure_loss), detected_loss=part(s.detected_loss),
            escalation_cost=part(s.escalation_cost)) for s in self.steps)
        return dataclasses.replace(self, steps=steps, batch=len(range(start, min(stop, self.batch))))

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


def _checked(plan: Plan, changes: Mapping[str, float | np.ndarray], batch: int | None,
             first_draw: int = 0) -> dict[str, np.ndarray]:
    """`changes` as float arrays (one value, or one per point), refused like a scenario's values: an unknown path,
    a probability outside [0, 1], a negative or non-finite amount, a retriever's rates summing past 1."""
    where = "" if batch is None else "draw {}: "
    out = {}
    for path, value in changes.items():
        if path not in plan.parameters:
            raise CascadeError(f"no parameter '{path}' in scenario '{plan.scenario}'"
                               f"{did_you_mean(path, plan.parameters)}")
        value = np.asarray(value, dtype=float)
        bad = ~np.isfinite(value) | (value < 0) | ((value > 1) & (not path.startswith("costs.")))
        if bad.any():
            i = int(np.flatnonzero(np.atleast_1d(bad))[0])
            kind = "an amount >= 0" if path.startswith("costs.") else "a probability in [0, 1]"
            raise CascadeError(f"{where.format(first_draw + i)}{path}: {float(np.atleast_1d(value)[i])!r} is not {kind}")
        out[path] = value
    for name in {s.retriever for s in plan.steps if s.retriever is not None}:
        prefix = f"retrievers.{name}.rates."
        total = sum(out.get(k, v) for k, v in plan.parameters.items() if k.startswith(prefix))
        over = np.atleast_1d(total > 1.0 + 1e-9)
        if over.any():
            i = int(np.flatnonzero(over)[0])
            raise CascadeError(f"{where.format(first_draw + i)}retrievers.{name}.rates sum to {float(np.atleast_1d(total)[i]):.6g}, "
                               "past 1")
    return out


def _build(plan: Plan, values: Mapping[str, float | np.ndarray], batch: int | None = None,
           first_draw: int = 0) -> Plan:
    """`plan`'s structure with its arrays (and roots) computed from `values`: one float per path (one point), or
    with `batch`, one array of `batch` values per path (every step's arrays then lead with the batch axis, and
    the roots are those positive at any point). Both go through the same arithmetic on a leading axis of points,
    one point solving its levels with the scalar solver (the recorded figures depend on its last bits)."""
    types, levels = plan.types, plan.levels
    t_index = {t: i for i, t in enumerate(types)}
    reasoning = t_index[REASONING]
    B = 1 if batch is None else batch
    at = {k: np.broadcast_to(np.asarray(v, dtype=float), (B,)) for k, v in values.items()}

    def per_type(table: dict[str, np.ndarray]) -> np.ndarray:
        return np.stack([table.get(t, table[DEFAULT_KEY]) for t in types], axis=-1)

    # Every rate that gets difficulty levels (a retriever's total, a decide step's own error rate), by step.
    wanted = {}
    for st in plan.steps:
        if st.kind == "retrieve":
            total = sum(_table(at, f"retrievers.{st.retriever}.rates.").values(), np.zeros(B))
            wanted[st.pos] = (f"retrievers.{st.retriever}.rates", np.minimum(total, 1.0))
        elif st.kind == "decide":
            wanted[st.pos] = (f"workflow.steps.{st.id}.base_error_rate", at[f"workflow.steps.{st.id}.base_error_rate"])
    at_level = _levels_of(levels, wanted, batch, first_draw)

    roots: list[tuple[int, int]] = []
    compiled: list[StepPlan] = []
    for st in plan.steps:
        i, step = st.pos, f"workflow.steps.{st.id}"
        if st.kind == "retrieve":
            rates_in = _table(at, f"retrievers.{st.retriever}.rates.")
            total = sum(rates_in.values(), np.zeros(B))
            rates = np.zeros((B, levels.count, len(types)))
            some = total > 0
            for t, rate in rates_in.items():
                share = np.divide(rate, total, out=np.zeros(B), where=some)
                rates[:, :, t_index[t]] = np.where(some[:, None], at_level[i] * share[:, None], 0.0)
                if np.any(rate[some] > 0) and not plan.all_roots:
                    roots.append((i, t_index[t]))
            if plan.all_roots:
                roots += [(i, t) for t in range(len(types)) if t != reasoning]
            compiled.append(dataclasses.replace(st, rates=rates))
        elif st.kind == "decide":
            base = at[f"{step}.base_error_rate"]
            if np.any(base > 0) or plan.all_roots:
                roots.append((i, reasoning))
            general = per_type(_table(at, f"{step}.susceptibility."))
            by_input = {}
            for k, src in zip(st.inputs, st.input_ids, strict=True):
                table = _table(at, f"{step}.susceptibility_by_input.{src}.")
                if table:
                    by_input[k] = np.stack([table.get(t, general[:, j]) for j, t in enumerate(types)], axis=-1)
            compiled.append(dataclasses.replace(st, base_error=at_level[i],
                                                susceptibility=general, susceptibility_by_input=by_input))
        elif st.kind == "verify":
            compiled.append(dataclasses.replace(st, catch=per_type(_table(at, f"{step}.catch.")),
                                                false_alarm=at[f"{step}.false_alarm"]))
        else:
            failure = at[f"costs.{st.id}.failure_loss"]
            compiled.append(dataclasses.replace(
                st, failure_loss=failure, detected_loss=at.get(f"costs.{st.id}.detected_loss", failure),
                escalation_cost=at[f"costs.{st.id}.escalation_cost"]))
    roots.sort()
    if batch is None:  # one point: drop the leading axis (numbers as floats, as a scenario writes them)
        compiled = [_one_point(s) for s in compiled]
        parameters = dict(values)
    else:
        parameters = {k: float(v[0]) for k, v in at.items()}
    return dataclasses.replace(plan, steps=tuple(compiled), roots=tuple(roots), batch=batch,
                               root_index={r: i for i, r in enumerate(roots)}, parameters=parameters)


def _levels_of(levels: Levels, wanted: Mapping[int, tuple[str, np.ndarray]], batch: int | None,
               first_draw: int) -> dict[int, np.ndarray]:
    """Per step position, the probability at each difficulty level (points x levels) of its rate in `wanted`
    (where it is written, one value per point): one point by the scalar solver, a batch all in one
    `Levels.probabilities_batch` (repeated rates once, the more rates the fewer root iterations each)."""
    def refused(where: str, p: np.ndarray, exc: IccOutOfReach) -> CascadeError:
        point = "" if batch is None else f"draw {first_draw + int(np.flatnonzero(p == exc.p)[0])}: "
        return CascadeError(f"{point}{where}: {exc}; raise difficulty.levels or lower difficulty.icc")

    if batch is None:
        out = {}
        for pos, (where, p) in wanted.items():
            try:
                out[pos] = levels.probabilities(float(p[0]))[None, :]
            except IccOutOfReach as exc:
                raise refused(where, p, exc) from None
        return out
    if not wanted:
        return {}
    try:
        solved = levels.probabilities_batch(np.concatenate([p for _, p in wanted.values()]))
    except IccOutOfReach as exc:
        where, p = next((w, p) for w, p in wanted.values() if np.any(p == exc.p))
        raise refused(where, p, exc) from None
    return {pos: solved[k * batch:(k + 1) * batch] for k, pos in enumerate(wanted)}


def _one_point(s: StepPlan) -> StepPlan:
    """A step built on a leading axis of one point, without it."""
    def first(x: np.ndarray | None) -> np.ndarray | None:
        return None if x is None else x[0]

    return dataclasses.replace(
        s, rates=first(s.rates), base_error=first(s.base_error), susceptibility=first(s.susceptibility),
        susceptibility_by_input={k: v[0] for k, v in s.susceptibility_by_input.items()}, catch=first(s.catch),
        false_alarm=float(s.false_alarm[0]) if s.kind == "verify" else s.false_alarm,
        failure_loss=float(s.failure_loss[0]) if s.kind == "act" else s.failure_loss,
        detected_loss=float(s.detected_loss[0]) if s.kind == "act" else s.detected_loss,
        escalation_cost=float(s.escalation_cost[0]) if s.kind == "act" else s.escalation_cost)
