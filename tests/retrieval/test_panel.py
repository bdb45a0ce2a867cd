"""The broad-retrieval panel: BEIR-layout folders read as written, metrics equal to an independent computation,
paired bootstrap differences; lexical (BM25) and hybrid retrievers through the same probe."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.core.errors import CascadeError
from sim.core.seeding import stream
from sim.retrieval.beir import read_beir
from sim.retrieval.corpus import Corpus, Passage, Query
from sim.retrieval.measure import ProbeSettings, measure
from sim.retrieval.panel import SetResult, evaluate, paired, query_metrics, summary
from sim.retrieval.retrievers import FullScorer, RetrieverSpec
from sim.retrieval.twins import twins_of

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "retrieval"
runner = CliRunner()

DOCS = {
    "d1": ("Paris", "Paris is the capital of France and its largest city."),
    "d2": ("Berlin", "Berlin is the capital of Germany."),
    "d3": ("Python", "Python is a programming language created by Guido van Rossum."),
    "d4": ("Rust", "Rust is a systems programming language focused on memory safety."),
    "d5": ("Nile", "The Nile is a major river in north-eastern Africa."),
    "d6": ("Amazon", "The Amazon river in South America is the largest river by discharge."),
    "d7": ("Espresso", "Espresso is coffee brewed by forcing hot water through finely ground beans."),
    "d8": ("", "Tea is an aromatic beverage prepared by pouring hot water over cured leaves."),
}
QUERIES = {"q1": "capital city of France", "q2": "programming languages", "q3": "longest rivers",
           "q4": "hot drinks made with water", "q5": "a query judged on nothing relevant"}
QRELS = [("q1", "d1", 2), ("q1", "d2", 1), ("q2", "d3", 1), ("q2", "d4", 2), ("q2", "d1", 0), ("q3", "d5", 2),
         ("q3", "d6", 2), ("q4", "d7", 1), ("q4", "d8", 1), ("q5", "d2", 0), ("q1", "not-in-subset", 1)]


def write_beir(root: Path, qrels=QRELS) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n"
                                               for i, (t, x) in DOCS.items()))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": x}) + "\n" for i, x in QUERIES.items()))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                             + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels))
    return root


def test_a_beir_folder_is_read_with_graded_judgments_and_what_was_left_out(tmp_path):
    s = read_beir(write_beir(tmp_path / "tiny"))
    assert s.name == "tiny" and s.domain == "unrelated" and len(s.doc_ids) == 8
    assert s.query_ids == ("q1", "q2", "q3", "q4")  # q5 has no relevant document
    assert dict(s.qrels["q1"]) == {"d1": 2, "d2": 1} and "d1" not in s.qrels["q2"]  # grade 0: not relevant
    assert s.doc_texts[0] == "Paris\n\nParis is the capital of France and its largest city."
    assert s.doc_texts[7].startswith("Tea is")  # an empty title is allowed and adds nothing
    assert dict(s.left_out) == {"judgments_of_documents_not_in_corpus": 1, "queries_without_relevant_document": 1}


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "queries.jsonl").unlink(), "no queries.jsonl"),
    (lambda r: (r / "qrels" / "test.tsv").rename(r / "qrels" / "dev.tsv"), "dev.tsv"),
    (lambda r: (r / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n"), "test.tsv:2"),
    (lambda r: (r / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n'),
     "appears twice"),
])
def test_a_damaged_beir_folder_is_refused_naming_the_file(tmp_path, damage, message):
    root = write_beir(tmp_path / "set")
    damage(root)
    with pytest.raises(CascadeError, match=message):
        read_beir(root)


def independent_metrics(scores: np.ndarray, doc_ids: list[str], qrels: dict[str, int]) -> tuple[float, ...]:
    """nDCG@10 (linear gains), recall@100, MRR@10 from a score vector, written out with numpy."""
    order = np.argsort(-scores, kind="stable")
    gains = np.array([qrels.get(doc_ids[j], 0) for j in order], dtype=float)
    discounts = 1.0 / np.log2(np.arange(2, 12))
    dcg = float((gains[:10] * discounts[: len(gains[:10])]).sum())
    ideal = np.sort(np.array(list(qrels.values()), dtype=float))[::-1][:10]
    idcg = float((ideal * discounts[: len(ideal)]).sum())
    hits = np.flatnonzero(gains[:10] > 0)
    return dcg / idcg, float((gains[:100] > 0).sum()) / len(qrels), 0.0 if not len(hits) else 1.0 / (hits[0] + 1)


def test_query_metrics_match_the_definitions():
    m = query_metrics(["a", "x", "b"], {"a": 1, "b": 2})
    ideal = 2 + 1 / math.log2(3)
    assert m["ndcg_at_10"] == pytest.approx((1 + 2 / math.log2(4)) / ideal)
    assert m["recall_at_100"] == 1.0 and m["mrr_at_10"] == 1.0
    assert query_metrics(["x", "y"], {"a": 1}) == {"ndcg_at_10": 0.0, "recall_at_100": 0.0, "mrr_at_10": 0.0}


@pytest.mark.embedding
def test_dense_panel_metrics_equal_an_independent_numpy_computation(tmp_path):
    from sentence_transformers import SentenceTransformer

    from sim.retrieval.embedding import Embedder, resolve_model
    from sim.retrieval.store import StoreLocation

    s = read_beir(write_beir(tmp_path / "tiny"))
    result = evaluate(s, RetrieverSpec("dense"), Embedder(cache_dir=tmp_path / "cache"),
                      StoreLocation(None, tmp_path / "chroma"))
    model = SentenceTransformer(str(resolve_model(None)[1]), device="cpu")
    d = model.encode(list(s.doc_texts), normalize_embeddings=True).astype(np.float64)
    q = model.encode(list(s.query_texts), normalize_embeddings=True).astype(np.float64)
    for i, qid in enumerate(s.query_ids):
        expected = independent_metrics(d @ q[i], list(s.doc_ids), dict(s.qrels[qid]))
        got = tuple(result.per_query[m][i] for m in ("ndcg_at_10", "recall_at_100", "mrr_at_10"))
        assert got == pytest.approx(expected, abs=1e-9), qid
    row = summary(result)
    assert row["ndcg_at_10"]["mean"] == pytest.approx(np.mean(result.per_query["ndcg_at_10"]))


def test_lexical_panel_metrics_equal_an_independent_numpy_computation(tmp_path):
    import bm25s

    s = read_beir(write_beir(tmp_path / "tiny"))
    result = evaluate(s, RetrieverSpec("lexical"), None, None)
    index = bm25s.BM25()
    index.index(bm25s.tokenize(list(s.doc_texts), stopwords=None, show_progress=False), show_progress=False)
    # The documented tie rule: a seeded random order of the documents (the scores tie often: zeros).
    tiebreak = stream(0, "retriever/ties", 0).permutation(len(s.doc_ids))
    for i, qid in enumerate(s.query_ids):
        scores = index.get_scores(bm25s.tokenize([s.query_texts[i]], stopwords=None, return_ids=False,
                                                 show_progress=False)[0])
        order = np.lexsort((tiebreak, -np.asarray(scores, dtype=float)))
        ranked = -np.argsort(order).astype(float)  # a score vector with that order and no ties
        expected = independent_metrics(ranked, list(s.doc_ids), dict(s.qrels[qid]))
        got = tuple(result.per_query[m][i] for m in ("ndcg_at_10", "recall_at_100", "mrr_at_10"))
        assert got == pytest.approx(expected), qid


def test_the_paired_difference_is_the_mean_of_per_query_differences_with_a_covering_ci(tmp_path):
    s = read_beir(write_beir(tmp_path / "tiny"))
    rng = stream(1, "test/panel", 0)
    before = {m: rng.uniform(0.2, 0.8, size=len(s.query_ids)) for m in ("ndcg_at_10", "recall_at_100", "mrr_at_10")}
    after = {m: v - 0.1 for m, v in before.items()}
    diff = paired(SetResult(s, before), SetResult(s, after))
    n = diff["ndcg_at_10"]
    assert n["difference"] == pytest.approx(-0.1)
    # Every query lost exactly 0.1: a paired bootstrap sees no spread at all.
    assert n["difference_ci95"] == pytest.approx([-0.1, -0.1])
    assert n["relative"] == pytest.approx(-0.1 / before["ndcg_at_10"].mean())
    assert n["relative_ci95"][0] <= n["relative"] <= n["relative_ci95"][1]
    assert paired(SetResult(s, before), SetResult(s, after)) == diff  # seeded: the same CI every time


def test_bm25_scores_a_role_swap_twin_exactly_as_its_original():
    original = "The Supplier shall indemnify the Customer against all third-party claims."
    twins, _ = twins_of(original, 0, "p1")
    swap = next(t.text for t in twins if t.error_type == "role_swap")
    negated = next(t.text for t in twins if t.error_type == "negation_flip")
    assert sorted(swap.lower().split()) == sorted(original.lower().split())  # the same bag of words
    docs = [original, swap, negated, "Payments are due monthly.", "The Customer may audit the Supplier."]
    queries = ["supplier indemnify customer claims", "who indemnifies whom", "customer shall indemnify supplier"]
    scorer = FullScorer(RetrieverSpec("lexical"), docs, queries, seed=0)
    for i in range(len(queries)):
        scores = scorer.lexical(i)
        assert scores[1] == scores[0]  # exactly equal, not approximately: BM25 cannot separate them
    # Negation adds a token the query lacks: the longer twin scores below its original.
    assert scorer.lexical(0)[2] < scorer.lexical(0)[0]


def test_the_lexical_probe_counts_role_swap_ties_and_breaks_them_by_a_seeded_order():
    texts = ["The Supplier shall indemnify the Customer against all claims.",
             "The Licensor shall grant the Licensee a licence to the Software.",
             "The Buyer shall pay the Seller within thirty days.",
             "The Tenant shall notify the Landlord of any damage.",
             "The Contractor shall deliver reports to the Company every month."]
    corpus = Corpus("swaps", tuple(Passage(f"p{i}", t) for i, t in enumerate(texts)),
                    tuple(Query(t.lower().rstrip("."), f"p{i}") for i, t in enumerate(texts)))
    seen = set()
    for seed in range(6):
        profile = measure(corpus, None, None, ProbeSettings(k=1, probes=5, seed=seed), RetrieverSpec("lexical"))
        c = profile["confusion"]["role_swap"]
        assert c["twin_ties_gold"] == c["queries_with_twin"] > 0 and c["twin_outranks_gold"] == 0
        assert profile["retriever"]["kind"] == "lexical" and "seeded" in profile["retriever"]["bm25"]["ties"]
        seen.add(profile["counts"]["role_swap"])
        assert profile == {**measure(corpus, None, None, ProbeSettings(k=1, probes=5, seed=seed),
                                     RetrieverSpec("lexical")), "created": profile["created"]}
    assert len(seen) > 1  # ties go either way with the seed, never always to one side


def test_measure_refuses_an_unknown_retriever_or_panel_folder(tmp_path):
    result = runner.invoke(app, ["measure", "--retriever", "sparse", "-o", str(tmp_path / "p.yaml")])
    assert result.exit_code == 2 and "dense, lexical, hybrid" in result.output
    result = runner.invoke(app, ["measure", "--retriever", "lexical", "--panel", str(tmp_path / "nowhere"),
                                 "-o", str(tmp_path / "p.yaml")])
    assert result.exit_code == 2 and "nowhere" in result.output and not (tmp_path / "p.yaml").exists()


def test_lexical_measure_with_a_shared_panel_set_writes_its_row(tmp_path):
    result = runner.invoke(app, ["measure", "--retriever", "lexical", "--probes", "30", "--panel",
                                 str(SHARED / "tau2_banking_kb"), "-o", str(tmp_path / "p.yaml")])
    assert result.exit_code == 0, result.output
    import yaml

    profile = yaml.safe_load((tmp_path / "p.yaml").read_text())
    row = profile["panel"][0]
    assert row["name"] == "tau2_banking_kb" and row["queries"] == 97 and row["documents"] == 698
    assert 0 < row["ndcg_at_10"]["mean"] < 1 and row["ndcg_at_10"]["ci95"][0] < row["ndcg_at_10"]["mean"]
    assert profile["embeddings"]["computed"] == 0


PAIRS = [
    {"original": "The store is open on Sundays.", "contrast": "The store is closed on Sundays.", "type": "negation",
     "query": "is the store open on sunday"},
    {"original": "Bob likes Alice.", "contrast": "Alice likes Bob.", "type": "role_swap",
     "query": "who does bob like"},
    {"original": "Turn the heating on before you leave.", "contrast": "Turn the heating off before you leave.",
     "type": "negation", "query": "should the heating be on", "contrast_query": "should the heating be off"},
    {"original": "The dog chased the cat across the yard.", "contrast": "The cat chased the dog across the yard.",
     "type": "role_swap"},
    {"original": "Refunds are available within 30 days.", "contrast": "Refunds are not available within 30 days.",
     "type": "negation"},
]


def write_pairs(path: Path, pairs=PAIRS) -> Path:
    """JSONL with the same fields on every line: an empty query means "none" (the keyword rewrite stands in)."""
    optional = {"query": "", "contrast_query": ""} if "query" in pairs[0] else {}
    path.write_text("".join(json.dumps({**optional, **p}) + "\n" for p in pairs))
    return path


def brute_force_pair_counts(score) -> dict[str, dict[str, int]]:
    """Rank each pair's two texts by `score(query, text)` directly, one pair at a time."""
    from sim.retrieval.measure import self_query

    out: dict[str, dict[str, int]] = {}
    for p in PAIRS:
        q1, q2 = p.get("query") or self_query(p["original"]), p.get("contrast_query") or self_query(p["contrast"])
        t = out.setdefault(p["type"], {"contrast_outranks_original": 0, "ties": 0, "paired_correct": 0})
        o1, c1, o2, c2 = score(q1, p["original"]), score(q1, p["contrast"]), score(q2, p["original"]), \
            score(q2, p["contrast"])
        t["contrast_outranks_original"] += c1 > o1
        t["ties"] += c1 == o1
        t["paired_correct"] += o1 > c1 and c2 > o2
    return out


