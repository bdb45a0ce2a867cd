"""Structural twins: a minimal, rule-based edit that keeps a text almost byte-identical but flips its meaning.

Dense embeddings score such a twin near the original, so twins probe whether a retriever can tell "shall" from
"shall not", who indemnifies whom, which damages are excluded, and how many days a notice period has
(DESIGN.md, Vocabulary: negation_flip, role_swap, modifier_swap, numeric_swap). Every rule edits whole words
only, keeps the rest of the text byte-identical and keeps the case of each replaced word. Where several sites
qualify, the caller's numpy Generator picks one, so a twin is a pure function of (text, type, stream).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from sim.core.seeding import stream

TWIN_TYPES: tuple[str, ...] = ("negation_flip", "role_swap", "modifier_swap", "numeric_swap")
TWIN_MARK = "#twin:"
"""Twin ids are `{original id}#twin:{type}`; a user's passage id may not contain this mark."""


def twin_id(original: str, error_type: str) -> str:
    """The id of the `error_type` twin of passage `original`."""
    return f"{original}{TWIN_MARK}{error_type}"


@dataclass(frozen=True)
class Twin:
    """One edited text. `edit` is short and human-readable: "shall -> shall not", "Supplier <-> Customer"."""

    error_type: str
    text: str
    edit: str

    def __post_init__(self):
        if self.error_type not in TWIN_TYPES:
            raise ValueError(f"Twin.error_type {self.error_type!r} is not one of {', '.join(TWIN_TYPES)}")


_Span = tuple[int, int, str]  # (start, end, replacement) in the original text
_ARTICLE_BEFORE = re.compile(r"\b(?P<article>an?)\s+$", re.IGNORECASE)


