"""Checkpoint pairs (policy, reference, beta) and the per-agent pair config.

A pair is the RL-trained checkpoint (policy), the checkpoint it started from (reference) and
the KL coefficient beta. Each side loads with transformers from a local folder or a hub id.
Pairs are constructed cheaply and load on first use; two pairs naming the same folders share
one loaded model.

Pair config file (JSON)::

    {
      "pairs": {
        "web":     {"policy": "ckpt/web-rl", "reference": "ckpt/web-sft", "beta": 0.1},
        "general": {"policy": "org/model-rl", "reference": "org/model-sft", "beta": 0.05}
      },
      "agents": {"WebSurfer": "web", "*_Expert": "general"},
      "default": "general"
    }

``agents`` maps an agent name or a glob (``fnmatch``) to a pair name, first match wins;
``default`` takes every other agent (omit it to make an unplaced agent an error). Relative
folder paths are resolved against the config file's folder. A pair may instead name a registry
pair, ``{"pair": "olmo-2-1b-instruct"}`` (optionally with ``"beta"``), as ``--pair NAME`` does
(:mod:`attribution.score.registry`, ``attribution pairs``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution.errors import CheckpointError, ConfigError
from attribution.io import parse_json

__all__ = ["Checkpoint", "CheckpointPair", "PairConfig", "load_pair_config", "file_sha256", "hash_memo_path", "TOKENIZER_FILES"]

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


def _check_folder(path: Path) -> None:
    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint folder not found (expected a folder saved with save_pretrained, or a hub id)")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / f).is_file() for f in _WEIGHT_FILES) and not list(path.glob("*.safetensors")):
        missing.append("weights (model.safetensors or pytorch_model.bin)")
    if not any((path / f).is_file() for f in _TOKENIZER_FILES):
        missing.append("a tokenizer (tokenizer.json or tokenizer_config.json)")
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint folder, missing {', '.join(missing)}")


#: Files of a checkpoint folder that change what a tokenizer produces.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "tokenizer.model",
    "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "chat_template.json",
)


#: A file changed less than this long (ns) before it is hashed is not memoised (see :func:`file_sha256`):
#: some file systems keep timestamps to a clock tick, or to a second or two.
RACY_NS = 2_000_000_000


def hash_memo_path() -> Path:
    """The on-disk memo of full-content file hashes: ``$XDG_CACHE_HOME/attribution/file-sha256.json``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "attribution" / "file-sha256.json"


def file_sha256(path: Path, memo: Path | None = None) -> str:
    """The sha256 of a file's full content, memoised on disk by (path, size, mtime_ns, ctime_ns, inode).

    A checkpoint of tens of GB is read once; later calls cost a ``stat``. Any write to the
    file changes its mtime and its ctime (a copy over it changes its inode). A user can set
    the mtime back (``touch -d``, ``os.utime``, ``cp -p``, ``rsync -t``), but not the ctime:
    the kernel sets it on every write and on every change of the mtime itself. So a memo
    entry never outlives the content it describes, short of changing the system clock or
    writing to the raw device. Only a copy, a ``chmod`` or a ``touch`` (new ctime, same
    content) costs a re-hash.

    When in doubt, hash: a file changed less than :data:`RACY_NS` before it was hashed is not
    memoised (a second write in the same timestamp tick, or a file still being written,
    would otherwise keep its stat), so it is hashed again next time.
    """
    from attribution.io import atomic_write_text

    memo = hash_memo_path() if memo is None else memo
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"
    try:
        table = json.loads(memo.read_text())
        if not isinstance(table, dict):
            table = {}
    except (OSError, ValueError):
        table = {}
    if isinstance(table.get(key), str):
        return table[key]
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            h.update(block)
    digest = h.hexdigest()
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
        return digest  # changed a moment ago: its stat may not tell the next change apart
    stale = str(path.resolve()) + "|"
    table = {k: v for k, v in table.items() if not k.startswith(stale)}  # older versions of this file
    table[key] = digest
    try:
        atomic_write_text(memo, json.dumps(table, indent=0, sort_keys=True))
    except OSError:
        pass  # a read-only cache folder costs a re-hash next time, never a wrong id
    return digest


