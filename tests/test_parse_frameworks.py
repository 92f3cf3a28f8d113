"""Readers for agent frameworks: AutoGen AgentChat, LangChain / LangGraph, smolagents, OpenAI Agents SDK.

Fixtures under tests/fixtures/<format>/ are hand-written from each framework's source (see the
readers' module docstrings for the classes and fields they follow).
"""

import json
import warnings
from pathlib import Path

import pytest

from attribution.errors import InputError, ParseWarning
from attribution.parse import READERS, detect_format, load_run, load_runs, read_json

FIXTURES = Path(__file__).parent / "fixtures"
FRAMEWORK_FIXTURES = {
    "autogen": ["swarm_team_state.json", "task_results.jsonl"],
    "langchain": ["supervisor_thread_state.json", "swarm_messages_to_dict.json", "dumpd_state.json"],
    "smolagents": ["manager_with_managed_agent.json", "succinct_steps.json"],
    "openai-agents": ["two_traces.jsonl", "sdk_exporter_payload.json"],
}
FOLDER = {"autogen": "autogen", "langchain": "langchain", "smolagents": "smolagents", "openai-agents": "openai_agents"}
ALL = [(fmt, FIXTURES / FOLDER[fmt] / name) for fmt, names in FRAMEWORK_FIXTURES.items() for name in names]


def _load(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParseWarning)
        return load_runs(path, **kw)


def _one(path):
    (run,) = _load(path)
    return run


def _kinds(run):
    return [(s.agent, s.kind) for s in run.steps]


# --- detection: each fixture goes to its reader, and only that reader is sure -------------------


@pytest.mark.parametrize("fmt,path", ALL, ids=[p.name for _, p in ALL])
def test_fixture_is_detected_as_its_format(fmt, path):
    value, _ = read_json(path)
    assert detect_format(value, str(path)) == fmt
    sure = [name for name, mod in READERS.items() if mod.detect(value) >= 1.0]
    assert sure in ([fmt], [])  # never two readers at 1.0
    for run in _load(path):
        assert run.format == fmt
        assert [s.index for s in run.steps] == list(range(len(run)))


@pytest.mark.parametrize("fmt,path", ALL, ids=[p.name for _, p in ALL])
def test_every_origin_id_and_run_id_is_in_the_file(fmt, path):
    text = path.read_text(encoding="utf-8")
    for run in _load(path):
        ids = [s.origin.id for s in run.steps if s.origin.id is not None]
        assert all(f'"{i}"' in text or f": {i}," in text for i in ids), ids
        if run.run_id != path.stem and "/" not in run.run_id:
            assert run.run_id in text
        for s in run.steps:
            assert s.origin.pointer is not None or s.origin.line is not None


@pytest.mark.parametrize(
    "value",
    [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "name": "a", "content": "yo"}],
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "success": False},
        [{"messages": [{"role": "assistant", "content": "x"}]}],
    ],
)
def test_plain_chat_is_still_chat(value):
    assert detect_format(value) == "chat"
    for name, mod in READERS.items():
        if name != "chat":
            assert mod.detect(value) == 0.0, name


# --- AutoGen AgentChat ------------------------------------------------------------------------


def test_autogen_team_state_reads_the_manager_thread():
    run = _one(FIXTURES / "autogen" / "swarm_team_state.json")
    assert _kinds(run) == [
        ("user", "observation"),
        ("travel_agent", "action"),  # ToolCallRequestEvent: transfer_to_flights_refunder
        ("transfer_to_flights_refunder", "observation"),
        ("travel_agent", "action"),  # HandoffMessage
        ("flights_refunder", "action"),  # ThoughtEvent (the streaming chunk before it is dropped)
        ("flights_refunder", "action"),
        ("refund_flight", "observation"),
        ("flights_refunder", "action"),
    ]
    assert [s.role for s in run.steps][3:5] == ["HandoffMessage", "ThoughtEvent"]
    assert run.steps[3].to == "flights_refunder" and all(s.to is None for s in run.steps if s.index != 3)
    assert run.meta["tool_calls"] == [(1, 2), (5, 6)]
    assert run.steps[5].content == '{"name": "refund_flight", "arguments": {"flight_id": "AC-118"}}'
    assert run.steps[0].origin.id == "6a0e3b2c-1d4f-4b8e-9a51-0c2f7e8d9a01"
    assert run.steps[0].origin.timestamp == "2025-06-02T09:14:03.118203Z"
    assert run.steps[6].origin.pointer == "/agent_states/SwarmGroupChatManager/message_thread/7/content/0"
    assert run.steps[3].origin.id_type == "message" and run.steps[1].origin.id_type == "event"
    assert run.question == "I need to refund flight AC-118."
    assert run.meta["current_speaker"] == "flights_refunder"
    assert (run.mistake_step, run.mistake_agent, run.success) == (None, None, None)
    assert run.run_id == "swarm_team_state"  # 0.4.9+ keys agent_states by name: no team id


