"""A scenario's workflow as a LangGraph StateGraph: declared from the steps, compiled once, never mutated.

One node per step, one edge per input (a step with several inputs waits for all of them), START to the steps
without inputs and the steps nobody consumes to END. A fresh state per instance.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from agents.domain import ActSpec, DecideSpec, Domain, RetrieveSpec
from agents.nodes import AgentState, Search, act_node, decide_node, retrieve_node, review_node
from agents.policy import Policy
from sim.core.errors import CascadeError
from sim.scenario.model import Scenario


def build_graph(scenario: Scenario, domain: Domain, search: Search, policy: Policy):
    """The compiled graph of `scenario`'s workflow (one variant) over `domain`'s text."""
    steps = scenario.workflow.steps
    check_steps(scenario, domain)
    graph = StateGraph(AgentState)
    for s in steps:
        spec = domain.specs.get(s.id)
        if s.kind == "retrieve":
            node = retrieve_node(s.id, spec, domain, search, scenario.seed)
        elif s.kind == "decide":
            node = decide_node(s.id, spec, policy)
        elif s.kind == "verify":
            node = review_node(s.id, tuple(s.inputs), domain.specs, s.catch, s.false_alarm)
        else:
            node = act_node(s.id, tuple(s.inputs), spec)
        graph.add_node(s.id, node)
    consumed = {i for s in steps for i in s.inputs}
    for s in steps:
        if not s.inputs:
            graph.add_edge(START, s.id)
        else:
            graph.add_edge(s.inputs[0] if len(s.inputs) == 1 else list(s.inputs), s.id)
        if s.id not in consumed:
            graph.add_edge(s.id, END)
    return graph.compile()


_SPEC_OF_KIND = {"retrieve": RetrieveSpec, "decide": DecideSpec, "act": ActSpec}


def check_steps(scenario: Scenario, domain: Domain) -> None:
    """Every step must be one the domain knows, of the kind it knows it as (verify steps need no spec)."""
    for s in scenario.workflow.steps:
        want = _SPEC_OF_KIND.get(s.kind)
        if want is not None and not isinstance(domain.specs.get(s.id), want):
            raise CascadeError(
                f"scenario '{scenario.name}': step '{s.id}' ({s.kind}) has no agent node in the built-in "
                f"{domain.workflow} agent; the agent engine runs the built-in workflows' own steps (their "
                "parameters may be changed with `set`). For your own LangGraph app, use agents.bridge.")
