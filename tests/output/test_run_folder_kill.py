"""`kill -9` at any moment of `cascade run`: the run folder is the old complete run or the new complete one, the
report renders it, and no worker process outlives its parent. Real processes, real signals (Linux: /proc)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.core.seeding import stream
from tests.conftest import ROOT, SCENARIOS

pytestmark = [pytest.mark.crash,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and /proc as on Linux")]

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
"""This tree's `sim` first in the `cascade` processes too (not an installed copy)."""
RUN = ["run", str(SCENARIOS / "ticket_triage.yaml"), "-n", "300000", "--workers", "1", "--quiet"]
"""~1 s of simulation after ~2 s of imports, then ~0.4 s writing a 4.5 MB instances table."""
KILLS_ANYWHERE, KILLS_WHILE_WRITING = 7, 7


def _cascade(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sim.cli", *args], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, **kwargs)


def _contents(folder: Path) -> dict[str, str]:
    """SHA-256 of each file of a run folder, without the report that `cascade report` adds."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if not p.name.startswith("report.")}


def _write_started(parent: Path, name: str, pid: int) -> bool:
    """True once process `pid` has begun building its new folder beside `parent / name`."""
    return any(p.name.startswith(f".{name}.cascade-new-{pid}-") for p in parent.iterdir())


def _complete_run(seed: int, out: Path) -> tuple[float, float]:
    """Run to the end; return (seconds until the new folder appeared, seconds until it was swapped in)."""
    start = time.monotonic()
    proc = _cascade(*RUN, "--seed", str(seed), "--out", str(out))
    began = swapped = None
    while proc.poll() is None and swapped is None:
        building = _write_started(out.parent, out.name, proc.pid)
        if began is None and building:
            began = time.monotonic()
        elif began is not None and not building:
            swapped = time.monotonic()
        time.sleep(0.001)
    assert proc.wait() == 0, proc.stderr.read().decode()
    assert began is not None and swapped is not None, "the write phase was never seen"
    return began - start, swapped - began


def test_a_run_killed_at_any_moment_leaves_the_old_run_or_the_new_one(tmp_path):
    refs = {seed: tmp_path / f"complete{seed}" for seed in (1, 2)}
    phases = [_complete_run(seed, ref) for seed, ref in refs.items()]
    complete = {seed: _contents(ref) for seed, ref in refs.items()}
    assert complete[1] != complete[2] and "manifest.json" in complete[1]
    to_write, writing = max(p[0] for p in phases), max(p[1] for p in phases)
    out = tmp_path / "run"
    shutil.copytree(refs[1], out)
    current = 1
    rng = stream(20261124, "kill moments", 0)
    # Anywhere from the start to a little past the usual end, and (timed from the moment the new folder appears)
    # anywhere in the write phase: the files, the manifest, the swap, the removal of the old run.
    moments = [("anywhere", t) for t in rng.uniform(0, 1.1 * (to_write + writing), KILLS_ANYWHERE)]
    moments += [("while writing", t) for t in rng.uniform(0, writing, KILLS_WHILE_WRITING)]
    seen = {"old": 0, "new": 0, "killed while writing": 0}
    for when, delay in moments:
        target = 3 - current
        proc = _cascade(*RUN, "--seed", str(target), "--out", str(out))
        if when == "while writing":
            while proc.poll() is None and not _write_started(tmp_path, "run", proc.pid):
                time.sleep(0.001)
        time.sleep(delay)
        if proc.poll() is None and _write_started(tmp_path, "run", proc.pid):
            seen["killed while writing"] += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = _contents(out)
        assert now in (complete[current], complete[target]), f"mixed folder after a kill {when} at +{delay:.3f}s"
        seen["old" if now == complete[current] else "new"] += 1
        current = 1 if now == complete[1] else 2
        report = CliRunner().invoke(app, ["report", str(out)])
        assert report.exit_code == 0, report.output
        assert (out / "report.html").is_file()
    print(f"kills: {seen}; phases (seconds to the write, writing): {phases}")
    assert seen["killed while writing"] >= KILLS_WHILE_WRITING // 2, seen
    assert seen["old"] >= 1, seen
    # A run that is not killed cleans up what the killed ones left beside the folder, and replaces the report.
    target = 3 - current
    proc = _cascade(*RUN, "--seed", str(target), "--out", str(out))
    assert proc.wait() == 0, proc.stderr.read().decode()
    assert _contents(out) == complete[target] and not (out / "report.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["complete1", "complete2", "run"]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for a reaper (PID 1 in a container may not reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if not _gone(p)]


def test_monte_carlo_workers_die_with_a_killed_parent(tmp_path):
    proc = _cascade("run", str(SCENARIOS / "ticket_triage.yaml"), "-n", "20000000", "--workers", "2",
                    "--chunk-size", "100000", "--max-instance-rows", "0", "--quiet", "--out", str(tmp_path / "run"))
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None:
        workers = [p for p in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        if len(workers) == 2:
            break
        time.sleep(0.05)
    assert len(workers) == 2, "the workers never started"
    time.sleep(0.5)  # past their initializer, into the chunks
    everyone = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _wait_gone(everyone, 10) == [], "processes outlived the killed `cascade run`"


def test_the_portable_watchdog_ends_an_orphan():
    # Where the kernel's parent-death signal is missing, a thread in the worker polls the parent's id.
    # The parent's id is read before the worker says it is ready (as the pool passes it): read after, a parent
    # killed in between would already be gone and the watch would wait for a change that never comes.
    worker = ("import os, sim.core.worker_process as w; w.WATCH_SECONDS = 0.05; parent = os.getppid(); "
              "print(os.getpid(), flush=True); w._watch(parent); import time; time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys, time; subprocess.Popen([sys.executable, "
                               f"'-c', {worker!r}]); time.sleep(60)"], env=ENV, stdout=subprocess.PIPE)
    pid = int(parent.stdout.readline())
    assert not _gone(pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert _wait_gone([pid], 5) == []
