"""The scenario model: strict, frozen pydantic classes for what a scenario YAML file may say.

Structure and ranges are checked by pydantic; cross-references (inputs, retrievers, costs, error types,
cycles) by `sim.scenario.checks`. Loading, built-in workflows and variants live in `sim.scenario.load`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from sim.core import limits

SCHEMA_VERSION = 1

Probability = Annotated[float, Field(ge=0.0, le=1.0, examples=[0.05])]
Money = Annotated[float, Field(ge=0.0, le=limits.MAX_AMOUNT)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Text = Annotated[str, StringConstraints(max_length=10_000)]


class Strict(BaseModel):
    """Base of every scenario class: unknown keys are errors and values are frozen once validated."""

    # Attribute docstrings become the JSON Schema's descriptions; no float may be infinite or NaN.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False,
                              use_attribute_docstrings=True)


MAX_LEVELS = 512

Z_95 = 1.6448536269514722
"""The standard normal's 95% quantile: a `lognormal_90` interval spans +/- Z_95 standard deviations of its log."""
DISTRIBUTION_KINDS = ("beta", "pert", "uniform", "lognormal_90")


class Distribution(Strict):
    """An uncertain probability or cost, written in place of its number: exactly one of
    `{beta: [a, b]}` (probabilities), `{pert: [low, mode, high]}`, `{uniform: [low, high]}`,
    `{lognormal_90: [low, high]}` (costs: a 90% interval, as riskquant takes them). Runs without `--uncertainty`
    use its `mean`; an uncertainty run draws from it (`ppf`)."""

    beta: tuple[Annotated[float, Field(gt=0, le=1e9)], Annotated[float, Field(gt=0, le=1e9)]] | None = None
    """Beta(a, b) on [0, 1]: a probability seen as a errors in a + b trials, roughly."""
    pert: tuple[float, float, float] | None = None
    """BetaPERT (low, most likely, high), low < high, low <= mode <= high."""
    uniform: tuple[float, float] | None = None
    """Uniform between low and high (low < high)."""
    lognormal_90: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] | None = None
    """Lognormal with 5% and 95% quantiles low and high (low < high); costs only."""

    @model_validator(mode="after")
    def _one_shape(self) -> Distribution:
        given = [k for k in DISTRIBUTION_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a distribution is exactly one of {', '.join(DISTRIBUTION_KINDS)}"
                             f"{'' if not given else ', not ' + ' and '.join(given)}")
        args = self.args
        if self.kind == "pert" and not (args[0] <= args[1] <= args[2] and args[0] < args[2]):
            raise ValueError(f"pert is [low, mode, high] with low <= mode <= high and low < high, got {list(args)}")
        if self.kind in ("uniform", "lognormal_90") and not args[0] < args[1]:
            raise ValueError(f"{self.kind} is [low, high] with low < high, got {list(args)}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in DISTRIBUTION_KINDS if getattr(self, k) is not None)

    @property
    def args(self) -> tuple[float, ...]:
        return getattr(self, self.kind)

    @property
    def support(self) -> tuple[float, float]:
        """Smallest and largest value it can take (a lognormal's upper end is infinite)."""
        if self.kind == "beta":
            return 0.0, 1.0
        if self.kind == "lognormal_90":
            return 0.0, float("inf")
        return self.args[0], self.args[-1]

    @property
    def mean(self) -> float:
        """Its mean: the point value every run without `--uncertainty` uses."""
        a = self.args
        if self.kind == "beta":
            return a[0] / (a[0] + a[1])
        if self.kind == "pert":
            return (a[0] + 4 * a[1] + a[2]) / 6
        if self.kind == "uniform":
            return (a[0] + a[1]) / 2
        mu, sigma = self._log_moments()
        return float(np.exp(mu + sigma * sigma / 2))

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Its quantile function at `u` in (0, 1) (vectorised): how an uncertainty design becomes values."""
        from scipy import stats

        a = self.args
        if self.kind == "beta":
            return stats.beta.ppf(u, a[0], a[1])
        if self.kind == "pert":
            width = a[2] - a[0]
            shape = (1 + 4 * (a[1] - a[0]) / width, 1 + 4 * (a[2] - a[1]) / width)
            return a[0] + width * stats.beta.ppf(u, *shape)
        if self.kind == "uniform":
            return a[0] + (a[1] - a[0]) * np.asarray(u)
        mu, sigma = self._log_moments()
        return np.exp(mu + sigma * stats.norm.ppf(u))

    def _log_moments(self) -> tuple[float, float]:
        low, high = np.log(self.args[0]), np.log(self.args[1])
        return float((low + high) / 2), float((high - low) / (2 * Z_95))

    def __repr__(self) -> str:
        return f"{{{self.kind}: {list(self.args)}}}"


class Difficulty(Strict):
    """Per-instance latent difficulty that makes errors on the same instance correlated.

    `icc` is the intra-class correlation of every error event between two attempts at the same instance:
    0 means attempts are independent; 0.3 means a hard contract stays hard when retried. Each error event can
    take at most what its levels can represent (all its errors on the hardest instances): the checks refuse more.
    """

    icc: Annotated[float, Field(ge=0.0, lt=1.0, examples=[0.15])] = 0.0
    """Intra-class correlation of every error event between two attempts at the same instance (0 to < 1)."""
    levels: Annotated[int, Field(ge=3, le=MAX_LEVELS)] = 24
    """How many difficulty levels approximate the beta distribution (both engines use the same levels)."""


class InjectedRetriever(Strict):
    """A retriever whose per-query error probabilities are written in the scenario."""

    kind: Literal["injected"]
    """`injected`: the rates are written here."""
    description: Text = ""
    """Free text shown in reports."""
    rates: Annotated[dict[str, Probability], Field(examples=[{"negation_flip": 0.02, "topical_miss": 0.05}])]
    """Probability per query of each error type; at most one error per query, so they sum to at most 1."""

    @property
    def error_rate(self) -> float:
        """Probability that a query returns wrong context of any type."""
        return sum(self.rates.values())


class MeasuredRetriever(Strict):
    """A retriever whose error rates come from a profile written by `cascade measure`, or that is measured
    when the scenario is first loaded (`corpus`, optional `model`), and cached after that."""

    kind: Literal["measured"]
    """`measured`: the rates come from a profile, or from measuring `corpus`."""
    description: Text = ""
    """Free text shown in reports."""
    profile: Annotated[str, StringConstraints(max_length=4096)] | None = None
    """Path of the profile YAML, relative to the scenario file."""
    corpus: Annotated[str, StringConstraints(max_length=4096)] | None = None
    """Instead of a profile: a built-in corpus (contracts, support) or a passages file to measure on."""
    model: Annotated[str, StringConstraints(max_length=4096)] | None = None
    """With `corpus`: the sentence-transformers model (default: the packaged all-MiniLM-L6-v2)."""
    probes: Annotated[int, Field(ge=1, le=limits.MAX_PROBES)] = 300
    """With `corpus`: probe queries to measure with (each one embeds a query and its twins)."""
    k: Annotated[int, Field(ge=1, le=1000)] = 5
    """With `corpus`: passages retrieved per query (top-k)."""
    rates: dict[str, Probability] = {}
    """Filled from the profile when the scenario is loaded (do not write them)."""
    measured_with: dict[str, Any] = {}
    """Filled from the profile: model, corpus and date of the measurement."""
    counts: dict[str, Annotated[int, Field(ge=0)]] = {}
    """Filled from the profile: probe queries (`queries`) and errors of each type; an uncertainty run turns
    the rates into their Jeffreys Dirichlet posterior (do not write them)."""

    @property
    def error_rate(self) -> float:
        return sum(self.rates.values())


Retriever = Annotated[InjectedRetriever | MeasuredRetriever, Field(discriminator="kind")]


class _StepBase(Strict):
    id: Identifier
    """Unique step name (lower case letters, digits, underscores); inputs and costs refer to it."""
    description: Text = ""
    """Free text shown in reports."""
    inputs: list[Identifier] = []
    """Ids of the steps whose output this step reads."""


class RetrieveStep(_StepBase):
    """Fetches context through a named retriever. An error in its inputs (a wrong query) passes through."""

    kind: Literal["retrieve"]
    """`retrieve`."""
    retriever: Identifier
    """Name of a retriever under `retrievers`."""


class DecideStep(_StepBase):
    """A reasoning step. Carries each incoming error with its susceptibility, else masks it; may err itself."""

    kind: Literal["decide"]
    """`decide`."""
    inputs: Annotated[list[Identifier], Field(min_length=1)]
    """Ids of the steps whose output it reasons over (at least one)."""
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
    """`verify`."""
    inputs: Annotated[list[Identifier], Field(min_length=1)]
    """Ids of the steps it checks (before an act step: a gate; after: an audit)."""
    catch: dict[str, Probability]
    """Probability of catching an incoming error of each type; `default` for the rest."""
    false_alarm: Probability = 0.0
    """Probability that a gate flags correct input, escalating an instance that had no error."""


class ActStep(_StepBase):
    """A side-effecting action. It fails when it executes on erroneous input; its costs are under `costs`."""

    kind: Literal["act"]
    """`act`."""
    inputs: Annotated[list[Identifier], Field(min_length=1)]
    """Ids of the steps whose output it acts on."""


Step = Annotated[RetrieveStep | DecideStep | VerifyStep | ActStep, Field(discriminator="kind")]


class Workflow(Strict):
    """A directed acyclic graph of steps, written inline (`steps`) or taken from the package (`builtin`).

    With `builtin`, `set` changes the packaged steps by dotted path (`steps.decide_indemnity.base_error_rate`).
    Loading replaces a built-in workflow by its steps, so an engine only ever sees `steps`.
    """

    builtin: Identifier | None = None
    """A packaged workflow (`contract_review`, `ticket_triage`) instead of inline steps."""
    set: dict[str, Any] = {}
    """With `builtin`: dotted paths into the packaged steps and their new values."""
    description: Text = ""
    """Free text shown in reports."""
    steps: list[Step] = []
    """The steps, each with a `kind`: retrieve, decide, verify or act."""


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

    start_day: Annotated[int, Field(ge=0, le=3660)]
    """First day of the burst (day 0 is the first day of the horizon)."""
    days: Annotated[int, Field(ge=1, le=3660)]
    """Length of the burst, in days."""
    factor: Annotated[float, Field(gt=0, le=1000, examples=[1.8])]
    """Arrivals are multiplied by this during the burst (1.8: 80% more)."""


DAYS_PER_MONTH = 365.25 / 12
"""A month of the per-month figures (a twelfth of a mean year, in days)."""


class Arrivals(Strict):
    """Instances arriving per day: Poisson with mean per_day x weekly[weekday] x burst factor."""

    per_day: Annotated[float, Field(gt=0, le=limits.MAX_ARRIVALS_PER_REPLICATION, examples=[34])]
    """Mean instances arriving per day (before weekday multipliers and bursts)."""
    weekly: Annotated[list[Annotated[float, Field(ge=0, le=100)]], Field(min_length=7, max_length=7)] = [1.0] * 7
    """Multipliers Monday..Sunday (day 0 of the horizon is a Monday)."""
    bursts: list[Burst] = []
    """Stretches of days with more (or fewer) arrivals."""

    def daily_means(self, horizon_days: int) -> np.ndarray:
        """Mean arrivals on each day of the horizon."""
        days = np.arange(horizon_days)
        mean = self.per_day * np.array(self.weekly)[days % 7]
        for b in self.bursts:
            mean[b.start_day:b.start_day + b.days] *= b.factor
        return mean


class Reviewers(Strict):
    """The humans behind a verify step: how many, how fast, when they work, and when work skips them."""

    servers: Annotated[int, Field(ge=1, le=10_000)]
    """Reviewers working in parallel."""
    minutes: Annotated[float, Field(gt=0, le=525_600, examples=[45])]
    """Mean review time per instance (exponential), in minutes."""
    open_hour: Annotated[float, Field(ge=0, lt=24)] = 0.0
    """Hour of the day the reviewers start (0-24, e.g. 9)."""
    close_hour: Annotated[float, Field(gt=0, le=24)] = 24.0
    """Hour of the day the reviewers stop (after open_hour, e.g. 17.5)."""
    workdays: Annotated[int, Field(ge=1, le=7)] = 7
    """Working days per week, from Monday."""
    max_wait_hours: Annotated[float, Field(gt=0, le=8760)] | None = None
    """An instance waiting longer goes on unreviewed (the check is bypassed), in hours."""
    queue_limit: Annotated[int, Field(ge=0, le=limits.MAX_ARRIVALS_PER_REPLICATION)] | None = None
    """An instance arriving to a longer queue goes on unreviewed."""


class Detection(Strict):
    """How silent failures surface, and how their cost grows until they do."""

    mean_days: Annotated[float, Field(gt=0, le=36_500)] = 30.0
    """Mean time (exponential) until a silent failure surfaces, in days."""
    growth_per_day: Annotated[float, Field(ge=0, le=1.0, examples=[0.01])] = 0.0
    """Loss grows by this *fraction* of itself per day undetected, linearly (0.01: +1% a day, so +30% after 30
    days); not an amount of money. At most 1 (+100% a day)."""


class SLA(Strict):
    """A service-level target and what missing it costs."""

    hours: Annotated[float, Field(gt=0, le=87_600)]
    """Target time from arrival to completion, in hours."""
    breach_cost: Money
    """Cost per instance completed late, in the scenario's currency."""


class Rework(Strict):
    """A failed action comes back as a task for a human step (misrouted ticket, renegotiation)."""

    step: Identifier
    """The verify step whose reviewers take the task."""
    minutes: Annotated[float, Field(gt=0, le=525_600)]
    """Mean time the task takes a reviewer, in minutes."""
    delay_hours: Annotated[float, Field(ge=0, le=87_600)] = 0.0
    """Hours from the failure until the task reaches the reviewers."""
    cost: Money = 0.0
    """Cost of each rework task, in the scenario's currency."""


class Timeline(Strict):
    """Time dynamics for `--engine timeline`: volumes, reviewers, detection delays, SLAs and rework."""

    horizon_days: Annotated[int, Field(ge=1, le=3660, examples=[365])]
    """Days simulated (at most ten years)."""
    replications: Annotated[int, Field(ge=1, le=limits.MAX_REPLICATIONS)] = 10
    """Independent runs of the whole horizon (loss quantiles and CIs come from them)."""
    arrivals: Arrivals
    """How many instances arrive, and when."""
    reviewers: dict[Identifier, Reviewers] = {}
    """Per verify step: the humans who staff it (a step not listed reviews instantly)."""
    detection: Detection = Detection()
    """How silent failures surface, and how their cost grows meanwhile."""
    sla: SLA | None = None
    """An optional service-level target on time from arrival to completion."""
    rework: dict[Identifier, Rework] = {}
    """Per act step: the rework task its failure creates."""

    def volume_per_month(self) -> float:
        """Mean instances arriving per month (365.25 / 12 days) over the horizon: the scenario's volume."""
        return float(self.arrivals.daily_means(self.horizon_days).mean()) * DAYS_PER_MONTH

    def month_volumes(self) -> np.ndarray:
        """Mean instances arriving in each month of the horizon, with its weekdays and bursts: the horizon cut
        into its number of months rounded (at least one) of equal length, each window's arrivals scaled to
        DPM days (DAYS_PER_MONTH; a window's boundary day counted by the share of it inside), so that every day
        of the horizon is in one month and their mean is `volume_per_month`."""
        daily = self.arrivals.daily_means(self.horizon_days)
        months = max(1, round(self.horizon_days / DAYS_PER_MONTH))
        arrived = np.concatenate([[0.0], np.cumsum(daily)])  # by the start of each day; linear within a day
        edges = np.linspace(0.0, self.horizon_days, months + 1)
        per_window = np.diff(np.interp(edges, np.arange(len(arrived)), arrived))
        return per_window * (DAYS_PER_MONTH * months / self.horizon_days)

class Variant(Strict):
    """The scenario with some parameters changed; `set` maps dotted paths to new values."""

    name: Identifier
    """The variant's name in tables and reports (`base` is the scenario itself)."""
    description: Text = ""
    """Free text shown in reports."""
    set: Annotated[dict[str, Any], Field(min_length=1, examples=[{"retrievers.contract.rates.role_swap": 0.01}])]
    """Dotted paths into the scenario and their new values; steps are addressed by id."""


class Uncertainty(Strict):
    """How an uncertainty run draws the scenario's distributions (`cascade run --uncertainty N` overrides draws)."""

    draws: Annotated[int, Field(ge=2, le=limits.MAX_UNCERTAINTY_DRAWS, examples=[256])]
    """Parameter draws; each is evaluated exactly (analytic engine) or by Monte Carlo with common random numbers."""
    design: Literal["lhs", "sobol"] = "lhs"
    """How draws cover the inputs: Latin hypercube (any number of draws) or scrambled Sobol (a power of 2)."""
    instances_per_draw: Annotated[int, Field(ge=1, le=limits.MAX_INSTANCES)] = 20_000
    """Monte Carlo instances per draw and variant, used only where the analytic engine cannot take the workflow."""


ANSWER_TYPES = ("yes_no", "label", "number", "party")
"""What a document-QA decide step answers: yes or no, one label of a list, a number, or one of the case's parties."""
FilePath = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class AgentCorpus(Strict):
    """The documents the agent's retrieve steps search (every retriever searches this corpus)."""

    path: FilePath
    """A CSV / TSV / JSONL passages file, or a BEIR-layout folder (its corpus.jsonl), relative to the scenario."""
    id_column: ColumnName | None = None
    """The passage id column (default: `id`, else `_id`, else the record number)."""
    text_column: ColumnName = "text"
    """The passage text column."""
    group_column: ColumnName | None = None
    """A column grouping passages (the contract a clause belongs to): a case naming its `group` is searched
    within that group only. Without it, every search covers the whole corpus."""
    replaces_column: ColumnName | None = None
    """A column naming the id of the passage this one replaces: that outdated version is what a `stale` fault
    makes the agent read (outdated versions are not searched otherwise). Without it, `stale` faults are not made."""


class AgentAnswer(Strict):
    """What one decide step answers; the model is asked for it with a JSON schema of this type."""

    type: Literal["yes_no", "label", "number", "party"]
    """`yes_no`, `label` (one of `labels`), `number`, or `party` (one of the case's `<step>.parties`)."""
    labels: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=200)]],
                      Field(max_length=1000)] = []
    """With `label`: the labels to choose from (at least two)."""
    instruction: Text = ""
    """Told to the model before the case's question (how to read the passages, what the answer means)."""


