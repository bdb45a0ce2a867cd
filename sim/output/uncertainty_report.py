"""The report's uncertainty sections: bands next to the headline, the band table with P(better), the
loss-exceedance curve with its band, Sobol indices, value of information in money, and the counterfactual
waterfall with the importance table.

Each section appears only when the run has its data, and every figure is read from its one summary key
(`uncertainty`, `sobol`, `counterfactuals`, `importance`; README "Input uncertainty"); the words come from
`sim.output.uncertainty_text`, so the captions, the markdown and the terminal say the same numbers.
"""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sim.output import uncertainty_text as words
from sim.output.chart import PALETTE, Chart, layout

EXCEEDANCE_CURVES = ("loss_exceedance",)
"""Keys of `summary.uncertainty` holding a loss-exceedance curve with its band (`per`, `draws`, `amounts`,
`variants.<v>: [{loss, median, p05, p95}]`); a curve per period is one more key here."""

GROUPINGS = ("input", "retriever", "step", "error_type")
"""EVPPI groupings shown, in this order (`uncertainty.value_of_information.evppi_per_instance.<grouping>`)."""

BANDS_BESIDE_HEADLINE = ("analytic", "monte_carlo")
"""Engines whose headline is the per-instance expectation the draws evaluate; a timeline's (queues) or an agent's
(real text) headline is another quantity, so its bands stay in their own table, labelled."""

IMPORTANCE_TOP = 12
"""Basic events shown per variant in the importance table (importance.csv holds them all)."""


def headline_band_html(summary: dict[str, Any], variant: str, metric: str) -> str:
    """The band of one headline cell (empty unless the run propagated input uncertainty)."""
    u = summary.get("uncertainty")
    if (not u or summary["engine"] not in BANDS_BESIDE_HEADLINE or metric not in dict(words.METRICS)
            or variant not in u["results"]):
        return ""
    text = words.band_text(u["results"][variant][metric], words.metric_format(metric, summary["currency"]))
    return f"<div class='band' data-band='{metric}'>{html.escape(text)} over the inputs</div>"


def section_html(summary: dict[str, Any]) -> str:
    """The band table: each variant's figures and each paired difference, median and 5-95% over the draws."""
    u = summary.get("uncertainty")
    if not u:
        return ""
    cur = summary["currency"]
    at_means = words.at_means(u)
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in words.METRICS)
    rows = []
    for name, r in u["results"].items():
        cells = "".join(
            f"<td data-band='{m}'>{html.escape(words.band_text(r[m], words.metric_format(m, cur)))}"
            f"<div class='ci'>{html.escape(at_means)} {html.escape(words.metric_format(m, cur)(r[m]['point']))}</div>"
            "</td>"
            for m, _ in words.METRICS)
        rows.append(f"<tr data-variant='{html.escape(name)}'><th scope='row'>{html.escape(name)}</th>{cells}"
                    "<td></td></tr>")
    for name, d in (u.get("differences") or {}).items():
        cells = "".join(f"<td data-band='{m}'>{html.escape(words.band_text(d[m], words.metric_format(m, cur, True)))}"
                        "</td>" for m, _ in words.METRICS)
        rows.append(f"<tr data-difference='{html.escape(name)}'><th scope='row'>{html.escape(name)} - base</th>"
                    f"{cells}<td data-p-better='{d['p_lower_expected_loss']!r}'>"
                    f"{html.escape(words.pct(d['p_lower_expected_loss']))}</td></tr>")
    inputs = "".join(
        f"<tr><td>{html.escape(i['name'])}</td><td>{html.escape(_distribution(i['distribution']))}</td>"
        f"<td>{i['mean']:.4g}</td><td>{html.escape(str(i['source']))}</td>"
        f"<td>{html.escape(', '.join(i['variants']))}</td></tr>" for i in u["inputs"])
    other = ("" if summary["engine"] in BANDS_BESIDE_HEADLINE else
             f" The headline is the {summary['engine']} engine's; these bands are the per-instance model's "
             f"({u['computed_by']}), a different quantity, so they are not shown beside it.")
    return (f"<section id='uncertainty'><h2>Input uncertainty</h2><p>{html.escape(words.header_line(u))}. The "
            "headline uses each input's mean; these are the figures over the inputs' uncertainty, and each "
            f"difference is paired draw by draw (the same input values for both).{html.escape(other)}</p>"
            f"<table class='headline uncertainty'><thead><tr><th></th>{head}<th>P(lower expected loss than base)"
            f"</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "<details><summary>The uncertain inputs</summary><table class='sensitivity'><thead><tr><th>input</th>"
            "<th>distribution</th><th>mean</th><th>source</th><th>read by</th></tr></thead>"
            f"<tbody>{inputs}</tbody></table></details></section>")


