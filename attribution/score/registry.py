"""Named public checkpoint pairs: ``--pair NAME`` and ``attribution pairs``.

The registry is one data file, ``registry.json`` beside this module: per name, the policy and
its reference (hub ids, or folders relative to the file), what kind of reference it is
(``exact``: the checkpoint RL started from; ``base``: the base model, an approximation when
SFT/DPO stages lie between), size, licence, the beta of training where it is published (null:
scores are log-ratios, beta 1), what was and was not checked against the models' own cards,
and a note.

A hub id is fetched with ``huggingface_hub.snapshot_download`` (its cache and progress bars;
``HF_HOME`` / ``HF_HUB_CACHE`` move the cache): from the local cache first, from the hub only
when the cache lacks it. The snapshot's commit is recorded as the checkpoint's id
(``repo@commit``), so a diagnosis names exactly what scored it. Offline, a pair not in the
cache fails at once with one line naming the pair, how to download it beforehand, and how to
point ``--policy/--reference`` at the downloaded folders.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from attribution.errors import CheckpointError, ConfigError

__all__ = ["REGISTRY_PATH", "DOWNLOAD_PATTERNS", "load_registry", "resolve_side", "resolve_pair", "download_pair", "table_rows"]

#: The registry data file (tests point this at a registry of local tiny folders).
REGISTRY_PATH = Path(__file__).with_name("registry.json")

#: Files a pair needs: config, safetensors weights, tokenizer and chat template.
DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model", "*.txt", "*.jinja"]

_FIELDS = ("policy", "reference", "reference_kind", "size", "license", "beta", "checked", "note")


def load_registry(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The registry's pairs by name, each checked (policy, reference strings; beta a positive number or null)."""
    path = Path(path) if path is not None else REGISTRY_PATH
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: cannot read the pair registry ({type(err).__name__})") from None
    pairs = raw.get("pairs") if isinstance(raw, dict) else None
    if not isinstance(pairs, dict) or not pairs:
        raise ConfigError(f"{path}: expected an object with a non-empty 'pairs' mapping")
    for name, spec in pairs.items():
        if not isinstance(spec, dict) or not all(isinstance(spec.get(k), str) and spec[k] for k in ("policy", "reference")):
            raise ConfigError(f"{path}: pair {name!r} must have 'policy' and 'reference' strings")
        beta = spec.get("beta")
        if beta is not None and not (isinstance(beta, (int, float)) and not isinstance(beta, bool) and math.isfinite(beta) and beta > 0):
            raise ConfigError(f"{path}: pair {name!r}: 'beta' must be a positive number or null. Got {beta!r} instead.")
        spec.setdefault("_base", str(path.parent))
    return pairs


def _is_local(value: str, base: Path) -> bool:
    return value.startswith((".", "/", "~")) or (base / value).exists()


def _offline_message(name: str, spec: dict[str, Any], repo: str) -> str:
    return (f"pair {name!r}: {repo} is not in the local Hugging Face cache and the hub is unreachable; "
            f"download it beforehand where there is a network (`attribution pairs --download {name}`, which prints the folders, or "
            f"`hf download {spec['policy']}` and `hf download {spec['reference']}`), or pass "
            "--policy DIR --reference DIR with folders you downloaded")


def resolve_side(name: str, spec: dict[str, Any], side: str) -> tuple[str, str | None]:
    """(local folder, ``repo@commit`` or None) of one side of a registry pair; downloads a hub id if needed."""
    value = spec[side]
    base = Path(spec.get("_base", REGISTRY_PATH.parent))
    if _is_local(value, base):
        return str((base / value).expanduser()), None
    from huggingface_hub import snapshot_download

    from attribution.hub import ensure_offline_if_unreachable

    try:  # the local cache answers without a network
        folder = snapshot_download(value, local_files_only=True, allow_patterns=DOWNLOAD_PATTERNS)
    except Exception:
        folder = None
    if folder is None:
        if not ensure_offline_if_unreachable():
            raise CheckpointError(_offline_message(name, spec, value))
        try:  # the hub library's own progress bars and cache
            folder = snapshot_download(value, allow_patterns=DOWNLOAD_PATTERNS)
        except Exception as err:
            text = str(err).strip().splitlines()
            raise CheckpointError(f"pair {name!r}: cannot download {value} ({text[0] if text else type(err).__name__})") from None
    return str(folder), f"{value}@{Path(folder).name}"


def resolve_pair(name: str, registry: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Registry pair ``name`` as local folders: ``policy``, ``reference``, their ``policy_hub`` /
    ``reference_hub`` (``repo@commit``, None for a folder) and ``beta`` (None when unknown).
    A hub id is fetched into the Hugging Face cache when missing there (:func:`resolve_side`)."""
    pairs = load_registry() if registry is None else registry
    if name not in pairs:
        raise ConfigError(f"The '--pair' option must be one of {', '.join(pairs)} (see `attribution pairs`). Got {name!r} instead.")
    spec = pairs[name]
    policy, policy_hub = resolve_side(name, spec, "policy")
    reference, reference_hub = resolve_side(name, spec, "reference")
    return {"policy": policy, "reference": reference, "policy_hub": policy_hub, "reference_hub": reference_hub,
            "beta": spec.get("beta")}


def download_pair(name: str) -> tuple[str, str]:
    """Fetch both sides of a registry pair into the Hugging Face cache; return their folders."""
    got = resolve_pair(name)
    return got["policy"], got["reference"]


def table_rows(registry: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per registry pair, for ``attribution pairs`` (``--json`` prints them as they are)."""
    pairs = load_registry() if registry is None else registry
    return [{"name": n, **{k: spec.get(k) for k in _FIELDS}} for n, spec in pairs.items()]
