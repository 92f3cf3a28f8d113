"""Readers for agent-framework logs: OpenHands, SWE-agent, τ-bench / τ²-bench, Magentic-One bare lists.

Each fixture under tests/fixtures/<format>/ is written from the format's own source (see each
reader's module docstring); these tests check detection against every registered reader, agents,
kinds, order, hand-offs, tool-call links, run ids, source ids and labels, and the traps.
"""

import json
import warnings
from pathlib import Path

import pytest

from attribution.errors import InputError, ParseWarning
from attribution.graph import build_graph
from attribution.parse import READERS, apply_roles, check_run, detect_format, load_run, load_runs, read_json

FIXTURES = Path(__file__).parent / "fixtures"
AGENT_FORMATS = ("openhands", "swe-agent", "tau-bench", "magentic-one")


def _fixtures():
    return sorted(p for name in AGENT_FORMATS for p in (FIXTURES / name).iterdir())


def _load(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParseWarning)
        return load_runs(path, **kw)


def _kinds(run):
    return [(s.agent, s.kind) for s in run.steps]


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_detected_by_its_reader_only(path):
    value, _ = read_json(path)
    assert detect_format(value, str(path)) == path.parent.name
    sure = [name for name, mod in READERS.items() if mod.detect(value) >= 1.0]
    assert sure == [path.parent.name]  # no two readers claim 1.0 on the same value


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_ids_come_from_the_file(path):
    text = path.read_text(encoding="utf-8")
    value, lines = read_json(path)
    for run in _load(path):
        assert run.format == path.parent.name and run.source == str(path)
        assert [s.index for s in run.steps] == list(range(len(run)))
        for s in run.steps:
            if s.origin.id is not None:
                assert json.dumps(s.origin.id)[1:-1] in text or s.origin.id in text
            if s.origin.timestamp is not None:
                assert s.origin.timestamp in text
            node = value if s.origin.line is None else value[lines.index(s.origin.line)]
            for part in s.origin.pointer.split("/")[1:]:  # the pointer resolves to the record
                node = node[int(part)] if isinstance(node, list) else node[part.replace("~1", "/").replace("~0", "~")]
            assert node is not None
        for caller, tool in run.meta.get("tool_calls", []):
            assert run.steps[caller].is_action and not run.steps[tool].is_action and caller < tool
        build_graph(run)


