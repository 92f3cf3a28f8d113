"""OTLP/JSON: an ``ExportTraceServiceRequest`` (``{"resourceSpans": [...]}``; Tempo's ``{"batches": [...]}``
is the same list), in a ``.json`` file or one request per line (the collector's file exporter).

``{"resourceSpans": [{resource, scopeSpans (older: instrumentationLibrarySpans): [{spans}]}]}``;
ids are the hex strings as written (never through protobuf's JSON parser), attributes KeyValue
lists of AnyValue, times ``startTimeUnixNano`` / ``endTimeUnixNano`` (decimal strings; anything
else is an error naming the span). Sources: the OTLP/JSON encoding and ``trace.proto``.
"""

from __future__ import annotations

from typing import Any

from attribution.parse.common import describe, iso_time, pointer
from attribution.parse.otel.spans import Collector, _attrs, _err, _id, _list, _ns, _obj, _Span

SHAPE = "OTLP/JSON (resourceSpans)"


def is_request(x: dict) -> bool:
    """Whether ``x`` is an OTLP export request (or Tempo's ``batches`` form of one)."""
    if isinstance(x.get("resourceSpans"), list):
        return True
    b = x.get("batches")
    return isinstance(b, list) and bool(b) and all(
        isinstance(r, dict) and ("scopeSpans" in r or "instrumentationLibrarySpans" in r) for r in b)


def collect(c: Collector, req: dict, base: tuple, line: int | None) -> None:
    key = "resourceSpans" if "resourceSpans" in req else "batches"
    where = f"line {line}, " if line else ""
    for r, rs in enumerate(_list(req[key], c.source, where + pointer(*base, key))):
        rs = _obj(rs, c.source, where + pointer(*base, key, r), "a ResourceSpans object")
        resource = _obj(rs.get("resource") or {}, c.source, where + pointer(*base, key, r, "resource"), "a resource object")
        res = _attrs(resource.get("attributes"), c.source, where + pointer(*base, key, r, "resource"))
        service = res.get("service.name")
        scope_key = "scopeSpans" if "scopeSpans" in rs else "instrumentationLibrarySpans"
        for s, ss in enumerate(_list(rs.get(scope_key, []), c.source, where + pointer(*base, key, r, scope_key))):
            ss = _obj(ss, c.source, where + pointer(*base, key, r, scope_key, s), "a ScopeSpans object")
            for k, sp in enumerate(_list(ss.get("spans", []), c.source,
                                         where + pointer(*base, key, r, scope_key, s, "spans"))):
                ptr = pointer(*base, key, r, scope_key, s, "spans", k)
                c.add(_span(c, sp, ptr, line, service))


def _time(sp: dict, key: str, c: Collector, rec: str) -> int | None:
    """A ``*TimeUnixNano`` value: a decimal string or an integer (OTLP/JSON writes int64 as a string)."""
    value = sp.get(key)
    if value is None:
        return None
    if type(value) is int or (isinstance(value, str) and value.strip().isdigit()):
        return _ns(value)
    raise _err(c.source, rec, f"'{key}' as nanoseconds since the epoch (a decimal string)", repr(value)[:60])


def _span(c: Collector, sp: Any, ptr: str, line: int | None, service: Any) -> _Span:
    rec = f"line {line}, span {ptr}" if line else f"span {ptr}"
    if not isinstance(sp, dict):
        raise _err(c.source, rec, "a span object", describe(sp))
    sid = _id(sp.get("spanId"), c.source, rec, "span id ('spanId')", required=True)
    rec = f"span {sid}" + (f" (line {line})" if line else f" ({ptr})")
    events = []
    for e, ev in enumerate(_list(sp.get("events") or [], c.source, rec + ", events")):
        if not isinstance(ev, dict):
            raise _err(c.source, rec, "span events as objects {name, attributes}", describe(ev))
        events.append((str(ev.get("name", "")), _attrs(ev.get("attributes"), c.source, f"{rec}, event {e}")))
    status = _obj(sp.get("status") or {}, c.source, rec, "'status' to be an object {code, message}")
    error = (status.get("message") or "error") if status.get("code") in (2, "STATUS_CODE_ERROR") else None
    start = _time(sp, "startTimeUnixNano", c, rec)
    return _Span(
        id=sid, parent=_id(sp.get("parentSpanId"), c.source, rec, "parent span id", required=False),
        trace=_id(sp.get("traceId"), c.source, rec, "trace id ('traceId')", required=True),
        name=str(sp.get("name", "")), attrs=_attrs(sp.get("attributes"), c.source, rec), events=events,
        start=start, end=_time(sp, "endTimeUnixNano", c, rec), pointer=ptr, line=line, order=0,
        service=service if isinstance(service, str) and not service.startswith("unknown_service") else None,
        error=error, timestamp=iso_time(start),
    )
