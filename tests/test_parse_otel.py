"""The OpenTelemetry reader: OTLP/JSON (OpenInference and GenAI attributes), collector JSONL,
Phoenix span exports, Langfuse traces, Jaeger JSON and span trees."""

import json
import warnings
from pathlib import Path

import pytest

from attribution.errors import InputError, ParseWarning
from attribution.graph import build_graph
from attribution.parse import READERS, detect_format, load_run, load_runs, read_json

FIXTURES = Path(__file__).parent / "fixtures" / "otel"
ALL = sorted(p.name for p in FIXTURES.iterdir())


def _table(run):
    return [(s.agent, s.kind[:3], s.role) for s in run.steps]


def _check_origins(run, path, id_type="span"):
    text = path.read_text()
    for s in run.steps:
        o = s.origin
        assert o.id and f'"{o.id}"' in text, (s.index, o.id)
        assert o.id_type == id_type and o.trace_id == run.run_id and o.timestamp
        assert o.pointer is not None
    assert [s.index for s in run.steps] == list(range(len(run)))
    # causal order: LLM calls by start time (the origin's timestamp); tool results go at their span's end
    stamps = [s.origin.timestamp for s in run.steps if s.is_action]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("name", ALL)
def test_detection_against_every_reader(name):
    value, _ = read_json(FIXTURES / name)
    assert detect_format(value) == "otel"
    confs = {n: float(m.detect(value)) for n, m in READERS.items()}
    assert confs["otel"] >= 0.8 and sum(c == 1.0 for c in confs.values()) <= 1
    assert all(c < confs["otel"] for n, c in confs.items() if n != "otel")


def test_openinference_multi_agent_with_managed_sub_agent():
    path = FIXTURES / "openinference_multi_agent.json"
    run = load_run(path)
    assert (run.format, run.run_id) == ("otel", "5b8efff798038103d269b633813fc60c")
    assert _table(run) == [
        ("user", "obs", "user"),                # the task: the first LLM call's user message
        ("manager", "act", "assistant"),        # calls the search_agent tool
        ("manager", "obs", "user"),             # the sub-agent's task, written by its caller
        ("search_agent", "act", "assistant"),   # named only by the TOOL span that runs it
        ("web_search", "obs", "tool"),
        ("search_agent", "act", "assistant"),
        ("search_agent", "obs", "tool"),        # the sub-agent's answer, as the manager's tool result
        ("manager", "act", "assistant"),
    ]
    assert run.agents == ["manager", "search_agent"]
    assert run.steps[1].to == "search_agent" and all(s.to is None for s in run.steps[2:])
    assert run.steps[1].content.endswith('{"name": "search_agent", "arguments": {"task": "Find the current population of Paris."}}')
    assert run.meta["tool_calls"] == [(3, 4), (1, 6)]  # by tool_call.id, then by name
    assert run.question == "What is the population of the capital of France, doubled?"
    assert [s.origin.id for s in run.steps][:2] == ["a1b2c3d4e5f60718"] * 2
    assert run.steps[4].origin.pointer == "/resourceSpans/0/scopeSpans/0/spans/5"
    assert run.steps[0].origin.timestamp == "2024-06-01T10:00:00.100000+00:00"
    _check_origins(run, path)
    G = build_graph(run)
    assert "handoff" in G.edges[1, 3]["types"] and "calls" in G.edges[3, 4]["types"]
    # the history repeated in later LLM inputs (assistant tool calls, tool messages) is not repeated
    assert sum("2,102,650 inhabitants on 1 January" in s.content for s in run.steps) == 1


def test_genai_messages_attributes_planning_call_and_user_reply():
    path = FIXTURES / "genai_agents.json"
    run = load_run(path)
    assert run.run_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert _table(run) == [
        ("user", "obs", "user"),
        ("travel-app", "act", "assistant"),       # a planning call outside any agent span: the service's
        ("travel_planner", "act", "assistant"),
        ("search_flights", "obs", "tool"),
        ("travel_planner", "act", "assistant"),
        ("travel_planner", "obs", "user"),        # booking_agent's task
        ("booking_agent", "act", "assistant"),
        ("user", "obs", "user"),                  # a user reply mid-run, seen first in a later input
        ("travel_planner", "act", "assistant"),
    ]
    assert run.steps[2].content == '{"name": "search_flights", "arguments": {"from": "BER", "to": "LIS", "date": "2025-06-01"}}'
    assert [s.to for s in run.steps] == [None, "travel_planner", None, None, "booking_agent", None, None, None, None]
    assert run.meta["tool_calls"] == [(2, 3)]
    assert run.steps[7].content == "Great, can you also make it a window seat?"
    # span 5 records its messages structured (AnyValue arrays/kvlists), the others as JSON strings
    assert run.steps[4].origin.id == "5d6e7f8091021324"
    _check_origins(run, path)


