"""JSON over HTTP with the standard library, every failure one :class:`~attribution.errors.RemoteError` line.

Both trace-store clients (:mod:`attribution.remote.phoenix`, :mod:`attribution.remote.langfuse`)
send and read through :func:`request`. A connection refused, a timeout, a 4xx/5xx answer or a
body that is not JSON becomes a one-line error naming the server, the method and path and what
came back (the start of the server's own message). Headers are never part of a message, so an
API key or a basic-auth secret cannot be printed.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping

from attribution.errors import RemoteError

__all__ = ["request", "DEFAULT_TIMEOUT"]

#: Seconds a request may take before it is a :class:`RemoteError`.
DEFAULT_TIMEOUT = 30.0
_MESSAGE_CHARS = 200


def _detail(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        value = json.loads(text)
        if isinstance(value, dict):
            text = str(value.get("detail") or value.get("message") or value.get("error") or text)
    except ValueError:
        pass
    text = " ".join(text.split())
    return text[:_MESSAGE_CHARS] + ("…" if len(text) > _MESSAGE_CHARS else "")


def request(
    base: str,
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "",
) -> tuple[int, Any]:
    """Send ``method base+path?params`` with a JSON ``body``; returns (status, parsed JSON or None).

    ``params`` values that are lists are repeated (``?a=1&a=2``); None values are left out.
    ``what`` says in an error what the request was for ("read spans of project 'x'").

    Raises
    ------
    RemoteError
        The server could not be reached, did not answer in ``timeout`` seconds, answered with
        a status of 400 or more, or answered with a body that is not JSON.
    """
    query = urllib.parse.urlencode(
        [(k, v) for k, vs in (params or {}).items() for v in (vs if isinstance(vs, (list, tuple)) else [vs]) if v is not None]
    )
    url = base.rstrip("/") + path + (f"?{query}" if query else "")
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    where = f"{base.rstrip('/')}: {method} {path}" + (f" ({what})" if what else "")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        raw = err.read() if err.fp is not None else b""
        raise RemoteError(f"{where}: the server answered {err.code} {err.reason}: {_detail(raw) or 'no message'}") from None
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise RemoteError(f"{where}: no answer within {timeout:g} s (timeout)") from None
        if isinstance(reason, ConnectionRefusedError):
            raise RemoteError(f"{where}: connection refused; is the server running there?") from None
        raise RemoteError(f"{where}: cannot reach the server: {reason}") from None
    except (socket.timeout, TimeoutError):
        raise RemoteError(f"{where}: no answer within {timeout:g} s (timeout)") from None
    except (ConnectionError, OSError) as err:  # reset or closed mid-answer
        raise RemoteError(f"{where}: the connection failed: {err.strerror or type(err).__name__}") from None
    if not raw.strip():
        return status, None
    try:
        return status, json.loads(raw)
    except ValueError:
        raise RemoteError(f"{where}: expected a JSON answer; got {_detail(raw)!r}") from None
