"""Where and in what precision the models run, and how much they may hold at once.

Pure functions over ``torch``'s availability queries, so each branch is testable on a CPU by
mocking ``torch.cuda.is_available``, ``torch.cuda.is_bf16_supported`` and
``torch.backends.mps.is_available``. Settings are resolved (``"auto"`` turned into a device
and a dtype, a bad name refused) before any model loads.

- :func:`resolve_device`: ``"auto"`` is CUDA, then MPS, then CPU; a named device must exist.
- :func:`resolve_dtype`: ``"auto"`` is bf16 on a GPU that supports it, else fp32 (fp16 is
  never chosen for you: its range overflows on long runs). The output head and the
  log-softmax run in fp32 whatever the weights' dtype (:mod:`attribution.score.logprobs`).
- :func:`parse_device_map`: ``--device-map`` puts the policy and the reference on different GPUs.
- :func:`attention_implementation`: FlashAttention 2 when installed on CUDA in half precision,
  else SDPA. Both keep the causal fast path: the scorer passes no padding mask.
- :func:`token_budget`: padded tokens per forward pass from the free device memory.
- :func:`is_out_of_memory`, :func:`free_memory`, :func:`peak_memory`, :func:`reset_peak_memory`.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from typing import Any, Iterable

from attribution.errors import ConfigError

__all__ = [
    "DEVICES",
    "DTYPES",
    "resolve_device",
    "resolve_dtype",
    "parse_device_map",
    "attention_implementation",
    "free_memory",
    "token_budget",
    "is_out_of_memory",
    "peak_memory",
    "reset_peak_memory",
    "DEFAULT_BATCH_TOKENS",
]

DEVICES = "auto, cpu, cuda, cuda:N or mps"
DTYPES = ("auto", "float32", "bfloat16", "float16")

#: Padded tokens per forward pass where free memory cannot be measured (CPU, MPS).
DEFAULT_BATCH_TOKENS = 16384

_DEVICE_RE = re.compile(r"^(cpu|mps|cuda)(?::(\d+))?$")


def resolve_device(device: str = "auto", *, check: bool = True) -> str:
    """A concrete torch device string for ``device``.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}
        ``"auto"`` is the first available of CUDA, MPS, CPU.
    check : bool
        Refuse a named device that this machine does not have. Off for a device that only
        remote workers have (the Ray engine's driver may have no GPU).

    Raises
    ------
    ConfigError
        An unknown name, or (with ``check``) a device this machine does not have.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    import torch

    if not isinstance(device, str):
        raise ConfigError(f"The 'device' parameter must be one of {DEVICES}. Got {device!r} instead.")
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available():
            return "mps"
        return "cpu"
    m = _DEVICE_RE.match(name)
    if m is None or (m.group(1) != "cuda" and m.group(2) is not None):
        raise ConfigError(f"The 'device' parameter must be one of {DEVICES}. Got {device!r} instead.")
    kind, index = m.group(1), m.group(2)
    if check and kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} is not available: this machine has no CUDA GPU that torch can use (try --device auto or cpu)")
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            raise ConfigError(f"device {device!r} is not available: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    if check and kind == "mps" and not _mps_available():
        raise ConfigError(f"device {device!r} is not available: torch reports no MPS backend on this machine (try --device auto or cpu)")
    return name


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_dtype(dtype: str, device: str) -> str:
    """A concrete weights dtype name for ``dtype`` on the (resolved) ``device``.

    ``"auto"``: bfloat16 on a CUDA GPU that supports it (fp32 on one that does not), float32
    on CPU and MPS (bf16 on MPS depends on the macOS version; fp32 is always right). When this
    machine has no CUDA but the device is CUDA (a remote Ray worker), bf16 is assumed: every
    data-centre GPU since Ampere has it.

    Examples
    --------
    >>> resolve_dtype("auto", "cpu")
    'float32'
    >>> resolve_dtype("float16", "cpu")
    'float16'
    """
    import torch

    if dtype not in DTYPES:
        raise ConfigError(f"The 'dtype' parameter must be one of {', '.join(DTYPES)}. Got {dtype!r} instead.")
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return "bfloat16"
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "float32"


def parse_device_map(spec: str | None, device: str = "auto", *, check: bool = True) -> tuple[str, str]:
    """(policy device, reference device) from ``--device-map`` and ``--device``.

    ``spec`` is ``"policy=cuda:0,reference=cuda:1"``, or the short form ``"cuda:0,cuda:1"``
    (policy first); None puts both on ``device``. Each side is resolved by :func:`resolve_device`.

    Examples
    --------
    >>> parse_device_map("policy=cpu,reference=cpu")
    ('cpu', 'cpu')
    >>> parse_device_map(None, "cpu")
    ('cpu', 'cpu')
    """
    if spec is None or spec == "":
        d = resolve_device(device, check=check)
        return d, d
    parts = [p.strip() for p in str(spec).split(",")]
    bad = ConfigError(
        "The 'device_map' parameter must be 'policy=DEVICE,reference=DEVICE' or 'DEVICE,DEVICE' "
        f"(each one of {DEVICES}). Got {spec!r} instead."
    )
    if len(parts) != 2 or not all(parts):
        raise bad
    if all("=" in p for p in parts):
        named = dict(tuple(x.strip() for x in p.split("=", 1)) for p in parts)
        if set(named) != {"policy", "reference"}:
            raise bad
        pol, ref = named["policy"], named["reference"]
    elif not any("=" in p for p in parts):
        pol, ref = parts
    else:
        raise bad
    return resolve_device(pol, check=check), resolve_device(ref, check=check)


def attention_implementation(device: str, dtype: str) -> str:
    """The fastest attention transformers offers here: ``"flash_attention_2"`` or ``"sdpa"``.

    FlashAttention needs CUDA, half precision and the ``flash_attn`` package. Both paths take
    the causal fast path because the scorer passes no padding mask (padding only follows a
    row's tokens, so causal attention never lets it reach a scored position).
    """
    if device.startswith("cuda") and dtype in ("bfloat16", "float16") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def free_memory(device: str) -> int | None:
    """Free bytes on ``device`` (CUDA), or None where it cannot be measured (CPU, MPS).

    Counts memory torch's caching allocator holds but no tensor uses as free: after one batch
    the cache would otherwise shrink the next call's budget.
    """
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        dev = torch.device(device)
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free + torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev))
    return None


