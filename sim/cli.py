"""The `cascade` command line. Exit codes: 0 success, 2 invalid input (the message names the place), 1 bug."""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from sim.core import limits
from sim.core.errors import CascadeError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Simulate how retrieval errors cascade through agent workflows into wrong actions, "
                       "and what that costs.")
# No markup and no highlighting: messages carry names, paths and text that users wrote (`[/x]` must print as
# written, not crash the printer); styles are passed explicitly.
# Lines are not wrapped either (a path in a message must stay whole when piped); tables fit the width.
out_console = Console(markup=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


class EngineName(StrEnum):
    monte_carlo = "monte_carlo"
    analytic = "analytic"
    timeline = "timeline"
    agent = "agent"


class PolicyName(StrEnum):
    simulated = "simulated"
    openai = "openai"


@contextmanager
def _user_errors():
    """User mistakes exit 2 with their message; anything else is our bug and exits 1."""
    try:
        yield
    except CascadeError as exc:
        err_console.print(Text.assemble(("error:", "bold red"), f" {exc}"), soft_wrap=True)
        raise typer.Exit(2) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception:  # noqa: BLE001 - the last line of defence: report, do not hide
        err_console.print(Text.assemble(("internal error", "bold red"), " (a bug in cascadesim; please report it "
                                        "with this trace):"), soft_wrap=True)
        err_console.print(traceback.format_exc(), highlight=False, markup=False)
        raise typer.Exit(1) from None


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: runs/<scenario name>).")] = None,
    instances: Annotated[int | None, typer.Option("--instances", "-n", min=1, max=limits.MAX_INSTANCES, help="Instances per variant (default: the scenario's).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, max=limits.MAX_SEED, help="Override the scenario's seed.")] = None,
    engine: Annotated[EngineName, typer.Option("--engine", "-e", help="monte_carlo (sampled, with CIs), analytic (exact) timeline (SimPy: queues, SLAs, loss over time) or agent (LangGraph agents over real text; see --policy).")] = EngineName.monte_carlo,
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, max=limits.MAX_CHUNK, help="Instances held in memory at once; never changes results.")] = 262_144,
    max_instance_rows: Annotated[int, typer.Option("--max-instance-rows", min=0, max=limits.MAX_INSTANCE_ROWS, help="Cap on per-instance rows written per variant (a sample beyond it).")] = 1_000_000,
    workers: Annotated[int, typer.Option("--workers", "-w", min=0, max=limits.MAX_WORKERS, help="Processes for Monte Carlo; 0: one per core for runs of 4M+ instance-variants. Never changes results.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the output folder.")] = False,
    policy: Annotated[PolicyName | None, typer.Option("--policy", help="Agent engine: who reads the passages: simulated (offline reader, default) or openai (any OpenAI-compatible endpoint).", rich_help_panel="Agent engine")] = None,
    llm_base_url: Annotated[str | None, typer.Option("--llm-base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL).", rich_help_panel="Agent engine")] = None,
    llm_model: Annotated[str | None, typer.Option("--llm-model", help="Model name at the endpoint (default: $OPENAI_MODEL).", rich_help_panel="Agent engine")] = None,
    llm_timeout: Annotated[float, typer.Option("--llm-timeout", min=0.1, max=3600, help="Seconds per call before a retry.", rich_help_panel="Agent engine")] = 30.0,
    llm_max_calls: Annotated[int | None, typer.Option("--llm-max-calls", min=1, help="Budget: calls that reach the endpoint (cached answers are free).", rich_help_panel="Agent engine")] = None,
    llm_max_tokens: Annotated[int | None, typer.Option("--llm-max-tokens", min=1, help="Budget: total tokens the endpoint reports.", rich_help_panel="Agent engine")] = None,
    tickets: Annotated[Path | None, typer.Option("--tickets", help="Ticket triage: a Banking77-style CSV (text,category) of real customer messages instead of the built-in ones.", rich_help_panel="Agent engine")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Embedding model for live retrieval (default: the packaged all-MiniLM-L6-v2).", rich_help_panel="Agent engine")] = None,
    store: Annotated[str | None, typer.Option("--store", help="Chroma server as http://HOST:PORT, or a folder (default: embedded, in the cache).", rich_help_panel="Agent engine")] = None,
) -> None:
    """Run a scenario and write summary.json, instances.parquet, steps.parquet and the resolved scenario."""
    from sim.engines.registry import get_engine
    from sim.output.console import render_summary
    from sim.output.run_folder import check_out_folder
    from sim.runner import run as run_scenario
    from sim.scenario.load import load_scenario

    with _user_errors():
        loaded = load_scenario(scenario)
        agent_options = {"--policy": policy, "--llm-base-url": llm_base_url, "--llm-model": llm_model,
                         "--llm-max-calls": llm_max_calls, "--llm-max-tokens": llm_max_tokens, "--tickets": tickets,
                         "--model": model, "--store": store}
        given = [name for name, value in agent_options.items() if value is not None]
        if given and engine is not EngineName.agent:
            raise CascadeError(f"{', '.join(given)} only apply to --engine agent")
        options = None
        if engine is EngineName.agent:
            options = {"policy": policy.value if policy else None, "llm_base_url": llm_base_url,
                       "llm_model": llm_model, "llm_timeout": llm_timeout, "llm_max_calls": llm_max_calls,
                       "llm_max_tokens": llm_max_tokens, "tickets": tickets, "model": model, "store": store}
        spec = get_engine(engine.value)
        if instances is None and spec.default_instances is not None:
            instances = spec.default_instances(loaded)
            if not quiet:
                err_console.print(f"{spec.name} engine: {instances} instances per variant (pass --instances "
                                  "for more; the scenario's count is sized for the fast engines)", style="dim")
        n = instances or loaded.instances
        folder = out or Path("runs") / (re.sub(r"[^A-Za-z0-9_.-]+", "_", loaded.name).lstrip(".") or "scenario")
        check_out_folder(folder)  # before the run: refuse a folder it must not replace
        if workers == 0:
            workers = (os.cpu_count() or 1) if n * (1 + len(loaded.variants)) >= 4_000_000 else 1
        show_bar = not quiet and ((engine is EngineName.monte_carlo and n * (1 + len(loaded.variants)) >= 2_000_000)
                                  or engine is EngineName.agent)
        with Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err_console, transient=True, disable=not show_bar) as bar:
            task = bar.add_task("run", total=n)
            result = run_scenario(loaded, instances=instances, seed=seed, engine=engine.value,
                                  chunk_size=chunk_size, max_instance_rows=max_instance_rows, workers=workers,
                                  progress=lambda done, total: bar.update(task, completed=done, total=total),
                                  options=options)
        try:
            result.write(folder)
        except OSError as exc:
            raise CascadeError(f"cannot write the results to {folder}: {exc.strerror or exc}; choose another "
                               "folder with --out") from None
        if quiet:
            out_console.print(str(folder))
            return
        render_summary(result.summary, out_console)
        extra = "".join(f", {name}.parquet" for name in ("timeline", "agent_trace")
                        if getattr(result, name) is not None)
        out_console.print(f"wrote {folder}/ (summary.json, instances.parquet, steps.parquet, attribution.csv, "
                          f"cascade.csv, sensitivity.csv, scenario.yaml{extra}, manifest.json); the HTML report: "
                          f"cascade report {folder}", style="dim")


