"""Vector stores and caches that fail: bad addresses, files where folders belong, full disks, and a real
`chroma run` server killed or frozen in the middle of `cascade measure`. Each ends in exit code 2 with a
message naming the path or address, never a traceback."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.core.errors import CascadeError
from sim.retrieval.embedding import Embedder
from sim.retrieval.measure import ProbeSettings, measure
from sim.retrieval.sources import open_corpus
from sim.retrieval.store import StoreLocation, StoreTimeouts, VectorIndex, connect
from tests.chroma_fixtures import chroma_server, strike_during  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
CLI_SECONDS = 300  # generous: the bound under test is --store-timeout; this only keeps a hung test from hanging CI

PROBES = 20


def write_corpus(path: Path, rows: int) -> Path:
    """A CSV of `rows` passages cycling through eight clauses of the built-in corpus: few distinct texts (little
    to embed), many records (a server takes seconds to index them: the window in which the fault tests strike)."""
    clauses = [p.text for p in open_corpus("contracts").passages[:8]]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text"])
        writer.writerows([f"p{i:05d}", clauses[i % len(clauses)]] for i in range(rows))
    return path


def cli_measure(*args: str, cache: Path, corpus: Path, out: Path, timeout: float = CLI_SECONDS,
                popen: bool = False, wrap: tuple[str, ...] = ()):
    """`cascade measure` in a child process (real signals, real exit codes); output goes to out.log."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    argv = [*wrap, sys.executable, "-m", "sim.cli", "measure", "--corpus", str(corpus), "--probes", str(PROBES),
            "--cache-dir", str(cache), "--out", str(out / "profile.yaml"), *args]
    log = open(out / "out.log", "wb")  # a file, not a pipe: nobody drains a pipe while the test waits
    process = subprocess.Popen(argv, cwd=out, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    if popen:
        return process
    return process.wait(timeout=timeout), read_log(out)


def read_log(out: Path) -> str:
    return " ".join((out / "out.log").read_text(errors="replace").split())


# --- addresses and folders: refused before anything is embedded ---------------------------------------------

@pytest.mark.parametrize("store, fragment", [
    ("ftp://x:1", "--store ftp://x:1: ftp:// is not a store"),
    ("s3://bucket/chroma", "--store s3://bucket/chroma: s3:// is not a store"),
    ("http:/127.0.0.1:8000", "--store http:/127.0.0.1:8000: give a server address as http://HOST:PORT"),
    ("http://127.0.0.1:99999", "a port in 1..65535"),
    ("http://127.0.0.1:8000/chroma", "no path"),
])
def test_a_store_that_is_neither_a_folder_nor_a_server_is_refused(tmp_path, monkeypatch, store, fragment):
    monkeypatch.chdir(tmp_path)
    corpus = write_corpus(tmp_path / "corpus.csv", 8)
    result = runner.invoke(app, ["measure", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"),
                                 "--store", store])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert fragment in text and "http://HOST:PORT" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.csv"]  # no folder named "ftp:" or the like


@pytest.mark.parametrize("option, value, fragment", [
    ("--store", "afile", "--store afile: that is a file, not a folder; give a folder for the embedded store"),
    ("--store", "afile/chroma", "--store afile/chroma: afile is a file, not a folder"),
    ("--cache-dir", "afile", "the cache folder afile (--cache-dir or $CASCADESIM_CACHE): that is a file"),
])
def test_a_file_where_a_folder_belongs_is_named(tmp_path, monkeypatch, option, value, fragment):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder\n")
    corpus = write_corpus(tmp_path / "corpus.csv", 8)
    defaults = {"--cache-dir": str(tmp_path / "cache"), "--store": str(tmp_path / "chroma")}
    args = [a for name, v in {**defaults, option: value}.items() for a in (name, v)]
    result = runner.invoke(app, ["measure", "--corpus", str(corpus), *args])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert (tmp_path / "afile").read_text() == "not a folder\n"


def test_a_file_as_the_cache_of_the_python_api_is_named(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(CascadeError, match="the cache folder .*afile .*is a file"):
        Embedder(cache_dir=tmp_path / "afile")


def test_store_timeouts_must_be_positive():
    with pytest.raises(CascadeError, match="store read timeout 0: give a number of seconds above 0"):
        StoreTimeouts(read=0)
    with pytest.raises(CascadeError, match="store connect timeout nan"):
        StoreTimeouts(connect=float("nan"))


# --- full disks: a real ENOSPC from a small tmpfs in a private mount namespace --------------------------------

def _tmpfs_wrapper(mountpoint: Path, size: str) -> tuple[str, ...]:
    """Argv prefix that runs a command with a `size` tmpfs mounted at `mountpoint`, in its own user and mount
    namespace: the mount exists for that command only and vanishes with it (nothing to clean up)."""
    return ("unshare", "--map-root-user", "--mount", "sh", "-c",
            'mount -t tmpfs -o size="$0" tmpfs "$1" && shift && exec "$@"', size, str(mountpoint))


@pytest.fixture
def small_disk(tmp_path):
    """(mountpoint, wrapper(size)): skips where this machine cannot mount a tmpfs in a private namespace."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    if shutil.which("unshare") is None:
        pytest.skip("no `unshare` here: cannot make a small disk for a real ENOSPC")
    probe = subprocess.run([*_tmpfs_wrapper(mountpoint, "64k"), "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private namespace here (user namespaces off?): {probe.stderr}")
    return mountpoint, lambda size: _tmpfs_wrapper(mountpoint, size)


_PUT = """
import sys, numpy as np
from pathlib import Path
from sim.core.errors import CascadeError
from sim.retrieval.embedding import EmbeddingCache
cache = EmbeddingCache(Path(sys.argv[1]) / "embeddings" / "model")
try:
    cache.put([bytes([i]) * 16 for i in range(200)], np.ones((200, 384), dtype=np.float32))  # ~300 kB
except CascadeError as exc:
    print("CascadeError:", exc)
"""


def test_a_full_disk_under_the_embedding_cache_is_named(small_disk):
    mountpoint, wrapper = small_disk
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([*wrapper("64k"), sys.executable, "-c", _PUT, str(mountpoint)], capture_output=True,
                          text=True, env=env, timeout=CLI_SECONDS)
    text = " ".join(done.stdout.split())
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert (f"CascadeError: cannot write the embedding cache in {mountpoint}/embeddings/model: the disk is full "
            "(ENOSPC)") in text
    assert "--cache-dir or $CASCADESIM_CACHE" in text


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """(corpus, cache): a corpus of 1500 records whose embeddings for PROBES probe queries are cached, so
    child processes measuring it never load the model."""
    where = tmp_path_factory.mktemp("warm")
    corpus = write_corpus(where / "corpus.csv", 1500)
    measure(open_corpus(str(corpus)), Embedder(cache_dir=where / "cache"), StoreLocation(None, where / "chroma"),
            ProbeSettings(probes=PROBES))
    return corpus, where / "cache"


@pytest.mark.embedding
@pytest.mark.parametrize("size", ["64k", "1m"])  # 64k: full on opening the store; 1m: while indexing
def test_a_full_disk_under_the_embedded_store_exits_2(small_disk, warm, tmp_path, size):
    mountpoint, wrapper = small_disk
    corpus, cache = warm
    code, text = cli_measure("--store", str(mountpoint / "chroma"), cache=cache, corpus=corpus, out=tmp_path,
                             wrap=wrapper(size))
    assert code == 2, text
    assert f"error: the store folder {mountpoint}/chroma: the disk is full (ENOSPC)" in text
    assert "Traceback" not in text


@pytest.mark.embedding
def test_a_full_disk_under_the_cache_ends_cascade_measure_with_exit_2(small_disk, tmp_path):
    mountpoint, wrapper = small_disk
    corpus = write_corpus(tmp_path / "corpus.csv", 40)
    code, text = cli_measure(cache=mountpoint, corpus=corpus, out=tmp_path, wrap=wrapper("32k"))
    assert code == 2, text
    assert f"error: cannot write the embedding cache in {mountpoint}/embeddings/" in text
    assert "the disk is full (ENOSPC)" in text and "Traceback" not in text


# --- a real server that goes away ----------------------------------------------------------------------------

def test_a_server_killed_or_frozen_between_searches_is_named(chroma_server, tmp_path):  # noqa: F811
    location = StoreLocation(chroma_server.url, None, StoreTimeouts(connect=2.0, read=2.0))
    vectors = {f"v{i}": row for i, row in enumerate(np.eye(8))}  # each its own direction: v3 finds v3 first
    index = VectorIndex(connect(location), "cs-faults", "model", vectors)
    assert index.search(np.stack([vectors["v3"]]), 1)[0] == [["v3"]]
    chroma_server.stop()
    with pytest.raises(CascadeError) as frozen:
        index.search(np.stack([vectors["v3"]]), 1)
    assert str(frozen.value).startswith(f"the Chroma server at {chroma_server.url} did not answer while searching")
    assert "waited 2 s to connect, 2 s for an answer" in str(frozen.value)
    with pytest.raises(CascadeError, match="did not answer while connecting"):
        connect(location)
    chroma_server.kill()
    with pytest.raises(CascadeError) as killed:
        index.search(np.stack([vectors["v3"]]), 1)
    assert str(killed.value).startswith(f"lost the Chroma server at {chroma_server.url} while searching")
    assert "check that `chroma run` is still up on that host and port" in str(killed.value)


@pytest.mark.embedding
@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_a_server_killed_or_frozen_mid_measure_ends_in_exit_2(chroma_server, warm, tmp_path, fault):  # noqa: F811
    corpus, cache = warm
    process = cli_measure("--store", chroma_server.url, "--store-timeout", "3", "--store-connect-timeout", "2",
                          cache=cache, corpus=corpus, out=tmp_path, popen=True)
    # Strike once the run has created its collection: it is indexing 1500 records then (seconds).
    code = strike_during(process, chroma_server, fault, tmp_path / "out.log", CLI_SECONDS)
    text = read_log(tmp_path)
    assert code == 2, text
    expected = "lost the Chroma server at" if fault == "kill" else "the Chroma server at"
    assert f"error: {expected} {chroma_server.url}" in text
    assert ("check that `chroma run` is still up" if fault == "kill" else "did not answer") in text
    assert "Traceback" not in text and not (tmp_path / "profile.yaml").exists()