class AgentAction(Strict):
    """What one act step does with the decisions it acts on."""

    decision: Identifier | None = None
    """The decide step it acts on (default: every decide step upstream of it, the action being their answers)."""
    map: dict[Annotated[str, StringConstraints(min_length=1, max_length=200)],
              Annotated[str, StringConstraints(min_length=1, max_length=200)]] = {}
    """With `decision` of type yes_no or label: answer -> action (`{"yes": refund, "no": decline}`); an answer
    not listed takes no action (`none`). Then a case may give the right action in `<act step>.action`."""


class Agent(Strict):
    """The agent engine's document-QA agent for an inline workflow: the user's corpus and cases.

    Each case (one row of `cases`) gives, per decide step D, `D.question`, `D.gold` (the right passage ids,
    separated by `|`) and `D.answer`; optionally `id`, `group` (with the corpus's group_column: the group its
    searches stay within), `D.parties` (type party) and, per act step A with a `map`, `A.action`. A retrieve step searches with the question of the first decide step that reads it."""

    corpus: AgentCorpus
    """The documents searched."""
    cases: FilePath
    """The case file (CSV / TSV / JSONL), relative to the scenario file."""
    k: Annotated[int, Field(ge=1, le=100)] = 3
    """Passages each retrieve step returns to the decide steps reading it."""
    answers: dict[Identifier, AgentAnswer]
    """Per decide step: the type of its answer."""
    actions: dict[Identifier, AgentAction] = {}
    """Per act step (optional): which decision it acts on, and how an answer becomes an action."""


