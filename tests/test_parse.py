import json

import pytest

from attribution.errors import ConfigError, InputError, ParseWarning
from attribution.parse import FORMATS, load_run, load_runs, parse_run

# --- Who&When (the shared copy; skipped when absent) -------------------------------


def _files(root, subset):
    return sorted((root / subset).glob("*.json"), key=lambda p: int(p.stem))


def test_every_who_and_when_file_parses(who_and_when):
    ag = [load_run(p) for p in _files(who_and_when, "Algorithm-Generated")]
    hc = [load_run(p) for p in _files(who_and_when, "Hand-Crafted")]
    assert (len(ag), len(hc)) == (126, 58)
    for run in ag + hc:
        assert run.format == "who-and-when"
        assert isinstance(run.mistake_step, int) and 0 <= run.mistake_step < len(run)
        assert isinstance(run.success, bool) and isinstance(run.mistake_agent, str) and run.question
        assert [s.index for s in run.steps] == list(range(len(run)))
    assert {r.meta["subset"] for r in ag} == {"algorithm-generated"}
    assert {r.meta["subset"] for r in hc} == {"hand-crafted"}
    assert ag[0].run_id == "algorithm-generated/1" and hc[11].run_id == "hand-crafted/12"


def test_algorithm_generated_speakers(who_and_when):
    run = load_run(who_and_when / "Algorithm-Generated" / "1.json")
    assert run.mistake_step == 0 and run.mistake_agent == "Excel_Expert"
    assert [(s.agent, s.kind) for s in run.steps[:3]] == [
        ("Excel_Expert", "action"),
        ("Computer_terminal", "observation"),
        ("BusinessLogic_Expert", "action"),
    ]
    assert run.steps[2].role == "user"  # AG2's point of view, kept raw
    assert run.agents == ["Excel_Expert", "BusinessLogic_Expert", "DataVerification_Expert"]


def test_hand_crafted_speakers(who_and_when):
    run = load_run(who_and_when / "Hand-Crafted" / "1.json")
    first, handoff = run.steps[0], run.steps[3]
    assert (first.agent, first.kind, first.role) == ("human", "observation", "human")
    assert (handoff.agent, handoff.kind, handoff.to) == ("Orchestrator", "action", "WebSurfer")
    assert handoff.role == "Orchestrator (-> WebSurfer)"
    assert run.steps[1].agent == "Orchestrator" and run.steps[1].to is None
    assert run.success is False and run.mistake_step == 12


def test_hand_crafted_computer_terminal_is_observation(who_and_when):
    run = load_run(who_and_when / "Hand-Crafted" / "14.json")
    terminal = [s for s in run.steps if s.agent == "ComputerTerminal"]
    assert terminal and all(s.kind == "observation" for s in terminal)


def test_readme_label_noise(who_and_when):
    """The README says 3 runs per subset label a mistake_agent that is not the speaker."""
    off = []
    for subset in ("Algorithm-Generated", "Hand-Crafted"):
        for p in _files(who_and_when, subset):
            run = load_run(p)
            if run.steps[run.mistake_step].agent != run.mistake_agent:
                off.append(run.run_id)
    assert sorted(off) == sorted(
        ["algorithm-generated/14", "algorithm-generated/15", "algorithm-generated/59",
         "hand-crafted/20", "hand-crafted/22", "hand-crafted/49"]
    )


# --- synthetic Who&When --------------------------------------------------------------


def _hc(history, **labels):
    return {"history": history, "question": "q", "is_corrected": False, **labels}


def test_who_and_when_labels_are_converted_once():
    obj = _hc([{"role": "human", "content": "q"}, {"role": "Orchestrator (termination condition)", "content": "done"}],
              mistake_step="1", mistake_agent="Orchestrator")
    run = parse_run(obj, "x/7.json")
    assert run.mistake_step == 1 and run.run_id == "hand-crafted/7" and run.steps[1].agent == "Orchestrator"


# --- chat ----------------------------------------------------------------------------