#: The only warnings the fixtures may raise: runs that are skipped on purpose.
EXPECTED_WARNINGS = {
    "output.jsonl": ["line 3: instance 'sympy__sympy-20590' has no history"],
    "retail-tool-calling.json": ["run 5/trial-0 has an empty traj"],
}


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_reads_without_unexpected_warnings(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_runs(path)
    got = [str(w.message) for w in caught]
    expected = EXPECTED_WARNINGS.get(path.name, [])
    assert len(got) == len(expected) and all(e in g for e, g in zip(expected, got)), got


# --- OpenHands ------------------------------------------------------------------------------------


def test_openhands_event_stream():
    run = load_run(FIXTURES / "openhands" / "events.json")
    assert run.run_id == "events" and run.meta["agent_class"] == "CodeActAgent"
    # bookkeeping dropped: recall action 2, agent_state_changed 3 and 8, change_agent_state 16, null 17
    assert [s.origin.id for s in run.steps] == ["0", "1", "4", "5", "6", "7", "9", "10", "11", "12", "13", "14", "15"]
    assert _kinds(run) == [
        ("system", "observation"), ("user", "observation"), ("memory", "observation"),
        ("CodeActAgent", "action"), ("execute_bash", "observation"),
        ("CodeActAgent", "action"),  # delegate
        ("BrowsingAgent", "action"), ("browse", "observation"), ("BrowsingAgent", "action"),
        ("BrowsingAgent", "observation"),  # the delegate's result, back to the parent
        ("CodeActAgent", "action"), ("str_replace_editor", "observation"), ("CodeActAgent", "action"),
    ]
    delegate = run.steps[5]
    assert delegate.to == "BrowsingAgent" and delegate.role == "action:delegate"
    assert run.meta["tool_calls"] == [(3, 4), (6, 7), (5, 9), (10, 11)]  # from 'cause'
    G = build_graph(run)
    assert "handoff" in G.edges[5, 6]["types"] and "calls" in G.edges[3, 4]["types"]
    assert all(s.origin.id_type == "event" and s.origin.timestamp.startswith("2025-05-14T09:12") for s in run.steps)
    assert "Always pin versions" in run.steps[2].content  # the recall observation's instructions


def test_openhands_action_text_is_the_call_as_emitted():
    run = load_run(FIXTURES / "openhands" / "events.json")
    run_cmd, edit = run.steps[3], run.steps[10]
    assert run_cmd.content == ('Let me ask pip which versions exist.\n'
                               '{"name": "execute_bash", "arguments": {"command": "pip index versions numpy"}}')
    assert edit.content.startswith('{"name": "str_replace_editor", "arguments": {"command": "create", ')
    browse = run.steps[6]  # no tool_call_metadata: the action's payload, runtime settings left out
    assert browse.content.endswith('{"name": "browse_interactive", "arguments": {"browser_actions": '
                                   '"goto(\\"https://pypi.org/project/numpy/\\")"}}')
    assert "return_axtree" not in browse.content


def test_openhands_user_message_is_an_observation_not_an_action():
    """The trap: a user message is an *action* event (source user); it is the human, not an agent."""
    events = [
        {"id": 0, "source": "user", "action": "message", "args": {"content": "Fix the bug."}},
        {"id": 1, "source": "agent", "action": "message", "args": {"content": "Which bug?", "wait_for_response": True}},
        {"id": 2, "source": "user", "action": "message", "args": {"content": "The one in a.py."}},
        {"id": 3, "source": "user", "action": "run", "args": {"command": "cat a.py"}},
        {"id": 4, "source": "environment", "observation": "run", "content": "x = 1", "cause": 3, "extras": {}},
        {"id": 5, "source": "agent", "action": "finish", "args": {"final_thought": "Done."}},
    ]
    from attribution.parse import read_runs
    run = read_runs(events, "conv.json")[0]
    assert _kinds(run) == [("user", "observation"), ("agent", "action"), ("user", "observation"),
                           ("user", "observation"), ("run", "observation"), ("agent", "action")]
    assert run.meta["tool_calls"] == []  # the user's own command is not an agent's call


def test_openhands_swebench_output_many_runs(recwarn):
    runs = load_runs(FIXTURES / "openhands" / "output.jsonl")
    assert [r.run_id for r in runs] == ["astropy__astropy-12907", "django__django-11099"]
    assert [r.success for r in runs] == [True, False]
    skipped = [str(w.message) for w in recwarn if issubclass(w.category, ParseWarning)]
    assert any("line 3" in m and "sympy__sympy-20590" in m and "skipped" in m for m in skipped)
    astropy, django = runs
    assert astropy.question.startswith("<uploaded_files>") and astropy.meta["test_result"]["report"]["resolved"]
    assert "instance" not in astropy.meta and "history" not in astropy.meta
    assert {s.origin.line for s in astropy.steps} == {1} and astropy.steps[2].origin.pointer == "/history/2"
    # the old [action, observation] pairs: null observations dropped, pairs opened in order
    assert [s.origin.pointer for s in django.steps] == ["/history/0/0", "/history/1/0", "/history/1/1",
                                                         "/history/2/0", "/history/2/1", "/history/3/0"]
    assert _kinds(django) == [("user", "observation"), ("CodeActAgent", "action"), ("run", "observation"),
                              ("CodeActAgent", "action"), ("user", "observation"), ("CodeActAgent", "action")]
    assert load_run(FIXTURES / "openhands" / "output.jsonl", run_id="django__django-11099").success is False
    assert django.steps[0].origin.id == "0" and "/history/0/1" not in [s.origin.pointer for s in django.steps]


def test_openhands_wrapped_and_warnings(tmp_path):
    events = json.loads((FIXTURES / "openhands" / "events.json").read_text())
    path = tmp_path / "traj.json"
    path.write_text(json.dumps({"trajectory": events[:8] + [
        {"id": 40, "source": "agent", "action": "teleport", "args": {"where": "mars", "thought": "why not"}}]}))
    with pytest.warns(ParseWarning) as record:
        run = load_run(path)
    messages = [str(w.message) for w in record]
    assert any("event 40" in m and "'teleport' is not a known OpenHands action" in m for m in messages)
    assert any("delegation to 'BrowsingAgent' (event 7) has no result" in m for m in messages)
    assert run.steps[-1].content == 'why not\n{"name": "teleport", "arguments": {"where": "mars"}}'
    assert run.steps[-1].agent == "BrowsingAgent"  # still inside the open delegation


def test_openhands_action_without_source_warns():
    from attribution.parse import read_runs
    events = [{"id": 0, "action": "message", "args": {"content": "hi"}},
              {"id": 1, "action": "message", "args": {"content": "hello"}}]
    with pytest.warns(ParseWarning, match="x.json, event 0: an action event without 'source'"):
        run = read_runs(events, "x.json")[0]
    assert [s.kind for s in run.steps] == ["action", "action"]


@pytest.mark.parametrize(
    "events, expected",
    [
        ([{"id": 3, "action": "run", "source": "robot", "args": {}}], "event 3: expected 'source' to be one of"),
        ([{"id": 3, "action": "run", "source": "agent", "args": []}], "event 3: expected 'args' to be an object"),
        ([{"id": 3, "action": "delegate", "source": "agent", "args": {"inputs": {}}}],
         "event 3: expected a delegate action with 'args.agent'"),
        ([{"id": 3, "observation": "run", "content": 7, "extras": {}}], "event 3: expected the event's text"),
        ([{"id": 1, "source": "agent", "action": "run", "args": {"command": "ls"}}, {"id": 2, "content": "x"}, {"oops": 1}],
         "expected an OpenHands event (exactly one of 'action' / 'observation') at /1"),
    ],
)
def test_openhands_bad_input(tmp_path, events, expected):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(events))
    with pytest.raises(InputError) as info:
        load_runs(path, format="openhands")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path)) and expected in msg


