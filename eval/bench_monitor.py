"""Monitoring cost on CPU: ``python eval/bench_monitor.py`` writes ``bench_monitor.md``.

What it measures, for the random Llama-style pairs of ``bench_scoring.py`` (~1M and ~20M
parameters, 4096-token window) on one synthetic run of 200 steps (~40 tokens each, 70% of the
content in action steps; ~10k rendered tokens, so the window slides twice):

* **monitor, per new step**: the wall time of :meth:`attribution.monitor.Monitor.feed` for each
  step (re-render, longest common prefix, KV-cache crop, forward passes over the new tokens only,
  both models), and the tokens it ran through each model;
* **re-score the prefix**: the wall time of :meth:`attribution.score.Scorer.score` on the whole
  prefix at that step (what a monitor without a cache would pay per step), median of 3, at every
  ``--every``-th step;
* the totals over the run: the monitor's summed per-step times against re-scoring after every
  step (the measured re-score times, linearly interpolated between the measured steps).

One torch thread, as in ``bench_scoring.py``: on a small shared CPU two threads waiting on each
other swing times by 3x. ``--quick`` shrinks everything for a smoke run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_scoring import ModelSpec, build_pair  # noqa: E402
from bench_scoring import synthetic_run  # noqa: E402

from attribution.monitor import Monitor  # noqa: E402
from attribution.score import CheckpointPair, Scorer, plan_windows, render_run  # noqa: E402
from attribution.types import Run  # noqa: E402


def bench_model(spec: ModelSpec, work: Path, *, window: int, n_steps: int, n_tokens: int, every: int, reps: int) -> dict:
    pol, ref = build_pair(work / spec.name.strip("~"), spec, window)
    pair = CheckpointPair.load(pol, ref, beta=0.1)
    run = synthetic_run(pair.tokenizer, n_tokens, n_steps=n_steps, seed=1)
    scorer = Scorer(pair, window=window)
    n_total = len(render_run(run, pair.tokenizer))
    scorer.score(Run(run.steps[:3], "warm"))  # load both models, warm the kernels

    mon = Monitor(scorer)
    per_step, fed, lengths = [], [], []
    for step in run.steps:
        before = mon.fed_tokens
        t0 = time.perf_counter()
        mon.feed(step)
        per_step.append(time.perf_counter() - t0)
        fed.append(mon.fed_tokens - before)
        lengths.append(len(render_run(Run(run.steps[: step.index + 1], "p"), pair.tokenizer)))

    points = sorted({*range(every, len(run.steps) + 1, every), len(run.steps)})
    rescore = {}
    for k in points:
        prefix = Run(run.steps[:k], f"prefix-{k}")
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            scorer.score(prefix)
            times.append(time.perf_counter() - t0)
        rescore[k] = statistics.median(times)
    ks = np.arange(1, len(run.steps) + 1)
    rescore_all = np.interp(ks, [0, *points], [0.0, *[rescore[k] for k in points]])
    rows = []
    for k in points:
        lo = max(0, k - every)
        window_steps = [i for i in range(lo, k) if run.steps[i].is_action]
        rows.append({
            "step": k,
            "prefix_tokens": lengths[k - 1],
            "monitor_ms": 1000 * statistics.median(per_step[i] for i in window_steps),
            "monitor_fed": statistics.median(fed[i] for i in window_steps),
            "rescore_ms": 1000 * rescore[k],
        })
    return {
        "model": spec.name,
        "params": sum(p.numel() for p in pair.policy.model.parameters()),
        "steps": len(run.steps),
        "tokens": n_total,
        "windows": len(plan_windows(n_total, window, window // 4)),
        "rows": rows,
        "monitor_total_s": float(sum(per_step)),
        "monitor_fed_total": int(sum(fed)),
        "rescore_total_s": float(rescore_all.sum()),
        "max_step_ms": 1000 * max(per_step),
        "reps": reps,
    }


def markdown(results: list[dict], args: argparse.Namespace, wall: float) -> str:
    lines = [
        "# Monitoring cost: incremental KV-cache scoring against re-scoring the prefix",
        "",
        f"Regenerate with `python eval/bench_monitor.py` ({wall:.0f} s here, 1 torch thread on a shared 2-core CPU).",
        f"One synthetic run of {args.steps} steps, window {args.window} tokens (min_context {args.window // 4}), random",
        "Llama-style pairs (`bench_scoring.py`'s). Per step: the median wall time of `Monitor.feed` over the action",
        f"steps of the last {args.every} steps (tokens fed per model in brackets) against one `Scorer.score` of the",
        "whole prefix (median of `reps`). Both produce the same scores (tests/test_monitor.py checks every step to 1e-4).",
        f"Load average of the machine when it ended: {os.getloadavg()[0]:.1f} (other jobs share the 2 cores; both columns",
        "suffer alike, the ratio less than the times).",
        "",
    ]
    for r in results:
        lines += [
            f"## {r['model']} model ({r['params']:,} parameters per side), {r['tokens']:,} tokens, {r['windows']} windows, "
            f"re-score median of {r['reps']}",
            "",
            "| step | prefix tokens | monitor, new step (ms) [tokens fed] | re-score whole prefix (ms) | ratio |",
            "|---|---|---|---|---|",
        ]
        for row in r["rows"]:
            lines.append(
                f"| {row['step']} | {row['prefix_tokens']:,} | {row['monitor_ms']:.1f} [{row['monitor_fed']:.0f}] | "
                f"{row['rescore_ms']:.1f} | {row['rescore_ms'] / row['monitor_ms']:.1f}x |"
            )
        lines += [
            "",
            f"Whole run, step by step: the monitor took {r['monitor_total_s']:.1f} s in all ({r['monitor_fed_total']:,} tokens fed per",
            f"model for {r['tokens']:,} rendered, the extra being each step's last token fed again and the windows' overlap)",
            f"against {r['rescore_total_s']:.1f} s for re-scoring the prefix after every step (interpolated between the",
            f"measured steps): {r['rescore_total_s'] / r['monitor_total_s']:.0f}x. Slowest single step: {r['max_step_ms']:.0f} ms",
            "(a step that starts a new window re-encodes that window's overlap).",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny model, short run (smoke test)")
    ap.add_argument("--out", default=str(HERE / "bench_monitor.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        models = ((ModelSpec("tiny", 32, 2, 64, 2), 1),)
        args.window, args.steps, args.tokens, args.every = 256, 30, 900, 10
    else:
        # (model, repetitions of each re-score: the median is kept)
        models = ((ModelSpec("~1M", 128, 5, 320, 4), 3), (ModelSpec("~20M", 384, 8, 1024, 6, vocab=8192), 1))
        args.window, args.steps, args.tokens, args.every = 4096, 200, 10000, 40
    t0 = time.time()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec, reps in models:
            results.append(bench_model(spec, Path(tmp), window=args.window, n_steps=args.steps, n_tokens=args.tokens,
                                       every=args.every, reps=reps))
            print(f"{spec.name}: monitor {results[-1]['monitor_total_s']:.1f} s, re-score {results[-1]['rescore_total_s']:.1f} s", flush=True)
    Path(args.out).write_text(markdown(results, args, time.time() - t0))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
