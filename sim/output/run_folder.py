"""A run folder is one whole run. It is written beside its place and swapped in (`sim.core.atomic.write_folder`),
so a crash leaves the previous run or the new one, and it ends with `manifest.json`, written last, naming every
file of the run with its size and SHA-256. Reading a run folder checks the manifest and everything the report
reads, so a mixed, incomplete or edited folder is refused with what is wrong instead of rendered.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.core.atomic import recover_folder, write_folder
from sim.core.errors import CascadeError
from sim.metrics.sensitivity import COLUMNS as SENSITIVITY_COLUMNS
from sim.output.stored_summary import check_summary
from sim.trace.schema import INSTANCE_SCHEMA, OPTIONAL_INSTANCE_COLUMNS, STEP_COLUMNS

MANIFEST = "manifest.json"
FORMAT = "cascadesim run folder"
VERSION = 1
REQUIRED = ("summary.json", "instances.parquet", "steps.parquet", "scenario.yaml")
"""Files every run writes (engines add timeline.parquet or agent_trace.parquet, most runs sensitivity.csv)."""
_KNOWN = frozenset(REQUIRED) | {"attribution.csv", "cascade.csv", "sensitivity.csv", "timeline.parquet",
                                "agent_trace.parquet", "uncertainty.parquet", "sobol.csv", "counterfactuals.csv", "importance.csv", "loss_exceedance.csv", "report.html", "report.md", "calibrated.yaml",
                                "calibration.csv"}
"""Names a run folder of any version may hold (the run's files, and what `report` and `calibrate` add)."""
_COLUMNS = {"instances.parquet": [c for c in INSTANCE_SCHEMA.names if c not in OPTIONAL_INSTANCE_COLUMNS],
            "steps.parquet": [c for c in STEP_COLUMNS if c != "fate"]}
"""Columns a run folder's tables must have; `failed_acts` and `fate` came later (older folders lack them)."""
_TIMELINE_COLUMNS = ("variant", "replication", "day", "loss", "backlog")
_SENSITIVITY_NUMBERS = ("reference_loss", "value", "low", "high", "loss_at_low", "loss_at_high", "importance",
                        "importance_per_point",
                        "elasticity")


def is_run_folder(folder: Path) -> bool:
    """True for a folder `cascade run` wrote: it has our manifest, or (written before manifests) a summary.json
    and nothing but the files a run folder holds."""
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            return json.loads(manifest.read_text(encoding="utf-8")).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            return False
    return (folder / "summary.json").is_file() and all(
        p.name in _KNOWN or (p.name.startswith(".") and p.name.endswith(".tmp")) for p in folder.iterdir())


def check_out_folder(folder: str | Path) -> Path:
    """The absolute folder a run may write to: missing, empty, or a run folder (replaced whole). Anything else
    that holds files (a home or source folder) is refused rather than deleted, as is the current folder or one
    that contains it (a run renames its folder away). Leftovers of a killed run beside it are cleaned up."""
    given = str(folder)
    if not given.strip():
        raise CascadeError("the output folder is empty (''): give a folder for the run, e.g. --out runs/NAME")
    target = Path(os.path.realpath(folder))
    here = Path.cwd().resolve()
    if target == here or target in here.parents:
        empty = " (an empty --out means the current folder)" if given == "." else ""
        raise CascadeError(f"the output folder '{given}' is the current folder or contains it{empty}; a run "
                           "replaces its folder whole: give a folder of its own, e.g. --out runs/NAME")
    recover_folder(target)
    if target.exists() and not target.is_dir():
        raise CascadeError(f"the output folder {given} is a file; give a folder (missing, empty, or an earlier run)")
    if target.is_dir() and any(target.iterdir()) and not is_run_folder(target):
        raise CascadeError(f"the output folder {given} holds files but is not a run folder (no {MANIFEST} or "
                           "summary.json written by `cascade run`); a run replaces its folder whole, so it will "
                           "not write there: choose an empty or new folder")
    return target


def checkpoint_folder(folder: str | Path) -> Path:
    """Where a run that keeps checkpoints (the agent engine) keeps them while it runs: beside the run folder,
    hidden (`.NAME.cascade-checkpoint`), since the run folder itself is replaced whole when the run ends."""
    target = Path(os.path.realpath(folder))
    return target.parent / f".{target.name}.cascade-checkpoint"


def write_run_folder(folder: str | Path, write_files: Callable[[Path], None]) -> Path:
    """Write a run folder whole: `write_files(tmp)` writes the run's files into a fresh folder, the manifest is
    added last, and the folder takes the place of `folder` (an earlier run there is replaced, report included)."""
    target = check_out_folder(folder)

    def build(tmp: Path) -> None:
        write_files(tmp)
        files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in sorted(tmp.iterdir())}
        (tmp / MANIFEST).write_text(json.dumps({"format": FORMAT, "version": VERSION, "files": files},
                                               indent=2) + "\n", encoding="utf-8")

    return write_folder(target, build)


