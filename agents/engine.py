"""The agent engine: the scenario's built-in workflow run as a LangGraph agent over real text.

Each instance is one episode (a contract, a ticket) drawn from the domain. The engine draws every chance event
up front from the same keyed streams as the Monte Carlo engine (difficulty, which retrieval fault, reasoning
slips, reviewer attention, false alarms), puts them in the instance's state, and invokes the compiled graph;
the nodes retrieve live from Chroma, read through the policy and act. Their records are compared with ground
truth and mapped onto the common trace schema (`sim.trace.observed`), so tallies, summary, report and notebooks
are the same as for the other engines.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.core.errors import CascadeError
from sim.core.seeding import block_segments, uniforms
from sim.engines.monte_carlo.kernel import Kernel
from sim.engines.registry import EngineSpec
from sim.engines.request import RunRequest
from sim.model.plan import Plan, compile_plan
from sim.retrieval.store import StoreTimeouts
from sim.scenario.model import Scenario
from sim.sweeps.cluster import WORKER_WAIT_SECONDS
from sim.trace.engine_output import EngineOutput
from sim.trace.observed import block_trace, instance_tokens
from sim.trace.record import count_block, instance_rows, rows_kept
from sim.trace.schema import PASS_K, instance_outcomes, instance_table
from sim.trace.tally import Tally

DEFAULT_AGENT_INSTANCES = 500
"""Instances per variant when neither the caller nor the CLI says (a scenario's count is sized for the fast
engines: hundreds of thousands)."""

AGENT_PASS_K_SAMPLE = 40
"""Instances per variant that are attempted PASS_K times for pass^k (each attempt is a full agent run)."""

AGENT_WORKFLOWS = ("contract_review", "ticket_triage")


@dataclass(frozen=True)
class AgentSettings:
    """How the agent engine runs: which policy reads, which embedding model and store retrieve, which text."""

    policy: str = "simulated"
    """"simulated" (the offline reader) or "openai" (any OpenAI-compatible endpoint: see `llm`)."""
    llm: object | None = None
    """`agents.openai_policy.LLMSettings` for the openai policy."""
    model: str | None = None
    """Embedding model: a local sentence-transformers directory or cached hub name (default: packaged MiniLM)."""
    store: str | None = None
    """Chroma: None (embedded, in the cache folder), a folder, or http://HOST:PORT of a `chroma run` server."""
    store_timeouts: StoreTimeouts = StoreTimeouts()
    """How long to wait on a Chroma server (seconds to connect, and for each answer)."""
    tickets: Path | None = None
    """Ticket triage: a Banking77-style CSV (text,category) instead of the built-in messages."""
    contracts: int = 60
    """Contract review: how many contracts of the built-in corpus are episodes."""
    cache_dir: Path | None = None
    checkpoint: Path | None = None
    """Folder where completed instances are kept so that a re-run continues (`agents.checkpoint`); None: none."""
    otlp_endpoint: str | None = None
    """OTLP/HTTP traces URL to send each instance's spans to as it finishes (`sim.otel.live`); None: none."""
    client: object | None = None
    """A Dask client: the instances run on its workers (`agents.distribute`), the tables as in one process."""
    worker_wait: float = WORKER_WAIT_SECONDS
    """With a client: how long to wait for a worker when its scheduler has none left, in seconds."""

    @classmethod
    def from_options(cls, options) -> AgentSettings:
        """Settings from `run(..., options=...)`: an AgentSettings as it is, or a mapping of the CLI's agent
        options (policy, llm_base_url, llm_model, llm_timeout, llm_max_calls, llm_max_tokens, tickets, model,
        store, store_timeout, store_connect_timeout); None gives the defaults (the simulated reader)."""
        if isinstance(options, AgentSettings):
            return options
        given = {k: v for k, v in dict(options or {}).items() if v is not None}
        known = {"policy", "llm_base_url", "llm_model", "llm_timeout", "llm_max_calls", "llm_max_tokens",
                 "llm_concurrency", "llm_rpm", "llm_tpm", "tickets", "model", "store", "store_timeout",
                 "store_connect_timeout", "checkpoint", "otlp_endpoint", "client", "worker_wait"}
        if unknown := sorted(set(given) - known):
            raise CascadeError(f"unknown agent engine options {unknown}; known: {sorted(known)}")
        policy = str(given.get("policy", "simulated"))
        llm_keys = ("llm_base_url", "llm_model", "llm_max_calls", "llm_max_tokens", "llm_concurrency", "llm_rpm",
                    "llm_tpm")
        llm = None
        if policy == "openai":
            from agents.openai_policy import LLMSettings

            llm = LLMSettings.from_env(base_url=given.get("llm_base_url"), model=given.get("llm_model"),
                                       timeout=given.get("llm_timeout", 30.0), max_calls=given.get("llm_max_calls"),
                                       max_tokens_total=given.get("llm_max_tokens"),
                                       concurrency=given.get("llm_concurrency", 8),
                                       requests_per_minute=given.get("llm_rpm"),
                                       tokens_per_minute=given.get("llm_tpm"))
        elif any(k in given for k in llm_keys):
            raise CascadeError("--llm-* options need --policy openai")
        tickets = given.get("tickets")
        if tickets is not None and not Path(tickets).is_file():
            raise CascadeError(f"--tickets {tickets}: no such file (a CSV with the columns text,category)")
        timeouts = StoreTimeouts(connect=given.get("store_connect_timeout", StoreTimeouts.connect),
                                 read=given.get("store_timeout", StoreTimeouts.read))
        checkpoint = given.get("checkpoint")
        endpoint = given.get("otlp_endpoint")
        if endpoint is not None:
            from sim.otel.export import check_endpoint

            check_endpoint(str(endpoint))
        return cls(policy=policy, llm=llm, model=given.get("model"), store=given.get("store"), store_timeouts=timeouts,
                   tickets=Path(tickets) if tickets is not None else None,
                   checkpoint=Path(checkpoint) if checkpoint is not None else None, otlp_endpoint=endpoint,
                   client=given.get("client"), worker_wait=float(given.get("worker_wait", WORKER_WAIT_SECONDS)))


