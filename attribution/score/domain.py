"""Out-of-domain guard: how much of a run can the pair represent at all?

A token the tokenizer cannot represent becomes its unknown token (``<unk>``); both models score
that placeholder, not the text, so its log-ratio says nothing about what the agent wrote. For
every run and every pair scoring it, :func:`unknown_share` counts the run's *scored* tokens
(the action steps' content, as :func:`~attribution.score.render.render_run` maps them) that are
the unknown token. Byte-level tokenizers (GPT-2/Llama-3/Qwen-style byte-level BPE, or BPE with
byte fallback) can represent every string: the check is skipped for them, and the report says so.

:func:`check_domain` turns the counts into one-line warnings, and refuses the embedded toy pair
(:func:`is_toy`) on a run that is not a run of its world: the world's runs use only the pair's
56 words, so their unknown share is 0, while any other log is mostly ``<unk>``
(95.6% on a Who&When Hand-Crafted run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from attribution.errors import ConfigError
from attribution.types import Run

__all__ = ["UNKNOWN_WARN_SHARE", "TOY_MAX_UNKNOWN_SHARE", "UnknownShare", "is_byte_level", "unknown_share", "is_toy",
           "toy_warning", "check_domain"]

#: A pair whose unknown token covers more than this share of a run's scored tokens gets a warning.
UNKNOWN_WARN_SHARE = 0.01
#: The embedded toy pair refuses a run above this share (runs of its world have none).
TOY_MAX_UNKNOWN_SHARE = 0.0


@dataclass(frozen=True)
class UnknownShare:
    """Scored tokens of one run under one pair, and how many are the unknown token (None: byte-level, not checked)."""

    pair: str
    scored: int
    unknown: int | None

    @property
    def share(self) -> float | None:
        if self.unknown is None:
            return None
        return self.unknown / self.scored if self.scored else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"pair": self.pair, "scored_tokens": self.scored, "unknown_tokens": self.unknown, "unknown_share": self.share}


def is_byte_level(tokenizer: Any) -> bool:
    """True when the tokenizer can encode any string without its unknown token.

    Byte-level BPE (a ``ByteLevel`` pre-tokenizer or decoder) and BPE with ``byte_fallback`` map
    every byte to a token; a tokenizer without an unknown token has nothing to count either.
    """
    if getattr(tokenizer, "unk_token_id", None) is None:
        return True
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow (e.g. sentencepiece) tokenizer: count its unknown token
        return bool(getattr(getattr(tokenizer, "sp_model", None), "byte_fallback", False))
    try:
        spec = json.loads(backend.to_str())
    except Exception:
        return False
    if (spec.get("model") or {}).get("byte_fallback"):
        return True
    return "ByteLevel" in json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")])


_BYTE_LEVEL: dict[int, bool] = {}


def _byte_level_cached(tokenizer: Any) -> bool:
    key = id(tokenizer)
    if key not in _BYTE_LEVEL:
        _BYTE_LEVEL[key] = is_byte_level(tokenizer)
    return _BYTE_LEVEL[key]


def unknown_share(run: Run, pair: Any, steps: Sequence[int], *, chat_template: bool | str = "auto") -> UnknownShare:
    """Count the unknown tokens among the scored tokens of ``steps`` of ``run`` under ``pair``'s tokenizer.

    Only the tokenizer loads (no model); the run is rendered exactly as the scorer renders it.
    """
    from attribution.score.render import render_run

    tok = pair.tokenizer
    rendered = render_run(run, tok, chat_template=chat_template)
    ids = rendered.input_ids
    scored = unknown = 0
    unk = getattr(tok, "unk_token_id", None)
    for i in steps:
        s, e = rendered.spans[i]
        span = ids[max(s, 1) : e]
        scored += len(span)
        unknown += sum(1 for t in span if t == unk)
    return UnknownShare(pair.name, scored, None if _byte_level_cached(tok) else unknown)


def _embedded_folder() -> Path:
    """attribution/world/checkpoint (as :func:`attribution.diagnoser.default_pairs_path`'s folder)."""
    return (Path(__file__).resolve().parents[1] / "world" / "checkpoint").resolve()


def is_toy(pair: Any) -> bool:
    """Whether ``pair`` is the toy pair embedded in the package (attribution/world/checkpoint)."""
    root = _embedded_folder()
    for side in (pair.policy, pair.reference):
        try:
            path = Path(side.name).expanduser().resolve()
        except (OSError, RuntimeError):
            return False
        if path != root and root not in path.parents:
            return False
    return True


def toy_warning(share: UnknownShare) -> str:
    pct = f"{100 * share.share:.1f}%" if share.share is not None else "?"
    return (f"toy pair: the embedded world pair (353k parameters, 56-word tokenizer) scored this run although "
            f"{pct} of its {share.scored} scored tokens are <unk> to it; this verdict is not a finding "
            "(use --pair NAME, see `attribution pairs`, or --policy/--reference)")


def _unknown_warning(share: UnknownShare) -> str:
    return (f"pair {share.pair!r}: {100 * share.share:.1f}% of the run's {share.scored} scored tokens are its unknown token "
            "(<unk>); their scores compare placeholders, not the text")


def check_domain(
    runs: Sequence[Run], scorer: Any, *, allow_toy_pair: bool = False
) -> list[tuple[list[str], list[dict[str, Any]]]]:
    """Per run: (one-line warnings, unknown-token counts per pair). Call before scoring: only tokenizers load.

    Raises
    ------
    ConfigError
        When the embedded toy pair would score a run that is not a run of its world
        (unknown share above :data:`TOY_MAX_UNKNOWN_SHARE`) and ``allow_toy_pair`` is False.
    """
    out = []
    for run in runs:
        by_pair: dict[int, tuple[Any, list[int]]] = {}
        for index, pair in scorer.assign(run).items():
            by_pair.setdefault(id(pair), (pair, []))[1].append(index)
        warnings: list[str] = []
        counts: list[dict[str, Any]] = []
        for pair, steps in by_pair.values():
            share = unknown_share(run, pair, steps, chat_template=scorer.chat_template)
            counts.append({**share.to_dict(), "byte_level": share.unknown is None})
            if is_toy(pair):
                if share.share is not None and share.share > TOY_MAX_UNKNOWN_SHARE:
                    if not allow_toy_pair:
                        raise ConfigError(
                            f"{run.source or run.run_id}: not a run of the embedded toy pair's world "
                            f"({100 * share.share:.1f}% of its {share.scored} scored tokens are <unk> to its 56-word tokenizer), "
                            "so its verdict would mean nothing; pass --pair NAME (see `attribution pairs`) or "
                            "--policy/--reference, or --allow-toy-pair to run it anyway"
                        )
                    warnings.append(toy_warning(share))
            elif share.share is not None and share.share > UNKNOWN_WARN_SHARE:
                warnings.append(_unknown_warning(share))
        out.append((warnings, counts))
    return out
