"""Read multi-agent run logs into :class:`attribution.types.Run` objects.

Formats are registered by name in :data:`FORMATS`; with ``format=None`` the format is
detected from the loaded value: an object with ``history`` and Who&When labels is
``"who-and-when"``, everything else is ``"chat"`` (see the two modules for their
rules).

Files hold JSON or JSONL (``.jsonl``, or any file holding several JSON values, one
per line). The value is either one run or many:

- one run: a list of messages (a JSON list, or a JSONL whose lines are messages),
  or one object with ``messages`` / ``history``;
- many runs: a list whose items are all objects with ``messages`` / ``history`` (a
  JSON list, or a JSONL whose lines are such objects).

:func:`load_run` reads a one-run file (or a many-run file holding exactly one run);
:func:`load_runs` reads either and always returns a list.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from pathlib import Path
from typing import Any, Callable

from attribution.errors import ConfigError, InputError
from attribution.parse import chat, who_and_when
from attribution.types import Run

__all__ = ["FORMATS", "detect_format", "parse_run", "parse_runs", "load_run", "load_runs", "read_json"]

#: Parsers by name: ``parser(obj, source, run_id=None) -> Run``.
FORMATS: dict[str, Callable[..., Run]] = {
    "who-and-when": who_and_when.parse,
    "chat": chat.parse,
}


def detect_format(obj: Any) -> str:
    """The name of the format of a loaded run (``"who-and-when"`` or ``"chat"``)."""
    return "who-and-when" if who_and_when.detect(obj) else "chat"


def parse_run(obj: Any, source: str = "<memory>", format: str | None = None, *, run_id: str | None = None) -> Run:
    """Parse one run from an already-loaded JSON value.

    Parameters
    ----------
    obj : list or dict
        A list of chat messages, or an object with ``messages`` / ``history``.
    source : str, default "<memory>"
        Named in errors and kept as ``run.source``.
    format : str, optional
        A key of :data:`FORMATS`; detected when None.
    run_id : str, optional
        Used when the run names no id; default: the stem of ``source``.

    Returns
    -------
    Run

    Raises
    ------
    ConfigError
        If ``format`` is not a known format.
    InputError
        If ``obj`` is not a valid run of that format.

    Examples
    --------
    >>> run = parse_run([{"role": "user", "content": "2+2?"},
    ...                  {"role": "assistant", "name": "solver", "content": "5"}])
    >>> [(s.agent, s.kind) for s in run.steps]
    [('user', 'observation'), ('solver', 'action')]
    """
    parser = _parser(format) if format is not None else FORMATS[detect_format(obj)]
    if _is_many(obj, source):
        raise InputError(source, "one run (use parse_runs for a list of runs)", got=f"{len(obj)} runs")
    return parser(obj, source, run_id=run_id)


def parse_runs(
    obj: Any, source: str = "<memory>", format: str | None = None, *, lines: list[int] | None = None
) -> list[Run]:
    """Parse one run or many from a loaded JSON value (see the module docstring).

    Runs of a many-run value get ``run_id`` from their ``id`` / ``run_id`` or
    ``"<stem>/<position>"``; errors name ``line N`` when ``lines`` (the JSONL line
    of each item) is given, else ``run N`` (0-based).
    """
    parser = _parser(format) if format is not None else None
    if not _is_many(obj, source):
        return [(parser or FORMATS[detect_format(obj)])(obj, source)]
    runs = []
    stem = Path(source).stem
    for k, item in enumerate(obj):
        where = f"{source}, line {lines[k]}" if lines else f"{source}, run {k}"
        run = (parser or FORMATS[detect_format(item)])(item, where, run_id=f"{stem}/{k}")
        runs.append(dataclasses.replace(run, source=source, meta={**run.meta, "position": k}))
    return runs


def load_run(path: str | Path, format: str | None = None) -> Run:
    """Read one run from a JSON or JSONL file.

    Raises
    ------
    ConfigError
        If ``format`` is not a known format.
    InputError
        If the file is missing, not JSON, not a run, or holds several runs.
    """
    runs = load_runs(path, format)
    if len(runs) != 1:
        raise InputError(path, "one run (use load_runs for a file of many)", got=f"{len(runs)} runs")
    return runs[0]


def load_runs(path: str | Path, format: str | None = None) -> list[Run]:
    """Read every run of a JSON or JSONL file (a one-run file gives a list of one)."""
    if format is not None:
        _parser(format)  # a bad name is reported before the file is read
    obj, lines = read_json(path)
    return parse_runs(obj, str(path), format, lines=lines)


def read_json(path: str | Path) -> tuple[Any, list[int] | None]:
    """Load a JSON or JSONL file.

    Returns
    -------
    value : Any
        The JSON value; for JSONL, the list of the lines' values.
    lines : list of int or None
        For JSONL, the 1-based line number of each value; None for JSON.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, "a readable UTF-8 JSON or JSONL file", got=type(err).__name__) from err
    if not text.strip():
        raise InputError(path, "a JSON or JSONL run", got="an empty file")
    if path.suffix != ".jsonl":
        try:
            return json.loads(text), None
        except json.JSONDecodeError as err:
            if err.msg != "Extra data":  # several values: read as JSONL below
                raise InputError(path, "valid JSON", got=f"{err.msg} at line {err.lineno}, column {err.colno}") from err
    values, lines = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                values.append(json.loads(line))
            except json.JSONDecodeError as err:
                got = f"{err.msg} at line {n}, column {err.colno}"
                raise InputError(path, "one JSON value per line (JSONL)", got=got) from err
            lines.append(n)
    return values, lines


def _parser(format: str) -> Callable[..., Run]:
    try:
        return FORMATS[format]
    except KeyError:
        near = difflib.get_close_matches(str(format), FORMATS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"Unknown format {format!r}; known formats: {', '.join(sorted(FORMATS))}{hint}") from None


def _is_many(obj: Any, source: str) -> bool:
    """Whether ``obj`` is a list of runs; a list mixing runs and messages is an error."""
    if not isinstance(obj, list):
        return False
    is_run = [isinstance(x, dict) and ("messages" in x or "history" in x) for x in obj]
    if any(is_run) and not all(is_run):
        k = is_run.index(not is_run[0])
        raise InputError(
            source,
            "a list of messages (one run) or a list of runs (objects with 'messages'), not both",
            got=f"item {k} differs from item 0",
        )
    return bool(obj) and all(is_run)
