"""The world's tokenizer, its tiny causal LM, and the token-level view of a run.

The tokenizer is a word-level one over the world's vocabulary (whitespace-split), with
one token per speaker header (``[planner]:``), one for the step separator ``"\\n\\n"`` and a
``<bos>``. A run is encoded exactly as :func:`attribution.score.render.render_run` renders
it for a model without a chat template: ``<bos>``, then per message the header, the
content and the separator, each encoded on its own. Every action of one decision state is
a distinct token sequence and no action is a prefix of another, so the LM's probability
of an action is the product of its tokens' probabilities, and those products over the
state's actions sum to 1 minus the mass the LM puts on token sequences that are no action
("off-trie" mass, measured by :func:`off_trie_mass`).

The model is a GPT-2 (``transformers.GPT2LMHeadModel``) of about 0.35M parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from attribution.score.render import SEPARATOR, header
from attribution.world.env import AGENTS, TOOL, USER, State, World

__all__ = [
    "SEPARATOR",
    "build_tokenizer",
    "build_model",
    "Encoder",
    "EncodedRun",
    "token_logps",
    "action_distribution",
    "ModelConfig",
]

SPECIALS = ("<pad>", "<unk>", "<bos>")


def build_tokenizer(world: World) -> Any:
    """A word-level ``PreTrainedTokenizerFast`` over the world's vocabulary."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = list(SPECIALS) + [SEPARATOR] + [header(s).strip() for s in (USER, *AGENTS, TOOL)] + world.vocabulary()
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_tokens([AddedToken(SEPARATOR, normalized=False, single_word=False, lstrip=False, rstrip=False)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", unk_token="<unk>", pad_token="<pad>", model_max_length=128
    )


@dataclass(frozen=True)
class ModelConfig:
    n_embd: int = 96
    n_layer: int = 3
    n_head: int = 4
    n_positions: int = 128


def build_model(tokenizer: Any, config: ModelConfig = ModelConfig(), seed: int = 0) -> Any:
    """A freshly initialised GPT-2 for ``tokenizer`` (deterministic given ``seed``)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(cfg)


@dataclass
class EncodedRun:
    """Token ids of a run and, per agent decision, the ``[start, end)`` span of its content."""

    ids: list[int]
    spans: dict[int, tuple[int, int]]


class Encoder:
    """Encodes texts and runs with a tokenizer, caching each distinct string.

    ``encode_run`` equals ``render_run(parse_run(messages), tokenizer, chat_template=False)``
    of :mod:`attribution.score.render` (a test checks it).
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.bos = tokenizer.bos_token_id
        self.pad = tokenizer.pad_token_id
        self._encode = lru_cache(maxsize=None)(self._encode_uncached)
        self.sep = self.encode(SEPARATOR)

    def _encode_uncached(self, text: str) -> tuple[int, ...]:
        return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else ()

    def encode(self, text: str) -> tuple[int, ...]:
        return self._encode(text)

    def step(self, speaker: str, text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(header ids, content ids) of one step; the separator follows."""
        return self.encode(header(speaker)), self.encode(text)

    def encode_run(self, messages: Sequence[dict]) -> EncodedRun:
        ids = [self.bos] if self.bos is not None else []
        spans: dict[int, tuple[int, int]] = {}
        for i, msg in enumerate(messages):
            speaker = msg.get("name") or msg["role"]
            head, body = self.step(speaker, msg["content"])
            ids.extend(head)
            if msg["role"] == "assistant":
                spans[i] = (len(ids), len(ids) + len(body))
            ids.extend(body)
            ids.extend(self.sep)
        return EncodedRun(ids, spans)

    @lru_cache(maxsize=None)
    def trie(self, world: World, state: State) -> dict:
        """The token trie of ``state``'s actions: nested dicts, a leaf is the action's index (int)."""
        root: dict = {}
        for index, action in enumerate(world.actions(state)):
            ids = self.encode(action.text)
            node = root
            for tok in ids[:-1]:
                node = node.setdefault(tok, {})
                if not isinstance(node, dict):
                    raise ValueError(f"action {action.text!r} extends another action of {state}")
            if ids[-1] in node:
                raise ValueError(f"action {action.text!r} is a prefix of, or equal to, another action of {state}")
            node[ids[-1]] = index
        return root


def pad_batch(seqs: Sequence[Sequence[int]], pad: int) -> np.ndarray:
    """Right-pad token lists into a [batch, max_len] array."""
    width = max(len(s) for s in seqs)
    out = np.full((len(seqs), width), pad, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def token_logps(model: Any, ids: Any, allowed: Any = None) -> Any:
    """log p(ids[:, t] | ids[:, :t]) for t >= 1, in fp32; column 0 is 0.

    ``ids`` is a [batch, seq] LongTensor right-padded (padding after a run does not change
    its tokens' log-probs: attention is causal). Returns [batch, seq]; with ``allowed``, a
    [batch, seq, vocab] bool tensor of the tokens an action may continue with at position
    t, also the log of the probability mass on them ([batch, seq], 0 where none is allowed).
    """
    import torch

    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float()  # [batch, seq, vocab]
    logp = torch.log_softmax(logits[:, :-1], dim=-1)  # [batch, seq-1, vocab]
    picked = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # [batch, seq-1]
    picked = torch.cat([torch.zeros_like(picked[:, :1]), picked], dim=1)
    if allowed is None:
        return picked
    mask = allowed[:, 1:]  # [batch, seq-1, vocab]
    any_allowed = mask.any(-1, keepdim=True)
    mass = torch.logsumexp(logp.masked_fill(~(mask | ~any_allowed), float("-inf")), dim=-1)
    mass = torch.where(any_allowed.squeeze(-1), mass, torch.zeros_like(mass))
    return picked, torch.cat([torch.zeros_like(mass[:, :1]), mass], dim=1)


def action_distribution(model: Any, encoder: Encoder, world: World, history: Sequence[dict], state: State) -> np.ndarray:
    """The LM's probability of each of ``world.actions(state)`` after ``history`` (the messages
    before the decision): the product of the action's token probabilities. Their sum is 1
    minus the LM's off-trie mass."""
    import torch

    prefix = encoder.encode_run(history).ids + list(encoder.encode(header(world.agent(state))))
    bodies = [list(encoder.encode(a.text)) for a in world.actions(state)]
    ids = torch.from_numpy(pad_batch([prefix + b for b in bodies], encoder.pad))
    with torch.no_grad():
        lp = token_logps(model, ids).double().numpy()
    return np.array([np.exp(lp[i, len(prefix) : len(prefix) + len(b)].sum()) for i, b in enumerate(bodies)])