def test_autogen_task_results_jsonl_multimodal_code_and_structured():
    first, second = _load(FIXTURES / "autogen" / "task_results.jsonl")
    assert (first.run_id, second.run_id) == ("task_results/0", "task_results/1")
    assert first.steps[0].content == "What does this chart say about Q3?\n<image>"
    assert _kinds(first) == [("user", "observation"), ("analyst", "action"), ("critic", "action")]
    assert first.meta["stop_reason"] == "Text 'APPROVE' mentioned"
    assert [s.origin.line for s in first.steps] == [1, 1, 1] and second.steps[0].origin.line == 2
    assert _kinds(second) == [("user", "observation"), ("coder", "action"), ("coder", "observation"),
                              ("coder", "action")]
    assert second.steps[2].content == "4\n"
    assert second.steps[3].content == '{"answer":4,"confidence":"high"}'  # model_dump_json: compact


def _team(thread, **extra):
    return {"type": "TeamState", "version": "1.0.0",
            "agent_states": {"RoundRobinGroupChatManager/9f2c": {"type": "RoundRobinManagerState",
                                                                 "message_thread": thread, "current_turn": 1},
                             **extra}}


def test_autogen_old_state_keys_give_the_team_id_and_traps_warn(tmp_path):
    inner = {"type": "ChatAgentContainerState", "message_buffer": [],
             "agent_state": {"type": "SocietyOfMindAgentState", "inner_team_state": {}}}
    thread = [
        {"source": "user", "type": "TextMessage", "content": "go"},
        {"source": "writer", "type": "TextMessage", "content": "draft"},
        {"source": "writer", "type": "ToolCallExecutionEvent",
         "content": [{"call_id": "call_zz", "content": "ok", "is_error": True}]},
        {"source": "code_executor", "type": "TextMessage", "content": "exit code 0"},
        {"source": "writer", "type": "ShoutMessage", "content": "DONE"},
    ]
    path = tmp_path / "team.json"
    path.write_text(json.dumps(_team(thread, **{"society/9f2c": inner})))
    with pytest.warns(ParseWarning) as record:
        (run,) = load_runs(path)
    messages = [str(w.message) for w in record]
    assert run.run_id == "9f2c"
    assert any("inner team" in m and "society/9f2c" in m for m in messages)
    assert any("call_zz" in m and "message 2" in m for m in messages)
    assert any("'ShoutMessage'" in m and "message 4" in m for m in messages)
    assert any("'code_executor' looks like an executor" in m for m in messages)  # check_run
    assert run.steps[2].content == "Error: ok" and run.steps[2].agent == "tool"


@pytest.mark.parametrize(
    "obj,expected",
    [
        ({"type": "TeamState", "agent_states": {"a": {"message_buffer": []}}}, "exactly one group chat manager"),
        (_team([{"source": "a", "type": "TextMessage", "content": "x"}, {"type": "TextMessage", "content": "y"}]),
         "message 1 to be an AgentChat message"),
        (_team([{"source": "a", "type": "ToolCallRequestEvent", "content": "not a list"}]),
         "message 0 (ToolCallRequestEvent) content to be a list of FunctionCall"),
        (_team([{"source": "a", "type": "HandoffMessage", "content": "bye"}]), "message 0 (HandoffMessage)"),
        (_team([{"source": "a", "type": "ModelClientStreamingChunkEvent", "content": "x"}]), "empty message thread"),
    ],
)
def test_autogen_bad_input(tmp_path, obj, expected):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(InputError) as err:
        load_runs(path, format="autogen")
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and expected in msg


