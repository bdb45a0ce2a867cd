"""Fine-tune an encoder for compositional sensitivity, and measure what it buys and what it costs.

Training uses sentence-transformers' own trainer and MultipleNegativesRankingLoss on (query, gold passage, hard
negative) triplets from the topics not held out. The tuned model's hard negatives are the gold passage's
structural twins; a control model is trained the same way with a random passage of the same topic as the
negative, so a difference between them is due to the structural negatives. Both, and the base model, are then
measured on the held-out topics that training never saw (twin confusion: what the tuning buys) and on a panel
of broad-retrieval sets (what it costs): the held-out topics and, given with `--panel`, sets from domains the
model never saw, where the published regressions were measured. Each model's change is paired against the
base model's on the same queries (paired bootstrap CIs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim import _env  # noqa: F401
from sim.core.errors import CascadeError
from sim.core.seeding import stream
from sim.retrieval.beir import RetrievalSet, from_corpus
from sim.retrieval.corpus import Corpus, Query
from sim.retrieval.embedding import Embedder, resolve_model
from sim.retrieval.measure import ProbeSettings, measure
from sim.retrieval.panel import SetResult, evaluate, paired, summary
from sim.retrieval.profile import write_profile
from sim.retrieval.retrievers import RetrieverSpec
from sim.retrieval.store import StoreLocation
from sim.retrieval.twins import twins_of

PUBLISHED_SMALL_ENCODER_NDCG_CHANGE = (-0.09, -0.08)
"""nDCG@10 change reported for small encoders fine-tuned with structural negatives (NanoBEIR: general-domain
sets unrelated to the tuning data), relative."""


@dataclass(frozen=True)
class FinetuneSettings:
    """Training and evaluation settings; `minutes` is the budget for training both models together."""

    holdout: tuple[str, ...] = ("renewal", "governing_law")
    minutes: float = 10.0
    max_steps: int = 200
    batch_size: int = 16
    learning_rate: float = 5e-5
    max_seq_length: int = 128
    seed: int = 0
    probes: int = 300
    k: int = 5


def split(corpus: Corpus, holdout: tuple[str, ...]) -> tuple[list[Query], Corpus]:
    """Training queries (topics not held out) and the held-out corpus: every passage of a topic training never
    sees, with the held-out topics' queries."""
    topics = sorted({q.topic for q in corpus.queries})
    unknown = [t for t in holdout if t not in topics]
    if unknown or not holdout:
        raise CascadeError(f"--holdout {','.join(holdout)}: choose held-out topics among the corpus's query topics "
                           f"{topics}")
    train = [q for q in corpus.queries if q.topic not in holdout]
    if not train:
        raise CascadeError("every topic is held out: nothing is left to train on")
    trained_topics = {q.topic for q in train}
    held = Corpus(f"{corpus.name}-heldout", tuple(p for p in corpus.passages if p.topic not in trained_topics),
                  tuple(q for q in corpus.queries if q.topic in holdout))
    return train, held


def triplets(corpus: Corpus, queries: list[Query], structural: bool, seed: int) -> dict[str, list[str]]:
    """(anchor, positive, negative) columns: negatives are the gold's twins, or (control) random passages of the
    gold's topic, one per twin so both models see the same number of examples."""
    by_topic: dict[str, list[str]] = {}
    for p in corpus.passages:
        by_topic.setdefault(p.topic, []).append(p.text)
    rng = stream(seed, "finetune/triplets", 0)
    rows: list[tuple[str, str, str]] = []
    for q in queries:
        gold = corpus.passage(q.gold_id)
        for twin in twins_of(gold.text, seed, gold.id)[0]:
            if structural:
                negative = twin.text
            else:
                others = [t for t in by_topic[gold.topic] if t != gold.text]
                negative = others[int(rng.integers(len(others)))]
            rows.append((q.text, gold.text, negative))
    order = rng.permutation(len(rows))
    return {"anchor": [rows[i][0] for i in order], "positive": [rows[i][1] for i in order],
            "negative": [rows[i][2] for i in order]}


