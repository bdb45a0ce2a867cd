"""`cascade import`: traces a user already collects (OpenInference spans in OTLP JSON) plus their ground-truth
labels -> a recorded Result (engine `recorded`, as `agents.bridge` makes), so `cascade calibrate` turns
production traces into the step parameters of a scenario. Langfuse's own exports (a trace or session
downloaded as JSON, an observations table as JSON / JSON lines) are read too (`sim.otel.langfuse_json`).

Spans map to workflow steps by name (the span name is the step id). Per trace (one instance):
- retrieve and decide steps need a label (`trace_id,step,label`): `correct`, `wrong`, or for a wrong retrieval
  its error type (`wrong` there means `topical_miss`: the right passage was not read). A retrieve span's
  `retrieval.documents.N.document.id` are kept as the passages it read;
- a verify span's `output.value` is its verdict, `{"escalate": bool, "caught": [input step ids]}`;
- act steps need nothing: an act is wrong when it executed on wrong input.
A trace missing a step's span or label is left out, never guessed, and the report says which and why; spans
whose names are not steps are counted by name. The instance number is the root span's `cascadesim.instance`
when it has one (a trace `cascade export` wrote), else the trace's order in the file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.core import limits
from sim.core.error_types import all_error_types
from sim.core.errors import CascadeError
from sim.core.table_source import Limits, read_table
from sim.model.plan import compile_plan
from sim.otel import conventions as c
from sim.otel.langfuse_json import is_langfuse, observations, span_fields
from sim.otel.otlp_json import hex_id, parse_documents, read_json_documents
from sim.output.recorded import recorded_result
from sim.output.result import Result
from sim.scenario.load import load_scenario
from sim.trace.observed import Observation, step_row, verdict

LABEL_COLUMNS = ("trace_id", "step", "label")
_LABEL_LIMITS = Limits(rows=limits.MAX_IMPORT_SPANS, chars=limits.MAX_ID_CHARS)


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent: str
    start: int
    attributes: dict[str, Any]
    where: str
    """How a message names it: file, path in the file, name and id."""


@dataclass
class Imported:
    """An imported trace log: the Result, and what could not be used (reported, not guessed)."""

    result: Result | None
    traces: int
    """Traces in the file."""
    left_out: dict[str, list[str]] = field(default_factory=dict)
    """Reason -> trace ids left out for it."""
    unmapped: Counter = field(default_factory=Counter)
    """Span names that are no step of the workflow (root spans excluded), with their counts."""
    unused_labels: int = 0
    """Label rows whose trace is not in the file."""


def import_traces(traces_file: str | Path, workflow: str | Path, labels: str | Path) -> Imported:
    """Read `traces_file` (OTLP JSON or a Langfuse export), map its spans onto the steps of the scenario file `workflow`, join the
    labels file (CSV / TSV / JSONL) and return the recorded Result with what was left out."""
    file = Path(traces_file)
    scenario = load_scenario(workflow, measure=False)
    scenario = scenario.model_copy(update={"variants": []})  # a trace log is one variant: the one recorded
    plan = compile_plan(scenario, "base", all_roots=True)
    steps = {s.id: s for s in plan.steps}
    by_trace = _read_spans(file)
    truth = _read_labels(Path(labels), steps, all_error_types(scenario.error_types))
    variants = {str(s.attributes[c.VARIANT]) for spans in by_trace.values() for s in spans
                if not s.parent and c.VARIANT in s.attributes}
    if len(variants) > 1:
        raise CascadeError(f"{file}: traces of several variants ({', '.join(sorted(variants))}, attribute "
                           f"{c.VARIANT}); import one: `cascade export RUN --variant NAME`")
    report = Imported(None, len(by_trace))
    report.unused_labels = sum(1 for t in truth if t not in by_trace)
    seen: dict[int, dict[str, Observation]] = {}
    rows: dict[int, list[dict]] = {}
    numbers = _instance_numbers(file, by_trace)
    for trace_id, spans in by_trace.items():
        mapped: dict[str, Span] = {}
        for span in sorted(spans, key=lambda s: s.start):  # several spans of a step: the last one counts
            if span.name in steps:
                mapped[span.name] = span
            elif span.parent:
                report.unmapped[span.name] += 1
        missing = [s for s in steps if s not in mapped]
        if missing:
            report.left_out.setdefault(f"no span for step(s) {', '.join(missing)}", []).append(trace_id)
            continue
        labels_here = truth.get(trace_id, {})
        unlabelled = [s.id for s in plan.steps if s.kind in ("retrieve", "decide") and s.id not in labels_here]
        if unlabelled:
            report.left_out.setdefault(f"no label for step(s) {', '.join(unlabelled)}", []).append(trace_id)
            continue
        instance = numbers[trace_id]
        seen[instance] = {s.id: _observe(plan, s, mapped[s.id], labels_here.get(s.id)) for s in plan.steps}
        rows[instance] = [_row(s, trace_id, mapped[s.id], labels_here.get(s.id), seen[instance][s.id])
                          for s in plan.steps]
    if not seen:
        reasons = "; ".join(f"{why}: {len(ids)} trace(s)" for why, ids in report.left_out.items())
        raise CascadeError(f"{file}: no trace could be imported ({reasons or 'the file holds no spans'})")
    extra = {"workflow": scenario.name, "source": file.name, "traces": report.traces, "imported": len(seen),
             "left_out": {why: len(ids) for why, ids in report.left_out.items()},
             "unmapped_spans": dict(report.unmapped.most_common()),
             "note": "imported from a trace log (cascade import): retrieve and decide outcomes are the user's "
                     "labels; verify outcomes are the guardrail spans' verdicts"}
    levels = {numbers[t]: _root_int(spans, c.DIFFICULTY, 2**15) for t, spans in by_trace.items() if numbers[t] in seen}
    report.result = recorded_result(
        scenario, plan, seen, lambda i, it: [{**step_row(plan, s, i, it), **r}
                                             for s, r in zip(plan.steps, rows[i], strict=True)], extra,
        levels if all(v is not None for v in levels.values()) else None)
    return report


def _read_spans(file: Path) -> dict[str, list[Span]]:
    """Every span of the file (OTLP JSON, or a Langfuse export), by trace id (in the order traces first
    appear)."""
    docs = read_json_documents(file)
    spans = _langfuse_spans(file, docs) if is_langfuse(docs) else _otlp_spans(file, docs)
    by_trace: dict[str, list[Span]] = {}
    for count, span in enumerate(spans, 1):
        if count > limits.MAX_IMPORT_SPANS:
            raise CascadeError(f"{file}: more than {limits.MAX_IMPORT_SPANS:,} spans; split the file")
        by_trace.setdefault(span.trace_id, []).append(span)
    return by_trace


def _otlp_spans(file: Path, docs) -> Iterator[Span]:
    for n, request in enumerate(parse_documents(file, docs)):
        for i, rs in enumerate(request.resource_spans):
            for j, ss in enumerate(rs.scope_spans):
                for k, sp in enumerate(ss.spans):
                    path = f"{'document ' + str(n + 1) + ', ' if n else ''}resourceSpans[{i}].scopeSpans[{j}]" \
                           f".spans[{k}]"
                    where = f"{file}: {path} (span {sp.name!r}, id {hex_id(sp.span_id)})"
                    if not sp.name:
                        raise CascadeError(f"{where}: the span has no name; spans map to steps by name")
                    if not sp.trace_id or not sp.span_id:
                        raise CascadeError(f"{where}: the span has no traceId or spanId")
                    yield Span(sp.name, hex_id(sp.trace_id), hex_id(sp.span_id), hex_id(sp.parent_span_id),
                               sp.start_time_unix_nano, _attributes(sp.attributes), where)


def _langfuse_spans(file: Path, docs) -> Iterator[Span]:
    for where, obs in observations(str(file), docs):
        yield Span(**span_fields(where, obs))


def _attributes(attributes) -> dict[str, Any]:
    out = {}
    for a in attributes:
        kind = a.value.WhichOneof("value")
        if kind in ("string_value", "bool_value", "int_value", "double_value"):
            out[a.key] = getattr(a.value, kind)
    return out


def _root_int(spans: list[Span], key: str, bound: int) -> int | None:
    """An integer attribute in [0, bound) of a trace's root span (None when it has none)."""
    value = next((s.attributes.get(key) for s in spans if not s.parent), None)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < bound else None


