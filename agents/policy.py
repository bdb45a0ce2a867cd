"""What a decide node asks its policy: read these passages, answer these fields.

A policy is the part of an agent that reads text: the simulated reader (`agents.reader`, offline, deterministic)
or a language model behind an OpenAI-compatible endpoint (`agents.openai_policy`). Both answer a
`ReadingTask` with a dict of field values; the node then applies the workflow's rules to that answer. The node
never draws random numbers: a reasoning slip, when the engine drew one, arrives as `ReadingTask.slip`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sim.core.errors import CascadeError


@dataclass(frozen=True)
class Field:
    """One answer field. `choices` lists the allowed values (empty: free text, numbers as digits)."""

    name: str
    description: str
    choices: tuple[str, ...] = ()

    def accepts(self, value: object) -> bool:
        return isinstance(value, str) and (not self.choices or value in self.choices)


@dataclass(frozen=True)
class ReadingTask:
    """A decide step's question to its policy.

    `passages` is the context exactly as retrieved (it may hold a structural twin, or lack the right passage);
    `message` is the customer's own text where there is one. `kind` names the reading ("indemnity",
    "intent", ...): the simulated reader dispatches on it, a language model reads `instruction` instead.
    """

    step: str
    kind: str
    instruction: str
    passages: tuple[str, ...]
    fields: tuple[Field, ...]
    message: str = ""
    slip: bool = False
    passage_ids: tuple[str, ...] = ()
    """The ids of `passages` (a twin's: `original#error_type`): never shown to a model; the offline stand-in
    of a document-QA agent reads its case's facts by them (`agents.case_reader`)."""

    def json_schema(self) -> dict:
        """The JSON Schema of a valid answer: every field required, nothing else allowed."""
        props = {f.name: {"type": "string", "description": f.description, **({"enum": list(f.choices)}
                                                                             if f.choices else {})}
                 for f in self.fields}
        return {"type": "object", "properties": props, "required": [f.name for f in self.fields],
                "additionalProperties": False}

    def invalid_fields(self, answer: object) -> list[str]:
        """What is wrong with `answer` as a reply to this task (empty: valid)."""
        if not isinstance(answer, dict):
            return [f"the reply is a JSON {type(answer).__name__}, not an object"]
        problems = [f"{f.name}: missing" for f in self.fields if f.name not in answer]
        problems += [f"{f.name}: {answer[f.name]!r} is not one of {', '.join(f.choices)}" if f.choices
                     else f"{f.name}: {answer[f.name]!r} is not a string"
                     for f in self.fields if f.name in answer and not f.accepts(answer[f.name])]
        problems += [f"{k}: not a field of this task" for k in answer if k not in {f.name for f in self.fields}]
        return problems


class Policy(Protocol):
    """Reads a task's passages and answers its fields."""

    name: str

    def read(self, task: ReadingTask) -> dict[str, str]:
        """The answer, one string per field of `task` (raises InvalidReply when no valid answer came)."""
        ...


class InvalidReply(Exception):
    """The policy answered, but not with a valid reply (malformed JSON, missing or disallowed fields).

    Not a user error: the node records it as that step's outcome (a wrong output) and the run goes on.
    """


class PolicyUnavailable(CascadeError):
    """The policy cannot answer at all: no endpoint configured, server down, retries or budget exhausted."""
