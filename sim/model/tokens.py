"""The one outcome algebra: what flows along a workflow's edges for one instance, and how inputs meet.

A token is a small integer: OK, FLAGGED (a gate's false alarm: escalated without error), CAUGHT (a gate
stopped an error: escalated), or ERROR + r for an error carrying root r (an engine decides what r indexes:
a (root-cause step, error type) pair in a Plan; an error type, possibly tagged, in the analytic engine).
Where inputs meet, the strongest token wins: caught > flagged > error > ok; of equals, the earlier input.
Every engine and the mapping of observed runs use these functions, on arrays or on single codes.
"""

from __future__ import annotations

import numpy as np

OK, FLAGGED, CAUGHT, ERROR = 0, 1, 2, 3

_RANK = np.array([0, 2, 3, 1], dtype=np.int8)
"""Precedence of OK, FLAGGED, CAUGHT and any error: ok < error < flagged < caught."""


def rank_table(n_codes: int) -> np.ndarray:
    """The precedence of every code 0..n_codes-1 (all error codes rank alike), for `merge` on arrays."""
    rank = np.full(n_codes, _RANK[ERROR], dtype=np.int8)
    rank[:ERROR] = _RANK[:ERROR]
    return rank


def merge(a: np.ndarray, b: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Where two inputs meet, per instance: the stronger token wins, ties go to the earlier input `a`."""
    return np.where(rank[b] > rank[a], b, a)


def merge_codes(codes: list[int]) -> int:
    """`merge` for one instance's input codes, in input order (OK when there are none)."""
    acc = codes[0] if codes else OK
    for c in codes[1:]:
        if _RANK[min(c, ERROR)] > _RANK[min(acc, ERROR)]:
            acc = c
    return acc


def is_error(codes):
    """True where a token carries an error (an act executed on it is an action failure)."""
    return codes >= ERROR


def is_escalation(codes):
    """True where a token was escalated to a human instead of acted on (caught error or false alarm)."""
    return (codes == CAUGHT) | (codes == FLAGGED)


LABELS = {OK: "ok", FLAGGED: "false_alarm", CAUGHT: "caught"}
"""The outcome name of each non-error token (DESIGN.md: outcome of a step for an instance)."""
