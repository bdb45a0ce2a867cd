"""A seeded structural fuzzer of scenario files, and a harness that feeds each mutant to the real CLI.

Mutants start from the built-in scenarios and change them the way careless, hurried and hostile users do: keys
deleted and misspelt, values of the wrong type, huge, negative and non-finite numbers, aliases (exponential and
recursive), merge keys, tags, deep nesting, truncation and bad bytes. The harness runs `cascade validate`, and on
a valid mutant `cascade run` (analytic, and a small Monte Carlo or timeline run), in this process, and classifies
the outcome: `ok` (exit 0), `refused` (exit 2 naming file:line), `no line` (exit 2 without a line), `traceback`
(exit 1 or an exception) or `hang` (past the time bound).

Used by tests/test_fuzz.py (a few hundred mutants) and bench/fuzz_campaign.py (the full campaign).
"""

from __future__ import annotations

import copy
import math
import re
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.core.seeding import stream

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "scenarios").glob("*.yaml"))

ODD_VALUES: list[Any] = [5, -1, 0, 0.5, 1e308, -1e308, math.inf, -math.inf, math.nan, "text", "", [], {}, [1, 2],
                         {"a": 1}, None, True, 10**30, 2**63, 1e15, "1e9", "[/x]", "a" * 300, "é\u2028x"]
HUGE_NUMBERS: list[Any] = [1e15, 1e9, 2**63, 10**30, 1e308, -1, -1e308, 0, math.inf, math.nan, 1e-300, 7.5]
TAGS = ["!mytag", "!!bool", "!!float", "!!int", "!!python/object:os.system", "!!binary", "!!set", "!!str",
        "!!timestamp", "!!omap"]
BAD_BYTES = [b"\x00", b"\xff\xfe", b"\xc3", b"\xe2\x80\xa8", b"\xef\xbb\xbf", b"\t", b"\x1b[31m", b"\r", b"\x85",
             b"\xed\xa0\x80", b"\x7f"]
FAMILIES = ["delete_key", "rename_key", "type_swap", "numbers", "alias", "merge", "tag", "deep", "truncate",
            "bad_bytes", "duplicate"]


@dataclass
class Mutant:
    family: str
    source: str
    content: bytes


def mutants(seed: int, count: int) -> Iterator[Mutant]:
    """`count` mutants, the families in turn, each drawn from its own seeded stream."""
    rng = stream(seed, "fuzz/mutants", 0)
    texts = {p.name: _files_made_absolute(p) for p in SOURCES}
    for i in range(count):
        family = FAMILIES[i % len(FAMILIES)]
        name = sorted(texts)[int(rng.integers(len(texts)))]
        content = _MUTATORS[family](rng, texts[name])
        yield Mutant(family, name, content if isinstance(content, bytes) else content.encode("utf-8"))


def _files_made_absolute(source: Path) -> str:
    """The scenario's text with the files it names beside it (an agent's corpus and cases) as absolute paths, so
    that its mutants, written elsewhere, still find them (profiles are linked by `try_mutant`)."""
    def absolute(m: re.Match) -> str:
        target = (source.parent / m[2]).resolve()
        return m[1] + str(target) if not Path(m[2]).is_absolute() and target.exists() else m[0]

    return re.sub(r"(?m)^(\s+(?:path|cases): )([^\s#]+)", absolute, source.read_text(encoding="utf-8"))


