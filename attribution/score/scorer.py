"""Score every action step of a run with one forward pass per model over the rendered run.

For an action step of agent k, token y_i gets ``beta_k * (log pi_k(y_i | ctx) - log pi_ref,k(y_i | ctx))``
where ctx is the rendered run before y_i. All agents mapped to one pair share its passes.

A run longer than the model's window is cut into overlapping windows (:func:`plan_windows`):
every token is scored exactly once, in the window where it has at least ``min_context`` tokens
of left context (or its whole past, near the start), so no step is dropped or scored blind.
Windows of many runs are batched together by a token budget, by default derived from the free
device memory (:func:`attribution.score.device.token_budget`). An out-of-memory error halves the
batch and retries it (:func:`_forward_with_backoff`): no run is lost, and ``Scorer.stats`` counts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from attribution.errors import ConfigError, ScoringError
from attribution.score.pairs import CheckpointPair, PairConfig
from attribution.score.render import render_run
from attribution.types import Run, StepScore

__all__ = ["SCORING_VERSION", "Window", "plan_windows", "Scorer", "ScoredRun", "check_beta"]

#: Version of the numbers this code produces; part of the score cache's key. Bump it with any
#: change of rendering, tokenisation or log-prob computation that moves a score.
#: 2: the run is encoded once (offsets map tokens to steps); fp32 output head for half weights.
SCORING_VERSION = "2"


@dataclass(frozen=True)
class Window:
    """Tokens ``[start, end)`` go through the model together; tokens ``[lo, hi)`` are scored from it."""

    start: int
    end: int
    lo: int
    hi: int


def plan_windows(n_tokens: int, window: int, min_context: int) -> list[Window]:
    """Cut ``n_tokens`` into windows of at most ``window`` tokens with stride ``window - min_context``.

    Token ``i >= 1`` is scored in exactly one window, with left context starting at that
    window's start: the whole past while ``i < window``, else at least ``min_context`` tokens.

    Examples
    --------
    >>> plan_windows(10, 8, 4)
    [Window(start=0, end=8, lo=1, hi=8), Window(start=4, end=10, lo=8, hi=10)]
    """
    if window < 2:
        raise ConfigError(f"window must be at least 2 tokens. Got {window} instead.")
    if not 1 <= min_context < window:  # a token at a window's first position would be scored blind
        raise ConfigError(f"min_context must be in [1, window). Got {min_context} with window {window} instead.")
    if n_tokens <= window:
        return [Window(0, n_tokens, 1, n_tokens)] if n_tokens > 1 else []
    stride = window - min_context
    out = [Window(0, window, 1, window)]
    start = stride
    while out[-1].hi < n_tokens:
        end = min(start + window, n_tokens)
        out.append(Window(start, end, out[-1].hi, end))
        start += stride
    return out


@dataclass
class ScoredRun:
    """Per-step scores of one run plus what produced them."""

    run: Run
    steps: list[StepScore]
    n_tokens: dict[str, int] = field(default_factory=dict)  # rendered length per pair
    # With Scorer(entropy=True): step index -> the policy's predictive entropy (nats) at each scored token.
    entropies: dict[int, list[float]] = field(default_factory=dict)


def _context_length(model: Any) -> int | None:
    """The model's position limit from its config, or None when it has none (e.g. a state-space model)."""
    cfg = model.config
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        v = getattr(cfg, attr, None)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def _model_window(pair: CheckpointPair) -> int | None:
    """The smaller of the two models' context lengths (None when neither has a limit)."""
    limits = [n for n in (_context_length(pair.policy.model), _context_length(pair.reference.model)) if n is not None]
    return min(limits) if limits else None


def check_beta(beta: Any, where: str) -> float:
    """``beta`` as a float, or a one-line ConfigError unless it is a finite positive number."""
    ok = isinstance(beta, (int, float)) and not isinstance(beta, bool) and math.isfinite(beta) and beta > 0
    if not ok:
        raise ConfigError(f"The 'beta' parameter of {where} must be a finite positive number. Got {beta!r} instead.")
    return float(beta)


