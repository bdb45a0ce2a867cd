"""The scenario model: strict, frozen pydantic classes for what a scenario YAML file may say.

Structure and ranges are checked by pydantic; cross-references (inputs, retrievers, costs, error types,
cycles) by `sim.scenario.checks`. Loading, built-in workflows and variants live in `sim.scenario.load`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Money = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class Strict(BaseModel):
    """Base of every scenario class: unknown keys are errors and values are frozen once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


MAX_LEVELS = 512


class Difficulty(Strict):
    """Per-instance latent difficulty that makes errors on the same instance correlated.

    `icc` is the intra-class correlation of every error event between two attempts at the same instance:
    0 means attempts are independent; 0.3 means a hard contract stays hard when retried. Each error event can
    take at most what its levels can represent (all its errors on the hardest instances): the checks refuse more.
    """

    icc: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    levels: Annotated[int, Field(ge=3, le=MAX_LEVELS)] = 24
    """How many difficulty levels approximate the beta distribution (both engines use the same levels)."""


class InjectedRetriever(Strict):
    """A retriever whose per-query error probabilities are written in the scenario."""

    kind: Literal["injected"]
    description: str = ""
    rates: dict[str, Probability]
    """Probability per query of each error type; at most one error per query, so they sum to at most 1."""

    @property
    def error_rate(self) -> float:
        """Probability that a query returns wrong context of any type."""
        return sum(self.rates.values())


class MeasuredRetriever(Strict):
    """A retriever whose error rates come from a profile written by `cascade measure`, or that is measured
    when the scenario is first loaded (`corpus`, optional `model`), and cached after that."""

    kind: Literal["measured"]
    description: str = ""
    profile: str | None = None
    """Path of the profile YAML, relative to the scenario file."""
    corpus: str | None = None
    """Instead of a profile: a built-in corpus (contracts, support) or a passages file to measure on."""
    model: str | None = None
    """With `corpus`: the sentence-transformers model (default: the packaged all-MiniLM-L6-v2)."""
    probes: Annotated[int, Field(ge=1)] = 300
    k: Annotated[int, Field(ge=1)] = 5
    rates: dict[str, Probability] = {}
    """Filled from the profile when the scenario is loaded (do not write them)."""
    measured_with: dict[str, Any] = {}
    """Filled from the profile: model, corpus and date of the measurement."""

    @property
    def error_rate(self) -> float:
        return sum(self.rates.values())


Retriever = Annotated[InjectedRetriever | MeasuredRetriever, Field(discriminator="kind")]


class _StepBase(Strict):
    id: Identifier
    description: str = ""
    inputs: list[Identifier] = []


class RetrieveStep(_StepBase):
    """Fetches context through a named retriever. An error in its inputs (a wrong query) passes through."""

    kind: Literal["retrieve"]
    retriever: Identifier


class DecideStep(_StepBase):
    """A reasoning step. Carries each incoming error with its susceptibility, else masks it; may err itself."""

    kind: Literal["decide"]
    inputs: Annotated[list[Identifier], Field(min_length=1)]
    base_error_rate: Probability = 0.0
    """Probability of its own reasoning error on correct context (root cause: this step)."""
    susceptibility: dict[str, Probability]
    """Probability that an incoming error of each type is carried into the output; `default` for the rest."""
    susceptibility_by_input: dict[Identifier, dict[str, Probability]] = {}
    """Per input step, the types whose errors arriving through that input are carried differently (a missing
    playbook matters less than a missing clause); types not listed there fall back to `susceptibility`."""


class VerifyStep(_StepBase):
    """A guardrail, checker or human review. Before actions it is a gate (a catch stops the action: escalation
    instead of failure); after actions it is an audit (a catch detects the failure, which is then not silent)."""

    kind: Literal["verify"]
    inputs: Annotated[list[Identifier], Field(min_length=1)]
    catch: dict[str, Probability]
    """Probability of catching an incoming error of each type; `default` for the rest."""
    false_alarm: Probability = 0.0
    """Probability that a gate flags correct input, escalating an instance that had no error."""


class ActStep(_StepBase):
    """A side-effecting action. It fails when it executes on erroneous input; its costs are under `costs`."""

    kind: Literal["act"]
    inputs: Annotated[list[Identifier], Field(min_length=1)]


Step = Annotated[RetrieveStep | DecideStep | VerifyStep | ActStep, Field(discriminator="kind")]


class Workflow(Strict):
    """A directed acyclic graph of steps, written inline (`steps`) or taken from the package (`builtin`).

    With `builtin`, `set` changes the packaged steps by dotted path (`steps.decide_indemnity.base_error_rate`).
    Loading replaces a built-in workflow by its steps, so an engine only ever sees `steps`.
    """

    builtin: Identifier | None = None
    set: dict[str, Any] = {}
    description: str = ""
    steps: list[Step] = []


