"""Monitor and select: incremental scores equal one-pass scores; follow mode; select's ranking."""

import json
import threading
import time

import pytest

from attribution.errors import ConfigError, InputError
from attribution.monitor import JsonlFollower, Monitor, follow_steps
from attribution.rank import aggregate
from attribution.score import CheckpointPair, PairConfig, Scorer, plan_windows
from attribution.score import incremental, scorer as scorer_module
from attribution.score.incremental import window_of
from attribution.score.render import Rendered, render_run
from attribution.select import run_score, select_runs
from attribution.tiny import build_tiny_pair
from attribution.types import SCHEMA_VERSION, Run, Step
from runs import WORDS, make_run


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return CheckpointPair.load(*build_tiny_pair(tmp_path_factory.mktemp("pair"), max_positions=96), beta=0.3)


def assert_monitor_equals_one_pass(run, scorer, tol=1e-4):
    mon = Monitor(scorer)
    for i, step in enumerate(run.steps):
        mon.feed(step)
        one = scorer.score(Run(run.steps[: i + 1], run.run_id))
        assert len(one) == len(mon.steps) == i + 1
        for a, b in zip(one, mon.steps):
            assert len(a.logps) == len(b.logps)
            assert a.tokens == b.tokens
            if a.logps:
                assert max(abs(x - y) for x, y in zip(a.logps + a.ref_logps, b.logps + b.ref_logps)) < tol
                assert b.score == pytest.approx(sum(a.ratios), abs=tol)
    return mon


def test_window_of_matches_plan_windows():
    for window, mc in ((8, 2), (8, 1), (16, 15), (5, 4), (96, 24)):
        for n in (2, 7, 8, 9, 50, 333):
            for w in plan_windows(n, window, mc):
                for p in range(w.lo, w.hi):
                    got = window_of(p, window, mc)
                    assert (got.start, got.lo) == (w.start, w.lo)
                    assert w.hi <= got.hi and w.end <= got.end


@pytest.mark.parametrize("window,min_context", [(96, 24), (40, 10), (32, 1)])
def test_incremental_equals_one_pass_on_every_step(pair, window, min_context):
    run = make_run(14)
    n = len(render_run(run, pair.tokenizer))
    if window < 96:
        assert len(plan_windows(n, window, min_context)) > 2, "the run must cross window boundaries"
    mon = assert_monitor_equals_one_pass(run, Scorer(pair, window=window, min_context=min_context))
    # each new step costs its own tokens plus, per window crossed, the overlap re-encoded once
    crossings = len(plan_windows(n, window, min_context)) - 1
    assert mon.fed_tokens <= n + len(run.steps) + crossings * min_context


def whole_text_render(run, tokenizer, chat_template="auto"):
    """A renderer that tokenises the whole text at once and maps steps to tokens by offsets, so
    appending a step can re-tokenise the tail of the previous text (issue 10's renderer)."""
    text, chars = "", {}
    for st in run.steps:  # "... output orchestrator: ...": the trailing space merges with the next header
        text += f"{st.agent.lower()}: "
        chars[st.index] = (len(text), len(text) + len(st.content))
        text += st.content + " "
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = [tokenizer.bos_token_id, *enc["input_ids"]]
    offs = [(0, 0), *enc["offset_mapping"]]
    spans, pieces = {}, {}
    for i, (a, b) in chars.items():
        toks = [k for k in range(1, len(ids)) if offs[k][0] < b and offs[k][1] > a]
        s, e = (toks[0], toks[-1] + 1) if toks else (len(ids), len(ids))
        spans[i] = (s, e)
        pieces[i] = [text[offs[k][0] : offs[k][1]] for k in range(s, e)]
    return Rendered(ids, spans, "plain", pieces)


def test_incremental_survives_a_renderer_that_retokenises_the_tail(pair, monkeypatch):
    monkeypatch.setattr(incremental, "render_run", whole_text_render)
    monkeypatch.setattr(scorer_module, "render_run", whole_text_render)
    run = make_run(12, seed=3)
    prefixes = [whole_text_render(Run(run.steps[: i + 1], "r"), pair.tokenizer).input_ids for i in range(len(run.steps))]
    moved = sum(prefixes[i] != prefixes[i + 1][: len(prefixes[i])] for i in range(len(prefixes) - 1))
    assert moved > 0, "the test renderer must re-tokenise the tail of the previous text"
    assert_monitor_equals_one_pass(run, Scorer(pair, window=40, min_context=10))


