"""The built-in contract corpus: commercial-contract clauses with their facts, and paraphrased queries.

Five clause types are reviewed by the contract_review workflow; five more are distractors, the "many other
passages" a retriever must look past. See `sim.retrieval.corpora.builtin` for what the tests and the twin editor rely on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np

from sim.core.errors import CascadeError
from sim.core.seeding import stream
from sim.retrieval.corpora.text import fill, frozen, pick, spelled, years
from sim.retrieval.corpus import Corpus, Passage, Query

CLAUSE_TYPES: tuple[str, ...] = ("indemnity", "liability_cap", "termination", "renewal", "governing_law")
"""The clause types contract review decides on (its `retrieve_<type>` steps)."""

DISTRACTOR_TYPES: tuple[str, ...] = ("confidentiality", "payment_terms", "warranty", "assignment", "force_majeure")
"""Other clauses of each contract: the "many other passages" a retriever must look past."""

MAX_CONTRACTS = 200
"""Most contracts per corpus: beyond it, distinct facts per role pair run short (redraws would stall)."""

# --- contracts: parties ---------------------------------------------------------------------------------------

# (party that delivers, party that pays, agreement titles, what is delivered). All roles are ones the twin
# editor recognises, so a role swap can exchange them.
_ROLE_PAIRS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("Supplier", "Customer", ("Supply Agreement", "Master Supply Agreement", "Supply and Services Agreement"),
     "the Products"),
    ("Licensor", "Licensee", ("License Agreement", "Software License Agreement", "Technology License Agreement"),
     "the Licensed Software"),
    ("Seller", "Buyer", ("Purchase Agreement", "Sale of Goods Agreement", "Asset Purchase Agreement"), "the Goods"),
    ("Provider", "Client", ("Services Agreement", "Master Services Agreement", "Cloud Services Agreement"),
     "the Services"),
    ("Contractor", "Company", ("Consulting Agreement", "Independent Contractor Agreement",
                               "Professional Services Agreement"), "the Deliverables"),
    ("Landlord", "Tenant", ("Lease", "Commercial Lease", "Office Lease Agreement"), "the Premises"),
    ("Vendor", "Purchaser", ("Vendor Agreement", "Procurement Agreement", "Equipment Purchase Agreement"),
     "the Equipment"),
    ("Manufacturer", "Distributor", ("Distribution Agreement", "Dealer Agreement", "Reseller Agreement"),
     "the Products"),
    ("Franchisor", "Franchisee", ("Franchise Agreement", "Master Franchise Agreement",
                                  "Area Development Agreement"), "the Franchise System"),
    ("Consultant", "Client", ("Consultancy Agreement", "Advisory Services Agreement", "Engagement Letter"),
     "the Reports"),
)


@dataclass(frozen=True)
class _Deal:
    """The parties and subject of one contract: every clause of the contract shares them."""

    a: str  # the party that delivers (Supplier, Licensor, ...)
    b: str  # the party that pays (Customer, Licensee, ...)
    agreement: str
    goods: str

    def slots(self) -> dict[str, str]:
        return {"A": self.a, "B": self.b, "agreement": self.agreement, "goods": self.goods}


def _draw_deal(rng: np.random.Generator) -> _Deal:
    a, b, titles, goods = pick(rng, _ROLE_PAIRS)
    return _Deal(a, b, pick(rng, titles), goods)


@dataclass(frozen=True)
class _Draw:
    """One clause's template group (e.g. "yes"/"no" for auto-renewal), its slot values and the facts stated."""

    group: str
    slots: Mapping[str, str]
    facts: Mapping[str, str]


# --- contracts: the five reviewed clause types ----------------------------------------------------------------
# Passage templates and query (paraphrase) templates are separate sets, so a query never reuses its clause's
# wording. Slots: {A} {B} {agreement} {goods} from the deal, the rest from the clause's draw.

