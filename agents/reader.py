"""The simulated reader: an offline, deterministic policy that reads passages the way a context-trusting LLM
does.

It extracts the decision-relevant facts from exactly the text it is given (who indemnifies whom, whether an
obligation is negated, the cap, the notice period, the law; a ticket's intent from its past examples, the
figures and refund rule of a KB article) and never consults ground truth, so a structural twin in its context
misleads it just as it would mislead a model that trusts its context. On the built-in corpora's clean text it
is exact (tested). A reasoning slip, drawn by the engine, changes its first multiple-choice answer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from agents.policy import ReadingTask
from sim.retrieval.corpora.support import SUBJECTS

NONE = "none"

# --- contract clauses ---------------------------------------------------------------------------------------


def _parties(task: ReadingTask) -> list[str]:
    """The contract's two parties: the choices of the task's first party field."""
    return [c for c in task.fields[0].choices if c not in (NONE, "either party")]


def _alt(names: list[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


def _canonical(found: str, names: list[str]) -> str:
    return next((n for n in names if n.lower() == found.lower()), found.lower())


def _other(party: str, parties: list[str]) -> str:
    rest = [p for p in parties if p != party]
    return rest[0] if party in parties and rest else NONE


def _days(text: str) -> str:
    m = re.search(r"\((\d+)\) days", text)
    return m[1] if m else ""


# How a reader recognises, among the passages it was given, the clause it was asked about.
_SIGNATURES = {"indemnity": r"indemnif", "liability_cap": r"\bliability\b", "termination": r"for convenience",
               "renewal": r"\brenew", "governing_law": r"\bgovern"}
_PLAYBOOK = "Negotiation playbook"


def _clause(task: ReadingTask) -> str:
    """The first passage (in rank order) that reads like the asked clause; else the first passage."""
    clauses = [p for p in task.passages if not p.startswith(_PLAYBOOK)]
    return next((p for p in clauses if re.search(_SIGNATURES[task.kind], p, re.IGNORECASE)),
                clauses[0] if clauses else "")


def _indemnity(task: ReadingTask) -> dict[str, str]:
    text, parties = _clause(task), _parties(task)
    p = _alt(parties)
    active = re.search(rf"\b({p})\s+(?:shall|will|must|may)(\s+not)?\s+(?:indemnify|defend)\b", text)
    passive = re.search(rf"\b({p})\s+(?:shall|will|must|may)(\s+not)?\s+be\s+indemnified\b[^.]*?\bby\s+({p})\b",
                        text)
    if active:
        indemnitor, negated = active[1], bool(active[2])
        indemnitee = _other(indemnitor, parties)
    elif passive:
        indemnitee, negated, indemnitor = passive[1], bool(passive[2]), passive[3]
    else:
        indemnitor = indemnitee = NONE
        negated = True
    return {"indemnitor": indemnitor, "indemnitee": indemnitee, "obligated": "no" if negated else "yes"}


def _liability_cap(task: ReadingTask) -> dict[str, str]:
    text, parties = _clause(task), _parties(task)
    p = _alt(parties)
    capped = (re.search(rf"\b({p})['’]s total aggregate liability", text)
              or re.search(rf"maximum liability of ({p})\b", text)
              or re.search(rf"liability of ({p}) to\b", text))
    amount = re.search(r"\$([\d,]+)", text)
    months = re.search(r"\((\d+)\) months preceding", text)
    return {"capped_party": capped[1] if capped else NONE, "cap_usd": amount[1].replace(",", "") if amount else "",
            "cap_months": months[1] if months else ""}


def _termination(task: ReadingTask) -> dict[str, str]:
    text, parties = _clause(task), _parties(task)
    p = _alt(parties + ["either party"])
    party = (re.search(rf"\b({p})\s+may\s+(?:not\s+)?terminate\b", text, re.IGNORECASE)
             or re.search(rf"\bterminated\s+by\s+({p})\b", text, re.IGNORECASE))
    refused = re.search(r"\b(?:not|no|neither|never|cannot)\b[^.]*\bfor convenience", text, re.IGNORECASE)
    convenience = "for convenience" in text.lower() and not refused
    return {"terminating_party": _canonical(party[1], parties) if party else NONE,
            "for_convenience": "yes" if convenience else "no", "notice_days": _days(text)}


def _renewal(task: ReadingTask) -> dict[str, str]:
    text = _clause(task)
    auto = r"(?:renew\s+automatically|automatically\s+renew)"
    negated = re.search(rf"\b(?:not|never)\s+{auto}", text, re.IGNORECASE)
    stated = re.search(auto, text, re.IGNORECASE)
    return {"auto_renew": "yes" if stated and not negated else "no", "notice_days": _days(text)}


def _governing_law(task: ReadingTask) -> dict[str, str]:
    text = _clause(task)
    laws = [c for c in task.fields[0].choices if c != NONE]
    m = re.search(r"laws of (.+?)(?:,| govern| without|\.|$)", text)
    law = next((name for name in laws if m and name in m[1]), NONE)
    lower = text.lower()
    jurisdiction = "non-exclusive" if "non-exclusive" in lower else "exclusive" if "exclusive" in lower else NONE
    return {"law": law, "jurisdiction": jurisdiction}


def _playbook(task: ReadingTask) -> dict[str, str]:
    """The playbook thresholds the task asks for, from the playbook passage ("" where not stated)."""
    text = next((p for p in task.passages if p.startswith(_PLAYBOOK)), "")

    def find(pattern: str) -> str:
        m = re.search(pattern, text)
        return m[1].replace(",", "") if m else ""

    found = {"playbook_min_cap_usd": find(r"at least USD ([\d,]+)"),
             "playbook_min_months": find(r"fees of at least (\d+) months"),
             "playbook_min_notice_days": find(r"at least (\d+) days' notice"),
             "playbook_max_notice_days": find(r"no more than (\d+) days"),
             "playbook_approved_laws": find(r"approved laws are (.+?), with")}
    return {f.name: found[f.name] for f in task.fields if f.name in found}


# --- support tickets ----------------------------------------------------------------------------------------

_RESOLVED = re.compile(r"^Resolved as (\w+):")
_FIGURE = re.compile(r"£\d+(?:\.\d+)?|\d+(?:\.\d+)?%|\d+(?:\.\d+)?")
_REFUND = re.compile(r"\brefund(?:s|ed|able)?\b", re.IGNORECASE)
_NEGATED_BEFORE = re.compile(r"\b(?:not|cannot|can't|never|no)\b(?:\s+\w+){0,3}\s*$", re.IGNORECASE)


def _intent(task: ReadingTask) -> dict[str, str]:
    """The most frequent intent among the past tickets shown (ties: the higher-ranked example)."""
    seen = [m[1] for m in (_RESOLVED.match(p) for p in task.passages) if m]
    counts = Counter(seen)
    best = max(seen, key=lambda i: (counts[i], -seen.index(i))) if seen else task.fields[0].choices[0]
    return {"intent": best}


def _priority(task: ReadingTask) -> dict[str, str]:
    policy = task.passages[0] if task.passages else ""
    urgent = re.search(r"tickets about (.+?) are urgent", policy)
    intent = re.search(r"Intent: (\w+)", task.message)
    names = re.split(r",\s*|\s+or\s+", urgent[1]) if urgent else []
    return {"priority": "urgent" if intent and intent[1] in names else "normal"}


def refund_rule(text: str) -> str:
    """"yes" when the text grants a refund, "no" when it refuses one or says nothing about refunds."""
    found = False
    for m in _REFUND.finditer(text):
        found = True
        if _NEGATED_BEFORE.search(text[max(0, m.start() - 30):m.start()]):
            return "no"
    return "yes" if found else "no"


def figures(text: str) -> str:
    """Every amount, percentage and number the text states, in order: "£5, 7"."""
    return ", ".join(_FIGURE.findall(text))


def _article(task: ReadingTask) -> str:
    """The passage about what the customer's message is about: the first (in rank order) that names the same
    product, destination or payment type (the bank's vocabulary); else the first passage."""
    if not task.passages:
        return ""
    message = task.message.lower()
    subject = next((s for s in SUBJECTS if s.lower() in message), None)
    if subject is not None:
        for p in task.passages:
            if subject.lower() in p.lower():
                return p
    return task.passages[0]


def _reply(task: ReadingTask) -> dict[str, str]:
    text = _article(task)
    return {"figures": figures(text), "refund": refund_rule(text)}


def _refund(task: ReadingTask) -> dict[str, str]:
    return {"refund": refund_rule(_article(task))}


_READERS: dict[str, Callable[[ReadingTask], dict[str, str]]] = {
    "indemnity": _indemnity, "liability_cap": _liability_cap, "termination": _termination,
    "renewal": _renewal, "governing_law": _governing_law,
    "intent": _intent, "priority": _priority, "reply": _reply, "refund": _refund,
}
READING_KINDS = tuple(_READERS)


class SimulatedReader:
    """The offline default policy (see the module docstring)."""

    name = "simulated"

    def read(self, task: ReadingTask) -> dict[str, str]:
        if task.kind not in _READERS:
            raise ValueError(f"the simulated reader has no reading '{task.kind}'; it reads: "
                             f"{', '.join(READING_KINDS)}")
        answer = _READERS[task.kind](task) | _playbook(task)
        answer = {f.name: answer.get(f.name, "") for f in task.fields}
        if task.slip:
            answer = _slipped(task, answer)
        return answer


def _slipped(task: ReadingTask, answer: dict[str, str]) -> dict[str, str]:
    """The answer with its first multiple-choice field moved to the next choice: a reasoning error."""
    for f in task.fields:
        if len(f.choices) > 1:
            i = f.choices.index(answer[f.name]) if answer[f.name] in f.choices else -1
            return answer | {f.name: f.choices[(i + 1) % len(f.choices)]}
    return answer
