"""The fused Monte Carlo kernel: the numpy kernel's draws, then one compiled pass over a block that walks its
instances, a cache-sized tile at a time, through every step.

It draws exactly the streams `Kernel` draws (same keys, same purposes, the same numbers; a carry stream the
numpy kernel skips for a block is drawn only where no carry probability is below 1, so nothing reads it) and
returns the same `BlockTrace`, field for field and byte for byte; `Kernel` stays the reference (tests compare
the two). Its traces are tallied by `fused_tally` (the same counts as `Tally.add`, compiled). Everything is
compiled by numba (`cache=True`: a second process loads it from `__pycache__`, no compile).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np
from numba import njit

from sim.core.seeding import stream
from sim.engines.monte_carlo.fused_tally import BlockTally
from sim.engines.monte_carlo.kernel import Kernel
from sim.model.plan import Plan
from sim.model.tokens import CAUGHT, ERROR, FLAGGED, OK
from sim.trace.schema import BlockTrace, PairedOutcomes
from sim.trace.tally import Tally

RETRIEVE, DECIDE, GATE, AUDIT, ACT = 0, 1, 2, 3, 4
TILE = 2048
"""Instances walked together through the steps (their uniforms and tokens fit in a core's L2 cache)."""


@dataclass
class WalkedTrace(BlockTrace):
    """A BlockTrace whose arrays are rows of the walk's (tokens, masked, caught, detected, gate_caught), kept for
    the compiled tally."""

    walked: tuple[np.ndarray, ...] = ()


class FusedKernel(Kernel):
    """`Kernel`'s lookup tables laid out as flat arrays for the compiled walk (built once per plan)."""

    def __init__(self, plan: Plan):
        super().__init__(plan)
        steps, n_codes = plan.steps, plan.n_codes
        S = len(steps)
        L = max(plan.levels.count, 1)
        self.names: list[str] = []  # the streams drawn per block, in row order of the uniforms array

        def row(name: str) -> int:
            self.names.append(name)
            return len(self.names) - 1

        edges = [(s, src) for s in steps for src in s.inputs]
        self.kind = np.zeros(S, dtype=np.int8)
        self.in_ptr = np.zeros(S + 1, dtype=np.int64)
        self.in_idx = np.array([src for _, src in edges], dtype=np.int64)
        self.edge_row = np.full(len(edges), -1, dtype=np.int64)
        self.edge_lut = np.ones((len(edges), n_codes), dtype=np.float32)
        self.gate_edges: list[tuple[int, int]] = []  # (gate position, input position) per gate_caught row
        self.edge_gate = np.full(len(edges), -1, dtype=np.int64)
        width = max([len(c) for c in self.own_codes.values()] + [1])
        self.own_row = np.full(S, -1, dtype=np.int64)
        self.own_codes_2d = np.zeros((S, width), dtype=np.int64)
        self.cum = np.ones((S, L, width), dtype=np.float32)
        self.n_live = np.zeros(S, dtype=np.int64)
        # A slip turns an OK token into slip_code where the step's own draw is below slip_p (per level): a
        # decision's reasoning error, a gate's false alarm.
        self.slip_row = np.full(S, -1, dtype=np.int64)
        self.slip_p = np.zeros((S, L), dtype=np.float32)
        self.slip_code = np.zeros(S, dtype=np.int64)
        e = 0
        for s in steps:
            self.in_ptr[s.pos + 1] = self.in_ptr[s.pos] + len(s.inputs)
            if s.kind == "retrieve":
                self.kind[s.pos] = RETRIEVE
                codes, cum = self.own_codes[s.pos], self.cum_rates[s.pos]
                self.own_codes_2d[s.pos, : len(codes)] = codes
                if len(codes) > 1:
                    self.own_row[s.pos] = row(f"retrieve/{s.id}")
                    self.n_live[s.pos] = cum.shape[1]
                    self.cum[s.pos, :, : cum.shape[1]] = cum[:L]
            elif s.kind == "decide":
                self.kind[s.pos] = DECIDE
                for k, src in enumerate(s.inputs):
                    lut = self.carry[(s.pos, src)]
                    self.edge_lut[e + k] = lut
                    if np.any(lut < 1.0):  # else the numpy kernel never draws it either: masked is impossible
                        self.edge_row[e + k] = row(f"carry/{s.id}/{steps[src].id}")
                r = plan.root_index.get((s.pos, plan.reasoning))
                if r is not None:
                    self.slip_row[s.pos] = row(f"reason/{s.id}")
                    self.slip_p[s.pos] = (s.base_error.astype(np.float32) if plan.levels.count > 1
                                          else np.float32(s.base_error[0]))
                    self.slip_code[s.pos] = ERROR + r
            elif s.kind == "verify":
                self.kind[s.pos] = AUDIT if s.audit else GATE
                for k, src in enumerate(s.inputs):
                    self.edge_lut[e + k] = self.catch[s.pos]
                    self.edge_row[e + k] = row(f"catch/{s.id}/{steps[src].id}")
                    if not s.audit:
                        self.edge_gate[e + k] = len(self.gate_edges)
                        self.gate_edges.append((s.pos, src))
                if not s.audit and s.false_alarm > 0:
                    self.slip_row[s.pos] = row(f"false_alarm/{s.id}")
                    self.slip_p[s.pos] = np.float32(s.false_alarm)
                    self.slip_code[s.pos] = FLAGGED
            else:
                self.kind[s.pos] = ACT
            e += len(s.inputs)
        # Rows of the trace's arrays: a decision's in `masked`, a verifier's in `caught` (`slot`); an act's or
        # an audited step's in `detected` (`det_slot`); compact, as fresh memory costs page faults per block.
        self.slot = np.full(S, -1, dtype=np.int64)
        self.det_slot = np.full(S, -1, dtype=np.int64)
        self.n_slots = {"decide": 0, "verify": 0, "detected": 0}
        for s in steps:
            if s.kind in ("decide", "verify"):
                self.slot[s.pos] = self.n_slots[s.kind]
                self.n_slots[s.kind] += 1
            if s.kind == "act" or any(s.pos in t.inputs for t in steps if t.kind == "verify" and t.audit):
                self.det_slot[s.pos] = self.n_slots["detected"]
                self.n_slots["detected"] += 1
        self._u: np.ndarray | None = None
        self.inner_edges = np.ascontiguousarray(plan.levels.edges[1:-1], dtype=np.float64)
        self.rank_i = self.rank.astype(np.int64)
        self.code_type_i = self.code_type.astype(np.int64)
        # The walk compares draws with probabilities as integers (`_thresholds`).
        self.edge_at, self.cum_at, self.slip_at, self.level_at = (
            _thresholds(p) for p in (self.edge_lut, self.cum, self.slip_p, self.inner_edges))
        self.block_tally = BlockTally(plan, self.kind, self.slot, self.det_slot, self.gate_edges)

    def add_block(self, tally: Tally, trace: WalkedTrace, base: PairedOutcomes | None) -> PairedOutcomes:
        """`Tally.add` of one of this kernel's traces, compiled (`fused_tally`)."""
        return self.block_tally.add(tally, trace.walked, base)

    def draws(self, block: int, stop: int, attempt: int) -> np.ndarray:
        """(streams, >= stop) uint32: row j holds the 32-bit outputs from which `uniforms(seed, names[j], block,
        0, stop, attempt)` makes its float32s (the walk compares their top 24 bits: `_thresholds`).

        They are drawn as PCG64's 64-bit outputs, each two 32-bit outputs, low half first, as numpy's float32
        draws take them (so in memory order on a little-endian machine, which every platform of numba is),
        by calling each generator's own C function through its ctypes interface (`BitGenerator.ctypes`, the
        interface numpy offers for numba) straight into the buffer: the same numbers as Generator.random in
        ~2.2 ms a block instead of ~3.8. The buffer is the kernel's, reused block after block (nothing returned
        points into it): fresh 7 MB each block cost more in page faults than the walk. With difficulty levels,
        one more row: the "difficulty" stream's (attempt 0: an instance is as hard at every attempt)."""
        half = (stop + 1) // 2
        seed, rows = self.plan.seed, len(self.names) + (self.plan.levels.count > 1)
        if self._u is None or self._u.shape[1] < 2 * half:
            self._u = np.empty((rows, 2 * half), dtype=np.uint32)
        generators = [stream(seed, name, block, attempt).bit_generator for name in self.names]
        generators += [stream(seed, "difficulty", block).bit_generator] * (rows - len(self.names))
        if generators:  # (the list keeps the generators alive while _fill draws from their states)
            states = np.array([g.ctypes.state_address for g in generators], dtype=np.uint64)
            _fill(_next_uint64(generators[0]), states, self._u.view(np.uint64)[:, :half])
        return self._u

    def simulate(self, block: int, start: int, stop: int, attempt: int = 0) -> BlockTrace:
        """As `Kernel.simulate`: instances start..stop-1 of seeding block `block`."""
        plan = self.plan
        n, S = stop - start, len(plan.steps)
        u = self.draws(block, stop, attempt)
        level = None
        if plan.levels.count > 1:
            level = np.empty(n, dtype=np.int32)  # Levels.sample, compiled
            _levels(self.level_at, u[len(self.names), start:stop], level)
        # Every row the trace shows is written by the walk (audits' token rows are not shown; masked rows are
        # decisions', caught rows verifiers'), so no fill pass.
        tokens = np.empty((S, n), dtype=self.dtype)
        masked = np.empty((self.n_slots["decide"], n), dtype=np.int16)
        caught = np.empty((self.n_slots["verify"], n), dtype=np.int16)
        detected = np.zeros((self.n_slots["detected"], n), dtype=bool)
        gate_caught = np.zeros((len(self.gate_edges), n), dtype=bool)
        _walk(self.kind, self.in_ptr, self.in_idx, self.edge_row, self.edge_at, self.edge_gate, self.own_row,
              self.own_codes_2d, self.cum_at, self.n_live, self.slip_row, self.slip_at, self.slip_code, self.rank_i,
              self.code_type_i, level if level is not None else np.zeros(0, dtype=np.int32), u, start,
              self.slot, self.det_slot, tokens, masked, caught, detected, gate_caught)
        trace = WalkedTrace(n, level, [None] * S, {}, {}, {}, walked=(tokens, masked, caught, detected, gate_caught))
        for s in plan.steps:  # the dicts filled in the numpy kernel's order
            if s.kind == "verify" and s.audit:
                for src in s.inputs:
                    trace.detected.setdefault(src, detected[self.det_slot[src]])
                trace.caught[s.pos] = caught[self.slot[s.pos]]
                continue
            trace.tokens[s.pos] = tokens[s.pos]
            if s.kind == "decide":
                trace.masked[s.pos] = masked[self.slot[s.pos]]
            elif s.kind == "verify":
                trace.caught[s.pos] = caught[self.slot[s.pos]]
            elif s.kind == "act":
                trace.detected.setdefault(s.pos, detected[self.det_slot[s.pos]])
        for g, key in enumerate(self.gate_edges):
            trace.gate_caught[key] = gate_caught[g]
        return trace


_NEXT_UINT64 = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_size_t)
"""A bit generator's next 64-bit output given its state's address (`BitGenerator.ctypes.next_uint64`)."""


