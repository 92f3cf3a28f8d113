"""monitor --follow beyond chat: any reader whose JSONL lines are the records of one run, and a log
replaced by a rename (followed as tail -F does). No model is needed: the followed steps are compared
with the steps of the finished log."""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from attribution.errors import InputError, ParseWarning
from attribution.monitor import JsonlFollower, follow_steps
from attribution.parse import load_runs

FIXTURES = Path(__file__).parent / "fixtures"


def _steps(run):
    return [(s.index, s.agent, s.kind, s.content) for s in run.steps]


def _followed(path, fmt=None, idle=0.2):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = follow_steps(JsonlFollower(path, poll=0.01, idle_timeout=idle), format=fmt)
        steps = list(got)
    return steps, got.format, [str(w.message) for w in caught]


def _otel_lines():
    """The first trace of the collector fixture, one span a line (as a span-per-export collector writes)."""
    first = json.loads((FIXTURES / "otel/collector.jsonl").read_text().splitlines()[0])
    rs = first["resourceSpans"][0]
    spans = [(ss["scope"], sp) for ss in rs["scopeSpans"] for sp in ss["spans"]]
    spans.sort(key=lambda x: int(x[1]["startTimeUnixNano"]))
    return [{"resourceSpans": [{"resource": rs["resource"], "scopeSpans": [{"scope": sc, "spans": [sp]}]}]}
            for sc, sp in spans]


def _langfuse_lines():
    return json.loads((FIXTURES / "otel/langfuse_trace.json").read_text())["observations"]


def _v1_lines():
    return [json.loads(x) for x in (FIXTURES / "openhands/v1_events.jsonl").read_text().splitlines()]


def _v0_lines():
    value = json.loads((FIXTURES / "openhands/events.json").read_text())
    return value if isinstance(value, list) else value[next(k for k in ("history", "trajectory", "events") if k in value)]


@pytest.mark.parametrize("name,records,fmt", [
    ("otel-collector", _otel_lines, None),  # None: whichever reader reads the finished log (otel.py is being split)
    ("langfuse-observations", _langfuse_lines, None),
    ("openhands-v1", _v1_lines, "openhands"),
    ("openhands-v0", _v0_lines, "openhands"),
])
def test_follow_reads_any_line_by_line_format_as_the_finished_log(tmp_path, name, records, fmt):
    lines = [json.dumps(r) for r in records()]
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    (finished,) = load_runs(path)
    steps, detected, _ = _followed(path)
    assert detected == finished.format and fmt in (None, detected)
    assert [(s.index, s.agent, s.kind, s.content) for s in steps] == _steps(finished)
    assert steps  # something was followed


def test_follow_openhands_v1_while_it_is_written(tmp_path):
    lines = [json.dumps(r) + "\n" for r in _v1_lines()]
    path = tmp_path / "events.jsonl"
    path.write_text(lines[0])

    def writer():
        for line in lines[1:]:
            with open(path, "a") as fh:
                fh.write(line[:7])
                fh.flush()
                time.sleep(0.02)
                fh.write(line[7:])
            time.sleep(0.02)

    t = threading.Thread(target=writer)
    t.start()
    steps, fmt, said = _followed(path, idle=1.0)
    t.join()
    (finished,) = load_runs(path)
    assert fmt == "openhands" and [(s.index, s.agent, s.kind, s.content) for s in steps] == _steps(finished)
    assert not [m for m in said if "not a run yet" in m]  # a system prompt alone is only "no step yet"


def _late_parent_log(tmp_path):
    lines = _otel_lines()
    root = next(k for k, r in enumerate(lines) if not r["resourceSpans"][0]["scopeSpans"][0]["spans"][0].get("parentSpanId"))
    late = lines[:root] + lines[root + 1:] + [lines[root]]  # the agent span, which names the agent, arrives last
    path = tmp_path / "late.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in late))
    return path


def test_follow_yields_again_the_steps_a_late_parent_span_revises(tmp_path):
    path = _late_parent_log(tmp_path)
    steps, fmt, said = _followed(path)
    state: list = []
    for st in steps:  # what a consumer keeps: a step with an index already held replaces the tail from there
        del state[st.index:]
        state.append(st)
    (finished,) = load_runs(path)
    assert [(s.index, s.agent, s.kind, s.content) for s in state] == _steps(finished)
    assert len(steps) > len(state)  # some steps came twice
    revised = [m for m in said if "revises step" in m]
    assert len(revised) == 1 and "\n" not in revised[0]


