"""`cascade report` on a sweep folder: one self-contained HTML file (plotly.js inline). One swept parameter: the
expected loss of every variant along it with its 95% band and the break-even frontier (where a variant starts
to beat base, with its interval); two: a heatmap of each variant's difference from base with the frontier
drawn across it. Failed points are listed with their messages. Nothing is recomputed."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from sim.core.atomic import write_text
from sim.core.errors import CascadeError
from sim.output.chart import PALETTE, Chart, charts_script, figure_html
from sim.output.report import CSS
from sim.sweeps.frontier import break_even
from sim.sweeps.units import MARKER

BAND = "rgba({r},{g},{b},0.18)"


def is_sweep_folder(folder: str | Path) -> bool:
    """True for a folder `cascade sweep` wrote (its marker and its table)."""
    folder = Path(folder)
    return (folder / MARKER).is_file() and (folder / "sweep.parquet").is_file()


def sweep_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Render the study in `folder` to `out` (default: folder/report.html)."""
    folder = Path(folder)
    try:
        table = pd.read_parquet(folder / "sweep.parquet")
        summary = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
        paths = list(summary["parameters"])
        missing = [c for c in ("point", "engine", "variant", "status", *paths) if c not in table.columns]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CascadeError(f"{folder}: not a readable sweep folder ({type(exc).__name__}: {exc}); run "
                           "`cascade sweep` again with this --out to complete it") from None
    if missing:
        raise CascadeError(f"{folder / 'sweep.parquet'}: missing columns {', '.join(missing)}; run `cascade sweep` "
                           "again with this --out")
    target = Path(out) if out else folder / "report.html"
    write_text(target, render_sweep_html(table, summary))
    return target


def charts(table: pd.DataFrame, summary: dict[str, Any]) -> list[Chart]:
    """The study's charts: lines with bands for one swept parameter, heatmaps for two (per engine)."""
    paths = [p for p in summary["parameters"] if pd.api.types.is_numeric_dtype(table[p]) and table[p].nunique() > 1]
    frontier = break_even(table, paths)
    ok = table[table["status"] == "ok"]
    out: list[Chart] = []
    cur = summary.get("currency", "")
    for engine in summary["engines"]:
        rows = ok[ok["engine"] == engine]
        if rows.empty:
            continue
        if len(paths) == 1:
            out.append(_lines(rows, paths[0], engine, cur, frontier[frontier["engine"] == engine]))
        elif len(paths) == 2:
            out += _heatmaps(rows, paths, engine, cur, frontier[frontier["engine"] == engine])
    return out


def _rgb(i: int) -> dict[str, int]:
    h = PALETTE[i % len(PALETTE)].lstrip("#")
    return {"r": int(h[0:2], 16), "g": int(h[2:4], 16), "b": int(h[4:6], 16)}


def _lines(rows: pd.DataFrame, x: str, engine: str, cur: str, frontier: pd.DataFrame) -> Chart:
    fig = go.Figure()
    for i, (variant, line) in enumerate(rows.groupby("variant", sort=False)):
        line = line.sort_values(x)
        xs, y = line[x].tolist(), line["expected_loss_per_instance"]
        low, high = line["expected_loss_per_instance_low"], line["expected_loss_per_instance_high"]
        if low.notna().all() and high.notna().all() and (high > low).any():
            fig.add_trace(go.Scatter(x=xs + xs[::-1], y=high.tolist() + low.tolist()[::-1], fill="toself",
                                     fillcolor=BAND.format(**_rgb(i)), line={"width": 0}, hoverinfo="skip",
                                     showlegend=False, name=f"{variant} 95% CI"))
        fig.add_trace(go.Scatter(x=xs, y=y.tolist(), mode="lines+markers", name=str(variant),
                                 line={"color": PALETTE[i % len(PALETTE)]}))
    caption = f"Expected loss per instance ({cur}) along {x}, each variant with its 95% interval ({engine})."
    for _, f in frontier[frontier["parameter"] == x].iterrows():
        if pd.notna(f["break_even"]):
            fig.add_vrect(x0=f["break_even_low"], x1=f["break_even_high"], fillcolor="rgba(0,0,0,0.08)", line_width=0)
            fig.add_vline(x=f["break_even"], line_dash="dash", annotation_text=f"{f['variant']} beats base "
                                                                               f"{f['variant_better']}")
            caption += (f" {f['variant']} beats base {f['variant_better']} {f['break_even']:.4g} "
                        f"(95%: {f['break_even_low']:.4g} to {f['break_even_high']:.4g}; between grid points "
                        f"{f['bracket_low']:.4g} and {f['bracket_high']:.4g}).")
    fig.update_layout(title=f"Expected loss along {x} ({engine})", xaxis_title=x,
                      yaxis_title=f"expected loss per instance ({cur})", template="plotly_white")
    return Chart(f"lines-{engine}", f"Expected loss along {x}", caption, fig)


