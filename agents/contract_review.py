"""Contract review over real text: the built-in `contract_review` workflow as an agent reads it.

One episode is one contract of the built-in contract corpus. The agent finds each reviewed clause within that
contract (the `contract` store, grouped by contract), reads it with the playbook of the contract's family (the
`playbook` store, current edition only), records the clause's facts and a position (accept / redline) by the
playbook's rule, then sends redlines, signs, and writes the notice periods to the obligations register.
We are the paying party (Customer, Licensee, ...): the playbook protects that side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from agents.domain import ActSpec, DecideSpec, Domain, Retrieval, RetrieveSpec, Store
from agents.playbook import playbook_id, playbook_passages
from agents.policy import Field, ReadingTask
from agents.reader import NONE
from sim.retrieval.corpora.contracts import CLAUSE_TYPES, LAWS, contract_corpus, contract_parties
from sim.retrieval.corpus import Passage

# Each reviewed clause is found by a question that names its subject, never its facts.
_CLAUSE_QUERIES = {
    "indemnity": "indemnify defend hold harmless third-party claim notice of the claim",
    "liability_cap": "What is the limitation of liability: the cap on total liability for direct damages?",
    "termination": "Can a party terminate for convenience or only for material breach? termination notice period "
                   "and cure period",
    "renewal": "What is the initial term of the agreement and does it renew automatically?",
    "governing_law": "Which law governs the agreement and which courts have jurisdiction over disputes?",
}

CLAUSES_READ = 3
"""Passages of the contract the agent reads per clause question (the clause need not rank first)."""

_INSTRUCTIONS = {
    "indemnity": "From the clause, who gives the indemnity (indemnitor), who receives it (indemnitee), and is the "
                 "indemnitor obliged to indemnify (yes/no)?",
    "liability_cap": "From the clause: whose liability is capped, the cap in USD (digits, or empty if the cap is "
                     "a number of months of fees) and the months of fees (digits, or empty). From the playbook: "
                     "the smallest acceptable cap in USD and in months of fees.",
    "termination": "From the clause: who may terminate (a party, or 'either party'), may they terminate for "
                   "convenience (yes/no), and the notice or cure period in days. From the playbook: the "
                   "shortest acceptable notice for the counterparty's termination for convenience, in days.",
    "renewal": "From the clause: does the agreement renew automatically (yes/no), and the notice period in days. "
               "From the playbook: the longest acceptable notice period for stopping a renewal, in days.",
    "governing_law": "From the clause: the governing law and whether the courts' jurisdiction is exclusive. From "
                     "the playbook: the approved laws, separated by '; '.",
}


@dataclass(frozen=True)
class Contract:
    """One episode: a contract, its parties (`a` delivers, `b` pays: us) and its clauses by type."""

    index: int
    a: str
    b: str
    agreement: str
    clauses: Mapping[str, Passage]
    playbook: Passage

    @property
    def id(self) -> str:
        return f"contract-{self.index:04d}"

    @property
    def group(self) -> str:
        return self.id


def _fields(kind: str, contract: Contract) -> tuple[Field, ...]:
    parties = (contract.a, contract.b, NONE)
    yes_no = ("yes", "no")
    return {
        "indemnity": (Field("indemnitor", "the party that indemnifies", parties),
                      Field("indemnitee", "the party indemnified", parties),
                      Field("obligated", "is the indemnitor obliged to indemnify", yes_no)),
        "liability_cap": (Field("capped_party", "the party whose liability is capped", parties),
                          Field("cap_usd", "the cap in USD, digits only; empty if none"),
                          Field("cap_months", "the cap as months of fees, digits only; empty if none"),
                          Field("playbook_min_cap_usd", "playbook: smallest acceptable cap in USD, digits"),
                          Field("playbook_min_months", "playbook: smallest acceptable cap in months of fees")),
        "termination": (Field("terminating_party", "who may terminate", (contract.a, contract.b, "either party",
                                                                         NONE)),
                        Field("for_convenience", "may they terminate for convenience", yes_no),
                        Field("notice_days", "the notice or cure period in days, digits"),
                        Field("playbook_min_notice_days", "playbook: shortest acceptable notice in days")),
        "renewal": (Field("auto_renew", "does the agreement renew automatically", yes_no),
                    Field("notice_days", "the notice period in days, digits"),
                    Field("playbook_max_notice_days", "playbook: longest acceptable notice period in days")),
        "governing_law": (Field("law", "the governing law", LAWS + (NONE,)),
                          Field("jurisdiction", "the courts' jurisdiction", ("exclusive", "non-exclusive", NONE)),
                          Field("playbook_approved_laws", "playbook: approved laws separated by '; '")),
    }[kind]


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _position(kind: str, facts: Mapping[str, str], playbook: Mapping[str, str], contract: Contract) -> str:
    """The playbook's rule: "accept" or "redline" (an unreadable threshold means redline)."""
    a, b = contract.a, contract.b
    if kind == "indemnity":
        ok = facts["indemnitor"] == a and facts["obligated"] == "yes"
    elif kind == "liability_cap":
        cap, months = _number(facts["cap_usd"]), _number(facts["cap_months"])
        min_cap, min_months = _number(playbook["min_cap"]), _number(playbook["min_months"])
        ok = facts["capped_party"] == b or (facts["capped_party"] == a and (
            (cap is not None and min_cap is not None and cap >= min_cap)
            or (months is not None and min_months is not None and months >= min_months)))
    elif kind == "termination":
        notice, minimum = _number(facts["notice_days"]), _number(playbook["min_notice"])
        exposed = facts["for_convenience"] == "yes" and facts["terminating_party"] in (a, "either party")
        ok = facts["terminating_party"] != NONE and (
            not exposed or (notice is not None and minimum is not None and notice >= minimum))
    elif kind == "renewal":
        notice, maximum = _number(facts["notice_days"]), _number(playbook["max_renewal"])
        ok = facts["auto_renew"] == "no" or (notice is not None and maximum is not None and notice <= maximum)
    else:
        approved = [x.strip() for x in playbook["laws"].split(";") if x.strip()]
        ok = facts["law"] in approved and facts["jurisdiction"] == "exclusive"
    return "accept" if ok else "redline"