@app.command()
def validate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.", show_default=False)],
    show: Annotated[bool, typer.Option("--show", help="Print the resolved scenario (built-in steps inline).")] = False,
) -> None:
    """Check a scenario file; every problem is listed with file:line and field path (exit 2 if any)."""
    from sim.scenario.load import dump_scenario_yaml, load_scenario

    with _user_errors():
        s = load_scenario(scenario, measure=False)  # validation embeds nothing
        kinds = [st.kind for st in s.workflow.steps]
        # With --show, stdout is the resolved YAML alone (redirect it to a file); the status goes to stderr.
        status = err_console if show else out_console
        status.print(f"{scenario}: ok — scenario '{s.name}', {len(kinds)} steps ("
                     + ", ".join(f"{kinds.count(k)} {k}" for k in ("retrieve", "decide", "verify", "act"))
                     + f"), {len(s.retrievers)} retrievers, variants: {['base'] + [v.name for v in s.variants]}")
        for name, r in s.retrievers.items():
            if r.kind == "measured" and "pending" in r.measured_with:
                status.print(f"retriever '{name}': {r.measured_with['pending']}")
        if show:
            sys.stdout.write(dump_scenario_yaml(s))
            sys.stdout.flush()


@app.command()
def measure(
    corpus: Annotated[str, typer.Option("--corpus", "-c", help="A built-in corpus (contracts, support) or a CSV / JSONL file of passages.")] = "contracts",
    queries: Annotated[Path | None, typer.Option("--queries", help="CSV / JSONL of queries with their gold passage id (default: the built-in corpus's queries, or keyword rewrites of sampled passages).")] = None,
    id_column: Annotated[str | None, typer.Option("--id-column", help="Passage id column (default: 'id', else the row number).")] = None,
    text_column: Annotated[str, typer.Option("--text-column", help="Passage text column.")] = "text",
    query_column: Annotated[str, typer.Option("--query-column", help="Query text column of --queries.")] = "query",
    gold_column: Annotated[str, typer.Option("--gold-column", help="Gold passage id column of --queries.")] = "gold_id",
    model: Annotated[str | None, typer.Option("--model", "-m", help="sentence-transformers model directory or cached hub name (default: the packaged all-MiniLM-L6-v2).")] = None,
    store: Annotated[str | None, typer.Option("--store", help="Chroma server as http://HOST:PORT, or a folder for the embedded store (default: in the cache).")] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Embedding cache and embedded store (default: $CASCADESIM_CACHE or ~/.cache/cascadesim).")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="Results the agent reads; the gold passage outside them is a topical miss.")] = 5,
    probes: Annotated[int, typer.Option("--probes", min=1, max=limits.MAX_PROBES, help="Probe queries at most.")] = 300,
    seed: Annotated[int, typer.Option("--seed", min=0, max=limits.MAX_SEED, help="Seed for the probe sample and the twin edits.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Profile file to write (default: profiles/<corpus>-<model>.yaml).")] = None,
    retriever: Annotated[str, typer.Option("--retriever", help="dense (embeddings in Chroma), lexical (BM25) or hybrid (both, fused).")] = "dense",
    fusion: Annotated[str, typer.Option("--fusion", help="hybrid: rrf (reciprocal rank fusion) or weighted (min-max normalised scores).")] = "rrf",
    rrf_k: Annotated[int, typer.Option("--rrf-k", min=0, max=100_000, help="hybrid, rrf: the constant k in 1 / (k + rank).")] = 60,
    dense_weight: Annotated[float, typer.Option("--dense-weight", min=0.0, max=1.0, help="hybrid, weighted: weight of the dense score (BM25 gets the rest).")] = 0.5,
    panel: Annotated[list[Path] | None, typer.Option("--panel", help="A BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) to measure broad retrieval on too; repeat for several.")] = None,
    pairs: Annotated[Path | None, typer.Option("--pairs", help="Your contrast pairs (CSV / JSONL: original, contrast, type, optional query, contrast_query): how often the contrast outranks the original, and paired accuracy.")] = None,
) -> None:
    """Measure a retriever's error profile: embed a corpus and structural twins of its passages, index them
    in Chroma (or score them with BM25, or both fused), run probe queries, and write rates per error type
    with CIs, plus broad retrieval (nDCG@10, recall@10; per --panel set nDCG@10, recall@100, MRR@10)."""
    from sim.output.console import render_profile
    from sim.retrieval.beir import read_beir
    from sim.retrieval.embedding import Embedder, default_cache_dir
    from sim.retrieval.measure import ProbeSettings
    from sim.retrieval.measure import measure as run_probe
    from sim.retrieval.pairs import read_pairs
    from sim.retrieval.profile import write_profile
    from sim.retrieval.retrievers import RetrieverSpec
    from sim.retrieval.sources import open_corpus
    from sim.retrieval.store import StoreLocation

    with _user_errors():
        spec = RetrieverSpec(retriever, fusion=fusion, rrf_k=rrf_k, dense_weight=dense_weight)
        chosen = open_corpus(corpus, queries, id_column=id_column, text_column=text_column,
                             query_column=query_column, gold_column=gold_column)
        panel_sets = [read_beir(p) for p in panel or []]
        pair_set = read_pairs(pairs) if pairs is not None else None
        cache = cache_dir or default_cache_dir()
        location = StoreLocation.parse(store, cache)
        embedder = Embedder(model, cache_dir=cache) if spec.needs_embeddings else None
        profile = run_probe(chosen, embedder, location, ProbeSettings(k=k, probes=probes, seed=seed), spec,
                            panel_sets, pair_set)
        label = "bm25" if embedder is None else Path(embedder.name).name + ("-hybrid" if spec.kind == "hybrid" else "")
        target = out or Path("profiles") / f"{chosen.name}-{label}.yaml"
        try:
            write_profile(profile, target)
        except OSError as exc:
            raise CascadeError(f"cannot write the profile to {target}: {exc.strerror or exc}") from None
        render_profile(profile, out_console)
        out_console.print(f"wrote {target}", style="dim")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by `cascade run`.", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write (default: RUN_DIR/report.html; a .md summary goes beside it).")] = None,
) -> None:
    """Write the cascade report: one self-contained HTML file (charts, sensitivity) and a markdown summary."""
    from sim.output.report import report_from_run_dir

    with _user_errors():
        try:
            path = report_from_run_dir(run_dir, out)
        except OSError as exc:
            raise CascadeError(f"cannot write the report: {exc.strerror or exc}") from None
        out_console.print(f"wrote {path} and {path.with_suffix('.md')}")