# --- LangChain / LangGraph --------------------------------------------------------------------


def test_langgraph_supervisor_thread_state():
    run = _one(FIXTURES / "langchain" / "supervisor_thread_state.json")
    assert run.run_id == "a3f1c9e2-7b4d-4e8a-9c1f-5d2b6e8a0c47"
    assert run.agents == ["supervisor", "research_expert", "math_expert"]
    assert [(s.index, s.to) for s in run.steps if s.to] == [(1, "research_expert"), (6, "supervisor"),
                                                           (8, "math_expert")]
    assert [s.agent for s in run.steps if s.kind == "observation"] == [
        "user", "transfer_to_research_expert", "web_search", "transfer_back_to_supervisor",
        "transfer_to_math_expert", "add"]
    assert run.meta["tool_calls"] == [(1, 2), (3, 4), (6, 7), (8, 9), (10, 11)]
    # arguments kept as the model emitted them when additional_kwargs has the raw string
    assert run.steps[3].content == '{"name": "web_search", "arguments": {"query":"FAANG headcount 2024"}}'
    assert run.steps[10].content == '{"name": "add", "arguments": {"a": 67317, "b": 164000}}'
    assert run.steps[13].origin.id == "run-4f5a6b7c-8d9e-4f0a-1b2c-3d4e5f6a7b8c-0"
    assert run.steps[13].origin.pointer == "/values/messages/13"
    assert run.question.startswith("What was the combined headcount")


def test_langgraph_swarm_messages_to_dict_with_anthropic_parts():
    run = _one(FIXTURES / "langchain" / "swarm_messages_to_dict.json")
    assert _kinds(run) == [("user", "observation"), ("flight_assistant", "action"),
                           ("transfer_to_hotel_advisor", "observation"), ("hotel_advisor", "action"),
                           ("search_hotels", "observation"), ("hotel_advisor", "action")]
    assert run.steps[1].to == "hotel_advisor"
    # tool_use parts are dropped (they repeat tool_calls); thinking is kept as text
    assert run.steps[1].content == ('Let me hand you to our hotel advisor.\n'
                                    '{"name": "transfer_to_hotel_advisor", "arguments": {}}')
    assert run.steps[3].content.startswith("Need availability first.\n{\"name\": \"search_hotels\"")
    assert run.meta["tool_calls"] == [(1, 2), (3, 4)]


def test_langchain_dumpd_state():
    run = _one(FIXTURES / "langchain" / "dumpd_state.json")
    assert _kinds(run) == [("system", "observation"), ("user", "observation"), ("assistant", "action"),
                           ("run_sql", "observation"), ("assistant", "action")]
    assert run.steps[0].origin.id is None and run.steps[1].origin.id == "msg-7Hq2"
    assert run.meta["tool_calls"] == [(2, 3)]


@pytest.mark.filterwarnings("ignore:.*single action step")
def test_langchain_many_states_jsonl_and_trap(tmp_path):
    msg = lambda t, c, **kw: {"type": t, "data": {"content": c, **kw}}  # noqa: E731
    lines = [
        {"messages": [msg("human", "q1"), msg("ai", "a1", name="bot")], "config": {"configurable": {"thread_id": "t-1"}}},
        {"messages": [msg("human", "q2"), msg("ai", "a2"),
                      msg("tool", "r", name="calc", tool_calls=[{"name": "calc", "args": {}, "id": "c9"}])]},
    ]
    path = tmp_path / "threads.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    with pytest.warns(ParseWarning, match=r"line 2, message 2: a 'tool' message carries tool calls"):
        runs = load_runs(path)
    assert [r.run_id for r in runs] == ["t-1", "threads/1"]
    assert runs[1].steps[2].kind == "observation"


@pytest.mark.parametrize(
    "obj,expected",
    [
        ({"messages": [{"type": "ai", "data": {"content": "x"}}, {"type": "android", "data": {}}]},
         "message 1 to be a LangChain message"),
        ([{"type": "ai", "data": {"content": "x", "tool_calls": [{"args": {}}]}}], "message 0 tool_calls[0]"),
        ([{"type": "chat", "data": {"content": "x"}}], "message 0 (a ChatMessage) to have a 'role'"),
        ([{"type": "ai", "data": {"content": 7}}], "message content to be a string or a list of parts"),
        ([{"type": "human", "data": {"content": "only a question"}}], "at least one action step"),
    ],
)
def test_langchain_bad_input(tmp_path, obj, expected):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(InputError) as err:
        load_runs(path, format="langchain")
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and expected in msg