# (as the clause writes it, as a reader would paraphrase it)
_INDEMNITY_SCOPES = (
    ("alleged infringement of any patent, copyright or trademark", "IP infringement"),
    ("bodily injury, death or damage to tangible property", "personal injury or property damage"),
    ("a breach of applicable data protection laws", "privacy law violations"),
    ("gross negligence or wilful misconduct", "reckless or deliberate wrongdoing"),
    ("the unauthorised disclosure of confidential information", "leaks of confidential information"),
    ("a violation of export control or sanctions laws", "export or sanctions breaches"),
    ("misappropriation of trade secrets", "stolen trade secrets"),
    ("product liability", "injuries caused by faulty products"),
    ("the acts or omissions of subcontractors", "what subcontractors do or fail to do"),
    ("unpaid taxes or social security contributions", "unpaid tax or social security"),
)
_CLAIM_NOTICE_DAYS = (10, 14, 15, 30)
_CAP_AMOUNTS = (250_000, 500_000, 750_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000, 5_000_000, 10_000_000)
_CAP_MONTHS = (6, 12, 24)
_EXCLUSIONS = (
    ("indirect or consequential damages", "indirect or consequential losses"),
    ("lost profits or lost revenue", "lost profits and revenue"),
    ("loss or corruption of data", "data loss"),
    ("punitive or exemplary damages", "punitive damages"),
    ("loss of goodwill or business opportunity", "lost goodwill or business"),
)
_TERMINATION_DAYS = (10, 14, 15, 30, 45, 60, 90, 120)
_INITIAL_YEARS = (1, 2, 3, 5)
_RENEWAL_YEARS = (1, 2, 3)
_RENEWAL_NOTICE_DAYS = (30, 60, 90, 120)
_ESCALATION_DAYS = (10, 15, 30, 45)
# (short name, as the clause names the law, the courts)
_LAWS = (
    ("New York", "the State of New York", "state and federal courts located in New York County"),
    ("Delaware", "the State of Delaware", "state and federal courts located in Wilmington, Delaware"),
    ("California", "the State of California", "state and federal courts located in San Francisco, California"),
    ("Texas", "the State of Texas", "state courts of Travis County, Texas"),
    ("Illinois", "the State of Illinois", "courts located in Cook County, Illinois"),
    ("England and Wales", "England and Wales", "courts of England and Wales"),
    ("Ontario", "the Province of Ontario and the federal laws of Canada applicable therein",
     "courts of the Province of Ontario"),
    ("Singapore", "the Republic of Singapore", "courts of Singapore"),
    ("Ireland", "Ireland", "courts of Ireland"),
)