def _instance_numbers(file: Path, by_trace: dict[str, list[Span]]) -> dict[str, int]:
    """Trace id -> instance: the root's cascadesim.instance for every trace, else the order in the file."""
    given = {t: v for t, spans in by_trace.items() if (v := _root_int(spans, c.INSTANCE, 2**63)) is not None}
    if len(given) == len(by_trace) and len(set(given.values())) == len(given):
        return given
    return {trace_id: n for n, trace_id in enumerate(by_trace)}


def _read_labels(file: Path, steps: dict, types: tuple[str, ...]) -> dict[str, dict[str, tuple[bool, str]]]:
    """trace id -> step -> (correct, error type) from the labels file; a CascadeError names file:line."""
    table = read_table(file, "labels", LABEL_COLUMNS, limits=_LABEL_LIMITS,
                       hint=" (one row per trace and retrieve / decide step: trace_id, step, label)")
    out: dict[str, dict[str, tuple[bool, str]]] = {}
    retrieval_types = [t for t in types if t != "reasoning"]
    for record in table.records:
        v = record.values
        at = f"{table.file}:{record.line}"
        trace_id = v["trace_id"].strip().lower()
        try:
            ok_hex = len(bytes.fromhex(trace_id)) == 16
        except ValueError:
            ok_hex = False
        if not ok_hex:
            raise CascadeError(f"{at}: trace_id {v['trace_id']!r}: give the trace's id, 32 hex digits")
        step = v["step"].strip()
        if step not in steps:
            raise CascadeError(f"{at}: step {step!r} is not a step of the workflow ({', '.join(steps)})")
        if steps[step].kind not in ("retrieve", "decide"):
            raise CascadeError(f"{at}: step {step!r} is a {steps[step].kind} step; labels are for retrieve and "
                               "decide steps (a verify span carries its verdict, an act is wrong on wrong input)")
        word = v["label"].strip()
        words = ["correct", "wrong", *(retrieval_types if steps[step].kind == "retrieve" else [])]
        if word not in words:
            raise CascadeError(f"{at}: label {word!r} for {steps[step].kind} step {step!r}: give one of "
                               f"{', '.join(words)}")
        correct, error_type = word == "correct", ("" if word in ("correct", "wrong") else word)
        if step in out.get(trace_id, {}):
            raise CascadeError(f"{at}: a second label for trace {trace_id}, step {step}")
        out.setdefault(trace_id, {})[step] = (correct, error_type)
    return out


