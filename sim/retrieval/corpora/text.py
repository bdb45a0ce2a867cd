"""Text helpers shared by the built-in corpora: numbers as contracts write them, template filling, frozen facts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

# --- shared helpers -------------------------------------------------------------------------------------------

NUMBER_WORDS = {
    1: "one", 2: "two", 3: "three", 5: "five", 6: "six", 7: "seven", 10: "ten", 12: "twelve", 14: "fourteen",
    15: "fifteen", 18: "eighteen", 24: "twenty-four", 30: "thirty", 36: "thirty-six", 45: "forty-five",
    60: "sixty", 90: "ninety", 120: "one hundred twenty", 180: "one hundred eighty",
}


def pick(rng: np.random.Generator, options):
    """One of `options`, uniformly, from the caller's stream."""
    return options[int(rng.integers(len(options)))]


def spelled(n: int) -> str:
    """A number as contracts write it, words then digits: "thirty (30)"."""
    return f"{NUMBER_WORDS[n]} ({n})"


def years(n: int) -> str:
    """A duration in years as contracts write it: "one (1) year", "three (3) years"."""
    return f"{spelled(n)} year" + ("" if n == 1 else "s")


def sentence_case(text: str) -> str:
    """Capitalise each sentence's first letter: a slot such as "either party" may open a sentence."""
    return re.sub(r"(^|[.?!]\s+)([a-z])", lambda m: m[1] + m[2].upper(), text)


def fill(template: str, slots: Mapping[str, str]) -> str:
    return sentence_case(template.format(**slots))


def frozen(facts: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(facts))


