"""The analytic engine: exact probabilities by propagating the joint distribution of in-flight tokens.

Given a difficulty level, every draw is independent, so the workflow is a Bayesian network whose nodes are the
steps. We walk it in canonical order keeping a *frontier*: the joint distribution (one row per combination,
one probability column per difficulty level) of the tokens still needed downstream plus a few per-instance
accumulators. Each input is folded into its consumer as soon as it is ready, so the frontier stays small for
pipelines where many steps meet at one reviewer. Attribution by root cause follows, in the same walk, a copy of
the rows per step that can originate errors, in which that step's errors carry a tag (and where they end: an
action failed, else a gate caught them, else they were masked); the copies never meet, so one walk serves all.

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

    def __init__(self, columns: int, limit: int):
        self.limit = limit
        """Rows the frontier may reach (EngineLimitError beyond)."""
        self.cols: list[str] = []
        self.bounds: list[int] = []
        """Per column, a bound its values stay below (the radix of the rows' merge keys)."""
        self.S = np.zeros((1, 0), dtype=np.int32)
        self.P = np.ones((1, columns))
        self.peak_rows = 1

    def col(self, name: str) -> np.ndarray:
        return self.S[:, self.cols.index(name)]

    def add(self, name: str, bound: int, values: int | np.ndarray = 0) -> None:
        """A column `name` whose values stay below `bound`."""
        self.cols.append(name)
        self.bounds.append(bound)
        self.S = np.column_stack([self.S, np.broadcast_to(values, (len(self.S),))]).astype(np.int32)

    def drop(self, *names: str) -> None:
        keep = [i for i, c in enumerate(self.cols) if c not in names]
        self.cols = [self.cols[i] for i in keep]
        self.bounds = [self.bounds[i] for i in keep]
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
            live = (prob != 0).any(axis=1)  # rows this option cannot reach are never copied
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
        # One key per row (mixed radix over the columns, the last most significant): a 1-D sort instead of a
        # row-wise one. Below 2**53 the keys are whole numbers a float64 holds exactly, and the product is BLAS's
        # (a few times faster). The columns' bounds serve as radix where they can, else their largest values.
        radix = np.array(self.bounds, dtype=np.int64)
        span = float(np.prod(radix.astype(np.float64)))
        if span >= 2.0**53:
            radix = self.S.max(axis=0).astype(np.int64) + 1
            span = float(np.prod(radix.astype(np.float64)))
        if span < 2.0**53:
            keys = self.S @ np.concatenate([[1.0], np.cumprod(radix[:-1].astype(np.float64))])
        elif span < 2.0**62:
            keys = self.S.astype(np.int64) @ np.concatenate([[1], np.cumprod(radix[:-1])])
        else:
            keys = np.unique(self.S, axis=0, return_inverse=True)[1].ravel()
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.concatenate([[0], np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1])
        if len(starts) < len(self.S):
            self.S = self.S[order[starts]]
            self.P = _segment_sums(self.P, order, starts)
        self.peak_rows = max(self.peak_rows, len(self.S))
        if len(self.S) > self.limit:
            raise EngineLimitError(
                f"the analytic engine would need a joint table of {len(self.S):,} rows for this workflow "
                f"(limit {self.limit:,}); run it with --engine monte_carlo")


def _segment_sums(P: np.ndarray, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """`np.add.reduceat(P[order], starts, axis=0)` as one sparse product (scipy.sparse CSR: one pass over P in C,
    no gathered copy); reduceat along axis 0 of a wide array runs about 15 times slower."""
    indptr = np.append(starts, len(order))
    merge = sparse.csr_matrix((np.ones(len(order)), order, indptr), shape=(len(starts), len(P)))
    return merge @ P


def over_levels(per_column: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average over difficulty levels of a vector of B x levels values (point-major): one value per point."""
    if len(per_column) == len(weights):  # one point: the plain dot product (the recorded figures depend on it)
        return np.array([per_column @ weights])
    return per_column.reshape(-1, len(weights)) @ weights


def solve(plan: Plan) -> Exact:
    """Exact results for one plan (one variant): one walk with a tagged copy per root step or, where that walk
    would outgrow MAX_ROWS, the main walk and then one walk per root step."""
    plan = stack([plan])
    roots = sorted({p for p, _ in plan.roots})
    try:
        walks = [_Pass(plan, tags=tuple(roots), limit=MAX_ROWS)]
        walks[0].run()
    except EngineLimitError:  # the main walk alone within MAX_ROWS (else this raises), then each copy beside it
        walks = [_Pass(plan)]
        walks[0].run()
        beside = walks[0].F.peak_rows + MAX_ROWS  # the main rows, and a copy of up to MAX_ROWS
        walks += [_Pass(plan, tags=(pos,), limit=beside) for pos in roots]
        for walk in walks[1:]:
            walk.run()
    main = walks[0]
    results = sum(walk.tag_results for walk in walks)  # each walk's roots only, zero elsewhere
    return Exact(
        p_failure=float(main.p_failure[0]), silent_failure_rate=float(main.p_silent[0]),
        expected_failure_loss=float(main.failure_loss[0]), expected_escalation_cost=float(main.escalation_cost[0]),
        action_failures=float(main.action_failures[0]), originated=main.originated[:, 0],
        failures_from_root=results[0, :, 0], loss_from_root=results[1, :, 0], any_failure_from_root=results[2, :, 0],
        caught_from_root=results[3, :, 0], pass_k=main.pass_k[0])


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
    main = _Pass(stack([plan]), attribution=False)
    main.run()
    return max(1, BATCH_BYTES // (8 * plan.levels.count * main.F.peak_rows))


def headline_batch(plan: Plan, cascade: bool = False) -> dict[str, np.ndarray]:
    """`headline` of a stacked plan (`sim.model.plan.stack`): one value per parameter point, in one walk; with
    `cascade`, also root errors per instance and amplification."""
    return _headline_walk(plan, cascade).headline()


def headline_slices(plan: Plan, cascade: bool = False) -> dict[str, np.ndarray]:
    """`headline_batch` of a stacked plan of any size, walked in slices whose frontier stays within BATCH_BYTES:
    a first walk of a few points (FIRST_WALK_BYTES) shows how many rows the frontier reaches and sizes the others
    (EngineLimitError when the analytic engine cannot take the workflow)."""
    few = max(1, FIRST_WALK_BYTES // (8 * plan.levels.count * MAX_ROWS))
    first = _headline_walk(plan.slice_points(0, few), cascade)
    per_walk = max(1, BATCH_BYTES // (8 * plan.levels.count * first.F.peak_rows))
    parts = [first.headline()] + [headline_batch(plan.slice_points(a, a + per_walk), cascade)
                                  for a in range(few, plan.batch, per_walk)]
    return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}


def _headline_walk(plan: Plan, cascade: bool = False) -> _Pass:
    """The main walk alone; `cascade`: with the errors each root originates (no tagged copies)."""
    main = _Pass(plan, attribution=cascade)
    main.run()
    return main


class _Pass:
    """One walk over the workflow, with attribution to the root steps in `tags`.

    For each root step in `tags` the walk keeps a copy of the frontier's rows in which the errors the step
    originates are marked (column `tag`: 1 + the step's position; 0 for the main rows, from which the copy
    branches off when the step runs). In a copy, column `tag_failed` follows them (1 + type once such an error
    fails an action) and `tag_caught` (1 + type once a gate catches one and none has failed an action), so that
    a root error's fate is known exactly: failed, else caught, else masked. Rows of different copies never
    meet, so one walk gives what a walk per root step would, for one walk's Python overhead."""

    def __init__(self, plan: Plan, tags: tuple[int, ...] = (), attribution: bool = True, limit: int | None = None):
        assert plan.batch is not None, "the walk takes a stacked plan (sim.model.plan.stack)"
        self.plan, self.tags = plan, tuple(tags)
        self.attribution = attribution
        """False: the headline figures only (no errors originated per root)."""
        self.T = len(plan.types)
        self.w = plan.levels.weights
        self.B, self.L = plan.batch, plan.levels.count
        self.F = _Frontier(self.B * self.L, limit=MAX_ROWS * (len(self.tags) + 1) if limit is None else limit)
        self.originated = np.zeros((len(plan.roots), self.B))
        self.failure_loss, self.escalation_cost, self.action_failures = (np.zeros(self.B) for _ in range(3))
        R = len(plan.roots)
        self.tag_results = np.zeros((4, R, self.B))
        """Per root and point, in an attribution walk (for the roots of its `tags`): expected action failures
        the root's error causes, their loss, P(it fails an action), P(a gate caught it and it failed none)."""
        self.root_of = np.full((len(plan.steps) + 1, len(plan.types)), -1)
        """The root a tagged error is, by (the row's `tag`, its type)."""
        for (pos, t), r in plan.root_index.items():
            if pos in self.tags:
                self.root_of[1 + pos, t] = r
        # Token codes in this pass (sim.model.tokens): OK, FLAGGED, CAUGHT, ERROR + t for an error of type t,
        # ERROR + T + t for a tagged error of type t.
        n_codes = ERROR + 2 * self.T
        self.type_of = np.full(n_codes, -1)
        self.type_of[ERROR:] = np.tile(np.arange(self.T), 2)
        self.rank = rank_table(n_codes)
        self.tagged = np.zeros(n_codes, dtype=bool)
        self.tagged[ERROR + self.T:] = True
        self.collapse_out = self._type_classes(include_self=False)
        self.collapse_in = self._type_classes(include_self=True)

    def headline(self) -> dict[str, np.ndarray]:
        """The main pass's figures per point: p_failure, silent_failure_rate, expected_loss_per_instance and its
        two parts (failure loss, escalation cost); with attribution also root_errors_per_instance and
        amplification (action failures per root error; 0 without root errors, as in the summary)."""
        out = {"p_failure": self.p_failure, "silent_failure_rate": self.p_silent,
               "expected_loss_per_instance": self.failure_loss + self.escalation_cost,
               "expected_failure_loss_per_instance": self.failure_loss.copy(),
               "expected_escalation_cost_per_instance": self.escalation_cost.copy()}
        if self.attribution:
            roots = self.originated.sum(axis=0)
            out["root_errors_per_instance"] = roots
            out["amplification"] = np.divide(self.action_failures, roots, out=np.zeros(self.B), where=roots > 0)
        return out

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
    def run(self) -> None:
        """Walk the workflow, source by source."""
        plan, F = self.plan, self.F
        F.add("failed", 2)
        F.add("silent", 2)
        if self.tags:
            F.add("tag_failed", 1 + self.T)
            F.add("tag_caught", 1 + self.T)
            F.add("tag", 1 + len(plan.steps))
        self.next_input = {s.pos: 0 for s in plan.steps}
        self.folded_by = {s.pos: 0 for s in plan.steps}
        self.done: set[int] = set()
        for s in plan.steps:
            if not s.inputs:
                self._finish(s)
        main = self._main_rows()
        failed = main & (F.col("failed") == 1)
        self.p_failure = F.mass(failed, self.w)
        self.p_silent = F.mass(main & (F.col("silent") == 1), self.w)
        p_fail_level = F.P[failed].sum(axis=0)
        self.pass_k = np.stack([over_levels((1.0 - p_fail_level) ** k, self.w) for k in range(1, PASS_K + 1)],
                               axis=1)
        if self.tags:
            failed, caught, tag = F.col("tag_failed"), F.col("tag_caught"), F.col("tag")
            self.tag_results[2] = self._root_mass(np.where(failed > 0, self.root_of[tag, failed - 1], -1))
            self.tag_results[3] = self._root_mass(np.where(caught > 0, self.root_of[tag, caught - 1], -1))

    def _main_rows(self) -> np.ndarray:
        """The rows of the main walk (not of a root step's tagged copy)."""
        return self.F.col("tag") == 0 if self.tags else np.ones(len(self.F.S), dtype=bool)

    def _finish(self, s: StepPlan) -> None:
        """Step `s` has all inputs folded: apply its own draws, then feed its consumers."""
        acc = f"acc:{s.pos}"
        if acc not in self.F.cols:
            self.F.add(acc, len(self.rank))
        spawn = s.pos in self.tags
        if spawn:
            self._spawn(s)
        getattr(self, f"_finish_{s.kind}")(s, acc)
        if spawn:  # the copy's rows where the step originated no error can contribute nothing: drop them
            F = self.F
            keep = (F.col("tag") != 1 + s.pos) | self.tagged[F.col(acc)]
            F.S, F.P = F.S[keep], F.P[keep]
        self._collapse(acc, self.collapse_out[s.pos])
        self.done.add(s.pos)
        if s.kind == "verify" and s.audit:  # an audit only marks detections; it feeds nothing
            self.F.drop(acc)
            return
        if s.kind == "act" and s.audited_by:
            self.F.add(f"det:{s.pos}", 2)
        for c in s.consumers:
            self._fold_ready(self.plan.steps[c])
        if not s.consumers:
            self._retire(s)

    def _spawn(self, s: StepPlan) -> None:
        """Root step `s` is about to originate errors: its copy of the main rows branches off (without the main
        walk's own accumulators, which would only split its rows)."""
        F = self.F
        n, main = len(F.S), self._main_rows()
        F.branch([(1.0, {}), (main[:, None].astype(np.float64),
                              {"tag": np.full(n, 1 + s.pos), "failed": np.zeros(n), "silent": np.zeros(n)})])

    def _fold_ready(self, c: StepPlan) -> None:
        """Fold into `c` every input that is ready, in input order; finish `c` when all are folded."""
        if c.pos in self.done:  # finished already, through another input that completed it
            return
        acc = f"acc:{c.pos}"
        if acc not in self.F.cols:
            self.F.add(acc, len(self.rank))
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
            main = self._main_rows()
            fail = is_error(tok) & main
            self.action_failures += F.mass(fail, self.w)
            self.failure_loss += (F.mass(fail & det, self.w) * s.detected_loss
                                  + F.mass(fail & ~det, self.w) * s.failure_loss)
            self.escalation_cost += F.mass(is_escalation(tok) & main, self.w) * s.escalation_cost
            F.S[:, F.cols.index("silent")] |= (fail & ~det)
            if self.tags:
                root = np.where(self.tagged[tok], self.root_of[F.col("tag"), self.type_of[tok]], -1)
                on_det = self._root_mass(np.where(det, root, -1))
                on_rest = self._root_mass(np.where(det, -1, root))
                self.tag_results[0] += on_det + on_rest
                self.tag_results[1] += on_det * s.detected_loss + on_rest * s.failure_loss
            if s.audited_by:
                F.drop(name, f"det:{s.pos}")
                return
        F.drop(name)

    def _root_mass(self, root: np.ndarray) -> np.ndarray:
        """Probability (averaged over levels) of the frontier's rows per root, as roots x points, from each
        row's root (-1: none): one sparse product over the rows."""
        R, F = len(self.plan.roots), self.F
        rows = np.flatnonzero(root >= 0)
        pick = sparse.csr_matrix((np.ones(len(rows)), (root[rows], rows)), shape=(R, len(root)))
        return (pick @ F.P).reshape(R, self.B, self.L) @ self.w

    # -- tokens -------------------------------------------------------------------------------------------------
    def _merged(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return merge(a, b, self.rank)

    def _error_code(self, s: StepPlan, t: int) -> np.ndarray:
        """Per row, the code of an error of type t originated at step s (tagged in the rows of s's copy)."""
        if s.pos not in self.tags:
            return np.full(len(self.F.S), ERROR + t)
        return ERROR + t + self.T * (self.F.col("tag") == 1 + s.pos)

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
        if self.tags:  # a tagged error caught here: its root's fate is at least "caught"
            caught["tag_caught"] = np.where(self.tagged[x] & (F.col("tag_failed") == 0), 1 + self.type_of[x],
                                            F.col("tag_caught"))
        F.branch([(catch, caught), (1.0 - catch, {acc: self._merged(a, x)})])

    def _fold_audit(self, c: StepPlan, acc: str, act: StepPlan) -> None:
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
            options.append((prob, {acc: self._error_code(s, t)}))
            if self.attribution:
                self._originate(self.plan.root_index[(s.pos, t)], prob)
        F.branch(options)

    def _finish_decide(self, s: StepPlan, acc: str) -> None:
        reasoning = self.plan.reasoning
        r = self.plan.root_index.get((s.pos, reasoning))
        if r is None:
            return
        F = self.F
        prob = np.where((F.col(acc) == OK)[:, None], self._columns(s.base_error), 0.0)
        if self.attribution:
            self._originate(r, prob)
        F.branch([(prob, {acc: self._error_code(s, reasoning)}), (1.0 - prob, {})])

    def _originate(self, r: int, prob: np.ndarray) -> None:
        """Add to root r's errors originated: the main rows' probability times `prob` (rows x columns)."""
        P = self.F.P
        if self.tags:  # (a walk without copies: every row is a main row, and no gathered copy is needed)
            main = self._main_rows()
            P, prob = P[main], prob[main]
        self.originated[r] += over_levels((P * prob).sum(axis=0), self.w)

    def _finish_verify(self, s: StepPlan, acc: str) -> None:
        if s.audit or not np.any(s.false_alarm):
            return
        F = self.F
        prob = np.where((F.col(acc) == OK)[:, None], self._columns(s.false_alarm), 0.0)
        F.branch([(prob, {acc: np.full(len(F.S), FLAGGED, dtype=np.int32)}), (1.0 - prob, {})])

    def _finish_act(self, s: StepPlan, acc: str) -> None:
        F = self.F
        tok = F.col(acc)
        F.S[:, F.cols.index("failed")] |= is_error(tok) & self._main_rows()
        if self.tags:
            col = F.cols.index("tag_failed")
            mine = self.tagged[tok] & (F.S[:, col] == 0)
            F.S[:, col] = np.where(mine, 1 + self.type_of[tok], F.S[:, col])
            F.S[mine, F.cols.index("tag_caught")] = 0  # failed: whether it was also caught no longer matters
        F._merge()


def run_analytic(request: RunRequest) -> EngineOutput:
    """`--engine analytic`: exact results per variant (the run has no sampled instances)."""
    return EngineOutput(engine="analytic", plans=request.plans, instances=None,
                        exact={name: solve(plan) for name, plan in request.plans.items()})
