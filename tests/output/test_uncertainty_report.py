"""The report's uncertainty sections: each appears exactly when the run has its data, every number it shows is
its summary key (the charts' data, the band table, the verdict), the HTML, the markdown and the terminal say the
same values, a damaged section in a stored summary is refused with its field, and the charts render and export."""

from __future__ import annotations

import copy
import hashlib
import html
import json
import re
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sim.cli import app
from sim.output import uncertainty_text as words
from sim.output.console import render_summary
from sim.output.report import render_html, render_markdown
from sim.runner import run
from sim.scenario.load import scenario_from_dict
from tests.conftest import chain
from tests.output.test_report import browser, open_report  # noqa: F401 - the browser fixture

runner = CliRunner()
NEW_FIGURES = {"uncertainty_loss_exceedance", "sobol", "value_of_information", "counterfactuals"}


def trade_off() -> dict:
    """The chain with uncertain rates and loss, and a variant that trades negation flips for topical misses: a
    close call (P(better) near 0.8) whose value of information is not zero."""
    data = chain()
    data["retrievers"]["docs"]["rates"] = {"negation_flip": {"beta": [10, 190]}, "topical_miss": {"beta": [20, 180]}}
    data["costs"]["apply"]["failure_loss"] = {"pert": [600, 1000, 1800]}
    data["variants"] = [{"name": "tuned", "set": {"retrievers.docs.rates.negation_flip": {"beta": [4, 196]},
                                                   "retrievers.docs.rates.topical_miss": {"beta": [13, 87]}}}]
    return data


@pytest.fixture(scope="module")
def full():
    """One analytic run with every section: uncertainty (64 draws), Sobol (32 base draws), importance."""
    return run(scenario_from_dict(trade_off()), engine="analytic", uncertainty=64, sobol=32, importance=True)


def figures(page: str) -> dict[str, dict]:
    """Each chart's plotly JSON as the page embeds it, by figure key."""
    return {key: json.loads(f) for f, key in re.findall(r"var f=(.*?);Plotly\.newPlot\('chart-([a-z_]+)'", page)}


def figure_ids(page: str) -> set[str]:
    return set(re.findall(r"<figure id='([a-z_]+)'>", page))


def without(summary: dict, *keys: str) -> dict:
    out = copy.deepcopy(summary)
    for key in keys:
        out.pop(key, None)
    return out


@pytest.mark.parametrize("dropped, absent", [
    ((), set()),
    (("uncertainty",), {"uncertainty_loss_exceedance", "value_of_information"}),
    (("sobol",), {"sobol"}),
    (("counterfactuals", "importance"), {"counterfactuals"}),
    (("uncertainty", "sobol", "counterfactuals", "importance"), NEW_FIGURES),
])
def test_each_section_appears_exactly_when_the_run_has_its_data(full, dropped, absent):
    page = render_html(without(full.summary, *dropped))
    assert figure_ids(page) & NEW_FIGURES == NEW_FIGURES - absent
    has_uncertainty = "uncertainty" not in dropped
    assert ("<section id='uncertainty'>" in page) == has_uncertainty
    assert ("class='band'" in page) == has_uncertainty
    assert ("table class='sensitivity importance'" in page) == ("importance" not in dropped)
    markdown = render_markdown(without(full.summary, *dropped))
    assert ("Input uncertainty (" in markdown) == has_uncertainty
    assert ("Which input drives it" in markdown) == ("sobol" not in dropped)


def test_a_point_run_and_a_run_without_variants_show_only_what_they_have():
    point = render_html(run(scenario_from_dict(chain()), engine="analytic").summary)
    assert not figure_ids(point) & NEW_FIGURES and "class='band'" not in point
    data = trade_off()
    del data["variants"]
    alone = run(scenario_from_dict(data), engine="analytic", uncertainty=16).summary
    page = render_html(alone)
    assert figure_ids(page) & NEW_FIGURES == {"uncertainty_loss_exceedance"}  # no decision, no value of information
    assert "data-p-better" not in page and "P(" not in " ".join(words.lines(alone)).replace("P(wrong action)", "")


