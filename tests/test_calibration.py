"""Calibration of the monitor's alert: threshold, false-alarm rate, recall, lead, pair check."""

import json
import math

import numpy as np
import pytest

from attribution.errors import ConfigError, InputError
from attribution.evaluation.calibration import (
    calibrate,
    first_alert,
    load_calibration,
    prefix_run_scores,
    write_calibration,
)
from attribution.types import Run, Step, StepScore

CKPT = {"world": {"policy": {"name": "p", "id": "policy@aaa", "dtype": "float32"},
                  "reference": {"name": "r", "id": "reference@bbb", "dtype": "float32"}, "beta": 0.2}}


def synthetic(n_success=40, n_failure=30, seed=0):
    """Runs of 6 action steps; failures drift down, successes wander around 0."""
    rng = np.random.default_rng(seed)
    runs, steps = [], []
    for k in range(n_success + n_failure):
        ok = k < n_success
        scores = rng.normal(0.0 if ok else -0.4, 0.3, size=6)
        run = Run([Step(i, "a", "assistant", "action", "x") for i in range(6)], f"r{k}", success=ok)
        runs.append(run)
        steps.append([StepScore(i, "a", "action", score=float(s)) for i, s in enumerate(scores)])
    return runs, steps


@pytest.mark.parametrize("fpr", [0.05, 0.1, 0.25])
def test_threshold_meets_the_target_false_alarm_rate(fpr):
    runs, steps = synthetic()
    cal = calibrate(runs, steps, fpr, checkpoints=CKPT)
    succ = [min(prefix_run_scores(s)) for r, s in zip(runs, steps) if r.success]
    alarms = [m < cal.threshold for m in succ]
    assert np.mean(alarms) == cal.fpr <= fpr
    # the largest such threshold: one more successful run would alarm at the next value up
    above = sorted(m for m in succ if m >= cal.threshold)
    assert np.mean([m <= above[0] for m in succ]) > fpr
    # recall and lead by hand
    fails = [(r, prefix_run_scores(s)) for r, s in zip(runs, steps) if not r.success]
    hits = [(r, first_alert(p, cal.threshold)) for r, p in fails]
    leads = [len(r.steps) - 1 - a for r, a in hits if a is not None]
    assert cal.recall == pytest.approx(len(leads) / len(fails))
    assert cal.lead_steps == leads and cal.lead_steps_median == pytest.approx(np.median(leads))
    assert cal.n_success == 40 and cal.n_failure == 30


def test_prefix_scores_and_first_alert():
    s = [StepScore(0, "u", "observation"), StepScore(1, "a", "action", score=-1.0), StepScore(2, "a", "action", score=0.5)]
    run = prefix_run_scores(s)
    assert math.isnan(run[0]) and run[1:] == [-1.0, -0.5]
    assert first_alert(run, -0.9) == 1 and first_alert(run, -2.0) is None
    assert prefix_run_scores(s, "min")[1:] == [-1.0, -1.0]


def test_calibration_bad_input(tmp_path):
    runs, steps = synthetic()
    with pytest.raises(ConfigError, match="'fpr' parameter"):
        calibrate(runs, steps, 1.5)
    only_failures = [(r, s) for r, s in zip(runs, steps) if not r.success]
    with pytest.raises(ConfigError, match="successful runs"):
        calibrate([r for r, _ in only_failures], [s for _, s in only_failures], 0.1)
    path = tmp_path / "cal.json"
    write_calibration(calibrate(runs, steps, 0.1, checkpoints=CKPT), path)
    assert load_calibration(path, CKPT).threshold == json.loads(path.read_text())["threshold"]
    other = json.loads(json.dumps(CKPT))
    other["world"]["policy"]["id"] = "policy@ccc"
    with pytest.raises(ConfigError, match="another setup .*pair 'world': policy policy@") as err:
        load_calibration(path, other)
    assert "\n" not in str(err.value) and "beta" not in str(err.value)
    other = json.loads(json.dumps(CKPT))
    other["world"]["beta"] = 0.5
    with pytest.raises(ConfigError, match=r"pair 'world': beta .* in the file, 0.5 here\)") as err:  # issue 17: names beta
        load_calibration(path, other)
    assert "policy" not in str(err.value).split("another setup")[1].split(";")[0]
    (tmp_path / "bad.json").write_text('{"schema": "attribution.diagnosis/1"}')
    with pytest.raises(InputError, match="calibration file"):
        load_calibration(tmp_path / "bad.json")
    with pytest.raises(InputError, match="calibration file"):
        load_calibration(tmp_path / "missing.json")


