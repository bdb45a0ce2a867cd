"""Calibration: agent traces -> the step parameters of a scenario the Monte Carlo engine runs at full speed.

From an agent run's trace (one row per instance x step, `sim.trace.observed`), with Wilson 95% intervals:
- a retriever's rate per error type: retrievals of its steps that went wrong on their own (root cause there),
  over its retrievals whose inputs were right, pooled over the steps that use it;
- a decide step's `base_error_rate`: wrong decisions on right inputs; its `susceptibility[t]` (per input when
  it has several: `susceptibility_by_input`): of the instances whose only wrong input was that one, with type
  t, the share where the decision went wrong too;
- a verify step's `catch[t]`: of the wrong inputs of type t it saw, the share it caught; `false_alarm`: the
  share of all-right inputs it escalated.
A parameter with no observation keeps the scenario's value, and the table says so. `agreement` checks that
Monte Carlo on the calibrated scenario reproduces an agent run's figures within their intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pandas as pd

from sim.core.error_types import DEFAULT_KEY, REASONING
from sim.core.errors import CascadeError
from sim.core.stats import wilson
from sim.scenario.load import scenario_from_dict
from sim.scenario.model import Scenario
from sim.scenario.overrides import base_dict

_NOT_ERRORS = frozenset({"ok", "caught", "false_alarm"})


@dataclass
class Calibration:
    scenario: Scenario
    """The calibrated scenario (inline workflow, injected retrievers, no variants)."""
    table: pd.DataFrame
    """One row per estimated parameter: step or retriever, parameter, error type, estimate, CI, counts, source."""


def _row(where: str, parameter: str, error_type: str, events: int, trials: int, kept: float | None = None) -> dict:
    if trials == 0:
        return {"where": where, "parameter": parameter, "error_type": error_type, "estimate": kept, "ci_low": None,
                "ci_high": None, "events": 0, "trials": 0, "source": "scenario (not observed)"}
    lo, hi = wilson(events, trials)
    return {"where": where, "parameter": parameter, "error_type": error_type, "estimate": events / trials,
            "ci_low": lo, "ci_high": hi, "events": int(events), "trials": int(trials), "source": "agent trace"}


def _errors(labels) -> list[str]:
    return [x for x in labels if x not in _NOT_ERRORS]


def calibrate(scenario: Scenario, trace: pd.DataFrame, variant: str = "base",
              min_trials: int = 1) -> Calibration:
    """Estimate `scenario`'s step parameters from an agent trace of one of its variants."""
    if trace is None or trace.empty:
        raise CascadeError("the agent trace is empty: run `cascade run SCENARIO --engine agent` first")
    rows = trace[trace["variant"] == variant]
    if rows.empty:
        raise CascadeError(f"the agent trace has no rows for variant '{variant}'; it has: "
                           f"{', '.join(sorted(trace['variant'].unique()))}")
    by_step = {step: part for step, part in rows.groupby("step", sort=False)}
    data = base_dict(scenario)
    table: list[dict] = []
    steps = {s["id"]: s for s in data["workflow"]["steps"]}
    missing = [s for s in steps if s not in by_step]
    if missing:
        raise CascadeError(f"the agent trace has no rows for step(s) {', '.join(missing)}: it was recorded with "
                           "another workflow than this scenario's")

    # Retrievers: pooled over their steps.
    pooled: dict[str, dict[str, int]] = {}
    trials: dict[str, int] = {}
    for sid, st in steps.items():
        if st["kind"] != "retrieve":
            continue
        part = by_step[sid]
        clean = part[part["inputs"].map(lambda x: all(v == "ok" for v in x))]
        own = clean[(clean["outcome"] == "error") & (clean["root_cause_step"] == sid)]
        counts = pooled.setdefault(st["retriever"], {})
        for t, k in own["error_type"].value_counts().items():
            counts[t] = counts.get(t, 0) + int(k)
        trials[st["retriever"]] = trials.get(st["retriever"], 0) + len(clean)
    for name, counts in pooled.items():
        n = trials[name]
        if n < min_trials:
            continue
        rates = {t: k / n for t, k in sorted(counts.items())}
        data["retrievers"][name] = {"kind": "injected", "description": f"calibrated from {n} agent retrievals",
                                    "rates": rates}
        table += [_row(name, "rate", t, counts.get(t, 0), n) for t in sorted(set(counts) | {"topical_miss"})]

    for sid, st in steps.items():
        part = by_step[sid]
        inputs = part["inputs"].tolist()
        if st["kind"] == "decide":
            clean = [i for i, x in enumerate(inputs) if all(v == "ok" for v in x)]
            own = sum(1 for i in clean if part["outcome"].iat[i] == "error" and part["root_cause_step"].iat[i] == sid)
            table.append(_row(sid, "base_error_rate", REASONING, own, len(clean), st.get("base_error_rate", 0.0)))
            if clean:
                st["base_error_rate"] = own / len(clean)
            carried: dict[tuple[str, str], list[int]] = {}
            for i, x in enumerate(inputs):
                wrong = [(src, label) for src, label in zip(st["inputs"], x, strict=True) if label not in _NOT_ERRORS]
                if len(wrong) == 1:
                    hit = part["outcome"].iat[i] == "error" and part["root_cause_step"].iat[i] != sid
                    carried.setdefault(wrong[0], []).append(int(hit))
            general = dict(st.get("susceptibility", {DEFAULT_KEY: 1.0}))
            by_input: dict[str, dict[str, float]] = {}
            for (src, t), hits in sorted(carried.items()):
                # With one input, its table is the step's; with several, each input gets its own.
                where = sid if len(st["inputs"]) == 1 else f"{sid} <- {src}"
                table.append(_row(where, "susceptibility", t, sum(hits), len(hits)))
                if len(st["inputs"]) == 1:
                    general[t] = sum(hits) / len(hits)
                else:
                    by_input.setdefault(src, {})[t] = sum(hits) / len(hits)
            st["susceptibility"] = general
            st["susceptibility_by_input"] = by_input
        elif st["kind"] == "verify":
            caught = part["caught_inputs"].tolist()
            seen: dict[str, list[int]] = {}
            for x, c in zip(inputs, caught, strict=True):
                for src, label in zip(st["inputs"], x, strict=True):
                    if label not in _NOT_ERRORS:
                        seen.setdefault(label, []).append(int(src in set(c)))
            table_c = dict(st.get("catch", {DEFAULT_KEY: 0.0}))
            for t, hits in sorted(seen.items()):
                table.append(_row(sid, "catch", t, sum(hits), len(hits)))
                table_c[t] = sum(hits) / len(hits)
            st["catch"] = table_c
            clean = [i for i, x in enumerate(inputs) if all(v == "ok" for v in x)]
            is_audit = all(steps[i]["kind"] == "act" for i in st["inputs"])
            if not is_audit:
                alarms = sum(1 for i in clean if part["outcome"].iat[i] == "false_alarm")
                table.append(_row(sid, "false_alarm", "", alarms, len(clean), st.get("false_alarm", 0.0)))
                if clean:
                    st["false_alarm"] = alarms / len(clean)
    data["name"] = f"{scenario.name}_calibrated"
    data["description"] = (f"{scenario.description} Calibrated from an agent trace ({rows['instance'].nunique()} "
                           "instances): step parameters estimated, everything else as in the scenario.").strip()
    return Calibration(scenario_from_dict(data), pd.DataFrame(table))


