"""`cascade measure` end to end: real embeddings (the packaged MiniLM), real Chroma, real data from ../shared."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.core.errors import CascadeError
from sim.retrieval.corpus import Corpus, Passage
from sim.retrieval.embedding import Embedder, resolve_model
from sim.retrieval.measure import TWIN_MARK, ProbeSettings, measure, probe_queries
from sim.retrieval.store import StoreLocation, VectorIndex, connect
from sim.retrieval.twins import twins_of
from sim.runner import run
from sim.scenario.load import load_scenario
from tests.chroma_fixtures import chroma_server  # noqa: F401

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
runner = CliRunner()

SMALL = [
    "The Supplier shall indemnify the Customer against all third-party claims arising from the Services.",
    "The Licensee shall not sublicense the Software without the prior written consent of the Licensor.",
    "Either party may terminate this Agreement upon thirty (30) days' written notice to the other party.",
    "The Buyer shall pay each invoice within 45 days of receipt.",
    "In no event shall the Provider's aggregate liability exceed $500,000.",
    "This Agreement shall be governed by the laws of the State of New York.",
    "The Contractor will deliver monthly reports to the Company.",
    "The Seller must notify the Buyer of any defect within ten (10) business days.",
    "Confidential Information does not include information that is publicly available.",
    "The Agreement renews automatically for successive one (1) year terms unless either party objects.",
    "The Tenant shall maintain general liability insurance of at least $1,000,000.",
    "Payments are due on the first day of each calendar month.",
    "The Customer may audit the Supplier's records once per year on reasonable notice.",
    "Neither party shall assign this Agreement without the other party's consent.",
    "The Distributor has exclusive rights in the Territory for an initial term of three years.",
]


def small_corpus() -> Corpus:
    return Corpus("small", tuple(Passage(f"p{i:02d}", t) for i, t in enumerate(SMALL)))


def test_profile_counts_equal_a_brute_force_cosine_ranking(tmp_path):
    corpus = small_corpus()
    settings = ProbeSettings(k=3, probes=50, seed=3)
    profile = measure(corpus, Embedder(cache_dir=tmp_path), StoreLocation(None, tmp_path / "chroma"), settings)

    # Independently: the same texts, encoded directly by sentence-transformers, ranked by numpy.
    from sentence_transformers import SentenceTransformer

    texts = {p.id: p.text for p in corpus.passages}
    queries = probe_queries(corpus, settings)
    for pid in sorted({q.gold_id for q in queries}):
        for twin in twins_of(texts[pid], settings.seed, pid)[0]:
            texts[f"{pid}{TWIN_MARK}{twin.error_type}"] = twin.text
    ids = list(texts)
    model = SentenceTransformer(str(resolve_model(None)[1]), device="cpu")
    P = model.encode([texts[i] for i in ids], normalize_embeddings=True).astype(np.float64)
    Q = model.encode([q.text for q in queries], normalize_embeddings=True).astype(np.float64)
    expected = {"ok": 0, "topical_miss": 0, "negation_flip": 0, "role_swap": 0, "modifier_swap": 0,
                "numeric_swap": 0}
    corpus_rows = [j for j, i in enumerate(ids) if TWIN_MARK not in i]
    for qi, q in enumerate(queries):
        scores = P @ Q[qi]
        own = corpus_rows + [j for j, i in enumerate(ids) if i.startswith(q.gold_id + TWIN_MARK)]
        first = ids[min(own, key=lambda j: (-scores[j], ids[j]))]
        broad = [ids[j] for j in sorted(corpus_rows, key=lambda j: (-scores[j], ids[j]))[: settings.k]]
        if TWIN_MARK in first:
            expected[first.split(TWIN_MARK)[1]] += 1
        elif q.gold_id not in broad:
            expected["topical_miss"] += 1
        else:
            expected["ok"] += 1
    got = {k: v for k, v in profile["counts"].items() if k != "queries"}
    assert got == expected
    assert profile["counts"]["queries"] == len(SMALL)
    assert sum(profile["rates"].values()) == pytest.approx(1 - expected["ok"] / len(SMALL))
    # twins are near-identical for this encoder: the point of the exercise
    assert profile["confusion"]["role_swap"]["mean_twin_cosine_to_gold"] > 0.9


def test_second_measurement_comes_from_the_cache(tmp_path):
    corpus = small_corpus()
    location = StoreLocation(None, tmp_path / "chroma")
    first = measure(corpus, Embedder(cache_dir=tmp_path), location)
    assert first["embeddings"]["computed"] > 0
    again = Embedder(cache_dir=tmp_path)
    second = measure(corpus, again, location)
    assert second["embeddings"]["computed"] == 0
    assert again._model is None  # the model was never even loaded
    for key in ("rates", "counts", "confusion", "broad_retrieval"):
        assert second[key] == first[key]


def test_a_5mb_passage_is_cut_to_what_the_model_reads_before_it_is_twinned(tmp_path):
    from rich.console import Console
    from sentence_transformers import SentenceTransformer

    from sim.output.console import render_profile

    long = " ".join(SMALL * 3000)  # 5.3 MB: every SMALL clause, over and over
    corpus = Corpus("big", small_corpus().passages + (Passage("huge", long),))
    embedder = Embedder(cache_dir=tmp_path)
    profile = measure(corpus, embedder, StoreLocation(None, tmp_path / "chroma"), ProbeSettings(probes=50))
    assert profile["corpus"]["truncated_to_model"] == 1 and profile["counts"]["queries"] == len(SMALL) + 1
    cut = embedder.readable(long)
    assert long.startswith(cut) and len(cut) < 2_000
    console = Console(record=True, width=200)
    render_profile(profile, console)
    assert "1 passage(s) longer than the model reads were cut" in console.export_text()
    # Cut after the last word the model reads: sentence-transformers, given the whole text (a 200,000-character
    # head of it, to keep the test short), reads the same tokens and returns the same vector.
    model = SentenceTransformer(str(resolve_model(None)[1]), device="cpu")
    whole, readable = model.encode([long[:200_000], cut], normalize_embeddings=True).astype(np.float64)
    assert float(whole @ readable) == pytest.approx(1.0, abs=1e-6)


def _cuad_jsonl(path: Path, per_category: int = 40) -> Path:
    categories = ["Cap On Liability", "Governing Law", "Termination For Convenience", "Anti-Assignment",
                  "Audit Rights", "Insurance"]
    rows = []
    with (DATA / "cuad" / "master_clauses.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            for c in categories:
                for i, clause in enumerate(ast.literal_eval(r[c]) if r[c] else []):
                    if 40 < len(clause) < 600 and sum(1 for x in rows if x["topic"] == c) < per_category:
                        rows.append({"id": f"{r['Filename'][:40]}/{c}/{i}", "text": clause, "topic": c})
    path.write_text("\n".join(json.dumps(x) for x in rows) + "\n", encoding="utf-8")
    return path


def test_cuad_clauses_end_to_end(tmp_path):
    corpus = _cuad_jsonl(tmp_path / "cuad.jsonl")
    out = tmp_path / "cuad-profile.yaml"
    result = runner.invoke(app, ["measure", "--corpus", str(corpus), "--probes", "60", "--cache-dir", str(tmp_path),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    profile = yaml.safe_load(out.read_text())
    assert profile["counts"]["queries"] == 60
    assert sum(v for k, v in profile["counts"].items() if k != "queries") == 60
    assert profile["twins"]["made"]["negation_flip"] > 10
    assert 0 < profile["broad_retrieval"]["ndcg_at_10"] <= 1
    assert "Error profile" in result.output


def test_banking77_queries_end_to_end(tmp_path):
    source = DATA / "banking77" / "train.csv"
    subset = tmp_path / "banking77.csv"
    with source.open(encoding="utf-8") as f:
        lines = f.read().splitlines()[:301]
    subset.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "b77.yaml"
    result = runner.invoke(app, ["measure", "--corpus", str(subset), "--probes", "60", "--k", "5",
                                 "--cache-dir", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    profile = yaml.safe_load(out.read_text())
    assert profile["corpus"]["passages"] == 300 and profile["counts"]["queries"] == 60


def test_a_scenario_uses_a_measured_profile(tmp_path):
    profile_path = tmp_path / "profile.yaml"
    result = runner.invoke(app, ["measure", "--corpus", str(_small_csv(tmp_path)), "--cache-dir", str(tmp_path),
                                 "--out", str(profile_path)])
    assert result.exit_code == 0, result.output
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"""
schema_version: 1
name: measured
seed: 1
retrievers:
  docs: {{kind: measured, profile: {profile_path.name}}}
