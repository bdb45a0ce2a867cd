"""The `llm_server` fixture: one scripted OpenAI-compatible server (tests/llm_server.py) per test session.

Use it with `from tests.llm_fixtures import llm_server  # noqa: F401`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER = Path(__file__).resolve().parent / "llm_server.py"
STARTUP_SECONDS = 20.0


class LLMServer:
    """A running test server: `base_url` for the client, `script()` to set its behaviour, `requests()` to count."""

    def __init__(self, port: int):
        self.root = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.root}/v1"

    def script(self, script: str, latency: float = 0.0, storm: float = 0.0) -> None:
        """Replace the behaviour script (e.g. "429,ok"), the latency of every answer and the 429 storm
        (seconds; see tests/llm_server.py), and reset the position, the request count and the log."""
        self._call("/script", {"script": script, "latency": latency, "storm": storm})

    def log(self) -> list[dict]:
        """Every chat request since the last `script()` call: arrival `t` (seconds since it), `status`,
        `retry_after` and `key` (SHA-256 of the user message)."""
        return self._call("/log")["log"]

    def requests(self) -> int:
        """Chat completion requests seen since the last `script()` call."""
        return self._call("/stats")["requests"]

    def _call(self, path: str, payload: dict | None = None) -> dict:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(self.root + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory):
    """A scripted OpenAI-compatible server on a free loopback port, stopped by its pid at the end."""
    where = tmp_path_factory.mktemp("llm_server")
    port_file, log = where / "port", where / "stderr.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    # stderr goes to a file, not a pipe: nobody drains a pipe while tests run, and a full one blocks the server.
    with open(log, "wb") as stderr:
        process = subprocess.Popen([sys.executable, str(SERVER), "--port-file", str(port_file), "--script", "ok"],
                                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not port_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the test LLM server did not start within {STARTUP_SECONDS:g} s "
                            f"(exit code {process.poll()}); its stderr:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield LLMServer(int(port_file.read_text()))
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
