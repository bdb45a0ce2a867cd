"""The cases of a document-QA agent: one row of the user's case file per episode, validated row by row.

A case gives, per decide step D, `D.question` (what the agent is asked, also its search), `D.gold` (the ids of
the passages that answer it, separated by `|`) and `D.answer` (the right answer, of the step's answer type);
for a step answering a party, `D.parties` (the parties to choose from, `|`-separated); optionally `id`, `group`
(with a grouped corpus: the group, e.g. the contract, its searches stay within), and per
act step A with a `map`, `A.action` (the right action, when it is not the one the right answer maps to: leave
it empty otherwise). Every problem names the file, the line and the column, and what would be right.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sim.core.errors import DataFileError, Problem
from sim.core.limits import MAX_PASSAGE_CHARS, MAX_PASSAGES
from sim.core.table_source import Limits, read_table
from sim.scenario.checks import did_you_mean
from sim.scenario.model import Agent

NONE = "none"
"""The answer when the passages read do not say (a choice of every yes_no, label and party question)."""
SEPARATOR = "|"
"""Between the gold passage ids, and between the parties, of one cell."""
CASE_LIMITS = Limits(rows=MAX_PASSAGES, chars=MAX_PASSAGE_CHARS)
"""Caps of a case file: those of a corpus file (records, characters per value)."""


@dataclass(frozen=True)
class Case:
    """One episode: per decide step its question, gold passages, right answer (and parties); per act step with a
    map, the right action where the case gives one."""

    id: str
    line: int
    group: str | None
    """The group its searches stay within (None: the whole corpus)."""
    questions: Mapping[str, str]
    gold: Mapping[str, frozenset[str]]
    answers: Mapping[str, str]
    parties: Mapping[str, tuple[str, ...]]
    actions: Mapping[str, str]


def canonical_number(text: str) -> str | None:
    """`text` as a plain decimal ("1,000.50" -> "1000.5", "$30" -> "30"), or None when it is not a number."""
    cleaned = text.strip().lstrip("$€£").replace(",", "").replace("_", "").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return format(value.normalize(), "f") if value != 0 else "0"


def read_cases(path: str | Path, agent: Agent, decide_steps: list[str], act_steps: list[str],
               passages: Mapping[str, object], outdated: frozenset[str], corpus_name: str,
               groups: Mapping[str, str] | None = None) -> tuple[Case, ...]:
    """The cases of `path` for a workflow with these decide and act steps, over a corpus whose passage ids are
    `passages` (id -> anything), whose `outdated` ids are only older versions, and whose passages are grouped
    by `groups` (id -> group; None: no groups, and a case file may not name one)."""
    required = [f"{d}.{c}" for d in decide_steps for c in ("question", "gold", "answer")]
    required += [f"{d}.parties" for d in decide_steps if agent.answers[d].type == "party"]
    optional = ["id", "group", *(f"{a}.action" for a in act_steps)]
    table = read_table(path, "case", required, optional, limits=CASE_LIMITS,
                       hint=" (a case file has, per decide step D, the columns D.question, D.gold and D.answer)",
                       may_be_empty=["group", *(f"{a}.action" for a in act_steps)])
    file = table.file
    known_groups = set(groups.values()) if groups is not None else set()
    if "group" in table.columns and groups is None:
        raise DataFileError(Problem(file, table.records[0].line, "group", "a case names a group when the corpus "
                                    "has groups: set agent.corpus.group_column in the scenario, or remove the column"))
    for a in act_steps:
        if f"{a}.action" in table.columns and not (a in agent.actions and agent.actions[a].map):
            raise DataFileError(Problem(file, table.records[0].line, f"{a}.action",
                                        f"a right action is read for an act step with a map (agent.actions.{a}.map "
                                        "in the scenario); remove the column or add the map"))
    cases, seen = [], {}
    for r in table.records:
        v = r.values

        def bad(column: str, message: str, line: int = r.line) -> DataFileError:
            return DataFileError(Problem(file, line, column, message))

        case_id = v.get("id") or f"case-{r.line}"
        if case_id in seen:
            raise bad("id", f"case id {case_id[:80]!r} appears twice (lines {seen[case_id]} and {r.line})")
        seen[case_id] = r.line
        group = v.get("group") or None
        if group is not None and group not in known_groups:
            raise bad("group", f"group {group[:80]!r} is not a group of the corpus {corpus_name}"
                               f"{did_you_mean(group, _near(group, dict.fromkeys(known_groups)))}")
        gold, answers, parties = {}, {}, {}
        for d in decide_steps:
            ids = [g.strip() for g in v[f"{d}.gold"].split(SEPARATOR)]
            for g in ids:
                if not g:
                    raise bad(f"{d}.gold", f"an empty passage id; separate gold ids with '{SEPARATOR}'")
                if g in outdated:
                    raise bad(f"{d}.gold", f"gold passage {g[:80]!r} is an outdated version (another passage of "
                                           f"{corpus_name} replaces it); the gold passage is the current one")
                if g not in passages:
                    raise bad(f"{d}.gold", f"gold passage {g[:80]!r} is not in the corpus {corpus_name}"
                                           f"{did_you_mean(g, _near(g, passages))}")
                if group is not None and groups[g] != group:
                    raise bad(f"{d}.gold", f"gold passage {g[:80]!r} is in group {groups[g][:80]!r}, not in the "
                                           f"case's group {group[:80]!r}, where its searches stay")
            gold[d] = frozenset(ids)
            answer = agent.answers[d]
            given = v[f"{d}.answer"]
            if answer.type == "party":
                parties[d] = tuple(dict.fromkeys(p.strip() for p in v[f"{d}.parties"].split(SEPARATOR)
                                                 if p.strip()))
                if len(parties[d]) < 2 or NONE in parties[d]:
                    raise bad(f"{d}.parties", f"{v[f'{d}.parties'][:80]!r}: at least two distinct parties, "
                                              f"separated by '{SEPARATOR}' ('{NONE}' is not a party)")
            answers[d] = _answer(given, answer.type, answer.labels, parties.get(d, ()), bad, f"{d}.answer")
        actions = {}
        for a in act_steps:
            given = v.get(f"{a}.action", "")
            if given:
                allowed = sorted(set(agent.actions[a].map.values()) | {NONE})
                if given not in allowed:
                    raise bad(f"{a}.action", f"{given[:80]!r} is not an action of '{a}'{did_you_mean(given, allowed)}")
                actions[a] = given
        cases.append(Case(case_id, r.line, group, {d: v[f"{d}.question"] for d in decide_steps}, gold, answers, parties,
                          actions))
    return tuple(cases)


def _answer(given: str, kind: str, labels: list[str], parties: tuple[str, ...], bad, column: str) -> str:
    """The right answer in its canonical form (yes/no lower case, a number as a plain decimal)."""
    if kind == "yes_no":
        if given.lower() not in ("yes", "no"):
            raise bad(column, f"{given[:80]!r} is not yes or no")
        return given.lower()
    if kind == "number":
        number = canonical_number(given)
        if number is None:
            raise bad(column, f"{given[:80]!r} is not a number (digits, optionally with a sign, a decimal point "
                              "and thousands commas)")
        return number
    choices = labels if kind == "label" else list(parties)
    if given not in choices:
        raise bad(column, f"{given[:80]!r} is not one of the {'labels' if kind == 'label' else 'parties'}"
                          f"{did_you_mean(given, choices)}")
    return given


def _near(word: str, ids: Mapping[str, object]) -> list[str]:
    """A few ids to suggest: those sharing the word's first characters (a corpus can hold a million ids)."""
    prefix = word[:max(3, len(word) // 2)]
    return [i for i in ids if i.startswith(prefix)][:200]
