"""The analytic engine: exact probabilities by propagating the joint distribution of in-flight tokens.

Given a difficulty level, every draw is independent, so the workflow is a Bayesian network whose nodes are the
steps. We walk it in canonical order keeping a *frontier*: the joint distribution (one row per combination,
one probability column per difficulty level) of the tokens still needed downstream plus a few per-instance
accumulators. Each input is folded into its consumer as soon as it is ready, so the frontier stays small for
pipelines where many steps meet at one reviewer. Attribution by root cause needs one extra pass per step that
can originate errors, in which that step's errors carry a tag; the fate of those errors that caused no action
failure (caught by a gate, else masked) one more such pass where a gate lies downstream of the step.

A stacked plan (`sim.model.plan.stack`: one plan at B parameter points) is walked once for all its points: the
rows of the frontier (which tokens can meet) do not depend on the values, only on the roots, so the probability
columns become B x levels and every figure a vector of B (`headline_batch`).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from sim.core.errors import EngineLimitError
from sim.engines.request import RunRequest
from sim.model.plan import Plan, StepPlan, stack
from sim.model.tokens import CAUGHT, ERROR, FLAGGED, OK, is_error, is_escalation, merge, rank_table
from sim.trace.engine_output import EngineOutput
from sim.trace.exact import Exact
from sim.trace.schema import PASS_K

MAX_ROWS = 200_000

FIRST_WALK_BYTES = 64 << 20
"""Memory the first walk of `headline_slices` may take before its frontier's size is known: points enough that
a frontier of MAX_ROWS rows stays within it (1 point at 24 levels, 41 at 1)."""

BATCH_BYTES = 8 << 20
"""Memory of a batched frontier's probabilities (rows x points x levels doubles) that `points_per_walk` aims at:
a quarter of this machine's last-level cache. Each step makes a few passes over the frontier, so a walk whose
frontier stays in cache is faster per point; below that, the walk's fixed cost (about 9 ms: the rows, sorting,
Python) takes over (measured on contract review, 24 levels, CPU per point: 1.07 ms at 16 points a walk, 0.66 at
64, 0.68 at 128, 0.81 at 256, 1.31 at 1,024; 8 MiB is about 95 points)."""


class _Frontier:
    """Joint distribution over named integer columns; P has one column per parameter point x difficulty level
    (point-major)."""

    def __init__(self, columns: int, batched_from: int):
        self.batched_from = batched_from
        """Columns from which rows are merged by `_segment_sums` (one point's merge keeps np.add.reduceat)."""
        self.cols: list[str] = []
        self.S = np.zeros((1, 0), dtype=np.int32)
        self.P = np.ones((1, columns))
        self.peak_rows = 1

    def col(self, name: str) -> np.ndarray:
        return self.S[:, self.cols.index(name)]

    def add(self, name: str, values: int | np.ndarray = 0) -> None:
        self.cols.append(name)
        self.S = np.column_stack([self.S, np.broadcast_to(values, (len(self.S),))]).astype(np.int32)

    def drop(self, *names: str) -> None:
        keep = [i for i, c in enumerate(self.cols) if c not in names]
        self.cols = [self.cols[i] for i in keep]
        self.S = self.S[:, keep]
        self._merge()

    def mass(self, where: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Probability (averaged over levels) of the rows selected by `where`, per parameter point."""
        return over_levels(self.P[where].sum(axis=0), weights)

    def branch(self, options: list[tuple[np.ndarray, dict[str, np.ndarray]]]) -> None:
        """Replace each row by one row per option: probability times `prob` (rows x columns; rows x points,
        the same at every level; or rows x 1), with the given columns set to new values."""
        n, columns = self.P.shape
        picked = []
        for prob, updates in options:
            prob = np.asarray(prob, dtype=np.float64)
            if prob.ndim == 0:
                prob = np.full((n, 1), float(prob))
            live = prob.any(axis=1)  # rows this option cannot reach are never copied
            if not live.any():
                continue
            rows = None if live.all() else np.flatnonzero(live)
            picked.append((prob if rows is None else prob[rows], rows, updates))
        size = sum(n if rows is None else len(rows) for _, rows, _ in picked)
        S, P = np.empty((size, self.S.shape[1]), dtype=self.S.dtype), np.empty((size, columns))
        at = 0
        for prob, rows, updates in picked:
            part = slice(at, at + len(prob))
            at += len(prob)
            S[part] = self.S if rows is None else self.S[rows]
            for name, values in updates.items():
                values = np.broadcast_to(values, (n,))
                S[part, self.cols.index(name)] = values if rows is None else values[rows]
            # The products are written in place: no gathered copy, no concatenation.
            if rows is None:
                np.copyto(P[part], self.P)
            else:
                np.take(self.P, rows, axis=0, out=P[part])
            if prob.shape[1] in (1, columns):
                P[part] *= prob
            else:  # one value per point: the same at each of its levels
                P[part].reshape(len(prob), prob.shape[1], -1)[...] *= prob[:, :, None]
        self.S, self.P = S, P
        self._merge()

    def _merge(self) -> None:
        if self.S.shape[1] == 0:
            self.P = self.P.sum(axis=0, keepdims=True)
            self.S = np.zeros((1, 0), dtype=np.int32)
            return
        # One int64 key per row (mixed radix over the columns): a 1-D sort instead of a row-wise one.
        radix = self.S.max(axis=0).astype(np.int64) + 1
        if float(np.prod(radix.astype(np.float64))) < 2.0**62:
            weights = np.concatenate([[1], np.cumprod(radix[:-1])])
            keys = self.S.astype(np.int64) @ weights
        else:
            keys = np.unique(self.S, axis=0, return_inverse=True)[1].ravel()
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.concatenate([[0], np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1])
        if len(starts) == len(self.S):
            return
        self.S = self.S[order[starts]]
        self.P = _segment_sums(self.P, order, starts) if self.P.shape[1] > self.batched_from else \
            np.add.reduceat(self.P[order], starts, axis=0)
        self.peak_rows = max(self.peak_rows, len(self.S))
        if len(self.S) > MAX_ROWS:
            raise EngineLimitError(
                f"the analytic engine would need a joint table of {len(self.S):,} rows for this workflow "
                f"(limit {MAX_ROWS:,}); run it with --engine monte_carlo")


def _segment_sums(P: np.ndarray, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """`np.add.reduceat(P[order], starts, axis=0)` as one sparse product (scipy.sparse CSR: one pass over P in C,
    no gathered copy); reduceat along axis 0 of a wide array runs about 15 times slower. Sums round differently
    from reduceat's, so one point keeps reduceat."""
    indptr = np.append(starts, len(order))
    merge = sparse.csr_matrix((np.ones(len(order)), order, indptr), shape=(len(starts), len(P)))
    return merge @ P


def over_levels(per_column: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average over difficulty levels of a vector of B x levels values (point-major): one value per point."""
    if len(per_column) == len(weights):  # one point: the plain dot product (the recorded figures depend on it)
        return np.array([per_column @ weights])
    return per_column.reshape(-1, len(weights)) @ weights


def solve(plan: Plan) -> Exact:
    """Exact results for one plan (one variant)."""
    plan = stack([plan])
    main = _Pass(plan, tag=None)
    main.run()
    R = len(plan.roots)
    failures_from_root = np.zeros(R)
    loss_from_root = np.zeros(R)
    any_from_root = np.zeros(R)
    caught_from_root = np.zeros(R)
    for pos in sorted({p for p, _ in plan.roots}):
        # Until step `pos` runs there is no tagged token: its pass starts from the main pass's state just
        # before the source whose walk reaches `pos`, with the main pass's own accumulators marginalised out.
        tagged = _Pass(plan, tag=pos, classes=(main.collapse_out, main.collapse_in))
        tagged.run(resume=main.snapshots[main.owner[pos]])
        for t, (n_fail, loss, p_any) in tagged.tag_results.items():
            r = plan.root_index[(pos, t)]
            failures_from_root[r], loss_from_root[r], any_from_root[r] = n_fail[0], loss[0], p_any[0]
        if _gate_downstream(plan, pos):
            # The catches in a pass of their own: a column more splits rows of the frontier, which would move
            # the figures above in their last digits (they are recorded; the fates are new).
            fates = _Pass(plan, tag=pos, classes=(main.collapse_out, main.collapse_in), follow_catches=True)
            fates.run(resume=main.snapshots[main.owner[pos]])
            for t, (*_, p_caught) in fates.tag_results.items():
                caught_from_root[plan.root_index[(pos, t)]] = p_caught[0]
    return Exact(
        p_failure=float(main.p_failure[0]), silent_failure_rate=float(main.p_silent[0]),
        expected_failure_loss=float(main.failure_loss[0]), expected_escalation_cost=float(main.escalation_cost[0]),
        action_failures=float(main.action_failures[0]), originated=main.originated[:, 0],
        failures_from_root=failures_from_root, loss_from_root=loss_from_root, any_failure_from_root=any_from_root,
        caught_from_root=caught_from_root, pass_k=main.pass_k[0])


def _gate_downstream(plan: Plan, pos: int) -> bool:
    """True when a gate (a verify step before actions) can be reached from step position `pos`."""
    todo, seen = [pos], set()
    while todo:
        s = plan.steps[todo.pop()]
        if s.kind == "verify" and not s.audit and s.pos != pos:
            return True
        todo += [c for c in s.consumers if c not in seen]
        seen.update(s.consumers)
    return False


def expected_loss(plan: Plan) -> float:
    """Exact expected loss per instance (failure loss + escalation cost), without attribution: one pass."""
    return headline(plan)["expected_loss_per_instance"]


def headline(plan: Plan) -> dict[str, float]:
    """Exact `p_failure`, `silent_failure_rate` and `expected_loss_per_instance` (currency per instance; and
    its parts, `expected_failure_loss_per_instance` and `expected_escalation_cost_per_instance`) of one plan,
    without attribution: one pass."""
    return {k: float(v[0]) for k, v in headline_batch(stack([plan])).items()}


def points_per_walk(plan: Plan) -> int:
    """How many parameter points of `plan` one batched walk should take: as many as keep the frontier's
    probabilities within BATCH_BYTES, judged from one walk at the plan's own point (EngineLimitError when the
    analytic engine cannot take the workflow at all)."""
    main = _Pass(stack([plan]), tag=None, attribution=False)
    main.run()
    return max(1, BATCH_BYTES // (8 * plan.levels.count * main.F.peak_rows))


def headline_batch(plan: Plan) -> dict[str, np.ndarray]:
    """`headline` of a stacked plan (`sim.model.plan.stack`): one value per parameter point, in one walk."""
    return _headline_walk(plan).headline()


def headline_slices(plan: Plan) -> dict[str, np.ndarray]:
    """`headline_batch` of a stacked plan of any size, walked in slices whose frontier stays within BATCH_BYTES:
    a first walk of a few points (FIRST_WALK_BYTES) shows how many rows the frontier reaches and sizes the others
    (EngineLimitError when the analytic engine cannot take the workflow)."""
    few = max(1, FIRST_WALK_BYTES // (8 * plan.levels.count * MAX_ROWS))
    first = _headline_walk(plan.slice_points(0, few))
    per_walk = max(1, BATCH_BYTES // (8 * plan.levels.count * first.F.peak_rows))
    parts = [first.headline()] + [headline_batch(plan.slice_points(a, a + per_walk))
                                  for a in range(few, plan.batch, per_walk)]
    return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}


def _headline_walk(plan: Plan) -> _Pass:
    main = _Pass(plan, tag=None, attribution=False)
    main.run()
    return main


class _Pass:
    """One walk over the workflow. With `tag`, errors originated at step position `tag` are marked, and the
    column `tag_failed` follows them (1 + type once such an error fails an action); with `follow_catches` also
    `tag_caught` (1 + type once a gate catches one), so that a root error's fate is known exactly: failed, else
    caught, else masked."""

    def __init__(self, plan: Plan, tag: int | None, classes: tuple | None = None, follow_catches: bool = False,
                 attribution: bool = True):
        assert plan.batch is not None, "the walk takes a stacked plan (sim.model.plan.stack)"
        self.plan, self.tag = plan, tag
        self.follow_catches = follow_catches and tag is not None
        self.attribution = attribution
        """False: the headline figures only (no errors originated per root)."""
        self.T = len(plan.types)
        self.w = plan.levels.weights
        self.B, self.L = plan.batch, plan.levels.count
        self.F = _Frontier(self.B * self.L, batched_from=self.L + 1)
        self.originated = np.zeros((len(plan.roots), self.B))
        self.failure_loss, self.escalation_cost, self.action_failures = (np.zeros(self.B) for _ in range(3))
        self.tag_results: dict[int, list[float]] = {}
        # Token codes in this pass (sim.model.tokens): OK, FLAGGED, CAUGHT, ERROR + t for an error of type t,
        # ERROR + T + t for a tagged error of type t.
        n_codes = ERROR + 2 * self.T
        self.type_of = np.full(n_codes, -1)
        self.type_of[ERROR:] = np.tile(np.arange(self.T), 2)
        self.rank = rank_table(n_codes)
        self.tagged = np.zeros(n_codes, dtype=bool)
        self.tagged[ERROR + self.T:] = True
        self.collapse_out, self.collapse_in = classes or (self._type_classes(include_self=False),
                                                          self._type_classes(include_self=True))

    def headline(self) -> dict[str, np.ndarray]:
        """The main pass's figures per point: p_failure, silent_failure_rate, expected_loss_per_instance and its
        two parts (failure loss, escalation cost)."""
        return {"p_failure": self.p_failure, "silent_failure_rate": self.p_silent,
                "expected_loss_per_instance": self.failure_loss + self.escalation_cost,
                "expected_failure_loss_per_instance": self.failure_loss.copy(),
                "expected_escalation_cost_per_instance": self.escalation_cost.copy()}

    def _type_classes(self, include_self: bool) -> dict[int, np.ndarray]:
        """Per step, a code map merging untagged error types that behave alike everywhere downstream (and, with
        `include_self`, at the step itself: for tokens folded into its accumulator).

        Only decide and verify steps treat types differently; once no such step lies ahead, an error's type
        no longer matters, and keeping it would only multiply the rows of the frontier.
        """
        steps = self.plan.steps
        below: dict[int, set[int]] = {}
        for s in reversed(steps):
            reach: set[int] = set()
            for c in s.consumers:
                reach |= {c} | below[c]
            below[s.pos] = reach
        out = {}
        for s in steps:
            ahead = below[s.pos] | ({s.pos} if include_self else set())
            tables = [table for d in sorted(ahead) for table in (
                [steps[d].susceptibility, *steps[d].susceptibility_by_input.values()] if steps[d].kind == "decide"
                else [steps[d].catch] if steps[d].kind == "verify" else [])]
            code_map = np.arange(ERROR + 2 * self.T)
            # Each type's column of every table ahead, at every point; a type maps to the first type whose
            # columns are equal to its own (compared as arrays: a stacked plan's tables hold many points).
            columns = np.concatenate([t.reshape(-1, self.T) for t in tables]).T if tables else np.zeros((self.T, 0))
            alike = (columns[:, None, :] == columns[None, :, :]).all(axis=2)  # types x types
            code_map[ERROR:ERROR + self.T] = ERROR + alike.argmax(axis=1)  # the first type alike (itself at worst)
            out[s.pos] = code_map
        return out

    # -- the walk ---------------------------------------------------------------------------------------------
    def run(self, resume: tuple | None = None) -> None:
        """Walk the workflow; the main pass (no tag) keeps a snapshot before each source step, from which a
        tagged pass can `resume`."""
        plan, F = self.plan, self.F
        sources = [s for s in plan.steps if not s.inputs]
        self.snapshots: list[tuple] = []
        self.owner: dict[int, int] = {}
        if resume is None:
            F.add("failed" if self.tag is None else "tag_failed")
            if self.tag is None:
                F.add("silent")
            self.next_input = {s.pos: 0 for s in plan.steps}
            self.folded_by = {s.pos: 0 for s in plan.steps}
            self.done: set[int] = set()
            first = 0
        else:
            first, F.S, F.P, F.cols, next_input, folded_by, done = resume
            F.S, F.P, F.cols = F.S.copy(), F.P.copy(), list(F.cols)
            self.next_input, self.folded_by, self.done = dict(next_input), dict(folded_by), set(done)
            F.drop("failed", "silent")
            F.add("tag_failed")
        if self.follow_catches:
            F.add("tag_caught")
        for j in range(first, len(sources)):
            if self.tag is None:
                self.snapshots.append((j, F.S.copy(), F.P.copy(), list(F.cols), dict(self.next_input),
                                       dict(self.folded_by), set(self.done)))
            self.source_index = j
            self._finish(sources[j])
        if self.tag is None:
            self.p_failure = F.mass(F.col("failed") == 1, self.w)
            self.p_silent = F.mass(F.col("silent") == 1, self.w)
            p_fail_level = F.P[F.col("failed") == 1].sum(axis=0)
            self.pass_k = np.stack([over_levels((1.0 - p_fail_level) ** k, self.w) for k in range(1, PASS_K + 1)],
                                   axis=1)
        else:
            col = F.col("tag_failed")
            for t in self.tag_results:
                self.tag_results[t].append(F.mass(col == 1 + t, self.w))
                if self.follow_catches:
                    self.tag_results[t].append(F.mass((F.col("tag_caught") == 1 + t) & (col == 0), self.w))

    def _finish(self, s: StepPlan) -> None:
        """Step `s` has all inputs folded: apply its own draws, then feed its consumers."""
        self.owner[s.pos] = self.source_index
        acc = f"acc:{s.pos}"
        if acc not in self.F.cols:
            self.F.add(acc)
        getattr(self, f"_finish_{s.kind}")(s, acc)
        self._collapse(acc, self.collapse_out[s.pos])
        self.done.add(s.pos)
        if s.kind == "verify" and s.audit:  # an audit only marks detections; it feeds nothing
            self.F.drop(acc)
            return
        if s.kind == "act" and s.audited_by:
            self.F.add(f"det:{s.pos}")
        for c in s.consumers:
            self._fold_ready(self.plan.steps[c])
        if not s.consumers:
            self._retire(s)

    def _fold_ready(self, c: StepPlan) -> None:
        """Fold into `c` every input that is ready, in input order; finish `c` when all are folded."""
        if c.pos in self.done:  # finished already, through another input that completed it
            return
        acc = f"acc:{c.pos}"
        if acc not in self.F.cols:
            self.F.add(acc)
        while self.next_input[c.pos] < len(c.inputs) and c.inputs[self.next_input[c.pos]] in self.done:
            src = self.plan.steps[c.inputs[self.next_input[c.pos]]]
            getattr(self, f"_fold_{'audit' if c.audit else c.kind}")(c, acc, src)
            self._collapse(acc, self.collapse_in[c.pos])
            self.next_input[c.pos] += 1
            self._consumed(src)
        if self.next_input[c.pos] == len(c.inputs):
            self._finish(c)

    def _collapse(self, acc: str, code_map: np.ndarray) -> None:
        """Merge error types that behave alike from here on (rows may then coincide: merge them)."""
        col = self.F.cols.index(acc)
        old = self.F.S[:, col]
        new = code_map[old]
        if np.any(new != old):
            self.F.S[:, col] = new
            self.F._merge()

    def _consumed(self, src: StepPlan) -> None:
        self.folded_by[src.pos] += 1
        if self.folded_by[src.pos] == len(src.consumers):
            self._retire(src)

    def _retire(self, s: StepPlan) -> None:
        """No step needs `s` any more: record what it did, then drop it from the frontier."""
        F, name = self.F, f"acc:{s.pos}"
        if s.kind == "act":
            tok = F.col(name)
            det = F.col(f"det:{s.pos}") == 1 if s.audited_by else np.zeros(len(tok), dtype=bool)
            fail = is_error(tok)
            self.action_failures += F.mass(fail, self.w)
            self.failure_loss += (F.mass(fail & det, self.w) * s.detected_loss
                                  + F.mass(fail & ~det, self.w) * s.failure_loss)
            self.escalation_cost += F.mass(is_escalation(tok), self.w) * s.escalation_cost
            if self.tag is None:
                F.S[:, F.cols.index("silent")] |= (fail & ~det)
            else:
                for t in self.tag_results:
                    mine = tok == ERROR + self.T + t
                    self.tag_results[t][0] += F.mass(mine, self.w)
                    self.tag_results[t][1] += (F.mass(mine & det, self.w) * s.detected_loss
                                               + F.mass(mine & ~det, self.w) * s.failure_loss)
            if s.audited_by:
                F.drop(name, f"det:{s.pos}")
                return
        F.drop(name)

    # -- tokens -------------------------------------------------------------------------------------------------
    def _merged(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return merge(a, b, self.rank)

    def _error_code(self, s: StepPlan, t: int) -> int:
        return ERROR + t + (self.T if s.pos == self.tag else 0)

    def _per_row(self, table: np.ndarray, x: np.ndarray, otherwise: float) -> np.ndarray:
        """Per row, the probability `table` (points x types) gives the type of its error token x (`otherwise`
        for rows without an error), as rows x points (the same at every level: `_Frontier.branch` spreads it)."""
        return np.where(is_error(x)[:, None], table[:, np.maximum(self.type_of[x], 0)].T, otherwise)

    def _columns(self, per_point_level: np.ndarray) -> np.ndarray:
        """Values per point (B) or per point and level (B x L) as one row of B x L columns."""
        values = per_point_level if per_point_level.ndim == 2 else np.repeat(per_point_level[:, None], self.L, 1)
        return values.reshape(1, -1)

    # -- folds: input `src` into consumer `c` ------------------------------------------------------------------
    def _fold_retrieve(self, c: StepPlan, acc: str, src: StepPlan) -> None:
        self.F.S[:, self.F.cols.index(acc)] = self._merged(self.F.col(acc), self.F.col(f"acc:{src.pos}"))
        self.F._merge()

    _fold_act = _fold_retrieve

    def _fold_decide(self, c: StepPlan, acc: str, src: StepPlan) -> None:
        F = self.F
        x, a = F.col(f"acc:{src.pos}"), F.col(acc)
        carry = self._per_row(c.carry(src.pos), x, 1.0)
        F.branch([(carry, {acc: self._merged(a, x)}), (1.0 - carry, {})])

    def _fold_verify(self, c: StepPlan, acc: str, src: StepPlan) -> None:
        F = self.F
        x, a = F.col(f"acc:{src.pos}"), F.col(acc)
        catch = self._per_row(c.catch, x, 0.0)
        caught = {acc: self._merged(a, np.full_like(x, CAUGHT))}
        if self.follow_catches:  # a tagged error caught here: its root's fate is at least "caught"
            caught["tag_caught"] = np.where(self.tagged[x], 1 + self.type_of[x], F.col("tag_caught"))
        F.branch([(catch, caught), (1.0 - catch, {acc: self._merged(a, x)})])

    def _fold_audit(self, c: StepPlan, acc: str, act: StepPlan) -> None:
        if self.follow_catches:  # a fate needs no detections (they move loss only): no rows split by them
            return
        F = self.F
        x = F.col(f"acc:{act.pos}")
        catch = self._per_row(c.catch, x, 0.0)
        F.branch([(catch, {f"det:{act.pos}": np.ones_like(x)}), (1.0 - catch, {})])

    # -- finishes: the step's own draws ----------------------------------------------------------------------------
    def _finish_retrieve(self, s: StepPlan, acc: str) -> None:
        F = self.F
        ok = (F.col(acc) == OK)[:, None]
        live = [t for t in range(self.T) if (s.pos, t) in self.plan.root_index]
        options = [(np.where(ok, 1.0 - self._columns(s.rates[:, :, live].sum(axis=2)), 1.0), {})]
        for t in live:
            prob = np.where(ok, self._columns(s.rates[:, :, t]), 0.0)
            options.append((prob, {acc: np.full(len(F.S), self._error_code(s, t))}))
            if self.tag is None:
                if self.attribution:
                    r = self.plan.root_index[(s.pos, t)]
                    self.originated[r] += over_levels((F.P * prob).sum(axis=0), self.w)
            elif s.pos == self.tag:
                self.tag_results[t] = [np.zeros(self.B), np.zeros(self.B)]
        F.branch(options)

    def _finish_decide(self, s: StepPlan, acc: str) -> None:
        reasoning = self.plan.reasoning
        r = self.plan.root_index.get((s.pos, reasoning))
        if r is None:
            return
        F = self.F
        prob = np.where((F.col(acc) == OK)[:, None], self._columns(s.base_error), 0.0)
        if self.tag is None:
            if self.attribution:
                self.originated[r] += over_levels((F.P * prob).sum(axis=0), self.w)
        elif s.pos == self.tag:
            self.tag_results[reasoning] = [np.zeros(self.B), np.zeros(self.B)]
        F.branch([(prob, {acc: np.full(len(F.S), self._error_code(s, reasoning))}), (1.0 - prob, {})])

    def _finish_verify(self, s: StepPlan, acc: str) -> None:
        if s.audit or not np.any(s.false_alarm):
            return
        F = self.F
        prob = np.where((F.col(acc) == OK)[:, None], self._columns(s.false_alarm), 0.0)
        F.branch([(prob, {acc: np.full(len(F.S), FLAGGED, dtype=np.int32)}), (1.0 - prob, {})])

    def _finish_act(self, s: StepPlan, acc: str) -> None:
        F = self.F
        tok = F.col(acc)
        if self.tag is None:
            F.S[:, F.cols.index("failed")] |= is_error(tok)
        else:
            col = F.cols.index("tag_failed")
            mine = self.tagged[tok] & (F.S[:, col] == 0)
            F.S[:, col] = np.where(mine, 1 + self.type_of[tok], F.S[:, col])
        F._merge()


def run_analytic(request: RunRequest) -> EngineOutput:
    """`--engine analytic`: exact results per variant (the run has no sampled instances)."""
    return EngineOutput(engine="analytic", plans=request.plans, instances=None,
                        exact={name: solve(plan) for name, plan in request.plans.items()})
