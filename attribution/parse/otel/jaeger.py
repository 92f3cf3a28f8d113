"""Jaeger JSON: ``{"data": [{traceID, spans: [{spanID, operationName, references, startTime, tags, logs}],
processes}]}`` (the query API's and the UI's "Download JSON"), or one such trace object.

``startTime`` is in microseconds, ``duration`` in microseconds; the parent is the first
``CHILD_OF`` reference; ``tags`` are ``{key, type, value}``; the service is the span's process.
Source: Jaeger's JSON model (``model/json``).
"""

from __future__ import annotations

from attribution.parse.common import describe, iso_time, pointer
from attribution.parse.otel.spans import Collector, _err, _flat, _id, _list, _ns, _obj, _Span

SHAPE = "Jaeger JSON (data[].traceID, spans, processes)"


def is_export(x: dict) -> bool:
    """Whether ``x`` is a Jaeger export (``{"data": [trace, ...]}``) or one Jaeger trace."""
    data = x.get("data")
    if isinstance(data, list) and data and all(isinstance(t, dict) and "traceID" in t and "spans" in t for t in data):
        return True
    return "traceID" in x and isinstance(x.get("spans"), list)


def collect_export(c: Collector, item: dict, base: tuple, line: int | None) -> None:
    if isinstance(item.get("data"), list):
        for t, tr in enumerate(item["data"]):
            collect(c, tr, (*base, "data", t), line)
    else:
        collect(c, item, base, line)


def collect(c: Collector, tr: dict, base: tuple, line: int | None) -> None:
    tr = _obj(tr, c.source, (f"line {line}, " if line else "") + pointer(*base), "a Jaeger trace object")
    procs = tr.get("processes") or {}
    for k, sp in enumerate(_list(tr["spans"], c.source, pointer(*base, "spans"))):
        ptr = pointer(*base, "spans", k)
        rec = f"span {ptr}" + (f" (line {line})" if line else "")
        if not isinstance(sp, dict):
            raise _err(c.source, rec, "a span object", describe(sp))
        sid = _id(sp.get("spanID"), c.source, rec, "span id ('spanID')", required=True)
        rec = f"span {sid}" + (f" (line {line})" if line else f" ({ptr})")
        refs = [r for r in _list(sp.get("references") or [], c.source, rec + ", references") if isinstance(r, dict) and r.get("refType") == "CHILD_OF"]
        parent = _id(refs[0].get("spanID"), c.source, rec, "parent span id", required=False) if refs else None
        tags = sp.get("tags") or []
        if not isinstance(tags, list):
            raise _err(c.source, rec, "'tags' to be a list of {key, type, value}", describe(tags))
        attrs = _flat({str(t["key"]): t.get("value") for t in tags if isinstance(t, dict) and "key" in t})
        logs = [lg for lg in _list(sp.get("logs") or [], c.source, rec + ", logs") if isinstance(lg, dict)]
        events = [(str(f.get("event", "")), _flat(f)) for f in
                  ({str(t["key"]): t.get("value") for t in _list(lg.get("fields") or [], c.source, rec + ", logs")
                    if isinstance(t, dict) and "key" in t} for lg in logs)]
        start = _ns(sp.get("startTime"), 1000)
        duration = sp.get("duration") if type(sp.get("duration")) is int else None
        pid = sp.get("processID")
        proc = procs.get(pid) if isinstance(procs, dict) and isinstance(pid, str) else None
        c.add(_Span(
            id=sid, parent=parent, trace=str(sp.get("traceID") or tr.get("traceID") or ""),
            name=str(sp.get("operationName", "")), attrs=attrs, events=events, start=start,
            end=start + int(duration) * 1000 if start and isinstance(duration, int) else None,
            pointer=ptr, line=line, order=0, service=proc.get("serviceName") if isinstance(proc, dict) else None,
            error="error" if attrs.get("error") is True else None, timestamp=iso_time(start),
        ))
