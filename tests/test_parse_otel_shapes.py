"""The OpenTelemetry reader's export shapes of issue 18 and its id/time checks of issue 20: Langfuse
exports whose inputs/outputs are JSON strings of provider envelopes, TRAIL-style span exports, the
OpenTelemetry SDK's console dump, spans sharing one id, and, on every fixture of every format, that no
action step's scored text is a provider envelope."""

import json
import warnings
from pathlib import Path

import pytest

from attribution.errors import InputError, ParseWarning
from attribution.graph import build_graph
from attribution.parse import READERS, load_run, load_runs, read_json
from attribution.parse.otel import SHAPES, read_spans
from attribution.parse.otel.messages import ENVELOPE_KEYS

FIXTURES = Path(__file__).parent / "fixtures"
OTEL = FIXTURES / "otel"


def _table(run):
    return [(s.agent, s.kind[:3], s.role) for s in run.steps]


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParseWarning)
        return fn(*a, **kw)


def _write(tmp_path, obj, name="trace.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


# -- no provider envelope is ever scored -------------------------------------------------------------


def _all_fixture_logs():
    return sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.parent != FIXTURES and "bad" not in p.name
                  and p.suffix in (".json", ".jsonl", ".traj", ".txt", ".log"))


def _envelope(text: str):
    """The text, or one of its lines, as a JSON object carrying a provider envelope's keys."""
    for chunk in [text, *text.splitlines()]:
        try:
            value = json.loads(chunk)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict) and any(k in value for k in ENVELOPE_KEYS):
            return sorted(k for k in ENVELOPE_KEYS if k in value)
    return None


@pytest.mark.parametrize("path", _all_fixture_logs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_action_step_is_a_provider_envelope(path):
    """Generic over tests/fixtures: fixtures added later are covered as they come."""
    for run in _quiet(load_runs, path):
        for s in run.steps:
            if s.is_action:
                assert _envelope(s.content) is None, (run.run_id, s.index, _envelope(s.content), s.content[:200])


def test_the_envelope_check_catches_an_envelope():
    cc = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [], "usage": {}, "system_fingerprint": "fp"}
    assert _envelope(json.dumps(cc)) == ["object", "system_fingerprint", "usage"]
    assert _envelope("thinking\n" + json.dumps({"candidates": []})) == ["candidates"]
    assert _envelope('{"name": "f", "arguments": {}}') is None


# -- Langfuse over OpenTelemetry: JSON strings, provider envelopes, metadata.attributes ---------------


def test_langfuse_export_with_json_string_envelopes():
    path = OTEL / "langfuse_otel_envelopes.json"
    run = load_run(path)
    assert run.run_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert _table(run) == [
        ("user", "obs", "user"),              # from the Responses request's input, not the request config
        ("triage", "act", "assistant"),       # gen_ai.agent.name of the AGENT span (its name is 'Agent')
        ("get_weather", "obs", "tool"),       # the TOOL observation: its own step
        ("triage", "act", "assistant"),
        ("user", "obs", "user"),              # Gemini request contents
        ("planner", "act", "assistant"),      # metadata.attributes stored as a JSON string
        ("user", "obs", "user"),              # LangChain serialised HumanMessage
        ("reviewer", "act", "assistant"),     # the LangGraph node in the observation's metadata
    ]
    # the agent's own words and calls, never the envelope
    assert run.steps[1].content == '{"name": "get_weather", "arguments": {"city":"Paris","day":"Saturday"}}'
    assert run.steps[3].content == ("Rain on Saturday, 14C. Handing over to the planner.\n"
                                    '{"name": "transfer_to_planner", "arguments": {}}')
    assert run.steps[5].content == "Morning: Musee d'Orsay. Afternoon: a picnic by the Seine."
    assert run.steps[7].content == "The picnic clashes with the rain; move it indoors."
    assert run.steps[2].content == '{"sky": "rain", "temperature_c": 14}'
    assert run.steps[0].content == "Plan my Saturday in Paris around the weather."
    assert run.meta["tool_calls"] == [(1, 2)] and run.steps[3].to == "planner"
    text = path.read_text()
    assert all(s.origin.id_type == "observation" and f'"{s.origin.id}"' in text for s in run.steps)
    build_graph(run)


