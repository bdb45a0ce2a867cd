"""The one outcome algebra: precedence where inputs meet, the same on arrays and on single codes."""

from __future__ import annotations

import itertools

import numpy as np

from sim.model.tokens import (
    CAUGHT,
    ERROR,
    FLAGGED,
    OK,
    is_error,
    is_escalation,
    merge,
    merge_codes,
    rank_table,
)

CODES = [OK, FLAGGED, CAUGHT, ERROR, ERROR + 1, ERROR + 2]


def test_caught_beats_false_alarm_beats_error_beats_ok():
    assert merge_codes([OK, ERROR]) == ERROR
    assert merge_codes([ERROR, FLAGGED]) == FLAGGED
    assert merge_codes([FLAGGED, CAUGHT, ERROR]) == CAUGHT
    assert merge_codes([]) == OK


def test_of_several_errors_the_first_input_carries_its_root():
    assert merge_codes([ERROR + 2, ERROR + 1]) == ERROR + 2
    assert merge_codes([OK, ERROR + 1, ERROR + 2]) == ERROR + 1


def test_arrays_and_single_codes_merge_alike():
    rank = rank_table(len(CODES))
    for a, b, c in itertools.product(CODES, repeat=3):
        on_arrays = merge(merge(np.array([a]), np.array([b]), rank), np.array([c]), rank)
        assert on_arrays[0] == merge_codes([a, b, c]), (a, b, c)


def test_errors_and_escalations():
    codes = np.array(CODES)
    assert is_error(codes).tolist() == [False, False, False, True, True, True]
    assert is_escalation(codes).tolist() == [False, True, True, False, False, False]