class SweepParameter(Strict):
    """The values one swept parameter takes: exactly one of `grid: [start, stop, count]` (evenly spaced, ends
    included), `values: [...]` (as written; any value the parameter accepts), `range: [low, high]` (drawn by the
    sweep's `design`)."""

    grid: tuple[float, float, Annotated[int, Field(ge=1, le=limits.MAX_SWEEP_POINTS)]] | None = None
    """[start, stop, count]: `count` evenly spaced values from start to stop (`[0, 0.05, 11]`: 0, 0.005, ...)."""
    values: Annotated[list[Any], Field(min_length=1, max_length=limits.MAX_SWEEP_POINTS)] | None = None
    """The values in the order written (numbers, or text where the parameter is text)."""
    range: tuple[float, float] | None = None
    """[low, high] for a random or Latin-hypercube design (`design:`)."""

    @model_validator(mode="before")
    @classmethod
    def _grid_of_three(cls, data: Any) -> Any:
        grid = data.get("grid") if isinstance(data, dict) else None
        if isinstance(grid, list | tuple) and len(grid) != 3:
            raise ValueError(f"grid is [start, stop, count] (e.g. [0, 0.05, 11]), got {len(grid)} value(s)"
                             + ("; an empty grid sweeps nothing" if not grid else ""))
        return data

    @model_validator(mode="after")
    def _one_shape(self) -> SweepParameter:
        given = [k for k in ("grid", "values", "range") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a swept parameter is exactly one of grid: [start, stop, count], values: [...], "
                             f"range: [low, high]{'' if not given else ', not ' + ' and '.join(given)}")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range is [low, high] with low < high, got {list(self.range)}")
        return self


