"""A fault-injecting LangChain retriever for users' own LangGraph apps, and the log of what it did.

`FaultInjectingRetriever` wraps the app's retriever: a retrieval may read a structural twin, an outdated version,
or go without the right document (`agents.faults.inject`), the fault drawn from a stream keyed by
(seed, step, instance), the instance read from the run config's metadata (`cascade_instance`, set by
`agents.bridge.Recorder.invoke`). Every call lands in a `FaultLog`.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, field_validator

from agents.faults import STALE, inject
from sim.core.error_types import RETRIEVAL_ERROR_TYPES
from sim.core.errors import CascadeError
from sim.core.seeding import stream
from sim.retrieval.corpus import Passage
from sim.scenario.checks import did_you_mean

__all__ = ["FaultInjectingRetriever", "FaultLog", "RetrievalCall", "INSTANCE_KEY", "FAULT_KEY", "check_rates", "doc_id"]

ENGINE = "recorded"
INSTANCE_KEY = "cascade_instance"
"""The run-config metadata key that carries the instance number (`Recorder.invoke` sets it)."""
FAULT_KEY = "cascade_fault"
"""Metadata key set on a document that a fault put in the ranking (its error type)."""


def instance_of(metadata: Mapping[str, Any] | None, where: str) -> int:
    value = (metadata or {}).get(INSTANCE_KEY)
    if value is None:
        raise CascadeError(f"{where} ran without an instance number: invoke the graph through "
                           "Recorder.invoke(graph, inputs, instance, truth), or pass "
                           f"config={{'metadata': {{'{INSTANCE_KEY}': i}}}} to graph.invoke")
    return as_instance(value, f"{where}: metadata['{INSTANCE_KEY}']")


def as_instance(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise CascadeError(f"{what} is {value!r}; an instance number is an int >= 0")
    return int(value)


def check_rates(rates: Any, where: str) -> dict[str, float]:
    """`rates` as a plain dict, or a CascadeError naming the bad key or value and what is allowed."""
    allowed = ", ".join(RETRIEVAL_ERROR_TYPES)
    if not isinstance(rates, Mapping):
        raise CascadeError(f"{where}: rates must be a mapping of error type to probability per query, e.g. "
                           f"{{'negation_flip': 0.02}}; got {type(rates).__name__}")
    for t, rate in rates.items():
        if t not in RETRIEVAL_ERROR_TYPES:
            raise CascadeError(f"{where}: unknown error type {t!r} in rates{did_you_mean(str(t), RETRIEVAL_ERROR_TYPES)} "
                               f"(error types: {allowed})")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise CascadeError(f"{where}: rates[{t!r}] is {rate!r}; a rate is a probability per query, in [0, 1]")
    total = sum(rates.values())
    if total > 1 + 1e-9:  # decimal rates adding up to exactly 1 may round past it in binary
        raise CascadeError(f"{where}: rates sum to {total:.6g}, past 1: a query has at most one error, so the "
                           "rates of the error types must add up to at most 1")
    return {t: float(r) for t, r in rates.items()}


def doc_id(doc: Document) -> str:
    """A document's id: `Document.id`, else `metadata['id']`, else a hash of its text."""
    found = doc.id or doc.metadata.get("id")
    return str(found) if found is not None else "text:" + hashlib.blake2b(doc.page_content.encode(),
                                                                          digest_size=6).hexdigest()


@dataclass(frozen=True)
class RetrievalCall:
    """One call of a fault-injecting retriever."""

    instance: int
    step: str
    query: str
    fault: str | None
    """The fault drawn (None: no fault)."""
    applied: bool
    """Whether the fault could be made (a twin needs a site for its edit, stale an older version)."""
    returned: tuple[str, ...]
    """Ids of the documents returned, in rank order (a twin's: `original#type`)."""
    gold: tuple[str, ...] | None
    """Ids of the right documents (None: no gold function)."""
    hit: bool | None
    """Whether a right document was returned (None: no gold known)."""


