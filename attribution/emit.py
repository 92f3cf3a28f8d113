"""Verdicts out: payloads keyed by the source's own ids, ready to post to where people debug.

``attribution diagnose LOG --emit KIND:PATH`` (repeatable) writes one file per kind; nothing is
sent over the network. Every kind keys its records by the ids the reader kept in
:class:`~attribution.types.Origin` (span id, observation id, trace id), so they join back to
the source.

==========  =====================================================================================
kind        what PATH holds
==========  =====================================================================================
``jsonl``   one line per step of every run: ``run``, ``step``, ``source_id``, ``id_type``,
            ``trace_id``, ``pointer``, ``line``, ``agent``, ``kind``, ``score`` (null for
            observations), ``rank`` (1 = most suspicious; null when unscored), ``culprit``,
            ``warnings`` (the diagnosis's caveats). Works for every format.
``phoenix`` the body of Phoenix's ``POST /v1/span_annotations``: ``{"data": [...]}``, one span
            annotation per scored step: ``span_id``, ``name: "progress_advantage"``,
            ``annotator_kind: "CODE"``, ``result: {label: "culprit" | "ok", score, explanation}``,
            ``identifier`` (so re-posting updates instead of duplicating), ``metadata``.
``langfuse`` a JSON list of bodies for Langfuse's ``POST /api/public/scores``: per scored step a
            ``NUMERIC`` score ``progress_advantage`` and a ``CATEGORICAL`` score ``culprit``
            (``culprit`` / ``ok``) on ``traceId`` + ``observationId``, and per run a
            ``CATEGORICAL`` trace score ``culprit_agent``; each with a deterministic ``id``.
``otel``    OTLP/JSON logs (``ExportLogsServiceRequest``): one ``gen_ai.evaluation.result``
            event per scored span, parented to it by ``traceId`` + ``spanId``, with
            ``gen_ai.evaluation.name``, ``gen_ai.evaluation.score.value``,
            ``gen_ai.evaluation.score.label`` and ``gen_ai.evaluation.explanation``.
==========  =====================================================================================

``phoenix`` and ``otel`` need OpenTelemetry span ids (``id_type="span"``); ``langfuse`` needs a
trace id and a span or Langfuse observation id. Ids of other kinds (message ids, event ids, the
OpenAI Agents SDK's own ``span_...`` ids) key ``jsonl`` only. A run whose steps carry none is an error naming the run and its format; a scored step
without one is skipped with a warning.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from attribution.errors import ConfigError, InputError, ParseWarning
from attribution.io import atomic_write_text
from attribution.types import Diagnosis

__all__ = ["EMITTERS", "ANNOTATION_NAME", "parse_emit", "emit", "check_ids", "jsonl_records", "phoenix_payload",
           "langfuse_payload", "otel_payload"]

#: The name every payload gives the step score.
ANNOTATION_NAME = "progress_advantage"
_SPAN_IDS = ("span",)
_OBSERVATION_IDS = ("span", "observation")


def _rows(diag: Diagnosis) -> list[dict[str, Any]]:
    """One row per step of a diagnosis: ids from ``run_steps``, score and rank from ``steps``."""
    rank = {i: r for r, i in enumerate(diag.ranking or diag.top, start=1)}
    scores = {s.index: s for s in diag.steps}
    out = []
    for entry in diag.run_steps:
        i = entry["index"]
        origin = entry.get("origin") or {}
        st = scores.get(i)
        out.append({
            "run": diag.run_id,
            "step": i,
            "source_id": origin.get("id"),
            "id_type": origin.get("id_type"),
            "trace_id": origin.get("trace_id"),
            "pointer": origin.get("pointer"),
            "line": origin.get("line"),
            "timestamp": origin.get("timestamp"),
            "agent": entry["agent"],
            "kind": entry["kind"],
            "score": st.score if st is not None else None,
            "n_tokens": st.n_tokens if st is not None else 0,
            "rank": rank.get(i),
            "culprit": i == diag.culprit_step,
            "warnings": list(diag.warnings),
        })
    return out


def _explanation(row: dict[str, Any], diag: Diagnosis) -> str:
    n = len(diag.ranking or diag.top)
    verdict = "flagged as the culprit" if row["culprit"] else f"rank {row['rank']} of {n}"
    caveats = "".join(f". WARNING: {w}" for w in diag.warnings)  # the toy pair, unknown tokens: never a bare verdict
    return (f"progress advantage {row['score']:.4f} over {row['n_tokens']} tokens "
            f"(sum of beta*log pi/pi_ref); step {row['step']} by {row['agent']}, {verdict}{caveats}")


def _keyed(diag: Diagnosis, id_types: Sequence[str], kind: str, need_trace: bool = False) -> list[dict[str, Any]]:
    """Scored rows whose step carries an id of ``id_types`` (and a trace id when needed)."""
    rows = [r for r in _rows(diag) if r["score"] is not None]
    keyed = [r for r in rows if r["source_id"] and r["id_type"] in id_types and (r["trace_id"] or not need_trace)]
    if rows and not keyed:
        fmt = f" ({diag.format} format)" if diag.format else ""
        need = " and trace" if need_trace else ""
        raise InputError(diag.source or diag.run_id, f"steps with {'/'.join(id_types)}{need} ids for --emit {kind}",
                         got=f"none in run {diag.run_id}{fmt}; use --emit jsonl")
    for r in rows:
        if r not in keyed:
            warnings.warn(ParseWarning(f"{diag.source or diag.run_id}, run {diag.run_id}, step {r['step']}: "
                                       f"no {'/'.join(id_types)} id; left out of the {kind} payload"))
    return keyed


def _label(row: dict[str, Any]) -> str:
    return "culprit" if row["culprit"] else "ok"


def _stable_id(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]


def jsonl_records(diags: Sequence[Diagnosis]) -> list[dict[str, Any]]:
    """The ``jsonl`` payload: one record per step of every diagnosis."""
    return [r for d in diags for r in _rows(d)]


def phoenix_payload(diags: Sequence[Diagnosis]) -> dict[str, Any]:
    """The body of Phoenix's ``POST /v1/span_annotations``."""
    data = []
    for d in diags:
        for r in _keyed(d, _SPAN_IDS, "phoenix"):
            data.append({
                "span_id": r["source_id"],
                "name": ANNOTATION_NAME,
                "annotator_kind": "CODE",
                "result": {"label": _label(r), "score": r["score"], "explanation": _explanation(r, d)},
                "identifier": f"attribution:{d.run_id}:{r['step']}",
                "metadata": {"run_id": d.run_id, "step": r["step"], "agent": r["agent"], "rank": r["rank"],
                             "trace_id": r["trace_id"], "culprit_step": d.culprit_step, "culprit_agent": d.culprit_agent},
            })
    return {"data": data}