def test_evaluate_calibrates_from_the_same_scores(tiny_pair, tmp_path):
    """``evaluate(calibrate=...)`` equals calibrating the scorer's own step sums."""
    from attribution import evaluate
    from attribution.diagnoser import make_scorer
    from attribution.parse import parse_run
    from attribution.rank import aggregate

    rng = np.random.default_rng(0)
    words = "search the page for the ticket price then report back".split()
    records = []
    for k in range(12):
        msgs = [{"role": "user", "content": f"task {k}"}]
        for i in range(4):
            msgs.append({"role": "assistant", "name": ["planner", "worker"][i % 2], "content": " ".join(rng.choice(words, 5))})
        records.append({"id": f"r{k}", "messages": msgs, "success": bool(k % 2)})
    runs = [parse_run(r, source=r["id"]) for r in records]
    res = evaluate(runs, policy=str(tiny_pair[0]), reference=str(tiny_pair[1]), beta=0.5, aggregate="sum",
                   ranker="most-negative", calibrate=0.2, use_cache=False, n_boot=10)
    scorer = make_scorer(policy=str(tiny_pair[0]), reference=str(tiny_pair[1]), beta=0.5)
    want = calibrate(runs, [aggregate(s.steps, "sum") for s in scorer.score_many(runs)], 0.2, checkpoints=scorer.checkpoints())
    got = res.calibration
    assert got["threshold"] == pytest.approx(want.threshold, abs=1e-5)
    assert (got["recall"], got["fpr"], got["n_success"]) == (want.recall, want.fpr, 6)
    assert json.loads(res.to_json())["calibration"]["schema"] == "attribution.calibration/1"
    with pytest.raises(ConfigError, match="'calibrate' parameter"):
        evaluate(runs, policy=str(tiny_pair[0]), reference=str(tiny_pair[1]), calibrate=0.0, use_cache=False)


def test_eval_cli_writes_the_calibration_file(tiny_pair, tmp_path):
    from click.testing import CliRunner

    from attribution.cli import main

    words = "search the page for the ticket price then report back".split()
    rng = np.random.default_rng(1)
    with open(tmp_path / "set.jsonl", "w") as fh:
        for k in range(10):
            msgs = [{"role": "user", "content": f"task {k}"}]
            msgs += [{"role": "assistant", "name": "solver", "content": " ".join(rng.choice(words, 4))} for _ in range(3)]
            rec = {"id": f"r{k}", "messages": msgs, "success": k < 5}
            if k >= 5:
                rec.update(mistake_step=1, mistake_agent="solver")
            fh.write(json.dumps(rec) + "\n")
    args = ["eval", "--dataset", tmp_path / "set.jsonl", "--policy", tiny_pair[0], "--reference", tiny_pair[1], "--no-cache",
            "--aggregate", "sum", "--ranker", "most-negative", "--bootstrap", "10", "-q"]
    res = CliRunner().invoke(main, [str(a) for a in args] + ["--calibrate", "0.2", "--calibration-out", str(tmp_path / "cal.json")])
    assert res.exit_code == 0, res.output
    cal = load_calibration(tmp_path / "cal.json")
    assert cal.n_success == 5 and cal.n_failure == 5 and cal.fpr <= 0.2 and "calibration: alert below" in res.output
    failures = tmp_path / "failures.jsonl"
    failures.write_text("".join(line + "\n" for line in (tmp_path / "set.jsonl").read_text().splitlines()[5:]))
    args[2] = failures
    res = CliRunner().invoke(main, [str(a) for a in args] + ["--calibrate", "0.2"])
    assert res.exit_code == 2 and "needs labelled successful runs" in res.output and res.output.count("\n") == 1
