"""The verdict: for each variant against the base, what changes and whether the numbers can tell.

One structure per variant, built only from summary keys (so the report, the markdown and the terminal say the
same thing): the paired change in expected loss per instance with its CI, per 1,000 instances and per month of
the scenario's volume when it has one, the change in P(wrong action), the root causes that move most in each
direction, and sentences that state only what those numbers support.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.output.uncertainty_text import band_text, metric_format, p_better_text

MOVERS = 3
"""Root causes named per direction."""
NOTABLE = 0.005
"""A root cause moves notably when its loss changes by at least this share of the base expected loss."""


@dataclass(frozen=True)
class Mover:
    root_cause_step: str
    error_type: str
    base: float
    variant: float

    @property
    def change(self) -> float:
        return self.variant - self.base


@dataclass(frozen=True)
class Verdict:
    variant: str
    currency: str
    loss_change: float
    """Paired change in expected loss per instance, variant minus base (timeline: horizon loss)."""
    loss_ci95: tuple[float, float]
    per_instances: str
    """What `loss_change` is per: 'instance', or 'over the D-day horizon' (timeline)."""
    p_failure_change: float | None
    p_failure_ci95: tuple[float, float] | None
    volume_per_month: float | None
    lower: list[Mover] = field(default_factory=list)
    higher: list[Mover] = field(default_factory=list)
    p_lower_loss: float | None = None
    """P(the variant has the lower expected loss) over the uncertainty of the inputs, when it was propagated."""
    loss_band: dict[str, float] | None = None
    """The paired change in expected loss per instance over the inputs' uncertainty (median, p05, p95), when
    it was propagated (`uncertainty.differences.<variant>.expected_loss_per_instance`)."""

    @property
    def direction(self) -> str:
        lo, hi = self.loss_ci95
        return "lower" if hi < 0 else ("higher" if lo > 0 else "not distinguishable")

    def sentences(self) -> list[str]:
        cur, d = self.currency, self.loss_change
        lo, hi = self.loss_ci95
        exact = lo == hi
        if self.per_instances == "instance":
            first = f"{self.variant} against the base: expected loss {d:+,.2f} {cur} per instance"
        else:
            first = f"{self.variant} against the base: loss {d:+,.0f} {cur} {self.per_instances}"
        digits = 2 if self.per_instances == "instance" else 0
        first += "" if exact else f" [{lo:+,.{digits}f}, {hi:+,.{digits}f}]"
        if self.per_instances == "instance":
            first += f", {1000 * d:+,.0f} {cur} per 1,000 instances"
            if self.volume_per_month:
                first += f", {self.volume_per_month * d:+,.0f} {cur} per month at the scenario's volume"
        verdict = {"lower": "lower", "higher": "higher",
                   "not distinguishable": "not distinguishable from the base at this sample size"}[self.direction]
        exactly = " (exact at each input's mean)" if self.loss_band else " (exact)"
        first += f": {verdict}{exactly if exact else ''}."
        if exact and d == 0:
            first = f"{self.variant} against the base: the same expected loss."
        out = [first]
        if self.p_failure_change is not None:
            dp = 100 * self.p_failure_change
            p_lo, p_hi = self.p_failure_ci95 or (self.p_failure_change, self.p_failure_change)
            p_dir = "fewer" if p_hi < 0 else ("more" if p_lo > 0 else None)
            text = f"P(wrong action) {dp:+.2f} points"
            if p_dir and self.direction in ("lower", "higher") and (p_dir == "fewer") != (self.direction == "lower"):
                text += (": fewer wrong actions, but more expensive ones" if p_dir == "fewer"
                         else ": more wrong actions, but cheaper ones")
            out.append(text + ".")
        if self.lower:
            out.append("It cuts " + _movers(self.lower, cur) + ".")
        if self.higher:
            out.append("It raises " + _movers(self.higher, cur) + ".")
        if self.p_lower_loss is not None:
            fmt = metric_format("expected_loss_per_instance", cur, signed=True)
            band = (f"the change in expected loss per instance is {band_text(self.loss_band, fmt)}, and "
                    if self.loss_band else "")
            out.append(f"Over the uncertainty of the inputs, {band}{p_better_text(self.variant, self.p_lower_loss)}.")
        return out


def _movers(movers: list[Mover], cur: str) -> str:
    parts = []
    for m in movers:
        rel = f", {100 * m.change / m.base:+.0f}%" if m.base > 0 else ", new"
        parts.append(f"{m.error_type} at {m.root_cause_step} ({m.change:+,.2f} {cur} per instance{rel})")
    return "; ".join(parts)


def verdicts(summary: dict[str, Any]) -> list[Verdict]:
    """One verdict per variant (none for a scenario without variants)."""
    out = []
    base_loss = summary["expected_loss_per_instance"]
    for name, d in (summary.get("differences") or {}).items():
        block = summary["variant_results"][name]
        if "horizon_loss" in d:
            h = d["horizon_loss"]
            loss, ci, per = h["difference"], h["ci95"], f"over the {summary['timeline']['horizon_days']}-day horizon"
            p_change = p_ci = None
        else:
            dl, dp = d["expected_loss_per_instance"], d.get("p_failure")
            loss, ci, per = dl["difference"], dl["ci95"], "instance"
            p_change, p_ci = (dp["difference"], tuple(dp["ci95"])) if dp else (None, None)
        lower, higher = _root_movers(summary["attribution"], block["attribution"], NOTABLE * base_loss)
        drawn = ((summary.get("uncertainty") or {}).get("differences") or {}).get(name) or {}
        out.append(Verdict(name, summary["currency"], loss, (ci[0], ci[1]), per, p_change, p_ci,
                           summary.get("volume_per_month"), lower, higher, drawn.get("p_lower_expected_loss"),
                           drawn.get("expected_loss_per_instance")))
    return out


def _root_movers(base: list[dict], variant: list[dict], notable: float) -> tuple[list[Mover], list[Mover]]:
    rows: dict[tuple[str, str], list[float]] = {}
    for i, table in enumerate((base, variant)):
        for a in table:
            rows.setdefault((a["root_cause_step"], a["error_type"]), [0.0, 0.0])[i] = a["loss_per_instance"]
    movers = [Mover(step, etype, b, v) for (step, etype), (b, v) in rows.items() if abs(v - b) >= max(notable, 1e-12)]
    lower = sorted((m for m in movers if m.change < 0), key=lambda m: m.change)[:MOVERS]
    higher = sorted((m for m in movers if m.change > 0), key=lambda m: -m.change)[:MOVERS]
    return lower, higher
