"""What an agent workflow over real text is made of: its stores, its episodes, and one spec per step.

A `Domain` (contract review, ticket triage) says, for every step of its built-in workflow, what the node does
and what the right output is:
- retrieve: which store, the query, which passages are right (`Retrieval`), how many passages are read;
- decide: the `ReadingTask` put to the policy, the rule that turns the answer into a decision, and the right
  decision for the episode;
- act: the action taken from the decisions, and the right action.
Verify steps need no spec: a reviewer compares its inputs with their right values (`agents.nodes`).

Records of what each node did are plain frozen dataclasses, so the trace can be rebuilt from them alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from agents.policy import ReadingTask
from sim.retrieval.corpus import Passage

# Which kind of mistake a wrong field is, as a reviewer sees it: the key a reviewer's catch table is read at.
FIELD_NATURE: Mapping[str, str] = {
    **dict.fromkeys(("indemnitor", "indemnitee", "capped_party", "terminating_party"), "role_swap"),
    **dict.fromkeys(("obligated", "for_convenience", "auto_renew", "refund"), "negation_flip"),
    **dict.fromkeys(("cap_usd", "cap_months", "notice_days", "figures", "renewal_notice_days",
                     "termination_notice_days"), "numeric_swap"),
    **dict.fromkeys(("law", "jurisdiction", "intent", "priority", "team"), "modifier_swap"),
    # The document-QA agent's decisions are keyed by their answer type (`agents.document_qa`).
    "yes_no": "negation_flip", "number": "numeric_swap", "party": "role_swap", "label": "modifier_swap",
}


@dataclass(frozen=True)
class Store:
    """Passages one retriever searches; `groups` restricts a search (one contract, one intent, one edition)."""

    passages: tuple[Passage, ...]
    groups: Mapping[str, str]
    by_id: Mapping[str, Passage]

    @classmethod
    def of(cls, passages, groups: Mapping[str, str]) -> Store:
        passages = tuple(passages)
        return cls(passages, dict(groups), {p.id: p for p in passages})


@dataclass(frozen=True)
class Retrieval:
    """One search: the query text, the groups searched (None: all), the right passages, and passages that
    must not be returned (a ticket is not its own example)."""

    query: str
    groups: tuple[str, ...] | None
    gold: frozenset[str]
    exclude: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RetrieveSpec:
    store: str
    k: int
    ask: Callable[[Any, Mapping[str, Any]], Retrieval]
    """(episode, outputs so far) -> the search."""
    correct: Callable[[Any, tuple[Passage, ...]], bool] | None = None
    """Whether the passages read are right for the episode (default: a gold passage is among them)."""


@dataclass(frozen=True)
class DecideSpec:
    task: Callable[[Any, Mapping[str, Any]], ReadingTask]
    decide: Callable[[Any, Mapping[str, str], Mapping[str, Any]], dict[str, str]]
    """(episode, policy answer, outputs so far) -> the decision (the fields the workflow acts on). The episode
    gives only what the agent is told up front (a contract's parties, a ticket's text), never its truth."""
    truth: Callable[[Any], dict[str, str]]


@dataclass(frozen=True)
class ActSpec:
    act: Callable[[Mapping[str, Any]], dict[str, str]]
    """(outputs so far) -> what the action does."""
    truth: Callable[[Any], dict[str, str]]


Spec = RetrieveSpec | DecideSpec | ActSpec


@dataclass(frozen=True)
class Domain:
    """A built-in workflow over real text: `workflow` names the scenario workflow it runs."""

    workflow: str
    stores: Mapping[str, Store]
    """Retriever name (as the built-in workflow's steps name them) -> store."""
    episodes: tuple[Any, ...]
    specs: Mapping[str, Spec]
    stale_of: Callable[[str, Passage], Passage | None]
    """(retriever, passage) -> an outdated version of that passage, or None."""
    queries: tuple[str, ...] = ()
    """Every query text the workflow can send (embedded once, before the run)."""
    reader: Callable[[], Any] | None = None
    """The offline policy that reads this domain's tasks (None: the simulated reader)."""
    fingerprint: str = ""
    """A hash of the text the episodes come from, when it is the user's (part of the checkpoint's key)."""
    about: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """What the summary's agent block says about the domain's sources (files read)."""


# --- records: what each node did -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Retrieved:
    passages: tuple[Passage, ...]
    fault: str | None
    """The fault the engine drew for this retrieval (None: none)."""
    applied: bool
    """Whether the fault could be made (a twin needs a site to edit; a stale version must exist)."""
    correct: bool
    """Whether what was read is right for the episode (after the fault)."""

    @property
    def error_type(self) -> str | None:
        if self.correct:
            return None
        return self.fault if self.applied else "topical_miss"


@dataclass(frozen=True)
class Decided:
    answer: Mapping[str, str]
    decision: Mapping[str, str]
    invalid: str | None = None
    """Why the policy's reply was not valid (the decision is then empty, hence wrong)."""


@dataclass(frozen=True)
class Reviewed:
    caught: Mapping[str, str]
    """Input step -> the kind of discrepancy the reviewer caught in it."""
    false_alarm: bool


@dataclass(frozen=True)
class Acted:
    action: Mapping[str, str]
    escalated: bool


Record = Retrieved | Decided | Reviewed | Acted


def discrepancy(found: Mapping[str, str], right: Mapping[str, str]) -> str | None:
    """The nature of the first field where `found` differs from `right` ("default" if it is not a known
    field; "reasoning" for an invalid reply); None when they agree."""
    if not found and right:
        return "reasoning"
    for name, value in right.items():
        if found.get(name) != value:
            return FIELD_NATURE.get(name, "default")
    return None