_REVIEWED_CLAUSES: dict[str, dict[str, tuple[str, ...]]] = {
    "indemnity": {"all": (
        "{I} shall indemnify, defend and hold harmless {E} and its officers, directors and employees from and "
        "against any and all losses, damages and expenses arising out of any third-party claim relating to "
        "{scope}, provided that {E} gives {I} written notice of the claim within {notice} days.",
        "{I} will defend {E} against any claim brought by a third party concerning {scope} and shall pay all "
        "damages, costs and reasonable attorneys' fees finally awarded against {E} under this {agreement}, if "
        "{E} gives written notice of the claim within {notice} days.",
        "Subject to receiving written notice of the claim within {notice} days, {I} must indemnify {E} for all "
        "liabilities, settlements and expenses that {E} incurs as a result of {scope}.",
        "{E} shall be indemnified and held harmless by {I} against any direct loss resulting from a third-party "
        "action based on {scope}, provided that {E} informs {I} in writing within {notice} days of receiving "
        "notice of the action.",
    )},
    "liability_cap": {"all": (
        "{C}'s total aggregate liability to {O} for direct damages arising out of or relating to this "
        "{agreement} shall not exceed {cap}. {C} shall not be liable to {O} for any {excludes}, even if "
        "advised of their possibility.",
        "{C} shall not be liable to {O} for {excludes}. Apart from that exclusion, the maximum liability of {C} "
        "for direct damages under this {agreement}, whether in contract, tort (including negligence) or "
        "otherwise, is limited to {cap}.",
        "The liability of {C} to {O} for direct damages under or in connection with this {agreement} is capped "
        "at {cap}, and {C} will not be liable for any {excludes} under any circumstances.",
    )},
    "termination": {
        "yes": (
            "{T} may terminate this {agreement} for convenience at any time upon {notice} prior written notice "
            "to {O}. Upon such termination, {B} shall pay {A} all fees accrued up to the effective date of "
            "termination.",
            "This {agreement} may be terminated by {T} for convenience, without cause, by giving {O} at least "
            "{notice} written notice. {A} will refund to {B} any prepaid fees covering the period after "
            "termination.",
        ),
        "no": (
            "{T} may terminate this {agreement} upon {notice} prior written notice if {O} commits a material "
            "breach and fails to cure it within that period. This {agreement} may not be terminated for "
            "convenience by {A} or {B}.",
            "If {O} materially breaches this {agreement} and the breach remains uncured {cure} after written "
            "notice, {T} may terminate it with immediate effect. Neither {A} nor {B} shall have any right to "
            "terminate for convenience.",
        ),
    },
    "renewal": {
        "yes": (
            "This {agreement} has an initial term of {init} from the Effective Date and shall automatically "
            "renew for successive renewal terms of {term} each unless {A} or {B} gives written notice of "
            "non-renewal at least {notice} days before the end of the then-current term.",
            "Following an initial term of {init}, this {agreement} will renew automatically for further periods "
            "of {term} each, unless either {A} or {B} notifies the other in writing no later than {notice} days "
            "prior to expiry.",
        ),
        "no": (
            "This {agreement} has an initial term of {init} and shall not renew automatically. It may be "
            "extended for one further term of {term} only by a written amendment signed by {A} and {B} at least "
            "{notice} days before expiry.",
            "The initial term of this {agreement} is {init}. This {agreement} will not automatically renew; any "
            "renewal for an additional {term} requires {B} to request it in writing and {A} to accept, at least "
            "{notice} days before the initial term ends.",
        ),
    },
    "governing_law": {"all": (
        "This {agreement} and any dispute between {A} and {B} arising out of it shall be governed by the laws of "
        "{law_full}, without regard to its conflict of laws principles. The {courts} shall have {excl} "
        "jurisdiction, but neither party may commence proceedings until senior executives have tried to "
        "settle the dispute for {esc} days.",
        "{A} and {B} agree that the laws of {law_full} govern this {agreement}. Any dispute that senior "
        "executives of {A} and {B} cannot resolve within {esc} days shall be submitted to the {excl} "
        "jurisdiction of the {courts}.",
        "All matters relating to this {agreement} will be construed under and governed by the laws of "
        "{law_full}. Before bringing an action, {A} or {B} must first negotiate in good faith for {esc} days; "
        "any action must then be filed in the {courts}, which will have {excl} jurisdiction.",
    )},
}

_PARAPHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "indemnity": {"all": (
        "{I} has to protect {E} from third-party lawsuits over {scope_q} and pay what {E} loses, if told "
        "within {n} days.",
        "Which provision makes {I} cover {E} when an outside party sues about {scope_q}, with {n} days to "
        "report the claim?",
        "If someone outside the deal sues {E} over {scope_q}, {I} pays the defence and any award, as long as "
        "{E} reports it within {n} days.",
    )},
    "liability_cap": {"all": (
        "{C} owes {O} at most {cap_q} in total for direct damages and is not responsible for {excludes_q}.",
        "Is there a clause limiting what {C} can be made to pay {O} for direct damages to {cap_q}, with no "
        "liability for {excludes_q}?",
        "Limitation of liability: {C}'s exposure to {O} for direct damages tops out at {cap_q}, and {C} is "
        "never liable for {excludes_q}.",
    )},
    "termination": {
        "yes": (
            "{T_q} can end the contract without giving a reason, on {n} days' written notice to {O_q}.",
            "Can {T_q} cancel the contract for convenience by telling {O_q} in writing {n} days ahead?",
            "Termination for convenience: {T_q} may exit at any time after notifying {O_q} in writing {n} days "
            "beforehand.",
        ),
        "no": (
            "{T_q} can only end the contract if {O_q} commits a material breach left unfixed for {n} days; no "
            "termination for convenience.",
            "Is termination by {T_q} limited to an uncured material breach by {O_q}, with a {n}-day cure period?",
            "The contract gives {T_q} no right to exit for convenience, only for a material breach by {O_q} that "
            "is still uncured after {n} days' notice.",
        ),
    },
    "renewal": {
        "yes": (
            "The {init_n}-year contract rolls over automatically into {term_n}-year terms unless {A} or {B} "
            "opts out {notice_n} days before the term ends.",
            "Does the deal between {A} and {B} auto-renew for {term_n}-year periods after the first {init_n} "
            "years, with {notice_n} days' warning needed to stop it?",
            "Auto-renewal: after {init_n} years the contract extends itself by {term_n} years at a time; {A} "
            "or {B} must object {notice_n} days ahead.",
        ),
        "no": (
            "The contract between {A} and {B} runs {init_n} years and does not renew by itself; another "
            "{term_n}-year term needs both to agree in writing {notice_n} days before expiry.",
            "Is there no automatic renewal, so {A} and {B} must sign an extension of {term_n} years at least "
            "{notice_n} days before the {init_n}-year term ends?",
            "No auto-renewal: after {init_n} years, {B} has to ask {A} in writing, {notice_n} days ahead, for "
            "a further {term_n} years.",
        ),
    },
    "governing_law": {"all": (
        "Disputes between {A} and {B} are settled under {law} law in courts with {excl} jurisdiction, after "
        "{n} days of executive negotiation.",
        "Is the contract between {A} and {B} governed by the law of {law}, with {excl} court jurisdiction once "
        "{n} days of talks have failed?",
        "Choice of law: {law} law applies, {A} and {B} must try to settle for {n} days before suing, and the "
        "courts there have {excl} jurisdiction.",
    )},
}


def _two_parties(rng: np.random.Generator, deal: _Deal, p_a_first: float) -> tuple[str, str]:
    """(acting party, other party): the delivering party acts with probability `p_a_first`."""
    return (deal.a, deal.b) if rng.random() < p_a_first else (deal.b, deal.a)


def _indemnity(rng: np.random.Generator, deal: _Deal) -> _Draw:
    indemnitor, indemnitee = _two_parties(rng, deal, 0.6)
    scope, scope_q = pick(rng, _INDEMNITY_SCOPES)
    days = pick(rng, _CLAIM_NOTICE_DAYS)
    slots = {"I": indemnitor, "E": indemnitee, "scope": scope, "scope_q": scope_q, "notice": spelled(days),
             "n": str(days)}
    facts = {"indemnitor": indemnitor, "indemnitee": indemnitee, "scope": scope, "claim_notice_days": str(days)}
    return _Draw("all", slots, facts)


def _liability_cap(rng: np.random.Generator, deal: _Deal) -> _Draw:
    """A fixed amount (fact `cap`, USD) or the fees of the preceding months (fact `cap_months`)."""
    capped, other = _two_parties(rng, deal, 0.7)
    excludes, excludes_q = pick(rng, _EXCLUSIONS)
    if rng.random() < 0.5:
        amount = pick(rng, _CAP_AMOUNTS)
        cap, cap_q, cap_fact = f"${amount:,}", f"USD {amount:,}", {"cap": str(amount)}
    else:
        months = pick(rng, _CAP_MONTHS)
        cap = (f"the total fees paid or payable by {deal.b} in the {spelled(months)} months preceding the event "
               "giving rise to the claim")
        cap_q, cap_fact = f"what {deal.b} paid in the {months} months before the claim", {"cap_months": str(months)}
    slots = {"C": capped, "O": other, "cap": cap, "cap_q": cap_q, "excludes": excludes, "excludes_q": excludes_q}
    return _Draw("all", slots, {**cap_fact, "capped_party": capped, "excludes": excludes})


