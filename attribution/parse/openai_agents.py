"""OpenAI Agents SDK traces: ``Trace.export()`` / ``Span.export()`` objects, one run per trace.

A file is a JSON list, JSONL, or the exporter's ``{"data": [...]}`` payload of items
``{"object": "trace", "id", "workflow_name", "group_id", "metadata"}`` and
``{"object": "trace.span", "id", "trace_id", "parent_id", "started_at", "ended_at",
"span_data": {"type", ...}, "error"}`` (``agents/tracing/spans.py``, ``traces.py``,
``span_data.py``). Traces may also hold their spans, as custom trace processors write them:
``{"traces": [{"id" | "trace_id", "workflow_name", ..., "spans": [...]}], "count", "timestamp"}``
(any envelope keys), a list or JSONL of such trace objects, or one; a nested span without
``trace_id`` or ``object`` takes its trace's (one whose ``trace_id`` differs is read under its own,
with a warning), and pointers name ``/traces/N/spans/M``. Spans of one ``trace_id`` make one run;
steps follow the span tree (children by ``started_at``, then file order). A span's agent is the
``name`` of its nearest ``agent`` span (itself included). A ``parent_id`` that names no span of the
trace reads the span as a root, with a warning that says when its agent becomes ``assistant``; a
parent chain that loops, or a ``parent_id`` that is not a string, is an error.

=====================================  ===========  ===========================================
span_data ``type``                     kind         step
=====================================  ===========  ===========================================
``generation`` (chat completions:      action       the agent's output messages: content, then
``output`` messages)                                one line per ``tool_calls`` entry
``response`` with an ``output`` (or    action       the output items: message text, reasoning
``response.output``)                                summaries, one line per ``function_call``
``function``                           action +     the call (``name`` + ``input``) is an action
                                       observation  of the agent unless an earlier output of the
                                                    same agent span already holds an unanswered
                                                    call of that name; ``output`` (and ``error``)
                                                    is an observation by the tool ``name``
``handoff``                            ``Step.to``  ``to_agent`` set on ``from_agent``'s last
                                                    step; when it has none, an observation step
                                                    of ``from_agent`` carries it
``guardrail`` with ``triggered``       observation  by the guardrail ``name``
the first generation / response        observation  its ``user`` / ``system`` input messages
``input`` of a trace                                (later inputs repeat the history)
``error`` of any other span (e.g.      observation  by ``"runtime"``, after the span's children
"Max turns exceeded")
``agent``, ``custom``, ``mcp_tools``,  none         bookkeeping (an ``agent`` span only names
``speech``, ``transcription``, ...                  the agent of the spans under it)
=====================================  ===========  ===========================================

A ``function`` span with an ``agent`` span under it is an agent used as a tool
(``Agent.as_tool``): the call sets ``Step.to`` to that agent, whose steps come between the call
and its result. The SDK's own exporter keeps only ``response_id`` on ``response`` spans: then the
agents' text is not in the file and their actions are their tool calls only (warned once per
trace). The format has no labels.

``run_id``: the ``trace_id``. ``Step.origin``: the span ``id`` (``id_type="agents_span"``: the SDK's own
ids, not OpenTelemetry span ids, so they key ``--emit jsonl`` but not Phoenix or OTel), the
trace id, ``started_at`` and the item's JSON pointer (JSONL: its line).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from attribution.errors import InputError
from attribution.parse.chat import build_run
from attribution.parse.common import describe, flatten_content, pointer, text_of, tool_call_text, warn
from attribution.types import ACTION, OBSERVATION, Origin, Run, Step

__all__ = ["NAME", "DESCRIPTION", "ACTIONS", "IDS", "detect", "read"]

NAME = "openai-agents"
DESCRIPTION = ("OpenAI Agents SDK trace exports: {object: trace | trace.span, span_data} items, or traces holding their "
               "spans ({traces: [{..., spans: [...]}]}, count/timestamp envelopes); one run per trace_id")
ACTIONS = ("generation/response outputs and function-call inputs are actions of the enclosing agent span's agent; "
           "function outputs, triggered guardrails and the first user input are observations; handoff spans set "
           "the hand-off")
IDS = "the span id (span_...) and trace id (trace_...), started_at; JSON pointer or JSONL line of the span"

_OBJECTS = ("trace", "trace.span")
_OUTER = "\x00outer_trace"  # the enclosing trace of a nested span whose own trace_id differs
_SILENT = {"agent", "custom", "mcp_tools", "speech", "speech_group", "transcription", "task", "turn"}


def _is_nested(x: Any) -> bool:
    """A trace object holding its spans (``{"id" | "trace_id", ..., "spans": [...]}``)."""
    return isinstance(x, dict) and isinstance(x.get("spans"), list) and x.get("object", "trace") == "trace"


def _nested(value: Any) -> list[tuple[Any, tuple]] | None:
    """The trace objects (and their pointers) of a nested export: ``{"traces": [...]}`` (with any
    envelope keys: ``count``, ``timestamp``...), a list of trace objects, or one trace object."""
    if isinstance(value, dict) and isinstance(value.get("traces"), list) and value["traces"]:
        traces, key = value["traces"], ("traces",)
    elif isinstance(value, list) and value and all(_is_nested(t) for t in value):
        traces, key = value, ()
    elif _is_nested(value):
        return [(value, ())]
    else:
        return None
    if not all(isinstance(t, dict) for t in traces):
        return None
    return [(t, (*key, i)) for i, t in enumerate(traces)]


def _items(value: Any, lines: list[int] | None = None) -> list[tuple[Any, tuple, int | None]] | None:
    """The export items, each with its JSON pointer (inside its JSONL line for JSONL) and line.

    A nested export is flattened: its trace object (without ``spans``) and then its spans, each
    given the trace's id as ``trace_id`` and ``object: "trace.span"`` when it lacks them."""
    nested = _nested(value) if lines is None else (
        [(t, ()) for t in value] if value and all(_is_nested(t) for t in value) else None)
    if nested is not None:
        out: list[tuple[Any, tuple, int | None]] = []
        for n, (trace, base) in enumerate(nested):
            line = lines[n] if lines else None
            trace_id = trace.get("id", trace.get("trace_id"))
            head = {k: v for k, v in trace.items() if k != "spans"}
            out.append(({**head, "object": "trace", "id": trace_id}, base, line))
            for j, span in enumerate(trace["spans"]):
                if isinstance(span, dict) and isinstance(span.get("span_data"), dict):
                    span = {"object": "trace.span", **span}
                    if span.get("trace_id") is None:
                        span["trace_id"] = trace_id
                    elif span["trace_id"] != trace_id:  # a trap: kept under its own trace, said in read()
                        span = {**span, _OUTER: trace_id}
                out.append((span, (*base, "spans", j), line))
        return out
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        return [(x, ("data", k), None) for k, x in enumerate(value["data"])]
    if isinstance(value, dict):
        return [(value, (), None)]
    if isinstance(value, list):
        return [(x, () if lines else (k,), lines[k] if lines else None) for k, x in enumerate(value)]
    return None


