"""Fine-tuning for compositional sensitivity: a tiny run changes the model, reproducibly; on held-out twins the
tuned model confuses less than the base model, and the broad-retrieval change is stated whatever its sign."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console
from sentence_transformers import SentenceTransformer
from typer.testing import CliRunner

from sim.cli import app
from sim.output.console import render_finetune
from sim.retrieval.beir import read_beir
from sim.retrieval.corpora.builtin import contract_corpus
from sim.retrieval.embedding import resolve_model
from sim.retrieval.finetune import FinetuneSettings, finetune, split, train, triplets

runner = CliRunner()
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "retrieval"
PROBE = ["Supplier shall indemnify Customer against third-party claims.",
         "Supplier shall not indemnify Customer against third-party claims."]


def _embed(path) -> np.ndarray:
    return SentenceTransformer(str(path), device="cpu").encode(PROBE, normalize_embeddings=True)


def tiny(seed: int, steps: int):
    """Training triplets of a 4-contract corpus, settings for a few steps, and the base model's folder."""
    corpus = contract_corpus(contracts=4)
    queries, _ = split(corpus, ("renewal", "governing_law"))
    settings = FinetuneSettings(max_steps=steps, batch_size=4, max_seq_length=48, seed=seed)
    return triplets(corpus, queries, True, seed=seed), settings, resolve_model(None)[1]


def test_a_tiny_training_run_changes_the_model_and_is_reproducible(tmp_path):
    data, settings, base = tiny(seed=3, steps=3)
    first = train(base, data, tmp_path / "a", "tuned", settings, minutes=5)
    second = train(base, data, tmp_path / "b", "tuned", settings, minutes=5)
    assert not np.allclose(_embed(first), _embed(base), atol=1e-4)
    np.testing.assert_allclose(_embed(first), _embed(second), atol=1e-6)
    assert any((tmp_path / "a" / "tuned-checkpoints").glob("checkpoint-*"))
    # Trained at 48 tokens, the saved model still reads as much as the base model (256 tokens).
    assert SentenceTransformer(str(first), device="cpu").max_seq_length == \
        SentenceTransformer(str(base), device="cpu").max_seq_length == 256


def dbpedia_slice(folder: Path, queries: int, unjudged: int) -> Path:
    """The first `queries` DBpedia-Entity queries that have a relevant document, every document judged for them
    and the first `unjudged` documents judged for no query, as a BEIR folder (encoding all 5,000 documents twice
    took most of this family's time)."""
    source = SHARED / "dbpedia"
    qrels = [line.split("\t") for line in (source / "qrels" / "test.tsv").read_text().splitlines()]
    header, rows = qrels[0], qrels[1:]
    relevant = list(dict.fromkeys(q for q, _, score in rows if int(score) > 0))[:queries]
    kept = [r for r in rows if r[0] in relevant]
    judged_here, judged = {d for _, d, _ in kept}, {d for _, d, _ in rows}
    corpus = [line for line in (source / "corpus.jsonl").read_text().splitlines() if line.strip()]
    spare = [line for line in corpus if json.loads(line)["_id"] not in judged][:unjudged]
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(
        [line for line in corpus if json.loads(line)["_id"] in judged_here] + spare) + "\n")
    (folder / "queries.jsonl").write_text("\n".join(
        line for line in (source / "queries.jsonl").read_text().splitlines()
        if line.strip() and json.loads(line)["_id"] in relevant) + "\n")
    (folder / "qrels" / "test.tsv").write_text("\n".join("\t".join(r) for r in [header, *kept]) + "\n")
    return folder


