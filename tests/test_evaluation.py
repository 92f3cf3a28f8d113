"""Evaluation: data through HF datasets, exact metrics, honest selection, the score cache, resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from attribution.errors import ConfigError, InputError
from attribution.evaluation import baselines as bl
from attribution.evaluation.data import load_dataset, runs_from_dataset
from attribution.evaluation.metrics import (
    Prediction,
    bootstrap_auroc_ci,
    bootstrap_indices,
    prediction_values,
    step_accuracy_score,
    success_auroc_score,
    summarize,
    top_k_hit_score,
)
from attribution.evaluation.report import pct
from attribution.evaluation.selection import assign_folds, best_setting, cross_validate
from attribution.types import Run, Step

WORDS = "search the page for the ticket price then report back to the orchestrator exitcode 0 code output".split()


def labelled_runs(n_fail=4, n_success=2, seed=0):
    """Generic labelled records: failures with step/agent labels, successes with only success=True."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_fail + n_success):
        msgs = [{"role": "user", "content": f"task {k}: find the price"}]
        for i in range(int(rng.integers(4, 8))):
            text = " ".join(rng.choice(WORDS, size=int(rng.integers(4, 20))))
            if i % 3 == 2:
                msgs.append({"role": "tool", "name": "terminal", "content": text})
            else:
                msgs.append({"role": "assistant", "name": ["planner", "coder"][i % 2], "content": text})
        rec = {"id": f"run-{k}", "messages": msgs, "subset": "alpha" if k % 2 else "beta"}
        if k < n_fail:
            step = int(rng.choice([i for i, m in enumerate(msgs) if m["role"] == "assistant"]))
            rec.update(mistake_step=step, mistake_agent=msgs[step]["name"], success=False)
        else:
            rec["success"] = True
        out.append(rec)
    return out


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def run_of(n, mistake_step=None, mistake_agent=None, success=None, kinds=None):
    kinds = kinds or ["action"] * n
    steps = [Step(i, f"a{i % 2}", "assistant", kinds[i], f"text {i}") for i in range(n)]
    return Run(steps, f"r{n}", mistake_step=mistake_step, mistake_agent=mistake_agent, success=success)


# -- data -------------------------------------------------------------------------------------
def test_random_baseline_over_all_steps_matches_who_and_when_papers(who_and_when):
    """12.00% (Algorithm-Generated) and 4.16% (Hand-Crafted): mean of 1/len(history), from the data."""
    import datasets

    ds = load_dataset("who-and-when", data_dir=who_and_when)
    assert isinstance(ds, datasets.Dataset) and len(ds) == 184
    runs = runs_from_dataset(ds)
    got = {}
    for subset in ("algorithm-generated", "hand-crafted"):
        sub = [r for r in runs if r.meta["subset"] == subset]
        m = summarize(sub, expected=[bl.random_expectation(r, over="all") for r in sub], n_boot=0)
        got[subset] = pct(m["step_accuracy_score"].value)
        assert m["step_accuracy_score"].value == pytest.approx(np.mean([1 / len(r.steps) for r in sub]))
    assert got == {"algorithm-generated": "12.00", "hand-crafted": "4.16"}
    # uniform over the steps the ranker may choose is a different (higher) number
    sub = [r for r in runs if r.meta["subset"] == "hand-crafted"]
    action = summarize(sub, expected=[bl.random_expectation(r, over="action") for r in sub], n_boot=0)
    assert action["step_accuracy_score"].value > 0.0416


def test_generic_labelled_file_through_datasets(tmp_path):
    records = labelled_runs()
    path = write_jsonl(tmp_path / "mine.jsonl", records)
    ds = load_dataset(path)
    assert ds.column_names == ["run_id", "subset", "source", "record", "format"] and len(ds) == 6
    runs = runs_from_dataset(ds)
    assert [r.run_id for r in runs] == [f"run-{k}" for k in range(6)]
    assert runs[0].mistake_step == records[0]["mistake_step"] and runs[0].mistake_agent == records[0]["mistake_agent"]
    assert runs[5].success is True and runs[5].mistake_step is None
    assert runs[1].meta["subset"] == "alpha" and runs[1].source.endswith("mine.jsonl, line 2")
    assert len(load_dataset(path, subset="alpha")) == 3
    (tmp_path / "plain.json").write_text(json.dumps([{"messages": records[0]["messages"]}]))
    with pytest.raises(InputError, match=r"plain.json, run plain/0: expected a labelled run"):
        runs_from_dataset(load_dataset(tmp_path / "plain.json"))
    with pytest.raises(InputError, match="no such file"):
        load_dataset(tmp_path / "missing.jsonl")


def test_who_and_when_offline_without_data_dir_fails_at_once(monkeypatch):
    import huggingface_hub.constants as c

    from attribution.hub import hub_reachable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", c.HF_HUB_OFFLINE)
    hub_reachable.cache_clear()
    t0 = time.monotonic()
    try:
        with pytest.raises(ConfigError, match=r"Kevin355/Who_and_When: the Hugging Face hub is unreachable; pass --data-dir"):
            load_dataset("who-and-when")
    finally:
        hub_reachable.cache_clear()
    assert time.monotonic() - t0 < 5


