"""A Dask client for a study: a `LocalCluster` of worker processes by default, an existing scheduler when given
(`tcp://HOST:PORT`), or the caller's own client; and the work units run on it, yielded as they complete.

Worker processes of a LocalCluster end with the process that started them: distributed keeps a pipe from each
worker to its parent and exits the worker when the pipe closes (`distributed.process`), `kill -9` included.
`sim.core.worker_process.die_with_parent` is not used here: its prctl death signal fires when the *thread* that
started a process ends, and distributed starts worker processes from short-lived threads.

Dask reschedules the tasks of a worker that dies (and recomputes a result lost with it); a task whose workers
died `allowed_failures` times (3, Dask's default) is given up with a message, and so is the study when the
scheduler has had no worker for `worker_wait` seconds (Dask itself would wait for one forever). Task keys are the
units' content keys, so a unit submitted twice to one scheduler (two clients, or a resumed study) is computed
once.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sim.core import limits
from sim.core.errors import CascadeError
from sim.sweeps import tasks
from sim.sweeps.units import WorkUnit

CONNECT_SECONDS = 10
"""How long to wait for a scheduler to answer, and then for its first worker, in seconds."""

WORKER_WAIT_SECONDS = 60.0
"""How long a study waits for a worker when the scheduler has none left mid-study (they died or left), in
seconds, before it stops with the completed points kept (`--worker-wait`)."""

POLL_SECONDS = 1.0
"""How often a study looks at the scheduler's workers while it waits, in seconds."""