def detect(value: Any) -> float:
    """1.0 when the items are Agents SDK exports (``object`` is ``trace`` or ``trace.span``, at least
    one span), flat or nested in trace objects; else 0."""
    found = _items(value)
    if found is None and isinstance(value, list) and value and all(_is_nested(t) for t in value):
        found = _items(value, [0] * len(value))  # JSONL of trace objects
    if not found:
        return 0.0
    objects = [x.get("object") if isinstance(x, dict) else None for x, _, _ in found]
    if "trace.span" in objects and all(o in _OBJECTS for o in objects):
        return 1.0
    return 0.0


def read(value: Any, source: str, *, lines: list[int] | None = None) -> list[Run]:
    """One run per ``trace_id``, in order of first appearance."""
    found = _items(value, lines)
    if found is None:
        raise InputError(source, "a list of Agents SDK trace / span exports, or {traces: [{..., spans: [...]}]}",
                         got=describe(value))
    items = [x for x, _, _ in found]
    places = [(base, line) for _, base, line in found]
    traces: dict[str, dict[str, Any]] = {}
    spans: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for k, item in enumerate(items):
        base, line = places[k]
        where = f"line {line}" if line else f"item {pointer(*base)}" if len(base) > 1 else f"item {k}"
        if not (isinstance(item, dict) and item.get("object") in _OBJECTS):
            raise InputError(source, f"{where} to be an Agents SDK export with 'object' 'trace' or 'trace.span'",
                             got=describe(item))
        if not (isinstance(item.get("id"), str) and item["id"]):
            raise InputError(source, f"{where} ({item['object']}) to have an 'id'", got=repr(item.get("id")))
        if item["object"] == "trace":
            traces[item["id"]] = item
            spans.setdefault(item["id"], [])
            continue
        record = f"span {item['id']}"
        if not (isinstance(item.get("trace_id"), str) and item["trace_id"]):
            raise InputError(source, f"{record} to have a 'trace_id'", got=repr(item.get("trace_id")))
        data = item.get("span_data")
        if not (isinstance(data, dict) and isinstance(data.get("type"), str)):
            raise InputError(source, f"{record} to have 'span_data' with a 'type'", got=describe(data))
        if _OUTER in item:
            warn(source, f"the span's trace_id {item['trace_id']!r} is not that of the trace object holding it "
                         f"({item[_OUTER]!r}): read under its own trace_id", record=record)
        spans.setdefault(item["trace_id"], []).append((k, item))

    runs = []
    for trace_id, members in spans.items():
        if not members:
            warn(source, "a trace with no spans is skipped", record=f"trace {trace_id}")
            continue
        runs.append(_read_trace(trace_id, traces.get(trace_id, {}), members, source, places))
    if not runs:
        raise InputError(source, "at least one span ('object': 'trace.span')", got="traces only")
    return runs