def test_genai_event_based_form():
    path = FIXTURES / "genai_events.json"
    run = load_run(path)
    assert _table(run) == [
        ("user", "obs", "user"),
        ("math_tutor", "act", "assistant"),   # the agent's name from the span name 'invoke_agent math_tutor'
        ("calculator", "obs", "tool"),        # the tool span has no result: read from gen_ai.tool.message
        ("math_tutor", "act", "assistant"),
    ]
    assert run.steps[1].content == '{"name": "calculator", "arguments": {"expression": "17*23+9"}}'
    assert run.steps[2].content == "400" and run.meta["tool_calls"] == [(1, 2)]
    assert run.steps[3].content == "17 * 23 + 9 = 400."  # a gen_ai.choice body flattened into attributes
    _check_origins(run, path)


def test_collector_jsonl_two_traces_over_three_lines():
    path = FIXTURES / "collector.jsonl"
    runs = load_runs(path)
    assert [r.run_id for r in runs] == ["7c2d8a1f0e9b4c3d2a1f0e9b8c7d6e5f", "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"]
    a, b = runs
    assert _table(a) == [("user", "obs", "user"), ("support_agent", "act", "assistant"),
                         ("get_order", "obs", "tool"), ("support_agent", "act", "assistant")]
    assert [s.origin.line for s in a.steps] == [1, 1, 3, 3]
    assert a.meta["tool_calls"] == [(1, 2)]
    # trace B has no agent span: its LLM calls belong to the service (instrumentationLibrarySpans, older OTLP)
    assert _table(b) == [("user", "obs", "user"), ("translator", "act", "assistant"),
                         ("user", "obs", "user"), ("translator", "act", "assistant")]
    assert [s.origin.line for s in b.steps] == [2, 2, 2, 2]
    assert b.steps[2].content == "And into Dutch?"
    for r in runs:
        _check_origins(r, path)
    assert load_run(path, run_id=b.run_id).run_id == b.run_id
    with pytest.raises(InputError, match="pass --run ID"):
        load_run(path)


def test_phoenix_span_export():
    path = FIXTURES / "phoenix_spans.json"
    run = load_run(path)
    assert run.run_id == "3f1c2b7a9d8e4f60a1b2c3d4e5f60718"
    assert _table(run) == [
        ("user", "obs", "user"),
        ("supervisor", "act", "assistant"),
        # the researcher's input repeats the supervisor's action: not a new step
        ("researcher", "act", "assistant"),    # flattened attributes, message_content parts
        ("tavily_search", "obs", "tool"),
        ("researcher", "act", "assistant"),    # handed back to the supervisor as a named user message: no new step
        ("supervisor", "act", "assistant"),
    ]
    assert run.steps[1].to == "researcher" and run.meta["tool_calls"] == [(2, 3)]
    assert "U3Bhbj" not in json.dumps([s.origin.to_dict() for s in run.steps])  # the OTel span id, not Phoenix's row id
    _check_origins(run, path)


def test_langfuse_trace_with_observations(tmp_path):
    path = FIXTURES / "langfuse_trace.json"
    run = load_run(path)
    assert run.run_id == "c9a3e1f07b2d4c5e8f6a0b1c2d3e4f50"
    assert _table(run) == [
        ("user", "obs", "user"),
        ("orchestrator", "act", "assistant"),
        ("lookup_order", "obs", "tool"),
        ("orchestrator", "act", "assistant"),
        ("orchestrator", "obs", "user"),      # refund_agent's task ({"messages": [...]} input)
        ("refund_agent", "act", "assistant"),  # a plain-string output; the EVENT observation is no step
        ("user", "obs", "user"),
        ("orchestrator", "act", "assistant"),
    ]
    assert run.steps[3].to == "refund_agent" and run.meta["tool_calls"] == [(1, 2)]
    assert run.steps[5].content == "Refund of 95.90 EUR issued for order 8812."
    _check_origins(run, path, id_type="observation")
    # the same observations as a page of GET /api/public/observations (no trace envelope: no trace input)
    page = {"data": json.loads(path.read_text())["observations"], "meta": {"page": 1, "totalItems": 8}}
    value = {"otel": READERS["otel"].detect(page), **{n: m.detect(page) for n, m in READERS.items() if n != "otel"}}
    assert value["otel"] == 1.0 and max(v for n, v in value.items() if n != "otel") < 1.0
    again = load_run(_write(tmp_path, page))
    assert [(s.agent, s.kind, s.content) for s in again.steps] == [(s.agent, s.kind, s.content) for s in run.steps]
    assert again.steps[2].origin.pointer == "/data/2"


