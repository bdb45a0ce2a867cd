"""Distributions written in place of numbers (`role_swap: {beta: [12, 88]}`): where they may stand, how loading
takes them out (the number in place becomes their mean, the distribution goes to `Scenario.distributions` by
parameter path), how a dump puts them back, and the Dirichlet posteriors of measured rates.

Only probabilities (retriever rates, base_error_rate, susceptibility, susceptibility_by_input, catch,
false_alarm) and costs (failure_loss, detected_loss, escalation_cost) may be uncertain; paths are those of
`sim.model.plan.scenario_parameters`, so an uncertainty run changes a compiled Plan with `with_parameters`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from pydantic import ValidationError

from sim.core import limits
from sim.core.errors import Problem
from sim.core.yaml_source import Path_, SourceMap
from sim.scenario.model import DISTRIBUTION_KINDS, Distribution, Scenario

PRIOR = "Jeffreys Dirichlet(1/2, ..., 1/2)"
"""The prior of a measured retriever's rates (error types and `ok`): after k errors of a type in n probe queries,
that rate's posterior marginal is Beta(k + 1/2, n - k + K/2) for K types counted."""


def _slots(data: dict[str, Any]) -> Iterator[tuple[Path_, str, bool, dict, str]]:
    """Every place a probability or cost may stand in scenario data: (data path, parameter path, is a cost,
    the mapping holding it, its key). Measured retrievers' rates come from profiles and are not slots."""
    def table(path: Path_, name: str, holder: Any) -> Iterator[tuple[Path_, str, bool, dict, str]]:
        if isinstance(holder, dict):
            for key in holder:
                yield path + (key,), f"{name}.{key}", False, holder, key

    for name, r in _mapping(data.get("retrievers")).items():
        if isinstance(r, dict) and r.get("kind") != "measured":
            yield from table(("retrievers", name, "rates"), f"retrievers.{name}.rates", r.get("rates"))
    workflow = _mapping(data.get("workflow"))
    steps = workflow.get("steps") if isinstance(workflow.get("steps"), list) else []
    for i, st in enumerate(steps):
        if not isinstance(st, dict):
            continue
        at, name = ("workflow", "steps", i), f"workflow.steps.{st.get('id')}"
        for key in ("base_error_rate", "false_alarm"):
            if key in st:
                yield at + (key,), f"{name}.{key}", False, st, key
        for key in ("susceptibility", "catch"):
            yield from table(at + (key,), f"{name}.{key}", st.get(key))
        for src, sub in _mapping(st.get("susceptibility_by_input")).items():
            yield from table(at + ("susceptibility_by_input", src), f"{name}.susceptibility_by_input.{src}", sub)
    for sid, cost in _mapping(data.get("costs")).items():
        for key in ("failure_loss", "detected_loss", "escalation_cost"):
            if isinstance(cost, dict) and key in cost:
                yield ("costs", sid, key), f"costs.{sid}.{key}", True, cost, key


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def take_distributions(data: dict[str, Any], source: SourceMap) -> tuple[dict[str, Any], list[Problem]]:
    """`data` (changed in place and returned) with each distribution replaced by its mean and gathered under
    `distributions` by parameter path, and the problems found (a bad shape, a range no value may take)."""
    problems: list[Problem] = []
    if "distributions" in data:
        problems.append(source.problem(("distributions",), "do not write 'distributions': write a distribution "
                                       "in place of a number (role_swap: {beta: [12, 88]})"))
    found: dict[str, dict[str, Any]] = {}
    for where, path, is_cost, holder, key in list(_slots(data)):
        value = holder[key]
        if not isinstance(value, dict):
            continue
        try:
            dist = Distribution.model_validate(value)
        except ValidationError as exc:
            e = exc.errors()[0]
            field = ".".join(str(p) for p in e["loc"])
            shown = f"{field}: {e['msg']}" if field else e["msg"].removeprefix("Value error, ")
            problems.append(source.problem(where, f"{shown} (a distribution is one of "
                                           f"{', '.join(f'{{{k}: [...]}}' for k in DISTRIBUTION_KINDS)})"))
            continue
        message = _range_problem(dist, is_cost)
        if message:
            problems.append(source.problem(where, message))
            continue
        holder[key] = dist.mean
        found[path] = dist.model_dump(mode="json", exclude_none=True)
    data["distributions"] = found
    return data, problems