def build_domain(scenario: Scenario, settings: AgentSettings):
    from agents.contract_review import contract_review_domain
    from agents.ticket_triage import ticket_triage_domain

    if scenario.agent is not None:  # the user's own workflow, corpus and cases
        from agents.document_qa import document_qa_domain

        if settings.tickets is not None:
            raise CascadeError(f"--tickets {settings.tickets}: scenario '{scenario.name}' reads its cases from "
                               f"{scenario.agent.cases} (remove --tickets)")
        return document_qa_domain(scenario)
    name = scenario.workflow.builtin or _builtin_with_steps(scenario)
    if settings.tickets is not None and name != "ticket_triage":
        raise CascadeError(f"--tickets {settings.tickets}: tickets are the text of the ticket_triage workflow; "
                           f"scenario '{scenario.name}' runs {name or 'an inline workflow'} (remove --tickets)")
    if name == "contract_review":
        return contract_review_domain(settings.contracts)
    if name == "ticket_triage":
        return ticket_triage_domain(settings.tickets)
    where = f"the built-in workflow '{name}'" if name else "an inline workflow"
    raise CascadeError(f"scenario '{scenario.name}' uses {where}; the agent engine runs the built-in workflows "
                       f"{' and '.join(AGENT_WORKFLOWS)} over real text, or an inline workflow as a document-QA "
                       "agent over your corpus and cases (add an `agent:` block: corpus, cases, answers). For your "
                       "own LangGraph app, record its runs with agents.bridge and calibrate from them.")