def test_who_and_when_from_the_hub_parses_like_the_files(monkeypatch, who_and_when):
    """Hub rows come back as Arrow structs (missing keys filled with null); they must parse as the files do."""
    import datasets

    import attribution.hub

    files = {"Algorithm-Generated": ["1.json", "2.json"], "Hand-Crafted": ["1.json", "2.json"]}
    monkeypatch.setattr(attribution.hub, "ensure_offline_if_unreachable", lambda: True)
    monkeypatch.setattr(datasets, "get_dataset_config_names", lambda name: list(files))

    def fake_load(name, config):
        assert name == "Kevin355/Who_and_When"
        rows = [json.loads((who_and_when / config / f).read_text()) for f in files[config]]
        return datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)})

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    hub = runs_from_dataset(load_dataset("who-and-when"))
    local = [r for r in runs_from_dataset(load_dataset("who-and-when", data_dir=who_and_when)) if r.run_id.split("/")[1] in ("1", "2")]
    key = lambda r: (r.meta["subset"], r.content_hash(), r.mistake_step, r.mistake_agent, r.success)  # noqa: E731
    assert sorted(map(key, hub)) == sorted(map(key, local))


# -- metrics ----------------------------------------------------------------------------------
def test_step_match_is_exact_integer():
    assert step_accuracy_score([1], [10]) == 0.0
    assert step_accuracy_score([1, 10], [1, 10]) == 1.0
    assert prediction_values(1, "a", Prediction(10, "a", [10, 1]))["step_accuracy_score"] == 0.0
    with pytest.raises(ValueError, match="integer step indices"):
        step_accuracy_score(["1"], ["10"])
    assert top_k_hit_score([1], [[10, 11, 1]], k=3) == 1.0 and top_k_hit_score([1], [[10, 11, 12, 1]], k=3) == 0.0


def test_summaries_use_sklearn_values_and_fixed_bootstrap():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    runs = [run_of(6, mistake_step=int(rng.integers(6)), mistake_agent="a0", success=bool(k % 3 == 0)) for k in range(40)]
    preds = [Prediction(int(rng.integers(6)), f"a{int(rng.integers(2))}", [int(x) for x in rng.permutation(6)], float(rng.normal())) for _ in runs]
    m = summarize(runs, predictions=preds, n_boot=300, seed=7)
    gold = [r.mistake_step for r in runs]
    assert m["step_accuracy_score"].value == np.mean([g == p.step for g, p in zip(gold, preds)])
    assert m["step_within_2_score"].value == np.mean([abs(g - p.step) <= 2 for g, p in zip(gold, preds)])
    assert m["mean_absolute_step_error"].value == pytest.approx(np.mean([abs(g - p.step) for g, p in zip(gold, preds)]))
    assert m["success_auroc_score"].value == success_auroc_score([r.success for r in runs], [p.run_score for p in preds])
    assert m["step_accuracy_score"].n == 40 and m["step_accuracy_score"].low <= m["step_accuracy_score"].value <= m["step_accuracy_score"].high
    assert summarize(runs, predictions=preds, n_boot=300, seed=7) == m  # same seed, same intervals
    # the vectorised AUROC resamples equal scikit-learn's on the same resamples
    y, s = [r.success for r in runs], [p.run_score for p in preds]
    idx = bootstrap_indices(40, n_boot=50, seed=3)
    ref = [roc_auc_score(np.array(y)[i], np.array(s)[i]) for i in idx if len(set(np.array(y)[i])) == 2]
    lo, hi = bootstrap_auroc_ci(y, s, n_boot=50, seed=3)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(ref, [2.5, 97.5])))
    # one outcome only: no AUROC
    assert summarize(runs[:1], predictions=preds[:1], n_boot=10)["success_auroc_score"].value is None


def test_random_expectation_by_hand():
    kinds = ["observation", "action", "observation", "action", "action"]
    run = run_of(5, mistake_step=3, mistake_agent="a1", kinds=kinds)
    act = bl.random_expectation(run, over="action")  # candidates 1, 3, 4
    assert act["step_accuracy_score"] == pytest.approx(1 / 3)
    assert act["agent_accuracy_score"] == pytest.approx(2 / 3)  # steps 1 and 3 are a1
    assert act["step_within_1_score"] == pytest.approx(2 / 3)
    assert act["mean_absolute_step_error"] == pytest.approx((2 + 0 + 1) / 3)
    assert act["top3_hit_score"] == 1.0
    every = bl.random_expectation(run, over="all")
    assert every["step_accuracy_score"] == pytest.approx(1 / 5) and every["top3_hit_score"] == pytest.approx(3 / 5)
    assert bl.first_action(run).step == 1 and bl.last_action(run).step == 4