# --- smolagents -------------------------------------------------------------------------------


def test_smolagents_manager_inlines_the_managed_agent():
    run = _one(FIXTURES / "smolagents" / "manager_with_managed_agent.json")
    assert run.run_id == "run-2025-06-14T10-22-07-manager"
    assert _kinds(run) == [
        ("user", "observation"), ("manager", "action"), ("manager", "action"),
        ("manager", "observation"),  # the managed agent's task, written by the manager
        ("web_search_agent", "action"), ("web_search", "observation"),
        ("web_search_agent", "action"), ("final_answer", "observation"),
        ("python_interpreter", "observation"),  # the manager's code output, after the managed run
        ("manager", "action"), ("python_interpreter", "observation"),
        ("manager", "action"), ("python_interpreter", "observation"),
    ]
    assert run.steps[2].to == "web_search_agent" and [s.index for s in run.steps if s.to] == [2]
    assert run.meta["tool_calls"] == [(4, 5), (6, 7), (2, 8), (9, 10), (11, 12)]
    # a CodeAgent's python_interpreter call repeats its code: not appended twice
    assert run.steps[2].content.count("web_search_agent(task=") == 1
    # a ToolCallingAgent's native call (no model_output text) is the action
    assert run.steps[4].content == '{"name": "web_search", "arguments": {"query": "Louvre opened as a museum year"}}'
    assert run.steps[10].content.startswith("Error (AgentExecutionError): Code execution failed")
    assert (run.steps[2].origin.id, run.steps[2].origin.id_type) == ("1", "step_number")
    assert run.steps[2].origin.timestamp == "2025-06-14T10:22:09.480000+00:00"
    assert run.steps[4].origin.pointer == "/managed_agents/web_search_agent/steps/1"
    assert run.question.startswith("How many years ago")


def test_smolagents_bare_list_of_older_steps():
    run = _one(FIXTURES / "smolagents" / "succinct_steps.json")
    assert run.run_id == "succinct_steps" and run.meta["agent"] == "agent"
    assert _kinds(run) == [("system", "observation"), ("user", "observation"), ("agent", "action"),
                           ("get_weather", "observation"), ("agent", "action"), ("final_answer", "observation")]
    # the JSON action text already names the tool: the call is not appended again
    assert run.steps[2].content == 'Action:\n{"name": "get_weather", "arguments": {"city": "Paris"}}'
    assert run.steps[2].origin.timestamp == "2025-01-15T11:20:01.500000+00:00"


def test_smolagents_managed_agent_called_twice_warns(tmp_path):
    call = lambda n: {"step_number": n, "model_output": "", "observations": "ok",  # noqa: E731
                      "tool_calls": [{"id": f"c{n}", "type": "function",
                                      "function": {"name": "helper", "arguments": {"task": "t"}}}]}
    obj = {"name": "boss", "steps": [{"task": "x"}, call(1), call(2)],
           "managed_agents": [{"name": "helper", "steps": [{"task": "t"}, {"step_number": 1, "model_output": "done"}]}]}
    path = tmp_path / "mem.json"
    path.write_text(json.dumps(obj))
    with pytest.warns(ParseWarning, match=r"step 2: managed agent 'helper' is called 2 times"):
        run = load_run(path)
    assert [s.to for s in run.steps if s.to] == ["helper", "helper"]
    assert [s.agent for s in run.steps] == ["user", "boss", "helper", "boss", "boss", "helper", "helper"]


@pytest.mark.parametrize(
    "obj,expected",
    [
        ([{"task": "x"}, {"step_number": 1, "model_output": "a"}, {"weird": 1}], "step 2 to be a smolagents memory step"),
        ({"steps": [{"step_number": "one", "model_output": "a"}]}, "step 0 'step_number' to be an integer"),
        ([{"step_number": 1, "model_output": "a", "tool_calls": [{"id": "x"}]}], "step 0 tool_calls[0]"),
        ({"steps": [{"step_number": 1, "model_output": "a"}], "managed_agents": 3}, "'managed_agents' to be"),
    ],
)
def test_smolagents_bad_input(tmp_path, obj, expected):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(InputError) as err:
        load_runs(path, format="smolagents")
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and expected in msg


