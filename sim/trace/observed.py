"""Observed steps -> the common trace schema: one token per step per instance, exactly as the other engines.

The root cause of an error is the first step whose output diverged from ground truth: a retrieval that read
the wrong passage (its error type: the fault injected, or `topical_miss` when the live retriever missed on
its own), or a decision that went wrong on right inputs (`reasoning`). A wrong decision on wrong inputs
carries the first wrong input's root; a right decision on wrong inputs masked it. A reviewer's catch turns an
error into an escalation; an act executed on erroneous input is an action failure (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from sim.core.errors import CascadeError
from sim.model.plan import Plan
from sim.model.tokens import CAUGHT, ERROR, FLAGGED, LABELS, OK, merge_codes
from sim.trace.schema import BlockTrace


@dataclass(frozen=True)
class Observation:
    """What one step did for one instance, compared with ground truth: all the trace needs."""

    diverged: bool = False
    """Retrieve: it read the wrong passages; decide: its decision differs from the right one."""
    error_type: str | None = None
    """Retrieve, when diverged: the fault injected, or `topical_miss` for a miss of its own."""
    caught: frozenset[str] = frozenset()
    """Verify: the input steps in which it caught a discrepancy."""
    false_alarm: bool = False
    """Verify (gate): it escalated without cause."""


@dataclass
class InstanceTokens:
    tokens: list[int | None]
    masked: dict[int, int]
    caught: dict[int, int]
    detected: dict[int, bool]
    gate_caught: set[tuple[int, int]] = field(default_factory=set)
    """(gate position, input position) where the gate caught the error the input carried."""


def instance_tokens(plan: Plan, seen: Mapping[str, Observation]) -> InstanceTokens:
    """The tokens of one instance, step by step in the plan's order."""
    types = {t: i for i, t in enumerate(plan.types)}
    code_type = plan.code_type()
    tokens: list[int | None] = [None] * len(plan.steps)
    out = InstanceTokens(tokens, {}, {}, {})
    for s in plan.steps:
        obs = seen[s.id]
        ins = [tokens[i] for i in s.inputs]
        if s.kind == "retrieve":
            upstream = merge_codes(ins) if ins else OK
            own = ERROR + plan.root_index[(s.pos, types[obs.error_type or "topical_miss"])] if obs.diverged else OK
            tokens[s.pos] = upstream if upstream != OK else own
        elif s.kind == "decide":
            wrong = [c for c in ins if c >= ERROR]
            kept = [c for c in ins if c < ERROR] + (wrong[:1] if obs.diverged else [])
            acc = merge_codes(kept)
            if obs.diverged and acc == OK:
                acc = ERROR + plan.root_index[(s.pos, plan.reasoning)]
            if not obs.diverged and wrong:
                out.masked[s.pos] = int(code_type[wrong[0]])
            tokens[s.pos] = acc
        elif s.kind == "verify":
            srcs = [plan.steps[i] for i in s.inputs]
            hit = [src.id in obs.caught and tokens[src.pos] >= ERROR for src in srcs]
            first = next((int(code_type[tokens[src.pos]]) for src, h in zip(srcs, hit, strict=True) if h), None)
            if first is not None:
                out.caught[s.pos] = first
            if s.audit:
                for src, h in zip(srcs, hit, strict=True):
                    out.detected[src.pos] = out.detected.get(src.pos, False) or h
            else:
                out.gate_caught.update((s.pos, src.pos) for src, h in zip(srcs, hit, strict=True) if h)
                acc = merge_codes([CAUGHT if h else c for h, c in zip(hit, ins, strict=True)])
                tokens[s.pos] = FLAGGED if acc == OK and obs.false_alarm else acc
        else:
            tokens[s.pos] = merge_codes(ins)
            out.detected.setdefault(s.pos, False)
    return out


def block_trace(plan: Plan, rows: list[InstanceTokens], level: np.ndarray | None) -> BlockTrace:
    """Stack instances' tokens into the arrays the trace functions and tallies read."""
    n = len(rows)
    dtype = np.int16 if plan.n_codes < 2**15 else np.int32
    tokens = [None if rows[0].tokens[s.pos] is None else np.array([r.tokens[s.pos] for r in rows], dtype=dtype)
              for s in plan.steps] if rows else [None] * len(plan.steps)
    trace = BlockTrace(n, level, tokens, {}, {}, {})
    for s in plan.steps:
        if s.kind == "decide":
            trace.masked[s.pos] = np.array([r.masked.get(s.pos, -1) for r in rows], dtype=np.int16)
        elif s.kind == "verify":
            trace.caught[s.pos] = np.array([r.caught.get(s.pos, -1) for r in rows], dtype=np.int16)
            if not s.audit:
                for src in s.inputs:
                    trace.gate_caught[(s.pos, src)] = np.array([(s.pos, src) in r.gate_caught for r in rows],
                                                               dtype=bool)
        elif s.kind == "act":
            trace.detected[s.pos] = np.array([r.detected.get(s.pos, False) for r in rows], dtype=bool)
    return trace


def token_label(plan: Plan, code: int) -> str:
    return LABELS.get(code) or plan.types[plan.code_type()[code]]


def step_outcome(plan: Plan, s, it: InstanceTokens) -> tuple[str, str, str]:
    """(outcome, error type, root-cause step) of step s for one instance."""
    code = it.tokens[s.pos]
    if code is None:  # an audit: what it detected
        t = it.caught.get(s.pos)
        return ("caught", plan.types[t], "") if t is not None else ("ok", "", "")
    if code >= ERROR:
        step, etype = plan.root_label(code - ERROR)
        return "error", etype, step
    if code == OK and s.pos in it.masked:
        return "masked", plan.types[it.masked[s.pos]], ""
    if code == CAUGHT and s.pos in it.caught:
        return "caught", plan.types[it.caught[s.pos]], ""
    return token_label(plan, code), "", ""


def step_row(plan: Plan, s, instance: int, it: InstanceTokens) -> dict:
    """The columns every trace row has (agent_trace.parquet): where, which step, and its outcome."""
    outcome, etype, root = step_outcome(plan, s, it)
    return {"variant": plan.variant, "instance": instance, "step": s.id, "kind": s.kind, "outcome": outcome,
            "error_type": etype, "root_cause_step": root,
            "inputs": [token_label(plan, it.tokens[i]) if it.tokens[i] is not None else "ok" for i in s.inputs]}


def verdict(plan: Plan, s, out: object, where: str) -> Observation:
    """A verify step's recorded output `{"escalate": bool, "caught": [input step ids]}` as its observation.
    Nothing is caught without an escalation; an escalation that names no input caught them all. A malformed
    output is a CascadeError starting with `where`."""
    inputs = [plan.steps[i].id for i in s.inputs]
    if not isinstance(out, Mapping) or not isinstance(out.get("escalate"), bool):
        raise CascadeError(f"{where}: recorded {out!r}; a verify step's output is a dict with 'escalate' (bool) "
                           "and optionally 'caught' (input step ids)")
    named = out.get("caught")
    if named is not None and not (isinstance(named, list | tuple | set | frozenset)
                                  and all(isinstance(x, str) for x in named)):
        raise CascadeError(f"{where}: 'caught' is {named!r}; give a list of input step ids ({', '.join(inputs)})")
    caught = (inputs if named is None else list(named)) if out["escalate"] else []
    unknown = [x for x in caught if x not in inputs]
    if unknown:
        raise CascadeError(f"{where}: caught {unknown}, which are not its inputs ({', '.join(inputs)})")
    return Observation(caught=frozenset(caught), false_alarm=out["escalate"])
