"""OpenTelemetry traces of LLM agents: OTLP/JSON and the span exports of trace stores.

Shapes read, one module each (one file may hold several traces; one :class:`Run` per trace
id, ``run_id`` = the trace id as written); all are ``--format otel``, detected by confidence:

=====================  ======================================================================
module                 shape
=====================  ======================================================================
:mod:`.otlp`           OTLP/JSON ``{"resourceSpans": [...]}`` (and Tempo's ``batches``), in a
                       ``.json`` file or one request per line (the collector's file exporter)
:mod:`.phoenix`        flat span lists and span trees: Phoenix REST ``{"data": [...]}``,
                       ``{"spans": [...]}``, one span per JSONL line, ``children`` trees
:mod:`.console`        the OpenTelemetry SDK's console exporter: pretty-printed span objects
                       one after another, ids as ``0x…``
:mod:`.jaeger`         Jaeger JSON ``{"data": [{traceID, spans, processes}]}``
:mod:`.langfuse`       Langfuse traces ``{id, observations: [...]}`` and observation pages;
                       JSON-string inputs/outputs decoded, provider envelopes opened
:mod:`.trail`          TRAIL-style exports ``{trace_id, spans: [{span_id, span_name,
                       span_attributes, child_spans}]}``
=====================  ======================================================================

Shared: :mod:`.spans` (the span record every shape is read into), :mod:`.messages` (messages
out of attributes, events and provider envelopes), :mod:`.trace` (one trace to one run).
Trace stores' clients (a Phoenix client, say) hand their span dicts to :func:`read_spans`.

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

A trace with no LLM output is an error naming the trace and where the text was looked for,
except in a file of several traces, where one with no LLM, agent or tool span at all (the app's
HTTP or database traces in a collector file) is skipped with a warning. Two different spans under
one span id are an error naming both; the same span exported twice is read once, with a warning. OTel traces carry no labels: ``mistake_step``/``success`` stay
None; ``run.meta`` keeps ``tool_calls``, ``trace_id``, ``spans`` (how many) and ``delegations``
(step, sub-agent, span id).

Sources: the OTLP/JSON encoding and ``trace.proto``; the OpenInference semantic conventions
(``spec/semantic_conventions.md``, messages and tool-calling pages); the OTel GenAI semantic
conventions (``gen-ai-spans.md``, ``gen-ai-agent-spans.md``, ``gen-ai-input-messages.json``,
``gen-ai-output-messages.json``; the event-based form of v1.36 and before); Phoenix's REST span
model; Langfuse's public API (``TraceWithFullDetails``, ``Observation``); Jaeger's JSON; the
OpenAI chat.completion and Responses API objects, Gemini's ``GenerateContentResponse``, LangChain's
message serialisation; opentelemetry-python's ``ReadableSpan.to_json``; the TRAIL dataset card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attribution.errors import InputError
from attribution.parse.common import describe, pointer
from attribution.parse.otel import console, jaeger, langfuse, otlp, phoenix, trail
from attribution.parse.otel.spans import Collector, _err, _Span
from attribution.parse.otel.trace import trace_run
from attribution.types import Run

__all__ = ["NAME", "DESCRIPTION", "ACTIONS", "IDS", "SHAPES", "detect", "read", "read_spans"]

NAME = "otel"
DESCRIPTION = ("OpenTelemetry traces (OTLP/JSON, collector JSONL, SDK console dumps, Phoenix/Jaeger span exports, "
               "Langfuse traces, TRAIL exports) with OpenInference or GenAI attributes")
ACTIONS = ("an LLM call's output is an action of the agent span that owns it; tool spans' results, the task and "
           "new user messages are observations; a sub-agent span below another agent is a hand-off")
IDS = "span id as written (Langfuse: observation id), trace id = run id, JSON pointer, JSONL line, start time"

#: The shapes this reader knows, by module: each module's one-line SHAPE.
SHAPES = {m.__name__.rsplit(".", 1)[1]: m.SHAPE for m in (otlp, phoenix, console, jaeger, langfuse, trail)}


# -- detection ------------------------------------------------------------------------------------


def detect(value: Any) -> float:
    """1.0 for OTLP/JSON (``resourceSpans``), Jaeger (``traceID`` + ``spans``), Langfuse observations
    (``parentObservationId``), TRAIL spans (``span_attributes`` / ``child_spans``), the SDK's console
    dump (``0x`` ids, ``SpanKind.*``) or spans carrying ``openinference.span.kind``; 0.8 for other
    span lists/trees with span ids (``context.span_id``, ``spanId``...); 0 otherwise. A list (JSONL,
    or a console dump's span stream) is claimed only when every item is."""
    items = value if isinstance(value, list) else [value]
    if not items:
        return 0.0
    confs = [_detect_one(x) for x in items[:200]]
    return min(confs)


def _detect_one(x: Any) -> float:
    if not isinstance(x, dict):
        return 0.0
    if otlp.is_request(x) or jaeger.is_export(x) or trail.is_export(x) or console.is_span(x):
        return 1.0
    if isinstance(x.get("observations"), list):
        return langfuse.trace_confidence(x)
    if langfuse.is_observation(x) or langfuse.is_page(x):
        return 1.0
    for key in ("spans", "data"):
        inner = x.get(key)
        if isinstance(inner, list) and inner and all(isinstance(s, dict) and phoenix.is_span(s) for s in inner):
            return max(phoenix.confidence(s) for s in inner)
    return phoenix.confidence(x) if phoenix.is_span(x) else 0.0


# -- reading --------------------------------------------------------------------------------------


def _collect(item: Any, c: Collector, base: tuple, line: int | None) -> None:
    where = f"line {line}" if line else (pointer(*base) or "/")
    if not isinstance(item, dict):
        raise _err(c.source, where, "an OTLP request, a span, a trace or a Langfuse trace object", describe(item))
    if otlp.is_request(item):
        otlp.collect(c, item, base, line)
    elif jaeger.is_export(item):
        jaeger.collect_export(c, item, base, line)
    elif isinstance(item.get("observations"), list):
        langfuse.collect_trace(c, item, base, line)
    elif langfuse.is_observation(item):
        langfuse.collect_observation(c, item, pointer(*base), line)
    elif langfuse.is_page(item):
        langfuse.collect_page(c, item, base, line)
    elif trail.is_export(item):
        trail.collect(c, item, base, line)
    elif isinstance(item.get("spans"), list) or (isinstance(item.get("data"), list) and not phoenix.is_span(item)):
        phoenix.collect_list(c, item, base, line)
    else:
        phoenix.collect_span(c, item, pointer(*base), line)


def read(value: Any, source: str, *, lines: list[int] | None = None) -> list[Run]:
    """Every trace in ``value`` as one run (in order of first appearance), ``run_id`` = trace id.

    Raises
    ------
    InputError
        A malformed span (no span id, a bad parent reference, two spans sharing one id,
        attributes that are neither a KeyValue list nor an object, a time that is not one, an
        LLM span whose messages are not JSON), naming the file and the span id (or its pointer /
        line); a trace with no LLM output. In a file of several traces, a trace with no LLM,
        agent or tool span at all (an HTTP or database trace beside the agent's) is skipped with
        a warning instead.
    """
    c = Collector(source)
    if lines is not None:
        for item, line in zip(value, lines):
            _collect(item, c, (), line)
    elif isinstance(value, list):
        for k, item in enumerate(value):
            _collect(item, c, (k,), None)
    else:
        _collect(value, c, (), None)
    return _runs(c, source)


def read_spans(spans: list[dict[str, Any]], source: str = "<spans>") -> list[Run]:
    """Runs from span dicts already in memory (Phoenix REST's span shape, or any span object
    :mod:`.phoenix` reads: ``{name, context: {trace_id, span_id}, parent_id, span_kind,
    start_time, end_time, attributes, events}``): one run per trace id. For trace stores'
    clients, which fetch spans and have no file; ``source`` is named in errors and kept as
    ``run.source``; pointers index ``spans``.

    Examples
    --------
    >>> from attribution.parse.otel import read_spans
    >>> spans = [{"name": "chat", "context": {"trace_id": "t1", "span_id": "s1"}, "parent_id": None,
    ...           "span_kind": "LLM", "start_time": "2025-01-01T00:00:00Z",
    ...           "attributes": {"llm.output_messages.0.message.role": "assistant",
    ...                          "llm.output_messages.0.message.content": "hi"}}]
    >>> [(r.run_id, [s.content for s in r.steps]) for r in read_spans(spans)]
    [('t1', ['hi'])]
    """
    if not isinstance(spans, list):
        raise InputError(source, "a list of span objects", got=describe(spans))
    c = Collector(source)
    for k, sp in enumerate(spans):
        if not isinstance(sp, dict):
            raise _err(source, pointer(k), "a span object", describe(sp))
        phoenix.collect_span(c, sp, pointer(k), None)
    return _runs(c, source)


def _runs(c: Collector, source: str) -> list[Run]:
    if not c.spans:
        raise InputError(source, "at least one span", got="no spans")
    traces: dict[str, list[_Span]] = {}
    for s in c.spans:
        traces.setdefault(s.trace, []).append(s)
    stem = Path(source).stem
    runs = [trace_run(t, spans, source, c, stem, skip_plain=len(traces) > 1) for t, spans in traces.items()]
    if not any(runs):
        raise InputError(source, "a trace with LLM calls (nothing to score)", got=f"{len(traces)} trace(s) without any")
    return [r for r in runs if r is not None]
