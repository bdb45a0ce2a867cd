"""Readable terminal output of a run: headline numbers with intervals, the top of the attribution table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sim.output.verdict import verdicts

# Every line is a Text (never a markup string): names, paths and ids come from users, and `[/x]` in a scenario
# name must print as written, not be read as markup.


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def _money(x: float, currency: str) -> str:
    return f"{x:,.2f} {currency}"


def _interval(ci: list[float] | None, fmt) -> str:
    if not ci:
        return ""
    return "exact" if ci[0] == ci[1] else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def render_summary(summary: dict[str, Any], console: Console, top: int = 8) -> None:
    """Print the headline block of each variant, the top root causes, and paired differences."""
    cur = summary["currency"]
    n = summary["instances"]
    title = f"{summary['scenario']} — {summary['engine']}, seed {summary['seed']}" + (
        f", {n:,} instances" if n else "")
    blocks = {"base": summary, **summary.get("variant_results", {})}
    sampled = any(b.get("p_failure_ci95") and b["p_failure_ci95"][0] != b["p_failure_ci95"][1]
                  for b in blocks.values())
    head = Table(title=Text(title), title_justify="left", caption_justify="left",
                 caption="95% confidence intervals below each value" if sampled else "exact: no sampling error")
    head.add_column("metric", no_wrap=True)
    for name in blocks:
        head.add_column(name, justify="right")

    def row(label: str, key: str, fmt, ci_fmt=None) -> None:
        cells = []
        for b in blocks.values():
            ci = _interval(b.get(key + "_ci95"), ci_fmt or fmt)
            cells.append(Text.assemble(fmt(b[key]), ("\n" + ci, "dim") if ci and ci != "exact" else ""))
        head.add_row(label, *cells)

    row("P(wrong action)", "p_failure", _pct)
    row("expected loss / instance", "expected_loss_per_instance", lambda x: _money(x, cur), lambda x: f"{x:,.2f}")
    row("silent failure rate", "silent_failure_rate", _pct)
    row("amplification", "amplification", lambda x: f"{x:.3f}")
    row("root errors / instance", "root_errors_per_instance", lambda x: f"{x:.4f}")
    console.print(head)
    for v in verdicts(summary):
        console.print(Text(" ".join(v.sentences()), style="bold" if v.direction != "not distinguishable" else ""))
    if summary.get("agent"):
        _agent_lines(summary["agent"], console)
    console.print(Text("P(wrong action): probability that an instance ends with at least one action executed on "
                       "wrong input. Amplification: action failures per root error.", style="dim"))

    attr = Table(title="Where the loss comes from (base): root-cause step x error type", title_justify="left")
    for col in ("root-cause step", "error type", "loss share", "failure share", f"loss/inst. {cur}"):
        attr.add_column(col, justify="left" if "step" in col or "type" in col else "right",
                        no_wrap="step" in col or "type" in col)
    for a in summary["attribution"][:top]:
        attr.add_row(Text(a["root_cause_step"]), Text(a["error_type"]), _pct(a["share_of_loss"]), _pct(a["share_of_failures"]),
                     f"{a['loss_per_instance']:,.2f}")
    console.print(attr)

    if summary.get("pass_k"):
        pk = summary["pass_k"]
        sample = summary.get("pass_k_sample")
        console.print(Text("pass^k (k attempts at the same instance all succeed): " + ", ".join(
            f"k={p['k']}: {_pct(p['p'])}" for p in pk if p["k"] in (1, 2, 4, 8))
            + (f" (the first {sample:,} instances attempted {len(pk)} times each; pass^1 differs from "
               "1 - P(wrong action) by that sample's chance)" if sample and sample < (summary.get("instances") or 0)
               else "")))

    for name, d in summary.get("differences", {}).items():
        if "horizon_loss" in d:
            h = d["horizon_loss"]
            console.print(Text.assemble((name, "bold"), " vs base (paired by replication): horizon loss "
                          f"{h['difference']:+,.0f} {cur} [{h['ci95'][0]:+,.0f}, {h['ci95'][1]:+,.0f}]"))
            continue
        dp, dl = d["p_failure"], d["expected_loss_per_instance"]
        console.print(Text.assemble(
            (name, "bold"), f" vs base (paired): P(failure) {100 * dp['difference']:+.3f} pts "
            f"{_interval(dp['ci95'], lambda x: f'{100 * x:+.3f}')}; expected loss "
            f"{dl['difference']:+,.2f} {cur} per instance {_interval(dl['ci95'], lambda x: f'{x:+,.2f}')}"))
    for name, b in blocks.items():
        tl = b.get("timeline")
        if not tl:
            continue
        h = tl["horizon_loss"]
        console.print(Text.assemble(
            (name, "bold"), f" over {tl['horizon_days']} days ({h['replications']} replications): horizon loss "
            f"mean {h['mean']:,.0f} {cur} [{h['mean_ci95'][0]:,.0f}, {h['mean_ci95'][1]:,.0f}], VaR95 "
            f"{h['var95']:,.0f}, CVaR95 {h['cvar95']:,.0f}; still undetected at the horizon "
            f"{tl['undetected_exposure_at_horizon_mean']:,.0f}"
            + (f" (VaR95 and CVaR95 are coarse with {h['replications']} replications: the 5% tail needs at least "
               f"{h['replications_for_tail']})" if h.get("tail_coarse") else "")))
        for sid in tl["utilisation"]:
            console.print(Text(f"  {sid}: utilisation {_pct(tl['utilisation'][sid])} of opening hours, mean wait "
                               f"{tl['mean_wait_hours'][sid]:.1f} h, reviews bypassed {_pct(tl['bypass_rate'][sid])}"))
    if summary.get("uncertainty"):
        _uncertainty_lines(summary["uncertainty"], cur, console)
    rows = summary.get("instance_rows")
    if rows and rows["mode"] == "sampled":
        console.print(Text(f"instances.parquet holds a sample of {rows['rows']:,} of {rows['of']:,} instances per "
                           "variant; the figures above use all of them.", style="dim"))


def _uncertainty_lines(u: dict[str, Any], cur: str, console: Console) -> None:
    """Input uncertainty: each variant's expected loss (median and 5-95% band), and P(lower loss than base)."""
    console.print(Text(f"Input uncertainty ({u['draws']:,} draws of {len(u['inputs'])} uncertain inputs, "
                       f"{u['design']}, {u['computed_by']}): median [5%, 95%]"))
    for name, r in u["results"].items():
        b, p = r["expected_loss_per_instance"], r["p_failure"]
        console.print(Text(f"  {name}: expected loss {b['median']:,.2f} {cur} [{b['p05']:,.2f}, {b['p95']:,.2f}] "
                           f"(point {b['point']:,.2f}); P(wrong action) {_pct(p['median'])} "
                           f"[{_pct(p['p05'])}, {_pct(p['p95'])}]"))
    for name, d in u.get("differences", {}).items():
        b = d["expected_loss_per_instance"]
        console.print(Text(f"  {name} - base: expected loss {b['median']:+,.2f} {cur} [{b['p05']:+,.2f}, "
                           f"{b['p95']:+,.2f}]; P({name} has lower expected loss) "
                           f"{_pct(d['p_lower_expected_loss'])}"))