# -- selection --------------------------------------------------------------------------------
def test_cross_validated_selection_never_sees_the_held_out_run():
    rng = np.random.default_rng(0)
    runs = [run_of(8, mistake_step=int(rng.integers(8)), mistake_agent="a0") for _ in range(30)]
    table = {(a, "most-negative"): [Prediction(int(rng.integers(8)), "a0") for _ in runs] for a in ("sum", "mean", "min")}
    sel = cross_validate(runs, table, folds=5, seed=4, strata=["x" if i % 3 else "y" for i in range(30)])
    assert sel.folds == 5 and sorted(set(sel.fold_of)) == list(range(5))
    for f, setting in enumerate(sel.chosen):
        train = [i for i, g in enumerate(sel.fold_of) if g != f]
        assert setting == best_setting(runs, table, train)
        for i, g in enumerate(sel.fold_of):
            if g == f:
                assert sel.predictions[i] is table[setting][i]
    assert cross_validate(runs, table, folds=5, seed=4, strata=["x" if i % 3 else "y" for i in range(30)]).fold_of == sel.fold_of
    assert sel.in_sample == best_setting(runs, table, range(30))
    # folds are balanced within each stratum
    for s in ("x", "y"):
        counts = np.bincount([f for i, f in enumerate(sel.fold_of) if ("x" if i % 3 else "y") == s], minlength=5)
        assert counts.max() - counts.min() <= 1
    with pytest.raises(ConfigError, match="at least 2 runs with a mistake_step.*--aggregate and --ranker"):
        cross_validate(runs[:1], {k: v[:1] for k, v in table.items()})
    assert assign_folds(["a"] * 7, 3, 0) == assign_folds(["a"] * 7, 3, 0)


# -- scoring extras and the cache ------------------------------------------------------------------
def test_scorer_entropy_matches_full_softmax(tiny_pair):
    import torch

    from attribution.score import CheckpointPair, Scorer, render_run

    pair = CheckpointPair.load(*tiny_pair)
    run = runs_from_dataset(load_dataset_from_records([labelled_runs()[0]]))[0]
    plain = Scorer(pair).score_many([run])[0]
    scored = Scorer(pair, entropy=True).score_many([run])[0]
    assert [s.logps for s in scored.steps] == [s.logps for s in plain.steps] and plain.entropies == {}
    rendered = render_run(run, pair.tokenizer)
    assert len(rendered) <= 1024  # one window: the naive full pass sees the same context
    with torch.no_grad():
        logits = pair.policy.model(input_ids=torch.tensor([rendered.input_ids])).logits[0].double()  # [seq, vocab]
    checked = 0
    for st in scored.steps:
        if not st.logps:
            assert st.index not in scored.entropies
            continue
        s, e = rendered.spans[st.index]
        assert len(scored.entropies[st.index]) == len(st.logps) == e - s
        for k, p in enumerate(range(s, e)):
            logp = torch.log_softmax(logits[p - 1], -1)
            assert scored.entropies[st.index][k] == pytest.approx(float(-(logp.exp() * logp).sum()), abs=1e-4)
            checked += 1
    assert checked > 20


def load_dataset_from_records(records):
    import datasets

    rows = [{"run_id": r.get("id", str(k)), "subset": "", "source": f"mem, run {k}", "record": json.dumps(r)} for k, r in enumerate(records)]
    return datasets.Dataset.from_list(rows)


def test_cache_round_trip_is_exact_and_keyed_by_setup(tiny_pair, tmp_path):
    from attribution.evaluation.cache import ScoreCache, scoring_key
    from attribution.score import CheckpointPair, Scorer

    pair = CheckpointPair.load(*tiny_pair, beta=0.5)
    run = runs_from_dataset(load_dataset_from_records([labelled_runs()[1]]))[0]
    scorer = Scorer(pair, entropy=True)
    key = scoring_key(scorer)
    assert key["pairs"]["default"]["policy"] == pair.policy.id and key["pairs"]["default"]["render"] == "plain"
    cache = ScoreCache(tmp_path, key)
    assert run not in cache and cache.get(run, {}) is None
    scored = scorer.score_many([run])[0]
    cache.put(scored)
    assert run in cache and len(cache) == 1 and (cache.folder / "key.json").is_file()
    betas = {i: 0.5 for i in run.action_indices}
    got = cache.get(run, betas)
    for a, b in zip(got.steps, scored.steps):
        assert (a.index, a.agent, a.kind, a.logps, a.ref_logps, a.beta) == (b.index, b.agent, b.kind, b.logps, b.ref_logps, b.beta)
        assert a.ratios == b.ratios
    assert got.entropies == {i: e for i, e in scored.entropies.items()}
    assert cache.get(run, {i: 2.0 for i in betas}).steps[1].beta == 2.0  # beta applies at read time
    # what changes the numbers changes the folder; beta does not
    assert ScoreCache(tmp_path, scoring_key(Scorer(CheckpointPair.load(*tiny_pair, beta=3.0)))).digest == cache.digest
    for other in (Scorer(pair, window=128), Scorer(pair, min_context=8), Scorer(CheckpointPair.load(tiny_pair[1], tiny_pair[0]))):
        assert ScoreCache(tmp_path, scoring_key(other)).digest != cache.digest
    # a damaged entry reads as absent (it is scored again), never as wrong numbers
    cache.path(run).write_bytes(b"not an npz")
    assert cache.get(run, betas) is None


# -- end to end ---------------------------------------------------------------------------------
def eval_args(data, pair, cache, *extra):
    return ["eval", "--dataset", str(data), "--policy", str(pair[0]), "--reference", str(pair[1]), "--cache-dir", str(cache),
            "--bootstrap", "200", "--group-size", "2", *extra]


