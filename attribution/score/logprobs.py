"""Per-token log-probs of realised tokens: the one place where the tensor work happens.

``selective_log_softmax`` is ``log_softmax(logits.float(), -1).gather(-1, index)``, computed
as ``gather - logsumexp`` in fp32. ``realised_logprobs`` runs a causal LM over a batch of
(right-padded) sequences and returns the log-prob of chosen positions' tokens, applying the
output head to at most ``chunk`` positions at a time, so full-vocabulary fp32 logits never
exist for more than a chunk.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["selective_log_softmax", "realised_logprobs", "OutputHead"]


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

    def trunk(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state  # [batch, seq, hidden]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
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


@torch.no_grad()
def realised_logprobs(
    head: OutputHead,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    *,
    chunk: int = 1024,
) -> torch.Tensor:
    """``log p(input_ids[r, c] | input_ids[r, :c])`` for each ``(r, c)`` in ``zip(rows, cols)``.

    Parameters
    ----------
    head : OutputHead wrapping the model
    input_ids, attention_mask : LongTensor [batch, seq], right-padded
    rows, cols : LongTensor [n], positions to score; every ``cols >= 1``
    chunk : int, positions per output-head call

    Returns
    -------
    Tensor [n], fp32
    """
    targets = input_ids[rows, cols]  # [n]
    out = torch.empty(rows.numel(), dtype=torch.float32, device=input_ids.device)
    if head.split:
        hidden = head.trunk(input_ids, attention_mask)  # [batch, seq, hidden]
        picked = hidden[rows, cols - 1]  # [n, hidden]: the state that predicts each target
        for lo in range(0, rows.numel(), chunk):
            hi = lo + chunk
            out[lo:hi] = selective_log_softmax(head.logits(picked[lo:hi]), targets[lo:hi])
        return out
    logits = head.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    for lo in range(0, rows.numel(), chunk):
        hi = lo + chunk
        out[lo:hi] = selective_log_softmax(logits[rows[lo:hi], cols[lo:hi] - 1], targets[lo:hi])
    return out
