"""Content-addressed work units and the sweep folder that keeps them.

A unit's key is a hash of everything that decides its figures: the resolved scenario of its point(s) (variants,
seed and every parameter included), the engine, the sizes, and the package version. A unit whose record is in
the folder is never computed again, so a study killed at any moment is continued by the same command, and a
changed point gets a new key (only its unit is computed again). The client owns the folder: workers return
figures and run results, the client writes them (workers need no shared disk).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sim.core.atomic import write_text
from sim.core.errors import CascadeError
from sim.core.folders import require_folder

UNIT_FORMAT = 1
"""Changes when what a unit record holds changes (old records are then computed again, never misread)."""

MARKER = "sweep-folder.json"
"""Written first into a sweep folder: what makes a folder one `cascade sweep` may continue in."""


def _version() -> str:
    try:
        return version("cascadesim")
    except PackageNotFoundError:  # a source checkout without an install
        return "source"


@dataclass(frozen=True)
class WorkUnit:
    """One task: a batch of analytic points evaluated in one walk, or one point run by an engine."""

    key: str
    engine: str
    points: tuple[int, ...]
    kind: str
    """`batch` (analytic points, exact figures only) or `run` (a whole run, written as a run folder)."""
    variants: tuple[str, ...]
    """The variants each of its points has a row for."""
    payload: tuple = field(repr=False, compare=False)
    """What the task function takes (`sim.sweeps.tasks`)."""


def unit_key(content: dict[str, Any]) -> str:
    """The key of a unit: SHA-256 of its content as canonical JSON, with the format and package version."""
    text = json.dumps({"format": UNIT_FORMAT, "version": _version(), **content}, sort_keys=True,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class SweepFolder:
    """A study's folder: `units/KEY.json` (one record per completed unit), `points/KEY/` (the run folder of each
    point run by a sampled engine), and the study's outputs (`sweep.parquet`, `sweep.json`, `report.html`)."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def open(cls, folder: str | Path, scenario: str) -> SweepFolder:
        """The folder a study may write to: missing, empty, or a sweep folder (continued). Any other folder that
        holds files is refused, never written into."""
        given = str(folder)
        if not given.strip():
            raise CascadeError("the sweep folder is empty (''): give one, e.g. --out runs/NAME_sweep")
        path = Path(os.path.realpath(folder))
        require_folder(path, f"--out {given}", "a folder for the study (missing, empty, or an earlier sweep)")
        if path.is_dir() and any(path.iterdir()) and not (path / MARKER).is_file():
            raise CascadeError(f"the sweep folder {given} holds files but is not a sweep folder (no {MARKER}); "
                               "choose an empty or new folder, or the folder of an earlier `cascade sweep`")
        try:
            (path / "units").mkdir(parents=True, exist_ok=True)
            if not (path / MARKER).is_file():
                write_text(path / MARKER, json.dumps({"format": UNIT_FORMAT, "scenario": scenario}) + "\n")
        except OSError as exc:
            raise CascadeError(f"cannot write the sweep folder {given}: {exc.strerror or exc}") from None
        return cls(path)

    def record(self, key: str) -> list[dict[str, Any]] | None:
        """The rows a completed unit recorded, or None when it has not completed (or its record is unreadable:
        it is then computed again)."""
        try:
            data = json.loads((self.path / "units" / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data.get("rows") if isinstance(data, dict) and data.get("format") == UNIT_FORMAT else None

    def run_folder(self, key: str) -> Path:
        return self.path / "points" / key

    def keep(self, unit: WorkUnit, rows: list[dict[str, Any]], result: Any = None) -> None:
        """Keep a completed unit: its run folder first (when it ran whole), then its record, each written
        atomically; a kill between the two leaves a unit that is computed again, never a half one."""
        if result is not None:
            result.write(self.run_folder(unit.key))
        write_text(self.path / "units" / f"{unit.key}.json",
                   json.dumps({"format": UNIT_FORMAT, "engine": unit.engine, "points": list(unit.points),
                               "rows": rows}) + "\n")


__all__ = ["WorkUnit", "unit_key", "SweepFolder", "MARKER"]