def _fingerprint(path: Path) -> str:
    """A content id of a local checkpoint: the full content of its config, weight and tokenizer files."""
    h = hashlib.sha256()
    files = [path / "config.json"]
    files += sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin") or p.name.endswith(".index.json"))
    files += [path / f for f in TOKENIZER_FILES if (path / f).is_file()]
    for f in files:
        h.update(f"{f.name}:{file_sha256(f)}\n".encode())
    return h.hexdigest()[:32]


@dataclass
class Checkpoint:
    """One side of a pair: a local folder or a hub id, loaded on first use."""

    name: str
    dtype: str = "float32"
    device: str = "cpu"
    # ``repo@commit`` when the folder is a hub snapshot fetched for a named pair (score/registry.py).
    hub: str | None = field(default=None, init=False)
    _model: Any = field(default=None, init=False, repr=False)
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _id: str | None = field(default=None, init=False, repr=False)

    @property
    def is_local(self) -> bool:
        return Path(self.name).expanduser().exists() or self.name.startswith((".", "/", "~"))

    @property
    def id(self) -> str:
        """Stable id: ``folder-name@content-hash`` for a folder (config, weights and tokenizer files,
        full content, see :func:`file_sha256`), ``repo@commit`` for a hub id (its revision)."""
        if self._id is None and self.hub:
            self._id = self.hub
        if self._id is None:
            if self.is_local:
                path = Path(self.name).expanduser().resolve()
                _check_folder(path)
                self._id = f"{path.name}@{_fingerprint(path)}"
            else:  # the hub revision names every file of the repo, weights and tokenizer alike
                commit = getattr(self.model.config, "_commit_hash", None)
                if not commit:  # no revision to name it by: an id that matches nothing cached
                    import uuid

                    commit = f"unknown-revision-{uuid.uuid4().hex}"
                self._id = f"{self.name}@{commit}"
        return self._id

    def _load_kwargs(self) -> dict[str, Any]:
        if self.is_local:
            _check_folder(Path(self.name).expanduser())
            return {"local_files_only": True}
        from attribution.hub import ensure_offline_if_unreachable

        return {} if ensure_offline_if_unreachable() else {"local_files_only": True}

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            kwargs = self._load_kwargs()
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(str(Path(self.name).expanduser()) if self.is_local else self.name, **kwargs)
            except Exception as err:
                raise CheckpointError(f"{self.name}: cannot load its tokenizer ({_first_line(err)}){_offline_hint(kwargs)}") from err
        return self._tokenizer

    @property
    def model(self) -> Any:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM

            if self.dtype not in ("float32", "bfloat16", "float16"):
                raise ConfigError(f"dtype must be one of float32, bfloat16, float16. Got {self.dtype!r} instead.")
            from attribution.score.device import attention_implementation

            kwargs = self._load_kwargs()
            _quiet_transformers()
            where = str(Path(self.name).expanduser()) if self.is_local else self.name
            attn = attention_implementation(self.device, self.dtype)
            try:
                try:
                    model = AutoModelForCausalLM.from_pretrained(where, dtype=getattr(torch, self.dtype), attn_implementation=attn, **kwargs)
                except (ValueError, ImportError):  # an architecture without SDPA/FlashAttention: its default
                    model = AutoModelForCausalLM.from_pretrained(where, dtype=getattr(torch, self.dtype), **kwargs)
            except Exception as err:
                raise CheckpointError(f"{self.name}: cannot load the model ({_first_line(err)}){_offline_hint(kwargs)}") from err
            self._model = model.to(self.device).eval()
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        # Pickled (to a Ray worker) as its name, dtype, device and id: the model loads again there.
        return {**self.__dict__, "_model": None, "_tokenizer": None}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "id": self.id, "dtype": self.dtype}


