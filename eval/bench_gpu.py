"""Scoring speed on a GPU: ``python eval/bench_gpu.py`` writes ``eval/bench_gpu.md``. Never run in CI.

Needs one CUDA GPU (about 10 GB free) and no download. What it measures, for a real
architecture with random weights in bf16 (``--model llama-1b``: Llama-3.2-1B's shape, 1.24B
parameters; ``qwen-1.5b``: Qwen2.5-1.5B's shape), a policy and a reference of that shape, and
synthetic multi-agent runs (``bench_scoring.synthetic_run``: 70% of tokens in action steps):

1. **Throughput**: run tokens per second of :meth:`Scorer.score_many` (the path ``diagnose``
   and ``eval`` use: windows batched by the token budget from free memory, fp32 log-softmax on
   scored positions only) against the raw forward of the two models' trunks over the very same
   padded batches (the floor any scorer pays). Median of ``--reps`` timed repetitions after one
   warm-up, each bracketed by ``torch.cuda.synchronize()``.
2. **MFU**: model FLOPs per second over the GPU's dense bf16 peak (H100/H200 989, A100 312,
   L40S 362, L4 121 TFLOP/s, or ``--peak-tflops``); FLOPs per token per model are
   ``2 * non-embedding parameters + 2 * layers * context * hidden`` (causal attention, mean context)
   plus the output head on the scored tokens.
3. **Peak memory** (``torch.cuda.max_memory_allocated``) of the scoring pass.
4. **OOM back-off, exercised for real**: the process is capped (``set_per_process_memory_fraction``)
   to the weights plus a little room and scoring is asked for a batch far larger
   (``max_batch_tokens=--oom-batch-tokens``); CUDA raises out-of-memory, the scorer halves and retries.
   Reported: the retries and the largest difference from the uncapped scores (must be ~0).

``--smoke`` runs the same code on CPU with a tiny config and a simulated out-of-memory error,
to check the script where there is no GPU; its numbers mean nothing and it writes to
``--out`` (default ``/tmp/bench_gpu_smoke.md``), never to the committed table.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench_scoring's synthetic runs
sys.path.insert(0, str(HERE.parent))  # the package, when run from a checkout

from bench_scoring import synthetic_run  # noqa: E402

from attribution.score import CheckpointPair, Scorer, plan_windows, render_run  # noqa: E402
from attribution.score.device import peak_memory, reset_peak_memory  # noqa: E402
from attribution.score.pairs import Checkpoint  # noqa: E402

#: Dense bf16 peak TFLOP/s by a substring of ``torch.cuda.get_device_name()`` (vendor data sheets, SXM parts).
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0, "4090": 165.0}

MODELS: dict[str, dict[str, Any]] = {
    # Llama-3.2-1B's shape.
    "llama-1b": dict(family="llama", hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, rope_theta=500000.0),
    # Qwen2.5-1.5B's shape.
    "qwen-1.5b": dict(family="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                      num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, rope_theta=1000000.0),
    # --smoke only.
    "tiny": dict(family="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, tie_word_embeddings=False),
}


def build_model(name: str, *, window: int, device: str, dtype: torch.dtype, seed: int, attn: str) -> Any:
    """A randomly initialised causal LM of a real architecture's shape, built on ``device``."""
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    spec = dict(MODELS[name])
    family = spec.pop("family")
    cfg = (LlamaConfig if family == "llama" else Qwen2Config)(max_position_embeddings=window, **spec)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation=attn)
    return model.eval()


def injected_pair(policy: Any, reference: Any, tokenizer: Any, dtype: str, device: str) -> CheckpointPair:
    """A :class:`CheckpointPair` over models already in memory (no folder, no load)."""
    sides = []
    for name, model in (("random/policy", policy), ("random/reference", reference)):
        ckpt = Checkpoint(name, dtype=dtype, device=device)
        ckpt._model, ckpt._tokenizer = model, tokenizer
        sides.append(ckpt)
    return CheckpointPair(sides[0], sides[1], beta=1.0, name="bench")


