"""The cascade report: one self-contained HTML file (plotly.js inline) and a markdown summary.

Every chart has a title, axes with units and one sentence saying what it shows. Every string from the summary
(most of which a user wrote, and a run folder can be edited) is escaped: HTML text through `html.escape`, chart
JSON with `<`, `>` and `&` as unicode escapes, so no scenario name, seed or step can open a tag.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import yaml

from sim.core.atomic import write_text
from sim.output import uncertainty_report
from sim.output.chart import PALETTE, Chart, charts_script, figure_html
from sim.output.chart import layout as _layout
from sim.output.run_folder import open_run_folder
from sim.output.uncertainty_text import lines as uncertainty_lines
from sim.output.verdict import verdicts


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def _blocks(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"base": summary, **summary.get("variant_results", {})}


SANKEY_OUTCOMES = (("action failure", "p_action_failure_given_root"),
                   ("caught by a verifier", "p_caught_given_root"),
                   ("masked", "p_masked_given_root"))
"""The Sankey's outcome nodes and the summary's cascade key (per root) each one's bands come from."""


def sankey_chart(summary: dict[str, Any]) -> Chart:
    """Root errors per 1,000 instances: error type -> root-cause step -> action failure, caught or masked (one
    'masked or caught' node for a run folder written before the two were kept apart per root)."""
    rows = [c for c in summary["cascade"] if c["p_root_error"] > 0]
    apart = all("p_caught_given_root" in c for c in rows)
    ends = [end for end, _ in SANKEY_OUTCOMES] if apart else ["action failure", "masked or caught"]

    def fates(c: dict[str, Any]) -> list[float]:
        if apart:
            return [c[key] or 0.0 for _, key in SANKEY_OUTCOMES]
        failed = c["p_action_failure_given_root"] or 0.0
        return [failed, 1.0 - failed]

    types = sorted({c["error_type"] for c in rows})
    steps = sorted({c["root_cause_step"] for c in rows})
    labels = [f"type: {t}" for t in types] + [f"step: {s}" for s in steps] + ends
    idx = {label: i for i, label in enumerate(labels)}
    src, dst, val, text = [], [], [], []
    totals = dict.fromkeys(ends, 0.0)
    for c in rows:
        per_k = 1000 * c["p_root_error"]
        src.append(idx[f"type: {c['error_type']}"])
        dst.append(idx[f"step: {c['root_cause_step']}"])
        val.append(per_k)
        text.append(f"{c['error_type']} at {c['root_cause_step']}")
        for end, share in zip(ends, fates(c), strict=True):
            v = per_k * share
            totals[end] += v
            if v > 0:
                src.append(idx[f"step: {c['root_cause_step']}"])
                dst.append(idx[end])
                val.append(v)
                text.append(f"{c['error_type']} at {c['root_cause_step']} -> {end}")
    fig = go.Figure(go.Sankey(
        node={"label": labels, "pad": 12, "thickness": 14},
        link={"source": src, "target": dst, "value": val, "customdata": text,
              "hovertemplate": "%{customdata}: %{value:.2f} per 1,000 instances<extra></extra>"}))
    title = "Cascades: root errors per 1,000 instances, from error type to root-cause step to outcome"
    _layout(fig, title, height=520)
    if not apart:
        caption = ("Each band is root errors per 1,000 instances (base). This run folder was written before caught "
                   "and masked were kept apart per root, so one node holds both; run `cascade run` again to see "
                   "them apart.")
        return Chart("sankey", title, caption, fig)
    cur = summary["currency"]
    failed, caught, masked = totals.values()
    caption = (f"Each band is root errors per 1,000 instances (base), each followed to one outcome: of "
               f"{failed + caught + masked:,.2f}, {failed:,.2f} reached an action failure, {caught:,.2f} were caught "
               f"by a verifier and {masked:,.2f} were masked. Those reaching 'action failure' cause the failure "
               f"loss of {summary['expected_failure_loss_per_instance']:,.2f} {cur} per instance (an error that made "
               "any action wrong counts there, even if a verifier caught it on another path). 'Caught by a "
               "verifier': a verify step stopped it before any action, which went to a human instead (a verifier's "
               "save). 'Masked': no verifier caught it and no action went wrong because of it: a decision came out "
               "right anyway, another input's error or an escalation outweighed it where inputs met, or it reached "
               "no action (a decision's luck). The expected loss of "
               f"{summary['expected_loss_per_instance']:,.2f} {cur} per instance also counts escalation costs "
               f"({summary['expected_escalation_cost_per_instance']:,.2f} {cur}: caught errors and false alarms "
               "handed to a human).")
    return Chart("sankey", title, caption, fig)


