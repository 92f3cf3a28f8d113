"""Score a growing run step by step, reusing the key/value cache of the prefix.

``extend_logprobs`` is the tensor work: it feeds new tokens after those already in a
``DynamicCache`` and returns the log-probs of chosen new tokens. It equals
:func:`attribution.score.logprobs.realised_logprobs` on the concatenation of the cached tokens
and the new ones (same fp32 ``gather - logsumexp``, output head applied only at the chosen
positions).

:class:`IncrementalPairScorer` keeps, for one checkpoint pair, the token ids fed so far, one
cache per model and the log-probs computed so far. On each new step it re-renders the whole
run with :func:`~attribution.score.render.render_run` (so any renderer works, including one
that re-tokenises the tail of the previous text when a step is appended), keeps the longest
common prefix of token ids with what it has already fed, crops the caches there and runs only
the tokens after it. Runs longer than the model's window slide exactly as
:class:`~attribution.score.Scorer` does (:func:`~attribution.score.scorer.plan_windows`): a
token is scored in the one window where it has at least ``min_context`` tokens of left
context, so the incremental scores equal ``diagnose``'s. Window assignments never move as the
run grows (the plan for ``n`` tokens is a prefix of the plan for more), so a new window costs
one re-encoding of its ``min_context`` tokens of overlap, once per ``window - min_context``
tokens; every other token costs one forward step.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch

from attribution.score.logprobs import OutputHead, output_head, selective_log_softmax
from attribution.score.pairs import CheckpointPair
from attribution.score.render import Rendered, render_run
from attribution.score.scorer import Window, plan_windows
from attribution.types import Run

__all__ = ["extend_logprobs", "crop_cache", "window_of", "IncrementalPairScorer"]


@torch.no_grad()
def extend_logprobs(
    head: OutputHead, cache: Any, input_ids: torch.Tensor, cols: torch.Tensor, *, chunk: int = 1024
) -> torch.Tensor:
    """Feed ``input_ids`` after the ``c`` tokens in ``cache``; log-probs of chosen new tokens.

    Returns ``log p(x[c + j] | x[:c + j])`` for each ``j`` in ``cols``, where ``x`` is the cached
    tokens followed by ``input_ids[0]``: what :func:`~attribution.score.logprobs.realised_logprobs`
    returns for the whole sequence at positions ``c + cols``. ``cache`` (a transformers
    ``DynamicCache``) grows by the new tokens.

    Parameters
    ----------
    head : OutputHead wrapping the model
    cache : transformers ``DynamicCache`` holding the keys/values of the first ``c`` tokens
    input_ids : LongTensor [1, m], the new tokens
    cols : LongTensor [n], positions in ``input_ids`` to score; every ``cols >= 1`` (the state
        that predicts ``input_ids[0, j]`` is the one after ``input_ids[0, j - 1]``)
    chunk : int, positions per output-head call

    Returns
    -------
    Tensor [n], fp32
    """
    if cols.numel() and int(cols.min()) < 1:
        raise ValueError("extend_logprobs: every scored position needs the previous new token (cols >= 1)")
    targets = input_ids[0, cols]  # [n]
    out = torch.empty(cols.numel(), dtype=torch.float32, device=input_ids.device)
    if head.split:
        trunk = head.model.base_model
        hidden = trunk(input_ids=input_ids, use_cache=True, **{_cache_arg(trunk): cache}).last_hidden_state  # [1, m, hidden]
        picked = hidden[0, cols - 1]  # [n, hidden]
        for lo in range(0, cols.numel(), chunk):
            out[lo : lo + chunk] = selective_log_softmax(head.logits(picked[lo : lo + chunk]), targets[lo : lo + chunk])
        return out
    logits = head.model(input_ids=input_ids, use_cache=True, **{_cache_arg(head.model): cache}).logits  # [1, m, vocab]
    for lo in range(0, cols.numel(), chunk):
        out[lo : lo + chunk] = selective_log_softmax(logits[0, cols[lo : lo + chunk] - 1], targets[lo : lo + chunk])
    return out


def _cache_arg(module: Any) -> str:
    """The keyword of a model's key/value cache: ``cache`` in recent transformers, else ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


def crop_cache(cache: Any, length: int) -> bool:
    """Cut ``cache`` back to its first ``length`` tokens; False where it cannot be (rebuild it).

    ``crop(-k)`` removes the last ``k`` tokens in every transformers version this package
    supports (4.56 read a negative argument as "remove", 5.x only accepts that form);
    ``crop(0)`` is never called because 4.56 read it as "keep none".
    """
    have = cache.get_seq_length()
    if length > have or not getattr(cache, "is_croppable", True):
        return False
    if length < have:
        cache.crop(-(have - length))
    return cache.get_seq_length() == length


def window_of(position: int, window: int, min_context: int) -> Window:
    """The window of :func:`~attribution.score.scorer.plan_windows` that scores ``position``,
    whatever the run's length beyond it (its ``end``/``hi`` are those of a full window).

    Examples
    --------
    >>> window_of(9, 8, 4)
    Window(start=4, end=12, lo=8, hi=12)
    """
    if position < window:
        return Window(0, window, 1, window)
    stride = window - min_context
    k = (position - window) // stride + 1  # window k scores [window + (k-1)*stride, window + k*stride)
    start = k * stride
    return Window(start, start + window, start + min_context, start + window)


