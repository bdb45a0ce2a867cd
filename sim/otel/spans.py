"""A run folder as OpenTelemetry spans: one trace per instance (sampled to a cap), a root span for the
instance and one child span per step, with OpenInference, GenAI and `cascadesim.*` attributes
(`sim.otel.conventions`).

What a span can say depends on what the run kept: every run keeps per-instance outcomes (`instances.parquet`:
failed, loss, root cause), so every trace carries them and a root-cause event on the step where the chain
started; runs of the agent engine (and recorded runs) also keep what each step did (`agent_trace.parquet`), so
their step spans carry the step's outcome, the passages a retrieval read, decisions and actions as JSON, and an
action-failure event on each act that executed on erroneous input.

Clock. Run folders keep no wall-clock times (results never depend on them), so spans get a synthetic clock:
instance i starts i seconds after `start`, and the k-th step of the workflow (declared order) runs from k to
k + 1 milliseconds after that; the root span covers its steps. Timeline runs keep each instance's simulated
arrival and completion (`arrival_day`, `completed_day` in instances.parquet): their root span runs from arrival
to completion (days after `start`), and the steps share that span in declared order (per-step times are not
kept); an instance not completed within the simulation gets the millisecond steps from its arrival.

Ids are derived from (scenario, engine, seed, instances, variant, instance, step): exporting a run twice gives
the same trace, which a collector can deduplicate.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from sim.core import limits
from sim.core.errors import CascadeError
from sim.core.seeding import stream
from sim.otel import conventions as c
from sim.output.run_folder import open_run_folder
from sim.scenario.load import load_scenario

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)
"""Where the synthetic clock starts unless `start` is given."""
DAY_NS = 86_400 * 1_000_000_000
"""Nanoseconds in a simulated day."""
_SCOPE = InstrumentationScope("cascadesim.export", "1")
_JSON = "application/json"
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


@dataclass(frozen=True)
class Traces:
    """Spans of a run folder, ready to encode or send."""

    spans: list[ReadableSpan]
    traces: int
    """Traces (instances x variants) among the spans."""
    of: int
    """Instance rows the run folder holds (traces were sampled from them when more than the cap)."""


def run_spans(run_dir: str | Path, max_traces: int = 1000, variant: str | None = None,
              start: datetime | None = None, project: str | None = None) -> Traces:
    """The spans of run folder `run_dir`: at most `max_traces` instances per variant (a seeded sample of the
    same instances in every variant when it holds more), `variant` alone when given."""
    if not 1 <= max_traces <= limits.MAX_EXPORT_TRACES:
        raise CascadeError(f"--max-traces {max_traces}: give 1 to {limits.MAX_EXPORT_TRACES:,} "
                           "(traces per variant)")
    folder = open_run_folder(run_dir)  # checks manifest, summary and tables before anything is read
    summary = folder.summary
    scenario = load_scenario(folder.path / "scenario.yaml", measure=False)
    instances = pd.read_parquet(folder.path / "instances.parquet")
    trace_file = folder.path / "agent_trace.parquet"
    steps = pd.read_parquet(trace_file) if trace_file.is_file() else None
    variants = list(dict.fromkeys(instances["variant"].astype(str)))
    if variant is not None:
        if variant not in summary.get("variants", []):
            raise CascadeError(f"--variant {variant!r}: the run has variants {', '.join(summary['variants'])}")
        variants = [v for v in variants if v == variant]
    if not variants:
        raise CascadeError(f"{folder.path / 'instances.parquet'}: holds no instance rows (the analytic engine "
                           "computes expectations, not instances): export a run of a sampled engine")
    chosen = _sample(instances, max_traces, summary["seed"])
    builder = SpanBuilder(summary, [(st.id, st.kind, getattr(st, "retriever", None)) for st in scenario.workflow.steps],
                          llm=(summary.get("agent") or {}).get("policy") == "openai", project=project, start=start)
    rows = instances[instances["variant"].astype(str).isin(variants) & instances["instance"].isin(chosen)]
    by_instance: dict[tuple[str, int], dict[str, dict]] = {}
    for r in steps.to_dict("records") if steps is not None else []:  # one pass: per-group frames are slow
        by_instance.setdefault((str(r["variant"]), int(r["instance"])), {})[str(r["step"])] = r
    spans: list[ReadableSpan] = []
    for row in rows.itertuples(index=False):
        spans += builder.trace(row, by_instance.get((str(row.variant), int(row.instance))))
    return Traces(spans, len(rows), int((instances["variant"].astype(str).isin(variants)).sum()))


def _sample(instances: pd.DataFrame, cap: int, seed: int) -> np.ndarray:
    """The instance numbers to export: all, or a seeded sample of `cap` (the same in every variant, so paired
    variants can be compared trace by trace)."""
    numbers = np.unique(instances["instance"].to_numpy())
    if len(numbers) <= cap:
        return numbers
    return np.sort(stream(seed, "otel_export", 0).choice(numbers, size=cap, replace=False))


def _episode(kept: dict[str, dict]) -> str:
    """The agent engine's episode (contract, ticket) of an instance, '' when the trace has none."""
    first = next(iter(kept.values()), {})
    return str(first.get("episode") or "")


