"""Train the world's checkpoint pair: SFT for pi_ref, then KL-regularised RL for pi.

1. **SFT.** A fresh GPT-2 learns the reference agents: each step draws a batch of runs of
   the world's reference behaviour (the tabular pi_ref) and minimises the cross-entropy of
   the agents' action tokens (headers and observations are context only). The result is
   the *reference* checkpoint.
2. **RL.** From a copy of it, REINFORCE with a KL penalty to the frozen reference, on runs
   the LM itself plays (:func:`attribution.world.rollout.rollout`). It maximises
   ``E[R] - beta * E[sum_t log pi(y_t|.) / pi_ref(y_t|.)]`` over the action tokens y_t,
   whose optimum (over the LM's action distribution) is the soft-optimal pi* of
   :mod:`attribution.world.solve`. Each action token's weight is its return-to-go
   ``R - beta * sum_{u >= t} (log pi - log pi_ref)(y_u)`` minus a baseline: a tabular
   Monte-Carlo critic (running mean of that return per world state and action prefix).
   *Exploring starts*: in a fraction ``explore_fraction`` of the runs, the first 1 to
   ``explore_max`` decisions (uniform) are taken by the reference agents (tabular pi_ref)
   and are not trained; the LM's own later decisions are. pi* is optimal from every state,
   so this aims at the same target while covering the states the reference agents reach.
   A second term, ``off_trie_weight * -log(mass on tokens that continue some action)`` at
   each sampled action token, keeps the policy's probabilities of the state's actions
   summing to ~1 (the penalty on a sampled bad action would otherwise leak mass to token
   sequences that are no action, which sampling never visits and the KL term never sees).
   The learning rate is constant for the first half of RL, then decays (cosine) to 10%.
   The result is the *policy* checkpoint.

Every ``eval_every`` RL steps the progress advantage of the current (policy, reference)
is measured on the labelled failures (:func:`attribution.world.data.failure_set`): the
accuracy-vs-RL-steps curve of the results. Nothing is selected on it; the last step is
the committed policy.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from attribution.world import BETA
from attribution.world.env import World
from attribution.world.lm import Encoder, ModelConfig, build_model, build_tokenizer, pad_batch, token_logps
from attribution.world.rollout import rollout
from attribution.world.runs import sample_run
from attribution.world.solve import solve

__all__ = ["TrainConfig", "train", "sft", "rl", "save_pair", "score_runs", "attribution_metrics"]


@dataclass
class TrainConfig:
    """Everything that defines the committed pair (the defaults are what was committed)."""

    seed: int = 0
    beta: float = BETA
    """KL coefficient of the RL objective, and the temperature of the oracle."""
    sft_steps: int = 800
    sft_batch: int = 64
    sft_lr: float = 2e-3
    rl_steps: int = 300
    rl_batch: int = 64
    rl_lr: float = 3e-4
    critic_rate: float = 0.1
    """Step size of the running-mean critic."""
    off_trie_weight: float = 1.0
    """Weight of -log(probability mass on the tokens that continue some action) at each sampled
    action token: keeps the LM's action probabilities a distribution over the world's actions
    (the penalty on a sampled bad action would otherwise leak mass to tokens never sampled)."""
    explore_fraction: float = 0.5
    """Share of RL runs that start with decisions of the reference agents (exploring starts)."""
    explore_max: int = 6
    """Those runs start with 1 to explore_max such decisions (uniform)."""
    eval_every: int = 25
    threads: int = 1
    """torch threads for the batched passes; rollouts always run on one. On a shared 2-core
    machine one thread is faster: two threads contending with other processes stall."""
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        for name in ("sft_steps", "rl_steps", "sft_batch", "rl_batch", "eval_every", "threads"):
            if getattr(self, name) < 0 or (name != "rl_steps" and name != "sft_steps" and getattr(self, name) == 0):
                raise ValueError(f"The {name!r} parameter of TrainConfig must be positive. Got {getattr(self, name)!r} instead.")
        if not self.beta > 0:
            raise ValueError(f"The 'beta' parameter of TrainConfig must be > 0. Got {self.beta!r} instead.")


def _encode_batch(encoder: Encoder, runs: list[list[dict]]):
    """[batch, seq] ids and the action-token mask of a list of runs' messages."""
    import torch

    encs = [encoder.encode_run(m) for m in runs]
    ids = pad_batch([e.ids for e in encs], encoder.pad)
    mask = np.zeros(ids.shape, dtype=np.float32)
    for b, e in enumerate(encs):
        for start, end in e.spans.values():
            mask[b, start:end] = 1.0
    return torch.from_numpy(ids), torch.from_numpy(mask), encs