def test_every_number_the_sections_show_is_its_summary_key(full):
    s = full.summary
    u, cur = s["uncertainty"], s["currency"]
    page = render_html(s)
    shown = figures(page)
    # Headline bands and the band table
    for metric, _ in words.METRICS:  # each headline cell, in the headline's variant order
        cells = re.findall(rf"<td data-metric='{metric}'>.*?<div class='band' data-band='{metric}'>(.*?) over the "
                           "inputs</div></td>", page)
        assert cells == [html.escape(words.band_text(u["results"][v][metric], words.metric_format(metric, cur)))
                         for v in ("base", *s["variant_results"])]
    d = u["differences"]["tuned"]
    row = re.search(r"<tr data-difference='tuned'>(.*?)</tr>", page).group(1)
    assert f"data-p-better='{d['p_lower_expected_loss']!r}'" in row
    assert html.escape(words.band_text(d["expected_loss_per_instance"],
                                       words.metric_format("expected_loss_per_instance", cur, True))) in row
    # Loss exceedance: three traces per variant (5%, 95%, median) at the summary's amounts
    traces = shown["uncertainty_loss_exceedance"]["data"]
    for i, points in enumerate(u["loss_exceedance"]["variants"].values()):
        upper, lower, median = traces[3 * i: 3 * i + 3]
        assert upper["x"] == u["loss_exceedance"]["amounts"] == [p["loss"] for p in points]
        assert (upper["y"], lower["y"], median["y"]) == tuple([p[k] for p in points] for k in ("p95", "p05", "median"))
    # Sobol: S1 and ST with their bootstrap half-widths, per output panel
    sobol = shown["sobol"]["data"]
    outputs = list(dict.fromkeys(r["output"] for r in s["sobol"]["indices"]))
    for j, output in enumerate(outputs):
        rows = {r["group"]: r for r in s["sobol"]["indices"] if r["output"] == output}
        for k, index in enumerate(("S1", "ST")):
            bar = sobol[2 * j + k]
            assert bar["x"] == [rows[g][index] for g in bar["y"]]
            assert bar["error_x"]["array"] == [rows[g][f"{index}_conf"] for g in bar["y"]]
    # EVPPI bars and the EVPI line, in currency per 1,000 instances
    voi = u["value_of_information"]
    bars = shown["value_of_information"]["data"]
    for bar, grouping in zip(bars, ("input", "retriever", "step", "error_type"), strict=True):
        assert dict(zip(bar["y"], bar["x"], strict=True)) == {g: 1000 * v for g, v in
                                                              voi["evppi_per_instance"][grouping].items()}
    lines = [sh for sh in shown["value_of_information"]["layout"]["shapes"]]
    assert lines and all(sh["x0"] == sh["x1"] == 1000 * voi["evpi_per_instance"] for sh in lines)
    top, value = max(voi["evppi_per_instance"]["input"].items(), key=lambda kv: kv[1])
    assert f"Measuring {top} precisely is worth up to {1000 * value:,.0f} {cur} per 1,000 instances" in page
    # Counterfactuals: each bar from the loss as is to the counterfactual's loss
    for bar in shown["counterfactuals"]["data"]:
        mine = {r["counterfactual"]: r for r in s["counterfactuals"] if r["variant"] == bar["name"]}
        as_is = mine["as is"]["expected_loss_per_instance"]
        for label, base, height in zip(bar["x"], bar["base"], bar["y"], strict=True):
            assert base + height == pytest.approx(mine[label]["expected_loss_per_instance"], rel=1e-12, abs=1e-9)
            assert base == (0.0 if label == "as is" else as_is)
    # Importance: Birnbaum per percentage point, Fussell-Vesely as a percentage
    for r in s["importance"]:
        cells = re.search(rf"<tr data-variant='{r['variant']}' data-event='{re.escape(r['event'])}'>(.*?)</tr>",
                          page).group(1)
        assert f"<td>{r['birnbaum'] / 100:,.2f}</td><td>{words.pct(r['fussell_vesely'])}</td>" in cells