def test_openhands_bad_line_names_the_line(tmp_path):
    lines = (FIXTURES / "openhands" / "output.jsonl").read_text().splitlines()
    bad = json.loads(lines[0])
    bad["history"][2]["source"] = "robot"
    path = tmp_path / "output.jsonl"
    path.write_text(lines[1] + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(InputError, match=r"output\.jsonl, line 2, event 2: expected 'source'"):
        load_runs(path)


# --- SWE-agent ------------------------------------------------------------------------------------


def test_swe_agent_history():
    run = load_run(FIXTURES / "swe-agent" / "django__django-11099.traj")
    assert run.run_id == "django__django-11099"  # from replay_config's problem statement
    assert run.meta["read_from"] == "history" and run.meta["info"]["exit_status"] == "submitted"
    assert run.success is None  # a .traj has no resolved label
    assert _kinds(run) == [("system", "observation"), ("demonstration", "observation"), ("environment", "observation"),
                           ("main", "action"), ("environment", "observation"), ("main", "action"),
                           ("environment", "observation"), ("main", "action"), ("environment", "observation")]
    assert run.meta["tool_calls"] == [(3, 4), (5, 6), (7, 8)]  # tool_call_ids
    assert run.steps[3].content == ('Let me find the validators.\n{"name": "bash", "arguments": '
                                    '{"command":"grep -n regex /testbed/django/contrib/auth/validators.py"}}')
    assert run.steps[2].content.startswith("<uploaded_files>")  # content parts flattened
    assert [s.origin.pointer for s in run.steps[:2]] == ["/history/0", "/history/1"]
    assert run.steps[4].role == "tool"


def test_swe_agent_demonstrations_are_not_scored_and_agents_kept():
    """The trap: a demonstration holds assistant turns that are examples, not the run's own output."""
    run = load_run(FIXTURES / "swe-agent" / "astropy__astropy-12907.traj")
    assert run.run_id == "astropy__astropy-12907"  # no replay_config: the file's stem
    demo = run.steps[2]
    assert demo.role == "assistant" and (demo.agent, demo.kind) == ("demonstration", "observation")
    assert run.agents == ["primary", "reviewer"]
    assert [s.index for s in run.steps if s.agent == "reviewer"] == [7]


def test_swe_agent_retry_attempts_and_trajectory_fallback():
    runs = load_runs(FIXTURES / "swe-agent" / "sympy__sympy-20590.traj")
    assert [r.run_id for r in runs] == ["sympy__sympy-20590/attempt-0", "sympy__sympy-20590/attempt-1"]
    assert [r.meta["chosen"] for r in runs] == [False, True]
    first, second = runs
    assert first.meta["read_from"] == "history" and first.steps[0].origin.pointer == "/attempts/0/history/0"
    assert second.meta["read_from"] == "trajectory"
    assert _kinds(second) == [("main", "action"), ("environment", "observation")] * 3
    assert second.meta["tool_calls"] == [(0, 1), (2, 3), (4, 5)]
    # function-calling trajectories keep the call in 'action', not in 'response'
    assert second.steps[0].content == "Let me find the validators.\ngrep -n regex /testbed/django/contrib/auth/validators.py"
    assert second.steps[5].origin.pointer == "/attempts/1/trajectory/2/observation"


def test_swe_agent_observation_with_tool_calls_warns(tmp_path):
    traj = json.loads((FIXTURES / "swe-agent" / "django__django-11099.traj").read_text())
    traj["history"][4]["tool_calls"] = [{"id": "x1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]
    path = tmp_path / "t.traj"
    path.write_text(json.dumps(traj))
    with pytest.warns(ParseWarning, match=r"t\.traj, step 4: a tool entry \(an observation\) carries 1 tool call"):
        run = load_run(path)
    assert not run.steps[4].is_action and '"name": "bash"' in run.steps[4].content


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda t: t["history"][3].update(role="robot"), "step 3: expected a history role among"),
        (lambda t: t["history"][3].update(message_type="dream"), "step 3: expected a message_type among"),
        (lambda t: t["history"][3].update(tool_calls=[{"id": "a"}]), "step 3: expected tool_calls entries"),
        (lambda t: t["history"][3].update(agent=""), "step 3: expected 'agent' to be a non-empty string"),
        (lambda t: t.update(history=[], trajectory=[{"action": "ls", "observation": 3, "response": "r"}]),
         "trajectory step 0: expected 'observation' to be a string"),
    ],
)
def test_swe_agent_bad_input(tmp_path, change, expected):
    traj = json.loads((FIXTURES / "swe-agent" / "django__django-11099.traj").read_text())
    change(traj)
    path = tmp_path / "bad.traj"
    path.write_text(json.dumps(traj))
    with pytest.raises(InputError) as info:
        load_runs(path, format="swe-agent")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path)) and expected in msg


