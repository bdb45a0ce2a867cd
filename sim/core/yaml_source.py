"""Read YAML while remembering where every value came from, so errors can point at file:line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

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


MAX_DEPTH = 64
"""Deepest nesting of mappings and lists a file may have (scenarios need fewer than 10 levels)."""
MAX_VALUES = 200_000
"""Most values a file may hold once its aliases are expanded (a real scenario holds a few thousand)."""
MAX_BYTES = 16 * 1024 * 1024
"""Largest file read (a scenario is a few kilobytes; a profile a few hundred)."""

_MAP, _SEQ, _MERGE = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
# YAML 1.2 floats: PyYAML (YAML 1.1) reads `1e9` and `5e-3` as text; authors mean numbers.
_FLOAT_12 = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+")


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML text into plain Python values plus a SourceMap; duplicate keys, unknown tags, recursive
    aliases and sizes past the bounds above are errors with their line. Merge keys (`<<: *base`) work."""
    source = SourceMap(default_file=file)
    try:
        _check_depth(text, file)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ScenarioError([Problem(file, line, "", f"character U+{exc.character:04X} is not allowed in YAML "
                                                     "(control characters and NUL bytes); remove it")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([Problem(file, line, "", f"not valid YAML: {reason}")]) from None
    if node is None:
        raise ScenarioError([Problem(file, 1, "", "the file is empty; a scenario needs at least schema_version, "
                                                 "name, seed, retrievers, workflow and costs")])
    builder = _Builder(source, file)
    value = builder.build(node, ())
    if builder.problems:
        raise ScenarioError(builder.problems)
    return value, source


def read_yaml_file(path: str | Path) -> tuple[Any, SourceMap]:
    """Read and parse a YAML file, with clear errors for missing files, bad encodings and huge files."""
    p = Path(path)
    try:
        if not p.exists():
            raise ScenarioError([Problem(str(path), None, "", "no such file")])
        if not p.is_file():
            raise ScenarioError([Problem(str(path), None, "", "is not a file (give the path of a .yaml file)")])
        if p.stat().st_size > MAX_BYTES:
            raise ScenarioError([Problem(str(path), None, "", f"is {p.stat().st_size:,} bytes; a YAML file read "
                                                              f"here may have at most {MAX_BYTES:,}")])
        data = p.read_bytes()
    except OSError as exc:
        raise ScenarioError([Problem(str(path), None, "", f"cannot be read: {exc.strerror or exc}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ScenarioError([Problem(str(path), line, "", f"not UTF-8 text (byte {data[exc.start]:#04x} at offset "
                                                          f"{exc.start}); save the file as UTF-8")]) from None
    return load_yaml(text.removeprefix("\ufeff"), str(path))


def _check_depth(text: str, file: str) -> None:
    """Refuse nesting past MAX_DEPTH before composing (the composer recurses once per level)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ScenarioError([Problem(file, event.start_mark.line + 1, "",
                                             f"nested more than {MAX_DEPTH} levels deep; a scenario needs far "
                                             "fewer (is an indentation or bracket wrong?)")])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _Builder:
    """Turns composed nodes into plain values, recording each value's line; aliases are expanded with a budget."""

    def __init__(self, source: SourceMap, file: str):
        self.source, self.file = source, file
        self.problems: list[Problem] = []
        self.values = 0
        self.active: set[int] = set()  # nodes being built: meeting one again is a recursive alias

    def line(self, node: yaml.Node) -> int:
        return node.start_mark.line + 1

    def fail(self, node: yaml.Node, path: Path_, message: str) -> NoReturn:
        raise ScenarioError([*self.problems, Problem(self.file, self.line(node), dotted(path), message)])

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            self.fail(node, path, f"the file holds more than {MAX_VALUES:,} values once its aliases are expanded "
                                  "(aliases that repeat aliases grow exponentially); write the values out instead")
        if id(node) in self.active:
            self.fail(node, path, "this alias refers to a value that contains it (a recursive alias)")
        self.source.lines[path] = (self.file, self.line(node))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            if node.tag != _SEQ:
                return self.bad_tag(node, path)
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        if node.tag != _MAP:
            return self.bad_tag(node, path)
        out: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            key = self.scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str | int | float | bool):
                self.problems.append(Problem(self.file, self.line(key_node), dotted(path), "keys must be plain text"))
                continue
            key = str(key)
            if key in out:
                self.problems.append(Problem(self.file, self.line(key_node), dotted(path + (key,)),
                                             f"duplicate key '{key}' (first written on line "
                                             f"{self.source.lines[path + (key,)][1]}); keep one"))
                continue
            out[key] = self.build(value_node, path + (key,))
            self.source.lines[path + (key,)] = (self.file, self.line(key_node))
        # `<<: *base` or `<<: [*a, *b]`: keys written here win, then the first mapping that has the key.
        for merged in merges:
            for source_node in merged.value if isinstance(merged, yaml.SequenceNode) else [merged]:
                if not isinstance(source_node, yaml.MappingNode):
                    self.fail(source_node, path, "a merge key (<<) takes a mapping or a list of mappings "
                                                 "(usually an alias such as *defaults)")
                if id(source_node) in self.active:
                    self.fail(source_node, path, "this merge refers to the mapping that contains it")
                self.active.add(id(source_node))
                try:
                    for key_node, value_node in source_node.value:
                        key = self.scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
                        if key_node.tag != _MERGE and isinstance(key, str | int | float | bool) and str(key) not in out:
                            out[str(key)] = self.build(value_node, path + (str(key),))
                            self.source.lines[path + (str(key),)] = (self.file, self.line(key_node))
                finally:
                    self.active.discard(id(source_node))
        return out

    def scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        if node.tag == _STR and node.style is None and _FLOAT_12.fullmatch(node.value):
            return float(node.value)
        try:
            # A fresh SafeLoader keeps YAML's own typing rules (1.0 -> float, yes -> bool, ...).
            return yaml.SafeLoader("").construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            return self.bad_tag(node, path)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError) as exc:
            self.fail(node, path, f"{node.value!r} cannot be read as {_tag_name(node.tag)} ({exc})")

    def bad_tag(self, node: yaml.Node, path: Path_) -> NoReturn:
        self.fail(node, path, f"the tag {_tag_name(node.tag)} is not supported here; remove it (plain values, "
                              "mappings and lists need no tag)")


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag
