"""Readable terminal output of a run: headline numbers with intervals, the top of the attribution table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sim.output.uncertainty_text import lines as uncertainty_lines
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
    for line in uncertainty_lines(summary):
        console.print(Text(line))
    rows = summary.get("instance_rows")
    if rows and rows["mode"] == "sampled":
        console.print(Text(f"instances.parquet holds a sample of {rows['rows']:,} of {rows['of']:,} instances per "
                           "variant; the figures above use all of them.", style="dim"))


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
                  Text(f"{_pct(conf['rate'])} of {conf['queries_with_twin']}"
                       + (f" ({conf['twin_ties_gold']} tied)" if conf.get("twin_ties_gold") else ""))
                  if conf.get("rate") is not None else "",
                  f"{conf['mean_cosine_gap']:.4f}" if conf.get("mean_cosine_gap") is not None else "")
    console.print(t)
    b = profile["broad_retrieval"]
    console.print(Text(f"broad retrieval (no twins): nDCG@10 {b['ndcg_at_10']:.3f} "
                       f"[{b['ndcg_at_10_ci95'][0]:.3f}, {b['ndcg_at_10_ci95'][1]:.3f}], recall@10 "
                       f"{_pct(b['recall_at_10'])}"))
    if profile.get("panel"):
        render_panel(profile["panel"], console)
    if profile.get("contrast_pairs"):
        cp = profile["contrast_pairs"]
        t = Table(title=Text(f"Your contrast pairs ({cp['pairs']} from {cp['file']})"), title_justify="left")
        for col in ("type", "pairs", "contrast outranks original", "95% CI", "ties", "paired accuracy"):
            t.add_column(col, justify="left" if col == "type" else "right")
        for typ, v in cp["by_type"].items():
            t.add_row(Text(typ), str(v["pairs"]), _pct(v["rate"]), Text(_interval(v["rate_ci95"], _pct)),
                      str(v["ties"]), _pct(v["paired_accuracy"]))
        console.print(t)
        if cp.get("twin_realism"):
            render_twin_realism(cp["twin_realism"], console)
    e = profile["embeddings"]
    console.print(Text(f"embeddings: {e['computed']} computed, {e['texts'] - e['computed']} from the cache",
                       style="dim"))
    if profile["corpus"].get("truncated_to_model"):  # profiles written before this count have none
        console.print(Text(f"{profile['corpus']['truncated_to_model']} passage(s) longer than the model reads were "
                           "cut to what it reads before twins were made"))


def render_twin_realism(by_type: dict[str, Any], console: Console) -> None:
    """Cosine of each original to its real contrast vs to its rule twin, per pair type (`sim.retrieval.realism`)."""
    t = Table(title="Twin realism: cosine to the original, real contrast vs rule twin (median [5%, 95%])",
              title_justify="left")
    for col in ("type", "rule", "twins made", "real contrast", "rule twin", "twin - real [95% CI]", "twin closer",
                "KS"):
        t.add_column(col, justify="left" if col in ("type", "rule") else "right", no_wrap=col in ("type", "rule"))

    def spread(q: dict[str, float]) -> Text:
        return Text(f"{q['p50']:.3f} [{q['p05']:.3f}, {q['p95']:.3f}]")

    for typ, v in by_type.items():
        if not v.get("twins_made"):
            t.add_row(Text(typ), v["rule"] or "no rule", f"0 of {v['pairs']}", "", "", "", "", "")
            continue
        lo, hi = v["mean_difference_ci95"]
        t.add_row(Text(typ), v["rule"], f"{v['twins_made']} of {v['pairs']}", spread(v["real_cosine"]),
                  spread(v["twin_cosine"]), Text(f"{v['mean_difference']:+.3f} [{lo:+.3f}, {hi:+.3f}]"),
                  _pct(v["twin_closer_share"]),
                  f"{v['ks_statistic']:.2f}" if v["ks_statistic"] is not None else "")
    console.print(t)
    console.print(Text("A rule twin closer to its original than the real contrast is harder to tell apart: rates "
                       "measured with such twins overstate what real contrasts of that type would cause.",
                       style="dim"))


def render_panel(sets: list[dict[str, Any]], console: Console) -> None:
    """Broad retrieval per panel set (a profile's `panel`): nDCG@10, recall@100, MRR@10 with 95% CIs."""
    t = Table(title="Broad retrieval on the panel", title_justify="left")
    for col in ("set", "domain", "queries", "nDCG@10", "recall@100", "MRR@10"):
        t.add_column(col, justify="left" if col in ("set", "domain") else "right")
    for s in sets:
        t.add_row(Text(s["name"]), s["domain"], str(s["queries"]), *[
            Text(f"{s[m]['mean']:.3f} {_interval(s[m]['ci95'], lambda x: f'{x:.3f}')}")
            for m in ("ndcg_at_10", "recall_at_100", "mrr_at_10")])
    console.print(t)


def render_finetune(result: dict[str, Any], console: Console) -> None:
    """The fine-tuning trade-off, both axes first: what the tuning bought (twin confusion per type on held-out
    topics) and what it cost (nDCG@10 per panel set, paired against the base model). The published figure
    appears only on unrelated-domain rows, the only ones it compares with."""
    models = result["models"]
    names = list(models)
    bought = Table(title=f"What the tuning bought: twin outranks gold on held-out topics "
                         f"{result['held_out_topics']} (lower is better)", title_justify="left")
    bought.add_column("twin type")
    for n in names:
        bought.add_column(n, justify="right")
    for t in models["base"]["twin_outranks_gold"]:
        cells = []
        for n in names:
            v = models[n]["twin_outranks_gold"].get(t)
            change = "" if n == "base" or v is None else \
                f" ({100 * result['changes_vs_base'][n]['bought_twin_confusion_change'][t]:+.1f} pts)"
            cells.append("" if v is None else f"{_pct(v['rate'])}{change}")
        bought.add_row(Text(t), *map(Text, cells))
    console.print(bought)
    cost = Table(title="What it cost: broad retrieval nDCG@10 per panel set (change vs base, paired 95% CI)",
                 title_justify="left")
    for col in ("set", "domain", *names, "published (comparable)"):
        cost.add_column(col, justify="left" if col in ("set", "domain") else "right")
    published = "-8% to -9% (NanoBEIR, small encoders)"
    for s in models["base"]["panel"]:
        cells = []
        for n in names:
            mean = models[n]["panel"][s]["ndcg_at_10"]["mean"]
            if n == "base":
                cells.append(f"{mean:.3f}")
                continue
            c = result["changes_vs_base"][n]["cost_broad_retrieval"][s]["ndcg_at_10"]
            rel = "" if c["relative"] is None else f" {100 * c['relative']:+.1f}%"
            ci = c["relative_ci95"]
            cells.append(f"{mean:.3f}{rel}" + ("" if ci is None else f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"))
        domain = models["base"]["panel"][s]["domain"]
        cost.add_row(Text(s), domain, *map(Text, cells), Text(published if domain == "unrelated" else ""))
    console.print(cost)
    if "warning" in result:
        console.print(Text(result["warning"], style="bold"))


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
