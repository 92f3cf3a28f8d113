"""Scoring speed on CPU: ``python eval/bench_scoring.py`` writes ``bench_scoring.md`` and ``bench_scoring.png``.

What it measures, for Llama-style models with random weights (~1M and ~20M parameters,
the tokenizer of :func:`attribution.tiny.build_tokenizer`, a 4096-token window):

1. **Throughput**: run tokens per second of the scoring path (:meth:`Scorer.score_many`, the
   path ``diagnose`` and ``evaluate`` use) on synthetic runs with 70% of their tokens in
   action steps, against the limit: the two models' plain forward passes (``model(ids)``,
   full logits, one sequence at a time) over the same tokens. The two are timed in turns
   and the median of several repetitions is kept, so that load from other processes hits
   both alike.
2. **Naive per-step re-encoding** of a 100-step run: one forward pass per action step over
   that step's whole context, per model (what scoring step by step would cost).
3. **Cost against run length** (1k to 80k tokens, ~1M model): each length in a fresh child
   process, which reports the scoring time, the time of a single-window (4k) run scored in
   turns with it (the per-token cost of a single pass), and its peak resident memory.
4. **A whole dataset**: the 184 Who&When runs (``../shared/datasets/who_and_when``), scored in
   one ``score_many`` batch with the ~1M model. Scoring all of them takes longer than this
   benchmark's 10-minute budget on a small CPU, so by default a length-stratified sample is
   scored and the time is extrapolated by forward-pass tokens; ``--full-dataset`` scores all.

``--quick`` shrinks everything (tiny model, short window) for the smoke test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from attribution.score import CheckpointPair, Scorer, plan_windows, render_run
from attribution.types import Run, Step

HERE = Path(__file__).resolve().parent
WHO_AND_WHEN = HERE.parents[1] / "shared" / "datasets" / "who_and_when"
# One thread in every process: on a small shared CPU, two OpenMP threads that wait on each other
# while other jobs hold a core made times swing by 3x from one call to the next.
THREADS = 1


@dataclass(frozen=True)
class ModelSpec:
    """A Llama-style config; ``vocab`` None takes the tokenizer's size."""

    name: str
    hidden: int
    layers: int
    intermediate: int
    heads: int
    vocab: int | None = None


@dataclass(frozen=True)
class Plan:
    """Sizes of every section; ``full()`` fits 10 minutes on a shared 2-core CPU."""

    models: tuple[ModelSpec, ...]
    window: int
    throughput_tokens: tuple[tuple[int, ...], ...]  # run lengths per model
    reps: tuple[int, ...]  # timed repetitions per model (median kept)
    naive_steps: int
    naive_tokens: int
    naive_every: tuple[int, ...]  # time every k-th action step per model, extrapolate
    lengths: tuple[int, ...]
    dataset_budget: int  # forward-pass tokens of the scored sample; 0 = skip, -1 = all runs

    @classmethod
    def full(cls) -> "Plan":
        return cls(
            models=(ModelSpec("~1M", 128, 5, 320, 4), ModelSpec("~20M", 384, 8, 1024, 6, vocab=8192)),
            window=4096,
            throughput_tokens=((3800, 3000, 2500, 2000, 1500, 1000), (2400, 1800, 1200)),
            reps=(5, 3),
            naive_steps=100,
            naive_tokens=3600,
            naive_every=(4, 16),
            lengths=(1000, 2000, 4000, 8000, 16000, 32000, 80000),
            dataset_budget=200_000,
        )

    @classmethod
    def quick(cls) -> "Plan":
        return cls(
            models=(ModelSpec("tiny", 32, 2, 64, 2),),
            window=256,
            throughput_tokens=((250, 200, 120),),
            reps=(1,),
            naive_steps=20,
            naive_tokens=240,
            naive_every=(1,),
            lengths=(200, 600),
            dataset_budget=0,
        )


# -- models and runs --------------------------------------------------------------------