# --- τ-bench / τ²-bench ---------------------------------------------------------------------------


def test_tau_bench_results_many_runs(recwarn):
    runs = load_runs(FIXTURES / "tau-bench" / "retail-tool-calling.json")
    assert [r.run_id for r in runs] == ["0/trial-0", "0/trial-1"]  # task 5 crashed: skipped
    assert any("run 5/trial-0 has an empty traj" in str(w.message) for w in recwarn)
    ok, bad = runs
    assert (ok.success, bad.success) == (True, False) and ok.meta["reward"] == 1.0
    assert ok.question.startswith("You are Yusuf Rossi")
    assert _kinds(ok)[:6] == [("system", "observation"), ("user_simulator", "action"), ("agent", "action"),
                              ("user_simulator", "action"), ("agent", "action"),
                              ("find_user_id_by_name_zip", "observation")]
    assert ok.meta["tool_calls"] == [(4, 5), (6, 7)]
    assert ok.steps[5].origin.id == "call_Yw3nWqGSj1ZNdF2m" and ok.steps[5].origin.id_type == "tool_call"
    assert ok.steps[4].content == ('{"name": "find_user_id_by_name_zip", "arguments": '
                                   '{"first_name":"Yusuf","last_name":"Rossi","zip":"19122"}}')
    assert ok.agents == ["user_simulator", "agent"]
    assert load_run(FIXTURES / "tau-bench" / "retail-tool-calling.json", run_id="0/trial-1") .success is False