def _observe(plan, s, span: Span, label: tuple[bool, str] | None) -> Observation:
    if s.kind in ("retrieve", "decide"):
        correct, error_type = label
        if correct:
            return Observation()
        return Observation(True, (error_type or "topical_miss") if s.kind == "retrieve" else None)
    if s.kind == "verify":
        text = span.attributes.get(c.OUTPUT_VALUE)
        try:
            out = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            out = None
        if out is None:
            raise CascadeError(f"{span.where}: a verify step's span needs {c.OUTPUT_VALUE} with its verdict as "
                               'JSON, e.g. {"escalate": true, "caught": ["decide"]}')
        return verdict(plan, s, out, span.where)
    return Observation()


def _row(s, trace_id: str, span: Span, label: tuple[bool, str] | None, seen: Observation) -> dict:
    """What the trace table keeps of a span beyond its outcome."""
    passages = []
    while c.document_id(len(passages)) in span.attributes:
        passages.append(str(span.attributes[c.document_id(len(passages))]))
    wrong_retrieval = s.kind == "retrieve" and label is not None and not label[0]
    out = span.attributes.get(c.OUTPUT_VALUE, "")
    return {"trace_id": trace_id, "caught_inputs": sorted(seen.caught),
            "fault": (label[1] or "topical_miss") if wrong_retrieval else "", "fault_applied": wrong_retrieval,
            "passages": passages, "output": out if isinstance(out, str) else json.dumps(out), "truth": ""}