# --- agreement between an agent run and Monte Carlo on the calibrated scenario ----------------------------------

def _se(value: float, ci: list[float] | None, n: int, other: float) -> float:
    """A standard error from a 95% interval, floored by the Poisson error of the larger of the two values (an
    agent run that saw no failure from a root has a zero-width interval, not zero uncertainty)."""
    width = (ci[1] - ci[0]) / (2 * 1.959963984540054) if ci else 0.0
    return max(width, (max(value, other, 1.0 / n) / n) ** 0.5)


def agreement(agent: dict[str, Any], mc: dict[str, Any], confidence: float = 0.99) -> pd.DataFrame:
    """Each figure of an agent summary next to Monte Carlo's, with the z of their difference; `ok` holds when
    every |z| is within the family-wise (Bonferroni) `confidence` bound over the figures compared."""
    figures: list[tuple[str, float, list | None, float, list | None]] = [
        ("p_failure", agent["p_failure"], agent["p_failure_ci95"], mc["p_failure"], mc["p_failure_ci95"]),
        ("expected_loss_per_instance", agent["expected_loss_per_instance"],
         agent["expected_loss_per_instance_ci95"], mc["expected_loss_per_instance"],
         mc["expected_loss_per_instance_ci95"]),
    ]
    attr_a = {(a["root_cause_step"], a["error_type"]): a for a in agent["attribution"]}
    attr_m = {(a["root_cause_step"], a["error_type"]): a for a in mc["attribution"]}
    for key in sorted(set(attr_a) | set(attr_m)):
        a, m = attr_a.get(key), attr_m.get(key)
        figures.append((f"failures_per_instance {key[0]}/{key[1]}",
                        a["failures_per_instance"] if a else 0.0, a["failures_per_instance_ci95"] if a else None,
                        m["failures_per_instance"] if m else 0.0, m["failures_per_instance_ci95"] if m else None))
    bound = NormalDist().inv_cdf(1 - (1 - confidence) / (2 * len(figures)))
    rows = []
    scale = {"expected_loss_per_instance": max(1.0, abs(agent["expected_loss_per_instance"]))}
    for label, va, ca, vm, cm in figures:
        if label in scale:  # a mean in currency: its interval says it all
            se = (((ca[1] - ca[0]) / 3.92) ** 2 + ((cm[1] - cm[0]) / 3.92) ** 2) ** 0.5 or 1e-12
        else:
            se = (_se(va, ca, agent["instances"], vm) ** 2 + _se(vm, cm, mc["instances"], va) ** 2) ** 0.5
        z = (va - vm) / se
        rows.append({"figure": label, "agent": va, "monte_carlo": vm, "z": z, "bound": bound, "ok": abs(z) <= bound})
    return pd.DataFrame(rows)