def _apply(text: str, spans: list[_Span]) -> str:
    """Text with non-overlapping spans replaced (right to left, so earlier offsets stay valid)."""
    for start, end, new in sorted(spans, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _match_case(template: str, word: str) -> str:
    """`word` (lower case) in the case pattern of `template`: UPPER, Title Case, Capitalised or lower."""
    if len(template) > 1 and template.isupper():
        return word.upper()
    if not template[:1].isupper():
        return word
    if len(template.split()) > 1 and all(w[:1].isupper() for w in template.split()):
        return " ".join(w[:1].upper() + w[1:] for w in word.split())
    return word[:1].upper() + word[1:]


def _with_article(text: str, start: int, end: int, new: str) -> _Span:
    """A replacement span that also fixes a preceding "a"/"an" ("an exclusive" -> "a non-exclusive")."""
    m = _ARTICLE_BEFORE.search(text, max(0, start - 4), start)
    if not m:
        return start, end, new
    article = "an" if new[:1].lower() in "aeiou" else "a"
    return m.start(), end, _match_case(m["article"], article) + m[0][len(m["article"]):] + new


def _pick(rng: np.random.Generator, options: list):
    """One option chosen by the caller's stream (never global random state)."""
    return options[int(rng.integers(len(options)))]


# --- negation_flip ------------------------------------------------------------------------------------------

_AUXILIARIES = "shall|will|may|must|can|is|are|was|were|does|do|did|has|have|should|would|could"
# Obligation and permission are what a contract clause turns on, so these sites are preferred when present.
_MODALS = frozenset({"shall", "will", "may", "must", "need"})
# Support queries often drop the apostrophe ("dont", "doesnt"), so it is optional.
_NEGATED = re.compile(
    rf"\b(?:(?P<aux>{_AUXILIARIES})\s+not"
    r"|(?P<short>is|are|was|were|does|do|did|has|have|should|would|could|must)n['’]?t"
    r"|(?P<odd>cannot|can['’]?t|won['’]?t|shan['’]?t|need\s+not))\b",
    re.IGNORECASE,
)
_ODD_POSITIVE = {"cannot": "can", "cant": "can", "wont": "will", "shant": "shall", "need not": "must"}
# A "not" or "never" apart from an auxiliary: "Why is my card not working?", "not less than", "it never
# worked".
# Not in "but not limited to", "whether or not" or "not only": dropping it there changes no meaning.
_LOOSE_NOT = re.compile(r"(?<!\bbut )(?<!\bor )\b(?:not\s+(?!only\b)(?:yet\s+)?(?=\w)|(?P<never>never)\b)",
                        re.IGNORECASE)
# Not after "to" ("licensed to do business"), before a contraction ("can't") or a hyphen, or ending a clause.
_POSITIVE = re.compile(rf"(?<!\bto )\b(?P<aux>{_AUXILIARIES})\b(?!['’]\w|-)(?=\s+[A-Za-z])", re.IGNORECASE)
# "Neither party shall ...", "Why is my card not working?", "will have no obligation": adding a second
# negation to a clause that already has one makes a double negative, not a flip.
# A contraction counts too, with or without its apostrophe ("I still don't have my PIN": not "don't haven't").
_NEGATION_BEFORE = re.compile(
    r"\b(?:no|not|neither|nor|never|cannot|\w+n['’]t|(?:do|does|did|ca|wo|is|are|was|were|has|have|had)nt)\b"
    r"[^.,;:!?]*$", re.IGNORECASE)
# Words that need a negation in their clause ("I haven't received it yet", "it isn't working anymore"):
# removing the negation before them leaves broken text ("I have received it yet").
_NEEDS_NEGATION_AFTER = re.compile(r"[^.,;:!?]*?\b(?:yet|anymore|any\s+more|any\s+longer|at\s+all|either|ever)\b",
                                   re.IGNORECASE)
# "have", "has", "had" and "do" are main verbs before their object ("it has all my details", "I did a
# top-up"): "hasn't all my details" is not the natural negation, so those are left alone unless inverted.
_MAIN_VERB_AUXILIARIES = frozenset({"has", "have", "had", "do", "does", "did"})
# An auxiliary before its subject is inverted at the start of a sentence or after a question word or a
# conjunction ("Why did my card ...", "so can you help me ..."); elsewhere a following determiner is its object.
_INVERTING_BEFORE = re.compile(r"\b(?:why|how|what|where|when|which|who|whom|whose|so|and|but|or|then|please)"
                               r"\s+$", re.IGNORECASE)
_NEGATION_AFTER = re.compile(
    r"(?:\s+[^\s.,;:!?]+){0,4}?\s+(?:(?:not|never|no|none|nothing|neither|nor)\b|\w+n['’]t\b)", re.IGNORECASE
)
# An auxiliary that opens a sentence or precedes its subject is inverted ("Can I ...", "Why did my ..."):
# there only a contraction reads naturally.
_SUBJECT_AFTER = re.compile(
    r"\s+(?:i|you|we|they|he|she|it|there|my|your|our|their|his|her|its|the|this|that|these|those"
    r"|a|an|any|all)\b",
    re.IGNORECASE,
)
_SENTENCE_START = re.compile(r"(?:^|[.?!]\s+)$")
# "How do I ...", "Where can I ...": negating the auxiliary of a wh-question makes broken text ("How don't I
# turn on ...?"), not the opposite question. "Why" is the exception ("Why can't I log in?").
_WH_BEFORE = re.compile(r"\b(?:how|what|where|when|which|who|whom|whose)(?:['’]s)?\s+$", re.IGNORECASE)
# Real negations often use an antonym rather than "not" (open / closed, turn on / turn off). A particle only
# counts after its verb ("turn on", not "on Sundays").
_NEGATION_ANTONYM_PAIRS = (
    ("open", "closed"), ("opened", "closed"), ("enabled", "disabled"), ("enable", "disable"),
    ("activate", "deactivate"), ("activated", "deactivated"), ("locked", "unlocked"), ("lock", "unlock"),
    ("available", "unavailable"), ("allowed", "forbidden"), ("possible", "impossible"),
    ("accepted", "rejected"), ("approved", "declined"), ("included", "excluded"), ("include", "exclude"),
    ("valid", "invalid"), ("legal", "illegal"), ("visible", "hidden"), ("always", "never"),
    ("successful", "unsuccessful"), ("correct", "incorrect"), ("agree", "disagree"), ("like", "dislike"),
)
_NEGATION_ANTONYM = dict(_NEGATION_ANTONYM_PAIRS) | {b: a for a, b in _NEGATION_ANTONYM_PAIRS if b != "closed"}
_ANTONYM_WORD = re.compile(r"(?<![\w'’-])(" + "|".join(sorted(_NEGATION_ANTONYM, key=len, reverse=True))
                           + r")(?![\w-])", re.IGNORECASE)
_PARTICLE = re.compile(r"\b(?P<verb>turn(?:s|ed|ing)?|switch(?:es|ed|ing)?|log(?:s|ged|ging)?|sign(?:s|ed|ing)?)"
                       r"\s+(?P<p>on|off|in|out)\b", re.IGNORECASE)
_PARTICLE_ANTONYM = {"on": "off", "off": "on", "in": "out", "out": "in"}
_CONTRACTED = {"will": "won't", "can": "can't"} | {
    aux: aux + "n't" for aux in ("is", "are", "was", "were", "does", "do", "did", "has", "have", "should",
                                 "would", "could", "must")
}


def _antonym_sites(text: str) -> list[tuple[str, _Span]]:
    """("antonym", span) for each word or verb particle a lexicon can replace by its opposite, outside a
    clause that is already negated (an antonym there makes a double negative)."""
    sites = []
    for m in _PARTICLE.finditer(text):
        sites.append(("antonym", (m.start("p"), m.end("p"), _match_case(m["p"], _PARTICLE_ANTONYM[m["p"].lower()]))))
    for m in _ANTONYM_WORD.finditer(text):
        if m[0].lower() == "like" and not re.search(r"\b(?:i|you|we|they|he|she|[a-z]+s)\s+$", text[:m.start()],
                                                     re.IGNORECASE):
            continue  # "like" as a verb only, not "a card like this"
        sites.append(("antonym", _with_article(text, m.start(), m.end(),
                                               _match_case(m[0], _NEGATION_ANTONYM[m[0].lower()]))))
    return [site for site in sites
            if not _NEGATION_BEFORE.search(text, max(0, site[1][0] - 60), site[1][0])
            and not _NEGATION_AFTER.match(text, site[1][1])]


def _negation_sites(text: str) -> list[tuple[str, _Span]]:
    """Every (auxiliary, span) whose replacement removes or adds one negation."""
    sites = []
    for m in _NEGATED.finditer(text):
        if m["odd"]:
            aux = _ODD_POSITIVE[re.sub(r"['’]", "", " ".join(m["odd"].lower().split()))]
            key = "need" if aux == "must" else aux
            sites.append((key, (m.start(), m.end(), _match_case(m[0], aux))))
        else:
            aux = m["aux"] or m["short"]
            sites.append((aux.lower(), (m.start(), m.end(), aux)))
    negated = [span for _, span in sites]
    for m in _LOOSE_NOT.finditer(text):
        if not any(start <= m.start() < end for start, end, _ in negated):
            sites.append(("not", (m.start(), m.end(), _match_case(m[0], "always") if m["never"] else "")))
    sites = [site for site in sites if not _NEEDS_NEGATION_AFTER.match(text, site[1][1])]
    apostrophe = "’" if "’" in text else "'"
    for m in _POSITIVE.finditer(text):
        aux = m["aux"].lower()
        if aux == "may" and m["aux"] == "May" and re.match(r"\s+\d", text[m.end():]):
            continue  # the month, as in "May 1, 2024"
        if (_NEGATION_BEFORE.search(text, max(0, m.start() - 60), m.start())
                or _NEGATION_AFTER.match(text, m.end())):
            continue
        subject_after = _SUBJECT_AFTER.match(text, m.end())
        inverted = _SENTENCE_START.search(text, max(0, m.start() - 8), m.start()) or (
            subject_after and _INVERTING_BEFORE.search(text, max(0, m.start() - 10), m.start()))
        if subject_after and not inverted and aux in _MAIN_VERB_AUXILIARIES:
            continue  # a main verb before its object: "it has all my details", "I did a top-up"
        if inverted:
            if aux not in _CONTRACTED or _WH_BEFORE.search(text, max(0, m.start() - 10), m.start()):
                continue  # "May I ..." has no natural negated form; "How don't I ..." is broken text
            new = _CONTRACTED[aux].replace("'", apostrophe)
        else:
            new = "cannot" if aux == "can" else aux + " not"
        sites.append((aux, (m.start(), m.end(), _match_case(m["aux"], new))))
    return sites


def _negation_flip(text: str, rng: np.random.Generator) -> Twin | None:
    """Remove or add one negation: at a modal ("shall", "may", "must", "will") when the text has one, else by
    an antonym when a lexicon has one (open -> closed, turn on -> turn off), else at another auxiliary."""
    sites = _negation_sites(text)
    antonyms = _antonym_sites(text)
    if not sites and not antonyms:
        return None
    modal = [site for site in sites if site[0] in _MODALS]
    start, end, new = _pick(rng, modal or antonyms or sites)[1]
    edit = f"{text[start:end].strip()} -> {new or '(removed)'}"
    return Twin("negation_flip", _apply(text, [(start, end, new)]), edit)


# --- role_swap ----------------------------------------------------------------------------------------------

_ROLES = (
    "supplier", "customer", "buyer", "seller", "licensor", "licensee", "company", "contractor", "client",
    "provider", "vendor", "distributor", "franchisor", "franchisee", "landlord", "tenant", "lessor", "lessee",
    "employer", "employee", "consultant", "purchaser", "manufacturer", "reseller", "agent", "principal",
    "party a", "party b", "disclosing party", "receiving party", "indemnifying party", "indemnified party",
    "investor", "operator", "producer", "developer", "publisher", "lender", "borrower", "sponsor", "endorser",
    "sender", "recipient", "payer", "payee",
)
# Longest first, so "Disclosing Party" wins over any shorter role; a space may be any run of whitespace.
_ROLE = re.compile(
    r"\b(" + "|".join(re.escape(r).replace(r"\ ", r"\s+") for r in sorted(_ROLES, key=len, reverse=True))
    + r")\b",
    re.IGNORECASE,
)
# Contracts mostly name their parties. A capitalised name counts as one when it acts ("ExxonMobil shall"),
# owns ("JHU's request"), receives ("grants to MA", "by PrimeCall") or is written in CamelCase ("ConvergTV").
# Case-sensitive, and never in all-caps text, where every word looks like a name.
_NAME = r"(?:[A-Z][a-z]+[A-Z]\w*|[A-Z]{2,6}|[A-Z][a-z]{2,})"
_ACTOR = re.compile(
    rf"\b(?P<name>{_NAME})(?=(?:['’]s)?\s+(?:shall|will|may|must|hereby|agrees|grants|warrants|represents|"
    r"covenants|acknowledges)\b|['’]s\b)"
    r"|\b(?:grants?|to|by|notify|permit|allow|giving)\s+(?P<object>[A-Z][a-z]+[A-Z]\w*|[A-Z]{2,6})\b"
    r"|\b(?P<camel>[A-Z][a-z]+[A-Z]\w*)\b"
)
_NOT_ACTORS = frozenset(
    "agreement agreements party parties section affiliate affiliates product products services group "
    "entity entities term territory notice this such each either neither any all both nothing event exhibit "
    "schedule licensed llc inc ltd corp one customers audits marks specifications applications "
    "what who where when why how which that there here it let he she you we they".split()
)
_DETERMINER = r"(?:my|your|our|their|his|her|its|the|a|an|another|one|[A-Z0-9$£€])"
# A source/destination pair with a short plain phrase between; "to" must start a noun phrase, not a verb.
_FROM_TO = re.compile(rf"\b(?P<a>[Ff]rom)\s+(?:[^\s.,;:!?]+\s+){{1,5}}?(?P<b>to)\b(?=\s+{_DETERMINER})")


# Plain subject-verb-object sentences ("Bob likes Alice", "The dog chased the cat"): two participants, a name
# or a determiner with a lower-case noun (and at most one adjective), around one verb.
_NOT_NOUN = (r"(?!(?:in|on|at|of|to|for|with|from|by|into|about|over|under|after|before|as|than|and|or|but|"
             r"yesterday|today|tomorrow|again|too|very)\b)")
_PARTICIPANT = (rf"(?:(?i:the|a|an|my|your|his|her|our|their|this|that)\s+(?:{_NOT_NOUN}[a-z]+\s+)?{_NOT_NOUN}"
                r"[a-z]+(?<!ly)"
                r"|(?!(?:The|A|An|My|Your|His|Her|Our|Their|This|That|What|Who|Where|When|Why|How|Which|It|I|"
                r"We|You|They|He|She|There|Here|Please|If|Can|Could|Do|Does|Did|Is|Are|Was|Were)\b)[A-Z][a-z]+)")
_VERB = (r"(?:(?:will|can|could|would|should|must|may|might|did|does|do|has|have|had)\s+[a-z]+"
         r"|[a-z]+(?:ed|es|s)|saw|met|hit|told|taught|paid|sent|left|beat|caught|bought|sold|kept|found|gave|"
         r"took|won|lost|chose|drove|ate|bit|ran|heard|knew|led|held|brought|fought|felt|read|made|hired|fired)")
_SVO = re.compile(rf"(?<![\w'’])(?P<a>{_PARTICIPANT})\s+(?P<verb>{_VERB})\s+(?P<b>{_PARTICIPANT})(?![\w'’])")
_NOT_VERBS = frozenset("is was has does as this his its thus plus always perhaps yes less unless".split())
_DETERMINERS = frozenset("the a an my your his her our their this that".split())


def _participant_as(participant: str, starts_sentence: bool) -> str:
    """A participant written where another stood: a determiner capitalised at a sentence start only."""
    if participant.split()[0].lower() in _DETERMINERS:
        participant = participant[:1].lower() + participant[1:]
    return participant[:1].upper() + participant[1:] if starts_sentence else participant


def _svo_swap(text: str, rng: np.random.Generator) -> Twin | None:
    """Swap subject and object of a plain subject-verb-object sentence."""
    found = [m for m in _SVO.finditer(text) if m["verb"].split()[-1].lower() not in _NOT_VERBS
             and m["verb"].split()[-1].lower() not in _FUNCTION_WORDS
             and " ".join(m["a"].lower().split()) != " ".join(m["b"].lower().split())]
    if not found:
        return None
    m = _pick(rng, found)
    spans = [(m.start(x), m.end(x), _participant_as(m[y], bool(_SENTENCE_START.search(text[:m.start(x)]))))
             for x, y in (("a", "b"), ("b", "a"))]
    return Twin("role_swap", _apply(text, spans), f"{m['a']} <-> {m['b']}")


def _role_sites(text: str) -> list[tuple[str, re.Match]]:
    """Every (party, match) in text order: a role keyed in lower case, or a named actor keyed by its name."""
    # Lower-case "principal" is nearly always "principal place of business", not a party.
    sites = [(" ".join(m[0].lower().split()), m) for m in _ROLE.finditer(text) if m[0] != "principal"]
    actors = () if text.isupper() else _ACTOR.finditer(text)
    names = {m["name"] or m["object"] or m["camel"] for m in actors}
    for name in sorted(n for n in names if n.lower() not in _NOT_ACTORS and n.lower() not in _ROLES):
        sites += [(name, m) for m in re.finditer(rf"\b{re.escape(name)}\b", text)]
    return sorted(sites, key=lambda site: site[1].start())


def _party_name(party: str) -> str:
    """How a party is written on its own: a name as it is, a role as a defined term ("Disclosing Party")."""
    return party.title() if party in _ROLES else party


def _party_as(template: str, party: str) -> str:
    """`party` written where `template` stood: a role in the case of a role it replaces ("CUSTOMER")."""
    if " ".join(template.lower().split()) not in _ROLES:
        return _party_name(party)
    return _match_case(template, party) if party in _ROLES else party.upper() if template.isupper() else party


def _role_swap(text: str, rng: np.random.Generator) -> Twin | None:
    """Swap two parties everywhere they occur; failing two parties, swap a "from ... to ..." pair; failing that,
    the subject and object of a plain subject-verb-object sentence."""
    sites = _role_sites(text)
    parties = list(dict.fromkeys(key for key, _ in sites))
    if len(parties) >= 2:
        a, b = _pick(rng, list(combinations(parties, 2)))
        other = {a: b, b: a}
        # Every site of A and B is rewritten from the original text at once; replacing A by B and then B by
        # A would merge them.
        spans = [(m.start(), m.end(), _party_as(m[0], other[key])) for key, m in sites if key in other]
        return Twin("role_swap", _apply(text, spans), f"{_party_name(a)} <-> {_party_name(b)}")
    pairs = list(_FROM_TO.finditer(text))
    if not pairs:
        return _svo_swap(text, rng)
    m = _pick(rng, pairs)
    spans = [(m.start("a"), m.end("a"), _match_case(m["a"], "to")), (m.start("b"), m.end("b"), "from")]
    return Twin("role_swap", _apply(text, spans), "from <-> to")


# --- modifier_swap ------------------------------------------------------------------------------------------

_ANTONYM_PAIRS = (
    ("direct", "indirect"), ("written", "oral"), ("physical", "virtual"), ("exclusive", "non-exclusive"),
    ("prior", "subsequent"), ("annual", "monthly"), ("gross", "net"), ("maximum", "minimum"),
    ("domestic", "international"), ("first", "last"), ("incoming", "outgoing"), ("personal", "business"),
    ("internal", "external"), ("temporary", "permanent"), ("limited", "unlimited"),
    ("transferable", "non-transferable"), ("revocable", "irrevocable"), ("public", "private"),
    ("local", "foreign"), ("full", "partial"), ("primary", "secondary"), ("initial", "final"),
    ("fixed", "variable"), ("inbound", "outbound"), ("express", "implied"), ("sole", "joint"),
    ("refundable", "non-refundable"), ("material", "immaterial"), ("debit", "credit"), ("early", "late"),
    ("higher", "lower"), ("new", "old"), ("current", "previous"), ("daily", "weekly"),
    ("mandatory", "optional"), ("present", "future"), ("pending", "completed"), ("valid", "expired"),
    ("online", "offline"),
)
_ANTONYM = dict(_ANTONYM_PAIRS) | {b: a for a, b in _ANTONYM_PAIRS}
# Modifiers with no single antonym still take part in swaps ("punitive damages ... incidental costs").
_MODIFIERS = frozenset(_ANTONYM) | {"special", "consequential", "incidental", "punitive", "exemplary",
                                    "quarterly"}
_FUNCTION_WORDS = frozenset(
    "a an the and or nor but of to in on at by for with from as than that which who whom whose is are was "
    "were be been being shall will may must can could would should not no this these those such its their "
    "his her our your my any all each every if then so upon into under over after before between during "
    "within without including thereof hereof hereunder hereto herein there it per".split()
)
# Names and fixed phrases that only look like modifier + noun.
_FIXED_PHRASES = frozenset({"new york", "new jersey", "new mexico", "new hampshire", "new zealand",
                            "gross negligence", "full force"})
# Hyphen counts as part of a word, so "exclusive" is not found inside "non-exclusive" (nor "non- exclusive").
_MODIFIER = re.compile(
    r"(?<![\w-])(?<!non- )(?P<mod>" + "|".join(sorted(_MODIFIERS, key=len, reverse=True)) + r")(?![\w-])"
    r"(?=\s+(?P<noun>[A-Za-z][\w-]*))",
    re.IGNORECASE,
)


def _modifier_sites(text: str) -> list[re.Match]:
    """Modifiers directly before a noun-ish word (not a function word, a second modifier or a proper name)."""
    sites = []
    for m in _MODIFIER.finditer(text):
        noun = m["noun"]
        if noun.lower() in _FUNCTION_WORDS or noun.lower() in _MODIFIERS:
            continue  # "direct and indirect", "prior written consent": a list or a stack, not two phrases
        if noun[:1].isupper() and not noun.isupper() or f"{m['mod']} {noun}".lower() in _FIXED_PHRASES:
            continue
        sites.append(m)
    return sites


def _modifier_swap(text: str, rng: np.random.Generator) -> Twin | None:
    """Swap two different modifiers between their nouns; failing two, replace one by its antonym."""
    sites = _modifier_sites(text)
    pairs = [(x, y) for x, y in combinations(sites, 2) if x["mod"].lower() != y["mod"].lower()]
    # Antonyms first ("written notice ... oral notice") read naturally; "regular written hours" does not.
    pairs = [(x, y) for x, y in pairs if _ANTONYM.get(x["mod"].lower()) == y["mod"].lower()] or pairs
    if pairs:
        x, y = _pick(rng, pairs)
        spans = [_with_article(text, x.start(), x.end(), _match_case(x["mod"], y["mod"].lower())),
                 _with_article(text, y.start(), y.end(), _match_case(y["mod"], x["mod"].lower()))]
        return Twin("modifier_swap", _apply(text, spans), f"{x['mod']} <-> {y['mod']}")
    # One kind of modifier only: replace one site by its antonym (direct -> indirect).
    flippable = [m for m in sites if m["mod"].lower() in _ANTONYM]
    if not flippable:
        return None
    m = _pick(rng, flippable)
    new = _match_case(m["mod"], _ANTONYM[m["mod"].lower()])
    twin = _apply(text, [_with_article(text, m.start(), m.end(), new)])
    return Twin("modifier_swap", twin, f"{m['mod']} -> {new}")


# --- numeric_swap -------------------------------------------------------------------------------------------

_SMALL_NUMBERS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                  "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_WORD_VALUES = {w: i for i, w in enumerate(_SMALL_NUMBERS)} | {w: 10 * i for i, w in enumerate(_TENS)
                                                               if i > 1}
