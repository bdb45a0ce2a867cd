"""The document-QA agent: a user's inline workflow run over the user's corpus and cases (`agent:` block).

One episode is one case (`agents.qa_cases`). Every retrieve step searches the corpus (in Chroma, with real
embeddings) with the question of the first decide step that reads it; its right passages are the gold passages
of the decide steps reading it, and the scenario's injected faults are made on them (a twin of the gold
passage, its outdated version when the corpus names one, or no gold passage at all). A decide step puts its
question to the policy with the passages its retrieve steps found and a JSON schema of its answer type; an act
step acts on its decisions (through the action's map, if any). Verify steps review as in the built-ins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import partial
from pathlib import Path

from agents.domain import ActSpec, DecideSpec, Domain, Retrieval, RetrieveSpec, Store
from agents.policy import Field, ReadingTask
from agents.qa_cases import NONE, Case, canonical_number, read_cases
from sim.core.errors import CascadeError
from sim.retrieval.corpus import Passage
from sim.retrieval.sources import open_corpus
from sim.scenario.checks import upstream_steps
from sim.scenario.model import Agent, AgentAnswer, DecideStep, RetrieveStep, Scenario

READING = "document_qa"
"""The kind of reading every decide step of this agent asks for."""

_DESCRIPTION = {
    "yes_no": "yes or no, as the passages say; 'none' if they do not say",
    "label": "the label that applies, as the passages say; 'none' if they do not say",
    "number": "the number the passages state, digits only (a decimal point if needed); empty if they do not say",
    "party": "the party, as the passages say; 'none' if they do not say",
}


def choices(answer: AgentAnswer, case: Case, step: str) -> tuple[str, ...]:
    """The values a step's answer may take in `case` (empty: a number)."""
    if answer.type == "yes_no":
        return ("yes", "no", NONE)
    if answer.type == "label":
        return (*answer.labels, NONE)
    if answer.type == "party":
        return (*case.parties[step], NONE)
    return ()


def _canonical(answer: AgentAnswer, value: str) -> str:
    if answer.type == "number":
        return canonical_number(value) or ""
    return value


def _task(step: str, answer: AgentAnswer, sources: tuple[str, ...], earlier: tuple[str, ...], case: Case,
          outputs) -> ReadingTask:
    passages = tuple(p for s in sources for p in outputs[s].passages)
    told = "".join(f" Earlier decision {d}: {', '.join(outputs[d].decision.values()) or NONE}." for d in earlier)
    instruction = (answer.instruction + " " if answer.instruction else "") + \
        "Answer the question from the passages alone." + told
    return ReadingTask(step, READING, instruction, tuple(p.text for p in passages),
                       (Field("answer", _DESCRIPTION[answer.type], choices(answer, case, step)),),
                       case.questions[step], passage_ids=tuple(p.id for p in passages))


def _action(agent: Agent, act: str, decisions: tuple[str, ...], values: Mapping[str, str]) -> dict[str, str]:
    """What the act step does given each decision's answer (`values`)."""
    spec = agent.actions.get(act)
    if spec is not None and spec.map:
        return {"action": spec.map.get(values[spec.decision], NONE)}
    return {d: values[d] for d in decisions}


def document_qa_domain(scenario: Scenario) -> Domain:
    """The document-QA agent of `scenario`'s inline workflow over its `agent:` corpus and cases."""
    agent = scenario.agent
    if agent is None:
        raise CascadeError(f"scenario '{scenario.name}' has no agent block")
    c = agent.corpus
    corpus = open_corpus(c.path, id_column=c.id_column, replaces_column=c.replaces_column,
                         group_column=c.group_column,
                         text_column=None if c.text_column == "text" else c.text_column)  # None: the default
    every = {p.id: p for p in corpus.passages}
    outdated_of = {p.id: every[p.facts["replaces"]] for p in corpus.passages if p.facts.get("replaces")}
    outdated = frozenset(p.id for p in outdated_of.values())
    current = [p for p in corpus.passages if p.id not in outdated]
    if not current:
        raise CascadeError(f"{c.path}: every passage is an outdated version of another; nothing to search")

    steps = scenario.workflow.steps
    by_id = {s.id: s for s in steps}
    decides = [s.id for s in steps if isinstance(s, DecideStep)]
    acts = [s.id for s in steps if s.kind == "act"]
    groups = {p.id: p.topic for p in current} if c.group_column else None
    cases = read_cases(agent.cases, agent, decides, acts, every, outdated, c.path, groups)

    store = Store.of(current, groups or dict.fromkeys((p.id for p in current), ""))
    stores = {s.retriever: store for s in steps if isinstance(s, RetrieveStep)}
    specs: dict = {}
    for s in steps:
        if isinstance(s, RetrieveStep):
            readers = [d for d in decides if s.id in by_id[d].inputs]
            specs[s.id] = RetrieveSpec(s.retriever, agent.k, partial(_ask, readers))
        elif isinstance(s, DecideStep):
            answer = agent.answers[s.id]
            sources = tuple(i for i in s.inputs if isinstance(by_id[i], RetrieveStep))
            earlier = tuple(i for i in s.inputs if isinstance(by_id[i], DecideStep))
            specs[s.id] = DecideSpec(
                lambda case, o, step=s.id, a=answer, src=sources, e=earlier: _task(step, a, src, e, case, o),
                lambda case, reply, o, a=answer: {a.type: _canonical(a, reply.get("answer", ""))},
                lambda case, step=s.id, a=answer: {a.type: case.answers[step]})
        elif s.kind == "act":
            spec = agent.actions.get(s.id)
            decisions = ((spec.decision,) if spec is not None and spec.decision else
                         tuple(d for d in upstream_steps(by_id, s.id) if d in decides))
            if not decisions:
                raise CascadeError(f"scenario '{scenario.name}': act step '{s.id}' has no decide step upstream; "
                                   "the document-QA agent acts on decisions")
            specs[s.id] = ActSpec(
                lambda o, act=s.id, ds=decisions: _action(agent, act, ds, {d: o[d].decision.get(
                    agent.answers[d].type, "") for d in ds}),
                lambda case, act=s.id, ds=decisions: (
                    {"action": case.actions[act]} if act in case.actions else
                    _action(agent, act, ds, {d: case.answers[d] for d in ds})))

    def stale_of(retriever: str, passage: Passage) -> Passage | None:
        """The outdated version the corpus names for this passage (its `replaces` column), if any."""
        return outdated_of.get(passage.id)

    from agents.case_reader import CaseReader

    digest = hashlib.sha256(Path(agent.cases).read_bytes())
    digest.update(corpus.fingerprint().encode())
    queries = tuple(dict.fromkeys(q for case in cases for q in case.questions.values()))
    return Domain("document_qa", stores, cases, specs, stale_of, queries,
                  reader=partial(CaseReader, cases), fingerprint=digest.hexdigest(),
                  about={"corpus": str(c.path), "cases": str(agent.cases)})


def _ask(readers: list[str], case: Case, outputs) -> Retrieval:
    """The search of a retrieve step: the first reader's question; right: any reader's gold passage."""
    return Retrieval(case.questions[readers[0]], None if case.group is None else (case.group,),
                     frozenset().union(*(case.gold[d] for d in readers)))
