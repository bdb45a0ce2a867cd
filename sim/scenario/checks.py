"""Cross-reference checks of a structurally valid scenario: each problem names its field path."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sim.core import limits
from sim.core.error_types import DEFAULT_KEY, REASONING, RETRIEVAL_ERROR_TYPES, all_error_types
from sim.scenario.difficulty import Levels
from sim.scenario.graph import find_cycle, topological_order
from sim.scenario.model import MAX_LEVELS, ActStep, DecideStep, RetrieveStep, Scenario, VerifyStep

# Rates are written by hand in decimal: allow for binary rounding when they add up to exactly 1.
_SUM_TOLERANCE = 1e-9

Located = tuple[tuple[str | int, ...], str]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' — did you mean 'x'?' when a close match exists, else a list of the valid choices."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f" — did you mean '{close[0]}'?"
    shown = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
    return f" (expected one of: {shown})" if choices else ""


def check_scenario(s: Scenario) -> list[Located]:
    """Every cross-reference problem in `s`, as (field path, message) pairs; [] when the scenario is sound."""
    out = _check_error_types(s) + _check_retrievers(s)
    steps = s.workflow.steps
    if not steps:
        return out + [(("workflow", "steps"), "the workflow has no steps")]
    references, consumers = _check_references(steps)
    out += references
    references_ok = not out  # a cycle or an unused output means something only once every name resolves
    if references_ok:
        out += _check_cycle(steps)
    out += _check_steps(s, consumers, references_ok)
    if references_ok and s.agent is not None:
        out += _check_agent(s, consumers)
    return out + _check_difficulty(s) + _check_costs(s) + _check_timeline(s) + _check_variants(s)


def _check_error_types(s: Scenario) -> list[Located]:
    return [(("error_types", i), f"'{t}' is built in already; declare only new error types")
            for i, t in enumerate(s.error_types) if t in RETRIEVAL_ERROR_TYPES or t == REASONING]


def _check_retrievers(s: Scenario) -> list[Located]:
    out: list[Located] = []
    retrieval_types = set(RETRIEVAL_ERROR_TYPES) | set(s.error_types)
    for name, r in s.retrievers.items():
        for t in r.rates:
            if t not in retrieval_types:
                hint = (" ('reasoning' errors belong to decide steps: base_error_rate)" if t == REASONING
                        else did_you_mean(t, retrieval_types) + " — or declare it under error_types")
                out.append((("retrievers", name, "rates", t), f"unknown error type '{t}'{hint}"))
        if r.error_rate > 1.0 + _SUM_TOLERANCE:
            out.append((("retrievers", name, "rates"),
                        f"rates sum to {r.error_rate:.6g}, past 1: a query has at most one error, so the "
                        "probabilities of the error types must add up to at most 1"))
    return out


def _check_references(steps: list) -> tuple[list[Located], dict[str, list[str]]]:
    """Duplicate step ids and inputs that name no step (or themselves, or twice); the consumers of each step."""
    out: list[Located] = []
    index_of: dict[str, int] = {}
    for i, st in enumerate(steps):
        if st.id in index_of:
            out.append((("workflow", "steps", i, "id"),
                        f"duplicate step id '{st.id}' (also step {index_of[st.id]}); step ids must be unique"))
        else:
            index_of[st.id] = i
    ids = list(index_of)
    consumers: dict[str, list[str]] = {sid: [] for sid in ids}
    for i, st in enumerate(steps):
        for j, src in enumerate(st.inputs):
            where = ("workflow", "steps", i, "inputs", j)
            if src == st.id:
                out.append((where, f"step '{st.id}' lists itself as an input"))
            elif src not in index_of:
                out.append((where, f"unknown input '{src}'{did_you_mean(src, ids)}"))
            elif src in st.inputs[:j]:
                out.append((where, f"input '{src}' is listed twice"))
            else:
                consumers[src].append(st.id)
    return out, consumers


def _check_cycle(steps: list) -> list[Located]:
    by_id = {st.id: st for st in steps}
    ids = list(by_id)
    cycle = find_cycle({sid: by_id[sid].inputs for sid in ids})
    if cycle:
        first = next(i for i, st in enumerate(steps) if st.id == cycle[0])
        return [(("workflow", "steps", first, "inputs"),
                 "the workflow has a cycle: " + " -> ".join(cycle) + "; a workflow must be acyclic")]
    assert topological_order({sid: by_id[sid].inputs for sid in ids}, ids) is not None
    return []


def _check_steps(s: Scenario, consumers: dict[str, list[str]], references_ok: bool) -> list[Located]:
    """Each step's own fields: its retriever, its type tables, what a verify step reviews, whether its output
    is used; then the retrievers no step uses."""
    out: list[Located] = []
    every_type = set(all_error_types(s.error_types))
    by_id = {st.id: st for st in s.workflow.steps}
    used_retrievers: set[str] = set()
    for i, st in enumerate(s.workflow.steps):
        here = ("workflow", "steps", i)
        if isinstance(st, RetrieveStep):
            used_retrievers.add(st.retriever)
            if st.retriever not in s.retrievers:
                out.append((here + ("retriever",),
                            f"unknown retriever '{st.retriever}'{did_you_mean(st.retriever, s.retrievers)}; "
                            "define it under retrievers"))
        if isinstance(st, DecideStep):
            out += _check_type_table(st.susceptibility, here + ("susceptibility",), every_type)
            for src, table in st.susceptibility_by_input.items():
                where = here + ("susceptibility_by_input", src)
                if src not in st.inputs:
                    out.append((where, f"'{src}' is not an input of this step (its inputs: "
                                       f"{', '.join(st.inputs)})"))
                out += _check_type_table(table, where, every_type, needs_default=False)
        if isinstance(st, VerifyStep):
            out += _check_verify(st, here, by_id, consumers, every_type)
        if references_ok and not isinstance(st, ActStep) and not _is_audit(st, by_id) and not consumers[st.id]:
            out.append((here + ("id",),
                        f"the output of {st.kind} step '{st.id}' is used by no step; connect it (list it in "
                        "another step's inputs) or remove it"))
    for name in s.retrievers:
        if name not in used_retrievers:
            out.append((("retrievers", name), f"retriever '{name}' is used by no retrieve step; remove it or use it"))
    return out


def _check_verify(st: VerifyStep, here: tuple, by_id: dict, consumers: dict[str, list[str]],
                  every_type: set[str]) -> list[Located]:
    out = _check_type_table(st.catch, here + ("catch",), every_type)
    act_inputs = [src for src in st.inputs if isinstance(by_id.get(src), ActStep)]
    if act_inputs and len(act_inputs) != len(st.inputs):
        out.append((here + ("inputs",),
                    "a verify step reviews either actions (an audit, after the fact) or what leads to "
                    f"them (a gate), not both: {act_inputs} are actions; split it into two steps"))
    if act_inputs and st.false_alarm > 0:
        out.append((here + ("false_alarm",),
                    "an audit (a verify step after actions) cannot escalate before the action: set "
                    "false_alarm to 0, or review the decisions before the action instead"))
    if act_inputs and consumers.get(st.id):
        out.append((here + ("id",),
                    f"audit '{st.id}' reviews actions after the fact, so no step can take it as input "
                    f"(used by {consumers[st.id]})"))
    return out


def _check_difficulty(s: Scenario) -> list[Located]:
    """Every error event must be able to carry the scenario's icc on its difficulty levels."""
    icc = s.difficulty.icc
    if icc == 0.0:
        return []
    levels = Levels.build(icc, s.difficulty.levels)
    events = [(f"retriever '{name}' (error rate {min(r.error_rate, 1.0):.4g})", min(r.error_rate, 1.0))
              for name, r in s.retrievers.items()]
    events += [(f"step '{st.id}' (base_error_rate {st.base_error_rate:.4g})", st.base_error_rate)
               for st in s.workflow.steps if isinstance(st, DecideStep)]
    out: list[Located] = []
    for what, p in events:
        reachable = levels.max_icc(p)
        if icc <= reachable:
            continue
        finest = Levels.build(icc, MAX_LEVELS).max_icc(p)
        if icc <= finest:
            fix = f"raise difficulty.levels (with {MAX_LEVELS} it can be at most {finest:.3f}) or lower icc"
        else:
            fix = (f"no number of levels can (at most {finest:.3f} with {MAX_LEVELS}: the finest level holds 1 "
                   "instance in 10,000); lower icc")
        out.append((("difficulty", "icc"), f"icc {icc:g} is more than {what} can have on "
                                           f"{s.difficulty.levels} difficulty levels (at most {reachable:.3f}): "
                                           f"{fix}"))
    return out


