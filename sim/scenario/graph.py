"""Graph utilities over workflow steps: canonical topological order and cycle finding."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def topological_order(inputs: Mapping[str, Sequence[str]], declared: Sequence[str]) -> list[str] | None:
    """Kahn's order, ties broken by declaration order so the order is canonical; None if there is a cycle."""
    position = {sid: i for i, sid in enumerate(declared)}
    consumers: dict[str, list[str]] = {sid: [] for sid in declared}
    waiting = {sid: 0 for sid in declared}
    for sid in declared:
        for src in set(inputs[sid]):
            consumers[src].append(sid)
            waiting[sid] += 1
    ready = [position[sid] for sid in declared if waiting[sid] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        sid = declared[heapq.heappop(ready)]
        order.append(sid)
        for c in consumers[sid]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, position[c])
    return order if len(order) == len(declared) else None


def find_cycle(inputs: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle as a list of step ids (first id repeated at the end), or [] when the graph is acyclic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(sid: str) -> list[str]:
        state[sid] = 1
        path.append(sid)
        for src in inputs.get(sid, ()):
            if src not in inputs:
                continue
            if state.get(src) == 1:
                return path[path.index(src):] + [src]
            if src not in state and (found := visit(src)):
                return found
        path.pop()
        state[sid] = 2
        return []

    for sid in inputs:
        if sid not in state and (found := visit(sid)):
            return list(reversed(found))
    return []