def train(base: Path, data: dict[str, list[str]], out: Path, label: str, settings: FinetuneSettings,
          minutes: float) -> Path:
    """Train one model; checkpoints in out/<label>-checkpoints (a re-run resumes), the model in out/<label>."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer import losses
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        """Stops (and checkpoints) when the time budget is spent."""

        def __init__(self) -> None:
            self.start = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):
            if time.monotonic() - self.start > minutes * 60:
                control.should_training_stop = True
                control.should_save = True
            return control

    model = SentenceTransformer(str(base), device="cpu")
    reads = model.max_seq_length
    model.max_seq_length = settings.max_seq_length  # a shorter length trains faster
    checkpoints = out / f"{label}-checkpoints"
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints), max_steps=settings.max_steps, per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate, warmup_steps=max(1, settings.max_steps // 10), seed=settings.seed,
        data_seed=settings.seed, save_strategy="steps", save_steps=max(5, settings.max_steps // 4),
        save_total_limit=2, logging_steps=max(1, settings.max_steps // 10), report_to="none", use_cpu=True,
        dataloader_num_workers=0)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(data),
                                         loss=losses.MultipleNegativesRankingLoss(model), callbacks=[TimeBudget()])
    resume = checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if resume else None)
    target = out / label
    # The tuned model reads as much of a text as the base model: a shorter reading length saved with it would
    # cut long texts (queries of several sentences) and be measured as a cost of the tuning.
    model.max_seq_length = reads
    model.save(str(target))
    return target


PUBLISHED_STATEMENT = ("published for small encoders tuned with structural negatives, on NanoBEIR (unrelated "
                       "domains): -8% to -9% relative")


def compare(profiles: dict[str, dict[str, Any]], panel: dict[str, list[SetResult]], seed: int = 0) -> dict[str, Any]:
    """Both axes: what tuning bought (twin confusion per type on held-out topics) and what it cost (broad
    retrieval per panel set, paired against the base model). The published figure is stated only beside
    unrelated-domain sets: in-domain held-out topics are not what it was measured on."""
    table: dict[str, Any] = {}
    for name, p in profiles.items():
        table[name] = {
            "twin_outranks_gold": {t: {"rate": c["rate"], "ci95": c["rate_ci95"], "n": c["queries_with_twin"]}
                                   for t, c in p["confusion"].items() if c["rate"] is not None},
            "rates": p["rates"],
            "panel": {r.set.name: summary(r, seed) for r in panel[name]},
        }
    changes = {}
    for name in table:
        if name == "base":
            continue
        cost = {}
        for before, after in zip(panel["base"], panel[name], strict=True):
            diff = paired(before, after, seed)
            n = diff["ndcg_at_10"]
            ci = n["relative_ci95"]
            rel = "n/a" if n["relative"] is None else f"{100 * n['relative']:+.1f}%"
            rel_ci = "" if ci is None else f" [{100 * ci[0]:+.1f}%, {100 * ci[1]:+.1f}%]"
            d_ci = n["difference_ci95"]
            diff["statement"] = (
                f"{before.set.name} ({before.set.domain}): nDCG@10 {n['before']:.3f} -> {n['after']:.3f}, "
                f"{rel}{rel_ci} relative, {n['difference']:+.3f} points"
                + ("" if d_ci is None else f" [{d_ci[0]:+.3f}, {d_ci[1]:+.3f}] paired 95% CI")
                + (f"; {PUBLISHED_STATEMENT}" if before.set.domain == "unrelated" else ""))
            cost[before.set.name] = diff
        changes[name] = {
            "bought_twin_confusion_change": {t: table[name]["twin_outranks_gold"][t]["rate"] - v["rate"]
                                             for t, v in table["base"]["twin_outranks_gold"].items()
                                             if t in table[name]["twin_outranks_gold"]},
            "cost_broad_retrieval": cost,
        }
    unrelated = [r.set.name for r in panel["base"] if r.set.domain == "unrelated"]
    return {"models": table, "changes_vs_base": changes,
            "unrelated_domain_sets": unrelated,
            **({} if unrelated else {"warning": "no unrelated-domain set on the panel (--panel DIR): the cost on "
                                     "unrelated domains, where published regressions are measured, is not "
                                     "measured; in-domain held-out topics do not compare with published figures"})}


def evaluate_models(models: dict[str, str], held: Corpus, panel_sets: list[RetrievalSet], out: Path,
                    settings: FinetuneSettings, cache: Path, base_name: str) -> dict[str, Any]:
    """Measure each model (name -> directory): twin profile on the held-out topics (written to
    out/profiles/NAME.yaml) and broad retrieval on the panel (the held-out topics, then `panel_sets`)."""
    location = StoreLocation(None, cache / "chroma")
    probe = ProbeSettings(k=settings.k, probes=settings.probes, seed=settings.seed)
    sets = [from_corpus(held), *panel_sets]
    dense = RetrieverSpec("dense")
    profiles, panel = {}, {}
    for name, path in models.items():
        embedder = Embedder(path, cache_dir=cache)
        profiles[name] = measure(held, embedder, location, probe)
        profiles[name]["model"]["name"] = f"{base_name} ({name})" if name != "base" else base_name
        panel[name] = [evaluate(s, dense, embedder, location, settings.seed) for s in sets]
        profiles[name]["panel"] = [summary(r, settings.seed) for r in panel[name]]
        write_profile(profiles[name], out / "profiles" / f"{name}.yaml")
    return compare(profiles, panel, settings.seed)


def finetune(corpus: Corpus, out: Path, settings: FinetuneSettings = FinetuneSettings(), model: str | None = None,
             control: bool = True, cache_dir: Path | None = None,
             panel_sets: list[RetrievalSet] = ()) -> dict[str, Any]:
    """Train the tuned (and control) model, measure base / tuned / control on held-out topics and on the panel,
    write profiles and comparison.yaml to `out`; returns the comparison, with `written`: what was written."""
    import yaml

    from sim.core.atomic import write_text
    from sim.retrieval.embedding import default_cache_dir

    train_queries, held = split(corpus, settings.holdout)
    base_name, base_path = resolve_model(model)
    out.mkdir(parents=True, exist_ok=True)
    budget = settings.minutes / (2 if control else 1)
    tuned_data = triplets(corpus, train_queries, True, settings.seed)
    models = {"base": str(base_path), "tuned": str(train(base_path, tuned_data, out, "tuned", settings, budget))}
    if control:
        models["control"] = str(train(base_path, triplets(corpus, train_queries, False, settings.seed), out,
                                      "control", settings, budget))
    cache = cache_dir or default_cache_dir()
    result = {"corpus": corpus.name, "held_out_topics": list(settings.holdout),
              "training_queries": len(train_queries), "training_triplets": len(tuned_data["anchor"]),
              "settings": settings.__dict__ | {"holdout": list(settings.holdout)},
              **evaluate_models(models, held, list(panel_sets), out, settings, cache, base_name)}
    write_text(out / "comparison.yaml", yaml.safe_dump(result, sort_keys=False, width=110))
    trained = [n for n in models if n != "base"]
    result["written"] = ([f"{n}/" for n in trained] + [f"{n}-checkpoints/" for n in trained]
                         + [f"profiles/{n}.yaml" for n in models] + ["comparison.yaml"])
    return result
