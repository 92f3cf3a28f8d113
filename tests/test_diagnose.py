"""diagnose end to end: the CLI and the Python API, on Who&When and on bad input."""

import json

import pytest
from click.testing import CliRunner

from attribution import diagnose
from attribution.cli import main
from attribution.types import SCHEMA_VERSION, Diagnosis


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def pair_args(tiny_pair):
    return ["--policy", tiny_pair[0], "--reference", tiny_pair[1], "--beta", "0.5"]


def check_schema(d, n_steps):
    assert d["schema"] == SCHEMA_VERSION
    assert isinstance(d["culprit_step"], int) and d["culprit_step"] in d["top"]
    assert len(d["steps"]) == n_steps == len(d["run_steps"])
    by_index = {s["index"]: s for s in d["steps"]}
    assert by_index[d["culprit_step"]]["kind"] == "action"
    assert by_index[d["culprit_step"]]["agent"] == d["culprit_agent"]
    for s in d["steps"]:
        assert s["n_tokens"] == len(s["logps"]) == len(s["ref_logps"]) == len(s["tokens"])
        if s["kind"] == "observation":
            assert s["n_tokens"] == 0 and s["score"] is None
    assert set(d["checkpoints"]["default"]) == {"policy", "reference", "beta"}
    assert d["settings"]["aggregate"] == "sum"


@pytest.mark.parametrize("subset", ["Algorithm-Generated", "Hand-Crafted"])
def test_every_who_and_when_file(who_and_when, tiny_pair, tmp_path, subset):
    files = sorted((who_and_when / subset).glob("*.json"), key=lambda p: int(p.stem))
    assert len(files) == {"Algorithm-Generated": 126, "Hand-Crafted": 58}[subset]
    for f in files:
        out = tmp_path / f"{f.stem}.json"
        res = run_cli("diagnose", f, *pair_args(tiny_pair), "--json", out, "-q")
        assert res.exit_code == 0, (f, res.output)
        n = len(json.loads(f.read_text())["history"])
        d = json.loads(out.read_text())
        check_schema(d, n)
        assert d["labels"]["mistake_step"] == int(json.loads(f.read_text())["mistake_step"])


def test_long_run_is_scored_whole_with_a_sliding_window(who_and_when, tiny_pair):
    # Hand-Crafted 1 renders to ~28k tokens; with a 1024-token window no step is dropped or blind.
    diag = diagnose(who_and_when / "Hand-Crafted" / "1.json", policy=str(tiny_pair[0]), reference=str(tiny_pair[1]), window=1024)
    rendered = diag.settings["rendered_tokens"]["default"]
    assert rendered > 10 * 1024
    for s in diag.steps:
        if s.kind == "action" and diag.run_steps[s.index]["content"]:
            assert s.n_tokens > 0 and s.score != 0


def test_python_api_and_json_round_trip(tiny_pair, tmp_path):
    log = tmp_path / "run.json"
    log.write_text(json.dumps([
        {"role": "user", "content": "Book a flight to Paris."},
        {"role": "assistant", "name": "planner", "content": "Search flights, then book the cheapest."},
        {"role": "assistant", "name": "worker", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "search", "arguments": "{\"to\": \"CDG\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "search", "content": "error: timeout"},
        {"role": "assistant", "name": "worker", "content": "The search failed; booking a random flight."},
    ]))
    diag = diagnose(log, policy=str(tiny_pair[0]), reference=str(tiny_pair[1]), top_k=2, aggregate="mean", ranker="lowest-total")
    assert isinstance(diag, Diagnosis) and len(diag.top) == 2
    assert diag.steps[2].n_tokens > 0  # tool_calls are part of the action's text
    assert diag.steps[3].score is None  # tool output is context, never scored
    again = Diagnosis.from_dict(json.loads(diag.to_json()))
    assert again.culprit_step == diag.culprit_step and again.steps[4].logps == diag.steps[4].logps


def test_cli_prints_table_and_verdict(tiny_pair, tmp_path, who_and_when):
    res = run_cli("diagnose", who_and_when / "Algorithm-Generated" / "1.json", *pair_args(tiny_pair), "--graph", tmp_path / "g.json")
    assert res.exit_code == 0
    assert "culprit: step" in res.output and "label:   step 0 by Excel_Expert" in res.output
    graph = json.loads((tmp_path / "g.json").read_text())
    assert len(graph["nodes"]) == 6


BAD = {
    "not-json.json": ("{not json", r"not-json\.json.*JSON"),
    "shape.json": ('{"foo": 1}', r"shape\.json: expected"),
    "no-content.json": ('[{"role": "user", "content": "hi"}, {"role": "assistant", "name": "a"}]', r"no-content\.json, step 1: expected"),
    "empty.json": ("[]", r"empty\.json.*expected"),
    "no-action.json": ('[{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]', r"no-action\.json.*action"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_line_and_non_zero(tiny_pair, tmp_path, name):
    text, pattern = BAD[name]
    (tmp_path / name).write_text(text)
    res = CliRunner().invoke(main, ["diagnose", str(tmp_path / name), *map(str, pair_args(tiny_pair))])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    import re

    assert re.search(pattern, lines[0]), lines[0]


def test_bad_checkpoints_and_unplaced_speaker(tiny_pair, tmp_path):
    log = tmp_path / "run.json"
    log.write_text('[{"role": "user", "content": "hi"}, {"role": "assistant", "name": "solver", "content": "4"}]')
    res = CliRunner().invoke(main, ["diagnose", str(log), "--policy", str(tmp_path / "missing"), "--reference", str(tiny_pair[1])])
    assert res.exit_code == 2 and "missing: checkpoint folder not found" in res.output
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    res = CliRunner().invoke(main, ["diagnose", str(log), "--policy", str(tmp_path / "half"), "--reference", str(tiny_pair[1])])
    assert res.exit_code == 2 and "incomplete checkpoint folder" in res.output
    cfg = tmp_path / "pairs.json"
    cfg.write_text(json.dumps({"pairs": {"p": {"policy": str(tiny_pair[0]), "reference": str(tiny_pair[1])}}, "agents": {"planner": "p"}}))
    res = CliRunner().invoke(main, ["diagnose", str(log), "--pairs", str(cfg)])
    assert res.exit_code == 2
    assert "run.json, step 1: no checkpoint pair for agent 'solver'" in res.output
