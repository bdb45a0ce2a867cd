"""The `cascade` command line. Exit codes: 0 success, 2 invalid input (the message names the place), 1 bug."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
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

# Plain help (no rich boxes): flags read as `--show  Print ...`, not `--show <bool>`, and help pastes as text.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Simulate how retrieval errors cascade through agent workflows into wrong actions, "
                       "and what that costs.")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out_console.print(f"cascadesim {version('cascadesim')}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Simulate how retrieval errors cascade through agent workflows into wrong actions, and what that costs."""
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


class KernelName(StrEnum):
    numpy = "numpy"
    fused = "fused"


class SobolGrouping(StrEnum):
    input = "input"
    retriever = "retriever"
    step = "step"
    error_type = "error_type"


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
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Override the scenario's seed.")] = None,
    engine: Annotated[EngineName, typer.Option("--engine", "-e", help="monte_carlo (sampled, with CIs), analytic (exact) timeline (SimPy: queues, SLAs, loss over time) or agent (LangGraph agents over real text; see --policy).")] = EngineName.monte_carlo,
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, max=limits.MAX_CHUNK, help="Instances held in memory at once; never changes results.")] = 262_144,
    max_instance_rows: Annotated[int, typer.Option("--max-instance-rows", min=0, max=limits.MAX_INSTANCE_ROWS, help="Cap on per-instance rows written per variant (a sample beyond it).")] = 1_000_000,
    workers: Annotated[int, typer.Option("--workers", "-w", min=0, max=limits.MAX_WORKERS, help="Processes for Monte Carlo; 0: one per core for runs of 4M+ instance-variants. Never changes results.")] = 0,
    kernel: Annotated[KernelName, typer.Option("--kernel", help="Monte Carlo kernel: numpy (reference) or fused (compiled by numba; ~1 s to compile on first use, then cached). Never changes results.")] = KernelName.numpy,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the output folder.")] = False,
    uncertainty: Annotated[int | None, typer.Option("--uncertainty", min=2, max=limits.MAX_UNCERTAINTY_DRAWS, help="Also draw the scenario's uncertain inputs this many times and evaluate every variant at each draw (bands, P(better), uncertainty.parquet).")] = None,
    sobol: Annotated[int | None, typer.Option("--sobol", min=2, max=limits.MAX_UNCERTAINTY_DRAWS, help="Sobol indices of expected loss (and of each variant's difference) per uncertain input, from this many base draws (a power of 2, e.g. 1024); sobol.csv.")] = None,
    sobol_by: Annotated[SobolGrouping, typer.Option("--sobol-by", help="Group the uncertain inputs of --sobol: input (each alone), retriever, step or error_type.")] = SobolGrouping.input,
    precision: Annotated[float | None, typer.Option("--precision", min=1e-9, max=0.4999, help="Monte Carlo: stop once every variant's P(wrong action) 95% CI half-width is at most this (checked after each block of 65,536 instances; --instances is the most it runs).")] = None,
    precision_loss: Annotated[float | None, typer.Option("--precision-loss", min=1e-6, max=0.9999, help="Monte Carlo: stop once every variant's expected loss 95% CI half-width is at most this fraction of it (0.02: within 2%; with --precision, once both hold; checked after each block of 65,536 instances).")] = None,
    importance: Annotated[bool, typer.Option("--importance", help="Counterfactuals (oracle retrieval, each retriever perfect, each verifier perfect or removed) and Birnbaum / Fussell-Vesely / RAW / RRW per basic event: counterfactuals.csv, importance.csv.")] = False,
    policy: Annotated[PolicyName | None, typer.Option("--policy", help="Agent engine: who reads the passages: simulated (offline reader, default) or openai (any OpenAI-compatible endpoint).", rich_help_panel="Agent engine")] = None,
    llm_base_url: Annotated[str | None, typer.Option("--llm-base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL).", rich_help_panel="Agent engine")] = None,
    llm_model: Annotated[str | None, typer.Option("--llm-model", help="Model name at the endpoint (default: $OPENAI_MODEL).", rich_help_panel="Agent engine")] = None,
    llm_timeout: Annotated[float, typer.Option("--llm-timeout", min=0.1, max=3600, help="Seconds per call before a retry.", rich_help_panel="Agent engine")] = 30.0,
    llm_max_calls: Annotated[int | None, typer.Option("--llm-max-calls", min=1, help="Budget: calls that reach the endpoint (cached answers are free).", rich_help_panel="Agent engine")] = None,
    llm_max_tokens: Annotated[int | None, typer.Option("--llm-max-tokens", min=1, help="Budget: total tokens the endpoint reports.", rich_help_panel="Agent engine")] = None,
    llm_concurrency: Annotated[int | None, typer.Option("--llm-concurrency", min=1, max=limits.MAX_LLM_CONCURRENCY, help="Model requests in flight at once (default 8); never changes a result.", rich_help_panel="Agent engine")] = None,
    llm_rpm: Annotated[int | None, typer.Option("--llm-rpm", min=1, help="Budget: requests per minute sent to the endpoint (requests wait for room).", rich_help_panel="Agent engine")] = None,
    llm_tpm: Annotated[int | None, typer.Option("--llm-tpm", min=1, help="Budget: tokens per minute (estimated when sent, corrected by the reply's usage).", rich_help_panel="Agent engine")] = None,
    tickets: Annotated[Path | None, typer.Option("--tickets", help="Ticket triage: a Banking77-style CSV (text,category) of real customer messages instead of the built-in ones.", rich_help_panel="Agent engine")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Embedding model for live retrieval (default: the packaged all-MiniLM-L6-v2).", rich_help_panel="Agent engine")] = None,
    store: Annotated[str | None, typer.Option("--store", help="Chroma server as http://HOST:PORT, or a folder (default: embedded, in the cache).", rich_help_panel="Agent engine")] = None,
    store_timeout: Annotated[float | None, typer.Option("--store-timeout", min=0.1, help="Seconds to wait for each answer of a Chroma server [default: 60].", rich_help_panel="Agent engine")] = None,
    store_connect_timeout: Annotated[float | None, typer.Option("--store-connect-timeout", min=0.1, help="Seconds to wait for a connection to a Chroma server [default: 5].", rich_help_panel="Agent engine")] = None,
    otlp_endpoint: Annotated[str | None, typer.Option("--otlp-endpoint", help="Send each instance's spans as it finishes to this OTLP/HTTP traces URL (e.g. Phoenix: http://127.0.0.1:6006/v1/traces; headers from $OTEL_EXPORTER_OTLP_HEADERS). Never stops the run.", rich_help_panel="Agent engine")] = None,
) -> None:
    """Run a scenario and write summary.json, instances.parquet, steps.parquet and the resolved scenario."""
    from sim.engines.registry import get_engine
    from sim.output.console import RunProgress, render_summary
    from sim.output.run_folder import check_out_folder, checkpoint_folder
    from sim.runner import run as run_scenario
    from sim.scenario.load import load_scenario

    with _user_errors():
        loaded = load_scenario(scenario)
        agent_options = {"--policy": policy, "--llm-base-url": llm_base_url, "--llm-model": llm_model,
                         "--llm-max-calls": llm_max_calls, "--llm-max-tokens": llm_max_tokens,
                         "--llm-concurrency": llm_concurrency, "--llm-rpm": llm_rpm, "--llm-tpm": llm_tpm,
                         "--tickets": tickets, "--model": model, "--store": store, "--store-timeout": store_timeout,
                         "--store-connect-timeout": store_connect_timeout, "--otlp-endpoint": otlp_endpoint}
        given = [name for name, value in agent_options.items() if value is not None]
        if given and engine is not EngineName.agent:
            raise CascadeError(f"{', '.join(given)} only apply to --engine agent")
        options = None
        if engine is EngineName.agent:
            options = {"policy": policy.value if policy else None, "llm_base_url": llm_base_url,
                       "llm_model": llm_model, "llm_timeout": llm_timeout, "llm_max_calls": llm_max_calls,
                       "llm_max_tokens": llm_max_tokens, "llm_concurrency": llm_concurrency, "llm_rpm": llm_rpm,
                       "llm_tpm": llm_tpm, "tickets": tickets, "model": model, "store": store,
                       "store_timeout": store_timeout, "store_connect_timeout": store_connect_timeout,
                       "otlp_endpoint": otlp_endpoint}
        spec = get_engine(engine.value)
        if instances is None and spec.default_instances is not None:
            instances = spec.default_instances(loaded)
            if not quiet:
                err_console.print(f"{spec.name} engine: {instances} instances per variant (pass --instances "
                                  "for more; the scenario's count is sized for the fast engines)", style="dim")
        n = instances or loaded.instances
        folder = out or Path("runs") / (re.sub(r"[^A-Za-z0-9_.-]+", "_", loaded.name).lstrip(".") or "scenario")
        check_out_folder(folder)  # before the run: refuse a folder it must not replace
        if options is not None:  # the agent engine keeps completed instances: a re-run continues
            options["checkpoint"] = checkpoint_folder(folder)
        show_bar = not quiet and ((engine is EngineName.monte_carlo and n * (1 + len(loaded.variants)) >= 2_000_000)
                                  or engine is EngineName.agent)
        with Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      TextColumn("{task.fields[detail]}"), console=err_console, transient=True,
                      disable=not show_bar) as bar:
            task = bar.add_task("run", total=n, detail="")
            try:
                result = run_scenario(loaded, instances=instances, seed=seed, engine=engine.value,
                                      chunk_size=chunk_size, max_instance_rows=max_instance_rows,
                                      workers=workers or None,
                                      progress=RunProgress(bar, task, time.monotonic), options=options,
                                      uncertainty=uncertainty, sobol=sobol, sobol_by=sobol_by.value,
                                      importance=importance, precision=precision,
                                      precision_loss=precision_loss, kernel=kernel.value)
            except KeyboardInterrupt:
                bar.stop()
                kept = ("; the completed instances are kept: run the same command again to continue"
                        if options is not None else "")
                err_console.print(f"interrupted: nothing was written to {folder}{kept}", style="bold")
                raise typer.Exit(130) from None
        try:
            result.write(folder)
        except OSError as exc:
            raise CascadeError(f"cannot write the results to {folder}: {exc.strerror or exc}; choose another "
                               "folder with --out") from None
        if options is not None:
            shutil.rmtree(options["checkpoint"], ignore_errors=True)  # the run is whole: nothing to continue
            reused = (result.summary.get("agent") or {}).get("resumed_instances")
            if reused and not quiet:
                err_console.print(f"resumed: {reused:,} instance runs reused from the interrupted run's checkpoint",
                                  style="dim")
        if quiet:
            out_console.print(str(folder))
            return
        render_summary(result.summary, out_console)
        extra = "".join(f", {name}.parquet" for name in ("timeline", "agent_trace", "uncertainty")
                        if getattr(result, name) is not None) + "".join(
            f", {name}.csv" for name in ("sobol", "counterfactuals", "importance") if getattr(result, name) is not None)
        out_console.print(f"wrote {folder}/ (summary.json, instances.parquet, steps.parquet, attribution.csv, "
                          f"cascade.csv, sensitivity.csv, scenario.yaml{extra}, manifest.json); the HTML report: "
                          f"cascade report {folder}", style="dim")