def _distribution(d: dict[str, list[float]]) -> str:
    return "; ".join(f"{kind} {', '.join(f'{a:g}' for a in args)}" for kind, args in d.items())


def exceedance_band_chart(summary: dict[str, Any], key: str) -> Chart | None:
    """P(loss > amount) per variant: the median over the draws with its 5-95% band (`uncertainty.<key>`)."""
    curve = (summary.get("uncertainty") or {}).get(key)
    if not curve or not curve["amounts"]:
        return None
    cur, per = summary["currency"], curve["per"]
    fig = go.Figure()
    for i, (name, points) in enumerate(curve["variants"].items()):
        color = PALETTE[i % len(PALETTE)]
        x = [p["loss"] for p in points]
        fig.add_scatter(x=x, y=[p["p95"] for p in points], mode="lines", line={"width": 0, "color": color},
                        showlegend=False, hoverinfo="skip", legendgroup=name)
        fig.add_scatter(x=x, y=[p["p05"] for p in points], mode="lines", line={"width": 0, "color": color},
                        fill="tonexty", opacity=0.2, name=f"{name}: 5-95% over the inputs", legendgroup=name)
        fig.add_scatter(x=x, y=[p["median"] for p in points], mode="lines", name=f"{name}: median",
                        line={"shape": "hv", "color": color}, legendgroup=name)
    title = f"Loss exceedance per {per}, with the band the inputs' uncertainty gives"
    layout(fig, title, x=f"loss per {per} ({cur}, log scale)", y=f"probability the loss per {per} is exceeded")
    fig.update_xaxes(type="log")
    fig.update_yaxes(tickformat=".0%")
    base = curve["variants"].get("base") or next(iter(curve["variants"].values()))
    first = base[0]
    caption = (f"At each of {len(curve['amounts'])} amounts, P(loss per {per} > amount) at each of the first "
               f"{curve['draws']} draws ({curve['computed_by']}, {curve['instances_per_draw']:,} instances per draw), "
               f"then the median and the 5-95% band over the draws. Base: P(loss > {first['loss']:,.0f} {cur}) "
               f"{words.band_text(first, words.pct)}.")
    return Chart(f"uncertainty_{key}", title, caption, fig)


