"""Langfuse traces and observations.

``{id, name, input, output, observations: [{id, traceId, type, name, parentObservationId,
startTime, input, output, metadata, ...}]}`` (``GET /api/public/traces/{id}``, the UI's trace
export), or observation lists (``GET /api/public/observations`` pages ``{"data": [...]}``, one
observation per JSONL line); observation types GENERATION (an LLM call), AGENT, TOOL, SPAN,
EVENT, CHAIN, RETRIEVER, ...

Most integrations (OpenInference's OpenAI Agents / Agno / Google ADK / LangGraph instrumentors,
Microsoft Agent Framework, Claude Agent SDK) reach Langfuse over OpenTelemetry: an observation's
``input``/``output`` is then a JSON *string* holding the provider's request or response
(chat.completion, Responses API, Gemini ``candidates``, message lists, LangChain messages), and
``metadata.attributes`` keeps the span's OpenInference / GenAI attributes. The string is decoded
and the agent's own words and tool calls taken out of the envelope
(:func:`~attribution.parse.otel.messages.envelope_messages`); the attributes, when present, are
read as any span's. Ids keep Langfuse's form; the OTel-based SDKs' ids are OpenTelemetry's
(16 / 32 hex characters), which ``--emit phoenix`` / ``otel`` accept.
Source: Langfuse's public API (``TraceWithFullDetails``, ``Observation``) and its OTel ingestion
(``langfuse.observation.*`` attributes).
"""

from __future__ import annotations

import json
from typing import Any

from attribution.parse.common import describe, iso_time, pointer
from attribution.parse.otel.spans import _MISSING, Collector, _err, _flat, _id, _list, _ns, _Span

SHAPE = "Langfuse trace / observations (observations, parentObservationId)"


def is_observation(x: dict) -> bool:
    return "parentObservationId" in x and isinstance(x.get("type"), str) and "id" in x


def is_page(x: dict) -> bool:
    """A page of ``GET /api/public/observations``: ``{"data": [observation, ...], "meta": {...}}``."""
    data = x.get("data")
    return isinstance(data, list) and bool(data) and all(isinstance(o, dict) and is_observation(o) for o in data)


def trace_confidence(x: dict) -> float:
    """1.0 for a trace whose observations carry ``parentObservationId``, 0.8 for other observation lists."""
    obs = [o for o in x["observations"] if isinstance(o, dict)]
    return 1.0 if any("parentObservationId" in o for o in obs) else 0.8 if obs else 0.0


def collect_trace(c: Collector, tr: dict, base: tuple, line: int | None) -> None:
    tid = _id(tr.get("id"), c.source, pointer(*base) or "trace", "trace id ('id')", required=False)
    for k, ob in enumerate(_list(tr["observations"], c.source, pointer(*base, "observations"))):
        collect_observation(c, ob, pointer(*base, "observations", k), line, trace=tid)
    if tid is not None:
        if tr.get("input") is not None:
            c.roots_input[tid] = tr["input"]
        if isinstance(tr.get("name"), str):
            c.names[tid] = tr["name"]


def collect_page(c: Collector, item: dict, base: tuple, line: int | None) -> None:
    for k, ob in enumerate(item["data"]):
        collect_observation(c, ob, pointer(*base, "data", k), line)


def _metadata_attributes(meta: Any) -> dict[str, Any]:
    """The span attributes Langfuse keeps from OpenTelemetry: ``metadata.attributes`` (an object, or
    a JSON string of one), flattened; resource attributes are left out."""
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except (json.JSONDecodeError, RecursionError):
            return {}
    if not isinstance(meta, dict):
        return {}
    attrs = meta.get("attributes")
    if isinstance(attrs, str):
        try:
            attrs = json.loads(attrs)
        except (json.JSONDecodeError, RecursionError):
            return {}
    return _flat(attrs) if isinstance(attrs, dict) else {}


def collect_observation(c: Collector, ob: Any, ptr: str, line: int | None, trace: str | None = None) -> None:
    rec = f"observation {ptr}" + (f" (line {line})" if line else "")
    if not isinstance(ob, dict):
        raise _err(c.source, rec, "an observation object", describe(ob))
    oid = _id(ob.get("id"), c.source, rec, "observation id ('id')", required=True)
    rec = f"observation {oid}" + (f" (line {line})" if line else f" ({ptr})")
    kind = ob.get("type")
    if not isinstance(kind, str):
        raise _err(c.source, rec, "an observation 'type' (GENERATION, SPAN, AGENT, TOOL, ...)", repr(kind))
    meta = ob.get("metadata")
    attrs = _metadata_attributes(meta)
    if isinstance(meta, dict) and isinstance(meta.get("langgraph_node"), str):  # Langfuse's LangChain callback
        attrs.setdefault("metadata", meta)
    start = _ns(ob.get("startTime"))
    c.add(_Span(
        id=oid, parent=_id(ob.get("parentObservationId"), c.source, rec, "parent span id", required=False),
        trace=_id(ob.get("traceId"), c.source, rec, "trace id", required=False) or trace or "",
        name=str(ob.get("name") or ""), attrs=attrs, events=[], start=start, end=_ns(ob.get("endTime")),
        pointer=ptr, line=line, order=0, id_type="observation", store_kind=kind.upper(),
        error=(ob.get("statusMessage") or "error") if ob.get("level") == "ERROR" else None,
        input=ob.get("input", _MISSING), output=ob.get("output", _MISSING),
        timestamp=iso_time(ob.get("startTime")),
    ))