def _id(*parts, size: int) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=size).digest()
    return int.from_bytes(digest, "big") or 1  # an all-zero id is invalid in OTLP


class SpanBuilder:
    """Spans of one run, trace by trace. `summary` needs the run's scenario, engine, seed, instances (per
    variant) and currency; `steps` are (id, kind, retriever) in the workflow's declared order; `llm`: a language
    model made the decisions."""

    def __init__(self, summary: dict, steps: list[tuple[str, str, str | None]], llm: bool,
                 project: str | None = None, start: datetime | None = None):
        self.summary, self.steps, self.llm = summary, steps, llm
        self.resource = Resource.create({"service.name": "cascadesim", c.PROJECT: project or summary["scenario"],
                                         c.SCENARIO: summary["scenario"], c.ENGINE: summary["engine"]})
        self.clock = int((start or DEFAULT_START).timestamp() * 1e9)
        self.run = (summary["scenario"], summary["engine"], summary["seed"], summary["instances"])
        self.agent = summary["engine"] in ("agent", "recorded")

    def trace(self, row, kept: dict[str, dict] | None) -> list[ReadableSpan]:
        """The spans of one instance: `row` has the columns of instances.parquet (as attributes), `kept` its
        agent_trace rows by step (None when the run kept none)."""
        variant, instance = str(row.variant), int(row.instance)
        trace_id = _id(*self.run, variant, instance, size=16)
        root = SpanContext(trace_id, _id(trace_id, "", size=8), is_remote=False, trace_flags=_SAMPLED)
        t0, step_ns = self.clock + instance * 1_000_000_000, 1_000_000
        arrival, completed = getattr(row, "arrival_day", None), getattr(row, "completed_day", None)
        if arrival is not None and np.isfinite(arrival):  # a timeline run: the simulated time
            t0 = self.clock + int(arrival * DAY_NS)
            if completed is not None and np.isfinite(completed) and completed > arrival:
                step_ns = max(1, int((completed - arrival) * DAY_NS) // max(1, len(self.steps)))
        root_step, root_type = str(row.root_cause_step or ""), str(row.root_cause_error_type or "")
        kept = kept or {}
        named = getattr(row, "failed_acts", None)  # which acts failed (run folders written before: unknown)
        failed_acts = set(str(named).split(",")) - {""} if isinstance(named, str) else None
        children = []
        for k, (step, kind, retriever) in enumerate(self.steps):
            ctx = SpanContext(trace_id, _id(trace_id, step, size=8), is_remote=False,
                              trace_flags=_SAMPLED)
            start = t0 + k * step_ns
            children.append(self._step(ctx, root, step, kind, retriever, kept.get(step), root_step, root_type,
                                       start, start + step_ns, failed_acts is not None and step in failed_acts))
        failed = bool(row.failed)
        outcome = "action_failure" if failed else "escalated" if (row.caught or row.false_alarm) else "ok"
        attributes = {
            c.SPAN_KIND: c.ROOT_AGENT if self.agent else c.ROOT_CHAIN, c.GEN_AI_OPERATION: "invoke_agent",
            c.GEN_AI_AGENT: self.summary["scenario"], c.SESSION_ID: f"{self.summary['scenario']}/{variant}",
            c.INPUT_VALUE: _episode(kept) or f"instance {instance}",
            c.OUTPUT_VALUE: outcome,
            c.SCENARIO: self.summary["scenario"], c.ENGINE: self.summary["engine"], c.SEED: int(self.summary["seed"]),
            c.VARIANT: variant, c.INSTANCE: instance, c.OUTCOME: outcome, c.FAILED: failed,
            c.SILENT: bool(row.silent), c.CAUGHT: bool(row.caught), c.FALSE_ALARM: bool(row.false_alarm),
            c.N_FAILED_ACTIONS: int(row.n_failed_actions), c.LOSS: float(row.loss),
            c.FAILURE_LOSS: float(row.failure_loss), c.ESCALATION_COST: float(row.escalation_cost),
            c.CURRENCY: self.summary["currency"], c.DIFFICULTY: int(row.difficulty),
        }
        events = []
        if root_step:
            attributes.update({c.ROOT_CAUSE_STEP: root_step, c.ROOT_CAUSE_TYPE: root_type})
        if failed and not kept and failed_acts is None:  # which acts failed is not known, only how many
            events.append(Event(c.ACTION_FAILURE_EVENT, {c.N_FAILED_ACTIONS: int(row.n_failed_actions),
                                                         c.ROOT_CAUSE_STEP: root_step, c.ROOT_CAUSE_TYPE: root_type},
                                timestamp=t0))
        status = (Status(StatusCode.ERROR, f"{int(row.n_failed_actions)} wrong action(s); root cause {root_type} "
                                           f"at {root_step}") if failed else Status(StatusCode.UNSET))
        end = t0 + len(self.steps) * step_ns
        span = ReadableSpan(self.summary["scenario"], root, None, self.resource, attributes, events,
                            kind=SpanKind.INTERNAL, status=status, start_time=t0, end_time=end,
                            instrumentation_scope=_SCOPE)
        return [span, *children]

    def _step(self, ctx: SpanContext, parent: SpanContext, step: str, kind: str, retriever: str | None, kept,
              root_step: str, root_type: str, start: int, end: int, act_failed: bool = False) -> ReadableSpan:
        """One step's span; without a per-step trace (`kept` None), `act_failed` says that this act failed
        (instances.parquet's failed_acts)."""
        span_kind = c.LLM_DECIDE if kind == "decide" and self.llm else c.OPENINFERENCE_KIND[kind]
        attributes: dict = {c.SPAN_KIND: span_kind, c.STEP_ID: step, c.STEP_KIND: kind}
        if kind in c.GEN_AI_OPERATION_OF:
            attributes[c.GEN_AI_OPERATION] = c.GEN_AI_OPERATION_OF[kind]
        elif span_kind == c.LLM_DECIDE:
            attributes[c.GEN_AI_OPERATION] = "chat"
        if kind == "retrieve" and retriever:
            attributes[c.GEN_AI_DATA_SOURCE] = retriever
        if kind == "act":
            attributes.update({c.TOOL_NAME: step, c.GEN_AI_TOOL: step})
        events, status = [], Status(StatusCode.UNSET)
        if kept is not None:
            outcome = str(kept["outcome"])
            attributes[c.STEP_OUTCOME] = outcome
            if kept["error_type"]:
                attributes[c.ERROR_TYPE] = str(kept["error_type"])
            if kept["root_cause_step"]:
                attributes.update({c.ROOT_CAUSE_STEP: str(kept["root_cause_step"]),
                                   c.ROOT_CAUSE_TYPE: str(kept["error_type"])})
            attributes[c.MASKED] = outcome == "masked"
            if kind == "retrieve":
                passages = [str(p) for p in kept["passages"]]
                attributes.update({c.document_id(n): p for n, p in enumerate(passages)})
                attributes[c.GEN_AI_DOCUMENTS] = json.dumps([{"id": p} for p in passages])
                if kept["output"]:
                    attributes.update({c.OUTPUT_VALUE: str(kept["output"]), c.OUTPUT_MIME: _JSON})
                if kept["fault"]:
                    attributes.update({c.FAULT: str(kept["fault"]), c.FAULT_APPLIED: bool(kept["fault_applied"])})
            elif kind == "verify":
                caught = [str(x) for x in kept["caught_inputs"]]
                escalate = bool(caught) or outcome == "false_alarm"
                attributes.update({c.OUTPUT_VALUE: json.dumps({"escalate": escalate, "caught": caught}),
                                   c.OUTPUT_MIME: _JSON, c.GEN_AI_EVALUATION: step,
                                   c.GEN_AI_EVALUATION_LABEL: "escalate" if escalate else "pass"})
            elif kept["output"]:
                attributes.update({c.OUTPUT_VALUE: str(kept["output"]), c.OUTPUT_MIME: _JSON})
            if kind == "act" and outcome == "error":
                events.append(Event(c.ACTION_FAILURE_EVENT, {c.ROOT_CAUSE_STEP: str(kept["root_cause_step"]),
                                                             c.ROOT_CAUSE_TYPE: str(kept["error_type"])},
                                    timestamp=start))
                status = Status(StatusCode.ERROR, "wrong action: root cause {error_type} at {root_cause_step}".format(**kept))
        elif act_failed:
            attributes[c.STEP_OUTCOME] = "error"
            events.append(Event(c.ACTION_FAILURE_EVENT, {}, timestamp=start))
            status = Status(StatusCode.ERROR, "wrong action")
        here = kept["outcome"] == "error" and kept["root_cause_step"] == step if kept is not None else step == root_step
        if here:  # the chain started here (with a per-step trace: also root errors that were masked later)
            root_type = str(kept["error_type"]) if kept is not None else root_type
            attributes.setdefault(c.STEP_OUTCOME, "error")
            events.append(Event(c.ROOT_CAUSE_EVENT, {c.ROOT_CAUSE_STEP: root_step, c.ROOT_CAUSE_TYPE: root_type},
                                timestamp=start))
        return ReadableSpan(step, ctx, parent, self.resource, attributes, events, kind=SpanKind.INTERNAL,
                            status=status, start_time=start, end_time=end, instrumentation_scope=_SCOPE)
