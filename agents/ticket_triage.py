"""Ticket triage over real text: the built-in `ticket_triage` workflow as an agent reads it.

One episode is one customer message. The agent classifies its intent from the five most similar past tickets
(the `ticket_history` store: few-shot examples with their resolved intents), sets priority by the routing
policy, routes the ticket to the intent's team, drafts a reply from the KB article it finds within that
intent (`kb`), and decides a refund from the refund rule it finds there (`policy`: the same articles, searched
with the refund question).

Messages come from the built-in support corpus (each names a subject, so exactly one article is right), or
from Banking77 (`../shared/data`): real customer queries whose labels map onto the bank's intents; their
KB then holds one article per intent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agents.domain import ActSpec, DecideSpec, Domain, Retrieval, RetrieveSpec, Store
from agents.policy import Field, ReadingTask
from sim.core.errors import CascadeError
from sim.core.limits import MAX_PASSAGE_CHARS, MAX_PASSAGES
from sim.core.table_source import Limits, read_table
from sim.retrieval.corpora.support import PRIORITY_OF_INTENT, TEAM_OF_INTENT, support_corpus, support_tickets
from sim.retrieval.corpus import Passage

INTENTS: tuple[str, ...] = tuple(TEAM_OF_INTENT)

BANKING77_INTENTS: Mapping[str, str] = {
    "lost_or_stolen_card": "card_lost", "card_arrival": "card_not_arrived", "pin_blocked": "pin_blocked",
    "request_refund": "refund_request", "card_payment_fee_charged": "fee_charged",
    "failed_transfer": "transfer_failed", "top_up_failed": "top_up_failed", "exchange_rate": "exchange_rate",
    "direct_debit_payment_not_recognised": "direct_debit", "terminate_account": "account_closure",
    "unable_to_verify_identity": "identity_verification",
    "card_payment_not_recognised": "unrecognised_payment",
}
"""Banking77 labels that are one of the bank's intents (the other 65 labels are left out)."""
TICKET_LIMITS = Limits(rows=MAX_PASSAGES, chars=MAX_PASSAGE_CHARS)
"""Caps of a tickets file: those of a corpus file (records, characters per value)."""

EXAMPLES_READ = 8
"""Past tickets shown to the classifier as examples."""
ARTICLES_READ = 3
"""Articles of the classified intent the agent reads to answer (it picks the one that fits the message)."""

_PRIORITY_POLICY = ("Priority policy: tickets about " + ", ".join(i for i in INTENTS if PRIORITY_OF_INTENT[i]
                                                                  == "urgent")
                    + " are urgent; every other ticket is normal.")


@dataclass(frozen=True)
class Ticket:
    """One episode: the customer's message, its true intent and the KB article that answers it."""

    id: str
    text: str
    intent: str
    article: Passage


def _examples(outputs) -> tuple[str, ...]:
    return tuple(f"Resolved as {p.topic}: {p.text}" for p in outputs["retrieve_examples"].passages)


def _plurality(intents: list[str]) -> str | None:
    counts = Counter(intents)
    return max(intents, key=lambda i: (counts[i], -intents.index(i))) if intents else None


def _article_texts(outputs, step: str) -> tuple[str, ...]:
    return tuple(p.text for p in outputs[step].passages)


def _figures(article: Passage) -> str:
    return _canonical_figures(", ".join(v for k, v in article.facts.items()
                                        if k not in ("intent", "subject", "refund_eligible")))


def _canonical_figures(text: str) -> str:
    """Figures compared as a set: their order in a reply is style, not substance."""
    return ", ".join(sorted({f.strip() for f in text.split(",") if f.strip()}))


def _refund(article: Passage) -> str:
    return "yes" if article.facts.get("refund_eligible") == "yes" else "no"


def _intent_of(outputs) -> str:
    return outputs["classify_intent"].decision.get("intent", "")


_INTENT = (Field("intent", "the customer's intent", INTENTS),)
_PRIORITY = (Field("priority", "the ticket's priority", ("urgent", "normal")),)
_REPLY = (Field("figures", "every amount, percentage and number the article states, in order, ', '-separated"),
          Field("refund", "does the article grant a refund", ("yes", "no")))
_REFUND = (Field("refund", "does the article grant a refund", ("yes", "no")),)