class IncrementalPairScorer:
    """Per-token log-probs of a growing run under one pair, paying only for new tokens.

    Parameters
    ----------
    pair : CheckpointPair
    window, min_context : int, as :meth:`attribution.score.Scorer.window_for` gives them
    chat_template : {"auto", True, False}, see :func:`~attribution.score.render.render_run`
    chunk : int, positions per output-head call

    Attributes
    ----------
    ids : list of int, the tokens whose log-probs are known (a prefix of the latest rendering)
    values : dict, position -> (policy log-prob, reference log-prob), for positions asked for
    fed_tokens : int, tokens run through each model so far (the cost, for benchmarks)
    """

    def __init__(self, pair: CheckpointPair, window: int, min_context: int, *, chat_template: bool | str = "auto", chunk: int = 1024):
        plan_windows(0, window, min_context)  # checks the settings
        self.pair = pair
        self.window = window
        self.min_context = min_context
        self.chat_template = chat_template
        self.chunk = chunk
        self.ids: list[int] = []
        self.values: dict[int, tuple[float, float]] = {}
        self.fed_tokens = 0
        self._heads: list[OutputHead] | None = None
        self._caches: list[Any] = []
        self._cache_start: int | None = None  # the window start the caches belong to
        self._cache_len = 0  # tokens [start, start + len) are in the caches
        self._spans: dict[int, tuple[int, int]] = {}  # step -> scored positions [lo, hi) at the last update

    def update(self, run: Run, steps: list[int]) -> Rendered:
        """Render ``run``, then compute the log-probs of every content token of ``steps``.

        Returns the rendering; ``self.values[p]`` holds each content token's pair of log-probs
        (position ``p >= 1`` in the rendering).
        """
        rendered = render_run(run, self.pair.tokenizer, chat_template=self.chat_template)
        new = rendered.input_ids
        # longest common prefix of token ids with what is known (usually all of it: compare at C speed first)
        keep = len(self.ids) if new[: len(self.ids)] == self.ids else 0
        if keep == 0:
            limit = min(len(self.ids), len(new))
            while keep < limit and self.ids[keep] == new[keep]:
                keep += 1
        spans = {i: (max(rendered.spans[i][0], 1), rendered.spans[i][1]) for i in steps}
        # a step computed before, with the same span, wholly before `keep`, needs nothing
        todo_steps = [i for i in steps if not (spans[i][1] <= keep and self._spans.get(i) == spans[i])]
        wanted = sorted({p for i in todo_steps for p in range(*spans[i])})
        missing = [p for p in wanted if p < keep and p not in self.values]
        if missing:  # a span moved without its tokens changing: recompute from its first token
            keep = missing[0]
        if keep < len(self.ids):
            self.values = {p: v for p, v in self.values.items() if p < keep}
        self.ids = list(new)
        self._spans = spans
        todo = [p for p in wanted if p >= keep]
        if todo:
            self._score(todo, keep)
        return rendered

    def _score(self, positions: list[int], keep: int) -> None:
        """Compute ``values`` at ``positions`` (all ``>= keep``); tokens before ``keep`` are unchanged."""
        if self._heads is None:
            self._heads = [output_head(self.pair.policy.model), output_head(self.pair.reference.model)]
        device = next(self.pair.policy.model.parameters()).device
        ids = torch.tensor(self.ids, dtype=torch.long, device=device)  # [n_tokens]
        i = 0
        while i < len(positions):
            w = window_of(positions[i], self.window, self.min_context)
            group = [p for p in positions[i:] if p < w.hi]
            i += len(group)
            first = group[0]
            # The caches may keep tokens [w.start, first - 1) that are still the same (before `keep`):
            # the token before `first` is fed again, since its output state (which predicts `first`) is
            # not kept between calls.
            need = min(first - 1, keep) - w.start
            if self._cache_start == w.start and self._cache_len > need:
                if need >= 0 and all(crop_cache(c, need) for c in self._caches):
                    self._cache_len = need
                else:
                    self._cache_start = None
            if self._cache_start != w.start:
                from transformers import DynamicCache

                self._caches = [DynamicCache(), DynamicCache()]
                self._cache_start = w.start
                self._cache_len = 0
            feed_from = w.start + self._cache_len
            end = min(group[-1] + 1, len(self.ids))
            new_ids = ids[feed_from:end][None]  # [1, m]
            cols = torch.tensor(group, dtype=torch.long, device=device) - feed_from  # [n]
            pol = extend_logprobs(self._heads[0], self._caches[0], new_ids, cols, chunk=self.chunk)
            ref = extend_logprobs(self._heads[1], self._caches[1], new_ids, cols, chunk=self.chunk)
            self._cache_len = end - w.start
            self.fed_tokens += end - feed_from
            for p, a, b in zip(group, pol.tolist(), ref.tolist()):
                if not (math.isfinite(a) and math.isfinite(b)):
                    from attribution.errors import ScoringError

                    raise ScoringError(f"position {p}: a non-finite log-prob under pair {self.pair.name!r}")
                self.values[p] = (a, b)
