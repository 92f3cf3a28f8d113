"""Score once: an on-disk cache of per-token log-probs, one file per (run, checkpoint setup).

Layout: ``<root>/<setup digest>/<run content hash>.npz`` plus ``<root>/<setup digest>/key.json``
describing the setup. The setup (:func:`scoring_key`) is everything that changes the numbers:

* each pair's policy and reference checkpoint ids: for a folder, the full content of its
  config, weight and tokenizer files (sha256, memoised by (path, size, mtime_ns, ctime_ns, inode)
  so a large checkpoint is read once, :func:`attribution.score.pairs.file_sha256`); for a hub
  id, the hub revision (commit);
* each pair's dtype and device kind (``cpu``, ``cuda``, ...), its tokenizer (vocabulary,
  special tokens, chat template and, for a fast tokenizer, its whole pipeline: normaliser,
  pre-tokenizer, merges, post-processor, decoder) and rendering (chat template or plain,
  header and separator). The tokenizer is in the key on its own because the null pair's
  checkpoints are random models with no files: its key would otherwise miss a tokenizer
  change that keeps the vocabulary;
* which pair scores which agent, ``window``, ``min_context`` and ``chat_template``;
* :data:`attribution.score.scorer.SCORING_VERSION`, bumped whenever the scoring code changes
  the numbers, and this file's format.

``beta`` is not in it: the file holds log-probs, and each step's beta is applied when the
entry is read, so a new beta costs no forward pass.

**Reads are validated.** An entry that is not a readable file (a folder in its place), is
truncated or fails a CRC, whose content checksum or run hash does not match, that was written for another setup
(an entry copied in from another setup's folder), whose arrays
disagree in length, name steps that are not the run's action steps, or hold a NaN or an
infinity is never used: it is counted (:attr:`ScoreCache.bad`, reported by ``evaluate`` in
its timing) and the run is scored again.

Each entry holds, for every action step with scored tokens, the policy and reference
log-probs and the policy's predictive entropy of each token, as float32 (token texts are
not kept). The scorer computes
them in float32, so the round trip is exact. Files are written atomically
(:func:`attribution.io.atomic_write_bytes`): a kill leaves each entry whole or absent.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from attribution.io import atomic_write_bytes, atomic_write_text
from attribution.types import Run, StepScore

__all__ = ["CACHE_FORMAT", "default_cache_dir", "scoring_key", "ScoreCache"]

CACHE_FORMAT = "attribution.logprob-cache/2"
_ARRAYS = ("steps", "offsets", "logps", "ref_logps", "entropy")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/attribution/logprobs`` (``~/.cache/attribution/logprobs`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "attribution" / "logprobs"


def _tokenizer_id(tok: Any) -> str:
    h = hashlib.sha256(type(tok).__name__.encode())
    h.update(json.dumps(sorted(tok.get_vocab().items())).encode())
    h.update(json.dumps([getattr(tok, "chat_template", None), tok.all_special_tokens, getattr(tok, "bos_token_id", None)]).encode())
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:  # a fast tokenizer: its whole pipeline (merges, normaliser, ...), not only the vocabulary
        pipeline = json.loads(backend.to_str())
        for runtime in ("truncation", "padding"):  # set per call by the caller, not by the tokenizer's files
            pipeline.pop(runtime, None)
        h.update(json.dumps(pipeline, sort_keys=True).encode())
    else:  # a slow tokenizer: the content of its vocabulary/merges/sentencepiece files
        for attr in sorted(getattr(tok, "vocab_files_names", {}) or {}):
            f = getattr(tok, attr, None)
            if isinstance(f, str) and os.path.isfile(f):
                h.update(f"{attr}:{hashlib.sha256(Path(f).read_bytes()).hexdigest()}".encode())
    return h.hexdigest()[:16]


def scoring_key(scorer: Any) -> dict[str, Any]:
    """What the cached numbers depend on, for a :class:`~attribution.score.Scorer`.

    Loads each pair's tokenizer (to tell the rendering); loads no model for local checkpoints.
    """
    from attribution.score.render import SEPARATOR, has_chat_template, header
    from attribution.score.scorer import SCORING_VERSION

    pairs = {}
    for name, pair in sorted(scorer.pairs.pairs.items()):
        tok = pair.tokenizer
        template = scorer.chat_template is True or (scorer.chat_template == "auto" and has_chat_template(tok))
        pairs[name] = {
            "policy": pair.policy.id,
            "reference": pair.reference.id,
            "dtype": [pair.policy.dtype, pair.reference.dtype],
            "device": [str(pair.policy.device).split(":")[0], str(pair.reference.device).split(":")[0]],
            "tokenizer": _tokenizer_id(tok),
            "render": "chat_template" if template else "plain",
        }
    return {
        "format": CACHE_FORMAT,
        "scoring_version": SCORING_VERSION,
        "rendering": {"header": header("{agent}"), "separator": SEPARATOR},
        "pairs": pairs,
        "agents": [list(a) for a in scorer.pairs.agents],
        "default": scorer.pairs.default,
        "window": scorer.window,
        "min_context": scorer.min_context,
        "chat_template": scorer.chat_template,
    }


class ScoreCache:
    """Per-run score entries for one scoring setup.

    Parameters
    ----------
    root : path or None
        The cache folder; None keeps entries in memory only (nothing survives the process).
    key : dict
        The setup, from :func:`scoring_key`.
    """

    def __init__(self, root: str | os.PathLike | None, key: dict[str, Any]):
        self.root = Path(root).expanduser() if root is not None else None
        self.key = key
        self.digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self._memory: dict[str, bytes] = {}
        #: Entries found unusable (content hash -> why); each was scored again.
        self.bad: dict[str, str] = {}

    @property
    def folder(self) -> Path | None:
        return self.root / self.digest if self.root is not None else None

    def path(self, run: Run) -> Path | None:
        return self.folder / f"{run.content_hash()}.npz" if self.folder is not None else None

    def __contains__(self, run: Run) -> bool:
        """Whether ``run`` has an entry that passes validation (a bad one is counted in :attr:`bad`)."""
        return self._read(run) is not None

    def __len__(self) -> int:
        if self.folder is None:
            return len(self._memory)
        return len(list(self.folder.glob("*.npz"))) if self.folder.is_dir() else 0

    def put(self, scored: Any) -> None:
        """Store a :class:`~attribution.score.ScoredRun` (made with ``Scorer(entropy=True)``)."""
        run = scored.run
        steps = [s for s in scored.steps if s.logps]
        offsets = np.cumsum([0] + [len(s.logps) for s in steps]).astype(np.int64)
        meta: dict[str, Any] = {"run": run.content_hash(), "setup": self.digest, "n_tokens": scored.n_tokens}

        def cat(values: list[list[float]]) -> np.ndarray:
            return np.asarray([x for v in values for x in v], dtype=np.float32)

        entropies = [scored.entropies.get(s.index, []) for s in steps]
        if any(len(e) != len(s.logps) for e, s in zip(entropies, steps)):
            raise ValueError("ScoreCache.put needs per-token entropies: score with Scorer(entropy=True)")
        arrays = {
            "steps": np.asarray([s.index for s in steps], dtype=np.int64),
            "offsets": offsets,
            "logps": cat([s.logps for s in steps]),
            "ref_logps": cat([s.ref_logps for s in steps]),
            "entropy": cat(entropies),
        }
        meta["sha256"] = _checksum(arrays)
        buf = io.BytesIO()
        np.savez(buf, **arrays, meta=np.asarray(json.dumps(meta)))
        data = buf.getvalue()
        if self.folder is None:
            self._memory[run.content_hash()] = data
            return
        if not (self.folder / "key.json").is_file():
            atomic_write_text(self.folder / "key.json", json.dumps(self.key, indent=1, sort_keys=True))
        path = self.path(run)
        if path.is_dir() and not path.is_symlink():  # something not ours in an entry's place
            shutil.rmtree(path)
        atomic_write_bytes(path, data)

    def get(self, run: Run, betas: dict[int, float]) -> "CachedScores | None":
        """The entry of ``run``, or None when absent or invalid (then it is scored again).

        ``betas`` maps each action step index to the beta of the pair that scores it.
        """
        got = self._read(run)
        if got is None:
            return None
        arrays, meta = got
        return CachedScores.from_arrays(run, arrays, betas, meta)

    def _read(self, run: Run) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        key = run.content_hash()
        if self.folder is None:
            data = self._memory.get(key)
            if data is None:
                return None
            src: Any = io.BytesIO(data)
        else:
            src = self.path(run)
            if not src.exists():
                return None
            if not src.is_file():
                self.bad[key] = "not a file"
                return None
        try:
            with np.load(src, allow_pickle=False) as z:
                arrays = {k: z[k] for k in _ARRAYS}
                meta = json.loads(str(z["meta"]))
        except Exception as err:  # truncated, bad CRC, not a zip, missing arrays: never a crash
            self.bad[key] = f"unreadable ({type(err).__name__})"
            return None
        why = _invalid(run, arrays, meta, self.digest)
        if why:
            self.bad[key] = why
            return None
        return arrays, meta


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in _ARRAYS:
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _invalid(run: Run, a: dict[str, np.ndarray], meta: Any, setup: str) -> str:
    """Why a read entry cannot be used ("" when it can)."""
    if not isinstance(meta, dict) or meta.get("run") != run.content_hash():
        return "written for another run"
    if meta.get("setup") != setup:
        return f"written for another setup ({meta.get('setup')!r}, not {setup!r})"
    if meta.get("sha256") != _checksum(a):
        return "checksum mismatch"
    steps, offsets = a["steps"], a["offsets"]
    n = a["logps"].shape
    if steps.ndim != 1 or offsets.shape != (steps.size + 1,) or a["ref_logps"].shape != n or a["entropy"].shape != n:
        return "arrays of inconsistent length"
    if offsets[0] != 0 or offsets[-1] != n[0] or (np.diff(offsets) <= 0).any():
        return "arrays of inconsistent length"
    actions = {s.index for s in run.steps if s.is_action}
    if not set(steps.tolist()) <= actions or len(set(steps.tolist())) != steps.size:
        return "steps that are not the run's action steps"
    if not (np.isfinite(a["logps"]).all() and np.isfinite(a["ref_logps"]).all()):
        return "a non-finite log-prob"
    if not np.isfinite(a["entropy"]).all():
        return "a non-finite entropy"
    return ""


class CachedScores:
    """One run's cached scores: :class:`StepScore` objects (token texts left empty) and entropies."""

    def __init__(self, run: Run, steps: list[StepScore], entropies: dict[int, list[float]], n_tokens: dict[str, int]):
        self.run = run
        self.steps = steps
        self.entropies = entropies
        self.n_tokens = n_tokens

    @classmethod
    def from_arrays(cls, run: Run, a: dict[str, np.ndarray], betas: dict[int, float], meta: dict[str, Any]) -> "CachedScores":
        spans = {int(i): (int(a["offsets"][k]), int(a["offsets"][k + 1])) for k, i in enumerate(a["steps"])}
        logps, ref_logps, entropy = a["logps"].tolist(), a["ref_logps"].tolist(), a["entropy"].tolist()
        steps, entropies = [], {}
        for step in run.steps:
            if step.index in spans:
                lo, hi = spans[step.index]
                beta = betas.get(step.index, 1.0)
                steps.append(StepScore(step.index, step.agent, step.kind, [], logps[lo:hi], ref_logps[lo:hi], beta))
                entropies[step.index] = entropy[lo:hi]
            else:
                steps.append(StepScore(step.index, step.agent, step.kind, beta=betas.get(step.index, 1.0)))
        return cls(run, steps, entropies, dict(meta.get("n_tokens", {})))