def _range_problem(dist: Distribution, is_cost: bool) -> str | None:
    low, high = dist.support
    if is_cost:
        if dist.kind == "beta":
            return "beta lies on [0, 1]: for an amount use pert, uniform or lognormal_90"
        top = dist.args[-1]
        if low < 0 or top > limits.MAX_AMOUNT:
            return f"an amount lies in [0, {limits.MAX_AMOUNT:g}], {dist!r} goes past it"
        return None
    if dist.kind == "lognormal_90":
        return "lognormal_90 is for amounts; for a probability use beta, pert or uniform"
    if low < 0 or high > 1:
        return f"a probability lies in [0, 1], {dist!r} goes past it"
    return None


def place_distributions(data: dict[str, Any], distributions: dict[str, Any]) -> dict[str, Any]:
    """`data` (changed in place and returned) with each distribution back in place of its mean: what a resolved
    scenario file and a variant's overrides start from."""
    given = {path: d.model_dump(mode="json", exclude_none=True) if isinstance(d, Distribution) else d
             for path, d in distributions.items()}
    for _, path, _, holder, key in list(_slots(data)):
        if path in given:
            holder[key] = given[path]
    data.pop("distributions", None)
    return data


class UncertainParameter(NamedTuple):
    """How one parameter is uncertain: `distribution` is drawn from one design column; with `breaks`, the
    parameter is that draw times (1 - the draw) of each parameter in `breaks` (stick-breaking), and `marginal`
    is the parameter's own distribution."""

    distribution: Distribution
    source: str
    breaks: tuple[str, ...] = ()
    marginal: Distribution | None = None

    @property
    def own(self) -> Distribution:
        """The parameter's own (marginal) distribution."""
        return self.marginal or self.distribution


def uncertain_parameters(scenario: Scenario) -> dict[str, UncertainParameter]:
    """Every uncertain parameter of one resolved scenario (one variant) by path: the distributions written in
    the file, then the posteriors of measured rates with counts.

    A measured retriever's rates are one multinomial measurement (each probe query ends in exactly one outcome),
    so their posterior is one Dirichlet, Jeffreys prior Dirichlet(1/2, ..., 1/2) over the error types and `ok`,
    drawn by stick-breaking: independent Betas, one per error type, so every design column stays an independent
    input, and drawn rates never sum past 1. Each rate's marginal is Beta(k + 1/2, A - k - 1/2), A = n + (K+1)/2
    for K error types counted."""
    out = {path: UncertainParameter(d, "scenario") for path, d in scenario.distributions.items()}
    for name, r in scenario.retrievers.items():
        n = r.counts.get("queries", 0) if r.kind == "measured" else 0
        counted = [(t, r.counts[t]) for t in r.rates if n and r.counts.get(t) is not None]
        if not counted or sum(k for _, k in counted) > n:
            continue
        alpha = [k + 0.5 for _, k in counted]
        total = sum(alpha) + (n - sum(k for _, k in counted)) + 0.5  # the `ok` outcome and the types not counted
        rest, before = total, []
        for (t, k), a in zip(counted, alpha, strict=True):
            path = f"retrievers.{name}.rates.{t}"
            rest -= a
            out[path] = UncertainParameter(Distribution(beta=(a, rest)), f"measured: {k} of {n} probes, {PRIOR} "
                                           "prior", tuple(before), Distribution(beta=(a, total - a)))
            before.append(path)
    return out


__all__ = ["take_distributions", "place_distributions", "uncertain_parameters", "UncertainParameter", "PRIOR"]
