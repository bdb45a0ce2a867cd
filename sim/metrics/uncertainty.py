"""Input uncertainty carried into the money: draw every uncertain input of a scenario (its distributions and
the Beta posteriors of measured rates) with a seeded Latin-hypercube or Sobol design, evaluate every variant at
every draw, and summarise the epistemic distribution of p_failure, expected loss, silent-failure rate and the
paired variant differences (median, 5-95% band, P(variant has lower expected loss than base)).

Common random numbers run two ways: every variant sees the same draw of an input it shares with base (same
path, same distribution); a variant that gives a parameter its own distribution has its own input, drawn
independently. Where the analytic engine cannot take a workflow, each draw runs Monte Carlo on the same
instance streams (streams are keyed by step, never by variant or draw), so the draws differ only by their
parameters. `evaluate_points` (one plan at a batch of parameter points) is the reusable piece.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.core.errors import CascadeError, EngineLimitError
from sim.core.seeding import stream_key
from sim.engines.analytic import headline_slices
from sim.engines.monte_carlo.run import simulate
from sim.metrics.loss_exceedance import DRAWS as EXCEEDANCE_DRAWS
from sim.metrics.loss_exceedance import curve_table, exceedance_band, loss_histograms, period_exceedance_band
from sim.metrics.summary import summary_from_tally
from sim.metrics.value_of_information import evpi, evppi
from sim.model.plan import Plan, stack
from sim.scenario.distributions import uncertain_parameters
from sim.scenario.model import Distribution, Scenario, Uncertainty

METRICS = ("p_failure", "expected_loss_per_instance", "silent_failure_rate")
POINT_FIGURES = METRICS + ("expected_failure_loss_per_instance", "expected_escalation_cost_per_instance")
"""What `evaluate_points` gives per point: METRICS and the two parts of the expected loss."""

CASCADE_FIGURES = ("root_errors_per_instance", "amplification")
"""What `evaluate_points(..., cascade=True)` adds per point: root errors per instance, and action failures per
root error."""
"""What every draw reports, per variant (names as in summary.json)."""

DESIGN_STREAM = "uncertainty/design"
"""The random stream of the design (scrambling / Latin hypercube permutations), keyed like every other stream."""

MC_CHUNK = 1 << 18

BUILD_POINTS = 4096
"""Parameter points `evaluate_points` builds at once (their plans' arrays: about 40 MB on contract review)."""

GROUPINGS = ("input", "retriever", "step", "error_type")
"""How inputs may be grouped: each on its own, by retriever, by step (retrievers by name), by error type."""


@dataclass(frozen=True)
class UncertainInput:
    """One uncertain input: a column of the design and of the per-draw table."""

    name: str
    """Its column: the parameter path, or `path@variant` when a variant gives that path its own distribution."""
    path: str
    """The parameter it sets (`Plan.parameters` path) in the variants that use it."""
    distribution: Distribution
    """What its design column draws (see `breaks`)."""
    source: str
    """`scenario` (written in the file) or the measurement it is the posterior of."""
    variants: tuple[str, ...]
    """The variants whose plans read it."""
    breaks: tuple[str, ...] = ()
    """Inputs (by name) whose draws it is broken after: its value is its draw times (1 - each of theirs), the
    stick-breaking of a measured retriever's Dirichlet posterior."""
    marginal: Distribution | None = None
    """Its value's own distribution when that is not what is drawn."""

    @property
    def own(self) -> Distribution:
        return self.marginal or self.distribution


@dataclass(frozen=True)
class Evaluation:
    """A plan evaluated at a batch of parameter points: one row per point, columns POINT_FIGURES."""

    values: pd.DataFrame
    computed_by: str


@dataclass(frozen=True)
class UncertaintyResult:
    """An uncertainty run: the per-draw table and its summary block (summary.json's `uncertainty`)."""

    draws: pd.DataFrame
    """One row per draw x variant: `draw`, `variant`, METRICS, then every input's value (the draw's coordinates)."""
    summary: dict
    curves: pd.DataFrame | None = None
    """The loss-exceedance curves with their bands, per instance and per month (`loss_exceedance.curve_table`)."""


def uncertain_inputs(variants: Mapping[str, Scenario]) -> list[UncertainInput]:
    """The uncertain inputs of a scenario's variants (`base` first), in the order first met."""
    found: dict[tuple, list] = {}
    for vname, scenario in variants.items():
        for path, p in uncertain_parameters(scenario).items():
            found.setdefault((path, p.distribution, p.breaks), [p, []])[1].append(vname)
    names: set[str] = set()
    named: dict[tuple[str, str], str] = {}  # (variant, path) -> input name
    out = []
    for (path, _, _), (p, users) in found.items():
        name = path if path not in names else f"{path}@{users[0]}"
        names.add(name)
        named.update({(v, path): name for v in users})
        breaks = tuple(named[(users[0], b)] for b in p.breaks)
        out.append(UncertainInput(name, path, p.distribution, p.source, tuple(users), breaks, p.marginal))
    return out


def input_values(inputs: list[UncertainInput], u: np.ndarray) -> dict[str, np.ndarray]:
    """Each input's values at the design points `u` (one column per input): its quantile function at its
    column, times (1 - the draw) of each input it is broken after."""
    drawn = {i.name: i.distribution.ppf(u[:, j]) for j, i in enumerate(inputs)}
    values = {}
    for i in inputs:
        v = drawn[i.name]
        for b in i.breaks:
            v = v * (1.0 - drawn[b])
        values[i.name] = v
    return values


def group_of(path: str, by: str) -> str:
    """The group of a parameter path: `retriever` (retrievers.X.* -> X), `step` (workflow.steps.S.* -> S,
    costs.S.* -> S, retrievers.X.* -> X), `error_type` (rates, susceptibility and catch tables by their type,
    base_error_rate -> reasoning), or `input` (the path itself); what a grouping does not cover stays alone."""
    if by not in GROUPINGS:
        raise CascadeError(f"unknown grouping of inputs '{by}': one of {', '.join(GROUPINGS)}")
    parts = path.split("@")[0].split(".")
    if by == "retriever" or (by == "step" and parts[0] == "retrievers"):
        return f"retriever {parts[1]}" if parts[0] == "retrievers" else path
    if by == "step":
        return f"step {parts[2]}" if parts[0] == "workflow" else f"step {parts[1]}" if parts[0] == "costs" else path
    if by == "error_type":
        if parts[0] == "retrievers" or (parts[0] == "workflow" and parts[3] in ("susceptibility", "catch",
                                                                                 "susceptibility_by_input")):
            return f"type {parts[-1]}"
        if parts[-1] == "base_error_rate":
            return "type reasoning"
    return path


def design(draws: int, dims: int, seed: int, kind: str = "lhs") -> np.ndarray:
    """`draws` x `dims` points in (0, 1): a scrambled Sobol sequence (`draws` a power of 2) or a Latin
    hypercube (scipy.stats.qmc), seeded from the scenario's seed; the same seed gives the same design."""
    from scipy.stats import qmc

    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream_key(DESIGN_STREAM),))))
    if kind == "sobol":
        if draws & (draws - 1):
            raise CascadeError(f"a Sobol design takes a power of 2 draws (e.g. {1 << (draws.bit_length() - 1):,} or "
                               f"{1 << draws.bit_length():,}), got {draws:,}; or use design: lhs")
        points = qmc.Sobol(dims, scramble=True, rng=rng).random_base2(draws.bit_length() - 1)
    elif kind == "lhs":
        points = qmc.LatinHypercube(dims, rng=rng).random(draws)
    else:
        raise CascadeError(f"unknown design '{kind}': lhs or sobol")
    # The quantile functions of unbounded inputs (lognormal costs) are infinite at 0 and 1.
    return np.clip(points, 1e-12, 1 - 1e-12)