# --- OpenAI Agents SDK ------------------------------------------------------------------------


def test_openai_agents_one_run_per_trace_with_handoff_and_tools():
    first, second = _load(FIXTURES / "openai_agents" / "two_traces.jsonl")
    assert first.run_id == "trace_4f9a0c3e1b2d4e5f8a7b6c5d4e3f2a1b"
    assert first.meta["workflow_name"] == "Customer service" and first.meta["group_id"] == "conv_81f2a0"
    assert _kinds(first) == [("system", "observation"), ("user", "observation"), ("Triage Agent", "action"),
                             ("Refund Agent", "action"), ("lookup_order", "observation"),
                             ("Refund Agent", "action"), ("process_refund", "observation"), ("Refund Agent", "action")]
    assert first.steps[2].to == "Refund Agent"  # from the handoff span
    assert first.meta["tool_calls"] == [(3, 4), (5, 6)]  # function spans answer the generations' calls
    assert first.steps[4].origin.id == "span_9b6c5d4e3a2f4b7d4e6f5a7b"
    assert first.steps[4].origin.trace_id == first.run_id and first.steps[4].origin.line == 7
    assert first.steps[4].origin.timestamp == "2025-04-02T15:30:03.010000+00:00"
    assert first.question == "I was charged twice for order 5521."
    # agent as a tool: the nested agent's steps come between the call and its result
    assert _kinds(second) == [("user", "observation"), ("Orchestrator", "action"), ("Spanish Agent", "action"),
                              ("translate_to_spanish", "observation"), ("Orchestrator", "action")]
    assert second.steps[1].to == "Spanish Agent" and second.meta["tool_calls"] == [(1, 3)]
    assert second.steps[4].content == "Relay the translation.\nIn Spanish: la factura está pagada."


def test_openai_agents_exporter_payload_warns_that_text_is_missing():
    path = FIXTURES / "openai_agents" / "sdk_exporter_payload.json"
    with pytest.warns(ParseWarning) as record:
        (run,) = load_runs(path)
    messages = [str(w.message) for w in record]
    assert any("trace trace_0a1b2c3d4e5f40718293a4b5c6d7e8f9: 2 response span(s) carry no output" in m
               for m in messages)
    assert any("single action step" in m for m in messages)  # check_run
    assert _kinds(run) == [("Weather Agent", "action"), ("get_weather", "observation")]
    assert run.steps[0].role == "function_call" and run.steps[0].origin.pointer == "/data/3/span_data/input"
    assert "Error: Error running tool (non-fatal)" in run.steps[1].content


def _span(id, data, parent=None, trace="trace_1", **kw):
    return {"object": "trace.span", "id": id, "trace_id": trace, "parent_id": parent, "span_data": data, **kw}


@pytest.mark.parametrize(
    "items,expected",
    [
        ([_span("span_a", {"type": "agent", "name": "A"}), {"object": "trace.span", "id": "span_b", "trace_id": "trace_1"}],
         "span span_b to have 'span_data' with a 'type'"),
        ([_span("span_a", {"type": "agent", "name": "A"}), {"object": "trace.spam", "id": "x"}],
         "item 1 to be an Agents SDK export"),
        ([_span("span_a", {"type": "agent", "name": "A"}),
          _span("span_h", {"type": "handoff", "from_agent": "A"}, parent="span_a")],
         "span span_h (handoff) to have 'from_agent' and 'to_agent'"),
        ([_span("span_a", {"type": "agent"}), _span("span_f", {"type": "function", "name": "f", "input": "{}"},
                                                     parent="span_a")],
         "span span_a (agent) to have a 'name'"),
        ([{"object": "trace", "id": "trace_1"}], "at least one span"),
    ],
)
@pytest.mark.filterwarnings("ignore::attribution.errors.ParseWarning")
def test_openai_agents_bad_input(tmp_path, items, expected):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(items))
    with pytest.raises(InputError) as err:
        load_runs(path, format="openai-agents")
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and expected in msg


