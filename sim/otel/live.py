"""Spans sent while a run goes (`cascade run --engine agent --otlp-endpoint URL`), for users who watch a run in
Phoenix or Langfuse: each instance's trace (the same spans, ids and synthetic clock `cascade export` gives) is
handed to the OpenTelemetry SDK's BatchSpanProcessor as soon as the instance is done.

A live export never stops or changes the run: the processor sends in the background, and spans it could not
deliver are counted in the summary (`agent.live_spans`); `cascade export` can send the whole run afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from sim.otel.export import check_endpoint
from sim.otel.spans import SpanBuilder

TIMEOUT = 5.0
"""Seconds per request (retries included): a dead endpoint costs the run at most this per batch at the end."""


class _Counting(SpanExporter):
    """The SDK exporter, counting what it delivered and what it could not."""

    def __init__(self, inner: SpanExporter):
        self.inner, self.sent, self.failed = inner, 0, 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self.sent += len(spans)
        else:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class LiveSpans:
    """Send each finished instance's spans to `endpoint` (OTLP/HTTP; headers from OTEL_EXPORTER_OTLP_HEADERS)."""

    def __init__(self, endpoint: str, builder: SpanBuilder):
        self.endpoint, self.builder = check_endpoint(endpoint), builder
        self._exporter = _Counting(OTLPSpanExporter(endpoint=endpoint, timeout=TIMEOUT))
        self._processor = BatchSpanProcessor(self._exporter)

    def emit(self, row, kept: dict[str, dict]) -> None:
        """Queue one instance (its instances.parquet row, its agent_trace rows by step)."""
        for span in self.builder.trace(row, kept):
            self._processor.on_end(span)

    def close(self) -> dict:
        """Flush and stop; what was delivered (for the summary)."""
        self._processor.shutdown()
        return {"endpoint": self.endpoint, "spans_sent": self._exporter.sent,
                "spans_not_delivered": self._exporter.failed}