def test_the_html_the_markdown_and_the_terminal_say_the_same_values(full):
    """The collected values of the uncertainty sections: every band, P(better), EVPI and the counterfactuals."""
    s = full.summary
    u, cur = s["uncertainty"], s["currency"]
    page, markdown = html.unescape(render_html(s)), render_markdown(s)
    buffer = StringIO()
    render_summary(s, Console(file=buffer, width=1000))
    terminal = buffer.getvalue()
    said = [words.band_text(r[m], words.metric_format(m, cur)) for r in u["results"].values() for m, _ in words.METRICS]
    said += [words.band_text(d[m], words.metric_format(m, cur, True)) for d in u["differences"].values()
             for m, _ in words.METRICS]
    said += [words.p_better_text(v, d["p_lower_expected_loss"]) for v, d in u["differences"].items()]
    said += [words.per_period(u["value_of_information"]["evpi_per_instance"], cur, None)]
    said += [words.removed_text(r, cur) for r in s["counterfactuals"] if r["loss_removed"]]
    for text in said:
        assert text in page and text in markdown and text in terminal, text
    # P(better) is in the verdict sentence wherever the verdict is
    verdict = re.search(r"<li data-variant='tuned'[^>]*>(.*?)</li>", page, re.S).group(1)
    assert words.p_better_text("tuned", u["differences"]["tuned"]["p_lower_expected_loss"]) in verdict
    # and no other percentage is given for it anywhere
    others = set(re.findall(r"P\(tuned has lower expected loss\) = ([\d.]+%)", page + markdown + terminal))
    assert others == {words.pct(u["differences"]["tuned"]["p_lower_expected_loss"])}