def attribution_chart(summary: dict[str, Any], top: int = 12) -> Chart:
    cur = summary["currency"]
    base = summary["attribution"][:top]
    labels = [f"{a['root_cause_step']} / {a['error_type']}" for a in base][::-1]
    fig = go.Figure()
    for i, (name, block) in enumerate(_blocks(summary).items()):
        by = {(a["root_cause_step"], a["error_type"]): a for a in block["attribution"]}
        rows = [by.get((a["root_cause_step"], a["error_type"])) for a in base][::-1]
        values = [r["loss_per_instance"] if r else 0.0 for r in rows]
        errs = [(r["loss_per_instance_ci95"][1] - r["loss_per_instance"]) if r else 0.0 for r in rows]
        fig.add_bar(name=name, y=labels, x=values, orientation="h", marker_color=PALETTE[i % len(PALETTE)],
                    error_x={"type": "data", "array": errs, "visible": True})
    title = "Attribution: failure loss per instance by root cause"
    _layout(fig, title, x=f"failure loss per instance ({cur})", y="root-cause step / error type",
            height=max(360, 40 * len(labels) + 140))
    fig.update_layout(barmode="group")
    top_row = base[0] if base else None
    caption = (f"The largest source of loss is {top_row['error_type']} at {top_row['root_cause_step']} "
               f"({_pct(top_row['share_of_loss'])} of failure loss in the base scenario); bars show 95% CIs."
               if top_row else "No failure loss.")
    return Chart("attribution", title, caption, fig)


def tornado_chart(table: pd.DataFrame, summary: dict[str, Any], top: int = 12) -> Chart:
    """The base variant's one-at-a-time sensitivity (sensitivity.csv holds every variant's)."""
    currency = summary["currency"]
    if "variant" in table.columns:
        table = table[table["variant"] == "base"].reset_index(drop=True)
    rows = table.head(top).iloc[::-1]
    reference, engine = float(table["reference_loss"].iloc[0]), str(table["computed_by"].iloc[0])
    fig = go.Figure()
    fig.add_bar(name="parameter at its low value", y=rows["parameter"], x=rows["loss_at_low"] - reference,
                orientation="h", marker_color=PALETTE[0],
                customdata=rows["low"], hovertemplate="at %{customdata:.3f}: %{x:+,.2f}<extra></extra>")
    fig.add_bar(name="parameter at its high value", y=rows["parameter"], x=rows["loss_at_high"] - reference,
                orientation="h", marker_color=PALETTE[1],
                customdata=rows["high"], hovertemplate="at %{customdata:.3f}: %{x:+,.2f}<extra></extra>")
    title = "Sensitivity (base): change in expected loss per instance when one parameter moves"
    _layout(fig, title, x=f"change in expected loss per instance ({currency})", y="parameter",
            height=max(360, 36 * len(rows) + 140))
    fig.update_layout(barmode="overlay")
    first = table.iloc[0] if len(table) else None
    caption = (f"One parameter at a time (error rates x0.5 / x1.5, catch rates -/+0.1), computed by {engine} "
               f"from an expected loss of {reference:,.2f} {currency} per instance: '{first['parameter']}' moves it "
               f"most ({first['importance_per_point']:+,.2f} {currency} per instance for each percentage point, "
               f"elasticity {first['elasticity']:+.3f}). sensitivity.csv holds every variant's table."
               if first is not None else "No parameter to vary.")
    tl = summary.get("timeline")
    if tl and first is not None:
        caption += (f" The headline is the timeline's ({summary['expected_loss_per_instance']:,.2f} {currency} per "
                    "instance, with its queues); this sensitivity is the per-instance model's, without them.")
        bypassed = {sid: rate for sid, rate in tl["bypass_rate"].items() if rate > 0.01}
        if bypassed:
            caption += (" Reviews were bypassed for lack of capacity (" + ", ".join(
                f"{sid}: {_pct(rate)} of instances" for sid, rate in bypassed.items())
                + "), so a reviewer's catch rate acts on fewer instances than this per-instance sensitivity "
                "assumes: adding capacity may matter more than a better catch rate.")
    cur = html.escape(currency)
    body = "".join(
        f"<tr><td>{html.escape(r.parameter)}</td><td>{r.value:.4g}</td><td>{r.loss_at_low:,.2f}</td>"
        f"<td>{r.loss_at_high:,.2f}</td><td>{r.importance_per_point:+,.2f}</td><td>{r.elasticity:+.3f}</td></tr>"
        for r in table.head(top).itertuples())
    table_html = (f"<table class='sensitivity'><thead><tr><th>parameter</th><th>value</th><th>loss at low ({cur})"
                  f"</th><th>loss at high ({cur})</th><th>per +1 percentage point ({cur})</th><th>elasticity</th></tr>"
                  f"</thead><tbody>{body}</tbody></table>")
    return Chart("sensitivity", title, caption, fig, table_html)