def _termination(rng: np.random.Generator, deal: _Deal) -> _Draw:
    # Mutual termination rights are the commonest, so "either party" is listed twice (half of the draws).
    party, other = pick(rng, (("either party", "the other party"), ("either party", "the other party"),
                               (deal.a, deal.b), (deal.b, deal.a)))
    days = pick(rng, _TERMINATION_DAYS)
    convenience = "yes" if rng.random() < 0.5 else "no"
    # A query names both parties even for "either party", so that it points at this contract's clause.
    asked = (f"either {deal.a} or {deal.b}", "the other") if party == "either party" else (party, other)
    slots = {"T": party, "O": other, "T_q": asked[0], "O_q": asked[1], "notice": f"{spelled(days)} days'",
             "cure": f"{spelled(days)} days", "n": str(days)}
    facts = {"terminating_party": party, "notice_days": str(days), "for_convenience": convenience}
    return _Draw(convenience, slots, facts)


def _renewal(rng: np.random.Generator, deal: _Deal) -> _Draw:
    auto = "yes" if rng.random() < 0.6 else "no"
    init, term, notice = (pick(rng, _INITIAL_YEARS), pick(rng, _RENEWAL_YEARS), pick(rng, _RENEWAL_NOTICE_DAYS))
    slots = {"init": years(init), "term": years(term), "notice": spelled(notice), "init_n": str(init),
             "term_n": str(term), "notice_n": str(notice)}
    facts = {"auto_renew": auto, "initial_term_years": str(init), "renewal_term_years": str(term),
             "notice_days": str(notice)}
    return _Draw(auto, slots, facts)


def _governing_law(rng: np.random.Generator, deal: _Deal) -> _Draw:
    law, law_full, courts = pick(rng, _LAWS)
    exclusive = "exclusive" if rng.random() < 0.7 else "non-exclusive"
    days = pick(rng, _ESCALATION_DAYS)
    slots = {"law": law, "law_full": law_full, "courts": courts, "excl": exclusive, "esc": spelled(days),
             "n": str(days)}
    return _Draw("all", slots, {"law": law, "jurisdiction": exclusive, "escalation_days": str(days)})


# --- contracts: distractor clauses ----------------------------------------------------------------------------
# Slot values: an int is written "thirty (30)" and stated as fact "30"; a string is written and stated as is.

_DISTRACTOR_SLOTS: dict[str, dict[str, tuple]] = {
    "confidentiality": {"survival_years": (2, 3, 5, 7), "return_days": (10, 15, 30)},
    "payment_terms": {"payment_days": (15, 30, 45, 60, 90), "late_interest": ("1%", "1.5%", "2%")},
    "warranty": {"warranty_months": (6, 12, 18, 24, 36), "defect_notice_days": (10, 14, 30, 60)},
    "assignment": {"notice_days": (10, 14, 15, 30, 45, 60),
                   "assignee": ("an affiliate", "a successor in interest",
                                "an acquirer of all or substantially all of its assets")},
    "force_majeure": {"event_notice_days": (5, 7, 10, 14), "termination_after_days": (30, 45, 60, 90, 120, 180)},
}

