"""Per-token log-probs of realised tokens: the one place where the tensor work happens.

``selective_log_softmax`` is ``log_softmax(logits.float(), -1).gather(-1, index)``, computed
as ``gather - logsumexp`` in fp32. ``realised_logprobs`` runs a causal LM over a batch of
(right-padded) sequences and returns the log-prob of chosen positions' tokens, applying the
output head to at most ``chunk`` positions at a time, so full-vocabulary fp32 logits never
exist for more than a chunk.

With half-precision weights (bf16, fp16) the output head runs in fp32: the hidden states of
the picked positions and the head's weight are upcast before the matmul, so the logits are
not rounded to 8 (bf16) or 11 (fp16) mantissa bits before the fp32 log-softmax (a bf16 head
moved per-token log-probs of the embedded pair by up to about 0.05 nats). The trunk still
runs in the weights' dtype. A model whose head cannot be split off (see :class:`OutputHead`)
keeps its own forward's logits, in its own dtype.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

__all__ = ["selective_log_softmax", "entropy_from_logits", "realised_logprobs", "OutputHead", "output_head"]


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Log-softmax of ``logits`` over the last axis, gathered at ``index``, in fp32.

    Equals ``torch.log_softmax(logits.float(), -1).gather(-1, index[..., None])[..., 0]``.

    Parameters
    ----------
    logits : Tensor [..., vocab], any float dtype
    index : LongTensor [...]
    """
    logits = logits.float()
    picked = torch.gather(logits, -1, index.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy ``-sum_v p_v log p_v`` of ``softmax(logits)`` over the last axis, in fp32 (nats).

    Equals ``-(torch.softmax(logits.float(), -1) * torch.log_softmax(logits.float(), -1)).sum(-1)``
    with ``0 log 0 = 0``: a ``-inf`` logit (a masked token) adds nothing instead of a NaN.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    # A -inf logit has p = 0 and contributes 0 (0 * -inf would be NaN).
    return -torch.where(logp.isneginf(), 0.0, logp.exp() * logp).sum(-1)


class OutputHead:
    """Splits a causal LM into its trunk (hidden states) and its output head (hidden -> logits).

    The split path is checked once against the model's own ``forward`` on a short input;
    where they disagree (a model that rescales or caps logits in ways not handled here) the
    model's own forward is used for every window instead: slower, never wrong.
    """

    def __init__(self, model: Any):
        self.model = model
        self.head = model.get_output_embeddings()
        cfg = model.config
        self.softcap = getattr(cfg, "final_logit_softcapping", None)
        self.scale = getattr(cfg, "logits_scaling", None)
        self.split = self.head is not None and self._check_split()

    def trunk(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        out = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state  # [batch, seq, hidden]

    def fp32_weights(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """The head's weight and bias in fp32 (None when the head is not a plain linear map)."""
        weight = getattr(self.head, "weight", None)
        if not isinstance(self.head, torch.nn.Linear) or weight is None:
            return None
        bias = self.head.bias
        return weight.float(), (bias.float() if bias is not None else None)

    def logits(self, hidden: torch.Tensor, fp32: tuple[torch.Tensor, torch.Tensor | None] | None = None) -> torch.Tensor:
        """Logits from hidden states; with ``fp32`` (from :meth:`fp32_weights`) the matmul runs in fp32."""
        if fp32 is not None:
            logits = torch.nn.functional.linear(hidden.float(), fp32[0], fp32[1])
        else:
            logits = self.head(hidden)
        if self.scale:
            logits = logits / self.scale
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    @torch.no_grad()
    def _check_split(self) -> bool:
        device = next(self.model.parameters()).device
        vocab = self.model.config.vocab_size
        ids = torch.arange(1, 9, device=device).remainder(vocab)[None]
        mask = torch.ones_like(ids)
        try:
            want = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
            got = self.logits(self.trunk(ids, mask)).float()
        except Exception:
            return False
        return got.shape == want.shape and torch.allclose(got, want, atol=1e-3, rtol=1e-3)


_HEADS: "weakref.WeakKeyDictionary[Any, OutputHead]" = weakref.WeakKeyDictionary()


def output_head(model: Any) -> OutputHead:
    """The :class:`OutputHead` of ``model``, built (and its split checked) once per model object."""
    head = _HEADS.get(model)
    if head is None:
        head = _HEADS[model] = OutputHead(model)
    return head


@torch.no_grad()
def realised_logprobs(
    head: OutputHead,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    *,
    chunk: int = 1024,
    return_entropy: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``log p(input_ids[r, c] | input_ids[r, :c])`` for each ``(r, c)`` in ``zip(rows, cols)``.

    Parameters
    ----------
    head : OutputHead wrapping the model
    input_ids, attention_mask : LongTensor [batch, seq], right-padded
        The mask is not passed to the model: attention is causal and padding only follows a
        row's tokens, so it never reaches a scored position, while a padding mask would turn
        off the causal fast path of the attention kernel (about 2x slower on CPU, and a
        [batch, 1, seq, seq] mask in memory). It checks that every scored position is real.
    rows, cols : LongTensor [n], positions to score; every ``cols >= 1``
    chunk : int, positions per output-head call
    return_entropy : bool, also return the entropy of each position's predictive distribution

    Returns
    -------
    Tensor [n], fp32; with ``return_entropy``, a pair (log-probs [n], entropies [n])
    """
    if not bool(attention_mask[rows, cols].all()):
        raise ValueError("realised_logprobs: a scored position lies in the padding")
    targets = input_ids[rows, cols]  # [n]
    out = torch.empty(rows.numel(), dtype=torch.float32, device=input_ids.device)
    ent = torch.empty_like(out) if return_entropy else None
    if head.split:
        hidden = head.trunk(input_ids, None)  # [batch, seq, hidden]
        picked = hidden[rows, cols - 1]  # [n, hidden]: the state that predicts each target
        # Half-precision weights: the head in fp32 (one upcast copy of the head per call).
        fp32 = head.fp32_weights() if picked.dtype in (torch.bfloat16, torch.float16) else None
        for lo in range(0, rows.numel(), chunk):
            hi = lo + chunk
            logits = head.logits(picked[lo:hi], fp32)  # [chunk, vocab], fp32 with half weights
            out[lo:hi] = selective_log_softmax(logits, targets[lo:hi])
            if ent is not None:
                ent[lo:hi] = entropy_from_logits(logits)
        return (out, ent) if ent is not None else out
    logits = head.model(input_ids=input_ids, use_cache=False).logits
    for lo in range(0, rows.numel(), chunk):
        hi = lo + chunk
        picked = logits[rows[lo:hi], cols[lo:hi] - 1]  # [chunk, vocab]
        out[lo:hi] = selective_log_softmax(picked, targets[lo:hi])
        if ent is not None:
            ent[lo:hi] = entropy_from_logits(picked)
    return (out, ent) if ent is not None else out
