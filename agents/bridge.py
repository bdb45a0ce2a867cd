"""The bridge to users' own LangGraph apps: inject retrieval faults into their graph, record its runs against
their ground truth, and turn the records into cascadesim's trace tables (engine `recorded`).

A `Recorder` declares the app's workflow in the scenario vocabulary (steps, costs). `recorder.retriever(...)`
wraps the app's retriever so that a retrieval may read a structural twin, an outdated version, or go without
the right document (`agents.faults.inject`), the fault drawn from a stream keyed by (seed, step, instance);
`recorder.node(step)` records what a node returned. `recorder.result()` compares each step's output with the
truth exactly as the agent engine does (`sim.trace.observed`), so summary, report and calibration read a recorded
run like any other.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, get_type_hints

import numpy as np
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from agents.fault_retriever import (
    FAULT_KEY,
    INSTANCE_KEY,
    FaultInjectingRetriever,
    FaultLog,
    RetrievalCall,
    as_instance,
    check_rates,
    doc_id,
    instance_of,
)
from sim.core.errors import CascadeError
from sim.core.yaml_source import SourceMap
from sim.model.plan import Plan, compile_plan
from sim.output.recorded import recorded_result
from sim.output.result import Result
from sim.scenario.checks import did_you_mean
from sim.scenario.load import scenario_from_dict
from sim.trace.observed import Observation, step_row, verdict

_MISSING = object()

__all__ = ["FaultInjectingRetriever", "FaultLog", "Recorder", "RetrievalCall", "INSTANCE_KEY", "FAULT_KEY"]


def _with_defaults(step: Any) -> Any:
    """A copy of a step declaration with the bridge's defaults (anything malformed is left to the loader)."""
    if not isinstance(step, Mapping):
        return step
    out = dict(step)
    kind = out.get("kind")
    if kind == "retrieve":
        out.setdefault("retriever", out.get("id"))
    elif kind == "decide":
        out.setdefault("susceptibility", {"default": 1.0})
    elif kind == "verify":
        out.setdefault("catch", {"default": 0.0})
    return out


def _json(value: Any) -> str:
    """A recorded value as JSON text ('' when nothing was recorded)."""
    if value is _MISSING:
        return ""
    try:
        return json.dumps(value, sort_keys=True, default=_plain)
    except (TypeError, ValueError):  # keys that cannot be sorted or written: keep it readable
        return json.dumps(repr(value))


def _plain(value: Any) -> Any:
    if isinstance(value, Document):
        return {"id": doc_id(value), "page_content": value.page_content}
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _recording_node(fn: Callable, record: Callable[[RunnableConfig, Any], None]) -> Callable:
    """`fn` wrapped to record its return value. LangGraph passes `config` to a node only when its signature
    declares it, so the wrapper declares it (keeping fn's other parameters) and forwards it only if fn takes it."""
    sig = inspect.signature(fn)
    takes_config = "config" in sig.parameters

    def call_args(kwargs: dict, config: RunnableConfig) -> dict:
        return {**kwargs, "config": config} if takes_config else kwargs

    def unwrap(out: Any) -> Any:
        return out.update if isinstance(out, Command) else out

    if inspect.iscoroutinefunction(fn):
        async def wrapper(*args, config: RunnableConfig, **kwargs):
            out = await fn(*args, **call_args(kwargs, config))
            record(config, unwrap(out))
            return out
    else:
        def wrapper(*args, config: RunnableConfig, **kwargs):
            out = fn(*args, **call_args(kwargs, config))
            record(config, unwrap(out))
            return out

    config_param = inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, annotation=RunnableConfig)
    params = [config_param.replace(kind=p.kind) if p.name == "config" else p for p in sig.parameters.values()]
    if not takes_config:
        cut = next((i for i, p in enumerate(params) if p.kind == inspect.Parameter.VAR_KEYWORD), len(params))
        params.insert(cut, config_param)
    wrapper.__signature__ = sig.replace(parameters=params)
    try:  # resolved here, in fn's module, so that LangGraph can read the state schema and Command targets
        hints = get_type_hints(fn)
    except Exception:
        hints = {}
    wrapper.__annotations__ = {**hints, "config": RunnableConfig}
    for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
        if hasattr(fn, attr):
            setattr(wrapper, attr, getattr(fn, attr))
    return wrapper