# --- from a run folder ------------------------------------------------------------------------------------------

def calibrate_run_dir(run_dir: Path, variant: str = "base", out: Path | None = None) -> tuple[Calibration, Path]:
    """Calibrate from a folder written by `cascade run --engine agent`; write the calibrated scenario (and
    `calibration.csv` beside it) atomically. Returns the calibration and the scenario's path."""
    import json

    from sim.core.atomic import write_text, write_with
    from sim.scenario.load import dump_scenario_yaml, load_scenario

    run_dir = Path(run_dir)
    summary_path, trace_path = run_dir / "summary.json", run_dir / "agent_trace.parquet"
    if not summary_path.is_file():
        raise CascadeError(f"{run_dir}: not a run folder (no summary.json); write one with `cascade run SCENARIO "
                           "--engine agent --out FOLDER`")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    if summary.get("engine") not in ("agent", "recorded") or not trace_path.is_file():
        raise CascadeError(f"{run_dir}: calibration needs an agent trace; this run used the "
                           f"{summary.get('engine')} engine. Run `cascade run SCENARIO --engine agent` first")
    scenario = load_scenario(run_dir / "scenario.yaml")
    calibration = calibrate(scenario, pd.read_parquet(trace_path), variant)
    target = Path(out) if out else run_dir / "calibrated.yaml"
    header = (f"# Calibrated by `cascade calibrate {run_dir}` from the agent trace of variant '{variant}' "
              f"({summary['instances']} instances, policy {summary.get('agent', {}).get('policy', '?')}).\n"
              "# Step parameters are estimates (see calibration.csv for their 95% intervals and counts);\n"
              "# run it at Monte Carlo speed: cascade run " + str(target) + "\n")
    try:
        write_text(target, header + dump_scenario_yaml(calibration.scenario))
        write_with(target.with_name("calibration.csv"), lambda p: calibration.table.to_csv(p, index=False))
    except OSError as exc:
        raise CascadeError(f"cannot write {target}: {exc.strerror or exc}; choose another path with --out") from None
    return calibration, target