def _builtin_with_steps(scenario: Scenario) -> str | None:
    """The agent workflow whose steps an inline workflow has (a resolved or calibrated scenario), if any."""
    from sim.core.yaml_source import read_yaml_file
    from sim.scenario.load import BUILTIN_DIR

    ids = {s.id for s in scenario.workflow.steps}
    for name in AGENT_WORKFLOWS:
        packaged, _ = read_yaml_file(BUILTIN_DIR / f"{name}.yaml")
        if ids == {s["id"] for s in packaged["steps"]}:
            return name
    return None


def make_policy(settings: AgentSettings, domain=None):
    """The policy of `settings`; "simulated" is the domain's own offline reader when it has one."""
    if settings.policy == "simulated" and getattr(domain, "reader", None) is not None:
        return domain.reader()
    if settings.policy == "simulated":
        from agents.reader import SimulatedReader

        return SimulatedReader()
    if settings.policy == "openai":
        from agents.openai_policy import LLMSettings, OpenAIPolicy

        return OpenAIPolicy(settings.llm if isinstance(settings.llm, LLMSettings) else LLMSettings.from_env())
    raise CascadeError(f"unknown policy '{settings.policy}'; choose simulated or openai")


@dataclass
class _Chance:
    """One block segment's draws for one variant (arrays over its instances)."""

    level: np.ndarray | None
    fault: dict[str, list[str | None]]
    slip: dict[str, np.ndarray]
    notice: dict[tuple[str, str], np.ndarray]
    alarm: dict[str, np.ndarray]

    def instance(self, j: int, instance: int):
        from agents.nodes import InstanceChance

        return InstanceChance(instance, {k: v[j] for k, v in self.fault.items()},
                              {k: bool(v[j]) for k, v in self.slip.items()},
                              {k: float(v[j]) for k, v in self.notice.items()},
                              {k: float(v[j]) for k, v in self.alarm.items()})


def draw_chance(kernel: Kernel, block: int, start: int, stop: int, slips: bool, attempt: int = 0) -> _Chance:
    """Every chance event of instances start..stop-1 of `block`, from the Monte Carlo engine's streams
    (attempt > 0: a repeated attempt at the same instances: fresh draws, same difficulty)."""
    plan, n = kernel.plan, stop - start

    def draw(purpose: str) -> np.ndarray:
        return uniforms(plan.seed, purpose, block, start, stop, attempt)

    level = plan.levels.sample(uniforms(plan.seed, "difficulty", block, start, stop)) \
        if plan.levels.count > 1 else None
    chance = _Chance(level, {}, {}, {}, {})
    for s in plan.steps:
        if s.kind == "retrieve":
            codes = kernel.retrieval_errors(s, draw, level, n)
            types = kernel.code_type[codes]
            chance.fault[s.id] = [plan.types[t] if t >= 0 else None for t in types.tolist()]
        elif s.kind == "decide":
            base = s.base_error[0] if level is None else s.base_error[level]
            chance.slip[s.id] = (draw(f"reason/{s.id}") < base) if slips else np.zeros(n, dtype=bool)
        elif s.kind == "verify":
            for src in s.inputs:
                src_id = plan.steps[src].id
                chance.notice[(s.id, src_id)] = draw(f"catch/{s.id}/{src_id}")
            chance.alarm[s.id] = draw(f"false_alarm/{s.id}")
    return chance