_DISTRACTOR_CLAUSES: dict[str, dict[str, tuple[str, ...]]] = {
    "confidentiality": {"all": (
        "Each of {A} and {B} shall keep the other's Confidential Information strictly confidential and shall "
        "not disclose it to any third party without prior written consent. These obligations survive "
        "termination of this {agreement} for {survival_years} years, and each party must return or destroy the "
        "other's Confidential Information within {return_days} days of termination.",
        "{B} shall not use the Confidential Information of {A} for any purpose other than performing this "
        "{agreement}, and must return or destroy it within {return_days} days after termination; this duty "
        "continues for {survival_years} years after termination.",
        "{A} and {B} will protect each other's Confidential Information under this {agreement} with at least "
        "reasonable care for {survival_years} years following disclosure, and will destroy all copies within "
        "{return_days} days of a written request.",
    )},
    "payment_terms": {"all": (
        "{B} shall pay each undisputed invoice issued by {A} under this {agreement} within {payment_days} days "
        "of receipt. Late payments bear interest at {late_interest} per month until paid in full.",
        "{A} will invoice {B} monthly in arrears for the fees due under this {agreement}; invoices are payable "
        "within {payment_days} days of the invoice date, and overdue amounts accrue interest at {late_interest} "
        "per month.",
        "All fees under this {agreement} are payable by {B} in US dollars within {payment_days} days after the "
        "date of {A}'s invoice. {A} may charge interest on any late payment at {late_interest} per month or, if "
        "lower, the maximum rate permitted by law.",
    )},
    "warranty": {"all": (
        "{A} warrants that {goods} will conform in all material respects to the specifications in this "
        "{agreement} for a period of {warranty_months} months from delivery, provided that {B} reports any "
        "non-conformity within {defect_notice_days} days of discovering it.",
        "For {warranty_months} months after acceptance, {A} warrants to {B} that {goods} will be free from "
        "material defects in design, materials and workmanship. {B} must notify {A} of a defect within "
        "{defect_notice_days} days, and {A} makes no other warranty under this {agreement}, express or implied.",
        "If {goods} fail to meet the specifications of this {agreement} within {warranty_months} months, {A} "
        "shall, at its option, repair or replace them at no charge to {B}, provided that {B} gives notice "
        "within {defect_notice_days} days; this is {B}'s exclusive remedy.",
    )},
    "assignment": {"all": (
        "Neither party may assign this {agreement} without the prior written consent of the other party, "
        "except that {A} may assign it to {assignee} upon {notice_days} days' written notice to {B}.",
        "{B} shall not assign or transfer any of its rights under this {agreement}, other than to {assignee}, "
        "without {A}'s prior written consent, which shall not be unreasonably withheld and shall be given or "
        "refused within {notice_days} days of a request.",
        "{A} may assign this {agreement} to {assignee}, provided that it gives {B} at least {notice_days} days' "
        "prior written notice; any other assignment by {A} or {B} requires written consent.",
    )},
    "force_majeure": {"all": (
        "Neither {A} nor {B} shall be liable under this {agreement} for any delay or failure to perform caused "
        "by events beyond its reasonable control, such as fire, flood, war or epidemic. The affected party must "
        "notify the other within {event_notice_days} days, and if the event continues for more than "
        "{termination_after_days} days, either party may terminate on written notice.",
        "{A} will not be responsible for any failure to perform its obligations regarding {goods} under this "
        "{agreement} when prevented by an event of force majeure, provided that it notifies {B} within "
        "{event_notice_days} days of the event; if the event lasts more than {termination_after_days} days, {B} "
        "may terminate.",
        "A party affected by a force majeure event must inform the other within {event_notice_days} days. {B}'s "
        "payment obligations are suspended only while {A}'s performance under this {agreement} is suspended, "
        "and if the event lasts longer than {termination_after_days} days either {A} or {B} may end this "
        "{agreement}.",
    )},
}
_CLAUSES = _REVIEWED_CLAUSES | _DISTRACTOR_CLAUSES


def _distractor(topic: str, rng: np.random.Generator, deal: _Deal) -> _Draw:
    values = {slot: pick(rng, options) for slot, options in _DISTRACTOR_SLOTS[topic].items()}
    slots = {slot: spelled(v) if isinstance(v, int) else v for slot, v in values.items()}
    return _Draw("all", slots, {slot: str(v) for slot, v in values.items()})