def render_profile(profile: dict[str, Any], console: Console) -> None:
    """Print a measured error profile: rates per error type with CIs, twin confusion, broad retrieval."""
    c = profile["counts"]
    t = Table(title=Text(f"Error profile: {profile['model']['name']} on {profile['corpus']['name']} "
                         f"({c['queries']} probe queries, top {profile['settings']['k']})"), title_justify="left")
    for col in ("error type", "rate per query", "95% CI", "count", "twin outranks gold", "mean cosine gap"):
        t.add_column(col, justify="left" if col == "error type" else "right", no_wrap=col == "error type")
    for etype, rate in profile["rates"].items():
        lo, hi = profile["rates_ci95"][etype]
        conf = profile["confusion"].get(etype) or {}
        t.add_row(Text(etype), _pct(rate), Text(f"[{_pct(lo)}, {_pct(hi)}]"), str(c[etype]),
                  f"{_pct(conf['rate'])} of {conf['queries_with_twin']}" if conf.get("rate") is not None else "",
                  f"{conf['mean_cosine_gap']:.4f}" if conf.get("mean_cosine_gap") is not None else "")
    console.print(t)
    b = profile["broad_retrieval"]
    console.print(Text(f"broad retrieval (no twins): nDCG@10 {b['ndcg_at_10']:.3f} "
                       f"[{b['ndcg_at_10_ci95'][0]:.3f}, {b['ndcg_at_10_ci95'][1]:.3f}], recall@10 "
                       f"{_pct(b['recall_at_10'])}"))
    e = profile["embeddings"]
    console.print(Text(f"embeddings: {e['computed']} computed, {e['texts'] - e['computed']} from the cache",
                       style="dim"))
    if profile["corpus"].get("truncated_to_model"):  # profiles written before this count have none
        console.print(Text(f"{profile['corpus']['truncated_to_model']} passage(s) longer than the model reads were "
                           "cut to what it reads before twins were made"))


def _agent_lines(agent: dict[str, Any], console: Console) -> None:
    """What the agent engine ran on, and how many injected faults could really be made on the text."""
    drawn = sum(n for steps in agent["faults"].values() for c in steps.values() for n in c["drawn"].values())
    applied = sum(n for steps in agent["faults"].values() for c in steps.values() for n in c["applied"].values())
    console.print(Text(f"agent: {agent['workflow']} read by {agent['policy']} over {agent['episodes']} episodes; "
                  f"live retrieval with {agent['embedding_model']} in {agent['store']}; faults applied "
                  f"{applied} of {drawn} drawn; invalid replies {sum(agent['invalid_replies'].values())}"
                  + (f"; LLM calls {agent['llm']['calls']} (cached {agent['llm']['cached']})" if "llm" in agent
                     else "")))


class RunProgress:
    """The progress callback of `cascade run` (sim.runner's `progress`) over a rich Progress task: instances
    done, and for an agent run with a model its calls, cache hits, tokens and throughput (`detail`). The
    rates are wall-clock, for the terminal only: nothing of it reaches a result."""

    def __init__(self, bar, task, clock):
        self.bar, self.task, self.clock = bar, task, clock
        self.start, self.done = clock(), 0

    def __call__(self, done: int, total: int) -> None:
        self.done = done
        self.bar.update(self.task, completed=done, total=total)

    def detail(self, counts: dict[str, int]) -> None:
        self.bar.update(self.task, detail=self.describe(counts, max(self.clock() - self.start, 1e-9)))

    def describe(self, counts: dict[str, int], seconds: float) -> str:
        """What the bar shows after `seconds` of running."""
        return (f"{self.done / seconds:.1f} inst/s · {counts['calls']:,} calls ({counts['calls'] / seconds:.1f}/s)"
                f" · {counts['cached']:,} cached · {counts['tokens']:,} tokens")
