"""A sweep given on the command line (`--grid PATH=START:STOP:COUNT`, `--values PATH=A,B,C`): it takes the place
of the file's `sweep:` parameters and is validated as if written there, each problem naming its option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.core.errors import CascadeError
from sim.core.yaml_source import read_yaml_file
from sim.scenario.load import scenario_from_dict
from sim.scenario.model import Scenario


def parse_option(kind: str, text: str) -> tuple[str, dict[str, Any]]:
    """`--grid PATH=START:STOP:COUNT` or `--values PATH=A,B,C` as (path, the parameter's YAML mapping); values
    are read as YAML scalars (`0.5` a number, `abc` text), so a list means what it would in the file."""
    import yaml

    path, sep, spec = text.partition("=")
    if not sep or not path.strip() or not spec.strip():
        example = "PATH=START:STOP:COUNT (e.g. retrievers.contract.rates.role_swap=0:0.05:11)" if kind == "grid" \
            else "PATH=A,B,C (e.g. timeline.reviewers.legal_review.servers=3,4,5)"
        raise CascadeError(f"--{kind} {text!r}: give {example}")
    parts = [yaml.safe_load(p) if p.strip() else None for p in spec.split(":" if kind == "grid" else ",")]
    if kind == "grid" and len(parts) != 3:
        raise CascadeError(f"--grid {text!r}: a grid is START:STOP:COUNT, three values, got {len(parts)}")
    return path.strip(), {kind: parts}


def scenario_with_sweep(file: str | Path, options: list[tuple[str, str]], engines: list[str] | None = None) -> Scenario:
    """The scenario in `file` with its sweep parameters replaced by `options` ((kind, text) pairs; its zip and
    design go with them) and, when given, its engines; validated whole, each problem located at its option."""
    raw, source = read_yaml_file(file)
    if not isinstance(raw, dict):
        return scenario_from_dict(raw, source, Path(file).resolve().parent)  # reports what the file is instead
    block = dict(raw.get("sweep") or {}) if isinstance(raw.get("sweep"), dict) else {}
    if options:
        parameters = {}
        source.lines[("sweep",)] = ("command line", None)
        for kind, text in options:
            path, spec = parse_option(kind, text)
            parameters[path] = spec
            source.lines[("sweep", "parameters", path)] = (f"--{kind} {text}", None)
        block = {k: v for k, v in block.items() if k not in ("parameters", "zip", "design")}
        block["parameters"] = parameters
    if engines:
        block["engines"] = engines
        source.lines[("sweep", "engines")] = ("--engine", None)
    if block:
        raw = {**raw, "sweep": block}
    return scenario_from_dict(raw, source, Path(file).resolve().parent)


__all__ = ["parse_option", "scenario_with_sweep"]
