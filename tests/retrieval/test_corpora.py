"""The built-in corpora: reproducible, well-formed, and true to their ground truth (facts stated in the text,
queries that paraphrase their gold passage and keep its parties, numbers and negations)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from sim.core.errors import CascadeError
from sim.retrieval.corpora.builtin import (
    BUILTIN_CORPORA,
    CLAUSE_TYPES,
    DISTRACTOR_TYPES,
    MAX_CONTRACTS,
    MAX_SUPPORT_VARIANTS,
    TEAM_OF_INTENT,
    contract_corpus,
    support_corpus,
)
from sim.retrieval.twins import twins_of

WORKFLOWS = Path(__file__).resolve().parents[2] / "sim" / "scenario" / "workflows"
TEAMS = {"cards", "payments", "disputes", "accounts", "fraud"}
NEGATION = re.compile(r"\b(?:not|cannot|no|never)\b", re.IGNORECASE)

# How each yes/no fact is stated: the cue is present exactly when the fact has the value given.
FLAG_CUES = {
    "for_convenience": ("no", re.compile(r"\bbreach")),  # "no": termination turns on a material breach
    "auto_renew": ("no", re.compile(r"\bnot\b")),
    "refund_eligible": ("no", re.compile(r"\b(?:not|cannot)\b")),
}
# Facts a clause query must repeat from its gold clause (parties and numbers; the law and its forum).
QUERY_FACTS = {
    "indemnity": ("indemnitor", "indemnitee", "claim_notice_days"),
    "liability_cap": ("capped_party", "cap", "cap_months"),
    "termination": ("terminating_party", "notice_days"),
    "renewal": ("initial_term_years", "renewal_term_years", "notice_days"),
    "governing_law": ("law", "jurisdiction", "escalation_days"),
}


@pytest.fixture(scope="module")
def contracts():
    return contract_corpus(60, seed=0)


@pytest.fixture(scope="module")
def support():
    return support_corpus(4, seed=0)


def states(text: str, value: str) -> bool:
    """Whether `text` states `value` as a whole word or number: "30" is not found in "130" or "3.0", nor
    "exclusive" in "non-exclusive"; thousands separators are ignored ("$1,500,000" states "1500000").
    Defined terms (capitalised: "Supplier") must match in case; plain phrases ("either party") need not."""
    plain = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    if value[:1].isdigit():
        return re.search(rf"(?<![\d.]){re.escape(value)}(?![\d])", plain) is not None
    flags = 0 if value[:1].isupper() else re.IGNORECASE
    return re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", plain, flags) is not None


def jaccard(a: str, b: str) -> float:
    x, y = (set(re.findall(r"[a-z0-9]+", s.lower())) for s in (a, b))
    return len(x & y) / len(x | y)


def contract_of(pid: str) -> str:
    return pid.split("/")[0]


def parties_of(corpus) -> dict[str, tuple[str, str]]:
    """Each contract's two parties, read from its indemnity clause (which names one as indemnitor)."""
    return {contract_of(p.id): (p.facts["indemnitor"], p.facts["indemnitee"])
            for p in corpus.passages if p.topic == "indemnity"}


# --- both corpora ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILTIN_CORPORA))
def test_same_seed_same_corpus_and_another_seed_another(name):
    make = BUILTIN_CORPORA[name]
    first, again, other = make(seed=7), make(seed=7), make(seed=8)
    assert first == again and first.fingerprint() == again.fingerprint()
    assert [dict(p.facts) for p in first.passages] == [dict(p.facts) for p in again.passages]
    assert first.fingerprint() != other.fingerprint()
    assert [p.id for p in first.passages] == [p.id for p in other.passages]  # same shape, other content
    changed = sum(a.text != b.text for a, b in zip(first.passages, other.passages, strict=True))
    assert changed > len(first.passages) / 2
    assert first.name == name


@pytest.mark.parametrize("name,seed", [(n, s) for n in sorted(BUILTIN_CORPORA) for s in (0, 1, 2)])
def test_ids_texts_and_queries_are_unique_and_queries_have_their_gold(name, seed):
    corpus = BUILTIN_CORPORA[name](seed=seed)
    ids = [p.id for p in corpus.passages]
    assert len(set(ids)) == len(ids)
    assert len({p.text for p in corpus.passages}) == len(corpus.passages)
    # Equal queries with different golds would make one of them unanswerable.
    assert len({q.text for q in corpus.queries}) == len(corpus.queries)
    for q in corpus.queries:
        assert corpus.passage(q.gold_id).topic == q.topic


@pytest.mark.parametrize("name", sorted(BUILTIN_CORPORA))
def test_every_fact_is_stated_in_its_passage(name):
    corpus = BUILTIN_CORPORA[name]()
    checked = Counter()
    for p in corpus.passages:
        for key, value in p.facts.items():
            if key == "intent":
                assert value == p.topic
            elif key in FLAG_CUES:
                assert value in ("yes", "no"), (p.id, key, value)
                cued_value, cue = FLAG_CUES[key]
                assert (cue.search(p.text) is not None) == (value == cued_value), (p.id, key, value, p.text)
            else:
                assert states(p.text, value), (p.id, key, value, p.text)
            checked[key] += 1
    assert len(checked) >= 8  # the loop saw many kinds of fact, not an empty corpus


