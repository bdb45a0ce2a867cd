"""The trace schema every engine emits: per-instance outcomes and per-step outcome counts.

`instances` (one row per variant x instance) and `steps` (one row per variant x step x outcome x error type x
root-cause step) are the only tables metrics, reports and notebooks read, whichever engine produced them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.model.plan import Plan
from sim.model.tokens import CAUGHT, ERROR, FLAGGED, is_error

OUTCOMES = ("ok", "error", "masked", "caught", "false_alarm")
"""Outcome of a step for an instance (DESIGN.md), the `outcome` column of the steps table: at an act step,
`error` is an action failure."""

INSTANCE_SCHEMA = pa.schema([
    ("variant", pa.dictionary(pa.int16(), pa.string())),
    ("instance", pa.int64()),
    ("failed", pa.bool_()),
    ("n_failed_actions", pa.int16()),
    ("n_root_errors", pa.int16()),
    ("loss", pa.float64()),
    ("failure_loss", pa.float64()),
    ("escalation_cost", pa.float64()),
    ("root_cause_step", pa.dictionary(pa.int16(), pa.string())),
    ("root_cause_error_type", pa.dictionary(pa.int16(), pa.string())),
    ("silent", pa.bool_()),
    ("caught", pa.bool_()),
    ("false_alarm", pa.bool_()),
    ("difficulty", pa.int16()),
    ("failed_acts", pa.dictionary(pa.int32(), pa.string())),
])
OPTIONAL_INSTANCE_COLUMNS = ("failed_acts",)
"""Columns run folders written before them lack (readers take them as unknown)."""

STEP_COLUMNS = ("variant", "step", "kind", "outcome", "error_type", "root_cause_step", "fate", "count")
"""Columns of the steps table. `fate` is set on the `error` rows of a step's own root errors (root-cause step =
the step) and splits them by what became of them downstream: `failed` (an action failed on the error),
`caught` (else a gate caught it) or `masked` (else: a decision neutralised it, it lost where inputs met, or it
reached no action); elsewhere it is empty. Each step's rows still count every instance once."""

PASS_K = 8
"""pass^k is reported for k = 1..PASS_K attempts at the same instance."""


@dataclass
class BlockTrace:
    """Every step's output token for each instance of one block, plus what tokens alone do not show."""

    n: int
    level: np.ndarray | None
    tokens: list[np.ndarray | None]
    """Output token per step position (None for audits, which feed nothing)."""
    masked: dict[int, np.ndarray]
    """Decide step position -> error type of the first incoming error it masked (-1: none)."""
    caught: dict[int, np.ndarray]
    """Verify step position -> error type of the first error it caught (-1: none)."""
    detected: dict[int, np.ndarray]
    """Act step position -> True where an audit detected the act's failure."""
    gate_caught: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    """(gate position, input position) -> True where the gate caught the error that input carried: its root is
    that input's token minus ERROR (per root, caught and masked are kept apart with this)."""


@dataclass
class InstanceOutcomes:
    """Per-instance results of one block (arrays of length n)."""

    failed: np.ndarray
    n_failed: np.ndarray
    n_root_errors: np.ndarray
    failure_loss: np.ndarray
    escalation_cost: np.ndarray
    silent: np.ndarray
    caught: np.ndarray
    flagged: np.ndarray
    first_root: np.ndarray
    """Root of the first failed action in canonical step order (-1: no failure)."""
    act_failed: np.ndarray
    """(n, acts) bool: which act steps failed, in the workflow's act order."""

    @property
    def loss(self) -> np.ndarray:
        return self.failure_loss + self.escalation_cost


@dataclass
class PairedOutcomes:
    """What a block of the base variant pairs with the same instances of another variant (common random
    numbers): per instance, whether an action failed, and the loss. `InstanceOutcomes` offers the same two."""

    failed: np.ndarray
    loss: np.ndarray


