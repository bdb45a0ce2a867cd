"""Every kind of bad input exits with code 2 and a message that names the file, line and field."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from sim.cli import app
from tests.conftest import CHAIN

runner = CliRunner()

GOOD = """\
schema_version: 1
name: chain
seed: 7
retrievers:
  docs:
    kind: injected
    rates: {negation_flip: 0.05, topical_miss: 0.1}
workflow:
  steps:
    - id: fetch
      kind: retrieve
      retriever: docs
    - id: judge
      kind: decide
      inputs: [fetch]
      susceptibility: {default: 0.5}
    - id: apply
      kind: act
      inputs: [judge]
costs:
  apply: {failure_loss: 100}
"""


def validate(path):
    return runner.invoke(app, ["validate", str(path)])


def test_good_file_validates(write_scenario):
    result = validate(write_scenario(GOOD))
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


# (description, edit of GOOD, expected line, expected fragments of the message)
CASES = [
    ("yaml syntax", lambda t: t.replace("rates: {negation_flip: 0.05, topical_miss: 0.1}", "rates: {negation_flip: 0.05"),
     8, ["not valid YAML"]),
    ("misspelled key", lambda t: t.replace("seed: 7", "sead: 7"), 3, ["unknown key 'sead'", "did you mean 'seed'"]),
    ("missing seed", lambda t: t.replace("seed: 7\n", ""), None, ["missing required field 'seed'"]),
    ("probability above 1", lambda t: t.replace("negation_flip: 0.05", "negation_flip: 1.5"), 7,
     ["retrievers.docs.rates.negation_flip", "less than or equal to 1", "1.5"]),
    ("rates sum past 1", lambda t: t.replace("topical_miss: 0.1", "topical_miss: 0.99"), 7,
     ["retrievers.docs.rates", "sum to 1.04", "past 1"]),
    ("unknown input", lambda t: t.replace("inputs: [judge]", "inputs: [juge]"), 19,
     ["workflow.steps[2].inputs[0]", "unknown input 'juge'", "did you mean 'judge'"]),
    ("cycle", lambda t: t.replace("retriever: docs\n", "retriever: docs\n      inputs: [judge]\n"), 13,
     ["cycle", "fetch -> judge -> fetch"]),
    ("unknown retriever", lambda t: t.replace("retriever: docs", "retriever: doc"), 12,
     ["workflow.steps[0].retriever", "unknown retriever 'doc'", "did you mean 'docs'"]),
    ("unused retriever", lambda t: t.replace("workflow:", "  extra:\n    kind: injected\n    rates: {stale: 0.1}\nworkflow:"),
     8, ["retriever 'extra' is used by no retrieve step"]),
    ("unknown error type", lambda t: t.replace("negation_flip: 0.05", "negaton_flip: 0.05"), 7,
     ["unknown error type 'negaton_flip'", "did you mean 'negation_flip'"]),
    ("missing cost", lambda t: t.replace("costs:\n  apply: {failure_loss: 100}\n", "costs: {}\n"), 20,
     ["act step 'apply' has no costs"]),
    ("duplicate key", lambda t: t.replace("seed: 7", "seed: 7\nseed: 8"), 4, ["duplicate key 'seed'"]),
    ("duplicate step id", lambda t: t.replace("- id: judge", "- id: fetch").replace("[judge]", "[fetch]"), 13,
     ["duplicate step id 'fetch'"]),
    ("wrong step kind", lambda t: t.replace("kind: decide", "kind: decision"), 14, ["kind must be one of"]),
    ("no default susceptibility", lambda t: t.replace("{default: 0.5}", "{role_swap: 0.5}"), 16,
     ["susceptibility", "needs a 'default' entry"]),
    ("negative loss", lambda t: t.replace("failure_loss: 100", "failure_loss: -5"), 21,
     ["costs.apply.failure_loss", "greater than or equal to 0"]),
    ("unknown variant path", lambda t: t + "variants:\n  - name: tuned\n    set: {retrievers.doc.rates.stale: 0.1}\n", 24,
     ["variants[0].set", "'retrievers.doc'", "did you mean 'docs'"]),
    ("variant makes it invalid", lambda t: t + "variants:\n  - name: tuned\n    set: {retrievers.docs.rates.stale: 0.9}\n",
     24, ["variant 'tuned'", "sum to 1.05"]),
    ("unknown builtin", lambda t: t.replace("workflow:\n  steps:", "workflow:\n  builtin: contract_reveiw\n  steps:"), 9,
     ["did you mean 'contract_review'"]),
]


@pytest.mark.parametrize("label, edit, line, fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_scenario_exits_2_and_names_the_place(write_scenario, label, edit, line, fragments):
    text = edit(GOOD)
    assert text != GOOD, "the edit must change the file"
    path = write_scenario(text)
    result = validate(path)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert str(path.name) in message
    if line is not None:
        assert re.search(rf"{re.escape(path.name)}:{line}\b", message), message
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in result.output


@pytest.mark.parametrize("content, fragment", [
    ("", "the file is empty"),
    ("- just\n- a list\n", "a scenario is a mapping"),
])
def test_degenerate_files(write_scenario, content, fragment):
    result = validate(write_scenario(content))
    assert result.exit_code == 2
    assert fragment in " ".join(result.output.split())


def test_missing_and_non_utf8_files(tmp_path):
    result = validate(tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "no such file" in result.output
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    result = validate(bad)
    assert result.exit_code == 2 and "not UTF-8" in result.output


@pytest.mark.parametrize("args, fragment", [
    (["--instances", "0"], "instances"),
    (["--engine", "quantum"], "engine"),
    (["--seed", "-3"], "seed"),
    (["--chunk-size", "0"], "chunk-size"),
])
def test_bad_cli_arguments_exit_2(write_scenario, tmp_path, args, fragment):
    path = write_scenario(CHAIN)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2
    assert fragment in result.output


def test_console_script_exit_codes(write_scenario, tmp_path):
    """The installed `cascade` entry point, as a user runs it."""
    bad = write_scenario(GOOD.replace("seed: 7", "seed: seven"))
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "run", str(bad), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{bad.name}:3" in proc.stderr and "seed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unwritable_output_folder_exits_2(write_scenario, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the output folder should go")
    result = runner.invoke(app, ["run", str(write_scenario(CHAIN)), "--out", str(blocker / "sub"), "-n", "100"])
    assert result.exit_code == 2, result.output
    assert "cannot write the results" in " ".join(result.output.split())


def test_a_folder_is_not_a_scenario(tmp_path):
    result = validate(tmp_path)
    assert result.exit_code == 2 and "is not a file" in result.output


def test_validate_embeds_nothing(tmp_path, monkeypatch):
    """A measured retriever given a corpus whose profile is not cached is reported, not measured."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CASCADESIM_CACHE", str(cache))
    (tmp_path / "s.yaml").write_text(
        "schema_version: 1\nname: pending\nseed: 1\n"
        "retrievers: {docs: {kind: measured, corpus: contracts, probes: 20}}\n"
        "workflow: {steps: [{id: get, kind: retrieve, retriever: docs}, {id: act, kind: act, inputs: [get]}]}\n"
        "costs: {act: {failure_loss: 100}}\n")
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "s.yaml")])
    assert result.exit_code == 0, result.output
    assert "retriever 'docs': will be measured on first run (corpus 'contracts'" in result.output
    assert not cache.exists() or not any(cache.rglob("*")), "validation wrote to the cache"
