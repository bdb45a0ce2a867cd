"""The offline stand-in for a model in a document-QA agent: it answers from the case file's facts.

It reads the passages it is given in rank order, by id, and trusts the first one that the case names as gold
for this step and question: the gold passage itself gives the case's right answer; a structural twin of it
(`gold#negation_flip`, ...) gives another value (yes <-> no, the next label or party, another number), as a
context-trusting model reading an edited fact would, on the assumption that the edit hit the fact asked
about; an outdated version or no gold passage at all gives `none` (an empty number): the case file does not
say what other text would make a model answer. A reasoning slip drawn by the engine moves the answer to another
value too. It never sees which case it reads for beyond the task, so the run is a real test of the plumbing:
retrieval, fault, reading, decision, action, review.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from agents.policy import Field, ReadingTask
from agents.qa_cases import NONE, Case
from sim.retrieval.twins import TWIN_TYPES


def other_value(value: str, field: Field) -> str:
    """A different answer of the same type: the next choice (not `none`), or the number plus one."""
    if field.choices:
        real = [c for c in field.choices if c != NONE]
        if value not in real:
            return real[0]
        return real[(real.index(value) + 1) % len(real)]
    return format(Decimal(value) + 1, "f") if value else "0"


def twin_of(passage_id: str) -> tuple[str, str | None]:
    """(the id of the passage a twin was made from, the twin's error type); (id, None) for a passage as is."""
    base, mark, kind = passage_id.rpartition("#")
    return (base, kind) if mark and kind in TWIN_TYPES else (passage_id, None)


class CaseReader:
    """Answers a document-QA task from the cases' facts (see the module docstring)."""

    name = "simulated"

    def __init__(self, cases: Iterable[Case]):
        self.facts: dict[tuple[str, str, str], str] = {}
        for case in cases:
            for step, question in case.questions.items():
                for gold in sorted(case.gold[step]):
                    # Two cases asking the same of the same passage: the first case's answer is the fact.
                    self.facts.setdefault((step, question, gold), case.answers[step])

    def __repr__(self) -> str:
        return f"CaseReader({len(self.facts)} facts)"

    def read(self, task: ReadingTask) -> dict[str, str]:
        field = task.fields[0]
        answer = NONE if field.choices else ""
        for pid in task.passage_ids:
            base, twin = twin_of(pid)
            fact = self.facts.get((task.step, task.message, base))
            if fact is not None:
                answer = fact if twin is None else other_value(fact, field)
                break
        if task.slip:
            answer = other_value(answer, field)
        return {field.name: answer}