def _next_uint64(generator: np.random.BitGenerator):
    """The C function drawing `generator`'s next 64-bit output (the same for every generator of its class),
    typed to take the state's address as an integer."""
    return _NEXT_UINT64(ctypes.cast(generator.ctypes.next_uint64, ctypes.c_void_p).value)


@njit(cache=True, nogil=True)
def _fill(next_uint64, states, out):  # pragma: no cover (compiled)
    """Row j of `out`: the next outputs of the generator whose state is at address states[j]."""
    for j in range(out.shape[0]):
        state = states[j]
        row = out[j]
        for i in range(row.shape[0]):
            row[i] = next_uint64(state)


@njit(cache=True, nogil=True)
def _levels(edge_at, u, out):  # pragma: no cover (compiled)
    """`Levels.sample`: np.searchsorted(inner_edges, u, side="right") of the draws' float32 uniforms (compared as
    float64, as numpy does), from their top 24 bits and the edges' `_thresholds`."""
    out[:] = 0
    for e in range(edge_at.shape[0]):  # edge by edge: compares the compiler vectorises (4x faster)
        at = edge_at[e]
        for i in range(np.uint64(u.shape[0])):
            out[i] += _bits(u[i]) >= at


@njit(cache=True, nogil=True)
def _walk(kind, in_ptr, in_idx, edge_row, edge_lut, edge_gate, own_row, own_codes, cum, n_live, slip_row,
          slip_p, slip_code, rank, code_type, level, u, start,
          slot, det_slot, tokens, masked, caught, detected, gate_caught):  # pragma: no cover (compiled)
    """Every instance through every step, reading its pre-drawn uniforms (`Kernel`'s rules, per instance).

    Instances go in tiles of TILE, each tile step by step and a step input by input, so that a tile's uniforms
    and tokens stay in cache and each inner loop is a few loads, compares and selects (instance by instance
    over all steps touches ~60 arrays at once and was several times slower). Inner loops index with unsigned
    integers over slices of the tile: with signed ones numba checks every index for negative values, which
    keeps LLVM from vectorising them."""
    n = tokens.shape[1]
    has_level = level.shape[0] > 0
    acc = np.zeros(TILE, dtype=np.int64)
    first = np.zeros(TILE, dtype=np.int64)
    no_level = np.zeros(TILE, dtype=level.dtype)
    for a in range(0, n, TILE):
        b = min(n, a + TILE)
        m = b - a
        tile = np.uint64(m)
        lev = level[a:b] if has_level else no_level[:m]
        for s in range(kind.shape[0]):
            k = kind[s]
            lo, hi = in_ptr[s], in_ptr[s + 1]
            first[:m] = -1
            acc[:m] = OK  # OK ranks lowest: merging the first input into it takes that input as it is
            for e in range(lo, hi):  # the inputs, met in order (with what the step does to each on the way)
                x_in = tokens[in_idx[e], a:b]
                lut = edge_lut[e]
                row = edge_row[e]
                if k == DECIDE and row >= 0:  # carried, or masked (OK) where u >= carry probability
                    _carry(u[row, start + a: start + b], lut, x_in, acc, first, code_type, rank, tile)
                elif k == GATE:  # caught (CAUGHT) where u < catch probability
                    _catch(u[row, start + a: start + b], lut, x_in, acc, first, code_type, rank,
                           gate_caught[edge_gate[e], a:b], tile)
                elif k == AUDIT:  # detected where u < catch probability (an audit's token feeds nothing)
                    _catch(u[row, start + a: start + b], lut, x_in, acc, first, code_type, rank,
                           detected[det_slot[in_idx[e]], a:b], tile)
                else:
                    _merge(x_in, acc, rank, tile)
            if k == RETRIEVE:
                r = own_row[s]
                live = n_live[s]
                cum_s, codes = cum[s], own_codes[s]
                if r >= 0:  # its own error where its input is OK
                    _own_error(u[r, start + a: start + b], lev, cum_s, codes, live, acc, tile)
            elif k == DECIDE:
                masked[slot[s], a:b] = first[:m]
            elif k == GATE:
                caught[slot[s], a:b] = first[:m]
            elif k == AUDIT:
                caught[slot[s], a:b] = first[:m]
                continue
            r = slip_row[s]
            if r >= 0:  # a decision's own reasoning error, a gate's false alarm: only where the token is OK
                _slip(u[r, start + a: start + b], lev, slip_p[s], slip_code[s], acc, tile)
            tokens[s, a:b] = acc[:m]