_UNIT_WORD = "(?:one|two|three|four|five|six|seven|eight|nine)"
_TENS_WORD = "(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
_SMALL_WORD = "(?:" + "|".join(sorted(_SMALL_NUMBERS[1:], key=len, reverse=True)) + ")"
_UNDER_HUNDRED = rf"(?:{_TENS_WORD}(?:-{_UNIT_WORD})?|{_SMALL_WORD})"
_NUMBER_WORDS = rf"(?:{_UNIT_WORD}\s+hundred(?:\s+(?:and\s+)?{_UNDER_HUNDRED})?|{_UNDER_HUNDRED})"
_DURATION = r"(?P<unit>\s+(?:business\s+|calendar\s+|working\s+)?(?:day|week|month|year|hour|minute)s?\b)"
_DIGITS = r"\d{1,3}(?:,\d{3})+|\d+"
# "thirty (30) days", "five percent (5%)": the words and the digits change together.
_WORDS_AND_DIGITS = re.compile(
    rf"\b(?P<words>{_NUMBER_WORDS})(?P<percent>\s+percent)?"
    rf"\s*\(\s*(?P<num>{_DIGITS})(?P<pct>\s?%)?\s*\){_DURATION}?",
    re.IGNORECASE,
)
# A spelled number counts only before a unit: bare "one" is usually a pronoun ("any one of them").
_WORDS_ONLY = re.compile(rf"\b(?P<words>{_NUMBER_WORDS}){_DURATION}", re.IGNORECASE)
_NUMERAL = re.compile(
    rf"(?<![\w.,/-])(?P<cur>[$€£¥]\s?)?(?P<num>{_DIGITS})(?P<dec>\.\d+)?(?![\w/]|[.,]\d)"
    rf"(?P<pct>\s?%|\s+percent\b)?{_DURATION}?",
    re.IGNORECASE,
)
# A numeral right after these is a cross-reference or a day of the month, not a quantity.
_NOT_A_QUANTITY = re.compile(
    r"\b(?:sections?|articles?|clauses?|exhibits?|schedules?|paragraphs?|annex|appendix|rule|item|no\.|"
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?\s*\(?$|§\s*$",
    re.IGNORECASE,
)
_FACTORS = (0.5, 1.5, 2.0, 3.0)


def _to_words(n: int) -> str:
    """English words for 1 <= n <= 999 ("forty-five", "one hundred twenty")."""
    hundreds, rest = divmod(n, 100)
    parts = [f"{_SMALL_NUMBERS[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        parts.append(_TENS[rest // 10] + (f"-{_SMALL_NUMBERS[rest % 10]}" if rest % 10 else ""))
    elif rest:
        parts.append(_SMALL_NUMBERS[rest])
    return " ".join(parts)


def _words_value(words: str) -> int:
    """The value of a spelled number matched by _NUMBER_WORDS ("one hundred twenty" -> 120)."""
    value = 0
    for token in re.split(r"[-\s]+", words.lower()):
        if token == "hundred":
            value = (value or 1) * 100
        elif token != "and":
            value += _WORD_VALUES[token]
    return value


def _new_value(value: float, decimals: int, is_year: bool, max_value: float,
               rng: np.random.Generator) -> float | None:
    """A different, plausible value: a year moves by 1 or 2; anything else is scaled by one of _FACTORS."""
    if is_year:
        return value + _pick(rng, [-2, -1, 1, 2])
    # An integer stays an integer (15% -> 30%, never 22.5% rounded to 22%); a decimal keeps its places.
    scaled = [value * f for f in _FACTORS if decimals or (value * f).is_integer()]
    options = [v for v in (round(v, decimals) for v in scaled) if 0 < v != value] or [value + 1]
    options = [v for v in options if v <= max_value]
    return _pick(rng, options) if options else None


def _digits(value: float, decimals: int, like: str) -> str:
    """`value` written like the numeral `like`: thousands separators only if it had them."""
    return f"{value:,.{decimals}f}" if "," in like else f"{value:.{decimals}f}"


def _pluralise(unit: str, n: float) -> str:
    """The unit agreeing with its new number ("1 year" -> "2 years")."""
    plural = unit.lower().endswith("s")
    if n == 1 and plural:
        return unit[:-1]
    return unit + ("S" if unit.isupper() else "s") if n != 1 and not plural else unit


def _numeric_sites(text: str) -> tuple[list[re.Match], list[re.Match]]:
    """Sites split in two tiers: amounts, percentages, durations and years first; bare numerals second."""
    strong, bare, taken = [], [], []
    # Most specific pattern first: the "(30)" of "thirty (30) days" is not a second, bare site.
    for pattern in (_WORDS_AND_DIGITS, _WORDS_ONLY, _NUMERAL):
        for m in pattern.finditer(text):
            if any(start < m.end() and m.start() < end for start, end in taken):
                continue
            if pattern is _NUMERAL and _NOT_A_QUANTITY.search(text, max(0, m.start() - 12), m.start()):
                continue
            is_bare = pattern is _NUMERAL and not (m["cur"] or m["pct"] or m["unit"] or _is_year(m))
            (bare if is_bare else strong).append(m)
            taken.append((m.start(), m.end()))
    return strong, bare


def _is_year(m: re.Match) -> bool:
    """A plain four-digit numeral in 1900..2099, as in a date."""
    return (m["num"].isdigit() and len(m["num"]) == 4 and 1900 <= int(m["num"]) <= 2099
            and not (m["cur"] or m["dec"] or m["pct"] or m["unit"]))


def _numeric_swap(text: str, rng: np.random.Generator) -> Twin | None:
    """Change one amount, percentage, duration or year (words and digits together), keeping its format."""
    strong, bare = _numeric_sites(text)
    if not strong and not bare:
        return None
    m = _pick(rng, strong or bare)
    if m.re is _NUMERAL:
        decimals = len(m["dec"]) - 1 if m["dec"] else 0
        new = _new_value(float(m["num"].replace(",", "") + (m["dec"] or "")), decimals, _is_year(m),
                         float("inf"), rng)
        end = m.end("dec") if m["dec"] else m.end("num")
        spans = [(m.start("num"), end, _digits(new, decimals, m["num"]))]
    else:
        value = int(m["num"].replace(",", "")) if m.re is _WORDS_AND_DIGITS else _words_value(m["words"])
        new = _new_value(value, 0, False, 999, rng)  # _to_words spells up to 999
        if new is None:
            return None
        spans = [(m.start("words"), m.end("words"), _match_case(m["words"], _to_words(int(new))))]
        if m.re is _WORDS_AND_DIGITS:
            spans.append((m.start("num"), m.end("num"), _digits(new, 0, m["num"])))
    if m["unit"]:
        spans.append((m.start("unit"), m.end("unit"), _pluralise(m["unit"], new)))
    twin = _apply(text, spans)
    new_site = twin[m.start():m.end() + len(twin) - len(text)]
    return Twin("numeric_swap", twin, f"{m[0].strip()} -> {new_site.strip()}")


# --- public API ---------------------------------------------------------------------------------------------

_MAKERS = {"negation_flip": _negation_flip, "role_swap": _role_swap, "modifier_swap": _modifier_swap,
           "numeric_swap": _numeric_swap}


def make_twin(text: str, error_type: str, rng: np.random.Generator) -> Twin | None:
    """One twin of the given type, or None when that edit cannot be made on this text."""
    if error_type not in _MAKERS:
        raise ValueError(f"Unknown twin type {error_type!r}; expected one of {', '.join(TWIN_TYPES)}")
    twin = _MAKERS[error_type](text, rng)
    return twin if twin is not None and twin.text != text else None


def twins_of(text: str, seed: int, key: str) -> tuple[list[Twin], list[str]]:
    """All twins that can be made (one per type, in TWIN_TYPES order) and the types that were skipped.

    Deterministic for (seed, key, text). Each type draws from its own stream, `twins/{type}/{key}`, so adding
    a type never changes another type's twin.
    """
    twins, skipped = [], []
    for error_type in TWIN_TYPES:
        twin = make_twin(text, error_type, stream(seed, f"twins/{error_type}/{key}", 0))
        if twin is None:
            skipped.append(error_type)
        else:
            twins.append(twin)
    return twins, skipped