def build_pair(out_dir: Path, spec: ModelSpec, window: int) -> tuple[Path, Path]:
    """Write ``policy`` and ``reference`` folders of a random Llama pair; return their paths."""
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging

    from attribution.tiny import build_tokenizer

    logging.disable_progress_bar()
    tok = build_tokenizer()
    config = LlamaConfig(
        vocab_size=spec.vocab or len(tok),
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=window,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    paths = []
    for seed, name in ((0, "policy"), (1, "reference")):
        torch.manual_seed(seed)
        path = out_dir / name
        LlamaForCausalLM(config).save_pretrained(path)
        tok.save_pretrained(path)
        paths.append(path)
    return paths[0], paths[1]


def n_params(pair: CheckpointPair) -> int:
    return sum(p.numel() for p in pair.policy.model.parameters())


_WORDS = (
    "the orchestrator asks web surfer to search for answer and report back page shows list of results "
    "with dates prices exitcode 0 code output import pandas as pd df = read_excel print columns verify "
    'result carefully reply TERMINATE when task is done {"name": "search", "query": martial arts classes}'
).split()


def synthetic_run(tokenizer: Any, n_tokens: int, *, n_steps: int | None = None, action_share: float = 0.7, seed: int = 0) -> Run:
    """A run of about ``n_tokens`` rendered tokens, ``action_share`` of its content in action steps.

    Step lengths vary (mean ``n_tokens / n_steps`` when ``n_steps`` is given, else ~120 tokens);
    each step's kind is the one that brings the action share closer to ``action_share``. Headers
    (``[agent]: ``) are context, so the share of all rendered tokens is a little lower.
    """
    from attribution.score.render import SEPARATOR, header

    rng = random.Random(seed)
    mean = n_tokens / n_steps if n_steps else 120
    agents = ("Orchestrator", "WebSurfer", "Assistant", "computer_terminal")
    overhead = {a: len(tokenizer(header(a) + SEPARATOR, add_special_tokens=False)["input_ids"]) for a in agents}
    steps: list[Step] = []
    total, content, action = 1, 0, 0  # <s>
    while (n_steps is None and total < n_tokens) or (n_steps is not None and len(steps) < n_steps):
        want = max(4, int(rng.uniform(0.3, 1.7) * mean) - overhead[agents[0]])
        ids = tokenizer(" ".join(rng.choice(_WORDS) for _ in range(want)), add_special_tokens=False)["input_ids"][:want]
        text = tokenizer.decode(ids)
        i = len(steps)
        agent = agents[i % 3]
        after = content + len(ids)  # the kind that brings the action share of content closer to the target
        if abs((action + len(ids)) / after - action_share) <= abs(action / after - action_share):
            steps.append(Step(i, agent, agent, "action", text))
            action += len(ids)
        else:
            agent = agents[3]
            steps.append(Step(i, agent, "tool", "observation", text))
        total += len(ids) + overhead[agent]
        content += len(ids)
    return Run(steps, f"synthetic-{n_tokens}-{seed}")


def run_within(tokenizer: Any, n_tokens: int, *, seed: int = 0) -> Run:
    """A synthetic run of at most ``n_tokens`` rendered tokens (and close to it)."""
    run = synthetic_run(tokenizer, n_tokens, seed=seed)
    while len(render_run(run, tokenizer)) > n_tokens:
        run = Run(run.steps[:-1], run.run_id)
    return run


def action_share_of(run: Run, tokenizer: Any) -> float:
    rendered = render_run(run, tokenizer)
    act = sum(e - s for i, (s, e) in rendered.spans.items() if run.steps[i].is_action)
    return act / len(rendered)


# -- what is timed ----------------------------------------------------------------------


@torch.no_grad()
def raw_forward(pair: CheckpointPair, token_lists: Sequence[Sequence[int]], window: int) -> int:
    """Plain ``model(ids)`` of both models over each token list, in disjoint windows; returns tokens."""
    n = 0
    for ids in token_lists:
        for lo in range(0, len(ids), window):
            x = torch.tensor([list(ids[lo : lo + window])])
            for model in (pair.policy.model, pair.reference.model):
                model(input_ids=x, use_cache=False).logits
            n += x.shape[1]
    return n


@torch.no_grad()
def naive_per_step(pair: CheckpointPair, run: Run, window: int, *, every: int = 1) -> tuple[dict[int, tuple[list[float], list[float]]], list[int]]:
    """Re-encode each action step's context from scratch: one pass per model per step.

    Step ``i`` with content span ``[s, e)`` runs ``ids[max(0, e - window) : e]`` through the
    policy and the reference and takes the log-probs of its own tokens. Only every
    ``every``-th action step is computed (for timing a sample).

    Returns
    -------
    scores : step index -> (policy log-probs, reference log-probs)
    context : the context length of every action step (timed or not), for extrapolating
    """
    rendered = render_run(run, pair.tokenizer)
    ids = rendered.input_ids
    actions = [s.index for s in run.steps if s.is_action and rendered.spans[s.index][1] > rendered.spans[s.index][0]]
    out: dict[int, tuple[list[float], list[float]]] = {}
    context = []
    for k, i in enumerate(actions):
        s, e = rendered.spans[i]
        c = max(0, e - window)
        context.append(e - c)
        if k % every:
            continue
        x = torch.tensor([ids[c:e]])
        target = torch.tensor(ids[max(s, c + 1) : e])
        lps = []
        for model in (pair.policy.model, pair.reference.model):
            logp = torch.log_softmax(model(input_ids=x, use_cache=False).logits[0].float(), -1)  # [seq, vocab]
            lps.append(logp[max(s, c + 1) - c - 1 : e - c - 1].gather(-1, target[:, None])[:, 0].tolist())
        out[i] = (lps[0], lps[1])
    return out, context


def interleaved(fns: dict[str, Callable[[], Any]], reps: int) -> dict[str, float]:
    """Median seconds of each function, timed in turns (a, b, a, b, ...) after one warm-up each."""
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def time_in_passes(scorer: Scorer, runs: Sequence[Run]) -> tuple[float, float]:
    """(total seconds, seconds inside ``realised_logprobs``) of one ``score_many`` call."""
    import attribution.score.logprobs as lp

    orig = lp.realised_logprobs
    inside = [0.0]

    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return orig(*a, **k)
        finally:
            inside[0] += time.perf_counter() - t

    lp.realised_logprobs = timed
    try:
        t = time.perf_counter()
        scorer.score_many(runs)
        return time.perf_counter() - t, inside[0]
    finally:
        lp.realised_logprobs = orig


def forward_tokens(n_tokens: int, window: int) -> int:
    """Tokens that go through each model when a run of ``n_tokens`` is scored (overlap included)."""
    return sum(w.end - w.start for w in plan_windows(n_tokens, window, max(1, window // 4)))


# -- sections ---------------------------------------------------------------------------


def bench_throughput(pair: CheckpointPair, lengths: Sequence[int], window: int, reps: int) -> dict[str, Any]:
    tok = pair.tokenizer
    runs = [synthetic_run(tok, n, seed=k) for k, n in enumerate(lengths)]
    token_lists = [render_run(r, tok).input_ids for r in runs]
    n = sum(map(len, token_lists))
    scorer = Scorer(pair, window=window)
    med = interleaved({"scorer": lambda: scorer.score_many(runs), "raw": lambda: raw_forward(pair, token_lists, window)}, reps)
    total, inside = time_in_passes(scorer, runs)
    return {
        "runs": len(runs),
        "tokens": n,
        "action_share": statistics.mean(action_share_of(r, tok) for r in runs),
        "scorer_s": med["scorer"],
        "raw_s": med["raw"],
        "scorer_tok_s": n / med["scorer"],
        "raw_tok_s": n / med["raw"],
        "ratio": med["raw"] / med["scorer"],
        "outside_passes": 1 - inside / total,
    }


def bench_naive(pair: CheckpointPair, n_steps: int, n_tokens: int, window: int, every: int, reps: int) -> dict[str, Any]:
    tok = pair.tokenizer
    run = synthetic_run(tok, n_tokens, n_steps=n_steps, seed=100)
    scorer = Scorer(pair, window=window)
    context: list[int] = []

    def naive():
        context[:] = naive_per_step(pair, run, window, every=every)[1]

    med = interleaved({"scorer": lambda: scorer.score(run), "naive": naive}, reps if every == 1 else 1)
    timed = sum(context[::every])
    naive_s = med["naive"] * sum(context) / timed  # timed steps stand for all, by context tokens
    return {
        "steps": len(run.steps),
        "action_steps": len(context),
        "tokens": len(render_run(run, tok)),
        "every": every,
        "scorer_s": med["scorer"],
        "naive_s": naive_s,
        "speedup": naive_s / med["scorer"],
    }


def child_length(model_dir: Path, n_tokens: int, window: int, *, timing: bool = True) -> dict[str, Any]:
    """Run in a fresh process: the time and peak memory of scoring one run of ``n_tokens``.

    A single-window run is scored first (warm-up and memory baseline), then in turns with the
    long run, for the per-token cost of a single pass at the same moment. With ``timing``
    False the long run is scored once, for its memory only.
    """
    torch.set_num_threads(THREADS)
    pair = CheckpointPair.load(model_dir / "policy", model_dir / "reference")
    tok = pair.tokenizer
    scorer = Scorer(pair, window=window)
    run, ref = synthetic_run(tok, n_tokens, seed=1), run_within(tok, window, seed=2)
    scorer.score(ref)
    base = peak_rss_mib()
    times: dict[str, list[float]] = {"run": [], "ref": []}
    peak = None
    if not timing:
        scorer.score(run)
        return {"rss_base_mib": base, "rss_peak_mib": peak_rss_mib()}
    for k in range(3 if n_tokens <= 8 * window else 2):
        for name, r in (("ref", ref), ("run", run)):
            t = time.perf_counter()
            scorer.score(r)
            times[name].append(time.perf_counter() - t)
            if peak is None and name == "run":
                peak = peak_rss_mib()
    t = time.perf_counter()
    scorer.score(ref)
    times["ref"].append(time.perf_counter() - t)
    n, n_ref = len(render_run(run, tok)), len(render_run(ref, tok))
    seconds, ref_seconds = statistics.median(times["run"]), statistics.median(times["ref"])
    return {
        "tokens": n,
        "forward_tokens": forward_tokens(n, window),
        "seconds": seconds,
        "ref_tokens": n_ref,
        "ref_seconds": ref_seconds,
        "cost_vs_single_pass": (seconds / n) / (ref_seconds / n_ref),
        "rss_base_mib": base,
        "rss_peak_mib": peak,
    }


def peak_rss_mib() -> float:
    """This process's peak resident memory: ``VmHWM`` (Linux), else ``ru_maxrss``.

    ``ru_maxrss`` survives ``exec`` on Linux, so a child would inherit its parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


#: glibc serves big blocks from its heap once a freed one raised its dynamic mmap threshold, and
#: the heap's high-water mark then drifts with fragmentation; a fixed threshold returns every big
#: block to the system when it is freed, which shows what the scorer itself holds.
FIXED_MMAP = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def bench_lengths(model_dir: Path, lengths: Sequence[int], window: int) -> list[dict[str, Any]]:
    rows = []
    for n in lengths:
        row = {"length": n, **_child(model_dir, n, window)}
        fixed = _child(model_dir, n, window, "--memory-only", env=FIXED_MMAP)
        row.update(rss_fixed_base_mib=fixed["rss_base_mib"], rss_fixed_peak_mib=fixed["rss_peak_mib"])
        rows.append(row)
        print(f"  length {n}: {row}", file=sys.stderr)
    return rows


def _child(model_dir: Path, n: int, window: int, *flags: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-length", str(n), "--model-dir", str(model_dir), "--window", str(window), *flags]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(f"length {n}: child failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_dataset(pair: CheckpointPair, window: int, budget: int) -> dict[str, Any]:
    from attribution.parse import load_run

    files = sorted(WHO_AND_WHEN.glob("*/*.json"))
    if not files:
        return {"skipped": f"Who&When not found at {WHO_AND_WHEN}"}
    tok = pair.tokenizer
    runs = [load_run(f) for f in files]
    sizes = [len(render_run(r, tok)) for r in runs]
    fwd = [forward_tokens(n, window) for n in sizes]
    if budget < 0:
        sample = list(range(len(runs)))
    else:  # every k-th run by length, k as small as the budget allows: a spread of lengths
        order = sorted(range(len(runs)), key=lambda i: fwd[i])
        for k in range(1, len(runs) + 1):
            sample = order[k // 2 :: k]
            if sum(fwd[i] for i in sample) <= budget:
                break
    scorer = Scorer(pair, window=window)
    chosen = [runs[i] for i in sample]
    t = time.perf_counter()
    scorer.score_many(chosen)
    seconds = time.perf_counter() - t
    f_sample, f_all = sum(fwd[i] for i in sample), sum(fwd)
    return {
        "runs": len(runs),
        "tokens": sum(sizes),
        "forward_tokens": f_all,
        "sample_runs": len(sample),
        "sample_tokens": sum(sizes[i] for i in sample),
        "sample_seconds": seconds,
        "chars_per_token": sum(len(s.content) for r in runs for s in r.steps) / sum(sizes),
        "seconds": seconds * f_all / f_sample,
        "measured_all": len(sample) == len(runs),
    }


# -- report -----------------------------------------------------------------------------


def summary(res: dict[str, Any]) -> list[str]:
    """One line per target, met or not."""

    def mark(ok: bool) -> str:
        return "met" if ok else "**not met**"

    out = []
    for m in res["models"]:
        t, v = m["throughput"], m["naive"]
        out.append(f"- {m['name']}: scoring runs at **{t['ratio']:.2f}x** the raw two-model forward throughput (target >= 0.9x: {mark(t['ratio'] >= 0.9)}), "
                   f"**{v['speedup']:.0f}x** faster than naive per-step re-encoding of a {v['steps']}-step run (target >= 10x: {mark(v['speedup'] >= 10)}).")
    rows = res["lengths"]
    long = [r for r in rows if r["tokens"] > res["plan"]["window"]]
    if long:
        worst = max(r["cost_vs_single_pass"] for r in long)
        out.append(f"- Runs longer than the window cost at most **{worst:.2f}x** a single pass per token (limit 1.5x: {mark(worst <= 1.5)}); "
                   f"time per token stays between {min(1000 * r['seconds'] / r['tokens'] for r in long):.3f} and "
                   f"{max(1000 * r['seconds'] / r['tokens'] for r in long):.3f} s per 1k tokens from {long[0]['tokens']} to {long[-1]['tokens']} tokens (linear).")
        full = [r for r in long if r["forward_tokens"] >= res["plan"]["window"] * 4]  # from one full batch of windows on
        if len(full) >= 2:
            grow = [r["rss_fixed_peak_mib"] - r["rss_fixed_base_mib"] for r in full]
            out.append(f"- Peak memory over the baseline, from {full[0]['tokens']} to {full[-1]['tokens']} tokens: {grow[0]:.0f} to {grow[-1]:.0f} MiB "
                       f"with a fixed mmap threshold, {full[0]['rss_peak_mib'] - full[0]['rss_base_mib']:.0f} to "
                       f"{full[-1]['rss_peak_mib'] - full[-1]['rss_base_mib']:.0f} MiB with glibc's default (see below).")
    d = res.get("dataset", {})
    if d and "skipped" not in d:
        out.append(f"- All {d['runs']} Who&When runs ({d['tokens'] / 1e6:.1f}M tokens) with the {res['models'][0]['name']} model: "
                   f"{'' if d['measured_all'] else 'about '}{d['seconds'] / 60:.0f} min.")
    return out


def write_report(res: dict[str, Any], out_dir: Path, command: str) -> None:
    plan = res["plan"]
    lines = [
        "# Scoring benchmark (CPU)",
        "",
        f"Command: `{command}` ({res['seconds']:.0f} s in all). Written by `eval/bench_scoring.py`; see its docstring for what is timed.",
        "",
        f"Machine: {res['machine']}; torch {res['torch']}, `torch.set_num_threads({THREADS})` in every process. Absolute",
        "numbers were taken on a shared 2-core machine where other jobs ran at the same time: compare the ratios (each",
        "timed in turns with its baseline, median of several repetitions), not the tokens per second. One thread,",
        "because two OpenMP threads on a shared 2-core machine made single calls swing by 3x.",
        "",
        f"Models: Llama-style, random weights, window {plan['window']} tokens, fp32, byte-level BPE tokenizer of `attribution.tiny`.",
        "",
        "## Summary",
        "",
        *summary(res),
        "",
        "## Throughput: the scoring path against two plain forward passes",
        "",
        "| model | params | runs | tokens | action share | scorer tok/s | raw 2-model forward tok/s | ratio (target >= 0.9) | scorer time outside passes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in res["models"]:
        t = m["throughput"]
        lines.append(
            f"| {m['name']} | {m['params'] / 1e6:.2f}M | {t['runs']} | {t['tokens']} | {t['action_share']:.0%} | {t['scorer_tok_s']:.0f} | "
            f"{t['raw_tok_s']:.0f} | **{t['ratio']:.2f}x** | {t['outside_passes']:.1%} |"
        )
    lines += [
        "",
        "Tokens are the runs' rendered tokens (every one goes through both models); runs are shorter than the",
        "window, so the scorer makes one pass per run, like the raw forward. The raw forward computes full-vocabulary",
        "logits at every position; the scorer applies the output head only at scored (action) positions.",
        "",
        f"## Naive per-step re-encoding (a {res['models'][0]['naive']['steps']}-step run)",
        "",
        "| model | steps (action) | tokens | scorer s | naive per-step s | speedup (target >= 10x) |",
        "|---|---|---|---|---|---|",
    ]
    for m in res["models"]:
        v = m["naive"]
        est = "" if v["every"] == 1 else f" (1 step in {v['every']} timed, scaled by context tokens)"
        lines.append(
            f"| {m['name']} | {v['steps']} ({v['action_steps']}) | {v['tokens']} | {v['scorer_s']:.2f} | {v['naive_s']:.1f}{est} | **{v['speedup']:.0f}x** |"
        )
    lines += [
        "",
        "The naive scorer runs one forward pass per model per action step over the step's whole context (up to the",
        "window); its cost grows with the square of the run's length, the scorer's linearly.",
        "",
        f"## Cost and memory against run length ({res['models'][0]['name']} model, window {plan['window']})",
        "",
        "| run tokens | forward tokens per model | scorer s | s per 1k tokens | cost per token vs a single pass (max 1.5) "
        "| peak RSS MiB | peak over baseline MiB | same, fixed mmap threshold MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["lengths"]:
        lines.append(
            f"| {r['tokens']} | {r['forward_tokens']} | {r['seconds']:.1f} | {1000 * r['seconds'] / r['tokens']:.3f} | "
            f"{r['cost_vs_single_pass']:.2f} | {r['rss_peak_mib']:.0f} | {r['rss_peak_mib'] - r['rss_base_mib']:.0f} | "
            f"{r['rss_fixed_peak_mib'] - r['rss_fixed_base_mib']:.0f} |"
        )
    lines += [
        "",
        "Each length runs in a fresh process: the models are loaded and a run of one full window is scored (warm-up,",
        "and the memory baseline); then that run and the long run are scored in turns (3 times up to 8 windows, twice",
        "above) and the medians compared per token: the cost against a single pass. Windows overlap by",
        "`min_context = window // 4`, so a long run makes 4/3 of a single pass's forward tokens; several windows go",
        "through the model in one batch (`max_batch_tokens`), a little cheaper per token than one window alone, and",
        "runs shorter than the window cost less per token (less attention). Peak RSS is the process's high-water",
        "mark (`VmHWM`) after the long run's first scoring; the baseline is the same after loading and scoring one window.",
        "The last column repeats the memory measurement in a process run with `MALLOC_MMAP_THRESHOLD_=131072`: glibc then hands every big block back when it is freed,",
        "so the column shows what scoring holds (a batch of windows, bounded by `max_batch_tokens`, plus the scores",
        "themselves), flat once a batch of windows is full; with the default allocator the high-water mark also",
        "carries heap fragmentation, which drifts up by some tens of MiB with the number of batches.",
        "",
        "## A whole dataset (Who&When, 184 runs, one `score_many` batch)",
        "",
    ]
    d = res.get("dataset", {})
    if not d:
        lines.append("Not run in this mode.")
    elif "skipped" in d:
        lines.append(f"Skipped: {d['skipped']}.")
    else:
        how = (
            f"all {d['runs']} runs scored in one batch"
            if d["measured_all"]
            else f"{d['sample_runs']} runs spread over the length range ({d['sample_tokens']} tokens) scored in one batch in "
            f"{d['sample_seconds']:.0f} s, extrapolated to all runs by forward-pass tokens; `--full-dataset` scores all"
        )
        lines += [
            "| model | runs | tokens | forward tokens per model | time |",
            "|---|---|---|---|---|",
            f"| {res['models'][0]['name']} | {d['runs']} | {d['tokens']} | {d['forward_tokens']} | **{d['seconds'] / 60:.1f} min** |",
            "",
            f"How: {how}. The tokenizer is byte-level and small ({d['chars_per_token']:.1f} characters per token on this",
            "text; a BPE with an 8k vocabulary trained on it gives about 3), so the runs are about twice as long in tokens",
            "as a real model would see them.",
        ]
    lines += [
        "",
        "## GPU (issue 6, part 3)",
        "",
        "Not run: no GPU was lent to the session that wrote this benchmark.",
    ]
    lines += ["", "![cost and memory against run length](bench_scoring.png)", ""]
    (out_dir / "bench_scoring.md").write_text("\n".join(lines))


def plot(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["lengths"]
    n = [r["tokens"] / 1000 for r in rows]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    long = [r for r in rows if r["tokens"] > res["plan"]["window"]]
    ax[0].plot(n, [r["seconds"] for r in rows], "o", label="scorer")
    if long:  # least-squares line through the origin over the runs longer than the window
        slope = sum(r["seconds"] * r["tokens"] for r in long) / sum(r["tokens"] ** 2 for r in long)
        ax[0].plot([0, max(n)], [0, slope * max(n) * 1000], "--", color="gray", label="linear fit")
    ax[0].set(xlabel="run length (k tokens)", ylabel="seconds", title="time against run length")
    ax[0].legend()
    ax[1].plot(n, [r["cost_vs_single_pass"] for r in rows], "o-")
    ax[1].axhline(1.5, color="red", ls="--", label="limit 1.5x")
    ax[1].axhline(4 / 3, color="gray", ls=":", label="4/3 (window overlap)")
    ax[1].set(xlabel="run length (k tokens)", ylabel="cost per token / single pass", title="sliding-window overhead", ylim=(0, 2))
    ax[1].legend()
    ax[2].plot(n, [r["rss_peak_mib"] - r["rss_base_mib"] for r in rows], "o-", label="glibc default")
    ax[2].plot(n, [r["rss_fixed_peak_mib"] - r["rss_fixed_base_mib"] for r in rows], "s-", label="fixed mmap threshold")
    ax[2].set(xlabel="run length (k tokens)", ylabel="MiB over loaded + one window", title="peak resident memory", ylim=(0, None))
    ax[2].legend()
    for a in ax[1:]:
        a.set_xscale("log")
    fig.suptitle(f"scoring cost against run length ({res['models'][0]['name']} model, window {res['plan']['window']}, CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(plan: Plan, out_dir: Path, command: str, work: Path) -> dict[str, Any]:
    import platform

    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return _run(plan, out_dir, command, work)
    finally:
        torch.set_num_threads(threads)


def _run(plan: Plan, out_dir: Path, command: str, work: Path) -> dict[str, Any]:
    import platform

    start = time.perf_counter()
    res: dict[str, Any] = {
        "plan": asdict(plan),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "models": [],
    }
    for k, spec in enumerate(plan.models):
        d = work / spec.name.strip("~")
        pair = CheckpointPair.load(*build_pair(d, spec, plan.window))
        print(f"{spec.name}: throughput", file=sys.stderr)
        m = {"name": spec.name, "dir": str(d), "params": n_params(pair)}
        m["throughput"] = bench_throughput(pair, plan.throughput_tokens[k], plan.window, plan.reps[k])
        print(f"{spec.name}: naive per-step", file=sys.stderr)
        m["naive"] = bench_naive(pair, plan.naive_steps, plan.naive_tokens, plan.window, plan.naive_every[k], plan.reps[k])
        res["models"].append(m)
        print(f"  {m}", file=sys.stderr)
    first = Path(res["models"][0]["dir"])
    print("cost against run length", file=sys.stderr)
    res["lengths"] = bench_lengths(first, plan.lengths, plan.window)
    if plan.dataset_budget:
        print("dataset", file=sys.stderr)
        pair = CheckpointPair.load(first / "policy", first / "reference")
        res["dataset"] = bench_dataset(pair, plan.window, plan.dataset_budget)
        print(f"  {res['dataset']}", file=sys.stderr)
    res["seconds"] = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    write_report(res, out_dir, command)
    plot(res, out_dir / "bench_scoring.png")
    return res


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    p.add_argument("--full-dataset", action="store_true", help="score all 184 Who&When runs (long), not a sample")
    p.add_argument("--out-dir", type=Path, default=HERE, help="where bench_scoring.md/.png go")
    p.add_argument("--child-length", type=int, help=argparse.SUPPRESS)
    p.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--window", type=int, help=argparse.SUPPRESS)
    p.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_length:
        print(json.dumps(child_length(args.model_dir, args.child_length, args.window, timing=not args.memory_only)))
        return None
    plan = Plan.quick() if args.quick else Plan.full()
    if args.full_dataset:
        plan = dataclasses.replace(plan, dataset_budget=-1)
    command = "python eval/bench_scoring.py" + (" --quick" if args.quick else "") + (" --full-dataset" if args.full_dataset else "")
    with tempfile.TemporaryDirectory() as work:
        return run(plan, args.out_dir, command, Path(work))


if __name__ == "__main__":
    main()