def pass_k_chart(summary: dict[str, Any]) -> Chart:
    fig = go.Figure()
    for i, (name, block) in enumerate(_blocks(summary).items()):
        pk = block.get("pass_k") or []
        if not pk:
            continue
        ks = [p["k"] for p in pk]
        color = PALETTE[i % len(PALETTE)]
        fig.add_scatter(x=ks, y=[p["p"] for p in pk], name=f"{name}: pass^k", mode="lines+markers",
                        line={"color": color},
                        error_y={"type": "data", "symmetric": False, "visible": True,
                                 "array": [p["ci95"][1] - p["p"] for p in pk],
                                 "arrayminus": [p["p"] - p["ci95"][0] for p in pk]})
        fig.add_scatter(x=ks, y=[pk[0]["p"] ** k for k in ks], name=f"{name}: pass^1 ** k (independent attempts)",
                        mode="lines", line={"color": color, "dash": "dot"})
    title = "pass^k: probability that k attempts at the same instance all succeed"
    _layout(fig, title, x="attempts k", y="probability all k succeed")
    fig.update_yaxes(tickformat=".0%")
    caption = ("Above the dotted line, failures concentrate on hard instances (difficulty correlation): retrying "
               "the same instance helps less than independent attempts would.")
    return Chart("pass_k", title, caption, fig)


def variants_chart(summary: dict[str, Any]) -> Chart | None:
    diffs = summary.get("differences") or {}
    if not diffs:
        return None
    cur = summary["currency"]
    names = list(diffs)
    d_loss = [diffs[n]["expected_loss_per_instance"] for n in names]
    fig = go.Figure(go.Bar(x=names, y=[d["difference"] for d in d_loss], marker_color=PALETTE[3],
                           error_y={"type": "data", "symmetric": False, "visible": True,
                                    "array": [d["ci95"][1] - d["difference"] for d in d_loss],
                                    "arrayminus": [d["difference"] - d["ci95"][0] for d in d_loss]}))
    title = "Variants: paired difference in expected loss against the base scenario"
    _layout(fig, title, x="variant", y=f"expected loss per instance, variant minus base ({cur})")
    parts = []
    for n in names:
        d = diffs[n]["expected_loss_per_instance"]
        verdict = "lower" if d["ci95"][1] < 0 else ("higher" if d["ci95"][0] > 0 else "not distinguishable")
        parts.append(f"{n}: {d['difference']:+,.2f} {cur} per instance ({verdict})")
    caption = ("Differences are paired instance by instance (common random numbers), with 95% CIs. "
               + "; ".join(parts) + ".")
    return Chart("variants", title, caption, fig)


def timeline_chart(summary: dict[str, Any], daily: pd.DataFrame) -> Chart:
    cur = summary["currency"]
    rows = daily[(daily["variant"] == "base") & (daily["replication"] == 0)]
    fig = go.Figure()
    fig.add_bar(x=rows["day"], y=rows["loss"], name=f"loss booked that day ({cur})", marker_color=PALETTE[1])
    fig.add_scatter(x=rows["day"], y=rows["backlog"], name="instances waiting for review at day end", yaxis="y2",
                    mode="lines", line={"color": PALETTE[0]})
    title = "Timeline: daily loss and review backlog (base, replication 0)"
    _layout(fig, title, x="day of the horizon", y=f"loss booked per day ({cur})")
    fig.update_layout(yaxis2={"title": {"text": "backlog (instances)"}, "overlaying": "y", "side": "right",
                               "rangemode": "tozero"})
    tl = summary["timeline"]
    waits = ", ".join(f"{sid}: wait {tl['mean_wait_hours'][sid]:.1f} h, {_pct(tl['bypass_rate'][sid])} of reviews "
                      "bypassed" for sid in tl["mean_wait_hours"])
    caption = ("Loss is booked when it becomes known: escalations and audited failures at completion, silent "
               f"failures when they surface. {waits or 'No staffed review step.'}")
    return Chart("timeline", title, caption, fig)


