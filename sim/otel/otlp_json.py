"""Spans <-> OTLP JSON (the OTLP/HTTP JSON encoding, as collectors' file exporters and Phoenix read it).

Encoding goes through the OpenTelemetry SDK's own protobuf encoder (`encode_spans`), then the protobuf JSON
mapping; reading parses into the same protobuf message (`ExportTraceServiceRequest`), so a file is checked
against the OTLP shape by opentelemetry-proto itself. The one difference from the plain protobuf JSON mapping,
per the OTLP specification: trace and span ids are hex strings, not base64.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace import ReadableSpan

from sim.core import limits
from sim.core.errors import CascadeError

_ID_KEYS = ("traceId", "spanId", "parentSpanId")
_SNAKE = {"traceId": "trace_id", "spanId": "span_id", "parentSpanId": "parent_span_id"}


def to_otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """The OTLP JSON document (`{"resourceSpans": [...]}`) of `spans`."""
    doc = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for span in _spans(doc):
        for key in _ID_KEYS:
            if key in span:
                span[key] = base64.b64decode(span[key]).hex()
        for link in span.get("links", []):
            for key in _ID_KEYS:
                if key in link:
                    link[key] = base64.b64decode(link[key]).hex()
    return doc


def read_otlp_json(file: Path) -> list[ExportTraceServiceRequest]:
    """The requests in an OTLP JSON file: one document, or one per line (a collector's file exporter writes
    JSON lines), or Phoenix's span export (`GET /v1/projects/NAME/spans/otlpv1`: `{"data": [span, ...]}`,
    protobuf field names). A CascadeError names the file, the line and the span path when the shape is wrong."""
    return parse_documents(file, read_json_documents(file))


def read_json_documents(file: Path) -> list[tuple[int, Any]]:
    """The JSON documents of a trace file, with their line: the whole file as one, else one per line."""
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise CascadeError(f"{file}: cannot read ({exc.strerror or exc})") from None
    if size > limits.MAX_TRACE_FILE_BYTES:
        raise CascadeError(f"{file}: {size:,} bytes; at most {limits.MAX_TRACE_FILE_BYTES:,} are read: split it")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CascadeError(f"{file}: not UTF-8 text ({exc})") from None
    except OSError as exc:
        raise CascadeError(f"{file}: cannot read ({exc.strerror or exc})") from None
    try:
        docs = [(1, json.loads(text))]
    except ValueError:
        docs = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    docs.append((n, json.loads(line)))
                except ValueError as exc:
                    raise CascadeError(f"{file}:{n}: not JSON ({exc.msg} at column {exc.colno}); a trace "
                                       "file is one document or one document per line") from None
    if not docs:
        raise CascadeError(f"{file}: empty; give an OTLP JSON file ({{\"resourceSpans\": [...]}}) or a Langfuse "
                           "export")
    return docs


def parse_documents(file: Path, docs: list[tuple[int, Any]]) -> list[ExportTraceServiceRequest]:
    """OTLP requests from the documents `read_json_documents` returned."""
    return [_parse(file, line, doc, len(docs) > 1) for line, doc in docs]


def _parse(file: Path, line: int, doc: Any, lines: bool) -> ExportTraceServiceRequest:
    where = f"{file}:{line}" if lines else str(file)
    if isinstance(doc, dict) and isinstance(doc.get("data"), list) and "resourceSpans" not in doc:
        doc = {"resourceSpans": [{"scopeSpans": [{"spans": doc["data"]}]}]}  # Phoenix's otlpv1 span export
    if not isinstance(doc, dict) or "resourceSpans" not in doc:
        raise CascadeError(f"{where}: not an OTLP JSON trace document: needs a top-level object with "
                           "\"resourceSpans\"")
    for path, span in _spans_with_paths(doc):
        for key in _ID_KEYS:
            if key not in span and _SNAKE[key] in span:
                span[key] = span.pop(_SNAKE[key])
            value = span.get(key)
            if value in (None, "") and key == "parentSpanId":
                span.pop(key, None)
                continue
            size = 16 if key == "traceId" else 8
            try:
                raw = bytes.fromhex(value) if isinstance(value, str) else None
            except ValueError:
                raw = None
            if raw is None or len(raw) != size:
                raise CascadeError(f"{where}: {path} (span {span.get('name')!r}): {key} {value!r} is not "
                                   f"{2 * size} hex digits")
            span[key] = base64.b64encode(raw).decode()
    try:
        return json_format.ParseDict(doc, ExportTraceServiceRequest())
    except json_format.ParseError as exc:
        for path, span in _spans_with_paths(doc):  # name the span when one is at fault
            try:
                json_format.ParseDict(span, Span())
            except json_format.ParseError as span_exc:
                raise CascadeError(f"{where}: {path} (span {span.get('name')!r}): not an OTLP span: "
                                   f"{_last(span_exc)}") from None
        raise CascadeError(f"{where}: not OTLP JSON: {exc}") from None


def _last(exc: Exception) -> str:
    """The innermost part of protobuf's nested "Failed to parse X field: ..." message."""
    return str(exc).split("Failed to parse ")[-1]


def _spans(doc: dict) -> Iterator[dict]:
    for _, span in _spans_with_paths(doc):
        yield span


def _spans_with_paths(doc: dict) -> Iterator[tuple[str, dict]]:
    """Each span object with its path (resourceSpans[i].scopeSpans[j].spans[k]); wrong containers are left for
    the protobuf parser to name."""
    for i, rs in enumerate(doc.get("resourceSpans") or []):
        for j, ss in enumerate((rs.get("scopeSpans") if isinstance(rs, dict) else None) or []):
            spans = (ss.get("spans") if isinstance(ss, dict) else None) or []
            for k, span in enumerate(spans if isinstance(spans, list) else []):
                if isinstance(span, dict):
                    yield f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]", span


def hex_id(raw: bytes) -> str:
    """A protobuf id (bytes) as OTLP JSON writes it."""
    return binascii.hexlify(raw).decode()
