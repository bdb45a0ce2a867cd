"""The terminal progress bar of `cascade run`: instances, and for a model-backed agent run its calls, cache
hits, tokens and throughput."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress, TextColumn

from sim.output.console import RunProgress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_shows_instances_calls_cache_hits_tokens_and_throughput():
    out = io.StringIO()
    clock = Clock()
    with Progress(TextColumn("{task.completed}/{task.total} {task.fields[detail]}"),
                  console=Console(file=out, force_terminal=False, width=200), auto_refresh=False) as bar:
        task = bar.add_task("run", total=50, detail="")
        progress = RunProgress(bar, task, clock)
        clock.now += 4.0
        progress(10, 50)
        progress.detail({"calls": 36, "cached": 4, "tokens": 12_345})
        bar.refresh()
        [shown] = [t for t in bar.tasks if t.id == task]
        assert (shown.completed, shown.total) == (10, 50)
        assert shown.fields["detail"] == "2.5 inst/s · 36 calls (9.0/s) · 4 cached · 12,345 tokens"
