"""The built-in support corpus: a retail bank's knowledge-base articles and routing policies per intent, with
customer-style queries. See `sim.retrieval.corpora.builtin` for what the tests and the twin editor rely on.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sim.core.errors import CascadeError
from sim.core.seeding import stream
from sim.retrieval.corpora.text import fill, frozen, pick
from sim.retrieval.corpus import Corpus, Passage, Query

# --- support: a retail bank's intents -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Intent:
    """One customer intent: who owns it, how urgent, and the KB articles and customer messages about it.

    Each article is about one `subject` (a card type, a destination, a currency ...), so the articles of an
    intent differ in substance and a customer message that names the subject has one right article.
    `articles` pairs a template with the yes/no facts it states; its other slots come from `numbers`.
    """

    team: str
    priority: str
    routed: str  # how the routing policy names these tickets
    asked: str  # how an agent describes such a ticket when asking where it goes
    subjects: tuple[str, ...]
    numbers: Mapping[str, tuple[str, ...]]
    articles: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    questions: tuple[str, ...]


_YES = (("refund_eligible", "yes"),)
_NO = (("refund_eligible", "no"),)
_CARDS = ("debit card", "credit card", "metal card", "junior card", "business card", "travel card")

_INTENTS: dict[str, _Intent] = {
    "card_lost": _Intent(
        "cards", "urgent", "lost or stolen cards", "a customer who has misplaced their card or had it stolen",
        _CARDS, {"days": ("3", "5", "7"), "fee": ("£5", "£7.50", "£10")},
        (("If your {subject} is lost or stolen, freeze it in the app straight away and order a replacement. The "
          "new card arrives within {days} working days and the replacement fee is {fee}.", ()),
         ("A lost {subject} must be blocked immediately, in the app or by phone. The first replacement each year "
          "is free; later replacements cost {fee}, and delivery takes up to {days} working days.", ()),
         ("We cancel a lost or stolen {subject} as soon as you report it, and you will not be liable for payments "
          "made after the report. A replacement costs {fee} and arrives within {days} working days.", ())),
        ("I think I lost my {subject} yesterday, what should I do?",
         "My {subject} was stolen this morning. How do I stop anyone using it?",
         "I can't find my {subject} anywhere, can I get a new one?")),
    "card_not_arrived": _Intent(
        "cards", "normal", "new cards that have not arrived", "a customer still waiting for a card in the post",
        _CARDS, {"days": ("5", "7", "10"), "fee": ("£5", "£8", "£12")},
        (("Your new {subject} is posted the next working day and should arrive within {days} working days. If "
          "it has not arrived by then, we send another one free of charge; express delivery costs {fee}.", ()),
         ("A {subject} normally takes up to {days} working days to reach you, or the next working day with "
          "express delivery for {fee}. Report a missing card in the app and we will cancel it and send a new "
          "one.", ()),
         ("We do not post a {subject} to a new address until the address is verified. After that, delivery "
          "takes up to {days} working days, and express delivery is available for {fee}.", ())),
        ("I ordered a {subject} ages ago and it still hasn't come. Where is it?",
         "My {subject} never showed up in the post, what now?",
         "How long should I wait for my {subject} to be delivered? Still nothing here.")),
    "pin_blocked": _Intent(
        "cards", "normal", "blocked PINs", "a customer locked out after entering the wrong PIN",
        _CARDS, {"attempts": ("3", "4", "5"), "hours": ("2", "12", "24")},
        (("The PIN of your {subject} is blocked after {attempts} incorrect attempts. You can unblock it in the "
          "app under Card settings; it works again within {hours} hours and there is no fee.", ()),
         ("After {attempts} wrong PIN entries we block the PIN on your {subject} to protect you. Unblocking it "
          "in the app is free and takes effect within {hours} hours.", ())),
        ("I typed the wrong PIN on my {subject} too many times and now it's blocked. Help!",
         "My {subject} says PIN locked, how do I get it working again?",
         "I forgot the PIN for my {subject} and now I'm locked out, can you unlock it?")),
    "refund_request": _Intent(
        "disputes", "normal", "refund requests for purchases", "a customer asking for money back on a purchase",
        ("online purchases", "in-store purchases", "subscription payments", "flight bookings", "hotel bookings",
         "event tickets"),
        {"days": ("5", "7", "10"), "window": ("60", "90", "120")},
        (("Refunds for {subject} are credited to your account within {days} business days once the merchant has "
          "issued them. If the merchant refuses, you may raise a dispute with us within {window} days of the "
          "payment.", _YES),
         ("We cannot refund {subject} ourselves: the merchant must issue the refund, which then takes up to "
          "{days} business days to appear. Disputes about {subject} are not accepted more than {window} days "
          "after the payment.", _NO),
         ("You are entitled to a refund from us for {subject} the merchant never provided, if you raise it "
          "within {window} days of the payment; we credit the money within {days} business days.", _YES)),
        ("I'm still waiting for a refund for one of my {subject}. When will I get it?",
         "The merchant promised my money back for one of my {subject} but nothing has arrived.",
         "How do I get a refund on {subject}? The seller won't respond to me.")),
    "fee_charged": _Intent(
        "disputes", "normal", "unexpected fees", "a customer who was charged a fee they did not expect",
        ("cash withdrawals abroad", "card payments in a foreign currency", "international transfers",
         "instant transfers", "currency exchange at weekends", "ATM withdrawals above the free allowance"),
        {"fee": ("0.5%", "1%", "1.5%", "2%", "3%"), "days": ("3", "5", "7")},
        (("We charge a {fee} fee on {subject}. If you were charged this fee by mistake, it is refunded within "
          "{days} business days of your request.", _YES),
         ("The {fee} fee on {subject} is shown before you confirm and is not refundable once charged. Questions "
          "about it are answered within {days} business days.", _NO),
         ("{subject} carry a fee of {fee}. Customers on a premium plan are exempt, and a fee charged to a "
          "premium customer is refunded within {days} business days.", _YES)),
        ("Why was I charged a fee for {subject}? Nobody told me about it.",
         "There's a charge on my statement for {subject} that I didn't expect, can I get it back?",
         "I got hit with a fee on {subject}, is that right?")),
    "transfer_failed": _Intent(
        "payments", "normal", "failed or delayed transfers", "a customer whose money transfer did not go through",
        ("the EU", "the United States", "India", "Australia", "Canada", "Switzerland", "Nigeria"),
        {"days": ("2", "3", "4", "5"), "return_days": ("3", "5", "7")},
        (("Transfers to {subject} may take up to {days} working days to arrive. If a transfer fails, the money "
          "is returned to your account within {return_days} working days and no fee is charged.", ()),
         ("A transfer to {subject} can fail if the recipient's details are wrong. Failed transfers are refunded "
          "within {return_days} working days; successful ones normally arrive within {days} working days.", _YES),
         ("We do not send transfers to {subject} at weekends. Payments made on a weekday arrive within {days} "
          "working days, and returned payments reach your balance within {return_days} working days.", ())),
        ("I sent money to {subject} and the app says the transfer failed. Where is my money?",
         "My payment to {subject} still hasn't reached the person I sent it to, did something go wrong?",
         "Why did my transfer to {subject} bounce back?")),
    "top_up_failed": _Intent(
        "payments", "normal", "top-ups that did not go through", "a customer whose top-up is missing",
        ("Apple Pay", "Google Pay", "debit card", "credit card", "bank transfer", "cash deposit"),
        {"hours": ("2", "6", "24"), "days": ("3", "5"), "fee": ("0.5%", "1%", "2%")},
        (("Top-ups by {subject} normally arrive instantly. If a top-up by {subject} has not arrived within "
          "{hours} hours, it has failed and the money is returned to the source within {days} business days.",
          ()),
         ("Top-ups by {subject} carry a {fee} fee. If a top-up fails, the amount and the fee are refunded in "
          "full within {days} business days.", _YES),
         ("A pending top-up by {subject} can take up to {hours} hours. We do not refund the {fee} fee on a "
          "top-up that the sender's bank reversed.", _NO)),
        ("I topped up by {subject} but nothing appeared in my balance.",
         "My top-up with {subject} failed, was I charged anyway?",
         "I tried to add money using {subject} and it's still pending, what's going on?")),
    "exchange_rate": _Intent(
        "payments", "normal", "exchange rates and currency conversion",
        "a customer querying the rate they got when paying in another currency",
        ("US dollars", "euros", "Japanese yen", "Swiss francs", "Canadian dollars", "Australian dollars",
         "Turkish lira"),
        {"fee": ("0.3%", "0.5%", "0.7%"), "weekend_fee": ("1%", "1.5%", "2%")},
        (("Card payments in {subject} are converted at the interbank rate plus a {fee} markup on weekdays. At "
          "weekends the markup rises to {weekend_fee} because the markets are closed.", ()),
         ("We convert {subject} at the live market rate with a {fee} markup; exchanges made at weekends will "
          "carry a {weekend_fee} markup instead.", ()),
         ("When you spend in {subject}, the rate shown in the app already includes a {fee} markup, or "
          "{weekend_fee} at weekends; card network rates are not used.", ())),
        ("Why did I get a worse exchange rate than expected when paying in {subject}?",
         "The rate for {subject} on my statement doesn't match what I saw online. Why?",
         "I was charged extra converting to {subject}, how is the rate worked out?")),
    "direct_debit": _Intent(
        "payments", "normal", "direct debits", "a customer with a problem with a direct debit",
        ("utility bill", "gym membership", "council tax", "phone contract", "insurance premium", "loan repayment"),
        {"days": ("2", "3", "5")},
        (("You can cancel a direct debit for your {subject} in the app up to {days} working days before it is "
          "due. If a direct debit for your {subject} was taken in error, you are entitled to an immediate refund "
          "under the Direct Debit Guarantee.", _YES),
         ("A direct debit for your {subject} that fails for lack of funds is retried once after {days} working "
          "days. We do not refund collections that you authorised and did not cancel in time.", _NO),
         ("A new direct debit for your {subject} is set up within {days} working days. Any amount collected "
          "without your permission is refunded in full the same day.", _YES)),
        ("A direct debit for my {subject} came out twice. Can I get the money back?",
         "I want to stop paying my {subject} by direct debit, how do I cancel it?",
         "Why was my {subject} direct debit taken when I had cancelled it?")),
    "account_closure": _Intent(
        "accounts", "normal", "account closures", "a customer who wants to close an account",
        ("current account", "savings account", "joint account", "business account", "junior account",
         "premium account"),
        {"days": ("2", "3", "5", "10")},
        (("You can close your {subject} in the app at any time. Any remaining balance is transferred to your "
          "nominated account within {days} working days, and there is no closing fee.", ()),
         ("A {subject} cannot be closed while it has a negative balance or pending card payments. Once these "
          "are cleared, closure is completed within {days} working days.", ()),
         ("Closing a {subject} with a monthly plan ends the plan at once, and the unused part of the plan fee "
          "is refunded within {days} working days.", _YES)),
        ("I want to close my {subject}. How do I do it and when do I get my money?",
         "Please shut down my {subject}, I'm moving to another bank.",
         "How can I get rid of my {subject} for good?")),
    "identity_verification": _Intent(
        "accounts", "normal", "identity verification", "a customer whose identity check keeps failing",
        ("passport", "driving licence", "national ID card", "residence permit", "proof of address",
         "selfie video"),
        {"hours": ("2", "24", "48"), "attempts": ("3", "5")},
        (("We accept a {subject} for identity verification. Checks are normally completed within {hours} hours; "
          "after {attempts} failed uploads, the check is passed to a specialist.", ()),
         ("If your {subject} is rejected, make sure it is clear and has not expired. You can retry up to "
          "{attempts} times, and each review takes up to {hours} hours.", ())),
        ("My {subject} keeps getting rejected when I try to verify my identity.",
         "Why hasn't my {subject} been approved yet? I've waited ages.",
         "The app won't accept my {subject} for the ID check, what am I doing wrong?")),
    "unrecognised_payment": _Intent(
        "fraud", "urgent", "payments the customer does not recognise",
        "a customer reporting a charge they did not make",
        ("card payment", "contactless payment", "online payment", "cash withdrawal", "Apple Pay payment",
         "subscription charge"),
        {"days": ("5", "10", "15")},
        (("If a {subject} on your statement looks unfamiliar, freeze your card and report it in the app. "
          "Confirmed fraudulent payments are refunded within {days} business days.", _YES),
         ("Report an unknown {subject} straight away: we will block the card, investigate, and refund a confirmed "
          "unauthorised {subject} within {days} business days.", _YES),
         ("A {subject} you authorised yourself, for example a free trial that became a paid subscription, is "
          "not treated as fraud and is not refunded by us; contact the merchant within {days} days.", _NO)),
        ("There's a {subject} on my account I didn't make. Is someone using my card?",
         "I don't recognise this {subject} on my statement, what should I do?",
         "Someone made a {subject} with my card without me knowing!")),
}

TEAM_OF_INTENT: Mapping[str, str] = MappingProxyType({name: intent.team for name, intent in _INTENTS.items()})
"""The team that owns each intent (cards, payments, disputes, accounts, fraud)."""

PRIORITY_OF_INTENT: Mapping[str, str] = MappingProxyType({name: i.priority for name, i in _INTENTS.items()})
"""The priority each intent's tickets get (urgent or normal)."""