def _specs() -> dict:
    return {
        "retrieve_examples": RetrieveSpec(
            "ticket_history", EXAMPLES_READ,
            lambda t, o: Retrieval(t.text, None, frozenset(), exclude=frozenset({t.id})),
            correct=lambda t, passages: _plurality([p.topic for p in passages]) == t.intent),
        "classify_intent": DecideSpec(
            lambda t, o: ReadingTask("classify_intent", "intent", "Which intent does the customer's message "
                                     "express? Past tickets with their resolved intents are given as examples.",
                                     _examples(o), _INTENT, t.text),
            lambda t, answer, o: {"intent": answer.get("intent", "")},
            lambda t: {"intent": t.intent}),
        "decide_priority": DecideSpec(
            lambda t, o: ReadingTask("decide_priority", "priority", "What priority does the routing policy give "
                                     "this ticket?", (_PRIORITY_POLICY,), _PRIORITY,
                                     f"Intent: {_intent_of(o)}. Message: {t.text}"),
            lambda t, answer, o: {"priority": answer.get("priority", "")},
            lambda t: {"priority": PRIORITY_OF_INTENT[t.intent]}),
        "route_ticket": ActSpec(lambda o: {"team": TEAM_OF_INTENT.get(_intent_of(o), "none")},
                                lambda t: {"team": TEAM_OF_INTENT[t.intent]}),
        "set_priority": ActSpec(lambda o: dict(o["decide_priority"].decision),
                                lambda t: {"priority": PRIORITY_OF_INTENT[t.intent]}),
        "retrieve_kb": RetrieveSpec(
            "kb", ARTICLES_READ, lambda t, o: Retrieval(t.text, (_intent_of(o),), frozenset({t.article.id}))),
        "draft_reply": DecideSpec(
            lambda t, o: ReadingTask("draft_reply", "reply", "Draft the reply from the article that answers "
                                     "the message: which figures does it state, and does it grant a refund?", _article_texts(o, "retrieve_kb"),
                                     _REPLY, t.text),
            lambda t, answer, o: {"figures": _canonical_figures(answer.get("figures", "")),
                                  "refund": answer.get("refund", "")},
            lambda t: {"figures": _figures(t.article), "refund": _refund(t.article)}),
        "send_reply": ActSpec(lambda o: dict(o["draft_reply"].decision),
                              lambda t: {"figures": _figures(t.article), "refund": _refund(t.article)}),
        "retrieve_policy": RetrieveSpec(
            "policy", ARTICLES_READ, lambda t, o: Retrieval(_policy_query(t), (_intent_of(o),), frozenset({t.article.id}))),
        "decide_refund": DecideSpec(
            lambda t, o: ReadingTask("decide_refund", "refund", "Under the refund rule of the article that fits "
                                     "the message, is the customer refunded?", _article_texts(o, "retrieve_policy"), _REFUND, t.text),
            lambda t, answer, o: {"refund": answer.get("refund", "")},
            lambda t: {"refund": _refund(t.article)}),
        "issue_refund": ActSpec(lambda o: dict(o["decide_refund"].decision), lambda t: {"refund": _refund(t.article)}),
    }


def _policy_query(ticket: Ticket) -> str:
    return f"refund rule: {ticket.text}"


def ticket_triage_domain(tickets: str | Path | None = None, history: int = 40) -> Domain:
    """The ticket-triage agent on the built-in messages, or on a Banking77-style CSV (`text,category`).

    With a CSV, its rows whose category maps to an intent are the tickets, and up to `history` rows per
    intent of the sibling `train.csv` (or, without one, of the same file, never the ticket itself) are the
    past tickets.
    """
    if tickets is None:
        articles = [p for p in support_corpus(4).passages if "/article-" in p.id]
        by_subject = {(p.topic, p.facts["subject"]): p for p in articles}
        everything = support_tickets()
        episodes = tuple(Ticket(t.id, t.text, t.intent, by_subject[(t.intent, t.subject)]) for t in everything
                         if (t.intent, t.subject) in by_subject)
        past = [Passage(t.id, t.text, t.intent) for t in everything]
    else:
        articles = [p for p in support_corpus(1).passages if "/article-" in p.id]
        article_of = {p.topic: p for p in articles}
        rows = _banking77_rows(Path(tickets))
        episodes = tuple(Ticket(f"ticket/{n}", text, intent, article_of[intent]) for n, text, intent in rows)
        train = Path(tickets).with_name("train.csv")
        source = _banking77_rows(train) if train.is_file() and train != Path(tickets) else rows
        per_intent: Counter[str] = Counter()
        past = []
        for n, text, intent in source:
            if per_intent[intent] < history:
                per_intent[intent] += 1
                past.append(Passage(f"past/{n}" if source is not rows else f"ticket/{n}", text, intent))
    stores = {"ticket_history": Store.of(past, {p.id: p.topic for p in past}),
              "kb": Store.of(articles, {p.id: p.topic for p in articles}),
              "policy": Store.of(articles, {p.id: p.topic for p in articles})}
    siblings: dict[tuple[str, str], list[Passage]] = {}
    for name, store in stores.items():
        for p in store.passages:
            siblings.setdefault((name, p.topic), []).append(p)

    def stale_of(retriever: str, passage: Passage) -> Passage | None:
        """An outdated version: another passage on the same intent (an older article, an older ticket)."""
        return next((p for p in siblings.get((retriever, passage.topic), []) if p.id != passage.id), None)

    queries = tuple(dict.fromkeys([e.text for e in episodes] + [_policy_query(e) for e in episodes]))
    return Domain("ticket_triage", stores, episodes, _specs(), stale_of, queries)


def _banking77_rows(path: Path) -> list[tuple[int, str, str]]:
    """(line, text, intent) of the rows whose category is one of the bank's intents; a CSV / JSONL file read
    with the corpus rules (`sim.core.table_source`): errors name the file and the line."""
    table = read_table(path, "tickets", ["text", "category"], limits=TICKET_LIMITS,
                       hint=" (a tickets file has the columns text,category, as Banking77)")
    rows = [(r.line, r.values["text"], BANKING77_INTENTS[r.values["category"]]) for r in table.records
            if r.values["category"] in BANKING77_INTENTS]
    if not rows:
        raise CascadeError(f"{path}: no row has a category that maps to an intent ({', '.join(BANKING77_INTENTS)})")
    return rows
