"""Dotted `set` paths: how variants and built-in workflows change a scenario's plain data before validation."""

from __future__ import annotations

import copy
from typing import Any

from sim.core.errors import Problem, ScenarioError
from sim.core.yaml_source import Path_, SourceMap
from sim.scenario.checks import did_you_mean
from sim.scenario.distributions import place_distributions
from sim.scenario.model import Scenario


def base_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain data without its variants (what variants override), built-in steps inline."""
    data = scenario.model_dump(mode="json", exclude={"variants"})
    data["workflow"].pop("builtin", None)
    data["workflow"].pop("set", None)
    return place_distributions(data, scenario.distributions)


def apply_set(data: dict[str, Any], overrides: dict[str, Any], where: Path_, source: SourceMap) -> dict[str, Any]:
    """A copy of `data` with each dotted path in `overrides` set; list items are addressed by their `id`."""
    out = copy.deepcopy(data)
    problems: list[Problem] = []
    for key, value in overrides.items():
        parts = key.split(".")
        node: Any = out
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                ids = [item.get("id") for item in node if isinstance(item, dict)]
                if part not in ids:
                    problems.append(source.problem(where + (key,), f"no step '{part}' at "
                                                   f"'{'.'.join(parts[:depth]) or key}'{did_you_mean(part, ids)}"))
                    break
                idx = ids.index(part)
                if last:
                    node[idx] = copy.deepcopy(value)
                node = node[idx]
            elif isinstance(node, dict):
                if last:
                    node[part] = copy.deepcopy(value)
                elif part not in node or not isinstance(node[part], dict | list):
                    problems.append(source.problem(where + (key,), f"'{'.'.join(parts[:depth + 1])}' is not a "
                                                   f"section that can be changed{did_you_mean(part, node)}"))
                    break
                else:
                    node = node[part]
            else:
                problems.append(source.problem(where + (key,), f"'{'.'.join(parts[:depth])}' holds a value, "
                                                              "not a section"))
                break
    if problems:
        raise ScenarioError(problems)
    return out


def matching_set_key(overrides: dict[str, Any], problem_path: str) -> str | None:
    """The override whose path is the longest prefix of a problem's field path (step ids resolved loosely)."""
    best = None
    flat = problem_path.replace("[", ".").replace("]", "")
    for key in overrides:
        tail = key.split(".")[-1]
        if flat.startswith(key) or flat.endswith(tail) or tail in flat.split("."):
            if best is None or len(key) > len(best):
                best = key
    return best