def test_pairs_counts_with_bm25_equal_a_brute_force_ranking(tmp_path):
    import bm25s

    from sim.retrieval.measure import self_query
    from sim.retrieval.pairs import read_pairs, score_pairs

    pair_set = read_pairs(write_pairs(tmp_path / "pairs.jsonl"))
    got = score_pairs(pair_set.pairs, RetrieverSpec("lexical"), None, self_query)
    texts = list(dict.fromkeys(t for p in PAIRS for t in (p["original"], p["contrast"])))
    index = bm25s.BM25()
    index.index(bm25s.tokenize(texts, stopwords=None, show_progress=False), show_progress=False)

    def score(query, text):
        tokens = bm25s.tokenize([query], stopwords=None, return_ids=False, show_progress=False)[0]
        return float(index.get_scores(tokens)[texts.index(text)])

    expected = brute_force_pair_counts(score)
    for typ, counts in expected.items():
        assert {k: got[typ][k] for k in counts} == counts, typ
    assert got["role_swap"]["ties"] == 2  # a role swap keeps the bag of words


@pytest.mark.embedding
def test_pairs_counts_with_the_dense_retriever_equal_a_brute_force_ranking(tmp_path):
    from sentence_transformers import SentenceTransformer

    from sim.retrieval.embedding import resolve_model

    model = SentenceTransformer(str(resolve_model(None)[1]), device="cpu")

    def score(query, text):
        q, t = model.encode([query, text], normalize_embeddings=True)
        return round(float(q @ t), 5)  # float32 encodes of one batch vs another differ in the last bits

    expected = brute_force_pair_counts(score)
    pairs = write_pairs(tmp_path / "pairs.jsonl")
    result = runner.invoke(app, ["measure", "--corpus", "contracts", "--probes", "5", "--pairs", str(pairs),
                                 "--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "p.yaml")])
    assert result.exit_code == 0, result.output
    import yaml

    profile = yaml.safe_load((tmp_path / "p.yaml").read_text())
    recorded = profile["contrast_pairs"]
    assert recorded["file"] == str(pairs) and recorded["pairs"] == 5 and len(recorded["fingerprint"]) == 16
    for typ, counts in expected.items():
        assert {k: recorded["by_type"][typ][k] for k in counts} == counts, typ
    assert "Your contrast pairs" in result.output
    realism = recorded["twin_realism"]
    assert realism["negation"]["rule"] == "negation_flip" and realism["negation"]["pairs"] == 3
    assert "Twin realism" in result.output


@pytest.mark.embedding
def test_twin_realism_compares_each_original_to_its_real_contrast_and_to_its_rule_twin(tmp_path):
    from sentence_transformers import SentenceTransformer

    from sim.retrieval.embedding import Embedder, resolve_model
    from sim.retrieval.pairs import read_pairs
    from sim.retrieval.realism import twin_realism
    from sim.retrieval.twins import make_twin

    extra = [{"original": "Pay the invoice.", "contrast": "Do not pay the invoice.", "type": "sarcasm"}]
    pair_set = read_pairs(write_pairs(tmp_path / "pairs.jsonl", PAIRS + extra))
    got = twin_realism(pair_set.pairs, Embedder(None, tmp_path / "cache"), seed=3)
    assert got["sarcasm"] == {"pairs": 1, "rule": None, "twins_made": 0}  # no rule makes that type

    model = SentenceTransformer(str(resolve_model(None)[1]), device="cpu")
    for typ, rule in (("negation", "negation_flip"), ("role_swap", "role_swap")):
        real, twin = [], []
        for p in pair_set.pairs:
            if p.type != typ:
                continue
            made = make_twin(p.original, rule, stream(3, f"twins/{rule}/pair-line-{p.line}", 0))
            if made is None:
                continue
            o, c, t = model.encode([p.original, p.contrast, made.text], normalize_embeddings=True)
            real.append(float(o @ c))
            twin.append(float(o @ t))
        entry = got[typ]
        assert entry["twins_made"] == len(real) > 0
        assert entry["real_cosine"]["p50"] == pytest.approx(float(np.median(real)), abs=1e-4)
        assert entry["twin_cosine"]["mean"] == pytest.approx(float(np.mean(twin)), abs=1e-4)
        diff = np.array(twin) - np.array(real)
        assert entry["mean_difference"] == pytest.approx(float(diff.mean()), abs=1e-4)
        lo, hi = entry["mean_difference_ci95"]
        assert diff.min() - 1e-6 <= lo <= entry["mean_difference"] <= hi <= diff.max() + 1e-6
        assert entry["twin_closer_share"] == pytest.approx(float((diff > 0).mean()))


def test_a_bad_pairs_file_is_refused_naming_the_line(tmp_path):
    bad = write_pairs(tmp_path / "pairs.jsonl", PAIRS[:1] + [{"original": "x y", "contrast": "x y", "type": "t"}])
    result = runner.invoke(app, ["measure", "--retriever", "lexical", "--pairs", str(bad),
                                 "-o", str(tmp_path / "p.yaml")])
    assert result.exit_code == 2 and "pairs.jsonl:2" in result.output
    missing = write_pairs(tmp_path / "m.jsonl", [{"original": "a b", "contrast": "b a"}])
    result = runner.invoke(app, ["measure", "--retriever", "lexical", "--pairs", str(missing),
                                 "-o", str(tmp_path / "p.yaml")])
    assert result.exit_code == 2 and "type" in result.output


@pytest.mark.embedding
def test_hybrid_confuses_negation_less_than_dense_and_lexical_breaks_role_swaps_by_ties(tmp_path):
    from sim.retrieval.corpora.builtin import contract_corpus
    from sim.retrieval.embedding import Embedder
    from sim.retrieval.store import StoreLocation

    corpus = contract_corpus(contracts=12)
    settings = ProbeSettings(probes=80, seed=0)
    embedder = Embedder(cache_dir=tmp_path / "cache")
    location = StoreLocation(None, tmp_path / "chroma")
    profiles = {kind: measure(corpus, embedder if kind != "lexical" else None, location, settings,
                              RetrieverSpec(kind)) for kind in ("dense", "lexical", "hybrid")}
    neg = {k: p["confusion"]["negation_flip"]["rate"] for k, p in profiles.items()}
    # BM25 sees the added "not": fusing it in makes a negated twin outrank its original less often.
    assert neg["hybrid"] < neg["dense"], neg
    assert neg["lexical"] < neg["dense"], neg
    swap = profiles["lexical"]["confusion"]["role_swap"]
    assert swap["twin_ties_gold"] > swap["queries_with_twin"] / 2  # most role swaps are exact BM25 ties
    assert profiles["dense"]["confusion"]["role_swap"]["twin_ties_gold"] == 0
    assert profiles["hybrid"]["retriever"] == {**profiles["hybrid"]["retriever"], "kind": "hybrid", "fusion": "rrf",
                                               "rrf_k": 60}