def langfuse_payload(diags: Sequence[Diagnosis]) -> list[dict[str, Any]]:
    """Bodies for Langfuse's ``POST /api/public/scores``."""
    out = []
    for d in diags:
        rows = _keyed(d, _OBSERVATION_IDS, "langfuse", need_trace=True)
        for r in rows:
            base = {"traceId": r["trace_id"], "observationId": r["source_id"]}
            out.append({**base, "id": _stable_id(d.run_id, r["step"], ANNOTATION_NAME), "name": ANNOTATION_NAME,
                        "value": r["score"], "dataType": "NUMERIC", "comment": _explanation(r, d),
                        "metadata": {"run_id": d.run_id, "step": r["step"], "agent": r["agent"], "rank": r["rank"]}})
            out.append({**base, "id": _stable_id(d.run_id, r["step"], "culprit"), "name": "culprit",
                        "value": _label(r), "dataType": "CATEGORICAL"})
        traces = {r["trace_id"] for r in rows}
        for trace in sorted(traces):
            out.append({"traceId": trace, "id": _stable_id(d.run_id, trace, "culprit_agent"), "name": "culprit_agent",
                        "value": d.culprit_agent, "dataType": "CATEGORICAL",
                        "comment": f"step {d.culprit_step} by {d.culprit_agent} has the most negative progress advantage"
                                   + "".join(f". WARNING: {w}" for w in d.warnings)})
    return out


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": str(value)}
    return {"key": key, "value": v}


