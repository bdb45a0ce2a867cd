"""The fused kernel's tally: `Tally.add` of a block, compiled, reading the walk's arrays in place.

It adds exactly the counts `instance_outcomes` + `Tally.add` add (the reference; tests compare the two Tallies
field by field): the same float64 losses, summed in the same order, so the same histogram keys. Per-instance
outcomes are not built; only each instance's failure and loss come back, for pairing with the base variant.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.model.plan import Plan
from sim.model.tokens import CAUGHT, ERROR, FLAGGED
from sim.trace.schema import PairedOutcomes
from sim.trace.tally import Tally, add_histogram

DECIDE, GATE, AUDIT = 1, 2, 3
"""The step kinds of the walk that leave `masked` (DECIDE) or `caught` (GATE, AUDIT) rows: fused.py's codes."""
TILE = 1024
"""Instances counted together: a tile's per-instance sums stay in the L1 cache while rows are added one by one."""


class BlockTally:
    """The plan's layout for the compiled tally (built once per plan): which rows of the walk's arrays to read."""

    def __init__(self, plan: Plan, kind: np.ndarray, slot: np.ndarray, det_slot: np.ndarray,
                 gate_edges: list[tuple[int, int]]):
        self.plan = plan
        acts = plan.acts
        self.kind, self.slot = kind, slot
        self.act_pos = np.array([s.pos for s in acts], dtype=np.int64)
        self.act_det_slot = np.array([det_slot[s.pos] for s in acts], dtype=np.int64)
        self.act_audited = np.array([bool(s.audited_by) for s in acts], dtype=np.bool_)
        self.act_loss = np.array([[s.failure_loss, s.detected_loss, s.escalation_cost] for s in acts],
                                 dtype=np.float64).reshape(len(acts), 3)
        # Per step where errors originate: (position, first code, last code + 1) of the errors rooted there
        # (roots are sorted by step, so each step's codes are consecutive).
        root_step = plan.code_root_step()
        self.origin_codes = np.zeros((0, 3), dtype=np.int64)
        for s in plan.steps:
            if s.kind in ("retrieve", "decide"):
                codes = np.flatnonzero(root_step == s.pos)
                lo, hi = (codes[0], codes[-1] + 1) if len(codes) else (0, 0)
                assert hi - lo == len(codes), "roots are sorted by step"
                self.origin_codes = np.vstack([self.origin_codes, [[s.pos, lo, hi]]])
        self.gate_src = np.array([src for _, src in gate_edges], dtype=np.int64)

    def add(self, tally: Tally, arrays: tuple[np.ndarray, ...], base: PairedOutcomes | None) -> PairedOutcomes:
        """`Tally.add(trace, instance_outcomes(plan, trace), base)` for the trace whose walk arrays are `arrays`
        (tokens, masked, caught, detected, gate_caught); returns the block's failures and losses per instance."""
        tokens, masked, caught, detected, gate_caught = arrays
        paired = base is not None
        base_failed = base.failed if paired else np.zeros(0, dtype=np.bool_)
        base_loss = base.loss if paired else np.zeros(0, dtype=np.float64)
        sums, failed, loss, losses, pair_root, pair_loss, diffs = _count(
            self.kind, self.slot, self.act_pos, self.act_det_slot, self.act_audited, self.act_loss, self.origin_codes,
            self.gate_src, tally.caught_twice, tokens, masked, caught, detected, gate_caught,
            paired, base_failed, base_loss, tally.step_codes, tally.masked,
            tally.caught, tally.detected, tally.failures_by_root_errors, tally.any_failure_from_root,
            tally.failures_from_root_sq, tally.caught_from_root)
        n = tokens.shape[1]
        tally.n += n
        tally.failed += int(sums[0])
        tally.silent += int(sums[1])
        tally.escalated_caught += int(sums[2])
        tally.escalated_false_alarm += int(sums[3])
        add_histogram(tally.loss_hist, *_unique(losses)[::2])
        tally.loss_hist[0.0] += n - len(losses)
        # Per root, np.unique of its pairs' losses (as Tally._add_per_root): each pair keyed by (root, rank of its
        # loss among the block's distinct ones) and counted, so the keys come root by root, values ascending.
        values, rank, _ = _unique(pair_loss)
        key_counts = np.bincount(pair_root * len(values) + rank)
        hists = tally.loss_from_root_hist
        for key in np.flatnonzero(key_counts).tolist():  # (add_histogram per root in one loop: fewer calls)
            root, v = divmod(key, len(values))
            hists[root][float(values[v])] += int(key_counts[key])
        if paired:
            tally.pair_n += n
            tally.pair_only_variant += int(sums[4])
            tally.pair_only_base += int(sums[5])
            add_histogram(tally.pair_loss_hist, *_unique(diffs)[::2])
            tally.pair_loss_hist[0.0] += n - len(diffs)
        return PairedOutcomes(failed, loss)