@dataclass(frozen=True)
class RunFolder:
    """A checked run folder: its summary, and the stored tables the report shows."""

    path: Path
    summary: dict[str, Any]
    sensitivity: pd.DataFrame | None
    timeline: pd.DataFrame | None


def open_run_folder(folder: str | Path) -> RunFolder:
    """Check a run folder (manifest, every file it lists, the summary's keys and types, the tables' columns)
    and read what the report shows; a CascadeError names the file and what is wrong."""
    path = Path(folder)
    recover_folder(path)
    if not path.is_dir():
        raise CascadeError(f"{path}: no such folder; give the folder written by `cascade run`")
    if not (path / MANIFEST).is_file():
        if not (path / "summary.json").is_file():
            raise CascadeError(f"{path}: no summary.json here; give the folder written by `cascade run`")
        raise CascadeError(f"{path}: no {MANIFEST}: the folder was written by an older cascadesim (its files may "
                           "come from different runs) or by a run that did not finish; run `cascade run` again")
    files = _check_manifest(path)
    summary_file = path / "summary.json"
    try:
        text = summary_file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CascadeError(f"{summary_file}: not UTF-8 text ({exc})") from None
    check_summary(text, summary_file)
    summary = json.loads(text)
    for name, columns in _COLUMNS.items():
        _check_parquet_columns(path / name, columns)
    if "agent_trace.parquet" in files:
        _check_parquet_columns(path / "agent_trace.parquet", ())
    timeline = _read_timeline(path / "timeline.parquet") if "timeline.parquet" in files else None
    sensitivity = _read_sensitivity(path / "sensitivity.csv") if "sensitivity.csv" in files else None
    return RunFolder(path, summary, sensitivity, timeline)


def _check_manifest(path: Path) -> dict[str, dict[str, Any]]:
    manifest = path / MANIFEST
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CascadeError(f"{manifest}: not readable JSON ({exc}); run `cascade run` again") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(files, dict):
        raise CascadeError(f"{manifest}: not a manifest written by `cascade run` (needs format {FORMAT!r} and files)")
    if data.get("version") != VERSION:
        raise CascadeError(f"{manifest}: version {data.get('version')!r}; this cascadesim reads version {VERSION}")
    for name in REQUIRED:
        if name not in files:
            raise CascadeError(f"{manifest}: does not list {name}, which every run writes; run `cascade run` again")
    for name, entry in files.items():
        if (not isinstance(entry, dict) or Path(name).name != name or not isinstance(entry.get("bytes"), int)
                or not isinstance(entry.get("sha256"), str)):
            raise CascadeError(f"{manifest}: files.{name}: needs a plain file name with bytes and sha256")
        file = path / name
        if not file.is_file():
            raise CascadeError(f"{file}: missing (the manifest lists it): the folder is incomplete; run "
                               "`cascade run` again")
        if file.stat().st_size != entry["bytes"] or _sha256(file) != entry["sha256"]:
            raise CascadeError(f"{file}: not the file this run wrote (its content differs from {MANIFEST}): the "
                               "folder mixes files of different runs or was edited; run `cascade run` again")
    return files


def _check_parquet_columns(file: Path, columns) -> None:
    try:
        names = pq.read_schema(file).names
    except (OSError, pa.ArrowException) as exc:
        raise CascadeError(f"{file}: not a readable parquet table ({exc})") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise CascadeError(f"{file}: missing columns {missing} (has {names})")


def _read_timeline(file: Path) -> pd.DataFrame:
    _check_parquet_columns(file, _TIMELINE_COLUMNS)
    try:
        table = pd.read_parquet(file)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise CascadeError(f"{file}: not a readable parquet table ({exc})") from None
    _check_numbers(file, table, _TIMELINE_COLUMNS[1:])
    return table


def _read_sensitivity(file: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(file)
    except (OSError, ValueError) as exc:  # pandas' parser and decoding errors are ValueErrors
        raise CascadeError(f"{file}: not a readable CSV table ({exc})") from None
    missing = [c for c in SENSITIVITY_COLUMNS if c not in table.columns]
    if missing:
        raise CascadeError(f"{file}: missing columns {missing}")
    _check_numbers(file, table, _SENSITIVITY_NUMBERS)
    if not table["parameter"].map(lambda v: isinstance(v, str)).all():
        raise CascadeError(f"{file}: column 'parameter': every row needs a parameter name")
    return table


def _check_numbers(file: Path, table: pd.DataFrame, columns) -> None:
    for column in columns:
        if not pd.api.types.is_numeric_dtype(table[column]) or pd.api.types.is_bool_dtype(table[column]):
            raise CascadeError(f"{file}: column {column!r}: needs numbers, has {table[column].dtype}")


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