def n_params(model: Any, *, embeddings: bool) -> int:
    total = sum(p.numel() for p in model.parameters())
    return total if embeddings else total - model.get_input_embeddings().weight.numel()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str, reps: int) -> tuple[float, Any]:
    """Median seconds of ``reps`` calls after one warm-up, and the last result."""
    out = fn()
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def padded_batches(scorer: Scorer, pair: CheckpointPair, runs: Sequence[Any]) -> tuple[list[torch.Tensor], int, int]:
    """The scorer's own padded batches of windows (same windows, same budget), as id tensors."""
    from attribution.score.scorer import _batches

    window, min_context = scorer.window_for(pair)
    jobs = []
    for r, run in enumerate(runs):
        ids = torch.tensor(render_run(run, pair.tokenizer, chat_template=False).input_ids)
        for w in plan_windows(len(ids), window, min_context):
            jobs.append((r, ids, w, None))
    budget = scorer.stats["batch_tokens"].get(pair.name) or scorer.max_batch_tokens or 16384
    out, real = [], 0
    for batch in _batches(jobs, budget, False, pair.name):
        width = max(w.end - w.start for _, _, w, _ in batch)
        t = torch.zeros(len(batch), width, dtype=torch.long)
        for b, (_, ids, w, _) in enumerate(batch):
            t[b, : w.end - w.start] = ids[w.start : w.end]
            real += w.end - w.start
        out.append(t)
    return out, real, budget


def simulated_oom(limit_tokens: int) -> Callable[[], None]:
    """--smoke: make forward passes over more than ``limit_tokens`` fail as out of memory; returns an undo."""
    import attribution.score.logprobs as lp

    real = lp.realised_logprobs

    def forward(head, input_ids, *a, **k):
        if input_ids.numel() > limit_tokens:
            raise RuntimeError("CUDA out of memory (simulated by bench_gpu --smoke)")
        return real(head, input_ids, *a, **k)

    lp.realised_logprobs = forward
    return lambda: setattr(lp, "realised_logprobs", real)


def flat_scores(scored: Sequence[Any]) -> torch.Tensor:
    return torch.tensor([x for r in scored for s in r.steps for x in (*s.logps, *s.ref_logps)], dtype=torch.float64)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from attribution.score.device import attention_implementation
    from attribution.tiny import build_tokenizer

    device = "cpu" if args.smoke else "cuda"
    dtype_name = "float32" if args.smoke else "bfloat16"
    dtype = getattr(torch, dtype_name)
    attn = attention_implementation(device, dtype_name)
    tokenizer = build_tokenizer(512)
    reference = build_model(args.model, window=args.window, device=device, dtype=dtype, seed=0, attn=attn)
    policy = build_model(args.model, window=args.window, device=device, dtype=dtype, seed=0, attn=attn)
    with torch.no_grad():  # policy = reference + small noise, like an RL-trained checkpoint
        gen = torch.Generator(device=device).manual_seed(1)
        for p in policy.parameters():
            p.add_(0.01 * p.float().std() * torch.randn(p.shape, generator=gen, device=device, dtype=torch.float32).to(p.dtype))
    pair = injected_pair(policy, reference, tokenizer, dtype_name, device)
    runs = [synthetic_run(tokenizer, args.tokens, seed=k) for k in range(args.runs)]

    # 1-3. Scoring (token budget from free memory) against the raw trunk forward over the same batches.
    scorer = Scorer(pair, window=args.window, chat_template=False)
    reset_peak_memory([device])
    score_s, scored = timed(lambda: scorer.score_many(runs), device, args.reps)
    peak = peak_memory([device]).get(device, 0)
    batches, real_tokens, budget = padded_batches(scorer, pair, runs)
    run_tokens = sum(sum(r.n_tokens.values()) for r in scored)

    @torch.no_grad()
    def raw() -> None:
        for ids in batches:
            ids = ids.to(device)
            for model in (policy, reference):
                model.base_model(input_ids=ids, use_cache=False)

    raw_s, _ = timed(raw, device, args.reps)
    padded_tokens = sum(t.numel() for t in batches)
    scored_tokens = sum(len(s.logps) for r in scored for s in r.steps)
    cfg = policy.config
    mean_ctx = statistics.mean(t.shape[1] for t in batches) / 2
    per_token = 2 * n_params(policy, embeddings=False) + 2 * cfg.num_hidden_layers * mean_ctx * cfg.hidden_size
    flops = 2 * per_token * padded_tokens + 2 * 2 * cfg.hidden_size * cfg.vocab_size * scored_tokens
    name = platform.processor() or "cpu" if args.smoke else torch.cuda.get_device_name()
    peak_tflops = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), None)

    # 4. OOM back-off, for real on CUDA: cap the process near the weights, ask for a huge batch.
    undo = None
    if args.smoke:
        undo = simulated_oom(limit_tokens=2 * args.window)
    else:
        weights = torch.cuda.memory_allocated()
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(min(1.0, (weights + args.oom_room_gib * 2**30) / total))
    try:
        capped = Scorer(pair, window=args.window, chat_template=False, max_batch_tokens=args.oom_batch_tokens)
        t0 = time.perf_counter()
        capped_scored = capped.score_many(runs)
        sync(device)
        oom_s = time.perf_counter() - t0
    finally:
        if undo is not None:
            undo()
        else:
            torch.cuda.set_per_process_memory_fraction(1.0)
    diff = float((flat_scores(capped_scored) - flat_scores(scored)).abs().max())

    return {
        "device": name, "smoke": args.smoke, "model": args.model, "params": n_params(policy, embeddings=True),
        "dtype": dtype_name, "attention": attn, "window": args.window, "runs": args.runs, "run_tokens": run_tokens,
        "budget": budget, "batches": len(batches), "padded_tokens": padded_tokens, "real_tokens": real_tokens,
        "score_s": score_s, "raw_s": raw_s, "score_tok_s": run_tokens / score_s, "raw_tok_s": run_tokens / raw_s,
        "ratio": raw_s / score_s, "tflops": flops / score_s / 1e12, "peak_tflops": peak_tflops,
        "mfu": (flops / score_s / 1e12) / peak_tflops if peak_tflops else None, "peak_gib": peak / 2**30,
        "oom_retries": capped.stats["oom_retries"], "oom_batch_tokens": args.oom_batch_tokens, "oom_s": oom_s,
        "oom_max_diff": diff, "oom_room_gib": args.oom_room_gib, "torch": torch.__version__,
    }