def _thresholds(p: np.ndarray) -> np.ndarray:
    """Probabilities (float32; or float64 level edges) as thresholds on a draw's top 24 bits (`_bits`): numpy's
    float32 uniform is u = bits * 2**-24 exactly (`Generator.random(dtype=np.float32)`), and p * 2**24 is exact
    too, so u < p
    exactly where bits < ceil(p * 2**24) (and u >= p where bits >= it): the same outcome without a conversion
    to float per draw."""
    return np.ceil(p.astype(np.float64) * 2.0**24).astype(np.int64)


@njit(cache=True, nogil=True)
def _bits(output):  # pragma: no cover (compiled)
    """The top 24 bits of a 32-bit output: what numpy's float32 uniform is made of."""
    return np.int64(output) >> 8


@njit(cache=True, nogil=True)
def _own_error(u, lev, cum, codes, live, acc, tile):  # pragma: no cover (compiled)
    """A retrieval's own error where its input is OK: the type whose cumulative rate (at the instance's level)
    u falls under, or OK where u is at or above their total (most instances: a branch the CPU predicts)."""
    last = live - 1
    for i in range(tile):
        if acc[i] == OK and _bits(u[i]) < cum[np.uint64(lev[i]), last]:
            c = 0
            for t in range(last):
                c += _bits(u[i]) >= cum[np.uint64(lev[i]), t]
            acc[i] = codes[c]