def test_the_fact_check_can_fail():
    assert states("within thirty (30) days", "30") and not states("within 130 days", "30")
    assert states("capped at $1,500,000.", "1500000") and not states("capped at $1,500,000", "500000")
    assert not states("the non-exclusive jurisdiction", "exclusive")
    assert states("Either party may", "either party") and not states("the Customer", "Supplier")


def test_unknown_sizes_are_refused_with_the_bad_value():
    with pytest.raises(CascadeError, match="got 0"):
        contract_corpus(0)
    with pytest.raises(CascadeError, match=f"from 1 to {MAX_CONTRACTS}, got {MAX_CONTRACTS + 1}"):
        contract_corpus(MAX_CONTRACTS + 1)
    with pytest.raises(CascadeError, match=f"got {MAX_SUPPORT_VARIANTS + 1}"):
        support_corpus(MAX_SUPPORT_VARIANTS + 1)


# --- contracts ------------------------------------------------------------------------------------------------


def test_contract_corpus_sizes(contracts):
    types = CLAUSE_TYPES + DISTRACTOR_TYPES
    assert len(contracts.passages) == 60 * len(types) == 600
    assert len(contracts.queries) == 60 * len(CLAUSE_TYPES) == 300
    per_contract = Counter(contract_of(p.id) for p in contracts.passages)
    assert len(per_contract) == 60 and set(per_contract.values()) == {len(types)}
    assert Counter(p.topic for p in contracts.passages) == dict.fromkeys(types, 60)
    assert Counter(q.topic for q in contracts.queries) == dict.fromkeys(CLAUSE_TYPES, 60)


def test_clause_types_are_the_ones_contract_review_retrieves():
    steps = yaml.safe_load((WORKFLOWS / "contract_review.yaml").read_text())["steps"]
    retrieved = {s["id"].removeprefix("retrieve_") for s in steps
                 if s["kind"] == "retrieve" and s["retriever"] == "contract"}
    assert retrieved == set(CLAUSE_TYPES)


def test_a_smaller_corpus_is_a_prefix_of_a_larger_one():
    small, large = contract_corpus(5, seed=3), contract_corpus(12, seed=3)
    assert small.passages == large.passages[: len(small.passages)]
    assert small.queries == large.queries[: len(small.queries)]


def test_the_largest_contract_corpus_can_be_drawn():
    corpus = contract_corpus(MAX_CONTRACTS, seed=5)
    assert len({p.text for p in corpus.passages}) == MAX_CONTRACTS * 10


def test_every_clause_names_both_parties_of_its_contract(contracts):
    parties = parties_of(contracts)
    for p in contracts.passages:
        a, b = parties[contract_of(p.id)]
        assert a != b and states(p.text, a) and states(p.text, b), p.text
        for key in ("capped_party", "terminating_party"):
            assert p.facts.get(key, a) in (a, b, "either party"), (p.id, key)


def test_clauses_hold_the_sites_the_twin_editor_edits(contracts):
    """Every reviewed clause admits all four structural twins, so a probe measures each type on every clause."""
    reviewed = [p for p in contracts.passages if p.topic in CLAUSE_TYPES]
    for p in reviewed:
        assert re.search(r"\b(?:shall|will|may|must)\b", p.text), p.text
        assert twins_of(p.text, 0, p.id)[1] == [], p.text  # no twin type skipped
    negated = Counter(p.topic for p in reviewed if re.search(r"\bnot\b", p.text))
    assert negated["liability_cap"] == 60  # "shall not be liable for ..." in every cap clause
    assert 0 < negated["renewal"] < 60  # some renew automatically, some do not


def test_both_directions_and_outcomes_occur(contracts):
    facts = [p.facts for p in contracts.passages]
    indemnitors = Counter(f["indemnitor"] == f["indemnitee"] for f in facts if "indemnitor" in f)
    assert indemnitors == {False: 60}
    for key in ("for_convenience", "auto_renew"):
        assert Counter(f[key] for f in facts if key in f).keys() == {"yes", "no"}
    assert {"cap", "cap_months"} <= {k for f in facts for k in f}
    assert Counter(f["jurisdiction"] for f in facts if "jurisdiction" in f).keys() == {"exclusive", "non-exclusive"}


def test_no_two_reviewed_clauses_mean_the_same(contracts):
    """Same parties and same facts in two contracts would give a query two right answers."""
    parties = parties_of(contracts)
    meanings = [(p.topic, frozenset(parties[contract_of(p.id)]), tuple(sorted(p.facts.items())))
                for p in contracts.passages if p.topic in CLAUSE_TYPES]
    assert len(set(meanings)) == len(meanings) == 300