def _forge_manifest(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {p.name: {"bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
                         for p in folder.iterdir() if p.name != "manifest.json"}
    (folder / "manifest.json").write_text(json.dumps(manifest))


DAMAGES = {
    "a band without its median": (lambda s: s["uncertainty"]["results"]["base"]["p_failure"].pop("median"),
                                  "uncertainty.results.base.p_failure.median: Field required"),
    "a probability above 1": (lambda s: s["uncertainty"]["differences"]["tuned"].update(p_lower_expected_loss=1.5),
                              "uncertainty.differences.tuned.p_lower_expected_loss: Input should be less than or "
                              "equal to 1"),
    "a variant the run does not have": (lambda s: s["uncertainty"]["results"].update(ghost=s["uncertainty"]["results"][
        "base"]), "uncertainty.results: has ['base', 'ghost', 'tuned'], needs exactly the run's variants"),
    "a short exceedance curve": (lambda s: s["uncertainty"]["loss_exceedance"]["variants"]["base"].pop(),
                                 "uncertainty.loss_exceedance.variants.base: 23 points for 24 amounts"),
    "a Sobol output of nothing": (lambda s: s["sobol"]["indices"][0].update(output="difference@ghost"),
                                  "sobol.indices.0.output: 'difference@ghost' is not"),
    "a string for an index": (lambda s: s["sobol"]["indices"][0].update(ST="0.5"),
                              "sobol.indices.0.ST: Input should be a valid number"),
    "no loss as is": (lambda s: s.update(counterfactuals=[r for r in s["counterfactuals"] if r["counterfactual"]
                                                          != "as is"]), "counterfactuals: no 'as is' row for base"),
    "an importance without its event": (lambda s: s["importance"][0].pop("event"),
                                        "importance.0.event: Field required"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_uncertainty_section_is_refused_with_its_field(full, tmp_path, damage):
    out = tmp_path / "run"
    full.write(out)
    summary = json.loads((out / "summary.json").read_text())
    harm, message = DAMAGES[damage]
    harm(summary)
    (out / "summary.json").write_text(json.dumps(summary))
    _forge_manifest(out)
    result = runner.invoke(app, ["report", str(out)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and message in text and "Traceback" not in text, result.output
    assert not (out / "report.html").exists()


def test_the_uncertainty_report_renders_in_a_browser_and_exports_every_chart(browser, tmp_path, full):  # noqa: F811
    out = tmp_path / "run"
    full.write(out)
    result = runner.invoke(app, ["report", str(out), "--images", "svg"])
    assert result.exit_code == 0, result.output
    page, problems = open_report(browser, out / "report.html", tmp_path / "uncertainty_report.png")
    assert problems == []
    for key in NEW_FIGURES:
        figure = page.locator(f"figure#{key}")
        assert figure.locator(".main-svg").count() >= 1, key
        assert figure.locator(".gtitle").text_content().strip(), f"{key} has no title"
        assert figure.locator("figcaption").inner_text().strip()
    summary = json.loads((out / "summary.json").read_text())
    band = page.locator("td[data-metric='expected_loss_per_instance'] .band").first.inner_text()
    assert band == words.band_text(summary["uncertainty"]["results"]["base"]["expected_loss_per_instance"],
                                   words.metric_format("expected_loss_per_instance", "USD")) + " over the inputs"
    images = {p.stem for p in (out / "report_images").glob("*.svg")}
    assert images == figure_ids((out / "report.html").read_text()) and NEW_FIGURES <= images


def test_every_string_of_the_new_sections_is_escaped(full):
    """Variant, retriever, input, group and counterfactual names come from users: none may open a tag in the page.
    The names are changed everywhere in the summary at once, so that it stays consistent."""
    mark = "<u>pwned</u>"
    text = json.dumps(full.summary)
    for name in ("tuned", "docs", "check"):  # the variant, the retriever (inputs, groups, events), the verifier
        text = text.replace(name, name + mark)
    page = render_html(json.loads(text))
    body = page[page.index("</head>"):]
    assert f"tuned{html.escape(mark)}" in body and f"verifier check{html.escape(mark)}" in body
    assert mark not in body and "<u>" not in body and "\\u003cu\\u003epwned" in body  # charts: unicode escapes


def test_a_timeline_headline_gets_no_band_of_the_per_instance_model():
    """The timeline's expected loss counts queues; the draws evaluate the per-instance model: a band beside that
    headline would show two values for one label. The bands keep their own table, which says so."""
    from tests.conftest import with_timeline

    data = trade_off()
    data["timeline"] = with_timeline()["timeline"]
    summary = run(scenario_from_dict(data), engine="timeline", uncertainty=16).summary
    page = render_html(summary)
    assert "class='band'" not in page and "<section id='uncertainty'>" in page
    assert "The headline is the timeline engine&#x27;s; these bands are the per-instance model&#x27;s" in page
    assert "at the inputs&#x27; means (analytic)" in page


def test_another_exceedance_curve_is_one_more_key(full, monkeypatch):
    """A curve per period (same shape, its own `per`) gets its chart by naming its key in EXCEEDANCE_CURVES."""
    from sim.output import uncertainty_report

    summary = copy.deepcopy(full.summary)
    summary["uncertainty"]["loss_exceedance_per_month"] = {**summary["uncertainty"]["loss_exceedance"], "per": "month"}
    monkeypatch.setattr(uncertainty_report, "EXCEEDANCE_CURVES", ("loss_exceedance", "loss_exceedance_per_month"))
    page = render_html(summary)
    assert {"uncertainty_loss_exceedance", "uncertainty_loss_exceedance_per_month"} <= figure_ids(page)
    assert figures(page)["uncertainty_loss_exceedance_per_month"]["layout"]["xaxis"]["title"]["text"].startswith(
        "loss per month")