class SweepDesign(Strict):
    """How the `range` parameters of a sweep are drawn together."""

    kind: Literal["random", "lhs"]
    """`random` (independent uniforms) or `lhs` (a Latin hypercube: every range cut into `points` equal strata)."""
    points: Annotated[int, Field(ge=1, le=limits.MAX_SWEEP_POINTS)]
    """How many points the design draws (seeded by the scenario's seed)."""


class Sweep(Strict):
    """A study: the scenario evaluated at many parameter points (`cascade sweep`). Grids and lists are crossed
    with each other, `zip` groups move together, a `design` draws the `range` parameters; every point runs with
    every engine and every variant (the point changes the scenario; each variant's `set` applies on top)."""

    parameters: Annotated[dict[str, SweepParameter], Field(min_length=1, examples=[
        {"retrievers.contract.rates.role_swap": {"grid": [0, 0.05, 11]}}])]
    """Dotted paths (as in a variant's `set`) and the values each takes."""
    zip: list[list[str]] = []
    """Groups of parameters that move together (same number of values), instead of being crossed."""
    design: SweepDesign | None = None
    """Draws the `range` parameters (random or Latin hypercube)."""
    engines: Annotated[list[Identifier], Field(min_length=1)] = ["analytic"]
    """Engines every point runs with: analytic, monte_carlo, timeline, agent."""
    instances: Annotated[int, Field(ge=1, le=limits.MAX_INSTANCES)] | None = None
    """Instances per variant of each sampled point (default: the engine's default for the scenario)."""