def write_report(res: dict[str, Any], out: Path, command: str) -> None:
    mfu = f"{100 * res['mfu']:.1f}%" if res["mfu"] is not None else "n/a (unknown peak; pass --peak-tflops)"
    lines = [
        "# Scoring on a GPU" + (" (SMOKE RUN ON CPU: numbers mean nothing)" if res["smoke"] else ""), "",
        f"`{command}` on {res['device']}, torch {res['torch']}. Random-initialised `{res['model']}` "
        f"({res['params'] / 1e9:.2f}B parameters) as policy and reference, {res['dtype']} weights, "
        f"attention `{res['attention']}`, window {res['window']}; {res['runs']} synthetic runs, "
        f"{res['run_tokens']} run tokens in all.", "",
        "| measure | value |", "|---|---|",
        f"| scoring throughput (`Scorer.score_many`) | {res['score_tok_s']:,.0f} run tokens/s |",
        f"| raw forward of both trunks, same batches | {res['raw_tok_s']:,.0f} run tokens/s |",
        f"| scoring throughput / raw forward throughput | {res['ratio']:.2f} |",
        f"| model FLOP/s, MFU | {res['tflops']:.1f} TFLOP/s, {mfu} |",
        f"| token budget from free memory | {res['budget']:,} padded tokens per pass ({res['batches']} batches, "
        f"{res['real_tokens'] / res['padded_tokens']:.0%} real) |",
        f"| peak memory while scoring | {res['peak_gib']:.2f} GiB |",
        f"| OOM back-off: batch asked, retries | {res['oom_batch_tokens']:,} tokens with weights + {res['oom_room_gib']} GiB "
        f"allowed, {res['oom_retries']} halvings, {res['oom_s']:.1f} s |",
        f"| OOM back-off: largest change in a log-prob | {res['oom_max_diff']:.2e} |", "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="llama-1b", choices=[m for m in MODELS if m != "tiny"])
    p.add_argument("--runs", type=int, default=64)
    p.add_argument("--tokens", type=int, default=3000, help="tokens per synthetic run")
    p.add_argument("--window", type=int, default=4096)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, when not in the built-in table")
    p.add_argument("--oom-batch-tokens", type=int, default=1 << 20, help="batch asked for in the OOM back-off run")
    p.add_argument("--oom-room-gib", type=float, default=4.0, help="memory allowed above the weights in the OOM run")
    p.add_argument("--smoke", action="store_true", help="CPU, tiny config, simulated OOM: checks the script only")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.smoke:
        args.model, args.runs, args.tokens, args.window, args.reps = "tiny", 6, 600, 256, 1
        args.oom_batch_tokens = 1 << 14
    elif not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA GPU (none here); --smoke checks the script on CPU")
    out = args.out or (Path("/tmp/bench_gpu_smoke.md") if args.smoke else HERE / "bench_gpu.md")
    res = run(args)
    write_report(res, out, "python eval/bench_gpu.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(out.read_text())
    return res


if __name__ == "__main__":
    main()
