"""Monte Carlo accumulators: counts (and block-ordered sums) that merge exactly across blocks.

Everything a summary needs is kept as integer counts or as sums added in block order, so a run gives the same
numbers whatever its chunk size.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from sim.model.plan import Plan
from sim.model.tokens import CAUGHT, ERROR, FLAGGED, OK, is_error
from sim.trace.schema import PASS_K, BlockTrace, InstanceOutcomes, PairedOutcomes


class Tally:
    """Counts for one variant of a Monte Carlo run."""

    def __init__(self, plan: Plan):
        S, R, T = len(plan.steps), len(plan.roots), len(plan.types)
        self.plan = plan
        self.n = 0
        self.step_codes = np.zeros((S, plan.n_codes), dtype=np.int64)
        self.masked = np.zeros((S, T), dtype=np.int64)
        self.caught = np.zeros((S, T), dtype=np.int64)
        self.detected = np.zeros((S, R), dtype=np.int64)
        self.failed = self.silent = self.escalated_caught = self.escalated_false_alarm = 0
        self.any_failure_from_root = np.zeros(R, dtype=np.int64)
        self.caught_from_root = np.zeros(R, dtype=np.int64)
        """Instances where a gate caught root r's error and it caused no action failure (the rest of the root
        errors that caused none were masked: `masked_from_root`)."""
        self.caught_twice = _caught_twice(plan)
        self.failures_from_root_sq = np.zeros(R, dtype=np.int64)
        self.loss_from_root_hist: list[Counter[float]] = [Counter() for _ in range(R)]
        self.loss_hist: Counter[float] = Counter()
        n_orig = sum(1 for s in plan.steps if s.kind in ("retrieve", "decide"))
        self.fe_shape = (len(plan.acts) + 1, n_orig + 1)
        self.failures_by_root_errors = np.zeros(self.fe_shape, dtype=np.int64)
        # paired with the base variant (common random numbers)
        self.pair_n = self.pair_only_variant = self.pair_only_base = 0
        self.pair_loss_hist: Counter[float] = Counter()
        # pass^k on a sample of instances
        self.pass_k_n = 0
        self.pass_k_success = np.zeros(PASS_K, dtype=np.int64)

    def add(self, trace: BlockTrace, out: InstanceOutcomes,
            base: InstanceOutcomes | PairedOutcomes | None = None) -> None:
        """Count one block."""
        plan, n = self.plan, trace.n
        self.n += n
        R = len(plan.roots)
        T = len(plan.types)
        for s in plan.steps:
            tok = trace.tokens[s.pos]
            if tok is not None:
                self.step_codes[s.pos] += np.bincount(tok, minlength=plan.n_codes)
            # (-1 means none: shift by one and drop the first bin)
            if s.pos in trace.masked:
                self.masked[s.pos] += np.bincount(trace.masked[s.pos] + 1, minlength=T + 1)[1:]
            if s.pos in trace.caught:
                self.caught[s.pos] += np.bincount(trace.caught[s.pos] + 1, minlength=T + 1)[1:]
            if s.kind == "act" and s.audited_by:
                det = trace.detected[s.pos] & is_error(tok)
                self.detected[s.pos] += np.bincount(tok[det] - ERROR, minlength=R)
        self.failed += int(out.failed.sum())
        self.silent += int(out.silent.sum())
        self.escalated_caught += int(out.caught.sum())
        self.escalated_false_alarm += int(out.flagged.sum())
        loss = out.loss
        nz = loss != 0
        add_histogram(self.loss_hist, *np.unique(loss[nz], return_counts=True))
        self.loss_hist[0.0] += int(n - nz.sum())
        key = np.minimum(out.n_failed, self.fe_shape[0] - 1) * self.fe_shape[1] + out.n_root_errors
        self.failures_by_root_errors += np.bincount(key, minlength=self.fe_shape[0] * self.fe_shape[1]).reshape(
            self.fe_shape)
        self._add_per_root(trace)
        self._add_caught(trace)
        if base is not None:
            self.pair_n += n
            self.pair_only_variant += int((out.failed & ~base.failed).sum())
            self.pair_only_base += int((base.failed & ~out.failed).sum())
            d = loss - base.loss
            nz = d != 0
            add_histogram(self.pair_loss_hist, *np.unique(d[nz], return_counts=True))
            self.pair_loss_hist[0.0] += int(n - nz.sum())

    def _add_per_root(self, trace: BlockTrace) -> None:
        """Per (instance, root): failures caused and their loss, for P(any failure | root) and CIs."""
        plan = self.plan
        R = len(plan.roots)
        inst, root, cost = [], [], []
        for s in plan.acts:
            tok = trace.tokens[s.pos]
            fail = np.flatnonzero(is_error(tok))
            if len(fail):
                inst.append(fail)
                root.append(tok[fail] - ERROR)
                cost.append(np.where(trace.detected[s.pos][fail], s.detected_loss, s.failure_loss))
        if not inst:
            return
        key = np.concatenate(inst).astype(np.int64) * R + np.concatenate(root)
        uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        loss = np.bincount(inverse.ravel(), weights=np.concatenate(cost))
        r = (uniq % R).astype(np.int64)
        self.any_failure_from_root += np.bincount(r, minlength=R)
        self.failures_from_root_sq += np.bincount(r, weights=counts.astype(np.float64) ** 2, minlength=R).astype(
            np.int64)
        # Histograms, not float sums: the result must not depend on how instances were cut into chunks.
        for root in np.unique(r):
            add_histogram(self.loss_from_root_hist[root], *np.unique(loss[r == root], return_counts=True))

    def _add_caught(self, trace: BlockTrace) -> None:
        """Count the (instance, root) pairs a gate caught, once each, unless that root also failed an action."""
        at, codes = [], []
        for (_, src), caught in trace.gate_caught.items():
            where = np.flatnonzero(caught)
            if len(where):
                at.append(where)
                codes.append(trace.tokens[src][where])
        if not at:
            return
        at, codes = np.concatenate(at), np.concatenate(codes)
        # Only the few caught instances are looked at: did an action fail on this same root there?
        failed = np.zeros(len(at), dtype=bool)
        for s in self.plan.acts:
            failed |= trace.tokens[s.pos][at] == codes
        at, root = at[~failed], (codes[~failed] - ERROR).astype(np.int64)
        R = len(self.plan.roots)
        twice = self.caught_twice[root]
        if twice.any():  # a root that reaches several gate inputs may be caught more than once: count it once
            once = np.unique(at[twice].astype(np.int64) * R + root[twice]) % R
            root = np.concatenate([root[~twice], once])
        self.caught_from_root += np.bincount(root, minlength=R)

    def merge(self, other: Tally) -> None:
        """Add the counts of `other` (another range of instances of the same plan). Order does not matter:
        everything is an integer count or an exact histogram."""
        for name, value in vars(other).items():
            if name in ("plan", "fe_shape", "caught_twice"):
                continue
            mine = getattr(self, name)
            if isinstance(value, Counter):
                mine.update(value)
            elif isinstance(value, list):  # per-root histograms
                for a, b in zip(mine, value, strict=True):
                    a.update(b)
            else:
                setattr(self, name, mine + value)

    @property
    def originated(self) -> np.ndarray:
        """Instances where root r originated: its step's output carried an error rooted at that step."""
        pos = np.array([p for p, _ in self.plan.roots], dtype=np.int64)
        return self.step_codes[pos, ERROR + np.arange(len(pos))] if len(pos) else np.zeros(0, dtype=np.int64)

    @property
    def masked_from_root(self) -> np.ndarray:
        """Instances where root r originated, caused no action failure and no gate caught it: a decision
        neutralised it, or it was outweighed where inputs met, or it reached no action."""
        return self.originated - self.any_failure_from_root - self.caught_from_root

    def add_pass_k(self, successes: np.ndarray) -> None:
        """`successes`: (instances x attempts) booleans, attempt 0 being the main run."""
        all_so_far = np.logical_and.accumulate(successes, axis=1)
        self.pass_k_n += len(successes)
        self.pass_k_success += all_so_far.sum(axis=0)

    def step_rows(self):
        """(step, kind, outcome, error type, root-cause step, fate, count) for every non-zero outcome count."""
        plan = self.plan
        fates = {"failed": self.any_failure_from_root, "caught": self.caught_from_root,
                 "masked": self.masked_from_root}
        for s in plan.steps:
            codes = self.step_codes[s.pos]
            caught = self.caught[s.pos]
            rows = []
            if s.kind == "verify" and s.audit:  # an audit's outcome: did it detect an act's failure
                rows += [("caught", plan.types[ti], "", "", c) for ti, c in enumerate(caught)]
                rows.append(("ok", "", "", "", self.n - caught.sum()))
            else:
                masked = self.masked[s.pos]
                rows.append(("ok", "", "", "", codes[OK] - masked.sum()))
                rows += [("masked", plan.types[ti], "", "", c) for ti, c in enumerate(masked)]
                rows.append(("false_alarm", "", "", "", codes[FLAGGED]))
                # caught here (by type), or halted because a gate upstream caught an error
                rows += [("caught", plan.types[ti], "", "", c) for ti, c in enumerate(caught)]
                rows.append(("caught", "", "", "", codes[CAUGHT] - caught.sum()))
                for r, (pos, t) in enumerate(plan.roots):
                    if pos == s.pos:  # the step's own root errors, split by their fate (schema.STEP_COLUMNS)
                        rows += [("error", plan.types[t], s.id, fate, f[r]) for fate, f in fates.items()]
                    else:
                        rows.append(("error", plan.types[t], plan.steps[pos].id, "", codes[ERROR + r]))
            for outcome, etype, root, fate, count in rows:
                if count:
                    yield s.id, s.kind, outcome, etype, root, fate, int(count)


def add_histogram(hist: Counter[float], values: np.ndarray, counts: np.ndarray) -> None:
    """Count `counts[i]` more of each `values[i]` (distinct, ascending: new keys enter in that order)."""
    hist.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))


def _caught_twice(plan: Plan) -> np.ndarray:
    """Per root: whether its error can reach more than one gate input (fan-out), so that one instance may have
    it caught twice."""
    upstream: dict[int, set[int]] = {}  # step position -> the root steps whose errors can reach its output
    for s in plan.steps:  # canonical order: inputs first
        upstream[s.pos] = {p for i in s.inputs for p in upstream[i]} | {p for p, _ in plan.roots if p == s.pos}
    reach = Counter(p for s in plan.steps if s.kind == "verify" and not s.audit for i in s.inputs
                    for p in upstream[i])
    return np.array([reach[p] > 1 for p, _ in plan.roots], dtype=bool)