def exceedance_chart(summary: dict[str, Any]) -> Chart:
    cur = summary["currency"]
    fig = go.Figure()
    for i, (name, block) in enumerate(_blocks(summary).items()):
        h = block["timeline"]["horizon_loss"]
        fig.add_scatter(x=[p["loss"] for p in h["exceedance"]], y=[p["p_exceed"] for p in h["exceedance"]],
                        name=name, mode="lines+markers", line={"shape": "hv", "color": PALETTE[i % len(PALETTE)]})
    days = summary["timeline"]["horizon_days"]
    title = f"Loss exceedance over the {days}-day horizon"
    _layout(fig, title, x=f"horizon loss ({cur})", y="probability the loss is exceeded")
    fig.update_yaxes(tickformat=".0%")
    h = summary["timeline"]["horizon_loss"]
    caption = (f"Across {h['replications']} replications (base): mean {h['mean']:,.0f} {cur}, VaR95 "
               f"{h['var95']:,.0f}, CVaR95 {h['cvar95']:,.0f}; few replications make the tail coarse.")
    return Chart("exceedance", title, caption, fig)


def charts(summary: dict[str, Any], sensitivity: pd.DataFrame | None = None,
           daily: pd.DataFrame | None = None) -> list[Chart]:
    """All charts of a report, in reading order (sections appear only when their data exists)."""
    out = [sankey_chart(summary), attribution_chart(summary)]
    if summary.get("timeline") and daily is not None and len(daily):
        out += [timeline_chart(summary, daily), exceedance_chart(summary)]
    if sensitivity is not None and len(sensitivity):
        out.append(tornado_chart(sensitivity, summary))
    if summary.get("pass_k"):
        out.append(pass_k_chart(summary))
    v = variants_chart(summary) if summary["engine"] != "timeline" else None
    if v:
        out.append(v)
    return out + uncertainty_report.charts(summary)


def _headline_html(summary: dict[str, Any]) -> str:
    cur = html.escape(summary["currency"])
    rows = []
    metrics = (("P(wrong action)", "p_failure", _pct), ("expected loss / instance", "expected_loss_per_instance",
               lambda x: f"{x:,.2f} {cur}"), ("silent failure rate", "silent_failure_rate", _pct),
               ("amplification", "amplification", lambda x: f"{x:.3f}"))
    blocks = _blocks(summary)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in blocks)
    for label, key, fmt in metrics:
        cells = []
        for name, b in blocks.items():
            ci = b.get(key + "_ci95")
            ci_text = "" if not ci or ci[0] == ci[1] else f"<div class='ci'>[{fmt(ci[0])}, {fmt(ci[1])}]</div>"
            band = uncertainty_report.headline_band_html(summary, name, key)
            cells.append(f"<td data-metric='{key}'><span class='value'>{fmt(b[key])}</span>{ci_text}{band}</td>")
        rows.append(f"<tr><th scope='row'>{label}</th>{''.join(cells)}</tr>")
    return f"<table class='headline'><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _verdict_html(summary: dict[str, Any]) -> str:
    """The decision first: each variant against the base, in sentences the numbers support."""
    found = verdicts(summary)
    if not found:
        return ""
    items = "".join(
        f"<li data-variant='{html.escape(v.variant)}' data-loss-change='{v.loss_change!r}' "
        f"data-direction='{html.escape(v.direction)}'>{' '.join(html.escape(s) for s in v.sentences())}</li>"
        for v in found)
    return ("<section id='verdict'><h2>Verdict</h2><p>Each variant against the base, paired instance by instance "
            f"(the same chance for both):</p><ul>{items}</ul></section>")


def _retrievers_html(summary: dict[str, Any]) -> str:
    measured = {n: r for n, r in (summary.get("retrievers") or {}).items() if r.get("kind") == "measured"}
    if not measured:
        return ""
    items = "".join(
        f"<li><b>{html.escape(n)}</b>: model {html.escape(str(r['measured_with'].get('model')))}, corpus "
        f"{html.escape(str(r['measured_with'].get('corpus')))}, measured "
        f"{html.escape(str(r['measured_with'].get('created')))} "
        f"(profile {html.escape(Path(str(r['measured_with'].get('profile'))).name)})</li>" for n, r in measured.items())
    return f"<section><h2>Measured retrievers</h2><p>These error rates were measured, not assumed:</p><ul>{items}</ul></section>"