def test_tau_bench_react_api_output_is_an_observation():
    run = load_run(FIXTURES / "tau-bench" / "retail-react.json")
    assert _kinds(run) == [("system", "observation"), ("user_simulator", "action"), ("agent", "action"),
                           ("get_order_details", "observation"), ("agent", "action"), ("user_simulator", "action")]
    assert run.meta["tool_calls"] == [(2, 3)]


def test_tau_bench_anthropic_blocks(tmp_path):
    """τ-bench's Claude agent keeps Anthropic blocks: a user message of tool_result blocks is the tool's output."""
    traj = [
        {"role": "user", "content": "Cancel order #W1."},
        {"role": "assistant", "content": [
            {"type": "text", "text": "<thinking>Cancel it.</thinking>"},
            {"type": "tool_use", "id": "toolu_01AbC", "name": "cancel_pending_order", "input": {"order_id": "#W1"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01AbC", "content": "cancelled"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
    ]
    path = tmp_path / "claude.json"
    path.write_text(json.dumps([{"task_id": 1, "trial": 0, "reward": 0.0, "info": {}, "traj": traj}]))
    run = load_run(path)
    assert _kinds(run) == [("user_simulator", "action"), ("agent", "action"), ("cancel_pending_order", "observation"),
                           ("agent", "action")]
    assert run.steps[1].content == ('<thinking>Cancel it.</thinking>\n'
                                    '{"name": "cancel_pending_order", "arguments": {"order_id": "#W1"}}')
    assert run.steps[2].content == "cancelled" and run.steps[2].origin.id == "toolu_01AbC"
    assert run.meta["tool_calls"] == [(1, 2)]


def test_tau2_user_simulator_tool_calls_are_actions():
    """The trap: the user simulator's own tool calls (requestor 'user') are its actions, not observations."""
    runs = load_runs(FIXTURES / "tau-bench" / "telecom-tau2.json")
    assert [r.run_id for r in runs] == ["3f2b9c4e-8d1a-4e0b-9a57-2c6d1e0f7a11", "a7c1d2e3-0f4b-4c5d-8e6f-9a0b1c2d3e4f"]
    run = runs[0]
    assert run.success is True and run.meta["termination_reason"] == "user_stop" and run.meta["trial"] == 0
    call = run.steps[3]
    assert (call.agent, call.kind, call.content) == ("user_simulator", "action", '{"name": "check_status_bar", "arguments": {}}')
    result = run.steps[4]
    assert (result.agent, result.kind, result.origin.id) == ("check_status_bar", "observation", "call_u_7d1f0e")
    assert run.meta["tool_calls"] == [(3, 4), (7, 8)]
    assert run.agents == ["llm_agent", "user_simulator"]  # names from info.*_info.implementation
    assert run.steps[0].origin.timestamp == "2025-06-20T14:03:01.000037"


def test_tau2_multi_tool_message_is_opened():
    run = load_runs(FIXTURES / "tau-bench" / "telecom-tau2.json")[1]
    assert run.success is False
    assert [s.origin.pointer for s in run.steps[2:5]] == [
        "/simulations/1/messages/2", "/simulations/1/messages/3/tool_messages/0", "/simulations/1/messages/3/tool_messages/1"]
    assert run.meta["tool_calls"] == [(2, 3), (2, 4)]
    assert [s.agent for s in run.steps[3:5]] == ["get_customer_by_phone", "get_data_usage"]


def test_tau2_requestor_mismatch_warns(tmp_path):
    data = json.loads((FIXTURES / "tau-bench" / "telecom-tau2.json").read_text())
    data["simulations"][0]["messages"][3]["tool_calls"][0]["requestor"] = "assistant"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.warns(ParseWarning, match=r"step 3: a tool call \('check_status_bar'\) with requestor 'assistant' on a user"):
        load_runs(path)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d[0]["traj"][2].update(role="robot"), "run 0/trial-0, step 2: expected a message role among"),
        (lambda d: d[0]["traj"][4]["tool_calls"][0].pop("function"), "run 0/trial-0, step 4: expected tool calls of the form"),
        (lambda d: d[0].update(reward="yes"), "run 0/trial-0: expected 'reward' to be a number"),
        (lambda d: d[1]["traj"][3].update(content=5), "run 0/trial-1, step 3: expected message content"),
    ],
)
def test_tau_bench_bad_input(tmp_path, change, expected):
    data = json.loads((FIXTURES / "tau-bench" / "retail-tool-calling.json").read_text())
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ParseWarning)
            load_runs(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path)) and expected in msg