def score_runs(model: Any, encoder: Encoder, runs: list[list[dict]], batch: int = 128) -> list[dict[int, float]]:
    """Per run, ``{message index: summed log-prob of its content tokens}`` for every action."""
    import torch

    out: list[dict[int, float]] = []
    with torch.no_grad():
        for i in range(0, len(runs), batch):
            ids, _, encs = _encode_batch(encoder, runs[i : i + batch])
            lp = token_logps(model, ids).double().numpy()
            for b, e in enumerate(encs):
                out.append({k: float(lp[b, s:t].sum()) for k, (s, t) in e.spans.items()})
    return out


def attribution_metrics(
    records: list[dict], logps: list[dict[int, float]], ref_logps: list[dict[int, float]], beta: float
) -> dict[str, float]:
    """Accuracy of the most-negative progress advantage (and of its correlation with the true
    A*) on the labelled non-lucky failures, from precomputed per-step log-probs."""
    step_hits, agent_hits, pa, true = [], [], [], []
    for rec, lp, rlp in zip(records, logps, ref_logps):
        if rec["success"] or rec.get("lucky_failure"):
            continue
        scores = {k: beta * (lp[k] - rlp[k]) for k in lp}
        culprit = min(scores, key=lambda k: (scores[k], k))
        step_hits.append(culprit == rec["mistake_step"])
        agent_hits.append(rec["messages"][culprit]["name"] == rec["mistake_agent"])
        for k, v in scores.items():
            pa.append(v)
            true.append(rec["advantages"][k])
    pa_arr, true_arr = np.array(pa), np.array(true)
    corr = float(np.corrcoef(pa_arr, true_arr)[0, 1]) if pa_arr.std() > 0 else float("nan")
    return {
        "step_accuracy": float(np.mean(step_hits)),
        "agent_accuracy": float(np.mean(agent_hits)),
        "pearson_pa_true": corr,
        "mae_pa_true": float(np.mean(np.abs(pa_arr - true_arr))),
        "n": len(step_hits),
    }


def save_pair(out_dir: str | Path, reference: Any, policy: Any, tokenizer: Any, beta: float) -> None:
    """``out_dir/{reference,policy}`` (model + tokenizer each) and ``out_dir/pairs.json``."""
    out_dir = Path(out_dir)
    for name, model in (("reference", reference), ("policy", policy)):
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    pairs = {"pairs": {"world": {"policy": "policy", "reference": "reference", "beta": beta}}, "default": "world"}
    (out_dir / "pairs.json").write_text(json.dumps(pairs, indent=1) + "\n")