def test_eval_cli_end_to_end(tiny_pair, tmp_path):
    from attribution.cli import main

    data = write_jsonl(tmp_path / "runs.jsonl", labelled_runs())
    out, md = tmp_path / "out.json", tmp_path / "rep" / "eval.md"
    res = CliRunner().invoke(main, eval_args(data, tiny_pair, tmp_path / "cache", "--json", str(out), "--markdown", str(md), "--folds", "2"))
    assert res.exit_code == 0, res.output
    assert "attribution (2-fold CV)" in res.output and "random (all steps)" in res.output and "†" in res.output
    d = json.loads(out.read_text())
    assert d["schema"] == "attribution.eval/1" and d["settings"]["n_runs"] == 6 and d["settings"]["seed"] == 0
    assert d["checkpoints"]["default"]["policy"]["id"].startswith("policy@")
    assert list(d["subsets"]) == ["alpha", "beta", "all"]
    allm = d["subsets"]["all"]
    assert allm["attribution (2-fold CV)"]["metrics"]["step_accuracy_score"]["n"] == 4
    assert allm["attribution (2-fold CV)"]["metrics"]["success_auroc_score"]["n"] == 6  # both outcomes: defined
    assert allm["attribution (2-fold CV)"]["metrics"]["success_auroc_score"]["value"] is not None
    assert [m["in_sample"] for m in allm.values()].count(True) == 1
    assert len(d["grid"]["all"]) == 12 and d["timing"]["scored"] == 6
    text = md.read_text()
    assert "policy@" in text and "† The best setting on all runs" in text and "![tolerance (all)](eval-all-tolerance.png)" in text
    assert (md.parent / "eval-all-tolerance.png").stat().st_size > 1000 and (md.parent / "eval-all-roc.png").is_file()
    # a fixed setting: no selection, nothing flagged; same cache, so nothing is scored
    res = CliRunner().invoke(main, eval_args(data, tiny_pair, tmp_path / "cache", "--aggregate", "mean", "--ranker", "lowest-total", "--json", str(out)))
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["selection"] is None and d["timing"]["scored"] == 0 and "attribution (mean, lowest-total)" in d["subsets"]["all"]
    assert not any(m["in_sample"] for m in d["subsets"]["all"].values())


def test_eval_errors_are_one_line(tiny_pair, tmp_path):
    from attribution.cli import main

    res = CliRunner().invoke(main, eval_args(tmp_path / "nope.jsonl", tiny_pair, tmp_path / "c"))
    assert res.exit_code == 2 and "error:" in res.output and "nope.jsonl: expected a labelled runs file" in res.output
    from attribution.evaluation import evaluate

    with pytest.raises(ConfigError, match="aggregate"):
        evaluate(tmp_path / "nope.jsonl", aggregate="median")


KILLER = """
import os, signal, sys
from attribution.evaluation.cache import ScoreCache
put, count = ScoreCache.put, [0]
def killing_put(self, scored):
    put(self, scored)
    count[0] += 1
    if count[0] == int(os.environ["KILL_AFTER"]):
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no atexit: as a kill -9 mid-evaluation
ScoreCache.put = killing_put
from attribution.cli import main
main(sys.argv[1:], prog_name="attribution")
"""


