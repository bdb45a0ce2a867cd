"""What the report reads from a stored `summary.json`, checked: every key it uses, with its type.

A run folder is input like any other: a summary edited by hand, cut short, or written by another tool must give
`summary.json: field.path: what is wrong`, not a traceback halfway through the HTML. Keys the report does not
read are allowed (a summary has many more); types are strict (no "0.5" for 0.5, no true for 1) and numbers finite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from sim.core.errors import CascadeError

Interval = tuple[float, float]
"""[low, high] of a 95% confidence interval."""


class _Checked(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, frozen=True)


class AttributionRow(_Checked):
    root_cause_step: str
    error_type: str
    share_of_loss: float
    loss_per_instance: float
    loss_per_instance_ci95: Interval


_FATE_KEYS = ("p_caught_given_root", "p_masked_given_root")


class CascadeRow(_Checked):
    root_cause_step: str
    error_type: str
    p_root_error: float
    p_action_failure_given_root: float | None
    p_caught_given_root: float | None
    p_masked_given_root: float | None


class PassK(_Checked):
    k: int
    p: float
    ci95: Interval


class Exceedance(_Checked):
    loss: float
    p_exceed: float


class HorizonLoss(_Checked):
    replications: int
    mean: float
    mean_ci95: Interval
    var95: float
    cvar95: float
    tail_coarse: bool = False
    replications_for_tail: int = 20
    exceedance: list[Exceedance]


class TimelineBlock(_Checked):
    horizon_days: int
    horizon_loss: HorizonLoss
    undetected_exposure_at_horizon_mean: float
    mean_wait_hours: dict[str, float]
    bypass_rate: dict[str, float]
    utilisation: dict[str, float]


class Block(_Checked):
    """One variant's figures (the base block is the summary itself)."""

    p_failure: float
    p_failure_ci95: Interval | None = None
    expected_loss_per_instance: float
    expected_loss_per_instance_ci95: Interval | None = None
    expected_failure_loss_per_instance: float
    expected_escalation_cost_per_instance: float
    silent_failure_rate: float
    silent_failure_rate_ci95: Interval | None = None
    amplification: float
    amplification_ci95: Interval | None = None
    attribution: list[AttributionRow]
    cascade: list[CascadeRow]
    pass_k: list[PassK] | None = None
    timeline: TimelineBlock | None = None


class Difference(_Checked):
    difference: float
    ci95: Interval


class VariantDifference(_Checked):
    expected_loss_per_instance: Difference | None = None
    p_failure: Difference | None = None
    horizon_loss: Difference | None = None


class MeasuredWith(_Checked):
    model: str | None = None
    corpus: str | None = None
    created: str | None = None
    profile: str | None = None


class Retriever(_Checked):
    kind: str | None = None
    measured_with: MeasuredWith | None = None


class FaultCounts(_Checked):
    drawn: dict[str, int]
    applied: dict[str, int]


class AgentBlock(_Checked):
    workflow: str
    episodes: int
    policy: str
    embedding_model: str
    store: str
    tickets: str | None = None
    faults: dict[str, dict[str, FaultCounts]]
    invalid_replies: dict[str, int] = {}


class StoredSummary(Block):
    """The whole summary.json as the report reads it."""

    scenario: str
    engine: str
    seed: int
    instances: int | None
    currency: str
    volume_per_month: float | None = None
    pass_k_sample: int | None = None
    variant_results: dict[str, Block] = {}
    differences: dict[str, VariantDifference] | None = None
    retrievers: dict[str, Retriever] | None = None
    agent: AgentBlock | None = None


def check_summary(text: str, file: Path) -> None:
    """Raise CascadeError naming `file`, each wrong field's path and what is wrong, unless `text` is a summary
    the report can render."""
    try:
        summary = StoredSummary.model_validate_json(text, strict=True)
    except ValidationError as exc:
        problems = [f"{file}: {_where(e['loc'])}{e['msg']}" for e in exc.errors()[:8]]
        more = len(exc.errors()) - len(problems)
        older = any(e["type"] == "missing" and e["loc"][-1] in _FATE_KEYS for e in exc.errors())
        raise CascadeError("not a summary written by `cascade run`:\n" + "\n".join(problems)
                           + (f"\n(and {more} more)" if more > 0 else "")
                           + ("\n(a run of a cascadesim from before caught and masked were kept apart per root has "
                              "no p_caught_given_root: run `cascade run` again)" if older else "")) from None
    problems = [f"{file}: {problem}" for problem in _inconsistencies(summary)]
    if problems:
        raise CascadeError("not a summary written by `cascade run`:\n" + "\n".join(problems))


def _inconsistencies(summary: StoredSummary):
    """What the types cannot say: which parts need which others."""
    if summary.engine == "timeline" and summary.timeline is None:
        yield "timeline: missing (the engine is 'timeline')"
    if summary.timeline is not None:
        for name, block in summary.variant_results.items():
            if block.timeline is None:
                yield f"variant_results.{name}.timeline: missing (the base has one)"
        unknown = set(summary.timeline.mean_wait_hours) - set(summary.timeline.bypass_rate)
        if unknown:
            yield f"timeline.bypass_rate: missing {sorted(unknown)[0]!r} (it has a mean_wait_hours)"
    for name, d in (summary.differences or {}).items():
        if summary.engine != "timeline" and d.expected_loss_per_instance is None:
            yield f"differences.{name}.expected_loss_per_instance: missing"
        if summary.engine == "timeline" and d.horizon_loss is None and d.expected_loss_per_instance is None:
            yield f"differences.{name}: needs horizon_loss or expected_loss_per_instance"
    for name, block in {"": summary, **{f"variant_results.{k}.": v for k, v in summary.variant_results.items()}}.items():
        for i, c in enumerate(block.cascade):
            fates = (c.p_action_failure_given_root, c.p_caught_given_root, c.p_masked_given_root)
            if (None in fates) != all(f is None for f in fates) or (None not in fates and abs(sum(fates) - 1) > 1e-9):
                yield (f"{name}cascade.{i}: p_action_failure_given_root, p_caught_given_root and p_masked_given_root "
                       f"are {list(fates)}; a root error fails, is caught or is masked, so they sum to 1")
    for name, r in (summary.retrievers or {}).items():
        if r.kind == "measured" and r.measured_with is None:
            yield f"retrievers.{name}.measured_with: missing (the retriever is measured)"


def _where(loc: tuple[Any, ...]) -> str:
    path = ".".join(str(part) for part in loc)
    return f"{path}: " if path else ""