# --- Magentic-One ---------------------------------------------------------------------------------


def test_magentic_one_bare_list():
    run = load_run(FIXTURES / "magentic-one" / "mercedes-sosa.json")
    assert run.run_id == "mercedes-sosa" and run.format == "magentic-one"
    assert run.agents == ["Orchestrator", "WebSurfer", "Assistant"]
    assert [(s.index, s.to) for s in run.steps if s.to] == [(3, "WebSurfer"), (6, "Assistant"), (8, "ComputerTerminal")]
    assert run.steps[0].kind == "observation" and run.steps[0].origin.pointer == "/0"
    G = build_graph(run)
    assert "handoff" in G.edges[3, 4]["types"]


def test_magentic_one_jsonl_keeps_lines():
    run = load_run(FIXTURES / "magentic-one" / "file-surfer.jsonl")
    assert [s.origin.line for s in run.steps] == [1, 2, 3, 4, 5]
    assert _kinds(run) == [("human", "observation"), ("Orchestrator", "action"), ("FileSurfer", "action"),
                           ("Orchestrator", "action"), ("Orchestrator", "action")]


def test_magentic_one_code_executor_is_not_scored():
    """The trap: ComputerTerminal relays code output; scoring it would blame the terminal."""
    run = load_run(FIXTURES / "magentic-one" / "mercedes-sosa.json")
    terminal = run.steps[9]
    assert (terminal.agent, terminal.kind) == ("ComputerTerminal", "observation")
    with pytest.warns(ParseWarning, match="'ComputerTerminal' looks like an executor"):
        check_run(apply_roles(run, actors=["ComputerTerminal"]))


def test_magentic_one_does_not_take_plain_chat():
    chat = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    named = [{"role": "Alice", "content": "hi"}, {"role": "Bob", "content": "hello"}]
    assert READERS["magentic-one"].detect(chat) == 0.0 and detect_format(chat) == "chat"
    assert READERS["magentic-one"].detect(named) == 0.0
    only_names = [{"role": "human", "content": "q"}, {"role": "WebSurfer", "content": "a"}]
    assert READERS["magentic-one"].detect(only_names) == 0.8 and detect_format(only_names) == "magentic-one"


def test_chat_refusal_points_to_magentic_one(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps([{"role": "user", "content": "q"}, {"role": "Orchestrator (thought)", "content": "x"}]))
    with pytest.raises(InputError, match="step 1: expected a role among .* use format 'magentic-one'"):
        load_run(path, format="chat")


@pytest.mark.parametrize(
    "messages, step, expected",
    [
        ([{"role": "human", "content": "q"}, {"role": "Orchestrator (daydream)", "content": "x"}], 1, "a Magentic-One role"),
        ([{"role": "human", "content": "q"}, {"role": "user", "content": "x"}, {"role": "WebSurfer (thought)", "content": "y"}],
         1, "a Magentic-One role"),
        ([{"role": "human", "content": "q"}, {"role": "Orchestrator (thought)", "content": None}], 1, "'content' to be a string"),
    ],
)
def test_magentic_one_bad_input(tmp_path, messages, step, expected):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(messages))
    with pytest.raises(InputError) as info:
        load_runs(path, format="magentic-one")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}, step {step}: expected") and expected in msg


def test_magentic_one_matches_who_and_when_hand_crafted(who_and_when):
    """Every Hand-Crafted history, without its wrapper, reads as magentic-one with Who&When's own steps."""
    from attribution.parse import read_runs
    for p in sorted((who_and_when / "Hand-Crafted").glob("*.json")):
        obj = json.loads(p.read_text())
        bare, wrapped = read_runs(obj["history"], str(p)), read_runs(obj, str(p))
        assert bare[0].format == "magentic-one"
        assert [(s.agent, s.kind, s.to, s.content) for s in bare[0].steps] == \
               [(s.agent, s.kind, s.to, s.content) for s in wrapped[0].steps]