def _agent_html(summary: dict[str, Any]) -> str:
    """Agent runs: who read the text, over what, and how many injected faults could really be made."""
    agent = summary.get("agent")
    if not agent:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(variant)}</td><td>{html.escape(step)}</td><td>{html.escape(t)}</td>"
        f"<td>{html.escape(str(counts['drawn'][t]))}</td><td>{html.escape(str(counts['applied'].get(t, 0)))}</td></tr>"
        for variant, steps in agent["faults"].items() for step, counts in steps.items()
        for t in sorted(counts["drawn"]))
    invalid = sum(agent.get("invalid_replies", {}).values())
    source = f" (tickets from {html.escape(Path(agent['tickets']).name)})" if agent.get("tickets") else ""
    return (f"<section id='agent'><h2>Agent run</h2><p>The {html.escape(agent['workflow'])} workflow ran as a "
            f"LangGraph agent over real text: {html.escape(str(agent['episodes']))} episodes{source}, read by "
            f"{html.escape(agent['policy'])}, live retrieval with {html.escape(agent['embedding_model'])} in "
            f"{html.escape(agent['store'])}; {html.escape(str(invalid))} invalid model replies. Outcomes compare "
            "every decision and action with ground truth; a fault that could not be made on the text (no site for "
            "the edit, no older version) was not applied.</p><table class='sensitivity'><tr><th>variant</th><th>step</th>"
            f"<th>fault</th><th>drawn</th><th>applied</th></tr>{rows}</table></section>")


CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } .sub { color: #555; margin-top: 0; }
table.headline { border-collapse: collapse; margin: 1rem 0; } .headline th, .headline td { padding: .4rem .9rem;
  border-bottom: 1px solid #ddd; text-align: right; } .headline th[scope=row] { text-align: left; }
.value { font-size: 1.25rem; font-weight: 600; } .ci { color: #666; font-size: .85rem; }
.band { color: #1f4e79; font-size: .85rem; } table.uncertainty td { font-size: .9rem; }
table.importance td:nth-child(2) { text-align: left; } table.importance caption { caption-side: top; text-align: left; color: #444; padding: .3rem 0; }
figure { margin: 2rem 0; } figcaption { color: #444; margin: .3rem 0 0 .5rem; }
table.sensitivity { border-collapse: collapse; margin: .8rem 0 0 .5rem; font-size: .85rem; }
.sensitivity th, .sensitivity td { padding: .2rem .6rem; border-bottom: 1px solid #eee; text-align: right; }
.sensitivity td:first-child, .sensitivity th:first-child { text-align: left; }
"""


def render_html(summary: dict[str, Any], sensitivity: pd.DataFrame | None = None,
                daily: pd.DataFrame | None = None, description: str = "") -> str:
    """The report as one HTML document (plotly.js inline: it opens offline and can be sent as one file)."""
    from plotly.offline import get_plotlyjs

    made = charts(summary, sensitivity, daily)
    n = summary.get("instances")
    engine = summary["engine"]
    sub = (f"{html.escape(str(engine))} engine, seed {html.escape(str(summary['seed']))}"
           + (f", {html.escape(f'{n:,}')} instances per variant" if n else "")
           + f", amounts in {html.escape(summary['currency'])}")
    desc = html.escape(description)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Cascade report: {html.escape(summary['scenario'])}</title>",
        f"<style>{CSS}</style><script>{get_plotlyjs()}</script></head><body>",
        f"<h1 id='scenario-name'>Cascade report: {html.escape(summary['scenario'])}</h1>",
        f"<p class='sub'>{sub}</p>", f"<p>{desc}</p>" if desc else "",
        _verdict_html(summary), "<section><h2>Headline</h2>", _headline_html(summary),
        "<p>P(wrong action): probability that an instance ends with at least one action executed on wrong input. "
        "Silent: no audit detected it. Amplification: action failures per root error. 95% CIs in brackets.</p>"
        "</section>", uncertainty_report.section_html(summary), _retrievers_html(summary), _agent_html(summary)]
    parts += [figure_html(chart) for chart in made]
    parts.append(charts_script(made) + "</body></html>")
    return "".join(parts)


def render_markdown(summary: dict[str, Any], top: int = 5) -> str:
    """A short markdown summary for pull requests and chat."""
    cur = summary["currency"]
    blocks = _blocks(summary)
    lines = [f"### Cascade report: {summary['scenario']} ({summary['engine']}, seed {summary['seed']})", ""]
    lines += [" ".join(v.sentences()) + "\n" for v in verdicts(summary)]
    lines += ["| metric | " + " | ".join(blocks) + " |", "|---|" + "---|" * len(blocks)]

    def cell(b, key, fmt):
        ci = b.get(key + "_ci95")
        return fmt(b[key]) + ("" if not ci or ci[0] == ci[1] else f" [{fmt(ci[0])}, {fmt(ci[1])}]")

    for label, key, fmt in (("P(wrong action)", "p_failure", _pct),
                            ("expected loss / instance", "expected_loss_per_instance", lambda x: f"{x:,.2f} {cur}"),
                            ("silent failure rate", "silent_failure_rate", _pct),
                            ("amplification", "amplification", lambda x: f"{x:.3f}")):
        lines.append(f"| {label} | " + " | ".join(cell(b, key, fmt) for b in blocks.values()) + " |")
    lines += ["", "Top root causes (base): " + "; ".join(
        f"{a['error_type']} at {a['root_cause_step']} {_pct(a['share_of_loss'])} of loss"
        for a in summary["attribution"][:top])]
    if summary.get("timeline"):
        h = summary["timeline"]["horizon_loss"]
        lines.append(f"\nOver {summary['timeline']['horizon_days']} days (base, {h['replications']} replications): "
                     f"horizon loss mean {h['mean']:,.0f} {cur}, VaR95 {h['var95']:,.0f}, CVaR95 {h['cvar95']:,.0f}")
    for name, d in (summary.get("differences") or {}).items():
        if "horizon_loss" in d:
            h = d["horizon_loss"]
            lines.append(f"\n{name} vs base (paired by replication): horizon loss {h['difference']:+,.0f} {cur} "
                         f"[{h['ci95'][0]:+,.0f}, {h['ci95'][1]:+,.0f}]")
            continue
        dl = d["expected_loss_per_instance"]
        lines.append(f"\n{name} vs base (paired): expected loss {dl['difference']:+,.2f} {cur} per instance "
                     f"[{dl['ci95'][0]:+,.2f}, {dl['ci95'][1]:+,.2f}]")
    said = uncertainty_lines(summary)
    if said:
        lines += ["", "**Input uncertainty, sensitivity and counterfactuals**", "", *(f"- {line}" for line in said)]
    text = "\n".join(lines) + "\n"
    return text.replace("<", "&lt;").replace(">", "&gt;")  # markdown renders inline HTML: keep it text


def write_report(summary: dict[str, Any], out: str | Path, sensitivity: pd.DataFrame | None = None,
                 daily: pd.DataFrame | None = None, description: str = "") -> Path:
    """Write the HTML report to `out` and the markdown summary beside it (same name, .md)."""
    out = Path(out)
    write_text(out, render_html(summary, sensitivity, daily, description))
    write_text(out.with_suffix(".md"), render_markdown(summary))
    return out


def report_from_run_dir(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """`cascade report RUN_DIR`: render what the run stored (summary.json, sensitivity.csv, timeline.parquet,
    the scenario's description), after checking the folder is one whole run (`sim.output.run_folder`);
    nothing is recomputed."""
    run = open_run_folder(run_dir)
    return write_report(run.summary, out or run.path / "report.html", run.sensitivity, run.timeline,
                        _description(run.path))


def write_images(run_dir: str | Path, folder: str | Path, fmt: str = "png") -> list[Path]:
    """Each chart of the run's report as a static image (`fmt`: png or svg) in `folder`, named by chart, drawn by
    plotly's own exporter (kaleido, which drives the system's Chrome or Chromium; nothing is downloaded)."""
    import plotly.io as pio

    from sim.core.errors import CascadeError

    run = open_run_folder(run_dir)
    made = charts(run.summary, run.sensitivity, run.timeline)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{chart.key}.{fmt}" for chart in made]
    try:
        pio.write_images([c.figure for c in made], paths, format=fmt, width=1100, scale=2 if fmt == "png" else 1)
    except Exception as exc:  # noqa: BLE001 - kaleido raises several kinds when no browser can be started
        raise CascadeError(f"static images need Chrome or Chromium (apt-get install chromium; the HTML report was "
                           f"written): {type(exc).__name__}: {exc}") from None
    return paths


def _description(folder: Path) -> str:
    """The scenario's description as the run stored it (read as plain YAML: rendering validates nothing)."""
    try:
        data = yaml.safe_load((folder / "scenario.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ""
    return str(data.get("description") or "") if isinstance(data, dict) else ""
