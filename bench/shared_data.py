"""Real text from ../shared/data for the benchmarks (read in place, never copied into the project)."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

CUAD_CATEGORIES = ("Cap On Liability", "Governing Law", "Anti-Assignment", "Audit Rights", "Insurance",
                   "Termination For Convenience", "License Grant", "Exclusivity")


def cuad_clauses(limit: int) -> list[tuple[str, str]]:
    """(category, clause) pairs from CUAD, distinct, 30 to 800 characters, in file order."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    with (DATA / "cuad" / "master_clauses.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for col in CUAD_CATEGORIES:
                for clause in ast.literal_eval(row[col]) if row[col] else []:
                    if 30 < len(clause) < 800 and clause not in seen:
                        seen.add(clause)
                        out.append((col, clause))
            if len(out) >= limit:
                return out[:limit]
    return out