TOOL_RUN = [
    {"role": "system", "content": "You are a team."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "name": "planner", "content": "Ask the coder."},
    {"role": "user", "name": "coder", "content": None,
     "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "python", "arguments": "{\"code\": \"2+2\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "name": "python", "content": "4"},
    {"role": "assistant", "content": [{"type": "text", "text": "It is 4."}]},
]


def test_chat_kinds_agents_and_tool_calls():
    run = parse_run(TOOL_RUN, "runs/demo.json")
    assert run.format == "chat" and run.run_id == "demo"
    assert [(s.agent, s.kind) for s in run.steps] == [
        ("system", "observation"),
        ("user", "observation"),
        ("planner", "action"),
        ("coder", "action"),
        ("python", "observation"),
        ("assistant", "action"),
    ]
    assert json.loads(run.steps[3].content) == {"name": "python", "arguments": {"code": "2+2"}}
    assert run.steps[5].content == "It is 4."
    assert run.meta["tool_calls"] == [(3, 4)]


def test_chat_rules_for_humans_unnamed_tools_and_kind_override():
    run = parse_run([
        {"role": "user", "name": "Human", "content": "hi"},
        {"role": "tool", "content": "out"},
        {"role": "user", "name": "executor", "kind": "observation", "content": "exit 0"},
        {"role": "assistant", "content": "ok"},
    ])
    assert [(s.agent, s.kind) for s in run.steps] == [
        ("Human", "observation"), ("tool", "observation"), ("executor", "observation"), ("assistant", "action")]


def test_labelled_chat_and_unlabelled_history_are_chat():
    obj = {"history": TOOL_RUN, "mistake_step": 3, "mistake_agent": "coder", "success": False, "id": 42, "question": "q"}
    run = parse_run(obj)
    assert (run.format, run.run_id, run.mistake_step, run.mistake_agent, run.success) == ("chat", "42", 3, "coder", False)


def test_format_can_be_forced_and_unknown_names_suggest():
    ag = {"history": [{"role": "assistant", "name": "A_Expert", "content": "x"},
                      {"role": "user", "name": "Computer_terminal", "content": "y"}]}
    assert parse_run(ag).steps[1].kind == "action"  # chat rules: a named user is an agent
    assert parse_run(ag, format="who-and-when").steps[1].kind == "observation"
    assert {"chat", "who-and-when"} <= set(FORMATS)
    with pytest.raises(ConfigError, match="who-and-when.*did you mean 'who-and-when'"):
        parse_run(ag, format="who_and_when")


def test_jsonl_one_run_and_many_runs(tmp_path):
    one = tmp_path / "one.jsonl"
    one.write_text("\n".join(json.dumps(m) for m in TOOL_RUN) + "\n")
    assert len(load_run(one)) == 6 and load_runs(one)[0].run_id == "one"

    many = tmp_path / "many.jsonl"
    labelled = [{"messages": TOOL_RUN, "mistake_step": 2, "mistake_agent": "planner"},
                {"messages": TOOL_RUN[:3], "id": "b", "success": True}]
    many.write_text("\n\n".join(json.dumps(r) for r in labelled))
    runs = load_runs(many)
    assert [r.run_id for r in runs] == ["many/0", "b"]
    assert [r.source for r in runs] == [str(many)] * 2 and runs[0].mistake_step == 2
    with pytest.raises(InputError, match="many.jsonl: expected one run .*got 2 runs"):
        load_run(many)

    with pytest.raises(InputError, match="<memory>: expected one run"):
        parse_run(labelled)

    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(labelled))
    assert [len(r) for r in load_runs(as_list)] == [6, 3]


# --- bad input: one InputError naming the file and the step ----------------------------


def _write(tmp_path, obj, name="bad.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


@pytest.mark.parametrize(
    "obj, step, expected",
    [
        ('[{"role": "user", "content": "x"},\n  oops]', None, "valid JSON; got Expecting value at line 2, column 3"),
        ("", None, "empty file"),
        (7, None, "a run log in one of the known formats (who-and-when, "),
        ({"steps": []}, None, "known formats (who-and-when, "),
        ({"steps": []}, None, "got an object with top-level keys ['steps']"),
        ([{"role": "assistant", "content": "a"}, "b"], 1, "a message object"),
        ([{"role": "user", "content": "q"}, {"role": "assistant"}], 1, "'content' to be a string; got no content"),
        ([{"role": "assistant", "content": None}], 0, "'content' to be a string"),
        ([{"role": "assistant", "content": 3}], 0, "'content' to be a string; got a number"),
        ([], None, "at least one step"),
        ([{"role": "user", "content": "q"}, {"role": "tool", "content": "r"}], None, "at least one action step"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}], None, "at least one action step"),
        ([{"role": "assistant", "content": "a"}, {"role": "robot", "content": "b"}], 1, "a role among"),
        ({"messages": [{"role": "assistant", "content": "a"}], "mistake_step": 1}, None, "mistake_step to index one of the 1"),
        ({"messages": [{"role": "assistant", "content": "a"}], "mistake_step": "first"}, None, "mistake_step to be a 0-based"),
        ({"messages": [{"role": "assistant", "content": "a"}], "mistake_step": -1}, None, "mistake_step to be a 0-based"),
        ({"messages": [{"role": "assistant", "content": "a"}], "success": "no"}, None, "true or false"),
        ([{"messages": []}, {"role": "assistant", "content": "a"}], None, "not both"),
        (_hc([{"role": "human", "content": "q"}, {"role": "Orchestrator (daydream)", "content": "x"}]), 1, "Magentic-One role"),
        (_hc([{"role": "human", "content": "q"}, {"role": "user", "content": "x"}]), 1, "Magentic-One role"),
        (_hc([{"role": "human", "content": "q"}, {"role": "WebSurfer"}]), 1, "'content' to be a string"),
        (_hc([{"role": "human", "content": "q"}]), None, "at least one action step"),
        (_hc([]), None, "at least one step"),
        (_hc([{"role": "human", "content": "q"}, {"role": "WebSurfer", "content": "x"}], mistake_step="9"), None,
         "mistake_step to index one of the 2"),
        ({"is_correct": True, "history": [{"role": "user", "name": "A", "content": "x"}, {"role": "user", "content": "y"}]},
         1, "a 'name' naming the speaker"),
    ],
)
def test_bad_input(tmp_path, obj, step, expected):
    path = _write(tmp_path, obj)
    with pytest.raises(InputError) as info:
        load_run(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path))
    assert (", step " in msg) == (step is not None)
    if step is not None:
        assert f"bad.json, step {step}: expected" in msg
    assert expected in msg