def test_killed_evaluation_resumes_without_rescoring(tiny_pair, tmp_path, monkeypatch):
    import attribution.score.logprobs as lp
    from attribution.cli import main
    from attribution.score import Scorer

    data = write_jsonl(tmp_path / "runs.jsonl", labelled_runs(5, 2, seed=3))
    cache = tmp_path / "cache"
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    args = eval_args(data, tiny_pair, cache, "--quiet")
    env = {**os.environ, "KILL_AFTER": "3"}
    proc = subprocess.run([sys.executable, str(script), *args, "--json", str(tmp_path / "never.json")], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not (tmp_path / "never.json").exists()
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    entries = sorted(folder.glob("*.npz"))
    assert len(entries) == 3 and not list(folder.glob(".*.tmp"))  # killed mid-group (groups of 2): 3 whole entries
    mtimes = {p.name: p.stat().st_mtime_ns for p in entries}

    forward, scored = [], []
    real_lp, real_score_many = lp.realised_logprobs, Scorer.score_many
    monkeypatch.setattr(lp, "realised_logprobs", lambda *a, **k: forward.append(1) or real_lp(*a, **k))

    def counting(self, runs):  # the trained pair's scoring only (the null pair has its own cache, scored once here)
        if not any(p.policy.id.startswith("null:") for p in self.pairs.pairs.values()):
            scored.extend(r.content_hash() for r in runs)
        return real_score_many(self, runs)

    monkeypatch.setattr(Scorer, "score_many", counting)

    resumed = tmp_path / "resumed.json"
    res = CliRunner().invoke(main, [*args, "--json", str(resumed)])
    assert res.exit_code == 0, res.output
    # The 4 unscored runs, plus the one cached run of the group the kill cut (scored again with its group,
    # so that every run sees the batch it sees in a fresh evaluation; its entry is not rewritten).
    assert len(scored) == 5 and len(set(scored) - {n[: -len(".npz")] for n in mtimes}) == 4
    assert forward  # ... and they did need forward passes
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.npz") if p.name in mtimes} == mtimes  # untouched
    assert len(list(folder.glob("*.npz"))) == 7

    forward.clear(), scored.clear()
    again = tmp_path / "again.json"
    res = CliRunner().invoke(main, [*args, "--aggregate", "min", "--ranker", "sharpest-drop", "--json", str(again)])
    assert res.exit_code == 0, res.output
    assert forward == [] and scored == []  # every run cached: no forward pass at all, for any setting

    clean = tmp_path / "clean.json"
    res = CliRunner().invoke(main, [*eval_args(data, tiny_pair, tmp_path / "fresh-cache", "--quiet"), "--json", str(clean)])
    assert res.exit_code == 0, res.output

    def comparable(path):
        d = json.loads(path.read_text())
        d.pop("timing")
        d["settings"].pop("cache")
        return d

    a, b = comparable(resumed), comparable(clean)
    assert a == b  # identical results after a kill and a resume


@pytest.mark.slow
def test_eval_on_both_who_and_when_subsets(who_and_when, tiny_pair, tmp_path):
    from attribution.evaluation import evaluate

    result = evaluate("who-and-when", data_dir=who_and_when, policy=str(tiny_pair[0]), reference=str(tiny_pair[1]),
                      cache_dir=tmp_path, n_boot=100)
    assert list(result.subsets) == ["algorithm-generated", "hand-crafted", "all"]
    assert result.subsets["all"][bl.RANDOM_ALL].metrics["step_accuracy_score"].n == 184
    assert pct(result.subsets["algorithm-generated"][bl.RANDOM_ALL].metrics["step_accuracy_score"].value) == "12.00"
    assert pct(result.subsets["hand-crafted"][bl.RANDOM_ALL].metrics["step_accuracy_score"].value) == "4.16"
    warm = evaluate("who-and-when", data_dir=who_and_when, policy=str(tiny_pair[0]), reference=str(tiny_pair[1]),
                    cache_dir=tmp_path, n_boot=100)
    assert warm.timing["scored"] == 0 and warm.subsets == result.subsets


def test_nan_step_never_ranks_first():
    from attribution.rank import rank
    from attribution.types import StepScore

    steps = [StepScore(0, "a", "action", score=float("nan")), StepScore(1, "b", "action", score=-1.0),
             StepScore(2, "a", "action", score=-0.5), StepScore(3, "b", "action", score=0.2)]
    for ranker in ("most-negative", "lowest-total", "sharpest-drop"):
        order = rank(steps, ranker)
        assert order[0][0] != 0 and order[-1][0] == 0 and len(order) == 4
        assert all(v == v for _, v in order[:-1])  # no NaN leaks into totals or drops


def test_cross_validated_run_scores_are_rank_normalised_within_folds():
    """Held-out run scores come from different settings per fold: they are pooled only as within-fold ranks."""
    rng = np.random.default_rng(0)
    runs = [run_of(6, mistake_step=int(rng.integers(0, 6)), mistake_agent="a0", success=bool(k % 2)) for k in range(20)]
    table = {
        ("sum", "most-negative"): [Prediction(int(rng.integers(0, 6)), "a0", [], float(1000 + rng.random())) for _ in runs],
        ("mean", "most-negative"): [Prediction(int(rng.integers(0, 6)), "a0", [], float(rng.random())) for _ in runs],
    }
    sel = cross_validate(runs, table, folds=4, seed=0)
    for f in range(sel.folds):
        idx = [i for i, g in enumerate(sel.fold_of) if g == f]
        got = sorted(sel.predictions[i].run_score for i in idx)
        assert got == pytest.approx([(k + 0.5) / len(idx) for k in range(len(idx))])
        raw = [table[sel.chosen[f]][i].run_score for i in idx]
        assert np.argsort(raw).tolist() == np.argsort([sel.predictions[i].run_score for i in idx]).tolist()


# -- cache key and validated reads ------------------------------------------------------------------
def _fresh_pair(policy, reference, **kw):
    from attribution.score.pairs import Checkpoint, CheckpointPair

    return CheckpointPair(Checkpoint(str(policy), **kw), Checkpoint(str(reference), **kw), 1.0)


def test_cache_key_follows_full_weights_tokenizer_files_and_settings(tiny_pair, tmp_path, monkeypatch):
    import shutil

    from attribution.evaluation.cache import scoring_key
    from attribution.score import Scorer

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    pol, ref = tmp_path / "policy", tmp_path / "reference"
    shutil.copytree(tiny_pair[0], pol)
    shutil.copytree(tiny_pair[1], ref)
    shard = pol / "model-extra.safetensors"  # a large shard: a change in its middle must change the key
    shard.write_bytes(bytes(40 << 20))

    def key(**kw):
        scorer_kw = {k: kw.pop(k) for k in ("window", "min_context", "chat_template") if k in kw}
        return json.dumps(scoring_key(Scorer(_fresh_pair(pol, ref, **kw), **scorer_kw)), sort_keys=True)

    k0 = key()
    assert key() == k0  # stable
    with shard.open("r+b") as fh:
        fh.seek(20 << 20)
        fh.write(b"\x01")
    k1 = key()
    assert k1 != k0
    tj = json.loads((ref / "tokenizer.json").read_text())
    tj["model"]["merges"] = tj["model"]["merges"][:-1]  # same vocabulary, one merge fewer
    (ref / "tokenizer.json").write_text(json.dumps(tj))
    k2 = key()
    assert k2 != k1
    variants = {key(dtype="bfloat16"), key(device="cuda:0"), key(window=64), key(min_context=8), key(chat_template=False)}
    assert k2 not in variants and len(variants) == 5
    import attribution.score.scorer as scorer_module

    monkeypatch.setattr(scorer_module, "SCORING_VERSION", "test")
    assert key() != k2


def test_full_content_hash_is_memoised_by_path_size_mtime_inode(tmp_path, monkeypatch):
    import attribution.score.pairs as pairs_module
    from attribution.score.pairs import file_sha256

    monkeypatch.setattr(pairs_module, "RACY_NS", 0)  # memoise a file just written (see the racy test below)
    f, memo = tmp_path / "w.bin", tmp_path / "memo.json"
    f.write_bytes(b"abc" * 1000)
    first = file_sha256(f, memo)
    reads = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: reads.append(self) or real_open(self, *a, **k))
    assert file_sha256(f, memo) == first and f not in reads  # memo hit: the file is not read again
    f.write_bytes(b"abd" * 1000)  # new content, new mtime
    assert file_sha256(f, memo) != first and f in reads