def test_monitor_alert_fires_once_below_threshold(pair):
    run = make_run(12, seed=1)
    scorer = Scorer(pair)
    totals = []
    mon = Monitor(scorer)
    for st in run.steps:
        totals.append(mon.feed(st).run_score)
    scored = [t for t in totals if t == t]
    threshold = sorted(scored)[len(scored) // 2]  # crossed somewhere in the middle
    mon = Monitor(scorer, threshold=threshold)
    alerts = [mon.feed(st).alert for st in run.steps]
    first = next(i for i, t in enumerate(totals) if t == t and t < threshold)
    assert alerts.count(True) == 1 and alerts.index(True) == first == mon.alerted_at
    d = mon.diagnosis()
    assert d.schema == SCHEMA_VERSION and d.settings["monitor"]["alert_step"] == first
    json.loads(d.to_json())


def test_monitor_refuses_uncovered_agent_and_out_of_order_steps(pair):
    config = PairConfig(pairs={"p": pair}, agents=[("Orchestrator", "p")], source="pairs.json")
    mon = Monitor(Scorer(config))
    run = make_run(3)
    mon.feed(run.steps[0])
    with pytest.raises(ConfigError, match="step 1: no checkpoint pair for agent 'WebSurfer'"):
        mon.feed(run.steps[1])
    with pytest.raises(InputError, match="step 5"):
        mon.feed(Step(5, "Orchestrator", "assistant", "action", "x"))


# -- follow mode --------------------------------------------------------------------------------
def messages(n):
    out = [{"role": "user", "content": "find the ticket price"}]
    for i in range(1, n):
        if i % 3 == 0:
            out.append({"role": "tool", "name": "terminal", "content": "exitcode 0 code output " + WORDS[i % len(WORDS)]})
        else:
            out.append({"role": "assistant", "name": ["Orchestrator", "WebSurfer"][i % 2], "content": " ".join(WORDS[: 3 + i])})
    return out


def write_slowly(path, msgs, pause=0.05):
    """Append the messages one by one, each line in two writes (a reader sees half lines)."""
    with open(path, "a", encoding="utf-8") as fh:
        for m in msgs:
            line = json.dumps(m) + "\n"
            fh.write(line[: len(line) // 2])
            fh.flush()
            time.sleep(pause)
            fh.write(line[len(line) // 2 :])
            fh.flush()
            time.sleep(pause)


def test_follow_picks_up_appended_lines(tmp_path):
    path = tmp_path / "log.jsonl"
    msgs = messages(8)
    path.write_text(json.dumps(msgs[0]) + "\n")
    writer = threading.Thread(target=write_slowly, args=(path, msgs[1:]))
    writer.start()
    follower = JsonlFollower(path, poll=0.01, idle_timeout=1.0)
    got = list(follower)
    writer.join()
    assert got == msgs and follower.pending == "" and follower.line == len(msgs)


def test_follow_waits_on_an_incomplete_last_line_and_never_crashes(tmp_path):
    path = tmp_path / "log.jsonl"
    line = json.dumps(messages(2)[1])
    path.write_text(json.dumps(messages(1)[0]) + "\n" + line[:10])
    stop = threading.Event()
    follower = JsonlFollower(path, poll=0.01, stop=stop)
    it = iter(follower)
    assert next(it) == messages(1)[0]
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    assert list(it) == []  # stopped while the last record was half written: kept pending
    assert follower.pending == line[:10]
    # the rest arrives: a new follower reads the whole record
    with open(path, "a") as fh:
        fh.write(line[10:])  # no newline: taken once following stops, since it parses
    assert list(JsonlFollower(path, poll=0.01, idle_timeout=0.1)) == messages(2)


def test_follow_a_file_that_does_not_exist_yet(tmp_path):
    path = tmp_path / "later.jsonl"
    timer = threading.Timer(0.2, lambda: path.write_text(json.dumps(messages(1)[0]) + "\n"))
    timer.start()
    assert list(JsonlFollower(path, poll=0.01, idle_timeout=0.6)) == messages(1)


def test_follow_bad_line_is_a_one_line_error(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(messages(1)[0]) + "\n{not json}\n")
    with pytest.raises(InputError, match="line 2"):
        list(JsonlFollower(path, poll=0.01, idle_timeout=0.1))


def test_monitor_on_followed_log_equals_monitor_on_finished_log(pair, tmp_path):
    from attribution.parse import parse_run

    path = tmp_path / "log.jsonl"
    msgs = messages(9)
    path.write_text("")
    writer = threading.Thread(target=write_slowly, args=(path, msgs, 0.02))
    writer.start()
    scorer = Scorer(pair, window=40, min_context=10)
    live = Monitor(scorer)
    for step in follow_steps(JsonlFollower(path, poll=0.01, idle_timeout=1.0)):
        live.feed(step)
    writer.join()
    run = parse_run(msgs)
    assert [s.index for s in live.run.steps] == [s.index for s in run.steps]
    one = scorer.score(run)
    for a, b in zip(one, live.steps):
        assert a.logps == pytest.approx(b.logps, abs=1e-4) and a.ref_logps == pytest.approx(b.ref_logps, abs=1e-4)


# -- select -------------------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["sum", "mean", "min"])
def test_select_ranking_equals_sorting_by_run_score(pair, by):
    runs = [make_run(6 + k, seed=10 + k, run_id=f"c{k}") for k in range(5)]
    scorer = Scorer(pair)
    sel = select_runs(runs, by=by, scorer=scorer)
    want = []
    for run in runs:
        steps = aggregate(scorer.score(run), "sum")
        want.append((run.run_id, run_score(steps, by)))
    want.sort(key=lambda t: -t[1])
    assert [c.run.run_id for c in sel.ranking] == [r for r, _ in want]
    assert [c.score for c in sel.ranking] == pytest.approx([s for _, s in want], abs=1e-6)
    d = sel.to_dict()
    assert d["settings"]["by"] == by and [r["run_id"] for r in d["ranking"]] == [r for r, _ in want]


def test_select_bad_input(pair, tmp_path):
    scorer = Scorer(pair)
    with pytest.raises(ConfigError, match="at least two candidate runs"):
        select_runs([], scorer=scorer)
    with pytest.raises(ConfigError, match="at least two candidate runs"):
        select_runs([make_run(4)], scorer=scorer)
    assert len(select_runs([make_run(4)], scorer=scorer, allow_single=True).ranking) == 1
    with pytest.raises(ConfigError, match="'by' parameter"):
        select_runs([make_run(4), make_run(5)], scorer=scorer, by="median")
    config = PairConfig(pairs={"p": pair}, agents=[("Orchestrator", "p")], source="pairs.json")
    with pytest.raises(ConfigError, match="no checkpoint pair for agent 'WebSurfer'"):
        select_runs([make_run(4), make_run(5)], scorer=Scorer(config))
    empty = tmp_path / "obs.json"
    empty.write_text(json.dumps([{"role": "user", "content": "hi"}]))
    with pytest.raises(InputError, match="at least one action step"):
        select_runs([empty, empty], scorer=scorer)


# -- command line -------------------------------------------------------------------------------
def _cli(*args):
    from click.testing import CliRunner

    from attribution.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def world_logs(tmp_path_factory):
    """Four runs of one task of the world (the embedded pair knows its words), and one as a JSONL of messages."""
    from pathlib import Path

    mixed = Path(__file__).resolve().parents[1] / "datasets" / "world" / "mixed.jsonl"
    task = lambda rec: next(m["content"] for m in rec["messages"] if m["role"] == "user")  # noqa: E731
    recs = [json.loads(line) for line in mixed.read_text().splitlines()]
    recs = [r for r in recs if task(r) == task(recs[0])][:4]  # select ranks candidates of one task
    d = tmp_path_factory.mktemp("world-logs")
    paths = []
    for k, rec in enumerate(recs):
        paths.append(d / f"cand{k}.json")
        paths[-1].write_text(json.dumps(rec))
    (d / "run.jsonl").write_text("".join(json.dumps(m) + "\n" for m in recs[0]["messages"]))
    return paths, d / "run.jsonl"


def test_select_cli_prints_and_writes_the_ranking(world_logs, tmp_path):
    paths, _ = world_logs
    res = _cli("select", *paths, "--json", tmp_path / "sel.json", "-q")
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "sel.json").read_text())
    scores = [r["score"] for r in got["ranking"]]
    assert scores == sorted(scores, reverse=True) and sorted(r["run"] for r in got["ranking"]) == sorted(map(str, paths))
    assert got["settings"]["by"] == "sum" and res.output.startswith(f"best: {got['ranking'][0]['run']}")
    for args in ([], [paths[0]]):
        res = _cli("select", *args)
        assert res.exit_code == 2 and res.output.count("\n") == 1 and "at least two candidate runs" in res.output


def test_select_warns_when_the_candidates_are_runs_of_different_tasks(world_logs, tmp_path):
    """Issue 20: run scores of different tasks differ by V(s_0); ranking them was silent."""
    paths, _ = world_logs
    other = json.loads(paths[1].read_text())
    first_user = next(m for m in other["messages"] if m["role"] == "user")
    first_user["content"] = "task : something else entirely"
    (tmp_path / "other.json").write_text(json.dumps(other))
    res = _cli("select", paths[0], tmp_path / "other.json", paths[2], "-q")
    assert res.exit_code == 0, res.output
    warning = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "2 different tasks" in warning[0] and "other.json" in warning[0] and "something else" in warning[0]
    same = _cli("select", *paths[:3], "-q")
    assert same.exit_code == 0 and "warning" not in same.output


def test_monitor_cli_says_when_the_on_alert_hook_fails(world_logs, tmp_path):
    """Issue 20: a failing --on-alert command was ignored."""
    _, log = world_logs
    res = _cli("monitor", log, "--threshold", 10, "-q", "--on-alert", "exit 3")
    assert res.exit_code == 0, res.output
    assert res.output.count("--on-alert command failed (exit status 3)") == 1 and "ALERT" in res.output
    ok = _cli("monitor", log, "--threshold", 10, "-q", "--on-alert", "true")
    assert ok.exit_code == 0 and "failed" not in ok.output


def test_monitor_refuses_a_threshold_that_can_never_fire(pair):
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ConfigError, match="finite"):
            Monitor(Scorer(pair), threshold=bad)


def test_monitor_cli_equals_diagnose_and_alerts(world_logs, tmp_path):
    _, log = world_logs
    assert _cli("diagnose", log, "--json", tmp_path / "d.json", "-q").exit_code == 0
    res = _cli("monitor", log, "--json", tmp_path / "m.json", "--threshold", 10, "--on-alert", f"touch {tmp_path / 'hook'}")
    assert res.exit_code == 0, res.output
    d, m = (json.loads((tmp_path / f).read_text()) for f in ("d.json", "m.json"))
    assert m["schema"] == d["schema"] == SCHEMA_VERSION
    for a, b in zip(d["steps"], m["steps"]):
        assert a["logps"] == pytest.approx(b["logps"], abs=1e-4) and a["ref_logps"] == pytest.approx(b["ref_logps"], abs=1e-4)
    assert m["culprit_step"] == d["culprit_step"]
    first = next(s["index"] for s in m["steps"] if s["score"] is not None)
    assert m["settings"]["monitor"]["alert_step"] == first and "ALERT: step" in res.output and (tmp_path / "hook").exists()
    res = _cli("monitor", log, "--threshold", 10, "--fail-on-alert", "-q")
    assert res.exit_code == 1 and res.output.startswith("ALERT")


def test_monitor_cli_refuses_a_calibration_of_another_pair(world_logs, tmp_path):
    from attribution.evaluation.calibration import Calibration, write_calibration

    _, log = world_logs
    ckpt = {"world": {"policy": {"name": "p", "id": "policy@0000", "dtype": "float32"},
                      "reference": {"name": "r", "id": "reference@0000", "dtype": "float32"}, "beta": 0.2}}
    write_calibration(Calibration(-0.3, 0.1, 0.1, 0.8, 3.0, 0.3, 10, 10, 8, checkpoints=ckpt), tmp_path / "cal.json")
    res = _cli("monitor", log, "--calibration", tmp_path / "cal.json")
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "another setup (pair 'world': policy policy@0000 in the file" in res.output
    res = _cli("monitor", log, "--calibration", tmp_path / "cal.json", "--threshold", 1)
    assert res.exit_code == 2 and "either --threshold or --calibration" in res.output


def test_monitor_cli_follow_waits_for_a_half_written_record(world_logs, tmp_path):
    _, log = world_logs
    lines = log.read_text().splitlines(keepends=True)
    live = tmp_path / "live.jsonl"
    live.write_text(lines[0])

    def writer():
        for line in lines[1:]:
            with open(live, "a") as fh:
                fh.write(line[:5])
                fh.flush()
                time.sleep(0.05)
                fh.write(line[5:])
        with open(live, "a") as fh:
            fh.write('{"role": "assistant", "na')  # the writer stops mid-record

    t = threading.Thread(target=writer)
    t.start()
    res = _cli("monitor", live, "--follow", "--idle-timeout", 1.0, "--poll", 0.01, "--json", tmp_path / "m.json")
    t.join()
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "m.json").read_text())
    assert len(got["run_steps"]) == len(lines)
    assert "stopped waiting for the rest of line" in res.output