_DRAWERS: dict[str, Callable[[np.random.Generator, _Deal], _Draw]] = {
    "indemnity": _indemnity, "liability_cap": _liability_cap, "termination": _termination,
    "renewal": _renewal, "governing_law": _governing_law,
    **{topic: partial(_distractor, topic) for topic in DISTRACTOR_TYPES},
}

# --- contracts: assembly --------------------------------------------------------------------------------------

_MAX_REDRAWS = 1000


def _new_clause(topic: str, rng: np.random.Generator, deal: _Deal, seen: set) -> tuple[_Draw, str]:
    """A clause whose text, and for reviewed types whose meaning (parties + facts), no earlier clause has.

    Unique meanings make each query's gold the only right answer; unique texts keep the index free of
    duplicates. Redraws continue the contract's own stream, so the corpus stays a function of the seed.
    """
    for _ in range(_MAX_REDRAWS):
        draw = _DRAWERS[topic](rng, deal)
        text = fill(pick(rng, _CLAUSES[topic][draw.group]), deal.slots() | dict(draw.slots))
        meaning = (topic, deal.a, deal.b, tuple(sorted(draw.facts.items()))) if topic in CLAUSE_TYPES else None
        if text not in seen and meaning not in seen:
            seen.update({text, meaning} - {None})
            return draw, text
    raise RuntimeError(f"no new {topic} clause after {_MAX_REDRAWS} draws; add templates or slot values")


def _contract(seed: int, index: int, seen: set) -> tuple[list[Passage], list[Query]]:
    """Contract `index`: one clause of every type, and a paraphrase query per reviewed clause."""
    rng = stream(seed, f"corpus/contracts/{index}", 0)
    paraphrase_rng = stream(seed, f"corpus/contracts/{index}/queries", 0)
    deal = _draw_deal(rng)
    passages, queries = [], []
    for topic in CLAUSE_TYPES + DISTRACTOR_TYPES:
        draw, text = _new_clause(topic, rng, deal, seen)
        pid = f"contract-{index:04d}/{topic}"
        passages.append(Passage(pid, text, topic, frozen(draw.facts)))
        if topic in _PARAPHRASES:
            template = pick(paraphrase_rng, _PARAPHRASES[topic][draw.group])
            queries.append(Query(fill(template, deal.slots() | dict(draw.slots)), pid, topic))
    return passages, queries


def contract_corpus(contracts: int = 60, seed: int = 0) -> Corpus:
    """Clauses of `contracts` generated commercial contracts (10 clause types each) with queries for the five
    reviewed types. Contract i is the same whatever `contracts` is, so a smaller corpus is a prefix."""
    if not isinstance(contracts, int) or not 1 <= contracts <= MAX_CONTRACTS:
        raise CascadeError(f"contracts must be an integer from 1 to {MAX_CONTRACTS}, got {contracts!r}")
    seen: set = set()
    passages: list[Passage] = []
    queries: list[Query] = []
    for index in range(contracts):
        more_passages, more_queries = _contract(seed, index, seen)
        passages += more_passages
        queries += more_queries
    return Corpus("contracts", tuple(passages), tuple(queries))




def contract_parties(index: int, seed: int = 0) -> tuple[str, str, str]:
    """(delivering party, paying party, agreement title) of contract `index`, as its header names them.

    The deal is the first draw of the contract's stream, so this repeats exactly what `contract_corpus` drew.
    """
    deal = _draw_deal(stream(seed, f"corpus/contracts/{index}", 0))
    return deal.a, deal.b, deal.agreement


ROLE_PAIRS: tuple[tuple[str, str], ...] = tuple((a, b) for a, b, _, _ in _ROLE_PAIRS)
"""(delivering party, paying party) of every contract family."""

LAWS: tuple[str, ...] = tuple(law for law, _, _ in _LAWS)
"""Governing laws the clauses name (short names, as the `law` fact gives them)."""
