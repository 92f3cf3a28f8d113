"""TRAIL-style span exports (Patronus AI's TRAIL benchmark: GAIA and SWE-bench agent traces).

``{"trace_id": ..., "spans": [span, ...]}`` where each span is a row of the OpenTelemetry
ClickHouse schema in snake case: ``{timestamp, trace_id, span_id, parent_span_id, trace_state,
span_name, span_kind, service_name, resource_attributes, scope_name, scope_version,
span_attributes, duration, status_code, status_message, events, links, logs, child_spans}``,
children nested under ``child_spans``; ``span_attributes`` hold OpenInference attributes
(flattened ``llm.input_messages.N.message.*``, ``openinference.span.kind``, ``input.value`` ...,
as smolagents' instrumentor writes them). ``timestamp`` is the start (ISO 8601); ``duration``
nanoseconds or an ISO 8601 duration (``PT1.25S``).
Source: the TRAIL dataset card and paper (Deshpande et al., 2025); the OTel ClickHouse exporter's
table schema; the OpenInference semantic conventions.
"""

from __future__ import annotations

import re
from typing import Any

from attribution.parse.common import describe, iso_time, pointer
from attribution.parse.otel.spans import Collector, _attrs, _err, _id, _list, _ns, _Span

SHAPE = "TRAIL span export (spans[].child_spans, span_name, span_attributes)"


def _is_span(s: Any) -> bool:
    return isinstance(s, dict) and "span_id" in s and ("span_attributes" in s or "child_spans" in s or "span_name" in s)


def is_export(x: dict) -> bool:
    """A TRAIL trace object, or one TRAIL span (a JSONL line)."""
    spans = x.get("spans")
    if isinstance(spans, list) and spans and all(_is_span(s) for s in spans):
        return True
    return _is_span(x)


def _duration_ns(value: Any) -> int | None:
    """Nanoseconds from an integer, a digit string or an ISO 8601 duration (``PT1M2.5S``)."""
    if type(value) is int:
        return value
    if isinstance(value, str):
        if value.strip().isdigit():
            return int(value)
        m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", value.strip())
        if m and any(m.groups()):
            d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            return int((((d * 24 + h) * 60 + mi) * 60 + s) * 1e9)
    return None


def collect(c: Collector, item: dict, base: tuple, line: int | None) -> None:
    if isinstance(item.get("spans"), list):
        for k, sp in enumerate(item["spans"]):
            _collect_span(c, sp, pointer(*base, "spans", k), line, None, item.get("trace_id"))
    else:
        _collect_span(c, item, pointer(*base), line, None, None)


def _collect_span(c: Collector, sp: Any, ptr: str, line: int | None, parent: str | None, trace: Any) -> None:
    rec = f"span {ptr or '/'}" + (f" (line {line})" if line else "")
    if not isinstance(sp, dict):
        raise _err(c.source, rec, "a TRAIL span object", describe(sp))
    sid = _id(sp.get("span_id"), c.source, rec, "span id ('span_id')", required=True)
    rec = f"span {sid}" + (f" (line {line})" if line else f" ({ptr or '/'})")
    tid = sp.get("trace_id") or trace
    pid = _id(sp.get("parent_span_id"), c.source, rec, "parent span id ('parent_span_id')", required=False) or parent
    attrs = _attrs(sp.get("span_attributes"), c.source, rec)
    events = []
    for e, ev in enumerate(_list(sp.get("events") or [], c.source, rec + ", events")):
        if not isinstance(ev, dict):
            raise _err(c.source, rec, "span events as objects {name, attributes}", describe(ev))
        events.append((str(ev.get("name", "")), _attrs(ev.get("attributes"), c.source, f"{rec}, event {e}")))
    stamp = sp.get("timestamp")
    start = _ns(stamp)
    if stamp not in (None, "") and start is None:
        raise _err(c.source, rec, "'timestamp' as a time (ISO 8601 or epoch nanoseconds)", repr(stamp)[:60])
    dur = _duration_ns(sp.get("duration"))
    status = str(sp.get("status_code") or "").upper()
    service = sp.get("service_name")
    c.add(_Span(
        id=sid, parent=pid, trace=_id(tid, c.source, rec, "trace id ('trace_id')", required=False) or "",
        name=str(sp.get("span_name") or ""), attrs=attrs, events=events, start=start,
        end=start + dur if start is not None and dur is not None else None, pointer=ptr, line=line, order=0,
        store_kind=None, service=service if isinstance(service, str) and service and not service.startswith("unknown_service") else None,
        error=(sp.get("status_message") or "error") if status in ("ERROR", "STATUS_CODE_ERROR") else None,
        timestamp=iso_time(stamp) if isinstance(stamp, str) else iso_time(start),
    ))
    kids = sp.get("child_spans")
    if kids is not None:
        for k, child in enumerate(_list(kids, c.source, f"span {sid}, {ptr}/child_spans")):
            _collect_span(c, child, f"{ptr}/child_spans/{k}", line, sid, tid)
