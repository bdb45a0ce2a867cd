"""The agent engine's live retrieval against a real `chroma run` server that is killed or frozen during the
run: exit code 2 naming the address, never a traceback (the searches themselves: tests/retrieval)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chroma_fixtures import chroma_server, strike_during  # noqa: F401
from tests.conftest import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
CLI_SECONDS = 600  # generous: the bound under test is --store-timeout; this only keeps a hung test from hanging CI


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One embedding cache for the module: the second run embeds nothing."""
    return tmp_path_factory.mktemp("agent-cache")


@pytest.mark.embedding
@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_a_server_killed_or_frozen_during_an_agent_run_ends_in_exit_2(chroma_server, cache, tmp_path, fault):  # noqa: F811
    env = {**os.environ, "CASCADESIM_CACHE": str(cache),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    log = open(tmp_path / "out.log", "wb")  # a file, not a pipe: nobody drains a pipe while the test waits
    process = subprocess.Popen([sys.executable, "-m", "sim.cli", "run", str(SCENARIOS / "contract_review.yaml"),
                                "--engine", "agent", "--instances", "20", "--store", chroma_server.url,
                                "--store-timeout", "3", "--store-connect-timeout", "2", "--out", str(tmp_path / "run"),
                                "--quiet"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    # Strike once the engine has created its first collection: it is indexing the contracts then.
    code = strike_during(process, chroma_server, fault, tmp_path / "out.log", CLI_SECONDS)
    text = " ".join((tmp_path / "out.log").read_text(errors="replace").split())
    assert code == 2, text
    expected = "lost the Chroma server at" if fault == "kill" else "the Chroma server at"
    assert f"error: {expected} {chroma_server.url}" in text
    assert ("check that `chroma run` is still up" if fault == "kill" else "did not answer") in text
    assert "Traceback" not in text and not (tmp_path / "run" / "summary.json").exists()