def test_monitor_rewound_on_a_revised_log_equals_one_pass_on_the_finished_log(tiny_pair, tmp_path):
    from attribution.monitor import Monitor
    from attribution.score import CheckpointPair, Scorer

    pair = CheckpointPair.load(*tiny_pair, beta=0.3)
    scorer = Scorer(pair, window=64, min_context=16)
    path = _late_parent_log(tmp_path)
    mon = Monitor(scorer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParseWarning)
        for st in follow_steps(JsonlFollower(path, poll=0.01, idle_timeout=0.2)):
            if st.index < len(mon.run.steps):
                mon.rewind(st.index)
            mon.feed(st)
    (finished,) = load_runs(path)
    assert _steps(mon.run) == _steps(finished)
    for a, b in zip(scorer.score(finished), mon.steps):
        assert a.logps == pytest.approx(b.logps, abs=1e-4) and a.ref_logps == pytest.approx(b.ref_logps, abs=1e-4)
    with pytest.raises(InputError, match="a step to rewind to"):
        mon.rewind(len(mon.run.steps) + 1)


def test_follow_refuses_a_log_of_several_runs(tmp_path):
    path = tmp_path / "two.jsonl"
    path.write_text((FIXTURES / "otel/collector.jsonl").read_text())
    with pytest.raises(InputError, match="the records of one run"):
        _followed(path)


# -- a log replaced by a rename -----------------------------------------------------------------


def _chat_lines(n):
    out = [{"role": "user", "content": "what is 2 + 3?"}]
    out += [{"role": "assistant", "name": ["planner", "solver"][k % 2], "content": f"step {k}: thinking about {k}"}
            for k in range(1, n)]
    return [json.dumps(m) + "\n" for m in out]


@pytest.mark.parametrize("how", ["rewrite", "rotate"])
def test_follow_the_path_when_the_log_is_replaced_by_a_rename(tmp_path, how):
    lines = _chat_lines(7)
    path = tmp_path / "log.jsonl"
    path.write_text("".join(lines[:3]))
    stop = threading.Event()
    follower = JsonlFollower(path, poll=0.01, stop=stop)
    got = []

    def replace():
        time.sleep(0.2)
        new = tmp_path / "new.jsonl"
        if how == "rewrite":  # written whole elsewhere, renamed over the log: it starts with what was read
            new.write_text("".join(lines[:5]))
        else:  # rotated: the old log moved away, a new one holds the lines that follow
            os.replace(path, tmp_path / "log.jsonl.1")
            new.write_text("".join(lines[3:5]))
        os.replace(new, path)
        time.sleep(0.2)
        with open(path, "a") as fh:
            fh.write("".join(lines[5:]))
        time.sleep(0.3)
        stop.set()

    t = threading.Thread(target=replace)
    t.start()
    with pytest.warns(ParseWarning, match="replaced by another file.*tail -F") as caught:
        got = list(follower)
    t.join()
    assert got == [json.loads(x) for x in lines]  # every line once, none twice
    assert follower.replaced == 1
    said = [str(w.message) for w in caught if "replaced" in str(w.message)]
    assert len(said) == 1 and ("reading on from there" if how == "rewrite" else "from its start") in said[0]


def test_a_log_truncated_in_place_is_still_an_error(tmp_path):
    path = tmp_path / "log.jsonl"
    lines = _chat_lines(3)
    path.write_text("".join(lines))
    follower = JsonlFollower(path, poll=0.01, idle_timeout=1.0)
    it = iter(follower)
    assert next(it) == json.loads(lines[0])
    next(it), next(it)
    with open(path, "w") as fh:  # same file, emptied
        fh.write(lines[0][:5])
    with pytest.raises(InputError, match="shrank"):
        next(it)


def test_monitor_cli_follows_openhands_v1_and_scores_as_on_the_finished_log(tiny_pair, tmp_path):
    from attribution.cli import main

    policy, reference = tiny_pair
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _v1_lines()))
    base = ["--policy", str(policy), "--reference", str(reference)]
    live = CliRunner().invoke(main, ["monitor", str(path), "--follow", "--idle-timeout", "0.2", "--poll", "0.01",
                                     "--json", str(tmp_path / "live.json"), "-q", *base])
    assert live.exit_code == 0, live.output
    done = CliRunner().invoke(main, ["monitor", str(path), "--json", str(tmp_path / "done.json"), "-q", *base])
    assert done.exit_code == 0, done.output
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("live", "done"))
    assert a["format"] == b["format"] == "openhands"  # detected while following, recorded in the diagnosis
    assert [s["agent"] for s in a["steps"]] == [s["agent"] for s in b["steps"]]
    for x, y in zip(a["steps"], b["steps"]):
        assert (x["score"] is None) == (y["score"] is None)
        if x["score"] is not None:
            assert x["score"] == pytest.approx(y["score"], abs=1e-4)


def test_follow_a_log_no_reader_knows_warns_once_then_fails_when_following_stops(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text('{"hello": 1}\n{"hello": 2}\n{"hello": 3}\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match="a run log in one of the known formats"):
            list(follow_steps(JsonlFollower(path, poll=0.01, idle_timeout=0.1)))
    assert len([w for w in caught if "not a run yet at line 1" in str(w.message)]) == 1


def test_follow_a_log_with_no_step_yet_ends_with_no_step_and_no_error(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"role": "user", "content": "2+2?"}) + "\n")
    steps, fmt, said = _followed(path)
    assert steps == [] and not [m for m in said if "not a run yet" in m]
