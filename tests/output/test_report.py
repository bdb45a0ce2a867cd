"""The cascade report in a real browser (Debian's headless Chromium through Playwright), and its markdown."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.output.report import render_markdown, sankey_chart
from sim.runner import run
from sim.scenario.load import load_scenario, scenario_from_dict
from tests.conftest import SCENARIOS, chain

runner = CliRunner()
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("CASCADESIM_SCREENSHOTS", "")) if os.environ.get("CASCADESIM_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium for this test")
        pytest.skip("needs Debian's chromium (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update", "--no-first-run", "--disable-sync"])
        yield b
        b.close()


def open_report(browser, path: Path, shot: Path):
    """Load the report; return the page and every console error or page error it produced."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(path.resolve().as_uri())
    charts = page.locator(".chart").count()
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
                           timeout=30_000)
    page.screenshot(path=str(shot), full_page=True)
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, SCREENSHOTS / shot.name)
    return page, problems


def test_report_renders_headline_and_every_chart(browser, tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(SCENARIOS / "contract_review.yaml"), "-o", str(out), "-n", "20000",
                               "-q"]).exit_code == 0
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    page, problems = open_report(browser, out / "report.html", tmp_path / "contract_review_report.png")
    assert problems == []
    headline = page.locator("td[data-metric='p_failure'] .value").first.inner_text()
    assert headline == f"{100 * summary['p_failure']:.2f}%"
    for key in ("sankey", "attribution", "sensitivity", "pass_k", "variants"):
        figure = page.locator(f"figure#{key}")
        assert figure.locator(".main-svg").count() >= 1, key
        assert figure.locator(".gtitle").text_content().strip(), f"{key} has no title"
        assert figure.locator("figcaption").inner_text().strip()
    # axes carry their units
    assert "(USD)" in page.locator("figure#attribution").inner_text()
    assert page.locator("figure#sankey .sankey-node").count() >= 5
    assert page.locator("table.sensitivity tbody tr").count() >= 5
    assert (out / "report.md").read_text().startswith("### Cascade report: contract_review")
    assert (tmp_path / "contract_review_report.png").stat().st_size > 50_000


def test_a_scenario_name_with_script_shows_as_text(browser, tmp_path):
    name = "<script>window.__pwned = 1</script> & <b>bold</b>"
    data = chain(name=name, description="<img src=x onerror='window.__pwned=2'>", instances=5000)
    result = run(scenario_from_dict(data))
    path = result.report(tmp_path / "report.html")
    page, problems = open_report(browser, path, tmp_path / "escaped.png")
    assert problems == []
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#scenario-name").inner_text() == f"Cascade report: {name}"
    assert page.locator("img").count() == 0
    assert "&lt;script&gt;" in render_markdown(result.summary)