# -- shapes without a fixture file: legacy attributes, Jaeger, span trees --------------------------


def _otlp(spans, service="svc"):
    def av(v):
        if isinstance(v, str):
            return {"stringValue": v}
        if isinstance(v, bool):
            return {"boolValue": v}
        return {"intValue": str(v)}

    out = []
    for sp in spans:
        sp = dict(sp)
        sp["attributes"] = [{"key": k, "value": av(v)} for k, v in sp.get("attributes", {}).items()]
        sp.setdefault("traceId", "11112222333344445555666677778888")
        out.append(sp)
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                               "scopeSpans": [{"scope": {"name": "t"}, "spans": out}]}]}


def _write(tmp_path, obj, name="trace.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_legacy_prompt_completion_attributes(tmp_path):
    path = _write(tmp_path, _otlp([
        {"spanId": "00000000000000a1", "name": "openai.chat", "startTimeUnixNano": "1700000000000000000",
         "attributes": {"llm.request.type": "chat", "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Weather in Oslo?",
                        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.tool_calls.0.id": "c1",
                        "gen_ai.completion.0.tool_calls.0.name": "weather",
                        "gen_ai.completion.0.tool_calls.0.arguments": '{"city":"Oslo"}'}},
        {"spanId": "00000000000000a2", "name": "weather.tool", "startTimeUnixNano": "1700000001000000000",
         "attributes": {"traceloop.span.kind": "tool", "traceloop.entity.name": "weather",
                        "traceloop.entity.output": "-3 C, snow"}},
    ], service="weather-bot"))
    run = load_run(path)
    assert _table(run) == [("user", "obs", "user"), ("weather-bot", "act", "assistant"), ("weather", "obs", "tool")]
    assert run.steps[1].content == '{"name": "weather", "arguments": {"city":"Oslo"}}'
    assert run.meta["tool_calls"] == [(1, 2)]


def test_jaeger_json(tmp_path):
    tid = "4bf92f3577b34da6"
    spans = [
        {"traceID": tid, "spanID": "a000000000000001", "operationName": "invoke_agent coder", "references": [],
         "startTime": 1700000000000000, "duration": 5000000, "processID": "p1",
         "tags": [{"key": "gen_ai.operation.name", "type": "string", "value": "invoke_agent"},
                  {"key": "gen_ai.agent.name", "type": "string", "value": "coder"}], "logs": []},
        {"traceID": tid, "spanID": "a000000000000002", "operationName": "chat",
         "references": [{"refType": "CHILD_OF", "traceID": tid, "spanID": "a000000000000001"}],
         "startTime": 1700000001000000, "duration": 1000000, "processID": "p1",
         "tags": [{"key": "gen_ai.operation.name", "type": "string", "value": "chat"},
                  {"key": "gen_ai.input.messages", "type": "string",
                   "value": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Write hello world."}]}])},
                  {"key": "gen_ai.output.messages", "type": "string",
                   "value": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "print('hello world')"}]}])}],
         "logs": []},
    ]
    path = _write(tmp_path, {"data": [{"traceID": tid, "spans": spans, "processes": {"p1": {"serviceName": "dev"}}}]})
    run = load_run(path)
    assert run.run_id == tid and _table(run) == [("user", "obs", "user"), ("coder", "act", "assistant")]
    assert run.steps[1].origin.pointer == "/data/0/spans/1" and run.steps[1].origin.timestamp.startswith("2023-11-14T22:13:21")


