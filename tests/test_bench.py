"""Smoke test of the scoring benchmark (eval/bench_scoring.py): its helpers are right; nothing is timed."""

import importlib.util
import sys
from pathlib import Path

import pytest

from attribution.score import CheckpointPair, Scorer, render_run

BENCH = Path(__file__).resolve().parents[1] / "eval" / "bench_scoring.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_scoring", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scoring"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tok():
    from attribution.tiny import build_tokenizer

    return build_tokenizer()


def test_synthetic_runs_have_the_asked_size_and_mix(bench, tok):
    run = bench.synthetic_run(tok, 3000, seed=3)
    n = len(render_run(run, tok))
    assert 3000 <= n < 3300
    assert 0.6 < bench.action_share_of(run, tok) < 0.75  # 70% of the content; headers are context
    assert len(bench.synthetic_run(tok, 2000, n_steps=100).steps) == 100
    assert len(render_run(bench.run_within(tok, 1000), tok)) <= 1000


def test_naive_per_step_equals_the_scorer(bench, tiny_pair):
    pair = CheckpointPair.load(*tiny_pair)
    run = bench.synthetic_run(pair.tokenizer, 400, n_steps=12, seed=5)
    naive, context = bench.naive_per_step(pair, run, window=1024)
    scored = {s.index: s for s in Scorer(pair, window=1024).score(run)}
    assert len(naive) == len(context) == len(run.action_indices) > 5
    for i, (lp, ref) in naive.items():
        assert lp == pytest.approx(scored[i].logps, abs=1e-4)
        assert ref == pytest.approx(scored[i].ref_logps, abs=1e-4)
    sampled, context2 = bench.naive_per_step(pair, run, window=1024, every=3)
    assert list(sampled) == list(naive)[::3] and context2 == context


def test_raw_forward_and_forward_tokens(bench, tiny_pair):
    pair = CheckpointPair.load(*tiny_pair)
    assert bench.raw_forward(pair, [list(range(3, 40)), list(range(3, 12))], window=16) == 46
    assert bench.forward_tokens(900, 1000) == 900
    assert bench.forward_tokens(80_000, 4096) == pytest.approx(80_000 * 4 / 3, rel=0.02)  # stride 3/4 window


def test_quick_benchmark_writes_its_report(bench, tmp_path):
    res = bench.main(["--quick", "--out-dir", str(tmp_path)])
    text = (tmp_path / "bench_scoring.md").read_text()
    assert "## Throughput" in text and "## Naive per-step" in text and "against run length" in text
    assert (tmp_path / "bench_scoring.png").stat().st_size > 1000
    assert [r["length"] for r in res["lengths"]] == list(bench.Plan.quick().lengths)
    for r in res["lengths"]:
        assert r["rss_peak_mib"] >= r["rss_base_mib"] > 0


@pytest.mark.slow
def test_monitor_benchmark_runs_and_feeds_only_new_tokens(tmp_path):
    """Smoke run of eval/bench_monitor.py's measurement on a tiny model (nothing is timed)."""
    spec = importlib.util.spec_from_file_location("bench_monitor", BENCH.with_name("bench_monitor.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_monitor"] = module
    spec.loader.exec_module(module)
    r = module.bench_model(module.ModelSpec("tiny", 32, 2, 64, 2), tmp_path, window=128, n_steps=16, n_tokens=480, every=8, reps=1)
    assert [row["step"] for row in r["rows"]] == [8, 16]
    # every token once, plus per step its predecessor fed again, plus each later window's overlap
    assert 0 < r["monitor_fed_total"] <= r["tokens"] + r["steps"] + (r["windows"] - 1) * 32