class AgentEngine:
    """The pieces of an agent run, built once: domain, live search, policy, and per variant a plan and a
    compiled graph. `run` runs instances; `run_instance` runs one episode with given chance (tests, bench)."""

    def __init__(self, scenario: Scenario, variants: dict[str, Scenario], settings: AgentSettings,
                 plans: dict[str, Plan] | None = None):
        from agents.graph import build_graph
        from agents.live_search import LiveSearch
        from sim.retrieval.embedding import Embedder, default_cache_dir
        from sim.retrieval.store import StoreLocation

        self.scenario, self.settings = scenario, settings
        self.domain = build_domain(scenario, settings)
        cache = settings.cache_dir or default_cache_dir()
        self.location = StoreLocation.parse(settings.store, cache, settings.store_timeouts)
        self.embedder = Embedder(settings.model, cache_dir=cache)
        self.search = LiveSearch(self.domain, self.embedder, self.location)
        self.policy = make_policy(settings, self.domain)
        self.plans = plans or {name: compile_plan(s, name, all_roots=True) for name, s in variants.items()}
        self.graphs = {name: build_graph(s, self.domain, self.search, self.policy) for name, s in variants.items()}
        self.kernels = {name: Kernel(plan) for name, plan in self.plans.items()}
        self.checkpoint = None
        if settings.checkpoint is not None:
            from agents.checkpoint import Checkpoint, run_key

            self.checkpoint = Checkpoint(settings.checkpoint, run_key(self._identity()), self._passages())

    def _passages(self) -> dict:
        """Every store's passages by id, but for ids two stores hold with different text (kept whole then)."""
        seen: dict = {}
        clash = set()
        for store in self.domain.stores.values():
            for pid, passage in store.by_id.items():
                if seen.setdefault(pid, passage) != passage:
                    clash.add(pid)
        return {pid: p for pid, p in seen.items() if pid not in clash}

    def _identity(self) -> dict:
        """What decides an instance's records (the checkpoint's key): not the instance count, the store's
        address or the concurrency, which change none."""
        s = self.settings
        tickets = s.tickets.read_bytes() if s.tickets is not None else b""
        return {"scenario": self.scenario.model_dump(mode="json"), "workflow": self.domain.workflow,
                "policy": self.policy.name, "llm": getattr(getattr(self.policy, "settings", None), "temperature", None),
                "tickets": hashlib.sha256(tickets).hexdigest(), "contracts": s.contracts,
                "episodes": len(self.domain.episodes), "embedding": self.embedder.key,
                **({"files": self.domain.fingerprint} if self.domain.fingerprint else {})}

    def picks(self, block: int, lo: int, hi: int) -> list[int]:
        """The episode of each instance lo..hi-1 of seeding block `block`."""
        return episode_picks(self.scenario.seed, len(self.domain.episodes), block, lo, hi)

    def chance(self, variant: str, block: int, lo: int, hi: int, attempt: int = 0) -> _Chance:
        """The chance events of instances lo..hi-1 of `block` for `variant` (attempt > 0: a repeated attempt)."""
        return draw_chance(self.kernels[variant], block, lo, hi, self.policy.name == "simulated", attempt)

    def run_instance(self, variant: str, episode, chance) -> dict:
        """The records of one episode run through the variant's graph (a fresh state)."""
        return self.graphs[variant].invoke({"episode": episode, "chance": chance, "outputs": {}})["outputs"]

    def run(self, n: int, max_rows: int, progress: Callable[[int, int], None] | None = None,
            pass_k_sample: int = AGENT_PASS_K_SAMPLE) -> EngineOutput:
        """Run `n` instances of every variant; the Result has the common tables plus `agent_trace` (one row
        per instance x step: what each node read, decided and did, and what it should have). `progress(done,
        total)` after every instance run; a `progress.detail(counts)` method, if it has one, also gets the model
        calls sent, answers from the cache and tokens so far (a model policy only). The first
        `pass_k_sample` instances are attempted PASS_K times (same episode and difficulty, fresh draws) for
        pass^k."""
        from agents.trace_rows import trace_rows

        plans, domain, seed = self.plans, self.domain, self.scenario.seed
        tallies = {name: Tally(plan) for name, plan in plans.items()}
        tables: dict[str, list[pa.Table]] = {name: [] for name in plans}
        trace: list[dict] = []
        faults = {name: {s.id: {"drawn": Counter(), "applied": Counter()} for s in plan.steps
                         if s.kind == "retrieve"} for name, plan in plans.items()}
        invalid: Counter[str] = Counter()
        slips = self.policy.name == "simulated"
        pass_n = min(n, pass_k_sample)
        total = (n + pass_n * (PASS_K - 1)) * len(plans)
        done = [0]
        live = self._live(n)

        detail = getattr(progress, "detail", None)
        stats = getattr(self.policy, "stats", None)

        def tick() -> None:  # after every instance: with a real model each one takes seconds
            done[0] += 1
            if progress:
                progress(done[0], total)
                if detail and stats is not None:
                    detail({"calls": stats["calls"], "cached": stats["cached"], "tokens": stats["total_tokens"]})

        for first, block, lo, hi in block_segments(0, n):
            picks = episode_picks(seed, len(domain.episodes), block, lo, hi)
            base_out = None
            for name, plan in plans.items():
                chance = draw_chance(self.kernels[name], block, lo, hi, slips)
                runs = self._run_episodes(name, picks, chance, first, tick)
                for j, (episode, records, tokens) in enumerate(runs):
                    _count(records, faults[name], invalid, name)
                    rows = (trace_rows(plan, domain, episode, first + j, records, tokens)
                            if first + j < max_rows or live is not None else [])
                    if first + j < max_rows:
                        trace += rows
                    if live is not None:
                        live.emit(_instance_row(plan, tokens, chance.level, j, first), {r["step"]: r for r in rows})
                out = count_block(plan, tallies[name], tables[name],
                                  block_trace(plan, [tokens for *_, tokens in runs], chance.level), first, max_rows,
                                  pass_n, base_out, partial(self._attempt, name, block, lo, first, picks, slips, tick))
                if name == "base":
                    base_out = out
        if progress:
            progress(total, total)
        described = self._describe(faults, invalid)
        if live is not None:
            described["live_spans"] = live.close()
        return EngineOutput(engine="agent", plans=plans, instances=n, tallies=tallies,
                            instances_table=instance_rows(tables), instance_rows=rows_kept(n, max_rows),
                            extra={"agent": described},
                            tables={"agent_trace": pd.DataFrame(trace)})

    def _live(self, n: int):
        """Live spans to the settings' endpoint, or None."""
        if self.settings.otlp_endpoint is None:
            return None
        from sim.otel.live import LiveSpans
        from sim.otel.spans import SpanBuilder

        header = {"scenario": self.scenario.name, "engine": "agent", "seed": self.scenario.seed, "instances": n,
                  "currency": self.scenario.currency}
        steps = [(s.id, s.kind, getattr(s, "retriever", None)) for s in self.scenario.workflow.steps]
        return LiveSpans(self.settings.otlp_endpoint, SpanBuilder(header, steps, llm=self.policy.name == "openai"))

    def _run_episodes(self, variant: str, picks: list[int], chance: _Chance, first: int, tick,
                      attempt: int = 0) -> list[tuple]:
        """(episode, records, tokens) of each picked episode, run with its instance's chance, in instance
        order whatever order they finish in (`run_concurrently`); instances the checkpoint holds are read
        back instead of run."""
        from agents.concurrency import run_concurrently
        from agents.trace_rows import observe

        plan, checkpoint = self.plans[variant], self.checkpoint

        def one(j: int) -> tuple:
            episode = self.domain.episodes[picks[j]]
            kept = checkpoint.load(variant, attempt, first + j) if checkpoint else None
            if kept is not None and kept[0] == picks[j]:
                records = kept[1]
            else:
                records = self.run_instance(variant, episode, chance.instance(j, first + j))
                if checkpoint:
                    checkpoint.save(variant, attempt, first + j, picks[j], records)
            return episode, records, instance_tokens(plan, observe(self.domain, episode, records))

        return run_concurrently(one, len(picks), getattr(self.policy, "concurrency", 1),
                                getattr(self.policy, "stop", None), tick)

    def _attempt(self, variant: str, block: int, lo: int, first: int, picks: list[int], slips: bool, tick,
                 attempt: int, m: int):
        """The trace of a repeated attempt at a block's first m episodes: same episodes and difficulty, fresh
        draws (pass^k)."""
        again = draw_chance(self.kernels[variant], block, lo, lo + m, slips, attempt)
        runs = self._run_episodes(variant, picks[:m], again, first, tick, attempt)
        return block_trace(self.plans[variant], [tokens for *_, tokens in runs], again.level)

    def _describe(self, faults: dict, invalid: Counter) -> dict:
        return {
            "workflow": self.domain.workflow, "policy": self.policy.name, "episodes": len(self.domain.episodes),
            "tickets": str(self.settings.tickets) if self.settings.tickets else None, **self.domain.about,
            "embedding_model": self.embedder.name, "store": self.location.describe(),
            "live_searches": self.search.searches,
            "faults": {name: {step: {k: dict(sorted(c.items())) for k, c in counts.items()}
                              for step, counts in per.items()} for name, per in faults.items()},
            "invalid_replies": dict(invalid),
            **({"llm": dict(self.policy.stats)} if hasattr(self.policy, "stats") else {}),
            **({"resumed_instances": self.checkpoint.reused} if self.checkpoint else {}),
            "note": "faults drawn but not applied could not be made on that text (no site for the edit, no older "
                    "version); `cascade calibrate` measures the realised rates",
        }