def test_hash_memo_is_not_fooled_by_a_restored_mtime(tmp_path, monkeypatch):
    """Issue 20: a weight changed in place with its size and mtime restored was served from the memo."""
    import attribution.score.pairs as pairs_module
    from attribution.score.pairs import file_sha256

    monkeypatch.setattr(pairs_module, "RACY_NS", 0, raising=False)
    f, memo = tmp_path / "w.bin", tmp_path / "memo.json"
    f.write_bytes(b"abc" * 1000)
    time.sleep(0.05)  # past the file system's timestamp tick, so the next write gets a new ctime
    first = file_sha256(f, memo)
    st = f.stat()
    with f.open("r+b") as fh:  # in place: same inode, same size
        fh.write(b"x")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime restored (touch -d, cp -p, rsync -t)
    assert (f.stat().st_size, f.stat().st_mtime_ns, f.stat().st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert file_sha256(f, memo) != first
    import hashlib

    assert file_sha256(f, memo) == hashlib.sha256(f.read_bytes()).hexdigest()


def test_weight_changed_in_place_with_its_mtime_restored_is_rescored(tiny_pair, tmp_path, monkeypatch):
    """Issue 20, end to end: the evaluation is scored again, not served from the cache."""
    import shutil

    import attribution.score.pairs as pairs_module
    from attribution.evaluation import evaluate

    monkeypatch.setattr(pairs_module, "RACY_NS", 0, raising=False)  # memoise the fresh copies, as for an old checkpoint
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    pol, ref = tmp_path / "policy", tmp_path / "reference"
    shutil.copytree(tiny_pair[0], pol)
    shutil.copytree(tiny_pair[1], ref)
    runs = runs_from_dataset(load_dataset_from_records(labelled_runs(3, 1, seed=2)))
    kw = dict(policy=str(pol), reference=str(ref), folds=2, n_boot=0, cache_dir=tmp_path / "c", null_pair=False)
    first = evaluate(runs, **kw)
    assert (tmp_path / "xdg" / "attribution" / "file-sha256.json").is_file()  # the hashes are memoised
    time.sleep(0.05)  # past the file system's timestamp tick
    weights = pol / "model.safetensors"
    st = weights.stat()
    with weights.open("r+b") as fh:  # the last byte of the last tensor: same size, same inode, still loadable
        fh.seek(-1, os.SEEK_END)
        last = fh.read(1)
        fh.seek(-1, os.SEEK_END)
        fh.write(bytes([last[0] ^ 0x01]))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    pairs_module._LOADED.clear()  # as a new process would
    again = evaluate(runs, **kw)
    assert again.timing["scored"] == len(runs) and again.timing["from_cache"] == 0
    assert again.settings["cache"]["setup"] != first.settings["cache"]["setup"]


def test_hash_memo_hashes_a_file_changed_a_moment_ago_again(tmp_path, monkeypatch):
    from attribution.score.pairs import file_sha256

    f, memo = tmp_path / "w.bin", tmp_path / "memo.json"
    f.write_bytes(b"abc" * 1000)
    file_sha256(f, memo)
    assert not memo.exists()  # just written: not memoised (a second write in the same tick would keep its stat)
    reads = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: reads.append(self) or real_open(self, *a, **k))
    file_sha256(f, memo)
    assert f in reads


