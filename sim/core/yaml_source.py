"""Read YAML while remembering where every value came from, so errors can point at file:line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sim.core.errors import Problem, ScenarioError

Path_ = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Maps a field path (keys and list indices) to the file and 1-based line where it was written."""

    lines: dict[Path_, tuple[str, int]] = field(default_factory=dict)
    default_file: str = "<scenario>"

    def locate(self, path: Path_) -> tuple[str, int | None]:
        """The file and line of `path`, or of its nearest written ancestor."""
        for cut in range(len(path), -1, -1):
            hit = self.lines.get(tuple(path[:cut]))
            if hit:
                return hit
        return self.default_file, None

    def graft(self, prefix: Path_, other: SourceMap) -> None:
        """Take the locations of `other` (another file) under `prefix`."""
        for path, where in other.lines.items():
            self.lines[prefix + path] = where

    def problem(self, path: Path_, message: str) -> Problem:
        file, line = self.locate(path)
        return Problem(file, line, dotted(path), message)


def dotted(path: Path_) -> str:
    """`('workflow', 'steps', 3, 'inputs')` -> `workflow.steps[3].inputs`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML text into plain Python values plus a SourceMap; duplicate keys are errors."""
    source = SourceMap(default_file=file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([Problem(file, line, "", f"not valid YAML: {reason}")]) from None
    if node is None:
        raise ScenarioError([Problem(file, 1, "", "the file is empty; a scenario needs at least schema_version, "
                                                 "name, seed, retrievers, workflow and costs")])
    problems: list[Problem] = []
    value = _build(node, (), source, file, problems)
    if problems:
        raise ScenarioError(problems)
    return value, source


def read_yaml_file(path: str | Path) -> tuple[Any, SourceMap]:
    """Read and parse a YAML file, with clear errors for missing files and bad encodings."""
    p = Path(path)
    if not p.exists():
        raise ScenarioError([Problem(str(path), None, "", "no such file")])
    if not p.is_file():
        raise ScenarioError([Problem(str(path), None, "", "is not a file (give the path of a .yaml scenario)")])
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError([Problem(str(path), None, "", f"not UTF-8 text (byte {exc.start}); save it as UTF-8")]) from None
    return load_yaml(text, str(path))


def _build(node: yaml.Node, path: Path_, source: SourceMap, file: str, problems: list[Problem]) -> Any:
    source.lines[path] = (file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str | int | float | bool):
                problems.append(Problem(file, key_node.start_mark.line + 1, dotted(path), "keys must be plain text"))
                continue
            key = str(key)
            if key in out:
                problems.append(Problem(file, key_node.start_mark.line + 1, dotted(path + (key,)),
                                        f"duplicate key '{key}' (first written on line "
                                        f"{source.lines[path + (key,)][1]}); keep one"))
                continue
            out[key] = _build(value_node, path + (key,), source, file, problems)
            source.lines[path + (key,)] = (file, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), source, file, problems) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    # A fresh SafeLoader keeps YAML's own typing rules (1.0 -> float, yes -> bool, ...).
    return yaml.SafeLoader("").construct_object(node, deep=True)