def evaluate_points(plan: Plan, points: Mapping[str, np.ndarray], instances: int = 20_000,
                    cascade: bool = False) -> Evaluation:
    """`plan` at each of a batch of parameter points (`points`: parameter path -> one value per point; none:
    the plan itself, one point): POINT_FIGURES, and CASCADE_FIGURES with `cascade`. Exact (analytic engine, one
    batched walk per slice of points) where it applies, else Monte Carlo with `instances` per point on the plan's
    own streams (common random numbers across points)."""
    n = len(next(iter(points.values()))) if points else 1
    figures = POINT_FIGURES + (CASCADE_FIGURES if cascade else ())

    def at(start: int, stop: int) -> Plan:
        """The plan at points start..stop-1, stacked (built at once: `Plan.at_points`)."""
        if not points:
            return stack([plan] * (stop - start))
        try:
            return plan.at_points({path: np.asarray(v, dtype=float)[start:stop] for path, v in points.items()},
                                  first_draw=start)
        except CascadeError as exc:
            raise CascadeError(f"variant '{plan.variant}', {exc}") from None

    # Plans are built BUILD_POINTS at a time (their levels solved together: repeated rates once, the rest
    # started from anchors), then walked in cache-sized slices.
    try:
        parts = [headline_slices(at(a, min(n, a + BUILD_POINTS)), cascade) for a in range(0, n, BUILD_POINTS)]
    except EngineLimitError:
        computed_by = f"monte_carlo ({instances:,} instances per point, common random numbers)"
        rows = []
        for i in range(n):
            try:
                one = plan.with_parameters({path: float(v[i]) for path, v in points.items()}) if points else plan
            except CascadeError as exc:
                raise CascadeError(f"variant '{plan.variant}', draw {i}: {exc}") from None
            tallies, _ = simulate({plan.variant: one}, instances, MC_CHUNK, 0, 0)
            s = summary_from_tally(tallies[plan.variant])
            rows.append({m: s[m] for m in figures})
        return Evaluation(pd.DataFrame(rows, columns=list(figures)), computed_by)
    values = pd.DataFrame({m: np.concatenate([part[m] for part in parts]) for m in figures})
    return Evaluation(values, "analytic (exact at each point, batched)")


