"""OpenTelemetry traces of LLM agents: OTLP/JSON and the span exports of trace stores.

Shapes read (one file may hold several traces; one :class:`Run` per trace id, ``run_id`` = the
trace id as written):

OTLP/JSON
    ``{"resourceSpans": [{resource, scopeSpans (older: instrumentationLibrarySpans): [{spans}]}]}``
    (an ``ExportTraceServiceRequest``; Tempo's ``{"batches": [...]}`` is the same list), in a
    ``.json`` file or one request per line of a ``.jsonl`` file (the collector's file exporter;
    the spans of one trace may be spread over several lines). Ids are the hex strings as
    written (never through protobuf's JSON parser), attributes KeyValue lists of AnyValue,
    times ``startTimeUnixNano`` (decimal strings).
Flat span lists (Phoenix / Arize and generic span dumps)
    A list of spans, ``{"spans": [...]}``, ``{"data": [...]}`` (Phoenix REST) or one span per
    JSONL line: ``{name, context: {trace_id, span_id}, parent_id, span_kind, start_time,
    attributes, events}``; attributes nested (``{"llm": {"input_messages": [...]}}``) or
    flattened (``"llm.input_messages.0.message.role"``), or spread as ``attributes.*`` columns
    (a spans dataframe written as records). ``spanId``/``traceId``/``parentSpanId`` spellings
    are accepted too.
Span trees
    The same span objects nested under ``children`` (Tempo/Jaeger-like UIs and SDK dumps).
Jaeger JSON
    ``{"data": [{traceID, spans: [{spanID, operationName, references, startTime, tags, logs}],
    processes}]}``.
Langfuse traces
    ``{id, name, input, output, observations: [{id, traceId, type, name, parentObservationId,
    startTime, input, output, ...}]}`` (``GET /api/public/traces/{id}``), or observation lists
    (``GET /api/public/observations`` pages ``{"data": [...]}``); observation types GENERATION (an LLM call), AGENT, TOOL, SPAN, EVENT, CHAIN, ...

What each span means (attributes of both conventions are read: OpenInference and the OTel
GenAI semantic conventions, new and older forms):

=================================  ==========================================================
span                               steps
=================================  ==========================================================
LLM call: ``openinference.span.    its output (``llm.output_messages``, ``gen_ai.output.
kind`` LLM, ``gen_ai.operation.    messages``, ``gen_ai.choice`` events, ``gen_ai.completion.
name`` chat / text_completion /    N.*``, Langfuse ``output``) is one **action** of the agent
generate_content, Langfuse         that owns the span; tool calls in it are appended as text
GENERATION, ``traceloop``/legacy   (:func:`~attribution.parse.common.tool_call_text`). Its
``gen_ai.prompt.N`` spans; GenAI   input messages repeat the history: only user messages not
events may sit in an ``events``    seen before become **observations** (the task at the
JSON attribute (Pydantic AI)       start, a user reply mid-run), and tool messages no tool span
                                   reported; system prompts are not steps.
agent: ``AGENT``, ``invoke_agent`` no step of its own; it owns the LLM calls below it (the
/ ``create_agent``, Langfuse       nearest one up the tree). Its name: ``agent.name`` /
AGENT, ``traceloop.span.kind``     ``gen_ai.agent.name``, else the tool name of a parent tool
agent, a LangGraph node (a         span that runs it, else ``graph.node.name`` / ``.id`` / the node,
CHAIN span named as its            else the name the calling agent's last tool call gave it
``metadata.langgraph_node``,       (smolagents' managed agents; ``smolagents.managed_agents.
not 'agent'/'tools'), Pydantic     N.name``), else ``invoke_agent NAME``, else the span name
AI's 'agent run' (``agent_name``)  (a warning when that is a class name). A sub-agent below
                                   another agent is a hand-off: the caller's last action
                                   before it (preferably one whose tool call names it) gets
                                   ``Step.to``; an agent beside another gets one from the last
                                   action of the agent its ``graph.node.parent_id`` names, or
                                   of one whose tool call names it (``transfer_to_NAME``).
tool: ``TOOL``, ``execute_tool``,  its result (``output.value``, ``gen_ai.tool.call.result``,
Langfuse TOOL, RETRIEVER, a span   Langfuse ``output``, ``tool_response``) is an
with only ``gen_ai.tool.name``     **observation** by the tool, placed at the span's end,
(Pydantic AI's 'running tool')     linked to the action that called it (by ``tool_call.id`` /
                                   ``gen_ai.tool.call.id``, else by name) in
                                   ``run.meta["tool_calls"]``; no result recorded: no step.
anything else (CHAIN, ...)         no step; only part of the tree.
=================================  ==========================================================

An LLM call outside every agent span belongs to the root's agent: the resource's
``service.name``, else the root span's name. An LLM span inside another that gave an output (a
provider SDK's span inside a framework's span of the same call) is read once, as the outer one.
An assistant message in an LLM input that no span produced (history from before the trace) is
not a step, with a warning. The root's ``input.value`` (Langfuse: the trace's
``input``) is the task observation when no LLM call shows a user message before the first
action. Steps are in causal order: by start time (a tool result by end time), ties by tree
order. Origins keep the span id (``id_type="span"``; Langfuse: the observation id,
``"observation"``), trace id, JSON pointer, JSONL line and start time.

A trace with no LLM output is an error naming the trace, except in a file of several traces,
where one with no LLM, agent or tool span at all (the app's HTTP or database traces in a collector
file) is skipped with a warning. OTel traces carry no labels: ``mistake_step``/``success`` stay
None; ``run.meta`` keeps ``tool_calls``, ``trace_id``, ``spans`` (how many) and ``delegations``
(step, sub-agent, span id).

Sources: the OTLP/JSON encoding and ``trace.proto``; the OpenInference semantic conventions
(``spec/semantic_conventions.md``, messages and tool-calling pages); the OTel GenAI semantic
conventions (``gen-ai-spans.md``, ``gen-ai-agent-spans.md``, ``gen-ai-input-messages.json``,
``gen-ai-output-messages.json``; the event-based form of v1.36 and before); Phoenix's REST span
model; Langfuse's public API (``TraceWithFullDetails``, ``Observation``); Jaeger's JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

from attribution.errors import InputError
from attribution.parse.chat import build_run
from attribution.parse.common import (
    attributes as _kv_attributes,
    describe,
    flatten_content,
    iso_time,
    pointer,
    text_of,
    tool_call_text,
    warn,
)
from attribution.types import ACTION, OBSERVATION, Origin, Run, Step

__all__ = ["NAME", "DESCRIPTION", "ACTIONS", "IDS", "detect", "read"]

NAME = "otel"
DESCRIPTION = ("OpenTelemetry traces (OTLP/JSON, collector JSONL, Phoenix/Jaeger span exports, Langfuse traces) "
               "with OpenInference or GenAI attributes")
ACTIONS = ("an LLM call's output is an action of the agent span that owns it; tool spans' results, the task and "
           "new user messages are observations; a sub-agent span below another agent is a hand-off")
IDS = "span id as written (Langfuse: observation id), trace id = run id, JSON pointer, JSONL line, start time"

_LLM_OPS = {"chat", "text_completion", "generate_content", "completion"}
_AGENT_OPS = {"invoke_agent", "create_agent"}
_LANGFUSE_TYPES = {"GENERATION", "SPAN", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR", "EMBEDDING",
                   "GUARDRAIL"}
#: Attributes whose whole value is one thing (a message list, a JSON document): never flattened.
_WHOLE = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.tool.definitions",
          "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "input.value", "output.value", "metadata",
          "gen_ai.event.content", "llm.invocation_parameters", "tool.parameters", "event.body", "body", "events",
          "all_messages_events", "tool_arguments", "tool_response"}
_MISSING = object()


# -- detection ------------------------------------------------------------------------------------


def detect(value: Any) -> float:
    """1.0 for OTLP/JSON (``resourceSpans``), Jaeger (``traceID`` + ``spans``), Langfuse observations
    (``parentObservationId``) or spans carrying ``openinference.span.kind``; 0.8 for other span
    lists/trees with span ids (``context.span_id``, ``spanId``...); 0 otherwise. A list (JSONL)
    is claimed only when every item is."""
    items = value if isinstance(value, list) else [value]
    if not items:
        return 0.0
    confs = [_detect_one(x) for x in items[:200]]
    return min(confs)


def _detect_one(x: Any) -> float:
    if not isinstance(x, dict):
        return 0.0
    if isinstance(x.get("resourceSpans"), list) or _is_tempo(x):
        return 1.0
    if _is_jaeger(x):
        return 1.0
    if isinstance(x.get("observations"), list):
        obs = [o for o in x["observations"] if isinstance(o, dict)]
        return 1.0 if any("parentObservationId" in o for o in obs) else 0.8 if obs else 0.0
    if _is_langfuse_observation(x) or _langfuse_page(x):
        return 1.0
    for key in ("spans", "data"):
        inner = x.get(key)
        if isinstance(inner, list) and inner and all(isinstance(s, dict) and _span_key(s) for s in inner):
            return max(_span_conf(s) for s in inner)
    return _span_conf(x) if _span_key(x) else 0.0


def _is_tempo(x: dict) -> bool:
    b = x.get("batches")
    return isinstance(b, list) and bool(b) and all(
        isinstance(r, dict) and ("scopeSpans" in r or "instrumentationLibrarySpans" in r) for r in b)


def _is_jaeger(x: dict) -> bool:
    data = x.get("data")
    if isinstance(data, list) and data and all(isinstance(t, dict) and "traceID" in t and "spans" in t for t in data):
        return True
    return "traceID" in x and isinstance(x.get("spans"), list)


def _is_langfuse_observation(x: dict) -> bool:
    return "parentObservationId" in x and isinstance(x.get("type"), str) and "id" in x


def _langfuse_page(x: dict) -> bool:
    """A page of ``GET /api/public/observations``: ``{"data": [observation, ...], "meta": {...}}``."""
    data = x.get("data")
    return isinstance(data, list) and bool(data) and all(isinstance(o, dict) and _is_langfuse_observation(o) for o in data)


def _span_key(s: dict) -> bool:
    """Whether ``s`` looks like one span of an OTel span export (and not another SDK's span)."""
    if "span_data" in s or s.get("object") == "trace.span":  # OpenAI Agents SDK spans: another reader's
        return False
    ctx = s.get("context")
    return bool((isinstance(ctx, dict) and "span_id" in ctx) or "context.span_id" in s
                or any(k in s for k in ("spanId", "span_id", "spanID")))


def _span_conf(s: dict) -> float:
    attrs = s.get("attributes")
    flat = _flat(attrs) if isinstance(attrs, dict) else {}
    if "openinference.span.kind" in flat or "attributes.openinference.span.kind" in s:
        return 1.0
    return 0.8


# -- the common span record -----------------------------------------------------------------------


@dataclasses.dataclass
class _Span:
    id: str
    parent: str | None
    trace: str
    name: str
    attrs: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    start: int | None
    end: int | None
    pointer: str
    line: int | None
    order: int
    id_type: str = "span"
    store_kind: str | None = None  # Phoenix span_kind, Langfuse type
    service: str | None = None
    error: str | None = None
    input: Any = _MISSING  # Langfuse observation input / output
    output: Any = _MISSING
    timestamp: str | None = None

    def record(self) -> str:
        return f"{self.id_type} {self.id}" + (f" (line {self.line})" if self.line else f" ({self.pointer or '/'})")

    def where(self, source: str) -> str:
        return f"{source}, {self.record()}"


def _err(source: str, record: str, expected: str, got: str | None = None) -> InputError:
    return InputError(f"{source}, {record}", expected, got=got)


def _flat(attrs: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nested attributes as flat dotted keys (lists of objects get their index as a key part),
    except :data:`_WHOLE` values, kept as one value.

    >>> _flat({"llm": {"input_messages": [{"message": {"role": "user"}}]}, "input.value": {"a": 1}})
    {'llm.input_messages.0.message.role': 'user', 'input.value': {'a': 1}}
    """
    out = {} if out is None else out
    for k, v in attrs.items():
        key = f"{prefix}{k}"
        if key in _WHOLE:
            out[key] = v
        elif isinstance(v, dict) and v:
            _flat(v, key + ".", out)
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                _flat(x, f"{key}.{i}.", out)
        else:
            out[key] = v
    return out


def _attrs(value: Any, source: str, record: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, list):
        for kv in value:
            if not (isinstance(kv, dict) and isinstance(kv.get("key"), str)):
                raise _err(source, record, "attributes as a list of {key, value} (OTLP KeyValue)", describe(kv))
        return _unwrap(value, source, record)
    if isinstance(value, dict):
        return _unwrap(value, source, record)
    raise _err(source, record, "'attributes' to be a KeyValue list or an object", describe(value))


def _unwrap(value: Any, source: str, record: str) -> dict[str, Any]:
    try:
        return _flat(_kv_attributes(value))
    except (AttributeError, TypeError) as err:  # an AnyValue whose arrayValue / kvlistValue is not an object
        raise _err(source, record, "attribute values of the OTLP AnyValue form", type(err).__name__) from err


def _ns(value: Any, unit: int = 1) -> int | None:
    """Nanoseconds since the epoch from an integer (in ``unit`` ns), a digit string or an ISO string."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value * unit) if value > 0 else None
    if isinstance(value, str):
        if value.strip().isdigit():
            return int(value) * unit or None
        text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip().replace("Z", "+00:00"))
        try:
            t = _dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return int(t.timestamp() * 1_000_000) * 1000
    return None


def _id(value: Any, source: str, record: str, what: str, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise _err(source, record, f"a {what}", "none")
        return None
    if isinstance(value, str):
        return value  # as written: hex in OTLP/JSON, never re-encoded
    raise _err(source, record, f"the {what} to be a string", describe(value))


# -- collectors: each shape to _Span records ------------------------------------------------------


class _Collector:
    def __init__(self, source: str):
        self.source = source
        self.spans: list[_Span] = []
        self.roots_input: dict[str, Any] = {}  # trace -> task input (Langfuse trace input)
        self.names: dict[str, str] = {}  # trace -> trace name

    def add(self, span: _Span) -> None:
        span.order = len(self.spans)
        self.spans.append(span)

    # OTLP/JSON ---------------------------------------------------------------------------------
    def otlp(self, req: dict, base: tuple, line: int | None) -> None:
        key = "resourceSpans" if "resourceSpans" in req else "batches"
        where = f"line {line}, " if line else ""
        for r, rs in enumerate(_list(req[key], self.source, where + pointer(*base, key))):
            rs = _obj(rs, self.source, where + pointer(*base, key, r), "a ResourceSpans object")
            resource = _obj(rs.get("resource") or {}, self.source, where + pointer(*base, key, r, "resource"), "a resource object")
            res = _attrs(resource.get("attributes"), self.source, where + pointer(*base, key, r, "resource"))
            service = res.get("service.name")
            scope_key = "scopeSpans" if "scopeSpans" in rs else "instrumentationLibrarySpans"
            for s, ss in enumerate(_list(rs.get(scope_key, []), self.source, where + pointer(*base, key, r, scope_key))):
                ss = _obj(ss, self.source, where + pointer(*base, key, r, scope_key, s), "a ScopeSpans object")
                for k, sp in enumerate(_list(ss.get("spans", []), self.source,
                                             where + pointer(*base, key, r, scope_key, s, "spans"))):
                    ptr = pointer(*base, key, r, scope_key, s, "spans", k)
                    self.add(self._otlp_span(sp, ptr, line, service))

    def _otlp_span(self, sp: Any, ptr: str, line: int | None, service: Any) -> _Span:
        rec = f"line {line}, span {ptr}" if line else f"span {ptr}"
        if not isinstance(sp, dict):
            raise _err(self.source, rec, "a span object", describe(sp))
        sid = _id(sp.get("spanId"), self.source, rec, "span id ('spanId')", required=True)
        rec = f"span {sid}" + (f" (line {line})" if line else f" ({ptr})")
        events = []
        for e, ev in enumerate(_list(sp.get("events") or [], self.source, rec + ", events")):
            if not isinstance(ev, dict):
                raise _err(self.source, rec, "span events as objects {name, attributes}", describe(ev))
            events.append((str(ev.get("name", "")), _attrs(ev.get("attributes"), self.source, f"{rec}, event {e}")))
        status = _obj(sp.get("status") or {}, self.source, rec, "'status' to be an object {code, message}")
        error = (status.get("message") or "error") if status.get("code") in (2, "STATUS_CODE_ERROR") else None
        start = _ns(sp.get("startTimeUnixNano"))
        return _Span(
            id=sid, parent=_id(sp.get("parentSpanId"), self.source, rec, "parent span id", required=False),
            trace=_id(sp.get("traceId"), self.source, rec, "trace id ('traceId')", required=True),
            name=str(sp.get("name", "")), attrs=_attrs(sp.get("attributes"), self.source, rec), events=events,
            start=start, end=_ns(sp.get("endTimeUnixNano")), pointer=ptr, line=line, order=0,
            service=service if isinstance(service, str) and not service.startswith("unknown_service") else None,
            error=error, timestamp=iso_time(start),
        )

    # flat spans and trees ----------------------------------------------------------------------
    def flat(self, sp: dict, ptr: str, line: int | None, parent: str | None = None, trace: str | None = None) -> None:
        rec = f"span {ptr or '/'}" + (f" (line {line})" if line else "")
        ctx = sp.get("context") if isinstance(sp.get("context"), dict) else {}
        sid = _id(_pick(ctx, "span_id", "spanId") or _pick(sp, "context.span_id", "spanId", "span_id", "spanID"),
                  self.source, rec, "span id (context.span_id / spanId)", required=True)
        rec = f"span {sid}" + (f" (line {line})" if line else f" ({ptr or '/'})")
        tid = _pick(ctx, "trace_id", "traceId") or _pick(sp, "context.trace_id", "traceId", "trace_id", "traceID") or trace
        pid = _pick(sp, "parent_id", "parentSpanId", "parent_span_id", "parentId", "parentSpanID")
        pid = _id(pid, self.source, rec, "parent span id", required=False) or parent
        raw = sp.get("attributes")
        attrs = _attrs(raw, self.source, rec) if raw is not None else {}
        attrs.update(_flat({k[len("attributes."):]: v for k, v in sp.items() if k.startswith("attributes.")}))
        events = []
        for e, ev in enumerate(_list(sp.get("events") or [], self.source, rec + ", events")):
            if not isinstance(ev, dict):
                raise _err(self.source, rec, "span events as objects {name, attributes}", describe(ev))
            events.append((str(ev.get("name", "")), _attrs(ev.get("attributes"), self.source, f"{rec}, event {e}")))
        start = _ns(_pick(sp, "start_time", "startTimeUnixNano", "startTime", "start_time_unix_nano"))
        status = str(_pick(sp, "status_code", "statusCode") or "").upper()
        self.add(_Span(
            id=sid, parent=pid, trace=_id(tid, self.source, rec, "trace id", required=False) or "",
            name=str(_pick(sp, "name", "operationName") or ""), attrs=attrs, events=events, start=start,
            end=_ns(_pick(sp, "end_time", "endTimeUnixNano", "endTime")), pointer=ptr, line=line, order=0,
            store_kind=_pick(sp, "span_kind", "spanKind"), error=(sp.get("status_message") or "error") if status == "ERROR" else None,
            timestamp=iso_time(_pick(sp, "start_time", "startTime") or start),
        ))
        kids = sp.get("children")
        if kids is not None:
            for c, child in enumerate(_list(kids, self.source, f"span {sid}, {ptr}/children")):
                if not isinstance(child, dict):
                    raise _err(self.source, rec, "child spans as objects", describe(child))
                self.flat(child, f"{ptr}/children/{c}", line, parent=sid, trace=tid)

    # Jaeger ------------------------------------------------------------------------------------
    def jaeger(self, tr: dict, base: tuple, line: int | None) -> None:
        tr = _obj(tr, self.source, (f"line {line}, " if line else "") + pointer(*base), "a Jaeger trace object")
        procs = tr.get("processes") or {}
        for k, sp in enumerate(_list(tr["spans"], self.source, pointer(*base, "spans"))):
            ptr = pointer(*base, "spans", k)
            rec = f"span {ptr}" + (f" (line {line})" if line else "")
            if not isinstance(sp, dict):
                raise _err(self.source, rec, "a span object", describe(sp))
            sid = _id(sp.get("spanID"), self.source, rec, "span id ('spanID')", required=True)
            rec = f"span {sid}" + (f" (line {line})" if line else f" ({ptr})")
            refs = [r for r in _list(sp.get("references") or [], self.source, rec + ", references") if isinstance(r, dict) and r.get("refType") == "CHILD_OF"]
            parent = _id(refs[0].get("spanID"), self.source, rec, "parent span id", required=False) if refs else None
            tags = sp.get("tags") or []
            if not isinstance(tags, list):
                raise _err(self.source, rec, "'tags' to be a list of {key, type, value}", describe(tags))
            attrs = _flat({str(t["key"]): t.get("value") for t in tags if isinstance(t, dict) and "key" in t})
            logs = [lg for lg in _list(sp.get("logs") or [], self.source, rec + ", logs") if isinstance(lg, dict)]
            events = [(str(f.get("event", "")), _flat(f)) for f in
                      ({str(t["key"]): t.get("value") for t in _list(lg.get("fields") or [], self.source, rec + ", logs")
                        if isinstance(t, dict) and "key" in t} for lg in logs)]
            start = _ns(sp.get("startTime"), 1000)
            duration = sp.get("duration") if type(sp.get("duration")) is int else None
            pid = sp.get("processID")
            proc = procs.get(pid) if isinstance(procs, dict) and isinstance(pid, str) else None
            self.add(_Span(
                id=sid, parent=parent, trace=str(sp.get("traceID") or tr.get("traceID") or ""),
                name=str(sp.get("operationName", "")), attrs=attrs, events=events, start=start,
                end=start + int(duration) * 1000 if start and isinstance(duration, int) else None,
                pointer=ptr, line=line, order=0, service=proc.get("serviceName") if isinstance(proc, dict) else None,
                error="error" if attrs.get("error") is True else None, timestamp=iso_time(start),
            ))

    # Langfuse ----------------------------------------------------------------------------------
    def langfuse_trace(self, tr: dict, base: tuple, line: int | None) -> None:
        tid = _id(tr.get("id"), self.source, pointer(*base) or "trace", "trace id ('id')", required=False)
        for k, ob in enumerate(_list(tr["observations"], self.source, pointer(*base, "observations"))):
            self.langfuse_obs(ob, pointer(*base, "observations", k), line, trace=tid)
        if tid is not None:
            if tr.get("input") is not None:
                self.roots_input[tid] = tr["input"]
            if isinstance(tr.get("name"), str):
                self.names[tid] = tr["name"]

    def langfuse_obs(self, ob: Any, ptr: str, line: int | None, trace: str | None = None) -> None:
        rec = f"observation {ptr}" + (f" (line {line})" if line else "")
        if not isinstance(ob, dict):
            raise _err(self.source, rec, "an observation object", describe(ob))
        oid = _id(ob.get("id"), self.source, rec, "observation id ('id')", required=True)
        rec = f"observation {oid}" + (f" (line {line})" if line else f" ({ptr})")
        kind = ob.get("type")
        if not isinstance(kind, str):
            raise _err(self.source, rec, "an observation 'type' (GENERATION, SPAN, AGENT, TOOL, ...)", repr(kind))
        meta = ob.get("metadata")
        attrs = _flat(meta["attributes"]) if isinstance(meta, dict) and isinstance(meta.get("attributes"), dict) else {}
        start = _ns(ob.get("startTime"))
        self.add(_Span(
            id=oid, parent=_id(ob.get("parentObservationId"), self.source, rec, "parent span id", required=False),
            trace=_id(ob.get("traceId"), self.source, rec, "trace id", required=False) or trace or "",
            name=str(ob.get("name") or ""), attrs=attrs, events=[], start=start, end=_ns(ob.get("endTime")),
            pointer=ptr, line=line, order=0, id_type="observation", store_kind=kind.upper(),
            error=(ob.get("statusMessage") or "error") if ob.get("level") == "ERROR" else None,
            input=ob.get("input", _MISSING), output=ob.get("output", _MISSING),
            timestamp=iso_time(ob.get("startTime")),
        ))


def _obj(value: Any, source: str, record: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise _err(source, record, what, describe(value))
    return value


def _as_list(value: Any, span: _Span, source: str, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(span.where(source), f"'{what}' to be a list", got=describe(value))
    return value


def _pick(d: dict, *keys: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def _list(value: Any, source: str, ptr: str) -> list:
    if not isinstance(value, list):
        raise _err(source, ptr or "/", "a list", describe(value))
    return value


def _collect(item: Any, c: _Collector, base: tuple, line: int | None) -> None:
    where = f"line {line}" if line else (pointer(*base) or "/")
    if not isinstance(item, dict):
        raise _err(c.source, where, "an OTLP request, a span, a trace or a Langfuse trace object", describe(item))
    if isinstance(item.get("resourceSpans"), list) or _is_tempo(item):
        c.otlp(item, base, line)
    elif _is_jaeger(item):
        if isinstance(item.get("data"), list):
            for t, tr in enumerate(item["data"]):
                c.jaeger(tr, (*base, "data", t), line)
        else:
            c.jaeger(item, base, line)
    elif isinstance(item.get("observations"), list):
        c.langfuse_trace(item, base, line)
    elif _is_langfuse_observation(item):
        c.langfuse_obs(item, pointer(*base), line)
    elif _langfuse_page(item):
        for k, ob in enumerate(item["data"]):
            c.langfuse_obs(ob, pointer(*base, "data", k), line)
    elif isinstance(item.get("spans"), list) or (isinstance(item.get("data"), list) and not _span_key(item)):
        key = "spans" if isinstance(item.get("spans"), list) else "data"
        for k, sp in enumerate(item[key]):
            if not isinstance(sp, dict):
                raise _err(c.source, pointer(*base, key, k), "a span object", describe(sp))
            c.flat(sp, pointer(*base, key, k), line, trace=item.get("traceId", item.get("trace_id")))
    else:
        c.flat(item, pointer(*base), line)


# -- messages -------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Msg:
    role: str
    text: str
    calls: list[tuple[str | None, str, Any]] = dataclasses.field(default_factory=list)  # (id, name, arguments)
    call_id: str | None = None  # on a tool result
    name: str | None = None

    def __post_init__(self) -> None:  # ids are strings as written; anything else is no id
        self.call_id = _cid(self.call_id)
        self.calls = [(_cid(i), str(n), a) for i, n, a in self.calls]
        self.name = self.name if isinstance(self.name, str) and self.name else None

    def content(self) -> str:
        return "\n".join(([self.text] if self.text else []) + [tool_call_text(n, a) for _, n, a in self.calls])


def _cid(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else str(value) if type(value) is int else None


def _json(value: Any, span: _Span, source: str, what: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        from attribution.io import json_error

        raise InputError(span.where(source), f"'{what}' to hold JSON messages", got=json_error(err, column_only=True)) from err
    except RecursionError:
        raise InputError(span.where(source), f"'{what}' to hold JSON messages", got="too deeply nested JSON") from None


def _group(attrs: dict[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """Flattened list items by index, in one pass: ``{prefix}.N.rest`` -> ``{N: {rest: value}}``.

    >>> _group({"m.0.role": "user", "m.1.role": "tool", "m.1.name": "x", "other": 1}, "m")
    {0: {'role': 'user'}, 1: {'role': 'tool', 'name': 'x'}}
    """
    out: dict[int, dict[str, Any]] = {}
    cut = len(prefix) + 1
    for k, v in attrs.items():
        if k.startswith(prefix) and k[cut - 1:cut] == ".":
            head, _, rest = k[cut:].partition(".")
            if head.isdigit() and rest:
                out.setdefault(int(head), {})[rest] = v
    return dict(sorted(out.items()))


def _oi_messages(attrs: dict[str, Any], prefix: str, span: _Span, source: str) -> list[_Msg] | None:
    """OpenInference ``llm.input_messages`` / ``llm.output_messages`` (flattened), or None when absent."""
    if isinstance(attrs.get(prefix), (str, list)):  # recorded whole: a JSON string or a list
        value = _json(attrs[prefix], span, source, prefix)
        if not isinstance(value, list):
            raise InputError(span.where(source), f"'{prefix}' to be a list of messages", got=describe(value))
        attrs = _flat({prefix: value})
    groups = _group(attrs, prefix)
    if not groups:
        return None
    out = []
    for n, msg in groups.items():
        text = msg.get("message.content")
        if not isinstance(text, str):
            parts = []
            for part in _group(msg, "message.contents").values():
                kind = part.get("message_content.type", "text")
                body = part.get("message_content.text")
                parts.append(body if kind == "text" and isinstance(body, str) else f"<{kind}>")
            text = "\n".join(parts) if parts else text_of(text) if text is not None else ""
        calls = []
        for k, call in _group(msg, "message.tool_calls").items():
            name = call.get("tool_call.function.name")
            if not isinstance(name, str):
                where = f"{prefix}.{n}.message.tool_calls.{k}.tool_call.function.name"
                raise InputError(span.where(source), f"'{where}' to be a string", got=describe(name))
            calls.append((call.get("tool_call.id"), name, call.get("tool_call.function.arguments")))
        if isinstance(msg.get("message.function_call_name"), str):  # older OpenInference
            calls.append((None, msg["message.function_call_name"], msg.get("message.function_call_arguments_json")))
        out.append(_Msg(str(msg.get("message.role") or ""), text, calls, msg.get("message.tool_call_id"),
                        msg.get("message.name")))
    return out


def _parts_message(m: dict[str, Any], span: _Span, source: str) -> _Msg:
    """A GenAI ``{role, parts}`` message, or an OpenAI/Anthropic-style ``{role, content, tool_calls}`` one."""
    role = str(m.get("role") or "")
    if "parts" not in m:
        return _chat_message(m, role, span, source)
    parts = m["parts"]
    if not isinstance(parts, list):
        raise InputError(span.where(source), "message 'parts' to be a list", got=describe(parts))
    texts, calls, call_id = [], [], None
    for part in parts:
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InputError(span.where(source), "message parts with a 'type'", got=describe(part))
        kind = part["type"]
        if kind == "tool_call":
            calls.append((part.get("id"), str(part.get("name", "")), part.get("arguments")))
        elif kind == "tool_call_response":
            call_id = part.get("id")
            texts.append(text_of(part.get("response", part.get("result", ""))))
        else:
            texts.append(flatten_content([part], source=span.where(source)))
    return _Msg(role, "\n".join(t for t in texts if t), calls, call_id, m.get("name"))


def _chat_message(m: dict[str, Any], role: str, span: _Span, source: str) -> _Msg:
    content = m.get("content")
    texts, calls, result_of = [], [], None
    if isinstance(content, list):  # typed parts (OpenAI, Anthropic)
        for part in content:
            if isinstance(part, dict) and part.get("type") == "tool_use":
                calls.append((part.get("id"), str(part.get("name", "")), part.get("input")))
            elif isinstance(part, dict) and part.get("type") == "tool_result":  # Anthropic: a user turn of results
                result_of = part.get("tool_use_id")
                texts.append(flatten_content(part.get("content"), source=span.where(source)))
            else:
                texts.append(flatten_content([part], source=span.where(source)))
        text = "\n".join(t for t in texts if t)
    elif isinstance(content, dict):  # Azure agents: {"text": {"value": ...}}; event bodies {"content": ...}
        inner = content.get("text", content)
        text = inner.get("value") if isinstance(inner, dict) and isinstance(inner.get("value"), str) else text_of(content)
    else:
        text = "" if content is None else text_of(content)
    for call in _as_list(m.get("tool_calls"), span, source, "tool_calls"):
        if not isinstance(call, dict):
            raise InputError(span.where(source), "tool_calls entries as objects", got=describe(call))
        fn = call.get("function") if isinstance(call.get("function"), dict) else call
        if not isinstance(fn.get("name"), str):
            raise InputError(span.where(source), "tool_calls entries with a function name", got=describe(call))
        calls.append((call.get("id"), fn["name"], fn.get("arguments")))
    if result_of is not None and not calls:
        role = "tool"
    call_id = m.get("tool_call_id") or result_of or (m.get("id") if role == "tool" else None)
    return _Msg(role, text, calls, call_id, m.get("name"))


def _message_list(value: Any, span: _Span, source: str, what: str) -> list[_Msg]:
    value = _json(value, span, source, what)
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InputError(span.where(source), f"'{what}' to be a list of messages", got=describe(value))
    out = []
    for m in value:
        if not isinstance(m, dict):
            raise InputError(span.where(source), f"'{what}' entries to be message objects", got=describe(m))
        out.append(_parts_message(m, span, source))
    return out


_EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}


def _event_body(attrs: dict[str, Any], span: _Span, source: str) -> dict[str, Any]:
    """An older GenAI event's body: in ``gen_ai.event.content`` (JSON), ``event.body``/``body``, or the attributes."""
    for key in ("gen_ai.event.content", "event.body", "body"):
        if key in attrs:
            body = _json(attrs[key], span, source, key)
            if isinstance(body, dict):
                return body
            return {"content": body}
    return {k: v for k, v in attrs.items() if not k.startswith("gen_ai.system")}


def _attribute_events(span: _Span, source: str) -> list[tuple[str, dict[str, Any]]]:
    """GenAI events recorded in one ``events`` attribute (Pydantic AI / Logfire's ``event_mode=
    'attributes'``: a JSON list of ``{"event.name": ..., body fields}``)."""
    value = span.attrs.get("events")
    if value is None:
        return []
    value = _json(value, span, source, "events")
    if not isinstance(value, list):
        raise InputError(span.where(source), "'events' to be a list of GenAI events", got=describe(value))
    out = []
    for ev in value:
        if not isinstance(ev, dict):
            raise InputError(span.where(source), "'events' entries to be objects with 'event.name'", got=describe(ev))
        out.append((str(ev.get("event.name", "")), {k: v for k, v in ev.items() if k != "event.name"}))
    return out


def _event_messages(span: _Span, source: str) -> tuple[list[_Msg] | None, list[_Msg] | None]:
    ins: list[_Msg] = []
    outs: list[_Msg] = []
    for name, attrs in span.events + _attribute_events(span, source):
        if name in _EVENT_ROLES:
            body = _unflat(_event_body(attrs, span, source))
            ins.append(_chat_message(body, str(body.get("role") or _EVENT_ROLES[name]), span, source))
        elif name == "gen_ai.choice":
            body = _unflat(_event_body(attrs, span, source))
            msg = body.get("message", body)
            if not isinstance(msg, dict):
                msg = {"content": msg}
            outs.append(_chat_message(msg, str(msg.get("role") or "assistant"), span, source))
        elif name in ("gen_ai.content.prompt", "gen_ai.content.completion"):  # GenAI conventions before v1.28
            key = "gen_ai.prompt" if name == "gen_ai.content.prompt" else "gen_ai.completion"
            msgs = (_message_list(attrs[key], span, source, key) if key in attrs
                    else _legacy_messages(attrs, key) or [])
            (ins if key == "gen_ai.prompt" else outs).extend(msgs)
    return ins or None, outs or None


def _unflat(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys back into nested objects, digit parts into lists (event bodies flattened as
    attributes: ``tool_calls.0.function.name``)."""
    root: dict[str, Any] = {}
    for key, v in flat.items():
        node = root
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = node[p] = {}
            node = nxt
        node[parts[-1]] = v

    def lists(x: Any) -> Any:
        if isinstance(x, dict):
            x = {k: lists(v) for k, v in x.items()}
            if x and all(k.isdigit() for k in x):
                return [x[k] for k in sorted(x, key=int)]
        return x

    return lists(root)


def _legacy_messages(attrs: dict[str, Any], prefix: str) -> list[_Msg] | None:
    """``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` (OpenLLMetry and GenAI before messages attributes)."""
    groups = _group(attrs, prefix)
    if not groups:
        return None
    out = []
    for msg in groups.values():
        calls = [(c.get("id"), str(c.get("name", "")), c.get("arguments")) for c in _group(msg, "tool_calls").values()]
        if isinstance(msg.get("function_call.name"), str):
            calls.append((None, msg["function_call.name"], msg.get("function_call.arguments")))
        content = msg.get("content")
        out.append(_Msg(str(msg.get("role") or ""), "" if content is None else text_of(content), calls,
                        msg.get("tool_call_id")))
    return out


def _langfuse_messages(value: Any, span: _Span, source: str, what: str) -> list[_Msg] | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        return [_Msg("assistant" if what == "output" else "user", value)]
    if isinstance(value, dict) and isinstance(value.get("choices"), list) and value["choices"]:
        value = [c.get("message", c) if isinstance(c, dict) else c for c in value["choices"]]
    if isinstance(value, dict) and not ({"role", "content", "parts", "tool_calls", "messages"} & set(value)):
        return [_Msg("assistant" if what == "output" else "user", text_of(value))]
    msgs = _message_list(value, span, source, what)
    if what == "output":
        for m in msgs:
            m.role = m.role or "assistant"
    return msgs


def _llm_messages(span: _Span, source: str) -> tuple[list[_Msg], list[_Msg] | None]:
    """(input messages, output messages or None when the span records no output)."""
    a = span.attrs
    ev_in, ev_out = _event_messages(span, source) if span.events or "events" in a else (None, None)
    ins = _oi_messages(a, "llm.input_messages", span, source)
    if ins is None and "gen_ai.input.messages" in a:
        ins = _message_list(a["gen_ai.input.messages"], span, source, "gen_ai.input.messages")
    ins = ins if ins is not None else ev_in if ev_in is not None else _legacy_messages(a, "gen_ai.prompt")
    if ins is None:
        ins = _langfuse_messages(span.input, span, source, "input")
    outs = _oi_messages(a, "llm.output_messages", span, source)
    if outs is None and "gen_ai.output.messages" in a:
        outs = _message_list(a["gen_ai.output.messages"], span, source, "gen_ai.output.messages")
    outs = outs if outs is not None else ev_out if ev_out is not None else _legacy_messages(a, "gen_ai.completion")
    if outs is None:
        outs = _langfuse_messages(span.output, span, source, "output")
    if outs is None and isinstance(a.get("output.value"), str) and a.get("openinference.span.kind") == "LLM":
        raw = a["output.value"]
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            doc = None
        outs = (_langfuse_messages(doc, span, source, "output") if isinstance(doc, dict) and "choices" in doc
                else [_Msg("assistant", raw)])
    return ins or [], outs


# -- span kinds and names ------------------------------------------------------------------------


def _kind(span: _Span) -> str:
    """'llm', 'agent', 'tool' or 'other'."""
    a = span.attrs
    oi = str(a.get("openinference.span.kind") or span.store_kind or "").upper()
    op = str(a.get("gen_ai.operation.name") or "")
    tl = str(a.get("traceloop.span.kind") or "").lower()
    if oi in ("LLM", "GENERATION") or op in _LLM_OPS or str(a.get("llm.request.type")) in ("chat", "completion"):
        return "llm"
    if oi == "AGENT" or op in _AGENT_OPS or tl == "agent":
        return "agent"
    if oi in ("TOOL", "RETRIEVER") or op == "execute_tool" or tl == "tool":
        return "tool"
    if span.name == "agent run" and isinstance(a.get("agent_name"), str):  # Pydantic AI before GenAI agent spans
        return "agent"
    if isinstance(a.get("gen_ai.tool.name"), str) and not oi and not op:  # Pydantic AI's 'running tool'
        return "tool"
    if any(k.startswith(("gen_ai.completion.", "llm.output_messages.")) for k in a) or "gen_ai.output.messages" in a:
        return "llm"
    if any(name in ("gen_ai.choice", "gen_ai.content.completion") for name, _ in span.events):
        return "llm"
    node = _langgraph_node(span)
    if node is not None and node not in _LANGGRAPH_INNER:
        return "agent"
    return "other"


#: LangGraph node names that are a step inside an agent, not an agent: the prebuilt ReAct agent's
#: 'agent' / 'tools' nodes, and the graph's start and end.
_LANGGRAPH_INNER = {"agent", "model", "call_model", "llm", "tools", "__start__", "__end__"}


def _langgraph_node(span: _Span) -> str | None:
    """The LangGraph node this span is (OpenInference's LangChain spans carry the run's ``metadata``
    with ``langgraph_node``; the node's own span has that name, its children inherit the metadata)."""
    meta = span.attrs.get("metadata")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except (json.JSONDecodeError, RecursionError):
            return None
    node = meta.get("langgraph_node") if isinstance(meta, dict) else None
    return node if isinstance(node, str) and node == span.name else None


def _explicit_agent(span: _Span) -> str | None:
    for key in ("agent.name", "gen_ai.agent.name", "agent_name"):
        v = span.attrs.get(key)
        if isinstance(v, str) and v:
            return v
    return None


def _tool_name(span: _Span) -> str:
    for key in ("tool.name", "gen_ai.tool.name", "traceloop.entity.name"):
        v = span.attrs.get(key)
        if isinstance(v, str) and v:
            return v
    name = span.name
    return name.split(" ", 1)[1] if name.startswith("execute_tool ") and " " in name else name or "tool"


def _tool_output(span: _Span) -> str | None:
    a = span.attrs
    for key in ("output.value", "gen_ai.tool.call.result", "traceloop.entity.output", "tool_response"):
        if a.get(key) is not None:
            return text_of(a[key])
    if span.output is not _MISSING and span.output is not None:
        return text_of(span.output)
    docs = _group(a, "retrieval.documents")
    if docs:
        return "\n".join(text_of(d.get("document.content", "")) for d in docs.values())
    if span.error:
        return f"error: {span.error}"
    return None


def _input_text(span: _Span, source: str) -> str | None:
    if span.attrs.get("gen_ai.input.messages") is not None and span.attrs.get("input.value") is None:
        msgs = _message_list(span.attrs["gen_ai.input.messages"], span, source, "gen_ai.input.messages")
        return "\n".join(m.content() for m in msgs if m.role in ("user", "human")) or None
    for key in ("input.value", "traceloop.entity.input"):
        v = span.attrs.get(key)
        if v is not None:
            return text_of(v)
    if span.input is not _MISSING and span.input is not None:
        return text_of(span.input)
    return None


# -- one trace to one run -------------------------------------------------------------------------


@dataclasses.dataclass
class _Item:
    key: tuple
    agent: str
    role: str
    kind: str
    text: str
    span: _Span
    calls: list = dataclasses.field(default_factory=list)
    call_id: str | None = None
    tool: str | None = None


def _trace_run(trace: str, spans: list[_Span], source: str, c: _Collector, stem: str, *, skip_plain: bool) -> Run | None:
    label = f"trace {trace}"
    by_id: dict[str, _Span] = {}
    for s in spans:
        if s.id in by_id:
            warn(source, f"span id {s.id} appears twice; keeping the first", record=label)
            continue
        by_id[s.id] = s
    spans = list(by_id.values())
    parent: dict[str, _Span | None] = {}
    for s in spans:
        if s.parent is not None and s.parent == s.id:
            raise _err(source, s.record(), "a parent span id other than its own", repr(s.parent))
        p = by_id.get(s.parent) if s.parent else None
        if s.parent and p is None:
            warn(source, f"parent span {s.parent} of {s.id_type} {s.id} is not in the file; read as a root", record=label)
        parent[s.id] = p
    children: dict[str | None, list[_Span]] = {}
    for s in spans:
        p = parent[s.id]
        children.setdefault(p.id if p else None, []).append(s)

    # start times: a span without one inherits its parent's; order: (start, tree order)
    start: dict[str, int] = {}
    pre: dict[str, int] = {}
    last: dict[str, int] = {}  # last preorder index in the subtree

    def visit(s: _Span, inherited: int, stack: set[str]) -> None:
        if s.id in stack:
            raise _err(source, s.record(), "parent links without a cycle", f"a cycle through {s.id}")
        start[s.id] = s.start if s.start is not None else inherited
        pre[s.id] = len(pre)
        kids = sorted(children.get(s.id, []), key=lambda k: (k.start if k.start is not None else start[s.id], k.order))
        for k in kids:
            visit(k, start[s.id], stack | {s.id})
        last[s.id] = len(pre) - 1

    roots = sorted(children.get(None, []), key=lambda k: (k.start or 0, k.order))
    if not roots:
        raise _err(source, label, "a root span (one without a parent)", "every span has a parent: a cycle")
    for r in roots:
        visit(r, r.start or 0, set())
    if len(pre) != len(spans):
        bad = next(s for s in spans if s.id not in pre)
        raise _err(source, bad.record(), "parent links without a cycle", f"a cycle through {bad.id}")
    end = {s.id: s.end if s.end is not None else max(start[k.id] for k in _subtree(s, children)) for s in spans}

    kinds = {s.id: _kind(s) for s in spans}
    root = roots[0]
    default_agent = next((s.service for s in roots if s.service), None) or c.names.get(trace) or root.name or "agent"

    items: list[_Item] = []
    names: dict[str, str] = {}
    tool_names = {_tool_name(t) for t in spans if kinds[t.id] == "tool"}

    def boundary_name(s: _Span) -> str:
        """An agent span's name; memoised, first asked when its first LLM call is read, so that the
        steps of the agents above it (which may name it in a tool call) are known by then."""
        if s.id not in names:
            names[s.id] = _boundary_name(s)
        return names[s.id]

    def _boundary_name(s: _Span) -> str:
        name = _explicit_agent(s)
        p = parent[s.id]
        if name is None and p is not None and kinds[p.id] == "tool":
            name = _tool_name(p)  # a managed sub-agent, named only by the tool call that runs it
        for key in ("graph.node.name", "graph.node.id"):  # CrewAI sets only the id: the agent's role
            if name is None and isinstance(s.attrs.get(key), str) and s.attrs[key]:
                name = s.attrs[key]
        if name is None:
            name = _langgraph_node(s)
        if name is None and p is not None:
            name = _called_by(s, p)
        if name is None and s.name.startswith("invoke_agent ") and len(s.name) > 13:
            name = s.name[13:]
        if name is None and (not s.name or "." in s.name or s.name.lower() in ("agent", "invoke_agent", "run")):
            # a class or method name ('ToolCallingAgent.run'), not an agent's own name
            warn(source, f"agent {s.id_type} {s.id} has no agent name; using its span name {s.name!r}", record=label)
        return name or s.name or "agent"

    def _called_by(s: _Span, p: _Span) -> str | None:
        """The name a calling agent gave this one: the last tool call, before this span starts, by the
        agent above that no tool span answers (smolagents calls managed agents so; the caller's
        ``smolagents.managed_agents.N.name`` lists them)."""
        up, up_span = owner(p)
        if up_span is None:
            return None
        managed = {v for k, v in up_span.attrs.items() if k.startswith("smolagents.managed_agents.") and k.endswith(".name")}
        at = (start[s.id], pre[s.id])
        for it in reversed(items):
            if it.kind == ACTION and it.agent == up and it.key[:2] < at:
                for _, call, _ in reversed(it.calls):
                    if call in managed or (not managed and call not in tool_names):
                        return call
        return next(iter(managed)) if len(managed) == 1 else None

    def owner(s: _Span) -> tuple[str, _Span | None]:
        x: _Span | None = s
        while x is not None:
            name = _explicit_agent(x)
            if name:
                return name, x
            if kinds[x.id] == "agent":
                return boundary_name(x), x
            x = parent[x.id]
        return default_agent, None

    def _below(s: _Span, ids: set[str]) -> bool:
        x = parent[s.id]
        while x is not None:
            if x.id in ids:
                return True
            x = parent[x.id]
        return False

    llm_below: set[str] = set()
    for s in spans:
        if kinds[s.id] == "llm":
            x = parent[s.id]
            while x is not None and x.id not in llm_below:
                llm_below.add(x.id)
                x = parent[x.id]

    # what happens, in causal order: LLM calls at their start, tool results at their end
    todo = []
    for s in spans:
        k = kinds[s.id]
        if k == "llm" or (k == "agent" and s.id not in llm_below and _has_output(s)):
            todo.append(((start[s.id], pre[s.id], 0), "llm", s))
        elif k == "tool":
            todo.append(((end[s.id], last[s.id], 1), "tool", s))
    todo.sort(key=lambda t: t[0])

    seen_user: set[str] = set()
    seen_tool: set[str] = set()
    emitted: set[str] = set()
    call_names: dict[str, str] = {}
    unseen_history = 0
    answered: set[str] = set()  # LLM spans that gave an action
    silent: list[str] = []  # LLM spans without a recorded output
    for key, what, s in todo:
        if what == "llm" and _below(s, answered):
            continue  # a provider SDK's span inside a framework's span of the same call: read once
        if what == "tool":
            text = _tool_output(s)
            if text is None:
                continue
            call_id = _cid(s.attrs.get("tool_call.id", s.attrs.get("gen_ai.tool.call.id")))
            items.append(_Item(key, _tool_name(s), "tool", OBSERVATION, text, s, call_id=call_id, tool=_tool_name(s)))
            seen_tool.update(x for x in (call_id, text.strip()) if x)
            continue
        agent, boundary = owner(s)
        ins, outs = _llm_messages(s, source)
        caller = None
        if boundary is not None and parent[boundary.id] is not None:
            up, up_span = owner(parent[boundary.id])
            caller = up if up_span is not None else None  # the agent that delegated to this one
        sub = 0
        for m in ins:
            text = m.content().strip()
            if m.role in ("user", "human"):
                if text and text not in seen_user and text not in emitted:  # not an earlier action, passed on
                    seen_user.add(text)
                    who = caller if caller and caller != agent else m.name or "user"
                    items.append(_Item((*key[:2], -1, sub), who, m.role, OBSERVATION, m.content(), s))
                    sub += 1
            elif m.role in ("tool", "function", "ipython"):
                if text and m.call_id not in seen_tool and text not in seen_tool:
                    seen_tool.update(x for x in (m.call_id, text) if x)
                    tool = m.name or call_names.get(m.call_id) or "tool"
                    items.append(_Item((*key[:2], -1, sub), tool, "tool", OBSERVATION, m.content(), s,
                                       call_id=m.call_id, tool=tool))
                    sub += 1
            elif m.role in ("assistant", "model") and text and text not in emitted:
                unseen_history += 1
        if outs is None:
            silent.append(s.id)
            continue
        text = "\n".join(m.content() for m in outs if m.content())
        if not text.strip():
            warn(source, f"LLM {s.id_type} {s.id} has an empty output; no step", record=label)
            continue
        emitted.update(m.content().strip() for m in outs)
        emitted.add(text.strip())
        items.append(_Item((*key[:2], 0, 0), agent, "assistant", ACTION, text, s,
                           calls=[c for m in outs for c in m.calls]))
        answered.add(s.id)
        call_names.update((cid, name) for m in outs for cid, name, _ in m.calls if cid)
    silent = [x for x in silent if not any(_below(by_id[y], {x}) for y in answered)]  # not a wrapper of one that did
    if silent and any(it.kind == ACTION for it in items):
        warn(source, f"{len(silent)} LLM span(s) record no output (content capture off, or a failed call), "
                     f"e.g. {silent[0]}; no step for them", record=label)
    if unseen_history:
        warn(source, f"{unseen_history} assistant message(s) in LLM inputs match no span's output "
                     "(history from outside the trace?); kept out of the steps", record=label)
    if not any(it.kind == ACTION for it in items):
        if skip_plain and not any(kinds[x.id] != "other" for x in spans):
            # a collector file also holds the app's other traces (HTTP, database): say so, go on
            warn(source, f"{label} has no LLM, agent or tool span; skipped")
            return None
        raise _err(source, label, "at least one LLM call with an output (nothing to score)",
                   f"{len(spans)} span(s), no LLM output")

    items.sort(key=lambda it: it.key)
    first_action = next(i for i, it in enumerate(items) if it.kind == ACTION)
    if not any(it.kind == OBSERVATION and it.role in ("user", "human") for it in items[:first_action]):
        task = c.roots_input.get(trace)
        task = text_of(task) if task is not None else _input_text(root, source)
        if task and task.strip():
            items.insert(0, _Item((-1,), "user", "user", OBSERVATION, task, root))

    # steps, tool-call links and hand-offs
    steps: list[Step] = []
    pending: dict[str, int] = {}
    by_name: dict[str, list[int]] = {}
    links: list[tuple[int, int]] = []
    for i, it in enumerate(items):
        s = it.span
        origin = Origin(id=s.id, id_type=s.id_type, pointer=s.pointer, line=s.line, trace_id=s.trace or None,
                        timestamp=s.timestamp)
        steps.append(Step(index=i, agent=it.agent, role=it.role, kind=it.kind, content=it.text, origin=origin))
        for cid, name, _ in it.calls:
            if cid:
                pending[cid] = i
            by_name.setdefault(name, []).append(i)
        if it.kind == OBSERVATION and it.role == "tool":
            j = pending.pop(it.call_id, None) if it.call_id else None
            if j is None and it.tool and by_name.get(it.tool):
                j = by_name[it.tool][-1]
            if j is not None:
                links.append((j, i))
                if it.tool in by_name and j in by_name[it.tool]:
                    by_name[it.tool].remove(j)
    keys = [it.key for it in items]
    delegations = []
    for s in spans:
        if kinds[s.id] != "agent" or parent[s.id] is None:
            continue
        sub_agent = boundary_name(s)
        wrapper = _tool_name(parent[s.id]) if kinds[parent[s.id].id] == "tool" else None

        def names_it(i: int) -> bool:
            return any(n in (sub_agent, wrapper) or _handoff_tool(n, sub_agent) for _, n, _ in items[i].calls)

        at = (start[s.id], pre[s.id])
        up, up_span = owner(parent[s.id])
        if up != sub_agent and (up_span is not None or any(it.agent == up and it.kind == ACTION for it in items)):
            # nested: the caller's last action before the sub-agent starts (preferably one that names it)
            cands = [i for i, it in enumerate(items) if it.kind == ACTION and it.agent == up and keys[i][:2] < at]
            cands = [i for i in cands if names_it(i)] or cands
        else:
            # side by side (LangGraph nodes, sequential agents): the agent its graph.node.parent_id
            # names (CrewAI's previous agent), else an action that names it by a tool call
            # ('research_expert', 'transfer_to_research_expert') hands off to it
            before = [i for i, it in enumerate(items) if it.kind == ACTION and it.agent != sub_agent and keys[i][:2] < at]
            node_parent = s.attrs.get("graph.node.parent_id")
            cands = [i for i in before if items[i].agent == node_parent] or [i for i in before if names_it(i)]
        if not cands:
            continue
        j = cands[-1]
        delegations.append((j, sub_agent, s.id))
        if steps[j].to is None:
            steps[j] = dataclasses.replace(steps[j], to=sub_agent)
        elif steps[j].to != sub_agent:
            warn(source, f"step {j} delegates to {steps[j].to!r} and {sub_agent!r}; Step.to keeps the first",
                 step=j, record=label)

    question = next((st.content for st in steps if st.kind == OBSERVATION and st.role in ("user", "human")), None)
    return build_run(
        steps, source=source, run_id=trace or stem, format=NAME, question=question,
        meta={"tool_calls": links, "trace_id": trace or None, "spans": len(spans),
              "delegations": [{"step": j, "to": a, "span": sid} for j, a, sid in delegations]},
    )


def _handoff_tool(tool: str, agent: str) -> bool:
    """Whether a tool's name is a hand-off to ``agent`` ('transfer_to_x', 'handoff_to_x', 'delegate_to_x').

    >>> _handoff_tool("transfer_to_research_expert", "research_expert"), _handoff_tool("search", "research_expert")
    (True, False)
    """
    return tool.lower().endswith(("_to_" + agent.lower(), "to " + agent.lower())) and tool.lower() != agent.lower()


def _subtree(s: _Span, children: dict[str | None, list[_Span]]) -> list[_Span]:
    out, todo = [], [s]
    while todo:
        x = todo.pop()
        out.append(x)
        todo.extend(children.get(x.id, []))
    return out


def _has_output(s: _Span) -> bool:
    return ("gen_ai.output.messages" in s.attrs or any(k.startswith("llm.output_messages.") for k in s.attrs)
            or any(name == "gen_ai.choice" for name, _ in s.events))


# -- entry point ----------------------------------------------------------------------------------


def read(value: Any, source: str, *, lines: list[int] | None = None) -> list[Run]:
    """Every trace in ``value`` as one run (in order of first appearance), ``run_id`` = trace id.

    Raises
    ------
    InputError
        A malformed span (no span id, a bad parent reference, attributes that are neither a
        KeyValue list nor an object, an LLM span whose messages are not JSON), naming the file
        and the span id (or its pointer / line); a trace with no LLM output. In a file of
        several traces, a trace with no LLM, agent or tool span at all (an HTTP or database
        trace beside the agent's) is skipped with a warning instead.
    """
    c = _Collector(source)
    if lines is not None:
        for item, line in zip(value, lines):
            _collect(item, c, (), line)
    elif isinstance(value, list):
        for k, item in enumerate(value):
            _collect(item, c, (k,), None)
    else:
        _collect(value, c, (), None)
    if not c.spans:
        raise InputError(source, "at least one span", got="no spans")
    traces: dict[str, list[_Span]] = {}
    for s in c.spans:
        traces.setdefault(s.trace, []).append(s)
    stem = Path(source).stem
    runs = [_trace_run(t, spans, source, c, stem, skip_plain=len(traces) > 1) for t, spans in traces.items()]
    if not any(runs):
        raise InputError(source, "a trace with LLM calls (nothing to score)", got=f"{len(traces)} trace(s) without any")
    return [r for r in runs if r is not None]