@njit(cache=True, nogil=True)
def _slip(u, lev, p, code, acc, tile):  # pragma: no cover (compiled)
    """A decision's own reasoning error, a gate's false alarm: `code` where the token is OK and u < p at the
    instance's level (rare: a branch the CPU predicts)."""
    for i in range(tile):
        if acc[i] == OK and _bits(u[i]) < p[np.uint64(lev[i])]:
            acc[i] = code


@njit(cache=True, nogil=True)
def _carry(u, carry, x_in, acc, first, code_type, rank, tile):  # pragma: no cover (compiled)
    """A decision's input merged into `acc`: the token carried, or OK where u >= its carry probability (masked;
    the first masked type kept in `first`)."""
    for i in range(tile):
        x = x_in[i]
        y = x
        if _bits(u[i]) >= carry[np.uint64(x)]:  # rare (errors only): a branch the CPU predicts
            y = OK
            if first[i] < 0:
                first[i] = code_type[np.uint64(x)]
        acc[i] = y if rank[np.uint64(y)] > rank[np.uint64(acc[i])] else acc[i]


@njit(cache=True, nogil=True)
def _catch(u, catch, x_in, acc, first, code_type, rank, hit_row, tile):  # pragma: no cover (compiled)
    """A verifier's input merged into `acc`: caught where u < its catch probability (`hit_row` set, the first
    caught type kept in `first`, the token CAUGHT)."""
    for i in range(tile):
        x = x_in[i]
        y = x
        if _bits(u[i]) < catch[np.uint64(x)]:  # rare (errors only): a branch the CPU predicts
            y = CAUGHT
            hit_row[i] = True
            if first[i] < 0:
                first[i] = code_type[np.uint64(x)]
        acc[i] = y if rank[np.uint64(y)] > rank[np.uint64(acc[i])] else acc[i]


@njit(cache=True, nogil=True)
def _merge(x, acc, rank, tile):  # pragma: no cover (compiled)
    """`tokens.merge` of the inputs so far (`acc`) with the next one (`x`): the stronger wins, ties to `acc`."""
    for i in range(tile):
        acc[i] = x[i] if rank[np.uint64(x[i])] > rank[np.uint64(acc[i])] else acc[i]
