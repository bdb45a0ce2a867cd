"""Built-in domain corpora with ground truth: commercial-contract clauses and retail-bank support articles.

Generated, not copied, because every passage's facts (who indemnifies whom, the cap, the notice period, the
refund rule) must be known exactly: only then can a structural twin (negation flip, role swap, modifier swap,
changed number) be told apart from a paraphrase, and an agent's reading of a passage be scored. Templates are
data; slots are filled from `sim.core.seeding` streams keyed by what is drawn, so a corpus is a pure function of
its arguments.

What the tests and the twin editor (`sim.retrieval.twins`) rely on:
- every fact except `intent` is stated verbatim in its passage: numbers in clauses read "thirty (30)" (fact
  "30"), amounts "$1,500,000" (fact "1500000"); yes/no facts are stated by a cue (`for_convenience` "no":
  the clause turns on a material breach; `auto_renew` and `refund_eligible` "no": the text says "not");
- every clause names both parties of its contract with modal verbs, modifiers and numbers around them;
- a clause query paraphrases its gold clause from a separate template set, keeping parties, direction,
  negation and numbers (as digits); no two reviewed clauses state the same facts between the same parties,
  so each query has exactly one right answer. Support queries are first-person customer messages.
"""


from __future__ import annotations

from collections.abc import Callable

from sim.retrieval.corpora.contracts import CLAUSE_TYPES, DISTRACTOR_TYPES, MAX_CONTRACTS, contract_corpus
from sim.retrieval.corpora.support import MAX_SUPPORT_VARIANTS, TEAM_OF_INTENT, support_corpus
from sim.retrieval.corpus import Corpus, Passage, Query

__all__ = [
    "BUILTIN_CORPORA", "CLAUSE_TYPES", "DISTRACTOR_TYPES", "MAX_CONTRACTS", "MAX_SUPPORT_VARIANTS",
    "TEAM_OF_INTENT", "Corpus", "Passage", "Query", "contract_corpus", "support_corpus",
]

BUILTIN_CORPORA: dict[str, Callable[..., Corpus]] = {"contracts": contract_corpus, "support": support_corpus}