def test_nested_span_tree_and_agent_output_without_llm_spans(tmp_path):
    tree = {"trace_id": "t-1", "span_id": "root", "name": "workflow", "start_time": "2025-01-01T00:00:00Z",
            "attributes": {"input.value": "Plan a party."},
            "children": [
                {"span_id": "s1", "name": "invoke_agent planner", "start_time": "2025-01-01T00:00:01Z",
                 "attributes": {"gen_ai.operation.name": "invoke_agent",
                                "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "Buy cake."}]}]}},
                {"span_id": "s2", "name": "invoke_agent critic", "start_time": "2025-01-01T00:00:02Z",
                 "attributes": {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "critic",
                                "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "And balloons."}]}]}},
            ]}
    run = load_run(_write(tmp_path, tree))
    # a remote agent's output recorded only on its invoke_agent span is its action
    assert _table(run) == [("user", "obs", "user"), ("planner", "act", "assistant"), ("critic", "act", "assistant")]
    assert run.steps[0].content == "Plan a party." and run.steps[2].origin.pointer == "/children/1"


def test_smolagents_managed_agent_named_by_the_managers_tool_call(tmp_path):
    """smolagents runs a managed agent inside the manager's step (no TOOL span); the sub-agent's
    AGENT span is only 'ToolCallingAgent.run': its name is the manager's tool call."""
    out = {"openinference.span.kind": "LLM", "llm.output_messages.0.message.role": "assistant"}
    spans = [
        {"spanId": "f1", "name": "CodeAgent.run", "startTimeUnixNano": "1700000000000000000",
         "attributes": {"openinference.span.kind": "AGENT", "input.value": '{"task": "GDP doubling time?"}',
                        "smolagents.managed_agents.0.name": "search_agent",
                        "smolagents.managed_agents.1.name": "math_agent"}},
        {"spanId": "f2", "parentSpanId": "f1", "name": "Step 1", "startTimeUnixNano": "1700000001000000000",
         "attributes": {"openinference.span.kind": "CHAIN"}},
        {"spanId": "f3", "parentSpanId": "f2", "name": "OpenAIServerModel.generate", "startTimeUnixNano": "1700000002000000000",
         "attributes": {**out, "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "search_agent",
                        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"task": "US GDP growth 2024"}'}},
        {"spanId": "f4", "parentSpanId": "f2", "name": "ToolCallingAgent.run", "startTimeUnixNano": "1700000003000000000",
         "attributes": {"openinference.span.kind": "AGENT"}},
        {"spanId": "f5", "parentSpanId": "f4", "name": "OpenAIServerModel.generate", "startTimeUnixNano": "1700000004000000000",
         "attributes": {**out, "llm.output_messages.0.message.content": "2.8%"}},
        {"spanId": "f6", "parentSpanId": "f1", "name": "OpenAIServerModel.generate", "startTimeUnixNano": "1700000005000000000",
         "attributes": {**out, "llm.output_messages.0.message.content": "About 25 years."}},
    ]
    run = load_run(_write(tmp_path, _otlp(spans)))
    assert _table(run) == [("user", "obs", "user"), ("CodeAgent.run", "act", "assistant"),
                           ("search_agent", "act", "assistant"), ("CodeAgent.run", "act", "assistant")]
    assert run.steps[1].to == "search_agent"
    assert run.steps[0].content == '{"task": "GDP doubling time?"}'  # the root's input.value: no LLM input recorded


def test_langgraph_nodes_are_agents_and_nested_llm_spans_are_read_once(tmp_path):
    """OpenInference's LangChain spans: each LangGraph node is a CHAIN span named after the node, with
    the run's metadata (langgraph_node); the prebuilt agent's inner 'agent'/'tools' nodes are not
    agents. An OpenAI SDK span inside LangChain's span of the same call is not a second action."""
    def chain(sid, parent, name, t, node):
        return {"spanId": sid, "parentSpanId": parent, "name": name, "startTimeUnixNano": str(1700000000000000000 + t),
                "attributes": {"openinference.span.kind": "CHAIN", "metadata": json.dumps({"langgraph_node": node, "langgraph_step": t})}}

    def llm(sid, parent, t, content=None, call=None):
        attrs = {"openinference.span.kind": "LLM", "llm.output_messages.0.message.role": "assistant",
                 "metadata": json.dumps({"langgraph_node": "x"})}
        if content:
            attrs["llm.output_messages.0.message.content"] = content
        if call:
            attrs["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] = call
            attrs["llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments"] = "{}"
        return {"spanId": sid, "parentSpanId": parent, "name": "ChatOpenAI", "startTimeUnixNano": str(1700000000000000000 + t),
                "attributes": attrs}

    spans = [
        {"spanId": "r0", "name": "LangGraph", "startTimeUnixNano": "1700000000000000000",
         "attributes": {"openinference.span.kind": "CHAIN", "input.value": '{"messages": [["user", "Who won the 2022 World Cup?"]]}'}},
        chain("n1", "r0", "supervisor", 1, "supervisor"),
        llm("l1", "n1", 2, call="transfer_to_research_expert"),
        {**llm("l1b", "l1", 3, call="transfer_to_research_expert"), "name": "ChatCompletion"},  # the SDK's own span
        chain("n2", "r0", "research_expert", 10, "research_expert"),
        chain("n3", "n2", "agent", 11, "agent"),
        llm("l2", "n3", 12, call="web_search"),
        chain("n4", "n2", "tools", 13, "tools"),
        {"spanId": "t1", "parentSpanId": "n4", "name": "web_search", "startTimeUnixNano": str(1700000000000000014),
         "attributes": {"openinference.span.kind": "TOOL", "tool.name": "web_search", "output.value": "Argentina"}},
        chain("n5", "n2", "agent", 15, "agent"),
        llm("l3", "n5", 16, content="Argentina won."),
        chain("n6", "r0", "supervisor", 20, "supervisor"),
        llm("l4", "n6", 21, content="Argentina won the 2022 World Cup."),
    ]
    spans.append({"spanId": "l5", "parentSpanId": "n6", "name": "ChatOpenAI", "startTimeUnixNano": "1700000000000000022",
                  "attributes": {"openinference.span.kind": "LLM"}, "status": {"code": 2, "message": "rate limited"}})
    with pytest.warns(ParseWarning, match="1 LLM span.s. record no output .*, e.g. l5; no step for them"):
        run = load_run(_write(tmp_path, _otlp(spans, service="unknown_service")))
    assert _table(run) == [("user", "obs", "user"), ("supervisor", "act", "assistant"),
                           ("research_expert", "act", "assistant"), ("web_search", "obs", "tool"),
                           ("research_expert", "act", "assistant"), ("supervisor", "act", "assistant")]
    assert [s.to for s in run.steps] == [None, "research_expert", None, None, None, None]  # named by the hand-off tool
    assert run.steps[1].origin.id == "l1" and run.meta["tool_calls"] == [(2, 3)]


def test_crewai_agents_named_by_graph_node_id_hand_off_by_graph_node_parent_id(tmp_path):
    """OpenInference's CrewAI spans: AGENT spans named 'Role.task._execute_core' carry graph.node.id
    (the role) and graph.node.parent_id (the agent before them); LLM spans come from the LLM client."""
    def llm(sid, parent, t, content):
        return {"spanId": sid, "parentSpanId": parent, "name": "completion", "startTimeUnixNano": str(1700000000000000000 + t),
                "attributes": {"openinference.span.kind": "LLM", "llm.output_messages.0.message.role": "assistant",
                               "llm.output_messages.0.message.content": content}}

    spans = [
        {"spanId": "c0", "name": "Crew.kickoff", "startTimeUnixNano": "1700000000000000000",
         "attributes": {"openinference.span.kind": "CHAIN", "input.value": '{"id": "k1"}'}},
        {"spanId": "c1", "parentSpanId": "c0", "name": "Website Scraper.scrape-task._execute_core",
         "startTimeUnixNano": "1700000000000000001",
         "attributes": {"openinference.span.kind": "AGENT", "graph.node.id": "Website Scraper", "task_name": "scrape-task"}},
        llm("c2", "c1", 2, "I will scrape http://quotes.toscrape.com/"),
        {"spanId": "c3", "parentSpanId": "c1", "name": "scrape_website.run", "startTimeUnixNano": "1700000000000000003",
         "attributes": {"openinference.span.kind": "TOOL", "tool.name": "scrape_website", "output.value": "quotes..."}},
        llm("c4", "c1", 4, "Final Answer: quotes..."),
        {"spanId": "c5", "parentSpanId": "c0", "name": "Content Analyzer.analyze-task._execute_core",
         "startTimeUnixNano": "1700000000000000010",
         "attributes": {"openinference.span.kind": "AGENT", "graph.node.id": "Content Analyzer",
                        "graph.node.parent_id": "Website Scraper"}},
        llm("c6", "c5", 11, "Final Answer: the first quote is by Albert Einstein."),
    ]
    run = load_run(_write(tmp_path, _otlp(spans)))
    assert [s.agent for s in run.steps] == ["user", "Website Scraper", "scrape_website", "Website Scraper", "Content Analyzer"]
    assert [s.to for s in run.steps] == [None, None, None, "Content Analyzer", None]
    assert run.meta["tool_calls"] == []  # no tool call in the text, no id: the result is not linked by guess


def test_pydantic_ai_v1_spans(tmp_path):
    """Pydantic AI's first instrumentation: an 'agent run' span with agent_name, chat spans whose GenAI
    events sit in one 'events' JSON attribute, 'running tool' spans with tool_response."""
    events1 = [{"event.name": "gen_ai.user.message", "content": "Roll a die for Anne.", "role": "user"},
               {"event.name": "gen_ai.choice", "index": 0, "message": {"role": "assistant", "tool_calls": [
                   {"id": "pyd_ai_1", "type": "function", "function": {"name": "roll_die", "arguments": "{}"}}]}}]
    events2 = events1[:1] + [
        {"event.name": "gen_ai.assistant.message", "role": "assistant", "tool_calls": events1[1]["message"]["tool_calls"]},
        {"event.name": "gen_ai.tool.message", "role": "tool", "id": "pyd_ai_1", "name": "roll_die", "content": "4"},
        {"event.name": "gen_ai.choice", "index": 0, "message": {"role": "assistant", "content": "Anne rolled a 4."}}]
    spans = [
        {"spanId": "p1", "name": "agent run", "startTimeUnixNano": "1700000000000000000",
         "attributes": {"agent_name": "dice_game", "model_name": "gpt-4o"}},
        {"spanId": "p2", "parentSpanId": "p1", "name": "chat gpt-4o", "startTimeUnixNano": "1700000000100000000",
         "attributes": {"gen_ai.operation.name": "chat", "events": json.dumps(events1)}},
        {"spanId": "p3", "parentSpanId": "p1", "name": "running tool", "startTimeUnixNano": "1700000000200000000",
         "endTimeUnixNano": "1700000000300000000",
         "attributes": {"gen_ai.tool.name": "roll_die", "gen_ai.tool.call.id": "pyd_ai_1", "tool_arguments": "{}",
                        "tool_response": "4", "logfire.msg": "running tool: roll_die"}},
        {"spanId": "p4", "parentSpanId": "p1", "name": "chat gpt-4o", "startTimeUnixNano": "1700000000400000000",
         "attributes": {"gen_ai.operation.name": "chat", "events": json.dumps(events2)}},
    ]
    run = load_run(_write(tmp_path, _otlp(spans)))
    assert _table(run) == [("user", "obs", "user"), ("dice_game", "act", "assistant"), ("roll_die", "obs", "tool"),
                           ("dice_game", "act", "assistant")]
    assert run.meta["tool_calls"] == [(1, 2)] and run.steps[3].content == "Anne rolled a 4."


# -- bad input and warnings ----------------------------------------------------------------------

_LLM = {"openinference.span.kind": "LLM", "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "ok"}


@pytest.mark.parametrize(
    "spans, record, expected",
    [
        ([{"name": "x", "attributes": _LLM}], "span /resourceSpans/0/scopeSpans/0/spans/0",
         "expected a span id ('spanId'); got none"),
        ([{"spanId": "b1", "parentSpanId": 7, "attributes": _LLM}], "span b1 (/resourceSpans/0/scopeSpans/0/spans/0)",
         "expected the parent span id to be a string; got a number"),
        ([{"spanId": "b1", "attributes": {"openinference.span.kind": "LLM"}, "events": 3}], None, None),
        ([{"spanId": "b2", "attributes": {"gen_ai.operation.name": "chat", "gen_ai.output.messages": "[{\"role\": "}}],
         "span b2 (/resourceSpans/0/scopeSpans/0/spans/0)", "expected 'gen_ai.output.messages' to hold JSON messages"),
        ([{"spanId": "b3", "attributes": {"openinference.span.kind": "AGENT"}}], "trace 11112222333344445555666677778888",
         "expected at least one LLM call with an output (nothing to score)"),
        ([{"spanId": "b4", "parentSpanId": "b5", "attributes": _LLM}, {"spanId": "b5", "parentSpanId": "b4", "attributes": _LLM}],
         "trace 11112222333344445555666677778888", "a root span"),
    ],
)
def test_bad_spans(tmp_path, spans, record, expected):
    if record is None:  # events that are not a list: attributes/events must have their documented shape
        spans = [{"spanId": "b1", "attributes": {"x": 1}, "events": [3]}]
        record, expected = "span b1 (/resourceSpans/0/scopeSpans/0/spans/0)", "span events as objects"
    path = _write(tmp_path, _otlp(spans))
    with pytest.raises(InputError) as info:
        load_run(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}, {record}: ") and expected in msg


def test_other_traces_in_a_collector_file_are_skipped_with_a_warning(tmp_path):
    agent = _otlp([{"spanId": "g1", "attributes": _LLM}, {"spanId": "g2", "attributes": _LLM}])
    http = _otlp([{"spanId": "h1", "traceId": "99990000999900009999000099990000", "name": "GET /health",
                   "attributes": {"http.request.method": "GET"}}])
    path = _write(tmp_path, json.dumps(agent) + "\n" + json.dumps(http) + "\n", name="otel.jsonl")
    with pytest.warns(ParseWarning, match="trace 99990000999900009999000099990000 has no LLM, agent or tool span; skipped"):
        runs = load_runs(path)
    assert [r.run_id for r in runs] == ["11112222333344445555666677778888"]
    other = json.loads(json.dumps(http).replace("9999", "7777"))
    with pytest.raises(InputError, match=r"otel.jsonl: expected a trace with LLM calls .*; got 2 trace\(s\) without any"):
        with pytest.warns(ParseWarning):
            load_runs(_write(tmp_path, json.dumps(http) + "\n" + json.dumps(other) + "\n", name="otel.jsonl"))
    # one trace alone: the error names it
    with pytest.raises(InputError, match=r"otel.jsonl, trace 9999.*: expected at least one LLM call with an output"):
        load_runs(_write(tmp_path, json.dumps(http), name="otel.jsonl"))


def test_attributes_must_be_a_list_or_an_object(tmp_path):
    req = _otlp([{"spanId": "c1", "attributes": {}}])
    req["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = "llm"
    with pytest.raises(InputError, match=r"trace.json, span c1 \(/resourceSpans/0/scopeSpans/0/spans/0\): expected 'attributes' "):
        load_run(_write(tmp_path, req))
    req["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = [{"value": {"stringValue": "x"}}]
    with pytest.raises(InputError, match=r"span c1 \(/resourceSpans/0/scopeSpans/0/spans/0\): expected attributes as a list of \{key, value\}"):
        load_run(_write(tmp_path, req))


def test_bad_jsonl_line_names_the_line(tmp_path):
    good = json.dumps(_otlp([{"spanId": "d1", "attributes": _LLM}]))
    bad = json.dumps(_otlp([{"name": "no id", "attributes": _LLM}]))
    path = _write(tmp_path, good + "\n" + bad + "\n", name="spans.jsonl")
    with pytest.raises(InputError, match=r"spans.jsonl, line 2, span /resourceSpans/0/scopeSpans/0/spans/0: expected a span id"):
        load_runs(path)


def test_warnings_missing_parent_executor_agent_and_unseen_history(tmp_path):
    spans = [
        {"spanId": "e1", "parentSpanId": "ffffffffffffffff", "name": "code_executor",
         "attributes": {"openinference.span.kind": "AGENT", "agent.name": "code_executor"}},
        {"spanId": "e2", "parentSpanId": "e1", "startTimeUnixNano": "1700000000000000000",
         "attributes": {**_LLM, "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "run it",
                        "llm.input_messages.1.message.role": "assistant", "llm.input_messages.1.message.content": "an old answer"}},
        {"spanId": "e3", "parentSpanId": "e1", "startTimeUnixNano": "1700000001000000000",
         "attributes": {**_LLM, "llm.output_messages.0.message.content": "done"}},
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = load_run(_write(tmp_path, _otlp(spans)))
    msgs = [str(w.message) for w in caught if issubclass(w.category, ParseWarning)]
    assert any("parent span ffffffffffffffff of span e1 is not in the file; read as a root" in m for m in msgs)
    assert any("1 assistant message(s) in LLM inputs match no span's output" in m for m in msgs)
    assert any("'code_executor' looks like an executor" in m for m in msgs)  # check_run's trap, fired on this format
    assert not any("record no output" in m for m in msgs)
    assert all("\n" not in m and m.startswith(str(tmp_path)) for m in msgs)
    assert run.agents == ["code_executor"]