def _bytes_per_token(config: Any, dtype: str) -> int:
    """Activation bytes one token holds in a no-grad forward pass of a decoder layer.

    With no autograd only one layer's activations live at a time: the residual stream, the
    normed input, q/k/v and the attention output (~6 hidden-size vectors), and the MLP's gate,
    up and product (~3 intermediate-size vectors). SDPA/FlashAttention keep attention scores
    out of memory. Doubled for allocator fragmentation and the trunk's returned hidden state.
    """
    size = {"float32": 4, "bfloat16": 2, "float16": 2}.get(dtype, 4)
    hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0) or 1024)
    inter = int(getattr(config, "intermediate_size", 0) or getattr(config, "n_inner", 0) or 4 * hidden)
    return 2 * size * (6 * hidden + 3 * inter)


def token_budget(
    free_bytes: int | None,
    configs: Iterable[Any],
    dtype: str,
    *,
    window: int,
    reserve: float = 0.2,
    head_bytes: int = 0,
    default: int = DEFAULT_BATCH_TOKENS,
) -> int:
    """Padded tokens per forward pass that fit in ``free_bytes`` (weights already loaded).

    Parameters
    ----------
    free_bytes : int or None
        Free device memory after loading the models; None (CPU, MPS) gives ``default``.
    configs : the model configs of the pairs sharing the device (the largest decides)
    dtype : the weights' (and so activations') dtype
    window : tokens of one window; the budget is never below one window (a window that does
        not fit is reported by the out-of-memory back-off)
    reserve : share of the free memory left alone (other processes, fragmentation)
    head_bytes : memory the fp32 output head takes per chunk (subtracted first)
    default : the budget when free memory is unknown

    Examples
    --------
    >>> token_budget(None, [], "float32", window=1024)
    16384
    """
    if free_bytes is None:
        return max(default, window)
    per_token = max((_bytes_per_token(c, dtype) for c in configs), default=_bytes_per_token(None, dtype))
    usable = max(0, int(free_bytes * (1 - reserve)) - head_bytes)
    return max(window, usable // per_token)


def is_out_of_memory(err: BaseException) -> bool:
    """True for a device out-of-memory error (CUDA, MPS, or a CPU allocator's)."""
    import torch

    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(err, oom_type):
        return True
    return isinstance(err, (RuntimeError, MemoryError)) and (
        isinstance(err, MemoryError) or "out of memory" in str(err).lower()
    )


def reset_peak_memory(devices: Iterable[str]) -> None:
    """Start counting peak memory afresh on each CUDA device (CPU's peak RSS cannot be reset)."""
    import torch

    for d in set(devices):
        if d.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats(torch.device(d))


def peak_memory(devices: Iterable[str]) -> dict[str, int]:
    """Peak bytes per device: allocated tensors on CUDA, driver memory on MPS, process RSS on CPU."""
    import torch

    out = {}
    for d in sorted(set(devices)):
        if d.startswith("cuda") and torch.cuda.is_available():
            out[d] = int(torch.cuda.max_memory_allocated(torch.device(d)))
        elif d.startswith("mps") and _mps_available():
            out[d] = int(torch.mps.driver_allocated_memory())  # MPS keeps no peak; the current size
        elif d == "cpu":
            out[d] = _peak_rss()
    return out


def _peak_rss() -> int:
    try:
        import resource
    except ImportError:  # Windows
        return 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # bytes on macOS, KiB on Linux
