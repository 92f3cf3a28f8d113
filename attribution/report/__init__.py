"""Reports of diagnosed runs: a self-contained HTML page (:func:`write_html`) and the
evaluation's PNG figures (:mod:`attribution.report.plots`, imported on demand so that
matplotlib loads only when a figure is drawn)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from attribution.errors import InputError
from attribution.report.html import COLLAPSE_TOKENS, render_html, write_html
from attribution.types import READABLE_SCHEMAS, SCHEMA_VERSION, Diagnosis

__all__ = ["COLLAPSE_TOKENS", "load_diagnosis", "render_html", "write_html", "write_report"]


def load_diagnosis(path: str | Path) -> Diagnosis:
    """Read a diagnosis saved with ``Diagnosis.to_json`` (``attribution diagnose --json``).

    Raises
    ------
    InputError
        The file is missing, not JSON, not a diagnosis of schema ``SCHEMA_VERSION``, or
        holds a step whose token lists differ in length or a non-finite number.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise InputError(path, "an existing diagnosis JSON file", got="no such file") from err
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, "a readable UTF-8 diagnosis JSON file", got=type(err).__name__) from err
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(path, "a diagnosis JSON file", got=f"invalid JSON at line {err.lineno}") from err
    if not isinstance(raw, dict):
        raise InputError(path, "a JSON object (a saved diagnosis)", got=type(raw).__name__)
    if raw.get("schema") not in READABLE_SCHEMAS:
        raise InputError(path, f"schema {SCHEMA_VERSION!r}", got=repr(raw.get("schema")))
    try:
        diagnosis = Diagnosis.from_dict(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(path, "the fields of a saved diagnosis", got=str(err).splitlines()[0]) from err
    for k, entry in enumerate(diagnosis.run_steps):
        if not isinstance(entry, dict) or not isinstance(entry.get("index"), int):
            raise InputError(path, "run_steps entries with an integer 'index'", step=k, got=repr(entry)[:60])
    for s in diagnosis.steps:
        lengths = {len(s.tokens), len(s.logps), len(s.ref_logps)}
        if len(lengths) != 1:
            raise InputError(
                path, "tokens, logps and ref_logps of equal length", step=s.index, got=str(sorted(lengths))
            )
        if not _all_finite([s.score, s.beta, *s.logps, *s.ref_logps]):
            raise InputError(path, "finite scores and log-probs", step=s.index, got="NaN or infinity")
    return diagnosis


def _all_finite(values: list[Any]) -> bool:
    return all(v is None or (isinstance(v, (int, float)) and math.isfinite(v)) for v in values)


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