def sobol_chart(summary: dict[str, Any]) -> Chart | None:
    """S1 and ST with 95% bootstrap half-widths, one panel per output (each variant, each difference)."""
    s = summary.get("sobol")
    if not s or not s["indices"]:
        return None
    by_output: dict[str, list[dict]] = {}
    for row in s["indices"]:
        by_output.setdefault(row["output"], []).append(row)
    outputs = list(by_output)
    groups = list(dict.fromkeys(r["group"] for r in s["indices"]))[::-1]
    fig = make_subplots(rows=len(outputs), cols=1, shared_xaxes=True, vertical_spacing=0.06 if len(outputs) > 1 else 0,
                        subplot_titles=[words.output_label(o) for o in outputs])
    for r, output in enumerate(outputs, start=1):
        rows = {row["group"]: row for row in by_output[output]}
        for index, color in (("S1", PALETTE[0]), ("ST", PALETTE[1])):
            fig.add_bar(y=groups, x=[rows[g][index] if g in rows else 0.0 for g in groups], orientation="h",
                        name={"S1": "first-order S1", "ST": "total ST"}[index], marker_color=color,
                        legendgroup=index, showlegend=r == 1,
                        error_x={"type": "data", "visible": True,
                                 "array": [rows[g][f"{index}_conf"] if g in rows else 0.0 for g in groups]},
                        row=r, col=1)
    title = f"Which input drives the loss: Sobol indices by {s['by']}"
    layout(fig, title, height=max(360, len(outputs) * (26 * len(groups) + 70) + 140))
    fig.update_layout(barmode="group")
    _every_label(fig)
    _legend_on_top(fig)
    fig.update_xaxes(title_text="share of the output's variance", row=len(outputs), col=1)
    caption = (f"First-order (S1: the input alone) and total (ST: with its interactions) Sobol indices of each "
               f"output's variance over the uncertain inputs (SALib, {s['base_draws']:,} base draws, 95% bootstrap "
               f"error bars from {s['resamples']} resamples). Largest total indices: "
               + ". ".join(words.sobol_lines(summary)[1:]) + ".")
    return Chart("sobol", title, caption, fig)


def value_of_information_chart(summary: dict[str, Any]) -> Chart | None:
    """EVPPI per input group in money per 1,000 instances, one panel per grouping, EVPI as the reference line."""
    voi = (summary.get("uncertainty") or {}).get("value_of_information")
    if not voi:
        return None
    cur, evpi = summary["currency"], words.PER * voi["evpi_per_instance"]
    shown = [g for g in GROUPINGS if voi["evppi_per_instance"].get(g)]
    sizes = [len(voi["evppi_per_instance"][g]) for g in shown]
    fig = make_subplots(rows=len(shown), cols=1, vertical_spacing=0.3 / len(shown),
                        row_heights=[n / sum(sizes) for n in sizes],
                        subplot_titles=[f"by {g.replace('_', ' ')}" for g in shown])
    for r, grouping in enumerate(shown, start=1):
        ranked = sorted(voi["evppi_per_instance"][grouping].items(), key=lambda kv: kv[1])
        fig.add_bar(y=[g for g, _ in ranked], x=[words.PER * v for _, v in ranked], orientation="h",
                    marker_color=PALETTE[2], name="EVPPI", showlegend=False, row=r, col=1,
                    hovertemplate=f"%{{y}}: up to %{{x:,.2f}} {cur} per {words.PER:,} instances<extra></extra>")
        fig.add_vline(x=evpi, line_dash="dash", line_color=PALETTE[1], row=r, col=1, annotation_text="EVPI")
    title = "What a measurement is worth before choosing: EVPPI per input group"
    layout(fig, title, height=max(380, 26 * sum(sizes) + 80 * len(shown) + 120))
    _every_label(fig)
    fig.update_xaxes(title_text=f"{cur} per {words.PER:,} instances", row=len(shown), col=1)
    fig.update_xaxes(rangemode="tozero")
    caption = (" ".join(words.value_of_information_lines(summary)) + f" The dashed line is EVPI ({voi['method']}; "
               "biased upward by cell noise).")
    return Chart("value_of_information", title, caption, fig)


def _every_label(fig: go.Figure) -> None:
    """A label on every bar of a horizontal bar chart (plotly would skip some when they crowd)."""
    fig.update_yaxes(tickmode="linear", tick0=0, dtick=1, automargin=True)


def _legend_on_top(fig: go.Figure) -> None:
    """The legend above the plot, right-aligned: below a tall chart it would sit far from its bars."""
    fig.update_layout(legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1.0, "xanchor": "right"},
                      margin={"t": 90})


