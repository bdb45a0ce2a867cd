"""Completed agent instances kept on disk, so a run killed half way continues where it stopped.

A run folder is replaced whole when a run ends (`sim.output.run_folder`), so the checkpoint lives beside it,
in a hidden folder of its own (`.NAME.cascade-checkpoint/`, named by `sim.output.run_folder.checkpoint_folder`)
and holds one subfolder per *run key*: the hash of everything that decides what an instance's records are
(the resolved scenario with its seed and variants, the policy and its model, the text the episodes come
from, the embedding model). A re-run of the same command finds its key and reuses each instance already done;
another command starts afresh and removes the keys it does not use. `cascade run` removes the checkpoint once
the run folder is written.

One JSON file per (variant, attempt, instance), written atomically when the instance completes: a kill at
any moment leaves every file whole or absent. The records are stored, not the trace rows, so the trace,
tokens and tallies are rebuilt exactly as for a fresh instance. JSON rather than pickle: a file in a user's
folder is data, never code.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from agents.domain import Acted, Decided, Record, Retrieved, Reviewed
from sim.core.atomic import write_text
from sim.core.errors import CascadeError
from sim.retrieval.corpus import Passage

FORMAT = 1  # bump when a record's shape changes: older checkpoints are then not reused


def run_key(parts: dict) -> str:
    """The hex SHA-256 of what decides the records (`parts`: JSON-able)."""
    text = json.dumps({"format": FORMAT, **parts}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class Checkpoint:
    """The completed instances of one run key under `folder`; `reused` counts the instances read back."""

    def __init__(self, folder: Path, key: str, passages: Mapping[str, Passage] | None = None):
        self.folder, self.key = Path(folder), key
        self.passages = dict(passages or {})
        """Passages stored by id alone (the domain's; a twin or an outdated version is stored whole)."""
        self.root = self.folder / key
        if self.folder.is_dir():
            for other in self.folder.iterdir():
                if other.name != key:  # another command's: it will not be resumed by this one
                    shutil.rmtree(other, ignore_errors=True) if other.is_dir() else other.unlink(missing_ok=True)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CascadeError(f"cannot keep the run's checkpoint in {self.folder}: {exc.strerror or exc}; choose "
                               "an output folder whose parent is writable (--out)") from None
        self.reused = 0
        self.saved = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.root)!r})"

    def load(self, variant: str, attempt: int, instance: int) -> tuple[int, dict[str, Record]] | None:
        """(episode pick, records) of a completed instance, or None (never run, or a file that is not ours)."""
        try:
            data = json.loads(self._path(variant, attempt, instance).read_text(encoding="utf-8"))
            found = data["pick"], {step: decode(rec, self.passages) for step, rec in data["records"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        with self._lock:
            self.reused += 1
        return found

    def save(self, variant: str, attempt: int, instance: int, pick: int, records: dict[str, Record]) -> None:
        path = self._path(variant, attempt, instance)
        try:
            write_text(path, json.dumps({"pick": pick, "records": {step: encode(r, self.passages)
                                                                   for step, r in records.items()}},
                                        ensure_ascii=False))  # insertion order kept: records come back as they were
        except OSError as exc:
            raise CascadeError(f"cannot write the checkpoint file {path}: {exc.strerror or exc}") from None
        with self._lock:
            self.saved += 1

    def _path(self, variant: str, attempt: int, instance: int) -> Path:
        return self.root / hashlib.sha256(variant.encode("utf-8")).hexdigest()[:12] / str(attempt) / f"{instance}.json"


def encode(record: Record, known: Mapping[str, Passage]) -> dict:
    """A record as JSON; a passage of `known` by its id alone (a fifth of the time of writing them whole)."""
    if isinstance(record, Retrieved):
        return {"kind": "retrieved", "fault": record.fault, "applied": record.applied, "correct": record.correct,
                "passages": [p.id if known.get(p.id) == p else
                             {"id": p.id, "text": p.text, "topic": p.topic, "facts": dict(p.facts)}
                             for p in record.passages]}
    if isinstance(record, Decided):
        return {"kind": "decided", "answer": dict(record.answer), "decision": dict(record.decision),
                "invalid": record.invalid}
    if isinstance(record, Reviewed):
        return {"kind": "reviewed", "caught": dict(record.caught), "false_alarm": record.false_alarm}
    if isinstance(record, Acted):
        return {"kind": "acted", "action": dict(record.action), "escalated": record.escalated}
    raise TypeError(f"no checkpoint encoding for {type(record).__name__}")


def decode(data: dict, known: Mapping[str, Passage]) -> Record:
    """The record `encode` wrote (KeyError: a passage id `known` does not hold, so not this run's)."""
    kind = data["kind"]
    if kind == "retrieved":
        passages = tuple(known[p] if isinstance(p, str) else
                         Passage(p["id"], p["text"], p["topic"], MappingProxyType(dict(p["facts"])))
                         for p in data["passages"])
        return Retrieved(passages, data["fault"], bool(data["applied"]), bool(data["correct"]))
    if kind == "decided":
        return Decided(dict(data["answer"]), dict(data["decision"]), data["invalid"])
    if kind == "reviewed":
        return Reviewed(dict(data["caught"]), bool(data["false_alarm"]))
    if kind == "acted":
        return Acted(dict(data["action"]), bool(data["escalated"]))
    raise ValueError(f"unknown record kind {kind!r}")