def test_null_pair_is_rescored_after_a_tokenizer_change_that_keeps_the_vocabulary(tiny_pair, tmp_path, monkeypatch):
    """Issue 20: the null pair's setup left the tokenizer out (its models have no files), so a tokenizer
    with the same vocabulary but fewer merges, or a normaliser added, was served the old scores."""
    import shutil

    from attribution.evaluation import evaluate

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    pol, ref = tmp_path / "policy", tmp_path / "reference"
    shutil.copytree(tiny_pair[0], pol)
    shutil.copytree(tiny_pair[1], ref)
    runs = runs_from_dataset(load_dataset_from_records(labelled_runs(3, 1, seed=2)))
    kw = dict(policy=str(pol), reference=str(ref), folds=2, n_boot=0, cache_dir=tmp_path / "c")
    first = evaluate(runs, **kw)
    assert evaluate(runs, **kw).timing["null_pair"]["scored"] == 0  # cached
    setups = {first.settings["null_pair"]["cache_setup"]}

    def change(edit):
        for side in (pol, ref):
            tj = json.loads((side / "tokenizer.json").read_text())
            vocab = dict(tj["model"]["vocab"])
            edit(tj)
            assert tj["model"]["vocab"] == vocab  # the same vocabulary
            (side / "tokenizer.json").write_text(json.dumps(tj))

    def fewer_merges(tj):
        tj["model"]["merges"] = tj["model"]["merges"][: len(tj["model"]["merges"]) // 2]

    def lowercase(tj):
        tj["normalizer"] = {"type": "Lowercase"}

    import attribution.score.pairs as pairs_module

    for edit in (fewer_merges, lowercase):
        change(edit)
        pairs_module._LOADED.clear()  # as a new process would: load the changed folders again
        res = evaluate(runs, **kw)
        assert res.timing["null_pair"]["scored"] == len(runs) and res.timing["null_pair"]["from_cache"] == 0
        setups.add(res.settings["null_pair"]["cache_setup"])
        fresh = evaluate(runs, **{**kw, "cache_dir": tmp_path / f"fresh-{edit.__name__}"})
        assert [r["predictions"][bl.NULL_PAIR] for r in res.runs] == [r["predictions"][bl.NULL_PAIR] for r in fresh.runs]
    assert len(setups) == 3


def test_cache_entry_copied_from_another_setup_is_a_bad_entry(tiny_pair, tmp_path):
    """Issue 20: each entry records its setup; an entry copied in from another setup's folder was used."""
    import shutil

    from attribution.evaluation import evaluate

    runs = runs_from_dataset(load_dataset_from_records(labelled_runs(3, 1, seed=2)))
    kw = dict(policy=str(tiny_pair[0]), reference=str(tiny_pair[1]), folds=2, n_boot=0, cache_dir=tmp_path / "c")
    clean = evaluate(runs, **kw)
    other = evaluate(runs, **{**kw, "policy": kw["reference"], "reference": kw["policy"]})  # another setup, other numbers
    mine, theirs = Path(clean.settings["cache"]["dir"]), Path(other.settings["cache"]["dir"])
    assert mine != theirs
    name = f"{runs[1].content_hash()}.npz"
    assert (mine / name).read_bytes() != (theirs / name).read_bytes()
    shutil.copyfile(theirs / name, mine / name)
    again = evaluate(runs, **kw)
    assert again.timing["bad_cache_entries"] == 1 and again.timing["scored"] == 1
    assert again.runs == clean.runs  # the copied entry was never used
    assert evaluate(runs, **kw).timing["bad_cache_entries"] == 0  # rewritten for this setup


def _corrupt(kind, path, cache, run):
    from attribution.evaluation.cache import _checksum

    if kind == "folder":
        path.unlink()
        path.mkdir()
        (path / "x").write_text("x")
        return
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
        return
    if kind == "crc":
        with np.load(path) as z:
            body = z["logps"].tobytes()
        at = data.index(body) + len(body) // 2
        path.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
        return
    with np.load(path) as z:
        arrays = {k: z[k] for k in ("steps", "offsets", "logps", "ref_logps", "entropy")}
        meta = json.loads(str(z["meta"]))
    if kind == "nan":
        arrays["logps"][0] = np.nan
    elif kind == "length":
        arrays["ref_logps"] = arrays["ref_logps"][:-1]
    meta["sha256"] = _checksum(arrays)  # a consistent file with wrong numbers: only the content checks catch it
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays, meta=np.asarray(json.dumps(meta)))
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("kind", ["truncated", "crc", "nan", "length", "folder"])
def test_bad_cache_entry_is_recomputed_and_counted(tiny_pair, tmp_path, kind):
    from attribution.evaluation import evaluate
    from attribution.evaluation.cache import ScoreCache

    runs = runs_from_dataset(load_dataset_from_records(labelled_runs(3, 1, seed=2)))
    kw = dict(policy=str(tiny_pair[0]), reference=str(tiny_pair[1]), folds=2, n_boot=0, cache_dir=tmp_path / "c")
    clean = evaluate(runs, **kw)
    folder = Path(clean.settings["cache"]["dir"])
    cache = ScoreCache(tmp_path / "c", json.loads((folder / "key.json").read_text()))
    _corrupt(kind, cache.path(runs[1]), cache, runs[1])
    again = evaluate(runs, **kw)
    assert again.timing["bad_cache_entries"] == 1 and again.timing["scored"] == 1 and again.timing["from_cache"] == len(runs) - 1
    assert again.runs == clean.runs  # the bad entry was never used
    assert evaluate(runs, **kw).timing["bad_cache_entries"] == 0  # rewritten whole


# -- structural floors ------------------------------------------------------------------------------
def test_longest_action_step_baseline():
    from attribution.types import StepScore

    run = run_of(5, mistake_step=1, kinds=["action", "action", "observation", "action", "action"])
    steps = [StepScore(i, s.agent, s.kind, logps=[0.0] * n, ref_logps=[0.0] * n)
             for i, (s, n) in enumerate(zip(run.steps, [3, 7, 0, 7, 2]))]
    p = bl.longest_action(run, steps)
    assert p.step == 1 and p.ranking == [1, 3, 0, 4]  # most tokens first, earlier step on a tie; never an observation