def test_langfuse_task_from_a_request_config_never_its_headers(tmp_path):
    """The trace's input is an HTTP request config: the task is its user message, not the headers."""
    trace = json.loads((OTEL / "langfuse_otel_envelopes.json").read_text())
    trace["observations"] = [o for o in trace["observations"] if o["type"] in ("SPAN", "AGENT", "GENERATION")][:3]
    gen = trace["observations"][2]
    gen["input"] = None  # no user message seen before the first action: the trace's input is the task
    run = load_run(_write(tmp_path, trace))
    assert _table(run)[0] == ("user", "obs", "user")
    assert run.steps[0].content == "Plan my Saturday in Paris around the weather."
    assert "authorization" not in run.steps[0].content


@pytest.mark.parametrize("output, expected", [
    # chat.completion with a tool call
    ({"object": "chat.completion", "choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 1}"}}]}}],
      "usage": {"total_tokens": 3}}, '{"name": "add", "arguments": {"a": 1}}'),
    # Responses API: text and a call
    ({"object": "response", "output": [{"type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": "Adding."}]}, {"type": "function_call", "call_id": "c1", "name": "add",
                                                        "arguments": "{}"}], "usage": {}},
     'Adding.\n{"name": "add", "arguments": {}}'),
    # Gemini, REST camelCase with a function call
    ({"candidates": [{"content": {"role": "model", "parts": [{"text": "Let me add."},
                                                             {"functionCall": {"name": "add", "args": {"a": 1}}}]}}],
      "usageMetadata": {}}, 'Let me add.\n{"name": "add", "arguments": {"a": 1}}'),
    # LangChain message dict with tool calls {name, args, id}
    ({"type": "ai", "content": "", "tool_calls": [{"name": "add", "args": {"a": 1}, "id": "c1"}]},
     '{"name": "add", "arguments": {"a": 1}}'),
    # LangChain LLMResult
    ({"generations": [[{"text": "two", "message": {"lc": 1, "type": "constructor",
                                                    "id": ["langchain", "schema", "messages", "AIMessage"],
                                                    "kwargs": {"content": "two", "type": "ai"}}}]],
      "llm_output": {"token_usage": {}}}, "two"),
    # Anthropic message
    ({"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "Sum: 2"}],
      "usage": {"input_tokens": 1}}, "Sum: 2"),
    # a plain JSON-encoded string
    ("two", "two"),
])
def test_langfuse_generation_output_envelopes(tmp_path, output, expected):
    trace = {"id": "t1", "observations": [
        {"id": "g1", "traceId": "t1", "type": "GENERATION", "name": "llm", "parentObservationId": None,
         "startTime": "2025-01-01T00:00:00Z", "input": json.dumps([{"role": "user", "content": "1+1?"}]),
         "output": json.dumps(output)},
        {"id": "g2", "traceId": "t1", "type": "GENERATION", "name": "llm", "parentObservationId": None,
         "startTime": "2025-01-01T00:00:01Z", "input": None, "output": "done"}]}
    run = load_run(_write(tmp_path, trace))
    assert run.steps[1].content == expected


def test_langfuse_envelope_without_a_message_is_no_step_with_a_warning(tmp_path):
    trace = {"id": "t1", "observations": [
        {"id": "g1", "traceId": "t1", "type": "GENERATION", "name": "llm", "parentObservationId": None,
         "startTime": "2025-01-01T00:00:00Z", "input": "hi", "output": json.dumps({"object": "x", "usage": {}})},
        {"id": "g2", "traceId": "t1", "type": "GENERATION", "name": "llm", "parentObservationId": None,
         "startTime": "2025-01-01T00:00:01Z", "input": None, "output": "done"}]}
    with pytest.warns(ParseWarning, match=r"observation g1: its output is a provider envelope \(keys \['object', 'usage'\]\)"):
        run = load_run(_write(tmp_path, trace))
    assert [s.content for s in run.steps if s.is_action] == ["done"]