DISTINCT = 64
"""Distinct values `_unique` looks for by comparison (a block's losses take a handful: one per combination of
its acts' outcomes that occurs); beyond that it sorts."""


def _unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """np.unique(values, return_inverse=True, return_counts=True) of finite values without -0.0; for a few
    distinct values, found by comparison (~0.05 ms for 20,000 values instead of ~0.3 ms sorting)."""
    first, code, found = _first_seen(values, DISTINCT)
    if not found:
        uniq, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        return uniq, inverse.ravel(), counts
    order = np.argsort(first)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return first[order], rank[code], np.bincount(code, minlength=len(first))[order]


@njit(cache=True, nogil=True)
def _first_seen(values, limit):  # pragma: no cover (compiled)
    """The distinct values in order of first appearance and each value's index among them; found False (and
    empty arrays) when there are more than `limit`."""
    first = np.empty(limit, dtype=np.float64)
    code = np.empty(values.shape[0], dtype=np.int64)
    k = 0
    for i in range(values.shape[0]):
        v = values[i]
        j = 0
        while j < k and first[j] != v:
            j += 1
        if j == k:
            if k == limit:
                return first[:0], code[:0], False
            first[k] = v
            k += 1
        code[i] = j
    return first[:k], code, True


@njit(cache=True, nogil=True)
def _count(kind, slot, act_pos, act_det_slot, act_audited, act_loss, origin_codes, gate_src, caught_twice, tokens,
           masked, caught, detected, gate_caught, paired, base_failed, base_loss, step_codes, masked_counts,
           caught_counts, detected_counts, fe, any_failure, failures_sq, caught_from_root):  # pragma: no cover
    """Adds a block's counts to the Tally's arrays in place; returns (failed, silent, escalated caught,
    escalated false alarm, only variant failed, only base failed), each instance's failure and loss, the non-zero
    losses, the (root, loss) of each (instance, root) with action failures, and the non-zero paired differences.

    Losses are summed as `instance_outcomes` sums them (act by act from 0.0, failure then escalation) and each
    (instance, root)'s as `Tally._add_per_root` does (act by act from 0.0), so the floats are the same (where
    one root failed every failed act, its loss is the instance's failure loss: the other acts added +0.0).
    A tile of instances at a time, row by row and without branches on outcomes (the compiler vectorises these
    loops); the few instances with a failure or a gate's catch are then looked at one by one. Instance by
    instance over the rows was 3x slower: mispredicted branches, and rows 128 KB apart share cache sets."""
    n = tokens.shape[1]
    A, G = act_pos.shape[0], gate_src.shape[0]
    _count_rows(kind, slot, tokens, masked, caught, step_codes, masked_counts, caught_counts)
    sums = np.zeros(6, dtype=np.int64)
    failed = np.empty(n, dtype=np.bool_)
    loss = np.empty(n, dtype=np.float64)
    losses = np.empty(n, dtype=np.float64)
    diffs = np.empty(n if paired else 0, dtype=np.float64)
    pair_root = np.empty(n * A, dtype=np.int64)
    pair_loss = np.empty(n * A, dtype=np.float64)
    n_losses = n_diffs = n_pairs = 0
    failure_loss = np.empty(TILE, dtype=np.float64)
    escalation = np.empty(TILE, dtype=np.float64)
    n_failed = np.empty(TILE, dtype=np.int64)
    n_roots = np.empty(TILE, dtype=np.int64)
    silent = np.empty(TILE, dtype=np.bool_)
    esc_caught = np.empty(TILE, dtype=np.bool_)
    esc_flagged = np.empty(TILE, dtype=np.bool_)
    any_catch = np.empty(TILE, dtype=np.bool_)
    fail_code = np.empty(TILE, dtype=np.int64)  # the code of an instance's first failed act
    mixed = np.empty(TILE, dtype=np.bool_)  # whether its failed acts carry more than one root
    some = np.empty(TILE, dtype=np.int64)  # instances of the tile with a failure (or a gate's catch)
    roots = np.empty(max(A, 1), dtype=np.int64)  # an instance's failing roots, their failures and loss
    root_n = np.empty(max(A, 1), dtype=np.int64)
    root_loss = np.empty(max(A, 1), dtype=np.float64)
    once = np.empty(max(G, 1), dtype=np.int64)  # roots that may be caught twice, counted on this instance
    for a0 in range(0, n, TILE):
        m = min(TILE, n - a0)
        tile = np.uint64(m)  # unsigned indices: no negative-index check, so these loops vectorise (3x faster)
        n_roots[:m] = 0
        for o in range(origin_codes.shape[0]):  # a root error originated here: its code is one of the step's
            row, lo, hi = tokens[origin_codes[o, 0], a0: a0 + m], origin_codes[o, 1], origin_codes[o, 2]
            for i in range(tile):
                n_roots[i] += (row[i] >= lo) & (row[i] < hi)
        failure_loss[:m] = 0.0
        escalation[:m] = 0.0
        n_failed[:m] = 0
        silent[:m] = False
        esc_caught[:m] = False
        esc_flagged[:m] = False
        fail_code[:m] = -1
        mixed[:m] = False
        for j in range(A):
            row, det_row = tokens[act_pos[j], a0: a0 + m], detected[act_det_slot[j], a0: a0 + m]
            fail_loss, det_loss, esc_cost = act_loss[j, 0], act_loss[j, 1], act_loss[j, 2]
            for i in range(tile):
                x = row[i]
                fail = x >= ERROR
                det = fail & det_row[i]
                failure_loss[i] += det_loss if det else (fail_loss if fail else 0.0)
                escalation[i] += esc_cost if (x == CAUGHT) | (x == FLAGGED) else 0.0
                n_failed[i] += fail
                silent[i] |= fail & ~det
                esc_caught[i] |= x == CAUGHT
                esc_flagged[i] |= x == FLAGGED
                mixed[i] |= fail & (fail_code[i] >= 0) & (x != fail_code[i])  # failures of several roots
                fail_code[i] = x if fail & (fail_code[i] < 0) else fail_code[i]
            if act_audited[j]:
                for i in range(tile):
                    if det_row[i] and row[i] >= ERROR:  # (rare: a branch the CPU predicts)
                        detected_counts[act_pos[j], np.uint64(row[i] - ERROR)] += 1
        loss_t, failed_t = loss[a0: a0 + m], failed[a0: a0 + m]
        n_failures = n_silent = n_caught = n_flagged = 0
        for i in range(tile):
            loss_t[i] = failure_loss[i] + escalation[i]
            failed_t[i] = n_failed[i] > 0
            n_failures += n_failed[i] > 0
            n_silent += silent[i]
            n_caught += esc_caught[i]
            n_flagged += esc_flagged[i]
        sums[0] += n_failures
        sums[1] += n_silent
        sums[2] += n_caught
        sums[3] += n_flagged
        n_some = 0
        for i in range(m):  # (branch-free compaction)
            losses[n_losses] = loss_t[i]
            n_losses += loss_t[i] != 0
            some[n_some] = i
            n_some += failed_t[i]
            fe[n_failed[i], n_roots[i]] += 1
        if paired:
            base_failed_t, base_loss_t = base_failed[a0: a0 + m], base_loss[a0: a0 + m]
            only_variant = only_base = 0
            for i in range(tile):
                only_variant += failed_t[i] & ~base_failed_t[i]
                only_base += base_failed_t[i] & ~failed_t[i]
            sums[4] += only_variant
            sums[5] += only_base
            for i in range(m):
                d = loss_t[i] - base_loss_t[i]
                diffs[n_diffs] = d
                n_diffs += d != 0
        for q in range(n_some):  # per (instance, root) with failures: how many, and their loss
            t = some[q]
            if not mixed[t]:  # one root (most): its failures are the instance's, their loss its failure loss
                r = fail_code[t] - ERROR
                any_failure[r] += 1
                failures_sq[r] += n_failed[t] * n_failed[t]
                pair_root[n_pairs], pair_loss[n_pairs] = r, failure_loss[t]
                n_pairs += 1
                continue
            i = a0 + t
            k = 0
            for j in range(A):
                x = tokens[act_pos[j], i]
                if x >= ERROR:
                    r = x - ERROR
                    det = detected[act_det_slot[j], i]
                    c = 0
                    while c < k and roots[c] != r:
                        c += 1
                    if c == k:
                        roots[k], root_n[k], root_loss[k] = r, 0, 0.0
                        k += 1
                    root_n[c] += 1
                    root_loss[c] += act_loss[j, 1] if det else act_loss[j, 0]
            for c in range(k):
                any_failure[roots[c]] += 1
                failures_sq[roots[c]] += root_n[c] * root_n[c]
                pair_root[n_pairs], pair_loss[n_pairs] = roots[c], root_loss[c]
                n_pairs += 1
        if G == 0:
            continue
        any_catch[:m] = False
        for g in range(G):
            hit_row = gate_caught[g, a0: a0 + m]
            for i in range(tile):
                any_catch[i] |= hit_row[i]
        n_some = 0
        for i in range(m):
            some[n_some] = i
            n_some += any_catch[i]
        for q in range(n_some):
            # A gate's catch of root r counts unless an action failed on r here; a root that can reach several
            # gate inputs, once per instance.
            i = a0 + some[q]
            n_once = 0
            for g in range(G):
                if not gate_caught[g, i]:
                    continue
                code = tokens[gate_src[g], i]
                hit = False
                for j in range(A):
                    hit |= tokens[act_pos[j], i] == code
                if hit:
                    continue
                r = code - ERROR
                if caught_twice[r]:
                    c = 0
                    while c < n_once and once[c] != r:
                        c += 1
                    if c < n_once:
                        continue
                    once[n_once] = r
                    n_once += 1
                caught_from_root[r] += 1
    return (sums, failed, loss, losses[:n_losses], pair_root[:n_pairs], pair_loss[:n_pairs], diffs[:n_diffs])