_DECISION_FIELDS = {
    "indemnity": ("indemnitor", "indemnitee", "obligated"),
    "liability_cap": ("capped_party", "cap_usd", "cap_months"),
    "termination": ("terminating_party", "for_convenience", "notice_days"),
    "renewal": ("auto_renew", "notice_days"),
    "governing_law": ("law", "jurisdiction"),
}
# Playbook answer field -> playbook fact.
_THRESHOLDS = {"playbook_min_cap_usd": "min_cap", "playbook_min_months": "min_months",
               "playbook_min_notice_days": "min_notice", "playbook_max_notice_days": "max_renewal",
               "playbook_approved_laws": "laws"}
_EMPTY_PLAYBOOK = dict.fromkeys(_THRESHOLDS.values(), "")


def _decision(kind: str, contract: Contract, facts: Mapping[str, str], playbook: Mapping[str, str]) -> dict:
    return {**{f: facts.get(f, "") for f in _DECISION_FIELDS[kind]},
            "position": _position(kind, {f: facts.get(f, "") for f in _DECISION_FIELDS[kind]},
                                  _EMPTY_PLAYBOOK | dict(playbook), contract)}


def _true_facts(kind: str, clause: Passage) -> dict[str, str]:
    f = clause.facts
    return {
        "indemnity": lambda: {"indemnitor": f["indemnitor"], "indemnitee": f["indemnitee"], "obligated": "yes"},
        "liability_cap": lambda: {"capped_party": f["capped_party"], "cap_usd": f.get("cap", ""),
                                  "cap_months": f.get("cap_months", "")},
        "termination": lambda: {"terminating_party": f["terminating_party"],
                                "for_convenience": f["for_convenience"], "notice_days": f["notice_days"]},
        "renewal": lambda: {"auto_renew": f["auto_renew"], "notice_days": f["notice_days"]},
        "governing_law": lambda: {"law": f["law"], "jurisdiction": f["jurisdiction"]},
    }[kind]()


# --- specs ----------------------------------------------------------------------------------------------------

def _ask_clause(kind: str, contract: Contract, outputs) -> Retrieval:
    return Retrieval(_CLAUSE_QUERIES[kind], (contract.group,), frozenset({contract.clauses[kind].id}))


def _playbook_query(contract: Contract) -> str:
    return f"playbook: we are the {contract.b}, the counterparty is the {contract.a}"


def _ask_playbook(contract: Contract, outputs) -> Retrieval:
    return Retrieval(_playbook_query(contract), ("current",), frozenset({contract.playbook.id}))


def _texts(outputs, step: str) -> tuple[str, ...]:
    return tuple(p.text for p in outputs[step].passages)