class Recorder:
    """Declares a user's LangGraph workflow and records its runs: what each step produced, per instance,
    against the truth the user supplies; `result()` turns the records into cascadesim's tables."""

    def __init__(self, name: str, steps: list[dict], costs: dict, seed: int = 0, currency: str = "USD"):
        self.name, self.seed, self.currency = name, seed, currency
        self._steps = [_with_defaults(s) for s in steps] if isinstance(steps, list) else steps
        self._costs = costs
        self.log = FaultLog()
        self._retrievers: dict[str, FaultInjectingRetriever] = {}
        self._outputs: dict[int, dict[str, Any]] = {}
        self._truth: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.scenario = self._build()
        self._kinds = {s.id: s.kind for s in self.scenario.workflow.steps}

    def __repr__(self) -> str:
        return f"Recorder({self.name!r}, steps={list(self._kinds)}, instances={len(self._instances())})"

    def _build(self):
        """The scenario: the declared steps and costs, one injected retriever per retriever name."""
        retrievers: dict[str, dict] = {}
        for s in self._steps if isinstance(self._steps, list) else []:
            if not (isinstance(s, Mapping) and s.get("kind") == "retrieve" and isinstance(s.get("retriever"), str)):
                continue
            attached = self._retrievers.get(s.get("id"))
            entry = retrievers.setdefault(s["retriever"], {"kind": "injected", "rates": {}, "_by": None})
            if attached is not None:
                if entry["_by"] is not None and entry["rates"] != attached.rates:
                    raise CascadeError(f"retrieve steps '{entry['_by']}' and '{s['id']}' share retriever "
                                       f"'{s['retriever']}' but were given different rates ({entry['rates']} vs "
                                       f"{attached.rates}); give them the same rates or different retriever names")
                entry.update(rates=dict(attached.rates), _by=s["id"])
        for entry in retrievers.values():
            entry.pop("_by")
        raw = {"schema_version": 1, "name": self.name, "seed": self.seed, "currency": self.currency,
               "retrievers": retrievers, "workflow": {"steps": self._steps}, "costs": self._costs}
        return scenario_from_dict(raw, SourceMap(default_file=f"Recorder({self.name!r})"))

    def _require(self, step: str, kinds: tuple[str, ...] = ()) -> str:
        if step not in self._kinds:
            raise CascadeError(f"Recorder '{self.name}' has no step '{step}'{did_you_mean(str(step), self._kinds)} "
                               f"(its steps: {', '.join(self._kinds)})")
        kind = self._kinds[step]
        if kinds and kind not in kinds:
            ok = [s for s, k in self._kinds.items() if k in kinds]
            raise CascadeError(f"step '{step}' is a {kind} step; this needs a {' or '.join(kinds)} step "
                               f"(yours: {', '.join(ok) or 'none'})")
        return kind

    def retriever(self, step: str, base: BaseRetriever, rates: Mapping[str, float],
                  gold: Callable[[str], set[str]] | None = None,
                  stale_of: Callable[[Document], Document | None] | None = None) -> FaultInjectingRetriever:
        """`base` with faults injected at `rates` (probability per query) for retrieve step `step`; use it in
        the graph in place of `base`."""
        self._require(step, ("retrieve",))
        wrapped = FaultInjectingRetriever(base=base, step=step, rates=check_rates(rates, f"retrieve step '{step}'"),
                                          seed=self.seed, gold=gold, stale_of=stale_of, log=self.log)
        previous = self._retrievers.get(step)
        self._retrievers[step] = wrapped
        try:
            self.scenario = self._build()
        except CascadeError:
            if previous is None:
                del self._retrievers[step]
            else:
                self._retrievers[step] = previous
            raise
        return wrapped

    def node(self, step: str) -> Callable[[Callable], Callable]:
        """Decorator: record a node function's return value (its state update) as `step`'s output."""
        self._require(step)

        def record(config: RunnableConfig, out: Any) -> None:
            self.observe(instance_of((config or {}).get("metadata"), f"node '{step}'"), step, out)

        return lambda fn: _recording_node(fn, record)

    def observe(self, instance: int, step: str, output: Any) -> None:
        """Record what `step` produced in `instance` (a later record of the same step replaces it).

        Verify steps: `{"escalate": bool, "caught": [input step ids]}`; `caught` counts only with an escalation
        and is optional (an escalation without it caught every input)."""
        self._require(step)
        with self._lock:
            self._outputs.setdefault(as_instance(instance, "instance"), {})[step] = output

    def _start(self, instance: int, truth: Mapping[str, Any], config: RunnableConfig | None) -> RunnableConfig:
        instance = as_instance(instance, "instance")
        if not isinstance(truth, Mapping):
            raise CascadeError(f"truth must map step ids to their right outputs, e.g. {{'decide': ...}}; "
                               f"got {type(truth).__name__}")
        for step in truth:
            if self._require(step) not in ("decide", "act"):
                raise CascadeError(f"truth names {self._kinds[step]} step '{step}'; truth is for decide and act "
                                   "steps (a retrieve step's right documents: gold= in recorder.retriever)")
        self._forget(instance)
        with self._lock:
            self._truth[instance] = dict(truth)
        config = dict(config or {})
        config["metadata"] = {**config.get("metadata", {}), INSTANCE_KEY: instance}
        return config

    def _forget(self, instance: int) -> None:
        with self._lock:
            self._outputs.pop(instance, None)
            self._truth.pop(instance, None)
        self.log.drop(instance)

    def invoke(self, graph, inputs: Any, instance: int, truth: Mapping[str, Any],
               config: RunnableConfig | None = None) -> Any:
        """Run `graph` on `inputs` as instance `instance` (a re-run replaces its records) and return its output.
        `truth` maps decide/act step ids to their right outputs for this instance."""
        cfg = self._start(instance, truth, config)
        try:
            return graph.invoke(inputs, config=cfg)
        except BaseException:
            self._forget(int(instance))  # a half-recorded instance would be read as a finished one
            raise

    async def ainvoke(self, graph, inputs: Any, instance: int, truth: Mapping[str, Any],
                      config: RunnableConfig | None = None) -> Any:
        """`invoke` for async graphs."""
        cfg = self._start(instance, truth, config)
        try:
            return await graph.ainvoke(inputs, config=cfg)
        except BaseException:
            self._forget(int(instance))
            raise

    def _instances(self) -> list[int]:
        with self._lock:
            seen = set(self._outputs) | set(self._truth)
        return sorted(seen | {c.instance for c in self.log.calls()})

    def _observe(self, plan: Plan, instance: int, outputs: dict, truth: dict) -> dict[str, Observation]:
        """Each step's observation in one instance (sim.agent_trace.Observation)."""
        seen = {}
        for s in plan.steps:
            out = outputs.get(s.id, _MISSING)
            if s.kind == "retrieve":
                calls = self.log.calls(instance, s.id)
                if not calls:
                    raise CascadeError(f"retrieve step '{s.id}' made no retrieval in instance {instance}: wrap "
                                       f"your retriever with recorder.retriever('{s.id}', base, rates) and use "
                                       "the wrapped one in the graph")
                faulty = next((c for c in calls if c.applied), None)
                if faulty is not None:
                    seen[s.id] = Observation(True, faulty.fault)
                elif any(c.hit is False for c in calls):  # the retriever missed on its own
                    seen[s.id] = Observation(True, "topical_miss")
                else:
                    seen[s.id] = Observation()
            elif s.kind == "decide":
                if s.id not in truth:
                    raise CascadeError(f"decide step '{s.id}' has no truth for instance {instance}: pass "
                                       f"truth={{'{s.id}': <its right output>}} to recorder.invoke")
                if out is _MISSING:
                    raise CascadeError(f"decide step '{s.id}' recorded no output in instance {instance}: decorate "
                                       f"its node with @recorder.node('{s.id}') or call recorder.observe")
                try:
                    seen[s.id] = Observation(not bool(out == truth[s.id]))
                except (TypeError, ValueError) as exc:
                    raise CascadeError(f"decide step '{s.id}', instance {instance}: its output cannot be "
                                       f"compared with the truth by == ({exc}); record plain values") from None
            elif s.kind == "verify":
                seen[s.id] = (Observation() if out is _MISSING else
                              verdict(plan, s, out, f"verify step '{s.id}', instance {instance}"))
            else:
                seen[s.id] = Observation()  # an act's token is its inputs' (sim.trace.observed)
        return seen

    def result(self) -> Result:
        """Every recorded instance in cascadesim's tables: summary, instances, steps, and `agent_trace` (one
        row per instance x step: outcome, root cause, fault, output and truth as JSON)."""
        instances = self._instances()
        if not instances:
            raise CascadeError("nothing recorded yet: run recorder.invoke(graph, inputs, instance, truth) first")
        with self._lock:
            outputs = {i: dict(self._outputs.get(i, {})) for i in instances}
            truths = {i: dict(self._truth.get(i, {})) for i in instances}
        plan = compile_plan(self.scenario, "base", all_roots=True)
        seen = {i: self._observe(plan, i, outputs[i], truths[i]) for i in instances}
        return recorded_result(self.scenario, plan, seen,
                               lambda i, it: self._rows(plan, i, it, seen[i], outputs[i], truths[i]),
                               self._describe(instances))

    def _rows(self, plan: Plan, instance: int, it, seen: dict[str, Observation], outputs: dict,
              truth: dict) -> list[dict]:
        rows = []
        for s in plan.steps:
            row = {**step_row(plan, s, instance, it),
                   "caught_inputs": sorted(seen[s.id].caught), "fault": "", "fault_applied": False,
                   "passages": [], "output": _json(outputs.get(s.id, _MISSING)),
                   "truth": _json(truth.get(s.id, _MISSING))}
            if s.kind == "retrieve":
                calls = self.log.calls(instance, s.id)
                row.update(fault=next((c.fault for c in calls if c.fault), ""),
                           fault_applied=any(c.applied for c in calls), passages=list(calls[-1].returned))
                if s.id not in outputs:
                    row["output"] = _json(list(calls[-1].returned))
                if calls[-1].gold is not None:
                    row["truth"] = _json(list(calls[-1].gold))
            rows.append(row)
        return rows

    def _describe(self, instances: list[int]) -> dict:
        wanted = set(instances)
        faults: dict[str, dict[str, Counter]] = {}
        calls = [c for c in self.log.calls() if c.instance in wanted]
        for c in calls:
            counts = faults.setdefault(c.step, {"drawn": Counter(), "applied": Counter()})
            if c.fault:
                counts["drawn"][c.fault] += 1
                counts["applied"][c.fault] += c.applied
        return {"workflow": self.name, "retrievals": len(calls),
                "faults": {step: {k: dict(sorted(v.items())) for k, v in per.items()}
                           for step, per in sorted(faults.items())},
                "note": "recorded from the user's own LangGraph app (agents.bridge); faults drawn but not applied "
                        "could not be made on that text (no site for the edit, no older version)"}
