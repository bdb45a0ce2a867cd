"""What the uncertainty sections say in words: the bands, P(better), value of information, which input drives
the loss, and what each counterfactual removes, as sentences built only from summary keys.

The HTML captions, the markdown and the terminal all take their sentences (and their number formats) from here,
so one quantity is written the same way everywhere. No plotly here: the terminal imports this on every run.
"""

from __future__ import annotations

from typing import Any

METRICS = (("expected_loss_per_instance", "expected loss"), ("p_failure", "P(wrong action)"),
           ("silent_failure_rate", "silent failure rate"))
"""The banded metrics (`summary.uncertainty.results.<variant>.<metric>`) and how the report names them."""

SOBOL_TOP = 3
"""Inputs named per Sobol output, and groups named by their value of information."""

PER = 1000
"""Value of information is said per 1,000 instances (per instance it reads as cents)."""


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def money(x: float, currency: str) -> str:
    return f"{x:,.2f} {currency}"


def signed_money(x: float, currency: str) -> str:
    return f"{x:+,.2f} {currency}"


def signed_points(x: float) -> str:
    return f"{100 * x:+.2f} points"


def band_text(band: dict[str, float], fmt) -> str:
    """`median M [p05, p95]` of one metric's band (`uncertainty.results.<v>.<m>` or `differences.<v>.<m>`)."""
    return f"median {fmt(band['median'])} [{fmt(band['p05'])}, {fmt(band['p95'])}]"


def metric_format(metric: str, currency: str, signed: bool = False):
    """How a banded metric is written: money for losses, percent (or percentage points for a difference)."""
    if metric == "expected_loss_per_instance":
        return (lambda x: signed_money(x, currency)) if signed else (lambda x: money(x, currency))
    return signed_points if signed else pct


def p_better_text(variant: str, p: float) -> str:
    return f"P({variant} has lower expected loss) = {pct(p)}"


def output_label(output: str) -> str:
    """A Sobol output (`expected_loss_per_instance@tuned`, `difference@tuned`) in words."""
    kind, _, variant = output.partition("@")
    return f"{variant} - base" if kind == "difference" else f"expected loss of {variant}"


def per_period(x_per_instance: float, currency: str, volume_per_month: float | None) -> str:
    """An amount per instance said per 1,000 instances, and per month at the scenario's volume when it has one."""
    text = f"{PER * x_per_instance:,.0f} {currency} per {PER:,} instances"
    if volume_per_month:
        text += f" ({volume_per_month * x_per_instance:,.0f} {currency} per month at the scenario's volume)"
    return text


def header_line(u: dict[str, Any]) -> str:
    return (f"Input uncertainty ({u['draws']:,} draws of {len(u['inputs'])} uncertain inputs, {u['design']}, "
            f"{u['computed_by']}): median [5%, 95%]")


def at_means(u: dict[str, Any]) -> str:
    """How the point value of a band is labelled: each input at its mean, and by which engine."""
    return f"at the inputs' means ({u['computed_by'].split(' ')[0]})"


def band_lines(summary: dict[str, Any]) -> list[str]:
    """Each variant's banded metrics, then each paired difference with P(better)."""
    u, cur = summary["uncertainty"], summary["currency"]
    lines = [header_line(u)]
    for name, r in u["results"].items():
        lines.append(f"{name}: " + "; ".join(
            f"{label} {band_text(r[m], metric_format(m, cur))} ({at_means(u)} {metric_format(m, cur)(r[m]['point'])})"
            for m, label in METRICS))
    for name, d in (u.get("differences") or {}).items():
        lines.append(f"{name} - base: " + "; ".join(
            f"{label} {band_text(d[m], metric_format(m, cur, signed=True))}" for m, label in METRICS)
            + f"; {p_better_text(name, d['p_lower_expected_loss'])}")
    return lines


def value_of_information_lines(summary: dict[str, Any], top: int = SOBOL_TOP) -> list[str]:
    """The choice on current information, EVPI, and the input groups most worth measuring before choosing."""
    voi = (summary.get("uncertainty") or {}).get("value_of_information")
    if not voi:
        return []
    cur, volume = summary["currency"], summary.get("volume_per_month")
    lines = [f"On current information choose {voi['choice_on_current_information']}; perfect information on every "
             f"uncertain input is worth up to {per_period(voi['evpi_per_instance'], cur, volume)} (EVPI)."]
    ranked = sorted(voi["evppi_per_instance"]["input"].items(), key=lambda kv: -kv[1])[:top]
    worth = [(g, v) for g, v in ranked if v > 0]
    if worth:
        lines += [f"Measuring {g} precisely is worth up to {per_period(v, cur, volume)} before choosing (EVPPI)."
                  for g, v in worth]
    else:
        draws = summary["uncertainty"]["draws"]
        lines.append(f"No single input, measured precisely, changes the choice within these {draws:,} draws "
                     "(EVPPI 0 for each; the estimate needs many draws per cell, so more draws may find some).")
    return lines


def sobol_lines(summary: dict[str, Any], top: int = SOBOL_TOP) -> list[str]:
    """Per Sobol output, the inputs with the largest total index (with its 95% bootstrap half-width)."""
    s = summary.get("sobol")
    if not s:
        return []
    by_output: dict[str, list[dict]] = {}
    for row in s["indices"]:
        by_output.setdefault(row["output"], []).append(row)
    lines = [f"Which input drives it (Sobol total index ST ± 95%, {s['base_draws']:,} base draws, by {s['by']}):"]
    for output, rows in by_output.items():
        ranked = sorted(rows, key=lambda r: -r["ST"])[:top]
        lines.append(f"{output_label(output)}: " + ", ".join(f"{r['group']} {r['ST']:.2f} ± {r['ST_conf']:.2f}"
                                                           for r in ranked))
    return lines


def counterfactual_lines(summary: dict[str, Any]) -> list[str]:
    """Per variant, what each counterfactual would remove from its expected loss per instance."""
    rows = summary.get("counterfactuals")
    if not rows:
        return []
    cur = summary["currency"]
    lines = ["Where the loss comes from, counterfactually (each change alone, per instance):"]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant and r["loss_removed"] != 0]
        lines.append(f"{variant}: " + "; ".join(removed_text(r, cur) for r in mine))
    if any(r["loss_removed"] < 0 and "removed" not in r["counterfactual"] for r in rows):
        lines.append("A change that makes something perfect can add loss: an error a verifier catches escalates "
                     "the whole instance, which also stops that instance's other errors from reaching an action; "
                     "with the caught error gone, those other errors act.")
    return lines


def removed_text(row: dict[str, Any], currency: str) -> str:
    """`oracle retrieval removes 11,471.33 USD (76.17%)` or `... removed adds 18,946.71 USD`."""
    x = row["loss_removed"]
    verb = "removes" if x >= 0 else "adds"
    share = f" ({pct(abs(row['share_removed']))})" if row.get("share_removed") is not None else ""
    return f"{row['counterfactual']} {verb} {money(abs(x), currency)}{share}"


def lines(summary: dict[str, Any]) -> list[str]:
    """Every uncertainty sentence the run has data for (none for a run without any)."""
    out = band_lines(summary) if summary.get("uncertainty") else []
    return out + value_of_information_lines(summary) + sobol_lines(summary) + counterfactual_lines(summary)


__all__ = ["METRICS", "band_text", "metric_format", "p_better_text", "output_label", "per_period", "lines",
           "band_lines", "value_of_information_lines", "sobol_lines", "counterfactual_lines", "removed_text"]