def test_tuned_model_confuses_fewer_held_out_twins_and_states_its_cost_on_an_unrelated_domain(tmp_path):
    corpus = contract_corpus(contracts=30)
    settings = FinetuneSettings(max_steps=25, batch_size=8, max_seq_length=64, seed=0, probes=60, minutes=10)
    result = finetune(corpus, tmp_path / "ft", settings, control=False, cache_dir=tmp_path / "cache",
                      panel_sets=[read_beir(dbpedia_slice(tmp_path / "dbpedia", queries=12, unjudged=300))])
    base = result["models"]["base"]["twin_outranks_gold"]
    tuned = result["models"]["tuned"]["twin_outranks_gold"]
    mean = {name: np.mean([v["rate"] for v in table.values()]) for name, table in (("base", base), ("tuned", tuned))}
    assert mean["tuned"] < mean["base"], mean

    # The cost on DBpedia (never seen): a paired nDCG@10 difference with its CI, whatever its sign.
    cost = result["changes_vs_base"]["tuned"]["cost_broad_retrieval"]
    dbpedia = cost["dbpedia"]["ndcg_at_10"]
    low, high = dbpedia["difference_ci95"]
    assert low <= dbpedia["difference"] <= high and low < high
    assert dbpedia["difference"] == pytest.approx(dbpedia["after"] - dbpedia["before"])
    assert cost["dbpedia"]["queries"] == 12 and result["unrelated_domain_sets"] == ["dbpedia"]
    # The published figure stands only beside the comparable (unrelated-domain) measurement.
    assert "-8% to -9%" in cost["dbpedia"]["statement"]
    in_domain = cost[f"{corpus.name}-heldout"]
    assert "in-domain" in in_domain["statement"] and "-8%" not in in_domain["statement"]

    console = Console(record=True, width=400)
    render_finetune(result, console)
    lines = console.export_text().splitlines()
    cost_rows = [line for line in lines if "heldout" in line or "dbpedia" in line]
    assert any("dbpedia" in line and "unrelated" in line and "-8% to -9%" in line for line in cost_rows)
    assert all("-8%" not in line for line in lines if "heldout" in line or "in-domain" in line)
    assert lines.index(next(x for x in lines if x.startswith("What the tuning bought"))) < \
        lines.index(next(x for x in lines if x.startswith("What it cost")))

    saved = yaml.safe_load((tmp_path / "ft" / "comparison.yaml").read_text())
    assert saved["changes_vs_base"]["tuned"]["cost_broad_retrieval"]["dbpedia"]["ndcg_at_10"]["difference"] == \
        pytest.approx(dbpedia["difference"])
    assert (tmp_path / "ft" / "profiles" / "tuned.yaml").is_file()
    # --no-control: what was written is what is said, and no control/ folder is claimed.
    assert result["written"] == ["tuned/", "tuned-checkpoints/", "profiles/base.yaml", "profiles/tuned.yaml",
                                 "comparison.yaml"]
    assert all((tmp_path / "ft" / w).exists() for w in result["written"])
    assert not (tmp_path / "ft" / "control").exists()


def test_without_an_unrelated_set_the_output_says_the_cost_there_is_not_measured(tmp_path):
    corpus = contract_corpus(contracts=6)
    settings = FinetuneSettings(max_steps=2, batch_size=4, max_seq_length=32, seed=0, probes=20, minutes=5)
    result = finetune(corpus, tmp_path / "ft", settings, control=False, cache_dir=tmp_path / "cache")
    assert result["unrelated_domain_sets"] == [] and "not measured" in result["warning"]
    console = Console(record=True, width=400)
    render_finetune(result, console)
    text = console.export_text()
    assert "-8%" not in text and "not measured" in text


def test_unknown_holdout_topic_exits_2(tmp_path):
    result = runner.invoke(app, ["finetune", "--holdout", "renewals", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "renewal" in result.output


def test_an_interrupted_training_resumes_from_its_checkpoint(tmp_path):
    data, settings, base = tiny(seed=5, steps=6)
    # A budget that runs out after the first step: the trainer stops and checkpoints.
    train(base, data, tmp_path, "tuned", settings, minutes=1e-6)
    first = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "tuned-checkpoints").glob("checkpoint-*"))
    assert first and max(first) < settings.max_steps
    # The re-run picks the checkpoint up and finishes the remaining steps.
    train(base, data, tmp_path, "tuned", settings, minutes=5)
    steps = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "tuned-checkpoints").glob("checkpoint-*"))
    assert max(steps) == settings.max_steps
    state = json.loads((tmp_path / "tuned-checkpoints" / f"checkpoint-{max(steps)}" / "trainer_state.json").read_text())
    assert state["global_step"] == settings.max_steps and state["log_history"][0]["step"] <= max(first)
