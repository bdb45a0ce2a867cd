"""Langfuse's own export formats, read as spans for `cascade import`.

Langfuse stores each OpenTelemetry span it ingests as an *observation*: `id` (the span id), `traceId`,
`parentObservationId`, `name`, `type` (from `openinference.span.kind`: RETRIEVER, GENERATION for LLM, TOOL,
GUARDRAIL, CHAIN, AGENT, else SPAN), `startTime` (ISO 8601), `input` / `output` (from `input.value` /
`output.value`, parsed when they were JSON), and the span's attributes under `metadata.attributes`. Read here:
- a trace downloaded from the UI ("Download JSON": `trace-<id>.json`, an object with `observations`);
- a session downloaded from the UI (`session-<id>.json`, an object with `traces`, each with `observations`);
- an observations table exported as JSON (a list) or JSON lines (one observation per line), or a page of the
  Observations API (`{"data": [...]}`).

Each observation becomes a span with its attributes; `output` fills `output.value` (as JSON text when Langfuse
parsed it) where the attributes do not hold it. Langfuse may keep integer attributes as text: the integer
`cascadesim.*` attributes a `cascade export` wrote (instance, difficulty) are read back as integers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sim.core.errors import CascadeError
from sim.otel import conventions as c

_INTEGER_ATTRIBUTES = (c.INSTANCE, c.DIFFICULTY, c.SEED, c.N_FAILED_ACTIONS)


def is_langfuse(docs: list[tuple[int, Any]]) -> bool:
    """Whether the documents of a file are a Langfuse export (and not OTLP JSON)."""
    first = docs[0][1]
    if isinstance(first, dict) and "resourceSpans" not in first:
        if isinstance(first.get("observations"), list) or isinstance(first.get("traces"), list):
            return True
        if isinstance(first.get("data"), list):
            first = first["data"][0] if first["data"] else None
    elif isinstance(first, list):
        first = first[0] if first else None
    return isinstance(first, dict) and "traceId" in first and "startTime" in first and "spanId" not in first


def observations(file: str, docs: list[tuple[int, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each observation of the documents, with where it is in the file (for messages)."""
    lines = len(docs) > 1
    for line, doc in docs:
        at = f"{file}:{line}" if lines else file
        if isinstance(doc, dict) and isinstance(doc.get("traces"), list):
            for t, trace in enumerate(doc["traces"]):
                for k, obs in enumerate(_list(trace, "observations", f"{at}: traces[{t}]")):
                    yield f"{at}: traces[{t}].observations[{k}]", obs
        elif isinstance(doc, dict) and isinstance(doc.get("observations"), list):
            for k, obs in enumerate(doc["observations"]):
                yield f"{at}: observations[{k}]", obs
        elif isinstance(doc, dict) and isinstance(doc.get("data"), list):
            for k, obs in enumerate(doc["data"]):
                yield f"{at}: data[{k}]", obs
        elif isinstance(doc, list):
            for k, obs in enumerate(doc):
                yield f"{at}: [{k}]", obs
        else:
            yield at, doc  # one observation per line


def span_fields(where: str, obs: Any) -> dict[str, Any]:
    """name, trace_id, span_id, parent, start (ns) and attributes of one observation; a CascadeError names it."""
    if not isinstance(obs, dict):
        raise CascadeError(f"{where}: not a Langfuse observation (an object with id, traceId, name, startTime)")
    name = obs.get("name")
    label = f"{where} (observation {name!r}, id {obs.get('id')!r})"
    for key in ("id", "traceId", "name", "startTime"):
        if not isinstance(obs.get(key), str) or not obs[key]:
            raise CascadeError(f"{label}: needs {key} as text; spans map to steps by name")
    parent = obs.get("parentObservationId")
    if parent is not None and not isinstance(parent, str):
        raise CascadeError(f"{label}: parentObservationId {parent!r} is not an id")
    try:
        start = datetime.fromisoformat(obs["startTime"])
    except ValueError:
        raise CascadeError(f"{label}: startTime {obs['startTime']!r} is not an ISO 8601 time") from None
    if start.tzinfo is None:
        raise CascadeError(f"{label}: startTime {obs['startTime']!r} has no time zone (Langfuse writes Z)")
    metadata = obs.get("metadata")
    attributes = metadata.get("attributes") if isinstance(metadata, dict) else None
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        raise CascadeError(f"{label}: metadata.attributes is not an object of span attributes")
    attributes = {k: v for k, v in attributes.items() if isinstance(v, str | bool | int | float)}
    for key in _INTEGER_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            attributes[key] = int(value)
    for field, key in (("output", c.OUTPUT_VALUE), ("input", c.INPUT_VALUE)):
        value = obs.get(field)
        if key not in attributes and value is not None:
            attributes[key] = value if isinstance(value, str) else json.dumps(value)
    seconds = start.timestamp()
    return {"name": name, "trace_id": obs["traceId"].lower(), "span_id": obs["id"].lower(),
            "parent": (parent or "").lower(), "start": int(round(seconds * 1e6)) * 1000,
            "attributes": attributes, "where": label}


def _list(doc: Any, key: str, where: str) -> list:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, list):
        raise CascadeError(f"{where}: needs {key} as a list (a Langfuse trace download)")
    return value