class Scenario(Strict):
    """One scenario file: a workflow, its retrievers, costs, volume, seed, and optional variants."""

    schema_version: Literal[1]
    """Version of this file format: 1."""
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    """The scenario's name (the default output folder is runs/<name>)."""
    description: Text = ""
    """Free text shown in reports."""
    seed: Annotated[int, Field(ge=0, le=limits.MAX_SEED)]
    """Seed of every random draw: the same seed gives identical tables."""
    instances: Annotated[int, Field(ge=1, le=limits.MAX_INSTANCES, examples=[100_000])] = 100_000
    """Default number of instances per variant for a Monte Carlo run (`--instances` overrides); `1e6` works."""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    """ISO 4217 code of every amount in the file (EUR, USD, ...)."""
    error_types: list[Identifier] = []
    """Retrieval error types beyond the built-in taxonomy."""
    difficulty: Difficulty = Difficulty()
    """Correlation of errors on the same instance (hard instances stay hard)."""
    retrievers: dict[Identifier, Retriever]
    """Named retrievers: `kind: injected` with rates, or `kind: measured` with a profile or corpus."""
    workflow: Workflow
    """The steps of the agent, inline or a built-in workflow."""
    costs: dict[Identifier, ActCost]
    """Per act step id: what its failure and escalation cost, in `currency`."""
    timeline: Timeline | None = None
    """Time dynamics for `--engine timeline`."""
    variants: Annotated[list[Variant], Field(max_length=limits.MAX_VARIANTS)] = []
    """Alternatives to compare with the scenario itself (a tuned retriever, another reviewer count)."""
    sweep: Sweep | None = None
    """A study over parameter points (`cascade sweep`; `cascade run` ignores it)."""
    uncertainty: Uncertainty | None = None
    """Run every `cascade run` of this scenario with an uncertainty analysis (`--uncertainty N` does it once)."""
    agent: Agent | None = None
    """For `--engine agent` with inline steps: the document-QA agent over your corpus and cases."""
    distributions: dict[str, Distribution] = {}
    """Filled by loading: the distributions written in place of numbers, by parameter path
    (`retrievers.contract.rates.role_swap`); the number in place is their mean (do not write this key)."""

    def step(self, step_id: str) -> RetrieveStep | DecideStep | VerifyStep | ActStep:
        """The step with this id."""
        for s in self.workflow.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