# -- TRAIL --------------------------------------------------------------------------------------------


def test_trail_span_export():
    path = OTEL / "trail_gaia.json"
    with pytest.warns(ParseWarning, match="agent span 1a2b3c4d5e6f7a8b has no agent name; using its span name 'CodeAgent.run'"):
        run = load_run(path)
    assert (run.format, run.run_id) == ("otel", "e4d1b2a0c9f84e7da1b2c3d4e5f60718")
    assert _table(run) == [
        ("user", "obs", "user"),
        ("CodeAgent.run", "act", "assistant"),   # calls search_agent in code
        ("CodeAgent.run", "obs", "user"),        # the managed agent's task, by its caller
        ("search_agent", "act", "assistant"),    # named by the manager's smolagents.managed_agents
        ("web_search", "obs", "tool"),
        ("search_agent", "act", "assistant"),
        ("CodeAgent.run", "act", "assistant"),
        ("final_answer", "obs", "tool"),
    ]
    assert run.steps[1].to == "search_agent"
    assert run.steps[4].origin.pointer == "/spans/0/child_spans/0/child_spans/1/child_spans/0/child_spans/1"
    assert run.steps[0].origin.timestamp == "2025-03-19T16:44:00.200Z"
    text = path.read_text()
    assert all(f'"{s.origin.id}"' in text and s.origin.trace_id == run.run_id for s in run.steps)
    value, _ = read_json(path)
    assert READERS["otel"].detect(value) == 1.0


def test_trail_bad_timestamp_and_duration(tmp_path):
    trail = json.loads((OTEL / "trail_gaia.json").read_text())
    trail["spans"][0]["child_spans"][0]["timestamp"] = "soon"
    with pytest.raises(InputError, match=r"span 2b3c4d5e6f7a8b9c .*expected 'timestamp' as a time"):
        _quiet(load_run, _write(tmp_path, trail))


# -- the SDK's console exporter -----------------------------------------------------------------------


def test_sdk_console_dump_is_read():
    """Generated with opentelemetry-sdk 1.45 (ConsoleSpanExporter, SimpleSpanProcessor): spans print as they
    end, children before parents, each pretty-printed over many lines."""
    path = OTEL / "sdk_console_dump.txt"
    run = load_run(path)
    assert run.run_id == "0xf5865726842a6626f236647784a6ddcb"
    assert _table(run) == [
        ("user", "obs", "user"),
        ("planner", "act", "assistant"),
        ("booker", "act", "assistant"),
        ("find_table", "obs", "tool"),
        ("booker", "act", "assistant"),
        ("planner", "act", "assistant"),
    ]
    assert run.steps[1].to == "booker" and run.meta["tool_calls"] == [(2, 3)]
    assert [s.origin.line for s in run.steps] == [1, 1, 34, 66, 107, 169]
    text = path.read_text()
    assert all(s.origin.id.startswith("0x") and f'"{s.origin.id}"' in text for s in run.steps)


def test_a_stream_that_is_not_json_names_both_shapes(tmp_path):
    path = _write(tmp_path, '{\n "name": "a"\n}\n{\n "name": oops\n}\n', name="dump.txt")
    with pytest.raises(InputError, match=r"dump.txt: expected one JSON value per line \(JSONL\), or JSON objects one "
                                         r"after another \(as the OpenTelemetry SDK's console exporter prints spans\)"):
        load_runs(path)


# -- ids and times (issue 20) ---------------------------------------------------------------------------


def _otlp(*spans):
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": list(spans)}]}]}


def _llm_span(sid, text, start="1700000000000000000", **kw):
    return {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": sid, "name": "chat", "startTimeUnixNano": start,
            "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                           {"key": "gen_ai.output.messages", "value": {"stringValue": json.dumps(
                               [{"role": "assistant", "parts": [{"type": "text", "content": text}]}])}}], **kw}