def _quiet_transformers() -> None:
    """Loading bars from transformers would drown our own progress bar."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _offline_hint(kwargs: dict[str, Any]) -> str:
    return "; the hub is unreachable, so only local folders and the local cache can be used" if kwargs.get("local_files_only") else ""


_LOADED: dict[tuple[str, str, str], Checkpoint] = {}


def _checkpoint(name: str, dtype: str, device: str) -> Checkpoint:
    """One Checkpoint object (so one loaded model) per (name, dtype, device) in a process."""
    key = (str(Path(name).expanduser().resolve()) if Path(name).expanduser().exists() else name, dtype, device)
    if key not in _LOADED:
        _LOADED[key] = Checkpoint(name, dtype=dtype, device=device)
    return _LOADED[key]


@dataclass
class CheckpointPair:
    """(policy, reference, beta). Construct with :meth:`load`; the models load on first use."""

    policy: Checkpoint
    reference: Checkpoint
    beta: float = 1.0
    name: str = "default"
    registry: str | None = field(default=None, init=False)  # the `--pair NAME` this pair came from
    _checked: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        ok = isinstance(self.beta, (int, float)) and not isinstance(self.beta, bool) and math.isfinite(self.beta) and self.beta > 0
        if not ok:
            raise ConfigError(f"The 'beta' parameter of pair {self.name!r} must be a finite positive number. Got {self.beta!r} instead.")
        self.beta = float(self.beta)

    @classmethod
    def load(
        cls,
        policy: str,
        reference: str,
        beta: float = 1.0,
        *,
        name: str = "default",
        dtype: str = "float32",
        device: str = "cpu",
        reference_device: str | None = None,
    ) -> "CheckpointPair":
        """``reference_device`` places the reference apart from the policy (default: ``device``)."""
        ref_device = device if reference_device is None else reference_device
        return cls(_checkpoint(str(policy), dtype, device), _checkpoint(str(reference), dtype, ref_device), beta, name)

    @classmethod
    def from_registry(
        cls,
        name: str,
        *,
        beta: float | None = None,
        dtype: str = "float32",
        device: str = "cpu",
        reference_device: str | None = None,
    ) -> "CheckpointPair":
        """The named public pair ``name`` (``attribution pairs``; :mod:`attribution.score.registry`), fetched
        into the Hugging Face cache if needed; ``beta`` overrides the registry's (unknown there: 1)."""
        from attribution.score.registry import resolve_pair

        got = resolve_pair(name)
        b = beta if beta is not None else (got["beta"] if got["beta"] is not None else 1.0)
        pair = cls.load(got["policy"], got["reference"], b, name=name, dtype=dtype, device=device, reference_device=reference_device)
        pair.policy.hub, pair.reference.hub = got["policy_hub"], got["reference_hub"]
        pair.registry = name
        return pair

    @property
    def key(self) -> tuple[str, str]:
        return (self.policy.name, self.reference.name)

    @property
    def tokenizer(self) -> Any:
        """The pair's tokenizer, after checking that both sides tokenise identically."""
        a, b = self.policy.tokenizer, self.reference.tokenizer
        if self._checked:
            return a
        if a is not b and (
            a.get_vocab() != b.get_vocab()
            or a.all_special_tokens != b.all_special_tokens
            or getattr(a, "chat_template", None) != getattr(b, "chat_template", None)
        ):
            raise CheckpointError(
                f"pair {self.name!r}: the tokenizers of {self.policy.name} and {self.reference.name} differ; "
                "a policy and its reference must share one tokenizer"
            )
        self._checked = True
        return a

    def describe(self) -> dict[str, Any]:
        out = {"policy": self.policy.describe(), "reference": self.reference.describe(), "beta": self.beta}
        if self.registry:
            out["registry"] = self.registry
        return out