def _heatmaps(rows: pd.DataFrame, paths: list[str], engine: str, cur: str, frontier: pd.DataFrame) -> list[Chart]:
    x, y = paths
    out = []
    variants = [v for v in rows["variant"].unique() if v != "base"]
    wanted = [("base", "expected_loss_per_instance")] + [(v, "loss_difference") for v in variants]
    for variant, metric in wanted:
        part = rows[rows["variant"] == variant]
        if part[metric].isna().all() and metric == "loss_difference":
            metric = "horizon_loss_difference"
        grid = part.pivot_table(index=y, columns=x, values=metric, aggfunc="mean")
        if grid.isna().all().all():
            continue
        diverging = metric != "expected_loss_per_instance"
        fig = go.Figure(go.Heatmap(z=grid.to_numpy().tolist(), x=grid.columns.tolist(), y=grid.index.tolist(),
                                   colorscale="RdBu_r" if diverging else "Viridis", zmid=0 if diverging else None,
                                   colorbar={"title": cur}))
        caption = (f"Expected loss per instance of base ({cur}) over {x} and {y} ({engine})." if not diverging else
                   f"{variant} minus base ({metric}, {cur}): blue where {variant} is better. The dashed line is the "
                   f"break-even frontier along {x} at each {y}, dotted its 95% interval ({engine}).")
        if diverging:
            f = frontier[(frontier["variant"] == variant) & (frontier["parameter"] == x)].dropna(subset=["break_even"])
            f = f.sort_values("other_value")
            for col, dash in (("break_even", "dash"), ("break_even_low", "dot"), ("break_even_high", "dot")):
                if not f.empty:
                    fig.add_trace(go.Scatter(x=f[col].tolist(), y=f["other_value"].tolist(), mode="lines+markers",
                                             line={"dash": dash, "color": "black"}, name=col.replace("_", " ")))
        fig.update_layout(title=f"{variant}: {metric} ({engine})", xaxis_title=x, yaxis_title=y,
                          template="plotly_white", legend={"orientation": "h", "y": -0.25})
        out.append(Chart(f"heatmap-{engine}-{variant}", f"{variant} over {x} and {y}", caption, fig))
    return out


def render_sweep_html(table: pd.DataFrame, summary: dict[str, Any]) -> str:
    """The study's report as one HTML document."""
    from plotly.offline import get_plotlyjs

    made = charts(table, summary)
    name = html.escape(str(summary["scenario"]))
    swept = ", ".join(html.escape(p) for p in summary["parameters"])
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>Sweep report: {name}</title><style>{CSS}</style><script>{get_plotlyjs()}</script></head><body>",
             f"<h1>Sweep report: {name}</h1>",
             f"<p class='sub'>{summary['points']:,} points over {swept}; engines "
             f"{html.escape(', '.join(summary['engines']))}; variants {html.escape(', '.join(summary['variants']))}; "
             f"seed {summary['seed']}; amounts in {html.escape(str(summary.get('currency', '')))}</p>"]
    if not made:
        parts.append("<p>Charts are drawn for one or two swept numeric parameters; see sweep.parquet.</p>")
    for chart in made:
        parts.append(figure_html(chart))
    frontier = pd.DataFrame(summary.get("frontier") or [])
    if not frontier.empty:
        parts.append("<section><h2>Break-even frontier</h2>" + frontier.to_html(
            index=False, classes="sensitivity", na_rep="—", float_format=lambda v: f"{v:.6g}") + "</section>")
    failed = summary.get("failed") or []
    if failed:
        parts.append(f"<section><h2>Failed points ({summary['failed_rows']:,} rows)</h2>" + pd.DataFrame(
            failed).to_html(index=False, classes="sensitivity") + "</section>")
    parts.append(charts_script(made) + "</body></html>")
    return "".join(parts)


__all__ = ["is_sweep_folder", "sweep_report", "render_sweep_html", "charts"]
