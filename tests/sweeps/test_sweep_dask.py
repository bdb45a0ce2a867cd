"""Studies on real Dask processes: the same sweep.parquet, byte for byte, on 1 and 2 local workers and on a
real `dask scheduler` with two `dask worker` processes (one of them killed mid-study: Dask reschedules its
work); a study whose client is killed with SIGKILL half way continues where it stopped, its workers gone."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import ROOT, free_port
from tests.sweeps.sweep_fixtures import timeline_study

pytestmark = pytest.mark.dask
POINTS = 8
DEADLINE = 240.0  # seconds for one study on two loaded cores; a hang fails instead of blocking CI
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _cascade(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sim.cli", *args], cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen) -> tuple[str, str]:
    out, err = process.communicate(timeout=DEADLINE)
    assert process.returncode == 0, err
    return out, err


def _records(folder: Path) -> int:
    return len(list((folder / "units").glob("*.json"))) if (folder / "units").is_dir() else 0


def _wait_for(predicate, seconds: float = DEADLINE) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("study") / "study.yaml"
    path.write_text(yaml.safe_dump(timeline_study(POINTS), sort_keys=False))
    return path


@pytest.fixture(scope="module")
def reference(scenario_file) -> bytes:
    """The study on one local worker, uninterrupted."""
    out = scenario_file.parent / "one_worker"
    _finish(_cascade("sweep", str(scenario_file), "--out", str(out), "--workers", "1", "--quiet"))
    return (out / "sweep.parquet").read_bytes()


@pytest.fixture
def dask_servers(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes (no nanny: a killed worker stays dead) on
    127.0.0.1, each stopped by its PID."""
    yield from _dask_servers(tmp_path, ENV)


def _dask_servers(tmp_path, scheduler_env):
    """Start a `dask scheduler` (in `scheduler_env`) and two `dask worker` processes; yield (address, workers);
    stop them all by PID when closed."""
    port = free_port()
    dask = str(Path(sys.executable).with_name("dask"))
    started = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                env=scheduler_env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)]
    address = f"tcp://127.0.0.1:{port}"
    try:
        _wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 60)
        for _ in range(2):
            started.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-nanny",
                                             "--no-dashboard", "--host", "127.0.0.1"], env=ENV, cwd=tmp_path,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield address, started[1:]
    finally:
        for p in started:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


@pytest.mark.servers
def test_same_table_on_one_two_and_remote_workers_even_when_a_worker_dies(scenario_file, reference, dask_servers,
                                                                          tmp_path):
    _finish(_cascade("sweep", str(scenario_file), "--out", str(tmp_path / "two"), "--workers", "2", "--quiet"))
    assert (tmp_path / "two" / "sweep.parquet").read_bytes() == reference
    address, workers = dask_servers
    remote = tmp_path / "remote"
    study = _cascade("sweep", str(scenario_file), "--out", str(remote), "--scheduler", address, "--quiet")
    _wait_for(lambda: _records(remote) >= 1)
    os.kill(workers[0].pid, signal.SIGKILL)  # mid-study: its tasks go to the other worker
    _finish(study)
    assert _records(remote) == POINTS
    assert (remote / "sweep.parquet").read_bytes() == reference


@pytest.mark.crash
def test_a_killed_study_continues_without_recomputing_and_its_workers_end(scenario_file, reference, tmp_path):
    out = tmp_path / "killed"
    args = ("sweep", str(scenario_file), "--out", str(out), "--workers", "1")
    study = _cascade(*args)
    _wait_for(lambda: _records(out) >= 3)
    workers = psutil.Process(study.pid).children(recursive=True)
    os.kill(study.pid, signal.SIGKILL)
    study.wait(timeout=30)
    kept = _records(out)
    assert 3 <= kept < POINTS, "kill the study half way"
    _, dead = psutil.wait_procs(workers, timeout=30)
    assert not dead, f"workers outlived the killed study: {dead}"
    _, err = _finish(_cascade(*args))
    reused = re.search(r"(\d+) units \((\d+) points\) reused", err)
    assert reused and int(reused.group(1)) >= kept, err
    assert f"{POINTS - int(reused.group(1))} to compute" in err
    assert (out / "sweep.parquet").read_bytes() == reference


@pytest.mark.servers
@pytest.mark.parametrize("allowed_failures, says", [
    ("0", r"the Dask workers computing points [\d, .]+ \(timeline\) died repeatedly \(.*\); the completed points "
          r"are kept: run the same command again to continue"),
    ("3", r"the Dask scheduler has had no worker for 3 s \(they died or left\) with \d+ tasks to compute; the "
          r"completed points are kept"),
], ids=["a point's workers died too often", "no worker left"])
def test_a_study_whose_workers_all_die_exits_2_and_keeps_the_completed_points(scenario_file, tmp_path,
                                                                              allowed_failures, says):
    """Every worker killed mid-study: with Dask's allowed-failures at 0 the points they were computing are given
    up at once; at its default (3) they wait for a worker, and the study stops after --worker-wait seconds
    without one (Dask alone would wait forever, as it did for a result lost with its worker)."""
    env = {**ENV, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": allowed_failures}
    servers = _dask_servers(tmp_path, env)
    address, workers = next(servers)
    try:
        out = tmp_path / "stopped"
        study = _cascade("sweep", str(scenario_file), "--out", str(out), "--scheduler", address, "--quiet",
                         "--worker-wait", "3")
        _wait_for(lambda: _records(out) >= 1)
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
        _, err = study.communicate(timeout=DEADLINE)
        assert study.returncode == 2, err
        assert re.search(says, " ".join(err.split())), err
        assert "Traceback" not in err
        assert 1 <= _records(out) < POINTS
    finally:
        servers.close()


def test_an_unreachable_scheduler_exits_2_and_says_so(scenario_file, tmp_path):
    study = _cascade("sweep", str(scenario_file), "--out", str(tmp_path / "x"), "--scheduler",
                     f"tcp://127.0.0.1:{free_port()}")
    _, err = study.communicate(timeout=DEADLINE)
    assert study.returncode == 2 and "cannot reach the Dask scheduler" in err, err