def _acts(s: Scenario) -> list[str]:
    return [st.id for st in s.workflow.steps if isinstance(st, ActStep)]


def _check_costs(s: Scenario) -> list[Located]:
    out: list[Located] = []
    acts = _acts(s)
    if not acts:
        out.append((("workflow", "steps"), "the workflow has no act step, so nothing can fail; add one"))
    for sid in acts:
        if sid not in s.costs:
            out.append((("costs",), f"act step '{sid}' has no costs; add costs.{sid}.failure_loss "
                                    f"(in {s.currency})"))
    for sid in s.costs:
        if sid not in acts:
            out.append((("costs", sid), f"'{sid}' is not an act step{did_you_mean(sid, acts)}; costs belong "
                                        "to act steps"))
    return out


def _check_timeline(s: Scenario) -> list[Located]:
    out: list[Located] = []
    tl = s.timeline
    if tl is None:
        return out
    acts = _acts(s)
    verify_ids = [st.id for st in s.workflow.steps if isinstance(st, VerifyStep)]
    for sid, r in tl.reviewers.items():
        if sid not in verify_ids:
            out.append((("timeline", "reviewers", sid), f"'{sid}' is not a verify step"
                                                        f"{did_you_mean(sid, verify_ids)}; reviewers staff "
                                                        "verify steps"))
        if r.close_hour <= r.open_hour:
            out.append((("timeline", "reviewers", sid, "close_hour"),
                        f"close_hour {r.close_hour} must be after open_hour {r.open_hour}"))
    for sid, rw in tl.rework.items():
        if sid not in acts:
            out.append((("timeline", "rework", sid), f"'{sid}' is not an act step{did_you_mean(sid, acts)}"))
        if rw.step not in tl.reviewers:
            out.append((("timeline", "rework", sid, "step"),
                        f"rework goes to '{rw.step}', which has no reviewers under timeline.reviewers"
                        f"{did_you_mean(rw.step, tl.reviewers)}"))
    if not any(tl.arrivals.weekly):
        out.append((("timeline", "arrivals", "weekly"), "every weekday multiplier is 0: nothing arrives"))
    per_replication = float(tl.arrivals.daily_means(tl.horizon_days).sum())
    runs = tl.replications * (1 + len(s.variants))
    if per_replication > limits.MAX_ARRIVALS_PER_REPLICATION:
        out.append((("timeline", "arrivals", "per_day"),
                    f"about {per_replication:,.0f} arrivals per replication over {tl.horizon_days} days; the "
                    f"timeline simulates at most {limits.MAX_ARRIVALS_PER_REPLICATION:,} (per_day is a daily "
                    "mean: is it a yearly volume?)"))
    elif per_replication * runs > limits.MAX_ARRIVALS:
        out.append((("timeline", "replications"),
                    f"{tl.replications} replications x {1 + len(s.variants)} variants x about "
                    f"{per_replication:,.0f} arrivals = {per_replication * runs:,.0f} simulated arrivals; at "
                    f"most {limits.MAX_ARRIVALS:,} (about half an hour): use fewer replications"))
    return out


