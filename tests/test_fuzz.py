"""The structural fuzz test: seeded scenario mutants through the real CLI (validate, then run when valid) end
in exit 0 or exit 2 naming file:line — never a traceback, never past the time bound. The full campaign with a
table by family is `python bench/fuzz_campaign.py`."""

from __future__ import annotations

from collections import Counter

from tests.fuzzing import FAMILIES, mutants, try_mutant

MUTANTS = 220  # 20 of each family
TIME_BOUND = 60.0  # seconds per command: a hang, not a speed goal (the slowest command takes about 2 s)


def test_no_scenario_mutant_crashes_hangs_or_is_refused_without_a_line(tmp_path):
    outcomes = [o for i, m in enumerate(mutants(2026, MUTANTS)) for o in try_mutant(m, tmp_path / f"m{i}", TIME_BOUND)]
    bad = [f"{o.family} ({o.source}) {o.command}: {o.kind}\n{o.message}" for o in outcomes
           if o.kind not in ("ok", "refused")]
    assert not bad, "\n---\n".join(bad)
    # The mutants reach both sides of validation in every family that can stay valid: the test is not vacuous.
    kinds = Counter(o.kind for o in outcomes)
    families = {o.family for o in outcomes if o.command.startswith("run") and o.kind == "ok"}
    assert kinds["refused"] > MUTANTS // 2 and kinds["ok"] > 50
    # (`duplicate` writes a key twice or a list item twice: refused almost everywhere, by design, so whether one
    # of its mutants stays valid depends on the draw; it is not required here.)
    assert {"delete_key", "merge", "alias"} <= families <= set(FAMILIES)
