"""Bad command lines: each exits 2 naming the argument (or the file) and what would be right; nothing starts
that the user did not ask for, and no traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sim.cli import app
from tests.conftest import SCENARIOS

runner = CliRunner()
GOOD = str(SCENARIOS / "refund_agent.yaml")
CONTRACTS = str(SCENARIOS / "contract_review.yaml")

CASES = [
    (["run"], "Missing argument"),
    (["run", "no/such.yaml"], "no such file"),
    (["run", GOOD, "--instances", "abc"], "--instances"),
    (["run", GOOD, "--instances", "-1"], "--instances"),
    (["run", GOOD, "--engine", ""], "--engine"),
    (["run", GOOD, "--seed", "1.5"], "--seed"),
    (["run", GOOD, "--workers", "-2"], "--workers"),
    (["run", GOOD, "--policy", "openai"], "only apply to --engine agent"),
    (["run", GOOD, "--store", "ftp://x:1"], "only apply to --engine agent"),
    (["run", GOOD, "--engine", "agent", "--llm-timeout", "0"], "--llm-timeout"),
    (["run", GOOD, "--engine", "agent", "--llm-timeout", "inf"], "--llm-timeout"),
    (["run", CONTRACTS, "--engine", "agent", "--tickets", "no/such.csv"], "no such file"),
    (["run", GOOD, "--engine", "agent"], "inline workflow"),
    (["validate", "/dev/null"], "is not a file"),
    (["validate", str(SCENARIOS)], "is not a file"),
    (["report", "no/such/folder"], "no such folder"),
    (["report", GOOD], "no such folder"),
    (["calibrate", "no/such/folder"], "no such folder"),
    (["calibrate", str(SCENARIOS)], "summary.json"),
    (["finetune", "--minutes", "0"], "--minutes"),
    (["finetune", "--batch-size", "1"], "--batch-size"),
    (["schema", "extra"], "unexpected extra argument"),
    (["nonsense"], "No such command"),
]


@pytest.mark.parametrize("args, fragment", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_command_lines_exit_2_and_say_why(tmp_path, args, fragment):
    if args[0] == "run" and len(args) > 1:
        args = [*args, "--out", str(tmp_path / "out")]
    result = runner.invoke(app, args)
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert fragment in output, output
    assert "Traceback" not in result.output and "internal error" not in output
    assert not (tmp_path / "out").exists()


def test_tickets_are_refused_off_ticket_triage(tmp_path):
    tickets = tmp_path / "t.csv"
    tickets.write_text("text,category\nmy card is lost,lost_or_stolen_card\n")
    result = runner.invoke(app, ["run", CONTRACTS, "--engine", "agent", "--tickets", str(tickets),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "tickets are the text of the ticket_triage workflow" in " ".join(result.output.split())