def propagate(variants: Mapping[str, Scenario], plans: Mapping[str, Plan], settings: Uncertainty,
              seed: int) -> UncertaintyResult:
    """Draw the uncertain inputs of `variants` (`settings.draws` points of `settings.design`) and evaluate every
    variant's plan at every draw; the summary gives each metric's point value, mean, median and 5-95% band, and
    for every variant its paired differences from base and P(lower expected loss than base)."""
    inputs = uncertain_inputs(variants)
    if not inputs:
        raise CascadeError("nothing in this scenario is uncertain: write a distribution in place of a probability "
                           "or cost (role_swap: {beta: [12, 88]}) or use a measured profile with counts")
    u = design(settings.draws, len(inputs), seed, settings.design)
    values = input_values(inputs, u)
    per_variant: dict[str, pd.DataFrame] = {}
    points: dict[str, dict[str, float]] = {}
    computed_by = set()
    for vname, plan in plans.items():
        mine = {inp.path: values[inp.name] for inp in inputs if vname in inp.variants}
        ev = evaluate_points(plan, mine, settings.instances_per_draw)
        # A variant that reads no uncertain input (all made certain by its `set`) is the same at every draw.
        per_variant[vname] = ev.values if mine else ev.values.loc[[0] * settings.draws].reset_index(drop=True)
        points[vname] = evaluate_points(plan, {}, settings.instances_per_draw).values.iloc[0].to_dict()
        computed_by.add(ev.computed_by)
    table = pd.concat([df.assign(draw=np.arange(settings.draws), variant=v) for v, df in per_variant.items()],
                      ignore_index=True)
    coords = pd.DataFrame(values)
    table = pd.concat([table[["draw", "variant", *METRICS]],
                       coords.iloc[table["draw"].to_numpy()].reset_index(drop=True)], axis=1)
    summary = {
        "draws": settings.draws, "design": settings.design, "seed": seed,
        "computed_by": " / ".join(sorted(computed_by)),
        "inputs": [{"name": i.name, "path": i.path, "distribution": i.own.model_dump(exclude_none=True, mode="json"),
                    "mean": i.own.mean, "source": i.source, "variants": list(i.variants),
                    **({"drawn_jointly_with": list(i.breaks)} if i.breaks else {})} for i in inputs],
        "results": {v: {m: band(df[m].to_numpy(), points[v][m]) for m in METRICS} for v, df in per_variant.items()},
    }
    shown = min(settings.draws, EXCEEDANCE_DRAWS)
    histograms = {}
    for v, plan in plans.items():
        mine = {i.path: values[i.name][:shown] for i in inputs if v in i.variants}
        hists = loss_histograms(plan, mine, settings.instances_per_draw)
        histograms[v] = hists if mine else hists * shown
    summary["loss_exceedance"] = {"per": "instance", "draws": shown, "instances_per_draw": settings.instances_per_draw,
                                  "computed_by": "monte_carlo (common random numbers)", **exceedance_band(histograms)}
    timeline = variants.get("base", next(iter(variants.values()))).timeline
    if timeline is not None:  # a period needs the scenario's volume
        summary["loss_exceedance_per_period"] = {
            "per": "month", "volume_per_month": timeline.volume_per_month(),
            "computed_by": "periods sampled from each draw's instance losses (compound Poisson: a month of the "
                           "horizon drawn uniformly, its arrivals Poisson at that month's volume, each instance's "
                           "loss independent)",
            **period_exceedance_band(histograms, timeline.month_volumes(), seed)}
    base = per_variant.get("base")
    if base is not None and len(per_variant) > 1:
        summary["differences"] = {}
        for v, df in per_variant.items():
            if v == "base":
                continue
            diff = {m: band(df[m].to_numpy() - base[m].to_numpy(), points[v][m] - points["base"][m])
                    for m in METRICS}
            lower = df["expected_loss_per_instance"].to_numpy() < base["expected_loss_per_instance"].to_numpy()
            diff["p_lower_expected_loss"] = float(lower.mean())
            summary["differences"][v] = diff
        summary["value_of_information"] = value_of_information(
            {v: df["expected_loss_per_instance"].to_numpy() for v, df in per_variant.items()}, inputs, u)
    curves = curve_table(summary["loss_exceedance"], summary.get("loss_exceedance_per_period"), "month")
    return UncertaintyResult(table, summary, curves)