@app.command()
def calibrate(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by `cascade run SCENARIO --engine agent`.", show_default=False)],
    variant: Annotated[str, typer.Option("--variant", help="Which variant's trace to calibrate from.")] = "base",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Calibrated scenario to write (default: RUN_DIR/calibrated.yaml; calibration.csv goes beside it).")] = None,
    check: Annotated[int, typer.Option("--check", min=0, max=limits.MAX_INSTANCES, help="Run this many Monte Carlo instances of the calibrated scenario (fresh seed) and compare with the agent run; 0: skip.")] = 200_000,
) -> None:
    """Estimate step parameters (retrieval error rates, susceptibility, catch rates, base error rates, with
    CIs) from an agent run's trace and write a scenario the Monte Carlo engine runs at full speed."""
    import json

    from sim.metrics.calibration import agreement, calibrate_run_dir
    from sim.output.run_folder import open_run_folder
    from sim.runner import run as run_scenario

    with _user_errors():
        open_run_folder(run_dir)  # a damaged or mixed folder is refused before anything is read from it
        calibration, target = calibrate_run_dir(run_dir, variant, out)
        table = Table(title=f"calibrated from {run_dir} ({variant})", title_justify="left")
        for col in ("step / retriever", "parameter", "error type", "estimate", "95% CI", "events / trials"):
            table.add_column(col, justify="right" if col in ("estimate", "events / trials") else "left")
        for r in calibration.table.itertuples():
            ci = f"[{r.ci_low:.3f}, {r.ci_high:.3f}]" if r.trials else "not observed"
            table.add_row(r.where, r.parameter, r.error_type, "" if r.estimate is None else f"{r.estimate:.3f}", ci,
                          f"{r.events} / {r.trials}")
        out_console.print(table)
        out_console.print(f"wrote {target} and {target.with_name('calibration.csv')}", style="dim")
        if check:
            agent = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
            agent = agent if variant == "base" else {**agent["variant_results"][variant],
                                                     "instances": agent["instances"]}
            mc = run_scenario(calibration.scenario, instances=check, seed=calibration.scenario.seed + 1).summary
            rows = agreement(agent, mc)
            bad = rows[~rows["ok"]]
            out_console.print(f"Monte Carlo ({check:,} instances, fresh seed) vs the agent run: P(wrong action) "
                              f"{mc['p_failure']:.2%} vs {agent['p_failure']:.2%}; {len(rows) - len(bad)} of "
                              f"{len(rows)} figures agree within the family-wise 99% bound"
                              + ("" if bad.empty else f"; outside: {', '.join(bad['figure'])}")
                              + ". (In-sample: the agent run also fed the calibration; for a fresh check, "
                              "run the agent engine again with another --seed and compare.)")


