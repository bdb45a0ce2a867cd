"""What the report reads from a stored `summary.json`, checked: every key it uses, with its type.

A run folder is input like any other: a summary edited by hand, cut short, or written by another tool must give
`summary.json: field.path: what is wrong`, not a traceback halfway through the HTML. Keys the report does not
read are allowed (a summary has many more); types are strict (no "0.5" for 0.5, no true for 1) and numbers finite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    p_caught_given_root: float | None = None
    p_masked_given_root: float | None = None
    """Runs from before caught and masked were kept apart per root have neither (the report lumps them)."""


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


class Band(_Checked):
    """One metric over the uncertainty draws: the point run's value, mean, median and 5-95% band."""

    point: float
    mean: float
    median: float
    p05: float
    p95: float


class BandedMetrics(_Checked):
    p_failure: Band
    expected_loss_per_instance: Band
    silent_failure_rate: Band


class BandedDifference(BandedMetrics):
    p_lower_expected_loss: float = Field(ge=0, le=1)


class UncertainInput(_Checked):
    name: str
    path: str
    distribution: dict[str, list[float]]
    mean: float
    source: str
    variants: list[str]


class ExceedanceBand(_Checked):
    loss: float
    median: float
    p05: float
    p95: float


class ExceedanceCurve(_Checked):
    """A loss-exceedance curve with its band over the draws (per instance, or per period)."""

    per: str
    draws: int
    instances_per_draw: int
    computed_by: str
    amounts: list[float]
    variants: dict[str, list[ExceedanceBand]]


class ValueOfInformation(_Checked):
    choice_on_current_information: str
    evpi_per_instance: float
    evppi_per_instance: dict[str, dict[str, float]]
    method: str


class UncertaintyBlock(_Checked):
    """`--uncertainty N`: the bands, P(better), the exceedance band and the value of information."""

    draws: int
    design: str
    computed_by: str
    inputs: list[UncertainInput]
    results: dict[str, BandedMetrics]
    differences: dict[str, BandedDifference] | None = None
    loss_exceedance: ExceedanceCurve | None = None
    value_of_information: ValueOfInformation | None = None


class SobolRow(_Checked):
    output: str
    group: str
    S1: float
    S1_conf: float
    ST: float
    ST_conf: float


class SobolBlock(_Checked):
    base_draws: int
    by: str
    resamples: int
    indices: list[SobolRow]


class CounterfactualRow(_Checked):
    variant: str
    counterfactual: str
    expected_loss_per_instance: float
    loss_removed: float
    share_removed: float | None


class ImportanceRow(_Checked):
    variant: str
    event: str
    value: float
    birnbaum: float | None
    fussell_vesely: float | None
    raw: float | None
    rrw: float | None


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
    uncertainty: UncertaintyBlock | None = None
    sobol: SobolBlock | None = None
    counterfactuals: list[CounterfactualRow] | None = None
    importance: list[ImportanceRow] | None = None


def check_summary(text: str, file: Path) -> None:
    """Raise CascadeError naming `file`, each wrong field's path and what is wrong, unless `text` is a summary
    the report can render."""
    try:
        summary = StoredSummary.model_validate_json(text, strict=True)
    except ValidationError as exc:
        problems = [f"{file}: {_where(e['loc'])}{e['msg']}" for e in exc.errors()[:8]]
        more = len(exc.errors()) - len(problems)
        raise CascadeError("not a summary written by `cascade run`:\n" + "\n".join(problems)
                           + (f"\n(and {more} more)" if more > 0 else "")) from None
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
            if not set(_FATE_KEYS) & c.model_fields_set:
                continue  # a run from before the split: caught and masked are not told apart
            fates = (c.p_action_failure_given_root, c.p_caught_given_root, c.p_masked_given_root)
            if (None in fates) != all(f is None for f in fates) or (None not in fates and abs(sum(fates) - 1) > 1e-9):
                yield (f"{name}cascade.{i}: p_action_failure_given_root, p_caught_given_root and p_masked_given_root "
                       f"are {list(fates)}; a root error fails, is caught or is masked, so they sum to 1")
    for name, r in (summary.retrievers or {}).items():
        if r.kind == "measured" and r.measured_with is None:
            yield f"retrievers.{name}.measured_with: missing (the retriever is measured)"
    yield from _uncertainty_inconsistencies(summary)


def _uncertainty_inconsistencies(summary: StoredSummary):
    """The uncertainty, Sobol and counterfactual sections name the run's variants, and each has what its chart
    reads (the base block to compare with, a band at every amount, an 'as is' row per variant)."""
    variants = {"base", *summary.variant_results}
    expected = f"one of {', '.join(sorted(variants))}"
    u = summary.uncertainty
    if u is not None:
        if set(u.results) != variants:
            yield f"uncertainty.results: has {sorted(u.results)}, needs exactly the run's variants {sorted(variants)}"
        compared = set(u.differences or {})
        for name in sorted((compared - variants) | (compared & {"base"})):
            yield f"uncertainty.differences.{name}: not a variant compared with base ({expected}, not base)"
        for key, curve in u:  # every exceedance curve (per instance; a per-period one is one more field)
            for name, points in (curve.variants.items() if isinstance(curve, ExceedanceCurve) else ()):
                if name not in variants:
                    yield f"uncertainty.{key}.variants.{name}: not a variant ({expected})"
                if len(points) != len(curve.amounts):
                    yield f"uncertainty.{key}.variants.{name}: {len(points)} points for {len(curve.amounts)} amounts"
        voi = u.value_of_information
        if voi is not None:
            if voi.choice_on_current_information not in variants:
                yield f"uncertainty.value_of_information.choice_on_current_information: not a variant ({expected})"
            if "input" not in voi.evppi_per_instance:
                yield "uncertainty.value_of_information.evppi_per_instance.input: missing"
    for i, row in enumerate(summary.sobol.indices if summary.sobol else []):
        kind, _, name = row.output.partition("@")
        if kind not in ("expected_loss_per_instance", "difference") or name not in variants:
            yield (f"sobol.indices.{i}.output: {row.output!r} is not expected_loss_per_instance@VARIANT or "
                   f"difference@VARIANT ({expected})")
    rows = summary.counterfactuals or []
    for i, row in enumerate(rows):
        if row.variant not in variants:
            yield f"counterfactuals.{i}.variant: {row.variant!r} is not a variant ({expected})"
    for name in sorted({r.variant for r in rows} - {r.variant for r in rows if r.counterfactual == "as is"}):
        yield f"counterfactuals: no 'as is' row for {name}"
    for i, row in enumerate(summary.importance or []):
        if row.variant not in variants:
            yield f"importance.{i}.variant: {row.variant!r} is not a variant ({expected})"


def _where(loc: tuple[Any, ...]) -> str:
    path = ".".join(str(part) for part in loc)
    return f"{path}: " if path else ""