class FaultLog:
    """The calls of fault-injecting retrievers in call order; safe to share between threads (parallel nodes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[RetrievalCall] = []

    def append(self, call: RetrievalCall) -> None:
        with self._lock:
            self._calls.append(call)

    def calls(self, instance: int | None = None, step: str | None = None) -> list[RetrievalCall]:
        """The calls recorded, optionally only those of one instance and/or step."""
        with self._lock:
            return [c for c in self._calls if instance in (None, c.instance) and step in (None, c.step)]

    def drop(self, instance: int) -> None:
        """Forget an instance's calls (it is being run again)."""
        with self._lock:
            self._calls = [c for c in self._calls if c.instance != instance]

    def to_frame(self) -> pd.DataFrame:
        """One row per call (columns as `RetrievalCall`)."""
        rows = [{**asdict(c), "returned": list(c.returned), "gold": None if c.gold is None else list(c.gold)}
                for c in self.calls()]
        return pd.DataFrame(rows, columns=[f.name for f in fields(RetrievalCall)])

    def __len__(self) -> int:
        return len(self._calls)

    def __repr__(self) -> str:
        return f"FaultLog({len(self)} calls)"


class FaultInjectingRetriever(BaseRetriever):
    """The user's retriever with cascadesim's retrieval faults injected, for one retrieve step.

    Each call draws at most one fault from `rates` (probability per query), keyed by (seed, step, instance):
    the same instance always meets the same fault, different instances independent ones. A twin or outdated
    version replaces the right document (the top one when no gold is known) and carries
    `metadata['cascade_fault']`; a topical miss drops the right documents (the top one when no gold is known).
    """

    base: BaseRetriever
    step: str
    rates: dict[str, float]
    seed: int
    gold: Callable[[str], set[str]] | None = None
    """Query -> ids of the right documents (`Document.id` or `metadata['id']`)."""
    stale_of: Callable[[Document], Document | None] | None = None
    """Document -> its outdated version (None: it has none, so a stale fault is not applied)."""
    log: FaultLog = Field(default_factory=FaultLog)

    @field_validator("rates", mode="before")
    @classmethod
    def _known_rates(cls, rates: Any) -> dict[str, float]:
        return check_rates(rates, "FaultInjectingRetriever")

    def draw(self, instance: int) -> str | None:
        """The fault of this step's retrievals in `instance` (None: none)."""
        u = stream(self.seed, f"bridge/{self.step}", instance).random()
        total = 0.0
        for t in RETRIEVAL_ERROR_TYPES:  # fixed order, so a fault depends on the rates, not on their dict order
            total += self.rates.get(t, 0.0)
            if u < total:
                return t
        return None

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        instance = instance_of(run_manager.metadata, f"the retriever of step '{self.step}'")
        docs = self.base.invoke(query, config={"callbacks": run_manager.get_child()})
        return self._apply(instance, query, docs)

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun) -> list[Document]:
        instance = instance_of(run_manager.metadata, f"the retriever of step '{self.step}'")
        docs = await self.base.ainvoke(query, config={"callbacks": run_manager.get_child()})
        return self._apply(instance, query, docs)

    def _apply(self, instance: int, query: str, docs: list[Document]) -> list[Document]:
        fault = self.draw(instance)
        ranked = [Passage(doc_id(d), d.page_content) for d in docs]
        source = {id(p): d for p, d in zip(ranked, docs, strict=True)}  # passage (by identity) -> its document
        gold = frozenset(self.gold(query)) if self.gold else frozenset()
        # With no gold known, the top document stands for the right one: it is what the app most likely reads.
        target = gold or frozenset(p.id for p in ranked[:1])
        at = next((i for i, p in enumerate(ranked) if p.id in target), 0)
        made: dict[int, Document] = {}

        def stale(p: Passage) -> Passage | None:
            old = self.stale_of(source[id(p)]) if self.stale_of else None
            if old is None:
                return None
            wrong = Passage(doc_id(old), old.page_content)
            made[id(wrong)] = Document(old.page_content, id=old.id,
                                       metadata={**source[id(p)].metadata, **old.metadata, FAULT_KEY: STALE})
            return wrong

        def twin_rng() -> np.random.Generator:
            return stream(self.seed, f"bridge/twin/{self.step}/{fault}", instance)

        def document(p: Passage) -> Document:
            if id(p) in source:
                return source[id(p)]
            if id(p) in made:
                return made[id(p)]
            return Document(p.text, id=p.id, metadata={**docs[at].metadata, FAULT_KEY: fault})  # a twin

        out, applied = inject(fault, ranked, target, len(ranked), stale, twin_rng)
        result = [document(p) for p in out]
        returned = tuple(p.id for p in out)
        self.log.append(RetrievalCall(instance, self.step, query, fault, applied, returned,
                                      tuple(sorted(gold)) if self.gold else None,
                                      any(i in gold for i in returned) if gold else None))
        return result