workflow:
  steps:
    - {{id: get, kind: retrieve, retriever: docs}}
    - {{id: decide, kind: decide, inputs: [get], susceptibility: {{default: 1.0}}}}
    - {{id: act, kind: act, inputs: [decide]}}
costs:
  act: {{failure_loss: 100}}
""")
    measured = yaml.safe_load(profile_path.read_text())
    s = run(load_scenario(scenario), engine="analytic").summary
    assert s["p_failure"] == pytest.approx(sum(measured["rates"].values()))
    assert s["retrievers"]["docs"]["measured_with"]["model"] == "all-MiniLM-L6-v2"
    bad = tmp_path / "bad.yaml"
    bad.write_text(scenario.read_text().replace(profile_path.name, "missing.yaml"))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2 and "retrievers.docs.profile" in result.output


def _small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i, t in enumerate(SMALL):
            w.writerow([f"p{i}", t])
    return path


@pytest.mark.parametrize("content, args, fragment", [
    ("id,body\n1,hello\n", [], "missing column(s) ['text']"),
    ("", [], "empty"),
    (b"id,text\n1,caf\xe9\n", [], "not UTF-8"),
    ("id,text\n1,a\n1,b\n", [], "appears twice"),
    ("id,text\n1,hello\n", ["--model", "/nonexistent/model"], "neither a local directory"),
    ("id,text\n1,hello\n", ["--store", "http://127.0.0.1:9"], "cannot reach a Chroma server"),
    ("id,text\n1,hello\n", ["--store", "http://nohostport"], "http://HOST:PORT"),
])
def test_bad_measure_inputs_exit_2(tmp_path, content, args, fragment):
    path = tmp_path / "corpus.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = runner.invoke(app, ["measure", "--corpus", str(path), "--cache-dir", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())


def test_a_collection_built_with_another_model_is_refused(tmp_path):
    store = connect(StoreLocation(None, tmp_path / "chroma"))
    vectors = {"a": np.ones(4) / 2, "b": np.array([1.0, 0, 0, 0])}
    VectorIndex(store, "cs-test", "model-one", vectors)
    with pytest.raises(CascadeError, match="built with another model"):
        VectorIndex(store, "cs-test", "model-two", vectors)


def test_server_mode_against_a_real_chroma_server(chroma_server, tmp_path):  # noqa: F811
    corpus = small_corpus()
    embedded = measure(corpus, Embedder(cache_dir=tmp_path), StoreLocation(None, tmp_path / "chroma"))
    served = measure(corpus, Embedder(cache_dir=tmp_path), StoreLocation(chroma_server.url, None))
    assert served["counts"] == embedded["counts"]
    assert served["settings"]["store"] == chroma_server.url


def test_a_scenario_can_name_model_and_corpus_and_is_measured_once(tmp_path, monkeypatch):
    monkeypatch.setenv("CASCADESIM_CACHE", str(tmp_path / "cache"))
    _small_csv(tmp_path)
    scenario = tmp_path / "direct.yaml"
    scenario.write_text("""
schema_version: 1
name: direct
seed: 1
retrievers:
  docs: {kind: measured, corpus: small.csv, probes: 15}
workflow:
  steps:
    - {id: get, kind: retrieve, retriever: docs}
    - {id: act, kind: act, inputs: [get]}
costs:
  act: {failure_loss: 100}
""")
    first = load_scenario(scenario)
    profiles = list((tmp_path / "cache" / "profiles").glob("*.yaml"))
    assert len(profiles) == 1
    stamp = profiles[0].stat().st_mtime_ns
    second = load_scenario(scenario)  # from the cache: the profile is not measured again
    assert profiles[0].stat().st_mtime_ns == stamp
    assert first.retrievers["docs"].rates == second.retrievers["docs"].rates
    assert first.retrievers["docs"].measured_with["corpus"] == "small"
    both = scenario.read_text().replace("corpus: small.csv", "corpus: small.csv, profile: x.yaml")
    scenario.write_text(both)
    result = runner.invoke(app, ["validate", str(scenario)])
    assert result.exit_code == 2 and "either a profile" in " ".join(result.output.split())