def _check_variants(s: Scenario) -> list[Located]:
    out: list[Located] = []
    seen: set[str] = set()
    for i, v in enumerate(s.variants):
        if v.name == "base":
            out.append((("variants", i, "name"), "'base' names the scenario itself; choose another name"))
        if v.name in seen:
            out.append((("variants", i, "name"), f"duplicate variant name '{v.name}'"))
        seen.add(v.name)
    return out


def _check_agent(s: Scenario, consumers: dict[str, list[str]]) -> list[Located]:
    """The document-QA agent's block against the workflow: an answer type per decide step, each decide step
    reading passages, each retrieve step read by a decide step, actions on act steps and their decisions."""
    if s.workflow.builtin:
        return [(("agent",), f"the built-in workflow '{s.workflow.builtin}' has its own agent; the agent block "
                             "describes a document-QA agent for inline steps (remove it, or write the steps)")]
    out: list[Located] = []
    agent, steps = s.agent, s.workflow.steps
    by_id = {st.id: st for st in steps}
    decides = [st.id for st in steps if isinstance(st, DecideStep)]
    for sid in decides:
        if sid not in agent.answers:
            out.append((("agent", "answers"), f"decide step '{sid}' has no answer type; add "
                                              f"answers.{sid}.type (yes_no, label, number or party)"))
        elif not any(isinstance(by_id[i], RetrieveStep) for i in by_id[sid].inputs):
            out.append((("agent", "answers", sid), f"decide step '{sid}' reads no retrieve step: a document-QA "
                                                   "step answers from passages; add a retrieve step to its inputs"))
    for sid, answer in agent.answers.items():
        where = ("agent", "answers", sid)
        if sid not in decides:
            out.append((where, f"'{sid}' is not a decide step{did_you_mean(sid, decides)}; answers belong to "
                               "decide steps"))
        if answer.type == "label" and len(set(answer.labels)) < 2:
            out.append((where + ("labels",), "a label answer needs at least two distinct labels to choose from"))
        if answer.type != "label" and answer.labels:
            out.append((where + ("labels",), f"labels go with type label, not {answer.type}"))
        if "none" in answer.labels:
            out.append((where + ("labels",), "'none' is the answer when the passages do not say; not a label"))
    for st in steps:
        if isinstance(st, RetrieveStep) and not any(isinstance(by_id[c], DecideStep) for c in consumers[st.id]):
            out.append((("workflow", "steps", steps.index(st), "id"),
                        f"retrieve step '{st.id}' is read by no decide step: the agent searches with the question "
                        "of a decide step that reads it"))
    acts = _acts(s)
    for sid, action in agent.actions.items():
        where = ("agent", "actions", sid)
        if sid not in acts:
            out.append((where, f"'{sid}' is not an act step{did_you_mean(sid, acts)}"))
            continue
        upstream = [d for d in upstream_steps(by_id, sid) if d in decides]
        if action.decision is not None and action.decision not in upstream:
            out.append((where + ("decision",), f"'{action.decision}' is not a decide step upstream of '{sid}'"
                                               f"{did_you_mean(action.decision, upstream)}"))
            continue
        if action.map and action.decision is None:
            out.append((where + ("map",), "a map turns one decision's answer into an action: name it in decision"))
        elif action.map:
            answer = agent.answers.get(action.decision)
            allowed = {"yes_no": ["yes", "no"], "label": list(answer.labels)}.get(answer.type) if answer else None
            if answer is not None and allowed is None:
                out.append((where + ("map",), f"a map takes a yes_no or label answer; '{action.decision}' answers "
                                              f"a {answer.type}"))
            for key in action.map if allowed else []:
                if key not in allowed:
                    out.append((where + ("map", key), f"'{key}' is not an answer of '{action.decision}'"
                                                      f"{did_you_mean(key, allowed)}"))
    return out


def upstream_steps(by_id: dict, sid: str) -> list[str]:
    """Every step whose output reaches `sid`, nearest first (breadth-first over inputs)."""
    seen: list[str] = []
    frontier = list(by_id[sid].inputs)
    while frontier:
        nxt = []
        for i in frontier:
            if i not in seen:
                seen.append(i)
                nxt += by_id[i].inputs
        frontier = nxt
    return seen


def _is_audit(st: object, by_id: dict) -> bool:
    return isinstance(st, VerifyStep) and any(isinstance(by_id.get(src), ActStep) for src in st.inputs)


def _check_type_table(table: dict[str, float], where: tuple, every_type: set[str],
                      needs_default: bool = True) -> list[Located]:
    out: list[Located] = []
    if needs_default and DEFAULT_KEY not in table:
        out.append((where, f"needs a '{DEFAULT_KEY}' entry for the error types it does not list"))
    for t in table:
        if t != DEFAULT_KEY and t not in every_type:
            out.append((where + (t,), f"unknown error type '{t}'{did_you_mean(t, every_type | {DEFAULT_KEY})}"))
    return out
