"""Metrics: turn Monte Carlo counts or exact expectations into the summary (DESIGN.md, summary.json).

Every probability comes with a 95% confidence interval: Wilson for proportions, normal (CLT) for means,
delta method for ratios. Exact (analytic) results have intervals of zero width.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.core.stats import POISSON_ZERO_95, Z95, hist_moments, mean_ci, ratio_ci, wilson
from sim.model.plan import Plan
from sim.model.tokens import CAUGHT, ERROR, FLAGGED
from sim.trace.exact import Exact
from sim.trace.schema import PASS_K
from sim.trace.tally import Tally


def _ci(lo_hi: tuple[float, float]) -> list[float]:
    return [float(lo_hi[0]), float(lo_hi[1])]


def summary_from_tally(t: Tally) -> dict[str, Any]:
    """The summary block of one variant from Monte Carlo counts."""
    plan, n = t.plan, t.n
    R = len(plan.roots)
    fail_by_root = np.zeros(R, dtype=np.int64)
    loss_by_root = np.zeros(R)
    escalation = 0.0
    for s in plan.acts:
        fails = t.step_codes[s.pos, ERROR:]
        det = t.detected[s.pos]
        fail_by_root += fails
        loss_by_root += (fails - det) * s.failure_loss + det * s.detected_loss
        escalation += (t.step_codes[s.pos, CAUGHT] + t.step_codes[s.pos, FLAGGED]) * s.escalation_cost
    loss_sum, loss_sq, _ = hist_moments(t.loss_hist)
    expected_loss, loss_ci = mean_ci(loss_sum, loss_sq, n)

    F = np.arange(t.fe_shape[0])[:, None]
    E = np.arange(t.fe_shape[1])[None, :]
    c = t.failures_by_root_errors
    amp, amp_ci = ratio_ci((c * F).sum(), (c * E).sum(), (c * F * F).sum(), (c * E * E).sum(),
                            (c * F * E).sum(), n)

    attribution, cascade = [], []
    total_fail, total_loss = fail_by_root.sum(), loss_by_root.sum()
    worst_loss = sum(max(s.failure_loss, s.detected_loss) for s in plan.acts)
    for r in range(R):
        step, etype = plan.root_label(r)
        _, loss_sq_r, _ = hist_moments(t.loss_from_root_hist[r])
        mean_loss, mean_loss_ci = mean_ci(loss_by_root[r], loss_sq_r, n)
        mean_fail, mean_fail_ci = mean_ci(fail_by_root[r], t.failures_from_root_sq[r], n)
        if fail_by_root[r] == 0:
            # No failure seen: the normal interval collapses to a point. Poisson's 95% bound for zero events
            # (3.69 / n instances with a failure), times the most failures / loss one root error can cause.
            upper = POISSON_ZERO_95 / n
            mean_fail_ci = (0.0, upper * len(plan.acts))
            mean_loss_ci = (0.0, upper * worst_loss)
        attribution.append({
            "root_cause_step": step, "error_type": etype,
            "share_of_failures": float(fail_by_root[r] / total_fail) if total_fail else 0.0,
            "share_of_loss": float(loss_by_root[r] / total_loss) if total_loss else 0.0,
            "failures_per_instance": mean_fail, "failures_per_instance_ci95": _ci(mean_fail_ci),
            "loss_per_instance": mean_loss, "loss_per_instance_ci95": _ci(mean_loss_ci),
        })
        orig = int(t.originated[r])
        cascade.append({
            "root_cause_step": step, "error_type": etype,
            "p_root_error": orig / n, "p_root_error_ci95": _ci(wilson(orig, n)),
            "p_action_failure_given_root": float(t.any_failure_from_root[r] / orig) if orig else None,
            "p_action_failure_given_root_ci95": _ci(wilson(int(t.any_failure_from_root[r]), orig)) if orig else None,
            **_fates(orig, {"caught": int(t.caught_from_root[r]), "masked": int(t.masked_from_root[r])}),
            "action_failures_per_root_error": float(fail_by_root[r] / orig) if orig else None,
        })
    pass_k = [{"k": k + 1, "p": float(t.pass_k_success[k] / t.pass_k_n),
               "ci95": _ci(wilson(int(t.pass_k_success[k]), t.pass_k_n))} for k in range(PASS_K)] \
        if t.pass_k_n else []
    return _block(
        plan, n,
        p_failure=t.failed / n, p_failure_ci95=_ci(wilson(t.failed, n)),
        expected_loss=expected_loss, expected_loss_ci95=_ci(loss_ci),
        failure_loss=float(loss_by_root.sum() / n), escalation=escalation / n,
        silent=t.silent / n, silent_ci95=_ci(wilson(t.silent, n)),
        amplification=amp, amplification_ci95=_ci(amp_ci),
        action_failures=float(total_fail / n), root_errors=float(t.originated.sum() / n),
        escalation_rate=(t.escalated_caught + t.escalated_false_alarm) / n,
        attribution=attribution, cascade=cascade, pass_k=pass_k, pass_k_sample=t.pass_k_n)


def _fates(orig: int, counts: dict[str, int]) -> dict[str, Any]:
    """P(caught | root) and P(masked | root) from counts of the root's `orig` errors, with Wilson intervals.
    With P(action failure | root) they sum to 1: a root error that caused no action failure was caught by a gate
    or else masked."""
    out: dict[str, Any] = {}
    for fate, k in counts.items():
        out[f"p_{fate}_given_root"] = k / orig if orig else None
        out[f"p_{fate}_given_root_ci95"] = _ci(wilson(k, orig)) if orig else None
    return out


def _exact_fates(orig: float, masses: dict[str, float]) -> dict[str, Any]:
    """`_fates` from exact probabilities (zero-width intervals)."""
    out: dict[str, Any] = {}
    for fate, mass in masses.items():
        p = min(max(mass / orig, 0.0), 1.0) if orig > 0 else None
        out[f"p_{fate}_given_root"] = p
        out[f"p_{fate}_given_root_ci95"] = [p, p] if p is not None else None
    return out


def summary_from_exact(plan: Plan, x: Exact) -> dict[str, Any]:
    """The summary block of one variant from exact (analytic) results: intervals have zero width."""
    R = len(plan.roots)
    total_fail, total_loss = x.failures_from_root.sum(), x.loss_from_root.sum()
    attribution, cascade = [], []
    for r in range(R):
        step, etype = plan.root_label(r)
        attribution.append({
            "root_cause_step": step, "error_type": etype,
            "share_of_failures": float(x.failures_from_root[r] / total_fail) if total_fail else 0.0,
            "share_of_loss": float(x.loss_from_root[r] / total_loss) if total_loss else 0.0,
            "failures_per_instance": float(x.failures_from_root[r]),
            "failures_per_instance_ci95": [float(x.failures_from_root[r])] * 2,
            "loss_per_instance": float(x.loss_from_root[r]), "loss_per_instance_ci95": [float(x.loss_from_root[r])] * 2,
        })
        orig = float(x.originated[r])
        given = float(x.any_failure_from_root[r] / orig) if orig > 0 else None
        cascade.append({
            "root_cause_step": step, "error_type": etype,
            "p_root_error": orig, "p_root_error_ci95": [orig, orig],
            "p_action_failure_given_root": given,
            "p_action_failure_given_root_ci95": [given, given] if given is not None else None,
            **_exact_fates(orig, {"caught": float(x.caught_from_root[r]), "masked": float(x.masked_from_root[r])}),
            "action_failures_per_root_error": float(x.failures_from_root[r] / orig) if orig > 0 else None,
        })
    amp = x.action_failures / x.root_errors if x.root_errors > 0 else 0.0
    loss = x.expected_failure_loss + x.expected_escalation_cost
    return _block(
        plan, None,
        p_failure=x.p_failure, p_failure_ci95=[x.p_failure] * 2,
        expected_loss=loss, expected_loss_ci95=[loss, loss],
        failure_loss=x.expected_failure_loss, escalation=x.expected_escalation_cost,
        silent=x.silent_failure_rate, silent_ci95=[x.silent_failure_rate] * 2,
        amplification=amp, amplification_ci95=[amp, amp],
        action_failures=x.action_failures, root_errors=x.root_errors, escalation_rate=None,
        attribution=attribution, cascade=cascade,
        pass_k=[{"k": k + 1, "p": float(p), "ci95": [float(p)] * 2} for k, p in enumerate(x.pass_k)],
        pass_k_sample=None)


def _block(plan: Plan, n: int | None, **v: Any) -> dict[str, Any]:
    attribution = sorted(v["attribution"], key=lambda row: -row["share_of_loss"])
    return {
        "variant": plan.variant,
        "p_failure": float(v["p_failure"]), "p_failure_ci95": v["p_failure_ci95"],
        "expected_loss_per_instance": float(v["expected_loss"]),
        "expected_loss_per_instance_ci95": v["expected_loss_ci95"],
        "expected_failure_loss_per_instance": float(v["failure_loss"]),
        "expected_escalation_cost_per_instance": float(v["escalation"]),
        "silent_failure_rate": float(v["silent"]), "silent_failure_rate_ci95": v["silent_ci95"],
        "amplification": float(v["amplification"]), "amplification_ci95": v["amplification_ci95"],
        "action_failures_per_instance": float(v["action_failures"]),
        "root_errors_per_instance": float(v["root_errors"]),
        "escalation_rate": v["escalation_rate"],
        "attribution": attribution,
        "cascade": v["cascade"],
        "pass_k": v["pass_k"],
        "pass_k_sample": v["pass_k_sample"],
    }


def paired_difference(variant: Tally, base: Tally) -> dict[str, Any]:
    """Variant minus base, paired instance by instance (common random numbers)."""
    n = variant.pair_n
    d_p = (variant.pair_only_variant - variant.pair_only_base) / n
    discordant = (variant.pair_only_variant + variant.pair_only_base) / n
    var_p = max(discordant - d_p * d_p, 0.0) * n / max(n - 1, 1)
    half = Z95 * math.sqrt(var_p / n)
    s, sq, _ = hist_moments(variant.pair_loss_hist)
    d_loss, loss_ci = mean_ci(s, sq, n)
    return {"p_failure": {"difference": d_p, "ci95": [d_p - half, d_p + half]},
            "expected_loss_per_instance": {"difference": d_loss, "ci95": _ci(loss_ci)},
            "instances_only_variant_failed": variant.pair_only_variant,
            "instances_only_base_failed": variant.pair_only_base}


def exact_difference(variant: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Variant minus base from exact summaries (zero-width intervals)."""
    d_p = variant["p_failure"] - base["p_failure"]
    d_l = variant["expected_loss_per_instance"] - base["expected_loss_per_instance"]
    return {"p_failure": {"difference": d_p, "ci95": [d_p, d_p]},
            "expected_loss_per_instance": {"difference": d_l, "ci95": [d_l, d_l]}}
