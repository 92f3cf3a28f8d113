"""Fail fast without a network: decide once whether the Hugging Face hub is reachable.

Unset, a hub lookup on a machine without a network retries for about 47 s. We probe the
hub's host with a short TCP connect and, when it does not answer, set ``HF_HUB_OFFLINE``
and ``HF_DATASETS_OFFLINE`` so that every later lookup answers from the local cache at once.
"""

from __future__ import annotations

import functools
import os
import socket

__all__ = ["hub_reachable", "ensure_offline_if_unreachable"]

_TRUE = {"1", "true", "yes", "on"}


def _env_offline() -> bool:
    return any(os.environ.get(v, "").lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@functools.lru_cache(maxsize=1)
def hub_reachable(host: str = "huggingface.co", port: int = 443, timeout: float = 2.0) -> bool:
    """True when a TCP connection to the hub opens within ``timeout`` seconds (and we are not forced offline)."""
    if _env_offline():
        return False
    endpoint = os.environ.get("HF_ENDPOINT")
    if endpoint:
        host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_offline_if_unreachable() -> bool:
    """Set the offline switches when the hub cannot be reached; return whether it can."""
    ok = hub_reachable()
    if not ok:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
        try:  # huggingface_hub reads the switch at import; update its constant too
            import huggingface_hub.constants as c

            c.HF_HUB_OFFLINE = True
        except Exception:
            pass
    return ok