@dataclass
class PairConfig:
    """Which pair scores which agent: agent name or glob -> pair, plus an optional default."""

    pairs: dict[str, CheckpointPair]
    agents: list[tuple[str, str]] = field(default_factory=list)
    default: str | None = None
    source: str = "<pairs>"

    def __post_init__(self) -> None:
        for pattern, pname in self.agents:
            if pname not in self.pairs:
                raise ConfigError(f"{self.source}: agent {pattern!r} names pair {pname!r}, which is not among {sorted(self.pairs)}")
        if self.default is not None and self.default not in self.pairs:
            raise ConfigError(f"{self.source}: default pair {self.default!r} is not among {sorted(self.pairs)}")

    @classmethod
    def single(cls, pair: CheckpointPair) -> "PairConfig":
        return cls(pairs={pair.name: pair}, default=pair.name)

    def pair_for(self, agent: str) -> CheckpointPair | None:
        for pattern, pname in self.agents:
            if fnmatch.fnmatchcase(agent, pattern):
                return self.pairs[pname]
        return self.pairs[self.default] if self.default is not None else None


def load_pair_config(
    path: str | os.PathLike, *, dtype: str = "float32", device: str = "cpu", reference_device: str | None = None
) -> PairConfig:
    """Read a pair config file (format in the module docstring); references go on ``reference_device`` if given."""
    path = Path(path)
    try:
        raw = parse_json(path.read_text(encoding="utf-8"), path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: pair config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: expected a JSON pair config file; got a folder") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: expected a readable UTF-8 JSON pair config; got {type(err).__name__}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: expected a JSON pair config; not JSON (line {err.lineno}, column {err.colno})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("pairs"), dict) or not raw["pairs"]:
        raise ConfigError(f"{path}: expected an object with a non-empty 'pairs' mapping")

    def resolve(p: Any, where: str) -> str:
        if not isinstance(p, str) or not p:
            raise ConfigError(f"{path}: {where} must be a folder or hub id string. Got {p!r} instead.")
        local = (path.parent / p).expanduser()
        return str(local) if (p.startswith((".", "/", "~")) or local.exists()) else p

    pairs = {}
    for pname, spec in raw["pairs"].items():
        if isinstance(spec, dict) and "pair" in spec and "policy" not in spec and "reference" not in spec:
            if not isinstance(spec["pair"], str):
                raise ConfigError(f"{path}: pairs.{pname}.pair must name a registry pair (see `attribution pairs`). Got {spec['pair']!r} instead.")
            try:
                pairs[pname] = CheckpointPair.from_registry(spec["pair"], beta=spec.get("beta"), dtype=spec.get("dtype", dtype),
                                                            device=device, reference_device=reference_device)
            except ConfigError as err:
                raise ConfigError(f"{path}: pairs.{pname}: {err}") from None
            pairs[pname].name = pname
            continue
        if not isinstance(spec, dict) or "policy" not in spec or "reference" not in spec:
            raise ConfigError(f"{path}: pair {pname!r} must have 'policy' and 'reference' (or 'pair': a name from `attribution pairs`)")
        if not pname.isprintable():  # the name is shown in progress bars and reports
            raise ConfigError(f"{path}: pair names must be printable. Got {pname!r} instead.")
        if not isinstance(spec.get("dtype", dtype), str):
            raise ConfigError(f"{path}: pairs.{pname}.dtype must be a string. Got {spec['dtype']!r} instead.")
        try:
            pairs[pname] = CheckpointPair.load(
                resolve(spec["policy"], f"pairs.{pname}.policy"),
                resolve(spec["reference"], f"pairs.{pname}.reference"),
                spec.get("beta", 1.0),
                name=pname,
                dtype=spec.get("dtype", dtype),
                device=device,
                reference_device=reference_device,
            )
        except ConfigError as err:
            if str(err).startswith(str(path)):
                raise
            raise ConfigError(f"{path}: {err}") from None
    agents = raw.get("agents", {})
    if not isinstance(agents, dict) or not all(isinstance(v, str) for v in agents.values()):
        raise ConfigError(f"{path}: 'agents' must map agent names or globs to pair names")
    if raw.get("default") is not None and not isinstance(raw["default"], str):
        raise ConfigError(f"{path}: 'default' must be a pair name. Got {raw['default']!r} instead.")
    return PairConfig(pairs=pairs, agents=list(agents.items()), default=raw.get("default"), source=str(path))
