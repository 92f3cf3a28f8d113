"""Flat span lists and span trees: Phoenix / Arize exports and generic span dumps.

A list of spans, ``{"spans": [...]}``, ``{"data": [...]}`` (Phoenix REST, ``GET /v1/projects/{id}/spans``)
or one span per JSONL line: ``{name, context: {trace_id, span_id}, parent_id, span_kind,
start_time, attributes, events}``; attributes nested (``{"llm": {"input_messages": [...]}}``) or
flattened (``"llm.input_messages.0.message.role"``), or spread as ``attributes.*`` columns (a spans
dataframe written as records). ``spanId``/``traceId``/``parentSpanId`` spellings are accepted too.
Span trees: the same span objects nested under ``children`` (Tempo/Jaeger-like UIs and SDK dumps).
The OpenTelemetry SDK's own span JSON (:mod:`.console`) is this shape too.
Source: Phoenix's REST span model; the OpenInference semantic conventions.
"""

from __future__ import annotations

from typing import Any

from attribution.parse.common import describe, iso_time, pointer
from attribution.parse.otel.spans import Collector, _attrs, _err, _flat, _id, _list, _ns, _pick, _Span

SHAPE = "span list / span tree (Phoenix, generic span dumps)"


def is_span(s: dict) -> bool:
    """Whether ``s`` looks like one span of an OTel span export (and not another SDK's span)."""
    if "span_data" in s or s.get("object") == "trace.span":  # OpenAI Agents SDK spans: another reader's
        return False
    ctx = s.get("context")
    return bool((isinstance(ctx, dict) and "span_id" in ctx) or "context.span_id" in s
                or any(k in s for k in ("spanId", "span_id", "spanID")))


def confidence(s: dict) -> float:
    attrs = s.get("attributes")
    flat = _flat(attrs) if isinstance(attrs, dict) else {}
    if "openinference.span.kind" in flat or "attributes.openinference.span.kind" in s:
        return 1.0
    return 0.8


def collect_list(c: Collector, item: dict, base: tuple, line: int | None) -> None:
    """``{"spans": [...]}`` or ``{"data": [...]}``: each span (and its ``children``)."""
    key = "spans" if isinstance(item.get("spans"), list) else "data"
    for k, sp in enumerate(item[key]):
        if not isinstance(sp, dict):
            raise _err(c.source, pointer(*base, key, k), "a span object", describe(sp))
        collect_span(c, sp, pointer(*base, key, k), line, trace=item.get("traceId", item.get("trace_id")))


def _time(sp: dict, keys: tuple[str, ...], c: Collector, rec: str, unit: int = 1) -> tuple[int | None, Any]:
    """(nanoseconds, the value as written) of the first of ``keys`` present; a value that is neither a
    number, a digit string nor an ISO 8601 time is an error naming the span."""
    raw = _pick(sp, *keys)
    if raw is None or raw == "":
        return None, None
    ns = _ns(raw, unit)
    if ns is None and not (isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw <= 0):
        key = next(k for k in keys if sp.get(k) is not None)
        raise _err(c.source, rec, f"'{key}' as a time (epoch nanoseconds or ISO 8601)", repr(raw)[:60])
    return ns, raw


def collect_span(c: Collector, sp: dict, ptr: str, line: int | None, parent: str | None = None,
                 trace: str | None = None, service: str | None = None) -> None:
    """One span (and, recursively, its ``children``)."""
    rec = f"span {ptr or '/'}" + (f" (line {line})" if line else "")
    ctx = sp.get("context") if isinstance(sp.get("context"), dict) else {}
    sid = _id(_pick(ctx, "span_id", "spanId") or _pick(sp, "context.span_id", "spanId", "span_id", "spanID"),
              c.source, rec, "span id (context.span_id / spanId)", required=True)
    rec = f"span {sid}" + (f" (line {line})" if line else f" ({ptr or '/'})")
    tid = _pick(ctx, "trace_id", "traceId") or _pick(sp, "context.trace_id", "traceId", "trace_id", "traceID") or trace
    pid = _pick(sp, "parent_id", "parentSpanId", "parent_span_id", "parentId", "parentSpanID")
    pid = _id(pid, c.source, rec, "parent span id", required=False) or parent
    raw = sp.get("attributes")
    attrs = _attrs(raw, c.source, rec) if raw is not None else {}
    attrs.update(_flat({k[len("attributes."):]: v for k, v in sp.items() if k.startswith("attributes.")}))
    events = []
    for e, ev in enumerate(_list(sp.get("events") or [], c.source, rec + ", events")):
        if not isinstance(ev, dict):
            raise _err(c.source, rec, "span events as objects {name, attributes}", describe(ev))
        events.append((str(ev.get("name", "")), _attrs(ev.get("attributes"), c.source, f"{rec}, event {e}")))
    start, _ = _time(sp, ("start_time", "startTimeUnixNano", "startTime", "start_time_unix_nano"), c, rec)
    end, _ = _time(sp, ("end_time", "endTimeUnixNano", "endTime"), c, rec)
    status_obj = sp.get("status") if isinstance(sp.get("status"), dict) else {}  # the SDK's {status_code, description}
    status = str(_pick(sp, "status_code", "statusCode") or _pick(status_obj, "status_code", "code") or "").upper()
    message = sp.get("status_message") or status_obj.get("description") or status_obj.get("message")
    resource = sp.get("resource") if isinstance(sp.get("resource"), dict) else {}
    res_attrs = resource.get("attributes") if isinstance(resource.get("attributes"), dict) else {}
    svc = res_attrs.get("service.name") or service
    c.add(_Span(
        id=sid, parent=pid, trace=_id(tid, c.source, rec, "trace id", required=False) or "",
        name=str(_pick(sp, "name", "operationName") or ""), attrs=attrs, events=events, start=start,
        end=end, pointer=ptr, line=line, order=0,
        store_kind=_pick(sp, "span_kind", "spanKind"),
        error=(message or "error") if status in ("ERROR", "STATUS_CODE_ERROR", "2") else None,
        service=svc if isinstance(svc, str) and not svc.startswith("unknown_service") else None,
        timestamp=iso_time(_pick(sp, "start_time", "startTime") or start),
    ))
    kids = sp.get("children")
    if kids is not None:
        for k, child in enumerate(_list(kids, c.source, f"span {sid}, {ptr}/children")):
            if not isinstance(child, dict):
                raise _err(c.source, rec, "child spans as objects", describe(child))
            collect_span(c, child, f"{ptr}/children/{k}", line, parent=sid, trace=tid, service=svc)
