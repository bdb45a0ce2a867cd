"""Instances run a few at a time, results kept in instance order.

A model request spends its time waiting on the server, so the agent engine runs as many instances at once as
the policy lets requests be in flight (`--llm-concurrency`), in a bounded thread pool: the nodes, the openai
client and LangGraph's own `invoke` are synchronous, and LangGraph already runs a superstep's nodes in
threads. Chance was drawn per instance before any graph ran and answers are keyed per request, so the order in
which instances finish changes nothing but the wall-clock time.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar

T = TypeVar("T")


def run_concurrently(work: Callable[[int], T], n: int, workers: int, stop: Callable[[], None] | None = None,
                     tick: Callable[[], None] | None = None) -> list[T]:
    """[work(0), ..., work(n-1)] computed by up to `workers` threads; `tick()` after each one finishes (in the
    calling thread). On the first failure, or Ctrl-C in the calling thread, `stop()` tells the running ones to
    give up (the policy refuses further requests), nothing more starts, and the failure is raised."""
    if workers <= 1 or n <= 1:
        out = []
        for j in range(n):
            out.append(work(j))
            if tick:
                tick()
        return out
    results: list = [None] * n
    pool = ThreadPoolExecutor(max_workers=min(workers, n), thread_name_prefix="cascade-instance")
    futures = {pool.submit(work, j): j for j in range(n)}
    try:
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if tick:
                tick()
    except BaseException:
        if stop:
            stop()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results