UNCERTAIN_FIELDS = {"InjectedRetriever": {"rates": 1},
                    "DecideStep": {"base_error_rate": 0, "susceptibility": 1, "susceptibility_by_input": 2},
                    "VerifyStep": {"catch": 1, "false_alarm": 0},
                    "ActCost": {"failure_loss": 0, "detected_loss": 0, "escalation_cost": 0}}
"""Where a file may write a distribution instead of a number (`sim.scenario.distributions` takes them out), by
model and field; the depth says how many mappings lie between the field and its numbers."""


def json_schema() -> dict[str, Any]:
    """JSON Schema of scenario files, for editors' autocompletion (a distribution is accepted wherever the loader
    accepts one)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cascadesim scenario"
    ref = {"$ref": "#/$defs/Distribution"}

    def either(node: dict[str, Any]) -> dict[str, Any]:
        if "anyOf" in node:
            return {**node, "anyOf": [*node["anyOf"], ref]}
        kept = {k: node[k] for k in ("description", "title", "default", "examples") if k in node}
        return {**kept, "anyOf": [{k: v for k, v in node.items() if k not in kept}, ref]}

    def at_depth(node: dict[str, Any], depth: int) -> dict[str, Any]:
        if depth == 0:
            return either(node)
        out = dict(node)
        for key in ("additionalProperties",):
            if isinstance(out.get(key), dict):
                out[key] = at_depth(out[key], depth - 1)
        if isinstance(out.get("patternProperties"), dict):
            out["patternProperties"] = {k: at_depth(v, depth - 1) for k, v in out["patternProperties"].items()}
        return out

    for model, fields in UNCERTAIN_FIELDS.items():
        props = schema["$defs"][model]["properties"]
        for name, depth in fields.items():
            props[name] = at_depth(props[name], depth)
    return schema