@njit(cache=True, nogil=True)
def _count_rows(kind, slot, tokens, masked, caught, step_codes, masked_counts, caught_counts):  # pragma: no cover
    """`Tally.add`'s bincounts of each step's tokens and of what it masked or caught (-1: nothing), row by row."""
    for s in range(tokens.shape[0]):
        if kind[s] == DECIDE:
            _bincount(masked[slot[s]], 1, masked_counts[s])
        elif kind[s] == GATE or kind[s] == AUDIT:
            _bincount(caught[slot[s]], 1, caught_counts[s])
        if kind[s] != AUDIT:  # (an audit has no token row)
            _bincount(tokens[s], 0, step_codes[s])


@njit(cache=True, nogil=True)
def _bincount(row, shift, out):  # pragma: no cover (compiled)
    """out += np.bincount(row + shift)[shift:] (row + shift >= 0), in 8 interleaved histograms: in one, every
    instance would wait on the last increment of the commonest value (2x slower); counting only the rare values
    mispredicts a branch on each. Unsigned indices: no negative-index checks."""
    n, width = row.shape[0], out.shape[0] + shift
    lanes = np.zeros((8, width), dtype=np.int64)
    for i in range(np.uint64(n // 8)):
        for lane in range(np.uint64(8)):
            lanes[lane, np.uint64(row[i * np.uint64(8) + lane] + shift)] += 1
    for i in range(n - n % 8, n):
        lanes[0, row[i] + shift] += 1
    for lane in range(8):
        for c in range(shift, width):
            out[c - shift] += lanes[lane, c]
