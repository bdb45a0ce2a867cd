"""The nodes of an agent graph, one builder per step kind. A node reads its state and returns its record.

Nodes never draw random numbers, sleep or read clocks (DESIGN.md): every chance event was drawn by the engine
beforehand and arrives in the state as `InstanceChance`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Annotated, Any, TypedDict

from agents.domain import (
    Acted,
    ActSpec,
    Decided,
    DecideSpec,
    Domain,
    Record,
    Retrieved,
    RetrieveSpec,
    Reviewed,
    discrepancy,
)
from agents.faults import inject, twin_stream
from agents.policy import InvalidReply, Policy
from sim.core.error_types import DEFAULT_KEY
from sim.retrieval.corpus import Passage

Search = Callable[[str, str, tuple[str, ...] | None, int], list[Passage]]
"""(store, query, groups, n) -> the n best passages, best first."""


@dataclass(frozen=True)
class InstanceChance:
    """What the engine drew for one instance; the graph only reads it."""

    instance: int
    fault: Mapping[str, str | None]
    """Retrieve step -> the fault injected into its retrieval (None: none)."""
    slip: Mapping[str, bool]
    """Decide step -> whether the simulated reader makes a reasoning error there."""
    notice: Mapping[tuple[str, str], float]
    """(verify step, input step) -> uniform; the reviewer notices a discrepancy iff it is below the catch rate."""
    alarm: Mapping[str, float]
    """Verify step -> uniform; a false alarm iff it is below the step's false-alarm rate."""


class AgentState(TypedDict):
    episode: Any
    chance: InstanceChance
    outputs: Annotated[dict[str, Record], operator.or_]


def retrieve_node(step: str, spec: RetrieveSpec, domain: Domain, search: Search, seed: int):
    def node(state: AgentState) -> dict:
        episode, chance, outputs = state["episode"], state["chance"], state["outputs"]
        ask = spec.ask(episode, outputs)
        n = spec.k + len(ask.gold) + len(ask.exclude)
        ranked = [p for p in search(spec.store, ask.query, ask.groups, n) if p.id not in ask.exclude]
        fault = chance.fault.get(step)
        passages, applied = inject(fault, ranked, ask.gold, spec.k, partial(domain.stale_of, spec.store),
                                   lambda: twin_stream(seed, step, fault, chance.instance))
        if spec.correct is not None:
            right = spec.correct(episode, passages)
        else:
            right = any(p.id in ask.gold for p in passages)
        return {"outputs": {step: Retrieved(passages, fault, applied, right and not applied)}}
    return node


def decide_node(step: str, spec: DecideSpec, policy: Policy):
    def node(state: AgentState) -> dict:
        episode, outputs = state["episode"], state["outputs"]
        task = replace(spec.task(episode, outputs), slip=state["chance"].slip.get(step, False))
        try:
            answer = policy.read(task)
        except InvalidReply as exc:
            return {"outputs": {step: Decided({}, {}, str(exc))}}
        return {"outputs": {step: Decided(answer, spec.decide(episode, answer, outputs))}}
    return node


def right_value(record: Record, spec, episode) -> tuple[Mapping[str, str], Mapping[str, str]] | None:
    """(what a step produced, what it should have produced) for decisions and actions; None otherwise."""
    if isinstance(record, Decided):
        return record.decision, spec.truth(episode)
    if isinstance(record, Acted):
        return record.action, spec.truth(episode)
    return None


def review_node(step: str, inputs: tuple[str, ...], specs: Mapping[str, Any], catch: Mapping[str, float],
                false_alarm: float):
    """A reviewer who checks each input against the source documents and notices a discrepancy with the
    probability its catch table gives for that kind of discrepancy (a wrong number, a swapped party ...)."""
    def node(state: AgentState) -> dict:
        episode, chance, outputs = state["episode"], state["chance"], state["outputs"]
        caught = {}
        for src in inputs:
            record = outputs[src]
            if isinstance(record, Retrieved):
                kind = record.error_type
            else:
                pair = right_value(record, specs.get(src), episode)
                kind = discrepancy(*pair) if pair else None
            if kind and chance.notice[(step, src)] < catch.get(kind, catch[DEFAULT_KEY]):
                caught[src] = kind
        return {"outputs": {step: Reviewed(caught, chance.alarm.get(step, 1.0) < false_alarm)}}
    return node


def act_node(step: str, inputs: tuple[str, ...], spec: ActSpec):
    def node(state: AgentState) -> dict:
        outputs = state["outputs"]
        escalated = any((isinstance(r, Reviewed) and (bool(r.caught) or r.false_alarm))
                        or (isinstance(r, Acted) and r.escalated) for r in (outputs[i] for i in inputs))
        return {"outputs": {step: Acted(spec.act(outputs), escalated)}}
    return node