ADDRESS = re.compile(r"^(tcp|tls)://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


@contextmanager
def dask_client(client: Any = None, scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """The caller's `client` as is; else a client of the scheduler at `scheduler`; else a LocalCluster of
    `workers` processes (default: one per core), one thread each, closed on exit."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if not ADDRESS.match(scheduler):
            raise CascadeError(f"--scheduler {scheduler!r}: give the address a `dask scheduler` prints, "
                               "tcp://HOST:PORT (e.g. tcp://127.0.0.1:8786)")
        try:
            remote = Client(scheduler, timeout=f"{CONNECT_SECONDS}s")
        except (OSError, TimeoutError) as exc:
            raise CascadeError(f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_SECONDS} s "
                               f"({type(exc).__name__}: {exc}); start one with `dask scheduler`, or leave out "
                               "--scheduler to run on this machine") from None
        try:
            try:
                remote.wait_for_workers(1, timeout=CONNECT_SECONDS)
            except TimeoutError:
                raise CascadeError(f"the Dask scheduler at {scheduler} has no worker after {CONNECT_SECONDS} s; "
                                   f"start some with `dask worker {scheduler}`") from None
            yield remote
        finally:
            remote.close()
        return
    n = workers or os.cpu_count() or 1
    if not 1 <= n <= limits.MAX_WORKERS:
        raise CascadeError(f"workers must be between 1 and {limits.MAX_WORKERS}, got {n}")
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as local:
        yield local


def compute(client: Any, units: Sequence[WorkUnit], worker_wait: float = WORKER_WAIT_SECONDS,
            ) -> Iterator[tuple[WorkUnit, list[dict], Any, bool]]:
    """Run `units` on `client`; yield (unit, rows, result or None, keep) as each completes, in completion order.
    `keep` is False for a unit that failed by a bug (its rows say so; a re-run computes it again). CascadeError
    as `completed` says."""
    futures = {client.submit(_task(u), *u.payload, key=f"cascade-sweep-{u.key}", pure=False): u for u in units}
    for unit, value, error in completed(client, futures, worker_wait, "points",
                                        lambda unit: f"points {_points(unit)} ({unit.engine})"):
        if error is not None:  # a bug in one point is reported with it, not a crash
            rows = [tasks.empty_row(p, v, f"internal error: {type(error).__name__}: {error}")
                    for p in unit.points for v in unit.variants]
            yield unit, rows, None, False
        else:
            rows, result = value
            yield unit, rows, result, True


def completed(client: Any, futures: dict[Any, Any], worker_wait: float, work: str,
              name: Callable[[Any], str]) -> Iterator[tuple[Any, Any, BaseException | None]]:
    """(what, value, None) or (what, None, the exception it raised) for each of `futures` (future -> what it
    computes) as it completes; the futures are released at the end.

    Results are fetched by a daemon thread, one after another, while this loop looks at the scheduler's workers:
    a result lost with its worker is waited for until Dask has computed it again, and a slow one for as long as
    it takes (a fetch is never cut short: distributed's gathers cut by a timeout can leave later ones stuck).
    CascadeError, with the completed `work` kept, when the workers computing one died too often (`name(what)`
    says which), when a worker cannot import cascadesim, when the scheduler has had no worker for `worker_wait`
    seconds, or when the connection to it is lost (a fetch still waiting is left to its daemon thread)."""
    from distributed import KilledWorker, as_completed
    from distributed.client import FutureCancelledError

    running = as_completed(futures)
    fetch: queue.Queue = queue.Queue()
    fetched: queue.Queue = queue.Queue()

    def fetcher() -> None:
        while (future := fetch.get()) is not None:
            try:
                fetched.put((future, future.result(), None))
            except BaseException as error:  # noqa: BLE001 - handed to the loop, which says what it means
                fetched.put((future, None, error))

    threading.Thread(target=fetcher, name="cascade-fetch", daemon=True).start()
    lost = (f"the connection to the Dask scheduler was lost; the completed {work} are kept: run the same "
            "command again to continue")
    waiting, alone_since, looked = 0, None, time.monotonic()
    try:
        while running.count() or waiting:
            arrived = []
            for future in running.next_batch(block=False):
                if future.status == "error":  # its exception is with the client already: no fetch to wait for
                    arrived.append((future, None, future.exception()))
                else:
                    fetch.put(future)
                    waiting += 1
            try:
                arrived.append(fetched.get(timeout=0.02))
                waiting -= 1
            except queue.Empty:
                pass
            for future, value, error in arrived:
                what = futures[future]
                if error is None:
                    yield what, value, None
                elif isinstance(error, KilledWorker):
                    raise CascadeError(f"the Dask workers computing {name(what)} died repeatedly ({error}); the "
                                       f"completed {work} are kept: run the same command again to continue") from None
                elif isinstance(error, ModuleNotFoundError):
                    raise CascadeError(f"a Dask worker cannot import cascadesim ({error}): install the same "
                                       "cascadesim on every worker machine") from None
                elif isinstance(error, FutureCancelledError) or future.status == "cancelled":
                    raise CascadeError(lost) from None  # the client cancels every future when it loses the scheduler
                elif isinstance(error, Exception):
                    yield what, None, error  # the caller says what a failed task means
                else:
                    raise error
            if time.monotonic() - looked < POLL_SECONDS:
                continue
            looked = time.monotonic()
            try:
                workers = client.nthreads()
            except OSError:
                raise CascadeError(lost) from None
            if not workers:
                alone_since = alone_since or looked
                if looked - alone_since > worker_wait:
                    left = running.count() + waiting
                    raise CascadeError(f"the Dask scheduler has had no worker for {worker_wait:g} s (they died or "
                                       f"left) with {left:,} tasks to compute; the completed {work} are kept: start "
                                       "workers and run the same command again to continue (--worker-wait sets how "
                                       "long to wait)")
            else:
                alone_since = None
    finally:
        fetch.put(None)
        for future in futures:
            future.release()


def _task(unit: WorkUnit) -> Callable[..., Any]:
    return tasks.evaluate_batch if unit.kind == "batch" else tasks.run_point


def _points(unit: WorkUnit) -> str:
    shown = ", ".join(str(p) for p in unit.points[:5])
    return shown + (", ..." if len(unit.points) > 5 else "")


__all__ = ["dask_client", "compute", "completed"]