def test_clause_queries_paraphrase_their_gold(contracts):
    overlaps = [jaccard(q.text, contracts.passage(q.gold_id).text) for q in contracts.queries]
    assert max(overlaps) < 0.6 and sum(overlaps) / len(overlaps) < 0.4
    assert all(q.text != contracts.passage(q.gold_id).text for q in contracts.queries)


def test_clause_queries_keep_parties_numbers_and_negation(contracts):
    parties = parties_of(contracts)
    for q in contracts.queries:
        gold = contracts.passage(q.gold_id)
        a, b = parties[contract_of(q.gold_id)]
        assert states(q.text, a) and states(q.text, b), q.text
        for key in QUERY_FACTS[q.topic]:
            value = gold.facts.get(key)
            if value == "either party":  # the query names both parties instead: "either Seller or Buyer"
                assert re.search(rf"\beither (?:{a} or {b}|{b} or {a})\b", q.text, re.IGNORECASE), q.text
            elif value is not None:
                assert states(q.text, value), (key, value, q.text)
        if q.topic == "liability_cap":
            assert NEGATION.search(q.text), q.text  # the excluded damages stay excluded
        if q.topic == "renewal":
            assert bool(NEGATION.search(q.text)) == (gold.facts["auto_renew"] == "no"), q.text
        if q.topic == "termination":
            assert bool(re.search(r"\bbreach", q.text)) == (gold.facts["for_convenience"] == "no"), q.text


def test_indemnity_queries_keep_who_indemnifies_whom(contracts):
    for q in contracts.queries:
        if q.topic != "indemnity":
            continue
        gold = contracts.passage(q.gold_id).facts
        # Every paraphrase puts the indemnitor in the paying role: "X has to protect", "X pays", "makes X cover".
        assert re.search(rf"\b{gold['indemnitor']} (?:has to protect|pays|cover)\b", q.text), q.text


# --- support --------------------------------------------------------------------------------------------------


def test_support_corpus_sizes(support):
    intents = len(TEAM_OF_INTENT)
    assert intents == 12
    assert len(support.passages) == intents * (4 + 1) and len(support.queries) == intents * (4 + 1)
    assert len(support_corpus(MAX_SUPPORT_VARIANTS).passages) == intents * (MAX_SUPPORT_VARIANTS + 1)
    assert len(support_corpus(1).passages) == intents * 2


def test_every_intent_has_a_team_a_routing_policy_and_queries(support):
    assert set(TEAM_OF_INTENT.values()) == TEAMS
    routing = {p.topic: p for p in support.passages if p.id.endswith("/routing")}
    assert routing.keys() == TEAM_OF_INTENT.keys()
    for intent, team in TEAM_OF_INTENT.items():
        assert routing[intent].facts["team"] == team and routing[intent].id == f"kb/{intent}/routing"
        assert routing[intent].facts["priority"] in ("urgent", "normal")
        articles = [p for p in support.passages if p.topic == intent and "/article-" in p.id]
        assert len(articles) == 4 and len({p.facts["subject"] for p in articles}) == 4
        assert sum(q.topic == intent for q in support.queries) == 5
    urgent = {p.topic for p in routing.values() if p.facts["priority"] == "urgent"}
    assert {"card_lost", "unrecognised_payment"} <= urgent  # lost cards and fraud are urgent (ticket_triage)


def test_customer_queries_name_their_article_subject_in_their_own_words(support):
    articles = [q for q in support.queries if "/article-" in q.gold_id]
    assert len(articles) == 48
    for q in articles:
        gold = support.passage(q.gold_id)
        assert states(q.text, gold.facts["subject"]), q.text
        assert re.search(r"\b(?:I|my|me)\b", q.text, re.IGNORECASE), q.text  # first person, as a customer writes
    overlaps = [jaccard(q.text, support.passage(q.gold_id).text) for q in support.queries]
    assert max(overlaps) < 0.5 and sum(overlaps) / len(overlaps) < 0.3


def test_support_passages_admit_the_twins_a_reply_turns_on(support):
    """Drafting a reply follows negations and numbers (ticket_triage: 0.9, 0.85), so both can be measured."""
    for p in support.passages:
        skipped = twins_of(p.text, 0, p.id)[1]
        assert "negation_flip" not in skipped and "numeric_swap" not in skipped, p.text


def test_refund_policy_outcomes_and_numbers_vary():
    corpus = support_corpus(MAX_SUPPORT_VARIANTS, seed=0)
    refund = Counter(p.facts["refund_eligible"] for p in corpus.passages if "refund_eligible" in p.facts)
    assert refund.keys() == {"yes", "no"}
    fees = {p.facts["fee"] for p in corpus.passages if "fee" in p.facts}
    assert any(f.endswith("%") for f in fees) and any(f.startswith("£") for f in fees) and len(fees) >= 5