class ActCost(Strict):
    """What an act step costs when it goes wrong, in the scenario's currency (per instance)."""

    failure_loss: Money
    """Loss when the action executes on erroneous input and nobody notices."""
    detected_loss: Money | None = None
    """Loss when an audit detects the failure afterwards (defaults to failure_loss)."""
    escalation_cost: Money = 0.0
    """Cost of handing the instance to a human instead of acting (caught error or false alarm)."""

    @property
    def loss_if_detected(self) -> float:
        return self.failure_loss if self.detected_loss is None else self.detected_loss


class Burst(Strict):
    """A stretch of days with arrivals multiplied by `factor` (an incident, a renewal season)."""

    start_day: Annotated[int, Field(ge=0)]
    days: Annotated[int, Field(ge=1)]
    factor: Annotated[float, Field(gt=0)]


class Arrivals(Strict):
    """Instances arriving per day: Poisson with mean per_day x weekly[weekday] x burst factor."""

    per_day: Annotated[float, Field(gt=0)]
    weekly: Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=7, max_length=7)] = [1.0] * 7
    """Multipliers Monday..Sunday (day 0 of the horizon is a Monday)."""
    bursts: list[Burst] = []


class Reviewers(Strict):
    """The humans behind a verify step: how many, how fast, when they work, and when work skips them."""

    servers: Annotated[int, Field(ge=1)]
    minutes: Annotated[float, Field(gt=0)]
    """Mean review time per instance (exponential), in minutes."""
    open_hour: Annotated[float, Field(ge=0, lt=24)] = 0.0
    close_hour: Annotated[float, Field(gt=0, le=24)] = 24.0
    workdays: Annotated[int, Field(ge=1, le=7)] = 7
    """Working days per week, from Monday."""
    max_wait_hours: Annotated[float, Field(gt=0)] | None = None
    """An instance waiting longer goes on unreviewed (the check is bypassed)."""
    queue_limit: Annotated[int, Field(ge=0)] | None = None
    """An instance arriving to a longer queue goes on unreviewed."""


class Detection(Strict):
    """How silent failures surface, and how their cost grows until they do."""

    mean_days: Annotated[float, Field(gt=0)] = 30.0
    """Mean time (exponential) until a silent failure surfaces, in days."""
    growth_per_day: Annotated[float, Field(ge=0)] = 0.0
    """Loss grows by this fraction of itself per day undetected (linear)."""


class SLA(Strict):
    hours: Annotated[float, Field(gt=0)]
    """Target time from arrival to completion, in hours."""
    breach_cost: Annotated[float, Field(ge=0)]


class Rework(Strict):
    """A failed action comes back as a task for a human step (misrouted ticket, renegotiation)."""

    step: Identifier
    """The verify step whose reviewers take the task."""
    minutes: Annotated[float, Field(gt=0)]
    delay_hours: Annotated[float, Field(ge=0)] = 0.0
    cost: Annotated[float, Field(ge=0)] = 0.0


class Timeline(Strict):
    """Time dynamics for `--engine timeline`: volumes, reviewers, detection delays, SLAs and rework."""

    horizon_days: Annotated[int, Field(ge=1, le=3660)]
    replications: Annotated[int, Field(ge=1)] = 10
    arrivals: Arrivals
    reviewers: dict[Identifier, Reviewers] = {}
    detection: Detection = Detection()
    sla: SLA | None = None
    rework: dict[Identifier, Rework] = {}
    """Per act step: the rework task its failure creates."""


class Variant(Strict):
    """The scenario with some parameters changed; `set` maps dotted paths to new values."""

    name: Identifier
    description: str = ""
    set: dict[str, Any] = Field(min_length=1)


class Scenario(Strict):
    """One scenario file: a workflow, its retrievers, costs, volume, seed, and optional variants."""

    schema_version: Literal[1]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: str = ""
    seed: Annotated[int, Field(ge=0)]
    instances: Annotated[int, Field(ge=1)] = 100_000
    """Default number of instances for a Monte Carlo run (`--instances` overrides)."""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    error_types: list[Identifier] = []
    """Retrieval error types beyond the built-in taxonomy."""
    difficulty: Difficulty = Difficulty()
    retrievers: dict[Identifier, Retriever]
    workflow: Workflow
    costs: dict[Identifier, ActCost]
    timeline: Timeline | None = None
    variants: list[Variant] = []

    def step(self, step_id: str) -> RetrieveStep | DecideStep | VerifyStep | ActStep:
        """The step with this id."""
        for s in self.workflow.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


def json_schema() -> dict[str, Any]:
    """JSON Schema of scenario files, for editors' autocompletion."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cascadesim scenario"
    return schema
