"""The OpenTelemetry SDK's console exporter: ``ConsoleSpanExporter`` prints each span's ``to_json()``,
pretty-printed span objects one after another (not one per line, not a list).

``{name, context: {trace_id: "0x…", span_id: "0x…", trace_state}, kind: "SpanKind.INTERNAL",
parent_id: "0x…" | null, start_time, end_time (ISO 8601), status: {status_code, description},
attributes, events: [{name, timestamp, attributes}], links, resource: {attributes, schema_url}}``.
:func:`attribution.parse.read_json` splits the stream into values; each span is then read as a
flat span (:mod:`.phoenix`), the service from ``resource.attributes``. Ids keep their ``0x``
as written (origins are verbatim); ``--emit`` writes them in each target's form.
Source: opentelemetry-python ``ReadableSpan.to_json`` and ``ConsoleSpanExporter``.
"""

from __future__ import annotations

SHAPE = "OpenTelemetry SDK console-exporter output (span objects one after another)"


def is_span(x: dict) -> bool:
    """Whether ``x`` is one span as the SDK's ``to_json()`` prints it (``0x`` ids, ``SpanKind.*``)."""
    ctx = x.get("context")
    return (isinstance(ctx, dict) and str(ctx.get("span_id", "")).startswith("0x")
            and str(x.get("kind", "")).startswith("SpanKind."))