def instance_outcomes(plan: Plan, trace: BlockTrace) -> InstanceOutcomes:
    """Reduce a block's tokens to per-instance outcomes (loss in the scenario's currency)."""
    n = trace.n
    failed_any = np.zeros(n, dtype=bool)
    silent = np.zeros(n, dtype=bool)
    caught = np.zeros(n, dtype=bool)
    flagged = np.zeros(n, dtype=bool)
    n_failed = np.zeros(n, dtype=np.int16)
    failure_loss = np.zeros(n)
    escalation = np.zeros(n)
    first_root = np.full(n, -1, dtype=np.int32)
    act_failed = np.zeros((n, len(plan.acts)), dtype=bool)
    for a, s in enumerate(plan.acts):
        tok = trace.tokens[s.pos]
        fail = is_error(tok)
        act_failed[:, a] = fail
        detected = trace.detected[s.pos] & fail
        n_failed += fail
        failure_loss += np.where(fail, np.where(detected, s.detected_loss, s.failure_loss), 0.0)
        esc_c, esc_f = tok == CAUGHT, tok == FLAGGED
        escalation += np.where(esc_c | esc_f, s.escalation_cost, 0.0)
        caught |= esc_c
        flagged |= esc_f
        first_root = np.where((first_root < 0) & fail, tok - ERROR, first_root)
        silent |= fail & ~detected
        failed_any |= fail
    code_root_step = plan.code_root_step()
    n_roots = np.zeros(n, dtype=np.int16)
    for s in plan.steps:
        if s.kind in ("retrieve", "decide"):
            n_roots += (code_root_step == s.pos)[trace.tokens[s.pos]]
    return InstanceOutcomes(failed_any, n_failed, n_roots, failure_loss, escalation, silent, caught, flagged,
                            first_root, act_failed)


def instance_table(plan: Plan, trace: BlockTrace, outcome: InstanceOutcomes, first_instance: int,
                   rows: int) -> pa.Table:
    """The first `rows` instances of a block as rows of INSTANCE_SCHEMA."""
    k = slice(0, rows)
    labels = [plan.root_label(r) for r in range(len(plan.roots))] + [("", "")]
    root = np.where(outcome.first_root[k] >= 0, outcome.first_root[k], len(labels) - 1)
    step_names = sorted({step for step, _ in labels})
    type_names = sorted({t for _, t in labels})
    step_code = np.array([step_names.index(step) for step, _ in labels], dtype=np.int16)
    type_code = np.array([type_names.index(t) for _, t in labels], dtype=np.int16)
    level = trace.level[k] if trace.level is not None else np.zeros(rows, dtype=np.int16)
    cols = {
        "variant": pa.DictionaryArray.from_arrays(np.zeros(rows, dtype=np.int16), [plan.variant]),
        "instance": np.arange(first_instance, first_instance + rows, dtype=np.int64),
        "failed": outcome.failed[k],
        "n_failed_actions": outcome.n_failed[k],
        "n_root_errors": outcome.n_root_errors[k],
        "loss": outcome.loss[k],
        "failure_loss": outcome.failure_loss[k],
        "escalation_cost": outcome.escalation_cost[k],
        "root_cause_step": pa.DictionaryArray.from_arrays(step_code[root], step_names),
        "root_cause_error_type": pa.DictionaryArray.from_arrays(type_code[root], type_names),
        "silent": outcome.silent[k],
        "caught": outcome.caught[k],
        "false_alarm": outcome.flagged[k],
        "difficulty": level.astype(np.int16),
        "failed_acts": _failed_acts(plan, outcome.act_failed[k]),
    }
    return pa.table(cols, schema=INSTANCE_SCHEMA)


def _failed_acts(plan: Plan, act_failed: np.ndarray) -> pa.DictionaryArray:
    """The act steps that failed on each instance, comma-separated in workflow order ('' where none did).

    The dictionary is in order of first appearance: blocks concatenated (Arrow appends each block's new
    entries in its dictionary's order) then give the same dictionary whatever the block sizes."""
    n, acts = act_failed.shape
    if acts == 0:
        return pa.DictionaryArray.from_arrays(np.zeros(n, dtype=np.int32), [""])
    packed = np.packbits(act_failed, axis=1)  # one key per pattern of failed acts: its bits as bytes
    if packed.shape[1] <= 8:  # up to 64 acts: the key is one integer, factorised by hashing (fast)
        width = np.zeros((n, 8), dtype=np.uint8)
        width[:, : packed.shape[1]] = packed
        code, uniques = pd.factorize(width.view(np.uint64).reshape(-1))
        patterns = np.unpackbits(np.asarray(uniques, dtype=np.uint64).view(np.uint8).reshape(-1, 8),
                                 axis=1)[:, :acts].astype(bool)
    else:
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        code, patterns = rank[inverse.reshape(-1)], act_failed[first[order]]
    names = [",".join(s.id for s, f in zip(plan.acts, row, strict=True) if f) for row in patterns]
    return pa.DictionaryArray.from_arrays(np.asarray(code, dtype=np.int32), names)