@app.command()
def finetune(
    corpus: Annotated[str, typer.Option("--corpus", "-c", help="Built-in corpus (contracts, support) to train and evaluate on.")] = "contracts",
    holdout: Annotated[str, typer.Option("--holdout", help="Comma-separated topics kept out of training and used for evaluation.")] = "renewal,governing_law",
    minutes: Annotated[float, typer.Option("--minutes", min=0.05, max=10_080, help="Training budget for both models together, in minutes.")] = 10.0,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, max=1_000_000, help="Optimiser steps per model at most.")] = 200,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2, max=4096, help="Triplets per step (in-batch negatives).")] = 16,
    seed: Annotated[int, typer.Option("--seed", min=0, max=limits.MAX_SEED)] = 0,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Base model (default: the packaged all-MiniLM-L6-v2).")] = None,
    control: Annotated[bool, typer.Option("--control/--no-control", help="Also train a control model without structural negatives.")] = True,
    probes: Annotated[int, typer.Option("--probes", min=1, max=limits.MAX_PROBES, help="Probe queries per evaluation at most.")] = 300,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for models, checkpoints (a re-run resumes), profiles and comparison.yaml.")] = Path("runs/finetune"),
    panel: Annotated[list[Path] | None, typer.Option("--panel", help="A BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) from a domain the model never saw; repeat for several. Broad retrieval is measured there too, paired against the base model.")] = None,
) -> None:
    """Fine-tune the encoder with structural twins as hard negatives (and a control without them), then
    measure base, tuned and control: twin confusion on held-out topics (what tuning bought) and broad
    retrieval on the held-out topics and on each --panel set (what it cost)."""
    from sim.output.console import render_finetune
    from sim.retrieval.beir import read_beir
    from sim.retrieval.finetune import FinetuneSettings
    from sim.retrieval.finetune import finetune as run_finetune
    from sim.retrieval.sources import open_corpus

    with _user_errors():
        chosen = open_corpus(corpus)
        settings = FinetuneSettings(holdout=tuple(t.strip() for t in holdout.split(",") if t.strip()),
                                    minutes=minutes, max_steps=max_steps, batch_size=batch_size, seed=seed,
                                    probes=probes)
        result = run_finetune(chosen, out, settings, model=model, control=control,
                              panel_sets=[read_beir(p) for p in panel or []])
        render_finetune(result, out_console)
        out_console.print(f"wrote {out}/: {', '.join(result['written'])}", style="dim")


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor autocompletion)."""
    from sim.scenario.model import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
