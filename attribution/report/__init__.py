"""Reports of diagnosed runs: a self-contained HTML page (:func:`write_html`) and the
evaluation's PNG figures (:mod:`attribution.report.plots`, imported on demand so that
matplotlib loads only when a figure is drawn)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from attribution.errors import InputError
from attribution.io import read_json_file
from attribution.report.html import COLLAPSE_TOKENS, render_html, write_html
from attribution.types import ACTION, OBSERVATION, READABLE_SCHEMAS, SCHEMA_VERSION, Diagnosis

__all__ = ["COLLAPSE_TOKENS", "load_diagnosis", "render_html", "write_html", "write_report"]


def load_diagnosis(path: str | Path) -> Diagnosis:
    """Read a diagnosis saved with ``Diagnosis.to_json`` (``attribution diagnose --json``).

    The file is untrusted input: every field that the report renders is checked for its type
    (strings are strings, indices are integers, scores finite numbers) and the fields are
    checked against each other (the culprit is the first of ``top``, a scored action step whose
    agent is ``culprit_agent``), so that a hand-edited or crafted file is refused with one line
    instead of rendering a wrong page.

    Raises
    ------
    InputError
        The file is missing, not JSON, not a diagnosis of schema ``SCHEMA_VERSION``, or a field
        has the wrong type or contradicts another (the message names the field and the step).
    """
    path = Path(path)
    raw = read_json_file(path, "a diagnosis JSON file (attribution diagnose --json)")
    if not isinstance(raw, dict):
        raise InputError(path, "a JSON object (a saved diagnosis)", got=type(raw).__name__)
    if raw.get("schema") not in READABLE_SCHEMAS:
        raise InputError(path, f"schema {SCHEMA_VERSION!r}", got=_short(raw.get("schema")))
    _check_fields(raw, path)
    try:
        return Diagnosis.from_dict(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(path, "the fields of a saved diagnosis", got=str(err).splitlines()[0]) from err


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_fields(raw: dict[str, Any], path: Path) -> None:
    """Type and consistency checks of a raw saved diagnosis (see :func:`load_diagnosis`)."""

    def need(ok: bool, field: str | None, expected: str, value: Any, step: int | None = None) -> None:
        if not ok:
            what = expected if field is None else f"{field!r} to be {expected}"
            raise InputError(path, what, step=step, got=_short(value))

    for key, kind in (("run_id", str), ("source", str), ("culprit_agent", str), ("top", list),
                      ("agent_totals", dict), ("steps", list), ("settings", dict), ("checkpoints", dict)):
        if key not in raw:
            raise InputError(path, "the fields of a saved diagnosis", got=f"no {key!r}")
        need(isinstance(raw[key], kind), key, f"a {'string' if kind is str else kind.__name__}", raw[key])
    if "culprit_step" not in raw:
        raise InputError(path, "the fields of a saved diagnosis", got="no 'culprit_step'")
    need(_is_int(raw["culprit_step"]) and raw["culprit_step"] >= 0, "culprit_step", "a step index (an integer >= 0)", raw["culprit_step"])
    need(isinstance(raw.get("run_steps", []), list), "run_steps", "a list", raw.get("run_steps"))
    need(isinstance(raw.get("labels", {}), dict), "labels", "an object", raw.get("labels"))
    warnings = raw.get("warnings", [])
    need(isinstance(warnings, list) and all(isinstance(w, str) for w in warnings), "warnings", "a list of strings", warnings)
    for agent, total in raw["agent_totals"].items():
        need(_is_number(total), f"agent_totals.{agent}", "a finite number", total)

    scored: dict[int, dict[str, Any]] = {}
    for k, s in enumerate(raw["steps"]):
        need(isinstance(s, dict), f"steps[{k}]", "an object", s)
        need(_is_int(s.get("index")) and s["index"] >= 0, f"steps[{k}].index", "an integer >= 0", s.get("index"))
        i = s["index"]
        need(i not in scored, f"steps[{k}].index", "unique among the steps", i, step=i)
        scored[i] = s
        need(isinstance(s.get("agent"), str), "agent", "a string", s.get("agent"), step=i)
        need(s.get("kind") in (ACTION, OBSERVATION), "kind", f"{ACTION!r} or {OBSERVATION!r}", s.get("kind"), step=i)
        for key in ("tokens", "logps", "ref_logps"):
            need(isinstance(s.get(key, []), list), key, "a list", s.get(key), step=i)
        need(all(isinstance(t, str) for t in s.get("tokens", [])), "tokens", "a list of strings", s.get("tokens"), step=i)
        lengths = {len(s.get("tokens", [])), len(s.get("logps", [])), len(s.get("ref_logps", []))}
        need(len(lengths) == 1, None, "tokens, logps and ref_logps of equal length", sorted(lengths), step=i)
        for key in ("logps", "ref_logps"):
            bad = [v for v in s.get(key, []) if not _is_number(v)]
            need(not bad, None, f"finite scores and log-probs ({key})", bad[:1] and bad[0], step=i)
        need(_is_number(s.get("beta", 1.0)), "beta", "a finite number", s.get("beta"), step=i)
        need(s.get("score") is None or _is_number(s["score"]), None, "finite scores and log-probs (score)", s.get("score"), step=i)
        if "n_tokens" in s:
            need(s["n_tokens"] == len(s.get("logps", [])) and _is_int(s["n_tokens"]), "n_tokens", "the number of logps", s["n_tokens"], step=i)

    parsed: set[int] = set()
    for k, entry in enumerate(raw.get("run_steps", [])):
        need(isinstance(entry, dict) and _is_int(entry.get("index")) and entry["index"] >= 0,
             None, "run_steps entries with an integer 'index' >= 0", entry, step=k)
        i = entry["index"]
        need(i not in parsed, "run_steps index", "unique", i, step=i)
        parsed.add(i)
        for key in ("agent", "role", "content"):
            need(isinstance(entry.get(key, ""), str), key, "a string", entry.get(key), step=i)
        need(entry.get("kind", OBSERVATION) in (ACTION, OBSERVATION), "kind", f"{ACTION!r} or {OBSERVATION!r}", entry.get("kind"), step=i)
        need(entry.get("to") is None or isinstance(entry["to"], str), "to", "a string or null", entry.get("to"), step=i)

    culprit = raw["culprit_step"]
    need(culprit in scored and scored[culprit].get("score") is not None, "culprit_step", "a scored step", culprit)
    need(scored[culprit]["agent"] == raw["culprit_agent"], "culprit_agent",
         f"the agent of step {culprit} ({scored[culprit]['agent']!r})", raw["culprit_agent"])
    top = raw["top"]
    need(bool(top) and all(_is_int(i) for i in top), "top", "a non-empty list of step indices", top)
    need(len(set(top)) == len(top) and all(i in scored for i in top), "top", "distinct scored steps", top)
    need(top[0] == culprit, None, f"'top' to start with the culprit step {culprit}", top)
    need(isinstance(raw.get("format", ""), str), "format", "a string", raw.get("format"))
    ranking = raw.get("ranking", [])
    need(isinstance(ranking, list) and all(_is_int(i) and i in scored for i in ranking) and len(set(ranking)) == len(ranking),
         "ranking", "a list of distinct scored steps", ranking)
    need(not ranking or ranking[0] == culprit, None, f"'ranking' to start with the culprit step {culprit}", ranking)

    for name, pair in raw["checkpoints"].items():
        need(isinstance(pair, dict), f"checkpoints.{name}", "an object", pair)
        need(pair.get("beta") is None or _is_number(pair["beta"]), f"checkpoints.{name}.beta", "a finite number", pair.get("beta"))
    labels = raw.get("labels", {})
    gold = labels.get("mistake_step")
    need(gold is None or (_is_int(gold) and gold >= 0), "labels.mistake_step", "a step index (an integer >= 0) or null", gold)
    for key in ("mistake_agent", "mistake_reason", "question"):
        need(labels.get(key) is None or isinstance(labels[key], str), f"labels.{key}", "a string or null", labels.get(key))
    need(labels.get("success") is None or isinstance(labels["success"], bool), "labels.success", "true, false or null", labels.get("success"))


def write_report(diagnosis_file: str | Path, html_path: str | Path, *, collapse_tokens: int = COLLAPSE_TOKENS) -> None:
    """Write the HTML report of a diagnosis saved with ``attribution diagnose --json``.

    Raises
    ------
    InputError
        If ``diagnosis_file`` is not a valid saved diagnosis (see :func:`load_diagnosis`).
    OSError
        If ``html_path`` cannot be written.
    """
    write_html(load_diagnosis(diagnosis_file), html_path, collapse_tokens=collapse_tokens)
