"""The Monte Carlo kernel: vectorised numpy over the instances of a block, Python loops only over steps.

Draws come from `sim.core.seeding` streams keyed by step and purpose, never by variant, so variants see common
random numbers. A block's outcome depends only on (seed, block, instance count), hence not on chunk size or
workers.
"""

from __future__ import annotations

import numpy as np

from sim.core.seeding import uniforms
from sim.model.plan import Plan, StepPlan
from sim.model.tokens import CAUGHT, ERROR, FLAGGED, OK, merge, rank_table
from sim.trace.schema import BlockTrace


class Kernel:
    """Per-plan lookup tables, built once and reused for every block."""

    add_block = None
    """A faster `Tally.add` of this kernel's traces, `(tally, trace, base) -> PairedOutcomes` (`count_block`);
    None: the reference, `instance_outcomes` + `Tally.add`."""

    def __init__(self, plan: Plan):
        self.plan = plan
        code_type = plan.code_type()
        self.code_type = code_type
        # Tokens as int16 and probabilities as float32 (the draws' precision): half the bytes per pass.
        self.dtype = np.int16 if plan.n_codes < 2**15 else np.int32
        self.rank = rank_table(plan.n_codes)
        self.err = code_type >= 0
        n_codes = plan.n_codes
        self.own_codes: dict[int, np.ndarray] = {}
        self.cum_rates: dict[int, np.ndarray] = {}
        self.carry: dict[tuple[int, int], np.ndarray] = {}
        self.catch: dict[int, np.ndarray] = {}
        for s in plan.steps:
            if s.kind == "retrieve":
                live = [t for t in range(len(plan.types)) if (s.pos, t) in plan.root_index]
                self.own_codes[s.pos] = np.array(
                    [ERROR + plan.root_index[(s.pos, t)] for t in live] + [OK], dtype=self.dtype)
                self.cum_rates[s.pos] = np.cumsum(s.rates[:, live], axis=1).astype(np.float32)
            elif s.kind == "decide":
                for src in s.inputs:
                    lut = np.ones(n_codes, dtype=np.float32)
                    lut[ERROR:] = s.carry(src)[code_type[ERROR:]]
                    self.carry[(s.pos, src)] = lut
            elif s.kind == "verify":
                lut = np.zeros(n_codes, dtype=np.float32)
                lut[ERROR:] = s.catch[code_type[ERROR:]]
                self.catch[s.pos] = lut

    def simulate(self, block: int, start: int, stop: int, attempt: int = 0) -> BlockTrace:
        """Run instances start..stop-1 of seeding block `block` (attempt > 0: fresh draws, same difficulty)."""
        plan, seed = self.plan, self.plan.seed
        n = stop - start
        level = None
        if plan.levels.count > 1:
            level = plan.levels.sample(uniforms(seed, "difficulty", block, start, stop))
        tokens: list[np.ndarray | None] = [None] * len(plan.steps)
        trace = BlockTrace(n, level, tokens, {}, {}, {})

        def draw(purpose: str) -> np.ndarray:
            return uniforms(seed, purpose, block, start, stop, attempt)

        for s in plan.steps:
            if s.kind == "retrieve":
                tokens[s.pos] = self._retrieve(s, draw, level, trace)
            elif s.kind == "decide":
                tokens[s.pos] = self._decide(s, draw, level, trace)
            elif s.kind == "verify" and s.audit:
                self._audit(s, draw, trace)
            elif s.kind == "verify":
                tokens[s.pos] = self._gate(s, draw, trace)
            else:
                tokens[s.pos] = self._merge_inputs(s, tokens)
                trace.detected.setdefault(s.pos, np.zeros(n, dtype=bool))
        return trace

    # -- step kinds -------------------------------------------------------------------------------------------
    def retrieval_errors(self, s: StepPlan, draw, level, n: int) -> np.ndarray:
        """The token each instance's retrieval produces on its own (OK or ERROR + root): the error type drawn
        from the retriever's rates at the instance's difficulty level."""
        codes, cum = self.own_codes[s.pos], self.cum_rates[s.pos]
        if len(codes) == 1:
            return np.zeros(n, dtype=self.dtype)
        u = draw(f"retrieve/{s.id}")
        if level is None:
            return codes[np.searchsorted(cum[0], u, side="right")]
        # Which instances err at all (one gather), then the type for those few only.
        wrong = np.flatnonzero(u < cum[level, -1])
        own = np.zeros(n, dtype=self.dtype)
        own[wrong] = codes[(u[wrong, None] >= cum[level[wrong]]).sum(axis=1)]
        return own

    def _retrieve(self, s: StepPlan, draw, level, trace: BlockTrace) -> np.ndarray:
        own = self.retrieval_errors(s, draw, level, trace.n)
        if not s.inputs:
            return own
        upstream = self._merge_inputs(s, trace.tokens)
        return np.where(upstream == OK, own, upstream)

    def _decide(self, s: StepPlan, draw, level, trace: BlockTrace) -> np.ndarray:
        acc = None
        first_masked = np.full(trace.n, -1, dtype=np.int16)
        for src in s.inputs:
            x = trace.tokens[src]
            p = self.carry[(s.pos, src)][x]
            if np.all(p >= 1.0):  # nothing can be masked here: no draw needed
                x_eff = x
            else:
                masked = draw(f"carry/{s.id}/{self.plan.steps[src].id}") >= p
                x_eff = np.where(masked, self.dtype(OK), x)
                first_masked = np.where((first_masked < 0) & masked, self.code_type[x], first_masked)
            acc = x_eff if acc is None else self._merge(acc, x_eff)
        trace.masked[s.pos] = first_masked
        r = self.plan.root_index.get((s.pos, self.plan.reasoning))
        if r is not None:
            base = np.float32(s.base_error[0]) if level is None else s.base_error.astype(np.float32)[level]
            wrong = draw(f"reason/{s.id}") < base
            own = ERROR + r
            acc = np.where((acc == OK) & wrong, self.dtype(own), acc)
        return acc

    def _gate(self, s: StepPlan, draw, trace: BlockTrace) -> np.ndarray:
        catch = self.catch[s.pos]
        acc = None
        first_caught = np.full(trace.n, -1, dtype=np.int16)
        for src in s.inputs:
            x = trace.tokens[src]
            caught = draw(f"catch/{s.id}/{self.plan.steps[src].id}") < catch[x]
            trace.gate_caught[(s.pos, src)] = caught  # with the input's token, the root caught (no extra pass)
            first_caught = np.where((first_caught < 0) & caught, self.code_type[x], first_caught)
            x_eff = np.where(caught, self.dtype(CAUGHT), x)
            acc = x_eff if acc is None else self._merge(acc, x_eff)
        trace.caught[s.pos] = first_caught
        if s.false_alarm > 0:
            alarm = draw(f"false_alarm/{s.id}") < np.float32(s.false_alarm)
            acc = np.where((acc == OK) & alarm, self.dtype(FLAGGED), acc)
        return acc

    def _audit(self, s: StepPlan, draw, trace: BlockTrace) -> None:
        catch = self.catch[s.pos]
        first_caught = np.full(trace.n, -1, dtype=np.int16)
        for act in s.inputs:
            x = trace.tokens[act]
            found = draw(f"catch/{s.id}/{self.plan.steps[act].id}") < catch[x]
            trace.detected[act] = trace.detected.get(act, np.zeros(trace.n, dtype=bool)) | found
            first_caught = np.where((first_caught < 0) & found, self.code_type[x], first_caught)
        trace.caught[s.pos] = first_caught

    def _merge_inputs(self, s: StepPlan, tokens) -> np.ndarray:
        acc = tokens[s.inputs[0]]
        for src in s.inputs[1:]:
            acc = self._merge(acc, tokens[src])
        return acc

    def _merge(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return merge(a, b, self.rank)