def test_bad_jsonl_line_and_run_position(tmp_path):
    path = _write(tmp_path, '{"role": "assistant", "content": "a"}\n{"role": \n', name="bad.jsonl")
    with pytest.raises(InputError, match=r"bad.jsonl: expected one JSON value per line \(JSONL\); got .* line 2"):
        load_run(path)
    path = _write(tmp_path, '{"messages": [{"role": "assistant", "content": "a"}]}\n\n{"messages": [{"role": "assistant"}]}\n',
                  name="runs.jsonl")
    with pytest.raises(InputError, match=r"runs.jsonl, line 3, step 0: expected 'content'"):
        load_runs(path)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(InputError, match="nope.json: expected a readable"):
        load_run(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="known formats: .*chat.*; did you mean 'chat'"):
        load_run(tmp_path / "nope.json", format="chats")


# --- the reader registry: detection, run selection, role overrides, label checks ----------------


def test_every_reader_declares_the_contract():
    from attribution.parse import READERS, format_table

    for name, mod in READERS.items():
        assert mod.NAME == name
        for attr in ("DESCRIPTION", "ACTIONS", "IDS"):
            text = getattr(mod, attr)
            assert isinstance(text, str) and text.strip() and "\n" not in text, f"{name}.{attr}"
        assert callable(mod.detect) and callable(mod.read)
    assert [r["name"] for r in format_table()] == list(READERS)


def test_nothing_matches_names_formats_and_keys(tmp_path):
    path = _write(tmp_path, {"spans_here": [], "version": 3})
    with pytest.raises(InputError, match=r"bad.json: expected a run log in one of the known formats \(.*chat.*\); "
                                         r"got an object with top-level keys \['spans_here', 'version'\]"):
        load_run(path)


def test_many_runs_pick_by_id(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps({"id": k, "messages": TOOL_RUN}) for k in ("a", "b", "c")))
    with pytest.raises(InputError, match=r"runs.jsonl: expected one run \(pass --run ID to pick one, or --all\); got 3 runs: a, b, c"):
        load_run(path)
    assert load_run(path, run_id="b").run_id == "b"
    with pytest.raises(InputError, match="expected a run with id 'z'; got ids a, b, c"):
        load_run(path, run_id="z")
    path.write_text("\n".join(json.dumps({"id": "a", "messages": TOOL_RUN}) for _ in range(2)))
    with pytest.raises(InputError, match="runs with distinct ids; got run id 'a' twice"):
        load_runs(path)


def test_actor_and_observer_globs_override_kinds(tmp_path):
    from attribution.errors import ConfigError as CE

    msgs = [{"role": "user", "content": "task"}, {"role": "user", "name": "code_executor", "content": "exit 0"},
            {"role": "assistant", "name": "coder", "content": "done"}]
    path = _write(tmp_path, msgs, name="run.json")
    with pytest.warns(ParseWarning, match=r"run.json, step 1: agent 'code_executor' looks like an executor"):
        run = load_run(path)
    assert [s.kind for s in run.steps] == ["observation", "action", "action"]
    run = load_run(path, observers=["*executor"])
    assert [s.kind for s in run.steps] == ["observation", "observation", "action"]
    run = load_run(path, actors=["user"], observers=["code_*"])
    assert [s.kind for s in run.steps] == ["action", "observation", "action"]
    with pytest.raises(CE, match="matches both"):
        load_run(path, actors=["coder"], observers=["c*"])
    with pytest.raises(InputError, match="at least one action step after --actor/--observer"):
        load_run(path, observers=["*"])


def test_label_checks_warn_on_one_line(tmp_path):
    msgs = [{"role": "user", "content": "task"}, {"role": "assistant", "name": "Coder", "content": "x"},
            {"role": "tool", "content": "out"}, {"role": "assistant", "name": "reviewer", "content": "ok"}]
    for step, agent, expected in [
        (2, "tool", r"step 2: the labelled mistake_step is an observation by 'tool'"),
        (1, "coder", r"step 1: mistake_agent 'coder' is not the speaker 'Coder' of mistake_step \(they differ only in case\)"),
        (3, "Coder", r"step 3: mistake_agent 'Coder' is not the speaker 'reviewer' of mistake_step$"),
    ]:
        path = _write(tmp_path, {"messages": msgs, "mistake_step": step, "mistake_agent": agent}, name="lab.json")
        with pytest.warns(ParseWarning, match=expected) as got:
            load_run(path)
        assert all("\n" not in str(w.message) for w in got)


def test_origin_of_who_and_when_and_chat(who_and_when, tmp_path):
    run = load_run(who_and_when / "Hand-Crafted" / "1.json")
    assert [s.origin.pointer for s in run.steps[:2]] == ["/history/0", "/history/1"]
    path = tmp_path / "m.jsonl"
    path.write_text("\n\n".join(json.dumps(m) for m in TOOL_RUN))
    run = load_run(path)
    assert [s.origin.line for s in run.steps] == [1, 3, 5, 7, 9, 11]
    many = tmp_path / "many.json"
    many.write_text(json.dumps([{"id": "x", "messages": TOOL_RUN}, {"id": "y", "messages": TOOL_RUN}]))
    assert load_runs(many)[1].steps[2].origin.pointer == "/1/messages/2"


def test_tool_call_arguments_are_kept_as_emitted():
    run = parse_run([{"role": "user", "content": "q"},
                     {"role": "assistant", "content": None, "tool_calls": [
                         {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"b":2,  "a": 1}'}}]}])
    assert run.steps[1].content == '{"name": "f", "arguments": {"b":2,  "a": 1}}'


def test_formats_command_lists_every_reader():
    from click.testing import CliRunner

    from attribution.cli import main
    from attribution.parse import READERS

    res = CliRunner().invoke(main, ["formats"])
    assert res.exit_code == 0
    for name, mod in READERS.items():
        assert any(line.startswith(name + " ") for line in res.output.splitlines())
    res = CliRunner().invoke(main, ["formats", "--json"])
    assert [r["name"] for r in json.loads(res.output)] == list(READERS)


def test_an_observation_carrying_tool_calls_is_warned(tmp_path):
    msgs = [{"role": "user", "content": "book it", "tool_calls": [
        {"id": "u1", "type": "function", "function": {"name": "pay", "arguments": "{}"}}]},
        {"role": "assistant", "name": "agent", "content": "done"}, {"role": "assistant", "name": "agent", "content": "ok"}]
    path = _write(tmp_path, msgs, name="sim.json")
    with pytest.warns(ParseWarning, match=r"sim.json, step 0: user message by 'user' carries tool calls but is an observation"):
        run = load_run(path)
    assert run.steps[0].kind == "observation"