def test_two_different_spans_sharing_an_id_are_refused(tmp_path):
    path = _write(tmp_path, _otlp(_llm_span("aaaaaaaaaaaaaaaa", "one"), _llm_span("aaaaaaaaaaaaaaaa", "two")))
    with pytest.raises(InputError, match=r"span aaaaaaaaaaaaaaaa \(/resourceSpans/0/scopeSpans/0/spans/1\): expected span "
                                         r"ids unique within the trace \(span aaaaaaaaaaaaaaaa is also "
                                         r"span aaaaaaaaaaaaaaaa \(/resourceSpans/0/scopeSpans/0/spans/0\)\)"):
        load_runs(path)


def test_the_same_span_exported_twice_is_read_once(tmp_path):
    span = _llm_span("aaaaaaaaaaaaaaaa", "one")
    path = _write(tmp_path, _otlp(span, span, _llm_span("bbbbbbbbbbbbbbbb", "two", start="1700000000000000001")))
    with pytest.warns(ParseWarning, match="span id aaaaaaaaaaaaaaaa appears twice with the same content; read once"):
        run = load_run(path)
    assert [s.content for s in run.steps] == ["one", "two"]


@pytest.mark.parametrize("bad", ["yesterday", "1.7e18", True, ""])
def test_non_numeric_start_time_is_refused(tmp_path, bad):
    path = _write(tmp_path, _otlp(_llm_span("aaaaaaaaaaaaaaaa", "one", start=bad)))
    if bad == "":
        with pytest.raises(InputError, match="startTimeUnixNano"):
            load_runs(path)
        return
    with pytest.raises(InputError, match=r"span aaaaaaaaaaaaaaaa .*expected 'startTimeUnixNano' as nanoseconds since the "
                                         r"epoch \(a decimal string\)"):
        load_runs(path)


def test_flat_span_time_that_is_no_time_is_refused(tmp_path):
    spans = [{"name": "chat", "context": {"trace_id": "t", "span_id": "s1"}, "span_kind": "LLM", "start_time": "noon",
              "attributes": {"openinference.span.kind": "LLM", "output.value": "hi"}}]
    with pytest.raises(InputError, match=r"span s1 .*expected 'start_time' as a time"):
        load_runs(_write(tmp_path, spans))


def test_llm_spans_without_output_say_where_the_text_was_looked_for(tmp_path):
    """BeeAI-like: the LLM spans carry no output text (it is in other spans): refused, saying where it looked."""
    span = _llm_span("aaaaaaaaaaaaaaaa", "x")
    span["attributes"] = span["attributes"][:1]
    with pytest.raises(InputError, match=r"1 LLM span\(s\) \(e.g. aaaaaaaaaaaaaaaa\) with no output text in "
                                         r"llm.output_messages, gen_ai.output.messages, gen_ai.choice"):
        _quiet(load_runs, _write(tmp_path, _otlp(span)))


# -- the library entry point for trace stores' clients ------------------------------------------------


def test_read_spans_takes_phoenix_rest_span_dicts():
    value, _ = read_json(OTEL / "phoenix_spans.json")
    spans = value["data"] if isinstance(value, dict) else value
    runs = _quiet(read_spans, spans, source="phoenix:project-1")
    want = _quiet(load_runs, OTEL / "phoenix_spans.json")
    assert [r.run_id for r in runs] == [r.run_id for r in want]
    assert [[(s.agent, s.kind, s.content) for s in r.steps] for r in runs] == \
        [[(s.agent, s.kind, s.content) for s in r.steps] for r in want]
    assert runs[0].source == "phoenix:project-1"
    with pytest.raises(InputError, match="phoenix:x: expected a list of span objects"):
        read_spans({"data": []}, source="phoenix:x")


def test_every_shape_module_names_its_shape():
    assert set(SHAPES) == {"otlp", "phoenix", "console", "jaeger", "langfuse", "trail"}
    assert all(isinstance(v, str) and v for v in SHAPES.values())
