"""Tiny random checkpoint pairs built locally, for tests and smoke runs. Their scores mean nothing.

A byte-level BPE tokenizer is trained with the ``tokenizers`` library on a small built-in
corpus (byte-level, so any text encodes), and two Llama-style causal LMs are initialised
from a config with different seeds: the "reference" and a "policy" that is the reference
plus a small random perturbation. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["build_tiny_pair", "build_tokenizer"]

_CORPUS = """\
The orchestrator asks the web surfer to search for the answer and report back.
I clicked the link and the page shows a list of results with dates and prices.
exitcode: 0 (execution succeeded) Code output: 42
```python
import pandas as pd
df = pd.read_excel("data.xlsx")
print(df.columns)
```
{"name": "search", "arguments": {"query": "martial arts classes near the stock exchange"}}
Updated Ledger: {"is_request_satisfied": {"reason": "not yet", "answer": false}}
Please verify the result carefully and reply TERMINATE when the task is done.
"""


def build_tokenizer(vocab_size: int = 512):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with ``<s>``, ``</s>`` and ``<pad>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def build_tiny_pair(
    out_dir: str | Path,
    *,
    vocab_size: int = 512,
    hidden_size: int = 32,
    num_layers: int = 2,
    max_positions: int = 2048,
    noise: float = 0.02,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write ``out_dir/policy`` and ``out_dir/reference`` checkpoint folders; return their paths."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    tokenizer = build_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=max(1, hidden_size // 16),
        num_key_value_heads=max(1, hidden_size // 16),
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    reference = LlamaForCausalLM(config)
    policy = LlamaForCausalLM(config)
    policy.load_state_dict(reference.state_dict())
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(noise * torch.randn(p.shape, generator=gen))
    paths = []
    for name, model in (("policy", policy), ("reference", reference)):
        path = out / name
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths.append(path)
    return paths[0], paths[1]
