"""Comparing a Monte Carlo summary with an exact one at 99% confidence.

One run yields dozens of figures; checking each at 99% would fail about one in a hundred by chance. The
intervals are therefore Bonferroni-adjusted so that the whole family of comparisons in one call holds with
99% confidence (each single figure at 1 - 0.01/m).
"""

from __future__ import annotations

from statistics import NormalDist

from sim.core.stats import Z95, wilson


def _z(family: int) -> float:
    return NormalDist().inv_cdf(1 - 0.01 / (2 * max(family, 1)))


def disagreements(mc: dict, exact: dict, blocks: int = 1) -> list[str]:
    """Every figure of `mc` (one variant block plus header) outside its family-wise 99% interval; `blocks` is
    the number of variant blocks compared together in one test (the family spans them all)."""
    n = mc["instances"]
    checks: list[tuple[str, str, tuple]] = []  # (label, kind, data)
    for key in ("p_failure", "silent_failure_rate"):
        checks.append((key, "p", (mc[key], n, exact[key])))
    checks.append(("expected loss", "mean", (mc["expected_loss_per_instance"], mc["expected_loss_per_instance_ci95"],
                                             exact["expected_loss_per_instance"])))
    if exact["root_errors_per_instance"] > 0:
        checks.append(("amplification", "mean", (mc["amplification"], mc["amplification_ci95"], exact["amplification"])))
    for pm, pe in zip(mc["pass_k"], exact["pass_k"], strict=True):
        checks.append((f"pass^{pm['k']}", "p", (pm["p"], mc["pass_k_sample"], pe["p"])))
    exact_cascade = {(c["root_cause_step"], c["error_type"]): c for c in exact["cascade"]}
    for c in mc["cascade"]:
        label = f"{c['root_cause_step']}/{c['error_type']}"
        e = exact_cascade[(c["root_cause_step"], c["error_type"])]
        checks.append((f"p_root_error {label}", "p", (c["p_root_error"], n, e["p_root_error"])))
        n_root = round(c["p_root_error"] * n)
        if n_root >= 30:
            for fate in ("action_failure", "caught", "masked"):
                key = f"p_{fate}_given_root"
                checks.append((f"P({fate} | root {label})", "p", (c[key], n_root, e[key])))
    exact_attr = {(a["root_cause_step"], a["error_type"]): a for a in exact["attribution"]}
    for a in mc["attribution"]:
        e = exact_attr[(a["root_cause_step"], a["error_type"])]
        for key in ("failures_per_instance", "loss_per_instance"):
            checks.append((f"{key} {a['root_cause_step']}/{a['error_type']}", "mean", (a[key], a[key + "_ci95"], e[key])))
    z = _z(len(checks) * blocks)
    bad = []
    for label, kind, data in checks:
        if kind == "p":
            observed, size, want = data
            lo, hi = wilson(observed * size, size, z)
            ok = lo - 1e-12 <= want <= hi + 1e-12
        else:
            observed, ci95, want = data
            ok = abs(observed - want) <= (ci95[1] - ci95[0]) / 2 * z / Z95 + 1e-9 * max(1.0, abs(want))
        if not ok:
            bad.append(f"{label}: monte carlo {observed} vs exact {want} (z={z:.2f})")
    return bad