def test_autogen_list_with_a_custom_message_class_is_still_autogen():
    value = [{"source": "user", "type": "TextMessage", "content": "q"},
             {"source": "bot", "type": "MyCustomMessage", "content": "a"}]
    assert detect_format(value) == "autogen"


def test_langgraph_thread_history_is_refused_with_advice(tmp_path):
    state = {"values": {"messages": [{"type": "ai", "content": "a"}]}, "checkpoint": {"thread_id": "t-9"}}
    path = tmp_path / "history.json"
    path.write_text(json.dumps([state, state]))
    with pytest.raises(InputError, match=r"one state per thread .* keep its latest state\); got thread 't-9' 2 times"):
        load_runs(path)


def test_smolagents_nested_managed_agents(tmp_path):
    obj = {"name": "boss", "steps": [{"task": "x"}, {"step_number": 1, "model_output": "mid(task='y')",
                                                      "code_action": "mid(task='y')", "observations": "z"}],
           "managed_agents": {"mid": {"steps": [{"task": "y"}, {"step_number": 1, "model_output": "",
               "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "leaf", "arguments": {"task": "w"}}}],
               "observations": "v"}],
               "managed_agents": [{"name": "leaf", "steps": [{"task": "w"}, {"step_number": 1, "model_output": "v"}]}]}}}
    path = tmp_path / "nested.json"
    path.write_text(json.dumps(obj))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParseWarning)
        run = load_run(path)
    assert [(s.agent, s.kind, s.to) for s in run.steps] == [
        ("user", "observation", None), ("boss", "action", "mid"),
        ("boss", "observation", None), ("mid", "action", "leaf"),  # mid's task; mid calls leaf as a tool
        ("mid", "observation", None), ("leaf", "action", None),  # leaf's task; leaf's answer
        ("leaf", "observation", None),  # leaf's report, as mid's tool result
        ("python_interpreter", "observation", None)]  # boss's code output: mid's report
    assert run.meta["tool_calls"] == [(3, 6), (1, 7)]
    assert run.steps[5].origin.pointer == "/managed_agents/mid/managed_agents/0/steps/1"


def test_openai_agents_span_error_is_an_observation(tmp_path):
    items = [_span("span_a", {"type": "agent", "name": "A"}, error={"message": "Max turns exceeded", "data": {"max_turns": 3}}),
             _span("span_g", {"type": "generation", "output": [{"role": "assistant", "content": "hi"}]}, parent="span_a"),
             _span("span_g2", {"type": "generation", "output": [{"role": "assistant", "content": "again"}]}, parent="span_a")]
    path = tmp_path / "err.json"
    path.write_text(json.dumps(items))
    run = load_run(path)
    assert [(s.agent, s.kind) for s in run.steps] == [("A", "action"), ("A", "action"), ("runtime", "observation")]
    assert run.steps[2].content == 'Error: Max turns exceeded {"max_turns": 3}'
    assert run.steps[2].origin.pointer == "/0/error"


@pytest.mark.filterwarnings("ignore:.*single action step")
def test_openai_agents_single_function_span_file(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(_span("span_f", {"type": "function", "name": "add", "input": "{\"a\":1}", "output": "2"})))
    with pytest.warns(ParseWarning, match="outside any agent span"):
        run = load_run(path)
    assert [(s.agent, s.kind, s.origin.pointer) for s in run.steps] == [
        ("assistant", "action", "/span_data/input"), ("add", "observation", "/span_data/output")]


def test_smolagents_prose_naming_a_tool_keeps_the_call():
    """From smolagents 1.x's own ``AgentMemory.get_full_steps()``: prose that names the tool is not the call."""
    run = _one(FIXTURES / "smolagents" / "library_full_steps.json")
    assert [(s.agent, s.kind) for s in run.steps] == [
        ("user", "observation"), ("agent", "action"), ("get_weather", "observation"), ("agent", "action"),
        ("final_answer", "observation")]
    assert run.steps[1].content == 'I will call get_weather.\n{"name": "get_weather", "arguments": {"city": "Paris"}}'
    assert run.meta["tool_calls"] == [(1, 2), (3, 4)]
