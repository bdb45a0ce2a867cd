"""The report answers the architect's question with numbers that agree everywhere: the verdict per variant,
utilisation within opening hours, pass^k's sample said, tables a pandas user expects, one workers default."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.runner import run
from sim.scenario.load import load_scenario, scenario_from_dict
from tests.conftest import SCENARIOS, chain

runner = CliRunner()


def test_the_verdict_states_what_the_paired_numbers_say(tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(SCENARIOS / "contract_review.yaml"), "-n", "40000", "--out", str(out),
                               "-q"]).exit_code == 0
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    page = (out / "report.html").read_text()
    d = summary["differences"]["finetuned_retriever"]["expected_loss_per_instance"]
    item = re.search(r"<li data-variant='finetuned_retriever' data-loss-change='([^']+)' "
                     r"data-direction='([^']+)'>(.*?)</li>", page, re.S)
    assert item and float(item.group(1)) == d["difference"]
    assert item.group(2) == ("lower" if d["ci95"][1] < 0 else "higher" if d["ci95"][0] > 0 else "not distinguishable")
    text = html.unescape(item.group(3))
    assert f"{d['difference']:+,.2f}" in text and f"{d['ci95'][0]:+,.2f}" in text
    assert f"{1000 * d['difference']:+,.0f} USD per 1,000 instances" in text
    assert f"{summary['volume_per_month'] * d['difference']:+,.0f} USD per month" in text
    # The root causes it names move the way it says, by the amounts in the attribution tables.
    base = {(a["root_cause_step"], a["error_type"]): a["loss_per_instance"] for a in summary["attribution"]}
    tuned = {(a["root_cause_step"], a["error_type"]): a["loss_per_instance"]
             for a in summary["variant_results"]["finetuned_retriever"]["attribution"]}
    cuts = re.search(r"It cuts (.*?)\.", text).group(1)
    raises = re.search(r"It raises (.*?)\.(?: |$)", text).group(1)
    for clause, sign in ((cuts, -1), (raises, 1)):
        for etype, step, change in re.findall(r"(\w+) at (\w+) \(([-+][\d,.]+) USD per instance", clause):
            moved = tuned.get((step, etype), 0.0) - base.get((step, etype), 0.0)
            assert np.sign(moved) == sign and f"{moved:+,.2f}" == change
    assert "role_swap" in cuts and "topical_miss" in raises  # the trade-off this scenario exists to show
    # The same sentences in the markdown summary
    assert text.split(". ")[0] in (out / "report.md").read_text()


def test_no_variants_no_verdict_and_an_exact_run_says_exact(tmp_path):
    summary = run(scenario_from_dict(chain()), engine="analytic").summary
    from sim.output.report import render_html

    assert "id='verdict'" not in render_html(summary)
    data = chain(variants=[{"name": "same", "set": {"retrievers.docs.rates.negation_flip": 0.05}}])
    from sim.output.verdict import verdicts

    (v,) = verdicts(run(scenario_from_dict(data), engine="analytic").summary)
    assert v.sentences()[0] == "same against the base: the same expected loss."


@pytest.mark.parametrize("path", sorted(p for p in SCENARIOS.glob("*.yaml") if "timeline:" in p.read_text()))
def test_utilisation_never_passes_100_percent(path):
    scenario = load_scenario(path)
    fewer = scenario.timeline.model_copy(update={"replications": 2})  # the same queues, in less time
    summary = run(scenario.model_copy(update={"timeline": fewer}), engine="timeline").summary
    for block in [summary, *summary.get("variant_results", {}).values()]:
        for sid, u in block["timeline"]["utilisation"].items():
            assert 0.0 <= u <= 1.0, (sid, u)
        h = block["timeline"]["horizon_loss"]
        assert h["tail_coarse"] == (h["replications"] < h["replications_for_tail"])


def test_pass_k_says_its_sample_next_to_it():
    from io import StringIO

    from rich.console import Console

    from sim.output.console import render_summary

    summary = run(load_scenario(SCENARIOS / "refund_agent.yaml"), instances=30_000, pass_k_sample=5_000).summary
    buffer = StringIO()
    render_summary(summary, Console(file=buffer, width=200))
    text = " ".join(buffer.getvalue().split())
    assert "the first 5,000 instances attempted 8 times each" in text
    exact = run(load_scenario(SCENARIOS / "refund_agent.yaml"), engine="analytic").summary
    assert abs(exact["pass_k"][0]["p"] - (1 - exact["p_failure"])) < 1e-12


def test_tables_have_float_interval_columns_and_missing_values_as_na():
    result = run(load_scenario(SCENARIOS / "contract_review.yaml"), instances=20_000)
    table = result.summary_table
    assert list(table["variant"]) == ["base", "finetuned_retriever"]
    assert table["p_failure_low"].dtype == float and table["p_failure_high"].dtype == float
    assert (table["p_failure_low"] <= table["p_failure"]).all() and (table["p_failure"] <= table["p_failure_high"]).all()
    assert float(table.loc[0, "p_failure"]) == result.summary["p_failure"]
    attribution = result.attribution
    assert not any(c.endswith("_ci95") for c in attribution.columns)
    assert attribution["loss_per_instance_low"].dtype == float
    assert str(attribution["root_cause_step"].dtype).startswith(("string", "str"))
    assert {"low", "high"} <= set(result.pass_k.columns)


def test_one_workers_default_for_python_and_the_command_line():
    import inspect

    from sim.runner import run as run_fn

    assert inspect.signature(run_fn).parameters["workers"].default is None
    small = run(scenario_from_dict(chain(instances=1000)))
    assert small.summary["instances"] == 1000


def test_version_and_plain_flag_help():
    from importlib.metadata import version

    assert runner.invoke(app, ["--version"]).output.strip() == f"cascadesim {version('cascadesim')}"
    help_text = runner.invoke(app, ["validate", "--help"]).output
    assert "<bool>" not in help_text and "--show" in help_text


def test_every_option_of_every_command_has_help():
    import click
    import typer

    command = typer.main.get_command(app)
    undocumented = [f"{name} {p.opts[0]}" for name, sub in command.commands.items() for p in sub.params
                    if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert not undocumented


def test_every_place_shows_the_same_value_for_the_same_quantity(tmp_path):
    """The headline in the HTML, the markdown and the terminal; the Sankey's losses; the verdict: one summary."""
    from io import StringIO

    from rich.console import Console

    from sim.output.console import render_summary
    from sim.output.report import render_html, render_markdown

    summary = run(load_scenario(SCENARIOS / "contract_review.yaml"), instances=20_000).summary
    page, markdown = html.unescape(render_html(summary)), render_markdown(summary)
    buffer = StringIO()
    render_summary(summary, Console(file=buffer, width=250))
    terminal = buffer.getvalue()
    blocks = {"base": summary, **summary["variant_results"]}
    for key, fmt in (("p_failure", lambda x: f"{100 * x:.2f}%"),
                     ("expected_loss_per_instance", lambda x: f"{x:,.2f}"),
                     ("silent_failure_rate", lambda x: f"{100 * x:.2f}%"),
                     ("amplification", lambda x: f"{x:.3f}")):
        cells = re.findall(rf"<td data-metric='{key}'><span class='value'>([^<]+)</span>", page)
        assert len(cells) == len(blocks)
        for cell, block in zip(cells, blocks.values(), strict=True):
            shown = fmt(block[key])
            assert cell.startswith(shown), (key, cell, shown)
            assert shown in markdown and shown in terminal, (key, shown)
    caption = re.search(r"Those reaching 'action failure' cause the failure loss of ([\d,.]+)", page).group(1)
    assert caption == f"{summary['expected_failure_loss_per_instance']:,.2f}"
    assert f"expected loss of {summary['expected_loss_per_instance']:,.2f}" in page
    d = summary["differences"]["finetuned_retriever"]["expected_loss_per_instance"]["difference"]
    assert page.count(f"{d:+,.2f} USD per instance") >= 2  # the verdict and the variants chart's caption
    assert f"{d:+,.2f}" in markdown and f"{d:+,.2f}" in terminal