def value_of_information(losses: Mapping[str, np.ndarray], inputs: list[UncertainInput],
                         coordinates: np.ndarray) -> dict:
    """EVPI and EVPPI per input and per group of inputs (every grouping) for choosing the variant with the
    lowest expected loss, in currency per instance (`sim.metrics.value_of_information`)."""
    means = {v: float(x.mean()) for v, x in losses.items()}
    out = {"decision": "the variant with the lowest expected loss per instance",
           "choice_on_current_information": min(means, key=means.__getitem__),
           "evpi_per_instance": evpi(losses), "evppi_per_instance": {},
           "method": "nonparametric: draws partitioned on the inputs into cells of about sqrt(draws) "
                     "(Strong & Oakley 2013 for one input; a k-d partition for groups)"}
    for by in GROUPINGS:
        groups: dict[str, list[int]] = {}
        for j, i in enumerate(inputs):
            groups.setdefault(group_of(i.name, by), []).append(j)
        out["evppi_per_instance"][by] = {g: evppi(losses, coordinates[:, cols]) for g, cols in groups.items()}
    return out


def band(x: np.ndarray, point: float) -> dict[str, float]:
    """The point value next to the epistemic distribution of `x`: mean, median and the 5-95% band."""
    q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
    return {"point": float(point), "mean": float(x.mean()), "median": float(q50), "p05": float(q05),
            "p95": float(q95)}


__all__ = ["METRICS", "POINT_FIGURES", "CASCADE_FIGURES", "GROUPINGS", "group_of", "value_of_information", "UncertainInput", "Evaluation", "UncertaintyResult", "uncertain_inputs", "design",
           "evaluate_points", "propagate", "band", "input_values"]