def train(
    out_dir: str | Path,
    config: TrainConfig = TrainConfig(),
    *,
    eval_records: list[dict] | None = None,
    reference: Any = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train and save the pair under ``out_dir/{reference,policy}``; return the training log
    (also written to ``out_dir/training.json``). With ``reference`` (a model), SFT is skipped."""
    import torch

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the rollout's padded single-token calls would warn each run
    t_start = time.time()
    torch.set_num_threads(config.threads)
    world = World()
    solution = solve(world, config.beta)
    tokenizer = build_tokenizer(world)
    encoder = Encoder(tokenizer)
    if eval_records is None:
        from attribution.world.data import failure_set

        eval_records = failure_set(solution)

    sft_losses: list[float] = []
    if reference is None:
        reference, sft_losses = sft(world, tokenizer, encoder, config, log=log, t_start=t_start)
    reference.eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    t_sft = time.time() - t_start
    policy, history, curve = rl(world, encoder, reference, config, eval_records, log=log, t_start=t_start)
    save_pair(out_dir, reference, policy, tokenizer, config.beta)
    summary = {
        "config": asdict(config),
        "parameters": sum(p.numel() for p in policy.parameters()),
        "wall_seconds": {"sft": round(t_sft, 1), "total": round(time.time() - t_start, 1)},
        "sft_final_loss": float(np.mean(sft_losses[-100:])) if sft_losses else None,
        "sft_loss_floor": _sft_floor(world),
        "rl_history": history,
        "curve": curve,
        "v0_exact": solution.v0(),
        "success_reference_tabular": _success_rate(solution, world.ref_probs),
        "success_optimal_tabular": _success_rate(solution, solution.pi_star),
    }
    Path(out_dir, "training.json").write_text(json.dumps(summary, indent=1))
    log(f"saved {out_dir}/reference and {out_dir}/policy in {time.time() - t_start:.0f}s")
    return summary


def sft(world: World, tokenizer: Any, encoder: Encoder, config: TrainConfig, *, log=print, t_start: float | None = None):
    """Supervised learning of the reference agents' actions; returns (model, losses)."""
    import torch

    t_start = time.time() if t_start is None else t_start
    rng = np.random.default_rng(config.seed)
    model = build_model(tokenizer, config.model, seed=config.seed)
    log(f"model: GPT-2, {sum(p.numel() for p in model.parameters()):,} parameters, vocabulary {len(tokenizer)}")
    opt = torch.optim.AdamW(model.parameters(), lr=config.sft_lr, weight_decay=0.0)
    sched = _warmup_cosine(opt, config.sft_steps, warmup=min(50, max(1, config.sft_steps // 10)))
    model.train()
    losses = []
    for step in range(config.sft_steps):
        runs = [sample_run(world, world.ref_probs, rng).messages for _ in range(config.sft_batch)]
        ids, mask, _ = _encode_batch(encoder, runs)
        lp = token_logps(model, ids)  # [batch, seq]
        loss = -(lp * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 100 == 0 or step + 1 == config.sft_steps:
            log(f"sft {step + 1}/{config.sft_steps}: loss {np.mean(losses[-100:]):.4f} nats/token ({time.time() - t_start:.0f}s)")
    return model.eval(), losses


def rl(world: World, encoder: Encoder, reference: Any, config: TrainConfig, eval_records: list[dict], *, log=print, t_start=None):
    """KL-regularised REINFORCE from ``reference``; returns (policy, history, curve)."""
    import torch

    t_start = time.time() if t_start is None else t_start
    torch.manual_seed(config.seed + 1)
    rng = np.random.default_rng(config.seed + 1)
    vocab = reference.config.vocab_size
    eval_runs = [r["messages"] for r in eval_records]
    policy = copy.deepcopy(reference)
    for p in policy.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(policy.parameters(), lr=config.rl_lr, weight_decay=0.0)
    sched = _constant_then_cosine(opt, config.rl_steps)
    critic: dict[tuple, float] = {}
    ref_eval = score_runs(reference, encoder, eval_runs)
    curve: list[dict] = []
    history: list[dict] = []

    def evaluate(step: int) -> None:
        m = attribution_metrics(eval_records, score_runs(policy, encoder, eval_runs), ref_eval, config.beta)
        m["rl_step"] = step
        curve.append(m)
        log(
            f"rl {step}/{config.rl_steps}: PA step acc {m['step_accuracy']:.3f}, agent acc {m['agent_accuracy']:.3f}, "
            f"corr(PA, A*) {m['pearson_pa_true']:.3f} ({time.time() - t_start:.0f}s)"
        )

    evaluate(0)
    for it in range(config.rl_steps):
        explore = rng.random(config.rl_batch) < config.explore_fraction
        prefix = np.where(explore, rng.integers(1, config.explore_max + 1, size=config.rl_batch), 0)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # per-token calls: more threads only add synchronisation
        ro = rollout(policy, world, encoder, config.rl_batch, rng, ref_prefix=prefix.tolist())
        torch.set_num_threads(threads)
        ids = torch.from_numpy(pad_batch(ro.ids, encoder.pad))
        allowed = torch.zeros((*ids.shape, vocab), dtype=torch.bool)  # [batch, seq, vocab]
        for b, positions in enumerate(ro.allowed):
            for p, toks in positions:
                allowed[b, p, toks] = True
        policy.train()
        lp, log_mass = token_logps(policy, ids, allowed)  # [batch, seq] each
        with torch.no_grad():
            rlp = token_logps(reference, ids)
        kl = (lp.detach() - rlp).double().numpy()
        weights = np.zeros(ids.shape, dtype=np.float32)
        rewards, kls = [], []
        for b, (traj, spans) in enumerate(zip(ro.trajectories, ro.spans)):
            positions, keys = [], []
            for start, end, d in spans:
                for p in range(start, end):
                    positions.append(p)
                    keys.append((d.state, tuple(ro.ids[b][start:p])))
            k = kl[b, positions]
            ret = traj.reward - config.beta * np.cumsum(k[::-1])[::-1]
            for p, key, g in zip(positions, keys, ret):
                base = critic.get(key, g)  # a new key: no signal until it has a mean
                weights[b, p] = g - base
                critic[key] = base + config.critic_rate * (g - base)
            rewards.append(traj.reward)
            kls.append(float(k.sum()))
        pg = -(torch.from_numpy(weights) * lp).sum() / config.rl_batch
        off_trie = -log_mass.sum() / config.rl_batch
        loss = pg + config.off_trie_weight * off_trie
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        sched.step()
        history.append({"reward": float(np.mean(rewards)), "kl": float(np.mean(kls)), "off_trie": float(off_trie.detach())})
        if (it + 1) % config.eval_every == 0 or it + 1 == config.rl_steps:
            recent = history[-config.eval_every :]
            log(
                f"rl {it + 1}: success {np.mean([h['reward'] for h in recent]):.3f}, "
                f"KL {np.mean([h['kl'] for h in recent]):.3f} nats/run, "
                f"-log on-trie mass {np.mean([h['off_trie'] for h in recent]):.4f} nats/run"
            )
            evaluate(it + 1)
    return policy.eval(), history, curve


def _sft_floor(world: World, n: int = 5000, seed: int = 0) -> float:
    """Monte-Carlo estimate of the entropy of the reference agents' action tokens (nats/token):
    the SFT loss an exact model of pi_ref would reach."""
    rng = np.random.default_rng(seed)
    nll, ntok = 0.0, 0
    for _ in range(n):
        for d in sample_run(world, world.ref_probs, rng).decisions:
            nll -= float(np.log(world.ref_probs(d.state)[d.action]))
            ntok += len(world.actions(d.state)[d.action].text.split())
    return nll / ntok


def _success_rate(solution, policy) -> float:
    """Exact probability of success of a tabular policy."""
    world = solution.world
    memo: dict = {}

    def p(s):
        if s not in memo:
            pi = np.asarray(policy(s), dtype=float)
            memo[s] = sum(
                w * sum(o.prob * (o.reward if o.next is None else p(o.next)) for o in world.outcomes(s, a))
                for a, w in zip(world.actions(s), pi)
            )
        return memo[s]

    return float(sum(q * p(s0) for q, s0, _ in world.initial()))


def _constant_then_cosine(opt, total: int):
    """lr constant for the first half, then a cosine decay to 10% (quiets the last steps' noise)."""
    import torch

    def f(step: int) -> float:
        frac = (step - total / 2) / max(1.0, total / 2)
        return 1.0 if frac <= 0 else 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(1.0, frac)))

    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def _warmup_cosine(opt, total: int, warmup: int):
    import torch

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        frac = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(1.0, frac)))

    return torch.optim.lr_scheduler.LambdaLR(opt, f)
