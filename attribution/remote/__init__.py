"""Trace stores as sources and sinks: runs read from where people debug, verdicts written back.

``attribution diagnose phoenix://HOST:PORT/PROJECT`` (or ``langfuse://HOST:PORT``) reads runs
from a running trace store instead of a file; ``--post`` sends the ``--emit phoenix`` /
``--emit langfuse`` payload of :mod:`attribution.emit` back; ``attribution watch
phoenix://...`` does both for every trace as it finishes (:mod:`attribution.remote.watch`).

=====================================  ==================================================
module                                 what
=====================================  ==================================================
:mod:`attribution.remote.rest`         JSON over HTTP (standard library); every failure
                                       one :class:`~attribution.errors.RemoteError` line
:mod:`attribution.remote.phoenix`      Phoenix's REST API: spans, span annotations
:mod:`attribution.remote.langfuse`     Langfuse's public API: traces, scores
:mod:`attribution.remote.watch`        the polling loop and its state file
=====================================  ==================================================

The stores' spans and traces are read by the reader that reads their exports from files
(:mod:`attribution.parse.otel`); nothing here parses a span. API keys come from the stores' own
environment variables and are never printed nor stored.

:func:`open_store` gives a :class:`Store` for a URL: ``load_runs`` (``--trace``, ``--since``,
``--all``) and ``post`` (the payload, returning how many records the server accepted).
"""

from __future__ import annotations

import datetime as _dt
import urllib.parse
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

from attribution.errors import ConfigError, InputError, ParseWarning
from attribution.remote import langfuse as _langfuse, phoenix as _phoenix
from attribution.remote.rest import DEFAULT_TIMEOUT

__all__ = ["is_remote", "open_store", "Store", "DEFAULT_TIMEOUT"]


def is_remote(text: str) -> bool:
    """Whether ``text`` names a trace store (``phoenix://...``, ``langfuse://...``) rather than a file."""
    scheme = urllib.parse.urlsplit(str(text)).scheme
    return scheme in _phoenix.SCHEMES or scheme in _langfuse.SCHEMES


@dataclass
class Store:
    """A trace store to read runs from and post verdicts to: ``kind`` is ``phoenix`` or ``langfuse``."""

    kind: str
    client: Any

    def __str__(self) -> str:
        return str(self.client.url) if self.kind == "phoenix" else str(self.client)

    def load_runs(self, *, trace_ids: Sequence[str] = (), since: _dt.datetime | None = None, all_runs: bool = False,
                  actors: Sequence[str] = (), observers: Sequence[str] = ()) -> list:
        """The runs to diagnose: the ``trace_ids``; else every finished trace since ``since`` (or every
        one with ``all_runs``); else the store's only trace (several are an error listing them)."""
        roles = {"actors": actors, "observers": observers}
        if self.kind == "langfuse":
            if not (trace_ids or since or all_runs):
                raise ConfigError(f"{self}: name the traces to read with --trace ID, --since T or --all")
            ids = list(trace_ids) or self.client.trace_ids(since)
            if not ids:
                raise InputError(str(self), "traces" + (f" since {since.isoformat()}" if since else ""), got="none")
            return self.client.runs(ids, **roles)
        client: _phoenix.Phoenix = self.client
        spans = client.spans(trace_ids=trace_ids, since=since)
        where = f" of trace {', '.join(trace_ids)}" if trace_ids else f" since {since.isoformat()}" if since else ""
        if not spans:
            raise InputError(str(self), f"spans{where} in project {client.url.project!r}", got="none")
        traces = _phoenix.group_traces(spans)
        missing = [t for t in trace_ids if t not in traces]
        if missing:
            raise InputError(str(self), f"spans of trace {missing[0]} in project {client.url.project!r}", got="none")
        finished = _phoenix.finished_traces(spans)
        if not trace_ids:
            open_ = [t for t in traces if t not in finished]
            if open_ and (since or all_runs):
                warnings.warn(ParseWarning(f"{self}: {len(open_)} trace(s) not finished yet (no root span), left out: "
                                           f"{', '.join(open_[:3])}{' ...' if len(open_) > 3 else ''}"))
                spans = [s for s in spans if _phoenix.trace_id_of(s) in finished]
            elif len(traces) > 1 and not (since or all_runs):
                ids = list(traces)
                shown = ", ".join(ids[:5]) + (f", ... ({len(ids) - 5} more)" if len(ids) > 5 else "")
                raise InputError(str(self), "one trace (pass --trace ID, --since T or --all)", got=f"{len(ids)} traces: {shown}")
        if not spans:
            raise InputError(str(self), f"a finished trace{where} in project {client.url.project!r}", got="none")
        return client.runs(spans, **roles)

    def payload(self, diags: Sequence[Any]) -> Any:
        """What :meth:`post` sends: the ``--emit phoenix`` / ``--emit langfuse`` payload."""
        from attribution.emit import langfuse_payload, phoenix_payload

        return phoenix_payload(diags) if self.kind == "phoenix" else langfuse_payload(diags)

    def post(self, diags: Sequence[Any]) -> tuple[int, int]:
        """Post the verdicts of ``diags``; returns (records accepted, records sent)."""
        payload = self.payload(diags)
        sent = len(payload["data"]) if self.kind == "phoenix" else len(payload)
        return self.client.post(payload), sent


def open_store(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Store:
    """The :class:`Store` that ``url`` names (``phoenix://HOST:PORT/PROJECT`` or ``langfuse://HOST:PORT``)."""
    scheme = urllib.parse.urlsplit(str(url)).scheme
    if scheme in _phoenix.SCHEMES:
        return Store("phoenix", _phoenix.Phoenix(url, timeout=timeout))
    if scheme in _langfuse.SCHEMES:
        return Store("langfuse", _langfuse.Langfuse(url, timeout=timeout))
    raise ConfigError(f"a trace store URL starts with phoenix:// or langfuse://; got {url!r}")
