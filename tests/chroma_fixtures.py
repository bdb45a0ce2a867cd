"""The `chroma_server` fixture: a real `chroma run` server on a free loopback port, one per test, that a test
may kill (SIGKILL) or freeze (SIGSTOP); teardown always ends it by its pid.

Use it with `from tests.chroma_fixtures import chroma_server  # noqa: F401`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

STARTUP_SECONDS = 60.0  # a cold `chroma run` takes ~4 s here; two busy cores can make it much slower
COLLECTIONS = "/api/v2/tenants/default_tenant/databases/default_database/collections"


class ChromaServer:
    """A running `chroma run`: `url` for --store, `collections()` to look inside, `kill()` and `stop()` for faults."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path):
        self.process, self.port, self.log = process, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.stopped = False

    def collections(self) -> list[str]:
        """Names of the server's collections (a short timeout: the server may be busy)."""
        response = httpx.get(self.url + COLLECTIONS, timeout=2.0)
        response.raise_for_status()
        return [c["name"] for c in response.json()]

    def kill(self) -> None:
        """SIGKILL, as when the machine or an operator ends the server without warning."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGSTOP: the server keeps its port and accepts connections, but never answers."""
        os.kill(self.process.pid, signal.SIGSTOP)
        self.stopped = True

    def end(self) -> None:
        """End the server by its pid, whatever state a test left it in."""
        if self.process.poll() is not None:
            return
        if self.stopped:  # a stopped process does not act on SIGTERM until continued
            os.kill(self.process.pid, signal.SIGKILL)
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.wait(timeout=30)
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture
def chroma_server(tmp_path):
    """A fresh `chroma run` server (its data under tmp_path) that is ended by its pid after the test."""
    chroma = Path(sys.executable).parent / "chroma"
    port, log = free_port(), tmp_path / "chroma-server.log"
    # Output to a file, not a pipe: nobody drains a pipe while tests run, and a full one blocks the server.
    with open(log, "wb") as out:
        process = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "chroma-server"), "--host",
                                    "127.0.0.1", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    server = ChromaServer(process, port, log)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                server.collections()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"chroma run did not start within {STARTUP_SECONDS:g} s (exit code "
                                f"{process.poll()}); its output:\n{log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.2)
        yield server
    finally:
        server.end()


def strike_during(process: subprocess.Popen, server, fault: str, log: Path, timeout: float) -> int:
    """Kill (`fault` "kill") or SIGSTOP ("stop") the server once `process` has created its first collection
    (it is indexing then), and return the process's exit code; the process never outlives the call. `log` is
    the file its output goes to, shown if it ended before the fault."""
    try:
        while process.poll() is None and not server.collections():
            time.sleep(0.05)
        assert process.poll() is None, f"the run ended before the fault: {log.read_text(errors='replace')}"
        server.kill() if fault == "kill" else server.stop()
        return process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