def test_eval_reports_structural_floors_with_paired_differences(tiny_pair, tmp_path):
    from attribution.evaluation import evaluate
    from attribution.evaluation.report import format_table, render_markdown

    runs = runs_from_dataset(load_dataset_from_records(labelled_runs(6, 2, seed=4)))
    kw = dict(policy=str(tiny_pair[0]), reference=str(tiny_pair[1]), folds=2, n_boot=50, cache_dir=tmp_path)
    res = evaluate(runs, **kw)
    for subset, methods in res.subsets.items():
        assert {bl.LONGEST, bl.NULL_PAIR} <= set(methods)
        d = res.differences[subset]
        assert set(d) == {bl.LONGEST, bl.NULL_PAIR}
        for b in d:
            ours = methods[res.attribution_method].metrics["step_accuracy_score"].value
            theirs = methods[b].metrics["step_accuracy_score"].value
            m = d[b]["step_accuracy_score"]
            assert m.value == pytest.approx(ours - theirs) and m.low <= m.value <= m.high
    js = json.loads(res.to_json())
    assert js["differences"]["all"][bl.NULL_PAIR]["agent_accuracy_score"]["n"] == 6
    assert js["settings"]["null_pair"]["seeds"] == list(bl.NULL_SEEDS)
    assert all(bl.NULL_PAIR in r["predictions"] and bl.LONGEST in r["predictions"] for r in js["runs"])
    assert f"− {bl.NULL_PAIR}: step acc" in format_table(res) and f"| {bl.LONGEST} |" in render_markdown(res)
    # fixed seeds: the null pair's numbers are the same in a fresh process-free rerun without the cache
    again = evaluate(runs, **{**kw, "cache_dir": tmp_path / "other"})
    assert [r["predictions"][bl.NULL_PAIR] for r in again.runs] == [r["predictions"][bl.NULL_PAIR] for r in res.runs]
    assert res.settings["null_pair"]["cache_setup"] != res.settings["cache"]["setup"]


def test_null_pair_is_untrained_with_the_pairs_architecture_and_tokenizer(tiny_pair):
    from attribution.score import CheckpointPair, Scorer

    pair = CheckpointPair.load(*tiny_pair, beta=0.3)
    null = bl.null_scorer(Scorer(pair)).pairs.pairs["default"]
    assert null.beta == 0.3 and null.tokenizer is pair.tokenizer
    assert type(null.policy.model) is type(pair.policy.model) and null.policy.model.config.to_dict() == pair.policy.model.config.to_dict()
    w = [m.get_output_embeddings().weight for m in (null.policy.model, null.reference.model, pair.policy.model)]
    assert not torch_equal(w[0], w[1]) and not torch_equal(w[0], w[2])
    again = bl.null_scorer(Scorer(pair)).pairs.pairs["default"]
    assert torch_equal(again.policy.model.get_output_embeddings().weight, w[0])  # fixed seeds


def torch_equal(a, b):
    import torch

    return bool(torch.equal(a, b))


def test_readme_example_is_drawn_by_a_fixed_rule_whatever_the_verdict():
    """The first non-lucky failure in file order, even when the trained pair gets it wrong."""
    from attribution.world.results import Scored, _culprit, pick_example

    def scored(rid, lucky, pa, ref):
        msgs = [{"role": "user", "content": "t"}] + [{"role": "assistant", "name": "a", "content": "x"}] * 2
        rec = {"id": rid, "messages": msgs, "success": False, "lucky_failure": lucky, "mistake_step": 1,
               "mistake_agent": "a", "advantages": [None, -1.0, 0.0]}
        return Scored(rec, [1, 2], {1: pa[0] + ref[0], 2: pa[1] + ref[1]}, {1: ref[0], 2: ref[1]}, {1: 1, 2: 1}, 1.0)

    runs = [scored("lucky", True, (-1, 0), (0, -1)), scored("wrong", False, (0, -1), (0, -1)), scored("right", False, (-1, 0), (0, -1))]
    assert _culprit(runs[1], Scored.pa) != runs[1].record["mistake_step"]
    assert pick_example(runs)["id"] == "wrong"


def test_eval_of_a_half_labelled_folder_evaluates_the_labelled_runs(tiny_pair, tmp_path):
    """Issue 17: the unlabelled runs are counted and named, not a stop; --require-labels keeps the old strictness."""
    from attribution.cli import main

    folder = tmp_path / "mixed"
    folder.mkdir()
    write_jsonl(folder / "labelled.jsonl", labelled_runs(3, 1, seed=4))
    plain = [{k: v for k, v in r.items() if k not in ("mistake_step", "mistake_agent", "success")} for r in labelled_runs(2, 0, seed=5)]
    write_jsonl(folder / "plain.jsonl", [{**r, "id": f"plain-{k}"} for k, r in enumerate(plain)])
    out = tmp_path / "out.json"
    res = CliRunner().invoke(main, [*eval_args(folder, tiny_pair, tmp_path / "cache", "-q"), "--json", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["settings"]["n_runs"] == 4 and d["settings"]["skipped_unlabelled"] == {"n": 2, "runs": ["plain-0", "plain-1"]}
    lines = res.output.splitlines()
    assert len(lines) == 2 and "step accuracy" in lines[0] and "over 3 failed runs" in lines[0]  # -q: the headline, and the skip
    assert lines[1].startswith("skipped 2 unlabelled runs") and "plain-0, plain-1" in lines[1]
    res = CliRunner().invoke(main, [*eval_args(folder, tiny_pair, tmp_path / "cache", "--require-labels")])
    assert res.exit_code == 2 and "expected a labelled run" in res.output and "plain-0" in res.output