@app.command()
def sweep(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file with a sweep: block (or give --grid / --values).", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Study folder (default: runs/<scenario name>_sweep); a re-run with the same folder continues.")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="A running `dask scheduler`, tcp://HOST:PORT (default: a local cluster on this machine).")] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=0, max=limits.MAX_WORKERS, help="Local cluster: worker processes (0: one per core). Never changes results.")] = 0,
    engine: Annotated[list[EngineName] | None, typer.Option("--engine", "-e", help="Engine of every point (repeat for several; default: the sweep block's, else analytic).")] = None,
    grid: Annotated[list[str] | None, typer.Option("--grid", help="PATH=START:STOP:COUNT, e.g. retrievers.contract.rates.role_swap=0:0.05:11 (replaces the file's sweep parameters; repeat to cross).")] = None,
    values: Annotated[list[str] | None, typer.Option("--values", help="PATH=A,B,C, e.g. timeline.reviewers.legal_review.servers=3,4,5 (with --grid: crossed).")] = None,
    instances: Annotated[int | None, typer.Option("--instances", "-n", min=1, max=limits.MAX_INSTANCES, help="Instances per variant of each sampled point (default: the sweep block's, else the engine's).")] = None,
    worker_wait: Annotated[float, typer.Option("--worker-wait", min=1, max=86_400, help="Seconds to wait for a worker when the scheduler has none left mid-study, before stopping with the completed points kept.")] = 60.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the study folder.")] = False,
) -> None:
    """Run a study: every point of the scenario's sweep on Dask, resumable; writes sweep.parquet and sweep.json."""
    from sim.sweeps.options import scenario_with_sweep
    from sim.sweeps.study import sweep as run_sweep

    with _user_errors():
        options = [("grid", g) for g in grid or []] + [("values", v) for v in values or []]
        loaded = scenario_with_sweep(scenario, options, [e.value for e in engine] if engine else None)
        folder = out or Path("runs") / ((re.sub(r"[^A-Za-z0-9_.-]+", "_", loaded.name).lstrip(".") or "scenario")
                                        + "_sweep")
        with Progress(TextColumn("points"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err_console, transient=True, disable=quiet) as bar:
            task = bar.add_task("sweep", total=None)
            try:
                table = run_sweep(loaded, out=folder, scheduler=scheduler, workers=workers or None,
                                  instances=instances, progress=lambda done, total: bar.update(
                                      task, completed=done, total=total),
                                  log=lambda message: err_console.print(message, style="dim"),
                                  worker_wait=worker_wait)
            except KeyboardInterrupt:
                bar.stop()
                err_console.print(f"interrupted: the completed points are kept in {folder}; run the same command "
                                  "again to continue", style="bold")
                raise typer.Exit(130) from None
        if quiet:
            out_console.print(str(folder))
            return
        summary = table.attrs["sweep"]
        out_console.print(f"{summary['points']:,} points x {len(summary['engines'])} engine(s): {summary['rows']:,} "
                          f"rows, {summary['failed_rows']:,} failed")
        for failure in summary["failed"][:5]:
            out_console.print(f"  failed: point {failure['point']} ({failure['engine']}, {failure['variant']}): "
                              f"{failure['error']}")
        for f in summary["frontier"]:
            if f["break_even"] is not None:
                out_console.print(f"{f['variant']} beats base {f['variant_better']} {f['parameter']} = "
                                  f"{f['break_even']:.6g} [{f['break_even_low']:.6g}, {f['break_even_high']:.6g}]"
                                  + (f" at {f['other_parameter']} = {f['other_value']:g}" if f["other_parameter"]
                                     and f["other_value"] is not None else "") + f" ({f['engine']})")
        out_console.print(f"wrote {folder}/ (sweep.parquet, sweep.json, units/, points/); the report: "
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
        if s.agent is not None:  # the agent engine reads its corpus and case files as a run would
            from sim.engines.registry import get_engine

            check = get_engine("agent").check
            if check is not None:
                status.print(check(s))
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
    store_timeout: Annotated[float, typer.Option("--store-timeout", min=0.1, help="Seconds to wait for each answer of a Chroma server before giving up.")] = 60.0,
    store_connect_timeout: Annotated[float, typer.Option("--store-connect-timeout", min=0.1, help="Seconds to wait for a connection to a Chroma server.")] = 5.0,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Embedding cache and embedded store (default: $CASCADESIM_CACHE or ~/.cache/cascadesim).")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="Results the agent reads; the gold passage outside them is a topical miss.")] = 5,
    probes: Annotated[int, typer.Option("--probes", min=1, max=limits.MAX_PROBES, help="Probe queries at most.")] = 300,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed for the probe sample and the twin edits.")] = 0,
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
    from sim.retrieval.store import StoreLocation, StoreTimeouts

    with _user_errors():
        spec = RetrieverSpec(retriever, fusion=fusion, rrf_k=rrf_k, dense_weight=dense_weight)
        cache = cache_dir or default_cache_dir()  # a bad store or cache is refused before anything is read
        location = StoreLocation.parse(store, cache, StoreTimeouts(connect=store_connect_timeout, read=store_timeout))
        chosen = open_corpus(corpus, queries, id_column=id_column, text_column=text_column,
                             query_column=query_column, gold_column=gold_column)
        panel_sets = [read_beir(p) for p in panel or []]
        pair_set = read_pairs(pairs) if pairs is not None else None
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
    run_dir: Annotated[Path, typer.Argument(help="A folder written by `cascade run` or `cascade sweep`.", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write (default: RUN_DIR/report.html; a .md summary goes beside it).")] = None,
    images: Annotated[str | None, typer.Option("--images", help="Also write each chart as a static image for slides and PDFs: png or svg (needs Chrome or Chromium), in a folder beside the report.")] = None,
) -> None:
    """Write the cascade report: one self-contained HTML file (charts, sensitivity) and a markdown summary."""
    from sim.output.report import report_from_run_dir, write_images
    from sim.sweeps.report import is_sweep_folder, sweep_report

    with _user_errors():
        if images not in (None, "png", "svg"):
            raise CascadeError(f"--images {images}: give png or svg")
        if is_sweep_folder(run_dir):  # a study from `cascade sweep`: lines, heatmaps, break-even frontier
            if images:
                raise CascadeError("--images applies to run folders; a sweep report is one HTML file")
            out_console.print(f"wrote {sweep_report(run_dir, out)}")
            return
        try:
            path = report_from_run_dir(run_dir, out)
        except OSError as exc:
            raise CascadeError(f"cannot write the report: {exc.strerror or exc}") from None
        out_console.print(f"wrote {path} and {path.with_suffix('.md')}")
        if images:
            written = write_images(run_dir, path.with_name(path.stem + "_images"), images)
            out_console.print(f"wrote {len(written)} {images} images in {written[0].parent if written else '-'}")


@app.command("fit-difficulty")
def fit_difficulty_command(
    trials: Annotated[Path, typer.Argument(help="A log of repeated trials: CSV, TSV or JSONL with columns task, trial, success (1/0, true/false, pass/fail); or tau-bench's results file (.json: runs with task_id, trial, reward).", show_default=False)],
    write: Annotated[Path | None, typer.Option("--write", help="Also write the fitted `difficulty:` block (YAML) to this file, to paste into a scenario.")] = None,
) -> None:
    """Estimate difficulty.icc (with its 95% CI) and compare observed with modelled pass^k from repeated trials."""
    import yaml

    from sim.core.atomic import write_text
    from sim.metrics.difficulty_fit import fit_difficulty, read_trials

    with _user_errors():
        fit = fit_difficulty(read_trials(trials))
        out_console.print(f"{fit.tasks:,} tasks, {fit.trials:,} trials: mean failure {fit.mean_failure:.2%}; "
                          f"icc {fit.icc:.3f} [{fit.icc_ci95[0]:.3f}, {fit.icc_ci95[1]:.3f}] (95% profile "
                          f"likelihood); better fit by AIC: {fit.preferred}"
                          + (f" ({fit.always_solved_share:.1%} of tasks always solved)"
                             if fit.always_solved_share else ""))
        table = Table(title="pass^k: observed (unbiased) vs modelled", title_justify="left")
        for col in fit.pass_k.columns:
            table.add_column(col, justify="right")
        for row in fit.pass_k.itertuples(index=False):
            table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
        out_console.print(table)
        if write is not None:
            write_text(write, yaml.safe_dump({"difficulty": {"icc": round(fit.icc, 4)}}, sort_keys=False))
            out_console.print(f"wrote {write}", style="dim")


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
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed for the triplet sample, the twins and training.")] = 0,
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
        if seed > limits.MAX_SEED:
            raise CascadeError(f"--seed must be at most {limits.MAX_SEED:,}, got {seed:,}")
        chosen = open_corpus(corpus)
        settings = FinetuneSettings(holdout=tuple(t.strip() for t in holdout.split(",") if t.strip()),
                                    minutes=minutes, max_steps=max_steps, batch_size=batch_size, seed=seed,
                                    probes=probes)
        result = run_finetune(chosen, out, settings, model=model, control=control,
                              panel_sets=[read_beir(p) for p in panel or []])
        render_finetune(result, out_console)
        out_console.print(f"wrote {out}/: {', '.join(result['written'])}", style="dim")


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by `cascade run` or `cascade sweep`.", show_default=False)],
    otlp: Annotated[Path | None, typer.Option("--otlp", help="Write the traces to this OTLP JSON file.")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Send the traces over OTLP/HTTP (protobuf) to this URL, e.g. http://127.0.0.1:6006/v1/traces (Phoenix).")] = None,
    header: Annotated[list[str] | None, typer.Option("--header", help="KEY=VALUE header for --endpoint (repeatable; e.g. authorization=Bearer ...). Also read: $OTEL_EXPORTER_OTLP_HEADERS. Never written anywhere.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, max=3600, help="Seconds per request to --endpoint, retries included.")] = 10.0,
    max_traces: Annotated[int, typer.Option("--max-traces", min=1, max=limits.MAX_EXPORT_TRACES, help="Traces (instances) per variant; beyond it a seeded sample, the same instances in every variant.")] = 1000,
    variant: Annotated[str | None, typer.Option("--variant", help="Export this variant only (default: all).")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Phoenix project of the spans (resource attribute openinference.project.name; default: the scenario's name).")] = None,
    start: Annotated[str | None, typer.Option("--start", help="Start of the synthetic clock, ISO 8601 (default 2025-01-01T00:00:00Z): instance i starts i seconds later.")] = None,
) -> None:
    """Export a run as OpenTelemetry traces (OpenInference + GenAI attributes, cascade attributes under
    cascadesim.*): one trace per instance, a span per step, root causes and failed actions as span events."""
    from datetime import UTC, datetime

    from sim.otel.export import check_endpoint, parse_headers, send, write_otlp_json
    from sim.otel.spans import run_spans

    with _user_errors():
        if otlp is None and endpoint is None:
            raise CascadeError("nothing to do: give --otlp FILE.json, --endpoint URL, or both")
        headers = parse_headers(header or [])
        if endpoint is not None:
            check_endpoint(endpoint)
        when = None
        if start is not None:
            try:
                when = datetime.fromisoformat(start)
            except ValueError:
                raise CascadeError(f"--start {start!r}: give an ISO 8601 time, e.g. 2025-01-01T00:00:00Z") from None
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
        traces = run_spans(run_dir, max_traces, variant, when, project)
        sample = "" if traces.traces == traces.of else f" (a seeded sample of {traces.of:,} instance rows)"
        if otlp is not None:
            path = write_otlp_json(traces.spans, otlp)
            out_console.print(f"wrote {path}: {traces.traces:,} traces, {len(traces.spans):,} spans{sample}")
        if endpoint is not None:
            sent = send(traces.spans, endpoint, headers, timeout)
            out_console.print(f"sent {sent:,} spans of {traces.traces:,} traces to {endpoint}{sample}")


@app.command("import")
def import_(
    traces: Annotated[Path, typer.Argument(help="Spans as OTLP JSON (one document, or one per line), e.g. written by `cascade export` or an OpenTelemetry collector's file exporter; or a Langfuse export (a trace or session downloaded as JSON, the observations table as JSON / JSON lines).", show_default=False)],
    workflow: Annotated[Path, typer.Option("--workflow", help="Scenario file whose workflow the traces ran: span names are its step ids; its costs price the actions.", show_default=False)],
    labels: Annotated[Path, typer.Option("--labels", help="Ground truth, CSV / TSV / JSONL: trace_id, step, label for every retrieve and decide step; label is correct, wrong, or a wrong retrieval's error type (wrong: topical_miss).", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder to write (default: runs/<scenario name>-imported).")] = None,
) -> None:
    """Turn a trace log and its labels into a recorded run (summary, tables, report; `cascade calibrate` reads
    it). Spans map to steps by name; unmapped spans and unlabelled steps are reported, never guessed."""
    from sim.otel.ingest import import_traces

    with _user_errors():
        imported = import_traces(traces, workflow, labels)
        result = imported.result
        target = out if out is not None else Path("runs") / f"{result.scenario.name}-imported"
        try:
            path = result.write(target)
        except OSError as exc:
            raise CascadeError(f"cannot write {target}: {exc.strerror or exc}") from None
        summary = result.summary
        out_console.print(f"imported {summary['instances']:,} of {imported.traces:,} traces from {traces}: "
                          f"P(wrong action) {summary['p_failure']:.2%}, expected loss "
                          f"{summary['expected_loss_per_instance']:,.2f} {summary['currency']} per instance")
        for why, ids in imported.left_out.items():
            out_console.print(f"left out {len(ids):,} trace(s), {why} (e.g. {ids[0]})")
        if imported.unmapped:
            names = ", ".join(f"{name} ({n:,})" for name, n in imported.unmapped.most_common(10))
            out_console.print(f"spans that are no step of {workflow} (not used): {names}")
        if imported.unused_labels:
            out_console.print(f"{imported.unused_labels:,} labelled trace(s) are not in {traces}")
        out_console.print(f"wrote {path}; next: cascade calibrate {path}", style="dim")


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor autocompletion)."""
    from sim.scenario.model import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
