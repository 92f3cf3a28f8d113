"""Langfuse over its public REST API: a trace with its observations in, scores out.

``langfuse://HOST:PORT`` (``langfuse+https://HOST`` for TLS), or ``langfuse://`` alone for the
host in ``LANGFUSE_HOST`` (default ``https://cloud.langfuse.com``), as Langfuse's own SDKs do.

=====================================  ====================================================
request                                used for
=====================================  ====================================================
``GET /api/public/traces/{traceId}``   one trace with its ``observations``
                                       (``TraceWithFullDetails``): :meth:`Langfuse.trace`
``GET /api/public/traces``             trace ids since a time (``fromTimestamp``, ``page``,
(``fromTimestamp``, ``page``,          ``limit``; ``{"data": [...], "meta": {totalPages}}``):
``limit``)                             :meth:`Langfuse.trace_ids`
``POST /api/public/scores``            one body of the ``--emit langfuse`` payload each
                                       (``{"id": ...}`` back): :meth:`Langfuse.post`; each
                                       body has a deterministic ``id``, so posting again
                                       updates the score instead of adding one
=====================================  ====================================================

Authentication is HTTP basic auth with ``LANGFUSE_PUBLIC_KEY`` as the user and
``LANGFUSE_SECRET_KEY`` as the password, the variables Langfuse's SDKs read; neither is ever
printed or stored. The trace JSON is read by the OTel reader's Langfuse shape
(:mod:`attribution.parse.otel`), the same one that reads a saved ``GET /api/public/traces/{id}``.

No Langfuse server can run in this project's CI; the client is tested against request and
response shapes recorded from Langfuse's published API reference (tests/test_langfuse.py).
"""

from __future__ import annotations

import base64
import datetime as _dt
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Sequence

from attribution.errors import ConfigError, RemoteError
from attribution.remote.rest import DEFAULT_TIMEOUT, request

__all__ = ["SCHEMES", "HOST_ENV", "PUBLIC_KEY_ENV", "SECRET_KEY_ENV", "DEFAULT_HOST", "Langfuse", "parse_url"]

SCHEMES = ("langfuse", "langfuse+http", "langfuse+https")
HOST_ENV, PUBLIC_KEY_ENV, SECRET_KEY_ENV = "LANGFUSE_HOST", "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"
DEFAULT_HOST = "https://cloud.langfuse.com"
#: Traces per page asked, and the most pages one listing reads (bounded work).
PAGE, MAX_PAGES = 100, 50


def parse_url(url: str) -> str:
    """``langfuse://HOST:PORT`` -> ``http://HOST:PORT``; ``langfuse://`` -> ``$LANGFUSE_HOST``.

    Examples
    --------
    >>> parse_url("langfuse://127.0.0.1:3000")
    'http://127.0.0.1:3000'
    >>> parse_url("langfuse+https://langfuse.example.com/")
    'https://langfuse.example.com'
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"a Langfuse source is langfuse://HOST:PORT or langfuse:// (host from ${HOST_ENV}); got {url!r}")
    if parts.username or parts.password:
        raise ConfigError(f"put no credentials in a Langfuse URL; the keys are read from ${PUBLIC_KEY_ENV} and ${SECRET_KEY_ENV}")
    if not parts.netloc:
        return (os.environ.get(HOST_ENV) or DEFAULT_HOST).rstrip("/")
    http = "https" if parts.scheme == "langfuse+https" else "http"
    return f"{http}://{parts.netloc}{parts.path}".rstrip("/")


@dataclass
class Langfuse:
    """A client for one Langfuse project (the keys name the project)."""

    url: str
    public_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        self.base = parse_url(self.url) if "://" in self.url and self.url.split("://")[0] in SCHEMES else self.url.rstrip("/")
        self.public_key = self.public_key or os.environ.get(PUBLIC_KEY_ENV)
        self.secret_key = self.secret_key or os.environ.get(SECRET_KEY_ENV)

    def __str__(self) -> str:
        return f"langfuse {self.base}"

    def _headers(self) -> dict[str, str]:
        if not self.public_key or not self.secret_key:
            raise ConfigError(f"Langfuse needs ${PUBLIC_KEY_ENV} and ${SECRET_KEY_ENV} (its project's API keys)")
        token = base64.b64encode(f"{self.public_key}:{self.secret_key}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _call(self, method: str, path: str, what: str, **kw: Any) -> Any:
        _, value = request(self.base, method, path, headers=self._headers(), timeout=self.timeout, what=what, **kw)
        return value

    def trace(self, trace_id: str) -> dict:
        """``GET /api/public/traces/{traceId}``: the trace with its observations."""
        path = f"/api/public/traces/{urllib.parse.quote(trace_id, safe='')}"
        value = self._call("GET", path, f"read trace {trace_id!r}")
        if not isinstance(value, dict) or not isinstance(value.get("observations"), list):
            raise RemoteError(f"{self.base}: GET {path}: expected a trace with 'observations'; got {str(value)[:120]!r}")
        return value

    def trace_ids(self, since: _dt.datetime | None = None) -> list[str]:
        """Ids of the traces since ``since`` (all when None), oldest first, at most PAGE*MAX_PAGES."""
        out: list[str] = []
        for page in range(1, MAX_PAGES + 1):
            params = {"page": page, "limit": PAGE, "orderBy": "timestamp.asc",
                      "fromTimestamp": since.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z") if since else None}
            value = self._call("GET", "/api/public/traces", "list traces", params=params)
            if not isinstance(value, dict) or not isinstance(value.get("data"), list):
                raise RemoteError(f"{self.base}: GET /api/public/traces: expected {{'data': [...], 'meta': ...}}")
            out += [t["id"] for t in value["data"] if isinstance(t, dict) and t.get("id")]
            if page >= int((value.get("meta") or {}).get("totalPages") or 1):
                return out
        raise RemoteError(f"{self.base}: more than {PAGE * MAX_PAGES} traces; narrow it with --trace or --since")

    def runs(self, trace_ids: Sequence[str], *, actors: Sequence[str] = (), observers: Sequence[str] = ()) -> list:
        """One :class:`~attribution.types.Run` per trace, read by the otel reader's Langfuse shape."""
        from attribution.parse import prepare_runs, read_runs

        runs = []
        for t in trace_ids:
            source = f"{self.base}/api/public/traces/{t}"
            runs += read_runs(self.trace(t), source, "otel")
        return prepare_runs(runs, str(self), actors=actors, observers=observers)

    def post(self, scores: Sequence[dict]) -> int:
        """``POST /api/public/scores`` for each body of an ``--emit langfuse`` payload; returns how many
        the server accepted (answered with an ``id``)."""
        accepted = 0
        for body in scores:
            value = self._call("POST", "/api/public/scores", f"post score {body.get('name')!r}", body=body)
            if not isinstance(value, dict) or not value.get("id"):
                raise RemoteError(f"{self.base}: POST /api/public/scores: expected {{'id': ...}}; got {str(value)[:120]!r}")
            accepted += 1
        return accepted