# -- data-level mutations ------------------------------------------------------------------------------------
def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside `data` (mapping keys and list indices)."""
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.append(prefix + (i,))
            out += _paths(v, prefix + (i,))
    return out


def _parent(data: Any, path: tuple) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def _pick(rng: np.random.Generator, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _delete_key(rng, text):
    data = yaml.safe_load(text)
    path = _pick(rng, [p for p in _paths(data) if isinstance(_parent(data, p), dict)])
    del _parent(data, path)[path[-1]]
    return _dump(data)


def _rename_key(rng, text):
    data = yaml.safe_load(text)
    path = _pick(rng, [p for p in _paths(data) if isinstance(_parent(data, p), dict)])
    parent, key = _parent(data, path), path[-1]
    new = _pick(rng, [key[:-1], key + "s", key.upper(), key.replace("_", "-"), key[::-1], "[/x]", "x" * 70, ""])
    parent[new] = parent.pop(key)
    return _dump(data)


def _type_swap(rng, text):
    data = yaml.safe_load(text)
    path = _pick(rng, _paths(data))
    _parent(data, path)[path[-1]] = copy.deepcopy(_pick(rng, ODD_VALUES))
    return _dump(data)


def _numbers(rng, text):
    data = yaml.safe_load(text)
    numeric = [p for p in _paths(data) if isinstance(_parent(data, p)[p[-1]], int | float)
               and not isinstance(_parent(data, p)[p[-1]], bool)]
    for path in [_pick(rng, numeric) for _ in range(1 + int(rng.integers(3)))]:
        value = _pick(rng, HUGE_NUMBERS)
        _parent(data, path)[path[-1]] = value
    out = _dump(data)
    # Also the spellings users write: 1e9 (YAML 1.2 float), .inf, 1_000_000
    return re.sub(r"(instances|per_day|replications): \S+", lambda m: m.group(1) + ": " + _pick(
        rng, ["1e9", "1e15", ".inf", "1_000_000", "2e3", "-5", "1.5"]), out) if rng.random() < 0.3 else out


def _duplicate(rng, text):
    data = yaml.safe_load(text)
    lists = [p for p in _paths(data) if isinstance(_parent(data, p)[p[-1]], list) and _parent(data, p)[p[-1]]]
    if lists and rng.random() < 0.6:
        path = _pick(rng, lists)
        items = _parent(data, path)[path[-1]]
        items.insert(int(rng.integers(len(items) + 1)), copy.deepcopy(_pick(rng, items)))
        return _dump(data)
    lines = text.splitlines(keepends=True)
    keyed = [i for i, line in enumerate(lines) if re.match(r"\s*[a-z_]+:", line)]
    i = _pick(rng, keyed)
    return "".join(lines[:i + 1] + [lines[i]] + lines[i + 1:])  # the same key twice


# -- text-level mutations ------------------------------------------------------------------------------------
def _scalar_lines(text: str) -> list[int]:
    lines = text.splitlines(keepends=True)
    return [i for i, line in enumerate(lines) if re.match(r"\s*[a-z_]+: [^{\[#&*!|>]\S*", line)]


def _alias(rng, text):
    kind = int(rng.integers(4))
    if kind == 0:  # billion laughs
        depth = int(rng.integers(4, 10))
        bomb = 'lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
            f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, depth))
        return bomb + text if rng.random() < 0.5 else text + bomb
    if kind == 1:  # a recursive alias
        return text + _pick(rng, ["loop: &loop [1, *loop]\n", "loop: &loop {a: *loop}\n",
                                  "loop: &loop\n  - *loop\n"])
    if kind == 2:  # an alias to an undefined anchor
        lines = text.splitlines(keepends=True)
        i = _pick(rng, _scalar_lines(text))
        lines[i] = re.sub(r": .*", ": *nowhere", lines[i].rstrip("\n")) + "\n"
        return "".join(lines)
    # a legitimate anchor and alias: the same value used twice, mostly where it can stay valid (two entries of a
    # collection, as two costs; or two mappings of one name, as two retrievers' rates)
    data = yaml.safe_load(text)
    paths = [p for p in _paths(data) if isinstance(_parent(data, p)[p[-1]], dict)]
    alike = [(a, b) for a in paths for b in paths if a != b and (a[-1] == b[-1] or (
        a[:-1] == b[:-1] and len(a) > 1 and a[-2] in ("costs", "retrievers", "reviewers")))]
    a, b = _pick(rng, alike) if alike and rng.random() < 0.8 else (_pick(rng, paths), _pick(rng, paths))
    _parent(data, b)[b[-1]] = _parent(data, a)[a[-1]]  # safe_dump writes an anchor and an alias
    return _dump(data)


def _merge(rng, text):
    data = yaml.safe_load(text)
    steps = (data.get("workflow") or {}).get("steps") if isinstance(data.get("workflow"), dict) else None
    if rng.random() < 0.7 and isinstance(steps, list):
        # The way authors share defaults between steps: an anchored mapping merged into each decide step.
        defaults = "x-defaults: &defaults\n  base_error_rate: 0.01\n  susceptibility: {default: 0.5}\n"
        out = _dump(data)
        out = re.sub(r"(\n(\s+)kind: decide\n)", lambda m: m.group(1) + m.group(2) + "<<: *defaults\n", out,
                     count=int(rng.integers(1, 4)))
        return defaults + out
    if rng.random() < 0.7 and re.search(r"\n\s+kind: injected\n", _dump(data)):
        # A built-in workflow has no steps written: share a retriever's kind the same way (the key written
        # beside the merge wins).
        out = re.sub(r"(\n(\s+)kind: injected\n)", lambda m: m.group(1) + m.group(2) + "<<: *retriever\n",
                     _dump(data), count=int(rng.integers(1, 3)))
        return "x-retriever: &retriever\n  kind: injected\n" + out
    return text + _pick(rng, ["bad_merge:\n  <<: 5\n", "bad_merge:\n  <<: [1, 2]\n",
                              "base: &b {x: 1}\nother:\n  <<: *b\n  <<: *b\n", "m: &m\n  <<: *m\n"])


def _tag(rng, text):
    lines = text.splitlines(keepends=True)
    for _ in range(1 + int(rng.integers(2))):
        i = _pick(rng, _scalar_lines(text))
        key, _, value = lines[i].rstrip("\n").partition(": ")
        lines[i] = f"{key}: {_pick(rng, TAGS)} {_pick(rng, [value, 'maybe', 'abc', '0x', '2026-13-45', value])}\n"
    return "".join(lines)


def _deep(rng, text):
    n = _pick(rng, [70, 100, 500, 5000, 50000])
    lines = text.splitlines(keepends=True)
    i = _pick(rng, _scalar_lines(text))
    key = lines[i].partition(": ")[0]
    if rng.random() < 0.5:
        lines[i] = f"{key}: {'[' * n}1{']' * n}\n"
    else:
        indent = len(key) - len(key.lstrip())
        block = "".join(" " * (indent + 2 * (d + 1)) + f"k{d}:\n" for d in range(min(n, 2000)))
        lines[i] = f"{key}:\n{block}{' ' * (indent + 2 * (min(n, 2000) + 1))}v: 1\n"
    return "".join(lines)


def _truncate(rng, text):
    data = text.encode("utf-8")
    return data[:int(rng.integers(len(data)))]


def _bad_bytes(rng, text):
    data = text.encode("utf-8")
    for _ in range(1 + int(rng.integers(3))):
        at = int(rng.integers(len(data)))
        data = data[:at] + _pick(rng, BAD_BYTES) + data[at:]
    return data


_MUTATORS = {"delete_key": _delete_key, "rename_key": _rename_key, "type_swap": _type_swap, "numbers": _numbers,
             "alias": _alias, "merge": _merge, "tag": _tag, "deep": _deep, "truncate": _truncate,
             "bad_bytes": _bad_bytes, "duplicate": _duplicate}


# -- the harness ---------------------------------------------------------------------------------------------
class Hang(BaseException):
    """Raised by the alarm: a BaseException, so that no `except Exception` in the code under test hides it."""


@dataclass
class Outcome:
    family: str
    source: str
    command: str
    kind: str  # ok, refused, no line, traceback, hang
    seconds: float
    message: str


def run_cli(args: list[str], time_bound: float) -> tuple[int | None, str, float]:
    """(exit code or None on a hang, output, seconds) of `cascade ARGS`, in this process."""
    def alarm(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, time_bound)
    start = time.perf_counter()
    try:
        result = CliRunner().invoke(app, args)
        code = result.exit_code if result.exception is None or isinstance(result.exception, SystemExit) else 1
        output = result.output
    except Hang:
        code, output = None, ""
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return code, output, time.perf_counter() - start


def classify(code: int | None, output: str, file: Path | None) -> str:
    """The outcome; an exit 2 about the file (`file` given) must name file:line, others must say `error:`."""
    if code is None:
        return "hang"
    if code == 0:
        return "ok"
    if code == 2:
        located = re.search(re.escape(str(file)) + r":\d+:", output) if file else "error:" in output
        return "refused" if located else "no line"
    return "traceback"


def try_mutant(mutant: Mutant, folder: Path, time_bound: float = 30.0) -> list[Outcome]:
    """Validate the mutant and, when valid, run it (analytic; then Monte Carlo or a small timeline)."""
    folder.mkdir(parents=True, exist_ok=True)
    profiles = folder / "profiles"
    if not profiles.exists():
        profiles.symlink_to(ROOT / "scenarios" / "profiles")
    file = folder / "mutant.yaml"
    file.write_bytes(mutant.content)
    out = folder / "run"
    commands = [("validate", ["validate", str(file)])]
    outcomes: list[Outcome] = []
    for name, args in commands:
        code, output, seconds = run_cli(args, time_bound)
        about_file = file if name == "validate" else None
        outcomes.append(Outcome(mutant.family, mutant.source, name, classify(code, output, about_file), seconds,
                                output[-600:]))
        if code != 0:
            return outcomes
        if name == "validate":
            commands += [("run analytic", ["run", str(file), "--engine", "analytic", "--out", str(out), "-q"]),
                         ("run monte_carlo", ["run", str(file), "--instances", "3000", "--out", str(out), "-q"])]
            if _small_timeline(file):
                commands.append(("run timeline", ["run", str(file), "--engine", "timeline", "--out", str(out),
                                                  "-q"]))
    shutil.rmtree(out, ignore_errors=True)
    return outcomes


def _small_timeline(file: Path) -> bool:
    """A timeline run of at most 100,000 arrivals (the bounds allow half an hour; the fuzz needs seconds)."""
    from sim.scenario.load import load_scenario

    s = load_scenario(file, measure=False)
    if s.timeline is None:
        return False
    arrivals = float(s.timeline.arrivals.daily_means(s.timeline.horizon_days).sum())
    return arrivals * s.timeline.replications * (1 + len(s.variants)) <= 100_000
