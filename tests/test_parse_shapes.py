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
    same = many[run.run_id]
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