def otel_payload(diags: Sequence[Diagnosis]) -> dict[str, Any]:
    """OTLP/JSON logs with a ``gen_ai.evaluation.result`` event per scored span."""
    from attribution import __version__

    records = []
    for d in diags:
        for r in _keyed(d, _SPAN_IDS, "otel", need_trace=True):
            records.append({
                "eventName": "gen_ai.evaluation.result",
                "traceId": r["trace_id"],
                "spanId": r["source_id"],
                "severityNumber": 9,
                "severityText": "INFO",
                "body": {"stringValue": _explanation(r, d)},
                "attributes": [
                    _attr("event.name", "gen_ai.evaluation.result"),
                    _attr("gen_ai.evaluation.name", ANNOTATION_NAME),
                    _attr("gen_ai.evaluation.score.value", float(r["score"])),
                    _attr("gen_ai.evaluation.score.label", _label(r)),
                    _attr("gen_ai.evaluation.explanation", _explanation(r, d)),
                    _attr("gen_ai.agent.name", r["agent"]),
                ],
            })
    return {"resourceLogs": [{
        "resource": {"attributes": [_attr("service.name", "attribution")]},
        "scopeLogs": [{"scope": {"name": "attribution", "version": __version__}, "logRecords": records}],
    }]}


def _dump_jsonl(diags: Sequence[Diagnosis]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in jsonl_records(diags))


def _dump_json(build: Callable[[Sequence[Diagnosis]], Any]) -> Callable[[Sequence[Diagnosis]], str]:
    return lambda diags: json.dumps(build(diags), ensure_ascii=False, indent=1) + "\n"


#: Payload writers by kind: diagnoses -> file text.
EMITTERS: dict[str, Callable[[Sequence[Diagnosis]], str]] = {
    "jsonl": _dump_jsonl,
    "phoenix": _dump_json(phoenix_payload),
    "langfuse": _dump_json(langfuse_payload),
    "otel": _dump_json(otel_payload),
}


#: What each kind needs of a step's origin: accepted id types, and whether a trace id is needed.
_NEEDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "jsonl": ((), False),
    "phoenix": (_SPAN_IDS, False),
    "langfuse": (_OBSERVATION_IDS, True),
    "otel": (_SPAN_IDS, True),
}


def check_ids(runs: Sequence[Any], kind: str) -> None:
    """Refuse, before any scoring, to emit ``kind`` for a run whose action steps carry no usable id.

    Raises
    ------
    InputError
        Naming the run, its format and the ids the kind needs.
    """
    id_types, need_trace = _NEEDS[kind]
    if not id_types:
        return
    for run in runs:
        ok = any(s.origin.id and s.origin.id_type in id_types and (s.origin.trace_id or not need_trace)
                 for s in run.steps if s.is_action)
        if not ok:
            need = " and trace" if need_trace else ""
            raise InputError(run.source or run.run_id, f"action steps with {'/'.join(id_types)}{need} ids for --emit {kind}",
                             got=f"none in run {run.run_id} ({run.format or 'unknown'} format); use --emit jsonl")


def parse_emit(spec: str) -> tuple[str, Path]:
    """Split ``KIND:PATH``; an unknown kind or an empty path is a :class:`ConfigError`.

    Examples
    --------
    >>> parse_emit("phoenix:out/annotations.json")
    ('phoenix', PosixPath('out/annotations.json'))
    """
    kind, sep, path = spec.partition(":")
    if not sep or not path:
        raise ConfigError(f"The '--emit' option must be KIND:PATH with KIND one of {', '.join(EMITTERS)}. Got {spec!r} instead.")
    if kind not in EMITTERS:
        raise ConfigError(f"The '--emit' option's kind must be one of {', '.join(EMITTERS)}. Got {kind!r} instead.")
    return kind, Path(path)


def emit(diags: Diagnosis | Sequence[Diagnosis], kind: str, path: str | Path) -> Path:
    """Write the ``kind`` payload of ``diags`` to ``path`` (atomically); returns the path."""
    if isinstance(diags, Diagnosis):
        diags = [diags]
    if kind not in EMITTERS:
        raise ConfigError(f"The 'kind' parameter of emit must be one of {', '.join(EMITTERS)}. Got {kind!r} instead.")
    text = EMITTERS[kind](diags)
    atomic_write_text(path, text)
    return Path(path)
