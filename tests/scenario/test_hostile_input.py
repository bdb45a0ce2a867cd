"""What a fuzz campaign found, one case each: YAML bombs and tricks, sizes without bounds, non-finite numbers,
markup in user text. Every one exits 0 or 2 with file:line (or the argument), never a traceback or a hang."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.core import limits
from sim.core.yaml_source import MAX_DEPTH
from tests.scenario.test_bad_input import GOOD

runner = CliRunner()


def validate(path):
    return runner.invoke(app, ["validate", str(path)])


def refused_at(result, path, line: int | None, *fragments: str) -> str:
    message = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    if line is not None:
        assert re.search(rf"{re.escape(path.name)}:{line}\b", message), message
    for fragment in fragments:
        assert fragment in message, message
    return message


LAUGHS = 'lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))


@pytest.mark.parametrize("label, text, line, fragments", [
    ("billion laughs (483 bytes)", LAUGHS + GOOD, None, ["once its aliases are expanded"]),
    ("nesting 500 deep", GOOD.replace("seed: 7", "seed: " + "[" * 500 + "]" * 500), 3,
     [f"nested more than {MAX_DEPTH} levels"]),
    ("recursive alias", GOOD + "loop: &loop [1, *loop]\n", 22, ["recursive alias"]),
    ("recursive merge", GOOD + "m: &m\n  <<: *m\n", 22, ["merge refers to the mapping that contains it"]),
    ("unknown tag", GOOD.replace("seed: 7", "seed: !mytag 7"), 3, ["tag !mytag is not supported"]),
    ("bad bool", GOOD.replace("seed: 7", "seed: !!bool maybe"), 3, ["'maybe' cannot be read as !!bool"]),
    ("bad float", GOOD.replace("seed: 7", "seed: !!float abc"), 3, ["'abc' cannot be read as !!float"]),
    ("bad timestamp", GOOD.replace("seed: 7", "seed: !!timestamp 2026-13-45x"), 3, ["!!timestamp"]),
    ("python object tag", GOOD.replace("seed: 7", "seed: !!python/object:os.system {}"), 3,
     ["!!python/object:os.system is not supported"]),
    ("NUL byte", GOOD.replace("name: chain", "name: ch\x00ain"), 2, ["U+0000 is not allowed"]),
    ("variants is a number", GOOD + "variants: 5\n", 22, ["variants", "valid list"]),
    ("retrievers is a number", GOOD.replace("retrievers:\n  docs:\n    kind: injected\n    rates: {negation_flip: "
                                            "0.05, topical_miss: 0.1}\n", "retrievers: 5\n"), 4,
     ["retrievers", "valid dictionary"]),
    ("set is a list", GOOD + "variants:\n  - name: v\n    set: [1, 2]\n", 24, ["variants[0].set", "dictionary"]),
    ("merge of a number", GOOD + "bad:\n  <<: 5\n", 23, ["merge key (<<) takes a mapping"]),
    ("instances 1e15", GOOD.replace("seed: 7", "seed: 7\ninstances: 1e15"), 4, ["instances", "less than or equal"]),
    ("seed 2**64", GOOD.replace("seed: 7", f"seed: {2**64}"), 3, ["seed", "less than or equal"]),
    ("a loss of 1e308", GOOD.replace("failure_loss: 100", "failure_loss: 1e308"), 21,
     ["costs.apply.failure_loss", "less than or equal to 1000000000000000"]),
    ("an infinite loss", GOOD.replace("failure_loss: 100", "failure_loss: .inf"), 21,
     ["costs.apply.failure_loss", "finite number"]),
    ("a NaN rate", GOOD.replace("negation_flip: 0.05", "negation_flip: .nan"), 7, ["finite number"]),
    ("growth as money", GOOD + "timeline:\n  horizon_days: 30\n  arrivals: {per_day: 10}\n"
                               "  detection: {growth_per_day: 10}\n", 25, ["growth_per_day", "less than or equal to 1"]),
    ("arrivals 1e9 a day", GOOD + "timeline:\n  horizon_days: 30\n  arrivals: {per_day: 1e9}\n", 24,
     ["per_day", "less than or equal"]),
    ("arrivals past the bound", GOOD + "timeline:\n  horizon_days: 3650\n  arrivals: {per_day: 4000}\n", 24,
     ["arrivals per replication", f"at most {limits.MAX_ARRIVALS_PER_REPLICATION:,}"]),
    ("replications 1e9", GOOD + "timeline:\n  horizon_days: 30\n  replications: 1e9\n  arrivals: {per_day: 10}\n",
     24, ["replications", "less than or equal"]),
    ("too many replications for the arrivals", GOOD + "timeline:\n  horizon_days: 365\n  replications: 5000\n"
                                                      "  arrivals: {per_day: 100}\n", 24,
     ["simulated arrivals", "use fewer replications"]),
    ("a profile path past 255 characters", GOOD.replace(
        "    kind: injected\n    rates: {negation_flip: 0.05, topical_miss: 0.1}",
        "    kind: measured\n    profile: " + "p" * 300 + ".yaml"), 7, ["retrievers.docs.profile"]),
    ("markup in a key", GOOD.replace("seed: 7", "seed: 7\n'[/x]': 1"), 4, ["unknown key '[/x]'"]),
])
def test_hostile_scenarios_are_refused_at_their_line(write_scenario, label, text, line, fragments):
    path = write_scenario(text)
    refused_at(validate(path), path, line, *fragments)


def test_non_utf8_bytes_name_their_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(GOOD.replace("name: chain", "name: caf\xe9").encode("latin-1"))
    refused_at(validate(path), path, 2, "not UTF-8", "byte 0xe9")


def test_merge_keys_share_step_defaults(write_scenario):
    text = GOOD.replace("workflow:", "x-defaults: &decide\n  kind: decide\n  susceptibility: {default: 0.5}\n"
                                     "workflow:").replace(
        "    - id: judge\n      kind: decide\n      inputs: [fetch]\n      susceptibility: {default: 0.5}\n",
        "    - id: judge\n      <<: *decide\n      inputs: [fetch]\n      base_error_rate: 0.01\n")
    path = write_scenario(text)
    result = runner.invoke(app, ["validate", str(path), "--show"])
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.stdout)
    judge = resolved["workflow"]["steps"][1]
    assert judge["kind"] == "decide" and judge["susceptibility"] == {"default": 0.5}
    assert judge["base_error_rate"] == 0.01 and "x-defaults" not in resolved


def test_scientific_notation_counts_as_an_integer_when_it_is_one(write_scenario, tmp_path):
    path = write_scenario(GOOD.replace("seed: 7", "seed: 7\ninstances: 2e3"))
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["instances"] == 2000
    refused_at(validate(write_scenario(GOOD.replace("seed: 7", "seed: 7\ninstances: 2.0005e3"))), path, 4,
               "instances", "fractional part")


@pytest.mark.parametrize("args, fragment", [
    (["--instances", str(2**63)], "--instances"),
    (["--instances", "1e9"], "--instances"),
    (["--seed", str(2**64)], "seed must be between 0 and"),
    (["--chunk-size", str(1 << 40)], "--chunk-size"),
    (["--workers", "100000"], "--workers"),
    (["--max-instance-rows", str(10**12)], "--max-instance-rows"),
])
def test_sizes_past_their_bounds_are_refused_on_the_command_line(write_scenario, tmp_path, args, fragment):
    result = runner.invoke(app, ["run", str(write_scenario(GOOD)), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2 and fragment in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_sizes_past_their_bounds_are_refused_in_python(write_scenario):
    from sim.core.errors import CascadeError
    from sim.runner import run

    with pytest.raises(CascadeError, match=r"instances must be between 1 and 1,000,000,000, got 9,223,372"):
        run(write_scenario(GOOD), instances=2**63)
    with pytest.raises(CascadeError, match="chunk_size must be a whole number"):
        run(write_scenario(GOOD), chunk_size=1.5)


def test_a_large_run_does_not_build_its_chunk_list(write_scenario):
    """A billion instances start at once (the chunks are made as they are simulated); stopped by the progress
    callback after the first chunk."""
    from sim.runner import run

    class Stop(Exception):
        pass

    def progress(done, total):
        assert total == limits.MAX_INSTANCES
        raise Stop

    with pytest.raises(Stop):
        run(write_scenario(GOOD), instances=limits.MAX_INSTANCES, chunk_size=1000, progress=progress)


@pytest.mark.parametrize("name", ["report[bold].yaml", "d[/x]"])
def test_user_text_with_markup_prints_as_written(tmp_path, name):
    folder = tmp_path / name if "." not in name else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name if "." in name else "s.yaml")
    path.write_text(GOOD.replace("name: chain", "name: '[bold]chain[/x]'"))
    ok = validate(path)
    assert ok.exit_code == 0 and f"{path}: ok" in " ".join(ok.output.split()) and "[bold]chain[/x]" in ok.output
    path.write_text(GOOD.replace("seed: 7", "seed: x"))
    message = refused_at(validate(path), path, 3, "seed")
    assert str(path) in message


def test_validate_show_prints_yaml_that_loads_back(write_scenario, tmp_path):
    path = write_scenario(GOOD.replace("name: chain", "name: " + "a very long name " * 8))
    result = runner.invoke(app, ["validate", str(path), "--show"])
    assert result.exit_code == 0, result.output
    assert "ok" not in result.stdout.splitlines()[0]  # the status went to stderr
    again = tmp_path / "again.yaml"
    again.write_text(result.stdout)
    assert validate(again).exit_code == 0
    assert yaml.safe_load(result.stdout)["name"] == ("a very long name " * 8).strip()


def test_the_json_schema_describes_every_field_with_units():
    result = runner.invoke(app, ["schema"])
    schema = json.loads(result.stdout)
    missing = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, prop in node.get("properties", {}).items():
                if "description" not in prop:
                    missing.append(f"{where}.{key}")
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for value in node:
                walk(value, where)

    walk(schema, "")
    assert not missing, missing
    detection = schema["$defs"]["Detection"]["properties"]["growth_per_day"]
    assert "fraction" in detection["description"] and detection["maximum"] == 1.0
    assert "minutes" in schema["$defs"]["Reviewers"]["properties"]["minutes"]["description"]