_PREAMBLE = ("The passages are the contract passages found for the clause, best match first, then the company's "
             "negotiation playbook. Read the clause that the question is about. ")


def _task(kind: str, contract: Contract, outputs) -> ReadingTask:
    context = _texts(outputs, f"retrieve_{kind}") + _texts(outputs, "retrieve_playbook")
    return ReadingTask(f"decide_{kind}", kind, _PREAMBLE + _INSTRUCTIONS[kind], context, _fields(kind, contract))


def _decide(kind: str, contract: Contract, answer: Mapping[str, str], outputs) -> dict[str, str]:
    playbook = {fact: answer.get(name, "") for name, fact in _THRESHOLDS.items()}
    return _decision(kind, contract, answer, playbook)


def _truth(kind: str, contract: Contract) -> dict[str, str]:
    return _decision(kind, contract, _true_facts(kind, contract.clauses[kind]), contract.playbook.facts)


def _positions(decisions: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    return {kind: decisions[kind].get("position", "") for kind in CLAUSE_TYPES}


def _obligations(termination: Mapping[str, str], renewal: Mapping[str, str]) -> dict[str, str]:
    return {"termination_notice_days": termination.get("notice_days", ""),
            "auto_renew": renewal.get("auto_renew", ""), "renewal_notice_days": renewal.get("notice_days", "")}


def _decisions(outputs) -> dict[str, Mapping[str, str]]:
    return {kind: outputs[f"decide_{kind}"].decision for kind in CLAUSE_TYPES}


def _true_decisions(contract: Contract) -> dict[str, dict[str, str]]:
    return {kind: _truth(kind, contract) for kind in CLAUSE_TYPES}


def contract_review_domain(contracts: int = 60, seed: int = 0) -> Domain:
    """The contract-review agent over `contracts` contracts of the built-in corpus (seeded by `seed`)."""
    corpus = contract_corpus(contracts, seed)
    playbooks = playbook_passages(seed)
    by_id = {p.id: p for p in playbooks}
    clauses: dict[int, dict[str, Passage]] = {}
    for p in corpus.passages:
        index = int(p.id.split("/")[0].split("-")[1])
        clauses.setdefault(index, {})[p.topic] = p
    episodes = []
    for index in range(contracts):
        a, b, agreement = contract_parties(index, seed)
        episodes.append(Contract(index, a, b, agreement, clauses[index], by_id[playbook_id(a, b)]))
    contract_store = Store.of(corpus.passages, {p.id: p.id.split("/")[0] for p in corpus.passages})
    playbook_store = Store.of(playbooks, {p.id: p.topic for p in playbooks})

    specs: dict = {"retrieve_playbook": RetrieveSpec("playbook", 1, _ask_playbook)}
    for kind in CLAUSE_TYPES:
        specs[f"retrieve_{kind}"] = RetrieveSpec("contract", CLAUSES_READ, partial(_ask_clause, kind))
        specs[f"decide_{kind}"] = DecideSpec(partial(_task, kind), partial(_decide, kind),
                                             partial(_truth, kind))
    specs["send_redlines"] = ActSpec(lambda o: _positions(_decisions(o)),
                                     lambda c: _positions(_true_decisions(c)))
    specs["sign_contract"] = specs["send_redlines"]
    specs["record_obligations"] = ActSpec(
        lambda o: _obligations(o["decide_termination"].decision, o["decide_renewal"].decision),
        lambda c: _obligations(_truth("termination", c), _truth("renewal", c)))

    same_parties: dict[tuple[str, str, str], list[Passage]] = {}
    for e in episodes:
        for kind, p in e.clauses.items():
            same_parties.setdefault((e.a, e.b, kind), []).append(p)

    def stale_of(retriever: str, passage: Passage) -> Passage | None:
        """Playbook: its superseded edition. Clause: the same clause between the same parties in an earlier
        contract (an outdated template), if the corpus has one."""
        if retriever == "playbook":
            return by_id.get(passage.id.replace("/current", "/superseded"))
        index = int(passage.id.split("/")[0].split("-")[1])
        e = episodes[index]
        return next((p for p in same_parties[(e.a, e.b, passage.topic)] if p.id != passage.id), None)

    queries = tuple(_CLAUSE_QUERIES.values()) + tuple(sorted({_playbook_query(e) for e in episodes}))
    return Domain("contract_review", {"contract": contract_store, "playbook": playbook_store}, tuple(episodes),
                  specs, stale_of, queries)
