"""Shared helpers: small scenarios written as YAML files, so tests go through the same loader as users."""

from __future__ import annotations

import copy
import socket
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
BUILTIN_SCENARIOS = sorted(SCENARIOS.glob("*.yaml"))

CHAIN = {
    "schema_version": 1,
    "name": "chain",
    "seed": 2026,
    "instances": 20000,
    "retrievers": {"docs": {"kind": "injected", "rates": {"negation_flip": 0.05, "topical_miss": 0.1}}},
    "workflow": {"steps": [
        {"id": "fetch", "kind": "retrieve", "retriever": "docs"},
        {"id": "judge", "kind": "decide", "inputs": ["fetch"], "base_error_rate": 0.02,
         "susceptibility": {"default": 0.5, "negation_flip": 0.9}},
        {"id": "check", "kind": "verify", "inputs": ["judge"], "catch": {"default": 0.3}, "false_alarm": 0.01},
        {"id": "apply", "kind": "act", "inputs": ["check"]},
    ]},
    "costs": {"apply": {"failure_loss": 1000.0, "escalation_cost": 50.0}},
}


def chain(**changes) -> dict:
    """A copy of the small chain scenario with top-level keys replaced."""
    data = copy.deepcopy(CHAIN)
    data.update(changes)
    return data


def with_timeline(**timeline) -> dict:
    """The chain scenario with a small timeline (60 days, 2 replications, 300 arrivals a day) plus `timeline`."""
    data = chain()
    data["timeline"] = {"horizon_days": 60, "replications": 2, "arrivals": {"per_day": 300}, **timeline}
    return data


@pytest.fixture
def write_scenario(tmp_path):
    """Write a scenario (dict or raw YAML text) to a file and return its path."""
    def write(content, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
        return path
    return write


# Slow families, marked so that the fast core runs alone:  pytest -m "not (agent or browser or crash or embedding
# or finetune or fuzz or notebooks or servers or uncertainty)". The README's plain `pytest` still runs everything.
_BY_PATH = {"agents": "agent", "test_finetune.py": "finetune", "test_fuzz.py": "fuzz",
            "test_notebooks.py": "notebooks",
            "test_measure.py": "embedding", "test_openai_policy.py": "servers"}
_BY_FIXTURE = {"browser": "browser", "llm_server": "servers", "chroma_server": "servers"}


def pytest_collection_modifyitems(items):
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        marks = {mark for part, mark in _BY_PATH.items() if part in parts}
        marks |= {mark for fixture, mark in _BY_FIXTURE.items() if fixture in item.fixturenames}
        if "server" in item.name:
            marks.add("servers")
        for mark in sorted(marks):
            item.add_marker(getattr(pytest.mark, mark))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