def _order(span: dict[str, Any], position: int) -> tuple[bool, float, int]:
    t = _time(span)
    return t is None, t.timestamp() if t else 0.0, position


def _time(span: dict[str, Any]) -> datetime | None:
    value = span.get("started_at")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _read_trace(trace_id: str, trace: dict[str, Any], members: list[tuple[int, dict[str, Any]]], source: str,
                places: list[tuple[tuple, int | None]]) -> Run:
    by_id = {span["id"]: (k, span) for k, span in members}
    children: dict[str | None, list[tuple[int, dict[str, Any]]]] = {}
    orphans: set[str] = set()
    for k, span in members:
        parent = span.get("parent_id")
        if parent is not None and not (isinstance(parent, str) and parent):
            raise InputError(source, f"span {span['id']} 'parent_id' to be a span id or null", got=describe(parent))
        if parent is not None and parent not in by_id:
            lost = "" if span["span_data"]["type"] == "agent" else (
                ", and no agent span encloses it: its agent (and that of the spans under it) is read as 'assistant'")
            warn(source, f"parent span {parent!r} is not in trace {trace_id}: read as a root{lost}",
                 record=f"span {span['id']}")
            orphans.add(span["id"])
            parent = None
        children.setdefault(parent, []).append((k, span))
    for k, span in members:  # a parent chain that loops would leave its spans unread, without a word
        seen, cur = {span["id"]}, span.get("parent_id")
        while cur in by_id and cur not in orphans:
            if cur in seen:
                raise InputError(source, f"span {span['id']} to have a parent chain that ends at a root",
                                 got=f"a loop through parent_id {cur!r}")
            seen.add(cur)
            cur = by_id[cur][1].get("parent_id")
    for group in children.values():
        # Spans without a start time keep their file position among the others.
        group.sort(key=lambda ks: _order(ks[1], ks[0]))

    steps: list[Step] = []
    links: list[tuple[int, int]] = []
    pending: dict[str, list[list[Any]]] = {}  # agent span id -> [[step, call name, answered]]
    state = {"input_read": False, "bare_responses": 0, "unowned": False}

    def origin(k: int, span: dict[str, Any], *extra: Any) -> Origin:
        # JSONL: the pointer is inside the line's value; a single-span file: inside the value itself.
        base, line = places[k]
        return Origin(id=span["id"], id_type="agents_span", pointer=pointer(*base, *extra),
                      line=line, trace_id=trace_id,
                      timestamp=span.get("started_at") if isinstance(span.get("started_at"), str) else None)

    def add(agent: str, role: str, kind: str, text: str, org: Origin, to: str | None = None) -> int:
        steps.append(Step(index=len(steps), agent=agent, role=role, kind=kind, content=text, to=to, origin=org))
        return len(steps) - 1

    def agent_span_of(span: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The nearest agent span (None when there is none) and the root of the span's chain."""
        cur: dict[str, Any] = span
        while True:
            if cur["span_data"]["type"] == "agent":
                return cur, cur
            parent = cur.get("parent_id")
            if parent not in by_id:
                return None, cur
            cur = by_id[parent][1]

    def agent_name(span: dict[str, Any]) -> tuple[str, str | None]:
        owner, root = agent_span_of(span)
        if owner is None:
            if not state["unowned"] and root["id"] not in orphans:  # an orphan's warning says it already
                warn(source, "an LLM or tool span outside any agent span: its agent is read as 'assistant'",
                     record=f"span {span['id']}")
                state["unowned"] = True
            return "assistant", None
        name = owner["span_data"].get("name")
        if not (isinstance(name, str) and name):
            raise InputError(source, f"span {owner['id']} (agent) to have a 'name'", got=repr(name))
        return name, owner["id"]

    def visit(k: int, span: dict[str, Any]) -> None:
        data, kind_name = span["span_data"], span["span_data"]["type"]
        record = f"span {span['id']}"
        after: list[Any] = []
        if kind_name in ("generation", "response"):
            agent, owner = agent_name(span)
            if not state["input_read"] and data.get("input"):
                state["input_read"] = True
                for j, (who, text) in enumerate(_inputs(data["input"], source, record)):
                    add(who, "input", OBSERVATION, text, origin(k, span, "span_data", "input", j))
            output = data.get("output")
            if output is None and isinstance(data.get("response"), dict):
                output = data["response"].get("output")
            if output is None:
                if kind_name == "response":
                    state["bare_responses"] += 1
            else:
                text, calls = _outputs(output, source, record)
                if text or calls:
                    body = "\n".join(([text] if text else []) + [tool_call_text(n, a) for n, a in calls])
                    i = add(agent, kind_name, ACTION, body, origin(k, span, "span_data", "output"))
                    pending.setdefault(owner or "", []).extend([i, n, False] for n, _ in calls)
        elif kind_name == "function":
            agent, owner = agent_name(span)
            name = data.get("name")
            if not (isinstance(name, str) and name):
                raise InputError(source, f"{record} (function) to have a tool 'name'", got=repr(name))
            sub_agents = [s for _, s in members if s["span_data"]["type"] == "agent" and _under(s, span, by_id)]
            to = sub_agents[0]["span_data"].get("name") if sub_agents else None
            caller = next((p for p in pending.get(owner or "", []) if p[1] == name and not p[2]), None)
            if caller is not None:
                caller[2] = True
                call = caller[0]
                if to is not None and steps[call].to is None:
                    steps[call] = _with_to(steps[call], to)
            else:
                call = add(agent, "function_call", ACTION, tool_call_text(name, data.get("input")),
                           origin(k, span, "span_data", "input"), to=to)
            after = [("result", call, name)]
        elif kind_name == "handoff":
            src, dst = data.get("from_agent"), data.get("to_agent")
            if not (isinstance(src, str) and isinstance(dst, str) and src and dst):
                raise InputError(source, f"{record} (handoff) to have 'from_agent' and 'to_agent'",
                                 got=f"from_agent={src!r}, to_agent={dst!r}")
            last = next((s for s in reversed(steps) if s.agent == src and s.is_action), None)
            if last is not None:
                steps[last.index] = _with_to(last, dst)
            else:
                add(src, "handoff", OBSERVATION, f"handoff: {src} -> {dst}", origin(k, span, "span_data"), to=dst)
        elif kind_name == "guardrail":
            if data.get("triggered"):
                name = data.get("name") if isinstance(data.get("name"), str) else "guardrail"
                add(name, "guardrail", OBSERVATION, f"guardrail {name} triggered", origin(k, span, "span_data"))
        elif kind_name not in _SILENT:
            warn(source, f"span type {kind_name!r} is not read", record=record)

        for ck, child in children.get(span["id"], []):
            visit(ck, child)

        error = span.get("error")
        if kind_name != "function" and isinstance(error, dict) and error.get("message"):
            # e.g. "Max turns exceeded" on an agent span, a model error on a generation: context for later steps.
            detail = f" {text_of(error['data'])}" if error.get("data") else ""
            add("runtime", "error", OBSERVATION, f"Error: {error['message']}{detail}", origin(k, span, "error"))

        for _, call, name in after:
            text = "" if data.get("output") is None else text_of(data["output"])
            error = span.get("error")
            if isinstance(error, dict) and error.get("message"):
                detail = error.get("data")
                text = "\n".join(t for t in (text, f"Error: {error['message']}"
                                             + (f" {text_of(detail)}" if detail else "")) if t)
            i = add(name, "function", OBSERVATION, text, origin(k, span, "span_data", "output"))
            links.append((call, i))

    for k, span in children.get(None, []):
        visit(k, span)

    if state["bare_responses"]:
        warn(source, f"{state['bare_responses']} response span(s) carry no output (the SDK's exporter keeps only "
                     "response_id): the agents' text is missing, their tool calls are their only actions",
             record=f"trace {trace_id}")
    meta = {"tool_calls": links, **{k: trace[k] for k in ("workflow_name", "group_id", "metadata")
                                      if trace.get(k) is not None}}
    question = next((s.content for s in steps if s.role == "input" and s.agent == "user"), None)
    if not steps:
        raise InputError(source, "at least one generation, response or function span", step=None,
                         got=f"trace {trace_id} with only bookkeeping spans")
    return build_run(steps, source=source, run_id=trace_id, format=NAME, question=question, meta=meta)


def _under(span: dict[str, Any], ancestor: dict[str, Any], by_id: dict[str, tuple[int, dict[str, Any]]]) -> bool:
    parent = span.get("parent_id")
    while parent in by_id:
        if parent == ancestor["id"]:
            return True
        parent = by_id[parent][1].get("parent_id")
    return False


def _with_to(step: Step, to: str) -> Step:
    return dataclasses.replace(step, to=to)


def _inputs(value: Any, source: str, record: str) -> list[tuple[str, str]]:
    """(speaker, text) of the user / system / developer messages of an LLM span's input."""
    if isinstance(value, str):
        return [("user", value)]
    if not isinstance(value, list):
        raise InputError(source, f"{record} 'input' to be a string or a list of messages", got=describe(value))
    out = []
    for m in value:
        if isinstance(m, dict) and m.get("role") in ("user", "system", "developer"):
            out.append((m["role"], flatten_content(m.get("content"), source=source, record=record)))
    return out


def _outputs(value: Any, source: str, record: str) -> tuple[str, list[tuple[str, Any]]]:
    """Text and ``(name, arguments)`` calls of a generation's messages or a response's output items."""
    if isinstance(value, str):
        return value, []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InputError(source, f"{record} 'output' to be a list of messages or output items", got=describe(value))
    texts: list[str] = []
    calls: list[tuple[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            raise InputError(source, f"{record} output items to be objects", got=describe(item))
        kind = item.get("type")
        if kind == "function_call" or (kind is None and "role" not in item and "name" in item and "arguments" in item):
            calls.append((str(item.get("name")), item.get("arguments")))
        elif kind == "reasoning":
            summary = item.get("summary") or []
            texts += [p["text"] for p in summary if isinstance(p, dict) and isinstance(p.get("text"), str)]
        elif kind == "message" or "role" in item:
            content = item.get("content")
            if content:
                texts.append(flatten_content(content, source=source, record=record))
            if item.get("refusal"):
                texts.append(str(item["refusal"]))
            for c in item.get("tool_calls") or []:
                fn = c.get("function") if isinstance(c, dict) else None
                if not (isinstance(fn, dict) and isinstance(fn.get("name"), str)):
                    raise InputError(source, f"{record} tool_calls entries to be {{id, function: {{name, arguments}}}}",
                                     got=describe(c))
                calls.append((fn["name"], fn.get("arguments")))
        elif isinstance(kind, str) and kind.endswith("_call"):
            # Hosted tools (web_search_call, file_search_call, computer_call, ...): the model's request.
            args = {k: v for k, v in item.items() if k in ("action", "queries", "arguments", "input")}
            calls.append((kind, json.dumps(args, ensure_ascii=False) if args else {}))
        else:
            raise InputError(source, f"{record} output items of type message, function_call, reasoning or *_call",
                             got=repr(kind))
    return "\n".join(t for t in texts if t), calls
