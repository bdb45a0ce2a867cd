"""`cascade export`: a run folder's spans to an OTLP JSON file, or to an OTLP/HTTP endpoint (Phoenix, Langfuse,
an OpenTelemetry collector) through the OpenTelemetry SDK's exporter (protobuf, its retries with backoff and its
timeout). Export only reads the run folder: a failed export leaves it as it was.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from sim.core.atomic import write_text
from sim.core.errors import CascadeError
from sim.otel.otlp_json import to_otlp_json

BATCH = 512
"""Spans per request: the SDK's BatchSpanProcessor default (max_export_batch_size)."""


def write_otlp_json(spans: Sequence[ReadableSpan], file: str | Path) -> Path:
    """Write `spans` as one OTLP JSON document, atomically (a failed write leaves no partial file)."""
    target = Path(file)
    try:
        write_text(target, json.dumps(to_otlp_json(spans), separators=(",", ":")) + "\n")
    except OSError as exc:
        raise CascadeError(f"cannot write {target}: {exc.strerror or exc}; choose another path with --otlp") from None
    return target


def check_endpoint(endpoint: str) -> str:
    """An OTLP/HTTP traces URL (http(s)://HOST[:PORT]/PATH), else a CascadeError saying what is expected."""
    parts = urlsplit(endpoint)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise CascadeError(f"--endpoint {endpoint!r}: give an OTLP/HTTP traces URL, e.g. "
                           "http://127.0.0.1:6006/v1/traces (Phoenix) or http://HOST:4318/v1/traces (a collector)")
    if not parts.path or parts.path == "/":
        raise CascadeError(f"--endpoint {endpoint!r}: no path; OTLP/HTTP receives traces at /v1/traces "
                           f"(e.g. {endpoint.rstrip('/')}/v1/traces)")
    return endpoint


def parse_headers(pairs: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` options as headers (values are never printed: they are usually secrets)."""
    headers = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CascadeError(f"--header {key.strip() or pair[:20]!r}...: give KEY=VALUE, e.g. "
                               "--header 'authorization=Bearer ...'")
        headers[key.strip()] = value.strip()
    return headers


def send(spans: Sequence[ReadableSpan], endpoint: str, headers: Mapping[str, str] | None = None,
         timeout: float = 10.0) -> int:
    """Send `spans` over OTLP/HTTP (protobuf) in batches; returns how many were accepted. Headers come from
    `headers` and OTEL_EXPORTER_OTLP_HEADERS (read by the SDK). An endpoint that is down, too slow (`timeout`
    seconds per batch, retries included) or refuses a batch is a CascadeError saying how far it got."""
    exporter = OTLPSpanExporter(endpoint=check_endpoint(endpoint), headers=dict(headers or {}), timeout=timeout)
    sent = 0
    try:
        for first in range(0, len(spans), BATCH):
            batch = spans[first:first + BATCH]
            with _exporter_log() as log:
                result = exporter.export(batch)
            if result is not SpanExportResult.SUCCESS:
                reason = "; ".join(log) or "no reason given"
                raise CascadeError(f"--endpoint {endpoint}: the export failed after {sent:,} of {len(spans):,} "
                                   f"spans were accepted ({reason}). Is the server running and is this its "
                                   "OTLP/HTTP traces URL? A slow server needs a larger --timeout. The run folder "
                                   "is unchanged.")
            sent += len(batch)
    finally:
        exporter.shutdown()
    return sent


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _exporter_log():
    """The SDK exporter reports why an export failed only in its log: collect it for our message (and keep it
    off the console, where it would print beside our own)."""
    logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    handler, propagate = _Collect(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