def counterfactual_chart(summary: dict[str, Any]) -> Chart | None:
    """Each counterfactual as a bar hanging from the expected loss as is down (or up) to its own loss."""
    rows = summary.get("counterfactuals")
    if not rows:
        return None
    cur = summary["currency"]
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    labels = list(dict.fromkeys(r["counterfactual"] for r in rows))
    fig = go.Figure()
    for i, variant in enumerate(variants):
        mine = {r["counterfactual"]: r for r in rows if r["variant"] == variant}
        as_is = mine["as is"]["expected_loss_per_instance"]
        shown = [label for label in labels if label in mine]
        fig.add_bar(x=shown, base=[0.0 if label == "as is" else as_is for label in shown],
                    y=[as_is if label == "as is" else -mine[label]["loss_removed"] for label in shown],
                    name=variant, marker_color=PALETTE[i % len(PALETTE)],
                    customdata=[mine[label]["expected_loss_per_instance"] for label in shown],
                    hovertemplate=f"%{{x}}: expected loss %{{customdata:,.2f}} {cur} per instance<extra></extra>")
    title = "Where the loss comes from, counterfactually: expected loss as is and with each change alone"
    layout(fig, title, y=f"expected loss per instance ({cur})", height=560)
    fig.update_layout(barmode="group", margin={"t": 90, "b": 140})
    _legend_on_top(fig)
    fig.update_xaxes(tickangle=-25)
    caption = ("The first bar is the expected loss as is; each other bar runs from it to the loss with one change "
               "alone (they do not add up). " + " ".join(line if line.endswith(".") else line + "."
                                                         for line in words.counterfactual_lines(summary)[1:]))
    return Chart("counterfactuals", title, caption, fig, importance_table_html(summary))


def importance_table_html(summary: dict[str, Any]) -> str:
    """Birnbaum (per percentage point), Fussell-Vesely, RAW and RRW per basic event and variant."""
    rows = summary.get("importance")
    if not rows:
        return ""
    cur = html.escape(summary["currency"])
    body = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = sorted((r for r in rows if r["variant"] == variant),
                      key=lambda r: -(r["fussell_vesely"] if r["fussell_vesely"] is not None else -1))
        body += [f"<tr data-variant='{html.escape(variant)}' data-event='{html.escape(r['event'])}'>"
                 f"<td>{html.escape(variant)}</td><td>{html.escape(r['event'])}</td><td>{words.pct(r['value'])}</td>"
                 f"<td>{_num(r['birnbaum'], lambda x: f'{x / 100:,.2f}')}</td>"
                 f"<td>{_num(r['fussell_vesely'], words.pct)}</td><td>{_num(r['raw'], lambda x: f'{x:.3f}')}</td>"
                 f"<td>{_num(r['rrw'], lambda x: f'{x:.3f}')}</td></tr>" for r in mine[:IMPORTANCE_TOP]]
    return ("<table class='sensitivity importance'><caption>Importance of each basic event (rate): Birnbaum = "
            "(L(p_max) - L(0)) / p_max, said per percentage point; Fussell-Vesely = share of the expected loss that "
            "goes if the event never happens; RAW = L(p_max) / L; RRW = L / L(0).</caption><thead><tr><th>variant"
            f"</th><th>basic event</th><th>rate</th><th>Birnbaum ({cur} per instance per +1 percentage point)</th>"
            "<th>Fussell-Vesely</th><th>RAW</th><th>RRW</th></tr></thead><tbody>" + "".join(body)
            + "</tbody></table>")


def _num(x: float | None, fmt) -> str:
    return "—" if x is None else html.escape(fmt(x))


def charts(summary: dict[str, Any]) -> list[Chart]:
    """The uncertainty charts the run has data for, in reading order."""
    made = [exceedance_band_chart(summary, key) for key in EXCEEDANCE_CURVES]
    made += [sobol_chart(summary), value_of_information_chart(summary), counterfactual_chart(summary)]
    return [c for c in made if c is not None]


__all__ = ["EXCEEDANCE_CURVES", "headline_band_html", "section_html", "charts", "exceedance_band_chart",
           "sobol_chart", "value_of_information_chart", "counterfactual_chart", "importance_table_html"]
