"""Fine-tuning for compositional sensitivity: a tiny run changes the model, reproducibly; on held-out twins the
tuned model confuses less than the base model, and the broad-retrieval change is stated whatever its sign."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from sentence_transformers import SentenceTransformer
from typer.testing import CliRunner

from sim.cli import app
from sim.retrieval.corpora.builtin import contract_corpus
from sim.retrieval.embedding import resolve_model
from sim.retrieval.finetune import FinetuneSettings, finetune, split, train, triplets

runner = CliRunner()
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


def test_tuned_model_confuses_fewer_held_out_twins(tmp_path):
    corpus = contract_corpus(contracts=30)
    settings = FinetuneSettings(max_steps=25, batch_size=8, max_seq_length=64, seed=0, probes=60, minutes=10)
    result = finetune(corpus, tmp_path / "ft", settings, control=False, cache_dir=tmp_path / "cache")
    base = result["models"]["base"]["twin_outranks_gold"]
    tuned = result["models"]["tuned"]["twin_outranks_gold"]
    mean = {name: np.mean([v["rate"] for v in table.values()]) for name, table in (("base", base), ("tuned", tuned))}
    assert mean["tuned"] < mean["base"], mean
    change = result["changes_vs_base"]["tuned"]
    assert "broad retrieval" in change["statement"] and "-8% to -9%" in change["statement"]
    saved = yaml.safe_load((tmp_path / "ft" / "comparison.yaml").read_text())
    assert saved["models"]["tuned"]["ndcg_at_10"] == pytest.approx(result["models"]["tuned"]["ndcg_at_10"])
    assert (tmp_path / "ft" / "profiles" / "tuned.yaml").is_file()


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