SUBJECTS: tuple[str, ...] = tuple(sorted({s for i in _INTENTS.values() for s in i.subjects}, key=len, reverse=True))
"""Every product, destination or payment type the KB articles are about (longest first): the bank's vocabulary."""

MAX_SUPPORT_VARIANTS = min(len(intent.subjects) for intent in _INTENTS.values())
"""Most articles per intent: one per distinct subject."""

_ROUTING = (
    "Tickets about {routed} are handled by the {team} team and get {priority} priority; the first response "
    "is due within {sla} hours.",
    "Route tickets concerning {routed} to the {team} team; they must be set to {priority} priority and get a "
    "first response within {sla} hours.",
    "The {team} team owns every ticket about {routed}. These tickets are {priority} priority, and the first "
    "response is due within {sla} hours.",
)
_ROUTING_QUESTIONS = (
    "Which team should take a ticket from {asked}, and how urgent is it?",
    "Who deals with {asked}, and what priority does that ticket get?",
)
_SLA_HOURS = {"urgent": ("2", "4"), "normal": ("24", "48")}


def _slot_names(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


def _support_intent(seed: int, name: str, variants: int) -> tuple[list[Passage], list[Query]]:
    """`variants` articles on distinct subjects plus the routing policy of one intent, one query each."""
    intent = _INTENTS[name]
    rng = stream(seed, f"corpus/support/{name}", 0)
    ask_rng = stream(seed, f"corpus/support/{name}/queries", 0)
    passages, queries = [], []
    for k, s in enumerate(rng.permutation(len(intent.subjects))[:variants]):
        subject = intent.subjects[int(s)]
        template, flags = pick(rng, intent.articles)
        values = {slot: pick(rng, intent.numbers[slot])
                  for slot in dict.fromkeys(_slot_names(template)) if slot != "subject"}
        pid = f"kb/{name}/article-{k}"
        facts = {"intent": name, "subject": subject, **values, **dict(flags)}
        passages.append(Passage(pid, fill(template, {"subject": subject, **values}), name, frozen(facts)))
        queries.append(Query(fill(pick(ask_rng, intent.questions), {"subject": subject}), pid, name))
    sla = pick(rng, _SLA_HOURS[intent.priority])
    routing = {"routed": intent.routed, "team": intent.team.capitalize(), "priority": intent.priority, "sla": sla}
    pid = f"kb/{name}/routing"
    facts = {"intent": name, "team": intent.team, "priority": intent.priority, "sla_hours": sla}
    passages.append(Passage(pid, fill(pick(rng, _ROUTING), routing), name, frozen(facts)))
    queries.append(Query(fill(pick(ask_rng, _ROUTING_QUESTIONS), {"asked": intent.asked}), pid, name))
    return passages, queries


def support_corpus(variants: int = 4, seed: int = 0) -> Corpus:
    """A retail bank's knowledge base: per intent, `variants` articles and a routing policy, with customer
    messages (and one agent routing question) as queries."""
    if not isinstance(variants, int) or not 1 <= variants <= MAX_SUPPORT_VARIANTS:
        raise CascadeError(f"variants must be an integer from 1 to {MAX_SUPPORT_VARIANTS}, got {variants!r}")
    passages: list[Passage] = []
    queries: list[Query] = []
    for name in _INTENTS:
        more_passages, more_queries = _support_intent(seed, name, variants)
        passages += more_passages
        queries += more_queries
    return Corpus("support", tuple(passages), tuple(queries))




@dataclass(frozen=True)
class Ticket:
    """A customer message with its true intent and the subject it names (the KB article it needs)."""

    id: str
    text: str
    intent: str
    subject: str


def support_tickets() -> tuple[Ticket, ...]:
    """Every customer message the templates can write: each intent's questions about each of its subjects.

    The ticket-triage agent's past tickets (its few-shot examples) and its incoming tickets both come from here.
    """
    return tuple(Ticket(f"ticket/{name}/{s}/{q}", fill(question, {"subject": subject}), name, subject)
                 for name, intent in _INTENTS.items() for s, subject in enumerate(intent.subjects)
                 for q, question in enumerate(intent.questions))
