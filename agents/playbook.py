"""The company's negotiation playbook: positions per contract family, in a current and a superseded edition.

We are the paying party (Customer, Licensee, Buyer ...). A playbook passage states, in plain prose with digits,
the thresholds a contract-review agent applies: the smallest acceptable cap on the counterparty's liability,
the shortest notice for the counterparty's termination for convenience, the longest notice period for
stopping an automatic renewal, and the approved governing laws. The superseded edition differs in every
threshold, so reading it (a `stale` retrieval) can change a position.
"""

from __future__ import annotations

from sim.core.seeding import stream
from sim.retrieval.corpora.contracts import LAWS, ROLE_PAIRS
from sim.retrieval.corpora.text import frozen, pick
from sim.retrieval.corpus import Passage

EDITIONS = ("current", "superseded")

_MIN_CAP = (500_000, 1_000_000, 2_000_000, 5_000_000)
_MIN_MONTHS = (6, 12, 24)
_MIN_NOTICE = (30, 45, 60, 90)
_MAX_RENEWAL_NOTICE = (30, 60, 90)

_TEXT = (
    "Negotiation playbook ({edition} edition) for contracts in which we are the {B} and the counterparty is the "
    "{A}. Indemnity: the {A} must indemnify the {B}; redline any clause in which the {B} gives the indemnity or "
    "the indemnity is excluded. Liability cap: a cap on the {A}'s liability is acceptable only if it is at "
    "least USD {min_cap:,} or the fees of at least {min_months} months. Termination: the {A} may terminate for "
    "convenience only on at least {min_notice} days' notice. Renewal: automatic renewal is acceptable only if "
    "notice of non-renewal is due no more than {max_renewal} days before expiry. Governing law: the approved "
    "laws are {laws}, with exclusive jurisdiction."
)


def playbook_id(a: str, b: str, edition: str = "current") -> str:
    return f"playbook/{a}-{b}/{edition}"


def playbook_passages(seed: int = 0) -> tuple[Passage, ...]:
    """Both editions of the playbook of every contract family; `topic` is the edition, facts the thresholds."""
    out = []
    for a, b in ROLE_PAIRS:
        rng = stream(seed, f"corpus/playbook/{a}-{b}", 0)
        drawn = []
        for _ in EDITIONS:
            laws = sorted(rng.choice(len(LAWS), size=4, replace=False).tolist())
            values = {"min_cap": pick(rng, _MIN_CAP), "min_months": pick(rng, _MIN_MONTHS),
                      "min_notice": pick(rng, _MIN_NOTICE), "max_renewal": pick(rng, _MAX_RENEWAL_NOTICE),
                      "laws": "; ".join(LAWS[i] for i in laws)}
            # Editions differ in every threshold: otherwise a stale read could not change any position.
            while drawn and any(values[k] == drawn[0][k] for k in ("min_cap", "min_months", "min_notice",
                                                                  "max_renewal")):
                values.update(min_cap=pick(rng, _MIN_CAP), min_months=pick(rng, _MIN_MONTHS),
                              min_notice=pick(rng, _MIN_NOTICE), max_renewal=pick(rng, _MAX_RENEWAL_NOTICE))
            drawn.append(values)
        for edition, values in zip(EDITIONS, drawn, strict=True):
            text = _TEXT.format(edition=edition, A=a, B=b, **values)
            facts = {k: str(v) for k, v in values.items()}
            out.append(Passage(playbook_id(a, b, edition), text, edition, frozen(facts)))
    return tuple(out)
