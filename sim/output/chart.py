"""A chart of the report: a plotly figure with its title, the one sentence saying what it shows, and an optional
table under it; and the one layout every chart shares (title, axes with units, legend below)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
"""Colours by variant, in the order of the summary's variants."""


@dataclass
class Chart:
    key: str
    """The figure's id in the HTML and the static image's file name."""
    title: str
    caption: str
    figure: go.Figure
    table_html: str = ""


def layout(fig: go.Figure, title: str, x: str | None = None, y: str | None = None, height: int = 420) -> go.Figure:
    """The shared look: title top left, white template, legend under the plot, axis titles with units."""
    fig.update_layout(title={"text": title, "x": 0.01}, height=height, template="plotly_white",
                      margin={"l": 70, "r": 30, "t": 60, "b": 60}, legend={"orientation": "h", "y": -0.2})
    if x:
        fig.update_xaxes(title_text=x)
    if y:
        fig.update_yaxes(title_text=y)
    return fig


def figure_json(fig: go.Figure) -> str:
    """The figure as JSON that is also valid JavaScript, with no character that could close a <script> element."""
    return fig.to_json().replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def figure_html(chart: Chart) -> str:
    """The chart's place in the page: its div, caption (escaped) and table."""
    return (f"<figure id='{chart.key}'><div class='chart' id='chart-{chart.key}'></div>"
            f"<figcaption>{html.escape(chart.caption)}</figcaption>{chart.table_html}</figure>")


def charts_script(charts: Sequence[Chart]) -> str:
    """The <script> element drawing every chart into its div (plotly.js, loaded by the page)."""
    return "<script>" + "".join(
        f"(function(){{var f={figure_json(c.figure)};Plotly.newPlot('chart-{c.key}',f.data,f.layout,"
        "{responsive:true,displaylogo:false});})();" for c in charts) + "</script>"