def test_report_of_a_folder_without_a_run_exits_2(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no summary.json" in result.output


SANKEY_CASES = [("contract_review", "monte_carlo"), ("ticket_triage", "monte_carlo"), ("refund_agent", "monte_carlo"),
                ("contract_review", "timeline")]


@pytest.mark.parametrize("name, engine", SANKEY_CASES, ids=[f"{n}-{e}" for n, e in SANKEY_CASES])
def test_sankey_masked_and_caught_are_the_steps_tables_fates_per_root(name, engine):
    """Per root: the Sankey's 'action failure', 'caught by a verifier' and 'masked' bands are the steps table's
    counts of that root's errors by fate (per 1,000 instances), so caught and masked make up its root errors
    that did not fail; each node, and the caption, holds the sum of its bands."""
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    if engine == "timeline":
        scenario = scenario.model_copy(update={"timeline": scenario.timeline.model_copy(update={"replications": 1})})
    result = run(scenario, engine=engine, instances=20_000)
    summary, steps = result.summary, result.steps
    n = summary["instances"]
    chart = sankey_chart(summary)
    sankey = chart.figure.data[0]
    labels = list(sankey.node.label)
    bands = {(text, labels[target]): value
             for target, text, value in zip(sankey.link.target, sankey.link.customdata, sankey.link.value, strict=True)}
    own = steps[(steps.variant == "base") & (steps.step == steps.root_cause_step) & (steps.outcome == "error")]
    per_k = {(r.step, r.error_type, r.fate): 1000 * r.count / n for r in own.itertuples()}
    assert {"failed", "caught", "masked"} <= set(own.fate)
    nodes = {"action failure": "failed", "caught by a verifier": "caught", "masked": "masked"}
    node_values = dict.fromkeys(nodes, 0.0)
    for c in summary["cascade"]:
        if c["p_root_error"] == 0:
            continue
        root = f"{c['error_type']} at {c['root_cause_step']}"
        for node, fate in nodes.items():
            band = bands.get((f"{root} -> {node}", node), 0.0)
            want = per_k.get((c["root_cause_step"], c["error_type"], fate), 0.0)
            assert band == pytest.approx(want, rel=1e-12, abs=1e-12), (root, node)
            node_values[node] += band
        errors = sum(per_k.get((c["root_cause_step"], c["error_type"], fate), 0.0) for fate in nodes.values())
        assert bands[(root, f"step: {c['root_cause_step']}")] == pytest.approx(errors, rel=1e-12), root
    for node, said in (("caught by a verifier", "were caught by a verifier"), ("masked", "were masked")):
        want = 1000 * own[own.fate == nodes[node]]["count"].sum() / n
        assert node_values[node] == pytest.approx(want, rel=1e-12)
        assert f"{want:,.2f} {said}" in chart.caption  # the caption states the node's value


def test_analytic_report_renders_without_sampled_intervals(browser, tmp_path):
    result = run(scenario_from_dict(chain()), engine="analytic")
    page, problems = open_report(browser, result.report(tmp_path / "exact.html"), tmp_path / "exact.png")
    assert problems == [] and page.locator(".ci").count() == 0


def test_sensitivity_is_the_exact_derivative_on_a_chain():
    from sim.metrics.sensitivity import sensitivity
    from sim.model.plan import compile_plan

    table = sensitivity(compile_plan(scenario_from_dict(chain())))
    assert (table["computed_by"] == "analytic (exact)").all() and (table["variant"] == "base").all()
    row = table.set_index("path").loc["retrievers.docs.rates.negation_flip"]
    # d wrong/d rate = 0.9 carried x (1 - 0.02 that would have erred anyway); d loss/d wrong = 0.7 x 1000 failure
    # + (0.3 - 0.01) x 50 escalation
    assert row["importance"] == pytest.approx(0.9 * 0.98 * (700 + 0.29 * 50), rel=1e-9)
    assert row["elasticity"] == pytest.approx(row["importance"] * 0.05 / table["reference_loss"].iloc[0], rel=1e-12)
    catch = table.set_index("path").loc["workflow.steps.check.catch.default"]
    assert catch["importance"] < 0  # a better verifier lowers the loss


def test_measured_retrievers_get_their_section(browser, tmp_path):
    from sim.scenario.load import load_scenario

    result = run(load_scenario(SCENARIOS / "contract_review_measured.yaml"), engine="analytic")
    page, problems = open_report(browser, result.report(tmp_path / "measured.html"), tmp_path / "measured.png")
    assert problems == []
    text = page.locator("body").inner_text()
    assert "Measured retrievers" in text and "all-MiniLM-L6-v2" in text and "contracts" in text


def test_timeline_report_shows_daily_loss_backlog_and_exceedance(browser, tmp_path):
    from tests.conftest import with_timeline

    data = with_timeline(reviewers={"check": {"servers": 1, "minutes": 5, "max_wait_hours": 6}}, replications=4)
    out = tmp_path / "tl"
    run(scenario_from_dict(data), engine="timeline").write(out)
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    page, problems = open_report(browser, out / "report.html", tmp_path / "timeline_report.png")
    assert problems == []
    for key in ("timeline", "exceedance"):
        assert page.locator(f"figure#{key} .main-svg").count() >= 1, key
    assert "VaR95" in page.locator("figure#exceedance figcaption").inner_text()
    assert "horizon loss mean" in (out / "report.md").read_text()


def test_an_agent_run_report_renders_with_its_agent_section(browser, tmp_path):
    from sim.scenario.load import load_scenario

    out = tmp_path / "agent"
    run(load_scenario(SCENARIOS / "ticket_triage.yaml"), instances=40, engine="agent").write(out)
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    page, problems = open_report(browser, out / "report.html", tmp_path / "agent_report.png")
    assert problems == []
    section = page.locator("section#agent").inner_text()
    assert "LangGraph agent over real text" in section and "simulated" in section and "retrieve_kb" in section
    assert page.locator("figure#sankey .main-svg").count() >= 1


def test_static_images_of_every_chart(browser, tmp_path):
    """`cascade report --images png|svg`: one image per chart of the report, drawn by the system's Chromium."""
    from typer.testing import CliRunner

    from sim.cli import app
    from tests.conftest import SCENARIOS

    runner = CliRunner()
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(SCENARIOS / "contract_review.yaml"), "-n", "20000", "--out", str(out),
                               "-q"]).exit_code == 0
    for fmt, magic in (("png", b"\x89PNG"), ("svg", b"<svg")):
        result = runner.invoke(app, ["report", str(out), "--images", fmt])
        assert result.exit_code == 0, result.output
        images = sorted((out / "report_images").glob(f"*.{fmt}"))
        page = (out / "report.html").read_text()
        charts = re.findall(r"<figure id='([a-z_]+)'>", page)
        assert sorted(p.stem for p in images) == sorted(charts)
        assert all(magic in p.read_bytes()[:200] for p in images)
    assert runner.invoke(app, ["report", str(out), "--images", "gif"]).exit_code == 2
