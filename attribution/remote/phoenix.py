"""Phoenix (Arize's open-source trace store) over its REST API: spans in, span annotations out.

``phoenix://HOST:PORT/PROJECT`` names a project of a running Phoenix (``phoenix+https://`` for
TLS; a path prefix before the project is kept: ``phoenix://host/prefix/PROJECT``).

=====================================================  =========================================
request                                                used for
=====================================================  =========================================
``GET /v1/projects/{project}/spans`` (``start_time``,   reading spans, page by page
``end_time``, ``limit``, ``cursor``)                    (:meth:`Phoenix.spans`)
``POST /v1/span_annotations?sync=true``                 posting the ``--emit phoenix`` payload
                                                        (:meth:`Phoenix.post`); the answer's ids
                                                        count what was accepted
``GET /v1/projects/{project}/span_annotations``         reading annotations back
(``span_ids``, ``limit``, ``cursor``)                   (:meth:`Phoenix.annotations`)
=====================================================  =========================================

The spans are grouped by trace by the OpenTelemetry/OpenInference reader that reads Phoenix's
span exports from files (:mod:`attribution.parse.otel`, the ``{"data": [...]}`` shape): one run
per trace, ``run_id`` = the trace id. Nothing here parses a span.

The API key comes from ``PHOENIX_API_KEY``, the variable Phoenix's own client reads, and is sent
as ``Authorization: Bearer``. It is never printed, and never written into a diagnosis (the
diagnosis names the project URL only).

A trace is *finished* when its root span (no parent) has arrived: OpenTelemetry SDKs export a
span when it ends, and the root ends last.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from attribution.errors import ConfigError, RemoteError
from attribution.remote.rest import DEFAULT_TIMEOUT, request

__all__ = ["SCHEMES", "API_KEY_ENV", "PhoenixURL", "Phoenix", "parse_url", "parse_since", "parse_time", "group_traces",
           "finished_traces", "trace_id_of"]

SCHEMES = ("phoenix", "phoenix+http", "phoenix+https")
#: The environment variable Phoenix's own client reads its API key from.
API_KEY_ENV = "PHOENIX_API_KEY"
#: Spans per page asked of the server, and the most spans one read may gather (bounded work).
PAGE = 1000
MAX_SPANS = 200_000


@dataclass(frozen=True)
class PhoenixURL:
    """Where a Phoenix project lives: ``base`` (``http://host:port[/prefix]``) and ``project``."""

    base: str
    project: str

    def __str__(self) -> str:
        scheme, rest = self.base.split("://", 1)
        return f"phoenix{'+https' if scheme == 'https' else ''}://{rest}/{urllib.parse.quote(self.project, safe='')}"


def parse_url(url: str) -> PhoenixURL:
    """``phoenix://HOST:PORT/PROJECT`` -> :class:`PhoenixURL`.

    Examples
    --------
    >>> parse_url("phoenix://localhost:6006/default")
    PhoenixURL(base='http://localhost:6006', project='default')
    >>> parse_url("phoenix+https://app.example.com/phoenix/my%20agents").project
    'my agents'
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"a Phoenix source is phoenix://HOST:PORT/PROJECT; got {url!r}")
    if parts.username or parts.password:
        raise ConfigError(f"put no credentials in a Phoenix URL; the API key is read from ${API_KEY_ENV}")
    segments = [s for s in parts.path.split("/") if s]
    if not parts.netloc or not segments:
        raise ConfigError(f"a Phoenix source is phoenix://HOST:PORT/PROJECT (the project is missing); got {url!r}")
    try:
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        raise ConfigError(f"a Phoenix source's port must be a number; got {url!r}") from None
    http = "https" if parts.scheme == "phoenix+https" else "http"
    prefix = "/".join(segments[:-1])
    base = f"{http}://{parts.netloc}" + (f"/{prefix}" if prefix else "")
    return PhoenixURL(base, urllib.parse.unquote(segments[-1]))


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str, now: _dt.datetime | None = None) -> _dt.datetime:
    """``--since``: an ISO 8601 time (UTC when it names no zone) or an age: ``30m``, ``2h``, ``1d``.

    Examples
    --------
    >>> parse_since("2026-01-02T03:04:05Z").isoformat()
    '2026-01-02T03:04:05+00:00'
    >>> now = _dt.datetime(2026, 1, 2, tzinfo=_dt.timezone.utc)
    >>> parse_since("90m", now).isoformat()
    '2026-01-01T22:30:00+00:00'
    """
    m = _RELATIVE.match(value)
    if m:
        now = now or _dt.datetime.now(_dt.timezone.utc)
        return now - _dt.timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)])
    try:
        t = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--since takes an ISO 8601 time (2026-01-02T03:04:05Z) or an age (30m, 2h, 1d); got {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.timezone.utc).isoformat()


def parse_time(value: Any) -> _dt.datetime | None:
    """A span's ``start_time`` (ISO 8601) as an aware datetime; None when absent or unreadable."""
    try:
        t = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def trace_id_of(span: dict) -> str | None:
    """A Phoenix REST span's trace id (``context.trace_id``, or a flat ``trace_id``)."""
    return _trace_id(span)


def _trace_id(span: dict) -> str | None:
    ctx = span.get("context") if isinstance(span.get("context"), dict) else {}
    return ctx.get("trace_id") or span.get("trace_id")


def _span_id(span: dict) -> str | None:
    ctx = span.get("context") if isinstance(span.get("context"), dict) else {}
    return ctx.get("span_id") or span.get("span_id")


def group_traces(spans: Iterable[dict]) -> dict[str, list[dict]]:
    """Spans by trace id, in the order first seen (only for choosing traces; the reader groups again)."""
    out: dict[str, list[dict]] = {}
    for s in spans:
        t = _trace_id(s)
        if t:
            out.setdefault(t, []).append(s)
    return out


def finished_traces(spans: Iterable[dict]) -> dict[str, str]:
    """Trace id -> the root span's start time, for every trace whose root span (no parent) has arrived."""
    out = {}
    for t, group in group_traces(spans).items():
        root = next((s for s in group if not s.get("parent_id")), None)
        if root is not None:
            out[t] = str(root.get("start_time") or "")
    return out


@dataclass
class Phoenix:
    """A client for one project of a running Phoenix.

    Parameters
    ----------
    url : str or PhoenixURL
        ``phoenix://HOST:PORT/PROJECT``.
    api_key : str, optional
        Default: ``$PHOENIX_API_KEY``; without one no ``Authorization`` header is sent.
    timeout : float
        Seconds per request.
    """

    url: PhoenixURL | str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if isinstance(self.url, str):
            self.url = parse_url(self.url)
        if self.api_key is None:
            self.api_key = os.environ.get(API_KEY_ENV) or None

    # -- plumbing ------------------------------------------------------------------------------
    def _call(self, method: str, path: str, what: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            _, value = request(self.url.base, method, path, headers=headers, timeout=self.timeout, what=what, **kw)
        except RemoteError as err:
            text = str(err)
            if " 404 " in text and "/projects/" in path:
                raise RemoteError(f"{self.url}: no project {self.url.project!r} on this Phoenix (404 on {method} {path})") from None
            if " 401 " in text or " 403 " in text:
                raise RemoteError(f"{text} (is ${API_KEY_ENV} set to a key of this Phoenix?)") from None
            raise
        return value

    def _project_path(self, tail: str) -> str:
        return f"/v1/projects/{urllib.parse.quote(self.url.project, safe='')}{tail}"

    def _pages(self, path: str, what: str, params: dict[str, Any], most: int) -> list[dict]:
        out: list[dict] = []
        cursor = None
        while True:
            value = self._call("GET", path, what, params={**params, "limit": PAGE, "cursor": cursor})
            if not isinstance(value, dict) or not isinstance(value.get("data"), list):
                raise RemoteError(f"{self.url}: GET {path}: expected {{'data': [...]}}; got {type(value).__name__}")
            out.extend(x for x in value["data"] if isinstance(x, dict))
            cursor = value.get("next_cursor")
            if not cursor:
                return out
            if len(out) >= most:
                raise RemoteError(f"{self.url}: more than {most} records for {what}; narrow it with --trace or --since")

    # -- reading -------------------------------------------------------------------------------
    def spans(self, *, since: _dt.datetime | None = None, until: _dt.datetime | None = None,
              trace_ids: Sequence[str] = (), most: int = MAX_SPANS) -> list[dict]:
        """The project's spans that started in [since, until) (all when None), in Phoenix's REST shape;
        with ``trace_ids``, only theirs."""
        params: dict[str, Any] = {"start_time": _iso(since) if since else None, "end_time": _iso(until) if until else None}
        if trace_ids:
            params["trace_id"] = list(trace_ids)
        what = f"read the spans of project {self.url.project!r}"
        spans = self._pages(self._project_path("/spans"), what, params, most)
        if trace_ids:  # a server that ignores the filter still gives the right traces
            wanted = set(trace_ids)
            spans = [s for s in spans if _trace_id(s) in wanted]
        return spans

    def roots(self, *, since: _dt.datetime | None = None, most: int = MAX_SPANS) -> list[dict]:
        """The root spans (no parent) that started since ``since``, oldest first: one per finished trace."""
        params = {"start_time": _iso(since) if since else None, "parent_id": "null", "sort": "start_time", "order": "asc"}
        roots = self._pages(self._project_path("/spans"), f"read the root spans of project {self.url.project!r}", params, most)
        return [s for s in roots if not s.get("parent_id")]

    def runs(self, spans: Sequence[dict], *, actors: Sequence[str] = (), observers: Sequence[str] = ()) -> list:
        """One :class:`~attribution.types.Run` per trace of ``spans``, read by the otel reader."""
        from attribution.parse import prepare_runs, read_runs

        source = str(self.url)
        return prepare_runs(read_runs({"data": list(spans)}, source, "otel"), source, actors=actors, observers=observers)

    def annotations(self, span_ids: Sequence[str], most: int = MAX_SPANS) -> list[dict]:
        """The span annotations of ``span_ids`` in this project (every name and annotator)."""
        out: list[dict] = []
        ids = list(span_ids)
        for i in range(0, len(ids), 100):  # keep each URL short
            out += self._pages(self._project_path("/span_annotations"), "read span annotations",
                               {"span_ids": ids[i:i + 100]}, most)
        return out

    # -- writing -------------------------------------------------------------------------------
    def post(self, payload: dict[str, Any]) -> int:
        """Post an ``--emit phoenix`` payload (``{"data": [...]}``); returns how many annotations the
        server accepted (the ids it answered with). Each has an ``identifier``: posting again updates."""
        data = payload.get("data") or []
        if not data:
            return 0
        value = self._call("POST", "/v1/span_annotations", f"post {len(data)} span annotations",
                           params={"sync": "true"}, body=payload)
        got = value.get("data") if isinstance(value, dict) else None
        if not isinstance(got, list):
            raise RemoteError(f"{self.url}: POST /v1/span_annotations: expected {{'data': [ids]}}; got {str(value)[:120]!r}")
        return len(got)
