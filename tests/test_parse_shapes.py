"""Export shapes of issue 18 (part B) and the reader doubts of issue 20: nested OpenAI Agents traces,
smolagents benchmark output, OpenHands V1 events, AutoGen message lists, a single τ-bench result;
dangling or looping span parents, non-string model output, malformed SWE-agent history, a Who&When
history beside chat messages."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from attribution.errors import InputError, ParseWarning
from attribution.parse import READERS, detect_format, load_runs, read_json

FIXTURES = Path(__file__).parent / "fixtures"

#: (format, fixture) of every shape added here.
SHAPES = [
    ("tau-bench", "tau-bench/retail-single-result.json"),
    ("openai-agents", "openai_agents/nested_traces.json"),
    ("autogen", "autogen/task_result_messages.json"),
    ("smolagents", "smolagents/benchmark_output.jsonl"),
    ("smolagents", "smolagents/chat_messages.json"),
    ("openhands", "openhands/v1_events.jsonl"),
]


def _load(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParseWarning)
        return load_runs(path, **kw)


def _resolve(value, ptr: str):
    for part in ptr.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


@pytest.mark.parametrize("fmt,name", SHAPES, ids=[n for _, n in SHAPES])
def test_shape_is_detected_read_and_its_ids_are_in_the_file(fmt, name):
    path = FIXTURES / name
    value, lines = read_json(path)
    assert detect_format(value, str(path)) == fmt
    assert [n for n, mod in READERS.items() if mod.detect(value) >= 1.0] == [fmt]
    text = path.read_text(encoding="utf-8")
    for forced in (None, fmt):
        runs = _load(path, format=forced)
        assert runs and all(r.format == fmt for r in runs)
        for run in runs:
            assert any(s.is_action and s.content.strip() for s in run.steps)
            for s in run.steps:
                if s.origin.id is not None:
                    assert json.dumps(s.origin.id) in text or f": {s.origin.id}," in text
                item = value if s.origin.line is None else value[lines.index(s.origin.line)]
                _resolve(item, s.origin.pointer)  # every pointer resolves in the file


# -- τ-bench: one EnvRunResult a file ------------------------------------------------------------


def test_tau_bench_single_result_object_is_one_run():
    (run,) = _load(FIXTURES / "tau-bench/retail-single-result.json")
    many = {r.run_id: r for r in _load(FIXTURES / "tau-bench/retail-tool-calling.json")}
    same = many["0/trial-1"]  # the same conversation, filed as its own trial (run ids stay distinct in the folder)
    assert run.run_id == "0/trial-2"
    assert [(s.agent, s.kind, s.content) for s in run.steps] == [(s.agent, s.kind, s.content) for s in same.steps]
    assert run.success is False and run.meta["extra"]["model"] == "gpt-4o"
    assert run.steps[0].origin.pointer == "/traj/0"


def test_tau_bench_single_result_with_empty_traj_is_refused(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"task_id": 3, "trial": 0, "reward": 0.0, "info": {"error": "boom"}, "traj": []}))
    with pytest.raises(InputError, match="non-empty 'traj'.*boom"):
        load_runs(path)


# -- OpenAI Agents: spans nested in trace objects ----------------------------------------------


def test_openai_agents_nested_traces_read_as_the_flat_export():
    flat = _load(FIXTURES / "openai_agents/two_traces.jsonl")
    nested = _load(FIXTURES / "openai_agents/nested_traces.json")
    assert [r.run_id for r in nested] == [r.run_id for r in flat]
    for a, b in zip(flat, nested):
        assert [(s.agent, s.kind, s.content, s.to, s.origin.id) for s in a.steps] == \
               [(s.agent, s.kind, s.content, s.to, s.origin.id) for s in b.steps]
        assert b.meta["workflow_name"] == a.meta["workflow_name"]
    assert nested[1].steps[0].origin.pointer.startswith("/traces/1/spans/")


def test_openai_agents_nested_traces_jsonl(tmp_path):
    value = json.loads((FIXTURES / "openai_agents/nested_traces.json").read_text())
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in value["traces"]))
    runs = _load(path)
    assert len(runs) == 2 and runs[1].steps[0].origin.line == 2
    assert runs[1].steps[0].origin.pointer.startswith("/spans/")


def _agents_trace():
    items = [json.loads(x) for x in (FIXTURES / "openai_agents/two_traces.jsonl").read_text().splitlines()]
    return [i for i in items if i.get("trace_id", i["id"]) == items[0]["id"]]


def test_openai_agents_dangling_parent_says_the_agent_becomes_assistant(tmp_path):
    items = _agents_trace()
    items[2]["parent_id"] = "span_nowhere"  # the Triage Agent's generation loses its agent span
    path = tmp_path / "t.json"
    path.write_text(json.dumps(items))
    with pytest.warns(ParseWarning) as caught:
        (run,) = load_runs(path)
    said = [str(w.message) for w in caught if "span_nowhere" in str(w.message)]
    assert len(said) == 1 and "'assistant'" in said[0] and "\n" not in said[0]
    assert "assistant" in {s.agent for s in run.steps}


@pytest.mark.parametrize("parent,expected", [("self", "loop"), (["x"], "parent_id"), (7, "parent_id")])
def test_openai_agents_looping_or_malformed_parent_is_refused(tmp_path, parent, expected):
    items = _agents_trace()
    items[2]["parent_id"] = items[2]["id"] if parent == "self" else parent
    path = tmp_path / "t.json"
    path.write_text(json.dumps(items))
    with pytest.raises(InputError, match=expected):
        load_runs(path)


# -- AutoGen: TaskResult.messages dumps ----------------------------------------------------------


def test_autogen_message_list_dump_and_a_list_of_them(tmp_path):
    (run,) = _load(FIXTURES / "autogen/task_result_messages.json")
    assert [(s.agent, s.kind) for s in run.steps] == [
        ("user", "observation"), ("weather_agent", "action"), ("get_weather", "observation"),
        ("weather_agent", "observation"), ("critic", "action"), ("weather_agent", "action")]
    value = json.loads((FIXTURES / "autogen/task_result_messages.json").read_text())
    many = tmp_path / "many.json"
    many.write_text(json.dumps([value, value[:5]]))
    runs = _load(many)
    assert [len(r.steps) for r in runs] == [6, 5] and runs[1].steps[1].origin.pointer == "/1/1"
    lines = tmp_path / "lines.jsonl"  # one message a line: the pointer is inside the line
    lines.write_text("".join(json.dumps(m) + "\n" for m in value))
    (run,) = _load(lines)
    assert [(s.origin.line, s.origin.pointer) for s in run.steps][:3] == [(1, ""), (2, ""), (3, "/content/0")]
    each = tmp_path / "each.jsonl"  # one message list a line: one run each
    each.write_text(json.dumps(value) + "\n" + json.dumps(value[:5]) + "\n")
    assert [r.steps[1].origin.line for r in _load(each)] == [1, 2]


# -- smolagents: benchmark records and ChatMessage lists -----------------------------------------


def test_smolagents_benchmark_records_score_the_calls_not_the_framework_rendering():
    tool_calling, code = _load(FIXTURES / "smolagents/benchmark_output.jsonl")
    assert tool_calling.run_id == "benchmark_output/0" and tool_calling.question == "What is the weather in Paris?"
    assert [(s.agent, s.kind) for s in tool_calling.steps] == [
        ("system", "observation"), ("user", "observation"), ("agent", "action"), ("get_weather", "observation"),
        ("agent", "action"), ("final_answer", "observation")]
    assert tool_calling.steps[2].content == '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    assert tool_calling.meta["true_answer"] == "31 degrees and sunny" and tool_calling.meta["tool_calls"] == [(2, 3), (4, 5)]
    # a CodeAgent: the assistant text is the action, the tool-call restating it is skipped
    assert [s.role for s in code.steps] == ["system", "user", "assistant", "tool-response", "assistant", "tool-response"]
    assert code.steps[3].agent == "python_interpreter" and code.steps[3].origin.pointer == "/intermediate_steps/4"


def test_smolagents_older_benchmark_assistant_text_then_tool_call(tmp_path):
    msgs = [{"role": "user", "content": [{"type": "text", "text": "New task:\n2+2?"}], "tool_calls": None},
            {"role": "assistant", "content": [{"type": "text", "text": "Tool call call_1: calling 'python_interpreter' "
                                                                       "with arguments: {'code': '2+2'}"}]},
            {"role": "tool-call", "content": [{"type": "text", "text": "Calling tools:\n[{'id': 'call_1', 'type': "
                                               "'function', 'function': {'name': 'python_interpreter', "
                                               "'arguments': {'code': '2+2'}}}]"}]},
            {"role": "tool-response", "content": [{"type": "text", "text": "Observation:\n4"}]},
            {"role": "assistant", "content": "The answer is 5."}]
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"question": "2+2?", "answer": "5", "true_answer": "4", "agent_error": "boom",
                                "intermediate_steps": msgs}))
    with pytest.warns(ParseWarning, match="raised an error"):
        (run,) = load_runs(path)
    assert [(s.agent, s.kind, s.role) for s in run.steps] == [
        ("user", "observation", "user"), ("agent", "action", "assistant"),
        ("python_interpreter", "observation", "tool-response"), ("agent", "action", "assistant")]


@pytest.mark.parametrize("obj,expected", [
    ({"question": "q", "intermediate_steps": []}, "empty list"),
    ({"question": "q", "intermediate_steps": [{"role": "user", "content": "x"}, {"role": "wizard", "content": "y"}]},
     "intermediate_steps\\[1\\]"),
    ({"steps": [{"task": "t"}, {"step_number": 1, "model_output": {"text": "hi"}}]}, "'model_output' to be"),
    ([{"task": "t"}, {"step_number": 1, "model_output": 42}], "step 1 'model_output'"),
])
def test_smolagents_bad_records_and_model_output(tmp_path, obj, expected):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(InputError, match=expected):
        load_runs(path)


# -- OpenHands V1 (agent SDK) events -------------------------------------------------------------


def test_openhands_v1_events_jsonl():
    (run,) = _load(FIXTURES / "openhands/v1_events.jsonl")
    assert [(s.agent, s.kind) for s in run.steps] == [
        ("system", "observation"), ("user", "observation"), ("agent", "action"), ("terminal", "observation"),
        ("agent", "action"), ("agent", "action"), ("file_editor", "observation"), ("terminal", "observation"),
        ("agent", "action"), ("finsh", "observation"), ("agent", "action")]
    first, second = run.steps[4:6]  # two parallel calls of one LLM response: the thought is in the first
    assert first.content.startswith("add() subtracts.") and second.content.startswith('{"name": "terminal"')
    assert (first.origin.line, second.origin.line) == (6, 7)
    assert run.steps[7].content.startswith("Tool Execution Error. ")
    assert run.meta["tool_calls"] == [(2, 3), (4, 6), (5, 7), (8, 9)]
    assert run.question.startswith("The test in tests/test_math.py fails")


def test_openhands_v1_json_list_and_wrapper(tmp_path):
    events = [json.loads(x) for x in (FIXTURES / "openhands/v1_events.jsonl").read_text().splitlines()]
    path = tmp_path / "events.json"
    path.write_text(json.dumps({"items": events, "next_page_id": None}))
    (run,) = _load(path)
    assert run.steps[2].origin.pointer == "/items/3" and run.steps[2].origin.id == events[3]["id"]
    path.write_text(json.dumps({"conversation_id": "conv-1", "events": events}))
    assert _load(path)[0].run_id == "conv-1"


def test_openhands_jsonl_errors_name_the_line_not_a_pointer(tmp_path):
    path = tmp_path / "events.jsonl"
    good = {"id": 1, "source": "agent", "action": "run", "args": {"command": "ls"}}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"id": 2, "source": "agent", "action": "run",
                                                            "observation": "run", "args": {}}) + "\n")
    with pytest.raises(InputError, match=r"at line 2\b") as err:
        load_runs(path)
    assert "/1" not in str(err.value)


# -- SWE-agent: a malformed history is an error, not a silent fallback to 'trajectory' -----------


@pytest.mark.parametrize("history,expected", [
    ("oops", "'history' to be a list"),
    ({"role": "user"}, "'history' to be a list"),
    ([{"role": "system", "content": "s", "agent": "main", "message_type": "system_prompt"}, 7], "step 1"),
    ([{"content": "task", "agent": "main", "message_type": "observation"}], "history role"),
])
def test_swe_agent_malformed_history_is_refused(tmp_path, history, expected):
    traj = json.loads((FIXTURES / "swe-agent/django__django-11099.traj").read_text())
    assert traj["trajectory"]  # a trajectory to fall back on is there
    traj["history"] = history
    path = tmp_path / "t.traj"
    path.write_text(json.dumps(traj))
    with pytest.raises(InputError, match=expected):
        load_runs(path, format="swe-agent")


def test_swe_agent_history_without_own_turns_warns_that_the_task_is_not_read(tmp_path):
    traj = json.loads((FIXTURES / "swe-agent/django__django-11099.traj").read_text())
    traj["history"] = [e for e in traj["history"] if e["role"] != "assistant"]
    path = tmp_path / "t.traj"
    path.write_text(json.dumps(traj))
    with pytest.warns(ParseWarning, match="does not hold the task statement"):
        (run,) = load_runs(path)
    assert run.meta["read_from"] == "trajectory"


def test_openai_agents_nested_span_of_another_trace_warns(tmp_path):
    value = json.loads((FIXTURES / "openai_agents/nested_traces.json").read_text())
    first_id = value["traces"][0]["id"]
    value["traces"][1]["spans"][0]["trace_id"] = first_id  # an agent span filed under the wrong trace
    path = tmp_path / "t.json"
    path.write_text(json.dumps(value))
    with pytest.warns(ParseWarning, match="is not that of the trace object holding it"):
        runs = load_runs(path)
    assert len(runs) == 2


#: Keys that only a provider's response envelope has (issue 18): never an action's scored text.
_ENVELOPE = {"usage", "object", "candidates", "system_fingerprint"}


@pytest.mark.parametrize("fmt,name", SHAPES, ids=[n for _, n in SHAPES])
def test_no_action_of_a_new_shape_scores_a_provider_envelope(fmt, name):
    for run in _load(FIXTURES / name):
        for s in run.steps:
            if s.is_action:
                try:
                    value = json.loads(s.content)
                except ValueError:
                    continue
                assert not (isinstance(value, dict) and _ENVELOPE & set(value)), (name, s.index, s.content[:120])


def test_chat_format_names_smolagents_for_its_roles():
    with pytest.raises(InputError, match="a smolagents ChatMessage role: use format 'smolagents'"):
        load_runs(FIXTURES / "smolagents/chat_messages.json", format="chat")


# -- runs of several files that share an id ----------------------------------------------------


def test_diagnose_many_refuses_two_files_whose_runs_share_an_id(tmp_path):
    from attribution.diagnoser import diagnose_many

    chat = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "name": "a", "content": "5"},
            {"role": "assistant", "name": "b", "content": "4"}]
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps({"id": "same", "messages": chat}))
    with pytest.raises(InputError, match="run id 'same' also in .*a.json"):
        diagnose_many(tmp_path)  # refused before any model loads