def episode_picks(seed: int, episodes: int, block: int, lo: int, hi: int) -> list[int]:
    """The episode each instance lo..hi-1 of `block` runs (a slice of a longer draw equals that draw's slice)."""
    return np.minimum((uniforms(seed, "agent/episode", block, lo, hi).astype(np.float64) * episodes)
                      .astype(np.int64), episodes - 1).tolist()


def run_agent(request: RunRequest) -> EngineOutput:
    """`--engine agent`: every variant through its LangGraph agent (see AgentEngine.run); with a Dask client in
    the settings, the instances run on its workers first (`agents.distribute`) and this run reads them back."""
    settings = AgentSettings.from_options(request.options)
    engine = AgentEngine(request.scenario, request.variants, settings, request.plans)
    if settings.client is None:
        return engine.run(request.instances, request.max_instance_rows, request.progress)
    from agents.distribute import run_distributed

    return run_distributed(engine, request.variants, request.instances, request.max_instance_rows, request.progress,
                           AGENT_PASS_K_SAMPLE)


def check_files(scenario: Scenario) -> str:
    """`cascade validate` on a scenario with an `agent:` block: its corpus and case file read and checked as a
    run reads them (nothing embedded, no model); what was read."""
    if scenario.agent is None:
        return ""
    from agents.document_qa import document_qa_domain

    domain = document_qa_domain(scenario)
    passages = {p.id for store in domain.stores.values() for p in store.passages}
    return (f"agent: {len(domain.episodes):,} cases in {scenario.agent.cases}, {len(passages):,} current passages "
            f"in {scenario.agent.corpus.path}")


ENGINE = EngineSpec("agent", run_agent, "LangGraph agents over real text (simulated reader or an OpenAI-compatible "
                    "model)", all_roots=True,
                    default_instances=lambda scenario: min(scenario.instances, DEFAULT_AGENT_INSTANCES),
                    distributes=True, check=check_files)
"""Registered under the entry-point group `cascadesim.engines` (pyproject.toml), so `sim` finds it by name."""


def _instance_row(plan: Plan, tokens, level, j: int, first: int) -> SimpleNamespace:
    """One instance's row of instances.parquet, as the block's table will hold it (for live spans)."""
    one = block_trace(plan, [tokens], None if level is None else level[j:j + 1])
    table = instance_table(plan, one, instance_outcomes(plan, one), first + j, 1)
    return SimpleNamespace(**table.to_pylist()[0])


def _count(records, faults: dict, invalid: Counter, variant: str) -> None:
    from agents.domain import Decided, Retrieved

    for step, rec in records.items():
        if isinstance(rec, Retrieved) and rec.fault:
            faults[step]["drawn"][rec.fault] += 1
            faults[step]["applied"][rec.fault] += rec.applied
        elif isinstance(rec, Decided) and rec.invalid:
            invalid[variant] += 1