class Scorer:
    """Scores runs with a :class:`PairConfig` (or a single :class:`CheckpointPair`).

    Parameters
    ----------
    pairs : PairConfig or CheckpointPair
    window : int, optional
        Tokens per forward pass; defaults to the model's context length.
    min_context : int, optional
        Least left context of a token scored in a later window; default ``window // 4``
        (so a long run costs at most 4/3 of one pass).
    chat_template : {"auto", True, False}
        See :func:`attribution.score.render.render_run`.
    max_batch_tokens : int, optional
        Padded tokens per forward pass when batching windows of several runs; default from the
        free device memory (CUDA), else 16384. An out-of-memory error halves it and retries.
    chunk : int
        Positions per output-head call (bounds the fp32 logits held at once).
    progress : bool
        Show a progress bar over forward passes.
    entropy : bool
        Also record the policy's predictive entropy at each scored token
        (``ScoredRun.entropies``), from the same forward pass.
    """

    def __init__(
        self,
        pairs: PairConfig | CheckpointPair,
        *,
        window: int | None = None,
        min_context: int | None = None,
        chat_template: bool | str = "auto",
        max_batch_tokens: int | None = None,
        chunk: int = 1024,
        progress: bool = False,
        entropy: bool = False,
    ):
        self.pairs = PairConfig.single(pairs) if isinstance(pairs, CheckpointPair) else pairs
        for name, pair in self.pairs.pairs.items():  # every path (default pair, --pairs, --beta) ends here
            check_beta(pair.beta, f"pair {name!r}")
        self.window = window
        self.min_context = min_context
        self.chat_template = chat_template
        self.max_batch_tokens = max_batch_tokens
        self.chunk = chunk
        self.progress = progress
        self.entropy = entropy
        # What scoring cost, for reports: out-of-memory retries and the token budget used per pair.
        self.stats: dict[str, Any] = {"oom_retries": 0, "batch_tokens": {}}

    # -- settings -------------------------------------------------------------------------
    def window_for(self, pair: CheckpointPair) -> tuple[int, int]:
        limit = _model_window(pair)
        if limit is None and self.window is None:
            raise ConfigError(
                f"{pair.policy.name}: the model's config gives no context length; pass the window to score with (--window)"
            )
        window = self.window or limit
        if limit is not None and window > limit:
            raise ConfigError(
                f"window must be at most the context length of pair {pair.name!r} (the smaller of its two models), {limit}. "
                f"Got {window} instead."
            )
        min_context = max(1, window // 4) if self.min_context is None else self.min_context
        return window, min_context

    def settings(self) -> dict[str, Any]:
        return {"window": self.window, "min_context": self.min_context, "chat_template": self.chat_template}

    def _auto_budget(self, pair: CheckpointPair, window: int) -> int:
        """Padded tokens per pass that fit the free memory of the pair's device(s), models loaded."""
        from attribution.score.device import free_memory, token_budget

        budgets = []
        for ckpt in (pair.policy, pair.reference):
            model = ckpt.model
            free = free_memory(str(next(model.parameters()).device))
            head = 3 * 4 * self.chunk * int(getattr(model.config, "vocab_size", 0) or 0)  # fp32 logits and temporaries
            budgets.append(token_budget(free, [model.config], ckpt.dtype, window=window, head_bytes=head))
        return min(budgets)

    def checkpoints(self) -> dict[str, dict[str, Any]]:
        return {name: pair.describe() for name, pair in self.pairs.pairs.items()}

    # -- placement ------------------------------------------------------------------------
    def assign(self, run: Run) -> dict[int, CheckpointPair]:
        """The pair that scores each action step; an agent no pair takes is an error."""
        out = {}
        for step in run.steps:
            if step.is_action:
                pair = self.pairs.pair_for(step.agent)
                if pair is None:
                    raise ConfigError(
                        f"{run.source or run.run_id}, step {step.index}: no checkpoint pair for agent {step.agent!r} "
                        f"in {self.pairs.source} (add it to 'agents' or set a 'default')"
                    )
                out[step.index] = pair
        return out

    # -- scoring --------------------------------------------------------------------------
    def score(self, run: Run) -> list[StepScore]:
        return self.score_many([run])[0].steps

    def score_many(self, runs: Sequence[Run]) -> list[ScoredRun]:
        """Score several runs, batching windows across runs; one pass per model per window."""
        import torch

        from attribution.score.logprobs import output_head

        assignments = [self.assign(run) for run in runs]
        # Pairs that load the same two models (same folders, dtype and device: one Checkpoint
        # object each, see pairs._checkpoint) share forward passes; beta never is shared: each
        # step takes its own pair's beta below.
        by_pair: dict[tuple[int, int], CheckpointPair] = {}
        for a in assignments:
            for pair in a.values():
                by_pair.setdefault(_models_key(pair), pair)

        # (run idx, step idx) -> (token texts, policy logps, ref logps, beta, policy entropies)
        results: dict[tuple[int, int], tuple[list[str], list[float], list[float], float, list[float]]] = {}
        lengths: list[dict[str, int]] = [{} for _ in runs]
        for key, pair in by_pair.items():
            tok = pair.tokenizer
            window, min_context = self.window_for(pair)
            jobs = []  # (run idx, token ids [n_tokens], window, positions scored from it [n])
            placed = {}  # run idx -> (rendered, its steps scored by this pair)
            # run idx -> [3, n_tokens]: policy log-prob, reference log-prob, policy entropy per position
            values: dict[int, torch.Tensor] = {}
            for r, run in enumerate(runs):
                steps = [i for i, p in assignments[r].items() if _models_key(p) == key]
                if not steps:
                    continue
                rendered = render_run(run, tok, chat_template=self.chat_template)
                lengths[r][pair.name] = len(rendered)
                placed[r] = (rendered, steps)
                scored = torch.zeros(len(rendered), dtype=torch.bool)  # [n_tokens]
                for i in steps:
                    s, e = rendered.spans[i]
                    scored[max(s, 1) : e] = True
                values[r] = torch.full((3, len(rendered)), math.nan)
                ids_r = torch.tensor(rendered.input_ids, dtype=torch.long)
                for w in plan_windows(len(rendered), window, min_context):
                    pos = scored[w.lo : w.hi].nonzero()[:, 0] + w.lo  # [n]
                    if pos.numel():
                        jobs.append((r, ids_r, w, pos))
            heads = [output_head(pair.policy.model), output_head(pair.reference.model)]
            budget = self.max_batch_tokens or self._auto_budget(pair, window)
            self.stats["batch_tokens"][pair.name] = budget
            pad_id = 1 if tok.pad_token_id == 0 else 0
            limit: dict[str, int] = {}  # after an out-of-memory error, later batches start below its size
            for batch in _batches(jobs, budget, self.progress, pair.name):
                for part, got in _forward_with_backoff(batch, heads, pad_id, self.chunk, self.entropy, self.stats, limit):
                    k = 0
                    for r, _, _, pos in part:
                        values[r][:, pos] = got[:, k : k + len(pos)]
                        k += len(pos)
            for r, (rendered, steps) in placed.items():
                for i in steps:
                    s, e = rendered.spans[i]
                    lo = max(s, 1)
                    a, b, ent_i = values[r][:, lo:e].tolist() if e > lo else ([], [], [])
                    results[(r, i)] = (rendered.pieces[i][lo - s :], a, b, assignments[r][i].beta, ent_i)

        out = []
        for r, run in enumerate(runs):
            steps = []
            entropies = {}
            for step in run.steps:
                if not step.is_action:
                    steps.append(StepScore(step.index, step.agent, step.kind))
                    continue
                pair = assignments[r][step.index]
                texts, a, b, beta, e = results.get((r, step.index), ([], [], [], pair.beta, []))
                for x in (*a, *b):
                    if not math.isfinite(x):
                        raise ScoringError(
                            f"{run.source or run.run_id}, step {step.index}: a non-finite log-prob under pair {pair.name!r}"
                        )
                steps.append(StepScore(step.index, step.agent, step.kind, list(texts), a, b, beta))
                if self.entropy:
                    entropies[step.index] = e
            out.append(ScoredRun(run, steps, lengths[r], entropies))
        return out


def _models_key(pair: CheckpointPair) -> tuple[int, int]:
    """Which two loaded models a pair runs: pairs with equal keys share forward passes."""
    return (id(pair.policy), id(pair.reference))


def _forward_batch(batch: list, heads: list, pad_id: int, chunk: int, entropy: bool):
    """One forward pass per model over a batch of windows -> [3, n] (policy, reference, entropy), on CPU."""
    import torch

    from attribution.score.logprobs import realised_logprobs

    width = max(w.end - w.start for _, _, w, _ in batch)
    # Padding follows each row's tokens and never reaches a scored position (attention is
    # causal); fill it with a non-pad id so transformers does not warn of an unmasked pad.
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    for b, (_, ids_r, w, _) in enumerate(batch):
        ids[b, : w.end - w.start] = ids_r[w.start : w.end]
        mask[b, : w.end - w.start] = 1
    rows = torch.cat([torch.full((len(pos),), b, dtype=torch.long) for b, (_, _, _, pos) in enumerate(batch)])
    cols = torch.cat([pos - w.start for _, _, w, pos in batch])
    out = []
    for h, head in enumerate(heads):  # the policy and the reference may sit on different devices
        device = next(head.model.parameters()).device
        got = realised_logprobs(
            head, ids.to(device), mask.to(device), rows.to(device), cols.to(device), chunk=chunk, return_entropy=entropy and h == 0
        )
        out.append(got if isinstance(got, tuple) else (got, None))
    (pol, ent), (ref, _) = out
    ent = ent if ent is not None else torch.full_like(pol, math.nan)
    return torch.stack([pol.float().cpu(), ref.float().cpu(), ent.float().cpu()])  # [3, n]


def _padded(part: list) -> int:
    return len(part) * max(w.end - w.start for _, _, w, _ in part)


def _forward_with_backoff(batch: list, heads: list, pad_id: int, chunk: int, entropy: bool, stats: dict, limit: dict):
    """Yield ``(part, values)`` covering ``batch``; an out-of-memory error halves the part and retries.

    Halving is by windows (rows), never inside a window, so each token keeps its context; the
    numbers move only by float rounding (another batch shape, about 1e-7 relative); a single
    window that does not fit is an error naming what to lower. ``limit["tokens"]`` remembers
    half the padded size that failed, so later batches are split before they are tried.
    """
    from attribution.score.device import is_out_of_memory

    todo = [batch]
    while todo:
        part = todo.pop()
        if len(part) > 1 and "tokens" in limit and _padded(part) > limit["tokens"]:
            half = len(part) // 2
            todo.extend([part[half:], part[:half]])
            continue
        try:
            got = _forward_batch(part, heads, pad_id, chunk, entropy)
        except (RuntimeError, MemoryError) as err:
            if not is_out_of_memory(err):
                raise
            _free_cached_memory()
            if len(part) == 1:
                w = part[0][2]
                raise ScoringError(
                    f"one window of {w.end - w.start} tokens does not fit in device memory even alone; "
                    "pass a smaller --window, or place the reference on another device (--device-map)"
                ) from None
            stats["oom_retries"] = stats.get("oom_retries", 0) + 1
            limit["tokens"] = _padded(part) // 2
            half = len(part) // 2
            todo.extend([part[half:], part[:half]])  # the first half runs next
            continue
        yield part, got


def _free_cached_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


#: Most padding a window may carry in a batch, as a share of the batch's width: padding costs a
#: full forward pass per token, so windows batch only with others of nearly their length.
_MAX_PADDING = 0.1


def _batches(jobs: list, max_tokens: int, progress: bool, name: str) -> Iterable[list]:
    """Group windows into batches of at most ``max_tokens`` padded tokens, longest first."""
    from tqdm.auto import tqdm

    order = sorted(jobs, key=lambda j: j[2].end - j[2].start, reverse=True)
    batches, cur, width = [], [], 0
    for job in order:
        n = job[2].end - job[2].start
        if cur and (max(width, n) * (len(cur) + 1) > max_tokens or n < (1 - _MAX_PADDING) * width):
            batches.append(cur)
            cur, width = [], 0
        cur.append(job)
        width = max(width, n)
    if cur:
        batches.append(cur)
    total = sum(sum(j[2].end - j[2].start for j in b) for b in batches)
    # Shown only once scoring has taken a moment (delay), so a quick run prints no bar.
    with tqdm(total=total, unit="tok", desc=f"scoring tokens (pair {name})", disable=not progress, leave=False, delay=0.5) as bar:
        for b in batches:
            yield b
            bar.update(sum(j[2].end - j[2].start for j in b))
